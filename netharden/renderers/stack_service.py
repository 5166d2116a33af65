"""The host's network stack must run: enable systemd-networkd.service.

Debian ships systemd-networkd installed but disabled (ifupdown configures the NIC), so
every networkd file netharden writes would be inert there. This renderer adds the
enablement as a Plan ``Unit`` (formats with units of their own enable it: Ignition's and
Butane's ``enabled: true`` on a unit without contents, coreos-cloudinit's
``enable: true``, cloud-config's ``systemctl enable``) and, because the unit file is the
OS's (``/lib/systemd/system`` or ``/usr/lib/systemd/system``, not
``/etc/systemd/system``, so ``plan_model.install_links`` does not apply), the symlinks
``systemctl enable systemd-networkd.service`` makes on the target's systemd version as
Plan ``Link`` entries: the tree and the role write them, and the doctor reads them
through a Plan overlay.

The links follow the ``[Install]`` section of upstream's
``units/systemd-networkd.service.in`` (``WantedBy=``, ``Alias=`` and the ``Also=`` units
with their own ``WantedBy=``); ``INSTALL`` below records which version added what.
tests/test_stack_service.py compares them with the real ``systemctl --root enable`` of the
systemd installed here (Debian 12: 252), on this machine's unit files and on Debian 11's
(systemd 247, from the debootstrapped root of scripts/build-debian-image.sh).

Enabling does not start networkd: on a live host the ``networkd-start`` action does (the
role leaves it to the next boot when it takes a NIC over from ifupdown: starting networkd
there now could drop the controller's address, see roles/netharden/README.md).
"""

from __future__ import annotations

from functools import lru_cache

from ..plan_model import PHASE_NETWORKD, Action, Link, Plan, Unit, ensure_running, unit_triggers
from ..profile import Profile
from ..targets import UNIT_DIR, vendor_unit_dir
from .networkd import NETWORK_DIR, NETWORKD, NETWORKD_CONF

GUARDS = ("config",)
WHY = "systemd-networkd must run, or netharden's .network/.netdev files are inert (Debian ships it disabled)"

# (first systemd version, link below /etc/systemd/system, unit it points to): what
# `systemctl enable systemd-networkd.service` makes. The unit's own WantedBy= and Alias=,
# then each Also= unit's WantedBy=.
INSTALL: tuple[tuple[int, str, str], ...] = (
    (0, f"multi-user.target.wants/{NETWORKD}", NETWORKD),
    (0, "dbus-org.freedesktop.network1.service", NETWORKD),
    (0, "sockets.target.wants/systemd-networkd.socket", "systemd-networkd.socket"),
    (0, "network-online.target.wants/systemd-networkd-wait-online.service", "systemd-networkd-wait-online.service"),
    # Also=systemd-network-generator.service: not in 247 (Debian 11's unit), in 252 (Debian
    # 12's), both measured in tests/test_stack_service.py; 250 is the boundary assumed
    (250, "sysinit.target.wants/systemd-network-generator.service", "systemd-network-generator.service"),
    # networkd's varlink interface moved to socket units (Also=) in 257, metrics and the
    # resolved hook in 258
    (257, "sockets.target.wants/systemd-networkd-varlink.socket", "systemd-networkd-varlink.socket"),
    (258, "sockets.target.wants/systemd-networkd-varlink-metrics.socket", "systemd-networkd-varlink-metrics.socket"),
    (258, "sockets.target.wants/systemd-networkd-resolve-hook.socket", "systemd-networkd-resolve-hook.socket"),
)


# Directories whose files only a running networkd reads: netharden writes networkd files.
NETWORKD_PATHS = (f"{NETWORK_DIR}/", "/etc/systemd/networkd.conf")


def render(profile: Profile, plan: Plan) -> None:
    """Enable networkd when the Plan has networkd files (the networkd renderer ran first)."""
    if any(path.startswith(NETWORKD_PATHS) for path in plan.paths()):
        plan.extend(networkd_enabled(profile.os, profile.systemd))


@lru_cache(maxsize=32)
def networkd_enabled(os_name: str, systemd: int) -> tuple[Unit | Link | Action, ...]:
    """The Unit that enables systemd-networkd.service, the links enabling it makes, and the
    action that makes sure it runs on a live host (after the quarantine's units, before
    ``networkctl reload``: a reload would start it through D-Bus activation anyway, once
    the alias link is in place)."""
    return (
        Unit(NETWORKD, enabled=True, guards=GUARDS, why=WHY),
        *enablement_links(os_name, systemd),
        start_action(),
    )


@lru_cache(maxsize=1)
def start_action() -> Action:
    """Ensure-started (an applier starts it only when it is not running; never a restart).
    networkd reads networkd.conf and its directory when it starts."""
    read = (*NETWORKD_CONF, f"{NETWORK_DIR}/")
    return ensure_running(
        "networkd-start",
        NETWORKD,
        "systemd-networkd reads netharden's files",
        PHASE_NETWORKD - 1,
        unit_triggers(NETWORKD, *read),
    )


@lru_cache(maxsize=32)
def enablement_links(os_name: str, systemd: int) -> tuple[Link, ...]:
    vendor = vendor_unit_dir(os_name, systemd)
    return tuple(
        Link(f"{UNIT_DIR}/{path}", f"{vendor}/{unit}", GUARDS, f"enable {NETWORKD}")
        for since, path, unit in INSTALL
        if systemd >= since
    )
