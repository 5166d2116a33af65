"""Run the real NetworkManager in a throwaway network namespace ("one lab, two stacks").

The NetworkManager counterpart of :class:`~netharden.lab.netns.NetworkdLab`: it starts the
distribution's own ``/usr/sbin/NetworkManager`` (verified with 1.42.4, Debian 12) over a
directory that becomes ``/etc/NetworkManager``, isolated from the host, lets tests create
veth/bridge devices and reads what NetworkManager made of them (``nmcli``, sysctls, sysfs).
The namespace, holder, private dbus, commands and teardown are
:class:`~netharden.lab.nsbase.NamespaceLab`'s, the same as the networkd lab's.

Usage::

    from netharden.lab.nm import NetworkManagerLab, require_or_skip

    def test_x(tmp_path):
        require_or_skip(pytest)
        (tmp_path / "conf.d").mkdir()
        (tmp_path / "conf.d" / "50-x.conf").write_text("[keyfile]\\nunmanaged-devices=interface-name:veth*\\n")
        with NetworkManagerLab(tmp_path) as lab:
            lab.add_veth("veth0", "veth1")
            assert lab.wait_state("veth0", "unmanaged") == "unmanaged"
            assert lab.warnings(ignore=lab.noise) == []

Layout
------
The holder (``holder.sh``) runs under ``unshare --mount --pid --uts``: NetworkManager gets
its own mount, UTS (hostname) and PID namespace (with its own /proc), and in it:

* ``/etc/NetworkManager``: a copy of *etc_dir* in the staging dir (file modes AND owners
  kept, so a 0644 keyfile stays 0644 and NetworkManager ignores it, as on a host);
  :meth:`NetworkManagerLab.resync` copies it again;
* ``/var/lib/NetworkManager``: a scratch dir (state, leases, secret_key; kept across
  :meth:`~NetworkManagerLab.restart`, like a host's);
* ``/usr/lib/NetworkManager/conf.d``: a staged dir holding only the lab's base file
  ``00-netharden-lab.conf`` (:data:`BASE_CONF`: ``[main] plugins=keyfile dns=none
  rc-manager=unmanaged hostname-mode=none systemd-resolved=false auth-polkit=false``,
  ``[logging] backend=journal``). NetworkManager reads /usr/lib/NetworkManager/conf.d
  FIRST, so the profile's NetworkManager.conf and conf.d/*.conf override every key of it
  (measured: ``Read config: /etc/NetworkManager/NetworkManager.conf (lib:
  00-netharden-lab.conf) (etc: 50-x.conf)``); a same-named file in the profile's conf.d
  would shadow it. The host's safety does not rest on this file but on the mounts;
  ``/usr/lib/NetworkManager/system-connections`` is an empty read-only tmpfs;
* ``/etc`` itself: a writable overlay (upper and work dir on the lab's /run tmpfs), below
  the bind mounts above. A private mount namespace does not protect the host's FILES:
  NetworkManager told to write /etc/resolv.conf (``rc-manager=file``) or /etc/hostname
  (``nmcli general hostname``) would change the host's. With a bind mount of a copy over
  the file it fails instead (measured: ``dns-mgr: could not commit DNS changes: Failed to
  rename file "/etc/resolv.conf.N186Y3" to "/etc/resolv.conf": g_rename() failed: Device
  or resource busy``, after creating that temporary file in the HOST's /etc); with the
  overlay the write succeeds inside the lab, as on a host, and the host's /etc stays as
  it was (a file mounted over the host's /etc/resolv.conf, /etc/hostname or /etc/hosts,
  as docker does, is copied into the overlay first: an overlay shows what lies under it);
* ``/run``: an empty tmpfs (no journal socket, no host dbus, /run/NetworkManager is the
  lab's); a private ``dbus-daemon`` on /run/dbus/system_bus_socket (NetworkManager needs
  it; nmcli talks to it; ModemManager, polkit, nm-dispatcher, nm-priv-helper are not
  activatable there);
* without udev (default): the sysfs of the netns, read-only. NetworkManager then runs
  without udev (its log: ``platform-linux: create (ignore netns, initial netns, no udev,
  no tc-cache)``; :meth:`~NetworkManagerLab.udev_in_use`). With a read-write /sys and no
  udevd it says ``use udev`` and waits for udev to initialise each device (measured:
  every device, lo included, stays "unmanaged", ``not-init`` in the platform log).
* ``udev=True``: read-write sysfs, a private /dev (tmpfs with null, zero, full, random,
  urandom, tty), and a real ``/lib/systemd/systemd-udevd`` (log: STAGE/udevd.log) with
  only the network rules of /usr/lib/udev/rules.d (``*net*.rules``, ``*-nm-*.rules``:
  80-net-setup-link, 84-nm-drivers, 85-nm-unmanaged, ...; /etc/udev/rules.d hidden):
  the lab's udevd also receives the host's untagged uevents (block, input, ...) and must
  not act on them. Before NetworkManager starts: ``udevadm trigger --action=add
  --subsystem-match=net`` + ``udevadm settle``. NetworkManager logs ``use udev``.
  :attr:`~NetworkManagerLab.udev_mode` says which ran: "without udev" / "with
  systemd-udevd".

NetworkManager runs as ``NetworkManager --debug --log-level=DEBUG`` (stdout+stderr ->
STAGE/NetworkManager.log): ``--no-daemon`` alone writes NOTHING to stderr (measured: an
empty log; it logs to syslog/journal only), ``--debug`` = no daemon + stderr. It is ready
when ``nmcli -t general status`` answers (measured 0.03-0.06 s after the spawn; the whole
lab up 0.1 s, teardown 0.08 s). "startup complete" is not waited for. Commands
(:meth:`~NetworkManagerLab.run`, nmcli) run inside the lab's PID namespace too: an nmcli
in the host's PID namespace reaches the private bus with PID 0 and NetworkManager logs
``nm-CRITICAL **: ... ((src/core/nm-dbus-manager.c:1631)): assertion '<dropped>' failed``
for each call.

Log and warnings
----------------
Every line NetworkManager writes is ``<LEVEL> [SECONDS.FRACTION] MESSAGE`` with LEVEL one
of trace, debug, info, warn, error, padded to 7 characters::

    <info>  [1796180225.4264] Read config: /etc/NetworkManager/NetworkManager.conf (lib: 00-netharden-lab.conf)
    <warn>  [1796180225.4265] config: unknown key 'bogus-key' in section [main] of file '/etc/NetworkManager/conf.d/50-x.conf'
    <warn>  [1796180225.4402] keyfile: load: "/etc/NetworkManager/system-connections/x.nmconnection": failed to load connection: File permissions (100644) are insecure

:meth:`~NetworkManagerLab.warnings` returns the MESSAGE of ``<warn>``/``<error>`` lines (a
line without a marker, e.g. a GLib ``nm-CRITICAL **`` or an nsenter error, counts as an
error); a non-empty log without any marker raises LabError. ``ignore=`` drops messages
by regex: :attr:`~NetworkManagerLab.noise` = :data:`KNOWN_NOISE` (``modem-manager: error
poking ModemManager: ... ServiceUnknown``, every run) + :data:`RO_SYSFS_NOISE` without
udev (bridge port options are written through sysfs: ``sysctl: failed to openat
'net:/sys/class/net/port0/brport/priority': (30) Read-only file system``).
An unknown key in a keyfile CONNECTION (e.g. ``[ethernet] bogus=1``) is not logged at
all, not even at TRACE (1.42.4): only conf files' unknown keys are.

Measured behaviour (1.42.4; tests/test_nm_harness.py prints the evidence)
-----------------------------------------------------------------------
* No config: a new veth pair is taken within ~0.03 s: "Wired connection 1/2" (in-memory,
  /run/NetworkManager/system-connections), state "connecting (getting IP
  configuration)" (DHCP never answers), accept_ra 1 -> 0, addr_gen_mode 0 -> 1
  (NetworkManager generates the IPv6LL itself), disable_ipv6 toggled 0 -> 1 -> 0. ``lo``
  is "connected (externally)" with an in-memory "lo" connection.
* ``[keyfile] unmanaged-devices=interface-name:veth*``: "unmanaged", sysctls untouched.
  ``[main] no-auto-default=*`` alone: "disconnected", no Wired connection, but accept_ra
  and addr_gen_mode are set all the same.
* Dropping an unmanaged bridge from the list + ``nmcli general reload conf``: taken at
  within ~0.03 s (its address deleted, its port detached: "disconnected"); after a
  restart that bridge (UP, no address, not created by NetworkManager) is "unmanaged"
  again. A changed keyfile reaches an active device with connection reload + device
  reapply, without a restart.
* With udev: 85-nm-unmanaged.rules sets NM_UNMANAGED=1 (udev db /run/udev/data/nIFINDEX)
  on a veth NOT named eth[0-9]* (ID_NET_DRIVER=veth comes from net_setup_link): veth5 is
  "unmanaged", sysctls untouched, while eth5 and eth5p are taken. The host's
  99-default.link (MACAddressPolicy=persistent) gives every veth a stable MAC
  (addr_assign_type 3 = set).

Teardown, cleanup, gotchas
--------------------------
As for every lab (nsbase.py): SIGTERM NetworkManager, then udevd, dbus; SIGKILL the
holder; ``ip netns delete``; staging dir removed; ``cleanup.leftovers()`` is empty after
close, also after an exception or KeyboardInterrupt in the with-block. Every process
carries ``NETHARDEN_LAB=<netns name>``. NetworkManager must never run on the host: it
only ever starts through :meth:`NamespaceLab._spawn_in_ns`. A SIGTERMed NetworkManager
leaves its devices configured (so does a real one). PDEATHSIG fires when the thread that
created the lab exits: create and use a lab from one long-lived thread.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from . import nsbase
from .cleanup import ENV_MARKER, NS_PREFIX, leftovers
from .nsbase import LabCommandError, LabError, NamespaceLab

__all__ = [
    "BASE_CONF",
    "BASE_CONF_NAME",
    "KNOWN_NOISE",
    "NS_PREFIX",
    "RO_SYSFS_NOISE",
    "LabCommandError",
    "LabError",
    "NetworkManagerLab",
    "available",
    "leftovers",
    "nm_binary",
    "require_or_skip",
    "udev_available",
]

_NM_CANDIDATES = ("/usr/sbin/NetworkManager", "/sbin/NetworkManager")
_UDEVD_CANDIDATES = ("/lib/systemd/systemd-udevd", "/usr/lib/systemd/systemd-udevd")
# mount targets: they must exist on the host (the lab creates nothing outside its mounts)
_NM_ETC = "/etc/NetworkManager"
_NM_STATE = "/var/lib/NetworkManager"
_NM_LIB_CONF = "/usr/lib/NetworkManager/conf.d"
_NM_LIB_CONNECTIONS = "/usr/lib/NetworkManager/system-connections"
_UDEV_RULES = "/usr/lib/udev/rules.d"
_ETC_MOUNTED = ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts")
_UDEV_HIDE = ("/etc/udev/rules.d", "/usr/local/lib/udev/rules.d")
# the udev rules the lab's udevd gets: only those of network devices (module docstring, udev=True)
_UDEV_RULE_GLOBS = ("*net*.rules", "*-nm-*.rules")

BASE_CONF_NAME = "00-netharden-lab.conf"
BASE_CONF = """\
# netharden lab (netharden/lab/nm.py): NetworkManager must not touch the host.
# This directory (/usr/lib/NetworkManager/conf.d) is read FIRST: every file of the
# profile (/etc/NetworkManager/NetworkManager.conf, conf.d/*.conf) overrides these keys.
[main]
plugins=keyfile
dns=none
rc-manager=unmanaged
hostname-mode=none
systemd-resolved=false
auth-polkit=false

