"""NetworkManager's reading of its configuration and keyfile profiles, through
:class:`~netharden.doctor.host.Host` (so ``--root`` and the ``--profile`` overlay work).

Shared by the checks ``nm-manages-container-interfaces``, ``nm-bridge-mac-not-pinned`` and
``nm-keyfile-insecure-mode``. It follows NetworkManager 1.42 (Debian 12): NetworkManager.conf(5)
and nm-settings-keyfile(5) of 1.42.4, and where those are silent NM's source (src/core/nm-config.c,
nm-config-data.c, nm-core-utils.c, settings/plugins/keyfile/); tests/test_doctor_nm_checks.py
compares the merge with ``NetworkManager --print-config`` and the device matching with the
states the real daemon gives devices in a network namespace.

The stack: :func:`is_nm_host` is true when the root has a NetworkManager binary
(/usr/sbin/NetworkManager, /usr/bin/NetworkManager) or an /etc/NetworkManager directory (the
network-manager package, and the files netharden renders for ``platform.stack:
networkmanager``, create it). The NM checks do not apply to other hosts, and the checks that
judge systemd-networkd's .network files do not apply to a NetworkManager host without
systemd-networkd (Fedora CoreOS, RHEL: nothing reads those files there); see
:func:`networkd_absent`.

Configuration (NetworkManager.conf(5) DESCRIPTION; read_entire_config() of nm-config.c):
  * Files in this order: /usr/lib/NetworkManager/conf.d/*.conf, /run/NetworkManager/conf.d/*.conf,
    the main file, /etc/NetworkManager/conf.d/*.conf. Each directory sorted by name (strcmp);
    every name ending in ".conf" counts, hidden ones included (measured). A name in /etc conf.d
    shadows the same name in /run and /usr/lib, one in /run shadows /usr/lib.
  * The main file: /etc/NetworkManager/nm-system-settings.conf if it exists (the deprecated name,
    read first for compatibility), else /etc/NetworkManager/NetworkManager.conf; none is fine.
  * A file that does not parse, or a directory named *.conf, stops NetworkManager from starting
    ("Failed to read configuration: PATH: ..."): :attr:`NMConfig.error`.
  * A file (not the main one) with ``[.config] enable=false`` is skipped; an ``enable=`` that
    is a match spec (nm-version:, env:) is counted as enabled here.
  * Merging (read_config()): each key of each group overrides the merged value. ``key+=v``
    appends the items not already there, ``key-=v`` removes items, for device-spec keys
    (main.no-auto-default, main.ignore-carrier, main.assume-ipv6ll-only,
    keyfile.unmanaged-devices, [connection*]/[device*] match-device) split and joined as
    nm_match_spec_split()/nm_match_spec_join() do, and for the string lists main.plugins,
    main.debug, logging.domains; ``key-=`` of a spec key never set leaves it set to ""
    (main.plugins without a value starts from NM's compile-time default: not modelled);
    ``+=``/``-=`` on any other key is dropped, and so is ``key +=`` (the blank belongs to the
    key). Keys ".was.*"/".set.*" and groups ".intern*" are ignored.
  * GKeyFile syntax (glib 2.74, as NM loads it): lines starting with "#" (after blanks) and
    blank lines are comments, ";" is not; "[group]" (trailing blanks allowed; a name with "[",
    "]" or control characters is an error); "key=value" with blanks around "=" dropped and
    trailing blanks of the value kept; "key[locale]=" translations are dropped; a group or key
    given twice in one file merges, the last value wins; a key before any group, or a line that
    is none of these, is an error. No continuation lines.

[device*] and [connection*] sections (NetworkManager.conf(5) "CONNECTION SECTION", "DEVICE
SECTION"; _match_section_infos_construct()/_lookup() of nm-config-data.c):
  * Every group whose name starts with "device" (resp. "connection"). Within a file they are
    considered top to bottom; across files a section first defined in a later file has higher
    priority. NM keeps a merged group where it first appeared, so a later file that sets keys of
    a section an earlier file defined changes its keys, not its place (measured with
    --print-config). The literal [device] ([connection]) is always considered last.
  * Per key: the first section (in that order) that has the key and whose ``match-device``
    matches the device (no match-device: every device) gives the value; a matching section with
    ``stop-match=yes`` ends the search even without the key. ``match-device=`` (empty) matches
    nothing. ``managed`` takes NM's booleans (yes/no, true/false, on/off, 1/0); any other value
    leaves the device as it is.
  * ``managed=0`` can be overruled over D-Bus (``nmcli device set IF managed yes``);
    ``keyfile.unmanaged-devices`` is strict and cannot (NetworkManager.conf(5) "KEYFILE
    SECTION"); ``managed=1`` beats udev's NM_UNMANAGED (85-nm-unmanaged.rules), not
    unmanaged-devices.

Device specs (NetworkManager.conf(5) "Device List Format"; nm_match_spec_device() of
nm-core-utils.c): ``*``; ``IFNAME`` (exact); ``HWADDR`` (the permanent MAC); ``interface-name:GLOB``
and ``interface-name:~GLOB`` (an exact name, or a glob with only "*" and "?": g_pattern_match_simple,
no ranges, no escaping); ``interface-name:=NAME`` (literal); ``mac:HWADDR``; ``type:TYPE``;
``driver:DRIVER`` (exact; ``DRIVER/VERSION`` with a version glob); ``except:SPEC`` (must carry a
tag: a bare name or MAC after "except:" never matches). Tags are case-insensitive. A matching
``except:`` wins over every positive spec; a list of only ``except:`` specs matches every device
none of them matches. Specs are separated by "," or ";"; blanks around a spec are dropped;
backslash escapes "," ";" "\\" and "\\s" "\\t" "\\n" "\\r" (nm_match_spec_split()).

Keyfile profiles (nm-settings-keyfile(5); nms-keyfile-plugin.c, nms-keyfile-utils.c):
  * Directories: ``keyfile.path`` (default /etc/NetworkManager/system-connections),
    /run/NetworkManager/system-connections, /usr/lib/NetworkManager/system-connections. In /etc
    any name counts except hidden (".x"), backup ("x~"), temporary (".XXXXXX": six letters or
    digits after the last dot, which also skips ".nmmeta") and certificate (".pem", ".der")
    names; in /run and /usr/lib only ``*.nmconnection``.
  * NM reads a file only when it is a regular file (symlinks followed), owned by root and
    without group or other permission bits: otherwise "File owner (N) is insecure" /
    "File permissions (644) are insecure" and the file is ignored with a warning.
  * A profile of the same UUID in /run shadows /etc, which shadows /usr/lib. Tombstones
    (.nmmeta links to /dev/null) are not read here.
  * [connection] type= ("ethernet"/"802-3-ethernet", "bridge", ...; without it the type of the
    setting section present, [ethernet] or [bridge]), interface-name=, autoconnect= (default
    yes), autoconnect-priority=; [match] interface-name= (a ";" list of fnmatch(3) globs: an
    optional element may carry "|", a mandatory one "&", "!" inverts and makes it mandatory, a
    leading backslash escapes; all mandatory ones and, if there are optional ones, one of those
    must match: nm_wildcard_match_check()); [match] driver= the same against the driver;
    [ethernet] mac-address= (the device's permanent MAC), cloned-mac-address=;
    [bridge] mac-address=.
  * :func:`can_activate`: whether a loaded profile could autoconnect on a device: autoconnect,
    a compatible type (ethernet profiles also on veths: NMDeviceVeth is an NMDeviceEthernet,
    measured: NM's "Wired connection N" profiles activate on veths), interface-name equal, [match]
    satisfied, mac-address equal.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache

from .host import Host, Iface

NM_BINARIES = ("/usr/sbin/NetworkManager", "/usr/bin/NetworkManager")
NM_ETC = "/etc/NetworkManager"
CONF_MAIN = "/etc/NetworkManager/NetworkManager.conf"
CONF_MAIN_OLD = "/etc/NetworkManager/nm-system-settings.conf"
CONF_LIB = "/usr/lib/NetworkManager/conf.d"
CONF_RUN = "/run/NetworkManager/conf.d"
CONF_ETC = "/etc/NetworkManager/conf.d"
CONNECTIONS_ETC = "/etc/NetworkManager/system-connections"
CONNECTIONS_RUN = "/run/NetworkManager/system-connections"
CONNECTIONS_LIB = "/usr/lib/NetworkManager/system-connections"
NETWORKD_BINARIES = ("/usr/lib/systemd/systemd-networkd", "/lib/systemd/systemd-networkd")

# keys whose values are device specs (_setting_is_device_spec() of nm-config.c)
_SPEC_KEYS = {("main", "no-auto-default"), ("main", "ignore-carrier"), ("main", "assume-ipv6ll-only")}
_SPEC_KEYS.add(("keyfile", "unmanaged-devices"))
# string lists (_setting_is_string_list())
_LIST_KEYS = {("main", "plugins"), ("main", "debug"), ("logging", "domains")}


def _is_spec_key(group: str, key: str) -> bool:
    return (group, key) in _SPEC_KEYS or (group.startswith(("connection", "device")) and key == "match-device")


# --------------------------------------------------------------------------- the stack


def is_nm_host(host: Host) -> bool:
    """The root has NetworkManager: its binary, or an /etc/NetworkManager directory."""
    return any(host.kind(p) in ("file", "link") for p in NM_BINARIES) or host.kind(NM_ETC) in ("dir", "link")


def not_nm_host(host: Host) -> str | None:
    """Why the NetworkManager checks do not apply (``applies()`` of those checks)."""
    if is_nm_host(host):
        return None
    return "no NetworkManager: no /usr/sbin/NetworkManager, no /etc/NetworkManager"


def networkd_absent(host: Host) -> str | None:
    """Why the checks of systemd-networkd's .network files do not apply: a NetworkManager host
    without the systemd-networkd binary (nothing reads .network files there). None otherwise
    (including a root with neither stack, such as a rendered tree: judged as networkd's)."""
    if not is_nm_host(host) or any(host.kind(p) in ("file", "link") for p in NETWORKD_BINARIES):
        return None
    return "NetworkManager host without /usr/lib/systemd/systemd-networkd: nothing reads .network files"


# --------------------------------------------------------------------------- GKeyFile


class KeyFileError(ValueError):
    """A file GKeyFile refuses, with glib's message."""


_GROUP_LINE = re.compile(r"^\[([^\]]*)\][ \t]*$")
_LOCALE_KEY = re.compile(r"^([^\[\]=]+)\[[A-Za-z0-9_.@-]+\]$")


def parse_keyfile(text: str) -> dict[str, dict[str, str]]:
    """group -> key -> raw value, in order of first appearance (g_key_file_load_from_data()
    with G_KEY_FILE_NONE); raises :class:`KeyFileError`."""
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    if text.startswith("\ufeff"):
        text = text[1:]
    for raw in text.split("\n"):
        if raw.endswith("\r"):
            raw = raw[:-1]
        line = raw.lstrip(" \t\n\r\v\f")
        if not line or line.startswith("#"):
            continue
        m = _GROUP_LINE.match(line)
        if m:
            name = m.group(1)
            if not name or any(c in name for c in "[]") or any(ord(c) < 32 or ord(c) == 127 for c in name):
                raise KeyFileError(f"Invalid group name: {name}")
            current = groups.setdefault(name, {})
            continue
        eq = line.find("=")
        if eq <= 0:
            raise KeyFileError(f"Key file contains line “{line}” which is not a key-value pair, group, or comment")
        if current is None:
            raise KeyFileError("Key file does not start with a group")
        key = line[:eq].rstrip(" \t")
        value = line[eq + 1 :].lstrip(" \t")
        if "[" in key or "]" in key:
            if _LOCALE_KEY.match(key):
                continue  # a translation: not one NetworkManager reads
            raise KeyFileError(f"Invalid key name: {key}")
        current[key] = value
    return groups


def parse_boolean(value: str | None) -> bool | None:
    """_nm_utils_ascii_str_to_bool(): None for anything else."""
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    return None


def split_list(value: str | None, sep: str = ";") -> list[str]:
    """g_key_file_get_string_list(): ``sep``-separated, "\\sep" keeps one, other escapes
    unescaped, an empty last element dropped."""
    if value is None:
        return []
    items, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            cur.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(nxt, nxt))
            i += 2
            continue
        if c == sep:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        items.append("".join(cur))
    return items


