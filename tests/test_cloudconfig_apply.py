"""The rendered cloud-config applied by the real cloud-init 22.4, confined so that the
host does not change, and compared with ``--format tree``.

Confinement: a private mount, network and PID namespace (``unshare``) in which an overlay
with the real ``/`` as its only lower layer and a tmpfs upper layer is mounted, and
cloud-init runs ``chroot``-ed into it. cloud-init sees the real system (its python, its
/etc/cloud, the real /etc) and writes wherever the config says, but every write lands in
the upper layer, which is copied out for comparison before the namespace (and with it
every mount) goes away. Fresh /run and /tmp tmpfs, a fresh /proc with /proc/sys
read-only, and no D-Bus socket make the post-apply actions harmless: ``systemctl`` sees
a chroot (its ``start``/``daemon-reload`` are ignored, ``enable``/``mask`` work on the
files), ``sysctl -p`` is refused, ``networkctl`` finds no bus.

Two steps, as at boot:
1. ``cloud-init single --name write_files``: the upper layer must hold exactly the tree's
   files (bytes, modes, root:root), no symlink, no deletion, new directories 0755, and
   otherwise only cloud-init's own state (/var/lib/cloud, its logs).
2. ``cloud-init single --name runcmd`` writes the runcmd script, which is then executed
   the way ``scripts-user`` does (it execs each file of the instance's scripts/
   directory; ``single`` cannot run scripts-user itself, as it keeps no instance link).
   A regular file and a foreign symlink placed at mask paths first must be replaced: the
   masks must then equal the tree's symlinks, the units be enabled/masked according to
   ``systemctl is-enabled``, and every argv reach its command unchanged.
Before and after, the real host's entries at every path involved must be unchanged.
"""
from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from netharden.emitters import emit
from netharden.plan_model import Plan
from netharden.renderers.stack_service import enablement_links
from netharden.targets import UNIT_DIR
from helpers import PROFILES, require
from test_cloudconfig import AWKWARD_ARGV, CLOUD_INIT, awkward_plan, example_plan, tree_of

pytestmark = pytest.mark.netns

# What cloud-init writes for itself (not part of the config's result).
STATE = ("/var/lib/cloud", "/var/log/cloud-init.log", "/var/log/cloud-init-output.log")

SCRIPT = r"""
set -euo pipefail
S={scratch}
OUT={out}
mount -t tmpfs -o mode=0755 tmpfs "$S"
mkdir "$S/upper" "$S/work" "$S/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$S/upper,workdir=$S/work" "$S/root"
R=$S/root
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount --rbind /dev "$R/dev"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mkdir "$R/run/netharden-test"
cp {config} "$R/run/netharden-test/user-data"
in_root() {{ env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 chroot "$R" "$@"; }}
step() {{ name=$1; shift; rc=0; in_root "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?; echo "$rc" >"$OUT/$name.rc"; }}
CLOUD_INIT="{cloud_init} --file /run/netharden-test/user-data single --frequency always --name"

step write_files $CLOUD_INIT write_files
cp -a "$S/upper" "$OUT/after-write_files"
{seed}
step runcmd $CLOUD_INIT runcmd
step script sh -c 'set -- /var/lib/cloud/instances/*/scripts/runcmd; [ "$#" = 1 ] && [ -f "$1" ] && cp "$1" /run/netharden-test/runcmd && exec "$1"'
{is_enabled}
cp -a "$S/upper" "$OUT/after-runcmd"
cp -a "$R/run/netharden-test" "$OUT/run"
"""


