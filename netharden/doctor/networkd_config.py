"""systemd-networkd's configuration read the way networkd (and udev, for ``.link``) reads it,
through :class:`~netharden.doctor.host.Host` (so ``--root`` and the ``--profile`` overlay work).

Shared by the checks ``catchall-network``, ``vendor-docker-network``, ``veth-mac-policy`` and
``foreign-routes``. Everything here follows systemd 252 (Debian 12) unless a version gate says
otherwise; the sources are cited where a rule comes from them.

Files (``conf_files_list_strv()`` over NETWORK_DIRS, src/basic/conf-files.c):
  * ``.network``/``.link``/``.netdev`` files from /etc, /run, /usr/local/lib, /usr/lib and /lib
    ``systemd/network``; /lib is skipped when it (or /lib/systemd, /lib/systemd/network) is a
    symlink (merged /usr: the same directory twice). A name in an earlier directory shadows the
    same name in a later one; all files are then sorted together by file name (byte order) and
    the FIRST file whose [Match] matches an interface decides (networkd: link_get_network();
    udev: link_get_config()). Hidden names (".x.network") and directories are not files.
  * A masked file (symlink to /dev/null, or an empty file: ``null_or_empty_path()``) is skipped,
    and hides the lower files of its name.
  * Drop-ins ``NAME.network.d/*.conf`` (``.link.d``) from every directory, whatever directory the
    file itself lies in; shadowed by drop-in name like the files, applied in drop-in name order
    after the file; a masked drop-in is skipped.
  * A file networkd refuses to parse (an invalid section header "[Match") is not loaded.

INI syntax (src/shared/conf-parser.c; the corner cases measured against networkd 252 by
tests/test_doctor_networkd_config.py): lines are stripped of blanks; "#" and ";" start comment
lines, which are skipped even between continuation lines and never continue themselves; a line
ending in an odd number of backslashes continues on the next (the backslash becomes a blank; an
empty line ends it); a line without "=" is ignored; "[Section]" switches section (case-sensitive,
unknown sections ignored, several [Match] sections add up); assignments before any section are
ignored; keys and values are stripped; each file (and each drop-in) starts outside any section.
Lists accumulate over repeated keys and an empty assignment ("Name=") resets the list; a boolean
takes its last valid value.

[Match] (src/shared/net-condition.c, net_match_config() and net_condition_test_strv()):
  * Name=, Kind=, Driver=, Type=, Path=, OriginalName= (.link) are lists of fnmatch(3) globs. A
    "!" at the start of an assignment negates every word of that assignment ("Driver=!veth
    bridge" excludes both); a later word may carry its own "!". A list matches when no negated
    glob matches and, if it has a positive glob, one positive glob matches. A missing attribute
    (a physical NIC has no Kind) matches only a list of negated globs ("Kind=!*").
  * Name= words that are not valid interface names are dropped (ifname_valid_full(): ":", "/",
    "%", blanks, "." / "..", "all", "default", numeric, too long; ".link" OriginalName= keeps
    the 15-character limit, .network Name= allows alternative names up to 127).
  * MACAddress= / PermanentMACAddress=: the interface's address must be in the set.
  * Property=KEY=GLOB: every positive one must match a udev property, a negated one must not.
  * WLANInterfaceType=, SSID=, BSSID=: never match a non-wireless interface.
  * Host=, Virtualization=, KernelCommandLine=, KernelVersion=, Architecture=, Credential=,
    Firmware= test the system, not the interface: counted as TRUE (they hold on the host the file
    was written for; the quarantine judges a host-only [Match] as a catch-all the same way).
  * Kind= exists from systemd 251 (NEWS 251): before, networkd ignores it ("Unknown key"), so the
    file matches without it. PermanentMACAddress= from 245.
  * A [Match] without any condition (no interface condition and no host condition, e.g. an empty
    or commented-out file, or all keys reset) makes networkd >= 245 ignore the file ("No valid
    settings found in the [Match] section, ignoring file"; NEWS 245: warned since 243, rejected
    since 245); before 245 such a file matched every interface. Unknown version: modern.

networkd.conf: /etc/systemd/networkd.conf (later systemd also read /run, /usr/local/lib,
/usr/lib for the main file when /etc has none) then ``networkd.conf.d/*.conf`` drop-ins from
/etc, /run, /usr/local/lib, /usr/lib (shadowed by name, applied in name order).
[Network] ManageForeignRoutes= (246) and ManageForeignRoutingPolicyRules= (249) default to yes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from .host import Host, Iface

NETWORK_DIRS = (
    "/etc/systemd/network",
    "/run/systemd/network",
    "/usr/local/lib/systemd/network",
    "/usr/lib/systemd/network",
    "/lib/systemd/network",
)
NETWORKD_CONF = "/etc/systemd/networkd.conf"
NETWORKD_CONF_MAIN = (
    NETWORKD_CONF,
    "/run/systemd/networkd.conf",
    "/usr/local/lib/systemd/networkd.conf",
    "/usr/lib/systemd/networkd.conf",
)
NETWORKD_CONF_DIRS = (
    "/etc/systemd/networkd.conf.d",
    "/run/systemd/networkd.conf.d",
    "/usr/local/lib/systemd/networkd.conf.d",
    "/usr/lib/systemd/networkd.conf.d",
)

HOST_CONDITIONS = (
    "Host",
    "Virtualization",
    "KernelCommandLine",
    "KernelVersion",
    "Architecture",
    "Credential",
    "Firmware",
)
# list-valued interface conditions per file type (the [Match] keys of networkd-network-gperf.gperf
# and link-config-gperf.gperf, 252)
_GLOB_KEYS = {
    ".network": ("Name", "Kind", "Driver", "Type", "Path", "WLANInterfaceType", "SSID"),
    ".link": ("OriginalName", "Kind", "Driver", "Type", "Path"),
}
_MAC_KEYS = {".network": ("MACAddress", "PermanentMACAddress", "BSSID"), ".link": ("MACAddress", "PermanentMACAddress")}
# first systemd version that knows a [Match] key (older ones ignore it as unknown)
KEY_SINCE = {"Kind": 251, "PermanentMACAddress": 245, "Firmware": 249, "Credential": 252}
EMPTY_MATCH_IGNORED_SINCE = 245
MANAGE_FOREIGN_ROUTES_SINCE = 246
MANAGE_FOREIGN_RULES_SINCE = 249

_BLANKS = " \t\n\r"
_TRUE = {"1", "yes", "y", "true", "t", "on"}
_FALSE = {"0", "no", "n", "false", "f", "off"}


def parse_boolean(value: str) -> bool | None:
    """systemd's parse_boolean(); None for anything else (the assignment is then ignored)."""
    v = value.lower()
    return True if v in _TRUE else False if v in _FALSE else None


