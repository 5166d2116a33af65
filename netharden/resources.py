"""Where the schemas and templates are.

Installed (wheel): pyproject's package-dir mapping puts them inside the package, at
``netharden/schemas`` and ``netharden/templates``. Source checkout or editable install:
they are at the top level of the repository, beside ``netharden/``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def root(kind: str) -> Path:
    """Directory of ``kind`` ("schemas" or "templates")."""
    inside = _PACKAGE / kind
    return inside if inside.is_dir() else _PACKAGE.parent / kind


def read_text(kind: str, name: str) -> str:
    return (root(kind) / name).read_text(encoding="utf-8")
