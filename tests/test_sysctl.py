"""Host sysctls: /etc/sysctl.d/90-netharden.conf, loaded for real by procps ``sysctl -p``
(the post-apply action) and by systemd-sysctl (what boot does), inside a throwaway
network namespace so the host's own settings are never touched."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from helpers import minimal, netharden_plan, require

PATH = "/etc/sysctl.d/90-netharden.conf"
SYSCTLS = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.br/0.rp_filter": 2, "net.ipv6.conf.all.forwarding": "1",
           "net.ipv4.ping_group_range": "0 2147483647"}


def _plan(sysctl: dict):
    return netharden_plan(minimal(sysctl=sysctl))


def test_file_and_action():
    plan = _plan(SYSCTLS)
    (f,) = [f for f in plan.files if f.path == PATH]
    body = [line for line in f.content.splitlines() if line and not line.startswith("#")]
    assert body == ["net.ipv4.conf.br/0.rp_filter = 2", "net.ipv4.ip_forward = 1",
                    "net.ipv4.ping_group_range = 0 2147483647", "net.ipv6.conf.all.forwarding = 1"]
    (action,) = [a for a in plan.actions if a.id == "sysctl-load"]
    assert action.argv == ("sysctl", "-p", PATH) and not action.disruptive
    assert [a.id for a in plan.actions].index("sysctl-load") < [a.id for a in plan.actions].index("networkd-reload")


def test_nothing_without_sysctls():
    plan = _plan({})
    assert PATH not in {f.path for f in plan.files} and "sysctl-load" not in {a.id for a in plan.actions}


def _systemd_sysctl() -> str | None:
    return next((p for p in ("/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl") if os.path.exists(p)), None)


@pytest.mark.netns
@pytest.mark.parametrize("loader", ["action", "systemd-sysctl"])
def test_loaded_for_real_in_a_network_namespace(tmp_path, loader):
    require(None if os.geteuid() == 0 and shutil.which("ip") else "needs root and iproute2 (ip netns)")
    require(None if shutil.which("sysctl") else "procps 'sysctl' is not installed")
    plan = _plan(SYSCTLS)
    conf = tmp_path / "90-netharden.conf"
    conf.write_text(next(f.content for f in plan.files if f.path == PATH))
    if loader == "action":
        (action,) = [a for a in plan.actions if a.id == "sysctl-load"]
        argv = [str(conf) if arg == PATH else arg for arg in action.argv]
    else:
        binary = _systemd_sysctl()
        require(None if binary else "systemd-sysctl is not installed")
        argv = [binary, str(conf)]
    ns = f"nh-sysctl-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "br.0", "type", "bridge"], check=True)
        before = _read(ns, "ipv4/conf/br.0/rp_filter")
        subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True)
        assert before != "2"
        assert _read(ns, "ipv4/conf/br.0/rp_filter") == "2"  # the '/' spelling reached the dotted ifname
        assert _read(ns, "ipv4/ip_forward") == "1"
        assert _read(ns, "ipv6/conf/all/forwarding") == "1"
        assert _read(ns, "ipv4/ping_group_range").split() == ["0", "2147483647"]
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _read(ns: str, key: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "cat", f"/proc/sys/net/{key}"],
                          check=True, capture_output=True, text=True).stdout.strip()
