"""NetworkManager files (``platform.stack: networkmanager``): unmanaged container
interfaces, uplink and bridge keyfiles, and the helper that reloads the unmanaged list
only when that is safe. Fedora CoreOS, RHEL, Rocky, Alma and Fedora run NetworkManager;
files for systemd-networkd would be read by nothing there.

  /etc/NetworkManager/conf.d/50-netharden-unmanaged.conf
      ``[main] no-auto-default=*``, ``[keyfile] unmanaged-devices+=`` every preset glob
      (``interface-name:GLOB``) and, with the veth preset, ``driver:veth`` for veths of any
      name, minus uplinks named exactly (``except:interface-name:NAME``).
  /etc/NetworkManager/system-connections/netharden-uplink-NAME.nmconnection   (0600)
  /etc/NetworkManager/system-connections/netharden-bridge-NAME.nmconnection   (0600)

Decisions (measured on NetworkManager 1.42 in a throwaway namespace, see
``netharden/lab/scenarios/nm_*.py`` and tests/test_networkmanager_netns.py):

- ``no-auto-default=*`` only when the profile has uplinks: they are the NICs' profiles. Without
  uplinks the host's NICs may live on auto-defaults (Fedora CoreOS does not carry the
  initramfs' profiles over once a keyfile is in /etc/NetworkManager/system-connections:
  coreos-teardown-initramfs, ignition-dracut 813ea6b), so they stay, and a Plan note says so.
- Unmanaged is the guard. ``no-auto-default=*`` alone does NOT keep NM away: an unlisted
  ``cali*`` still had its sysctls changed. A device in ``keyfile.unmanaged-devices`` is
  strictly unmanaged (API calls cannot overrule it); no profile, stray or auto-default,
  can activate on it. That is also NM's answer to incident 1 (a stray catch-all profile
  catching container interfaces), so no quarantine is rendered on this stack.
- Veths by driver in the strict list, not in a ``[device-*]`` section with ``managed=0``:
  measured on 1.42, such a section leaves a veth NetworkManager already manages managed at a
  reload ("connecting") and after a restart ("connected (externally)"; NM keeps a device's
  state in /run), while ``driver:veth`` in ``unmanaged-devices`` lets it go at once.
- ``+=`` appends to the list earlier files set (a vendor's unmanaged devices stay); a
  later file that sets ``unmanaged-devices=`` replaces everything: the doctor's
  ``nm-manages-container-interfaces`` reports that.
- NM globs know ``*`` and ``?`` only; validation refuses ``[ranges]`` on this stack.
- Uplinks: one exact name is ``connection.interface-name``; globs, drivers and paths are
  a ``[match]`` section; a broad match gets ``!GLOB`` exclusions of every unmanaged glob
  and of ``veth*`` (NM 1.26 negation), the equivalent of networkd's ``Kind=!*``; a MAC is
  ``ethernet.mac-address`` (one per profile). ``autoconnect-priority=100`` wins over the
  host's own profiles (0) and auto-defaults (-999).
- Bridges: ``ethernet.cloned-mac-address`` pins the MAC (NM sets it when it creates the
  bridge: ``addr_assign_type`` 3, the kernel then never follows port MACs);
  ``may-fail=true``: an empty container bridge has no carrier and must not fail the
  profile or hold up NetworkManager-wait-online.
- Foreign routes: NM removes routes it did not add only from tables a profile names in
  ``ipv4.route-table``/``ipv6.route-table`` (full sync); netharden sets none, so CNI
  routes and rules in other tables are left alone (explain says so). There is no
  networkd.conf to write.
- Reloads. ``nmcli connection reload`` loads changed keyfiles; a device keeps its old
  settings until it is re-activated, which can cut the operator's connection: that is a
  disruptive action per uplink (allow class ``networkmanager``). ``nmcli general reload
  conf`` re-reads the unmanaged list at once, and a device dropped from it is taken and
  deconfigured at once (measured: NM deleted cni0's address and detached its veth), so
  the helper ``netharden-nm-reload-conf`` reloads only when the new file drops nothing
  from what NM loaded (recorded at every NetworkManager start by a drop-in and at every
  reload); otherwise it says so and leaves the reload to the next NM start or to
  ``--allow-drop``. A device NM had activated itself (a veth it took with an auto-default)
  and now lets go is deconfigured and set down by NM (measured): the helper brings up again
  what was up before the reload and is unmanaged after it, so a container whose veth NM
  had taken gets its link back (lab scenario nm-live-apply).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .. import networkmanager as nm
from ..mac import stable_uuid
from ..plan_model import DAEMON_RELOAD, PHASE_NETWORKD, Action, File, Plan
from ..profile import Bridge, Profile, UnmanagedGroup, Uplink
from ..targets import STATE_DIR, UNIT_DIR
from ..templating import render as render_template
from ..validate import interface

NM_DIR = "/etc/NetworkManager"
CONF = f"{NM_DIR}/conf.d/50-netharden-unmanaged.conf"
CONNECTIONS = f"{NM_DIR}/system-connections"
NM_SERVICE = "NetworkManager.service"
DROPIN = f"{UNIT_DIR}/{NM_SERVICE}.d/50-netharden.conf"
SCRIPT = "netharden-nm-reload-conf"
LOADED = f"{STATE_DIR}/nm-unmanaged.loaded"


FOREIGN_ROUTES = (
    "foreign routes: nothing to render on NetworkManager: it removes routes it did not add only from a table a "
    "profile names in ipv4.route-table/ipv6.route-table, and netharden's profiles name none, so CNI routes and "
    "rules stay"
)


NO_UPLINKS = (
    "no uplinks: NetworkManager's auto-default profiles stay on (no-auto-default is not written), because "
    "the host's NICs may depend on them (on Fedora CoreOS, a keyfile in /etc/NetworkManager/system-connections "
    "also stops the initramfs' network profiles from being carried over); the unmanaged list keeps them off "
    "container interfaces"
)


def _line(key: str, value: Any) -> dict:
    return {"key": key, "value": str(value), "comment": ""}


def _comment(text: str) -> dict:
    return {"key": "", "value": "", "comment": text}


def _keyfile(path: str, sections, guards: tuple[str, ...], why: str, mode: int) -> File:
    text = render_template("networkmanager/keyfile.j2", sections=sections, guards=guards, why=why)
    return File(path=path, content=text, mode=mode, guards=guards, why=why)


def connection_id(kind: str, name: str) -> str:
    return f"netharden-{kind}-{name}"


def connection_path(kind: str, name: str) -> str:
    return f"{CONNECTIONS}/{connection_id(kind, name)}.nmconnection"


def render(profile: Profile, plan: Plan) -> None:
    version = profile.networkmanager
    exact = tuple(sorted({n for u in profile.uplinks for n in exact_names(u)}))
    plan.extend(unmanaged(profile.unmanaged, exact, profile.helper_dir, version, bool(profile.uplinks)))
    if not profile.uplinks:
        plan.note(NO_UPLINKS)
    for bridge in profile.bridges:
        plan.add(bridge_file(profile.name, bridge))
    for uplink in profile.uplinks:
        plan.extend(uplink_entries(profile.name, uplink, profile.unmanaged))
    if profile.uplinks or profile.bridges:
        plan.add(connection_reload())
    if profile.foreign_routes == "keep":
        plan.note(FOREIGN_ROUTES)
    optional = [u.name for u in profile.uplinks if not u.required_for_online]
    if optional:
        plan.note(
            f"uplinks[].required_for_online: false ({', '.join(optional)}) has no NetworkManager equivalent: "
            "NetworkManager-wait-online waits until every profile that activates at boot is up or failed"
        )


def exact_names(uplink: Uplink) -> tuple[str, ...]:
    """The uplink's interface names when they are exact names (no glob), else ()."""
    names = uplink.match.names
    return () if any(ch in n for n in names for ch in "*?[") else names


