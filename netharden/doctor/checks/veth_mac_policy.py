"""``veth-mac-policy``: the effective ``.link`` configuration gives veth and CNI devices
``MACAddressPolicy=persistent``.

The hazard (DESIGN, "related hazards"; systemd NEWS 242): from systemd 242 the persistent MAC
policy also covers devices without identifying information (veth, bridge, tun, vxlan ...): udev
replaces the random MAC such a device got with one derived from its name, after the runtime or
CNI plugin already used the first one (neighbour entries, flannel's VXLAN FDB). Debian's
``/usr/lib/systemd/network/99-default.link`` (``OriginalName=*``, ``MACAddressPolicy=persistent``)
does exactly that.

How it decides (reader and matcher: ``netharden/doctor/networkd_config.py``; udev 252
``link_get_config()``: the FIRST loaded ``.link`` in lexical order whose [Match] matches applies,
alone; loopback never; a [Match] with no condition is ignored from 245 like a ``.network``;
OriginalName= matches the kernel's name):

* Devices: a representative container veth (veth1a2b3c4); when a CNI is installed
  (``foreign-routes``' evidence: live CNI interfaces or /etc/cni/net.d config) also the CNI
  representatives (cali0123456789a, lxc0123, cilium_host veths; flannel.1, vxlan.calico,
  cilium_vxlan vxlans; cni0); live: every veth and vxlan of the namespace and every interface
  the CNI presets name. Bridges other than cni0 and tun devices are not judged: a persistent MAC
  is what a bridge wants (incident 3), docker sets docker0's MAC itself.
* A finding per ``.link`` file whose last valid ``[Link] MACAddressPolicy=`` is ``persistent``
  and which is the first match of one of those devices. Not judged on a systemd < 242.
"""

from __future__ import annotations

import fnmatch

from ..host import Host
from ..model import Finding
from ..networkd_config import REPRESENTATIVES, ConfFile, Device, first_match, host_version, load_files
from .foreign_routes import CNI_GLOBS, cni_evidence

ID = "veth-mac-policy"
TITLE = "udev gives veth/CNI devices a persistent MAC"
SEVERITY = "warning"
INCIDENT = "hazard-mac-policy"
HINT = (
    "keep unmanaged.presets for your runtime and CNI: netharden renders 0-netharden-<preset>.link with "
    "MACAddressPolicy=none, which sorts before 99-default.link"
)
NEEDS = "files"

PERSISTENT_SINCE = 242
VETH_REPS = ("veth1a2b3c4",)
CNI_REPS = ("cali0123456789a", "lxc0123", "cilium_host", "flannel.1", "vxlan.calico", "cilium_vxlan", "cni0")


def policy(cf: ConfFile) -> str | None:
    value = None
    for v in cf.values("Link", "MACAddressPolicy"):
        if v in ("persistent", "random", "none"):
            value = v
        elif v == "":
            value = None
    return value


def devices(host: Host) -> tuple[list[Device], list[Device]]:
    live_cni, cni_files = cni_evidence(host)
    wanted = VETH_REPS + (CNI_REPS if (live_cni or cni_files) else ())
    reps = [d for d in REPRESENTATIVES if d.name in wanted]
    live = []
    if host.live:
        for i in host.interfaces:
            if i.kind in ("veth", "vxlan") or any(fnmatch.fnmatchcase(i.name, g) for g in CNI_GLOBS):
                live.append(Device.from_iface(i))
    return reps, live


def check(host: Host) -> list[Finding]:
    version = host_version(host)
    if version is not None and version < PERSISTENT_SINCE:
        return []
    files = load_files(host, ".link", version)
    reps, live = devices(host)
    hits: dict[str, tuple[ConfFile, list[str], list[str]]] = {}
    for is_live, devs in ((False, reps), (True, live)):
        for dev in devs:
            cf = first_match(files, dev)
            if cf is None or policy(cf) != "persistent":
                continue
            entry = hits.setdefault(cf.path, (cf, [], []))
            (entry[1] if is_live else entry[2]).append(dev.name)
    findings = []
    for path, (cf, live_names, rep_names) in sorted(hits.items()):
        rep_names = [n for n in rep_names if n not in live_names]
        targets = []
        if live_names:
            targets.append(f"{', '.join(live_names)} now")
        if rep_names:
            targets.append(("and would be of " if live_names else "") + ", ".join(rep_names))
        assert cf.match is not None
        parts = [f"[Match] {cf.match.describe()} with MACAddressPolicy=persistent is the first .link of", *targets]
        message = " ".join(parts) + (
            ": udev replaces the MAC the runtime or CNI plugin gave these devices "
            "with one derived from the name, after it was already in use"
        )
        findings.append(Finding(subject=host.display(path), message=message))
    return findings
