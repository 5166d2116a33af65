"""The rendered tree under the real systemd-networkd (and udev's net_setup_link) in a
throwaway network + mount namespace. See netharden/lab/netns.py for the harness."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import netharden
from helpers import NETWORKD_EXAMPLES, minimal
from netharden.lab.netns import NetworkdLab, leftovers, require_or_skip

pytestmark = pytest.mark.netns


@pytest.fixture(autouse=True)
def _needs_namespaces():
    require_or_skip(pytest)


def render(tmp_path: Path, data_or_path) -> tuple[Path, "netharden.Plan"]:
    profile = netharden.load(data_or_path)
    plan = netharden.plan(profile)
    out = tmp_path / "tree"
    netharden.emit(plan, "tree", out)
    return out, plan


def lab_for(tree: Path, **kw) -> NetworkdLab:
    network = tree / "etc/systemd/network"
    network.mkdir(parents=True, exist_ok=True)
    dropins = tree / "etc/systemd/networkd.conf.d"
    return NetworkdLab(network, dropins if dropins.is_dir() else None, **kw)


def assert_unmanaged(lab: NetworkdLab, *names: str) -> None:
    for name in names:
        lab.wait_for(name, "unmanaged", timeout=5)
        state = lab.link_state(name)
        assert "NETWORK_FILE" not in state, (name, state, lab.describe())


HOST = minimal(
    metadata={"name": "lab-host"},
    platform={"os": "debian", "systemd": 252},
    uplinks=[{"name": "up", "match": {"name": "nh-up0"}, "addresses": ["192.0.2.10/24"],
              "gateway": "192.0.2.1", "dns": ["192.0.2.53"]}],
    bridges=[{"name": "nhbr0", "addresses": ["10.24.0.1/24"]}],
    unmanaged={"names": ["tun*"]},
)


def test_rendered_host_on_real_networkd(tmp_path):
    tree, plan = render(tmp_path, HOST)
    pinned = netharden.load(HOST).bridges[0].mac
    with lab_for(tree) as lab:
        # the uplink (a veth standing in for the NIC) is configured from our file
        lab.add_veth("nh-up0", "nh-up0-peer")
        lab.wait_for("nh-up0", "configured", timeout=10)
        assert lab.link_state("nh-up0")["NETWORK_FILE"] == "/etc/systemd/network/20-netharden-uplink-up.network"
        assert "192.0.2.10/24" in lab.addresses("nh-up0")

        # networkd creates the bridge with the pinned MAC and configures it without ports
        lab.wait_for("nhbr0", "configured", timeout=10)
        assert lab.mac("nhbr0") == pinned
        assert "10.24.0.1/24" in lab.addresses("nhbr0")

        # incident 3: ports with lower MACs join and leave; the bridge MAC never moves
        for i in range(3):
            lab.ip("link", "add", f"veth0low{i}", "address", f"02:00:00:00:00:0{i + 1}", "type", "veth",
                   "peer", "name", f"nh-lowp{i}")
            lab.ip("link", "set", f"veth0low{i}", "master", "nhbr0", "up")
            assert lab.mac("nhbr0") == pinned
            lab.ip("link", "del", f"veth0low{i}")
            assert lab.mac("nhbr0") == pinned

        # a docker-like bridge + veth pair, set up the way dockerd does it, stays unmanaged
        lab.add_bridge("docker0")
        lab.ip("addr", "add", "172.17.0.1/16", "dev", "docker0")
        lab.ip("link", "set", "docker0", "up")
        lab.add_veth("veth1a2b3c4", "ceth0")
        lab.ip("link", "set", "veth1a2b3c4", "master", "docker0", "up")
        lab.add_veth("tun-ish0", "tun-ish0p")
        assert_unmanaged(lab, "docker0", "veth1a2b3c4", "tun-ish0")
        assert lab.addresses("docker0", "inet") == ["172.17.0.1/16"]  # networkd added nothing

        # restart: same outcome, still no warnings
        lab.restart()
        lab.wait_for("nh-up0", "configured", timeout=10)
        assert_unmanaged(lab, "docker0", "veth1a2b3c4")
        assert lab.mac("nhbr0") == pinned
        assert lab.warnings() == [], lab.describe()


@pytest.mark.parametrize("version", [252, 250])
def test_broad_uplink_never_catches_virtual_interfaces(tmp_path, version):
    """No presets, no masks: the uplink's own exclusions (Kind=!* or Driver=!...) and
    Type=!loopback must keep a Name=* match off veths, bridges and lo."""
    data = minimal(platform={"systemd": version}, uplinks=[{"name": "any", "match": {"name": "*"}, "dhcp": "ipv4"}],
                   unmanaged={"presets": []}, networkd={"mask": []})
    tree, _ = render(tmp_path, data)
    uplink = (tree / "etc/systemd/network/20-netharden-uplink-any.network").read_text()
    assert ("Kind=!*" in uplink) == (version >= 251) and "Type=!loopback" in uplink
    with lab_for(tree) as lab:
        lab.add_veth("vethab12", "cethab12")
        lab.add_bridge("br-0123456789ab", up=True)
        lab.ip("link", "set", "lo", "up")
        assert_unmanaged(lab, "vethab12", "cethab12", "br-0123456789ab", "lo")
        assert lab.warnings() == [], lab.describe()


def test_naive_catchall_does_catch_them(tmp_path):
    """Control for the test above: without the exclusions networkd does claim a veth,
    so that test can fail."""
    net = tmp_path / "net"
    net.mkdir()
    (net / "20-any.network").write_text("[Match]\nName=*\n\n[Network]\nDHCP=ipv4\n")
    with NetworkdLab(net) as lab:
        lab.add_veth("vethab12", "cethab12")
        lab.wait_for("vethab12", ["configuring", "configured", "degraded", "failed"], timeout=5)
        assert lab.link_state("vethab12")["NETWORK_FILE"] == "/etc/systemd/network/20-any.network"


VENDOR = {
    "50-docker.network": "[Match]\nName=docker0\n\n[Network]\nAddress=172.17.0.1/16\nLinkLocalAddressing=ipv6\n",
    "50-docker-veth.network": "[Match]\nName=veth*\n\n[Network]\nLinkLocalAddressing=ipv6\n",
}


@pytest.mark.parametrize("masked", [True, False])
def test_masks_disable_vendor_docker_files(tmp_path, masked):
    """Incident 2: vendor-style 50-docker*.network in /run/systemd/network claim docker's
    interfaces unless /etc masks them (no presets here, so only the masks count)."""
    data = minimal(platform={"systemd": 252}, unmanaged={"presets": []},
                   networkd={"mask": list(VENDOR) if masked else []})
    tree, _ = render(tmp_path, data)
    with lab_for(tree, start=False) as lab:
        for name, text in VENDOR.items():
            lab.run("sh", "-c", f"printf '%s' '{text}' > /run/systemd/network/{name}")
        lab.start()
        lab.add_bridge("docker0", up=True)
        lab.add_veth("veth99aa", "ceth99aa")
        if masked:
            assert_unmanaged(lab, "docker0", "veth99aa")
        else:
            lab.wait_for("veth99aa", ["configuring", "configured", "degraded"], timeout=5)
            assert lab.link_state("veth99aa")["NETWORK_FILE"] == "/run/systemd/network/50-docker-veth.network"
        assert lab.warnings() == [], lab.describe()


LINK_WARNING = re.compile(r"\.link:\d+: ")
CATCHALL = "[Match]\nName=*\n\n[Network]\nDHCP=yes\n"


def sample_name(glob: str) -> str:
    """An interface name the glob matches: [ab] -> a, ? -> 0, * -> x."""
    return re.sub(r"\[(.)[^\]]*\]", r"\1", glob).replace("?", "0").replace("*", "x")


@pytest.mark.parametrize("path", NETWORKD_EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads_without_warnings_and_beats_a_runtime_catchall(tmp_path, path):
    """networkd parses every .network/.netdev/networkd.conf file at start without a
    warning. Incident 1's stray /run/systemd/network/00-.network (Name=*) is present: every
    interface an unmanaged file covers must stay unmanaged (our files sort first), while a
    control interface is claimed by the catch-all (so the files were really read). udev's
    own net_setup_link builtin parses the .link files and applies ours to a veth."""
    tree, plan = render(tmp_path, path)
    profile = netharden.load(path)
    with lab_for(tree, start=False) as lab:
        lab.run("sh", "-c", f"printf '%s' '{CATCHALL}' > /run/systemd/network/00-.network")
        lab.start()
        assert lab.warnings() == [], lab.describe()
        covered = [sample_name(g) for group in profile.unmanaged for g in group.globs]
        for i, name in enumerate(covered):
            if not lab.has_link(name):
                lab.add_veth(name, f"nhpeer{i}")
        lab.add_veth("nhcontrol0", "nhcontrolp")
        lab.wait_for("nhcontrol0", ["configuring", "configured", "degraded"], timeout=10)
        assert lab.link_state("nhcontrol0")["NETWORK_FILE"] == "/run/systemd/network/00-.network"
        for name in covered:
            assert_unmanaged(lab, name)
        for bridge in profile.bridges:
            lab.wait_for(bridge.name, ["configuring", "configured", "degraded"], timeout=10)
            assert lab.mac(bridge.name) == bridge.mac
        assert lab.warnings() == [], lab.describe()
        links = [f.path for f in plan.files if f.path.endswith(".link")]
        if links:
            lab.add_veth("veth5e6f7a8", "ceth5e6f7a8")
            done = lab.run("udevadm", "test-builtin", "net_setup_link", "/sys/class/net/veth5e6f7a8")
            assert "ID_NET_LINK_FILE=/etc/systemd/network/0-netharden-veth.link" in done.stdout, done.stdout + done.stderr
            for link in links:
                assert f'Parsed configuration file "{link}"' in done.stderr
            assert not LINK_WARNING.search(done.stderr), done.stderr


def test_nothing_left_behind():
    assert leftovers(ignore_other_live_owners=True) == []
