"""``--format ignition``: the Plan as one Ignition config (spec 3.3.0, or 3.4.0).

Layout (``layout()``, shared with the Butane emitter so both carry the same entries):

- Unit files ``/etc/systemd/system/NAME`` and drop-ins ``NAME.d/*.conf`` (mode 0644,
  see ``_systemd.split_units``) go to ``systemd.units`` (``contents``, ``dropins``),
  with ``enabled`` from ``Plan.units`` (Ignition writes it as a line of its preset file
  ``/etc/systemd/system-preset/20-ignition.preset``: ``enable NAME`` / ``disable NAME``)
  and ``mask: true`` for a masked unit (Ignition makes ``NAME -> /dev/null`` itself, so a
  Plan link that is exactly that mask is not repeated in ``storage.links``; a masked
  Unit without that link still gets Ignition's mask, which ``--format tree`` does not
  write). Listing a unit file in ``storage.files`` as well would write it twice (newer
  Ignition rejects it, see below). Ignition skips a unit or drop-in whose contents are
  empty, so an empty unit file stays a plain ``storage.files`` entry, which writes it.
- Every other file goes to ``storage.files``: ``mode`` as an integer, ``overwrite: true``
  (the host's vendor files may exist already), contents as a data URL (``_dataurl``:
  percent-encoded or base64, whichever is shorter; never gzip). No user/group: Ignition
  defaults to root, like the tree. Ignition creates missing parent directories 0755
  root, like the tree.
- Plan links (masks of vendor ``.network`` files) go to ``storage.links`` with
  ``hard: false`` and ``overwrite: true``.
- Actions are not carried: Ignition runs before the first boot, where systemd starts
  the enabled units in its own order (see ``plan_model.Action``).

Output is compact JSON (``sort_keys``, no spaces) with one final newline; lists are in
Plan path order and units by name, so the same Plan gives the same bytes.

Fleets (``fragments()``, on for a fleet run): ``json.dumps`` is compositional (a list is
``[`` + its items' texts joined by ``,`` + ``]``, a mapping its sorted members the same
way), so the document is assembled from the JSON text of each storage file, link and
unit, cached by content. The host's name (``Plan.profile``) is swapped for a sentinel
(``renderers._cache.SENTINEL``, which no valid profile contains) before the lookup, so
hosts whose files differ only by name share one entry; the name goes back into the
cached text where the sentinel's encoding stands: verbatim in a JSON string (a
sentinel is a plain character for ``ensure_ascii=False``), and as its percent-encoding
in a ``data:,`` URL (percent-encoding is per byte, and ``%`` only ever starts an escape,
so the sentinel's encoding cannot match anywhere else). The data URL's choice between
percent-encoding and base64 depends on the real length, so it is made again for each
host from lengths kept in the entry; base64 is encoded from the real text. Swapping is
skipped for a text that already holds the sentinel or when the name is empty: such a
text is its own key. ``tests/test_fleet.py`` compares both paths on every example.

Spec versions. 3.3.0 (Ignition >= 2.11, the default) is proven in the test suite: Debian's
``ignition-validate`` (Ignition 2.14.0) accepts every output with no warnings, and the
real Ignition 2.14 binary applies it to a scratch root that then equals ``--format tree``.
3.4.0 was stabilised in Ignition 2.15.0 (Ignition's spec table: 3.3.0 -> 2.11.0,
3.4.0 -> 2.15.0); Ignition 2.14 only knows it as ``3.4.0-experimental`` and rejects
``3.4.0``, so it cannot be validated here. What the tests prove for 3.4.0: the output is
byte-for-byte the 3.3.0 output except for ``ignition.version``, and the same config
labelled ``3.4.0-experimental`` passes Ignition 2.14's validation with no warnings (when
ignition-validate is 2.15 or newer, the tests validate the 3.4.0 output itself). Ignition's
"Upgrading Configs" guide lists only additions from 3.3.0 to 3.4.0 (offline Tang, LUKS
discard and open options, S3 access point ARNs), none of which is used here. It is not
proven against a real Ignition >= 2.15, which Debian 12 does not ship.

Newer Ignition releases also reject, in every 3.x spec, a ``storage`` path that is also a
unit or drop-in ("path conflicts with systemd unit or dropin"); 2.14 does not check it, so
the tests check that no path is written twice.
"""
from __future__ import annotations

import contextlib
import json
from typing import Iterator

from ..plan_model import File, Link, Plan
from ..targets import UNIT_DIR
from . import _dataurl
from ._systemd import SystemdUnit, split_units

