"""``vendor-docker-network``: an unmasked ``50-docker.network`` / ``50-docker-veth.network``-style
file that makes networkd manage docker's bridges or veths.

Incident 2 (Kubernetes + flannel on CoreOS): the vendor files ``50-docker.network``
(``[Match] Type=bridge Name=docker*``) and ``50-docker-veth.network`` (``[Match] Driver=veth``),
both with an empty [Network], made networkd manage docker0 and every veth with its defaults;
networkd raced dockerd and flannel (veths taken out of the bridge, addresses and sysctls
changed: the lab's networkd-docker-race scenario measured it on 252). CoreOS later turned them
into ``Unmanaged=yes`` files; hosts that kept or copied the old ones kept the race.

How it decides (reader and matcher: ``netharden/doctor/networkd_config.py``):

* Devices: docker's representatives (docker0, docker_gwbridge and br-0123456789ab bridges, a
  veth1a2b3c4 veth) and, live, bridges named like docker's (docker0, docker_gwbridge,
  br- + 12 hex) and veths (kind veth) named veth* or enslaved to such a bridge.
* For each device the first loaded ``.network`` in networkd's order decides; it is a finding
  when it manages the device (no ``Unmanaged=yes``) and is aimed at container interfaces: it
  matches none of the representative plain NICs (eth0/ens3/enp3s0 with their drivers, paths and
  MACs). A file that also matches NICs is a catch-all, reported by ``catchall-network``. A
  device networkd creates itself (a ``.netdev`` names it: a profile's own bridge named docker0
  for ``"bridge": "docker0"``) is networkd's to manage and does not count.
* One finding per file, in whichever directory it lies (the fix, a mask in /etc, shadows all).
"""

from __future__ import annotations

import os
import re

from ..host import Host
from ..model import Finding
from ..networkd_config import PHYSICAL, REPRESENTATIVES, ConfFile, Device, first_match, load_files, netdev_names
from ..nm_config import networkd_absent

ID = "vendor-docker-network"
TITLE = "a vendor .network file makes networkd manage docker's bridges and veths"
SEVERITY = "error"
INCIDENT = "incident-2"
HINT = (
    "list the file in networkd.mask (netharden links /etc/systemd/network/NAME to /dev/null; default "
    "[50-docker.network, 50-docker-veth.network]) and keep unmanaged.presets docker and veth"
)
NEEDS = "files"


def applies(host: Host) -> str | None:
    """Not on a NetworkManager host without systemd-networkd (nm_config.networkd_absent())."""
    return networkd_absent(host)


DOCKER_REPS = ("docker0", "docker_gwbridge", "br-0123456789ab", "veth1a2b3c4")
_DOCKER_BRIDGE = re.compile(r"^(docker0|docker_gwbridge|br-[0-9a-f]{12})$")


def docker_devices(host: Host) -> tuple[list[Device], list[Device]]:
    """(representatives, live docker bridges and veths)."""
    reps = [d for d in REPRESENTATIVES if d.name in DOCKER_REPS]
    live = []
    if host.live:
        for i in host.interfaces:
            if i.kind == "bridge" and _DOCKER_BRIDGE.match(i.name):
                live.append(Device.from_iface(i))
            elif i.kind == "veth" and (i.name.startswith("veth") or (i.master and _DOCKER_BRIDGE.match(i.master))):
                live.append(Device.from_iface(i))
    return reps, live


def check(host: Host) -> list[Finding]:
    files = load_files(host, ".network")
    own = netdev_names(host)
    reps, live = docker_devices(host)
    hits: dict[str, tuple[ConfFile, list[str], list[str]]] = {}
    for is_live, devices in ((False, reps), (True, live)):
        for dev in devices:
            cf = first_match(files, dev)
            if cf is None or cf.match is None or cf.unmanaged or dev.name in own:
                continue
            if any(cf.match.matches(nic) for nic in PHYSICAL):
                continue  # a catch-all: catchall-network reports it
            _, live_names, rep_names = hits.setdefault(cf.path, (cf, [], []))
            (live_names if is_live else rep_names).append(dev.name)
    findings = []
    for path, (cf, live_names, rep_names) in sorted(hits.items()):
        rep_names = [n for n in rep_names if n not in live_names]
        assert cf.match is not None
        parts = [f"[Match] {cf.match.describe()} manages docker's interfaces"]
        if live_names:
            parts.append(f"takes {', '.join(live_names)} now")
        if rep_names:
            parts.append(("would also take " if live_names else "takes ") + ", ".join(rep_names))
        name = os.path.basename(path)
        message = "; ".join(parts) + (
            ": networkd races dockerd for them (veths taken out of the bridge, "
            "addresses and sysctls changed) - it is not masked"
        )
        hint = (
            f"networkd.mask: [{name}] (a symlink /etc/systemd/network/{name} -> /dev/null shadows it) and "
            "unmanaged.presets docker and veth"
        )
        findings.append(Finding(subject=host.display(path), message=message, hint=hint))
    return findings