# --------------------------------------------------------------------------- device specs


_SPLIT_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
_ASCII_BLANKS = " \t\n\r\v\f"  # g_ascii_isspace()


def split_specs(value: str | None) -> list[str]:
    """nm_match_spec_split(): the specs of a device list."""
    if not value:
        return []
    pieces: list[str] = []
    cur: list[str] = []
    trailing = 0  # unescaped blanks at the end of cur
    i, n = 0, len(value)
    while i < n and value[i] in _ASCII_BLANKS:
        i += 1
    while i < n:
        c = value[i]
        if c == "\\":
            i += 1
            if i >= n:
                break
            e = value[i]
            if e in _SPLIT_ESCAPES:
                cur.append(_SPLIT_ESCAPES[e])
            elif e in ",;":
                cur.append(e)
            else:
                cur.append("\\" + e)
            i += 1
            trailing = 0
        elif c in ",;":
            if len(cur) > trailing:
                pieces.append("".join(cur[: len(cur) - trailing]))
            cur, trailing = [], 0
            i += 1
            while i < n and value[i] in _ASCII_BLANKS:
                i += 1
        else:
            cur.append(c)
            trailing = trailing + 1 if c in _ASCII_BLANKS else 0
            i += 1
    if len(cur) > trailing:
        pieces.append("".join(cur[: len(cur) - trailing]))
    return pieces


