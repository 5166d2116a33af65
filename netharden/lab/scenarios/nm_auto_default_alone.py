"""nm-auto-default-alone (pitfall): ``[main] no-auto-default=*`` stops NetworkManager's
"Wired connection N" profiles but does NOT keep it away from a device: measured on
NetworkManager 1.42, an unlisted Calico veth still had its IPv6 sysctls rewritten
(``addr_gen_mode``, ``accept_ra``). Only an unmanaged device is left alone.

Steps (both sides): NetworkManager starts; a Calico-like veth ``cali12345678`` appears
while it runs and is compared with its state right after it was created, two seconds
later.

Baseline: only ``no-auto-default=*`` in conf.d: BREAKS when NetworkManager changed the
veth. Profile (the Plan's /etc/NetworkManager): HOLDS when it stays ``unmanaged`` and
unchanged. Applies when the profile unmanages Calico's or every veth.
"""

from __future__ import annotations

import time

from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result
from . import _nm

ID = "nm-auto-default-alone"
TITLE = "no-auto-default=* alone does not keep NetworkManager off container veths"
INCIDENT = "incident-2"
HINT = "unmanaged.presets: calico or veth (keyfile unmanaged-devices, not only no-auto-default)"
STACK = "networkmanager"
VETH = "cali12345678"
SETTLE = 2.0


def applies(ctx: Context) -> str | None:
    ids = {g.id for g in ctx.profile.unmanaged}
    return None if ids & {"calico", "veth"} else "the profile unmanages neither Calico's devices nor veths"


def _run(ctx: Context, etc_dir) -> tuple[list[str], str, str]:
    with _nm.lab(ctx, etc_dir) as lab:
        lab.ip("link", "add", VETH, "type", "veth", "peer", "name", "nhcalip")
        lab.ip("link", "set", "nhcalip", "up")
        lab.ip("link", "set", VETH, "up")
        before = _nm.as_created(lab, _nm.snapshot(lab, [VETH]))
        time.sleep(SETTLE)
        return _nm.changes(before, _nm.snapshot(lab, [VETH])), lab.device_state(VETH) or "unknown", lab.udev_mode


def baseline(ctx: Context) -> Result:
    etc_dir = _nm.etc(ctx, "baseline", plan=False)
    _nm.write(etc_dir, "conf.d/50-no-auto-default.conf", "[main]\nno-auto-default=*\n")
    harm, state, mode = _run(ctx, etc_dir)
    evidence = [f"only [main] no-auto-default=*, {mode}", f"{VETH}: {state}"] + harm
    return Result(BREAKS if harm else NOT_REPRODUCIBLE, evidence)


def profile(ctx: Context) -> Result:
    harm, state, mode = _run(ctx, _nm.etc(ctx, "profile", plan=True))
    evidence = [f"the Plan's /etc/NetworkManager, {mode}", f"{VETH}: {state}"] + harm
    return Result(HOLDS if not harm and state == "unmanaged" else FAILS, evidence)
