"""``stack-not-running``: the host has netharden's networkd files, but systemd-networkd does not run.

Debian installs systemd-networkd disabled (ifupdown configures the NIC): every ``.network``,
``.netdev`` and ``networkd.conf`` file netharden writes is then inert, no bridge is created and
an extra dockerd waiting for its bridge times out (issue 16).

How it decides:

* Applies where netharden's networkd files are (``/etc/systemd/network/*netharden*`` or
  ``/etc/systemd/networkd.conf.d/*netharden*``, the overlay of ``--profile`` included) and
  systemd-networkd is installed (not on a NetworkManager host without it).
* From the files (``--root``, live and ``--profile`` alike; ``owners.unit_state``, what
  ``systemctl is-enabled`` says): ``masked`` or ``disabled`` (no ``*.wants`` link, no alias;
  netplan's generator counts as enabling it when /etc/netplan has YAML files) is a finding.
  With ``--profile`` the Plan's enablement links are laid over the host, so a disabled
  networkd is fixed by the profile and a masked one is not.
* Live (systemd is PID 1): enabled but ``systemctl is-active`` not active is a finding too
  (it starts at the next boot; the role's ``networkd-start`` action starts it now).
"""

from __future__ import annotations

from ..host import Host
from ..model import Finding
from ..nm_config import NETWORKD_BINARIES, networkd_absent
from ..owners import enabled_by, live_state, unit_state

ID = "stack-not-running"
TITLE = "netharden's systemd-networkd files are there but systemd-networkd does not run"
SEVERITY = "error"
INCIDENT = "config"
HINT = (
    "apply the profile (its Plan enables systemd-networkd.service; with the role, on a host where ifupdown or "
    "NetworkManager configures the uplink NIC, set netharden_takeover: true), or `systemctl unmask` / "
    "`systemctl enable --now systemd-networkd.service`"
)
NEEDS = "files"
ABOUT_PROFILE = True

UNIT = "systemd-networkd.service"
OWN_DIRS = ("/etc/systemd/network", "/etc/systemd/networkd.conf.d")


def own_files(host: Host) -> list[str]:
    return [f"{d}/{n}" for d in OWN_DIRS for n in host.listdir(d) if "netharden" in n]


def applies(host: Host) -> str | None:
    reason = networkd_absent(host)
    if reason:
        return reason
    if not own_files(host):
        return "no netharden networkd files in /etc/systemd/network or /etc/systemd/networkd.conf.d"
    if not any(host.kind(p) in ("file", "link") for p in NETWORKD_BINARIES) and host.kind("/usr/lib/systemd") is None:
        return "not a system root (no /usr/lib/systemd): a rendered tree is judged with --profile over a host"
    return None


def check(host: Host) -> list[Finding]:
    files = own_files(host)
    what = f"{len(files)} netharden file{'s' if len(files) != 1 else ''} ({host.display(files[0])} ...) are inert"
    state = unit_state(host, UNIT)
    if state == "absent":
        return [Finding(UNIT, f"systemd-networkd is not installed: {what}")]
    if state == "masked":
        return [Finding(UNIT, f"{UNIT} is masked: {what}")]
    if state == "disabled":
        return [
            Finding(
                UNIT,
                f"{UNIT} is disabled (no *.wants link or alias in /etc/systemd/system, /run or /usr/lib): "
                f"it does not start at boot and {what}",
            )
        ]
    live = live_state(host, UNIT)
    profile_enables = any(p in host.overlay for p in enabled_by(host, UNIT))  # --profile: the role starts it
    if live is not None and live[1] not in ("active", "reloading", "activating") and not profile_enables:
        return [Finding(UNIT, f"{UNIT} is enabled but {live[1]} (systemctl is-active): {what} until it starts")]
    return []
