"""The NetworkManager renderer (platform.stack: networkmanager): which files, which keys,
which actions, and nothing for systemd-networkd. The real NetworkManager reads these files in
tests/test_networkmanager_netns.py."""
from __future__ import annotations

import re
import subprocess

import pytest

import netharden
from helpers import NETWORKMANAGER_EXAMPLES, ROOT, ini, minimal, need, plan_files
from netharden import networkmanager as nm
from netharden.renderers.networkmanager import CONF, FOREIGN_ROUTES

FCOS_K8S = ROOT / "examples" / "fcos-k8s.yaml"
UPLINK = "/etc/NetworkManager/system-connections/netharden-uplink-{}.nmconnection"
BRIDGE = "/etc/NetworkManager/system-connections/netharden-bridge-{}.nmconnection"


def keyfile(text: str) -> dict[str, dict[str, str]]:
    """GKeyFile text -> section -> key -> value (helpers.ini; every key appears once)."""
    out = {}
    for section, keys in ini(text).items():
        assert all(len(values) == 1 for values in keys.values()), (section, keys)
        out[section] = {key: values[0] for key, values in keys.items()}
    return out


def plan_of(**extra):
    return netharden.plan(netharden.load(minimal(**extra)))


def test_the_example_is_a_networkmanager_host():
    assert NETWORKMANAGER_EXAMPLES == [FCOS_K8S]
    profile = netharden.load(FCOS_K8S)
    assert (profile.stack, profile.networkmanager) == ("networkmanager", nm.DEFAULT_VERSION["fcos"])


@pytest.mark.parametrize("os_name", ["fcos", "rhel", "rocky", "alma", "fedora"])
def test_networkmanager_is_the_default_stack_of_the_rpm_family(os_name):
    assert netharden.load(minimal(platform={"os": os_name})).stack == "networkmanager"


@pytest.mark.parametrize("os_name", ["flatcar", "coreos", "debian", "generic"])
def test_networkd_stays_the_default_elsewhere(os_name):
    assert netharden.load(minimal(platform={"os": os_name})).stack == "networkd"


def test_netplan_is_ubuntus_default():
    assert netharden.load(minimal(platform={"os": "ubuntu"})).stack == "netplan"


def test_no_networkd_file_on_a_networkmanager_host():
    """Nothing the host's stack never reads: no .network/.netdev, networkd.conf, masks or
    quarantine; the .link files stay (udev reads them)."""
    plan = netharden.plan(netharden.load(FCOS_K8S))
    paths = set(plan_files(plan))
    assert not [p for p in paths if p.endswith((".network", ".netdev")) or "networkd.conf" in p or "quarantine" in p]
    assert not plan.links
    assert {p for p in paths if p.endswith(".link")} == {
        f"/etc/systemd/network/0-netharden-{g}.link" for g in ("docker", "veth", "cni", "flannel", "calico", "kube")
    }
    assert not [a for a in plan.actions if "networkctl" in a.argv or "systemd-networkd.service" in a.argv]


def test_unmanaged_conf_lists_every_preset_glob_and_catches_veths_by_driver():
    plan = netharden.plan(netharden.load(FCOS_K8S))
    conf = keyfile(plan_files(plan)[CONF])
    assert conf["main"] == {"no-auto-default": "*"}
    specs = conf["keyfile"]["unmanaged-devices+"].split(";")
    profile = netharden.load(FCOS_K8S)
    # every glob, then veths of any name by driver; a broad uplink (ens*, eth*) is no exact name: no except:
    assert specs == [f"interface-name:{g}" for group in profile.unmanaged for g in group.globs] + ["driver:veth"]
    assert {"interface-name:docker0", "interface-name:cni*", "interface-name:cali*", "interface-name:flannel*"} <= set(specs)
    # strict: no [device-*] section (one with managed=0 leaves a veth NM already manages managed)
    assert [s for s in conf if s.startswith("device")] == []
    (f,) = [f for f in plan.files if f.path == CONF]
    assert f.mode == 0o644


def test_uplinks_named_exactly_are_not_caught_by_the_veth_section():
    plan = plan_of(platform={"os": "rhel"}, uplinks=[{"name": "lan", "match": {"name": "eth0"}}])
    conf = keyfile(plan_files(plan)[CONF])
    assert conf["keyfile"]["unmanaged-devices+"].endswith(";driver:veth;except:interface-name:eth0")
    up = keyfile(plan_files(plan)[UPLINK.format("lan")])
    assert up["connection"]["interface-name"] == "eth0" and "match" not in up


def test_no_driver_spec_without_the_veth_preset():
    plan = plan_of(platform={"os": "rhel"}, unmanaged={"presets": ["calico"]}, uplinks=[{"name": "lan", "match": {"name": "eth0"}}])
    conf = keyfile(plan_files(plan)[CONF])
    assert conf["keyfile"]["unmanaged-devices+"].startswith("interface-name:cali*;")
    assert "driver:" not in conf["keyfile"]["unmanaged-devices+"] and "except:" not in conf["keyfile"]["unmanaged-devices+"]


