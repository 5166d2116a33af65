"""``--format coreos-cloud-config``: the Plan as a legacy Container Linux cloud-config,
for hosts still on coreos-cloudinit (CoreOS Container Linux, Flatcar releases that still
ship it).

The facts below are from coreos-cloudinit's source (github.com/coreos/coreos-cloudinit):
``config/config.go`` (document shape), ``config/unit.go`` and ``config/file.go`` (fields
and their ``valid:`` patterns), ``system/unit.go`` (``Destination``), ``system/systemd.go``
(``PlaceUnit``, ``MaskUnit``), ``system/file.go`` (``WriteFile``),
``initialize/config.go`` (``Apply``, ``processUnits``) and ``config/validate/rules.go``.

Layout:

- The first line is ``#cloud-config`` (``config.IsCloudConfig`` reads only that line),
  then ``coreos:`` with ``units:`` and a top-level ``write_files:``.
- Network files ``/etc/systemd/network/NAME.{network,netdev,link}`` (mode 0644) become
  ``coreos.units`` entries with ``runtime: false``: ``Unit.Destination`` puts a unit whose
  suffix is network/netdev/link in ``/etc/systemd/network`` (``/run/...`` with
  ``runtime: true``) and ``PlaceUnit`` writes it 0644.
- Unit files ``/etc/systemd/system/NAME`` and drop-ins ``NAME.d/*.conf`` (mode 0644, see
  ``_systemd.split_units``) become units with ``content`` and ``drop_ins`` (written to
  ``/etc/systemd/system[/NAME.d/DROPIN]``), ``enable: true`` from ``Plan.units``
  (coreos-cloudinit calls systemd's EnableUnitFiles, i.e. ``systemctl enable``).
- Masks: a Plan link ``-> /dev/null`` at a unit path (``/etc/systemd/network/50-docker.network``)
  and a masked ``Plan.units`` entry become ``mask: true``. ``MaskUnit`` symlinks
  ``Destination()`` to /dev/null, and ``Destination`` uses the network directory for a
  ``.network`` name, so the link lands at ``/etc/systemd/network/50-docker.network``
  exactly like the tree's.
- Everything else goes to ``write_files``: ``permissions`` as a quoted octal string
  (``"0755"``; the validator's pattern is ``^0?[0-7]{3,4}$``), ``owner: "root:root"``, and
  ``content`` as a literal block (``_yaml.block``) when ``_yaml.block_ok`` accepts it,
  else ``encoding: b64`` (strict base64, padding kept). An empty file is ``content: ""``.
- coreos-cloudinit skips a unit or drop-in whose content is empty (``processUnits``:
  ``if unit.Content != ""``), so empty unit files stay ``write_files`` entries, which
  write them. A unit content that is not a literal block cannot be base64 (units have no
  ``encoding``): it is the double-quoted scalar with escapes (``_yaml.quoted``), which a
  libyaml-derived parser such as go-yaml reads back unchanged.

Post-apply actions. coreos-cloudinit has no ``runcmd``; it runs the user-data at every
boot and, in ``processUnits``, after writing all files and units: ``daemon-reload`` (when
a unit or drop-in was written), a **restart of systemd-networkd** (whenever the units
list holds a network/netdev/link unit, masks included), then each unit's ``command``
(start, stop, restart, reload, try-restart, reload-or-restart, reload-or-try-restart) in
list order. The Plan's actions map onto that, in phase order:

- ``systemctl daemon-reload``: done by coreos-cloudinit itself (a Plan with the action
  but no unit or drop-in to write is refused: nothing would reload).
- ``networkctl reload`` and start/reload/restart/try-restart of
  ``systemd-networkd.service``, disruptive or not: coreos-cloudinit's own networkd
  restart (it also re-reads ``networkd.conf``, which a reload would not). It is a
  restart, at every run: coreos-cloudinit cannot be told not to, as long as network
  files are units, so the header says so.
- ``systemctl VERB UNIT`` with a VERB above: ``command: VERB`` on that unit's entry (one
  command per unit; entries with a command come last, in action order).
- ``sysctl -p /etc/sysctl.d/FILE``: ``systemd-sysctl.service`` with ``command: restart``,
  which loads every sysctl.d file, ours included (at the first boot the file arrives
  after systemd-sysctl ran).
- Disruptive actions (restarting a running dockerd) are not run: they are listed in a
  comment under the header as pending. Other actions cannot be expressed: the emitter
  refuses the Plan rather than drop them silently.

Consequence of coreos-cloudinit's fixed order: networkd is restarted before the unit
commands run, so the quarantine helper's ``start`` comes after that restart; the
restart itself pulls the quarantine service in first (it is enabled ``WantedBy=`` and
``Before=systemd-networkd.service``, and coreos-cloudinit enables units before it
restarts networkd).

Refused Plans (``UsageError``): files under ``/usr`` (read-only on Container Linux; the
validator's ``checkWriteFiles`` reports them as errors: render a coreos or flatcar
profile), modes with bits above 0777 (Go's ``os.FileMode`` drops a raw setuid bit), links
other than unit masks (coreos-cloudinit cannot make symlinks; the enablement symlinks of a
vendor unit the Plan enables, such as systemd-networkd.service's, are left out: its
``enable: true`` makes them), units to disable, a masked
unit that also has a unit file, and actions with no coreos-cloudinit equivalent.

The YAML is written by ``_yaml`` (its docstring says why each form reads back unchanged):
every string is double-quoted (``quoted``) or a literal block (``block``), and the
profile name, notes and pending actions stand in the comments as ``comment_text`` writes
them. Output is deterministic: units and files in a stable order, no timestamps.
"""

