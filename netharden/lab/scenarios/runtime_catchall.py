"""runtime-catchall (incident 1): CoreOS on VMware. A runtime
``/run/systemd/network/00-.network`` matching every interface (``[Match] Name=*``,
``DHCP=yes``) sorted before everything else and took each new interface, docker's
bridge and veths included: new containers had no network, their veths sat in
"configuring" forever.

The docker-like step (shared with networkd-docker-race, see :func:`docker_like`) is
what dockerd's bridge driver does: ``docker0`` with a fixed 02:42 MAC and
172.17.0.1/16, UP; per container a veth pair created with its container end in the
container's namespace (``eth0``/``eth1``, 02:42:ac:11:00:0N, 172.17.0.N/16, UP) and its
host end (``veth1a2b3c4``, ``veth5d6e7f8``) in the host, made a port of docker0 and
brought UP. MACs are fixed so that states can be compared byte for byte.

Baseline (a naive host: nothing in /etc/systemd/network): the stray sits in the lab's
/run/systemd/network, networkd runs, the docker-like interfaces appear. What networkd
did to them is measured against a reference: the same docker-like step in plain
namespaces without networkd (MAC, MTU, flags, operstate, master, addresses, IPv6
address generation mode and every ``net.ipv4.conf.IF.*`` / ``net.ipv6.conf.IF.*``
sysctl). BREAKS when networkd claims them; on systemd 252 they sit in "configuring"
(DHCP forever) and networkd sets ``accept_ra`` 1 -> 0 and ``promote_secondaries``
0 -> 1 on each of them.

Profile: the lab runs the profile's own /etc/systemd/network and networkd.conf.d. A
veth stands in for the profile's first uplink (named to match its ``match.name`` glob,
with its ``match.mac`` or a documentation MAC 00:00:5e:00:53:0a) and exists when
networkd starts with the stray in place (the worst case: networkd started before the
quarantine could act), so the stray takes it. Then the rendered
``netharden-quarantine`` runs inside the lab's namespaces with its production paths
and its default globs (the profile's ``networkd.quarantine``), as
tests/test_quarantine_netns.py runs it and as its ``.path`` unit runs it when the file
is written; then the docker-like interfaces appear. HOLDS when they stay
``unmanaged`` and exactly as docker set them, and the uplink stand-in is managed by
the profile's own uplink file in its expected state. Two things the lab has to adapt,
said in the evidence:

- A broad uplink match carries ``Kind=!*`` (or ``Driver=!veth bridge ...`` before
  systemd 251): no virtual device passes it, so no veth could ever stand in. The lab's
  copy of the uplink file has that line replaced by ``MACAddress=`` of the stand-in
  (or just dropped when the match already has a MAC): the file still matches nothing
  but the NIC stand-in. Matches by ``driver`` or ``path`` cannot be emulated with a
  veth: the uplink is then not judged (the evidence says why).
- Expected state: "configured" for a static uplink; an uplink with DHCP or IPv6 RA
  stays "configuring" in the lab (no DHCP server, no router) and is accepted as such
  once its own file manages it and its static addresses are on it.
- The helper reloads networkd with ``networkctl reload`` over the lab's private bus.
  Rendered for a target before systemd 244 it queues ``systemctl try-restart
  --no-block systemd-networkd.service`` instead; the lab has no systemd, so a
  ``systemctl`` shim on the helper's PATH records the request and the lab restarts
  networkd the way systemd would.

Applies unless the profile has neither a quarantine nor unmanaged files. Decision for
a profile with ``networkd.quarantine: []`` and unmanaged files: it applies. The
``0-netharden-unmanaged-*`` files sort before ``00-.network`` and keep the container
interfaces unmanaged on their own, but nothing moves the stray, so it keeps the uplink
(00- sorts before 20-netharden-uplink-*): the profile's uplink settings never take
effect and the scenario FAILS with that evidence. The same holds for quarantine globs
that do not cover /run/systemd/network/00-.network.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...doctor.networkd_config import Assignment, parse_ini_located
from ..netns import NetworkdLab
from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result

ID = "runtime-catchall"
TITLE = "a stray runtime catch-all .network takes docker's bridge and veths"
INCIDENT = "incident-1"
STACK = "networkd"
HINT = (
    "networkd.quarantine must cover /run/systemd/network/00-.network (default /run/systemd/network/*.network); "
    "unmanaged.presets docker and veth keep the container interfaces off it"
)

STRAY_DIR = "/run/systemd/network"
STRAY_PATH = f"{STRAY_DIR}/00-.network"
STRAY = "[Match]\nName=*\n\n[Network]\nDHCP=yes\n"
SCRIPT = "netharden-quarantine"
QUARANTINE_DIR = "/run/netharden/quarantine"
NETWORK_DIR = "/etc/systemd/network"

# the docker-like step: dockerd's default bridge and two containers
BRIDGE = "docker0"
BRIDGE_MAC = "02:42:5e:00:53:01"
GATEWAY = "172.17.0.1/16"
# (host end, its MAC, container end, its MAC, container address)
VETHS = (
    ("veth1a2b3c4", "0a:5e:00:53:00:02", "eth0", "02:42:ac:11:00:02", "172.17.0.2/16"),
    ("veth5d6e7f8", "0a:5e:00:53:00:03", "eth1", "02:42:ac:11:00:03", "172.17.0.3/16"),
)
NAMES = (BRIDGE, *(v[0] for v in VETHS))
SETTLED = ("configuring", "configured", "unmanaged", "failed", "linger")

STANDIN_MAC = "00:00:5e:00:53:0a"  # RFC 7042 documentation unicast MAC
STANDIN_PEER = "nhuplink-p"


# ---------------------------------------------------------------------------
# the docker-like step and how interface state is read (shared with networkd-docker-race)


def docker_like(ctx: Context, host: Callable[[str], object], host_netns: str, ctr: str) -> None:
    """Set up docker0 and two containers the way dockerd's bridge driver does.
    ``host(script)`` runs a shell script in the host namespace; ``host_netns`` names it
    for ``ip link ... netns`` (a netns name or a PID); ``ctr`` is the containers' netns."""
    host(
        f"ip link add {BRIDGE} address {BRIDGE_MAC} type bridge\n"
        f"ip addr add {GATEWAY} dev {BRIDGE}\n"
        f"ip link set {BRIDGE} up\n"
    )
    ctx.run(
        ctr,
        "sh",
        "-ec",
        "".join(
            f"ip link add {inner} address {imac} type veth peer name {outer} address {omac} netns {host_netns}\n"
            for outer, omac, inner, imac, _ in VETHS
        ),
        check=True,
    )
    host("".join(f"ip link set {outer} master {BRIDGE} up\n" for outer, *_ in VETHS))
    ctx.run(
        ctr,
        "sh",
        "-ec",
        "".join(f"ip addr add {addr} dev {inner}\nip link set {inner} up\n" for _, _, inner, _, addr in VETHS),
        check=True,
    )


