"""Run directories of a calibration and of the studies: frozen results in, one atomic directory out.

The numeric modules return frozen results and write nothing (a study writes
only its chunk store, :mod:`sdmodel.store`): :func:`sdmodel.calibrate`,
:func:`sdmodel.sensitivity.compute_sensitivity`,
:func:`sdmodel.sequencing.compute_sequence`.  This module writes them:

* :func:`write_calibration`: ``params.yaml``, ``report.json``, ``report.txt``,
  ``fit.csv``, ``fit.parquet``, ``fit.png`` and ``manifest.json``;
  :func:`install_parameters` writes the estimates into the scenario's parameter
  file.
* :func:`write_sensitivity`: ``indices.csv``/``.parquet`` (per outcome),
  ``indices_time.csv``/``.parquet`` (per tracked path and year),
  ``samples.parquet``, ``indices.png``, ``indices_time.png``, ``summary.txt``
  and ``manifest.json``.
* :func:`write_sequence`: per design ``<design>.csv``, ``<design>.parquet`` and
  ``<design>.png`` (its heat maps), then ``summary.txt`` and ``manifest.json``.

Every file is rendered first, then the directory is written by
:func:`sdmodel.io.write_atomic_dir`: built in a hidden sibling, its typed
manifest (:mod:`sdmodel.manifest`) included, and moved into place by one
rename, so a reader sees the earlier complete directory or the new one, never a
mix.  A study's directory is also its chunk store: the new directory keeps the
saved chunks and whatever else the folder holds.  :func:`run_sensitivity` and
:func:`run_sequence` compute (or resume) a study and write its directory, as
``sdmodel sensitivity`` and ``sdmodel sequence`` do.  The figures are drawn by
:mod:`sdmodel.plots`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from .calibration import CalibrationConfig, CalibrationResult, load_config
from .errors import SdmodelError, SpecError
from .estimation import EstimationResult, ValidationResult, estimate, load_posterior, validate
from .io import (
    STUDY_MARKER,
    check_out_folder,
    created,
    hold_out_dir,
    parquet_bytes,
    versions,
    write_atomic_dir,
    write_atomic_file,
)
from .manifest import (
    FILE,
    CalibrationManifest,
    EstimationManifest,
    SensitivityManifest,
    SequenceManifest,
    ValidationManifest,
)
from .options import Execution
from .sensitivity import Design, SensitivityResult, compute_sensitivity, study_problem
from .sequencing import SequenceResult, compute_sequence, load_designs
from .spec import read_parameter_file, read_yaml_file, scenario_path
from .study import StudyConfig, load_study


def _command(command: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(command if command is not None else sys.argv)


def _write_files(out: str | Path, files: Mapping[str, bytes], kind: str, overwrite: bool = False) -> Path:
    """``files`` (name -> bytes, ``manifest.json`` among them) as the ``kind`` directory ``out``, atomically."""

    def fill(tmp: Path) -> None:
        for name, data in files.items():
            (tmp / name).write_bytes(data)

    return write_atomic_dir(out, fill, kind=kind, overwrite=overwrite)


def _csv(frame: pd.DataFrame, float_format: str) -> bytes:
    return frame.to_csv(index=False, float_format=float_format).encode()


# ----------------------------------------------------------------------------- calibration


def parameter_file_text(
    result: CalibrationResult, command: list[str] | None = None, keep: dict[str, float] | None = None
) -> str:
    """The parameter file a scenario reads (``parameter_file:``), with its provenance.

    ``keep``: values already in the file; those the calibration did not estimate stay as they are.
    """
    import yaml

    prov = dict(
        config=Path(result.config.source).name,
        config_hash=result.config.hash[:16],
        data=result.config.data.name,
        data_hash=result.data_hash[:16],
        window=[float(w) for w in result.window],
        seed=result.seed,
        loss=round(result.cost, 6),
        command=" ".join(command) if command else None,
    )
    body = yaml.safe_dump({"provenance": prov}, sort_keys=False, width=110)
    lines = [
        f"# Written by sdmodel calibrate ({result.model_name}, scenario {result.config.scenario}); "
        f"the fit report of the calibration run says how well these values fit.",
        body.rstrip(),
        "parameters:",
    ]
    values = {**(keep or {}), **result.params}
    lines += [
        f"  {n}: {float(f'{v:.6g}')!r}" + ("" if n in result.params else "   # not estimated")
        for n, v in values.items()
    ]
    return "\n".join(lines) + "\n"


def install_parameters(result: CalibrationResult, command: list[str] | None = None) -> Path:
    """Write the estimates into the scenario's parameter file (its ``parameter_file:``), atomically."""
    return _install(
        result.config, result.model_name, result.params, lambda keep: parameter_file_text(result, command, keep=keep)
    )