# --------------------------------------------------------------------------- INI


_LINE_END = re.compile(r"\r\n|\r|\n|\0")  # read_line(): any of these ends a line


@dataclass(frozen=True)
class Assignment:
    """One assignment as :func:`parse_ini_located` read it, and where: ``text[start:end]`` are the
    lines it was read from, line ends included (a continued assignment spans several, with the
    comment lines between them); ``header`` is the offset just after its section header's line."""

    section: str
    key: str
    value: str
    start: int
    end: int
    header: int


def parse_ini(text: str) -> list[tuple[str, str, str]] | None:
    """(section, key, value) of every assignment in ``text``, in order, the way config_parse()
    reads it; None when networkd refuses the file (an invalid section header)."""
    located = parse_ini_located(text)
    return None if located is None else [(a.section, a.key, a.value) for a in located]


def parse_ini_located(text: str) -> list[Assignment] | None:
    """:func:`parse_ini` with the place of each assignment in ``text`` (for a caller that
    rewrites the file)."""
    out: list[Assignment] = []
    section: str | None = None
    header = 0
    for line, start, end in _logical_lines(text):
        line = line.strip(_BLANKS)
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 2:
                return None
            section, header = line[1:-1], end
            continue
        if section is None or "=" not in line:
            continue  # outside a section, or no "=": the line is ignored
        key, _, value = line.partition("=")
        key = key.strip(_BLANKS)
        if key:
            out.append(Assignment(section, key, value.strip(_BLANKS), start, end, header))
    return out


