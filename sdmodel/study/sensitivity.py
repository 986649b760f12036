"""Global sensitivity analysis on SALib: sample -> evaluate (batched, in chunks) -> analyze.

The factors, outcomes and tracked paths come from a study config
(:mod:`sdmodel.study.base`).  SALib draws the sample (Saltelli/Sobol' sequence or
Morris trajectories) from its usual *problem* dictionary; the batch engine
evaluates it in chunks that are saved as they finish, so a study resumes after
an interruption and can run on a Dask cluster; SALib then computes the indices
with bootstrap confidence intervals, for every outcome and, year by year, for
every tracked debt path.

``sdmodel sensitivity japan --method sobol -N 1024`` on the command line;
:func:`sdmodel.report.rundirs.run_sensitivity` from Python (it also writes the study
directory).  This module computes and writes nothing but the chunk store
(:mod:`sdmodel.core.store`): :func:`compute_sensitivity` returns a study's frozen
:class:`SensitivityResult`; :func:`run_salib` is the same pipeline for any
evaluator (it is how SALib's Ishigami test function is checked).

With ``execution.progress`` a study says on stderr what it runs (one line each,
:func:`sdmodel.model.accounting.progress_line`) and shows bars over the chunks and over the
analyses (an outcome, or a tracked path in one year, each).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sdmodel.core.errors import SpecError
from sdmodel.core.options import Execution
from sdmodel.core.store import ChunkStore, claim_store, study_key
from sdmodel.estimate.estimation import PosteriorSample
from sdmodel.model.checks import progress_line
from sdmodel.study.base import (
    ChunkStats,
    Factor,
    ModelEvaluator,
    StudyConfig,
    check_failures,
    chunk_rows,
    collect_chunks,
    load_study,
)

METHODS = ("sobol", "morris")


def salib_problem(factors: Sequence[Factor], groups: bool = False) -> dict:
    """SALib's problem dictionary for the factors (with ``groups`` if asked)."""
    prob = {
        "num_vars": len(factors),
        "names": [f.name for f in factors],
        "bounds": [[f.lower, f.upper] for f in factors],
    }
    if groups:
        prob["groups"] = [f.group for f in factors]
    return prob


