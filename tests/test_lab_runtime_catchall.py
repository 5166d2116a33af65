"""Lab scenario runtime-catchall (incident 1) on the real systemd-networkd: the
baseline measured once (it does not depend on the profile), the profile side for every
example, weakened profiles for which it must fail, the decision for an empty
quarantine, and cleanup after success and Ctrl-C.

Outcomes are pinned for systemd 252 (what CI has): the stray claims docker0 and the
veths (configuring, accept_ra 1 -> 0, promote_secondaries 0 -> 1 on each)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import NETWORKD_EXAMPLES, debian_252, lab_context
from netharden.lab import runner
from netharden.lab.scenario import BREAKS, FAILS, HOLDS, NOT_REPRODUCIBLE, SKIPPED
from netharden.lab.scenarios import runtime_catchall as scenario

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("lab_harness")]

STRAY = "/run/systemd/network/00-.network"
# the number of sysctls per interface depends on the kernel (285 for these three on 6.x)
HOLDING = re.compile(r"docker0, veth1a2b3c4, veth5d6e7f8: unmanaged; MAC, MTU, flags, master, addresses and \d+ "
                     r"sysctls as docker set them")
MOVED = (f"moved {STRAY} to /run/netharden/quarantine/00-.network ([Match] Name=* matches every interface)")
UPLINK = "/etc/systemd/network/20-netharden-uplink-lan.network"
DYNAMIC = " (DHCP/RA wait for a server or router the lab does not run)"
KIND = ("the lab's copy of 20-netharden-uplink-lan.network has Kind=!* (no virtual device passes it) replaced by "
        "MACAddress=00:00:5e:00:53:0a")
# example -> evidence lines about the uplink stand-in (systemd 252)
UPLINK_252 = {
    "full-host.yaml": [f"uplink lan: veth ens0 (00:00:5e:00:53:0a) stands in for the NIC; {KIND}",
                       f"ens0: configuring ({UPLINK}){DYNAMIC}; 192.0.2.10/24 on it"],
    "incident-1-runtime-catchall.yaml": [f"uplink lan: veth ens0 (00:00:5e:00:53:0a) stands in for the NIC; {KIND}",
                                         f"ens0: configuring ({UPLINK}){DYNAMIC}"],
    "incident-2-networkd-docker-race.yaml": [
        "uplink lan: veth eth0 (00:00:5e:00:53:0a) stands in for the NIC; the lab's copy of "
        "20-netharden-uplink-lan.network has Driver=!veth bridge vxlan ... (no virtual device passes it) replaced by "
        "MACAddress=00:00:5e:00:53:0a",
        "it queued 'systemctl try-restart --no-block systemd-networkd.service' (target systemd 241 < 244): "
        "the lab restarted networkd as systemd would",
        f"eth0: configuring ({UPLINK}){DYNAMIC}"],
    "incident-3-bridge-mac.yaml": [
        "uplink lan: veth nhuplink0 (52:54:00:12:34:56) stands in for the NIC; the lab's copy of "
        "20-netharden-uplink-lan.network has Kind=!* dropped (its MACAddress= picks the NIC)",
        f"nhuplink0: configured ({UPLINK}); 198.51.100.20/24 on it"],
    # incident-4-stale-vxlan.yaml: on the netplan stack since issue 16 (see tests/test_lab.py); its
    # evidence was "uplink lan: its match by driver virtio_net cannot be emulated with a veth: the uplink is
    # not judged"
    "incident-5-container-ipv6.yaml": ["uplink lan: veth eth0 (00:00:5e:00:53:0a) stands in for the NIC",
                                       f"eth0: configured ({UPLINK}); 192.0.2.40/24 2001:db8:40::40/64 on it"],
}
UPLINK_STATIC = {"name": "lan", "match": {"name": "ens*"}, "addresses": ["192.0.2.10/24"]}


context = lab_context
weak = debian_252


def test_baseline_the_stray_takes_dockers_interfaces(tmp_path):
    ctx = context(tmp_path, NETWORKD_EXAMPLES[0])
    outcome = runner._run_one(scenario, ctx, None)
    assert (outcome.id, outcome.incident) == ("runtime-catchall", "incident-1")
    if ctx.version != 252:
        assert outcome.baseline.status in (BREAKS, NOT_REPRODUCIBLE), outcome.to_dict()
        return
    assert outcome.baseline.status == BREAKS, outcome.to_dict()
    assert outcome.baseline.evidence == [
        f"{STRAY} (Name=*, DHCP=yes) present, /etc/systemd/network empty; docker0 and 2 veths appear",
        *(f"{name}: configuring ({STRAY}); net.ipv4.conf.{name}.promote_secondaries 0 -> 1; "
          f"net.ipv6.conf.{name}.accept_ra 1 -> 0" for name in ("docker0", "veth1a2b3c4", "veth5d6e7f8"))]
    assert outcome.profile.status == HOLDS, outcome.to_dict()


@pytest.mark.parametrize("path", NETWORKD_EXAMPLES, ids=[p.name for p in NETWORKD_EXAMPLES])
def test_examples_hold(tmp_path, path):
    ctx = context(tmp_path, path)
    assert scenario.applies(ctx) is None
    result = scenario.profile(ctx)
    assert result.status == HOLDS, result.evidence
    evidence = result.evidence
    assert f"{STRAY}: moved to /run/netharden/quarantine" in evidence
    assert any(line.startswith("netharden-quarantine (exit 0): ") and MOVED in line for line in evidence), evidence
    assert any(HOLDING.fullmatch(line) for line in evidence), evidence
    for line in UPLINK_252[path.name]:
        assert line in evidence, evidence
    if "uplink is not judged" not in evidence[1]:
        # the stray was read: it held the uplink until the quarantine
        assert any(line.startswith("before the quarantine: ") and f"({STRAY})" in line for line in evidence), evidence


def test_quarantine_that_misses_the_stray_fails(tmp_path):
    """Weakened: the quarantine watches /etc only and the veth preset is off, so the
    stray keeps the veths and the uplink: the lab must be able to fail."""
    ctx = context(tmp_path, weak(uplinks=[UPLINK_STATIC], unmanaged={"presets": ["docker"]},
                                 networkd={"quarantine": ["/etc/systemd/network/*.network"]}))
    assert scenario.applies(ctx) is None
    result = scenario.profile(ctx)
    assert result.status == FAILS, result.evidence
    assert f"{STRAY}: still there" in result.evidence
    for veth in ("veth1a2b3c4", "veth5d6e7f8"):
        assert (f"{veth}: configuring ({STRAY}); net.ipv4.conf.{veth}.promote_secondaries 0 -> 1; "
                f"net.ipv6.conf.{veth}.accept_ra 1 -> 0") in result.evidence
    assert not any(line.startswith("docker0") for line in result.evidence)     # the docker preset kept it
    assert f"ens0: configuring ({STRAY}), wanted configured with {UPLINK}" in result.evidence


def test_empty_quarantine_with_unmanaged_files_applies_and_fails_on_the_uplink(tmp_path):
    """The decision documented in the scenario: the unmanaged files protect docker's
    interfaces, but nothing moves the stray, which keeps the uplink."""
    ctx = context(tmp_path, weak(uplinks=[UPLINK_STATIC], networkd={"quarantine": []}))
    assert scenario.applies(ctx) is None
    result = scenario.profile(ctx)
    assert result.status == FAILS, result.evidence
    assert "networkd.quarantine is empty: no quarantine helper rendered" in result.evidence
    assert any(HOLDING.fullmatch(line) for line in result.evidence), result.evidence
    assert f"ens0: configuring ({STRAY}), wanted configured with {UPLINK}" in result.evidence


def test_quarantine_alone_holds(tmp_path):
    """No unmanaged files at all: the quarantine alone keeps docker's interfaces off."""
    ctx = context(tmp_path, weak(unmanaged={"presets": []}))
    result = scenario.profile(ctx)
    assert result.status == HOLDS, result.evidence
    assert "no uplink in the profile: only the container interfaces are judged" in result.evidence
    assert any(HOLDING.fullmatch(line) for line in result.evidence), result.evidence


