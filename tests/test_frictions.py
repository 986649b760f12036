"""Small frictions a new user meets (issue 27): runs beyond the data of their series, "did you mean",
result reprs, the data dictionary of results.csv, progress on long silent work."""

import csv
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from sdmodel import SaveAt, cli, compile_model, load_model, model_from_dict, simulate, simulate_batch
from sdmodel.model.accounting import check_accounting
from sdmodel.core.errors import ExtrapolationWarning, SpecError
from sdmodel.report.rundirs import COLUMN_FIELDS, column_dictionary
from sdmodel.model.spec import _read_yaml, builtin_models, scenarios

from .conftest import SIM_YAML

# SIM with government spending G an exogenous series: 20 from t=0, rising to 25 at t=10, no data after
SERIES_SIM = SIM_YAML.replace("  G: 20\n", "").replace(
    "parameters:\n", "series:\n  G: {data: {0: 20, 10: 25}}\nparameters:\n"
)


def series_sim(series_yaml="{data: {0: 20, 10: 25}}", stop=60):
    text = SERIES_SIM.replace("{data: {0: 20, 10: 25}}", series_yaml).replace("stop: 60", f"stop: {stop}")
    return model_from_dict(_read_yaml(text, "series_sim"))


def one_warning(record):
    ours = [w for w in record if issubclass(w.category, ExtrapolationWarning)]
    assert len(ours) == 1, [str(w.message) for w in record]
    return ours[0].message


# ---------------------------------------------------------------- 1. runs beyond the data of a series
def test_extrapolate_key_of_a_series():
    assert series_sim().series["G"].hold == (False, False)
    assert series_sim("{data: {0: 20, 10: 25}, extrapolate: hold}").series["G"].hold == (False, True)
    both = "{data: {0: 20, 10: 25}, extrapolate: {before: hold, after: hold}}"
    assert series_sim(both).series["G"].hold == (True, True)
    with pytest.raises(SpecError, match="extrapolate must be 'warn' or 'hold'.*got 'hodl'; did you mean 'hold'"):
        series_sim("{data: {0: 20, 10: 25}, extrapolate: hodl}")
    with pytest.raises(SpecError, match="unknown keys \\['afterwards'\\]"):
        series_sim("{data: {0: 20, 10: 25}, extrapolate: {afterwards: hold}}")
    with pytest.raises(SpecError, match="unknown key 'extrapolation'; did you mean 'extrapolate'"):
        series_sim("{data: {0: 20, 10: 25}, extrapolation: hold}")


def test_a_run_past_the_data_warns_once_naming_the_series():
    m = series_sim(stop=20)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        res = simulate(m)
    msg = one_warning(record)
    assert "t = 0..20, runs past the data of 1 series: G (data to 10, held at 25 after)" in str(msg)
    assert "run within 0..10" in str(msg) and "extrapolate: hold" in str(msg)
    assert msg.series == (("G", 0.0, 10.0, "after"),) and msg.span == (0.0, 20.0)
    assert m.series["G"](20.0) == 25 and res.success  # what it says: held at the last value
    assert isinstance(msg, UserWarning)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        simulate_batch(m, [[0.2], [0.25]], ["theta"], saveat=SaveAt(outputs=["Y"]))
    assert one_warning(record).series == (("G", 0.0, 10.0, "after"),)


def test_a_run_before_the_data_warns_and_within_it_does_not():
    m = series_sim(stop=10)
    with pytest.warns(ExtrapolationWarning, match=r"starts before the data of 1 series: G \(data from 0, held at 20"):
        simulate(m, t_span=(-5, 10))
    simulate(m)  # 0..10: within the data; the suite turns any warning into an error
    simulate(m, t_span=(2, 8))


def test_declared_hold_and_constants_do_not_warn():
    simulate(series_sim("{data: {0: 20, 10: 25}, extrapolate: hold}"))
    simulate(series_sim("{data: {0: 20, 10: 25}, extrapolate: {before: hold, after: hold}}"), t_span=(-5, 60))
    simulate(series_sim("{data: {0: 20}}"), t_span=(-5, 60))  # one point: a constant
    m = series_sim("{data: {0: 20, 10: 25}, extrapolate: hold}")
    with pytest.warns(ExtrapolationWarning, match="starts before"):  # hold is after the last point only
        simulate(m, t_span=(-5, 60))


