"""The one place file text is produced: Jinja2 templates under templates/.

StrictUndefined makes a missing variable an error, never an empty string. Every value
that reaches INI text passes the ``ini`` filter, which refuses newlines and control
characters again (the schema already did: this is the writer's own guard).

Templates normally render through ``_jinja_lite``: Jinja2's own compiled code for each
template (``python -m netharden.precompile --write`` writes it into
``netharden/_templates_compiled.py``), run by a small runtime, so that a render neither
imports jinja2 nor parses and compiles templates (together about a third of a cold
``netharden render``; docs/performance.md). That path is one decision, taken once: it
is taken when the module records the installed Jinja2's version, these
``COMPILE_OPTIONS`` and the current source bytes of every template, and every
template's code needs nothing beyond the lite runtime. Otherwise (an edited template,
another Jinja2) every template renders with jinja2 from source: the lite path can make
rendering faster, never different. Errors are raised on either path, never retried.
``NETHARDEN_PRECOMPILED=0`` turns it off (tests and benchmarks compare both paths).
jinja2 is imported only when a template needs it, so ``validate``, ``schema`` and
``--help`` never import it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from .plan_model import GENERATED, GUARDS


class RenderError(ValueError):
    """A value that must never reach a generated file did (a bug upstream of the writer)."""


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _ini(value: Any) -> str:
    text = str(value)
    if _CONTROL_CHARS.search(text):
        raise RenderError(f"refusing to write a control character into INI text: {text!r}")
    return text


_SPACE = re.compile(r"\s")  # str.isspace's characters: both use Python's Unicode whitespace table


def _ini_list(values: Iterable[Any]) -> str:
    parts = [_ini(v) for v in values]
    for p in parts:
        if not p or _SPACE.search(p):
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


def _yaml(value: Any) -> str:
    """One YAML scalar (emitters/_yaml.scalar: a plain word, else quoted; booleans as
    true/false), refusing control characters like ``ini`` (netplan's values never hold one)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    from .emitters._yaml import scalar

    return scalar(_ini(value))


FILTERS = {"ini": _ini, "ini_list": _ini_list, "yesno": _yesno, "sh": _sh, "json": _json, "yaml": _yaml}


# What every template may read besides its own context.
GLOBALS = {"guard_text": GUARDS, "generated": GENERATED}

# Environment options that change the code Jinja2 generates; the precompiled modules
# record them and are ignored when they differ.
COMPILE_OPTIONS: dict[str, Any] = {
    "autoescape": False,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}


def jinja2_version() -> str:
    """The installed Jinja2's version, read from its __init__.py without importing it
    (importing jinja2 is what the lite path avoids)."""
    import re
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("jinja2")
    if spec is None or not spec.origin:
        return ""
    try:
        with open(spec.origin, encoding="utf-8") as fh:
            found = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", fh.read(), re.M)
    except OSError:
        return ""
    return found.group(1) if found else ""


@lru_cache(maxsize=1)
def precompiled_enabled() -> bool:
    """NETHARDEN_PRECOMPILED, read once per process (tests that switch it clear this)."""
    return os.environ.get("NETHARDEN_PRECOMPILED", "1") != "0"


@lru_cache(maxsize=1)
def _lite():
    """The lite environment over the precompiled templates, or None (use jinja2): None
    unless every template under templates/ is precompiled, lite and current."""
    from . import _jinja_lite
    from .resources import root

    try:
        from . import _templates_compiled as compiled
    except ImportError:  # pragma: no cover - generated and shipped with the package
        return None
    if compiled.OPTIONS != COMPILE_OPTIONS or compiled.JINJA2_VERSION != jinja2_version():
        return None
    templates = root("templates")
    sources = {p.relative_to(templates).as_posix() for p in templates.rglob("*.j2")}
    entries = compiled.TEMPLATES
    if set(entries) != sources or any(
        factory is None or (templates / name).read_bytes() != source for name, (source, factory) in entries.items()
    ):
        return None
    return _jinja_lite.Environment(FILTERS, GLOBALS, entries)


@lru_cache(maxsize=1)
def environment():
    """The Jinja2 environment (templates compiled from source)."""
    import jinja2

    from .resources import root

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root("templates"))), undefined=jinja2.StrictUndefined, **COMPILE_OPTIONS
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


def render(template: str, **context: Any) -> str:
    env = _lite() if precompiled_enabled() else None
    text = env.render(template, context) if env is not None else environment().get_template(template).render(**context)
    return text if text.endswith("\n") else text + "\n"  # trim_blocks eats the last newline after a block
