import json
import os
import subprocess
import sys

import pytest

from netharden.cli import main
from helpers import EXAMPLES, FULL_HOST, ROOT, minimal, tree_files, write_profile


def render(profile, out, *extra):
    return main(["render", str(profile), "--format", "tree", "--out", str(out), *extra])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_render_is_byte_identical_twice(path, tmp_path):
    assert render(path, tmp_path / "a") == 0
    assert render(path, tmp_path / "b") == 0
    a, b = tree_files(tmp_path / "a"), tree_files(tmp_path / "b")
    assert a == b and a


def test_tree_layout_modes_and_masks(tmp_path):
    assert render(FULL_HOST, tmp_path / "t") == 0
    root = tmp_path / "t"
    netdev = root / "etc/systemd/network/10-netharden-dockerbrjenkins.netdev"
    assert oct(netdev.stat().st_mode & 0o777) == "0o644"
    assert oct((root / "etc/systemd/network").stat().st_mode & 0o777) == "0o755"
    mask = root / "etc/systemd/network/50-docker.network"
    assert mask.is_symlink() and os.readlink(mask) == "/dev/null"


def test_two_host_names_give_different_stable_macs(tmp_path):
    bridges = [{"name": "dockerbrci", "addresses": ["10.24.0.1/24"]}]
    macs = []
    for host in ("ci-01", "ci-02"):
        profile = write_profile(tmp_path / f"{host}.yaml", minimal(metadata={"name": host}, bridges=bridges))
        assert render(profile, tmp_path / host) == 0
        text = (tmp_path / host / "etc/systemd/network/10-netharden-dockerbrci.netdev").read_text()
        macs.append([line for line in text.splitlines() if line.startswith("MACAddress=")][0])
    assert macs[0] != macs[1]


def test_existing_output_needs_force_and_is_replaced_whole(tmp_path, capsys):
    out = tmp_path / "out"
    assert render(FULL_HOST, out) == 0
    (out / "stale-file").write_text("x")
    assert render(FULL_HOST, out) == 2
    assert "use --force" in capsys.readouterr().err
    assert (out / "stale-file").exists()
    assert render(FULL_HOST, out, "--force") == 0
    assert not (out / "stale-file").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp leftovers


def test_bad_profile_writes_nothing(tmp_path, capsys):
    bad = write_profile(tmp_path / "bad.yaml", minimal(bridges=[{"name": "bad name"}]))
    assert render(bad, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "(at $.bridges[0].name)" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_missing_parent_directory_is_a_usage_error(tmp_path, capsys):
    assert render(FULL_HOST, tmp_path / "no" / "such") == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_profile_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read: No such file or directory" in capsys.readouterr().err


def test_validate_reports_each_file(tmp_path, capsys):
    bad = write_profile(tmp_path / "bad.yaml", minimal(kind="Nope"))
    assert main(["validate", str(FULL_HOST), str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{FULL_HOST}: ok" in captured.out
    assert "1 problem found" in captured.err


def test_validate_json(tmp_path, capsys):
    bad = write_profile(tmp_path / "bad.yaml", minimal(uplinks=[{"name": "lan", "match": {"name": "e*"}, "dhcp": "maybe"}]))
    assert main(["validate", "--json", str(bad)]) == 2
    (result,) = json.loads(capsys.readouterr().out)
    (problem,) = result["problems"]
    assert problem["path"] == "$.uplinks[0].dhcp" and problem["line"] == 9


def test_explain_names_the_incident_of_every_file(capsys):
    assert main(["explain", str(FULL_HOST)]) == 0
    out = capsys.readouterr().out
    assert "10-netharden-dockerbrjenkins.netdev" in out and "guards incident-3" in out
    assert "50-docker.network -> /dev/null" in out and "networkctl reload" in out
    assert main(["explain", "--json", str(FULL_HOST)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(f["guards"] for f in doc["files"]) and "content" not in doc["files"][0]


@pytest.mark.parametrize("argv", [[], ["render"], ["render", "x", "--format", "nope"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize("argv", [["--help"], ["render", "--help"], ["validate", "--help"], ["schema", "--help"], ["explain", "--help"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0 and "usage:" in capsys.readouterr().out


def test_python_dash_m_works(tmp_path):
    done = subprocess.run([sys.executable, "-m", "netharden", "validate", str(FULL_HOST)], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "ok" in done.stdout


def test_readme_error_example_is_real_output(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Bad input gets one message per problem"):]
    profile = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert shown[0] == "$ netharden validate host.yaml"
    (tmp_path / "host.yaml").write_text(profile)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "host.yaml"]) == 2
    assert capsys.readouterr().err.splitlines() == shown[1:]


def test_render_without_options_writes_a_tree_named_after_the_host(tmp_path, monkeypatch):
    """`netharden render PROFILE`, the headline usage: the tree goes to ./<metadata.name>/
    and the CLI says where; a second run needs --force, as with --out."""
    monkeypatch.chdir(tmp_path)
    cmd = [sys.executable, "-m", "netharden", "render", str(FULL_HOST)]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    assert "wrote tree for build-01 to ./build-01/" in first.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build-01"]
    out = tmp_path / "out"
    assert render(FULL_HOST, out) == 0
    assert tree_files(tmp_path / "build-01") == tree_files(out)
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "use --force" in again.stderr and "Traceback" not in again.stderr
    assert subprocess.run(cmd + ["--force"], capture_output=True, text=True).returncode == 0


def test_render_without_out_refuses_a_file_in_the_way(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "build-01").write_text("not a directory\n")
    assert main(["render", str(FULL_HOST)]) == 2
    assert "build-01" in capsys.readouterr().err
    assert (tmp_path / "build-01").read_text() == "not a directory\n"


def test_stream_formats_without_out_still_go_to_stdout(tmp_path, monkeypatch, capsysbinary):
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(FULL_HOST), "--format", "ignition"]) == 0
    assert json.loads(capsysbinary.readouterr().out)["ignition"]["version"]
    assert list(tmp_path.iterdir()) == []
