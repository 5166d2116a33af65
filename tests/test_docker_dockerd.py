"""The rendered daemon.json files under the REAL dockerd (Debian's docker.io 20.10).

Each dockerd runs in throwaway network, mount and PID namespaces (``unshare --net
--mount --pid --fork --kill-child --mount-proc``) with:

- tmpfs over /run (so /run/docker.sock, /run/containerd and /var/run/docker* of the
  host are never touched) and over /etc/docker (dockerd 20.10 writes its trust key,
  /etc/docker/key.json, there whatever --config-file says);
- private --data-root/--exec-root/--pidfile and a unix socket in a short temp dir
  (the managed containerd's socket lives under the exec-root and must stay under the
  108-byte socket path limit);
- a clean environment: no DOCKER_* variables, no NOTIFY_SOCKET;
- dockerd as PID 1 of its PID namespace: the managed containerd it starts (no
  "containerd" key: dockerd 20.10 spawns one under its exec-root) dies with it.

Main daemon: the rendered /etc/docker/daemon.json with the state paths and ``-H
unix://...`` as flags, like the packaged docker.service passes ``-H fd://``: a "hosts"
key conflicts exactly as it would there. Extra daemons: the ExecStart= argv of the
rendered docker-NAME.service (dockerd's path and the --config-file value replaced), and
the rendered daemon.json with data-root, exec-root, pidfile and hosts pointed at the
temp dir: that is the only rewrite (the test asserts it). The daemon's bridge is created
in the namespace with the addresses of its 'bridges' entry, and the unit's
ExecStartPre= (the rendered wait-bridge helper) runs before dockerd.

A start counts when dockerd logs "API listen on"; then the whole process group is
SIGKILLed (dockerd is PID 1 of its namespace, so the kernel kills containerd too) and
the test asserts that no process of that PID namespace and nothing naming the temp dir
survives, and that the host paths above are as before. A refused configuration must
make dockerd exit non-zero with its own message, which the test asserts.

Needs root, dockerd, containerd, iptables, unshare and ip; skips without them, FAILS
under CI=true.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import netharden
from netharden.problems import ProfileError, json_path
from netharden.profile import Daemon
from netharden.templating import render as render_template
from helpers import EXAMPLES, minimal, require

pytestmark = pytest.mark.netns

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT = 60.0
# host paths a leaking dockerd would create or change
HOST_PATHS = ("/run/docker.sock", "/run/docker", "/run/docker.pid", "/var/lib/docker", "/etc/docker/key.json",
              "/run/containerd/containerd.sock", "/var/run/docker-jenkins.sock", "/var/lib/docker-jenkins")
OWNED_KEYS = {"data-root", "exec-root", "pidfile", "hosts"}

_PID1 = r"""
set -eu
mount -t tmpfs -o mode=0755 nhd-run /run
mount -t tmpfs -o mode=0755 nhd-etc-docker /etc/docker
ip link set lo up
eval "$NHD_SCRIPT"
"""


def dockerd_binary() -> str | None:
    return shutil.which("dockerd", path=PATH)


def unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"needs Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "needs root (network, mount and PID namespaces)"
    for tool in ("dockerd", "containerd", "iptables", "unshare", "ip", "mount", "nsenter"):
        if shutil.which(tool, path=PATH) is None:
            return f"{tool!r} not found (Debian: apt-get install docker.io iptables; scripts/install-system-deps.sh)"
    if not Path("/etc/docker").is_dir():
        return "/etc/docker is missing (docker.io ships it)"
    return None


@pytest.fixture(autouse=True)
def require_dockerd():
    reason = unavailable()
    require(None if reason is None else f"the real dockerd is unavailable: {reason}")


@pytest.fixture
def tmp() -> Path:
    # short: the managed containerd's sockets live under the exec-root (108-byte limit)
    path = Path(tempfile.mkdtemp(prefix="nhd-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _host_state() -> dict[str, bool]:
    return {p: os.path.lexists(p) for p in HOST_PATHS}


def _proc_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _read(path: str) -> str:
    try:
        return Path(path).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


@dataclass
class Outcome:
    started: bool
    returncode: int | None
    log: str


class Namespaces:
    """Runs ``script`` (sh) as PID 1 of fresh net+mount+PID namespaces; see the module doc."""

    def __init__(self, tmp: Path, script: str):
        self.tmp, self.script = tmp, script
        self.log_path = tmp / "log"
        self.proc: subprocess.Popen | None = None
        self.pid_ns: str | None = None

    def __enter__(self) -> "Namespaces":
        self.before = _host_state()
        env = {"PATH": PATH, "HOME": str(self.tmp), "LANG": "C.UTF-8", "NHD_SCRIPT": self.script}
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
             "--propagation", "private", "--", "sh", "-c", _PID1],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return self

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child(self) -> int | None:
        """PID (host view) of our namespace's PID 1."""
        for pid in _proc_pids():
            stat = _read(f"/proc/{pid}/stat")
            if stat and stat[stat.rfind(")") + 2:].split()[1] == str(self.proc.pid):
                return pid
        return None

    def wait_for(self, needle: str, timeout: float = START_TIMEOUT) -> Outcome:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid_ns is None and (pid := self.child()) is not None:
                self.pid_ns = _ns(pid)
            if needle in self.text():
                return Outcome(True, None, self.text())
            rc = self.proc.poll()
            if rc is not None:
                return Outcome(False, rc, self.text())
            time.sleep(0.05)
        raise AssertionError(f"neither {needle!r} nor an exit within {timeout}s:\n{self.text()[-4000:]}")

    def nsenter(self, *argv: str) -> str:
        pid = self.child()
        assert pid is not None, "the namespace is gone"
        done = subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", *argv], capture_output=True, text=True,
                              timeout=20, env={"PATH": PATH})
        return done.stdout + done.stderr

    def terminate(self, timeout: float = 30) -> str:
        """SIGTERM to dockerd (our PID 1): a graceful shutdown; returns the whole log."""
        pid = self.child()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return self.text()

    def __exit__(self, *exc) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=20)
        self.log.close()
        deadline = time.monotonic() + 20
        while (left := self.survivors()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"processes survived the namespace: {left}"
        assert _host_state() == self.before, "the host's docker paths changed"

    def survivors(self) -> list[str]:
        marker = str(self.tmp)
        out = []
        for pid in _proc_pids():
            if pid == os.getpid():
                continue
            cmd = _read(f"/proc/{pid}/cmdline")
            if (self.pid_ns is not None and _ns(pid) == self.pid_ns) or marker in cmd:
                out.append(f"{pid} {cmd.strip()}")
        return out


# ----------------------------------------------------------------------- building runs
def q(*argv: str) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def bridge_setup(name: str, addresses) -> str:
    lines = [q("ip", "link", "add", name, "type", "bridge")]
    lines += [q("ip", "addr", "add", a, "dev", name) for a in addresses]
    return "\n".join(lines) + "\n"


def main_argv(tmp: Path, config: Path) -> list[str]:
    return [dockerd_binary(), "--config-file", str(config), "--data-root", str(tmp / "data"),
            "--exec-root", str(tmp / "exec"), "--pidfile", str(tmp / "pid"), "-H", f"unix://{tmp / 'sock'}"]


def rewrite_extra(tmp: Path, text: str) -> Path:
    """The rendered extra daemon.json with its state paths and socket in ``tmp``: the only rewrite."""
    config = json.loads(text)
    rewritten = {**config, "data-root": str(tmp / "data"), "exec-root": str(tmp / "exec"),
                 "pidfile": str(tmp / "pid"), "hosts": [f"unix://{tmp / 'sock'}"]}
    assert {k for k in rewritten if rewritten[k] != config.get(k)} == OWNED_KEYS
    path = tmp / "daemon.json"
    path.write_text(json.dumps(rewritten, indent=2))
    return path


def unit_value(text: str, key: str) -> list[str] | None:
    lines = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]
    return shlex.split(lines[0]) if lines else None


