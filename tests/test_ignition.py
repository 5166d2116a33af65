"""--format ignition: Debian's real ignition-validate (Ignition 2.14.0) accepts every
output with no warnings; the layout follows the Plan exactly; data URLs decode (with the
standard library, not the emitter's code) to the Plan's bytes; output is compact and
deterministic. Applying the config with the real Ignition binary: test_ignition_apply.py.
"""
import base64
import json
import re
import subprocess
import urllib.parse

import pytest

import netharden
from netharden.cli import main
from netharden.emitters import _dataurl
from netharden.plan_model import PHASE_SYSTEMD, Action, File, Link, Plan, Unit
from helpers import PROFILES, FULL_HOST, need

UNIT_DIR = "/etc/systemd/system"

# Contents that break naive encoders: quotes, backslashes, percent signs and '+', unicode
# (2- to 4-byte UTF-8), trailing spaces and tabs, CRLF, a lone CR, NUL and other controls,
# U+2028/U+2029/U+0085 (line breaks to some YAML readers), a leading BOM, no final newline.
AWKWARD = {
    "/etc/netharden/awkward/quotes.txt": (
        "single ' double \" back\\slash \\n not-a-newline %41 %%20 + plus & amp ? # hash\n", 0o644),
    "/etc/netharden/awkward/unicode.txt": ("grüße ☃ 漢字 😀 \u00a0nbsp \u2028ls\u2029ps\u0085nel\n", 0o644),
    "/etc/netharden/awkward/trailing-space.txt": ("trailing   \n\ttab\t\n  \n\n\n", 0o644),
    "/etc/netharden/awkward/crlf.txt": ("line one\r\nline two\r\nlone\rcr\r\n", 0o644),
    "/etc/netharden/awkward/controls.bin": ("nul\x00bell\x07esc\x1bdel\x7f\x01\x02\x1f", 0o600),
    "/etc/netharden/awkward/no-final-newline.txt": ("no newline at the end", 0o640),
    "/etc/netharden/awkward/empty": ("", 0o644),
    "/etc/netharden/awkward/bom.txt": ("\ufeffstarts with a BOM\n", 0o644),
    "/etc/netharden/awkward/leading-space.txt": ("  indented first line\nsecond\n", 0o644),
    "/etc/netharden/awkward/leading-newline.txt": ("\n\nafter two blank lines\n", 0o644),
    "/etc/netharden/awkward/yaml-ish.txt": ("--- \n...\nkey: value\n- item\n|\n> folded\n# comment\n", 0o644),
    "/etc/netharden/awkward/odd name+%20.txt": ("path with a space, a plus and %20\n", 0o644),
    "/opt/netharden/bin/awkward-script": ("#!/bin/sh\nprintf '%s\\n' \"$*\" | sed 's/\\\\/\\//g'\n", 0o755),
    "/etc/netharden/awkward/only-unreserved": ("ABCxyz019-._~", 0o644),
}

AWKWARD_UNIT = (
    "# Unicode: grüße ☃ 😀, quotes \"x\" 'y', percent %% and %n, a backslash \\\n"
    "[Unit]\nDescription=awkward \"unit\" with % and \\ and ümlaut   \n\n"
    "[Service]\nType=oneshot\nExecStart=/opt/netharden/bin/awkward-script 'a b' \"c\\\\d\" %%\n"
    "Environment=\"X=1 2\" Y=\\t\n\n[Install]\nWantedBy=multi-user.target\n")


