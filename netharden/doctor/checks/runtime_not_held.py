"""Container runtime packages that unattended-upgrades would upgrade (incident 5).

An upgrade of the runtime packages restarts dockerd/containerd (their maintainer scripts
do; running containers die unless live-restore) and can change defaults under running
hosts: incident 5 was a runtime upgrade that changed how container namespaces were
set up. netharden's packages renderer (``docker.hold_packages``) pins the installed
versions and blacklists the packages for unattended-upgrades; this check finds hosts
where nothing does.

Packages (``RUNTIME_PACKAGES``): the engines and what they run containers with -
docker.io (Debian/Ubuntu), docker-ce and docker-ce-cli (Docker's repository), moby-engine,
moby-cli, moby-containerd, moby-runc (Microsoft's builds), containerd and containerd.io,
runc and crun, podman, cri-o and cri-o-runc. Plugins and tools (compose, buildx,
rootless extras) are left out: upgrading them restarts nothing.

Rule, per package installed per /var/lib/dpkg/status (Status ``install ok installed`` or
``hold ok installed``), reported when unattended-upgrades would upgrade it:

1. unattended-upgrades is installed (same status rule) and enabled:
   ``APT::Periodic::Unattended-Upgrade`` is neither unset nor "0" (apt.systemd.daily
   treats "0" as never, "always" and any interval as due), and neither
   apt-daily-upgrade.timer nor apt-daily-upgrade.service is masked in /etc/systemd/system.
   apt configuration is read the way apt does (pkgInitConfig): /etc/apt/apt.conf.d files
   in name order (only names of letters, digits, ``_-:.``, not ending in ``.``, without
   extension or ending in ``.conf``; apt ignores others), then /etc/apt/apt.conf; keys
   are case-insensitive, ``A::B "v";`` and ``A { B "v"; };`` are the same, a later scalar
   wins, list items (``{ "x"; y; }``, ``A:: "x";``) accumulate across files, ``#clear``
   empties a key, ``#include`` reads a file (a relative name from apt's working directory:
   / for the timer's run); ``//``, ``/* */`` and ``#`` comments.
   tests/test_doctor_file_checks.py compares the result with the real ``apt-config dump``.
2. the package is not dpkg-held (the selection, the first word of Status, is ``hold``;
   unattended-upgrades skips SELSTATE_HOLD, apt does too);
3. apt preferences do not hold it. Records of /etc/apt/preferences and
   /etc/apt/preferences.d (same name rule as apt.conf.d, extension ``.pref``) that name it
   count - ``Package:`` lists exact names, globs (fnmatch) and ``/regex/`` (POSIX extended,
   case-insensitive, unanchored), ``src:NAME`` matches the Source field. Per
   apt_preferences(5) apt installs the version with the highest priority (the newer one
   on a tie), so the package is held when
   - a record pins the installed version (``Pin: release a=now``: the dpkg status file,
     or ``Pin: version V`` whose glob matches the installed version - newer versions
     matching the same glob still come) above every priority a repository version gets: 500, 990 with ``APT::Default-Release`` set (taken to cover
     the package's repository), or the priority of a record that pins other versions of
     it. ``Pin-Priority >= 1000`` on the installed version (what netharden renders) is
     thus always enough, 990 is enough without a default release;
   - or a record gives anything but the installed version alone a negative priority:
     "never install" those versions, i.e. the upgrade (a negative pin on a repository is
     taken to cover the upgrade).
   A >= 1000 pin on a repository or on another version does not hold: it makes apt
   install that version. Proved with the real apt resolver in the tests.
4. no ``Unattended-Upgrade::Package-Blacklist`` entry matches it, with Python's
   ``re.match`` (anchored at the start only) as unattended-upgrades' is_pkgname_in_blacklist()
   does, and, with ``Unattended-Upgrade::Package-Whitelist-Strict`` true, a
   ``Package-Whitelist`` entry matches it (is_pkg_change_allowed()).

Not evaluated: ``Unattended-Upgrade::Origins-Pattern`` (which repository the next
version comes from needs the apt lists; by default unattended-upgrades takes only Debian's
security and point releases, so docker-ce from Docker's repository is upgraded only when
that origin is allowed - the message says so).
"""

from __future__ import annotations

import fnmatch
import re

from ..host import Host
from ..model import Finding

ID = "runtime-not-held"
TITLE = "container runtime packages unattended-upgrades would upgrade"
SEVERITY = "warning"
INCIDENT = "incident-5"
HINT = (
    "list them in docker.hold_packages (netharden pins the installed version and blacklists them for "
    "unattended-upgrades), or apt-mark hold them"
)
NEEDS = "files"

