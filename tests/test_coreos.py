"""``--format coreos-cloud-config`` (legacy Container Linux cloud-config).

There is no coreos-cloudinit binary to run (Container Linux is end-of-life and no
package ships it). What stands in for it here, written from coreos-cloudinit's source
(github.com/coreos/coreos-cloudinit; the functions named in the comments) and
independent of the emitter's code:

- ``ccinit_validate``: its ``config/validate`` rules (header check, key whitelist and
  type compatibility from the ``config`` structs, ``valid:`` patterns, base64 decoding,
  no ``/usr``, no ``write_files`` under ``coreos``), with its report's levels.
- ``ccinit_apply``: what ``initialize.Apply`` + ``processUnits`` do to a filesystem
  (``system.WriteFile``, ``Unit.Destination``, ``DropInDestination``, ``MaskUnit``) and
  which systemd calls it makes (enable, daemon-reload, networkd restart, unit commands).

The YAML is read with libyaml (``yaml.CSafeLoader``; go-yaml, which coreos-cloudinit uses,
is a Go port of libyaml) and PyYAML's pure-Python parser, which must agree. The files
``ccinit_apply`` writes are compared byte for byte (and mode for mode) with
``--format tree``. Not proven: go-yaml's own parsing, and systemd's side of the calls
(EnableUnitFiles, the restarts) on a real Container Linux host. Left out because the
format does not carry them: what coreos-cloudinit writes on its own (``/etc/environment``
from the datasource's metadata, ``coreos.update``/``etcd`` files).
"""
import base64
import os
import posixpath
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

import netharden
from netharden.cli import main
from netharden.emitters import coreos
from netharden.emitters._systemd import is_vendor_enablement
from netharden.emitters.tree import fill
from netharden.plan_model import Action, File, Link, Plan, Unit
from netharden.problems import UsageError
from helpers import EXAMPLES, ROOT, netharden_plan

AWKWARD_PROFILE = ROOT / "tests" / "data" / "awkward.yaml"


# --- coreos-cloudinit's validator (config/validate), re-implemented -----------------------

# config/config.go CloudConfig / CoreOS, config/unit.go Unit + UnitDropIn, config/file.go
# File: the yaml tag names and Go kinds. Structs we never emit are OPAQUE: meeting one
# fails the check (it would need its own model).
OPAQUE = "opaque"
UNIT = {"name": "string", "mask": "bool", "enable": "bool", "runtime": "bool", "content": "string",
        "command": "string", "drop_ins": ["slice", {"name": "string", "content": "string"}]}
FILE = {"encoding": "string", "content": "string", "owner": "string", "path": "string", "permissions": "string"}
CORE_OS = {"etcd": OPAQUE, "etcd2": OPAQUE, "flannel": OPAQUE, "fleet": OPAQUE, "locksmith": OPAQUE,
           "oem": OPAQUE, "update": OPAQUE, "units": ["slice", UNIT]}
CLOUD_CONFIG = {"ssh_authorized_keys": ["slice", "string"], "coreos": CORE_OS, "write_files": ["slice", FILE],
                "hostname": "string", "users": ["slice", OPAQUE], "manage_etc_hosts": "string"}
# `valid:` tags: config/unit.go Command; config/file.go Encoding, RawFilePermissions
VALID = {("units", "command"): r"^(start|stop|restart|reload|try-restart|reload-or-restart|reload-or-try-restart)$",
         ("write_files", "encoding"): r"^(base64|b64|gz|gzip|gz\+base64|gzip\+base64|gz\+b64|gzip\+b64)$",
         ("write_files", "permissions"): r"^0?[0-7]{3,4}$"}


def _kind(value) -> str:
    """The reflect.Kind go-yaml gives a value decoded into interface{} (validate/node.go)."""
    if isinstance(value, bool):
        return "bool"
    return {str: "string", int: "int", float: "float64", dict: "map", list: "slice"}.get(type(value), "invalid")


