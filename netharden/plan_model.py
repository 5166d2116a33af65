"""The Plan: the format-free result of rendering a profile.

Renderers add entries; emitters turn the Plan into one output format; the Ansible
role, the lab and the doctor consume the same Plan. Every entry says which incident
or hazard it guards against (``guards``) and why (``why``), which is what
``netharden explain`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from .targets import UNIT_DIR


@dataclass(frozen=True)
class File:
    path: str  # absolute path on the target
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
    /etc/systemd/system; starting it on a live host is an Action.

    ``wanted_by`` is the ``WantedBy=`` of the unit file's ``[Install]`` section: the
    renderer passes the same tuple to the template that writes the section, so the
    symlinks ``systemctl enable`` makes (``install_links``) follow from the Unit alone.
    """

    name: str
    enabled: bool | None = None  # None: leave as is
    masked: bool = False
    guards: tuple[str, ...] = ()
    why: str = ""
    wanted_by: tuple[str, ...] = ()


def install_links(unit: Unit) -> tuple[Link, ...]:
    """The symlinks ``systemctl enable`` creates for an enabled unit whose file is in
    /etc/systemd/system: ``TARGET.wants/NAME`` for every ``WantedBy=`` target."""
    if not unit.enabled:
        return ()
    target = f"{UNIT_DIR}/{unit.name}"
    return tuple(
        Link(f"{UNIT_DIR}/{wanted}.wants/{unit.name}", target, unit.guards, f"enable {unit.name}")
        for wanted in unit.wanted_by
    )


def unit_triggers(name: str, *read: str) -> tuple[str, ...]:
    """Triggers of an action that (re)starts unit ``name``: its unit file, its drop-ins and
    the files its daemon reads at start (``read``: paths, or directories ending in "/")."""
    return (f"{UNIT_DIR}/{name}", f"{UNIT_DIR}/{name}.d/", *read)


# Action phases: the order in which a live host applies the post-apply actions
# (files are written and units enabled before the first phase).
PHASE_SYSTEMD = 10  # systemctl daemon-reload
PHASE_SYSCTL = 20  # load sysctl.d files
PHASE_UNITS = 30  # start netharden's own units (quarantine before networkd reloads)
PHASE_NETWORKD = 40  # networkctl reload
PHASE_RUNTIME = 50  # container runtimes (after networkd created their bridges)


# Classes of disruptive actions an operator allows separately (the role's
# netharden_restart_docker and netharden_restart_networkd).
ALLOW_CLASSES = ("docker", "networkd", "networkmanager")


@dataclass(frozen=True)
class Action:
    """A command to run after the files are in place on a live host.

    ``disruptive`` marks actions that interrupt running workloads (restarting dockerd
    kills its containers): appliers run them only when asked to (``allow`` names the
    class of restart an operator allows), otherwise they report them as pending.
    First-boot formats (Ignition) run none of the actions: units start at boot in
    systemd's own order.

    The renderer that makes an action also says when it is needed and how to run it:
    ``triggers`` are the paths whose change makes it necessary (exact paths, and
    directories ending in "/" for everything below them; the default "/" is any
    change); ``unit`` is the systemd unit argv starts or restarts; ``ensure_started``
    means argv only makes sure ``unit`` runs (an active unit stays as it is), so an
    applier may ensure that on every run instead of running argv when a trigger
    changed (a oneshot that finishes, such as the quarantine service, is not: it
    runs again). ``sysctls`` are the keys and values a sysctl action loads, in the
    order of its file.
    """

    id: str
    argv: tuple[str, ...]
    why: str = ""
    phase: int = PHASE_NETWORKD
    disruptive: bool = False
    triggers: tuple[str, ...] = ("/",)
    unit: str | None = None
    ensure_started: bool = False
    allow: str | None = None
    sysctls: tuple[tuple[str, str], ...] = ()


def ensure_running(id: str, unit: str, why: str, phase: int, triggers: tuple[str, ...] | None = None) -> Action:
    """``systemctl start UNIT`` as an action that only makes sure the unit runs
    (``ensure_started``); triggers default to the unit's own files."""
    return Action(
        id,
        ("systemctl", "start", unit),
        why,
        phase=phase,
        unit=unit,
        ensure_started=True,
        triggers=unit_triggers(unit) if triggers is None else triggers,
    )


# ``systemctl daemon-reload``: every renderer that writes unit files asks for this one.
DAEMON_RELOAD = Action(
    "systemd-daemon-reload",
    ("systemctl", "daemon-reload"),
    "load new and changed unit files",
    phase=PHASE_SYSTEMD,
    triggers=(f"{UNIT_DIR}/",),
)


# The first line of every generated file's header (templates/_header.j2) and of every
# emitted document's: the same on every host, so a file that does not depend on the
# host is the same bytes on every host (the host's name is in the Plan, in
# /etc/hostname and in ``netharden explain``).
GENERATED = "Generated by netharden; do not edit: change the profile and render again."

