"""Every systemd unit and drop-in netharden renders passes ``systemd-analyze verify`` with
nothing on stderr (it exits 0 on warnings such as "Unknown key", so the text is checked).

Each example's tree is rendered into a scratch root next to a copy of this machine's
/usr/lib/systemd/system (targets such as sysinit.target, systemd-networkd.service and,
with docker.io installed, docker.service for the drop-in), and verified with
``--root``. verify also checks that every Exec*= program exists and is executable:
netharden's own helper scripts come from the rendered tree itself; programs the target
OS provides (dockerd, sh, ...) are represented by an empty executable file in the
scratch root, because their presence on the target, not their content, is what verify
checks.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import netharden
from netharden.plan_model import install_links
from helpers import EXAMPLES, PROFILES, need, require

SYSTEMD_UNITS = Path("/usr/lib/systemd/system")
UNIT_SUFFIXES = (".service", ".path", ".timer", ".socket", ".target", ".mount")
EXEC_KEYS = re.compile(r"^(ExecStart|ExecStartPre|ExecStartPost|ExecStop|ExecStopPost|ExecReload|ExecCondition)=(.*)$")


def _render(profile: Path, root: Path) -> None:
    from netharden.cli import main

    assert main(["render", str(profile), "--format", "tree", "--out", str(root), "--force"]) == 0


def _units(root: Path) -> list[str]:
    """Unit names with a file or a drop-in directory under /etc/systemd/system."""
    base = root / "etc/systemd/system"
    if not base.is_dir():
        return []
    names = set()
    for entry in base.iterdir():
        if entry.is_file() and entry.name.endswith(UNIT_SUFFIXES):
            names.add(entry.name)
        elif entry.is_dir() and entry.name.endswith(".d"):
            names.add(entry.name[:-2])
    return sorted(names)


def _programs(text: str) -> set[str]:
    out = set()
    for line in text.splitlines():
        m = EXEC_KEYS.match(line.strip())
        if m and m.group(2).strip():
            word = m.group(2).strip().split()[0].lstrip("@-:+!")
            # a bare name (systemd >= 239 searches PATH): the target provides it in /usr/bin
            out.add(word if word.startswith("/") else f"/usr/bin/{word}")
    return out


@pytest.mark.parametrize("profile", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_rendered_unit_verifies_cleanly(profile, tmp_path):
    require(None if shutil.which("systemd-analyze") else "systemd-analyze is not installed (Debian package systemd)")
    require(None if SYSTEMD_UNITS.is_dir() else f"{SYSTEMD_UNITS} is missing")
    root = tmp_path / "root"
    _render(profile, root)
    units = _units(root)
    if not units:
        pytest.skip(f"{profile.name} renders no systemd units")  # a fact of the profile, not a missing part
    shutil.copytree(SYSTEMD_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    for name in units:
        if "." in name and not (root / "etc/systemd/system" / name).exists():
            # a drop-in for a unit the target ships (docker.service): it must exist to be verified
            require(None if (SYSTEMD_UNITS / name).exists() else
                    f"{name} is not installed here, so its drop-in cannot be verified (apt install docker.io)")
    texts = [p.read_text() for p in (root / "etc/systemd/system").rglob("*") if p.is_file()]
    texts += [(root / "usr/lib/systemd/system" / n).read_text() for n in units
              if (root / "usr/lib/systemd/system" / n).is_file()]
    for program in sorted(set().union(*map(_programs, texts))):
        target = root / program.lstrip("/")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("")
            target.chmod(0o755)
    paths = [f"/etc/systemd/system/{n}" if (root / "etc/systemd/system" / n).is_file() else f"/usr/lib/systemd/system/{n}"
             for n in units]
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no", *paths],
                          capture_output=True, text=True, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    assert proc.returncode == 0 and proc.stderr == "", f"{paths}\n{proc.stderr}"


def test_verify_catches_a_bad_key(tmp_path):
    # the check above can fail: an unknown key reaches stderr even though verify exits 0
    require(None if shutil.which("systemd-analyze") else "systemd-analyze is not installed")
    root = tmp_path / "root"
    shutil.copytree(SYSTEMD_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    unit = root / "etc/systemd/system/probe.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart=/usr/bin/true\nNoSuchKey=1\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/true").write_text("")
    (root / "usr/bin/true").chmod(0o755)
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no", "/etc/systemd/system/probe.service"],
                          capture_output=True, text=True)
    assert "Unknown key" in proc.stderr


def _symlinks(root: Path) -> dict[str, str]:
    return {"/" + str(p.relative_to(root)): os.readlink(p) for p in root.rglob("*") if p.is_symlink()}


@pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
def test_install_links_are_what_systemctl_enable_makes(profile, tmp_path):
    """The [Install] symlinks the role writes for the Plan's enabled units (``install_links``, from
    ``Unit.wanted_by``) are exactly the ones ``systemctl --root enable`` makes from the rendered files."""
    systemctl = need("systemctl", "Debian package systemd")
    plan = netharden.plan(netharden.load(profile))
    root = tmp_path / "root"
    netharden.emit(plan, "tree", root)
    written = _symlinks(root)
    # vendor units the Plan enables (systemd-networkd.service): the Plan writes their links
    # itself (tests/test_stack_service.py compares those with systemctl); here they only
    # have to exist at the target's vendor directory for `systemctl enable` to accept them
    for path, target in written.items():
        if target.startswith(("/lib/systemd/system/", "/usr/lib/systemd/system/")):
            dest = root / target.lstrip("/")
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(Path("/lib/systemd/system") / dest.name, dest)
    enabled = [u.name for u in plan.units if u.enabled]
    if enabled:
        subprocess.run([systemctl, f"--root={root}", "enable", *enabled], check=True, capture_output=True)
    made = {path: target for path, target in _symlinks(root).items() if path not in written}
    assert made == {x.path: x.target for unit in plan.units for x in install_links(unit)}
