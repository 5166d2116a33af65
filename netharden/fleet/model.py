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

Split reading (``load`` of a canonical fleet file; ``read_items``, ``verify``)
-------------------------------------------------------------------------------
Reading a 10,000-host file takes 1.3-1.5 s, nearly all in libyaml's event creation,
while the second core idles; sending parsed hosts back from workers costs as much in
unpickling as it saves. So the parent reads only the file's *skeleton* and each
worker parses the hosts it renders, sending back verdicts as before.

The canonical layout: block YAML with one line ``hosts:`` at column 0 (optional
trailing comment) whose value is a block sequence with items at one column c (c may
be 0). The parent

1. scans lines (regular expressions): item starts are the lines whose first
   non-blank character is a ``-`` at column c followed by a space or the line's end;
   the block ends at the first non-blank, non-comment line indented less than c (for
   c == 0: the first such line at column 0 that is not an item);
2. parses the skeleton, the file with the block's lines blanked (line numbers kept),
   in which ``hosts:`` must read as the empty null of that very line, checks the
   fleet schema on it with a one-item stub for ``hosts`` (the schema checks items
   one by one: hosts has only ``type``, ``minItems`` <= 1 and ``items``, asserted),
   and takes ``defaults`` and the anchors closed before ``hosts:``;
3. knows how many hosts there are, not their names (``Host.name`` is "" until a
   worker reports it).

A worker parses the lines of its range of items (``yamlfast.parse_items``: same
reader, marks shifted to the file's lines, item paths under ``hosts``), checks each
entry against the fleet schema's host-item part (the precompiled fleet checker on a
one-host fleet) and renders. The parent then checks (``verify``) what only the
whole file decides: anchors (an alias that took a pre-hosts anchor, while an earlier
range redefined that name), the alias-expansion bound of the full read (each range
reports the change of ``EXPANSION * events - nodes`` and its lowest point at an
alias), and duplicate names.

Why a split at an item-start line cannot cut a token: the constructs that span lines
are block scalars, plain multi-line scalars, quoted scalars and flow collections.
Block scalars and plain continuation lines (in block context) must be indented deeper
than the sequence's column c, so a line whose first character is at column c ends
them. Quoted scalars and flow collections are not bound by indentation; one cut at a
range boundary leaves the earlier range with an unterminated quote or bracket, which
does not parse. A cut inside one range is no cut: the range holds the whole
construct and reads it as the full read does, but then a candidate line was no item,
so the range yields fewer items than it should. By induction from the first item
(the first content line after ``hosts:``), if every range parses and yields exactly
its count, every candidate is a real item start and every range reads what the full
read reads there.

