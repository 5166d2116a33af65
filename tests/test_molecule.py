"""roles/netharden on booted Debian 12 (systemd 252) and Debian 11 (systemd 247) with
systemd-networkd, and on Debian 12 with NetworkManager 1.42 (platform.stack:
networkmanager): the molecule scenario roles/netharden/molecule/default, run the way a
role author runs it (``molecule test``: create, prepare, converge, idempotence, verify,
destroy) with the podman driver, all three hosts in one run. The images are built by
scripts/build-debian-image.sh (debootstrap from the mirror apt uses, cached under
/var/cache/netharden/images); the scenario's verify compares every file on the hosts with
the controller's ``netharden render --format tree``.

Skips with the reason when podman, root or molecule is missing; fails under CI=true."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import DEBIAN_IMAGES, ROOT, require

pytestmark = pytest.mark.netns

ROLE = ROOT / "roles" / "netharden"
SCENARIO = ROLE / "molecule" / "default"
BUILD = ROOT / "scripts" / "build-debian-image.sh"
BIN = Path(sys.executable).parent
# molecule.yml's platform names are the container names
# (NETHARDEN_MOLECULE_PREFIX: another checkout's run uses other names)
PREFIX = os.environ.get("NETHARDEN_MOLECULE_PREFIX", "netharden")
CONTAINERS = tuple(f"{PREFIX}-{name}" for name in ("debian12", "debian11", "debian12-nm", "debian12-ifupdown"))
IMAGES = DEBIAN_IMAGES
TIMEOUT = 1800
# molecule's progress lines: "INFO     [default > converge] Executing" / "... Executed: Successful"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROGRESS = re.compile(r"\[default > (?P<action>[a-z_]+)\] (?:Executing$|Executed: (?P<result>.+)$)")


def _missing() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (sh scripts/install-system-deps.sh)"
    if os.geteuid() != 0:
        return "the molecule scenario runs rootful podman containers with systemd as PID 1: needs root"
    # molecule must run ansible-playbook with this Python: the action plugin imports netharden
    for tool in ("molecule", "ansible-playbook", "ansible-config"):
        if not (BIN / tool).exists():
            return f"{tool} is not installed next to {sys.executable} (pip install -e '.[test]')"
    try:
        import molecule_plugins.podman  # noqa: F401
    except ImportError:
        return "molecule-plugins[podman] is not installed (pip install -e '.[test]')"
    local = [image for image in IMAGES.values() if image.startswith("localhost/")]
    absent = [image for image in local if subprocess.run(["podman", "image", "exists", image]).returncode != 0]
    if absent and shutil.which("debootstrap") is None:
        return f"{', '.join(absent)} must be built and debootstrap is not installed (sh scripts/install-system-deps.sh)"
    return None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"   # molecule calls ansible-config, ansible-playbook
    env["ANSIBLE_FORCE_COLOR"] = "false"
    env["PY_COLORS"] = "0"
    env["NO_COLOR"] = "1"
    return env


def _leftovers() -> list[str]:
    return [name for name in CONTAINERS if subprocess.run(["podman", "container", "exists", name]).returncode == 0]


def _molecule_test(env: dict[str, str]) -> tuple[int, str, list[tuple[str, float, str]]]:
    """Run ``molecule test``, timing each action from molecule's own progress lines:
    (return code, output, [(action, seconds, result)])."""
    proc = subprocess.Popen([str(BIN / "molecule"), "test", "--scenario-name", "default"], cwd=ROLE, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    watchdog = threading.Timer(TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGTERM))
    watchdog.start()
    lines: list[str] = []
    phases: list[tuple[str, float, str]] = []
    began: dict[str, float] = {}
    try:
        for line in proc.stdout:
            lines.append(line)
            m = PROGRESS.search(ANSI.sub("", line))
            if m and m["result"] is None:
                began[m["action"]] = time.monotonic()
            elif m and m["action"] in began:
                phases.append((m["action"], time.monotonic() - began.pop(m["action"]), m["result"].strip()))
        rc = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    return rc, "".join(lines), phases


def _tail(text: str, lines: int = 150) -> str:
    return "\n".join(text.splitlines()[-lines:])


def test_molecule_scenario_is_complete():
    for name in ("molecule.yml", "prepare.yml", "converge.yml", "verify.yml", "files/profile.yaml",
                 "files/profile-nm.yaml", "files/profile-ifupdown.yaml", "tasks/prepare_ifupdown.yml",
                 "tasks/verify_takeover.yml", "tasks/verify_networkd.yml", "tasks/verify_networkmanager.yml"):
        assert (SCENARIO / name).is_file(), name


def test_molecule_test_on_debian_12_and_11_and_networkmanager():
    """create, prepare (incl. a --check run on the fresh hosts that changes nothing, and on
    Debian's default ifupdown host a converge without netharden_takeover that fails before
    writing anything),
    converge, idempotence (changed=0), verify (render equality, VXLAN GC timer, sysctls, a
    --check run with changed=0; networkd: bridges + MACs, unmanaged veths, quarantine path
    unit; NetworkManager: exactly the Plan's files, keyfiles 0600 and loaded without a
    warning, bridges with pinned MACs, unmanaged veths with untouched sysctls, the conf
    reload helper's record, the uplink activation pending until a run with
    netharden_activate_networkmanager=true, then changed=0, a NetworkManager restart;
    ifupdown host: the takeover converged with networkd enabled but not started, eth0 released
    from ifupdown with its address kept, then a restart of the container after which networkd
    configures eth0 and ifupdown does not), destroy."""
    require(_missing())
    assert not _leftovers(), f"containers left by an earlier run: {_leftovers()} (podman rm -f them)"
    env = _env()

    start = time.monotonic()
    build = subprocess.run(["sh", str(BUILD), *IMAGES], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    build_seconds = time.monotonic() - start
    assert build.returncode == 0, build.stdout + build.stderr

    start = time.monotonic()
    try:
        rc, out, phases = _molecule_test(env)
    finally:
        if _leftovers():   # timeout or interrupt: molecule's own destroy did not run
            subprocess.run([str(BIN / "molecule"), "destroy", "--scenario-name", "default"], cwd=ROLE, env=env,
                           capture_output=True, timeout=300)
            subprocess.run(["podman", "rm", "--force", "--ignore", *CONTAINERS], capture_output=True, timeout=120)
    seconds = time.monotonic() - start
    print(f"\nmolecule: images {build_seconds:.0f} s (built or checked), molecule test {seconds:.0f} s: "
          + ", ".join(f"{name} {took:.0f} s" for name, took, _ in phases))
    assert rc == 0, _tail(out)
    # the whole sequence ran and each action succeeded (none skipped or missing)
    ran = [name for name, _, result in phases if result == "Successful"]
    assert ran == ["destroy", "syntax", "create", "prepare", "converge", "idempotence", "verify", "destroy"], \
        (phases, _tail(out))
    assert not _leftovers()
