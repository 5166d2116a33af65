"""``--format plan``: the Plan itself as JSON, for other tools to consume.

The document is ``Plan.to_dict()`` (the same keys ``netharden explain --json`` prints,
plus every file's ``content``) with ``"apiVersion": "netharden/v2"`` and ``"kind":
"Plan"`` in front, described by ``schemas/plan.schema.json`` (JSON Schema 2020-12, closed
objects). Every object is closed (``additionalProperties: false``), so a ``netharden/v2``
document has exactly the v2 keys: adding, removing or renaming a key, or changing what
one means, changes ``apiVersion``. Consumers check ``apiVersion`` and ``kind`` first.
(The profile's own ``apiVersion`` is a separate contract and stays ``netharden/v1``.)

v2 added what appliers used to work out from the rendered text: each unit's
``wanted_by`` (its ``[Install]`` section, hence the links ``systemctl enable`` makes),
each action's ``triggers`` (the paths whose change makes it necessary), ``unit``,
``ensure_started``, ``allow`` and ``sysctls`` (the keys and values a sysctl action loads).

Decisions:

- ``content`` is the file's text as a JSON string (UTF-8, non-ASCII characters as they
  are; JSON escapes quotes, backslashes and control characters such as CR and tab). A
  Plan's contents are text (``File.content`` is ``str``; the tree writes it as UTF-8), so
  no base64 is needed and the contents stay readable and greppable.
- ``mode`` is an octal string of four digits (``"0644"``, ``"0755"``), as ``to_dict``
  writes it and as chmod, Ansible and Ignition's docs show modes: JSON has no octal
  literals, and a decimal 420 is easily misread.
- Lists are in the Plan's stable order (files and links by path, units by name, actions
  by phase then id, the order appliers follow); keys are sorted; two-space indentation
  and one final newline. The same Plan gives the same bytes.

``loads()`` is the reverse for Python consumers: it validates a document against the
schema and rebuilds the Plan (equal to ``plan.sorted()`` of the one rendered).
"""

from __future__ import annotations

import json
from functools import lru_cache

from ..plan_model import Action, File, Link, Plan, Unit
from ..problems import UsageError

KIND = "stream"
API_VERSION = "netharden/v2"
SCHEMA_NAME = "plan.schema.json"


def document(plan: Plan) -> dict:
    return {"apiVersion": API_VERSION, "kind": "Plan", **plan.to_dict()}


def render(plan: Plan) -> bytes:
    text = json.dumps(document(plan), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


@lru_cache(maxsize=1)
def schema() -> dict:
    from ..resources import read_text

    return json.loads(read_text("schemas", SCHEMA_NAME))


def problems(doc: object) -> list[str]:
    """Schema violations of ``doc``, as ``$.path: message`` lines (empty: valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    return [f"{err.json_path}: {err.message}" for err in sorted(validator.iter_errors(doc), key=lambda e: e.json_path)]


def loads(data: bytes | str) -> Plan:
    """The Plan in a ``--format plan`` document; ``UsageError`` when it is not one."""
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise UsageError(f"not a plan document: {err}") from None
    found = problems(doc)
    if found:
        raise UsageError("not a valid plan document:\n  " + "\n  ".join(found))
    return Plan(
        doc["profile"],
        doc["systemd"],
        files=[File(f["path"], f["content"], int(f["mode"], 8), tuple(f["guards"]), f["why"]) for f in doc["files"]],
        links=[Link(x["path"], x["target"], tuple(x["guards"]), x["why"]) for x in doc["links"]],
        units=[
            Unit(u["name"], u["enabled"], u["masked"], tuple(u["guards"]), u["why"], tuple(u["wanted_by"]))
            for u in doc["units"]
        ],
        actions=[_action(a) for a in doc["actions"]],
        notes=list(doc["notes"]),
    )


def _action(a: dict) -> Action:
    return Action(
        a["id"],
        tuple(a["argv"]),
        a["why"],
        a["phase"],
        a["disruptive"],
        triggers=tuple(a["triggers"]),
        unit=a["unit"],
        ensure_started=a["ensure_started"],
        allow=a["allow"],
        sysctls=tuple((s["key"], s["value"]) for s in a["sysctls"]),
    )
