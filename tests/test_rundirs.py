"""Run directories that explain themselves: the data dictionary variables.csv, the provenance of every
input file, and the warnings of a run beyond its data, in the manifest and at the top of the report."""

import csv
import hashlib
import json
import warnings

import pandas as pd
import pytest
import yaml

import sdmodel
from sdmodel import cli
from sdmodel.core.errors import ExtrapolationWarning
from sdmodel.core.manifest import read_manifest
from sdmodel.model.spec import model_from_dict
from sdmodel.report.rundirs import (
    VARIABLE_FIELDS,
    VARIABLE_KINDS,
    input_files,
    noting_warnings,
    variable_dictionary,
    write_simulation,
)

from .conftest import MODELS_DIR

#: SIM with government spending as a series whose data end at t = 10: a run to 60 goes beyond them
SIM_SERIES = (MODELS_DIR / "sim" / "model.yaml").read_text().replace("  G: 20\n", "").replace(
    "equations:", "series:\n  G: {data: {0: 20, 10: 25}, doc: government spending}\nequations:")


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_run_directory_has_a_data_dictionary_of_every_column_parameter_and_residual(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main(["run", "pc", "--out", str(out), "--no-figure"]) == 0
    assert "variables.csv (what each of its" in capsys.readouterr().out
    rows = _rows(out / "variables.csv")
    assert tuple(rows[0]) == VARIABLE_FIELDS
    by = {r["name"]: r for r in rows}
    results, residuals = pd.read_csv(out / "results.csv"), pd.read_csv(out / "residuals.csv")
    man = read_manifest(out)
    assert [r["name"] for r in rows if r["file"] == "results.csv"] == list(results.columns)
    assert [r["name"] for r in rows if r["file"] == "residuals.csv"] == list(residuals.columns[1:])
    assert {r["name"] for r in rows if r["kind"] == "parameter"} == set(man.parameters)
    assert {r["kind"] for r in rows} <= set(VARIABLE_KINDS)
    # from the matrices: sectors, flows against auxiliaries, who holds and who pays
    assert by["Hh"] | {"equation": ""} == {"name": "Hh", "description": "Money: asset of households", "unit": "",
                                          "sector": "households", "kind": "stock", "equation": "",
                                          "file": "results.csv"}
    assert by["Bs"]["description"] == "Bills: liability of government"
    assert (by["C"]["kind"], by["C"]["sector"]) == ("flow", "households; firms")
    assert by["C"]["description"] == "Consumption: paid by households, received by firms"
    assert by["C"]["equation"] == "C = alpha1 * YD + alpha2 * lag(V)"
    assert (by["YD"]["kind"], by["YD"]["sector"], by["YD"]["description"]) == ("auxiliary", "", "")  # none invented
    # the model file's own words win; units where it declares them
    assert by["alpha1"] | {} == {"name": "alpha1", "description": "propensity to consume out of disposable income",
                                 "unit": "1", "sector": "", "kind": "parameter", "equation": "",
                                 "file": "manifest.json"}
    assert (by["G"]["sector"], by["G"]["description"]) == ("firms; government", "government expenditure")
    assert (by["r"]["kind"], by["r"]["file"]) == ("series", "model.yaml")
    assert by["r"]["sector"] == "households; government; central bank"
    res = by["balance_sheet:Bills"]
    assert (res["kind"], res["unit"], res["sector"]) == ("residual", "1", "households; government; central bank")
    assert "row 'Bills' of the balance sheet" in res["description"]
    # columns.csv, the older dictionary of results.csv, stays as it was
    assert [r["name"] for r in _rows(out / "columns.csv")] == list(results.columns)


def test_data_dictionary_of_bsr_japan():
    m = sdmodel.load_model("bsr", "japan")
    by = {r["name"]: r for r in variable_dictionary(m, ["Lf", "hh_debt_gdp", "C"])}
    assert by["Lf"]["description"] == "bank loans to firms" and by["Lf"]["sector"] == "firms; banks"
    assert (by["hh_debt_gdp"]["unit"], by["hh_debt_gdp"]["kind"]) == ("% of GDP", "auxiliary")
    assert by["C"]["kind"] == "flow" and "households" in by["C"]["sector"].split("; ")
    assert by["g_pot0"]["unit"] == "1/yr"
    # a series read from a CSV file names it and its column
    assert {by[n]["file"].split(":")[0] for n in m.series} == {"japan.yaml", "history_japan.csv"}
    assert "history_japan.csv:policy_rate" in {by[n]["file"] for n in m.series}


def test_input_files_are_the_model_scenario_parameter_and_data_files():
    names = [p.name for p in input_files("bsr", "japan")]
    assert names == ["model.yaml", "japan.yaml", "history_japan.csv", "japan.params.yaml"]
    assert all(p.is_absolute() and p.is_file() for p in input_files(sdmodel.load_model("bsr", "japan")))
    assert [p.name for p in input_files(sdmodel.load_model("sim"))] == ["model.yaml"]
    assert input_files(model_from_dict(yaml.safe_load(SIM_SERIES))) == []  # built in Python: no files


def test_manifest_records_version_commit_and_the_hash_of_every_input(tmp_path):
    folder = tmp_path / "m"
    (folder / "scenarios" / "data").mkdir(parents=True)
    (folder / "model.yaml").write_text(SIM_SERIES)
    (folder / "scenarios" / "data" / "g.csv").write_text("year,g\n0,20\n60,30\n")
    (folder / "scenarios" / "x.params.yaml").write_text("parameters: {alpha1: 0.55}\n")
    (folder / "scenarios" / "x.yaml").write_text(
        "parameter_file: x.params.yaml\nseries:\n  G: {csv: data/g.csv, time: year, column: g}\n")
    out = tmp_path / "r"
    assert cli.main(["run", str(folder), "--scenario", "x", "--out", str(out), "--no-figure"]) == 0
    man = read_manifest(out)
    assert man.parameters["alpha1"] == 0.55 and man.warnings == ()  # the CSV covers the run
    prov = man.provenance
    assert prov["sdmodel"] == sdmodel.__version__
    assert [p.rsplit("/", 1)[-1] for p in prov["files"]] == ["model.yaml", "x.yaml", "g.csv", "x.params.yaml"]
    for path, h in prov["files"].items():
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == h
    # a checkout records its commit (40 hex digits), an installed wheel none
    assert "git_commit" not in prov or len(prov["git_commit"]) == 40
    by = {r["name"]: r for r in _rows(out / "variables.csv")}
    assert by["G"]["file"] == "g.csv:g"
    # the model does not keep a series' doc: what the matrix says of it
    assert by["G"]["description"] == "Government spending: paid by government, received by firms"


def test_a_run_beyond_its_data_says_so_in_the_manifest_and_the_report(tmp_path, capsys):
    model = tmp_path / "simx.yaml"
    model.write_text(SIM_SERIES)
    out = tmp_path / "r"
    assert cli.main(["run", str(model), "--out", str(out), "--no-figure"]) != 0  # refused unless asked for
    assert "--extrapolate" in capsys.readouterr().err and not out.exists()
    assert cli.main(["run", str(model), "--out", str(out), "--no-figure", "--extrapolate"]) == 0
    err = capsys.readouterr().err
    assert err.count("sdmodel: warning: model 'sim', t = 0..60, runs past the data of 1 series: G") == 1
    man = read_manifest(out)
    assert len(man.warnings) == 1 and man.warnings[0] == err.strip().removeprefix("sdmodel: warning: ")
    assert json.loads((out / "manifest.json").read_text())["warnings"] == list(man.warnings)
    assert cli.main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    warning = html.index('<p class="warning"><b>Warning:</b> model &#x27;sim&#x27;, t = 0..60, runs past the data')
    assert warning < html.index("manifest.json") and warning < html.index("<h2>")  # near the top
    # within the data: nothing to say
    assert cli.main(["run", str(model), "--out", str(tmp_path / "in"), "--no-figure", "--t-span", "0", "10"]) == 0
    assert "warning" not in capsys.readouterr().err and read_manifest(tmp_path / "in").warnings == ()
    assert cli.main(["report", str(tmp_path / "in")]) == 0
    assert 'class="warning"' not in (tmp_path / "in" / "report.html").read_text()


def test_noting_warnings_records_whatever_the_filters_say_and_leaves_them_to_decide():
    def warn():
        warnings.warn(ExtrapolationWarning("beyond\n  the data", ("G",), (0.0, 60.0)), stacklevel=1)
        warnings.warn(ExtrapolationWarning("beyond the data", ("G",), (0.0, 60.0)), stacklevel=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with noting_warnings() as noted:
            warn()
    assert noted == ["beyond the data"]  # one line, once
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ExtrapolationWarning, match="beyond"), noting_warnings() as noted:
            warn()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with noting_warnings() as noted:
            warn()
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert noted == ["beyond the data"]
    assert [type(w.message) for w in shown] == [ExtrapolationWarning, UserWarning]
    with warnings.catch_warnings(record=True) as shown:  # work that fails still shows what it warned about
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="broke"), noting_warnings() as noted:
            warn()
            raise RuntimeError("broke")
    assert noted == ["beyond the data"] and [type(w.message) for w in shown] == [ExtrapolationWarning]


