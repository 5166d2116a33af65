"""Unit tests of the networkd renderer: what each file says, per systemd version."""
import re

import pytest

import netharden
from netharden.plan_model import File, Link
from netharden.systemd import FEATURES
from helpers import EXAMPLES, FULL_HOST, NETWORKD_FILE_EXAMPLES, ini, minimal, plan_files


def plan_of(**extra):
    return netharden.plan(netharden.load(minimal(**extra)))


UPLINK = "/etc/systemd/network/20-netharden-uplink-lan.network"


@pytest.mark.parametrize("version, expected", [
    (252, {"Kind": ["!*"]}),
    (251, {"Kind": ["!*"]}),
    (250, {"Driver": ["!veth bridge vxlan tun macvlan macvtap ipvlan dummy wireguard geneve bonding openvswitch 802.1Q*"]}),
    (241, {"Driver": ["!veth bridge vxlan tun macvlan macvtap ipvlan dummy wireguard geneve bonding openvswitch 802.1Q*"]}),
])
def test_broad_glob_excludes_virtual_interfaces_per_version(version, expected):
    plan = plan_of(platform={"systemd": version}, uplinks=[{"name": "lan", "match": {"name": ["ens*", "eth*"]}}])
    match = ini(plan_files(plan)[UPLINK])["Match"]
    assert match["Name"] == ["ens* eth*"]
    for key, value in expected.items():
        assert match[key] == value
    assert ("Kind" in match) == (version >= 251)
    assert "Type" not in match  # the globs cannot match "lo"


def test_glob_that_matches_loopback_also_excludes_it():
    plan = plan_of(platform={"systemd": 252}, uplinks=[{"name": "lan", "match": {"name": "*"}}])
    assert ini(plan_files(plan)[UPLINK])["Match"]["Type"] == ["!loopback"]


@pytest.mark.parametrize("match", [{"name": "eth0"}, {"path": "pci-0000:00:03.0"}])
def test_exact_matches_get_no_exclusions(match):
    plan = plan_of(uplinks=[{"name": "lan", "match": match}])
    m = ini(plan_files(plan)[UPLINK])["Match"]
    assert "Kind" not in m and "Driver" not in m


def test_mac_match_is_broad_because_bridges_and_vlans_copy_the_nic_mac():
    plan = plan_of(platform={"systemd": 252}, uplinks=[{"name": "lan", "match": {"mac": "52:54:00:AA:bb:01"}}])
    m = ini(plan_files(plan)[UPLINK])["Match"]
    assert m["MACAddress"] == ["52:54:00:aa:bb:01"] and m["Kind"] == ["!*"]


def test_user_driver_match_is_not_mixed_with_negated_drivers_on_old_systemd():
    plan = plan_of(platform={"systemd": 245}, uplinks=[{"name": "lan", "match": {"name": "en*", "driver": "virtio_net"}}])
    assert ini(plan_files(plan)[UPLINK])["Match"]["Driver"] == ["virtio_net"]


def test_uplink_network_section():
    plan = plan_of(uplinks=[{"name": "lan", "match": {"name": "eth0"}, "addresses": ["192.0.2.10/24", "2001:db8::a/64"],
                             "gateway": ["192.0.2.1", "2001:db8::1"], "dns": ["192.0.2.53"], "mtu": 9000,
                             "required_for_online": False}])
    cfg = ini(plan_files(plan)[UPLINK])
    assert cfg["Network"] == {"DHCP": ["no"], "IPv6AcceptRA": ["no"], "Address": ["192.0.2.10/24", "2001:db8::a/64"],
                              "Gateway": ["192.0.2.1", "2001:db8::1"], "DNS": ["192.0.2.53"]}
    assert cfg["Link"] == {"MTUBytes": ["9000"], "RequiredForOnline": ["no"]}


def test_bridge_netdev_pins_the_mac_and_network_configures_without_carrier():
    plan = plan_of(bridges=[{"name": "dockerbrci", "addresses": ["10.24.0.1/24"]},
                            {"name": "br1", "mac": "02:AA:00:00:00:01", "addresses": ["fd00:1::1/64"]}])
    f = plan_files(plan)
    netdev = ini(f["/etc/systemd/network/10-netharden-dockerbrci.netdev"])["NetDev"]
    assert netdev["Kind"] == ["bridge"] and netdev["Name"] == ["dockerbrci"]
    assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", netdev["MACAddress"][0])
    assert ini(f["/etc/systemd/network/10-netharden-br1.netdev"])["NetDev"]["MACAddress"] == ["02:aa:00:00:00:01"]
    net = ini(f["/etc/systemd/network/10-netharden-dockerbrci.network"])
    assert net["Network"]["ConfigureWithoutCarrier"] == ["yes"] and net["Network"]["LinkLocalAddressing"] == ["no"]
    assert net["Link"]["RequiredForOnline"] == ["no"]
    assert ini(f["/etc/systemd/network/10-netharden-br1.network"])["Network"]["LinkLocalAddressing"] == ["ipv6"]