_SNAPSHOT = r"""ip -j -d link show
echo '#'
ip -j addr show
echo '#'
for i; do grep -H . /proc/sys/net/ipv4/conf/"$i"/* /proc/sys/net/ipv6/conf/"$i"/* 2>/dev/null; done
:
"""
LINK_FIELDS = ("master", "flags", "operstate", "addresses", "MAC", "MTU", "addrgenmode")


def snapshot(run: Callable[..., Any], names: tuple[str, ...] = NAMES) -> dict[str, dict[str, str]]:
    """name -> {field: value} of the link attributes and sysctls docker's interfaces
    have; ``run(*argv)`` runs a command in their namespace."""
    out = run("sh", "-c", _SNAPSHOT, "snapshot", *names).stdout
    links, addrs, sysctls = (out.split("\n#\n") + ["", ""])[:3]
    state: dict[str, dict[str, str]] = {}
    for link in json.loads(links or "[]"):
        if link["ifname"] in names:
            state[link["ifname"]] = {
                "MAC": link.get("address", ""),
                "MTU": str(link.get("mtu")),
                "flags": " ".join(sorted(link["flags"])),
                "operstate": link.get("operstate", ""),
                "master": link.get("master", ""),
                "addrgenmode": link.get("inet6_addr_gen_mode", ""),
            }
    for link in json.loads(addrs or "[]"):
        if link["ifname"] in state:
            state[link["ifname"]]["addresses"] = " ".join(
                sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []))
            )
    for line in sysctls.splitlines():
        path, sep, value = line.partition(":")
        parts = path.split("/")  # /proc/sys/net/ipv4/conf/IF/KEY
        if sep and len(parts) == 8 and parts[6] in state:
            state[parts[6]][".".join(parts[3:])] = value
    return state


