"""Lab scenario foreign-routes (hazard-foreign-routes) on the real systemd-networkd:
every example, the profiles it does not apply to, weakened plans for which the profile
side must fail, and cleanup after success and Ctrl-C.

Outcomes pinned for systemd 252 (what CI has): a restart removes nothing; ``networkctl
reconfigure`` of the managed link removes its foreign IPv4 and IPv6 routes, a blackhole
route and the policy rule, and keeps a route on the unmanaged cni0. With the profile's
drop-in networkd removes none of them; the IPv4 route via the managed link is still
flushed by the kernel (networkd 252 removes and re-adds the link's address), which the
scenario reports without judging.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import netharden
from helpers import NETWORKD_EXAMPLES, minimal
from netharden.lab import runner
from netharden.lab.cleanup import leftovers
from netharden.lab.netns import NetworkdLab, require_or_skip
from netharden.lab.scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, SKIPPED, Context
from netharden.lab.scenarios import foreign_routes as scenario

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parent.parent
FULL = ROOT / "examples" / "full-host.yaml"
STANDIN = "stand-in link nhup0 (0-0-netharden-lab-uplink.network; its uplink match cannot be emulated with a veth)"
# example -> (managed link note, link, host-gw route, IPv6 route, blackhole, cni0 route, rule source)
EXPECTED = {
    "full-host.yaml": (STANDIN, "nhup0", "198.51.100.128/26 via 198.51.100.62", "2001:db8:ff00::/64",
                       "198.51.100.192/26", "203.0.113.0/26", "198.51.100.64/26"),
    "incident-1-runtime-catchall.yaml": (STANDIN, "nhup0", "198.51.100.128/26 via 198.51.100.62",
                                         "2001:db8:ff00::/64", "198.51.100.192/26", "203.0.113.0/26",
                                         "198.51.100.64/26"),
    # its uplink's 198.51.100.0/24 is taken: the scenario's addresses move on
    "incident-3-bridge-mac.yaml": (STANDIN, "nhup0", "203.0.113.128/26 via 203.0.113.62", "2001:db8:ff00::/64",
                                   "203.0.113.192/26", "192.0.2.0/26", "203.0.113.64/26"),
    "incident-4-stale-vxlan.yaml": (STANDIN, "nhup0", "198.51.100.128/26 via 198.51.100.62", "2001:db8:ff00::/64",
                                    "198.51.100.192/26", "203.0.113.0/26", "198.51.100.64/26"),
    # eth0 by exact name with static addresses: a veth named eth0 is the profile's own uplink
    "incident-5-container-ipv6.yaml": ("the profile's uplink lan", "eth0", "198.51.100.64/26 via 192.0.2.254",
                                       "2001:db8:ff00::/64", "198.51.100.128/26", "198.51.100.192/26",
                                       "198.51.100.0/26"),
}
SKIP_241 = ("the profile targets systemd 241, which has no ManageForeignRoutes= (246+): nothing is rendered for "
            "it, and this lab's networkd cannot stand in for 241")


@pytest.fixture(autouse=True)
def harness_and_clean():
    require_or_skip(pytest)
    yield
    assert leftovers(ignore_other_live_owners=True) == []


def context(tmp_path: Path, data, *, drop_conf: bool = False) -> Context:
    prof = netharden.load(data)
    plan = netharden.plan(prof)
    if drop_conf:   # weakened: the Plan without its networkd.conf drop-in
        plan = dataclasses.replace(plan, files=[f for f in plan.files if "networkd.conf.d" not in f.path])
    return Context(prof, plan, tmp_path)


def lines(name: str) -> dict[str, str]:
    note, link, hostgw, v6, block, cni, pods = EXPECTED[name]
    routes = (f"{hostgw} dev {link} (host-gw)", f"{v6} dev {link}", f"blackhole {block} (proto bird)",
              f"{cni} dev cni0 table 100")
    rule = f"rule from {pods} lookup 100"
    return {
        "note": note, "link": link, "hostgw": routes[0], "rule": rule,
        "foreign": f"foreign (CNI-like): routes {', '.join(routes)} (cni0 unmanaged); {rule}",
        "removed": (f"networkctl reconfigure {link}: removed by networkd: {routes[0]}, {routes[1]}, {routes[2]}, "
                    f"{rule}; kept: {routes[3]}"),
        "held": (f"networkctl reconfigure {link}: flushed by the kernel: {routes[0]} (networkd 252 removes and "
                 f"re-adds {link}'s IPv4 address on reconfigure; no networkd.conf key keeps this route); "
                 f"kept: {routes[1]}, {routes[2]}, {routes[3]}, {rule}"),
    }


@pytest.mark.parametrize("path", NETWORKD_EXAMPLES, ids=lambda p: p.name)
def test_examples(tmp_path, path):
    ctx = context(tmp_path, path)
    outcome = runner._run_one(scenario, ctx, None)
    assert (outcome.id, outcome.incident) == ("foreign-routes", "hazard-foreign-routes")
    if path.name == "incident-2-networkd-docker-race.yaml":   # coreos: systemd 241
        assert outcome.baseline.status == outcome.profile.status == SKIPPED
        assert outcome.profile.evidence == [SKIP_241]
        return
    if ctx.version != 252:
        assert outcome.baseline.status in (BREAKS, NOT_REPRODUCIBLE), outcome.to_dict()
        assert outcome.profile.status == HOLDS, outcome.to_dict()
        return
    want = lines(path.name)
    assert outcome.baseline.status == BREAKS, outcome.to_dict()
    assert outcome.baseline.evidence == [
        f"networkd 252 defaults (no networkd.conf drop-in), the profile's network files; managed link: {want['note']}",
        want["foreign"],
        "restart: all 5 kept",
        want["removed"],
    ]
    assert outcome.profile.status == HOLDS, outcome.to_dict()
    assert outcome.profile.evidence == [
        "networkd 252 with the profile's networkd.conf.d (50-netharden.conf); managed link: " + want["note"],
        want["foreign"],
        "restart: all 5 kept",
        want["held"],
    ]
    assert outcome.seconds < 8, outcome.seconds


def test_manage_is_skipped(tmp_path):
    data = minimal(platform={"os": "debian"}, networkd={"foreign_routes": "manage"})
    outcome = runner._run_one(scenario, context(tmp_path, data), None)
    assert outcome.profile.status == SKIPPED
    assert outcome.profile.evidence == [
        "networkd.foreign_routes is manage: networkd is meant to remove foreign routes and rules"]


def test_plan_without_the_dropin_fails(tmp_path):
    ctx = context(tmp_path, FULL, drop_conf=True)
    assert ctx.networkd_conf_dir() is None
    result = scenario.profile(ctx)
    assert result.status == FAILS, result.to_dict()
    want = lines("full-host.yaml")
    assert result.evidence[0].startswith("networkd 252 with the profile's networkd.conf.d (none); ")
    assert result.evidence[-1] == want["removed"]


def test_target_without_the_rules_key_reports_the_rule(tmp_path):
    """systemd 247 has ManageForeignRoutes= but not ManageForeignRoutingPolicyRules=
    (249): the rendered drop-in keeps the routes; the rule, which networkd 252 then
    removes, is reported and not judged."""
    data = minimal(platform={"os": "generic", "systemd": 247},
                   uplinks=[{"name": "lan", "match": {"name": "eth0"}, "addresses": ["192.0.2.40/24"]}])
    ctx = context(tmp_path, data)
    conf = ctx.networkd_conf_dir()
    text = (conf / "50-netharden.conf").read_text()
    assert "ManageForeignRoutes=no" in text and "ManageForeignRoutingPolicyRules" not in text
    result = scenario.profile(ctx)
    assert result.status == HOLDS, result.to_dict()
    assert ("the profile targets systemd 247 (< 249, no ManageForeignRoutingPolicyRules=): the policy rule is "
            "reported, not judged") in result.evidence
    assert "removed by networkd: rule from " in result.evidence[-1]
    assert "kept: 2001:db8:ff00::/64 dev eth0, blackhole " in result.evidence[-1]


def test_stand_in_file(tmp_path):
    ctx = context(tmp_path, FULL)
    setup = scenario._Setup(ctx)
    assert setup.standin and setup.link == "nhup0"
    assert setup.standin_text().splitlines()[1:] == [
        "[Match]", "Name=nhup0", "", "[Link]", "RequiredForOnline=no", "",
        "[Network]", "Address=198.51.100.10/26", "IPv6AcceptRA=no", "LinkLocalAddressing=no"]
    # it sorts before every file the profile renders
    names = sorted([scenario.STANDIN_FILE, *(p.name for p in ctx.network_dir().iterdir())])
    assert names[0] == scenario.STANDIN_FILE


def test_ctrl_c_leaves_nothing_behind(tmp_path, monkeypatch):
    real = NetworkdLab.restart

    def interrupted(self):
        real(self)
        raise KeyboardInterrupt   # inside the lab, routes and rule installed

    monkeypatch.setattr(NetworkdLab, "restart", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scenario.baseline(context(tmp_path, FULL))
