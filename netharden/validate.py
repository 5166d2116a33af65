"""Validation of a loaded profile: the JSON schema first, then semantic checks.

Every problem becomes one ``Problem`` with the position of the node at fault. Schema
errors are translated into plain messages (``unknown key 'brdges'`` + ``did you mean
'bridges'?``) instead of jsonschema's raw text. Semantic checks read the raw data
defensively (every access is type-checked), so they run even when the schema found
problems elsewhere and all problems are reported at once.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from . import mac as macs
from . import networkmanager as nm
from . import stack as stacks
from .presets import ALL as ALL_PRESETS
from .presets import PRESETS
from .problems import Problem, json_path
from .profile import DHCP_FAMILIES, dhcp_mode
from .resources import read_text
from .yamlload import Document

# system directories no service of ours may be given write access to as a whole
SYSTEM_DIRS = {
    "",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/home",
    "/mnt",
    "/media",
    "/etc/systemd",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/local",
    "/usr/share",
    "/var/lib",
    "/var/log",
    "/var/run",
    "/var/tmp",
    "/var/lib/docker",
    "/var/lib/node_exporter",
}

RESERVED_IFNAMES = {
    "all": "reserved for /proc/sys/net/*/conf/all",
    "default": "reserved for /proc/sys/net/*/conf/default",
    "lo": "the loopback interface already has it",
}


@lru_cache(maxsize=1)
def schema_text() -> str:
    return read_text("schemas", "profile.schema.json")


_DOLLAR = re.compile(r"(?<!\\)\$")  # an unescaped $ (fastjsonschema's own rule, also inside [...])


def end_of_string(pattern: str) -> str:
    """``pattern`` with every unescaped ``$`` written ``\\Z``, the rule fastjsonschema applies.

    A JSON Schema ``pattern`` is an ECMA-262 regular expression, whose ``$`` (without the
    multiline flag) matches only at the end of the input; Python's ``$`` also matches before
    a final newline, so ``re.search("^[a-z]+$", "host\\n")`` succeeds. Both validators search
    with the rewritten pattern: jsonschema's ``pattern`` keyword (``validator_class``) and the
    fastjsonschema checker (``precompile.fast_schema``). A ``$`` meant literally is written
    ``\\$`` (inside ``[...]`` too).
    """
    return _DOLLAR.sub(r"\\Z", pattern)


def _pattern(validator, pattern, instance, schema):
    """jsonschema's ``pattern`` keyword (``jsonschema._keywords.pattern``) with ``end_of_string``."""
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not re.search(end_of_string(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=2)
def validator_class(strict_integer: bool = True):
    """Draft 2020-12 as this project reads it: ``pattern`` with ``end_of_string``, and with
    ``strict_integer`` an integral float (1500.0, 1e4) is not an ``integer``."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    kwargs = {}
    if strict_integer:
        # JSON Schema counts 1500.0 and 1e4 as integers; YAML parses them as floats and they
        # would be written as "1500.0", which systemd and the kernel refuse.
        kwargs["type_checker"] = base.TYPE_CHECKER.redefine(
            "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
        )
    return jsonschema.validators.extend(base, validators={"pattern": _pattern}, **kwargs)


@lru_cache(maxsize=1)
def _validator():
    return validator_class()(json.loads(schema_text()))


def validate(doc: Document) -> list[Problem]:
    """All problems of ``doc`` (empty list when the profile is valid)."""
    schema = list(_schema_problems(doc))
    semantic = list(_semantic_problems(doc))
    # One message per problem: a node may fail a schema keyword and a semantic rule at once.
    # The semantic message is more specific than a generic list rule ("duplicate item");
    # otherwise the schema's message stands and the semantic one is dropped.
    semantic_paths = {p.path for p in semantic}
    schema = [p for p in schema if not (p.message == _GENERIC_DUPLICATE and p.path in semantic_paths)]
    schema_paths = {p.path for p in schema}
    return schema + [p for p in semantic if p.path not in schema_paths]


# ---------------------------------------------------------------------------- schema
_GENERIC_DUPLICATE = "duplicate item in list"
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    return f"the string {value!r}"


def _closest(word: str, choices) -> str:
    import difflib  # only a bad profile needs it: imported here to keep a valid render's start short

    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {found[0]!r}?" if found else ""


def _has_control(value: Any) -> bool:
    return isinstance(value, str) and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def plain_without_integral_floats(data: Any) -> bool:
    """True when ``data`` is made of dict, list, str, int, bool, None and floats with a
    fraction only (the types the profile loaders produce, each exactly that type).

    Only then does fastjsonschema's verdict stand: it counts an integral float (1500.0) as
    an ``integer``, and ``validator_class`` does not. Data with one anywhere, or with any
    other type (a tuple, a subclass), are judged by jsonschema. Mapping keys are not looked
    at: no schema keyword we use reads a key's type.
    """
    stack = [data]
    pop, extend = stack.pop, stack.extend
    while stack:
        x = pop()
        t = type(x)
        if t is dict:
            extend(x.values())
        elif t is list:
            extend(x)
        elif t is float:
            if x.is_integer():
                return False
        elif not (t is str or t is int or t is bool or x is None):
            return False
    return True


@lru_cache(maxsize=1)
def _precompiled_check():
    """A function ``is_valid(data) -> bool`` built on netharden/_profile_schema_check.py, the
    code fastjsonschema generated for this very schema text (else None: a schema edited
    without 'make precompile' falls back to jsonschema alone; so does NETHARDEN_PRECOMPILED=0).

    It only answers "valid or not", without importing jsonschema (which, with referencing,
    attrs and rpds, takes longer to import than the rest of a render). A profile it calls
    valid has no schema problem; for any other, jsonschema (``_validator``) runs and every
    message comes from it. The verdict is fastjsonschema's when ``plain_without_integral_floats``
    holds (no integral float anywhere), else jsonschema's (``_validator().is_valid``, rare:
    1500.0 in a pass-through daemon.json setting is valid, as an mtu it is not).
    netharden/precompile.py records how the module is generated and why its verdict is
    jsonschema's; tests/test_speed_paths.py checks both.
    """
    import os

    if os.environ.get("NETHARDEN_PRECOMPILED", "1") == "0":
        return None
    try:
        from . import _profile_schema_check as generated
    except ImportError:  # pragma: no cover - the module (and fastjsonschema) ship with the package
        return None
    if generated.SCHEMA != schema_text():
        return None
    check, failed = generated.validate, generated.JsonSchemaValueException

    def verdict(data: Any) -> bool | None:
        """fastjsonschema's verdict, or None when jsonschema must decide."""
        if not plain_without_integral_floats(data):
            return None
        try:
            check(data)
            return True
        except failed:
            return False
        except Exception:  # pragma: no cover - data fastjsonschema's code cannot handle: jsonschema decides
            return None

    def is_valid(data: Any) -> bool:
        ok = verdict(data)
        return _validator().is_valid(data) if ok is None else ok

    is_valid.verdict = verdict  # type: ignore[attr-defined]  # for fleet/check.py, which caches jsonschema's verdicts
    return is_valid