def extra_argv(unit_text: str, config: Path) -> list[str]:
    argv = unit_value(unit_text, "ExecStart")
    assert argv[:3] == ["dockerd", "--config-file", argv[2]] and argv[2].startswith("/etc/docker/"), argv
    return [dockerd_binary(), "--config-file", str(config), *argv[3:]]


def wait_command(tmp: Path, plan_files: dict[str, str], argv: list[str] | None) -> str:
    """The unit's ExecStartPre= with the rendered helper copied into ``tmp``."""
    if not argv:
        return ""
    helper = tmp / "wait-bridge"
    helper.write_text(plan_files[argv[0]])
    helper.chmod(0o755)
    return q(str(helper), *argv[1:]) + "\n"


@dataclass
class Case:
    id: str
    profile: object       # path or mapping
    daemon: str


def daemon_cases() -> list[Case]:
    cases = []
    for path in EXAMPLES:
        for d in netharden.load(path).daemons:
            cases.append(Case(f"{path.stem}:{d.name}", path, d.name))
    for d in RICH["docker"]["daemons"]:
        cases.append(Case(f"rich:{d['name']}", RICH, d["name"]))
    return cases


# every networking key netharden types, in one valid profile
RICH = minimal(
    bridges=[{"name": "dockerbrci", "addresses": ["10.24.0.1/24", "fd00:24::1/64"]},
             {"name": "dockerbrmain", "addresses": ["10.23.0.1/24"]}],
    docker={"daemons": [
        {"name": "docker", "settings": {
            "bip": "172.30.0.1/16", "fixed-cidr": "172.30.8.0/21", "ipv6": True, "fixed-cidr-v6": "fd00:30::/64",
            "ip6tables": True, "experimental": True, "iptables": True, "ip-forward": True, "ip-masq": True,
            "icc": False, "mtu": 1450, "userland-proxy": False, "dns": ["192.0.2.53", "2001:db8::53"],
            "dns-search": ["example.com"], "log-level": "info",
            "default-address-pools": [{"base": "10.200.0.0/16", "size": 24}, {"base": "fd00:200::/48", "size": 64}]}},
        {"name": "ci", "bridge": "dockerbrci", "host": "unix:///var/run/docker-ci.sock",
         "settings": {"fixed-cidr": "10.24.0.128/25", "mtu": 1400, "dns": ["10.24.0.1"], "ip-forward": False,
                      "ipv6": True, "fixed-cidr-v6": "fd00:24::/64", "userland-proxy": False}},
        {"name": "bootstrap", "host": "/var/run/docker-bootstrap.sock",
         "settings": {"bridge": "none", "ip-masq": False}},
    ]})