def test_a_broad_uplink_excludes_container_interfaces_by_name():
    plan = netharden.plan(netharden.load(FCOS_K8S))
    up = keyfile(plan_files(plan)[UPLINK.format("primary")])
    names = up["match"]["interface-name"].split(";")
    assert names[:2] == ["ens*", "eth*"]
    assert {"!veth*", "!cali*", "!cni*", "!docker0", "!flannel*"} <= set(names[2:])
    assert all(n.startswith("!") for n in names[2:])
    assert up["connection"]["type"] == "ethernet" and up["connection"]["autoconnect-priority"] == "100"
    assert up["ipv4"] == {"method": "manual", "address1": "192.0.2.10/24", "gateway": "192.0.2.1", "dns": "192.0.2.53;"}
    assert up["ipv6"] == {"method": "link-local"}


def test_mac_driver_and_path_matches():
    plan = plan_of(
        platform={"os": "rhel"},
        uplinks=[
            {"name": "a", "match": {"mac": "52:54:00:12:34:56"}},
            {"name": "b", "match": {"driver": ["virtio_net", "e1000*"], "path": "pci-0000:00:03.0"}},
        ],
    )
    a = keyfile(plan_files(plan)[UPLINK.format("a")])
    assert a["ethernet"]["mac-address"] == "52:54:00:12:34:56"
    assert a["match"]["interface-name"].startswith("!veth*;")  # a MAC is copied by bridges: broad
    b = keyfile(plan_files(plan)[UPLINK.format("b")])
    assert b["match"]["driver"] == "virtio_net;e1000*" and b["match"]["path"] == "pci-0000:00:03.0"
    assert "interface-name" not in b["match"]  # a device path is exact


@pytest.mark.parametrize(
    ("up", "ipv4", "ipv6"),
    [
        ({"dhcp": "yes"}, "auto", "auto"),
        ({"dhcp": "ipv4"}, "auto", "link-local"),
        ({"dhcp": "ipv6"}, "disabled", "auto"),
        ({"addresses": ["192.0.2.2/24", "2001:db8::2/64"]}, "manual", "manual"),
        ({"addresses": ["192.0.2.2/24"], "ipv6_accept_ra": True}, "manual", "auto"),
    ],
)
def test_address_methods(up, ipv4, ipv6):
    plan = plan_of(platform={"os": "fedora"}, uplinks=[{"name": "lan", "match": {"name": "eth0"}, **up}])
    text = keyfile(plan_files(plan)[UPLINK.format("lan")])
    assert (text["ipv4"]["method"], text["ipv6"]["method"]) == (ipv4, ipv6)


def test_bridge_pins_its_mac_and_may_fail():
    profile = netharden.load(FCOS_K8S)
    plan = netharden.plan(profile)
    (bridge,) = profile.bridges
    text = keyfile(plan_files(plan)[BRIDGE.format(bridge.name)])
    assert text["connection"]["type"] == "bridge" and text["connection"]["interface-name"] == bridge.name
    assert text["ethernet"] == {"cloned-mac-address": bridge.mac}
    assert text["bridge"] == {"stp": "false"}
    assert text["ipv4"] == {"method": "manual", "address1": "10.40.0.1/24", "may-fail": "true"}
    assert text["ipv6"] == {"method": "disabled"}


def test_keyfiles_are_0600_and_have_stable_uuids():
    plan = netharden.plan(netharden.load(FCOS_K8S))
    keyfiles = [f for f in plan.files if f.path.endswith(".nmconnection")]
    assert keyfiles and all(f.mode == 0o600 for f in keyfiles)
    uuids = [keyfile(f.content)["connection"]["uuid"] for f in keyfiles]
    assert len(set(uuids)) == len(uuids)
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", u) for u in uuids)
    again = netharden.plan(netharden.load(FCOS_K8S))
    assert plan_files(again) == plan_files(plan)


def test_actions():
    plan = netharden.plan(netharden.load(FCOS_K8S))
    actions = {a.id: a for a in plan.actions}
    assert actions["networkmanager-reload"].argv == ("nmcli", "connection", "reload")
    conf = actions["networkmanager-reload-conf"]
    assert conf.argv == ("/opt/netharden/bin/netharden-nm-reload-conf",) and not conf.disruptive
    assert conf.phase < actions["networkmanager-reload"].phase  # the unmanaged list before new profiles
    up = actions["networkmanager-up-primary"]
    assert up.argv == ("nmcli", "connection", "up", "netharden-uplink-primary")
    assert up.disruptive and up.allow == "networkmanager"
    assert [a.id for a in plan.actions if a.disruptive and a.allow != "docker"] == ["networkmanager-up-primary"]


