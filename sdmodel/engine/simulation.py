"""Simulate a compiled model: one run, or a whole batch of parameter sets in one call.

Continuous time: fixed-step ``"euler"`` and ``"rk4"`` (batched), or any
``scipy.integrate.solve_ivp`` method (``"RK45"``, ``"LSODA"``, ``"Radau"``, ...)
for single runs.  Discrete time (``time: {mode: discrete}``): the period
system is solved period by period (``"discrete"``).

Every run reports its stock-flow residual series: each matrix row's sum at
every saved step, relative to the largest flow (or stock entry) of the run. A model
that allows an unbalanced start (``allow_unbalanced_start``) has each balance-sheet
row measured from its value at the run's first step instead: the offset the start
gives it is accepted (and warned about, :class:`UnbalancedStartWarning`), every change
after it is gated.

Options come as small frozen objects (:mod:`sdmodel.core.options`): ``Solver`` (how to
integrate), ``SaveAt`` (what to keep) and, for batches, ``Execution`` (where to
compute: blocks, processes, a :class:`~sdmodel.core.options.Pool` kept across calls).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sdmodel.core.errors import ExtrapolationWarning, SimulationError, SpecError, UnbalancedStartWarning
from sdmodel.core.options import FIXED_METHODS, IVP_METHODS, Execution, Pool, SaveAt, Solver
from sdmodel.core.validate import closest, suggestion
from sdmodel.engine.compiler import CompiledModel, compile_model
from sdmodel.engine.results import BatchResult, SimulationResult
from sdmodel.model.checks import ALLOW_HINT
from sdmodel.model.names import split_marker
from sdmodel.model.spec import Model, load_model


def _compiled(model, progress: bool = False, allow_unbalanced_start: bool | None = None) -> CompiledModel:
    if isinstance(model, CompiledModel):
        if allow_unbalanced_start is None:
            return model
        return model.allowing_unbalanced_start(allow_unbalanced_start)
    return compile_model(
        model if isinstance(model, Model) else load_model(model),
        progress=progress,
        allow_unbalanced_start=allow_unbalanced_start,
    )


def _param_matrix(cm: CompiledModel, X, names, *, within_bounds: bool = False) -> np.ndarray:
    base = np.array([cm.model.parameters[p].value for p in cm.param_names], dtype=float)
    if X is None:
        return base[None, :]
    if hasattr(X, "columns") and names is None:  # DataFrame
        names = [str(c) for c in X.columns]
        X = X.to_numpy(dtype=float)
    elif isinstance(X, Mapping):
        names = list(X)
        X = np.column_stack([np.broadcast_to(np.asarray(X[k], dtype=float), np.shape(X[names[0]])) for k in names])
    X = np.atleast_2d(np.asarray(X, dtype=float))
    if X.shape[0] == 0:
        raise SpecError("a parameter matrix with no rows: give at least one parameter set to run")
    if names is None:
        if X.shape[1] != len(cm.param_names):
            raise SpecError(
                f"a parameter matrix without names needs {len(cm.param_names)} columns "
                f"({', '.join(cm.param_names)}), got {X.shape[1]}"
            )
        names = list(cm.param_names)
    names = list(names)
    if len(names) != X.shape[1]:
        raise SpecError(f"{len(names)} parameter names for a matrix with {X.shape[1]} columns")
    bad = [n for n in names if n not in cm.param_names]
    if bad:
        hints = [closest(n, cm.param_names) for n in bad]
        raise SpecError(
            f"not parameters of model {cm.model.name!r}: "
            + ", ".join(f"{n!r}" + (f" (did you mean {h!r}?)" if h else "") for n, h in zip(bad, hints))
        )
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise SpecError(f"parameter matrix row {r}, column {names[c]!r}: expected a finite number, got {X[r, c]}")
    if within_bounds:  # a value the model file declares impossible is a mistake, not an experiment
        for j, n in enumerate(names):
            b = cm.model.parameters[n].bounds
            if b is not None and ((X[:, j] < b[0]) | (X[:, j] > b[1])).any():
                v = X[:, j][(X[:, j] < b[0]) | (X[:, j] > b[1])][0]
                raise SpecError(f"parameter {n!r}: {v:g} is outside its declared bounds [{b[0]:g}, {b[1]:g}]")
    P = np.repeat(base[None, :], X.shape[0], axis=0)
    for j, n in enumerate(names):
        P[:, cm.param_names.index(n)] = X[:, j]
    return P


def _series_plan(cm: CompiledModel):
    """(series, time shift) for each series column of the compiled model; built once per run."""
    out = []
    for name in cm.series_names:
        kind, base = split_marker(name)
        out.append((cm.model.series[base], 1.0 if kind == "lag" else 0.0))
    return tuple(out)


def _series_at(plan, t: float) -> np.ndarray:
    return np.array([float(series(t - shift)) for series, shift in plan], dtype=float)


def _grid(t0, t1, dt, what="dt"):
    n = (t1 - t0) / dt
    if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
        raise SpecError(f"t_span ({t0:g}, {t1:g}) is not a whole number of steps of {what}={dt:g}")
    n = int(round(n))
    return t0 + dt * np.arange(n + 1), n


def grid_points(cm: CompiledModel, t_span=None, method: str | None = None, dt: float | None = None) -> int:
    """How many grid points (steps + 1) a run of ``cm`` integrates over ``t_span`` (default the model
    file's) with ``method`` and ``dt``: what a caller sizing memory for a run's paths needs."""
    t0, t1, method, dt = _settings(cm, t_span, method, dt)
    return len(_grid(t0, t1, dt, "dt" if method != "discrete" else "one period")[0])


def _select(t_grid, t_eval):
    if t_eval is None:
        return np.arange(len(t_grid))
    t_eval = np.asarray(t_eval, dtype=float)
    idx = np.searchsorted(t_grid, t_eval - 1e-9)
    ok = (idx < len(t_grid)) & (np.abs(t_grid[np.minimum(idx, len(t_grid) - 1)] - t_eval) < 1e-9)
    if not ok.all():
        bad = t_eval[~ok][0]
        raise SpecError(f"t_eval {bad:g} is not on the step grid; fixed-step and discrete runs save at grid points")
    return idx


class _Recorder:
    """Saved outputs, stored (T, V, B) while recording (each variable's B values are contiguous in the
    column-major S and U, so a step's record is a row gather), viewed as (B, T, V) at the end.

    Residuals are kept as running maxima per run (all a batch needs); the full
    series only when asked (single runs always keep it).
    """

    def __init__(self, cm, B, n_save, keep_series, outputs=None, allocate=True):
        self.cm = cm
        self.names = tuple(cm.output_names if outputs is None else outputs)
        src = []
        for name in self.names:
            if not cm.discrete and name in cm.state_names:
                src.append(("S", cm.state_names.index(name)))
            else:
                src.append(("U", cm.unknown_names.index(name)))
        self.src = src
        self.s_idx = [i for k, i in src if k == "S"]
        self.u_idx = [i for k, i in src if k == "U"]
        self.order = np.argsort(
            [n for n, _ in enumerate(src) if src[n][0] == "S"] + [n for n, _ in enumerate(src) if src[n][0] == "U"]
        )
        # the kernel path writes its own arrays in and replaces these
        self.V = np.empty((n_save, len(src), B) if allocate else (0, 0, 0))
        nR = len(cm.residual_names)
        self.Rmax = np.zeros((nR, B)).T  # column-major, like the monitor's R and Z
        self.Zmax = np.zeros((2, B)).T
        self.R = np.empty((n_save, B, nR)) if keep_series and allocate else None
        self.Z = np.empty((n_save, B, 2)) if keep_series and allocate else None
        # per saved step, each run's largest residual relative to the largest entry *so far* and its
        # row: where a run first leaves the tolerance (the so-far scale never exceeds the final one,
        # so a run that fails on its final relative residual is always found here too)
        self.kinds = np.array([0 if k == "flow" else 1 for k in cm.residual_kinds], dtype=int)
        self.worst = np.zeros((n_save, B) if allocate else (0, 0))
        self.worst_row = np.zeros((n_save, B) if allocate else (0, 0), dtype=np.int32)
        self.bad_var: dict[int, str] = {}
        # how the gate treats each row at the start (CompiledModel.from_start), each run's residuals at
        # its first step where it is not from zero (0 elsewhere) and the largest stock entry there: start()
        self.shift = np.array(cm.from_start, dtype=np.int64)
        self.R0 = np.zeros((nR, B)).T
        self.Z0 = np.zeros(B)

    def start(self, t, S, P, X, U, dt, b=slice(None)):
        """Note each run's residuals at the first step, from which the rows of ``shift`` are measured."""
        R, Z = self.cm.monitor(t, S, P, X, U, dt)
        R = R[:, : self.R0.shape[1]]
        self.R0[b] = np.where((self.shift > 0) & np.isfinite(R), R, 0.0)
        self.Z0[b] = Z[:, 1]

    def first_bad(self, bad, U):
        """Remember, for runs that just failed, the first unknown (in solution order) that is not finite."""
        for b in np.flatnonzero(bad):
            self.bad_var[int(b)] = self.cm.unknown_names[int(np.argmax(~np.isfinite(U[b])))]

    def put(self, k, t, S, P, X, U, dt, b=slice(None), first=False):
        """Record saved step ``k``; ``first``: it is the run's first step."""
        R, Z = self.cm.monitor(t, S, P, X, U, dt)
        R = R[:, : self.Rmax.shape[1]]
        if self.shift.any():
            R = R - (self.R0[b] if first else np.where(self.shift == 1, self.R0[b], 0.0))
        vals = np.concatenate([S.T[self.s_idx], U.T[self.u_idx]], axis=0)
        self.V[k, :, b] = vals[self.order]
        with np.errstate(invalid="ignore"):
            self.Rmax[b] = np.fmax(self.Rmax[b], np.abs(R))
            self.Zmax[b] = np.fmax(self.Zmax[b], Z)
            if R.shape[1]:
                zs = self.Zmax[b]
                scale = np.where(np.isfinite(zs) & (zs > 0), zs, 1.0)[:, self.kinds]
                rel = np.abs(R) / scale
                self.worst_row[k, b] = np.argmax(np.nan_to_num(rel, nan=0.0), axis=1)
                self.worst[k, b] = np.take_along_axis(rel, self.worst_row[k, b][:, None], axis=1)[:, 0]
        if self.R is not None and self.Z is not None:  # (kept together)
            self.R[k, b], self.Z[k, b] = R, Z

    def finish(self):
        """(values (B, T, V), relative residual series (B, T, R) or None, max relative residual (B, R))."""
        kinds = np.array([0 if k == "flow" else 1 for k in self.cm.residual_kinds], dtype=int)
        scale = np.where(np.isfinite(self.Zmax) & (self.Zmax > 0), self.Zmax, 1.0)
        vals = self.V.transpose(2, 0, 1)  # a view: values[:, :, i] of one output is a cheap (B, T) slice
        rmax = self.Rmax / scale[:, kinds] if len(kinds) else self.Rmax
        series = None
        if self.R is not None:
            series = (
                np.ascontiguousarray((self.R / scale[None, :, kinds]).transpose(1, 0, 2))
                if len(kinds)
                else np.zeros((vals.shape[0], vals.shape[1], 0))
            )
        return vals, series, rmax


def _initial_states(cm, P, t0, dt, plan):
    """States at the start, (B, nS): the numbers of the model file, then the stocks whose
    initial value is an expression, settled by evaluating the model at ``t0`` in turn."""
    B = P.shape[0]
    S = np.repeat(np.array([cm.model.stocks[x] for x in cm.state_names], dtype=float)[None, :], B, axis=0)
    if cm.init_index:
        X = _series_at(plan, t0)
        G = np.ones((B, len(cm.unknown_names)))
        idx = list(cm.init_index)
        with np.errstate(all="ignore"):
            for _ in range(cm.init_passes):
                U = cm.evaluate(t0, S, P, X, G, dt)
                S[:, idx] = cm.initial(t0, S, P, X, U, dt)
    return S


def _run_fixed(cm, P, t_grid, save_idx, method, progress, rec):
    plan = _series_plan(cm)
    B = P.shape[0]
    dt = float(t_grid[1] - t_grid[0]) if len(t_grid) > 1 else 1.0
    P = np.asfortranarray(P)  # column-major: the generated code reads whole columns
    S = np.asfortranarray(_initial_states(cm, P, float(t_grid[0]), dt, plan))
    G = np.ones((B, len(cm.unknown_names)))
    didx = cm.state_derivative_index()
    save_pos = {int(i): k for k, i in enumerate(save_idx)}
    failed_at = np.full(B, np.nan)
    f = cm.evaluate
    steps = range(len(t_grid))
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"simulating {cm.model.name}", unit="step", leave=False)
    for k in steps:
        t = float(t_grid[k])
        X = _series_at(plan, t)
        U1 = f(t, S, P, X, G, dt)
        if cm.has_newton:
            G = np.where(np.isfinite(U1), U1, G)
        if k == 0 and rec.shift.any():
            rec.start(t, S, P, X, U1, dt)
        if k in save_pos:
            rec.put(save_pos[k], t, S, P, X, U1, dt, first=k == 0)
        bad = ~np.isfinite(U1).all(axis=1) & np.isnan(failed_at)
        if bad.any():
            failed_at[bad] = t
            rec.first_bad(bad, U1)
        if k == len(t_grid) - 1:
            break
        k1 = U1.T[didx].T  # (B, nS), column-major like S
        if method == "euler":
            S = S + dt * k1
        else:
            Xh = _series_at(plan, t + dt / 2)
            k2 = f(t + dt / 2, S + dt / 2 * k1, P, Xh, G, dt).T[didx].T
            k3 = f(t + dt / 2, S + dt / 2 * k2, P, Xh, G, dt).T[didx].T
            k4 = f(t + dt, S + dt * k3, P, _series_at(plan, t + dt), G, dt).T[didx].T
            S = S + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        bad = ~np.isfinite(S).all(axis=1) & np.isnan(failed_at)
        if bad.any():
            failed_at[bad] = t + dt
            for b in np.flatnonzero(bad):  # a stage of the step, not a saved time, went non-finite
                x = cm.state_names[int(np.argmax(~np.isfinite(S[b])))]
                rec.bad_var[int(b)] = f"d({x})"
    return failed_at


def _initial_lags(cm, B):
    """A discrete model's first-period lags, (B, nS): stocks' and declared initial values."""
    model = cm.model
    init = []
    missing = []
    for name in cm.state_names:
        base = split_marker(name)[1]
        if base in model.stocks:
            init.append(model.stocks[base])
        elif base in model.initial:
            init.append(model.initial[base])
        else:
            missing.append(base)
            init.append(np.nan)
    if missing:
        raise SpecError(
            f"lag() of {', '.join(missing)} is used, so the first period needs their previous values: "
            f"add initial: {{{', '.join(f'{m}: 0' for m in missing)}}}",
            model.source,
        )
    return np.asfortranarray(np.repeat(np.array(init, dtype=float)[None, :], B, axis=0))


def _run_discrete(cm, P, t_grid, save_idx, progress, rec):
    plan = _series_plan(cm)
    B = P.shape[0]
    model = cm.model
    L = _initial_lags(cm, B)
    P = np.asfortranarray(P)
    src = [cm.unknown_names.index(split_marker(n)[1]) for n in cm.state_names]
    G = np.ones((B, len(cm.unknown_names)))
    save_pos = {int(i): k for k, i in enumerate(save_idx)}
    failed_at = np.full(B, np.nan)
    steps = range(len(t_grid))
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"simulating {model.name}", unit="period", leave=False)
    for k in steps:
        t = float(t_grid[k])
        X = _series_at(plan, t)
        U = cm.evaluate(t, L, P, X, G, 1.0)
        if cm.has_newton:
            G = np.where(np.isfinite(U), U, G)
        if k == 0 and rec.shift.any():
            rec.start(t, L, P, X, U, 1.0)
        if k in save_pos:
            rec.put(save_pos[k], t, L, P, X, U, 1.0, first=k == 0)
        bad = ~np.isfinite(U).all(axis=1) & np.isnan(failed_at)
        if bad.any():
            failed_at[bad] = t
            rec.first_bad(bad, U)
        L = U.T[src].T
    return failed_at


