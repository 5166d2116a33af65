"""Render or validate every host of a fleet, in parallel, into one output directory.

``run(fleet, fmt, out, ...)`` writes ``OUT/<host><ext>`` for stream formats
(``EXTENSIONS``) and ``OUT/<host>/`` for tree. Decisions:

- Atomic as a whole: everything goes to a temporary sibling of OUT, which is renamed
  into place at the end (``emitters.write_directory``; ``--force`` swaps an existing
  OUT as a whole, like ``render --format tree``). A fleet-level problem, or one bad
  host without ``keep_going``, leaves nothing behind. With ``keep_going`` the good
  hosts are written (when there is at least one) and the bad ones listed; the exit
  code is still 2, because the input had problems (a pipeline must not mistake a
  partial fleet for a complete one).
- Parallel: ``os.fork`` workers (``multiprocessing``'s fork context), as many as
  ``os.sched_getaffinity`` allows, each rendering chunks of host indices and writing
  its files itself; only small verdicts travel back. The first host is rendered in
  the parent before the fork, so imports, the schema validator and the Jinja2
  templates are ready in every worker without being built again, and ``gc.freeze``
  keeps the inherited objects' pages shared. Fewer than ``PARALLEL_MIN`` hosts, or
  one CPU, render in-process. Output bytes do not depend on the number of workers.
- Shared work: the renderers' parts and the Ignition emitter's entry texts are memoized
  (``renderers``, ``emitters.ignition``), so a worker renders and encodes the parts its
  hosts share once; the parent's first host warms them before the fork.
- Problems: a host is first checked by ``check.valid`` (cheap); only a host that
  fails it is validated again by ``validate.validate`` on a Document with positions
  (in the parent, after the workers are done), so its messages are exactly those of
  ``netharden validate`` with FILE:LINE:COL of the node in the host's entry or in
  ``defaults``, whichever supplied it, prefixed with the host's name.
- Progress: a bar on stderr only when stderr is a terminal; a summary line always.
- Before ``gc.freeze()`` only the young generations are collected (``gc.collect(1)``):
  a full collection walks the whole parsed fleet and finds nothing more
  (docs/performance.md).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..problems import Problem, ProfileError, UsageError
from .model import Fleet, cpu_count, duplicate_problems, entry_document, host_profile

EXTENSIONS = {
    "ignition": ".ign",
    "butane": ".bu",
    "cloud-config": ".cloud-config.yaml",
    "coreos-cloud-config": ".coreos-cloud-config.yaml",
    "plan": ".plan.json",
}
PARALLEL_MIN = 64
STAGE_PREFIX = ".netharden-stage-"  # a worker's own directory inside the output (_stage)

_job: dict = {}  # what the forked workers inherit: fleet, format, options, temporary directory


@dataclass
class Result:
    hosts: int = 0
    written: list[str] = field(default_factory=list)
    bad: dict[str, list[Problem]] = field(default_factory=dict)  # host -> problems
    seconds: float = 0.0
    jobs: int = 1


# ----------------------------------------------------------------------------- workers
def _render_host(index: int) -> tuple[int, str, list | None]:
    """(index, host name, None when written / [] when the fast check failed / problems)."""
    from ..profile import normalize
    from ..validate import validate
    from . import check

    fleet: Fleet = _job["fleet"]
    host = fleet.hosts[index]
    if fleet.kind == "file":
        entry = fleet.entry(index)
        data = host_profile(fleet.defaults, entry)
        name = entry["name"]
        if not check.valid(data, fleet.source):
            return index, name, []  # messages with positions are made in the parent
        source = fleet.source
    else:
        from ..yamlload import load_file

        try:
            doc = load_file(host.file)
        except ProfileError as err:
            return index, "", list(err.problems)
        data = doc.data
        meta = data.get("metadata")
        name = meta.get("name", "") if isinstance(meta, dict) and isinstance(meta.get("name"), str) else ""
        if not check.valid(data, host.file):
            problems = validate(doc)
            if problems:
                return index, name, problems
        source = host.file
    try:
        _emit(name, normalize(data, source=source))
    except FileExistsError:  # two files of a directory fleet with one name: reported by _collect
        pass
    return index, name, None


def _emit(name: str, profile) -> None:
    from ..renderers import build_plan

    plan = build_plan(profile)
    emitter, options, tmp = _job["emitter"], _job["options"], _job["tmp"]
    if _job["validate_only"]:
        return
    if emitter.KIND == "directory":
        root = tmp / name
        root.mkdir()
        os.chmod(root, 0o755)
        emitter.fill(plan, root)
        return
    if _job["os_variant"]:
        from ..emitters.butane import variant_for

        options = {**options, "variant": variant_for(profile.os, None) or options["variant"]}
    data = emitter.render(plan, **options)
    fd = os.open(_stage(tmp) / (name + _job["ext"]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fchmod(fd, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _stage(tmp: Path) -> Path:
    """Where this process creates its output files: ``tmp`` itself, or in a forked worker
    a directory of its own inside it (``STAGE_PREFIX`` + pid), whose files ``_worker_chunk``
    moves into ``tmp`` after each chunk. Two processes creating files in one directory
    contend for its lock, which doubled the kernel's time (docs/performance.md, the I/O floor)."""
    if not _job.get("staged"):
        return tmp
    stage = _job.get("stage")
    if stage is None or stage[0] != os.getpid():
        stage = _job["stage"] = (os.getpid(), tmp / f"{STAGE_PREFIX}{os.getpid()}")
        stage[1].mkdir()
    return stage[1]


