"""systemd-networkd.service is enabled by the Plan of every networkd-stack profile, and the
links the Plan writes for it are exactly what the real ``systemctl enable`` makes.

The real part: this machine's systemctl (Debian 12: systemd 252) and its own unit files,
copied into a scratch root at the target's vendor unit directory (``/lib/systemd/system``
on Debian 12, ``/usr/lib/systemd/system`` elsewhere): ``systemctl --root=DIR enable``
works without a running systemd.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import netharden
from helpers import debian_rootfs, need, require
from netharden.plan_model import Link, Unit
from netharden.renderers.stack_service import INSTALL, NETWORKD, enablement_links, networkd_enabled

HOST_UNITS = Path("/lib/systemd/system")


def _profile(os_name: str, systemd: int | None = None, stack: str | None = None) -> dict:
    platform: dict = {"os": os_name}
    if systemd is not None:
        platform["systemd"] = systemd
    if stack is not None:
        platform["stack"] = stack
    return {"apiVersion": "netharden/v1", "kind": "HostProfile", "metadata": {"name": "t"}, "platform": platform}


def _plan(os_name: str, systemd: int | None = None, stack: str | None = None):
    return netharden.plan(netharden.load(_profile(os_name, systemd, stack), filename="t.yaml"))


def _host_systemd() -> int:
    systemctl = need("systemctl", "Debian package systemd")
    out = subprocess.run([systemctl, "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.match(r"systemd (\d+)", out).group(1))


def _symlinks(root: Path) -> dict[str, str]:
    return {"/" + str(p.relative_to(root)): os.readlink(p) for p in root.rglob("*") if p.is_symlink()}


@pytest.mark.parametrize("vendor", ["/lib/systemd/system", "/usr/lib/systemd/system"])
def test_links_are_what_systemctl_enable_makes(tmp_path, vendor):
    """The real systemctl of this machine, on a root whose vendor units are this machine's
    networkd units, makes exactly the Plan's links (and nothing else)."""
    systemctl = need("systemctl", "Debian package systemd")
    version = _host_systemd()
    units = sorted(HOST_UNITS.glob("systemd-network*")) + [HOST_UNITS / t for t in
                                                           ("multi-user.target", "sockets.target",
                                                            "network-online.target", "sysinit.target")]
    require(None if (HOST_UNITS / NETWORKD).exists() else f"{HOST_UNITS / NETWORKD} is missing (systemd-networkd)")
    root = tmp_path / "root"
    (root / vendor.lstrip("/")).mkdir(parents=True)
    (root / "etc").mkdir()
    for unit in units:
        shutil.copy(unit, root / vendor.lstrip("/") / unit.name)
    subprocess.run([systemctl, f"--root={root}", "enable", NETWORKD], check=True, capture_output=True)
    made = _symlinks(root)
    os_name = "debian" if vendor == "/lib/systemd/system" else "flatcar"
    expected = {x.path: x.target for x in enablement_links(os_name, version)}
    assert made == expected
    assert len(made) >= 4  # the unit, its alias, its socket, wait-online: a test that can fail


def test_links_of_debian_11_units_are_what_systemctl_enable_makes(tmp_path):
    """Debian 11's own unit files (systemd 247, debootstrapped): the real systemctl enable over
    them makes exactly the Plan's links for a systemd-247 Debian profile (no generator yet)."""
    systemctl = need("systemctl", "Debian package systemd")
    root = debian_rootfs("11", tmp_path / "root", "./usr/lib/systemd/system", "./lib", "./etc/systemd/system")
    for link in (root / "etc/systemd/system").rglob("*"):   # start from a disabled networkd
        if link.is_symlink() and ("networkd" in link.name or "network1" in link.name
                                  or "network-generator" in link.name):
            link.unlink()
    before = _symlinks(root / "etc")
    subprocess.run([systemctl, f"--root={root}", "enable", NETWORKD], check=True, capture_output=True)
    made = {"/etc" + path: target for path, target in _symlinks(root / "etc").items() if path not in before}
    assert made == {x.path: x.target for x in enablement_links("debian", 247)}
    assert not [p for p in made if "generator" in p]


