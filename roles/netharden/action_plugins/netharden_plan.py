# netharden_plan: compute the netharden Plan of a host on the controller.
#
# This file is the one implementation; the collection ships the same file at
# plugins/action/netharden_plan.py (a symlink): a standalone role finds action
# plugins in its own action_plugins/, a collection-hosted role only in the
# collection's plugins/action/ (ansible-core does not add a collection role's
# plugin directories to the search path).
#
# The Plan comes from the netharden library (netharden.load + netharden.plan), never
# from YAML logic, so the role writes byte-for-byte what `netharden render --format
# tree` writes. The plugin never contacts the managed host: a bad profile fails
# here, before any task touches the host. What the tasks need beyond the files comes
# from the Plan's own fields (the units' WantedBy=, each action's triggers, unit and
# allow class, the sysctl action's keys and values): nothing here reads rendered text.
from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

if TYPE_CHECKING:  # netharden is imported in run(), which reports it missing
    from netharden.plan_model import Action, Plan, Unit

DOCUMENTATION = r"""
---
module: netharden_plan
short_description: Compute the netharden Plan of a host on the controller
description:
  - Validates a netharden host profile with the netharden library on the controller and returns the Plan
    (files, masks, units, post-apply actions) as data for the role's tasks.
  - Runs only on the controller; never contacts the managed host.
  - A bad profile fails with the same C(FILE:LINE:COL: error: message (at $.path)) lines as the netharden CLI.
options:
  profile:
    description: The profile itself, as a mapping (same schema as a profile file).
    type: dict
  profile_file:
    description: Path of a profile file (YAML or JSON) on the controller; relative paths are searched like
      ansible.builtin.copy's C(src) (the role's files/, then the playbook's directory).
    type: path
  host:
    description:
      - What the role gathered on the host (tasks/preflight.yml) for the preflight, C(files) (path to
        base64 content, from ansible.builtin.slurp), C(programs) (paths that exist), C(interfaces)
        (setup's network facts of each interface) and C(services) (service_facts).
      - With it the result has C(preflight), decided by netharden.doctor.preflight (the doctor's own
        reading of ifupdown and NetworkManager), and the task fails when another manager configures
        a NIC one of the profile's uplinks matches.
    type: dict
  takeover:
    description: With I(host), release the NICs ifupdown configures (netharden_takeover).
    type: bool
    default: false
notes:
  - Exactly one of I(profile) and I(profile_file) is required.
  - Needs the netharden Python library importable by the controller's Python.
author: netharden contributors
"""

MANIFEST_FORMAT = "netharden-manifest/v1"


