"""What a lab leaves behind: found, and removed, through the process table (/proc).

Everything the lab creates on the host can be recognised from outside the Python
process that made it:

* network namespaces ``/run/netns/nhlab-<owner pid>-<random>`` (the harness's
  :class:`~netharden.lab.netns.NetworkdLab`, and the plain namespaces of a scenario's
  ``Context.netns``, which are named the same way);
* staging directories ``$TMPDIR/nhlab-<owner pid>-...``;
* processes: marked by ``NETHARDEN_LAB=<netns name>`` in their environment, or living
  in an ``nhlab-`` network namespace, or naming ``nhlab-`` on their command line.

Guarantees:

* :func:`leftovers` lists every such trace (also mounts naming ``nhlab-`` and unreaped
  zombies of this process) and changes nothing; ``[]`` means clean.
* :func:`cleanup_stale` removes the namespaces, their processes and the staging
  directories of labs whose owner process is gone (e.g. pytest was SIGKILLed); labs of
  a live owner are never touched, so concurrent runs (pytest-xdist, a second engineer)
  are safe. The harness runs it once per process, at its first set-up
  (:func:`cleanup_stale_once`).
* :func:`kill_stragglers` SIGKILLs the processes of one lab (by marker or by netns
  inode) until none is left; it never signals this process.
* Labs still open when the interpreter exits are closed (:func:`track`, ``atexit``).
* :func:`sigint_deferred`: Ctrl-C waits while a teardown runs and is raised after it.

Limits: when the owner is SIGKILLed, PR_SET_PDEATHSIG and the PID namespace
(netns.py) kill the lab's processes, but the namespace name and the staging directory
stay until a later process runs :func:`cleanup_stale`. An owner PID reused by a live
process keeps its stale lab (it counts as live). Linux only (reads /proc).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

__all__ = [
    "ENV_MARKER",
    "NETNS_DIR",
    "NS_PREFIX",
    "children",
    "cleanup_stale",
    "cleanup_stale_once",
    "kill_stragglers",
    "leftovers",
    "sigint_deferred",
    "track",
    "untrack",
]

NS_PREFIX = "nhlab-"
ENV_MARKER = "NETHARDEN_LAB"
NETNS_DIR = Path("/run/netns")


# ---------------------------------------------------------------------------
# /proc helpers


def _proc_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of pid, None if gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2 :].split()
    return rest[0], int(rest[1])


def children(ppid: int) -> list[int]:
    """PIDs whose parent is ``ppid``."""
    out = []
    for pid in _proc_pids():
        st = _proc_stat(pid)
        if st and st[1] == ppid:
            out.append(pid)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _environ_marker(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in env.split(b"\0"):
        if item.startswith(ENV_MARKER.encode() + b"="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None


def _net_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _ancestors() -> set[int]:
    pids = set()
    pid = os.getpid()
    while pid > 1:
        pids.add(pid)
        st = _proc_stat(pid)
        if not st:
            break
        pid = st[1]
    return pids


def _pid_alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z"


# ---------------------------------------------------------------------------
# leftovers


def _netns_names(prefix: str = NS_PREFIX) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except OSError:
        return []


def leftovers(owner: int | None = None, *, ignore_other_live_owners: bool = False) -> list[str]:
    """Human-readable list of everything a lab may leave behind: nhlab-
    network namespaces, mounts, processes (marked by NETHARDEN_LAB=, naming
    nhlab- on the command line, or living in an nhlab- netns), unreaped
    zombies of this process, and staging dirs.  Empty == clean.
    ``owner``: restrict to labs created by that PID (default: all).
    ``ignore_other_live_owners``: drop items of labs whose owner is another
    process that is still alive (concurrent test runs, pytest-xdist)."""
    found = _leftovers(owner)
    if ignore_other_live_owners:
        me = os.getpid()
        keep = []
        for item in found:
            m = re.search(re.escape(NS_PREFIX) + r"(\d+)-", item)
            if m and int(m.group(1)) != me and _pid_alive(int(m.group(1))):
                continue
            keep.append(item)
        found = keep
    return found


def _leftovers(owner: int | None) -> list[str]:
    prefix = NS_PREFIX if owner is None else f"{NS_PREFIX}{owner}-"
    found: list[str] = []
    names = _netns_names(prefix)
    found += [f"netns {n}" for n in names]
    inodes = {}
    for n in names:
        try:
            inodes[os.stat(NETNS_DIR / n).st_ino] = n
        except OSError:
            pass
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if prefix in line:
                found.append(f"mount {line.split()[4]}")
    except OSError:
        pass
    skip = _ancestors()
    me = os.getpid()
    for pid in _proc_pids():
        if pid in skip:
            continue
        st = _proc_stat(pid)
        if st is None:
            continue
        if st[0] == "Z":
            if st[1] == me:
                found.append(f"zombie pid={pid} (unreaped child of this process)")
            continue
        marker = _environ_marker(pid)
        cmd = _cmdline(pid)
        why = None
        if marker and marker.startswith(prefix):
            why = f"{ENV_MARKER}={marker}"
        elif prefix in cmd:
            why = "cmdline"
        else:
            ino = _net_inode(pid)
            if ino in inodes:
                why = f"in netns {inodes[ino]}"
        if why:
            short = " ".join(cmd.split())
            short = short if len(short) <= 160 else short[:157] + "..."
            found.append(f"process pid={pid} ({why}): {short}")
    tmp = Path(tempfile.gettempdir())
    try:
        for p in sorted(tmp.glob(prefix + "*")):
            found.append(f"dir {p}")
    except OSError:
        pass
    return found


# ---------------------------------------------------------------------------
# removal


def _owner_of(name: str) -> int | None:
    m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
    return int(m.group(1)) if m else None


def _lab_pids(name: str, ino: int | None) -> list[int]:
    """Processes of lab ``name`` (its marker, or in its netns ``ino``), this one excepted."""
    me = os.getpid()
    return [
        pid
        for pid in _proc_pids()
        if pid != me and (_environ_marker(pid) == name or (ino is not None and _net_inode(pid) == ino))
    ]


def _kill_netns_processes(name: str, ino: int | None) -> None:
    for pid in _lab_pids(name, ino):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def kill_stragglers(name: str, ino: int | None, *, attempts: int = 50, interval: float = 0.02) -> None:
    """SIGKILL the processes of lab ``name`` (e.g. run() commands that hung) until none is
    left or ``attempts`` rounds are done; ``ino``: its netns inode, None when unknown."""
    for _ in range(attempts):
        _kill_netns_processes(name, ino)
        if not _lab_pids(name, ino):
            break
        time.sleep(interval)


def cleanup_stale() -> list[str]:
    """Remove namespaces / processes / staging dirs of labs whose owning
    process no longer exists (e.g. pytest was SIGKILLed).  Labs of live
    owners are never touched.  Returns what was removed."""
    removed = []
    for name in _netns_names():
        owner = _owner_of(name)
        if owner is None or _pid_alive(owner):
            continue
        try:
            ino = os.stat(NETNS_DIR / name).st_ino
        except OSError:
            ino = None
        _kill_netns_processes(name, ino)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
        removed.append(f"netns {name}")
    for p in Path(tempfile.gettempdir()).glob(NS_PREFIX + "*"):
        owner = _owner_of(p.name)
        if owner is None or _pid_alive(owner):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(f"dir {p}")
    return removed


_STALE_DONE = False


def cleanup_stale_once() -> None:
    """:func:`cleanup_stale`, the first time this process calls it."""
    global _STALE_DONE
    if not _STALE_DONE:
        _STALE_DONE = True
        cleanup_stale()


# ---------------------------------------------------------------------------
# labs open at exit, Ctrl-C during teardown


class _Closable(Protocol):
    def close(self) -> None: ...


_OPEN_LABS: set[_Closable] = set()


def track(lab: _Closable) -> None:
    """Close ``lab`` at interpreter exit unless :func:`untrack` was called first."""
    _OPEN_LABS.add(lab)


def untrack(lab: _Closable) -> None:
    _OPEN_LABS.discard(lab)


@atexit.register
def _close_open_labs() -> None:
    for lab in list(_OPEN_LABS):
        with contextlib.suppress(Exception):
            lab.close()


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Delay Ctrl-C while cleaning up (main thread only), re-raise after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    try:
        old = signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if got:
            raise KeyboardInterrupt
