"""Helpers shared by the benchmark scripts: machine description and best-of timing."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time

import numpy as np
import scipy

import sdmodel as sd


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sdmodel": sd.__version__,
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def best_of(fn, repeats: int, warm_up=True):
    """Call ``fn`` ``repeats`` times (after one untimed call: ``fn()`` if ``warm_up`` is True, or ``warm_up()``
    if it is callable); the last result and the timings."""
    if warm_up is True:
        fn()
    elif callable(warm_up):
        warm_up()
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    best = int(np.argmin(walls))
    return out, {"wall_s": walls[best], "cpu_s": cpus[best], "all_wall_s": walls}


def timing_rows(entries, n: int, ratio_key: str, ratio):
    """One result row per ``(key, label, runs measured, best_of timings)``: wall and CPU time, runs/s and the
    time scaled to ``n`` runs, plus ``ratio_key: ratio(per-run wall time)``."""
    rows = []
    for key, label, runs, tm in entries:
        wall = tm["wall_s"]
        per_run = wall / runs
        rows.append({
            "key": key, "method": label, "runs_measured": runs, "wall_s": wall, "cpu_s": tm["cpu_s"],
            "all_wall_s": tm["all_wall_s"], "runs_per_s": runs / wall,
            "wall_s_scaled_to_n": per_run * n, "scaled": runs != n,
            ratio_key: ratio(per_run),
        })
    return rows
