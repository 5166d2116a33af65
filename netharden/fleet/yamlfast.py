"""Read a fleet file: plain data straight from libyaml's events, positions on request.

A fleet of 10,000 hosts is a few MiB of YAML and some 200,000 nodes, ten times the
``yamlload.MAX_NODES`` of one profile. ``yamlload`` composes a node tree in Python
first (so that an alias keeps its own position), which costs about 7 s for such a
file; this reader builds the data directly from the parser's events, 3-4 times
faster, and records line:col of every node and key only when asked
(``positions=True``). ``fleet.load`` reads a file without positions and reads it a
second time with them only when a problem has to be reported, which is rare.

Same reading as ``yamlload`` (tests/test_fleet.py compares them on every example):
YAML 1.2 core schema (``yamlload``'s resolver and scalar conversion are reused),
the same refusals (several documents, duplicate keys, non-scalar keys, unsupported
tags, recursive aliases, control characters, UTF-16, invalid UTF-8) with positions.
Differences, decided for fleets:

- An alias shares the anchored value (fleets use anchors for shared blocks; nothing
  downstream mutates data). Problems inside an alias point at the alias (positions
  are not recorded below it; ``Document.position`` falls back to the nearest
  ancestor), which is what ``yamlload`` promises too.
- Bounds scale with the file: at most ``MAX_BYTES`` (64 MiB), ``MAX_DEPTH`` (64)
  levels, and at most ``EXPANSION`` times as many nodes after alias expansion as the
  file has events (plus ``yamlload.MAX_NODES``), which stops an alias bomb at once.

``parse_items`` reads one slice of a fleet's ``hosts:`` block (whole item lines at
their original columns) for ``model``'s split reading: marks and positions are
shifted by ``line_offset`` so they equal a full read's, the item paths start at
``("hosts",)`` so the depth bound is the same, aliases may name the anchors defined
before the hosts block (``seed``), and it returns what the parent needs to tell
whether the whole file would have read the same (anchors defined and taken from the
seed, the alias-expansion budget). Any explicit tag in a slice raises ``Surprise``:
the split reading then falls back to the full read rather than arguing about tags.
"""
from __future__ import annotations

import yaml

from ..problems import Problem, ProfileError
from ..yamlload import MAX_NODES, Document, decode, syntax_problem, _Core12Resolver, _EventParser, _scalar

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64 + 4  # the fleet adds hosts[i].profile above a profile's own 64 levels
EXPANSION = 20

_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_PLAIN_DATA = "a fleet holds only strings, numbers, booleans, null, lists and mappings"


class _Resolver(_Core12Resolver):
    pass


class _Node:
    """The value being built for one open collection."""
    __slots__ = ("value", "path", "key", "anchor", "size")

    def __init__(self, value, path, anchor):
        self.value, self.path, self.key, self.anchor, self.size = value, path, None, anchor, 1


def _decode(raw: bytes, file: str) -> str:
    if len(raw) > MAX_BYTES:
        raise ProfileError([Problem(file, 1, 1, (), f"file is {len(raw)} bytes, over the limit of {MAX_BYTES}",
                                    "split the fleet into several files or use a directory of host profiles")])
    return decode(raw, file)


class Surprise(Exception):
    """Something the split reading does not handle (``parse_items(strict=True)``)."""


class Parsed:
    """What one run of the event loop gives: the data, its counters for the
    expansion bound, and (for the split reading) anchors and the watched key."""
    __slots__ = ("root", "events", "nodes", "alias_min", "defined", "seed_used", "watch")

    def __init__(self):
        self.root = None
        self.events = self.nodes = 0
        self.alias_min = None      # min of EXPANSION * events - nodes at alias checks (after the watched value)
        self.defined: set = set()  # anchor names defined
        self.seed_used: set = set()  # anchor names an alias took from the seed
        self.watch = None          # watched top-level key: {"line", "anchors", "value": (event), "events", "nodes", "alias_min"}


def load_bytes(raw: bytes, file: str, *, positions: bool = False) -> Document:
    """Parse ``raw`` into a Document (positions empty unless ``positions``)."""
    text = _decode(raw, file)
    return load_text(text, file, positions=positions)


def load_text(text: str, file: str, *, positions: bool = False) -> Document:
    """Parse decoded ``text`` into a Document."""
    return load_watching(text, file, positions=positions)[0]