@dataclass(frozen=True)
class Design:
    """What SALib samples and how it analyses: the method, its size and seed, and the method's settings.

    Parameters
    ----------
    method : {"sobol", "morris"}
    N : int
        Base sample size (Sobol': a power of two; Morris: trajectories).
    seed : int
        Seed of the sample and of the bootstrap confidence intervals (>= 0).
    second_order : bool
        Sobol': also second-order indices (more runs).
    levels : int
        Morris: grid levels (even, at least 2).
    num_resamples, conf_level
        Bootstrap resamples and level of the confidence intervals.
    groups : bool
        Indices of the factor groups the study declares instead of single factors.

    Examples
    --------
    >>> Design(N=1000)
    Traceback (most recent call last):
    ...
    sdmodel.core.errors.SpecError: N: the Sobol' sequence needs a power of two, got 1000 (try 512 or 1024)
    """

    method: str = "sobol"
    N: int = 1024
    seed: int = 1
    second_order: bool = False
    levels: int = 4
    num_resamples: int = 100
    conf_level: float = 0.95
    groups: bool = False

    def __post_init__(self):
        problems = []
        method, N, levels = self.method, self.N, self.levels
        if method not in METHODS:
            problems.append(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
        if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 2:
            problems.append(f"N: expected a whole number of at least 2, got {N!r}")
        elif method == "sobol" and N & (N - 1):
            lo = 1 << (int(N).bit_length() - 1)
            problems.append(f"N: the Sobol' sequence needs a power of two, got {N} (try {lo} or {2 * lo})")
        if method == "morris" and (
            isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 2 or levels % 2
        ):
            problems.append(f"levels: Morris needs an even number of grid levels, at least 2, got {levels!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            problems.append(f"seed (--seed) must be a whole number >= 0, got {self.seed!r}")
        if (
            isinstance(self.num_resamples, bool)
            or not isinstance(self.num_resamples, (int, np.integer))
            or self.num_resamples < 1
        ):
            problems.append(f"num_resamples: expected a positive whole number, got {self.num_resamples!r}")
        if not (isinstance(self.conf_level, float) and 0 < self.conf_level < 1):
            problems.append(f"conf_level: expected a number strictly between 0 and 1, got {self.conf_level!r}")
        if problems:
            raise SpecError(problems)


def check_design(design: Design, problem: Mapping | None = None) -> None:
    """Refuse a design SALib would reject or silently degrade, before anything is simulated
    (the design's own values are checked when it is made; this checks it against the problem)."""
    if problem is not None and problem["num_vars"] < 1:
        raise SpecError("factors: none declared")


def sample(problem: Mapping, design: Design) -> np.ndarray:
    """SALib's sample for the design: Saltelli/Sobol' (N (D+2) rows, N (2D+2) with second order) or Morris."""
    check_design(design, problem)
    if design.method == "sobol":
        from SALib.sample import sobol

        return sobol.sample(dict(problem), design.N, calc_second_order=design.second_order, seed=design.seed)
    from SALib.sample import morris

    return morris.sample(dict(problem), design.N, num_levels=design.levels, seed=design.seed)


def _names(problem: Mapping) -> list[str]:
    if problem.get("groups"):
        return list(dict.fromkeys(problem["groups"]))
    return list(problem["names"])


class SobolBootstrap:
    """The bootstrap resamples of a Sobol' design, as SALib's ``sobol.analyze`` draws them
    (``numpy.random.default_rng(seed).integers(N, size=(N, num_resamples))``, the same for every
    output), drawn once for a study and shared by all its outcomes and years, and kept as counts:
    how often each of the N base rows is drawn into each resample. (SALib draws unseeded resamples
    for seed 0; this, seeded ones for every seed.)"""

    def __init__(self, design: Design):
        self.design = design
        self._counts: np.ndarray | None = None

    def counts(self, N: int) -> np.ndarray:
        """(num_resamples, N) counts: row k says how often resample k draws each base row."""
        if self._counts is None or self._counts.shape[1] != N:
            R = self.design.num_resamples
            r = np.random.default_rng(self.design.seed).integers(N, size=(N, R))
            # as floats (the matrix product's) up to 256 MB; beyond, as 16-bit counts (a row drawn 65,536
            # times in one resample: never), converted a block at a time
            c = np.zeros((R, N), dtype=float if 8 * R * N <= 256 << 20 else np.uint16)
            for k in range(R):
                c[k] = np.bincount(r[:, k], minlength=N)
            self._counts = c
        return self._counts


def sobol_indices(problem: Mapping, design: Design, y: np.ndarray, boot: SobolBootstrap | None = None) -> dict:
    """First- and total-order Sobol' indices of ``y`` with bootstrap intervals: SALib's
    ``sobol.analyze`` without second order (its normalisation, estimators, resamples and
    intervals; equal to it to 1e-12, tests/test_study_memory.py), computed without its (N,
    num_resamples) arrays per factor: each resample's sums are the resample's counts times the base
    rows' terms, one matrix product for every resample and factor (the variance of a resample as
    E[y^2] - E[y]^2 of the normalised output, whose mean is 0: nothing cancels). An output of a
    million-run design (8 factors) takes 0.1-0.3 s and some tens of MB, SALib's 20 s and 0.8 GB.

    Returns ``{"S1", "S1_conf", "ST", "ST_conf"}``, one value per factor (or group).

    Examples
    --------
    >>> from SALib.sample import sobol as sample
    >>> from SALib.analyze import sobol as salib
    >>> from SALib.test_functions import Ishigami
    >>> prob = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    >>> y = Ishigami.evaluate(sample.sample(prob, 512, calc_second_order=False, seed=3))
    >>> ours, theirs = sobol_indices(prob, Design(N=512, seed=3), y), salib.analyze(prob, y, False, seed=3)
    >>> all(np.allclose(ours[k], theirs[k], rtol=0, atol=1e-12) for k in ("S1", "S1_conf", "ST", "ST_conf"))
    True
    """
    from SALib.analyze.sobol import separate_output_values
    from scipy.stats import norm

    D = len(_names(problem))
    y = np.asarray(y, dtype=float).ravel()
    if y.size % (D + 2):
        raise SpecError(f"a Sobol' design of {D} factors has N ({D} + 2) outputs, got {y.size}")
    N = y.size // (D + 2)
    Y = (y - y.mean()) / y.std()
    A, B, AB, _ = separate_output_values(Y, D, N, False)
    counts = (boot or SobolBootstrap(design)).counts(N)
    # the terms each resample sums, per base row: A, B, A^2, B^2, and per factor B (AB - A), (A - AB)^2
    terms = np.empty((N, 4 + 2 * D))
    terms[:, 0], terms[:, 1] = A, B
    terms[:, 2], terms[:, 3] = A * A, B * B
    terms[:, 4 : 4 + D] = B[:, None] * (AB - A[:, None])
    terms[:, 4 + D :] = (A[:, None] - AB) ** 2
    R = counts.shape[0]
    sums = np.empty((R, terms.shape[1]))
    step = max(1, (32 << 20) // (8 * max(N, 1)))  # resamples per product: counts as floats, 32 MB at a time
    for k in range(0, R, step):
        sums[k : k + step] = counts[k : k + step].astype(float, copy=False) @ terms
    mean = (sums[:, 0] + sums[:, 1]) / (2 * N)
    var = (sums[:, 2] + sums[:, 3]) / (2 * N) - mean * mean
    eps = float(np.finfo(float).eps)
    ok = var > eps
    s1r = np.divide(sums[:, 4 : 4 + D] / N, var[:, None], out=np.zeros((R, D)), where=ok[:, None])
    str_ = np.divide(0.5 * sums[:, 4 + D :] / N, var[:, None], out=np.zeros((R, D)), where=ok[:, None])
    drawn = counts.any(axis=0)
    spread = float(np.ptp(np.r_[A[drawn], B[drawn]])) if drawn.any() else 0.0
    if spread <= eps:  # SALib: every resample's estimate 0 (a constant output: analyze gives NaN before this)
        s1r[:], str_[:] = 0.0, 0.0
    Z = norm.ppf(0.5 + design.conf_level / 2)
    conf = (lambda e: Z * e.std(axis=0, ddof=1)) if spread != 0.0 else (lambda e: np.zeros(D))
    # the estimates themselves as SALib's first_order and total_order compute them, the variance once
    y_var = np.var(np.r_[A, B], axis=0)
    if y_var > eps:
        S1 = np.array([np.mean(B * (AB[:, j] - A), axis=0) / y_var for j in range(D)])
        ST = np.array([0.5 * np.mean((A - AB[:, j]) ** 2, axis=0) / y_var for j in range(D)])
    else:
        S1 = ST = np.zeros(D)
    return {"S1": S1, "S1_conf": conf(s1r), "ST": ST, "ST_conf": conf(str_)}


def analyze(
    problem: Mapping, design: Design, X: np.ndarray, y: np.ndarray, boot: SobolBootstrap | None = None
) -> pd.DataFrame:
    """Indices of one output ``y`` as a table, one row per factor (or group).

    Sobol: ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (:func:`sobol_indices`; with second order,
    SALib's ``sobol.analyze``, and ``S2`` as a separate table when asked).  Morris: ``mu``,
    ``mu_star``, ``mu_star_conf``, ``sigma``. A constant output (nothing to attribute) gives NaN
    indices, not an error. ``boot``: the study's bootstrap resamples, drawn once for all its outputs.
    """
    names = _names(problem)
    method, seed, num_resamples, conf_level = design.method, design.seed, design.num_resamples, design.conf_level
    y = np.asarray(y, dtype=float)
    cols = ["S1", "S1_conf", "ST", "ST_conf"] if method == "sobol" else ["mu", "mu_star", "mu_star_conf", "sigma"]
    if not np.isfinite(y).all() or np.ptp(y) <= 1e-12 * max(1.0, float(np.abs(y).max())):
        return pd.DataFrame(np.nan, index=pd.Index(names, name="factor"), columns=cols)
    if method == "sobol" and not design.second_order:
        r = sobol_indices(problem, design, y, boot)
    elif method == "sobol":
        from SALib.analyze import sobol

        r = sobol.analyze(
            dict(problem),
            y,
            calc_second_order=design.second_order,
            num_resamples=num_resamples,
            conf_level=conf_level,
            seed=seed,
        )
    else:
        from SALib.analyze import morris

        r = morris.analyze(
            dict(problem), X, y, num_resamples=num_resamples, conf_level=conf_level, num_levels=design.levels, seed=seed
        )
    return pd.DataFrame({c: np.asarray(r[c], dtype=float) for c in cols}, index=pd.Index(names, name="factor"))


@dataclass(frozen=True)
class SensitivityResult:
    """A finished study: the sample, the outcomes and the indices (written to a directory by
    :func:`sdmodel.report.rundirs.write_sensitivity`)."""

    name: str
    method: str
    N: int
    seed: int
    problem: Mapping
    X: np.ndarray
    Y: np.ndarray
    outcome_names: list[str]
    indices: pd.DataFrame  # outcome, factor, index columns
    time_indices: pd.DataFrame | None = None  # variable, year, factor, index columns
    stats: ChunkStats = field(default_factory=ChunkStats)
    wall_s: float = 0.0
    max_residual: float = 0.0
    #: the chunk store it was computed in (the study folder)
    store: Path | None = None
    #: the design's settings beyond method, N and seed, as the manifest records them
    settings: Mapping = field(default_factory=dict)
    #: what the manifest records of the study: its file, hashes, key, solver, factors, outcomes
    study: Mapping = field(default_factory=dict)

    @property
    def out(self) -> Path | None:
        """The study folder (:attr:`store`), under its earlier name."""
        return self.store

    @property
    def main_index(self) -> str:
        return "ST" if self.method == "sobol" else "mu_star"

    @property
    def factor_names(self) -> list[str]:
        """The rows of the indices: the factors, or their groups."""
        return _names(self.problem)

    def table(self, index: str | None = None) -> pd.DataFrame:
        """Factors x outcomes of one index (``ST`` or ``mu_star`` by default)."""
        return self.indices.pivot(index="factor", columns="outcome", values=index or self.main_index).loc[
            self.factor_names, self.outcome_names
        ]

    def summary(self) -> str:
        head = (
            f"{self.method} sensitivity of {self.name}: N={self.N}, {len(self.X)} parameter sets "
            f"({self.problem['num_vars']} factors{', grouped' if self.problem.get('groups') else ''}), "
            f"seed {self.seed}, {self.wall_s:.1f} s; chunks computed {len(self.stats.computed)}, "
            f"reused {len(self.stats.reused)} ({self.stats.scheduler})"
        )
        if self.settings.get("posterior"):
            head += (
                f"\nthe design run at {self.settings['draws']} posterior draws of {self.settings['posterior']}: "
                f"indices are posterior medians; their 90% bands are the q5/q95 columns of indices.csv"
            )
        if self.method == "sobol":
            st, s1 = self.table("ST"), self.table("S1")
            ci = self.indices.pivot(index="factor", columns="outcome", values="ST_conf").loc[st.index, st.columns]
            body = (
                st.map(lambda v: f"{v:.3f}").astype(str)
                + " ±"
                + ci.map(lambda v: f"{v:.3f}").astype(str)
                + " (S1 "
                + s1.map(lambda v: f"{v:.3f}").astype(str)
                + ")"
            )
            what = "total-order index ST ± 95% CI (first-order S1)"
        else:
            body = self.table("mu_star").map(lambda v: f"{v:.4g}")
            what = "Morris mu* (mean absolute elementary effect)"
        return f"{head}\n{what}, factor by outcome:\n{body.to_string()}"


def run_salib(
    evaluator: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    problem: Mapping,
    design: Design = Design(),
    *,
    store: ChunkStore | str | Path,
    outcomes: Sequence[str] = ("y",),
    paths: tuple[Sequence[str], Sequence[float]] | None = None,
    execution: Execution = Execution(),
    name: str = "study",
) -> SensitivityResult:
    """SALib's sample -> our chunked evaluation -> SALib's analysis, for any evaluator.

    ``evaluator(X)`` returns ``{"Y": (n, k) outcomes, "success": (n,), "residual": (n,)}`` and,
    when ``paths = (variables, years)`` is given, ``"paths": (n, len(variables), len(years))``, whose
    indices are computed year by year.  ``store`` keeps the evaluated chunks: a claimed
    :class:`~sdmodel.core.store.ChunkStore`, or a folder, which is claimed for the key of this problem
    and design (a folder of another study is refused).

    Examples
    --------
    SALib's Ishigami function through this pipeline gives its known indices
    (S1 = 0.314, 0.442, 0; ST = 0.558, 0.442, 0.244):

    >>> import tempfile
    >>> from SALib.test_functions import Ishigami
    >>> from sdmodel.study.base import FunctionEvaluator
    >>> prob = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    >>> r = run_salib(FunctionEvaluator(Ishigami.evaluate), prob, Design(N=4096, seed=3), store=tempfile.mkdtemp())
    >>> r.table("ST").round(2)["y"].tolist()
    [0.56, 0.44, 0.24]
    """
    t0 = time.perf_counter()
    method = design.method
    X = sample(problem, design)
    if not isinstance(store, ChunkStore):
        key = study_key(
            "salib", problem, method, design.N, design.seed, design.second_order, design.levels, execution.chunk_size
        )
        plan = {"kind": "sensitivity", "method": method, "N": design.N, "seed": design.seed}
        store = ChunkStore(claim_store(store, key, plan), key)
    chunk = chunk_rows(evaluator, execution.chunk_size)
    if execution.progress:
        progress_line(
            f"{method} {name}: {len(X)} runs ({problem['num_vars']} factors, N={design.N}) in "
            f"{_chunks(-(-len(X) // chunk))} of up to {chunk}; chunks saved in {store.root} are reused"
        )
    tv_variables, tv_years = paths if paths is not None else ((), ())
    # the outcomes in memory (a number per run each); the tracked paths (a number per run, path and year) on disk
    got, stats = collect_chunks(
        evaluator, X, store.root, store.key, execution=execution, desc=f"{method} {name}", on_disk=("paths",)
    )
    with got:
        arrays = got.arrays
        check_failures(arrays, X, problem["names"], f"{method} study {name}")
        Y = arrays["Y"]
        boot = SobolBootstrap(design) if method == "sobol" else None
        bar = _bar(execution.progress, len(outcomes) + len(tv_variables) * len(tv_years), f"{method} indices {name}")
        rows = []
        try:
            for j, o in enumerate(outcomes):
                df = analyze(problem, design, X, Y[:, j], boot=boot).reset_index()
                df.insert(0, "outcome", o)
                rows.append(df)
                bar.update(1)
            tv = None
            if tv_variables:
                P = got.columns["paths"]
                trows = []
                for v, var in enumerate(tv_variables):
                    for k, yr in enumerate(tv_years):
                        df = analyze(problem, design, X, P.column((v, k)), boot=boot).reset_index()
                        df.insert(0, "year", yr)
                        df.insert(0, "variable", var)
                        trows.append(df)
                        bar.update(1)
                tv = pd.concat(trows, ignore_index=True)
        finally:
            bar.close()
    return SensitivityResult(
        name=name,
        method=method,
        N=design.N,
        seed=design.seed,
        problem=dict(problem),
        X=X,
        Y=Y,
        outcome_names=list(outcomes),
        indices=pd.concat(rows, ignore_index=True),
        time_indices=tv,
        stats=stats,
        wall_s=time.perf_counter() - t0,
        max_residual=float(np.max(arrays["residual"], initial=0.0)),
        store=Path(store.root),
        settings=dict(
            second_order=design.second_order,
            levels=design.levels,
            num_resamples=design.num_resamples,
            conf_level=design.conf_level,
            chunk_size=chunk,
            groups=design.groups,
        ),
    )


def _chunks(n: int) -> str:
    return f"{n} chunk" + ("" if n == 1 else "s")


def _bar(progress: bool, total: int, desc: str):
    """A progress bar on stderr over ``total`` analyses, shown when asked (``progress``) wherever stderr
    goes: the caller decides (the command line: when stderr is a terminal, or with ``--progress``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="analysis", leave=False, disable=not progress)


def study_problem(cfg: StudyConfig, design: Design = Design()) -> dict:
    """SALib's problem of the study's factors for the design, checked before anything runs."""
    if not cfg.factors:
        raise SpecError(f"study {cfg.source} declares no sensitivity: factors")
    prob = salib_problem(cfg.factors, design.groups)
    check_design(design, prob)
    return prob


def compute_sensitivity(
    study: StudyConfig | str | Path,
    design: Design = Design(),
    *,
    store: str | Path,
    execution: Execution = Execution(),
    dt: float | None = None,
    posterior: PosteriorSample | None = None,
) -> SensitivityResult:
    """Run (or resume) a sensitivity study in the chunk store ``store``; write nothing else.

    With ``posterior`` (draws of the model's parameters, :func:`sdmodel.estimate.estimation.load_posterior`)
    the whole design is run at each draw (the parameters that are not factors set to the draw's
    values; a sub-store ``draw-NNN`` each): the indices are the posterior medians over the draws,
    with their 5% and 95% quantiles (``S1 q5``, ``ST q95``, ...) as posterior bands.

    ``design`` says what SALib samples (method, N, seed, ...), ``execution`` where the runs are
    computed (local processes, a Dask cluster or scheduler) and in which chunks; ``dt`` replaces
    the study's step.  ``store`` (a new or empty folder, or this study's) keeps every evaluated
    chunk: computing again after an interruption evaluates only the missing chunks, and a finished
    study none.  :func:`sdmodel.report.rundirs.run_sensitivity` computes and writes the study directory.
    """
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    prob = study_problem(cfg, design)  # before anything runs
    method, N, seed = design.method, design.N, design.seed
    names = [f.name for f in cfg.factors]
    ev = ModelEvaluator.for_study(cfg, names, dt=dt)
    chunk = chunk_rows(ev, execution.chunk_size or cfg.chunk_size)  # the study's size, cut to the memory budget
    execution = dataclasses.replace(execution, chunk_size=chunk)
    solver = {"method": ev.method or "rk4", "dt": ev.dt}
    key = study_key(
        "sensitivity", cfg.hash, cfg.spec_hash, prob, method, N, seed, design.second_order, design.levels, chunk, solver
    )
    plan = {
        "kind": "sensitivity",
        "study": cfg.source,
        "method": method,
        "N": N,
        "seed": seed,
        "groups": design.groups,
        "chunk_size": chunk,
        "solver": solver,
    }
    common: dict[str, Any] = dict(
        outcomes=[o.name for o in cfg.outcomes],
        paths=(cfg.time_varying, cfg.tv_years) if cfg.time_varying else None,
        execution=execution,
        name=cfg.name,
    )
    if posterior is None:
        res = run_salib(ev, prob, design, store=ChunkStore(claim_store(store, key, plan), key), **common)
    else:
        posterior.check_for(cfg.model, cfg.scenario, cfg.source)
        claim_store(store, study_key(key, posterior.digest), {**plan, "posterior": posterior.source})
        runs = []
        for k, draw in enumerate(posterior.X):
            if execution.progress:
                progress_line(f"posterior draw {k + 1} of {len(posterior.X)} ({posterior.source})")
            fixed = {n: float(v) for n, v in zip(posterior.names, draw) if n not in names}
            ev_k = ModelEvaluator.for_study(cfg, names, dt=dt, fixed=fixed)
            key_k = study_key(key, fixed)
            sub = claim_store(Path(store) / f"draw-{k:03d}", key_k, {**plan, "draw": k, "fixed": fixed})
            runs.append(run_salib(ev_k, prob, design, store=ChunkStore(sub, key_k), **common))
        res = _over_posterior(runs, Path(store), posterior)
    recorded = dict(
        solver=solver,
        study=cfg.source,
        study_hash=cfg.hash,
        spec_hash=cfg.spec_hash,
        key=key,
        factors={
            f.name: {"lower": f.lower, "upper": f.upper, "group": f.group, "dummy": f.dummy, "range": f.origin}
            for f in cfg.factors
        },
        outcomes={o.name: o.doc or o.kind for o in cfg.outcomes},
        posterior=None if posterior is None else {"source": posterior.source, "draws": len(posterior.X)},
    )
    return dataclasses.replace(res, study=recorded)


#: the indices whose posterior bands a study over a posterior reports
BANDED = ("S1", "ST", "mu_star")


def _over_posterior(runs: Sequence[SensitivityResult], store: Path, posterior: PosteriorSample) -> SensitivityResult:
    """One result from the same design run at each posterior draw: indices as medians over the draws, with
    5% and 95% quantiles of the main indices; the samples and outcomes of every draw stacked."""

    def combine(frames: list[pd.DataFrame], keys: list[str], bands: bool) -> pd.DataFrame:
        allf = pd.concat(frames, ignore_index=True)
        cols = [c for c in allf.columns if c not in keys]
        g = allf.groupby(keys, sort=False)
        out = g[cols].median()
        if bands:
            for c in BANDED:
                if c in cols:
                    out[f"{c} q5"], out[f"{c} q95"] = g[c].quantile(0.05), g[c].quantile(0.95)
        return out.reset_index()

    first = runs[0]
    indices = combine([r.indices for r in runs], ["outcome", "factor"], True)
    tv = None
    if first.time_indices is not None:
        tv = combine(
            [r.time_indices for r in runs if r.time_indices is not None], ["variable", "year", "factor"], False
        )
    n = first.stats.chunks  # chunk c of draw k counts as chunk k * n + c
    stats = ChunkStats(
        chunks=n * len(runs),
        computed=[k * n + c for k, r in enumerate(runs) for c in r.stats.computed],
        reused=[k * n + c for k, r in enumerate(runs) for c in r.stats.reused],
        scheduler=first.stats.scheduler,
    )
    return dataclasses.replace(
        first,
        X=np.vstack([r.X for r in runs]),
        Y=np.vstack([r.Y for r in runs]),
        indices=indices,
        time_indices=tv,
        stats=stats,
        wall_s=sum(r.wall_s for r in runs),
        max_residual=max(r.max_residual for r in runs),
        store=store,
        settings={**dict(first.settings), "posterior": posterior.source, "draws": len(runs)},
    )