def _install(config, model_name: str, params: Mapping[str, float], render) -> Path:
    """Write ``render(values already in the file)`` as the scenario's parameter file, refusing a name the scenario
    sets itself."""
    spath = scenario_path(config.model, config.scenario) if config.scenario else None
    scen = read_yaml_file(spath, "scenario file")[1] if spath else {}
    rel = scen.get("parameter_file")
    if not rel or spath is None:  # (no scenario file: no parameter_file either)
        raise SdmodelError(
            f"scenario {config.scenario!r} of {model_name!r} names no "
            f"parameter_file: to install into; add `parameter_file: NAME.params.yaml` to it"
        )
    inline = scen.get("parameters") or {}
    both = sorted(set(params) & set(inline))
    if both:
        raise SdmodelError(
            f"{spath}: the scenario sets {', '.join(both)} itself; move them to its parameter file "
            f"{rel} before installing estimates there (a name may be set in one place only)"
        )
    target = spath.parent / rel
    keep = read_parameter_file(target)[1] if target.is_file() else {}
    return write_atomic_file(target, render(keep).encode("utf-8"))


def fit_figure(result: CalibrationResult):
    """The calibrated model against the data (a ``matplotlib.figure.Figure`` drawn by
    :func:`sdmodel.plots.fit_figure`): one panel per target, the fit window shaded."""
    from .plots import fit_figure as draw

    c = result.config
    return draw(
        result.paths,
        result.window,
        {t.name: float(result.fit.loc[t.name, "rmse"]) for t in c.targets},
        log={t.name for t in c.targets if t.log},
        not_fitted={t.name for t in c.targets if not t.fitted},
        title=f"{result.model_name}" + (f" / {c.scenario}" if c.scenario else "") + ": calibrated model against data",
    )


def calibration_manifest(result: CalibrationResult, command: list[str] | None = None) -> CalibrationManifest:
    """The manifest of a calibration directory: what was fitted, to which data, how; versions and command."""
    return CalibrationManifest(
        model=result.config.model,
        scenario=result.config.scenario,
        config=result.config.source,
        config_hash=result.config.hash,
        data_hash=result.data_hash,
        spec_hash=result.spec_hash,
        parameters=dict(result.params),
        window=tuple(result.window),
        seed=result.seed,
        solver=dict(dt=result.search.get("dt")),
        search=dict(result.search),
        versions=versions(),
        command=_command(command),
        created=created(),
    )


def write_calibration(
    out_dir, result: CalibrationResult, *, command: list[str] | None = None, overwrite: bool = False
) -> Path:
    """A calibration run directory, written atomically: params.yaml, report.json, report.txt, fit.csv,
    fit.parquet, fit.png and manifest.json.

    ``out_dir`` may be new, empty or an earlier calibration directory (one
    holding other files too only with ``overwrite``); anything else raises
    :class:`~sdmodel.errors.OutputError` and is left as it was (see
    :func:`sdmodel.io.write_atomic_dir`).
    """
    from .plots import png_bytes

    files = {
        "params.yaml": parameter_file_text(result, command).encode(),
        "report.json": (json.dumps(result.to_dict(), indent=2, default=float) + "\n").encode(),
        "report.txt": (result.summary() + "\n").encode(),
        "fit.csv": _csv(result.paths, "%.10g"),
        "fit.parquet": parquet_bytes(result.paths),
        "fit.png": png_bytes(fit_figure(result)),
        FILE: calibration_manifest(result, command).to_json().encode(),
    }
    return _write_files(out_dir, files, "calibration", overwrite)


# ----------------------------------------------------------------------------- sensitivity