def test_write_simulation_from_python(tmp_path):
    model = sdmodel.load_model("sim")
    res = sdmodel.simulate(model)
    path = write_simulation(tmp_path / "r", model, res, command=["python"], warnings=["a note"])
    man = read_manifest(path)
    assert man.warnings == ("a note",) and man.command == ("python",)
    assert list(man.provenance["files"]) == [str(MODELS_DIR.resolve() / "sim" / "model.yaml")]
    assert (path / "variables.csv").is_file()


def test_every_command_that_simulates_refuses_to_go_beyond_the_data_unless_asked(tmp_path, capsys):
    """calibrate, estimate, validate, sensitivity and sequence apply the rule of `sdmodel run`: refused before
    any work (nothing written), naming the series and --extrapolate; with it, the manifest records the warning."""
    model = tmp_path / "simx.yaml"
    model.write_text(SIM_SERIES)
    t = list(range(0, 61))
    pd.DataFrame({"t": t, "Y": [100.0] * len(t)}).to_csv(tmp_path / "data.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {model}\ndata: data.csv\ntime_column: t\nwindow: [0, 40]\ntargets:\n  Y: {{weight: 1}}\n"
                   "parameters:\n  alpha1: {bounds: [0.4, 0.9]}\nsearch: {maxiter: 2, popsize: 4, local_nfev: 0}\n")
    study = tmp_path / "s.yaml"
    study.write_text(f"model: {model}\nsolver: {{method: rk4, dt: 0.5}}\noutcomes:\n"
                     "  y_end: {kind: at, variable: Y, time: 60}\n"
                     "sensitivity:\n  factors:\n    alpha1: {bounds: [0.5, 0.7]}\n    theta: {bounds: [0.15, 0.25]}\n"
                     "sequence:\n  grid:\n    families:\n      f: {vary: {theta: [0.15, 0.25]}}\n")
    commands = {
        "calibrate": ["calibrate", str(cfg), "--no-progress"],
        "validate": ["validate", str(cfg), "--origins", "20"],
        "estimate": ["estimate", str(cfg), "--steps", "4", "--walkers", "4"],
        "sensitivity": ["sensitivity", str(study), "-N", "4", "--jobs", "1"],
        "sequence": ["sequence", str(study), "--jobs", "1"],
    }
    for name, argv in commands.items():
        out = tmp_path / f"{name}-out"
        assert cli.main([*argv, "--out", str(out)]) == 1, name
        err = capsys.readouterr().err
        assert "runs past the data of 1 series: G (data to 10" in err and "--extrapolate" in err, (name, err)
        assert not out.exists(), name   # refused before any work
    for name in ("calibrate", "sensitivity"):   # asked for: run, and the manifest says what was held
        out = tmp_path / f"{name}-x"
        assert cli.main([*commands[name], "--out", str(out), "--extrapolate"]) == 0, name
        capsys.readouterr()
        warned = read_manifest(out).warnings
        assert len(warned) == 1 and "runs past the data of 1 series: G" in warned[0], (name, warned)