def awkward_plan() -> Plan:
    """A Plan no renderer makes: awkward contents and modes, and every kind of systemd
    entry (unit with contents, drop-in only, disabled unit, masked unit with its mask link,
    empty unit file and drop-in, a unit file that is not 0644)."""
    plan = Plan(profile="awkward-host", systemd=252)
    for path, (content, mode) in AWKWARD.items():
        plan.add(File(path, content, mode))
    plan.add(File(f"{UNIT_DIR}/netharden-awkward.service", AWKWARD_UNIT))
    plan.add(File(f"{UNIT_DIR}/netharden-awkward.service.d/10-b.conf", "[Service]\nEnvironment=B=\"2 %% \\\\\"\n"))
    plan.add(File(f"{UNIT_DIR}/netharden-awkward.service.d/05-a.conf", "[Unit]\nDescription=drop-in ☃\n"))
    plan.add(File(f"{UNIT_DIR}/systemd-networkd.service.d/50-netharden.conf", "[Service]\nEnvironment=SYSTEMD_LOG_LEVEL=debug\n"))
    plan.add(File(f"{UNIT_DIR}/netharden-empty.service", ""))
    plan.add(File(f"{UNIT_DIR}/netharden-empty-dropin.service.d/50-empty.conf", ""))
    plan.add(File(f"{UNIT_DIR}/netharden-exec.service", "[Service]\nExecStart=/bin/true\n", 0o755))
    plan.add(Link("/etc/systemd/network/50-docker.network", "/dev/null"))
    plan.add(Link(f"{UNIT_DIR}/netharden-masked.service", "/dev/null"))
    plan.add(Unit("netharden-awkward.service", enabled=True))
    plan.add(Unit("netharden-disabled.timer", enabled=False))
    plan.add(Unit("netharden-masked.service", masked=True))
    plan.add(Action("daemon-reload", ("systemctl", "daemon-reload"), phase=PHASE_SYSTEMD))
    return plan


def example_plan(path):
    return netharden.plan(netharden.load(path))


PLANS = [pytest.param(p, id=p.name) for p in PROFILES] + [pytest.param("awkward", id="awkward")]


def get_plan(which):
    return awkward_plan() if which == "awkward" else example_plan(which)


def decode_data_url(url: str) -> bytes:
    """RFC 2397, independent of the emitter: media type and parameters before the comma."""
    assert url.startswith("data:")
    meta, _, data = url[5:].partition(",")
    if meta.endswith(";base64"):
        return base64.b64decode(data, validate=True)
    return urllib.parse.unquote_to_bytes(data)


def written(cfg: dict) -> dict:
    """What an Ignition config writes, path -> (mode, bytes) for files and ('->', target)
    for links, plus the unit enablement: name -> (enabled, mask)."""
    out: dict = {}
    for f in cfg.get("storage", {}).get("files", []):
        assert f["path"] not in out
        out[f["path"]] = (f["mode"], decode_data_url(f["contents"]["source"]))
    for x in cfg.get("storage", {}).get("links", []):
        assert x["path"] not in out
        out[x["path"]] = ("->", x["target"])
    states = {}
    for u in cfg.get("systemd", {}).get("units", []):
        if "contents" in u:
            assert f"{UNIT_DIR}/{u['name']}" not in out
            out[f"{UNIT_DIR}/{u['name']}"] = (0o644, u["contents"].encode())
        for d in u.get("dropins", []):
            assert f"{UNIT_DIR}/{u['name']}.d/{d['name']}" not in out
            out[f"{UNIT_DIR}/{u['name']}.d/{d['name']}"] = (0o644, d["contents"].encode())
        if u.get("mask"):
            assert "contents" not in u and f"{UNIT_DIR}/{u['name']}" not in out
            out[f"{UNIT_DIR}/{u['name']}"] = ("->", "/dev/null")
        if "enabled" in u or u.get("mask"):
            states[u["name"]] = (u.get("enabled"), u.get("mask", False))
    return {"paths": out, "units": states}


def expected(plan: Plan) -> dict:
    paths = {f.path: (f.mode, f.content.encode("utf-8")) for f in plan.files}
    paths.update({x.path: ("->", x.target) for x in plan.links})
    return {"paths": paths, "units": {u.name: (u.enabled, u.masked) for u in plan.units
                                      if u.enabled is not None or u.masked}}


def render(plan, **options) -> bytes:
    return netharden.emit(plan, "ignition", **options)


def validate(tmp_path, data: bytes, name="config.ign"):
    tool = need("ignition-validate", "Debian package ignition; scripts/install-system-deps.sh installs it")
    path = tmp_path / name
    path.write_bytes(data)
    return subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("which", PLANS)
