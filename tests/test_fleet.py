"""Fleets: merge rules, per-host bytes equal to a single render, errors with host/file/
line/path, atomic output, --keep-going, progress, parallel == serial, caches exact."""
import io
import json
import os
import re
from pathlib import Path

import pytest
import yaml

import netharden
from netharden import fleet
from netharden.cli import main
from netharden.emitters import _dataurl
from netharden.fleet.run import EXTENSIONS, Progress
from netharden.yamlload import FLEET, load_file
from helpers import EXAMPLES, PROFILES, ROOT, clear_memos, tree_files

FLEET_EXAMPLE = ROOT / "examples" / "fleet" / "ci-workers.yaml"
FORMATS = ["tree", "cloud-config", "ignition", "butane", "coreos-cloud-config", "plan"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def small_fleet(tmp_path: Path, n: int = 3, bad: int | None = None) -> Path:
    hosts = []
    for i in range(n):
        mtu = "toobig" if i == bad else "1500"
        hosts.append(f"  - name: h{i}\n    profile:\n      bridges: [{{name: br0, addresses: [\"10.0.{i}.1/24\"], mtu: {mtu}}}]\n")
    return write(tmp_path / "fleet.yaml", "apiVersion: netharden/v1\nkind: Fleet\ndefaults:\n  platform: {os: flatcar}\n"
                 "  uplinks: [{name: lan, match: {name: eth*}}]\nhosts:\n" + "".join(hosts))


def render_alone(data: dict, fmt: str, tmp: Path):
    profile = netharden.load(data)
    plan = netharden.plan(profile)
    if fmt == "tree":
        netharden.emit(plan, "tree", tmp)
        return tree_files(tmp)
    return netharden.emit(plan, fmt)


def output_of(out: Path, host: str, fmt: str):
    return tree_files(out / host) if fmt == "tree" else (out / (host + EXTENSIONS[fmt])).read_bytes()


# ------------------------------------------------------------------------------ merge
def test_merge_rules():
    base = {"a": {"x": 1, "y": [1, 2]}, "l": [1], "s": "d", "keep": {"k": 1}}
    over = {"a": {"y": [3], "z": None}, "l": [], "s": {"now": "map"}}
    merged = fleet.merge(base, over)
    assert merged == {"a": {"x": 1, "y": [3], "z": None}, "l": [], "s": {"now": "map"}, "keep": {"k": 1}}
    assert merged["keep"] is base["keep"]             # untouched subtrees are shared
    assert base == {"a": {"x": 1, "y": [1, 2]}, "l": [1], "s": "d", "keep": {"k": 1}}  # nothing modified


def test_host_profile_name_and_metadata():
    data = fleet.host_profile({"metadata": {"description": "d"}, "vxlan_gc": {"mode": "report", "interval": "1min"}},
                              {"name": "n1", "profile": {"vxlan_gc": {"mode": "remove"}}})
    assert data["metadata"] == {"description": "d", "name": "n1"}
    assert data["kind"] == "HostProfile" and data["vxlan_gc"] == {"mode": "remove", "interval": "1min"}


def test_fleet_schema_matches_profile_keys():
    profile = json.loads((ROOT / "schemas/profile.schema.json").read_text())
    schema = json.loads((ROOT / "schemas/fleet.schema.json").read_text())
    partial = set(schema["$defs"]["partial"]["properties"])
    assert partial == set(profile["properties"]) - {"apiVersion", "kind"}


# --------------------------------------------------------------- bytes per host
@pytest.mark.parametrize("fmt", FORMATS)
def test_example_fleet_each_host_equals_its_profile_alone(fmt, tmp_path):
    out = tmp_path / "out"
    assert main(["render", str(FLEET_EXAMPLE), "--format", fmt, "--out", str(out)]) == 0
    doc = yaml.safe_load(FLEET_EXAMPLE.read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(h["name"] + ("" if fmt == "tree" else EXTENSIONS[fmt])
                                                           for h in doc["hosts"])
    for i, entry in enumerate(doc["hosts"]):
        data = fleet.host_profile(doc.get("defaults") or {}, entry)
        assert output_of(out, entry["name"], fmt) == render_alone(data, fmt, tmp_path / f"alone-{i}")


def test_directory_fleet_equals_single_renders(tmp_path):
    d = tmp_path / "hosts"
    d.mkdir()
    for p in PROFILES:
        (d / p.name).write_bytes(p.read_bytes())
    (d / ".editor.swp").write_text("ignored")
    out = tmp_path / "out"
    assert main(["render", str(d), "--format", "ignition", "--out", str(out)]) == 0
    for p in PROFILES:
        name = load_file(p).data["metadata"]["name"]
        single = tmp_path / f"{name}.ign"
        assert main(["render", str(p), "--format", "ignition", "--out", str(single)]) == 0
        assert (out / f"{name}.ign").read_bytes() == single.read_bytes()
    assert main(["validate", str(d)]) == 0


def test_parallel_equals_serial(tmp_path):
    path = small_fleet(tmp_path, n=200)
    for fmt in ("ignition", "tree"):
        serial, parallel = tmp_path / f"s-{fmt}", tmp_path / f"p-{fmt}"
        assert main(["render", str(path), "--format", fmt, "--out", str(serial), "--jobs", "1"]) == 0
        assert main(["render", str(path), "--format", fmt, "--out", str(parallel), "--jobs", "2"]) == 0
        a, b = tree_files(serial), tree_files(parallel)
        assert a == b and len([k for k in a if "/" not in k or fmt == "tree"]) >= 200


def test_caches_give_the_same_bytes(tmp_path):
    # every example and the awkward profile, every format, with cold and warm memoized parts
    for p in PROFILES:
        clear_memos()
        plan_cold = netharden.plan(netharden.load(p))
        for other in PROFILES:
            netharden.plan(netharden.load(other))
        again = netharden.plan(netharden.load(p))   # parts from the memo
        assert plan_cold.to_dict() == again.to_dict()
    # the data URL encoding against the standard library's
    from urllib.parse import quote_from_bytes

    for p in PROFILES:
        for f in netharden.plan(netharden.load(p)).files:
            raw = f.content.encode()
            assert _dataurl.percent_encode(raw) == quote_from_bytes(raw, safe="")
    for raw in (b"", b"\n", b"a\n\nb", "ü\x7f%\n".encode(), bytes(range(256))):
        assert _dataurl.percent_encode(raw) == quote_from_bytes(raw, safe="")


def test_rendered_examples_unchanged_by_this_work(tmp_path):
    """Byte-identical output of the single-host path: rendered with the memos warm
    and cold, every format gives the same bytes."""
    for p in EXAMPLES:
        profile = netharden.load(p)
        for fmt in ("ignition", "butane", "plan", "cloud-config"):
            clear_memos()
            plain = netharden.emit(netharden.plan(profile), fmt)
            cached = netharden.emit(netharden.plan(profile), fmt)
            assert plain == cached


# ------------------------------------------------------------------------------ errors
def test_error_in_host_entry_names_host_file_line_path(tmp_path, capsys):
    path = small_fleet(tmp_path, bad=1)
    out = tmp_path / "out"
    assert main(["render", str(path), "--format", "ignition", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:12:62: error: host h1: expected an integer" in err and "host h1:" in err and "(at $.bridges[0].mtu)" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_error_in_defaults_points_at_defaults(tmp_path, capsys):
    path = write(tmp_path / "f.yaml", "apiVersion: netharden/v1\nkind: Fleet\ndefaults:\n  platform: {os: flatcar}\n"
                 "  uplinks: [{name: lan, match: {name: eth*}, mtu: 99999999}]\n"
                 "hosts:\n  - name: a\n  - name: b\n    profile:\n      uplinks: [{name: lan, mtu: 1500}]\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:5:" in err and "host a:" in err and "(at $.uplinks[0].mtu)" in err
    assert "host b:" not in err   # b's list replaced the bad default


def test_fleet_level_errors(tmp_path, capsys):
    dup = write(tmp_path / "dup.yaml", "apiVersion: netharden/v1\nkind: Fleet\nhosts:\n  - name: a\n  - name: a\n")
    assert main(["validate", str(dup)]) == 2
    err = capsys.readouterr().err
    assert f"{dup}:5:" in err and "duplicate host name 'a' (first at line 4)" in err
    empty = write(tmp_path / "empty.yaml", "apiVersion: netharden/v1\nkind: Fleet\nhosts: []\n")
    assert main(["validate", str(empty)]) == 2
    assert "must not be an empty list (at $.hosts)" in capsys.readouterr().err
    badname = write(tmp_path / "n.yaml", "apiVersion: netharden/v1\nkind: Fleet\nhosts:\n  - name: ../etc\n")
    assert main(["render", str(badname), "--format", "ignition", "--out", str(tmp_path / "o")]) == 2
    assert f"{badname}:4:11: error: invalid host name '../etc'" in capsys.readouterr().err
    meta = write(tmp_path / "m.yaml", "apiVersion: netharden/v1\nkind: Fleet\nhosts:\n  - name: a\n    profile: {metadata: {name: b}}\n")
    assert main(["validate", str(meta)]) == 2
    assert "unknown key 'name'" in capsys.readouterr().err
    d = tmp_path / "d"
    d.mkdir()
    assert main(["validate", str(d)]) == 2
    assert "holds no host profiles" in capsys.readouterr().err


def test_a_trailing_newline_in_a_fleet_is_an_error_not_a_file_name(tmp_path, capsys):
    """A pattern's $ is the end of the string: "node-1\\n" is no DNS label (it was written as
    the file name 'node-1\\n.ign'), and a newline in a default is reported for each host."""
    name = write(tmp_path / "n.yaml", 'apiVersion: netharden/v1\nkind: Fleet\nhosts:\n  - name: "node-1\\n"\n  - name: node-2\n')
    out = tmp_path / "o"
    assert main(["render", str(name), "--format", "ignition", "--out", str(out)]) == 2
    assert f"{name}:4:11: error: host name contains a newline or control character (at $.hosts[0].name)" \
        in capsys.readouterr().err
    assert not out.exists()
    default = write(tmp_path / "d.yaml", 'apiVersion: netharden/v1\nkind: Fleet\ndefaults:\n  uplinks: [{name: "lan\\n"}]\n'
                    "hosts:\n  - name: node-1\n")
    assert main(["render", str(default), "--format", "ignition", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{default}:4:20: error: host node-1: name contains a newline or control character (at $.uplinks[0].name)" in err
    assert "Traceback" not in err and not out.exists()


def test_directory_fleet_duplicate_and_bad_file(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    text = (ROOT / "examples/incident-4-stale-vxlan.yaml").read_text()
    write(d / "a.yaml", text)
    write(d / "b.yaml", text)
    assert main(["render", str(d), "--format", "ignition", "--out", str(tmp_path / "o")]) == 2
    assert "duplicate host name" in capsys.readouterr().err
    (d / "b.yaml").unlink()
    write(d / "c.yaml", "apiVersion: netharden/v1\nkind: HostProfile\nmetadata: {name: c}\nbridges: [{name: x, mtu: big}]\n")
    assert main(["render", str(d), "--format", "ignition", "--out", str(tmp_path / "o")]) == 2
    assert f"{d / 'c.yaml'}:4:" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_keep_going_writes_good_hosts(tmp_path, capsys):
    path = small_fleet(tmp_path, n=3, bad=1)
    out = tmp_path / "out"
    assert main(["render", str(path), "--format", "ignition", "--out", str(out), "--keep-going"]) == 2
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["h0.ign", "h2.ign"]
    assert "1 of 3 hosts have problems, not written: h1" in err and "wrote ignition for 2 of 3 hosts" in err


def test_force_replaces_the_directory_atomically(tmp_path):
    path = small_fleet(tmp_path, n=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.ign").write_text("old")
    assert main(["render", str(path), "--format", "ignition", "--out", str(out)]) == 2   # not empty, no --force
    assert (out / "stale.ign").exists()
    assert main(["render", str(path), "--format", "ignition", "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["h0.ign", "h1.ign"]
    bad = small_fleet(tmp_path, n=2, bad=0)
    assert main(["render", str(bad), "--format", "tree", "--out", str(out), "--force"]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["h0.ign", "h1.ign"]   # a failed run replaced nothing
    assert [p.name for p in tmp_path.iterdir() if "netharden" in p.name] == []


def test_progress_only_on_a_tty():
    class Stream(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            return self.tty

    quiet, live = Stream(False), Stream(True)
    for stream in (quiet, live):
        bar = Progress(10, stream)
        bar.advance(10)
        bar.close()
    assert quiet.getvalue() == ""
    assert "10/10 hosts" in live.getvalue()


def test_render_to_a_pipe_has_no_progress_bar(tmp_path):
    import subprocess
    import sys

    path = small_fleet(tmp_path, n=2)
    proc = subprocess.run([sys.executable, "-m", "netharden", "render", str(path), "--format", "ignition", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    assert "\r" not in proc.stderr and proc.stderr.startswith("wrote ignition for 2 of 2 hosts")


def test_single_profile_flags_refused(tmp_path, capsys):
    assert main(["render", str(EXAMPLES[0]), "--format", "ignition", "--keep-going"]) == 2
    assert "--keep-going applies to fleets only" in capsys.readouterr().err


def test_fleet_files_read_like_profiles():
    """One reader: with the fleet's limits a file reads exactly as a profile does, with or
    without positions."""
    for p in PROFILES + [FLEET_EXAMPLE]:
        a, b = load_file(p), load_file(p, limits=FLEET, positions=True)
        assert a.data == b.data and a.positions == b.positions and a.key_positions == b.key_positions
        assert load_file(p, limits=FLEET, positions=False).data == a.data


HEAD = "# a fleet\napiVersion: netharden/v1\nkind: Fleet\n"
ODD_FLEETS = {   # odd shapes and bad fleets: one reader, so every run of each says the same
    "no hosts line": HEAD + "hosts: [{name: a}]\n",
    "two hosts lines": HEAD + "hosts:\n  - name: a\nother:\n  hosts:\nhosts:\n  - name: b\n",
    "json": json.dumps({"apiVersion": "netharden/v1", "kind": "Fleet", "hosts": [{"name": "a"}]}),
    "flow sequence on the next line": HEAD + "hosts:\n  [{name: a}]\n",
    "first content is no item": HEAD + "hosts:\n  name: a\n",
    "tab in an indentation": HEAD + "hosts:\n  - name: a\n\t\n  - name: b\n",
    "directive": "%YAML 1.1\n---\n" + HEAD + "hosts:\n  - name: a\n",
    "carriage returns": (HEAD + "hosts:\n  - name: a\n").replace("\n", "\r\n"),
    "line separator": HEAD + "hosts:\n  - name: a\n    profile: {metadata: {description: \"x\u2028y\"}}\n",
    "block ends in a deeper sequence": HEAD + "hosts:\n    - name: a\n  - name: b\n",
    "schema problem": HEAD + "extra: 1\nhosts:\n  - name: a\n",
    "does not parse": HEAD + "defaults: {a: [}\nhosts:\n  - name: a\n",
    "no item at all": HEAD + "hosts:\n# nothing\n",
    "alias to an anchor in another host": HEAD + "hosts:\n  - name: a\n    profile: {sysctl: &s {net.ipv4.ip_forward: 1}}\n"
                                          "  - name: b\n    profile: {sysctl: *s}\n",
    "tag in an entry": HEAD + "hosts:\n  - name: a\n  - name: !!str b\n",
    "unknown key in an entry": HEAD + "hosts:\n  - name: a\n  - name: b\n    profil: {}\n",
    "entry without a name": HEAD + "hosts:\n  - name: a\n  - profile: {}\n",
    "invalid host name": HEAD + "hosts:\n  - name: a\n  - name: ../etc\n",
    "duplicate names": HEAD + "hosts:\n  - name: a\n  - name: b\n  - name: a\n",
    "metadata.name in a profile": HEAD + "hosts:\n  - name: a\n    profile: {metadata: {name: b}}\n",
    "alias to the root": "&root\n" + HEAD + "hosts:\n  - name: a\n    profile: {x: *root}\n",
    "undefined alias": HEAD + "hosts:\n  - name: a\n    profile: {sysctl: *nowhere}\n",
    "duplicate key in an entry": HEAD + "hosts:\n  - name: a\n    name: b\n",
    "bad host": HEAD + "defaults:\n  platform: {os: flatcar}\nhosts:\n" + "".join(
        f"  - name: h{i}\n    profile:\n      bridges: [{{name: br0, addresses: [\"10.0.{i}.1/24\"], mtu: {'toobig' if i == 1 else 1500}}}]\n"
        for i in range(3)),
    "bad default": HEAD + "defaults:\n  platform: {os: flatcar}\n  uplinks: [{name: lan, match: {name: eth*}, mtu: 99999999}]\n"
                   "hosts:\n  - name: a\n  - name: b\n    profile:\n      uplinks: [{name: lan, mtu: 1500}]\n",
    "empty hosts": HEAD + "hosts: []\n",
}


@pytest.mark.parametrize("case", sorted(ODD_FLEETS))
@pytest.mark.parametrize("how", ["render", "keep-going", "validate", "no-out", "out-exists"])
def test_odd_and_bad_fleets(tmp_path, capsys, case, how):
    """Exit 0 or 2; every message line is FILE:LINE:COL: error: ... (at $...) or the
    summary, never a traceback; the same whether one process or two render it."""
    path = write(tmp_path / "fleet.yaml", ODD_FLEETS[case])
    results = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}"
        if how == "out-exists":
            out.mkdir()
            (out / "keep").write_text("x")
        args = {"render": ["render", str(path), "--format", "ignition", "--out", str(out)],
                "keep-going": ["render", str(path), "--format", "tree", "--out", str(out), "--keep-going"],
                "validate": ["validate", str(path)],
                "no-out": ["render", str(path), "--format", "ignition"],
                "out-exists": ["render", str(path), "--format", "ignition", "--out", str(out)]}[how]
        code = main(args + (["--jobs", jobs] if how != "validate" else []))
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, err
        if code == 2 and how not in ("no-out", "out-exists"):
            for line in err.splitlines():
                problem = line.startswith(f"{path}:") and ": error: " in line and line.endswith(")")
                summary = line.endswith(" found") or line.startswith(("netharden: ", f"{path}: ", "wrote ")) and " hosts " in line
                assert problem or summary or line.startswith("    hint: "), line
        err = re.sub(r" in [0-9.]+ s \(", " in T s (", err.replace(str(out), "OUT"))
        results.append((code, err, tree_files(out) if out.exists() else None))
    assert results[0] == results[1]


# ------------------------------------------------------------ fleet fast paths
def _fleet_plans(tmp_path, n=40):
    from netharden.profile import normalize
    from netharden.renderers import build_plan

    doc = yaml.safe_load(small_fleet(tmp_path, n=n).read_text())
    datas = [fleet.host_profile(doc["defaults"], e) for e in doc["hosts"]]
    # a host whose name is a word its files use everywhere, and one with the name in a value
    datas.append(fleet.host_profile(doc["defaults"], {"name": "docker", "profile": {"docker": {"daemons": [{"name": "docker"}]}}}))
    datas.append(fleet.host_profile(doc["defaults"], {"name": "lan", "profile": {"sysctl": {"net.ipv4.conf.lan.forwarding": 1}}}))
    plain = [build_plan(normalize(d)) for d in datas]
    return datas, plain


def test_renderer_cache_gives_the_same_plans(tmp_path):
    from netharden.profile import normalize
    from netharden.renderers import build_plan

    datas, plain = _fleet_plans(tmp_path)
    profiles = [netharden.load(p) for p in PROFILES]
    clear_memos()
    for _ in range(2):   # cold, then from the memo
        assert [build_plan(normalize(d)).to_dict() for d in datas] == [p.to_dict() for p in plain]
        for profile in profiles:
            expected = netharden.plan(profile).to_dict()
            assert netharden.plan(profile).to_dict() == expected


def test_shared_parts_are_the_same_objects_on_every_host(tmp_path):
    """What the hosts share is rendered once: the very same File objects (so an emitter's
    memo of a File hits), and only each host's own files differ."""
    from netharden.profile import normalize
    from netharden.renderers import build_plan

    datas, _ = _fleet_plans(tmp_path)
    first, second = (build_plan(normalize(d)) for d in datas[:2])
    by_path = {f.path: f for f in second.files}
    shared = [f for f in first.files if f.path in by_path and f == by_path[f.path]]
    assert len(shared) > 20 and all(by_path[f.path] is f for f in shared)
    assert any(f.path.endswith(".netdev") and by_path[f.path] != f for f in first.files)   # a bridge's own MAC


def test_ignition_fragments_equal_json_dumps(tmp_path):
    from netharden.emitters import ignition

    _, plans = _fleet_plans(tmp_path)
    plans += [netharden.plan(netharden.load(p)) for p in PROFILES]
    expected = [(json.dumps(ignition.config(p, v), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                 + "\n").encode() for v in ("3.3.0", "3.4.0") for p in plans]
    clear_memos()
    for _ in range(2):
        assert [ignition.render(p, v) for v in ("3.3.0", "3.4.0") for p in plans] == expected


def test_ignition_base64_tail_cache_every_name_length():
    """Ignition documents of hosts with names of every length, the name several times, at
    the very end, absent, and in binary-looking content (base64 wins): the assembled
    document is json.dumps of the config."""
    from netharden.emitters import ignition
    from netharden.plan_model import File, Plan

    def plan(name):
        p = Plan(profile=name, systemd=252)
        bodies = [f"# {name}\n" + "\u00e9\u00e8" * 40 + "\n", f"a {name} b {name}\n" + "\u00fc" * 97,
                  "\u00fc" * 50 + name, name, "\u00e4" * 61 + "\n", f"plain text {name} only ascii\n" * 3]
        for i, body in enumerate(bodies):
            p.add(File(f"/etc/t{i}", body, 0o644))
        return p

    names = ["a", "ab", "abc"] + ["n" + "x" * i for i in range(2, 62)] + ["node-0001", "node-0002", "e"]
    plans = [plan(n) for n in names]
    expected = [(json.dumps(ignition.config(p), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                 + "\n").encode() for p in plans]
    clear_memos()
    for _ in range(2):
        assert [ignition.render(p) for p in plans] == expected


def test_plan_add_still_refuses_a_path_twice():
    from netharden.plan_model import File, Link, Plan

    plan = Plan("h", 252)
    plan.add(File("/a", "x"))
    with pytest.raises(ValueError):
        plan.add(Link("/a", "/dev/null"))
    plan.files = [File("/b", "y")]          # lists replaced from outside: the index follows
    plan.add(File("/a", "x"))
    with pytest.raises(ValueError):
        plan.add(File("/b", "z"))


# ---------------------------------------------- serial work of a large fleet file
def test_fleet_check_agrees_with_jsonschema():
    from netharden.fleet import model

    check = model._fleet_check()
    assert check is not None
    good = {"apiVersion": "netharden/v1", "kind": "Fleet", "defaults": {"platform": {"os": "x"}},
            "hosts": [{"name": "a", "profile": {"bridges": []}}]}
    cases = [good, {**good, "hosts": []}, {**good, "kind": "HostProfile"}, {**good, "extra": 1},
             {**good, "hosts": [{"name": "A"}]}, {**good, "hosts": [{"name": "a", "x": 1}]}, {**good, "hosts": [{}]},
             {**good, "defaults": {"metadata": {"name": "n"}}}, {**good, "defaults": {"metadata": {"description": 1}}},
             {**good, "defaults": []}, {**good, "hosts": [{"name": "a", "profile": None}]}, [], None,
             {**good, "hosts": [{"name": "a" * 64}]}, {**good, "hosts": [{"name": "a-"}]}, {**good, "hosts": "a"},
             {**good, "hosts": [{"name": "a\n"}]}, {**good, "apiVersion": "netharden/v1\n"}]
    for data in cases:
        assert check(data) == model._fleet_validator().is_valid(data), data


def test_a_fleet_file_with_crlf_line_ends_is_a_fleet(tmp_path):
    path = write(tmp_path / "fleet.yaml", (HEAD + "hosts:\n  - name: a\n").replace("\n", "\r\n"))
    assert fleet.is_fleet(path)
    assert main(["render", str(path), "--format", "ignition", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "a.ign").is_file()


def test_host_check_takes_integral_floats_to_jsonschema():
    """fastjsonschema counts 1500.0 as an integer; check.valid asks jsonschema then (and caches by JSON)."""
    from netharden.fleet import check

    base = {"apiVersion": "netharden/v1", "kind": "HostProfile", "metadata": {"name": "h"}}
    passthrough = {"daemons": [{"name": "docker", "settings": {"max-concurrent-uploads": 5.0}}]}
    check.clear()
    for _ in range(2):
        assert check.valid({**base, "docker": passthrough}) is True
        assert check.valid({**base, "uplinks": [{"name": "lan", "mtu": 1500.0}]}) is False
        assert check.valid({**base, "uplinks": [{"name": "lan", "mtu": 1500}]}) is True
    assert ("docker", json.dumps(passthrough, sort_keys=True)) in check._by_json
    check.clear()


def test_the_fleet_schema_checks_hosts_one_at_a_time():
    """fleet.load checks a packed file entry by entry (``{..., "hosts": [entry]}``): that is
    the whole check only while the schema asks nothing of ``hosts`` but a type, at most
    one item, and each item on its own."""
    schema = json.loads((ROOT / "schemas" / "fleet.schema.json").read_text())
    hosts = schema["properties"]["hosts"]
    assert set(hosts) <= {"type", "minItems", "items", "description", "title"}
    assert hosts["type"] == "array" and hosts.get("minItems", 0) <= 1 and isinstance(hosts["items"], dict)
    assert "hosts" not in json.dumps(schema.get("$defs", {}))   # nothing else refers to the list