def specs(groups: tuple[UnmanagedGroup, ...]) -> tuple[str, ...]:
    """``interface-name:GLOB`` of every glob of the groups, in order, without repeats."""
    return tuple(dict.fromkeys(f"interface-name:{g}" for group in groups for g in group.globs))


@lru_cache(maxsize=64)
def unmanaged(
    groups: tuple[UnmanagedGroup, ...],
    exact_uplinks: tuple[str, ...],
    helper_dir: str,
    version: nm.Version,
    no_auto_default: bool = True,
) -> tuple[File | Action, ...]:
    """The conf.d file, its reload helper and drop-in. ``no_auto_default``: the profile's
    uplinks configure the NICs, so NetworkManager's auto-default profiles are off."""
    guards = ("incident-2",)
    sections: list[dict] = []
    if no_auto_default:
        sections.append(
            {
                "name": "main",
                "lines": [
                    _comment('no "Wired connection N" profile for a device without one: the uplinks are the profiles'),
                    _line("no-auto-default", "*"),
                ],
            }
        )
    listed = specs(groups)
    if any(g.id == "veth" for g in groups):
        # veths of any name by their driver; an except: takes a device out of the whole list
        listed += ("driver:veth",) + tuple(f"except:interface-name:{n}" for n in exact_uplinks)
    if listed:
        sections.append(
            {
                "name": "keyfile",
                "lines": [
                    _comment("strictly unmanaged: NetworkManager never touches their addresses, sysctls or masters;"),
                    _comment("+= keeps the devices earlier files list"),
                    *(
                        [_comment("driver:veth: every veth, whatever its name (not the uplinks named exactly)")]
                        if "driver:veth" in listed
                        else []
                    ),
                    _line("unmanaged-devices+", ";".join(listed)),
                ],
            }
        )
    conf_why = "Container and CNI interfaces stay unmanaged: " + (
        ", ".join(g.id for g in groups) if groups else "no presets; only auto-default profiles are off"
    )
    script = f"{helper_dir}/{SCRIPT}"
    why = "Reload the unmanaged list only when it drops no device"
    text = render_template(
        "networkmanager/netharden-nm-reload-conf.sh.j2", conf=CONF, loaded=LOADED, guards=guards, why=why
    )
    dropin = render_template(
        "networkmanager/NetworkManager.service.conf.j2",
        script=script,
        guards=guards,
        why=f"Record what {NM_SERVICE} loaded",
    )
    reload_needed = nm.supports(version, "nmcli.general-reload")
    out: list[File | Action] = [
        _keyfile(CONF, sections, guards, conf_why, 0o644),
        File(script, text, mode=0o755, guards=guards, why=why),
        File(DROPIN, dropin, guards=guards, why=f"Record the unmanaged list {NM_SERVICE} loads at its start"),
        DAEMON_RELOAD,
    ]
    if reload_needed:
        out.append(
            Action(
                "networkmanager-reload-conf",
                (script,),
                "load the unmanaged list now when it drops no device (a dropped device is taken and deconfigured)",
                phase=PHASE_NETWORKD - 1,
                triggers=(CONF, script),
            )
        )
    return tuple(out)