def _compatible(n: str, g: str) -> bool:
    """validate/rules.go isCompatible."""
    if g == "string":
        return n in ("string", "int", "float64", "bool")
    if g == "struct":
        return n in ("struct", "map")
    if g == "float64":
        return n in ("float64", "int")
    return n == g


def _go_b64_ok(text: str) -> bool:
    """Go's base64.StdEncoding.DecodeString (config.DecodeContent for b64): padding
    required, \\r and \\n ignored, nothing else."""
    try:
        base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
        return True
    except ValueError:
        return False


def ccinit_validate(text: str) -> list[str]:
    """coreos-cloudinit's ``-validate`` report: every entry makes it exit 1."""
    report = []
    # config/config.go IsCloudConfig: the first line, trailing whitespace trimmed
    if text.split("\n", 1)[0].rstrip() != "#cloud-config":
        return ['error: must be "#cloud-config" or begin with "#!"']
    doc = yaml.load(text, Loader=yaml.CSafeLoader)
    if not isinstance(doc, dict):
        return ["error: not a mapping"]

    def normalize(node, where):   # validate.go normalizeNodeNames: '-' -> '_', reported as info
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if "-" in str(k):
                    report.append(f"info: {where}.{k} uses '-' instead of '_'")
                out[str(k).replace("-", "_")] = normalize(v, f"{where}.{k}")
            return out
        if isinstance(node, list):
            return [normalize(v, f"{where}[]") for v in node]
        return node

    doc = normalize(doc, "")

    def structure(node, spec, where, parent=None, key=None):   # rules.go checkStructure + checkValidity
        if spec == OPAQUE:
            report.append(f"error: {where}: not modelled by this test")
            return
        g = "struct" if isinstance(spec, dict) else "slice" if isinstance(spec, list) else spec
        if not _compatible(_kind(node), g):
            report.append(f"warning: incorrect type for {where} (want {g})")
            return
        pattern = VALID.get((parent, key))
        if pattern and node not in ("", False, 0) and not re.search(pattern, str(node)):
            report.append(f"error: invalid value {node!r} at {where}")
        if g == "struct":
            for k, v in node.items():
                if k in spec:
                    structure(v, spec[k], f"{where}.{k}", parent=where.rsplit(".", 1)[-1].rstrip("[]"), key=k)
                else:
                    report.append(f"warning: unrecognized key {k!r} at {where}")
        elif g == "slice":
            for v in node:
                structure(v, spec[1], f"{where}[]", parent, key)

    structure(doc, CLOUD_CONFIG, "")
    for f in doc.get("write_files") or []:
        if isinstance(f, dict):
            if f.get("encoding") not in (None, "b64", "base64"):
                report.append(f"error: encoding {f['encoding']!r} not modelled by this test")
            elif f.get("encoding") and not _go_b64_ok(str(f.get("content", ""))):
                report.append(f"error: content cannot be decoded as {f['encoding']!r}")     # checkEncoding
            if str(posixpath.dirname(str(f.get("path", "")))).startswith("/usr"):         # checkWriteFiles
                report.append("error: file cannot be written to a read-only filesystem")
    if isinstance(doc.get("coreos"), dict) and "write_files" in doc["coreos"]:         # checkWriteFilesUnderCoreos
        report.append("info: write_files doesn't belong under coreos")
    return report


# --- what coreos-cloudinit does with it (initialize/config.go), re-implemented ------------

def _group(name: str) -> str:
    """config/unit.go + system/unit.go Group(): by the extension after the last '.'."""
    return "network" if posixpath.splitext(name)[1].lstrip(".") in ("network", "netdev", "link") else "system"


def _destination(root: Path, unit: dict) -> Path:
    """system/unit.go Destination(): ROOT/{etc|run}/systemd/{network|system}/NAME."""
    return root / ("run" if unit.get("runtime") else "etc") / "systemd" / _group(unit["name"]) / unit["name"]


def _write_file(root: Path, path: str, content: bytes, perm: int) -> None:
    """system/file.go WriteFile: EnsureDirectoryExists (MkdirAll 0755), write, chmod perm,
    rename into place."""
    full = root / path.lstrip("/")
    full.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = full.parent / ".cloudinit-temp"
    tmp.write_bytes(content)
    os.chmod(tmp, perm)
    os.replace(tmp, full)


