"""Who else configures a NIC (netharden/doctor/owners.py) and the doctor checks built on it,
``stack-not-running`` and ``nic-owned-by-other-manager``.

Real files: the debootstrapped Debian 12 roots scripts/build-debian-image.sh caches (12ifupdown:
ifupdown installed by its package, networkd installed and disabled, the installer's
/etc/network/interfaces; 12nm: NetworkManager 1.42 as its package leaves it), with a rendered
netharden tree laid into them. The parser's finer points (includes, continuations, aliases) are
checked on literal texts.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import netharden
from helpers import ROOT, debian_rootfs, minimal, write_profile
from netharden.doctor import Host, run
from netharden.doctor.owners import (
    Claim,
    ifupdown_claims,
    logical_lines,
    nm_claims,
    read_ifupdown,
    release,
    unit_state,
)

# The Debian 12 installer's file (netcfg) for a DHCP NIC, as it writes it.
INSTALLER = """\
# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
allow-hotplug eth0
iface eth0 inet dhcp
"""

UPLINK = {"name": "lan", "match": {"name": ["eth0"]}, "addresses": ["192.0.2.10/24"]}
DEBIAN_MEMBERS = ("./etc", "./usr/lib/systemd/system", "./usr/sbin/ifup", "./usr/lib/systemd/systemd-networkd",
                  "./lib", "./sbin", "./usr/sbin/NetworkManager")


def _write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def _profile(**extra) -> dict:
    return minimal(platform={"os": "debian", "systemd": 252}, uplinks=[UPLINK], **extra)


def _lay_tree(root: Path, profile: dict) -> None:
    """The profile's rendered tree copied into ``root`` (as the role or an image build leaves it)."""
    tree = root.parent / "tree"
    netharden.emit(netharden.plan(netharden.load(profile, filename="p.yaml")), "tree", tree)
    shutil.copytree(tree, root, symlinks=True, dirs_exist_ok=True)


def _members(release_: str) -> tuple[str, ...]:
    return tuple(m for m in DEBIAN_MEMBERS if not (release_ == "12ifupdown" and m.endswith("NetworkManager"))
                 and not (release_ == "12nm" and m.endswith("ifup")))


@pytest.fixture
def ifupdown_root(tmp_path) -> Path:
    """Debian 12's default ifupdown host, debootstrapped (its /etc/network/interfaces names eth0)."""
    return debian_rootfs("12ifupdown", tmp_path / "root", *_members("12ifupdown"))


@pytest.fixture
def nm_root(tmp_path) -> Path:
    return debian_rootfs("12nm", tmp_path / "root", *_members("12nm"))


# ----------------------------------------------------------------------------- the parser


def test_installer_file(tmp_path):
    _write(tmp_path, "/etc/network/interfaces", INSTALLER)
    _write(tmp_path, "/usr/sbin/ifup", "", 0o755)
    (tmp_path / "sbin").symlink_to("usr/sbin")
    host = Host(tmp_path, live=False)
    config = read_ifupdown(host)
    assert [(s.name, s.family, s.method, s.line) for s in config.stanzas] == [
        ("lo", "inet", "loopback", 8), ("eth0", "inet", "dhcp", 12)]
    assert config.brought_up["eth0"][1:] == (11, "allow-hotplug eth0")
    (claim,) = ifupdown_claims(host)
    assert claim.where() == f"{tmp_path}/etc/network/interfaces:12: iface eth0 inet dhcp"
    assert claim.by == f"allow-hotplug eth0 ({tmp_path}/etc/network/interfaces:11)"
    # the overlay (what the role's preflight builds from the gathered files) names plain paths
    overlaid = Host(tmp_path / "nowhere", live=False,
                    overlay={"/etc/network/interfaces": ("file", INSTALLER), "/sbin/ifup": ("file", "")})
    assert [c.where() for c in ifupdown_claims(overlaid)] == ["/etc/network/interfaces:12: iface eth0 inet dhcp"]


def test_no_ifupdown_binary_no_claim(tmp_path):
    _write(tmp_path, "/etc/network/interfaces", INSTALLER)
    assert ifupdown_claims(Host(tmp_path, live=False)) == []


