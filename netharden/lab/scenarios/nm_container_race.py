"""nm-container-race (incident 2, NetworkManager's version): NetworkManager takes the
veths and CNI devices a container runtime creates while it runs.

Measured on NetworkManager 1.42 without configuration: every veth that appears is
taken within about a millisecond: NM creates a "Wired connection N" DHCP profile, sets
``addr_gen_mode`` 0 -> 1 and ``accept_ra`` 1 -> 0, replaces the link-local address, and
a veth being enslaved meanwhile can be released from docker's bridge ("releasing ...
from master"). Bridges and vxlan devices that are up with an address are left
"connected (externally)"; a Calico ``cali*`` veth is taken like any veth.

Steps (both sides): NetworkManager starts; then, while it runs, a docker-like docker0
(``02:42:5e:00:53:01``, 172.17.0.1/16) gets two veths enslaved, a Calico veth, a
flannel.1 vxlan and a CNI bridge cni0 (10.22.0.1/24) appear. Each device is compared
with its state as created (its IPv6 sysctls: the kernel's defaults for a new device,
which NetworkManager rewrites within a millisecond), two seconds later.

Baseline (no configuration): BREAKS when NetworkManager changed a device (state,
sysctls, master, MAC, addresses). Profile (the Plan's /etc/NetworkManager): HOLDS when
every device is ``unmanaged`` and unchanged. Applies when the profile's unmanaged list
covers docker's veths (the veth or docker preset).
"""

from __future__ import annotations

import time

from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result
from . import _nm

ID = "nm-container-race"
TITLE = "NetworkManager takes container veths and CNI devices as they appear"
INCIDENT = "incident-2"
HINT = "platform.stack: networkmanager with unmanaged.presets (veth, docker, cni, flannel, calico)"
STACK = "networkmanager"
NAMES = {"veth": "veth0a1b2c3 veth4d5e6f7", "cali": "cali12345678", "flannel": "flannel.1", "cni": "cni0"}
SETTLE = 2.0


def applies(ctx: Context) -> str | None:
    ids = {g.id for g in ctx.profile.unmanaged}
    if not ids & {"veth", "docker"}:
        return "the profile's unmanaged presets cover neither veth nor docker"
    return None


def _run(ctx: Context, tag: str, plan: bool) -> tuple[dict, dict, dict, str]:
    with _nm.lab(ctx, _nm.etc(ctx, tag, plan=plan)) as lab:
        watched = _nm.container_devices(lab, NAMES)
        before = _nm.as_created(lab, _nm.snapshot(lab, watched))
        time.sleep(SETTLE)
        after = _nm.snapshot(lab, watched)
        return before, after, _nm.states(lab, watched), lab.udev_mode


def baseline(ctx: Context) -> Result:
    before, after, states, mode = _run(ctx, "baseline", plan=False)
    harm = _nm.changes(before, after)
    taken = [f"{n}: {s}" for n, s in states.items() if s != "unmanaged" and not s.endswith("(externally)")]
    evidence = [f"NetworkManager without configuration, {mode}"] + taken + harm
    return Result(BREAKS if harm or taken else NOT_REPRODUCIBLE, evidence)


def profile(ctx: Context) -> Result:
    before, after, states, mode = _run(ctx, "profile", plan=True)
    harm = _nm.changes(before, after)
    managed = [f"{n}: {s}" for n, s in states.items() if s != "unmanaged"]
    evidence = [f"the Plan's /etc/NetworkManager, {mode}"]
    if harm or managed:
        return Result(FAILS, evidence + managed + harm)
    return Result(HOLDS, evidence + [f"{', '.join(states)}: unmanaged and unchanged after {SETTLE:.0f} s"])