def ccinit_apply(text: str, root: Path) -> dict:
    """Apply the cloud-config's write_files and coreos.units to ``root`` the way
    coreos-cloudinit does; return the systemd calls it would make."""
    doc = yaml.load(text, Loader=yaml.CSafeLoader)
    # Apply(): write_files first (system.WriteFile with env.Root())
    for f in doc.get("write_files") or []:
        content = f.get("content", "")
        data = base64.b64decode(content) if f.get("encoding") in ("b64", "base64") else content.encode("utf-8")
        perm = int(f["permissions"], 8) if f.get("permissions") else 0o644      # File.Permissions()
        assert f.get("owner") in (None, "root:root")   # chown root:root: what the tree has
        _write_file(root, f["path"], data, perm)
    # processUnits()
    calls = {"enable": [], "daemon_reload": False, "restart_networkd": False, "commands": []}
    for unit in (doc.get("coreos") or {}).get("units") or []:
        if not unit.get("name"):
            continue
        dest = _destination(root, unit)
        if unit.get("content", "") != "":                                        # PlaceUnit, 0644
            _write_file(root, "/" + str(dest.relative_to(root)), unit["content"].encode("utf-8"), 0o644)
            calls["daemon_reload"] = True
        for dropin in unit.get("drop_ins") or []:                                # PlaceUnitDropIn
            if dropin.get("name") and dropin.get("content", "") != "":
                path = dest.parent / f"{unit['name']}.d" / dropin["name"]
                _write_file(root, "/" + str(path.relative_to(root)), dropin["content"].encode("utf-8"), 0o644)
                calls["daemon_reload"] = True
        if unit.get("mask"):                                                     # MaskUnit
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.symlink("/dev/null", dest)
        elif unit.get("runtime"):                                                # UnmaskUnit
            if dest.is_symlink() and os.readlink(dest) == "/dev/null":
                dest.unlink()
        if unit.get("enable") and _group(unit["name"]) != "network":             # EnableUnitFile
            calls["enable"].append(unit["name"])
        if _group(unit["name"]) == "network":
            calls["restart_networkd"] = True
        elif unit.get("command"):
            calls["commands"].append((unit["name"], unit["command"]))
    return calls


# --- helpers -------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _umask():
    """coreos-cloudinit runs as a systemd service: umask 0022 (MkdirAll(dir, 0755))."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def snapshot(root: Path) -> dict:
    """Relative path -> (kind, mode, bytes or link target) of everything below root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st_ = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", oct(st_.st_mode & 0o7777))
            else:
                out[rel] = ("file", oct(st_.st_mode & 0o7777), p.read_bytes())
    return out


def tree_of(plan: Plan, root: Path) -> dict:
    root.mkdir()
    fill(plan, root)
    return snapshot(root)


def coreos_plan(path: Path) -> Plan:
    """The example's Plan; one for a Debian/Ubuntu host (helpers under /usr, which
    coreos-cloudinit refuses) is rendered for platform.os coreos instead."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data.get("platform", {}).get("os") not in ("coreos", "flatcar"):
        data["platform"] = {"os": "coreos"}
    return netharden_plan(data)


def expected_calls(plan: Plan) -> tuple[list[tuple[str, str]], list[tuple[str, ...]]]:
    """(unit commands coreos-cloudinit must run, disruptive actions left pending), from the
    Plan's actions in order: daemon-reload and the networkd reload are coreos-cloudinit's
    own (asserted separately), sysctl -p is systemd-sysctl's restart."""
    commands, pending = [], []
    for a in plan.sorted().actions:
        if a.argv == ("networkctl", "reload") or "systemd-networkd.service" in a.argv:
            continue    # coreos-cloudinit's own restart of networkd
        if a.disruptive:
            pending.append(a.argv)
        elif a.argv == ("systemctl", "daemon-reload"):
            continue
        elif a.argv[:2] == ("sysctl", "-p"):
            commands.append(("systemd-sysctl.service", "restart"))
        else:
            assert a.argv[0] == "systemctl" and len(a.argv) == 3
            commands.append((a.argv[2], a.argv[1]))
    return commands, pending


