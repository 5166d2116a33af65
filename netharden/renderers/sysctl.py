"""Host sysctls: ``sysctl`` -> /etc/sysctl.d/90-netharden.conf.

The file sorts after the distribution's own files (``10-*``, ``50-*``) and before the
conventional local override ``99-sysctl.conf``, so an operator's own 99 file still
wins. Keys and values are constrained by the schema (dotted names; '/' for interface
names that contain dots; no '=', quotes or newlines). On a live host the file is
loaded with ``sysctl -p FILE`` (procps: present on Debian, Ubuntu, Flatcar and CoreOS);
at boot systemd-sysctl.service loads it.
"""
from __future__ import annotations

from ..plan_model import PHASE_SYSCTL, Action, File, Plan
from ..profile import Profile
from ..systemd import features_for
from ._cache import render as render_template

PATH = "/etc/sysctl.d/90-netharden.conf"
GUARDS = ("config",)


def render(profile: Profile, plan: Plan) -> None:
    if not profile.sysctl:
        return
    why = "Host sysctls from the profile"
    text = render_template("sysctl/sysctl.conf.j2", profile=profile, guards=GUARDS, why=why,
                           features=features_for(profile.systemd), sysctl=profile.sysctl)
    plan.add(File(PATH, text, guards=GUARDS, why=why))
    plan.add(Action("sysctl-load", ("sysctl", "-p", PATH), "apply the host sysctls now (systemd-sysctl does at boot)",
                    phase=PHASE_SYSCTL))
