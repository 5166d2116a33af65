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
   tests/test_shell.py) runs as PID 1 of a new PID namespace, inside a private
   mount namespace, and does ``mount --make-rprivate /``; lazily unmounts its copies
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

import contextlib
import ctypes
import json
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from . import cleanup

# leftovers/cleanup_stale live in cleanup.py; they stay importable from here, as the
# renderers' namespace tests (test_networkd_netns.py, test_quarantine_netns.py) import them
from .cleanup import ENV_MARKER, NETNS_DIR, NS_PREFIX, cleanup_stale, leftovers

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
_PR_SET_PDEATHSIG = 1
HOLDER_SCRIPT = "holder.sh"  # shipped beside this module (package data), run by /bin/sh -c

_DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"""


class LabError(RuntimeError):
    """The lab could not be set up, or networkd misbehaved."""


class LabCommandError(subprocess.CalledProcessError):
    """A command run inside the lab failed; str() includes stdout/stderr."""

    def __str__(self) -> str:
        cmd = " ".join(map(str, self.cmd)) if isinstance(self.cmd, (list, tuple)) else self.cmd
        return (
            f"command {cmd!r} failed with exit status {self.returncode}\n"
            f"--- stderr ---\n{self.stderr or ''}--- stdout ---\n{self.output or ''}"
        )


# ---------------------------------------------------------------------------
# availability


def holder_script() -> str:
    """The holder's POSIX sh script (``holder.sh`` of this package; SETUP above)."""
    return resources.files(__package__).joinpath(HOLDER_SCRIPT).read_text(encoding="utf-8")


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
    if not sys.platform.startswith("linux"):
        return f"needs Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "needs root (network/mount namespaces, networkd)"
    if networkd_binary() is None:
        return "systemd-networkd not found (" + ", ".join(_NETWORKD_CANDIDATES) + ")"
    for tool in ("ip", "nsenter", "unshare", "mount", "umount", "chown", "sleep", "awk", "sort"):
        if shutil.which(tool) is None:
            return f"'{tool}' not found in PATH"
    try:
        pwd.getpwnam("systemd-network")
    except KeyError:
        return "user 'systemd-network' does not exist"
    try:
        r = subprocess.run(
            ["unshare", "--net", "--mount", "--pid", "--fork", "true"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot create namespaces: {e}"
    if r.returncode != 0:
        return f"cannot create namespaces: {r.stderr.strip()}"
    return None


def require_or_skip(pytest_module, *, allow_module_level: bool = False) -> None:
    """Skip the calling test when the harness cannot run - but FAIL when
    the environment variable CI is "true" (CI must not silently skip)."""
    reason = available()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest_module.fail(f"netns/networkd harness unavailable in CI: {reason}", pytrace=False)
    pytest_module.skip(f"netns/networkd harness unavailable: {reason}", allow_module_level=allow_module_level)


# ---------------------------------------------------------------------------
# spawning


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


# ---------------------------------------------------------------------------
# the lab


def _copy_dir(src: Path | None, dst: Path) -> None:
    """Make dst an exact copy of src (or empty). Symlinks (e.g. /dev/null
    masks) are kept as symlinks; file modes are preserved; dirs are 0755."""
    dst.mkdir(mode=0o755, parents=True, exist_ok=True)
    for entry in list(dst.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if src is not None:
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        for root, dirs, _files in os.walk(dst):
            for d in dirs:
                p = Path(root, d)
                if not p.is_symlink():
                    p.chmod(0o755)
    dst.chmod(0o755)


class NetworkdLab:
    """A real systemd-networkd in a private network+mount(+pid) namespace.

    Parameters
    ----------
    network_dir: becomes /etc/systemd/network (copied, see ``bind``).
    networkd_conf_dropin_dir: becomes /etc/systemd/networkd.conf.d (empty if None).
    networkd_conf: optional file to use as /etc/systemd/networkd.conf (else empty).
    bind: bind-mount the dirs instead of copying (edits are live; dirs must
        be world-readable, pytest's tmp_path is NOT).
    vendor_config: keep /usr/lib/systemd/network etc. visible (default: hidden).
    dbus: start a private dbus-daemon (needed for networkctl reload); None = if available.
    start: start networkd on __enter__ (False: call start() yourself, e.g.
        after creating links, to test coldplug).
    workdir: staging/log directory to use and keep (default: temp dir, removed).
    ready_timeout: seconds to wait for networkd to finish enumeration.
    """

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
    ) -> None:
        self.network_dir = Path(network_dir).resolve()
        self.dropin_dir = Path(networkd_conf_dropin_dir).resolve() if networkd_conf_dropin_dir else None
        self.networkd_conf = Path(networkd_conf).resolve() if networkd_conf else None
        self.bind = bind
        self.vendor_config = vendor_config
        self.want_dbus = dbus
        self.autostart = start
        self.ready_timeout = ready_timeout
        self.extra_env = dict(extra_env or {})
        self.name = f"{NS_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self._workdir_arg = Path(workdir) if workdir else None
        self.stage: Path | None = None
        self._own_stage = False
        self._holder: subprocess.Popen | None = None
        self._networkd: subprocess.Popen | None = None
        self._networkd_pid: int | None = None
        self._dbus: subprocess.Popen | None = None
        self._dbus_pid: int | None = None
        self._bg: list[subprocess.Popen] = []
        self._netns_created = False
        self._log_fh = None
        self._final_log: str | None = None
        self._closed = False
        self._start_offset = 0
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}
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

    # -- context manager -------------------------------------------------

    def __enter__(self) -> NetworkdLab:
        try:
            self.setup()
            if self.autostart:
                self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- setup -------------------------------------------------------------

    @property
    def holder_pid(self) -> int:
        if self._holder is None:
            raise LabError("lab is not set up")
        return self._holder.pid

    @property
    def log_path(self) -> Path:
        assert self.stage is not None
        return self.stage / "networkd.log"

    @property
    def dbus_enabled(self) -> bool:
        return self._dbus is not None

    def _ns(self, kind: str) -> str:
        return f"/proc/{self.holder_pid}/ns/{kind}"

    def root_path(self, path: str) -> Path:
        """Host path through which ``path`` of the lab's mount namespace is
        reachable (via /proc/HOLDER/root)."""
        return Path(f"/proc/{self.holder_pid}/root") / path.lstrip("/")

    def setup(self) -> None:
        reason = available()
        if reason:
            raise LabError(reason)
        cleanup.cleanup_stale_once()
        t0 = time.monotonic()
        cleanup.track(self)
        if self._workdir_arg is not None:
            self.stage = self._workdir_arg
            self.stage.mkdir(parents=True, exist_ok=True)
        else:
            self.stage = Path(tempfile.mkdtemp(prefix=self.name + "."))
            self._own_stage = True
        etc = self.stage / "etc-systemd"
        etc.mkdir(mode=0o755, exist_ok=True)
        etc.chmod(0o755)
        self._sync_config()
        (self.stage / "dbus.conf").write_text(_DBUS_CONF)

        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"ip netns add {self.name} failed: {r.stderr.strip()}")
        self._netns_created = True

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
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            ENV_MARKER: self.name,
            "NHTEST_UID": str(pw.pw_uid),
            "NHTEST_GID": str(pw.pw_gid),
            "NHTEST_ETC": str(etc),
            "NHTEST_NETWORK_BIND": str(self.network_dir) if self.bind else "",
            "NHTEST_DROPIN_BIND": str(self.dropin_dir) if (self.bind and self.dropin_dir) else "",
            "NHTEST_HIDE": " ".join(hide),
        }
        holder_err = open(self.stage / "holder.log", "wb")
        try:
            self._holder = subprocess.Popen(
                [
                    "nsenter",
                    f"--net={NETNS_DIR / self.name}",
                    "--",
                    "unshare",
                    "--mount",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/sh",
                    "-c",
                    holder_script(),
                    "nhlab-holder",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=holder_err,
                env=env,
                preexec_fn=_set_pdeathsig,
                close_fds=True,
            )
        finally:
            holder_err.close()
        line = self._readline(self._holder.stdout, 10.0)
        if line.strip() != "READY":
            err = (self.stage / "holder.log").read_text(errors="replace")
            raise LabError(f"namespace setup failed (got {line!r}):\n{err}")
        self.timings["setup"] = time.monotonic() - t0

    @staticmethod
    def _readline(stream, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        buf = b""
        fd = stream.fileno()
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            rl, _, _ = select.select([fd], [], [], left)
            if not rl:
                break
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")

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

    def _spawn_in_ns(
        self, argv: list[str], *, env: dict[str, str], stdout, stderr, stdin=subprocess.DEVNULL
    ) -> tuple[subprocess.Popen, int]:
        """Start argv inside net+mount+pid namespaces. Returns (nsenter Popen,
        host PID of the real process)."""
        full = [
            "nsenter",
            f"--net={self._ns('net')}",
            f"--mount={self._ns('mnt')}",
            f"--pid={self._ns('pid_for_children')}",
            "--",
            *argv,
        ]
        proc = subprocess.Popen(full, stdin=stdin, stdout=stdout, stderr=stderr, env=env, close_fds=True)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            kids = cleanup.children(proc.pid)
            if kids:
                return proc, kids[0]
            if proc.poll() is not None:
                break
            time.sleep(0.002)
        raise LabError(f"could not start {argv[0]} in the namespace (nsenter rc={proc.poll()})")

    def _start_dbus(self) -> None:
        assert self.stage is not None
        exe = shutil.which("dbus-daemon")
        if exe is None:
            if self.want_dbus:
                raise LabError("dbus=True but dbus-daemon is not installed")
            return
        t0 = time.monotonic()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", ENV_MARKER: self.name}
        with open(self.stage / "dbus.log", "ab") as err:
            proc, pid = self._spawn_in_ns(
                [
                    exe,
                    f"--config-file={self.stage / 'dbus.conf'}",
                    "--nofork",
                    "--nopidfile",
                    "--nosyslog",
                    "--print-address=1",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self._dbus, self._dbus_pid = proc, pid
        line = self._readline(proc.stdout, 10.0)
        if not line.startswith("unix:"):
            raise LabError(
                "private dbus-daemon did not start: " + (self.stage / "dbus.log").read_text(errors="replace")
            )
        self.timings["dbus"] = time.monotonic() - t0

    def start(self) -> None:
        """Start networkd (and the private dbus first, if wanted)."""
        with self._lock:
            if self._holder is None:
                self.setup()
            if self.networkd_running():
                raise LabError("networkd is already running")
            if self._dbus is None and self.want_dbus is not False:
                self._start_dbus()
            t0 = time.monotonic()
            env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
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
                self._networkd, self._networkd_pid = self._spawn_in_ns(
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
                    raise LabError(f"systemd-networkd exited early (rc={self._networkd.poll()}):\n{text}")
                if time.monotonic() > deadline:
                    raise LabError(f"systemd-networkd not ready after {self.ready_timeout}s:\n{text[-4000:]}")
                time.sleep(0.01)
            self.timings["networkd_ready"] = time.monotonic() - t0

    # -- process control ---------------------------------------------------

    def networkd_running(self) -> bool:
        return self._networkd is not None and self._networkd.poll() is None

    @staticmethod
    def _terminate(proc: subprocess.Popen | None, real_pid: int | None, timeout: float = 5.0) -> None:
        if proc is None:
            return
        try:
            if proc.poll() is None and real_pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(real_pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                    return
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):
                        os.kill(real_pid, signal.SIGKILL)
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    def stop(self) -> None:
        """Stop networkd (SIGTERM, SIGKILL after 5 s). The namespaces stay."""
        with self._lock:
            self._terminate(self._networkd, self._networkd_pid)
            self._networkd = None
            self._networkd_pid = None

    def restart(self) -> None:
        self.stop()
        self.start()

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

    def close(self) -> None:
        """Tear everything down. Idempotent; safe on partially set-up labs."""
        with self._lock, cleanup.sigint_deferred():
            if self._closed:
                return
            self._closed = True
            t0 = time.monotonic()
            errors: list[str] = []

            def step(fn, *a):
                try:
                    fn(*a)
                except Exception as e:  # keep going, report at the end
                    errors.append(f"{getattr(fn, '__name__', fn)}: {e}")

            step(self.stop)
            for p in self._bg:
                step(self._terminate, p, next(iter(cleanup.children(p.pid)), None), 2.0)
            step(self._terminate, self._dbus, self._dbus_pid, 3.0)
            self._dbus = None
            if self.stage is not None and self.log_path.exists():
                with contextlib.suppress(OSError):
                    self._final_log = self.log_path.read_text(errors="replace")
            ino = None
            if self._netns_created:
                with contextlib.suppress(OSError):
                    ino = os.stat(NETNS_DIR / self.name).st_ino
            if self._holder is not None:
                if self._holder.poll() is None:
                    with contextlib.suppress(OSError):
                        self._holder.kill()  # --kill-child -> PID-ns init dies -> ns killed
                step(self._holder.wait, 5.0)
                if self._holder.stdout:
                    self._holder.stdout.close()
            if self._netns_created:
                # stragglers (e.g. run() commands that hung) - then drop the name
                cleanup.kill_stragglers(self.name, ino)
                r = subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, text=True)
                if r.returncode != 0 and (NETNS_DIR / self.name).exists():
                    errors.append(f"ip netns delete {self.name}: {r.stderr.strip()}")
                self._netns_created = False
            if self._own_stage and self.stage is not None:
                shutil.rmtree(self.stage, ignore_errors=True)
            cleanup.untrack(self)
            self.timings["teardown"] = time.monotonic() - t0
            if errors:
                raise LabError("lab teardown incomplete: " + "; ".join(errors))

    # -- commands ------------------------------------------------------------

    def _cmd_env(self, extra: dict[str, str] | None) -> dict[str, str]:
        # Never let a command reach a bus/notify socket outside the lab: an
        # inherited DBUS_SYSTEM_BUS_ADDRESS would make networkctl talk to the
        # HOST's networkd.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DBUS_", "SYSTEMD_", "NOTIFY_SOCKET", "LISTEN_", "JOURNAL_STREAM"))
        }
        env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/run/dbus/system_bus_socket"
        env[ENV_MARKER] = self.name
        env.update(extra or {})
        return env

    def run(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run cmd inside the lab's net+mount namespaces (host PID ns, cwd /).
        Raises LabCommandError (with stderr) on non-zero exit when check.
        ``env``: extra variables (DBUS_*/SYSTEMD_* of the caller are dropped)."""
        env = self._cmd_env(env)
        argv = ["nsenter", f"--net={self._ns('net')}", f"--mount={self._ns('mnt')}", "--", *map(str, cmd)]
        r = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and r.returncode != 0:
            raise LabCommandError(r.returncode, list(map(str, cmd)), r.stdout, r.stderr)
        return r

    def popen(self, *cmd: str, **kw) -> subprocess.Popen:
        """Start a background command inside net+mount+PID namespaces; it is
        killed at close() (and by the kernel with the PID namespace)."""
        env = self._cmd_env(kw.pop("env", None))
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc, _pid = self._spawn_in_ns([*map(str, cmd)], env=env, **kw)
        self._bg.append(proc)
        return proc

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("ip", *args, check=check)

    def ip_json(self, *args: str):
        out = self.run("ip", "-j", *args).stdout.strip()
        return json.loads(out) if out else []

    def add_veth(self, name: str, peer: str, *, peer_up: bool = True) -> None:
        """Create a veth pair; bring the peer up (gives ``name`` carrier once
        networkd brings it up). networkd itself decides about ``name``."""
        self.ip("link", "add", name, "type", "veth", "peer", "name", peer)
        if peer_up:
            self.ip("link", "set", peer, "up")

    def add_bridge(self, name: str, *, up: bool = False) -> None:
        self.ip("link", "add", name, "type", "bridge")
        if up:
            self.ip("link", "set", name, "up")

    # -- state -----------------------------------------------------------------

    def _sys(self, ifname: str, attr: str) -> str:
        if "/" in ifname or not ifname:
            raise ValueError(f"bad interface name {ifname!r}")
        try:
            return self.root_path(f"/sys/class/net/{ifname}/{attr}").read_text().strip()
        except FileNotFoundError:
            raise LookupError(f"no link {ifname!r} in {self.name}") from None

    def ifindex(self, ifname: str) -> int:
        return int(self._sys(ifname, "ifindex"))

    def mac(self, ifname: str) -> str:
        return self._sys(ifname, "address").lower()

    def has_link(self, ifname: str) -> bool:
        try:
            self.ifindex(ifname)
            return True
        except LookupError:
            return False

    def link_names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.root_path("/sys/class/net")))
        except OSError:
            return []

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

    def addresses(self, ifname: str, family: str | None = None) -> list[str]:
        """['192.0.2.10/24', ...] of ifname (family 'inet'/'inet6' to filter)."""
        args = ["addr", "show", "dev", ifname]
        data = self.ip_json(*args)
        out = []
        for link in data:
            for a in link.get("addr_info", []):
                if family and a.get("family") != family:
                    continue
                out.append(f"{a['local']}/{a['prefixlen']}")
        return out

    # -- logs ------------------------------------------------------------------

    def _read_log(self, offset: int = 0) -> str:
        if self.stage is not None and self.log_path.exists():
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        text = self._final_log or ""
        return text[offset:]

    def log_mark(self) -> int:
        """Current log size; pass as ``since=`` to only see later messages."""
        if self.stage is not None and self.log_path.exists():
            return self.log_path.stat().st_size
        return len((self._final_log or "").encode())

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

    def __repr__(self) -> str:
        return f"<NetworkdLab {self.name} holder={self._holder.pid if self._holder else None}>"
