"""Vensim/XMILE built-ins that become stocks or piecewise expressions (issue 29, item 3).

``DELAY FIXED``, ``DELAY N``, ``SMOOTH N``, ``TREND``, ``FORECAST``, ``PULSE TRAIN`` and ``ACTIVE
INITIAL`` (XMILE ``DELAY``, ``DELAYN``, ``SMTHN``, ``TREND``, ``FORCST``): one small model per
built-in under ``tests/data/vensim`` and ``tests/data/xmile``, each run by sdmodel (Euler at the
file's step, as imported) and by PySD 3.14, which implements them all, and each checked against
the rule Vensim's documentation gives. What the importer cannot reproduce is refused by name.
"""


import numpy as np
import pytest

import sdmodel
from .sdfiles import ours, pysd_run
from sdmodel.core.errors import SpecError
from sdmodel.interop.export import _Plan, export_model
from sdmodel.model.translate import import_report, read_sd_file

pysd = pytest.importorskip("pysd")

from .conftest import ROOT  # noqa: E402

VENSIM = ROOT / "tests" / "data" / "vensim"
XMILE = ROOT / "tests" / "data" / "xmile"
MODELS = [VENSIM / f"{n}.mdl" for n in ("delay_fixed", "delay_n", "smooth_n", "trend_forecast", "pulse_train",
                                        "active_initial")] + [XMILE / "builtins.xmile"]





@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_builtins_match_pysd(path, tmp_path):
    tr = read_sd_file(path)
    got, theirs = ours(path), pysd_run(path, tmp_path)
    assert np.allclose(got.index.to_numpy(float), theirs.index.to_numpy(float), rtol=0, atol=1e-12)
    compared = 0
    for original, name in tr.names.items():
        if original in theirs.columns and name in got.columns:
            a, b = got[name].to_numpy(float), theirs[original].to_numpy(float)
            assert np.allclose(a, b, rtol=1e-10, atol=1e-10), f"{path.name}: {original!r} differs by {np.abs(a - b).max():.2e}"
            compared += 1
    assert compared >= 4


# --------------------------------------------------------------------------- DELAY FIXED
def test_delay_fixed_is_the_input_of_n_steps_before():
    # Vensim: the input delayed by the delay time (only its start value counts; a delay below one
    # TIME STEP acts as one TIME STEP); before that the initial value. PySD rounds T / dt to whole steps.
    got = ours(VENSIM / "delay_fixed.mdl")
    x = got["input"].to_numpy()
    for name, steps, init in (("delayed", 10, 7.0), ("delayed_self_init", 12, x[0]), ("delayed_rounded", 4, 0.0),
                              ("delayed_short", 1, 5.0)):
        y = got[name].to_numpy()
        assert np.all(y[:steps] == init), name
        assert np.allclose(y[steps:], x[:-steps], rtol=1e-14, atol=1e-12), name


def test_delay_fixed_length_is_fixed_at_import_and_said_so():
    model = sdmodel.load_model(VENSIM / "delay_fixed.mdl")
    # the constant that sets the number of stocks is an equation: varying it could not move the delay
    assert "delay_time" not in model.param_values and "delay_init" in model.param_values
    assert sum(s.startswith("delayed__f") for s in model.stocks) == 10
    assert "DELAY FIXED (Delayed, Delayed Self Init, Delayed Rounded, Delayed Short)" in model.description
    assert "only under Euler at dt 0.25" in model.description
    report = import_report(VENSIM / "delay_fixed.mdl")
    assert "'Delayed Rounded': DELAY FIXED of 4 TIME STEPs (delay time 1.1 rounded to 4 TIME STEPs)" in report
    assert "'Delay Time' is an equation, not a parameter" in report


def test_delay_fixed_refuses_another_method_or_step_instead_of_smoothing():
    """Under RK4 or another dt the shift register would smooth the delayed values: a wrong number, so the
    run is refused with the reason, in the library and on the command line; the file's own settings run."""
    from sdmodel import SaveAt, Solver, SpecError, simulate
    from sdmodel.cli import main
    model = sdmodel.load_model(VENSIM / "delay_fixed.mdl")
    assert model.time.method == "euler" and "DELAY FIXED" in model.time.locked
    simulate(model, saveat=SaveAt(outputs=["delayed"]))                       # the file's method and step
    simulate(model, solver=Solver(method="euler", dt=0.25))                  # the same, given explicitly
    for solver in (Solver(method="rk4"), Solver(dt=0.125), Solver(method="RK45")):
        with pytest.raises(SpecError, match=r"runs only with its own method and step \(euler, dt 0.25\).*DELAY FIXED"):
            simulate(model, solver=solver)
    assert main(["run", str(VENSIM / "delay_fixed.mdl"), "--method", "rk4", "--no-figure"]) == 1


