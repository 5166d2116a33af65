"""nm-live-apply (incident 2, applying the fix on a running host): NetworkManager has
already taken Calico's workload veths; the profile's unmanaged list arrives and is
loaded live.

Measured on NetworkManager 1.42: a routed veth (Calico's cali*, no bridge) that appears
while NM runs is activated with a "Wired connection N" auto-default. When the list then
covers it, NM lets go of it at ``nmcli general reload conf`` by deconfiguring it and
setting it DOWN: the pod behind the veth loses its link although the fix is in place.
(Veths that are bridge ports NM leaves "connected (externally)"; they stay up.)

Steps (both sides): NetworkManager starts without configuration; two cali* veths appear
and come up while it runs, and NM takes them; then the Plan's conf.d file is written (as
an applier writes files) and the configuration is loaded. Baseline: ``nmcli general
reload conf``. Profile: the Plan's reload action, ``netharden-nm-reload-conf``, which
brings up again what was up before the reload and is unmanaged after it.

HOLDS when after two seconds every veth is unmanaged and UP; BREAKS when the naive reload
left one down or managed. Applies when the profile unmanages Calico's devices or veths.
"""

from __future__ import annotations

import time

from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result
from . import _nm

ID = "nm-live-apply"
TITLE = "loading the unmanaged list live sets down the veths NetworkManager had taken"
INCIDENT = "incident-2"
HINT = "the post-apply action netharden-nm-reload-conf (never a bare nmcli general reload)"
STACK = "networkmanager"
VETHS = ("cali12345678", "cali9abcdef0")
SETTLE = 2.0


def applies(ctx: Context) -> str | None:
    ids = {g.id for g in ctx.profile.unmanaged}
    return None if ids & {"veth", "calico"} else "the profile unmanages neither Calico's devices nor veths"


def _state(lab) -> dict[str, tuple[str, str]]:
    states = lab.device_states()
    out = {}
    for name in VETHS:
        up = "UP" if "UP" in lab.ip("-o", "link", "show", "dev", name).stdout.split(">", 1)[0] else "DOWN"
        out[name] = (states.get(name, "unknown"), up)
    return out


def _run(ctx: Context, reload: list[str]) -> tuple[dict, dict, str, str]:
    with _nm.lab(ctx, _nm.etc(ctx, "live", plan=False)) as lab:
        for i, name in enumerate(VETHS):
            lab.ip("link", "add", name, "type", "veth", "peer", "name", f"nhpod{i}")
            lab.ip("link", "set", f"nhpod{i}", "up")
            lab.ip("link", "set", name, "up")
        deadline = time.monotonic() + 3  # NM takes a veth within ~30 ms, or not at all (udev's rule)
        while time.monotonic() < deadline and any(lab.device_state(v) in (None, "unmanaged") for v in VETHS):
            time.sleep(0.05)
        time.sleep(0.5)
        taken = _state(lab)
        lab.run("tee", _nm.CONF, input=ctx.path(_nm.CONF).read_text())
        done = lab.run(*reload, check=False)
        time.sleep(SETTLE)
        said = (done.stdout + done.stderr).strip().replace("\n", " ")
        return taken, _state(lab), said, lab.udev_mode


def _lines(before: dict, after: dict) -> list[str]:
    return [f"{name}: before {', '.join(before[name])}; after {', '.join(after[name])}" for name in VETHS]


def _held(after: dict) -> bool:
    return all(state == ("unmanaged", "UP") for state in after.values())


def baseline(ctx: Context) -> Result:
    before, after, _, mode = _run(ctx, ["nmcli", "general", "reload", "conf"])
    evidence = [
        f"cali* veths came up while NetworkManager ran, then the Plan's conf.d file and nmcli general reload conf, {mode}"
    ]
    if any(s[0] == "unmanaged" for s in before.values()):
        return Result(NOT_REPRODUCIBLE, evidence + ["NetworkManager did not take the veths"] + _lines(before, after))
    return Result(NOT_REPRODUCIBLE if _held(after) else BREAKS, evidence + _lines(before, after))


def profile(ctx: Context) -> Result:
    helper = str(ctx.helper("netharden-nm-reload-conf"))
    before, after, said, mode = _run(ctx, ["sh", helper])
    evidence = [
        f"cali* veths came up while NetworkManager ran, then the Plan's conf.d file and netharden-nm-reload-conf, {mode}"
    ]
    evidence += _lines(before, after) + ([f"helper: {said}"] if said else [])
    return Result(HOLDS if _held(after) else FAILS, evidence)
