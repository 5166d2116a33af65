"""RFC 2397 data URLs for Ignition's ``contents.source`` (shared by the Ignition emitter
and its tests' expectations).

Two encodings, the shorter wins (base64 only when strictly shorter, the rule Butane's
``MakeDataURL`` applies before it considers gzip):

- ``data:,`` + percent-encoding: readable for text. Every byte outside RFC 3986's
  unreserved set (``A-Z a-z 0-9 - . _ ~``) becomes ``%XX`` (upper-case hex), so no byte
  (``%``, ``#``, ``?``, ``/``, ``+``, NUL, CR, non-ASCII UTF-8) can be read back as
  anything but itself.
- ``data:;base64,`` + standard base64 with padding: smaller for binary or non-ASCII text.

No media type (RFC 2397 then means ``text/plain;charset=US-ASCII``, which Ignition
ignores: it writes the decoded bytes as they are).

No gzip (``compression: gzip``), although Ignition 3.x and Butane allow it: the config
would stop being readable and greppable, and gzip output depends on the compressor's
implementation and version (Python's zlib, zlib-ng, Go's compress/gzip differ), which
would make "same Plan, same bytes" depend on the machine that renders.

The choice needs only lengths (``percent_length`` counts the bytes outside the unreserved
set with ``bytes.translate``), so only the shorter encoding is computed.
"""

from __future__ import annotations

import base64

_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_ENCODED = tuple(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256))


def percent_encode(data: bytes) -> str:
    """``data`` with every byte outside the unreserved set as ``%XX``."""
    return "".join(map(_ENCODED.__getitem__, data))


def percent_length(data: bytes) -> int:
    """``len(percent_encode(data))``, counted without encoding: 3 characters for every
    byte outside the unreserved set, 1 for the others."""
    return len(data) + 2 * len(data.translate(None, _UNRESERVED))


def encode(data: bytes) -> str:
    """The shorter data URL of ``data`` (percent-encoded unless base64 is strictly shorter;
    the choice needs only lengths, so only the winner is encoded)."""
    if len("data:;base64,") + 4 * ((len(data) + 2) // 3) < len("data:,") + percent_length(data):
        return "data:;base64," + base64.b64encode(data).decode("ascii")
    return "data:," + percent_encode(data)
