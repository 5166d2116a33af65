"""The role's preflight, decided on the controller from what the role gathered on the host.

The role (roles/netharden/tasks/preflight.yml) gathers with ansible.builtin modules: the files
of /etc/network and NetworkManager's directories (find + slurp), which of ifupdown's and
NetworkManager's programs exist (find), the interfaces (setup's network facts) and the
services' state (service_facts). The action plugin netharden_plan hands them here; the
decision is the doctor's own (owners.py and the ``nic-owned-by-other-manager`` check) over a
:class:`Host` whose files are those gathered plus the Plan's, so the role and ``netharden
doctor`` cannot disagree.

Outcomes:

* No other manager configures a NIC an uplink file of the Plan matches: go on.
* ifupdown does, and ``takeover`` is off, or NetworkManager does (the role does not take NICs
  from NetworkManager: make it leave them unmanaged, or use ``platform.stack:
  networkmanager``), or systemd-networkd.service is masked: refuse, before anything is
  written, naming each NIC and the file and line that configures it.
* on the netplan stack, another netplan file defeats netharden's ``/etc/netplan/60-netharden.yaml``
  (``renderers.netplan.conflicts``, the rule of the doctor's ``netplan-conflict``: a file that
  defines one of its ids, hides it, renames its NIC away or cannot be parsed): refuse, naming
  the file.
* ifupdown does and ``takeover`` is on: the files to write AFTER netharden's own (each ifupdown
  file without the NICs' stanzas and ``auto``/``allow-*`` names, and the kept backup
  ``/etc/network/interfaces.netharden-released`` with what was taken out), and that networkd
  must not be started or reloaded on this run (see the role's README: starting networkd on a
  NIC ifupdown configured now would flush the address the controller may be using; it takes
  the NIC at the next boot, when ifupdown no longer brings it up).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from ..renderers import netplan
from .checks.nic_owned_by_other_manager import conflicts, describe
from .host import Host, Iface
from .nm_config import device_from_iface
from .owners import Claim, ifupdown_claims, nm_claims, normalize_mac, read_ifupdown, release

RELEASED = "/etc/network/interfaces.netharden-released"
NETWORKD = "systemd-networkd.service"
NM_SERVICE = "NetworkManager.service"
# where the role looks (find, recursively) and what it leaves out
GATHER_DIRS = (
    *netplan.NETPLAN_DIRS,
    "/etc/network",
    "/etc/NetworkManager",
    "/run/NetworkManager",
    "/usr/lib/NetworkManager",
    "/etc/sysconfig/network-scripts",
)
PROGRAM_DIRS = ("/sbin", "/usr/sbin", "/usr/bin")
PROGRAMS = ("ifup", "NetworkManager")


@dataclass
class Decision:
    refused: list[str] = field(default_factory=list)  # the lines of the failure message
    release: list[dict] = field(default_factory=list)  # files to write: {path, content, mode}
    released: list[str] = field(default_factory=list)  # the NICs moved to networkd
    defer_networkd: bool = False  # do not start or reload networkd on this run

    def to_dict(self) -> dict:
        return {
            "refused": self.refused,
            "release": self.release,
            "released": self.released,
            "defer_networkd": self.defer_networkd,
        }


def _iface(fact: dict) -> Iface | None:
    name = fact.get("device")
    if not isinstance(name, str) or not name:
        return None
    ftype = fact.get("type") or "ether"
    loopback = ftype == "loopback" or name == "lo"
    module = fact.get("module") if isinstance(fact.get("module"), str) else None
    kind = None if loopback or (ftype == "ether" and module != "veth") else (module or ftype)
    return Iface(
        name=name,
        ifindex=0,
        kind=kind,
        driver=module,
        type="loopback" if loopback else "ether",
        mac=normalize_mac(fact.get("perm_macaddress") or fact.get("macaddress")),
        master=None,
        admin_up=bool(fact.get("active")),
        operstate="UNKNOWN",
        addr_assign_type=0,
    )


def gathered_host(plan, files: dict[str, str], programs: list[str], interfaces: list[dict]) -> Host:
    """A Host of the gathered files, the programs (as empty files) and the Plan's files and
    links, with the interfaces of the facts (no live reads on the controller)."""
    overlay: dict[str, tuple[str, str]] = {p: ("file", "") for p in programs}
    overlay.update({p: ("file", text) for p, text in files.items()})
    overlay.update({f.path: ("file", f.content) for f in plan.files})
    overlay.update({x.path: ("link", x.target) for x in plan.links})
    host = Host("/nonexistent/netharden-preflight", live=False, overlay=overlay)
    ifaces = [i for i in (_iface(f) for f in interfaces if isinstance(f, dict)) if i is not None]
    host.__dict__["interfaces"] = sorted(ifaces, key=lambda i: i.name)
    return host


def decide(
    plan,
    files: dict[str, str],
    programs: list[str],
    interfaces: list[dict],
    services: dict[str, dict],
    takeover: bool,
) -> Decision:
    host = gathered_host(plan, files, programs, interfaces)
    decision = Decision()
    if not any(f.path.startswith("/etc/systemd/network/") for f in plan.files):
        return decision  # not a networkd-stack Plan with uplinks: nothing to decide
    ours = next((f.content for f in plan.files if f.path == netplan.NETPLAN_FILE), None)
    if ours is not None:
        others = {p: t for p, t in files.items() if posixpath.dirname(p) in netplan.NETPLAN_DIRS}
        decision.refused += [f"{c} (netplan-conflict)" for c in netplan.conflicts(ours, others, netplan.NETPLAN_FILE)]
    networkd = services.get(NETWORKD) or {}
    if networkd.get("status") == "masked":
        decision.refused.append(
            f"{NETWORKD} is masked: netharden's networkd files would be inert (systemctl unmask it)"
        )
    nm = services.get(NM_SERVICE) or {}
    nm_up = nm.get("state") == "running" or nm.get("status") == "enabled"
    nics = [device_from_iface(i) for i in host.interfaces if i.type != "loopback"]
    found: list[Claim] = ifupdown_claims(host) + nm_claims(host, nics, active=nm_up)
    conflicting = conflicts(host, found)
    for nic, claim, own in conflicting:
        line = describe(host, nic, claim, own)
        if claim.manager != "ifupdown":
            decision.refused.append(
                f"{line} (the role does not take NICs from NetworkManager: make it leave {nic} unmanaged, "
                f"or use platform.stack: networkmanager)"
            )
        elif not takeover:
            decision.refused.append(f"{line} (netharden_takeover: true moves it to systemd-networkd at the next boot)")
    if decision.refused:
        return decision
    names = {nic for nic, claim, _ in conflicting if claim.manager == "ifupdown"}
    if names:
        decision.released = sorted(names)
        decision.release = release_files(host, names, files)
    released_before = RELEASED in files
    if (names or released_before) and networkd.get("state") != "running":
        decision.defer_networkd = True
    return decision


def release_files(host: Host, names: set[str], files: dict[str, str]) -> list[dict]:
    """The ifupdown files without the NICs' stanzas, then the backup with what was removed."""
    out, removed_all = [], []
    for path in read_ifupdown(host).files:
        text = files.get(path)
        if text is None:
            continue
        kept, removed = release(text, names)
        if removed:
            out.append({"path": path, "content": kept, "mode": "0644"})
            removed_all.append(
                f"# Released by netharden (netharden_takeover) from {path}: systemd-networkd configures "
                f"{' '.join(sorted(names))} from the next boot. Move it back to undo.\n{removed}"
            )
    if removed_all:
        backup = files.get(RELEASED, "")
        out.append({"path": RELEASED, "content": backup + "".join(removed_all), "mode": "0644"})
    return out


def is_gathered(path: str) -> bool:
    """Whether the role reads a found file (not ifupdown's or NetworkManager's hook scripts)."""
    return path.startswith(tuple(d + "/" for d in GATHER_DIRS)) and not (
        path.startswith(("/etc/network/if-", "/etc/NetworkManager/dispatcher.d/"))
        or posixpath.basename(path).startswith(".")
    )