def index_figure(res: SensitivityResult):
    """One panel per outcome: S1 and ST with confidence intervals (Sobol), or mu* and sigma (Morris);
    a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.plots.index_figure`."""
    from .plots import index_figure as draw

    return draw(
        res.indices,
        res.factor_names,
        res.outcome_names,
        res.method,
        f"{res.method.capitalize()} sensitivity, {res.name}: N={res.N}, {len(res.X)} runs",
    )


def time_figure(res: SensitivityResult):
    """One panel per tracked path: the main index of every factor, year by year, with its CI band;
    a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.plots.time_figure`."""
    from .plots import time_figure as draw

    tv = res.time_indices
    if tv is None:
        raise SpecError(f"study {res.name} tracked no paths (time_varying:), so there is no time figure")
    return draw(
        tv,
        res.factor_names,
        res.main_index,
        f"Time-varying sensitivity of the paths of {', '.join(map(str, tv['variable'].unique()))}, "
        f"{res.name} ({res.method}, N={res.N})",
    )


def sensitivity_manifest(res: SensitivityResult, command: list[str] | None = None) -> SensitivityManifest:
    """The manifest of a sensitivity directory: the design, the study (file, hashes, key, solver, factors,
    outcomes), the chunks computed and reused; versions and command."""
    recorded = {"study": res.name, "outcomes": {o: "" for o in res.outcome_names}, **res.settings, **res.study}
    known = {f.name for f in fields(SensitivityManifest)}
    return SensitivityManifest(
        method=res.method,
        N=int(res.N),
        seed=res.seed,
        runs=int(len(res.X)),
        problem=dict(res.problem),
        chunks={
            "total": res.stats.chunks,
            "computed": sorted(res.stats.computed),
            "reused": sorted(res.stats.reused),
            "scheduler": res.stats.scheduler,
        },
        wall_s=round(res.wall_s, 2),
        max_relative_residual=float(res.max_residual),
        versions=versions(),
        command=_command(command),
        created=created(),
        **{k: v for k, v in recorded.items() if k in known},
        extra={k: v for k, v in recorded.items() if k not in known},
    )


def write_sensitivity(
    res: SensitivityResult, out: str | Path | None = None, *, command: list[str] | None = None
) -> Path:
    """Write the indices, the sample, the figures, the summary and the manifest as one directory, atomically.

    ``out`` defaults to the study folder the result was computed in (``res.store``); the new
    directory keeps its chunks and every other file it does not write itself (see
    :func:`sdmodel.io.write_atomic_dir`).

    Raises
    ------
    OutputError
        If ``out`` is a folder that is neither a study folder nor an earlier sensitivity directory.
    """
    from .plots import png_bytes

    out = out if out is not None else res.store
    if out is None:
        raise SpecError("this SensitivityResult has no study folder (store is None): give out=")
    samples = pd.DataFrame(res.X, columns=res.problem["names"])
    for j, o in enumerate(res.outcome_names):
        samples[o] = res.Y[:, j]
    files = {"indices.csv": _csv(res.indices, "%.6g"), "indices.parquet": parquet_bytes(res.indices)}
    if res.time_indices is not None:
        files["indices_time.csv"] = _csv(res.time_indices, "%.6g")
        files["indices_time.parquet"] = parquet_bytes(res.time_indices)
    files["samples.parquet"] = parquet_bytes(samples)
    files["indices.png"] = png_bytes(index_figure(res))
    if res.time_indices is not None:
        files["indices_time.png"] = png_bytes(time_figure(res))
    files["summary.txt"] = (res.summary() + "\n").encode()
    files[FILE] = sensitivity_manifest(res, command).to_json().encode()
    return _write_files(out, files, "sensitivity")


def sensitivity_dir(cfg: StudyConfig, design: Design, dt: float | None = None) -> Path:
    """Where ``sdmodel sensitivity`` writes by default: ``runs/sensitivity-<study>-<method>-N<N>-seed<seed>``."""
    return (
        Path("runs") / f"sensitivity-{cfg.name}-{design.method}-N{design.N}-seed{design.seed}"
        f"{'-groups' if design.groups else ''}{'' if dt is None else f'-dt{dt:g}'}"
    )


