"""A throwaway "host" for doctor tests: a network namespace (named like the lab's, so the
lab's cleanup_stale() removes it if the test process dies) plus a scratch root directory.
``doctor()`` runs the real CLI inside the namespace (``ip netns exec`` mounts that
namespace's own /sys) over the scratch root, with --live."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, require


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, ip link add)"
    if shutil.which("ip") is None:
        return "'ip' (iproute2) not found in PATH"
    return None


class DoctorHost:
    """``root``: the scratch root (write files with ``write``); ``ip(...)``: iproute2 inside
    the namespace; ``doctor(...)``: the CLI's JSON report over this host."""

    def __init__(self, root: Path):
        from netharden.lab.cleanup import NS_PREFIX

        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.netns = f"{NS_PREFIX}{os.getpid()}-doc{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True, text=True)
        self.ip("link", "set", "lo", "up")

    def close(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.netns], check=True, capture_output=True, text=True)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr}")
        return done

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("ip", *args, check=check)

    def write(self, path: str, text: str, mode: int = 0o644) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        target.chmod(mode)
        return target

    def link(self, path: str, target: str) -> Path:
        dest = self.root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(target)
        return dest

    def doctor_cli(self, *args: str, live: bool = True) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "netharden", "doctor", "--root", str(self.root), *args]
        if live:
            argv.append("--live")
            return self.run(*argv, check=False)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)

    def doctor(self, *args: str, live: bool = True) -> tuple[int, dict]:
        """(exit code, JSON report) of ``netharden doctor --root ROOT [--live] --json ARGS``."""
        done = self.doctor_cli("--json", *args, live=live)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, json.loads(done.stdout)


def findings(report: dict, check: str | None = None) -> list[dict]:
    return [f for c in report["checks"] for f in c["findings"] if check is None or f["check"] == check]


def doctor_host(tmp_path: Path):
    """Generator for a pytest fixture: ``yield from doctor_host(tmp_path)``."""
    require(unavailable())
    host = DoctorHost(tmp_path / "root")
    try:
        yield host
    finally:
        host.close()