def settle(snap: Callable[[], dict], timeout: float = 4.0, interval: float = 0.08, quiet: float = 0.25) -> dict:
    """Poll ``snap()`` until it has not changed for ``quiet`` seconds (or ``timeout``)."""
    last = snap()
    since = time.monotonic()
    deadline = since + timeout
    while True:
        time.sleep(interval)
        cur = snap()
        now = time.monotonic()
        if cur != last:
            last, since = cur, now
        elif now - since >= quiet or now > deadline:
            return cur


def _order(key: str) -> tuple[int, str]:
    return (LINK_FIELDS.index(key), "") if key in LINK_FIELDS else (len(LINK_FIELDS), key)


def changes(before: dict[str, str] | None, after: dict[str, str] | None) -> list[str]:
    """What differs between two snapshots of one interface, as short evidence items."""
    if before is None or after is None:
        return [] if before is after else ["appeared" if before is None else "disappeared"]
    items = []
    for key in sorted(set(before) | set(after), key=_order):
        a, b = before.get(key, ""), after.get(key, "")
        if a == b:
            continue
        if key in ("flags", "addresses"):
            old, new = set(a.split()), set(b.split())
            signs = [f"+{x}" for x in sorted(new - old)] + [f"-{x}" for x in sorted(old - new)]
            items.append(f"{key} " + " ".join(signs))
        else:
            items.append(f"{key} {a or 'none'} -> {b or 'none'}")
    return items


def sysctl_count(state: dict[str, dict[str, str]]) -> int:
    return sum(1 for fields in state.values() for key in fields if key.startswith("net."))


def lab_states(lab: NetworkdLab, names: tuple[str, ...] = NAMES, timeout: float = 5.0) -> dict[str, dict[str, str]]:
    """Wait until networkd has judged each link; its state file per link."""
    return {name: lab.wait_for(name, SETTLED, timeout=timeout) for name in names}


def admin(state: dict[str, str]) -> str:
    text = state.get("ADMIN_STATE", "unknown")
    return f"{text} ({state['NETWORK_FILE']})" if state.get("NETWORK_FILE") else text


def reference(ctx: Context) -> dict[str, dict[str, str]]:
    """The docker-like interfaces as docker leaves them: plain namespaces, no networkd."""
    with ctx.netns("ref-host") as ref, ctx.netns("ref-ctr") as ctr:
        docker_like(ctx, lambda script: ctx.run(ref, "sh", "-ec", script, check=True), ref, ctr)
        return settle(lambda: snapshot(lambda *argv: ctx.run(ref, *argv)))


def lab_host(lab: NetworkdLab) -> Callable[[str], object]:
    return lambda script: lab.run("sh", "-ec", script)


def lab_snapshot(lab: NetworkdLab) -> dict[str, dict[str, str]]:
    return settle(lambda: snapshot(lambda *argv: lab.run(*argv, check=False)))


def judge_containers(states: dict, ref: dict, after: dict) -> tuple[bool, list[str]]:
    """(all unmanaged and unchanged, evidence) for the docker-like interfaces."""
    ok, evidence = True, []
    for name in NAMES:
        diff = changes(ref.get(name), after.get(name))
        if states[name].get("ADMIN_STATE") != "unmanaged" or diff:
            ok = False
            evidence.append(f"{name}: {admin(states[name])}" + "".join(f"; {d}" for d in diff))
    if ok:
        evidence.append(
            f"{', '.join(NAMES)}: unmanaged; MAC, MTU, flags, master, addresses and "
            f"{sysctl_count(after)} sysctls as docker set them"
        )
    return ok, evidence


