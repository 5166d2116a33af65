"""``--format tree``: the Plan as a directory tree rooted at the target's ``/``.

Files get their Plan mode, directories 0755, masks are real symlinks to /dev/null.
Nothing else is written (no manifest, no timestamps inside files), so the tree is
byte-for-byte what every other emitter must reproduce on a host.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..plan_model import Plan

KIND = "directory"


def _target(root: Path, path: str) -> Path:
    rel = Path(path.lstrip("/"))
    if path != "/" + str(rel) or ".." in rel.parts:  # Plan paths are absolute and normalized
        raise ValueError(f"refusing to write outside the tree: {path!r}")
    dest = root / rel
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    return dest


def fill(plan: Plan, root: Path) -> None:
    for f in plan.files:
        dest = _target(root, f.path)
        dest.write_bytes(f.content.encode("utf-8"))
        os.chmod(dest, f.mode)
    for link in plan.links:
        os.symlink(link.target, _target(root, link.path))
