"""A content-keyed cache of rendered template text, for fleets (off for a single host).

Most hosts of a fleet share their unmanaged presets, masks, quarantine, VXLAN collector
and docker settings, so most of their files differ only in the generated-by header,
which names the host. The cache key is therefore the *content* that reaches the
template, never the host:

    (template, repr of every context value except ``profile``,
     repr of each ``profile.ATTR`` the template reads other than ``name``)

and the cached text is rendered with ``profile.name`` replaced by a sentinel that the
schema forbids in a name (private-use characters), then the real name is substituted.
Two hosts whose files differ only by name share one render; a host with its own bridge
gets its own entry for that bridge's files only.

Decisions that keep the cached text byte-identical to an uncached render:

- Which ``profile`` attributes a template reads is found once per template by
  Jinja2's own lexer (includes followed). A template that uses ``profile`` in any
  other way than ``profile.ATTR`` (``{{ profile }}``, ``profile[...]``, ``set p =
  profile``), or ``profile.name`` other than as ``{{ profile.name }}`` or ``{{
  profile.name | ini }}`` (a filter such as ``upper`` would change the sentinel), or
  includes a template by a non-literal name, is rendered without the cache.
- ``repr`` is the key because it is exact for the values renderers pass (str, int,
  bool, float, tuples, lists, dicts in their order, frozen dataclasses with every
  field in their repr: ``Daemon.settings`` is compared by repr although the
  dataclass excludes it from ``==``). A key that holds a default ``object`` repr
  (``<... at 0x...>``, whose address may be reused) or the sentinel itself is not
  cached.
- The cache is per process (each fleet worker warms its own) and bounded: it is
  cleared when it holds ``MAX_ENTRIES`` texts.

Renderer-level cache (``build_plan``, fleets only). A renderer is a function of the
Profile attributes it reads. On a miss it runs against ``_Recording`` (a stand-in that
records every attribute read and returns the real value) and a ``_PlanRecorder`` (only
``add`` and ``note``; anything else fails and the renderer is run uncached from then on).
The profile's name is handed out as ``SENTINEL`` only to cacheable templates (``render``
above, which then keeps the sentinel in the text); any other read of ``name`` returns the
real name and makes it part of the key. The entries it added are kept, keyed by
``(renderer, A, the values of A)`` where ``A`` is the union of every attribute set this
renderer read so far (it only grows; entries of a smaller ``A`` are never looked up
again); values are keyed by ``repr`` as above (memoized by identity for the objects a
host shares with others). Equal values mean the renderer runs the same way and adds the
same entries, so a hit replays them with the sentinel replaced by the host's name in
every string (one ``Plan.extend`` per part). A key holding the sentinel (a value that
contains it) is not cached. Every replayed entry, and every recorded one shared as it is,
carries the recorded entry it comes from in its ``__dict__`` under ``ORIGIN`` (not a
field: equality, repr and ``to_dict`` ignore it); the fleet's Ignition emitter keys on it
instead of reading the entry's text (``emitters.ignition._origin``).

``tests/test_fleet.py`` renders every example, the awkward profile and a fleet with
and without the cache and compares the bytes.
"""
from __future__ import annotations

import contextlib
import types
from typing import Any, Iterator

from .. import templating

SENTINEL = "\ue000netharden-host\ue001"
MAX_ENTRIES = 20_000

ENABLED = False
_texts: dict[tuple, str] = {}
_uses: dict[str, tuple[str, ...] | None] = {}
stats = {"hits": 0, "misses": 0, "uncached": 0}


@contextlib.contextmanager
def enabled(on: bool = True) -> Iterator[None]:
    """Turn the cache on (or off) for the ``with`` block."""
    global ENABLED
    before, ENABLED = ENABLED, on
    try:
        yield
    finally:
        ENABLED = before


def clear() -> None:
    _texts.clear()
    _plans.clear()
    _attrs.clear()
    _tally.clear()
    _names.clear()
    _reprs.clear()
    for k in stats:
        stats[k] = 0


def _source(name: str) -> str:
    from ..resources import root

    return (root("templates") / name).read_text(encoding="utf-8")


def profile_uses(template: str) -> tuple[str, ...] | None:
    """The ``profile`` attributes ``template`` (and what it includes) reads, or None
    when the template cannot be cached safely (see the module docstring)."""
    if template not in _uses:
        _uses[template] = _scan(template, set())
    return _uses[template]


