"""The real NetworkManager 1.42 over a scratch root, for the doctor's tests: a thin wrapper of
:class:`netharden.lab.nm.NetworkManagerLab` (the lab's harness: throwaway network, mount, UTS
and PID namespaces, read-only sysfs, private dbus, overlay on /etc) that takes the root's
etc/NetworkManager, usr/lib/NetworkManager (conf.d, system-connections) and
run/NetworkManager, and adds the doctor tests' helpers (``devices``, ``settle``). The lab's
base configuration (``plugins=keyfile dns=none rc-manager=unmanaged hostname-mode=none``) is
read first, so a root's own NetworkManager.conf and conf.d files override it.
``print_config`` runs ``NetworkManager --print-config`` on a root without any daemon.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

NM_BINARY = "/usr/sbin/NetworkManager"


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
    """``NMNetns(root, work)`` where ``root`` is a scratch root holding etc/NetworkManager,
    run/NetworkManager and usr/lib/NetworkManager (any of them optional)."""

    def __init__(self, root: Path, work: Path):
        from netharden.lab.nm import NetworkManagerLab

        self.root = root
        work.mkdir(parents=True, exist_ok=True)

        def part(sub: str) -> Path | None:
            return root / sub if (root / sub).is_dir() else None

        self.lab = NetworkManagerLab(
            part("etc/NetworkManager"),
            lib_dir=part("usr/lib/NetworkManager"),
            run_dir=part("run/NetworkManager"),
            workdir=work / "lab",
        )

    def __enter__(self) -> NMNetns:
        self.lab.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def log_text(self) -> str:
        return self.lab.log_text()

    def nmcli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.lab.nmcli(*args, check=check)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.lab.ip(*args, check=check)

    def add_veth(self, name: str, peer: str) -> None:
        """A veth pair with both ends up (so NM sees carrier on ``name``)."""
        self.lab.add_veth(name, peer)
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
        self.lab.close()
