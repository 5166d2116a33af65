"""A corpus of bad host profiles: every problem is reported once, at the right place.

Each ``tests/bad/NN-short-name.yaml`` starts with a header of YAML comments::

    # case: what is wrong, in one line
    # expect: 9:13 $.bridges[0].name invalid interface name
    # hint: 1-15 characters
    # expect: 14:5 $.docker.daemons[1].bridge not defined

One ``expect:`` line per problem: ``LINE:COL``, the JSON path and a text the message
must contain. An optional ``hint:`` line right after it is a text the problem's hint
must contain. The CLI must print ``FILE:LINE:COL: error: MESSAGE (at $.path)`` for
each of them, exactly as many problems as there are ``expect:`` lines, exit with 2,
never show a traceback and never leave output behind.

A few cases are generated in ``tmp_path`` instead of being committed (a file over
1 MiB, a 0-byte file, a UTF-16 file).
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netharden.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "bad"
CORPUS = sorted(BAD.glob("*.yaml"))
MAX_SECONDS = 2.0  # per case, in-process; the alias bomb in particular must fail fast

_PATH = r"\$(?:\.[A-Za-z0-9_-]+|\[\d+\]|\['(?:[^'\\]|\\.)*'\])*"
EXPECT_RE = re.compile(rf"^# expect: (\d+):(\d+) ({_PATH}) (.+)$")
HINT_RE = re.compile(r"^# hint: (.+)$")
PROBLEM_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*) \(at (?P<path>\$.*)\)$")
SUMMARY_RE = re.compile(r"^(\d+) problems? found$")


@dataclass
class Expect:
    line: int
    col: int
    path: str
    text: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.line}:{self.col} {self.path} {self.text!r}" + (f" hint {self.hint!r}" if self.hint else "")


@dataclass
class Reported:
    file: str
    line: int
    col: int
    path: str
    msg: str
    raw: str
    hint: str = ""
    extra: list = field(default_factory=list)


def parse_header(data: bytes) -> list[Expect]:
    """The expectations in the leading comment block (read as bytes: some cases are not UTF-8)."""
    expects: list[Expect] = []
    for raw in data.split(b"\n"):
        if not raw.startswith(b"#"):
            break
        text = raw.decode("ascii").rstrip("\r")
        if m := EXPECT_RE.match(text):
            expects.append(Expect(int(m[1]), int(m[2]), m[3], m[4]))
        elif m := HINT_RE.match(text):
            assert expects, f"'# hint:' before any '# expect:' line: {text!r}"
            expects[-1].hint = m[1]
        else:
            assert not text.startswith(("# expect", "# hint")), f"malformed header line {text!r}"
    return expects


def parse_report(stderr: str) -> tuple[list[Reported], int | None, list[str]]:
    """Problems, the count of the final summary line, and lines that fit no format."""
    problems: list[Reported] = []
    count, stray = None, []
    for line in stderr.splitlines():
        if m := PROBLEM_RE.match(line):
            problems.append(Reported(m["file"], int(m["line"]), int(m["col"]), m["path"], m["msg"], line))
        elif line.startswith("    hint: ") and problems:
            problems[-1].hint = line[len("    hint: "):]
        elif m := SUMMARY_RE.match(line):
            count = int(m[1])
        else:
            stray.append(line)
    return problems, count, stray


def check_report(shown: str, rc: int, stdout: str, stderr: str, expects: list[Expect]) -> None:
    """Every assertion shared by the in-process and the subprocess runs."""
    output = f"--- exit code {rc}\n--- stdout\n{stdout}--- stderr\n{stderr}"
    assert "Traceback" not in stdout + stderr, f"netharden crashed instead of reporting a problem:\n{output}"
    assert rc == 2, f"exit code {rc}, expected 2\n{output}"
    problems, count, stray = parse_report(stderr)
    assert not stray, f"lines in no known format: {stray}\n{output}"
    for p in problems:
        assert p.file == shown, f"problem names file {p.file!r}, expected {shown!r}: {p.raw}"
        assert p.raw.count("(at $") == 1, f"the message itself contains an '(at $...)' marker, so the path is ambiguous: {p.raw}"
    unmatched = list(problems)
    missing = []
    for exp in expects:
        hit = next((p for p in unmatched if (p.line, p.col, p.path) == (exp.line, exp.col, exp.path)
                    and exp.text in p.msg and exp.hint in p.hint), None)
        if hit is None:
            missing.append(exp)
        else:
            unmatched.remove(hit)
            assert hit.raw.startswith(f"{shown}:{exp.line}:{exp.col}: error: ")
            assert hit.raw.endswith(f"(at {exp.path})")
    assert not missing and not unmatched, (
        "expected problems not reported:\n  " + "\n  ".join(map(str, missing)) +
        "\nreported problems not expected:\n  " + "\n  ".join(p.raw + (f" [hint: {p.hint}]" if p.hint else "") for p in unmatched) +
        f"\n{output}")
    assert count == len(expects), f"summary says {count} problem(s), expected {len(expects)}\n{output}"


# ------------------------------------------------------------------ generated cases
def _big(path: Path) -> list[Expect]:
    head = b"apiVersion: netharden/v1\nkind: HostProfile\nmetadata:\n  name: big-host\n"
    path.write_bytes(head + b"# padding to push the file over 1 MiB\n" * 30_000)
    return [Expect(1, 1, "$", "over the limit of 1048576", "split a fleet into one profile per host")]


def _empty(path: Path) -> list[Expect]:
    path.write_bytes(b"")
    return [Expect(1, 1, "$", "the file is empty", "apiVersion, kind and metadata.name")]


def _utf16(path: Path) -> list[Expect]:
    # what a Windows editor writes when told "Unicode": a BOM and two bytes per character
    path.write_bytes("apiVersion: netharden/v1\nkind: HostProfile\nmetadata:\n  name: bad-host\n".encode("utf-16"))
    return [Expect(1, 1, "$", "file is UTF-16 encoded", "save it as UTF-8")]


GENERATED = {"generated-over-1MiB": _big, "generated-0-bytes": _empty, "generated-utf16": _utf16}


def _run_in_process(capsys, path_arg: str, out: Path) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    try:
        rc = main(["render", path_arg, "--format", "tree", "--out", str(out)])
    except SystemExit as exc:  # argparse; main itself returns its exit code
        rc = exc.code if isinstance(exc.code, int) else 1
    except Exception:  # a crash is reported like the CLI would show it
        rc = 1
        sys.stderr.write(traceback.format_exc())
    elapsed = time.perf_counter() - start
    captured = capsys.readouterr()
    return rc, captured.out, captured.err, elapsed


# ------------------------------------------------------------------------- tests
def test_corpus_is_large_and_well_formed():
    assert len(CORPUS) >= 40, f"only {len(CORPUS)} bad profiles in {BAD}"
    numbers = [p.name.split("-", 1)[0] for p in CORPUS]
    assert len(set(numbers)) == len(numbers), "two files share a number"
    for p in CORPUS:
        assert re.fullmatch(r"\d{2,3}-[a-z0-9-]+\.yaml", p.name), p.name
        data = p.read_bytes()
        assert data.startswith(b"# case: "), f"{p.name}: the header must start with '# case: ...'"
        assert parse_header(data), f"{p.name}: no '# expect:' line"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_profile(path: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    shown = str(path.relative_to(ROOT))  # tests/bad/NN-name.yaml, as a user would type it
    expects = parse_header(path.read_bytes())
    out = tmp_path / "out"
    rc, stdout, stderr, elapsed = _run_in_process(capsys, shown, out)
    check_report(shown, rc, stdout, stderr, expects)
    assert stdout == ""
    assert not out.exists(), "render created the output directory for a bad profile"
    assert list(tmp_path.iterdir()) == [], f"leftovers: {list(tmp_path.iterdir())}"
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f}s"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_bad_profile(name: str, tmp_path: Path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = inputs / f"{name}.yaml"
    expects = GENERATED[name](path)
    out = tmp_path / "out"
    rc, stdout, stderr, elapsed = _run_in_process(capsys, str(path), out)
    check_report(str(path), rc, stdout, stderr, expects)
    assert stdout == ""
    assert not out.exists(), "render created the output directory for a bad profile"
    assert sorted(tmp_path.iterdir()) == [inputs] and sorted(inputs.iterdir()) == [path], "leftovers next to the output"
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f}s"


# A handful through a real process and the 'validate' command: syntax, bomb, hint,
# several problems at once, bytes that are not UTF-8, a raw control character.
SUBPROCESS_CASES = ["02-yaml-tab-indent", "08-alias-bomb", "17-unknown-top-key-typo",
                    "77-multi-three-problems", "91-non-utf8", "93-raw-control-char"]


@pytest.mark.parametrize("stem", SUBPROCESS_CASES)
def test_bad_profile_subprocess(stem: str):
    path = BAD / f"{stem}.yaml"
    assert path.exists(), f"{path} is gone; update SUBPROCESS_CASES"
    shown = str(path.relative_to(ROOT))
    proc = subprocess.run([sys.executable, "-m", "netharden", "validate", shown], cwd=ROOT,
                          capture_output=True, text=True, errors="replace", timeout=30)
    check_report(shown, proc.returncode, proc.stdout, proc.stderr, parse_header(path.read_bytes()))
    assert proc.stdout == ""
