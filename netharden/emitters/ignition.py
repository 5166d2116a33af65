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
unit. A file or unit the renderer cache replayed (``renderers._cache``) carries the
recorded entry it was made from (``ORIGIN``), whose text holds a sentinel
(``renderers._cache.SENTINEL``, which no valid profile contains) exactly where the host's
name went; its JSON is worked out once per recorded entry (held by the cache, so its id
is not reused) and the name goes back where the sentinel's encoding stands: verbatim in a
JSON string (a sentinel is a plain character for ``ensure_ascii=False``), as its
percent-encoding in a ``data:,`` URL (percent-encoding is per byte, and ``%`` only ever
starts an escape, so the sentinel's encoding cannot match anywhere else), and in base64
by encoding only the bytes up to the first 3-byte boundary after the last name (the rest
is encoded once per name length). The data URL's choice between percent-encoding and
base64 depends on the real length, so it is made per name length from lengths kept in the
entry. A host's own files (bridges, uplinks: not replayed) are encoded as they are; only
their JSON frame is cached. ``tests/test_fleet.py`` compares both paths on every example
and on names of every length.

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
from binascii import b2a_base64
from operator import attrgetter, itemgetter
from typing import Iterator

from ..plan_model import File, Link, Plan
from ..targets import UNIT_DIR
from . import _dataurl
from ._systemd import SystemdUnit, placement, split_units

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
_PATH, _FIRST = attrgetter("path"), itemgetter(0)
_FRAGMENTS: dict | None = None      # None: off (a single render: plain json.dumps)
MAX_FRAGMENTS = 4096                # entries per recorded file, unit and frame: cleared when full
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
    __slots__ = ("name", "json", "pct", "bytes", "nbytes", "s", "s_pct", "s_bytes", "s_nbytes", "sig")

    def __init__(self, name: str):
        s = _sentinel()
        self.name, self.s = name, s
        self.json = json.dumps(name, ensure_ascii=False)[1:-1]
        self.bytes, self.s_bytes = name.encode("utf-8"), s.encode("utf-8")
        self.pct = _dataurl.percent_encode(self.bytes)
        self.nbytes, self.s_nbytes = len(self.bytes), len(self.s_bytes)
        self.s_pct = _dataurl.percent_encode(self.s_bytes)
        self.sig = (self.nbytes, len(self.pct))   # what a fragment's layout depends on


class _FileEntry:
    """What the fragments of one recorded file need (its text holds the sentinel where
    the host's name goes). ``body`` (the percent-encoding) and the per-length plans are
    made on first use: most files are base64 (shorter), and ``plen`` (the percent-encoded
    length, for the choice) is counted without encoding."""
    __slots__ = ("head", "tail", "raw", "nbytes", "plen", "body", "last", "whole", "plans")

    def __init__(self, head: str, tail: str, raw: bytes, last: int):
        self.head, self.tail, self.raw, self.last = head, tail, raw, last
        self.nbytes, self.plen = len(raw), _dataurl.percent_length(raw)
        self.body = self.whole = None
        self.plans: dict = {}    # names.sig -> _fragment_plan


def _frame(path: str, mode: int) -> tuple[str, str]:
    """The JSON text of a storage file before and after its data URL (quotes included)."""
    head, _, tail = json.dumps({"path": path, "mode": mode, "overwrite": True,
                                "contents": {"source": "\x00"}}, **_DUMP).partition('"\\u0000"')
    return head + '"', '"' + tail


def _new_entry(path: str, mode: int, recorded: str, k: int, names: _Names) -> _FileEntry:
    # bytes up to the end of the last sentinel (where the host's own bytes stop)
    last = len(recorded[:recorded.rfind(names.s) + len(names.s)].encode("utf-8")) if k else 0
    return _FileEntry(*_frame(path, mode), recorded.encode("utf-8"), last)


def _file_fragment(f: File, names: _Names, cache: dict) -> str:
    origin = _origin(f, names, cache)
    if origin is None:   # the host's own file (not replayed): encoded as it is, nothing cached but its JSON frame
        frame = cache.get(("frame", f.path, f.mode))
        if frame is None:
            frame = cache[("frame", f.path, f.mode)] = _frame(f.path, f.mode)
        return frame[0] + _dataurl.encode(f.content.encode("utf-8")) + frame[1]
    entry, k = origin
    if not k:
        text = entry.whole
        if text is None:
            text = entry.whole = _whole_fragment(entry)
        return text
    # everything but the host's own bytes depends on the name only through its encoded
    # lengths (names.sig): worked out once per entry and length
    how = entry.plans.get(names.sig)
    if how is None:
        how = entry.plans[names.sig] = _fragment_plan(entry, names, k)
    before, at, after = how
    if at is None:     # percent-encoded
        return before + entry.body.replace(names.s_pct, names.pct) + after
    return before + b2a_base64(entry.raw[:at].replace(names.s_bytes, names.bytes), newline=False).decode("ascii") + after


def _whole_fragment(entry: _FileEntry) -> str:
    """The fragment of an entry without the name: _dataurl.encode's choice, base64 only
    when strictly shorter than the percent-encoded URL."""
    if len("data:;base64,") + 4 * ((entry.nbytes + 2) // 3) < len("data:,") + entry.plen:
        return entry.head + "data:;base64," + b2a_base64(entry.raw, newline=False).decode("ascii") + entry.tail
    return entry.head + "data:," + _dataurl.percent_encode(entry.raw) + entry.tail


def _fragment_plan(entry: _FileEntry, names: _Names, k: int) -> tuple[str, int | None, str]:
    """(text before the host's own bytes, where they end in the sentinel's bytes or None
    for percent-encoding, text after) for names of ``names.sig``'s lengths.

    The choice is _dataurl.encode's (base64 only when strictly shorter), from the lengths
    the host's bytes will have. Base64 encodes 3-byte groups on their own, so the
    encoding of the bytes after a cut at a multiple of 3 past the last name is the same
    on every host whose name has that length: that tail is encoded once, only the head
    (up to the cut, with the name) is encoded per host."""
    grow = k * (names.s_nbytes - names.nbytes)
    nbytes = entry.nbytes - grow
    plen = entry.plen - k * (len(names.s_pct) - len(names.pct))
    if len("data:;base64,") + 4 * ((nbytes + 2) // 3) < len("data:,") + plen:
        cut = -(-(entry.last - grow) // 3) * 3           # in the host's bytes
        if cut >= nbytes:
            return entry.head + "data:;base64,", len(entry.raw), entry.tail
        at = cut + grow                                   # the same place in the sentinel's bytes
        tail = b2a_base64(entry.raw[at:], newline=False).decode("ascii")
        return entry.head + "data:;base64,", at, tail + entry.tail
    if entry.body is None:
        entry.body = _dataurl.percent_encode(entry.raw)
    return entry.head + "data:,", None, entry.tail


def _origin(f: File, names: _Names, cache: dict) -> tuple[_FileEntry, int] | None:
    """(entry, sentinel count) of a file the renderer cache replayed: its recorded entry
    (``renderers._cache.ORIGIN``) holds the sentinel exactly where the name went, so it
    is the key as it is (no swap, no hashing of the content); the cache keeps the
    recorded entry alive, so its id is not reused. None for any other file."""
    origin = f.__dict__.get("_origin")
    if origin is None:
        return None
    hit = cache.get(id(origin))
    if hit is not None and hit[0] is origin:
        return hit[1], hit[2]
    if names.s in origin.path or f.path != origin.path or f.mode != origin.mode:
        return None
    k = origin.content.count(names.s)
    entry = _new_entry(origin.path, origin.mode, origin.content, k, names)
    cache[id(origin)] = (origin, entry, k)
    return entry, k


def _unit_fragment_of_files(name: str, contents: File | None, dropins: list, unit, names: _Names,
                            cache: dict) -> str:
    """The JSON text of one unit. When the renderer cache replayed all its files, it is
    kept per recorded entries (see ``_origin``), with the name put back in; else it is
    dumped as it is."""
    enabled, masked = (unit.enabled, unit.masked) if unit is not None else (None, False)
    files = ([contents] if contents is not None else []) + [f for _, f in dropins]
    origins = [f.__dict__.get("_origin") for f in files]
    if files and None not in origins:
        key = ("uo", name, contents is not None, tuple(n for n, _ in dropins), tuple(map(id, origins)), enabled, masked)
        hit = cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], origins)):
            return hit[1].replace(names.s, names.json) if hit[2] else hit[1]
        if all(o.path == f.path and o.mode == f.mode and names.s not in o.path for o, f in zip(origins, files)):
            recorded = [o.content for o in origins]
            unit_rec = SystemdUnit(name, recorded[0] if contents is not None else None,
                                   [(n, c) for (n, _), c in zip(dropins, recorded[len(recorded) - len(dropins):])],
                                   enabled, masked)
            text = json.dumps(_unit(unit_rec), **_DUMP)
            k = any(names.s in c for c in recorded)
            cache[key] = (origins, text, k)
            return text.replace(names.s, names.json) if k else text
    # the host's own unit (not replayed): its JSON as it is, nothing cached
    return json.dumps(_unit(SystemdUnit(name, contents.content if contents is not None else None,
                                        [(n, f.content) for n, f in dropins], enabled, masked)), **_DUMP)


def _layout_files(plan: Plan, memo: dict) -> tuple[list[File], list[Link], list[tuple]]:
    """``layout`` for fleets: the same entries in the same order, with unit contents and
    drop-ins kept as their Files (so replayed ones are found by their origin) and each
    path's placement memoized. Returns (files, links, [(name, contents File | None,
    [(drop-in name, File)], Plan Unit | None)])."""
    units: dict[str, list] = {}
    rest: list[File] = []
    for f in plan.files:
        key = (f.path, f.mode, f.content == "")
        place = memo.get(key, False)
        if place is False:
            place = memo[key] = placement(*key)
        if place is None:
            rest.append(f)
        else:
            u = units.get(place[0])
            if u is None:
                u = units[place[0]] = [place[0], None, [], None]
            if place[1]:
                u[2].append((place[1], f))
            else:
                u[1] = f
    for pu in plan.units:
        u = units.get(pu.name)
        if u is None:
            u = units[pu.name] = [pu.name, None, [], None]
        u[3] = pu
    out = []
    for n in sorted(units):
        u = units[n]
        pu = u[3]
        if u[1] is not None or u[2] or (pu is not None and (pu.enabled is not None or pu.masked)):
            u[2].sort(key=_FIRST)
            out.append(tuple(u))
    masks = {f"{UNIT_DIR}/{u[0]}" for u in out if u[3] is not None and u[3].masked}
    links = [x for x in plan.links if not (x.path in masks and x.target == "/dev/null")]
    return sorted(rest, key=_PATH), links, out


def _render_fragments(plan: Plan, ignition_version: str, cache: dict) -> bytes:
    if len(cache) >= MAX_FRAGMENTS:
        cache.clear()
    memo = cache.get("placement")
    if memo is None:
        memo = cache["placement"] = {}
    files, links, units = _layout_files(plan.sorted(), memo)
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
        top.append('"systemd":{"units":[' + ",".join([_unit_fragment_of_files(*u, names, cache) for u in units])
                   + "]}")
    return ("{" + ",".join(top) + "}\n").encode("utf-8")
