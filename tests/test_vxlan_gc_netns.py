"""The RENDERED stale VXLAN collector against the real kernel, in a throwaway network
namespace: ``ip netns exec NS sh SCRIPT <the unit's ExecStart= arguments>``, with the
state and textfile directories pointed at temporary directories.

The test's own view of the devices comes from ``ip -j link`` (JSON), independent of
the script's parsing of ``ip -o link``. Needs root and VXLAN support in the kernel:
skipped otherwise, but FAILS under CI=true.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import netharden
from helpers import minimal, require
from netharden.lab.netns import NS_PREFIX

pytestmark = pytest.mark.netns

SERVICE = "/etc/systemd/system/netharden-vxlan-gc.service"
METRIC = "netharden_vxlan_gc.prom"


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, ip link add/del)"
    for tool in ("ip", "sh"):
        if shutil.which(tool) is None:
            return f"'{tool}' not found in PATH"
    return None


def require_or_skip() -> None:
    """Skip when this cannot run here, FAIL under CI=true (CI must not silently skip)."""
    reason = _unavailable()
    require(None if reason is None else f"VXLAN netns test unavailable: {reason}")


class Netns:
    """A network namespace named like the networkd lab's (nhtest-<pid>-...), so the lab's
    cleanup_stale() also removes it if this process is killed."""

    def __init__(self) -> None:
        self.name = f"{NS_PREFIX}{os.getpid()}-vxgc{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True, text=True)

    def close(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=True, capture_output=True, text=True)

    def run(self, *argv: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        done = subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True,
                              timeout=30, env={**base, **(env or {})})
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr}")
        return done

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("ip", *args, check=check)

    def vxlan(self, name: str, vni: int, *, up: bool = False, master: str | None = None) -> None:
        self.ip("link", "add", name, "type", "vxlan", "id", str(vni), "dstport", "4789")
        if master:
            self.ip("link", "set", name, "master", master)
        if up:
            self.ip("link", "set", name, "up")

    def links(self) -> dict[str, dict]:
        """name -> {"ifindex", "up", "master", "kind"}."""
        out = {}
        for link in json.loads(self.ip("-j", "-d", "link", "show").stdout):
            out[link["ifname"]] = {"ifindex": link["ifindex"], "up": "UP" in link["flags"],
                                   "master": link.get("master"), "kind": link.get("linkinfo", {}).get("info_kind")}
        return out


@pytest.fixture
def ns():
    require_or_skip()
    netns = Netns()
    try:
        probe = netns.ip("link", "add", "nhprobe0", "type", "vxlan", "id", "9", "dstport", "4789", check=False)
        if probe.returncode != 0:
            require(f"this kernel cannot create VXLAN devices: {probe.stderr.strip()}")
        netns.ip("link", "del", "nhprobe0")
        yield netns
    finally:
        netns.close()
    assert not Path(f"/run/netns/{netns.name}").exists()


class Collector:
    """The rendered script run with the rendered unit's ExecStart= arguments."""

    def __init__(self, tmp: Path, ns: Netns, mode: str, textfile: Path | None = None, pattern: str = "vx-*"):
        plan = netharden.plan(netharden.load(minimal(platform={"os": "debian"},
                                                     vxlan_gc={"mode": mode, "pattern": pattern})))
        (service,) = [f for f in plan.files if f.path == SERVICE]
        (line,) = [x for x in service.content.splitlines() if x.startswith("ExecStart=")]
        argv = shlex.split(line.removeprefix("ExecStart="))
        (script,) = [f for f in plan.files if f.path == argv[0]]
        tmp.mkdir(parents=True)
        self.script = tmp / "netharden-vxlan-gc"
        self.script.write_text(script.content)
        self.state = tmp / "state"
        self.textfile = textfile if textfile is not None else tmp / "textfile"
        self.textfile.mkdir(exist_ok=True)
        opts = dict(zip(argv[1::2], argv[2::2]))
        assert opts["--mode"] == mode and opts["--pattern"] == pattern
        opts.update({"--state-dir": str(self.state), "--textfile-dir": str(self.textfile)})
        self.argv = ["sh", str(self.script), *[w for kv in opts.items() for w in kv]]
        self.ns = ns

    def run(self, expect_status: int = 0, **kw) -> str:
        done = self.ns.run(*self.argv, check=False, **kw)
        assert done.returncode == expect_status, done.stderr
        return done.stderr

    def metric(self) -> dict[str, str]:
        text = (self.textfile / METRIC).read_text()
        samples = {}
        helped, typed = set(), set()
        for line in text.splitlines():
            if line.startswith("# HELP "):
                helped.add(line.split()[2])
            elif line.startswith("# TYPE "):
                assert line.split()[3] == "gauge", line
                typed.add(line.split()[2])
            else:
                key, value = line.rsplit(" ", 1)
                assert key.split("{")[0] in helped & typed, line
                samples[key] = value
        assert sorted(os.listdir(self.textfile)) == [METRIC]  # no temporary file left behind
        return samples

    def state_entries(self) -> set[str]:
        return set((self.state / "stale").read_text().splitlines())


def counts(c: Collector) -> tuple[str, str, str]:
    m = c.metric()
    mode = c.argv[c.argv.index("--mode") + 1]
    return tuple(m[f'{name}{{mode="{mode}"}}'] for name in (
        "netharden_stale_vxlan_devices", "netharden_vxlan_gc_pending_devices", "netharden_vxlan_gc_removed_devices"))


