"""Lab scenario stale-vxlan (incident 4) on the real kernel, for every example profile,
in report mode, with weakened profiles and a broken collector (the lab must be able to
fail), and cleanup after success, errors and Ctrl-C.

The scenario does not start networkd: the outcome depends on the kernel, not on the
systemd version. A leftover with Swarm's device name makes Swarm's create fail with
EEXIST ("File exists") on every kernel (NLM_F_EXCL), so the baseline BREAKS on CI's
Debian 12 (systemd 252) as everywhere.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import NETWORKD_EXAMPLES, ROOT, require, lab_context
from netharden.lab import runner
from netharden.lab.cleanup import leftovers
from netharden.lab.scenario import BREAKS, ERROR, FAILS, HOLDS, SKIPPED, Context
from netharden.lab.scenarios import stale_vxlan as scenario

pytestmark = pytest.mark.netns

INCIDENT_4 = ROOT / "examples" / "incident-4-stale-vxlan.yaml"
# example -> (baseline, profile) on systemd 252; every other example has vxlan_gc off: skipped
EXPECTED_252 = {"full-host.yaml": (BREAKS, HOLDS), "incident-4-stale-vxlan.yaml": (BREAKS, HOLDS)}


@pytest.fixture(autouse=True)
def root_and_clean():
    missing = [tool for tool in ("ip", "sh") if shutil.which(tool) is None]
    require("needs root (network namespaces)" if os.geteuid() != 0 else
            f"missing {', '.join(missing)}" if missing else None)
    yield
    assert leftovers(ignore_other_live_owners=True) == []


context = lab_context


def example(path: Path, **vxlan_gc) -> dict:
    data = yaml.safe_load(path.read_text())
    if vxlan_gc:
        data["vxlan_gc"] = {**data.get("vxlan_gc", {}), **vxlan_gc}
    return data


def run(ctx: Context):
    return runner._run_one(scenario, ctx, None)


@pytest.mark.parametrize("path", NETWORKD_EXAMPLES, ids=[p.name for p in NETWORKD_EXAMPLES])
def test_examples(tmp_path, path):
    outcome = run(context(tmp_path, example(path)))
    assert (outcome.id, outcome.incident) == ("stale-vxlan", "incident-4")
    expected = EXPECTED_252.get(path.name, (SKIPPED, SKIPPED))
    assert (outcome.baseline.status, outcome.profile.status) == expected, outcome.to_dict()
    if expected[0] == SKIPPED:
        assert outcome.profile.evidence == ["vxlan_gc.mode is off: no stale VXLAN collector rendered"]
        return
    base = "\n".join(outcome.baseline.evidence)
    assert ("no collector: Swarm's create vx-001001-q1w2e (netlink, VNI 4097, dstport 4789): File exists "
            "(errno 17; Swarm logs \"error creating vxlan interface: file exists\")") in base
    # which conflict gives EEXIST: the name always does (NLM_F_EXCL); a VNI + dstport clash under another
    # name is whatever this kernel's vxlan driver says (EEXIST with an extack message on 6.18)
    assert "same name vx-001001-q1w2e, another VNI 61441: File exists" in base
    assert re.search(r"another name vx-001001-zzzzz, same VNI 4097 \+ dstport 4789: "
                     r"(File exists \(A VXLAN device with the specified VNI already exists\)|created)$", base), base
    prof = outcome.profile.evidence
    assert prof[0].startswith("collector: sh ") and "--mode remove --pattern 'vx-*'" in prof[0]
    assert "run 1: 2 pending, 0 removed (metric); nothing changed" in prof
    assert "run 2: removed vx-001001-q1w2e, vx-001002-r3t4y (removed=2, metric)" in prof
    assert ("kept unchanged: vx-001003-u5i6o (UP), vx-001004-p7a8s (port of ov-001004-p7a8s), vx-veth0 (veth)"
            in prof)
    assert prof[-1] == ("then Swarm's create vx-001001-q1w2e (netlink, VNI 4097, dstport 4789): ok, moved into "
                        "the overlay namespace, port of br0, UP")
    assert outcome.seconds < 8


def test_runs_exactly_what_the_unit_runs(tmp_path):
    ctx = context(tmp_path, example(INCIDENT_4, pattern="vx-[0-9]*"))
    gc = scenario.Collector(ctx)
    assert gc.script == ctx.helper("netharden-vxlan-gc") and gc.script.is_file()
    opts = dict(zip(gc.argv[2::2], gc.argv[3::2]))
    assert gc.argv[:2] == ["sh", str(gc.script)]
    assert opts["--mode"] == "remove" and opts["--pattern"] == "vx-[0-9]*"
    assert Path(opts["--state-dir"]).is_relative_to(tmp_path)           # never the host's /run/netharden
    assert Path(opts["--textfile-dir"]).is_relative_to(tmp_path)
    assert run(ctx).profile.status == HOLDS


def test_report_mode_holds_for_what_it_promises(tmp_path):
    outcome = run(context(tmp_path, example(INCIDENT_4, mode="report")))
    assert (outcome.baseline.status, outcome.profile.status) == (BREAKS, HOLDS), outcome.to_dict()
    prof = outcome.profile.evidence
    assert ("run 2: reported stale vx-001001-q1w2e, vx-001002-r3t4y (netharden_stale_vxlan_devices=2, metric); "
            "nothing removed or changed") in prof
    assert prof[-1] == ("still: Swarm's create vx-001001-q1w2e (netlink, VNI 4097, dstport 4789): File exists: "
                        "mode report only reports (what it promises); vxlan_gc.mode: remove would remove the "
                        "reported devices")


@pytest.mark.parametrize("mode", ["remove", "report"])
def test_a_pattern_that_misses_swarms_devices_fails(tmp_path, mode):
    outcome = run(context(tmp_path, example(INCIDENT_4, mode=mode, pattern="vxlan*")))
    assert (outcome.baseline.status, outcome.profile.status) == (BREAKS, FAILS), outcome.to_dict()
    prof = outcome.profile.evidence
    assert "pattern 'vxlan*' does not match Swarm's device names (vx-001001-q1w2e, vx-001002-r3t4y)" in prof
    assert prof[-1] == "still: Swarm's create vx-001001-q1w2e (netlink, VNI 4097, dstport 4789): File exists"


def test_a_collector_that_removes_devices_in_use_fails(tmp_path):
    ctx = context(tmp_path, example(INCIDENT_4))
    script = ctx.helper("netharden-vxlan-gc")
    text = script.read_text()
    broken = text.replace('if [ "$up" = yes ] || [ "$master" = yes ]; then', 'if false; then')
    broken = broken.replace('[ "$up" = yes ] || [ "$master" = yes ]; then\n\t\tlog 6', 'false; then\n\t\tlog 6')
    assert broken != text
    script.write_text(broken)
    outcome = run(ctx)
    assert outcome.profile.status == FAILS, outcome.to_dict()
    assert "expected to remove exactly vx-001001-q1w2e, vx-001002-r3t4y" in outcome.profile.evidence
    assert ("devices in use changed or removed: vx-001003-u5i6o, vx-001004-p7a8s"
            in outcome.profile.evidence)


def test_cleanup_after_an_error_and_ctrl_c(tmp_path, monkeypatch):
    ctx = context(tmp_path, example(INCIDENT_4))

    def broken(*_):
        raise RuntimeError("boom")
    monkeypatch.setattr(scenario, "_swarm", broken)
    outcome = run(ctx)
    assert outcome.baseline.status == BREAKS and outcome.profile.status == ERROR
    assert outcome.profile.evidence[0].startswith("RuntimeError: boom")
    assert leftovers(ignore_other_live_owners=True) == []

    def interrupted(*_):
        raise KeyboardInterrupt
    monkeypatch.setattr(scenario, "_swarm", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scenario.profile(ctx)
    assert leftovers(ignore_other_live_owners=True) == []
