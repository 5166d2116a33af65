"""Validation of a loaded profile: the JSON schema first, then semantic checks.

Every problem becomes one ``Problem`` with the position of the node at fault. Schema
errors are translated into plain messages (``unknown key 'brdges'`` + ``did you mean
'bridges'?``) instead of jsonschema's raw text. Semantic checks read the raw data
defensively (every access is type-checked), so they run even when the schema found
problems elsewhere and all problems are reported at once.
"""
from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import json
from functools import lru_cache
from typing import Any, Iterator

from . import mac as macs
from .presets import ALL as ALL_PRESETS, PRESETS
from .profile import DHCP_FAMILIES, dhcp_mode
from .problems import Problem, json_path
from .resources import read_text
from .yamlload import Document

RESERVED_IFNAMES = {"all": "reserved for /proc/sys/net/*/conf/all",
                    "default": "reserved for /proc/sys/net/*/conf/default",
                    "lo": "the loopback interface already has it"}


def schema_text() -> str:
    return read_text("schemas", "profile.schema.json")


@lru_cache(maxsize=1)
def _validator():
    import jsonschema
    schema = json.loads(schema_text())
    return jsonschema.Draft202012Validator(schema)


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
_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


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
    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {found[0]!r}?" if found else ""


def _has_control(value: Any) -> bool:
    return isinstance(value, str) and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def _schema_problems(doc: Document) -> Iterator[Problem]:
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
                yield doc.problem(path, f"missing required key {key!r}", prop.get("x-hint") or prop.get("description", ""), key=True)
        return
    if v == "type":
        wanted = val if isinstance(val, list) else [val]
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        yield doc.problem(path, f"expected {names}, got {_kind(inst)}", hint)
        return
    if v == "enum":
        shown = ", ".join("false" if x is False else "true" if x is True else str(x) for x in val)
        yield doc.problem(path, f"{_kind(inst)} is not one of: {shown}",
                          _closest(inst, [x for x in val if isinstance(x, str)]) or hint)
        return
    if v == "const":
        yield doc.problem(path, f"expected {val!r}, got {_kind(inst)}", hint)
        return
    if v == "pattern":
        title = schema.get("title", "value")
        if _has_control(inst):
            yield doc.problem(path, f"{title} contains a newline or control character",
                              "values end up in INI and shell text; remove the control characters")
        else:
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
        yield doc.problem(path, f"{schema.get('title', 'value')} is too {'long' if v == 'maxLength' else 'short'} ({len(inst)} characters; limit {val})")
        return
    yield doc.problem(path, err.message, hint)  # pragma: no cover - every keyword we use is handled above


# -------------------------------------------------------------------------- semantic
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


def _ip(value: str):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _iface(value: str):
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        return None


