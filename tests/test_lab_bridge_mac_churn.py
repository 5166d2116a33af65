"""Lab scenario bridge-mac-churn (incident 3) on the real kernel and systemd-networkd:
every example (skipped without bridges), weakened plans whose bridge MAC is not pinned
(the profile side must fail), the seeded churn sequence, and cleanup after success and
Ctrl-C.

The baseline is the kernel's own behaviour (a bridge without a set MAC follows its
smallest port); with the seeded sequence of 20 cycles, 10 of them with a lower MAC,
the bridge MAC changes 20 times and the container resolves 11 different gateway MACs.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import netharden
from helpers import NETWORKD_EXAMPLES, minimal
from netharden.lab import runner
from netharden.lab.cleanup import leftovers
from netharden.lab.netns import require_or_skip
from netharden.lab.scenario import BREAKS, FAILS, HOLDS, SKIPPED, Context
from netharden.lab.scenarios import bridge_mac_churn as scenario

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parent.parent
BRIDGED = {"full-host.yaml", "incident-3-bridge-mac.yaml"}


@pytest.fixture(autouse=True)
def harness_and_clean():
    require_or_skip(pytest)
    yield
    assert leftovers(ignore_other_live_owners=True) == []


def context(tmp_path: Path, data, netdev=None) -> Context:
    """The profile's Context; ``netdev`` rewrites the MACAddress= line of every .netdev
    of the Plan (a weakened plan)."""
    prof = netharden.load(data)
    plan = netharden.plan(prof)
    if netdev is not None:
        plan.files = [dataclasses.replace(f, content=re.sub(r"(?m)^MACAddress=.*\n", netdev, f.content))
                      if f.path.endswith(".netdev") else f for f in plan.files]
    return Context(prof, plan, tmp_path)


@pytest.mark.parametrize("path", NETWORKD_EXAMPLES, ids=lambda p: p.name)
def test_examples(tmp_path, path):
    ctx = context(tmp_path, path)
    outcome = runner._run_one(scenario, ctx, None)
    assert (outcome.id, outcome.incident) == ("bridge-mac-churn", "incident-3")
    if path.name not in BRIDGED:
        assert not ctx.profile.bridges
        assert outcome.baseline.status == outcome.profile.status == SKIPPED
        assert outcome.profile.evidence == ["the profile has no bridges"]
        return
    bridge = ctx.profile.bridges[0]
    _, port, churn = scenario.churn_macs(ctx, bridge)
    gateway = bridge.addresses[0].split("/")[0]
    base = outcome.baseline
    assert base.status == BREAKS, outcome.to_dict()
    assert re.fullmatch(rf"hand-made bridge {bridge.name} \(ip link add type bridge, no MAC\): created with "
                        rf"[0-9a-f:]{{17}}, addr_assign_type random; gateway {re.escape(bridge.addresses[0])}",
                        base.evidence[0]), base.evidence
    assert base.evidence[1].startswith(f"the container's port ({port}) joined: bridge MAC ")
    assert base.evidence[1].endswith(f" -> {port}")
    assert base.evidence[2].startswith(
        f"20 churn cycles (10 ports with a MAC lower than {port}), 41 observations: the bridge MAC changed 20 "
        f"times; the container resolved {gateway} to 11 different MACs (")
    assert base.evidence[3] == (
        f"after vethnh00 ({churn[0]}) left, the container's ping to {gateway} over its cached MAC {churn[0]} got "
        f"no reply within 1 s (the bridge is now {port})")
    assert base.evidence[4] == "the container's cached gateway MAC was stale at 20 of 41 observations"

    prof = outcome.profile
    assert prof.status == HOLDS, outcome.to_dict()
    assert prof.evidence[0] == (
        f"networkd created {bridge.name} from 10-netharden-{bridge.name}.netdev with {bridge.mac} "
        f"(pinned {bridge.mac}, addr_assign_type set); gateway {bridge.addresses[0]}")
    lowest = min(port, bridge.mac, key=lambda m: int(m.replace(":", ""), 16))
    assert prof.evidence[1] == (
        f"20 churn cycles (10 ports with a MAC lower than {lowest}), 41 observations: the bridge MAC changed 0 "
        f"times; the container resolved {gateway} always to {bridge.mac}")
    if len(ctx.profile.bridges) > 1:
        others = ", ".join(f"{b.name} {b.mac}" for b in ctx.profile.bridges[1:])
        assert f"other bridges at start: {others} (churn replayed on the first only)" in prof.evidence
    assert prof.evidence[-1] == (f"{bridge.name} kept {bridge.mac} throughout; 40 pings over the container's "
                                 "cached gateway MAC all answered")
    assert outcome.seconds < 8, outcome.seconds


def test_churn_sequence_is_seeded_and_straddles_the_bridge(tmp_path):
    ctx = context(tmp_path, ROOT / "examples" / "full-host.yaml")
    bridge = ctx.profile.bridges[0]
    first = scenario.churn_macs(ctx, bridge)
    assert first == scenario.churn_macs(ctx, bridge)
    container, port, churn = first
    value = lambda m: int(m.replace(":", ""), 16)  # noqa: E731
    floor = min(value(port), value(bridge.mac))
    assert len(churn) == scenario.CYCLES == 20 and len(set(churn)) == 20
    assert all(value(m) < floor for m in churn[0::2])
    assert all(value(m) > max(value(port), value(bridge.mac)) for m in churn[1::2])
    assert all(not int(m[:2], 16) & 1 for m in [container, port, *churn])   # unicast


@pytest.mark.parametrize("netdev, wanted", [
    # MACAddress=none: the kernel's random MAC, which then follows the ports
    ("MACAddress=none\n", "the bridge MAC changed 20 times"),
    # no MACAddress=: networkd 252 sets a MAC of its own (from the machine id), not the pinned one
    ("", "the bridge MAC changed 0 times"),
])
def test_unpinned_bridge_fails(tmp_path, netdev, wanted):
    ctx = context(tmp_path, ROOT / "examples" / "incident-3-bridge-mac.yaml", netdev)
    bridge = ctx.profile.bridges[0]
    result = scenario.profile(ctx)
    assert result.status == FAILS, result.to_dict()
    assert any(wanted in e for e in result.evidence), result.evidence
    assert any(e.startswith("the bridge MAC was ") and e.endswith(f"not only the pinned {bridge.mac}")
               for e in result.evidence), result.evidence
    assert any(e.startswith("the container saw its gateway at ") for e in result.evidence)
    # the second bridge (explicit MAC) was unpinned too
    assert any(e.startswith("other bridges at start: dockerbrtest ") and "(pinned 02:00:5e:00:31:01)" in e
               for e in result.evidence), result.evidence


def test_container_view_is_measured_not_assumed(tmp_path):
    """The container's gateway view comes from its own namespace: after a lower port
    left a hand-made bridge, the ping over the cached MAC really got no reply."""
    ctx = context(tmp_path, ROOT / "examples" / "full-host.yaml")
    result = scenario.baseline(ctx)
    assert result.status == BREAKS
    assert any("got no reply within 1 s" in e for e in result.evidence), result.evidence


@pytest.mark.parametrize("side", ["baseline", "profile"])
def test_ctrl_c_leaves_nothing_behind(tmp_path, monkeypatch, side):
    calls = []
    real = scenario.GatewayWatch.resolve

    def interrupted(self):
        calls.append(1)
        if len(calls) == 5:   # mid-churn: ports, the container and (profile) networkd exist
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(scenario.GatewayWatch, "resolve", interrupted)
    ctx = context(tmp_path, ROOT / "examples" / "full-host.yaml")
    with pytest.raises(KeyboardInterrupt):
        getattr(scenario, side)(ctx)
    assert len(calls) == 5


def test_stp_bridge_without_ipv4_is_judged_by_its_own_mac(tmp_path):
    """STP delays forwarding on the container's port (so its view is not probed); a
    bridge with only IPv6 addresses gets a documentation IPv4 gateway in the lab."""
    data = minimal(platform={"os": "debian"},
                   bridges=[{"name": "brstp0", "stp": True, "addresses": ["2001:db8:5::1/64"]}])
    ctx = context(tmp_path, data)
    mac = ctx.profile.bridges[0].mac
    result = scenario.profile(ctx)
    assert result.status == HOLDS, result.to_dict()
    assert result.evidence[0].endswith(
        f"with {mac} (pinned {mac}, addr_assign_type set); gateway 192.0.2.1/24 "
        "(added: the bridge has no IPv4 address in the profile)")
    assert result.evidence[1].endswith("the bridge MAC changed 0 times; the container's view was not probed "
                                       "(STP is on: its port forwards only after the forward delay)")
    assert result.evidence[2] == f"brstp0 kept {mac} throughout"