def _run_kernel(cm, P, t_grid, save_idx, method, keep, rec, progress):
    """The fused kernel (:mod:`sdmodel.engine.kernel`): the same run as :func:`_run_fixed` or
    :func:`_run_discrete`, its records written straight into ``rec``; returns the failure times."""
    from sdmodel.engine.kernel import load

    kernel = load(cm)
    plan = _series_plan(cm)
    B, n = P.shape[0], len(t_grid)
    discrete = method == "discrete"
    dt = 1.0 if discrete else float(t_grid[1] - t_grid[0]) if n > 1 else 1.0
    nS, nU, nR = len(cm.state_names), len(cm.unknown_names), len(cm.residual_names)
    if discrete:
        S0 = _initial_lags(cm, B)
        src = np.array([cm.unknown_names.index(split_marker(x)[1]) for x in cm.state_names], dtype=np.int64)
        didx = np.zeros(nS, dtype=np.int64)
    else:
        S0 = _initial_states(cm, np.asfortranarray(P), float(t_grid[0]), dt, plan)
        didx, src = cm.state_derivative_index().astype(np.int64), np.zeros(nS, dtype=np.int64)
    nX = len(plan)

    def table(times):  # the series at every time the kernel asks for: one vectorised call per series
        times = np.asarray(times, dtype=float)
        out = np.empty((len(times), nX))
        for j, (series, shift) in enumerate(plan):
            out[:, j] = series(times - shift)
        return out

    ts = [float(t) for t in t_grid]
    Xg = table(ts)
    if method == "rk4":
        Xh, Xe = table([t + dt / 2 for t in ts[:-1]]), table([t + dt for t in ts[:-1]])
    else:
        Xh = Xe = np.empty((0, nX))
    save_pos = np.full(n, -1, dtype=np.int64)
    save_pos[np.asarray(save_idx, dtype=np.int64)] = np.arange(len(save_idx))
    n_save = len(save_idx)
    o_kind = np.array([0 if k == "S" else 1 for k, _ in rec.src], dtype=np.int64)
    o_idx = np.array([i for _, i in rec.src], dtype=np.int64)
    kinds = rec.kinds.astype(np.int64)
    V = np.empty((B, n_save, len(o_idx)))
    Rmax, Zmax = np.zeros((B, nR)), np.zeros((B, 2))
    worst, worst_row = np.zeros((B, n_save)), np.zeros((B, n_save), dtype=np.int32)
    Rs = np.empty((B, n_save, nR)) if keep else np.empty((1, 1, max(nR, 1)))
    Zs = np.empty((B, n_save, 2)) if keep else np.empty((1, 1, 2))
    failed_at = np.full(B, np.nan)
    bad = np.full(B, -1, dtype=np.int64)
    R0, Z0 = np.zeros((B, max(nR, 1))), np.zeros(B)
    mode = 2 if discrete else 0 if method == "euler" else 1
    kernel(
        np.ascontiguousarray(P, dtype=float),
        np.ascontiguousarray(S0, dtype=float),
        np.asarray(ts, dtype=float),
        Xg,
        Xh,
        Xe,
        save_pos,
        mode,
        dt,
        didx,
        src,
        np.array(cm.newton_index, dtype=np.int64),
        o_kind,
        o_idx,
        kinds,
        rec.shift,
        nU,
        nR,
        bool(keep),
        V,
        Rmax,
        Zmax,
        worst,
        worst_row,
        Rs,
        Zs,
        failed_at,
        bad,
        R0,
        Z0,
        progress=progress,
    )
    # the recorder's (T, V, B) layout as views of the kernel's (B, T, V) arrays
    rec.V, rec.Rmax, rec.Zmax = V.transpose(1, 2, 0), Rmax, Zmax
    rec.worst, rec.worst_row = worst.T, worst_row.T
    rec.R0, rec.Z0 = R0[:, :nR], Z0
    if keep:
        rec.R, rec.Z = Rs.transpose(1, 0, 2), Zs.transpose(1, 0, 2)
    for b in np.flatnonzero(bad >= 0):
        code = int(bad[b])
        rec.bad_var[int(b)] = cm.unknown_names[code] if code < nU else f"d({cm.state_names[code - nU]})"
    return failed_at


