"""Incident 3: the container gateway's MAC under veth churn.

A Linux bridge whose MAC was never set takes the smallest MAC of its ports and moves
whenever a port with a smaller MAC joins or leaves. A container on that bridge cached
its gateway's MAC; when the port that lent it the MAC leaves, the bridge no longer
owns that address, frames to it are flooded instead of delivered, and the container's
traffic to its gateway (its DNS server, on docker's bridges) goes nowhere until its ARP
entry expires (sporadic DNS failures under churn).

Both sides replay the same churn: a "container" namespace whose ``eth0`` is a port of
the bridge, then CYCLES veth ports with MACs from a seeded generator (every second one
lower than both the container's port and the pinned MAC) that join and leave. After
every step the container, through sockets opened inside its own namespace (no ping
binary needed): pings its gateway over its *cached* ARP entry (what it really does),
then forgets the entry (SIOCDARP), pings again and reads the MAC the kernel's ARP
resolved (SIOCGARP). The bridge's own MAC is read with SIOCGIFHWADDR in its namespace.

Baseline: the bridge made by hand the way ifupdown/brctl make it (``ip link add type
bridge``, no MAC) in a plain namespace. Profile: the real systemd-networkd creates the
bridge from the profile's own ``10-netharden-<bridge>.netdev`` in a NetworkdLab. The
first bridge is churned; the others' MACs are checked at start. A bridge with STP on
forwards on a new port only after the forward delay, so there the container's view is
not probed and the bridge's own MAC decides. A bridge without an IPv4 address gets a
documentation address as the container's gateway.

udev does not act inside a network namespace, so its MACAddressPolicy (a hand-made
bridge in the host namespace of a systemd >= 242 host may get a fixed MAC from
99-default.link) plays no part here: the baseline is the kernel's own behaviour, as on
hosts whose udev does not set bridge MACs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import ipaddress
import itertools
import os
import random
import select
import socket
import struct
import subprocess
import threading
import time

from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result

ID = "bridge-mac-churn"
TITLE = "veths with random MACs join and leave a bridge; a container watches its gateway's MAC"
INCIDENT = "incident-3"
STACK = "networkd"
HINT = "bridges[].mac (stable or explicit): networkd creates the bridge with that MAC pinned"

CYCLES = 20
PING_TIMEOUT = 1.0  # seconds; replies inside one host take microseconds
STALE_PINGS = 1  # cached-entry pings allowed to time out (each costs PING_TIMEOUT)
FALLBACK_GATEWAY = "192.0.2.1/24"

_CLONE_NEWNET = 0x40000000
_SIOCDARP = 0x8953
_SIOCGARP = 0x8954
_SIOCGIFHWADDR = 0x8927
_ATF_COM = 0x02
_ASSIGN_TYPES = {"0": "permanent", "1": "random", "2": "stolen", "3": "set"}


def applies(ctx: Context) -> str | None:
    return None if ctx.profile.bridges else "the profile has no bridges"


# ---------------------------------------------------------------------------
# sockets inside another network namespace (setns in a short-lived thread)

_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(ns_path: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket that belongs to the network namespace at ``ns_path``: opened by a
    thread that joined that namespace (setns affects only the calling thread), then
    used from any thread. Close it before the namespace is deleted."""
    box: dict = {}

    def work() -> None:
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {ns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = socket.socket(family, kind, proto)
        except BaseException as exc:  # handed to the caller
            box["exc"] = exc

    thread = threading.Thread(target=work, name="netharden-lab-setns")
    thread.start()
    thread.join()
    if "exc" in box:
        raise box["exc"]
    return box["sock"]


def _mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw[:6])


def _mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def _int_mac(value: int) -> str:
    return _mac_str(value.to_bytes(6, "big"))


def hw_addr(sock: socket.socket, ifname: str) -> str:
    """The MAC of ``ifname`` in the socket's namespace (SIOCGIFHWADDR)."""
    req = struct.pack("16s16x", ifname.encode())
    res = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, req)
    return _mac_str(res[18:24])


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


