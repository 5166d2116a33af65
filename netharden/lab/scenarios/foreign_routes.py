"""Hazard: systemd-networkd removes routes and policy rules that CNI plugins installed.

With its defaults (``ManageForeignRoutes=yes`` since 246, ``ManageForeignRoutingPolicyRules=yes``
since 249) networkd removes, whenever it (re)configures a link it manages, every route
on that link it did not configure itself, every device-less route (blackhole,
unreachable ...) and every policy rule anywhere that it did not configure. Measured on
systemd 252 (this module's test pins it):

* a restart removes nothing: networkd configures the already-present links while it
  enumerates them, before it has read the routing tables and rules;
* ``networkctl reconfigure`` (also what ``networkctl reload`` does to a link whose
  ``.network`` changed) removes the uplink's foreign IPv4 and IPv6 routes, a blackhole
  route and the policy rule; a route on an unmanaged bridge (cni0) survives;
* with ``ManageForeignRoutes=no`` + ``ManageForeignRoutingPolicyRules=no`` networkd
  removes none of them. An IPv4 route via the uplink still disappears on reconfigure:
  networkd 252 removes and re-adds the link's own addresses, and the kernel flushes
  every IPv4 route through a device when its last IPv4 address goes. No networkd.conf
  key prevents that, so that route is reported, not judged.

Foreign state, CNI-like: a flannel host-gw route via the uplink, a Calico-style IPv6
route on the uplink and a blackhole route (proto bird), a cni0 bridge with a route in
table 100, and a policy rule ``from <pod subnet> lookup 100`` (AWS VPC CNI / Cilium
style). Each side runs the real networkd over the profile's own network files; the
baseline without any networkd.conf drop-in, the profile with its own
``networkd.conf.d``. The link networkd manages is the profile's uplink when a veth can
stand in for it (exact names, static addresses), otherwise a stand-in link with a
``.network`` of the scenario's own (the same file on both sides). Duplicate address
detection is off in the lab's namespace (nothing else is on the veth): it would only
make every (re)configuration of a static IPv6 address wait about a second.

An event is over when networkd logs ``<link>: State changed: configuring -> configured``
after it; what networkd removed is read from its debug log ("Removing foreign route ...",
"Removing foreign routing policy rule ..."), what is gone from ``ip -j route/rule``.
Targets older than 246 are skipped (nothing is rendered for them and networkd 252 cannot
stand in for them); for targets older than 249 the rule is reported, not judged.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import time
from typing import Any

from ...systemd import supports
from ..scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, Context, Result

ID = "foreign-routes"
TITLE = "CNI routes and policy rules across a networkd restart and reconfigure"
INCIDENT = "hazard-foreign-routes"
STACK = "networkd"
HINT = "networkd.foreign_routes: keep (networkd.conf.d ManageForeignRoutes=no, ManageForeignRoutingPolicyRules=no)"

STANDIN = "nhup0"
STANDIN_FILE = "0-0-netharden-lab-uplink.network"  # sorts before every file of the profile
CNI_BRIDGE = "cni0"
TABLE = "100"
PRIORITY = 100
PROTO_BIRD = "12"
_POOL4: list[ipaddress.IPv4Network] = [
    n
    for base in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")
    for n in ipaddress.IPv4Network(base).subnets(new_prefix=26)
]
_POOL6: list[ipaddress.IPv6Network] = [*ipaddress.IPv6Network("2001:db8:ff00::/56").subnets(new_prefix=64)][:16]


def applies(ctx: Context) -> str | None:
    p = ctx.profile
    if p.foreign_routes == "manage":
        return "networkd.foreign_routes is manage: networkd is meant to remove foreign routes and rules"
    if not supports(p.systemd, "networkd.manage_foreign_routes"):
        return (
            f"the profile targets systemd {p.systemd}, which has no ManageForeignRoutes= (246+): nothing is "
            f"rendered for it, and this lab's networkd cannot stand in for {p.systemd}"
        )
    return None


# ---------------------------------------------------------------------------
# what the scenario sets up


class _Setup:
    """The managed link and the foreign routes/rule, with addresses that overlap
    nothing of the profile's."""

    def __init__(self, ctx: Context):
        p = ctx.profile
        taken = [ipaddress.ip_interface(a).network for up in p.uplinks for a in up.addresses]
        taken += [ipaddress.ip_interface(a).network for br in p.bridges for a in br.addresses]
        self.link, self.mac, self.standin, self.note = self._managed_link(ctx)
        link_v4 = None
        if not self.standin and self.uplink is not None:
            link_v4 = next(
                (ipaddress.ip_interface(a) for a in self.uplink.addresses if ipaddress.ip_interface(a).version == 4),
                None,
            )
        free4 = iter(n for n in _POOL4 if not any(n.overlaps(t) for t in taken if t.version == 4))
        free6 = iter(n for n in _POOL6 if not any(n.overlaps(t) for t in taken if t.version == 6))

        def free(pool):
            net = next(pool, None)
            if net is None:
                raise RuntimeError("the profile's addresses cover every documentation subnet the scenario uses")
            return net

        if self.standin:
            net = free(free4)
            link_v4 = ipaddress.ip_interface(f"{net[10]}/{net.prefixlen}")
        self.link_v4 = link_v4
        if link_v4 is not None:  # a neighbour on the link's own subnet, from the top
            avoid = {link_v4.ip, *(ipaddress.ip_address(g) for up in p.uplinks for g in up.gateways)}
            net = link_v4.network
            tops = [net.broadcast_address - i for i in range(1, 6) if net.num_addresses > i + 1]
            host = next((h for h in tops if h not in avoid), None) or next(
                (h for h in net.hosts() if h not in avoid), None
            )
            self.nexthop = str(host) if host is not None else str(free(free4)[1])
        else:
            self.nexthop = str(free(free4)[1])
        self.pods = free(free4)  # cni0's subnet, source of the policy rule
        self.other_pods = free(free4)  # another node's pods (host-gw route via the uplink)
        self.ipam_block = free(free4)  # blackhole route (Calico IPAM block)
        self.table_dst = free(free4)  # route in table 100 via cni0
        self.pods6 = free(free6)
        dev = self.link
        # key -> (description, `ip` arguments that add it); snapshot() finds them again
        self.items = {
            "hostgw": (
                f"{self.other_pods} via {self.nexthop} dev {dev} (host-gw)",
                ["route", "add", str(self.other_pods), "via", self.nexthop, "dev", dev, "onlink"],
            ),
            "ipv6": (f"{self.pods6} dev {dev}", ["-6", "route", "add", str(self.pods6), "dev", dev, "proto", "static"]),
            "blackhole": (
                f"blackhole {self.ipam_block} (proto bird)",
                ["route", "add", "blackhole", str(self.ipam_block), "proto", PROTO_BIRD],
            ),
            "cni": (
                f"{self.table_dst} dev {CNI_BRIDGE} table {TABLE}",
                ["route", "add", str(self.table_dst), "dev", CNI_BRIDGE, "table", TABLE],
            ),
            "rule": (
                f"rule from {self.pods} lookup {TABLE}",
                ["rule", "add", "from", str(self.pods), "lookup", TABLE, "priority", str(PRIORITY)],
            ),
        }

    def _managed_link(self, ctx: Context):
        self.uplink = None
        for up in ctx.profile.uplinks:
            m = up.match
            exact = bool(m.names) and not any(ch in n for n in m.names for ch in "*?[!")
            if m.broad or not exact or m.drivers or m.paths or len(m.macs) > 1:
                continue
            if up.dhcp != "no" or up.ipv6_accept_ra:
                continue
            self.uplink = up
            return m.names[0], (m.macs[0] if m.macs else None), False, f"the profile's uplink {up.name}"
        why = "its uplink match cannot be emulated with a veth" if ctx.profile.uplinks else "it has no uplink"
        return STANDIN, None, True, f"stand-in link {STANDIN} ({STANDIN_FILE}; {why})"

    def standin_text(self) -> str:
        return (
            "# netharden lab: stands in for the host's uplink, which a veth cannot emulate\n"
            f"[Match]\nName={STANDIN}\n\n[Link]\nRequiredForOnline=no\n\n"
            f"[Network]\nAddress={self.link_v4}\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n"
        )

    # -- state -----------------------------------------------------------------

    def snapshot(self, lab) -> set[str]:
        """Keys of the items present now."""
        routes4 = _json(lab, "-4", "route", "show", "table", "all")
        routes6 = _json(lab, "-6", "route", "show", "table", "all")
        rules = _json(lab, "-4", "rule", "show")
        present = set()

        def has(routes, dst, **want) -> bool:
            for r in routes:
                if r.get("dst") != str(dst):
                    continue
                if all((r.get(k) or default) == v for k, (v, default) in want.items()):
                    return True
            return False

        if has(routes4, self.other_pods, dev=(self.link, ""), table=("main", "main")):
            present.add("hostgw")
        if has(routes6, self.pods6, dev=(self.link, "")):
            present.add("ipv6")
        if has(routes4, self.ipam_block, type=("blackhole", "unicast")):
            present.add("blackhole")
        if has(routes4, self.table_dst, dev=(CNI_BRIDGE, ""), table=(TABLE, "main")):
            present.add("cni")
        for r in rules:
            if (
                r.get("priority") == PRIORITY
                and r.get("src") == str(self.pods.network_address)
                and r.get("srclen") == self.pods.prefixlen
                and str(r.get("table")) == TABLE
            ):
                present.add("rule")
        return present

    def install(self, lab, keys) -> None:
        for key in sorted(keys):
            lab.ip(*self.items[key][1])