def round_trip(plan: Plan, tmp_path: Path) -> tuple[str, dict]:
    text = coreos.render(plan).decode("utf-8")
    assert text.startswith("#cloud-config\n")
    pure, libyaml = yaml.load(text, Loader=yaml.SafeLoader), yaml.load(text, Loader=yaml.CSafeLoader)
    assert pure == libyaml
    assert isinstance(libyaml["coreos"], dict) and isinstance(libyaml["coreos"]["units"], list)
    assert ccinit_validate(text) == []
    calls = ccinit_apply(text, tmp_path / "ccinit")
    tree = tree_of(plan, tmp_path / "tree")
    # the enablement symlinks of a vendor unit (systemd-networkd.service's) are made by
    # coreos-cloudinit's EnableUnitFiles of that unit, not written: the emulation records the call
    enabling = {rel: entry for rel, entry in tree.items()
                if entry[0] == "link" and is_vendor_enablement("/" + rel, entry[1])}
    if enabling:
        assert "systemd-networkd.service" in calls["enable"]
        for rel in enabling:
            del tree[rel]
        for rel in sorted((r for r, e in tree.items() if e[0] == "dir"), key=len, reverse=True):
            if any(e.startswith(rel + "/") for e in enabling) and not any(r.startswith(rel + "/") for r in tree):
                del tree[rel]
    assert snapshot(tmp_path / "ccinit") == tree
    return text, calls


# --- examples ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_round_trips_to_the_tree(path, tmp_path):
    plan = coreos_plan(path)
    text, calls = round_trip(plan, tmp_path)
    assert sorted(calls["enable"]) == sorted(u.name for u in plan.units if u.enabled)
    assert calls["daemon_reload"] and calls["restart_networkd"]
    commands, pending = expected_calls(plan)
    assert calls["commands"] == commands
    comment = text.split("\ncoreos:\n", 1)[0]
    assert re.findall(r"\n#   (.*)", comment) == [" ".join(argv) for argv in pending]
    assert "# coreos-cloudinit restarts systemd-networkd itself, at every run" in comment
    assert coreos.render(plan) == coreos.render(plan)        # deterministic


@pytest.mark.parametrize("path", [p for p in EXAMPLES if "os: debian" in p.read_text() or "os: ubuntu" in p.read_text()],
                         ids=lambda p: p.name)
