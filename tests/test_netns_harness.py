"""Tests of the netns/networkd harness itself (netharden/lab/netns.py).

They run the real systemd-networkd in throwaway namespaces; they need root.
Outside CI they are skipped with a reason when that is impossible; with
CI=true they fail instead (require_or_skip).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netharden.lab.cleanup import NETNS_DIR, cleanup_stale, leftovers
from netharden.lab.netns import LabCommandError, NetworkdLab, require_or_skip

pytestmark = pytest.mark.netns

HERE = Path(__file__).resolve().parent
NO_V6 = "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(autouse=True)
def _harness_and_cleanliness():
    require_or_skip(pytest)
    yield
    assert leftovers(owner=os.getpid()) == []


@pytest.fixture
def netdir(tmp_path: Path) -> Path:
    d = tmp_path / "network"
    d.mkdir()
    return d


def write(d: Path, name: str, text: str) -> Path:
    """Write an INI-style file, stripping the indentation of every line."""
    p = d / name
    p.write_text("\n".join(line.strip() for line in text.strip().splitlines()) + "\n")
    return p


def host_snapshot() -> dict:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    netif = Path("/run/systemd/netif")
    return {
        "links": sorted(line.split(":")[1].strip() for line in links.splitlines()),
        "netif": sorted(str(p) for p in netif.rglob("*")) if netif.exists() else None,
        "etc_network": sorted(str(p) for p in Path("/etc/systemd/network").rglob("*")),
    }


# (a) ------------------------------------------------------------------------

@pytest.mark.parametrize("coldplug", [False, True], ids=["hotplug", "coldplug"])
def test_static_address_reaches_configured(netdir: Path, coldplug: bool) -> None:
    write(netdir, "10-uplink.network", f"""
        [Match]
        Name=uplink0

        [Network]
        Address=192.0.2.10/24
        {NO_V6}""")
    before = host_snapshot()
    with NetworkdLab(netdir, start=not coldplug) as lab:
        if coldplug:  # links exist before networkd starts
            lab.add_veth("uplink0", "peer0")
            lab.start()
        else:
            lab.add_veth("uplink0", "peer0")
        state = lab.wait_for("uplink0", "configured", timeout=5)
        assert state["NETWORK_FILE"] == "/etc/systemd/network/10-uplink.network"
        assert state["OPER_STATE"] == "routable", lab.describe()
        assert "192.0.2.10/24" in lab.addresses("uplink0", "inet")
        # the peer matches no file: networkd writes a state file saying so
        peer = lab.wait_for("peer0", "unmanaged")
        assert "NETWORK_FILE" not in peer
        assert lab.link_state("lo")["ADMIN_STATE"] == "unmanaged"
        # a clean config logs no warnings (so test (d) is meaningful)
        assert lab.warnings() == [], lab.describe()
        assert lab.errors() == []
        assert "Enumeration completed" in lab.log_text()
        # nothing of this is visible on the host
        assert host_snapshot() == before
    assert host_snapshot() == before


# (b) ------------------------------------------------------------------------

def test_bridge_netdev_with_pinned_mac(netdir: Path) -> None:
    pinned = "02:5e:10:00:00:01"
    write(netdir, "20-br0.netdev", f"""
        [NetDev]
        Name=br0
        Kind=bridge
        MACAddress={pinned}
        """)
    write(netdir, "20-br0.network", f"""
        [Match]
        Name=br0

        [Network]
        Address=198.51.100.1/24
        {NO_V6}""")
    write(netdir, "30-port.network", f"""
        [Match]
        Name=port0

        [Network]
        Bridge=br0
        {NO_V6}""")
    with NetworkdLab(netdir) as lab:
        # networkd creates br0 itself at startup
        lab.add_veth("port0", "peer0")  # a port gives the bridge carrier
        lab.wait_for("port0", "configured")
        state = lab.wait_for("br0", "configured")
        assert state["NETWORK_FILE"].endswith("/20-br0.network")
        assert lab.mac("br0") == pinned
        # adding a port did not make the kernel take over the port's MAC
        assert lab.mac("port0") != pinned
        info = lab.ip_json("-d", "link", "show", "br0")[0]
        assert info["linkinfo"]["info_kind"] == "bridge"
        assert info["address"] == pinned
        port = lab.ip_json("-d", "link", "show", "port0")[0]
        assert port.get("master") == "br0"
        assert "198.51.100.1/24" in lab.addresses("br0")
        assert lab.warnings() == [], lab.describe()


# (c) ------------------------------------------------------------------------

def test_unmanaged_yes_leaves_veth_alone(netdir: Path) -> None:
    write(netdir, "10-unmanaged.network", """
        [Match]
        Name=veth*

        [Link]
        Unmanaged=yes
        """)
    # would manage the veths (and give them an address) if 10- did not win
    write(netdir, "20-would-manage.network", f"""
        [Match]
        Name=veth*

        [Network]
        Address=203.0.113.1/24
        {NO_V6}""")
    write(netdir, "30-control.network", f"""
        [Match]
        Name=ctl0

        [Network]
        Address=192.0.2.1/24
        {NO_V6}""")
    with NetworkdLab(netdir) as lab:
        lab.add_veth("vetha", "vethb", peer_up=False)
        lab.add_veth("ctl0", "ctlpeer")
        lab.wait_for("ctl0", "configured")  # networkd is alive and managing
        for name in ("vetha", "vethb"):
            st = lab.wait_for(name, "unmanaged")
            assert "NETWORK_FILE" not in st, st
            assert lab.addresses(name, "inet") == []
            flags = lab.ip_json("link", "show", name)[0]["flags"]
            assert "UP" not in flags, f"networkd brought unmanaged {name} up: {flags}"
        assert lab.warnings() == [], lab.describe()


# (d) ------------------------------------------------------------------------

def test_bogus_key_is_reported_as_warning_with_file_name(netdir: Path) -> None:
    write(netdir, "10-bogus.network", f"""
        [Match]
        Name=uplink0

        [Network]
        Address=192.0.2.10/24
        BogusKeyForHarness=yes
        {NO_V6}""")
    with NetworkdLab(netdir) as lab:
        warns = lab.warnings()
        hits = [w for w in warns if "10-bogus.network" in w and "BogusKeyForHarness" in w]
        assert hits, f"warning not detected; warnings={warns}\n{lab.describe()}"
        assert hits[0].startswith("/etc/systemd/network/10-bogus.network:")
        # the rest of the file still applies
        lab.add_veth("uplink0", "peer0")
        lab.wait_for("uplink0", "configured")
        assert lab.errors() == []
        # warnings(since=...) only looks at later messages
        assert lab.warnings(since=lab.log_mark()) == []


def test_dropin_dir_becomes_networkd_conf_d(tmp_path: Path, netdir: Path) -> None:
    dropins = tmp_path / "networkd.conf.d"
    dropins.mkdir()
    write(dropins, "50-harness.conf", """
        [Network]
        BogusDropinKey=1
        """)
    with NetworkdLab(netdir, dropins) as lab:
        assert lab.run("cat", "/etc/systemd/networkd.conf.d/50-harness.conf").stdout.startswith("[Network]")
        assert any("/etc/systemd/networkd.conf.d/50-harness.conf:" in w and "BogusDropinKey" in w
                   for w in lab.warnings()), lab.describe()


def test_type_match_without_udev(netdir: Path) -> None:
    """Pins a divergence from a udev host: Type= falls back to the ARPHRD
    name, so Type=bridge never matches and Type=ether matches a bridge."""
    for name, typ in (("brt0", "bridge"), ("brt1", "ether")):
        write(netdir, f"10-{name}.network", f"""
            [Match]
            Name={name}
            Type={typ}

            [Network]
            ConfigureWithoutCarrier=yes
            {NO_V6}""")
    with NetworkdLab(netdir) as lab:
        lab.add_bridge("brt0")
        lab.add_bridge("brt1")
        lab.wait_for("brt1", "configured")
        lab.wait_for("brt0", "unmanaged")


# reload / run ----------------------------------------------------------------

@pytest.mark.parametrize("dbus", [True, False], ids=["networkctl-reload", "restart"])
def test_reload_picks_up_changed_files(netdir: Path, dbus: bool) -> None:
    write(netdir, "10-a.network", f"""
        [Match]
        Name=uplink0

        [Network]
        Address=192.0.2.10/24
        {NO_V6}""")
    with NetworkdLab(netdir, dbus=dbus) as lab:
        assert lab.dbus_enabled is dbus
        lab.add_veth("uplink0", "peer0")
        lab.wait_for("uplink0", "configured")
        (netdir / "10-a.network").unlink()
        write(netdir, "20-b.network", f"""
            [Match]
            Name=uplink0

            [Network]
            Address=192.0.2.20/24
            Bogus2=1
            {NO_V6}""")
        mark = lab.log_mark()
        lab.reload()
        deadline = time.monotonic() + 5
        while lab.link_state("uplink0").get("NETWORK_FILE", "").endswith("10-a.network"):
            assert time.monotonic() < deadline, lab.describe()
            time.sleep(0.02)
        st = lab.wait_for("uplink0", "configured")
        assert st["NETWORK_FILE"] == "/etc/systemd/network/20-b.network"
        assert "192.0.2.20/24" in lab.addresses("uplink0")
        assert any("20-b.network" in w and "Bogus2" in w for w in lab.warnings(since=mark))


def test_run_raises_with_stderr(netdir: Path) -> None:
    with NetworkdLab(netdir) as lab:
        with pytest.raises(LabCommandError) as ei:
            lab.ip("link", "show", "doesnotexist0")
        assert "doesnotexist0" in str(ei.value)
        assert ei.value.returncode != 0
        assert lab.run("ip", "link", "show", "doesnotexist0", check=False).returncode != 0
        # /sys is read-only and belongs to the lab's netns
        assert "ro" in lab.run("findmnt", "-n", "-o", "OPTIONS", "/sys").stdout.split(",")
        assert lab.link_names() == ["lo"]
        with pytest.raises(LookupError):
            lab.link_state("doesnotexist0")


# (e) cleanup --------------------------------------------------------------------

@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_cleanup_on_exception(netdir: Path, exc: type[BaseException]) -> None:
    with pytest.raises(exc):
        with NetworkdLab(netdir) as lab:
            name = lab.name
            lab.add_veth("uplink0", "peer0")
            lab.popen("sleep", "300")
            raise exc("boom")
    assert not (NETNS_DIR / name).exists()
    assert leftovers(owner=os.getpid()) == []


def test_cleanup_when_owner_is_sigkilled(netdir: Path) -> None:
    """PR_SET_PDEATHSIG + --kill-child: a SIGKILLed owner leaves no process;
    cleanup_stale() removes the orphaned netns name and staging dir."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(HERE)!r})
        from netharden.lab.netns import NetworkdLab
        lab = NetworkdLab({str(netdir)!r}).__enter__()
        lab.add_veth("uplink0", "peer0")
        print(lab.name, flush=True)
        time.sleep(60)
        """)
    # Become a child subreaper so the killed owner's children (unshare,
    # nsenter) are re-parented to us and can be reaped: PID 1 of some
    # sandboxes never reaps orphans, which would leave zombies around.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        name = child.stdout.readline().strip()
        assert name.startswith(f"nhlab-{child.pid}-")
        assert leftovers(owner=child.pid)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        try:
            # reap whatever got re-parented to us (holder, nsenters, the PID-ns
            # init) until nothing of the dead lab is left
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for pid in _zombie_children():
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                if not any(i.startswith(("process", "zombie")) for i in leftovers(owner=child.pid)):
                    break
                time.sleep(0.02)
        finally:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    deadline = time.monotonic() + 5
    while any(item.startswith(("process", "zombie")) for item in leftovers(owner=child.pid)):
        assert time.monotonic() < deadline, leftovers(owner=child.pid)
        time.sleep(0.05)
    removed = cleanup_stale()
    # (a concurrent test run's cleanup_stale() may have been quicker)
    assert f"netns {name}" in removed or not (NETNS_DIR / name).exists()
    assert leftovers(owner=child.pid) == []


def _zombie_children() -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rfind(")") + 2:].split()[:2]
        if state == "Z" and int(ppid) == os.getpid():
            out.append(int(p.name))
    return out


def test_zz_no_leftovers_after_all() -> None:
    # Labs of other live test runs (xdist workers, a parallel session) are
    # not ours to judge; everything else - ours or stale - must be gone.  A
    # parallel run of this file may be between SIGKILLing its child and
    # cleaning up after it, hence a short grace period.
    deadline = time.monotonic() + 3
    while leftovers(ignore_other_live_owners=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(ignore_other_live_owners=True) == []
