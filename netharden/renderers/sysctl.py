"""Host sysctls: ``sysctl`` -> /etc/sysctl.d/90-netharden.conf.

The file sorts after the distribution's own files (``10-*``, ``50-*``) and before the
conventional local override ``99-sysctl.conf``, so an operator's own 99 file still
wins. Keys and values are constrained by the schema (dotted names; '/' for interface
names that contain dots; no '=', quotes or newlines). On a live host the file is
loaded with ``sysctl -p FILE`` (procps: present on Debian, Ubuntu, Flatcar and CoreOS);
at boot systemd-sysctl.service loads it.
"""

from __future__ import annotations

from functools import lru_cache

from ..plan_model import PHASE_SYSCTL, Action, File, Plan
from ..profile import Profile
from ..templating import render as render_template

PATH = "/etc/sysctl.d/90-netharden.conf"
GUARDS = ("config",)


def render(profile: Profile, plan: Plan) -> None:
    if profile.sysctl:
        plan.extend(entries(profile.sysctl))


@lru_cache(maxsize=64)
def entries(sysctl: tuple[tuple[str, str], ...]) -> tuple[File, Action]:
    why = "Host sysctls from the profile"
    text = render_template("sysctl/sysctl.conf.j2", guards=GUARDS, why=why, sysctl=sysctl)
    return (
        File(PATH, text, guards=GUARDS, why=why),
        Action(
            "sysctl-load",
            ("sysctl", "-p", PATH),
            "apply the host sysctls now (systemd-sysctl does at boot)",
            phase=PHASE_SYSCTL,
            triggers=(PATH,),
            sysctls=sysctl,
        ),
    )
