"""Read a YAML (or JSON) profile or fleet file safely, keeping the line and column of
every node: one reader for both.

YAML is resolved with the YAML 1.2 core schema, the way Butane (go-yaml v3) and
yaml-language-server read it: only ``true``/``false`` are booleans, so ``dhcp: yes``
and ``mode: off`` stay the strings a user meant, and ``2024-01-01`` stays a string.

The data is built straight from libyaml's events (``yaml.cyaml.CParser``; PyYAML's
own parser where libyaml is missing), with no node tree in between. An alias shares
the anchored value (nothing downstream modifies the data) and records no positions
below itself, so a problem inside an alias points at the alias (``Document.position``
falls back to the nearest ancestor).

Guards, each reported as a Problem with a position rather than an exception:
duplicate keys, non-mapping documents, several documents in one file, non-scalar
keys, unsupported tags, recursive and undefined aliases, nesting deeper than
``Limits.depth`` (aliases count with the depth of what they stand for), alias
expansion beyond ``Limits.nodes`` ("billion laughs"; a fleet's bound grows with its
size: ``Limits.expansion`` nodes per event on top), files over ``Limits.bytes``,
control characters, UTF-16 and invalid UTF-8. Positions are recorded on request:
a profile always asks; a fleet file is read without them and read again with them
only when a problem must be reported (``fleet.model``). ``pack`` keeps the items of
one sequence as ``marshal`` bytes, each packed as soon as it is complete: a fleet's
hosts, which as objects would be held by the process that reads them and by every
worker forked from it (docs/performance.md has the figures).
"""

from __future__ import annotations

import marshal
import re
from dataclasses import dataclass, field
from pathlib import Path
from sys import intern
from typing import Any

import yaml

from .problems import Problem, ProfileError

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # YAML forbids these; tab, LF, CR are fine
_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"

try:  # libyaml parses events several times faster
    from yaml.cyaml import CParser as _EventParser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on how PyYAML was built

    class _EventParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


@dataclass(frozen=True)
class Limits:
    """What one file may hold, and the words its messages use."""

    what: str  # "profile" | "fleet"
    bytes: int
    nodes: int  # nodes after alias expansion ...
    expansion: int  # ... plus this many per event of the file
    depth: int
    empty_hint: str
    mapping_hint: str
    too_big_hint: str


PROFILE = Limits(
    "profile",
    1024 * 1024,
    20_000,
    0,
    64,
    "a profile needs at least apiVersion, kind and metadata.name",
    "a profile starts with 'apiVersion: netharden/v1'",
    "a host profile is a few KiB; split a fleet into one profile per host",
)
FLEET = Limits(
    "fleet",
    64 * 1024 * 1024,
    20_000,
    20,
    64 + 4,  # hosts[i].profile above a profile's 64 levels
    "a fleet needs apiVersion, kind: Fleet and hosts",
    "a fleet starts with 'apiVersion: netharden/v1'",
    "split the fleet into several files or use a directory of host profiles",
)
MAX_NODES = PROFILE.nodes  # a profile's alias-expansion bound (tests name it)


class _Core12Resolver(yaml.resolver.BaseResolver):
    """Implicit typing of plain scalars per the YAML 1.2 core schema."""


_Core12Resolver.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Core12Resolver.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


