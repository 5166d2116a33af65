"""``netharden doctor``: a read-only audit of a live host or an image for the incident patterns.

Each check is a module in ``netharden/doctor/checks/`` with the shape of an ansible-lint rule
(and of a lab scenario): ``ID``, ``TITLE``, ``SEVERITY`` (``error``/``warning``/``info``),
``INCIDENT`` (a guard id of plan_model.GUARDS), ``HINT`` (the fix, naming the profile key
that fixes it), ``NEEDS`` (``"files"``: reads only files under the host's root, so it runs
over an unpacked image or a rendered tree; ``"live"``: also needs the live network state of
the current network namespace), and ``check(host) -> list[Finding]``.

Checks never change anything: they read files under ``Host.root`` and the kernel's view of
the current network namespace (``ip -json -details link``, ``/sys/class/net``). The test
suite builds an unhealthy "host" per check (a network namespace plus a scratch root, run
with ``ip netns exec``) and a healthy one (the tree netharden renders).
"""

from __future__ import annotations

from .host import Host
from .model import SEVERITIES, Finding, Report

__all__ = ["SEVERITIES", "Finding", "Host", "Report", "run"]


def run(host: Host, only: list[str] | None = None, profile=None) -> Report:
    """Run every check (or ``only`` these ids) against ``host``; with ``profile`` (a
    netharden Profile), also say for each finding whether applying the profile fixes it."""
    from .runner import run as _run

    return _run(host, only=only, profile=profile)