def test_warning_can_be_filtered():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        simulate(series_sim(stop=20))


def test_cli_prints_the_warning_as_one_line(tmp_path, capsys, write_model):
    path = write_model(SERIES_SIM)
    assert cli.main(["run", str(path), "--t-span", "0", "20", "--out", str(tmp_path / "D"), "--no-figure",
                     "--extrapolate"]) == 0
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sdmodel: warning: "), err
    assert "G (data to 10, held at 25 after)" in lines[0]


def test_japan_beyond_its_data(tmp_path, capsys):
    """The issue's case: 1980-2060 runs past the projections that end in 2030; 1970 starts before the
    data; the policy rate and the current account, declared held, are not named."""
    japan = load_model("bsr", scenario="japan")
    with pytest.raises(ExtrapolationWarning) as e:  # an error under the suite's filter: raised before any work
        simulate(japan, t_span=(1980, 2060))
    after = {s for s, *_, side in e.value.series if side == "after"}
    assert {"g_pot_adj", "tr_adj", "theta_adj", "g_adj", "qe"} == after
    with pytest.raises(ExtrapolationWarning) as e:
        simulate(japan, t_span=(1970, 2030))
    assert "rate_path" in {s for s, *_ in e.value.series} and "starts before" in str(e.value)
    out = tmp_path / "D"
    # the CLI refuses such a run before any work, naming the series and the way out; nothing is written
    assert cli.main(["run", "bsr", "--scenario", "japan", "--t-span", "1980", "2060", "--out", str(out),
                     "--no-figure", "--outputs", "gov_debt_gdp"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("sdmodel: error:") and "g_pot_adj (data to 2030" in err and "--extrapolate" in err
    assert not out.exists()
    assert cli.main(["run", "bsr", "--scenario", "japan", "--t-span", "1980", "2060", "--out", str(out),
                     "--no-figure", "--outputs", "gov_debt_gdp", "--extrapolate"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("sdmodel: warning:"), err
    assert "g_pot_adj (data to 2030" in err and "rate_path" not in err


@pytest.mark.parametrize("name", builtin_models())
def test_shipped_models_and_scenarios_cover_their_own_span(name):
    """A shipped model or scenario run over its own time: no series runs out (or is declared held)."""
    for scenario in [None, *scenarios(name)]:
        m = load_model(name, scenario=scenario)
        for s in m.series.values():
            assert s.beyond(m.time.start, m.time.stop) == (False, False), (name, scenario, s.name)


# ---------------------------------------------------------------- 2. did you mean
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "bsrr"], "did you mean 'bsr'?"),
        (["run", "bsr", "--scenario", "japn"], "did you mean 'japan'?"),
        (["check", "bsr", "--scenario", "chna"], "did you mean 'china'?"),
        (["run", "sim", "--set", "thetta=0.3"], "did you mean 'theta'?"),
        (["run", "sim", "--outputs", "Y", "YDD"], "'YDD' is not an output of model 'sim'; did you mean 'YD'?"),
    ],
)
def test_cli_mistyped_names(argv, needle, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "D")] if argv[0] == "run" else argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sdmodel: error:") and err.count("\n") == 0 and needle in err, err
    assert not (tmp_path / "D").exists()


def test_library_mistyped_names():
    res = simulate("sim")
    with pytest.raises(KeyError, match="'YDD' is not an output of model 'sim'; did you mean 'YD'"):
        res["YDD"]
    b = simulate_batch("sim", [[0.2]], ["theta"])
    with pytest.raises(KeyError, match="did you mean 'YD'"):
        b["YDD"]
    with pytest.raises(SpecError, match="did you mean 'theta'"):
        load_model("sim").with_params(thetta=0.3)
    with pytest.raises(SpecError, match="'GG' is not a series of model 'sim'; did you mean 'G'"):
        series_sim().with_series(GG=3)
    with pytest.raises(SpecError, match="did you mean 'japan'"):
        load_model("bsr", scenario="japn")


