"""Bayesian estimation (sdmodel.estimate.priors, sdmodel.estimate.estimation): priors read from configs, the AR(1) Gaussian
likelihood against its closed form, the sampler's change of variables, recovery of known parameters,
resumption, and simulation-based calibration on Godley & Lavoie's PC model."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sdmodel
from sdmodel.estimate.calibration import Problem, load_config
from sdmodel.core.errors import ConfigError
from sdmodel.estimate.estimation import Posterior, ar1_loglik, estimate, recovery
from sdmodel.estimate.priors import DISTRIBUTIONS, read_prior
from sdmodel.core.validate import Problems

ROOT = Path(__file__).resolve().parents[1]

PRIORS = {
    "normal": ({"loc": 0.3, "scale": 0.1}, stats.norm(0.3, 0.1)),
    "truncnorm": ({"loc": 0.3, "scale": 0.1, "lower": 0.2, "upper": 0.6}, stats.truncnorm(-1, 3, 0.3, 0.1)),
    "lognorm": ({"s": 0.5, "scale": 2.0}, stats.lognorm(0.5, scale=2.0)),
    "gamma": ({"a": 2.0, "scale": 0.1}, stats.gamma(2.0, scale=0.1)),
    "beta": ({"a": 2.0, "b": 5.0, "lower": 0.1, "upper": 0.9}, stats.beta(2.0, 5.0, loc=0.1, scale=0.8)),
    "uniform": ({"lower": -1.0, "upper": 2.0}, stats.uniform(-1.0, 3.0)),
}


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_each_prior_is_the_scipy_distribution_it_names(dist):
    args, ref = PRIORS[dist]
    p = Problems("c.yaml")
    pr = read_prior(p, "k", {"dist": dist, **args, "source": "a test"})
    assert not p.items and pr is not None
    x = ref.ppf(np.linspace(0.01, 0.99, 9))
    np.testing.assert_allclose(pr.logpdf(x), ref.logpdf(x), rtol=1e-12)
    draws = pr.draw(2000, np.random.default_rng(0))
    lo, hi = ref.support()
    assert (draws >= lo).all() and (draws <= hi).all()
    assert abs(draws.mean() - ref.mean()) < 4 * ref.std() / math.sqrt(2000)


def test_bounds_truncate_a_prior():
    p = Problems()
    pr = read_prior(p, "k", {"dist": "normal", "loc": 0, "scale": 1, "source": "s"}).with_bounds((0.0, 1.0))
    assert pr.logpdf(-0.1) == -np.inf and pr.logpdf(1.1) == -np.inf and np.isfinite(pr.logpdf(0.5))
    d = pr.draw(5000, np.random.default_rng(1))
    assert d.min() >= 0 and d.max() <= 1
    assert pr.sd == pytest.approx(stats.truncnorm(0, 1).std(), rel=0.02)


BAD = """\
model: sim
data: d.csv
time_column: t
window: [0, 30]
targets:
  Y: {sd: 0}
  C: {sd: {dist: gamma, a: 2, scale: -1, source: x}, ar1: 1.5}
  YD: {ar1: 0.5}
parameters:
  alpha1: {prior: {dist: gama, a: 2, scale: 0.1, source: x}}
  alpha2: {prior: [0.4, 0.1]}
  theta: {bounds: [0.1, 0.3], prior: {dist: normal, loc: 0.9, scale: 0.01, source: x}}
  G: {prior: {dist: normal, loc: 20, scale: 1}}
