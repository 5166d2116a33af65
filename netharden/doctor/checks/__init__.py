"""The doctor's checks, in report order. Each module has ID, TITLE, SEVERITY, INCIDENT, HINT,
NEEDS ("files" or "live") and check(host) -> list[Finding]; optionally
fixed_by(profile, plan, finding, host) -> (bool, note) | None where applying a profile fixes a
finding in a way its files alone cannot show (live state, a helper that moves files); None
falls back to re-running the check with the profile's files laid over the host; optionally
applies(host) -> str | None: why the check does not apply to this host (it is then skipped
with that reason: the NetworkManager checks on a host without NetworkManager, the checks of
networkd's .network files on a NetworkManager host without systemd-networkd); optionally
ABOUT_PROFILE = True: the check judges the profile's own files, so with a profile the runner
also reports what it finds with the profile's files laid over the host (fixed_by_profile
False: applying the profile brings that problem)."""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = (
    "catchall_network",
    "vendor_docker_network",
    "bridge_mac_follows_ports",
    "stale_vxlan",
    "veth_mac_policy",
    "foreign_routes",
    "docker_daemon",
    "runtime_not_held",
    "nm_manages_container_interfaces",
    "nm_bridge_mac_not_pinned",
    "nm_keyfile_insecure_mode",
    "uplink_shadowed",
    "netplan_conflict",
    "stack_not_running",
    "nic_owned_by_other_manager",
)


def all_checks() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in MODULES]


def by_id() -> dict[str, ModuleType]:
    return {c.ID: c for c in all_checks()}