def _families(
    dhcp: str,
    addresses: tuple[str, ...],
    gateways: tuple[str, ...],
    dns: tuple[str, ...],
    accept_ra: bool,
    bridge: bool,
) -> list[dict]:
    out = []
    for family, name in ((4, "ipv4"), (6, "ipv6")):
        addrs = tuple(a for a in addresses if interface(a).version == family)
        gws = tuple(g for g in gateways if interface(g).version == family)
        servers = tuple(d for d in dns if interface(d).version == family)
        dynamic = dhcp in ("yes", f"ipv{family}") or (family == 6 and accept_ra)
        # without addresses: IPv6 keeps its link-local address (as networkd does), a
        # bridge gets none (LinkLocalAddressing=no in the networkd renderer)
        method = (
            "auto" if dynamic else "manual" if addrs else "link-local" if family == 6 and not bridge else "disabled"
        )
        lines = [_line("method", method)]
        lines += [_line(f"address{i}", a) for i, a in enumerate(addrs, 1)]
        if gws:
            lines.append(_line("gateway", gws[0]))
        if servers:
            lines.append(_line("dns", "".join(s + ";" for s in servers)))
        if bridge and method != "disabled":
            lines.append(_comment("an empty container bridge has no carrier: it must not fail the profile"))
            lines.append(_line("may-fail", "true"))
        out.append({"name": name, "lines": lines})
    return out


