"""Run directories of a calibration and of the studies: frozen results in, one atomic directory out.

The numeric modules return frozen results and write nothing (a study writes
only its chunk store, :mod:`sdmodel.core.store`): :func:`sdmodel.simulate`,
:func:`sdmodel.calibrate`, :func:`sdmodel.study.sensitivity.compute_sensitivity`,
:func:`sdmodel.study.sequencing.compute_sequence`.  This module writes them:

* :func:`write_simulation`: a run directory (:func:`write_run`) with its data
  dictionary ``variables.csv`` (:func:`variable_dictionary`) and a manifest that records
  the run's warnings (:func:`noting_warnings`) and the hashes of its input files.
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

Every manifest records its :func:`~sdmodel.core.manifest.provenance`: the sdmodel version, the git
commit where sdmodel runs from a checkout, and the sha256 of each input file
(:func:`input_files`: model, scenario, parameter and data files; the calibration or study
config).  ``progress=True`` (or ``execution.progress``) says on stderr what runs, one line
each (:func:`sdmodel.model.accounting.progress_line`), beside the bars of the computation.

Every file is rendered first, then the directory is written by
:func:`sdmodel.core.files.write_atomic_dir`: built in a hidden sibling, its typed
manifest (:mod:`sdmodel.core.manifest`) included, and moved into place by one
rename, so a reader sees the earlier complete directory or the new one, never a
mix.  A study's directory is also its chunk store: the new directory keeps the
saved chunks and whatever else the folder holds.  :func:`run_sensitivity` and
:func:`run_sequence` compute (or resume) a study and write its directory, as
``sdmodel sensitivity`` and ``sdmodel sequence`` do.  The figures are drawn by
:mod:`sdmodel.report.plots`.
"""

from __future__ import annotations

import contextlib
import csv
import io as _bytes_io
import json
import sys
import time
import warnings as _warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from sdmodel.core.errors import ExtrapolationWarning, SdmodelError, SpecError, UnbalancedStartWarning
from sdmodel.core.files import (
    STUDY_MARKER,
    check_out_folder,
    created,
    hold_out_dir,
    parquet_bytes,
    versions,
    write_atomic_dir,
    write_atomic_file,
)
from sdmodel.core.manifest import (
    FILE,
    CalibrationManifest,
    EstimationManifest,
    RunManifest,
    SensitivityManifest,
    SequenceManifest,
    ValidationManifest,
    provenance,
)
from sdmodel.core.options import Execution
from sdmodel.engine.results import SimulationResult
from sdmodel.estimate.calibration import CalibrationConfig, CalibrationResult, load_config
from sdmodel.estimate.estimation import EstimationResult, ValidationResult, estimate, load_posterior, validate
from sdmodel.model.checks import progress_line
from sdmodel.model.names import split_marker
from sdmodel.model.spec import Model, read_parameter_file, read_yaml_file, resolve_model_path, scenario_path
from sdmodel.study.base import StudyConfig, load_study
from sdmodel.study.sensitivity import Design, SensitivityResult, compute_sensitivity, study_problem
from sdmodel.study.sequencing import SequenceResult, compute_sequence, load_designs


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


# ----------------------------------------------------------------------------- one run


def manifest(
    model: Model,
    result: SimulationResult,
    *,
    command: list[str] | None = None,
    seed: int | None = None,
    extra: Mapping | None = None,
) -> RunManifest:
    """The manifest of one run: everything needed to reproduce it."""
    return RunManifest(
        model=model.name,
        model_file=model.path or model.source,
        scenario=model.scenario or None,
        scenario_file=model.scenario_file or None,
        spec_hash=model.spec_hash,
        parameters=dict(result.params),
        solver=dict(result.solver),
        seed=seed,
        success=result.success,
        message=result.message,
        max_relative_residual=result.max_residual,
        outputs=tuple(result.names),
        versions=versions(),
        command=tuple(command if command is not None else sys.argv),
        created=created(),
        extra=dict(extra or {}),
    )


#: The columns of ``columns.csv``, the data dictionary of a run's ``results.csv``.
COLUMN_FIELDS = ("name", "kind", "unit", "description", "equation")


