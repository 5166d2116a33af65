"""``nic-owned-by-other-manager``: a NIC netharden's uplink file matches is configured by
ifupdown or NetworkManager too.

Two managers on one NIC fight: ifupdown's dhclient and networkd both set addresses and
routes, NetworkManager takes the device down and up again, and whichever started last wins
until the next lease or reboot. On Debian the installer's ``/etc/network/interfaces``
configures the primary NIC (``allow-hotplug eth0`` / ``iface eth0 inet dhcp``); netharden's
``20-netharden-uplink-*.network`` for the same NIC is then either inert (networkd disabled,
see ``stack-not-running``) or a second owner.

How it decides (the reader is ``netharden/doctor/owners.py``, shared with the role's
preflight):

* netharden's uplink files: the loaded ``20-netharden-uplink-*.network`` files (the overlay of
  ``--profile`` included) with their [Match] as networkd reads it (networkd_config.py).
* The other managers' NICs: ifupdown's ``iface`` stanzas that ``auto``/``allow-*`` bring up
  (ifupdown installed), NetworkManager's keyfiles and ifcfg-rh files that can autoconnect on
  a NIC, and, live, every physical NIC NetworkManager manages (its "Wired connection"
  default included) when NetworkManager runs.
* A NIC is tested as the live interface of that name (kind, driver, MAC), or, with ``--root``,
  as a physical ethernet device of the name (and MAC) the other manager names.
* One finding per NIC and manager, naming the file and line (``/etc/network/interfaces:12:
  iface eth0 inet dhcp``), what brings it up, and netharden's file that matches it.
"""

from __future__ import annotations

from ..host import Host
from ..model import Finding
from ..networkd_config import ConfFile, Device, load_files, normalize_mac
from ..nm_config import NMDevice, device_from_iface, networkd_absent
from ..owners import Claim, ifupdown_claims, live_state, nm_claims

ID = "nic-owned-by-other-manager"
TITLE = "a NIC netharden's uplink file matches is configured by ifupdown or NetworkManager too"
SEVERITY = "error"
INCIDENT = "config"
HINT = (
    "let one manager own the NIC: remove its ifupdown stanza (and auto/allow-hotplug line) or NetworkManager "
    "profile, or make NetworkManager leave it unmanaged; the role does this for ifupdown with "
    "netharden_takeover: true (the stanza moves to /etc/network/interfaces.netharden-released, "
    "networkd takes the NIC at the next boot); or narrow uplinks[].match"
)
NEEDS = "files"
ABOUT_PROFILE = True

OWN_UPLINK_PREFIX = "20-netharden-uplink-"


def applies(host: Host) -> str | None:
    return networkd_absent(host)


def own_uplinks(host: Host) -> list[ConfFile]:
    return [
        cf
        for cf in load_files(host, ".network")
        if cf.name.startswith(OWN_UPLINK_PREFIX) and cf.loaded and cf.match is not None
    ]


def _device(host: Host, claim: Claim) -> Device | None:
    for iface in host.interfaces:
        if claim.covers(iface.name, iface.mac):
            return Device.from_iface(iface)
    if claim.ifname is None:
        return None  # "any ethernet NIC" with no NIC known: nothing to test
    mac = normalize_mac(claim.mac)
    props = (("INTERFACE", claim.ifname), ("SUBSYSTEM", "net"))
    return Device(claim.ifname, None, None, "ether", mac, mac, None, props, "physical NIC (named by the other manager)")


def claims(host: Host) -> list[Claim]:
    """Every claim of ifupdown and NetworkManager on this host."""
    nics: list[NMDevice] = [device_from_iface(i) for i in host.interfaces if i.kind is None and i.type != "loopback"]
    live = live_state(host, "NetworkManager.service")
    active = None if live is None else live[1] == "active"
    return ifupdown_claims(host) + nm_claims(host, nics, active)


def conflicts(host: Host, found: list[Claim] | None = None) -> list[tuple[str, Claim, ConfFile]]:
    """(NIC, the other manager's claim, netharden's uplink file that matches the NIC), one per
    NIC and manager: what this check reports and what the role's preflight refuses."""
    uplinks = own_uplinks(host)
    if not uplinks:
        return []
    out: list[tuple[str, Claim, ConfFile]] = []
    seen: set[tuple[str, str]] = set()
    for claim in claims(host) if found is None else found:
        dev = _device(host, claim)
        if dev is None:
            continue
        own = next((cf for cf in uplinks if cf.match is not None and cf.match.matches(dev)), None)
        if own is None or (dev.name, claim.manager) in seen:
            continue
        seen.add((dev.name, claim.manager))
        out.append((dev.name, claim, own))
    return out


def describe(host: Host, nic: str, claim: Claim, own: ConfFile) -> str:
    by = f", brought up by {claim.by}" if claim.by else ""
    return f"{nic} is configured by {claim.manager} too: {claim.where()}{by}; netharden's {host.display(own.path)} matches it"


def check(host: Host) -> list[Finding]:
    return [Finding(nic, describe(host, nic, claim, own)) for nic, claim, own in conflicts(host)]
