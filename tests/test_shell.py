"""Every shell script in the repository passes shellcheck (POSIX sh where it says #!/bin/sh)."""
import fnmatch
import subprocess
import tomllib

from helpers import ROOT, need

# scripts the package reads at run time: they must be among the scripts shellcheck sees
PACKAGE_SCRIPTS = (ROOT / "netharden" / "lab" / "holder.sh",)


def shell_scripts():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        path = ROOT / name
        if path.suffix == ".sh" or name == ".ci/run":
            yield path


def test_shellcheck():
    need("shellcheck", "make test installs it")
    scripts = list(shell_scripts())
    assert scripts
    assert set(PACKAGE_SCRIPTS) <= set(scripts), "not tracked by git, so shellcheck would not see it"
    done = subprocess.run(["shellcheck", "--severity=style", *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_scripts_ship_in_the_wheel():
    """A script inside the package is read at run time: pyproject's package-data must take it into
    the wheel (a checkout and an editable install work without)."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    inside = [p for p in shell_scripts() if p.is_relative_to(ROOT / "netharden")]
    assert set(PACKAGE_SCRIPTS) <= set(inside)
    for path in inside:
        package = ".".join(path.parent.relative_to(ROOT).parts)
        globs = package_data.get(package, [])
        assert any(fnmatch.fnmatch(path.name, g) for g in globs), f"{path.relative_to(ROOT)}: not in package-data"
