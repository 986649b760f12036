"""Start-up: `import sdmodel`, and `sdmodel run` on a model whose compile is cached, each in fresh processes.

What issue 28 asks of them: `import sdmodel` under 0.5 s, `sdmodel run` with a cached compile under 2 s
wall. Every timed command is a new Python process (`sys.executable`), as a user's is:

- `import sdmodel`: ``python -c "import sdmodel"``, best and median of ``--repeats``;
- a warm run: ``python -m sdmodel.cli run MODEL --scenario S --out FRESH`` with a private compile cache
  (``SDMODEL_CACHE_DIR`` in a temporary folder): one untimed run fills it (compiles the model and its
  kernel, records the model's files), then ``--repeats`` timed runs, each into a new ``--out`` folder
  (a run never writes over another's).

Wall time (``time.perf_counter`` around the process) and CPU time (user + system of the child, from
``resource.getrusage``); the load average at the start and end, as the machine may be shared.

    python benchmarks/bench_startup.py                  # bsr/japan, 5 repeats (about a minute)
    python benchmarks/bench_startup.py --engine numpy   # the same runs on the numpy engine
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall, cpu) seconds of one process running ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(name: str, times: list[tuple[float, float]]) -> dict:
    walls, cpus = [w for w, _ in times], [c for _, c in times]
    row = {
        "what": name,
        "wall_best": min(walls),
        "wall_median": statistics.median(walls),
        "cpu_best": min(cpus),
        "cpu_median": statistics.median(cpus),
    }
    print(
        f"{name:<44} wall best {row['wall_best']:.2f} s, median {row['wall_median']:.2f} s; "
        f"cpu best {row['cpu_best']:.2f} s, median {row['cpu_median']:.2f} s"
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bsr")
    ap.add_argument("--scenario", default="japan")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--engine", choices=("auto", "numba", "numpy"), default=None)
    ap.add_argument("--no-figure", action="store_true", help="runs without figure.png")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SDMODEL_CACHE_DIR": str(Path(tmp) / "cache")}
        if args.engine:
            env["SDMODEL_ENGINE"] = args.engine
        rows.append(
            summary(
                "import sdmodel", [timed([sys.executable, "-c", "import sdmodel"], env) for _ in range(args.repeats)]
            )
        )
        cmd = [sys.executable, "-m", "sdmodel.cli", "run", args.model, "--scenario", args.scenario]
        cmd += ["--no-figure"] if args.no_figure else []
        timed([*cmd, "--out", str(Path(tmp) / "runs" / "warm-up")], env)  # compiles and records: not timed
        runs = [timed([*cmd, "--out", str(Path(tmp) / "runs" / f"run-{i}")], env) for i in range(args.repeats)]
        label = f"sdmodel run {args.model} --scenario {args.scenario}" + (" --no-figure" if args.no_figure else "")
        rows.append(summary(label + ", warm", runs))
    load1 = os.getloadavg()[0]
    print(f"load average (1 min) {load0:.2f} at the start, {load1:.2f} at the end; {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load": [load0, load1], "engine": args.engine}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