def column_dictionary(model: Model, names) -> list[dict[str, str]]:
    """What each column of a run's ``results.csv`` is: one row per column (``t`` first) with
    :data:`COLUMN_FIELDS`, from the model file: the stock's or variable's ``doc`` (else its title
    in the ``report:`` block), its ``unit`` in the model file (else the one the ``report:`` block gives
    its panels), and the equation
    that defines it (a stock's change, or the transactions-flow column that determines it)."""
    from sdmodel.engine.cache import stock_roles

    roles = stock_roles(model)
    panels = dict(model.presentation.get("panels") or {})
    units = str(model.presentation.get("units") or "")
    text = model.equation_text
    rows = [{"name": "t", "kind": "time", "unit": "", "description": "time", "equation": ""}]
    for n in names:
        role = roles.get(n, "")
        if n in model.stocks:
            kind = "stock"
            if f"d({n})" in text:
                eq = f"d({n}) = {text[f'd({n})']}"
            elif n in text:  # a stock of a discrete model given by its level
                eq = f"{n} = {text[n]}"
            elif role.startswith("column"):
                eq = f"d({n}) = what balances {role} of the transactions-flow matrix"
            else:
                eq = ""
        else:
            kind, eq = "variable", (f"{n} = {text[n]}" if n in text else "")
        rows.append(
            {
                "name": model.labels.get(n, n),  # the column's name in results.csv
                "kind": kind,
                "unit": model.units.get(n) or (units if n in panels else ""),
                "description": model.docs.get(n) or str(panels.get(n, "")),
                "equation": " ".join(eq.split()),
            }
        )
    return rows


