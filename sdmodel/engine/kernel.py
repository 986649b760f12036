"""The fused simulation kernel: the whole time loop of a run in compiled code, runs in parallel.

The batched numpy path (:mod:`sdmodel.engine.simulation`) evaluates a model as some hundreds of
separate array operations per step, each a trip through memory and the interpreter. The
compiler (:mod:`sdmodel.engine.compiler`) also prints the same blocks as *scalar* code for one run
(``_keval``: the unknowns of a step; ``_kmon``: the matrix rows' residuals and the largest
entries). This module wraps that code in a driver that runs every step of the chosen method
(Euler, RK4 or discrete periods), records the requested outputs at the saved times and keeps
the stock-flow monitor's statistics, one parameter set per iteration of a ``prange`` loop,
and compiles it all with numba (``njit``, ``error_model="numpy"``: a division by zero is
``inf``, not an exception, as in numpy). A batch (:func:`lanes_wanted`) goes instead through the
lane kernel of :mod:`sdmodel.engine.lanes`, eight runs at a time in SIMD lanes, where the model's
code allows one; a single run, and a model with a Newton block or a linear system, the scalar one.

The numpy path stays the reference: both give the same numbers (tested to 1e-12 on every
shipped model and the textbook models of the test suite) because the kernel performs the same
floating-point operations in the same order; it differs only where a transcendental function
of numba's math library and numpy's vector loop round differently in the last bit.

Compiled kernels are kept in memory per process and, when a disk cache is in use
(:func:`sdmodel.set_cache_dir`; the CLI uses one), as a generated module in its ``kernels/``
folder (owner-only permissions) with numba's cache of the machine code next to it, so a new
process loads a kernel in a fraction of a second instead of compiling it again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sdmodel.core.errors import MissingDependencyError, SpecError
from sdmodel.core.options import ENGINES
from sdmodel.engine.cache import MemoryCache, disk_cache
from sdmodel.engine.lanes import DRIVER, LANES, VMATH, lane_source

#: methods the kernel integrates; the solve_ivp methods always run on the numpy path
KERNEL_METHODS = ("euler", "rk4", "discrete")
#: changes whenever the driver below changes, so cached kernels are rebuilt
RUNTIME_VERSION = "6"

_RUNTIME = """
import numpy as np
from numba import njit, prange

_JIT = dict(cache=CACHE, error_model="numpy", nogil=True)


@njit(**_JIT)
def _kstep(x, dt):
    v = x / dt + 1.0
    if v < 0.0:
        return 0.0
    if v > 1.0:
        return 1.0
    return v  # NaN stays NaN, as in np.clip


@njit(**_JIT)
def _kheaviside(x):
    if x != x:
        return x
    if x < 0.0:
        return 0.0
    if x > 0.0:
        return 1.0
    return 0.5


