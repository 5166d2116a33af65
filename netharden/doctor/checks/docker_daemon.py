"""daemon.json files dockerd refuses (or partly ignores).

A daemon.json that dockerd refuses keeps docker.service from starting at the next
restart or reboot - typically long after the file was edited. Checked for
``docker.service`` and every ``docker-*.service`` whose ExecStart= runs dockerd (the file
is the ``--config-file`` of that command line, default /etc/docker/daemon.json), and for
/etc/docker/daemon.json even when no unit is found (an image without the package):

1. It must parse as JSON (reported with the line and column of the error; NaN and
   Infinity, which Go's encoding/json refuses, count as errors) and be an object.
2. Flag and file: dockerd refuses to start when a setting is given both as a flag and in
   the file ("the following directives are specified both as a flag and in the
   configuration file", findConfigurationConflicts() in moby's daemon/config/config.go).
   The rule, as moby applies it: for every flag on the command line, the file key it
   collides with is the flag's option name when its value is a NamedOption (``-H``/
   ``--host`` -> ``hosts``, ``--label`` -> ``labels``, ``--log-opt`` -> ``log-opts``...:
   ``NAMED``), otherwise the flag's own name (``--containerd`` -> ``containerd``) or its
   shorthand; ``runtimes`` is exempt (skipDuplicates: merged). File keys are compared
   after moby's configValuesSet(): the members of a nested object count as top-level keys,
   except for the objects in ``FLAT``. The packaged units pass ``-H fd://`` (Debian's
   docker.io also ``--containerd=/run/containerd/containerd.sock``), so ``hosts`` (and
   ``containerd``) in daemon.json stop dockerd there.
   The effective ExecStart= is systemd's: the unit from the first of /etc, /run,
   /usr/lib, /lib systemd/system, then its docker.service.d/*.conf drop-ins in file name
   order (a name in an earlier directory shadows the same name in a later one); an empty
   ``ExecStart=`` resets the list and the last command counts; ``$VAR`` and ``${VAR}``
   are expanded from Environment= and EnvironmentFile= (Debian's ``$DOCKER_OPTS`` from
   /etc/default/docker). A masked unit is skipped. Unit files are read the way systemd's
   config_parse() reads them (networkd_config.parse_ini: continuation lines, comment lines
   between them, blanks around keys and values); a unit file with an invalid section header
   does not load (skipped), a drop-in with one is ignored (systemd applies its lines before
   the bad header: not modelled).
3. The settings rules netharden's own validation applies to ``docker.daemons[].settings``
   (netharden.validate.daemon_json_problems, the profile's own rules: spellings dockerd refuses,
   bip/bridge, ipv6 without fixed-cidr-v6, ip6tables without experimental, icc without
   iptables, pools, dns...), evaluated with dockerd's own defaults (iptables on). Its
   ``hosts`` rule assumes the packaged ``-H fd://``; here rule 2 decides that from the
   real command line instead. Rules saying dockerd *ignores* a key are reported as
   warnings: dockerd starts, the setting has no effect.

Flag names and which flags take no value are dockerd 20.10's (``dockerd --help`` of
Debian 12's docker.io); tests/test_doctor_file_checks.py starts the real dockerd in a
throwaway namespace on the conflicts reported here and asserts that it refuses each.
Not checked: keys dockerd does not know at all (only the misspellings validation
knows), and values outside the networking keys.
"""

from __future__ import annotations

import json
import os
import re
import shlex

from ...problems import json_path
from ..host import Host
from ..model import Finding
from ..networkd_config import parse_ini

ID = "docker-daemon"
TITLE = "a daemon.json dockerd refuses to start with"
SEVERITY = "error"
INCIDENT = "config"
HINT = (
    "let netharden write daemon.json from docker.daemons[].settings (validated: no 'hosts' for the main "
    "daemon, no flag/file duplicates), or fix the file"
)
NEEDS = "files"

DAEMON_JSON = "/etc/docker/daemon.json"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")

