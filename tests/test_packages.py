"""hold_packages: the apt preferences pin and the unattended-upgrades blacklist, proved
with the real apt resolver and the real unattended-upgrades matcher."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import minimal, netharden_plan, plan_files, require

PREFS = "/etc/apt/preferences.d/netharden-hold.pref"
UU = "/etc/apt/apt.conf.d/51netharden-unattended-upgrades"
SYSTEM_PYTHON = "/usr/bin/python3"
UU_SCRIPT = "/usr/bin/unattended-upgrade"


def _plan(os_name: str, packages: list[str]):
    return netharden_plan(minimal(platform={"os": os_name}, docker={"hold_packages": packages}))


@pytest.mark.parametrize("os_name", ["debian", "ubuntu", "generic"])
def test_apt_targets_get_both_files(os_name):
    files = plan_files(_plan(os_name, ["docker-ce", "containerd.io"]))
    assert "Package: containerd.io docker-ce\nPin: release a=now\nPin-Priority: 1001\n" in files[PREFS]
    assert '"^containerd\\.io$";' in files[UU] and '"^docker-ce$";' in files[UU]
    assert not any(line.startswith("#") for line in files[UU].splitlines()), "apt.conf comments are //"


@pytest.mark.parametrize("os_name", ["flatcar", "fcos", "coreos"])
def test_image_based_targets_get_a_note_instead(os_name):
    plan = _plan(os_name, ["docker-ce"])
    assert PREFS not in plan_files(plan) and UU not in plan_files(plan)
    (note,) = [n for n in plan.notes if n.startswith("docker.hold_packages")]
    assert "does not apply" in note


def test_explain_prints_the_note(tmp_path, capsys):
    from helpers import write_profile
    from netharden.cli import main

    path = write_profile(tmp_path / "p.yaml", minimal(platform={"os": "flatcar"}, docker={"hold_packages": ["docker-ce"]}))
    assert main(["explain", str(path)]) == 0
    assert "note: docker.hold_packages does not apply to flatcar" in capsys.readouterr().out


def test_no_packages_no_files():
    assert not [p for p in plan_files(_plan("debian", [])) if "/apt/" in p]


# ------------------------------------------------------------------ the real apt resolver
def _apt_env(tmp: Path, prefs: str | None) -> list[str]:
    """apt options for a private, offline apt world: a file: repository offering
    netharden-probe 2.0-1 while the status file says 1.0-1 is installed."""
    (tmp / "repo").mkdir(parents=True, exist_ok=True)
    stanza = ("Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: nobody <nobody@example.invalid>\n"
              "Filename: ./{name}_{version}_all.deb\nSize: 1000\nDescription: probe\n")
    (tmp / "repo" / "Packages").write_text(
        "\n".join(stanza.format(name=n, version="2.0-1") for n in ("netharden-probe", "other-probe")))
    (tmp / "status").write_text("\n".join(
        stanza.format(name=n, version="1.0-1").replace("Architecture", "Status: install ok installed\nArchitecture")
        for n in ("netharden-probe", "other-probe")))
    (tmp / "sources.list").write_text(f"deb [trusted=yes] file:{tmp / 'repo'} ./\n")
    for d in ("lists/partial", "cache/archives/partial", "prefs"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    if prefs is not None:
        (tmp / "prefs" / "netharden-hold.pref").write_text(prefs)
    opts = {"Dir::Etc::SourceList": tmp / "sources.list", "Dir::Etc::SourceParts": tmp / "none",
            "Dir::Etc::Parts": tmp / "none", "Dir::State::Lists": tmp / "lists", "Dir::State::status": tmp / "status",
            "Dir::Cache": tmp / "cache", "Dir::Etc::Preferences": "/dev/null", "Dir::Etc::PreferencesParts": tmp / "prefs",
            "Debug::NoLocking": "1"}
    return [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]


def _simulated_upgrade(tmp: Path, prefs: str | None) -> str:
    opts = _apt_env(tmp, prefs)
    env = {**os.environ, "LC_ALL": "C", "APT_CONFIG": "/dev/null"}
    subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True, env=env)
    return subprocess.run(["apt-get", *opts, "-s", "upgrade"], check=True, capture_output=True, text=True, env=env).stdout


def test_apt_keeps_the_held_package_and_upgrades_the_rest(tmp_path):
    require(None if shutil.which("apt-get") else "apt-get is not installed (Debian/Ubuntu only)")
    baseline = _simulated_upgrade(tmp_path / "baseline", None)
    assert "Inst netharden-probe [1.0-1] (2.0-1" in baseline, baseline  # the harm: upgraded
    prefs = plan_files(_plan("debian", ["netharden-probe"]))[PREFS]
    held = _simulated_upgrade(tmp_path / "held", prefs)
    assert "Inst netharden-probe" not in held, held
    assert "Inst other-probe [1.0-1] (2.0-1" in held, held  # only what the profile names is held


# ---------------------------------------------------- the real unattended-upgrades matcher
UU_PROBE = r"""
import importlib.machinery, importlib.util, json, sys
import apt_pkg
apt_pkg.init_config()
cfg = apt_pkg.Configuration()
for path in sys.argv[1:]:
    apt_pkg.read_config_file(cfg, path)
blacklist = cfg.value_list("Unattended-Upgrade::Package-Blacklist")
loader = importlib.machinery.SourceFileLoader("unattended_upgrade", "/usr/bin/unattended-upgrade")
spec = importlib.util.spec_from_loader(loader.name, loader)
uu = importlib.util.module_from_spec(spec)
loader.exec_module(uu)
names = ["docker-ce", "containerd.io", "docker-ce-cli", "containerdxio", "xdocker-ce", "g++-12", "g++"]
print(json.dumps({"blacklist": blacklist, "kept": {n: uu.is_pkgname_in_blacklist(n, blacklist) for n in names}}))
"""


def test_unattended_upgrades_skips_exactly_the_held_packages(tmp_path):
    require(None if os.path.exists(UU_SCRIPT) and os.path.exists(SYSTEM_PYTHON)
            else "unattended-upgrades is not installed (apt install unattended-upgrades)")
    import json

    conf = tmp_path / "51netharden-unattended-upgrades"
    conf.write_text(plan_files(_plan("debian", ["docker-ce", "containerd.io", "g++-12"]))[UU])
    debian_default = Path("/etc/apt/apt.conf.d/50unattended-upgrades")
    files = ([str(debian_default)] if debian_default.exists() else []) + [str(conf)]
    out = subprocess.run([SYSTEM_PYTHON, "-c", UU_PROBE, *files], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert {"^docker-ce$", "^containerd\\.io$", "^g\\+\\+-12$"} <= set(result["blacklist"])
    assert result["kept"] == {"docker-ce": True, "containerd.io": True, "g++-12": True, "docker-ce-cli": False,
                              "containerdxio": False, "xdocker-ce": False, "g++": False}

