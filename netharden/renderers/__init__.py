"""One renderer per concern. Each is ``render(profile, plan) -> None`` and adds entries
to the Plan; none knows anything about output formats."""
from __future__ import annotations

from ..plan_model import Plan
from ..profile import Profile
from . import containers, docker, networkd, packages, quarantine, sysctl, vxlan_gc

RENDERERS = (networkd.render, quarantine.render, vxlan_gc.render, docker.render, containers.render,
             packages.render, sysctl.render)


def build_plan(profile: Profile) -> Plan:
    plan = Plan(profile=profile.name, systemd=profile.systemd)
    for render in RENDERERS:
        render(profile, plan)
    return plan.sorted()