from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass, field

from ..plan_model import GENERATED, Action, File, Plan
from ..problems import UsageError
from ..targets import UNIT_DIR
from ._systemd import UNIT_SUFFIXES, is_vendor_enablement, split_units
from ._yaml import block_ok, block_or_quoted, quoted
from ._yaml import comment_text as _comment

KIND = "stream"

NETWORK_DIR = "/etc/systemd/network"
NETWORK_SUFFIXES = (".network", ".netdev", ".link")
# config/unit.go: `valid:"^(start|stop|restart|reload|try-restart|reload-or-restart|reload-or-try-restart)$"`
COMMANDS = ("start", "stop", "restart", "reload", "try-restart", "reload-or-restart", "reload-or-try-restart")
NETWORKD = "systemd-networkd.service"
SYSCTL_DIR = "/etc/sysctl.d/"


@dataclass
class CoreosUnit:
    """One ``coreos.units`` entry."""

    name: str
    content: str | None = None
    dropins: list[tuple[str, str]] = field(default_factory=list)
    enable: bool = False
    mask: bool = False
    command: str | None = None
    order: int = -1  # position of its command among the Plan's actions


def _refuse(message: str) -> UsageError:
    return UsageError(f"--format coreos-cloud-config: {message}")


def _is_network(name: str) -> bool:
    return name.endswith(NETWORK_SUFFIXES)


def layout(plan: Plan) -> tuple[list[CoreosUnit], list[File], list[Action]]:
    """(coreos.units in list order, write_files in path order, disruptive actions not run)."""
    p = plan.sorted()
    for f in p.files:
        if f.mode & ~0o777:
            raise _refuse(f"{f.path}: mode {f.mode:04o} has bits above 0777, which coreos-cloudinit drops")
    sys_units, rest = split_units(p)
    units: dict[str, CoreosUnit] = {}
    files: list[File] = []
    for su in sys_units:
        if su.enabled is False:
            raise _refuse(f"{su.name}: coreos-cloudinit cannot disable a unit")
        if su.masked and su.contents is not None:
            raise _refuse(f"{su.name}: masked and written at the same time")
        unit = CoreosUnit(su.name, enable=bool(su.enabled), mask=su.masked)
        unit.content = su.contents  # empty units stay files (split_units): processUnits skips them
        unit.dropins.extend(su.dropins)
        units[su.name] = unit
    for f in rest:
        directory, _, base = f.path.rpartition("/")
        if directory == NETWORK_DIR and _is_network(base) and f.mode == 0o644 and f.content != "":
            units[base] = CoreosUnit(base, content=f.content)
        else:
            files.append(f)
    vendor_enabled = any(su.enabled and su.contents is None for su in sys_units)
    for link in p.links:
        if vendor_enabled and is_vendor_enablement(link.path, link.target):
            continue  # enable: true on the vendor unit makes it (EnableUnitFiles, with its Also= units)
        directory, _, base = link.path.rpartition("/")
        is_mask = link.target == "/dev/null" and (
            (directory == NETWORK_DIR and _is_network(base)) or (directory == UNIT_DIR and base.endswith(UNIT_SUFFIXES))
        )
        if not is_mask:
            raise _refuse(
                f"{link.path} -> {link.target}: coreos-cloudinit can only make unit masks (-> /dev/null "
                f"in {UNIT_DIR} or {NETWORK_DIR})"
            )
        unit = units.setdefault(base, CoreosUnit(base))
        if unit.content is not None:
            raise _refuse(f"{base}: masked and written at the same time")
        unit.mask = True
    for f in files:
        if posixpath.dirname(f.path).startswith("/usr"):
            raise _refuse(
                f"{f.path}: /usr is read-only on Container Linux and coreos-cloudinit's validator rejects "
                f"files under /usr; render a profile whose platform.os is coreos or flatcar"
            )
    pending = _map_actions(p, units)
    kept = [u for u in units.values() if u.content is not None or u.dropins or u.enable or u.mask or u.command]
    ordered = sorted(kept, key=lambda u: (u.command is not None, u.order, u.name))
    return ordered, sorted(files, key=lambda f: f.path), pending


