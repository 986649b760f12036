"""The CLI, in-process, writing only under tmp_path."""

import json

import pandas as pd
import pytest

from sdmodel import cli, load_model

from .conftest import MODELS_DIR


def test_run_sim_writes_results_manifest(tmp_path, capsys):
    out = tmp_path / "D"
    assert cli.main(["run", "sim", "--out", str(out), "--no-figure"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert list(df.columns[:3]) == ["t", "Hh", "Hs"]
    assert df["Y"].iloc[-1] == pytest.approx(100, abs=0.01)
    assert df["Hh"].iloc[-1] == pytest.approx(80, abs=0.01)
    pq = pd.read_parquet(out / "results.parquet")
    assert pq.shape == (len(df), len(df.columns) - 1)
    man = json.loads((out / "manifest.json").read_text())
    assert man["spec_hash"] == load_model("sim").spec_hash
    assert man["parameters"]["theta"] == 0.2 and man["solver"]["method"] == "rk4"
    assert {"numpy", "sympy", "python", "sdmodel"} <= set(man["versions"])
    assert "wrote" in capsys.readouterr().out


def test_run_set_and_t_span(tmp_path):
    out = tmp_path / "D"
    assert cli.main(["run", "sim", "--set", "theta=0.25", "--t-span", "0", "10", "--out", str(out),
                     "--no-figure"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert df["t"].iloc[-1] == 10
    assert json.loads((out / "manifest.json").read_text())["parameters"]["theta"] == 0.25


def test_run_default_main_job_writes_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "figure.png").stat().st_size > 1000
    assert str(run) in capsys.readouterr().out


def test_run_bad_set_is_one_line_error(tmp_path, capsys):
    assert cli.main(["run", "sim", "--set", "nosuch=1", "--out", str(tmp_path / "D")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'nosuch' is not a parameter" in err
    assert not (tmp_path / "D").exists()


def test_check_prints_matrices_and_proofs(capsys):
    assert cli.main(["check", str(MODELS_DIR / "pc" / "model.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Balance sheet" in out and "Transactions-flow matrix" in out
    assert "Change in money" in out and "proven" in out and "0 failed" in out


def test_check_exits_1_naming_row_and_column(tmp_path, capsys):
    text = (MODELS_DIR / "sim" / "model.yaml").read_text().replace("Wages: {households: +W, firms: -W}",
                                                                   "Wages: {households: +W, firms: +W}")
    p = tmp_path / "m.yaml"
    p.write_text(text)
    assert cli.main(["check", str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "transactions row 'Wages', column 'firms'" in err and str(p) in err


def test_check_malformed_yaml(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nequations: {Y: [\n")
    assert cli.main(["check", str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert "malformed YAML" in err and str(p) in err and err.count("\n") == 0


def test_models_lists_builtins(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("sim", "sim_discrete", "pc", "lp"):
        assert name in out


def test_rewriting_a_run_directory_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "D"
    assert cli.main(["run", "sim", "--out", str(out), "--no-figure"]) == 0
    before = (out / "results.csv").read_text()
    def boom(*a, **k):
        raise KeyboardInterrupt  # an interruption half-way through writing the new run
    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["run", "sim", "--set", "theta=0.3", "--out", str(out), "--no-figure"])
    assert (out / "results.csv").read_text() == before          # previous complete directory kept
    assert [p.name for p in tmp_path.iterdir()] == ["D"]          # no half-written leftovers


def test_main_job_runs_japan_and_draws_history(tmp_path, monkeypatch, capsys):
    """`sdmodel run` with no arguments: the BSR Japan scenario, a figure against history, where it wrote."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 0
    out = capsys.readouterr().out
    assert "bsr/japan" in out and "wrote" in out
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("bsr-japan-")
    man = json.loads((run / "manifest.json").read_text())
    assert man["scenario"] == "japan" and man["max_relative_residual"] < 1e-9
    png = (run / "figure.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000


def test_run_china_scenario(tmp_path):
    assert cli.main(["run", "bsr", "--scenario", "china", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "figure.png").exists()


def test_models_lists_scenarios(capsys):
    assert cli.main(["models"]) == 0
    assert "scenarios: china, japan" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    """`sdmodel models | head -1`: when the reader stops early the command ends with 141, no traceback."""
    import subprocess
    import sys
    code = ("import sys, sdmodel.cli as c\n"
            "def gone(args, argv):\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "c._COMMANDS['models'] = gone\n"
            "sys.exit(c.main(['models']))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 141 and "Traceback" not in p.stderr


def test_a_model_whose_start_does_not_balance_runs_only_with_the_option(tmp_path, capsys):
    """The rounded starting values of a published model (tests/data/models/pc_rounded.yaml): refused, naming
    the row, its sum and the option; with --allow-unbalanced-start it runs, warns once on stderr and the
    manifest records the warning."""
    model = str(MODELS_DIR.parent / "tests" / "data" / "models" / "pc_rounded.yaml")
    assert cli.main(["check", model]) == 1
    captured = capsys.readouterr()
    assert "1 unbalanced start, 0 failed; NOT BALANCED" in captured.out
    assert "'Bills': unbalanced start, sums to -0.01 at the initial values" in captured.err
    assert cli.main(["check", model, "--allow-unbalanced-start"]) == 0
    assert "balance over time, but 1 not at the initial values, allowed" in capsys.readouterr().out
    out = tmp_path / "D"
    assert cli.main(["run", model, "--out", str(out), "--no-figure"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'Bills': unbalanced start" in err and "--allow-unbalanced-start" in err
    assert not out.exists()
    assert cli.main(["run", model, "--out", str(out), "--no-figure", "--allow-unbalanced-start"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("sdmodel: warning: model 'pc_rounded' starts from values that do not balance")
    assert "'Bills' sums to -0.01" in line and "'Money' sums to -0.01025" in line
    assert "an unbalanced start allowed" in captured.out
    man = json.loads((out / "manifest.json").read_text())
    assert man["warnings"] == [line.removeprefix("sdmodel: warning: ")]
    assert man["solver"]["allow_unbalanced_start"] is True
    described = pd.read_csv(out / "variables.csv").set_index("name")["description"]
    assert "the change of its sum from the first step" in described["balance_sheet:Money"]
