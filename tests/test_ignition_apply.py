"""The real Ignition binary (Debian's, shipped in its dracut module) applies the rendered
config to a scratch root, and the result is byte-for-byte ``--format tree``.

The minimal real sequence, as the initramfs runs it (ignition-fetch-offline.service, then
ignition-files.service), with every default path pointed into the test's directory:

1. ``ignition -platform file -stage fetch-offline``: the file provider reads the config
   from ``$IGNITION_CONFIG_FILE`` (default ``config.ign`` in the working directory),
   validates it and writes the config cache (``-config-cache``, default
   /run/ignition.json) and ``-state-file`` (default /run/ignition/state).
2. ``ignition -platform file -stage files -root ROOT``: reads only the cache, writes files,
   links, units and the preset file below ROOT, then relabels for SELinux. Debian's build
   relabels always: it reads ROOT/etc/selinux/config (missing: the stage fails) and runs
   ``setfiles -vF0 -r ROOT ...`` from PATH, so the scratch root gets a config with
   SELINUX=disabled and PATH a no-op ``setfiles`` (for the Ignition process only).

Ignition also reads the host's /usr/lib/ignition (base configs, user.ign) and
/proc/cmdline, and the fetch stage sends a message to the journal socket. So both stages
run in a private mount namespace (``unshare -m``) where every mount except the test's
directory is remounted read-only and an empty read-only tmpfs hides /run (no journal
socket): nothing outside the test's directory can change, and the namespace goes away
with the process.

Besides the tree, Ignition writes /etc/systemd/system-preset/20-ignition.preset (one
``enable NAME`` / ``disable NAME`` line per unit with ``enabled``, in Go map order) and
/etc/.ignition-result.json; both are checked on their own.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

import netharden
from helpers import need, require
from test_ignition import PLANS, get_plan

IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition"
EXTRA = {"etc/systemd/system-preset/20-ignition.preset", "etc/.ignition-result.json", "etc/selinux/config"}
EXTRA_DIRS = {"etc/systemd/system-preset", "etc/selinux"}

RUN = r"""
set -eu
W=$1
mount --make-rprivate /
mount --bind "$W" "$W"
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do
    [ "$m" = "$W" ] && continue
    mount -o remount,bind,ro "$m" || { echo "cannot make $m read-only" >&2; exit 1; }
done
mount -t tmpfs -o ro,mode=0755,size=64k netharden-test /run
if touch /tmp/.netharden-ro-probe 2>/dev/null || touch /etc/.netharden-ro-probe 2>/dev/null; then
    echo "the host is still writable" >&2; exit 1
fi
export IGNITION_CONFIG_FILE="$W/config.ign" PATH="$W/bin:/usr/sbin:/usr/bin:/sbin:/bin"
for stage in fetch-offline files; do
    "$IGNITION" -platform file -stage "$stage" -root "$W/root" -config-cache "$W/ignition.json" \
        -state-file "$W/state" -neednet "$W/neednet" -log-to-stdout
done
"""


def apply(config: bytes, work: Path) -> tuple[Path, str]:
    """Run the real Ignition on ``config``; return the scratch root and the log."""
    if not os.access(IGNITION, os.X_OK):
        require(f"{IGNITION} is missing (Debian package ignition; scripts/install-system-deps.sh installs it)")
    require(None if os.geteuid() == 0 else "applying with Ignition needs root (a private mount namespace)")
    need("unshare", "util-linux")
    root = work / "root"
    (root / "etc/selinux").mkdir(parents=True)
    (root / "etc/selinux/config").write_text("SELINUX=disabled\nSELINUXTYPE=targeted\n")
    (work / "bin").mkdir()
    (work / "bin/setfiles").write_text(  # records its arguments, reads the file list, changes nothing
        "#!/bin/sh\necho \"setfiles $*\" >>\"${0%/*}/setfiles.log\"\ncat >/dev/null\nexit 0\n")
    (work / "bin/setfiles").chmod(0o755)
    (work / "config.ign").write_bytes(config)
    (work / "run.sh").write_text(RUN)
    proc = subprocess.run(["unshare", "-m", "sh", str(work / "run.sh"), str(work)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "IGNITION": IGNITION})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert log.count("Ignition finished successfully") == 2, log
    assert not (Path("/tmp/.netharden-ro-probe").exists() or Path("/etc/.netharden-ro-probe").exists())
    # nothing but what the two stages are told to write
    assert sorted(p.name for p in work.iterdir()) == ["bin", "config.ign", "ignition.json", "root", "run.sh", "state"]
    assert f"-r {root} " in (work / "bin/setfiles.log").read_text()   # the relabel ran, on ROOT only
    return root, log


def snapshot(root: Path) -> dict[str, tuple]:
    """Relative path -> ('file', mode, uid, gid, bytes) | ('link', target) | ('dir', mode, uid, gid)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel, st = str(p.relative_to(root)), p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, st.st_uid, st.st_gid)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, st.st_uid, st.st_gid, p.read_bytes())
    return out


