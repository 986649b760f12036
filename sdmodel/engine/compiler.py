"""Compile a checked model into vectorised numpy code.

The derived step system (see :mod:`sdmodel.model.accounting`) is ordered into blocks
(:mod:`sdmodel.model.algebra`); each block becomes straight-line numpy code that
evaluates a whole *batch* of parameter sets at once: explicit and small
linear blocks as formulas (after common-subexpression elimination), large
linear blocks as a batched ``numpy.linalg.solve``, non-linear blocks as a
batched Newton iteration with an analytic Jacobian.  The generated source is
plain Python built only from our own printer, never from user text.

Compiled models are cached under a fingerprint of what is compiled (:func:`fingerprint`),
in a bounded in-memory LRU and, when asked for, on disk (:func:`sdmodel.set_cache_dir`), so a
second compilation, even in a new process, does not call sympy at all. The accounting report
is stored with the code and its verdict applied again on every hit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from sdmodel import __version__
from sdmodel.core.errors import CompileError, SimulationError
from sdmodel.engine.cache import disk_cache, memory_cache
from sdmodel.model.accounting import (
    AccountingReport,
    Check,
    Derivation,
    apply_shocks,
    check_accounting,
    derive,
    progress_line,
)
from sdmodel.model.algebra import order_blocks
from sdmodel.model.expr import T, lagsym, marker
from sdmodel.model.spec import Model, shock_map

CODEGEN_VERSION = "10"


@functools.cache
def _codegen_fingerprint() -> str:
    """A hash of the modules that shape generated code, so a changed compiler never reuses stale cache.

    Computed on first use, not at import."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # sdmodel/, this file being sdmodel/engine/compiler.py
    for mod in ("model/expr.py", "model/algebra.py", "model/accounting.py", "engine/compiler.py"):
        try:
            h.update((package / mod).read_bytes())
        except OSError:  # pragma: no cover - zipped installs: fall back to the version numbers
            pass
    return h.hexdigest()[:16]


NEWTON_MAXITER = 50
NEWTON_TOL = 1e-12


