"""What the NetworkManager scenarios share: the Plan's /etc/NetworkManager as a lab
configuration, the container-side devices a runtime and CNI plugins create, and one
snapshot of what NetworkManager may change on them.

Every NetworkManager scenario starts the real NetworkManager (``netharden.lab.nm``) in
its own namespace, once over a naive configuration (baseline) and once over the
profile's rendered files. The devices come and go while NetworkManager runs (the race
of incident 2); what counts as harm is measured per device: NetworkManager's state, the
IPv6 sysctls it rewrites when it takes a device (``addr_gen_mode``, ``accept_ra``), the
master (a veth pulled out of its bridge) and the MAC and addresses.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..scenario import Context

NM_ETC = "/etc/NetworkManager"
CONF = f"{NM_ETC}/conf.d/50-netharden-unmanaged.conf"

# a docker-like bridge with two container veths, and the devices of flannel, Calico and
# the CNI bridge plugin, created while NetworkManager runs
DOCKER0 = "docker0"
DOCKER0_MAC = "02:42:5e:00:53:01"
DOCKER0_ADDRESS = "172.17.0.1/16"
ADDRESS_DELAY = 0.3  # seconds between a CNI device's creation and its address


def lab(ctx: Context, etc_dir: Path):
    """NetworkManager over ``etc_dir``, without udev or with a real systemd-udevd and
    NetworkManager's udev rules (``ctx.udev``: ``netharden lab --udev``)."""
    from ..nm import NetworkManagerLab

    return NetworkManagerLab(etc_dir, udev=ctx.udev)


def etc(ctx: Context, tag: str, *, plan: bool) -> Path:
    """A fresh copy of the Plan's /etc/NetworkManager (``plan``) or an empty one."""
    out = ctx.scratch(tag) / "NetworkManager"
    src = ctx.path(NM_ETC)
    if plan and src.is_dir():
        shutil.copytree(src, out, symlinks=True)
    else:  # what a host's package leaves: the directories, no files
        (out / "conf.d").mkdir(parents=True)
        (out / "system-connections").mkdir()
    return out


def write(root: Path, rel: str, text: str, mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def container_devices(lab, names: dict[str, str]) -> list[str]:
    """Create the devices of a container host while NetworkManager runs; ``names`` maps
    a role to its name (``veth``: docker's veth pair host ends, enslaved to docker0 as
    docker does). Returns the host-side names to watch."""
    lab.ip("link", "add", DOCKER0, "address", DOCKER0_MAC, "type", "bridge")
    lab.ip("addr", "add", DOCKER0_ADDRESS, "dev", DOCKER0)
    lab.ip("link", "set", DOCKER0, "up")
    watched = [DOCKER0]
    for i, name in enumerate(names.get("veth", "").split()):
        lab.ip("link", "add", name, "type", "veth", "peer", "name", f"nhc{i}")
        lab.ip("link", "set", name, "master", DOCKER0)
        lab.ip("link", "set", name, "up")
        lab.ip("link", "set", f"nhc{i}", "up")
        watched.append(name)
    if names.get("cali"):
        lab.ip("link", "add", names["cali"], "type", "veth", "peer", "name", "nhcali")
        lab.ip("link", "set", names["cali"], "up")
        lab.ip("link", "set", "nhcali", "up")
        watched.append(names["cali"])
    # flannel and the CNI bridge plugin create their device, bring it up and add the
    # address a moment later (flannel once it has its lease, CNI at the first pod)
    later = []
    if names.get("flannel"):
        lab.ip("link", "add", names["flannel"], "type", "vxlan", "id", "1", "dstport", "8472", "nolearning")
        lab.ip("link", "set", names["flannel"], "up")
        later.append((names["flannel"], "10.244.0.0/32"))
    if names.get("cni"):
        lab.ip("link", "add", names["cni"], "type", "bridge")
        lab.ip("link", "set", names["cni"], "up")
        later.append((names["cni"], "10.22.0.1/24"))
    time.sleep(ADDRESS_DELAY)
    for name, address in later:
        lab.ip("addr", "add", address, "dev", name)
        watched.append(name)
    return watched


def snapshot(lab, names: list[str]) -> dict[str, dict[str, str]]:
    """What NetworkManager may change on each device."""
    out = {}
    for name in names:
        if not lab.has_link(name):
            out[name] = {"exists": "no"}
            continue
        out[name] = {
            "addr_gen_mode": lab.sysctl(name, "addr_gen_mode"),
            "accept_ra": lab.sysctl(name, "accept_ra"),
            "master": lab.master(name) or "none",
            "mac": lab.mac(name),
            "ipv4": " ".join(a for a in lab.addresses(name, "inet")) or "none",
        }
    return out


def as_created(lab, snap: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``snap`` with the IPv6 sysctls a new device gets from the kernel (the namespace's
    ``default`` values): NetworkManager rewrites them within about a millisecond of the
    device's appearance, before any snapshot could be taken."""
    defaults = {key: lab.sysctl("default", key) for key in ("addr_gen_mode", "accept_ra")}
    return {name: {**fields, **defaults} if "mac" in fields else fields for name, fields in snap.items()}


def changes(before: dict, after: dict) -> list[str]:
    out = []
    for name, fields in before.items():
        for key, value in fields.items():
            now = after.get(name, {}).get(key, "gone")
            if now != value:
                out.append(f"{name}: {key} {value} -> {now}")
    return out


def states(lab, names: list[str]) -> dict[str, str]:
    known = lab.device_states()
    return {n: known.get(n, "unknown") for n in names}
