"""The typed, normalized profile: defaults applied, presets expanded, MACs derived.

``normalize(doc)`` turns a validated Document into a frozen ``Profile``. Everything a
renderer needs is decided here, once: renderers never look at raw YAML data and never
apply defaults of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from . import mac as macs
from . import networkmanager as nm
from . import stack as stacks
from .presets import ALL as ALL_PRESETS
from .presets import PRESETS
from .systemd import DEFAULT_VERSION
from .targets import HELPER_DIR

DEFAULT_MASKS = ("50-docker.network", "50-docker-veth.network")
DEFAULT_QUARANTINE = ("/run/systemd/network/*.network",)
DEFAULT_TEXTFILE_DIR = "/var/lib/node_exporter/textfile_collector"


@dataclass(frozen=True)
class Match:
    names: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    drivers: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def broad(self) -> bool:
        """True unless the match names exact interfaces or physical device paths.

        A name glob can catch container interfaces, and a MAC is copied by bridges,
        VLANs and bonds built on the NIC, so such matches get exclusions of virtual
        interfaces rendered into [Match].
        """
        exact_names = bool(self.names) and not any(ch in n for n in self.names for ch in "*?[")
        return not (exact_names or self.paths)


@dataclass(frozen=True)
class Uplink:
    name: str
    match: Match
    dhcp: str  # "yes" | "no" | "ipv4" | "ipv6"
    addresses: tuple[str, ...]
    gateways: tuple[str, ...]
    dns: tuple[str, ...]
    mtu: int | None
    ipv6_accept_ra: bool
    required_for_online: bool


@dataclass(frozen=True)
class Bridge:
    name: str
    mac: str  # always a concrete lowercase MAC
    mac_source: str  # "stable" | "explicit"
    addresses: tuple[str, ...]
    mtu: int | None
    stp: bool


@dataclass(frozen=True)
class UnmanagedGroup:
    id: str  # preset name, or "names" for unmanaged.names
    globs: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Daemon:
    """A dockerd. ``docker`` is the main daemon: the packaged docker.service reads
    /etc/docker/daemon.json (its settings, untouched). Every other daemon runs as
    docker-NAME.service with /etc/docker/NAME/daemon.json, its own state paths (the
    settings' values or the defaults decided in ``from_data``), socket and bridge.
    ``settings_json`` is the daemon.json passthrough as canonical JSON (sorted keys), so
    two daemons are equal, and hash alike, exactly when every setting is the same.
    """

    name: str
    bridge: str | None  # a bridge from 'bridges'
    host: str | None  # socket URL; a bare path gets unix://
    settings_json: str = "{}"
    data_root: str | None = None  # extra daemons only
    exec_root: str | None = None
    pidfile: str | None = None

    MAIN = "docker"

    @classmethod
    def from_data(cls, d: dict) -> Daemon:
        name, settings = d["name"], dict(d.get("settings") or {})
        text = json.dumps(settings, sort_keys=True, ensure_ascii=False)
        host = d.get("host")
        if isinstance(host, str) and host.startswith("/"):
            host = "unix://" + host
        if name == cls.MAIN:
            return cls(name, d.get("bridge"), host, text)
        return cls(
            name,
            d.get("bridge"),
            host,
            text,
            data_root=settings.get("data-root", f"/var/lib/docker-{name}"),
            exec_root=settings.get("exec-root", f"/var/run/docker-{name}"),
            pidfile=settings.get("pidfile", f"/var/run/docker-{name}.pid"),
        )

    @cached_property
    def settings(self) -> dict:
        """The settings as data (do not modify: shared by every reader)."""
        return json.loads(self.settings_json)

    @property
    def main(self) -> bool:
        return self.name == self.MAIN

    @property
    def unit(self) -> str:
        return "docker.service" if self.main else f"docker-{self.name}.service"

    @property
    def config_path(self) -> str:
        return "/etc/docker/daemon.json" if self.main else f"/etc/docker/{self.name}/daemon.json"

    @property
    def containerd_namespace(self) -> str | None:
        """Extra daemons use their own containerd namespaces (moby's default is "moby")."""
        return None if self.main else self.settings.get("containerd-namespace", f"docker-{self.name}")

    @property
    def plugins_namespace(self) -> str | None:
        return None if self.main else f"docker-{self.name}-plugins"

    def daemon_json(self) -> dict:
        """The daemon.json content: the settings, plus for extra daemons the keys
        netharden owns (socket, bridge, state paths, containerd namespace) and
        ``iptables: false`` unless the settings say otherwise."""
        config = dict(self.settings)
        if self.bridge:
            config["bridge"] = self.bridge
        if not self.main:
            config.update(
                {
                    "data-root": self.data_root,
                    "exec-root": self.exec_root,
                    "pidfile": self.pidfile,
                    "containerd-namespace": self.containerd_namespace,
                }
            )
            if self.host:
                config["hosts"] = [self.host]
            config.setdefault("iptables", False)
        return config


@dataclass(frozen=True)
class Container:
    name: str
    sysctls: tuple[tuple[str, str], ...]
    cap_add: tuple[str, ...]
    devices: tuple[str, ...]


@dataclass(frozen=True)
class VxlanGC:
    mode: str  # off | report | remove
    interval: str
    pattern: str
    textfile_dir: str


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    os: str
    systemd: int
    uplinks: tuple[Uplink, ...]
    bridges: tuple[Bridge, ...]
    unmanaged: tuple[UnmanagedGroup, ...]
    masks: tuple[str, ...]
    quarantine: tuple[str, ...]
    foreign_routes: str  # keep | manage
    daemons: tuple[Daemon, ...]
    containers: tuple[Container, ...]
    hold_packages: tuple[str, ...]
    vxlan_gc: VxlanGC
    sysctl: tuple[tuple[str, str], ...]
    helper_dir: str = "/usr/local/libexec/netharden"  # where host-side sh helpers go (targets.HELPER_DIR)
    source: str = ""
    stack: str = "networkd"  # networkd | netplan | networkmanager (stack.DEFAULT_STACK per os)
    networkmanager: tuple[int, int] = nm.FALLBACK_VERSION  # (major, minor); read only on that stack


def _tuple(value: Any) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


# dhcp mode -> address families it configures
DHCP_FAMILIES: dict[str, tuple[int, ...]] = {"yes": (4, 6), "no": (), "ipv4": (4,), "ipv6": (6,)}


def dhcp_mode(value: Any, has_addresses: bool) -> str | None:
    """The dhcp mode an uplink ends up with (default: no with static addresses, else
    yes; YAML booleans map to yes/no), or None for a value the schema rejects."""
    if value is None:
        return "no" if has_addresses else "yes"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return value if isinstance(value, str) and value in DHCP_FAMILIES else None


def _groups(unmanaged_cfg: dict) -> tuple[UnmanagedGroup, ...]:
    groups = [
        UnmanagedGroup(p, PRESETS[p][0], PRESETS[p][1])
        for p in ALL_PRESETS
        if p in unmanaged_cfg.get("presets", ALL_PRESETS)
    ]
    if unmanaged_cfg.get("names"):
        groups.append(UnmanagedGroup("names", tuple(unmanaged_cfg["names"]), "interfaces listed in unmanaged.names"))
    return tuple(groups)


def normalize(data: dict, source: str = "") -> Profile:
    """Build the typed Profile from validated data (see validate.validate)."""
    meta = data["metadata"]
    host = meta["name"]
    platform = data.get("platform") or {}
    os_name = platform.get("os", "generic")
    uplinks = []
    for up in data.get("uplinks") or []:
        m = up.get("match")
        match = (
            Match(names=(up["name"],))
            if m is None
            else Match(
                names=_tuple(m.get("name")),
                macs=tuple(x.lower() for x in _tuple(m.get("mac"))),
                drivers=_tuple(m.get("driver")),
                paths=_tuple(m.get("path")),
            )
        )
        addresses = _tuple(up.get("addresses"))
        dhcp = dhcp_mode(up.get("dhcp"), bool(addresses))
        assert dhcp is not None, "normalize() takes validated data"
        uplinks.append(
            Uplink(
                name=up["name"],
                match=match,
                dhcp=dhcp,
                addresses=addresses,
                gateways=_tuple(up.get("gateway")),
                dns=_tuple(up.get("dns")),
                mtu=up.get("mtu"),
                ipv6_accept_ra=up.get("ipv6_accept_ra", dhcp in ("yes", "ipv6")),
                required_for_online=up.get("required_for_online", True),
            )
        )
    bridges = []
    for br in data.get("bridges") or []:
        value = br.get("mac", "stable")
        explicit = value != "stable"
        bridges.append(
            Bridge(
                name=br["name"],
                mac=macs.normalize(value) if explicit else macs.stable_mac(host, br["name"]),
                mac_source="explicit" if explicit else "stable",
                addresses=_tuple(br.get("addresses")),
                mtu=br.get("mtu"),
                stp=bool(br.get("stp", False)),
            )
        )
    unmanaged_cfg = data.get("unmanaged") or {}
    groups = _groups(unmanaged_cfg)
    networkd = data.get("networkd") or {}
    docker = data.get("docker") or {}
    daemons = tuple(Daemon.from_data(d) for d in docker.get("daemons") or [])
    containers = tuple(
        Container(
            name,
            tuple(sorted((k, str(v)) for k, v in (c.get("sysctls") or {}).items())),
            tuple(c.get("cap_add") or ()),
            tuple(c.get("devices") or ()),
        )
        for name, c in sorted((docker.get("containers") or {}).items())
    )
    gc = data.get("vxlan_gc")
    if gc is None:
        vxlan = VxlanGC("off", "5min", "vx-*", DEFAULT_TEXTFILE_DIR)
    else:
        vxlan = VxlanGC(
            "off" if gc.get("mode", "report") is False else gc.get("mode", "report"),
            gc.get("interval", "5min"),
            gc.get("pattern", "vx-*"),
            gc.get("textfile_dir", DEFAULT_TEXTFILE_DIR),
        )
    return Profile(
        name=host,
        description=meta.get("description", ""),
        os=os_name,
        systemd=platform.get("systemd", DEFAULT_VERSION[os_name]),
        uplinks=tuple(uplinks),
        bridges=tuple(bridges),
        unmanaged=groups,
        masks=tuple(sorted(networkd.get("mask", DEFAULT_MASKS))),
        quarantine=tuple(networkd.get("quarantine", DEFAULT_QUARANTINE)),
        foreign_routes=networkd.get("foreign_routes", "keep"),
        daemons=daemons,
        containers=containers,
        hold_packages=tuple(docker.get("hold_packages") or ()),
        vxlan_gc=vxlan,
        helper_dir=HELPER_DIR[os_name],
        sysctl=tuple(sorted((k, str(v)) for k, v in (data.get("sysctl") or {}).items())),
        source=source,
        stack=stacks.stack_for(os_name, platform.get("stack")),
        networkmanager=nm.parse(platform["networkmanager"])
        if "networkmanager" in platform
        else nm.default_version(os_name),
    )