@njit(**_JIT)
def _knanmax(a, b):
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@njit(**_JIT)
def _kfmax(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return a if a >= b else b


@njit(**_JIT)
def _kworst(r, Zmax, b, kinds, n_res):
    # the monitor's worst row of run b at a saved time (shared by the scalar and the lane kernel): its residual
    # over the largest entry of its kind so far, and which row (the first of equals; a NaN counts as 0)
    best = 0.0
    row = 0
    for i in range(n_res):
        zs = Zmax[b, kinds[i]]
        sc = zs if (np.isfinite(zs) and zs > 0.0) else 1.0
        rel = abs(r[i]) / sc
        if rel != rel:
            rel = 0.0
        if i == 0 or rel > best:
            best = rel
            row = i
    zs = Zmax[b, kinds[row]]
    sc = zs if (np.isfinite(zs) and zs > 0.0) else 1.0
    return abs(r[row]) / sc, row


@njit(**_JIT)
def _kconverged(F, w, tol):
    for i in range(F.shape[0]):
        if not abs(F[i]) <= tol * (1.0 + abs(w[i])):
            return False
    return True


@njit(**_JIT)
def _ksolve(J, F):
    # LU with partial pivoting (LAPACK's gesv for a small matrix); least squares if singular,
    # as the batched Newton does
    m = F.shape[0]
    A = J.copy()
    x = F.copy()
    for c in range(m):
        piv = c
        best = abs(A[c, c])
        for r in range(c + 1, m):
            if abs(A[r, c]) > best:
                best = abs(A[r, c])
                piv = r
        if best == 0.0:
            return np.linalg.lstsq(J, F)[0]
        if piv != c:
            for k in range(m):
                tmp = A[c, k]
                A[c, k] = A[piv, k]
                A[piv, k] = tmp
            tmp = x[c]
            x[c] = x[piv]
            x[piv] = tmp
        for r in range(c + 1, m):
            f = A[r, c] / A[c, c]
            if f != 0.0:
                for k in range(c + 1, m):
                    A[r, k] -= f * A[c, k]
                x[r] -= f * x[c]
    for c in range(m - 1, -1, -1):
        acc = x[c]
        for k in range(c + 1, m):
            acc -= A[c, k] * x[k]
        x[c] = acc / A[c, c]
    return x


MODEL


@njit(parallel=True, **_JIT)
def _krun(P, S0, tg, Xg, Xh, Xe, save_pos, mode, dt, didx, src, gidx, o_kind, o_idx, kinds, shift, nU, n_res, keep,
          V, Rmax, Zmax, worst, worst_row, Rs, Zs, failed_at, bad_code, R0, Z0):
    B = P.shape[0]
    nS = S0.shape[1]
    n = tg.shape[0]
    nO = o_idx.shape[0]
    # shift: per row 0, gated from zero; 1, from its value at the first step; 2, from zero after the
    # first step (CompiledModel.from_start: an unbalanced start that the model allows)
    from_start = False
    for i in range(n_res):
        if shift[i] != 0:
            from_start = True
    for b in prange(B):
        p = P[b]
        s = S0[b].copy()
        st = np.empty(nS)
        k1 = np.empty(nS)
        k2 = np.empty(nS)
        k3 = np.empty(nS)
        g = np.ones(nU)
        u = np.empty(nU)
        u2 = np.empty(nU)
        r = np.zeros(max(n_res, 1))
        z = np.zeros(2)
        failed = False
        for k in range(n):
            t = tg[k]
            _keval(t, s, p, Xg[k], g, dt, u)
            for i in gidx:  # the Newton blocks' guesses: their last finite values
                if np.isfinite(u[i]):
                    g[i] = u[i]
            if k == 0 and from_start:
                _kmon(t, s, p, Xg[k], u, dt, r, z)
                for i in range(n_res):
                    if shift[i] != 0 and np.isfinite(r[i]):
                        R0[b, i] = r[i]
                Z0[b] = z[1]
            j = save_pos[k]
            if j >= 0:
                _kmon(t, s, p, Xg[k], u, dt, r, z)
                if from_start:
                    for i in range(n_res):
                        if shift[i] == 1 or (shift[i] == 2 and k == 0):
                            r[i] -= R0[b, i]
                for o in range(nO):
                    V[b, j, o] = s[o_idx[o]] if o_kind[o] == 0 else u[o_idx[o]]
                for i in range(n_res):
                    Rmax[b, i] = _kfmax(Rmax[b, i], abs(r[i]))
                Zmax[b, 0] = _kfmax(Zmax[b, 0], z[0])
                Zmax[b, 1] = _kfmax(Zmax[b, 1], z[1])
                if n_res > 0:
                    worst[b, j], worst_row[b, j] = _kworst(r, Zmax, b, kinds, n_res)
                if keep:
                    for i in range(n_res):
                        Rs[b, j, i] = r[i]
                    Zs[b, j, 0] = z[0]
                    Zs[b, j, 1] = z[1]
            if not failed:
                z0 = 0.0
                for i in range(nU):  # branch-free: 0 * x is NaN exactly when x is not finite
                    z0 += 0.0 * u[i]
                if z0 != 0.0:
                    for i in range(nU):
                        if not np.isfinite(u[i]):
                            failed = True
                            failed_at[b] = t
                            bad_code[b] = i
                            break
            if k == n - 1:
                break
            if mode == 2:
                for i in range(nS):
                    st[i] = u[src[i]]
                for i in range(nS):
                    s[i] = st[i]
                continue
            if mode == 0:
                for i in range(nS):
                    s[i] = s[i] + dt * u[didx[i]]
            else:
                h = dt / 2
                for i in range(nS):
                    k1[i] = u[didx[i]]
                    st[i] = s[i] + h * k1[i]
                _kstage(t + h, st, p, Xh[k], g, dt, u2)
                for i in range(nS):
                    k2[i] = u2[didx[i]]
                    st[i] = s[i] + h * k2[i]
                _kstage(t + h, st, p, Xh[k], g, dt, u2)
                for i in range(nS):
                    k3[i] = u2[didx[i]]
                    st[i] = s[i] + dt * k3[i]
                _kstage(t + dt, st, p, Xe[k], g, dt, u2)
                w6 = dt / 6.0
                for i in range(nS):
                    s[i] = s[i] + w6 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + u2[didx[i]])
            if not failed:
                z0 = 0.0
                for i in range(nS):
                    z0 += 0.0 * s[i]
                if z0 == 0.0:
                    continue
                for i in range(nS):
                    if not np.isfinite(s[i]):
                        failed = True
                        failed_at[b] = t + dt
                        bad_code[b] = nU + i
                        break