KIND = "stream"
OPTIONS = {"ignition_version": (("3.3.0", "3.4.0"), "3.3.0")}


def layout(plan: Plan) -> tuple[list[File], list[Link], list[SystemdUnit]]:
    """(storage files, storage links, systemd units), each in a stable order."""
    units, files = split_units(plan.sorted())
    out_units = [u for u in units if u.contents is not None or u.dropins or u.enabled is not None or u.masked]
    masks = {f"{UNIT_DIR}/{u.name}" for u in out_units if u.masked}
    links = [link for link in plan.sorted().links if not (link.path in masks and link.target == "/dev/null")]
    return sorted(files, key=lambda f: f.path), links, out_units


def config(plan: Plan, ignition_version: str = "3.3.0") -> dict:
    files, links, units = layout(plan)
    storage: dict = {}
    if files:
        storage["files"] = [{"path": f.path, "mode": f.mode, "overwrite": True,
                             "contents": {"source": _dataurl.encode(f.content.encode("utf-8"))}} for f in files]
    if links:
        storage["links"] = [{"path": x.path, "target": x.target, "hard": False, "overwrite": True} for x in links]
    out: dict = {"ignition": {"version": ignition_version}}
    if storage:
        out["storage"] = storage
    if units:
        out["systemd"] = {"units": [_unit(u) for u in units]}
    return out


def _unit(u: SystemdUnit) -> dict:
    entry: dict = {"name": u.name}
    if u.contents is not None:
        entry["contents"] = u.contents
    if u.dropins:
        entry["dropins"] = [{"name": n, "contents": c} for n, c in u.dropins]
    if u.enabled is not None:
        entry["enabled"] = u.enabled
    if u.masked:
        entry["mask"] = True
    return entry