def test_includes_continuations_aliases_and_stanzas_not_brought_up(tmp_path):
    _write(tmp_path, "/sbin/ifup", "", 0o755)
    _write(tmp_path, "/etc/network/interfaces", "source interfaces.d/*.cfg\nsource-directory /etc/network/more\n"
                                                "source /etc/network/absent/*\n")
    _write(tmp_path, "/etc/network/interfaces.d/b.cfg", "auto ens3 \\\n   ens4\n# iface ens9 inet dhcp\n"
                                                        "iface ens3 inet static\n  address 10.0.0.2/24\n")
    _write(tmp_path, "/etc/network/interfaces.d/a.cfg", "allow-auto eth1\niface eth1:0 inet static\n"
                                                        "  address 10.1.0.2/24\n")
    _write(tmp_path, "/etc/network/interfaces.d/.hidden.cfg", "auto eth7\niface eth7 inet dhcp\n")
    _write(tmp_path, "/etc/network/more/50-ens5", "iface ens5 inet dhcp\n")        # nothing brings it up
    _write(tmp_path, "/etc/network/more/ens4.bak", "iface ens4 inet dhcp\n")       # not a run-parts name
    host = Host(tmp_path, live=False)
    config = read_ifupdown(host)
    assert [p.removeprefix(str(tmp_path)) for p in config.files] == [
        "/etc/network/interfaces", "/etc/network/interfaces.d/a.cfg", "/etc/network/interfaces.d/b.cfg",
        "/etc/network/more/50-ens5"]
    claims = {c.ifname: c for c in ifupdown_claims(host)}
    assert set(claims) == {"ens3", "eth1"}
    assert claims["ens3"].line == 4 and claims["ens3"].by.startswith("auto ens3 (")
    assert claims["eth1"].text == "iface eth1:0 inet static"       # an alias configures eth1
    assert logical_lines("a \\\n b\n\n  # c\nd\n") == [(1, 2, "a b"), (5, 5, "d")]


def test_release_moves_the_stanza_and_the_auto_line():
    text = INSTALLER + "\nauto eth1 eth0\niface eth1 inet manual\n    mtu 9000\niface eth0:1 inet static\n" \
        "    address 10.9.0.1/24\n# kept comment\n"
    kept, removed = release(text, {"eth0"})
    assert "eth0" not in kept and "iface lo inet loopback" in kept and "auto eth1\n" in kept
    assert "iface eth1 inet manual\n    mtu 9000\n" in kept and "# kept comment\n" in kept
    assert "# The primary network interface\n" in kept        # comments stay where they were
    assert removed == ("allow-hotplug eth0\niface eth0 inet dhcp\nauto eth1 eth0\n"
                       "iface eth0:1 inet static\n    address 10.9.0.1/24\n")
    assert release(kept, {"eth0"}) == (kept, "")               # a second run: nothing to release


# ----------------------------------------------------------------------------- real roots


def test_debian_default_host_is_refused_by_both_checks(ifupdown_root, tmp_path):
    """Debian's default host with netharden's files laid in: networkd is disabled (inert files)
    and ifupdown brings eth0 up."""
    host = Host(ifupdown_root, live=False)
    assert unit_state(host, "systemd-networkd.service") == "disabled"
    assert unit_state(host, "networking.service") == "enabled"
    (claim,) = ifupdown_claims(host)
    assert claim.ifname == "eth0" and claim.path.endswith("/etc/network/interfaces")
    _lay_tree(ifupdown_root, _profile())
    # the tree's own enablement links: a tree copied in enables networkd; take them out again
    for link in (ifupdown_root / "etc/systemd/system").rglob("*"):
        if link.is_symlink() and "networkd" in os.readlink(link) or "network1" in link.name:
            link.unlink()
    report = run(Host(ifupdown_root, live=False), only=["stack-not-running", "nic-owned-by-other-manager"])
    by_check = {c.id: c for c in report.checks}
    (stack,) = by_check["stack-not-running"].findings
    assert "systemd-networkd.service is disabled" in stack.message
    (owned,) = by_check["nic-owned-by-other-manager"].findings
    assert owned.subject == "eth0"
    assert "eth0 is configured by ifupdown too: " in owned.message
    assert "/etc/network/interfaces:" in owned.message and ": iface eth0 inet static" in owned.message
    assert "20-netharden-uplink-lan.network matches it" in owned.message
    assert report.exit_code("error") == 1