def _run_ivp(cm, P, span, t_eval, solver, rec):
    """Each run in turn through ``solve_ivp``: (failure times, scipy's message per run)."""
    plan = _series_plan(cm)
    from scipy.integrate import solve_ivp

    t0, t1, method, dt = span
    B = P.shape[0]
    didx = cm.state_derivative_index()
    Y0 = _initial_states(cm, P, t0, dt, plan)
    failed_at = np.full(B, np.nan)
    msgs = []
    for b in range(B):
        Pb = P[b : b + 1]
        G = np.ones((1, len(cm.unknown_names)))
        if rec.shift.any():
            S0, X0 = Y0[b : b + 1], _series_at(plan, t0)
            rec.start(t0, S0, Pb, X0, cm.evaluate(t0, S0, Pb, X0, G, dt), dt, b=slice(b, b + 1))

        def fun(t, y, Pb=Pb):
            nonlocal G
            U = cm.evaluate(t, y[None, :], Pb, _series_at(plan, t), G, dt)
            if np.isfinite(U).all():
                G = U
            return U[0, didx]

        sol = solve_ivp(fun, (t0, t1), Y0[b], method=method, t_eval=t_eval, rtol=solver.rtol, atol=solver.atol)
        msgs.append(sol.message)
        if not sol.success:
            failed_at[b] = sol.t[-1] if len(sol.t) else t0
        for k in range(sol.y.shape[1]):
            tk = float(sol.t[k])
            S, X = sol.y[:, k][None, :], _series_at(plan, tk)
            rec.put(k, tk, S, Pb, X, cm.evaluate(tk, S, Pb, X, G, dt), dt, b=slice(b, b + 1))
        if len(sol.t) < len(t_eval):
            rec.V[len(sol.t) :, :, b] = np.nan
    return failed_at, msgs