# flags whose value is a NamedOption: the daemon.json key they collide with (dockerd 20.10)
NAMED = {
    "host": "hosts",
    "label": "labels",
    "log-opt": "log-opts",
    "storage-opt": "storage-opts",
    "exec-opt": "exec-opts",
    "authorization-plugin": "authorization-plugins",
    "dns-opt": "dns-opts",
    "insecure-registry": "insecure-registries",
    "registry-mirror": "registry-mirrors",
    "allow-nondistributable-artifacts": "allow-nondistributable-artifacts",
    "cluster-store-opt": "cluster-store-opts",
    "node-generic-resource": "node-generic-resources",
    "default-ulimit": "default-ulimits",
    "add-runtime": "runtimes",
    "default-address-pool": "default-address-pools",
}
SKIP_DUPLICATES = {"runtimes"}
# nested objects configValuesSet() keeps as one key
FLAT = {"cluster-store-opts", "log-opts", "runtimes", "default-ulimits", "features", "builder", "default-network-opts"}
SHORT = {
    "H": "host",
    "D": "debug",
    "l": "log-level",
    "b": "bridge",
    "G": "group",
    "g": "graph",
    "p": "pidfile",
    "s": "storage-driver",
    "v": "version",
    "h": "help",
    "r": "restart",
}
BOOL_FLAGS = {
    "cri-containerd",
    "debug",
    "experimental",
    "help",
    "icc",
    "init",
    "ip-forward",
    "ip-masq",
    "ip6tables",
    "iptables",
    "ipv6",
    "live-restore",
    "no-new-privileges",
    "raw-logs",
    "rootless",
    "selinux-enabled",
    "tls",
    "tlsverify",
    "userland-proxy",
    "version",
    "restart",
    "validate",
}


# ------------------------------------------------------------------ units


def _service_assignments(host: Host, files: list[str]) -> list[tuple[str, str]] | None:
    """(key, value) of the [Service] assignments of a unit file and its drop-ins, read the way
    config_parse() reads them (parse_ini). None when the unit file has an invalid section header
    (systemd does not load the unit); a drop-in with one is skipped."""
    out: list[tuple[str, str]] = []
    for index, path in enumerate(files):
        parsed = parse_ini(host.read_text(path) or "")
        if parsed is None and index == 0:
            return None
        out += [(key, value) for section, key, value in parsed or () if section == "Service"]
    return out


def _unit_files(host: Host, unit: str) -> list[str] | None:
    """The unit file and its drop-ins in the order systemd applies them; None when the
    unit does not exist or is masked."""
    main = next((f"{d}/{unit}" for d in UNIT_DIRS if host.kind(f"{d}/{unit}") in ("file", "link")), None)
    if main is None or host.masked(main):
        return None
    dropins: dict[str, str] = {}
    for d in UNIT_DIRS:
        for name in host.listdir(f"{d}/{unit}.d"):
            if name.endswith(".conf") and name not in dropins:
                dropins[name] = f"{d}/{unit}.d/{name}"
    return [main] + [dropins[n] for n in sorted(dropins) if not host.masked(dropins[n])]


def _env_file(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def _expand(argv: list[str], env: dict[str, str]) -> list[str]:
    """systemd's ExecStart= expansion: a word that is exactly $VAR becomes the value's
    words, ${VAR} is replaced in place (unset: empty)."""
    out = []
    for word in argv:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            out.extend(env.get(m.group(1), "").split())
            continue
        out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda x: env.get(x.group(1), ""), word))
    return out


def exec_start(host: Host, unit: str) -> list[str] | None:
    """The effective ExecStart= command line of ``unit`` (expanded), or None."""
    files = _unit_files(host, unit)
    assignments = None if files is None else _service_assignments(host, files)
    if assignments is None:
        return None
    commands: list[str] = []
    env: dict[str, str] = {}
    for key, value in assignments:
        if key == "ExecStart":
            commands = [] if not value else commands + [value]
        elif key == "Environment":
            try:
                words = shlex.split(value)
            except ValueError:
                words = value.split()
            env.update((k, v) for k, _, v in (w.partition("=") for w in words if "=" in w))
        elif key == "EnvironmentFile" and value:
            text = host.read_text(value.lstrip("-"))
            env.update(_env_file(text or ""))
    if not commands:
        return None
    try:
        argv = shlex.split(commands[-1])
    except ValueError:
        return None
    if argv:
        argv[0] = argv[0].lstrip("-@:+!")
    return _expand(argv, env)