STALE = ("vx-001001-aaaaa", "vx-001002-bbbbb")


def test_reports_then_removes_only_stale_devices(ns, tmp_path):
    ns.vxlan("vx-001001-aaaaa", 1001)                    # stale: down, no master
    ns.vxlan("vx-001002-bbbbb", 1002)                    # stale
    ns.vxlan("vx-001003-ccccc", 1003, up=True)           # up: in use
    ns.ip("link", "add", "br-ovl", "type", "bridge")
    ns.vxlan("vx-001004-ddddd", 1004, master="br-ovl")   # down but enslaved: in use
    ns.ip("link", "add", "vx-veth0", "type", "veth", "peer", "name", "vx-veth1")  # matches, but no vxlan
    ns.vxlan("other-vx0", 1005)                          # vxlan, down, no master, but not matching vx-*
    before = ns.links()
    survivors = set(before) - set(STALE)

    # the incident: the overlay cannot create its device again
    failed = ns.ip("link", "add", STALE[0], "type", "vxlan", "id", "1001", "dstport", "4789", check=False)
    assert failed.returncode != 0 and "File exists" in failed.stderr, failed

    # report mode: the first run only remembers, the second one reports; nothing is removed
    report = Collector(tmp_path / "report", ns, "report")
    log = report.run()
    assert counts(report) == ("0", "2", "0")
    assert all(f"{name} (ifindex {before[name]['ifindex']}) is down without master" in log for name in STALE), log
    assert report.state_entries() == {f"{before[n]['ifindex']} {n}" for n in STALE}
    log = report.run()
    assert counts(report) == ("2", "0", "0")
    assert all(f"stale VXLAN device {name} (ifindex {before[name]['ifindex']})" in log for name in STALE), log
    assert "netharden-vxlan-gc: done (mode report, pattern vx-*): 2 stale, 0 pending, 0 removed" in log
    assert ns.links() == before

    # remove mode with its own (empty) state: removed at the second run, never the devices in use
    remove = Collector(tmp_path / "remove", ns, "remove")
    remove.run()
    assert counts(remove) == ("0", "2", "0")
    assert ns.links() == before
    log = remove.run()
    assert counts(remove) == ("0", "0", "2")
    assert all(f"removed stale VXLAN device {name}" in log for name in STALE), log
    after = ns.links()
    assert set(after) == survivors
    assert all(after[n] == before[n] for n in survivors)
    assert remove.state_entries() == set()

    # the overlay can now create its device again
    ns.ip("link", "add", STALE[0], "type", "vxlan", "id", "1001", "dstport", "4789")
    assert ns.links()[STALE[0]]["kind"] == "vxlan"


def test_only_devices_stale_at_two_consecutive_runs_are_removed(ns, tmp_path):
    for i, name in enumerate(("vx-goes-up", "vx-enslaved", "vx-recreated", "vx-stays"), start=1):
        ns.vxlan(name, 2000 + i)
    ns.ip("link", "add", "br-ovl", "type", "bridge")
    gc = Collector(tmp_path / "gc", ns, "remove")
    gc.run()
    assert counts(gc) == ("0", "4", "0")
    first = ns.links()

    # between the runs: one comes up, one joins a bridge, one is deleted and created again
    ns.ip("link", "set", "vx-goes-up", "up")
    ns.ip("link", "set", "vx-enslaved", "master", "br-ovl")
    ns.ip("link", "del", "vx-recreated")
    ns.vxlan("vx-recreated", 2003)
    recreated = ns.links()["vx-recreated"]["ifindex"]
    assert recreated != first["vx-recreated"]["ifindex"]

    gc.run()
    assert counts(gc) == ("0", "1", "1")
    links = ns.links()
    assert "vx-stays" not in links
    assert links["vx-goes-up"]["up"] and links["vx-enslaved"]["master"] == "br-ovl"
    assert gc.state_entries() == {f"{recreated} vx-recreated"}  # starts over under its new ifindex

    # stale again after being in use: it starts over too; the recreated one is removed now
    ns.ip("link", "set", "vx-goes-up", "down")
    gc.run()
    assert counts(gc) == ("0", "1", "1")
    links = ns.links()
    assert "vx-recreated" not in links and "vx-goes-up" in links and "vx-enslaved" in links
    assert gc.state_entries() == {f"{links['vx-goes-up']['ifindex']} vx-goes-up"}


def test_glob_pattern_and_missing_textfile_dir(ns, tmp_path):
    ns.vxlan("vxlan10", 3010)
    ns.vxlan("vxlan2x", 3011)
    missing = tmp_path / "no-such-dir"
    gc = Collector(tmp_path / "gc", ns, "remove", pattern="vxlan[0-9][0-9]")
    gc.textfile.rmdir()
    gc.argv[gc.argv.index("--textfile-dir") + 1] = str(missing)
    for _ in range(2):
        log = gc.run(env={"JOURNAL_STREAM": "8:1234"})
    assert f"<4>textfile directory {missing} does not exist: metric not written" in log.splitlines()
    assert "<5>removed stale VXLAN device vxlan10 " in log
    assert not missing.exists()  # it belongs to node-exporter: never created
    assert set(ns.links()) >= {"vxlan2x"} and "vxlan10" not in ns.links()
