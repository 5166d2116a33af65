"""``catchall-network``: a ``.network`` file that can match virtual interfaces and manages them.

Incident 1 (a runtime ``/run/systemd/network/00-.network`` without a usable [Match] took every
new interface, docker's veths included; containers had no network) and incident 2 (networkd
raced docker/flannel for bridges and veths). A file that networkd applies to a container
interface configures it with networkd's defaults: it takes veths out of docker0, changes
``accept_ra``, holds links in "configuring" (measured on 252 by the lab's runtime-catchall
scenario).

How it decides (the reader and matcher are ``netharden/doctor/networkd_config.py``: networkd's
directories, shadowing, masks, drop-ins, [Match] as net_match_config() of systemd 252, Kind=
only from 251, a [Match] with no condition ignored from 245, host conditions counted as true):

* Devices: a fixed set of representative virtual interfaces (docker0, br-0123456789ab,
  docker_gwbridge, cni0, virbr0, weave bridges; veth1a2b3c4, cali0123456789a, lxc0123,
  cilium_host veths; vx-001-abcde, flannel.1, vxlan.calico, cilium_vxlan vxlans; tunl0 ipip;
  tun0 and tap0; kube-ipvs0 dummy; flannel-wg wireguard - each with the kind, driver and type
  networkd sees) plus, on a live host, every interface of the namespace that has a kind.
* For each device the FIRST loaded file in networkd's order that matches it decides. The file is
  a finding when it manages the device (no ``[Link] Unmanaged=yes``), unless the device is one
  networkd creates itself (a ``.netdev`` names it), the file names it literally (a positive
  ``Name=`` word without glob characters: written for that interface, not a catch-all), or the
  file is one of systemd's own nspawn/VM files in /usr/lib (they match only systemd-nspawn's
  ``ve-*``/``vb-*``/``vz-*``/``vt-*`` devices).
* One finding per offending file, naming the live interfaces it takes now and the kinds of
  representatives it would take.
"""

from __future__ import annotations

from ..host import Host
from ..model import Finding
from ..networkd_config import REPRESENTATIVES, ConfFile, Device, first_match, literally_named, load_files, netdev_names
from ..nm_config import networkd_absent

ID = "catchall-network"
TITLE = "a .network file matches and manages container interfaces"
SEVERITY = "error"
INCIDENT = "incident-1"
HINT = (
    "set networkd.quarantine (moves stray catch-all files out of /run and /etc systemd/network at boot), "
    "unmanaged.presets (0-netharden-unmanaged-*.network sort first and leave container interfaces alone) "
    "and precise uplinks[].match (netharden adds Kind=!* / Driver=! exclusions to broad matches)"
)
NEEDS = "files"


def applies(host: Host) -> str | None:
    """Not on a NetworkManager host without systemd-networkd (nm_config.networkd_absent())."""
    return networkd_absent(host)


# systemd's own files for systemd-nspawn / systemd-vmspawn devices (ve-*, vb-*, vz-*, vt-*, host0)
SYSTEMD_STOCK = frozenset(
    {
        "80-container-ve.network",
        "80-container-vb.network",
        "80-container-vz.network",
        "80-vm-vt.network",
        "80-container-host0.network",
    }
)
VENDOR_DIRS = ("/usr/lib/systemd/network/", "/lib/systemd/network/")


def live_devices(host: Host) -> list[Device]:
    """The live virtual interfaces (those with a kind) as networkd sees them."""
    if not host.live:
        return []
    return [Device.from_iface(i) for i in host.interfaces if i.kind]


def _stock(cf: ConfFile) -> bool:
    return cf.name in SYSTEMD_STOCK and cf.path.startswith(VENDOR_DIRS)


def catches(host: Host, files: list[ConfFile] | None = None) -> dict[str, tuple[ConfFile, list[Device], list[Device]]]:
    """path -> (file, live devices it manages by accident, representatives it would manage)."""
    files = load_files(host, ".network") if files is None else files
    own = netdev_names(host)
    result: dict[str, tuple[ConfFile, list[Device], list[Device]]] = {}
    for live, devices in ((False, REPRESENTATIVES), (True, live_devices(host))):
        for dev in devices:
            cf = first_match(files, dev)
            if cf is None or cf.unmanaged or dev.name in own or literally_named(cf, dev.name) or _stock(cf):
                continue
            entry = result.setdefault(cf.path, (cf, [], []))
            (entry[1] if live else entry[2]).append(dev)
    return result


def kinds_text(devices: list[Device]) -> str:
    """ "bridge (docker0, cni0), veth (veth1a2b3c4) devices"."""
    groups: dict[str, list[str]] = {}
    for d in devices:
        groups.setdefault(d.kind or d.type, []).append(d.name)
    return ", ".join(f"{k} ({', '.join(v)})" for k, v in groups.items()) + " devices"


def describe_match(cf: ConfFile) -> str:
    m = cf.match
    assert m is not None  # a file that matched has a [Match]
    text = f"[Match] {m.describe()}"
    if not m.interface_conditions:
        text += ", which matches every interface"
    if cf.dropins:
        text += f" (with drop-ins {', '.join(cf.dropins)})"
    return text


def quarantinable(cf: ConfFile) -> bool:
    """What netharden-quarantine moves: a file directly in /run or /etc systemd/network whose
    [Match] has no interface condition, or only Name= with a word of "*"/"?" and no "!" word."""
    import os

    if os.path.dirname(cf.path) not in ("/run/systemd/network", "/etc/systemd/network"):
        return False
    m = cf.match
    assert m is not None
    if not m.interface_conditions:
        return True
    if set(k for k, v in m.globs.items() if v) != {"Name"} or m.macs or m.properties:
        return False
    words = m.globs["Name"]
    return not any(w.startswith("!") for w in words) and any(w and set(w) <= {"*", "?"} and "*" in w for w in words)


def check(host: Host) -> list[Finding]:
    findings = []
    for path, (cf, live, reps) in sorted(catches(host).items()):
        reps = [d for d in reps if d.name not in {x.name for x in live}]
        parts = [describe_match(cf)]
        if live:
            parts.append(f"takes {', '.join(d.name for d in live)} now")
        if reps:
            parts.append(("would also take " if live else "would take ") + kinds_text(reps))
        message = "; ".join(parts) + (
            ": networkd configures them itself (first matching file in its order, "
            "not Unmanaged=yes) and fights the container runtime for them"
        )
        hint = ""
        if quarantinable(cf):
            default = " (the default /run/systemd/network/*.network does)" if path.startswith("/run/") else ""
            hint = (
                f"networkd.quarantine covering {path}{default} moves this catch-all away at boot and whenever "
                "it appears; unmanaged.presets keep container interfaces out of any file's reach"
            )
        findings.append(Finding(subject=host.display(path), message=message, hint=hint))
    return findings


def fixed_by(profile, plan, finding: Finding, host: Host):
    """A catch-all the profile's quarantine helper would move is fixed by the profile even
    when the Plan's files alone do not shadow it for every interface; otherwise None (the
    runner lays the Plan's files over the host and checks again)."""
    import fnmatch

    if not any(f.path.endswith("/netharden-quarantine") for f in plan.files):
        return None
    for path, (cf, _, _) in catches(host).items():
        if host.display(path) == finding.subject and quarantinable(cf):
            globs = [g for g in profile.quarantine if fnmatch.fnmatchcase(path, g)]
            if globs:
                return True, f"netharden-quarantine moves it away (networkd.quarantine {globs[0]})"
    return None