def test_nothing_to_guard_is_skipped(tmp_path):
    ctx = context(tmp_path, weak(unmanaged={"presets": []}, networkd={"quarantine": []}))
    outcome = runner._run_one(scenario, ctx, None)
    reason = "networkd.quarantine and unmanaged are empty: nothing in the profile guards against a runtime catch-all"
    assert (outcome.baseline.status, outcome.profile.status) == (SKIPPED, SKIPPED)
    assert outcome.profile.evidence == [reason]


def test_stand_in_names_and_file(tmp_path):
    ctx = context(tmp_path, weak(uplinks=[{"name": "any", "match": {"name": ["e[t]h?*", "*"]}, "dhcp": "ipv4"}],
                                 unmanaged={"names": ["eth00"]}))
    net = tmp_path / "net"
    net.mkdir()
    (net / "20-netharden-uplink-any.network").write_text((ctx.network_dir() / "20-netharden-uplink-any.network")
                                                         .read_text())
    up = scenario.stand_in(ctx, net)
    assert (up.name, up.mac, up.dynamic) == ("eth01", "00:00:5e:00:53:0a", True)   # eth00 is unmanaged
    text = (net / "20-netharden-uplink-any.network").read_text()
    assert "Kind=!*" not in text and "[Match]\nMACAddress=00:00:5e:00:53:0a\nName=e[t]h?* *\n" in text
    assert "Type=!loopback" in text                                             # other exclusions stay


def test_exclusions_are_read_by_the_ini_reader():
    """The rewrite finds the lines through networkd_config.parse_ini_located and keeps every other byte."""
    text = "[Match]\r\nName=en*\r\nDriver = !veth \\\r\n  bridge\r\n\r\n[Network]\r\nDHCP=yes\r\nKind=!*\r\n"
    removed = scenario._exclusions(text)
    assert [(a.key, a.value) for a in removed] == [("Driver", "!veth    bridge")]     # Kind=!* is not in [Match]
    at = removed[0].header
    edits = [(a.start, a.end, "") for a in removed] + [(at, at, "MACAddress=x\r\n")]
    assert scenario._edited(text, edits) == ("[Match]\r\nMACAddress=x\r\nName=en*\r\n\r\n"
                                             "[Network]\r\nDHCP=yes\r\nKind=!*\r\n")


def test_ctrl_c_leaves_nothing_behind(tmp_path, monkeypatch):
    ctx = context(tmp_path, NETWORKD_EXAMPLES[0])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scenario, "lab_snapshot", interrupted)   # inside the lab and the namespaces
    with pytest.raises(KeyboardInterrupt):
        scenario.profile(ctx)
    with pytest.raises(KeyboardInterrupt):
        scenario.baseline(ctx)
    # the autouse fixture asserts that no namespace, mount, process or directory is left


def test_every_example_has_its_expected_uplink_evidence():
    assert sorted(UPLINK_252) == sorted(p.name for p in NETWORKD_EXAMPLES)
