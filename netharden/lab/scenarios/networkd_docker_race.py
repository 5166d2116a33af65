"""networkd-docker-race (incident 2): Kubernetes + flannel on CoreOS. Random pods
started without network: systemd-networkd raced dockerd for its bridge and veths,
because the docker package shipped vendor files that told networkd to manage them.

The vendor files, as CoreOS Container Linux shipped them in /usr/lib/systemd/network
(coreos/coreos-overlay, app-emulation/docker/files/):

- ``50-docker.network`` (commit 200c033fe5fe9776f35a937d0b3a4caba93c0442):
  ``[Match] Type=bridge Name=docker*`` and an empty ``[Network]``;
- ``50-docker-veth.network`` (commit c3469dd7f041f4e77a199229901f2888c1baa8ed):
  ``[Match] Driver=veth`` and an empty ``[Network]``.

A matching file with an empty [Network] is not harmless: networkd manages the link
with its defaults. coreos/docker#30 ("Work around races from systemd-networkd hijacking
the veths", 2016) describes the harm: networkd "wipes all existing configuration",
taking veths out of the bridge. coreos/coreos-overlay#2300 (Dec 2016, "Stop networkd
from interfering with Docker network interfaces") then turned them into ``[Link]
Unmanaged=yes`` files (50-docker.network, later with ``Name=docker* br-*``, and
90-docker-veth.network); hosts that kept or copied the old files kept the race.

Where the files go: networkd reads /etc, /run, /usr/local/lib and /usr/lib
systemd/network, sorts all ``.network`` files by file name, and a file in /etc
shadows one of the SAME name in a later directory (a symlink to /dev/null there masks
it). The profile's masks are such /etc symlinks, so the vendor files must lie in the
vendor directory, not beside the masks: the lab mounts a tmpfs over
/usr/lib/systemd/network inside its private mount namespace (NetworkdLab hides the
host's vendor files behind an empty read-only tmpfs; this one is stacked on it and
dies with the namespace) and writes the two files there. Where the host has no
/usr/lib/systemd/network to mount on, they go to the lab's /run/systemd/network,
which shadows and sorts the same way. Without udev in the lab ``Type=bridge`` never
matches (the lab sees ``Type=ether`` for bridges), so 50-docker.network is replayed
with ``Kind=bridge`` (``Driver=bridge`` before systemd 251), which selects the same
devices: the evidence says so.

The race: the docker-like step of runtime-catchall (:func:`runtime_catchall.docker_like`:
docker0 02:42:5e:00:53:01 with 172.17.0.1/16, two veths as its ports, their container
ends in a container namespace) runs first, then networkd starts, is reloaded
(``networkctl reload``) and restarted. After each step the interfaces are compared
with their state right after the docker-like step (MAC, MTU, flags, operstate, master,
addresses, IPv6 address generation mode, every ``net.ipv4.conf.IF.*`` and
``net.ipv6.conf.IF.*`` sysctl).

Baseline (a naive host: nothing in /etc/systemd/network): BREAKS when networkd changes
what docker set. Measured on systemd 252: networkd claims all three (configuring),
takes both veths out of docker0 (master docker0 -> none: the containers are cut off),
docker0 loses its carrier (NO-CARRIER, operstate DOWN) and each gets ``accept_ra``
1 -> 0 and ``promote_secondaries`` 0 -> 1; docker0 keeps 172.17.0.1/16.
Profile (its /etc/systemd/network and networkd.conf.d): HOLDS when after start, reload
and restart the three stay ``unmanaged`` and byte for byte as docker set them.
Applies when the profile masks one of the two vendor files or marks docker0 or
docker's veths Unmanaged.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ..netns import NetworkdLab
from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result
from .runtime_catchall import (
    BRIDGE,
    BRIDGE_MAC,
    GATEWAY,
    NAMES,
    VETHS,
    admin,
    changes,
    docker_like,
    lab_host,
    lab_snapshot,
    lab_states,
    sysctl_count,
)

ID = "networkd-docker-race"
TITLE = "vendor 50-docker*.network make networkd race dockerd for its bridge and veths"
INCIDENT = "incident-2"
STACK = "networkd"
HINT = (
    "networkd.mask: [50-docker.network, 50-docker-veth.network] and unmanaged.presets docker and veth "
    "(Unmanaged=yes for docker0 and veth*)"
)

# CoreOS Container Linux, app-emulation/docker/files/ before Dec 2016 (see the docstring)
VENDOR = {
    "50-docker.network": "[Match]\nType=bridge\nName=docker*\n\n[Network]\n",
    "50-docker-veth.network": "[Match]\nDriver=veth\n\n[Network]\n",
}
VENDOR_DIR = "/usr/lib/systemd/network"
FALLBACK_DIR = "/run/systemd/network"
STEPS = ("start", "reload", "restart")
Steps = list[tuple[str, dict, dict]]  # (step, networkd's state per link, interface state per link)


def vendor_text(name: str, version: int) -> str:
    """The vendor file as the lab's networkd can match it (no udev: no Type=bridge)."""
    return VENDOR[name].replace("Type=bridge", "Kind=bridge" if version >= 251 else "Driver=bridge")