@dataclass
class Document:
    """A loaded file: plain data plus the source position of every node."""

    file: str
    data: Any
    positions: dict = field(default_factory=dict)  # path -> (line, col) of the value
    key_positions: dict = field(default_factory=dict)  # path -> (line, col) of the mapping key

    def position(self, path: tuple, *, key: bool = False) -> tuple[int, int]:
        """Position of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        if key and path in self.key_positions:
            return self.key_positions[path]
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (0, 0))

    def problem(self, path: tuple, message: str, hint: str = "", *, key: bool = False) -> Problem:
        line, col = self.position(path, key=key)
        return Problem(self.file, line, col, tuple(path), message, hint)


def syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str, what: str) -> Problem:
    """The Problem of libyaml's syntax error in ``text`` (``what`` is what one file
    holds, for the hint on several documents)."""
    mark: Any = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    hint = ""
    if exc.context:
        cm: Any = exc.context_mark
        if cm and (cm.line, cm.column) != (line - 1, col - 1):
            hint = f"{exc.context} that starts at line {cm.line + 1}, column {cm.column + 1}"
    lines = text.splitlines()
    if line <= len(lines) and lines[line - 1][col - 1 : col] == "\t":
        hint = "YAML indentation uses spaces, not tabs"
    return Problem(file, line, col, (), f"YAML syntax error: {problem}", hint)


def _scalar(tag: str, value: str) -> Any:
    if tag == _STR:
        return value
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        if value[:2] == "0o":
            return int(value[2:], 8)
        if value[:2] == "0x":
            return int(value[2:], 16)
        return int(value, 10)
    if tag == "tag:yaml.org,2002:float":
        low = value.lower()
        if low.endswith(".inf"):
            return float("-inf") if low.startswith("-") else float("inf")
        if low == ".nan":
            return float("nan")
        return float(value)
    if tag == "tag:yaml.org,2002:null":
        return None
    raise ValueError(tag)


def decode(raw: bytes, file: str) -> str:
    """The text of a YAML file's bytes: refuses UTF-16, invalid UTF-8 and control
    characters (with their line:col); a UTF-8 BOM is dropped."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ProfileError([Problem(file, 1, 1, (), "file is UTF-16 encoded", "save it as UTF-8")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ProfileError([Problem(file, line, col, (), "file is not valid UTF-8")]) from None
    bad = _CONTROL.search(text)
    if bad:
        i, ch = bad.start(), bad.group()
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        what = "a NUL byte: not a text file" if ch == "\x00" else f"the control character U+{ord(ch):04X}"
        raise ProfileError(
            [
                Problem(
                    file,
                    line,
                    col,
                    (),
                    f"file contains {what}",
                    'YAML text may not contain control characters; write escapes such as "\\t" in a double-quoted string',
                )
            ]
        )
    return text


class _Open:
    """A collection being built: its value, path, pending key, anchor, size and height, and
    whether its items are packed."""

    __slots__ = ("anchor", "height", "key", "packs", "path", "size", "value")

    def __init__(self, value, path, anchor, packs):
        self.value, self.path, self.key, self.anchor, self.packs = value, path, None, anchor, packs
        self.size = self.height = 1


_SKIP = object()  # the key of a mapping entry that is reported and left out
_IMPLICIT = _Core12Resolver.yaml_implicit_resolvers


def _scalar_tag(value: str, implicit: tuple[bool, bool]) -> str:
    """``BaseResolver.resolve`` of a scalar, without its method calls: a plain scalar's tag
    is the first of the implicit resolvers of its first character whose pattern matches
    (the core schema has no path and no wildcard resolvers), else str."""
    if implicit[0]:
        for tag, regexp in _IMPLICIT.get(value[:1], ()):
            if regexp.match(value):
                return tag
    return _STR


