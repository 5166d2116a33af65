"""Which systemd-networkd key needs which systemd version: the one table that gates them.

Renderers never compare versions themselves. They ask ``supports(version, FEATURE)``
and templates receive only keys the target knows, so a key the target's systemd
does not know is never emitted (it would be logged as "Unknown key" and ignored).
Keys every supported target has (the schema's minimum is systemd 237) are not listed.
"""

from __future__ import annotations

# feature id -> (first systemd major version that has it, where it lives, what it is)
FEATURES: dict[str, tuple[int, str, str]] = {
    "match.kind": (
        251,
        ".network [Match] Kind=",
        "match the netdev kind (veth, bridge, vxlan ...); physical NICs have none",
    ),
    "networkd.manage_foreign_routes": (
        246,
        "networkd.conf [Network] ManageForeignRoutes=",
        "leave foreign (CNI) routes alone",
    ),
    "networkd.manage_foreign_rules": (
        249,
        "networkd.conf [Network] ManageForeignRoutingPolicyRules=",
        "leave foreign (CNI) policy rules alone",
    ),
    "networkctl.reload": (244, "networkctl reload", "reload .network/.netdev files without restarting networkd"),
    "link.mac_policy_persistent_default": (
        242,
        "99-default.link MACAddressPolicy=persistent",
        "udev rewrites MACs of virtual devices",
    ),
    "exec.search_path": (
        239,
        "ExecStart= with a bare command name",
        "systemd finds the binary in its built-in search path (/usr/bin, /usr/sbin ...)",
    ),
}

# Default target systemd major version per platform.os (documented in the schema).
DEFAULT_VERSION: dict[str, int] = {
    "flatcar": 255,  # Flatcar stable (4081+)
    "fcos": 256,  # Fedora CoreOS on Fedora 41
    "coreos": 241,  # last CoreOS Container Linux
    "debian": 252,  # Debian 12 bookworm
    "ubuntu": 255,  # Ubuntu 24.04 noble
    "rhel": 252,  # RHEL 9
    "rocky": 252,  # Rocky Linux 9
    "alma": 252,  # AlmaLinux 9
    "fedora": 256,  # Fedora 41
    "generic": 245,  # conservative: Ubuntu 20.04 level
}


def supports(version: int, feature: str) -> bool:
    """True when systemd ``version`` knows ``feature`` (a key of FEATURES)."""
    return version >= FEATURES[feature][0]


def features_for(version: int) -> dict[str, bool]:
    """Every feature id mapped to whether ``version`` has it (handed to templates)."""
    return {name: version >= first for name, (first, _, _) in FEATURES.items()}
