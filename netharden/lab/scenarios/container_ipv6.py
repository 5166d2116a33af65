"""container-ipv6 (incident 5): openvpn in a deploy container failed with "RTNETLINK
answers: Permission denied" on ``ip -6 addr add``: the runtime had disabled IPv6 in the
container's network namespace.

Replay, in a fresh namespace per container profile: the runtime's step first (IPv6 off
for ``all`` and ``default``, then eth0 moved in, which inherits it). Baseline: ``ip -6
addr add`` on eth0 is refused. Profile: every ``--sysctl=KEY=VALUE`` line of the
container's rendered ``.args`` file is written inside the namespace (``sysctl -w``),
the way runc applies ``--sysctl`` after docker moved eth0 in; then the address must go
on eth0 and on an interface created afterwards (openvpn's tun0). Applies to container
profiles that touch ``disable_ipv6``.
"""

from __future__ import annotations

from ...profile import Container
from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result

ID = "container-ipv6"
TITLE = "IPv6 inside a container whose runtime disabled it"
INCIDENT = "incident-5"
STACK = None  # every stack
HINT = (
    'add net.ipv6.conf.all.disable_ipv6: "0" and net.ipv6.conf.default.disable_ipv6: "0" to '
    "docker.containers.NAME.sysctls"
)

REFUSED = ("Permission denied", "IPv6 is disabled on this device")
ADDR, LATER_ADDR = "2001:db8:5::2/64", "2001:db8:6::2/64"


def _containers(ctx: Context) -> list[Container]:
    return [c for c in ctx.profile.containers if any(k.endswith(".disable_ipv6") for k, _ in c.sysctls)]


def applies(ctx: Context) -> str | None:
    if not ctx.profile.containers:
        return "no container profiles (docker.containers)"
    if not _containers(ctx):
        return "no container profile sets disable_ipv6"
    return None


def _runtime_disables_ipv6(ctx: Context, ns: str) -> None:
    ctx.run(
        ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", check=True
    )
    ctx.run(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer", check=True)


def _refused(proc) -> bool:
    return proc.returncode != 0 and any(text in proc.stderr for text in REFUSED)


def baseline(ctx: Context) -> Result:
    with ctx.netns("ipv6") as ns:
        _runtime_disables_ipv6(ctx, ns)
        proc = ctx.run(ns, "ip", "-6", "addr", "add", ADDR, "dev", "eth0")
    if _refused(proc):
        return Result(BREAKS, [f"ip -6 addr add {ADDR} dev eth0: {proc.stderr.strip()}"])
    return Result(
        NOT_REPRODUCIBLE,
        [f"baseline not reproducible on this kernel: ip -6 addr add exited {proc.returncode} {proc.stderr.strip()}"],
    )


def _args(ctx: Context, container: Container) -> list[tuple[str, str]]:
    text = ctx.path(f"/etc/netharden/containers/{container.name}.args").read_text()
    return [
        (key, value)
        for key, _, value in (
            line.removeprefix("--sysctl=").partition("=") for line in text.splitlines() if line.startswith("--sysctl=")
        )
    ]


def profile(ctx: Context) -> Result:
    evidence, failed = [], False
    for container in _containers(ctx):
        pairs = _args(ctx, container)
        with ctx.netns("ipv6") as ns:
            _runtime_disables_ipv6(ctx, ns)
            for key, value in pairs:
                ctx.run(ns, "sysctl", "-q", "-w", f"{key}={value}", check=True)
            eth0 = ctx.run(ns, "ip", "-6", "addr", "add", ADDR, "dev", "eth0")
            ctx.run(ns, "ip", "link", "add", "later0", "type", "veth", "peer", "name", "later0-peer", check=True)
            later = ctx.run(ns, "ip", "-6", "addr", "add", LATER_ADDR, "dev", "later0")
        applied = ", ".join(f"{k}={v}" for k, v in pairs)
        for ifname, proc in (("eth0", eth0), ("an interface created later", later)):
            if proc.returncode == 0:
                evidence.append(f"{container.name}: IPv6 address added on {ifname} after {applied}")
            else:
                failed = True
                evidence.append(f"{container.name}: still refused on {ifname} after {applied}: {proc.stderr.strip()}")
    return Result(FAILS if failed else HOLDS, evidence)