#: At most this many time steps in one run: a mistyped dt (1e-8) must not loop for hours.
MAX_STEPS = 5_000_000


def _settings(cm, t_span, method, dt):
    """(t0, t1, method, dt) of a run, each checked, with errors that say where a bad value came from."""
    tm = cm.model.time
    src = cm.model.source
    span_from = f"the model file's time: start/stop ({src})" if t_span is None else "t_span (--t-span)"
    if t_span is None:
        t0, t1 = tm.start, tm.stop
    else:
        try:
            t0, t1 = (float(v) for v in t_span)
        except (TypeError, ValueError):
            raise SpecError(f"t_span (--t-span) must be two numbers, start and stop, got {t_span!r}") from None
    if not (np.isfinite(t0) and np.isfinite(t1)) or t1 <= t0:
        raise SpecError(f"{span_from}: expected finite start < stop, got ({t0:g}, {t1:g})")
    if cm.discrete:
        method = method or "discrete"
        if method != "discrete":
            raise SpecError(
                f"model {cm.model.name!r} is discrete; method (--method) must be 'discrete', got {method!r}"
            )
        dt, dt_from = 1.0, "one period"
    else:
        method = method or (tm.method if tm.method != "discrete" else "rk4")
        if method not in FIXED_METHODS + IVP_METHODS:
            where = "method (--method)" if method != tm.method else f"the model file's time: method ({src})"
            raise SpecError(
                f"{where}: unknown method {method!r}; expected one of {', '.join(FIXED_METHODS + IVP_METHODS)}"
            )
        dt_from = f"the model file's time: dt ({src})" if dt is None else "dt (--dt)"
        try:
            dt = float(tm.dt if dt is None else dt)
        except (TypeError, ValueError):
            raise SpecError(f"{dt_from} must be a number, got {dt!r}") from None
        if not (dt > 0 and np.isfinite(dt)):
            raise SpecError(f"{dt_from} must be a positive finite number, got {dt:g}")
    if tm.locked and (method != tm.method or abs(dt - tm.dt) > 1e-12 * tm.dt):
        raise SpecError(
            f"model {cm.model.name!r} runs only with its own method and step ({tm.method}, dt {tm.dt:g}), "
            f"got {method}, dt {dt:g} (--method/--dt, a study's solver): {tm.locked}"
        )
    n = (t1 - t0) / dt
    if n > MAX_STEPS:
        raise SpecError(
            f"({t0:g}, {t1:g}) from {span_from} in steps of {dt:g} ({dt_from}) is {n:,.0f} steps; "
            f"at most {MAX_STEPS:,}: use a larger dt"
        )
    if method not in IVP_METHODS and abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
        raise SpecError(
            f"({t0:g}, {t1:g}) from {span_from} is not a whole number of steps of {dt:g} "
            f"({dt_from}); choose a dt that divides stop - start"
        )
    return t0, t1, method, dt


def _series_used(cm: CompiledModel) -> list:
    """The series the compiled model reads (directly or lagged), each once, in the model's order."""
    bases = {split_marker(n)[1] for n in cm.series_names}
    return [s for n, s in cm.model.series.items() if n in bases]