def start_rendered(tmp: Path, case: Case) -> tuple[Namespaces, Daemon]:
    """The namespaces that run one daemon of a profile the way its unit would."""
    profile = netharden.load(case.profile)
    plan_files = {f.path: f.content for f in netharden.plan(profile).files}
    daemon = next(d for d in profile.daemons if d.name == case.daemon)
    bridges = {b.name: b.addresses for b in profile.bridges}
    text = plan_files[daemon.config_path]
    if daemon.main:
        config = tmp / "daemon.json"
        config.write_text(text)
        argv = main_argv(tmp, config)
        unit_text = plan_files.get("/etc/systemd/system/docker.service.d/50-netharden.conf", "")
    else:
        config = rewrite_extra(tmp, text)
        unit_text = plan_files[f"/etc/systemd/system/{daemon.unit}"]
        argv = extra_argv(unit_text, config)
    script = ""
    if daemon.bridge:
        script += bridge_setup(daemon.bridge, bridges[daemon.bridge])
    script += wait_command(tmp, plan_files, unit_value(unit_text, "ExecStartPre"))
    script += "exec " + q(*argv) + "\n"
    return Namespaces(tmp, script), daemon


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("case", daemon_cases(), ids=lambda c: c.id)
def test_rendered_daemon_json_is_accepted_by_dockerd(tmp, case):
    ns, daemon = start_rendered(tmp, case)
    with ns:
        outcome = ns.wait_for("API listen on")
        assert outcome.started, f"dockerd exited with {outcome.returncode}:\n{outcome.log[-4000:]}"
        assert f"API listen on {tmp / 'sock'}" in outcome.log
        # the leftover check at the exit sees the running daemon and its managed containerd
        running = ns.survivors()
        assert any("dockerd" in p for p in running) and any("containerd --config" in p for p in running), running
        if daemon.bridge:
            # dockerd took the bridge networkd configured, and added no address of its own
            shown = ns.nsenter("ip", "-o", "-4", "addr", "show", "dev", daemon.bridge)
            profile = netharden.load(case.profile)
            wanted = [a for b in profile.bridges if b.name == daemon.bridge for a in b.addresses if ":" not in a]
            assert sorted(line.split()[3] for line in shown.splitlines()) == sorted(wanted), shown
        log = ns.terminate()  # dockerd names the containerd namespaces it used when it shuts down
    if not daemon.main:
        # its own containerd namespaces (daemon.json and the unit's flag), not moby's
        assert f"namespace={daemon.containerd_namespace}" in log and f"namespace={daemon.plugins_namespace}" in log
        assert "namespace=moby" not in log and "namespace=plugins.moby" not in log


@dataclass
class Refused:
    id: str
    daemon: dict          # a docker.daemons entry netharden refuses
    path: str             # where netharden reports it
    dockerd_says: str     # dockerd's own message