def _physical_lines(text: str) -> Iterator[tuple[str, int, int]]:
    """(line, start, end) of each line; ``end`` is after its line end."""
    start = 0
    for m in _LINE_END.finditer(text):
        yield text[start : m.start()], start, m.end()
        start = m.end()
    if start < len(text):
        yield text[start:], start, len(text)


def _logical_lines(text: str) -> Iterator[tuple[str, int, int]]:
    """(line, start, end) of each logical line: continuation lines joined, comment lines dropped."""
    continuation: str | None = None
    start = end = 0
    for number, (raw, begin, stop) in enumerate(_physical_lines(text)):
        if number == 0 and raw.startswith("\ufeff"):
            raw = raw[1:]
        if raw.strip(_BLANKS)[:1] in ("#", ";"):
            continue  # a comment line neither starts nor ends a continuation (measured on 252)
        if continuation is None:
            start, line = begin, raw
        else:
            line = continuation + raw
        end = stop
        if _odd_backslashes(line):
            continuation = line[:-1] + " "
            continue
        continuation = None
        yield line, start, end
    if continuation is not None:
        yield continuation, start, end


def _odd_backslashes(line: str) -> bool:
    n = len(line) - len(line.rstrip("\\"))
    return n % 2 == 1


# --------------------------------------------------------------------------- words and globs


def split_words(value: str, unquote: bool) -> list[str]:
    """extract_first_word(): blank-separated words. ``unquote`` (EXTRACT_UNQUOTE|
    EXTRACT_RETAIN_ESCAPE, Kind=/Driver=/Type=/Path=): quotes group and are removed, backslashes
    are kept for fnmatch. Without it (flags 0, Name=/OriginalName=): quotes are ordinary
    characters and a backslash takes the next character literally."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    quote = None
    i = 0
    while i < len(value):
        ch = value[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and i + 1 < len(value):
                cur.append(ch + value[i + 1])
                i += 1
            else:
                cur.append(ch)
        elif ch in _BLANKS:
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        elif ch == "\\" and i + 1 < len(value):
            cur.append(ch + value[i + 1] if unquote else value[i + 1])
            in_word = True
            i += 1
        elif unquote and ch in "'\"":
            quote = ch
            in_word = True
        else:
            cur.append(ch)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(cur))
    return words


def ifname_valid(word: str, alternative: bool) -> bool:
    """ifname_valid_full() of src/basic/socket-util.c (252)."""
    if not word or len(word) >= (128 if alternative else 16):
        return False
    if word in (".", "..", "all", "default") or word.isdigit():
        return False
    return all(32 < ord(c) < 127 and c not in ":/%" for c in word)


_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "xdigit": "0-9A-Fa-f",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "blank": r" \t",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
}


@lru_cache(maxsize=4096)
def _glob_re(pattern: str) -> re.Pattern:
    """fnmatch(3) with flags 0 (glibc): "*" and "?" match any character ("/" and a leading "."
    included), "[...]" with "!"/"^" negation, ranges and [:class:], backslash escapes."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            parsed = _bracket(pattern, i)
            if parsed is None:
                out.append(re.escape(c))
            else:
                regex, i = parsed
                out.append(regex)
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _bracket(pattern: str, start: int) -> tuple[str, int] | None:
    i = start + 1
    n = len(pattern)
    negate = i < n and pattern[i] in "!^"
    if negate:
        i += 1
    items: list = []
    first = True
    while i < n:
        c = pattern[i]
        if c == "]" and not first:
            body = "".join(items) or r"\x00-\U0010ffff"
            return ("[^" if negate else "[") + body + "]", i + 1
        first = False
        if c == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end != -1 and pattern[i + 2 : end] in _CLASSES:
                items.append(_CLASSES[pattern[i + 2 : end]])
                i = end + 2
                continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = pattern[i]
        if i + 2 < n and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            hi = pattern[i + 2]
            if hi == "\\" and i + 3 < n:
                hi = pattern[i + 3]
                i += 1
            items.append(re.escape(c) + "-" + re.escape(hi))
            i += 3
            continue
        items.append(re.escape(c))
        i += 1
    return None


def fnmatch(pattern: str, string: str) -> bool:
    return _glob_re(pattern).fullmatch(string) is not None