def join_specs(specs: list[str]) -> str:
    """nm_match_spec_join()."""
    out: list[str] = []
    for p in specs:
        if not p:
            continue
        s = ""
        rest = p
        if rest[0] == " ":
            s, rest = "\\s", rest[1:]
        elif rest[0] == "\t":
            s, rest = "\\t", rest[1:]
        for c in rest:
            s += {"\n": "\\n", "\r": "\\r", "\\": "\\\\", ",": "\\,", ";": "\\;"}.get(c, c)
        if s.endswith(" "):
            s = s[:-1] + "\\s"
        elif s.endswith("\t"):
            s = s[:-1] + "\\t"
        out.append(s)
    return ",".join(out)


@dataclass(frozen=True)
class NMDevice:
    """A device as nm_match_spec_device() sees it: its name, NM's type name (``type:``), its
    driver (``driver:``) and permanent MAC (``HWADDR``/``mac:``; None for devices without one,
    such as veths and bridges, whose MAC NM treats as not permanent)."""

    name: str
    type: str | None
    driver: str | None
    hwaddr: str | None = None
    description: str = ""
    mac: str | None = None  # the current MAC (a profile's [ethernet] mac-address is compared with it)


# NM type names by kernel kind, what ``type:`` compares (nm_device_get_type_description()).
# Measured with NetworkManager 1.42 in tests/test_doctor_nm_checks.py: a veth is "ethernet"
# (``type:veth`` matches none; nmcli shows TYPE ethernet, DRIVER veth), a bridge "bridge".
# Taken from NM's device classes, not measurable in this kernel: vxlan, tun, dummy, wireguard,
# ipip ("iptunnel"), openvswitch (weave's datapath: NM treats it as "generic").
NM_TYPES = {
    "veth": "ethernet",
    "bridge": "bridge",
    "vxlan": "vxlan",
    "tun": "tun",
    "dummy": "dummy",
    "wireguard": "wireguard",
    "ipip": "iptunnel",
    "openvswitch": "generic",
}


