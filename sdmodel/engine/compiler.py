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

from sdmodel import __version__
from sdmodel.core.errors import CompileError, SimulationError
from sdmodel.core.manifest import FieldHash
from sdmodel.core.options import NEWTON_MAXITER, NEWTON_TOL
from sdmodel.engine.cache import disk_cache, memory_cache
from sdmodel.model.checks import AccountingReport, Check, progress_line
from sdmodel.model.spec import Model, symbolic_digest

# The code generator (sdmodel.engine.codegen: sympy's printers, the accounting's derivation, the block
# ordering) loads when a model is compiled, not when a compiled model is read back from a cache.

CODEGEN_VERSION = "10"


@functools.cache
def _codegen_fingerprint() -> str:
    """A hash of the modules that shape generated code, so a changed compiler never reuses stale cache.

    Computed on first use, not at import."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # sdmodel/, this file being sdmodel/engine/compiler.py
    for mod in ("model/expr.py", "model/algebra.py", "model/accounting.py", "engine/compiler.py", "engine/codegen.py"):
        try:
            h.update((package / mod).read_bytes())
        except OSError:  # pragma: no cover - zipped installs: fall back to the version numbers
            pass
    return h.hexdigest()[:16]


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
    h = FieldHash()
    put = h.put

    put("sdmodel", __version__, CODEGEN_VERSION, _codegen_fingerprint())
    tm = model.time
    put("time", tm.mode, float(tm.start), float(tm.stop), float(tm.dt))
    put("stocks", *[f"{k}={float(v)!r}" for k, v in model.stocks.items()])
    put("initial", *[f"{k}={float(v)!r}" for k, v in model.initial.items()])
    put("parameters", *model.parameters)
    put("series", *model.series)
    put("shocks", *[f"{k}={[(x.start, x.end, x.value) for x in v]!r}" for k, v in model.shocks.items()])
    # equations, changes, initial-value expressions, lookups and matrices (and sympy's version)
    put("symbolic", symbolic_digest(model))
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
        from sdmodel.engine.codegen import generate
        from sdmodel.model.accounting import check_accounting, derive

        report = check_accounting(model, throw=False)
        der = derive(model)
        if der.problems:
            raise CompileError(list(der.problems), model.source)
        meta, source = generate(der)
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


__all__ = ["NEWTON_MAXITER", "NEWTON_TOL", "CompiledModel", "compile_model", "fingerprint", "SimulationError"]
