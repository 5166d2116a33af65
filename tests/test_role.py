"""roles/netharden without containers: the Plan the role applies, lint, the Galaxy artifact,
error reporting. (Applying to booted Debian hosts is the molecule scenario, tests/test_molecule.py;
test_role_on_a_throwaway_container below adds check mode, netharden_apply=false and pruning on
one podman container when the image is there.)

Every playbook here targets a host whose connection cannot work (ssh to a closed loopback
port): the role's controller-side steps (argument validation, the netharden_plan action
plugin) never contact a host, so a test that got past them would show an *unreachable*
host, and each test asserts none did. A small callback plugin records every task result
as JSON.

Skips with the reason when ansible is missing; fails under CI=true (tests/helpers.require)."""
from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import uuid
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

import netharden
import plan_oracle
from helpers import DEBIAN_IMAGES, EXAMPLES, NETWORKMANAGER_EXAMPLES, PROFILES, ROOT, ensure_debian_images, minimal, require, tree_files

ROLE = ROOT / "roles" / "netharden"
PLUGIN = ROLE / "action_plugins" / "netharden_plan.py"
BIN = Path(sys.executable).parent
HINT = "pip install -e '.[test]' (ansible, ansible-lint)"

# Records every task result of a playbook run as JSON lines in $NETHARDEN_TEST_EVENTS.
CALLBACK = '''
from __future__ import annotations
import json, os
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "netharden_events"
    CALLBACK_NEEDS_ENABLED = True

    def _put(self, status, result):
        data = {"status": status, "task": result._task.get_name(), "action": result._task.action,
                "host": result._host.get_name(), "result": result._result}
        with open(os.environ["NETHARDEN_TEST_EVENTS"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(data, default=str) + "\\n")

    def v2_runner_on_ok(self, result): self._put("ok", result)
    def v2_runner_on_failed(self, result, ignore_errors=False): self._put("failed", result)
    def v2_runner_on_unreachable(self, result): self._put("unreachable", result)
    def v2_runner_on_skipped(self, result): self._put("skipped", result)
'''


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    require(None if found else f"{name} is not installed next to {sys.executable} ({HINT})")
    return found


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    callbacks = tmp / "callback_plugins"
    callbacks.mkdir(exist_ok=True)
    (callbacks / "netharden_events.py").write_text(CALLBACK, encoding="utf-8")
    env = dict(os.environ)
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_COLLECTIONS_PATH": str(tmp / "collections"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_CALLBACK_PLUGINS": str(callbacks),
        "ANSIBLE_CALLBACKS_ENABLED": "netharden_events",
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "NETHARDEN_TEST_EVENTS": str(tmp / "events.jsonl"),
    })
    env.update(extra)
    return env


# A host nobody can reach: nothing listens on port 9 of the loopback address.
UNREACHABLE = """\
all:
  hosts:
    target:
      ansible_connection: ssh
      ansible_host: 127.0.0.1
      ansible_port: 9
      ansible_user: nobody
      ansible_ssh_common_args: -o ConnectTimeout=3 -o BatchMode=yes
      ansible_python_interpreter: /usr/bin/python3
"""


def _playbook(tmp: Path, body: str, inventory: str = UNREACHABLE, env: dict | None = None,
              args: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, list[dict]]:
    (tmp / "inventory.yml").write_text(inventory, encoding="utf-8")
    (tmp / "play.yml").write_text(textwrap.dedent(body), encoding="utf-8")
    events = tmp / "events.jsonl"
    events.unlink(missing_ok=True)
    proc = subprocess.run([_tool("ansible-playbook"), "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml"), *args],
                          cwd=tmp, env=env or _env(tmp), capture_output=True, text=True, timeout=600)
    got = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()] if events.exists() else []
    return proc, got


def _plan_via_ansible(tmp: Path, role_var: str, value) -> dict:
    """The netharden_plan result for one profile, computed by ansible-playbook."""
    (tmp / "vars.yml").write_text(yaml.safe_dump({role_var: value}, sort_keys=False), encoding="utf-8")
    key = "profile" if role_var == "netharden_profile" else "profile_file"
    proc, events = _playbook(tmp, f"""
        - hosts: all
          gather_facts: false
          vars_files: [vars.yml]
          tasks:
            - name: Plan
              netharden_plan:
                {key}: "{{{{ {role_var} }}}}"
        """, env=_env(tmp, ANSIBLE_ACTION_PLUGINS=str(PLUGIN.parent)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (event,) = [e for e in events if e["task"] == "Plan"]
    assert event["status"] == "ok"
    return event["result"]


def _materialize(result: dict, root: Path) -> None:
    """Write the role's view of the Plan the way the role's tasks write it on a host."""
    for f in result["files"]:
        dest = root / f["path"].lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f["content"].encode("utf-8"))
        os.chmod(dest, int(f["mode"], 8))
    for link in result["links"]:
        dest = root / link["path"].lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link["target"], dest)


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_mode & 0o7777 for p in root.rglob("*") if not p.is_dir()}


