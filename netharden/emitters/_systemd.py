"""Shared by the emitters whose formats carry systemd units separately from plain
files (Ignition, Butane, legacy CoreOS cloud-config): the Plan's files split into
units (``/etc/systemd/system/NAME``), their drop-ins (``NAME.d/*.conf``) and everything
else, with the enablement from ``Plan.units`` attached. Knows systemd's file layout,
nothing about networking.

An empty unit file or drop-in stays a plain file: Ignition and coreos-cloudinit both
skip a unit or drop-in whose contents are empty, so only a file entry writes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..plan_model import File, Plan
from ..targets import UNIT_DIR

UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount", ".automount", ".swap", ".slice", ".scope")


@dataclass
class SystemdUnit:
    name: str
    contents: str | None = None          # None: only drop-ins (a unit the OS ships)
    dropins: list[tuple[str, str]] = field(default_factory=list)   # (file name, contents), sorted
    enabled: bool | None = None
    masked: bool = False


def split_units(plan: Plan) -> tuple[list[SystemdUnit], list[File]]:
    """(units sorted by name, the remaining files in plan order)."""
    units: dict[str, SystemdUnit] = {}
    rest: list[File] = []
    for f in plan.files:
        directory, _, base = f.path.rpartition("/")
        parent, _, dropin_dir = directory.rpartition("/")
        if f.content == "" or f.mode != 0o644:
            rest.append(f)
        elif directory == UNIT_DIR and base.endswith(UNIT_SUFFIXES):
            units.setdefault(base, SystemdUnit(base)).contents = f.content
        elif parent == UNIT_DIR and dropin_dir.endswith(".d") and dropin_dir[:-2].endswith(UNIT_SUFFIXES) \
                and base.endswith(".conf"):
            units.setdefault(dropin_dir[:-2], SystemdUnit(dropin_dir[:-2])).dropins.append((base, f.content))
        else:
            rest.append(f)
    for u in plan.units:
        unit = units.setdefault(u.name, SystemdUnit(u.name))
        unit.enabled, unit.masked = u.enabled, u.masked
    for unit in units.values():
        unit.dropins.sort()
    return [units[n] for n in sorted(units)], rest