def _parse(text: str, doc: Document, limits: Limits, positions: bool, pack: tuple | None) -> Any:
    """The data of ``text`` (positions into ``doc`` when asked; the items of the sequence
    at path ``pack`` as marshal bytes); raises ProfileError. A node's path is built only
    where it is needed: for a collection (its children's), a position or a problem."""
    file = doc.file
    pos, keypos = doc.positions, doc.key_positions
    problems: list[Problem] = []
    plain = f"a {limits.what} holds only strings, numbers, booleans, null, lists and mappings"
    anchors: dict[str, tuple[Any, int, int]] = {}  # closed anchor -> (value, size, height)
    opened: set[str] = set()
    stack: list[_Open] = []
    events = nodes = documents = 0
    root: Any = None
    parser = _EventParser(text)
    Scalar, Alias, SeqStart, MapStart = (
        yaml.ScalarEvent,
        yaml.AliasEvent,
        yaml.SequenceStartEvent,
        yaml.MappingStartEvent,
    )
    SeqEnd, MapEnd = yaml.SequenceEndEvent, yaml.MappingEndEvent

    def fail(mark, path, message, hint=""):
        problems.append(Problem(file, mark.line + 1, mark.column + 1, tuple(path), message, hint))

    def too_big(mark, path, message, hint=""):
        raise ProfileError([Problem(file, mark.line + 1, mark.column + 1, tuple(path), message, hint)])

    def bounds(mark, top: _Open | None, depth: int) -> None:
        """The alias-expansion bound (nodes so far against the file's events) and the depth."""
        if nodes > limits.nodes + limits.expansion * events:
            too_big(
                mark,
                child_path(top),
                f"the document expands to more than {limits.nodes + limits.expansion * events} nodes",
                f"YAML aliases multiply nodes; a {limits.what} this large is almost certainly an alias bomb",
            )
        if depth > limits.depth:
            too_big(mark, child_path(top), f"nesting deeper than {limits.depth} levels")

    def child_path(top: _Open | None) -> tuple:
        if top is None:
            return ()
        return top.path + ((len(top.value),) if type(top.value) is list else (top.key,))

    def attach(top: _Open | None, value, size, height):
        nonlocal root
        if top is None:
            root = value
            return
        top.size += size
        if top.height <= height:
            top.height = height + 1
        if type(top.value) is list:
            top.value.append(marshal.dumps(value) if top.packs else value)
        else:
            key, top.key = top.key, None
            if key is not _SKIP:
                top.value[key] = value

    node_limit, expansion, max_depth = limits.nodes, limits.expansion, limits.depth
    next_event, more = parser.get_event, parser.check_event
    try:
        while more():
            ev: Any = next_event()
            events += 1
            cls = type(ev)
            top = stack[-1] if stack else None
            if cls is Scalar and top is not None and top.key is None and type(top.value) is dict:
                key = intern(ev.value)  # a mapping expecting a key: this event is the key
                if key in top.value or positions:
                    path: tuple = top.path + (key,)
                    if key in top.value:
                        first = keypos.get(path, (0, 0))
                        fail(
                            ev.start_mark,
                            path,
                            f"duplicate key {key!r}" + (f" (first defined at line {first[0]})" if positions else ""),
                            "YAML keeps only one of them; remove or merge the duplicate",
                        )
                        top.key = _SKIP
                        continue
                    keypos[path] = (ev.start_mark.line + 1, ev.start_mark.column + 1)
                top.key = key
                continue
            if cls is SeqEnd or cls is MapEnd:
                node = stack.pop()
                if node.anchor is not None:
                    anchors[node.anchor] = (node.value, node.size, node.height)
                    opened.discard(node.anchor)
                attach(stack[-1] if stack else None, node.value, node.size, node.height)
                continue
            if cls is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    too_big(
                        ev.start_mark,
                        (),
                        "YAML syntax error: the file holds more than one YAML document",
                        f"put one {limits.what} in each file",
                    )
                continue
            if cls is not Scalar and cls is not Alias and cls is not SeqStart and cls is not MapStart:
                continue  # stream start and end, document end
            mark = ev.start_mark
            if top is not None and top.key is None and type(top.value) is dict:
                # a mapping expecting a key got a collection or an alias
                fail(mark, top.path, "mapping keys must be plain strings, not lists, mappings or aliases")
                top.key = _SKIP
                if cls is SeqStart or cls is MapStart:
                    _skip_collection(parser)
                continue
            # a value: its path is built only for a collection, a position or a problem
            is_collection = cls is SeqStart or cls is MapStart
            path = child_path(top) if is_collection or positions else ()
            depth = len(path) if is_collection else (len(top.path) + 1 if top is not None else 0)
            if positions and not (top is not None and top.key is _SKIP):
                pos.setdefault(path, (mark.line + 1, mark.column + 1))
            if cls is Alias:
                if ev.anchor in opened:
                    fail(
                        mark,
                        child_path(top),
                        "recursive YAML alias",
                        "an alias may not refer to a node that contains it",
                    )
                    value, size, height = None, 1, 0
                elif ev.anchor in anchors:
                    value, size, height = anchors[ev.anchor]
                else:  # libyaml does not check aliases: one before its anchor, or a name never anchored
                    fail(
                        mark,
                        child_path(top),
                        f"undefined alias {ev.anchor!r}",
                        "define the anchor (&name) before the alias",
                    )
                    value, size, height = None, 1, 0
                nodes += size
                bounds(mark, top, depth + height)
                attach(top, value, size, height)
                continue
            nodes += 1
            if nodes > node_limit + expansion * events or depth > max_depth:
                bounds(mark, top, depth)
            tag = ev.tag
            if is_collection:
                is_seq = cls is SeqStart
                if tag is not None and tag != "!" and tag != (_SEQ if is_seq else _MAP):
                    fail(mark, path, f"unsupported YAML tag {tag!r}", plain)
                if ev.anchor is not None:
                    opened.add(ev.anchor)
                stack.append(_Open([] if is_seq else {}, path, ev.anchor, path == pack))
                continue
            if tag is None or tag == "!":
                tag = _scalar_tag(ev.value, ev.implicit)
            if tag == _STR:
                value = intern(ev.value)
            else:
                try:
                    value = _scalar(tag, ev.value)
                except ValueError:
                    fail(mark, child_path(top), f"unsupported YAML tag {tag!r}", plain)
                    value = None
            if ev.anchor is not None:
                anchors[ev.anchor] = (value, 1, 0)
            if top is None or top.packs:
                attach(top, value, 1, 0)
            else:  # attach(), inlined for the commonest event: a scalar in a collection
                top.size += 1
                if type(top.value) is list:
                    top.value.append(value)
                else:
                    if top.key is not _SKIP:
                        top.value[top.key] = value
                    top.key = None
    except yaml.MarkedYAMLError as exc:
        raise ProfileError([syntax_problem(exc, text, file, limits.what)]) from None
    except yaml.YAMLError as exc:  # reader errors carry no mark attribute
        raise ProfileError([Problem(file, 1, 1, (), f"YAML error: {exc}")]) from None
    finally:
        parser.dispose()
    if problems:
        raise ProfileError(problems)
    if documents == 0:
        raise ProfileError([Problem(file, 1, 1, (), "the file is empty", limits.empty_hint)])
    return root