def device_from_iface(iface: Iface) -> NMDevice:
    kind = iface.kind
    if kind is None:
        nm_type = "loopback" if iface.type == "loopback" else "ethernet"
    else:
        nm_type = NM_TYPES.get(kind, "generic")
    hwaddr = iface.mac if kind is None and iface.type != "loopback" and iface.addr_assign_type == 0 else None
    return NMDevice(iface.name, nm_type, iface.driver, hwaddr, f"{kind or 'physical'} (live)", iface.mac)


MATCH, NO_MATCH, NEG_MATCH = "match", "no-match", "neg-match"


def _tag(spec: str, tag: str) -> str | None:
    """The spec without ``tag`` when it starts with it (case-insensitive: g_ascii_strncasecmp)."""
    return spec[len(tag) :] if spec[: len(tag)].lower() == tag else None


@lru_cache(maxsize=4096)
def _simple_glob(pattern: str) -> re.Pattern:
    """g_pattern_match_simple(): "*" any string, "?" one character, nothing else special."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _hwaddr_eq(spec: str, mac: str | None) -> bool:
    if mac is None:
        return False
    a = normalize_mac(spec)
    return a is not None and a == normalize_mac(mac)


def _eval(spec: str, dev: NMDevice, fuzzy: bool) -> bool:
    """match_device_eval()."""
    if spec == "*":
        return True
    rest = _tag(spec, "type:")
    if rest is not None:
        return dev.type is not None and rest == dev.type
    rest = _tag(spec, "mac:")
    if rest is not None:
        return _hwaddr_eq(rest, dev.hwaddr)
    rest = _tag(spec, "interface-name:")
    if rest is not None:
        pattern = True
        if rest.startswith("="):
            rest, pattern = rest[1:], False
        elif rest.startswith("~"):
            rest = rest[1:]
        return rest == dev.name or (pattern and _simple_glob(rest).fullmatch(dev.name) is not None)
    rest = _tag(spec, "driver:")
    if rest is not None:
        if not dev.driver:
            return False
        if "/" not in rest:
            return rest == dev.driver
        name, _, version = rest.rpartition("/")
        return dev.driver.startswith(name) and _simple_glob(version).fullmatch("") is not None
    for tag in ("s390-subchannels:", "dhcp-plugin:"):
        if _tag(spec, tag) is not None:
            return False  # not judged: no s390 devices, and a DHCP plugin is no container property
    if fuzzy:
        return _hwaddr_eq(spec, dev.hwaddr) or spec == dev.name
    return False


def spec_match(specs: list[str], dev: NMDevice) -> str:
    """nm_match_spec_device(): MATCH, NO_MATCH or NEG_MATCH."""
    has_match = has_except_match = has_except = has_plain = False
    for spec in specs:
        if not spec:
            continue
        rest = _tag(spec, "except:")
        if rest is not None:
            has_except = True
            if not has_except_match and _eval(rest, dev, fuzzy=False):
                has_except_match = True
        else:
            has_plain = True
            if not has_match and _eval(spec, dev, fuzzy=True):
                has_match = True
    if has_except and not has_plain:
        return NEG_MATCH if has_except_match else MATCH
    if has_except_match:
        return NEG_MATCH
    return MATCH if has_match else NO_MATCH


def matches(specs: list[str], dev: NMDevice) -> bool:
    return spec_match(specs, dev) == MATCH


_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


def normalize_mac(text: str | None) -> str | None:
    if not text:
        return None
    t = text.strip().lower()
    return t.replace("-", ":") if _MAC.match(t) else None


# --------------------------------------------------------------------------- NetworkManager.conf


@dataclass
class NMConfig:
    """The merged configuration: ``groups`` in NM's order, ``files`` read in order (with
    ``shadowed`` names and ``disabled`` files skipped), ``error`` when NM would refuse it."""

    groups: dict[str, dict[str, str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    shadowed: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    error: str | None = None
    source: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, key) -> last file setting it

    def value(self, group: str, key: str) -> str | None:
        return self.groups.get(group, {}).get(key)

    @property
    def unmanaged_specs(self) -> list[str]:
        return split_specs(self.value("keyfile", "unmanaged-devices"))

    @property
    def no_auto_default_specs(self) -> list[str]:
        return split_specs(self.value("main", "no-auto-default"))

    def sections(self, prefix: str) -> list[str]:
        """[device*] (``prefix`` "device") or [connection*] groups, highest priority first."""
        names = [g for g in self.groups if g.startswith(prefix)]
        ordered = [g for g in reversed(names) if g != prefix]
        return ordered + ([prefix] if prefix in self.groups else [])

    def section_value(self, prefix: str, key: str, dev: NMDevice) -> tuple[str | None, str | None]:
        """(value, section) of ``key`` for ``dev`` from the [prefix*] sections; (None, None)
        when none gives it."""
        for name in self.sections(prefix):
            sec = self.groups[name]
            value = sec.get(key)
            stop = parse_boolean(sec.get("stop-match")) is True
            if value is None and not stop:
                continue
            if "match-device" in sec and not matches(split_specs(sec["match-device"]), dev):
                continue
            return value, (name if value is not None else None)
        return None, None

    def managed_setting(self, dev: NMDevice) -> tuple[bool | None, str | None]:
        """[device*] managed= for ``dev``: (True/False, section) or (None, None)."""
        value, section = self.section_value("device", "managed", dev)
        b = parse_boolean(value)
        return (b, section) if b is not None else (None, None)

    def where(self, group: str, key: str) -> str:
        return self.source.get((group, key), "")


def _conf_names(host: Host, directory: str) -> dict[str, str]:
    """name -> path of the *.conf entries of a conf.d directory (_get_config_dir_files())."""
    if host.kind(directory) not in ("dir", "link"):
        return {}
    return {n: f"{directory}/{n}" for n in host.listdir(directory) if n.endswith(".conf")}


def load_config(host: Host) -> NMConfig:
    """read_entire_config() of NetworkManager 1.42 over the host's files."""
    cfg = NMConfig()
    lib, run, etc = (_conf_names(host, d) for d in (CONF_LIB, CONF_RUN, CONF_ETC))
    order: list[tuple[str, bool]] = []
    for name in sorted(lib):
        if name in etc or name in run:
            cfg.shadowed.append(lib[name])
        else:
            order.append((lib[name], False))
    for name in sorted(run):
        if name in etc:
            cfg.shadowed.append(run[name])
        else:
            order.append((run[name], False))
    order.append((_main_file(host), True))
    order += [(etc[name], False) for name in sorted(etc)]
    for path, is_main in order:
        kind = host.kind(path)
        if is_main and kind is None:
            continue  # "No config file found or given"
        text = host.read_text(path) if kind in ("file", "link") else None
        if text is None:
            cfg.error = f"{path}: Not a regular file" if kind == "dir" else f"{path}: cannot be read"
            return cfg
        try:
            parsed = parse_keyfile(text)
        except KeyFileError as exc:
            cfg.error = f"{path}: {exc}"
            return cfg
        if not is_main and parse_boolean(parsed.get(".config", {}).get("enable")) is False:
            cfg.disabled.append(path)
            continue
        parsed.pop(".config", None)
        cfg.files.append(path)
        _merge(cfg, parsed, path)
    return cfg


