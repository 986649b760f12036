"""Studies of many runs: the study config, outcome measures, and chunked evaluation.

A study config (YAML, ``studies/<scenario>.yaml``) names a model and scenario,
the *outcomes* every run is measured by (cumulative real output loss against a
counterfactual, peaks, end values, years of deflation, the year deleveraging
ends), the debt paths whose sensitivity is tracked year by year, the uncertain
*factors* of a sensitivity study and the *designs* of a sequencing study.
:func:`load_study` validates all of it against the model before anything is
simulated, reporting every problem at once.

:func:`evaluate_chunks` evaluates a sample matrix chunk by chunk.  Each chunk is
saved atomically under ``chunks/`` the moment it is done, keyed by the study
(the chunk store, :mod:`sdmodel.core.store`), so an interrupted study resumes where
it stopped and a finished one never recomputes; the chunks run in this process or on a Dask cluster (a scheduler
address, or a local cluster of N worker processes) with identical results.

Memory does not grow with runs x outputs x times: a chunk's recorded paths are reduced to its
outcomes (one number per run and outcome) inside the chunk, and dropped with it; chunks are cut
to a memory budget (:data:`CHUNK_MEMORY`, :func:`chunk_rows`); :func:`collect_chunks` puts each
finished chunk's outcomes in place and keeps the bulky ones (a value per run for every tracked
path and year) in a :class:`~sdmodel.core.store.ColumnFile` on disk, read back a column at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdmodel.core.errors import ConfigError, SimulationError, SpecError
from sdmodel.core.files import resolve_named
from sdmodel.core.inputs import shipped_dir
from sdmodel.core.manifest import content_sha256
from sdmodel.core.options import Execution
from sdmodel.core.store import ChunkStore, ColumnFile
from sdmodel.core.store import claim_store as claim_store  # re-exported: sdmodel.study.base.claim_store, as before
from sdmodel.core.store import study_key as study_key  # re-exported: sdmodel.study.base.study_key, as before
from sdmodel.core.validate import Problems, closest
from sdmodel.engine.cache import MemoryCache

STUDY_KEYS = (
    "description",
    "model",
    "scenario",
    "solver",
    "counterfactual",
    "outcomes",
    "time_varying",
    "sensitivity",
    "sequence",
)
OUTCOME_KINDS = {
    "loss": "cumulative shortfall of the variable below the counterfactual run, in % of one year's value, "
    "summed over the window (needs counterfactual:)",
    "multiplier": "the loss divided by the window's cumulative value of per: (e.g. output lost per unit of "
    "consolidation, both in % of GDP-years: a cumulative multiplier; needs counterfactual:)",
    "max": "largest value in the window",
    "min": "smallest value in the window",
    "mean": "time average over the window",
    "at": "value at one time (time:)",
    "first_above": "the first time the variable exceeds threshold (window end if never)",
    "time_of_max": "when the variable peaks in the window",
    "time_of_min": "when the variable reaches its low in the window (e.g. the end of deleveraging)",
    "years_below": "calendar years in the window whose average is below threshold",
    "last_below": "the time after which the variable stays at or above threshold (window start if never below)",
}
OUTCOME_KEYS = ("kind", "variable", "window", "time", "threshold", "per", "doc")
FACTOR_KEYS = ("bounds", "around", "se", "group", "dummy", "doc")
SENSITIVITY_KEYS = ("factors", "calibration_report", "chunk_size")
DEFAULT_CHUNK = 2048
#: The memory one chunk may use while it is evaluated (its runs' recorded paths, its counterfactual
#: runs' and the outcome computation's temporaries): a chunk has at most as many runs as fit
#: (:func:`chunk_rows`). Each process that evaluates chunks holds one at a time.
CHUNK_MEMORY = 256 * 2**20


@dataclass(frozen=True)
class Outcome:
    name: str
    kind: str
    variable: str
    window: tuple[float, float] | None = None
    time: float | None = None
    threshold: float = 0.0
    doc: str = ""
    per: str | None = None


@dataclass(frozen=True)
class Factor:
    """One uncertain input of a sensitivity study: a model parameter, or a dummy the model never sees."""

    name: str
    lower: float
    upper: float
    group: str
    dummy: bool = False
    origin: str = ""  # how the range was set: "bounds", "around 5% of 0.62", "2 SE of the calibration"


@dataclass
class StudyConfig:
    source: str
    model: str
    scenario: str | None
    description: str
    method: str | None
    dt: float | None
    t_span: tuple[float, float]
    counterfactual: dict[str, float]
    outcomes: tuple[Outcome, ...]
    time_varying: tuple[str, ...]
    tv_years: tuple[float, ...]
    factors: tuple[Factor, ...]
    chunk_size: int
    sequence: Mapping | None
    parameters: dict[str, float] = field(default_factory=dict)  # the scenario's values of every parameter
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # the model's declared parameter bounds
    spec_hash: str = ""
    hash: str = ""  # sha256 of the parsed content (core.manifest.content_sha256): comments and layout do not count

    @property
    def name(self) -> str:
        return Path(self.source).stem


def builtin_studies_dir() -> Path:
    """Where the shipped study configs live: in the wheel, or ``studies/`` of the checkout."""
    return shipped_dir("studies")


def load_study(path_or_name: str | Path) -> StudyConfig:
    """Read a study config and check it against its model, reporting every problem at once.

    ``path_or_name`` is a ``.yaml`` file or a name in ``studies/`` (``japan``, ``china``).

    Raises
    ------
    ConfigError
        Naming the file, key and line of each problem and what was expected.
    """
    from sdmodel.engine.compiler import compile_model
    from sdmodel.model.spec import load_model, read_yaml_file

    path = resolve_named(path_or_name, "studies", builtin_studies_dir(), "study config")
    raw, d = read_yaml_file(path, "study config")
    content_hash = content_sha256(d)  # what the config says: comments and layout do not count
    problems = Problems(str(path), ConfigError)
    err = problems.add

    if not isinstance(d, dict):
        raise ConfigError("expected a YAML mapping with keys " + ", ".join(STUDY_KEYS), str(path))
    problems.unknown_each(d, STUDY_KEYS)
    if "model" not in d:
        err("model", "missing (required): a model file, folder or built-in name")
        problems.raise_if_any()
    model_ref = str(d["model"])
    if (path.parent / model_ref).exists():
        model_ref = str((path.parent / model_ref).resolve())
    scenario = None if d.get("scenario") is None else str(d["scenario"])
    try:
        model = load_model(model_ref, scenario)
        cm = compile_model(model)
    except SpecError as e:
        err("model/scenario", str(e))
        problems.raise_if_any()
    params = {n: float(p.value) for n, p in model.parameters.items()}
    bounds = {n: p.bounds for n, p in model.parameters.items() if p.bounds is not None}
    outputs = list(cm.output_names)
    t0, t1 = model.time.start, model.time.stop
    of_model = f"of model {model.name!r}"

    def value(key, n, v, mapping, sub):
        """A value of parameter ``n``: a number inside the bounds the model declares for it."""
        lo, hi = bounds.get(n, (None, None))
        return problems.number(
            key,
            v,
            mapping,
            sub,
            minimum=lo,
            maximum=hi,
            hint=f"the bounds of {n!r} in the model" if n in bounds else "",
        )

    solver = (
        problems.mapping(
            "solver", d.get("solver"), d, "solver", keys=("method", "dt"), expected="{method: rk4|euler, dt: step}"
        )
        or {}
    )
    method = solver.get("method")
    if method is not None:
        method = problems.one_of(
            "solver.method", method, ("rk4", "euler"), solver, "method", hint="the batched methods"
        )
    dt = (
        None
        if solver.get("dt") is None
        else problems.number("solver.dt", solver["dt"], solver, "dt", positive=True, what="step")
    )

    def window(key, v, mapping, sub):
        return problems.interval(key, v, mapping, sub, within=(t0, t1))

    cf = (
        problems.mapping(
            "counterfactual",
            d.get("counterfactual"),
            d,
            "counterfactual",
            expected="a mapping of parameter: value (the comparison run of 'loss' outcomes)",
        )
        or {}
    )
    counterfactual: dict[str, float] = {}
    for n, v in cf.items():
        if problems.name_in(f"counterfactual.{n}", n, params, cf, n, what="a parameter", of=of_model) is None:
            continue
        x = value(f"counterfactual.{n}", n, v, cf, n)
        if x is not None:
            counterfactual[str(n)] = x

    outcomes = []
    oc = d.get("outcomes")
    if not isinstance(oc, dict) or not oc:
        err(
            "outcomes",
            "expected a non-empty mapping of name: {kind, variable, window, ...} "
            f"(kinds: {', '.join(OUTCOME_KINDS)})",
            d,
            "outcomes",
        )
        oc = {}
    for n, spec in oc.items():
        key = f"outcomes.{n}"
        if not isinstance(spec, dict):
            err(key, f"expected a mapping with keys {', '.join(OUTCOME_KEYS)}", oc, n)
            continue
        problems.unknown_each(spec, OUTCOME_KEYS, f"{key}.")
        kind = problems.one_of(f"{key}.kind", spec.get("kind"), tuple(OUTCOME_KINDS), spec, "kind")
        var = problems.name_in(
            f"{key}.variable", spec.get("variable"), outputs, spec, "variable", what="an output", of=of_model
        )
        if kind is None or var is None:
            continue
        w = tm = None
        if kind == "at":
            tm = problems.number(
                f"{key}.time",
                spec.get("time"),
                spec,
                "time",
                minimum=t0,
                maximum=t1,
                what="time",
                hint="within the run",
            )
            if tm is None:
                continue
        else:
            w = window(f"{key}.window", spec.get("window", [t0, t1]), spec, "window")
            if w is None:
                continue
        if kind in ("loss", "multiplier") and not counterfactual:
            err(key, f"a '{kind}' outcome needs counterfactual: {{parameter: value}} (e.g. no consolidation)", oc, n)
        per = spec.get("per")
        if (
            kind == "multiplier"
            and problems.name_in(
                f"{key}.per",
                per,
                outputs,
                spec,
                "per",
                what="an output",
                of=f"{of_model} (the output the loss is divided by)",
            )
            is None
        ):
            continue
        thr = problems.number(f"{key}.threshold", spec.get("threshold", 0.0), spec, "threshold")
        if thr is None:
            continue
        outcomes.append(
            Outcome(
                str(n),
                kind,
                str(var),
                w,
                tm,
                thr,
                " ".join(str(spec.get("doc", "")).split()),
                None if per is None else str(per),
            )
        )

    tv = (
        problems.mapping(
            "time_varying",
            d.get("time_varying"),
            d,
            "time_varying",
            keys=("variables", "window"),
            expected="{variables: [output, ...], window: [first year, last year]}",
        )
        or {}
    )
    tv_vars: tuple[str, ...] = ()
    tv_years: tuple[float, ...] = ()
    if tv:
        vs = problems.names_in(
            "time_varying.variables", tv.get("variables"), outputs, tv, "variables", what="an output", of=of_model
        )
        tv_vars = tuple(str(v) for v in vs or ())
        w = window("time_varying.window", tv.get("window", [t0, t1]), tv, "window")
        if w:
            tv_years = tuple(float(y) for y in np.arange(np.ceil(w[0]), np.floor(w[1]) + 0.5))

    factors, chunk = _factors(d.get("sensitivity"), params, path, problems, d, bounds)
    seq = d.get("sequence")
    if seq is not None and not isinstance(seq, dict):
        err("sequence", "expected a mapping of design name: design", d, "sequence")
    problems.raise_if_any()
    return StudyConfig(
        source=str(path),
        model=model_ref,
        scenario=scenario,
        description=" ".join(str(d.get("description", "")).split()),
        method=method,
        dt=dt,
        t_span=(t0, t1),
        counterfactual=counterfactual,
        outcomes=tuple(outcomes),
        time_varying=tv_vars,
        tv_years=tv_years,
        factors=tuple(factors),
        chunk_size=chunk,
        sequence=seq,
        parameters=params,
        bounds=bounds,
        spec_hash=model.spec_hash,
        hash=content_hash,
    )


def _factors(sec, params, path: Path, problems: Problems, d, bounds=None) -> tuple[list[Factor], int]:
    err = problems.add
    if sec is None:
        return [], DEFAULT_CHUNK
    if not isinstance(sec, dict):
        err("sensitivity", f"expected a mapping with keys {', '.join(SENSITIVITY_KEYS)}", d, "sensitivity")
        return [], DEFAULT_CHUNK
    problems.unknown_each(sec, SENSITIVITY_KEYS, "sensitivity.")
    chunk = int(  # (an int already: integer=True)
        problems.number(
            "sensitivity.chunk_size",
            sec.get("chunk_size", DEFAULT_CHUNK),
            sec,
            "chunk_size",
            positive=True,
            integer=True,
            what="whole number of runs",
        )
        or DEFAULT_CHUNK
    )
    report = None
    if sec.get("calibration_report") is not None:
        rp = (path.parent / str(sec["calibration_report"])).resolve()
        try:
            report = json.loads(rp.read_text())["parameters"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            err(
                "sensitivity.calibration_report",
                f"cannot read the parameters of calibration report {rp}: {e}",
                sec,
                "calibration_report",
            )
    fs = sec.get("factors")
    if not isinstance(fs, dict) or not fs:
        err(
            "sensitivity.factors",
            "expected a non-empty mapping of parameter: {bounds | around | se, group}",
            sec,
            "factors",
        )
        return [], chunk
    out = []
    for n, spec in fs.items():
        key = f"sensitivity.factors.{n}"
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            err(key, f"expected a mapping with keys {', '.join(FACTOR_KEYS)}", fs, n)
            continue
        problems.unknown_each(spec, FACTOR_KEYS, f"{key}.")
        dummy = problems.boolean(f"{key}.dummy", spec.get("dummy", False), spec, "dummy")
        if dummy is None:
            continue
        if dummy and n in params:
            err(key, f"a dummy factor must not be a parameter of the model, and {n!r} is one", fs, n)
            continue
        if not dummy and n not in params:
            near = closest(n, params)
            err(
                key,
                f"unknown factor: {n!r} is not a parameter of the model ("
                + (f"did you mean {near!r}? " if near else "")
                + "declare dummy: true for a factor the model "
                "never uses)",
                fs,
                n,
            )
            continue
        ways = [k for k in ("bounds", "around", "se") if k in spec]
        if len(ways) != 1:
            err(
                key,
                "give exactly one of bounds: [lower, upper], around: fraction (of the scenario value) or "
                "se: multiple (of the calibration's standard error)",
                fs,
                n,
            )
            continue
        way = ways[0]
        if way == "bounds":
            lohi = problems.interval(f"{key}.bounds", spec["bounds"], spec, "bounds", "[lower, upper]")
            if lohi is None:
                continue
            (lo, hi), origin = lohi, "bounds"
        elif way == "around":
            f = problems.number(
                f"{key}.around", spec["around"], spec, "around", positive=True, hint="a fraction of the scenario value"
            )
            if f is None:
                continue
            v = params[n]
            lo, hi = sorted((v * (1 - f), v * (1 + f)))
            origin = f"scenario value {v:.6g} ± {100 * f:g}%"
        else:
            k = problems.number(f"{key}.se", spec["se"], spec, "se", positive=True)
            if k is None:
                continue
            if report is None:
                err(key, "se: needs sensitivity.calibration_report: the report.json of a calibration", fs, n)
                continue
            if n not in report:
                err(key, f"{n!r} was not estimated by the calibration report", fs, n)
                continue
            try:
                est = report[n]
                lo = max(float(est["estimate"]) - k * float(est["se"]), float(est["lower"]))
                hi = min(float(est["estimate"]) + k * float(est["se"]), float(est["upper"]))
            except (TypeError, ValueError, KeyError) as why:
                err(
                    key,
                    f"the calibration report has no usable estimate, se, lower and upper for {n!r} ({why!r})",
                    fs,
                    n,
                )
                continue
            origin = f"estimate {float(est['estimate']):.6g} ± {k:g} SE, within the calibration bounds"
        if not lo < hi:
            err(f"{key}.{way}", f"inverted or empty range: lower {lo:g} must be below upper {hi:g}", spec, way)
            continue
        b = (bounds or {}).get(n)
        if b is not None and not b[0] <= lo < hi <= b[1]:
            err(
                f"{key}.{way}",
                f"the range [{lo:g}, {hi:g}] goes beyond the bounds [{b[0]:g}, {b[1]:g}] the model declares for {n!r}",
                spec,
                way,
            )
            continue
        out.append(Factor(str(n), lo, hi, str(spec.get("group", n)), dummy, origin))
    return out, chunk


# ---------------------------------------------------------------------------------------------- outcomes


def interp_rows(times, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of ``y`` (B, T) at ``times`` (a number: (B,); a sequence: (B, k)).

    >>> interp_rows([0.5, 2.0], np.array([0.0, 1.0, 2.0]), np.array([[0.0, 2.0, 4.0]])).tolist()
    [[1.0, 4.0]]
    """
    q = np.asarray(times, dtype=float)
    i = np.clip(np.searchsorted(t, q, side="right") - 1, 0, len(t) - 2)
    w = np.clip((q - t[i]) / (t[i + 1] - t[i]), 0.0, 1.0)
    return y[:, i] * (1 - w) + y[:, i + 1] * w


