"""One renderer per concern. Each is ``render(profile, plan) -> None`` and adds entries
to the Plan; none knows anything about output formats."""
from __future__ import annotations

from ..plan_model import Plan
from ..profile import Profile
from . import _cache, containers, docker, networkd, packages, quarantine, sysctl, vxlan_gc

RENDERERS = (networkd.render, quarantine.render, vxlan_gc.render, docker.render, containers.render,
             packages.render, sysctl.render)
# the same renderers in finer parts, in the same order (fleets cache each part's entries:
# a part that reads only shared settings is rendered once per worker, see _cache)
PARTS = networkd.PARTS + RENDERERS[1:3] + docker.PARTS + RENDERERS[4:]


def build_plan(profile: Profile) -> Plan:
    if _cache.ENABLED:
        return _cache.build_plan(profile, PARTS)
    plan = Plan(profile=profile.name, systemd=profile.systemd)
    for render in RENDERERS:
        render(profile, plan)
    return plan.sorted()
