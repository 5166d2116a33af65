"""The doctor's output: one block per finding (like a linter), a summary line, or JSON."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from .model import SEVERITIES, Report

COLOURS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"


def text(report: Report, out: TextIO = sys.stdout, colour: bool = False, summary: bool = True) -> None:
    def paint(code: str, s: str) -> str:
        return f"{code}{s}{RESET}" if colour else s

    where = report.root + (" (live)" if report.live else " (files only)")
    print(f"netharden doctor: {where}" + (f", profile {report.profile}" if report.profile else ""), file=out)
    for run in report.checks:
        for f in run.findings:
            print(
                f"{paint(COLOURS[f.severity], f.severity)} {paint(BOLD, f.check)}: {f.subject}: {f.message}", file=out
            )
            print(f"    fix: {f.hint} ({f.incident})", file=out)
            if f.fixed_by_profile is not None:
                verdict = "fixes it" if f.fixed_by_profile else "does not fix it"
                print(
                    f"    profile {report.profile}: {verdict}" + (f": {f.profile_note}" if f.profile_note else ""),
                    file=out,
                )
        if run.error:
            print(f"{paint(COLOURS['error'], 'error')} {paint(BOLD, run.id)}: the check failed: {run.error}", file=out)
    if summary:
        counts = {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITIES}
        live = [r.id for r in report.checks if r.skipped and r.skipped.startswith("needs the live host")]
        other = [r for r in report.checks if r.skipped and r.id not in live]
        parts = [f"{n} {s}{'s' if n != 1 and s != 'info' else ''}" for s, n in counts.items()]
        line = f"{len(report.checks)} checks: " + ", ".join(parts)
        if live:
            line += f"; skipped (need the live host): {', '.join(live)}"
        for reason in dict.fromkeys(r.skipped or "" for r in other):
            ids = ", ".join(r.id for r in other if r.skipped == reason)
            line += f"; not applicable: {ids} ({reason.removeprefix('does not apply: ')})"
        errors = [r.id for r in report.checks if r.error]
        if errors:
            line += f"; failed to run: {', '.join(errors)}"
        if report.profile and report.findings:
            fixed = sum(1 for f in report.findings if f.fixed_by_profile)
            line += f"; profile {report.profile} fixes {fixed} of {len(report.findings)}"
        print(paint(DIM, line) if colour else line, file=out)


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False)
