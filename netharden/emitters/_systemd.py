"""Shared by the emitters whose formats carry systemd units separately from plain
files (Ignition, Butane, legacy CoreOS cloud-config): the Plan's files split into
units (``/etc/systemd/system/NAME``), their drop-ins (``NAME.d/*.conf``) and everything
else, with the enablement from ``Plan.units`` attached. Knows systemd's file layout,
nothing about networking.

An empty unit file or drop-in stays a plain file: Ignition and coreos-cloudinit both
skip a unit or drop-in whose contents are empty, so only a file entry writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..plan_model import File, Plan
from ..targets import UNIT_DIR

UNIT_SUFFIXES = (
    ".service",
    ".socket",
    ".timer",
    ".path",
    ".target",
    ".mount",
    ".automount",
    ".swap",
    ".slice",
    ".scope",
)


# Where an OS keeps its own unit files. A Plan link from /etc/systemd/system into one of
# them is an enablement symlink of a vendor unit (what ``systemctl enable`` makes).
VENDOR_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")


def is_vendor_enablement(path: str, target: str) -> bool:
    """True for a link at /etc/systemd/system/[TARGET.wants/]NAME to a vendor unit file."""
    directory, _, unit = target.rpartition("/")
    if directory not in VENDOR_UNIT_DIRS or not unit.endswith(UNIT_SUFFIXES) or not path.startswith(UNIT_DIR + "/"):
        return False
    rest = path[len(UNIT_DIR) + 1 :].split("/")
    return len(rest) == 1 or (len(rest) == 2 and rest[0].endswith((".wants", ".requires")) and rest[1] == unit)


@dataclass(frozen=True)
class SystemdUnit:
    name: str
    contents: str | None = None  # None: only drop-ins (a unit the OS ships)
    dropins: tuple[tuple[str, str], ...] = ()  # (file name, contents), sorted
    enabled: bool | None = None
    masked: bool = False


@lru_cache(maxsize=1024)
def placement(path: str, mode: int, empty: bool) -> tuple[str, str] | None:
    """Where a file of ``path`` goes: (unit name, "") for a unit file, (unit name, file
    name) for a drop-in, None for a plain file (also an empty or non-0644 unit file)."""
    if empty or mode != 0o644:
        return None
    directory, _, base = path.rpartition("/")
    if directory == UNIT_DIR and base.endswith(UNIT_SUFFIXES):
        return base, ""
    parent, _, dropin_dir = directory.rpartition("/")
    if (
        parent == UNIT_DIR
        and dropin_dir.endswith(".d")
        and dropin_dir[:-2].endswith(UNIT_SUFFIXES)
        and base.endswith(".conf")
    ):
        return dropin_dir[:-2], base
    return None


def split_units(plan: Plan) -> tuple[list[SystemdUnit], list[File]]:
    """(units sorted by name, the remaining files in plan order)."""
    contents: dict[str, str | None] = {}
    dropins: dict[str, list[tuple[str, str]]] = {}
    rest: list[File] = []
    for f in plan.files:
        place = placement(f.path, f.mode, f.content == "")
        if place is None:
            rest.append(f)
            continue
        name, dropin = place
        contents.setdefault(name, None)
        if dropin:
            dropins.setdefault(name, []).append((dropin, f.content))
        else:
            contents[name] = f.content
    state = {u.name: (u.enabled, u.masked) for u in plan.units}
    names = sorted(set(contents) | set(state))
    return [
        SystemdUnit(n, contents.get(n), tuple(sorted(dropins.get(n, ()))), *state.get(n, (None, False))) for n in names
    ], rest
