"""``uplink-shadowed``: a file that sorts before the profile's own uplink or bridge file matches
its NIC first, so the profile's settings (addresses, gateway, DNS, MTU, RequiredForOnline) never
apply.

Ubuntu cloud images: cloud-init writes /etc/netplan/50-cloud-init.yaml, netplan generates
/run/systemd/network/10-netplan-eth0.network (``[Match] PermanentMACAddress=... Name=eth0``),
and networkd takes the first matching file by name: 10-netplan-eth0.network sorts before
20-netharden-uplink-lan.network. cloud-init's own networkd renderer writes
10-cloud-init-<if>.network with the same effect; so does a vendor's or a user's earlier file.
The lab's uplink-shadowed scenario measured it on the real networkd (the profile's static
address is absent from the link).

How it decides (reader and matcher: ``netharden/doctor/networkd_config.py``, networkd's
directories /etc, /run, /usr/local/lib, /usr/lib, /lib, shadowing, masks and drop-ins):

* The profile's own files: ``20-netharden-uplink-*.network`` and the bridges'
  ``10-netharden-<bridge>.network`` (networkd stack), and on the netplan stack netplan's
  generated file of each netdef of /etc/netplan/60-netharden.yaml
  (``10-netplan-<id>.network``).
* netplan's output: on a live host, or an image whose /run/systemd/network already holds
  netplan's files, those are read as they are. When the netplan YAML has no generated files
  next to it, or when ``--profile`` lays netplan YAML over the host, the real ``netplan generate
  --root-dir`` runs over the host's YAML (with the profile's) in a scratch directory, and its
  files replace the stale 10-netplan-* in /run/systemd/network.
* The NICs: on a live host, the interfaces of the namespace the own file matches (a NIC's
  current MAC counted as its permanent one); when none matches, or from files alone, candidate devices built from the own file's and the
  other file's literal [Match] words (names, MACs as current and permanent address, drivers,
  paths) and the doctor's representative NICs (eth0, ens3, enp3s0). A candidate counts when the
  own file matches it; the FIRST loaded file in networkd's order that matches it decides.
* A catch-all netharden-quarantine would move (a file in /run or /etc systemd/network without
  an interface condition, or only ``Name=*``) is left to ``catchall-network``: it is not counted.
* A finding per other file that wins a NIC from an own file: it names the NIC, the own file and
  the first setting of the own file the other file does not have (e.g. ``Address=192.0.2.10/24
  is not in 10-netplan-eth0.network``; a key the other file leaves at networkd's default counts
  as equal when the own file sets that default). When every setting is equal it is a warning.
"""

from __future__ import annotations

import itertools
import os

from ... import netplan_generate as netplan
from ..host import Host
from ..model import Finding
from ..networkd_config import PHYSICAL, REPRESENTATIVES, ConfFile, Device, first_match, load_files, parse_boolean
from ..nm_config import networkd_absent
from .catchall_network import quarantinable
from .netplan_conflict import netplan_files

ID = "uplink-shadowed"
TITLE = "an earlier .network file takes the profile's uplink or bridge, so its settings never apply"
SEVERITY = "error"
INCIDENT = "config"
HINT = (
    "on Ubuntu (netplan, cloud-init) set platform.stack: netplan, so netharden writes "
    "/etc/netplan/60-netharden.yaml and netplan's own output carries the profile; otherwise mask "
    "the other file (ln -s /dev/null /etc/systemd/network/NAME), rename it to sort after the "
    "profile's file, or make its [Match] narrower"
)
NEEDS = "files"
# with --profile the runner also reports what this check finds with the profile's files laid
# over the host (the profile's own files are what it judges)
ABOUT_PROFILE = True

OWN_UPLINK_PREFIX = "20-netharden-uplink-"
OWN_GUARD_PREFIX = "0-netharden-unmanaged-"  # the profile's own guards: validation judges their globs
VIRTUAL_NAMES = frozenset(d.name for d in REPRESENTATIVES)
OWN_BRIDGE_PREFIX = "10-netharden-"


def applies(host: Host) -> str | None:
    return networkd_absent(host)


# --------------------------------------------------------------------------- netplan


def _generated_present(host: Host) -> list[str]:
    gen = netplan.GENERATED_DIR
    return [
        f"{gen}/{n}"
        for n in host.listdir(gen)
        if n.startswith(netplan.GENERATED_PREFIX) and n.endswith((".network", ".netdev", ".link"))
    ]