# ---------------------------------------------------------------------------
# the uplink stand-in


@dataclass
class StandIn:
    name: str
    mac: str
    file: str  # the uplink file's path on the target (= NETWORK_FILE)
    dynamic: bool  # DHCP or IPv6 RA: "configuring" is as far as the lab gets
    addresses: tuple[str, ...]
    note: str


def _valid_ifname(name: str) -> bool:
    return 0 < len(name) <= 15 and name not in (".", "..") and not re.search(r"[/:\s%]", name)


def _candidates(glob: str) -> list[str]:
    if glob.startswith("!"):
        return []
    base = re.sub(r"\[([^\]!^])[^\]]*\]", r"\1", glob).replace("?", "0")
    if not base.strip("*"):
        return ["nhuplink0"]
    return [base.replace("*", fill) for fill in ("0", "1", "9", "nh0")]


def _exclusions(text: str) -> list[Assignment]:
    """The [Match] assignments of an uplink file that no virtual device passes (``Kind=!*``,
    ``Driver=!...``), read by the doctor's INI reader (systemd's config_parse())."""
    return [
        a
        for a in parse_ini_located(text) or ()
        if a.section == "Match"
        and ((a.key, a.value) == ("Kind", "!*") or (a.key == "Driver" and a.value.startswith("!")))
    ]


def _edited(text: str, edits: list[tuple[int, int, str]]) -> str:
    """``text`` with each ``text[start:end]`` replaced (the ranges do not overlap)."""
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out += [text[pos:start], new]
        pos = end
    return "".join(out) + text[pos:]


def stand_in(ctx: Context, net: Path, run: Path | None = None) -> StandIn | str:
    """Derive the NIC stand-in for the profile's first uplink and adapt the lab's copy
    (``net``, or on the netplan stack ``run``: netplan's output for the lab's
    /run/systemd/network) of its file; or the reason why the uplink cannot be judged."""
    if not ctx.profile.uplinks:
        return "no uplink in the profile: only the container interfaces are judged"
    up = ctx.profile.uplinks[0]
    match = up.match
    if match.drivers or match.paths:
        what = f"driver {' '.join(match.drivers)}" if match.drivers else f"path {' '.join(match.paths)}"
        return f"uplink {up.name}: its match by {what} cannot be emulated with a veth: the uplink is not judged"
    taken = [g for group in ctx.profile.unmanaged for g in group.globs] + list(NAMES)
    if match.names:
        names = [c for glob in match.names for c in _candidates(glob)]
        names = [c for c in names if _valid_ifname(c) and any(fnmatch.fnmatchcase(c, g) for g in match.names)]
    else:
        names = ["nhuplink0"]
    names = [c for c in names if c != STANDIN_PEER and not any(fnmatch.fnmatchcase(c, g) for g in taken)]
    if not names:
        return f"uplink {up.name}: no interface name matches {' '.join(match.names)} outside the unmanaged globs"
    mac = match.macs[0] if match.macs else STANDIN_MAC
    base = f"20-netharden-uplink-{up.name}.network"
    path, target_dir = net / base, NETWORK_DIR
    if not path.is_file() and run is not None:
        from ...netplan_generate import GENERATED_DIR, generated_network

        base, target_dir = generated_network(up), GENERATED_DIR
        path = run / base
    if not path.is_file():
        return f"uplink {up.name}: {base} is not in the Plan"
    note = f"uplink {up.name}: veth {names[0]} ({mac}) stands in for the NIC"
    text = path.read_text()
    if target_dir != NETWORK_DIR:
        text, permanent = permanent_as_current(text)
        if permanent:
            path.write_text(text)
            note += f"; the lab's copy of {base} matches PermanentMACAddress= as MACAddress= (a veth has none)"
    removed = _exclusions(text)
    if removed:
        words = [f"{a.key}={a.value}" for a in removed]
        shown = " ".join(w if len(w.split()) <= 3 else " ".join(w.split()[:3]) + " ..." for w in words)
        edits = [(a.start, a.end, "") for a in removed]
        if not match.macs:
            edits.append((removed[0].header, removed[0].header, f"MACAddress={mac}\n"))
            note += f"; the lab's copy of {base} has {shown} (no virtual device passes it) replaced by MACAddress={mac}"
        else:
            note += f"; the lab's copy of {base} has {shown} dropped (its MACAddress= picks the NIC)"
        path.write_text(_edited(text, edits))
    return StandIn(names[0], mac, f"{target_dir}/{base}", up.dhcp != "no" or up.ipv6_accept_ra, up.addresses, note)


