"""``nm-bridge-mac-not-pinned``: a NetworkManager bridge whose MAC is not pinned (incident 3).

A Linux bridge whose MAC was never set takes the smallest MAC of its ports and changes it as
ports come and go (see bridge_mac_follows_ports.py: the kernel re-derives it while
``addr_assign_type`` is not 3, NET_ADDR_SET). NetworkManager creates a bridge with a MAC only
when the profile gives one: ``bridge.mac-address`` (deprecated since 1.12), else the cloned MAC
of ``ethernet.cloned-mac-address`` when it yields an address (nm-device-bridge.c
create_and_realize()); on activation it sets the cloned MAC again (nm-settings(5), bridge
mac-address). ``cloned-mac-address`` unset falls back to a ``[connection*]`` default in
NetworkManager.conf, else "preserve" (nm-settings(5)): nothing set, the MAC follows the ports.
"permanent" is "preserve" for a bridge (it has no permanent address).

Rule, from files: a loaded keyfile profile of type bridge whose effective cloned MAC is not a
MAC address or ``stable`` (a MAC derived from connection.stable-id and the host's secret key,
set by NM: the same after every activation and reboot), and which has no ``bridge.mac-address``.
``random`` is reported: NM sets a new MAC on every activation, which moves the gateway MAC the
containers cache each time the bridge comes up again.

Live (nmcli, NetworkManager in this network namespace): a bridge NetworkManager manages (state
not "unmanaged") whose ``addr_assign_type`` is not 3. Bridges docker and udev pin (type 3) are
not reported; ``bridge-mac-follows-ports`` reports any bridge with ports as well.

``fixed_by``: the profile fixes a finding about bridge NAME when, with its files laid over the
host, the profile NM would autoconnect for NAME (highest autoconnect-priority, alone) pins the
MAC; NM sets it when it activates the profile (``nmcli connection up``, or a reboot).
"""

from __future__ import annotations

from ..host import Host
from ..model import Finding
from ..nm_config import (
    NMConfig,
    NMDevice,
    Profile,
    live_devices,
    load_config,
    load_profiles,
    normalize_mac,
    not_nm_host,
)
from .bridge_mac_follows_ports import NET_ADDR_SET, _words

ID = "nm-bridge-mac-not-pinned"
TITLE = "a NetworkManager bridge profile does not pin the bridge's MAC"
SEVERITY = "warning"
INCIDENT = "incident-3"
HINT = (
    "define the bridge under 'bridges' with platform.stack: networkmanager (bridges[].mac: stable or an explicit "
    "MAC; netharden's keyfile sets ethernet.cloned-mac-address), or nmcli connection modify PROFILE "
    "ethernet.cloned-mac-address MAC"
)
NEEDS = "files"


def applies(host: Host) -> str | None:
    return not_nm_host(host)


def cloned_mac(cfg: NMConfig, prof: Profile) -> tuple[str | None, str]:
    """(value, where it comes from) of the profile's effective ethernet.cloned-mac-address."""
    value = prof.ethernet("cloned-mac-address")
    if value:
        return value.strip(), "the profile"
    name = prof.interface_name or ""
    default, section = cfg.section_value(
        "connection", "ethernet.cloned-mac-address", NMDevice(name, "bridge", "bridge")
    )
    if default:
        return default.strip(), f"[{section}] of NetworkManager.conf"
    return None, "not set"


def pinned(cfg: NMConfig, prof: Profile) -> bool:
    if normalize_mac(prof.get("bridge", "mac-address")):
        return True
    value, _ = cloned_mac(cfg, prof)
    return value is not None and (normalize_mac(value) is not None or value == "stable")


def _problem(cfg: NMConfig, prof: Profile) -> str:
    value, where = cloned_mac(cfg, prof)
    name = prof.interface_name or "(no interface-name)"
    if value == "random":
        return (
            f"bridge profile {prof.id!r} ({name}) sets ethernet.cloned-mac-address=random ({where}): NetworkManager "
            "gives the bridge a new MAC on every activation, and the gateway MAC its containers cache changes with it"
        )
    shown = f"ethernet.cloned-mac-address={value} ({where})" if value else "no ethernet.cloned-mac-address"
    return (
        f"bridge profile {prof.id!r} ({name}) has {shown} and no bridge.mac-address: NetworkManager creates the bridge "
        "without a MAC, so it takes the smallest MAC of its ports and the gateway MAC its containers cache changes "
        "whenever a port with a smaller MAC joins or the smallest one leaves"
    )


def check(host: Host) -> list[Finding]:
    cfg = load_config(host)
    profiles = load_profiles(host, cfg)
    findings = [
        Finding(subject=host.display(p.path), message=_problem(cfg, p))
        for p in profiles
        if p.loaded and p.type == "bridge" and not pinned(cfg, p)
    ]
    if host.live:
        devices, _ = live_devices(host)
        managed = {d.name: d for d in devices or () if d.type == "bridge" and d.state != "unmanaged"}
        for iface in host.interfaces:
            nd = managed.get(iface.name)
            if nd is None or iface.kind != "bridge" or iface.addr_assign_type in (None, NET_ADDR_SET):
                continue
            conn = f" with profile {nd.connection!r}" if nd.connection else ""
            findings.append(
                Finding(
                    subject=iface.name,
                    message=(
                        f"NetworkManager manages bridge {iface.name}{conn} (state {nd.state}) and its MAC {iface.mac} has "
                        f"address type {_words(iface.addr_assign_type)}, not set: it follows the smallest MAC of its ports"
                    ),
                )
            )
    return findings


def _winner(cfg: NMConfig, profiles: list[Profile], name: str) -> tuple[Profile | None, list[Profile]]:
    """The bridge profile NM would autoconnect for ``name`` when one has the highest priority alone."""
    cands = [p for p in profiles if p.loaded and p.autoconnect and p.type == "bridge" and p.interface_name == name]
    if not cands:
        return None, cands
    top = max(p.autoconnect_priority for p in cands)
    best = [p for p in cands if p.autoconnect_priority == top]
    return (best[0] if len(best) == 1 else None), cands


def fixed_by(profile, plan, finding: Finding, host: Host):
    from ..runner import plan_overlay

    fixed = host.with_overlay(plan_overlay(plan))
    name = finding.subject
    before = next((p for p in load_profiles(host) if host.display(p.path) == finding.subject), None)
    if before is not None:
        name = before.interface_name or ""
    if not name:
        return None
    cfg = load_config(fixed)
    winner, cands = _winner(cfg, load_profiles(fixed, cfg), name)
    if winner is None:
        if len(cands) > 1:
            return False, (
                f"with the profile's files {len(cands)} bridge profiles for {name} share the highest "
                "autoconnect-priority: NetworkManager may pick one that does not pin the MAC"
            )
        return False, f"the profile's files have no bridge profile for {name} (bridges[].name)"
    if not pinned(cfg, winner):
        return False, f"{fixed.display(winner.path)}, the profile NetworkManager would pick for {name}, does not pin it"
    value, _ = cloned_mac(cfg, winner)
    return True, (
        f"{winner.path} pins ethernet.cloned-mac-address={value} and wins for {name} (autoconnect-priority "
        f"{winner.autoconnect_priority}); NetworkManager sets the MAC when it activates it (nmcli connection up "
        f"{winner.id}, or a reboot)"
    )
