"""Calibration: recovery of known parameters, reproducibility, config errors, parameter files, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sdmodel
from sdmodel.estimate.priors import Prior
from sdmodel import cli
from sdmodel.estimate.calibration import (
    SEARCH_DEFAULTS,
    CalibrationConfig,
    FreeParameter,
    Problem,
    Target,
    fit_statistics,
    _turning_points,
    calibrate,
    load_config,
)
from sdmodel.core.errors import SpecError
from sdmodel.report.rundirs import install_parameters

ROOT = Path(__file__).resolve().parents[1]
TRUE = dict(alpha1=0.65, alpha2=0.35, theta=0.25)


def synthetic(noise=1.0, seed=3):
    """SIM's income and consumption from TRUE, with normal noise of sd ``noise``."""
    res = sdmodel.simulate("sim", params=TRUE, saveat=sdmodel.SaveAt(t_eval=np.arange(0, 61.0)))
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"t": res.t, "Y": res["Y"] + noise * rng.standard_normal(len(res.t)),
                         "C": res["C"] + noise * rng.standard_normal(len(res.t))})


def sim_config(**search):
    return CalibrationConfig(
        source="<test>", model="sim", scenario=None, data=Path("."), time_column="t", window=(0, 40),
        targets=(Target("Y", "Y"), Target("C", "C")),
        parameters=(FreeParameter("alpha1", 0.4, 0.9), FreeParameter("alpha2", 0.1, 0.6),
                    FreeParameter("theta", 0.1, 0.4)),
        search=dict(SEARCH_DEFAULTS, **{"maxiter": 15, "popsize": 6, **search}))


@pytest.fixture(scope="module")
def recovered():
    return calibrate(sim_config(), data=synthetic())


def test_recovery_within_reported_uncertainty(recovered):
    for name, true in TRUE.items():
        est, se = recovered.params[name], recovered.se[name]
        assert 0 < se < 0.05, (name, se)          # identified, and the data pin it down
        assert abs(est - true) <= 3 * se, (name, est, true, se)


def test_recovery_is_exact_without_noise():
    res = calibrate(sim_config(), data=synthetic(noise=0.0))
    for name, true in TRUE.items():
        assert res.params[name] == pytest.approx(true, abs=1e-6)
    assert res.fit.loc["Y", "rmse"] < 1e-6


def test_fit_statistics_and_out_of_sample(recovered):
    fit, test = recovered.fit, recovered.test
    assert list(fit.index) == ["Y", "C"] and (fit["n"] == 41).all()
    assert (fit["rmse"].between(0.7, 1.4)).all()  # the noise has sd 1
    assert recovered.test_window == (41, 60) and (test["n"] == 20).all()
    assert (test["rmse"] < 2).all()
    # R2 is 1 - SSE/SST on the data actually used
    d = recovered.paths[(recovered.paths.target == "Y") & (recovered.paths.year <= 40)]
    sse, sst = ((d.model - d.data) ** 2).sum(), ((d.data - d.data.mean()) ** 2).sum()
    assert fit.loc["Y", "r2"] == pytest.approx(1 - sse / sst)
    assert set(recovered.turning_points.columns) == {"data_peak", "model_peak", "data_trough", "model_trough"}


def test_same_seed_same_result_and_summary(recovered):
    again = calibrate(sim_config(), data=synthetic())
    assert again.params == recovered.params
    text = recovered.summary()
    assert "alpha1" in text and "out of sample" in text
    json.dumps(recovered.to_dict(), default=float)


def test_random_start_recovers_too_and_bad_start_is_refused():
    res = calibrate(sim_config(), data=synthetic(noise=0.0), start="random")
    assert res.params["theta"] == pytest.approx(TRUE["theta"], abs=1e-6)
    assert res.search["start"] == "random"
    with pytest.raises(SpecError, match="start: expected 'current' or 'random'"):
        calibrate(sim_config(), data=synthetic(), start="middle")


def test_weight_zero_target_is_reported_not_fitted():
    """A weight-0 target (a series to watch) changes neither the loss nor the estimates, and is reported."""
    cfg = sim_config()
    data = synthetic()
    data["C"] = data["C"] + 50.0       # a watched series the model cannot meet
    watched = CalibrationConfig(**{**cfg.__dict__, "targets": (Target("Y", "Y"), Target("C", "C", weight=0.0))})
    only_y = CalibrationConfig(**{**cfg.__dict__, "targets": (Target("Y", "Y"),)})
    a, b = calibrate(watched, data=data), calibrate(only_y, data=data)
    assert a.params == b.params and a.cost == b.cost and a.se == b.se
    assert list(a.fit.index) == ["Y", "C"] and a.fit.loc["C", "weight"] == 0
    assert a.fit.loc["C", "bias"] == pytest.approx(-50, abs=1)
    assert "C" in a.test.index and "C" in set(a.paths.target)
    assert "weight 0, reported but not fitted: C" in a.summary()


