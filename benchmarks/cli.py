"""Cold CLI: `netharden render examples/full-host.yaml --format tree --out DIR` against
`netplan generate --root-dir ROOT` on the same network section (benchmarks/netplan/full-host.yaml),
each a fresh process, measured side by side in one run. Target: netharden median <= 0.8 x
netplan median. Prints figures; times no test.

    .venv/bin/python benchmarks/cli.py [--runs 15] [--importtime-runs 7] [--top 15]

Decisions:
- Runs alternate (netharden, netplan, netharden with precompiled artefacts off, ...) so a
  change of load on the machine hits every command alike; the load average is printed
  before and after. Each run is a fresh process; the wall time includes process start
  (fork/exec and the interpreter), as a user or a provisioning script sees it.
- netharden writes into a new directory each run (as a pipeline does); netplan rewrites
  its /run tree under the same root each run (what `netplan generate` always does).
- Bytecode: every command runs with PYTHONPYCACHEPREFIX set to a fresh directory and
  without PYTHONDONTWRITEBYTECODE, and one warm-up run of each (not counted) writes the
  .pyc files there: both tools are timed as installed Python programs run again, not
  compiling their own sources at each start (a shell with PYTHONDONTWRITEBYTECODE=1 and an
  editable install would otherwise compile netharden's modules at every run, and netplan's
  /usr/share/netplan modules ship without .pyc). Nothing is written into the repository or
  system directories.
- "on /usr/bin/python3": the same checkout and packages on the distribution's interpreter,
  which netplan runs on. The venv's interpreter (pyenv's CPython here) runs pure Python
  about a third slower than Debian's; this row separates the two programs from their
  interpreters.
- "precompiled off" runs the same command with NETHARDEN_PRECOMPILED=0: the templates are
  compiled from source and jsonschema validates, as before the precompiled artefacts.
  The imports stay lazy there, so it is not the whole "before" (see docs/performance.md).
- `python -X importtime` of the same render is run several times; per module the median
  self and cumulative microseconds are printed (top N by self time, and the top-level
  imports by cumulative time).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "examples" / "full-host.yaml"
NETPLAN_YAML = ROOT / "benchmarks" / "netplan" / "full-host.yaml"
TARGET = 0.8


def netharden_argv() -> list[str]:
    script = Path(sys.executable).parent / "netharden"
    return [str(script)] if script.exists() else [sys.executable, "-m", "netharden"]


def bench_env(pycache: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(extra)
    return env


SYSTEM_PYTHON = "/usr/bin/python3"


def system_python_env(pycache: Path) -> dict | None:
    """Environment that runs this checkout and this venv's packages on the distribution's
    python3 (the interpreter netplan runs on), when its minor version matches (the C
    extensions' ABI); None otherwise."""
    import sysconfig

    if not os.path.exists(SYSTEM_PYTHON) or os.path.realpath(SYSTEM_PYTHON) == os.path.realpath(sys.executable):
        return None
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True)
    if probe.stdout.split() != [str(v) for v in sys.version_info[:2]]:
        return None
    paths = sysconfig.get_paths()
    return bench_env(pycache, PYTHONPATH=os.pathsep.join([str(ROOT), paths["purelib"], paths["platlib"]]))


def timed(argv: list[str], env: dict, cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def importtime(runs: int, env: dict, cwd: Path = ROOT) -> dict[str, tuple[float, float, int]]:
    """{module: (median self us, median cumulative us, depth)} of a cold render."""
    samples: dict[str, list[tuple[int, int]]] = {}
    depth: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="nh-bench-it-") as tmp:
        for i in range(runs):
            proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "netharden", "render", str(PROFILE),
                                   "--format", "tree", "--out", f"{tmp}/out{i}"],
                                  capture_output=True, text=True, cwd=cwd, env=env)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            for line in proc.stderr.splitlines():
                if not line.startswith("import time:") or "self [us]" in line:
                    continue
                self_us, cum_us, name = line[len("import time:"):].split("|")
                module = name.rstrip()
                depth[module.strip()] = (len(module) - len(module.lstrip())) // 2
                samples.setdefault(module.strip(), []).append((int(self_us), int(cum_us)))
    return {m: (statistics.median(s for s, _ in v), statistics.median(c for _, c in v), depth[m])
            for m, v in samples.items() if len(v) * 2 > runs}  # modules imported in most runs


