"""Stale ``vx-*`` VXLAN devices (incident 4).

dockerd names the VXLAN devices of Swarm overlays ``vx-<vni>-<id>`` and can leave dead
ones behind; creating the overlay on that host then fails with "error creating VXLAN
interface: file exists" until the device is deleted.

Rule: the one netharden's VXLAN collector applies (templates/vxlan_gc/netharden-vxlan-gc.sh.j2),
with the collector's default pattern: a device of kind ``vxlan`` (a veth or bridge named
``vx-*`` is never reported), whose name matches the glob ``vx-*``, administratively down
(no UP flag: an UP device without carrier is in use) and without a master (a port of the
overlay's bridge is in use). The collector acts only on a device that was stale at two
runs in a row; the doctor sees one moment, so it reports every device that is stale now.

``fixed_by``: with ``vxlan_gc.mode: remove`` and a ``vxlan_gc.pattern`` (an sh glob; the
collector matches it with ``case``, here with fnmatch) that matches the name, the
collector removes the device once it is still stale at its next run. Mode ``report``
reports it (journal, metric) but keeps it; mode ``off`` renders no collector.
"""

from __future__ import annotations

import fnmatch

from ..host import Host
from ..model import Finding

ID = "stale-vxlan"
TITLE = "VXLAN devices left DOWN without a master"
SEVERITY = "warning"
INCIDENT = "incident-4"
HINT = "set vxlan_gc.mode: remove (netharden's collector deletes them), or ip link del each one"
NEEDS = "live"

PATTERN = "vx-*"


def stale(iface) -> bool:
    return (
        iface.kind == "vxlan"
        and fnmatch.fnmatchcase(iface.name, PATTERN)
        and not iface.admin_up
        and iface.master is None
    )


def check(host: Host) -> list[Finding]:
    return [
        Finding(
            subject=iface.name,
            message=(
                f"VXLAN device {iface.name} (ifindex {iface.ifindex}) is administratively down and has no master: "
                f"a dead overlay leftover; dockerd cannot create the overlay's device under this name again "
                f'("error creating VXLAN interface: file exists")'
            ),
        )
        for iface in host.interfaces
        if stale(iface)
    ]


def fixed_by(profile, plan, finding: Finding, host: Host) -> tuple[bool, str]:
    gc = profile.vxlan_gc
    if gc.mode == "off":
        return False, "vxlan_gc is off: no collector"
    if not fnmatch.fnmatchcase(finding.subject, gc.pattern):
        return False, f"vxlan_gc.pattern {gc.pattern!r} does not match {finding.subject}"
    if gc.mode == "report":
        return False, "reported, not removed (vxlan_gc.mode: report)"
    return True, f"the collector removes it when it is still stale at its next run (every {gc.interval})"
