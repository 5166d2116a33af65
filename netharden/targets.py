"""Facts about each ``platform.os`` that are not systemd versions: where host-side
helpers can be installed and whether apt manages packages.

``/usr`` is read-only on Flatcar, Container Linux and Fedora CoreOS, so helpers go to
``/opt/netharden/bin`` there; on Debian, Ubuntu, the RHEL family, Fedora and generic hosts they go to
``/usr/local/libexec/netharden`` (the FHS place for local, non-user-facing programs).
"""

from __future__ import annotations

HELPER_DIR: dict[str, str] = {
    "flatcar": "/opt/netharden/bin",
    "fcos": "/opt/netharden/bin",
    "coreos": "/opt/netharden/bin",
    "debian": "/usr/local/libexec/netharden",
    "ubuntu": "/usr/local/libexec/netharden",
    "rhel": "/usr/local/libexec/netharden",
    "rocky": "/usr/local/libexec/netharden",
    "alma": "/usr/local/libexec/netharden",
    "fedora": "/usr/local/libexec/netharden",
    "generic": "/usr/local/libexec/netharden",
}

# Targets whose packages apt manages (hold_packages renders apt files only there).
# "generic" is included: the files are inert on a host without apt.
APT_BASED = frozenset({"debian", "ubuntu", "generic"})

# Where netharden keeps runtime state on the target (tmpfs: gone at reboot).
STATE_DIR = "/run/netharden"
UNIT_DIR = "/etc/systemd/system"
