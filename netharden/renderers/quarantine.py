"""Placeholder: filled in while issue 3 is being built (renders nothing yet)."""
from __future__ import annotations

from ..plan_model import Plan
from ..profile import Profile


def render(profile: Profile, plan: Plan) -> None:
    return None
