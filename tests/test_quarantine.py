"""The quarantine renderer (incident 1): rendered text, the version gate, shellcheck and
systemd-analyze of what it writes, and the REAL rendered script run with dash and bash
on scratch directories (through the test-only NETHARDEN_QUARANTINE_ROOT prefix).

What the script's verdicts mean to the real systemd-networkd is checked in
tests/test_quarantine_netns.py."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import netharden
from helpers import minimal, need, plan_files
from netharden.plan_model import PHASE_SYSTEMD, PHASE_UNITS
from netharden.renderers.quarantine import watched_dirs

HELPER = "/usr/local/libexec/netharden/netharden-quarantine"
SERVICE = "/etc/systemd/system/netharden-quarantine.service"
PATH_UNIT = "/etc/systemd/system/netharden-quarantine.path"
DEFAULT_GLOBS = ["/run/systemd/network/*.network", "/etc/systemd/network/00-*.network"]


def plan_of(systemd: int = 252, globs=None, os_name: str = "debian"):
    extra = {"platform": {"os": os_name, "systemd": systemd}}
    if globs is not None:
        extra["networkd"] = {"quarantine": globs}
    return netharden.plan(netharden.load(minimal(**extra)))


# --------------------------------------------------------------------------- plan


def test_plan_entries():
    plan = plan_of(globs=DEFAULT_GLOBS)
    by_path = {f.path: f for f in plan.files}
    assert by_path[HELPER].mode == 0o755
    assert by_path[SERVICE].mode == by_path[PATH_UNIT].mode == 0o644
    for path in (HELPER, SERVICE, PATH_UNIT):
        assert by_path[path].guards == ("incident-1",) and by_path[path].why
    units = {u.name: u for u in plan.units}
    for name in ("netharden-quarantine.service", "netharden-quarantine.path"):
        assert units[name].enabled is True and units[name].guards == ("incident-1",)
    actions = {a.id: a for a in plan.actions}
    assert actions["systemd-daemon-reload"].phase == PHASE_SYSTEMD
    assert actions["quarantine-path"].argv == ("systemctl", "start", "netharden-quarantine.path")
    assert actions["quarantine-run"].argv == ("systemctl", "start", "netharden-quarantine.service")
    assert actions["quarantine-path"].phase == actions["quarantine-run"].phase == PHASE_UNITS
    assert not any(a.disruptive for a in (actions["quarantine-path"], actions["quarantine-run"]))


def test_default_profile_quarantines_the_runtime_directory():
    text = plan_files(plan_of())
    assert "set -- '/run/systemd/network/*.network'\n" in text[HELPER]
    assert "PathChanged=/run/systemd/network\n" in text[PATH_UNIT]
    assert "/etc/systemd/network" not in text[PATH_UNIT]
    assert "ReadWritePaths=-/run/systemd/network\n" in text[SERVICE]
    assert "ReadWritePaths=-/etc/systemd/network" not in text[SERVICE]


def test_nothing_rendered_without_globs():
    plan = plan_of(globs=[])
    assert not [f for f in plan.files if "quarantine" in f.path]
    assert not [u for u in plan.units if "quarantine" in u.name]
    assert not [a for a in plan.actions if a.id.startswith("quarantine")]


def test_units_text():
    text = plan_files(plan_of(globs=DEFAULT_GLOBS))
    service, path = text[SERVICE], text[PATH_UNIT]
    for line in ("Type=oneshot", f"ExecStart={HELPER}", "DefaultDependencies=no",
                 "Before=systemd-networkd.service shutdown.target", "WantedBy=systemd-networkd.service",
                 "UnsetEnvironment=NETHARDEN_QUARANTINE_ROOT", "RuntimeDirectory=netharden/quarantine",
                 "RuntimeDirectoryPreserve=yes", "ProtectSystem=strict", "ReadWritePaths=-/etc/systemd/network",
                 "ReadWritePaths=-/run/systemd/network", "StartLimitIntervalSec=30", "StartLimitBurst=10"):
        assert line + "\n" in service, line
    assert "\nPrivateTmp=" not in service  # it would order networkd after /var/tmp's mount
    for line in ("PathChanged=/etc/systemd/network", "PathChanged=/run/systemd/network", "MakeDirectory=yes",
                 "Unit=netharden-quarantine.service", "DefaultDependencies=no",
                 "Before=systemd-networkd.service shutdown.target", "WantedBy=systemd-networkd.service"):
        assert line + "\n" in path, line
    assert "\nDirectoryNotEmpty=" not in path and "\nPathExists" not in path


@pytest.mark.parametrize("version, reload", [(243, False), (244, True), (241, False), (252, True)])
def test_reload_or_restart_by_systemd_version(version, reload):
    script = plan_files(plan_of(systemd=version))[HELPER]
    assert ("\tif networkctl reload; then\n" in script) == reload
    assert "systemctl try-restart --no-block systemd-networkd.service" in script  # the fallback / the only way
    assert ("# a restart (this target's systemd < 244" in script) == (not reload)


def test_deterministic():
    a = plan_of(globs=DEFAULT_GLOBS).to_dict()
    b = plan_of(globs=DEFAULT_GLOBS).to_dict()
    assert a == b
    assert plan_files(plan_of(globs=list(reversed(DEFAULT_GLOBS))))[PATH_UNIT] == plan_files(plan_of(globs=DEFAULT_GLOBS))[PATH_UNIT]


def test_helper_dir_follows_the_os():
    text = plan_files(plan_of(os_name="flatcar", systemd=255))
    assert "/opt/netharden/bin/netharden-quarantine" in text
    assert "ExecStart=/opt/netharden/bin/netharden-quarantine\n" in text[SERVICE]


@pytest.mark.parametrize("glob", ["/tmp/*.network", "/run/systemd/network/sub/*.network",
                                  "/usr/lib/systemd/network/*.network", "/run/systemd/network/*.netdev"])
def test_renderer_refuses_globs_outside_the_network_dirs(glob):
    with pytest.raises(ValueError):
        watched_dirs((glob,))


@pytest.mark.parametrize("version", [243, 252])
def test_rendered_script_passes_shellcheck(version):
    shellcheck = need("shellcheck")
    script = plan_files(plan_of(systemd=version, globs=DEFAULT_GLOBS))[HELPER]
    done = subprocess.run([shellcheck, "--severity=style", "-s", "sh", "-"], input=script,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = need("systemd-analyze")
    netharden.emit(plan_of(globs=DEFAULT_GLOBS), "tree", tmp_path / "tree")
    done = subprocess.run([analyze, "verify", f"--root={tmp_path / 'tree'}", SERVICE, PATH_UNIT],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


# ----------------------------------------------------------------- the script itself

SHELLS = [s for s in ("dash", "bash") if shutil.which(s)] or ["sh"]


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("helper") / "netharden-quarantine"
    path.write_text(plan_files(plan_of(globs=DEFAULT_GLOBS))[HELPER])
    path.chmod(0o755)
    return path


@pytest.fixture(params=SHELLS)
def shell(request) -> str:
    return request.param


class Root:
    """A scratch root: ROOT/run/systemd/network, ROOT/etc/systemd/network ..."""

    def __init__(self, base: Path, script: Path, shell: str):
        self.base, self.script, self.shell = base, script, shell
        for d in ("run/systemd/network", "etc/systemd/network", "usr/lib/systemd/network"):
            (base / d).mkdir(parents=True)

    def path(self, rel: str) -> Path:
        return self.base / rel.lstrip("/")

    def write(self, rel: str, text: str | bytes) -> Path:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        return p

    def run(self, *globs: str, root: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8",
               "NETHARDEN_QUARANTINE_ROOT": str(self.base) if root is None else root}
        return subprocess.run([self.shell, str(self.script), *globs], env=env, capture_output=True, text=True,
                              timeout=30)

    def quarantined(self) -> dict[str, str]:
        q = self.path("/run/netharden/quarantine")
        return {p.name: p.read_bytes().decode() for p in sorted(q.iterdir())} if q.is_dir() else {}


@pytest.fixture
def root(tmp_path, script, shell) -> Root:
    return Root(tmp_path / "root", script, shell)


CATCH_ALLS = {
    "no-match-section": "[Network]\nDHCP=yes\n",
    "only-a-newline": "\n",
    "only-comments": "# [Match]\n; Name=eth0\n",
    "empty-match": "[Match]\n\n[Network]\nDHCP=yes\n",
    "name-star": "[Match]\nName=*\n",
    "name-star-blank-around": "[Match]\n  Name  =  *  \n",
    "name-star-tabs-crlf": "[Match]\r\nName\t=\t*\r\n",
    "name-star-among-globs": "[Match]\nName=en* *\n",
    "name-star-star": "[Match]\nName=**\n",
    "name-question-star": "[Match]\nName=?*\n",
    "name-reset-then-star": "[Match]\nName=eth0\nName=\nName=*\n",
    "name-reset-only": "[Match]\nName=eth0\nName=\n",
    "mac-reset": "[Match]\nMACAddress=02:00:00:00:00:01\nMACAddress=\nName=*\n",
    "lowercase-section-ignored": "[match]\nName=eth0\n[Network]\nDHCP=yes\n",
    "match-key-in-other-section": "[Match]\nName=*\n[Network]\nMACAddress=02:00:00:00:00:01\n",
    "name-in-link-section": "[Match]\nName=*\n[Link]\nName=eth0\n",
    "continuation-swallows-next-line": "[Match]\nName=* \\\nMACAddress=02:00:00:00:00:01\n",
    "assignment-before-any-section": "Name=eth0\n[Match]\nName=*\n",
    "two-match-sections": "[Match]\nName=*\n[Network]\nDHCP=yes\n[Match]\n",
    "continuation": "[Match]\nName=eth0 \\\n *\n",
    "continuation-over-comment": "[Match]\nName=eth0 \\\n# Name=x \\\n *\n",
    "comment-does-not-continue": "[Match]\n# MACAddress=02:00:00:00:00:01 \\\nName=*\n",
    "no-final-newline": "[Match]\nName=*",
    "system-conditions-only": "[Match]\nHost=node-a\nVirtualization=vmware\nKernelCommandLine=x\nName=*\n",
    "virtualization-only": "[Match]\nVirtualization=vmware\n",
}

REAL_MATCHES = {
    "name": "[Match]\nName=eth0\n",
    "name-glob": "[Match]\nName=en*\n",
    "name-star-with-exclusion": "[Match]\nName=* !veth*\n",
    "name-negative-only": "[Match]\nName=!lo\n",
    "mac": "[Match]\nMACAddress=02:00:00:00:00:01\n",
    "name-star-and-type": "[Match]\nName=*\nType=ether\n",
    "kind": "[Match]\nKind=!*\n",
    "driver": "[Match]\nDriver=virtio_net\n",
    "path": "[Match]\nPath=pci-0000:00:03.0\n",
    "property": "[Match]\nProperty=ID_NET_DRIVER=e1000\n",
    "two-match-sections": "[Match]\nName=*\n[Network]\nDHCP=yes\n[Match]\nPermanentMACAddress=02:00:00:00:00:01\n",
    "unknown-key": "[Match]\nName=*\nFoo=bar\n",
    "unknown-lowercase-key": "[Match]\nname=eth0\nName=*\n",   # networkd ignores it; we stay careful
    "invalid-section-header": "[Match\nName=*\n",
    "star-is-a-literal-word": "[Match]\nName=*x\n",
    "quoted-star-is-a-literal": '[Match]\nName="*"\n',   # networkd 252 does not unquote Name= words
}


@pytest.mark.parametrize("case", sorted(CATCH_ALLS))
def test_catch_alls_are_moved(root, case):
    text = CATCH_ALLS[case]
    root.write("/run/systemd/network/00-stray.network", text)
    done = root.run()
    assert done.returncode == 0, done.stderr
    assert not root.path("/run/systemd/network/00-stray.network").exists()
    assert root.quarantined() == {"00-stray.network": text}
    assert "moved " + str(root.path("/run/systemd/network/00-stray.network")) in done.stderr
    assert "not reloaded" in done.stderr  # a test root never reloads the host's networkd


@pytest.mark.parametrize("case", sorted(REAL_MATCHES))
def test_real_matches_stay(root, case):
    f = root.write("/run/systemd/network/00-real.network", REAL_MATCHES[case])
    done = root.run()
    assert done.returncode == 0, done.stderr
    assert f.read_text() == REAL_MATCHES[case]
    assert root.quarantined() == {}
    assert "moved 0" in done.stderr and "reload" not in done.stderr


def test_left_alone_masks_empty_files_symlinks_and_others(root):
    run = root.path("/run/systemd/network")
    (run / "01-mask.network").symlink_to("/dev/null")
    elsewhere = root.write("/srv/catch-all.network", "[Match]\nName=*\n")
    (run / "02-link.network").symlink_to(elsewhere)
    root.write("/run/systemd/network/03-empty.network", "")
    (run / "04-dir.network").mkdir()
    os.mkfifo(run / "05-fifo.network")
    root.write("/run/systemd/network/.hidden.network", "[Match]\nName=*\n")   # networkd skips dotfiles too
    root.write("/run/systemd/network/06-other.netdev", "[NetDev]\nName=x\nKind=dummy\n")
    root.write("/run/systemd/network/00-stray.network.d/x.conf", "[Match]\nName=*\n")
    before = sorted(p.name for p in run.iterdir())
    done = root.run()
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in run.iterdir()) == before
    assert root.quarantined() == {}
    assert elsewhere.read_text() == "[Match]\nName=*\n"
    assert "01-mask.network is a symlink" in done.stderr and "03-empty.network is empty" in done.stderr


def test_dropins_are_read_like_networkd(root):
    # a drop-in that adds a real condition makes the file a real match ...
    root.write("/run/systemd/network/10-a.network", "[Match]\nName=*\n")
    root.write("/run/systemd/network/10-a.network.d/mac.conf", "[Match]\nMACAddress=02:00:00:00:00:01\n")
    # ... unless /etc masks that drop-in (same name, higher priority)
    root.write("/run/systemd/network/20-b.network", "[Match]\nName=*\n")
    root.write("/run/systemd/network/20-b.network.d/mac.conf", "[Match]\nMACAddress=02:00:00:00:00:01\n")
    root.path("/etc/systemd/network/20-b.network.d").mkdir(parents=True)
    root.path("/etc/systemd/network/20-b.network.d/mac.conf").symlink_to("/dev/null")
    # drop-ins apply in file-name order across directories: a later reset wins
    root.write("/run/systemd/network/30-c.network", "[Match]\nName=eth0\n")
    root.write("/usr/lib/systemd/network/30-c.network.d/50-reset.conf", "[Match]\nName=\n")
    # ... an earlier one does not
    root.write("/run/systemd/network/40-d.network", "[Match]\nName=*\n")
    root.write("/usr/lib/systemd/network/40-d.network.d/10-first.conf", "[Match]\nName=\n")
    root.write("/etc/systemd/network/40-d.network.d/20-second.conf", "[Match]\nName=eth0\n")
    # each drop-in starts outside any section
    root.write("/run/systemd/network/50-e.network", "[Match]\nName=*\n")
    root.write("/run/systemd/network/50-e.network.d/x.conf", "MACAddress=02:00:00:00:00:01\n")
    done = root.run()
    assert done.returncode == 0, done.stderr
    assert sorted(root.quarantined()) == ["20-b.network", "30-c.network", "50-e.network"]
    assert root.path("/run/systemd/network/10-a.network").exists()
    assert root.path("/run/systemd/network/40-d.network").exists()
    assert root.path("/run/systemd/network/10-a.network.d/mac.conf").exists()  # drop-in dirs are never moved


def test_names_never_collide_in_quarantine(root):
    for n in range(3):
        root.write("/run/systemd/network/00-.network", f"[Match]\nName=*\n# run {n}\n")
        assert root.run().returncode == 0
    root.write("/etc/systemd/network/00-.network", "[Network]\nDHCP=yes\n")
    assert root.run().returncode == 0
    q = root.quarantined()
    assert sorted(q) == ["00-.network", "00-.network.1", "00-.network.2", "00-.network.3"]
    assert [q[n].splitlines()[-1] for n in sorted(q)[:3]] == ["# run 0", "# run 1", "# run 2"]
    assert q["00-.network.3"] == "[Network]\nDHCP=yes\n"
    assert stat.S_IMODE(root.path("/run/netharden/quarantine").stat().st_mode) == 0o700


def test_globs_as_arguments(root):
    root.write("/run/systemd/network/00-a.network", "[Match]\nName=*\n")
    root.write("/run/systemd/network/50-b.network", "[Match]\nName=*\n")
    root.write("/etc/systemd/network/50-c.network", "[Match]\nName=*\n")   # not in the default globs
    done = root.run("/run/systemd/network/00-*.network")
    assert done.returncode == 0, done.stderr
    assert sorted(root.quarantined()) == ["00-a.network"]
    assert root.run().returncode == 0            # the profile's globs: all of /run, 00-* of /etc
    assert sorted(root.quarantined()) == ["00-a.network", "50-b.network"]
    assert root.path("/etc/systemd/network/50-c.network").exists()


@pytest.mark.parametrize("glob", [
    "/tmp/*.network", "/run/systemd/network/../../../tmp/x.network", "/run/systemd/network/sub/x.network",
    "/run/systemd/network/*.netdev", "/etc/systemd/network/*", "run/systemd/network/*.network",
    "/run/systemd/network/a b.network", "/run/systemd/network/.network", "/usr/lib/systemd/network/*.network",
])
def test_refused_globs_touch_nothing(root, glob, tmp_path):
    victim = root.write("/run/systemd/network/00-.network", "[Match]\nName=*\n")
    outside = tmp_path / "x.network"
    outside.write_text("[Match]\nName=*\n")
    # with the test root (after a valid glob), and in production mode (no root; alone)
    for globs, env_root in ((("/run/systemd/network/*.network", glob), None), ((glob,), "")):
        done = root.run(*globs, root=env_root)
        assert done.returncode == 2, (glob, done.stderr)
        assert f"refusing {glob}" in done.stderr
    assert victim.exists() and outside.exists() and root.quarantined() == {}


@pytest.mark.parametrize("value", ["relative/dir", "/tmp/with space", "/tmp/glob*", "/nonexistent-nh-root"])
def test_bad_roots_are_refused(root, value):
    root.write("/run/systemd/network/00-.network", "[Match]\nName=*\n")
    done = root.run(root=value)
    assert done.returncode == 2, done.stderr
    assert "NETHARDEN_QUARANTINE_ROOT" in done.stderr
    assert root.quarantined() == {}


def test_symlinked_directories_are_not_followed(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "00-.network").write_text("[Match]\nName=*\n")
    shutil.rmtree(root.path("/run/systemd/network"))
    root.path("/run/systemd/network").symlink_to(elsewhere)
    done = root.run()
    assert done.returncode == 0, done.stderr
    assert "is a symlink or has one on its path" in done.stderr
    assert (elsewhere / "00-.network").exists() and root.quarantined() == {}


def test_symlinked_quarantine_is_refused(root, tmp_path):
    trap = tmp_path / "trap"
    trap.mkdir()
    root.path("/run/netharden").mkdir(parents=True)
    root.path("/run/netharden/quarantine").symlink_to(trap)
    f = root.write("/run/systemd/network/00-.network", "[Match]\nName=*\n")
    done = root.run()
    assert done.returncode == 1
    assert "is a symlink" in done.stderr
    assert f.exists() and list(trap.iterdir()) == []


def test_journal_priorities(root):
    root.write("/run/systemd/network/00-.network", "[Match]\nName=*\n")
    env = {"PATH": os.environ["PATH"], "NETHARDEN_QUARANTINE_ROOT": str(root.base), "JOURNAL_STREAM": "8:1"}
    done = subprocess.run([root.shell, str(root.script)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    lines = done.stderr.splitlines()
    assert lines[0].startswith("<4>moved ") and lines[-1] == "<6>checked 1 file(s), moved 1"
