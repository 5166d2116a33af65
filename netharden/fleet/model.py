"""Fleet sources, the merge of defaults and host entries, and host documents.

Two forms of fleet (``load``):

- a ``kind: Fleet`` file (schemas/fleet.schema.json): ``defaults`` (a partial
  HostProfile) and ``hosts: [{name, profile}]``. A host's profile is ``merge(defaults,
  profile)`` plus ``apiVersion``, ``kind: HostProfile`` and ``metadata.name`` = the
  entry's ``name``.
- a directory: every ``*.yaml``, ``*.yml`` and ``*.json`` file directly in it is one
  complete HostProfile, read exactly like ``netharden render PROFILE`` reads it (same
  loader, positions and messages); the host's name is its ``metadata.name``. Files
  whose name starts with ``.`` are skipped (editor and temporary files).

Merge rules (``merge``): a mapping over a mapping merges key by key, recursively;
anything else (lists, scalars, null) replaces the default. There is no merge-by-name
exception for lists (``uplinks``, ``bridges``, ``docker.daemons``): a host that sets
a list restates it whole, which keeps the rule one sentence long and the result
obvious from the file.

Fleet-level errors (``ProfileError`` naming the fleet file, exit 2, nothing written,
also with ``--keep-going``): the fleet schema (unknown keys, ``metadata.name`` in
defaults or a host profile: the entry's ``name`` sets it), no hosts, duplicate host
names (two files of a directory fleet with the same ``metadata.name`` too).
``name`` is a lowercase DNS label, the same rule as ``metadata.name``, so it is always
usable as a file name (no ``/``, no ``.``/``..``, no upper case to collide on a
case-insensitive file system).

A fleet file is read by the one YAML reader (``yamlload``, limits ``yamlload.FLEET``),
without positions and with each host entry packed (``Fleet.entry`` unpacks one); it is
read again with positions, unpacked, only when a problem must be reported. The fleet
schema checks ``hosts`` item by item (tests/test_fleet.py asserts that of the schema),
so the packed file is checked with its first entry, and each entry alone.
"""

from __future__ import annotations

import json
import marshal
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..problems import Problem, ProfileError
from ..yamlload import FLEET, Document, load_file

PROFILE_SUFFIXES = (".yaml", ".yml", ".json")
_MISSING = object()


@dataclass
class Host:
    name: str
    index: int  # position in the fleet (entry index, or sorted file order)
    data: Any = None  # merged profile (file form), None until loaded (directory form)
    file: str = ""  # where the host is defined
    entry: tuple = ()  # JSON path of its entry in the fleet file (file form)


@dataclass
class Fleet:
    source: str  # the fleet file or directory
    kind: str  # "file" | "directory"
    hosts: list[Host] = field(default_factory=list)
    defaults: dict = field(default_factory=dict)
    doc: Document | None = None  # the fleet file's document (file form; host entries packed until re-read)

    def entry(self, index: int) -> Any:
        """The fleet file's entry of host ``index`` (file form)."""
        assert self.doc is not None, "a fleet file's hosts come from its document"
        entry = self.doc.data["hosts"][index]
        return marshal.loads(entry) if type(entry) is bytes else entry


