"""Run the checks against a Host, and with a profile say which findings applying it fixes."""

from __future__ import annotations

from .host import Host
from .model import CheckRun, Finding, Report

# the note of a finding only the profile's files bring (ABOUT_PROFILE checks): applying it does not fix it
PROFILE_ONLY = "found with the profile's files in place"


def _complete(check, finding: Finding) -> Finding:
    from dataclasses import replace

    return replace(
        finding,
        check=check.ID,
        severity=finding.severity or check.SEVERITY,
        incident=finding.incident or check.INCIDENT,
        hint=finding.hint or check.HINT,
    )


def _run_one(check, host: Host) -> CheckRun:
    run = CheckRun(check.ID, check.TITLE, check.SEVERITY, check.INCIDENT, check.HINT)
    if check.NEEDS == "live" and not host.live:
        run.skipped = "needs the live host (not with --root)"
        return run
    reason = check.applies(host) if hasattr(check, "applies") else None
    if reason:
        run.skipped = f"does not apply: {reason}"
        return run
    try:
        findings = check.check(host)
    except Exception as exc:  # one broken check must not hide the others' findings
        run.error = f"{type(exc).__name__}: {exc}"
        return run
    run.findings = sorted((_complete(check, f) for f in findings), key=lambda f: (f.subject, f.message))
    return run


def plan_overlay(plan) -> dict[str, tuple[str, str]]:
    overlay = {f.path: ("file", f.content) for f in plan.files}
    overlay.update({link.path: ("link", link.target) for link in plan.links})
    return overlay


def run(host: Host, only: list[str] | None = None, profile=None, plan=None) -> Report:
    """``plan``: the profile's Plan when the caller has it (tests hand-write one); built from
    ``profile`` otherwise."""
    from dataclasses import replace

    from .checks import all_checks

    checks = [c for c in all_checks() if not only or c.ID in only]
    report = Report(root=str(host.root), live=host.live, profile=getattr(profile, "name", None))
    fixed_host = None
    if profile is not None:
        from ..renderers import build_plan

        plan = build_plan(profile) if plan is None else plan
        fixed_host = host.with_overlay(plan_overlay(plan))
    for check in checks:
        result = _run_one(check, host)
        about_profile = getattr(check, "ABOUT_PROFILE", False)
        if plan is not None and fixed_host is not None and (result.findings or about_profile):
            after = _run_one(check, fixed_host)
            remaining = {(f.subject, f.message) for f in after.findings}
            remaining_subjects = {f.subject for f in after.findings}
            marked = []
            for f in result.findings:
                verdict = check.fixed_by(profile, plan, f, host) if hasattr(check, "fixed_by") else None
                if verdict is not None:
                    fixed, note = verdict
                elif after.error:
                    fixed, note = False, f"could not check with the profile applied: {after.error}"
                elif after.skipped:
                    fixed, note = False, f"not checked with the profile's files in place: {after.skipped}"
                elif f.subject in remaining_subjects:
                    fixed = False
                    note = (
                        "still found with the profile's files in place"
                        if (f.subject, f.message) in remaining
                        else "still found (differently) with the profile's files in place"
                    )
                else:
                    fixed, note = True, "gone with the profile's files in place"
                marked.append(replace(f, fixed_by_profile=fixed, profile_note=note))
            if about_profile:
                # what only the profile's files bring (the check judges them): applying it does not
                # take effect
                before = {(f.subject, f.message) for f in result.findings}
                before_subjects = {f.subject for f in result.findings}
                for f in after.findings:
                    if (f.subject, f.message) not in before and f.subject not in before_subjects:
                        marked.append(replace(f, fixed_by_profile=False, profile_note=PROFILE_ONLY))
                if after.error and not result.error:
                    result.error = f"with the profile's files in place: {after.error}"
                if result.skipped and any(f.profile_note == PROFILE_ONLY for f in marked):
                    result.skipped = None  # it applies, and finds something, once the profile's files are in place
            result.findings = sorted(marked, key=lambda f: (f.subject, f.message))
        report.checks.append(result)
    return report
