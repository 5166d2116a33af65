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

# Where the OS's package manager puts vendor unit files, as ``systemctl enable`` names them
# in the symlinks it makes (its first lookup directory that holds the unit). Debian and
# Ubuntu built systemd with rootprefix=/ until their /usr merge finished (Debian 13 ships
# systemd 257 with /usr/lib/systemd/system, Ubuntu 24.04 ships 255 with it); every other
# target has its units in /usr/lib/systemd/system.
_LIB_UNIT_DIR_BEFORE: dict[str, int] = {"debian": 256, "ubuntu": 253, "generic": 253}


def vendor_unit_dir(os_name: str, systemd: int) -> str:
    """The directory of the OS's own unit files (systemd-networkd.service) on ``os_name``
    with systemd ``systemd``: the target of the symlinks ``systemctl enable`` makes."""
    if systemd < _LIB_UNIT_DIR_BEFORE.get(os_name, 0):
        return "/lib/systemd/system"
    return "/usr/lib/systemd/system"