def test_unmanaged_files_sort_before_a_stray_runtime_catchall_and_everything_else():
    plan = netharden.plan(netharden.load(FULL_HOST))
    ours = [p.rsplit("/", 1)[1] for p in plan_files(plan) if p.endswith(".network")]
    names = sorted(ours + ["00-.network", "00-flannel.network", "10-eth0.network", "50-docker.network"])
    unmanaged = [n for n in names if "unmanaged" in n]
    assert names[: len(unmanaged)] == unmanaged
    for f in plan.files:
        if "unmanaged" in f.path:
            assert ini(f.content)["Link"] == {"Unmanaged": ["yes"]}


def test_presets_and_names_render_one_file_each():
    plan = plan_of(unmanaged={"presets": ["docker", "veth"], "names": ["tun*", "tap*"]})
    f = plan_files(plan)
    assert ini(f["/etc/systemd/network/0-netharden-unmanaged-docker.network"])["Match"]["Name"] == ["docker0 docker_gwbridge br-????????????"]
    assert ini(f["/etc/systemd/network/0-netharden-unmanaged-names.network"])["Match"]["Name"] == ["tun* tap*"]
    assert ini(f["/etc/systemd/network/0-netharden-veth.link"]) == {"Match": {"OriginalName": ["veth*"]},
                                                                   "Link": {"MACAddressPolicy": ["none"]}}
    assert len([p for p in f if p.endswith(".link")]) == 3


def test_no_link_files_before_systemd_242():
    assert not [f for f in plan_of(platform={"systemd": 241}).files if f.path.endswith(".link")]


def test_masks_are_dev_null_symlinks():
    plan = plan_of(networkd={"mask": ["50-docker.network", "99-custom.link"]})
    masks = [x for x in plan.links if x.path.startswith("/etc/systemd/network/")]  # not the enablement links
    assert {(x.path, x.target) for x in masks} == {("/etc/systemd/network/50-docker.network", "/dev/null"),
                                                         ("/etc/systemd/network/99-custom.link", "/dev/null")}


@pytest.mark.parametrize("version, keys", [
    (245, None), (246, {"ManageForeignRoutes": ["no"]}),
    (249, {"ManageForeignRoutes": ["no"], "ManageForeignRoutingPolicyRules": ["no"]}),
])
def test_networkd_conf_keys_are_gated_by_version(version, keys):
    f = plan_files(plan_of(platform={"systemd": version}))
    conf = f.get("/etc/systemd/networkd.conf.d/50-netharden.conf")
    assert (ini(conf)["Network"] if conf else None) == keys


def test_foreign_routes_manage_renders_no_drop_in():
    assert "/etc/systemd/networkd.conf.d/50-netharden.conf" not in plan_files(plan_of(networkd={"foreign_routes": "manage"}))


@pytest.mark.parametrize("version", [237, 241, 245, 246, 249, 250, 251, 252, 255, 256])
@pytest.mark.parametrize("path", NETWORKD_FILE_EXAMPLES, ids=lambda p: p.name)
def test_no_key_newer_than_the_target(path, version):
    """The version table is the only gate: a key whose feature the target lacks never appears."""
    data = __import__("yaml").safe_load(path.read_text())
    data.setdefault("platform", {})["systemd"] = version
    plan = netharden.plan(netharden.load(data))
    text = "\n".join(f.content for f in plan.files)
    gated = {"match.kind": re.compile(r"^Kind=!", re.M), "networkd.manage_foreign_routes": re.compile(r"^ManageForeignRoutes=", re.M),
             "networkd.manage_foreign_rules": re.compile(r"^ManageForeignRoutingPolicyRules=", re.M)}
    for feature, pattern in gated.items():
        if version < FEATURES[feature][0]:
            assert not pattern.search(text), (feature, version)
    (reload,) = [a.argv for a in plan.actions if a.id == "networkd-reload"]
    assert reload == (("networkctl", "reload") if version >= 244 else ("systemctl", "restart", "systemd-networkd.service"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_plan_entry_says_what_it_guards(path):
    plan = netharden.plan(netharden.load(path))
    for entry in [*plan.files, *plan.links]:
        assert entry.guards and entry.why
        assert isinstance(entry, (File, Link))
    for f in plan.files:
        assert f.content.endswith("\n") and "\n\n\n" not in f.content
        # every file says who wrote it: first line, or right after a script's shebang;
        # comment syntax follows the format (apt.conf uses //); JSON has no comments and
        # .args files are one docker argument per line, so neither carries a header
        if f.path.endswith((".json", ".args")):
            continue
        body = f.content.split("\n", 1)[1] if f.content.startswith("#!") else f.content
        assert re.match(r"(#|//) Generated by netharden; do not edit", body), f.path
