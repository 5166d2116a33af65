"""``--format cloud-config``: the bytes, their round trip through the YAML loader cloud-init
uses (PyYAML, YAML 1.1) back to exactly the ``--format tree`` files, and cloud-init's own
``cloud-init schema`` on every output. Applying it with the real cloud-init:
tests/test_cloudconfig_apply.py."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import netharden
from netharden.emitters import cloudconfig, emit, tree
from netharden.plan_model import Action, File, Link, Plan, Unit
from helpers import PROFILES, FULL_HOST, ROOT, require

CLOUD_INIT = "/usr/bin/cloud-init"   # the Debian package, on the system python3 (not the venv)
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

# Contents that a naive YAML writer breaks: every one must come back byte for byte.
AWKWARD_FILES: dict[str, tuple[str, int]] = {
    "/etc/netharden/quotes.conf": ("single ' double \" backslash \\ percent %s %% %(x)s {{ jinja }} $HOME `cmd`\n", 0o644),
    "/etc/netharden/unicode.txt": ("grüße 🚀 ☃ — ünïcödé ﬁ\n", 0o644),
    "/etc/netharden/trailing-spaces": ("a  \nb\t\nc\n", 0o644),
    "/etc/netharden/no-final-newline": ("no final newline", 0o644),
    "/etc/netharden/crlf.ini": ("[A]\r\nKey=1\r\n", 0o644),
    "/etc/netharden/tabs": ("\tstarts with a tab\nx\ty\n", 0o644),
    "/etc/netharden/empty": ("", 0o644),
    "/etc/netharden/only-newline": ("\n", 0o644),
    "/etc/netharden/two-final-newlines": ("x\n\n", 0o644),
    "/etc/netharden/leading-spaces": ("  indented first line\nnext\n", 0o644),
    "/etc/netharden/blank-lines": ("\n\nmiddle\n\n\nend\n", 0o644),
    "/etc/netharden/yaml-looking": ("#cloud-config\n---\n...\n- [a, b]\nkey: value # not a comment\n'q'\n|\n", 0o644),
    "/etc/netharden/controls": ("bell\a nul\0 esc\x1b del\x7f nel\x85 ls\u2028 bom\ufeff\n", 0o600),
    "/etc/netharden/it's a \"path\" ü.conf": ("x\n", 0o644),
    "/usr/local/libexec/netharden/nh-cc-test": ("#!/bin/sh\nprintf '%s\\n' \"$@\"\n", 0o755),
    "/etc/systemd/system/nh-cc-test.service": (
        "[Unit]\nDescription=netharden cloud-config test unit\n\n[Service]\nType=oneshot\n"
        "ExecStart=/usr/local/libexec/netharden/nh-cc-test\n\n[Install]\nWantedBy=multi-user.target\n", 0o644),
    "/etc/systemd/network/10-nh-cc-test.network": ("[Match]\nName=nhcc0\n", 0o644),
}
AWKWARD_LINKS = {
    "/etc/systemd/network/50-nh-cc-vendor.network": "/dev/null",      # parent written by write_files
    "/etc/netharden/masks/it's masked.network": "/dev/null",          # parent only made by runcmd
}
# Every argument must reach the command as it is (cloud-init single-quotes list items).
AWKWARD_ARGV = ("it's", 'say "hi"', "$HOME", "back\\slash", "100% done", "ü 🚀", "", "a\tb", "*")


def awkward_plan() -> Plan:
    plan = Plan(profile="host-'ä' \"b\"", systemd=252)
    for path, (content, mode) in AWKWARD_FILES.items():
        plan.add(File(path, content, mode))
    for path, target in AWKWARD_LINKS.items():
        plan.add(Link(path, target))
    plan.add(Unit("nh-cc-test.service", enabled=True))
    plan.add(Unit("nh-cc-masked.service", masked=True))
    plan.add(Action("reload", ("systemctl", "daemon-reload"), phase=10))
    plan.add(Action("argv", ("sh", "-c", 'printf "%s\\n" "$@" > /run/netharden-test/argv', "sh", *AWKWARD_ARGV), phase=30))
    plan.add(Action("restart", ("systemctl", "try-restart", "nh-cc-test.service"), why="picks up the new file",
                    phase=50, disruptive=True))
    return plan


def example_plan(path: Path) -> Plan:
    return netharden.plan(netharden.load(path))


def decode(data: bytes) -> dict:
    """What cloud-init gets out of the config: {files: path -> (bytes, mode, owner), runcmd, header}."""
    doc = yaml.safe_load(data)
    files = {}
    for entry in doc.get("write_files", []):
        assert set(entry) <= {"path", "owner", "permissions", "encoding", "content"}, entry
        assert isinstance(entry["permissions"], str), entry   # quoted octal, never an int
        content = entry.get("content", "")
        raw = base64.b64decode(content, validate=True) if entry.get("encoding") == "b64" else content.encode("utf-8")
        assert entry["path"] not in files
        files[entry["path"]] = (raw, int(entry["permissions"], 8), entry["owner"])
    header = []
    for line in data.decode("utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    return {"files": files, "runcmd": doc.get("runcmd", []), "header": header, "doc": doc}


def tree_of(plan: Plan, scratch: Path) -> tuple[dict[str, tuple[bytes, int]], dict[str, str]]:
    """What ``--format tree`` writes (into a new directory below ``scratch``):
    (path -> (bytes, mode), link path -> target)."""
    scratch.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=scratch))
    tree.fill(plan, root)
    files, links = {}, {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            path = "/" + str(p.relative_to(root))
            if p.is_symlink():
                links[path] = os.readlink(p)
            else:
                files[path] = (p.read_bytes(), p.stat().st_mode & 0o7777)
    return files, links


def check_against_tree(plan: Plan, data: bytes, root: Path) -> dict:
    got = decode(data)
    files, links = tree_of(plan, root)
    assert {p: (raw, mode) for p, (raw, mode, _) in got["files"].items()} == files
    assert {owner for _, _, owner in got["files"].values()} <= {"root:root"}
    cmds = got["runcmd"]
    assert all(isinstance(c, list) and all(isinstance(a, str) for a in c) for c in cmds), cmds
    parents = sorted({p.rsplit("/", 1)[0] for p in links})
    assert cmds[:len(parents)] == [["mkdir", "-p", d] for d in parents]
    made = cmds[len(parents):len(parents) + len(links)]
    assert made == [["ln", "-sfn", links[p], p] for p in sorted(links)]
    rest = cmds[len(parents) + len(links):]
    enabled = sorted(u.name for u in plan.units if u.enabled and not u.masked)
    masked = sorted(u.name for u in plan.units if u.masked)
    expected = ([["systemctl", "enable", *enabled]] if enabled else []) + ([["systemctl", "mask", *masked]] if masked else [])
    expected += [list(a.argv) for a in plan.sorted().actions if not a.disruptive]
    assert rest == expected
    header = "\n".join(got["header"])
    for action in plan.actions:
        assert (" ".join(action.argv) in header) == action.disruptive, action
    return got


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_example_round_trips_to_the_tree(path, tmp_path):
    plan = example_plan(path)
    data = emit(plan, "cloud-config")
    assert data == emit(example_plan(path), "cloud-config")          # same profile, same bytes
    assert data.startswith(b"#cloud-config\n")
    got = check_against_tree(plan, data, tmp_path)
    assert got["header"][1:3] == ["# Generated by netharden; do not edit: change the profile and render again.",
                                  f"# Host {plan.profile}."]
    assert all("encoding" not in e for e in got["doc"]["write_files"])   # plain text stays readable
    # the post-apply actions reload networkd and re-trigger the quarantine after write_files
    flat = [" ".join(c) for c in got["runcmd"]]
    if any(f.path.endswith("/netharden-quarantine.service") for f in plan.files):
        assert "systemctl start netharden-quarantine.service" in flat
        reload = [a for a in plan.actions if a.id == "networkd-reload"][0]
        assert flat.index("systemctl start netharden-quarantine.service") < flat.index(" ".join(reload.argv))


def test_full_host_output_shape():
    data = emit(example_plan(FULL_HOST), "cloud-config").decode()
    assert "- path: /etc/docker/daemon.json\n  owner: 'root:root'\n  permissions: '0644'\n  content: |\n    {\n" in data
    assert "  permissions: '0755'\n" in data
    assert "- [ln, -sfn, /dev/null, /etc/systemd/network/50-docker.network]\n" in data
    assert "#   systemctl try-restart docker.service  (apply a changed /etc/docker/daemon.json;" in data
    assert "- [systemctl, try-restart" not in data
    assert data.endswith("- [systemctl, start, docker-jenkins.service]\n")


def test_awkward_contents_survive(tmp_path):
    plan = awkward_plan()
    data = emit(plan, "cloud-config")
    got = check_against_tree(plan, data, tmp_path)
    assert {p: (raw.decode(), mode) for p, (raw, mode, _) in got["files"].items()} == AWKWARD_FILES
    entries = {e["path"]: e for e in got["doc"]["write_files"]}
    literal = {"/etc/netharden/quotes.conf", "/etc/netharden/unicode.txt", "/etc/netharden/tabs",
               "/etc/netharden/blank-lines", "/etc/netharden/yaml-looking", "/etc/netharden/it's a \"path\" ü.conf"}
    for path in literal:
        assert "encoding" not in entries[path], path
    for path in ("/etc/netharden/trailing-spaces", "/etc/netharden/no-final-newline", "/etc/netharden/crlf.ini",
                 "/etc/netharden/only-newline", "/etc/netharden/two-final-newlines",
                 "/etc/netharden/leading-spaces", "/etc/netharden/controls"):
        assert entries[path]["encoding"] == "b64", path
    assert "content: ''\n" in data.decode()                                     # the empty file
    assert got["runcmd"][-1] == ["sh", "-c", 'printf "%s\\n" "$@" > /run/netharden-test/argv', "sh", *AWKWARD_ARGV]
    assert got["header"][2] == "# Host host-'ä' \"b\"."


def test_header_cannot_be_broken_by_a_note():
    plan = Plan("h\nwrite_files: []", 252, notes=["two\nlines\r\x85\u2028end\x9b"])
    data = emit(plan, "cloud-config").decode()
    assert yaml.safe_load(data) == {}
    assert [line for line in data.splitlines() if not line.startswith("#")] == ["{}"]


@settings(max_examples=200, deadline=None)
@given(st.text(), st.lists(st.text(), max_size=3), st.lists(st.text(), min_size=1, max_size=4), st.text(),
       st.booleans())
def test_any_header_and_argv_round_trip(host, notes, argv, why, disruptive):
    plan = Plan(host, 252, notes=notes, actions=[Action("a", tuple(argv), why=why, disruptive=disruptive)])
    data = emit(plan, "cloud-config")
    assert yaml.safe_load(data) == ({} if disruptive else {"runcmd": [argv]})
    assert data.startswith(b"#cloud-config\n")


@pytest.mark.parametrize("content,safe", [
    ("a\n", True), ("a\n\tb\n", True), ("\tstart\n", True), ("\n\na\n", True), ("ü 🚀\n", True),
    ("", False), ("\n", False), ("a", False), ("a\n\n", False), ("a \n", False), ("a\t\n", False),
    (" a\n", False), ("\n a\n", False), ("a\r\n", False), ("a\x85b\n", False), ("a\u2028b\n", False),
    ("\ufeffa\n", False), ("a\x00\n", False), ("a\x1b\n", False),
])
def test_block_safe_rules(content, safe):
    assert cloudconfig.block_safe(content) is safe


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_scalar_round_trips(text):
    s = cloudconfig.scalar(text)
    assert yaml.safe_load(f"k: {s}\n") == {"k": text}
    assert yaml.safe_load(f"- [{s}, x]\n") == [[text, "x"]]


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from([0o644, 0o600, 0o755, 0o4755]))
def test_any_content_round_trips(content, mode):
    plan = Plan("h", 252, files=[File("/etc/netharden/x", content, mode)])
    got = decode(emit(plan, "cloud-config"))
    assert got["files"] == {"/etc/netharden/x": (content.encode("utf-8"), mode, "root:root")}
    assert ("encoding" in got["doc"]["write_files"][0]) == (content != "" and not cloudconfig.block_safe(content))


def test_cli_writes_the_same_bytes(tmp_path):
    expected = emit(example_plan(FULL_HOST), "cloud-config")
    run = subprocess.run([sys.executable, "-m", "netharden", "render", str(FULL_HOST), "--format", "cloud-config"],
                         capture_output=True, cwd=ROOT, check=True)
    assert run.stdout == expected and run.stderr == b""
    out = tmp_path / "user-data"
    subprocess.run([sys.executable, "-m", "netharden", "render", str(FULL_HOST), "--format", "cloud-config",
                    "--out", str(out)], check=True, cwd=ROOT)
    assert out.read_bytes() == expected


# ---------------------------------------------------------------------------- cloud-init schema

def schema(path: Path) -> subprocess.CompletedProcess:
    require(None if os.access(CLOUD_INIT, os.X_OK) else
            f"{CLOUD_INIT} is missing (Debian package cloud-init: scripts/install-system-deps.sh)")
    return subprocess.run([CLOUD_INIT, "schema", "--config-file", str(path)], capture_output=True, text=True,
                          env=CLEAN_ENV, timeout=120)


def assert_valid(path: Path) -> None:
    run = schema(path)
    assert (run.returncode, run.stdout, run.stderr) == (0, f"Valid cloud-config: {path}\n", ""), run


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_cloud_init_schema_accepts_example(path, tmp_path):
    out = tmp_path / "user-data"
    out.write_bytes(emit(example_plan(path), "cloud-config"))
    assert_valid(out)


@pytest.mark.parametrize("plan", [awkward_plan(), Plan("empty", 252)], ids=["awkward", "empty"])
def test_cloud_init_schema_accepts(plan, tmp_path):
    out = tmp_path / "user-data"
    out.write_bytes(emit(plan, "cloud-config"))
    assert_valid(out)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("permissions: '0644'", "permissions: 0644", 1), "is not of type 'string'"),
    (lambda t: t.replace("#cloud-config\n", "", 1), "#cloud-config"),
    (lambda t: t.replace("  owner: ", "  ownr: ", 1), "ownr"),
])
def test_cloud_init_schema_rejects_a_broken_config(edit, message, tmp_path):
    """The control: the check above can fail."""
    out = tmp_path / "user-data"
    out.write_text(edit(emit(example_plan(FULL_HOST), "cloud-config").decode()))
    run = schema(out)
    assert run.returncode != 0 and message in run.stdout + run.stderr, run
