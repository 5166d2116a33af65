"""The one place file text is produced: Jinja2 templates under templates/.

StrictUndefined makes a missing variable an error, never an empty string. Every value
that reaches INI text passes the ``ini`` filter, which refuses newlines and control
characters again (the schema already did: this is the writer's own guard).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable

from .plan_model import GUARDS


class RenderError(ValueError):
    """A value that must never reach a generated file did (a bug upstream of the writer)."""


def _ini(value: Any) -> str:
    text = str(value)
    for ch in text:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise RenderError(f"refusing to write a control character into INI text: {text!r}")
    return text


def _ini_list(values: Iterable[Any]) -> str:
    parts = [_ini(v) for v in values]
    for p in parts:
        if not p or any(ch.isspace() for ch in p):
            raise RenderError(f"list items in INI text must be non-empty words: {p!r}")
    return " ".join(parts)


def _sh(value: Any) -> str:
    """One shell word, single-quoted when needed (for sh scripts and ExecStart= lines)."""
    import shlex
    return shlex.quote(_ini(value))


def _json(value: Any) -> str:
    """Deterministic, human-readable JSON (sorted keys, two-space indent, UTF-8 kept)."""
    import json
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _yesno(value: bool) -> str:
    if not isinstance(value, bool):
        raise RenderError(f"expected a boolean, got {value!r}")
    return "yes" if value else "no"


@lru_cache(maxsize=1)
def environment():
    import jinja2

    from .resources import root

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root("templates"))),
        undefined=jinja2.StrictUndefined, autoescape=False,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters.update(ini=_ini, ini_list=_ini_list, yesno=_yesno, sh=_sh, json=_json)
    env.globals["guard_text"] = GUARDS
    return env


def render(template: str, **context: Any) -> str:
    text = environment().get_template(template).render(**context)
    return text if text.endswith("\n") else text + "\n"  # trim_blocks eats the last newline after a block
