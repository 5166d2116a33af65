"""What a lab scenario is and what it gets.

A scenario is a module in ``netharden/lab/scenarios/`` with the same shape as a lint
rule: ``ID``, ``TITLE``, ``INCIDENT`` (a guard id of plan_model.GUARDS), ``HINT`` (the
profile key that fixes it), ``STACK`` (the network stack it replays: "networkd",
"networkmanager", or None for every stack; a "networkd" scenario also runs for the netplan
stack, which renders to networkd: its profile side hands networkd the output of the real
``netplan generate`` over the Plan's /etc/netplan files, :attr:`Context.plan_generated`),
and three functions:

  applies(ctx) -> str | None    None, or why the scenario does not apply to this profile
  baseline(ctx) -> Result       the naive host: BREAKS (harm reproduced, with evidence)
                                or NOT_REPRODUCIBLE (this systemd/kernel does not do it)
  profile(ctx) -> Result        the profile's Plan: HOLDS or FAILS, with evidence

Baseline harm is measured, never assumed: evidence lines say what really changed.
Scenarios create every namespace, device and file they use through ``ctx`` (or clean
them up themselves in ``finally``), and use addresses only inside their namespaces.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..plan_model import Plan
from ..profile import Profile

# baseline statuses
BREAKS = "breaks"
NOT_REPRODUCIBLE = "not-reproducible"
# profile statuses
HOLDS = "holds"
FAILS = "fails"
# either
SKIPPED = "skipped"
ERROR = "error"


@dataclass
class Result:
    status: str
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"status": self.status, "evidence": list(self.evidence)}


class Context:
    """Everything a scenario needs: the profile, its Plan rendered as a tree, the
    installed networkd's version, and scratch space that the runner removes."""

    def __init__(self, profile: Profile, plan: Plan, workdir: Path, *, udev: bool = False):
        self.profile = profile
        self.plan = plan
        self.workdir = workdir
        # NetworkManager scenarios: run a real systemd-udevd with NM's udev rules
        self.udev = udev

    @cached_property
    def tree(self) -> Path:
        """The Plan written by ``--format tree`` (what a host would get)."""
        from ..emitters import emit

        out = self.workdir / "tree"
        emit(self.plan, "tree", out)
        return out

    def path(self, target_path: str) -> Path:
        """Where a target path of the Plan lies in :attr:`tree`."""
        return self.tree / target_path.lstrip("/")

    def network_dir(self) -> Path:
        """The Plan's /etc/systemd/network (files and masks), possibly empty."""
        d = self.path("/etc/systemd/network")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def networkd_conf_dir(self) -> Path | None:
        d = self.path("/etc/systemd/networkd.conf.d")
        return d if d.is_dir() else None

    def netplan_yaml(self) -> dict[str, str]:
        """The Plan's netplan YAML files (target path -> text): a netplan-stack profile's
        /etc/netplan/60-netharden.yaml."""
        from ..netplan_generate import is_netplan_yaml

        return {f.path: f.content for f in self.plan.files if is_netplan_yaml(f.path)}

    def generated_dir(self, extra_yaml: dict[str, str] | None = None, *, plan: bool = True) -> Path | None:
        """The lab's netplan step: the real ``netplan generate --root-dir`` over the Plan's
        netplan YAML (``plan``) and ``extra_yaml`` (a baseline's, e.g. cloud-init's
        50-cloud-init.yaml), its networkd files in a fresh directory to hand to
        ``NetworkdLab(run_network_dir=...)`` (the lab's /run/systemd/network); None when there
        is no YAML at all."""
        from ..netplan_generate import generate_into

        yaml_files = {**(self.netplan_yaml() if plan else {}), **(extra_yaml or {})}
        if not yaml_files:
            return None
        out = self.scratch("netplan-generated")
        generate_into(yaml_files, out)
        return out

    @cached_property
    def plan_generated(self) -> Path | None:
        """:meth:`generated_dir` of the Plan alone (run once): what every networkd scenario's
        profile side hands to networkd as /run/systemd/network on the netplan stack."""
        return self.generated_dir()

    def helper(self, name: str) -> Path:
        """A rendered host-side helper script (e.g. netharden-quarantine)."""
        return self.path(f"{self.profile.helper_dir}/{name}")

    def scratch(self, name: str) -> Path:
        """A fresh, empty directory for this scenario's own files."""
        d = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=self.workdir))
        return d

    @cached_property
    def version(self) -> int:
        return networkd_version()

    @contextmanager
    def netns(self, tag: str) -> Iterator[str]:
        """A plain network namespace (no networkd) named like the harness's, so
        ``cleanup.cleanup_stale`` also removes it if this process dies; deleted on exit."""
        from .cleanup import NS_PREFIX, sigint_deferred

        name = f"{NS_PREFIX}{os.getpid()}-{tag}-{secrets.token_hex(3)}"
        # Ctrl-C waits while `ip netns add` runs and while the namespace is deleted; the
        # deferred KeyboardInterrupt is raised inside the try, so the finally deletes the
        # namespace (deleting one that was never made is harmless)
        try:
            with sigint_deferred():
                subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            yield name
        finally:
            with sigint_deferred():
                pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                subprocess.run(["ip", "netns", "delete", name], capture_output=True)

    def run(self, ns: str, *argv: str, check: bool = False, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a command inside the plain namespace ``ns``."""
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=check, timeout=timeout
        )


def networkd_version() -> int:
    """Major version of the installed systemd-networkd (0 when unknown)."""
    from .netns import networkd_binary

    binary = networkd_binary()
    if binary is None:
        return 0
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    m = re.match(r"systemd (\d+)", out)
    return int(m.group(1)) if m else 0


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Outcome:
    """One scenario's run: both sides and how long it took."""

    id: str
    title: str
    incident: str
    hint: str
    baseline: Result
    profile: Result
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.profile.status in (FAILS, ERROR)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "incident": self.incident,
            "hint": self.hint,
            "baseline": self.baseline.to_dict(),
            "profile": self.profile.to_dict(),
            "seconds": round(self.seconds, 2),
        }