def with_netplan_output(host: Host) -> tuple[Host, str | None]:
    """The host as networkd sees it once netplan has run, and a note when netplan's output could
    not be produced (netplan missing). See the module text for when netplan generate runs."""
    yaml_files = netplan_files(host)
    if not yaml_files:
        return host, None
    present = _generated_present(host)
    overlaid = any(netplan.is_netplan_yaml(p) for p in host.overlay)
    if present and not overlaid:
        return host, None
    try:
        generated = netplan.generate(yaml_files)
    except RuntimeError as exc:
        if present:
            return host, None
        return host, f"{exc}: the generated files of {', '.join(sorted(yaml_files))} were not judged"
    overlay: dict[str, tuple[str, str]] = {p: ("link", "/dev/null") for p in present if p not in generated}
    overlay.update({p: ("file", text) for p, text in generated.items()})
    return host.with_overlay(overlay), None


def own_netplan_ids(host: Host) -> list[str]:
    """The netdef ids (ethernets, bridges) of /etc/netplan/60-netharden.yaml."""
    import yaml

    text = host.read_text(netplan.NETPLAN_FILE)
    if not text:
        return []
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    network = doc.get("network") if isinstance(doc, dict) else None
    if not isinstance(network, dict):
        return []
    ids = []
    for kind in ("ethernets", "bridges"):
        section = network.get(kind)
        if isinstance(section, dict):
            ids += [str(k) for k in section]
    return ids


# --------------------------------------------------------------------------- own files and NICs


def own_files(host: Host, files: list[ConfFile]) -> list[ConfFile]:
    """The profile's own uplink and bridge files among the loaded ``files``."""
    bridges = {n.removesuffix(".netdev") for n in host.listdir("/etc/systemd/network") if n.endswith(".netdev")}
    generated = {netplan.generated_name(i) for i in own_netplan_ids(host)}
    out = []
    for cf in files:
        if not cf.loaded or cf.match is None:
            continue
        stem = cf.name.removesuffix(".network")
        if cf.name.startswith(OWN_UPLINK_PREFIX) or cf.name in generated:
            out.append(cf)
        elif cf.name.startswith(OWN_BRIDGE_PREFIX) and (stem in bridges or "bridge" in cf.match.globs.get("Kind", ())):
            out.append(cf)
    return out


def _literal(words) -> list[str]:
    return [w for w in words if not w.startswith("!") and not any(c in w for c in "*?[\\")]


def _glob_names(words) -> list[str]:
    """Interface names a positive Name= glob matches ("eth*" -> "eth0")."""
    out = []
    for w in words:
        if w.startswith("!") or not any(c in w for c in "*?["):
            continue
        base = "".join(ch for ch in w if ch not in "[]").replace("?", "0")
        if base.strip("*"):
            out.append(base.replace("*", "0"))
    return out


def candidates(own: ConfFile, other: ConfFile) -> list[Device]:
    """Devices both files could be meant for (see the module text), physical NICs unless the own
    file is a bridge's."""
    files = (own, other)
    names, macs, drivers, paths = [], [], [], []
    for cf in files:
        m = cf.match
        assert m is not None
        # the other file's globs are not expanded: "cali*" in an unmanaged file names no NIC
        words = _literal(m.names())
        if cf is not own:  # a name of a container interface (docker0, tunl0) is no NIC's
            words = [w for w in words if w not in VIRTUAL_NAMES]
        names += words + (_glob_names(m.names()) if cf is own else [])
        macs += sorted(set().union(*m.macs.values())) if m.macs else []
        drivers += _literal(m.globs.get("Driver", ()))
        paths += _literal(m.globs.get("Path", ()))
    names += [d.name for d in PHYSICAL]
    macs += [d.mac for d in PHYSICAL if d.mac]
    om = own.match
    assert om is not None
    bridge = "bridge" in om.globs.get("Kind", ()) or own.name.startswith(OWN_BRIDGE_PREFIX)
    if bridge:
        kinds: list[str | None] = ["bridge"]
        drivers, paths = ["bridge"], [None]  # type: ignore[list-item]
        type_ = "bridge"
    else:
        kinds = [None]
        drivers = list(dict.fromkeys(drivers + [d.driver for d in PHYSICAL if d.driver]))
        paths = list(dict.fromkeys(paths + [d.path for d in PHYSICAL if d.path]))
        type_ = "ether"
    out = []
    for name, mac, driver, path, kind in itertools.product(
        dict.fromkeys(names), dict.fromkeys(macs), drivers, paths, kinds
    ):
        props = [("INTERFACE", name), ("SUBSYSTEM", "net")]
        if driver and not bridge:
            props.append(("ID_NET_DRIVER", driver))
        if bridge:
            props.append(("DEVTYPE", "bridge"))
        if path:
            props.append(("ID_PATH", path))
        out.append(Device(name, kind, driver, type_, mac, mac, path, tuple(props), "bridge" if bridge else "NIC"))
    return out


