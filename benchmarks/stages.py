"""Per-stage costs of one host, in process: load, validate, normalize, plan, and emit in
every format. Prints figures (so a regression shows where it is); times no test.

    .venv/bin/python benchmarks/stages.py [PROFILE] [--iterations 200]

Columns:
- "first": the stage's first call in this process, including the imports it triggers and
  (plan) loading the templates: what a cold CLI pays for the stage on top of
  interpreter start. Stages run in pipeline order, so each one's first call pays only
  for what the earlier ones did not import.
- "median"/"min": over ``--iterations`` further calls (warm: modules imported, templates
  loaded, validators built).

Validation is shown both ways: the precompiled checker that a valid profile takes
(``validate``) and jsonschema, which every invalid profile runs for its messages
(``validate, jsonschema``: NETHARDEN_PRECOMPILED=0's path). The plan stage repeats one
host, so its parts come from the renderers' memo after the first call (a fleet's shared
parts do too; ``fleet.py --stages`` shows a fleet's per-host costs).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("tree", "cloud-config", "ignition", "butane", "coreos-cloud-config", "plan")


def measure(fn, iterations: int) -> tuple[float, float, float]:
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", nargs="?", default=str(ROOT / "examples" / "full-host.yaml"))
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args(argv)
    n = args.iterations
    rows: list[tuple[str, tuple[float, float, float]]] = []
    state: dict = {}

    def load():
        from netharden.yamlload import load_file
        state["doc"] = load_file(args.profile)

    def validate():
        from netharden.validate import validate as run
        assert not run(state["doc"])

    def validate_jsonschema():
        from netharden import validate as v
        assert not list(v._translate(state["doc"], e) for e in v._validator().iter_errors(state["doc"].data))
        assert not list(v._semantic_problems(state["doc"]))

    def normalize():
        from netharden.profile import normalize as run
        state["profile"] = run(state["doc"].data, source=state["doc"].file)

    def plan():
        from netharden.renderers import build_plan
        state["plan"] = build_plan(state["profile"])

    rows.append(("load (YAML + positions)", measure(load, n)))
    rows.append(("validate", measure(validate, n)))
    rows.append(("normalize", measure(normalize, n)))
    rows.append(("plan (renderers + templates)", measure(plan, n)))
    from netharden import emitters

    with tempfile.TemporaryDirectory(prefix="nh-bench-stages-") as tmp:
        counter = iter(range(10 ** 9))
        for fmt in FORMATS:
            emitter = emitters.get(fmt)
            if emitter.KIND == "directory":
                def emit(emitter=emitter):
                    out = Path(tmp) / f"tree-{next(counter)}"
                    emitters.write_directory(out, lambda root: emitter.fill(state["plan"], root))
                    shutil.rmtree(out)
            else:
                chosen = emitters.options_for(emitter, fmt, {})

                def emit(emitter=emitter, chosen=chosen):
                    emitter.render(state["plan"], **chosen)
            try:
                rows.append((f"emit {fmt}", measure(emit, n)))
            except Exception as exc:  # e.g. coreos-cloud-config refuses files under /usr
                rows.append((f"emit {fmt} (refused: {type(exc).__name__})", (float("nan"),) * 3))
    rows.append(("validate, jsonschema (invalid profiles)", measure(validate_jsonschema, n)))
    load_avg = os.getloadavg()[0]
    print(f"stages of {os.path.relpath(args.profile, ROOT)}, {n} iterations each; load average {load_avg:.2f} "
          f"({os.cpu_count()} cores); NETHARDEN_PRECOMPILED={os.environ.get('NETHARDEN_PRECOMPILED', '1')}")
    print(f"  {'stage':42} {'first ms':>9} {'median ms':>10} {'min ms':>8}")
    for name, (first, med, low) in rows:
        print(f"  {name:42} {first * 1000:9.2f} {med * 1000:10.3f} {low * 1000:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