def write_run(
    out_dir,
    model: Model,
    result: SimulationResult,
    *,
    command=None,
    seed=None,
    extra=None,
    also: Callable[[Path], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one run's results, residuals, the data dictionary of the results (``columns.csv``, see
    :func:`column_dictionary`) and the manifest into ``out_dir`` atomically.

    ``also(tmp)`` may add files (e.g. a figure) before the directory is swapped in.
    ``out_dir`` may be new, empty or an earlier run (one holding other files
    too only with ``overwrite``); see :func:`write_atomic_dir`, whose
    :class:`~sdmodel.core.errors.OutputError` it raises.
    """
    df = result.to_frame()
    man = manifest(model, result, command=command, seed=seed, extra=extra)

    def fill(tmp: Path):
        df.to_csv(tmp / "results.csv", float_format="%.17g")
        df.to_parquet(tmp / "results.parquet")
        result.residual_frame().to_csv(tmp / "residuals.csv", float_format="%.6g")
        with open(tmp / "columns.csv", "w", newline="", encoding="utf-8") as f:  # what each column of results.csv is
            w = csv.DictWriter(f, fieldnames=COLUMN_FIELDS)
            w.writeheader()
            w.writerows(column_dictionary(model, result.names))
        (tmp / FILE).write_text(man.to_json())
        if also is not None:
            also(tmp)

    return write_atomic_dir(out_dir, fill, kind="run", overwrite=overwrite)


# ----------------------------------------------------------------------------- provenance


def _referenced_files(path: Path, what: str) -> list[Path]:
    """The files a model or scenario file reads: its series' and history's CSV files and its
    ``parameter_file``, resolved as :func:`sdmodel.load_model` resolves them (beside the file)."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return []  # a Vensim or XMILE model: one file
    data = read_yaml_file(path, what)[1]
    if not isinstance(data, dict):
        return []
    out = []
    series = data.get("series")
    for v in series.values() if isinstance(series, dict) else ():
        if isinstance(v, dict) and "csv" in v:
            out.append(path.parent / str(v["csv"]))
    history = data.get("history")
    if isinstance(history, dict) and "csv" in history:
        out.append(path.parent / str(history["csv"]))
    if "parameter_file" in data:
        out.append(path.parent / str(data["parameter_file"]))
    return [p.resolve() for p in out]


def input_files(model: Model | str | Path, scenario: str | Path | None = None) -> list[Path]:
    """The files a model is read from: the model file, the CSV files its series and history read, and
    with a scenario the scenario file, its parameter file and its CSV files (what a manifest hashes).

    ``model`` is a loaded :class:`~sdmodel.model.spec.Model` (its own files; none for a model built from a
    mapping) or a model file, folder or built-in name with ``scenario`` as :func:`sdmodel.load_model`
    takes them.

    Examples
    --------
    >>> [p.name for p in input_files("bsr", "japan")][:1] + [p.name for p in input_files("bsr", "japan")][-2:]
    ['model.yaml', 'history_japan.csv', 'japan.params.yaml']
    """
    if isinstance(model, Model):
        if not model.path:
            return []
        return input_files(model.path, model.scenario_file or None)
    path = resolve_model_path(model).resolve()
    files = [path, *_referenced_files(path, "model file")]
    if scenario is not None:
        spath = scenario_path(path, scenario).resolve()
        files += [spath, *_referenced_files(spath, "scenario file")]
    return list(dict.fromkeys(files))  # each once, in order


def _study_files(source: str | Path) -> list[Path]:
    """A study file and the files of the model and scenario it names (read as :func:`load_study` reads them)."""
    path = Path(source)
    if not path.is_file():
        return []
    data = read_yaml_file(path, "study file")[1]
    if not isinstance(data, dict) or "model" not in data:
        return [path.resolve()]
    ref = str(data["model"])
    if (path.parent / ref).exists():
        ref = str((path.parent / ref).resolve())
    scenario = None if data.get("scenario") is None else str(data["scenario"])
    return [path.resolve(), *input_files(ref, scenario)]


def _config_files(cfg: CalibrationConfig) -> list[Path]:
    """A calibration config, its data and the files of its model and scenario."""
    return [Path(cfg.source).resolve(), Path(cfg.data).resolve(), *input_files(cfg.model, cfg.scenario)]


# ----------------------------------------------------------------------------- runs

#: The columns of ``variables.csv``, the data dictionary of a run directory.
VARIABLE_FIELDS = ("name", "description", "unit", "sector", "kind", "equation", "file")
#: What ``kind`` says in ``variables.csv``.
VARIABLE_KINDS = ("time", "stock", "flow", "auxiliary", "parameter", "series", "residual")


def _matrix_roles(model: Model) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(name -> the sectors whose matrix columns it appears in, name -> what its exact entries say).

    A stock's sectors are the balance-sheet columns that hold it (else the transactions-flow
    columns of its change); any other name's, the transactions-flow columns it enters, lagged or
    not. An entry that is exactly ``+X`` or ``-X`` describes ``X``: a balance-sheet row says whose
    asset or liability it is, a transactions-flow row who pays and who receives it."""
    sectors: dict[str, list[str]] = {}
    said: dict[str, list[str]] = {}

    def add(name: str, col: str) -> None:
        if col not in sectors.setdefault(name, []):
            sectors[name].append(col)

    bs, tf = model.balance_sheet, model.transactions
    if bs is not None:
        for row, cells in bs.cell_symbols().items():
            for col, (names, exact) in cells.items():
                for n in names:
                    if split_marker(n)[0] is None and n in model.stocks:
                        add(n, col)
                for name, side in exact:
                    said.setdefault(name, []).append(f"{row}: {'asset' if side > 0 else 'liability'} of {col}")
    if tf is not None:
        changes: dict[str, list[str]] = {}
        for row, cells in tf.cell_symbols().items():
            pay: dict[str, list[str]] = {}
            get: dict[str, list[str]] = {}
            for col, (names, exact) in cells.items():
                for n in names:
                    kind, base = split_marker(n)
                    if kind == "d":
                        changes.setdefault(base, []).append(col)
                    elif base not in model.stocks:
                        add(base, col)
                for name, side in exact:
                    (get if side > 0 else pay).setdefault(name, []).append(col)
            for name in dict.fromkeys([*pay, *get]):
                sides = [f"paid by {', '.join(pay[name])}"] if name in pay else []
                sides += [f"received by {', '.join(get[name])}"] if name in get else []
                said.setdefault(name, []).append(f"{row}: {', '.join(sides)}")
        for stock, cols in changes.items():
            if stock not in sectors:
                for col in cols:
                    add(stock, col)
    return sectors, said


def variable_dictionary(
    model: Model, names: Sequence[str], residual_names: Sequence[str] = (), unbalanced_start: bool | None = None
) -> list[dict[str, str]]:
    """The data dictionary of a run directory (``variables.csv``): one row per column of
    ``results.csv`` (``t`` first, then ``names``), per parameter (their values are in
    ``manifest.json``), per series the model reads and per column of ``residuals.csv``
    (``residual_names``), with :data:`VARIABLE_FIELDS`:

    ``name``; ``description``: the model file's ``doc`` (else its ``report:`` panel title), else what
    the matrices say of it (``Consumption: paid by households, received by firms``; ``Money: asset
    of households``); ``unit``: the ``unit`` the model file gives the stock, equation, parameter or
    series, else the ``report: units`` of the panels, "1" for a relative residual, else empty (none is
    invented); ``sector``: the matrix columns it appears in
    (``households; firms``); ``kind``: one of :data:`VARIABLE_KINDS` (a *flow* is a variable that
    enters the transactions-flow matrix, an *auxiliary* one that does not); ``equation``: what
    defines it, as in ``columns.csv`` (:func:`sdmodel.report.rundirs.column_dictionary`); ``file``: where its
    values are (``results.csv``, ``manifest.json``, ``residuals.csv``, or a series' data file).
    ``unbalanced_start`` (default the model's ``allow_unbalanced_start``): the run measured the
    balance-sheet rows from their sums at its first step, and the residuals' descriptions say so.

    Examples
    --------
    >>> from sdmodel import load_model
    >>> rows = {r["name"]: r for r in variable_dictionary(load_model("pc"), ["Hh", "C", "YD"])}
    >>> rows["C"]["kind"], rows["C"]["sector"], rows["C"]["description"]
    ('flow', 'households; firms', 'Consumption: paid by households, received by firms')
    >>> rows["Hh"]["kind"], rows["Hh"]["description"], rows["YD"]["kind"]
    ('stock', 'Money: asset of households', 'auxiliary')
    >>> rows["theta"]["kind"], rows["theta"]["unit"], rows["theta"]["file"]
    ('parameter', '1', 'manifest.json')
    """
    sectors, said = _matrix_roles(model)

    def described(name: str, doc: str) -> str:
        return doc or "; ".join(said.get(name, []))

    def sector(name: str) -> str:
        return "; ".join(sectors.get(name, []))

    rows = []
    for n, c in zip(["t", *names], column_dictionary(model, names)):  # c["name"]: the label results show
        if c["kind"] == "time":
            kind = "time"
        elif n in model.stocks:
            kind = "stock"
        else:
            kind = "flow" if model.transactions is not None and n in sectors else "auxiliary"
        rows.append(
            {
                "name": c["name"],
                "description": c["description"] if kind == "time" else described(n, c["description"]),
                "unit": c["unit"],
                "sector": "" if kind == "time" else sector(n),
                "kind": kind,
                "equation": c["equation"],
                "file": "results.csv",
            }
        )
    for n, p in model.parameters.items():
        rows.append(
            {
                "name": n,
                "description": described(n, p.doc),
                "unit": p.unit,
                "sector": sector(n),
                "kind": "parameter",
                "equation": "",
                "file": "manifest.json",
            }
        )
    for n, s in model.series.items():
        where = "" if s.source == "inline" else Path(s.source).name
        rows.append(
            {
                "name": n,
                "description": described(n, model.docs.get(n, "")),
                "unit": model.units.get(n, ""),
                "sector": sector(n),
                "kind": "series",
                "equation": "",
                "file": where or (Path(model.scenario_file or model.path).name if model.path else ""),
            }
        )
    mats = {"transactions": model.transactions, "balance_sheet": model.balance_sheet}
    cells = {k: m.cell_symbols() for k, m in mats.items() if m is not None and residual_names}
    for r in residual_names:
        which, _, row = r.partition(":")
        mat = cells.get(which)
        flows = which == "transactions"
        what = "its sum at each saved time"
        if model.allow_unbalanced_start if unbalanced_start is None else unbalanced_start:  # CompiledModel.from_start
            if not flows:
                what = "the change of its sum from the first step (an unbalanced start allowed) at each saved time"
            elif model.discrete:
                what += " (0 at the first period, which reads the unbalanced start allowed through lag())"
        rows.append(
            {
                "name": r,
                "description": f"stock-flow residual of row {row!r} of the "
                f"{'transactions-flow matrix' if flows else 'balance sheet'}: {what}, relative "
                f"to the run's largest {'flow' if flows else 'stock entry'} (0 where it balances)",
                "unit": "1",
                "sector": "; ".join(mat.get(row, {})) if mat is not None else "",
                "kind": "residual",
                "equation": "",
                "file": "residuals.csv",
            }
        )
    return rows


def variables_csv(rows: Sequence[Mapping[str, str]]) -> bytes:
    """The rows of :func:`variable_dictionary` as ``variables.csv``."""
    buf = _bytes_io.StringIO()
    w = csv.DictWriter(buf, fieldnames=VARIABLE_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


@contextlib.contextmanager
def noting_warnings(
    category: type[Warning] | tuple[type[Warning], ...] = (ExtrapolationWarning, UnbalancedStartWarning),
) -> Iterator[list[str]]:
    """Collect the text (one line, each text once) of every ``category`` warning raised inside (by
    default a run beyond the data of a series, and an unbalanced start that the model allows), for a
    manifest to record, whatever the warning filters say; on leaving, issue every warning caught
    again, so that the filters outside decide as before whether it is shown, raised or ignored.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     with noting_warnings(UserWarning) as noted:
    ...         warnings.warn("beyond   the data", UserWarning)
    >>> noted
    ['beyond the data']
    """
    noted: list[str] = []
    caught: list[_warnings.WarningMessage] = []
    try:
        with _warnings.catch_warnings(record=True) as caught:
            for cat in category if isinstance(category, tuple) else (category,):
                _warnings.simplefilter("always", cat)
            yield noted
    finally:  # also when the work inside failed: what it warned about before is still shown
        for w in caught:
            if issubclass(w.category, category):
                text = " ".join(str(w.message).split())
                if text in noted:
                    continue
                noted.append(text)
            _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def write_simulation(
    out_dir: str | Path,
    model: Model,
    result: SimulationResult,
    *,
    command: list[str] | None = None,
    seed: int | None = None,
    warnings: Sequence[str] = (),
    also: Callable[[Path], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """A run directory (:func:`sdmodel.report.rundirs.write_run`: results, residuals, ``columns.csv``, manifest),
    with its data dictionary ``variables.csv`` (:func:`variable_dictionary`) and a manifest that records
    the :func:`~sdmodel.core.manifest.provenance` of the run (its :func:`input_files` hashed) and
    ``warnings`` (from :func:`noting_warnings` around the simulation).

    ``also(tmp)`` may add files (a figure) before the directory is swapped in.
    """
    rows = variable_dictionary(
        model, result.names, result.residual_names, bool(result.solver.get("allow_unbalanced_start"))
    )

    def fill(tmp: Path) -> None:
        (tmp / "variables.csv").write_bytes(variables_csv(rows))
        if also is not None:
            also(tmp)

    extra = {"provenance": provenance(input_files(model)), "warnings": list(warnings)}
    return write_run(out_dir, model, result, command=command, seed=seed, extra=extra, also=fill, overwrite=overwrite)


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
    :func:`sdmodel.report.plots.fit_figure`): one panel per target, the fit window shaded."""
    from sdmodel.report.plots import fit_figure as draw

    c = result.config
    return draw(
        result.paths,
        result.window,
        {t.name: float(result.fit.loc[t.name, "rmse"]) for t in c.targets},
        log={t.name for t in c.targets if t.log},
        not_fitted={t.name for t in c.targets if not t.fitted},
        shift={t.name: t.shift for t in c.targets},
        title=f"{result.model_name}" + (f" / {c.scenario}" if c.scenario else "") + ": calibrated model against data",
    )


def calibration_manifest(
    result: CalibrationResult, command: list[str] | None = None, warnings: Sequence[str] = ()
) -> CalibrationManifest:
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
        provenance=provenance(_config_files(result.config)),
        command=_command(command),
        created=created(),
        warnings=tuple(warnings),
    )


def write_calibration(
    out_dir,
    result: CalibrationResult,
    *,
    command: list[str] | None = None,
    overwrite: bool = False,
    warnings: Sequence[str] = (),
) -> Path:
    """A calibration run directory, written atomically: params.yaml, report.json, report.txt, fit.csv,
    fit.parquet, fit.png and manifest.json.

    ``out_dir`` may be new, empty or an earlier calibration directory (one
    holding other files too only with ``overwrite``); anything else raises
    :class:`~sdmodel.core.errors.OutputError` and is left as it was (see
    :func:`sdmodel.core.files.write_atomic_dir`).
    """
    from sdmodel.report.plots import png_bytes

    files = {
        "params.yaml": parameter_file_text(result, command).encode(),
        "report.json": (json.dumps(result.to_dict(), indent=2, default=float) + "\n").encode(),
        "report.txt": (result.summary() + "\n").encode(),
        "fit.csv": _csv(result.paths, "%.10g"),
        "fit.parquet": parquet_bytes(result.paths),
        "fit.png": png_bytes(fit_figure(result)),
        FILE: calibration_manifest(result, command, warnings).to_json().encode(),
    }
    return _write_files(out_dir, files, "calibration", overwrite)


# ----------------------------------------------------------------------------- sensitivity


def index_figure(res: SensitivityResult):
    """One panel per outcome: S1 and ST with confidence intervals (Sobol), or mu* and sigma (Morris);
    a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.report.plots.index_figure`."""
    from sdmodel.report.plots import index_figure as draw

    return draw(
        res.indices,
        res.factor_names,
        res.outcome_names,
        res.method,
        f"{res.method.capitalize()} sensitivity, {res.name}: N={res.N}, {len(res.X)} runs",
    )


def time_figure(res: SensitivityResult):
    """One panel per tracked path: the main index of every factor, year by year, with its CI band;
    a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.report.plots.time_figure`."""
    from sdmodel.report.plots import time_figure as draw

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


def sensitivity_manifest(
    res: SensitivityResult, command: list[str] | None = None, warnings: Sequence[str] = ()
) -> SensitivityManifest:
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
        provenance=provenance(_study_files(res.study.get("study", ""))),
        command=_command(command),
        created=created(),
        warnings=tuple(warnings),
        **{k: v for k, v in recorded.items() if k in known},
        extra={k: v for k, v in recorded.items() if k not in known},
    )