def _json(lab, *args: str) -> list:
    out = lab.run("ip", "-j", *args).stdout.strip()
    return json.loads(out) if out else []


# ---------------------------------------------------------------------------
# the replay


def _wait_configured(lab, link: str, since: int, timeout: float = 10.0) -> None:
    """Until networkd logged that it finished configuring ``link`` after ``since``
    (the state file alone cannot tell a finished reconfigure from the old state)."""
    needle = f"{link}: State changed: configuring -> configured"
    deadline = time.monotonic() + timeout
    while needle not in lab.log_text(since):
        if not lab.networkd_running():
            raise RuntimeError(f"networkd exited\n{lab.describe()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{link} not configured again within {timeout:g} s\n{lab.describe()}")
        time.sleep(0.02)


def _removed_by_networkd(setup: _Setup, log: str) -> set[str]:
    """Items networkd says it removed (its debug log names each foreign route/rule)."""
    out = set()
    lines = [line for line in log.splitlines() if "Removing foreign" in line]
    for key, dst in (
        ("hostgw", setup.other_pods),
        ("ipv6", setup.pods6),
        ("blackhole", setup.ipam_block),
        ("cni", setup.table_dst),
    ):
        if any(f"dst: {dst}," in line for line in lines if "route" in line):
            out.add(key)
    if any(f"priority: {PRIORITY}," in line and f"{setup.pods}" in line for line in lines if "rule" in line):
        out.add("rule")
    return out


