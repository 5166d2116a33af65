"""dockerd: daemon.json for every daemon, a unit for each extra daemon, the ordering of
the packaged docker.service, and a helper that waits for a daemon's bridge.

What is written:

  /etc/docker/daemon.json                        main daemon ('docker'): its settings, untouched
                                                 (plus "bridge" when it has a netharden bridge)
  /etc/docker/NAME/daemon.json                   extra daemon: settings + the keys netharden owns
  /etc/systemd/system/docker-NAME.service        extra daemon's unit (enabled)
  /etc/systemd/system/docker.service.d/50-netharden.conf   only when 'docker' is declared
  HELPER_DIR/netharden-wait-bridge             only when a daemon has a bridge

Decisions:

- daemon.json is the whole file, rendered with the ``json`` filter (sorted keys, two
  spaces, final newline): put every key in ``settings``. Validation has checked the
  networking keys and the conflicts dockerd refuses or silently ignores.
- Extra daemons (docker's "Run multiple daemons", docker/cli docs/reference/dockerd.md):
  their own data-root, exec-root and pidfile (defaults in ``Daemon.from_data``), socket
  ("hosts" from the daemon's ``host``), bridge ("bridge" from its ``bridge``), and
  ``iptables: false`` unless the settings say otherwise: every dockerd flushes and
  recreates the DOCKER chains when it starts (libnetwork's bridge driver calls
  removeIPChains), so two daemons managing iptables wipe each other's rules. Validation
  refuses a second daemon that sets iptables: true.
- containerd: an extra daemon gets no "containerd" key, so dockerd starts its own
  managed containerd under its exec-root and data-root: nothing is shared with the main
  daemon. In case settings point "containerd" at a shared one, the daemon still uses its
  own namespaces (moby/moby#41640: daemons sharing a containerd need separate ones):
  "containerd-namespace" in daemon.json, and the plugins namespace as the
  --containerd-plugins-namespace flag, because dockerd (20.10 and later) accepts the
  "containerd-plugins-namespace" key in daemon.json but ignores its value (the JSON
  field is named "containerd-plugin-namespace", a name the flag check refuses;
  docker/cli#3055, verified against dockerd 20.10.24).
- The dockerd binary: /usr/bin/dockerd on Flatcar, Fedora CoreOS and Docker CE,
  /usr/sbin/dockerd in Debian's docker.io. From systemd 239 on ExecStart= takes a bare
  name and searches the built-in path, which covers both; older targets get the path
  of their distribution's package (``DOCKERD_PATH``).
- Ordering: After=/Wants= systemd-networkd.service (which creates the bridges) and
  netharden-quarantine.service when the profile quarantines anything; on a
  NetworkManager host NetworkManager.service, which creates them there. Being ordered
  after networkd's start is not enough: networkd creates bridges and adds addresses
  after it is up, and dockerd refuses a missing bridge and puts 172.17.0.1/16 on one
  without an address. So ExecStartPre runs ``netharden-wait-bridge`` (POSIX sh + iproute2, at most
  ``WAIT_SECONDS``) until the bridge carries every address of its 'bridges' entry.
  A .device dependency on sys-subsystem-net-devices-BR.device would wait for the device
  but not its addresses, and needs udev.
- Actions at PHASE_RUNTIME (after networkd created the bridges): ``systemctl start`` of
  each extra daemon (non-disruptive: nothing happens to a running one), and
  ``systemctl try-restart`` of each daemon to apply a changed daemon.json, marked
  disruptive: restarting dockerd stops its containers (unless live-restore).
"""

from __future__ import annotations

from functools import lru_cache

from ..plan_model import DAEMON_RELOAD, PHASE_RUNTIME, Action, File, Plan, Unit, ensure_running, unit_triggers
from ..profile import Daemon, Profile
from ..systemd import supports
from ..targets import UNIT_DIR
from ..templating import render as render_template
from ..validate import interface
from .quarantine import SERVICE as QUARANTINE_SERVICE

DROPIN = f"{UNIT_DIR}/docker.service.d/50-netharden.conf"
WAIT_HELPER = "netharden-wait-bridge"
WAIT_SECONDS = 60
# dockerd of the distribution's own package, for systemd < 239 (no search path)
DOCKERD_PATH = {"debian": "/usr/sbin/dockerd"}
DEFAULT_DOCKERD = "/usr/bin/dockerd"
WANTED_BY = ("multi-user.target",)  # an extra daemon's [Install]


def dockerd_binary(systemd: int, os_name: str) -> str:
    if supports(systemd, "exec.search_path"):
        return "dockerd"
    return DOCKERD_PATH.get(os_name, DEFAULT_DOCKERD)


def exec_start(systemd: int, os_name: str, daemon: Daemon) -> tuple[str, ...]:
    """The extra daemon's ExecStart= argv."""
    return (
        dockerd_binary(systemd, os_name),
        "--config-file",
        daemon.config_path,
        "--containerd-plugins-namespace",
        daemon.plugins_namespace or "",
    )