def run_sensitivity(
    study: StudyConfig | str | Path,
    design: Design = Design(),
    *,
    out: str | Path | None = None,
    execution: Execution = Execution(),
    dt: float | None = None,
    command: list[str] | None = None,
    posterior: str | Path | None = None,
    draws: int = 10,
) -> SensitivityResult:
    """Run (or resume) a sensitivity study and write its directory.

    ``design`` says what SALib samples (method, N, seed, ...), ``execution`` where the runs are
    computed (local processes, a Dask cluster or scheduler) and in which chunks; ``dt`` replaces
    the study's step. The study directory (``out``, default :func:`sensitivity_dir`) keeps every
    evaluated chunk; re-running the same command after an interruption computes only the missing
    chunks, and re-running a finished study computes none.  The results are written by
    :func:`write_sensitivity`; the folder is held (a lock) from the first chunk to the last file,
    so a second command with the same ``out`` fails at once.  With ``posterior`` (an estimation
    directory) the design runs at ``draws`` posterior draws and the indices carry posterior bands.
    """
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    study_problem(cfg, design)  # the study's own errors before the folder's
    sample = load_posterior(posterior, draws) if posterior is not None else None
    default = sensitivity_dir(cfg, design, dt)
    if sample is not None:
        default = default.with_name(default.name + f"-posterior{draws}")
    folder = check_out_folder(out or default, marker=STUDY_MARKER)
    with hold_out_dir(folder):
        res = compute_sensitivity(cfg, design, store=folder, execution=execution, dt=dt, posterior=sample)
        write_sensitivity(res, folder, command=command)
    return res


# ----------------------------------------------------------------------------- sequencing


def heatmap_figure(res: SequenceResult, design: str):
    """The heat maps of one design: its best-criterion outcome and one more, a row per family
    (a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.plots.heatmap_figure`)."""
    from .plots import heatmap_figure as draw

    d, best = res.designs[design], res.best.get(design)
    # a non-empty best names its criterion (load_designs checks it)
    crit = (d.best.get("minimise") or d.best["maximise"]) if d.best else res.outcome_names[0]
    other = [o for o in res.outcome_names if o != crit]
    title = f"{res.name}, sequencing design {design}"
    if best:
        title += f"\nbest ({best['criterion']}): {best['label']}"
    return draw(res.tables[design], d.axes, [crit] + other[:1], title)


def sequence_files(res: SequenceResult) -> list[str]:
    """The files :func:`write_sequence` writes, in order."""
    return [f"{d}{ext}" for d in res.tables for ext in (".csv", ".parquet", ".png")] + ["summary.txt", FILE]


def sequence_manifest(res: SequenceResult, command: list[str] | None = None) -> SequenceManifest:
    """The manifest of a sequencing directory: the study, each design's rules, best rule, finding and
    chunks; versions and command."""
    st = res.study
    return SequenceManifest(
        study=st.get("study", res.name),
        study_hash=st.get("study_hash", ""),
        spec_hash=st.get("spec_hash", ""),
        key=st.get("key", ""),
        designs={
            name: {
                "doc": res.designs[name].doc if name in res.designs else "",
                "rules": len(tab),
                "best": res.best.get(name),
                "finding": res.findings.get(name),
                "chunks": {"computed": sorted(res.stats[name].computed), "reused": sorted(res.stats[name].reused)},
            }
            for name, tab in res.tables.items()
        },
        solver=dict(st.get("solver") or {}),
        outcomes=dict(st.get("outcomes") or {}),
        wall_s=round(res.wall_s, 2),
        versions=versions(),
        command=_command(command),
        created=created(),
        extra={} if res.posterior is None else {"posterior": {"source": res.posterior, "draws": res.draws}},
    )


def write_sequence(res: SequenceResult, out: str | Path | None = None, *, command: list[str] | None = None) -> Path:
    """Write each design's table (CSV, Parquet) and heat maps, the summary and the manifest as one
    directory, atomically.

    ``out`` defaults to the study folder the result was computed in (``res.store``); the new
    directory keeps its chunks and every other file it does not write itself (see
    :func:`sdmodel.io.write_atomic_dir`).
    """
    from .plots import png_bytes

    files = {}
    for name, tab in res.tables.items():
        files[f"{name}.csv"] = _csv(tab, "%.6g")
        files[f"{name}.parquet"] = parquet_bytes(tab)
        files[f"{name}.png"] = png_bytes(heatmap_figure(res, name))
    files["summary.txt"] = (res.summary() + "\n").encode()
    files[FILE] = sequence_manifest(res, command).to_json().encode()
    return _write_files(res.store if out is None else out, files, "sequence")


