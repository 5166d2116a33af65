"""The netplan stack on the real tools: the rendered tree's netplan file through the real
``netplan generate --root-dir`` (netplan.io 0.106), then what it generated (placed in
/run/systemd/network, where netplan writes it on a host) PLUS the tree's networkd guard
files (/etc/systemd/network) on the real systemd-networkd in a throwaway netns
(netharden/lab/netns.py). Veths stand in for the NIC (no dummy devices in this kernel)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

import netharden
from helpers import NETPLAN_EXAMPLES
from netharden.lab.netns import NetworkdLab, leftovers, require_or_skip
from test_netplan import CLOUD_INIT, UBUNTU, generate, generated, tree

pytestmark = pytest.mark.netns

OURS = "/run/systemd/network/10-netplan-0-netharden-eth0.network"
# cloud-init's file of a datasource that names the NIC (no match: the id is the name), which
# a veth can match; the Ubuntu image's one matches the permanent MAC (CLOUD_INIT), which a veth lacks
CLOUD_INIT_BY_NAME = """\
network:
    version: 2
    ethernets:
        eth0:
            dhcp4: false
            addresses: [198.51.100.5/24]
"""


@pytest.fixture(autouse=True)
def _needs_namespaces():
    require_or_skip(pytest)


def lab_for(tmp_path: Path, data=UBUNTU, extra: dict[str, str] | None = None, *, ours: bool = True) -> NetworkdLab:
    """Render, run the real netplan generate, and stage a lab whose networkd reads the
    tree's /etc/systemd/network and netplan's /run/systemd/network output."""
    root = tree(tmp_path, data, extra)
    if not ours:
        (root / "etc/netplan/60-netharden.yaml").unlink()
    done = generate(root)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert generated(root)
    network = root / "etc/systemd/network"
    network.mkdir(parents=True, exist_ok=True)
    dropins = root / "etc/systemd/networkd.conf.d"
    lab = NetworkdLab(network, dropins if dropins.is_dir() else None, start=False)
    lab.generated = root / "run/systemd/network"  # type: ignore[attr-defined]
    return lab


def start(lab: NetworkdLab) -> None:
    lab.run("mkdir", "-p", "/run/systemd/network")
    for f in sorted(lab.generated.glob("*.network")) + sorted(lab.generated.glob("*.netdev")):  # type: ignore[attr-defined]
        lab.run("cp", str(f), f"/run/systemd/network/{f.name}")
    lab.start()


def assert_unmanaged(lab: NetworkdLab, *names: str) -> None:
    for name in names:
        lab.wait_for(name, "unmanaged", timeout=5)
        assert "NETWORK_FILE" not in lab.link_state(name), (name, lab.link_state(name), lab.describe())


@pytest.mark.parametrize("cloud_init", [None, CLOUD_INIT, CLOUD_INIT_BY_NAME], ids=["alone", "cloud-init-mac", "cloud-init-name"])
def test_ubuntu_profile_gives_eth0_its_address(tmp_path, cloud_init):
    """Issue 16's acceptance case: uplink eth0 with addresses [192.0.2.10/24] on Ubuntu, with
    and without cloud-init's 50-cloud-init.yaml naming eth0 too."""
    extra = {"/etc/netplan/50-cloud-init.yaml": cloud_init} if cloud_init else None
    profile = netharden.load(UBUNTU)
    with lab_for(tmp_path, extra=extra) as lab:
        start(lab)
        lab.add_veth("eth0", "eth0-peer")
        lab.wait_for("eth0", "configured", timeout=10)
        assert lab.link_state("eth0")["NETWORK_FILE"] == OURS, lab.describe()
        assert lab.addresses("eth0", "inet") == ["192.0.2.10/24"]
        routes = lab.ip("route", "show", "default").stdout
        assert "default via 192.0.2.1 dev eth0" in routes, routes
        # the bridges netplan made, with the profile's pinned MACs and addresses
        for br in profile.bridges:
            # an IPv6 address stays tentative on a bridge without carrier (no DAD): "configuring",
            # as with the networkd stack's own bridge files
            v6 = any(":" in a for a in br.addresses)
            lab.wait_for(br.name, ["configuring", "configured"] if v6 else "configured", timeout=10)
            assert lab.mac(br.name) == br.mac
            assert set(br.addresses) <= set(lab.addresses(br.name))
            assert lab.link_state(br.name)["NETWORK_FILE"] == f"/run/systemd/network/10-netplan-{br.name}.network"
        # a port with a lower MAC joins and leaves: the bridge MAC stays (incident 3)
        br0 = profile.bridges[0]
        lab.ip("link", "add", "veth0low", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", "nh-lowp")
        lab.ip("link", "set", "veth0low", "master", br0.name, "up")
        assert lab.mac(br0.name) == br0.mac
        # container interfaces stay unmanaged: the networkd guards sort before netplan's files
        lab.add_bridge("docker0", up=True)
        lab.add_veth("veth1a2b3c4", "ceth0")
        lab.ip("link", "set", "veth1a2b3c4", "master", "docker0", "up")
        assert_unmanaged(lab, "docker0", "veth1a2b3c4", "veth0low")
        assert lab.warnings() == [], lab.describe()


def test_control_cloud_init_alone_takes_eth0(tmp_path):
    """Control for the test above (so it can fail): without the profile's netplan file,
    cloud-init's definition configures eth0 - the lab really reads netplan's output."""
    extra = {"/etc/netplan/50-cloud-init.yaml": CLOUD_INIT_BY_NAME}
    with lab_for(tmp_path, extra=extra, ours=False) as lab:
        start(lab)
        lab.add_veth("eth0", "eth0-peer")
        # netplan's default accept-ra waits for a router that never comes: "configuring"
        lab.wait_for("eth0", ["configuring", "configured"], timeout=10)
        assert lab.link_state("eth0")["NETWORK_FILE"] == "/run/systemd/network/10-netplan-eth0.network"
        for _ in range(50):
            if lab.addresses("eth0", "inet"):
                break
            time.sleep(0.1)
        assert lab.addresses("eth0", "inet") == ["198.51.100.5/24"]


@pytest.mark.parametrize("path", NETPLAN_EXAMPLES, ids=lambda p: p.name)
def test_every_netplan_example_on_real_networkd(tmp_path, path):
    """Every example on the netplan stack: netplan generate takes it without a word, networkd
    loads its output and the guards without a warning, a NIC its uplink matches is configured
    from the generated file, and the container interfaces its presets cover stay unmanaged."""
    profile = netharden.load(path)
    with lab_for(tmp_path, path) as lab:
        start(lab)
        assert lab.warnings() == [], lab.describe()
        for up in profile.uplinks:
            # a veth named as the uplink's glob says (the driver match, if any, is a NIC's: skip)
            if up.match.drivers or up.match.macs:
                continue
            name = up.match.names[0].replace("*", "x0").replace("?", "0")
            lab.add_veth(name, f"{name[:10]}p")
            lab.wait_for(name, ["configuring", "configured", "degraded"], timeout=10)
            assert lab.link_state(name)["NETWORK_FILE"] == f"/run/systemd/network/10-netplan-0-netharden-{up.name}.network"
        lab.add_veth("veth5e6f7a8", "ceth5e6f7a8")
        assert_unmanaged(lab, "veth5e6f7a8")
        for br in profile.bridges:
            lab.wait_for(br.name, ["configuring", "configured"], timeout=10)
            assert lab.mac(br.name) == br.mac
        assert lab.warnings() == [], lab.describe()


def test_nothing_left_behind():
    assert shutil.which("ip")
    assert leftovers(ignore_other_live_owners=True) == []
