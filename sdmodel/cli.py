"""The ``sdmodel`` command line: a thin layer over the library.

``sdmodel check PATH``  prints both matrices, the derived stock dynamics and
what was proven; exit 1 on any imbalance (with ``--allow-unbalanced-start``, not on starting values
that do not balance where the dynamics conserve them; ``run`` takes it too, warns and gates the change).
``sdmodel run [PATH_OR_NAME] [--scenario S] [--set name=value ...] [--t-span A B] [--out DIR [--overwrite]]``
simulates and writes a run directory (results.csv and its data dictionary
variables.csv, columns.csv, results.parquet, residuals.csv, manifest.json, figure.png).  With no model named it runs the
main job: the balance-sheet-recession model's Japan scenario, whose figure
shows the outputs its ``report:`` block names (the sectors' debt ratios) against
the historical series.  The ``--out`` of
``run`` and ``calibrate`` must be a new or empty folder or an earlier directory
of the same command (one with files added to it only with ``--overwrite``); it
never replaces anything else, and is checked before the work starts (see
:mod:`sdmodel.core.files`).
``sdmodel calibrate CONFIG [--out-of-sample] [--install] ...`` fits a model to history
(config in ``calibration/``) and writes params.yaml, the fit report and figures.
``sdmodel data build SRC [--out DIR] [--check]`` rebuilds the calibration target CSVs
from the publishers' files (the BIS total-credit bulk CSV and the other sources).
``sdmodel sensitivity STUDY [--method sobol|morris] [-N 1024] ...`` runs (or resumes) a global
sensitivity study (config in ``studies/``) and writes the indices, tables and figures.
``sdmodel sequence STUDY [--design NAME]`` maps policy sequences (tables, heat maps, the best rule).
``sdmodel models`` lists the built-in models and their scenarios.

Errors print one line on stderr and exit 1; ``--debug`` shows the traceback.

Progress (what is being compiled, checked or run, and bars over long loops) goes to stderr, and
only when stderr is a terminal: a command whose output is logged or piped says nothing it was not
asked to.  ``--quiet`` turns it off everywhere (as a command's own ``--no-progress`` does), and
``--progress`` turns it on even when stderr is not a terminal.  Both may be given before or after
the command (``sdmodel --quiet run``, ``sdmodel run --quiet``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import gc
import os
import sys
import warnings
from pathlib import Path

from sdmodel import __version__
from sdmodel.core.errors import ExtrapolationWarning, OutputError, SdmodelError, SpecError, UnbalancedStartWarning
from sdmodel.engine.cache import CacheWarning, user_cache_dir, using_cache_dir

#: What ``sdmodel run`` runs with no model named: the main job.
DEFAULT_MODEL, DEFAULT_SCENARIO = "bsr", "japan"


def _posterior_args(parser: argparse.ArgumentParser, what: str, draws: int) -> None:
    """``--posterior RUN_DIR`` and ``--draws N`` of a study command."""
    parser.add_argument(
        "--posterior",
        metavar="RUN_DIR",
        help=f"an estimation directory (sdmodel estimate), whose posterior draws of the model's parameters to use: "
        f"{what}",
    )
    parser.add_argument("--draws", type=int, default=draws, help=f"posterior draws with --posterior (default {draws})")


def _unbalanced_start_arg(parser: argparse.ArgumentParser, what: str) -> None:
    """``--allow-unbalanced-start`` of a command that checks a model's accounting."""
    parser.add_argument(
        "--allow-unbalanced-start",
        action="store_true",
        help="accept starting values whose balance sheet does not balance where the dynamics conserve it (a "
        f"published model's rounded values; as allow_unbalanced_start: true in the model file): {what}",
    )


