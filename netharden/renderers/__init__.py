"""One renderer per concern. Each is ``render(profile, plan) -> None`` and adds entries
to the Plan; none knows anything about output formats."""
from __future__ import annotations

from ..plan_model import Plan
from ..profile import Profile
from . import networkd

RENDERERS = (networkd.render,)


def build_plan(profile: Profile) -> Plan:
    plan = Plan(profile=profile.name, systemd=profile.systemd)
    for render in RENDERERS:
        render(profile, plan)
    return plan.sorted()