def _scan(template: str, seen: set[str]) -> tuple[str, ...] | None:
    import jinja2

    if template in seen:
        return ()
    seen.add(template)
    tokens = [(kind, value) for _, kind, value in jinja2.Environment().lex(_source(template)) if kind != "whitespace"]
    attrs: set[str] = set()
    for i, (kind, value) in enumerate(tokens):
        if kind == "name" and value in ("include", "extends", "import", "from") and i and tokens[i - 1][0] == "block_begin":
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
            if nxt[0] != "string":
                return None
            inner = _scan(nxt[1][1:-1], seen)
            if inner is None:
                return None
            attrs.update(inner)
        elif kind == "name" and value == "profile":
            rest = tokens[i + 1:i + 6]
            if len(rest) < 2 or rest[0] != ("operator", ".") or rest[1][0] != "name":
                return None
            attr = rest[1][1]
            if attr == "name":
                tail = [t for t in rest[2:]]
                plain = tail[:1] == [("variable_end", "}}")]
                ini = tail[:3] == [("operator", "|"), ("name", "ini"), ("variable_end", "}}")]
                if not (plain or ini):
                    return None
            attrs.add(attr)
    return tuple(sorted(attrs))


def render(template: str, **context: Any) -> str:
    """``templating.render``, through the cache when it is enabled."""
    if not ENABLED:
        return templating.render(template, **context)
    profile = context.get("profile")
    uses = profile_uses(template)
    recording = type(profile) is _Recording
    if recording and uses is not None:
        profile = profile._sanctioned()
    if uses is None or (uses and profile is None):
        stats["uncached"] += 1
        return templating.render(template, **context)
    rest = sorted((k, v) for k, v in context.items() if k != "profile")
    key_text = repr(rest) + "\0" + repr([(a, getattr(profile, a)) for a in uses if a != "name"])
    if " at 0x" in key_text or _marked(key_text):
        stats["uncached"] += 1
        return templating.render(template, **context)
    key = (template, key_text)
    text = _texts.get(key)
    if text is None:
        stats["misses"] += 1
        if uses:
            stand_in = types.SimpleNamespace(**{a: getattr(profile, a) for a in uses})
            if "name" in uses:
                stand_in.name = SENTINEL
            context = {**context, "profile": stand_in}
        text = templating.render(template, **context)
        if len(_texts) >= MAX_ENTRIES:
            _texts.clear()
        _texts[key] = text
    else:
        stats["hits"] += 1
    return text.replace(SENTINEL, profile.name) if "name" in uses else text


# ------------------------------------------------------------------- renderer level
MAX_PLANS = 4096
_plans: dict[tuple, list | None] = {}
_attrs: dict[Any, frozenset | None] = {}     # renderer -> attributes read so far; None: uncacheable
_reprs: dict[int, tuple[Any, str]] = {}


class _Sanctioned:
    """The profile as ``render`` sees it during a recorded run: ``name`` is the
    sentinel (kept in the text), every other attribute is read through the recording."""
    __slots__ = ("_rec",)

    def __init__(self, rec):
        self._rec = rec

    def __getattr__(self, attr):
        return SENTINEL if attr == "name" else getattr(self._rec, attr)


class _Recording:
    __slots__ = ("_profile", "_read")

    def __init__(self, profile):
        self._profile, self._read = profile, set()

    def __getattr__(self, attr):
        self._read.add(attr)
        return getattr(self._profile, attr)

    def _sanctioned(self):
        return _Sanctioned(self)


class _PlanRecorder:
    __slots__ = ("ops",)

    def __init__(self):
        self.ops = []

    def add(self, entry) -> None:
        self.ops.append((True, entry))

    def note(self, text: str) -> None:
        self.ops.append((False, text))