def _feedback_args(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--quiet`` and ``--progress``, on the main parser and (so that they may follow the command) on each
    command's; a command's copy leaves the main parser's value alone unless given (``SUPPRESS``)."""
    default: dict = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress on stderr (results and errors still)", **default
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal (a log file, CI)",
        **default,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sdmodel", description="Stock-flow-consistent models: check, run.")
    p.add_argument("--version", action="version", version=f"sdmodel {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    _feedback_args(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="check a model's accounting (exit 1 on any imbalance)")
    c.add_argument("model", help="model file, model folder or built-in model name")
    c.add_argument("--scenario", help="a scenario beside the model (scenarios/NAME.yaml) or a scenario file")
    c.add_argument("--no-progress", action="store_true", help="do not say what is being checked (stderr)")
    _unbalanced_start_arg(c, "such rows are reported as 'unbalanced start' with their sums there, not failed")

    r = sub.add_parser("run", help="simulate a model and write a run directory")
    r.add_argument(
        "model",
        nargs="?",
        default=None,
        help=f"model file (also Vensim .mdl or XMILE .xmile), folder or built-in name (default: {DEFAULT_MODEL} "
        f"with scenario {DEFAULT_SCENARIO})",
    )
    r.add_argument("--scenario", help="a scenario beside the model (scenarios/NAME.yaml) or a scenario file")
    r.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a parameter (repeatable)")
    r.add_argument("--t-span", nargs=2, type=float, metavar=("START", "STOP"), help="simulate from START to STOP")
    r.add_argument(
        "--extrapolate",
        action="store_true",
        help="run beyond the data of a series (held at its first or last value; recorded in the manifest and "
        "the report) instead of refusing",
    )
    _unbalanced_start_arg(
        r,
        "the run warns naming the rows and their sums at the start (also in the manifest), and gates every "
        "balance-sheet row on its change from its sum at the first step, so the dynamics are still checked",
    )
    r.add_argument("--method", help="rk4 (default), euler, or a solve_ivp method (RK45, LSODA, Radau, ...)")
    r.add_argument("--dt", type=float, help="fixed step (continuous time)")
    r.add_argument(
        "--out",
        help="run directory to write: a new or empty folder, or an earlier run, which is "
        "replaced once the new one is complete; never anything else "
        "(default: runs/<model>-<time>)",
    )
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out replace an earlier run even if files were added to it; "
        "never a folder that is not an sdmodel run",
    )
    r.add_argument("--no-figure", action="store_true", help="do not draw figure.png")
    r.add_argument(
        "--outputs",
        nargs="+",
        metavar="NAME",
        help="record only these outputs (stocks or equation variables, an imported model's cells as the file "
        "names them: 'stock[north]'; default: all)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress (compilation, steps) on stderr")

    k = sub.add_parser("calibrate", help="fit a model's parameters to history (config in calibration/)")
    k.add_argument("config", help="calibration config: a .yaml file or a name in calibration/ (japan, china)")
    k.add_argument(
        "--out",
        help="directory to write: a new or empty folder, or an earlier calibration, which is "
        "replaced once the new one is complete; never anything else "
        "(default: runs/calibrate-<name>-<time>)",
    )
    k.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out replace an earlier calibration even if files were added to it; "
        "never a folder that is not an sdmodel calibration",
    )
    k.add_argument("--seed", type=int, help="seed of the global search (default: the config's)")
    k.add_argument("--maxiter", type=int, help="generations of the global search (default: the config's)")
    k.add_argument("--popsize", type=int, help="population per free parameter (default: the config's)")
    k.add_argument("--local-nfev", type=int, help="iterations of the local refinement (0: none)")
    k.add_argument("--window", nargs=2, type=float, metavar=("START", "STOP"), help="years fitted")
    k.add_argument(
        "--out-of-sample",
        action="store_true",
        help="fit on the config's out_of_sample.fit years, starting from a random population "
        "(not from values fitted on the test years), and report the errors on its test years",
    )
    k.add_argument(
        "--random-start",
        action="store_true",
        help="start the global search from a seeded Latin-hypercube population over the bounds, not from the "
        "model's current values (a mode search that owes nothing to the shipped values)",
    )
    k.add_argument(
        "--install",
        action="store_true",
        help="also write the estimates into the scenario's parameter file (its default values)",
    )
    k.add_argument("--no-progress", action="store_true", help="no progress bar")

    es = sub.add_parser(
        "estimate",
        help="Bayesian estimation of a config's parameters: modes from prior draws, posterior, diagnostics",
    )
    es.add_argument("config", help="calibration config with priors: a .yaml file or a name (japan, china)")
    es.add_argument(
        "--out",
        help="directory to write; it keeps the work (modes, chain), so the same command resumes an interrupted "
        "estimation (default: runs/estimate-<name>-seed<seed>)",
    )
    for flag, what in (
        ("--seed", "seed of the starts, the mode search and the sampler"),
        ("--restarts", "CMA-ES restarts, each from a prior draw"),
        ("--maxiter", "generations of each restart"),
        ("--walkers", "walkers of the ensemble sampler (at least twice the estimated quantities)"),
        ("--steps", "steps of each walker"),
        ("--burn", "first steps dropped"),
        ("--thin", "keep every n-th step"),
    ):
        es.add_argument(flag, type=int, help=f"{what} (default: the config's estimate: settings)")
    es.add_argument(
        "--install",
        action="store_true",
        help="also write the posterior medians into the scenario's parameter file, with a pointer to the posterior",
    )
    es.add_argument(
        "--force", action="store_true", help="with --install: install even when the posterior has not converged"
    )
    es.add_argument(
        "--outputs",
        nargs="+",
        default=[],
        metavar="NAME",
        help="model outputs to report posterior bands of over the run (e.g. nl_firms nl_households)",
    )
    es.add_argument("--no-progress", action="store_true", help="no progress bars")

    va = sub.add_parser(
        "validate", help="rolling-origin out-of-sample forecasts of a config's targets against naive forecasts"
    )
    va.add_argument("config", help="calibration config with priors: a .yaml file or a name (japan, china)")
    va.add_argument("--origins", nargs="+", type=float, help="forecast origins (default: the config's validation:)")
    va.add_argument(
        "--out", help="directory to write; resumes an interrupted validation (default: runs/validate-<name>)"
    )
    va.add_argument("--seed", type=int, help="seed of the mode searches")
    va.add_argument("--restarts", type=int, help="CMA-ES restarts per origin")
    va.add_argument("--maxiter", type=int, help="generations of each restart")
    va.add_argument("--no-progress", action="store_true", help="no progress bars")

    dt = sub.add_parser("data", help="the calibration target data (calibration/data)")
    dsub = dt.add_subparsers(dest="data_command", required=True)
    db = dsub.add_parser("build", help="rebuild the compact CSVs from the publishers' files")
    db.add_argument(
        "src",
        help="folder with the source files (BIS WS_TC bulk CSV or the shared extracts; "
        "calibration/data/SOURCES.md lists them)",
    )
    db.add_argument("--out", default="calibration/data", help="where the CSVs go (default: calibration/data)")
    db.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")

    se = sub.add_parser("sensitivity", help="global sensitivity (SALib Sobol or Morris) of a study (studies/)")
    se.add_argument("study", help="study config: a .yaml file or a name in studies/ (japan, china)")
    se.add_argument("--method", choices=("sobol", "morris"), default="sobol", help="default: sobol")
    se.add_argument(
        "-N",
        type=int,
        default=1024,
        help="base sample size (Sobol: a power of two; Morris: trajectories); default 1024",
    )
    se.add_argument("--seed", type=int, default=1, help="seed of the sample and the bootstrap (default 1)")
    se.add_argument("--groups", action="store_true", help="indices of the factor groups declared in the study")
    se.add_argument("--second-order", action="store_true", help="also second-order Sobol indices (more runs)")
    se.add_argument("--levels", type=int, default=4, help="Morris grid levels (default 4)")
    se.add_argument("--dt", type=float, help="integration step (default: the study's solver.dt)")
    _scale_args(se)
    se.add_argument(
        "--out",
        help="study directory: new, empty, or this study's, which re-running resumes, "
        "computing only missing chunks; never a folder of anything else "
        "(default: runs/sensitivity-<study>-<method>-N<N>-seed<seed>)",
    )
    _posterior_args(se, "run the whole design at each draw; the indices are posterior medians with 90%% bands", 10)
    se.add_argument("--no-progress", action="store_true", help="no progress bar")

    sq = sub.add_parser("sequence", help="policy-sequencing grids of a study (studies/): tables and heat maps")
    sq.add_argument("study", help="study config: a .yaml file or a name in studies/ (japan, china)")
    sq.add_argument("--design", action="append", help="run only this design of the study's sequence: (repeatable)")
    _scale_args(sq)
    sq.add_argument(
        "--out",
        help="study directory: new, empty, or this study's, which re-running resumes; never "
        "a folder of anything else (default: runs/sequence-<study>)",
    )
    _posterior_args(
        sq,
        "run every rule at each draw; outcomes get posterior medians and 90%% bands, rules the probability of "
        "being best",
        100,
    )
    sq.add_argument("--no-progress", action="store_true", help="no progress bar")

    ex = sub.add_parser("export", help="write a model as a Vensim .mdl or XMILE file (PySD, Vensim, Stella)")
    ex.add_argument("model", help="model file, model folder or built-in model name")
    ex.add_argument("--scenario", help="a scenario beside the model (scenarios/NAME.yaml) or a scenario file")
    ex.add_argument("--to", required=True, choices=["vensim", "xmile"], help="file format")
    ex.add_argument(
        "--out",
        help="file to write, or a folder (an existing one, or a path ending in /) to write "
        "<model>[-<scenario>].mdl|.xmile in (default: that file here)",
    )

    tb = sub.add_parser("tables", help="a model's balance-sheet and transactions-flow matrices as Godley tables")
    tb.add_argument("model", help="model file, model folder or built-in model name")
    tb.add_argument("--scenario", help="a scenario beside the model (scenarios/NAME.yaml) or a scenario file")
    tb.add_argument("--format", default="md", choices=["text", "md", "latex", "html"], help="default: md")
    tb.add_argument("--out", help="file to write (default: print)")

    rp = sub.add_parser("report", help="one self-contained HTML report of a run, calibration or study directory")
    rp.add_argument("run_dir", help="a directory written by run, calibrate, sensitivity or sequence")
    rp.add_argument("--out", help="HTML file to write (default: RUN_DIR/report.html)")
    rp.add_argument("--year", type=float, help="year of the flow diagram of a run (default: its last)")

    rs = sub.add_parser("runs", help="list the run directories under a folder (default: runs/)")
    rs.add_argument("root", nargs="?", default="runs")

    df = sub.add_parser("diff", help="compare two run directories: settings, parameters and key outcomes")
    df.add_argument("a")
    df.add_argument("b")

    sub.add_parser("models", help="list the built-in models")
    for spans in (k, es, va, se, sq):  # every other command that simulates over a span it reads from a file
        spans.add_argument(
            "--extrapolate",
            action="store_true",
            help="simulate beyond the data of a series of the model's scenario (held at its first or last value; "
            "recorded in the manifest) instead of refusing before any work",
        )
    for command in [*sub.choices.values(), *dsub.choices.values()]:
        _feedback_args(command, top=False)
    return p