estimate: {walkers: 0, stepz: 3}
"""


def test_a_bad_estimation_config_gets_one_error_with_every_problem_and_its_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(BAD)
    (tmp_path / "d.csv").write_text("t,Y,C,YD\n0,1,1,1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    for expected in [
        "bad.yaml",
        "targets.Y.sd (line 6): expected a positive number",
        "targets.C.sd.scale (line 7): expected a positive number, got -1",
        "targets.C.ar1 (line 7)",
        "targets.YD.ar1 (line 8): an AR(1) coefficient needs a measurement error",
        "parameters.alpha1.prior.dist (line 10)",
        "did you mean 'gamma'",
        "parameters.alpha2.prior (line 11): expected a mapping",
        "{dist: normal, loc: MEAN, scale: SD",
        "parameters.theta.prior (line 12): the prior normal(loc=0.9, scale=0.01) puts no mass inside the bounds",
        "parameters.G.prior.source (line 13): missing",
        "estimate.walkers (line 14)",
        "estimate.stepz (line 14): unknown key",
    ]:
        assert expected in msg, (expected, msg)


def test_ar1_likelihood_is_the_gaussian_density_of_its_covariance():
    """Against the multivariate normal with covariance sd^2 rho^|t_i - t_j|, gaps and uneven spacing included."""
    rng = np.random.default_rng(3)
    years = np.array([1.0, 2, 3, 4, 7, 8, 9, 9.5])
    e = rng.standard_normal((4, len(years)))
    sd, rho = np.array([0.5, 1.0, 2.0, 1.5]), np.array([0.0, 0.5, 0.3, 0.9])
    got = ar1_loglik(e, years, sd, rho)
    for b in range(4):
        cov = sd[b] ** 2 * rho[b] ** np.abs(years[:, None] - years[None, :])
        assert got[b] == pytest.approx(stats.multivariate_normal(np.zeros(len(years)), cov).logpdf(e[b]), rel=1e-10)
    yrs = years[:4]  # a negative coefficient over whole years
    cov = 1.0 * (-0.4) ** np.abs(yrs[:, None] - yrs[None, :])
    assert ar1_loglik(e[:1, :4], yrs, np.array([1.0]), np.array([-0.4]))[0] == pytest.approx(
        stats.multivariate_normal(np.zeros(4), cov).logpdf(e[0, :4]), rel=1e-10)
    assert ar1_loglik(np.array([[np.nan, 0.0]]), years[:2], sd[:1], rho[:1])[0] == -np.inf
    # the draws have that covariance
    from sdmodel.estimate.estimation import ar1_draw
    d = ar1_draw(years, np.full(20000, 2.0), np.full(20000, 0.7), np.random.default_rng(1))
    np.testing.assert_allclose(np.cov(d, rowvar=False), 4 * 0.7 ** np.abs(years[:, None] - years[None, :]), atol=0.12)


# ----------------------------------------------------------------------------- PC, synthetic data
CONFIG = """\
model: {model}
scenario: short
data: data.csv
time_column: t
window: [2, 40]
targets:
  Y: {{sd: 2.0}}
  Bh: {{sd: {{dist: lognorm, s: 0.5, scale: 2.0, source: test}}, ar1: 0.3}}
  C: {{weight: 0}}
parameters:
  alpha1: {{prior: {{dist: beta, a: 12, b: 8, source: test}}}}
  alpha2: {{prior: {{dist: beta, a: 8, b: 12, source: test}}}}
  theta: {{prior: {{dist: truncnorm, loc: 0.2, scale: 0.03, lower: 0.05, upper: 0.4, source: test}}}}
