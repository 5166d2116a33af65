"""The lab's scenarios, in the order they run (see ``..scenario`` for their shape)."""

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
)


def all_scenarios() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in NAMES]


def by_id() -> dict[str, ModuleType]:
    return {m.ID: m for m in all_scenarios()}