# --------------------------------------------------------------------------- the Plan

@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_plan_files_equal_render_tree(profile, tmp_path):
    """What the role writes (files with modes, masks) is byte for byte `render --format tree`."""
    result = _plan_via_ansible(tmp_path, "netharden_profile_file", str(profile))
    _materialize(result, tmp_path / "role")
    netharden.emit(netharden.plan(netharden.load(profile)), "tree", tmp_path / "cli")
    assert tree_files(tmp_path / "role") == tree_files(tmp_path / "cli")
    assert _modes(tmp_path / "role") == _modes(tmp_path / "cli")
    assert result["paths"] == sorted(netharden.plan(netharden.load(profile)).paths())
    # the sysctls the role compares with the live host are the ones the file sets
    loaded = {(x["key"], x["value"]) for x in result["sysctls"]}
    conf = tmp_path / "cli" / "etc" / "sysctl.d" / "90-netharden.conf"
    expected = {tuple(part.strip() for part in line.split("=", 1))
                for line in (conf.read_text().splitlines() if conf.exists() else [])
                if "=" in line and not line.startswith(("#", ";"))}
    assert loaded == expected


def test_sysctl_keys_map_to_proc_paths_the_kernel_has(tmp_path):
    """sysctl.d(5) key forms the profile allows: dotted, and a dotted interface name written with '/'.
    Each /proc/sys path exists on this kernel (the role reads them to find drifted values)."""
    profile = yaml.safe_load((ROOT / "examples" / "full-host.yaml").read_text(encoding="utf-8"))
    profile["sysctl"] = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.forwarding": 1,
                         "net.ipv4.conf.lo/0.rp_filter": 0, "net.ipv4.ip_local_port_range": "32768 60999"}
    result = _plan_via_ansible(tmp_path, "netharden_profile", profile)
    procs = {x["key"]: x["proc"] for x in result["sysctls"]}
    assert procs == {"net.ipv4.ip_forward": "/proc/sys/net/ipv4/ip_forward",
                     "net.ipv4.conf.all.forwarding": "/proc/sys/net/ipv4/conf/all/forwarding",
                     "net.ipv4.conf.lo/0.rp_filter": "/proc/sys/net/ipv4/conf/lo.0/rp_filter",
                     "net.ipv4.ip_local_port_range": "/proc/sys/net/ipv4/ip_local_port_range"}
    assert {x["action"] for x in result["sysctls"]} == {"sysctl-load"}
    for key, proc in procs.items():
        if "lo.0" not in proc:
            assert os.path.exists(proc), key
    # the kernel prints the two ports with a tab: the role folds whitespace on both sides
    live = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    assert len(live) == 2


@pytest.mark.parametrize("profile", EXAMPLES, ids=lambda p: p.name)
def test_plan_from_a_mapping_equals_the_file(profile, tmp_path):
    """netharden_profile (the mapping, as Ansible loads YAML 1.1) gives the same Plan as the file."""
    data = yaml.safe_load(profile.read_text(encoding="utf-8"))
    from_file = _plan_via_ansible(tmp_path, "netharden_profile_file", str(profile))
    from_mapping = _plan_via_ansible(tmp_path, "netharden_profile", data)
    for key in ("files", "links", "units", "actions", "paths", "enablement"):
        assert from_mapping[key] == from_file[key], key


