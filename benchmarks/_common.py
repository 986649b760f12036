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
