"""``nm-manages-container-interfaces``: NetworkManager manages container and CNI interfaces.

Incident 2 on a NetworkManager host: a device NM manages is NM's - it sets its sysctls, may
activate a profile on it, and when a device leaves the unmanaged list NM takes it over
(measured for issue 15: after ``nmcli general reload`` dropped cni0 from unmanaged-devices, NM
deleted cni0's address and detached its veth). Only unmanaged keeps NM away; ``[main]
no-auto-default`` only stops the "Wired connection N" profiles NM otherwise creates, and runs
DHCP with, on every managed ethernet device without a profile - veths included (measured).

How it decides (the reader and matcher are ``netharden/doctor/nm_config.py``: NM 1.42's merge
of NetworkManager.conf and conf.d, device specs, [device*] sections, keyfile profiles):

* Devices: for every glob of ``netharden.presets.PRESETS`` sample interfaces (a glob's "*" and
  "?" filled in two ways, e.g. veth0 and veth1a2b3c4) with NM's type and driver for their kind.
  A glob is covered when every sample is unmanaged: by ``keyfile.unmanaged-devices``, by a
  [device*] section with ``managed=0`` (the first one that gives ``managed`` for it), or - for
  veths, where no [device*] section says ``managed=1`` - by the udev rule of NetworkManager's
  package (85-nm-unmanaged.rules marks veths NM_UNMANAGED where udev runs).
* One finding per preset with uncovered globs; it says whether ``no-auto-default`` lets NM create
  "Wired connection" profiles on them. Where netharden's own conf.d file is on the host, the
  presets it lists are the ones the host chose (its profile's ``unmanaged.presets``; a runtime
  the host does not run has no devices): from files, a preset none of whose globs that file
  lists is not reported (weave's vethwe* is a veth, but weave was not chosen). Its own presets
  are, whatever undid them (a later file that resets or edits the list, in part or whole); on
  a host without netharden's file every preset is. Live interfaces are always judged.
* One finding per loaded keyfile profile that NM could autoconnect on an uncovered sample (or
  live interface) that it does not name literally: a catch-all (no interface-name, [match] or
  mac-address) or a [match] that catches container interfaces.
* Live (``--live`` or the host itself): the interfaces of the namespace whose names match a preset
  glob. With ``nmcli`` and NetworkManager running in this network namespace
  (``nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device``), each one whose state is not
  "unmanaged" is a finding; without, they are judged by the files like the samples.
* ``fixed_by``: a live finding is fixed when the profile's files make the device unmanaged (NM
  lets it go once ``netharden-nm-reload-conf`` ran ``nmcli general reload conf``); the file
  findings are checked again with the profile's files laid over the host.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from ...presets import PRESETS
from ..host import Host
from ..model import Finding
from ..nm_config import (
    NM_TYPES,
    NMConfig,
    NMDevice,
    Profile,
    can_activate,
    device_from_iface,
    live_devices,
    load_config,
    load_profiles,
    matches,
    not_nm_host,
    udev_unmanages_veths,
    unmanaged_by,
)

ID = "nm-manages-container-interfaces"
TITLE = "NetworkManager manages container interfaces"
SEVERITY = "error"
INCIDENT = "incident-2"
HINT = (
    "set platform.stack: networkmanager with unmanaged.presets for your runtime and CNI: netharden renders "
    "/etc/NetworkManager/conf.d/50-netharden-unmanaged.conf (keyfile.unmanaged-devices+= for the presets' names, "
    "no-auto-default=*)"
)
NEEDS = "files"

# the kernel kind of the interfaces each preset glob names
KINDS = {
    "docker0": "bridge",
    "docker_gwbridge": "bridge",
    "br-????????????": "bridge",
    "veth*": "veth",
    "cni*": "bridge",
    "cbr0": "bridge",
    "flannel*": "vxlan",
    "cali*": "veth",
    "tunl0": "ipip",
    "vxlan.calico": "vxlan",
    "vxlan-v6.calico": "vxlan",
    "wireguard.cali": "wireguard",
    "cilium_*": "veth",
    "lxc*": "veth",
    "weave": "bridge",
    "datapath": "openvswitch",
    "vethwe*": "veth",
    "vxlan-6784": "vxlan",
    "vx-*": "vxlan",
    "kube-ipvs0": "dummy",
    "kube-bridge": "bridge",
    "kube-dummy-if": "dummy",
    "nodelocaldns": "dummy",
}
_FILLS = (("0", "0123456789ab"), ("1a2b3c4", "fedcba987654"))


def applies(host: Host) -> str | None:
    return not_nm_host(host)


def samples(glob: str) -> list[NMDevice]:
    """Interfaces a preset glob names, as NM sees them (a glob KINDS does not know is taken for
    a veth's: the kind NM treats as ethernet, auto-default profiles included)."""
    kind = KINDS.get(glob, "veth")
    names = []
    for star, hexes in _FILLS:
        name, q = [], 0
        for c in glob:
            if c == "*":
                name.append(star)
            elif c == "?":
                name.append(hexes[q % len(hexes)])
                q += 1
            else:
                name.append(c)
        names.append("".join(name)[:15])
    driver = None if kind in ("ipip", "openvswitch") else kind
    return [NMDevice(n, NM_TYPES[kind], driver, None, f"{kind} ({glob})") for n in dict.fromkeys(names)]


def _auto_default(cfg: NMConfig, devs: list[NMDevice]) -> list[NMDevice]:
    """The managed ethernet-like devices NM would create a "Wired connection" profile for."""
    return [d for d in devs if d.type == "ethernet" and not matches(cfg.no_auto_default_specs, d)]


def _unmanaged_text(cfg: NMConfig) -> str:
    value = cfg.value("keyfile", "unmanaged-devices")
    if not value:
        return "keyfile.unmanaged-devices is not set"
    return f"keyfile.unmanaged-devices={value} (last set in {cfg.where('keyfile', 'unmanaged-devices')}) does not cover them"


def _live_candidates(host: Host):
    globs = [g for globs, _ in PRESETS.values() for g in globs]
    return [i for i in host.interfaces if any(fnmatchcase(i.name, g) for g in globs)] if host.live else []


def judge(host: Host) -> tuple[NMConfig, list[Profile], dict[str, list[NMDevice]], list[NMDevice]]:
    """(config, profiles, preset -> uncovered samples, uncovered live interfaces)."""
    cfg = load_config(host)
    profiles = load_profiles(host, cfg)
    udev_rule = udev_unmanages_veths(host)
    uncovered: dict[str, list[NMDevice]] = {}
    for preset, (globs, _) in PRESETS.items():
        for glob in globs:
            for dev in samples(glob):
                if unmanaged_by(cfg, dev, udev_rule) is None:
                    uncovered.setdefault(preset, []).append(dev)
    live = [device_from_iface(i) for i in _live_candidates(host)]
    live = [d for d in live if unmanaged_by(cfg, d, udev_rule) is None]
    return cfg, profiles, uncovered, live


def _chosen_presets(host: Host) -> set[str] | None:
    """The presets netharden's own conf.d file lists (any of their globs, or driver:veth),
    or None when the host has no such file."""
    from ...renderers.networkmanager import CONF

    text = host.read_text(CONF)
    if text is None:
        return None
    listed = set(re.findall(r"interface-name:([^;,\s]+)", text))
    chosen = {preset for preset, (globs, _) in PRESETS.items() if listed & set(globs)}
    if "driver:veth" in text:
        chosen.add("veth")
    return chosen


def _globs(devs: list[NMDevice]) -> list[str]:
    return list(dict.fromkeys(d.description.split("(", 1)[1].rstrip(")") for d in devs))


def uncovered_all(uncovered: dict[str, list[NMDevice]]) -> list[NMDevice]:
    return [d for devs in uncovered.values() for d in devs]


def check(host: Host) -> list[Finding]:
    cfg, profiles, uncovered, live_uncovered = judge(host)
    findings: list[Finding] = []
    if cfg.error:
        findings.append(
            Finding(
                subject=host.display(cfg.error.split(":", 1)[0]),
                message=(
                    f"NetworkManager refuses its configuration ({cfg.error}): it does not start, "
                    "and keeps the old configuration on a reload"
                ),
            )
        )
        return findings
    chosen = _chosen_presets(host)
    for preset, devs in uncovered.items():
        globs = _globs(devs)
        if chosen is not None and preset not in chosen:
            continue  # a runtime this host chose not to cover (see the module docstring)
        message = (
            f"NetworkManager manages them ({PRESETS[preset][1]}; preset {preset}): {_unmanaged_text(cfg)} "
            "and no [device*] section with managed=0 matches them"
        )
        veths = _globs(_auto_default(cfg, devs))
        if veths:
            message += (
                f"; main.no-auto-default does not cover {', '.join(veths)} either: NetworkManager creates a "
                '"Wired connection" profile for each such device and runs DHCP on it'
            )
        findings.append(Finding(subject=", ".join(globs), message=message))
    devices, why_not = live_devices(host) if host.live else (None, "")
    if devices is not None:
        state = {d.name: d for d in devices}
        for iface in _live_candidates(host):
            nd = state.get(iface.name)
            if nd is None or nd.state == "unmanaged":
                continue
            conn = f", connection {nd.connection!r}" if nd.connection else ""
            findings.append(
                Finding(
                    subject=iface.name,
                    message=(
                        f"NetworkManager manages {iface.name} now (nmcli: {nd.type}, state {nd.state}{conn}): "
                        "a container interface NM configures and takes over"
                    ),
                )
            )
    else:
        for dev in live_uncovered:
            if not any(fnmatchcase(dev.name, g) for g in _globs(uncovered_all(uncovered))):
                findings.append(
                    Finding(
                        subject=dev.name,
                        message=(
                            f"NetworkManager manages {dev.name} ({dev.description}; judged by its configuration, "
                            f"nmcli not asked: {why_not}): {_unmanaged_text(cfg)} and no [device*] section with "
                            "managed=0 matches it"
                        ),
                    )
                )
    targets = uncovered_all(uncovered) + live_uncovered
    for prof in profiles:
        caught = [d for d in targets if can_activate(prof, d) and prof.interface_name != d.name]
        if not caught:
            continue
        names = ", ".join(dict.fromkeys(d.name for d in caught))
        if prof.catch_all:
            why = (
                f"has no interface-name, [match] or mac-address: NetworkManager can activate it on any "
                f"managed {prof.type} device"
            )
        else:
            why = f"its [match] interface-name={prof.get('match', 'interface-name')} catches container interfaces"
        findings.append(
            Finding(
                subject=host.display(prof.path),
                message=(
                    f"profile {prof.id!r} (type {prof.type}, autoconnect, priority {prof.autoconnect_priority}) {why}; "
                    f"it could activate on {names}, container interfaces NetworkManager manages"
                ),
            )
        )
    return findings


def fixed_by(profile, plan, finding: Finding, host: Host):
    """A live finding: fixed when the profile's files unmanage the device. Others: None (the
    runner checks again with the profile's files in place)."""
    iface = next((i for i in host.interfaces if i.name == finding.subject), None) if host.live else None
    if iface is None or not finding.message.startswith(f"NetworkManager manages {iface.name} now"):
        return None
    from ..runner import plan_overlay

    fixed = host.with_overlay(plan_overlay(plan))
    cfg = load_config(fixed)
    by = unmanaged_by(cfg, device_from_iface(iface), udev_unmanages_veths(fixed))
    if by is None:
        return False, f"{iface.name} stays managed with the profile's files in place ({_unmanaged_text(cfg)})"
    return True, (
        f"{by} of the profile's files unmanages it; NetworkManager lets it go when netharden-nm-reload-conf "
        "runs nmcli general reload conf"
    )
