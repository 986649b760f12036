"""Global sensitivity analysis on SALib: sample -> evaluate (batched, in chunks) -> analyze.

The factors, outcomes and tracked paths come from a study config
(:mod:`sdmodel.study`).  SALib draws the sample (Saltelli/Sobol' sequence or
Morris trajectories) from its usual *problem* dictionary; the batch engine
evaluates it in chunks that are saved as they finish, so a study resumes after
an interruption and can run on a Dask cluster; SALib then computes the indices
with bootstrap confidence intervals, for every outcome and, year by year, for
every tracked debt path.

``sdmodel sensitivity japan --method sobol -N 1024`` on the command line;
:func:`run_sensitivity` from Python; :func:`run_salib` is the same pipeline for
any evaluator (it is how SALib's Ishigami test function is checked).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import SpecError
from .io import check_out_folder, created, parquet_bytes, versions, write_atomic_file
from .manifest import FILE, SensitivityManifest
from .study import (ChunkStats, Factor, ModelEvaluator, StudyConfig, check_execution, check_failures, claim_store,
                    evaluate_chunks, load_study, study_key)

METHODS = ("sobol", "morris")


def salib_problem(factors: Sequence[Factor], groups: bool = False) -> dict:
    """SALib's problem dictionary for the factors (with ``groups`` if asked)."""
    prob = {"num_vars": len(factors), "names": [f.name for f in factors],
            "bounds": [[f.lower, f.upper] for f in factors]}
    if groups:
        prob["groups"] = [f.group for f in factors]
    return prob


