#!/usr/bin/env python
"""sdmodel's batch engine against PySD running the exported model, side by side in one process.

The balance-sheet-recession model, Japan scenario (1980-2030, Euler, dt 1/8, 401 steps), is
exported with ``sdmodel.interop.export`` to a Vensim ``.mdl`` and read with ``pysd.read_vensim``.
N parameter sets (default 10,000) vary eight behavioural parameters in bands around their
scenario values (the same bands and seed as ``bench_bsr.py``).

1. Batch simulation: ``simulate_batch(cm, X, names, solver=Solver(method="euler"), saveat=SaveAt(...))``,
   one call, on one process and on ``--jobs`` processes (default: every core), best of
   ``--repeats`` after a warm-up call, against PySD's ``model.run(params=..., return_columns=...,
   return_timestamps=...)`` in a Python loop over the first ``--subset`` sets (default 20; best
   of ``--loop-repeats`` passes), scaled to N. Both integrate every step (Euler, dt 1/8) and
   record the same columns (every stock and the four debt/GDP ratios) once a year, 1980-2030;
   sdmodel also checks the stock-flow residuals at every recorded time. The loop's results are
   compared with the batch's on the same rows (largest relative difference; must be below 1e-6).
2. A Sobol study, N = ``--sobol-n`` (1024) base samples, 8 factors: SALib's Saltelli sample
   (N (2D + 2) rows with second-order terms off: N (D + 2) = 10,240 runs), the runs, and SALib's
   analysis of three outcomes (firm debt/GDP in 1995, its mean over 1995-2005, government
   debt/GDP in 2019). sdmodel: the whole pipeline, timed end to end. PySD + SALib: the same
   sample run by PySD in a loop, timed on ``--subset`` rows and scaled to all rows, plus the
   same analysis (stated as scaled).

    python benchmarks/bench_pysd.py                 # N = 10,000, subset 20, Sobol N = 1024
    python benchmarks/bench_pysd.py --quick         # N = 1,000, subset 5, Sobol N = 128
    python benchmarks/bench_pysd.py --json out.json

Exit status 1 if the results differ by more than 1e-6 relative.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import sdmodel as sd
from _common import best_of, machine_info  # noqa: E402 - benchmarks/ is on sys.path when run as a script
from bench_bsr import DEFAULT_PARAMS, param_ranges, parse_params  # noqa: E402
from sdmodel.interop.export import _Plan, export_model

TOL = 1e-6
RATIOS = ("hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp", "total_debt_gdp")


def draw(model, n, seed):
    ranges = param_ranges(model, parse_params(DEFAULT_PARAMS))
    names = list(ranges)
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi, _ in ranges.values()])
    return names, X, ranges


def pysd_loop(pm, X, names, exported, columns, years):
    """PySD runs of the rows of X, one at a time; (B, T, C) values."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in X:
            df = pm.run(params={exported[n]: float(v) for n, v in zip(names, row)}, return_columns=columns,
                        return_timestamps=years)
            out.append(df[columns].to_numpy(float))
    return np.stack(out)


def rel_diff(a, b):
    scale = np.maximum(np.abs(b), 1e-9 * np.abs(b).max())
    return float(np.max(np.abs(a - b) / scale))