def install_vendor_files(lab: NetworkdLab, version: int) -> str:
    """Put the vendor files where a distribution puts them; returns that directory."""
    directory = FALLBACK_DIR
    if os.path.isdir(VENDOR_DIR):
        lab.run("mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev,size=64k", "nhlab-vendor", VENDOR_DIR)
        directory = VENDOR_DIR
    for name in VENDOR:
        path = lab.root_path(f"{directory}/{name}")
        path.write_text(vendor_text(name, version))
        path.chmod(0o644)
    return directory


def _unmanaged(ctx: Context, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for group in ctx.profile.unmanaged for glob in group.globs)


def applies(ctx: Context) -> str | None:
    masked = [m for m in VENDOR if m in ctx.profile.masks]
    if not masked and not any(_unmanaged(ctx, n) for n in NAMES):
        return (
            "the profile neither masks 50-docker.network / 50-docker-veth.network nor marks docker0 or "
            "docker's veths Unmanaged"
        )
    return None


def race(
    ctx: Context, network_dir: Path, conf_dir: Path | None = None, run_dir: Path | None = None
) -> tuple[str, dict, Steps]:
    """The docker-like step, then networkd start, reload, restart. Returns the vendor
    directory, docker's own state and (step, networkd states, interface state) per step.
    ``run_dir``: files for the lab's /run/systemd/network (netplan's output)."""
    steps = []
    with ctx.netns("ctr") as ctr, NetworkdLab(network_dir, conf_dir, start=False, run_network_dir=run_dir) as lab:
        directory = install_vendor_files(lab, ctx.version)
        docker_like(ctx, lab_host(lab), str(lab.holder_pid), ctr)
        docker = lab_snapshot(lab)
        for step in STEPS:
            {"start": lab.start, "reload": lab.reload, "restart": lab.restart}[step]()
            states = lab_states(lab)
            steps.append((step, states, lab_snapshot(lab)))
    return directory, docker, steps


def _setup_lines(directory: str, version: int) -> list[str]:
    return [
        f"{', '.join(VENDOR)} as CoreOS shipped them before Dec 2016, in {directory} "
        f"(Type=bridge replayed as {'Kind' if version >= 251 else 'Driver'}=bridge: no udev in the lab)",
        f"{BRIDGE} ({BRIDGE_MAC}, {GATEWAY}) with {len(VETHS)} veth ports set up before networkd starts",
    ]


def _step_lines(docker: dict, steps: Steps) -> tuple[bool, bool, list[str]]:
    """(claimed anything, changed anything, evidence): per step and interface, what
    differs from the previous step (networkd's state of the link and the link itself)."""
    claimed = changed = False
    lines: list[str] = []
    previous = docker
    previous_states: dict[str, dict] = {n: {} for n in NAMES}
    for step, states, state in steps:
        count = len(lines)
        for name in NAMES:
            diff = changes(previous.get(name), state.get(name))
            st, before = states[name], previous_states[name]
            claimed |= st.get("ADMIN_STATE") != "unmanaged"
            changed |= bool(diff)
            moved = (st.get("ADMIN_STATE"), st.get("NETWORK_FILE")) != (
                before.get("ADMIN_STATE"),
                before.get("NETWORK_FILE"),
            )
            if diff or (moved and st.get("ADMIN_STATE") != "unmanaged"):
                lines.append(f"{step}: {name}: {admin(st)}" + "".join(f"; {d}" for d in diff))
        if len(lines) == count:
            lines.append(f"{step}: no change")
        previous, previous_states = state, states
    return claimed, changed, lines


def baseline(ctx: Context) -> Result:
    empty = ctx.scratch("networkd-docker-race-baseline")
    directory, docker, steps = race(ctx, empty)
    claimed, changed, lines = _step_lines(docker, steps)
    evidence = [*_setup_lines(directory, ctx.version), "/etc/systemd/network empty (a naive host)", *lines]
    if changed:
        return Result(BREAKS, evidence)
    why = "claimed but changed nothing docker set" if claimed else "left unmanaged"
    return Result(
        NOT_REPRODUCIBLE,
        [f"baseline not reproducible on systemd {ctx.version}: docker0 and its veths {why}", *evidence],
    )


def profile(ctx: Context) -> Result:
    net = ctx.network_dir()
    masks = sorted(m for m in VENDOR if (net / m).is_symlink() and os.readlink(net / m) == "/dev/null")
    unmanaged = [n for n in NAMES if _unmanaged(ctx, n)]
    directory, docker, steps = race(ctx, net, ctx.networkd_conf_dir(), ctx.plan_generated)
    claimed, changed, lines = _step_lines(docker, steps)
    evidence = [
        *_setup_lines(directory, ctx.version),
        f"masked in /etc/systemd/network: {', '.join(masks) or 'none'}; "
        f"Unmanaged=yes: {', '.join(unmanaged) or 'none'}",
    ]
    if claimed or changed:
        return Result(FAILS, evidence + lines)
    last = steps[-1][2]
    evidence.append(
        f"after {', '.join(STEPS)}: {', '.join(NAMES)} unmanaged; MAC, MTU, flags, master, addresses and "
        f"{sysctl_count(last)} sysctls byte for byte as docker set them"
    )
    return Result(HOLDS, evidence)
