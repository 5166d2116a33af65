"""Tests of the NetworkManager harness itself (netharden/lab/nm.py).

They run the real NetworkManager (1.42 on Debian 12) in throwaway namespaces and need
root. Outside CI they are skipped with a reason when that is impossible; with CI=true
they fail instead (require_or_skip). Each test prints what it measured (pytest -s).
"""

from __future__ import annotations

import os
import socket
import textwrap
import time
from pathlib import Path

import pytest

from netharden.lab import nm
from netharden.lab.cleanup import NETNS_DIR, leftovers
from netharden.lab.nm import LabError, NetworkManagerLab, require_or_skip

pytestmark = pytest.mark.netns

SYSCTLS = ("accept_ra", "addr_gen_mode", "disable_ipv6")
# the kernel's defaults for a new device (accept_ra 1, addr_gen_mode 0 = eui64, IPv6 on)
KERNEL_DEFAULTS = {"accept_ra": "1", "addr_gen_mode": "0", "disable_ipv6": "0"}
TAKEN = ("connecting (getting IP configuration)", "connected", "disconnected")
STARTED = time.monotonic()


@pytest.fixture(autouse=True)
def _harness_and_cleanliness():
    require_or_skip(pytest)
    yield
    assert leftovers(owner=os.getpid()) == []


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """The profile's /etc/NetworkManager: empty conf.d/ and system-connections/."""
    d = tmp_path / "etc-NetworkManager"
    (d / "conf.d").mkdir(parents=True)
    (d / "system-connections").mkdir()
    return d


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(mode)
    return path


def static_keyfile(etc: Path, name: str, ifname: str, address: str, *, mode: int = 0o600, dns: str = "") -> Path:
    return write(
        etc / "system-connections" / f"{name}.nmconnection",
        f"""
        [connection]
        id={name}
        type=ethernet
        interface-name={ifname}

        [ipv4]
        method=manual
        address1={address}
        {f"dns={dns};" if dns else ""}

        [ipv6]
        method=disabled
        """,
        mode,
    )


def sysctls(lab: NetworkManagerLab, ifname: str) -> dict[str, str]:
    return {key: lab.sysctl(ifname, key) for key in SYSCTLS}


def evidence(lab: NetworkManagerLab, text: str) -> None:
    print(f"evidence ({lab.udev_mode}): {text}")


def timings(lab: NetworkManagerLab) -> str:
    return ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in lab.timings.items())


# (1) no configuration: NetworkManager takes what appears --------------------------


def test_without_config_a_new_veth_is_taken(etc: Path) -> None:
    with NetworkManagerLab(etc, start=False) as lab:
        lab.add_veth("veth0", "veth1")  # coldplug: exists before NetworkManager
        before = sysctls(lab, "veth0")
        assert before == KERNEL_DEFAULTS
        lab.start()
        assert lab.udev_mode == "without udev" and lab.udev_in_use() is False
        state = lab.wait_state("veth0", TAKEN)
        after = sysctls(lab, "veth0")
        conn = lab.device_connection("veth0")
        t0 = time.monotonic()
        lab.add_veth("veth2", "veth3")  # hotplug
        hot = lab.wait_state("veth2", TAKEN)
        hot_s = time.monotonic() - t0
        hot_after = sysctls(lab, "veth2")
        evidence(lab, f"coldplug veth0: {state!r}, connection {conn!r}, sysctls {before} -> {after}")
        evidence(lab, f"hotplug veth2: {hot!r} after {hot_s:.3f} s, sysctls {hot_after}; {timings(lab)}")
        assert conn is not None and conn.startswith("Wired connection"), lab.describe()
        assert after["accept_ra"] == "0" and after["addr_gen_mode"] == "1", after
        assert hot_after["accept_ra"] == "0" and hot_after["addr_gen_mode"] == "1", hot_after
        wired = [c for c in lab.connections() if c["device"] == "veth0"]
        assert wired[0]["type"] == "802-3-ethernet"
        # auto-default profiles live in memory, not in the profile's directory
        assert wired[0]["filename"].startswith("/run/NetworkManager/system-connections/")
        assert lab.device_state("lo") == "connected (externally)"
        log = lab.log_text()
        assert "Read config: /etc/NetworkManager/NetworkManager.conf (lib: 00-netharden-lab.conf)" in log
        assert "<info>  [" in log and "<debug> [" in log  # the level markers warnings() reads
        assert lab.warnings(ignore=lab.noise) == [], lab.describe()
        assert lab.errors() == []
        assert lab.timings["nm_ready"] < 2.0, lab.timings


# (2) unmanaged-devices keeps NetworkManager away ---------------------------------


