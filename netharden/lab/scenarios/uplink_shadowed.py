"""uplink-shadowed: an Ubuntu cloud image. cloud-init writes /etc/netplan/50-cloud-init.yaml
(the NIC matched by its MAC, ``dhcp4: true``), netplan generates
/run/systemd/network/10-netplan-<if>.network (``[Match] PermanentMACAddress=... Name=<if>``), and
networkd takes the first matching file by name: 10-netplan-eth0.network sorts before
20-netharden-uplink-*.network, so the profile's uplink settings (static addresses, gateway, DNS,
MTU, RequiredForOnline) never apply. Nothing warned (the doctor's ``uplink-shadowed`` check
now does).

Both sides run the real ``netplan generate --root-dir`` (the lab's netplan step,
:meth:`~netharden.lab.scenario.Context.generated_dir`) over the YAML and give its networkd files
to the real networkd as its /run/systemd/network, with the side's /etc/systemd/network:

* A veth stands in for the NIC of the profile's first uplink (named to match its ``match.name``,
  with its ``match.mac`` or the documentation MAC 00:00:5e:00:53:0a); the cloud-init YAML
  matches it by that MAC with ``set-name`` its name. A veth has no permanent MAC, and networkd 252
  never matches ``PermanentMACAddress=`` on it (measured), so the lab's copy of every generated
  file matches that address as ``MACAddress=`` (said in the evidence): for a real NIC the
  permanent address is its MAC.
* Baseline: the profile rendered for the networkd stack (its /etc/systemd/network) plus the
  cloud-init YAML. BREAKS when the stand-in is managed by another file than the profile's uplink
  file, or one of the uplink's static addresses is absent from it (measured on the link).
* Profile: the profile's own Plan (on the netplan stack its /etc/netplan/60-netharden.yaml,
  merged by netplan with the same cloud-init YAML; on the networkd stack its networkd files) plus
  the cloud-init YAML. HOLDS when the profile's own uplink file (netplan's output for its netdef
  on the netplan stack) manages the stand-in and every static address is on it; FAILS otherwise,
  so ``netharden lab`` exits 1 for an Ubuntu profile whose settings would not take effect.

Applies to profiles of hosts that run netplan under cloud-init: ``platform.os: ubuntu`` or
``platform.stack: netplan``, with an uplink whose match a veth can stand in for (not by driver
or path).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import time
from dataclasses import replace
from pathlib import Path

from ...netplan_generate import GENERATED_DIR, generated_network
from ..netns import NetworkdLab
from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result
from .runtime_catchall import SETTLED, STANDIN_MAC, _candidates, _valid_ifname, admin, permanent_as_current

ID = "uplink-shadowed"
TITLE = "netplan's file for the NIC (cloud-init's 50-cloud-init.yaml) takes the uplink before the profile's"
INCIDENT = "config"
STACK = "networkd"  # and the netplan stack, which renders to networkd
HINT = (
    "platform.stack: netplan (the default for platform.os: ubuntu): netharden's uplink becomes a netdef of "
    "/etc/netplan/60-netharden.yaml whose generated file sorts before netplan's 10-netplan-<if>.network"
)

CLOUD_INIT = "/etc/netplan/50-cloud-init.yaml"
NETWORK_DIR = "/etc/systemd/network"
PEER = "nhshadow-p"


def cloud_init_yaml(name: str, mac: str) -> str:
    """What cloud-init writes on an Ubuntu cloud image for its first NIC."""
    return (
        "network:\n"
        "    ethernets:\n"
        f"        {name}:\n"
        "            dhcp4: true\n"
        "            match:\n"
        f"                macaddress: {mac}\n"
        f"            set-name: {name}\n"
        "    version: 2\n"
    )


def _standin(ctx: Context) -> tuple[str, str] | str:
    """(name, MAC) of the NIC stand-in for the first uplink, or why there is none."""
    up = ctx.profile.uplinks[0]
    match = up.match
    if match.drivers or match.paths:
        what = f"driver {' '.join(match.drivers)}" if match.drivers else f"path {' '.join(match.paths)}"
        return f"uplink {up.name}: its match by {what} cannot be emulated with a veth"
    names = [c for glob in match.names for c in _candidates(glob)] if match.names else ["eth0"]
    taken = [g for group in ctx.profile.unmanaged for g in group.globs]
    names = [
        c
        for c in names
        if _valid_ifname(c)
        and c != PEER
        and (not match.names or any(fnmatch.fnmatchcase(c, g) for g in match.names))
        and not any(fnmatch.fnmatchcase(c, g) for g in taken)
    ]
    if not names:
        return f"uplink {up.name}: no interface name matches {' '.join(match.names)} outside the unmanaged globs"
    return names[0], (match.macs[0] if match.macs else STANDIN_MAC)


def _required_standin(ctx: Context) -> tuple[str, str]:
    s = _standin(ctx)
    if isinstance(s, str):  # applies() said there is one
        raise RuntimeError(s)
    return s


def applies(ctx: Context) -> str | None:
    p = ctx.profile
    if p.os != "ubuntu" and p.stack != "netplan":
        return f"platform.os {p.os} with the {p.stack} stack: no netplan or cloud-init YAML owns its NICs"
    if not p.uplinks:
        return "the profile has no uplink"
    s = _standin(ctx)
    return s if isinstance(s, str) else None


def _write_network_dir(plan, dest: Path) -> Path:
    """The Plan's /etc/systemd/network (files and masks) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in plan.files:
        if os.path.dirname(f.path) == NETWORK_DIR:
            (dest / os.path.basename(f.path)).write_text(f.content)
    for link in plan.links:
        if os.path.dirname(link.path) == NETWORK_DIR:
            (dest / os.path.basename(link.path)).symlink_to(link.target)
    return dest