@pytest.mark.parametrize("which", PLANS)
def test_ignition_writes_the_tree(which, tmp_path):
    plan = get_plan(which)
    netharden.emit(plan, "tree", tmp_path / "tree")
    root, log = apply(netharden.emit(plan, "ignition"), tmp_path / "work")
    applied, tree = snapshot(root), snapshot(tmp_path / "tree")
    # the tree: every file (bytes, mode, root-owned), every symlink (target), every directory
    assert {k: v for k, v in applied.items() if k not in EXTRA | EXTRA_DIRS} == tree
    for rel, entry in applied.items():
        if entry[0] != "link":
            assert entry[2:4] == (0, 0), rel
        if entry[0] == "dir":
            assert entry[1] == 0o755, rel
    # masks included: every Plan link is there
    for link in plan.links:
        assert applied[link.path.lstrip("/")] == ("link", link.target)
    # enablement: Ignition's preset file names exactly the Plan's enabled/disabled units
    preset = applied.get("etc/systemd/system-preset/20-ignition.preset")
    want = {f"{'enable' if u.enabled else 'disable'} {u.name}" for u in plan.units if u.enabled is not None}
    if want:
        assert preset[0] == "file" and preset[1] == 0o644
        lines = preset[4].decode().splitlines()
        assert len(lines) == len(want) and set(lines) == want
    else:
        assert preset is None
    result = json.loads(applied["etc/.ignition-result.json"][4])
    assert result["userConfigProvided"] is True
    assert "CRITICAL" not in log and "ERROR" not in log


def test_masked_unit_and_disabled_unit_applied(tmp_path):
    """The awkward Plan masks a unit (Ignition's own mask: true) and disables another."""
    plan = get_plan("awkward")
    root, log = apply(netharden.emit(plan, "ignition"), tmp_path / "work")
    mask = root / "etc/systemd/system/netharden-masked.service"
    assert mask.is_symlink() and os.readlink(mask) == "/dev/null"
    assert 'masking unit "netharden-masked.service"' in log
    preset = (root / "etc/systemd/system-preset/20-ignition.preset").read_text()
    assert "disable netharden-disabled.timer\n" in preset and "enable netharden-awkward.service\n" in preset
    # empty files were written (as plain files: Ignition skips empty units)
    assert (root / "etc/systemd/system/netharden-empty.service").read_bytes() == b""
    assert (root / "etc/systemd/system/netharden-empty-dropin.service.d/50-empty.conf").read_bytes() == b""


def test_ignition_overwrites_existing_vendor_files(tmp_path):
    """overwrite: true: a file or a regular file where a mask goes is replaced."""
    plan = get_plan("awkward")
    work = tmp_path / "work"
    (work / "root/etc/systemd/network").mkdir(parents=True)
    (work / "root/etc/systemd/network/50-docker.network").write_text("[Match]\nName=docker0\n")
    (work / "root/etc/netharden/awkward").mkdir(parents=True)
    (work / "root/etc/netharden/awkward/empty").write_text("old")
    root, _ = apply(netharden.emit(plan, "ignition"), work)
    assert os.readlink(root / "etc/systemd/network/50-docker.network") == "/dev/null"
    assert (root / "etc/netharden/awkward/empty").read_bytes() == b""