def test_ignition_validate_accepts_without_warnings(which, tmp_path):
    result = validate(tmp_path, render(get_plan(which)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "" and result.stderr == "", "warnings: " + result.stdout + result.stderr


def test_ignition_validate_is_a_real_check(tmp_path):
    """The validator used above rejects a broken config and prints warnings while still
    exiting 0 (so the tests above check its output too). Ignition 2.14 does not yet
    check a unit file that is also in storage.files (newer releases reject it as "path
    conflicts with systemd unit or dropin"): test_config_writes_exactly_the_plan checks
    that no path is written twice."""
    cfg = json.loads(render(awkward_plan()))
    cfg["storage"]["files"].append(dict(cfg["storage"]["files"][0]))
    bad = validate(tmp_path, json.dumps(cfg).encode(), "duplicate.ign")
    assert bad.returncode != 0 and "duplicate entry defined" in bad.stdout + bad.stderr
    warn = {"ignition": {"version": "3.3.0"},
            "systemd": {"units": [{"name": "x.service", "enabled": True, "contents": "[Service]\nExecStart=/bin/true\n"}]}}
    warned = validate(tmp_path, json.dumps(warn).encode(), "warn.ign")
    assert warned.returncode == 0 and "has no install section" in warned.stdout + warned.stderr


@pytest.mark.parametrize("which", PLANS)
def test_config_writes_exactly_the_plan(which):
    plan = get_plan(which)
    cfg = json.loads(render(plan))
    assert cfg["ignition"] == {"version": "3.3.0"}
    assert written(cfg) == expected(plan)


@pytest.mark.parametrize("which", PLANS)
def test_compact_deterministic_json(which):
    plan = get_plan(which)
    data = render(plan)
    assert data == render(get_plan(which))
    text = data.decode("utf-8")
    assert text.endswith("}\n") and text.count("\n") == 1
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    # the Plan's order does not matter
    shuffled = Plan(plan.profile, plan.systemd, plan.files[::-1], plan.links[::-1], plan.units[::-1],
                    plan.actions[::-1], plan.notes)
    assert render(shuffled) == data


def test_entry_shapes():
    cfg = json.loads(render(awkward_plan()))
    files = {f["path"]: f for f in cfg["storage"]["files"]}
    for f in files.values():
        assert set(f) == {"path", "mode", "overwrite", "contents"} and f["overwrite"] is True
        assert isinstance(f["mode"], int) and set(f["contents"]) == {"source"}
    assert files["/opt/netharden/bin/awkward-script"]["mode"] == 0o755 == 493
    assert files["/etc/netharden/awkward/controls.bin"]["mode"] == 0o600
    assert cfg["storage"]["links"] == [
        {"path": "/etc/systemd/network/50-docker.network", "target": "/dev/null", "hard": False, "overwrite": True}]
    units = {u["name"]: u for u in cfg["systemd"]["units"]}
    assert [u["name"] for u in cfg["systemd"]["units"]] == sorted(units)
    assert units["netharden-awkward.service"]["contents"] == AWKWARD_UNIT
    assert units["netharden-awkward.service"]["enabled"] is True
    assert [d["name"] for d in units["netharden-awkward.service"]["dropins"]] == ["05-a.conf", "10-b.conf"]
    assert units["netharden-disabled.timer"] == {"name": "netharden-disabled.timer", "enabled": False}
    assert units["netharden-masked.service"] == {"name": "netharden-masked.service", "mask": True}
    assert set(units["systemd-networkd.service"]) == {"name", "dropins"}
    # Ignition skips empty units and drop-ins: they stay plain files; a 0755 "unit" too
    for path in (f"{UNIT_DIR}/netharden-empty.service", f"{UNIT_DIR}/netharden-empty-dropin.service.d/50-empty.conf",
                 f"{UNIT_DIR}/netharden-exec.service"):
        assert path in files
    assert "netharden-empty.service" not in units and "netharden-empty-dropin.service" not in units
    assert "actions" not in json.dumps(cfg)


def test_example_units_are_ignition_units():
    plan = example_plan(FULL_HOST)
    cfg = json.loads(render(plan))
    unit_paths = {f.path for f in plan.files if f.path.startswith(UNIT_DIR + "/")}
    assert unit_paths and not unit_paths & {f["path"] for f in cfg["storage"]["files"]}
    enabled = {u["name"] for u in cfg["systemd"]["units"] if u.get("enabled")}
    assert enabled == {u.name for u in plan.units if u.enabled}


# data URLs

def test_percent_encoding_of_every_byte():
    data = bytes(range(256))
    encoded = _dataurl.percent_encode(data)
    assert urllib.parse.unquote_to_bytes(encoded) == data
    assert re.fullmatch(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})*", encoded)
    kept = "".join(c for c in map(chr, range(128)) if _dataurl.percent_encode(c.encode()) == c)
    assert kept == "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"


@pytest.mark.parametrize("data", [b"", b"abc", b"a b", b"%", b"+", b"x" * 40, "ü".encode(), b"\x00\xff" * 9,
                                  b"[Unit]\nDescription=x\n"])
def test_shorter_data_url_wins(data):
    url = _dataurl.encode(data)
    plain = "data:," + _dataurl.percent_encode(data)
    b64 = "data:;base64," + base64.b64encode(data).decode()
    assert url == (b64 if len(b64) < len(plain) else plain)
    assert decode_data_url(url) == data


def test_awkward_contents_use_both_encodings():
    sources = [f["contents"]["source"] for f in json.loads(render(awkward_plan()))["storage"]["files"]]
    assert any(s.startswith("data:;base64,") for s in sources)
    assert "data:,ABCxyz019-._~" in sources and "data:," in sources


# spec 3.4.0

def _ignition_minor(tool) -> tuple[int, int]:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"(\d+)\.(\d+)\.\d+", out)
    assert m, out
    return int(m[1]), int(m[2])