def _adapt(gen: Path | None, mac: str) -> list[str]:
    """The lab's copies of netplan's files match the stand-in's permanent address as its MAC."""
    if gen is None:
        return []
    changed = []
    for f in sorted(gen.glob("*.network")):
        text, edited = permanent_as_current(f.read_text())
        if edited:
            f.write_text(text)
            changed.append(f.name)
    if not changed:
        return []
    return [
        f"the lab's copies of {', '.join(changed)} match PermanentMACAddress= as MACAddress= ({mac}: a veth has none)"
    ]


def _measure(
    ctx: Context, net: Path, conf: Path | None, gen: Path | None, name: str, mac: str, own: str
) -> tuple[bool, list[str]]:
    """Run networkd with the stand-in; (the own file manages it with every static address, evidence)."""
    up = ctx.profile.uplinks[0]
    with NetworkdLab(net, conf, start=False, run_network_dir=gen) as lab:
        lab.run("sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")
        lab.ip("link", "add", name, "address", mac, "type", "veth", "peer", "name", PEER)
        lab.ip("link", "set", PEER, "up")
        lab.start()
        state = lab.wait_for(name, SETTLED, timeout=10)
        wanted = {ipaddress.ip_interface(a) for a in up.addresses}
        deadline = time.monotonic() + (5.0 if state.get("NETWORK_FILE") == own else 1.0)
        while True:
            have = {ipaddress.ip_interface(a) for a in lab.addresses(name)}
            if wanted <= have or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        state = lab.link_state(name)
    missing = [a for a in up.addresses if ipaddress.ip_interface(a) not in have]
    own_file = state.get("NETWORK_FILE") == own
    line = f"{name}: {admin(state)}"
    if up.addresses:
        on = [a for a in up.addresses if a not in missing]
        line += "; " + (f"{' '.join(on)} on it" if on else "")
        if missing:
            line += ("; " if on else "") + f"{' '.join(missing)} absent"
    if not own_file:
        line += f"; not {own}: the profile's uplink settings do not apply"
    return own_file and not missing, [line]


def baseline(ctx: Context) -> Result:
    name, mac = _required_standin(ctx)
    up = ctx.profile.uplinks[0]
    from ...renderers import build_plan

    plan = ctx.plan if ctx.profile.stack == "networkd" else build_plan(replace(ctx.profile, stack="networkd"))
    net = _write_network_dir(plan, ctx.scratch("uplink-shadowed-baseline") / "network")
    gen = ctx.generated_dir({CLOUD_INIT: cloud_init_yaml(name, mac)}, plan=False)
    assert gen is not None
    files = sorted(p.name for p in gen.iterdir())
    own = f"{NETWORK_DIR}/20-netharden-uplink-{up.name}.network"
    evidence = [
        f"{CLOUD_INIT} ({name} matched by MAC {mac}, dhcp4) through netplan generate: {', '.join(files)}; "
        f"the profile rendered for the networkd stack: {os.path.basename(own)}",
        *_adapt(gen, mac),
    ]
    ok, lines = _measure(ctx, net, None, gen, name, mac, own)
    evidence += lines
    if ok:
        return Result(
            NOT_REPRODUCIBLE,
            [f"baseline not reproducible on systemd {ctx.version}: the profile's uplink file won the NIC", *evidence],
        )
    return Result(BREAKS, evidence)


def profile(ctx: Context) -> Result:
    name, mac = _required_standin(ctx)
    up = ctx.profile.uplinks[0]
    net = _write_network_dir(ctx.plan, ctx.scratch("uplink-shadowed-profile") / "network")
    ours = ctx.netplan_yaml()
    gen = ctx.generated_dir({CLOUD_INIT: cloud_init_yaml(name, mac)})
    assert gen is not None
    if ours:
        own = f"{GENERATED_DIR}/{generated_network(up)}"
        what = f"{', '.join(sorted(ours))} with {CLOUD_INIT}"
    else:
        own = f"{NETWORK_DIR}/20-netharden-uplink-{up.name}.network"
        what = f"the profile's networkd files ({os.path.basename(own)}) with {CLOUD_INIT}"
    files = sorted(p.name for p in gen.iterdir())
    evidence = [f"{what} through netplan generate: {', '.join(files)}", *_adapt(gen, mac)]
    ok, lines = _measure(ctx, net, ctx.networkd_conf_dir(), gen, name, mac, own)
    evidence += lines
    if not ok and not ours:
        evidence.append(f"the profile has platform.stack: {ctx.profile.stack}; {HINT}")
    return Result(HOLDS if ok else FAILS, evidence)
