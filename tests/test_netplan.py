"""The netplan stack (renderers/netplan.py): the Plan's shape, the YAML through the real
``netplan generate --root-dir`` (netplan.io 0.106), how netplan merges two files (why
netharden never shares a netdef id), ``conflicts`` and the doctor's ``netplan-conflict``.
The generated files on the real systemd-networkd: tests/test_netplan_netns.py."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import netharden
from helpers import NETPLAN_EXAMPLES, ROOT, ini, minimal, need, plan_files
from netharden.doctor.host import Host
from netharden.doctor.runner import run
from netharden.renderers import netplan
from netharden.renderers.netplan import NETPLAN_FILE, conflicts, generated_network, netdef_id

# the acceptance case of issue 16: uplink eth0 with a static address, on Ubuntu
UBUNTU = minimal(
    metadata={"name": "ubuntu-host"},
    platform={"os": "ubuntu"},
    uplinks=[{"name": "eth0", "addresses": ["192.0.2.10/24"], "gateway": "192.0.2.1", "dns": ["192.0.2.53"],
              "mtu": 1500}],
    bridges=[{"name": "dockerbr0", "addresses": ["10.24.0.1/24"]},
             {"name": "dockerbr6", "mac": "02:00:5e:10:00:06", "addresses": ["fd00:24::1/64"], "stp": True}],
)
# cloud-init's netplan file on an Ubuntu cloud image (the NIC matched by MAC, renamed to eth0)
CLOUD_INIT = """\
# This file is generated from information provided by the datasource.
network:
    ethernets:
        eth0:
            dhcp4: true
            match:
                macaddress: 02:00:00:aa:bb:cc
            set-name: eth0
    version: 2