def test_actions_keep_the_plan_order_and_argv(tmp_path):
    full = ROOT / "examples" / "full-host.yaml"
    result = _plan_via_ansible(tmp_path, "netharden_profile_file", str(full))
    plan = netharden.plan(netharden.load(full)).to_dict()
    assert [(a["id"], a["argv"], a["phase"], a["disruptive"]) for a in result["actions"]] == \
        [(a["id"], a["argv"], a["phase"], a["disruptive"]) for a in plan["actions"]]
    kinds = {a["id"]: (a["kind"], a["allow"]) for a in result["actions"]}
    assert kinds["systemd-daemon-reload"] == ("run", None)
    assert kinds["networkd-reload"] == ("run", None)
    assert kinds["networkd-restart"] == ("restart", "networkd")      # never run by default
    assert kinds["docker-restart"] == ("restart", "docker")
    assert kinds["docker-jenkins-restart"] == ("restart", "docker")
    assert kinds["quarantine-run"] == ("run", None)                  # oneshot: run when its files change
    assert kinds["quarantine-path"] == ("start", None)               # idempotent systemd_service started
    assert kinds["docker-jenkins-start"] == ("start", None)
    # enabling a unit offline creates exactly what `systemctl enable` does for its [Install]
    assert {x["path"]: x["target"] for x in result["enablement"]}[
        "/etc/systemd/system/timers.target.wants/netharden-vxlan-gc.timer"] == \
        "/etc/systemd/system/netharden-vxlan-gc.timer"


def _trigger(result: dict, action_id: str) -> re.Pattern:
    (action,) = [a for a in result["actions"] if a["id"] == action_id]
    return re.compile(action["trigger_re"])


def test_action_triggers(tmp_path):
    """Which changed paths make each action run: networkd reload only for networkd files,
    sysctl only for its file, daemon-reload for units, a dockerd restart for its config."""
    result = _plan_via_ansible(tmp_path, "netharden_profile_file", str(ROOT / "examples" / "full-host.yaml"))
    reload_, sysctl, daemon = (_trigger(result, i) for i in ("networkd-reload", "sysctl-load", "systemd-daemon-reload"))
    restart, docker, jenkins = (_trigger(result, i) for i in ("networkd-restart", "docker-restart", "docker-jenkins-restart"))
    assert reload_.match("/etc/systemd/network/50-docker.network")
    assert not reload_.match("/etc/systemd/networkd.conf.d/50-netharden.conf")
    assert not reload_.match("/etc/sysctl.d/90-netharden.conf")
    assert sysctl.match("/etc/sysctl.d/90-netharden.conf") and not sysctl.match("/etc/sysctl.d/90-netharden.conf.bak")
    assert daemon.match("/etc/systemd/system/netharden-quarantine.path")
    assert not daemon.match("/etc/systemd/network/x.network")
    assert restart.match("/etc/systemd/networkd.conf.d/50-netharden.conf")
    assert not restart.match("/etc/systemd/network/20-netharden-uplink-lan.network")
    assert docker.match("/etc/docker/daemon.json") and docker.match("/etc/systemd/system/docker.service.d/50-netharden.conf")
    assert not docker.match("/etc/docker/jenkins/daemon.json")
    assert jenkins.match("/etc/docker/jenkins/daemon.json") and jenkins.match("/etc/systemd/system/docker-jenkins.service")
    assert jenkins.match("/opt/netharden/bin/netharden-wait-bridge")


def test_systemd_243_restarts_networkd_instead_of_reload(tmp_path):
    data = yaml.safe_load((ROOT / "examples" / "incident-4-stale-vxlan.yaml").read_text(encoding="utf-8"))
    data["platform"]["systemd"] = 243
    result = _plan_via_ansible(tmp_path, "netharden_profile", data)
    (action,) = [a for a in result["actions"] if a["id"] == "networkd-reload"]
    assert action["argv"] == ["systemctl", "restart", "systemd-networkd.service"]
    assert action["kind"] == "run"        # the Plan does not mark it disruptive: it is the reload
    assert re.match(action["trigger_re"], "/etc/systemd/network/0-netharden-unmanaged-vxlan.network")


