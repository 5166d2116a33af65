"""Lab scenario uplink-shadowed on the real netplan generate and the real systemd-networkd: an
Ubuntu cloud image's 50-cloud-init.yaml (eth0 by MAC, dhcp4) makes netplan write
10-netplan-eth0.network, which takes eth0 before netharden's networkd-stack uplink file (the
profile's static address is absent from the link, and the lab exits 1 for such a profile); with
netharden's uplink as a netplan netdef (60-netharden.yaml) its generated file sorts first and the
address is on the link. Also: the lab's netplan step runs the networkd scenarios of a
netplan-stack profile over netplan's output."""
from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT, lab_context, minimal, need, write_profile

import netharden
from netharden.lab.scenario import BREAKS, FAILS, HOLDS, SKIPPED, Context
from netharden.lab.scenarios import for_stack, runtime_catchall
from netharden.lab.scenarios import uplink_shadowed as scenario
from netharden.netplan_generate import NETPLAN_FILE, generated_network

UBUNTU = minimal(
    platform={"os": "ubuntu", "stack": "networkd", "systemd": 252},
    uplinks=[{"name": "eth0", "match": {"name": ["eth0"]}, "addresses": ["192.0.2.10/24"]}],
    unmanaged={"presets": ["docker", "veth"]},
)
NETPLAN_GEN = "/run/systemd/network/10-netplan-eth0.network"
OWN_NETWORKD = "/etc/systemd/network/20-netharden-uplink-eth0.network"


def netplan_context(tmp_path, data) -> Context:
    need("netplan", "apt-get install netplan.io")
    profile = netharden.load({**data, "platform": {**data["platform"], "stack": "netplan"}})
    assert profile.stack == "netplan"
    plan = netharden.plan(profile)
    assert NETPLAN_FILE in {f.path for f in plan.files}
    return Context(profile, plan, tmp_path)


def test_applies_only_where_netplan_owns_the_nics(tmp_path):
    flatcar = lab_context(tmp_path, {**UBUNTU, "platform": {"os": "flatcar"}})
    assert "no netplan or cloud-init YAML" in scenario.applies(flatcar)
    assert scenario.applies(lab_context(tmp_path, UBUNTU)) is None
    by_driver = {**UBUNTU, "uplinks": [{"name": "lan", "match": {"driver": ["virtio_net"]}}]}
    assert "cannot be emulated" in scenario.applies(lab_context(tmp_path, by_driver))
    # a netplan host runs networkd's scenarios too
    ids = [m.ID for m in for_stack("netplan")]
    assert "runtime-catchall" in ids and ID_ in ids and "nm-container-race" not in ids


ID_ = scenario.ID


@pytest.mark.netns
@pytest.mark.usefixtures("lab_harness")
def test_networkd_stack_on_ubuntu_is_shadowed(tmp_path):
    need("netplan", "apt-get install netplan.io")
    ctx = lab_context(tmp_path, UBUNTU)
    base = scenario.baseline(ctx)
    assert base.status == BREAKS, base.evidence
    assert f"eth0: configuring ({NETPLAN_GEN}); 192.0.2.10/24 absent" in base.evidence[-1], base.evidence
    assert "10-netplan-eth0.network" in base.evidence[0]
    side = scenario.profile(ctx)
    assert side.status == FAILS, side.evidence
    assert any(f"not {OWN_NETWORKD}" in e for e in side.evidence), side.evidence
    assert "platform.stack: netplan" in side.evidence[-1]


@pytest.mark.netns
@pytest.mark.usefixtures("lab_harness")
def test_lab_cli_exits_1_when_the_profile_does_not_take_effect(tmp_path):
    need("netplan", "apt-get install netplan.io")
    profile = write_profile(tmp_path / "ubuntu.yaml", UBUNTU)
    done = subprocess.run(
        [sys.executable, "-m", "netharden", "lab", str(profile), "-s", ID_],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: uplink-shadowed" in done.stdout


@pytest.mark.netns
@pytest.mark.usefixtures("lab_harness")
def test_netplan_stack_takes_effect(tmp_path):
    ctx = netplan_context(tmp_path, UBUNTU)
    base = scenario.baseline(ctx)
    assert base.status == BREAKS, base.evidence
    side = scenario.profile(ctx)
    own = f"/run/systemd/network/{generated_network(ctx.profile.uplinks[0])}"
    assert side.status == HOLDS, side.evidence
    assert side.evidence[-1] == f"eth0: configured ({own}); 192.0.2.10/24 on it", side.evidence
    assert "10-netplan-eth0.network" in side.evidence[0]  # cloud-init's netdef is still generated


@pytest.mark.netns
@pytest.mark.usefixtures("lab_harness")
def test_networkd_scenario_runs_over_netplans_output(tmp_path):
    """runtime-catchall for a netplan-stack profile: its uplink file is netplan's output in the
    lab's /run/systemd/network, the quarantine keeps it (a real [Match]) and it manages the
    stand-in with the static address."""
    data = minimal(
        platform={"os": "ubuntu", "systemd": 252},
        uplinks=[{"name": "lan", "match": {"name": ["ens*"]}, "addresses": ["192.0.2.10/24"]}],
        unmanaged={"presets": ["docker", "veth"]},
    )
    ctx = netplan_context(tmp_path, data)
    assert ctx.plan_generated is not None
    side = runtime_catchall.profile(ctx)
    own = f"/run/systemd/network/{generated_network(ctx.profile.uplinks[0])}"
    assert side.status == HOLDS, side.evidence
    assert f"ens0: configured ({own}); 192.0.2.10/24 on it" in side.evidence, side.evidence


def test_skipped_scenario_is_reported_for_other_os(tmp_path):
    from netharden.lab import runner

    profile = netharden.load({**UBUNTU, "platform": {"os": "debian"}})
    outcomes, _ = runner.run(profile, netharden.plan(profile), [ID_])
    assert [o.baseline.status for o in outcomes] == [SKIPPED]