def _schema_problems(doc: Document) -> Iterator[Problem]:
    check = _precompiled_check()
    if check is not None and check(doc.data):
        return
    for err in _validator().iter_errors(doc.data):
        yield from _translate(doc, err)


def _translate(doc: Document, err) -> Iterator[Problem]:
    path = tuple(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    inst = err.instance
    v, val = err.validator, err.validator_value
    hint = schema.get("x-hint", "")
    if "propertyNames" in err.relative_schema_path:
        # jsonschema reports a bad key at its parent; point at the key itself
        key_path = path + (inst,)
        title = schema.get("title", "key")
        msg = f"invalid {title} {inst!r}"
        if v == "pattern" and schema.get("pattern") == "^net\\.":
            msg = f"sysctl {inst!r} is not namespaced per container"
        yield doc.problem(key_path, msg, hint, key=True)
        return
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in sorted(set(inst) - set(allowed)):
            if key == "<<":
                h = "YAML merge keys are not supported; write the keys out"
            else:
                h = _closest(key, allowed) or (f"allowed keys here: {', '.join(allowed)}" if allowed else "")
            yield doc.problem(path + (key,), f"unknown key {key!r}", h, key=True)
        return
    if v == "required":
        for key in val:
            if isinstance(inst, dict) and key not in inst:
                prop = schema.get("properties", {}).get(key, {})
                yield doc.problem(
                    path, f"missing required key {key!r}", prop.get("x-hint") or prop.get("description", ""), key=True
                )
        return
    if v == "type":
        wanted = val if isinstance(val, list) else [val]
        names = " or ".join(_TYPE_NAMES.get(t, str(t)) for t in wanted)
        yield doc.problem(path, f"expected {names}, got {_kind(inst)}", hint)
        return
    if v == "enum":
        shown = ", ".join("false" if x is False else "true" if x is True else str(x) for x in val)
        yield doc.problem(
            path,
            f"{_kind(inst)} is not one of: {shown}",
            _closest(inst, [x for x in val if isinstance(x, str)]) or hint,
        )
        return
    if v == "const":
        yield doc.problem(path, f"expected {val!r}, got {_kind(inst)}", hint)
        return
    if v == "pattern":
        title = schema.get("title", "value")
        if _has_control(inst):
            yield doc.problem(
                path,
                f"{title} contains a newline or control character",
                "values end up in INI and shell text; remove the control characters",
            )
        else:
            if isinstance(inst, str) and schema.get("x-suggest"):
                close = _closest(inst.upper().replace("-", "_"), schema["x-suggest"])
                hint = f"{close} {hint}" if close else hint
            yield doc.problem(path, f"invalid {title} {inst!r}", hint)
        return
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        word = "at least" if v.endswith("inimum") else "at most"
        title = schema.get("title", "value")
        yield doc.problem(path, f"{title} {inst} is out of range: must be {word} {val}", schema.get("description", ""))
        return
    if v == "minItems":
        yield doc.problem(path, "must not be an empty list" if val == 1 else f"needs at least {val} items")
        return
    if v == "maxItems":
        yield doc.problem(path, f"has {len(inst)} items, at most {val} allowed", schema.get("description", ""))
        return
    if v == "uniqueItems":
        seen, dup = set(), None
        for i, item in enumerate(inst):
            marker = json.dumps(item, sort_keys=True)
            if marker in seen:
                dup = i
                break
            seen.add(marker)
        yield doc.problem(path + ((dup,) if dup is not None else ()), _GENERIC_DUPLICATE, "list each value once")
        return
    if v == "minProperties":
        yield doc.problem(path, "must not be an empty mapping", schema.get("description", ""))
        return
    if v in ("maxLength", "minLength"):
        yield doc.problem(
            path,
            f"{schema.get('title', 'value')} is too {'long' if v == 'maxLength' else 'short'} ({len(inst)} characters; limit {val})",
        )
        return
    yield doc.problem(path, err.message, hint)  # pragma: no cover - every keyword we use is handled above


# -------------------------------------------------------------------------- semantic
def _mapping(data: dict, key: str) -> dict:
    """``data[key]`` when it is a mapping, else an empty one (semantic rules read raw data)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _items(data: Any, key: str) -> list[tuple[int, dict]]:
    seq = data.get(key) if isinstance(data, dict) else None
    if not isinstance(seq, list):
        return []
    return [(i, item) for i, item in enumerate(seq) if isinstance(item, dict)]


def _strings(value: Any) -> list[tuple[tuple, str]]:
    """(sub-path, string) pairs of a 'one value or a list' field."""
    if isinstance(value, str):
        return [((), value)]
    if isinstance(value, list):
        return [((i,), v) for i, v in enumerate(value) if isinstance(v, str)]
    return []


# Parsed addresses are memoized (a fleet's hosts repeat gateways, DNS servers and docker
# subnets; parsing was half of the semantic checks' time). ipaddress objects are
# immutable, so sharing one between callers is safe; keyed by the exact string.
@lru_cache(maxsize=4096)
def _ip(value: str):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _iface(value: str):
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        return None


@lru_cache(maxsize=256)
def _unmanaged_globs(presets: tuple[str, ...], names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(glob, where it comes from) of the unmanaged presets and names, in order."""
    globs = [(g, f"unmanaged preset {preset!r}") for preset in presets for g in PRESETS[preset][0]]
    return tuple(globs + [(g, "unmanaged.names") for g in names])


@lru_cache(maxsize=4096)
def _swallowing_glob(name: str, globs: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
    """The first (glob, source) that matches the interface ``name``, or None (memoized:
    a fleet's hosts repeat bridge names and presets)."""
    for glob, source in globs:
        if fnmatch.fnmatchcase(name, glob):
            return glob, source
    return None


def interface(value: str):
    """``ipaddress.ip_interface(value)`` (raising the same ValueError), memoized with the
    semantic checks' parses: a renderer reads the addresses validation just parsed."""
    return _iface(value) or ipaddress.ip_interface(value)


def _semantic_problems(doc: Document) -> Iterator[Problem]:
    data = doc.data if isinstance(doc.data, dict) else {}
    uplinks = _items(data, "uplinks")
    bridges = _items(data, "bridges")
    docker = _mapping(data, "docker")
    daemons = _items(docker, "daemons")

    yield from _unique_names(doc, "uplinks", uplinks, "uplink")
    yield from _unique_names(doc, "bridges", bridges, "bridge")
    yield from _unique_names(doc, ("docker", "daemons"), daemons, "docker daemon")

    # uplinks without a match use their name as the interface name
    for i, up in uplinks:
        name = up.get("name")
        if "match" not in up and isinstance(name, str) and len(name) > 15:
            yield doc.problem(
                ("uplinks", i, "name"),
                f"uplink {name!r} has no 'match', so its name is the interface name, but it is longer than 15 characters",
                "add match: {name: [...]} or use a shorter name",
            )

    # bridge names the kernel refuses or that an unmanaged rule would swallow
    unmanaged = _mapping(data, "unmanaged")
    preset_names = unmanaged.get("presets", list(ALL_PRESETS))
    presets = (
        tuple(p for p in preset_names if isinstance(p, str) and p in PRESETS) if isinstance(preset_names, list) else ()
    )
    globs = _unmanaged_globs(presets, tuple(g for _, g in _strings(unmanaged.get("names"))))
    for i, br in bridges:
        name = br.get("name")
        if not isinstance(name, str):
            continue
        if name in RESERVED_IFNAMES:
            yield doc.problem(
                ("bridges", i, "name"),
                f"the kernel refuses the interface name {name!r} ({RESERVED_IFNAMES[name]})",
                "pick another name, e.g. 'dockerbr0'",
            )
            continue
        hit = _swallowing_glob(name, globs)
        if hit is not None:
            glob, source = hit
            yield doc.problem(
                ("bridges", i, "name"),
                f"bridge {name!r} matches {glob!r} of {source}, so {_daemon(data)} would leave it unconfigured",
                "rename the bridge (e.g. 'dockerbr' + purpose) or drop that preset/glob",
            )

    # MACs
    seen_macs: dict[str, tuple] = {}
    for i, br in bridges:
        value = br.get("mac")
        if isinstance(value, str) and value != "stable" and macs.is_valid(value):
            yield from _mac_checks(
                doc, ("bridges", i, "mac"), value, "use 'stable' or a unicast MAC such as 02:00:5e:10:00:01"
            )
            norm = value.lower()
            if norm in seen_macs:
                yield doc.problem(
                    ("bridges", i, "mac"),
                    f"MAC {value} is already used by {json_path(seen_macs[norm])}",
                    "every bridge needs its own MAC; use 'stable'",
                )
            seen_macs.setdefault(norm, ("bridges", i, "mac"))
    for i, up in uplinks:
        match = _mapping(up, "match")
        for sub, value in _strings(match.get("mac")):
            if macs.is_valid(value):
                yield from _mac_checks(
                    doc,
                    ("uplinks", i, "match", "mac") + sub,
                    value,
                    "match the NIC's own unicast MAC, as 'ip link show' prints it",
                )

    # addresses, overlaps, gateways, DNS
    yield from _address_checks(doc, uplinks, bridges, daemons)

    yield from _daemon_checks(doc, daemons, bridges)

    # the VXLAN collector's service may write only its textfile directory: never a system one
    gc = _mapping(data, "vxlan_gc")
    textfile_dir = gc.get("textfile_dir")
    if isinstance(textfile_dir, str) and textfile_dir.rstrip("/") in SYSTEM_DIRS:
        yield doc.problem(
            ("vxlan_gc", "textfile_dir"),
            f"textfile_dir {textfile_dir!r} is a system directory; the collector's service would be allowed to write all of it",
            "use node-exporter's textfile collector directory, e.g. /var/lib/node_exporter/textfile_collector",
        )

    # networkd: masks must not hide what netharden itself writes
    networkd = _mapping(data, "networkd")
    masks = networkd.get("mask")
    if isinstance(masks, list):
        for i, name in enumerate(masks):
            if isinstance(name, str) and "netharden" in name:
                yield doc.problem(
                    ("networkd", "mask", i),
                    f"{name!r} looks like a file netharden writes; masking it would disable the profile",
                )

    yield from _stack_checks(doc, data, uplinks)

    # IPv6 needs an MTU of at least 1280
    for key, entries in (("uplinks", uplinks), ("bridges", bridges)):
        for i, item in entries:
            mtu = item.get("mtu")
            if isinstance(mtu, int) and not isinstance(mtu, bool) and mtu < 1280:
                v6 = [
                    a
                    for _, text in _strings(item.get("addresses"))
                    if (a := _iface(text)) is not None and a.version == 6
                ]
                if v6 or (key == "uplinks" and 6 in _dhcp_families(item)):
                    yield doc.problem(
                        (key, i, "mtu"),
                        f"MTU {mtu} is below 1280, the minimum for IPv6, but the interface uses IPv6",
                        "raise the MTU to at least 1280 or drop the IPv6 configuration",
                    )


def _daemon(data: dict) -> str:
    """The network daemon of the profile's stack (platform.stack, or the os's default)."""
    platform = _mapping(data, "platform")
    stack = stacks.stack_for(platform.get("os", "generic"), platform.get("stack"))
    return "NetworkManager" if stack == "networkmanager" else "systemd-networkd"


def _stack_checks(doc: Document, data: dict, uplinks: list) -> Iterator[Problem]:
    """The network stack the os can have, and what NetworkManager cannot express."""
    platform = _mapping(data, "platform")
    os_name, stack = platform.get("os", "generic"), platform.get("stack")
    if not isinstance(os_name, str) or os_name not in stacks.DEFAULT_STACK:
        return  # the schema reports it
    if stack is not None and stack not in stacks.STACKS:
        return
    if stack is not None and (os_name, stack) in stacks.MISSING_STACK:
        other = stacks.DEFAULT_STACK[os_name]
        yield doc.problem(
            ("platform", "stack"),
            f"platform.stack {stack!r} cannot run on {os_name}: {stacks.MISSING_STACK[os_name, stack]}",
            f"use stack {other!r} (the default for {os_name}) or drop platform.stack",
        )
    stack = stacks.stack_for(os_name, stack)
    version = platform.get("networkmanager")
    if isinstance(version, str) and re.fullmatch(r"1\.[0-9]{1,3}", version):
        if stack != "networkmanager":
            yield doc.problem(
                ("platform", "networkmanager"),
                f"platform.networkmanager is set but the host's stack is {stack!r}",
                "set platform.stack: networkmanager, or drop platform.networkmanager",
            )
        elif nm.parse(version) < nm.MINIMUM:
            yield doc.problem(
                ("platform", "networkmanager"),
                f"NetworkManager {version} is older than {nm.text(nm.MINIMUM)}, the oldest netharden renders for",
                "NetworkManager 1.26 (RHEL 8.3) added the [match] driver=, path= and ! that uplinks need",
            )
    if stack == "netplan":
        yield from _netplan_checks(doc, data, uplinks)
    if stack != "networkmanager":
        return
    ranges = "NetworkManager matches interface names with '*' and '?' only, not [ranges]"
    unmanaged = _mapping(data, "unmanaged")
    for sub, glob in _strings(unmanaged.get("names")):
        if "[" in glob or "]" in glob:
            yield doc.problem(("unmanaged", "names") + sub, f"{ranges}: {glob!r}", "write one glob per range value")
    for i, up in uplinks:
        match = _mapping(up, "match")
        for sub, glob in _strings(match.get("name")):
            if "[" in glob or "]" in glob:
                yield doc.problem(
                    ("uplinks", i, "match", "name") + sub, f"{ranges}: {glob!r}", "write one glob per range value"
                )
        found = _strings(match.get("mac"))
        if len(found) > 1:
            yield doc.problem(
                ("uplinks", i, "match", "mac"),
                "a NetworkManager profile matches one MAC (ethernet.mac-address)",
                "give each NIC its own uplink, or match it by name or path",
            )


def _netplan_checks(doc: Document, data: dict, uplinks: list) -> Iterator[Problem]:
    """What a netplan ``match`` cannot express (renderers/netplan.py): one name glob, one
    MAC, no udev path, and no exclusion of virtual interfaces. netplan matches a MAC as
    the permanent MAC (which bridges and veths do not have) and the uplinks' generated
    files (10-netplan-0-netharden-*) sort before the bridges', so a name glob without a MAC
    must not match one of the profile's bridges or the loopback interface."""
    bridges = [name for _, br in _items(data, "bridges") if isinstance(name := br.get("name"), str)]
    for i, up in uplinks:
        match = _mapping(up, "match")
        at = ("uplinks", i, "match")
        if "path" in match:
            yield doc.problem(
                at + ("path",),
                "netplan cannot match a NIC by udev device path: its match has name, macaddress and driver only",
                "match the NIC by name, mac or driver, or set platform.stack: networkd",
            )
        for key, what, netplan_key, hint in (
            ("name", "name glob", "name", "give each NIC its own uplink, or write one glob that covers them"),
            ("mac", "MAC", "macaddress", "give each NIC its own uplink"),
        ):
            if len(_strings(match.get(key))) > 1:
                yield doc.problem(
                    at + (key,), f"a netplan match takes one {what} (match.{netplan_key}), not a list", hint
                )
        names = [g for _, g in _strings(match.get("name"))]
        if "match" not in up and isinstance(up.get("name"), str):
            names = [up["name"]]
        drivers = [g for _, g in _strings(match.get("driver"))]
        if match.get("mac") is not None or len(names) != 1:
            continue
        glob = names[0]
        victims = [
            (b, "bridge", "bridge", "networkd's Kind=!*; the uplinks' netplan files sort first") for b in bridges
        ]
        victims.append(("lo", "loopback interface", "", "networkd's Type=!loopback"))
        for victim, kind, driver, why in victims:
            if fnmatch.fnmatchcase(victim, glob) and (
                not drivers or any(fnmatch.fnmatchcase(driver, d) for d in drivers)
            ):
                path = at + ("name",) if "match" in up else ("uplinks", i, "name")
                yield doc.problem(
                    path,
                    f"uplink glob {glob!r} matches the {kind} {victim!r}: netplan cannot exclude it from a match ({why})",
                    "match the NIC by mac (netplan matches the permanent MAC) or driver, or a glob that leaves "
                    f"{victim!r} out",
                )
                break


def _mac_checks(doc: Document, path: tuple, value: str, hint: str) -> Iterator[Problem]:
    if macs.is_zero(value):
        yield doc.problem(path, f"MAC {value} is all zeros", hint)
    elif macs.is_multicast(value):
        yield doc.problem(path, f"MAC {value} is a multicast address (lowest bit of the first octet is set)", hint)


def _unique_names(doc: Document, key, entries, what: str) -> Iterator[Problem]:
    base = key if isinstance(key, tuple) else (key,)
    first: dict[str, int] = {}
    for i, item in entries:
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            yield doc.problem(
                base + (i, "name"),
                f"duplicate {what} name {name!r} (first at {json_path(base + (first[name], 'name'))})",
            )
        else:
            first[name] = i


def _address_checks(doc: Document, uplinks, bridges, daemons) -> Iterator[Problem]:
    placed: list[tuple[str, Any, tuple]] = []  # (owner label, interface address, path)
    for key, entries in (("uplinks", uplinks), ("bridges", bridges)):
        for i, item in entries:
            owner = f"{key[:-1]} {item.get('name')!r}"
            own: list = []
            for sub, text in _strings(item.get("addresses")):
                path = (key, i, "addresses") + sub
                addr = _iface(text)
                if addr is None:
                    yield doc.problem(
                        path, f"invalid address {text!r}", "write an address with its prefix length, e.g. 192.0.2.10/24"
                    )
                    continue
                net = addr.network
                if addr.version == 4 and net.prefixlen < 31 and addr.ip in (net.network_address, net.broadcast_address):
                    which = "network" if addr.ip == net.network_address else "broadcast"
                    suggestion = f"{net.network_address + 1}/{net.prefixlen}"
                    yield doc.problem(
                        path,
                        f"{text} is the {which} address of {net}, not a host address",
                        f"did you mean {suggestion}?",
                    )
                    continue
                own.append(addr)
                for other_owner, other, other_path in placed:
                    if other.version != addr.version:
                        continue
                    if other_owner == owner:
                        if other.ip == addr.ip:
                            yield doc.problem(path, f"address {addr.ip} is given twice on {owner}")
                        continue
                    if other.network.overlaps(addr.network):
                        yield doc.problem(
                            path,
                            f"{text} on {owner} overlaps {other} on {other_owner} ({json_path(other_path)})",
                            "each interface needs its own subnet; overlapping subnets make routing ambiguous",
                        )
                placed.append((owner, addr, path))
            if key == "uplinks":
                yield from _gateway_checks(doc, i, item, own)
                for sub, text in _strings(item.get("dns")):
                    if _ip(text) is None:
                        yield doc.problem(
                            ("uplinks", i, "dns") + sub,
                            f"invalid IP address {text!r}",
                            "write a bare address, e.g. 192.0.2.53",
                        )
    # dockerd's own bridge subnet (bip) must not collide with the host's networks
    for i, dm in daemons:
        settings = dm.get("settings")
        bip = settings.get("bip") if isinstance(settings, dict) else None
        # (with a bridge of its own, bip is refused as such: no second message for the same value)
        if isinstance(bip, str) and (addr := _iface(bip)) is not None and not isinstance(dm.get("bridge"), str):
            for other_owner, other, other_path in placed:
                if other.version == addr.version and other.network.overlaps(addr.network):
                    yield doc.problem(
                        ("docker", "daemons", i, "settings", "bip"),
                        f"docker bridge subnet {bip} overlaps {other} on {other_owner} ({json_path(other_path)})",
                        "pick a bip outside every host subnet",
                    )
        # and the pools its networks are cut from must not shadow them either
        pools = settings.get("default-address-pools") if isinstance(settings, dict) else None
        for j, pool in enumerate(pools if isinstance(pools, list) else []):
            base = pool.get("base") if isinstance(pool, dict) else None
            if isinstance(base, str) and (addr := _iface(base)) is not None:
                for other_owner, other, other_path in placed:
                    if other.version == addr.version and other.network.overlaps(addr.network):
                        yield doc.problem(
                            ("docker", "daemons", i, "settings", "default-address-pools", j, "base"),
                            f"address pool {base} overlaps {other} on {other_owner} ({json_path(other_path)})",
                            "docker networks cut from it would shadow that subnet; pick a base outside every host subnet",
                        )
                        break


def _dhcp_families(up: dict) -> tuple[int, ...]:
    return DHCP_FAMILIES[dhcp_mode(up.get("dhcp"), bool(up.get("addresses"))) or "no"]


def _gateway_checks(doc: Document, i: int, up: dict, own: list) -> Iterator[Problem]:
    dhcp_families = _dhcp_families(up)
    families: dict[int, tuple] = {}
    for sub, text in _strings(up.get("gateway")):
        path = ("uplinks", i, "gateway") + sub
        gw = _ip(text)
        if gw is None:
            yield doc.problem(path, f"invalid IP address {text!r}", "write a bare address, e.g. 192.0.2.1")
            continue
        if gw.version in families:
            yield doc.problem(
                path,
                f"a second IPv{gw.version} gateway (first at {json_path(families[gw.version])})",
                "give at most one gateway per address family",
            )
            continue
        families[gw.version] = path
        if gw.version == 6 and gw.is_link_local:
            continue
        same = [a for a in own if a.version == gw.version]
        if same:
            if not any(gw in a.network for a in same):
                nets = ", ".join(str(a) for a in same)
                yield doc.problem(
                    path,
                    f"gateway {gw} is outside every IPv{gw.version} address of uplink {up.get('name')!r} ({nets})",
                    "the gateway must be on a directly connected subnet",
                )
            elif any(gw == a.ip for a in same):
                yield doc.problem(path, f"gateway {gw} is the uplink's own address")
        elif gw.version not in dhcp_families:
            yield doc.problem(
                path,
                f"gateway {gw} is unreachable: uplink {up.get('name')!r} has no IPv{gw.version} address and no DHCP for it",
                f"add an IPv{gw.version} address on the gateway's subnet, or enable dhcp",
            )


# ------------------------------------------------------------------- docker daemons
MAIN_DAEMON = "docker"
_MAIN_SOCKET = "/run/docker.sock"  # the packaged docker.socket (-H fd://), /var/run spelled /run
# dockerd's defaults for the main daemon's state; extra daemons default to NAME-suffixed ones
_STATE_KEYS = {
    "data-root": ("/var/lib/docker", "/var/lib/docker-{}"),
    "exec-root": ("/var/run/docker", "/var/run/docker-{}"),
    "pidfile": ("/var/run/docker.pid", "/var/run/docker-{}.pid"),
}
# daemon.json keys dockerd (20.10 and later) does not apply although they are flag names:
# the flag check lets them through, the JSON field has another name. -> hint
_IGNORED_KEYS = {
    "default-address-pool": "write 'default-address-pools' (the daemon.json name)",
    "dns-opt": "write 'dns-opts' (the daemon.json name)",
    "host": "set the socket with the daemon's own 'host' key",
    "containerd-plugins-namespace": "pass --containerd-plugins-namespace to dockerd instead; extra daemons already get docker-NAME-plugins",
}
_REFUSED_KEYS = {
    "containerd-plugin-namespace": "pass --containerd-plugins-namespace to dockerd instead; extra daemons already get docker-NAME-plugins",
}


@lru_cache(maxsize=1)
def _typed_settings() -> frozenset:
    """daemon.json keys the schema types (docker.daemons[].settings.properties)."""
    schema = json.loads(schema_text())
    daemon = schema["properties"]["docker"]["properties"]["daemons"]["items"]
    return frozenset(daemon["properties"]["settings"]["properties"])


def _socket(host: str) -> str:
    """A comparable form of a socket URL: unix:// dropped, /var/run spelled /run."""
    path = host.removeprefix("unix://")
    return "/run/" + path[len("/var/run/") :] if path.startswith("/var/run/") else path


def _state_path(path: str) -> str:
    path = path.rstrip("/") or "/"
    return "/run/" + path[len("/var/run/") :] if path.startswith("/var/run/") else path


def _network(doc: Document, path: tuple, text: str, version: int | None, what: str):
    """(network, problem): a CIDR that must name a network (no host bits) of ``version``."""
    addr = _iface(text)
    if addr is None:
        return None, doc.problem(
            path, f"invalid network {text!r}", "write a network with its prefix length, e.g. 10.200.0.0/16"
        )
    if version is not None and addr.version != version:
        example = "172.17.1.0/24" if version == 4 else "2001:db8:1::/64"
        return None, doc.problem(
            path, f"{what} {text} is not an IPv{version} network", f"write an IPv{version} network, e.g. {example}"
        )
    if addr.ip != addr.network.network_address:
        return None, doc.problem(
            path, f"{what} {text} has host bits set: it must be a network", f"did you mean {addr.network}?"
        )
    return addr.network, None


def _daemon_checks(doc: Document, daemons: list, bridges: list) -> Iterator[Problem]:
    by_name = {br["name"]: br for _, br in bridges if isinstance(br.get("name"), str)}
    bridge_names = list(by_name)
    hosts: dict[str, tuple] = {}
    attached: dict[str, tuple] = {}
    for i, dm in daemons:
        base = ("docker", "daemons", i)
        name = dm.get("name")
        main = name == MAIN_DAEMON
        ref = dm.get("bridge")
        if isinstance(ref, str):
            if ref not in by_name:
                hint = _closest(ref, bridge_names) or (
                    "define it under 'bridges'" if not bridge_names else f"known bridges: {', '.join(bridge_names)}"
                )
                yield doc.problem(
                    base + ("bridge",), f"daemon {name!r} uses bridge {ref!r}, which is not defined in 'bridges'", hint
                )
            elif ref in attached:
                yield doc.problem(
                    base + ("bridge",),
                    f"bridge {ref!r} is already used by {json_path(attached[ref])}",
                    "two dockerd instances cannot share one bridge; give each its own",
                )
            elif not any(
                (a := _iface(t)) is not None and a.version == 4 for _, t in _strings(by_name[ref].get("addresses"))
            ):
                yield doc.problem(
                    base + ("bridge",),
                    f"bridge {ref!r} has no IPv4 address in 'bridges', so dockerd would put one of its own on it (172.17.0.1/16, the main daemon's subnet)",
                    'give the bridge an address, e.g. addresses: ["10.24.0.1/24"]',
                )
            attached.setdefault(ref, base + ("bridge",))
        host = dm.get("host")
        if isinstance(host, str):
            sock = _socket(host)
            if sock in hosts:
                yield doc.problem(base + ("host",), f"socket {host!r} is already used by {json_path(hosts[sock])}")
            elif main and sock != _MAIN_SOCKET:
                yield doc.problem(
                    base + ("host",),
                    f"the main daemon listens on the packaged docker.socket (docker.service passes -H fd://), not on {host!r}",
                    "drop 'host' from the main daemon; for another socket run an extra daemon",
                )
            elif not main and sock == _MAIN_SOCKET:
                yield doc.problem(
                    base + ("host",),
                    f"socket {host!r} belongs to the main daemon (the packaged docker.socket)",
                    f"use host: unix:///var/run/docker-{name}.sock",
                )
            elif not main and host.startswith("fd://"):
                yield doc.problem(
                    base + ("host",),
                    f"{host!r} needs socket activation, and docker-{name}.service has no socket unit",
                    f"use host: unix:///var/run/docker-{name}.sock",
                )
            hosts.setdefault(sock, base + ("host",))
        settings = _mapping(dm, "settings")
        if isinstance(name, str) and not main:
            no_host = not isinstance(host, str)
            no_bridge = not isinstance(ref, str) and not isinstance(settings.get("bridge"), str)
            socket_hint = f"host: unix:///var/run/docker-{name}.sock"
            bridge_hint = "bridge: NAME of a bridge from 'bridges' (or settings.bridge: none)"
            if no_host and no_bridge:
                yield doc.problem(
                    base,
                    f"extra daemon {name!r} needs its own 'host' socket and its own bridge (without one dockerd uses docker0, the main daemon's bridge)",
                    f"add {socket_hint} and {bridge_hint}",
                )
            elif no_host:
                yield doc.problem(base, f"extra daemon {name!r} needs its own 'host' socket", f"add {socket_hint}")
            elif no_bridge:
                yield doc.problem(
                    base,
                    f"extra daemon {name!r} needs its own bridge: without one dockerd uses docker0, the main daemon's bridge",
                    f"add {bridge_hint}",
                )
        yield from _settings_checks(
            doc, base + ("settings",), name, main, settings, by_name.get(ref) if isinstance(ref, str) else None, ref
        )
    yield from _state_checks(doc, daemons)
    yield from _iptables_checks(doc, daemons)


def daemon_json_problems(doc: Document) -> list[tuple[Problem, bool]]:
    """The docker.daemons[].settings rules applied to a daemon.json's own data (the main daemon,
    dockerd's defaults), for ``netharden doctor``. Without the ``hosts`` rule: whether ``hosts``
    conflicts depends on the unit's real command line, which the doctor reads itself. Each
    problem comes with whether dockerd ignores the key (True) rather than refusing to start."""
    data = doc.data if isinstance(doc.data, dict) else {}
    return [
        (p, " ignores " in f" {p.message} ")
        for p in _settings_checks(doc, (), MAIN_DAEMON, True, data, None, None)
        if p.path[:1] != ("hosts",)
    ]


def _settings_checks(
    doc: Document, sbase: tuple, name: Any, main: bool, s: dict, bridge: dict | None, ref: Any
) -> Iterator[Problem]:
    """The daemon.json keys of one daemon: spellings dockerd refuses or ignores, value
    rules the schema cannot express, and the combinations dockerd refuses."""
    typed = _typed_settings()
    for key in s:
        if not isinstance(key, str):
            continue
        if key in _IGNORED_KEYS:
            yield doc.problem(
                sbase + (key,),
                f"dockerd accepts {key!r} in daemon.json (it is a flag name) but ignores it",
                _IGNORED_KEYS[key],
                key=True,
            )
        elif key in _REFUSED_KEYS:
            yield doc.problem(
                sbase + (key,),
                f'dockerd refuses the daemon.json key {key!r} ("don\'t match any configuration option")',
                _REFUSED_KEYS[key],
                key=True,
            )
        elif key not in typed and (spelled := key.lower().replace("_", "-")) in typed:
            yield doc.problem(
                sbase + (key,),
                f"unknown daemon.json key {key!r}",
                f"did you mean {spelled!r}? dockerd refuses unknown keys",
                key=True,
            )

    def at(*path) -> tuple:
        return sbase + path

    iptables = s.get("iptables") if isinstance(s.get("iptables"), bool) else main
    sbridge = s.get("bridge") if isinstance(s.get("bridge"), str) else None

    if "hosts" in s:
        if main:
            yield doc.problem(
                at("hosts"),
                "the packaged docker.service starts dockerd with -H fd://, and dockerd refuses to start when daemon.json sets hosts too",
                "drop settings.hosts: the main daemon keeps the packaged docker.socket (for another socket, run an extra daemon)",
            )
        else:
            yield doc.problem(
                at("hosts"),
                f"netharden writes hosts for daemon {name!r} from its 'host' key",
                f"drop settings.hosts and set host: unix:///var/run/docker-{name}.sock",
            )
    if sbridge is not None:
        if isinstance(ref, str):
            yield doc.problem(
                at("bridge"),
                f"the bridge is set twice: by the daemon's 'bridge' key ({ref!r}) and by settings.bridge",
                "drop settings.bridge",
            )
        elif not main and sbridge != "none":
            yield doc.problem(
                at("bridge"),
                "extra daemons attach to a bridge from 'bridges' (MAC pinned, created before dockerd starts)",
                f"define {sbridge!r} under 'bridges' and set the daemon's bridge: {sbridge}, or use settings.bridge: none",
            )

    # bip: the default bridge's own IPv4 address
    bip_net = None
    bip = s.get("bip")
    if isinstance(bip, str):
        addr = _iface(bip)
        if addr is None:
            yield doc.problem(
                at("bip"),
                f"invalid address {bip!r}",
                "write the bridge's own address with its prefix length, e.g. 172.17.0.1/16",
            )
        elif addr.version != 4:
            yield doc.problem(
                at("bip"),
                f"bip {bip} is not an IPv4 address",
                "bip is the bridge's IPv4 address; IPv6 goes in fixed-cidr-v6",
            )
        elif addr.network.prefixlen < 31 and addr.ip in (addr.network.network_address, addr.network.broadcast_address):
            which = "network" if addr.ip == addr.network.network_address else "broadcast"
            yield doc.problem(
                at("bip"),
                f"bip {bip} is the {which} address of {addr.network}; dockerd needs the bridge's own address",
                f"did you mean {addr.network.network_address + 1}/{addr.network.prefixlen}?",
            )
        else:
            bip_net = addr.network
        if isinstance(ref, str):
            yield doc.problem(
                at("bip"),
                f"daemon {name!r} is attached to bridge {ref!r}, whose addresses come from 'bridges'; dockerd refuses bip together with a bridge",
                f"drop bip and set the address in the addresses of bridge {ref!r}",
            )
        elif sbridge is not None:
            yield doc.problem(
                at("bip"),
                'dockerd refuses bip together with bridge ("You specified -b & --bip, mutually exclusive options")',
                "drop bip or settings.bridge",
            )

    # fixed-cidr: an IPv4 network inside the bridge's subnet
    fixed = s.get("fixed-cidr")
    if isinstance(fixed, str):
        net, problem = _network(doc, at("fixed-cidr"), fixed, 4, "fixed-cidr")
        if problem:
            yield problem
        elif bridge is not None:  # the netharden bridge's subnets, whatever bip says (bip is refused there)
            subnets = [
                a.network
                for _, t in _strings(bridge.get("addresses"))
                if (a := _iface(t)) is not None and a.version == 4
            ]
            if subnets and not any(net.subnet_of(n) for n in subnets):
                shown = ", ".join(map(str, subnets))
                yield doc.problem(
                    at("fixed-cidr"),
                    f"fixed-cidr {fixed} is outside the IPv4 subnets of bridge {ref!r} ({shown})",
                    f"pick a network inside {subnets[0]}",
                )
        elif bip_net is not None and not net.subnet_of(bip_net):
            yield doc.problem(
                at("fixed-cidr"),
                f"fixed-cidr {fixed} is outside bip {bip} ({bip_net})",
                f"pick a network inside {bip_net}",
            )

    # IPv6: fixed-cidr-v6 and ipv6 go together (dockerd 20.10 refuses ipv6 without it and ignores it without ipv6)
    fixed6 = s.get("fixed-cidr-v6")
    if isinstance(fixed6, str):
        _, problem = _network(doc, at("fixed-cidr-v6"), fixed6, 6, "fixed-cidr-v6")
        if problem:
            yield problem
        if s.get("ipv6") is not True:
            yield doc.problem(
                at("fixed-cidr-v6"),
                "dockerd ignores fixed-cidr-v6 without ipv6: true",
                "add ipv6: true or drop fixed-cidr-v6",
            )
    if s.get("ipv6") is True and "fixed-cidr-v6" not in s:
        yield doc.problem(
            at("ipv6"),
            'dockerd refuses to start with ipv6: true and no fixed-cidr-v6 ("IPv6 is enabled for the default bridge, but no subnet is configured")',
            "add fixed-cidr-v6, e.g. a /64 of the host's IPv6 prefix",
        )
    if s.get("ip6tables") is True and s.get("experimental") is not True:
        yield doc.problem(
            at("ip6tables"),
            "dockerd before 27.0 (20.10 on Debian 12) refuses ip6tables without experimental: true",
            "add experimental: true, or drop ip6tables",
        )

    # what needs iptables
    why_off = "" if isinstance(s.get("iptables"), bool) else " (iptables: false is the default for extra daemons)"
    if s.get("icc") is False and not iptables:
        yield doc.problem(
            at("icc"),
            f"dockerd refuses icc: false with iptables off{why_off}: icc: false works through iptables",
            "set iptables: true on this daemon (and false on the others) or drop icc",
        )
    if s.get("ip-masq") is True and not iptables:
        yield doc.problem(
            at("ip-masq"),
            f"dockerd ignores ip-masq with iptables off{why_off}",
            "masquerade the bridge's subnet on the host instead, or drop ip-masq",
        )

    # default-address-pools: networks, subnet sizes within them, IPv4 first
    pools = s.get("default-address-pools")
    if isinstance(pools, list):
        for j, pool in enumerate(pools):
            if not isinstance(pool, dict) or not isinstance(pool.get("base"), str):
                continue
            net, problem = _network(doc, at("default-address-pools", j, "base"), pool["base"], None, "pool base")
            if problem:
                yield problem
                continue
            if j == 0 and net.version != 4:
                yield doc.problem(
                    at("default-address-pools", j, "base"),
                    f"the first pool {net} is IPv6, but dockerd takes IPv4 subnets from the first pool",
                    "list an IPv4 pool first",
                )
            size = pool.get("size")
            if isinstance(size, int) and not isinstance(size, bool) and not net.prefixlen <= size <= net.max_prefixlen:
                yield doc.problem(
                    at("default-address-pools", j, "size"),
                    f"pool size {size} does not fit base {net}: size is the prefix length of each subnet cut from it",
                    f"use a size from {net.prefixlen} to {net.max_prefixlen}",
                )

    for sub, text in _strings(s.get("dns")) if isinstance(s.get("dns"), list) else []:
        if _ip(text) is None:
            yield doc.problem(at("dns") + sub, f"invalid IP address {text!r}", "write a bare address, e.g. 192.0.2.53")


def _state_checks(doc: Document, daemons: list) -> Iterator[Problem]:
    """data-root, exec-root and pidfile: each daemon needs its own (not equal, not nested).
    An explicit value is reported; the main daemon's defaults count even when it is not
    declared (the packaged docker.service uses them)."""
    named = [(i, dm) for i, dm in daemons if isinstance(dm.get("name"), str)]
    for key, (main_default, extra_default) in _STATE_KEYS.items():
        placed: list[tuple[str, str, tuple | None]] = []  # (normalized path, owner label, path of an explicit value)
        if not any(dm["name"] == MAIN_DAEMON for _, dm in named):
            placed.append((_state_path(main_default), "the main daemon's default", None))
        for i, dm in named:
            settings = _mapping(dm, "settings")
            explicit = settings.get(key) if isinstance(settings.get(key), str) else None
            default = main_default if dm["name"] == MAIN_DAEMON else extra_default.format(dm["name"])
            value = _state_path(explicit or default)
            here = ("docker", "daemons", i, "settings", key) if explicit else None
            for other, label, other_path in placed:
                if value == other or value.startswith(other + "/") or other.startswith(value + "/"):
                    at = here or other_path
                    if at is None:
                        continue
                    yield doc.problem(
                        at,
                        f"{key} {explicit or default} of daemon {dm['name']!r} collides with {other} of {label}",
                        f"every dockerd needs its own {key}",
                    )
                    break
            placed.append((value, f"daemon {dm['name']!r}", here))


def _iptables_checks(doc: Document, daemons: list) -> Iterator[Problem]:
    """One daemon at most manages iptables: every dockerd flushes and recreates the
    DOCKER chains when it starts, so two of them wipe each other's rules."""
    managers = []  # (index, name, explicitly true)
    for i, dm in daemons:
        settings = _mapping(dm, "settings")
        value = settings.get("iptables")
        if value is True or (value is None and dm.get("name") == MAIN_DAEMON):
            managers.append((i, dm.get("name"), value is True))
    if len(managers) < 2:
        return
    owner = next((m for m in managers if not m[2]), managers[0])
    for i, name, explicit in managers:
        if (i, name, explicit) != owner and explicit:
            yield doc.problem(
                ("docker", "daemons", i, "settings", "iptables"),
                f"daemon {name!r} and daemon {owner[1]!r} both manage iptables: every dockerd flushes the DOCKER chains when it starts, so restarting one drops the other's rules",
                "keep iptables on one daemon and set iptables: false on the others (the default for extra daemons)",
            )
