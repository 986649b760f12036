"""Run options as small frozen objects: how to integrate, what to save, where to compute.

:func:`sdmodel.simulate` and :func:`sdmodel.simulate_batch` take these instead of a
dozen keyword arguments (as diffrax's ``diffeqsolve`` takes ``SaveAt`` and
``PIDController``)::

    res = simulate("sim", solver=Solver(method="euler", dt=0.1), saveat=SaveAt(t_eval=range(0, 61)))
    with Pool(4) as pool:             # worker processes reused by every call inside the block
        a = simulate_batch(cm, X, names, execution=Execution(pool=pool))
        b = simulate_batch(cm, X2, names, execution=Execution(pool=pool))

Each object checks its fields when it is made and names the field that is wrong;
none of them knows a model (whether a method fits the model's time mode, or an
output is one of its variables, is checked when the run starts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np

from sdmodel.core.errors import SpecError
from sdmodel.core.validate import closest

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

FIXED_METHODS = ("euler", "rk4")
IVP_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
METHODS = FIXED_METHODS + IVP_METHODS + ("discrete",)
#: what computes a run (see Solver.engine and sdmodel.engine.kernel)
ENGINES = ("auto", "numba", "numpy")

#: A run fails when a matrix row's residual exceeds this, relative to the run's largest flow
#: (transactions rows) or largest stock entry (balance-sheet rows): the accounting must close.
RESIDUAL_TOL = 1e-9
#: The Newton iteration of a simultaneous block (numpy path and kernel alike): at most this many steps,
#: converged when every residual is within ``NEWTON_TOL * (1 + |u|)``.
NEWTON_MAXITER = 50
NEWTON_TOL = 1e-12


def _positive(name: str, v, *, optional: bool = False, integer: bool = False) -> None:
    if v is None and optional:
        return
    kind = "a positive whole number" if integer else "a positive finite number"
    number = isinstance(v, Integral if integer else Real) and not isinstance(v, bool)
    if not number or not (math.isfinite(float(v)) and v > 0):
        raise SpecError(f"{name} must be {kind}, got {v!r}")


@dataclass(frozen=True)
class Solver:
    """How to integrate: method, fixed step, tolerances and the stock-flow gate.

    Parameters
    ----------
    method : {"rk4", "euler", "RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA", "discrete"}, optional
        Default: the model file's ``time.method`` (``rk4`` in continuous time,
        ``discrete`` for a discrete model).
    dt : float, optional
        Fixed step (continuous time); default the model file's ``time.dt``.
    rtol, atol : float
        Tolerances of the ``solve_ivp`` methods (scipy's names).
    residual_tol : float
        A run fails when a matrix row's stock-flow residual exceeds this,
        relative to the run's largest flow (transactions rows) or stock entry
        (balance-sheet rows); default 1e-9.
    engine : {"auto", "numba", "numpy"}, optional
        What computes a fixed-step or discrete run: ``"numba"`` the fused kernel
        (:mod:`sdmodel.engine.kernel`: the whole time loop compiled, runs in parallel),
        ``"numpy"`` the batched numpy path (the reference; no compilation),
        ``"auto"`` the kernel where numba is installed. Default ``$SDMODEL_ENGINE``,
        else ``"auto"``. Both give the same numbers (to about 1e-12).

    Examples
    --------
    >>> Solver(method="euler", dt=0.25)
    Solver(method='euler', dt=0.25, rtol=1e-08, atol=1e-10, residual_tol=1e-09, engine=None)
    """

    method: str | None = None
    dt: float | None = None
    rtol: float = 1e-8
    atol: float = 1e-10
    residual_tol: float = RESIDUAL_TOL
    engine: str | None = None

    def __post_init__(self):
        if self.engine is not None and self.engine not in ENGINES:
            raise SpecError(f"engine (--engine): {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.method is not None and self.method not in METHODS:
            hint = closest(self.method, METHODS)
            raise SpecError(
                f"method (--method): unknown method {self.method!r}; expected one of "
                f"{', '.join(METHODS)}" + (f"; did you mean {hint!r}?" if hint else "")
            )
        _positive("dt (--dt)", self.dt, optional=True)
        for name in ("rtol", "atol", "residual_tol"):
            _positive(name, getattr(self, name))
        # stored as plain floats: the solver settings are recorded with each run
        for name in ("dt", "rtol", "atol", "residual_tol"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class SaveAt:
    """What a run keeps: which times, which variables, and (batches) the residual series.

    Parameters
    ----------
    t_eval : sequence of float, optional
        Increasing times to save (scipy's name); on the step grid for fixed-step
        and discrete runs. Default every step.
    outputs : sequence of str, optional
        Record only these variables (memory: a study of thousands of runs needs
        a few paths, not all of them); default all.  The stock-flow residuals
        are checked either way.
    residual_series : bool
        Batches: keep each run's (T, R) residual series, not only its largest
        relative residual per row. A single run always keeps its series.

    Examples
    --------
    >>> SaveAt(t_eval=[0, 10, 20], outputs=["Y"]).t_eval
    (0.0, 10.0, 20.0)
    """

    t_eval: Sequence[float] | np.ndarray | None = None
    outputs: Sequence[str] | None = None
    residual_series: bool = False

    def __post_init__(self):
        if self.t_eval is not None:
            try:
                t = np.asarray(self.t_eval, dtype=float)
            except (TypeError, ValueError):
                raise SpecError(f"t_eval must be a sequence of numbers, got {self.t_eval!r}") from None
            if t.ndim != 1 or not len(t):
                raise SpecError(f"t_eval must be a non-empty sequence of times, got shape {t.shape}")
            if not np.isfinite(t).all():
                raise SpecError(f"t_eval: expected finite times, got {t[~np.isfinite(t)][0]}")
            if (np.diff(t) <= 0).any():
                k = int(np.argmax(np.diff(t) <= 0))
                raise SpecError(f"t_eval: expected increasing times, got {t[k]:g} then {t[k + 1]:g}")
            object.__setattr__(self, "t_eval", tuple(t.tolist()))  # immutable, comparable
        if self.outputs is not None:
            if isinstance(self.outputs, str):
                raise SpecError(
                    f"outputs must be a sequence of variable names, got the string {self.outputs!r}: "
                    f"write outputs=[{self.outputs!r}]"
                )
            try:
                outs = tuple(self.outputs)
            except TypeError:
                outs = ()
            if not outs or not all(isinstance(o, str) for o in outs):
                raise SpecError(f"outputs must be a non-empty sequence of variable names, got {self.outputs!r}")
            object.__setattr__(self, "outputs", outs)
        if not isinstance(self.residual_series, (bool, np.bool_)):
            raise SpecError(f"residual_series must be True or False, got {self.residual_series!r}")


class Pool:
    """Worker processes for :func:`sdmodel.simulate_batch`, started on entering the block and
    closed (waiting for them) on leaving it; every call inside the block reuses them.

    The processes are spawned (not forked: safe with threads), so a script must
    create the pool under ``if __name__ == "__main__":``.  Without a pool,
    ``Execution(jobs=n)`` starts ``n`` processes for the call and closes them
    after it (about a second of start-up per call).

    Examples
    --------
    >>> with Pool(2) as pool:                                   # doctest: +SKIP
    ...     batch = simulate_batch(cm, X, names, execution=Execution(pool=pool))
    """

    def __init__(self, jobs: int):
        _positive("Pool jobs", jobs, integer=True)
        self.jobs = int(jobs)
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> Pool:
        return self.start()

    def start(self) -> Pool:
        """Open the pool (processes spawn on first use); prefer ``with``, else pair with :meth:`close`."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._executor is not None:
            raise SpecError("this Pool is already open: enter it once (with Pool(n) as pool: ...)")
        self._executor = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the processes (waiting for running work; queued work is cancelled)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    @property
    def open(self) -> bool:
        return self._executor is not None

    def submit(self, fn, /, *args):
        if self._executor is None:
            raise SpecError("the Pool is closed: use it inside its block (with Pool(n) as pool: ...)")
        return self._executor.submit(fn, *args)

    def __repr__(self) -> str:
        return f"Pool(jobs={self.jobs}, {'open' if self.open else 'closed'})"


@dataclass(frozen=True)
class Execution:
    """Where a batch or study computes: this process, local processes, or Dask.

    Parameters
    ----------
    jobs : int
        Local processes (default 1: this process). :func:`simulate_batch` starts
        them for the call and closes them after it, unless ``pool`` is given.
    block : int, optional
        Runs integrated together in one vectorised pass (default all at once;
        with several processes, one block per process). Results never depend on it.
    pool : Pool, optional
        An open :class:`Pool` to run on (its size replaces ``jobs``): processes
        reused across calls.
    progress : bool
        Show a progress bar.
    workers : int, optional
        Studies: a local Dask cluster of this many processes.
    scheduler : str, optional
        Studies: the address of a running Dask scheduler.
    chunk_size : int, optional
        Studies: runs per saved (resumable) chunk; default the study's own.

    Examples
    --------
    >>> Execution(jobs=4, block=1000).processes
    4
    """

    jobs: int = 1
    block: int | None = None
    pool: Pool | None = None
    progress: bool = False
    workers: int | None = None
    scheduler: str | None = None
    chunk_size: int | None = None

    def __post_init__(self):
        _positive("jobs (--jobs)", self.jobs, integer=True)
        _positive("chunk_size (--chunk-size)", self.chunk_size, optional=True, integer=True)
        _positive("block", self.block, optional=True, integer=True)
        _positive("workers (--workers)", self.workers, optional=True, integer=True)
        if self.pool is not None:
            if not isinstance(self.pool, Pool):
                raise SpecError(f"pool must be a sdmodel.Pool (with Pool(n) as pool: ...), got {self.pool!r}")
            if self.jobs not in (1, self.pool.jobs):
                raise SpecError(
                    f"jobs={self.jobs} but the pool has {self.pool.jobs} processes: give jobs or pool, not both"
                )
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()):
            raise SpecError(f"scheduler (--scheduler) must be the address of a Dask scheduler, got {self.scheduler!r}")
        if not isinstance(self.progress, (bool, np.bool_)):
            raise SpecError(f"progress must be True or False, got {self.progress!r}")
        where = [
            w
            for w, on in (
                ("jobs/pool", self.jobs > 1 or self.pool is not None),
                ("workers", self.workers is not None),
                ("scheduler", self.scheduler is not None),
            )
            if on
        ]
        if len(where) > 1:
            raise SpecError(
                f"execution: {' and '.join(where)} are given; choose one place to compute "
                "(local processes, a local Dask cluster, or a running scheduler)"
            )

    @property
    def processes(self) -> int:
        """Local processes this execution uses: the pool's size, else ``jobs``."""
        return self.pool.jobs if self.pool is not None else self.jobs
