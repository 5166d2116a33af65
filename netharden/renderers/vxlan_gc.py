"""The stale VXLAN device collector (incident 4): a helper script, a oneshot service
and the timer that runs it.

dockerd can leave dead ``vx-*`` devices behind; Swarm then fails to create the overlay
("error creating VXLAN interface: file exists"). Nothing is rendered for mode ``off``.

Decisions:

- The script text does not depend on the profile's settings: mode, pattern, state
  directory and textfile directory are arguments on the unit's ``ExecStart=`` line
  (quoted by the ``sh`` filter), so the same script is tested in a network namespace
  with temporary directories.
- Only devices of kind vxlan are considered (``ip -o link show type vxlan``), so a
  veth or bridge that matches the pattern is never touched. Stale means: name matches
  the glob, administratively down (no UP flag), no master. A device is acted on only
  when it was stale at the previous run too, identified by name AND ifindex (a device
  deleted and created again under the same name starts over); remove mode looks the
  device up again right before ``ip link del``. The state is the previous run's stale
  set in /run/netharden/vxlan-gc/stale (tmpfs: after a reboot two runs are needed).
- The metric (``netharden_stale_vxlan_devices{mode=...}`` plus pending and removed
  gauges) replaces ``netharden_vxlan_gc.prom`` atomically (temporary name that
  node-exporter ignores + rename). A textfile directory that does not exist is not
  created: it belongs to node-exporter; the script logs a warning and goes on.
  node-exporter's own ``node_textfile_mtime_seconds`` tells when the last run was.
- The state directory is the service's ``RuntimeDirectory=`` with
  ``RuntimeDirectoryPreserve=yes`` (systemd 235; a oneshot stops after every run, and
  without it the state would go with it). ``ProtectSystem=strict`` leaves it writable;
  the textfile directory is ``ReadWritePaths=-DIR`` ("-": a missing directory does not
  fail the unit). Every hardening key is known to systemd 237; no ``PrivateNetwork=``:
  the devices live in the host's namespace. Logs go to the journal from stderr, with
  syslog priority prefixes.
- The timer (not the service) is enabled; ``OnBootSec=`` + ``OnUnitActiveSec=`` the
  interval. Starting the timer on a live host runs the collector at once (an
  ``OnBootSec=`` already in the past elapses immediately), so a device is confirmed
  stale one interval later at the earliest.
"""

from __future__ import annotations

from functools import lru_cache

from ..plan_model import DAEMON_RELOAD, PHASE_UNITS, Action, File, Plan, Unit, ensure_running
from ..profile import Profile, VxlanGC
from ..targets import STATE_DIR, UNIT_DIR
from ..templating import render as render_template

SCRIPT = "netharden-vxlan-gc"
SERVICE = "netharden-vxlan-gc.service"
TIMER = "netharden-vxlan-gc.timer"
GC_STATE_DIR = f"{STATE_DIR}/vxlan-gc"
GUARDS = ("incident-4",)
WANTED_BY = ("timers.target",)  # the timer's [Install]


def render(profile: Profile, plan: Plan) -> None:
    if profile.vxlan_gc.mode != "off":
        plan.extend(entries(profile.vxlan_gc, profile.helper_dir))


@lru_cache(maxsize=64)
def entries(gc: VxlanGC, helper_dir: str) -> tuple[File | Unit | Action, ...]:
    script = f"{helper_dir}/{SCRIPT}"
    what = (
        f"{'Remove' if gc.mode == 'remove' else 'Report'} stale VXLAN devices matching {gc.pattern} "
        f"(down, no master, stale at the previous run too)"
    )
    context = {
        "guards": GUARDS,
        "gc": gc,
        "script": script,
        "state_dir": GC_STATE_DIR,
        "runtime_directory": GC_STATE_DIR.removeprefix("/run/"),
        "wanted_by": WANTED_BY,
    }
    out: list[File | Unit | Action] = []
    for path, template, mode, why in (
        (script, "vxlan_gc/netharden-vxlan-gc.sh.j2", 0o755, "Collector of stale VXLAN devices"),
        (f"{UNIT_DIR}/{SERVICE}", "vxlan_gc/netharden-vxlan-gc.service.j2", 0o644, what),
        (f"{UNIT_DIR}/{TIMER}", "vxlan_gc/netharden-vxlan-gc.timer.j2", 0o644, f"Run {SERVICE} every {gc.interval}"),
    ):
        text = render_template(template, **context, why=why)
        out.append(File(path=path, content=text, mode=mode, guards=GUARDS, why=why))
    out += [
        Unit(TIMER, enabled=True, guards=GUARDS, why=f"{what}, every {gc.interval}", wanted_by=WANTED_BY),
        DAEMON_RELOAD,
        ensure_running("vxlan-gc-timer", TIMER, "start the stale VXLAN device collector", PHASE_UNITS),
    ]
    return tuple(out)