# What each guard id stands for (incidents are numbered as in DESIGN.md).
GUARDS: dict[str, str] = {
    "incident-1": "stray runtime catch-all .network took every new interface (CoreOS on VMware)",
    "incident-2": "the host's network daemon raced docker/flannel for bridges and veths",
    "incident-3": "bridge MAC followed its ports; gateway MAC changed under container churn",
    "incident-4": 'stale vx-* devices blocked Swarm overlays ("file exists")',
    "incident-5": "IPv6 disabled inside container namespaces",
    "hazard-mac-policy": "systemd >= 242 MACAddressPolicy=persistent rewrites veth/CNI MACs",
    "hazard-foreign-routes": "systemd-networkd >= 246/249 deletes routes and rules CNI plugins installed",
    "config": "host configuration requested by the profile",
}


_BY_PATH, _BY_NAME, _BY_PHASE_ID = attrgetter("path"), attrgetter("name"), attrgetter("phase", "id")

Entry = File | Link | Unit | Action


@dataclass(eq=False)
class _PathIndex:
    """The paths of a Plan's files and links, kept up to date by ``Plan.extend`` instead of
    rebuilt for every entry (rebuilding made a Plan of n files cost n^2). It holds for the
    two lists it was built from at the lengths it recorded; when the lists were replaced or
    changed length other than through ``extend`` it is rebuilt."""

    files: list[File]
    links: list[Link]
    sizes: tuple[int, int]
    paths: set[str]

    def holds_for(self, files: list[File], links: list[Link]) -> bool:
        return self.files is files and self.links is links and self.sizes == (len(files), len(links))


@dataclass
class Plan:
    profile: str
    systemd: int
    files: list[File] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # requested but not applicable to the target
    _index: _PathIndex | None = field(default=None, init=False, repr=False, compare=False)

    def add(self, entry: Entry) -> None:
        self.extend((entry,))

    def extend(self, entries: Iterable[Entry]) -> None:
        """Add each entry, in order. A path written twice raises ValueError (the entries
        before it stay added); an action whose id is already there is left out (several
        renderers ask for the same reload: the first one stays)."""
        files, links, index = self.files, self.links, self._path_index()
        paths, action_ids = index.paths, {a.id for a in self.actions}
        try:
            for entry in entries:
                if isinstance(entry, Action):
                    if entry.id not in action_ids:
                        action_ids.add(entry.id)
                        self.actions.append(entry)
                elif isinstance(entry, Unit):
                    self.units.append(entry)
                else:
                    if entry.path in paths:
                        raise ValueError(f"two plan entries write {entry.path}")
                    paths.add(entry.path)
                    if isinstance(entry, File):
                        files.append(entry)
                    else:
                        links.append(entry)
        finally:
            index.sizes = (len(files), len(links))

    def _path_index(self) -> _PathIndex:
        index = self._index
        if index is None or not index.holds_for(self.files, self.links):
            index = self._index = _PathIndex(self.files, self.links, (len(self.files), len(self.links)), self.paths())
        return index

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def paths(self) -> set[str]:
        return {f.path for f in self.files} | {link.path for link in self.links}

    def sorted(self) -> Plan:
        """A copy with every list in a stable order (files by path, actions by phase then id)."""
        return Plan(
            self.profile,
            self.systemd,
            sorted(self.files, key=_BY_PATH),
            sorted(self.links, key=_BY_PATH),
            sorted(self.units, key=_BY_NAME),
            sorted(self.actions, key=_BY_PHASE_ID),
            list(self.notes),
        )

    def to_dict(self) -> dict:
        p = self.sorted()
        return {
            "profile": p.profile,
            "systemd": p.systemd,
            "files": [
                {"path": f.path, "mode": f"{f.mode:04o}", "content": f.content, "guards": list(f.guards), "why": f.why}
                for f in p.files
            ],
            "links": [{"path": x.path, "target": x.target, "guards": list(x.guards), "why": x.why} for x in p.links],
            "units": [
                {
                    "name": u.name,
                    "enabled": u.enabled,
                    "masked": u.masked,
                    "wanted_by": list(u.wanted_by),
                    "guards": list(u.guards),
                    "why": u.why,
                }
                for u in p.units
            ],
            "actions": [_action_dict(a) for a in p.actions],
            "notes": list(p.notes),
        }


def _action_dict(a: Action) -> dict:
    return {
        "id": a.id,
        "argv": list(a.argv),
        "why": a.why,
        "phase": a.phase,
        "disruptive": a.disruptive,
        "triggers": list(a.triggers),
        "unit": a.unit,
        "ensure_started": a.ensure_started,
        "allow": a.allow,
        "sysctls": [{"key": key, "value": value} for key, value in a.sysctls],
    }
