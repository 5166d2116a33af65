"""stale-vxlan (incident 4): Docker Swarm overlays failed with "error creating VXLAN
interface: file exists": dockerd had left dead ``vx-*`` devices behind (DOWN, no
master), and the overlay could no longer start on that host.

Replay of what Swarm's overlay driver does (libnetwork ``createVxlan`` +
``setupSubnetSandbox``): in the host namespace it creates ``vx-<vni %06x>-<network
id[:5]>`` through netlink (RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL, kind vxlan, the
VNI, dstport 4789, learning, proxy, l2miss, l3miss, MTU 1450), moves it into the
overlay's namespace and makes it a port of the overlay bridge there. The netlink call
is made here the same way (a stdlib snippet run inside the namespace), so the errno
Swarm would see is measured, not inferred from ``ip``'s text.

Which conflict gives EEXIST (measured on kernel 6.18, and again at every run): a
leftover with the same NAME (what Swarm hits: the same network comes back under the
same name and VNI) -> "File exists"; a leftover with the same VNI and dstport under
another name -> also EEXIST (the kernel's extack: "A VXLAN device with the specified
VNI already exists"); the baseline's evidence says what this kernel did.

The "host" namespace holds two leftovers (DOWN, no master), two devices in use (one
UP, one port of a bridge, like Swarm's host-mode overlay) and a veth named like the
pattern. Baseline (no collector): Swarm's create fails. Profile: the rendered
collector run exactly as the rendered unit's ``ExecStart=`` runs it (mode, pattern),
with its state and textfile directories in scratch space, twice (a device is acted on
only when it was already stale at the previous run); then Swarm's steps again.
Mode ``remove`` holds when exactly the leftovers are gone, everything else is
unchanged and Swarm's steps succeed. Mode ``report`` promises reporting only: it holds
when it reports exactly the leftovers (metric value, log) and changes nothing; its
evidence says that creation still fails and that mode ``remove`` is the fix. A pattern
that does not match Swarm's names removes/reports nothing: FAILS (the evidence says so).
No networkd runs here: the outcome depends on the kernel, not on the systemd version.
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result

ID = "stale-vxlan"
TITLE = 'stale vx-* devices block a Swarm overlay ("file exists")'
INCIDENT = "incident-4"
STACK = None  # every stack
HINT = "set vxlan_gc.mode: remove (and a vxlan_gc.pattern that matches Swarm's vx-<vni>-<id> devices)"

SCRIPT = "netharden-vxlan-gc"
SERVICE = "/etc/systemd/system/netharden-vxlan-gc.service"
METRIC = "netharden_vxlan_gc.prom"
PORT = 4789
MTU = 1450  # Swarm's default overlay MTU (1500 - 50)


def swarm_name(vni: int, network_id: str) -> str:
    """libnetwork's generateVxlanName: vx-%06x-<network id[:5]>."""
    return f"vx-{vni:06x}-{network_id[:5]}"


# the overlay Swarm is about to create again, and what the host holds
VNI, NETWORK_ID = 4097, "q1w2e3r4t5y6u7i8o9p0a1s2d"
NAME = swarm_name(VNI, NETWORK_ID)  # vx-001001-q1w2e
STALE = {NAME: VNI, swarm_name(4098, "r3t4yzzzzz"): 4098}  # leftovers: DOWN, no master
UP_DEV = swarm_name(4099, "u5i6ozzzzz")  # in use: UP
PORT_DEV = swarm_name(4100, "p7a8szzzzz")  # in use: port of a bridge (Swarm's host mode)
PORT_BRIDGE = f"ov-{4100:06x}-p7a8s"  # libnetwork's generateBridgeName
VETH = ("vx-veth0", "vx-veth1")  # named like the pattern, but no vxlan
OTHER_NAME = swarm_name(VNI, "zzzzz")  # same VNI under another name
OTHER_VNI = 0xF001  # same name with another VNI


def applies(ctx: Context) -> str | None:
    if ctx.profile.vxlan_gc.mode == "off":
        return "vxlan_gc.mode is off: no stale VXLAN collector rendered"
    return None


# --- netlink: the call Swarm makes (vishvananda/netlink LinkAdd of a netlink.Vxlan) -------------

