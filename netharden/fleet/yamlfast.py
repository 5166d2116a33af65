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
"""
from __future__ import annotations

import yaml

from ..problems import Problem, ProfileError
from ..yamlload import MAX_NODES, Document, decode, _Core12Resolver, _EventParser, _scalar

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


def load_bytes(raw: bytes, file: str, *, positions: bool = False) -> Document:
    """Parse ``raw`` into a Document (positions empty unless ``positions``)."""
    text = _decode(raw, file)
    doc = Document(file=file, data=None, positions={(): (1, 1)})
    pos, keypos = doc.positions, doc.key_positions
    problems: list[Problem] = []
    resolve = _Resolver().resolve
    anchors: dict[str, tuple] = {}     # anchor -> (value, size) once closed
    open_anchors: set[str] = set()
    stack: list[_Node] = []
    events = nodes = 0
    root = None
    documents = 0
    parser = _EventParser(text)

    def fail(mark, path, message, hint=""):
        problems.append(Problem(file, mark.line + 1, mark.column + 1, tuple(path), message, hint))

    def child_path(mark):
        """Path of the next child of the open collection; records its position."""
        if not stack:
            return ()
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
                    raise ProfileError([Problem(file, ev.start_mark.line + 1, ev.start_mark.column + 1, (),
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
                    keypos[top.path + (key,)] = (ev.start_mark.line + 1, ev.start_mark.column + 1)
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
                pos.setdefault(path, (mark.line + 1, mark.column + 1))
            if len(path) > MAX_DEPTH:
                raise ProfileError([Problem(file, mark.line + 1, mark.column + 1, path, f"nesting deeper than {MAX_DEPTH} levels")])
            if cls is yaml.AliasEvent:
                if ev.anchor in open_anchors:
                    fail(mark, path, "recursive YAML alias", "an alias may not refer to a node that contains it")
                    value, size = None, 1
                elif ev.anchor not in anchors:  # pragma: no cover - libyaml reports undefined aliases itself
                    fail(mark, path, f"undefined alias {ev.anchor!r}")
                    value, size = None, 1
                else:
                    value, size = anchors[ev.anchor]
                nodes += size
                if nodes > MAX_NODES + EXPANSION * events:
                    raise ProfileError([Problem(file, mark.line + 1, mark.column + 1, path,
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
                    tag = resolve(yaml.ScalarNode, ev.value, ev.implicit)
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
            if tag is not None and tag != "!" and tag != (_SEQ if is_seq else _MAP):
                fail(mark, path, f"unsupported YAML tag {tag!r}", _PLAIN_DATA)
            if ev.anchor is not None:
                open_anchors.add(ev.anchor)
            stack.append(_Node([] if is_seq else {}, path, ev.anchor))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        hint = ""
        if "expected a single document" in problem or "but found another document" in problem:
            problem, hint = "the file holds more than one YAML document", "put one fleet in each file"
        elif exc.context:
            cm = exc.context_mark
            if cm and (cm.line, cm.column) != (line - 1, col - 1):
                hint = f"{exc.context} that starts at line {cm.line + 1}, column {cm.column + 1}"
        lines = text.splitlines()
        if line <= len(lines) and lines[line - 1][col - 1:col] == "\t":
            hint = "YAML indentation uses spaces, not tabs"
        raise ProfileError([Problem(file, line, col, (), f"YAML syntax error: {problem}", hint)]) from None
    except yaml.YAMLError as exc:
        raise ProfileError([Problem(file, 1, 1, (), f"YAML error: {exc}")]) from None
    finally:
        parser.dispose()
    if problems:
        raise ProfileError(problems)
    if documents == 0:
        raise ProfileError([Problem(file, 1, 1, (), "the file is empty",
                                    "a fleet needs apiVersion, kind: Fleet and hosts")])
    if not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else {
            str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(root), "null")
        raise ProfileError([Problem(file, 1, 1, (), f"the document is {kind}, expected a mapping",
                                    "a fleet starts with 'apiVersion: netharden/v1'")])
    doc.data = root
    return doc


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
