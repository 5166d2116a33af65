"""One lab, two stacks: the namespace machinery shared by the networkd and NetworkManager labs.

:class:`NamespaceLab` is the base of :class:`~netharden.lab.netns.NetworkdLab` (the real
systemd-networkd) and :class:`~netharden.lab.nm.NetworkManagerLab` (the real NetworkManager).
It owns everything that does not depend on the daemon, so both labs have ONE holder and ONE
teardown:

* the network namespace ``/run/netns/nhlab-<owner pid>-<random>`` (``cleanup.NS_PREFIX``) and
  the staging dir ``$TMPDIR/nhlab-...`` (or a caller's ``workdir``, kept);
* the *holder*: ``nsenter --net=/run/netns/NAME -- unshare --mount --pid [--uts] --fork
  --kill-child --propagation private -- /bin/sh -c "$(cat holder.sh)" nhlab-holder``.
  ``holder.sh`` (package data, POSIX sh, shellcheck'd by tests/test_shell.py) is PID 1 of the
  lab's PID namespace; it makes its mounts private, drops its copies of nsfs mounts and of
  /run, mounts the sysfs of the netns on /sys (read-only unless the lab says ``rw``), a tmpfs
  on /run, optionally a private /dev, then the bind mounts and hides the lab asks for
  (:meth:`NamespaceLab._holder_env`: ``NHTEST_*`` variables), prints READY and sleeps;
* a private ``dbus-daemon`` (:data:`DBUS_CONF`, socket /run/dbus/system_bus_socket inside the
  lab) and :meth:`NamespaceLab._spawn_in_ns`, which starts a daemon in the lab's namespaces
  and returns its host PID;
* commands (:meth:`~NamespaceLab.run`, :meth:`~NamespaceLab.popen`, ``ip``, veth/bridge
  creation, sysfs reads through ``/proc/HOLDER/root``) and the daemon's log file
  (:meth:`~NamespaceLab.log_mark`);
* teardown (:meth:`~NamespaceLab.close`, idempotent, also after exceptions and Ctrl-C, which
  is deferred while it runs): SIGTERM the daemon (the subclass's :meth:`~NamespaceLab.stop`),
  its helpers (:meth:`~NamespaceLab._stop_services`), background commands and dbus; SIGKILL
  the holder (``--kill-child`` kills the PID namespace's init, the kernel kills the rest);
  SIGKILL stragglers still in the netns; ``ip netns delete``; remove the staging dir.

Every process carries ``NETHARDEN_LAB=<netns name>`` (``cleanup.ENV_MARKER``); the holder has
PR_SET_PDEATHSIG, so a SIGKILLed owner leaves no process (netharden/lab/cleanup.py removes
what else is left of dead owners and lists leftovers).  A subclass supplies: ``DAEMON`` and
``LOG_NAME``, ``_unavailable()``, ``_prepare_stage()``, ``_holder_env()``, ``start()`` (which
sets ``_daemon``/``_daemon_pid``), and its own log parsing and ``describe()``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from . import cleanup
from .cleanup import ENV_MARKER, NETNS_DIR, NS_PREFIX

__all__ = [
    "DBUS_CONF",
    "HOLDER_SCRIPT",
    "LabCommandError",
    "LabError",
    "NamespaceLab",
    "copy_tree",
    "holder_script",
    "probe_host",
    "probe_tools",
    "probe_unshare",
    "skip_or_fail",
]

HOLDER_SCRIPT = "holder.sh"  # shipped beside this module (package data), run by /bin/sh -c
SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_PR_SET_PDEATHSIG = 1
# what the holder itself needs
_HOLDER_TOOLS = ("ip", "nsenter", "unshare", "mount", "umount", "chown", "sleep", "awk", "sort")

DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
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
    """The lab could not be set up, or its daemon misbehaved."""


class LabCommandError(subprocess.CalledProcessError):
    """A command run inside the lab failed; str() includes stdout/stderr."""

    def __str__(self) -> str:
        cmd = " ".join(map(str, self.cmd)) if isinstance(self.cmd, (list, tuple)) else self.cmd
        return (
            f"command {cmd!r} failed with exit status {self.returncode}\n"
            f"--- stderr ---\n{self.stderr or ''}--- stdout ---\n{self.output or ''}"
        )


# ---------------------------------------------------------------------------
# helpers


def holder_script() -> str:
    """The holder's POSIX sh script (``holder.sh`` of this package)."""
    return resources.files(__package__).joinpath(HOLDER_SCRIPT).read_text(encoding="utf-8")


