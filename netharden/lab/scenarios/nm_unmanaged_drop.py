"""nm-unmanaged-drop (pitfall): ``nmcli general reload`` re-reads the unmanaged list at
once, and a device dropped from it is taken and deconfigured at once: measured on
NetworkManager 1.42, NM deleted cni0's address and detached its port.

Steps (both sides): NetworkManager starts over a configuration that unmanages the CNI
bridge; cni0 (10.22.0.1/24) gets a port; then ``interface-name:cni*`` is removed from
the file, as editing a profile (dropping the cni preset) and applying it would, and the
configuration is reloaded. cni0 is compared with its state before the reload.

Baseline: the naive reload, ``nmcli general reload conf``: BREAKS when cni0 changed.
Profile: the Plan's configuration and its reload action, ``netharden-nm-reload-conf``
(run once with ``--record`` first, as its NetworkManager.service drop-in does at start):
HOLDS when the helper refuses the drop and cni0 is unchanged.
"""

from __future__ import annotations

import time

from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result
from . import _nm

ID = "nm-unmanaged-drop"
TITLE = "a live reload that drops a device from the unmanaged list deconfigures it"
INCIDENT = "incident-2"
HINT = "the post-apply action netharden-nm-reload-conf (never a bare nmcli general reload)"
STACK = "networkmanager"
CNI = "cni0"
SPEC = "interface-name:cni*"
SETTLE = 1.5


def applies(ctx: Context) -> str | None:
    if not any(g.id == "cni" for g in ctx.profile.unmanaged):
        return "the profile does not unmanage the CNI bridge (cni preset)"
    return None


def _run(ctx: Context, etc_dir, reload: list[str]) -> tuple[list[str], str, str]:
    with _nm.lab(ctx, etc_dir) as lab:
        if reload[0] != "nmcli":
            lab.run(*reload, "--record")
        lab.ip("link", "add", CNI, "type", "bridge")
        lab.ip("addr", "add", "10.22.0.1/24", "dev", CNI)
        lab.ip("link", "set", CNI, "up")
        lab.ip("link", "add", "nhcniport", "type", "veth", "peer", "name", "nhcnipeer")
        lab.ip("link", "set", "nhcniport", "master", CNI)
        lab.ip("link", "set", "nhcniport", "up")
        time.sleep(0.5)
        watched = [CNI, "nhcniport"]
        before = _nm.snapshot(lab, watched)
        conf = _nm.CONF
        lab.run("sed", "-i", f"s/{SPEC.replace('*', '[*]')};\\?//; s/;{SPEC.replace('*', '[*]')}$//", conf)
        out = lab.run(*reload, check=False)
        time.sleep(SETTLE)
        said = (out.stdout + out.stderr).strip().replace("\n", " ")
        return _nm.changes(before, _nm.snapshot(lab, watched)), said, lab.udev_mode


def baseline(ctx: Context) -> Result:
    etc_dir = _nm.etc(ctx, "baseline", plan=False)
    _nm.write(etc_dir, "conf.d/50-netharden-unmanaged.conf", f"[keyfile]\nunmanaged-devices={SPEC};driver:veth\n")
    harm, _, mode = _run(ctx, etc_dir, ["nmcli", "general", "reload", "conf"])
    evidence = [f"unmanaged-devices={SPEC};driver:veth, then without {SPEC}, nmcli general reload conf, {mode}"]
    return Result(BREAKS if harm else NOT_REPRODUCIBLE, evidence + harm)


def profile(ctx: Context) -> Result:
    helper = str(ctx.helper("netharden-nm-reload-conf"))
    harm, said, mode = _run(ctx, _nm.etc(ctx, "profile", plan=True), ["sh", helper])
    evidence = [f"the Plan's configuration without {SPEC}, netharden-nm-reload-conf, {mode}", f"helper: {said}"]
    refused = "not reloaded" in said
    return Result(HOLDS if refused and not harm else FAILS, evidence + harm)
