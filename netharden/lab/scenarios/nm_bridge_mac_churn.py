"""nm-bridge-mac-churn (incident 3, NetworkManager's version): a bridge NetworkManager
creates without a pinned MAC takes the smallest MAC of its ports and changes it as
ports come and go; the containers' gateway MAC moves under container churn.

Steps (both sides), for the profile's first bridge: NetworkManager starts over its
keyfile and creates the bridge; two veths with small MACs (02:00:00:00:00:02, then
02:00:00:00:00:01) join it as ports, and the second leaves again. The bridge's MAC and
``addr_assign_type`` are read after each step.

Baseline: the profile's bridge keyfile without ``ethernet.cloned-mac-address``, and no
unmanaged list (a naive host): BREAKS when the MAC changed. Profile: the Plan's
/etc/NetworkManager: HOLDS when the bridge has the pinned MAC at every step and
``addr_assign_type`` 3 (set: the kernel then never follows its ports).
"""

from __future__ import annotations

import re
import time

from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result
from . import _nm

ID = "nm-bridge-mac-churn"
TITLE = "a NetworkManager bridge's MAC follows its ports"
INCIDENT = "incident-3"
HINT = "bridges[].mac (stable or explicit): rendered as ethernet.cloned-mac-address"
STACK = "networkmanager"
PORTS = (("nhport1", "02:00:00:00:00:02"), ("nhport2", "02:00:00:00:00:01"))


def applies(ctx: Context) -> str | None:
    return None if ctx.profile.bridges else "the profile has no bridges"


def _keyfile(ctx: Context) -> str:
    name = ctx.profile.bridges[0].name
    return f"{_nm.NM_ETC}/system-connections/netharden-bridge-{name}.nmconnection"


def _steps(ctx: Context, etc_dir) -> tuple[list[tuple[str, str, int]], str]:
    bridge = ctx.profile.bridges[0].name
    with _nm.lab(ctx, etc_dir) as lab:
        deadline = time.monotonic() + 10
        while not lab.has_link(bridge) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not lab.has_link(bridge):
            raise RuntimeError(f"NetworkManager did not create {bridge}:\n{lab.describe()}")
        seen = [("created", lab.mac(bridge), lab.addr_assign_type(bridge))]
        for name, mac in PORTS:
            lab.ip("link", "add", name, "address", mac, "type", "veth", "peer", "name", name + "p")
            lab.ip("link", "set", name, "master", bridge)
            lab.ip("link", "set", name, "up")
            time.sleep(0.2)
            seen.append((f"{name} ({mac}) joined", lab.mac(bridge), lab.addr_assign_type(bridge)))
        lab.ip("link", "del", PORTS[1][0])
        time.sleep(0.2)
        seen.append((f"{PORTS[1][0]} left", lab.mac(bridge), lab.addr_assign_type(bridge)))
        return seen, lab.udev_mode


def _evidence(seen) -> list[str]:
    return [f"{step}: MAC {mac}, addr_assign_type {kind}" for step, mac, kind in seen]


def baseline(ctx: Context) -> Result:
    etc_dir = _nm.etc(ctx, "baseline", plan=False)
    text = ctx.path(_keyfile(ctx)).read_text()
    naive = re.sub(r"^cloned-mac-address=.*\n", "", text, flags=re.M)
    _nm.write(etc_dir, _keyfile(ctx).removeprefix(_nm.NM_ETC + "/"), naive, 0o600)
    seen, mode = _steps(ctx, etc_dir)
    macs = {mac for _, mac, _ in seen}
    evidence = [f"the bridge keyfile without cloned-mac-address, {mode}"] + _evidence(seen)
    return Result(BREAKS if len(macs) > 1 else NOT_REPRODUCIBLE, evidence)


def profile(ctx: Context) -> Result:
    pinned = ctx.profile.bridges[0].mac
    seen, mode = _steps(ctx, _nm.etc(ctx, "profile", plan=True))
    ok = all(mac == pinned and kind == 3 for _, mac, kind in seen)
    return Result(
        HOLDS if ok else FAILS, [f"the Plan's /etc/NetworkManager, pinned {pinned}, {mode}"] + _evidence(seen)
    )