def _run(ctx: Context, conf_dir) -> tuple[_Setup, list[dict], list[str], int]:
    """Replay both events on one networkd; returns the setup, one record per event,
    networkd's warnings and its version."""
    from ..netns import NetworkdLab

    setup = _Setup(ctx)
    net = ctx.scratch("foreign-routes-network") / "network"
    shutil.copytree(ctx.network_dir(), net, symlinks=True)
    if setup.standin:
        (net / STANDIN_FILE).write_text(setup.standin_text())
    events: list[dict[str, Any]] = []
    with NetworkdLab(net, conf_dir, run_network_dir=ctx.plan_generated) as lab:
        # no duplicate address detection on the veths: nothing else is on the link, and it
        # would only make networkd wait ~1 s per (re)configuration of a static IPv6 address
        lab.run("sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")
        peer = "nhfrpeer0"
        lab.ip(
            "link",
            "add",
            setup.link,
            *(("address", setup.mac) if setup.mac else ()),
            "type",
            "veth",
            "peer",
            "name",
            peer,
        )
        lab.ip("link", "set", peer, "up")
        # networkd drops foreign state when it starts configuring a link; what CNI adds
        # after that stays until the next (re)configuration
        lab.wait_for(setup.link, ["configuring", "configured"], timeout=10)
        lab.add_bridge(CNI_BRIDGE, up=True)
        lab.ip("addr", "add", f"{setup.pods[1]}/{setup.pods.prefixlen}", "dev", CNI_BRIDGE)
        for name in ("restart", f"networkctl reconfigure {setup.link}"):
            if name != "restart" and not lab.dbus_enabled:
                events.append({"name": name, "skipped": "no dbus-daemon for networkctl"})
                continue
            setup.install(lab, set(setup.items) - setup.snapshot(lab))
            if setup.snapshot(lab) != set(setup.items):
                raise RuntimeError(f"could not install the foreign routes and rule\n{lab.describe()}")
            mark = lab.log_mark()
            if name == "restart":
                lab.restart()
            else:
                lab.run("networkctl", "reconfigure", setup.link)
            _wait_configured(lab, setup.link, mark)
            log = lab.log_text(mark)
            after = setup.snapshot(lab)
            v4_removed = setup.link_v4 is not None and re.search(
                rf"{re.escape(setup.link)}: Remov\w+ \w+ address .*{re.escape(str(setup.link_v4.ip))}/", log
            )
            events.append(
                {
                    "name": name,
                    "gone": set(setup.items) - after,
                    "by_networkd": _removed_by_networkd(setup, log),
                    "v4_removed": bool(v4_removed),
                }
            )
        warnings = [w for w in lab.warnings() if "networkd.conf" in w or "ManageForeign" in w]
    return setup, events, warnings, ctx.version