RUNTIME_PACKAGES = (
    "containerd",
    "containerd.io",
    "cri-o",
    "cri-o-runc",
    "crun",
    "docker-ce",
    "docker-ce-cli",
    "docker.io",
    "moby-cli",
    "moby-containerd",
    "moby-engine",
    "moby-runc",
    "podman",
    "runc",
)
STATUS = "/var/lib/dpkg/status"
APT_ETC = "/etc/apt"
UU_KEY = "apt::periodic::unattended-upgrade"
_PART_NAME = re.compile(r"[A-Za-z0-9_:.-]+")


# ------------------------------------------------------------------ dpkg


def _stanzas(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs: field names lower-cased, continuation lines joined."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current, last = {}, None
        elif line.startswith("#"):
            continue
        elif line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip().lower()
            current[last] = value.strip()
    if current:
        out.append(current)
    return out


def installed(host: Host) -> dict[str, dict[str, str]]:
    """Installed packages (name -> status stanza)."""
    out = {}
    for st in _stanzas(host.read_text(STATUS) or ""):
        words = st.get("status", "").split()
        if len(words) == 3 and words[0] in ("install", "hold") and words[2] == "installed" and "package" in st:
            out[st["package"]] = st
    return out


# ------------------------------------------------------------------ apt.conf


def _parts(host: Host, directory: str, ext: str) -> list[str]:
    """Files apt reads from a .d directory, in its order (GetListOfFilesInDir)."""
    out = []
    for name in host.listdir(directory):
        if not _PART_NAME.fullmatch(name) or name.endswith("."):
            continue
        if "." in name and name.rsplit(".", 1)[1] != ext:
            continue
        if host.kind(f"{directory}/{name}") in ("file", "link"):
            out.append(f"{directory}/{name}")
    return out


class AptConfig:
    """apt.conf values (scalars and lists), keys lower-cased."""

    def __init__(self):
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        self.origin: dict[str, str] = {}  # key -> file that set it last

    def get(self, key: str) -> str | None:
        return self.values.get(key.lower())

    def list(self, key: str) -> list[str]:
        return list(self.lists.get(key.lower(), []))

    def clear(self, key: str) -> None:
        key = key.lower().rstrip(":")
        for store in (self.values, self.lists):
            for k in [k for k in store if k == key or k.startswith(key + "::")]:
                del store[k]

    def read(self, host: Host, path: str, depth: int = 0) -> None:
        text = host.read_text(path)
        if text is None or depth > 8:
            return
        scopes: list[str] = []
        pending: list[str] = []

        def full(key: str) -> str:
            return "::".join(scopes + [key]).lower()

        def finish() -> None:
            if len(pending) == 1 and scopes:
                self.lists.setdefault(full("")[:-2], []).append(pending[0])
            elif len(pending) >= 2:
                key, value = pending[0], pending[1]
                if key.endswith("::"):
                    self.lists.setdefault(full(key[:-2]), []).append(value)
                else:
                    self.values[full(key)] = value
                    self.origin[full(key)] = path
            pending.clear()

        for kind, value in _tokens(text):
            if kind == "directive":
                word, _, arg = value.partition(" ")
                args = [a.strip().strip('"') for a in arg.replace(";", " ").split()]
                if word == "#clear":
                    for a in args:
                        self.clear(a)
                elif word == "#include" and args:
                    # apt opens a relative name from its working directory: / under systemd and cron
                    target = args[0] if args[0].startswith("/") else "/" + args[0]
                    self.read(host, target, depth + 1)
            elif kind in ("word", "str"):
                pending.append(value)
            elif kind == ";":
                finish()
            elif kind == "{":
                if pending:
                    if len(pending) >= 2:
                        self.values[full(pending[0])] = pending[1]
                    scopes.append(pending[0].rstrip(":"))
                    pending.clear()
                else:
                    scopes.append("")
            elif kind == "}":
                finish()
                if scopes:
                    scopes.pop()


def _tokens(text: str):
    """apt.conf tokens: ("str"|"word", value), ("{"|"}"|";", ""), ("directive", line)."""
    i, n, line_start = 0, len(text), True
    while i < n:
        c = text[i]
        if c == "\n":
            line_start = True
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c == "#" and line_start:
            end = text.find("\n", i)
            end = n if end < 0 else end
            line = text[i:end].strip()
            if line.startswith(("#clear", "#include")):
                yield "directive", line
            i = end
            continue
        line_start = False
        if c in "{};":
            yield c, ""
            i += 1
        elif c == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end
            yield "str", text[i + 1 : end]
            i = end + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n{};"':
                j += 1
            yield "word", text[i:j]
            i = j


def apt_config(host: Host) -> AptConfig:
    cfg = AptConfig()
    for path in _parts(host, f"{APT_ETC}/apt.conf.d", "conf"):
        cfg.read(host, path)
    if host.kind(f"{APT_ETC}/apt.conf") in ("file", "link"):
        cfg.read(host, f"{APT_ETC}/apt.conf")
    return cfg


# ------------------------------------------------------------------ apt preferences


def _names_match(field: str, pkg: str, source: str) -> bool:
    for entry in field.split():
        if entry.startswith("src:"):
            if _one(entry[4:], source):
                return True
        elif _one(entry, pkg) or _one(entry, pkg.split(":", 1)[0]):
            return True
    return False


def _one(pattern: str, name: str) -> bool:
    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            return re.search(pattern[1:-1], name, re.IGNORECASE) is not None
        except re.error:
            return False
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return pattern.lower() == name.lower()


def _on_installed(pin: str, version: str) -> tuple[bool, bool]:
    """(selects the installed version, selects it and nothing else) for a Pin: value."""
    kind, _, arg = pin.partition(" ")
    arg = arg.strip()
    if kind == "release":
        fields = dict(part.split("=", 1) for part in arg.split(",") if "=" in part)
        fields = {k.strip(): v.strip().strip('"') for k, v in fields.items()}
        now = fields.get("a", fields.get("archive")) == "now"
        return now, now and len(fields) == 1
    if kind == "version":
        hit = fnmatch.fnmatchcase(version, arg.strip('"'))
        return hit, hit and not any(ch in arg for ch in "*?[")
    return False, False


def pinned(host: Host, pkg: str, stanza: dict[str, str], cfg: AptConfig) -> str | None:
    """The preferences file holding ``pkg`` (see the module doc), or None."""
    files = [f"{APT_ETC}/preferences"] if host.kind(f"{APT_ETC}/preferences") in ("file", "link") else []
    files += _parts(host, f"{APT_ETC}/preferences.d", "pref")
    version = stanza.get("version", "")
    source = (stanza.get("source") or pkg).split()[0]
    installed_pin: tuple[int, str] | None = None
    repository = 990 if cfg.get("APT::Default-Release") else 500
    for path in files:
        for rec in _stanzas(host.read_text(path) or ""):
            if "package" not in rec or "pin" not in rec or not _names_match(rec["package"], pkg, source):
                continue
            try:
                priority = int(rec.get("pin-priority", ""))
            except ValueError:
                continue
            selects, only = _on_installed(rec["pin"], version)
            if priority < 0 and not only:
                return path
            if selects and (installed_pin is None or priority > installed_pin[0]):
                installed_pin = (priority, path)
            if not selects:
                repository = max(repository, priority)
    if installed_pin is not None and installed_pin[0] > repository:
        return installed_pin[1]
    return None


# ------------------------------------------------------------------ the check


def _uu_enabled(host: Host, pkgs: dict, cfg: AptConfig) -> str | None:
    """Why unattended-upgrades runs (for the message), or None when it does not."""
    if "unattended-upgrades" not in pkgs:
        return None
    value = cfg.get(UU_KEY)
    if value is None or value.strip() in ("", "0"):
        return None
    for unit in ("apt-daily-upgrade.timer", "apt-daily-upgrade.service"):
        if host.masked(f"/etc/systemd/system/{unit}"):
            return None
    where = cfg.origin.get(UU_KEY, "apt.conf")
    return f'APT::Periodic::Unattended-Upgrade "{value}" in {host.display(where)}'


def check(host: Host) -> list[Finding]:
    pkgs = installed(host)
    runtime = [p for p in RUNTIME_PACKAGES if p in pkgs]
    if not runtime:
        return []
    cfg = apt_config(host)
    why = _uu_enabled(host, pkgs, cfg)
    if why is None:
        return []
    blacklist = cfg.list("Unattended-Upgrade::Package-Blacklist")
    whitelist = cfg.list("Unattended-Upgrade::Package-Whitelist")
    strict = (cfg.get("Unattended-Upgrade::Package-Whitelist-Strict") or "").lower() in ("1", "true", "yes", "on")
    findings = []
    for pkg in runtime:
        stanza = pkgs[pkg]
        if stanza["status"].split()[0] == "hold" or pinned(host, pkg, stanza, cfg):
            continue
        if any(_safe_match(rx, pkg) for rx in blacklist):
            continue
        if strict and whitelist and not any(_safe_match(rx, pkg) for rx in whitelist):
            continue
        findings.append(
            Finding(
                subject=pkg,
                message=(
                    f"{pkg} {stanza.get('version', '')} is installed and unattended-upgrades runs ({why}); no dpkg hold, "
                    f"apt pin or Package-Blacklist entry keeps it: an allowed origin upgrades it and restarts the runtime "
                    f"under running containers"
                ),
            )
        )
    return findings


def _safe_match(rx: str, name: str) -> bool:
    try:
        return re.match(rx, name) is not None
    except re.error:
        return False