REFUSED = [
    Refused("bip-with-bridge", {"name": "docker", "settings": {"bip": "10.1.0.1/24", "bridge": "none"}},
            "$.docker.daemons[0].settings.bip", "You specified -b & --bip, mutually exclusive options"),
    Refused("hosts-with-the-flag", {"name": "docker", "settings": {"hosts": ["unix:///run/nhd-other.sock"]}},
            "$.docker.daemons[0].settings.hosts",
            "the following directives are specified both as a flag and in the configuration file: hosts"),
    Refused("unknown-key", {"name": "docker", "settings": {"fixed_cidr": "10.1.0.0/24"}},
            "$.docker.daemons[0].settings.fixed_cidr",
            "the following directives don't match any configuration option: fixed_cidr"),
    Refused("plugin-namespace-key", {"name": "docker", "settings": {"containerd-plugin-namespace": "x"}},
            "$.docker.daemons[0].settings.containerd-plugin-namespace",
            "the following directives don't match any configuration option: containerd-plugin-namespace"),
    Refused("string-true", {"name": "docker", "settings": {"iptables": "true"}},
            "$.docker.daemons[0].settings.iptables", "cannot unmarshal string into Go struct field Config.iptables of type bool"),
    Refused("ipv6-without-subnet", {"name": "docker", "settings": {"ipv6": True}},
            "$.docker.daemons[0].settings.ipv6", "IPv6 is enabled for the default bridge, but no subnet is configured"),
    Refused("ip6tables-not-experimental", {"name": "docker", "settings": {"ip6tables": True, "ipv6": True,
                                                                          "fixed-cidr-v6": "fd00:1::/64"}},
            "$.docker.daemons[0].settings.ip6tables", "ip6tables rules are only available if experimental features are enabled"),
    Refused("bip-network-address", {"name": "docker", "settings": {"bip": "172.30.0.0/16"}},
            "$.docker.daemons[0].settings.bip", "failed to allocate gateway (172.30.0.0)"),
    Refused("pool-size", {"name": "docker", "settings": {"default-address-pools": [{"base": "10.200.0.0/16", "size": 8}]}},
            "$.docker.daemons[0].settings.default-address-pools[0].size", "invalid pools size: 8"),
    Refused("icc-without-iptables", {"name": "ci", "host": "unix:///var/run/docker-ci.sock",
                                     "settings": {"bridge": "none", "icc": False}},
            "$.docker.daemons[0].settings.icc", "ICC=false uses iptables to function"),
]


@pytest.mark.parametrize("bad", REFUSED, ids=lambda r: r.id)
def test_broken_daemon_json_is_refused_by_netharden_and_by_dockerd(tmp, bad):
    # netharden refuses the profile, at the setting ...
    with pytest.raises(ProfileError) as err:
        netharden.load(minimal(docker={"daemons": [bad.daemon]}))
    assert bad.path in [json_path(p.path) for p in err.value.problems]
    # ... and dockerd refuses the daemon.json the renderer would write for it
    daemon = Daemon.from_data(bad.daemon)
    text = render_template("docker/daemon.json.j2", config=daemon.daemon_json())
    if daemon.main:
        config = tmp / "daemon.json"
        config.write_text(text)
        argv = main_argv(tmp, config)
    else:
        argv = [dockerd_binary(), "--config-file", str(rewrite_extra(tmp, text)),
                "--containerd-plugins-namespace", daemon.plugins_namespace]
    with Namespaces(tmp, "exec " + q(*argv) + "\n") as ns:
        outcome = ns.wait_for("API listen on")
    assert not outcome.started, f"dockerd accepted it:\n{outcome.log[-3000:]}"
    assert outcome.returncode not in (None, 0)
    assert bad.dockerd_says in outcome.log, outcome.log[-3000:]


def test_keys_dockerd_accepts_but_ignores(tmp):
    """Why netharden refuses 'default-address-pool' and 'containerd-plugins-namespace'
    in daemon.json: dockerd starts, but the pool is not used (docker0 gets dockerd's
    own default) and the plugins namespace stays plugins.moby."""
    settings = {"default-address-pool": [{"base": "10.200.0.0/16", "size": 24}],
                "containerd-plugins-namespace": "nhd-plugins"}
    with pytest.raises(ProfileError):
        netharden.load(minimal(docker={"daemons": [{"name": "docker", "settings": settings}]}))
    config = tmp / "daemon.json"
    config.write_text(json.dumps(settings))
    with Namespaces(tmp, "exec " + q(*main_argv(tmp, config)) + "\n") as ns:
        outcome = ns.wait_for("API listen on")
        assert outcome.started, outcome.log[-3000:]
        docker0 = ns.nsenter("ip", "-o", "-4", "addr", "show", "dev", "docker0")
        log = ns.terminate()
    assert " 172.17.0.1/16 " in docker0 and "10.200." not in docker0
    assert "namespace=plugins.moby" in log and "namespace=nhd-plugins" not in log