def _worker_chunk(indices: range) -> list[tuple[int, str, list | None]]:
    """The verdicts of a chunk of hosts in a forked worker: its files are created in the
    worker's own directory (``_stage``), then renamed into the output directory."""
    enabled = gc.isenabled()
    # rendering leaves next to no cyclic garbage, so a worker skips the collections
    # during a chunk (docs/performance.md)
    gc.disable()
    try:
        return [_render_host(i) for i in indices]
    finally:
        if enabled:
            gc.enable()
        stage = _job.get("stage")
        if stage is not None and stage[0] == os.getpid():
            tmp = _job["tmp"]
            with os.scandir(stage[1]) as found:
                for entry in found:
                    os.rename(entry.path, tmp / entry.name)


# ------------------------------------------------------------------------------ parent
class Progress:
    """A one-line bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.done, self.last = total, 0, 0.0
        self.live = bool(getattr(self.stream, "isatty", lambda: False)()) and total > 0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.live and (now - self.last > 0.1 or self.done == self.total):
            self.last = now
            width = 30
            filled = width * self.done // self.total
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} hosts")
            self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run(
    fleet: Fleet,
    fmt: str | None,
    out: str | Path | None,
    *,
    force: bool = False,
    keep_going: bool = False,
    jobs: int | None = None,
    options: dict | None = None,
    progress_stream=None,
) -> Result:
    """Render (``fmt``) or only validate (``fmt`` None) every host. Raises ProfileError
    for fleet-level problems and for bad hosts unless ``keep_going``."""
    from .. import emitters

    started = time.monotonic()
    result = Result(hosts=len(fleet.hosts))
    if fmt is not None:
        if out is None:
            raise UsageError("a fleet renders one output per host into a directory: give --out DIR")
        emitter = emitters.get(fmt)
        chosen = emitters.options_for(emitter, fmt, options or {})
        # Butane without --variant: each host gets its own OS's variant
        os_variant = fmt == "butane" and (options or {}).get("variant") is None
        _job.update(
            emitter=emitter, options=chosen, ext=EXTENSIONS.get(fmt, ""), validate_only=False, os_variant=os_variant
        )
    else:
        _job.update(emitter=None, options={}, ext="", validate_only=True, os_variant=False)
    _job["fleet"] = fleet

    def fill(tmp: Path | None) -> None:
        _job["tmp"] = tmp
        _render_into(fleet, jobs, result, progress_stream)
        if result.bad and (not keep_going or not result.written):
            raise ProfileError([p for probs in result.bad.values() for p in probs])

    try:
        if fmt is None or out is None:
            fill(None)
        else:
            emitters.write_directory(Path(out), fill, force=force)
    finally:
        _job.clear()
    result.seconds = time.monotonic() - started
    return result


def _render_into(fleet: Fleet, jobs: int | None, result: Result, progress_stream) -> None:
    result.hosts = len(fleet.hosts)
    result.written.clear()
    result.bad.clear()
    workers = max(1, min(jobs or cpu_count(), len(fleet.hosts) // PARALLEL_MIN or 1))
    result.jobs = workers
    outcomes = _render_all(fleet, workers, progress_stream)
    _collect(fleet, outcomes, result)


def _empty(tmp: Path) -> None:
    import shutil

    for child in tmp.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _render_all(fleet: Fleet, workers: int, progress_stream) -> list:
    n = len(fleet.hosts)
    bar = Progress(n, progress_stream)
    outcomes: list = []

    def take(verdicts) -> None:
        outcomes.extend(verdicts)
        bar.advance(len(verdicts))

    try:
        if n == 0:
            return outcomes
        take([_render_host(0)])  # warms imports, validator, templates and memos before the fork
        if workers == 1 or n == 1:
            for start in range(1, n, 64):
                take([_render_host(i) for i in range(start, min(n, start + 64))])
        else:
            import multiprocessing

            size = max(16, min(500, (n - 1) // (workers * 8) or 1))
            chunks = [range(s, min(n, s + size)) for s in range(1, n, size)]
            gc.collect(1)  # the setup's young garbage; a full pass finds nothing more (docstring)
            gc.freeze()
            _job["staged"] = _job.get("tmp") is not None
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    for part in pool.imap_unordered(_worker_chunk, chunks):
                        take(part)
            finally:
                _job["staged"] = False
                gc.unfreeze()
                if _job.get("tmp") is not None:
                    for stage in _job["tmp"].glob(STAGE_PREFIX + "*"):
                        _empty(stage)
                        stage.rmdir()
        return outcomes
    finally:
        bar.close()


def _collect(fleet: Fleet, outcomes: list, result: Result) -> None:
    from ..profile import normalize
    from ..validate import validate

    outcomes.sort(key=lambda o: o[0])
    for index, name, problems in outcomes:
        host = fleet.hosts[index]
        if name:
            host.name = name
        if problems is None:
            result.written.append(host.name)
            continue
        if problems == [] and fleet.kind == "file":
            data = host_profile(fleet.defaults, fleet.entry(index))
            problems = validate(entry_document(fleet, host, data))
            if not problems:  # the fast check was stricter than validate: render it here
                _emit(host.name, normalize(data, source=fleet.source))
                result.written.append(host.name)
                continue
        label = host.name or Path(host.file).name
        result.bad[label] = [_named(p, label) for p in problems]
    if fleet.kind == "directory":
        named = [h for h in fleet.hosts if h.name]
        dup = duplicate_problems(
            named, lambda h: (0, 0), lambda h, msg, hint: Problem(h.file, 0, 0, ("metadata", "name"), msg, hint)
        )
        if dup:
            raise ProfileError(dup)


def _named(problem: Problem, host: str) -> Problem:
    return Problem(
        problem.file,
        problem.line,
        problem.column,
        problem.path,
        f"host {host}: {problem.message}",
        problem.hint,
        problem.severity,
    )