def _main_file(host: Host) -> str:
    """read_base_config(): the deprecated nm-system-settings.conf when it exists and parses
    (an invalid one only draws a warning), else NetworkManager.conf."""
    text = host.read_text(CONF_MAIN_OLD) if host.kind(CONF_MAIN_OLD) in ("file", "link") else None
    if text is not None:
        try:
            parse_keyfile(text)
            return CONF_MAIN_OLD
        except KeyFileError:
            pass
    return CONF_MAIN


def _sorted_groups(names: list[str]) -> list[str]:
    """_nm_config_sort_groups(): other groups in order, then [device*] and then [connection*]
    groups, each reversed (lowest priority first)."""
    conn = [g for g in names if g.startswith("connection")]
    dev = [g for g in names if g.startswith("device") and not g.startswith("connection")]
    rest = [g for g in names if g not in conn and g not in dev]
    return rest + dev[::-1] + conn[::-1]


def _merge(cfg: NMConfig, parsed: dict[str, dict[str, str]], path: str) -> None:
    """read_config(): lay one file over the merged configuration."""
    for group in _sorted_groups(list(parsed)):
        if group.startswith(".intern"):
            continue
        for key, value in parsed[group].items():
            if key.startswith((".was.", ".set.")) or key == ".was":
                continue
            if len(key) > 1 and key[-1] in "+-":
                base, op = key[:-1], key[-1]
                if _is_spec_key(group, base):
                    old = split_specs(cfg.groups.get(group, {}).get(base))
                    new = split_specs(value)
                    merged = [o for o in old if op == "+" or o not in new]
                    merged += [v for v in new if op == "+" and v not in old]
                    cfg.groups.setdefault(group, {})[base] = join_specs(merged)
                    cfg.source[(group, base)] = path
                elif (group, base) in _LIST_KEYS:
                    old = split_list(cfg.groups.get(group, {}).get(base), ",")
                    new = split_list(value, ",")
                    merged = [o for o in old if op == "+" or o not in new]
                    merged += [v for v in new if op == "+" and v not in old]
                    if merged:
                        cfg.groups.setdefault(group, {})[base] = ",".join(merged)
                        cfg.source[(group, base)] = path
                    else:
                        cfg.groups.get(group, {}).pop(base, None)
                continue  # other keys do not take += / -=: the assignment is dropped
            cfg.groups.setdefault(group, {})[key] = value
            cfg.source[(group, key)] = path


