"""bridge-mac-follows-ports and stale-vxlan on real kernel devices: a network namespace
plus a scratch root (the doctor_host fixture), the real CLI inside it with --live.

Each check gets an unhealthy host (finding with subject and message) and healthy
variants (no finding), the kernel facts the bridge rule rests on, the real dockerd's
docker0 (created with a set MAC: never reported), and the --profile verdicts
(fixed_by) through the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from doctor_helpers import findings
from helpers import ROOT, minimal, require

pytestmark = pytest.mark.netns

BRIDGE = "bridge-mac-follows-ports"
VXLAN = "stale-vxlan"


def assign_type(host, name: str) -> int:
    # ip netns exec mounts the namespace's own /sys
    return int(host.run("cat", f"/sys/class/net/{name}/addr_assign_type").stdout)


def mac(host, name: str) -> str:
    return json.loads(host.ip("-j", "link", "show", "dev", name).stdout)[0]["address"]


def veth_port(host, bridge: str, name: str, address: str | None = None) -> None:
    extra = ("address", address) if address else ()
    host.ip("link", "add", name, *extra, "type", "veth", "peer", "name", f"{name}p")
    host.ip("link", "set", name, "master", bridge)


def profile(tmp_path, **keys) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(minimal(**keys), sort_keys=False))
    return str(path)


# ------------------------------------------------------------------ bridge-mac-follows-ports

def test_kernel_facts_the_bridge_rule_rests_on(doctor_host):
    host = doctor_host
    host.ip("link", "add", "brfresh", "type", "bridge")
    assert assign_type(host, "brfresh") == 1                       # random
    veth_port(host, "brfresh", "vf0", "02:00:00:00:00:20")
    assert assign_type(host, "brfresh") == 1 and mac(host, "brfresh") == "02:00:00:00:00:20"  # follows the port
    veth_port(host, "brfresh", "vf1", "02:00:00:00:00:10")
    assert mac(host, "brfresh") == "02:00:00:00:00:10"              # ... and the next smaller one
    host.ip("link", "set", "brfresh", "address", "02:00:00:00:00:99")
    assert assign_type(host, "brfresh") == 3                        # set
    veth_port(host, "brfresh", "vf2", "02:00:00:00:00:01")
    assert mac(host, "brfresh") == "02:00:00:00:00:99"              # kept
    host.ip("link", "add", "brcreated", "address", "02:00:00:00:00:98", "type", "bridge")
    assert assign_type(host, "brcreated") == 3


def test_unpinned_bridge_with_ports_is_reported(doctor_host):
    host = doctor_host
    host.ip("link", "add", "brhand", "type", "bridge")
    veth_port(host, "brhand", "vh1", "02:00:00:00:01:02")
    veth_port(host, "brhand", "vh0", "02:00:00:00:01:01")
    host.ip("link", "add", "brempty", "type", "bridge")          # no ports yet: not reported
    rc, report = host.doctor("--only", BRIDGE)
    found = findings(report, BRIDGE)
    assert rc == 1 and [f["subject"] for f in found] == ["brhand"], found
    f = found[0]
    assert f["severity"] == "warning" and f["incident"] == "incident-3" and "bridges[].mac" in f["hint"]
    assert "02:00:00:00:01:01" in f["message"] and "vh0, vh1" in f["message"]
    assert "random (NET_ADDR_RANDOM)" in f["message"] and "gateway MAC" in f["message"]


def test_pinned_bridges_are_not_reported(doctor_host):
    host = doctor_host
    host.ip("link", "add", "brpin", "address", "02:00:00:00:02:01", "type", "bridge")   # networkd's way
    veth_port(host, "brpin", "vp0", "02:00:00:00:00:01")
    host.ip("link", "add", "brset", "type", "bridge")
    veth_port(host, "brset", "vs0")
    host.ip("link", "set", "brset", "address", "02:00:00:00:02:02")                      # set afterwards
    rc, report = host.doctor("--only", BRIDGE)
    assert rc == 0 and findings(report, BRIDGE) == [], report
    run = next(c for c in report["checks"] if c["id"] == BRIDGE)
    assert run["skipped"] is None and run["error"] is None


def test_bridge_verdicts_with_a_profile(doctor_host, tmp_path):
    host = doctor_host
    for name in ("dockerbrci", "brother"):
        host.ip("link", "add", name, "type", "bridge")
        veth_port(host, name, f"v{name[-2:]}")
    path = profile(tmp_path, bridges=[{"name": "dockerbrci", "addresses": ["10.30.0.1/24"], "mac": "stable"}])
    rc, report = host.doctor("--only", BRIDGE, "--profile", path)
    verdicts = {f["subject"]: (f["fixed_by_profile"], f["profile_note"]) for f in findings(report, BRIDGE)}
    assert set(verdicts) == {"dockerbrci", "brother"}
    fixed, note = verdicts["dockerbrci"]
    assert fixed is True and "MACAddress=" in note and "ip link del dockerbrci" in note
    assert verdicts["brother"][0] is False and "no bridge 'brother'" in verdicts["brother"][1]


def test_the_real_dockerd_sets_its_bridge_mac(tmp_path):
    """docker0 as the real dockerd creates it is "set" (libnetwork sets a random MAC), so it
    is never reported, even with a port; a hand-made bridge next to it is."""
    import test_docker_dockerd as dd

    reason = dd.unavailable()
    require(None if reason is None else f"the real dockerd is unavailable: {reason}")
    import shutil
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(prefix="nhd-", dir="/tmp"))
    root = tmp_path / "root"
    root.mkdir()
    try:
        config = tmp / "daemon.json"
        config.write_text("{}\n")
        with dd.Namespaces(tmp, "exec " + dd.q(*dd.main_argv(tmp, config)) + "\n") as ns:
            outcome = ns.wait_for("API listen on")
            assert outcome.started, outcome.log[-3000:]
            pid = ns.child()
            script = ("set -e; mount -t sysfs nhd-sys /sys; "
                      "ip link add vd0 type veth peer name vd0p; ip link set vd0 master docker0; "
                      "ip link add brhand type bridge; ip link add vh0 type veth peer name vh0p; "
                      "ip link set vh0 master brhand; cat /sys/class/net/docker0/addr_assign_type; "
                      f"cd {ROOT}; exec {sys.executable} -m netharden doctor --root {root} --live "
                      f"--only {BRIDGE} --json >{tmp}/report.json")
            done = subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", "sh", "-c", script],
                                  capture_output=True, text=True, timeout=60, env={"PATH": dd.PATH})
            assert done.returncode in (0, 1), done.stderr
            assert done.stdout.strip() == "3", done.stdout
            report = json.loads((tmp / "report.json").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert [f["subject"] for f in findings(report, BRIDGE)] == ["brhand"]


# ------------------------------------------------------------------ stale-vxlan

def vxlan(host, name: str, vni: int) -> None:
    host.ip("link", "add", name, "type", "vxlan", "id", str(vni), "dstport", "4789")


def test_stale_vxlan_is_reported(doctor_host):
    host = doctor_host
    vxlan(host, "vx-001001-abcde", 1001)
    rc, report = host.doctor("--only", VXLAN)
    found = findings(report, VXLAN)
    assert rc == 1 and [f["subject"] for f in found] == ["vx-001001-abcde"], found
    f = found[0]
    assert f["severity"] == "warning" and f["incident"] == "incident-4" and "vxlan_gc.mode: remove" in f["hint"]
    assert "administratively down" in f["message"] and "no master" in f["message"] and "file exists" in f["message"]


def test_vxlan_in_use_or_not_dockers_is_not_reported(doctor_host):
    host = doctor_host
    vxlan(host, "vx-000002-up", 2)
    host.ip("link", "set", "vx-000002-up", "up")                     # UP without carrier: in use
    vxlan(host, "vx-000003-port", 3)
    host.ip("link", "add", "br0", "type", "bridge")
    host.ip("link", "set", "vx-000003-port", "master", "br0")       # down, but a port of the overlay bridge
    vxlan(host, "flannel.1", 4)                                      # down, no master, not vx-*
    host.ip("link", "add", "vx-veth", "type", "veth", "peer", "name", "vx-vethp")  # vx-*, not vxlan
    rc, report = host.doctor("--only", VXLAN)
    assert rc == 0 and findings(report, VXLAN) == [], report
    assert next(c for c in report["checks"] if c["id"] == VXLAN)["error"] is None


@pytest.mark.parametrize("gc, fixed, note", [
    ({"mode": "remove", "pattern": "vx-*"}, True, "removes it"),
    ({"mode": "report"}, False, "reported, not removed"),
    ({"mode": "remove", "pattern": "vxlan-*"}, False, "does not match"),
    (None, False, "vxlan_gc is off"),
], ids=["remove", "report", "other-pattern", "off"])
def test_vxlan_verdicts_with_a_profile(doctor_host, tmp_path, gc, fixed, note):
    host = doctor_host
    vxlan(host, "vx-000005-dead", 5)
    path = profile(tmp_path, **({"vxlan_gc": gc} if gc else {}))
    rc, report = host.doctor("--only", VXLAN, "--profile", path)
    (f,) = findings(report, VXLAN)
    assert f["fixed_by_profile"] is fixed and note in f["profile_note"], f
    assert report["profile"] == "host-a"
