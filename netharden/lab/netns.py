"""Run the real ``systemd-networkd`` in a throwaway network + mount namespace.

The lab's harness (stdlib + subprocess only; ``netharden lab`` and the test suite both
use it) that starts the distribution's own
``/lib/systemd/systemd-networkd`` over a directory of networkd config files,
isolated from the host, and lets tests create veth/bridge devices and read
each link's networkd state.  Verified against systemd 252 (Debian 12).

Usage::

    from netharden.lab.netns import NetworkdLab, require_or_skip

    def test_x(tmp_path):
        require_or_skip(pytest)
        (tmp_path / "net").mkdir()
        (tmp_path / "net" / "10-up.network").write_text("...")
        with NetworkdLab(tmp_path / "net") as lab:
            lab.add_veth("uplink0", "peer0")
            lab.wait_for("uplink0", "configured")
            assert lab.warnings() == []

Layout and lifecycle
--------------------
``__enter__`` (or ``start=False`` + :meth:`NetworkdLab.start`) does:

1. ``ip netns add nhlab-<ownerpid>-<random>``  (the only thing visible on the
   host while the lab runs, plus a staging dir ``$TMPDIR/nhlab-*``).
2. A *holder* process::

       nsenter --net=/run/netns/NAME -- \\
           unshare --mount --pid --fork --kill-child --propagation private -- \\
           /bin/sh -c "$(cat holder.sh)" nhlab-holder

   ``holder.sh`` (beside this module, package data; shellcheck'd by
   tests/test_shell.py; the one holder of both labs, started by ``nsbase.py``
   with this lab's ``NHTEST_*`` mount list) runs as PID 1 of a new PID
   namespace, inside a private mount namespace, and does ``mount --make-rprivate /``; lazily unmounts its copies
   of all nsfs mounts and of everything below /run (a copied
   ``/run/netns/nhlab-*`` of a concurrently running lab would otherwise keep
   that lab's netns - and its interfaces - alive); ``umount -l /sys`` and
   ``mount -t sysfs -o ro sysfs /sys`` (a sysfs of *this* netns, read-only ->
   networkd's ``udev_available()`` is false and it does not wait for udev);
   a fresh tmpfs on ``/run`` (so /run/systemd/network, /run/systemd/netif and
   /run/dbus are empty and the host's are invisible); creates
   ``/run/systemd/netif`` owned by systemd-network; bind-mounts the staged
   ``etc-systemd`` directory over ``/etc/systemd`` (it contains ``network/``
   = copy of *network_dir*, ``networkd.conf.d/`` = copy of the drop-in dir or
   empty, and an empty ``networkd.conf``); unless ``vendor_config=True`` it
   also hides ``/usr/lib/systemd/network`` (+ ``/usr/local/...``,
   ``networkd.conf.d``) behind empty read-only tmpfs so only the given files
   count.  Then it prints READY and ``exec sleep infinity``.
3. Optionally (default when ``dbus-daemon`` exists) a private
   ``dbus-daemon --config-file=STAGE/dbus.conf --nofork --nopidfile --nosyslog``
   listening on ``/run/dbus/system_bus_socket`` *inside* the namespaces.  It
   must be up BEFORE networkd: observed on 252, a networkd started first sits
   in sd-bus state WATCH_BIND and never connects when dbus-daemon creates the
   socket later, so ``networkctl reload`` would fail.
4. networkd itself::

       nsenter --net=/proc/HOLDER/ns/net --mount=/proc/HOLDER/ns/mnt \\
               --pid=/proc/HOLDER/ns/pid_for_children -- \\
           /lib/systemd/systemd-networkd
       env: SYSTEMD_LOG_LEVEL=debug SYSTEMD_LOG_TARGET=console-prefixed
            SYSTEMD_LOG_COLOR=0  (stdout+stderr -> STAGE/networkd.log)

   It is ready when the log shows ``Enumeration completed`` (and, with dbus,
   ``Successfully acquired requested service name.``).

Steps 1, 2 and the teardown, the private dbus, the commands (:meth:`~NetworkdLab.run`,
``ip``, veth/bridge creation) and sysfs reads are :class:`~netharden.lab.nsbase.NamespaceLab`'s,
shared with :class:`~netharden.lab.nm.NetworkManagerLab` ("one lab, two stacks").
Everything the lab spawns carries ``NETHARDEN_LAB=<name>`` in its environment.
Teardown (``__exit__``, also on exceptions / KeyboardInterrupt; SIGINT is
deferred while it runs) SIGTERMs networkd and dbus, SIGKILLs the holder (its
``--kill-child`` SIGKILLs the namespace's PID 1, so the kernel kills whatever
is left in the PID namespace), kills any straggler still in the netns,
``ip netns delete``s the namespace (veth/bridge devices die with it), and
removes the staging dir.  The private mounts die with the mount namespace.
If the Python process is SIGKILLed, PR_SET_PDEATHSIG on the holder still tears
down all processes; only the netns name and the staging dir can remain, and
``cleanup.cleanup_stale`` (run automatically once per process) removes those of
dead owners.  ``cleanup.leftovers`` lists anything left behind.  Finding and
removing what a lab leaves behind (the process table, stale labs, labs open
at exit, Ctrl-C during teardown) is netharden/lab/cleanup.py.

Reading state
-------------
:meth:`NetworkdLab.link_state` parses ``/run/systemd/netif/links/<ifindex>``
of the lab's mount namespace (read through ``/proc/HOLDER/root``, no fork).
networkd 252 writes such a file for EVERY link it knows, including unmanaged
ones: ``ADMIN_STATE=unmanaged``, ``OPER_STATE=off`` ... and no
``NETWORK_FILE=`` (both for "no .network matched" and for ``Unmanaged=yes``).
Before networkd has seen a link there is no file: ``link_state`` returns ``{}``.
ADMIN_STATE values: pending, initialized, configuring, configured, unmanaged,
failed, linger.

Detecting warnings
------------------
With SYSTEMD_LOG_TARGET=console the debug output has no level marker (and
SYSTEMD_LOG_COLOR=1 produced no colour codes with networkd 252 writing to a
file, so colours are no way out either).  systemd 252 has the
``console-prefixed`` target:
same console output, each message prefixed by its syslog priority ``<N>``
(N = facility*8 + level, e.g. ``<28>`` = daemon.warning, ``<31>`` = debug).
:meth:`NetworkdLab.warnings` returns messages with ``N & 7 <= 4``.  Lines
without a prefix are continuation lines of a multi-line message; unprefixed
lines before any message (e.g. nsenter errors) count as errors.  If a
non-empty log contains no prefix at all, ``warnings()`` raises instead of
silently returning ``[]``.  Config-file warnings name the file as seen inside
the namespace, e.g. ``/etc/systemd/network/10-x.network:7: Unknown key ...``.

Reload
------
networkd 252 has no SIGHUP handler (SIGHUP kills it).  :meth:`reload`
re-copies the config dirs into the staging dir and runs ``networkctl reload``
over the private bus; without dbus it restarts networkd instead (SIGTERM +
start, like ``systemctl restart systemd-networkd``; the log is appended to, use
:meth:`log_mark` to look only at what came after).

Gotchas
-------
* pytest's ``tmp_path`` is mode 0700: networkd drops privileges to
  systemd-network *before* reading configs, so a bind-mounted tmp dir would be
  unreadable.  Hence the default is to copy (``bind=False``).  Copied files
  keep their modes, so a 0600 file stays unreadable for networkd - like on a
  real system.
* Without udev networkd has no sd_device for a link, so (verified on 252):
  ``Type=`` falls back to the ARPHRD name: ``Type=ether`` matches veths AND
  bridges (on a real host with udev a bridge's type is its DEVTYPE "bridge"),
  ``Type=bridge`` never matches; ``Path=`` (udev ID_PATH) never matches;
  ``Name=``/``Kind=``/``Driver=`` do match.  .link files are not applied
  (they are udev's).  ``detect_virtualization()`` says "docker" on the dev
  machine, so ``[Match] Virtualization=`` behaves accordingly.
* A link matched by a .network stays ``configuring`` until it has carrier
  (peer end of a veth must be up: :meth:`add_veth` does that, or
  ``ConfigureWithoutCarrier=yes``) and, as no router advertisements arrive,
  forever unless ``IPv6AcceptRA=no`` (verified).  ``LinkLocalAddressing=no``
  additionally avoids the IPv6LL/DAD wait.
* Host PID 1 in some sandboxes never reaps orphans: a SIGKILLed owner's
  unshare/nsenter become zombies there (harmless, they hold no namespace).
* ``lo`` in a new netns is down and networkd leaves it unmanaged.
* PDEATHSIG fires when the *thread* that created the lab exits: create and use
  a lab from the same long-lived thread.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from . import nsbase

# leftovers/cleanup_stale live in cleanup.py; they stay importable from here, as the
# renderers' namespace tests (test_networkd_netns.py, test_quarantine_netns.py) import them
from .cleanup import ENV_MARKER, NS_PREFIX, cleanup_stale, leftovers
from .cleanup import NETNS_DIR as NETNS_DIR

# the shared machinery (nsbase.py); these names stay importable from here
from .nsbase import HOLDER_SCRIPT as HOLDER_SCRIPT
from .nsbase import LabCommandError, LabError, NamespaceLab
from .nsbase import holder_script as holder_script

__all__ = [
    "NS_PREFIX",
    "LabCommandError",
    "LabError",
    "NetworkdLab",
    "available",
    "cleanup_stale",
    "leftovers",
    "networkd_binary",
    "require_or_skip",
]

_NETWORKD_CANDIDATES = (
    "/lib/systemd/systemd-networkd",
    "/usr/lib/systemd/systemd-networkd",
)
_VENDOR_DIRS = (
    "/usr/lib/systemd/network",
    "/usr/local/lib/systemd/network",
    "/usr/lib/systemd/networkd.conf.d",
    "/usr/local/lib/systemd/networkd.conf.d",
    "/lib/systemd/network",
    "/lib/systemd/networkd.conf.d",
)
_PRIO_RE = re.compile(r"^<(\d{1,3})>(.*)$")
_LOG_WARNING = 4
_DBUS_CONF = nsbase.DBUS_CONF


# ---------------------------------------------------------------------------
# availability


def networkd_binary() -> str | None:
    for cand in _NETWORKD_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return None


_AVAILABLE_CACHE: list[str | None] = []


def available() -> str | None:
    """Return None when the harness can run here, else a reason string."""
    if _AVAILABLE_CACHE:
        return _AVAILABLE_CACHE[0]
    reason = _probe()
    _AVAILABLE_CACHE.append(reason)
    return reason


def _probe() -> str | None:
    reason = nsbase.probe_host("networkd")
    if reason:
        return reason
    if networkd_binary() is None:
        return "systemd-networkd not found (" + ", ".join(_NETWORKD_CANDIDATES) + ")"
    reason = nsbase.probe_tools()
    if reason:
        return reason
    try:
        pwd.getpwnam("systemd-network")
    except KeyError:
        return "user 'systemd-network' does not exist"
    return nsbase.probe_unshare()


def require_or_skip(pytest_module, *, allow_module_level: bool = False) -> None:
    """Skip the calling test when the harness cannot run - but FAIL when
    the environment variable CI is "true" (CI must not silently skip)."""
    nsbase.skip_or_fail(pytest_module, available(), "netns/networkd", allow_module_level=allow_module_level)


# ---------------------------------------------------------------------------
# the lab


def _copy_dir(src: Path | None, dst: Path) -> None:
    """Make dst an exact copy of src (or empty). Symlinks (e.g. /dev/null
    masks) are kept as symlinks; file modes are preserved; dirs are 0755."""
    nsbase.copy_tree(src, dst)


class NetworkdLab(NamespaceLab):
    """A real systemd-networkd in a private network+mount(+pid) namespace.

    Parameters
    ----------
    network_dir: becomes /etc/systemd/network (copied, see ``bind``).
    networkd_conf_dropin_dir: becomes /etc/systemd/networkd.conf.d (empty if None).
    networkd_conf: optional file to use as /etc/systemd/networkd.conf (else empty).
    run_network_dir: files copied into the lab's /run/systemd/network before networkd starts
        (e.g. netplan's generated files: see :meth:`~netharden.lab.scenario.Context.generated_dir`).
    bind: bind-mount the dirs instead of copying (edits are live; dirs must
        be world-readable, pytest's tmp_path is NOT).
    vendor_config: keep /usr/lib/systemd/network etc. visible (default: hidden).
    dbus: start a private dbus-daemon (needed for networkctl reload); None = if available.
    start: start networkd on __enter__ (False: call start() yourself, e.g.
        after creating links, to test coldplug).
    workdir: staging/log directory to use and keep (default: temp dir, removed).
    ready_timeout: seconds to wait for networkd to finish enumeration.
    """

    DAEMON = "systemd-networkd"
    LOG_NAME = "networkd.log"

    def __init__(
        self,
        network_dir: Path | str,
        networkd_conf_dropin_dir: Path | str | None = None,
        *,
        networkd_conf: Path | str | None = None,
        bind: bool = False,
        vendor_config: bool = False,
        dbus: bool | None = None,
        start: bool = True,
        workdir: Path | str | None = None,
        ready_timeout: float = 10.0,
        extra_env: dict[str, str] | None = None,
        run_network_dir: Path | str | None = None,
    ) -> None:
        super().__init__(start=start, workdir=workdir, ready_timeout=ready_timeout)
        self.run_network_dir = Path(run_network_dir).resolve() if run_network_dir else None
        self.network_dir = Path(network_dir).resolve()
        self.dropin_dir = Path(networkd_conf_dropin_dir).resolve() if networkd_conf_dropin_dir else None
        self.networkd_conf = Path(networkd_conf).resolve() if networkd_conf else None
        self.bind = bind
        self.vendor_config = vendor_config
        self.want_dbus = dbus
        self.extra_env = dict(extra_env or {})
        if not self.network_dir.is_dir():
            raise ValueError(f"network_dir {self.network_dir} is not a directory")
        if self.dropin_dir is not None and not self.dropin_dir.is_dir():
            raise ValueError(f"networkd_conf_dropin_dir {self.dropin_dir} is not a directory")
        if bind:
            for d in filter(None, (self.network_dir, self.dropin_dir)):
                if (d.stat().st_mode & 0o005) != 0o005:
                    raise ValueError(
                        f"{d} is not world-readable; networkd runs as systemd-network and could not "
                        "read a bind mount of it (pytest's tmp_path is 0700): use bind=False"
                    )

    # -- setup (the holder and the teardown are NamespaceLab's) ----------------

    def _unavailable(self) -> str | None:
        return available()

    def _prepare_stage(self) -> None:
        assert self.stage is not None
        etc = self.stage / "etc-systemd"
        etc.mkdir(mode=0o755, exist_ok=True)
        etc.chmod(0o755)
        self._sync_config()

    def _holder_env(self) -> dict[str, str]:
        assert self.stage is not None
        pw = pwd.getpwnam("systemd-network")
        hide = []
        if not self.vendor_config:
            seen = set()
            for d in _VENDOR_DIRS:
                if os.path.isdir(d):
                    real = os.path.realpath(d)
                    if real not in seen:
                        seen.add(real)
                        hide.append(real)
        binds = [f"/etc/systemd={self.stage / 'etc-systemd'}"]
        if self.bind:
            binds.append(f"/etc/systemd/network={self.network_dir}")
            if self.dropin_dir:
                binds.append(f"/etc/systemd/networkd.conf.d={self.dropin_dir}")
        return {
            "NHTEST_SYSFS": "ro",
            "NHTEST_RUN_DIRS": "/run/systemd/network /run/systemd/netif /run/dbus",
            "NHTEST_OWNER": f"{pw.pw_uid}:{pw.pw_gid}",
            "NHTEST_OWNED": "/run/systemd/netif",
            "NHTEST_BINDS": "\n".join(binds),
            "NHTEST_HIDE": " ".join(hide),
        }

    def _sync_config(self) -> None:
        assert self.stage is not None
        etc = self.stage / "etc-systemd"
        if self.networkd_conf is not None:
            shutil.copyfile(self.networkd_conf, etc / "networkd.conf")
        else:
            (etc / "networkd.conf").write_text("")
        (etc / "networkd.conf").chmod(0o644)
        if self.bind:
            (etc / "network").mkdir(mode=0o755, exist_ok=True)
            (etc / "networkd.conf.d").mkdir(mode=0o755, exist_ok=True)
        else:
            _copy_dir(self.network_dir, etc / "network")
            _copy_dir(self.dropin_dir, etc / "networkd.conf.d")

    def start(self) -> None:
        """Start networkd (and the private dbus first, if wanted)."""
        with self._lock:
            if self._holder is None:
                self.setup()
            if self.networkd_running():
                raise LabError("networkd is already running")
            if self.run_network_dir is not None and not self._run_files_copied:
                self._copy_run_files()
            if self._dbus is None and self.want_dbus is not False:
                self._start_dbus(required=bool(self.want_dbus))
            t0 = time.monotonic()
            env = {
                "PATH": nsbase.SAFE_PATH,
                "LANG": "C.UTF-8",
                "SYSTEMD_LOG_LEVEL": "debug",
                "SYSTEMD_LOG_TARGET": "console-prefixed",
                "SYSTEMD_LOG_COLOR": "0",
                ENV_MARKER: self.name,
                **self.extra_env,
            }
            start_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._start_offset = start_offset
            log = open(self.log_path, "ab", buffering=0)
            try:
                self._daemon, self._daemon_pid = self._spawn_in_ns(
                    [networkd_binary() or _NETWORKD_CANDIDATES[0]], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            finally:
                log.close()
            needles = ["Enumeration completed"]
            if self._dbus is not None:
                needles.append("Successfully acquired requested service name")
            deadline = time.monotonic() + self.ready_timeout
            while True:
                text = self._read_log(start_offset)
                if all(n in text for n in needles):
                    break
                if not self.networkd_running():
                    rc = self._daemon.poll() if self._daemon else None
                    raise LabError(f"systemd-networkd exited early (rc={rc}):\n{text}")
                if time.monotonic() > deadline:
                    raise LabError(f"systemd-networkd not ready after {self.ready_timeout}s:\n{text[-4000:]}")
                time.sleep(0.01)
            self.timings["networkd_ready"] = time.monotonic() - t0

    _run_files_copied = False

    def _copy_run_files(self) -> None:
        """The files of ``run_network_dir`` into the lab's /run/systemd/network (once: a restart
        keeps what is there, as a host's /run survives a networkd restart)."""
        assert self.run_network_dir is not None
        dest = self.root_path("/run/systemd/network")
        for f in sorted(self.run_network_dir.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                shutil.copyfile(f, dest / f.name)
                (dest / f.name).chmod(0o644)
        self._run_files_copied = True

    # -- process control ---------------------------------------------------

    def networkd_running(self) -> bool:
        return self.daemon_running()

    def reload(self) -> None:
        """Re-copy the config dirs and make networkd reload them:
        ``networkctl reload`` over the private bus, or a restart without dbus."""
        with self._lock:
            self._sync_config()
            if not self.networkd_running():
                raise LabError("networkd is not running")
            if self._dbus is None:
                self.restart()
                return
            t0 = time.monotonic()
            self.run("networkctl", "reload", timeout=30)
            self.timings["reload"] = time.monotonic() - t0

    # -- state -----------------------------------------------------------------

    @staticmethod
    def _parse_state(text: str) -> dict[str, str]:
        out = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out[k] = v
        return out

    def link_state(self, ifname: str) -> dict[str, str]:
        """Parsed /run/systemd/netif/links/<ifindex> (ADMIN_STATE, OPER_STATE,
        NETWORK_FILE, ...).  {} if networkd has not written it yet.
        Raises LookupError if the link does not exist."""
        idx = self.ifindex(ifname)
        try:
            text = self.root_path(f"/run/systemd/netif/links/{idx}").read_text()
        except FileNotFoundError:
            return {}
        return self._parse_state(text)

    def admin_state(self, ifname: str) -> str | None:
        try:
            return self.link_state(ifname).get("ADMIN_STATE")
        except LookupError:
            return None

    def wait_for(
        self, ifname: str, admin_state: str | Iterable[str] = "configured", timeout: float = 5.0, interval: float = 0.02
    ) -> dict[str, str]:
        """Poll until ADMIN_STATE of ifname is (one of) admin_state; returns
        the state dict. Raises TimeoutError (with diagnostics) or LabError if
        networkd died. Fails fast on ADMIN_STATE=failed unless wanted."""
        wanted = {admin_state} if isinstance(admin_state, str) else set(admin_state)
        deadline = time.monotonic() + timeout
        state: dict[str, str] = {}
        while True:
            try:
                state = self.link_state(ifname)
            except LookupError:
                state = {}
            cur = state.get("ADMIN_STATE")
            if cur in wanted:
                return state
            if cur == "failed":
                raise LabError(f"{ifname}: ADMIN_STATE=failed (wanted {sorted(wanted)})\n{self.describe()}")
            if not self.networkd_running():
                raise LabError(f"networkd is not running (waiting for {ifname})\n{self.describe()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{ifname}: ADMIN_STATE={cur!r} after {timeout}s, wanted {sorted(wanted)}\n{self.describe()}"
                )
            time.sleep(interval)

    # -- logs ------------------------------------------------------------------

    def log_entries(self, since: int = 0) -> list[tuple[int, str]]:
        """[(syslog level 0-7, message)] parsed from the console-prefixed log."""
        raw = self._read_log(since)
        entries: list[tuple[int, str]] = []
        prefixed = 0
        for line in raw.splitlines():
            m = _PRIO_RE.match(line)
            if m:
                prefixed += 1
                entries.append((int(m.group(1)) & 7, m.group(2)))
            elif entries:
                lvl, msg = entries[-1]
                entries[-1] = (lvl, msg + "\n" + line)
            elif line.strip():
                entries.append((3, line))  # e.g. nsenter errors before networkd logs
        if raw.strip() and prefixed == 0:
            raise LabError(
                "networkd log has no <priority> prefixes; warning detection impossible "
                "(SYSTEMD_LOG_TARGET=console-prefixed unsupported?)"
            )
        return entries

    def log_text(self, since: int = 0, *, raw: bool = False) -> str:
        """networkd's log; by default without the <N> priority prefixes."""
        text = self._read_log(since)
        if raw:
            return text
        return "\n".join(_PRIO_RE.sub(r"\2", line) for line in text.splitlines())

    def warnings(self, since: int = 0) -> list[str]:
        """Log messages at warning level or more severe (emerg..warning)."""
        return [msg for lvl, msg in self.log_entries(since) if lvl <= _LOG_WARNING]

    def errors(self, since: int = 0) -> list[str]:
        return [msg for lvl, msg in self.log_entries(since) if lvl <= 3]

    def describe(self, log_lines: int = 40) -> str:
        """Diagnostics for assertion messages: links, state files, log tail."""
        parts = [f"lab {self.name} (networkd running: {self.networkd_running()})"]
        if self._holder is not None and self._holder.poll() is None:
            r = self.run("ip", "-br", "addr", check=False)
            parts.append("--- ip -br addr ---\n" + r.stdout + r.stderr)
            for name in self.link_names():
                try:
                    st = self.link_state(name)
                except LookupError:
                    continue
                parts.append(
                    f"{name}: "
                    + " ".join(f"{k}={v}" for k, v in st.items() if k in ("ADMIN_STATE", "OPER_STATE", "NETWORK_FILE"))
                )
        tail = self.log_text().splitlines()[-log_lines:]
        parts.append("--- networkd log tail ---\n" + "\n".join(tail))
        return "\n".join(parts)