# --------------------------------------------------------------------------- udev


UDEV_RULE = "85-nm-unmanaged.rules"
UDEV_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d")


def udev_unmanages_veths(host: Host) -> str | None:
    """The path of NetworkManager's udev rule file when it marks veths NM_UNMANAGED (the
    stock ``ENV{ID_NET_DRIVER}=="veth", ENV{INTERFACE}!="eth[0-9]*", ENV{NM_UNMANAGED}="1"``);
    a file of the same name in an earlier directory shadows it. Only where udev runs."""
    for d in UDEV_DIRS:
        path = f"{d}/{UDEV_RULE}"
        if host.kind(path) is None:
            continue
        text = host.read_text(path) or ""
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("#"):
                continue
            if 'ENV{ID_NET_DRIVER}=="veth"' in s and 'ENV{NM_UNMANAGED}="1"' in s:
                return path
        return None
    return None


def unmanaged_by(cfg: NMConfig, dev: NMDevice, udev_rule: str | None = None) -> str | None:
    """What keeps NetworkManager away from ``dev``: "keyfile.unmanaged-devices", "[SECTION]
    managed=0", or with ``udev_rule`` (:func:`udev_unmanages_veths`) "udev (PATH)" for a veth
    no [device*] section manages; None when NM manages it."""
    if matches(cfg.unmanaged_specs, dev):
        return "keyfile.unmanaged-devices"
    managed, section = cfg.managed_setting(dev)
    if managed is False:
        return f"[{section}] managed=0"
    if managed is None and udev_rule and dev.driver == "veth" and not re.match(r"eth[0-9]", dev.name):
        return f"udev ({udev_rule})"
    return None


# --------------------------------------------------------------------------- keyfile profiles


_TYPE_ALIASES = {"802-3-ethernet": "ethernet", "802-11-wireless": "wifi", "802-11-olpc-mesh": "olpc-mesh"}
_BASE_SECTIONS = (("ethernet", "ethernet"), ("802-3-ethernet", "ethernet"), ("bridge", "bridge"), ("veth", "veth"))


