"""One progress convention: stderr, only on a terminal unless asked (--progress), never with --quiet."""

import sys

import numpy as np
import pytest
from SALib.test_functions import Ishigami

from sdmodel import cli
from sdmodel.core.options import Execution
from sdmodel.study.sensitivity import Design, run_salib
from sdmodel.study.base import FunctionEvaluator

STUDY = """
model: sim
solver: {method: rk4, dt: 0.5}
outcomes:
  y_end: {kind: at, variable: Y, time: 60}
  h_peak: {kind: max, variable: Hh, window: [0, 60]}
sensitivity:
  chunk_size: 16
  factors:
    theta: {bounds: [0.15, 0.25]}
    alpha1: {bounds: [0.5, 0.7]}
sequence:
  taxes:
    families:
      flat:
        vary:
          theta: [0.15, 0.2, 0.25]
    best: {minimise: y_end}
"""


def terminal(monkeypatch, yes: bool = True) -> None:
    """Make the (captured) stderr a terminal, as for a person at a shell, or not. Called in the test, once
    capsys captures, so that it is capsys's stream that says so."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: yes)


@pytest.fixture
def study(tmp_path):
    p = tmp_path / "small.yaml"
    p.write_text(STUDY)
    return p


@pytest.mark.parametrize("argv", [
    ["--quiet", "check", "sim"],
    ["-q", "check", "sim"],
    ["check", "sim", "--quiet"],
    ["check", "sim", "-q"],
    ["check", "sim", "--no-progress"],
])
def test_quiet_silences_a_terminal_before_or_after_the_command(monkeypatch, capsys, argv):
    terminal(monkeypatch)
    assert cli.main(argv) == 0
    out = capsys.readouterr()
    assert out.err == "" and "all rows and columns balance" in out.out


def test_a_terminal_gets_progress_a_log_does_not_unless_asked(capsys, monkeypatch):
    assert cli.main(["check", "sim"]) == 0  # stderr captured: not a terminal
    assert capsys.readouterr().err == ""
    for argv in (["--progress", "check", "sim"], ["check", "sim", "--progress"]):
        assert cli.main(argv) == 0
        err = capsys.readouterr().err
        assert "sdmodel: checking the accounting of sim" in err and "sdmodel: checked the accounting" in err
    terminal(monkeypatch)
    assert cli.main(["check", "sim"]) == 0
    assert "sdmodel: checking the accounting of sim" in capsys.readouterr().err


def test_quiet_and_progress_together_are_refused(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--quiet", "check", "sim", "--progress"])
    assert e.value.code == 2
    assert "--quiet and --progress contradict each other" in capsys.readouterr().err


def test_sensitivity_and_sequence_say_what_they_run_only_when_asked(study, tmp_path, capsys, monkeypatch):
    terminal(monkeypatch)
    sens = ["sensitivity", str(study), "--method", "morris", "-N", "4", "--jobs", "1", "--out"]
    assert cli.main(["--quiet", *sens, str(tmp_path / "m")]) == 0
    out = capsys.readouterr()
    assert out.err == "" and "Morris mu*" in out.out
    # not a terminal (a log): nothing, unless asked; then the lines and the bar over the analyses
    terminal(monkeypatch, False)
    assert cli.main([*sens, str(tmp_path / "m")]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["--progress", *sens, str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "sdmodel: reading the study" in err
    assert "sdmodel: morris small: 12 runs (2 factors, N=4) in 1 chunk of up to 16" in err
    assert "morris indices small" in err  # the bar over the analyses
    assert "sdmodel: writing the indices" in err
    seq = ["sequence", str(study), "--jobs", "1", "--out", str(tmp_path / "q")]
    terminal(monkeypatch)
    assert cli.main([*seq, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(seq) == 0
    err = capsys.readouterr().err
    assert "sdmodel: sequence small, design taxes: 3 rules, 3 runs in chunks of up to 16" in err


def test_report_progress(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli.main(["run", "sim", "--out", str(run), "--no-figure"]) == 0
    capsys.readouterr()
    assert cli.main(["report", str(run)]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["report", str(run), "--progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"sdmodel: reporting on {run} (run of sim)")
    assert err[1].startswith(f"sdmodel: reported on {run} in")


def test_a_library_caller_that_asks_for_progress_gets_it_wherever_stderr_goes(tmp_path, capsys):
    prob = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    ev = FunctionEvaluator(Ishigami.evaluate)
    run_salib(ev, prob, Design(N=8, seed=1), store=tmp_path / "a")
    assert capsys.readouterr().err == ""  # quiet by default
    run_salib(ev, prob, Design(N=8, seed=1), store=tmp_path / "b", execution=Execution(progress=True), name="ishi")
    err = capsys.readouterr().err
    assert "sdmodel: sobol ishi: 40 runs (3 factors, N=8) in 1 chunk of up to 2048" in err
    assert "sobol indices ishi" in err
