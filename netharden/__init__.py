"""netharden: one declarative host profile -> hardened container-host networking.

Public API (typed, stable)::

    import netharden
    profile = netharden.load("examples/full-host.yaml")   # or a mapping, or netharden.loads(text)
    plan = netharden.plan(profile)                         # format-free Plan
    netharden.emit(plan, "tree", "out/")                   # write a format

``load``/``loads`` raise ``netharden.ProfileError`` whose ``problems`` each carry file,
line, column, JSON path, message and hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .problems import NetHardenError, Problem, ProfileError, UsageError

if TYPE_CHECKING:
    from .plan_model import Plan
    from .profile import Profile

__version__ = "0.1.0"
__all__ = ["NetHardenError", "Problem", "ProfileError", "UsageError", "__version__", "emit", "load", "loads", "plan"]


def _finish(doc) -> Profile:
    from .profile import normalize
    from .validate import validate

    problems = validate(doc)
    if problems:
        raise ProfileError(problems)
    return normalize(doc.data, source=doc.file)


def load(source: str | Path | Mapping[str, Any], *, filename: str | None = None) -> Profile:
    """Load and validate a profile from a file path, or from an already parsed mapping
    (e.g. an Ansible variable; problems then name the JSON path but no line)."""
    from .yamlload import Document, load_file

    if isinstance(source, Mapping):
        import json

        try:
            data = json.loads(json.dumps(source))  # plain JSON types only
        except (TypeError, ValueError) as exc:
            raise ProfileError(
                [Problem(filename or "<mapping>", 0, 0, (), f"the profile holds a value that is not plain data: {exc}")]
            ) from None
        if not isinstance(data, dict):
            raise ProfileError([Problem(filename or "<mapping>", 0, 0, (), "the profile is not a mapping")])
        return _finish(Document(file=filename or "<mapping>", data=data, positions={}))
    return _finish(load_file(source))


def loads(text: str | bytes, filename: str = "<string>") -> Profile:
    """Load and validate a profile from YAML or JSON text."""
    from .yamlload import load_text

    return _finish(load_text(text, filename))


def plan(profile: Profile) -> Plan:
    """Render a Profile into the format-free Plan (deterministic)."""
    from .renderers import build_plan

    return build_plan(profile)


def emit(
    plan: Plan, format: str = "tree", out: str | Path | None = None, *, force: bool = False, **options: str | None
) -> bytes | None:
    """Emit a Plan. Directory formats (``tree``) need ``out``; stream formats return
    bytes when ``out`` is None. Output is written atomically. ``options`` are the
    format's own: ``ignition_version`` (ignition, butane), ``variant`` (butane)."""
    from .emitters import emit as _emit

    return _emit(plan, format, out, force=force, **options)