@pytest.mark.parametrize("which", PLANS)
def test_spec_340_differs_only_in_version(which, tmp_path):
    plan = get_plan(which)
    v33, v34 = render(plan), render(plan, ignition_version="3.4.0")
    assert v34 == v33.replace(b'{"ignition":{"version":"3.3.0"}', b'{"ignition":{"version":"3.4.0"}', 1) != v33
    tool = need("ignition-validate", "Debian package ignition")
    if _ignition_minor(tool) >= (2, 15):  # 3.4.0 is stable from Ignition 2.15.0 on
        result = validate(tmp_path, v34)
        assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
        return
    # Ignition 2.14 knows the spec only as 3.4.0-experimental: it refuses 3.4.0 ...
    refused = validate(tmp_path, v34, "v34.ign")
    assert refused.returncode != 0 and "unsupported config version" in refused.stdout + refused.stderr
    # ... and accepts the same config under that name, with no warnings
    exp = validate(tmp_path, v34.replace(b'"3.4.0"', b'"3.4.0-experimental"', 1), "v34exp.ign")
    assert exp.returncode == 0 and exp.stdout + exp.stderr == "", exp.stdout + exp.stderr


# CLI

def test_cli_writes_ignition_to_stdout(capsysbinary):
    assert main(["render", str(FULL_HOST), "--format", "ignition"]) == 0
    out = capsysbinary.readouterr().out
    assert out == render(example_plan(FULL_HOST))
    assert main(["render", str(FULL_HOST), "--format", "ignition", "--ignition-version", "3.4.0"]) == 0
    assert json.loads(capsysbinary.readouterr().out)["ignition"]["version"] == "3.4.0"


def test_cli_out_file(tmp_path, capsys):
    out = tmp_path / "host.ign"
    assert main(["render", str(FULL_HOST), "--format", "ignition", "--out", str(out)]) == 0
    assert out.read_bytes() == render(example_plan(FULL_HOST))
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_cli_usage_errors(capsys):
    assert main(["render", str(FULL_HOST), "--format", "ignition", "--variant", "fcos"]) == 2
    err = capsys.readouterr().err
    assert "--variant does not apply to --format ignition" in err and "Traceback" not in err
    assert main(["render", str(FULL_HOST), "--format", "ignition", "--ignition-version", "3.2.0"]) == 2
    err = capsys.readouterr().err
    assert "--ignition-version '3.2.0' is not one of: 3.3.0, 3.4.0" in err