def run_sequence(
    study: StudyConfig | str | Path,
    *,
    designs: Sequence[str] | None = None,
    out: str | Path | None = None,
    execution: Execution = Execution(),
    command: list[str] | None = None,
    posterior: str | Path | None = None,
    draws: int = 100,
) -> SequenceResult:
    """Run (or resume) the study's sequencing designs and write tables, heat maps and a summary.

    Each design's rules are evaluated in saved chunks (as a sensitivity study's are), so an
    interrupted run resumes.  The directory (``out``, default ``runs/sequence-<study>``) is written
    by :func:`write_sequence` once every design is done; it is held (a lock) meanwhile.  With
    ``posterior`` (an estimation directory) every rule runs at ``draws`` posterior draws of the
    model's parameters (default folder ``runs/sequence-<study>-posterior<draws>``).
    """
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    load_designs(cfg, designs)  # the designs' errors before the folder's
    sample = load_posterior(posterior, draws) if posterior is not None else None
    default = Path("runs") / (f"sequence-{cfg.name}" + ("" if sample is None else f"-posterior{draws}"))
    folder = check_out_folder(out or default, marker=STUDY_MARKER)
    with hold_out_dir(folder):
        res = compute_sequence(cfg, designs=designs, store=folder, execution=execution, posterior=sample)
        write_sequence(res, folder, command=command)
    return res


__all__ = [
    "calibration_manifest",
    "fit_figure",
    "heatmap_figure",
    "index_figure",
    "install_parameters",
    "parameter_file_text",
    "run_sensitivity",
    "run_sequence",
    "sensitivity_dir",
    "sensitivity_manifest",
    "sequence_files",
    "sequence_manifest",
    "time_figure",
    "write_calibration",
    "write_sensitivity",
    "write_sequence",
]


# ----------------------------------------------------------------------------- estimation
#: what an estimation directory holds besides its chunk store (``modes.json``, ``chain.h5``)
ESTIMATION_FILES = (
    "posterior.nc",
    "summary.csv",
    "modes.csv",
    "predictive.csv",
    "fit.csv",
    "facts.csv",
    "params.yaml",
    "report.txt",
    "report.json",
    "bands.png",
    "prior_posterior.png",
    "pairs.png",
    "rank.png",
)


def estimation_dir(cfg, seed: int) -> Path:
    """Where ``sdmodel estimate`` writes by default: ``runs/estimate-<config>-seed<seed>``."""
    return Path("runs") / f"estimate-{Path(cfg.source).stem}-seed{seed}"


def estimate_parameter_text(
    result: EstimationResult, run_dir: str | Path | None, command: list[str] | None = None, keep=None
) -> str:
    """The scenario's parameter file from an estimation: the posterior medians of the model parameters, with
    the provenance (config, data, seed, convergence, the posterior's directory, the command)."""
    import yaml

    cfg = result.config
    prov = dict(
        kind="posterior medians",
        config=Path(cfg.source).name,
        config_hash=cfg.hash[:16],
        data=cfg.data.name,
        data_hash=result.data_hash[:16],
        window=[float(w) for w in result.window],
        seed=int(result.settings["seed"]),
        converged=result.converged,
        posterior=None if run_dir is None else str(Path(run_dir) / "posterior.nc"),
        command=" ".join(command) if command else None,
    )
    medians = {n: v for n, v in result.medians.items() if n in cfg.names}
    body = yaml.safe_dump({"provenance": prov}, sort_keys=False, width=110)
    lines = [
        f"# Written by sdmodel estimate ({result.model_name}, scenario {cfg.scenario}): posterior medians; the "
        "estimation's report.txt gives their posterior bands, diagnostics and fit.",
        body.rstrip(),
        "parameters:",
    ]
    values = {**(keep or {}), **medians}
    lines += [
        f"  {n}: {float(f'{v:.6g}')!r}" + ("" if n in medians else "   # not estimated") for n, v in values.items()
    ]
    return "\n".join(lines) + "\n"


