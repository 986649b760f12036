"""Simulation: both time modes, all methods, batch = single, failure flags, smooth switch timing."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from sdmodel import (
    AccountingError,
    Execution,
    SaveAt,
    SimulationError,
    Solver,
    SpecError,
    compile_model,
    load_model,
    model_from_dict,
    UnbalancedStartWarning,
    simulate,
    simulate_batch,
)
from sdmodel.model.spec import _read_yaml

from .conftest import NONLINEAR, UNBALANCED

NAMES = ["alpha1", "alpha2", "theta"]


def _sample(rng, n):
    return rng.uniform([0.5, 0.3, 0.15], [0.7, 0.5, 0.3], (n, 3))


@pytest.mark.parametrize("name", ["sim", "sim_discrete", "pc", "lp"])
def test_batch_equals_single_runs(name, rng):
    cm = compile_model(load_model(name))
    base = np.array([cm.model.parameters[p].value for p in ("alpha1", "alpha2")])
    X = base * rng.uniform(0.9, 1.05, (5, 2))
    batch = simulate_batch(cm, X, ["alpha1", "alpha2"])
    assert batch.success.all()
    for i in range(len(X)):
        single = simulate(cm, params={"alpha1": X[i, 0], "alpha2": X[i, 1]})
        np.testing.assert_allclose(batch.values[i], single.values, rtol=1e-12, atol=1e-12)


def test_batch_labels_and_xarray(rng):
    X = _sample(rng, 7)
    b = simulate_batch("sim", X, NAMES)
    assert b.values.shape == (7, 241, len(b.names))
    ds = b.to_xarray()
    assert isinstance(ds, xr.Dataset) and ds["Y"].dims == ("run", "t")
    np.testing.assert_array_equal(ds["param:theta"].values, X[:, 2])
    assert b.to_frame().index.names == ["run", "t"]
    assert b.run(3).params["theta"] == X[3, 2]
    assert (b.residuals < 1e-9).all()


def test_batch_accepts_dataframe_and_dict(rng):
    import pandas as pd
    X = _sample(rng, 4)
    a = simulate_batch("sim", X, NAMES)
    b = simulate_batch("sim", pd.DataFrame(X, columns=NAMES))
    c = simulate_batch("sim", {n: X[:, j] for j, n in enumerate(NAMES)})
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.values, c.values)


def test_batch_rejects_unknown_parameter():
    with pytest.raises(SpecError, match="not parameters of model 'sim': 'beta'"):
        simulate_batch("sim", np.ones((2, 1)), ["beta"])


def test_batch_rejects_non_finite_value():
    with pytest.raises(SpecError, match="row 1, column 'theta'"):
        simulate_batch("sim", np.array([[0.2], [np.nan]]), ["theta"])


def test_methods_agree_on_sim():
    exact = lambda t: 80 * (1 - np.exp(-(2 / 13) * t))  # noqa: E731
    for method, tol in (("rk4", 1e-7), ("euler", 2e-2), ("RK45", 1e-7), ("LSODA", 1e-6)):
        res = simulate("sim", solver=Solver(method=method))
        err = np.max(np.abs(res["Hh"] - exact(res.t)) / 80)
        assert err < tol, (method, err)


def test_euler_converges_at_first_order():
    exact = 80 * (1 - np.exp(-(2 / 13) * 10))
    e1 = abs(simulate("sim", (0, 10), solver=Solver(method="euler", dt=0.1))["Hh"][-1] - exact)
    e2 = abs(simulate("sim", (0, 10), solver=Solver(method="euler", dt=0.05))["Hh"][-1] - exact)
    assert 1.8 < e1 / e2 < 2.2


def test_rk4_converges_at_fourth_order():
    exact = 80 * (1 - np.exp(-(2 / 13) * 10))
    e1 = abs(simulate("sim", (0, 10), solver=Solver(dt=1.0))["Hh"][-1] - exact)
    e2 = abs(simulate("sim", (0, 10), solver=Solver(dt=0.5))["Hh"][-1] - exact)
    assert 12 < e1 / e2 < 20


def test_discrete_model_rejects_continuous_method():
    with pytest.raises(SpecError, match=r"discrete; method \(--method\) must be 'discrete'"):
        simulate("sim_discrete", solver=Solver(method="rk4"))


def test_t_span_and_t_eval():
    res = simulate("sim", (0, 10), saveat=SaveAt(t_eval=[0, 5, 10]))
    assert list(res.t) == [0, 5, 10]
    with pytest.raises(SpecError, match="not on the step grid"):
        simulate("sim", saveat=SaveAt(t_eval=[0.1]))
    with pytest.raises(SpecError, match="whole number of steps"):
        simulate("sim", t_span=(0, 10.1))


def test_simulate_does_not_mutate_model():
    m = load_model("sim")
    simulate(m, params={"theta": 0.3})
    assert m.parameters["theta"].value == 0.2


SWITCH = """
name: switch
sectors: [households, government]
time: {start: 0, stop: 30, dt: 0.25}
stocks: {Hh: 0, Hs: 0}
parameters:
  alpha1: 0.6
  alpha2: 0.4
  theta: 0.2
  G0: 20
  cut: 4
  t_consolidation: {value: 10, bounds: [5, 20], doc: when spending is cut}