def permanent_as_current(text: str) -> tuple[str, bool]:
    """``text`` with each [Match] ``PermanentMACAddress=`` turned into ``MACAddress=``: netplan
    matches a NIC by its permanent address, which a veth stand-in does not have (networkd 252
    then never matches it: measured); a real NIC's permanent address is its MAC unless changed."""
    located = [a for a in parse_ini_located(text) or () if a.section == "Match" and a.key == "PermanentMACAddress"]
    edits = [(a.start, a.end, f"MACAddress={a.value}\n") for a in located]
    return (_edited(text, edits), True) if edits else (text, False)


def judge_uplink(lab: NetworkdLab, up: StandIn, timeout: float = 10.0, other: float = 2.0) -> tuple[bool, str]:
    """The stand-in managed by its own file in the expected state, with its static
    addresses. Gives up early when another file keeps it for ``other`` seconds (the
    helper's reload was long ago by then)."""
    wanted = {"configured", "configuring"} if up.dynamic else {"configured"}
    now = time.monotonic()
    deadline, foreign_since = now + timeout, None
    while True:
        state = lab.link_state(up.name)
        if state.get("NETWORK_FILE") == up.file and state.get("ADMIN_STATE") in wanted:
            break
        now = time.monotonic()
        foreign = state.get("NETWORK_FILE") not in (None, up.file) or state.get("ADMIN_STATE") == "unmanaged"
        foreign_since = (foreign_since or now) if foreign else None
        if now > deadline or (foreign_since and now - foreign_since > other) or not lab.networkd_running():
            return False, f"{up.name}: {admin(state)}, wanted {' or '.join(sorted(wanted))} with {up.file}"
        time.sleep(0.05)
    have = {ipaddress.ip_interface(a) for a in lab.addresses(up.name)}
    missing = [a for a in up.addresses if ipaddress.ip_interface(a) not in have]
    if missing:
        return False, f"{up.name}: {admin(state)} but {' '.join(missing)} missing"
    text = f"{up.name}: {admin(state)}"
    if state["ADMIN_STATE"] == "configuring":
        text += " (DHCP/RA wait for a server or router the lab does not run)"
    if up.addresses:
        text += f"; {' '.join(up.addresses)} on it"
    return True, text


# ---------------------------------------------------------------------------
# the scenario


def applies(ctx: Context) -> str | None:
    if not ctx.profile.quarantine and not ctx.profile.unmanaged:
        return "networkd.quarantine and unmanaged are empty: nothing in the profile guards against a runtime catch-all"
    return None


def _write_stray(lab: NetworkdLab) -> None:
    lab.root_path(STRAY_PATH).write_text(STRAY)


def baseline(ctx: Context) -> Result:
    ref = reference(ctx)
    empty = ctx.scratch("runtime-catchall-baseline")
    with ctx.netns("ctr") as ctr, NetworkdLab(empty, start=False) as lab:
        _write_stray(lab)
        lab.start()
        docker_like(ctx, lab_host(lab), str(lab.holder_pid), ctr)
        states = lab_states(lab)
        after = lab_snapshot(lab)
    evidence = [f"{STRAY_PATH} (Name=*, DHCP=yes) present, /etc/systemd/network empty; docker0 and 2 veths appear"]
    claimed = [n for n in NAMES if states[n].get("ADMIN_STATE") != "unmanaged"]
    for name in NAMES:
        diff = changes(ref.get(name), after.get(name))
        evidence.append(f"{name}: {admin(states[name])}" + "".join(f"; {d}" for d in diff))
    if claimed:
        return Result(BREAKS, evidence)
    return Result(
        NOT_REPRODUCIBLE,
        [
            f"baseline not reproducible on systemd {ctx.version}: the catch-all did not claim docker's interfaces",
            *evidence[1:],
        ],
    )


