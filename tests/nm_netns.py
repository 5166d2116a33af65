"""The real NetworkManager 1.42 in a throwaway network namespace, for the doctor's tests.

Interim harness until ``netharden/lab/nm.py`` (``NetworkManagerLab``) lands: it borrows the
namespaces, the private dbus-daemon and the teardown of :class:`netharden.lab.netns.NetworkdLab`
(networkd itself is never started) and runs ``/usr/sbin/NetworkManager --no-daemon`` inside
them with

* a read-only sysfs of the namespace (the holder's; NM then does not wait for udev, so udev
  rules such as 85-nm-unmanaged.rules do not apply),
* a fresh tmpfs on /run (``/run/NetworkManager/conf.d`` and ``system-connections`` come from
  the scratch root),
* bind mounts of scratch directories over /etc/NetworkManager and /var/lib/NetworkManager and of
  an empty file over /etc/resolv.conf, ``--system-config-dir`` pointing at the scratch root's
  /usr/lib/NetworkManager/conf.d and a bind over /usr/lib/NetworkManager/system-connections,
* a base configuration with ``[main] plugins=keyfile dns=none rc-manager=unmanaged
  hostname-mode=none auth-polkit=false`` unless the scratch root brings its own
  NetworkManager.conf.

Nothing of the host's NetworkManager configuration or state is read or written. NM is
stopped (SIGTERM, then the PID namespace dies with the holder) by :meth:`NMNetns.close`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

NM_BINARY = "/usr/sbin/NetworkManager"
BASE_CONF = (
    "[main]\nplugins=keyfile\ndns=none\nrc-manager=unmanaged\nhostname-mode=none\nauth-polkit=false\n"
)


def unavailable() -> str | None:
    from netharden.lab.netns import available

    reason = available()
    if reason:
        return reason
    for tool in (NM_BINARY, "nmcli", "dbus-daemon"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install network-manager dbus)"
    return None


def print_config(root: Path) -> subprocess.CompletedProcess:
    """``NetworkManager --print-config`` over the NetworkManager.conf files of a scratch root:
    in a private mount namespace, /etc/NetworkManager is the root's, /run a tmpfs holding the
    root's /run/NetworkManager, the system config dir the root's /usr/lib/NetworkManager/conf.d;
    no intern config. Does not start the daemon."""
    script = r"""