"""

_LOCK = threading.Lock()
_KERNELS = MemoryCache(32)


def numba_available() -> bool:
    """Whether numba can be imported (the kernel's one extra dependency)."""
    return importlib.util.find_spec("numba") is not None


def resolve(engine: str | None, method: str) -> str:
    """The engine a run uses: ``engine`` (or ``$SDMODEL_ENGINE``, else ``"auto"``) for this method."""
    engine = engine or os.environ.get("SDMODEL_ENGINE") or "auto"
    if engine not in ENGINES:
        raise SpecError(f"engine (--engine, $SDMODEL_ENGINE): {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "numpy" or method not in KERNEL_METHODS:
        if engine == "numba" and method not in KERNEL_METHODS:
            raise SpecError(
                f"engine 'numba' runs the fixed-step and discrete methods ({', '.join(KERNEL_METHODS)}); "
                f"method {method!r} runs on the numpy engine"
            )
        return "numpy"
    if engine == "numba" and not numba_available():
        raise MissingDependencyError("the numba engine needs numba: pip install numba")
    return "numba" if numba_available() else "numpy"


def module_text(kernel_source: str, cache: bool) -> str:
    """The kernel module of a model: the runtime helpers, the model's scalar functions, the driver."""
    model = "\n".join(
        ("@njit(**_JIT)\n" + line) if line.startswith("def ") else line for line in kernel_source.splitlines()
    )
    text = _RUNTIME.replace("CACHE", repr(cache)).replace("MODEL", model)
    lanes = lane_source(kernel_source)
    if lanes is None:  # the model's code has something the lanes do not vectorise: the scalar kernel only
        text += "\n\n_kvrun = None\n"
    else:
        text += VMATH.replace("CACHE", repr(cache)) + "\n" + lanes + DRIVER
    return f'"""sdmodel fused kernel (generated; runtime {RUNTIME_VERSION})."""\n' + text


def _key(kernel_source: str) -> str:
    import numba

    h = hashlib.sha256()
    for part in (RUNTIME_VERSION, numba.__version__, np.__version__, kernel_source):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()[:24]


def load(cm) -> Any:
    """The compiled kernel of ``cm`` (a module or namespace with ``_krun``), built on first use."""
    if not cm.kernel_source:
        raise SpecError(f"model {cm.model.name!r} was compiled without a kernel; compile it again")
    key = _key(cm.kernel_source)
    hit = _KERNELS.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        hit = _KERNELS.get(key)
        if hit is not None:
            return hit
        disk = disk_cache()
        ns = _from_disk(disk.folder / "kernels", key, cm) if disk is not None else None
        if ns is None:
            ns = {}
            exec(compile(module_text(cm.kernel_source, False), f"<sdmodel-kernel:{cm.model.name}>", "exec"), ns)  # noqa: S102 - our own generated code
        kernel = _Kernel(ns["_krun"], ns["_kvrun"], cm.model.name)
        _KERNELS.put(key, kernel)
        return kernel


def _from_disk(folder: Path, key: str, cm):
    """The kernel module written to (or found in) the disk cache's ``kernels/`` folder, or None."""
    text = module_text(cm.kernel_source, True)
    path = folder / f"k_{key}.py"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        name = f"_sdmodel_kernel_{key}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # numba's cache locates a function by its module
        spec.loader.exec_module(mod)
        return vars(mod)
    except OSError:  # a read-only or full cache folder: compile in memory instead
        return None


def lanes_wanted(runs: int) -> bool:
    """Whether a batch of ``runs`` goes through the lane kernel (where the model has one):
    ``$SDMODEL_KERNEL_LANES`` ``on`` (always), ``off`` (never, the scalar kernel) or ``auto`` (the
    default: from half a lane block up; a single run stays scalar)."""
    mode = os.environ.get("SDMODEL_KERNEL_LANES") or "auto"
    if mode not in ("auto", "on", "off"):
        raise SpecError(f"$SDMODEL_KERNEL_LANES: {mode!r} is not one of auto, on, off")
    return mode == "on" or (mode == "auto" and runs >= LANES // 2)


class _Kernel:
    """A loaded kernel: calls the driver (the lane kernel's or the scalar one), and says (when asked)
    that numba is compiling it."""

    def __init__(self, run, vrun, name: str):
        self.run = run
        self.vrun = vrun
        self.name = name
        self.ready = False  # the scalar driver compiled
        self.vready = False
        # one call at a time: each uses every core already, and numba's default threading layer
        # (workqueue) aborts the process when two threads launch parallel work at once
        self._lock = threading.Lock()

    @staticmethod
    def _cached(run) -> bool:
        try:  # numba's index of machine code compiled earlier for this module (private API: best effort)
            return os.path.exists(run._cache._cache_file._index_path)
        except AttributeError:
            return False

    def __call__(self, *args, progress: bool = False) -> None:
        with self._lock:
            self._call(args, progress)

    def _call(self, args, progress: bool) -> None:
        lanes = self.vrun is not None and lanes_wanted(args[0].shape[0])
        run = self.vrun if lanes else self.run
        if self.vready if lanes else self.ready:
            run(*args)
            return
        say = progress and not self._cached(run)
        if say:
            from sdmodel.model.checks import progress_line

            progress_line(f"compiling the fast kernel of {self.name} (once; seconds to a minute)...")
        started = time.perf_counter()
        run(*args)
        if lanes:
            self.vready = True
        else:
            self.ready = True
        if say:
            from sdmodel.model.checks import progress_line

            progress_line(f"kernel of {self.name} compiled in {time.perf_counter() - started:.1f} s")


__all__ = ["ENGINES", "KERNEL_METHODS", "lanes_wanted", "load", "numba_available", "resolve"]