def render(profile: Profile, plan: Plan) -> None:
    if not profile.daemons:
        return
    helper = f"{profile.helper_dir}/{WAIT_HELPER}"
    if any(d.bridge for d in profile.daemons):
        plan.add(wait_helper(helper))
    addresses = {b.name: b.addresses for b in profile.bridges}
    if profile.stack == "networkmanager":
        after: tuple[str, ...] = ("NetworkManager.service",)
    else:
        after = ("systemd-networkd.service",) + ((QUARANTINE_SERVICE,) if profile.quarantine else ())
    for daemon in profile.daemons:
        wait = _wait(helper, daemon, addresses.get(daemon.bridge, ())) if daemon.bridge else None
        plan.extend(daemon_entries(daemon, helper if daemon.bridge else None))
        plan.add(daemon_unit(daemon, wait, after, profile.systemd, profile.os))
    plan.add(DAEMON_RELOAD)


@lru_cache(maxsize=16)
def wait_helper(path: str) -> File:
    why = "Wait until systemd-networkd created a dockerd bridge with its addresses"
    return File(
        path,
        render_template("docker/netharden-wait-bridge.sh.j2", guards=("incident-2",), why=why),
        0o755,
        ("incident-2",),
        why,
    )


@lru_cache(maxsize=256)
def daemon_entries(daemon: Daemon, helper: str | None) -> tuple[File | Unit | Action, ...]:
    """A daemon's daemon.json, its Unit (extra daemons) and actions: all but its unit file.
    ``helper``: the wait helper its unit runs first (a daemon on a bridge), or None."""
    guards = _guards(daemon)
    config = daemon.daemon_json()
    why = f"daemon.json of dockerd '{daemon.name}', the whole file: its settings" + (
        "" if daemon.main else f" ({daemon.unit}; iptables {str(config['iptables']).lower()})"
    )
    out: list[File | Unit | Action] = [
        File(daemon.config_path, render_template("docker/daemon.json.j2", config=config), 0o644, guards, why)
    ]
    # dockerd reads its daemon.json at start; the unit (or the main daemon's drop-in) runs the helper
    triggers = unit_triggers(daemon.unit, daemon.config_path, *((helper,) if helper else ()))
    if not daemon.main:
        out.append(Unit(daemon.unit, enabled=True, guards=guards, why=_extra_why(daemon), wanted_by=WANTED_BY))
        out.append(
            ensure_running(
                f"docker-{daemon.name}-start",
                daemon.unit,
                f"start the extra dockerd '{daemon.name}' once networkd created its bridge",
                PHASE_RUNTIME,
                triggers,
            )
        )
    out.append(
        Action(
            f"{daemon.unit.removesuffix('.service')}-restart",
            ("systemctl", "try-restart", daemon.unit),
            f"apply a changed {daemon.config_path}; restarting dockerd stops its containers",
            phase=PHASE_RUNTIME,
            disruptive=True,
            triggers=triggers,
            unit=daemon.unit,
            allow="docker",
        )
    )
    return tuple(out)


def _extra_why(daemon: Daemon) -> str:
    return f"Extra dockerd '{daemon.name}' on {daemon.host}" + (f", bridge {daemon.bridge}" if daemon.bridge else "")


@lru_cache(maxsize=256)
def daemon_unit(
    daemon: Daemon, wait: tuple[str, ...] | None, after: tuple[str, ...], systemd: int, os_name: str
) -> File:
    """The packaged docker.service's drop-in (main daemon) or the extra daemon's unit file."""
    if daemon.main:
        why = f"Start the packaged docker.service after {after[0].removesuffix('.service')}" + (
            " and the bridge" if wait else ""
        )
        text = render_template(
            "docker/docker.service.conf.j2", guards=("incident-2",), why=why, after=after, wants=after, wait=wait
        )
        return File(DROPIN, text, 0o644, ("incident-2",), why)
    why, guards = _extra_why(daemon), _guards(daemon) + ("incident-2",)
    text = render_template(
        "docker/docker-daemon.service.j2",
        guards=guards,
        why=why,
        daemon=daemon,
        after=("network-online.target", "firewalld.service") + after,
        wants=("network-online.target",) + after,
        wait=wait,
        exec_start=exec_start(systemd, os_name, daemon),
        wanted_by=WANTED_BY,
    )
    return File(f"{UNIT_DIR}/{daemon.unit}", text, 0o644, guards, why)


def _guards(daemon: Daemon) -> tuple[str, ...]:
    guards: tuple[str, ...] = ("incident-3",) if daemon.bridge else ()
    if daemon.settings.get("ipv6") is True:
        guards += ("incident-5",)
    return guards or ("config",)


def _wait(helper: str, daemon: Daemon, addresses: tuple[str, ...]) -> tuple[str, ...]:
    """ExecStartPre= argv waiting for the daemon's bridge. Addresses are written the way
    'ip -o addr' prints them."""
    shown = tuple(interface(a).with_prefixlen for a in addresses)
    return (helper, daemon.bridge or "", str(WAIT_SECONDS)) + shown
