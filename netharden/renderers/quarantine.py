"""Quarantine of stray runtime catch-all ``.network`` files (incident 1): a helper
script, a oneshot service and the path unit that starts it again on every change.

CoreOS on VMware wrote ``/run/systemd/network/00-.network`` without a usable
``[Match]``; it sorted first and took every new interface, docker's veths included.
The script (``templates/quarantine/netharden-quarantine.sh.j2``, its header explains
the rules) moves such files, never deletes them, to /run/netharden/quarantine and makes
networkd re-read its files. Nothing is rendered for an empty ``networkd.quarantine``.

Decisions:

- Reach. Only ``.network`` files directly in /run/systemd/network or
  /etc/systemd/network: the schema restricts the globs, this renderer checks again and
  the script refuses any other glob (exit 2) and any directory that is or passes
  through a symlink; it moves regular files only and never over an existing name
  (a ``.N`` suffix). Under systemd, ``ProtectSystem=strict`` leaves only those
  directories and its ``RuntimeDirectory=`` writable, so the kernel enforces the reach.
- Catch-all. Judged the way networkd reads files (case-sensitive sections, comments,
  continuations, resets, drop-ins). System conditions (Host=, Virtualization= ...) do
  not narrow the interfaces: a [Match] of only those is a catch-all on every host where
  they hold. Negative-only lists (``Name=!lo``, ``Type=!loopback``) are deliberate, not
  strays: left alone; the ``0-netharden-unmanaged-*`` files sort before them anyway.
  Since systemd 245 networkd ignores a file without a usable [Match] (before, it
  matched every interface: the CoreOS 241 incident); moving such a dead file is
  harmless. A file of zero bytes is skipped by networkd like a mask: left alone; one
  holding only a newline or comments was a catch-all before 245: moved. Quotes are
  not special in Name= (``Name="*"`` matches nothing). tests/test_quarantine_netns.py
  checks the verdicts against the real networkd: the script moves exactly the files
  that let networkd take a fresh veth.
- Reload. ``networkctl reload`` when the target's systemd has it (``supports(...,
  "networkctl.reload")``), else ``systemctl try-restart --no-block`` (networkd is ordered
  after the service: a blocking restart from inside it would deadlock). Only after a
  move, and only when networkd runs: asked from systemd when it is PID 1, otherwise
  (a container, the test namespace, where ``systemctl`` cannot answer) by looking for a
  ``systemd-network`` process in /proc.
- Ordering. The service is ``WantedBy=systemd-networkd.service`` and
  ``Before=`` it: it runs at every start of networkd (boot, restart, socket or bus
  activation) before networkd reads its files, and not at all on hosts that do not use
  networkd; ``multi-user.target`` would miss a networkd started by hand or activation.
  Failing does not stop networkd (Wants=, not Requires=). The path unit is wanted by
  networkd too and watching before it starts.
- The path unit uses ``PathChanged=`` on each directory of the globs, with
  ``MakeDirectory=yes`` (the runtime directory may not exist yet at boot).
  ``DirectoryNotEmpty=`` would start the service again after every run while a
  legitimate file stays. The service's own moves are events too, but they happen while
  it runs, so they merge into the running start job. A writer that fights back is
  stopped by the start limit (10 per 30 s): the path unit then fails visibly.
- Logs: plain stderr lines (the journal, with syslog priority prefixes under systemd);
  each move is logged at warning priority.
- Tests run the real script on scratch directories through the test-only
  ``NETHARDEN_QUARANTINE_ROOT`` prefix (it can only narrow the reach and turns the
  reload off); the service unsets it with ``UnsetEnvironment=``.
"""

from __future__ import annotations

from functools import lru_cache

from ..plan_model import DAEMON_RELOAD, PHASE_UNITS, Action, File, Plan, Unit, ensure_running, unit_triggers
from ..profile import Profile
from ..systemd import supports
from ..targets import STATE_DIR, UNIT_DIR
from ..templating import render as render_template

SCRIPT = "netharden-quarantine"
SERVICE = "netharden-quarantine.service"
PATH_UNIT = "netharden-quarantine.path"
QUARANTINE_DIR = f"{STATE_DIR}/quarantine"
ALLOWED_DIRS = ("/run/systemd/network", "/etc/systemd/network")
GUARDS = ("incident-1",)
# [Install] of both units: pulled in by every start of networkd (see Ordering above)
WANTED_BY = ("systemd-networkd.service",)


def watched_dirs(globs: tuple[str, ...]) -> tuple[str, ...]:
    """The directories of the globs, sorted; refuses any other directory (the schema
    already did: this is the renderer's own guard)."""
    dirs = set()
    for glob in globs:
        directory, _, name = glob.rpartition("/")
        if directory not in ALLOWED_DIRS or not name.endswith(".network"):
            raise ValueError(f"quarantine glob outside {' and '.join(ALLOWED_DIRS)}: {glob!r}")
        dirs.add(directory)
    return tuple(sorted(dirs))


def render(profile: Profile, plan: Plan) -> None:
    if profile.quarantine:
        plan.extend(entries(profile.quarantine, profile.helper_dir, profile.systemd))


@lru_cache(maxsize=64)
def entries(globs: tuple[str, ...], helper_dir: str, systemd: int) -> tuple[File | Unit | Action, ...]:
    script, dirs = f"{helper_dir}/{SCRIPT}", watched_dirs(globs)
    context = {
        "guards": GUARDS,
        "script": script,
        "globs": globs,
        "dirs": dirs,
        "reload": supports(systemd, "networkctl.reload"),
        "runtime_directory": QUARANTINE_DIR.removeprefix("/run/"),
        "wanted_by": WANTED_BY,
    }
    what = "Quarantine catch-all .network files matching " + " ".join(globs)
    out: list[File | Unit | Action] = []
    for path, template, mode, why in (
        (script, "quarantine/netharden-quarantine.sh.j2", 0o755, f"Move catch-all .network files to {QUARANTINE_DIR}"),
        (
            f"{UNIT_DIR}/{SERVICE}",
            "quarantine/netharden-quarantine.service.j2",
            0o644,
            f"{what}, before systemd-networkd starts",
        ),
        (
            f"{UNIT_DIR}/{PATH_UNIT}",
            "quarantine/netharden-quarantine.path.j2",
            0o644,
            f"Run {SERVICE} whenever a file appears in " + " ".join(dirs),
        ),
    ):
        text = render_template(template, **context, why=why)
        out.append(File(path=path, content=text, mode=mode, guards=GUARDS, why=why))
    out += [
        Unit(
            SERVICE, enabled=True, guards=GUARDS, why=f"{what}, at every start of systemd-networkd", wanted_by=WANTED_BY
        ),
        Unit(PATH_UNIT, enabled=True, guards=GUARDS, why=f"{what}, whenever one is written", wanted_by=WANTED_BY),
        DAEMON_RELOAD,
        ensure_running("quarantine-path", PATH_UNIT, "watch for stray catch-all .network files", PHASE_UNITS),
        # a oneshot: starting it runs the script again, so it runs when the script or its unit changed
        Action(
            "quarantine-run",
            ("systemctl", "start", SERVICE),
            "quarantine the catch-all .network files already there",
            phase=PHASE_UNITS,
            triggers=unit_triggers(SERVICE, script),
            unit=SERVICE,
        ),
    ]
    return tuple(out)