@lru_cache(maxsize=256)
def bridge_file(host: str, bridge: Bridge) -> File:
    origin = "derived from host and bridge name" if bridge.mac_source == "stable" else "explicit"
    cid = connection_id("bridge", bridge.name)
    ethernet = [
        _comment("pinned: an unpinned bridge takes the smallest MAC of its ports and changes it as ports come and go"),
        _line("cloned-mac-address", bridge.mac),
    ]
    if bridge.mtu:
        ethernet.append(_line("mtu", bridge.mtu))
    sections = [
        {
            "name": "connection",
            "lines": [
                _line("id", cid),
                _line("uuid", stable_uuid(f"{host}/{cid}")),
                _line("type", "bridge"),
                _line("interface-name", bridge.name),
                _line("autoconnect", "true"),
            ],
        },
        {"name": "ethernet", "lines": ethernet},
        {"name": "bridge", "lines": [_line("stp", "true" if bridge.stp else "false")]},
        *_families("no", bridge.addresses, (), (), False, True),
    ]
    return _keyfile(
        connection_path("bridge", bridge.name),
        sections,
        ("incident-3",),
        f"Bridge {bridge.name} with its MAC pinned ({origin})",
        0o600,
    )


@lru_cache(maxsize=256)
def uplink_entries(host: str, uplink: Uplink, groups: tuple[UnmanagedGroup, ...]) -> tuple[File | Action, ...]:
    m = uplink.match
    cid = connection_id("uplink", uplink.name)
    conn = [_line("id", cid), _line("uuid", stable_uuid(f"{host}/{cid}")), _line("type", "ethernet")]
    match: list[dict] = []
    guards: tuple[str, ...] = ("config",)
    names = list(m.names)
    if len(exact_names(uplink)) == 1:
        conn.append(_line("interface-name", names.pop()))
    if m.broad:
        # NM 1.26 negation: a veth is an ethernet device to NetworkManager, and a MAC is
        # copied by bridges, VLANs and bonds built on the NIC
        guards = ("incident-2",)
        names += [f"!{g}" for g in dict.fromkeys(("veth*",) + tuple(g for group in groups for g in group.globs))]
    if names:
        match.append(_line("interface-name", ";".join(names)))
    if m.drivers:
        match.append(_line("driver", ";".join(m.drivers)))
    if m.paths:
        match.append(_line("path", ";".join(m.paths)))
    conn += [
        _comment("above the host's own profiles (0) and NetworkManager's auto-defaults (-999)"),
        _line("autoconnect-priority", 100),
    ]
    ethernet = []
    if m.macs:
        ethernet.append(_line("mac-address", m.macs[0]))
    if uplink.mtu:
        ethernet.append(_line("mtu", uplink.mtu))
    sections = [{"name": "connection", "lines": conn}]
    if match:
        sections.append({"name": "match", "lines": match})
    if ethernet:
        sections.append({"name": "ethernet", "lines": ethernet})
    sections += _families(uplink.dhcp, uplink.addresses, uplink.gateways, uplink.dns, uplink.ipv6_accept_ra, False)
    why = f"Uplink {uplink.name}" + (": its match is broad, so container interfaces are excluded" if m.broad else "")
    path = connection_path("uplink", uplink.name)
    return (
        _keyfile(path, sections, guards, why, 0o600),
        Action(
            f"networkmanager-up-{uplink.name}",
            ("nmcli", "connection", "up", cid),
            f"activate {cid}: a device keeps its old settings until then (this can cut the connection you apply over)",
            phase=PHASE_NETWORKD + 1,
            disruptive=True,
            triggers=(path,),
            allow="networkmanager",
        ),
    )


@lru_cache(maxsize=1)
def connection_reload() -> Action:
    return Action(
        "networkmanager-reload",
        ("nmcli", "connection", "reload"),
        "load the new and changed keyfiles",
        triggers=(f"{CONNECTIONS}/",),
    )
