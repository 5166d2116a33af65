"""Validation of a fleet's host profiles, with shared subtrees checked once.

A host profile is valid when ``validate.validate`` finds no problem. That is the
profile schema plus the semantic rules. For a fleet, ``valid(data)`` answers the
same question faster, and only when it says "not valid" does ``validate.validate``
run, on a Document with positions, to produce the exact messages:

- The profile schema's top level has only ``type``, ``required``,
  ``additionalProperties: false`` and ``properties`` (checked when the cache is first
  used; otherwise every host is validated in full). So a profile is schema-valid
  exactly when it is a mapping with the required keys, no unknown key, and each
  top-level value is valid under its own property schema. Each value's verdict is
  cached by content: by object identity for the subtrees a host inherits unchanged
  from ``defaults`` (``merge`` shares them; the cache holds a reference so an id is
  never reused), else by its canonical JSON (``sort_keys``; JSON tells ``1``,
  ``1.0``, ``true`` and ``"1"`` apart). A value is checked by validating a minimal
  valid profile with that one key replaced (the values a host does not share are checked
  together first: valid together, each is valid), by the precompiled checker
  (``validate._precompiled_check``: fastjsonschema's code, no jsonschema, no
  canonical JSON needed for a verdict that costs less than the JSON would) when it
  matches the schema and the value holds no integral float, else by jsonschema
  (with the JSON cache).
- The semantic rules run on every host (they relate keys to each other: bridges,
  subnets, daemons): ``validate._semantic_problems``.
"""

from __future__ import annotations

import json
from typing import Any

from ..yamlload import Document

_BASE = {"apiVersion": "netharden/v1", "kind": "HostProfile", "metadata": {"name": "fleet-probe"}}
_by_id: dict[int, tuple[Any, bool]] = {}
_by_json: dict[tuple[str, str], bool] = {}
_state: dict = {}
MAX_ENTRIES = 50_000


def _setup():
    if "is_valid" not in _state:
        from .. import validate

        fast = validate._precompiled_check()
        is_valid = fast if fast is not None else validate._validator().is_valid
        schema = json.loads(validate.schema_text())
        simple = (
            set(schema) - {"$schema", "$id", "title", "description", "$defs"}
            <= {"type", "required", "additionalProperties", "properties"}
            and schema.get("additionalProperties") is False
            and schema.get("type") == "object"
            and is_valid(_BASE)
        )
        verdict = getattr(fast, "verdict", None)  # fastjsonschema's, or None where jsonschema must decide
        _state.update(
            is_valid=is_valid,
            fast=verdict is not None,
            verdict=verdict,
            simple=simple,
            props=set(schema.get("properties", {})),
            required=tuple(schema.get("required", ())),
        )
    return _state


def _remember(value: Any, ok: bool) -> None:
    if len(_by_id) >= MAX_ENTRIES:
        _by_id.clear()
    _by_id[id(value)] = (value, ok)  # the entry holds the value: its id is not reused while cached


def _value_ok(key: str, value: Any) -> bool:
    hit = _by_id.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    ok = _state["verdict"]({**_BASE, key: value}) if _state["fast"] else None
    if ok is None:
        marker = (key, json.dumps(value, sort_keys=True, allow_nan=True))
        ok = _by_json.get(marker)
        if ok is None:
            ok = _state["is_valid"]({**_BASE, key: value})
            if len(_by_json) >= MAX_ENTRIES:
                _by_json.clear()
            _by_json[marker] = ok
    _remember(value, ok)
    return ok


def schema_ok(data: Any) -> bool:
    state = _setup()
    if not state["simple"]:
        return state["is_valid"](data)
    if not isinstance(data, dict) or not set(data) <= state["props"] or any(k not in data for k in state["required"]):
        return False
    misses = {}
    for key, value in data.items():
        hit = _by_id.get(id(value))
        if hit is None or hit[0] is not value:
            misses[key] = value
        elif not hit[1]:
            return False
    if len(misses) > 1 and state["fast"] and state["verdict"]({**_BASE, **misses}):
        for value in misses.values():  # valid together: each of them is valid
            _remember(value, True)
        return True
    return all(_value_ok(k, v) for k, v in misses.items())


def valid(data: Any, file: str = "<fleet>") -> bool:
    """True when ``validate.validate`` would find no problem in ``data``."""
    from .. import validate

    if not schema_ok(data):
        return False
    return not any(True for _ in validate._semantic_problems(Document(file=file, data=data, positions={})))


def clear() -> None:
    _by_id.clear()
    _by_json.clear()
