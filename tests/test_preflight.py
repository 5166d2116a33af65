"""The role's preflight decision (netharden.doctor.preflight.decide), fed what
roles/netharden/tasks/preflight.yml gathers on a host: files, programs, ansible's network
facts and service_facts. The molecule scenario proves the same on a booted Debian 12 ifupdown
host; these cases cover each outcome on its own, without a container."""
from __future__ import annotations

import netharden
from helpers import minimal
from netharden.doctor.preflight import RELEASED, decide
from test_owners import INSTALLER as DEBIAN_INTERFACES  # the Debian 12 installer's file, as it writes it

ETH0 = {"device": "eth0", "type": "ether", "macaddress": "52:54:00:12:34:56", "active": True,
        "module": "virtio_net"}
LO = {"device": "lo", "type": "loopback", "active": True}
PROGRAMS = ["/sbin/ifup"]
NETWORKD_DISABLED = {"systemd-networkd.service": {"state": "stopped", "status": "disabled"},
                     "networking.service": {"state": "stopped", "status": "enabled"}}
UPLINK = [{"name": "lan", "match": {"name": "eth0"}, "addresses": ["192.0.2.10/24"]}]


def plan_of(**data):
    return netharden.plan(netharden.load(minimal(**data)))


def test_ifupdown_owning_the_uplink_nic_is_refused_with_file_and_line():
    plan = plan_of(platform={"os": "debian"}, uplinks=UPLINK)
    decision = decide(plan, {"/etc/network/interfaces": DEBIAN_INTERFACES}, PROGRAMS, [ETH0, LO],
                      NETWORKD_DISABLED, takeover=False)
    assert len(decision.refused) == 1, decision.refused
    line = decision.refused[0]
    assert "/etc/network/interfaces:12: iface eth0 inet dhcp" in line
    assert "20-netharden-uplink-lan.network" in line and "netharden_takeover" in line
    assert decision.release == [] and not decision.defer_networkd


def test_takeover_releases_the_nic_at_the_next_boot_and_keeps_a_backup():
    plan = plan_of(platform={"os": "debian"}, uplinks=UPLINK)
    files = {"/etc/network/interfaces": DEBIAN_INTERFACES}
    decision = decide(plan, files, PROGRAMS, [ETH0, LO], NETWORKD_DISABLED, takeover=True)
    assert decision.refused == [] and decision.released == ["eth0"]
    written = {f["path"]: f["content"] for f in decision.release}
    assert set(written) == {"/etc/network/interfaces", RELEASED}
    assert "eth0" not in written["/etc/network/interfaces"]
    assert "iface lo inet loopback" in written["/etc/network/interfaces"]
    assert "allow-hotplug eth0" in written[RELEASED] and "iface eth0 inet dhcp" in written[RELEASED]
    assert decision.defer_networkd  # networkd would flush the address ifupdown gave eth0 now
    # the next run (files as released): nothing left to take, networkd still deferred until it runs
    again = decide(plan, {**files, **written}, PROGRAMS, [ETH0, LO], NETWORKD_DISABLED, takeover=True)
    assert (again.refused, again.release, again.defer_networkd) == ([], [], True)
    booted = {**NETWORKD_DISABLED, "systemd-networkd.service": {"state": "running", "status": "enabled"}}
    assert not decide(plan, {**files, **written}, PROGRAMS, [ETH0, LO], booted, takeover=True).defer_networkd


def test_another_nic_in_interfaces_is_not_a_conflict():
    plan = plan_of(platform={"os": "debian"}, uplinks=[{"name": "lan", "match": {"name": "ens5"}}])
    ens5 = {**ETH0, "device": "ens5", "macaddress": "52:54:00:aa:bb:cc"}
    decision = decide(plan, {"/etc/network/interfaces": DEBIAN_INTERFACES}, PROGRAMS, [ETH0, ens5, LO],
                      NETWORKD_DISABLED, takeover=False)
    assert decision.refused == [] and decision.release == []


def test_a_networkmanager_profile_for_the_nic_is_refused_even_with_takeover():
    keyfile = "[connection]\nid=uplink\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\nmethod=auto\n"
    services = {**NETWORKD_DISABLED, "NetworkManager.service": {"state": "running", "status": "enabled"}}
    plan = plan_of(platform={"os": "debian"}, uplinks=UPLINK)
    decision = decide(plan, {"/etc/NetworkManager/system-connections/uplink.nmconnection": keyfile},
                      ["/usr/sbin/NetworkManager"], [ETH0, LO], services, takeover=True)
    assert len(decision.refused) == 1 and "uplink.nmconnection" in decision.refused[0]
    assert "does not take NICs from NetworkManager" in decision.refused[0]


def test_a_masked_networkd_is_refused():
    plan = plan_of(platform={"os": "debian"}, uplinks=UPLINK)
    masked = {"systemd-networkd.service": {"state": "stopped", "status": "masked"}}
    decision = decide(plan, {}, [], [ETH0, LO], masked, takeover=True)
    assert decision.refused == [
        "systemd-networkd.service is masked: netharden's networkd files would be inert (systemctl unmask it)"]


CLOUD_INIT = """\
network:
  version: 2
  ethernets:
    eth0:
      match:
        macaddress: "52:54:00:12:34:56"
      set-name: eth0
      dhcp4: true
"""


def test_netplan_stack_refuses_a_netplan_file_that_defines_netharden_s_bridge():
    """cloud-init's own file beside netharden's is fine (different ids); one that defines the
    profile's bridge id would merge into it: refused before writing, naming the file."""
    plan = plan_of(platform={"os": "ubuntu"}, uplinks=[{"name": "eth0", "addresses": ["192.0.2.10/24"]}],
                   bridges=[{"name": "dockerbr0", "addresses": ["10.44.0.1/24"]}])
    services = {"systemd-networkd.service": {"state": "running", "status": "enabled"}}
    files = {"/etc/netplan/50-cloud-init.yaml": CLOUD_INIT}
    assert decide(plan, files, [], [ETH0, LO], services, takeover=False).refused == []
    vendor = "network:\n  version: 2\n  bridges:\n    dockerbr0:\n      addresses: [10.99.0.1/24]\n"
    refused = decide(plan, {**files, "/etc/netplan/70-vendor.yaml": vendor}, [], [ETH0, LO], services,
                     takeover=False).refused
    assert len(refused) == 1 and refused[0].startswith("/etc/netplan/70-vendor.yaml: ")
    assert "dockerbr0" in refused[0] and refused[0].endswith("(netplan-conflict)")
    broken = decide(plan, {**files, "/run/netplan/90-broken.yaml": "network: [\n"}, [], [ETH0, LO], services,
                    takeover=False).refused
    assert len(broken) == 1 and "/run/netplan/90-broken.yaml" in broken[0] and "not valid YAML" in broken[0]


def test_a_host_nobody_else_configures_goes_on():
    plan = plan_of(platform={"os": "debian"}, uplinks=UPLINK)
    decision = decide(plan, {}, [], [ETH0, LO], NETWORKD_DISABLED, takeover=False)
    assert decision.to_dict() == {"refused": [], "release": [], "released": [], "defer_networkd": False}
