#!/usr/bin/env python
"""Wall time and peak memory of a Sobol' study of bsr Japan, end to end, against a per-run loop.

Runs the study as ``sdmodel sensitivity`` does (sample, chunked evaluation with each chunk saved,
SALib-equivalent analysis of every outcome and of every year of the debt paths, then the files and
figures) into a fresh directory, with one process per core as the command's default (a study on the
fused kernel runs its chunks in one process, which uses every core), and reports its phases, the
peak resident memory of the process (``ru_maxrss``: the high-water mark, children included) and the
kernel's own throughput measured in the same process on one chunk, which bounds the evaluation.

    python benchmarks/bench_sensitivity.py                          # studies/japan.yaml, N = 1024
    python benchmarks/bench_sensitivity.py --factors 8 --N 131072 --no-loop     # 1.3 million runs

``--factors 8``: studies/japan.yaml without ``lam_e`` and the dummy (the four consolidation
factors, ``c_y``, ``dm_threshold``, ``dm_speed``, ``kappa``), written to a temporary study file;
N (D + 2) = 10 N Saltelli rows plus the de-duplicated no-consolidation counterfactual runs.
The baseline is the same engine one run at a time, ``simulate(cm, params=...)`` in a Python loop,
timed on ``--subset`` rows of the same sample and scaled to the study's runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _common import machine_info

from sdmodel.engine.cache import user_cache_dir, using_cache_dir
from sdmodel.core.options import Execution
from sdmodel.report.rundirs import write_sensitivity
from sdmodel.study.sensitivity import Design, compute_sensitivity
from sdmodel.engine.simulation import Solver, simulate, simulate_batch
from sdmodel.study.base import ModelEvaluator, chunk_rows, compiled_model, load_study

#: factors of studies/japan.yaml left out of the 8-factor study
DROP_FOR_8 = ("lam_e", "dummy")


def study_file(name: str, factors: int | None, folder: Path) -> Path | str:
    """The study to run: ``name`` as it is, or (``factors=8``) its 8-factor variant in ``folder``."""
    if factors is None:
        return name
    if factors != 8:
        raise SystemExit("--factors: only 8 (japan without lam_e and the dummy) is defined")
    cfg = load_study(name)
    d = yaml.safe_load(Path(cfg.source).read_text())
    d["model"] = cfg.model  # absolute: the file moves
    for f in DROP_FOR_8:
        d["sensitivity"]["factors"].pop(f)
    path = folder / f"{Path(cfg.source).stem}{factors}.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


class Synthetic:
    """Outcomes without simulating (``--synthetic``): the study's shapes (an outcome each, a value per
    tracked path and year) as cheap smooth functions of the factors scaled to [0, 1], so that the
    pipeline around the simulations (sample, chunk store, outcomes kept, paths on disk, every analysis,
    files) is measured at full size on its own."""

    threaded = True  # cheap: chunks in this process

    def __init__(self, lower, upper, outcomes: int, paths: int, years: int):
        self.lower, self.upper = np.asarray(lower), np.asarray(upper)
        self.outcomes, self.paths, self.years = outcomes, paths, years

    def __call__(self, X):
        U = (np.asarray(X) - self.lower) / (self.upper - self.lower)
        w = np.cos(np.arange(1, U.shape[1] + 1))
        z = U @ w
        Y = np.column_stack([np.sin(z * (1 + j)) + U[:, j % U.shape[1]] ** 2 for j in range(self.outcomes)])
        ramp = np.linspace(0.0, 1.0, self.years)
        P = np.stack([np.sin(z * (1 + v))[:, None] * ramp + U[:, v : v + 1] * ramp**2 for v in range(self.paths)], 1)
        return {"Y": Y, "success": np.ones(len(U), bool), "residual": np.zeros(len(U)), "paths": P}


def synthetic_study(cfg, N: int, out: Path):
    """run_salib on :class:`Synthetic` with the study's factors, outcomes and tracked paths."""
    from sdmodel.study.sensitivity import run_salib, study_problem

    design = Design(method="sobol", N=N, seed=1)
    prob = study_problem(cfg, design)
    ev = Synthetic(
        [f.lower for f in cfg.factors],
        [f.upper for f in cfg.factors],
        len(cfg.outcomes),
        len(cfg.time_varying),
        len(cfg.tv_years),
    )
    return run_salib(
        ev,
        prob,
        design,
        store=out,
        outcomes=[o.name for o in cfg.outcomes],
        paths=(cfg.time_varying, cfg.tv_years),
        execution=Execution(chunk_size=cfg.chunk_size),
        name=cfg.name + "-synthetic",
    )


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def kernel_throughput(cfg, X: np.ndarray, rows: int) -> dict:
    """Runs per second of the batch engine alone on ``rows`` sample rows and their counterfactuals,
    recording what the study records (the needed outputs at every step), outcomes not computed."""
    ev = ModelEvaluator.for_study(cfg, [f.name for f in cfg.factors])
    cm = compiled_model(ev.model, ev.scenario, ev.spec_hash)
    M, cols = ev._params(X[:rows].copy())
    C, ccols = ev._params(X[:rows].copy(), dict(ev.counterfactual))
    U = np.unique(C, axis=0)
    from sdmodel.core.options import SaveAt

    solver, saveat = Solver(method=ev.method, dt=ev.dt), SaveAt(outputs=ev._needs())
    simulate_batch(cm, M[:8], cols, solver=solver, saveat=saveat, throw=False)  # warm (kernel loaded)
    t0 = time.perf_counter()
    simulate_batch(cm, M, cols, solver=solver, saveat=saveat, throw=False)
    simulate_batch(cm, U, ccols, solver=solver, saveat=saveat, throw=False)
    wall = time.perf_counter() - t0
    return {"runs": rows + len(U), "wall_s": wall, "runs_per_s": (rows + len(U)) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="japan")
    ap.add_argument("--factors", type=int, choices=(8,), help="8: the 8-factor variant of the study")
    ap.add_argument("--N", type=int, default=1024)
    ap.add_argument("--subset", type=int, default=10, help="runs of the per-run loop baseline")
    ap.add_argument("--no-loop", action="store_true", help="skip the per-run loop baseline")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument(
        "--synthetic",
        action="store_true",
        help="no simulations: the same shapes of outcomes from cheap functions (all but the kernel)",
    )
    a = ap.parse_args()
    m = machine_info()
    tmp = Path(tempfile.mkdtemp())
    out = tmp / "study"
    with using_cache_dir(user_cache_dir()):  # as the command line: compiled models and kernels reused
        t0 = time.perf_counter()
        cfg = load_study(study_file(a.study, a.factors, tmp))
        if a.synthetic:
            res = synthetic_study(cfg, a.N, out)
        else:  # one local process per core, as `sdmodel sensitivity` runs by default
            res = compute_sensitivity(
                cfg, Design(method="sobol", N=a.N, seed=1), store=out, execution=Execution(jobs=os.cpu_count() or 1)
            )
        t1 = time.perf_counter()
        write_sensitivity(res, out)
        wall = time.perf_counter() - t0
        write_s = time.perf_counter() - t1
        rss = peak_rss_mb()
        runs = len(res.X)
        model_cols = [j for j, f in enumerate(cfg.factors) if not f.dummy and f.name not in cfg.counterfactual]
        cf_runs = len(np.unique(res.X[:, model_cols], axis=0))  # the counterfactual resets only its own parameters
        chunk = chunk_rows(ModelEvaluator.for_study(cfg, [f.name for f in cfg.factors]), cfg.chunk_size)
        kern = kernel_throughput(cfg, res.X, min(chunk, runs, 512 if a.synthetic else runs))
        fig = {
            "machine": m,
            "study": f"{a.study}"
            + (f" ({a.factors} factors)" if a.factors else "")
            + (", synthetic outcomes (no simulations)" if a.synthetic else ""),
            "factors": len(cfg.factors),
            "N": a.N,
            "runs": runs,
            "counterfactual_runs": cf_runs,
            "chunk_size": res.stats.chunk_size,
            "chunks": res.stats.chunks,
            "scheduler": res.stats.scheduler,
            "wall_s": wall,
            "evaluate_s": res.stats.wall_s,
            "sample_and_analysis_s": res.wall_s - res.stats.wall_s,
            "write_s": write_s,
            "peak_rss_mb": rss,
            "ms_per_run": 1e3 * wall / (runs + cf_runs),
            "kernel": kern,
            "evaluation_at_kernel_speed_s": (runs + cf_runs) / kern["runs_per_s"],
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        }
        if not a.no_loop and not a.synthetic:
            cm = compiled_model(cfg.model, cfg.scenario, cfg.spec_hash)
            names = [f.name for f in cfg.factors if not f.dummy]
            cols = [j for j, f in enumerate(cfg.factors) if not f.dummy]
            solver = Solver(method=cfg.method, dt=cfg.dt)
            simulate(cm, params=dict(zip(names, res.X[0, cols])), solver=solver)  # warm-up
            t0 = time.perf_counter()
            for i in range(a.subset):
                simulate(cm, params=dict(zip(names, res.X[i, cols])), solver=solver, throw=False)
            per_run = (time.perf_counter() - t0) / a.subset
            fig["loop_s_per_run"] = per_run
            fig["loop_ratio"] = per_run * (runs + cf_runs) / wall
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {m}")
    print(
        "| study | runs (sample + counterfactual) | chunks | wall, end to end | evaluation (kernel alone) "
        "| sample + analysis | files | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {fig['study']} sobol N={a.N} | {runs:,} + {cf_runs:,} | {fig['chunks']} of {fig['chunk_size']} "
        f"| {wall:.0f} s ({fig['ms_per_run']:.3f} ms/run) | {fig['evaluate_s']:.0f} s "
        f"({fig['evaluation_at_kernel_speed_s']:.0f} s at {kern['runs_per_s']:,.0f} runs/s) "
        f"| {fig['sample_and_analysis_s']:.0f} s | {write_s:.0f} s | {rss:,.0f} MB |"
    )
    if "loop_s_per_run" in fig:
        print(f"per-run loop: {fig['loop_s_per_run']:.3f} s/run, {fig['loop_ratio']:.0f}x the study's time per run")
    if a.json:
        Path(a.json).write_text(json.dumps(fig, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