def _plain(value):
    """Ansible's tagged/unsafe containers and strings as plain JSON-like Python data."""
    if isinstance(value, Mapping):
        return {to_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return to_text(value)
    return value  # anything else: netharden.load reports it as not plain data


def _origin(value):
    """(path, line, col) where Ansible loaded ``value`` from (ansible-core >= 2.19), or None."""
    try:
        from ansible._internal._datatag._tags import Origin  # pylint: disable=import-outside-toplevel
    except ImportError:  # older ansible-core: no positions
        return None
    try:
        origin = Origin.get_tag(value)
    except Exception:  # pylint: disable=broad-except
        return None
    if origin is None or not origin.path or not origin.line_num:
        return None
    return origin.path, origin.line_num, origin.col_num or 1


def _positions(value, path=(), out=None):
    """JSON path tuple -> (file, line, col) for every node of an Ansible variable that has an origin."""
    out = {} if out is None else out
    where = _origin(value)
    if where is not None:
        out[path] = where
    if isinstance(value, Mapping):
        for key, item in value.items():
            _positions(item, path + (to_text(key),), out)
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for index, item in enumerate(value):
            _positions(item, path + (index,), out)
    return out


def _load_mapping(netharden, profile):
    """netharden.load for a mapping; problems name the variable's own file, line and column when
    Ansible recorded where it came from (vars files, inventory, group_vars)."""
    data = _plain(profile)
    where = _positions(profile)
    files = {f for f, _, _ in where.values()}
    if len(files) == 1:
        try:
            from netharden.yamlload import Document  # pylint: disable=import-outside-toplevel
            finish = netharden._finish  # pylint: disable=protected-access
        except (ImportError, AttributeError):
            pass
        else:
            (file,) = files
            positions = {path: (line, col) for path, (_, line, col) in where.items()}
            return finish(Document(file=file, data=data, positions=positions))
    return netharden.load(data, filename="netharden_profile")


def _regex(entries: Iterable[str]) -> str:
    """One anchored regex for trigger entries: 'dir/' entries match below the directory,
    other entries match the path exactly."""
    parts = sorted({re.escape(e) if e.endswith("/") else re.escape(e) + "$" for e in entries})
    return "^(?:" + "|".join(parts) + ")" if parts else "(?!)"


def _kind(action: Action) -> str:
    """``restart``: disruptive, run only when its ``allow`` class is allowed (else reported
    pending); ``start``: ensure the unit is started (systemd_service state=started,
    idempotent); ``run``: run argv when a trigger path changed (or it is still pending)."""
    if action.disruptive:
        return "restart"
    return "start" if action.ensure_started else "run"


def classify(actions: Iterable[Action]) -> list[dict]:
    """The Plan's actions as the tasks read them: how the role runs each (``kind``, ``unit``,
    ``allow``) and which changed paths make it necessary (``trigger_re``, from its triggers)."""
    return [{"id": a.id, "argv": list(a.argv), "why": a.why, "phase": a.phase, "disruptive": a.disruptive,
             "kind": _kind(a), "unit": a.unit, "allow": a.allow,
             "trigger_re": _regex(a.triggers)} for a in actions]


def _sysctl_proc(key: str) -> str:
    """/proc/sys path of a sysctl.d key (sysctl.d(5): when the first separator is '/', the key
    is a path; when it is '.', dots and slashes swap)."""
    first = re.search(r"[./]", key)
    if first and first.group() == ".":
        key = key.translate(str.maketrans("./", "/."))
    return "/proc/sys/" + key.strip("/")


def sysctls(actions: Iterable[Action]) -> list[dict]:
    """The values the Plan's sysctl actions set: [{key, proc, value, action}], value with its
    whitespace runs folded to one space (the kernel prints tabs between fields). The role
    runs an action again when a live value differs (a value changed since, by hand or by a
    package's sysctl.d file)."""
    return [{"key": key, "proc": _sysctl_proc(key), "value": " ".join(value.split()), "action": a.id}
            for a in actions for key, value in a.sysctls]


def enablement(units: Iterable[Unit]) -> list[dict]:
    """The symlinks `systemctl enable` creates for the enabled units ([Install] WantedBy=), by path."""
    from netharden.plan_model import install_links  # pylint: disable=import-outside-toplevel

    links = [link for unit in units for link in install_links(unit)]
    return [{"path": x.path, "target": x.target} for x in sorted(links, key=lambda x: x.path)]


def plan_result(plan: Plan) -> dict:
    """What the role's tasks read of a Plan (netharden.plan's result)."""
    p = plan.sorted()
    return {
        "profile": p.profile,
        "systemd": p.systemd,
        "files": [{"path": f.path, "content": f.content, "mode": f"{f.mode:04o}"} for f in p.files],
        "links": [{"path": x.path, "target": x.target} for x in p.links],
        "units": [u.name for u in p.units if u.enabled],
        "masked_units": [u.name for u in p.units if u.masked],
        "enablement": enablement(p.units),
        "sysctls": sysctls(p.actions),
        "actions": classify(p.actions),
        "notes": list(p.notes),
        "paths": sorted(p.paths()),
        "manifest_format": MANIFEST_FORMAT,
    }


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("profile", "profile_file", "host", "takeover"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        profile, profile_file = args.get("profile"), args.get("profile_file")
        if (profile is None) == (profile_file is None):
            raise AnsibleActionFail("netharden: set exactly one of netharden_profile (the profile as a mapping) "
                                    "and netharden_profile_file (a profile file on the controller)")
        if profile is not None and not isinstance(profile, Mapping):
            raise AnsibleActionFail("netharden: netharden_profile must be a mapping (the profile itself), "
                                    f"got {type(profile).__name__}")
        try:
            import netharden  # pylint: disable=import-outside-toplevel
        except ImportError as exc:
            raise AnsibleActionFail(
                "netharden: the netharden library is not importable by the controller's Python "
                f"({sys.executable}): install it there (pip install netharden, or pip install -e . in a "
                f"checkout of netharden) - {exc}") from None

        try:
            if profile is not None:
                loaded = _load_mapping(netharden, profile)
            else:
                path = to_text(profile_file)
                try:
                    path = self._find_needle("files", path)
                except Exception:  # pylint: disable=broad-except
                    path = os.path.abspath(path) if not os.path.isabs(path) else path
                loaded = netharden.load(path)
            plan = netharden.plan(loaded)
        except netharden.ProfileError as err:
            lines = [p.format() for p in err.problems]
            n = len(err.problems)
            result.update(failed=True, changed=False, msg="\n".join(lines + [f"{n} problem{'s' if n != 1 else ''} found"]),
                          problems=[p.to_dict() for p in err.problems])
            return result
        except netharden.NetHardenError as err:
            result.update(failed=True, changed=False, msg=f"netharden: {err}")
            return result

        result.update(changed=False, netharden_version=getattr(netharden, "__version__", "unknown"),
                      **plan_result(plan))
        if args.get("host") is not None:
            decision = preflight(plan, args["host"], bool(args.get("takeover", False)))
            result["preflight"] = decision
            if decision["refused"]:
                # only the refusal: the Plan is not what this failure is about
                for key in plan_result(plan):
                    result.pop(key, None)
                result.update(failed=True, msg="\n".join(
                    ["netharden: refusing to write anything on this host: another network manager configures a NIC "
                     "the profile's uplinks match, or another netplan file defeats the profile's"] + decision["refused"]))
        return result


def preflight(plan: Plan, gathered, takeover: bool) -> dict:
    """netharden.doctor.preflight.decide over what tasks/preflight.yml gathered; the deferred
    actions (networkd start/reload/restart) by id."""
    import base64  # pylint: disable=import-outside-toplevel

    from netharden.doctor.preflight import decide  # pylint: disable=import-outside-toplevel

    gathered = _plain(gathered) if isinstance(gathered, Mapping) else {}
    files = {}
    for path, content in (gathered.get("files") or {}).items():
        try:
            files[path] = base64.b64decode(content).decode("utf-8", errors="replace")
        except (ValueError, TypeError):
            continue
    decision = decide(plan, files, list(gathered.get("programs") or []), list(gathered.get("interfaces") or []),
                      dict(gathered.get("services") or {}), takeover).to_dict()
    decision["deferred"] = sorted(a.id for a in plan.actions
                                  if decision["defer_networkd"] and (a.unit == "systemd-networkd.service"
                                                                     or a.argv[:1] == ("networkctl",)))
    return decision