def write_sensitivity(
    res: SensitivityResult,
    out: str | Path | None = None,
    *,
    command: list[str] | None = None,
    warnings: Sequence[str] = (),
) -> Path:
    """Write the indices, the sample, the figures, the summary and the manifest as one directory, atomically.

    ``out`` defaults to the study folder the result was computed in (``res.store``); the new
    directory keeps its chunks and every other file it does not write itself (see
    :func:`sdmodel.core.files.write_atomic_dir`).

    Raises
    ------
    OutputError
        If ``out`` is a folder that is neither a study folder nor an earlier sensitivity directory.
    """
    from sdmodel.report.plots import png_bytes

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
    files[FILE] = sensitivity_manifest(res, command, warnings).to_json().encode()
    return _write_files(out, files, "sensitivity")


def _study(study: StudyConfig | str | Path, progress: bool) -> StudyConfig:
    """The study config; reading one compiles its model, which takes a minute the first time."""
    if isinstance(study, StudyConfig):
        return study
    started = time.perf_counter()
    if progress:
        progress_line(f"reading the study {study} and compiling its model (once; cached after)")
    cfg = load_study(study)
    if progress:
        progress_line(f"read the study {cfg.name} ({cfg.model}) in {time.perf_counter() - started:.1f} s")
    return cfg