def _skip_collection(parser) -> None:
    depth = 1
    while depth:
        ev = parser.get_event()
        if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
        elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _too_big(file: str, size: int, limits: Limits) -> ProfileError:
    return ProfileError(
        [Problem(file, 1, 1, (), f"file is {size} bytes, over the limit of {limits.bytes}", limits.too_big_hint)]
    )


def load_text(
    text: str | bytes,
    file: str = "<profile>",
    *,
    limits: Limits = PROFILE,
    positions: bool = True,
    pack: tuple | None = None,
) -> Document:
    """Parse ``text`` into a Document whose data is a mapping. Raises ProfileError listing
    every problem."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > limits.bytes:
        raise _too_big(file, len(raw), limits)
    decoded = decode(raw, file)
    doc = Document(file=file, data=None, positions={(): (1, 1)})
    doc.data = _parse(decoded, doc, limits, positions, pack)
    if not isinstance(doc.data, dict):
        kind = (
            "a list"
            if isinstance(doc.data, list)
            else {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(doc.data), "null")
        )
        raise ProfileError(
            [Problem(file, 1, 1, (), f"the document is {kind}, expected a mapping", limits.mapping_hint)]
        )
    return doc


def load_file(
    path: str | Path, *, limits: Limits = PROFILE, positions: bool = True, pack: tuple | None = None
) -> Document:
    """Read and parse a file; unreadable files are reported as problems."""
    p = Path(path)
    name = str(path)
    try:
        size = p.stat().st_size
        if size > limits.bytes:
            raise _too_big(name, size, limits)
        raw = p.read_bytes()
    except IsADirectoryError:
        raise ProfileError([Problem(name, 0, 0, (), f"is a directory, not a {limits.what} file")]) from None
    except OSError as exc:
        raise ProfileError([Problem(name, 0, 0, (), f"cannot read: {exc.strerror}")]) from None
    return load_text(raw, name, limits=limits, positions=positions, pack=pack)