def check_design(method: str, N: int, problem: Mapping | None = None, *, levels: int = 4) -> None:
    """Refuse a design SALib would reject or silently degrade, before anything is simulated."""
    problems = []
    if method not in METHODS:
        problems.append(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 2:
        problems.append(f"N: expected a whole number of at least 2, got {N!r}")
    elif method == "sobol" and N & (N - 1):
        lo = 1 << (int(N).bit_length() - 1)
        problems.append(f"N: the Sobol' sequence needs a power of two, got {N} (try {lo} or {2 * lo})")
    if method == "morris" and (levels < 2 or levels % 2):
        problems.append(f"levels: Morris needs an even number of grid levels, at least 2, got {levels}")
    if problem is not None and problem["num_vars"] < 1:
        problems.append("factors: none declared")
    if problems:
        raise SpecError(problems)


def sample(problem: Mapping, method: str, N: int, seed: int, *, second_order: bool = False,
           levels: int = 4) -> np.ndarray:
    """SALib's sample for ``method``: Saltelli/Sobol' (N (D+2) rows, N (2D+2) with second order) or Morris."""
    check_design(method, N, problem, levels=levels)
    if method == "sobol":
        from SALib.sample import sobol
        return sobol.sample(dict(problem), N, calc_second_order=second_order, seed=seed)
    from SALib.sample import morris
    return morris.sample(dict(problem), N, num_levels=levels, seed=seed)


def _names(problem: Mapping) -> list[str]:
    if problem.get("groups"):
        return list(dict.fromkeys(problem["groups"]))
    return list(problem["names"])


def analyze(problem: Mapping, method: str, X: np.ndarray, y: np.ndarray, seed: int, *,
            second_order: bool = False, num_resamples: int = 100, conf_level: float = 0.95,
            levels: int = 4) -> pd.DataFrame:
    """Indices of one output ``y`` as a table, one row per factor (or group).

    Sobol: ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (and ``S2`` as a separate
    table when asked).  Morris: ``mu``, ``mu_star``, ``mu_star_conf``, ``sigma``.
    A constant output (nothing to attribute) gives NaN indices, not an error.
    """
    names = _names(problem)
    y = np.asarray(y, dtype=float)
    cols = ["S1", "S1_conf", "ST", "ST_conf"] if method == "sobol" else ["mu", "mu_star", "mu_star_conf", "sigma"]
    if not np.isfinite(y).all() or np.ptp(y) <= 1e-12 * max(1.0, float(np.abs(y).max())):
        return pd.DataFrame(np.nan, index=pd.Index(names, name="factor"), columns=cols)
    if method == "sobol":
        from SALib.analyze import sobol
        r = sobol.analyze(dict(problem), y, calc_second_order=second_order, num_resamples=num_resamples,
                          conf_level=conf_level, seed=seed)
    else:
        from SALib.analyze import morris
        r = morris.analyze(dict(problem), X, y, num_resamples=num_resamples, conf_level=conf_level,
                           num_levels=levels, seed=seed)
    return pd.DataFrame({c: np.asarray(r[c], dtype=float) for c in cols}, index=pd.Index(names, name="factor"))


@dataclass
class SensitivityResult:
    """A finished study: the sample, the outcomes and the indices."""
    name: str
    method: str
    N: int
    seed: int
    problem: dict
    X: np.ndarray
    Y: np.ndarray
    outcome_names: list[str]
    indices: pd.DataFrame                       # outcome, factor, index columns
    time_indices: pd.DataFrame | None = None    # variable, year, factor, index columns
    stats: ChunkStats = field(default_factory=ChunkStats)
    wall_s: float = 0.0
    max_residual: float = 0.0
    out: Path | None = None
    settings: dict = field(default_factory=dict)

    @property
    def main_index(self) -> str:
        return "ST" if self.method == "sobol" else "mu_star"

    def table(self, index: str | None = None) -> pd.DataFrame:
        """Factors x outcomes of one index (``ST`` or ``mu_star`` by default)."""
        return self.indices.pivot(index="factor", columns="outcome", values=index or self.main_index).loc[
            _names(self.problem), self.outcome_names]

    def summary(self) -> str:
        head = (f"{self.method} sensitivity of {self.name}: N={self.N}, {len(self.X)} parameter sets "
                f"({self.problem['num_vars']} factors{', grouped' if self.problem.get('groups') else ''}), "
                f"seed {self.seed}, {self.wall_s:.1f} s; chunks computed {len(self.stats.computed)}, "
                f"reused {len(self.stats.reused)} ({self.stats.scheduler})")
        if self.method == "sobol":
            st, s1 = self.table("ST"), self.table("S1")
            ci = self.indices.pivot(index="factor", columns="outcome", values="ST_conf").loc[st.index, st.columns]
            body = st.map(lambda v: f"{v:.3f}").astype(str) + " ±" + ci.map(lambda v: f"{v:.3f}").astype(str) \
                + " (S1 " + s1.map(lambda v: f"{v:.3f}").astype(str) + ")"
            what = "total-order index ST ± 95% CI (first-order S1)"
        else:
            body = self.table("mu_star").map(lambda v: f"{v:.4g}")
            what = "Morris mu* (mean absolute elementary effect)"
        return f"{head}\n{what}, factor by outcome:\n{body.to_string()}"


def run_salib(evaluator: Callable[[np.ndarray], Mapping[str, np.ndarray]], problem: Mapping, *, method: str = "sobol",
              N: int = 1024, seed: int = 1, store: str | Path, key: str = "", outcome_names: Sequence[str] = ("y",),
              tv_variables: Sequence[str] = (), tv_years: Sequence[float] = (), second_order: bool = False,
              levels: int = 4, num_resamples: int = 100, conf_level: float = 0.95, chunk_size: int = 2048,
              scheduler: str | None = None, workers: int | None = None, jobs: int | None = 1,
              progress: bool = True, name: str = "study") -> SensitivityResult:
    """SALib's sample -> our chunked evaluation -> SALib's analysis, for any evaluator.

    ``evaluator(X)`` returns ``{"Y": (n, k) outcomes, "success": (n,), "residual": (n,)}`` and,
    when ``tv_variables`` are named, ``"paths": (n, len(tv_variables), len(tv_years))``.

    Examples
    --------
    SALib's Ishigami function through this pipeline gives its known indices
    (S1 = 0.314, 0.442, 0; ST = 0.558, 0.442, 0.244):

    >>> import tempfile
    >>> from SALib.test_functions import Ishigami
    >>> from sdmodel.study import FunctionEvaluator
    >>> prob = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    >>> r = run_salib(FunctionEvaluator(Ishigami.evaluate), prob, N=4096, seed=3, store=tempfile.mkdtemp(),
    ...               progress=False)
    >>> r.table("ST").round(2)["y"].tolist()
    [0.56, 0.44, 0.24]
    """
    t0 = time.perf_counter()
    X = sample(problem, method, N, seed, second_order=second_order, levels=levels)
    key = key or study_key("salib", problem, method, N, seed, second_order, levels, chunk_size)
    arrays, stats = evaluate_chunks(evaluator, X, store, key, chunk_size=chunk_size, scheduler=scheduler,
                                    workers=workers, jobs=jobs, progress=progress, desc=f"{method} {name}")
    check_failures(arrays, X, problem["names"], f"{method} study {name}")
    Y = arrays["Y"]
    kw = dict(second_order=second_order, num_resamples=num_resamples, conf_level=conf_level, levels=levels)
    rows = []
    for j, o in enumerate(outcome_names):
        df = analyze(problem, method, X, Y[:, j], seed, **kw).reset_index()
        df.insert(0, "outcome", o)
        rows.append(df)
    tv = None
    if tv_variables:
        P = arrays["paths"]
        trows = []
        for v, var in enumerate(tv_variables):
            for k, yr in enumerate(tv_years):
                df = analyze(problem, method, X, P[:, v, k], seed, **kw).reset_index()
                df.insert(0, "year", yr)
                df.insert(0, "variable", var)
                trows.append(df)
        tv = pd.concat(trows, ignore_index=True)
    return SensitivityResult(
        name=name, method=method, N=N, seed=seed, problem=dict(problem), X=X, Y=Y, outcome_names=list(outcome_names),
        indices=pd.concat(rows, ignore_index=True), time_indices=tv, stats=stats,
        wall_s=time.perf_counter() - t0, max_residual=float(np.max(arrays["residual"], initial=0.0)),
        out=Path(store), settings=dict(second_order=second_order, levels=levels, num_resamples=num_resamples,
                                       conf_level=conf_level, chunk_size=chunk_size))


def run_sensitivity(study: StudyConfig | str | Path, *, method: str = "sobol", N: int = 1024, seed: int = 1,
                    out: str | Path | None = None, groups: bool = False, second_order: bool = False,
                    levels: int = 4, num_resamples: int = 100, scheduler: str | None = None,
                    workers: int | None = None, jobs: int | None = None, chunk_size: int | None = None, dt: float | None = None,
                    progress: bool = True, command: list[str] | None = None) -> SensitivityResult:
    """Run (or resume) a sensitivity study and write its directory.

    The study directory (``out``, default ``runs/sensitivity-<study>-<method>-N<N>-seed<seed>``)
    keeps every evaluated chunk; re-running the same command after an
    interruption computes only the missing chunks, and re-running a finished
    study computes none.  Results: ``indices.csv``/``.parquet`` (per outcome),
    ``indices_time.csv``/``.parquet`` (per debt path and year), ``samples.parquet``,
    ``indices.png``, ``indices_time.png``, ``summary.txt`` and ``manifest.json``.
    """
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    if not cfg.factors:
        raise SpecError(f"study {cfg.source} declares no sensitivity: factors")
    prob = salib_problem(cfg.factors, groups)
    check_design(method, N, prob, levels=levels)   # before anything runs
    out = Path(out or Path("runs") / f"sensitivity-{cfg.name}-{method}-N{N}-seed{seed}"
               f"{'-groups' if groups else ''}{'' if dt is None else f'-dt{dt:g}'}")
    # Before compiling: a file there, an unwritable parent or a folder of something else fails at once.
    out = check_out_folder(out, marker="study.json")
    check_execution(chunk_size, workers, jobs, seed)
    chunk = cfg.chunk_size if chunk_size is None else chunk_size
    names = [f.name for f in cfg.factors]
    ev = ModelEvaluator.for_study(cfg, names, dt=dt)
    solver = {"method": ev.method or "rk4", "dt": ev.dt}
    key = study_key("sensitivity", cfg.hash, cfg.spec_hash, prob, method, N, seed, second_order, levels, chunk, solver)
    claim_store(out, key, {"kind": "sensitivity", "study": cfg.source, "method": method, "N": N, "seed": seed,
                           "groups": groups, "chunk_size": chunk, "solver": solver})
    res = run_salib(ev, prob, method=method, N=N, seed=seed, store=out, key=key,
                    outcome_names=[o.name for o in cfg.outcomes], tv_variables=cfg.time_varying,
                    tv_years=cfg.tv_years, second_order=second_order, levels=levels, num_resamples=num_resamples,
                    chunk_size=chunk, scheduler=scheduler, workers=workers, jobs=jobs, progress=progress,
                    name=cfg.name)
    study = dict(solver=solver, study=cfg.source, study_hash=cfg.hash, spec_hash=cfg.spec_hash, key=key,
                 factors={f.name: {"lower": f.lower, "upper": f.upper, "group": f.group, "dummy": f.dummy,
                                   "range": f.origin} for f in cfg.factors},
                 outcomes={o.name: o.doc or o.kind for o in cfg.outcomes})
    write_sensitivity(res, command=command, study=study)
    return res


def write_sensitivity(res: SensitivityResult, *, command: list[str] | None = None,
                      study: Mapping | None = None) -> Path:
    """Write the indices, the sample, the figures and (last) the manifest into the study directory,
    each file atomically. ``study`` adds what the manifest records of the study (its file, hashes,
    solver, factors, outcomes); the result itself is not changed."""
    out = Path(res.out)

    def put(name, data: bytes):
        write_atomic_file(out / name, data)

    put("indices.csv", res.indices.to_csv(index=False, float_format="%.6g").encode())
    put("indices.parquet", parquet_bytes(res.indices))
    if res.time_indices is not None:
        put("indices_time.csv", res.time_indices.to_csv(index=False, float_format="%.6g").encode())
        put("indices_time.parquet", parquet_bytes(res.time_indices))
    samples = pd.DataFrame(res.X, columns=res.problem["names"])
    for j, o in enumerate(res.outcome_names):
        samples[o] = res.Y[:, j]
    put("samples.parquet", parquet_bytes(samples))
    from .plots import png_bytes
    put("indices.png", png_bytes(index_figure(res)))
    if res.time_indices is not None:
        put("indices_time.png", png_bytes(time_figure(res)))
    put("summary.txt", (res.summary() + "\n").encode())
    fields = {"study": res.name, "outcomes": {o: "" for o in res.outcome_names}, **res.settings, **(study or {})}
    known = {f.name for f in dataclasses.fields(SensitivityManifest)}
    man = SensitivityManifest(
        method=res.method, N=int(res.N), seed=res.seed, runs=int(len(res.X)), problem=dict(res.problem),
        chunks={"total": res.stats.chunks, "computed": sorted(res.stats.computed),
                "reused": sorted(res.stats.reused), "scheduler": res.stats.scheduler},
        wall_s=round(res.wall_s, 2), max_relative_residual=float(res.max_residual), versions=versions(),
        command=tuple(command if command is not None else sys.argv), created=created(),
        **{k: v for k, v in fields.items() if k in known}, extra={k: v for k, v in fields.items() if k not in known})
    put(FILE, man.to_json().encode())   # last: a directory with a manifest is complete
    return out


def index_figure(res: SensitivityResult):
    """One panel per outcome: S1 and ST with confidence intervals (Sobol), or mu* and sigma (Morris);
    a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.plots.index_figure`."""
    from .plots import index_figure as draw
    return draw(res.indices, _names(res.problem), res.outcome_names, res.method,
                f"{res.method.capitalize()} sensitivity, {res.name}: N={res.N}, {len(res.X)} runs")


def time_figure(res: SensitivityResult):
    """One panel per tracked path: the main index of every factor, year by year, with its CI band;
    a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.plots.time_figure`."""
    from .plots import time_figure as draw
    return draw(res.time_indices, _names(res.problem), res.main_index,
                f"Time-varying sensitivity of the debt/GDP paths, {res.name} ({res.method}, N={res.N})")