# --------------------------------------------------------------------------- DELAY N, SMOOTH N
def test_delay_n_and_smooth_n_expand_to_order_stocks():
    model = sdmodel.load_model(VENSIM / "delay_n.mdl")
    count = {p: sum(s.startswith(p + "__") for s in model.stocks) for p in ("delayed_4", "delayed_5_self",
                                                                            "delayed_lowered")}
    # Vensim: the order drops while order * TIME STEP > delay time (0.5 / 0.25: order 2)
    assert count == {"delayed_4": 4, "delayed_5_self": 5, "delayed_lowered": 2}
    assert "order" not in model.param_values and "short_time" not in model.param_values
    assert model.param_values["delay_time"] == 6.0         # no structure depends on it: still a parameter
    smooth = sdmodel.load_model(VENSIM / "smooth_n.mdl")
    assert sum(s.startswith("smoothed_5__") for s in smooth.stocks) == 5
    assert sum(s.startswith("smoothed_moving__") for s in smooth.stocks) == 2


def test_delay_n_conserves_what_it_holds():
    # DELAY N conserves material: what went in and has not come out is in transit
    got = ours(VENSIM / "delay_n.mdl")
    t = got.index.to_numpy(float)
    transit = sum(got[f"delayed_4__d{k}"] for k in range(1, 5)).to_numpy()
    assert np.allclose(got["in_transit"].to_numpy() + 2 * 6, transit, rtol=1e-12)
    assert t[-1] == 30


@pytest.mark.parametrize("rhs, match", [
    ("DELAY N(Time, 3, 0, 2.5)", r"'y': DELAY N with the order 2\.5 \(the order is the number of stocks"),
    ("DELAY N(Time, 3, 0, Time + 1)", r"'y': DELAY N with an order that is not a constant"),
    ("SMOOTH N(Time, 3, 0, 0)", r"'y': SMOOTH N with the order 0 "),
    ("DELAY N(Time, 3 + Time, 0, 3)", r"'y': DELAY N with a delay time that is not constant .* is not supported"),
    ("DELAY FIXED(Time, 1 + Time, 0)", r"'y': DELAY FIXED with a delay time that is not made of numbers and constants"),
    ("DELAY FIXED(Time, 1000, 0)", r"'y': DELAY FIXED of 4000 TIME STEPs .*at most 2000"),
])
def test_what_cannot_be_reproduced_is_refused_by_name(tmp_path, rhs, match):
    path = tmp_path / "case.mdl"
    path.write_text("{UTF-8}\n" + "".join(f"{lhs} = {r}\n\t~\t\n\t~\t\n\t|\n\n" for lhs, r in (
        ("y", rhs), ("FINAL TIME", 10), ("INITIAL TIME", 0), ("SAVEPER", "TIME STEP"), ("TIME STEP", 0.25))))
    with pytest.raises(SpecError, match=match) as info:
        read_sd_file(path)
    assert "case.mdl" in str(info.value)


# --------------------------------------------------------------------------- TREND, FORECAST
def test_trend_and_forecast_follow_vensims_equations():
    # TREND = ZIDZ(input - AV, T * ABS(AV)), AV from input / (1 + initial trend * T): it starts at the
    # initial trend; FORECAST = input * (1 + ZIDZ(input - AV, T * AV) * horizon), AV from the input
    got = ours(VENSIM / "trend_forecast.mdl")
    assert got["input_trend"].iloc[0] == pytest.approx(0.1, rel=1e-12)
    assert got["input_trend_zero"].iloc[0] == 0 and got["input_forecast"].iloc[0] == got["input"].iloc[0]
    av = got["input_forecast__av"].to_numpy()
    x = got["input"].to_numpy()
    assert np.allclose(got["input_forecast"].to_numpy(), x * (1 + (x - av) / (5 * av) * 10), rtol=1e-12)
    assert np.allclose(np.diff(av), 0.25 * (x[:-1] - av[:-1]) / 5, rtol=1e-10, atol=1e-12)  # Euler