def outcome_values(
    o: Outcome, t: np.ndarray, y: np.ndarray, y_cf: np.ndarray | None = None, per: np.ndarray | None = None
) -> np.ndarray:
    """One outcome for a batch of paths ``y`` (B, T) on the time grid ``t`` (and counterfactual ``y_cf``,
    and the paths of ``o.per`` for a multiplier).

    Examples
    --------
    >>> t = np.arange(0, 4.01, 0.5); y = np.vstack([np.ones_like(t), 1 - 0.1 * (t >= 2)])
    >>> round(float(outcome_values(Outcome("l", "loss", "Y", (0, 4)), t, y[1:], y[:1])[0]), 6)  # trapezoid
    22.5
    >>> float(outcome_values(Outcome("d", "years_below", "y", (0, 4), threshold=0.95), t, y[1:])[0])
    2.0
    """
    if o.kind == "at":
        return interp_rows(o.time, t, y)
    if o.window is None:
        raise SpecError(f"outcome {o.name!r} ({o.kind}) needs a window (start, end)")
    a, b = o.window
    sel = (t >= a - 1e-9) & (t <= b + 1e-9)
    ts, ys = t[sel], y[:, sel]
    if o.kind == "max":
        return ys.max(axis=1)
    if o.kind == "min":
        return ys.min(axis=1)
    if o.kind == "first_above":
        above = ys > o.threshold
        return np.where(above.any(axis=1), ts[np.argmax(above, axis=1)], ts[-1])
    if o.kind == "time_of_max":
        return ts[np.argmax(ys, axis=1)]
    if o.kind == "time_of_min":
        return ts[np.argmin(ys, axis=1)]
    if o.kind == "mean":
        return np.trapezoid(ys, ts, axis=1) / (ts[-1] - ts[0])
    if o.kind in ("loss", "multiplier"):
        if y_cf is None:
            raise SpecError(f"outcome {o.name!r} ({o.kind}) needs the counterfactual paths y_cf")
        gap = np.trapezoid(100.0 * (y_cf[:, sel] - ys) / y_cf[:, sel], ts, axis=1)
        if o.kind == "loss":
            return gap
        if per is None:
            raise SpecError(f"outcome {o.name!r} (multiplier) needs the paths of {o.per!r} (per)")
        size = np.trapezoid(per[:, sel], ts, axis=1)
        return np.where(np.abs(size) > 1e-12, gap / np.where(size == 0, 1.0, size), np.nan)
    if o.kind == "years_below":
        years = np.floor(ts[:-1] + 1e-9)  # each step's interval [t, t+dt) belongs to the year it starts in
        mid = 0.5 * (ys[:, :-1] + ys[:, 1:])
        count = np.zeros(len(y))
        for yr in np.unique(years):
            m = years == yr
            if m.sum() * (ts[1] - ts[0]) < 1 - 1e-9:  # partial years at the window's edges do not count
                continue
            count += mid[:, m].mean(axis=1) < o.threshold
        return count
    if o.kind == "last_below":
        below = ys < o.threshold
        last = np.where(below.any(axis=1), len(ts) - 1 - np.argmax(below[:, ::-1], axis=1), -1)
        return np.where(last < 0, ts[0], ts[np.minimum(last + 1, len(ts) - 1)])
    raise SpecError(f"outcome {o.name}: unknown kind {o.kind!r}")


