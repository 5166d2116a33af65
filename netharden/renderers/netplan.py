"""The netplan stack (``platform.stack: netplan``, Ubuntu's default): uplinks and bridges as
ONE netplan YAML file, ``/etc/netplan/60-netharden.yaml`` (mode 0600, as netplan demands),
which netplan's generator renders to systemd-networkd files in /run/systemd/network at
boot and on ``netplan generate``. The container-interface guards stay networkd files
(renderers/networkd.py ``guards``: 0-netharden-unmanaged-*.network, .link, masks,
networkd.conf.d) and the quarantine, since netplan renders to networkd there.

Netdef ids and which definition wins (measured with netplan 0.106, ``netplan generate
--root-dir``; tests/test_netplan.py):

* netplan writes one ``/run/systemd/network/10-netplan-<ID>.network`` per netdef, and
  systemd-networkd takes the FIRST matching ``.network`` file by file name.
* Two files that define the SAME id are merged: mappings key by key (cloud-init's
  ``match: {macaddress}`` and ours ``match: {name}`` become one [Match]), scalars of the
  later file win, and sequences are APPENDED (addresses, nameservers, routes of both
  files end up in one .network). The same id as cloud-init's would leak its addresses,
  DNS servers and routes into the profile's uplink. So netharden never shares an id.
* Uplink ids are ``0-netharden-<uplink name>``: ``10-netplan-0-netharden-lan.network``
  sorts before every netdef whose id starts with a letter or another digit (cloud-init's
  ``eth0`` gives ``10-netplan-eth0.network``), so networkd takes the profile's uplink
  first and cloud-init's definition of the same NIC never applies.
* Bridge ids are the bridge names (netplan creates a bridge with its id as kernel name):
  ``10-netplan-<bridge>.netdev``/``.network``. The uplinks' files sort before the
  bridges', and netplan cannot exclude virtual interfaces from a match (networkd's
  ``Kind=!*``), so validation refuses an uplink name glob (without a MAC) that matches
  a bridge of the profile or ``lo``. A MAC match is safe: netplan matches the permanent
  MAC, which bridges, veths and VLANs do not have.

``conflicts`` (pure; the doctor's ``netplan-conflict`` check runs it over a host's
/lib/netplan, /etc/netplan and /run/netplan) finds what would still defeat that rule:
another file that defines one of netharden's ids (netplan would merge it into ours),
hides our file (a same-named file in a directory netplan prefers), renames the NIC away
from the uplink's match (``set-name``), or defines a netdef whose generated file sorts
before ours and can match the same NIC, or that netplan cannot parse.

What netplan's match cannot say (validation refuses it on this stack): a udev device path
(``match.path``), several name globs or several MACs in one uplink.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..plan_model import PHASE_NETWORKD, Action, File, Plan
from ..profile import Bridge, Profile, Uplink
from ..templating import render as render_template
from ..validate import interface
from . import networkd

NETPLAN_FILE = "/etc/netplan/60-netharden.yaml"
# where netplan reads YAML, in rising priority: a file name in /run hides /etc's and /lib's
NETPLAN_DIRS = ("/lib/netplan", "/etc/netplan", "/run/netplan")
GENERATED_DIR = "/run/systemd/network"
UPLINK_PREFIX = "0-netharden-"
DEVICE_TYPES = ("ethernets", "bridges", "bonds", "vlans", "wifis", "tunnels", "vrfs", "modems", "nm-devices")


def netdef_id(item: Uplink | Bridge) -> str:
    """The netplan id of an uplink (``0-netharden-<name>``) or a bridge (its name)."""
    if isinstance(item, Bridge):
        return item.name
    return UPLINK_PREFIX + item.name


def generated_network(item: Uplink | Bridge) -> str:
    """The networkd file netplan 0.106 generates for the uplink or bridge."""
    return f"{GENERATED_DIR}/10-netplan-{netdef_id(item)}.network"


DHCP = {"yes": (True, True), "no": (False, False), "ipv4": (True, False), "ipv6": (False, True)}


@dataclass(frozen=True)
class _UplinkDef:
    id: str
    uplink: Uplink
    match: Any
    dhcp4: bool
    dhcp6: bool
    why: str


@dataclass(frozen=True)
class _BridgeDef:
    id: str
    bridge: Bridge
    has_ipv6: bool
    why: str


def render(profile: Profile, plan: Plan) -> None:
    """The networkd guards and the quarantine (as on the networkd stack), the netplan file
    and its ``netplan generate`` before networkd's reload."""
    networkd.guards(profile, plan, (NETPLAN_FILE,) if profile.uplinks or profile.bridges else ())
    if profile.uplinks or profile.bridges:
        plan.add(netplan_file(profile.uplinks, profile.bridges))
        plan.add(GENERATE)


