"""Incident 5 replayed in throwaway network namespaces: the rendered container args,
applied with ``sysctl -w`` inside the namespace the way the runtime applies ``--sysctl``,
make ``ip -6 addr add`` succeed where the runtime's ``disable_ipv6=1`` made it fail.

How docker does it (checked against docker 20.10.24 + runc 1.1.5, and the runc source):
libnetwork's SetKey prestart hook moves the veth into the container's namespace as eth0
(docker >= 20.10 also wrote net.ipv6.conf.{all,default,eth0,lo}.disable_ipv6=1 for a
network without IPv6); only then does ``runc init`` write every ``--sysctl`` to
/proc/sys inside the namespace, in Go map order (random), before the process starts.
So the replay is: disable IPv6 (all + default), create eth0 inside the namespace (it
inherits disable_ipv6=1), apply the rendered ``--sysctl`` arguments in file order and in
reverse order, then add an IPv6 address to eth0 and to an interface created afterwards
(openvpn's tun0 comes up after the container started).

Older iproute2/kernels print "RTNETLINK answers: Permission denied" for the refused
address, newer ones "Error: ipv6: IPv6 is disabled on this device." (extack).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

import netharden
from helpers import EXAMPLES, ROOT, require
from netharden.renderers.containers import args_path

pytestmark = pytest.mark.netns

INCIDENT5 = ROOT / "examples" / "incident-5-container-ipv6.yaml"
NS_PREFIX = "nhlab-"  # the lab harness cleanup_stale() removes ours too if pytest is killed
REFUSED = ("RTNETLINK answers: Permission denied", "IPv6 is disabled on this device")
ADDR, LATER_ADDR = "2001:db8:5::2/64", "2001:db8:6::2/64"


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "sysctl"):
        if shutil.which(tool) is None:
            return f"'{tool}' not found in PATH (iproute2, procps)"
    probe = f"{NS_PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None if made.returncode == 0 else f"cannot create a network namespace: {made.stderr.strip()}"


@pytest.fixture(autouse=True, scope="module")
def _needs_namespaces():
    reason = _unavailable()
    require(None if reason is None else f"network namespaces unavailable: {reason}")


@contextlib.contextmanager
def netns():
    name = f"{NS_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        yield name
    finally:  # interfaces inside die with the namespace
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        assert not Path(f"/run/netns/{name}").exists(), f"namespace {name} left behind"


def run(ns: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=30)


def ok(ns: str, *argv: str) -> str:
    proc = run(ns, *argv)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr}"
    return proc.stdout


def runtime_disables_ipv6(ns: str) -> None:
    """What the runtime did: IPv6 off for the namespace, then eth0 moved in (inherits it)."""
    ok(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    ok(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")
    assert ok(ns, "sysctl", "-n", "net.ipv6.conf.eth0.disable_ipv6").strip() == "1"


def add_address(ns: str, ifname: str, address: str) -> subprocess.CompletedProcess:
    return run(ns, "ip", "-6", "addr", "add", address, "dev", ifname)


def assert_refused(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode != 0 and any(text in proc.stderr for text in REFUSED), proc.stderr


def sysctl_args(profile_path: Path, container: str) -> list[tuple[str, str]]:
    """(key, value) of every --sysctl=KEY=VALUE line of the RENDERED .args file."""
    plan = netharden.plan(netharden.load(profile_path))
    text = next(f.content for f in plan.files if f.path == args_path(container))
    pairs = [tuple(line.removeprefix("--sysctl=").split("=", 1)) for line in text.splitlines()
             if line.startswith("--sysctl=")]
    assert pairs, f"no --sysctl line in {args_path(container)}:\n{text}"
    return pairs


def apply(ns: str, pairs) -> None:
    """One ``sysctl -w KEY=VALUE`` per argument, inside the namespace, like runc's writes."""
    for key, value in pairs:
        ok(ns, "sysctl", "-q", "-w", f"{key}={value}")


@pytest.mark.parametrize("order", ["file-order", "reverse-order"])
def test_rendered_args_enable_ipv6_where_the_runtime_disabled_it(order):
    pairs = sysctl_args(INCIDENT5, "openvpn")
    if order == "reverse-order":  # runc iterates a Go map: any order must give the same result
        pairs = pairs[::-1]
    with netns() as ns:
        runtime_disables_ipv6(ns)
        assert_refused(add_address(ns, "eth0", ADDR))  # the incident
        apply(ns, pairs)
        proc = add_address(ns, "eth0", ADDR)
        assert proc.returncode == 0, proc.stderr
        assert ADDR in ok(ns, "ip", "-6", "addr", "show", "dev", "eth0")
        # an interface created after the container started (openvpn's tun0) gets IPv6 too
        ok(ns, "ip", "link", "add", "later0", "type", "veth", "peer", "name", "later0-peer")
        proc = add_address(ns, "later0", LATER_ADDR)
        assert proc.returncode == 0, proc.stderr


def test_default_alone_does_not_reach_eth0():
    """Control: the replay can fail. default.disable_ipv6=0 only reaches interfaces created
    later; eth0 was already in the namespace when the runtime wrote the sysctls, which is
    why the profile carries net.ipv6.conf.all.disable_ipv6=0."""
    with netns() as ns:
        runtime_disables_ipv6(ns)
        apply(ns, [("net.ipv6.conf.default.disable_ipv6", "0")])
        assert_refused(add_address(ns, "eth0", ADDR))
        ok(ns, "ip", "link", "add", "later0", "type", "veth", "peer", "name", "later0-peer")
        assert add_address(ns, "later0", LATER_ADDR).returncode == 0


CONTAINERS = [(path, c.name) for path in EXAMPLES for c in netharden.load(path).containers]


@pytest.mark.parametrize("path,container", CONTAINERS, ids=[f"{p.stem}:{c}" for p, c in CONTAINERS])
def test_every_example_container_sysctl_exists_in_a_fresh_namespace(path, container):
    """Not every net.* key is per namespace (many net.core.* are not): runc would fail to
    start the container on a key /proc/sys of a new namespace does not have."""
    with netns() as ns:
        ok(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")
        for key, value in sysctl_args(path, container):
            ok(ns, "sysctl", "-q", "-w", f"{key}={value}")
            assert ok(ns, "sysctl", "-n", key).split() == value.split()