set -e
R=$1
mount -t tmpfs nhpc /run
mkdir -p /run/NetworkManager "$R/etc/NetworkManager" "$R/usr/lib/NetworkManager/conf.d"
if [ -d "$R/run/NetworkManager" ]; then cp -a "$R/run/NetworkManager/." /run/NetworkManager/; fi
mount --bind "$R/etc/NetworkManager" /etc/NetworkManager
exec "$2" --print-config --system-config-dir="$R/usr/lib/NetworkManager/conf.d" --intern-config=
"""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "nhpc", str(root), NM_BINARY],
        capture_output=True,
        text=True,
        timeout=60,
    )


def parse_print_config(text: str) -> list[tuple[str, dict[str, str]]]:
    """The groups NetworkManager printed (in its order) with their keys; commented defaults,
    groups without keys and main.configure-and-quit (the command line's) are left out."""
    groups: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            groups.append((line[1:-1], {}))
            continue
        key, _, value = line.partition("=")
        groups[-1][1][key] = value
    groups[0][1].pop("configure-and-quit", None) if groups and groups[0][0] == "main" else None
    return [(g, keys) for g, keys in groups if keys]


class NMNetns:
    """``NMNetns(root)`` where ``root`` is a scratch root holding etc/NetworkManager,
    run/NetworkManager and usr/lib/NetworkManager (any of them optional)."""

    def __init__(self, root: Path, work: Path):
        from netharden.lab.netns import NetworkdLab

        self.root = root
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        (work / "net").mkdir(exist_ok=True)
        self.lab = NetworkdLab(work / "net", dbus=True, start=False)
        self.log = work / "NetworkManager.log"
        self._nm = None

    def __enter__(self) -> NMNetns:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _stage(self, sub: str) -> Path:
        """A world-readable copy of root/sub (modes and owners kept) in the work dir."""
        src = self.root / sub
        dst = self.work / "stage" / sub
        if dst.exists():
            shutil.rmtree(dst)
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
            for dirpath, dirnames, filenames in os.walk(src):
                for name in dirnames + filenames:
                    st = os.lstat(os.path.join(dirpath, name))
                    os.lchown(dst / os.path.relpath(os.path.join(dirpath, name), src), st.st_uid, st.st_gid)
        else:
            dst.mkdir(parents=True)
        for d in (self.work, self.work / "stage", *dst.parents, dst):
            if d.is_relative_to(self.work):
                d.chmod(0o755)
        return dst

    def start(self) -> None:
        lab = self.lab
        lab.setup()
        lab._start_dbus(required=True)
        etc = self._stage("etc/NetworkManager")
        if not (etc / "NetworkManager.conf").exists():
            (etc / "NetworkManager.conf").write_text(BASE_CONF)
        run = self._stage("run/NetworkManager")
        lib_conf = self._stage("usr/lib/NetworkManager/conf.d")
        lib_conn = self._stage("usr/lib/NetworkManager/system-connections")
        varlib = self.work / "var-lib-nm"
        varlib.mkdir(exist_ok=True)
        resolv = self.work / "resolv.conf"
        resolv.write_text("")
        lab.run("mkdir", "-p", "/run/NetworkManager")
        lab.run("cp", "-a", f"{run}/.", "/run/NetworkManager/")
        for src, dst in ((etc, "/etc/NetworkManager"), (varlib, "/var/lib/NetworkManager"), (resolv, "/etc/resolv.conf")):
            lab.run("mount", "--bind", str(src), dst)
        if os.path.isdir("/usr/lib/NetworkManager/system-connections"):
            lab.run("mount", "--bind", str(lib_conn), "/usr/lib/NetworkManager/system-connections")
        log = open(self.log, "ab")
        try:
            self._nm = lab.popen(
                NM_BINARY,
                "--no-daemon",
                "--debug",
                "--log-level=DEBUG",
                f"--system-config-dir={lib_conf}",
                "--intern-config=",
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 20
        while True:
            done = self.nmcli("-t", "-f", "RUNNING,STARTUP", "general", check=False)
            if done.returncode == 0 and done.stdout.strip().startswith("running"):
                break
            if self._nm.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"NetworkManager did not start:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def nmcli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.lab.run("nmcli", *args, check=check)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.lab.ip(*args, check=check)

    def add_veth(self, name: str, peer: str) -> None:
        """A veth pair with both ends up (so NM sees carrier on ``name``)."""
        self.ip("link", "add", name, "type", "veth", "peer", "name", peer)
        self.ip("link", "set", peer, "up")
        self.ip("link", "set", name, "up")

    def devices(self) -> dict[str, tuple[str, str, str]]:
        """name -> (TYPE, STATE, CONNECTION) of ``nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device``."""
        from netharden.doctor.nm_config import parse_nmcli_devices

        out = self.nmcli("-t", "-f", "DEVICE,TYPE,STATE,CONNECTION", "device").stdout
        return {d.name: (d.type, d.state, d.connection) for d in parse_nmcli_devices(out)}

    def settle(self, names: list[str], timeout: float = 15.0) -> dict[str, tuple[str, str, str]]:
        """Wait until NM lists every device in ``names``, give it half a second to apply its
        configuration to them, and return the devices."""
        deadline = time.monotonic() + timeout
        while True:
            devices = self.devices()
            if all(n in devices for n in names) or time.monotonic() > deadline:
                time.sleep(0.5)  # a device shows up before NM has applied its configuration
                return self.devices()
            time.sleep(0.1)

    def close(self) -> None:
        try:
            if self._nm is not None:
                self.lab._terminate(self._nm, next(iter(_children(self._nm.pid)), None), 5.0)
                self.lab._bg.remove(self._nm)
                self._nm = None
        finally:
            self.lab.close()


def _children(pid: int) -> list[int]:
    from netharden.lab import cleanup

    return cleanup.children(pid)
