#!/usr/bin/env python
"""The fused kernel (sdmodel.engine.kernel) against the numpy engine, PySD and the machine's flop bound, in one process.

The balance-sheet-recession model, Japan scenario (1980-2030), Euler at dt 1/8 (400 steps, 401
evaluations of the model per run), recording every stock and the four debt/GDP ratios once a year
(51 times; the stock-flow monitor runs at each), N parameter sets (default 10,000) drawn in the
bands and with the seed of ``bench_bsr.py`` / ``bench_pysd.py``.

Rows:
- kernel batch, all threads: ``simulate_batch(..., solver=Solver(method="euler", engine="numba"))`` (the lane
  kernel, eight runs at a time in SIMD lanes: :mod:`sdmodel.engine.lanes`)
- kernel batch, one thread (``numba.set_num_threads(1)``)
- the scalar kernel (``SDMODEL_KERNEL_LANES=off``: one run at a time per thread), all threads and one
- numpy engine batch, one process (on the first ``--numpy-subset`` sets, scaled)
- one run through ``sd.simulate`` (the scenario's own method, RK4 at dt 1/8: 1,601 evaluations),
  kernel and numpy engines, and PySD's one run of the exported model (Euler, its own loop)
- PySD ``model.run`` in a loop over ``--subset`` sets (Euler), scaled: the per-run baseline

The flop bound: the arithmetic of one evaluation of the model (``_keval``: each ``+ - * /``, power,
comparison and function call of the generated scalar code counted as one operation, from its syntax
tree) plus the monitor's at the recorded times, times the evaluations of a run, over the machine's
peak rate measured here as a dense matrix product (``numpy.dot``, 2 n^3 flops, all cores). "Fraction
of the bound" = bound time / measured time per run. The scalar kernel's code is scalar per run (one run per
thread), so the SIMD peak of a matrix product is an upper limit it cannot reach; the lane kernel's is vector
code, but with divisions, selects and its own exp/log in place of the product's multiply-adds.

    python benchmarks/bench_kernel.py               # N = 10,000 (about 1 minute after the kernel is compiled)
    python benchmarks/bench_kernel.py --quick       # N = 1,000
    python benchmarks/bench_kernel.py --json out.json
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import sdmodel as sd
from _common import best_of, machine_info  # noqa: E402 - benchmarks/ is on sys.path when run as a script
from bench_pysd import RATIOS, draw, pysd_loop, rel_diff  # noqa: E402
from sdmodel.interop.export import _Plan, export_model


def op_count(source: str, function: str) -> int:
    """Arithmetic operations in one generated kernel function (syntax tree of its body)."""
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    ops = 0
    for node in ast.walk(fn):
        if isinstance(node, ast.BinOp | ast.UnaryOp):
            ops += 1
        elif isinstance(node, ast.Compare):
            ops += len(node.ops)
        elif isinstance(node, ast.Call):
            ops += 1
        elif isinstance(node, ast.IfExp):
            ops += 1
    return ops


def peak_flops(n: int = 2000, repeats: int = 3) -> float:
    """The machine's dense floating-point rate (flop/s, all cores): the best of a few n x n products."""
    a, b = np.random.default_rng(0).random((n, n)), np.random.default_rng(1).random((n, n))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--numpy-subset", type=int, default=2_000)
    ap.add_argument("--subset", type=int, default=10, help="PySD runs in the per-run loop")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.quick:
        a.n, a.numpy_subset, a.subset, a.repeats = 1000, 500, 3, 1
    import numba
    import pysd

    model = sd.load_model("bsr", "japan")
    cm = sd.compile_model(model)
    names, X, _ = draw(model, a.n, a.seed)
    years = np.arange(model.time.start, model.time.stop + 0.5, 1.0)
    cols = [*model.stocks, *RATIOS]
    euler = {"numba": sd.Solver(method="euler", engine="numba"), "numpy": sd.Solver(method="euler", engine="numpy")}
    saveat = sd.SaveAt(t_eval=years, outputs=cols)

    def batch(rows, engine):
        return sd.simulate_batch(cm, rows, names, solver=euler[engine], saveat=saveat, throw=False)

    t0 = time.perf_counter()
    batch(X[:8], "numba")  # compiles the lane kernel (or loads it from the disk cache)
    t_kernel = time.perf_counter() - t0
    threads = numba.get_num_threads()
    res_k, tm_k = best_of(lambda: batch(X, "numba"), a.repeats, warm_up=False)
    numba.set_num_threads(1)
    _, tm_k1 = best_of(lambda: batch(X, "numba"), a.repeats, warm_up=False)
    numba.set_num_threads(threads)
    lanes_env = os.environ.get("SDMODEL_KERNEL_LANES")
    os.environ["SDMODEL_KERNEL_LANES"] = "off"
    batch(X[:2], "numba")  # compiles the scalar kernel
    res_s, tm_s = best_of(lambda: batch(X, "numba"), a.repeats, warm_up=False)
    numba.set_num_threads(1)
    _, tm_s1 = best_of(lambda: batch(X, "numba"), a.repeats, warm_up=False)
    numba.set_num_threads(threads)
    if lanes_env is None:
        del os.environ["SDMODEL_KERNEL_LANES"]
    else:
        os.environ["SDMODEL_KERNEL_LANES"] = lanes_env
    lanes_scalar = float(np.nanmax(np.abs(res_k.values - res_s.values) / (1.0 + np.abs(res_s.values))))
    sub = X[: a.numpy_subset]
    res_n, tm_n = best_of(lambda: batch(sub, "numpy"), max(1, a.repeats - 1), warm_up=lambda: batch(sub[:10], "numpy"))
    agree = float(np.nanmax(np.abs(res_k.values[: len(sub)] - res_n.values) / (1.0 + np.abs(res_n.values))))

    # one run
    one_k, tm_1k = best_of(lambda: sd.simulate(cm, solver=sd.Solver(engine="numba")), 5)
    one_n, tm_1n = best_of(lambda: sd.simulate(cm, solver=sd.Solver(engine="numpy")), 2)
    tmp = Path(tempfile.mkdtemp())
    mdl = tmp / "bsr_japan.mdl"
    mdl.write_text(export_model(model, "vensim"))
    plan = _Plan(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = pysd.read_vensim(str(mdl))
    theirs_cols = [plan.names[c] for c in cols]

    def pysd_one():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pm.run(return_columns=theirs_cols, return_timestamps=years)

    _, tm_1p = best_of(pysd_one, 3)
    theirs, tm_loop = best_of(
        lambda: pysd_loop(pm, X[: a.subset], names, plan.names, theirs_cols, years),
        1,
        warm_up=lambda: pysd_loop(pm, X[:1], names, plan.names, theirs_cols, years),
    )
    ours = np.stack([res_k[c][: a.subset] for c in cols], axis=-1)
    diff_pysd = rel_diff(ours, theirs)

    # the flop bound
    from sdmodel.engine import kernel

    text = kernel.module_text(cm.kernel_source, False)
    ops_eval, ops_mon = op_count(text, "_keval"), op_count(text, "_kmon")
    steps = int(round((model.time.stop - model.time.start) / model.time.dt))
    flops_run = (steps + 1) * ops_eval + len(years) * ops_mon
    peak = peak_flops()
    bound = flops_run / peak
    per = {
        "kernel": tm_k["wall_s"] / a.n,
        "kernel1": tm_k1["wall_s"] / a.n,
        "scalar": tm_s["wall_s"] / a.n,
        "scalar1": tm_s1["wall_s"] / a.n,
        "numpy": tm_n["wall_s"] / len(sub),
        "pysd": tm_loop["wall_s"] / a.subset,
    }
    m = machine_info()
    print(
        f"machine: {m['cpu']}, {m['cpus_usable']} usable cores ({threads} kernel threads), Python {m['python']}, "
        f"numpy {m['numpy']}, numba {numba.__version__}, PySD {pysd.__version__}, sdmodel {m['sdmodel']}; "
        f"load average at start {m['loadavg_1m_at_start']}"
    )
    print(
        f"model: bsr/japan, {len(model.stocks)} stocks, {len(cm.unknown_names)} unknowns; one evaluation "
        f"{ops_eval:,} operations, the monitor {ops_mon:,}; a run (Euler, {steps} steps, {len(years)} recorded) "
        f"{flops_run / 1e6:.2f} M operations; kernel compiled or loaded in {t_kernel:.1f} s"
    )
    print(f"peak rate (numpy.dot, all cores): {peak / 1e9:.1f} Gflop/s -> flop bound {bound * 1e6:.1f} us per run")
    print()
    print("| path | runs | per run (ms) | PySD / this, per run | fraction of the flop bound |")
    print("|---|---:|---:|---:|---:|")
    for key, label, runs in (
        ("kernel", f"kernel batch, {threads} threads", a.n),
        ("kernel1", "kernel batch, 1 thread", a.n),
        ("scalar", f"scalar kernel batch (lanes off), {threads} threads", a.n),
        ("scalar1", "scalar kernel batch (lanes off), 1 thread", a.n),
        ("numpy", f"numpy engine batch, one process (scaled from {len(sub):,})", len(sub)),
        ("pysd", f"PySD model.run in a loop (scaled from {a.subset})", a.subset),
    ):
        print(
            f"| {label} | {runs:,} | {per[key] * 1e3:.4f} | {per['pysd'] / per[key]:,.0f}x | {bound / per[key]:.3f} |"
        )
    print()
    print("| one run | wall (ms) | PySD's one run / this |")
    print("|---|---:|---:|")
    for label, tm in (
        ("sd.simulate, kernel (RK4, dt 1/8)", tm_1k),
        ("sd.simulate, numpy engine (RK4, dt 1/8)", tm_1n),
        ("PySD model.run (Euler, dt 1/8)", tm_1p),
    ):
        print(f"| {label} | {tm['wall_s'] * 1e3:.1f} | {tm_1p['wall_s'] / tm['wall_s']:.1f}x |")
    one_diff = float(np.nanmax(np.abs(one_k.values - one_n.values) / (1.0 + np.abs(one_n.values))))
    print(
        f"\nkernel vs numpy engine: batch {agree:.1e}, one run {one_diff:.1e} (largest relative difference); "
        f"lane vs scalar kernel: batch {lanes_scalar:.1e}; "
        f"kernel vs PySD on {a.subset} runs: {diff_pysd:.1e}; failed runs in the kernel batch: "
        f"{int((~res_k.success).sum())}"
    )
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "machine": m,
                    "threads": threads,
                    "n": a.n,
                    "per_run_s": per,
                    "one_run_s": {"kernel": tm_1k["wall_s"], "numpy": tm_1n["wall_s"], "pysd": tm_1p["wall_s"]},
                    "ops_eval": ops_eval,
                    "ops_monitor": ops_mon,
                    "flops_per_run": flops_run,
                    "peak_flops": peak,
                    "bound_s": bound,
                    "agree_numpy": agree,
                    "agree_pysd": diff_pysd,
                },
                indent=2,
            )
        )
    os.environ.pop("SDMODEL_ENGINE", None)
    return 0 if agree <= 1e-9 and diff_pysd <= 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
