"""The lab's scenarios, in the order they run (see ``..scenario`` for their shape). A
scenario's ``STACK`` ("networkd", "networkmanager" or None for every stack) says which
hosts it replays; the lab runs those of the profile's ``platform.stack`` (a netplan host also
runs networkd's)."""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = (
    "runtime_catchall",
    "networkd_docker_race",
    "bridge_mac_churn",
    "stale_vxlan",
    "container_ipv6",
    "foreign_routes",
    "uplink_shadowed",
    "nm_container_race",
    "nm_auto_default_alone",
    "nm_bridge_mac_churn",
    "nm_unmanaged_drop",
    "nm_live_apply",
)


def all_scenarios() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in NAMES]


# netplan renders to networkd: a netplan host runs networkd's scenarios too
ALSO = {"netplan": ("networkd",)}


def for_stack(stack: str) -> list[ModuleType]:
    """The scenarios of a network stack (``STACK``), those of the stacks it renders to
    (:data:`ALSO`), and those every stack has (None)."""
    stacks = (None, stack, *ALSO.get(stack, ()))
    return [m for m in all_scenarios() if getattr(m, "STACK", None) in stacks]


def by_id() -> dict[str, ModuleType]:
    return {m.ID: m for m in all_scenarios()}
