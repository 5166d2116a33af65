"""``netplan-conflict``: another netplan file defeats netharden's ``/etc/netplan/60-netharden.yaml``.

On the netplan stack (renderers/netplan.py) the profile's uplinks have netplan ids that no
interface name has (``0-netharden-<uplink>``), so that netplan never merges another file's
definition into theirs and networkd takes their generated ``10-netplan-0-netharden-*.network``
before cloud-init's ``10-netplan-eth0.network``. What still defeats it (the pure rule is
``renderers.netplan.conflicts``; measured with netplan 0.106):

* another file defines one of netharden's ids (a bridge of the same name, say): netplan
  merges the two definitions, scalars of the later file win and addresses, nameservers and
  routes of both are applied;
* a file of the same name in a directory netplan prefers (/run/netplan over /etc/netplan
  over /lib/netplan) hides netharden's file;
* ``set-name`` renames the NIC away from the uplink's name match;
* a netdef whose generated file sorts before the uplink's can match the same NIC;
* a file netplan cannot parse: ``netplan generate`` then renders nothing at all.

It reads netplan's three directories under the root, as netplan does (``*.yaml``, a name in
a later directory hiding the same name in an earlier one). A host without netharden's
netplan file has nothing to conflict with.
"""

from __future__ import annotations

from ...renderers import netplan
from ..host import Host
from ..model import Finding

ID = "netplan-conflict"
TITLE = "another netplan file merges into, hides or shadows netharden's netplan file"
SEVERITY = "error"
INCIDENT = "config"
HINT = (
    "remove the other file's definition of that NIC or id (for cloud-init's 50-cloud-init.yaml: "
    "network: {config: disabled} in /etc/cloud/cloud.cfg.d/), or rename the profile's bridge"
)
NEEDS = "files"
# with --profile: also the conflicts the profile's netplan file would meet on this host
ABOUT_PROFILE = True


def netplan_files(host: Host) -> dict[str, str]:
    """path -> text of every *.yaml in /lib, /etc and /run netplan under the root."""
    files: dict[str, str] = {}
    for folder in netplan.NETPLAN_DIRS:
        for name in host.listdir(folder):
            path = f"{folder}/{name}"
            if name.endswith(".yaml") and host.kind(path) in ("file", "link"):
                text = host.read_text(path)
                if text is not None:
                    files[path] = text
    return files


def applies(host: Host) -> str | None:
    if host.kind(netplan.NETPLAN_FILE) not in ("file", "link"):
        return f"no {netplan.NETPLAN_FILE} (the profile's stack is not netplan, or it is not applied)"
    return None


def check(host: Host) -> list[Finding]:
    files = netplan_files(host)
    ours = files.get(netplan.NETPLAN_FILE)
    if ours is None:
        return []
    return [
        Finding(subject=host.display(c.path), message=c.message)
        for c in netplan.conflicts(ours, files, netplan.NETPLAN_FILE)
    ]