def _scale_args(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--jobs",
        type=int,
        help="local processes for the numpy engine (default: one per core; 1: this process only); the fused "
        "kernel, the default where numba is installed, runs in this process on every core",
    )
    g.add_argument("--workers", type=int, help="run the chunks on a new local Dask cluster of this many workers")
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the chunks on the Dask scheduler at ADDRESS (its workers must see the same model files)",
    )
    p.add_argument("--chunk-size", type=int, help="runs per chunk (default: the study's, 2048)")


def _parse_sets(items):
    values, problems = {}, []
    for item in items:
        name, sep, val = item.partition("=")
        if not sep or not name.strip():
            problems.append(f"--set {item!r}: expected NAME=VALUE")
            continue
        try:
            values[name.strip()] = float(val)
        except ValueError:
            problems.append(f"--set {item!r}: {val!r} is not a number")
    if problems:
        raise SpecError(problems)
    return values


def _cmd_check(args, argv) -> int:
    from sdmodel.model.accounting import check_accounting
    from sdmodel.model.spec import load_model
    from sdmodel.report.views import check_text

    model = load_model(args.model, scenario=args.scenario)
    allow = True if args.allow_unbalanced_start else None  # (None: the model file's)
    report = check_accounting(model, throw=False, progress=_progress(args), allow_unbalanced_start=allow)
    from sdmodel.model.translate import SUFFIXES, import_report

    if Path(args.model).suffix.lower() in SUFFIXES and Path(args.model).is_file():  # what the import made of it
        print(import_report(args.model))
    print(check_text(model, report))
    if not report.ok:
        print(f"sdmodel: error: {model.source}: {report.error_message()}", file=sys.stderr)
        return 1
    return 0