def sensitivity_dir(cfg: StudyConfig, design: Design, dt: float | None = None) -> Path:
    """Where ``sdmodel sensitivity`` writes by default: ``runs/sensitivity-<study>-<method>-N<N>-seed<seed>``."""
    return (
        Path("runs") / f"sensitivity-{cfg.name}-{design.method}-N{design.N}-seed{design.seed}"
        f"{'-groups' if design.groups else ''}{'' if dt is None else f'-dt{dt:g}'}"
    )


def _compute_then_write(
    folder: Path, compute: Callable[[], Any], write: Callable[[Any, list[str]], Any], writing: str | None
) -> Any:
    """Compute into the study folder ``folder`` and write its directory, holding the folder meanwhile; the
    warnings of runs beyond the data of a series go into the manifest (``write(result, warnings)``);
    ``writing``: what is written, said on stderr (None: nothing said)."""
    with hold_out_dir(folder):
        with noting_warnings() as noted:
            res = compute()
        if writing:
            progress_line(f"writing {writing} to {folder}")
        write(res, noted)
    return res


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
    cfg = _study(study, execution.progress)
    study_problem(cfg, design)  # the study's own errors before the folder's
    sample = load_posterior(posterior, draws) if posterior is not None else None
    default = sensitivity_dir(cfg, design, dt)
    if sample is not None:
        default = default.with_name(default.name + f"-posterior{draws}")
    folder = check_out_folder(out or default, marker=STUDY_MARKER)
    res = _compute_then_write(
        folder,
        lambda: compute_sensitivity(cfg, design, store=folder, execution=execution, dt=dt, posterior=sample),
        lambda res, noted: write_sensitivity(res, folder, command=command, warnings=noted),
        "the indices, figures and summary" if execution.progress else None,
    )
    return res