def test_with_the_profile_networkd_is_enabled_but_ifupdown_still_owns_eth0(ifupdown_root, tmp_path):
    """``doctor --root R --profile P`` on the bare default host: the profile's Plan enables
    networkd (fixed), and its uplink file brings the conflict with ifupdown (not fixed)."""
    profile = write_profile(tmp_path / "p.yaml", _profile())
    done = subprocess.run([sys.executable, "-m", "netharden", "doctor", "--root", str(ifupdown_root), "--profile",
                           str(profile), "--json", "--only", "stack-not-running", "--only",
                           "nic-owned-by-other-manager"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["stack-not-running"]["skipped"], checks["stack-not-running"]   # no netharden files yet
    (owned,) = checks["nic-owned-by-other-manager"]["findings"]
    assert owned["subject"] == "eth0" and owned["fixed_by_profile"] is False
    assert ": iface eth0 inet static" in owned["message"]
    # once the files are there without the enablement, the profile fixes stack-not-running
    _lay_tree(ifupdown_root, _profile())
    for link in (ifupdown_root / "etc/systemd/system").rglob("*"):
        if link.is_symlink() and ("networkd" in os.readlink(link) or "network1" in link.name):
            link.unlink()
    report = run(Host(ifupdown_root, live=False), only=["stack-not-running"], profile=netharden.load(profile))
    (stack,) = report.checks[0].findings
    assert stack.fixed_by_profile is True


def test_takeover_release_clears_the_finding(ifupdown_root):
    """What the role's takeover does to the file (owners.release) leaves no owner but networkd."""
    _lay_tree(ifupdown_root, _profile())
    path = ifupdown_root / "etc/network/interfaces"
    kept, removed = release(path.read_text(), {"eth0"})
    assert removed.startswith("auto eth0\niface eth0 inet static\n")
    path.write_text(kept)
    report = run(Host(ifupdown_root, live=False), only=["stack-not-running", "nic-owned-by-other-manager"])
    assert [f for c in report.checks for f in c.findings] == []       # the tree enabled networkd too


def test_masked_networkd_is_not_fixed_by_the_profile(ifupdown_root, tmp_path):
    (ifupdown_root / "etc/systemd/system/systemd-networkd.service").symlink_to("/dev/null")
    _lay_tree(ifupdown_root, _profile())
    profile = write_profile(tmp_path / "p.yaml", _profile())
    report = run(Host(ifupdown_root, live=False), only=["stack-not-running"], profile=netharden.load(profile))
    (stack,) = report.checks[0].findings
    assert "is masked" in stack.message and stack.fixed_by_profile is False


def test_networkmanager_host(nm_root):
    """Debian 12 with NetworkManager as its package leaves it: a keyfile for eth0 is an owner,
    unless NetworkManager is told to leave eth0 alone."""
    host = Host(nm_root, live=False)
    assert unit_state(host, "NetworkManager.service") == "enabled"
    assert nm_claims(host, []) == []          # no keyfile: nothing named (no NIC known with --root)
    _write(nm_root, "/etc/NetworkManager/system-connections/uplink.nmconnection",
           "[connection]\nid=uplink\ntype=ethernet\ninterface-name=eth0\n\n[ipv4]\nmethod=auto\n", 0o600)
    (claim,) = nm_claims(Host(nm_root, live=False), [])
    assert (claim.manager, claim.ifname, claim.line) == ("NetworkManager", "eth0", 4)
    assert claim.where().endswith("uplink.nmconnection:4: interface-name=eth0")
    _lay_tree(nm_root, _profile())
    report = run(Host(nm_root, live=False), only=["nic-owned-by-other-manager"])
    (owned,) = report.checks[0].findings
    assert "eth0 is configured by NetworkManager too" in owned.message
    _write(nm_root, "/etc/NetworkManager/conf.d/90-leave.conf", "[keyfile]\nunmanaged-devices=interface-name:eth0\n")
    assert nm_claims(Host(nm_root, live=False), []) == []
    # a live NIC NetworkManager manages without a keyfile: its "Wired connection" auto-default
    from netharden.doctor.nm_config import NMDevice

    (nm_root / "etc/NetworkManager/conf.d/90-leave.conf").unlink()
    (nm_root / "etc/NetworkManager/system-connections/uplink.nmconnection").unlink()
    (auto,) = nm_claims(Host(nm_root, live=False), [NMDevice("eth1", "ethernet", "e1000", "52:54:00:12:34:56")])
    assert auto.by == "auto-default" and "Wired connection" in auto.text


def test_claim_covers():
    assert Claim("ifupdown", "eth0", None, "/x", 1, "iface eth0 inet dhcp").covers("eth0")
    assert not Claim("ifupdown", "eth0", None, "/x", 1, "iface eth0 inet dhcp").covers("eth1")
    by_mac = Claim("NetworkManager", None, "52:54:00:12:34:56", "/x", 3, "mac-address=52:54:00:12:34:56")
    assert by_mac.covers("ens3", "52:54:00:12:34:56") and not by_mac.covers("ens3", None)


# ----------------------------------------------------------------------------- live


@pytest.mark.netns
def test_live_nic_owned_by_ifupdown(doctor_host):
    """``doctor --root R --live`` in a namespace with the NIC: the live eth0 (a veth here: the
    uplink file names it exactly, so no kind exclusion applies) is ifupdown's and netharden's."""
    doctor_host.ip("link", "add", "eth0", "type", "veth", "peer", "name", "nhpeer0")
    doctor_host.write("/etc/network/interfaces", INSTALLER)
    doctor_host.write("/usr/sbin/ifup", "", 0o755)
    (doctor_host.root / "sbin").symlink_to("usr/sbin")
    plan = netharden.plan(netharden.load(_profile(), filename="p.yaml"))
    for f in plan.files:
        if f.path.startswith("/etc/systemd/network/20-netharden-uplink-"):
            doctor_host.write(f.path, f.content)
    code, report = doctor_host.doctor("--only", "nic-owned-by-other-manager")
    (finding,) = [f for c in report["checks"] for f in c["findings"]]
    assert code == 1 and finding["subject"] == "eth0"
    assert finding["message"].startswith("eth0 is configured by ifupdown too: ")
    assert ":12: iface eth0 inet dhcp, brought up by allow-hotplug eth0" in finding["message"]
    # another name: the uplink file does not match it, nothing to report
    doctor_host.write("/etc/network/interfaces", INSTALLER.replace("eth0", "ens9"))
    code, report = doctor_host.doctor("--only", "nic-owned-by-other-manager")
    assert code == 0 and not [f for c in report["checks"] for f in c["findings"]]