class GatewayWatch:
    """The container's view of its gateway, from inside its namespace."""

    def __init__(self, ns_path: str, gateway: str, ifname: str = "eth0"):
        self.gateway = gateway
        self.ifname = ifname
        self._ident = os.getpid() & 0xFFFF
        self._seq = 0
        self._icmp = socket_in(ns_path, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            self._ctl = socket_in(ns_path, socket.AF_INET, socket.SOCK_DGRAM)
        except BaseException:
            self._icmp.close()
            raise

    def close(self) -> None:
        self._icmp.close()
        self._ctl.close()

    def _arpreq(self) -> bytes:
        pa = struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(self.gateway))
        return pa + bytes(16) + struct.pack("=i", 0) + bytes(16) + struct.pack("16s", self.ifname.encode())

    def cached_mac(self) -> str | None:
        """The MAC of the container's complete ARP entry for its gateway, if any."""
        try:
            res = fcntl.ioctl(self._ctl.fileno(), _SIOCGARP, self._arpreq())
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return None
            raise
        flags = struct.unpack("=i", res[32:36])[0]
        return _mac_str(res[18:24]) if flags & _ATF_COM else None

    def forget(self) -> None:
        try:
            fcntl.ioctl(self._ctl.fileno(), _SIOCDARP, self._arpreq())
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise

    def ping(self, timeout: float = PING_TIMEOUT) -> bool:
        """One ICMP echo to the gateway; True when it answered within ``timeout``."""
        self._seq = (self._seq + 1) & 0xFFFF
        header = struct.pack("!BBHHH", 8, 0, 0, self._ident, self._seq)
        payload = b"netharden-lab"
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), self._ident, self._seq) + payload
        self._icmp.sendto(packet, (self.gateway, 0))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self._icmp], [], [], left)
            if not ready:
                return False
            data, (src, _) = self._icmp.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, ident, seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
            if src == self.gateway and kind == 0 and ident == self._ident and seq == self._seq:
                return True

    def resolve(self) -> str | None:
        """Forget the ARP entry, ping, and return the MAC the kernel resolved."""
        self.forget()
        return self.cached_mac() if self.ping() else None


# ---------------------------------------------------------------------------
# the replay, shared by both sides


def churn_macs(ctx: Context, bridge) -> tuple[str, str, list[str]]:
    """(the container's MAC, its host-side port's MAC, the churn ports' MACs): seeded
    by profile and bridge, so every run replays the same sequence. Even cycles get a
    MAC lower than both the container's port and the pinned MAC, odd ones a higher one."""
    rng = random.Random(f"netharden-lab/{ID}/{ctx.profile.name}/{bridge.name}")
    multicast = 1 << 40

    def unicast_between(lo: int, hi: int) -> int | None:
        if hi - lo < 4:
            return None
        for _ in range(64):
            value = rng.randrange(lo + 1, hi) & ~multicast
            if lo < value < hi:
                return value
        return None

    port = _mac_int("0a:58:00:00:00:00") | rng.getrandbits(32)
    container = _mac_int("02:42:00:00:00:00") | rng.getrandbits(32)
    pinned = _mac_int(bridge.mac)
    low_ceiling, high_floor = min(port, pinned), max(port, pinned)
    macs = []
    for i in range(CYCLES):
        value = unicast_between(0, low_ceiling) if i % 2 == 0 else None
        if value is None:
            value = unicast_between(high_floor, 0xFEFFFFFFFFFF)
        if value is None:  # pragma: no cover - 64 random draws between two MACs far apart
            raise RuntimeError("no unicast MAC found between the port's and the pinned MAC")
        macs.append(_int_mac(value))
    return _int_mac(container), _int_mac(port), macs