def load_watching(text: str, file: str, *, positions: bool = False, watch: str | None = None) -> tuple[Document, Parsed]:
    """``load_text`` plus the counters; ``watch`` (a top-level key) records in
    ``Parsed.watch`` that key's line, the anchors closed before it, and its value's
    event and counters."""
    doc = Document(file=file, data=None, positions={(): (1, 1)})
    parsed = _parse(text, file, doc, positions=positions, watch=watch)
    root = parsed.root
    if not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else {
            str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(root), "null")
        raise ProfileError([Problem(file, 1, 1, (), f"the document is {kind}, expected a mapping",
                                    "a fleet starts with 'apiVersion: netharden/v1'")])
    doc.data = root
    return doc, parsed


def parse_items(text: str, file: str, *, line_offset: int, seed: dict | None = None,
                positions: bool = False, index_base: int = 0) -> tuple[list, Parsed, Document]:
    """Parse a slice of the hosts block: ``text`` is whole lines, the first one at
    0-based line ``line_offset`` of the file. Returns the items, the counters and a
    Document whose positions (when asked) use the full file's paths
    (``("hosts", index_base + i, ...)``) and lines. Raises ProfileError for what the
    full read would also refuse and ``Surprise`` for an explicit tag."""
    doc = Document(file=file, data=None, positions={})
    parsed = _parse(text, file, doc, positions=positions, line_offset=line_offset, root_path=("hosts",),
                    seed=seed, strict=True)
    if not isinstance(parsed.root, list):
        raise Surprise("the slice is not a sequence")
    if positions and index_base:
        shift = (lambda path: path if len(path) < 2 else ("hosts", path[1] + index_base) + path[2:])
        doc.positions = {shift(k): v for k, v in doc.positions.items()}
        doc.key_positions = {shift(k): v for k, v in doc.key_positions.items()}
    doc.data = parsed.root
    return parsed.root, parsed, doc


