#!/usr/bin/env python
"""Wall time of ``sdmodel sensitivity japan --method sobol -N 1024`` and its cost per run against a per-run loop.

Runs the study exactly as the command does (studies/japan.yaml: 10 factors incl. a dummy,
N (D + 2) Saltelli rows plus the de-duplicated no-consolidation counterfactuals, in chunks on
one process per core), into a fresh directory, and times it end to end (sample, evaluation,
SALib analysis of every outcome and of every year of the debt paths, files and figures).
The baseline is the same engine one run at a time, ``simulate(cm, params=...)`` in a Python
loop, timed on ``--subset`` rows of the same sample and scaled to the study's runs.

    python benchmarks/bench_sensitivity.py              # N = 1024
    python benchmarks/bench_sensitivity.py --N 256 --subset 5
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import os
import time
from pathlib import Path

import numpy as np

from _common import machine_info
from sdmodel.compiler import compile_model
from sdmodel.options import Execution
from sdmodel.rundirs import run_sensitivity
from sdmodel.sensitivity import Design
from sdmodel.simulation import Solver, simulate
from sdmodel.spec import load_model
from sdmodel.study import load_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="japan")
    ap.add_argument("--N", type=int, default=1024)
    ap.add_argument("--subset", type=int, default=10, help="runs of the per-run loop baseline")
    a = ap.parse_args()
    cfg = load_study(a.study)
    out = Path(tempfile.mkdtemp()) / "study"
    t0 = time.perf_counter()
    # one local process per core, as `sdmodel sensitivity` runs by default
    res = run_sensitivity(cfg, Design(method="sobol", N=a.N, seed=1), out=out,
                          execution=Execution(jobs=os.cpu_count() or 1))
    wall = time.perf_counter() - t0
    runs = len(res.X)
    model_cols = [j for j, f in enumerate(cfg.factors) if not f.dummy and f.name not in cfg.counterfactual]
    cf_runs = len(np.unique(res.X[:, model_cols], axis=0))   # the counterfactual resets only its own parameters
    cm = compile_model(load_model(cfg.model, cfg.scenario))
    names = [f.name for f in cfg.factors if not f.dummy]
    cols = [j for j, f in enumerate(cfg.factors) if not f.dummy]
    simulate(cm, params=dict(zip(names, res.X[0, cols])), solver=Solver(method=cfg.method, dt=cfg.dt))   # warm-up
    t0 = time.perf_counter()
    for i in range(a.subset):
        simulate(cm, params=dict(zip(names, res.X[i, cols])), solver=Solver(method=cfg.method, dt=cfg.dt), throw=False)
    per_run = (time.perf_counter() - t0) / a.subset
    loop = per_run * (runs + cf_runs)
    shutil.rmtree(out.parent, ignore_errors=True)
    m = machine_info()
    print(f"machine: {m}")
    print(f"| study | runs (sample + counterfactual) | sdmodel wall time | per-run loop (scaled from {a.subset}) | ratio |")
    print("|---|---|---|---|---|")
    print(f"| {a.study} sobol N={a.N}, {len(cfg.factors)} factors | {runs} + {cf_runs} | {wall:.0f} s "
          f"({1e3 * wall / (runs + cf_runs):.1f} ms/run, all included) | {loop / 3600:.1f} h ({per_run:.2f} s/run) "
          f"| {loop / wall:.0f}x |")


if __name__ == "__main__":
    main()
