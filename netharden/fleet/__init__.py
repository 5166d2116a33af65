"""Fleets: many hosts rendered in one run (``netharden render FLEET --out DIR``).

``model``: the two forms (a ``kind: Fleet`` file, read by ``yamlload`` like a profile;
a directory of host profiles), the merge rules and host documents with positions;
``check``: validation with shared subtrees checked once; ``run``: parallel rendering
into one atomically written directory, progress and summary.
"""

from __future__ import annotations

import re
from pathlib import Path

from .model import Fleet, Host, host_profile, load, merge
from .run import EXTENSIONS, Result, run

__all__ = ["EXTENSIONS", "Fleet", "Host", "Result", "host_profile", "is_fleet", "load", "merge", "run"]

_KIND = re.compile(rb"""^(?:kind:[ \t]*["']?Fleet["']?[ \t]*(?:#.*)?\r?$|.*"kind"[ \t]*:[ \t]*"Fleet")""", re.M)


def is_fleet(path: str | Path) -> bool:
    """A directory, or a file with a top-level ``kind: Fleet`` line (block YAML) or a
    ``"kind": "Fleet"`` member (JSON). Anything else is read as one host profile,
    whose own validation then explains what is wrong."""
    p = Path(path)
    if p.is_dir():
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    return bool(_KIND.search(head))
