"""Split reading of a fleet file (fleet.model "Split reading"): the parent reads the
skeleton, workers parse their own hosts. Same data, same bytes, same messages as the
serial full read; every surprise falls back to it (and the path taken is asserted)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from netharden.cli import main
from netharden.fleet import model, yamlfast
from helpers import ROOT, tree_files

FLEET_EXAMPLE = ROOT / "examples" / "fleet" / "ci-workers.yaml"
HEAD = "# a fleet\napiVersion: netharden/v1\nkind: Fleet\n"
DEFAULTS = ("defaults:\n  platform: {os: flatcar, systemd: 252}\n"
            "  uplinks: &uplinks\n    - name: lan\n      match: {name: [\"ens*\", \"eth*\"]}\n      dhcp: ipv4\n"
            "  sysctl: &sysctl {net.ipv4.ip_forward: 1}\n")


def host(i: int, c: int, style: int) -> str:
    """One entry at column c, in one of several shapes (all valid hosts)."""
    p = " " * c
    q = p + "  "
    name = f"h-{i:04d}"
    if style == 0:
        return f"{p}- name: {name}\n{q}profile:\n{q}  bridges: [{{name: br0, addresses: [\"10.0.{i % 250}.1/24\"]}}]\n"
    if style == 1:   # a comment and blank lines between items, a folded block scalar with item-like lines
        return (f"\n{p}# host {i}\n\n{p}- name: {name}\n{q}profile:\n{q}  metadata:\n{q}    description: >-\n"
                f"{q}      looks like\n{q}      - name: not-an-item\n{q}      - {{also: not}}\n"
                f"{q}  bridges:\n{q}    - name: br0\n{q}      addresses: [\"10.1.{i % 250}.1/24\"]\n")
    if style == 2:   # a multi-line double-quoted string, continuation lines deeper than c
        return (f"{p}- name: {name}\n{q}profile:\n{q}  metadata: {{description: \"first\n{q}    - name: fake\n"
                f"{q}    last\"}}\n{q}  bridges: [{{name: br0, addresses: [\"10.2.{i % 250}.1/24\"]}}]\n")
    if style == 3:   # anchors within one host, aliases to defaults
        return (f"{p}- name: {name}\n{q}profile:\n{q}  uplinks: *uplinks\n{q}  sysctl: *sysctl\n"
                f"{q}  bridges:\n{q}    - &b {{name: br0, addresses: [\"10.3.{i % 250}.1/24\"]}}\n"
                f"{q}  metadata: {{description: 'single ''quoted''\n{q}    on two lines'}}\n")
    return f"{p}-   name: {name}\n{q}  profile: {{bridges: [{{name: br0, addresses: [\"10.4.{i % 250}.1/24\"]}}]}}\n"


def fleet_text(n: int, c: int = 2, *, styles: int = 5, tail: str = "") -> str:
    return HEAD + DEFAULTS + "hosts:   # the hosts\n" + "".join(host(i, c, i % styles) for i in range(n)) + tail


def write(tmp: Path, text: str, name: str = "fleet.yaml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def serial(path: Path) -> model.Fleet:
    old = model.SPLIT
    model.SPLIT = False
    try:
        return model.load(path)
    finally:
        model.SPLIT = old


def split_read(fleet: model.Fleet, size: int) -> list:
    """Every entry through read_items in ranges of ``size`` (as the workers do); checks verify."""
    entries, infos, n = [], [], len(fleet.hosts)
    for start in range(0, n, size):
        got = model.read_items(fleet, start, min(n, start + size))
        assert got is not None, start
        entries += got[0]
        infos.append(got[1])
    assert model.verify(fleet, infos)
    return entries


@pytest.fixture(autouse=True)
def _split_on(monkeypatch):
    monkeypatch.setattr(model, "SPLIT", True)


# ------------------------------------------------------------------- same data
@pytest.mark.parametrize("c", [0, 2, 4])
def test_split_reads_what_the_full_read_reads(tmp_path, c):
    path = write(tmp_path, fleet_text(23, c, tail="# the end\n\n"))
    whole = yamlfast.load_file(path, positions=True)
    fleet = model.load(path)
    assert fleet.split is not None and len(fleet.hosts) == 23 and [h.name for h in fleet.hosts] == [""] * 23
    assert fleet.defaults == whole.data["defaults"]
    for size in (1, 2, 3, 7, 23):
        assert split_read(fleet, size) == whole.data["hosts"]
    # positions of a range equal the full read's (marks shifted to the file's lines)
    sp = fleet.split
    for start, stop in ((0, 5), (5, 12), (12, 23)):
        _, _, doc = yamlfast.parse_items(sp.text[sp.offsets[start]:sp.offsets[stop]], str(path),
                                         line_offset=sp.lines[start], seed=sp.anchors, positions=True, index_base=start)
        for key, at in doc.positions.items():
            if len(key) > 1:
                assert whole.positions[key] == at, key
        for key, at in doc.key_positions.items():
            assert whole.key_positions[key] == at, key


def test_bundled_and_benchmark_fleets_split(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fleet import fleet_text as bench_text

    for path in (FLEET_EXAMPLE, write(tmp_path, bench_text(300), "bench.yaml")):
        fleet = model.load(path)
        assert fleet.split is not None
        whole = yamlfast.load_file(path)
        assert split_read(fleet, 16) == whole.data["hosts"] and fleet.defaults == whole.data["defaults"]


def test_seeded_aliases_share_the_defaults_value(tmp_path):
    fleet = model.load(write(tmp_path, fleet_text(8, styles=5)))
    entries = split_read(fleet, 3)
    assert entries[3]["profile"]["uplinks"] is fleet.split.anchors["uplinks"][0]


# -------------------------------------------------------- same bytes, same CLI
def cli(args: list[str], split: bool, capsys) -> tuple[int, str]:
    old = model.SPLIT
    model.SPLIT = split
    try:
        code = main(args)
    finally:
        model.SPLIT = old
    err = capsys.readouterr().err
    return code, "\n".join(line for line in err.splitlines() if not line.startswith("wrote "))


@pytest.mark.parametrize("c", [0, 2, 4])
def test_split_renders_byte_identical(tmp_path, capsys, c):
    path = write(tmp_path, fleet_text(150, c))
    before = dict(model.split_stats)
    for fmt in ("ignition", "tree"):
        outs = {}
        for split, jobs in ((False, "1"), (True, "1"), (True, "2")):
            out = tmp_path / f"o-{fmt}-{split}-{jobs}"
            assert cli(["render", str(path), "--format", fmt, "--out", str(out), "--jobs", jobs], split, capsys)[0] == 0
            outs[(split, jobs)] = tree_files(out)
        assert outs[(False, "1")] == outs[(True, "1")] == outs[(True, "2")]
        assert len(outs[(True, "2")]) >= 150
    assert model.split_stats["split"] - before["split"] == 4 and model.split_stats["fallback"] == before["fallback"]


def test_example_fleet_every_format(tmp_path, capsys):
    for fmt in ("tree", "cloud-config", "ignition", "butane", "coreos-cloud-config", "plan"):
        a, b = tmp_path / f"s-{fmt}", tmp_path / f"p-{fmt}"
        assert cli(["render", str(FLEET_EXAMPLE), "--format", fmt, "--out", str(a)], False, capsys)[0] == 0
        assert cli(["render", str(FLEET_EXAMPLE), "--format", fmt, "--out", str(b)], True, capsys)[0] == 0
        assert tree_files(a) == tree_files(b)


# ---------------------------------------------------------------- fall-backs
PRE_FORK = {   # load() reads serially: the surprise is visible in the parent
    "no hosts line": HEAD + "hosts: [{name: a}]\n",
    "two hosts lines": HEAD + "hosts:\n  - name: a\nother:\n  hosts:\nhosts:\n  - name: b\n",
    "json": json.dumps({"apiVersion": "netharden/v1", "kind": "Fleet", "hosts": [{"name": "a"}]}),
    "flow sequence on the next line": HEAD + "hosts:\n  [{name: a}]\n",
    "first content is no item": HEAD + "hosts:\n  name: a\n",
    "tab in an indentation": HEAD + "hosts:\n  - name: a\n\t\n  - name: b\n",
    "directive": "%YAML 1.1\n---\n" + HEAD + "hosts:\n  - name: a\n",
    "carriage returns": (HEAD + "hosts:\n  - name: a\n").replace("\n", "\r\n"),
    "line separator": HEAD + "hosts:\n  - name: a\n    profile: {metadata: {description: \"x\u2028y\"}}\n",
    "skeleton hosts not the empty null": HEAD + "hosts:\n    - name: a\n  ~\n",
    "block ends in a deeper sequence": HEAD + "hosts:\n    - name: a\n  - name: b\n",
    "skeleton schema problem": HEAD + "extra: 1\nhosts:\n  - name: a\n",
    "skeleton does not parse": HEAD + "defaults: {a: [}\nhosts:\n  - name: a\n",
    "no item at all": HEAD + "hosts:\n# nothing\n",
}

POST_FORK = {  # the workers or verify find it: the run is redone from the serial read
    "alias to an anchor in another host": HEAD + "hosts:\n  - name: a\n    profile: {sysctl: &s {net.ipv4.ip_forward: 1}}\n"
                                          "  - name: b\n    profile: {sysctl: *s}\n",
    "tag in an entry": HEAD + "hosts:\n  - name: a\n  - name: !!str b\n",
    "quoted string cut at an item line": HEAD + "hosts:\n  - name: a\n    profile: {metadata: {description: \"x\n  - name: c\n    y\"}}\n"
                                         "  - name: b\n",
    "flow mapping cut at an item line": HEAD + "hosts:\n  - name: a\n    profile: {metadata:\n  - name: c\n    }\n  - name: b\n",
    "item the scan does not see": HEAD + "hosts:\n  - name: a\n  -\tname: b\n",
    "unknown key in an entry": HEAD + "hosts:\n  - name: a\n  - name: b\n    profil: {}\n",
    "entry without a name": HEAD + "hosts:\n  - name: a\n  - profile: {}\n",
    "invalid host name": HEAD + "hosts:\n  - name: a\n  - name: ../etc\n",
    "duplicate names": HEAD + "hosts:\n  - name: a\n  - name: b\n  - name: a\n",
    "metadata.name in a profile": HEAD + "hosts:\n  - name: a\n    profile: {metadata: {name: b}}\n",
    "anchor redefined after defaults": HEAD + "defaults:\n  sysctl: &s {net.ipv4.ip_forward: 1}\nhosts:\n"
                                       "  - name: a\n    profile: {sysctl: &s {net.ipv4.ip_forward: 0}}\n"
                                       "  - name: b\n    profile: {sysctl: *s}\n",
    "alias to the root": "&root\n" + HEAD + "hosts:\n  - name: a\n    profile: {x: *root}\n",
    "duplicate key in an entry": HEAD + "hosts:\n  - name: a\n    name: b\n",
}


def _paths(tmp_path, cases):
    return {k: write(tmp_path, v, f"{i}.yaml") for i, (k, v) in enumerate(cases.items())}


@pytest.mark.parametrize("case", sorted(PRE_FORK))
def test_pre_fork_surprises_read_serially(tmp_path, case):
    path = write(tmp_path, PRE_FORK[case])
    before = model.split_stats["serial"]
    try:
        fleet = model.load(path)
    except Exception:
        fleet = None
    assert model.split_stats["serial"] == before + 1, case
    assert fleet is None or fleet.split is None


@pytest.mark.parametrize("case", sorted(POST_FORK))
def test_post_fork_surprises_fall_back(tmp_path, case, capsys):
    path = write(tmp_path, POST_FORK[case])
    fleet = model.load(path)
    assert fleet.split is not None, case   # the parent could not tell
    before = model.split_stats["fallback"]
    out = tmp_path / "o-split"
    got = cli(["render", str(path), "--format", "ignition", "--out", str(out), "--jobs", "1"], True, capsys)
    assert model.split_stats["fallback"] == before + 1, case
    want = cli(["render", str(path), "--format", "ignition", "--out", str(tmp_path / "o-serial"), "--jobs", "1"],
               False, capsys)
    assert got == want
    assert out.exists() == (tmp_path / "o-serial").exists()
    if out.exists():
        assert tree_files(out) == tree_files(tmp_path / "o-serial")


def test_cross_chunk_alias_with_workers(tmp_path, capsys):
    """An alias in a worker's range to an anchor in host 0 (rendered by the parent):
    the workers' files are discarded and the serial run writes the same as without split."""
    text = HEAD + DEFAULTS + "hosts:\n  - name: h-0\n    profile: {bridges: &br [{name: br0, addresses: [\"10.9.0.1/24\"]}]}\n"
    text += "".join(f"  - name: h-{i}\n    profile: {{bridges: *br}}\n" for i in range(1, 200))
    path = write(tmp_path, text)
    before = model.split_stats["fallback"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(["render", str(path), "--format", "ignition", "--out", str(a), "--jobs", "2"], True, capsys)[0] == 0
    assert model.split_stats["fallback"] == before + 1
    assert cli(["render", str(path), "--format", "ignition", "--out", str(b), "--jobs", "2"], False, capsys)[0] == 0
    assert tree_files(a) == tree_files(b) and len(tree_files(a)) == 200


def test_expansion_bound_is_the_full_reads(tmp_path):
    """Hosts that alias a large default many times: each range stays within its own
    bound, the whole file does not; verify() must agree with the full read exactly,
    on both sides of the threshold."""
    big = "[" + ", ".join(str(i) for i in range(99)) + "]"
    head = HEAD + f"defaults:\n  sysctl: {{big: &big {big}}}\nhosts:\n"
    entry = "  - name: h{i}\n    profile: {{docker: [*big, *big, *big, *big, *big, *big, *big, *big, *big, *big]}}\n"
    agreed = set()
    for n in range(20, 80, 3):
        path = write(tmp_path, head + "".join(entry.format(i=i) for i in range(n)), f"{n}.yaml")
        try:
            yamlfast.load_file(path)
            full_ok = True
        except Exception as exc:
            assert "expands to more than" in str(getattr(exc, "problems", [exc])[0].message)
            full_ok = False
        fleet = model.load(path)
        assert fleet.split is not None
        infos = []
        for start in range(0, n, 5):
            got = model.read_items(fleet, start, min(n, start + 5))
            assert got is not None
            infos.append(got[1])
        assert model.verify(fleet, infos) == full_ok, n
        agreed.add(full_ok)
    assert agreed == {True, False}   # the threshold was crossed


def test_expansion_after_the_hosts_block(tmp_path):
    """Aliases after the block (defaults written last) are checked with the budget the
    hosts used up added: the skeleton alone stays within its bound, the file may not."""
    big = "[" + ", ".join(str(i) for i in range(99)) + "]"
    entry = "  - name: h{i}\n    profile: {{docker: {{b: &b " + big + ", c: [" + ", ".join(["*b"] * 30) + "]}}}}\n"
    seen = set()
    for n in (5, 40):
        for k in (1, 60, 120, 200):
            text = (HEAD + "hosts:\n" + "".join(entry.format(i=i) for i in range(n))
                    + f"defaults:\n  sysctl: {{big: &big {big}, more: [{', '.join(['*big'] * k)}]}}\n")
            path = write(tmp_path, text, f"after-{n}-{k}.yaml")
            try:
                yamlfast.load_file(path)
                full_ok = True
            except Exception:
                full_ok = False
            fleet = model.load(path)
            if fleet.split is None:   # the skeleton alone is over its bound: serial read
                assert not full_ok
                seen.add("skeleton")
                continue
            infos = [model.read_items(fleet, s, min(n, s + 4))[1] for s in range(0, n, 4)]
            assert model.verify(fleet, infos) == full_ok, (n, k)
            seen.add(full_ok)
    assert {True, False} <= seen


# --------------------------------------------------- messages of bad fleets
BAD = {
    **POST_FORK,
    "bad host": HEAD + "defaults:\n  platform: {os: flatcar}\nhosts:\n" + "".join(
        f"  - name: h{i}\n    profile:\n      bridges: [{{name: br0, addresses: [\"10.0.{i}.1/24\"], mtu: {'toobig' if i == 1 else 1500}}}]\n"
        for i in range(3)),
    "bad default": HEAD + "defaults:\n  platform: {os: flatcar}\n  uplinks: [{name: lan, match: {name: eth*}, mtu: 99999999}]\n"
                   "hosts:\n  - name: a\n  - name: b\n    profile:\n      uplinks: [{name: lan, mtu: 1500}]\n",
    "empty hosts": HEAD + "hosts: []\n",
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("how", ["render", "keep-going", "validate", "no-out", "out-exists"])
def test_bad_fleet_messages_unchanged(tmp_path, capsys, case, how):
    path = write(tmp_path, BAD[case])
    results = []
    for split in (False, True):
        out = tmp_path / f"out-{split}"
        if how == "out-exists":
            out.mkdir()
            (out / "keep").write_text("x")
        args = {"render": ["render", str(path), "--format", "ignition", "--out", str(out)],
                "keep-going": ["render", str(path), "--format", "tree", "--out", str(out), "--keep-going"],
                "validate": ["validate", str(path)],
                "no-out": ["render", str(path), "--format", "ignition"],
                "out-exists": ["render", str(path), "--format", "ignition", "--out", str(out)]}[how]
        code, err = cli(args, split, capsys)
        results.append((code, err.replace(str(out), "OUT"), tree_files(out) if out.exists() else None))
    assert results[0] == results[1]