def test_bridge_must_exist_and_carry_its_address_before_dockerd_starts(tmp):
    """What the unit's wait-bridge prevents: without the bridge dockerd refuses to
    start; with a bridge networkd has not addressed yet, dockerd puts 172.17.0.1/16 on
    it (the main daemon's subnet) - also why a daemon's bridge needs an IPv4 address."""
    profile = netharden.load(minimal(bridges=[{"name": "dockerbrci", "addresses": ["10.24.0.1/24"]}],
                                     docker={"daemons": [{"name": "ci", "bridge": "dockerbrci",
                                                          "host": "unix:///var/run/docker-ci.sock"}]}))
    files = {f.path: f.content for f in netharden.plan(profile).files}
    unit = files["/etc/systemd/system/docker-ci.service"]
    config = rewrite_extra(tmp, files["/etc/docker/ci/daemon.json"])
    argv = extra_argv(unit, config)
    with Namespaces(tmp, "exec " + q(*argv) + "\n") as ns:
        outcome = ns.wait_for("API listen on")
    assert not outcome.started and "bridge device with non default name dockerbrci must be created manually" in outcome.log
    (tmp / "log").unlink()
    with Namespaces(tmp, q("ip", "link", "add", "dockerbrci", "type", "bridge") + "\nexec " + q(*argv) + "\n") as ns:
        outcome = ns.wait_for("API listen on")
        assert outcome.started, outcome.log[-3000:]
        shown = ns.nsenter("ip", "-o", "-4", "addr", "show", "dev", "dockerbrci")
    assert " 172.17.0.1/16 " in shown


TWO_DAEMONS = r"""
# the socket exists before dockerd set up its network: wait for its log line
wait_up() { i=0; until grep -q "API listen on" "$1"; do i=$((i + 1)); [ "$i" -lt 600 ] || exit 9; sleep 0.1; done; }
{main} > {tmp}/main.log 2>&1 &
wait_up {tmp}/main.log
iptables -t nat -A DOCKER -p tcp --dport 9 -m comment --comment nhd-marker -j RETURN
iptables -t nat -S DOCKER | grep -c nhd-marker | sed 's/^/marker before: /'
ip link add dockerbrci type bridge
ip addr add 10.24.0.1/24 dev dockerbrci
{extra} > {tmp}/extra.log 2>&1 &
wait_up {tmp}/extra.log
echo "marker after: $(iptables -t nat -S DOCKER | grep -c nhd-marker || true)"
echo DONE
sleep 600
"""


@pytest.mark.parametrize("extra_iptables, survives", [(None, True), (True, False)], ids=["extra-default", "extra-iptables-true"])
def test_second_daemon_with_iptables_flushes_the_first_ones_rules(tmp, extra_iptables, survives):
    """Why extra daemons default to iptables: false and netharden refuses two daemons
    managing iptables: a dockerd starting with iptables on flushes the DOCKER chains,
    rules of the daemon already running included."""
    settings = {} if extra_iptables is None else {"iptables": extra_iptables}
    extra = Daemon.from_data({"name": "ci", "bridge": "dockerbrci", "host": "unix:///var/run/docker-ci.sock",
                              "settings": settings})
    (tmp / "main").mkdir()
    (tmp / "extra").mkdir()
    main_config = tmp / "main" / "daemon.json"
    main_config.write_text("{}\n")
    extra_config = rewrite_extra(tmp / "extra", render_template("docker/daemon.json.j2", config=extra.daemon_json()))
    script = TWO_DAEMONS.replace("{main}", q(*main_argv(tmp / "main", main_config))).replace(
        "{extra}", q(dockerd_binary(), "--config-file", str(extra_config),
                     "--containerd-plugins-namespace", extra.plugins_namespace)).replace("{tmp}", str(tmp))
    with Namespaces(tmp, script) as ns:
        outcome = ns.wait_for("DONE", timeout=2 * START_TIMEOUT)
    assert outcome.started, outcome.log + _read(str(tmp / "main.log"))[-2000:] + _read(str(tmp / "extra.log"))[-2000:]
    assert "marker before: 1" in outcome.log
    assert f"marker after: {1 if survives else 0}" in outcome.log, outcome.log