def gateway_of(bridge) -> tuple[ipaddress.IPv4Interface, ipaddress.IPv4Interface, bool]:
    """(gateway, container address, True when the gateway is the profile's own address).
    Without a usable IPv4 address on the bridge, a documentation address stands in."""
    for text in bridge.addresses:
        iface = ipaddress.ip_interface(text)
        if iface.version == 4 and iface.network.num_addresses >= 4:
            return iface, _neighbour(iface), True
    iface = ipaddress.IPv4Interface(FALLBACK_GATEWAY)
    return iface, _neighbour(iface), False


def _neighbour(iface: ipaddress.IPv4Interface) -> ipaddress.IPv4Interface:
    net = iface.network
    for candidate in (iface.ip + 1, iface.ip - 1):
        if candidate in net and candidate not in (net.network_address, net.broadcast_address):
            return ipaddress.IPv4Interface(f"{candidate}/{net.prefixlen}")
    raise ValueError(f"no neighbour address for {iface}")


class _Side:
    """The host namespace the bridge lives in, for one side."""

    def __init__(self, ip_batch, ns_path: str, ns_ref: str, assign_type):
        self.ip_batch = ip_batch  # runs `ip -batch -` with the given text there
        self.ns_path = ns_path  # for setns
        self.ns_ref = ns_ref  # what `ip ... netns X` accepts (name or pid)
        self.assign_type = assign_type  # ifname -> addr_assign_type text


def _plain_batch(ns: str):
    def run(text: str) -> None:
        r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input=text, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"ip -n {ns} -batch failed: {r.stderr.strip()}")

    return run


def _replay(
    ctx: Context, side: _Side, bridge, container_ns: str, gateway, address, macs, *, probe: bool = True
) -> dict:
    """Join the container, churn, and record everything both sides are judged on
    (without ``probe``, only the bridge's own MAC)."""
    container_mac, port_mac, churn = macs
    _plain_batch(container_ns)(
        f"link add eth0 address {container_mac} type veth peer name vethnhctr address {port_mac} "
        f"netns {side.ns_ref}\n"
        f"addr add {address} dev eth0\nlink set lo up\nlink set eth0 up\n"
    )
    side.ip_batch(f"link set vethnhctr master {bridge.name} up\n")
    rec = {
        "steps": 0,
        "bridge_macs": [],
        "resolved": [],
        "unresolved": 0,
        "stale": 0,
        "cached_ok": 0,
        "cached_failed": [],
        "assign_type": side.assign_type(bridge.name),
        "probed": probe,
    }
    with contextlib.ExitStack() as stack:
        host_sock = socket_in(side.ns_path, socket.AF_INET, socket.SOCK_DGRAM)
        stack.callback(host_sock.close)
        watch = None
        if probe:
            watch = GatewayWatch(f"/run/netns/{container_ns}", str(gateway.ip))
            stack.callback(watch.close)
        rec["bridge_joined"] = hw_addr(host_sock, bridge.name)

        def observe(event: str) -> None:
            rec["steps"] += 1
            now = hw_addr(host_sock, bridge.name)
            rec["bridge_macs"].append(now)
            if watch is None:
                return
            cached = watch.cached_mac()
            if cached is not None and len(rec["cached_failed"]) < STALE_PINGS:
                if watch.ping():
                    rec["cached_ok"] += 1
                else:
                    rec["cached_failed"].append((event, cached, now))
            resolved = watch.resolve()
            if resolved is None:
                rec["unresolved"] += 1
            else:
                rec["resolved"].append(resolved)
                if cached is not None and cached != resolved:
                    rec["stale"] += 1

        observe("the container joined")
        for i, mac in enumerate(churn):
            port = f"vethnh{i:02d}"
            side.ip_batch(
                f"link add {port} address {mac} type veth peer name nhpeer{i:02d}\n"
                f"link set nhpeer{i:02d} up\nlink set {port} master {bridge.name} up\n"
            )
            observe(f"{port} ({mac}) joined")
            side.ip_batch(f"link del {port}\n")
            observe(f"{port} ({mac}) left")
    return rec


