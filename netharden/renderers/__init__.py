"""One renderer per concern. Each is ``render(profile, plan) -> None`` and adds entries
to the Plan; none knows anything about output formats.

Inside, a renderer is made of parts: pure functions of small frozen inputs (a tuple of
unmanaged groups and the systemd version, one bridge, the daemons ...) that return a
tuple of Plan entries, memoized with ``functools.lru_cache`` at that boundary. No
generated file names the host (the header is the same on every host), so the hosts of a
fleet that share their settings get the very same ``File`` objects for those parts, and
an emitter can cache what it makes of a ``File`` (the Ignition emitter does). A part
that reads a host's own values (a bridge with its derived MAC, an uplink's addresses) is
a cache miss per host and costs a bounded slot, nothing else.
"""

from __future__ import annotations

from ..plan_model import Plan
from ..profile import Profile
from . import (
    containers,
    docker,
    netplan,
    networkd,
    networkmanager,
    packages,
    quarantine,
    stack_service,
    sysctl,
    vxlan_gc,
)

# The renderers of the host's network stack (platform.stack), then the host guards every
# stack has. NetworkManager's answer to incident 1 is its unmanaged list (no quarantine:
# see renderers/networkmanager.py); udev reads .link files whichever stack runs. netplan
# renders to networkd: the networkd guards and the quarantine stay (renderers/netplan.py).
# stack_service enables systemd-networkd.service (Debian ships it disabled). On the netplan
# stack netplan's own systemd generator enables networkd at boot only when it generated
# networkd files (netplan 0.106: "adding ... enablement symlink" in the generator directory);
# the guards are networkd files whether or not the YAML has netdefs, so it is enabled there too.
STACKS = {
    "networkd": (networkd.render, quarantine.render, stack_service.render),
    "netplan": (netplan.render, quarantine.render, stack_service.render),
    "networkmanager": (networkmanager.render, networkd.render_links),
}
GUARDS = (
    vxlan_gc.render,
    docker.render,
    containers.render,
    packages.render,
    sysctl.render,
)


def build_plan(profile: Profile) -> Plan:
    plan = Plan(profile=profile.name, systemd=profile.systemd)
    for render in STACKS[profile.stack] + GUARDS:
        render(profile, plan)
    return plan.sorted()
