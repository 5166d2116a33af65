"""Named groups of interfaces that container runtimes and CNI plugins own.

Each preset lists interface name globs (as systemd-networkd and udev match them with
fnmatch). They are rendered into ``Unmanaged=yes`` .network files and
``MACAddressPolicy=none`` .link files. Names only, deliberately: matching every veth by
kind would also catch veths a user means networkd to manage.
"""

from __future__ import annotations

PRESETS: dict[str, tuple[tuple[str, ...], str]] = {
    "docker": (
        ("docker0", "docker_gwbridge", "br-????????????"),
        "dockerd's default bridge, the Swarm gateway bridge and user-defined bridge networks (br- + 12 hex)",
    ),
    "veth": (("veth*",), "host ends of container veth pairs (docker, podman, CNI bridge plugin)"),
    "cni": (("cni*", "cbr0"), "CNI bridge plugin and kubenet bridges"),
    "flannel": (("flannel*",), "flannel VXLAN, host-gw and WireGuard devices"),
    "calico": (
        ("cali*", "tunl0", "vxlan.calico", "vxlan-v6.calico", "wireguard.cali"),
        "Calico workload veths, IPIP, VXLAN and WireGuard devices",
    ),
    "cilium": (("cilium_*", "lxc*"), "Cilium host/net/vxlan devices and endpoint veths"),
    "weave": (("weave", "datapath", "vethwe*", "vxlan-6784"), "Weave Net bridge, datapath and VXLAN devices"),
    "vxlan": (("vx-*",), "Docker Swarm overlay VXLAN devices"),
    "kube": (
        ("kube-ipvs0", "kube-bridge", "kube-dummy-if", "nodelocaldns"),
        "kube-proxy IPVS, kube-router and NodeLocal DNSCache devices",
    ),
}

ALL = tuple(PRESETS)