def strv_matches(patterns: tuple[str, ...], string: str | None) -> bool:
    """net_condition_test_strv() of systemd 252."""
    if not patterns:
        return True
    match = has_positive = False
    for p in patterns:
        invert = p.startswith("!")
        q = p[1:] if invert else p
        if not invert:
            has_positive = True
        if string is not None and fnmatch(q, string):
            if invert:
                return False
            match = True
    return match if has_positive else True


_MAC_RE = re.compile(
    r"^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$"
)
_MAC_DOTS = re.compile(r"^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$")


def normalize_mac(text: str | None) -> str | None:
    if not text:
        return None
    t = text.strip().lower()
    m = _MAC_RE.match(t)
    if m:
        return ":".join(m.groups())
    m = _MAC_DOTS.match(t)
    if m:
        h = "".join(m.groups())
        return ":".join(h[i : i + 2] for i in range(0, 12, 2))
    return None


# --------------------------------------------------------------------------- interfaces


@dataclass(frozen=True)
class Device:
    """What a [Match] is tested against: an interface as networkd/udev see it (a live
    :class:`Iface` or a representative). ``None``: the attribute does not exist."""

    name: str
    kind: str | None
    driver: str | None
    type: str
    mac: str | None = None
    permanent_mac: str | None = None
    path: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    description: str = ""

    @classmethod
    def from_iface(cls, iface: Iface) -> Device:
        props = [("INTERFACE", iface.name), ("SUBSYSTEM", "net"), ("IFINDEX", str(iface.ifindex))]
        if iface.type not in ("ether", "none", "loopback"):
            props.append(("DEVTYPE", iface.type))
        return cls(
            iface.name,
            iface.kind,
            iface.driver,
            iface.type,
            normalize_mac(iface.mac),
            None,
            None,
            tuple(props),
            f"{iface.kind or 'physical'} (live)",
        )

    @property
    def loopback(self) -> bool:
        return self.type == "loopback"


_OWN_DRIVER = object()


def _rep(name: str, kind: str, type_: str, description: str, driver=_OWN_DRIVER) -> Device:
    props = [("INTERFACE", name), ("SUBSYSTEM", "net")]
    if type_ not in ("ether", "none", "tunnel"):
        props.append(("DEVTYPE", type_))
    return Device(
        name, kind, kind if driver is _OWN_DRIVER else driver, type_, None, None, None, tuple(props), description
    )