def dockerd_flags(argv: list[str]) -> list[tuple[str, str, str]]:
    """(long flag name, value, the flag as written) for each flag of a dockerd command
    line, parsed the way pflag does."""
    flags, i = [], 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            written = arg
            if not eq and name not in BOOL_FLAGS and i < len(argv):
                value, i = argv[i], i + 1
                written = f"{arg} {value}"
            flags.append((name, value if (eq or name not in BOOL_FLAGS) else "true", written))
        elif arg.startswith("-") and len(arg) > 1:
            chars = arg[1:]
            for j, ch in enumerate(chars):
                name = SHORT.get(ch, ch)
                if name in BOOL_FLAGS:
                    flags.append((name, "true", f"-{ch}"))
                    continue
                value = chars[j + 1 :].removeprefix("=")
                written = f"-{ch}{chars[j + 1 :]}"
                if not value and i < len(argv):
                    value, i = argv[i], i + 1
                    written = f"-{ch} {value}"
                flags.append((name, value, written))
                break
    return flags


def _values_set(config: dict) -> dict:
    """moby's configValuesSet(): nested objects flattened, except FLAT ones."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and key not in FLAT:
            flat.update(value)
        else:
            flat[key] = value
    return flat


def flag_conflicts(config: dict, argv: list[str]) -> list[tuple[str, str]]:
    """(file key, flag as written) for each setting given both ways."""
    values = _values_set(config)
    out: dict[str, str] = {}
    for name, _value, written in dockerd_flags(argv):
        key = NAMED.get(name, name)
        short = next((s for s, long in SHORT.items() if long == name), None)
        for candidate in [key] if name in NAMED else [name, short]:
            if candidate and candidate in values and candidate not in SKIP_DUPLICATES:
                out.setdefault(candidate, written)
                break
    return sorted(out.items())


# ------------------------------------------------------------------ daemon.json


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse(text: str) -> tuple[object, str | None]:
    """(data, None) or (None, why it does not parse, with line and column)."""
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except json.JSONDecodeError as err:
        return None, f"line {err.lineno}, column {err.colno}: {err.msg}"
    except ValueError as err:
        return None, str(err)


def _settings_problems(display: str, text: str, config: dict):
    """netharden's validation rules for docker.daemons[].settings, on this file's data,
    with positions when the file also reads as YAML (JSON mostly is)."""
    from ...validate import daemon_json_problems
    from ...yamlload import Document, load_text

    try:
        doc = load_text(text, display)
        if doc.data != config:
            raise ValueError("reads differently")
    except Exception:
        doc = Document(display, config)
    return daemon_json_problems(doc)


def _daemons(host: Host) -> list[tuple[str | None, list[str] | None, str]]:
    """(unit, argv, daemon.json path) of every dockerd the units start; the default
    daemon.json without a unit when no unit uses it."""
    units = {"docker.service"}
    for d in UNIT_DIRS:
        units.update(n for n in host.listdir(d) if n.startswith("docker-") and n.endswith(".service") and "@" not in n)
    out: list[tuple[str | None, list[str] | None, str]] = []
    for unit in sorted(units):
        argv = exec_start(host, unit)
        if not argv or os.path.basename(argv[0]) != "dockerd":
            continue
        config = next((v for n, v, _ in dockerd_flags(argv) if n == "config-file"), DAEMON_JSON)
        out.append((unit, argv, config))
    if not any(c == DAEMON_JSON for _, _, c in out):
        out.append((None, None, DAEMON_JSON))
    return out


def check(host: Host) -> list[Finding]:
    findings: set[Finding] = set()
    for unit, argv, path in _daemons(host):
        if host.kind(path) not in ("file", "link"):
            continue
        text = host.read_text(path)
        if text is None:
            continue
        shown = host.display(path)
        by = f" ({unit} would not start)" if unit else ""
        config, error = parse(text)
        if error:
            findings.add(Finding(shown, f"does not parse as JSON: {error}: dockerd refuses to start{by}"))
            continue
        if not isinstance(config, dict):
            findings.add(
                Finding(
                    shown,
                    f"is a JSON {type(config).__name__.replace('list', 'array')}, not an object: "
                    f"dockerd refuses to start{by}",
                )
            )
            continue
        if argv:
            for key, flag in flag_conflicts(config, argv):
                findings.add(
                    Finding(
                        shown,
                        (
                            f"sets {key!r} while {unit}'s ExecStart passes {flag}: dockerd refuses to start (\"the following "
                            f'directives are specified both as a flag and in the configuration file: {key}")'
                        ),
                    )
                )
        for p, ignored in _settings_problems(shown, text, config):
            where = f"line {p.line}, column {p.column}, " if p.line else ""
            findings.add(
                Finding(
                    shown,
                    f"{where}{json_path(p.path)}: {p.message}" + (f" ({p.hint})" if p.hint else ""),
                    severity="warning" if ignored else "",
                )
            )
    return sorted(findings, key=lambda f: (f.subject, f.message))