[logging]
backend=journal
"""

# <level> [seconds.fraction] message; the level is padded to 7 characters
_LINE_RE = re.compile(r"^<(trace|debug|info|warn|error)>\s+\[(\d+\.\d+)\] ?(.*)$")
_SEVERE = ("warn", "error")

#: warnings that come from the lab's bare private bus, not from the configuration
#: (pass as ``ignore=`` to :meth:`NetworkManagerLab.warnings`)
KNOWN_NOISE = (
    r"^modem-manager: error poking ModemManager: .*ServiceUnknown",
    # a kernel without CONFIG_BRIDGE_VLAN_FILTERING (this project's test machines) has no
    # /sys/class/net/BR/bridge/vlan_*: NetworkManager warns for every bridge it manages
    r"failed to read bridge setting 'vlan_(protocol|stats_enabled)'",
)
#: warnings that only the read-only /sys of the "without udev" mode causes (bridge port
#: options are written through sysfs)
RO_SYSFS_NOISE = (r"Read-only file system",)


# ---------------------------------------------------------------------------
# availability


def nm_binary() -> str | None:
    for cand in _NM_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return None


def nm_version() -> str:
    """The installed NetworkManager's version ("1.42.4"; "" when unknown)."""
    binary = nm_binary()
    if binary is None:
        return ""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    return out.split()[0] if out else ""


