"""Bridges whose MAC follows their ports (incident 3).

A Linux bridge whose MAC was never set takes the smallest MAC of its ports and takes
another one whenever a port with a smaller MAC joins or the smallest one leaves: the
gateway MAC the containers have in their ARP caches moves under container churn (sporadic
DNS failures until the caches expire).

Rule: a device of kind ``bridge`` with at least one port (an interface whose master it
is) and ``/sys/class/net/BR/addr_assign_type`` other than 3 (NET_ADDR_SET). The kernel
re-derives the bridge id and MAC from the ports only while the bridge's address was not
set by the user: ``br_stp_recalculate_bridge_id()`` in net/bridge/br_stp_if.c returns
early ("user has chosen a value so keep it") when ``addr_assign_type == NET_ADDR_SET``.
A bridge whose type cannot be read is not reported.

What the kernel gives (verified on this project's kernel in tests/test_doctor_live_checks.py):
a fresh ``ip link add BR type bridge`` has type 1 (random) and stays 1 when ports join
while its MAC changes to theirs; ``ip link add BR address X type bridge`` and
``ip link set BR address X`` give 3. So are, without special cases:

- bridges of systemd-networkd with ``MACAddress=`` in their .netdev (netharden's), which
  networkd passes as IFLA_ADDRESS when it creates the bridge;
- docker0 and docker's ``br-*`` bridges: libnetwork's bridge driver (setupDevice in
  libnetwork/drivers/bridge/setup_device.go) sets a random MAC with
  ``netlink.LinkSetHardwareAddr`` right after creating the bridge (later versions pass
  it at creation), which the kernel records as NET_ADDR_SET. The test starts the real
  dockerd in a throwaway namespace and proves that its docker0 is not reported;
- bridges udev processed under systemd >= 242 with ``MACAddressPolicy=persistent``
  (99-default.link): udev sets a MAC derived from the name, also NET_ADDR_SET.

``fixed_by``: the profile fixes the finding when it has a bridge of that name: its
.netdev pins ``MACAddress=``. systemd-networkd applies it only when it creates the
bridge: for a bridge that already exists networkd 252 logs "netdev exists, using existing
without changing its parameters" (netdev_create_handler() on -EEXIST, src/network/netdev/
netdev.c) and keeps its MAC, and netharden's bridge .network sets no [Link] MACAddress=.
So the MAC is pinned once the bridge is created again: ``ip link del BR`` followed by
``networkctl reload``, or a reboot.
"""

from __future__ import annotations

from ..host import Host
from ..model import Finding

ID = "bridge-mac-follows-ports"
TITLE = "a bridge's MAC follows its ports"
SEVERITY = "warning"
INCIDENT = "incident-3"
HINT = (
    "define the bridge under 'bridges' (bridges[].mac: stable or an explicit MAC; networkd pins it with "
    "MACAddress=), or set it once with ip link set BR address MAC"
)
NEEDS = "live"

NET_ADDR_SET = 3
# include/uapi/linux/netdevice.h
ASSIGN_TYPES = {
    0: "permanent (NET_ADDR_PERM)",
    1: "random (NET_ADDR_RANDOM)",
    2: "stolen from a port (NET_ADDR_STOLEN)",
    3: "set (NET_ADDR_SET)",
}


def _words(assign: int) -> str:
    return ASSIGN_TYPES.get(assign, f"unknown ({assign})")


def check(host: Host) -> list[Finding]:
    findings = []
    for iface in host.interfaces:
        if iface.kind != "bridge" or iface.addr_assign_type is None or iface.addr_assign_type == NET_ADDR_SET:
            continue
        ports = sorted(host.ports(iface.name))
        if not ports:
            continue
        findings.append(
            Finding(
                subject=iface.name,
                message=(
                    f"bridge {iface.name} has MAC {iface.mac} with address type {_words(iface.addr_assign_type)}, "
                    f"not set: it takes the smallest MAC of its ports ({', '.join(ports)}), so the gateway MAC its "
                    f"containers cache changes whenever a port with a smaller MAC joins or the smallest one leaves"
                ),
            )
        )
    return findings


def fixed_by(profile, plan, finding: Finding, host: Host) -> tuple[bool, str]:
    bridge = next((b for b in profile.bridges if b.name == finding.subject), None)
    if bridge is None:
        return False, f"the profile defines no bridge {finding.subject!r} (bridges[].name)"
    return True, (
        f"networkd creates {bridge.name} with MACAddress={bridge.mac} ({bridge.mac_source}); the existing "
        f"bridge keeps its MAC until it is created again (networkd 252 leaves an existing netdev "
        f"unchanged): ip link del {bridge.name} and networkctl reload, or reboot"
    )