GENERATE = Action(
    "netplan-generate",
    ("netplan", "generate"),
    f"render {NETPLAN_FILE} to networkd files in {GENERATED_DIR} (networkd reloads them next)",
    phase=PHASE_NETWORKD - 1,
    triggers=(NETPLAN_FILE,),
)


@lru_cache(maxsize=256)
def netplan_file(uplinks: tuple[Uplink, ...], bridges: tuple[Bridge, ...]) -> File:
    ups = tuple(
        _UplinkDef(
            netdef_id(up),
            up,
            up.match,
            *DHCP[up.dhcp],
            f"Uplink {up.name}: networkd reads it as {posixpath.basename(generated_network(up))}, "
            "before any netdef named after an interface",
        )
        for up in uplinks
    )
    brs = tuple(
        _BridgeDef(
            netdef_id(br),
            br,
            any(interface(a).version == 6 for a in br.addresses),
            f"Bridge {br.name} with its MAC pinned ("
            + ("derived from host and bridge name" if br.mac_source == "stable" else "explicit")
            + ")",
        )
        for br in bridges
    )
    guards = ("config",) + (("incident-3",) if bridges else ())
    why = "Uplinks and bridges for netplan, which renders them to systemd-networkd"
    text = render_template("netplan/netharden.yaml.j2", guards=guards, why=why, uplinks=ups, bridges=brs)
    return File(path=NETPLAN_FILE, content=text, mode=0o600, guards=guards, why=why)


def where(profile: Profile) -> list[str]:
    """``netharden explain``'s lines: where each uplink and bridge goes on the netplan stack."""
    if not (profile.uplinks or profile.bridges):
        return ["uplinks and bridges: none (only the networkd guards are written)"]
    out = [f"uplinks and bridges go to {NETPLAN_FILE}; netplan generate renders them to {GENERATED_DIR}:"]
    for up in profile.uplinks:
        out.append(
            f"    uplink {up.name}: network.ethernets.{netdef_id(up)} -> {generated_network(up)} "
            "(sorts before cloud-init's 10-netplan-<interface>.network: networkd takes it first)"
        )
    for br in profile.bridges:
        out.append(
            f"    bridge {br.name}: network.bridges.{netdef_id(br)} -> {generated_network(br)} "
            f"and {generated_network(br)[: -len('.network')]}.netdev (MAC {br.mac})"
        )
    return out


# ---------------------------------------------------------------- conflicts