def _map_actions(p: Plan, units: dict[str, CoreosUnit]) -> list[Action]:
    """Attach the Plan's actions to unit commands (see the module docstring); return the
    disruptive ones, which are not run."""
    reloads = any(u.content is not None or u.dropins for u in units.values())
    restarts_networkd = any(_is_network(name) for name in units)
    pending: list[Action] = []
    for order, action in enumerate(p.actions):
        argv = action.argv
        if restarts_networkd and (
            argv == ("networkctl", "reload")
            or (len(argv) == 3 and argv[0] == "systemctl" and argv[2] == NETWORKD and argv[1] != "stop")
        ):
            continue  # coreos-cloudinit restarts networkd anyway
        if action.disruptive:
            pending.append(action)
            continue
        if argv == ("systemctl", "daemon-reload") and reloads:
            continue
        if (
            len(argv) == 3
            and argv[:2] == ("sysctl", "-p")
            and argv[2].startswith(SYSCTL_DIR)
            and "/" not in argv[2][len(SYSCTL_DIR) :]
        ):
            verb, name = "restart", "systemd-sysctl.service"
        elif len(argv) == 3 and argv[0] == "systemctl" and argv[1] in COMMANDS and argv[2].endswith(UNIT_SUFFIXES):
            verb, name = argv[1], argv[2]
        else:
            raise _refuse(f"action {action.id!r} ({' '.join(argv)}) has no coreos-cloudinit equivalent")
        unit = units.setdefault(name, CoreosUnit(name))
        if unit.command not in (None, verb):
            raise _refuse(f"{name}: two commands ({unit.command}, {verb}); coreos-cloudinit runs one per unit")
        if unit.command is None:
            unit.command, unit.order = verb, order
    return pending


def render(plan: Plan) -> bytes:
    units, files, pending = layout(plan)
    out = [
        "#cloud-config",
        f"# {GENERATED}",
        f"# Host {_comment(plan.profile)} (systemd {plan.systemd}) for coreos-cloudinit.",
    ]
    if any(_is_network(u.name) for u in units):
        out.append(
            "# coreos-cloudinit restarts systemd-networkd itself, at every run, after placing the network units."
        )
    if pending:
        out.append("# Not run (disruptive: run them when the workloads can take it):")
        out += [f"#   {_comment(' '.join(a.argv))}" for a in pending]
    out += [f"# note: {_comment(text)}" for text in plan.notes]
    out.append("coreos:")
    out.append("  units:" if units else "  units: []")
    for u in units:
        out.append(f"    - name: {quoted(u.name)}")
        out.append("      runtime: false")
        if u.enable:
            out.append("      enable: true")
        if u.mask:
            out.append("      mask: true")
        if u.command:
            out.append(f"      command: {quoted(u.command)}")
        if u.content is not None:
            out.append(f"      content: {block_or_quoted(u.content, 8)}")
        if u.dropins:
            out.append("      drop_ins:")
            for name, contents in u.dropins:
                out.append(f"        - name: {quoted(name)}")
                out.append(f"          content: {block_or_quoted(contents, 12)}")
    out.append("write_files:" if files else "write_files: []")
    for f in files:
        out.append(f"  - path: {quoted(f.path)}")
        out.append(f"    permissions: {quoted(f'{f.mode:04o}')}")
        out.append('    owner: "root:root"')
        if f.content == "" or block_ok(f.content):
            out.append(f"    content: {block_or_quoted(f.content, 6)}")
        else:
            out.append('    encoding: "b64"')
            out.append(f"    content: {quoted(base64.b64encode(f.content.encode('utf-8')).decode('ascii'))}")
    return ("\n".join(out) + "\n").encode("utf-8")