def probe_host(daemon: str) -> str | None:
    """None on Linux as root, else why a lab running ``daemon`` cannot run here."""
    if not sys.platform.startswith("linux"):
        return f"needs Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return f"needs root (network/mount namespaces, {daemon})"
    return None


def probe_tools(tools: tuple[str, ...] = ()) -> str | None:
    """None when the holder's tools and ``tools`` are on PATH, else which one is not."""
    for tool in (*_HOLDER_TOOLS, *tools):
        if shutil.which(tool) is None:
            return f"'{tool}' not found in PATH"
    return None


def probe_unshare() -> str | None:
    """None when this process can unshare net+mount+pid namespaces, else why not."""
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


def skip_or_fail(pytest_module, reason: str | None, what: str, *, allow_module_level: bool = False) -> None:
    """Skip the calling test because the ``what`` harness cannot run (``reason``) - but FAIL
    when the environment variable CI is "true" (CI must not silently skip)."""
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest_module.fail(f"{what} harness unavailable in CI: {reason}", pytrace=False)
    pytest_module.skip(f"{what} harness unavailable: {reason}", allow_module_level=allow_module_level)


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def _empty_dir(dst: Path) -> None:
    dst.mkdir(mode=0o755, parents=True, exist_ok=True)
    for entry in list(dst.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def copy_tree(src: Path | None, dst: Path, *, keep_dir_modes: bool = False, keep_owner: bool = False) -> None:
    """Make dst an exact copy of src (or empty). Symlinks (e.g. /dev/null masks) stay
    symlinks; file modes are preserved; directories become 0755 unless ``keep_dir_modes``;
    ``keep_owner``: files and directories keep their uid/gid (else: the copier's, root)."""
    _empty_dir(dst)
    if src is not None:
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        for root, dirs, files in os.walk(dst):
            for name in (*dirs, *files):
                p = Path(root, name)
                if keep_owner:
                    st = os.lstat(src / p.relative_to(dst))
                    os.lchown(p, st.st_uid, st.st_gid)
                if name in dirs and not p.is_symlink() and not keep_dir_modes:
                    p.chmod(0o755)
        if keep_owner:
            st = src.stat()
            os.chown(dst, st.st_uid, st.st_gid)
    if not keep_dir_modes or src is None:
        dst.chmod(0o755)
    else:
        dst.chmod(src.stat().st_mode & 0o7777)


_L = TypeVar("_L", bound="NamespaceLab")


# ---------------------------------------------------------------------------
# the lab


class NamespaceLab:
    """A throwaway network namespace + private mount/PID namespace with one daemon in it
    (see the module docstring; subclasses: NetworkdLab, NetworkManagerLab)."""

    #: the daemon, as messages name it
    DAEMON = "daemon"
    #: the daemon's stdout+stderr, in the staging dir
    LOG_NAME = "daemon.log"
    #: the holder also unshares a UTS namespace (hostname changes stay in the lab)
    UNSHARE_UTS = False
    #: run() enters the lab's PID namespace too (else: the host's PID namespace)
    RUN_IN_PID_NS = False

    def __init__(self, *, start: bool, workdir: Path | str | None, ready_timeout: float) -> None:
        self.autostart = start
        self.ready_timeout = ready_timeout
        self.name = f"{NS_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self._workdir_arg = Path(workdir) if workdir else None
        self.stage: Path | None = None
        self._own_stage = False
        self._holder: subprocess.Popen | None = None
        self._daemon: subprocess.Popen | None = None
        self._daemon_pid: int | None = None
        self._dbus: subprocess.Popen | None = None
        self._dbus_pid: int | None = None
        self._bg: list[subprocess.Popen] = []
        self._netns_created = False
        self._final_log: str | None = None
        self._closed = False
        self._start_offset = 0
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}

    # -- subclass hooks ----------------------------------------------------

    def _unavailable(self) -> str | None:
        """Why this lab cannot run here, or None."""
        raise NotImplementedError

    def _prepare_stage(self) -> None:
        """Fill the fresh staging dir (called by setup before the holder starts)."""

    def _holder_env(self) -> dict[str, str]:
        """The holder's ``NHTEST_*`` variables (holder.sh says what each one does)."""
        return {}

    def _holder_ready(self) -> None:
        """Called once the holder's mounts are in place (before any daemon)."""

    def start(self) -> None:
        raise NotImplementedError

    def _stop_services(self) -> None:
        """Stop the daemon's helpers (close() calls it after stop(), before dbus goes)."""

    # -- context manager -------------------------------------------------

    def __enter__(self: _L) -> _L:
        try:
            self.setup()
            if self.autostart:
                self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths -------------------------------------------------------------

    @property
    def holder_pid(self) -> int:
        if self._holder is None:
            raise LabError("lab is not set up")
        return self._holder.pid

    @property
    def log_path(self) -> Path:
        assert self.stage is not None
        return self.stage / self.LOG_NAME

    @property
    def dbus_enabled(self) -> bool:
        return self._dbus is not None

    def _ns(self, kind: str) -> str:
        return f"/proc/{self.holder_pid}/ns/{kind}"

    def _enter_args(self) -> list[str]:
        """nsenter options for the lab's net + mount (+ UTS) namespaces."""
        kinds = [("net", "net"), ("mount", "mnt")] + ([("uts", "uts")] if self.UNSHARE_UTS else [])
        return [f"--{opt}={self._ns(kind)}" for opt, kind in kinds]

    def root_path(self, path: str) -> Path:
        """Host path through which ``path`` of the lab's mount namespace is
        reachable (via /proc/HOLDER/root)."""
        return Path(f"/proc/{self.holder_pid}/root") / path.lstrip("/")

    # -- setup -------------------------------------------------------------

    def setup(self) -> None:
        """Namespace, staging dir and holder (no daemon yet)."""
        reason = self._unavailable()
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
        self._prepare_stage()
        (self.stage / "dbus.conf").write_text(DBUS_CONF)

        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"ip netns add {self.name} failed: {r.stderr.strip()}")
        self._netns_created = True

        env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", ENV_MARKER: self.name, **self._holder_env()}
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
                    *(["--uts"] if self.UNSHARE_UTS else []),
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
        self._holder_ready()
        self.timings["setup"] = time.monotonic() - t0

    @staticmethod
    def _readline(stream: Any, timeout: float) -> str:
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

    def _spawn_in_ns(
        self, argv: list[str], *, env: dict[str, str], stdout: Any, stderr: Any, stdin: Any = subprocess.DEVNULL
    ) -> tuple[subprocess.Popen, int]:
        """Start argv inside the lab's net+mount(+uts)+pid namespaces. Returns (nsenter
        Popen, host PID of the real process)."""
        full = ["nsenter", *self._enter_args(), f"--pid={self._ns('pid_for_children')}", "--", *argv]
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

    def _start_dbus(self, *, required: bool) -> None:
        """The private dbus-daemon; without dbus-daemon installed: LabError if ``required``,
        else nothing."""
        assert self.stage is not None
        exe = shutil.which("dbus-daemon")
        if exe is None:
            if required:
                raise LabError("dbus=True but dbus-daemon is not installed")
            return
        t0 = time.monotonic()
        env = {"PATH": SAFE_PATH, ENV_MARKER: self.name}
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

    # -- process control ---------------------------------------------------

    def daemon_running(self) -> bool:
        return self._daemon is not None and self._daemon.poll() is None

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
        """Stop the daemon (SIGTERM, SIGKILL after 5 s). The namespaces stay."""
        with self._lock:
            self._terminate(self._daemon, self._daemon_pid)
            self._daemon = None
            self._daemon_pid = None

    def restart(self) -> None:
        self.stop()
        self.start()

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
            step(self._stop_services)
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
        # inherited DBUS_SYSTEM_BUS_ADDRESS would make networkctl/nmcli talk to the
        # HOST's daemon.
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
        """Run cmd inside the lab's net+mount(+uts) namespaces (cwd /), in the host's PID
        namespace unless RUN_IN_PID_NS.
        Raises LabCommandError (with stderr) on non-zero exit when check.
        ``env``: extra variables (DBUS_*/SYSTEMD_* of the caller are dropped)."""
        full_env = self._cmd_env(env)
        pid_ns = [f"--pid={self._ns('pid_for_children')}"] if self.RUN_IN_PID_NS else []
        argv = ["nsenter", *self._enter_args(), *pid_ns, "--", *map(str, cmd)]
        r = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=full_env,
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
        the daemon brings it up). The daemon itself decides about ``name``."""
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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} holder={self._holder.pid if self._holder else None}>"