def _key_part(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:
        return (kind, value)
    hit = _reprs.get(id(value))
    if hit is None or hit[0] is not value:
        if len(_reprs) >= MAX_ENTRIES:
            _reprs.clear()
        hit = _reprs[id(value)] = (value, repr(value))
    return hit[1]


def _marked(text: str) -> bool:
    """True when ``text`` (a repr) may hold the sentinel: repr escapes private-use
    characters, so both the character and its escape count."""
    return "\ue000" in text or "\\ue000" in text


def _holds(value: Any) -> bool:
    if type(value) is str:
        return SENTINEL in value
    if type(value) is tuple:
        return any(_holds(v) for v in value)
    return False


def _subst(value: Any, name: str) -> Any:
    if type(value) is str:
        return value.replace(SENTINEL, name)
    if type(value) is tuple:
        return tuple(_subst(v, name) for v in value)
    return value


ORIGIN = "_origin"   # key in a replayed entry's __dict__: the recorded entry it was made from


def _replayable(entry) -> tuple | None:
    """None when ``entry`` holds no sentinel (it is shared as it is), else (class, fields,
    marked fields, plain). Either way the recorded entry gets ``ORIGIN`` (see build_plan)."""
    import dataclasses

    values = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    marked = tuple(k for k, v in values.items() if _holds(v))
    if hasattr(entry, "__dict__") and set(entry.__dict__) == set(values):
        entry.__dict__[ORIGIN] = entry
    if not marked:
        return None
    cls = type(entry)
    # plain dataclasses (no __post_init__, no __slots__: Plan entries) are rebuilt by
    # filling a copy of the recorded instance's __dict__, several times faster than
    # the frozen dataclass's __init__ and the same object (same fields, same values)
    plain = not hasattr(cls, "__post_init__") and ORIGIN in entry.__dict__
    if plain:
        values[ORIGIN] = entry
    return cls, values, marked, plain


_new = object.__new__
# A renderer part that misses on (nearly) every host (it reads the host's own bridges or
# uplinks) gains nothing from recording and replaying: after PROBE misses with fewer
# than one hit in four, it runs plainly, with the template cache off too (_DIRECT). The
# output is the uncached output by construction; only the time differs.
PROBE = 64
_DIRECT = frozenset({"\0direct"})
_tally: dict[Any, list[int]] = {}   # renderer -> [hits, misses]
_names: dict[frozenset, tuple] = {}  # attribute set -> its names, sorted


def build_plan(profile, renderers) -> Any:
    """``renderers.build_plan`` with each renderer's entries cached (see the docstring)."""
    from ..plan_model import Plan

    global ENABLED
    plan = Plan(profile=profile.name, systemd=profile.systemd)
    name = profile.name
    for renderer in renderers:
        attrs = _attrs.get(renderer, frozenset())
        if attrs is None:
            renderer(profile, plan)
            continue
        if attrs is _DIRECT:
            ENABLED = False   # the plain render, templates included (the reference output)
            try:
                renderer(profile, plan)
            finally:
                ENABLED = True
            continue
        names = _names.get(attrs)
        if names is None:
            names = _names[attrs] = tuple(sorted(attrs))
        parts = tuple([_key_part(getattr(profile, a)) for a in names])
        key = (renderer, names, parts)
        ops = _plans.get(key)
        tally = _tally.get(renderer)
        if tally is None:
            tally = _tally[renderer] = [0, 0]
        if ops is None:
            tally[1] += 1
            if tally[1] >= PROBE and tally[0] * 4 < tally[1]:
                _attrs[renderer] = _DIRECT   # each host's own: recording costs more than it saves
        else:
            tally[0] += 1
        if ops is None:
            if _marked(repr(parts)):
                renderer(profile, plan)
                continue
            rec, recorder = _Recording(profile), _PlanRecorder()
            try:
                renderer(rec, recorder)
            except Exception:
                _attrs[renderer] = None   # it needs more than add/note, or failed: uncached (it raises again below)
                renderer(profile, plan)
                continue
            grown = attrs | rec._read
            if grown != attrs:
                _attrs[renderer] = grown
                names = tuple(sorted(grown))
                parts = tuple(_key_part(getattr(profile, a)) for a in names)
                key = (renderer, names, parts)
                if _marked(repr(parts)):
                    renderer(profile, plan)
                    continue
            ops = [(is_add, value, _replayable(value) if is_add else SENTINEL in value) for is_add, value in recorder.ops]
            if len(_plans) >= MAX_PLANS:
                _plans.clear()
            _plans[key] = ops
        entries = []
        add = entries.append
        for is_add, value, how in ops:
            if is_add:
                if how is not None:
                    cls, values, marked, plain = how
                    if plain:
                        value = _new(cls)
                        fields = value.__dict__
                        fields.update(values)
                        for k in marked:
                            v = values[k]
                            fields[k] = v.replace(SENTINEL, name) if type(v) is str else _subst(v, name)
                    else:
                        value = cls(**{**values, **{k: _subst(values[k], name) for k in marked}})
                add(value)
            else:
                plan.note(value.replace(SENTINEL, name) if how else value)
        plan.extend(entries)
    return plan.sorted()