#: Compiled study models of this process, by (model, scenario, spec hash): bounded, so a long session
#: of many studies does not keep every model it ever ran (the compile cache below it is bounded too).
_COMPILED = MemoryCache(8)


def compiled_model(model: str, scenario: str | None, spec_hash: str):
    """The compiled model, once per process (a Dask worker compiles it on its first chunk)."""
    key = repr((model, scenario, spec_hash))
    cm = _COMPILED.get(key)
    if cm is None:
        from sdmodel.engine.compiler import compile_model
        from sdmodel.model.spec import load_model

        m = load_model(model, scenario)
        if spec_hash and m.spec_hash != spec_hash:
            raise SpecError(
                f"model {model} (scenario {scenario}) has changed since the study was set up "
                f"(spec hash {m.spec_hash[:12]}, expected {spec_hash[:12]}); a Dask worker must see the "
                f"same model files as the client"
            )
        cm = compile_model(m)
        _COMPILED.put(key, cm)
    return cm


@dataclass(frozen=True)
class ModelEvaluator:
    """Evaluate rows of factor values on a model: outcomes, yearly paths, success and residuals.

    Picklable (names and numbers only), so that Dask workers can run it; each
    process compiles the model once.  ``names`` are the columns of the rows;
    dummy factors (not parameters) are dropped before simulating.  ``fixed``
    sets other parameters for every run.
    """

    model: str
    scenario: str | None
    spec_hash: str
    names: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    counterfactual: tuple[tuple[str, float], ...] = ()
    time_varying: tuple[str, ...] = ()
    tv_years: tuple[float, ...] = ()
    method: str | None = None
    dt: float | None = None
    fixed: tuple[tuple[str, float], ...] = ()
    dummies: tuple[str, ...] = ()

    @classmethod
    def for_study(
        cls,
        cfg: StudyConfig,
        names: Sequence[str],
        *,
        fixed: Mapping[str, float] | None = None,
        dt: float | None = None,
        outcomes: Sequence[Outcome] | None = None,
        time_varying: bool = True,
    ) -> ModelEvaluator:
        dummies = tuple(f.name for f in cfg.factors if f.dummy and f.name in names)
        return cls(
            cfg.model,
            cfg.scenario,
            cfg.spec_hash,
            tuple(names),
            tuple(outcomes or cfg.outcomes),
            tuple(sorted(cfg.counterfactual.items())),
            cfg.time_varying if time_varying else (),
            cfg.tv_years if time_varying else (),
            cfg.method,
            dt or cfg.dt,
            tuple(sorted((fixed or {}).items())),
            dummies,
        )

    def _params(self, X: np.ndarray, extra: Mapping[str, float] | None = None) -> tuple[np.ndarray, list[str]]:
        keep = [j for j, n in enumerate(self.names) if n not in self.dummies]
        cols = [self.names[j] for j in keep]
        M = X[:, keep]
        for n, v in list(self.fixed) + list(dict(extra or {}).items()):
            if n in cols:
                M[:, cols.index(n)] = v
            else:
                cols.append(n)
                M = np.column_stack([M, np.full(len(M), v)])
        return M, cols

    def _needs(self) -> list[str]:
        """The outputs a run records: the outcomes' variables and the tracked paths."""
        return sorted(
            {o.variable for o in self.outcomes} | {o.per for o in self.outcomes if o.per} | set(self.time_varying)
        )

    @property
    def threaded(self) -> bool:
        """Whether a chunk runs on the fused kernel (:mod:`sdmodel.engine.kernel`), which spreads its runs over
        every core itself: then chunks run one after another in one process, not in several."""
        from sdmodel.engine.kernel import resolve

        return resolve(None, self.method or "euler") == "numba"  # a study's methods: euler, rk4, discrete

    def bytes_per_run(self) -> int:
        """The memory one run takes while its chunk is evaluated (an upper bound: measured 78 KiB of
        the 95 KiB this says for ``studies/japan.yaml``): its recorded paths (every step of each needed
        output, and the monitor's worst residual and row), its counterfactual run's, and the outcome
        computation's temporaries. What is kept of a run afterwards is its outcomes."""
        from sdmodel.engine.simulation import grid_points

        cm = compiled_model(self.model, self.scenario, self.spec_hash)
        steps = grid_points(cm, None, self.method, self.dt)
        runs = 2 if any(o.kind in ("loss", "multiplier") for o in self.outcomes) else 1
        working = 4 * (len(cm.unknown_names) + len(cm.state_names))  # the engine's step arrays (numpy path)
        return int(8 * (steps * (runs * (len(self._needs()) + 1.5) + 4) + runs * working))

    def __call__(self, X: np.ndarray) -> dict[str, np.ndarray]:
        from sdmodel.core.options import SaveAt, Solver
        from sdmodel.engine.simulation import simulate_batch

        X = np.atleast_2d(np.asarray(X, dtype=float))
        cm = compiled_model(self.model, self.scenario, self.spec_hash)
        need = self._needs()
        M, cols = self._params(X.copy())
        solver, saveat = Solver(method=self.method, dt=self.dt), SaveAt(outputs=need)
        run = simulate_batch(cm, M, cols, solver=solver, saveat=saveat, throw=False)
        t = run.t
        ok = run.success.copy()
        resid = np.abs(run.residuals).max(axis=1) if run.residuals.size else np.zeros(len(M))
        cf_paths = None
        if any(o.kind in ("loss", "multiplier") for o in self.outcomes):
            C, ccols = self._params(X.copy(), dict(self.counterfactual))
            U, inv = np.unique(C, axis=0, return_inverse=True)  # e.g. consolidation factors vary, the rest repeats
            cf = simulate_batch(cm, U, ccols, solver=solver, saveat=saveat, throw=False)
            cf_paths = {
                v: cf[v][inv.ravel()] for v in {o.variable for o in self.outcomes if o.kind in ("loss", "multiplier")}
            }
            ok &= cf.success[inv.ravel()]
        Y = np.column_stack(
            [
                outcome_values(
                    o,
                    t,
                    run[o.variable],
                    None if cf_paths is None else cf_paths.get(o.variable),
                    run[o.per] if o.per else None,
                )
                for o in self.outcomes
            ]
        )
        out = {"Y": Y, "success": ok, "residual": resid}
        if self.time_varying:
            out["paths"] = np.stack([interp_rows(self.tv_years, t, run[v]) for v in self.time_varying], axis=1)
        return out