def merge(base: Any, over: Any) -> Any:
    """``over`` deep-merged over ``base``: mappings merge, everything else replaces.
    Neither argument is modified; unchanged subtrees of ``base`` are shared."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return over


def host_profile(defaults: dict, entry: dict) -> dict:
    """The HostProfile of one fleet entry (its data before validation)."""
    merged = merge(defaults, entry.get("profile") or {})
    metadata = merged.get("metadata")
    return {
        "apiVersion": "netharden/v1",
        "kind": "HostProfile",
        "metadata": {**(metadata if isinstance(metadata, dict) else {}), "name": entry["name"]},
        **{k: v for k, v in merged.items() if k != "metadata"},
    }


@lru_cache(maxsize=1)
def _fleet_validator():
    from ..resources import read_text
    from ..validate import validator_class

    # Draft 2020-12 with the profile's pattern rule (a $ is the end of the string), jsonschema's own integer
    return validator_class(strict_integer=False)(json.loads(read_text("schemas", "fleet.schema.json")))


def fleet_schema_problems(doc: Document) -> list[Problem]:
    from ..validate import _translate  # the profile's message translation, reused for the fleet schema

    problems: list[Problem] = []
    for err in _fleet_validator().iter_errors(doc.data):
        problems.extend(_translate(doc, err))
    return problems


def load(source: str | Path) -> Fleet:
    """Read a fleet file or directory (hosts of a directory are read later, in the workers)."""
    path = Path(source)
    if path.is_dir():
        return _load_directory(path)
    doc = load_file(path, limits=FLEET, positions=False, pack=("hosts",))
    fleet = Fleet(str(path), "file", [], {}, doc)
    entries = doc.data.get("hosts")
    names: list[str] = []
    if isinstance(entries, list) and entries:
        # the file with its first entry, then each entry alone in the smallest fleet
        wrong = _looks_wrong({**doc.data, "hosts": [fleet.entry(0)]})
        alone = {"apiVersion": "netharden/v1", "kind": "Fleet"}
        for i in range(len(entries)):
            entry = fleet.entry(i)
            wrong = wrong or _looks_wrong({**alone, "hosts": [entry]})
            names.append(entry.get("name", "") if isinstance(entry, dict) else "")
    else:
        wrong = _looks_wrong(doc.data)
    if wrong:
        problems = fleet_schema_problems(_with_positions(path))  # read again with positions, only to report
        if problems:
            raise ProfileError(problems)
    fleet.defaults = doc.data.get("defaults") or {}
    fleet.hosts = hosts = [Host(name, i, None, str(path), ("hosts", i)) for i, name in enumerate(names)]
    if len({h.name for h in hosts}) != len(hosts):
        fleet.doc = _with_positions(path)
        raise ProfileError(
            duplicate_problems(
                hosts,
                lambda h: fleet.doc.position(h.entry + ("name",)),
                lambda h, msg, hint: fleet.doc.problem(h.entry + ("name",), msg, hint),
            )
        )
    return fleet


def _with_positions(path: str | Path) -> Document:
    return load_file(path, limits=FLEET, positions=True)


def duplicate_problems(hosts: list[Host], position, problem) -> list[Problem]:
    """One problem per host whose name an earlier host already has."""
    seen: dict[str, Host] = {}
    out = []
    for host in hosts:
        first = seen.setdefault(host.name, host)
        if first is not host:
            line = position(first)[0]
            where = f"line {line}" if line else first.file
            out.append(
                problem(
                    host,
                    f"duplicate host name {host.name!r} (first at {where})",
                    "every host needs its own name: it is its output file name",
                )
            )
    return out


@lru_cache(maxsize=1)
def _fleet_check():
    """fastjsonschema's checker of fleet.schema.json (``precompile.fast_validator``, compiled
    at first use), as a verdict: True when the fleet is valid. It only decides: a fleet it
    calls wrong is checked by jsonschema, which says what is wrong (or nothing, and the
    fleet is read on). Its ``integer`` (1500.0 is one) is the fleet validator's, jsonschema's
    own; fleet data come from the YAML readers, plain JSON types only. None (use jsonschema)
    when the schema uses something ``fast_schema`` refuses."""
    from .. import precompile
    from ..resources import read_text

    try:
        validate = precompile.fast_validator(json.loads(read_text("schemas", "fleet.schema.json")))
    except Exception:  # an unsupported keyword: jsonschema decides
        return None

    def check(data) -> bool:
        try:
            validate(data)
        except Exception:  # JsonSchemaValueException, or data its code cannot handle: jsonschema decides
            return False
        return True

    return check


def _looks_wrong(data: dict) -> bool:
    """True when the fleet schema may have something to say (then jsonschema says it,
    on the file read again with positions)."""
    check = _fleet_check()
    if check is not None:
        return not check(data)
    return not _fleet_validator().is_valid(data)


def _load_directory(path: Path) -> Fleet:
    files = sorted(
        p for p in path.iterdir() if p.suffix in PROFILE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
    if not files:
        raise ProfileError(
            [
                Problem(
                    str(path),
                    0,
                    0,
                    (),
                    "the fleet directory holds no host profiles",
                    f"put one profile per host in it ({', '.join('*' + s for s in PROFILE_SUFFIXES)})",
                )
            ]
        )
    # names come from metadata.name: read just that, cheaply, to find duplicates before rendering
    hosts = [Host("", i, None, str(p)) for i, p in enumerate(files)]
    return Fleet(str(path), "directory", hosts)


def entry_document(fleet: Fleet, host: Host, data: dict) -> Document:
    """The Document of a file-form host's merged profile, with the position of every
    node taken from whichever part of the fleet file supplied it: the host's own entry
    or ``defaults``. Reads the fleet file again with positions when needed."""
    doc = fleet.doc
    if doc is None or len(doc.positions) <= 1:  # read without positions: read it again, with them
        doc = fleet.doc = _with_positions(fleet.source)
    fpos, fkeys = doc.positions, doc.key_positions
    entry = doc.data["hosts"][host.index]
    prof = entry.get("profile")
    defaults = doc.data.get("defaults")
    ep, hp, dp = host.entry, host.entry + ("profile",), ("defaults",)
    pos: dict = {(): fpos.get(ep, (0, 0)), ("apiVersion",): fpos.get(ep, (0, 0)), ("kind",): fpos.get(ep, (0, 0))}
    keys: dict = {}

    def walk(value, d, h, path):
        origin = hp if h is not _MISSING else dp
        at = fpos.get(origin + path)
        if at is not None:
            pos[path] = at
        at = fkeys.get(origin + path)
        if at is not None:
            keys[path] = at
        if isinstance(value, dict):
            for k, v in value.items():
                hk = h.get(k, _MISSING) if isinstance(h, dict) else _MISSING
                dk = d.get(k, _MISSING) if isinstance(d, dict) else _MISSING
                if hk is not _MISSING and not (isinstance(hk, dict) and isinstance(dk, dict)):
                    dk = _MISSING  # the host's value replaced the default one
                walk(v, dk, hk, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if h is not _MISSING:
                    walk(v, _MISSING, h[i], path + (i,))
                else:
                    walk(v, d[i], _MISSING, path + (i,))

    walk(
        {k: v for k, v in data.items() if k not in ("apiVersion", "kind")},
        defaults if isinstance(defaults, dict) else {},
        prof if isinstance(prof, dict) else {},
        (),
    )
    pos[()] = pos[("apiVersion",)] = pos[("kind",)] = fpos.get(ep, (0, 0))
    pos.setdefault(("metadata",), fpos.get(ep + ("name",), (0, 0)))
    pos[("metadata", "name")] = fpos.get(ep + ("name",), (0, 0))
    keys[("metadata", "name")] = fkeys.get(ep + ("name",), (0, 0))
    return Document(file=fleet.source, data=data, positions=pos, key_positions=keys)


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
