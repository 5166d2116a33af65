"""Shared test helpers (plain functions; fixtures live in conftest.py)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
FULL_HOST = ROOT / "examples" / "full-host.yaml"
# a valid profile whose files carry quotes, backslashes, percent signs, unicode, tabs,
# "{{", "$(...)": every output format must keep such contents unchanged
AWKWARD_PROFILE = ROOT / "tests" / "data" / "awkward.yaml"
PROFILES = EXAMPLES + [AWKWARD_PROFILE]


def _stack(path: Path) -> str:
    from netharden.stack import stack_for

    platform = yaml.safe_load(path.read_text()).get("platform") or {}
    return stack_for(platform.get("os", "generic"), platform.get("stack"))


# the examples of each network stack (platform.stack, or its default for platform.os);
# the lab runs a Plan's networkd files as they are, so its tests take NETWORKD_EXAMPLES
NETWORKD_EXAMPLES = [p for p in EXAMPLES if _stack(p) == "networkd"]
NETPLAN_EXAMPLES = [p for p in EXAMPLES if _stack(p) == "netplan"]
NETWORKMANAGER_EXAMPLES = [p for p in EXAMPLES if _stack(p) == "networkmanager"]
# the examples whose stack renders networkd files: netplan's Plan has the networkd guards
# (unmanaged, .link, masks, networkd.conf) and netplan renders its YAML to networkd
NETWORKD_FILE_EXAMPLES = NETWORKD_EXAMPLES + NETPLAN_EXAMPLES


def minimal(**extra) -> dict:
    """The smallest valid profile, plus top-level keys."""
    return {"apiVersion": "netharden/v1", "kind": "HostProfile", "metadata": {"name": "host-a"}, **extra}


def write_profile(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def tree_files(root: Path) -> dict[str, bytes | str]:
    """Relative path -> bytes for files, '-> target' for symlinks."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes()
        for name in dirnames:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[str(p.relative_to(root))] = f"-> {os.readlink(p)}"
    return out


def require(missing: str | None) -> None:
    """Skip the calling test because a real part is missing (``missing`` says which and
    how to get it) - but fail under CI=true, where every real part must be present."""
    import pytest

    if missing is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"required for this test in CI: {missing}", pytrace=False)
    pytest.skip(missing)


def need(tool: str, hint: str = "") -> str:
    """The path of ``tool`` on PATH; without it skip the calling test (fail under CI=true,
    see require). ``hint`` says how to get the tool, e.g. which script installs it."""
    path = shutil.which(tool)
    require(None if path is not None else f"{tool} is not installed" + (f" ({hint})" if hint else ""))
    return path


def plan_files(plan) -> dict[str, str]:
    """Path -> content of every file of a Plan."""
    return {f.path: f.content for f in plan.files}


def ini(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse systemd INI text keeping repeated keys: section -> key -> [values]."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return out


def netharden_plan(data: dict):
    """Load a profile mapping and build its Plan (the library path the CLI takes)."""
    import netharden

    return netharden.plan(netharden.load(data))


def lab_context(tmp_path: Path, data):
    """A lab scenario Context for a profile (path or mapping), working in tmp_path."""
    import netharden
    from netharden.lab.scenario import Context

    profile = netharden.load(data)
    return Context(profile, netharden.plan(profile), tmp_path)


def debian_252(**extra) -> dict:
    """A minimal profile for a Debian 12 target (systemd 252, the lab's version in CI)."""
    return minimal(platform={"os": "debian", "systemd": 252}, **extra)


# the booted-Debian images of scripts/build-debian-image.sh, by its release keys: 12 and 11
# with systemd-networkd, 12nm with NetworkManager 1.42 (no ifupdown)
DEBIAN_IMAGES = {
    "12": os.environ.get("NETHARDEN_MOLECULE_IMAGE_DEBIAN12", "localhost/netharden-debian12:latest"),
    "11": os.environ.get("NETHARDEN_MOLECULE_IMAGE_DEBIAN11", "localhost/netharden-debian11:latest"),
    "12nm": os.environ.get("NETHARDEN_MOLECULE_IMAGE_DEBIAN12NM", "localhost/netharden-debian12-nm:latest"),
    "12ifupdown": os.environ.get("NETHARDEN_MOLECULE_IMAGE_DEBIAN12IFUPDOWN",
                                 "localhost/netharden-debian12-ifupdown:latest"),
}
# the debootstrapped root filesystems scripts/build-debian-image.sh caches (per release)
IMAGE_CACHE = Path(os.environ.get("NETHARDEN_IMAGE_CACHE", "/var/cache/netharden/images"))


def debian_rootfs(release: str, dest: Path, *members: str) -> Path:
    """``members`` (e.g. "./etc") of the cached debootstrapped root of ``release``, extracted
    into ``dest``; skips when the tarball is not built (fails under CI=true)."""
    import subprocess
    tarball = IMAGE_CACHE / f"netharden-debian{release}-rootfs.tar.gz"
    require(None if tarball.is_file() else f"{tarball} is missing (sh scripts/build-debian-image.sh {release})")
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(dest), "--no-same-owner", *members],
                   check=True, capture_output=True)
    return dest


def ensure_debian_images(*releases: str) -> str | None:
    """Build the booted-Debian podman images (scripts/build-debian-image.sh: cached, quick
    when present) of the role's tests; returns why they cannot be had, or None."""
    import subprocess
    if shutil.which("podman") is None:
        return "podman is not installed (sh scripts/install-system-deps.sh)"
    if os.geteuid() != 0:
        return "the role's hosts are rootful podman containers with systemd as PID 1: needs root"
    absent = [r for r in releases if DEBIAN_IMAGES[r].startswith("localhost/")
              and subprocess.run(["podman", "image", "exists", DEBIAN_IMAGES[r]]).returncode != 0]
    if not absent:
        return None
    if shutil.which("debootstrap") is None:
        return f"{', '.join(DEBIAN_IMAGES[r] for r in absent)} must be built and debootstrap is not installed " \
               "(sh scripts/install-system-deps.sh)"
    build = subprocess.run(["sh", str(ROOT / "scripts" / "build-debian-image.sh"), *absent],
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout + build.stderr
    return None


def clear_memos() -> None:
    """Empty every memoized renderer part and emitter cache (functools.lru_cache), so a
    test can compare a cold render with a warm one."""
    import importlib
    import pkgutil

    import netharden.emitters
    import netharden.renderers
    from netharden import templating

    templating.precompiled_enabled.cache_clear()
    for package in (netharden.renderers, netharden.emitters):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