def beyond_data(cm: CompiledModel, t_span=None, solver: Solver = Solver()) -> ExtrapolationWarning | None:
    """The :class:`ExtrapolationWarning` a run of ``cm`` over ``t_span`` (default: the model's) would give,
    or None when every series the model reads has data over the whole span (a series declaring
    ``extrapolate: hold`` is meant to hold after its end). Nothing is simulated: the command line
    asks this before any work, to refuse a run beyond the data unless ``--extrapolate``."""
    t0, t1, _, _ = _settings(cm, t_span, solver.method, solver.dt)
    after, before = [], []
    for s in _series_used(cm):
        early, late = s.beyond(t0, t1)
        if early:
            before.append(s)
        if late:
            after.append(s)
    if not (after or before):
        return None
    parts = []
    if before:
        items = ", ".join(f"{s.name} (data from {s.times[0]:g}, held at {s.values[0]:g} before)" for s in before)
        parts.append(f"starts before the data of {len(before)} series: {items}")
    if after:
        items = ", ".join(f"{s.name} (data to {s.times[-1]:g}, held at {s.values[-1]:g} after)" for s in after)
        parts.append(f"runs past the data of {len(after)} series: {items}")
    lo = max([s.times[0] for s in before], default=t0)
    hi = min([s.times[-1] for s in after], default=t1)
    within = f"run within {lo:g}..{hi:g} (t_span, --t-span)" if lo < hi else "choose a span the data cover"
    declare = " or ".join(
        (["`extrapolate: {before: hold}` on a series whose first value is meant to hold before it"] if before else [])
        + (["`extrapolate: hold` on a series whose last value is meant to hold"] if after else [])
    )
    msg = (
        f"model {cm.model.label!r}, t = {t0:g}..{t1:g}, {'; and '.join(parts)}; the results there rest on "
        f"these held values: {within}, or declare {declare} (model or scenario file)"
    )
    series = [(s.name, s.times[0], s.times[-1], "after") for s in after]
    series += [(s.name, s.times[0], s.times[-1], "before") for s in before]
    return ExtrapolationWarning(msg, series, (t0, t1))


def _warn_beyond_data(cm: CompiledModel, t_span, solver: Solver, stacklevel: int = 3) -> None:
    """One :class:`ExtrapolationWarning` when the run's span starts before or ends after the data of
    series the model reads (see :func:`beyond_data`)."""
    w = beyond_data(cm, t_span, solver)
    if w is not None:
        warnings.warn(w, stacklevel=stacklevel)


def unbalanced_start(
    cm: CompiledModel, t0: float, start=None, scale=None, tol: float = 1e-9
) -> UnbalancedStartWarning | None:
    """The :class:`UnbalancedStartWarning` of runs of ``cm`` from ``t0``, for a model that allows an
    unbalanced start: the balance-sheet rows its accounting found off at the initial values, with their
    sums there, and the rows whose sum at the runs' first step, ``start`` (B, R), is off by more than
    ``tol`` of the largest stock entry there, ``scale`` (B,): the gate takes them as given
    (:attr:`CompiledModel.from_start`). The sums of one run are given; a batch names the rows only
    (each run has its own). None when nothing is off, or the model does not allow it (its runs then
    fail instead)."""
    if not any(cm.from_start):
        return None
    found = cm.report.unbalanced_start
    rows = tuple((c.name if c.kind == "row" else f"column {c.name}", float(c.residual)) for c in found)
    measured: list[tuple[str, np.ndarray]] = []
    if start is not None and scale is not None and len(start):
        z = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        for i, (name, how) in enumerate(zip(cm.residual_names, cm.from_start)):
            if how and (np.abs(start[:, i]) > tol * z).any():
                measured.append((name, start[:, i]))
    if not rows and not measured:
        return None

    def label(row: str) -> str:  # "balance_sheet:Money" -> balance-sheet row 'Money'
        kind, name = row.split(":", 1)
        return f"{kind.replace('_', '-')} row {name!r}"

    parts = [f"model {cm.model.label!r} starts from values that do not balance (allowed: allow_unbalanced_start)"]
    if rows:
        off = "; ".join(
            f"balance-sheet {'' if n.startswith('column ') else 'row '}{n!r} sums to {v:.6g}" for n, v in rows
        )
        parts.append(f"at the initial values {off}")
    gate = f"every balance-sheet row is gated on its change from its sum at the run's first step (t={t0:g})"
    if cm.discrete:
        gate += (
            ", and the transactions rows from the second period on: the first period reads the initial values "
            "through lag(), so their imbalance moves other rows there"
        )
    parts.append(gate)
    if measured and start is not None and len(start) == 1:
        parts.append(f"at t={t0:g} this run's " + ", ".join(f"{label(n)} sums to {v[0]:.6g}" for n, v in measured))
    elif measured:
        parts.append(
            f"at t={t0:g} these rows are off, each run by its own sum: " + ", ".join(label(n) for n, _ in measured)
        )
    return UnbalancedStartWarning("; ".join(parts) + "; the dynamics are still checked", rows)


def _check_memory(n_save: int, n_out: int, B: int, n_res: int, keep_series: bool) -> None:
    """Refuse, before any work, a run whose results would not fit in the memory this machine has free."""
    need = 8.0 * n_save * B * (n_out + 1.5 + (n_res + 2 if keep_series else 0))
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that says: do not guess
        return
    if need > 0.8 * free:
        raise SpecError(
            f"the results would need {need / 2**30:,.1f} GiB ({n_save:,} saved times x {n_out:,} "
            f"outputs x {B:,} runs x 8 bytes) and {free / 2**30:,.1f} GiB are free: save fewer times "
            "(SaveAt(t_eval=...)), fewer outputs (SaveAt(outputs=...)) or fewer runs at once"
        )


