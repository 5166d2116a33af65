"""One emitter per output format; none knows anything about networking.

An emitter module defines ``KIND`` and either ``render(plan, **options) -> bytes`` (KIND
"stream": one document, to stdout or a file) or ``fill(plan, root: Path)`` (KIND
"directory": writes a tree below an empty directory). A module with options declares
``OPTIONS = {name: (choices, default)}`` (e.g. Ignition's spec version); ``emit`` checks
them, so an option given to a format that does not take it is a usage error. Atomicity is handled here, once, for all of
them: output is written to a temporary sibling and renamed into place, so a failure
never leaves a partial file or directory behind.

Adding a format is one module and one line in EMITTERS.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

from ..plan_model import Plan
from ..problems import UsageError

EMITTERS: dict[str, str] = {
    "tree": "netharden.emitters.tree",
    "cloud-config": "netharden.emitters.cloudconfig",
    "ignition": "netharden.emitters.ignition",
    "butane": "netharden.emitters.butane",
    "coreos-cloud-config": "netharden.emitters.coreos",
    "plan": "netharden.emitters.planjson",
}

# CLI flag of each emitter option (an option name is a Python identifier)
OPTION_FLAGS: dict[str, str] = {"ignition_version": "--ignition-version", "variant": "--variant"}


def get(name: str) -> ModuleType:
    if name not in EMITTERS:
        raise UsageError(f"unknown format {name!r}; known formats: {', '.join(sorted(EMITTERS))}")
    return importlib.import_module(EMITTERS[name])


def options_for(emitter: ModuleType, fmt: str, given: dict[str, str | None]) -> dict[str, str]:
    """The emitter's options: defaults, overridden by ``given`` (None: not given)."""
    known: dict = getattr(emitter, "OPTIONS", {})
    chosen = {name: default for name, (_, default) in known.items()}
    for name, value in given.items():
        if value is None:
            continue
        flag = OPTION_FLAGS.get(name, name)
        if name not in known:
            takers = [f for f in sorted(EMITTERS) if name in getattr(get(f), "OPTIONS", {})]
            raise UsageError(
                f"{flag} does not apply to --format {fmt}" + (f" (only to {', '.join(takers)})" if takers else "")
            )
        choices = known[name][0]
        if value not in choices:
            raise UsageError(f"{flag} {value!r} is not one of: {', '.join(choices)}")
        chosen[name] = value
    return chosen


def emit(
    plan: Plan, fmt: str = "tree", out: str | Path | None = None, *, force: bool = False, **options: str | None
) -> bytes | None:
    """Emit ``plan`` in format ``fmt``. Directory formats need ``out``; stream formats
    return their bytes when ``out`` is None, else write ``out`` atomically. ``options``
    are the format's own (``ignition_version``, ``variant``)."""
    emitter = get(fmt)
    chosen = options_for(emitter, fmt, options)
    if emitter.KIND == "directory":
        if out is None:
            raise UsageError(f"format {fmt!r} writes a directory: give --out DIR")
        write_directory(Path(out), lambda root: emitter.fill(plan, root), force=force)
        return None
    data: bytes = emitter.render(plan, **chosen)
    if out is None:
        return data
    write_file(Path(out), data, force=force)
    return None


def _check_target(out: Path, *, force: bool, directory: bool) -> None:
    if out.is_symlink() or (out.exists() and out.is_dir() != directory):
        raise UsageError(f"{out} exists and is not a {'directory' if directory else 'regular file'}")
    if out.exists() and not force and (not directory or any(out.iterdir())):
        raise UsageError(f"{out} exists{' and is not empty' if directory else ''}; use --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"parent directory {out.parent} does not exist")


def write_directory(out: Path, fill, *, force: bool = False) -> None:
    out = out.absolute()
    _check_target(out, force=force, directory=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".netharden-tmp", dir=out.parent))
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".netharden-old", dir=out.parent))
            os.rename(out, old / "d")
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_file(out: Path, data: bytes, *, force: bool = False) -> None:
    out = out.absolute()
    _check_target(out, force=force, directory=False)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".netharden-tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(name, 0o644)
        os.replace(name, out)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