_NL_CREATE = r"""
import json, os, socket, struct, sys
def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("HH", n, t) + payload + b"\0" * (-n % 4)
out = []
for name, vni, port, mtu in json.loads(sys.argv[1]):
    data = (attr(1, struct.pack("I", vni)) + attr(7, b"\1") + attr(11, b"\1") + attr(13, b"\1")
            + attr(14, b"\1") + attr(15, struct.pack("!H", port)))
    linkinfo = attr(1, b"vxlan\0") + attr(2, data)
    body = struct.pack("BxHiII", 0, 0, 0, 0, 0) + attr(3, name.encode() + b"\0") + attr(4, struct.pack("I", mtu)) \
        + attr(18, linkinfo)
    msg = struct.pack("IHHII", 16 + len(body), 16, 0x1 | 0x4 | 0x200 | 0x400, 1, 0) + body
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        s.setsockopt(270, 11, 1)   # NETLINK_EXT_ACK: the kernel's own message
        s.setsockopt(270, 10, 1)   # NETLINK_CAP_ACK: the error echoes only our header
    except OSError:
        pass
    s.sendto(msg, (0, 0))
    reply = s.recv(65536)
    s.close()
    length, kind, flags = struct.unpack_from("IHH", reply)
    err = -struct.unpack_from("i", reply, 16)[0] if kind == 2 else 0
    text = ""
    if flags & 0x200:                  # NLM_F_ACK_TLVS
        off = 16 + 4 + 16
        while off + 4 <= length:
            n, t = struct.unpack_from("HH", reply, off)
            if n < 4:
                break
            if t == 1:                 # NLMSGERR_ATTR_MSG
                text = reply[off + 4:off + n].split(b"\0")[0].decode()
            off += (n + 3) & ~3
    out.append({"errno": err, "error": os.strerror(err) if err else "", "extack": text})
print(json.dumps(out))
"""


def _create(ctx: Context, ns: str, *specs: tuple[str, int]) -> list[dict]:
    """Create VXLAN devices the way Swarm does, in ``ns``; one result per device:
    {"errno": 0 | N, "error": strerror, "extack": the kernel's message or ""}."""
    arg = json.dumps([(name, vni, PORT, MTU) for name, vni in specs])
    proc = ctx.run(ns, sys.executable, "-I", "-S", "-c", _NL_CREATE, arg, check=True)
    return json.loads(proc.stdout)


def _failure(res: dict) -> str:
    return res["error"] + (f" ({res['extack']})" if res["extack"] else "")


# --- the host namespace ---------------------------------------------------------------------


def _ip(ctx: Context, ns: str, *args: str) -> None:
    ctx.run(ns, "ip", *args, check=True)


