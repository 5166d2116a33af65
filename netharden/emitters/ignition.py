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

The document is assembled from the JSON text of each storage file, link and unit:
``json.dumps`` is compositional (a list is ``[`` + its items' texts joined by ``,`` +
``]``, a mapping its sorted members the same way), so the assembly is byte for byte
``json.dumps(config(plan))`` (tests/test_ignition.py checks it on every example). Each
entry's text is memoized on the entry (``File`` and ``SystemdUnit`` are frozen, so equal
entries share one text): the files a fleet's hosts share are the same objects, encoded
once per process, and a host's own files (bridges, uplinks) are encoded as they are.

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

import json
from functools import lru_cache

from ..plan_model import File, Link, Plan
from ..targets import UNIT_DIR
from . import _dataurl
from ._systemd import SystemdUnit, split_units

KIND = "stream"
OPTIONS = {"ignition_version": (("3.3.0", "3.4.0"), "3.3.0")}


def _dumps(value: object) -> str:
    """Compact, sorted JSON with UTF-8 kept: the form of the whole document and of each part."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def layout(plan: Plan) -> tuple[list[File], list[Link], list[SystemdUnit]]:
    """(storage files, storage links, systemd units), each in a stable order."""
    plan = plan.sorted()
    units, files = split_units(plan)
    out_units = [u for u in units if u.contents is not None or u.dropins or u.enabled is not None or u.masked]
    masks = {f"{UNIT_DIR}/{u.name}" for u in out_units if u.masked}
    links = [link for link in plan.links if not (link.path in masks and link.target == "/dev/null")]
    return files, links, out_units


def config(plan: Plan, ignition_version: str = "3.3.0") -> dict:
    """The config as data (``render`` writes exactly its JSON)."""
    files, links, units = layout(plan)
    storage: dict = {}
    if files:
        storage["files"] = [_file(f) for f in files]
    if links:
        storage["links"] = [_link(x) for x in links]
    out: dict = {"ignition": {"version": ignition_version}}
    if storage:
        out["storage"] = storage
    if units:
        out["systemd"] = {"units": [_unit(u) for u in units]}
    return out


def _file(f: File) -> dict:
    return {
        "path": f.path,
        "mode": f.mode,
        "overwrite": True,
        "contents": {"source": _dataurl.encode(f.content.encode("utf-8"))},
    }


def _link(x: Link) -> dict:
    return {"path": x.path, "target": x.target, "hard": False, "overwrite": True}


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


@lru_cache(maxsize=4096)
def _json(entry: File | Link | SystemdUnit) -> str:
    if isinstance(entry, File):
        return _dumps(_file(entry))
    return _dumps(_link(entry) if isinstance(entry, Link) else _unit(entry))


def render(plan: Plan, ignition_version: str = "3.3.0") -> bytes:
    files, links, units = layout(plan)
    top = ['"ignition":' + _dumps({"version": ignition_version})]
    storage = []
    if files:
        storage.append('"files":[' + ",".join(map(_json, files)) + "]")
    if links:
        storage.append('"links":[' + ",".join(map(_json, links)) + "]")
    if storage:
        top.append('"storage":{' + ",".join(storage) + "}")
    if units:
        top.append('"systemd":{"units":[' + ",".join(map(_json, units)) + "]}")
    return ("{" + ",".join(top) + "}\n").encode("utf-8")