def test_explain_says_why_no_foreign_route_setting_is_needed(capsys):
    from netharden.cli import main

    assert main(["explain", str(FCOS_K8S)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("host fcos-k8s-01: fcos, NetworkManager 1.50, systemd 256\n")
    assert FOREIGN_ROUTES in out


def test_networkd_keys_are_a_note_on_networkmanager():
    plan = plan_of(platform={"os": "rhel"}, networkd={"mask": ["50-x.network"], "quarantine": []})
    assert any(n.startswith("networkd.mask and networkd.quarantine not rendered") for n in plan.notes)


def test_docker_waits_for_networkmanager():
    text = plan_files(netharden.plan(netharden.load(FCOS_K8S)))
    assert "After=NetworkManager.service" in text["/etc/systemd/system/docker.service.d/50-netharden.conf"]
    assert "systemd-networkd" not in text["/etc/systemd/system/docker-build.service"]


def test_package_holds_on_the_rpm_family_say_what_to_run():
    plan = plan_of(platform={"os": "rhel"}, docker={"hold_packages": ["docker-ce", "containerd.io"]})
    (note,) = [n for n in plan.notes if n.startswith("docker.hold_packages")]
    assert "dnf versionlock add containerd.io docker-ce" in note


def test_version_table_cites_a_source_per_feature():
    for feature, (version, where, source) in nm.FEATURES.items():
        assert version <= (1, 50) and where and source.startswith(("NEWS", "NetworkManager.conf")), feature
    assert nm.MINIMUM == (1, 26) and all(v >= nm.MINIMUM for v in nm.DEFAULT_VERSION.values())


def test_rendered_helper_passes_shellcheck():
    need("shellcheck", "make test installs it")
    text = plan_files(netharden.plan(netharden.load(FCOS_K8S)))["/opt/netharden/bin/netharden-nm-reload-conf"]
    done = subprocess.run(["shellcheck", "-s", "sh", "--severity=style", "-"], input=text, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_required_for_online_false_is_a_note():
    plan = plan_of(platform={"os": "rhel"}, uplinks=[{"name": "lan", "match": {"name": "eth0"}, "required_for_online": False}])
    assert any(n.startswith("uplinks[].required_for_online: false (lan)") for n in plan.notes)


def test_butane_of_an_fcos_profile_is_the_fcos_variant(capsys):
    from netharden.cli import main

    assert main(["render", str(FCOS_K8S), "--format", "butane"]) == 0
    out = capsys.readouterr().out
    assert "\nvariant: fcos\n" in out
    assert main(["render", str(FCOS_K8S), "--format", "butane", "--variant", "flatcar"]) == 0
    assert "\nvariant: flatcar\n" in capsys.readouterr().out


def test_without_uplinks_auto_defaults_stay_on():
    """The host's NICs may live on NetworkManager's auto-default profiles: only a profile with
    uplinks turns them off."""
    plan = plan_of(platform={"os": "fcos"}, bridges=[{"name": "ctrbr0", "addresses": ["10.50.0.1/24"]}])
    conf = keyfile(plan_files(plan)[CONF])
    assert "main" not in conf and "keyfile" in conf
    assert any(n.startswith("no uplinks: NetworkManager's auto-default profiles stay on") for n in plan.notes)


def test_a_fleet_of_networkmanager_hosts(tmp_path):
    """Hosts of a fleet pick their stack from their own platform; the stack rules are checked per host."""
    from netharden.cli import main

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "apiVersion: netharden/v1\nkind: Fleet\ndefaults:\n  platform: {os: fcos}\n"
        "  uplinks: [{name: primary, match: {name: ['ens*']}, dhcp: 'yes'}]\n"
        "hosts:\n  - name: n1\n    profile: {bridges: [{name: buildbr0}]}\n"
        "  - name: n2\n    profile: {platform: {os: debian}}\n"
    )
    assert main(["render", str(fleet), "--format", "tree", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out/n1/etc/NetworkManager/system-connections/netharden-bridge-buildbr0.nmconnection").exists()
    assert (tmp_path / "out/n2/etc/systemd/network/20-netharden-uplink-primary.network").exists()
    assert not (tmp_path / "out/n2/etc/NetworkManager").exists()
    fleet.write_text(fleet.read_text().replace("{platform: {os: debian}}", "{platform: {os: fcos, stack: networkd}}"))
    assert main(["render", str(fleet), "--format", "tree", "--out", str(tmp_path / "out2")]) == 2
    assert not (tmp_path / "out2").exists()


def test_butane_of_a_fleet_follows_each_hosts_os(tmp_path):
    from netharden.cli import main

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "apiVersion: netharden/v1\nkind: Fleet\ndefaults:\n  platform: {os: fcos}\n"
        "hosts:\n  - name: n1\n  - name: n2\n    profile: {platform: {os: debian}}\n"
    )
    assert main(["render", str(fleet), "--format", "butane", "--out", str(tmp_path / "out")]) == 0
    assert "\nvariant: fcos\n" in (tmp_path / "out/n1.bu").read_text()
    assert "\nvariant: flatcar\n" in (tmp_path / "out/n2.bu").read_text()
    assert main(["render", str(fleet), "--format", "butane", "--variant", "flatcar", "--out", str(tmp_path / "o2")]) == 0
    assert "\nvariant: flatcar\n" in (tmp_path / "o2/n1.bu").read_text()