def _leaks(cm, rec, rmax, t_save, tol) -> dict[int, tuple[str, float]]:
    """Runs whose stock-flow residual exceeds ``tol``: run -> (message naming the row and the time, time)."""
    if not rmax.size:
        return {}
    bad = np.flatnonzero((rmax > tol).any(axis=1))
    out = {}
    for b in bad:
        k = int(np.argmax(rec.worst[:, b] > tol))
        row = cm.residual_names[int(rec.worst_row[k, b])]
        kind, name = row.split(":", 1)
        where = "transactions" if kind.startswith("transactions") else "balance-sheet"
        what = "row" if not kind.endswith("column") else "column"
        i = int(rec.worst_row[k, b])
        scale = "flow" if cm.residual_kinds[i] == "flow" else "stock"
        if cm.from_start[i] == 1:
            wrong = "moves away from its value at the first step (an unbalanced start, allowed)"
        else:
            wrong = "does not sum to zero"
        hint = ""
        if k == 0 and cm.residual_kinds[i] == "stock" and not cm.from_start[i]:
            hint = f"; or the initial values do not balance: {ALLOW_HINT}"
        out[int(b)] = (
            f"stock-flow residual: {where} {what} {name!r} {wrong} at t={t_save[k]:g} "
            f"({rec.worst[k, b]:.3g} of the largest {scale} so far; tolerance {tol:g}); "
            f"the accounting does not close: run sdmodel check on the model{hint}",
            float(t_save[k]),
        )
    return out


def _describe(model, unknown: str) -> str:
    """An unknown of the step as the user wrote it: ``Y (equation Y: C + G, line 12 of model.yaml)``."""
    kind, base = split_marker(unknown)
    if kind == "d":
        return f"stock {base} (its change d({base}) is not finite within the step)"
    text = model.equation_text.get(base)
    line = model.lines.get(base)
    where = f", line {line} of {model.source}" if line else ""
    return f"{base} (equation {base}: {text}{where})" if text else base


@dataclass(frozen=True)
class _Run:
    """What one vectorised pass over a block of runs returns (a block's part of a batch)."""

    t: np.ndarray  # (T,) saved times
    values: np.ndarray | None  # (B, T, V); None when a worker wrote them to shared memory
    residual_series: np.ndarray | None  # (B, T, R) relative residuals, when kept
    residuals: np.ndarray  # (B, R) each run's largest relative residual per row
    success: np.ndarray  # (B,) bool
    messages: tuple[str, ...]
    t_failed: np.ndarray  # (B,) when each run failed (NaN: it did not)
    solver: Mapping[str, object]  # the settings used, recorded with the result
    #: (B, R) each row's sum at the first step where the gate measures it from there (else 0), and
    #: (B,) the largest stock entry there
    start_residuals: np.ndarray | None = None
    start_scale: np.ndarray | None = None


def _outputs(cm, saveat: SaveAt) -> tuple[str, ...] | None:
    """The outputs to record, checked against the model (None: all of them)."""
    if saveat.outputs is None:
        return None
    # an output may be asked for by its label (an imported model's stock[north] is stock__north)
    named = {label: n for n, label in cm.model.labels.items()}
    wanted = tuple(n if n in cm.output_names else named.get(n, n) for n in saveat.outputs)
    bad = [n for n, w in zip(saveat.outputs, wanted) if w not in cm.output_names]
    if bad:
        known = [cm.model.labels.get(n, n) for n in cm.output_names]
        raise SpecError(
            [
                f"outputs (SaveAt(outputs=...), --outputs): {n!r} is not an output of model {cm.model.name!r}"
                + suggestion(n, known)
                for n in bad
            ]
        )
    return wanted


def _labels(cm, names) -> dict[str, str]:
    """The labels results show of ``names`` (an imported model's subscripted cells)."""
    return {n: cm.model.labels[n] for n in names if n in cm.model.labels}


def _times(span, t_eval):
    """(step grid, indices of the saved steps or None for solve_ivp, saved times)."""
    t0, t1, method, dt = span
    t_grid, _ = _grid(t0, t1, dt, "dt" if method != "discrete" else "one period")
    if method in IVP_METHODS:
        return t_grid, None, t_grid if t_eval is None else np.asarray(t_eval, dtype=float)
    save_idx = _select(t_grid, t_eval)
    return t_grid, save_idx, t_grid[save_idx]


def _execute(cm, P, t_span, solver: Solver, saveat: SaveAt, keep: bool, progress: bool) -> _Run:
    """Run the parameter rows ``P`` (B, nP) in one vectorised pass; ``keep``: keep the residual series."""
    span = _settings(cm, t_span, solver.method, solver.dt)
    t0, t1, method, dt = span
    from sdmodel.engine.kernel import resolve

    engine = resolve(solver.engine, method)
    settings = {"method": method, "dt": dt, "t_span": [t0, t1], "residual_tol": solver.residual_tol, "engine": engine}
    if any(cm.from_start):  # recorded only where it is so: the gate measures the balance sheet from the start
        settings["allow_unbalanced_start"] = True
    outputs = _outputs(cm, saveat)
    t_grid, save_idx, t_save = _times(span, saveat.t_eval)
    _check_memory(len(t_save), len(outputs or cm.output_names), P.shape[0], len(cm.residual_names), keep)
    rec = _Recorder(cm, P.shape[0], len(t_save), keep, outputs, allocate=engine != "numba")
    msgs = None
    with np.errstate(all="ignore"):  # non-finite values are expected in failing runs: they are flagged, not warned
        if method in IVP_METHODS:
            settings.update(rtol=solver.rtol, atol=solver.atol)
            failed_at, msgs = _run_ivp(cm, P, span, t_save, solver, rec)
        elif engine == "numba":
            failed_at = _run_kernel(cm, P, t_grid, save_idx, method, keep, rec, progress)
        elif method == "discrete":
            failed_at = _run_discrete(cm, P, t_grid, save_idx, progress, rec)
        else:
            failed_at = _run_fixed(cm, P, t_grid, save_idx, method, progress, rec)
        vals, rel, rmax = rec.finish()
        leak = _leaks(cm, rec, rmax, t_save, solver.residual_tol)
    ok = np.isnan(failed_at)
    messages = []
    for b in range(P.shape[0]):
        if ok[b] and b in leak:
            ok[b] = False
            messages.append(leak[b][0])
            failed_at[b] = leak[b][1]
        elif ok[b]:
            messages.append(msgs[b] if msgs else "completed")
        else:
            why = (
                msgs[b]
                if msgs
                else (
                    "the non-linear block had no solution Newton could find, or values became "
                    "non-finite (overflow, log/sqrt of a negative, division by zero)"
                    if cm.has_newton
                    else "values became non-finite (overflow, log/sqrt of a negative number or division by zero)"
                )
            )
            if b in rec.bad_var:
                why += f"; first non-finite: {_describe(cm.model, rec.bad_var[b])}"
            messages.append(f"failed at t={failed_at[b]:g}: {why}")
    return _Run(
        t=t_save,
        values=vals,
        residual_series=rel,
        residuals=rmax,
        success=ok,
        messages=tuple(messages),
        t_failed=failed_at,
        solver=settings,
        start_residuals=np.array(rec.R0),
        start_scale=np.array(rec.Z0),
    )


