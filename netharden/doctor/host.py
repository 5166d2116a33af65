"""What the doctor looks at: files under a root directory (``/`` on a live host, an unpacked
image or a rendered tree otherwise) and, on a live host, the interfaces of the current
network namespace. Read-only; an optional overlay (a Plan's files and links) lets the runner
ask "what if this profile were applied" without writing anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

# what the overlay holds per target path: ("file", content) or ("link", target)
Entry = tuple[str, str]


@dataclass(frozen=True)
class Iface:
    """One interface as networkd and udev see it."""

    name: str
    ifindex: int
    kind: str | None  # rtnetlink IFLA_INFO_KIND (networkd's Kind=); None for physical NICs
    driver: str | None  # networkd's Driver= (ethtool's driver; for virtual devices their kind)
    type: str  # networkd's Type=: udev DEVTYPE, else the link type ("ether", "loopback", "none")
    mac: str | None
    master: str | None
    admin_up: bool
    operstate: str
    addr_assign_type: int | None  # /sys/class/net/IF/addr_assign_type: 0 perm, 1 random, 2 stolen, 3 set


class Host:
    """Files under ``root`` (plus an optional overlay) and, with ``live``, the interfaces of
    the network namespace this process runs in."""

    def __init__(self, root: str | os.PathLike = "/", live: bool = True, overlay: dict[str, Entry] | None = None):
        self.root = Path(root)
        self.live = live
        self.overlay = dict(overlay or {})

    # ------------------------------------------------------------------ files

    def with_overlay(self, overlay: dict[str, Entry]) -> Host:
        """The same host with ``overlay`` (target path -> entry) laid over its files."""
        host = Host(self.root, self.live, {**self.overlay, **overlay})
        if "interfaces" in self.__dict__:
            host.__dict__["interfaces"] = self.__dict__["interfaces"]
        return host

    def _real(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def kind(self, path: str) -> str | None:
        """ "file", "link", "dir", "other" or None (absent) for a target path."""
        if path in self.overlay:
            return self.overlay[path][0]
        if any(p.startswith(path.rstrip("/") + "/") for p in self.overlay):
            return "dir"
        real = self._real(path)
        if real.is_symlink():
            return "link"
        if real.is_dir():
            return "dir"
        if real.is_file():
            return "file"
        return "other" if real.exists() else None

    def readlink(self, path: str) -> str | None:
        if path in self.overlay:
            kind, value = self.overlay[path]
            return value if kind == "link" else None
        try:
            return os.readlink(self._real(path))
        except OSError:
            return None

    def masked(self, path: str) -> bool:
        """systemd's mask: a symlink to /dev/null, or an empty file (for networkd's own files)."""
        kind = self.kind(path)
        if kind == "link":
            return self.readlink(path) == "/dev/null"
        if kind == "file":
            return self.read_text(path) == ""
        return False

    def read_text(self, path: str, _depth: int = 0) -> str | None:
        """A file's text, symlinks followed inside the root ("" for /dev/null); None when it
        cannot be read."""
        if _depth > 16:
            return None
        if path in self.overlay:
            kind, value = self.overlay[path]
            if kind == "file":
                return value
        else:
            real = self._real(path)
            if not real.is_symlink():
                try:
                    return real.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    return None
            try:
                value = os.readlink(real)
            except OSError:
                return None
        if value == "/dev/null":
            return ""
        target = value if value.startswith("/") else os.path.normpath(os.path.join(os.path.dirname(path), value))
        return self.read_text(target, _depth + 1)

    def stat(self, path: str, _depth: int = 0) -> os.stat_result | None:
        """The stat of a file under the root, symlinks followed inside the root; None for a
        path the overlay provides (its mode and owner are whatever the applier gives it), for
        an absent file and for a link loop."""
        if _depth > 16 or path in self.overlay:
            return None
        real = self._real(path)
        try:
            if not real.is_symlink():
                return os.stat(real)
            value = os.readlink(real)
        except OSError:
            return None
        target = value if value.startswith("/") else os.path.normpath(os.path.join(os.path.dirname(path), value))
        return self.stat(target, _depth + 1)

    def listdir(self, path: str) -> list[str]:
        """Names in a directory (sorted), overlay included."""
        names = set()
        real = self._real(path)
        if real.is_dir() and not real.is_symlink():
            try:
                names.update(os.listdir(real))
            except OSError:
                pass
        prefix = path.rstrip("/") + "/"
        for p in self.overlay:
            if p.startswith(prefix):
                names.add(p[len(prefix) :].split("/", 1)[0])
        return sorted(names)

    def display(self, path: str) -> str:
        """How a target path is named in a finding (under the root for an image)."""
        if path in self.overlay or self.root == Path("/"):
            return path
        return str(self._real(path))

    # ------------------------------------------------------------------ live state

    @cached_property
    def interfaces(self) -> list[Iface]:
        """The interfaces of the current network namespace ([] without ``live``)."""
        if not self.live:
            return []
        ip = shutil.which("ip")
        if ip is None:
            raise RuntimeError("ip (iproute2) is not installed")
        out = subprocess.run(
            [ip, "-json", "-details", "link", "show"], capture_output=True, text=True, check=True
        ).stdout
        result = []
        for link in json.loads(out or "[]"):
            name = link["ifname"]
            kind = (link.get("linkinfo") or {}).get("info_kind")
            sys_dir = Path("/sys/class/net") / name
            devtype = None
            try:
                for line in (sys_dir / "uevent").read_text().splitlines():
                    if line.startswith("DEVTYPE="):
                        devtype = line.partition("=")[2]
            except OSError:
                pass
            driver = kind
            try:
                driver = os.path.basename(os.readlink(sys_dir / "device" / "driver"))
            except OSError:
                pass
            try:
                assign = int((sys_dir / "addr_assign_type").read_text().strip())
            except (OSError, ValueError):
                assign = None
            result.append(
                Iface(
                    name=name,
                    ifindex=int(link.get("ifindex", 0)),
                    kind=kind,
                    driver=driver,
                    type=devtype or link.get("link_type", "ether"),
                    mac=link.get("address"),
                    master=link.get("master"),
                    admin_up="UP" in link.get("flags", []),
                    operstate=link.get("operstate", "UNKNOWN"),
                    addr_assign_type=assign,
                )
            )
        return sorted(result, key=lambda i: i.name)

    def ports(self, bridge: str) -> list[str]:
        return [i.name for i in self.interfaces if i.master == bridge]

    @cached_property
    def systemd_version(self) -> int | None:
        """The systemd version of the host: ``systemctl --version`` on a live host; in an image,
        the libsystemd-shared-NNN.so it ships; None when unknown."""
        if self.live and self.root == Path("/"):
            tool = shutil.which("systemctl")
            if tool:
                proc = subprocess.run([tool, "--version"], capture_output=True, text=True)
                m = re.match(r"systemd (\d+)", proc.stdout)
                if m:
                    return int(m.group(1))
        for d in (
            "/usr/lib/systemd",
            "/lib/systemd",
            "/usr/lib/x86_64-linux-gnu/systemd",
            "/usr/lib/aarch64-linux-gnu/systemd",
        ):
            for name in self.listdir(d):
                m = re.match(r"libsystemd-shared-(\d+)", name)
                if m:
                    return int(m.group(1))
        return None
