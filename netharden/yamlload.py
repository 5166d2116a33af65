"""Read a YAML (or JSON) profile safely, keeping the line and column of every node.

YAML is resolved with the YAML 1.2 core schema, the way Butane (go-yaml v3) and
yaml-language-server read it: only ``true``/``false`` are booleans, so ``dhcp: yes``
and ``mode: off`` stay the strings a user meant, and ``2024-01-01`` stays a string.

Guards, each reported as a Problem with a position rather than an exception:
duplicate keys, non-mapping documents, several documents in one file, non-scalar
keys, unsupported tags, recursive aliases, alias expansion beyond ``MAX_NODES``
("billion laughs") and files over ``MAX_BYTES``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .problems import Problem, ProfileError

MAX_BYTES = 1024 * 1024  # a host profile is a few KiB; 1 MiB leaves room for comments
MAX_NODES = 20_000       # nodes after alias expansion
MAX_DEPTH = 64
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # YAML forbids these; tab, LF, CR are fine

try:  # libyaml parses events ~10x faster; nodes are composed in Python (below) either way
    from yaml.cyaml import CParser as _EventParser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    class _EventParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class _Alias:
    """An alias in the node tree: the anchored node plus where the alias itself stands,
    so problems inside an alias point at the alias, not at its anchor."""

    __slots__ = ("node", "start_mark")

    def __init__(self, node, start_mark):
        self.node, self.start_mark = node, start_mark


class _Composer(yaml.composer.Composer):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            return _Alias(super().compose_node(parent, index), mark)
        return super().compose_node(parent, index)


class _Core12Resolver(yaml.resolver.BaseResolver):
    """Implicit typing of plain scalars per the YAML 1.2 core schema."""


_Core12Resolver.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Core12Resolver.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


class _Loader(_Composer, _EventParser, _Core12Resolver):  # type: ignore[misc, valid-type]
    """Events from libyaml (or PyYAML's parser), nodes from the Python composer."""

    def __init__(self, stream):
        _EventParser.__init__(self, stream)
        _Composer.__init__(self)
        _Core12Resolver.__init__(self)


@dataclass
class Document:
    """A loaded profile: plain data plus the source position of every node."""

    file: str
    data: Any
    positions: dict = field(default_factory=dict)      # path -> (line, col) of the value
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


def syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str, what: str, line_offset: int = 0) -> Problem:
    """The Problem of libyaml's syntax error in ``text`` (shared by this loader and the
    fleet reader; ``what`` is what one file holds, for the hint on several documents;
    ``line_offset``: lines of the file before ``text``)."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    hint = ""
    if "expected a single document" in problem or "but found another document" in problem:
        problem, hint = "the file holds more than one YAML document", f"put one {what} in each file"
    elif exc.context:
        cm = exc.context_mark
        if cm and (cm.line, cm.column) != (line - 1, col - 1):
            hint = f"{exc.context} that starts at line {cm.line + 1 + line_offset}, column {cm.column + 1}"
    lines = text.splitlines()
    if line <= len(lines) and lines[line - 1][col - 1:col] == "\t":
        hint = "YAML indentation uses spaces, not tabs"
    return Problem(file, line + line_offset, col, (), f"YAML syntax error: {problem}", hint)


def _scalar(node: yaml.ScalarNode) -> Any:
    tag, value = node.tag, node.value
    if tag == "tag:yaml.org,2002:str":
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


class _Walker:
    def __init__(self, doc: Document):
        self.doc = doc
        self.count = 0
        self.stack: set[int] = set()
        self.problems: list[Problem] = []
        self.alias: tuple[tuple, object] | None = None  # outermost alias being expanded: (path, mark)

    @staticmethod
    def at(mark) -> tuple[int, int]:
        return mark.line + 1, mark.column + 1

    def fail(self, mark, path, message, hint=""):
        self.problems.append(Problem(self.doc.file, *self.at(mark), tuple(path), message, hint))

    def walk(self, node, path: tuple) -> Any:
        if isinstance(node, _Alias):
            self.doc.positions.setdefault(path, self.at(node.start_mark))
            if id(node.node) in self.stack:
                self.fail(node.start_mark, path, "recursive YAML alias", "an alias may not refer to a node that contains it")
                return None
            outer = self.alias
            self.alias = outer or (path, node.start_mark)
            try:
                return self.walk(node.node, path)
            finally:
                self.alias = outer
        self.count += 1
        if self.count > MAX_NODES or len(path) > MAX_DEPTH:
            raise _TooBig(self.alias or (path, node.start_mark), depth=len(path) > MAX_DEPTH)
        mark = node.start_mark
        self.doc.positions.setdefault(path, self.at(mark))
        if isinstance(node, yaml.ScalarNode):
            try:
                return _scalar(node)
            except ValueError:
                self.fail(mark, path, f"unsupported YAML tag {node.tag!r}", _PLAIN_DATA)
                return None
        self.stack.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != "tag:yaml.org,2002:seq":
                    self.fail(mark, path, f"unsupported YAML tag {node.tag!r}", _PLAIN_DATA)
                return [self.walk(child, path + (i,)) for i, child in enumerate(node.value)]
            if node.tag != "tag:yaml.org,2002:map":
                self.fail(mark, path, f"unsupported YAML tag {node.tag!r}", _PLAIN_DATA)
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.fail(key_node.start_mark, path, "mapping keys must be plain strings, not lists, mappings or aliases")
                    continue
                key = key_node.value
                child = path + (key,)
                if key in out:
                    first = self.doc.key_positions.get(child, (0, 0))
                    self.fail(key_node.start_mark, child, f"duplicate key {key!r} (first defined at line {first[0]})",
                              "YAML keeps only one of them; remove or merge the duplicate")
                    continue
                self.doc.key_positions[child] = self.at(key_node.start_mark)
                out[key] = self.walk(value_node, child)
            return out
        finally:
            self.stack.discard(id(node))


_PLAIN_DATA = "a profile holds only strings, numbers, booleans, null, lists and mappings"


class _TooBig(Exception):
    def __init__(self, where: tuple, depth: bool):
        self.path, self.mark = where
        self.depth = depth


def _too_big(file: str, size: int, max_bytes: int) -> ProfileError:
    return ProfileError([Problem(file, 1, 1, (), f"file is {size} bytes, over the limit of {max_bytes}",
                                 "a host profile is a few KiB; split a fleet into one profile per host")])


def decode(raw: bytes, file: str) -> str:
    """The text of a YAML file's bytes: refuses UTF-16, invalid UTF-8 and control
    characters (with their line:col); a UTF-8 BOM is dropped. Shared by the profile
    loader and the fleet reader (netharden/fleet/yamlfast.py)."""
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
        raise ProfileError([Problem(file, line, col, (), f"file contains {what}",
                                    "YAML text may not contain control characters; write escapes such as \"\\t\" in a double-quoted string")])
    return text


def load_text(text: str | bytes, file: str = "<profile>", *, max_bytes: int = MAX_BYTES) -> Document:
    """Parse ``text`` into a Document. Raises ProfileError listing every problem."""
    doc = Document(file=file, data=None, positions={(): (1, 1)})
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > max_bytes:
        raise _too_big(file, len(raw), max_bytes)
    decoded = decode(raw, file)
    loader = None
    try:
        loader = _Loader(decoded)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise ProfileError([syntax_problem(exc, decoded, file, "profile")]) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark attribute
        raise ProfileError([Problem(file, 1, 1, (), f"YAML error: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise ProfileError([Problem(file, 1, 1, (), "the file is empty",
                                    "a profile needs at least apiVersion, kind and metadata.name")])
    walker = _Walker(doc)
    try:
        doc.data = walker.walk(node, ())
    except _TooBig as big:
        line, col = walker.at(big.mark)
        if big.depth:
            msg, hint = f"nesting deeper than {MAX_DEPTH} levels", ""
        else:
            msg = f"the document expands to more than {MAX_NODES} nodes"
            hint = "YAML aliases multiply nodes; a profile this large is almost certainly an alias bomb"
        raise ProfileError([Problem(file, line, col, tuple(big.path), msg, hint)]) from None
    if walker.problems:
        raise ProfileError(walker.problems)
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else {
            str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(doc.data), "null")
        raise ProfileError([Problem(file, *doc.positions[()], (), f"the document is {kind}, expected a mapping",
                                    "a profile starts with 'apiVersion: netharden/v1'")])
    return doc


def load_file(path: str | Path, *, max_bytes: int = MAX_BYTES) -> Document:
    """Read and parse a profile file; unreadable files are reported as problems."""
    p = Path(path)
    name = str(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise _too_big(name, size, max_bytes)
        raw = p.read_bytes()
    except IsADirectoryError:
        raise ProfileError([Problem(name, 0, 0, (), "is a directory, not a profile file")]) from None
    except OSError as exc:
        raise ProfileError([Problem(name, 0, 0, (), f"cannot read: {exc.strerror}")]) from None
    return load_text(raw, name, max_bytes=max_bytes)
