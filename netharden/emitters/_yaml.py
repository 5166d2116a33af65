"""The YAML writer of the emitters that write YAML by hand: ``cloudconfig`` (cloud-init reads
it with PyYAML, YAML 1.1), ``butane`` (Butane: go-yaml v3, YAML 1.2) and ``coreos``
(coreos-cloudinit: go-yaml, a Go port of libyaml). The YAML is written here, not by a YAML
library, so the bytes do not depend on a library's version and stay readable. Every form
reads back as exactly the text it was given in YAML 1.1 (PyYAML, pure Python and libyaml)
and YAML 1.2 (go-yaml v3) alike.

Characters. ``_RAW`` is what every form writes as it is: YAML's printable set (the same in
1.1 and 1.2) without tab and line feed (each form treats them on its own), without the
characters a YAML 1.1 reader takes as a line break (CR, NEL, U+2028, U+2029: PyYAML turns
them into ``\\n``) and without the BOM (YAML 1.2 forbids it inside a document). The rest
(C0 controls, DEL, the C1 controls, those line breaks, BOM, U+FFFE, U+FFFF, surrogates) is
not printable or not read back as written: only the double-quoted form can carry it, as an
escape. Every character above U+FFFF is printable, so every escape fits in ``\\uXXXX``.

The forms:

- ``quoted``: the double-quoted scalar, on one line. One escape table: ``\\"``, ``\\\\``,
  ``\\t``, ``\\n``, ``\\r`` and ``\\uXXXX`` for every other character outside ``_RAW``
  (NUL too: ``\\0``, ``\\xNN`` and ``\\e`` are YAML but not JSON). These are the escapes
  YAML 1.1, YAML 1.2 and JSON share, so the scalar is also a JSON string. A tab may stand
  raw in a double-quoted scalar; it is escaped so that a reader sees it.
- ``scalar``: the most readable of three forms, for short strings: a plain word (letters,
  digits and ``_./@+-``, starting with a letter, ``/``, or ``-`` and a letter: no YAML 1.1
  or 1.2 resolver makes such a word anything but a string, except the boolean and null
  words, which are quoted; safe in block and flow context), else single-quoted (``'``
  doubled; only ``_RAW`` characters: a single-quoted scalar has no escapes and folds line
  breaks; a tab is left to the double-quoted form, as above), else ``quoted``.
- ``block``: the literal block scalar, for file contents. ``block_ok`` says when it gives
  back exactly the text and a reader sees all of it: something besides newlines; only
  ``_RAW`` characters, tabs and line feeds; no space or tab at the end of a line
  (invisible, and lost by editors); and a first non-empty line that does not start with a
  space (its spaces would join the block's indentation). Leading empty lines are content
  (the indentation is taken from the first non-empty line; the writer gives empty lines no
  spaces). The chomping indicator follows the final newlines: ``|-`` none, ``|`` (clip)
  one, ``|+`` (keep) several. The lines are indented two columns more than their key. A
  first non-empty line that starts with a tab gets the indentation indicator ``2``
  (``|2``): PyYAML would take the tab as content anyway, but libyaml and go-yaml, while
  they detect the indentation, refuse a tab ("found a tab character where an indentation
  space is expected"); with the indentation stated, the tab is content to all of them.
  Every non-empty line is indented, so none can be read as ``---`` or ``...``.
- ``block_or_quoted``: the block when ``block_ok``, else ``quoted`` (for a format that
  has no base64 fallback).
- ``comment`` writes one comment line; ``comment_text`` is text as it can stand in a
  comment: as it is when it holds only ``_RAW`` characters and tabs (a comment is read to
  the end of its line, but a reader refuses a non-printable character even there) and
  does not end in a blank (invisible), else ``quoted``. So a profile name or a note can
  neither end the comment nor break the document, and nothing of it is lost.
"""

from __future__ import annotations

import re

_RAW = r"\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff"
_ESCAPED = re.compile(rf'[^{_RAW}]|["\\]')
_NOT_RAW = re.compile(rf"[^{_RAW}]")
_NOT_IN_COMMENT = re.compile(rf"[^\t{_RAW}]|[ \t]\Z")
_NOT_IN_BLOCK = re.compile(rf"[^\t\n{_RAW}]")
_BLANK_AT_LINE_END = re.compile(r"[ \t](?:\n|\Z)")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_PLAIN = re.compile(r"(?:[A-Za-z/]|-[A-Za-z])[A-Za-z0-9_./@+-]*")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def quoted(text: str) -> str:
    """``text`` as a one-line double-quoted scalar (also a JSON string)."""
    return '"' + _ESCAPED.sub(_escape, text) + '"'


def scalar(text: str) -> str:
    """``text`` as a plain word, a single-quoted or a double-quoted scalar, the first that fits."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML11_WORDS:
        return text
    if not _NOT_RAW.search(text):
        return "'" + text.replace("'", "''") + "'"
    return quoted(text)


def block_ok(text: str) -> bool:
    """Whether ``block(text, ...)`` reads back as exactly ``text``, every character visible."""
    body = text.rstrip("\n")
    return (
        body != ""
        and not _NOT_IN_BLOCK.search(body)
        and not _BLANK_AT_LINE_END.search(body)
        and not body.lstrip("\n").startswith(" ")
    )


def block(text: str, indent: int) -> str:
    """``text`` (one ``block_ok`` accepts) as a literal block scalar, from its indicator
    (the value after ``key: ``) to its last line, its lines indented by ``indent`` spaces,
    two more than the key."""
    body = text.rstrip("\n")
    final = len(text) - len(body)
    indicator = "|2" if body.lstrip("\n").startswith("\t") else "|"
    pad = " " * indent
    lines = body.split("\n") + [""] * (final - 1)
    return indicator + {0: "-", 1: ""}.get(final, "+") + "".join(f"\n{pad}{line}" if line else "\n" for line in lines)


def block_or_quoted(text: str, indent: int) -> str:
    """``block(text, indent)`` when ``block_ok(text)``, else ``quoted(text)``."""
    return block(text, indent) if block_ok(text) else quoted(text)


def comment_text(text: str) -> str:
    """``text`` as it can stand in a comment line: itself, or ``quoted(text)`` when it holds
    a line break or a character that a comment cannot carry, or ends in a blank."""
    return quoted(text) if _NOT_IN_COMMENT.search(text) else text


def comment(text: str) -> str:
    """The comment line ``# `` + ``comment_text(text)`` (``#`` alone when ``text`` is empty)."""
    return f"# {comment_text(text)}" if text else "#"
