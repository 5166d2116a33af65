"""docker-daemon and runtime-not-held on scratch roots, proved against the real tools:
dockerd 20.10 (started in throwaway namespaces, tests/test_docker_dockerd.py) refuses
exactly the files the check flags; ``apt-config dump`` reads apt.conf.d as the check does;
the real apt resolver upgrades exactly the runtime packages the check reports; the real
unattended-upgrades matcher blacklists what the check treats as blacklisted. And all four
of this module's checks are clean on the tree netharden renders for every example."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import netharden
from helpers import EXAMPLES, minimal, netharden_plan, plan_files, require, write_profile
from netharden.doctor import Host, run
from netharden.doctor.checks import docker_daemon, runtime_not_held

DOCKER = "docker-daemon"
HELD = "runtime-not-held"
MY_CHECKS = ("bridge-mac-follows-ports", "stale-vxlan", DOCKER, HELD)

# Debian 12's docker.io unit, as the package ships it (the parts that matter here)
DEBIAN_UNIT = """[Unit]
Description=Docker Application Container Engine
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID

[Install]
WantedBy=multi-user.target
"""


def write(root: Path, path: str, text: str) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def doctor(root: Path, check: str) -> list:
    report = run(Host(root, live=False), only=[check])
    (result,) = report.checks
    assert result.error is None and result.skipped is None, result
    return result.findings


def messages(root: Path, check: str = DOCKER) -> list[str]:
    return [f.message for f in doctor(root, check)]


# ------------------------------------------------------------------ docker-daemon

@pytest.fixture
def docker_root(tmp_path) -> Path:
    root = tmp_path / "root"
    write(root, "/lib/systemd/system/docker.service", DEBIAN_UNIT)
    return root


def test_broken_json_is_reported_with_line_and_column(docker_root):
    write(docker_root, "/etc/docker/daemon.json", '{\n  "log-level": "info",\n  "bip" "10.1.0.1/24"\n}\n')
    (f,) = doctor(docker_root, DOCKER)
    assert f.subject == str(docker_root / "etc/docker/daemon.json") and f.severity == "error"
    assert "does not parse as JSON: line 3, column 9: Expecting ':' delimiter" in f.message
    assert "docker.service would not start" in f.message


@pytest.mark.parametrize("text, word", [("[]\n", "array"), ('"x"\n', "str"), ('{"a": NaN}', "NaN")])
def test_not_an_object_or_not_json(docker_root, text, word):
    write(docker_root, "/etc/docker/daemon.json", text)
    (message,) = messages(docker_root)
    assert word in message and "dockerd refuses to start" in message


def test_hosts_with_the_units_h_flag(docker_root):
    write(docker_root, "/etc/docker/daemon.json", '{"hosts": ["unix:///run/other.sock"]}\n')
    (message,) = messages(docker_root)
    assert "sets 'hosts' while docker.service's ExecStart passes -H fd://" in message
    assert "specified both as a flag and in the configuration file: hosts" in message


def test_flag_and_file_duplicates_through_environment_file(docker_root):
    write(docker_root, "/etc/default/docker", 'DOCKER_OPTS="-D --label=site=a --log-opt max-size=1m"\n')
    write(docker_root, "/etc/docker/daemon.json",
          json.dumps({"debug": True, "labels": ["site=b"], "log-opts": {"max-size": "2m"}, "containerd": "/x.sock",
                      "log-level": "info"}))
    found = sorted(m.split(" while ")[0] for m in messages(docker_root))
    assert found == ["sets 'containerd'", "sets 'debug'", "sets 'labels'", "sets 'log-opts'"]


def test_drop_in_resets_exec_start(docker_root):
    write(docker_root, "/etc/docker/daemon.json", '{"hosts": ["unix:///run/docker.sock"]}\n')
    write(docker_root, "/etc/systemd/system/docker.service.d/override.conf",
          "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock\n")
    assert messages(docker_root) == []
    # a drop-in of the same name in /etc shadows the one in /run; a later name adds the flag again
    write(docker_root, "/run/systemd/system/docker.service.d/override.conf", "[Service]\nExecStart=\n")
    write(docker_root, "/run/systemd/system/docker.service.d/zz.conf",
          "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H unix:///run/docker.sock\n")
    (message,) = messages(docker_root)
    assert "passes -H unix:///run/docker.sock" in message


def test_masked_unit_and_no_unit(docker_root):
    write(docker_root, "/etc/docker/daemon.json", '{"hosts": ["unix:///run/docker.sock"]}\n')
    (docker_root / "etc/systemd/system").mkdir(parents=True)
    (docker_root / "etc/systemd/system/docker.service").symlink_to("/dev/null")
    assert messages(docker_root) == []       # no dockerd starts with flags: the key alone is fine
    (docker_root / "etc/systemd/system/docker.service").unlink()
    (docker_root / "lib/systemd/system/docker.service").unlink()
    assert messages(docker_root) == []


def test_validation_rules_are_reused_with_positions(docker_root):
    write(docker_root, "/etc/docker/daemon.json", '{\n  "ipv6": true,\n  "dns-opt": ["ndots:1"]\n}\n')
    found = doctor(docker_root, DOCKER)
    ipv6 = next(f for f in found if "$.ipv6" in f.message)
    assert ipv6.severity == "error" and ipv6.message.startswith("line 2, column 11, $.ipv6: dockerd refuses")
    ignored = next(f for f in found if "$.dns-opt" in f.message)
    assert ignored.severity == "warning" and "ignores it" in ignored.message


def test_extra_daemon_units_use_their_config_file(docker_root):
    write(docker_root, "/etc/systemd/system/docker-ci.service",
          "[Service]\nExecStart=dockerd --config-file /etc/docker/ci/daemon.json -H unix:///run/docker-ci.sock\n")
    write(docker_root, "/etc/docker/ci/daemon.json", '{"hosts": ["unix:///run/docker-ci.sock"]}\n')
    (f,) = doctor(docker_root, DOCKER)
    assert f.subject.endswith("/etc/docker/ci/daemon.json") and "docker-ci.service's ExecStart" in f.message


# unit files are read by networkd_config.parse_ini, systemd's config_parse() (measured on networkd 252)
def test_unit_continuation_lines_comments_and_blanks(docker_root):
    # a comment line between continuation lines is skipped and does not end the continuation
    write(docker_root, "/etc/systemd/system/docker.service",
          "# local copy\n[Unit]\nDescription=d\n\n[Service]\n; the daemon\n  ExecStart = /usr/sbin/dockerd \\\n"
          "# the socket\n    -H fd:// \\\n    --containerd=/run/containerd/containerd.sock\n")
    assert docker_daemon.exec_start(Host(docker_root, live=False), "docker.service") == [
        "/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"]
    write(docker_root, "/etc/docker/daemon.json", '{"hosts": ["unix:///run/docker.sock"]}\n')
    (message,) = messages(docker_root)
    assert "passes -H fd://" in message


def test_unit_repeated_keys_and_drop_ins(docker_root):
    host = Host(docker_root, live=False)
    write(docker_root, "/etc/systemd/system/docker.service.d/10-env.conf",
          "[Service]\nEnvironment=A=-D\nEnvironment=\"B=--label x=y\"\nExecStart=\nExecStart=/usr/sbin/dockerd $A\n"
          "[Install]\nExecStart=/usr/sbin/dockerd -H fd://\n")                   # not [Service]: not a command
    write(docker_root, "/run/systemd/system/docker.service.d/20-more.conf",
          "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd $A ${B}\nExecStart=/usr/sbin/dockerd $A $B\n")
    assert docker_daemon.exec_start(host, "docker.service") == ["/usr/sbin/dockerd", "-D", "--label", "x=y"]


def test_unit_with_an_invalid_section_header(docker_root):
    host = Host(docker_root, live=False)
    write(docker_root, "/etc/systemd/system/docker.service.d/10-bad.conf",
          "[Service\nExecStart=\nExecStart=/usr/sbin/dockerd\n")        # systemd ignores the drop-in
    assert docker_daemon.exec_start(host, "docker.service")[:3] == ["/usr/sbin/dockerd", "-H", "fd://"]
    write(docker_root, "/etc/systemd/system/docker.service", DEBIAN_UNIT.replace("[Service]", "[Service"))
    assert docker_daemon.exec_start(host, "docker.service") is None      # systemd does not load the unit


def test_a_valid_file_is_clean(docker_root):
    write(docker_root, "/etc/default/docker", 'DOCKER_OPTS="--log-level=warn"\n')
    write(docker_root, "/etc/docker/daemon.json", json.dumps(
        {"bip": "172.30.0.1/16", "fixed-cidr": "172.30.8.0/21", "default-address-pools": [{"base": "10.200.0.0/16", "size": 24}],
         "log-opts": {"max-size": "10m"}, "runtimes": {"crun": {"path": "/usr/bin/crun"}}}, indent=2))
    assert doctor(docker_root, DOCKER) == []


def test_flag_parsing_follows_pflag():
    argv = ["dockerd", "-H", "fd://", "-Hunix:///a", "--tlsverify", "-Dl", "debug", "--label", "a=b", "--", "-b", "x"]
    assert docker_daemon.dockerd_flags(argv) == [
        ("host", "fd://", "-H fd://"), ("host", "unix:///a", "-Hunix:///a"), ("tlsverify", "true", "--tlsverify"),
        ("debug", "true", "-D"), ("log-level", "debug", "-l debug"), ("label", "a=b", "--label a=b")]


# the real dockerd: it refuses exactly what the check reports (and starts on the clean case)
DOCKERD_CASES = [
    ("hosts", [], {"hosts": ["unix:///run/nhd-x.sock"]}, "directives are specified both as a flag and in the configuration file: hosts"),
    ("containerd", ["--containerd=/run/nhd-none.sock"], {"containerd": "/run/nhd-none.sock"}, "specified both as a flag and in the configuration file: containerd"),
    ("labels", ["--label", "a=b"], {"labels": ["a=c"]}, "specified both as a flag and in the configuration file: labels"),
    ("debug-shorthand", ["-D"], {"debug": True}, "specified both as a flag and in the configuration file: debug"),
    ("log-opts", ["--log-opt", "max-size=1m"], {"log-opts": {"max-size": "2m"}}, "specified both as a flag and in the configuration file: log-opts"),
    ("ipv6-no-subnet", [], {"ipv6": True}, "IPv6 is enabled for the default bridge, but no subnet is configured"),
    ("broken", [], '{"debug": true,}', "invalid character"),
    ("array", [], "[]", "cannot unmarshal array"),
    ("empty", [], "  \n", "daemon.json: EOF"),
    ("runtimes-merge", ["--add-runtime", "nhd=/bin/true"], {"runtimes": {"nhd2": {"path": "/bin/true"}}}, None),
    ("clean", ["--mtu", "1400"], {"labels": ["a=b"], "log-opts": {"max-size": "1m"}}, None),
]


@pytest.mark.netns
@pytest.mark.parametrize("case", DOCKERD_CASES, ids=lambda c: c[0])
def test_the_real_dockerd_refuses_exactly_what_is_reported(tmp_path, case):
    import tempfile

    import test_docker_dockerd as dd

    reason = dd.unavailable()
    require(None if reason is None else f"the real dockerd is unavailable: {reason}")
    name, flags, config, says = case
    tmp = Path(tempfile.mkdtemp(prefix="nhd-", dir="/tmp"))
    try:
        text = config if isinstance(config, str) else json.dumps(config)
        path = tmp / "daemon.json"
        path.write_text(text)
        # dockerd as the test runs it: its own state paths and socket (-H), plus the flags under test
        argv = dd.main_argv(tmp, path) + flags
        root = tmp_path / "root"
        write(root, "/etc/systemd/system/docker.service",
              "[Service]\nExecStart=" + " ".join(argv[:1] + ["--config-file", "/etc/docker/daemon.json"] + argv[3:]) + "\n")
        write(root, "/etc/docker/daemon.json", text)
        reported = [f for f in doctor(root, DOCKER) if f.severity == "error"]
        with dd.Namespaces(tmp, "exec " + dd.q(*argv) + "\n") as ns:
            outcome = ns.wait_for("API listen on")
        if says is None:
            assert outcome.started, outcome.log[-3000:]
            assert reported == []
        else:
            assert not outcome.started and outcome.returncode not in (None, 0), outcome.log[-3000:]
            assert says in outcome.log, outcome.log[-3000:]
            assert len(reported) == 1, reported
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ runtime-not-held

STANZA = "Package: {name}\nStatus: {status}\nVersion: {version}\nArchitecture: all\nMaintainer: nobody <nobody@example.invalid>\nDescription: probe\n"
RUNTIME = ("containerd", "docker.io", "runc")
ENABLED = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'


def apt_root(root: Path, holds=(), uu=True, enabled=ENABLED) -> Path:
    packages = list(RUNTIME) + ["libc6"] + (["unattended-upgrades"] if uu else [])
    write(root, "/var/lib/dpkg/status", "\n".join(
        STANZA.format(name=n, version="1.0-1", status=("hold" if n in holds else "install") + " ok installed")
        for n in packages))
    if enabled is not None:
        write(root, "/etc/apt/apt.conf.d/20auto-upgrades", enabled)
    return root


def reported(root: Path) -> list[str]:
    return [f.subject for f in doctor(root, HELD)]


def test_runtime_packages_unattended_upgrades_would_upgrade(tmp_path):
    root = apt_root(tmp_path / "root")
    write(root, "/var/lib/dpkg/status", (root / "var/lib/dpkg/status").read_text() + "\n" +
          STANZA.format(name="podman", version="4.3.1", status="deinstall ok config-files"))
    found = doctor(root, HELD)
    assert [f.subject for f in found] == list(RUNTIME)    # podman is not installed (config files only)
    f = found[1]
    assert f.severity == "warning" and f.incident == "incident-5" and "hold_packages" in f.hint
    assert f.message.startswith("docker.io 1.0-1 is installed and unattended-upgrades runs "
                                '(APT::Periodic::Unattended-Upgrade "1" in ')
    assert "20auto-upgrades" in f.message


@pytest.mark.parametrize("variant", ["no-uu", "disabled", "unset", "timer-masked"])
def test_no_unattended_upgrades_no_finding(tmp_path, variant):
    root = apt_root(tmp_path / "root", uu=variant != "no-uu",
                    enabled={"disabled": 'APT::Periodic::Unattended-Upgrade "0";\n', "unset": None}.get(variant, ENABLED))
    if variant == "timer-masked":
        (root / "etc/systemd/system").mkdir(parents=True)
        (root / "etc/systemd/system/apt-daily-upgrade.timer").symlink_to("/dev/null")
    assert reported(root) == []
    assert reported(apt_root(tmp_path / "control")) == list(RUNTIME)


def test_dpkg_hold(tmp_path):
    assert reported(apt_root(tmp_path / "root", holds=("docker.io", "runc"))) == ["containerd"]


# preferences files: (text, packages they hold among RUNTIME)
PREFS = {
    "netharden": (None, {"containerd", "docker.io"}),   # the file netharden renders (hold_packages)
    "now-1000": ("Package: runc\nPin: release a=now\nPin-Priority: 1000\n", {"runc"}),
    "version-glob": ("Package: docker.io containerd\nPin: version 1.0*\nPin-Priority: 1001\n", {"docker.io", "containerd"}),
    "name-glob": ("Package: docker*\nPin: release a=now\nPin-Priority: 1001\n", {"docker.io"}),
    "regex": ("Package: /^(run|contain)/\nPin: release a=now\nPin-Priority: 1001\n", {"runc", "containerd"}),
    "never-newer": ("Package: runc\nPin: version 2.*\nPin-Priority: -1\n", {"runc"}),
    "never-installed-only": ("Package: runc\nPin: version 1.0-1\nPin-Priority: -1\n", set()),
    "now-990": ("Package: runc\nPin: release a=now\nPin-Priority: 990\n", {"runc"}),   # above the repository's 500
    "now-500": ("Package: runc\nPin: release a=now\nPin-Priority: 500\n", set()),     # a tie: the newer version wins
    "now-1001-repo-1002": ("Package: runc\nPin: release a=now\nPin-Priority: 1001\n\n"
                           "Package: runc\nPin: version 2.0*\nPin-Priority: 1002\n", set()),
    "other-version-1001": ("Package: runc\nPin: version 2.0-1\nPin-Priority: 1001\n", set()),  # installs 2.0
    "comment-and-two": ("# keep\nExplanation: x\nPackage: libc6\nPin: release a=now\nPin-Priority: 1001\n\n"
                        "Package: containerd\nPin: release a=now\nPin-Priority: 1001\n", {"containerd"}),
}


def prefs_text(key: str) -> str:
    text, _ = PREFS[key]
    if text is None:
        plan = netharden_plan(minimal(platform={"os": "debian"}, docker={"hold_packages": ["docker.io", "containerd"]}))
        return plan_files(plan)["/etc/apt/preferences.d/netharden-hold.pref"]
    return text


@pytest.mark.parametrize("key", PREFS)
def test_apt_preferences(tmp_path, key):
    root = apt_root(tmp_path / "root")
    write(root, "/etc/apt/preferences.d/test.pref", prefs_text(key))
    assert set(reported(root)) == set(RUNTIME) - PREFS[key][1]


def test_preferences_file_names_apt_ignores(tmp_path):
    root = apt_root(tmp_path / "root")
    write(root, "/etc/apt/preferences.d/hold.disabled", prefs_text("now-1000"))
    assert "runc" in reported(root)
    write(root, "/etc/apt/preferences", prefs_text("now-1000"))
    assert "runc" not in reported(root)


APT_WORLD = """Dir "{root}/";
Debug::NoLocking "1";
Dir::Etc::SourceParts "{root}/none";
"""


def simulated_upgrade(root: Path) -> set[str]:
    """The packages the real apt resolver upgrades in the scratch root: a file: repository
    offers 2.0-1 of every package while the status file says 1.0-1."""
    repo = root / "repo"
    repo.mkdir(exist_ok=True)
    names = list(RUNTIME) + ["libc6", "unattended-upgrades"]
    (repo / "Packages").write_text("\n".join(
        STANZA.format(name=n, version="2.0-1", status="x").replace("Status: x\n", "") + f"Filename: ./{n}_2.0-1_all.deb\nSize: 1000\n"
        for n in names))
    write(root, "/etc/apt/sources.list", f"deb [trusted=yes] file:{repo} ./\n")
    for d in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
        (root / d).mkdir(parents=True, exist_ok=True)
    cfg = root.parent / "apt.conf"
    cfg.write_text(APT_WORLD.format(root=root))
    env = {**os.environ, "LC_ALL": "C", "APT_CONFIG": str(cfg)}
    subprocess.run(["apt-get", "update"], check=True, capture_output=True, env=env)
    out = subprocess.run(["apt-get", "-s", "upgrade"], check=True, capture_output=True, text=True, env=env).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("Inst ")}


@pytest.mark.parametrize("key", [k for k in PREFS] + ["dpkg-hold"])
def test_the_real_apt_resolver_upgrades_exactly_what_is_reported(tmp_path, key):
    require(None if shutil.which("apt-get") else "apt-get is not installed (Debian/Ubuntu only)")
    root = apt_root(tmp_path / "root", holds=("runc",) if key == "dpkg-hold" else ())
    if key != "dpkg-hold":
        write(root, "/etc/apt/preferences.d/test.pref", prefs_text(key))
    upgraded = simulated_upgrade(root) & set(RUNTIME)
    assert set(reported(root)) == upgraded


APT_CONF_FILES = {
    "10periodic": '// comment\n# hash comment\nAPT::Periodic { Unattended-Upgrade "0"; Other "x"; };\n',
    "20auto-upgrades": 'apt::periodic::unattended-upgrade "always";\n',
    "50unattended-upgrades": 'Unattended-Upgrade::Package-Blacklist {\n  "^docker\\.io$"; bare;\n  "b" };\n'
                             '/* block\ncomment */ Unattended-Upgrade::Package-Blacklist:: "^runc";\n'
                             'Unattended-Upgrade { Package-Blacklist { "lib"; }; };\n',
    "60x.conf": '#clear Unattended-Upgrade::Package-Blacklist;\nUnattended-Upgrade::Package-Blacklist { "containerd"; };\n',
    "70ignored.bak": 'Unattended-Upgrade::Package-Blacklist { "ignored"; };\n',
    "80include": '#include "etc/apt/extra.conf";\n',   # apt opens it from its working directory
}


def test_apt_conf_reads_as_apt_config_dump(tmp_path):
    require(None if shutil.which("apt-config") else "apt-config is not installed (Debian/Ubuntu only)")
    root = tmp_path / "root"
    for name, text in APT_CONF_FILES.items():
        write(root, f"/etc/apt/apt.conf.d/{name}", text)
    write(root, "/etc/apt/extra.conf", 'Unattended-Upgrade::Package-Whitelist { "w1"; };\n')
    write(root, "/etc/apt/apt.conf", 'Unattended-Upgrade::Package-Whitelist-Strict "false";\n')
    cfg_file = tmp_path / "apt-config.conf"
    cfg_file.write_text(f'Dir "{root}/";\n')
    env = {**os.environ, "LC_ALL": "C", "APT_CONFIG": str(cfg_file)}
    keys = ["APT::Periodic::Unattended-Upgrade", "APT::Periodic::Other", "Unattended-Upgrade::Package-Blacklist",
            "Unattended-Upgrade::Package-Whitelist", "Unattended-Upgrade::Package-Whitelist-Strict"]
    real: dict[str, list[str]] = {}
    out = subprocess.run(["apt-config", "dump"], check=True, capture_output=True, text=True, env=env, cwd=root).stdout
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        real.setdefault(k.lower(), []).append(v.rstrip(";")[1:-1])   # printed as "value"; (not escaped)
    ours = runtime_not_held.apt_config(Host(root, live=False))
    for key in keys:
        low = key.lower()
        if low in real and real[low] != [""]:
            assert [ours.get(key)] == real[low], key
        items = real.get(low + "::", [])
        assert ours.list(key) == items, key
    assert ours.list("Unattended-Upgrade::Package-Blacklist") == ["containerd"]


UU_PROBE = r"""
import importlib.machinery, importlib.util, json, sys
loader = importlib.machinery.SourceFileLoader("unattended_upgrade", "/usr/bin/unattended-upgrade")
spec = importlib.util.spec_from_loader(loader.name, loader)
uu = importlib.util.module_from_spec(spec)
loader.exec_module(uu)
blacklist = json.loads(sys.argv[1])
print(json.dumps({n: uu.is_pkgname_in_blacklist(n, blacklist) for n in json.loads(sys.argv[2])}))
"""
BLACKLISTS = [["docker"], ["^docker\\.io$"], ["containerd$"], [".*runc"], ["run"], ["crun"], ["^(docker|containerd)"]]


@pytest.mark.parametrize("blacklist", BLACKLISTS, ids=lambda b: b[0])
def test_blacklist_matches_as_unattended_upgrades_does(tmp_path, blacklist):
    require(None if os.path.exists("/usr/bin/unattended-upgrade") and os.path.exists("/usr/bin/python3")
            else "unattended-upgrades is not installed (apt install unattended-upgrades)")
    out = subprocess.run(["/usr/bin/python3", "-c", UU_PROBE, json.dumps(blacklist), json.dumps(RUNTIME)],
                         capture_output=True, text=True, check=True)
    kept = {n for n, hit in json.loads(out.stdout).items() if hit}
    root = apt_root(tmp_path / "root")
    items = "".join(f'  "{b}";\n' for b in blacklist)
    write(root, "/etc/apt/apt.conf.d/50unattended-upgrades", f"Unattended-Upgrade::Package-Blacklist {{\n{items}}};\n")
    assert set(reported(root)) == set(RUNTIME) - kept


def test_strict_whitelist(tmp_path):
    root = apt_root(tmp_path / "root")
    write(root, "/etc/apt/apt.conf.d/51w", 'Unattended-Upgrade::Package-Whitelist { "runc"; };\n'
                                           'Unattended-Upgrade::Package-Whitelist-Strict "true";\n')
    assert reported(root) == ["runc"]


def test_profile_verdicts_through_the_cli(tmp_path):
    root = apt_root(tmp_path / "root")
    profile = write_profile(tmp_path / "p.yaml", minimal(platform={"os": "debian", "systemd": 252},
                                                          docker={"hold_packages": ["docker.io", "runc"]}))
    done = subprocess.run([sys.executable, "-m", "netharden", "doctor", "--root", str(root), "--only", HELD,
                           "--profile", str(profile), "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    verdicts = {f["subject"]: f["fixed_by_profile"] for c in json.loads(done.stdout)["checks"] for f in c["findings"]}
    assert verdicts == {"docker.io": True, "runc": True, "containerd": False}


# ------------------------------------------------------------------ the healthy host

@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_clean_on_the_rendered_tree_of_every_example(tmp_path, path):
    out = tmp_path / "tree"
    netharden.emit(netharden.plan(netharden.load(path)), "tree", out)
    args = [a for c in MY_CHECKS for a in ("--only", c)]
    done = subprocess.run([sys.executable, "-m", "netharden", "doctor", "--root", str(out), *args, "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [f for c in report["checks"] for f in c["findings"]] == []
    assert {c["id"]: c["error"] for c in report["checks"]} == {c: None for c in MY_CHECKS}
