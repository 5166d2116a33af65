"""`netharden doctor` as a command: the check registry (ids, titles, severities, incidents,
hints), exit codes, --only/--fail-on/--json/--list, usage errors, --profile, the text report,
and the contract that the tree netharden itself renders for every example is clean.

The per-check findings on unhealthy hosts are in tests/test_doctor_networkd_checks.py,
tests/test_doctor_live_checks.py and tests/test_doctor_file_checks.py."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import netharden
from helpers import EXAMPLES, PROFILES, ROOT, minimal, write_profile
from netharden.doctor import Host, run
from netharden.doctor.checks import all_checks
from netharden.plan_model import GUARDS

CATCHALL = "[Match]\nName=*\n\n[Network]\nDHCP=yes\n"
NM_CHECKS = {"nm-manages-container-interfaces", "nm-bridge-mac-not-pinned", "nm-keyfile-insecure-mode"}


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netharden", "doctor", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def _tree(profile, out):
    netharden.emit(netharden.plan(netharden.load(profile)), "tree", out)
    return out


def _unhealthy_root(tmp_path):
    """An image with a stray runtime catch-all and an unparsable daemon.json: two file findings."""
    root = tmp_path / "image"
    (root / "run/systemd/network").mkdir(parents=True)
    (root / "run/systemd/network/00-.network").write_text(CATCHALL)
    (root / "etc/docker").mkdir(parents=True)
    (root / "etc/docker/daemon.json").write_text('{"bip": "10.1.0.1/24",\n  "hosts": [}\n')
    return root


def test_every_check_has_the_rule_shape():
    ids = []
    for check in all_checks():
        ids.append(check.ID)
        assert check.ID and check.ID == check.ID.lower() and " " not in check.ID
        assert check.TITLE and check.HINT and check.__doc__, check.ID
        assert check.SEVERITY in ("error", "warning", "info"), check.ID
        assert check.INCIDENT in GUARDS, check.ID
        assert check.NEEDS in ("files", "live"), check.ID
        assert callable(check.check)
        assert callable(getattr(check, "applies", callable))
    assert ids == ["catchall-network", "vendor-docker-network", "bridge-mac-follows-ports", "stale-vxlan",
                   "veth-mac-policy", "foreign-routes", "docker-daemon", "runtime-not-held",
                   "nm-manages-container-interfaces", "nm-bridge-mac-not-pinned", "nm-keyfile-insecure-mode",
                   "uplink-shadowed", "netplan-conflict", "stack-not-running", "nic-owned-by-other-manager"]


def test_list_names_every_check():
    done = doctor("--list")
    assert done.returncode == 0, done.stderr
    for check in all_checks():
        assert check.ID in done.stdout and check.TITLE in done.stdout


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_the_tree_netharden_renders_is_clean(profile, tmp_path):
    """The contract: whatever netharden renders passes its own doctor (file checks)."""
    tree = _tree(profile, tmp_path / "tree")
    done = doctor("--root", str(tree), "--json", "--fail-on", "info")
    report = json.loads(done.stdout)
    assert [f for c in report["checks"] for f in c["findings"]] == []
    assert [c["id"] for c in report["checks"] if c["error"]] == []
    assert done.returncode == 0, done.stdout + done.stderr
    # live checks are skipped with --root, and say so; so are the checks of the other stack
    from netharden.doctor.nm_config import is_nm_host

    nm = is_nm_host(Host(tree, live=False))
    other_stack = {c.ID for c in all_checks() if hasattr(c, "applies") and c.applies(Host(tree, live=False))}
    no_netplan = set() if (tree / "etc/netplan/60-netharden.yaml").is_file() else {"netplan-conflict"}
    # stack-not-running judges a system root (a tree has no systemd of its own to judge)
    networkd_checks = {"catchall-network", "vendor-docker-network", "foreign-routes", "uplink-shadowed",
                       "nic-owned-by-other-manager"}
    assert other_stack == (networkd_checks if nm else NM_CHECKS) | {"stack-not-running"} | no_netplan
    assert {c["id"] for c in report["checks"] if c["skipped"]} == {
        c.ID for c in all_checks() if c.NEEDS == "live"} | other_stack


def test_findings_exit_1_and_fail_on(tmp_path):
    root = _unhealthy_root(tmp_path)
    done = doctor("--root", str(root))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "catchall-network" in done.stdout and "docker-daemon" in done.stdout
    assert f"{root}/run/systemd/network/00-.network" in done.stdout
    assert "fix: " in done.stdout
    # the summary line, plain (not a terminal: no escape codes)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("15 checks: ") and "2 errors" in last
    assert "; not applicable: nm-manages-container-interfaces, nm-bridge-mac-not-pinned, nm-keyfile-insecure-mode " \
           "(no NetworkManager: no /usr/sbin/NetworkManager" in last
    assert "\033[" not in done.stdout
    assert doctor("--root", str(root), "--fail-on", "never").returncode == 0
    assert doctor("--root", str(root), "--fail-on", "error").returncode == 1


def test_only_runs_the_named_checks(tmp_path):
    root = _unhealthy_root(tmp_path)
    done = doctor("--root", str(root), "--only", "docker-daemon", "--json")
    report = json.loads(done.stdout)
    assert [c["id"] for c in report["checks"]] == ["docker-daemon"]
    assert done.returncode == 1
    (finding,) = report["checks"][0]["findings"]
    assert finding["subject"].endswith("/etc/docker/daemon.json") and finding["severity"] == "error"
    assert {"check", "severity", "incident", "subject", "message", "hint"} <= set(finding)


def test_json_report_shape(tmp_path):
    done = doctor("--root", str(_unhealthy_root(tmp_path)), "--json")
    report = json.loads(done.stdout)
    assert report["apiVersion"] == "netharden/v1" and report["kind"] == "DoctorReport"
    assert report["live"] is False and report["summary"]["error"] == 2
    assert len(report["checks"]) == 15


@pytest.mark.parametrize("args, message", [
    (["--only", "catchall"], "unknown check 'catchall'; did you mean 'catchall-network'?"),
    (["--live"], "--live goes with --root"),
    (["--root", "/nonexistent/netharden"], "not a directory"),
    (["--fail-on", "fatal"], "invalid choice: 'fatal'"),
])
def test_usage_errors_exit_2(args, message):
    done = doctor(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_profile_is_reported_like_the_cli(tmp_path):
    bad = ROOT / "tests" / "bad" / "23-enum-dhcp.yaml"
    done = doctor("--root", str(tmp_path), "--profile", str(bad))
    assert done.returncode == 2
    assert f"{bad}:11:11: error: " in done.stderr and "Traceback" not in done.stderr


def test_profile_says_what_it_fixes(tmp_path):
    """A stray /run catch-all is fixed by any profile (its unmanaged files sort first); the
    broken daemon.json is replaced by the profile's own only when the profile has docker."""
    root = _unhealthy_root(tmp_path)
    with_docker = ROOT / "examples" / "full-host.yaml"
    report = json.loads(doctor("--root", str(root), "--profile", str(with_docker), "--json").stdout)
    verdicts = {f["check"]: f["fixed_by_profile"] for c in report["checks"] for f in c["findings"]}
    assert verdicts == {"catchall-network": True, "docker-daemon": True}
    text = doctor("--root", str(root), "--profile", str(with_docker)).stdout
    assert "profile build-01: fixes it" in text or "fixes it" in text
    assert "fixes 2 of 2" in text.strip().splitlines()[-1]

    without_docker = write_profile(tmp_path / "nodocker.yaml", minimal())
    report = json.loads(doctor("--root", str(root), "--profile", str(without_docker), "--json").stdout)
    verdicts = {f["check"]: f["fixed_by_profile"] for c in report["checks"] for f in c["findings"]}
    assert verdicts["docker-daemon"] is False


def test_a_check_that_breaks_does_not_hide_the_others(tmp_path, monkeypatch):
    from netharden.doctor.checks import stale_vxlan

    def broken(host):
        raise RuntimeError("boom")

    monkeypatch.setattr(stale_vxlan, "check", broken)
    report = run(Host(tmp_path, live=True), only=["stale-vxlan", "docker-daemon"])
    errors = {c.id: c.error for c in report.checks}
    assert errors["stale-vxlan"] == "RuntimeError: boom" and errors["docker-daemon"] is None
    assert report.exit_code("never") == 1


def test_doctor_is_read_only(tmp_path):
    """Nothing under the root changes: same names, bytes and mtimes after a run."""
    root = _unhealthy_root(tmp_path)
    for example in EXAMPLES[:1]:
        _tree(example, tmp_path / "tree")

    def snapshot(base):
        return {str(p.relative_to(base)): (p.lstat().st_mtime_ns, p.read_bytes() if p.is_file() and not p.is_symlink()
                                           else None) for p in sorted(base.rglob("*"))}

    before = snapshot(tmp_path)
    doctor("--root", str(root), "--profile", str(EXAMPLES[0]))
    doctor("--root", str(tmp_path / "tree"))
    assert snapshot(tmp_path) == before