"""


def generate(root: Path) -> subprocess.CompletedProcess:
    """The real ``netplan generate`` over a scratch root."""
    need("netplan", "sh scripts/install-system-deps.sh installs netplan.io")
    return subprocess.run(["netplan", "generate", "--root-dir", str(root)], capture_output=True, text=True, timeout=60)


def tree(tmp_path: Path, data=UBUNTU, extra: dict[str, str] | None = None) -> Path:
    out = tmp_path / "tree"
    netharden.emit(netharden.plan(netharden.load(data)), "tree", out)
    for path, text in (extra or {}).items():
        target = out / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o600)
    return out


def generated(root: Path) -> dict[str, str]:
    d = root / "run/systemd/network"
    return {p.name: p.read_text() for p in sorted(d.iterdir())} if d.is_dir() else {}


# ------------------------------------------------------------------ the Plan


def test_ubuntu_plan_has_the_netplan_file_and_the_networkd_guards_only():
    plan = netharden.plan(netharden.load(UBUNTU))
    files = {f.path: f for f in plan.files}
    assert files[NETPLAN_FILE].mode == 0o600
    # no uplink/bridge networkd files of our own: netplan writes those
    assert not [p for p in files if p.endswith(".netdev") or "-uplink-" in p or p.startswith("/etc/systemd/network/10-")]
    # the guards stay networkd files, exactly as on the networkd stack
    debian = netharden.plan(netharden.load({**UBUNTU, "platform": {"os": "debian", "systemd": 255}}))
    guards = {p: f.content for p, f in files.items() if p != NETPLAN_FILE}
    assert guards == {p: c for p, c in plan_files(debian).items()
                      if p.startswith(("/etc/systemd/network/0-", "/etc/systemd/networkd.conf.d/", "/etc/systemd/system/",
                                       "/usr/local/libexec/netharden/netharden-quarantine"))}
    assert {link.path for link in plan.links} == {link.path for link in debian.links}  # the masks
    actions = {a.id: a for a in plan.actions}
    gen, reload_ = actions["netplan-generate"], actions["networkd-reload"]
    assert gen.argv == ("netplan", "generate") and gen.phase == reload_.phase - 1 and gen.triggers == (NETPLAN_FILE,)
    assert NETPLAN_FILE in reload_.triggers and reload_.argv == ("networkctl", "reload")
    assert [a.id for a in plan.actions].index("netplan-generate") < [a.id for a in plan.actions].index("networkd-reload")


def test_ids_and_generated_names():
    profile = netharden.load(UBUNTU)
    (up,), (br, _) = profile.uplinks, profile.bridges
    assert netdef_id(up) == "0-netharden-eth0" and netdef_id(br) == "dockerbr0"
    assert generated_network(up) == "/run/systemd/network/10-netplan-0-netharden-eth0.network"
    assert generated_network(br) == "/run/systemd/network/10-netplan-dockerbr0.network"
    # before every netdef named after an interface (cloud-init's eth0, ens3 ...), so networkd takes it first
    assert all(generated_network(up) < f"/run/systemd/network/10-netplan-{name}.network"
               for name in ("eth0", "ens3", "enp0s3", "0eth", "a", "_x"))


def test_the_yaml_reads_back_as_the_profile_says():
    profile = netharden.load(UBUNTU)
    doc = yaml.safe_load(plan_files(netharden.plan(profile))[NETPLAN_FILE])
    assert doc["network"]["version"] == 2
    up = doc["network"]["ethernets"]["0-netharden-eth0"]
    assert up == {"renderer": "networkd", "match": {"name": "eth0"}, "dhcp4": False, "dhcp6": False,
                  "accept-ra": False, "addresses": ["192.0.2.10/24"], "routes": [{"to": "default", "via": "192.0.2.1"}],
                  "nameservers": {"addresses": ["192.0.2.53"]}, "mtu": 1500}
    br = doc["network"]["bridges"]["dockerbr0"]
    assert br["macaddress"] == profile.bridges[0].mac and br["parameters"] == {"stp": False}
    assert br["link-local"] == [] and doc["network"]["bridges"]["dockerbr6"]["link-local"] == ["ipv6"]
    assert br["optional"] is True and br["ignore-carrier"] is True


def test_deterministic():
    a = plan_files(netharden.plan(netharden.load(UBUNTU)))[NETPLAN_FILE]
    assert a == plan_files(netharden.plan(netharden.load(json.loads(json.dumps(UBUNTU)))))[NETPLAN_FILE]


def test_explain_says_where_uplinks_go(tmp_path, capsys):
    from netharden.cli import main

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(UBUNTU))
    assert main(["explain", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ubuntu, netplan (renders to systemd-networkd)" in out
    assert "uplink eth0: network.ethernets.0-netharden-eth0 -> /run/systemd/network/10-netplan-0-netharden-eth0.network" in out
    assert "bridge dockerbr0: network.bridges.dockerbr0" in out


def test_netplan_examples_exist():
    assert [p.name for p in NETPLAN_EXAMPLES] == ["incident-4-stale-vxlan.yaml", "ubuntu-cloud.yaml"]


# ------------------------------------------------------------------ the real netplan generate


@pytest.mark.parametrize("path", NETPLAN_EXAMPLES + [UBUNTU], ids=lambda p: getattr(p, "name", "ubuntu-acceptance"))
def test_real_netplan_generate_takes_it_without_a_warning(tmp_path, path):
    root = tree(tmp_path, path)
    assert (root / NETPLAN_FILE.lstrip("/")).stat().st_mode & 0o777 == 0o600
    done = generate(root)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stdout + done.stderr
    profile = netharden.load(path)
    out = generated(root)
    for item in profile.uplinks + profile.bridges:
        assert os.path.basename(generated_network(item)) in out
    for br in profile.bridges:
        netdev = ini(out[f"10-netplan-{br.name}.netdev"])
        assert netdev["NetDev"] == {"Name": [br.name], "MACAddress": [br.mac], "Kind": ["bridge"]}
        assert netdev["Bridge"]["STP"] == ["true" if br.stp else "false"]
        # what templates/networkd/bridge.network.j2 says, in netplan's words
        network = ini(out[f"10-netplan-{br.name}.network"])
        assert network["Link"]["RequiredForOnline"] == ["no"]
        assert network["Network"]["ConfigureWithoutCarrier"] == ["yes"]
        assert network["Network"]["IPv6AcceptRA"] == ["no"]
        has6 = any(":" in a for a in br.addresses)
        assert network["Network"]["LinkLocalAddressing"] == ["ipv6" if has6 else "no"]
        assert network["Network"]["Address"] == list(br.addresses)


def test_generated_uplink_carries_the_profile(tmp_path):
    root = tree(tmp_path)
    assert generate(root).returncode == 0
    up = ini(generated(root)["10-netplan-0-netharden-eth0.network"])
    assert up["Match"] == {"Name": ["eth0"]}
    assert up["Network"]["Address"] == ["192.0.2.10/24"] and up["Network"]["DNS"] == ["192.0.2.53"]
    assert up["Network"]["IPv6AcceptRA"] == ["no"] and "DHCP" not in up["Network"]
    assert up["Route"] == {"Destination": ["0.0.0.0/0"], "Gateway": ["192.0.2.1"]}
    assert up["Link"]["MTUBytes"] == ["1500"] and "RequiredForOnline" not in up["Link"]
    optional = {**UBUNTU, "uplinks": [{**UBUNTU["uplinks"][0], "required_for_online": False, "dhcp": "ipv4",
                                       "ipv6_accept_ra": True}]}
    (tmp_path / "b").mkdir()
    root = tree(tmp_path / "b", optional)
    assert generate(root).returncode == 0
    up = ini(generated(root)["10-netplan-0-netharden-eth0.network"])
    assert up["Link"]["RequiredForOnline"] == ["no"] and up["Network"]["DHCP"] == ["ipv4"]
    assert up["Network"]["IPv6AcceptRA"] == ["yes"]


def test_mac_and_driver_match(tmp_path):
    data = minimal(platform={"os": "ubuntu"},
                   uplinks=[{"name": "lan", "match": {"mac": "02:00:00:AA:BB:CC", "driver": ["virtio_net", "e1000*"]}}])
    root = tree(tmp_path, data)
    done = generate(root)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    # netplan matches the permanent MAC: bridges, veths and VLANs that copy it are never matched
    assert ini(generated(root)["10-netplan-0-netharden-lan.network"])["Match"] == {
        "Driver": ["virtio_net e1000*"], "PermanentMACAddress": ["02:00:00:aa:bb:cc"]}


def test_cloud_init_file_beside_ours_sorts_after_it(tmp_path):
    """Ubuntu cloud image: cloud-init's 50-cloud-init.yaml names eth0 too. The ids differ, so
    netplan keeps two definitions (no merge: cloud-init's DHCP stays out of ours), and ours
    sorts first in networkd's order."""
    root = tree(tmp_path, extra={"/etc/netplan/50-cloud-init.yaml": CLOUD_INIT})
    done = generate(root)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    out = generated(root)
    networks = [n for n in out if n.endswith(".network")]
    assert networks[0] == "10-netplan-0-netharden-eth0.network" and "10-netplan-eth0.network" in networks
    ours = ini(out["10-netplan-0-netharden-eth0.network"])
    assert ours["Network"]["Address"] == ["192.0.2.10/24"] and "DHCP" not in ours["Network"]
    assert ini(out["10-netplan-eth0.network"])["Network"]["DHCP"] == ["ipv4"]
    # and the doctor finds no conflict there
    assert conflicts((root / "etc/netplan/60-netharden.yaml").read_text(),
                     {"/etc/netplan/50-cloud-init.yaml": CLOUD_INIT}) == []


def test_why_not_the_same_id_netplan_merges_and_appends(tmp_path):
    """The measurement behind the id rule: the same id in two files is merged, scalars of the
    later file win, sequences are appended (cloud-init's address, DNS and route join ours)."""
    theirs = {"network": {"version": 2, "ethernets": {"eth0": {
        "match": {"macaddress": "02:00:00:aa:bb:cc"}, "set-name": "eth0", "dhcp4": True,
        "addresses": ["198.51.100.5/24"], "nameservers": {"addresses": ["198.51.100.53"]}}}}}
    ours = {"network": {"version": 2, "ethernets": {"eth0": {
        "match": {"name": "eth0"}, "dhcp4": False, "addresses": ["192.0.2.10/24"],
        "nameservers": {"addresses": ["192.0.2.53"]}}}}}
    root = tmp_path / "root"
    (root / "etc/netplan").mkdir(parents=True)
    for name, doc in (("50-cloud-init.yaml", theirs), ("60-netharden.yaml", ours)):
        (root / "etc/netplan" / name).write_text(yaml.safe_dump(doc))
        (root / "etc/netplan" / name).chmod(0o600)
    assert generate(root).returncode == 0
    (merged,) = [t for n, t in generated(root).items() if n.endswith(".network")]
    got = ini(merged)
    assert got["Match"] == {"PermanentMACAddress": ["02:00:00:aa:bb:cc"], "Name": ["eth0"]}
    assert got["Network"]["Address"] == ["198.51.100.5/24", "192.0.2.10/24"]
    assert got["Network"]["DNS"] == ["198.51.100.53", "192.0.2.53"]
    assert "DHCP" not in got["Network"]  # dhcp4: the later file's scalar won
    # conflicts() says so for exactly this layout
    (c,) = conflicts(ours, {"/etc/netplan/50-cloud-init.yaml": yaml.safe_dump(theirs)})
    assert c.path == "/etc/netplan/50-cloud-init.yaml" and "netplan merges the two" in c.message


# ------------------------------------------------------------------ conflicts()


def _ours() -> str:
    return plan_files(netharden.plan(netharden.load(UBUNTU)))[NETPLAN_FILE]


@pytest.mark.parametrize("others, where, words", [
    ({"/etc/netplan/70-user.yaml": "network: {version: 2, bridges: {dockerbr0: {addresses: [10.9.0.1/24]}}}"},
     "/etc/netplan/70-user.yaml", ["network.bridges.dockerbr0", "its scalars override the profile's"]),
    ({"/etc/netplan/50-cloud-init.yaml":
      "network: {version: 2, ethernets: {nic: {match: {name: 'eth*'}, set-name: ens3}}}"},
     "/etc/netplan/50-cloud-init.yaml", ["renames the NIC", "'ens3' (set-name)", "uplink 0-netharden-eth0"]),
    ({"/etc/netplan/01-early.yaml": "network: {version: 2, ethernets: {'0-a': {match: {name: 'eth*'}, dhcp4: true}}}"},
     "/etc/netplan/01-early.yaml", ["10-netplan-0-a.network, which sorts before", "name eth*"]),
    ({"/etc/netplan/00-broken.yaml": "network: {version: 2, ethernets: {eth0: [}"},
     "/etc/netplan/00-broken.yaml", ["is not valid YAML", "netplan generate fails on it"]),
    ({"/run/netplan/60-netharden.yaml": "network: {version: 2}"},
     "/run/netplan/60-netharden.yaml", ["in a directory netplan prefers", "never reads the profile's file"]),
], ids=["same-bridge-id", "set-name-away", "sorts-before", "broken-yaml", "hidden"])
def test_conflicts(others, where, words):
    (c,) = conflicts(_ours(), others)
    assert c.path == where and all(w in c.message for w in words), c.message
    assert str(c).startswith(where + ": ")


def test_no_conflict_for_unrelated_or_agreeing_files():
    assert conflicts(_ours(), {
        "/etc/netplan/50-cloud-init.yaml": CLOUD_INIT,  # set-name eth0: our match still holds
        "/lib/netplan/00-other.yaml": "network: {version: 2, ethernets: {'0-x': {match: {name: 'ens9'}}}}",
        "/etc/netplan/90-vlan.yaml": "network: {version: 2, vlans: {vlan5: {id: 5, link: eth0}}}",
        # a second NIC that cloud-init matches by MAC and names eth1: another NIC, not ours
        "/etc/netplan/50-cloud-init.yaml.d": "",
        "/run/netplan/50-second.yaml":
            "network: {version: 2, ethernets: {eth1: {match: {macaddress: '02:00:00:aa:bb:01'}, set-name: eth1}}}",
        "/etc/netplan/README": "not yaml: [",  # netplan reads *.yaml only
    }) == []


def test_a_hidden_file_is_not_read():
    """/run/netplan/50-cloud-init.yaml hides /etc's: only the /run copy counts."""
    bad = "network: {version: 2, bridges: {dockerbr0: {}}}"
    assert conflicts(_ours(), {"/etc/netplan/50-x.yaml": bad, "/run/netplan/50-x.yaml": "network: {version: 2}"}) == []
    assert [c.path for c in conflicts(_ours(), {"/etc/netplan/50-x.yaml": "network: {version: 2}",
                                                "/run/netplan/50-x.yaml": bad})] == ["/run/netplan/50-x.yaml"]


def test_merge_conflict_is_real_on_netplan(tmp_path):
    """What conflicts() reports for a same-named bridge is what netplan does with it."""
    user = "network:\n  version: 2\n  bridges:\n    dockerbr0:\n      addresses: [10.9.0.1/24]\n"
    root = tree(tmp_path, extra={"/etc/netplan/70-user.yaml": user})
    assert generate(root).returncode == 0
    assert ini(generated(root)["10-netplan-dockerbr0.network"])["Network"]["Address"] == ["10.24.0.1/24", "10.9.0.1/24"]
    assert [c.path for c in conflicts(_ours(), {"/etc/netplan/70-user.yaml": user})] == ["/etc/netplan/70-user.yaml"]


# ------------------------------------------------------------------ the doctor check


def test_doctor_netplan_conflict(tmp_path):
    root = tree(tmp_path, extra={"/etc/netplan/50-cloud-init.yaml": CLOUD_INIT})
    report = run(Host(root, live=False), only=["netplan-conflict"])
    assert report.findings == [] and not report.checks[0].skipped
    (root / "etc/netplan/70-user.yaml").write_text("network: {version: 2, bridges: {dockerbr0: {dhcp4: true}}}")
    (finding,) = run(Host(root, live=False), only=["netplan-conflict"]).findings
    assert finding.subject == f"{root}/etc/netplan/70-user.yaml" and finding.severity == "error"
    assert "network.bridges.dockerbr0" in finding.message and finding.hint
    done = subprocess.run(["python", "-m", "netharden", "doctor", "--root", str(root), "--only", "netplan-conflict"],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1 and "70-user.yaml" in done.stdout, done.stdout + done.stderr


def test_doctor_netplan_conflict_does_not_apply_without_our_file(tmp_path):
    (tmp_path / "etc/netplan").mkdir(parents=True)
    (tmp_path / "etc/netplan/50-cloud-init.yaml").write_text(CLOUD_INIT)
    (check,) = run(Host(tmp_path, live=False), only=["netplan-conflict"]).checks
    assert check.skipped and NETPLAN_FILE in check.skipped


def test_doctor_profile_reports_the_conflicts_its_netplan_file_would_meet(tmp_path):
    """With --profile on a host that has no netharden file yet (a fresh cloud image), the check
    judges the profile's netplan file laid over the host: cloud-init's file is fine, a file that
    defines the uplink's id is reported as not fixed by applying the profile."""
    root = tmp_path / "host"
    (root / "etc/netplan").mkdir(parents=True)
    (root / "etc/netplan/50-cloud-init.yaml").write_text(CLOUD_INIT)
    profile = netharden.load(UBUNTU)
    (check,) = run(Host(root, live=False), only=["netplan-conflict"], profile=profile).checks
    assert check.findings == [] and NETPLAN_FILE in check.skipped  # nothing on the host, nothing the profile meets
    (root / "etc/netplan/70-vendor.yaml").write_text("network: {version: 2, ethernets: {0-netharden-eth0: {}}}\n")
    (check,) = run(Host(root, live=False), only=["netplan-conflict"], profile=profile).checks
    (finding,) = check.findings
    assert check.skipped is None and finding.subject == f"{root}/etc/netplan/70-vendor.yaml"
    assert finding.fixed_by_profile is False and "0-netharden-eth0" in finding.message
    # without the profile the host has nothing to conflict with
    (check,) = run(Host(root, live=False), only=["netplan-conflict"]).checks
    assert check.skipped and check.findings == []


# ------------------------------------------------------------------ emitters


def test_every_format_carries_the_file_and_the_action():
    plan = netharden.plan(netharden.load(UBUNTU))
    text = plan_files(plan)[NETPLAN_FILE]
    cc = yaml.safe_load(netharden.emit(plan, "cloud-config"))
    (entry,) = [f for f in cc["write_files"] if f["path"] == NETPLAN_FILE]
    assert entry["permissions"] == "0600" and entry["content"] == text
    cmds = cc["runcmd"]
    assert cmds.index(["netplan", "generate"]) < cmds.index(["networkctl", "reload"])
    ign = json.loads(netharden.emit(plan, "ignition"))
    (f,) = [f for f in ign["storage"]["files"] if f["path"] == NETPLAN_FILE]
    assert f["mode"] == 0o600
    but = yaml.safe_load(netharden.emit(plan, "butane"))
    (f,) = [f for f in but["storage"]["files"] if f["path"] == NETPLAN_FILE]
    assert f["mode"] == 0o600 and f["contents"]["inline"] == text
    doc = json.loads(netharden.emit(plan, "plan"))
    assert [f["mode"] for f in doc["files"] if f["path"] == NETPLAN_FILE] == ["0600"]
    assert [a["id"] for a in doc["actions"]].count("netplan-generate") == 1


def test_coreos_cloud_config_refuses_a_netplan_plan():
    from netharden.problems import UsageError

    plan = netharden.plan(netharden.load(UBUNTU))
    with pytest.raises(UsageError, match="coreos-cloud-config"):
        netharden.emit(plan, "coreos-cloud-config")


def test_tree_writes_mode_0600(tmp_path):
    root = tree(tmp_path)
    assert (root / "etc/netplan/60-netharden.yaml").stat().st_mode & 0o777 == 0o600


def test_netplan_module_is_the_one_place_of_the_rule():
    assert netplan.UPLINK_PREFIX == "0-netharden-" and netplan.GENERATED_DIR == "/run/systemd/network"