def test_all_targets_weight_zero_is_refused(tmp_path):
    p = write_config(tmp_path, GOOD.replace("Y: {weight: 1}", "Y: {weight: 0}"))
    with pytest.raises(SpecError, match="every target has weight 0"):
        load_config(p)


def test_priors_pull_towards_their_mean():
    cfg = sim_config(local_nfev=30)
    strong = CalibrationConfig(**{**cfg.__dict__, "parameters": (
        FreeParameter("alpha1", 0.4, 0.9, prior=Prior("normal", (("loc", 0.5), ("scale", 0.001)), "a test")),
        *cfg.parameters[1:])})
    res = calibrate(strong, data=synthetic())
    assert res.params["alpha1"] == pytest.approx(0.5, abs=0.01)


def write_config(tmp_path, text, data=None):
    (tmp_path / "data.csv").write_text((data if data is not None else synthetic()).to_csv(index=False))
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


GOOD = """\
model: sim
data: data.csv
time_column: t
window: [0, 40]
targets:
  Y: {weight: 1}
parameters:
  alpha1: {bounds: [0.4, 0.9]}
search: {maxiter: 3, popsize: 4, local_nfev: 3}
"""


def test_config_errors_are_reported_all_at_once(tmp_path):
    p = write_config(tmp_path, """\
model: sim
data: data.csv
window: [40, 0]
bogus: 1
targets:
  Y: {weight: -1}
parameters:
  alpha1: {bounds: [0.9, 0.4]}
  theta: {bounds: [0.1, 0.3], prior: [0.2, 0]}
search: {popsize: many, maxiter: null}
""")
    with pytest.raises(SpecError) as e:
        load_config(p)
    msg = str(e.value)
    for part in ("c.yaml", "bogus", "window", "start < stop", "targets.Y", "positive",
                 "parameters.alpha1.bounds", "parameters.theta.prior", "search.popsize", "search.maxiter"):
        assert part in msg, part


def test_unknown_names_in_config_name_the_model_and_data(tmp_path):
    p = write_config(tmp_path, GOOD.replace("Y: {weight: 1}", "Y: {weight: 1}\n  Z: {column: nope}")
                     .replace("alpha1:", "alpha9:"))
    with pytest.raises(SpecError, match=r"(?s)no column 'nope'.*no output 'Z'.*no parameter 'alpha9'"):
        calibrate(p)


def test_unknown_config_name():
    with pytest.raises(SpecError, match="no calibration config 'atlantis'.*japan"):
        load_config("atlantis")


def test_shipped_configs_load_and_match_their_models():
    for name in ("japan", "china"):
        cfg = load_config(name)
        assert cfg.data.is_file() and cfg.out_of_sample is not None
        assert cfg.penalty is None or Path(cfg.penalty.rsplit(":", 1)[0]).is_file()
        model = sdmodel.load_model(cfg.model, scenario=cfg.scenario)
        for p in cfg.parameters:
            assert p.name in model.parameters
            assert p.lower <= model.parameters[p.name].value <= p.upper, p.name  # the start lies in the box


# issue 26 re-specified the model and re-estimated Japan with 15 parameters and no fact penalties (China's
# parameters re-installed by its own calibration under the new equations): neither fit meets these bounds now;
# measured values in the marks (models/bsr/README.md, Status). Strict: a fit that meets them again is an error
# until the mark goes.
@pytest.mark.parametrize("name, bounds", [
    pytest.param("japan", dict(hh_debt_gdp=6, firm_debt_gdp=6, gov_debt_gdp=12), marks=pytest.mark.xfail(
        strict=True, reason="issue 26: RMSE household debt 6.3, firm debt 13.4, government debt 12.9 (1980-2019)")),
    pytest.param("china", dict(hh_debt_gdp=6, firm_debt_gdp=6, gov_debt_gdp=6), marks=pytest.mark.xfail(
        strict=True, reason="issue 26 (China variant bsr_china, 2001-2023, posterior medians): RMSE household debt 10.8, firm debt 11.5, "
        "government debt 6.5"))])
def test_shipped_fits_meet_the_targets_of_issue_4(name, bounds):
    """The installed estimates, over each config's window: debt/GDP RMSE within the bounds (points of GDP),
    and Japan's firm-debt peak within two years of the data's."""
    cfg = load_config(name)
    prob = Problem(cfg)
    paths = prob.simulate([prob.model.parameters[n].value for n in prob.names])
    assert paths["ok"][0]
    rmse = fit_statistics(prob, paths, cfg.window).rmse   # the fit report's own statistics
    for target, bound in bounds.items():
        assert rmse[target] <= bound, (target, rmse[target])
    if name == "japan":
        peaks = _turning_points(prob, paths, cfg.window).loc["firm_debt_gdp"]
        assert abs(peaks.model_peak - peaks.data_peak) <= 2


