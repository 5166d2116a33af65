"""``netharden lab`` on a NetworkManager profile (examples/fcos-k8s.yaml): the lab picks the
stack from the profile and runs the real NetworkManager 1.42; every NetworkManager scenario
breaks with the baseline and holds with the profile without udev. With a real systemd-udevd
and NetworkManager's udev rules the profile still holds; what the baseline does there is
pinned below as measured. Weakened plans fail, so the profile side can fail."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import netharden
from helpers import ROOT
from netharden.lab.cleanup import leftovers
from netharden.lab.nm import require_or_skip
from netharden.lab.scenario import FAILS, HOLDS, Context
from netharden.lab.scenarios import for_stack, nm_bridge_mac_churn, nm_container_race, nm_live_apply, nm_unmanaged_drop

pytestmark = pytest.mark.netns

FCOS_K8S = ROOT / "examples" / "fcos-k8s.yaml"
B, NR, S = ("breaks", "holds"), ("not-reproducible", "holds"), ("skipped", "skipped")
# NetworkManager 1.42.4 on this project's kernel. With udev: 85-nm-unmanaged.rules leaves
# veths not named eth* unmanaged, and 99-default.link (MACAddressPolicy=persistent) sets the
# MAC of every bridge udev sees, so those baselines do not break there.
EXPECTED = {
    False: {"stale-vxlan": B, "container-ipv6": S, "nm-container-race": B, "nm-auto-default-alone": B,
            "nm-bridge-mac-churn": B, "nm-unmanaged-drop": B, "nm-live-apply": B},
    True: {"stale-vxlan": B, "container-ipv6": S, "nm-container-race": NR, "nm-auto-default-alone": NR,
           "nm-bridge-mac-churn": NR, "nm-unmanaged-drop": B, "nm-live-apply": NR},
}


@pytest.fixture(autouse=True)
def nm_can_run():
    yield
    assert leftovers() == [], leftovers()


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netharden", "lab", *args], capture_output=True, text=True,
                          timeout=180, cwd=ROOT)


def test_scenarios_per_stack():
    ids = [m.ID for m in for_stack("networkmanager")]
    assert ids == ["stale-vxlan", "container-ipv6", "nm-container-race", "nm-auto-default-alone",
                   "nm-bridge-mac-churn", "nm-unmanaged-drop", "nm-live-apply"]
    assert not {"runtime-catchall", "networkd-docker-race", "bridge-mac-churn", "foreign-routes"} & set(ids)
    assert not [m.ID for m in for_stack("networkd") if m.ID.startswith("nm-")]


@pytest.mark.parametrize("udev", [False, True], ids=["without-udev", "with-udevd"])
def test_full_lab_on_the_fcos_example(udev):
    require_or_skip(pytest, udev=udev)
    start = time.monotonic()
    proc = lab(str(FCOS_K8S), "--json", *(["--udev"] if udev else []))
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["networkmanager"].startswith("1.") and doc["ok"] is True
    got = {s["id"]: (s["baseline"]["status"], s["profile"]["status"]) for s in doc["scenarios"]}
    assert got == EXPECTED[udev]
    mode = "with systemd-udevd" if udev else "without udev"
    for s in doc["scenarios"]:
        assert s["baseline"]["evidence"] and s["profile"]["evidence"], s["id"]
        if s["id"].startswith("nm-"):
            assert mode in s["baseline"]["evidence"][0] and mode in s["profile"]["evidence"][0], s["id"]
    print(f"\nlab over {FCOS_K8S.name} {mode}: {seconds:.1f} s")  # the <= 30 s figure: benchmarks/lab.py


def test_table_names_networkmanager():
    require_or_skip(pytest)
    proc = lab(str(FCOS_K8S), "-s", "nm-auto-default-alone")
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"netharden lab: fcos-k8s-01 on NetworkManager 1\.\d+", proc.stdout)


def test_udev_is_refused_for_a_networkd_profile():
    proc = lab(str(ROOT / "examples" / "full-host.yaml"), "--udev")
    assert proc.returncode == 2 and "--udev applies to NetworkManager profiles" in proc.stderr


def _context(tmp_path: Path, drop: tuple[str, ...] = (), edit=None) -> Context:
    """The example's Context with files dropped from its Plan or edited (a weakened plan)."""
    profile = netharden.load(FCOS_K8S)
    plan = netharden.plan(profile)
    files = [f for f in plan.files if f.path not in drop]
    if edit is not None:
        files = [edit(f) for f in files]
    plan.files = files
    work = tmp_path / "work"
    work.mkdir(parents=True)
    return Context(profile, plan, work)


def test_without_the_unmanaged_list_the_race_fails(tmp_path):
    require_or_skip(pytest)
    ctx = _context(tmp_path, drop=("/etc/NetworkManager/conf.d/50-netharden-unmanaged.conf",))
    result = nm_container_race.profile(ctx)
    assert result.status == FAILS, result.evidence
    assert any("accept_ra 1 -> 0" in e for e in result.evidence), result.evidence


def test_an_unpinned_bridge_fails(tmp_path):
    require_or_skip(pytest)

    def unpin(f):
        if "netharden-bridge-" in f.path:
            return replace(f, content=re.sub(r"^cloned-mac-address=.*\n", "", f.content, flags=re.M))
        return f

    result = nm_bridge_mac_churn.profile(_context(tmp_path, edit=unpin))
    assert result.status == FAILS, result.evidence


def test_a_bare_reload_in_place_of_the_helper_fails(tmp_path):
    """The helper is what holds: replaced by a plain ``nmcli general reload conf``, cni0 is lost."""
    require_or_skip(pytest)
    helper = "/opt/netharden/bin/netharden-nm-reload-conf"

    def bare(f):
        if f.path == helper:
            return replace(f, content='#!/bin/sh\n[ "${1:-}" = --record ] && exit 0\nexec nmcli general reload conf\n')
        return f

    result = nm_unmanaged_drop.profile(_context(tmp_path, edit=bare))
    assert result.status == FAILS, result.evidence
    good = nm_unmanaged_drop.profile(_context(tmp_path / "good"))
    assert good.status == HOLDS, good.evidence


def test_a_helper_that_does_not_bring_devices_back_fails(tmp_path):
    """What holds nm-live-apply is the helper's re-up of what NetworkManager set down."""
    require_or_skip(pytest)
    helper = "/opt/netharden/bin/netharden-nm-reload-conf"

    def no_reup(f):
        if f.path == helper:
            assert '    ip link set dev "$dev" up || true\n' in f.content
            return replace(f, content=f.content.replace('    ip link set dev "$dev" up || true\n', "    :\n"))
        return f

    result = nm_live_apply.profile(_context(tmp_path, edit=no_reup))
    assert result.status == FAILS, result.evidence
    assert any("after unmanaged, DOWN" in e for e in result.evidence), result.evidence