@dataclass(frozen=True)
class Conflict:
    """Another netplan file that defeats the profile's netplan file."""

    path: str  # the other file
    netdef: str  # its netdef (``ethernets.eth0``), or "" for the whole file
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _load(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def netdefs(doc: Any) -> dict[str, tuple[str, dict]]:
    """id -> (device type, definition) of a netplan document (malformed parts skipped)."""
    net = doc.get("network") if isinstance(doc, dict) else None
    out: dict[str, tuple[str, dict]] = {}
    if not isinstance(net, dict):
        return out
    for kind in DEVICE_TYPES:
        section = net.get(kind)
        if isinstance(section, dict):
            for key, value in section.items():
                out[str(key)] = (kind, value if isinstance(value, dict) else {})
    return out


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _match(netdef_id: str, kind: str, definition: dict) -> dict[str, list[str]]:
    """name/macaddress/driver of a netdef's match (a netdef without one matches its id)."""
    match = definition.get("match")
    if not isinstance(match, dict) or kind != "ethernets":
        return {"name": [netdef_id]}
    return {
        "name": _words(match.get("name")),
        "macaddress": [m.lower() for m in _words(match.get("macaddress"))],
        "driver": _words(match.get("driver")),
    }


def _globs_overlap(a: list[str], b: list[str]) -> bool:
    return any(x == y or fnmatch.fnmatchcase(x, y) or fnmatch.fnmatchcase(y, x) for x in a for y in b)


def _can_match_same(a: dict[str, list[str]], b: dict[str, list[str]]) -> bool:
    """Whether two matches can select the same NIC (a key only one of them has says nothing)."""
    for key in ("name", "macaddress", "driver"):
        if a.get(key) and b.get(key) and not _globs_overlap(a[key], b[key]):
            return False
    return True


def _describe(match: dict[str, list[str]]) -> str:
    return ", ".join(f"{k} {' '.join(v)}" for k, v in match.items() if v) or "every interface"


def effective_files(files: Mapping[str, str]) -> dict[str, str]:
    """The files netplan reads, by path, in its order: *.yaml of /lib, /etc and /run
    netplan, a name in a later directory hiding the same name in an earlier one, sorted
    by file name."""
    chosen: dict[str, tuple[int, str]] = {}
    for path in files:
        folder, name = posixpath.split(path)
        if folder in NETPLAN_DIRS and name.endswith(".yaml"):
            rank = NETPLAN_DIRS.index(folder)
            if name not in chosen or chosen[name][0] < rank:
                chosen[name] = (rank, path)
    return {chosen[name][1]: files[chosen[name][1]] for name in sorted(chosen)}


def conflicts(
    ours: str | Mapping[str, Any], others: Mapping[str, str], ours_path: str = NETPLAN_FILE
) -> list[Conflict]:
    """The conflicts of the profile's netplan document ``ours`` (its text or parsed data)
    with a host's other netplan files (``others``: path -> text, as netplan's directories
    hold them; ``ours_path`` itself is ignored there), in file order."""
    doc = _load(ours) if isinstance(ours, str) else ours
    own = netdefs(doc)
    own_matches = {i: _match(i, kind, d) for i, (kind, d) in own.items()}
    uplinks = {i for i, (kind, _) in own.items() if kind == "ethernets"}
    name = posixpath.basename(ours_path)
    found: list[Conflict] = []
    considered = {p: t for p, t in others.items() if p != ours_path}
    for path in considered:
        folder, base = posixpath.split(path)
        if (
            base == name
            and folder in NETPLAN_DIRS
            and NETPLAN_DIRS.index(folder) > NETPLAN_DIRS.index(posixpath.dirname(ours_path))
        ):
            found.append(
                Conflict(
                    path,
                    "",
                    f"has the same name as {ours_path} in a directory netplan prefers, so "
                    "netplan never reads the profile's file",
                )
            )
    for path, text in effective_files(considered).items():
        if posixpath.basename(path) == name:
            continue
        try:
            other = _load(text)
        except Exception as exc:  # yaml.YAMLError, or a value PyYAML cannot build
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            found.append(
                Conflict(
                    path,
                    "",
                    f"is not valid YAML ({first}): netplan generate fails on it, "
                    "so no netplan file (the profile's included) is rendered",
                )
            )
            continue
        later = posixpath.basename(path) > name
        for other_id, (kind, definition) in netdefs(other).items():
            label = f"network.{kind}.{other_id}"
            if other_id in own:
                own_kind = own[other_id][0]
                effect = "its scalars override the profile's" if later else "the profile's scalars override its"
                found.append(
                    Conflict(
                        path,
                        label,
                        (
                            f"defines {label}, which the profile's netplan file defines too ({own_kind}): netplan merges "
                            f"the two ({effect}, and its addresses, nameservers and routes are added to the profile's)"
                            + (
                                ""
                                if kind == own_kind
                                else "; netplan refuses a definition that changes the device type"
                            )
                        ),
                    )
                )
                continue
            theirs = _match(other_id, kind, definition)
            set_name = definition.get("set-name")
            for up in sorted(uplinks):
                mine = own_matches[up]
                if not _can_match_same(mine, theirs):
                    continue
                # the NIC is ours when their match says so by a key both have (a MAC-only
                # set-name on a multi-NIC host names another NIC as often as ours)
                same_nic = any(mine.get(k) and theirs.get(k) for k in ("name", "macaddress"))
                if (
                    isinstance(set_name, str)
                    and kind == "ethernets"
                    and same_nic
                    and mine.get("name")
                    and not any(fnmatch.fnmatchcase(set_name, g) for g in mine["name"])
                ):
                    found.append(
                        Conflict(
                            path,
                            label,
                            (
                                f"{label} renames the NIC it matches ({_describe(theirs)}) to {set_name!r} (set-name), "
                                f"which the profile's uplink {up} (match {_describe(mine)}) no longer matches"
                            ),
                        )
                    )
                elif f"10-netplan-{other_id}.network" < f"10-netplan-{up}.network" and kind == "ethernets":
                    found.append(
                        Conflict(
                            path,
                            label,
                            (
                                f"{label} generates 10-netplan-{other_id}.network, which sorts before the profile's "
                                f"10-netplan-{up}.network and can match the same NIC ({_describe(theirs)}): "
                                "systemd-networkd takes the first matching file"
                            ),
                        )
                    )
    return found
