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
# here, before any task touches the host.
from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

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
notes:
  - Exactly one of I(profile) and I(profile_file) is required.
  - Needs the netharden Python library importable by the controller's Python.
author: netharden contributors
"""

UNIT_DIR = "/etc/systemd/system"
NETWORK_DIR = "/etc/systemd/network/"
NETWORKD_CONF = ("/etc/systemd/networkd.conf", "/etc/systemd/networkd.conf.d/")
# Configuration a unit's daemon reads at start that its unit file does not name.
UNIT_CONFIG = {
    "systemd-networkd.service": NETWORKD_CONF,
    "docker.service": ("/etc/docker/daemon.json",),
}
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


def _unit_install_links(name: str, content: str) -> list[dict]:
    """The symlinks `systemctl enable` creates for a unit file in /etc/systemd/system
    ([Install] WantedBy=, RequiredBy=, Alias=)."""
    links, section = [], None
    for raw in content.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Install" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, words = key.strip(), value.split()
        for word in words:
            if key == "WantedBy":
                links.append({"path": f"{UNIT_DIR}/{word}.wants/{name}", "target": f"{UNIT_DIR}/{name}"})
            elif key == "RequiredBy":
                links.append({"path": f"{UNIT_DIR}/{word}.requires/{name}", "target": f"{UNIT_DIR}/{name}"})
            elif key == "Alias":
                links.append({"path": f"{UNIT_DIR}/{word}", "target": f"{UNIT_DIR}/{name}"})
    return links


def _unit_section_value(content: str, section: str, key: str) -> str | None:
    current, value = None, None
    for raw in content.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == section and line.partition("=")[0].strip() == key:
            value = line.partition("=")[2].strip()
    return value


def _unit_paths(unit: str, files: dict[str, str]) -> list[str]:
    """Trigger entries of a unit: its unit file, its drop-ins, the plan files its unit text names
    (helper scripts, --config-file) and the configuration its daemon reads at start."""
    entries = [f"{UNIT_DIR}/{unit}", f"{UNIT_DIR}/{unit}.d/"]
    for text in [files.get(f"{UNIT_DIR}/{unit}", "")] + [
            c for p, c in files.items() if p.startswith(f"{UNIT_DIR}/{unit}.d/")]:
        entries += [p for p in files
                    if not p.startswith(UNIT_DIR + "/") and re.search(re.escape(p) + r"(?![\w.@-])", text)]
    entries += list(UNIT_CONFIG.get(unit, ()))
    return entries


def _regex(entries) -> str:
    """One anchored regex for trigger entries: 'dir/' entries match below the directory,
    other entries match the path exactly."""
    parts = sorted({re.escape(e) if e.endswith("/") else re.escape(e) + "$" for e in entries})
    return "^(?:" + "|".join(parts) + ")" if parts else "(?!)"


def _oneshot(content: str) -> bool:
    kind = (_unit_section_value(content, "Service", "Type") or "simple").lower()
    remain = (_unit_section_value(content, "Service", "RemainAfterExit") or "no").lower()
    return kind == "oneshot" and remain not in ("yes", "true", "on", "1")


def classify(actions: list[dict], files: dict[str, str]) -> list[dict]:
    """Give every Plan action how the role runs it and which changed paths make it necessary.

    kind: ``run`` - run argv when a trigger path changed (or the action is still pending);
    ``start`` - ensure the unit is started (systemd_service state=started, idempotent);
    ``restart`` - disruptive: run only when allowed (``allow``), else report it pending.
    """
    has_reload = any(list(a["argv"]) == ["networkctl", "reload"] for a in actions)
    out = []
    for action in actions:
        argv = list(action["argv"])
        unit, entries, kind = None, None, "run"
        if argv == ["systemctl", "daemon-reload"]:
            entries = [UNIT_DIR + "/"]
        elif argv[:1] == ["sysctl"]:
            entries = [a for a in argv[1:] if a.startswith("/")] or ["/etc/sysctl.d/", "/etc/sysctl.conf"]
        elif argv == ["networkctl", "reload"]:
            entries = [NETWORK_DIR]
        elif len(argv) == 3 and argv[0] == "systemctl" and argv[1] in (
                "start", "restart", "try-restart", "reload-or-restart", "try-reload-or-restart"):
            unit = argv[2]
            entries = _unit_paths(unit, files)
            if unit == "systemd-networkd.service" and not has_reload:
                entries.append(NETWORK_DIR)  # systemd < 244: the restart is the reload
            if argv[1] == "start":
                content = files.get(f"{UNIT_DIR}/{unit}")
                kind = "run" if content is not None and _oneshot(content) else "start"
        if entries is None:
            entries = ["/"]  # an action this role does not know: run it whenever anything changed
        allow = None
        if action["disruptive"]:
            kind = "restart"
            allow = "networkd" if "systemd-networkd.service" in argv else "docker"
        out.append({**action, "argv": argv, "kind": kind, "unit": unit, "allow": allow,
                    "trigger_re": _regex(entries)})
    return out


def _sysctl_proc(key: str) -> str:
    """/proc/sys path of a sysctl.d key (sysctl.d(5): when the first separator is '/', the key
    is a path; when it is '.', dots and slashes swap)."""
    key = key.lstrip("-")
    first = re.search(r"[./]", key)
    if first and first.group() == ".":
        key = key.translate(str.maketrans("./", "/."))
    return "/proc/sys/" + key.strip("/")


def sysctls(actions: list[dict], files: dict[str, str]) -> list[dict]:
    """The values the Plan's sysctl actions set: [{key, proc, value, action}], value with its
    whitespace runs folded to one space (the kernel prints tabs between fields). The role
    runs an action again when a live value differs (a value changed since, by hand or by a
    package's sysctl.d file)."""
    out = []
    for action in actions:
        argv = list(action["argv"])
        if argv[:1] != ["sysctl"]:
            continue
        for path in (a for a in argv[1:] if a in files):
            for raw in files[path].splitlines():
                line = raw.strip()
                if not line or line[0] in "#;" or "=" not in line:
                    continue
                key, _, value = line.partition("=")
                key = key.strip()
                if not key or any(c in key for c in "*?[") or key.startswith("-"):
                    continue  # globs and optional keys: nothing definite to compare
                out.append({"key": key, "proc": _sysctl_proc(key), "value": " ".join(value.split()),
                            "action": action["id"]})
    return out


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("profile", "profile_file"))

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

        data = plan.to_dict()
        files = {f["path"]: f["content"] for f in data["files"]}
        enablement = []
        for unit in data["units"]:
            if unit["enabled"] and f"{UNIT_DIR}/{unit['name']}" in files:
                enablement += _unit_install_links(unit["name"], files[f"{UNIT_DIR}/{unit['name']}"])
        paths = sorted(plan.paths())
        result.update(
            changed=False,
            profile=data["profile"],
            systemd=data["systemd"],
            netharden_version=getattr(netharden, "__version__", "unknown"),
            files=[{"path": f["path"], "content": f["content"], "mode": f["mode"]} for f in data["files"]],
            links=[{"path": x["path"], "target": x["target"]} for x in data["links"]],
            units=[u["name"] for u in data["units"] if u["enabled"]],
            masked_units=[u["name"] for u in data["units"] if u["masked"]],
            enablement=sorted(enablement, key=lambda x: x["path"]),
            sysctls=sysctls(data["actions"], files),
            actions=classify(data["actions"], files),
            notes=data["notes"],
            paths=paths,
            manifest_format=MANIFEST_FORMAT,
        )
        return result
