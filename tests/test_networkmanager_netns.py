"""The real NetworkManager 1.42 reads what netharden renders for a NetworkManager host.

1. examples/fcos-k8s.yaml as Ignition: the real Ignition writes it into a scratch root
   (tests/test_ignition_apply.py's ``apply``), and NetworkManager starts in a throwaway
   namespace on that root's /etc/NetworkManager: the uplink gets its address and gateway,
   the bridge its pinned MAC, and docker0, docker's veths, cni0, a Calico veth and
   flannel.1 stay unmanaged, with their sysctls, masters and addresses unchanged, while
   they come and go. Without udev and with a real systemd-udevd and NetworkManager's udev
   rules. One adaptation, which a real host does not need: the uplink's stand-in is a veth
   (this kernel has no other ethernet device), and the profile's ``driver:veth`` rightly
   makes every veth unmanaged, so the test adds ``except:interface-name:eth0`` to the list,
   as the renderer itself does for an uplink named exactly.
2. Every keyfile and conf file the NetworkManager tests render (variants of uplinks and
   bridges) is loaded by NetworkManager without a warning.
"""
from __future__ import annotations

import time

import pytest

import netharden
from helpers import ROOT, minimal
from netharden.lab import cleanup
from netharden.lab.nm import NetworkManagerLab, require_or_skip
from netharden.lab.scenarios import _nm
from netharden.renderers.networkmanager import CONF
from test_ignition_apply import apply

# real NetworkManager labs in throwaway namespaces: with the other netns tests (make unit
# leaves them out; a "not netns" run beside a lab run would see its namespaces as leftovers)
pytestmark = pytest.mark.netns

FCOS_K8S = ROOT / "examples" / "fcos-k8s.yaml"
CHURN = {"veth": "veth0a1b2c3 veth4d5e6f7", "cali": "cali12345678", "flannel": "flannel.1", "cni": "cni0"}


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("udev", [False, True], ids=["without-udev", "with-udevd"])
def test_fcos_ignition_config_runs_on_the_real_networkmanager(udev, tmp_path):
    require_or_skip(pytest, udev=udev)
    profile = netharden.load(FCOS_K8S)
    plan = netharden.plan(profile)
    config = netharden.emit(plan, "ignition")
    root, _ = apply(config, tmp_path / "work")
    assert not [p for p in root.rglob("*") if p.suffix in (".network", ".netdev")]
    etc = root / "etc" / "NetworkManager"
    conf = etc / CONF.removeprefix("/etc/NetworkManager/")
    assert (etc / "system-connections" / "netharden-uplink-primary.nmconnection").stat().st_mode & 0o777 == 0o600
    text = conf.read_text()
    assert ";driver:veth\n" in text
    conf.write_text(text.replace(";driver:veth\n", ";driver:veth;except:interface-name:eth0\n"))
    (bridge,) = profile.bridges

    with NetworkManagerLab(etc, udev=udev, start=False) as lab:
        lab.add_veth("eth0", "eth0peer")  # the uplink's stand-in, before NetworkManager starts
        lab.start()
        assert _wait(lambda: "192.0.2.10/24" in lab.addresses("eth0", "inet")), lab.describe()
        assert lab.device_connection("eth0") == "netharden-uplink-primary"
        routes = lab.ip_json("route", "show", "default")
        assert [(r["gateway"], r["dev"]) for r in routes] == [("192.0.2.1", "eth0")], routes
        assert _wait(lambda: lab.has_link(bridge.name)), lab.describe()
        assert (lab.mac(bridge.name), lab.addr_assign_type(bridge.name)) == (bridge.mac, 3)
        assert _wait(lambda: "10.40.0.1/24" in lab.addresses(bridge.name, "inet")), lab.describe()

        for round_ in range(2):  # the devices come and go while NetworkManager runs
            watched = _nm.container_devices(lab, CHURN)
            before = _nm.as_created(lab, _nm.snapshot(lab, watched))
            time.sleep(1.5)
            states = _nm.states(lab, watched)
            assert set(states.values()) == {"unmanaged"}, (round_, states)
            assert _nm.changes(before, _nm.snapshot(lab, watched)) == [], round_
            assert lab.master("veth0a1b2c3") == "docker0"
            for name in watched:
                lab.ip("link", "del", name)
        assert (lab.mac(bridge.name), lab.addr_assign_type(bridge.name)) == (bridge.mac, 3)
        assert lab.device_connection("eth0") == "netharden-uplink-primary"
        warnings = lab.warnings(ignore=lab.noise)
        assert warnings == [], warnings
        print(f"NetworkManager {lab.udev_mode}: uplink, bridge {bridge.name} {bridge.mac}, churn held twice")
    assert cleanup.leftovers() == []


VARIANTS = {
    "exact-static-dual": {
        "uplinks": [
            {
                "name": "lan",
                "match": {"name": "eth0"},
                "addresses": ["192.0.2.2/24", "2001:db8::2/64"],
                "gateway": ["192.0.2.1", "2001:db8::1"],
                "dns": ["192.0.2.53", "2001:db8::53"],
                "mtu": 1400,
            }
        ],
        "bridges": [{"name": "ctrbr0", "addresses": ["10.50.0.1/24", "fd00:50::1/64"], "stp": True, "mtu": 1400}],
    },
    "glob-dhcp": {"uplinks": [{"name": "lan", "match": {"name": ["en*", "eth*"]}, "dhcp": "yes"}]},
    "mac-driver-path": {
        "uplinks": [
            {"name": "a", "match": {"mac": "52:54:00:12:34:56"}, "dhcp": "ipv4"},
            {"name": "b", "match": {"driver": ["virtio_net", "e1000*"], "path": "pci-0000:00:03.0"}, "dhcp": "ipv6"},
        ],
        "bridges": [{"name": "ctrbr1", "mac": "02:00:5e:00:31:01"}],
        "unmanaged": {"presets": ["calico", "cilium"], "names": ["tap*", "vnet?"]},
    },
    "no-presets": {"unmanaged": {"presets": []}, "bridges": [{"name": "ctrbr2", "addresses": ["10.51.0.1/24"]}]},
}


@pytest.mark.parametrize("variant", [*VARIANTS, "fcos-k8s"])
def test_every_rendered_file_loads_without_a_warning(variant, tmp_path):
    require_or_skip(pytest)
    if variant == "fcos-k8s":
        plan = netharden.plan(netharden.load(FCOS_K8S))
    else:
        plan = netharden.plan(netharden.load(minimal(platform={"os": "rhel"}, **VARIANTS[variant])))
    netharden.emit(plan, "tree", tmp_path / "tree")
    ids = sorted(f.path.rsplit("/", 1)[1].removesuffix(".nmconnection") for f in plan.files if f.path.endswith(".nmconnection"))
    with NetworkManagerLab(tmp_path / "tree" / "etc" / "NetworkManager") as lab:
        assert _wait(lambda: ids == sorted(c["name"] for c in lab.connections() if c["name"].startswith("netharden-")))
        log = lab.log_text()
        assert "Read config:" in log and "50-netharden-unmanaged.conf" in log
        assert lab.warnings(ignore=lab.noise) == [], lab.describe()
        # the unmanaged list is the one NetworkManager uses
        printed = lab.run("NetworkManager", "--print-config").stdout
        for spec in ("interface-name:cali*",) if variant != "no-presets" else ():
            assert spec in printed
