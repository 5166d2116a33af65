"""Problems found in a profile, reported the way Butane and compilers do.

Every problem carries the file, the line and column of the offending node (1-based),
the JSON path of that node (``$.bridges[0].name``), a one-line message and an optional
hint. ``format()`` gives ``FILE:LINE:COL: error: message (at $.path)`` followed by an
indented ``hint:`` line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathElem = str | int


def json_path(path: Sequence[PathElem]) -> str:
    """Render a path tuple as a JSONPath string: ``$.uplinks[0].match.name``."""
    out = ["$"]
    for elem in path:
        if isinstance(elem, int):
            out.append(f"[{elem}]")
        elif elem.replace("_", "a").replace("-", "a").isalnum() and not elem[:1].isdigit():
            out.append(f".{elem}")
        else:
            # keys such as sysctl names contain dots: quote them like JSONPath does
            escaped = elem.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int  # 1-based; 0 when the source has no positions (a mapping given in Python)
    column: int
    path: tuple
    message: str
    hint: str = ""
    severity: str = "error"

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.severity}: {self.message} (at {json_path(self.path)})"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": json_path(self.path),
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }


class NetHardenError(Exception):
    """Base class of every error netharden reports to a user (exit code 2)."""


class ProfileError(NetHardenError):
    """One or more problems in a profile. ``problems`` is sorted by position."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.column, json_path(p.path), p.message))
        super().__init__("\n".join(p.format() for p in self.problems))


class UsageError(NetHardenError):
    """Bad command-line use or an output location that cannot be written."""