def render(plan: Plan, ignition_version: str = "3.3.0") -> bytes:
    if _FRAGMENTS is not None:
        return _render_fragments(plan, ignition_version, _FRAGMENTS)
    text = json.dumps(config(plan, ignition_version), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8")


# ------------------------------------------------------------------------- fleets
_FRAGMENTS: dict | None = None      # None: off (a single render: plain json.dumps)
MAX_FRAGMENTS = 4096                # cleared when full (hosts' own files would grow it without bound)
_DUMP = dict(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@contextlib.contextmanager
def fragments(on: bool = True) -> Iterator[None]:
    """Assemble ``render``'s output from cached fragments within the ``with`` block."""
    global _FRAGMENTS
    before, _FRAGMENTS = _FRAGMENTS, ({} if on else None)
    try:
        yield
    finally:
        _FRAGMENTS = before


def _sentinel() -> str:
    from ..renderers._cache import SENTINEL

    return SENTINEL


class _Names:
    """The encodings of one host name, and of the sentinel that stands for it."""
    __slots__ = ("name", "json", "pct", "nbytes", "s", "s_pct", "s_nbytes")

    def __init__(self, name: str):
        s = _sentinel()
        self.name, self.s = name, s
        self.json = json.dumps(name, ensure_ascii=False)[1:-1]
        self.pct = _dataurl.percent_encode(name.encode("utf-8"))
        self.nbytes = len(name.encode("utf-8"))
        self.s_pct = _dataurl.percent_encode(s.encode("utf-8"))
        self.s_nbytes = len(s.encode("utf-8"))

    def swap(self, text: str) -> tuple[str, int]:
        """(text with the name swapped for the sentinel, how many), or (text, 0)."""
        name = self.name
        if not name or name not in text or self.s in text:
            return text, 0
        return text.replace(name, self.s), text.count(name)


_DELETE_UNRESERVED = None


def _reserved_count(raw: bytes) -> int:
    """How many bytes of ``raw`` percent-encoding writes as ``%XX``."""
    global _DELETE_UNRESERVED
    if _DELETE_UNRESERVED is None:
        _DELETE_UNRESERVED = bytes(sorted(_dataurl._UNRESERVED))
    return len(raw.translate(None, _DELETE_UNRESERVED))


class _FileEntry:
    """What one file's fragment needs, for a content with the host name swapped for the
    sentinel. ``body`` (the percent-encoding) and the base64 parts are made on first use:
    most files are base64 (shorter), and ``plen`` (the percent-encoded length, for the
    choice) is counted without encoding."""
    __slots__ = ("head", "tail", "raw", "nbytes", "plen", "body", "b64", "last")

    def __init__(self, head: str, tail: str, raw: bytes, last: int):
        self.head, self.tail, self.raw, self.last = head, tail, raw, last
        self.nbytes, self.plen = len(raw), len(raw) + 2 * _reserved_count(raw)
        self.body = None
        self.b64: dict = {}


def _file_fragment(f: File, names: _Names, cache: dict) -> str:
    swapped, k = names.swap(f.content)
    key = ("f", f.path, f.mode, swapped)
    entry = cache.get(key)
    if entry is None:
        raw = swapped.encode("utf-8")
        head, _, tail = json.dumps({"path": f.path, "mode": f.mode, "overwrite": True,
                                    "contents": {"source": "\x00"}}, **_DUMP).partition('"\\u0000"')
        # bytes up to the end of the last sentinel (where the host's own bytes stop)
        last = len(swapped[:swapped.rfind(names.s) + len(names.s)].encode("utf-8")) if k else 0
        entry = cache[key] = _FileEntry(head + '"', '"' + tail, raw, last)
    nbytes, plen = entry.nbytes, entry.plen
    if k:
        grow = k * (names.s_nbytes - names.nbytes)
        nbytes -= grow
        plen -= k * (len(names.s_pct) - len(names.pct))
    # _dataurl.encode's rule: base64 only when strictly shorter than the percent-encoded URL
    if len("data:;base64,") + 4 * ((nbytes + 2) // 3) < len("data:,") + plen:
        return entry.head + "data:;base64," + _base64(entry, names, k) + entry.tail
    if entry.body is None:
        entry.body = _dataurl.percent_encode(entry.raw)
    return entry.head + "data:," + (entry.body.replace(names.s_pct, names.pct) if k else entry.body) + entry.tail


def _base64(entry: _FileEntry, names: _Names, k: int) -> str:
    """base64 of the host's bytes. Base64 encodes 3-byte groups on their own, so the
    encoding of the bytes after a cut at a multiple of 3 past the last name is the same
    on every host whose name has that length modulo 3: that tail is cached per cut, only
    the head (up to the cut, with the name) is encoded per host."""
    import binascii

    if not k:
        text = entry.b64.get(None)
        if text is None:
            text = entry.b64[None] = binascii.b2a_base64(entry.raw, newline=False).decode("ascii")
        return text
    grow = k * (names.s_nbytes - names.nbytes)
    cut = -(-(entry.last - grow) // 3) * 3           # in the host's bytes
    if cut >= entry.nbytes - grow:
        host = entry.raw.replace(names.s.encode("utf-8"), names.name.encode("utf-8"))
        return binascii.b2a_base64(host, newline=False).decode("ascii")
    at = cut + grow                                   # the same place in the sentinel's bytes
    tail = entry.b64.get(at)
    if tail is None:
        tail = entry.b64[at] = binascii.b2a_base64(entry.raw[at:], newline=False).decode("ascii")
    host_head = entry.raw[:at].replace(names.s.encode("utf-8"), names.name.encode("utf-8"))
    return binascii.b2a_base64(host_head, newline=False).decode("ascii") + tail


def _unit_fragment(u: SystemdUnit, names: _Names, cache: dict) -> str:
    contents, k = names.swap(u.contents) if u.contents is not None else (None, 0)
    dropins = []
    for n, c in u.dropins:
        c, kd = names.swap(c)
        k += kd
        dropins.append((n, c))
    key = ("u", u.name, contents, tuple(dropins), u.enabled, u.masked)
    text = cache.get(key)
    if text is None:
        swapped = SystemdUnit(u.name, contents, dropins, u.enabled, u.masked)
        text = cache[key] = json.dumps(_unit(swapped), **_DUMP)
    return text.replace(names.s, names.json) if k else text


def _render_fragments(plan: Plan, ignition_version: str, cache: dict) -> bytes:
    if len(cache) >= MAX_FRAGMENTS:
        cache.clear()
    files, links, units = layout(plan)
    names = _Names(plan.profile)
    top = ['"ignition":' + json.dumps({"version": ignition_version}, **_DUMP)]
    storage = []
    if files:
        storage.append('"files":[' + ",".join([_file_fragment(f, names, cache) for f in files]) + "]")
    if links:
        parts = []
        for x in links:
            key = ("l", x.path, x.target)
            text = cache.get(key)
            if text is None:
                text = cache[key] = json.dumps({"path": x.path, "target": x.target, "hard": False, "overwrite": True},
                                               **_DUMP)
            parts.append(text)
        storage.append('"links":[' + ",".join(parts) + "]")
    if storage:
        top.append('"storage":{' + ",".join(storage) + "}")
    if units:
        top.append('"systemd":{"units":[' + ",".join([_unit_fragment(u, names, cache) for u in units]) + "]}")
    return ("{" + ",".join(top) + "}\n").encode("utf-8")