# Representative virtual interfaces of container runtimes and CNI plugins, with the kind, driver
# and type networkd sees (measured on kernel 6.1: a bridge has DEVTYPE=bridge, a vxlan
# DEVTYPE=vxlan, a veth none (Type=ether), a tun device ARPHRD_NONE (Type=none); the ethtool
# driver of a virtual device is its kind: measured with ETHTOOL_GDRVINFO for veth, bridge, vxlan
# and tun; ipip and wireguard have no ethtool get_drvinfo as far as known (not measurable here: this
# kernel has neither module), so networkd sees no driver and only a list of negated Driver= globs
# matches them). No MAC and no ID_PATH: a MACAddress=/Path= match
# never selects them.
REPRESENTATIVES: tuple[Device, ...] = (
    _rep("docker0", "bridge", "bridge", "docker's default bridge"),
    _rep("br-0123456789ab", "bridge", "bridge", "docker network bridges"),
    _rep("docker_gwbridge", "bridge", "bridge", "docker swarm gateway bridge"),
    _rep("cni0", "bridge", "bridge", "CNI bridges"),
    _rep("virbr0", "bridge", "bridge", "libvirt bridges"),
    _rep("weave", "bridge", "bridge", "weave bridges"),
    _rep("veth1a2b3c4", "veth", "ether", "container veths"),
    _rep("cali0123456789a", "veth", "ether", "calico veths"),
    _rep("lxc0123", "veth", "ether", "cilium endpoint veths"),
    _rep("cilium_host", "veth", "ether", "cilium host veths"),
    _rep("vx-001-abcde", "vxlan", "vxlan", "swarm overlay vxlans"),
    _rep("flannel.1", "vxlan", "vxlan", "flannel vxlans"),
    _rep("vxlan.calico", "vxlan", "vxlan", "calico vxlans"),
    _rep("cilium_vxlan", "vxlan", "vxlan", "cilium vxlans"),
    _rep("tunl0", "ipip", "tunnel", "calico IPIP tunnels", driver=None),
    _rep("tun0", "tun", "none", "tun devices"),
    _rep("tap0", "tun", "ether", "tap devices"),
    _rep("kube-ipvs0", "dummy", "ether", "kube-proxy IPVS dummies"),
    _rep("flannel-wg", "wireguard", "wireguard", "wireguard devices", driver=None),
)
# plain NICs: a file that matches these as well is a catch-all, not one aimed at containers
PHYSICAL: tuple[Device, ...] = (
    Device(
        "eth0",
        None,
        "e1000",
        "ether",
        "52:54:00:00:00:01",
        "52:54:00:00:00:01",
        "pci-0000:00:03.0",
        (("INTERFACE", "eth0"), ("SUBSYSTEM", "net"), ("ID_NET_DRIVER", "e1000")),
        "NIC",
    ),
    Device(
        "ens3",
        None,
        "virtio_net",
        "ether",
        "52:54:00:00:00:02",
        "52:54:00:00:00:02",
        "pci-0000:00:04.0",
        (("INTERFACE", "ens3"), ("SUBSYSTEM", "net"), ("ID_NET_DRIVER", "virtio_net")),
        "NIC",
    ),
    Device(
        "enp3s0",
        None,
        "igb",
        "ether",
        "52:54:00:00:00:03",
        "52:54:00:00:00:03",
        "pci-0000:03:00.0",
        (("INTERFACE", "enp3s0"), ("SUBSYSTEM", "net"), ("ID_NET_DRIVER", "igb")),
        "NIC",
    ),
)


# --------------------------------------------------------------------------- [Match]


@dataclass
class Match:
    """The [Match] of one file after all its assignments (file, then drop-ins)."""

    suffix: str
    globs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    macs: dict[str, frozenset[str]] = field(default_factory=dict)
    properties: tuple[str, ...] = ()
    host: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """net_match_is_empty() and no host condition."""
        return not (any(self.globs.values()) or any(self.macs.values()) or self.properties or self.host)

    @property
    def interface_conditions(self) -> bool:
        return any(self.globs.values()) or any(self.macs.values()) or bool(self.properties)

    @property
    def name_key(self) -> str:
        return "OriginalName" if self.suffix == ".link" else "Name"

    def names(self) -> tuple[str, ...]:
        return self.globs.get(self.name_key, ())

    def matches(self, dev: Device) -> bool:
        """net_match_config() for ``dev`` (host conditions count as true)."""
        g = self.globs
        for key, attr in (("MACAddress", dev.mac), ("PermanentMACAddress", dev.permanent_mac), ("BSSID", None)):
            macs = self.macs.get(key)
            if macs and (attr is None or attr not in macs):
                return False
        if not strv_matches(g.get("Path", ()), dev.path):
            return False
        if not strv_matches(g.get("Driver", ()), dev.driver):
            return False
        if not strv_matches(g.get("Type", ()), dev.type):
            return False
        if not strv_matches(g.get("Kind", ()), dev.kind):
            return False
        if not strv_matches(g.get(self.name_key, ()), dev.name):
            return False
        props = dict(dev.properties)
        for p in self.properties:
            invert = p.startswith("!")
            key, _, glob = p[invert:].partition("=")
            v = key in props and fnmatch(glob, props[key])
            if (invert and v) or (not invert and not v):
                return False
        for key in ("WLANInterfaceType", "SSID"):
            if not strv_matches(g.get(key, ()), None):
                return False
        return True

    def describe(self) -> str:
        """The [Match] conditions as short text ("Name=* Kind=!*"), or "[Match] with only host
        conditions" / "no [Match] conditions"."""
        parts = []
        for key, words in self.globs.items():
            if words:
                parts.append(f"{key}={' '.join(words)}")
        for key, macs in self.macs.items():
            if macs:
                parts.append(f"{key}={' '.join(sorted(macs))}")
        if self.properties:
            parts.append("Property=" + " ".join(self.properties))
        if not parts:
            if self.host:
                return "only host conditions (" + " ".join(f"{k}={v}" for k, v in sorted(self.host.items())) + ")"
            return "no conditions"
        return " ".join(parts)