def _changes(seq: list[str]) -> int:
    return sum(1 for a, b in itertools.pairwise(seq) if a != b)


def _few(macs) -> str:
    macs = sorted(set(macs), key=_mac_int)
    return ", ".join(macs[:4]) + (f" ... ({len(macs)} in all)" if len(macs) > 4 else "")


def _summary(rec: dict, churn: list[str], reference: str, gateway) -> list[str]:
    lower = sum(1 for m in churn if _mac_int(m) < _mac_int(reference))
    resolved = set(rec["resolved"])
    seen = (
        f"always to {next(iter(resolved))}"
        if len(resolved) == 1
        else f"to {len(resolved)} different MACs ({_few(resolved)})"
        if resolved
        else "never"
    )
    view = (
        f"the container resolved {gateway.ip} {seen}"
        if rec["probed"]
        else "the container's view was not probed (STP is on: its port forwards only after the forward delay)"
    )
    lines = [
        f"{CYCLES} churn cycles ({lower} ports with a MAC lower than {reference}), "
        f"{rec['steps']} observations: the bridge MAC changed {_changes(rec['bridge_macs'])} times; {view}"
        + (f", {rec['unresolved']} time(s) not at all" if rec["unresolved"] and resolved else "")
    ]
    for event, cached, now in rec["cached_failed"]:
        lines.append(
            f"after {event}, the container's ping to {gateway.ip} over its cached MAC {cached} got no "
            f"reply within {PING_TIMEOUT:g} s (the bridge is now {now})"
        )
    if rec["stale"]:
        lines.append(f"the container's cached gateway MAC was stale at {rec['stale']} of {rec['steps']} observations")
    return lines


def baseline(ctx: Context) -> Result:
    bridge = ctx.profile.bridges[0]
    gateway, address, own = gateway_of(bridge)
    macs = churn_macs(ctx, bridge)
    with ctx.netns("brhost") as host_ns, ctx.netns("brctr") as ctr_ns:
        batch = _plain_batch(host_ns)
        batch(f"link add {bridge.name} type bridge\naddr add {gateway} dev {bridge.name}\nlink set {bridge.name} up\n")

        def assign_type(ifname: str) -> str:
            r = ctx.run(host_ns, "cat", f"/sys/class/net/{ifname}/addr_assign_type")
            return _ASSIGN_TYPES.get(r.stdout.strip(), r.stdout.strip() or "?")

        with contextlib.closing(socket_in(f"/run/netns/{host_ns}", socket.AF_INET, socket.SOCK_DGRAM)) as s:
            created = hw_addr(s, bridge.name)
        rec = _replay(
            ctx, _Side(batch, f"/run/netns/{host_ns}", host_ns, assign_type), bridge, ctr_ns, gateway, address, macs
        )
    evidence = [
        f"hand-made bridge {bridge.name} (ip link add type bridge, no MAC): created with {created}, "
        f"addr_assign_type {rec['assign_type']}; gateway {gateway}"
        + ("" if own else " (the bridge has no IPv4 address in the profile: a documentation address)"),
        f"the container's port ({macs[1]}) joined: bridge MAC {created} -> {rec['bridge_joined']}",
    ]
    evidence += _summary(rec, macs[2], macs[1], gateway)
    moved = _changes(rec["bridge_macs"]) > 0 or len(set(rec["resolved"])) > 1 or rec["cached_failed"]
    if moved:
        return Result(BREAKS, evidence)
    return Result(
        NOT_REPRODUCIBLE,
        [
            f"baseline not reproducible on this kernel ({os.uname().release}): "
            "the hand-made bridge's MAC never followed its ports",
            *evidence,
        ],
    )