def _populate(ctx: Context, ns: str) -> None:
    """Leftovers (DOWN, no master), devices in use and a veth named like the pattern."""
    results = _create(ctx, ns, *STALE.items(), (UP_DEV, 4099), (PORT_DEV, 4100))
    bad = [f"{name}: {_failure(r)}" for name, r in zip([*STALE, UP_DEV, PORT_DEV], results, strict=True) if r["errno"]]
    if bad:
        raise RuntimeError("this kernel cannot create the VXLAN devices: " + "; ".join(bad))
    _ip(ctx, ns, "link", "set", UP_DEV, "up")
    _ip(ctx, ns, "link", "add", PORT_BRIDGE, "type", "bridge")
    _ip(ctx, ns, "link", "set", PORT_DEV, "master", PORT_BRIDGE)
    _ip(ctx, ns, "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1])


def _links(ctx: Context, ns: str) -> dict[str, tuple]:
    """name -> (ifindex, kind, up, master, VNI), from ``ip -j -d link`` (not the script's parser)."""
    out = {}
    for link in json.loads(ctx.run(ns, "ip", "-j", "-d", "link", "show", check=True).stdout):
        info = link.get("linkinfo", {})
        out[link["ifname"]] = (
            link["ifindex"],
            info.get("info_kind"),
            "UP" in link["flags"],
            link.get("master"),
            info.get("info_data", {}).get("id"),
        )
    return out


def _host_evidence() -> str:
    return (
        f"host namespace: leftovers {', '.join(f'{n} (VNI {v})' for n, v in STALE.items())} DOWN without master; "
        f"in use: {UP_DEV} UP, {PORT_DEV} port of {PORT_BRIDGE}; {VETH[0]} is a veth"
    )


def _swarm_create_text() -> str:
    return f"Swarm's create {NAME} (netlink, VNI {VNI}, dstport {PORT})"


def baseline(ctx: Context) -> Result:
    with ctx.netns("vxh") as ns:
        _populate(ctx, ns)
        swarm, same_name, same_vni = _create(ctx, ns, (NAME, VNI), (NAME, OTHER_VNI), (OTHER_NAME, VNI))
    evidence = [_host_evidence()]
    measured = [
        f"same name {NAME}, another VNI {OTHER_VNI}: " + (_failure(same_name) if same_name["errno"] else "created"),
        f"another name {OTHER_NAME}, same VNI {VNI} + dstport {PORT}: "
        + (_failure(same_vni) if same_vni["errno"] else "created"),
    ]
    kernel = platform.release()
    if swarm["errno"]:
        evidence.append(
            f"no collector: {_swarm_create_text()}: {_failure(swarm)} (errno {swarm['errno']}; Swarm "
            f'logs "error creating vxlan interface: {swarm["error"].lower()}")'
        )
        evidence.append(f"which conflict, on kernel {kernel}: " + "; ".join(measured))
        return Result(BREAKS, evidence)
    evidence.append(
        f"baseline not reproducible on kernel {kernel}: {_swarm_create_text()} succeeded next to the leftover {NAME}"
    )
    evidence.append("; ".join(measured))
    return Result(NOT_REPRODUCIBLE, evidence)


# --- the profile's collector ----------------------------------------------------------------


class Collector:
    """The rendered helper with the rendered unit's ExecStart= arguments; only the state
    and textfile directories point into scratch space."""

    def __init__(self, ctx: Context):
        line = next((x for x in ctx.path(SERVICE).read_text().splitlines() if x.startswith("ExecStart=")), None)
        if line is None:
            raise RuntimeError(f"{SERVICE} has no ExecStart=")
        argv = shlex.split(line.removeprefix("ExecStart=").lstrip("-@:+!"))
        self.script = ctx.helper(SCRIPT)
        if ctx.path(argv[0]) != self.script:
            raise RuntimeError(f"{SERVICE} runs {argv[0]}, not the rendered {SCRIPT}")
        if len(argv[1:]) % 2:
            raise RuntimeError(f"{SERVICE}: ExecStart= arguments are not option/value pairs: {argv[1:]}")
        self.opts = dict(zip(argv[1::2], argv[2::2], strict=True))
        self.mode = self.opts.get("--mode", "report")
        self.pattern = self.opts.get("--pattern", "vx-*")
        scratch = ctx.scratch("stale-vxlan")
        self.textfile: Path | None = None
        opts = dict(self.opts)
        opts["--state-dir"] = str(scratch / "state")  # never the host's /run/netharden
        if opts.get("--textfile-dir"):
            self.textfile = scratch / "textfile"
            self.textfile.mkdir()
            opts["--textfile-dir"] = str(self.textfile)
        self.argv = ["sh", str(self.script), *[w for kv in opts.items() for w in kv]]
        self.shown = f"sh {argv[0]} " + " ".join(
            f"{k} {shlex.quote(v)}" for k, v in self.opts.items() if k in ("--mode", "--pattern")
        )

    def run(self, ctx: Context, ns: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}  # plain log lines
        return subprocess.run(
            ["ip", "netns", "exec", ns, *self.argv], capture_output=True, text=True, timeout=30, env=env
        )

    def counts(self, log: str) -> dict[str, int]:
        """stale / pending / removed: from the metric file when there is one, else the log."""
        if self.textfile is not None and (self.textfile / METRIC).exists():
            out = {}
            for line in (self.textfile / METRIC).read_text().splitlines():
                m = re.match(
                    r'netharden_(stale_vxlan|vxlan_gc_pending|vxlan_gc_removed)_devices\{mode="[a-z]+"\} '
                    r"(\d+)$",
                    line,
                )
                if m:
                    out[
                        {"stale_vxlan": "stale", "vxlan_gc_pending": "pending", "vxlan_gc_removed": "removed"}[
                            m.group(1)
                        ]
                    ] = int(m.group(2))
            return out
        m = re.search(r"done \(mode \S+, pattern .*\): (\d+) stale, (\d+) pending, (\d+) removed", log)
        return dict(zip(("stale", "pending", "removed"), map(int, m.groups()), strict=True)) if m else {}

    def source(self) -> str:
        return "metric" if self.textfile is not None else "log (no textfile directory)"


def _names(log: str, what: str) -> set[str]:
    return set(re.findall(rf"{what} (\S+) \(ifindex \d+\)", log))


def _changed(before: dict, after: dict, names) -> list[str]:
    return sorted(n for n in names if before.get(n) != after.get(n))


def _swarm(ctx: Context, ns: str, overlay: str) -> tuple[bool, str]:
    """Swarm's steps: create in the host namespace, move into the overlay's, port of br0, up."""
    (res,) = _create(ctx, ns, (NAME, VNI))
    if res["errno"]:
        return False, f"{_swarm_create_text()}: {_failure(res)}"
    _ip(ctx, overlay, "link", "add", "br0", "type", "bridge")
    for where, step in (
        (ns, ("link", "set", NAME, "netns", overlay)),
        (overlay, ("link", "set", NAME, "master", "br0")),
        (overlay, ("link", "set", NAME, "up")),
        (overlay, ("link", "set", "br0", "up")),
    ):
        proc = ctx.run(where, "ip", *step)
        if proc.returncode:
            return False, f"{_swarm_create_text()}: created, but ip {' '.join(step)}: {proc.stderr.strip()}"
    link = _links(ctx, overlay).get(NAME)
    if not link or link[3] != "br0" or not link[2]:
        return False, f"{_swarm_create_text()}: created, but in the overlay namespace it is {link}"
    return True, f"{_swarm_create_text()}: ok, moved into the overlay namespace, port of br0, UP"


def profile(ctx: Context) -> Result:
    gc = Collector(ctx)
    evidence = [f"collector: {gc.shown} (state and textfile directories in scratch space), run twice"]
    missed = [n for n in STALE if not fnmatch.fnmatchcase(n, gc.pattern)]
    if missed:
        evidence.append(f"pattern {gc.pattern!r} does not match Swarm's device names ({', '.join(missed)})")
    failed = False
    with ctx.netns("vxh") as ns, ctx.netns("ovl") as overlay:
        _populate(ctx, ns)
        before = _links(ctx, ns)
        logs, counts, after = [], [], []
        for _ in range(2):
            proc = gc.run(ctx, ns)
            logs.append(proc.stderr)
            counts.append(gc.counts(proc.stderr))
            after.append(_links(ctx, ns))
            if proc.returncode:
                failed = True
                evidence.append(f"run {len(logs)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        first, second = after
        changed = _changed(before, first, before)
        evidence.append(
            f"run 1: {counts[0].get('pending', '?')} pending, {counts[0].get('removed', '?')} removed "
            f"({gc.source()}); " + (f"CHANGED: {', '.join(changed)}" if changed else "nothing changed")
        )
        failed |= bool(changed)
        survivors = [n for n in before if n not in STALE]
        if gc.mode == "remove":
            removed = sorted(set(before) - set(second))
            kept_changed = _changed(before, second, survivors)
            evidence.append(
                f"run 2: removed {', '.join(removed) or 'nothing'} "
                f"(removed={counts[1].get('removed', '?')}, {gc.source()})"
            )
            if removed != sorted(STALE):
                failed = True
                evidence.append(f"expected to remove exactly {', '.join(sorted(STALE))}")
            if kept_changed:
                failed = True
                evidence.append(f"devices in use changed or removed: {', '.join(kept_changed)}")
            else:
                evidence.append(f"kept unchanged: {UP_DEV} (UP), {PORT_DEV} (port of {PORT_BRIDGE}), {VETH[0]} (veth)")
            ok, text = _swarm(ctx, ns, overlay)
            evidence.append(("then " if ok else "still: ") + text)
            failed |= not ok
        else:
            reported = _names(logs[1], "stale VXLAN device")
            stale_count = counts[1].get("stale")
            changed = _changed(before, second, set(before) | set(second))
            evidence.append(
                f"run 2: reported stale {', '.join(sorted(reported)) or 'nothing'} "
                f"(netharden_stale_vxlan_devices={stale_count if stale_count is not None else '?'}, "
                f"{gc.source()}); " + (f"CHANGED: {', '.join(changed)}" if changed else "nothing removed or changed")
            )
            if reported != set(STALE) or stale_count != len(STALE):
                failed = True
                evidence.append(f"expected to report exactly {', '.join(sorted(STALE))} ({len(STALE)})")
            failed |= bool(changed)
            ok, text = _swarm(ctx, ns, overlay)
            if ok:
                evidence.append(f"then {text}")
            elif not failed:
                evidence.append(
                    f"still: {text}: mode report only reports (what it promises); "
                    f"vxlan_gc.mode: remove would remove the reported devices"
                )
            else:
                evidence.append(f"still: {text}")
    return Result(FAILS if failed else HOLDS, evidence)