def test_examples_for_debian_hosts_are_refused_with_the_reason(path, tmp_path, capsys):
    out = tmp_path / "user-data"
    assert main(["render", str(path), "--format", "coreos-cloud-config", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "/usr is read-only on Container Linux" in err and "platform.os is coreos or flatcar" in err
    assert "Traceback" not in err and not out.exists()


def test_full_host_layout(tmp_path):
    plan = netharden.plan(netharden.load(ROOT / "examples" / "full-host.yaml"))
    text = coreos.render(plan).decode()
    doc = yaml.load(text, Loader=yaml.CSafeLoader)
    units = {u["name"]: u for u in doc["coreos"]["units"]}
    assert units["20-netharden-uplink-lan.network"]["runtime"] is False
    assert "content" in units["20-netharden-uplink-lan.network"]
    assert units["50-docker.network"] == {"name": "50-docker.network", "runtime": False, "mask": True}
    assert units["netharden-quarantine.path"]["enable"] is True and units["netharden-quarantine.path"]["command"] == "start"
    assert [d["name"] for d in units["docker.service"]["drop_ins"]] == ["50-netharden.conf"]
    assert "command" not in units["docker.service"]                     # its restart is disruptive
    files = {f["path"]: f for f in doc["write_files"]}
    assert files["/opt/netharden/bin/netharden-quarantine"]["permissions"] == "0755"
    assert files["/etc/docker/daemon.json"]["owner"] == "root:root"
    assert not any(p.startswith(("/etc/systemd/network/", "/etc/systemd/system/")) for p in files)
    assert "\n    - name: \"20-netharden-uplink-lan.network\"\n      runtime: false\n      content: |\n" in text


def test_cli_prints_the_cloud_config(capsys):
    full = ROOT / "examples" / "full-host.yaml"
    assert main(["render", str(full), "--format", "coreos-cloud-config"]) == 0
    assert capsys.readouterr().out.encode("utf-8") == coreos.render(netharden.plan(netharden.load(full)))


# --- awkward contents ----------------------------------------------------------------------

AWKWARD = {
    "quotes": "say \"hi\" and 'bye' \\ back\\slash\n",
    "percent": "100% %s %% %n ${HOME} $(id) `x` # not a comment: value\n",
    "unicode": "Ünïcödé – 😀 end\n",
    "linebreaks": "nel \u0085 ls \u2028 ps \u2029 bom \ufeff\n",
    "trailing": "trailing spaces   \nand tab\t\n",
    "no-final-newline": "no final newline",
    "crlf": "[Unit]\r\nDescription=windows\r\n",
    "tabs": "[Service]\n\tExecStart=/bin/true\n",
    "leading-space": "  indented first line\nsecond\n",
    "leading-newlines": "\n\nafter two empty lines\n",
    "many-final-newlines": "text\n\n\n",
    "only-newlines": "\n\n",
    "yaml-lookalikes": "--- \n...\n- item\nkey: value\n|\n>\n&anchor *alias !tag\n",
    "controls": "nul \x00 bell \x07 esc \x1b del \x7f c1 \x9b\n",
}


def awkward_plan() -> Plan:
    plan = Plan("awkward \"01\" – ü", 241)
    for name, content in sorted(AWKWARD.items()):
        plan.add(File(f"/etc/systemd/network/10-{name}.network", content))
        plan.add(File(f"/etc/systemd/system/{name}.service", content))
        plan.add(File(f"/etc/systemd/system/{name}.service.d/50-{name}.conf", content))
        plan.add(File(f"/opt/awkward/{name}.sh", content, 0o755))
        plan.add(File(f"/etc/awkward/{name}", content, 0o600))
        plan.add(Unit(f"{name}.service", enabled=True))
    for empty in ("/etc/systemd/network/20-empty.network", "/etc/systemd/system/empty.service",
                  "/etc/systemd/system/docker.service.d/empty.conf", "/etc/awkward/empty"):
        plan.add(File(empty, ""))
    plan.add(File("/etc/systemd/network/30-private.network", "[Match]\nName=x\n", 0o600))
    plan.add(Link("/etc/systemd/network/50-docker.network", "/dev/null"))
    plan.add(Link("/etc/systemd/system/vendor.service", "/dev/null"))
    plan.add(Action("systemd-daemon-reload", ("systemctl", "daemon-reload"), phase=10))
    plan.add(Action("sysctl-load", ("sysctl", "-p", "/etc/sysctl.d/90-netharden.conf"), phase=20))
    plan.add(Action("start-quotes", ("systemctl", "start", "quotes.service"), phase=30))
    plan.add(Action("networkd-reload", ("systemctl", "restart", "systemd-networkd.service"), phase=40))
    plan.add(Action("restart-tabs", ("systemctl", "try-restart", "tabs.service"), phase=50, disruptive=True))
    plan.note("note with \"quotes\", 100% and a\nnewline")
    return plan


def test_awkward_contents_survive_every_path(tmp_path):
    plan = awkward_plan()
    text, calls = round_trip(plan, tmp_path)
    doc = yaml.load(text, Loader=yaml.CSafeLoader)
    units = {u["name"]: u for u in doc["coreos"]["units"]}
    files = {f["path"]: f for f in doc["write_files"]}
    for name, content in AWKWARD.items():
        assert units[f"10-{name}.network"]["content"] == content
        assert units[f"{name}.service"]["content"] == content
        assert units[f"{name}.service"]["drop_ins"] == [{"name": f"50-{name}.conf", "content": content}]
    # the way each one was written: literal blocks only for plain text, else quoted / base64
    assert "\n    - name: \"10-tabs.network\"\n      runtime: false\n      content: |\n        [Service]\n" \
           "        \tExecStart=/bin/true\n" in text
    assert "content: \"[Unit]\\r\\nDescription=windows\\r\\n\"" in text
    assert files["/etc/awkward/crlf"]["encoding"] == "b64" and "encoding" not in files["/etc/awkward/tabs"]
    assert files["/etc/awkward/empty"] == {"path": "/etc/awkward/empty", "permissions": "0644", "owner": "root:root",
                                           "content": ""}
    # empty unit files and drop-ins stay write_files (processUnits skips empty content)
    assert {"/etc/systemd/network/20-empty.network", "/etc/systemd/system/empty.service",
            "/etc/systemd/system/docker.service.d/empty.conf", "/etc/systemd/network/30-private.network"} <= set(files)
    assert units["vendor.service"] == {"name": "vendor.service", "runtime": False, "mask": True}
    assert calls["commands"] == [("systemd-sysctl.service", "restart"), ("quotes.service", "start")]
    assert "\n#   systemctl try-restart tabs.service\n" in text
    assert "# note: \"note with \\\"quotes\\\", 100% and a\\nnewline\"\n" in text
    assert text.split("\n")[1] == "# Generated by netharden; do not edit: change the profile and render again."
    assert text.split("\n")[2] == '# Host awkward "01" – ü (systemd 241) for coreos-cloudinit.'


def test_awkward_profile_round_trips(tmp_path):
    plan = coreos_plan(AWKWARD_PROFILE)
    round_trip(plan, tmp_path)
    assert "percent=100%25 %%" in next(f.content for f in plan.files if f.path == "/etc/docker/daemon.json")


printable_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=printable_text, dropin=printable_text, other=printable_text)
def test_any_text_survives_as_unit_dropin_and_file(unit, dropin, other):
    plan = Plan("h", 252, files=[File("/etc/systemd/system/x.service", unit),
                                 File("/etc/systemd/system/x.service.d/10-x.conf", dropin),
                                 File("/etc/systemd/network/10-x.network", other),
                                 File("/etc/x", other, 0o600)])
    text = coreos.render(plan).decode("utf-8")
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        doc = yaml.load(text, Loader=loader)
        units = {u["name"]: u for u in doc["coreos"]["units"]}
        files = {f["path"]: f for f in doc["write_files"]}
        got = {}
        for name, path in (("x.service", "/etc/systemd/system/x.service"), ("10-x.network", "/etc/systemd/network/10-x.network")):
            got[path] = units[name]["content"] if name in units and "content" in units[name] else files[path]["content"]
        dropins = units.get("x.service", {}).get("drop_ins", [])
        got["/etc/systemd/system/x.service.d/10-x.conf"] = dropins[0]["content"] if dropins else \
            files["/etc/systemd/system/x.service.d/10-x.conf"]["content"]
        f = files["/etc/x"]
        got["/etc/x"] = base64.b64decode(f["content"]).decode("utf-8") if f.get("encoding") else f["content"]
        assert got == {p.path: p.content for p in plan.files}
    assert ccinit_validate(text) == []


# --- the stand-ins can fail ----------------------------------------------------------------

@pytest.mark.parametrize("edit, entry", [
    (lambda t: t.replace("#cloud-config\n", "# cloud-config\n", 1), "must be \"#cloud-config\""),
    (lambda t: t.replace("      runtime: false\n", "      runtim: false\n", 1), "unrecognized key 'runtim'"),
    (lambda t: t.replace("      runtime: false\n", "      runtime: \"false\"\n", 1), "incorrect type"),
    (lambda t: t.replace("command: \"start\"", "command: \"begin\"", 1), "invalid value 'begin'"),
    (lambda t: t.replace("permissions: \"0755\"", "permissions: \"755x\"", 1), "invalid value '755x'"),
    (lambda t: t.replace("encoding: \"b64\"\n    content: \"", "encoding: \"b64\"\n    content: \"!", 1), "cannot be decoded"),
    (lambda t: t.replace("path: \"/opt/", "path: \"/usr/", 1), "read-only filesystem"),
    (lambda t: t.replace("drop_ins:", "drop-ins:", 1), "uses '-' instead of '_'"),
    (lambda t: t.replace("coreos:\n", "coreos:\n  write_files: []\n", 1), "unrecognized key 'write_files'"),
])
def test_the_validator_stand_in_reports_what_coreos_cloudinit_would(edit, entry):
    text = coreos.render(awkward_plan()).decode()
    edited = edit(text)
    assert edited != text
    report = ccinit_validate(edited)
    assert any(entry in line for line in report), report


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("      runtime: false\n      content:", "      runtime: true\n      content:", 1),  # -> /run
    lambda t: t.replace("permissions: \"0755\"", "permissions: \"0750\"", 1),
    lambda t: t.replace("[Match]", "[Match] ", 1),
    lambda t: t.replace("      mask: true\n", "", 1),
])
def test_the_tree_comparison_catches_a_changed_output(edit, tmp_path):
    plan = netharden.plan(netharden.load(ROOT / "examples" / "full-host.yaml"))
    text = edit(coreos.render(plan).decode())
    ccinit_apply(text, tmp_path / "ccinit")
    assert snapshot(tmp_path / "ccinit") != tree_of(plan, tmp_path / "tree")