# ----------------------------------------------------------------------------- sequencing


def heatmap_figure(res: SequenceResult, design: str):
    """The heat maps of one design: its best-criterion outcome and one more, a row per family
    (a ``matplotlib.figure.Figure`` drawn by :func:`sdmodel.report.plots.heatmap_figure`)."""
    from sdmodel.report.plots import heatmap_figure as draw

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


def sequence_manifest(
    res: SequenceResult, command: list[str] | None = None, warnings: Sequence[str] = ()
) -> SequenceManifest:
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
        provenance=provenance(_study_files(st.get("study", ""))),
        command=_command(command),
        created=created(),
        warnings=tuple(warnings),
        extra={} if res.posterior is None else {"posterior": {"source": res.posterior, "draws": res.draws}},
    )


def write_sequence(
    res: SequenceResult,
    out: str | Path | None = None,
    *,
    command: list[str] | None = None,
    warnings: Sequence[str] = (),
) -> Path:
    """Write each design's table (CSV, Parquet) and heat maps, the summary and the manifest as one
    directory, atomically.

    ``out`` defaults to the study folder the result was computed in (``res.store``); the new
    directory keeps its chunks and every other file it does not write itself (see
    :func:`sdmodel.core.files.write_atomic_dir`).
    """
    from sdmodel.report.plots import png_bytes

    files = {}
    for name, tab in res.tables.items():
        files[f"{name}.csv"] = _csv(tab, "%.6g")
        files[f"{name}.parquet"] = parquet_bytes(tab)
        files[f"{name}.png"] = png_bytes(heatmap_figure(res, name))
    files["summary.txt"] = (res.summary() + "\n").encode()
    files[FILE] = sequence_manifest(res, command, warnings).to_json().encode()
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
    cfg = _study(study, execution.progress)
    load_designs(cfg, designs)  # the designs' errors before the folder's
    sample = load_posterior(posterior, draws) if posterior is not None else None
    default = Path("runs") / (f"sequence-{cfg.name}" + ("" if sample is None else f"-posterior{draws}"))
    folder = check_out_folder(out or default, marker=STUDY_MARKER)
    res = _compute_then_write(
        folder,
        lambda: compute_sequence(cfg, designs=designs, store=folder, execution=execution, posterior=sample),
        lambda res, noted: write_sequence(res, folder, command=command, warnings=noted),
        "the tables, heat maps and summary" if execution.progress else None,
    )
    return res