def build_match(suffix: str, assignments: list[tuple[str, str, str]], version: int | None) -> Match:
    m = Match(suffix)
    glob_keys = _GLOB_KEYS[suffix]
    mac_keys = _MAC_KEYS[suffix]
    lists: dict[str, list[str]] = {}
    macs: dict[str, set[str]] = {}
    props: list[str] = []
    for section, key, value in assignments:
        if section != "Match":
            continue
        if version is not None and version < KEY_SINCE.get(key, 0):
            continue  # this networkd does not know the key: "Unknown key", ignored
        if key in glob_keys:
            if value == "":
                lists[key] = []
                continue
            invert = value.startswith("!")
            rest = value[1:] if invert else value
            name_key = key in ("Name", "OriginalName")
            for word in split_words(rest, unquote=not name_key):
                if name_key and not ifname_valid(word, alternative=(key == "Name")):
                    continue
                lists.setdefault(key, []).append("!" + word if invert else word)
        elif key in mac_keys:
            if value == "":
                macs[key] = set()
                continue
            for word in value.split():
                mac = normalize_mac(word)
                if mac:
                    macs.setdefault(key, set()).add(mac)
        elif key == "Property":
            if value == "":
                props = []
                continue
            invert = value.startswith("!")
            rest = value[1:] if invert else value
            for word in split_words(rest, unquote=True):
                word = word.replace("\\", "")
                k, eq, _ = word.partition("=")
                if eq and k:
                    props.append("!" + word if invert else word)
        elif key in HOST_CONDITIONS:
            if value == "":
                m.host.pop(key, None)
            else:
                m.host[key] = value
    m.globs = {k: tuple(v) for k, v in lists.items() if v}
    m.macs = {k: frozenset(v) for k, v in macs.items() if v}
    m.properties = tuple(props)
    return m


# --------------------------------------------------------------------------- files


@dataclass
class ConfFile:
    """One file as networkd loads it: ``path`` the winning file of its name; ``masked`` (skipped,
    hides lower files); ``refused`` (not loaded: invalid syntax); ``ignored`` (loaded and dropped:
    no [Match] conditions on networkd >= 245); ``shadowed``: lower files of the same name."""

    name: str
    path: str
    masked: bool = False
    refused: bool = False
    dropins: tuple[str, ...] = ()
    shadowed: tuple[str, ...] = ()
    assignments: list[tuple[str, str, str]] = field(default_factory=list)
    match: Match | None = None
    ignored: bool = False

    @property
    def loaded(self) -> bool:
        return not (self.masked or self.refused or self.ignored)

    def values(self, section: str, key: str) -> list[str]:
        return [v for s, k, v in self.assignments if s == section and k == key]

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = default
        for v in self.values(section, key):
            b = parse_boolean(v)
            if b is not None:
                value = b
        return value

    @property
    def unmanaged(self) -> bool:
        """[Link] Unmanaged=yes: a link this file matches is left alone."""
        return self.boolean("Link", "Unmanaged", False)

    def last(self, section: str, key: str) -> str | None:
        values = self.values(section, key)
        return values[-1] if values else None


def network_dirs(host: Host) -> tuple[str, ...]:
    """NETWORK_DIRS without /lib when /lib is the same directory as /usr/lib (merged /usr)."""
    merged = any(host.kind(p) == "link" for p in ("/lib", "/lib/systemd", "/lib/systemd/network"))
    return tuple(d for d in NETWORK_DIRS if not (merged and d.startswith("/lib/")))


def _listed(host: Host, dirs: tuple[str, ...], suffix: str) -> dict[str, list[str]]:
    """name -> paths in directory priority order (first wins), for names ending in ``suffix``."""
    found: dict[str, list[str]] = {}
    for d in dirs:
        if host.kind(d) not in ("dir", "link"):
            continue
        for name in host.listdir(d):
            if name.startswith(".") or not name.endswith(suffix) or name == suffix:
                continue
            path = f"{d}/{name}"
            if host.kind(path) not in ("file", "link"):
                continue
            found.setdefault(name, []).append(path)
    return found


