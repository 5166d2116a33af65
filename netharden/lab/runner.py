"""Run lab scenarios over one profile: each in its own scratch directory and
namespaces, baseline first, then the profile; timing and errors recorded per side.

A scenario that raises is an ERROR on that side (the lab then exits 1), never a crash
of the lab. Ctrl-C stops the run after the current step's own cleanup (the harness
defers SIGINT while it tears a namespace down); the scratch directory is removed on
every path unless ``keep`` is set.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from ..plan_model import Plan
from ..profile import Profile
from .scenario import ERROR, SKIPPED, Context, Outcome, Result, remove_workdir
from .scenarios import for_stack

Progress = Callable[[str, str], None]  # (scenario id, step: "baseline" | "profile" | "done")


def run(
    profile: Profile,
    plan: Plan,
    ids: list[str] | None = None,
    *,
    keep: bool = False,
    progress: Progress | None = None,
    udev: bool = False,
) -> tuple[list[Outcome], Path | None]:
    """Run the scenarios of the profile's stack (all, or those in ``ids``, in lab order). Returns the outcomes
    and the kept work directory (None unless ``keep``)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"netharden-lab.{os.getpid()}."))
    outcomes: list[Outcome] = []
    try:
        ctx = Context(profile, plan, workdir, udev=udev)
        for scenario in for_stack(profile.stack):
            if ids and scenario.ID not in ids:
                continue
            outcomes.append(_run_one(scenario, ctx, progress))
    finally:
        if not keep:
            remove_workdir(workdir)
    return outcomes, (workdir if keep else None)


def _run_one(scenario, ctx: Context, progress: Progress | None) -> Outcome:
    start = time.monotonic()
    reason = scenario.applies(ctx)
    if reason is not None:
        skipped = Result(SKIPPED, [reason])
        outcome = Outcome(scenario.ID, scenario.TITLE, scenario.INCIDENT, scenario.HINT, skipped, skipped)
    else:
        sides = {}
        for side in ("baseline", "profile"):
            if progress:
                progress(scenario.ID, side)
            try:
                sides[side] = getattr(scenario, side)(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a broken scenario is reported, not a lab crash
                last = traceback.extract_tb(exc.__traceback__)[-1]
                sides[side] = Result(ERROR, [f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"])
        outcome = Outcome(
            scenario.ID, scenario.TITLE, scenario.INCIDENT, scenario.HINT, sides["baseline"], sides["profile"]
        )
    outcome.seconds = time.monotonic() - start
    if progress:
        progress(scenario.ID, "done")
    return outcome
