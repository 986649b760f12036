"""The ``report:`` block (model and scenario): the main figure's panels, events, the shaded window, and
history from several sources; what a run's figure and report then show."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdmodel import SpecError, load_model, simulate
from sdmodel.model.spec import builtin_models_dir
from sdmodel.report.views import _flow_year, _headline_rows, figure_panels

SIM_REPORT = """
report:
  units: "money"
  panels: {Y: "output"}
  figure:
    - {title: "output and consumption", outputs: [Y, C], units: "money a period"}
    - {title: "money", outputs: Hh}
  events: {10: "tax cut", 30.5: "spending rise"}
  window: {from: 5, to: 40, label: "fit window"}
"""


@pytest.fixture
def sim_dir(tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(builtin_models_dir() / "sim", d)
    (d / "model.yaml").write_text((d / "model.yaml").read_text() + SIM_REPORT)
    (d / "scenarios").mkdir()
    t = np.arange(0, 61)
    pd.DataFrame({"t": t, "y": 100 * (1 - np.exp(-t / 10)), "h": 80 * (1 - np.exp(-t / 12))}).to_csv(
        d / "scenarios" / "obs.csv", index=False)
    pd.DataFrame({"t": t, "c": 80 * (1 - np.exp(-t / 10))}).to_csv(d / "scenarios" / "fy.csv", index=False)
    return d


def test_model_report_block_is_read(sim_dir):
    m = load_model(sim_dir)
    p = m.presentation
    assert p["figure"] == ({"title": "output and consumption", "outputs": ("Y", "C"), "units": "money a period"},
                           {"title": "money", "outputs": ("Hh",), "units": "money"})   # default: the block's units
    assert p["events"] == ((10.0, "tax cut"), (30.5, "spending rise"))
    assert p["window"] == (5.0, 40.0, "fit window")


def test_scenario_replaces_report_keys_and_reads_several_history_sources(sim_dir):
    (sim_dir / "scenarios" / "base.yaml").write_text(
        "report:\n"
        "  events: {20: \"a scenario's event\"}\n"
        "history:\n"
        "  - {csv: obs.csv, time: t, columns: {Y: y, Hh: h}, source: calendar data}\n"
        "  - {csv: fy.csv, time: t, shift: 0.75, columns: {C: c}, source: fiscal-year data}\n"
    )
    m = load_model(sim_dir, "base")
    assert m.presentation["events"] == ((20.0, "a scenario's event"),)   # the scenario's events replace the model's
    assert m.presentation["window"] == (5.0, 40.0, "fit window")        # the model's other keys stay
    assert set(m.history) == {"Y", "Hh", "C"}
    assert m.history["C"].times[0] == 0.75 and m.history["Y"].times[0] == 0.0   # each source its own shift
    assert m.history_source == "calendar data; fiscal-year data"
    res = simulate(m).to_frame()
    assert [p["outputs"] for p in figure_panels(m, res.columns)] == [("Y", "C"), ("Hh",)]
    rows = _headline_rows(m, res)
    assert rows[0][:2] == ["output", "money"] and rows[0][-1].endswith("(n = 36)")   # RMSE inside the window
    assert _flow_year(m, res) == 40.0   # the flow diagram's default year: the end of the fit window


@pytest.mark.parametrize("block, message", [
    ("report:\n  events: {ten: x}\n", "report.events.ten (line 2): expected a time"),
    ("report:\n  window: {from: 9, to: 3}\n", "report.window (line 2 of bad.yaml): inverted or empty range"),
    ("report:\n  figure: [{title: a, outputs: [Q]}]\n", "report.figure[0].outputs (line 2 of bad.yaml): 'Q'"),
    ("report:\n  evnts: {}\n", "report.evnts (line 2 of bad.yaml): unknown key"),
    ("history:\n  - {csv: obs.csv, time: t, columns: {Y: y}}\n  - {csv: obs.csv, time: t, columns: {Y: h}}\n",
     "history[1].columns.Y"),
])
def test_bad_report_blocks_name_file_key_and_line(sim_dir, block, message):
    (sim_dir / "scenarios" / "bad.yaml").write_text(block)
    with pytest.raises(SpecError) as err:
        load_model(sim_dir, "bad")
    assert message in str(err.value) and "bad.yaml" in str(err.value)   # the scenario file is named


def test_units_and_docs_of_stocks_equations_and_series_reach_the_data_dictionary():
    from sdmodel import model_from_dict
    from sdmodel.report.rundirs import variable_dictionary
    m = model_from_dict({
        "name": "u", "sectors": ["a"], "time": {"start": 0, "stop": 2, "dt": 0.5},
        "stocks": {"X": {"value": 1, "unit": "money", "doc": "a stock"}},
        "parameters": {"k": {"value": 0.1, "unit": "1/year"}},
        "series": {"s": {"data": {0: 1, 2: 2}, "unit": "money a year"}},
        "equations": {"d(X)": {"eq": "k * X + s", "unit": "money a year", "doc": "its change"},
                      "Y": {"eq": "2 * X", "doc": "twice X", "unit": "money"}, "Z": "Y + 1"},
    })
    assert dict(m.units) == {"X": "money", "d(X)": "money a year", "Y": "money", "k": "1/year", "s": "money a year"}
    assert m.equation_text == {"d(X)": "k * X + s", "Y": "2 * X", "Z": "Y + 1"}   # the same model as plain text
    rows = {r["name"]: r for r in variable_dictionary(m, ["X", "Y", "Z"])}
    assert [rows[n]["unit"] for n in ("X", "Y", "Z", "k", "s")] == ["money", "money", "", "1/year", "money a year"]
    assert rows["Y"]["description"] == "twice X" and rows["X"]["description"] == "a stock"
    assert rows["Y"]["equation"] == "Y = 2 * X"
    plain = model_from_dict({"name": "u", "sectors": ["a"], "time": {"start": 0, "stop": 2, "dt": 0.5},
                             "stocks": {"X": 1}, "parameters": {"k": 0.1}, "series": {"s": {"data": {0: 1, 2: 2}}},
                             "equations": {"d(X)": "k * X + s", "Y": "2 * X", "Z": "Y + 1"}})
    from sdmodel.engine.compiler import fingerprint
    assert fingerprint(m) == fingerprint(plain)   # units and docs do not change what is compiled


def test_misspelt_unit_keys_are_errors_not_ignored():
    from sdmodel import model_from_dict
    with pytest.raises(SpecError) as err:
        model_from_dict({"name": "u", "sectors": ["a"], "time": {"start": 0, "stop": 2},
                         "stocks": {"X": {"value": 1, "units": "money"}},
                         "equations": {"d(X)": {"eqn": "X"}, "Y": {"eq": "X", "unti": "m"}}})
    msg = str(err.value)
    assert "stocks.X: unknown keys ['units']" in msg and "did you mean 'units' -> 'unit'" in msg
    assert "equations.d(X)" in msg and "eq is missing" in msg and "equations.Y: unknown keys ['unti']" in msg