def profile(ctx: Context) -> Result:
    from ..netns import NetworkdLab

    bridge = ctx.profile.bridges[0]
    gateway, address, own = gateway_of(bridge)
    macs = churn_macs(ctx, bridge)
    netdev = f"10-netharden-{bridge.name}.netdev"
    if ctx.plan_generated is not None:  # the netplan stack: netplan's netdev for the bridge
        from ...netplan_generate import GENERATED_PREFIX, netdef_id

        if (ctx.plan_generated / f"{GENERATED_PREFIX}{netdef_id(bridge)}.netdev").is_file():
            netdev = f"{GENERATED_PREFIX}{netdef_id(bridge)}.netdev"
    evidence: list[str] = []
    failed = False
    with (
        ctx.netns("brctr") as ctr_ns,
        NetworkdLab(ctx.network_dir(), ctx.networkd_conf_dir(), run_network_dir=ctx.plan_generated) as lab,
    ):
        lab.wait_for(bridge.name, ["configured", "configuring", "degraded"], timeout=10)
        _wait_address(lab, bridge.name, gateway, add=not own)
        created = lab.mac(bridge.name)
        others = []
        for other in ctx.profile.bridges[1:]:
            try:
                mac = lab.mac(other.name)
            except LookupError:
                mac = "missing"
            ok = mac == other.mac
            failed |= not ok
            others.append(f"{other.name} {mac}" + ("" if ok else f" (pinned {other.mac})"))

        def assign_type(ifname: str) -> str:
            text = lab.root_path(f"/sys/class/net/{ifname}/addr_assign_type").read_text().strip()
            return _ASSIGN_TYPES.get(text, text)

        def batch(text: str) -> None:
            lab.run("ip", "-batch", "-", input=text)

        side = _Side(batch, f"/proc/{lab.holder_pid}/ns/net", str(lab.holder_pid), assign_type)
        rec = _replay(ctx, side, bridge, ctr_ns, gateway, address, macs, probe=not bridge.stp)
        warnings = [w for w in lab.warnings() if bridge.name in w or ".netdev" in w]
    evidence.append(
        f"networkd created {bridge.name} from {netdev} with {created} "
        f"(pinned {bridge.mac}, addr_assign_type {rec['assign_type']}); gateway {gateway}"
        + ("" if own else " (added: the bridge has no IPv4 address in the profile)")
    )
    evidence += _summary(rec, macs[2], min(macs[1], bridge.mac, key=_mac_int), gateway)
    if others:
        evidence.append("other bridges at start: " + ", ".join(others) + " (churn replayed on the first only)")
    evidence += [f"networkd: {w}" for w in warnings]
    seen = set(rec["bridge_macs"]) | {created, rec["bridge_joined"]}
    resolved = set(rec["resolved"])
    if seen != {bridge.mac}:
        failed = True
        evidence.append(f"the bridge MAC was {_few(seen)}, not only the pinned {bridge.mac}")
    if resolved - {bridge.mac} or rec["unresolved"]:
        failed = True
        evidence.append(f"the container saw its gateway at {_few(resolved) or 'no MAC'}")
    if rec["cached_failed"] or warnings:
        failed = True
    if not failed:
        evidence.append(
            f"{bridge.name} kept {bridge.mac} throughout"
            + (
                f"; {rec['cached_ok']} pings over the container's cached gateway MAC all answered"
                if rec["probed"]
                else ""
            )
        )
    return Result(FAILS if failed else HOLDS, evidence)


def _wait_address(lab, ifname: str, gateway, *, add: bool, timeout: float = 10.0) -> None:
    """Until networkd put the profile's gateway address on the bridge (or add the
    stand-in address ourselves)."""
    if add:
        lab.ip("addr", "add", str(gateway), "dev", ifname)
        return
    deadline = time.monotonic() + timeout
    while str(gateway) not in lab.addresses(ifname, "inet"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"networkd did not add {gateway} to {ifname}\n{lab.describe()}")
        time.sleep(0.02)