def _check_options(solver, saveat, execution=None) -> None:
    """A clear error for an option passed in the wrong place (``solver="rk4"``), before any work."""
    for name, v, cls in (("solver", solver, Solver), ("saveat", saveat, SaveAt), ("execution", execution, Execution)):
        if v is not None and not isinstance(v, cls):
            raise SpecError(
                f"{name} must be a sdmodel.{cls.__name__}, e.g. {name}=sdmodel.{cls.__name__}(...), got {v!r}"
            )


def simulate(
    model,
    t_span: Sequence[float] | None = None,
    *,
    params: Mapping[str, float] | None = None,
    solver: Solver = Solver(),
    saveat: SaveAt = SaveAt(),
    throw: bool = True,
    progress: bool = False,
    allow_unbalanced_start: bool | None = None,
) -> SimulationResult:
    """Simulate one run.

    Parameters
    ----------
    model : Model, CompiledModel, str or Path
        A model, a compiled model, a model file or a built-in model name.
    t_span : (float, float), optional
        Start and stop; defaults to the model file's ``time``.
    params : dict, optional
        Parameter values replacing the model's (within their declared bounds).
    solver : Solver
        Method (default the model file's ``time.method``), fixed step ``dt``,
        ``solve_ivp`` tolerances and the stock-flow tolerance ``residual_tol``.
    saveat : SaveAt
        Times to save (``t_eval``, on the step grid for fixed-step and discrete
        runs) and variables to record (``outputs``); the residual series is
        always kept.
    throw : bool
        Raise :class:`SimulationError` (with ``t_failed`` and the ``partial``
        result) if the run fails (default); otherwise return the result with
        ``success=False``.
    progress : bool
        Show a progress bar over the steps, and say on stderr when the model is compiled (not
        found in a cache) and how long that took.
    allow_unbalanced_start : bool, optional
        Run a model whose starting values do not balance, where its dynamics conserve the
        balance sheet (a published model's rounded values): every balance-sheet row is then
        gated on its change from its value at the first step, and an
        :class:`UnbalancedStartWarning` names the rows that are off and by how much. Default: the
        model file's ``allow_unbalanced_start`` (or the compiled model's).

    Examples
    --------
    >>> res = simulate("sim")
    >>> round(float(res["Y"][-1]), 2)
    99.99
    >>> simulate("sim", solver=Solver(method="euler", dt=0.5), saveat=SaveAt(t_eval=[0, 30, 60])).t
    array([ 0., 30., 60.])
    """
    _check_options(solver, saveat)
    cm = _compiled(model, progress, allow_unbalanced_start)
    P = _param_matrix(cm, params, None, within_bounds=True) if params else _param_matrix(cm, None, None)
    _warn_beyond_data(cm, t_span, solver)
    run = _execute(cm, P, t_span, solver, saveat, True, progress)
    t0 = _settings(cm, t_span, solver.method, solver.dt)[0]
    if (w := unbalanced_start(cm, t0, run.start_residuals, run.start_scale, solver.residual_tol)) is not None:
        warnings.warn(w, stacklevel=2)
    assert run.values is not None and run.residual_series is not None  # run here, with the series kept
    names = _outputs(cm, saveat) or cm.output_names
    res = SimulationResult(
        t=run.t,
        names=tuple(names),
        values=run.values[0],
        residual_names=cm.residual_names,
        residuals=run.residual_series[0],
        success=bool(run.success[0]),
        message=run.messages[0],
        params=dict(zip(cm.param_names, P[0].tolist())),
        solver=run.solver,
        model=cm.model.name,
        labels=_labels(cm, names),
    )
    if throw and not res.success:
        raise SimulationError(f"model {cm.model.name!r}: {res.message}", t_failed=float(run.t_failed[0]), partial=res)
    return res


_WORKER_MODELS: dict = {}  # in a worker process: the last compiled model it was sent, by the hash of its pickle


def _progress(parts, progress, name, total=None):
    if not progress:
        return parts
    from tqdm.auto import tqdm

    return tqdm(parts, desc=f"simulating {name}", unit="block", total=total, leave=False)


@dataclass(frozen=True)
class _Task:
    """What every block of a batch sends to a worker process (pickled with each block)."""

    key: str  # sha256 of payload: a worker unpickles each model once
    payload: bytes  # the pickled CompiledModel
    t_span: Sequence[float] | None
    solver: Solver
    saveat: SaveAt
    shm_name: str  # the caller's shared (T, V, B) values array
    shape: tuple[int, int, int]


def _worker(task: _Task, P, lo: int) -> _Run:
    import pickle
    from multiprocessing import shared_memory

    cm = _WORKER_MODELS.get(task.key)
    if cm is None:
        _WORKER_MODELS.clear()
        cm = _WORKER_MODELS[task.key] = pickle.loads(task.payload)
    run = _execute(cm, P, task.t_span, task.solver, task.saveat, task.saveat.residual_series, False)
    assert run.values is not None  # _execute keeps its values; only this worker's reply drops them
    shm = shared_memory.SharedMemory(name=task.shm_name)
    try:  # the values go straight into the caller's (T, V, B) array: no copy through the pipe
        np.ndarray(task.shape, buffer=shm.buf)[:, :, lo : lo + P.shape[0]] = run.values.transpose(1, 2, 0)
    finally:
        shm.close()
    return replace(run, values=None)


def _in_pool(cm, parts, t_span, solver, saveat, pool: Pool, progress) -> tuple[list[_Run], np.ndarray]:
    """Run the blocks on the pool's processes; their results in block order and the joined values (B, T, V)."""
    import hashlib
    import pickle
    from concurrent.futures import as_completed
    from multiprocessing import shared_memory

    payload = pickle.dumps(cm)
    span = _settings(cm, t_span, solver.method, solver.dt)
    shape = (
        len(_times(span, saveat.t_eval)[2]),
        len(_outputs(cm, saveat) or cm.output_names),
        sum(len(p) for p in parts),
    )
    shm = shared_memory.SharedMemory(create=True, size=max(8, int(np.prod(shape)) * 8))
    try:
        task = _Task(hashlib.sha256(payload).hexdigest(), payload, t_span, solver, saveat, shm.name, shape)
        starts = np.cumsum([0] + [len(p) for p in parts])
        futures = [pool.submit(_worker, task, part, int(lo)) for part, lo in zip(parts, starts)]
        for _ in _progress(as_completed(futures), progress, cm.model.name, len(futures)):
            pass
        done = [f.result() for f in futures]
        vals = np.array(np.ndarray(shape, buffer=shm.buf)).transpose(2, 0, 1)
    finally:
        shm.close()
        shm.unlink()
    return done, vals