def _parse(text: str, file: str, doc: Document, *, positions: bool, line_offset: int = 0, root_path: tuple = (),
           seed: dict | None = None, watch: str | None = None, strict: bool = False) -> Parsed:
    pos, keypos = doc.positions, doc.key_positions
    problems: list[Problem] = []
    resolve = _Resolver().resolve
    anchors: dict[str, tuple] = {}     # anchor -> (value, size) once closed
    open_anchors: set[str] = set()
    stack: list[_Node] = []
    events = nodes = 0
    root = None
    documents = 0
    out = Parsed()
    alias_min = None
    watching = False                   # the next value event is the watched key's
    line0 = 1 + line_offset            # YAML marks count lines from 0
    parser = _EventParser(text)

    def fail(mark, path, message, hint=""):
        problems.append(Problem(file, mark.line + line0, mark.column + 1, tuple(path), message, hint))

    def child_path(mark):
        """Path of the next child of the open collection; records its position."""
        if not stack:
            return root_path
        top = stack[-1]
        if isinstance(top.value, list):
            return top.path + (len(top.value),)
        return top.path + (top.key,)

    try:
        while parser.check_event():
            ev = parser.get_event()
            events += 1
            cls = type(ev)
            if cls is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise ProfileError([Problem(file, ev.start_mark.line + line0, ev.start_mark.column + 1, (),
                                                "the file holds more than one YAML document", "put one fleet in each file")])
                continue
            if cls in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent):
                continue
            # a map expecting a key: this event is the key
            if stack and isinstance(stack[-1].value, dict) and stack[-1].key is None and cls is not yaml.MappingEndEvent:
                top = stack[-1]
                if cls is not yaml.ScalarEvent:
                    fail(ev.start_mark, top.path, "mapping keys must be plain strings, not lists, mappings or aliases")
                    top.key = _SKIP
                    if cls in (yaml.SequenceStartEvent, yaml.MappingStartEvent):
                        _skip_collection(parser)
                    continue
                key = ev.value
                if key in top.value:
                    path = top.path + (key,)
                    first = keypos.get(path, (0, 0))
                    fail(ev.start_mark, path, f"duplicate key {key!r}" + (f" (first defined at line {first[0]})" if positions else ""),
                         "YAML keeps only one of them; remove or merge the duplicate")
                    top.key = _SKIP
                    continue
                top.key = key
                if positions:
                    keypos[top.path + (key,)] = (ev.start_mark.line + line0, ev.start_mark.column + 1)
                if watch is not None and key == watch and len(stack) == 1:
                    out.watch = {"line": ev.start_mark.line, "anchors": dict(anchors)}
                    watching = True
                continue
            if cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                node = stack.pop()
                if node.anchor is not None:
                    anchors[node.anchor] = (node.value, node.size)
                    open_anchors.discard(node.anchor)
                _attach(stack, node.value, node.size)
                if not stack:
                    root = node.value
                continue
            skip = bool(stack) and isinstance(stack[-1].value, dict) and stack[-1].key is _SKIP
            path = child_path(ev.start_mark) if not skip else ()
            mark = ev.start_mark
            if positions and not skip:
                pos.setdefault(path, (mark.line + line0, mark.column + 1))
            if len(path) > MAX_DEPTH:
                raise ProfileError([Problem(file, mark.line + line0, mark.column + 1, path, f"nesting deeper than {MAX_DEPTH} levels")])
            if watching:
                watching = False
                out.watch.update(value=(cls, getattr(ev, "value", None), getattr(ev, "tag", None), ev.anchor, mark.line),
                                 events=events, nodes=nodes + 1, alias_min=alias_min)   # counters after this value
                alias_min = None
            if cls is yaml.AliasEvent:
                if ev.anchor in open_anchors:
                    fail(mark, path, "recursive YAML alias", "an alias may not refer to a node that contains it")
                    value, size = None, 1
                elif ev.anchor in anchors:
                    value, size = anchors[ev.anchor]
                elif seed is not None and ev.anchor in seed:
                    value, size = seed[ev.anchor]
                    out.seed_used.add(ev.anchor)
                else:  # libyaml does not check aliases: an alias before its anchor, or to a seed-less slice's outside
                    fail(mark, path, f"undefined alias {ev.anchor!r}")
                    value, size = None, 1
                nodes += size
                budget = EXPANSION * events - nodes
                if alias_min is None or budget < alias_min:
                    alias_min = budget
                if nodes > MAX_NODES + EXPANSION * events:
                    raise ProfileError([Problem(file, mark.line + line0, mark.column + 1, path,
                                                f"the document expands to more than {MAX_NODES + EXPANSION * events} nodes",
                                                "YAML aliases multiply nodes; a fleet this large is almost certainly an alias bomb")])
                _attach(stack, value, size)
                if not stack:
                    root = value
                continue
            nodes += 1
            if cls is yaml.ScalarEvent:
                tag = ev.tag
                if tag is None or tag == "!":
                    if strict and tag is not None:
                        raise Surprise("a tag")
                    tag = resolve(yaml.ScalarNode, ev.value, ev.implicit)
                elif strict:
                    raise Surprise("a tag")
                try:
                    value = _scalar(_Scalar(tag, ev.value))
                except ValueError:
                    fail(mark, path, f"unsupported YAML tag {tag!r}", _PLAIN_DATA)
                    value = None
                if ev.anchor is not None:
                    anchors[ev.anchor] = (value, 1)
                _attach(stack, value, 1)
                if not stack:
                    root = value
                continue
            # collection start
            is_seq = cls is yaml.SequenceStartEvent
            tag = ev.tag
            if strict and tag is not None:
                raise Surprise("a tag")
            if tag is not None and tag != "!" and tag != (_SEQ if is_seq else _MAP):
                fail(mark, path, f"unsupported YAML tag {tag!r}", _PLAIN_DATA)
            if ev.anchor is not None:
                open_anchors.add(ev.anchor)
            stack.append(_Node([] if is_seq else {}, path, ev.anchor))
    except yaml.MarkedYAMLError as exc:
        raise ProfileError([syntax_problem(exc, text, file, "fleet", line_offset)]) from None
    except yaml.YAMLError as exc:
        raise ProfileError([Problem(file, 1, 1, (), f"YAML error: {exc}")]) from None
    finally:
        parser.dispose()
    if problems:
        raise ProfileError(problems)
    if documents == 0:
        raise ProfileError([Problem(file, 1, 1, (), "the file is empty",
                                    "a fleet needs apiVersion, kind: Fleet and hosts")])
    out.root, out.events, out.nodes, out.alias_min = root, events, nodes, alias_min
    out.defined = set(anchors)
    return out


class _SkipKey:
    def __repr__(self):
        return "<skipped key>"


_SKIP = _SkipKey()


class _Scalar:
    __slots__ = ("tag", "value")

    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def _attach(stack, value, size) -> None:
    if not stack:
        return
    top = stack[-1]
    top.size += size
    if type(top.value) is list:
        top.value.append(value)
    else:
        key = top.key
        top.key = None
        if key is not _SKIP:
            top.value[key] = value


def _skip_collection(parser) -> None:
    depth = 1
    while depth:
        ev = parser.get_event()
        if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
        elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def load_file(path, *, positions: bool = False) -> Document:
    from pathlib import Path

    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise ProfileError([Problem(name, 0, 0, (), "is a directory, not a fleet file")]) from None
    except OSError as exc:
        raise ProfileError([Problem(name, 0, 0, (), f"cannot read: {exc.strerror}")]) from None
    return load_bytes(raw, name, positions=positions)
