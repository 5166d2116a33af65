"""systemd-networkd files: unmanaged container interfaces, uplinks, bridges, .link MAC
policy, masks of vendor files and the networkd.conf drop-in.

File names and their lexical order (networkd reads /etc, /run and /usr/lib together,
sorted by file name, first match wins):

  0-netharden-unmanaged-<group>.network  sorts before every "00-*" and "10-*" file, even
                                          before a stray runtime "00-.network"
  0-netharden-<group>.link               before 99-default.link (MACAddressPolicy=none)
  10-netharden-<bridge>.netdev/.network  bridges before uplinks, so a broad uplink glob
                                          can never claim a bridge first
  20-netharden-uplink-<name>.network     uplinks
"""
from __future__ import annotations

import fnmatch

from ..plan_model import PHASE_NETWORKD, Action, File, Link, Plan
from ..profile import Bridge, Profile, Uplink
from ..systemd import features_for, supports
from ..validate import interface
from ._cache import render as render_template

NETWORK_DIR = "/etc/systemd/network"
NETWORKD_CONF_DIR = "/etc/systemd/networkd.conf.d"

# Drivers of virtual interfaces, for targets whose networkd has no Kind= match.
VIRTUAL_DRIVERS = ("veth", "bridge", "vxlan", "tun", "macvlan", "macvtap", "ipvlan", "dummy",
                   "wireguard", "geneve", "bonding", "openvswitch", "802.1Q*")


def _context(profile: Profile, guards: tuple[str, ...], why: str, **extra) -> dict:
    return {"profile": profile, "guards": guards, "why": why, "features": features_for(profile.systemd), **extra}


def _file(plan: Plan, profile: Profile, path: str, template: str, guards: tuple[str, ...], why: str, **extra) -> None:
    text = render_template(template, **_context(profile, guards, why, **extra))
    plan.add(File(path=path, content=text, mode=0o644, guards=guards, why=why))


def render(profile: Profile, plan: Plan) -> None:
    for part in PARTS:
        part(profile, plan)


def render_unmanaged(profile: Profile, plan: Plan) -> None:
    for group in profile.unmanaged:
        _file(plan, profile, f"{NETWORK_DIR}/0-netharden-unmanaged-{group.id}.network", "networkd/unmanaged.network.j2",
              ("incident-1", "incident-2"), f"Unmanaged: {group.description}", group=group)
        if supports(profile.systemd, "link.mac_policy_persistent_default"):
            _file(plan, profile, f"{NETWORK_DIR}/0-netharden-{group.id}.link", "networkd/mac-policy.link.j2",
                  ("hazard-mac-policy",), f"Keep the MACs the runtime chose: {group.description}", group=group)


def render_bridges(profile: Profile, plan: Plan) -> None:
    for bridge in profile.bridges:
        _render_bridge(plan, profile, bridge)


def render_uplinks(profile: Profile, plan: Plan) -> None:
    for uplink in profile.uplinks:
        _render_uplink(plan, profile, uplink)


def render_masks(profile: Profile, plan: Plan) -> None:
    for name in profile.masks:
        plan.add(Link(path=f"{NETWORK_DIR}/{name}", target="/dev/null", guards=("incident-2",),
                      why=f"Mask the vendor file {name} that manages container interfaces"))
    if profile.foreign_routes == "keep" and supports(profile.systemd, "networkd.manage_foreign_routes"):
        _file(plan, profile, f"{NETWORKD_CONF_DIR}/50-netharden.conf", "networkd/networkd.conf.j2",
              ("hazard-foreign-routes",), "Leave routes and policy rules installed by CNI plugins alone")
        # networkd reads networkd.conf only when it starts; a restart can briefly drop
        # DHCP leases, so appliers run it only when asked (it takes effect at boot anyway)
        plan.add(Action("networkd-restart", ("systemctl", "try-restart", "systemd-networkd.service"),
                        "networkd reads networkd.conf only at start", phase=PHASE_NETWORKD + 1, disruptive=True))


def render_reload(profile: Profile, plan: Plan) -> None:
    if profile.uplinks or profile.bridges or profile.unmanaged or profile.masks:
        if supports(profile.systemd, "networkctl.reload"):
            plan.add(Action("networkd-reload", ("networkctl", "reload"), "load the new .network/.netdev files"))
        else:
            plan.add(Action("networkd-reload", ("systemctl", "restart", "systemd-networkd.service"),
                            "systemd < 244 has no 'networkctl reload'"))


# render() in parts, in order: a fleet caches each part on the settings it reads (the
# unmanaged groups, masks and networkd.conf are the same on most hosts; bridges and
# uplinks are each host's own)
PARTS = (render_unmanaged, render_bridges, render_uplinks, render_masks, render_reload)


def _render_bridge(plan: Plan, profile: Profile, bridge: Bridge) -> None:
    origin = "derived from host and bridge name" if bridge.mac_source == "stable" else "explicit"
    _file(plan, profile, f"{NETWORK_DIR}/10-netharden-{bridge.name}.netdev", "networkd/bridge.netdev.j2",
          ("incident-3",), f"Bridge {bridge.name} with its MAC pinned ({origin})", bridge=bridge)
    has_ipv6 = any(interface(a).version == 6 for a in bridge.addresses)
    _file(plan, profile, f"{NETWORK_DIR}/10-netharden-{bridge.name}.network", "networkd/bridge.network.j2",
          ("config",), f"Addresses of bridge {bridge.name}", bridge=bridge, has_ipv6=has_ipv6)


def _render_uplink(plan: Plan, profile: Profile, uplink: Uplink) -> None:
    match = uplink.match
    exclude = {"kind": False, "drivers": (), "loopback": False}
    guards: tuple[str, ...] = ("config",)
    if match.broad:
        guards = ("incident-1", "incident-2")
        if supports(profile.systemd, "match.kind"):
            exclude["kind"] = True
        elif not match.drivers:
            exclude["drivers"] = VIRTUAL_DRIVERS
        exclude["loopback"] = any(fnmatch.fnmatchcase("lo", glob) for glob in match.names)
    why = f"Uplink {uplink.name}" + (": its match is broad, so virtual interfaces are excluded" if match.broad else "")
    _file(plan, profile, f"{NETWORK_DIR}/20-netharden-uplink-{uplink.name}.network", "networkd/uplink.network.j2",
          guards, why, uplink=uplink, exclude=exclude)