def live_devices(host: Host) -> list[Device]:
    """The live interfaces but loopback; a NIC (no kind) with its current address taken as its
    permanent one (virtual devices have none)."""
    if not host.live:
        return []
    out = []
    for i in host.interfaces:
        if i.type == "loopback":
            continue
        d = Device.from_iface(i)
        if i.kind is None:
            d = Device(d.name, d.kind, d.driver, d.type, d.mac, d.mac, d.path, d.properties, d.description)
        out.append(d)
    return out


# --------------------------------------------------------------------------- settings

# networkd's defaults for keys netharden writes: a file that leaves them out has them
DEFAULTS = {
    ("Link", "RequiredForOnline"): "yes",
    ("Network", "DHCP"): "no",
    ("Network", "ConfigureWithoutCarrier"): "no",
}
# the settings that matter most, compared first
FIRST = (
    ("Network", "Address"),
    ("Network", "Gateway"),
    ("Network", "DNS"),
    ("Link", "MTUBytes"),
    ("Network", "DHCP"),
    ("Link", "RequiredForOnline"),
)
LISTS = {("Network", "Address"), ("Network", "Gateway"), ("Network", "DNS"), ("Network", "Domains")}


def _same(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    ba, bb = parse_boolean(a), parse_boolean(b)
    if ba is not None and bb is not None:
        return ba == bb
    return a == b


def first_difference(own: ConfFile, other: ConfFile) -> str | None:
    """The first setting of ``own`` (outside [Match]) that ``other`` does not have, as text."""
    keys = [(s, k) for s, k, _ in own.assignments if s != "Match"]
    order = [k for k in FIRST if k in keys] + [k for k in dict.fromkeys(keys) if k not in FIRST]
    for section, key in order:
        mine = own.values(section, key)
        theirs = other.values(section, key)
        if (section, key) in LISTS:
            for v in mine:
                if v and v not in theirs:
                    return f"{key}={v} is not in {other.name}"
            continue
        want = mine[-1] if mine else None
        have = theirs[-1] if theirs else DEFAULTS.get((section, key))
        if want is not None and not _same(want, have):
            if theirs:
                return f"{key}={want} differs: {other.name} has {key}={theirs[-1]}"
            return f"{key}={want} is not in {other.name}"
    return None


def _hint(other: ConfFile, own: ConfFile) -> str:
    name = other.name
    if name.startswith(netplan.GENERATED_PREFIX) and other.path.startswith(netplan.GENERATED_DIR + "/"):
        return (
            f"netplan generated {name} from the host's /etc/netplan YAML (cloud-init's 50-cloud-init.yaml on "
            "Ubuntu): set platform.stack: netplan (the default for platform.os: ubuntu) so netharden's uplink "
            "is a netplan netdef that sorts first, or drop the NIC from the other YAML (cloud-init: "
            "network: {config: disabled} in /etc/cloud/cloud.cfg.d/)"
        )
    if name.startswith("10-cloud-init-"):
        return (
            f"cloud-init's networkd renderer wrote {name}: disable cloud-init's network configuration "
            "(network: {config: disabled} in /etc/cloud/cloud.cfg.d/99-netharden.cfg) and mask the file "
            f"(ln -s /dev/null /etc/systemd/network/{name}), or match it more narrowly"
        )
    return (
        f"mask {name} (ln -s /dev/null /etc/systemd/network/{name}: networkd.mask), rename it to sort after "
        f"{own.name}, or make its [Match] narrower so it leaves the profile's NIC alone"
    )


def shadowed(host: Host) -> tuple[list[tuple[ConfFile, ConfFile, Device, bool]], str | None]:
    """(other file, own file, NIC, live) per shadowing pair, and the netplan note."""
    view, note = with_netplan_output(host)
    # a catch-all the quarantine moves is catchall-network's finding (and its fixed_by's)
    files = [cf for cf in load_files(view, ".network") if not (cf.loaded and cf.match and quarantinable(cf))]
    own = own_files(view, files)
    own_paths = {cf.path for cf in own}
    live = live_devices(view)
    pairs: dict[tuple[str, str], tuple[ConfFile, ConfFile, Device, bool]] = {}
    for mine in own:
        assert mine.match is not None
        devices = [(d, True) for d in live if mine.match.matches(d)]
        if not devices:
            others = [
                cf
                for cf in files
                if cf.loaded
                and cf.match is not None
                and cf.path not in own_paths
                and not cf.name.startswith(OWN_GUARD_PREFIX)
            ]
            seen = set()
            for other in others:
                for d in candidates(mine, other):
                    if d not in seen and mine.match.matches(d):
                        seen.add(d)
                        devices.append((d, False))
        for dev, is_live in devices:
            first = first_match(files, dev)
            if first is None or first.path in own_paths:
                continue  # the profile's own file (another of its own: a leftover of a stack switch)
            pairs.setdefault((first.path, mine.path), (first, mine, dev, is_live))
    return sorted(pairs.values(), key=lambda p: (p[0].name.encode(), p[1].name)), note


def check(host: Host) -> list[Finding]:
    pairs, note = shadowed(host)
    findings = []
    for other, mine, dev, is_live in pairs:
        what = f"{dev.name}" + (" (live)" if is_live else "")
        if dev.mac and not is_live and other.match and other.match.macs:
            what += f" ({dev.mac})"
        diff = first_difference(mine, other)
        assert other.match is not None
        text = (
            f"{diff}, which takes {what} first: it sorts before {mine.name} and matches it "
            f"([Match] {other.match.describe()}), so networkd never applies {mine.name} to {dev.name}"
            if diff
            else f"{other.name} takes {what} first ([Match] {other.match.describe()}) before {mine.name}; "
            "its settings equal the profile's for now, a later profile change would not apply"
        )
        if other.unmanaged:
            text += f"; {other.name} leaves {dev.name} unmanaged"
        findings.append(
            Finding(
                subject=host.display(other.path),
                message=text,
                severity="" if diff else "warning",
                hint=_hint(other, mine),
            )
        )
    if note:
        findings.append(Finding(subject="/etc/netplan", message=note, severity="warning"))
    return findings


# --------------------------------------------------------------------------- explain


def explain_notes(profile, plan) -> list[str]:
    """What ``netharden explain`` says about shadowing for the profile's uplink and bridge files:
    which earlier files would take their NICs, and for Ubuntu on the networkd stack that
    cloud-init's netplan file does."""
    own = [
        f.path
        for f in plan.files
        if os.path.basename(f.path).startswith(OWN_UPLINK_PREFIX)
        or (os.path.basename(f.path).startswith(OWN_BRIDGE_PREFIX) and f.path.endswith(".network"))
    ]
    own += [f.path for f in plan.files if netplan.is_netplan_yaml(f.path)]
    if not own:
        return []
    notes = []
    if profile.os == "ubuntu" and profile.stack == "networkd" and profile.uplinks:
        first = f"{OWN_UPLINK_PREFIX}{profile.uplinks[0].name}.network"
        notes.append(
            f"platform.os ubuntu with platform.stack networkd: cloud-init's /etc/netplan/50-cloud-init.yaml makes "
            f"netplan write /run/systemd/network/10-netplan-<nic>.network, which sorts before {first} and takes the "
            "NIC first, so the uplink settings never apply; use platform.stack: netplan (the Ubuntu default)"
        )
    names = ", ".join(sorted(os.path.basename(p) for p in own))
    notes.append(
        f"networkd applies the first file by name that matches a NIC: a file sorting before {names} "
        "(netplan's 10-netplan-*.network, cloud-init's 10-cloud-init-*.network, a vendor's or a user's) "
        "shadows the profile's settings; `netharden doctor --profile PROFILE` on the host finds it (uplink-shadowed)"
    )
    return notes
