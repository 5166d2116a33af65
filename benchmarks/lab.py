"""Time the whole lab over each example profile (targets on a 2-core machine: the full host
in < 60 s; the NetworkManager example, examples/fcos-k8s.yaml, in <= 30 s). Prints figures;
needs root. Run: sudo .venv/bin/python benchmarks/lab.py"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3


def main() -> int:
    profiles = sorted((ROOT / "examples").glob("*.yaml"))
    print(f"{'profile':38} {'median s':>9} {'min s':>7} {'max s':>7}  slowest scenario")
    for profile in profiles:
        times, slowest = [], ""
        for _ in range(RUNS):
            start = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "netharden", "lab", str(profile), "--json"],
                                  capture_output=True, text=True, cwd=ROOT)
            times.append(time.monotonic() - start)
            if proc.returncode not in (0, 1):
                print(proc.stderr, file=sys.stderr)
                return 2
            doc = json.loads(proc.stdout)
            top = max(doc["scenarios"], key=lambda s: s["seconds"])
            slowest = f"{top['id']} {top['seconds']:.1f} s"
        print(f"{profile.name:38} {statistics.median(times):9.1f} {min(times):7.1f} {max(times):7.1f}  {slowest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
