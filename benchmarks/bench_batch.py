#!/usr/bin/env python
"""Batch throughput of sdmodel on Godley & Lavoie's SIM, in one process.

Measures, for N parameter sets (alpha1, alpha2, theta) drawn with a fixed seed:

1. ``simulate_batch`` with fixed-step RK4 over all N sets in one call
   (best of ``--repeats`` timed calls, after one untimed warm-up call);
2. the same RK4 engine one run at a time: ``simulate(cm, params=..., solver=Solver(method="rk4"))``
   in a Python loop over the first ``--subset`` sets, scaled to N
   (best of ``--loop-repeats`` timed passes, after one untimed warm-up run);
3. scipy's ``solve_ivp`` (RK45, rtol 1e-8, atol 1e-10, ``t_eval`` = the RK4 grid)
   one run at a time over the first ``--ivp-subset`` sets, scaled to N (timed
   like 2), two ways:
   a. driven directly with the compiled right-hand side (``cm.evaluate``), so the
      time is scipy's integrator plus the model's equations and nothing else;
   b. through ``sd.simulate(cm, params=..., solver=Solver(method="RK45"))``, which also records
      every output and the stock-flow residuals at each saved time;

then checks that the results agree (batch vs per-run RK4 to 1e-12; batch RK4 vs
RK45: max relative difference in Hh) and prints a Markdown table.

    python benchmarks/bench_batch.py                      # N = 10,000, subset 200, RK45 subset 100
    python benchmarks/bench_batch.py --n 500 --subset 20  # quick smoke run
    python benchmarks/bench_batch.py --json bench.json    # also write the figures as JSON

Exit status 1 if a run fails or the batch and per-run RK4 results differ by more than 1e-12.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp

import sdmodel as sd
from _common import best_of, machine_info, timing_rows  # noqa: E402 - benchmarks/ is on sys.path when run as a script

PARAM_RANGES = {"alpha1": (0.5, 0.7), "alpha2": (0.3, 0.5), "theta": (0.15, 0.3)}
RTOL, ATOL = 1e-8, 1e-10
IDENTICAL_TOL = 1e-12


def sample(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    names = list(PARAM_RANGES)
    lo = np.array([PARAM_RANGES[k][0] for k in names])
    hi = np.array([PARAM_RANGES[k][1] for k in names])
    return lo + (hi - lo) * rng.random((n, len(names))), names


def ivp_direct(cm, p_row: np.ndarray, t_grid: np.ndarray) -> np.ndarray:
    """One run with scipy's solve_ivp on the compiled RHS; returns the states (T, nS)."""
    didx = cm.state_derivative_index()
    P = p_row[None, :]
    X = np.zeros(0)                       # SIM has no exogenous series
    G = np.ones((1, len(cm.unknown_names)))  # Newton guesses (SIM has no Newton block)
    dt = float(cm.model.time.dt)
    y0 = np.array([cm.model.stocks[x] for x in cm.state_names], dtype=float)

    def fun(t, y):
        return cm.evaluate(t, y[None, :], P, X, G, dt)[0, didx]

    sol = solve_ivp(fun, (t_grid[0], t_grid[-1]), y0, method="RK45", t_eval=t_grid, rtol=RTOL, atol=ATOL)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol.y.T


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| / |b| over points where b != 0 (Hh is exactly 0 at t = 0 in both)."""
    nz = b != 0
    return float(np.max(np.abs(a[nz] - b[nz]) / np.abs(b[nz]))) if nz.any() else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="parameter sets in the batch (default 10000)")
    ap.add_argument("--subset", type=int, default=200,
                    help="runs timed in the per-run RK4 loop, scaled to N (default 200)")
    ap.add_argument("--ivp-subset", type=int, default=None,
                    help="runs timed with solve_ivp RK45, scaled to N (default min(100, --subset))")
    ap.add_argument("--repeats", type=int, default=3, help="timed batch calls; the best is reported (default 3)")
    ap.add_argument("--loop-repeats", type=int, default=3,
                    help="timed passes of each per-run loop; the best is reported (default 3)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the parameter draw")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    n = args.n
    subset = min(args.subset, n)
    ivp_subset = min(args.ivp_subset if args.ivp_subset is not None else min(100, subset), n)
    if min(n, subset, ivp_subset, args.repeats, args.loop_repeats) < 1:
        ap.error("--n, --subset, --ivp-subset, --repeats and --loop-repeats must be positive")

    machine = machine_info()
    model = sd.load_model("sim")
    t0 = time.perf_counter()
    cm = sd.compile_model(model)
    compile_s = time.perf_counter() - t0
    tm = model.time
    if cm.series_names or cm.has_newton:  # what ivp_direct() relies on
        raise SystemExit("this benchmark's direct solve_ivp RHS assumes no exogenous series and no Newton block")
    X, names = sample(n, args.seed)
    print(f"sdmodel {sd.__version__}: SIM, t {tm.start:g}..{tm.stop:g}, dt {tm.dt:g}; "
          f"N = {n}, seed {args.seed}; compile_model {compile_s * 1e3:.1f} ms (not timed below)", file=sys.stderr)

    # 1. batch -------------------------------------------------------------------------------------
    print(f"[1/4] simulate_batch rk4: warm-up + best of {args.repeats} call(s) of {n} runs ...", file=sys.stderr)
    batch, batch_t = best_of(lambda: sd.simulate_batch(cm, X, names, solver=sd.Solver(method="rk4")), args.repeats)
    t_grid = np.asarray(batch.t)
    ih = list(batch.names).index("Hh")

    # 2. per-run loop, same engine -----------------------------------------------------------------
    print(f"[2/4] simulate rk4, Python loop over {subset} runs, best of {args.loop_repeats} ...", file=sys.stderr)
    rows = [dict(zip(names, map(float, X[i]))) for i in range(n)]
    sd.simulate(cm, params=rows[0], solver=sd.Solver(method="rk4"))  # warm-up run, untimed
    loop_vals, loop_t = best_of(
        lambda: np.stack([sd.simulate(cm, params=rows[i], solver=sd.Solver(method="rk4")).values for i in range(subset)]),
        args.loop_repeats, warm_up=False)

    # 3a. solve_ivp directly on the compiled RHS ---------------------------------------------------
    print(f"[3/4] solve_ivp RK45 on the compiled RHS, loop over {ivp_subset} runs, best of {args.loop_repeats} ...",
          file=sys.stderr)
    P = batch.params  # (N, nP): full parameter rows, in cm.param_names order
    ih_state = list(cm.state_names).index("Hh")
    ivp_direct(cm, P[0], t_grid)  # warm-up run, untimed
    ivp_hh, ivp_t = best_of(
        lambda: np.stack([ivp_direct(cm, P[i], t_grid)[:, ih_state] for i in range(ivp_subset)]),
        args.loop_repeats, warm_up=False)

    # 3b. solve_ivp through sd.simulate(method="RK45") ---------------------------------------------
    print(f"[4/4] simulate RK45 (solve_ivp via sdmodel), loop over {ivp_subset} runs, "
          f"best of {args.loop_repeats} ...", file=sys.stderr)
    rk45 = sd.Solver(method="RK45", rtol=RTOL, atol=ATOL)
    sd.simulate(cm, params=rows[0], solver=rk45)  # warm-up run, untimed
    sim45_hh, sim45_t = best_of(
        lambda: np.stack([sd.simulate(cm, params=rows[i], solver=rk45)["Hh"]
                          for i in range(ivp_subset)]),
        args.loop_repeats, warm_up=False)

    # 4. agreement ---------------------------------------------------------------------------------
    bv = batch.values[:subset]
    loop_abs = float(np.max(np.abs(bv - loop_vals)))
    loop_rel = float(np.max(np.abs(bv - loop_vals) / np.maximum(np.abs(loop_vals), 1.0)))
    loop_ok = bool(np.allclose(bv, loop_vals, rtol=IDENTICAL_TOL, atol=IDENTICAL_TOL))
    b_hh = batch.values[:ivp_subset, :, ih]
    rk45_rel = max_rel(b_hh, ivp_hh)
    rk45_abs = float(np.max(np.abs(b_hh - ivp_hh)))
    sim45_vs_direct = float(np.max(np.abs(sim45_hh - ivp_hh)))
    all_ok = bool(batch.success.all())

    # report ---------------------------------------------------------------------------------------
    batch_per_run = batch_t["wall_s"] / n
    entries = [
        ("batch", "simulate_batch, rk4 (one call)", n, batch_t),
        ("rk4_loop", "simulate, rk4, Python loop", subset, loop_t),
        ("rk45_direct", "solve_ivp RK45 on compiled RHS, loop", ivp_subset, ivp_t),
        ("rk45_simulate", 'simulate(method="RK45"), loop', ivp_subset, sim45_t),
    ]
    results = timing_rows(entries, n, "batch_speedup", lambda per_run: per_run / batch_per_run)

    lines = [
        f"SIM (Godley & Lavoie), t 0..{tm.stop:g}, dt {tm.dt:g} ({len(t_grid)} saved steps); "
        f"N = {n} parameter sets, seed {args.seed}: "
        + ", ".join(f"{k} ~ U({a:g}, {b:g})" for k, (a, b) in PARAM_RANGES.items()) + ".",
        "",
        f"| method | runs measured | wall time (s) | runs/s | time for {n:,} runs (s) | batch speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        scaled = f"{r['wall_s_scaled_to_n']:,.2f}" + (" (scaled)" if r["scaled"] else "")
        lines.append(f"| {r['method']} | {r['runs_measured']:,} | {r['wall_s']:.3f} | {r['runs_per_s']:,.1f} | "
                     f"{scaled} | {r['batch_speedup']:,.1f}x |")
    lines += [
        "",
        "- Wall time = best of the timed passes (all: " + "; ".join(
            f"{r['key']} " + ", ".join(f"{t:.3f}" for t in r["all_wall_s"])
            for r in results) + " s).",
        f"- Batch: best of {args.repeats} calls after one untimed warm-up call of the same size. Loops: best of "
        f"{args.loop_repeats} passes over the first {subset} (rk4) / {ivp_subset} (RK45) sets, after one untimed "
        f"warm-up run; 'time for {n:,} runs' = measured time x {n:,} / runs measured. compile_model "
        f"({compile_s * 1e3:.1f} ms; sdmodel caches compiled models) is outside every timing.",
        f"- RK45: rtol {RTOL:g}, atol {ATOL:g}, t_eval = the rk4 grid. 'on compiled RHS' calls scipy.integrate."
        f"solve_ivp directly with cm.evaluate as the right-hand side; 'simulate(method=\"RK45\")' is the same "
        f"solver through sdmodel, which also records all outputs and the stock-flow residuals.",
        "- Batch speed-up = (wall time per run of the method) / (wall time per run of the batch).",
        f"- Agreement: batch vs per-run rk4 on {subset} runs, all outputs: max |diff| {loop_abs:.3g}, "
        f"max relative {loop_rel:.3g} -> {'identical to 1e-12' if loop_ok else 'NOT identical to 1e-12'}.",
        f"- Agreement: batch rk4 vs solve_ivp RK45 on {ivp_subset} runs, Hh: max relative difference "
        f"{rk45_rel:.3g} (max |diff| {rk45_abs:.3g}); simulate(RK45) vs direct solve_ivp: max |diff| "
        f"{sim45_vs_direct:.3g}.",
        f"- All {n} batch runs succeeded: {all_ok}.",
        f"- Machine: {machine['cpu']}; os.cpu_count() {machine['cpu_count']}, usable {machine['cpus_usable']}; "
        f"{machine['platform']}; Python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}, "
        f"sdmodel {machine['sdmodel']}; load average {machine['loadavg_1m_at_start']} at start; {machine['date']}.",
    ]
    print("\n".join(lines))

    if args.json:
        out = {
            "model": "sim", "n": n, "subset": subset, "ivp_subset": ivp_subset, "seed": args.seed,
            "param_ranges": PARAM_RANGES, "t_span": [tm.start, tm.stop], "dt": tm.dt, "steps_saved": len(t_grid),
            "repeats": args.repeats, "loop_repeats": args.loop_repeats, "compile_s": compile_s,
            "rtol": RTOL, "atol": ATOL, "results": results,
            "agreement": {
                "batch_vs_loop_max_abs": loop_abs, "batch_vs_loop_max_rel": loop_rel,
                "batch_vs_loop_identical_1e-12": loop_ok,
                "batch_vs_rk45_hh_max_rel": rk45_rel, "batch_vs_rk45_hh_max_abs": rk45_abs,
                "simulate_rk45_vs_direct_hh_max_abs": sim45_vs_direct,
            },
            "all_batch_runs_succeeded": all_ok, "machine": machine,
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"figures written to {args.json}", file=sys.stderr)

    return 0 if (loop_ok and all_ok) else 1


if __name__ == "__main__":
    sys.exit(main())
