#!/usr/bin/env python
"""Cost of the estimation's two stages on a config (default: calibration/japan.yaml), against the flop-free
baseline of evaluating the same candidates one at a time.

The mode search evaluates every restart's CMA-ES population in one ``simulate_batch`` call per
generation; emcee's differential-evolution moves evaluate half of the ensemble per call (two calls a
step). Both costs are dominated by the per-call cost of the numpy engine (the interpreter steps through
every time step, whatever the batch size) until batches reach a few hundred runs. This script measures:

* the wall time of one log-posterior call at batch sizes 1, 48, 96, 160, 320 and 640 (a generation of
  10 restarts of popsize 16 is 160; a half-step of 96 walkers is 48);
* the cost per candidate of the same candidates evaluated one per call (the baseline), and the ratio;
* from those, what a mode search (restarts x maxiter generations) and a sampler of W walkers x S steps
  cost at the config's settings.

    python benchmarks/bench_estimation.py                 # japan
    python benchmarks/bench_estimation.py --config china
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import machine_info
from sdmodel.estimate.calibration import Problem, load_config
from sdmodel.estimate.estimation import Posterior


def timed(f, repeat=2):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="japan")
    ap.add_argument("--single", type=int, default=4, help="candidates of the one-at-a-time baseline")
    args = ap.parse_args()
    print(machine_info())
    cfg = load_config(args.config)
    post = Posterior(Problem(cfg))
    print(f"{cfg.source}: {len(post.names)} estimated quantities ({post.n_model} model parameters)")
    X = post.draw_prior(640, np.random.default_rng(0))
    post.log_posterior(X[:2])  # warm: compile and first-call costs
    one = timed(lambda: [post.log_posterior(X[i : i + 1]) for i in range(args.single)], 1) / args.single
    print(f"one candidate per call (baseline): {one:.3f} s per candidate")
    per_call = {}
    for B in (1, 48, 96, 160, 320, 640):
        per_call[B] = timed(lambda: post.log_posterior(X[:B]))
        print(f"batch {B:4d}: {per_call[B]:.3f} s per call, {1000 * per_call[B] / B:8.2f} ms per candidate, "
              f"{one * B / per_call[B]:6.1f}x the baseline")
    s = cfg.estimate
    gen = np.interp(s["restarts"] * s["popsize"], list(per_call), list(per_call.values()))
    half = np.interp(s["walkers"] / 2, list(per_call), list(per_call.values()))
    print(f"mode search at the config's settings ({s['restarts']} restarts x popsize {s['popsize']} x "
          f"{s['maxiter']} generations): about {gen * s['maxiter'] / 60:.1f} min")
    print(f"sampler ({s['walkers']} walkers x {s['steps']} steps, two calls a step): about "
          f"{2 * half * s['steps'] / 60:.1f} min")


if __name__ == "__main__":
    main()