estimate: {{restarts: 3, popsize: 8, maxiter: 30, local_iter: 10, walkers: 16, steps: 160, burn: 60, thin: 2, draws: 60}}
"""
TRUE = {"alpha1": 0.6, "alpha2": 0.4, "theta": 0.2}


@pytest.fixture(scope="module")
def pc_config(tmp_path_factory):
    d = tmp_path_factory.mktemp("pc_est")
    shutil.copytree(ROOT / "models" / "pc", d / "pc")
    (d / "pc" / "scenarios").mkdir(exist_ok=True)
    (d / "pc" / "scenarios" / "short.yaml").write_text("time: {stop: 40}\n")
    res = sdmodel.simulate(sdmodel.load_model(d / "pc", scenario="short"), saveat=sdmodel.SaveAt(t_eval=range(1, 41)))
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"t": res.t, "Y": res["Y"] + rng.normal(0, 2, len(res.t)),
                       "Bh": res["Bh"] + rng.normal(0, 2, len(res.t)), "C": res["C"]})
    df.to_csv(d / "data.csv", index=False)
    (d / "pc.yaml").write_text(CONFIG.format(model="pc"))
    return d / "pc.yaml"


def test_the_sampler_space_maps_back_with_its_jacobian(pc_config):
    post = Posterior(Problem(load_config(pc_config)))
    X = post.draw_prior(5, np.random.default_rng(2))
    Z = post.to_z(X)
    X2, jac = post.from_z(Z)
    np.testing.assert_allclose(X2, X, rtol=1e-10)
    h = 1e-6  # the map is elementwise: log |dx/dz| is the sum of the log derivatives
    num = sum(np.log(np.abs((post.from_z(Z + h * np.eye(len(post.names))[j])[0][:, j] - X2[:, j]) / h))
              for j in range(len(post.names)))
    np.testing.assert_allclose(jac, num, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def pc_fit(pc_config, tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "est"
    return estimate(pc_config, store=store), store


def test_estimation_recovers_pc_and_reports_its_posterior(pc_fit):
    res, _ = pc_fit
    assert list(res.names) == ["alpha1", "alpha2", "theta", "sd.Bh"]
    for n, v in TRUE.items():
        lo, hi = res.table.loc[n, "q5"], res.table.loc[n, "q95"]
        sd = res.table.loc[n, "sd"]
        assert lo - 2 * sd <= v <= hi + 2 * sd, (n, v, lo, hi)
    assert (res.modes["restart"] == -1).sum() == 1 and (res.modes["restart"] >= 0).sum() == 3
    assert res.modes["log_posterior"].iloc[0] == res.modes["log_posterior"].max()
    assert set(res.idata.groups()) >= {"posterior", "prior", "posterior_predictive", "observed_data", "sample_stats"}
    assert res.idata.posterior["alpha1"].shape == (16, (160 - 60) // 2)
    assert set(res.predictive["target"]) == {"Y", "Bh", "C"}
    assert not res.predictive.loc[res.predictive["target"] == "C", "fitted"].any()
    # the data are what the model made plus noise of the stated size: the bands cover about 90% of them
    fitted = res.predictive[res.predictive["fitted"]]
    inside = ((fitted["data"] >= fitted["q5"]) & (fitted["data"] <= fitted["q95"])).mean()
    assert 0.7 <= inside <= 1.0
    text = res.summary()
    assert "CMA-ES restarts" in text and "r_hat" in text and "sd_ratio" in text


def test_an_interrupted_estimation_resumes_to_the_same_posterior(pc_config, pc_fit, tmp_path):
    res, store = pc_fit
    # the same store, asked for fewer steps, then for the full number: the chain is the one already sampled
    again = estimate(pc_config, store=store)
    np.testing.assert_array_equal(again.idata.posterior["alpha1"].values, res.idata.posterior["alpha1"].values)
    assert again.evaluations < res.evaluations / 4  # no mode search and no sampling: only the reporting runs
    part = tmp_path / "part"
    estimate(pc_config, store=part, settings={"steps": 100, "burn": 50})
    resumed = estimate(pc_config, store=part)
    np.testing.assert_allclose(resumed.idata.posterior["alpha1"].values, res.idata.posterior["alpha1"].values)


def test_a_comment_in_the_config_keeps_the_stored_estimation(pc_config, pc_fit):
    """The store's key is what the config says, not how its file is written: after a comment is added (and the
    keys reordered) the same call resumes the stored estimation; a changed setting is another estimation."""
    res, store = pc_fit
    text = pc_config.read_text()
    edited = pc_config.with_name("pc_commented.yaml")
    edited.write_text("# a note on the priors, added after the run\n" + text.replace("\n", "  # why\n", 1))
    assert load_config(edited).hash == load_config(pc_config).hash
    again = estimate(edited, store=store)
    assert again.evaluations == 0 or again.evaluations < res.evaluations / 4  # nothing sampled again
    np.testing.assert_allclose(again.table["q50"], res.table["q50"])
    changed = pc_config.with_name("pc_changed.yaml")
    changed.write_text(text.replace("window: [2, 40]", "window: [3, 40]"))
    assert load_config(changed).hash != load_config(pc_config).hash


def test_a_store_of_another_estimation_is_refused(pc_config, pc_fit):
    _, store = pc_fit
    with pytest.raises(sdmodel.SdmodelError, match="different study"):
        estimate(pc_config, store=store, settings={"seed": 2})


def test_settings_that_keep_no_draws_are_refused_before_any_work(pc_config):
    """--steps 4 with the config's burn-in and thinning kept no draw, and the sampler's summary then broke with a
    traceback (simulate_batch of no runs)."""
    with pytest.raises(ConfigError, match=r"estimate\.steps: 4 steps, the first 1 dropped, thinned by 2, leave 1 draws"):
        estimate(pc_config, settings={"steps": 4, "burn": 1})


def test_estimation_needs_priors_and_measurement_errors(tmp_path, pc_config):
    text = pc_config.read_text().replace("  Y: {sd: 2.0}", "  Y: {}").replace(
        "  Bh: {sd: {dist: lognorm, s: 0.5, scale: 2.0, source: test}, ar1: 0.3}", "  Bh: {}").replace(
        "alpha1: {prior: {dist: beta, a: 12, b: 8, source: test}}", "alpha1: {bounds: [0.3, 0.9]}")
    p = pc_config.parent / "noprior.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        estimate(p)
    assert "parameters.alpha1: no prior" in str(e.value) and "targets: no target has a measurement error" in str(e.value)


def _coverage_ok(k: int, n: int, p: float) -> bool:
    """``k`` of ``n`` inside a nominal-``p`` interval, within the central 99.8% of Binomial(n, p)."""
    lo, hi = stats.binom(n, p).ppf([0.001, 0.999])
    return lo <= k <= hi


def test_simulation_based_calibration_fast(pc_config):
    """Eight replications: true values drawn from the priors, data simulated with measurement errors, re-estimated;
    50% and 90% intervals cover the truths as often as a calibrated posterior does (binomial bounds). The full
    check (100 replications, uniform ranks) is test_simulation_based_calibration_full (slow)."""
    df = recovery(pc_config, replications=8, seed=5)
    n = len(df)
    assert n == 8 * 4
    assert _coverage_ok(int(df["in90"].sum()), n, 0.9), df
    assert _coverage_ok(int(df["in50"].sum()), n, 0.5), df


@pytest.mark.slow
def test_simulation_based_calibration_full(pc_config):
    df = recovery(pc_config, replications=100, seed=11, settings={"steps": 400, "burn": 150})
    n = len(df)
    assert _coverage_ok(int(df["in90"].sum()), n, 0.9) and _coverage_ok(int(df["in50"].sum()), n, 0.5)
    for q, g in df.groupby("quantity"):  # ranks uniform: Kolmogorov-Smirnov at the 0.1% level
        assert stats.kstest(g["rank"], "uniform").pvalue > 0.001, q


# ----------------------------------------------------------------------------- shipped configs
@pytest.mark.parametrize("name", ["japan", "china"])
def test_shipped_configs_declare_a_prior_with_its_source_for_every_parameter(name):
    cfg = load_config(name)
    for p in cfg.parameters:
        assert p.prior is not None and len(p.prior.source) > 20, p.name
        assert p.prior.support[0] <= p.lower and p.upper <= p.prior.support[1] or not p.bounded
    for t in cfg.targets:
        if t.fitted:
            assert t.sd is not None, t.name
    assert cfg.origins
    from sdmodel.estimate.calibration import load_function
    from sdmodel.engine.compiler import compile_model
    facts = load_function(cfg.facts, "facts")
    model = sdmodel.load_model(cfg.model, scenario=cfg.scenario)
    p = cfg.parameters[0].name
    held = facts(compile_model(model), np.array([[model.parameters[p].value]] * 2), [p])
    assert held and all(v.dtype == bool and v.shape == (2,) for v in held.values())


# ----------------------------------------------------------------------------- policy outcomes over a posterior
def fake_estimation(folder, draws: dict, model="bsr", scenario="japan"):
    """An estimation directory holding the given posterior draws (name -> (walkers, steps)) and its manifest."""
    from sdmodel.estimate.estimation import arviz
    from sdmodel.core.manifest import EstimationManifest

    folder.mkdir(parents=True)
    arviz().from_dict(posterior=draws).to_netcdf(str(folder / "posterior.nc"), engine="h5netcdf")
    (folder / "manifest.json").write_text(EstimationManifest(model=model, scenario=scenario).to_json())
    return folder


@pytest.mark.xfail(strict=True, reason="issue 26: in the re-estimated Japan model firm debt/GDP keeps rising to 2030 in "
                   "the no-consolidation run, so no rule of the timing grid starts while firms deleverage and the "
                   "finding has no band (models/bsr/README.md, Status); the machinery's other checks above it pass")
def test_sequencing_over_a_posterior(tmp_path):
    from sdmodel.report.rundirs import run_sequence
    from tests.test_sensitivity import write_study

    japan = sdmodel.load_model("bsr", scenario="japan")
    study = write_study(tmp_path)
    plain = run_sequence(study, out=tmp_path / "plain")
    # a posterior whose every draw is the scenario's values: medians and bands are the plain run's outcomes
    c_y, kappa = japan.parameters["c_y"].value, japan.parameters["kappa"].value
    same = fake_estimation(tmp_path / "same", {"c_y": np.full((2, 2), c_y), "kappa": np.full((2, 2), kappa),
                                               "sd.hh_debt_gdp": np.ones((2, 2))})
    r = run_sequence(study, out=tmp_path / "same-seq", posterior=same, draws=1)
    a, b = plain.tables["timing"], r.tables["timing"]
    np.testing.assert_allclose(b["multiplier"], a["multiplier"], rtol=1e-9)
    np.testing.assert_allclose(b["multiplier q5"], a["multiplier"], rtol=1e-9)
    # draws that differ: bands open, the probabilities of being best sum to one, the best rule says how sure it is
    rng = np.random.default_rng(0)
    spread = fake_estimation(tmp_path / "spread", {"c_y": c_y * (1 + 0.03 * rng.standard_normal((2, 3))),
                                                   "kappa": kappa * (1 + 0.2 * rng.standard_normal((2, 3)))})
    r = run_sequence(study, out=tmp_path / "spread-seq", posterior=spread, draws=4)
    tab = r.tables["timing"]
    assert (tab["multiplier q95"] >= tab["multiplier"]).all() and (tab["multiplier q5"] <= tab["multiplier"]).all()
    assert (tab["multiplier q95"] > tab["multiplier q5"]).any()
    assert tab["p_best"].sum() == pytest.approx(1.0)
    best = r.best["timing"]
    assert 0 <= best["p_beats_next"] <= 1 and best["next_best"] != best["label"]
    assert "90% band" in r.findings["timing"] and "posterior draws" in r.summary()
    man = json.loads((tmp_path / "spread-seq" / "manifest.json").read_text())
    assert man["posterior"] == {"source": str(spread), "draws": 4}


def test_a_posterior_of_another_scenario_is_refused(tmp_path):
    from sdmodel.report.rundirs import run_sequence
    from tests.test_sensitivity import write_study

    other = fake_estimation(tmp_path / "china", {"c_y": np.full((2, 2), 0.6)}, scenario="china")
    with pytest.raises(ConfigError, match="scenario china.*but the study runs bsr \\(scenario japan\\)"):
        run_sequence(write_study(tmp_path), out=tmp_path / "o", posterior=other)
    with pytest.raises(sdmodel.SdmodelError, match="not an sdmodel run directory"):
        run_sequence(write_study(tmp_path), out=tmp_path / "o", posterior=tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text('{"kind": "run"}')
    with pytest.raises(sdmodel.SdmodelError, match="a run directory, not an estimation"):
        run_sequence(write_study(tmp_path), out=tmp_path / "o", posterior=tmp_path / "run")


# ----------------------------------------------------------------------------- run folders, install, validation
def test_cli_estimate_writes_its_folder_and_installs_the_medians(pc_config, tmp_path, capsys):
    from sdmodel.cli import main

    out = tmp_path / "est"
    model_dir = pc_config.parent / "pc"
    (model_dir / "scenarios" / "short.yaml").write_text("time: {stop: 40}\nparameter_file: short.params.yaml\n")
    (model_dir / "scenarios" / "short.params.yaml").write_text("parameters:\n  G: 20\n")
    try:
        argv = ["estimate", str(pc_config), "--out", str(out), "--steps", "120", "--burn", "40", "--restarts", "2",
                "--no-progress", "--install", "--outputs", "V", "YD"]
        assert main(argv) == 1  # a short chain has not converged: nothing is installed without --force
        assert "not installed: the posterior has not converged" in capsys.readouterr().err
        assert not (model_dir / "scenarios" / "short.params.yaml").read_text().count("posterior")
        assert main([*argv, "--force"]) == 0  # the same folder: resumed, nothing sampled again
        printed = capsys.readouterr().out
        assert "CMA-ES restarts" in printed and "the scenario's current values score" in printed
        for f in ("posterior.nc", "summary.csv", "modes.csv", "predictive.csv", "fit.csv", "params.yaml",
                  "report.txt", "report.json", "bands.png", "prior_posterior.png", "pairs.png", "rank.png",
                  "manifest.json", "chain.h5", "modes.json", "output_bands.csv", "output_bands.png"):
            assert (out / f).stat().st_size > 0, f
        man = json.loads((out / "manifest.json").read_text())
        assert man["kind"] == "estimation" and set(man["parameters"]) == set(TRUE)
        bands = pd.read_csv(out / "output_bands.csv")
        assert set(bands["output"]) == {"V", "YD"} and (bands["q5"] <= bands["q95"]).all()
        assert main(["estimate", str(pc_config), "--out", str(tmp_path / "x"), "--outputs", "Vv"]) == 1
        assert "did you mean 'V'" in capsys.readouterr().err
        installed = sdmodel.load_model(model_dir, scenario="short")
        summary = pd.read_csv(out / "summary.csv", index_col=0)
        for n in TRUE:
            assert installed.parameters[n].value == pytest.approx(summary.loc[n, "q50"], rel=1e-5)
        assert installed.parameters["G"].value == 20  # in the file, not estimated: kept
        text = (model_dir / "scenarios" / "short.params.yaml").read_text()
        assert "posterior medians" in text and str(out / "posterior.nc") in text and "sdmodel estimate" in text
        assert "converged: false" in text
        # the posterior reads back for the studies
        from sdmodel.estimate.estimation import load_posterior
        sample = load_posterior(out, draws=10)
        assert sample.names == tuple(TRUE) and sample.X.shape == (10, 3)
        assert main(["runs", str(tmp_path)]) == 0 and "estimation" in capsys.readouterr().out
    finally:
        (model_dir / "scenarios" / "short.yaml").write_text("time: {stop: 40}\n")
        (model_dir / "scenarios" / "short.params.yaml").unlink()


def test_validation_scores_forecasts_against_naive_ones(pc_config, tmp_path):
    from sdmodel.estimate.estimation import naive_forecasts
    from sdmodel.report.rundirs import run_validate

    res = run_validate(pc_config, out=tmp_path / "val", origins=[20, 30], settings={"restarts": 2, "maxiter": 20})
    fc = res.forecasts
    assert set(fc["origin"]) == {20, 30} and (fc["horizon"] > 0).all()
    assert set(fc.loc[fc.origin == 30, "year"]) == set(range(31, 41))
    # the naive forecasts are those made from the data up to each origin
    y = pd.read_csv(pc_config.parent / "data.csv").set_index("t")["Y"]
    g = fc[(fc.origin == 20) & (fc.target == "Y")]
    ref = naive_forecasts(y.index.to_numpy(float), y.to_numpy(), 20, g["year"].to_numpy())
    np.testing.assert_allclose(g["no change"], ref["no change"])
    np.testing.assert_allclose(g["trend"], ref["trend"])
    np.testing.assert_allclose(g["AR(1)"], ref["AR(1)"])
    assert (g["no change"] == y.loc[20]).all()
    sk = res.skill.loc[("Y", "all")]
    assert sk["skill"] == pytest.approx(sk["model"] / min(sk["no change"], sk["trend"], sk["AR(1)"]))
    for f in ("skill.csv", "forecasts.csv", "modes.csv", "summary.txt", "forecasts.png", "manifest.json"):
        assert (tmp_path / "val" / f).stat().st_size > 0
    # the origins are kept as they finish: a second call computes none
    again = run_validate(pc_config, out=tmp_path / "val", origins=[20, 30], settings={"restarts": 2, "maxiter": 20})
    pd.testing.assert_frame_equal(again.forecasts, fc)
    with pytest.raises(ConfigError, match="fewer than five years"):
        run_validate(pc_config, out=tmp_path / "v2", origins=[3])


def test_validation_leaves_out_a_target_not_yet_observed_at_an_origin(pc_config, tmp_path):
    """A fitted target whose data begin after an origin (China's central-government debt: 2020-) is left out
    of that origin's fit, and said so, instead of refusing the whole validation."""
    from sdmodel.report.rundirs import run_validate

    d = tmp_path / "late"
    shutil.copytree(pc_config.parent, d)
    df = pd.read_csv(d / "data.csv")
    df.loc[df.t < 25, "Bh"] = np.nan  # Bh observed from t = 25 only
    df.to_csv(d / "data.csv", index=False)
    res = run_validate(d / "pc.yaml", out=tmp_path / "val", origins=[20, 30], settings={"restarts": 2, "maxiter": 10})
    assert list(res.modes["not_fitted"]) == ["Bh", ""]
    assert "origin 20: not fitted (no observation up to it): Bh" in res.summary()
    assert set(res.forecasts.loc[res.forecasts.target == "Bh", "origin"]) == {30}


def test_sensitivity_over_a_posterior(tmp_path):
    from sdmodel.report.rundirs import run_sensitivity
    from sdmodel.study.sensitivity import Design
    from tests.test_sensitivity import write_study

    japan = sdmodel.load_model("bsr", scenario="japan")
    study = write_study(tmp_path)
    design = Design(method="morris", N=4, seed=1, levels=4)
    plain = run_sensitivity(study, design, out=tmp_path / "plain")
    kappa = japan.parameters["kappa"].value
    same = fake_estimation(tmp_path / "same", {"kappa": np.full((1, 2), kappa)})
    r = run_sensitivity(study, design, out=tmp_path / "same-s", posterior=same, draws=1)
    a = plain.indices.set_index(["outcome", "factor"])
    b = r.indices.set_index(["outcome", "factor"]).loc[a.index]
    np.testing.assert_allclose(b["mu_star"], a["mu_star"], rtol=1e-9)
    np.testing.assert_allclose(b["mu_star q5"], a["mu_star"], rtol=1e-9)
    spread = fake_estimation(tmp_path / "spread", {"kappa": kappa * np.array([[0.5, 1.5]])})
    r = run_sensitivity(study, design, out=tmp_path / "spread-s", posterior=spread, draws=2)
    ix = r.indices
    assert (ix["mu_star q5"] <= ix["mu_star"] + 1e-12).all() and (ix["mu_star q95"] >= ix["mu_star"] - 1e-12).all()
    assert (ix["mu_star q95"] > ix["mu_star q5"]).any()
    assert len(r.X) == 2 * len(plain.X) and "posterior draws" in r.summary()
    assert (tmp_path / "spread-s" / "draw-001" / "study.json").is_file()
    man = json.loads((tmp_path / "spread-s" / "manifest.json").read_text())
    assert man["posterior"]["draws"] == 2


def test_the_laplace_start_has_the_posteriors_scale(pc_config, pc_fit):
    """The walkers' start: the Laplace approximation at the posterior median has about the spread of the draws."""
    from sdmodel.estimate.estimation import laplace_covariance

    res, _ = pc_fit
    post = Posterior(Problem(load_config(pc_config)))
    x = np.array([res.table.loc[n, "q50"] for n in res.names])
    C = laplace_covariance(post, x)
    assert C is not None and np.allclose(C, C.T)
    draws = np.column_stack([res.idata.posterior[n].values.ravel() for n in res.names])
    np.testing.assert_allclose(np.sqrt(np.diag(C)), post.to_z(draws).std(axis=0), rtol=0.35)


def test_a_restart_whose_first_generation_fails_starts_again_from_another_draw(pc_config, monkeypatch):
    """Where every run of a restart's first population fails (a region of the prior where the model
    breaks down), CMA-ES would stop at once on a flat objective (China: 5 of 10 restarts did); the
    restart is started again from another prior draw instead."""
    from sdmodel.estimate import estimation

    post = Posterior(Problem(load_config(pc_config)))
    real = estimation._natural_lp
    calls = {"n": 0}

    def first_call_fails(p, Z):
        calls["n"] += 1
        out = real(p, Z)
        return np.full_like(out, -np.inf) if calls["n"] == 1 else out

    monkeypatch.setattr(estimation, "_natural_lp", first_call_fails)
    modes = estimation.find_modes(post, restarts=2, popsize=6, maxiter=4, local_iter=0, seed=3)
    assert all(np.isfinite(m.log_posterior) for m in modes)
    assert all(m.generations == 4 for m in modes)  # both ran their generations, from new starts
    fresh = estimation.find_modes(post, restarts=2, popsize=6, maxiter=4, local_iter=0, seed=3)
    assert {m.start for m in modes} != {m.start for m in fresh}  # restarts 0 and 1 were drawn again


class _Quadratic:
    """A stand-in posterior: log density -0.5 * z' A z in the standardised space (no model)."""

    def __init__(self, A):
        self.A = np.asarray(A, float)

    def to_z(self, x):
        return np.atleast_2d(np.asarray(x, float))

    def log_posterior_z(self, Z):
        Z = np.atleast_2d(Z)
        return -0.5 * np.einsum("bi,ij,bj->b", Z, self.A, Z)


def test_a_hessian_that_is_not_negative_definite_starts_the_walkers_at_the_priors_scale():
    """At a mode on a bound (or on a ridge) minus the Hessian has eigenvalues <= 0: the plain Laplace
    approximation does not exist; regularised, the curved direction keeps its scale and the others get
    the prior's (1 in the standardised space), instead of a tiny ball the walkers need thousands of
    steps to leave."""
    from sdmodel.estimate.estimation import laplace_covariance, laplace_start

    ridge = _Quadratic([[4.0, 0.0], [0.0, -0.2]])
    assert laplace_covariance(ridge, np.zeros(2)) is None
    C = laplace_covariance(ridge, np.zeros(2), regularise=True)
    np.testing.assert_allclose(C, np.diag([0.25, 1.0]), atol=1e-6)
    cov, how = laplace_start(ridge, np.zeros(2))
    np.testing.assert_allclose(cov, C)
    assert "regularised" in how
    bowl = _Quadratic([[4.0, 1.0], [1.0, 2.0]])
    cov, how = laplace_start(bowl, np.zeros(2))
    np.testing.assert_allclose(cov, np.linalg.inv(bowl.A), atol=1e-6)
    assert how == "the Laplace approximation"


def test_medians_that_are_no_typical_point_of_the_posterior_are_not_installed(pc_fit, tmp_path):
    """On a curved posterior the medians of the margins, taken together, can score far below every draw
    (measured on bsr's Japan posterior: -1729 against a mode of -1088): the report says so and
    --install refuses them without --force."""
    import dataclasses

    from sdmodel.core.errors import SdmodelError
    from sdmodel.report.rundirs import install_estimate

    res, _ = pc_fit
    assert res.median_lp is not None and res.draws_lp is not None
    assert res.draws_lp[0] <= res.draws_lp[1] <= res.draws_lp[2]
    assert res.median_typical  # PC's posterior is nearly Gaussian: its medians are a typical point
    assert "the posterior medians as one point" in res.summary()
    n, mid, share = res.chords  # PC's bulk is convex: midpoints of draws are typical points too
    assert n >= 40 and share < 0.25 and mid >= res.draws_lp[0]
    bad = dataclasses.replace(res, median_lp=res.draws_lp[0] - 50.0)
    assert not bad.median_typical and "NOT a typical point" in bad.summary()
    assert bad.to_dict()["median_typical"] is False
    with pytest.raises(SdmodelError, match="not a typical point"):
        # a converged chain (diagnostics set so), so that the medians are what refuses the install
        mixed = bad.table.assign(r_hat=1.0, ess_bulk=1000.0, tau=0.01)
        install_estimate(dataclasses.replace(bad, table=mixed), tmp_path, force=False)