def test_version_table():
    """Links added by later versions only appear from those versions; every version has the
    unit's own WantedBy= and Alias=."""
    old, new = enablement_links("debian", 237), enablement_links("debian", 258)
    paths = {x.path.rsplit("/", 1)[-1] for x in old}
    assert paths == {NETWORKD, "dbus-org.freedesktop.network1.service", "systemd-networkd.socket",
                     "systemd-networkd-wait-online.service"}
    assert len(new) == len(INSTALL)
    assert not [x for x in enablement_links("debian", 247) if "generator" in x.path]
    assert {x.target.rsplit("/", 2)[0] for x in old} == {"/lib/systemd"}
    assert {x.target.rsplit("/", 2)[0] for x in enablement_links("debian", 257)} == {"/usr/lib/systemd"}
    assert "/etc/systemd/system/sockets.target.wants/systemd-networkd-varlink.socket" in {x.path for x in new}


@pytest.mark.parametrize("os_name", ["debian", "flatcar", "coreos", "generic", "ubuntu"])
def test_networkd_stack_enables_networkd(os_name):
    plan = _plan(os_name, stack="networkd")
    (unit,) = [u for u in plan.units if u.name == NETWORKD]
    assert unit.enabled is True and not unit.masked and unit.wanted_by == ()
    links = {x.path for x in plan.links}
    assert {x.path for x in enablement_links(os_name, plan.systemd)} <= links


def test_no_networkd_files_no_enablement():
    """A profile that writes no networkd file does not enable networkd (no inert enablement)."""
    profile = _profile("debian")
    profile.update(unmanaged={"presets": []}, networkd={"mask": [], "quarantine": [], "foreign_routes": "manage"})
    plan = netharden.plan(netharden.load(profile, filename="t.yaml"))
    assert not [p for p in plan.paths() if p.startswith(("/etc/systemd/network/", "/etc/systemd/networkd.conf"))]
    assert NETWORKD not in {u.name for u in plan.units}


def test_networkmanager_stack_does_not_enable_networkd():
    plan = _plan("fedora")
    assert NETWORKD not in {u.name for u in plan.units}
    assert not [x for x in plan.links if NETWORKD in x.target]


def test_entries_are_shared_between_hosts():
    """A part of the renderer: the same inputs give the very same entries (memoized)."""
    assert networkd_enabled("debian", 252) is networkd_enabled("debian", 252)
    unit, *links, start = networkd_enabled("debian", 252)
    assert isinstance(unit, Unit) and all(isinstance(x, Link) for x in links)
    assert start.ensure_started and start.unit == NETWORKD and not start.disruptive


def test_every_format_enables_networkd(tmp_path):
    """tree: the links; cloud-config: ``systemctl enable``; Ignition and Butane: ``enabled: true``
    on a unit without contents; coreos-cloudinit: ``enable: true`` (its links are left out:
    coreos-cloudinit cannot make symlinks, its EnableUnitFiles makes them); plan: the Unit."""
    import json

    import yaml

    plan = netharden.plan(netharden.load(Path(__file__).parent.parent / "examples" / "incident-1-runtime-catchall.yaml"))
    links = enablement_links("flatcar", plan.systemd)
    tree = tmp_path / "tree"
    netharden.emit(plan, "tree", tree)
    for x in links:
        assert os.readlink(tree / x.path.lstrip("/")) == x.target
    cc = yaml.safe_load(netharden.emit(plan, "cloud-config"))
    assert ["systemctl", "enable", *sorted(u.name for u in plan.units if u.enabled)] in cc["runcmd"]
    assert NETWORKD in next(c for c in cc["runcmd"] if c[:2] == ["systemctl", "enable"])
    ign = json.loads(netharden.emit(plan, "ignition"))
    assert {"name": NETWORKD, "enabled": True} in ign["systemd"]["units"]
    assert {x.path for x in links} <= {x["path"] for x in ign["storage"]["links"]}
    but = yaml.safe_load(netharden.emit(plan, "butane"))
    assert {"name": NETWORKD, "enabled": True} in but["systemd"]["units"]
    coreos = yaml.safe_load(netharden.emit(plan, "coreos-cloud-config"))
    assert {"name": NETWORKD, "runtime": False, "enable": True} in coreos["coreos"]["units"]
    doc = json.loads(netharden.emit(plan, "plan"))
    assert [u for u in doc["units"] if u["name"] == NETWORKD][0]["enabled"] is True
