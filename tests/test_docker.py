"""The dockerd renderer and its validation rules: what each file says, the plan entries,
the defaults of extra daemons, the networking checks with their exact positions, the
rendered netharden-wait-bridge helper (shellcheck, and run for real in a throwaway network
namespace) and the units under systemd-analyze verify.

The real dockerd accepting and refusing the rendered daemon.json files is
tests/test_docker_dockerd.py.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

import netharden
from netharden.plan_model import PHASE_RUNTIME, PHASE_SYSTEMD
from netharden.problems import ProfileError
from netharden.profile import Daemon
from helpers import EXAMPLES, FULL_HOST, ini, minimal, need, plan_files, require

UNIT_DIR = "/etc/systemd/system"
DROPIN = f"{UNIT_DIR}/docker.service.d/50-netharden.conf"
BRIDGES = [{"name": "dockerbrci", "addresses": ["10.24.0.1/24", "fd00:24::1/64"]}]
CI = {"name": "ci", "bridge": "dockerbrci", "host": "unix:///var/run/docker-ci.sock"}


DEPS = "scripts/install-system-deps.sh installs it"


def need_root() -> None:
    require(None if os.geteuid() == 0 else "needs root (network and mount namespaces)")


def plan_of(daemons, bridges=BRIDGES, **extra):
    return netharden.plan(netharden.load(minimal(bridges=bridges, docker={"daemons": daemons}, **extra)))


def problems(daemons, bridges=BRIDGES, **extra) -> list[tuple[str, str, str]]:
    """(JSON path, message, hint) of every problem of a profile that must be refused."""
    text = json.dumps(minimal(bridges=bridges, docker={"daemons": daemons}, **extra))
    with pytest.raises(ProfileError) as err:
        netharden.loads(text, "p.yaml")
    return [(p.format().rsplit("(at ", 1)[1].split(")")[0], p.message, p.hint) for p in err.value.problems]


# ------------------------------------------------------------------------ rendering
def test_full_host_renders_every_docker_file():
    plan = netharden.plan(netharden.load(FULL_HOST))
    f = plan_files(plan)
    assert json.loads(f["/etc/docker/daemon.json"]) == {"bip": "172.17.0.1/16", "mtu": 1450}
    assert json.loads(f["/etc/docker/jenkins/daemon.json"]) == {
        "bridge": "dockerbrjenkins", "containerd-namespace": "docker-jenkins",
        "data-root": "/var/lib/docker-jenkins", "exec-root": "/var/run/docker-jenkins",
        "hosts": ["unix:///var/run/docker-jenkins.sock"], "iptables": False, "pidfile": "/var/run/docker-jenkins.pid"}
    unit = ini(f[f"{UNIT_DIR}/docker-jenkins.service"])
    assert unit["Service"]["ExecStart"] == [
        "dockerd --config-file /etc/docker/jenkins/daemon.json --containerd-plugins-namespace docker-jenkins-plugins"]
    # flatcar: helpers live under /opt (read-only /usr)
    assert unit["Service"]["ExecStartPre"] == ["/opt/netharden/bin/netharden-wait-bridge dockerbrjenkins 60 10.24.0.1/24"]
    assert unit["Unit"]["After"] == ["network-online.target firewalld.service systemd-networkd.service netharden-quarantine.service"]
    assert unit["Unit"]["Wants"] == ["network-online.target systemd-networkd.service netharden-quarantine.service"]
    assert unit["Service"]["Type"] == ["notify"] and unit["Service"]["KillMode"] == ["process"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    dropin = ini(f[DROPIN])
    assert dropin == {"Unit": {"After": ["systemd-networkd.service netharden-quarantine.service"],
                               "Wants": ["systemd-networkd.service netharden-quarantine.service"]}}
    assert plan_by_path(plan)["/opt/netharden/bin/netharden-wait-bridge"].mode == 0o755


def plan_by_path(plan):
    return {f.path: f for f in plan.files}


def test_daemon_json_is_sorted_two_space_json_with_a_final_newline():
    plan = plan_of([{"name": "docker", "settings": {"mtu": 1450, "bip": "172.30.0.1/16", "log-driver": "journald",
                                                   "registry-mirrors": ["https://mirror.example"]}}])
    text = plan_files(plan)["/etc/docker/daemon.json"]
    assert text == textwrap.dedent("""\
        {
          "bip": "172.30.0.1/16",
          "log-driver": "journald",
          "mtu": 1450,
          "registry-mirrors": [
            "https://mirror.example"
          ]
        }
        """)


def test_main_daemon_settings_pass_through_untouched():
    settings = {"log-opts": {"max-size": "10m"}, "features": {"buildkit": True}, "iptables": True, "mtu": 9000}
    plan = plan_of([{"name": "docker", "settings": settings}])
    assert json.loads(plan_files(plan)["/etc/docker/daemon.json"]) == settings
    assert not [u for u in plan.units if u.name.startswith("docker")]  # the packaged unit keeps its enablement


def test_main_daemon_on_a_netharden_bridge_gets_bridge_and_the_wait():
    plan = plan_of([{"name": "docker", "bridge": "dockerbrci", "settings": {"fixed-cidr": "10.24.0.128/25"}}])
    f = plan_files(plan)
    assert json.loads(f["/etc/docker/daemon.json"]) == {"bridge": "dockerbrci", "fixed-cidr": "10.24.0.128/25"}
    dropin = ini(f[DROPIN])
    assert dropin["Service"]["ExecStartPre"] == [
        "/usr/local/libexec/netharden/netharden-wait-bridge dockerbrci 60 10.24.0.1/24 fd00:24::1/64"]


def test_extra_daemon_defaults_are_decided_in_normalize():
    profile = netharden.load(minimal(bridges=BRIDGES, docker={"daemons": [
        {"name": "ci", "bridge": "dockerbrci", "host": "/var/run/docker-ci.sock",
         "settings": {"data-root": "/srv/docker-ci", "iptables": False}}]}))
    (d,) = profile.daemons
    assert (d.main, d.unit, d.config_path) == (False, "docker-ci.service", "/etc/docker/ci/daemon.json")
    assert (d.data_root, d.exec_root, d.pidfile) == ("/srv/docker-ci", "/var/run/docker-ci", "/var/run/docker-ci.pid")
    assert d.host == "unix:///var/run/docker-ci.sock"  # a bare path means unix://
    assert (d.containerd_namespace, d.plugins_namespace) == ("docker-ci", "docker-ci-plugins")
    assert d.daemon_json()["iptables"] is False and d.daemon_json()["data-root"] == "/srv/docker-ci"
    main = Daemon.from_data({"name": "docker", "settings": {"bip": "172.30.0.1/16"}})
    assert main.main and main.daemon_json() == {"bip": "172.30.0.1/16"} and main.data_root is None


def test_extra_daemon_without_network():
    plan = plan_of([{"name": "bootstrap", "host": "unix:///var/run/docker-bootstrap.sock",
                     "settings": {"bridge": "none"}}], bridges=[])
    f = plan_files(plan)
    config = json.loads(f["/etc/docker/bootstrap/daemon.json"])
    assert config["bridge"] == "none" and config["iptables"] is False
    assert "ExecStartPre" not in ini(f[f"{UNIT_DIR}/docker-bootstrap.service"])["Service"]
    assert not any(p.endswith("/netharden-wait-bridge") for p in f)  # no bridge, no helper


def test_plan_units_and_actions():
    plan = plan_of([{"name": "docker"}, CI])
    assert [(u.name, u.enabled) for u in plan.units if u.name.startswith("docker")] == [("docker-ci.service", True)]
    actions = {a.id: a for a in plan.actions}
    assert actions["systemd-daemon-reload"].phase == PHASE_SYSTEMD
    start = actions["docker-ci-start"]
    assert start.argv == ("systemctl", "start", "docker-ci.service") and start.phase == PHASE_RUNTIME
    assert not start.disruptive
    for unit in ("docker", "docker-ci"):
        restart = actions[f"{unit}-restart"]
        assert restart.argv == ("systemctl", "try-restart", f"{unit}.service")
        assert restart.disruptive and restart.phase == PHASE_RUNTIME
    f = plan_by_path(plan)
    assert "incident-3" in f["/etc/docker/ci/daemon.json"].guards
    assert "incident-2" in f[DROPIN].guards and "incident-2" in f[f"{UNIT_DIR}/docker-ci.service"].guards


def test_no_dropin_without_a_main_daemon_and_no_quarantine_ordering_without_quarantine():
    plan = plan_of([CI], networkd={"quarantine": []})
    f = plan_files(plan)
    assert DROPIN not in f
    unit = ini(f[f"{UNIT_DIR}/docker-ci.service"])
    assert "netharden-quarantine.service" not in unit["Unit"]["After"][0]
    assert "netharden-quarantine.service" not in unit["Unit"]["Wants"][0]


def test_nothing_rendered_without_daemons():
    plan = netharden.plan(netharden.load(minimal()))
    assert not [f.path for f in plan.files if f.path.startswith(("/etc/docker/", f"{UNIT_DIR}/docker"))
                or f.path.endswith("/netharden-wait-bridge")]
    assert not [a.id for a in plan.actions if a.id.startswith("docker")]


@pytest.mark.parametrize("os_name, version, binary", [
    ("debian", 252, "dockerd"), ("flatcar", 241, "dockerd"), ("generic", 239, "dockerd"),
    ("debian", 238, "/usr/sbin/dockerd"), ("ubuntu", 237, "/usr/bin/dockerd"), ("generic", 237, "/usr/bin/dockerd"),
])
def test_dockerd_binary_per_target(os_name, version, binary):
    plan = plan_of([CI], platform={"os": os_name, "systemd": version})
    unit = next(c for p, c in plan_files(plan).items() if p.endswith("docker-ci.service"))
    assert ini(unit)["Service"]["ExecStart"][0].split()[0] == binary


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_render_deterministically(path):
    first, second = (netharden.plan(netharden.load(path)).to_dict() for _ in range(2))
    assert first == second
    for f in first["files"]:
        if f["path"].endswith("daemon.json"):
            config = json.loads(f["content"])
            assert f["content"] == json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------- validation
def only(found):
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("settings, path, message, hint", [
    ({"iptables": "true"}, "settings.iptables", "expected true or false, got the string 'true'", "without quotes"),
    ({"mtu": 70000}, "settings.mtu", "MTU 70000 is out of range: must be at most 65535", ""),
    ({"mtu": "1450"}, "settings.mtu", "expected an integer, got the string '1450'", ""),
    ({"bip": "172.30.0.0/16"}, "settings.bip", "is the network address of 172.30.0.0/16", "did you mean 172.30.0.1/16?"),
    ({"bip": "fd00::1/64"}, "settings.bip", "is not an IPv4 address", "fixed-cidr-v6"),
    ({"bip": "172.30.0.1/16", "fixed-cidr": "172.30.1.5/24"}, "settings.fixed-cidr", "has host bits set", "did you mean 172.30.1.0/24?"),
    ({"bip": "172.30.0.1/16", "fixed-cidr": "172.31.0.0/24"}, "settings.fixed-cidr", "is outside bip 172.30.0.1/16", "inside 172.30.0.0/16"),
    ({"fixed-cidr-v6": "fd00:1::/64"}, "settings.fixed-cidr-v6", "ignores fixed-cidr-v6 without ipv6: true", "add ipv6: true"),
    ({"ipv6": True, "fixed-cidr-v6": "10.1.0.0/24"}, "settings.fixed-cidr-v6", "is not an IPv6 network", ""),
    ({"ipv6": True}, "settings.ipv6", "no subnet is configured", "add fixed-cidr-v6"),
    ({"ip6tables": True}, "settings.ip6tables", "refuses ip6tables without experimental: true", "experimental: true"),
    ({"iptables": False, "icc": False}, "settings.icc", "refuses icc: false with iptables off", ""),
    ({"iptables": False, "ip-masq": True}, "settings.ip-masq", "ignores ip-masq with iptables off", "masquerade"),
    ({"bip": "172.30.0.1/16", "bridge": "br-ext"}, "settings.bip", "mutually exclusive", "drop bip or settings.bridge"),
    ({"hosts": ["unix:///var/run/docker.sock"]}, "settings.hosts", "-H fd://", "drop settings.hosts"),
    ({"default-address-pool": []}, "settings.default-address-pool", "but ignores it", "default-address-pools"),
    ({"host": ["unix:///x.sock"]}, "settings.host", "but ignores it", "'host' key"),
    ({"containerd-plugin-namespace": "x"}, "settings.containerd-plugin-namespace", "refuses the daemon.json key", ""),
    ({"fixed_cidr": "10.1.0.0/24"}, "settings.fixed_cidr", "unknown daemon.json key 'fixed_cidr'", "did you mean 'fixed-cidr'?"),
    ({"IPv6": True}, "settings.IPv6", "unknown daemon.json key 'IPv6'", "did you mean 'ipv6'?"),
    ({"default-address-pools": [{"base": "10.200.0.0/16", "size": 8}]}, "settings.default-address-pools[0].size",
     "pool size 8 does not fit base 10.200.0.0/16", "from 16 to 32"),
    ({"default-address-pools": [{"base": "10.200.0.0/16", "size": 33}]}, "settings.default-address-pools[0].size",
     "pool size 33 does not fit", "from 16 to 32"),
    ({"default-address-pools": [{"base": "fd00:1::/48", "size": 64}]}, "settings.default-address-pools[0].base",
     "the first pool fd00:1::/48 is IPv6", "IPv4 pool first"),
    ({"default-address-pools": [{"base": "10.200.0.0/16"}]}, "settings.default-address-pools[0]", "missing required key 'size'", ""),
    ({"dns": ["1.2.3"]}, "settings.dns[0]", "invalid IP address '1.2.3'", ""),
    ({"dns-search": ["bad domain"]}, "settings.dns-search[0]", "invalid DNS search domain", ""),
    ({"default-address-pools": [{"base": "192.0.2.0/24", "size": 28}]}, "settings.default-address-pools[0].base",
     "overlaps 192.0.2.10/24 on uplink 'lan'", "shadow"),
])
def test_main_daemon_setting_problems(settings, path, message, hint):
    at, msg, got_hint = only(problems([{"name": "docker", "settings": settings}],
                                      uplinks=[{"name": "lan", "addresses": ["192.0.2.10/24"]}]))
    assert at == f"$.docker.daemons[0].{path}"
    assert message in msg and hint in got_hint, (msg, got_hint)


@pytest.mark.parametrize("daemon, path, message, hint", [
    ({**CI, "settings": {"bip": "10.25.0.1/24"}}, "settings.bip", "is attached to bridge 'dockerbrci'", "addresses of bridge"),
    ({**CI, "settings": {"bridge": "dockerbrci"}}, "settings.bridge", "the bridge is set twice", "drop settings.bridge"),
    ({**CI, "settings": {"hosts": ["unix:///x.sock"]}}, "settings.hosts", "from its 'host' key", "drop settings.hosts"),
    ({**CI, "settings": {"fixed-cidr": "10.25.0.0/25"}}, "settings.fixed-cidr", "outside the IPv4 subnets of bridge 'dockerbrci'", "10.24.0.0/24"),
    ({**CI, "settings": {"icc": False}}, "settings.icc", "iptables: false is the default for extra daemons", ""),
    ({**CI, "settings": {"data-root": "/var/lib/docker/ci"}}, "settings.data-root",
     "collides with /var/lib/docker of the main daemon's default", "its own data-root"),
    ({**CI, "settings": {"exec-root": "/run/docker"}}, "settings.exec-root", "collides with /run/docker", ""),
    ({**CI, "host": "unix:///run/docker.sock"}, "host", "belongs to the main daemon", "docker-ci.sock"),
    ({**CI, "host": "fd://"}, "host", "needs socket activation", "docker-ci.sock"),
    ({"name": "ci", "host": "unix:///var/run/docker-ci.sock"}, "", "needs its own bridge", "settings.bridge: none"),
    ({"name": "ci", "bridge": "dockerbrci"}, "", "needs its own 'host' socket", "docker-ci.sock"),
    ({"name": "ci"}, "", "needs its own 'host' socket and its own bridge", "settings.bridge: none"),
    ({"name": "ci", "host": "unix:///var/run/docker-ci.sock", "settings": {"bridge": "br-ext"}}, "settings.bridge",
     "extra daemons attach to a bridge from 'bridges'", "under 'bridges'"),
])
def test_extra_daemon_problems(daemon, path, message, hint):
    at, msg, got_hint = only(problems([daemon]))
    assert at == "$.docker.daemons[0]" + (f".{path}" if path else "")
    assert message in msg and hint in got_hint, (msg, got_hint)


def test_bridge_without_ipv4_address():
    at, msg, hint = only(problems([{**CI, "bridge": "dockerbrv6"}],
                                  bridges=[{"name": "dockerbrv6", "addresses": ["fd00:6::1/64"]}]))
    assert at == "$.docker.daemons[0].bridge" and "has no IPv4 address" in msg and "addresses" in hint


def test_two_daemons_managing_iptables():
    found = problems([{"name": "docker"}, {**CI, "settings": {"iptables": True}}])
    at, msg, hint = only(found)
    assert at == "$.docker.daemons[1].settings.iptables"
    assert "'ci' and daemon 'docker' both manage iptables" in msg and "iptables: false" in hint
    # one manager is fine: the main daemon off, the extra on
    netharden.load(minimal(bridges=BRIDGES, docker={"daemons": [{"name": "docker", "settings": {"iptables": False}},
                                                                 {**CI, "settings": {"iptables": True}}]}))


def test_main_daemon_host_other_than_the_packaged_socket():
    at, msg, hint = only(problems([{"name": "docker", "host": "unix:///var/run/other.sock"}]))
    assert at == "$.docker.daemons[0].host" and "-H fd://" in msg and "drop 'host'" in hint
    for same in ("unix:///var/run/docker.sock", "/run/docker.sock"):
        netharden.load(minimal(docker={"daemons": [{"name": "docker", "host": same}]}))


def test_positions_are_the_offending_value_or_key():
    text = textwrap.dedent("""\
        apiVersion: netharden/v1
        kind: HostProfile
        metadata: {name: host-a}
        docker:
          daemons:
            - name: docker
              settings:
                bip: 172.30.0.0/16
                fixed_cidr: 172.30.1.0/24
                userland-proxy: "false"
        """)
    with pytest.raises(ProfileError) as err:
        netharden.loads(text, "p.yaml")
    shown = [p.format().splitlines()[0] for p in err.value.problems]
    assert shown == [
        "p.yaml:8:14: error: bip 172.30.0.0/16 is the network address of 172.30.0.0/16; dockerd needs the bridge's own address (at $.docker.daemons[0].settings.bip)",
        "p.yaml:9:9: error: unknown daemon.json key 'fixed_cidr' (at $.docker.daemons[0].settings.fixed_cidr)",
        "p.yaml:10:25: error: expected true or false, got the string 'false' (at $.docker.daemons[0].settings.userland-proxy)",
    ]


def test_valid_networking_settings_pass():
    netharden.load(minimal(bridges=BRIDGES, docker={"daemons": [
        {"name": "docker", "settings": {
            "bip": "172.30.0.1/16", "fixed-cidr": "172.30.8.0/21", "ipv6": True, "fixed-cidr-v6": "fd00:30::/64",
            "ip6tables": True, "experimental": True, "iptables": True, "ip-forward": True, "ip-masq": True,
            "icc": False, "mtu": 1450, "userland-proxy": False, "dns": ["192.0.2.53", "2001:db8::53"],
            "dns-search": ["example.com", "."], "unknown-future-key": {"anything": 1},
            "default-address-pools": [{"base": "10.200.0.0/16", "size": 24}, {"base": "fd00:200::/48", "size": 64}]}},
        {**CI, "settings": {"fixed-cidr": "10.24.0.128/25", "dns": ["10.24.0.1"]}},
        {"name": "bootstrap", "host": "/var/run/docker-bootstrap.sock", "settings": {"bridge": "none", "ip-masq": False}},
    ]}))


# ------------------------------------------------------------ the wait-bridge helper
def helper_text() -> str:
    plan = plan_of([CI])
    return plan_files(plan)["/usr/local/libexec/netharden/netharden-wait-bridge"]


def test_rendered_wait_bridge_passes_shellcheck():
    shellcheck = need("shellcheck", DEPS)
    done = subprocess.run([shellcheck, "--severity=style", "-s", "sh", "-"], input=helper_text(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def helper(tmp_path) -> Path:
    path = tmp_path / "wait-bridge"
    path.write_text(helper_text())
    path.chmod(0o755)
    return path


def in_netns(script: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a sh script in a throwaway network namespace (it dies with the script)."""
    need_root()
    need("unshare", DEPS)
    need("ip", DEPS)
    return subprocess.run(["unshare", "--net", "--", "sh", "-eu", "-c", script, "sh", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.netns
def test_wait_bridge_returns_once_networkd_would_have_configured_the_bridge(helper):
    # the helper polls once a second; the bridge appears, then its addresses one by one
    script = """
        "$1" dockerbrci 20 10.24.0.1/24 fd00:24::1/64 & pid=$!
        sleep 1.5; kill -0 "$pid"; echo "no bridge: waiting"
        ip link add dockerbrci type bridge
        sleep 1.5; kill -0 "$pid"; echo "no address: waiting"
        ip addr add 10.24.0.1/24 dev dockerbrci
        sleep 1.5; kill -0 "$pid"; echo "one address: waiting"
        ip addr add fd00:24::1/64 dev dockerbrci
        wait "$pid"; echo "ready: rc $?"
    """
    start = time.monotonic()
    done = in_netns(script, str(helper))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split("\n")[:4] == ["no bridge: waiting", "no address: waiting", "one address: waiting", "ready: rc 0"]
    assert time.monotonic() - start < 15


@pytest.mark.netns
def test_wait_bridge_gives_up_after_its_timeout(helper):
    done = in_netns('ip link add dockerbrci type bridge; "$1" dockerbrci 2 10.24.0.1/24', str(helper))
    assert done.returncode == 1
    assert "netharden-wait-bridge: dockerbrci did not come up with 10.24.0.1/24 within 2s" in done.stderr
    done = in_netns('"$1" nosuchbr0 1', str(helper))
    assert done.returncode == 1 and "nosuchbr0 did not come up with its device within 1s" in done.stderr


@pytest.mark.parametrize("args", [[], ["dockerbrci"], ["dockerbrci", "soon"], ["a/b", "3"], ["", "3"]])
def test_wait_bridge_refuses_bad_arguments(helper, args):
    done = subprocess.run([str(helper), *args], capture_output=True, text=True, timeout=10)
    assert done.returncode == 2 and done.stderr.startswith("usage: netharden-wait-bridge")


# -------------------------------------------------------------- systemd-analyze verify
VERIFY = r"""
set -eu
tree=$1; shift
# private mounts: the rendered helpers and units replace /opt, /usr/local and
# /etc/systemd/system for this process only; the packaged docker.service stays visible
for d in /opt /usr/local /etc/systemd/system; do
    mount -t tmpfs nhd-verify "$d"
    if [ -d "$tree$d" ]; then cp -a "$tree$d/." "$d/"; fi
done
cd /etc/systemd/system
exec systemd-analyze verify "$@"
"""


@pytest.mark.netns
@pytest.mark.parametrize("os_name", ["debian", "flatcar"])
def test_units_pass_systemd_analyze_verify(tmp_path, os_name):
    """Every unit and drop-in, verified against this host's systemd, dockerd and the
    packaged docker.service (the drop-in is checked merged into it)."""
    need_root()
    need("systemd-analyze", DEPS)
    require(None if Path("/lib/systemd/system/docker.service").exists() and shutil.which("dockerd")
            else f"docker.io is not installed ({DEPS})")
    plan = plan_of([{"name": "docker", "bridge": "dockerbrci"},
                    {"name": "jenkins", "bridge": "dockerbrjenkins", "host": "unix:///var/run/docker-jenkins.sock"},
                    {"name": "bootstrap", "host": "unix:///var/run/docker-bootstrap.sock", "settings": {"bridge": "none"}}],
                   bridges=BRIDGES + [{"name": "dockerbrjenkins", "addresses": ["10.25.0.1/24"]}],
                   platform={"os": os_name})
    netharden.emit(plan, "tree", tmp_path / "tree")
    units = ["docker.service", "docker-jenkins.service", "docker-bootstrap.service"]
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", VERIFY, "sh",
                           str(tmp_path / "tree"), *units], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert shlex.split(ini(plan_files(plan)[DROPIN])["Service"]["ExecStartPre"][0])[0].endswith("/netharden-wait-bridge")