def install_estimate(
    result: EstimationResult, run_dir: str | Path | None, command: list[str] | None = None, *, force: bool = False
) -> Path:
    """Write the posterior medians into the scenario's parameter file, with a pointer to the posterior.

    Refused (:class:`~sdmodel.errors.SdmodelError`) when the chain has not converged (R-hat, bulk ESS and
    chain length against its autocorrelation time: :attr:`EstimationResult.converged`), unless ``force``.
    """
    if not result.converged and not force:
        raise SdmodelError(
            "not installed: the posterior has not converged (see report.txt: R-hat <= 1.01, bulk ESS >= 400 and "
            "steps >= 50 autocorrelation times for every quantity); run longer (--steps), or install anyway with "
            "--force (the provenance then says converged: false)"
        )
    medians = {n: v for n, v in result.medians.items() if n in result.config.names}
    return _install(
        result.config, result.model_name, medians, lambda keep: estimate_parameter_text(result, run_dir, command, keep)
    )


def estimation_figures(result: EstimationResult) -> dict[str, Any]:
    """The figures of an estimation (``matplotlib.figure.Figure`` by file name): predictive bands, prior vs
    posterior, the most correlated pairs, rank plots."""
    import numpy as np

    from .plots import band_figure, pairs_figure, prior_posterior_figure, rank_figure

    c = result.config
    title = f"{result.model_name}" + (f" / {c.scenario}" if c.scenario else "")
    post = result.idata.posterior
    names = list(result.names)
    draws = {n: post[n].values.ravel() for n in names}
    prior = {n: result.idata.prior[n].values.ravel() for n in names}
    X = np.column_stack([draws[n] for n in names])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(X, rowvar=False)
    pairs = sorted(
        (
            (abs(corr[i, j]), names[i], names[j])
            for i in range(len(names))
            for j in range(i + 1, len(names))
            if np.isfinite(corr[i, j])
        ),
        reverse=True,
    )[:6]
    figs = {}
    if result.output_bands is not None:
        ob = result.output_bands.rename(columns={"output": "target", "time": "year"}).assign(data=np.nan, fitted=True)
        figs["output_bands.png"] = band_figure(
            ob, result.window, f"{title}: posterior bands of model outputs", band="90% posterior band"
        )
    return figs | {
        "bands.png": band_figure(
            result.predictive, result.window, f"{title}: posterior predictive", log={t.name for t in c.targets if t.log}
        ),
        "prior_posterior.png": prior_posterior_figure(prior, draws, f"{title}: prior (grey) and posterior"),
        "pairs.png": pairs_figure(draws, [(a, b) for _, a, b in pairs], f"{title}: the most correlated pairs"),
        # walkers pooled into four groups, so that each line of a rank plot has enough draws to read
        "rank.png": rank_figure({n: _groups(post[n].values, 4) for n in names}, f"{title}: rank plots"),
    }