# ----------------------------------------------------------------------------- parameter files
@pytest.fixture()
def sim_with_scenario(tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(ROOT / "models" / "sim", d)
    (d / "scenarios").mkdir(exist_ok=True)
    (d / "scenarios" / "fit.yaml").write_text("parameter_file: fit.params.yaml\ntime: {stop: 60}\n")
    (d / "scenarios" / "fit.params.yaml").write_text("parameters:\n  alpha1: 0.5\n  G: 21\n")
    return d


def test_scenario_reads_its_parameter_file_and_refuses_a_double_setting(sim_with_scenario):
    d = sim_with_scenario
    m = sdmodel.load_model(d, scenario="fit")
    assert m.parameters["alpha1"].value == 0.5 and m.parameters["G"].value == 21
    (d / "scenarios" / "fit.yaml").write_text("parameter_file: fit.params.yaml\nparameters: {alpha1: 0.7}\n")
    with pytest.raises(SpecError, match="alpha1 are set both here and in the parameter file"):
        sdmodel.load_model(d, scenario="fit")
    (d / "scenarios" / "fit.params.yaml").write_text("parameters:\n  alpha1: lots\n")
    with pytest.raises(SpecError, match=r"fit.params.yaml.*parameters.alpha1.*expected a number"):
        sdmodel.load_model(d, scenario="fit")


def test_install_writes_the_scenario_parameter_file(sim_with_scenario, tmp_path):
    d = sim_with_scenario
    cfg = CalibrationConfig(**{**sim_config().__dict__, "model": str(d), "scenario": "fit"})
    res = calibrate(cfg, data=synthetic())
    path = install_parameters(res, ["sdmodel", "calibrate", "test"])
    assert path == d / "scenarios" / "fit.params.yaml"
    m = sdmodel.load_model(d, scenario="fit")
    for name in TRUE:
        assert m.parameters[name].value == pytest.approx(res.params[name], rel=1e-5)
    assert m.parameters["G"].value == 21  # in the file but not estimated: kept
    (d / "scenarios" / "fit.yaml").write_text("parameter_file: fit.params.yaml\nparameters: {theta: 0.2}\n")
    with pytest.raises(sdmodel.SdmodelError, match="sets theta itself; move them to its parameter file"):
        install_parameters(res)


def test_cli_calibrate_writes_a_run_directory(tmp_path, capsys):
    p = write_config(tmp_path, GOOD)
    out = tmp_path / "run"
    assert cli.main(["calibrate", str(p), "--out", str(out), "--no-progress", "--window", "0", "30"]) == 0
    printed = capsys.readouterr().out
    assert "out of sample 31-60" in printed and f"wrote {out}" in printed
    for f in ("params.yaml", "report.json", "report.txt", "fit.csv", "fit.png", "manifest.json"):
        assert (out / f).stat().st_size > 0, f
    rep = json.loads((out / "report.json").read_text())
    assert rep["window"] == [0, 30] and rep["out_of_sample"]["window"] == [31, 60]
    man = json.loads((out / "manifest.json").read_text())
    assert {"config_hash", "data_hash", "spec_hash", "seed", "versions", "command"} <= set(man)


def test_cli_calibrate_random_start(tmp_path, capsys):
    """--random-start: the search starts from a Latin-hypercube population over the bounds, not the model's values."""
    p = write_config(tmp_path, GOOD)
    out = tmp_path / "run"
    assert cli.main(["calibrate", str(p), "--out", str(out), "--no-progress", "--random-start"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["search"]["start"] == "random"


def test_cli_out_of_sample_needs_the_config_section(tmp_path, capsys):
    p = write_config(tmp_path, GOOD)
    assert cli.main(["calibrate", str(p), "--out-of-sample", "--no-progress"]) == 1
    assert "has no out_of_sample" in capsys.readouterr().err


@pytest.mark.slow
def test_japan_calibration_runs_without_fact_penalties():
    """The shipped Japan config end to end, one tiny generation (the full run: sdmodel calibrate japan).
    Issue 26: no fact penalties in the objective (the facts are measured on the result), at most 15
    estimated parameters, each with a prior and its source. (This test pinned the penalties before.)"""
    cfg = load_config("japan")
    assert cfg.penalty is None
    assert len(cfg.parameters) <= 15 and all(p.prior is not None and p.prior.source for p in cfg.parameters)
    res = calibrate("japan", search={"maxiter": 1, "popsize": 1, "local_nfev": 1})
    assert set(res.params) == {p.name for p in cfg.parameters}
    assert np.isfinite(res.cost) and res.penalty == 0
    assert set(res.fit.index) >= {"hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp"}