__all__ = [
    "VARIABLE_FIELDS",
    "VARIABLE_KINDS",
    "calibration_manifest",
    "fit_figure",
    "heatmap_figure",
    "index_figure",
    "input_files",
    "install_parameters",
    "noting_warnings",
    "parameter_file_text",
    "run_sensitivity",
    "run_sequence",
    "sensitivity_dir",
    "sensitivity_manifest",
    "sequence_files",
    "sequence_manifest",
    "time_figure",
    "variable_dictionary",
    "variables_csv",
    "write_calibration",
    "write_sensitivity",
    "write_sequence",
    "write_simulation",
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
        **({} if result.median_typical else {"median_typical": False}),
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

    Refused (:class:`~sdmodel.core.errors.SdmodelError`) when the chain has not converged (R-hat, bulk ESS and
    chain length against its autocorrelation time: :attr:`EstimationResult.converged`), unless ``force``.
    """
    if not result.converged and not force:
        raise SdmodelError(
            "not installed: the posterior has not converged (see report.txt: R-hat <= 1.01, bulk ESS >= 400 and "
            "steps >= 50 autocorrelation times for every quantity); run longer (--steps), or install anyway with "
            "--force (the provenance then says converged: false)"
        )
    if not result.median_typical and not force:
        raise SdmodelError(
            "not installed: the posterior medians, taken together as one point, are not a typical point of the "
            f"posterior (log posterior {result.median_lp:.6g}, below the draws' 1% quantile "
            f"{(result.draws_lp or (0.0,))[0]:.6g}; see report.txt): a curved or multimodal posterior, or walkers "
            "that have not mixed; install anyway with --force"
        )
    medians = {n: v for n, v in result.medians.items() if n in result.config.names}
    return _install(
        result.config, result.model_name, medians, lambda keep: estimate_parameter_text(result, run_dir, command, keep)
    )


def estimation_figures(result: EstimationResult) -> dict[str, Any]:
    """The figures of an estimation (``matplotlib.figure.Figure`` by file name): predictive bands, prior vs
    posterior, the most correlated pairs, rank plots."""
    import numpy as np

    from sdmodel.report.plots import band_figure, pairs_figure, prior_posterior_figure, rank_figure

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
        figs["output_bands.png"] = band_figure(  # outputs by the model's time: no shift
            ob, result.window, f"{title}: posterior bands of model outputs", band="90% posterior band", shift={}
        )
    return figs | {
        "bands.png": band_figure(
            result.predictive,
            result.window,
            f"{title}: posterior predictive",
            log={t.name for t in c.targets if t.log},
            shift={t.name: t.shift for t in c.targets},
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


def estimation_manifest(
    result: EstimationResult, command: list[str] | None = None, warnings: Sequence[str] = ()
) -> EstimationManifest:
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
        provenance=provenance(_config_files(c)),
        command=_command(command),
        created=created(),
        warnings=tuple(warnings),
    )


def write_estimation(
    result: EstimationResult, out: str | Path, *, command: list[str] | None = None, warnings: Sequence[str] = ()
) -> Path:
    """An estimation directory (see :data:`ESTIMATION_FILES`), written atomically; the chunk store the
    estimation kept there (modes, chain) stays."""
    import tempfile

    from sdmodel.report.plots import png_bytes

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
        FILE: estimation_manifest(result, command, warnings).to_json().encode(),
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
    if progress:
        progress_line(
            f"estimating {Path(cfg.source).stem}: mode search, then the sampler; the work saved in {folder} is reused"
        )
    res = _compute_then_write(
        folder,
        lambda: estimate(cfg, settings=settings, store=folder, outputs=outputs, progress=progress),
        lambda res, noted: write_estimation(res, folder, command=command, warnings=noted),
        "the posterior, tables and figures" if progress else None,
    )
    if install:
        install_estimate(res, Path(out) if out is not None else estimation_dir(cfg, seed), command, force=force)
    return res


def validation_dir(cfg) -> Path:
    return Path("runs") / f"validate-{Path(cfg.source).stem}"


def write_validation(
    result: ValidationResult, out: str | Path, *, command: list[str] | None = None, warnings: Sequence[str] = ()
) -> Path:
    """A validation directory: skill.csv, forecasts.csv, modes.csv, summary.txt, forecasts.png, manifest.json."""
    from sdmodel.report.plots import fan_figure, png_bytes

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
        provenance=provenance(_config_files(c)),
        command=_command(command),
        created=created(),
        warnings=tuple(warnings),
    )
    title = f"{result.model_name}" + (f" / {c.scenario}" if c.scenario else "") + ": forecasts from each origin"
    files = {
        "skill.csv": result.skill.reset_index().to_csv(index=False, float_format="%.6g").encode(),
        "forecasts.csv": _csv(result.forecasts, "%.6g"),
        "modes.csv": _csv(result.modes, "%.8g"),
        "summary.txt": (result.summary() + "\n").encode(),
        "forecasts.png": png_bytes(fan_figure(result.forecasts, title, shift={t.name: t.shift for t in c.targets})),
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
    if progress:
        shown = ", ".join(f"{o:g}" for o in (origins or cfg.origins)) or "the config's"
        progress_line(
            f"validating {Path(cfg.source).stem}: a mode search and forecasts from each origin ({shown}); "
            f"origins finished earlier in {folder} are reused"
        )
    res = _compute_then_write(
        folder,
        lambda: validate(cfg, origins=origins, settings=settings, store=folder, progress=progress),
        lambda res, noted: write_validation(res, folder, command=command, warnings=noted),
        "the skill table, forecasts and figure" if progress else None,
    )
    return res