def _udevd_binary() -> str | None:
    for cand in _UDEVD_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return None


_CACHE: dict[str, str | None] = {}


def available() -> str | None:
    """None when the NetworkManager lab can run here (without udev), else why not."""
    if "nm" not in _CACHE:
        _CACHE["nm"] = _probe()
    return _CACHE["nm"]


def udev_available() -> str | None:
    """None when the lab can also run with ``udev=True``, else why not."""
    if "udev" not in _CACHE:
        reason = available()
        if reason is None and _udevd_binary() is None:
            reason = "systemd-udevd not found (" + ", ".join(_UDEVD_CANDIDATES) + ")"
        if reason is None and shutil.which("udevadm") is None:
            reason = "'udevadm' not found in PATH"
        if reason is None and not os.path.isdir(_UDEV_RULES):
            reason = f"{_UDEV_RULES} does not exist"
        _CACHE["udev"] = reason
    return _CACHE["udev"]


def _probe() -> str | None:
    reason = nsbase.probe_host("NetworkManager")
    if reason:
        return reason
    if nm_binary() is None:
        return "NetworkManager not found (" + ", ".join(_NM_CANDIDATES) + "; Debian: apt-get install network-manager)"
    reason = nsbase.probe_tools(("nmcli", "dbus-daemon"))
    if reason:
        return reason
    for d in (_NM_ETC, _NM_STATE, _NM_LIB_CONF, _NM_LIB_CONNECTIONS):
        if not os.path.isdir(d):
            return f"{d} does not exist (the lab mounts over it; it comes with the network-manager package)"
    return nsbase.probe_unshare()