Anything else is a surprise and the file is read whole, serially, as before (which
also gives today's exact messages): no ``hosts:`` line or two, a first content line
that is no item, flow style or JSON, a tab in an indentation, a directive, a line
break other than ``\n`` (``\r``, NEL, LS, PS: libyaml counts them as line breaks),
a skeleton that does not parse or where ``hosts`` is not that empty null, a schema
problem, a range that does not parse or yields the wrong count, an explicit tag in a
range, an alias to an anchor outside its range and not closed before ``hosts:``, a
host entry the schema refuses, the anchor and expansion checks above, duplicate names.
If the parent knows before the fork, ``load`` reads serially; after it, ``run``
discards what the workers wrote and renders again from the serial read.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..problems import Problem, ProfileError
from ..yamlload import Document

PROFILE_SUFFIXES = (".yaml", ".yml", ".json")
_MISSING = object()


@dataclass
class Host:
    name: str
    index: int                       # position in the fleet (entry index, or sorted file order)
    data: Any = None                 # merged profile (file form), None until loaded (directory form)
    file: str = ""                   # where the host is defined
    entry: tuple = ()                # JSON path of its entry in the fleet file (file form)


@dataclass
class Fleet:
    source: str                      # the fleet file or directory
    kind: str                        # "file" | "directory"
    hosts: list[Host] = field(default_factory=list)
    defaults: dict = field(default_factory=dict)
    doc: Document | None = None      # the fleet file's document (file form; the skeleton when split)
    split: "Split | None" = None     # set when the workers parse their own hosts (file form)


@dataclass
class Split:
    """What the workers need to parse their own hosts (see the module docstring)."""
    text: str                        # the decoded fleet file
    offsets: list[int]               # offset of each item's first line in text, then the block's end
    lines: list[int]                 # 0-based line of each item's first line
    anchors: dict                    # anchors closed before hosts: (name -> (value, size))
    slack: int                       # MAX_NODES + EXPANSION * events - nodes of the full read at hosts' start
    suffix_min: int | None           # lowest EXPANSION * events - nodes at an alias after the hosts block


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
    return {"apiVersion": "netharden/v1", "kind": "HostProfile",
            "metadata": {**(metadata if isinstance(metadata, dict) else {}), "name": entry["name"]},
            **{k: v for k, v in merged.items() if k != "metadata"}}


@lru_cache(maxsize=1)
def _fleet_validator():
    from ..resources import read_text
    from ..validate import validator_class

    # Draft 2020-12 with the profile's pattern rule (a $ is the end of the string), jsonschema's own integer
    return validator_class(strict_integer=False)(json.loads(read_text("schemas", "fleet.schema.json")))


def fleet_schema_problems(doc: Document) -> list[Problem]:
    from ..validate import _translate  # the profile's message translation, reused for the fleet schema

    problems = []
    for err in _fleet_validator().iter_errors(doc.data):
        problems.extend(_translate(doc, err))
    return problems


SPLIT = True      # tests turn it off to compare with the serial read
split_stats = {"split": 0, "serial": 0, "fallback": 0}   # which path was taken (tests)


def load(source: str | Path) -> Fleet:
    """Read a fleet file or directory (hosts of a directory are read later, in the workers;
    hosts of a canonical fleet file too: see "Split reading")."""
    path = Path(source)
    if path.is_dir():
        return _load_directory(path)
    if SPLIT:
        fleet = _load_split(path)
        if fleet is not None:
            split_stats["split"] += 1
            return fleet
    split_stats["serial"] += 1
    return _load_serial(path)


def _load_serial(path: Path) -> Fleet:
    from . import yamlfast

    doc = yamlfast.load_file(path)
    problems = fleet_schema_problems(doc) if _looks_wrong(doc.data) else []
    if problems:
        # read again with positions, only to report
        doc = yamlfast.load_file(path, positions=True)
        raise ProfileError(fleet_schema_problems(doc))
    defaults = doc.data.get("defaults") or {}
    hosts = [Host(e["name"], i, None, str(path), ("hosts", i)) for i, e in enumerate(doc.data["hosts"])]
    fleet = Fleet(str(path), "file", hosts, defaults, doc)
    if len({h.name for h in hosts}) != len(hosts):
        fleet.doc = yamlfast.load_file(path, positions=True)
        raise ProfileError(duplicate_problems(hosts, lambda h: fleet.doc.position(h.entry + ("name",)),
                                              lambda h, msg, hint: fleet.doc.problem(h.entry + ("name",), msg, hint)))
    return fleet


def read_serially(fleet: Fleet) -> None:
    """Replace a split fleet's reading by the full serial one (raises its ProfileError)."""
    split_stats["fallback"] += 1
    whole = _load_serial(Path(fleet.source))
    fleet.hosts, fleet.defaults, fleet.doc, fleet.split = whole.hosts, whole.defaults, whole.doc, None


_HOSTS = re.compile(r"hosts:(?:[ \t]+(?:#[^\n]*)?)?(?:\n|\Z)")
_CONTENT = re.compile(r"^( *)([^ \n])", re.M)       # a line's first non-blank character
_TAB_INDENT = re.compile(r"^ *\t", re.M)


def scan(text: str):
    """(hosts line, block start, item offsets + block end, item lines) of the canonical
    layout, or None. Plain string searches and regular expressions that start with a
    literal newline: about 60 ms for 10,000 hosts."""
    if any(ch in text for ch in "\r\x85\u2028\u2029") or text.startswith("%") or "\n%" in text:
        return None                                    # other line breaks, directives
    at = 0 if text.startswith("hosts:") else text.find("\nhosts:") + 1
    if at == 0 and not text.startswith("hosts:") or text.find("\nhosts:", at) != -1:
        return None                                    # none, or two
    m = _HOSTS.match(text, at)
    if m is None:
        return None
    body = m.end()                                     # the line after hosts:
    first = None
    for line in _CONTENT.finditer(text, body):
        if line.group(2) == "#":
            continue
        first = line
        break
    if first is None or first.group(2) != "-" or text[first.end():first.end() + 1] not in (" ", "\n", ""):
        return None
    c = len(first.group(1))
    start = first.start()
    if c:    # a line indented less than c, neither blank nor a comment
        end = re.compile(r"\n {0,%d}[^ \n#]" % (c - 1)).search(text, start)
    else:    # a line at column 0 that is neither an item, nor blank, nor a comment
        end = re.compile(r"\n(?:[^ \n#-]|-[^ \n])").search(text, start)
    end = end.start() + 1 if end else len(text)
    if "\t" in text and _TAB_INDENT.search(text, start, end):
        return None
    offsets = [start] + [i.start() + 1 for i in re.compile(r"\n {%d}-(?=[ \n]|\Z)" % c).finditer(text, start, end)]
    hosts_line = text.count("\n", 0, at)
    lines, pos, line = [], body, hosts_line + 1
    for off in offsets:
        line += text.count("\n", pos, off)
        pos = off
        lines.append(line)
    offsets.append(end)
    return hosts_line, body, offsets, lines


def _load_split(path: Path) -> Fleet | None:
    from . import yamlfast

    if not _items_independent():
        return None
    try:
        raw = path.read_bytes()
        text = yamlfast._decode(raw, str(path))
    except (OSError, ProfileError):
        return None                                    # the serial read says what is wrong
    found = scan(text)
    if found is None:
        return None
    hosts_line, body, offsets, lines = found
    end = offsets[-1]
    skeleton = text[:body] + "\n" * text.count("\n", body, end) + text[end:]
    try:
        doc, parsed = yamlfast.load_watching(skeleton, str(path), watch="hosts")
    except ProfileError:
        return None
    watch = parsed.watch
    if (watch is None or watch["line"] != hosts_line or "value" not in watch
            or watch["value"] != (yamlfast.yaml.ScalarEvent, "", None, None, hosts_line)
            or doc.data.get("hosts", 0) is not None):
        return None
    if _looks_wrong({**doc.data, "hosts": [{"name": "a"}]}):
        return None
    split = Split(text, offsets, lines, watch["anchors"],
                  yamlfast.MAX_NODES + yamlfast.EXPANSION * watch["events"] - watch["nodes"], parsed.alias_min)
    hosts = [Host("", i, None, str(path), ("hosts", i)) for i in range(len(lines))]
    return Fleet(str(path), "file", hosts, doc.data.get("defaults") or {}, doc, split)


@lru_cache(maxsize=1)
def _items_independent() -> bool:
    """True when the fleet schema checks hosts item by item (so a one-item stub plus a
    check of each entry alone is the whole check)."""
    from ..resources import read_text

    schema = json.loads(read_text("schemas", "fleet.schema.json"))
    hosts = schema.get("properties", {}).get("hosts", {})
    return (set(hosts) <= {"type", "minItems", "items", "description", "title"} and hosts.get("type") == "array"
            and hosts.get("minItems", 0) <= 1 and isinstance(hosts.get("items"), dict))


def entry_ok(entry) -> bool:
    """The fleet schema's verdict on one host entry (the precompiled checker on a one-host fleet)."""
    return not _looks_wrong({"apiVersion": "netharden/v1", "kind": "Fleet", "hosts": [entry]})


def read_items(fleet: Fleet, start: int, stop: int):
    """The entries of hosts ``start:stop`` parsed from their own lines (in a worker), and
    what ``verify`` needs: ``(entries, (start, stop, anchors defined, anchors taken from
    the seed, change of the expansion budget, its lowest point))``; None for a surprise."""
    from . import yamlfast

    import gc

    sp = fleet.split
    enabled = gc.isenabled()
    gc.disable()   # the reader makes no cycles; collections during it cost about 6 % of the parse
    try:
        items, parsed, _ = yamlfast.parse_items(sp.text[sp.offsets[start]:sp.offsets[stop]], fleet.source,
                                                line_offset=sp.lines[start], seed=sp.anchors)
    except Exception:  # anything at all: the serial read decides and explains
        return None
    finally:
        if enabled:
            gc.enable()
    if len(items) != stop - start or not all(entry_ok(e) for e in items):
        return None
    x = yamlfast.EXPANSION
    # counters of the items alone: 3 events before them (stream, document, sequence
    # start; 1 node) and 3 after (sequence, document and stream end)
    delta = x * (parsed.events - 6) - (parsed.nodes - 1)
    dip = None if parsed.alias_min is None else parsed.alias_min - (x * 3 - 1)
    return items, (start, stop, frozenset(parsed.defined), frozenset(parsed.seed_used), delta, dip)


def verify(fleet: Fleet, infos: list) -> bool:
    """True when the ranges' readings (``read_items``) are the full read's: every host
    read once, no alias took a pre-hosts anchor whose name an earlier range redefined,
    and the full read's expansion bound holds at every alias."""
    from . import yamlfast

    sp = fleet.split
    slack, at, defined = sp.slack, 0, set()
    for start, stop, names, used, delta, dip in sorted(infos):
        if start != at or used & defined or (dip is not None and slack + dip < 0):
            return False
        slack += delta
        defined |= names
        at = stop
    if at != len(fleet.hosts):
        return False
    # after the block: the skeleton's aliases, with the items' budget and the sequence end added
    return sp.suffix_min is None or yamlfast.MAX_NODES + sp.suffix_min + (slack - sp.slack) + yamlfast.EXPANSION >= 0


def duplicate_problems(hosts: list[Host], position, problem) -> list[Problem]:
    """One problem per host whose name an earlier host already has."""
    seen: dict[str, Host] = {}
    out = []
    for host in hosts:
        first = seen.setdefault(host.name, host)
        if first is not host:
            line = position(first)[0]
            where = f"line {line}" if line else first.file
            out.append(problem(host, f"duplicate host name {host.name!r} (first at {where})",
                               "every host needs its own name: it is its output file name"))
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
    files = sorted(p for p in path.iterdir()
                   if p.suffix in PROFILE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        raise ProfileError([Problem(str(path), 0, 0, (), "the fleet directory holds no host profiles",
                                    f"put one profile per host in it ({', '.join('*' + s for s in PROFILE_SUFFIXES)})")])
    # names come from metadata.name: read just that, cheaply, to find duplicates before rendering
    hosts = [Host("", i, None, str(p)) for i, p in enumerate(files)]
    return Fleet(str(path), "directory", hosts)


def entry_document(fleet: Fleet, host: Host, data: dict) -> Document:
    """The Document of a file-form host's merged profile, with the position of every
    node taken from whichever part of the fleet file supplied it: the host's own entry
    or ``defaults``. Reads the fleet file again with positions when needed."""
    from . import yamlfast

    if not fleet.doc.positions or len(fleet.doc.positions) == 1:
        fleet.doc = yamlfast.load_file(fleet.source, positions=True)
    fpos, fkeys = fleet.doc.positions, fleet.doc.key_positions
    entry = fleet.doc.data["hosts"][host.index]
    prof = entry.get("profile")
    defaults = fleet.doc.data.get("defaults")
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

    walk({k: v for k, v in data.items() if k not in ("apiVersion", "kind")},
         defaults if isinstance(defaults, dict) else {}, prof if isinstance(prof, dict) else {}, ())
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