def print_importtime(runs: int, top: int, env: dict, label: str = "", cwd: Path = ROOT) -> None:
    table = importtime(runs, env, cwd)
    total = sum(s for s, _, _ in table.values())
    print(f"\npython -X importtime of the render{label}, median of {runs} runs: {len(table)} modules, "
          f"{total / 1000:.1f} ms of imports in all")
    print(f"  top {top} by self time:")
    print(f"  {'module':44} {'self ms':>8} {'cumul. ms':>10}")
    for name, (s, c, _) in sorted(table.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {name:44} {s / 1000:8.1f} {c / 1000:10.1f}")
    print(f"  top {top} top-level imports by cumulative time:")
    for name, (s, c, _) in sorted(((n, v) for n, v in table.items() if v[2] == 0), key=lambda kv: -kv[1][1])[:top]:
        print(f"  {name:44} {s / 1000:8.1f} {c / 1000:10.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="runs of each command (default 15, at least 10)")
    ap.add_argument("--importtime-runs", type=int, default=7)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--no-off", action="store_true", help="skip the NETHARDEN_PRECOMPILED=0 runs")
    ap.add_argument("--no-system-python", action="store_true",
                    help="skip the runs of netharden on the distribution's /usr/bin/python3 (netplan's interpreter)")
    ap.add_argument("--baseline", metavar="DIR", help="also time the netharden of another source tree (e.g. "
                    "'git archive HEAD | tar -x -C DIR'), run from DIR with the same interpreter")
    args = ap.parse_args(argv)
    netplan = shutil.which("netplan") or ("/usr/sbin/netplan" if os.path.exists("/usr/sbin/netplan") else None)
    if netplan is None:
        print("netplan is not installed: apt-get install netplan.io (scripts/install-system-deps.sh)", file=sys.stderr)
        return 2
    runs = max(args.runs, 10)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="nh-bench-cli-") as tmp:
        root = Path(tmp) / "netplan-root"
        (root / "etc" / "netplan").mkdir(parents=True)
        target = root / "etc" / "netplan" / "full-host.yaml"
        shutil.copyfile(NETPLAN_YAML, target)
        target.chmod(0o600)  # netplan warns about configuration files others can read
        env = bench_env(Path(tmp) / "pycache")
        off_env = bench_env(Path(tmp) / "pycache", NETHARDEN_PRECOMPILED="0")
        commands = {
            "netharden render": lambda i: timed([*netharden_argv(), "render", str(PROFILE), "--format", "tree",
                                                 "--out", f"{tmp}/out-{i}"], env),
            "netplan generate": lambda i: timed([netplan, "generate", "--root-dir", str(root)], env),
        }
        if not args.no_off:
            commands["netharden, precompiled off"] = lambda i: timed(
                [*netharden_argv(), "render", str(PROFILE), "--format", "tree", "--out", f"{tmp}/off-{i}"], off_env)
        system_python = system_python_env(Path(tmp) / "pycache")
        if system_python and not args.no_system_python:
            sys_argv = [SYSTEM_PYTHON, "-c", "import sys; from netharden.cli import main; sys.exit(main())"]
            commands["netharden on /usr/bin/python3"] = lambda i: timed(
                [*sys_argv, "render", str(PROFILE), "--format", "tree", "--out", f"{tmp}/sys-{i}"], system_python)
        if args.baseline:
            base = Path(args.baseline).resolve()
            base_env = bench_env(Path(tmp) / "pycache", PYTHONPATH=str(base))  # run from DIR: '' leads sys.path
            base_argv = [sys.executable, "-c", "import sys; from netharden.cli import main; sys.exit(main())"]
            commands["netharden baseline"] = lambda i: timed(
                [*base_argv, "render", str(PROFILE), "--format", "tree", "--out", f"{tmp}/base-{i}"], base_env, base)
        for name, run in commands.items():  # warm the page cache and __pycache__; not counted
            run(f"warm-{len(name)}")
        times: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(runs):
            for name, run in commands.items():
                times[name].append(run(str(i)))
        load_after = os.getloadavg()
        print(f"cold CLI, {runs} runs each, alternating; load average {load_before[0]:.2f} before, "
              f"{load_after[0]:.2f} after ({os.cpu_count()} cores)")
        print(f"  {'command':32} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
        for name, values in times.items():
            print(f"  {name:32} {statistics.median(values) * 1000:10.1f} {min(values) * 1000:8.1f} {max(values) * 1000:8.1f}")
        ratio = statistics.median(times["netharden render"]) / statistics.median(times["netplan generate"])
        print(f"  ratio netharden / netplan (medians): {ratio:.2f}  (target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")
        if "netharden on /usr/bin/python3" in times:
            same = statistics.median(times["netharden on /usr/bin/python3"]) / statistics.median(times["netplan generate"])
            print(f"  ratio on the same interpreter as netplan (/usr/bin/python3): {same:.2f}")
        if not args.no_off:
            off = statistics.median(times["netharden, precompiled off"]) / statistics.median(times["netharden render"])
            print(f"  precompiled off / on: {off:.2f}")
        print_importtime(args.importtime_runs, args.top, env)
        if args.baseline:
            print_importtime(args.importtime_runs, args.top, base_env, f" (baseline {args.baseline})", base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