@dataclass(frozen=True)
class FunctionEvaluator:
    """Evaluate rows with a plain function ``f(X) -> Y`` (one outcome), e.g. SALib's Ishigami test function."""

    func: Callable[[np.ndarray], np.ndarray]

    def __call__(self, X: np.ndarray) -> dict[str, np.ndarray]:
        Y = np.asarray(self.func(np.asarray(X, dtype=float)), dtype=float)
        Y = Y.reshape(len(X), -1)
        return {"Y": Y, "success": np.isfinite(Y).all(axis=1), "residual": np.zeros(len(X))}


# ------------------------------------------------------------------------------------ chunked evaluation


@dataclass
class ChunkStats:
    chunks: int = 0
    computed: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)
    scheduler: str = "in-process"
    #: chunk size used (runs)
    chunk_size: int = 0
    #: seconds spent evaluating and loading the chunks
    wall_s: float = 0.0


#: How long to wait for a Dask scheduler before saying it cannot be reached.
SCHEDULER_TIMEOUT = "10s"


def _client(scheduler: str | None, workers: int | None):
    """A Dask client: to ``scheduler`` (an address) or a new local cluster of ``workers`` processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:  # pragma: no cover - the dask extra
        raise SpecError("running on Dask needs the 'dask' extra: pip install 'sdmodel[dask]'") from e
    if scheduler:
        try:
            return Client(scheduler, timeout=SCHEDULER_TIMEOUT), None
        except (OSError, TimeoutError, ValueError) as err:
            raise SpecError(
                f"--scheduler {scheduler!r}: no Dask scheduler answered within {SCHEDULER_TIMEOUT} "
                f"({type(err).__name__}); start one (dask scheduler) or run without --scheduler"
            ) from None
    assert workers  # the caller asks for a local cluster only with workers
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def chunk_rows(evaluator, requested: int | None = None, budget: int = CHUNK_MEMORY) -> int:
    """Runs per chunk: ``requested`` (default :data:`DEFAULT_CHUNK`), fewer if that many runs would
    take more than ``budget`` bytes while evaluated (an evaluator that says what a run takes,
    :meth:`ModelEvaluator.bytes_per_run`; others are taken at their word).

    >>> chunk_rows(FunctionEvaluator(np.sin), 5000), chunk_rows(object(), 100, budget=1)
    (5000, 100)
    """
    rows = int(requested or DEFAULT_CHUNK)
    per_run = getattr(evaluator, "bytes_per_run", None)
    if callable(per_run):
        rows = min(rows, max(1, int(budget) // max(1, int(per_run()))))
    return rows


@dataclass
class Outcomes:
    """Every run's arrays, gathered chunk by chunk: ``arrays`` in memory (the outcomes, success,
    residual: a few numbers per run) and ``columns`` on disk (:class:`~sdmodel.core.store.ColumnFile`,
    read a column at a time), each with the runs as its first dimension. Close it (or use ``with``)
    to delete the files."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    columns: dict[str, ColumnFile] = field(default_factory=dict)

    def put(self, lo: int, n: int, part: Mapping[str, np.ndarray], folder: Path, on_disk: Sequence[str]) -> None:
        """Put one chunk's arrays (rows ``lo:lo + len``) of a sample of ``n`` rows in place."""
        for k, v in part.items():
            v = np.asarray(v)
            if k in on_disk:
                if k not in self.columns:
                    self.columns[k] = ColumnFile(folder, n, v.shape[1:])
                self.columns[k].put(lo, v)
            else:
                if k not in self.arrays:
                    self.arrays[k] = np.empty((n, *v.shape[1:]), dtype=v.dtype)
                self.arrays[k][lo : lo + len(v)] = v

    def close(self) -> None:
        for c in self.columns.values():
            c.close()

    def __enter__(self) -> Outcomes:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def evaluate_chunks(
    evaluator: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    X: np.ndarray,
    store: str | Path,
    key: str,
    *,
    execution: Execution = Execution(),
    desc: str = "evaluating",
) -> tuple[dict[str, np.ndarray], ChunkStats]:
    """Evaluate ``X`` in chunks (:func:`collect_chunks`) and return every array in memory, with which
    chunks were computed or reused."""
    out, stats = collect_chunks(evaluator, X, store, key, execution=execution, desc=desc)
    return out.arrays, stats