def _groups(chains, k: int):
    """(walker, draw) -> (k, draws of the walkers of each group), walkers dealt in turn to the groups."""
    import numpy as np

    n = (chains.shape[0] // k) * k
    return np.stack([chains[g:n:k].ravel() for g in range(k)])


def estimation_manifest(result: EstimationResult, command: list[str] | None = None) -> EstimationManifest:
    c = result.config
    return EstimationManifest(
        model=c.model,
        scenario=c.scenario,
        config=c.source,
        config_hash=c.hash,
        data_hash=result.data_hash,
        spec_hash=result.spec_hash,
        parameters={n: v for n, v in result.medians.items() if n in c.names},
        window=tuple(result.window),
        seed=int(result.settings["seed"]),
        settings=dict(result.settings),
        converged=result.converged,
        best_log_posterior=float(result.modes["log_posterior"].iloc[0]),
        wall_s=result.wall_s,
        versions=versions(),
        command=_command(command),
        created=created(),
    )


def write_estimation(result: EstimationResult, out: str | Path, *, command: list[str] | None = None) -> Path:
    """An estimation directory (see :data:`ESTIMATION_FILES`), written atomically; the chunk store the
    estimation kept there (modes, chain) stays."""
    import tempfile

    from .plots import png_bytes

    with tempfile.TemporaryDirectory() as tmp:
        nc = Path(tmp) / "posterior.nc"
        result.idata.to_netcdf(str(nc), engine="h5netcdf")
        posterior = nc.read_bytes()
    files = {
        "posterior.nc": posterior,
        "summary.csv": result.table.to_csv(float_format="%.6g").encode(),
        "modes.csv": _csv(result.modes, "%.8g"),
        "predictive.csv": _csv(result.predictive, "%.6g"),
        "fit.csv": result.fit.to_csv(float_format="%.6g").encode(),
        "params.yaml": estimate_parameter_text(result, Path(out), command).encode(),
        "report.txt": (result.summary() + "\n").encode(),
        "report.json": (json.dumps(result.to_dict(), indent=2, default=float) + "\n").encode(),
        **{name: png_bytes(fig) for name, fig in estimation_figures(result).items()},
        FILE: estimation_manifest(result, command).to_json().encode(),
    }
    if result.facts is not None:
        files["facts.csv"] = result.facts.to_csv(float_format="%.4g").encode()
    if result.output_bands is not None:
        files["output_bands.csv"] = _csv(result.output_bands, "%.6g")
    return _write_files(out, files, "estimation")


def run_estimate(
    config: CalibrationConfig | str | Path,
    *,
    out: str | Path | None = None,
    settings: Mapping | None = None,
    install: bool = False,
    force: bool = False,
    outputs: Sequence[str] = (),
    progress: bool = False,
    command: list[str] | None = None,
) -> EstimationResult:
    """Estimate (or resume an estimation) and write its directory (``out``, default :func:`estimation_dir`);
    with ``install`` also the posterior medians into the scenario's parameter file."""
    cfg = config if isinstance(config, CalibrationConfig) else load_config(config)
    seed = int({**cfg.estimate, **dict(settings or {})}.get("seed", 1))
    folder = check_out_folder(out or estimation_dir(cfg, seed), marker=STUDY_MARKER)
    with hold_out_dir(folder):
        res = estimate(cfg, settings=settings, store=folder, outputs=outputs, progress=progress)
        write_estimation(res, folder, command=command)
    if install:
        install_estimate(res, Path(out) if out is not None else estimation_dir(cfg, seed), command, force=force)
    return res


def validation_dir(cfg) -> Path:
    return Path("runs") / f"validate-{Path(cfg.source).stem}"


def write_validation(result: ValidationResult, out: str | Path, *, command: list[str] | None = None) -> Path:
    """A validation directory: skill.csv, forecasts.csv, modes.csv, summary.txt, forecasts.png, manifest.json."""
    from .plots import fan_figure, png_bytes

    c = result.config
    skill_all = {str(t): float(v) for (t, h), v in result.skill["skill"].items() if h == "all"}
    man = ValidationManifest(
        model=c.model,
        scenario=c.scenario,
        config=c.source,
        config_hash=c.hash,
        origins=tuple(result.origins),
        settings=dict(result.settings),
        skill=skill_all,
        wall_s=result.wall_s,
        versions=versions(),
        command=_command(command),
        created=created(),
    )
    title = f"{result.model_name}" + (f" / {c.scenario}" if c.scenario else "") + ": forecasts from each origin"
    files = {
        "skill.csv": result.skill.reset_index().to_csv(index=False, float_format="%.6g").encode(),
        "forecasts.csv": _csv(result.forecasts, "%.6g"),
        "modes.csv": _csv(result.modes, "%.8g"),
        "summary.txt": (result.summary() + "\n").encode(),
        "forecasts.png": png_bytes(fan_figure(result.forecasts, title)),
        FILE: man.to_json().encode(),
    }
    return _write_files(out, files, "validation")


def run_validate(
    config: CalibrationConfig | str | Path,
    *,
    out: str | Path | None = None,
    origins=None,
    settings: Mapping | None = None,
    progress: bool = False,
    command: list[str] | None = None,
) -> ValidationResult:
    """Validate (or resume a validation, one origin at a time) and write its directory."""
    cfg = config if isinstance(config, CalibrationConfig) else load_config(config)
    folder = check_out_folder(out or validation_dir(cfg), marker=STUDY_MARKER)
    with hold_out_dir(folder):
        res = validate(cfg, origins=origins, settings=settings, store=folder, progress=progress)
        write_validation(res, folder, command=command)
    return res
