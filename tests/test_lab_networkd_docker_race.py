"""Lab scenario networkd-docker-race (incident 2) on the real systemd-networkd: the
vendor files as CoreOS shipped them, the baseline measured once (it does not depend on
the profile), the profile side for every example, masks alone and Unmanaged= alone,
weakened profiles for which it must fail, and cleanup after success and Ctrl-C.

Outcomes are pinned for systemd 252 (what CI has): networkd claims docker0 and the
veths, takes the veths out of docker0 (which loses its carrier) and sets accept_ra
1 -> 0 and promote_secondaries 0 -> 1 on all three; docker0 keeps 172.17.0.1/16."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import NETWORKD_EXAMPLES, debian_252, lab_context
from netharden.lab import runner
from netharden.lab.scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, SKIPPED
from netharden.lab.scenarios import networkd_docker_race as scenario

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("lab_harness")]

VENDOR_DIR = "/usr/lib/systemd/network"
SETUP = [f"50-docker.network, 50-docker-veth.network as CoreOS shipped them before Dec 2016, in {VENDOR_DIR} "
         "(Type=bridge replayed as Kind=bridge: no udev in the lab)",
         "docker0 (02:42:5e:00:53:01, 172.17.0.1/16) with 2 veth ports set up before networkd starts"]
# the number of sysctls per interface depends on the kernel (285 for these three on 6.x)
HOLDING = re.compile(r"after start, reload, restart: docker0, veth1a2b3c4, veth5d6e7f8 unmanaged; MAC, MTU, flags, "
                     r"master, addresses and \d+ sysctls byte for byte as docker set them")
ALL = "docker0, veth1a2b3c4, veth5d6e7f8"


def veth_taken(name: str) -> str:
    return (f"start: {name}: configuring ({VENDOR_DIR}/50-docker-veth.network); master docker0 -> none; "
            f"net.ipv4.conf.{name}.promote_secondaries 0 -> 1; net.ipv6.conf.{name}.accept_ra 1 -> 0")


context = lab_context
weak = debian_252


def test_vendor_files_are_coreos_own():
    """coreos/coreos-overlay app-emulation/docker/files/ (commits 200c033f and c3469dd7)."""
    assert scenario.VENDOR == {"50-docker.network": "[Match]\nType=bridge\nName=docker*\n\n[Network]\n",
                               "50-docker-veth.network": "[Match]\nDriver=veth\n\n[Network]\n"}
    assert scenario.vendor_text("50-docker.network", 252) == "[Match]\nKind=bridge\nName=docker*\n\n[Network]\n"
    assert scenario.vendor_text("50-docker.network", 250) == "[Match]\nDriver=bridge\nName=docker*\n\n[Network]\n"
    assert scenario.vendor_text("50-docker-veth.network", 252) == scenario.VENDOR["50-docker-veth.network"]


def test_baseline_networkd_takes_the_veths_out_of_docker0(tmp_path):
    ctx = context(tmp_path, NETWORKD_EXAMPLES[0])
    outcome = runner._run_one(scenario, ctx, None)
    assert (outcome.id, outcome.incident) == ("networkd-docker-race", "incident-2")
    if ctx.version != 252:
        assert outcome.baseline.status in (BREAKS, NOT_REPRODUCIBLE), outcome.to_dict()
        return
    assert outcome.baseline.status == BREAKS, outcome.to_dict()
    assert outcome.baseline.evidence == [
        *SETUP, "/etc/systemd/network empty (a naive host)",
        f"start: docker0: configuring ({VENDOR_DIR}/50-docker.network); flags +NO-CARRIER -LOWER_UP; "
        "operstate UP -> DOWN; net.ipv4.conf.docker0.promote_secondaries 0 -> 1; "
        "net.ipv6.conf.docker0.accept_ra 1 -> 0",
        veth_taken("veth1a2b3c4"), veth_taken("veth5d6e7f8"),
        "reload: no change", "restart: no change"]
    assert outcome.profile.status == HOLDS, outcome.to_dict()


@pytest.mark.parametrize("path", NETWORKD_EXAMPLES, ids=[p.name for p in NETWORKD_EXAMPLES])
def test_examples_hold(tmp_path, path):
    ctx = context(tmp_path, path)
    assert scenario.applies(ctx) is None
    result = scenario.profile(ctx)
    assert result.status == HOLDS, result.evidence
    # every example masks both files (default or explicit) and keeps the docker and veth presets
    assert result.evidence[:-1] == [*SETUP, "masked in /etc/systemd/network: 50-docker-veth.network, "
                                    f"50-docker.network; Unmanaged=yes: {ALL}"]
    assert HOLDING.fullmatch(result.evidence[-1]), result.evidence


@pytest.mark.parametrize("data, masked, unmanaged", [
    (weak(unmanaged={"presets": []}), "50-docker-veth.network, 50-docker.network", "none"),
    (weak(networkd={"mask": []}), "none", ALL),
], ids=["masks-alone", "unmanaged-alone"])
def test_masks_alone_and_unmanaged_alone_hold(tmp_path, data, masked, unmanaged):
    """The /etc masks shadow the /usr/lib vendor files of the same name; the
    0-netharden-unmanaged files sort before them: either is enough on its own."""
    result = scenario.profile(context(tmp_path, data))
    assert result.status == HOLDS, result.evidence
    assert result.evidence[:-1] == [*SETUP, f"masked in /etc/systemd/network: {masked}; Unmanaged=yes: {unmanaged}"]
    assert HOLDING.fullmatch(result.evidence[-1]), result.evidence


@pytest.mark.parametrize("data, masked", [
    (weak(unmanaged={"presets": ["docker"]}, networkd={"mask": ["50-docker.network"]}), "50-docker.network"),
    (weak(unmanaged={"presets": ["docker"]}, networkd={"mask": []}), "none"),
], ids=["veth-file-unmasked", "no-masks"])
def test_weakened_profiles_fail(tmp_path, data, masked):
    """50-docker-veth.network stays in force and no veth preset: networkd takes the
    veths out of docker0, which then loses its carrier although it is unmanaged."""
    ctx = context(tmp_path, data)
    assert scenario.applies(ctx) is None
    result = scenario.profile(ctx)
    assert result.status == FAILS, result.evidence
    assert result.evidence[2] == f"masked in /etc/systemd/network: {masked}; Unmanaged=yes: docker0"
    assert "start: docker0: unmanaged; flags +NO-CARRIER -LOWER_UP; operstate UP -> DOWN" in result.evidence
    assert veth_taken("veth1a2b3c4") in result.evidence and veth_taken("veth5d6e7f8") in result.evidence


def test_nothing_to_guard_is_skipped(tmp_path):
    ctx = context(tmp_path, weak(unmanaged={"presets": []}, networkd={"mask": []}))
    outcome = runner._run_one(scenario, ctx, None)
    assert (outcome.baseline.status, outcome.profile.status) == (SKIPPED, SKIPPED)
    assert outcome.profile.evidence == ["the profile neither masks 50-docker.network / 50-docker-veth.network nor "
                                        "marks docker0 or docker's veths Unmanaged"]


def test_ctrl_c_leaves_nothing_behind(tmp_path, monkeypatch):
    ctx = context(tmp_path, NETWORKD_EXAMPLES[0])
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:      # after networkd started, with the vendor tmpfs mounted
            raise KeyboardInterrupt
        return {}

    monkeypatch.setattr(scenario, "lab_snapshot", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scenario.baseline(ctx)
    # the autouse fixture asserts that no namespace, mount, process or directory is left