def outcomes(values, t, cols):
    """(B, 3): firm debt/GDP at 1995, its mean over 1995-2005, government debt/GDP at 2019."""
    f, g = values[:, :, cols.index("firm_debt_gdp")], values[:, :, cols.index("gov_debt_gdp")]
    w = (t >= 1995) & (t <= 2005)
    return np.column_stack([f[:, np.argmin(abs(t - 1995))], f[:, w].mean(axis=1), g[:, np.argmin(abs(t - 2019))]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--subset", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--loop-repeats", type=int, default=1)
    ap.add_argument("--sobol-n", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--jobs", type=int, default=os.cpu_count(), help="processes of the parallel batch row")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.quick:
        a.n, a.subset, a.sobol_n, a.repeats = 1000, 5, 128, 1
    import pysd
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    model = sd.load_model("bsr", "japan")
    cm = sd.compile_model(model)
    plan = _Plan(model)
    ours_cols = [*model.stocks, *RATIOS]
    theirs_cols = [plan.names[c] for c in ours_cols]
    tmp = Path(tempfile.mkdtemp())
    mdl = tmp / "bsr_japan.mdl"
    mdl.write_text(export_model(model, "vensim"))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = pysd.read_vensim(str(mdl))
    t_translate = time.perf_counter() - t0
    names, X, ranges = draw(model, a.n, a.seed)
    years = np.arange(model.time.start, model.time.stop + 0.5, 1.0)

    # 1. batch throughput
    pool = sd.Pool(a.jobs).start()   # its processes spawn in the warm-up call and serve every call after it
    par = sd.Execution(pool=pool)

    def batch(rows, execution=sd.Execution()):
        return sd.simulate_batch(cm, rows, names, solver=sd.Solver(method="euler"),
                                 saveat=sd.SaveAt(t_eval=years, outputs=ours_cols), execution=execution, throw=False)

    res, tm_batch = best_of(lambda: batch(X), a.repeats, warm_up=lambda: batch(X[:a.subset]))
    res_j, tm_jobs = best_of(lambda: batch(X, par), a.repeats, warm_up=lambda: batch(X[:a.subset * 2], par))
    same = bool(np.array_equal(res.values, res_j.values, equal_nan=True))
    sub = X[:a.subset]
    theirs, tm_loop = best_of(lambda: pysd_loop(pm, sub, names, plan.names, theirs_cols, years), a.loop_repeats,
                              warm_up=lambda: pysd_loop(pm, sub[:1], names, plan.names, theirs_cols, years))
    ours_sub = np.stack([res[c][:a.subset] for c in ours_cols], axis=-1)
    diff = rel_diff(ours_sub, theirs)
    per_ours = tm_batch["wall_s"] / a.n
    per_jobs = tm_jobs["wall_s"] / a.n
    per_pysd = tm_loop["wall_s"] / a.subset

    # 2. Sobol study: 8 factors, N base samples
    problem = {"num_vars": len(names), "names": names, "bounds": [[lo, hi] for lo, hi, _ in ranges.values()]}
    t0 = time.perf_counter()
    S = sobol_sample.sample(problem, a.sobol_n, calc_second_order=False, seed=1)
    r = sd.simulate_batch(cm, S, names, solver=sd.Solver(method="euler"),
                          saveat=sd.SaveAt(t_eval=years, outputs=list(RATIOS)), execution=par, throw=False)
    pool.close()
    Y = outcomes(np.stack([r[c] for c in RATIOS], axis=-1), r.t, list(RATIOS))
    ok = np.isfinite(Y).all(axis=1)
    Y = np.where(ok[:, None], Y, np.nanmean(Y[ok], axis=0))   # failed runs: their column mean, flagged below
    indices = [sobol_analyze.analyze(problem, Y[:, k], calc_second_order=False, seed=1) for k in range(3)]
    t_sobol = time.perf_counter() - t0
    t0 = time.perf_counter()
    th = pysd_loop(pm, S[:a.subset], names, plan.names, [plan.names[c] for c in RATIOS], years)
    per_pysd_sobol = (time.perf_counter() - t0) / a.subset
    t0 = time.perf_counter()
    for k in range(3):
        sobol_analyze.analyze(problem, Y[:, k], calc_second_order=False, seed=1)
    t_analyze = time.perf_counter() - t0
    pysd_sobol = per_pysd_sobol * len(S) + t_analyze
    diff_sobol = rel_diff(outcomes(np.stack([r[c][:a.subset] for c in RATIOS], axis=-1), r.t, list(RATIOS)),
                          outcomes(th, r.t, list(RATIOS)))

    m = machine_info()
    print(f"machine: {m['cpu']}, {m['cpus_usable']} usable cores, Python {m['python']}, numpy {m['numpy']}, "
          f"PySD {pysd.__version__}, sdmodel {m['sdmodel']}; load average at start {m['loadavg_1m_at_start']}")
    steps = int(round((model.time.stop - model.time.start) / model.time.dt))
    print(f"model: bsr/japan, {len(model.stocks)} stocks, {len(cm.unknown_names)} equations, Euler dt "
          f"{model.time.dt}: {steps} steps, {len(years)} recorded; PySD read_vensim of the exported file: "
          f"{t_translate:.1f} s")
    print()
    print("| what | runs | wall time (s) | per run (ms) | runs/s | PySD loop / this, per run |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| sdmodel simulate_batch, one process | {a.n:,} | {tm_batch['wall_s']:.2f} | "
          f"{per_ours * 1e3:.3f} | {1 / per_ours:,.0f} | {per_pysd / per_ours:,.0f}x |")
    print(f"| sdmodel simulate_batch, jobs={a.jobs} | {a.n:,} | {tm_jobs['wall_s']:.2f} | "
          f"{per_jobs * 1e3:.3f} | {1 / per_jobs:,.0f} | {per_pysd / per_jobs:,.0f}x |")
    print(f"| PySD model.run in a loop (scaled from {a.subset}) | {a.subset} | {tm_loop['wall_s']:.2f} | "
          f"{per_pysd * 1e3:.1f} | {1 / per_pysd:,.1f} | 1x |")
    print(f"\nsame {a.subset} parameter sets, {len(ours_cols)} columns x {len(years)} years: largest relative "
          f"difference {diff:.1e} (limit {TOL:g}); one process and jobs={a.jobs} identical: {same}; "
          f"failed runs in the batch: {int((~res.success).sum())}")
    print()
    print(f"| Sobol study, {len(names)} factors, N = {a.sobol_n} ({len(S):,} runs, 3 outcomes) | wall time (s) | ratio |")
    print("|---|---:|---:|")
    print(f"| sdmodel: SALib sample + simulate_batch (jobs={a.jobs}) + SALib analyze | {t_sobol:.1f} | 1x |")
    print(f"| PySD loop + SALib (scaled from {a.subset} runs) | {pysd_sobol:,.0f} | {pysd_sobol / t_sobol:,.0f}x |")
    print(f"\nSobol outcomes on the first {a.subset} rows, sdmodel vs PySD: largest relative difference "
          f"{diff_sobol:.1e}; failed runs: {int((~ok).sum())}")
    print("firm debt/GDP mean 1995-2005, total-order indices: "
          + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, indices[1]["ST"])))
    if a.json:
        Path(a.json).write_text(json.dumps({
            "machine": m, "n": a.n, "subset": a.subset, "batch_wall_s": tm_batch["wall_s"],
            "jobs": a.jobs, "batch_jobs_wall_s": tm_jobs["wall_s"], "pysd_loop_wall_s": tm_loop["wall_s"],
            "per_run_ratio": per_pysd / per_ours, "per_run_ratio_jobs": per_pysd / per_jobs, "max_rel_diff": diff,
            "sobol_n": a.sobol_n, "sobol_runs": len(S), "sobol_wall_s": t_sobol, "pysd_sobol_scaled_s": pysd_sobol,
            "sobol_ratio": pysd_sobol / t_sobol, "sobol_max_rel_diff": diff_sobol}, indent=2))
    return 0 if max(diff, diff_sobol) <= TOL and same else 1


if __name__ == "__main__":
    sys.exit(main())