def _is_masked(host: Host, path: str) -> bool:
    """null_or_empty_path(): /dev/null or an empty file (a dangling symlink is not readable)."""
    if host.masked(path):
        return True
    return host.read_text(path) == ""


def dropin_paths(host: Host, name: str, dirs: tuple[str, ...]) -> list[str]:
    """NAME.d/*.conf from every directory: shadowed by name, sorted by name, masks skipped."""
    found = _listed(host, tuple(f"{d}/{name}.d" for d in dirs), ".conf")
    return [paths[0] for _, paths in sorted(found.items()) if not _is_masked(host, paths[0])]


def load_files(host: Host, suffix: str, version: int | None = None) -> list[ConfFile]:
    """Every ``suffix`` file (".network", ".link", ".netdev") in networkd's order."""
    dirs = network_dirs(host)
    version = host_version(host) if version is None else version
    out = []
    for name, paths in sorted(_listed(host, dirs, suffix).items(), key=lambda kv: kv[0].encode()):
        cf = ConfFile(name=name, path=paths[0], shadowed=tuple(paths[1:]))
        if _is_masked(host, cf.path):
            cf.masked = True
            out.append(cf)
            continue
        cf.dropins = tuple(dropin_paths(host, name, dirs))
        for path in (cf.path, *cf.dropins):
            text = host.read_text(path)
            parsed = parse_ini(text) if text is not None else None
            if parsed is None:
                cf.refused = True
                break
            cf.assignments.extend(parsed)
        if not cf.refused and suffix in _GLOB_KEYS:
            cf.match = build_match(suffix, cf.assignments, version)
            if cf.match.empty and (version is None or version >= EMPTY_MATCH_IGNORED_SINCE):
                cf.ignored = True
        out.append(cf)
    return out


def host_version(host: Host) -> int | None:
    try:
        return host.systemd_version
    except Exception:  # an unreadable image: unknown, judged as modern
        return None


def first_match(files: list[ConfFile], dev: Device) -> ConfFile | None:
    """The file networkd (udev for .link) applies to ``dev``: the first loaded file whose
    [Match] matches. .link files never apply to loopback (link_get_config())."""
    for cf in files:
        if not cf.loaded or cf.match is None:
            continue
        if cf.match.suffix == ".link" and dev.loopback:
            return None
        if cf.match.matches(dev):
            return cf
    return None


def netdev_names(host: Host) -> set[str]:
    """Interfaces networkd itself creates ([NetDev] Name= of the loaded .netdev files)."""
    names = set()
    for cf in load_files(host, ".netdev"):
        if cf.loaded:
            name = cf.last("NetDev", "Name")
            if name:
                names.add(name)
    return names


def literally_named(cf: ConfFile, name: str) -> bool:
    """``name`` is one of the file's positive Name= words without glob characters: the file was
    written for that interface, it does not catch it by accident."""
    if cf.match is None:
        return False
    return any(not w.startswith("!") and not any(c in w for c in "*?[\\") and w == name for w in cf.match.names())


# --------------------------------------------------------------------------- networkd.conf


@dataclass(frozen=True)
class Setting:
    value: bool
    source: str | None  # the file that set it last, None: the default


def networkd_conf(host: Host) -> dict[str, Setting]:
    """Effective [Network] ManageForeignRoutes= and ManageForeignRoutingPolicyRules=."""
    files = []
    for path in NETWORKD_CONF_MAIN:
        if host.kind(path) in ("file", "link"):
            files.append(path)
            break
    found = _listed(host, NETWORKD_CONF_DIRS, ".conf")
    files += [paths[0] for _, paths in sorted(found.items()) if not _is_masked(host, paths[0])]
    result = {"ManageForeignRoutes": Setting(True, None), "ManageForeignRoutingPolicyRules": Setting(True, None)}
    for path in files:
        text = host.read_text(path)
        parsed = parse_ini(text) if text else None
        if not parsed:
            continue
        for section, key, value in parsed:
            if section == "Network" and key in result:
                b = parse_boolean(value)
                if b is not None:
                    result[key] = Setting(b, path)
    return result