def test_unmanaged_devices_keep_veths_untouched(etc: Path) -> None:
    write(
        etc / "conf.d" / "50-unmanaged.conf",
        """
        [main]
        no-auto-default=*

        [keyfile]
        unmanaged-devices=interface-name:veth*
        """,
    )
    with NetworkManagerLab(etc, start=False) as lab:
        lab.add_veth("veth0", "veth1")
        lab.add_veth("ctl0", "vethctl0")  # managed, but no auto-default profile
        before = {n: sysctls(lab, n) for n in ("veth0", "ctl0")}
        lab.start()
        lab.add_veth("veth2", "veth3")  # hotplug
        for name in ("veth0", "veth1", "veth2", "veth3", "vethctl0"):
            assert lab.wait_state(name, "unmanaged") == "unmanaged"
        ctl = lab.wait_state("ctl0", "disconnected")
        after = {n: sysctls(lab, n) for n in ("veth0", "veth2", "ctl0")}
        evidence(lab, f"veth0/veth2 unmanaged, sysctls {after['veth0']}, {after['veth2']} (before {before['veth0']})")
        evidence(lab, f"ctl0 (no-auto-default only): {ctl!r}, sysctls {before['ctl0']} -> {after['ctl0']}")
        assert after["veth0"] == before["veth0"] == KERNEL_DEFAULTS
        assert after["veth2"] == KERNEL_DEFAULTS
        assert lab.addresses("veth0", "inet6") == []  # NetworkManager did not bring it up
        # the contract's point: no-auto-default=* does NOT keep NetworkManager away
        assert after["ctl0"]["accept_ra"] == "0" and after["ctl0"]["addr_gen_mode"] == "1"
        assert [c["name"] for c in lab.connections()] == ["lo"]
        assert lab.warnings(ignore=lab.noise) == [], lab.describe()


# (3) keyfile permissions and config warnings -----------------------------------------


def test_keyfile_permissions_and_config_warnings(etc: Path) -> None:
    write(
        etc / "conf.d" / "50-lab.conf",
        """
        [main]
        no-auto-default=*
        bogus-key-for-harness=1

        [keyfile]
        unmanaged-devices=interface-name:veth*
        """,
    )
    static_keyfile(etc, "lab-up0", "up0", "192.0.2.10/24", mode=0o600)
    loose = static_keyfile(etc, "lab-up1", "up1", "192.0.2.11/24", mode=0o644)
    with NetworkManagerLab(etc) as lab:
        # copied with its mode: NetworkManager sees the 0644 file as it is
        lab_path = "/etc/NetworkManager/system-connections/lab-up1.nmconnection"
        assert lab.root_path(lab_path).stat().st_mode & 0o777 == 0o644
        t0 = time.monotonic()
        lab.add_veth("up0", "vethup0")
        lab.add_veth("up1", "vethup1")
        assert lab.wait_state("up0", "connected") == "connected"
        up_s = time.monotonic() - t0
        assert lab.device_connection("up0") == "lab-up0"
        assert "192.0.2.10/24" in lab.addresses("up0", "inet")
        assert lab.wait_state("up1", "disconnected") == "disconnected"
        assert "lab-up1" not in [c["name"] for c in lab.connections()]
        warns = lab.warnings(ignore=lab.noise)
        evidence(lab, f"up0 (0600 keyfile) connected after {up_s:.3f} s; warnings: {warns}")
        perm = [w for w in warns if lab_path in w and "File permissions (100644) are insecure" in w]
        assert perm, f"no permission warning in {warns}\n{lab.describe()}"
        assert perm[0].startswith("keyfile: load: ")
        unknown = [w for w in warns if "unknown key 'bogus-key-for-harness'" in w]
        assert unknown == [
            "config: unknown key 'bogus-key-for-harness' in section [main] of file "
            "'/etc/NetworkManager/conf.d/50-lab.conf'"
        ]
        assert lab.errors() == []
        # fixed in the profile: resync + connection reload loads it
        loose.chmod(0o600)
        mark = lab.log_mark()
        lab.resync()
        lab.connection_reload()
        lab.connection_up("lab-up1")
        assert lab.wait_state("up1", "connected") == "connected"
        assert "192.0.2.11/24" in lab.addresses("up1", "inet")
        assert lab.warnings(since=mark, ignore=lab.noise) == []


def test_log_without_level_markers_raises(etc: Path) -> None:
    with NetworkManagerLab(etc, start=False) as lab:
        assert lab.warnings() == []  # no log yet
        lab.log_path.write_text("NetworkManager said something without a marker\n")
        with pytest.raises(LabError, match="no <level>"):
            lab.warnings()


# reload, reapply, restart ---------------------------------------------------------------