def _describe(setup: _Setup, event: dict, version: int) -> tuple[list[str], list[str]]:
    """(evidence line, keys that count as harm) for one event."""
    if "skipped" in event:
        return [f"{event['name']}: not run ({event['skipped']})"], []
    gone, by_networkd = event["gone"], event["by_networkd"]
    if not gone and not by_networkd:
        return [f"{event['name']}: all {len(setup.items)} kept"], []
    groups: dict[str, list[str]] = {"removed by networkd": [], "gone": [], "flushed by the kernel": [], "kept": []}
    harm = []
    for key, (desc, _argv) in setup.items.items():
        if key in by_networkd:
            groups["removed by networkd"].append(desc)
            harm.append(key)
        elif key in gone and key == "hostgw" and event["v4_removed"]:
            groups["flushed by the kernel"].append(
                f"{desc} (networkd {version} removes and re-adds {setup.link}'s IPv4 address on reconfigure; "
                "no networkd.conf key keeps this route)"
            )
        elif key in gone:
            groups["gone"].append(desc)
            harm.append(key)
        else:
            groups["kept"].append(desc)
    return [
        f"{event['name']}: " + "; ".join(f"{label}: {', '.join(descs)}" for label, descs in groups.items() if descs)
    ], harm


def _foreign(setup: _Setup) -> str:
    return (
        f"foreign (CNI-like): routes {', '.join(d for k, (d, _) in setup.items.items() if k != 'rule')}"
        f" ({CNI_BRIDGE} unmanaged); {setup.items['rule'][0]}"
    )


def baseline(ctx: Context) -> Result:
    setup, events, _warnings, version = _run(ctx, None)
    evidence = [
        f"networkd {version} defaults (no networkd.conf drop-in), the profile's network files; "
        f"managed link: {setup.note}",
        _foreign(setup),
    ]
    harm = []
    for event in events:
        lines, keys = _describe(setup, event, version)
        evidence += lines
        harm += keys
    if harm:
        return Result(BREAKS, evidence)
    return Result(
        NOT_REPRODUCIBLE,
        [f"baseline not reproducible on systemd {version}: networkd removed no foreign route or rule", *evidence],
    )


def profile(ctx: Context) -> Result:
    conf = ctx.networkd_conf_dir()
    p = ctx.profile
    rules_judged = supports(p.systemd, "networkd.manage_foreign_rules")
    setup, events, warnings, version = _run(ctx, conf)
    files = sorted(f.name for f in conf.iterdir()) if conf is not None else []
    evidence = [
        f"networkd {version} with the profile's networkd.conf.d ({', '.join(files) or 'none'}); "
        f"managed link: {setup.note}",
        _foreign(setup),
    ]
    if not rules_judged:
        evidence.append(
            f"the profile targets systemd {p.systemd} (< 249, no ManageForeignRoutingPolicyRules=): "
            "the policy rule is reported, not judged"
        )
    harm = []
    for event in events:
        lines, keys = _describe(setup, event, version)
        evidence += lines
        harm += [k for k in keys if rules_judged or k != "rule"]
    evidence += [f"networkd: {w}" for w in warnings]
    if harm or warnings:
        return Result(FAILS, evidence)
    return Result(HOLDS, evidence)
