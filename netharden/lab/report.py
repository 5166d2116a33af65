"""How a lab run is shown: a table with evidence on a terminal, or JSON."""

from __future__ import annotations

import sys
from typing import TextIO

from .scenario import BREAKS, ERROR, FAILS, HOLDS, NOT_REPRODUCIBLE, SKIPPED, Outcome

_WORDS = {
    BREAKS: "breaks",
    NOT_REPRODUCIBLE: "not reproducible",
    HOLDS: "holds",
    FAILS: "FAILS",
    SKIPPED: "skipped",
    ERROR: "ERROR",
}
_COLOURS = {BREAKS: "33", NOT_REPRODUCIBLE: "2", HOLDS: "32", FAILS: "1;31", SKIPPED: "2", ERROR: "1;31"}


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when the profile holds in every scenario that applies, 1 otherwise."""
    return 1 if any(o.failed for o in outcomes) else 0


# the lab's daemon per stack: (report name, JSON key)
DAEMONS = {
    "networkd": ("systemd-networkd", "systemd"),
    # netplan renders to networkd: the lab runs networkd over netplan generate's output
    "netplan": ("systemd-networkd", "systemd"),
    "networkmanager": ("NetworkManager", "networkmanager"),
}


def to_json(profile: str, version: int | str, outcomes: list[Outcome], stack: str = "networkd") -> dict:
    return {
        "profile": profile,
        DAEMONS[stack][1]: version,
        "ok": exit_code(outcomes) == 0,
        "scenarios": [o.to_dict() for o in outcomes],
    }


def _word(status: str, version: int | str, colour: bool, stack: str = "networkd") -> str:
    daemon = "systemd" if DAEMONS[stack][1] == "systemd" else DAEMONS[stack][0]
    text = _WORDS[status] + (f" on {daemon} {version}" if status == NOT_REPRODUCIBLE else "")
    return f"\033[{_COLOURS[status]}m{text}\033[0m" if colour else text


def table(
    profile: str,
    version: int | str,
    outcomes: list[Outcome],
    out: TextIO = sys.stdout,
    colour: bool = False,
    stack: str = "networkd",
) -> None:
    rows = [("scenario", "incident", "baseline", "profile", "seconds")]
    for o in outcomes:
        rows.append(
            (
                o.id,
                o.incident,
                _word(o.baseline.status, version, False, stack),
                _word(o.profile.status, version, False, stack),
                f"{o.seconds:.1f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"netharden lab: {profile} on {DAEMONS[stack][0]} {version}\n", file=out)
    for n, row in enumerate(rows):
        cells = list(row)
        if n and colour:  # pad first, then colour, so escapes do not break the columns
            o = outcomes[n - 1]
            cells[2] = _word(o.baseline.status, version, True, stack) + " " * (widths[2] - len(row[2]))
            cells[3] = _word(o.profile.status, version, True, stack) + " " * (widths[3] - len(row[3]))
            print(
                "  ".join(
                    [
                        cells[0].ljust(widths[0]),
                        cells[1].ljust(widths[1]),
                        cells[2],
                        cells[3],
                        cells[4].rjust(widths[4]),
                    ]
                ),
                file=out,
            )
        else:
            print(
                "  ".join(
                    [c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
                ),
                file=out,
            )
    for o in outcomes:
        print(f"\n{o.id}: {o.title}", file=out)
        for side, result in (("baseline", o.baseline), ("profile", o.profile)):
            for line in result.evidence:
                print(f"  {side}: {line}", file=out)
        if o.failed:
            print(f"  hint: {o.hint}", file=out)
    failed = [o.id for o in outcomes if o.failed]
    held = sum(1 for o in outcomes if o.profile.status == HOLDS)
    summary = (
        f"FAILED: {', '.join(failed)}" if failed else f"the profile holds in {held} scenario{'s' if held != 1 else ''}"
    )
    print(f"\n{summary}", file=out)