_SHIM = """#!/bin/sh
# netharden lab: systemd's stand-in; the lab carries out what is asked here
printf '%s\\n' "$*" >> "$NETHARDEN_LAB_SYSTEMCTL_LOG"
"""


def run_helper(ctx: Context, lab: NetworkdLab, helper: Path, scratch: Path) -> tuple[bool, list[str]]:
    """Run the rendered quarantine helper inside the lab (production paths, its own
    default globs); carry out a restart it queued through systemctl."""
    shim = scratch / "bin"
    shim.mkdir()
    (shim / "systemctl").write_text(_SHIM)
    (shim / "systemctl").chmod(0o755)
    log = scratch / "systemctl.log"
    done = lab.run(
        "sh",
        str(helper),
        check=False,
        env={"PATH": f"{shim}:/usr/sbin:/usr/bin:/sbin:/bin", "NETHARDEN_LAB_SYSTEMCTL_LOG": str(log)},
    )
    lines = [line.removeprefix(f"{SCRIPT}: ") for line in done.stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("left alone: ")]  # masks, empty files
    evidence = [f"{SCRIPT} (exit {done.returncode}): " + "; ".join(lines)]
    queued = log.read_text().splitlines() if log.exists() else []
    if any("restart" in q and "systemd-networkd" in q for q in queued):
        lab.restart()
        evidence.append(
            f"it queued 'systemctl {queued[-1]}' (target systemd {ctx.profile.systemd} < 244): "
            "the lab restarted networkd as systemd would"
        )
    return done.returncode == 0, evidence


def profile(ctx: Context) -> Result:
    scratch = ctx.scratch("runtime-catchall-profile")
    net = scratch / "network"
    shutil.copytree(ctx.network_dir(), net, symlinks=True)
    run = None
    if ctx.plan_generated is not None:  # the netplan stack: netplan's output, adapted like net
        run = scratch / "run-network"
        shutil.copytree(ctx.plan_generated, run)
    up = stand_in(ctx, net, run)
    evidence = [f"{STRAY_PATH} (Name=*, DHCP=yes) present when networkd starts with the profile's files"]
    evidence.append(up if isinstance(up, str) else up.note)
    ref = reference(ctx)
    ok = True
    with ctx.netns("ctr") as ctr, NetworkdLab(net, ctx.networkd_conf_dir(), start=False, run_network_dir=run) as lab:
        _write_stray(lab)
        if isinstance(up, StandIn):
            lab.ip("link", "add", up.name, "address", up.mac, "type", "veth", "peer", "name", STANDIN_PEER)
            lab.ip("link", "set", STANDIN_PEER, "up")
        lab.start()
        if isinstance(up, StandIn):
            evidence.append(f"before the quarantine: {up.name}: {admin(lab.wait_for(up.name, SETTLED, timeout=5))}")
        if ctx.profile.quarantine:
            helper_ok, lines = run_helper(ctx, lab, ctx.helper(SCRIPT), scratch)
            evidence += lines
            ok &= helper_ok
        else:
            evidence.append("networkd.quarantine is empty: no quarantine helper rendered")
        moved = not lab.root_path(STRAY_PATH).exists()
        evidence.append(f"{STRAY_PATH}: " + ("moved to " + QUARANTINE_DIR if moved else "still there"))
        docker_like(ctx, lab_host(lab), str(lab.holder_pid), ctr)
        states = lab_states(lab)
        after = lab_snapshot(lab)
        held, lines = judge_containers(states, ref, after)
        ok &= held
        evidence += lines
        if isinstance(up, StandIn):
            held, line = judge_uplink(lab, up)
            ok &= held
            evidence.append(line)
    return Result(HOLDS if ok else FAILS, evidence)
