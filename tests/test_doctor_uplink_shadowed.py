"""``uplink-shadowed``: an earlier file takes the profile's uplink NIC. The Ubuntu cloud case is
built with the real ``netplan generate --root-dir`` (cloud-init's 50-cloud-init.yaml matching eth0
by MAC) under netharden's networkd-stack rendering of a profile whose uplink eth0 has
``addresses: [192.0.2.10/24]``; the CLI over that root reports the netplan file, exit 1."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import netharden
from doctor_helpers import findings
from helpers import ROOT, minimal, need, write_profile
from netharden.doctor import Host
from netharden.doctor.runner import run
from netharden.plan_model import File, Plan

CHECK = "uplink-shadowed"
MAC = "52:54:00:12:34:56"
CLOUD_INIT_YAML = f"""network:
    ethernets:
        eth0:
            dhcp4: true
            match:
                macaddress: {MAC}
            set-name: eth0
    version: 2
"""
OTHER_NIC_YAML = CLOUD_INIT_YAML.replace("eth0", "eth1")
CLOUD_INIT_NETWORKD = f"""[Match]
MACAddress={MAC}
Name=eth0

[Network]
DHCP=ipv4
"""
# the shape helper A's netplan renderer writes (/etc/netplan/60-netharden.yaml), until it lands
NETHARDEN_NETPLAN = """network:
  version: 2
  ethernets:
    0-netharden-eth0:
      match:
        name: eth0
      addresses: [192.0.2.10/24]
      dhcp4: false