# --------------------------------------------------------------------------- printer
class _Printer(NumPyPrinter):
    """numpy code that broadcasts scalars against (B,) arrays everywhere."""

    def __init__(self):
        super().__init__({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": False})

    def _module_format(self, fqn, register=True):
        return "np." + fqn.split(".", 1)[1] if fqn.startswith("numpy.") else fqn

    def _nest(self, fn, args):
        args = [self._print(a) for a in args]
        out = args[0]
        for a in args[1:]:
            out = f"np.{fn}({out}, {a})"
        return out

    def _print_Min(self, e):
        return self._nest("minimum", e.args)

    def _print_Max(self, e):
        return self._nest("maximum", e.args)

    def _print_And(self, e):  # pairwise: numpy's reduce over a tuple fails on (B,) arrays mixed with scalars
        return self._nest("logical_and", e.args)

    def _print_Or(self, e):
        return self._nest("logical_or", e.args)

    def _print_Piecewise(self, e):
        out = self._print(e.args[-1].expr) if e.args[-1].cond == True else "np.nan"  # noqa: E712
        pieces = e.args[:-1] if e.args[-1].cond == True else e.args  # noqa: E712
        for p in reversed(pieces):
            out = self._choose(self._print(p.cond), self._print(p.expr), out)
        return out

    def _choose(self, cond: str, a: str, b: str) -> str:
        return f"np.where({cond}, {a}, {b})"

    def _print_Step(self, e):
        return f"_step({self._print(e.args[0])}, dt)"

    def _print_Trunc(self, e):
        return f"np.trunc({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"np.logaddexp(0.0, {self._print(e.args[0])})"

    def _print_LookupBase(self, e):  # sympy dispatches subclasses to a base named *Base
        return f"np.interp({self._print(e.args[0])}, {e.xs!r}, {e.ys!r})"

    def _print_Heaviside(self, e):
        return f"np.heaviside({self._print(e.args[0])}, 0.5)"

    def _print_Rational(self, e):
        return repr(float(e))

    def _print_Integer(self, e):
        return repr(float(e))

    def _print_Float(self, e):
        return repr(float(e))

    def _print_Zero(self, e):
        return "0.0"

    def _print_One(self, e):
        return "1.0"

    def _print_NegativeOne(self, e):
        return "-1.0"

    def _print_Half(self, e):
        return "0.5"


class _KernelPrinter(_Printer):
    """Scalar code for the fused kernel (:mod:`sdmodel.engine.kernel`): one run at a time, compiled by numba.

    Same functions as the batched printer where numpy's scalar semantics are what we want (NaN
    propagating ``minimum``/``maximum``, ``where`` as a conditional expression); lookup tables become
    module-level arrays (``lookups`` collects them)."""

    def __init__(self):
        super().__init__()
        self.lookups: dict[tuple, str] = {}

    def _choose(self, cond: str, a: str, b: str) -> str:
        return f"({a} if {cond} else {b})"

    def _print_Relational(self, e):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[e.rel_op]
        return f"({self._print(e.lhs)} {op} {self._print(e.rhs)})"

    def _print_And(self, e):
        return "(" + " and ".join(self._print(a) for a in e.args) + ")"

    def _print_Or(self, e):
        return "(" + " or ".join(self._print(a) for a in e.args) + ")"

    def _print_Not(self, e):
        return f"(not {self._print(e.args[0])})"

    def _print_BooleanTrue(self, e):
        return "True"

    def _print_BooleanFalse(self, e):
        return "False"

    def _print_Step(self, e):
        return f"_kstep({self._print(e.args[0])}, dt)"

    def _print_Heaviside(self, e):
        return f"_kheaviside({self._print(e.args[0])})"

    def _print_LookupBase(self, e):
        key = (tuple(e.xs), tuple(e.ys))
        name = self.lookups.setdefault(key, f"_lk{len(self.lookups)}")
        return f"np.interp({self._print(e.args[0])}, {name}_x, {name}_y)"


def _step(x, dt):
    # a ramp one time step wide ending at t0: continuous in t0, exact for on-grid t0
    return np.clip(x / dt + 1.0, 0.0, 1.0)


def _newton(fun, u0, tol=NEWTON_TOL, maxiter=NEWTON_MAXITER):
    """Batched Newton: ``fun(u) -> (F (B,m), J (B,m,m))``; rows that fail come back NaN."""
    u = np.array(u0, dtype=float)
    bad = ~np.isfinite(u).all(axis=1)
    u[bad] = 1.0
    done = np.zeros(u.shape[0], dtype=bool)
    for _ in range(maxiter):
        F, J = fun(u)
        F = np.broadcast_to(F, u.shape)
        J = np.broadcast_to(J, u.shape + (u.shape[1],))
        scale = 1.0 + np.abs(u)
        conv = (np.abs(F) <= tol * scale).all(axis=1)
        done |= conv
        act = ~done & np.isfinite(F).all(axis=1)
        if not act.any():
            break
        try:
            du = np.linalg.solve(J[act], F[act][..., None])[..., 0]
        except np.linalg.LinAlgError:
            du = np.stack([np.linalg.lstsq(j, f, rcond=None)[0] for j, f in zip(J[act], F[act])])
        u[act] = u[act] - du
    F, _ = fun(u)
    F = np.broadcast_to(F, u.shape)
    ok = (np.abs(F) <= 1e3 * tol * (1.0 + np.abs(u))).all(axis=1)
    u[~ok] = np.nan
    return u


# --------------------------------------------------------------------------- compiled model
@dataclass(frozen=True)
class CompiledModel:
    """A model compiled to a batched step function. Immutable; share it freely.

    ``evaluate(t, S, P, X, G, dt)`` takes known values — states ``S`` (B, nS),
    parameters ``P`` (B, nP), series values ``X`` (nX,) and Newton guesses
    ``G`` (B, nU) — and returns every unknown of the step ``U`` (B, nU).
    ``monitor(t, S, P, X, U, dt)`` returns the raw matrix row sums ``R``
    (B, nR) and the largest flow and stock entry (B, 2) at that step.
    """

    model: Model
    report: AccountingReport
    state_names: tuple[str, ...]  # continuous: stocks; discrete: lag(...) symbols
    param_names: tuple[str, ...]
    series_names: tuple[str, ...]  # series at t, then (discrete) lag(series) at t-1
    unknown_names: tuple[str, ...]
    output_names: tuple[str, ...]  # what results show: stocks then equation variables
    residual_names: tuple[str, ...]
    residual_kinds: tuple[str, ...]  # "flow" | "stock" for the scale a residual is relative to
    source: str
    evaluate: Callable = field(repr=False, compare=False)
    monitor: Callable = field(repr=False, compare=False)
    has_newton: bool = False
    #: where the unknowns of the Newton blocks sit in ``U`` (their guesses carry from step to step)
    newton_index: tuple[int, ...] = ()
    #: states whose initial value is an expression (``model.stock_init``), and how many
    #: evaluations at the start time settle them (one more than the longest chain of them)
    init_index: tuple[int, ...] = ()
    init_passes: int = 0
    initial: Callable | None = field(default=None, repr=False, compare=False)
    #: the scalar functions of the fused kernel (:mod:`sdmodel.engine.kernel`), numba-compiled on first use
    kernel_source: str = field(default="", repr=False, compare=False)

    @property
    def discrete(self) -> bool:
        return self.model.discrete

    def __reduce__(self):
        # the generated functions are rebuilt from their source in the receiving process
        skip = {"model", "report", "source", "evaluate", "monitor", "initial"}
        meta = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        return _from_parts, (self.model, self.report, meta, self.source)

    def state_derivative_index(self) -> np.ndarray:
        """Where d(X) of each state sits in ``U`` (continuous time)."""
        return np.array([self.unknown_names.index(f"d({x})") for x in self.state_names], dtype=int)

    def with_params(self, values=None, **kw) -> CompiledModel:
        """The same compiled code with new default parameter values."""
        return dataclasses.replace(self, model=self.model.with_params(values, **kw))

    def with_model(self, model: Model) -> CompiledModel:
        return dataclasses.replace(self, model=model)

    def allowing_unbalanced_start(self, allow: bool = True) -> CompiledModel:
        """The same compiled code, its model and report allowing (or not) an unbalanced start.

        The report's verdict is not applied again: a model compiled with ``check=True`` was judged
        with the setting it was compiled with."""
        allow = bool(allow)
        return dataclasses.replace(
            self,
            model=dataclasses.replace(self.model, allow_unbalanced_start=allow),
            report=dataclasses.replace(self.report, allow_unbalanced_start=allow),
        )

    @property
    def from_start(self) -> tuple[int, ...]:
        """How the stock-flow gate treats each residual row at the start of a run: 0, from zero at every
        step; 1, from its value at the run's first step (every balance-sheet row of a model that allows
        an unbalanced start); 2, not at the first step, from zero after it (the transactions rows of such
        a model in discrete time: the first period reads the initial values through ``lag()``, and an
        imbalance there moves stocks that equations give without a flow in that period)."""
        if not self.report.allow_unbalanced_start:
            return (0,) * len(self.residual_kinds)
        return tuple(1 if k == "stock" else 2 if self.discrete else 0 for k in self.residual_kinds)


def fingerprint(model: Model) -> str:
    """A canonical hash of everything that shapes a model's generated code and its accounting report.

    Equations, ``d()`` equations, both matrices (rows, columns, Σ), stock and
    parameter and series names in order, initial values and their expressions,
    lookup tables, the time settings the checker samples, and the versions of
    sdmodel, sympy and the code generator. Not hashed: parameter and series
    *values* (they are inputs of the generated code, so ``with_params`` reuses
    it), nor names, descriptions and file paths, nor ``allow_unbalanced_start``: the
    code and the report's checks do not depend on it (a row off only at the start is
    ``unbalanced start`` either way); it decides the report's verdict and how runs gate
    the balance-sheet rows, both applied on every hit.

    Examples
    --------
    >>> from sdmodel import load_model
    >>> m = load_model("sim")
    >>> fingerprint(m) == fingerprint(m.with_params(theta=0.3))
    True
    >>> tf = m.transactions
    >>> flipped = tf.with_entry("Taxes", "households", -tf.rows["Taxes"]["households"])
    >>> fingerprint(m) == fingerprint(dataclasses.replace(m, transactions=flipped))
    False
    """
    h = hashlib.sha256()

    def put(*parts):
        for p in parts:
            h.update(p.encode() if isinstance(p, str) else repr(p).encode())
            h.update(b"\x1f")
        h.update(b"\x1e")

    put("sdmodel", __version__, CODEGEN_VERSION, _codegen_fingerprint(), sp.__version__)
    tm = model.time
    put("time", tm.mode, float(tm.start), float(tm.stop), float(tm.dt))
    put("stocks", *[f"{k}={float(v)!r}" for k, v in model.stocks.items()])
    put("initial", *[f"{k}={float(v)!r}" for k, v in model.initial.items()])
    put("stock_init", *[f"{k}={sp.srepr(e)}" for k, e in model.stock_init.items()])
    put("parameters", *model.parameters)
    put("series", *model.series)
    put("equations", *[f"{k}={sp.srepr(e)}" for k, e in model.equations.items()])
    put("changes", *[f"{k}={sp.srepr(e)}" for k, e in model.changes.items()])
    put("lookups", *[f"{k}={cls.xs!r}:{cls.ys!r}" for k, cls in model.lookups.items()])
    put("shocks", *[f"{k}={[(x.start, x.end, x.value) for x in v]!r}" for k, v in model.shocks.items()])
    for mat in (model.balance_sheet, model.transactions):
        if mat is None:
            put("no matrix")
            continue
        put(mat.kind, *mat.columns)
        for r, cells in mat.rows.items():
            put("row", r, *[f"{c}={sp.srepr(e)}" for c, e in cells.items()])
        put("sums", *[f"{r}={sp.srepr(e)}" for r, e in mat.sums.items()])
    return h.hexdigest()[:32]


def compile_model(
    model: Model,
    *,
    check: bool = True,
    cache: bool = True,
    progress: bool = False,
    allow_unbalanced_start: bool | None = None,
) -> CompiledModel:
    """Check the accounting, order and solve the equations, and generate batched numpy code.

    Parameters
    ----------
    model : Model
        From :func:`sdmodel.load_model`.
    check : bool
        Refuse to compile a model whose accounting fails (default). The report is
        computed either way and kept with the code, so ``check=False`` followed by
        ``check=True`` on the same model still raises.
    cache : bool
        Reuse an earlier compilation of the same model (same :func:`fingerprint`):
        from the in-memory cache, then from the disk cache if one is set
        (:func:`sdmodel.set_cache_dir`).
    progress : bool
        When the model is compiled (not found in a cache), say so on stderr and how long it took
        (a large model takes seconds to a minute); quiet by default.
    allow_unbalanced_start : bool, optional
        Accept starting values whose balance sheet does not balance, where the dynamics conserve
        it (a published model's rounded values): those rows are reported as ``unbalanced start``
        instead of refused, and runs gate every balance-sheet row on its change from their first
        step. Default: the model file's ``allow_unbalanced_start``; the compiled model's
        ``model`` and ``report`` carry the setting used.

    Raises
    ------
    AccountingError
        If ``check`` and a row or column does not balance (or the start does not, unless allowed).
    CompileError
        If equations cannot be solved (a singular simultaneous block).
    """
    if allow_unbalanced_start is not None:
        model = dataclasses.replace(model, allow_unbalanced_start=bool(allow_unbalanced_start))
    key = fingerprint(model) if cache else ""
    parts = memory_cache().get(key) if cache else None
    if parts is None and cache and (disk := disk_cache()) is not None:
        parts = _parts_from_json(disk.load(key))
        if parts is not None:
            memory_cache().put(key, parts)
    if parts is None:
        started = time.perf_counter()
        if progress:
            kept = "" if not cache else " (cached afterwards)" if disk_cache() is not None else " in this process"
            progress_line(
                f"compiling {model.label} for the first time{kept}: checking its accounting, then generating code..."
            )
        report = check_accounting(model, throw=False)
        der = derive(model)
        if der.problems:
            raise CompileError(list(der.problems), model.source)
        meta, source = _generate(der)
        parts = (report, meta, source)
        if progress:
            progress_line(f"compiled {model.label} in {time.perf_counter() - started:.1f} s")
        if cache:
            memory_cache().put(key, parts)
            if (disk := disk_cache()) is not None:
                disk.save(key, _parts_to_json(parts))
    report, meta, source = parts
    # the report as this model's: a hit may come from a model of another name or file, or one that
    # does not allow an unbalanced start where this one does (or the reverse)
    report = dataclasses.replace(
        report, model=model.name, source=model.source, allow_unbalanced_start=model.allow_unbalanced_start
    )
    if check:
        report.raise_if_failed()
    return _from_parts(model, report, meta, source)


def _from_parts(model, report, meta, source) -> CompiledModel:
    ns: dict[str, Any] = {"np": np, "_step": _step, "_newton": _newton}
    exec(compile(source, f"<sdmodel:{model.name}>", "exec"), ns)  # noqa: S102 - our own generated code
    return CompiledModel(
        model=model,
        report=report,
        source=source,
        evaluate=ns["_evaluate"],
        monitor=ns["_monitor"],
        initial=ns.get("_initial"),
        **meta,
    )


def _parts_to_json(parts) -> dict:
    report, meta, source = parts
    return {
        "meta": meta,
        "source": source,
        "report": {
            "checks": [dataclasses.asdict(c) for c in report.checks],
            "dynamics": {k: list(v) for k, v in report.dynamics.items()},
            "problems": list(report.problems),
            "diagnosis": list(report.diagnosis),
            "unused": list(report.unused),
            "net_worth": dict(report.net_worth),
        },
    }


def _parts_from_json(data: dict | None):
    if data is None:
        return None
    try:
        r = data["report"]
        report = AccountingReport(
            model="",
            source="",
            checks=tuple(Check(**c) for c in r["checks"]),
            dynamics={k: tuple(v) for k, v in r["dynamics"].items()},
            problems=tuple(r["problems"]),
            diagnosis=tuple(r["diagnosis"]),
            unused=tuple(r["unused"]),
            net_worth=r["net_worth"],
        )
        meta = {k: tuple(v) if isinstance(v, list) else v for k, v in data["meta"].items()}
        return report, meta, str(data["source"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a verified entry of an unexpected shape: compile again


# --------------------------------------------------------------------------- code generation
def _generate(der: Derivation):
    der = apply_shocks(der)
    model = der.model
    discrete = model.discrete
    blocks = order_blocks(der.system)
    params = list(model.parameters)
    series = list(model.series)
    if discrete:
        lag_series = sorted(
            {
                marker(s)[1]
                for e in der.system.values()
                for s in e.free_symbols
                if marker(s)[0] == "lag" and marker(s)[1] in model.series
            }
        )
        unknown_set = {s.name for s in der.system}
        lag_states = [f"lag({x})" for x in model.stocks]
        extra = sorted(
            {
                s.name
                for e in der.system.values()
                for s in e.free_symbols
                if marker(s)[0] == "lag" and s.name not in lag_states and marker(s)[1] not in model.series
            }
        )
        for name in extra:
            if marker(sp.Symbol(name))[1] not in unknown_set:
                raise CompileError(
                    f"{name}: {marker(sp.Symbol(name))[1]!r} is neither a stock, an equation nor a series", model.source
                )
        states = lag_states + extra
        series_cols = series + [f"lag({s})" for s in lag_series]
    else:
        states = list(model.stocks)
        series_cols = series
    unknowns = [u.name for b in blocks for u in b.unknowns]

    names: dict[sp.Symbol, str] = {}
    for i, s in enumerate(states):
        names[sp.Symbol(s)] = f"s{i}"
    for i, p in enumerate(params):
        names[sp.Symbol(p)] = f"p{i}"
    for i, x in enumerate(series_cols):
        names[sp.Symbol(x)] = f"x{i}"
    for i, u in enumerate(unknowns):
        names[sp.Symbol(u)] = f"u{i}"
    names[T] = "t"
    rename = {k: sp.Symbol(v) for k, v in names.items()}
    pr = _Printer()
    kpr = _KernelPrinter()

    def code(e):
        missing = e.free_symbols - set(rename)
        if missing:
            raise CompileError(f"unknown symbols {sorted(map(str, missing))} in generated code", model.source)
        return pr.doprint(e.xreplace(rename))

    def kcode(e):  # the same expression, printed for the scalar kernel
        return kpr.doprint(e.xreplace(rename))

    sizes = (len(states), len(params), len(series_cols))
    lines = _preamble("_evaluate(t, S, P, X, G, dt)", *sizes, 0)
    # column-major (B, nU): each unknown's B values are contiguous, as are S's and P's columns
    # (simulation passes them Fortran-ordered); column-wise writes and reads are then not strided
    lines.append(f"    U = np.empty(({len(unknowns)}, B)).T")
    # the fused kernel's scalar step (sdmodel.engine.kernel): the same blocks, one run at a time
    klines = _kernel_preamble("_keval(t, s, p, x, g, dt, u)", *sizes, 0)
    has_newton = False
    newton_index: list[int] = []
    tmp = 0
    kspans: list[tuple[set, int, int]] = []  # each block's unknowns and its lines in klines
    for b in blocks:
        kstart = len(klines)
        idx = [unknowns.index(u.name) for u in b.unknowns]
        if b.kind in ("explicit", "linear"):
            # a torn linear block refers to its own earlier unknowns: common subexpressions
            # are shared only among solutions in knowns (the first group), then one at a time
            inside = set(b.unknowns)
            groups: list[list[tuple[int, sp.Expr]]] = []
            cur: list[tuple[int, sp.Expr]] = []
            for i, e in zip(idx, b.solution):
                if e.free_symbols & inside and cur:
                    groups.append(cur)
                    cur = []
                cur.append((i, e))
            groups.append(cur)
            for grp in groups:
                reps, sols = sp.cse([e for _, e in grp], symbols=sp.numbered_symbols(f"c{tmp}_"))
                tmp += 1
                for sym, e in reps:
                    rename[sym] = sym
                    lines.append(f"    {sym} = {code(e)}")
                    klines.append(f"    {sym} = {kcode(e)}")
                for (i, _), e in zip(grp, sols):
                    lines.append(f"    u{i} = {code(e)}")
                    lines.append(f"    U[:, {i}] = u{i}")
                    klines.append(f"    u{i} = {kcode(e)}")
                    klines.append(f"    u[{i}] = u{i}")
        elif b.kind == "linear_numeric":
            m = len(idx)
            lines.append(f"    A = np.zeros((B, {m}, {m})); b = np.zeros((B, {m}))")
            klines.append(f"    A = np.zeros(({m}, {m})); b = np.zeros({m})")
            for r in range(m):
                for c in range(m):
                    if b.matrix[r][c] != 0:
                        lines.append(f"    A[:, {r}, {c}] = {code(b.matrix[r][c])}")
                        klines.append(f"    A[{r}, {c}] = {kcode(b.matrix[r][c])}")
                lines.append(f"    b[:, {r}] = {code(b.rhs[r])}")
                klines.append(f"    b[{r}] = {kcode(b.rhs[r])}")
            lines.append("    sol = np.linalg.solve(A, b[..., None])[..., 0]")
            klines.append("    sol = np.linalg.solve(A, b)")
            for k, i in enumerate(idx):
                lines.append(f"    u{i} = sol[:, {k}]")
                lines.append(f"    U[:, {i}] = u{i}")
                klines.append(f"    u{i} = sol[{k}]")
                klines.append(f"    u[{i}] = u{i}")
        else:
            has_newton = True
            m = len(idx)
            lines.append(f"    def _block{tmp}(w):")
            for k, i in enumerate(idx):
                lines.append(f"        u{i} = w[:, {k}]")
            lines.append(f"        F = np.empty((B, {m})); J = np.empty((B, {m}, {m}))")
            for r in range(m):
                lines.append(f"        F[:, {r}] = {code(b.residuals[r])}")
                for c in range(m):
                    lines.append(f"        J[:, {r}, {c}] = {code(b.jacobian[r][c])}")
            lines.append("        return F, J")
            lines.append(f"    w = _newton(_block{tmp}, G[:, {idx}])")
            tmp += 1
            for k, i in enumerate(idx):
                lines.append(f"    u{i} = w[:, {k}]")
                lines.append(f"    U[:, {i}] = u{i}")
            klines += _kernel_newton(b, idx, kcode)
            newton_index += idx
        kspans.append((set(b.unknowns), kstart, len(klines)))
    klines += _kernel_stage(der, kspans, klines, sizes)

    # residual rows, monitored every step
    res_names: list[str] = []
    res_kinds: list[str] = []
    res_exprs: list[sp.Expr] = []
    flow_terms: list[sp.Expr] = []
    stock_terms: list[sp.Expr] = []
    tf, bs = model.transactions, model.balance_sheet
    # parameters' lags are the parameters, a shocked one's the value it had (spec.shock_map)
    lag_params = {lagsym(p): sp.Symbol(p) for p in model.parameters}
    lag_params.update(shock_map(model.shocks, discrete))
    if tf is not None:
        for row, cells in tf.rows.items():
            res_names.append(f"transactions:{row}")
            res_kinds.append("flow")
            res_exprs.append(sp.Add(*cells.values()) - tf.sums.get(row, 0))
            flow_terms.extend(cells.values())
    if bs is not None:
        for row, cells in bs.rows.items():
            res_names.append(f"balance_sheet:{row}")
            res_kinds.append("stock")
            res_exprs.append(sp.Add(*cells.values()) - bs.sums.get(row, 0))
            stock_terms.extend(cells.values())
    n_r = len(res_exprs)
    lines.append("    return U")
    lines.append("")
    klines += ["", *_kernel_preamble("_kmon(t, s, p, x, u, dt, r, z)", *sizes, len(unknowns))]
    for i, e in enumerate(res_exprs):
        klines.append(f"    r[{i}] = {kcode(e.xreplace(lag_params))}")
    # monitoring is only needed at saved steps, not at every Runge-Kutta stage
    lines += _preamble("_monitor(t, S, P, X, U, dt)", *sizes, len(unknowns))
    lines.append(f"    R = np.zeros(({max(n_r, 1)}, B)).T   # column-major, like U")
    for i, e in enumerate(res_exprs):
        lines.append(f"    R[:, {i}] = {code(e.xreplace(lag_params))}")
    lines.append("    Z = np.zeros((2, B)).T")
    for k, terms in enumerate((flow_terms, stock_terms)):
        # the largest entry of each kind: one stacked max, not a numpy call per matrix entry
        texts = list(dict.fromkeys(code(e.xreplace(lag_params)) for e in terms))
        if texts:
            lines.append(
                f"    Z[:, {k}] = np.abs(np.stack(np.broadcast_arrays(np.zeros(B), {', '.join(texts)}))).max(axis=0)"
            )
        klines.append(f"    z{k} = 0.0")  # numpy's max: NaN if any entry is NaN
        for e in dict.fromkeys(kcode(e.xreplace(lag_params)) for e in terms):
            klines.append(f"    z{k} = _knanmax(z{k}, abs({e}))")
        klines.append(f"    z[{k}] = z{k}")
    lines.append("    return R, Z")
    init_index, init_passes = _initial_code(der, states, sizes, code, lines)
    source = "\n".join(lines) + "\n"
    tables = [
        f"{name}_{axis} = np.array({list(map(float, vals))!r})"
        for (xs, ys), name in kpr.lookups.items()
        for axis, vals in (("x", xs), ("y", ys))
    ]
    kernel_source = "\n".join([*tables, "", *klines]) + "\n"

    outputs = [x for x in model.stocks] + [v for v in model.equations if v not in model.stocks]
    meta = dict(
        state_names=tuple(states),
        param_names=tuple(params),
        series_names=tuple(series_cols),
        unknown_names=tuple(unknowns),
        output_names=tuple(outputs),
        residual_names=tuple(res_names),
        residual_kinds=tuple(res_kinds),
        has_newton=has_newton,
        newton_index=tuple(newton_index),
        init_index=init_index,
        init_passes=init_passes,
        kernel_source=kernel_source,
    )
    return meta, source


def _preamble(signature: str, n_states: int, n_params: int, n_series: int, n_unknowns: int) -> list[str]:
    """The head of a generated function: its columns of S, P, X (and U) as local names."""
    return (
        [
            f"def {signature}:",
            "    B = S.shape[0]",
            "    t = np.float64(t)  # numpy semantics (inf, not ZeroDivisionError) where only t varies",
        ]
        + [f"    s{i} = S[:, {i}]" for i in range(n_states)]
        + [f"    p{i} = P[:, {i}]" for i in range(n_params)]
        + [f"    x{i} = X[{i}]" for i in range(n_series)]
        + [f"    u{i} = U[:, {i}]" for i in range(n_unknowns)]
    )


def _kernel_preamble(signature: str, n_states: int, n_params: int, n_series: int, n_unknowns: int) -> list[str]:
    """The head of a kernel function: one run's states, parameters, series (and unknowns) as scalars."""
    return (
        [f"def {signature}:"]
        + [f"    s{i} = s[{i}]" for i in range(n_states)]
        + [f"    p{i} = p[{i}]" for i in range(n_params)]
        + [f"    x{i} = x[{i}]" for i in range(n_series)]
        + [f"    u{i} = u[{i}]" for i in range(n_unknowns)]
    )


def _kernel_stage(der: Derivation, kspans, klines: list[str], sizes: tuple[int, int, int]) -> list[str]:
    """``_kstage``: the blocks the states' rates depend on, and only those, for the inner stages of a
    Runge-Kutta step, whose other unknowns are never used (reporting variables are not computed there)."""
    if der.model.discrete:  # no stages; the driver still names it
        return ["", "_kstage = _keval"]
    need = {u for u in der.system if marker(u)[0] == "d"}
    stack = list(need)
    while stack:
        for s in der.system[stack.pop()].free_symbols:
            if s in der.system and s not in need:
                need.add(s)
                stack.append(s)
    out = ["", *_kernel_preamble("_kstage(t, s, p, x, g, dt, u)", *sizes, 0)]
    for unknowns, a, b in kspans:
        if unknowns & need:
            out += klines[a:b]
    return out


def _kernel_newton(b, idx: list[int], kcode) -> list[str]:
    """A non-linear block in the kernel: the batched :func:`_newton` of one run, step for step.

    Start from the guesses (all 1.0 when one is not finite); stop when every residual is within
    ``NEWTON_TOL * (1 + |u|)`` or one is not finite, or after ``NEWTON_MAXITER`` steps; the block
    is NaN unless the residuals at the last point are within a thousand times the tolerance."""
    m = len(idx)
    out = [f"    w = np.empty({m}); F = np.empty({m}); J = np.empty(({m}, {m}))"]
    out += [f"    w[{k}] = g[{i}]" for k, i in enumerate(idx)]
    out.append("    if not np.isfinite(w).all():")
    out.append("        w[:] = 1.0")
    out.append(f"    for _it in range({NEWTON_MAXITER} + 1):")
    out += [f"        u{i} = w[{k}]" for k, i in enumerate(idx)]
    for r in range(m):
        out.append(f"        F[{r}] = {kcode(b.residuals[r])}")
    out.append(f"        if _it == {NEWTON_MAXITER} or _kconverged(F, w, {NEWTON_TOL!r}) or not np.isfinite(F).all():")
    out.append("            break")
    for r in range(m):
        for c in range(m):
            out.append(f"        J[{r}, {c}] = {kcode(b.jacobian[r][c])}")
    out.append("        w -= _ksolve(J, F)")
    out.append(f"    if not _kconverged(F, w, {1e3 * NEWTON_TOL!r}):")
    out.append("        w[:] = np.nan")
    for k, i in enumerate(idx):
        out.append(f"    u{i} = w[{k}]")
        out.append(f"    u[{i}] = u{i}")
    return out


def _initial_code(der: Derivation, states, sizes: tuple[int, int, int], code, lines):
    """``_initial(t, S, P, X, U, dt)``: the stocks whose initial value is an expression.

    An expression may use other stocks and equation variables at the start time, so the
    simulation evaluates the model at the start and this function in turn, once per link
    of the longest chain of such stocks; a chain that comes back to its start is an error.
    """
    model = der.model
    if not model.stock_init:
        return (), 0
    stock_syms = {sp.Symbol(x) for x in model.stocks}
    memo: dict = {}

    def reach(sym):
        # the stocks an unknown depends on within one step
        if sym in stock_syms:
            return {sym}
        if sym not in der.system:
            return set()
        if sym not in memo:
            memo[sym] = set()  # a simultaneous block refers back to itself: stop there
            out = set()
            for s in der.system[sym].free_symbols:
                out |= reach(s)
            memo[sym] = out
        return memo[sym]

    needs = {}
    for x, e in model.stock_init.items():
        dep = set()
        for s in e.free_symbols:
            dep |= reach(s)
        needs[x] = {d.name for d in dep if d.name in model.stock_init}
    level: dict[str, int] = {}

    def depth(x, path):
        if x in path:
            loop = " -> ".join([*path[path.index(x) :], x])
            raise CompileError(
                f"the initial values of these stocks depend on each other: {loop}; give one of them a number",
                model.source,
            )
        if x not in level:
            level[x] = 1 + max((depth(y, [*path, x]) for y in needs[x]), default=-1)
        return level[x]

    for x in model.stock_init:
        depth(x, [])
    names = list(model.stock_init)
    lines += ["", *_preamble("_initial(t, S, P, X, U, dt)", *sizes, len(der.system))]
    lines.append(f"    V = np.empty((B, {len(names)}))")
    for k, x in enumerate(names):
        lines.append(f"    V[:, {k}] = {code(model.stock_init[x].xreplace(shock_map(model.shocks, model.discrete)))}")
    lines.append("    return V")
    return tuple(states.index(x) for x in names), 1 + max(level.values())


__all__ = ["CompiledModel", "compile_model", "SimulationError"]