def collect_chunks(
    evaluator: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    X: np.ndarray,
    store: str | Path,
    key: str,
    *,
    execution: Execution = Execution(),
    desc: str = "evaluating",
    on_disk: Sequence[str] = (),
) -> tuple[Outcomes, ChunkStats]:
    """Evaluate ``X`` in chunks of ``execution.chunk_size`` rows (default 2048, fewer where that many
    runs would not fit :data:`CHUNK_MEMORY`: :func:`chunk_rows`), saving each under ``store/chunks``.

    Chunks already saved with the same ``key`` are loaded, not recomputed; the
    others run on Dask when ``execution.scheduler`` (an address) or
    ``execution.workers`` (a local cluster of that many processes) is given,
    else on ``execution.jobs`` local processes (1: this process; always this
    process when the evaluator runs on the fused kernel, which uses every core
    itself: :attr:`ModelEvaluator.threaded`).  Results are the same either way:
    each chunk is one deterministic batch.

    Each chunk's arrays are put in place the moment it finishes (or loads) and the chunk is
    dropped: memory holds the arrays of every run (a few numbers each), one chunk in the making per
    process, and for the arrays named in ``on_disk`` (e.g. ``"paths"``, a value per run for every
    tracked path and year) not even that: they go to a :class:`~sdmodel.core.store.ColumnFile` in
    ``store``. Returns them (:class:`Outcomes`: close it to delete the files) and which chunks were
    computed or reused.
    """
    started = time.perf_counter()
    chunk_size = chunk_rows(evaluator, execution.chunk_size)
    scheduler, workers, jobs, progress = execution.scheduler, execution.workers, execution.jobs, execution.progress
    if getattr(evaluator, "threaded", False):
        jobs = 1
    X = np.atleast_2d(np.asarray(X, dtype=float))
    chunks = ChunkStore(Path(store), key).open()
    bounds = [(lo, min(lo + chunk_size, len(X))) for lo in range(0, len(X), chunk_size)]
    stats = ChunkStats(chunks=len(bounds), chunk_size=chunk_size)
    out = Outcomes()
    have: set[int] = set()

    def put(i, arrays):
        out.put(bounds[i][0], len(X), arrays, Path(store), on_disk)
        have.add(i)

    got = None
    try:
        for i, (lo, hi) in enumerate(bounds):
            got = chunks.load(i, (lo, hi))
            if got is not None:
                put(i, got)
                stats.reused.append(i)
        del got
        todo = [i for i in range(len(bounds)) if i not in have]
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(bounds), initial=len(have), desc=desc, unit="chunk")

        def done(i, arrays):
            chunks.save(i, bounds[i], arrays)
            put(i, arrays)
            stats.computed.append(i)
            if bar is not None:
                bar.update(1)

        try:
            if todo and (scheduler or workers):
                from distributed import as_completed

                client, cluster = _client(scheduler, workers)
                stats.scheduler = scheduler or f"local cluster, {workers} workers"
                try:
                    ev = client.scatter(evaluator, broadcast=True)
                    futs = {client.submit(_run_chunk, ev, X[bounds[i][0] : bounds[i][1]], pure=False): i for i in todo}
                    for fut in as_completed(futs):
                        done(futs.pop(fut), fut.result())
                finally:
                    client.close()
                    if cluster is not None:
                        cluster.close()
            else:
                n = min(len(todo), jobs)
                if n > 1:
                    import concurrent.futures as cf
                    import multiprocessing

                    stats.scheduler = f"{n} local processes"
                    with cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
                        pending = {pool.submit(_run_chunk, evaluator, X[bounds[i][0] : bounds[i][1]]): i for i in todo}
                        for fut in cf.as_completed(pending):
                            done(pending.pop(fut), fut.result())  # dropped here: no finished chunk is kept
                else:
                    for i in todo:
                        done(i, evaluator(X[bounds[i][0] : bounds[i][1]]))
        finally:
            if bar is not None:
                bar.close()
    except BaseException:
        out.close()
        raise
    stats.wall_s = time.perf_counter() - started
    return out, stats


def _run_chunk(evaluator, X):
    return evaluator(X)


def check_failures(arrays: Mapping[str, np.ndarray], X: np.ndarray, names: Sequence[str], what: str) -> None:
    """Refuse to analyse a sample with failed runs: name how many and the first parameter sets."""
    ok = arrays["success"].astype(bool) & np.isfinite(arrays["Y"]).all(axis=1)
    if ok.all():
        return
    bad = np.flatnonzero(~ok)
    rows = "; ".join(", ".join(f"{n}={X[i, j]:.6g}" for j, n in enumerate(names)) for i in bad[:3])
    raise SimulationError(
        f"{what}: {len(bad)} of {len(ok)} runs failed or gave non-finite outcomes (first: {rows}); "
        f"narrow the factor ranges. The evaluated chunks are saved, only the analysis stopped."
    )
