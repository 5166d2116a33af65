"""Where the schemas and templates are: installed as netharden.schemas/netharden.templates
(see pyproject.toml), or, when running from a source checkout, at the top level."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=None)
def root(kind: str) -> Path:
    """Directory of ``kind`` ("schemas" or "templates")."""
    try:
        from importlib import resources
        found = Path(str(resources.files(f"netharden.{kind}")))
        if found.is_dir():
            return found
    except ModuleNotFoundError:
        pass
    return _CHECKOUT / kind


def read_text(kind: str, name: str) -> str:
    return (root(kind) / name).read_text(encoding="utf-8")