def _blocks(cm, parts, t_span, solver, saveat, execution) -> tuple[list[_Run], np.ndarray]:
    """The blocks run here, on the caller's pool, or on a pool started for this call and closed after it."""
    if execution.processes == 1:
        done = [
            _execute(cm, part, t_span, solver, saveat, saveat.residual_series, False)
            for part in _progress(parts, execution.progress, cm.model.name)
        ]
        return done, np.concatenate([d.values for d in done])
    if execution.pool is not None:
        return _in_pool(cm, parts, t_span, solver, saveat, execution.pool, execution.progress)
    with Pool(min(execution.jobs, len(parts))) as pool:
        return _in_pool(cm, parts, t_span, solver, saveat, pool, execution.progress)


def simulate_batch(
    model,
    X=None,
    names: Sequence[str] | None = None,
    *,
    t_span: Sequence[float] | None = None,
    solver: Solver = Solver(),
    saveat: SaveAt = SaveAt(),
    execution: Execution = Execution(),
    throw: bool = True,
) -> BatchResult:
    """Simulate a matrix of parameter sets (B × P) in one vectorised call.

    Parameters
    ----------
    model : Model, CompiledModel, str or Path
        A model whose starting values do not balance runs as its file says (``allow_unbalanced_start``),
        or compiled with ``compile_model(model, allow_unbalanced_start=True)``: each run's balance-sheet
        rows are then measured from their values at its first step.
    X : array (B, k), DataFrame or dict of arrays
        Parameter values, one row per run; columns named by ``names`` (or the
        DataFrame's columns / dict keys).  Parameters not named keep the
        model's values.  This is SALib's sample matrix, as is.
    names : sequence of str, optional
        Column names of ``X``; default all parameters in file order.
    t_span : (float, float), optional
        Start and stop; defaults to the model file's ``time``.
    solver : Solver
        As in :func:`simulate`; ``solve_ivp`` methods loop over the runs.
    saveat : SaveAt
        Times (``t_eval``) and variables (``outputs``: a study of thousands of
        runs needs a few paths, not all) to record; ``residual_series=True``
        keeps the (B, T, R) residual series (memory), by default each run
        keeps its largest relative residual per row.  The stock-flow residuals
        are checked either way.
    execution : Execution
        ``block``: runs integrated together in one vectorised pass (default all;
        with several processes, one block per process). ``jobs``: processes
        (default 1: this process), spawned for this call and closed after it;
        ``pool``: an open :class:`Pool` whose processes are reused across calls
        (call from under ``if __name__ == "__main__":`` in a script).
        ``progress``: a progress bar. Results never depend on where they are
        computed: they are identical to one block in this process.
    throw : bool
        Raise :class:`SimulationError` if any run fails (default), with the first
        failed run's ``t_failed`` and the whole batch as ``partial``; with
        ``throw=False`` failed runs are flagged in ``success`` and ``messages``.

    Examples
    --------
    >>> b = simulate_batch("sim", [[0.2], [0.25]], ["theta"], saveat=SaveAt(outputs=["Y"]))
    >>> b["Y"].shape
    (2, 241)
    """
    _check_options(solver, saveat, execution)
    if execution.workers is not None or execution.scheduler is not None:
        raise SpecError(
            "simulate_batch runs on local processes (Execution(jobs=...) or pool=); workers and "
            "scheduler (Dask) are for studies"
        )
    cm = _compiled(model, execution.progress)
    P = _param_matrix(cm, X, names)
    outputs = _outputs(cm, saveat)
    _warn_beyond_data(cm, t_span, solver)
    n = P.shape[0]
    block = execution.block
    from sdmodel.engine.kernel import resolve

    if resolve(solver.engine, _settings(cm, t_span, solver.method, solver.dt)[2]) == "numba":
        # the kernel runs its runs on threads, all cores: processes would only add copies and start-up
        execution = replace(execution, jobs=1, pool=None)
    elif execution.processes > 1 and not block:
        block = -(-n // execution.processes)
    step = n if not block or block >= n else int(block)
    parts = [P[i : i + step] for i in range(0, n, step)]
    if len(parts) == 1:  # one pass shows a bar over its steps; blocks show one over the blocks
        done = [_execute(cm, P, t_span, solver, saveat, saveat.residual_series, execution.progress)]
        vals = done[0].values
        assert vals is not None  # run here: the values are in the result
    else:
        done, vals = _blocks(cm, parts, t_span, solver, saveat, execution)
    ok = np.concatenate([d.success for d in done])
    messages = tuple(m for d in done for m in d.messages)
    start = [d.start_residuals for d in done if d.start_residuals is not None]
    scale = [d.start_scale for d in done if d.start_scale is not None]
    t0 = _settings(cm, t_span, solver.method, solver.dt)[0]
    w = unbalanced_start(
        cm, t0, np.concatenate(start) if start else None, np.concatenate(scale) if scale else None, solver.residual_tol
    )
    if w is not None:
        warnings.warn(w, stacklevel=2)
    res = BatchResult(
        t=done[0].t,
        names=outputs or cm.output_names,
        values=vals,
        param_names=cm.param_names,
        params=P,
        residual_names=cm.residual_names,
        residuals=np.concatenate([d.residuals for d in done]),
        success=ok,
        messages=messages,
        solver=done[0].solver,
        model=cm.model.name,
        residual_series=np.concatenate([d.residual_series for d in done]) if saveat.residual_series else None,
        labels=_labels(cm, outputs or cm.output_names),
    )
    if throw and not ok.all():
        i = int(np.argmin(ok))
        t_failed = float(np.concatenate([d.t_failed for d in done])[i])
        raise SimulationError(
            f"model {cm.model.name!r}: {int((~ok).sum())} of {len(ok)} runs failed; first, run {i}: {messages[i]}",
            t_failed=t_failed,
            partial=res,
        )
    return res