"""


def profile_data(**platform) -> dict:
    return minimal(
        platform={"os": "ubuntu", "stack": "networkd", **platform},
        uplinks=[{"name": "eth0", "match": {"name": ["eth0"]}, "addresses": ["192.0.2.10/24"]}],
        unmanaged={"presets": ["docker", "veth"]},
    )


def netplan_generate(root: Path) -> None:
    tool = need("netplan", "apt-get install netplan.io")
    subprocess.run([tool, "generate", "--root-dir", str(root)], check=True, capture_output=True, text=True)


def write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def render_into(root: Path, tmp_path: Path, data: dict) -> Path:
    profile = write_profile(tmp_path / "profile.yaml", data)
    tree = tmp_path / "tree"
    done = subprocess.run(
        [sys.executable, "-m", "netharden", "render", str(profile), "--out", str(tree)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    shutil.copytree(tree, root, symlinks=True, dirs_exist_ok=True)
    return profile


def doctor(root: Path, *args: str) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "netharden", "doctor", "--root", str(root), "--json", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def ubuntu_cloud_root(tmp_path: Path, yaml_text: str = CLOUD_INIT_YAML) -> Path:
    root = tmp_path / "root"
    write(root, "/etc/netplan/50-cloud-init.yaml", yaml_text, 0o600)
    netplan_generate(root)
    return root


def test_ubuntu_cloud_netplan_file_shadows_the_uplink(tmp_path):
    root = ubuntu_cloud_root(tmp_path)
    generated = (root / "run/systemd/network/10-netplan-eth0.network").read_text()
    assert f"PermanentMACAddress={MAC}" in generated and "Name=eth0" in generated  # the real netplan's
    render_into(root, tmp_path, profile_data())
    rc, report = doctor(root)
    (f,) = findings(report, CHECK)
    assert rc == 1 and f["severity"] == "error"
    assert f["subject"] == str(root / "run/systemd/network/10-netplan-eth0.network")
    assert f["message"].startswith("Address=192.0.2.10/24 is not in 10-netplan-eth0.network, which takes eth0")
    assert "20-netharden-uplink-eth0.network" in f["message"]
    assert "platform.stack: netplan" in f["hint"]
    # the other checks see nothing wrong with that root: this is the only error
    assert [x["check"] for x in findings(report) if x["severity"] == "error"] == [CHECK]


def test_cloud_init_networkd_renderer_file_shadows_the_uplink(tmp_path):
    root = tmp_path / "root"
    write(root, "/etc/systemd/network/10-cloud-init-eth0.network", CLOUD_INIT_NETWORKD)
    render_into(root, tmp_path, profile_data())
    rc, report = doctor(root)
    (f,) = findings(report, CHECK)
    assert rc == 1
    assert f["subject"].endswith("/etc/systemd/network/10-cloud-init-eth0.network")
    assert f["message"].startswith("Address=192.0.2.10/24 is not in 10-cloud-init-eth0.network")
    assert "cloud-init's networkd renderer" in f["hint"] and "config: disabled" in f["hint"]


def test_first_differing_setting_and_equal_settings(tmp_path):
    root = tmp_path / "root"
    # same address, other DHCP: the first difference is DHCP
    write(root, "/etc/systemd/network/05-user.network",
          "[Match]\nName=eth0\n\n[Network]\nAddress=192.0.2.10/24\nDHCP=yes\n")
    render_into(root, tmp_path, profile_data())
    _, report = doctor(root)
    (f,) = findings(report, CHECK)
    assert f["message"].startswith("DHCP=no differs: 05-user.network has DHCP=yes"), f["message"]
    assert "mask 05-user.network" in f["hint"]
    # every setting equal (defaults included): a warning, not an error
    write(root, "/etc/systemd/network/05-user.network",
          "[Match]\nName=eth0\n\n[Network]\nAddress=192.0.2.10/24\nIPv6AcceptRA=no\n")
    rc, report = doctor(root, "--fail-on", "error")
    (f,) = findings(report, CHECK)
    assert f["severity"] == "warning" and "equal the profile's" in f["message"]
    assert rc == 0


@pytest.mark.parametrize("case", ["no-earlier-file", "netplan-for-another-nic", "masked", "later-file"])
def test_negative_cases(tmp_path, case):
    if case == "netplan-for-another-nic":
        root = ubuntu_cloud_root(tmp_path, OTHER_NIC_YAML)
        assert (root / "run/systemd/network/10-netplan-eth1.network").is_file()
    else:
        root = tmp_path / "root"
        root.mkdir()
    if case == "masked":
        write(root, "/run/systemd/network/10-cloud-init-eth0.network", CLOUD_INIT_NETWORKD)
        (root / "etc/systemd/network").mkdir(parents=True)
        (root / "etc/systemd/network/10-cloud-init-eth0.network").symlink_to("/dev/null")
    if case == "later-file":
        write(root, "/etc/systemd/network/90-fallback.network", "[Match]\nName=eth*\n\n[Network]\nDHCP=yes\n")
    render_into(root, tmp_path, profile_data())
    rc, report = doctor(root)
    assert findings(report, CHECK) == [] and rc == 0, findings(report)


def test_doctor_profile_reports_shadowing_the_profile_would_meet(tmp_path):
    """A cloud image with no netharden files yet: --profile lays the networkd-stack rendering
    over it and reports that its uplink would be shadowed (not fixed by the profile)."""
    root = ubuntu_cloud_root(tmp_path)
    profile = write_profile(tmp_path / "profile.yaml", profile_data())
    rc, report = doctor(root, "--profile", str(profile))
    (f,) = findings(report, CHECK)
    assert rc == 1 and f["fixed_by_profile"] is False
    assert f["message"].startswith("Address=192.0.2.10/24 is not in 10-netplan-eth0.network")
    # the same image without the profile: nothing of netharden's to shadow
    rc, report = doctor(root)
    assert findings(report, CHECK) == []


def test_netplan_stack_profile_fixes_it(tmp_path):
    """The shadowed networkd-stack root, --profile with the netplan stack's file: the real
    netplan generate over 50-cloud-init.yaml + 60-netharden.yaml gives netharden's netdef file,
    which sorts first; the finding is fixed by the profile and nothing new is found."""
    need("netplan", "apt-get install netplan.io")
    root = ubuntu_cloud_root(tmp_path)
    render_into(root, tmp_path, profile_data())
    host = Host(root, live=False)
    profile = netharden.load(write_profile(tmp_path / "p2.yaml", profile_data()))
    plan = Plan(profile.name, profile.systemd, files=[File(path="/etc/netplan/60-netharden.yaml", content=NETHARDEN_NETPLAN, mode=0o600)])
    # the networkd-stack uplink file stays in the root; netplan's output for netharden's netdef comes first
    report = run(host, only=[CHECK], profile=profile, plan=plan)
    (f,) = report.findings
    assert f.subject.endswith("10-netplan-eth0.network") and f.fixed_by_profile is True, f
    assert f.profile_note == "gone with the profile's files in place"


def test_netplan_stack_own_file_is_judged(tmp_path):
    """On the netplan stack netharden's own file is netplan's output for its netdef: an earlier
    user file that takes eth0 is reported against it (generated by the real netplan)."""
    need("netplan", "apt-get install netplan.io")
    root = tmp_path / "root"
    write(root, "/etc/netplan/60-netharden.yaml", NETHARDEN_NETPLAN, 0o600)
    write(root, "/etc/systemd/network/00-user.network", "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n")
    report = run(Host(root, live=False), only=[CHECK])
    (f,) = report.findings
    # no /run output yet: the doctor ran netplan generate itself
    assert "Address=192.0.2.10/24 is not in 00-user.network" in f.message, f.message
    assert "10-netplan-0-netharden-eth0.network" in f.message


def test_rendered_examples_are_not_shadowed(tmp_path):
    from helpers import EXAMPLES

    for example in EXAMPLES:
        profile = netharden.load(example)
        plan = netharden.plan(profile)
        overlay = {f.path: ("file", f.content) for f in plan.files}
        host = Host(tmp_path, live=False, overlay=overlay)
        assert run(host, only=[CHECK]).findings == [], example


@pytest.mark.netns
def test_live_nic_taken_by_an_earlier_file(doctor_host, tmp_path):
    """Live: the namespace's eth0 (a veth with the file's MAC) is taken by cloud-init's file; with
    another MAC the file does not match the live NIC and nothing is reported."""
    doctor_host.ip("link", "add", "eth0", "address", MAC, "type", "veth", "peer", "name", "peer0")
    doctor_host.write("/etc/systemd/network/10-cloud-init-eth0.network", CLOUD_INIT_NETWORKD)
    render_into(doctor_host.root, tmp_path, profile_data())
    rc, report = doctor_host.doctor("--only", CHECK)
    (f,) = findings(report, CHECK)
    assert rc == 1 and "which takes eth0 (live) first" in f["message"], f["message"]
    doctor_host.ip("link", "set", "eth0", "address", "52:54:00:aa:bb:cc")
    rc, report = doctor_host.doctor("--only", CHECK)
    assert rc == 0 and findings(report, CHECK) == []


def test_explain_says_what_shadows_the_uplink(tmp_path, capsys):
    from netharden.cli import main

    profile = write_profile(tmp_path / "ubuntu.yaml", profile_data())
    assert main(["explain", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "note: platform.os ubuntu with platform.stack networkd: cloud-init's /etc/netplan/50-cloud-init.yaml" in out
    assert "sorts before 20-netharden-uplink-eth0.network" in out and "use platform.stack: netplan" in out
    assert "(uplink-shadowed)" in out
    flatcar = write_profile(tmp_path / "flatcar.yaml", profile_data(os="flatcar"))
    assert main(["explain", str(flatcar)]) == 0
    out = capsys.readouterr().out
    assert "platform.os ubuntu" not in out and "10-netplan-*.network" in out


def test_bridge_file_shadowed_by_an_earlier_one(tmp_path):
    root = tmp_path / "root"
    write(root, "/etc/systemd/network/05-br0.network", "[Match]\nName=br0\n\n[Network]\nDHCP=yes\n")
    data = {**profile_data(), "bridges": [{"name": "br0", "addresses": ["198.51.100.1/24"]}]}
    render_into(root, tmp_path, data)
    rc, report = doctor(root)
    (f,) = findings(report, CHECK)
    assert rc == 1 and f["subject"].endswith("/etc/systemd/network/05-br0.network")
    assert f["message"].startswith("Address=198.51.100.1/24 is not in 05-br0.network, which takes br0 first")
    assert "10-netharden-br0.network" in f["message"]


def test_unparsable_netplan_yaml_is_said_not_raised(tmp_path):
    need("netplan", "apt-get install netplan.io")
    root = tmp_path / "root"
    write(root, "/etc/netplan/50-broken.yaml", "network: {version: 2, ethernets: {eth0: {dhcp4: maybe}}}\n", 0o600)
    render_into(root, tmp_path, profile_data())
    report = run(Host(root, live=False), only=[CHECK])
    (f,) = report.findings
    assert f.severity == "warning" and f.subject == "/etc/netplan" and "were not judged" in f.message, f
    assert report.checks[0].error is None