def _semantic_problems(doc: Document) -> Iterator[Problem]:
    data = doc.data if isinstance(doc.data, dict) else {}
    uplinks = _items(data, "uplinks")
    bridges = _items(data, "bridges")
    docker = data.get("docker") if isinstance(data.get("docker"), dict) else {}
    daemons = _items(docker, "daemons")

    yield from _unique_names(doc, "uplinks", uplinks, "uplink")
    yield from _unique_names(doc, "bridges", bridges, "bridge")
    yield from _unique_names(doc, ("docker", "daemons"), daemons, "docker daemon")

    # uplinks without a match use their name as the interface name
    for i, up in uplinks:
        name = up.get("name")
        if "match" not in up and isinstance(name, str) and len(name) > 15:
            yield doc.problem(("uplinks", i, "name"),
                              f"uplink {name!r} has no 'match', so its name is the interface name, but it is longer than 15 characters",
                              "add match: {name: [...]} or use a shorter name")

    # bridge names the kernel refuses or that an unmanaged rule would swallow
    unmanaged = data.get("unmanaged") if isinstance(data.get("unmanaged"), dict) else {}
    preset_names = unmanaged.get("presets", list(ALL_PRESETS))
    globs: list[tuple[str, str]] = []
    if isinstance(preset_names, list):
        for preset in preset_names:
            if preset in PRESETS:
                globs += [(g, f"unmanaged preset {preset!r}") for g in PRESETS[preset][0]]
    for _, g in _strings(unmanaged.get("names")):
        globs.append((g, "unmanaged.names"))
    for i, br in bridges:
        name = br.get("name")
        if not isinstance(name, str):
            continue
        if name in RESERVED_IFNAMES:
            yield doc.problem(("bridges", i, "name"), f"the kernel refuses the interface name {name!r} ({RESERVED_IFNAMES[name]})",
                              "pick another name, e.g. 'dockerbr0'")
            continue
        for glob, source in globs:
            if fnmatch.fnmatchcase(name, glob):
                yield doc.problem(("bridges", i, "name"),
                                  f"bridge {name!r} matches {glob!r} of {source}, so systemd-networkd would leave it unconfigured",
                                  "rename the bridge (e.g. 'dockerbr' + purpose) or drop that preset/glob")
                break

    # MACs
    seen_macs: dict[str, tuple] = {}
    for i, br in bridges:
        value = br.get("mac")
        if isinstance(value, str) and value != "stable" and macs.is_valid(value):
            yield from _mac_checks(doc, ("bridges", i, "mac"), value, "use 'stable' or a unicast MAC such as 02:00:5e:10:00:01")
            norm = value.lower()
            if norm in seen_macs:
                yield doc.problem(("bridges", i, "mac"), f"MAC {value} is already used by {json_path(seen_macs[norm])}",
                                  "every bridge needs its own MAC; use 'stable'")
            seen_macs.setdefault(norm, ("bridges", i, "mac"))
    for i, up in uplinks:
        match = up.get("match") if isinstance(up.get("match"), dict) else {}
        for sub, value in _strings(match.get("mac")):
            if macs.is_valid(value):
                yield from _mac_checks(doc, ("uplinks", i, "match", "mac") + sub, value,
                                       "match the NIC's own unicast MAC, as 'ip link show' prints it")

    # addresses, overlaps, gateways, DNS
    yield from _address_checks(doc, uplinks, bridges, daemons)

    # daemons: bridges must exist, sockets and bridges must not be shared
    bridge_names = [br.get("name") for _, br in bridges if isinstance(br.get("name"), str)]
    hosts: dict[str, tuple] = {}
    attached: dict[str, tuple] = {}
    for i, dm in daemons:
        base = ("docker", "daemons", i)
        ref = dm.get("bridge")
        if isinstance(ref, str):
            if ref not in bridge_names:
                hint = _closest(ref, bridge_names) or ("define it under 'bridges'" if not bridge_names
                                                      else f"known bridges: {', '.join(bridge_names)}")
                yield doc.problem(base + ("bridge",), f"daemon {dm.get('name')!r} uses bridge {ref!r}, which is not defined in 'bridges'", hint)
            elif ref in attached:
                yield doc.problem(base + ("bridge",), f"bridge {ref!r} is already used by {json_path(attached[ref])}",
                                  "two dockerd instances cannot share one bridge; give each its own")
            attached.setdefault(ref, base + ("bridge",))
        host = dm.get("host")
        if isinstance(host, str):
            if host in hosts:
                yield doc.problem(base + ("host",), f"socket {host!r} is already used by {json_path(hosts[host])}")
            hosts.setdefault(host, base + ("host",))
        name = dm.get("name")
        if isinstance(name, str) and name != "docker" and not isinstance(host, str):
            yield doc.problem(base, f"extra daemon {name!r} needs its own 'host' socket",
                              f"add host: unix:///var/run/docker-{name}.sock")

    # networkd: masks must not hide what netharden itself writes
    networkd = data.get("networkd") if isinstance(data.get("networkd"), dict) else {}
    masks = networkd.get("mask")
    if isinstance(masks, list):
        for i, name in enumerate(masks):
            if isinstance(name, str) and "netharden" in name:
                yield doc.problem(("networkd", "mask", i), f"{name!r} looks like a file netharden writes; masking it would disable the profile")

    # IPv6 needs an MTU of at least 1280
    for key, entries in (("uplinks", uplinks), ("bridges", bridges)):
        for i, item in entries:
            mtu = item.get("mtu")
            if isinstance(mtu, int) and not isinstance(mtu, bool) and mtu < 1280:
                v6 = [a for _, text in _strings(item.get("addresses")) if (a := _iface(text)) is not None and a.version == 6]
                if v6 or (key == "uplinks" and 6 in _dhcp_families(item)):
                    yield doc.problem((key, i, "mtu"), f"MTU {mtu} is below 1280, the minimum for IPv6, but the interface uses IPv6",
                                      "raise the MTU to at least 1280 or drop the IPv6 configuration")


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
            yield doc.problem(base + (i, "name"), f"duplicate {what} name {name!r} (first at {json_path(base + (first[name], 'name'))})")
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
                    yield doc.problem(path, f"invalid address {text!r}", "write an address with its prefix length, e.g. 192.0.2.10/24")
                    continue
                net = addr.network
                if addr.version == 4 and net.prefixlen < 31 and addr.ip in (net.network_address, net.broadcast_address):
                    which = "network" if addr.ip == net.network_address else "broadcast"
                    suggestion = f"{net.network_address + 1}/{net.prefixlen}"
                    yield doc.problem(path, f"{text} is the {which} address of {net}, not a host address", f"did you mean {suggestion}?")
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
                        yield doc.problem(path, f"{text} on {owner} overlaps {other} on {other_owner} ({json_path(other_path)})",
                                          "each interface needs its own subnet; overlapping subnets make routing ambiguous")
                placed.append((owner, addr, path))
            if key == "uplinks":
                yield from _gateway_checks(doc, i, item, own)
                for sub, text in _strings(item.get("dns")):
                    if _ip(text) is None:
                        yield doc.problem(("uplinks", i, "dns") + sub, f"invalid IP address {text!r}", "write a bare address, e.g. 192.0.2.53")
    # dockerd's own bridge subnet (bip) must not collide with the host's networks
    for i, dm in daemons:
        settings = dm.get("settings")
        bip = settings.get("bip") if isinstance(settings, dict) else None
        if isinstance(bip, str) and (addr := _iface(bip)) is not None:
            for other_owner, other, other_path in placed:
                if other.version == addr.version and other.network.overlaps(addr.network):
                    yield doc.problem(("docker", "daemons", i, "settings", "bip"),
                                      f"docker bridge subnet {bip} overlaps {other} on {other_owner} ({json_path(other_path)})",
                                      "pick a bip outside every host subnet")


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
            yield doc.problem(path, f"a second IPv{gw.version} gateway (first at {json_path(families[gw.version])})",
                              "give at most one gateway per address family")
            continue
        families[gw.version] = path
        if gw.version == 6 and gw.is_link_local:
            continue
        same = [a for a in own if a.version == gw.version]
        if same:
            if not any(gw in a.network for a in same):
                nets = ", ".join(str(a) for a in same)
                yield doc.problem(path, f"gateway {gw} is outside every IPv{gw.version} address of uplink {up.get('name')!r} ({nets})",
                                  "the gateway must be on a directly connected subnet")
            elif any(gw == a.ip for a in same):
                yield doc.problem(path, f"gateway {gw} is the uplink's own address")
        elif gw.version not in dhcp_families:
            yield doc.problem(path, f"gateway {gw} is unreachable: uplink {up.get('name')!r} has no IPv{gw.version} address and no DHCP for it",
                              f"add an IPv{gw.version} address on the gateway's subnet, or enable dhcp")
