"""Findings and the report of one doctor run."""

from __future__ import annotations

from dataclasses import dataclass, field

# most severe first; --fail-on takes one of these (or "never")
SEVERITIES = ("error", "warning", "info")


def rank(severity: str) -> int:
    """0 for the most severe."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    """One problem a check found: ``subject`` is the file or device at fault, ``message``
    says what is wrong with it (and what it catches or breaks now, where known).
    ``check``, ``severity``, ``incident`` and ``hint`` are filled in from the check by the runner
    unless the check sets them (a check may lower or raise the severity of one finding)."""

    subject: str
    message: str
    check: str = ""
    severity: str = ""
    incident: str = ""
    hint: str = ""
    # with --profile: True the profile fixes it, False it does not, None not asked
    fixed_by_profile: bool | None = None
    profile_note: str = ""

    def to_dict(self) -> dict:
        out: dict[str, object] = {
            "check": self.check,
            "severity": self.severity,
            "incident": self.incident,
            "subject": self.subject,
            "message": self.message,
            "hint": self.hint,
        }
        if self.fixed_by_profile is not None:
            out["fixed_by_profile"] = self.fixed_by_profile
            out["profile_note"] = self.profile_note
        return out


@dataclass
class CheckRun:
    """What one check did: its findings, or why it did not run (``skipped``)."""

    id: str
    title: str
    severity: str
    incident: str
    hint: str
    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "incident": self.incident,
            "hint": self.hint,
            "skipped": self.skipped,
            "error": self.error,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class Report:
    root: str
    live: bool
    checks: list[CheckRun] = field(default_factory=list)
    profile: str | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings]

    def exit_code(self, fail_on: str) -> int:
        """1 when a finding is at or above ``fail_on`` (or a check errored), else 0."""
        if any(c.error for c in self.checks):
            return 1
        if fail_on == "never":
            return 0
        return 1 if any(rank(f.severity) <= rank(fail_on) for f in self.findings) else 0

    def to_dict(self) -> dict:
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}
        return {
            "apiVersion": "netharden/v1",
            "kind": "DoctorReport",
            "root": self.root,
            "live": self.live,
            "profile": self.profile,
            "summary": counts,
            "checks": [c.to_dict() for c in self.checks],
        }
