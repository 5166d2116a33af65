"""Every shell script in the repository passes shellcheck (POSIX sh where it says #!/bin/sh)."""
import subprocess

from helpers import ROOT, need


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
    done = subprocess.run(["shellcheck", "--severity=style", *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
