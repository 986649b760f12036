"""Calibration: fit a model's free parameters to observed series, with uncertainty.

A calibration is declared in a YAML config (``calibration/japan.yaml`` is the worked
example)::

    model: ../models/bsr            # model folder or file (relative to the config), or a built-in name
    scenario: japan
    data: data/japan_annual.csv     # relative to the config file
    time_column: year
    window: [1980, 2019]            # years whose observations enter the loss
    out_of_sample: {fit: [1980, 2005], test: [2006, 2019]}
    targets:                        # model output: how it meets the data
      firm_debt_gdp: {weight: 1, shift: 1.0}   # year y is compared with the model at t = y + shift
      land_price: {weight: 0.5, shift: 0.5, log: true, column: land_price}
      gdp_growth_nominal: {weight: 0, shift: 0.5, column: gdp_nominal_growth}   # reported, not fitted
    parameters:                     # the free parameters
      c_y: {bounds: [0.55, 0.85]}
      kappa: {bounds: [0.05, 0.5], prior: {dist: gamma, a: 2, scale: 0.1, source: "..."}}   # sdmodel.estimate.priors
    penalty: ../models/bsr/facts.py:japan_penalty       # optional: function(cm, X, names) -> (B,)
    penalty_weight: 100                                 # the loss adds penalty_weight * penalty
    search: {popsize: 6, maxiter: 40, seed: 1, local_nfev: 20}
    facts: ../models/bsr/facts.py:japan_fact_checks     # optional: stylised facts an estimation checks
    estimate: {restarts: 10, walkers: 64, steps: 2000}  # optional: sdmodel.estimate.estimation settings
    validation: {origins: [1995, 2000, 2005, 2010]}     # optional: sdmodel validate's forecast origins

A target may also carry a measurement model for :mod:`sdmodel.estimate.estimation`: ``sd`` (a number,
or a prior: estimated) and ``ar1`` (the errors' AR(1) coefficient, a number or a prior).

The loss is the sum of squared residuals ``sqrt(weight) * (model - data)`` (on logs times
100 for ``log: true`` targets, i.e. log points), plus ``2 (max log p - log p(x))`` for each prior
(``((x - mean) / sd)^2`` for a normal one)
and ``penalty_weight`` times the penalty.  A target with ``weight: 0`` is reported (fit and
out-of-sample statistics, turning points, a panel of the figure) but does not enter the loss:
a series to watch, not to fit.  :func:`calibrate` runs a global search (scipy's differential evolution,
vectorised: every generation is one :func:`~sdmodel.simulate_batch` call) followed by a
local least-squares refinement (``scipy.optimize.least_squares`` with a finite-difference
Jacobian computed as one batch), then reports standard errors from the Jacobian at the
optimum, ``cov = s^2 (J'J)^-1`` with ``s^2`` the data residuals' sum of squares over
``n - p``.  They are local, asymptotic and conditional on the model being right: read
them as a measure of how well the data pin a parameter down, not as a posterior.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sdmodel.core.errors import ConfigError, SpecError
from sdmodel.core.files import resolve_named
from sdmodel.core.inputs import shipped_dir
from sdmodel.core.manifest import content_sha256
from sdmodel.core.options import SaveAt, Solver
from sdmodel.core.validate import Problems, closest
from sdmodel.engine.compiler import compile_model
from sdmodel.engine.simulation import simulate_batch
from sdmodel.estimate.priors import Prior, check_in_bounds, read_prior
from sdmodel.model.spec import load_model, read_yaml_file

CONFIG_KEYS = (
    "description",
    "model",
    "scenario",
    "data",
    "time_column",
    "window",
    "out_of_sample",
    "targets",
    "parameters",
    "penalty",
    "penalty_weight",
    "search",
    "estimate",
    "facts",
    "validation",
)
TARGET_KEYS = ("column", "weight", "shift", "log", "sd", "ar1")
SEARCH_DEFAULTS = dict(popsize=6, maxiter=40, seed=1, tol=1e-6, local_nfev=20, dt=None)
#: what each search setting must be (rules of :meth:`sdmodel.core.validate.Problems.number`)
SEARCH_RULES: dict[str, dict[str, Any]] = dict(
    popsize=dict(integer=True, positive=True),
    maxiter=dict(integer=True, minimum=0),
    seed=dict(integer=True, minimum=0),
    tol=dict(minimum=0),
    local_nfev=dict(integer=True, minimum=0),
    dt=dict(positive=True),
)
#: settings of the Bayesian estimation (``estimate:``): mode search by CMA-ES from random prior draws,
#: then posterior sampling with emcee (see :mod:`sdmodel.estimate.estimation`)
ESTIMATE_DEFAULTS = dict(
    restarts=10,
    popsize=16,
    maxiter=150,
    local_iter=20,
    walkers=64,
    steps=2000,
    burn=500,
    thin=5,
    draws=200,
    seed=1,
    dt=None,
)
ESTIMATE_RULES: dict[str, dict[str, Any]] = dict(
    restarts=dict(integer=True, positive=True),
    popsize=dict(integer=True, minimum=4),
    maxiter=dict(integer=True, positive=True),
    local_iter=dict(integer=True, minimum=0),
    walkers=dict(integer=True, minimum=4),
    steps=dict(integer=True, positive=True),
    burn=dict(integer=True, minimum=0),
    thin=dict(integer=True, positive=True),
    draws=dict(integer=True, positive=True),
    seed=dict(integer=True, minimum=0),
    dt=dict(positive=True),
)
FAILED = 1e3  # residual of every observation of a failed run


@dataclass(frozen=True)
class FreeParameter:
    """A parameter the calibration chooses: its search box and an optional prior.

    ``lower``/``upper`` are the config's ``bounds`` when it gives them (``bounded``), else the
    prior's 0.05% and 99.95% quantiles: a box for the least-squares search, not a truncation of
    the prior (:func:`sdmodel.estimate.estimation.estimate` samples the prior's whole support).
    """

    name: str
    lower: float
    upper: float
    prior: Prior | None = None
    bounded: bool = True


@dataclass(frozen=True)
class Target:
    """An observed series the model output ``name`` is fitted to (``weight`` 0: reported, not fitted)."""

    name: str
    column: str
    weight: float = 1.0
    shift: float = 0.0
    log: bool = False
    #: measurement error of the estimation's likelihood: a fixed sd (in the target's units), a prior
    #: (the sd is estimated), or None (the target is reported by an estimation, not fitted)
    sd: float | Prior | None = None
    #: AR(1) coefficient of the measurement errors: fixed, or a prior (estimated)
    ar1: float | Prior = 0.0

    @property
    def units(self) -> str:
        return "log points" if self.log else "points"

    @property
    def fitted(self) -> bool:
        """Whether it enters the loss (weight > 0); a weight-0 target is only reported."""
        return self.weight > 0


@dataclass(frozen=True)
class CalibrationConfig:
    """A calibration as declared in its YAML file (see the module docstring)."""

    source: str
    model: str
    scenario: str | None
    data: Path
    time_column: str
    window: tuple[float, float]
    targets: tuple[Target, ...]
    parameters: tuple[FreeParameter, ...]
    penalty: str | None = None
    penalty_weight: float = 1.0
    out_of_sample: tuple[tuple[float, float], tuple[float, float]] | None = None
    search: dict = field(default_factory=lambda: dict(SEARCH_DEFAULTS))
    description: str = ""
    hash: str = ""  # sha256 of the parsed content (core.manifest.content_sha256): comments and layout do not count
    #: settings of :func:`sdmodel.estimate.estimation.estimate` (``estimate:`` in the file; defaults: ESTIMATE_DEFAULTS)
    estimate: dict = field(default_factory=lambda: dict(ESTIMATE_DEFAULTS))
    #: ``path.py:function`` of the stylised facts an estimation reports the robustness of
    facts: str | None = None
    #: forecast origins of ``sdmodel validate`` (rolling-origin out-of-sample skill)
    origins: tuple[float, ...] = ()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]


def builtin_calibration_dir() -> Path:
    """Where the shipped calibration configs live: in the wheel, or ``calibration/`` of the checkout."""
    return shipped_dir("calibration")


def resolve_config(path_or_name: str | Path) -> Path:
    """A config file from a path or a name (``japan`` -> ``calibration/japan.yaml``)."""
    return resolve_named(path_or_name, "calibration", builtin_calibration_dir(), "calibration config")


def load_config(path_or_name: str | Path) -> CalibrationConfig:
    """Read and validate a calibration config, reporting every problem at once.

    Raises
    ------
    ConfigError
        Naming the file, key and line of each problem and what was expected.
    """
    path = resolve_config(path_or_name)
    raw, d = read_yaml_file(path, "calibration config")
    content_hash = content_sha256(d)  # what the config says: comments and layout do not count
    problems = Problems(str(path), ConfigError)
    err = problems.add

    if not isinstance(d, dict):
        raise ConfigError("expected a YAML mapping with keys " + ", ".join(CONFIG_KEYS), str(path))
    problems.unknown_each(d, CONFIG_KEYS)
    for k in ("model", "data", "window", "targets", "parameters"):
        if k not in d:
            err(k, "missing (required)")

    pair = problems.interval

    window = pair("window", d.get("window"), d, "window") if "window" in d else None
    oos = None
    if d.get("out_of_sample") is not None:
        o = problems.mapping(
            "out_of_sample",
            d["out_of_sample"],
            d,
            "out_of_sample",
            keys=("fit", "test"),
            required=("fit", "test"),
            expected="{fit: [start, stop], test: [start, stop]}",
        )
        if o and "fit" in o and "test" in o:
            f_, t_ = pair("out_of_sample.fit", o["fit"], o, "fit"), pair("out_of_sample.test", o["test"], o, "test")
            if f_ and t_:
                oos = (f_, t_)

    targets = []
    tg = d.get("targets")
    if tg is not None and (not isinstance(tg, dict) or not tg):
        err("targets", "expected a non-empty mapping of model output: {weight, shift, column, log}", d, "targets")
    elif isinstance(tg, dict):
        for n, spec in tg.items():
            spec = {} if spec is None else spec
            if not isinstance(spec, dict):
                err(f"targets.{n}", f"expected a mapping with keys {', '.join(TARGET_KEYS)}", tg, n)
                continue
            problems.unknown_each(spec, TARGET_KEYS, f"targets.{n}.")
            w = problems.number(
                f"targets.{n}.weight",
                spec.get("weight", 1.0),
                spec,
                "weight",
                minimum=0,
                hint="positive, or 0: reported, not fitted",
            )
            s = problems.number(f"targets.{n}.shift", spec.get("shift", 0.0), spec, "shift")
            log = problems.boolean(f"targets.{n}.log", spec.get("log", False), spec, "log")
            sd = _fixed_or_prior(problems, f"targets.{n}.sd", spec, "sd", positive=True)
            ar1 = _fixed_or_prior(problems, f"targets.{n}.ar1", spec, "ar1", bounds=(-0.99, 0.99))
            if w is None or s is None or log is None or sd is False or ar1 is False:
                continue
            if sd is None and "ar1" in spec:
                err(f"targets.{n}.ar1", "an AR(1) coefficient needs a measurement error: give sd too", spec, "ar1")
            targets.append(Target(str(n), str(spec.get("column", n)), w, s, log, sd, 0.0 if ar1 is None else ar1))
        if targets and not any(t.fitted for t in targets):
            err("targets", "every target has weight 0: at least one must be fitted (weight > 0)", d, "targets")

    params = []
    ps = d.get("parameters")
    if ps is not None and (not isinstance(ps, dict) or not ps):
        err(
            "parameters",
            "expected a non-empty mapping of name: {bounds: [lower, upper], prior: [mean, sd]}",
            d,
            "parameters",
        )
    elif isinstance(ps, dict):
        for n, spec in ps.items():
            spec = problems.mapping(
                f"parameters.{n}",
                spec,
                ps,
                n,
                keys=("bounds", "prior"),
                optional=False,
                expected="{bounds: [lower, upper]} and/or prior: {dist: ..., source: ...}",
            )
            if spec is None:
                continue
            if "bounds" not in spec and "prior" not in spec:
                err(f"parameters.{n}", "expected bounds: [lower, upper], a prior: {dist: ...}, or both", ps, n)
                continue
            b = pair(f"parameters.{n}.bounds", spec["bounds"], ps, n, "[lower, upper]") if "bounds" in spec else None
            prior = None
            if spec.get("prior") is not None:
                prior = read_prior(problems, f"parameters.{n}.prior", spec["prior"], spec, "prior")
                if prior is not None and b is not None:
                    prior = check_in_bounds(problems, f"parameters.{n}.prior", prior, b, spec, "prior")
                if prior is None:
                    continue
            if b is not None:
                params.append(FreeParameter(str(n), b[0], b[1], prior))
            elif prior is not None and "bounds" not in spec:
                lo, hi = prior.interval(0.999)
                params.append(FreeParameter(str(n), lo, hi, prior, bounded=False))

    given = problems.mapping("search", d.get("search"), d, "search", keys=tuple(SEARCH_DEFAULTS))
    search = check_settings(problems, dict(SEARCH_DEFAULTS), given or {}, SEARCH_RULES, given, "search.")
    penalty = d.get("penalty")
    if penalty is not None and (not isinstance(penalty, str) or ":" not in penalty):
        err("penalty", f"expected 'path/to/file.py:function', got {penalty!r}", d, "penalty")
    pw = problems.number("penalty_weight", d.get("penalty_weight", 1.0), d, "penalty_weight", positive=True)
    est = problems.mapping("estimate", d.get("estimate"), d, "estimate", keys=tuple(ESTIMATE_DEFAULTS))
    estimate = check_settings(problems, dict(ESTIMATE_DEFAULTS), est or {}, ESTIMATE_RULES, est, "estimate.")
    facts = d.get("facts")
    if facts is not None and (not isinstance(facts, str) or ":" not in facts):
        err("facts", f"expected 'path/to/file.py:function', got {facts!r}", d, "facts")
    elif facts is not None and not (path.parent / facts.rsplit(":", 1)[0]).is_file():
        err("facts", f"no file {facts.rsplit(':', 1)[0]} (relative to the config's folder)", d, "facts")
    if not estimate["burn"] < estimate["steps"]:
        err("estimate.burn", f"expected fewer than steps ({estimate['steps']}), got {estimate['burn']}", est, "burn")
    elif (estimate["steps"] - estimate["burn"]) // estimate["thin"] < 4:
        err(
            "estimate.steps",
            f"steps {estimate['steps']}, burn {estimate['burn']} and thin {estimate['thin']} keep fewer than 4 draws "
            "a walker, which the diagnostics need",
            est,
            "steps",
        )
    val = problems.mapping("validation", d.get("validation"), d, "validation", keys=("origins",))
    origins: list[float] = []
    if val and "origins" in val:
        if not isinstance(val["origins"], list) or not val["origins"]:
            err("validation.origins", f"expected a list of years, got {val['origins']!r}", val, "origins")
        else:
            for i, o in enumerate(val["origins"]):
                x = problems.number(f"validation.origins[{i}]", o, val, "origins")
                if x is not None:
                    origins.append(float(x))
            if origins != sorted(set(origins)):
                err("validation.origins", f"expected increasing years, got {val['origins']!r}", val, "origins")
    problems.raise_if_any()
    assert window is not None and pw is not None  # else a problem was recorded and raised just above
    model = str(d["model"])
    if (path.parent / model).exists():  # a model file or folder relative to the config, else a built-in name
        model = str((path.parent / model).resolve())
    return CalibrationConfig(
        source=str(path),
        model=model,
        scenario=None if d.get("scenario") is None else str(d["scenario"]),
        data=(path.parent / str(d["data"])).resolve(),
        time_column=str(d.get("time_column", "year")),
        window=window,
        targets=tuple(targets),
        parameters=tuple(params),
        penalty=None
        if penalty is None
        else str((path.parent / penalty.rsplit(":", 1)[0]).resolve()) + ":" + penalty.rsplit(":", 1)[1],
        penalty_weight=float(pw),
        out_of_sample=oos,
        search=search,
        description=" ".join(str(d.get("description", "")).split()),
        hash=content_hash,
        estimate=estimate,
        facts=None if facts is None else _relative_ref(path, facts),
        origins=tuple(origins),
    )


def _relative_ref(config: Path, ref: str) -> str:
    """``file.py:function`` with the file made absolute, relative to the config's folder."""
    file, fn = ref.rsplit(":", 1)
    return str((config.parent / file).resolve()) + ":" + fn


def _fixed_or_prior(
    problems: Problems, key: str, spec: Mapping, sub: str, *, positive: bool = False, bounds=None
) -> float | Prior | None | bool:
    """A measurement setting: a number (fixed), a prior mapping (estimated), absent (None), or False
    with the problem recorded."""
    if sub not in spec or spec[sub] is None:
        return None
    v = spec[sub]
    if isinstance(v, dict):
        pr = read_prior(problems, key, v, spec, sub)
        if pr is not None:
            limits = (0.0, math.inf) if positive else bounds
            pr = check_in_bounds(problems, key, pr, limits, spec, sub)
        return False if pr is None else pr
    lo, hi = bounds if bounds is not None else (None, None)
    x = problems.number(
        key,
        v,
        spec,
        sub,
        positive=positive,
        minimum=lo,
        maximum=hi,
        hint="a number (fixed) or a prior {dist: ..., source: ...} (estimated)",
    )
    return False if x is None else float(x)


def check_settings(
    problems: Problems, base: dict, new: Mapping, rules: Mapping[str, dict], mapping=None, prefix: str = ""
) -> dict:
    """``base`` updated with the settings of ``new`` that pass ``rules`` (rules of
    :meth:`~sdmodel.core.validate.Problems.number`; each bad value recorded); ``dt: null`` is the model's own step,
    any other setting must be given a value. Keys ``rules`` does not know are skipped: the caller reports them
    (:func:`unknown_settings`, or the mapping reader of a file)."""
    for k, v in new.items():
        if k not in rules:
            continue
        if v is None and k == "dt":
            base[k] = None
            continue
        x = problems.number(f"{prefix}{k}", v, mapping, k, **rules[k])
        if x is not None:
            base[k] = x
    return base


def unknown_settings(problems: Problems, given: Mapping, rules: Mapping[str, dict], section: str, kind: str) -> None:
    """One problem per setting of the call's arguments ``given`` that ``rules`` does not know, with the closest."""
    for k in given:
        if k not in rules:
            near = closest(k, rules)
            problems.add(
                f"{section}.{k}",
                f"not {kind} setting; expected one of {', '.join(rules)}"
                + (f"; did you mean {near!r}?" if near else ""),
            )


def load_function(spec: str, key: str = "penalty") -> Callable:
    """The function ``path/to/file.py:name`` a config's ``key`` (penalty, facts) names."""
    file, func = spec.rsplit(":", 1)
    if not Path(file).is_file():
        raise ConfigError(f"{key}: file {file} not found")
    # named after the file's content, not its path: an edited penalty file is loaded anew, never the old code
    mod_name = f"_sdmodel_penalty_{hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]}"
    module = sys.modules.get(mod_name)
    if module is None:
        spec_ = importlib.util.spec_from_file_location(mod_name, file)
        if spec_ is None or spec_.loader is None:
            raise ConfigError(f"{key}: {file} cannot be imported as a Python module (a .py file)")
        module = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(module)
        sys.modules[mod_name] = module
    if not callable(getattr(module, func, None)):
        raise ConfigError(f"{key}: {file} has no function {func!r}")
    return getattr(module, func)


class Problem:
    """A calibration config bound to its model and data: residuals of many candidates at once.

    Parameters
    ----------
    config : CalibrationConfig
    model : Model, optional
        Replaces the config's model (e.g. for synthetic-data studies).
    data : DataFrame, optional
        Replaces the config's data file (indexed by time or with the time column).
    """

    def __init__(self, config: CalibrationConfig, model=None, data: pd.DataFrame | None = None):
        self.config = config
        self.model = model if model is not None else load_model(config.model, scenario=config.scenario)
        problems = []
        from_file = data is None
        if data is None:
            from sdmodel.core.inputs import read_input
            from sdmodel.data.readers import DataError, check_increasing, csv_table, to_numbers

            if not config.data.exists():
                raise SpecError(f"data: file {config.data} not found", config.source)
            raw = read_input(config.data, "data file", error=DataError)  # never /dev/zero, a folder or a FIFO
            data = csv_table(raw, config.data, "data file")  # text cells indexed by line: ragged rows refused
            tc = config.time_column
            for c in dict.fromkeys([tc] + [t.column for t in config.targets]):
                if c in data.columns:  # a missing column is reported below with the other problems
                    data[c] = to_numbers(
                        data[c],
                        config.data,
                        c,
                        required=c == tc,
                        what="a time such as 1990" if c == tc else "a finite number",
                    )
            if tc in data.columns:  # no sorting: a time that repeats or goes back is an error naming its line
                check_increasing(data[tc], config.data, tc)
            data = data.reset_index(drop=True)
            self.data_hash = hashlib.sha256(raw).hexdigest()
        else:
            self.data_hash = hashlib.sha256(pd.util.hash_pandas_object(data).values.tobytes()).hexdigest()
        if config.time_column in data.columns:
            data = data.set_index(config.time_column)
        elif data.index.name != config.time_column:
            problems.append(
                f"data: no time column {config.time_column!r} in {config.data.name} "
                f"(columns: {', '.join(map(str, data.columns))})"
            )
        self.cm = compile_model(self.model)
        outputs = set(self.cm.output_names)
        for t in config.targets:
            if t.column not in data.columns:
                problems.append(f"targets.{t.name}: no column {t.column!r} in {config.data.name}")
            if t.name not in outputs:
                problems.append(f"targets.{t.name}: the model {self.model.name!r} has no output {t.name!r}")
        for p in config.parameters:
            declared = self.model.parameters.get(p.name)
            if declared is None:
                problems.append(f"parameters.{p.name}: the model {self.model.name!r} has no parameter {p.name!r}")
            elif declared.bounds is not None and not declared.bounds[0] <= p.lower < p.upper <= declared.bounds[1]:
                problems.append(
                    f"parameters.{p.name}.bounds: [{p.lower:g}, {p.upper:g}] goes beyond the bounds "
                    f"[{declared.bounds[0]:g}, {declared.bounds[1]:g}] the model declares for {p.name!r}"
                )
        if problems:
            raise SpecError(problems, config.source)
        self.data = data.sort_index()
        self.names = config.names
        self.lower = np.array([p.lower for p in config.parameters])
        self.upper = np.array([p.upper for p in config.parameters])
        self.penalty = load_function(config.penalty) if config.penalty else None
        t0, t1 = self.model.time.start, self.model.time.stop
        # observation times per target: every year with data whose model time lies in the run
        self.obs = {}
        for t in config.targets:
            col = self.data[t.column].dropna()
            years = col.index.to_numpy(float)
            keep = (years + t.shift >= t0 - 1e-9) & (years + t.shift <= t1 + 1e-9)
            self.obs[t.name] = (years[keep], col.to_numpy(float)[keep])
        from sdmodel.core.errors import DataError

        where = str(config.data) if from_file else "the data given"
        for t in config.targets:  # data that cannot be fitted: an error, not an empty or NaN loss
            if self.data[t.column].isna().all():
                raise DataError(
                    f"{where}: column {t.column!r} (target {t.name}) has no values; expected numbers "
                    f"for at least some {config.time_column}s"
                )
            if t.fitted and config.window is not None and not self.mask(t, config.window).any():
                span = self.data[t.column].dropna().index
                raise DataError(
                    f"{where}: column {t.column!r} (target {t.name}) has no value in the fit window "
                    f"[{config.window[0]:g}, {config.window[1]:g}] within the model run [{t0:g}, {t1:g}] "
                    f"(it has values for {config.time_column} {span.min():g} to {span.max():g}); "
                    "expected data inside the window: change window or the data"
                )
        self.t_eval = np.unique(
            np.round(np.concatenate([y + t.shift for t in config.targets for y in [self.obs[t.name][0]]]), 9)
        )
        self.fitted = [t for t in config.targets if t.fitted]  # the targets that enter the loss
        self.evaluations = 0

    # -- simulation ------------------------------------------------------------
    def simulate(self, X) -> dict[str, np.ndarray]:
        """Model paths (B, n_obs) at each target's observation times, and ``ok`` (B,)."""
        X = np.atleast_2d(np.asarray(X, float))
        res = simulate_batch(
            self.cm,
            X,
            self.names,
            solver=Solver(dt=self.config.search.get("dt")),
            saveat=SaveAt(t_eval=self.t_eval),
            throw=False,
        )  # failed runs score inf, not abort
        self.evaluations += len(X)
        out = {"ok": res.success.copy()}
        for t in self.config.targets:
            idx = np.searchsorted(res.t, self.obs[t.name][0] + t.shift - 1e-9)
            out[t.name] = res[t.name][:, idx]
        return out

    def errors(self, paths, target: Target) -> np.ndarray:
        """Model minus data (B, n_obs): points, or log points (100 x log ratio) for log targets."""
        y = self.obs[target.name][1]
        m = paths[target.name]
        if target.log:
            with np.errstate(invalid="ignore", divide="ignore"):
                return 100 * (np.log(np.where(m > 0, m, np.nan)) - np.log(y))
        return m - y

    def mask(self, target: Target, window) -> np.ndarray:
        years = self.obs[target.name][0]
        return (years >= window[0] - 1e-9) & (years <= window[1] + 1e-9)

    def residuals(self, X, window, with_penalty: bool = True) -> np.ndarray:
        """The weighted residual vectors (B, m) whose squared sum is the loss."""
        X = np.atleast_2d(np.asarray(X, float))
        paths = self.simulate(X)
        parts = []
        for t in self.fitted:
            e = self.errors(paths, t)[:, self.mask(t, window)]
            parts.append(np.sqrt(t.weight) * e)
        r = np.concatenate(parts, axis=1)
        bad = ~paths["ok"] | ~np.isfinite(r).all(axis=1)
        r[bad] = FAILED
        # a prior as a residual: sqrt(2 (max log p - log p(x))), |x - mean| / sd for a normal prior
        pri = [
            np.sqrt(np.maximum(0.0, 2 * (p.prior.peak_logpdf() - p.prior.logpdf(X[:, j]))))
            for j, p in enumerate(self.config.parameters)
            if p.prior
        ]
        if pri:
            r = np.column_stack([r] + pri)
        if with_penalty and self.penalty is not None:
            pen = np.asarray(self.penalty(self.cm, X, self.names), float)
            pen = np.where(np.isfinite(pen) & (pen >= 0), self.config.penalty_weight * pen, FAILED**2)
            r = np.column_stack([r, np.sqrt(pen)])
        return r

    def n_data(self, window) -> int:
        return int(sum(self.mask(t, window).sum() for t in self.fitted))


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class CalibrationResult:
    """What :func:`calibrate` found: estimates, uncertainty, fit and out-of-sample statistics."""

    config: CalibrationConfig
    window: tuple[float, float]
    params: dict[str, float]
    se: dict[str, float]
    at_bound: tuple[str, ...]
    cost: float
    penalty: float
    fit: pd.DataFrame  # one row per target: n, rmse, r2, bias (fit window)
    test: pd.DataFrame | None  # the same on the out-of-sample window, if any
    test_window: tuple[float, float] | None
    turning_points: pd.DataFrame  # per target: peak/trough year, data vs model (fit window)
    paths: pd.DataFrame  # long: target, year, data, model
    evaluations: int
    wall_s: float
    seed: int
    search: dict
    messages: dict
    data_hash: str
    spec_hash: str
    model_name: str = ""  # the model's own name (config.model may be a path)
    correlation: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """The parameter table: estimate, standard error, bounds, at a bound."""
        rows = []
        for p in self.config.parameters:
            rows.append(
                dict(
                    parameter=p.name,
                    estimate=self.params[p.name],
                    se=self.se[p.name],
                    lower=p.lower,
                    upper=p.upper,
                    at_bound=p.name in self.at_bound,
                    prior="" if p.prior is None else p.prior.describe(),
                )
            )
        return pd.DataFrame(rows).set_index("parameter")

    def summary(self) -> str:
        """A readable report: fit per series, turning points, out-of-sample errors, parameters."""
        c = self.config
        out = [
            f"calibration of {self.model_name}"
            + (f" (scenario {c.scenario})" if c.scenario else "")
            + f" to {c.data.name}, window {self.window[0]:g}-{self.window[1]:g}",
            f"loss {self.cost:.4g} (penalty {self.penalty:.3g}); "
            f"{self.evaluations} candidates evaluated in {self.wall_s:.0f} s; seed {self.seed}",
            "",
            "fit (model - data; RMSE in each target's units, column 'units')",
            self.fit.to_string(float_format=lambda v: f"{v:.3g}"),
        ]
        watched = [t.name for t in c.targets if not t.fitted]
        if watched:
            out.append(f"weight 0, reported but not fitted: {', '.join(watched)}")
        out += ["", "turning points (years, fit window)", self.turning_points.to_string()]
        if self.test is not None and self.test_window is not None:  # (set together)
            out += [
                "",
                f"out of sample {self.test_window[0]:g}-{self.test_window[1]:g} (not fitted)",
                self.test.to_string(float_format=lambda v: f"{v:.3g}"),
            ]
        t = self.to_frame()
        out += [
            "",
            "parameters (standard errors from the Jacobian at the optimum; inf = not identified)",
            t.to_string(float_format=lambda v: f"{v:.4g}"),
        ]
        if self.at_bound:
            out.append(f"at a bound (standard error not meaningful): {', '.join(self.at_bound)}")
        return "\n".join(out)

    def to_dict(self) -> dict:
        """JSON-ready report."""

        def frame(df):
            return None if df is None else json.loads(df.to_json(orient="index"))

        return dict(
            kind="calibration",
            **provenance(self.config, self.data_hash, self.spec_hash, self.window),
            seed=self.seed,
            search=self.search,
            loss=self.cost,
            penalty=self.penalty,
            evaluations=self.evaluations,
            wall_s=self.wall_s,
            messages=self.messages,
            parameters=frame(self.to_frame()),
            fit=frame(self.fit),
            out_of_sample=None
            if self.test is None or self.test_window is None
            else dict(window=list(self.test_window), fit=frame(self.test)),
            turning_points=frame(self.turning_points),
            correlation=frame(self.correlation),
        )


def provenance(config: CalibrationConfig, data_hash: str, spec_hash: str, window) -> dict:
    """What a fit report records of what it fitted: config, model, scenario, data, their hashes, the window."""
    return dict(
        config=config.source,
        config_hash=config.hash,
        model=config.model,
        scenario=config.scenario,
        data=str(config.data),
        data_hash=data_hash,
        spec_hash=spec_hash,
        window=list(window),
    )


# ----------------------------------------------------------------------------- statistics
def fit_statistics(problem: Problem, paths, window) -> pd.DataFrame:
    """Per target: observations, RMSE, R^2 and bias of the first run of ``paths`` in ``window``."""
    rows = []
    for t in problem.config.targets:
        m = problem.mask(t, window)
        e = problem.errors(paths, t)[0, m]
        y = problem.obs[t.name][1][m]
        yy = 100 * np.log(y) if t.log else y
        ok = np.isfinite(e)
        n = int(ok.sum())
        rmse = r2 = bias = np.nan
        if n:
            sse = float((e[ok] ** 2).sum())
            sst = float(((yy[ok] - yy[ok].mean()) ** 2).sum())
            rmse, bias = np.sqrt(sse / n), float(e[ok].mean())
            r2 = 1 - sse / sst if sst > 0 else np.nan
        rows.append(dict(target=t.name, n=n, rmse=rmse, r2=r2, bias=bias, units=t.units, weight=t.weight))
    return pd.DataFrame(rows).set_index("target")


def _turning_points(problem: Problem, paths, window) -> pd.DataFrame:
    rows = []
    for t in problem.config.targets:
        m = problem.mask(t, window)
        years, y = problem.obs[t.name][0][m], problem.obs[t.name][1][m]
        mod = paths[t.name][0, m]
        if len(years) == 0:
            continue
        rows.append(
            dict(
                target=t.name,
                data_peak=int(years[np.argmax(y)]),
                model_peak=int(years[np.nanargmax(mod)]),
                data_trough=int(years[np.argmin(y)]),
                model_trough=int(years[np.nanargmin(mod)]),
            )
        )
    return pd.DataFrame(rows).set_index("target")


def _jacobian(problem: Problem, x, window, rel_step=1e-4):
    """Forward-difference Jacobian of the residuals at ``x``: all p + 1 runs in one batch."""
    h = rel_step * (problem.upper - problem.lower)
    h = np.where(x + h > problem.upper, -h, h)  # step inwards at an upper bound
    X = np.vstack([x, x + np.diag(h)])
    r = problem.residuals(X, window)
    return r[0], (r[1:] - r[0]).T / h


def _uncertainty(problem: Problem, r0, J, window):
    """Standard errors and correlations from the residuals ``r0`` and Jacobian ``J`` at the optimum."""
    n, p = problem.n_data(window), J.shape[1]
    s2 = float((r0[:n] ** 2).sum()) / max(n - p, 1)
    JtJ = J.T @ J
    try:
        cov = s2 * np.linalg.inv(JtJ)
        if not np.all(np.isfinite(cov)) or np.linalg.cond(JtJ) > 1e14:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        # not identified along some direction: pseudo-inverse, and infinite SE where J'J has no curvature
        cov = s2 * np.linalg.pinv(JtJ)
        cov[np.diag(JtJ) <= 1e-12 * max(np.diag(JtJ).max(), 1e-300)] = np.inf
    se = np.sqrt(np.clip(np.diag(cov), 0, np.inf))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(se, se)
    return se, corr


def calibrate(
    config: CalibrationConfig | str | Path,
    *,
    window: tuple[float, float] | None = None,
    search: Mapping[str, Any] | None = None,
    x0=None,
    start: str = "current",
    model=None,
    data: pd.DataFrame | None = None,
    progress: bool = False,
) -> CalibrationResult:
    """Fit the config's free parameters: global search, local refinement, uncertainty.

    Parameters
    ----------
    config : CalibrationConfig, path or name
    window : (start, stop), optional
        Years whose observations enter the loss; default the config's ``window``.
        Observations after it (up to the config's ``out_of_sample.test`` stop, or
        the end of the data) are reported as out-of-sample errors.
    search : dict, optional
        Overrides of the config's ``search`` settings (``seed``, ``maxiter``, ``popsize``,
        ``local_nfev``, ``tol``, ``dt``), checked by the config's rules.  The same seed gives
        the same result.
    x0 : dict, optional
        Starting values of free parameters, each inside its bounds (a name that is not a free
        parameter, or a value outside its bounds, is an error).  A free parameter not given
        starts at the model's value, or at the nearer bound when the model's value lies outside them.
    start : {"current", "random"}
        ``"current"`` starts the search from a population around the starting point
        (normal, sd a tenth of each range, the point itself included): a refinement;
        ``"random"`` starts from a seeded Latin-hypercube population over the bounds, so that
        an out-of-sample fit owes nothing to values fitted on the test years.
    model, data : optional
        Replace the config's model or data (synthetic-data and recovery studies).
    progress : bool
        Show a progress bar over the search's generations.

    Examples
    --------
    A recovery on the SIM model: data made with ``alpha1 = 0.6`` are fitted back.

    >>> import pandas as pd, sdmodel
    >>> res = sdmodel.simulate("sim", saveat=sdmodel.SaveAt(t_eval=range(0, 41)))
    >>> df = pd.DataFrame({"t": res.t, "Y": res["Y"]})
    >>> cfg = CalibrationConfig(source="<doc>", model="sim", scenario=None, data=Path("."), time_column="t",
    ...     window=(0, 40), targets=(Target("Y", "Y"),), parameters=(FreeParameter("alpha1", 0.3, 0.9),),
    ...     search=dict(SEARCH_DEFAULTS, maxiter=5, popsize=5))
    >>> fit = calibrate(cfg, data=df)
    >>> round(fit.params["alpha1"], 6)
    0.6
    """
    cfg = config if isinstance(config, CalibrationConfig) else load_config(config)
    from scipy.optimize import differential_evolution, least_squares

    win = tuple(window) if window is not None else cfg.window
    if win is None or len(win) != 2 or not win[0] < win[1]:
        raise SpecError(f"window: expected (start, stop) with start < stop, got {win!r}", cfg.source)
    window = (win[0], win[1])
    # the arguments, checked by the rules of the config file, every problem at once, before anything runs
    # named as the call's arguments (the CLI's --seed, --maxiter, ...): the values did not come from the file
    problems = Problems("calibrate() arguments (--seed, --maxiter, --popsize, --local-nfev, x0)", ConfigError)
    given = dict(search or {})
    unknown_settings(problems, given, SEARCH_RULES, "search", "a search")
    s = check_settings(problems, dict(cfg.search), given, SEARCH_RULES)
    problems.one_of("start", start, ("current", "random"))
    free = {p.name: p for p in cfg.parameters}
    starts = {}
    for n, v in (x0 or {}).items():
        if problems.name_in(f"x0.{n}", n, free, what="a free parameter", of="of the calibration") is not None:
            p = free[n]
            x = problems.number(f"x0.{n}", v, minimum=p.lower, maximum=p.upper, hint="a start inside its bounds")
            if x is not None:
                starts[n] = x
    problems.raise_if_any()
    prob = Problem(cfg, model=model, data=data)
    lo, hi = prob.lower, prob.upper
    # the model's value, where no start is given, may lie outside the search box: start at the nearer bound
    model_values = np.clip([prob.model.parameters[n].value for n in prob.names], lo, hi)
    x_start = np.array([starts.get(n, v) for n, v in zip(prob.names, model_values)], float)
    t_start = time.perf_counter()

    def loss(X):  # DE's vectorised form: X is (p, S)
        r = prob.residuals(X.T, window)
        return (r**2).sum(axis=1)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(s["maxiter"]), desc="global search", unit="gen")

    def step(intermediate_result):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{intermediate_result.fun:.4g}")

    init = "latinhypercube"
    if start == "current":
        # a population around the starting point (sd: a tenth of each range), the point itself first:
        # DE's differences then start at the scale of the neighbourhood, not of the whole box
        rng = np.random.default_rng(int(s["seed"]))
        n_pop = max(5, int(s["popsize"]) * len(lo))
        init = np.clip(x_start + 0.1 * (hi - lo) * rng.standard_normal((n_pop, len(lo))), lo, hi)
        init[0] = x_start
    de = differential_evolution(
        loss,
        list(zip(lo, hi)),
        vectorized=True,
        updating="deferred",
        popsize=int(s["popsize"]),
        maxiter=int(s["maxiter"]),
        seed=int(s["seed"]),
        init=init,
        polish=False,
        tol=float(s["tol"]),
        mutation=(0.5, 1.0),
        recombination=0.7,
        callback=step,
    )
    if bar is not None:
        bar.close()
    x = de.x
    messages = {"global": str(de.message)}
    if int(s["local_nfev"]) > 0:
        cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

        def fun(x):
            key = x.tobytes()
            if key not in cache:
                cache.clear()
                cache[key] = _jacobian(prob, x, window)
            return cache[key][0]

        def jac(x):
            fun(x)
            return cache[x.tobytes()][1]

        ls = least_squares(fun, x, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac", max_nfev=int(s["local_nfev"]))
        messages["local"] = str(ls.message)
        if 2 * ls.cost <= float(de.fun):
            x = ls.x
    r, J = _jacobian(prob, x, window)
    cost = float((r**2).sum())
    pen = float(r[-1] ** 2) if prob.penalty is not None else 0.0
    se, corr = _uncertainty(prob, r, J, window)
    span = hi - lo
    at_bound = tuple(n for n, v, a, b, w in zip(prob.names, x, lo, hi, span) if min(v - a, b - v) <= 1e-6 * w)

    # statistics of the best run over all its observations
    paths = prob.simulate(x)
    last = max(float(prob.obs[t.name][0].max()) for t in cfg.targets if len(prob.obs[t.name][0]))
    test_window = None
    if cfg.out_of_sample is not None and window[1] < cfg.out_of_sample[1][1]:
        test_window = (max(window[1] + 1, cfg.out_of_sample[1][0]), cfg.out_of_sample[1][1])
    elif window[1] < last:
        test_window = (window[1] + 1, last)
    rows = []
    for t in cfg.targets:
        for year, y, mv in zip(prob.obs[t.name][0], prob.obs[t.name][1], paths[t.name][0]):
            rows.append(dict(target=t.name, year=year, data=y, model=mv))
    return CalibrationResult(
        config=cfg,
        window=window,
        params=dict(zip(prob.names, map(float, x))),
        se=dict(zip(prob.names, map(float, se))),
        at_bound=at_bound,
        cost=cost,
        penalty=pen,
        fit=fit_statistics(prob, paths, window),
        test=fit_statistics(prob, paths, test_window) if test_window else None,
        test_window=test_window,
        turning_points=_turning_points(prob, paths, window),
        paths=pd.DataFrame(rows),
        evaluations=prob.evaluations,
        wall_s=time.perf_counter() - t_start,
        seed=int(s["seed"]),
        search={**s, "start": start},
        messages=messages,
        data_hash=prob.data_hash,
        spec_hash=prob.model.spec_hash,
        model_name=prob.model.name,
        correlation=pd.DataFrame(corr, index=prob.names, columns=prob.names),
    )