def _progress(args) -> bool:
    """Whether a command shows its progress (on stderr): with ``--progress`` always; with ``--quiet`` or the
    command's ``--no-progress`` never; else when stderr is a terminal (not a log file or a pipe)."""
    if args.progress:
        return True
    if args.quiet or getattr(args, "no_progress", False):
        return False
    return sys.stderr.isatty()


def _fresh(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ...: a default ``--out`` never lands on an earlier run of the
    same second."""
    path, i = base, 1
    while os.path.lexists(path):
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


@contextlib.contextmanager
def _collector_paused():
    """The garbage collector off inside the block, as it was after it. For a short command whose garbage is
    bounded (one run): its collections would walk every object the libraries' imports made (numba, pandas,
    matplotlib; some 200,000), hundreds of times, a sixth of a warm ``sdmodel run``; what is freed by
    reference counting is freed all the same."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _cmd_run(args, argv) -> int:
    with _collector_paused():
        return _run(args, argv)


def _run(args, argv) -> int:
    from sdmodel.core.files import check_out_dir, hold_out_dir
    from sdmodel.engine.cache import cached_model
    from sdmodel.engine.simulation import SaveAt, Solver, simulate
    from sdmodel.report.rundirs import noting_warnings, write_simulation
    from sdmodel.report.views import figure_panels, history_figure

    name, scenario = args.model, args.scenario
    if name is None:
        name, scenario = DEFAULT_MODEL, scenario or DEFAULT_SCENARIO
    model = cached_model(name, scenario)  # unchanged files: the model recorded in the compile cache, no parsing
    if args.allow_unbalanced_start:
        model = dataclasses.replace(model, allow_unbalanced_start=True)
    sets = _parse_sets(args.set)
    if sets:
        model = model.with_params(sets)
    label = model.name + (f"-{model.scenario}" if model.scenario else "")
    out = args.out or _fresh(Path("runs") / f"{label}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    check_out_dir(out, "run", overwrite=args.overwrite)  # a bad --out fails now, not after the simulation

    def figure(tmp):
        if figure_panels(model, res.names):
            # by the model's names, as its report: block and history name them (not stock[north])
            frame = res.to_frame().rename(columns={label: n for n, label in res.labels.items()})
            (tmp / "figure.png").write_bytes(history_figure(model, frame))
        else:
            _figure(res, tmp / "figure.png")

    with hold_out_dir(out):  # a second command with this --out fails at once, not after replacing ours
        try:
            with noting_warnings() as noted:  # beyond its data, an unbalanced start: the manifest and report say so
                with warnings.catch_warnings():
                    if not args.extrapolate:  # refused before any work, unless asked for
                        warnings.simplefilter("error", ExtrapolationWarning)
                    res = simulate(
                        model,
                        t_span=args.t_span,
                        solver=Solver(method=args.method, dt=args.dt),
                        saveat=SaveAt(outputs=args.outputs),
                        throw=False,
                        progress=_progress(args),
                    )
        except ExtrapolationWarning as beyond:
            raise SpecError(
                f"{' '.join(str(beyond).split())}; or pass --extrapolate to run it all the same (the manifest "
                "and the report then say what was held)"
            ) from None
        path = write_simulation(
            out,
            model,
            res,
            command=["sdmodel", *argv],
            warnings=noted,
            also=None if args.no_figure else figure,
            overwrite=args.overwrite,
        )
    # the outputs the model's report: block puts first, else the first few (by name or label: res[...] takes both)
    keys = (args.outputs or [k for k in model.presentation.get("panels", {}) if k in res.names])[:6]
    shown = ", ".join(f"{k}={res[k][-1]:.6g}" for k in keys or res.columns[:6])
    print(f"{model.label}: t={res.t[0]:g}..{res.t[-1]:g} ({res.solver['method']}), at the end {shown}")
    print(
        f"stock-flow residual: max {res.max_residual:.2e} relative to the largest flow"
        + (
            " (balance-sheet rows: their change from their sums at the first step, an unbalanced start allowed)"
            if res.solver.get("allow_unbalanced_start")
            else ""
        )
    )
    print(
        f"wrote {path}/results.csv, variables.csv (what each of its {len(res.names) + 1} columns, the parameters "
        "and the residuals are, in which unit and sector), columns.csv (what each of its columns is), "
        "results.parquet, residuals.csv, manifest.json" + ("" if args.no_figure else ", figure.png")
    )
    if not res.success:
        print(f"sdmodel: error: {res.message}", file=sys.stderr)
        return 1
    return 0


def _figure(res, path):
    """figure.png of a run without observed history: its first eight series."""
    from sdmodel.report.plots import png_bytes, series_figure

    Path(path).write_bytes(png_bytes(series_figure(res.to_frame(), f"model {res.model}")))


def _refuse_beyond_data(args, model: str, scenario: str | None, t_span=None, dt: float | None = None) -> None:
    """Refuse, before any work, a command whose runs would go beyond the data of a series of the model's
    scenario, naming the series and the way out (``--extrapolate``); the same rule as ``sdmodel run``."""
    if args.extrapolate:
        return
    from sdmodel.core.options import Solver
    from sdmodel.engine.compiler import compile_model
    from sdmodel.engine.simulation import beyond_data
    from sdmodel.model.spec import load_model

    beyond = beyond_data(compile_model(load_model(model, scenario)), t_span, Solver(dt=dt))
    if beyond is not None:
        raise SpecError(
            f"{' '.join(str(beyond).split())}; or pass --extrapolate to run it all the same (the manifest then "
            "says what was held)"
        )


def _config_within_data(args, config):
    """The calibration config of ``config`` (a path or name), refused before any work when the scenario's
    runs would go beyond the data of its series (:func:`_refuse_beyond_data`)."""
    from sdmodel.estimate.calibration import load_config

    cfg = load_config(config)
    _refuse_beyond_data(args, cfg.model, cfg.scenario)
    return cfg


def _study_within_data(args, study):
    """The study config of ``study``, refused before any work when its runs would go beyond the data."""
    import time

    from sdmodel.model.checks import progress_line
    from sdmodel.study.base import load_study

    started = time.perf_counter()
    if _progress(args):
        progress_line(f"reading the study {study} and compiling its model (once; cached after)")
    cfg = load_study(study)
    if _progress(args):
        progress_line(f"read the study {cfg.name} ({cfg.model}) in {time.perf_counter() - started:.1f} s")
    _refuse_beyond_data(args, cfg.model, cfg.scenario, cfg.t_span, getattr(args, "dt", None) or cfg.dt)
    return cfg


def _cmd_calibrate(args, argv) -> int:
    from sdmodel.core.files import check_out_dir, hold_out_dir
    from sdmodel.estimate.calibration import calibrate
    from sdmodel.report.rundirs import install_parameters, noting_warnings, write_calibration

    cfg = _config_within_data(args, args.config)
    tag = Path(cfg.source).stem + ("-oos" if args.out_of_sample else "")
    out = args.out or _fresh(Path("runs") / f"calibrate-{tag}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    check_out_dir(out, "calibration", overwrite=args.overwrite)  # now, not after a long fit
    window = args.window
    if args.out_of_sample:
        if cfg.out_of_sample is None:
            raise SpecError(f"--out-of-sample: the config {cfg.source} has no out_of_sample: {{fit, test}}")
        window = cfg.out_of_sample[0]
    command = ["sdmodel", *argv]
    with hold_out_dir(out):  # a second command with this --out fails at once, not after a long fit
        search = {
            k: v
            for k, v in (
                ("seed", args.seed),
                ("maxiter", args.maxiter),
                ("popsize", args.popsize),
                ("local_nfev", args.local_nfev),
            )
            if v is not None
        }
        with noting_warnings() as noted:  # runs beyond the data (--extrapolate): the manifest says so
            res = calibrate(
                cfg,
                window=window,
                search=search,
                start="random" if (args.out_of_sample or args.random_start) else "current",
                progress=_progress(args),
            )
        path = write_calibration(out, res, command=command, overwrite=args.overwrite, warnings=noted)
    print(res.summary())
    print(f"wrote {path}/params.yaml, report.json, report.txt, fit.csv, fit.png, manifest.json")
    if args.install:
        print(f"installed the estimates in {install_parameters(res, command)}")
    return 0


def _cmd_estimate(args, argv) -> int:
    from sdmodel.report.rundirs import ESTIMATION_FILES, run_estimate

    names = ("seed", "restarts", "maxiter", "walkers", "steps", "burn", "thin")
    settings = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    res = run_estimate(
        _config_within_data(args, args.config),
        out=args.out,
        settings=settings,
        install=args.install,
        force=args.force,
        outputs=args.outputs,
        progress=_progress(args),
        command=["sdmodel", *argv],
    )
    print(res.summary())
    from sdmodel.report.rundirs import estimation_dir

    out = args.out or estimation_dir(res.config, int(res.settings["seed"]))
    print(
        f"wrote {out}/{', '.join(f for f in ESTIMATION_FILES if f != 'facts.csv' or res.facts is not None)}, "
        "manifest.json"
    )
    if args.install:
        print("installed the posterior medians in the scenario's parameter file")
    return 0


def _cmd_validate(args, argv) -> int:
    from sdmodel.report.rundirs import run_validate, validation_dir

    settings = {k: getattr(args, k) for k in ("seed", "restarts", "maxiter") if getattr(args, k) is not None}
    res = run_validate(
        _config_within_data(args, args.config),
        out=args.out,
        origins=args.origins,
        settings=settings,
        progress=_progress(args),
        command=["sdmodel", *argv],
    )
    print(res.summary())
    print(
        f"wrote {args.out or validation_dir(res.config)}/skill.csv, forecasts.csv, modes.csv, summary.txt, "
        "forecasts.png, manifest.json"
    )
    return 0


def _cmd_sensitivity(args, argv) -> int:
    from sdmodel.report.rundirs import run_sensitivity
    from sdmodel.study.sensitivity import Design

    design = Design(
        method=args.method,
        N=args.N,
        seed=args.seed,
        second_order=args.second_order,
        levels=args.levels,
        groups=args.groups,
    )
    res = run_sensitivity(
        _study_within_data(args, args.study),
        design,
        out=args.out,
        execution=_study_execution(args),
        dt=args.dt,
        command=["sdmodel", *argv],
        posterior=args.posterior,
        draws=args.draws,
    )
    print(res.summary())
    print(
        f"wrote {res.store}/indices.csv, indices.parquet, indices_time.csv, indices_time.parquet, samples.parquet, "
        f"indices.png, indices_time.png, summary.txt, manifest.json"
    )
    return 0


def _study_execution(args):
    """Where a study's chunks run, from --jobs/--workers/--scheduler/--chunk-size (default: one process per core)."""
    from sdmodel.core.options import Execution

    on_dask = args.workers is not None or args.scheduler is not None
    jobs = args.jobs if args.jobs is not None else (1 if on_dask else os.cpu_count() or 1)
    return Execution(
        jobs=jobs,
        workers=args.workers,
        scheduler=args.scheduler,
        chunk_size=args.chunk_size,
        progress=_progress(args),
    )


def _cmd_sequence(args, argv) -> int:
    from sdmodel.report.rundirs import run_sequence, sequence_files

    res = run_sequence(
        _study_within_data(args, args.study),
        designs=args.design,
        out=args.out,
        execution=_study_execution(args),
        command=["sdmodel", *argv],
        posterior=args.posterior,
        draws=args.draws,
    )
    print(res.summary())
    print(f"wrote {res.store}: {', '.join(sequence_files(res))}")
    return 0


def _cmd_data(args, argv) -> int:
    from sdmodel.data.readers import build

    rep = build(args.src, args.out, check=args.check)
    print(f"BIS total credit read from {rep.bis_file}")
    for k, v in rep.info.items():
        print(f"{k} = {v!r}")
    for f in rep.files:
        state = (
            ("DIFFERS" if f in rep.differ else "identical")
            if args.check
            else ("written" if f in rep.written else "unchanged")
        )
        print(f"{Path(args.out) / f}: {state}")
    return 0 if rep.ok else 1


def _cmd_export(args, argv) -> int:
    from sdmodel.interop.export import write_export
    from sdmodel.model.spec import load_model

    model = load_model(args.model, scenario=args.scenario)
    out = args.out
    if out:
        # A path ending in a separator names a folder (the file goes inside), as an existing folder does;
        # either way a missing folder is created.
        folder = out.endswith(("/", os.sep) + ((os.altsep,) if os.altsep else ()))
        _make_folder(Path(out) if folder else Path(out).parent)
    path = write_export(model, args.to, out)
    print(
        f"wrote {path} ({model.label}: {len(model.stocks)} stocks, {len(model.parameters)} parameters, "
        f"{len(model.series)} series; {args.to})"
    )
    return 0


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise OutputError(f"{path} is a file, expected a folder: choose another --out") from err
    except OSError as err:
        raise OutputError(f"cannot create the folder {path} ({err.strerror or err}): choose another --out") from err


def _cmd_tables(args, argv) -> int:
    from sdmodel.core.files import write_atomic_file
    from sdmodel.model.spec import load_model
    from sdmodel.report.views import model_tables

    text = model_tables(load_model(args.model, scenario=args.scenario), args.format)
    if args.out:
        print(f"wrote {write_atomic_file(args.out, text.encode())}")
    else:
        print(text, end="")
    return 0


def _cmd_report(args, argv) -> int:
    from sdmodel.report.views import build_report

    path = build_report(args.run_dir, args.out, year=args.year, progress=_progress(args))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, figures embedded; open it in a browser)")
    return 0


def _cmd_runs(args, argv) -> int:
    from sdmodel.report.views import list_runs

    rows = list_runs(args.root)
    if not rows:
        print(f"no run directories under {args.root}")
        return 0
    w = max(len(r["path"]) for r in rows)
    print(f"{'directory'.ljust(w)}  {'kind':11s}  {'what':14s}  {'created':25s}  headline")
    for r in rows:
        print(f"{r['path'].ljust(w)}  {r['kind']:11s}  {r['what'][:14]:14s}  {r['created']:25s}  {r['headline']}")
    return 0


def _cmd_diff(args, argv) -> int:
    from sdmodel.report.views import diff_text

    print(diff_text(args.a, args.b))
    return 0


def _cmd_models(args, argv) -> int:
    from sdmodel.model.spec import builtin_models, load_model, scenarios

    for name in builtin_models():
        m = load_model(name)
        sc = scenarios(name)
        print(f"{name:16s} {m.time.mode:10s} {' '.join(m.description.split())[:90]}")
        if sc:
            print(f"{'':16s} scenarios: {', '.join(sc)}")
    return 0


_COMMANDS = {
    "check": _cmd_check,
    "run": _cmd_run,
    "calibrate": _cmd_calibrate,
    "estimate": _cmd_estimate,
    "validate": _cmd_validate,
    "data": _cmd_data,
    "sensitivity": _cmd_sensitivity,
    "sequence": _cmd_sequence,
    "export": _cmd_export,
    "tables": _cmd_tables,
    "report": _cmd_report,
    "runs": _cmd_runs,
    "diff": _cmd_diff,
    "models": _cmd_models,
}


def _one_line_warnings(show):
    """A ``warnings.showwarning`` that prints sdmodel's own warnings as one line on stderr
    (``sdmodel: warning: ...``) and passes the others to ``show``."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (ExtrapolationWarning, UnbalancedStartWarning, CacheWarning)):
            print(f"sdmodel: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sdmodel`` command; returns the exit code.

    Called as the program (``argv`` None: the ``sdmodel`` command, ``python -m sdmodel``), it leaves the
    objects it made to the end of the process instead of the garbage collector: the collections Python
    runs while it shuts down would otherwise walk every object numba, pandas and matplotlib made, a
    third of a second or more after the command's work is done (the files are written and closed by
    then, and the process's memory goes back to the system whole)."""
    code = _main(argv)
    if argv is None:
        gc.freeze()
    return code


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.quiet and args.progress:
        parser.error("--quiet and --progress contradict each other: give one")
    try:
        with using_cache_dir(user_cache_dir()), warnings.catch_warnings():  # compiled models are reused
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            if not sys.warnoptions:  # shown once per message, unless the user chose otherwise (python -W)
                warnings.simplefilter("default", ExtrapolationWarning)
                warnings.simplefilter("default", UnbalancedStartWarning)
            return _COMMANDS[args.command](args, argv)
    except SdmodelError as err:
        if args.debug:
            raise
        msg = " ".join(str(err).split())
        print(f"sdmodel: error: {msg}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`sdmodel models | head`): stop quietly, as Unix tools do, and keep
        # Python from reporting the pipe again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
