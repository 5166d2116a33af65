"""The Plan: the format-free result of rendering a profile.

Renderers add entries; emitters turn the Plan into one output format; the Ansible
role, the lab and the doctor consume the same Plan. Every entry says which incident
or hazard it guards against (``guards``) and why (``why``), which is what
``netharden explain`` prints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter


@dataclass(frozen=True)
class File:
    path: str            # absolute path on the target
    content: str
    mode: int = 0o644
    guards: tuple[str, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Link:
    """A symlink, e.g. a mask: /etc/systemd/network/50-docker.network -> /dev/null."""
    path: str
    target: str
    guards: tuple[str, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Unit:
    """A systemd unit to enable or mask. Its unit file and drop-ins are Files under
    /etc/systemd/system; starting it on a live host is an Action."""
    name: str
    enabled: bool | None = None   # None: leave as is
    masked: bool = False
    guards: tuple[str, ...] = ()
    why: str = ""


# Action phases: the order in which a live host applies the post-apply actions
# (files are written and units enabled before the first phase).
PHASE_SYSTEMD = 10    # systemctl daemon-reload
PHASE_SYSCTL = 20     # load sysctl.d files
PHASE_UNITS = 30      # start netharden's own units (quarantine before networkd reloads)
PHASE_NETWORKD = 40   # networkctl reload
PHASE_RUNTIME = 50    # container runtimes (after networkd created their bridges)


@dataclass(frozen=True)
class Action:
    """A command to run after the files are in place on a live host.

    ``disruptive`` marks actions that interrupt running workloads (restarting dockerd
    kills its containers): appliers run them only when asked to, otherwise they
    report them as pending. First-boot formats (Ignition) run none of the actions:
    units start at boot in systemd's own order.
    """
    id: str
    argv: tuple[str, ...]
    why: str = ""
    phase: int = PHASE_NETWORKD
    disruptive: bool = False


# What each guard id stands for (incidents are numbered as in DESIGN.md).
GUARDS: dict[str, str] = {
    "incident-1": "stray runtime catch-all .network took every new interface (CoreOS on VMware)",
    "incident-2": "systemd-networkd raced docker/flannel for bridges and veths",
    "incident-3": "bridge MAC followed its ports; gateway MAC changed under container churn",
    "incident-4": "stale vx-* devices blocked Swarm overlays (\"file exists\")",
    "incident-5": "IPv6 disabled inside container namespaces",
    "hazard-mac-policy": "systemd >= 242 MACAddressPolicy=persistent rewrites veth/CNI MACs",
    "hazard-foreign-routes": "systemd-networkd >= 246/249 deletes routes and rules CNI plugins installed",
    "config": "host configuration requested by the profile",
}


_BY_PATH, _BY_NAME, _BY_PHASE_ID = attrgetter("path"), attrgetter("name"), attrgetter("phase", "id")


@dataclass
class Plan:
    profile: str
    systemd: int
    files: list[File] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # requested but not applicable to the target

    def add(self, entry: File | Link | Unit | Action) -> None:
        if isinstance(entry, (File, Link)):
            if entry.path in self._known_paths():
                raise ValueError(f"two plan entries write {entry.path}")
            (self.files if isinstance(entry, File) else self.links).append(entry)
            index = self._index
            index[4].add(entry.path)
            index[1], index[3] = len(self.files), len(self.links)
        elif isinstance(entry, Unit):
            self.units.append(entry)
        else:
            if any(a.id == entry.id for a in self.actions):
                return  # several renderers may ask for the same reload
            self.actions.append(entry)

    def extend(self, entries) -> None:
        """``add`` each entry, in order (one look at the path index for all of them)."""
        known = self._known_paths()
        files, links = self.files, self.links
        try:
            for entry in entries:
                kind = type(entry)
                if kind is File or kind is Link or isinstance(entry, (File, Link)):
                    if entry.path in known:
                        raise ValueError(f"two plan entries write {entry.path}")
                    (files if isinstance(entry, File) else links).append(entry)
                    known.add(entry.path)
                elif isinstance(entry, Unit):
                    self.units.append(entry)
                elif not any(a.id == entry.id for a in self.actions):
                    self.actions.append(entry)
        finally:
            index = self._index
            index[1], index[3] = len(files), len(links)

    def _known_paths(self) -> set[str]:
        """``paths()``, kept up to date by ``add`` instead of rebuilt for every entry
        (rebuilding made a Plan of n files cost n^2). The set is rebuilt whenever the
        lists were replaced or changed length other than through ``add``."""
        index = self.__dict__.get("_index")
        if (index is None or index[0] is not self.files or index[1] != len(self.files)
                or index[2] is not self.links or index[3] != len(self.links)):
            index = self.__dict__["_index"] = [self.files, len(self.files), self.links, len(self.links), self.paths()]
        return index[4]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def paths(self) -> set[str]:
        return {f.path for f in self.files} | {link.path for link in self.links}

    def sorted(self) -> "Plan":
        """A copy with every list in a stable order (files by path, actions by phase then id)."""
        return Plan(self.profile, self.systemd,
                    sorted(self.files, key=_BY_PATH), sorted(self.links, key=_BY_PATH),
                    sorted(self.units, key=_BY_NAME), sorted(self.actions, key=_BY_PHASE_ID),
                    list(self.notes))

    def to_dict(self) -> dict:
        p = self.sorted()
        return {
            "profile": p.profile, "systemd": p.systemd,
            "files": [{"path": f.path, "mode": f"{f.mode:04o}", "content": f.content,
                       "guards": list(f.guards), "why": f.why} for f in p.files],
            "links": [{"path": x.path, "target": x.target, "guards": list(x.guards), "why": x.why} for x in p.links],
            "units": [{"name": u.name, "enabled": u.enabled, "masked": u.masked,
                       "guards": list(u.guards), "why": u.why} for u in p.units],
            "actions": [{"id": a.id, "argv": list(a.argv), "why": a.why, "phase": a.phase,
                         "disruptive": a.disruptive} for a in p.actions],
            "notes": list(p.notes),
        }