def require_or_skip(pytest_module, *, udev: bool = False, allow_module_level: bool = False) -> None:
    """Skip the calling test when the NetworkManager lab (``udev``: with systemd-udevd)
    cannot run - but FAIL when the environment variable CI is "true"."""
    reason = udev_available() if udev else available()
    what = "NetworkManager+udev" if udev else "NetworkManager"
    nsbase.skip_or_fail(pytest_module, reason, what, allow_module_level=allow_module_level)


# ---------------------------------------------------------------------------
# nmcli -t output


def split_terse(line: str) -> list[str]:
    """Fields of one line of ``nmcli -t`` output (``:`` separates, ``\\`` escapes): the doctor's reader."""
    from ..doctor.nm_config import split_terse as split

    return split(line)


# ---------------------------------------------------------------------------
# the lab


class NetworkManagerLab(NamespaceLab):
    """The real NetworkManager in a private network+mount+UTS+PID namespace.

    Parameters
    ----------
    etc_dir: its content becomes /etc/NetworkManager (NetworkManager.conf, conf.d/,
        system-connections/); copied with file modes and owners; None: empty.
    udev: False (default): read-only sysfs, NM runs "without udev". True: read-write
        sysfs of the netns and a real systemd-udevd in the lab ("with systemd-udevd").
    start: start NetworkManager on __enter__ (False: call start() yourself, e.g. after
        creating links, to test coldplug).
    workdir: staging/log directory to use and keep (default: temp dir, removed).
    ready_timeout: seconds to wait for nmcli to get an answer.
    log_level: NetworkManager's --log-level (TRACE, DEBUG, INFO, ...).
    lib_dir: optional, stands for /usr/lib/NetworkManager: its conf.d files are read
        with the lab's base file (which sorts first), its system-connections are shown
        instead of an empty directory (the doctor's differential tests use both).
    run_dir: optional, its content is copied into /run/NetworkManager before
        NetworkManager starts (runtime conf.d and system-connections).
    """

    DAEMON = "NetworkManager"
    LOG_NAME = "NetworkManager.log"
    UNSHARE_UTS = True
    # nmcli in the host's PID namespace: dbus-daemon reports its PID as 0 and NM logs
    # "nm-CRITICAL **: ((src/core/nm-dbus-manager.c:1631)): assertion '<dropped>' failed"
    RUN_IN_PID_NS = True

    def __init__(
        self,
        etc_dir: Path | str | None,
        *,
        udev: bool = False,
        start: bool = True,
        workdir: Path | str | None = None,
        ready_timeout: float = 10.0,
        log_level: str = "DEBUG",
        lib_dir: Path | str | None = None,
        run_dir: Path | str | None = None,
    ) -> None:
        super().__init__(start=start, workdir=workdir, ready_timeout=ready_timeout)
        self.etc_dir = Path(etc_dir).resolve() if etc_dir is not None else None
        self.lib_dir = Path(lib_dir).resolve() if lib_dir is not None else None
        self.run_dir = Path(run_dir).resolve() if run_dir is not None else None
        self.udev = udev
        self.log_level = log_level
        self._udevd: subprocess.Popen | None = None
        self._udevd_pid: int | None = None
        if self.etc_dir is not None and not self.etc_dir.is_dir():
            raise ValueError(f"etc_dir {self.etc_dir} is not a directory")

    @property
    def noise(self) -> tuple[str, ...]:
        """The warnings this lab's set-up itself causes: :data:`KNOWN_NOISE`, plus
        :data:`RO_SYSFS_NOISE` without udev (``warnings(ignore=lab.noise)``)."""
        return KNOWN_NOISE + (() if self.udev else RO_SYSFS_NOISE)

    @property
    def udev_mode(self) -> str:
        """How this lab runs NetworkManager: "without udev" or "with systemd-udevd"."""
        return "with systemd-udevd" if self.udev else "without udev"

    # -- setup (the holder and the teardown are NamespaceLab's) ----------------

    def _unavailable(self) -> str | None:
        return udev_available() if self.udev else available()

    def _prepare_stage(self) -> None:
        assert self.stage is not None
        lib = self.stage / "lib-conf.d"
        given = self.lib_dir / "conf.d" if self.lib_dir is not None and (self.lib_dir / "conf.d").is_dir() else None
        nsbase.copy_tree(given, lib, keep_owner=True)
        (lib / BASE_CONF_NAME).write_text(BASE_CONF)
        (lib / BASE_CONF_NAME).chmod(0o644)
        if self.lib_dir is not None and (self.lib_dir / "system-connections").is_dir():
            nsbase.copy_tree(self.lib_dir / "system-connections", self.stage / "lib-connections", keep_owner=True)
        state = self.stage / "var-lib-NetworkManager"
        state.mkdir(mode=0o755, exist_ok=True)
        if self.udev:
            rules = self.stage / "udev-rules.d"
            nsbase.copy_tree(None, rules)
            for pattern in _UDEV_RULE_GLOBS:
                for src in sorted(Path(_UDEV_RULES).glob(pattern)):
                    shutil.copy2(src, rules / src.name)
        self.resync()

    def _holder_env(self) -> dict[str, str]:
        assert self.stage is not None
        binds = [
            f"{_NM_ETC}={self.stage / 'etc-NetworkManager'}",
            f"{_NM_STATE}={self.stage / 'var-lib-NetworkManager'}",
            f"{_NM_LIB_CONF}={self.stage / 'lib-conf.d'}",
        ]
        hide = []
        if (self.stage / "lib-connections").is_dir():
            binds.append(f"{_NM_LIB_CONNECTIONS}={self.stage / 'lib-connections'}")
        else:
            hide.append(_NM_LIB_CONNECTIONS)
        env = {
            "NHTEST_SYSFS": "ro",
            "NHTEST_PROC": "private",
            "NHTEST_RUN_DIRS": "/run/dbus /run/NetworkManager",
            "NHTEST_OVERLAY": "/etc",
        }
        if self.udev:
            binds.append(f"{_UDEV_RULES}={self.stage / 'udev-rules.d'}")
            hide += [d for d in _UDEV_HIDE if os.path.isdir(d) and os.path.realpath(d) != _UDEV_RULES]
            env.update(NHTEST_SYSFS="rw", NHTEST_DEV="private")
        env.update(NHTEST_BINDS="\n".join(binds), NHTEST_HIDE=" ".join(hide))
        return env

    def _holder_ready(self) -> None:
        # The overlay on /etc shows what lies UNDER a file mounted over the host's
        # /etc/resolv.conf (docker does that): give the lab the content the host sees.
        for name in _ETC_MOUNTED:
            if os.path.ismount(name) and os.path.isfile(name):
                shutil.copyfile(name, self.root_path(name))
        if self.run_dir is not None:
            shutil.copytree(self.run_dir, self.root_path("/run/NetworkManager"), symlinks=True, dirs_exist_ok=True)

    def resync(self, etc_dir: Path | str | None = None) -> None:
        """Copy etc_dir (default: the constructor's) again over the lab's
        /etc/NetworkManager. NetworkManager is not told: follow with
        :meth:`connection_reload`, :meth:`general_reload` or :meth:`restart`."""
        assert self.stage is not None
        if etc_dir is not None:
            self.etc_dir = Path(etc_dir).resolve()
        nsbase.copy_tree(self.etc_dir, self.stage / "etc-NetworkManager", keep_owner=True)

    def _daemon_env(self) -> dict[str, str]:
        return {
            "PATH": nsbase.SAFE_PATH,
            "LANG": "C.UTF-8",
            "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/run/dbus/system_bus_socket",
            ENV_MARKER: self.name,
        }

    def _start_udevd(self) -> None:
        assert self.stage is not None
        t0 = time.monotonic()
        env = {**self._daemon_env(), "SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_LOG_TARGET": "console"}
        with open(self.stage / "udevd.log", "ab", buffering=0) as log:
            self._udevd, self._udevd_pid = self._spawn_in_ns(
                [_udevd_binary() or _UDEVD_CANDIDATES[0]], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.ready_timeout
        while self.run("udevadm", "control", "--ping", "--timeout=1", check=False).returncode != 0:
            if self._udevd.poll() is not None or time.monotonic() > deadline:
                raise LabError(
                    "systemd-udevd did not start:\n" + (self.stage / "udevd.log").read_text(errors="replace")
                )
            time.sleep(0.01)
        self.run("udevadm", "trigger", "--action=add", "--subsystem-match=net")
        self.run("udevadm", "settle", "--timeout=10")
        self.timings["udevd"] = time.monotonic() - t0

    def start(self) -> None:
        """Start NetworkManager (after the private dbus and, with udev, systemd-udevd +
        ``udevadm trigger --action=add --subsystem-match=net`` + ``udevadm settle``);
        ready when ``nmcli -t general status`` answers."""
        with self._lock:
            if self._holder is None:
                self.setup()
            if self.nm_running():
                raise LabError("NetworkManager is already running")
            if self._dbus is None:
                self._start_dbus(required=True)
            if self.udev and (self._udevd is None or self._udevd.poll() is not None):
                self._start_udevd()
            t0 = time.monotonic()
            start_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._start_offset = start_offset
            argv = [nm_binary() or _NM_CANDIDATES[0], "--debug", f"--log-level={self.log_level}"]
            with open(self.log_path, "ab", buffering=0) as log:
                self._daemon, self._daemon_pid = self._spawn_in_ns(
                    argv, env=self._daemon_env(), stdout=log, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + self.ready_timeout
            while True:
                if self.nm_running():
                    if self.nmcli("-t", "general", "status", check=False, timeout=5).returncode == 0:
                        break
                else:
                    rc = self._daemon.poll() if self._daemon else None
                    raise LabError(f"NetworkManager exited early (rc={rc}):\n{self._read_log(start_offset)}")
                if time.monotonic() > deadline:
                    text = self._read_log(start_offset)
                    raise LabError(f"nmcli got no answer after {self.ready_timeout}s:\n{text[-4000:]}")
                time.sleep(0.02)
            self.timings["nm_ready"] = time.monotonic() - t0

    def _stop_services(self) -> None:
        self._terminate(self._udevd, self._udevd_pid, 3.0)
        self._udevd = None
        self._udevd_pid = None

    def nm_running(self) -> bool:
        return self.daemon_running()

    def udevd_running(self) -> bool:
        return self._udevd is not None and self._udevd.poll() is None

    # -- nmcli -------------------------------------------------------------

    def nmcli(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """``nmcli ARGS`` inside the lab (the private bus); LabCommandError when check."""
        return self.run("nmcli", *args, check=check, timeout=timeout)

    def _device_fields(self, fields: str) -> dict[str, list[str]]:
        out = self.nmcli("-t", "-f", f"DEVICE,{fields}", "device").stdout
        rows = (split_terse(line) for line in out.splitlines() if line)
        return {row[0]: row[1:] for row in rows}

    def device_states(self) -> dict[str, str]:
        """{ifname: state} of every device NetworkManager lists (``nmcli device``)."""
        return {dev: f[0] for dev, f in self._device_fields("STATE").items()}

    def device_state(self, ifname: str) -> str | None:
        """``nmcli -t -f DEVICE,STATE device`` for ifname: "unmanaged", "unavailable",
        "disconnected", "connecting (getting IP configuration)", "connected",
        "connected (externally)", ...; None when NetworkManager does not list it."""
        return self.device_states().get(ifname)

    def device_connection(self, ifname: str) -> str | None:
        """The name of the connection active on ifname, None without one."""
        row = self._device_fields("CONNECTION").get(ifname)
        return row[0] if row and row[0] else None

    def connections(self) -> list[dict[str, str]]:
        """``nmcli connection show``: [{"name", "uuid", "type", "device", "filename"}]."""
        out = self.nmcli("-t", "-f", "NAME,UUID,TYPE,DEVICE,FILENAME", "connection", "show").stdout
        keys = ("name", "uuid", "type", "device", "filename")
        return [dict(zip(keys, split_terse(line), strict=True)) for line in out.splitlines() if line]

    def wait_state(self, ifname: str, states: str | Iterable[str], timeout: float = 5.0, interval: float = 0.05) -> str:
        """Poll until ifname's device state is (one of) states; returns it. TimeoutError
        (with diagnostics) after timeout, LabError if NetworkManager died."""
        wanted = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        while True:
            cur = self.device_state(ifname)
            if cur in wanted:
                return cur
            if not self.nm_running():
                raise LabError(f"NetworkManager is not running (waiting for {ifname})\n{self.describe()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{ifname}: state {cur!r} after {timeout}s, wanted {sorted(wanted)}\n{self.describe()}"
                )
            time.sleep(interval)

    def connection_reload(self) -> None:
        """``nmcli connection reload``: re-read the keyfiles (after :meth:`resync`)."""
        self.nmcli("connection", "reload")

    def general_reload(self, what: str = "conf") -> None:
        """``nmcli general reload WHAT`` ("conf", "dns-rc", "dns-full"; "" = everything,
        like SIGHUP)."""
        self.nmcli("general", "reload", *([what] if what else []))

    def device_reapply(self, ifname: str) -> None:
        self.nmcli("device", "reapply", ifname)

    def connection_up(self, conn_id: str, *, timeout: float = 10.0) -> None:
        """``nmcli --wait T connection up id ID`` (waits for the activation)."""
        self.nmcli("--wait", str(int(timeout)), "connection", "up", "id", conn_id, timeout=timeout + 5)

    def connection_down(self, conn_id: str, *, timeout: float = 10.0) -> None:
        self.nmcli("--wait", str(int(timeout)), "connection", "down", "id", conn_id, timeout=timeout + 5)

    # -- kernel state --------------------------------------------------------

    def sysctl(self, ifname: str, key: str, *, family: str = "ipv6") -> str:
        """/proc/sys/net/FAMILY/conf/IFNAME/KEY as seen inside the lab's netns (e.g.
        addr_gen_mode, accept_ra, disable_ipv6). LookupError when it does not exist."""
        if "/" in ifname or "/" in key or "/" in family or not ifname:
            raise ValueError(f"bad sysctl {family}/{ifname}/{key}")
        r = self.run("cat", f"/proc/sys/net/{family}/conf/{ifname}/{key}", check=False)
        if r.returncode != 0:
            raise LookupError(f"no sysctl net.{family}.conf.{ifname}.{key} in {self.name}: {r.stderr.strip()}")
        return r.stdout.strip()

    def master(self, ifname: str) -> str | None:
        """The device ifname is enslaved to (bridge port -> bridge), None without."""
        self.ifindex(ifname)  # LookupError when there is no such link
        try:
            return os.path.basename(os.readlink(self.root_path(f"/sys/class/net/{ifname}/master")))
        except FileNotFoundError:
            return None

    def addr_assign_type(self, ifname: str) -> int:
        """/sys/class/net/IF/addr_assign_type: 0 permanent, 1 random, 2 stolen, 3 set."""
        return int(self._sys(ifname, "addr_assign_type"))

    # -- logs ------------------------------------------------------------------

    def log_entries(self, since: int = 0) -> list[tuple[str, str]]:
        """[(level, message)] of NetworkManager's log; level: trace, debug, info, warn,
        error. A line without a level marker (stderr of nsenter, GLib) counts as an
        error of its own. Raises LabError when a non-empty log has no marker at all."""
        raw = self._read_log(since)
        entries: list[tuple[str, str]] = []
        marked = 0
        for line in raw.splitlines():
            m = _LINE_RE.match(line)
            if m:
                marked += 1
                entries.append((m.group(1), m.group(3)))
            elif line.strip():
                entries.append(("error", line))
        if raw.strip() and marked == 0:
            raise LabError(
                "NetworkManager log has no <level> [timestamp] markers; warning detection impossible "
                f"(did NetworkManager log to stderr? --debug): {raw[:500]!r}"
            )
        return entries

    def log_text(self, since: int = 0) -> str:
        """NetworkManager's log (stdout+stderr with --debug), as written."""
        return self._read_log(since)

    def warnings(self, since: int = 0, *, ignore: Iterable[str] = ()) -> list[str]:
        """Messages logged at ``<warn>`` or ``<error>`` (without marker and timestamp);
        ``ignore``: regexes of messages to leave out, e.g. :data:`KNOWN_NOISE`."""
        drop = [re.compile(p) for p in ignore]
        return [msg for lvl, msg in self.log_entries(since) if lvl in _SEVERE and not any(p.search(msg) for p in drop)]

    def errors(self, since: int = 0) -> list[str]:
        return [msg for lvl, msg in self.log_entries(since) if lvl == "error"]

    def udev_in_use(self) -> bool | None:
        """What NetworkManager itself says at start: its log line ``platform-linux: create
        (ignore netns, initial netns, use udev, no tc-cache)`` (True) or ``(..., no udev,
        ...)`` (False); None before it was logged."""
        m = re.search(r"platform-linux: create \(([^)]*)\)", self._read_log(self._start_offset))
        if not m:
            return None
        words = [w.strip() for w in m.group(1).split(",")]
        return "use udev" in words if ("use udev" in words or "no udev" in words) else None

    def describe(self, log_lines: int = 40) -> str:
        """Diagnostics for assertion messages: links, device states, log tail."""
        parts = [f"lab {self.name} (NetworkManager running: {self.nm_running()}, {self.udev_mode})"]
        if self._holder is not None and self._holder.poll() is None:
            r = self.run("ip", "-br", "addr", check=False)
            parts.append("--- ip -br addr ---\n" + r.stdout + r.stderr)
            if self.nm_running():
                r = self.nmcli("-t", "-f", "DEVICE,STATE,CONNECTION", "device", check=False)
                parts.append("--- nmcli device ---\n" + r.stdout + r.stderr)
        tail = self.log_text().splitlines()[-log_lines:]
        parts.append("--- NetworkManager log tail ---\n" + "\n".join(tail))
        return "\n".join(parts)
