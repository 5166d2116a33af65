"""Package holds: the container runtime must not change underneath running hosts.

On apt-based targets (``targets.APT_BASED``) ``docker.hold_packages`` renders

  /etc/apt/preferences.d/netharden-hold.pref
      pins the *installed* version (``Pin: release a=now``, the dpkg status file) at
      priority 1001, above every repository: neither ``apt upgrade`` nor
      unattended-upgrades replace it, a package that is not installed yet installs
      normally, and ``apt install PKG=VERSION`` still upgrades on purpose. Unlike
      ``apt-mark hold`` this is a file, so every provisioning format can carry it.
  /etc/apt/apt.conf.d/51netharden-unattended-upgrades
      the same packages in ``Unattended-Upgrade::Package-Blacklist`` (anchored Python
      regexes, as unattended-upgrades matches them), so its log says why they are kept.
      apt.conf lists accumulate across files, so Debian's own 50unattended-upgrades
      keeps its entries.

Flatcar, Container Linux and Fedora CoreOS ship the runtime in the OS image: there is
nothing to hold, and the Plan carries a note that ``explain`` prints. On the RHEL family and
Fedora the note says which ``dnf versionlock`` command holds them: dnf's exclude= and
versionlock list are single files the host owns.
"""

from __future__ import annotations

from functools import lru_cache

from ..plan_model import File, Plan
from ..profile import Profile
from ..targets import APT_BASED
from ..templating import render as render_template

PREFERENCES = "/etc/apt/preferences.d/netharden-hold.pref"
UNATTENDED = "/etc/apt/apt.conf.d/51netharden-unattended-upgrades"
GUARDS = ("incident-5",)

_IMAGE_UPDATES = {
    "flatcar": "Flatcar ships docker and containerd in the OS image; they change only with an OS update "
    "(control it with the update strategy / locksmith or FLUO)",
    "coreos": "Container Linux ships docker and containerd in the OS image; they change only with an OS update",
    "fcos": "Fedora CoreOS ships its container runtime in the OS image (rpm-ostree); control updates with Zincati",
}
# dnf reads [main] exclude= only from /etc/dnf/dnf.conf (no drop-in directory before dnf5)
# and the versionlock plugin keeps one list file: both belong to the host, so netharden
# writes neither and says what to run.
_DNF = (
    "dnf reads excludes only from /etc/dnf/dnf.conf and versionlock keeps one list, both the host's own files; "
    "hold them with 'dnf versionlock add {packages}' (python3-dnf-plugin-versionlock)"
)


def render(profile: Profile, plan: Plan) -> None:
    if not profile.hold_packages:
        return
    if profile.os not in APT_BASED:
        if profile.os in _IMAGE_UPDATES:
            plan.note(f"docker.hold_packages does not apply to {profile.os}: {_IMAGE_UPDATES[profile.os]}.")
        else:
            packages = " ".join(sorted(profile.hold_packages))
            plan.note(f"docker.hold_packages is not rendered for {profile.os}: {_DNF.format(packages=packages)}.")
        return
    plan.extend(holds(tuple(sorted(profile.hold_packages))))


@lru_cache(maxsize=64)
def holds(packages: tuple[str, ...]) -> tuple[File, File]:
    why = f"Keep the installed container runtime ({', '.join(packages)}): an upgrade changed its defaults under running hosts"
    pin = File(
        PREFERENCES,
        render_template("packages/apt-hold.pref.j2", packages=packages, why=why, guards=GUARDS),
        guards=GUARDS,
        why=why,
    )
    patterns = tuple("^" + p.replace(".", r"\.").replace("+", r"\+") + "$" for p in packages)
    why = "unattended-upgrades must not upgrade the container runtime"
    blacklist = File(
        UNATTENDED,
        render_template("packages/unattended-upgrades.conf.j2", patterns=patterns, why=why, guards=GUARDS),
        guards=GUARDS,
        why=why,
    )
    return pin, blacklist
