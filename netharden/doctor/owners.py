"""Who else configures a NIC: ifupdown and NetworkManager, read from a host's files.

One implementation for the doctor (``nic-owned-by-other-manager``, ``stack-not-running``) and the
role's preflight on the controller (plugins/action/netharden_preflight.py lays the files it
gathered from the managed host over an empty root: a :class:`~netharden.doctor.host.Host`
overlay, so every read below goes through ``Host``).

ifupdown (interfaces(5), ifupdown 0.8 as Debian 12 ships it):

* ``/etc/network/interfaces`` and what it includes: ``source PATTERN`` (a glob, sorted; a
  relative pattern is relative to the directory of the file that names it) and
  ``source-directory DIR`` (the files of DIR whose names are only letters, digits, ``_`` and
  ``-``, like run-parts). An include that matches nothing is skipped (ifupdown does too).
* A line whose first non-blank character is ``#`` is a comment (no end-of-line comments); a
  line ending in ``\\`` continues on the next. Stanzas start with ``iface``, ``mapping``,
  ``auto``, ``allow-*``, ``source``, ``source-directory``, ``no-auto-down``, ``no-scripts``,
  ``rename``; other lines are options of the ``iface``/``mapping`` stanza above them.
* ``iface NAME FAMILY METHOD`` configures NAME (an alias ``eth0:1`` configures eth0, a VLAN
  ``eth0.100`` is an interface of its own); ifupdown brings it up at boot when ``auto NAME``
  or ``allow-auto NAME`` (networking.service: ``ifup -a``) or ``allow-hotplug NAME`` (udev:
  ``ifup@NAME.service``) names it. A stanza nothing brings up is reported as such, not as an
  owner: it only applies when someone runs ``ifup NAME``.
* ifupdown counts only when it is installed (``/sbin/ifup``); the loopback is never a NIC.

NetworkManager (the readers of nm_config.py, NetworkManager 1.42): when NetworkManager is
installed and its service is enabled (or, live, active), a NIC is NetworkManager's unless its
configuration leaves it unmanaged (``keyfile.unmanaged-devices``, ``[device*] managed=0``):
a keyfile that can autoconnect on it (``interface-name=``, ``[match]``, ``mac-address=``, or
none of them: any ethernet device) owns it, else NetworkManager's own "Wired connection"
profile does unless ``main.no-auto-default`` covers it. ifcfg-rh files
(/etc/sysconfig/network-scripts/ifcfg-*: ``DEVICE=``/``HWADDR=``) count when the ifcfg-rh
plugin is on (``main.plugins``).

Systemd unit state (:func:`unit_state`): from the files, as ``systemctl is-enabled`` would
say: ``masked`` (a link to /dev/null, or an empty file, in /etc/systemd/system or
/run/systemd/system), ``enabled`` (a ``*.wants``/``*.requires`` link or an alias in /etc, /run,
/run/systemd/generator*, /usr/lib or /lib), ``disabled`` (only the unit file), ``absent``.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .host import Host
from .nm_config import (
    NMDevice,
    can_activate,
    is_nm_host,
    load_config,
    load_profiles,
    matches,
    normalize_mac,
    unmanaged_by,
)

INTERFACES = "/etc/network/interfaces"
IFUP = ("/sbin/ifup", "/usr/sbin/ifup")
NM_SERVICE = "NetworkManager.service"
IFCFG_DIR = "/etc/sysconfig/network-scripts"

UNIT_DIRS_MASK = ("/etc/systemd/system", "/run/systemd/system")
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/run/systemd/generator",
    "/run/systemd/generator.early",
    "/run/systemd/generator.late",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
NETPLAN_GENERATORS = ("/usr/lib/systemd/system-generators/netplan", "/lib/systemd/system-generators/netplan")

_STANZAS = {"iface", "mapping", "auto", "source", "source-directory", "no-auto-down", "no-scripts", "rename"}
_RUN_PARTS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Claim:
    """A NIC another manager configures: ``manager`` ("ifupdown", "NetworkManager"), the
    interface name or MAC it names (None: any ethernet NIC), where (``path``, ``line``; line
    0: no line, e.g. NetworkManager's in-memory default profile), what the line says, and
    what brings it up (``by``: "auto eth0 (line 9)", "autoconnect", ...)."""

    manager: str
    ifname: str | None
    mac: str | None
    path: str
    line: int
    text: str
    by: str = ""

    def where(self) -> str:
        """``/etc/network/interfaces:12: iface eth0 inet dhcp``."""
        return f"{self.path}:{self.line}: {self.text}" if self.line else f"{self.path}: {self.text}"

    def covers(self, name: str, mac: str | None = None) -> bool:
        """Whether this claim is about the NIC ``name`` (with permanent MAC ``mac``)."""
        if self.mac is not None:
            return mac is not None and normalize_mac(mac) == self.mac and (self.ifname in (None, name))
        return self.ifname is None or self.ifname == name


# ----------------------------------------------------------------------------- ifupdown


@dataclass
class Stanza:
    """An ``iface`` stanza: its lines are ``line`` .. ``end`` (1-based, inclusive) of ``path``."""

    name: str
    family: str
    method: str
    path: str
    line: int
    end: int
    text: str


@dataclass
class Ifupdown:
    """What ifupdown reads: the ``iface`` stanzas, which names ``auto``/``allow-*`` lines
    bring up (name -> (path, line, text)), the files read in order, and problems (an include
    that cannot be read, a loop)."""

    stanzas: list[Stanza] = field(default_factory=list)
    brought_up: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, text) of each logical line: continuations joined, comments
    and blank lines dropped (ifupdown's get_line())."""
    out: list[tuple[int, int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = number
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending).strip()
        pending = []
        if joined:
            out.append((start, number, joined))
    if pending:
        joined = " ".join(part.strip() for part in pending).strip()
        if joined:
            out.append((start, start + len(pending) - 1, joined))
    return out


def expand(host: Host, pattern: str) -> list[str]:
    """The paths a ``source`` glob names (glob(3): sorted, hidden names only when the pattern
    spells the dot)."""
    if not _GLOB.search(pattern):
        return [pattern] if host.kind(pattern) in ("file", "link") else []
    parts = [p for p in pattern.split("/") if p]
    paths = ["/"]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        nxt = []
        for base in paths:
            if _GLOB.search(part):
                for name in host.listdir(base):
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(posixpath.join(base, name))
            else:
                nxt.append(posixpath.join(base, part))
        paths = [p for p in nxt if host.kind(p) in (("file", "link") if last else ("dir", "link"))]
    return sorted(paths)


def read_ifupdown(host: Host, path: str = INTERFACES) -> Ifupdown:
    """ifupdown's configuration under ``host``, from ``path`` and its includes."""
    result = Ifupdown()
    _read(host, path, result, ())
    return result


def _read(host: Host, path: str, result: Ifupdown, stack: tuple[str, ...]) -> None:
    if path in stack:
        result.problems.append(f"{path}: included from itself ({' -> '.join(stack)})")
        return
    text = host.read_text(path)
    if text is None:
        if stack:  # a missing main file is no ifupdown configuration at all
            result.problems.append(f"{path}: cannot be read")
        return
    result.files.append(path)
    directory = posixpath.dirname(path)
    current: Stanza | None = None
    for first, last, line in logical_lines(text):
        words = line.split()
        keyword = words[0]
        if keyword in _STANZAS or keyword.startswith("allow-"):
            current = None
        if keyword == "iface" and len(words) >= 4:
            current = Stanza(words[1], words[2], words[3], path, first, last, line)
            result.stanzas.append(current)
        elif keyword in ("auto", "allow-auto", "allow-hotplug"):
            for name in words[1:]:
                result.brought_up.setdefault(name, (path, first, f"{keyword} {name}"))
        elif keyword in ("source", "source-directory"):
            for arg in words[1:]:
                target = arg if arg.startswith("/") else posixpath.join(directory, arg)
                if keyword == "source":
                    for found in expand(host, target):
                        _read(host, found, result, (*stack, path))
                elif host.kind(target) in ("dir", "link"):
                    for name in host.listdir(target):
                        if _RUN_PARTS_NAME.match(name):
                            _read(host, posixpath.join(target, name), result, (*stack, path))
        elif current is not None and keyword not in _STANZAS and not keyword.startswith("allow-"):
            current.end = last


def nic_name(stanza_name: str) -> str:
    """The interface an ``iface`` stanza configures: ``eth0:1`` is an alias of eth0."""
    return stanza_name.split(":", 1)[0]


def ifupdown_installed(host: Host) -> bool:
    return any(host.kind(p) in ("file", "link") for p in IFUP)


def ifupdown_claims(host: Host, config: Ifupdown | None = None) -> list[Claim]:
    """The NICs ifupdown brings up at boot (one claim per ``iface`` stanza of a NIC that an
    ``auto``/``allow-*`` line names); [] when ifupdown is not installed."""
    if not ifupdown_installed(host):
        return []
    config = read_ifupdown(host) if config is None else config
    out = []
    for stanza in config.stanzas:
        nic = nic_name(stanza.name)
        if nic == "lo" or stanza.method == "loopback":
            continue
        up = config.brought_up.get(stanza.name) or config.brought_up.get(nic)
        if up is None:
            continue
        path, line, text = up
        by = f"{text} ({host.display(path)}:{line})"
        out.append(Claim("ifupdown", nic, None, host.display(stanza.path), stanza.line, stanza.text, by))
    return out


def _remove_names(line: str, names: set[str]) -> str | None:
    words = line.split()
    kept = [w for w in words[1:] if nic_name(w) not in names]
    if len(kept) == len(words) - 1:
        return line
    return " ".join([words[0], *kept]) if kept else None


def release(text: str, names: set[str]) -> tuple[str, str]:
    """``text`` (one ifupdown file) without the ``iface`` stanzas of the NICs ``names``
    (aliases included) and without those names on ``auto``/``allow-*`` lines; and the lines
    taken out, for the backup. Comments and every other stanza stay as they are."""
    lines = text.splitlines(keepends=True)
    drop: set[int] = set()  # 1-based line numbers
    rewrite: dict[int, str | None] = {}
    current: str | None = None
    for first, last, line in logical_lines(text):
        words = line.split()
        keyword = words[0]
        is_stanza = keyword in _STANZAS or keyword.startswith("allow-")
        if is_stanza:
            current = None
        if keyword == "iface" and len(words) >= 2 and nic_name(words[1]) in names:
            current = words[1]
            drop.update(range(first, last + 1))
        elif keyword in ("auto", "allow-auto", "allow-hotplug") or keyword.startswith("allow-"):
            new = _remove_names(line, names)
            if new != line:
                rewrite[first] = new
                drop.update(range(first + 1, last + 1))
        elif current is not None and not is_stanza:
            drop.update(range(first, last + 1))
    kept, removed = [], []
    for number, raw in enumerate(lines, 1):
        if number in rewrite:
            removed.append(raw)
            if rewrite[number] is not None:
                kept.append(f"{rewrite[number]}\n")
        elif number in drop:
            removed.append(raw)
        else:
            kept.append(raw)
    return "".join(kept), "".join(removed)


# ----------------------------------------------------------------------------- systemd units


def unit_state(host: Host, name: str) -> str:
    """``masked``, ``enabled``, ``disabled`` or ``absent`` for unit ``name``, from the files."""
    for d in UNIT_DIRS_MASK:
        if host.masked(f"{d}/{name}"):
            return "masked"
    if enabled_by(host, name):
        return "enabled"
    if any(host.kind(f"{d}/{name}") in ("file", "link") for d in UNIT_DIRS):
        return "disabled"
    return "absent"


def enabled_by(host: Host, name: str) -> list[str]:
    """The links that enable ``name``: ``*.wants``/``*.requires`` entries and aliases of it in
    the unit directories (and, for systemd-networkd.service, netplan's generator when
    /etc/netplan has YAML files: it enables networkd at every boot)."""
    out = []
    for d in UNIT_DIRS:
        if host.kind(d) not in ("dir", "link"):
            continue
        for entry in host.listdir(d):
            if entry.endswith((".wants", ".requires")):
                path = f"{d}/{entry}/{name}"
                if host.kind(path) in ("link", "file") and not host.masked(path):
                    out.append(path)
            elif entry != name and host.kind(f"{d}/{entry}") == "link":
                target = host.readlink(f"{d}/{entry}") or ""
                if posixpath.basename(target) == name and d.startswith("/etc"):
                    out.append(f"{d}/{entry}")
    if name == "systemd-networkd.service" and any(host.kind(g) in ("file", "link") for g in NETPLAN_GENERATORS):
        if any(n.endswith(".yaml") for n in host.listdir("/etc/netplan")):
            out.append(f"{NETPLAN_GENERATORS[0]} (netplan's generator, /etc/netplan/*.yaml)")
    return out


def live_state(host: Host, name: str) -> tuple[str, str] | None:
    """(``systemctl is-enabled``, ``systemctl is-active``) of ``name`` on the live host this
    runs on; None with --root or where systemd is not PID 1."""
    tool = shutil.which("systemctl")
    if not host.live or host.root != Path("/") or tool is None or not Path("/run/systemd/system").is_dir():
        return None
    states = []
    for verb in ("is-enabled", "is-active"):
        proc = subprocess.run([tool, verb, name], capture_output=True, text=True)
        states.append((proc.stdout.strip().splitlines() or ["unknown"])[0])
    return states[0], states[1]


# ----------------------------------------------------------------------------- NetworkManager


def nm_running(host: Host, active: bool | None = None) -> bool:
    """NetworkManager is installed and runs (``active``: what the live host says, when known)
    or its service is enabled."""
    if not is_nm_host(host):
        return False
    if active is not None:
        return active or unit_state(host, NM_SERVICE) == "enabled"
    return unit_state(host, NM_SERVICE) == "enabled"


def _line_of(text: str | None, *keys: str) -> int:
    if not text:
        return 0
    for number, raw in enumerate(text.splitlines(), 1):
        key = raw.split("=", 1)[0].strip()
        if key in keys:
            return number
    return 1


def nm_claims(host: Host, nics: list[NMDevice], active: bool | None = None) -> list[Claim]:
    """The NICs (of ``nics``; with none known, the ones keyfiles name) NetworkManager takes."""
    if not nm_running(host, active):
        return []
    cfg = load_config(host)
    profiles = [p for p in load_profiles(host, cfg) if p.loaded]
    out: list[Claim] = []
    if not nics:  # --root: the NICs the keyfiles name
        for prof in profiles:
            if prof.type != "ethernet" or not prof.autoconnect:
                continue
            mac = normalize_mac(prof.ethernet("mac-address"))
            text = host.read_text(prof.path)
            line = _line_of(text, "interface-name", "mac-address")
            what = (
                f"interface-name={prof.interface_name}"
                if prof.interface_name
                else (f"mac-address={mac}" if mac else "no interface-name or mac-address: any ethernet NIC")
            )
            dev = NMDevice(prof.interface_name or "", "ethernet", None, mac, mac=mac)
            if prof.interface_name and unmanaged_by(cfg, dev):
                continue
            out.append(
                Claim("NetworkManager", prof.interface_name, mac, host.display(prof.path), line, what, "autoconnect")
            )
        out += ifcfg_claims(host, cfg.value("main", "plugins") or "")
        return out
    for dev in nics:
        if unmanaged_by(cfg, dev):
            continue
        owning = [p for p in profiles if can_activate(p, dev)]
        for prof in owning:
            text = host.read_text(prof.path)
            line = _line_of(text, "interface-name", "mac-address")
            what = f"[connection] id={prof.id} can autoconnect on {dev.name}"
            out.append(Claim("NetworkManager", dev.name, None, host.display(prof.path), line, what, "autoconnect"))
        if not owning and dev.type == "ethernet" and not matches(cfg.no_auto_default_specs, dev):
            out.append(
                Claim(
                    "NetworkManager",
                    dev.name,
                    None,
                    "NetworkManager",
                    0,
                    f'creates "Wired connection" for {dev.name} (main.no-auto-default does not cover it)',
                    "auto-default",
                )
            )
    ifcfg = ifcfg_claims(host, cfg.value("main", "plugins") or "")
    out += [c for c in ifcfg if any(c.covers(d.name, d.hwaddr or d.mac) for d in nics)]
    return out


def ifcfg_claims(host: Host, plugins: str) -> list[Claim]:
    """ifcfg-rh files with ONBOOT not "no" (only when the ifcfg-rh plugin is configured)."""
    if "ifcfg-rh" not in plugins:
        return []
    out = []
    for name in host.listdir(IFCFG_DIR):
        if not name.startswith("ifcfg-") or name.endswith((".bak", "~", ".orig", ".rpmnew", ".rpmsave")):
            continue
        path = f"{IFCFG_DIR}/{name}"
        text = host.read_text(path) or ""
        values: dict[str, tuple[int, str]] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            key, sep, value = raw.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = (number, value.strip().strip("\"'"))
        if values.get("ONBOOT", (0, "yes"))[1].lower() in ("no", "false", "0"):
            continue
        device = values.get("DEVICE", (0, name.removeprefix("ifcfg-")))
        if device[1] == "lo":
            continue
        mac = normalize_mac(values["HWADDR"][1]) if "HWADDR" in values else None
        line = device[0] or (values["HWADDR"][0] if "HWADDR" in values else 1)
        out.append(Claim("NetworkManager", device[1], mac, host.display(path), line, f"DEVICE={device[1]}", "ifcfg-rh"))
    return out