@lru_cache(maxsize=1)
def _plugin():
    """The action plugin as a module: its functions without a playbook run."""
    try:
        import ansible  # noqa: F401  (the plugin imports ansible-core)
    except ImportError:
        require(f"ansible-core is not importable by {sys.executable} ({HINT})")
    spec = importlib.util.spec_from_file_location("netharden_plan_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variants(profile: Path):
    """(label, Profile): the profile file itself, then its data at the systemd versions where
    actions change form (237, 243: no networkctl reload; 246: networkd.conf's restart)."""
    yield "", netharden.load(profile)
    data = yaml.safe_load(profile.read_text(encoding="utf-8"))
    for systemd in (237, 243, 246, 252):
        yield f"@{systemd}", netharden.load({**data, "platform": {**data.get("platform", {}), "systemd": systemd}})


def _assert_as_the_text_says(label: str, plan) -> None:
    got, expected = _plugin().plan_result(plan), plan_oracle.derive(plan)
    for key in ("actions", "enablement", "sysctls"):
        assert got[key] == expected[key], f"{label}: {key}"


@pytest.mark.parametrize("profile", [p for p in PROFILES if p not in NETWORKMANAGER_EXAMPLES], ids=lambda p: p.name)
def test_kinds_triggers_enablement_and_sysctls_are_what_the_rendered_text_says(profile):
    """The plugin reads each action's kind, unit, allow class and triggers, the units' [Install]
    links and the sysctls from the Plan's own fields. They are exactly what it derived from the
    rendered text before the Plan carried them (tests/plan_oracle.py: the [Install] section, the
    argv, the plan paths a unit's text names, the sysctl.d file)."""
    for label, loaded in _variants(profile):
        _assert_as_the_text_says(profile.name + label, netharden.plan(loaded))


@pytest.mark.parametrize("profile", NETWORKMANAGER_EXAMPLES, ids=lambda p: p.name)
def test_networkmanager_actions_run_when_their_keyfiles_change(profile):
    """On a NetworkManager host (the text oracle knows only networkd's actions): the keyfile
    reload runs when a keyfile changed, the unmanaged-list reload when the conf file or its
    helper changed, and activating an uplink profile is a restart that needs the
    networkmanager allow class."""
    result = _plugin().plan_result(netharden.plan(netharden.load(profile)))
    actions = {a["id"]: a for a in result["actions"]}
    reload = actions["networkmanager-reload"]
    assert reload["kind"] == "run" and re.match(
        reload["trigger_re"], "/etc/NetworkManager/system-connections/netharden-bridge-buildbr0.nmconnection"
    )
    assert not re.match(reload["trigger_re"], "/etc/NetworkManager/conf.d/50-netharden-unmanaged.conf")
    conf = actions["networkmanager-reload-conf"]
    assert conf["kind"] == "run" and re.match(conf["trigger_re"], "/etc/NetworkManager/conf.d/50-netharden-unmanaged.conf")
    up = actions["networkmanager-up-primary"]
    assert (up["kind"], up["allow"]) == ("restart", "networkmanager")
    assert re.match(up["trigger_re"], "/etc/NetworkManager/system-connections/netharden-uplink-primary.nmconnection")
    assert not re.match(up["trigger_re"], "/etc/NetworkManager/system-connections/netharden-bridge-buildbr0.nmconnection")


def test_networkd_restart_reads_the_network_directory_when_nothing_reloads():
    """Without a reload action (no networkd files at all), the networkd.conf restart is what makes
    networkd read its directory again (pruned files)."""
    profile = minimal(platform={"os": "debian", "systemd": 252}, unmanaged={"presets": []},
                      networkd={"mask": [], "quarantine": [], "foreign_routes": "keep"})
    plan = netharden.plan(netharden.load(profile))
    assert [a.id for a in plan.actions] == ["networkd-start", "networkd-restart"]  # networkd.conf.d is networkd's
    _assert_as_the_text_says("no reload", plan)
    assert re.match(_plugin().plan_result(plan)["actions"][0]["trigger_re"], "/etc/systemd/network/x.network")


# --------------------------------------------------------------------------- errors

def _role_play(var: str, value: str) -> str:
    return f"""
        - hosts: all
          gather_facts: false
          roles:
            - role: netharden
              {var}: {value}
        """


def _only_controller_tasks_ran(events: list[dict]) -> dict:
    """The run failed in netharden_plan; nothing reached the host. Returns the failure."""
    assert events, "no task ran"
    assert not [e for e in events if e["status"] == "unreachable"], "a task tried to reach the host"
    failed = [e for e in events if e["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["action"] == "netharden_plan", events
    assert {e["action"] for e in events} <= {"ansible.builtin.validate_argument_spec", "netharden_plan"}
    return failed[0]["result"]


@pytest.mark.parametrize("name", ["01-yaml-unclosed-flow.yaml", "23-enum-dhcp.yaml", "140-docker-several-problems.yaml"])
def test_bad_profile_file_fails_with_the_cli_text_before_touching_the_host(name, tmp_path):
    bad = ROOT / "tests" / "bad" / name
    proc, events = _playbook(tmp_path, _role_play("netharden_profile_file", str(bad)))
    assert proc.returncode != 0
    result = _only_controller_tasks_ran(events)
    cli = subprocess.run([sys.executable, "-m", "netharden", "render", str(bad), "--format", "plan"],
                         capture_output=True, text=True)
    assert cli.returncode == 2
    assert result["msg"] == cli.stderr.rstrip("\n")
    assert re.match(rf"^{re.escape(str(bad))}:\d+:\d+: error: .+ \(at \$[^)]*\)$", result["msg"].splitlines()[0])


def test_bad_profile_mapping_names_the_vars_file_line_and_column(tmp_path):
    vars_file = tmp_path / "host_vars.yml"
    vars_file.write_text(textwrap.dedent("""\
        netharden_profile:
          apiVersion: netharden/v1
          kind: HostProfile
          metadata:
            name: host-a
          uplinks:
            - name: lan
              match: {name: ["en*"]}
              dhcp: sometimes
        """), encoding="utf-8")
    proc, events = _playbook(tmp_path, f"""
        - hosts: all
          gather_facts: false
          vars_files: [{vars_file}]
          roles: [netharden]
        """)
    assert proc.returncode != 0
    result = _only_controller_tasks_ran(events)
    first = result["msg"].splitlines()[0]
    assert first.startswith(f"{vars_file}:9:13: error: "), first
    assert first.endswith("(at $.uplinks[0].dhcp)"), first
    assert result["problems"][0]["path"] == "$.uplinks[0].dhcp"


@pytest.mark.parametrize("given", ["both", "neither"])
def test_exactly_one_profile_input(given, tmp_path):
    profile = ROOT / "examples" / "incident-4-stale-vxlan.yaml"
    extra = ""
    if given == "both":
        extra = f"netharden_profile_file: {profile}\n              netharden_profile: {{apiVersion: netharden/v1}}"
    proc, events = _playbook(tmp_path, f"""
        - hosts: all
          gather_facts: false
          roles:
            - role: netharden
              {extra or 'netharden_apply: true'}
        """)
    assert proc.returncode != 0
    result = _only_controller_tasks_ran(events)
    assert "exactly one of netharden_profile" in result["msg"]


def test_argument_spec_rejects_a_non_mapping_profile(tmp_path):
    proc, events = _playbook(tmp_path, _role_play("netharden_profile", "'just a string'"))
    assert proc.returncode != 0
    assert not [e for e in events if e["status"] == "unreachable"]
    failed = [e for e in events if e["status"] == "failed"]
    assert failed and failed[0]["action"] == "ansible.builtin.validate_argument_spec"
    assert "netharden_profile" in failed[0]["result"]["msg"]


def test_missing_library_is_a_clear_error(tmp_path):
    """A controller Python without netharden: a clear message, nothing touches the host."""
    # hide netharden from the controller's Python by shadowing it with a module that fails
    shadow = tmp_path / "shadow"
    (shadow / "netharden").mkdir(parents=True)
    (shadow / "netharden" / "__init__.py").write_text("raise ImportError('no netharden here')\n")
    env = _env(tmp_path, PYTHONPATH=str(shadow))
    proc, events = _playbook(tmp_path, _role_play("netharden_profile_file", str(EXAMPLES[0])), env=env)
    assert proc.returncode != 0
    result = _only_controller_tasks_ran(events)
    assert "netharden library is not importable by the controller's Python" in result["msg"]


# --------------------------------------------------------------------------- lint, syntax

def test_ansible_lint_production_profile(tmp_path):
    lint = _tool("ansible-lint")
    env = _env(tmp_path)
    env.pop("ANSIBLE_CALLBACKS_ENABLED")
    proc = subprocess.run([lint, "--profile", "production", "--nocolor", "roles/netharden"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"Passed: 0 failure\(s\), 0 warning\(s\)", out), out
    assert "Profile 'production' was required, and it passed" in out, out


def test_role_syntax_check(tmp_path):
    proc, _ = _playbook(tmp_path, _role_play("netharden_profile_file", str(EXAMPLES[0])), args=("--syntax-check",))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- the Galaxy artifact

ALLOWED_TOP = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "meta", "meta/runtime.yml", "roles", "plugins"}


def _build(tmp: Path) -> Path:
    out = tmp / "dist"
    proc = subprocess.run([_tool("ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT)],
                          cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    tarball = out / f"netharden-netharden-{version}.tar.gz"
    assert tarball.is_file()
    return tarball


def test_collection_holds_only_the_role_and_its_plugin(tmp_path):
    tarball = _build(tmp_path)
    with tarfile.open(tarball) as tf:
        names = {m.name.rstrip("/") for m in tf.getmembers()}
        manifest = json.load(tf.extractfile("MANIFEST.json"))
        link = tf.getmember("plugins/action/netharden_plan.py")
        module = tf.getmember("plugins/modules/netharden_files.py")
    assert manifest["collection_info"]["namespace"] == "netharden" and manifest["collection_info"]["name"] == "netharden"
    unexpected = sorted(n for n in names if n not in ALLOWED_TOP and not n.startswith(("roles/netharden", "plugins/")))
    assert not unexpected, f"not part of the role: {unexpected} (add them to build_ignore in galaxy.yml)"
    assert not [n for n in names if n.startswith("roles/netharden/molecule")]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    role_files = {str(p.relative_to(ROOT)) for p in ROLE.rglob("*")
                  if p.is_file() and "molecule" not in p.relative_to(ROLE).parts
                  and "__pycache__" not in p.parts and not p.name.endswith(".pyc")}
    assert role_files <= names, sorted(role_files - names)
    assert {"meta/runtime.yml", "README.md", "plugins/action/netharden_plan.py",
            "plugins/modules/netharden_files.py"} <= names
    # one implementation: the collection's plugins are the role's files
    assert link.issym() and link.linkname == "../../roles/netharden/action_plugins/netharden_plan.py"
    assert module.issym() and module.linkname == "../../roles/netharden/library/netharden_files.py"


def test_collection_installs_offline_and_its_role_uses_plugins_action(tmp_path):
    """`ansible-galaxy collection install` of the tarball works offline; the collection-hosted
    role resolves netharden_plan from plugins/action (ansible-core does not load a collection
    role's own action_plugins/), proven by removing the role's copy from the installed tree."""
    tarball = _build(tmp_path)
    dest = tmp_path / "collections"
    proc = subprocess.run([_tool("ansible-galaxy"), "collection", "install", "--offline", "-p", str(dest), str(tarball)],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = dest / "ansible_collections" / "netharden" / "netharden"
    assert (installed / "roles" / "netharden" / "tasks" / "main.yml").read_bytes() == (ROLE / "tasks" / "main.yml").read_bytes()
    action = installed / "plugins" / "action" / "netharden_plan.py"
    assert action.read_bytes() == PLUGIN.read_bytes()
    module = installed / "plugins" / "modules" / "netharden_files.py"
    assert module.read_bytes() == (ROLE / "library" / "netharden_files.py").read_bytes()
    # leave only plugins/action/netharden_plan.py and plugins/modules/netharden_files.py (real
    # files) in the installed collection
    for plugin in (action, module):
        content = plugin.read_bytes()
        plugin.unlink()
        plugin.write_bytes(content)
    shutil.rmtree(installed / "roles" / "netharden" / "action_plugins")
    shutil.rmtree(installed / "roles" / "netharden" / "library")
    env = _env(tmp_path, ANSIBLE_ROLES_PATH=str(tmp_path / "no-roles"), ANSIBLE_COLLECTIONS_PATH=str(dest))
    play = """
        - hosts: all
          gather_facts: false
          roles:
            - role: netharden.netharden.netharden
              netharden_profile_file: {profile}
        """
    proc, _ = _playbook(tmp_path, play.format(profile=EXAMPLES[0]), env=env, args=("--syntax-check",))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the plugin runs from the collection (a bad profile fails in it, before the host)
    proc, events = _playbook(tmp_path, play.format(profile=ROOT / "tests" / "bad" / "23-enum-dhcp.yaml"), env=env)
    result = _only_controller_tasks_ran(events)
    assert ":11:11: error: " in result["msg"]
    # without plugins/ the role cannot resolve its action or module: the test above is meaningful
    for plugin, name in ((module, "netharden_files"), (action, "netharden_plan")):
        plugin.unlink()
        proc, _ = _playbook(tmp_path, play.format(profile=EXAMPLES[0]), env=env, args=("--syntax-check",))
        assert proc.returncode != 0 and name in proc.stdout + proc.stderr, name


# --------------------------------------------------------------------------- a throwaway container

IMAGE = DEBIAN_IMAGES["12"]


def _container_missing() -> str | None:
    missing = ensure_debian_images("12")
    if missing:
        return missing
    try:
        import ansible_collections.containers.podman  # noqa: F401
    except ImportError:
        return f"the containers.podman collection is missing ({HINT})"
    return None


@pytest.fixture
def container():
    require(_container_missing())
    name = f"netharden-role-{uuid.uuid4().hex[:8]}"
    subprocess.run(["podman", "run", "-d", "--name", name, "--hostname", name, "--network=none",
                    "--cap-add=NET_ADMIN,NET_RAW", "--security-opt", "unmask=/proc/sys",
                    "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "--systemd=always",
                    IMAGE, "/sbin/init"], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["podman", "exec", name, "systemctl", "is-system-running"],
                                   capture_output=True, text=True).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.5)
        # record every systemctl / networkctl / sysctl call the role makes
        subprocess.run(["podman", "exec", name, "sh", "-c", textwrap.dedent("""\
            set -e
            for name in systemctl networkctl sysctl; do
              tool=$(readlink -f "$(command -v "$name")")
              [ -e "$tool.real" ] && continue
              mv "$tool" "$tool.real"
              printf '#!/bin/sh\\necho "%s $*" >> /run/netharden-test-calls\\nexec %s.real "$@"\\n' "$name" "$tool" > "$tool"
              chmod 755 "$tool"
            done""")], check=True)
        yield name
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)


def _exec(name: str, *argv: str) -> str:
    return subprocess.run(["podman", "exec", name, *argv], capture_output=True, text=True).stdout


def _host_tree(name: str, paths: list[str], dest: Path) -> dict:
    data = subprocess.run(["podman", "exec", name, "tar", "cf", "-", "-P", "--no-recursion", *paths],
                          check=True, capture_output=True).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            rel = m.name.lstrip("/")
            out[rel] = f"-> {m.linkname}" if m.issym() else tf.extractfile(m).read()
            if not m.issym():
                assert (m.uid, m.gid) == (0, 0), rel
                assert m.mode & 0o7777 == (dest / rel).stat().st_mode & 0o7777, rel
    return out


def _recap(proc: subprocess.CompletedProcess) -> dict[str, int]:
    m = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups())))


@pytest.mark.netns
def test_role_on_a_throwaway_container(container, tmp_path):
    """--check --diff changes nothing; netharden_apply=false writes the tree and the [Install]
    symlinks with no systemctl/networkctl/sysctl call; a later run with netharden_apply runs the
    actions left pending; a second run changes nothing; a smaller profile prunes exactly what
    the first one wrote; a drifted sysctl is loaded again."""
    inventory = textwrap.dedent(f"""\
        all:
          hosts:
            {container}:
              ansible_connection: containers.podman.podman
              ansible_python_interpreter: /usr/bin/python3
        """)
    profile = {
        "apiVersion": "netharden/v1", "kind": "HostProfile", "metadata": {"name": "role-test"},
        "platform": {"os": "debian", "systemd": 252},
        "uplinks": [{"name": "lan", "match": {"name": ["ens*", "eth*"]}, "dhcp": "ipv4"}],
        "bridges": [{"name": "nhbr0", "addresses": ["10.24.0.1/24"], "mac": "stable"}],
        "unmanaged": {"presets": ["veth"]},
        "networkd": {"mask": ["50-docker.network"], "quarantine": ["/run/systemd/network/00-*.network"],
                     "foreign_routes": "keep"},
        # content Ansible must not template: the file is written as the Plan has it
        "docker": {"daemons": [{"name": "docker", "settings": {"log-opts": {"tag": "{{.Name}} $(id) 100%"}}}]},
        "vxlan_gc": {"mode": "report", "interval": "5min", "pattern": "vx-*"},
        "sysctl": {"net.ipv4.ip_forward": 1},
    }
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump(profile, sort_keys=False))
    tree = tmp_path / "tree"
    netharden.emit(netharden.plan(netharden.load(first)), "tree", tree)
    paths = ["/" + p for p in tree_files(tree)]

    def run(profile_path: Path, *args: str) -> subprocess.CompletedProcess:
        proc, _ = _playbook(tmp_path, _role_play("netharden_profile_file", str(profile_path)), inventory=inventory,
                            args=args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    check = run(first, "--check", "--diff")
    assert _recap(check)["changed"] > 0
    assert "+++ after: /etc/systemd/network/10-netharden-nhbr0.netdev" in check.stdout
    assert _exec(container, "sh", "-c", "ls -A /etc/systemd/network; test -e /var/lib/netharden && echo manifest") \
        .strip() == ""
    assert "start" not in _exec(container, "cat", "/run/netharden-test-calls")

    # image-build mode: only files, no systemctl at all
    _exec(container, "rm", "-f", "/run/netharden-test-calls")
    off = run(first, "-e", "netharden_apply=false")
    assert _recap(off)["changed"] > 0
    assert _exec(container, "cat", "/run/netharden-test-calls") == ""
    assert _host_tree(container, paths, tree) == tree_files(tree)
    assert _exec(container, "readlink", "/etc/systemd/system/timers.target.wants/netharden-vxlan-gc.timer").strip() \
        == "/etc/systemd/system/netharden-vxlan-gc.timer"
    assert _exec(container, "systemctl", "is-active", "netharden-vxlan-gc.timer").strip() == "inactive"
    manifest = json.loads(_exec(container, "cat", "/var/lib/netharden/manifest.json"))
    assert manifest["paths"] == sorted(paths)
    assert {"systemd-daemon-reload", "sysctl-load", "networkd-reload"} <= set(manifest["pending"])
    assert _recap(run(first, "-e", "netharden_apply=false"))["changed"] == 0

    # live: the pending actions run once, the units start; then nothing changes. A file
    # changed on the host since (drift in networkd.conf.d) is written back.
    _exec(container, "systemctl", "enable", "--now", "systemd-networkd")
    _exec(container, "sh", "-c", "echo '# drift' >> /etc/systemd/networkd.conf.d/50-netharden.conf")
    _exec(container, "rm", "-f", "/run/netharden-test-calls")
    live = run(first)
    assert _recap(live)["changed"] > 0
    calls = _exec(container, "cat", "/run/netharden-test-calls")
    assert "networkctl reload" in calls and "systemctl daemon-reload" in calls
    assert "sysctl -p /etc/sysctl.d/90-netharden.conf" in calls
    assert "restart" not in calls
    assert _exec(container, "systemctl", "is-active", "netharden-vxlan-gc.timer", "netharden-quarantine.path").split() \
        == ["active", "active"]
    # networkd.conf changed and networkd runs: its restart is pending, not run; docker is not
    # installed here, so its restart is not pending (its daemon.json was written by the
    # netharden_apply=false run: a booted host's dockerd reads it when it starts)
    (pending,) = [line for line in live.stdout.splitlines() if "restart pending" in line]
    assert "restart pending (disruptive, not run): systemctl try-restart systemd-networkd.service." in pending
    assert "netharden_restart_networkd=true" in pending and "docker" not in pending
    assert json.loads(_exec(container, "cat", "/var/lib/netharden/manifest.json"))["pending"] == ["networkd-restart"]
    _exec(container, "rm", "-f", "/run/netharden-test-calls")
    again = run(first)
    assert _recap(again)["changed"] == 0
    assert "reload" not in _exec(container, "cat", "/run/netharden-test-calls")

    # a sysctl changed behind the role's back (sysctl -w, another sysctl.d file) is loaded again
    # although its file did not change; check mode reports it (the manifest would record the
    # load as pending) and changes nothing
    _exec(container, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
    _exec(container, "rm", "-f", "/run/netharden-test-calls")
    check = run(first, "--check", "--diff")
    assert _recap(check)["changed"] == 1 and '+    "sysctl-load"' in check.stdout
    assert "sysctl -p" not in _exec(container, "cat", "/run/netharden-test-calls")
    assert _exec(container, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "0"
    drift = run(first)
    assert _recap(drift)["changed"] > 0
    assert _exec(container, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert _exec(container, "cat", "/run/netharden-test-calls").count("sysctl -p /etc/sysctl.d/90-netharden.conf") == 1
    assert _recap(run(first))["changed"] == 0

    # prune: drop the VXLAN collector and the mask; a file netharden never wrote stays
    _exec(container, "sh", "-c", "echo keep > /etc/systemd/network/99-local.network")
    smaller = dict(profile, networkd={"mask": [], "quarantine": ["/run/systemd/network/00-*.network"],
                                      "foreign_routes": "keep"})
    del smaller["vxlan_gc"]
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(smaller, sort_keys=False))
    tree2 = tmp_path / "tree2"
    netharden.emit(netharden.plan(netharden.load(second)), "tree", tree2)
    _exec(container, "rm", "-f", "/run/netharden-test-calls")
    pruned = run(second)
    assert _recap(pruned)["changed"] > 0
    gone = sorted(set(paths) - {"/" + p for p in tree_files(tree2)})
    assert gone and all(_exec(container, "sh", "-c", f"test -e {p} || test -L {p} || echo gone").strip() == "gone"
                        for p in gone)
    assert _exec(container, "cat", "/etc/systemd/network/99-local.network").strip() == "keep"
    assert _exec(container, "sh", "-c", "test -L /etc/systemd/system/timers.target.wants/netharden-vxlan-gc.timer"
                 " || echo gone").strip() == "gone"
    assert "networkctl reload" in _exec(container, "cat", "/run/netharden-test-calls")
    assert _host_tree(container, ["/" + p for p in tree_files(tree2)], tree2) == tree_files(tree2)
    assert _recap(run(second))["changed"] == 0