@dataclass
class Profile:
    """One keyfile as NM's keyfile plugin sees it. ``ignored``: why NM does not load it (None:
    loaded); ``shadowed_by``: the file of the same UUID that NM uses instead."""

    path: str
    storage: str  # "etc", "run" or "lib"
    mode: int | None = None  # permission bits; None: not known (an overlay file)
    uid: int | None = None
    ignored: str | None = None
    groups: dict[str, dict[str, str]] = field(default_factory=dict)
    shadowed_by: str | None = None

    def get(self, group: str, key: str) -> str | None:
        return self.groups.get(group, {}).get(key)

    @property
    def id(self) -> str:
        return self.get("connection", "id") or os.path.basename(self.path)

    @property
    def uuid(self) -> str | None:
        return self.get("connection", "uuid")

    @property
    def type(self) -> str | None:
        t = self.get("connection", "type")
        if t:
            return _TYPE_ALIASES.get(t, t)
        for section, base in _BASE_SECTIONS:
            if section in self.groups:
                return base
        return None

    @property
    def interface_name(self) -> str | None:
        return self.get("connection", "interface-name") or None

    @property
    def autoconnect(self) -> bool:
        return parse_boolean(self.get("connection", "autoconnect")) is not False

    @property
    def autoconnect_priority(self) -> int:
        try:
            return int(self.get("connection", "autoconnect-priority") or 0)
        except ValueError:
            return 0

    @property
    def match_names(self) -> list[str]:
        return split_list(self.get("match", "interface-name"))

    @property
    def match_drivers(self) -> list[str]:
        return split_list(self.get("match", "driver"))

    def ethernet(self, key: str) -> str | None:
        return self.get("ethernet", key) or self.get("802-3-ethernet", key)

    @property
    def loaded(self) -> bool:
        return self.ignored is None and self.shadowed_by is None

    @property
    def catch_all(self) -> bool:
        """No interface-name, no [match] interface-name/driver and no mac-address: any
        compatible device will do."""
        return not (self.interface_name or self.match_names or self.match_drivers or self.ethernet("mac-address"))


def connection_dirs(host: Host, cfg: NMConfig | None = None) -> tuple[tuple[str, str], ...]:
    """(storage, directory) in NM's priority order for a UUID: /run, /etc (keyfile.path), /usr/lib."""
    cfg = load_config(host) if cfg is None else cfg
    etc = (cfg.value("keyfile", "path") or "").strip() or CONNECTIONS_ETC
    return (("run", CONNECTIONS_RUN), ("etc", etc.rstrip("/") or "/"), ("lib", CONNECTIONS_LIB))


def _ignored_name(name: str, storage: str) -> bool:
    """_ignore_filename() / nm_keyfile_utils_ignore_filename()."""
    if storage != "etc":
        return not (name.endswith(".nmconnection") and len(name) > len(".nmconnection"))
    if name.startswith(".") or name.endswith("~"):
        return True
    dot = name.rfind(".")
    if dot != -1 and len(name) - dot - 1 == 6 and name[dot + 1 :].isalnum() and name[dot + 1 :].isascii():
        return True  # mkstemp()'s ".XXXXXX", and ".nmmeta"
    return name.endswith((".pem", ".der"))


def permission_problem(mode: int, uid: int, regular: bool) -> str | None:
    """nms_keyfile_utils_check_file_permissions_stat() on the ``st_mode`` and owner of the file
    (symlinks followed: measured): NM's words, or None when it reads the file."""
    if not regular:
        return "file is not a regular file"
    if uid != 0:
        return f"File owner ({uid}) is insecure"
    if mode & 0o077:
        return f"File permissions ({mode:03o}) are insecure"  # NM prints st_mode whole: "100644"
    return None


def load_profiles(host: Host, cfg: NMConfig | None = None) -> list[Profile]:
    """Every file NM's keyfile plugin looks at, in /run, /etc, /usr/lib order, by name."""
    profiles: list[Profile] = []
    best: dict[str, Profile] = {}
    for storage, directory in connection_dirs(host, cfg):
        if host.kind(directory) not in ("dir", "link"):
            continue
        for name in host.listdir(directory):
            if _ignored_name(name, storage):
                continue
            path = f"{directory}/{name}"
            kind = host.kind(path)
            if kind not in ("file", "link", "dir", "other"):
                continue
            prof = Profile(path, storage)
            st = host.stat(path)
            if st is not None:
                prof.mode, prof.uid = stat.S_IMODE(st.st_mode), st.st_uid
                prof.ignored = permission_problem(st.st_mode, st.st_uid, stat.S_ISREG(st.st_mode))
            elif kind not in ("file", "link"):
                prof.ignored = "file is not a regular file"
            if prof.ignored is None:
                text = host.read_text(path)
                if text is None:
                    prof.ignored = "cannot be read"
                else:
                    try:
                        prof.groups = parse_keyfile(text)
                    except KeyFileError as exc:
                        prof.ignored = str(exc)
            if prof.ignored is None:
                prof.ignored = _invalid(prof)
            if prof.ignored is None:
                key = prof.uuid or path
                if key in best:
                    prof.shadowed_by = best[key].path
                else:
                    best[key] = prof
            profiles.append(prof)
    return profiles