def test_reload_conf_takes_a_bridge_dropped_from_unmanaged_devices(etc: Path) -> None:
    """The contract's fact behind netharden-nm-reload-conf: ``nmcli general reload conf``
    re-reads unmanaged-devices at once; a bridge dropped from it is taken (address deleted,
    port detached). Also device reapply of a changed keyfile, and a restart."""
    unmanaged = etc / "conf.d" / "50-unmanaged.conf"
    write(unmanaged, "[main]\nno-auto-default=*\n\n[keyfile]\nunmanaged-devices=interface-name:veth*;interface-name:cni0\n")
    static_keyfile(etc, "lab-up0", "up0", "192.0.2.10/24")
    with NetworkManagerLab(etc) as lab:
        lab.add_veth("up0", "vethup0")
        lab.add_bridge("cni0", up=True)
        lab.ip("addr", "add", "10.88.0.1/16", "dev", "cni0")
        lab.add_veth("vethc0", "vethc1")
        lab.ip("link", "set", "vethc0", "master", "cni0")
        assert lab.wait_state("cni0", "unmanaged") == "unmanaged"
        assert lab.wait_state("up0", "connected") == "connected"
        assert lab.master("vethc0") == "cni0" and lab.master("up0") is None
        assert lab.addresses("cni0", "inet") == ["10.88.0.1/16"]
        # the keyfile changes: reload + reapply gives up0 its new address without a restart
        static_keyfile(etc, "lab-up0", "up0", "192.0.2.20/24")
        write(unmanaged, "[main]\nno-auto-default=*\n\n[keyfile]\nunmanaged-devices=interface-name:veth*\n")
        lab.resync()
        lab.connection_reload()
        lab.device_reapply("up0")
        assert lab.addresses("up0", "inet") == ["192.0.2.20/24"]
        t0 = time.monotonic()
        lab.general_reload("conf")
        state = lab.wait_state("cni0", TAKEN)
        taken_s = time.monotonic() - t0
        evidence(
            lab,
            f"cni0 dropped from unmanaged-devices, general reload conf: {state!r} after {taken_s:.3f} s, "
            f"addresses {lab.addresses('cni0', 'inet')}, vethc0's master {lab.master('vethc0')!r}",
        )
        assert lab.addresses("cni0", "inet") == []
        assert lab.master("vethc0") is None
        lab.restart()
        assert lab.wait_state("up0", "connected") == "connected"
        after_restart = lab.device_state("cni0")
        flags = lab.ip_json("link", "show", "cni0")[0]["flags"]
        evidence(lab, f"after a restart: cni0 {after_restart!r} {flags}; up0 {lab.addresses('up0', 'inet')}; {timings(lab)}")
        noise = (*lab.noise, r"failed to read bridge setting 'vlan_")  # kernel without bridge VLAN support
        assert lab.warnings(ignore=noise) == [], lab.describe()


# (4) with systemd-udevd ----------------------------------------------------------------


def test_udev_mode_rule_unmanages_veths_not_named_eth(etc: Path) -> None:
    require_or_skip(pytest, udev=True)
    with NetworkManagerLab(etc, udev=True, start=False) as lab:
        lab.add_veth("veth5", "veth5p")
        lab.add_veth("eth5", "eth5p")
        before = {n: sysctls(lab, n) for n in ("veth5", "eth5")}
        lab.start()  # udevd, trigger + settle, then NetworkManager
        assert lab.udev_mode == "with systemd-udevd" and lab.udevd_running()
        assert lab.udev_in_use() is True
        assert "rw" in lab.run("findmnt", "-n", "-o", "OPTIONS", "/sys").stdout.split(",")
        lab.add_veth("eth7", "vnet7")  # hotplug: udevd handles it, then NetworkManager
        states = {n: lab.wait_state(n, ("unmanaged", *TAKEN)) for n in ("veth5", "veth5p", "vnet7", "eth5", "eth5p", "eth7")}
        db = {n: lab.root_path(f"/run/udev/data/n{lab.ifindex(n)}").read_text().split() for n in states}
        after = {n: sysctls(lab, n) for n in ("veth5", "eth5")}
        evidence(lab, f"states {states}; {timings(lab)}")
        evidence(lab, f"sysctls veth5 {before['veth5']} -> {after['veth5']}, eth5 {before['eth5']} -> {after['eth5']}")
        evidence(
            lab,
            "udev db: "
            + "; ".join(f"{n}: {' '.join(e for e in db[n] if e.startswith(('E:ID_NET', 'E:NM')))}" for n in db)
            + "; addr_assign_type "
            + ", ".join(f"{n} {lab.addr_assign_type(n)}" for n in db),
        )
        # 85-nm-unmanaged.rules: ID_NET_DRIVER=veth and a name not eth[0-9]* -> NM_UNMANAGED=1
        for name in ("veth5", "veth5p", "vnet7"):
            assert states[name] == "unmanaged", lab.describe()
            assert "E:ID_NET_DRIVER=veth" in db[name] and "E:NM_UNMANAGED=1" in db[name], db[name]
        for name in ("eth5", "eth5p", "eth7"):
            assert states[name] in TAKEN, lab.describe()
            assert "E:ID_NET_DRIVER=veth" in db[name] and "E:NM_UNMANAGED=1" not in db[name], db[name]
        assert after["veth5"] == before["veth5"] == KERNEL_DEFAULTS
        assert after["eth5"]["accept_ra"] == "0" and after["eth5"]["addr_gen_mode"] == "1"
        assert lab.warnings(ignore=lab.noise) == [], lab.describe()