# ---------------------------------------------------------------- 3. reprs
def test_result_reprs_are_short_and_say_what_they_hold():
    res = simulate("sim")
    r = repr(res)
    assert r.startswith("<SimulationResult of 'sim': t=0..60 (241 saved, rk4), 7 outputs (Hh, Hs, Y") and "\n" not in r
    assert "completed" in r
    b = simulate_batch("sim", np.array([[0.2], [0.3]]), ["theta"], saveat=SaveAt(outputs=["Y"]))
    r = repr(b)
    assert r.startswith("<BatchResult of 'sim': 2 runs, 2 succeeded; t=0..60 (241 saved, rk4); 1 output (Y);")
    assert "parameters varied: theta 0.2..0.3" in r and "\n" not in r and len(r) < 300
    big = simulate_batch("bsr", [[0.25]], ["theta"])
    assert len(repr(big)) < 300 and f", ... ({len(big.names)})" in repr(big)  # a few names, then how many


# ---------------------------------------------------------------- 4. the data dictionary of results.csv
def test_run_directory_explains_its_columns(tmp_path, capsys):
    out = tmp_path / "D"
    assert cli.main(["run", "pc", "--out", str(out), "--no-figure"]) == 0
    assert "columns.csv (what each of its" in capsys.readouterr().out
    results = pd.read_csv(out / "results.csv")
    with open(out / "columns.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMN_FIELDS
    assert [r["name"] for r in rows] == list(results.columns)
    by = {r["name"]: r for r in rows}
    assert by["Hh"]["kind"] == "stock" and by["Hh"]["equation"] == (
        "d(Hh) = what balances column 'households' of the transactions-flow matrix")
    assert by["Y"]["kind"] == "variable" and by["Y"]["equation"] == "Y = C + G"
    # an earlier run with columns.csv is replaced without --overwrite: it is one of sdmodel's files
    assert cli.main(["run", "pc", "--out", str(out), "--no-figure"]) == 0


def test_column_dictionary_of_bsr_japan():
    m = load_model("bsr", scenario="japan")
    names = ("P", "Lf", "hh_debt_gdp", "private_debt_gdp")
    by = {r["name"]: r for r in column_dictionary(m, names)}
    assert by["P"]["description"] == "price level (GDP deflator)"  # the model file's doc, kept under a scenario
    assert by["P"]["equation"] == "d(P) = infl * P"
    assert by["hh_debt_gdp"]["unit"] == "% of GDP" and by["hh_debt_gdp"]["description"] == "households: debt / GDP"
    assert by["hh_debt_gdp"]["equation"] == "hh_debt_gdp = 100 * Lh / Ya"
    assert by["Lf"]["equation"].startswith("d(Lf) = what balances column 'firms'")
    assert by["private_debt_gdp"]["unit"] == ""  # no unit declared: none invented


# ---------------------------------------------------------------- 5. progress on long silent work
def test_compile_and_check_say_what_they_do_only_when_asked(capsys):
    m = load_model("sim")
    compile_model(m, cache=False)
    check_accounting(m)
    assert capsys.readouterr().err == ""  # quiet by default
    compile_model(m, cache=False, progress=True)
    err = capsys.readouterr().err
    assert "sdmodel: compiling sim for the first time" in err and "sdmodel: compiled sim in" in err
    compile_model(m, progress=True)  # a cache hit: nothing to say
    assert capsys.readouterr().err == ""
    check_accounting(m, progress=True)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("sdmodel: checking the accounting of sim: 11 matrix rows and columns")
    assert err[1].startswith("sdmodel: checked the accounting of sim in")


def test_cli_check_progress_on_a_terminal_only(capsys, monkeypatch):
    assert cli.main(["check", "sim"]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: no progress
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["check", "sim"]) == 0
    assert "sdmodel: checking the accounting of sim" in capsys.readouterr().err
    assert cli.main(["check", "sim", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