# --- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("entries, message", [
    ([Link("/etc/foo", "/etc/bar")], "can only make unit masks"),
    ([Link("/etc/systemd/network/x.network", "/etc/other")], "can only make unit masks"),
    ([Unit("x.service", enabled=False)], "cannot disable"),
    ([File("/opt/x", "", 0o4755)], "bits above 0777"),
    ([File("/usr/local/bin/x", "")], "/usr is read-only"),
    ([File("/etc/systemd/system/x.service", "[Unit]\n"), Unit("x.service", masked=True)], "masked and written"),
    ([File("/etc/systemd/network/x.network", "[Match]\n"), Link("/etc/systemd/system/x.network.d", "/dev/null")],
     "can only make unit masks"),
    ([Action("a", ("systemctl", "start", "x.service")), Action("b", ("systemctl", "stop", "x.service"))],
     "two commands"),
    ([Action("a", ("ip", "link", "del", "vx-1"))], "no coreos-cloudinit equivalent"),
    ([Action("a", ("sysctl", "-p", "/tmp/x.conf"))], "no coreos-cloudinit equivalent"),
    ([Action("a", ("systemctl", "daemon-reload"))], "no coreos-cloudinit equivalent"),   # nothing to reload for
    ([Action("a", ("networkctl", "reload"))], "no coreos-cloudinit equivalent"),         # no network unit
])
def test_plans_coreos_cloudinit_cannot_express_are_refused(entries, message):
    plan = Plan("h", 252)
    for entry in entries:
        plan.add(entry)
    with pytest.raises(UsageError, match=message):
        coreos.render(plan)


def test_a_masked_unit_is_masked_where_systemd_looks(tmp_path):
    plan = Plan("h", 252, units=[Unit("vendor.service", masked=True), Unit("other.service", enabled=True)])
    text = coreos.render(plan).decode()
    assert ccinit_validate(text) == []
    calls = ccinit_apply(text, tmp_path)
    assert os.readlink(tmp_path / "etc/systemd/system/vendor.service") == "/dev/null"
    assert calls["enable"] == ["other.service"] and not calls["daemon_reload"]


def test_a_plan_without_units_or_files_is_still_a_cloud_config():
    text = coreos.render(Plan("h", 252)).decode()
    assert text.startswith("#cloud-config\n")
    assert yaml.load(text, Loader=yaml.CSafeLoader) == {"coreos": {"units": []}, "write_files": []}
    assert ccinit_validate(text) == []