# (5) teardown --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "udev"),
    [(RuntimeError, False), (KeyboardInterrupt, False), (RuntimeError, True)],
    ids=["exception", "ctrl-c", "exception-udev"],
)
def test_teardown_leaves_nothing(etc: Path, exc: type[BaseException], udev: bool) -> None:
    if udev:
        require_or_skip(pytest, udev=True)
    with pytest.raises(exc):
        with NetworkManagerLab(etc, udev=udev) as lab:
            name, stage = lab.name, lab.stage
            assert stage is not None
            lab.add_veth("veth0", "veth1")
            lab.popen("sleep", "300")
            assert leftovers(owner=os.getpid())  # the lab is there
            raise exc("boom")
    assert lab.timings["teardown"] < 5
    print(f"teardown ({lab.udev_mode}) after {exc.__name__}: {lab.timings['teardown'] * 1000:.0f} ms")
    assert not (NETNS_DIR / name).exists()
    assert not stage.exists()
    assert leftovers(owner=os.getpid()) == []


# (6) the host's files -------------------------------------------------------------------


def _host_files() -> dict[str, tuple]:
    out: dict[str, tuple] = {"hostname()": (socket.gethostname(),)}
    for path in ("/etc/resolv.conf", "/etc/hostname"):
        p = Path(path)
        if p.exists():
            st = p.stat()
            out[path] = (p.read_bytes(), st.st_ino, st.st_mtime_ns, st.st_mode)
    out["/etc listing"] = tuple(sorted(os.listdir("/etc")))
    return out


def test_host_resolv_conf_and_hostname_unchanged(etc: Path) -> None:
    # the profile asks for what the lab's base file avoids: NetworkManager writes
    # /etc/resolv.conf itself and may set the hostname
    write(
        etc / "conf.d" / "50-dns.conf",
        """
        [main]
        no-auto-default=*
        dns=default
        rc-manager=file
        hostname-mode=default

        [keyfile]
        unmanaged-devices=interface-name:veth*
        """,
    )
    static_keyfile(etc, "lab-up0", "up0", "192.0.2.10/24", dns="192.0.2.53")
    before = _host_files()
    with NetworkManagerLab(etc) as lab:
        lab.add_veth("up0", "vethup0")
        lab.wait_state("up0", "connected")
        deadline = time.monotonic() + 5
        while "192.0.2.53" not in (inside := lab.run("cat", "/etc/resolv.conf").stdout):
            assert time.monotonic() < deadline, inside + lab.describe()
            time.sleep(0.02)
        lab.nmcli("general", "hostname", "nhlab-harness")  # writes /etc/hostname
        lab_etc_hostname = lab.run("cat", "/etc/hostname").stdout.strip()
        deadline = time.monotonic() + 5  # the kernel's hostname follows the file
        while (lab_hostname := lab.run("hostname").stdout.strip()) != "nhlab-harness":
            assert time.monotonic() < deadline, lab_hostname
            time.sleep(0.02)
        evidence(lab, f"the lab's /etc/resolv.conf: {inside.strip()!r}; hostname {lab_hostname!r}")
        assert inside.startswith("# Generated by NetworkManager")
        assert lab_hostname == lab_etc_hostname == "nhlab-harness"
        assert lab.warnings(ignore=lab.noise) == [], lab.describe()
        assert _host_files() == before
    assert _host_files() == before


# require_or_skip -------------------------------------------------------------------------


def test_require_or_skip_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(nm._CACHE, "nm", "NetworkManager not found (test)")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="NetworkManager harness unavailable in CI"):
        require_or_skip(pytest)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="NetworkManager not found"):
        require_or_skip(pytest)


def test_zz_no_leftovers_after_all() -> None:
    # labs of other live test runs are not ours to judge; everything else must be gone
    deadline = time.monotonic() + 3
    while leftovers(ignore_other_live_owners=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(ignore_other_live_owners=True) == []
    print(f"test_nm_harness.py: {time.monotonic() - STARTED:.1f} s from import to the last test")
