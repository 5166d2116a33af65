"""One emitter per output format; none knows anything about networking.

An emitter module defines ``KIND`` and either ``render(plan) -> bytes`` (KIND "stream":
one document, to stdout or a file) or ``fill(plan, root: Path)`` (KIND "directory":
writes a tree below an empty directory). Atomicity is handled here, once, for all of
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
}


def get(name: str) -> ModuleType:
    if name not in EMITTERS:
        raise UsageError(f"unknown format {name!r}; known formats: {', '.join(sorted(EMITTERS))}")
    return importlib.import_module(EMITTERS[name])


def emit(plan: Plan, fmt: str = "tree", out: str | Path | None = None, *, force: bool = False) -> bytes | None:
    """Emit ``plan`` in format ``fmt``. Directory formats need ``out``; stream formats
    return their bytes when ``out`` is None, else write ``out`` atomically."""
    emitter = get(fmt)
    if emitter.KIND == "directory":
        if out is None:
            raise UsageError(f"format {fmt!r} writes a directory: give --out DIR")
        write_directory(Path(out), lambda root: emitter.fill(plan, root), force=force)
        return None
    data: bytes = emitter.render(plan)
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
