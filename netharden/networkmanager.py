"""Which NetworkManager keyfile key or device spec needs which NetworkManager version:
the one table that gates them, like ``systemd.py`` for systemd-networkd.

Versions are ``(major, minor)`` tuples. The schema's minimum is 1.26 (RHEL 8.3); keys and
specs every supported version has are not listed. Sources: NetworkManager's NEWS (the
"Overview of changes since NetworkManager-X" section is the release after X) and
NetworkManager.conf(5) / nm-settings-keyfile(5) of 1.42.
"""

from __future__ import annotations

Version = tuple[int, int]

MINIMUM: Version = (1, 26)

# feature id -> (first NetworkManager version that has it, where it lives, source)
FEATURES: dict[str, tuple[Version, str, str]] = {
    "spec.except": ((1, 2), "device spec except:SPEC", "NEWS 1.2: device specifiers support negation via 'except:'"),
    "spec.driver": ((1, 8), "device spec driver:DRIVER", "NEWS 1.8: new 'driver:' device spec in NetworkManager.conf"),
    "match.interface-name": (
        (1, 14),
        "[match] interface-name=",
        "NEWS 1.14: match setting restricts a profile to interface names, with globbing",
    ),
    "ipv6.method.disabled": ((1, 20), "[ipv6] method=disabled", "NEWS 1.20: add ipv6.method=disabled"),
    "nmcli.general-reload": (
        (1, 22),
        "nmcli general reload [conf]",
        "NEWS 1.22: nmcli general reload re-reads NetworkManager.conf",
    ),
    "match.driver-path": (
        (1, 26),
        "[match] driver= and path=",
        "NEWS 1.26: match for device path, driver and kernel command line",
    ),
    "match.negation": (
        (1, 26),
        "[match] interface-name=!GLOB",
        "NEWS 1.26: 'match' properties take '|', '&', '!' and '\\\\'",
    ),
}

# Default NetworkManager version per platform.os (documented in the schema).
DEFAULT_VERSION: dict[str, Version] = {
    "fcos": (1, 50),  # Fedora CoreOS on Fedora 41
    "fedora": (1, 50),  # Fedora 41
    "rhel": (1, 46),  # RHEL 9.4
    "rocky": (1, 46),  # Rocky Linux 9.4
    "alma": (1, 46),  # AlmaLinux 9.4
}
FALLBACK_VERSION: Version = (1, 42)  # Debian 12 bookworm (and what the tests run)


def parse(text: str) -> Version:
    major, minor = text.split(".")
    return int(major), int(minor)


def text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def default_version(os_name: str) -> Version:
    return DEFAULT_VERSION.get(os_name, FALLBACK_VERSION)


def supports(version: Version, feature: str) -> bool:
    """True when NetworkManager ``version`` knows ``feature`` (a key of FEATURES)."""
    return version >= FEATURES[feature][0]


def features_for(version: Version) -> dict[str, bool]:
    return {name: version >= first for name, (first, _, _) in FEATURES.items()}
