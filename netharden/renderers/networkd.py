"""systemd-networkd files: unmanaged container interfaces, uplinks, bridges, .link MAC
policy, masks of vendor files and the networkd.conf drop-in. On the netplan stack
(renderers/netplan.py) only ``guards`` runs: netplan writes the uplinks and bridges.

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
from functools import lru_cache

from ..plan_model import PHASE_NETWORKD, Action, File, Link, Plan, unit_triggers
from ..profile import DEFAULT_MASKS, DEFAULT_QUARANTINE, Bridge, Profile, UnmanagedGroup, Uplink
from ..systemd import features_for, supports
from ..templating import render as render_template
from ..validate import interface

NETWORK_DIR = "/etc/systemd/network"
NETWORKD_CONF_DIR = "/etc/systemd/networkd.conf.d"
NETWORKD = "systemd-networkd.service"
# What networkd reads only when it starts (a reload reads the network directory alone).
NETWORKD_CONF = ("/etc/systemd/networkd.conf", f"{NETWORKD_CONF_DIR}/")

# Drivers of virtual interfaces, for targets whose networkd has no Kind= match.
VIRTUAL_DRIVERS = (
    "veth",
    "bridge",
    "vxlan",
    "tun",
    "macvlan",
    "macvtap",
    "ipvlan",
    "dummy",
    "wireguard",
    "geneve",
    "bonding",
    "openvswitch",
    "802.1Q*",
)


def _file(path: str, template: str, systemd: int, guards: tuple[str, ...], why: str, **extra) -> File:
    text = render_template(template, guards=guards, why=why, features=features_for(systemd), **extra)
    return File(path=path, content=text, mode=0o644, guards=guards, why=why)


def render(profile: Profile, plan: Plan) -> None:
    guards(profile, plan)
    for bridge in profile.bridges:
        plan.extend(bridge_files(bridge, profile.systemd))
    for uplink in profile.uplinks:
        plan.add(uplink_file(uplink, profile.systemd))


def guards(profile: Profile, plan: Plan, also: tuple[str, ...] = ()) -> None:
    """The container-interface guards every networkd host gets, whoever writes its uplinks
    and bridges (this module, or netplan: renderers/netplan.py): the unmanaged files, the
    ``.link`` files, the masks, the networkd.conf drop-in and networkd's reload. ``also``:
    more paths whose change needs the reload (the netplan file networkd reads through
    ``netplan generate``)."""
    plan.extend(unmanaged(profile.unmanaged, profile.systemd))
    reloads = bool(profile.uplinks or profile.bridges or profile.unmanaged or profile.masks)
    plan.extend(masks(profile.masks, profile.foreign_routes, profile.systemd, reloads))
    if reloads:
        plan.add(reload_action(profile.systemd, also))


def render_links(profile: Profile, plan: Plan) -> None:
    """On a host that another stack configures: only the ``.link`` files (udev's)."""
    plan.extend(link_files(profile.unmanaged, profile.systemd))
    changed = [
        key
        for key, value, default in (
            ("networkd.mask", profile.masks, tuple(sorted(DEFAULT_MASKS))),
            ("networkd.quarantine", profile.quarantine, DEFAULT_QUARANTINE),
        )
        if value != default
    ]
    if changed:
        plan.note(f"{' and '.join(changed)} not rendered: the host runs {profile.stack}, not systemd-networkd.")


@lru_cache(maxsize=256)
def unmanaged(groups: tuple[UnmanagedGroup, ...], systemd: int) -> tuple[File, ...]:
    out = [
        _file(
            f"{NETWORK_DIR}/0-netharden-unmanaged-{group.id}.network",
            "networkd/unmanaged.network.j2",
            systemd,
            ("incident-1", "incident-2"),
            f"Unmanaged: {group.description}",
            group=group,
        )
        for group in groups
    ]
    return tuple(out) + link_files(groups, systemd)


@lru_cache(maxsize=256)
def link_files(groups: tuple[UnmanagedGroup, ...], systemd: int) -> tuple[File, ...]:
    """``.link`` files with ``MACAddressPolicy=none``: udev reads them, so they belong on
    every host whose udev has the persistent default, whichever stack configures it."""
    if not supports(systemd, "link.mac_policy_persistent_default"):
        return ()
    return tuple(
        _file(
            f"{NETWORK_DIR}/0-netharden-{group.id}.link",
            "networkd/mac-policy.link.j2",
            systemd,
            ("hazard-mac-policy",),
            f"Keep the MACs the runtime chose: {group.description}",
            group=group,
        )
        for group in groups
    )


@lru_cache(maxsize=256)
def bridge_files(bridge: Bridge, systemd: int) -> tuple[File, File]:
    origin = "derived from host and bridge name" if bridge.mac_source == "stable" else "explicit"
    has_ipv6 = any(interface(a).version == 6 for a in bridge.addresses)
    return (
        _file(
            f"{NETWORK_DIR}/10-netharden-{bridge.name}.netdev",
            "networkd/bridge.netdev.j2",
            systemd,
            ("incident-3",),
            f"Bridge {bridge.name} with its MAC pinned ({origin})",
            bridge=bridge,
        ),
        _file(
            f"{NETWORK_DIR}/10-netharden-{bridge.name}.network",
            "networkd/bridge.network.j2",
            systemd,
            ("config",),
            f"Addresses of bridge {bridge.name}",
            bridge=bridge,
            has_ipv6=has_ipv6,
        ),
    )


@lru_cache(maxsize=256)
def uplink_file(uplink: Uplink, systemd: int) -> File:
    match = uplink.match
    exclude = {"kind": False, "drivers": (), "loopback": False}
    guards: tuple[str, ...] = ("config",)
    if match.broad:
        guards = ("incident-1", "incident-2")
        if supports(systemd, "match.kind"):
            exclude["kind"] = True
        elif not match.drivers:
            exclude["drivers"] = VIRTUAL_DRIVERS
        exclude["loopback"] = any(fnmatch.fnmatchcase("lo", glob) for glob in match.names)
    why = f"Uplink {uplink.name}" + (": its match is broad, so virtual interfaces are excluded" if match.broad else "")
    return _file(
        f"{NETWORK_DIR}/20-netharden-uplink-{uplink.name}.network",
        "networkd/uplink.network.j2",
        systemd,
        guards,
        why,
        uplink=uplink,
        exclude=exclude,
    )


@lru_cache(maxsize=256)
def masks(names: tuple[str, ...], foreign_routes: str, systemd: int, reloads: bool) -> tuple[Link | File | Action, ...]:
    """The masks, and the networkd.conf drop-in with its restart. ``reloads``: the Plan has
    the reload action; without it the restart is what makes networkd read its directory."""
    out: list[Link | File | Action] = [
        Link(
            path=f"{NETWORK_DIR}/{name}",
            target="/dev/null",
            guards=("incident-2",),
            why=f"Mask the vendor file {name} that manages container interfaces",
        )
        for name in names
    ]
    if foreign_routes == "keep" and supports(systemd, "networkd.manage_foreign_routes"):
        out.append(
            _file(
                f"{NETWORKD_CONF_DIR}/50-netharden.conf",
                "networkd/networkd.conf.j2",
                systemd,
                ("hazard-foreign-routes",),
                "Leave routes and policy rules installed by CNI plugins alone",
            )
        )
        # networkd reads networkd.conf only when it starts; a restart can briefly drop
        # DHCP leases, so appliers run it only when asked (it takes effect at boot anyway)
        triggers = unit_triggers(NETWORKD, *NETWORKD_CONF) + (() if reloads else (f"{NETWORK_DIR}/",))
        out.append(
            Action(
                "networkd-restart",
                ("systemctl", "try-restart", NETWORKD),
                "networkd reads networkd.conf only at start",
                phase=PHASE_NETWORKD + 1,
                disruptive=True,
                triggers=triggers,
                unit=NETWORKD,
                allow="networkd",
            )
        )
    return tuple(out)


@lru_cache(maxsize=16)
def reload_action(systemd: int, also: tuple[str, ...] = ()) -> Action:
    if supports(systemd, "networkctl.reload"):
        return Action(
            "networkd-reload",
            ("networkctl", "reload"),
            "load the new .network/.netdev files",
            triggers=(f"{NETWORK_DIR}/", *also),
        )
    # the restart is the reload: it reads the network directory and networkd.conf
    return Action(
        "networkd-reload",
        ("systemctl", "restart", NETWORKD),
        "systemd < 244 has no 'networkctl reload'",
        triggers=unit_triggers(NETWORKD, *NETWORKD_CONF, f"{NETWORK_DIR}/", *also),
        unit=NETWORKD,
    )