def _host_snapshot(leaves: set[str]) -> dict[str, tuple | None]:
    """lstat of every leaf (inode, size, times: any write shows) and whether each of their
    ancestors exists (their times may change through unrelated work on the machine)."""
    out: dict[str, tuple | None] = {}
    for path in leaves:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            out[path] = None
        else:
            out[path] = (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        for parent in _ancestors(path):
            out.setdefault(parent, ("exists",) if os.path.lexists(parent) else None)
    return out


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def _is_state(path: str) -> bool:
    return any(path == s or path.startswith(s + "/") for s in STATE)


def _layer(upper: Path) -> dict[str, os.stat_result]:
    out = {}
    for dirpath, dirnames, names in os.walk(upper):
        for name in dirnames + names:
            p = Path(dirpath) / name
            out["/" + str(p.relative_to(upper))] = p.lstat()
    return out


def layer_problems(upper: Path, files: dict[str, tuple[bytes, int]], links: dict[str, str]) -> list[str]:
    """Differences between what cloud-init wrote (an overlay upper layer) and the expected
    files and symlinks; directories must lead to them (or to cloud-init's state)."""
    problems = []
    entries = _layer(upper)
    wanted = set(files) | set(links) | set(STATE)
    needed_dirs = {a for p in wanted for a in _ancestors(p)}
    for path, st in sorted(entries.items()):
        if _is_state(path) and path not in needed_dirs:
            continue
        real = upper / path.lstrip("/")
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            problems.append(f"{path}: deleted (overlay whiteout)")
        elif stat.S_ISDIR(st.st_mode):
            if path not in needed_dirs:
                problems.append(f"{path}: unexpected directory")
            elif not os.path.lexists(path) and (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (0o755, 0, 0):
                problems.append(f"{path}: new directory with mode {st.st_mode & 0o7777:04o} owner {st.st_uid}:{st.st_gid}")
        elif stat.S_ISLNK(st.st_mode):
            if links.get(path) != os.readlink(real):
                problems.append(f"{path}: unexpected symlink -> {os.readlink(real)}")
        elif stat.S_ISREG(st.st_mode):
            if path not in files:
                problems.append(f"{path}: unexpected file")
            elif (real.read_bytes(), st.st_mode & 0o7777) != files[path]:
                problems.append(f"{path}: content or mode {st.st_mode & 0o7777:04o} differs")
            elif (st.st_uid, st.st_gid) != (0, 0):
                problems.append(f"{path}: owner {st.st_uid}:{st.st_gid}")
        else:
            problems.append(f"{path}: unexpected file type {stat.S_IFMT(st.st_mode):o}")
    for path in sorted((set(files) | set(links)) - set(entries)):
        problems.append(f"{path}: missing")
    return problems


def _requirements() -> None:
    missing = [t for t in ("unshare", "chroot", "mount") if shutil.which(t) is None]
    require(f"{', '.join(missing)} missing (util-linux, coreutils)" if missing else None)
    require(None if os.access(CLOUD_INIT, os.X_OK) else
            f"{CLOUD_INIT} is missing (Debian package cloud-init: scripts/install-system-deps.sh)")
    require(None if os.geteuid() == 0 else "needs root (mount namespaces, overlayfs, chroot)")


def _host_systemd() -> int:
    out = subprocess.run(["systemctl", "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[1])


def enablement(plan: Plan, files: dict[str, tuple[bytes, int]]) -> dict[str, str]:
    """The symlinks ``systemctl enable``/``mask`` make for the Plan's units (WantedBy= of
    the unit files the Plan writes)."""
    links = {}
    for u in plan.units:
        if u.masked:
            links[f"{UNIT_DIR}/{u.name}"] = "/dev/null"
        elif u.enabled and f"{UNIT_DIR}/{u.name}" not in files:
            # a vendor unit (systemd-networkd.service): the Plan's links are the target's; the
            # systemctl that runs here follows this machine's unit file, whose [Install] may
            # name more units (Also=) than the target version's
            plan_paths = {x.path for x in plan.links}
            links.update({x.path: x.target for x in enablement_links("debian", _host_systemd())
                          if x.path not in plan_paths})
        elif u.enabled:
            text = files[f"{UNIT_DIR}/{u.name}"][0].decode()
            for line in text.splitlines():
                if line.startswith("WantedBy="):
                    for target in line.split("=", 1)[1].split():
                        links[f"{UNIT_DIR}/{target}.wants/{u.name}"] = f"{UNIT_DIR}/{u.name}"
    return links


def apply(plan: Plan, tmp_path: Path, data: bytes | None = None) -> Path:
    """Run the confined cloud-init on the rendered plan (or on ``data``); the results directory."""
    _requirements()
    config = tmp_path / "user-data"
    config.write_bytes(emit(plan, "cloud-config") if data is None else data)
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    out.mkdir()
    scratch.mkdir()
    seed = []
    # an administrator's regular file and a foreign symlink where masks go (if the parent exists)
    for link, make in zip(sorted(plan.links, key=lambda x: x.path),
                          ("printf 'seed\\n' > \"$R\"{p}", "ln -s /etc/hostname \"$R\"{p}")):
        p = shlex.quote(link.path)
        seed.append(f"if [ -d \"$R\"{shlex.quote(link.path.rsplit('/', 1)[0])} ]; then {make.format(p=p)}; "
                    f"stat -c %F \"$R\"{p} >>\"$OUT/seeded\"; fi")
    is_enabled = [f"in_root systemctl is-enabled {shlex.quote(u.name)} >>\"$OUT/is-enabled\" 2>&1 || true"
                  for u in sorted(plan.units, key=lambda u: u.name)]
    script = tmp_path / "confined.sh"
    script.write_text(SCRIPT.format(scratch=shlex.quote(str(scratch)), out=shlex.quote(str(out)),
                                    config=shlex.quote(str(config)), cloud_init=CLOUD_INIT,
                                    seed="\n".join(seed), is_enabled="\n".join(is_enabled)))
    files, _ = tree_of(plan, tmp_path / "tree")
    leaves = set(files) | {x.path for x in plan.links} | set(enablement(plan, files)) | set(STATE)
    leaves |= {"/run/cloud-init", "/run/netharden-test"}
    before = _host_snapshot(leaves)
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "--net", "--pid", "--fork",
                          "--kill-child", "bash", str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _host_snapshot(leaves) == before, "the real host changed"
    assert str(scratch) not in Path("/proc/self/mountinfo").read_text() and not any(scratch.iterdir())
    return out


def _text(out: Path, name: str) -> str:
    return (out / name).read_text()


def check(plan: Plan, out: Path, tmp_path: Path) -> None:
    files, links = tree_of(plan, tmp_path / "tree")
    # 1. write_files: exactly the tree's files, no warning
    assert (_text(out, "write_files.rc"), _text(out, "write_files.err")) == ("0\n", ""), _text(out, "write_files.out")
    log = (out / "after-write_files/var/log/cloud-init.log").read_text()
    assert "WARNING" not in log and "Traceback" not in log, log
    assert layer_problems(out / "after-write_files", files, {}) == []
    # 2. runcmd: cloud-init's script holds exactly the rendered argv lists
    assert (_text(out, "runcmd.rc"), _text(out, "runcmd.err")) == ("0\n", "")
    script = _text(out, "run/runcmd").splitlines()
    rendered = yaml.safe_load(emit(plan, "cloud-config")).get("runcmd", [])
    assert script[0] == "#!/bin/sh" and [shlex.split(line) for line in script[1:]] == rendered
    # ... and running it replaced what was at the mask paths, made the masks and enabled the units
    problems = layer_problems(out / "after-runcmd", files, {**links, **enablement(plan, files)})
    assert problems == [], (problems, _text(out, "script.out"), _text(out, "script.err"))
    log = (out / "after-runcmd/var/log/cloud-init.log").read_text()
    assert "WARNING" not in log and "Traceback" not in log, log
    units = sorted(plan.units, key=lambda u: u.name)
    states = _text(out, "is-enabled").split() if units else []
    assert [s for u, s in zip(units, states) if u.masked or u.enabled] == \
        ["masked" if u.masked else "enabled" for u in units if u.masked or u.enabled], states


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_cloud_init_writes_the_tree(path, tmp_path):
    plan = example_plan(path)
    out = apply(plan, tmp_path)
    check(plan, out, tmp_path)
    if plan.links:
        assert _text(out, "seeded").split("\n")[:2] == ["regular file", "symbolic link"]   # both were replaced
    else:  # a NetworkManager host: no masks
        assert not (out / "seeded").exists()


def test_cloud_init_applies_awkward_plan(tmp_path):
    plan = awkward_plan()
    out = apply(plan, tmp_path)
    check(plan, out, tmp_path)
    assert _text(out, "seeded") == "symbolic link\n"           # the other mask's directory did not exist
    assert (out / "run/argv").read_text() == "".join(f"{a}\n" for a in AWKWARD_ARGV)
    assert "try-restart" not in _text(out, "run/runcmd")        # disruptive: not run


def test_a_wrong_config_is_caught(tmp_path):
    """The control: a mode and a byte changed in the config show up as differences."""
    plan = awkward_plan()
    data = emit(plan, "cloud-config").replace(b"permissions: '0600'", b"permissions: '0640'", 1)
    data = data.replace(b"    middle\n", b"    muddle\n", 1)
    out = apply(plan, tmp_path, data)
    files, _ = tree_of(plan, tmp_path / "tree")
    assert layer_problems(out / "after-write_files", files, {}) == [
        "/etc/netharden/blank-lines: content or mode 0644 differs",
        "/etc/netharden/controls: content or mode 0640 differs",
    ]
