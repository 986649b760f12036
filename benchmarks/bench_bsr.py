#!/usr/bin/env python
"""Batch throughput of sdmodel on the balance-sheet-recession model (bsr, Japan scenario), in one process.

Measures, for the model ``--model`` (default ``bsr``) with scenario ``--scenario``
(default ``japan``):

0. ``compile_model`` on a cold cache (a fresh, empty ``SDMODEL_CACHE_DIR`` unless
   ``--cache-dir`` is given), then a second, cached call (sdmodel's in-memory cache);
1. one full run, ``simulate(cm)`` with the compiled model, warm
   (best of ``--repeats`` timed calls, after one untimed warm-up run);
2. ``simulate_batch(cm, X, names, throw=False)`` over N parameter sets (default
   10,000) in one call (best of ``--repeats`` timed calls, after one untimed
   warm-up call on ``--subset`` sets); failed runs are counted (``BatchResult.success``);
3. the baseline: the same engine one run at a time, ``simulate(cm, params=..., throw=False)``
   in a Python loop over the first ``--subset`` sets (default 100), scaled to N
   (best of ``--loop-repeats`` timed passes, after one untimed warm-up run);

then checks that the batch and the per-run loop agree on the subset (same success
flags; on runs that succeeded, the outputs ``--outputs`` to a relative 1e-9) and
prints a Markdown table.  The parameter sets vary ``--params`` (default: eight
behavioural parameters of bsr) uniformly within a band around their model values,
drawn with ``numpy.random.default_rng(--seed)``.

    python benchmarks/bench_bsr.py                       # N = 10,000, subset 100
    python benchmarks/bench_bsr.py --quick               # smoke run: N = 500, subset 20
    python benchmarks/bench_bsr.py --json bench_bsr.json # also write the figures as JSON
    python benchmarks/bench_bsr.py --quick --model sim --scenario '' \\
        --params alpha1=0.2,alpha2=0.2,theta=0.2 --outputs Y,Hh,C   # another model

Exit status 1 if the batch and per-run results disagree (success flags, or a
relative difference above 1e-9 on a run that succeeded).  Failed runs are counted
and reported, not an error: a +-20 % band can push the model out of its domain.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

import sdmodel as sd
from _common import best_of, machine_info, timing_rows  # noqa: E402 - benchmarks/ is on sys.path when run as a script

# name -> ("rel", s): U(v (1 - s), v (1 + s)), or ("abs", a): U(v - a, v + a), v = the scenario's value
DEFAULT_PARAMS = ("dm_threshold=0.2,kappa=0.2,lam_e=0.2,c_y=0.2,a_r=0.2,lam_r=0.2,"
                  "cons_start=abs:2,npl1=0.2")
DEFAULT_OUTPUTS = "firm_debt_gdp,gov_debt_gdp,land_price"
REL_TOL = 1e-9


def parse_params(spec: str) -> dict[str, tuple[str, float]]:
    """``name=0.2`` (relative, +-20 %), ``name=rel:0.2`` (the same) or ``name=abs:2`` (+-2 in the parameter's units)."""
    out: dict[str, tuple[str, float]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, val = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected name=spread, got {item!r}")
        kind, _, num = val.rpartition(":")
        kind = kind.strip() or "rel"
        if kind not in ("rel", "abs"):
            raise ValueError(f"{item!r}: the spread is a number, rel:NUMBER or abs:NUMBER")
        spread = float(num)
        if not (np.isfinite(spread) and spread >= 0):
            raise ValueError(f"{item!r}: the spread must be a finite number >= 0")
        out[name.strip()] = (kind, spread)
    if not out:
        raise ValueError("no parameters to vary")
    return out


def param_ranges(model, spec: dict[str, tuple[str, float]]) -> dict[str, tuple[float, float, float]]:
    """name -> (low, high, model value)."""
    missing = [p for p in spec if p not in model.parameters]
    if missing:
        raise SystemExit(f"not parameters of model {model.name!r}: {', '.join(missing)} "
                         f"(parameters: {', '.join(model.parameters)})")
    ranges = {}
    for p, (kind, s) in spec.items():
        v = float(model.parameters[p].value)
        half = abs(v) * s if kind == "rel" else s
        ranges[p] = (v - half, v + half, v)
    return ranges


def sample(ranges: dict[str, tuple[float, float, float]], n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    names = list(ranges)
    lo = np.array([ranges[k][0] for k in names])
    hi = np.array([ranges[k][1] for k in names])
    return lo + (hi - lo) * rng.random((n, len(names))), names


def timed_compile(model, cache_dir: str | None):
    """Wall time of ``compile_model`` with ``SDMODEL_CACHE_DIR`` = ``cache_dir`` (a fresh empty one if None)."""
    old = os.environ.get("SDMODEL_CACHE_DIR")
    tmp = tempfile.TemporaryDirectory(prefix="sdmodel-bench-cache-") if cache_dir is None else None
    os.environ["SDMODEL_CACHE_DIR"] = tmp.name if tmp else cache_dir
    try:
        t0 = time.perf_counter()
        cm = sd.compile_model(model)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        cm = sd.compile_model(model)  # the same model again: sdmodel's in-memory cache
        again = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("SDMODEL_CACHE_DIR", None)
        else:
            os.environ["SDMODEL_CACHE_DIR"] = old
        if tmp:
            tmp.cleanup()
    return cm, first, again


def rel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|), 0 where a == b (both 0 included)."""
    d = np.abs(a - b)
    scale = np.maximum(np.abs(a), np.abs(b))
    return np.where(d == 0, 0.0, d / np.where(scale > 0, scale, 1.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="The table goes to stdout, progress to stderr.")
    ap.add_argument("--model", default="bsr", help="model name, folder or file (default bsr)")
    ap.add_argument("--scenario", default="japan", help="scenario of the model; '' for none (default japan)")
    ap.add_argument("--params", default=DEFAULT_PARAMS,
                    help="parameters to vary, name=SPREAD (relative: U(v(1-s), v(1+s))) or name=abs:A "
                         f"(U(v-A, v+A)), comma-separated; v = the model's value (default {DEFAULT_PARAMS})")
    ap.add_argument("--outputs", default=DEFAULT_OUTPUTS,
                    help=f"outputs compared between batch and loop and reported (default {DEFAULT_OUTPUTS})")
    ap.add_argument("--n", type=int, default=None, help="parameter sets in the batch (default 10000; --quick 500)")
    ap.add_argument("--subset", type=int, default=None,
                    help="runs timed in the per-run loop, scaled to N (default 100; --quick 20)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed calls of the single run and of the batch; the best is reported (default 1)")
    ap.add_argument("--loop-repeats", type=int, default=1,
                    help="timed passes of the per-run loop; the best is reported (default 1)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the parameter draw (default 20240601)")
    ap.add_argument("--cache-dir", default=None,
                    help="SDMODEL_CACHE_DIR for the timed compile (default: a fresh empty temporary folder, "
                         "so the first compile is cold)")
    ap.add_argument("--quick", action="store_true", help="smoke run: N = 500, subset 20 (unless given)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    n = args.n if args.n is not None else (500 if args.quick else 10_000)
    subset = min(args.subset if args.subset is not None else (20 if args.quick else 100), n)
    if min(n, subset, args.repeats, args.loop_repeats) < 1:
        ap.error("--n, --subset, --repeats and --loop-repeats must be positive")
    try:
        spec = parse_params(args.params)
    except ValueError as e:
        ap.error(f"--params: {e}")
    outputs = [s.strip() for s in args.outputs.split(",") if s.strip()]
    if not outputs:
        ap.error("--outputs: no outputs")

    machine = machine_info()
    scenario = args.scenario or None
    model = sd.load_model(args.model, scenario=scenario)
    label = model.name + (f" ({scenario})" if scenario else "")
    ranges = param_ranges(model, spec)
    for p, (lo, hi, _) in ranges.items():
        bounds = getattr(model.parameters[p], "bounds", None)
        if bounds and bounds[0] is not None and bounds[1] is not None and (lo < bounds[0] or hi > bounds[1]):
            print(f"note: the range of {p} [{lo:g}, {hi:g}] leaves its declared bounds "
                  f"[{bounds[0]:g}, {bounds[1]:g}]", file=sys.stderr)
    X, names = sample(ranges, n, args.seed)
    rows = [dict(zip(names, map(float, X[i]))) for i in range(n)]

    # 0. compile ------------------------------------------------------------------------------------
    cold = args.cache_dir is None
    print(f"[0/3] compile_model {label}, {'cold cache' if cold else 'cache dir ' + args.cache_dir} ...",
          file=sys.stderr)
    cm, compile_s, compile_again_s = timed_compile(model, args.cache_dir)
    missing = [o for o in outputs if o not in cm.output_names]
    if missing:
        raise SystemExit(f"not outputs of model {model.name!r}: {', '.join(missing)} "
                         f"(outputs: {', '.join(cm.output_names)})")
    tm = model.time
    print(f"sdmodel {sd.__version__}: {label}, t {tm.start:g}..{tm.stop:g}, dt {tm.dt:g}; N = {n}, subset {subset}, "
          f"seed {args.seed}; compile_model {compile_s:.2f} s", file=sys.stderr)

    # 1. one run, compiled model warm ---------------------------------------------------------------
    print(f"[1/3] simulate(cm): warm-up + best of {args.repeats} ...", file=sys.stderr)
    one, one_t = best_of(lambda: sd.simulate(cm, throw=False), args.repeats)
    t_grid = np.asarray(one.t)

    # 2. batch --------------------------------------------------------------------------------------
    print(f"[2/3] simulate_batch: warm-up on {subset} sets + best of {args.repeats} call(s) of {n} runs ...",
          file=sys.stderr)
    batch, batch_t = best_of(lambda: sd.simulate_batch(cm, X, names, throw=False), args.repeats,
                             warm_up=lambda: sd.simulate_batch(cm, X[:subset], names, throw=False))
    n_failed = int((~batch.success).sum())

    # 3. baseline: per-run loop, same engine --------------------------------------------------------
    print(f"[3/3] simulate(cm, params=...), Python loop over {subset} runs, best of {args.loop_repeats} ...",
          file=sys.stderr)
    sd.simulate(cm, params=rows[0], throw=False)  # warm-up run, untimed
    loop, loop_t = best_of(lambda: [sd.simulate(cm, params=rows[i], throw=False) for i in range(subset)],
                           args.loop_repeats, warm_up=False)

    # 4. agreement on the subset --------------------------------------------------------------------
    loop_ok_flags = np.array([r.success for r in loop])
    flags_agree = bool(np.array_equal(loop_ok_flags, batch.success[:subset]))
    both = loop_ok_flags & batch.success[:subset]
    idx = [list(batch.names).index(o) for o in outputs]
    lv = np.stack([r.values for r in loop])           # (subset, T, V)
    bv = batch.values[:subset]
    agree = {}
    for o, j in zip(outputs, idx):
        a, b = bv[both, :, j], lv[both, :, j]
        agree[o] = {"max_abs": float(np.max(np.abs(a - b))) if a.size else 0.0,
                    "max_rel": float(np.max(rel_diff(a, b))) if a.size else 0.0}
    all_abs = float(np.max(np.abs(bv[both] - lv[both]))) if both.any() else 0.0
    all_rel = float(np.max(rel_diff(bv[both], lv[both]))) if both.any() else 0.0
    values_ok = all(v["max_rel"] <= REL_TOL for v in agree.values())
    check_ok = flags_agree and values_ok

    # report ----------------------------------------------------------------------------------------
    loop_per_run = loop_t["wall_s"] / subset
    entries = [
        ("single", "simulate(cm), one run (warm)", 1, one_t),
        ("batch", f"simulate_batch (one call, N = {n:,})", n, batch_t),
        ("loop", "baseline: simulate(cm, params=...), Python loop", subset, loop_t),
    ]
    results = timing_rows(entries, n, "loop_over_method", lambda per_run: loop_per_run / per_run)
    speedup = results[2]["wall_s_scaled_to_n"] / batch_t["wall_s"]

    band = ", ".join(f"{p} ~ U({lo:.6g}, {hi:.6g})" for p, (lo, hi, _) in ranges.items())
    lines = [
        f"{label}, t {tm.start:g}..{tm.stop:g}, dt {tm.dt:g} ({len(t_grid)} saved steps, "
        f"{len(cm.output_names)} outputs; spec hash {str(getattr(model, 'spec_hash', '?'))[:12]}); "
        f"N = {n:,} parameter sets, seed {args.seed}: {band}.",
        "",
        f"| what | runs measured | wall time (s) | runs/s | time for {n:,} runs (s) | loop / this, per run |",
        "|---|---:|---:|---:|---:|---:|",
        f"| compile_model ({'cold' if cold else 'first call, cache dir ' + args.cache_dir}) | - | "
        f"{compile_s:.3f} | - | - | - |",
        f"| compile_model (again, cached) | - | {compile_again_s:.4f} | - | - | - |",
    ]
    for r in results:
        scaled = f"{r['wall_s_scaled_to_n']:,.2f}" + (" (scaled)" if r["scaled"] else "")
        lines.append(f"| {r['method']} | {r['runs_measured']:,} | {r['wall_s']:.3f} | {r['runs_per_s']:,.1f} | "
                     f"{scaled} | {r['loop_over_method']:,.1f}x |")
    lines += [
        "",
        f"- **Batch speed-up over the per-run loop: {speedup:,.1f}x** = loop time scaled to {n:,} runs / batch "
        f"time. Baseline: `simulate(cm, params=...)` one run at a time, the same engine and method "
        f"({batch.solver.get('method')}, dt {batch.solver.get('dt'):g}).",
        "- Wall time = best of the timed passes (all: " + "; ".join(
            f"{r['key']} " + ", ".join(f"{t:.3f}" for t in r["all_wall_s"]) for r in results) + " s).",
        f"- Single run and batch: best of {args.repeats} call(s), after one untimed warm-up (a run / a batch of "
        f"{subset} sets). Loop: best of {args.loop_repeats} pass(es) over the first {subset} sets after one untimed "
        f"warm-up run; 'time for {n:,} runs' = measured time x {n:,} / runs measured. compile_model is outside "
        f"every other timing.",
        f"- Failed runs: batch {n_failed:,} of {n:,} ({100 * n_failed / n:.1f}%); model values (no draw): "
        f"{'succeeded' if one.success else 'FAILED: ' + one.message}.",
        f"- Agreement, batch vs per-run loop on {subset} runs: success flags "
        f"{'identical' if flags_agree else 'DIFFER'}; {int(both.sum())} runs succeeded in both; "
        + "; ".join(f"{o}: max |diff| {v['max_abs']:.3g}, max rel {v['max_rel']:.3g}" for o, v in agree.items())
        + f"; all {len(cm.output_names)} outputs: max |diff| {all_abs:.3g}, max rel {all_rel:.3g} -> "
        + (f"OK (<= {REL_TOL:g})" if check_ok else f"FAILED (tolerance {REL_TOL:g} on {', '.join(outputs)})") + ".",
        f"- Machine: {machine['cpu']}; os.cpu_count() {machine['cpu_count']}, usable {machine['cpus_usable']}; "
        f"{machine['platform']}; Python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}, "
        f"sdmodel {machine['sdmodel']}; load average {machine['loadavg_1m_at_start']} at start; {machine['date']}.",
    ]
    print("\n".join(lines))
    if not check_ok:
        print("ERROR: batch and per-run results disagree (see 'Agreement' above)", file=sys.stderr)

    if args.json:
        out = {
            "model": model.name, "scenario": scenario, "spec_hash": getattr(model, "spec_hash", None),
            "n": n, "subset": subset, "seed": args.seed,
            "params": {p: {"kind": spec[p][0], "spread": spec[p][1], "value": v, "low": lo, "high": hi}
                       for p, (lo, hi, v) in ranges.items()},
            "t_span": [tm.start, tm.stop], "dt": tm.dt, "steps_saved": len(t_grid),
            "solver": dict(batch.solver), "repeats": args.repeats, "loop_repeats": args.loop_repeats,
            "compile_s": compile_s, "compile_cold": cold, "compile_again_s": compile_again_s,
            "results": results, "batch_speedup_vs_loop": speedup,
            "single_run_success": bool(one.success), "single_run_message": one.message,
            "batch_failed": n_failed,
            "agreement": {
                "success_flags_identical": flags_agree, "runs_compared": int(both.sum()),
                "outputs": agree, "all_outputs_max_abs": all_abs, "all_outputs_max_rel": all_rel,
                "rel_tol": REL_TOL, "ok": check_ok,
            },
            "machine": machine,
        }
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"figures written to {args.json}", file=sys.stderr)

    return 0 if check_ok else 1


if __name__ == "__main__":
    sys.exit(main())
