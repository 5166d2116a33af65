"""What the role's action plugin worked out from the rendered text before the Plan carried
its own structure (Plan document netharden/v1 and the plugin up to then): the [Install]
links parsed from each unit file, each action's kind and triggers guessed from its argv
and from the plan paths its unit text names, the sysctls parsed from the sysctl.d file.

The plugin now reads the Plan's fields (``Unit.wanted_by``, ``Action.triggers``, ``unit``,
``ensure_started``, ``allow``, ``sysctls``); tests/test_role.py checks that, for every
example and the awkward profile, they give exactly what this text-derived oracle gives,
so the fields and the rendered text cannot drift apart unnoticed.
"""
from __future__ import annotations

import re

UNIT_DIR = "/etc/systemd/system"
NETWORK_DIR = "/etc/systemd/network/"
NETWORKD_CONF = ("/etc/systemd/networkd.conf", "/etc/systemd/networkd.conf.d/")
# Configuration a unit's daemon reads at start that its unit file does not name.
UNIT_CONFIG = {
    "systemd-networkd.service": NETWORKD_CONF,
    "docker.service": ("/etc/docker/daemon.json",),
}


def _lines(content: str):
    """(section, key, value) of each assignment of systemd INI text."""
    section = None
    for raw in content.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            key, _, value = line.partition("=")
            yield section, key.strip(), value.strip()


def install_links(name: str, content: str) -> list[dict]:
    """The symlinks `systemctl enable` creates for a unit file in /etc/systemd/system
    ([Install] WantedBy=, RequiredBy=, Alias=)."""
    dirs = {"WantedBy": ".wants/", "RequiredBy": ".requires/"}
    links = []
    for section, key, value in _lines(content):
        if section != "Install" or key not in (*dirs, "Alias"):
            continue
        for word in value.split():
            path = f"{UNIT_DIR}/{word}" + (f"{dirs[key]}{name}" if key in dirs else "")
            links.append({"path": path, "target": f"{UNIT_DIR}/{name}"})
    return links


def _value(content: str, section: str, key: str) -> str | None:
    found = [v for s, k, v in _lines(content) if s == section and k == key]
    return found[-1] if found else None


def _oneshot(content: str) -> bool:
    kind = (_value(content, "Service", "Type") or "simple").lower()
    remain = (_value(content, "Service", "RemainAfterExit") or "no").lower()
    return kind == "oneshot" and remain not in ("yes", "true", "on", "1")


def _unit_paths(unit: str, files: dict[str, str]) -> list[str]:
    """Trigger entries of a unit: its unit file, its drop-ins, the plan files its unit text
    names (helper scripts, --config-file) and the configuration its daemon reads at start."""
    entries = [f"{UNIT_DIR}/{unit}", f"{UNIT_DIR}/{unit}.d/"]
    for text in [files.get(f"{UNIT_DIR}/{unit}", "")] + [
            c for p, c in files.items() if p.startswith(f"{UNIT_DIR}/{unit}.d/")]:
        entries += [p for p in files
                    if not p.startswith(UNIT_DIR + "/") and re.search(re.escape(p) + r"(?![\w.@-])", text)]
    return entries + list(UNIT_CONFIG.get(unit, ()))


def regex(entries) -> str:
    parts = sorted({re.escape(e) if e.endswith("/") else re.escape(e) + "$" for e in entries})
    return "^(?:" + "|".join(parts) + ")" if parts else "(?!)"


def _entries(argv: list[str], files: dict[str, str], has_reload: bool,
             generates: bool = False) -> tuple[list[str], str | None, str]:
    """(trigger entries, unit, kind) of one action, from its argv and the unit text."""
    if argv == ["systemctl", "daemon-reload"]:
        return [UNIT_DIR + "/"], None, "run"
    if argv[:1] == ["sysctl"]:
        return [a for a in argv[1:] if a.startswith("/")] or ["/etc/sysctl.d/", "/etc/sysctl.conf"], None, "run"
    if argv == ["netplan", "generate"]:  # netplan's generator reads /etc/netplan (and /run, /lib)
        return [p for p in files if p.startswith("/etc/netplan/")], None, "run"
    if argv == ["networkctl", "reload"]:  # ... and networkd reads what it generated
        netplan = [p for p in files if p.startswith("/etc/netplan/")] if generates else []
        return [NETWORK_DIR] + netplan, None, "run"
    if len(argv) == 3 and argv[0] == "systemctl" and argv[1] in (
            "start", "restart", "try-restart", "reload-or-restart", "try-reload-or-restart"):
        unit = argv[2]
        entries = _unit_paths(unit, files)
        if unit == "systemd-networkd.service" and (argv[1] == "start" or not has_reload):
            entries.append(NETWORK_DIR)  # a start reads it; systemd < 244: the restart is the reload
            # ... and a restart that is the reload reads what netplan generated
            entries += [p for p in files if p.startswith("/etc/netplan/")] if generates and not has_reload and argv[1] != "start" else []
        content = files.get(f"{UNIT_DIR}/{unit}")
        start = argv[1] == "start" and not (content is not None and _oneshot(content))
        return entries, unit, "start" if start else "run"
    return ["/"], None, "run"  # an action this role does not know: run it whenever anything changed


def classify(actions: list[dict], files: dict[str, str]) -> list[dict]:
    has_reload = any(list(a["argv"]) == ["networkctl", "reload"] for a in actions)
    generates = any(list(a["argv"]) == ["netplan", "generate"] for a in actions)
    out = []
    for action in actions:
        argv = list(action["argv"])
        entries, unit, kind = _entries(argv, files, has_reload, generates)
        allow = None
        if action["disruptive"]:
            kind = "restart"
            allow = "networkd" if "systemd-networkd.service" in argv else "docker"
        out.append({"id": action["id"], "argv": argv, "why": action["why"], "phase": action["phase"],
                    "disruptive": action["disruptive"], "kind": kind, "unit": unit, "allow": allow,
                    "trigger_re": regex(entries)})
    return out


def _proc(key: str) -> str:
    first = re.search(r"[./]", key)
    if first and first.group() == ".":
        key = key.translate(str.maketrans("./", "/."))
    return "/proc/sys/" + key.strip("/")


def sysctls(actions: list[dict], files: dict[str, str]) -> list[dict]:
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
                out.append({"key": key, "proc": _proc(key), "value": " ".join(value.split()), "action": action["id"]})
    return out


def derive(plan) -> dict:
    """The plugin's enablement, sysctls and actions as they were derived from the Plan's text."""
    data = plan.to_dict()
    files = {f["path"]: f["content"] for f in data["files"]}
    enablement = [link for unit in data["units"] if unit["enabled"] and f"{UNIT_DIR}/{unit['name']}" in files
                  for link in install_links(unit["name"], files[f"{UNIT_DIR}/{unit['name']}"])]
    return {"enablement": sorted(enablement, key=lambda x: x["path"]),
            "sysctls": sysctls(data["actions"], files),
            "actions": classify(data["actions"], files)}