def _invalid(prof: Profile) -> str | None:
    """The normalization errors NM refuses a profile for, as far as judged here (NM's words,
    measured on 1.42): no type; a bridge without interface-name (NM adds a missing [bridge] or
    [ethernet] section only to a profile that is otherwise valid)."""
    if prof.type is None:
        return "invalid connection: connection.type: property is missing"
    if prof.type == "bridge" and not prof.interface_name:
        if "bridge" not in prof.groups:
            return "invalid connection: bridge: setting required for connection of type 'bridge'"
        return "invalid connection: connection.interface-name: property is missing"
    return None


def wildcard_match(patterns: list[str], value: str) -> bool:
    """nm_wildcard_match_check() of NetworkManager 1.42."""
    has_optional = has_any_optional = False
    for p in patterns:
        inverted = mandatory = False
        if p.startswith("&"):
            p, mandatory = p[1:], True
            if p.startswith("!"):
                p, inverted = p[1:], True
        elif p.startswith("|"):
            p = p[1:]
            if p.startswith("!"):
                p, inverted = p[1:], True
        elif p.startswith("!"):
            p, inverted, mandatory = p[1:], True, True
        if p.startswith("\\"):
            p = p[1:]
        hit = fnmatchcase(value, p) != inverted
        if mandatory:
            if not hit:
                return False
        else:
            has_any_optional = True
            has_optional = has_optional or hit
    return has_optional or not has_any_optional


def _compatible_type(profile_type: str | None, dev: NMDevice) -> bool:
    if profile_type == "ethernet":
        return dev.type in ("ethernet", "veth")
    return profile_type is not None and profile_type == dev.type


def can_activate(profile: Profile, dev: NMDevice, autoconnect: bool = True) -> bool:
    """The profile is loaded and could be activated on ``dev`` (with ``autoconnect``: by NM
    on its own)."""
    if not profile.loaded or (autoconnect and not profile.autoconnect):
        return False
    if not _compatible_type(profile.type, dev):
        return False
    if profile.interface_name is not None and profile.interface_name != dev.name:
        return False
    if profile.match_names and not wildcard_match(profile.match_names, dev.name):
        return False
    if profile.match_drivers and not wildcard_match(profile.match_drivers, dev.driver or ""):
        return False
    mac = normalize_mac(profile.ethernet("mac-address"))
    if mac is not None and mac != normalize_mac(dev.hwaddr or dev.mac):
        return False
    return True


def profiles_for(profiles: list[Profile], dev: NMDevice) -> list[Profile]:
    """The loaded profiles NM could autoconnect on ``dev``."""
    return [p for p in profiles if can_activate(p, dev)]


# --------------------------------------------------------------------------- nmcli


@dataclass(frozen=True)
class NmcliDevice:
    name: str
    type: str
    state: str
    connection: str


def split_terse(line: str) -> list[str]:
    """A line of ``nmcli -t``: fields separated by ":", with "\\:" and "\\\\" escaped."""
    fields, cur, i = [], [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            cur.append(line[i + 1])
            i += 2
            continue
        if c == ":":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    fields.append("".join(cur))
    return fields


def parse_nmcli_devices(text: str) -> list[NmcliDevice]:
    """``nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device``."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = split_terse(line)
        if len(parts) >= 4:
            out.append(NmcliDevice(parts[0], parts[1], parts[2], parts[3]))
    return out


def _nm_in_this_netns() -> bool:
    """A NetworkManager process runs in this process's network namespace (nmcli reaches the NM
    of the system bus; under ``ip netns exec`` that NM manages another namespace)."""
    try:
        mine = os.readlink("/proc/self/ns/net")
    except OSError:
        return False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
                if fh.read().strip() != "NetworkManager":
                    continue
            if os.readlink(f"/proc/{pid}/ns/net") == mine:
                return True
        except OSError:
            continue
    return False


def live_devices(host: Host) -> tuple[list[NmcliDevice] | None, str]:
    """NM's devices from nmcli on a live host: (devices, "") or (None, why not)."""
    import shutil
    import subprocess

    if not host.live:
        return None, "not live"
    tool = shutil.which("nmcli")
    if tool is None:
        return None, "nmcli is not installed"
    if not _nm_in_this_netns():
        return None, "NetworkManager does not run in this network namespace"
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LANGUAGE")}
    env["LC_ALL"] = "C"
    proc = subprocess.run(
        [tool, "-t", "-f", "DEVICE,TYPE,STATE,CONNECTION", "device"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    if proc.returncode != 0:
        return None, (proc.stderr.strip() or f"nmcli exited with {proc.returncode}")
    return parse_nmcli_devices(proc.stdout), ""