def test_xmile_forcst_with_an_initial_trend_is_refused(tmp_path):
    path = tmp_path / "f.xmile"
    path.write_text((XMILE / "builtins.xmile").read_text().replace("FORCST(Input, 5, 10)", "FORCST(Input, 5, 10, 0.1)"))
    with pytest.raises(SpecError, match=r"'Input Forecast': FORCST with an initial trend other than 0 .*disagree"):
        read_sd_file(path)


# --------------------------------------------------------------------------- PULSE TRAIN
def test_pulse_train_is_on_for_width_every_interval_until_end():
    # Vensim: 1 from start for width, repeated every interval until end; interval 0: one pulse
    got = ours(VENSIM / "pulse_train.mdl")
    t = got.index.to_numpy(float)
    want = ((t >= 2) & (t < 20) & (np.mod(t - 2, 5) < 1)).astype(float)
    assert got["train"].tolist() == want.tolist()
    assert got["single"].tolist() == ((t >= 1) & (t < 1.5)).astype(float).tolist()


@pytest.mark.parametrize("interval", [0.0, -3.0, 0.5, 2.0])
def test_pulse_train_with_an_interval_parameter_matches_pysd(tmp_path, interval):
    # an interval read from a constant stays a parameter: 0 (one pulse) and a negative interval (Python's
    # modulo, as PySD computes it) follow it too
    got = ours(VENSIM / "pulse_train.mdl", pulse_interval=interval)
    theirs = pysd_run(VENSIM / "pulse_train.mdl", tmp_path, **{"Pulse Interval": interval})
    assert got["train_params"].tolist() == theirs["Train Params"].tolist()
    assert got["train_params"].sum() > 0


# --------------------------------------------------------------------------- ACTIVE INITIAL
def test_active_initial_feeds_the_initial_values_only():
    # Production = ACTIVE INITIAL(Capacity * Utilization, 50): the initial-value computation sees 50
    # (Capacity and SMOOTH start there, Inventory at 2 * 50), the run sees Capacity * Utilization
    got = ours(VENSIM / "active_initial.mdl")
    first = got.iloc[0]
    assert first["capacity"] == 50 and first["smoothed_production"] == 50 and first["inventory"] == 100
    assert first["production"] == 50 * 0.9
    assert np.allclose(got["production"], got["capacity"] * got["utilization"], rtol=1e-14)


@pytest.mark.parametrize("rhs", ["DELAY N(Production, 2, Production, 2)", "TREND(Production, 2, 0)"])
def test_active_initial_through_a_delay_output_is_refused(tmp_path, rhs):
    text = (VENSIM / "active_initial.mdl").read_text().replace("Desired Inventory = Production * 2",
                                                              f"Desired Inventory = {rhs}")
    path = tmp_path / "ai.mdl"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"an initial value that reaches ACTIVE INITIAL through the .* of"):
        read_sd_file(path)


# --------------------------------------------------------------------------- export and report
@pytest.mark.parametrize("path", MODELS[:6], ids=lambda p: p.stem)
def test_imported_builtins_export_to_files_pysd_runs_alike(path, tmp_path):
    # the built-ins are plain stocks and equations once imported, so the exporter needs nothing new
    model = sdmodel.load_model(path)
    got = sdmodel.simulate(model).to_frame()
    names = _Plan(model).names
    for fmt, ext in (("vensim", "mdl"), ("xmile", "xmile")):
        out = tmp_path / "src" / f"{path.stem}.{ext}"
        out.parent.mkdir(exist_ok=True)
        out.write_text(export_model(model, fmt))
        theirs = pysd_run(out, tmp_path)
        for x in model.stocks:
            assert np.allclose(theirs[names[x]].to_numpy(), got[x].to_numpy(), rtol=1e-12, atol=1e-12), (fmt, x)


def test_check_prints_the_import_report(capsys):
    from sdmodel.cli import main
    assert main(["check", str(VENSIM / "active_initial.mdl")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Imported from the Vensim file active_initial.mdl (pysd ")
    assert "9 elements -> 3 stocks (1 added by built-ins), 2 parameters" in out
    assert "'Production': ACTIVE INITIAL: the initial-value computation reads production__init" in out
    assert main(["check", str(VENSIM / "teacup.mdl")]) == 0
    assert "every element is a stock, a parameter, a lookup or an equation as written" in capsys.readouterr().out