equations:
  G: G0 - cut * step(t_consolidation)
  Y: C + G
  T: theta * Y
  YD: Y - T
  C: alpha1 * YD + alpha2 * Hh
balance_sheet:
  Money: {households: +Hh, government: -Hs}
transactions:
  Income: {households: "+Y - C", government: "-(Y - C)"}
  Taxes: {households: -T, government: +T}
  Change in money: {households: -d(Hh), government: +d(Hs)}
"""


def test_switch_timing_moves_results_smoothly():
    """A consolidation date that is a parameter moves the result continuously (no step-size noise)."""
    model = model_from_dict(_read_yaml(SWITCH, "switch"))
    tc = np.linspace(8.0, 9.0, 41)  # within and between grid points (dt = 0.25)
    b = simulate_batch(model, tc[:, None], ["t_consolidation"])
    y = b["Hh"][:, -1]
    d = np.diff(y)
    assert (d > 0).all()                      # later cut -> more money at the end, strictly
    # no jumps: a hard step would leave the result flat between grid points and jump at them
    # (increments of zero, then one of the whole grid interval); here they vary slowly
    assert d.max() / d.min() < 1.3
    assert np.all(np.abs(np.diff(d)) < 0.05 * d.mean())


def test_discrete_step_is_exact_at_integer_dates():
    text = SWITCH.replace("time: {start: 0, stop: 30, dt: 0.25}", "time: {mode: discrete, start: 1, stop: 30}")
    text = text.replace("C: alpha1 * YD + alpha2 * Hh", "C: alpha1 * YD + alpha2 * lag(Hh)")
    res = simulate(model_from_dict(_read_yaml(text, "switch_d")))
    g = res.to_frame()["G"]
    assert (g.loc[:9] == 20).all() and (g.loc[10:] == 16).all()




def test_nonlinear_block_solved_by_newton_per_step():
    model = model_from_dict(_read_yaml(NONLINEAR, "nl"))
    cm = compile_model(model)
    assert cm.has_newton
    res = simulate(cm)
    df = res.to_frame()
    np.testing.assert_allclose(df["C"], 0.5 * np.sqrt(df["Y"]) + 0.1 * df["M"], rtol=1e-11)
    assert res.max_residual < 1e-9
    b = simulate_batch(cm, np.array([[0.4], [0.5], [0.6]]), ["a"])
    assert b.success.all()
    np.testing.assert_allclose(b.values[1], res.values, rtol=1e-12)


def test_failed_run_is_flagged_and_single_run_raises():
    model = model_from_dict(_read_yaml(NONLINEAR.replace("sqrt(Y)", "log(Y - 50)"), "nl"))
    b = simulate_batch(model, np.array([[0.5], [0.4]]), ["a"], throw=False)
    assert not b.success.any()
    assert "failed at t=0" in b.messages[0]
    with pytest.raises(SimulationError, match="failed at t=0"):
        simulate(model)
    res = simulate(model, throw=False)
    assert not res.success


def test_series_inline_and_interpolated():
    text = SWITCH.replace("  G0: 20\n", "").replace("G: G0 - cut * step(t_consolidation)", "G: G0 - cut * 0")
    text = text.replace("parameters:\n", "series:\n  G0: {data: {0: 20, 30: 26}}\nparameters:\n")
    res = simulate(model_from_dict(_read_yaml(text, "series")))
    np.testing.assert_allclose(res.to_frame()["G"].to_numpy(), 20 + 6 * res.t / 30)


@pytest.mark.parametrize("name", ["pc", "sim_discrete"])
def test_batch_in_blocks_and_processes_equals_one_call(name, rng):
    """block= and jobs= change where runs are computed, never their results (bit for bit)."""
    import pickle
    m = load_model(name)
    cm = compile_model(m)
    names = list(m.parameters)[:2]
    X = np.array([[m.parameters[n].value * f for n in names] for f in rng.uniform(0.9, 1.1, 7)])
    one = simulate_batch(cm, X, names)
    blocks = simulate_batch(cm, X, names, execution=Execution(block=3))
    procs = simulate_batch(cm, X, names, execution=Execution(block=2, jobs=2))
    for other in (blocks, procs):
        assert np.array_equal(one.values, other.values)
        assert np.array_equal(one.residuals, other.residuals)
        assert one.messages == other.messages
    # what the processes receive: a compiled model pickles and runs the same after the trip
    back = pickle.loads(pickle.dumps(cm))
    assert np.array_equal(simulate_batch(back, X, names).values, one.values)


def test_adaptive_run_that_stops_early_blanks_only_its_own_rest():
    # X' = k X^2 from X = 1 blows up at t = 1/k: with k = 1 the run stops early, with k = 0.01 it does not
    m = model_from_dict({"name": "blowup", "time": {"start": 0, "stop": 2, "dt": 0.1},
                         "stocks": {"X": 1}, "parameters": {"k": 1},
                         "equations": {"d(X)": "k * X**2", "y": "2 * X"}})
    res = simulate_batch(m, np.array([[0.01], [1.0]]), ["k"], solver=Solver(method="RK45"),
                         saveat=SaveAt(t_eval=np.linspace(0, 2, 21)), throw=False)
    assert list(res.success) == [True, False]
    assert np.isfinite(res["X"][0]).all() and np.isfinite(res["y"][0]).all()
    assert np.isnan(res["X"][1, -1]) and np.isnan(res["y"][1, -1])


# --------------------------------------------------------------------------- the stock-flow gate
def _leaky_nonlinear():
    import dataclasses

    import yaml

    from sdmodel import model_from_dict

    from .conftest import NONLINEAR
    m = model_from_dict(yaml.safe_load(NONLINEAR))
    tf = m.transactions
    return dataclasses.replace(m, transactions=tf.with_entry("Income", "firms", -tf.rows["Income"]["firms"]))


def test_a_run_whose_accounting_leaks_fails_naming_row_and_time():
    from sdmodel import SimulationError, compile_model
    cm = compile_model(_leaky_nonlinear(), check=False)
    with pytest.raises(SimulationError, match=r"transactions row 'Income' does not sum to zero at t=0 "):
        simulate(cm)
    res = simulate(cm, throw=False)
    assert not res.success and res.max_residual > 0.1


def test_every_run_of_a_batch_is_gated():
    from sdmodel import compile_model, simulate_batch
    cm = compile_model(_leaky_nonlinear(), check=False)
    b = simulate_batch(cm, [[0.5], [0.6]], ["a"], throw=False)
    assert not b.success.any()
    assert all("Income" in m for m in b.messages)


def test_the_residual_tolerance_is_settable_and_checked():
    from sdmodel import SpecError, compile_model
    cm = compile_model(_leaky_nonlinear(), check=False)
    assert simulate(cm, solver=Solver(residual_tol=10.0)).success          # a deliberately loose gate
    assert simulate("sim").solver["residual_tol"] == 1e-9   # recorded with the run
    for bad in (0, -1e-9, float("nan"), "x"):
        with pytest.raises(SpecError, match="residual_tol"):
            simulate("sim", solver=Solver(residual_tol=bad))


def test_a_balance_sheet_that_starts_unbalanced_fails_the_run():
    import dataclasses

    from sdmodel import SimulationError, compile_model
    m = load_model("sim_discrete")
    off = dataclasses.replace(m, stocks={**m.stocks, "Hh": 1.0})     # Hh = 1 but Hs = 0
    with pytest.raises(SimulationError, match=r"balance-sheet row 'Money' does not sum to zero at t=1 "):
        simulate(compile_model(off, check=False))


# --------------------------------------------------------------------------- an unbalanced start
PC_ROUNDED = Path(__file__).parent / "data" / "models" / "pc_rounded.yaml"


def _unbalanced(sign=""):
    return model_from_dict(yaml.safe_load(UNBALANCED.replace("SIGN", sign)))


def test_a_published_model_with_rounded_starting_values_runs_with_a_warning_when_allowed():
    m = load_model(PC_ROUNDED)
    with pytest.raises(AccountingError, match=r"'Bills': unbalanced start, sums to -0.01 .*--allow-unbalanced-start"):
        simulate(m)
    with pytest.warns(UnbalancedStartWarning) as w:
        res = simulate(m, allow_unbalanced_start=True)
    (warning,) = w
    text = str(warning.message)
    assert "at the initial values balance-sheet row 'Bills' sums to -0.01;" in text
    # the first period moves Bcb (Bcb = Bs - Bh) and so Hs by 0.01 without a flow: Money is off from then on
    assert "at t=1 this run's transactions row 'Interest on bills' sums to -0.00025" in text
    assert "balance-sheet row 'Money' sums to -0.01025" in text and "the dynamics are still checked" in text
    assert warning.message.rows == (("Bills", -0.01),)
    assert res.success and res.solver["allow_unbalanced_start"] is True
    np.testing.assert_allclose(res["Hh"] - res["Hs"], -0.01025, atol=1e-12)  # constant: the dynamics conserve it
    np.testing.assert_allclose(res["Bh"] + res["Bcb"] - res["Bs"], 0.0, atol=1e-12)
    assert res.max_residual < 1e-12  # each balance-sheet row measured from its first-period sum
    # the model file's flag does the same, and an allowed start that balances warns about nothing
    with pytest.warns(UnbalancedStartWarning):
        assert simulate(dataclasses.replace(m, allow_unbalanced_start=True)).success
    assert simulate(load_model("pc"), allow_unbalanced_start=True).solver["allow_unbalanced_start"]  # (no warning)
    assert "allow_unbalanced_start" not in simulate(load_model("pc")).solver


def test_without_the_option_a_start_the_accounting_cannot_evaluate_fails_the_run_naming_it():
    with pytest.raises(SimulationError, match=r"balance-sheet row 'Money' does not sum to zero at t=0 .*or the "
                       r"initial values do not balance: .*allow_unbalanced_start=True"):
        simulate(_unbalanced())


def test_each_run_is_measured_from_its_own_start():
    """Ms starts at M + a: every run of a batch starts off by its own a, and each is gated on its change."""
    X = [[0.1], [0.5], [2.0]]
    with pytest.warns(UnbalancedStartWarning, match=r"these rows are off, each run by its own sum: balance-sheet "
                      r"row 'Money'"):
        b = simulate_batch(compile_model(_unbalanced(), allow_unbalanced_start=True), X, ["a"])
    assert b.success.all() and np.abs(b.residuals).max() < 1e-12
    m_, ms = b.values[:, :, b.names.index("M")], b.values[:, :, b.names.index("Ms")]
    np.testing.assert_allclose(m_ - ms, np.broadcast_to(-np.array(X), m_.shape), atol=1e-12)
    with pytest.warns(UnbalancedStartWarning, match=r"at t=0 this run's balance-sheet row 'Money' sums to -0.25;"):
        assert simulate(_unbalanced(), params={"a": 0.25}, allow_unbalanced_start=True).success


@pytest.mark.parametrize("method", ["rk4", "euler", "RK45"])
def test_with_the_option_a_sign_flipped_flow_still_fails_the_run(method):
    cm = compile_model(_unbalanced("-1 *"), check=False, allow_unbalanced_start=True)
    with pytest.warns(UnbalancedStartWarning), pytest.raises(
        SimulationError, match=r"balance-sheet row 'Money' moves away from its value at the first step \(an "
        r"unbalanced start, allowed\) at t=0.5 "
    ):
        simulate(cm, solver=Solver(method=method))
    with pytest.warns(UnbalancedStartWarning):
        b = simulate_batch(cm, [[0.1], [0.5]], ["a"], throw=False)
    assert not b.success.any()
    # in discrete time too: the Taxes entry flipped in the rounded PC, its accounting not checked
    pc = load_model(PC_ROUNDED)
    tf = pc.transactions
    flipped = dataclasses.replace(pc, transactions=tf.with_entry("Taxes", "households", -tf.rows["Taxes"]["households"]))
    with pytest.warns(UnbalancedStartWarning), pytest.raises(SimulationError, match=r"transactions row '[A-Za-z ]+' "
                                                             r"does not sum to zero at t=2 "):
        simulate(compile_model(flipped, check=False, allow_unbalanced_start=True))


@pytest.mark.parametrize("kw,match", [
    (dict(dt=0), r"dt \(--dt\) must be a positive finite number, got 0"),
    (dict(dt=float("nan")), r"dt \(--dt\) must be a positive finite number"),
    (dict(dt=0.7), r"\(0, 60\) from the model file's time: start/stop .* is not a whole number of steps of 0.7 "
                   r"\(dt \(--dt\)\)"),
    (dict(t_span=(0, float("inf"))), r"t_span \(--t-span\): expected finite start < stop"),
    (dict(t_span=(5, 5)), r"t_span \(--t-span\): expected finite start < stop"),
    (dict(t_span=("a", 2)), r"t_span \(--t-span\) must be two numbers"),
    (dict(dt=1e-7), r"600,000,000 steps; at most 5,000,000"),
    (dict(method="warp"), r"method \(--method\): unknown method 'warp'"),
])
def test_bad_run_settings_say_where_they_came_from(kw, match):
    kw = dict(kw)
    t_span = kw.pop("t_span", None)
    with pytest.raises(SpecError, match=match):
        simulate("sim", t_span, solver=Solver(**kw))


def test_a_batch_too_large_for_memory_is_refused_before_it_starts():
    with pytest.raises(SpecError, match=r"GiB .* saved times x .* outputs x 4,000,000 runs"):
        simulate_batch("sim", np.full((4_000_000, 1), 0.2), ["theta"])


def test_a_run_that_goes_non_finite_names_the_variable_and_its_line(write_model, sim_text):
    path = write_model(sim_text.replace("  C: alpha1 * YD + alpha2 * Hh", "  C: alpha1 * YD + alpha2 * Hh + log(G - t)"))
    res = simulate(path, solver=Solver(method="euler"), throw=False)
    assert not res.success
    assert "failed at t=20" in res.message and "line" in res.message and str(path) in res.message
    res = simulate(path, throw=False)       # rk4: a stage inside the step fails first
    assert "stock Hh (its change d(Hh) is not finite within the step)" in res.message


def test_parameters_outside_their_declared_bounds_or_misspelled_are_refused():
    with pytest.raises(SpecError, match=r"'theta': 0.9 is outside its declared bounds \[0.1, 0.4\]"):
        simulate("sim", params={"theta": 0.9})
    with pytest.raises(SpecError, match="did you mean 'theta'"):
        simulate("sim", params={"thetta": 0.2})
    with pytest.raises(SpecError, match=r"'theta': 0.9 is outside its declared bounds"):
        load_model("sim").with_params(theta=0.9)


def test_a_batch_of_no_parameter_sets_is_refused_with_a_message():
    cm = compile_model(load_model("sim"))
    with pytest.raises(SpecError, match="a parameter matrix with no rows"):
        simulate_batch(cm, np.empty((0, 1)), ["alpha1"])
