"""``foreign-routes``: systemd-networkd manages foreign routes / routing policy rules while a CNI
plugin is installed.

The hazard (DESIGN, "related hazards"): networkd >= 246 deletes routes it did not create
(``ManageForeignRoutes=yes``, the default) and >= 249 routing policy rules
(``ManageForeignRoutingPolicyRules=yes``) when it reconfigures a link; flannel, calico and
cilium install exactly such routes and rules, so pods lose connectivity after a
``networkctl reload`` or a networkd restart (the lab's foreign-routes scenario measured: on
reconfigure, not on restart, on 252).

How it decides:

* A CNI is installed when a live interface matches the CNI presets of ``netharden/presets.py``
  (flannel, calico, cilium, weave, cni, kube: flannel*, cali*, tunl0, vxlan.calico, cilium_*,
  lxc*, weave, cni*, cbr0, kube-ipvs0 ...) or, from files alone, ``/etc/cni/net.d`` holds a
  non-empty ``*.conf``, ``*.conflist`` or ``*.json`` other than podman's own network (JSON
  ``"name": "podman"``: podman 3 ships it; its bridge plugin installs no host routes).
* Only where networkd would manage links at all: the first loaded ``.network`` of some device
  manages it (a live interface of the namespace, a representative container interface or a
  representative plain NIC; ``netharden/doctor/networkd_config.py``). A host whose only files
  are ``Unmanaged=yes`` ones, masks, or files matching nothing present or typical (Debian's
  stock nspawn/wifi files) is not reported: networkd touches no link there. Whether the service
  is enabled is not judged (images enable it through presets the doctor cannot evaluate).
* The effective values come from networkd.conf and its drop-ins (last valid assignment wins).
  A key is judged only on a systemd that knows it (ManageForeignRoutes= 246,
  ManageForeignRoutingPolicyRules= 249, NEWS 246/249; unknown version: both): there is nothing
  to set on older ones.
* One finding per key; the subject names the key, the message the file that set it (or the
  default) and the CNI evidence.
"""

from __future__ import annotations

import fnmatch
import json

from ...presets import PRESETS
from ..host import Host
from ..model import Finding
from ..networkd_config import (
    MANAGE_FOREIGN_ROUTES_SINCE,
    MANAGE_FOREIGN_RULES_SINCE,
    PHYSICAL,
    REPRESENTATIVES,
    Device,
    first_match,
    host_version,
    load_files,
    networkd_conf,
)
from ..nm_config import networkd_absent

ID = "foreign-routes"
TITLE = "networkd deletes routes and rules a CNI plugin installed"
SEVERITY = "warning"
INCIDENT = "hazard-foreign-routes"
HINT = (
    "set networkd.foreign_routes: keep (netharden writes networkd.conf.d/50-netharden.conf with "
    "ManageForeignRoutes=no and ManageForeignRoutingPolicyRules=no)"
)
NEEDS = "files"


def applies(host: Host) -> str | None:
    """Not on a NetworkManager host without systemd-networkd (nm_config.networkd_absent())."""
    return networkd_absent(host)


CNI_PRESETS = ("flannel", "calico", "cilium", "weave", "cni", "kube")
CNI_GLOBS = tuple(g for p in CNI_PRESETS for g in PRESETS[p][0])
CNI_DIR = "/etc/cni/net.d"
CNI_SUFFIXES = (".conf", ".conflist", ".json")


def cni_evidence(host: Host) -> tuple[list[str], list[str]]:
    """(live CNI interface names, CNI config files) - both empty: no CNI seen."""
    live = []
    if host.live:
        live = [i.name for i in host.interfaces if any(fnmatch.fnmatchcase(i.name, g) for g in CNI_GLOBS)]
    files = []
    if host.kind(CNI_DIR) in ("dir", "link"):
        for name in host.listdir(CNI_DIR):
            path = f"{CNI_DIR}/{name}"
            if name.endswith(CNI_SUFFIXES) and not name.startswith(".") and host.kind(path) in ("file", "link"):
                text = host.read_text(path)
                if text and not _podman_default(text):
                    files.append(path)
    return live, files


def _podman_default(text: str) -> bool:
    """podman 3's own CNI network (87-podman-bridge.conflist, "name": "podman", bridge
    cni-podman0): container networking for podman, not a cluster CNI that installs host routes."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("name") == "podman"


def networkd_manages_links(host: Host) -> bool:
    files = load_files(host, ".network")
    devices = list(REPRESENTATIVES) + list(PHYSICAL)
    if host.live:
        devices += [Device.from_iface(i) for i in host.interfaces]
    for dev in devices:
        cf = first_match(files, dev)
        if cf is not None and not cf.unmanaged:
            return True
    return False


def check(host: Host) -> list[Finding]:
    live, files = cni_evidence(host)
    if not (live or files):
        return []
    version = host_version(host)
    keys = [
        ("ManageForeignRoutes", MANAGE_FOREIGN_ROUTES_SINCE, "routes"),
        ("ManageForeignRoutingPolicyRules", MANAGE_FOREIGN_RULES_SINCE, "routing policy rules"),
    ]
    keys = [k for k in keys if version is None or version >= k[1]]
    if not keys or not networkd_manages_links(host):
        return []
    settings = networkd_conf(host)
    evidence = []
    if live:
        evidence.append(f"CNI interfaces {', '.join(live)}")
    if files:
        evidence.append(f"CNI config {', '.join(host.display(f) for f in files)}")
    findings = []
    for key, _, what in keys:
        s = settings[key]
        if not s.value:
            continue
        source = f"set to yes in {host.display(s.source)}" if s.source else "yes by default (no networkd.conf sets it)"
        findings.append(
            Finding(
                subject=f"networkd.conf [Network] {key}",
                message=(
                    f"{key}= is {source} while a CNI is installed ({'; '.join(evidence)}): systemd-networkd "
                    f"deletes the {what} the CNI plugin installed whenever it reconfigures a link"
                ),
            )
        )
    return findings
