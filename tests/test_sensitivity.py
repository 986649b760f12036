"""Sensitivity (SALib through our chunked evaluation), resumable studies, Dask, sequencing, config errors."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from SALib.test_functions import Ishigami

from sdmodel.core.errors import SpecError
from sdmodel.core.options import Execution
from sdmodel.report.rundirs import run_sensitivity, run_sequence
from sdmodel.study.sensitivity import Design, run_salib
from sdmodel.study.base import FunctionEvaluator, evaluate_chunks, load_study

ISHIGAMI = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
# Known indices of the Ishigami function with a = 7, b = 0.1 (Saltelli et al. 2008, Global Sensitivity Analysis)
ISHIGAMI_S1 = [0.3139, 0.4424, 0.0]
ISHIGAMI_ST = [0.5576, 0.4424, 0.2437]

STUDY = """
model: bsr
scenario: japan
solver: {{method: rk4, dt: 0.25}}
counterfactual: {{cons_size: 0}}
outcomes:
  output_loss: {{kind: loss, variable: gdp_real, window: [1995, 2030]}}
  multiplier: {{kind: multiplier, variable: gdp_real, per: consolidation, window: [1991, 2030]}}
  gov_debt_end: {{kind: at, variable: gov_debt_gdp, time: 2030}}
  cons_begins: {{kind: first_above, variable: consolidation, threshold: 0.05, window: [1990, 2030]}}
time_varying: {{variables: [gov_debt_gdp], window: [2000, 2004]}}
sensitivity:
  chunk_size: {chunk}
  factors:
    cons_start: {{bounds: [1995, 2010], group: timing}}
    cons_size: {{bounds: [0.01, 0.03], group: design}}
    c_y: {{around: 0.02, group: behaviour}}
    dummy: {{bounds: [0, 1], dummy: true, group: dummy}}
sequence:
  timing:
    fixed: {{cons_size: 0.02}}
    families:
      calendar: {{set: {{cons_rule: 0}}, vary: {{cons_start: [1997, 2003, 2011], cons_pace: [0.01, 0.05]}}}}
      state: {{set: {{cons_rule: 1, cons_start: 2000.5}}, vary: {{cons_k: [1, 3]}}}}
    best: {{minimise: multiplier}}
    deleveraging: firm_debt_gdp
    start: cons_begins
"""


def write_study(tmp_path, chunk=512, name="small.yaml"):
    p = tmp_path / name
    p.write_text(STUDY.format(chunk=chunk))
    return p


def test_ishigami_through_our_pipeline_gives_its_known_indices(tmp_path):
    r = run_salib(FunctionEvaluator(Ishigami.evaluate), ISHIGAMI, Design(N=8192, seed=7), store=tmp_path,
                  execution=Execution(chunk_size=5000))
    assert r.stats.chunks == 9 and len(r.stats.computed) == 9
    np.testing.assert_allclose(r.table("S1")["y"], ISHIGAMI_S1, atol=0.03)
    np.testing.assert_allclose(r.table("ST")["y"], ISHIGAMI_ST, atol=0.03)
    ci = r.indices.set_index("factor")
    assert (ci.ST_conf > 0).all() and (ci.ST_conf < 0.1).all()


def test_same_seed_same_indices_other_seed_other_indices(tmp_path):
    kw = dict(execution=Execution(chunk_size=400))
    a = run_salib(FunctionEvaluator(Ishigami.evaluate), ISHIGAMI, Design(N=256, seed=3), store=tmp_path / "a", **kw)
    b = run_salib(FunctionEvaluator(Ishigami.evaluate), ISHIGAMI, Design(N=256, seed=3), store=tmp_path / "b", **kw)
    c = run_salib(FunctionEvaluator(Ishigami.evaluate), ISHIGAMI, Design(N=256, seed=4), store=tmp_path / "c", **kw)
    pd.testing.assert_frame_equal(a.indices, b.indices)
    assert not np.allclose(a.indices.ST, c.indices.ST)


def test_morris_ranks_ishigami_factors(tmp_path):
    r = run_salib(FunctionEvaluator(Ishigami.evaluate), ISHIGAMI, Design(method="morris", N=200, seed=1),
                  store=tmp_path)
    mu = r.table("mu_star")["y"]
    assert mu["x1"] > mu["x3"] > 0 and mu["x2"] > mu["x3"]


def test_bsr_study_dummy_is_noise_timing_matters_and_files_are_written(tmp_path):
    out = tmp_path / "s"
    r = run_sensitivity(write_study(tmp_path), Design(N=64, seed=2), out=out)
    st = r.table("ST")
    assert (st.loc["dummy"].abs() < 0.05).all()
    assert st.loc["cons_start", "output_loss"] > 0.1          # timing matters for the loss
    assert r.max_residual < 1e-9                             # every run stock-flow consistent
    for f in ("indices.csv", "indices.parquet", "indices_time.csv", "indices_time.parquet", "samples.parquet",
              "indices.png", "indices_time.png", "summary.txt", "manifest.json"):
        assert (out / f).stat().st_size > 0, f
    man = json.loads((out / "manifest.json").read_text())
    assert man["runs"] == 64 * 6 and man["seed"] == 2 and man["solver"] == {"method": "rk4", "dt": 0.25}
    tv = pd.read_csv(out / "indices_time.csv")
    assert sorted(tv.year.unique()) == [2000, 2001, 2002, 2003, 2004] and set(tv.variable) == {"gov_debt_gdp"}
    # a finished study never recomputes
    again = run_sensitivity(write_study(tmp_path), Design(N=64, seed=2), out=out)
    assert again.stats.computed == [] and len(again.stats.reused) == again.stats.chunks
    pd.testing.assert_frame_equal(again.indices, r.indices)


@pytest.mark.xfail(strict=True, reason="issue 26: on the re-estimated Japan model the total index of cons_start for "
                   "output_loss differs by 0.021 between dt 0.25 and 0.125 (0.694 vs 0.715; tolerance 0.02): "
                   "more step-size sensitivity than before (models/bsr/README.md, Status)")
def test_timing_indices_agree_across_two_step_sizes(tmp_path):
    study = write_study(tmp_path)
    a = run_sensitivity(study, Design(N=64, seed=5), out=tmp_path / "a", dt=0.25)
    b = run_sensitivity(study, Design(N=64, seed=5), out=tmp_path / "b", dt=0.125)
    for idx in ("S1", "ST"):
        for o in ("output_loss", "multiplier", "gov_debt_end"):
            assert abs(a.table(idx).loc["cons_start", o] - b.table(idx).loc["cons_start", o]) < 0.02, (idx, o)


def test_dask_local_cluster_gives_the_same_indices(tmp_path):
    pytest.importorskip("distributed")
    study = write_study(tmp_path)
    local = run_sensitivity(study, Design(N=32, seed=1), out=tmp_path / "local")
    dask = run_sensitivity(study, Design(N=32, seed=1), out=tmp_path / "dask", execution=Execution(workers=2))
    assert dask.stats.scheduler.startswith("local cluster") and len(dask.stats.computed) == dask.stats.chunks
    pd.testing.assert_frame_equal(local.indices, dask.indices)
    pd.testing.assert_frame_equal(local.time_indices, dask.time_indices)


def test_killed_study_resumes_from_its_saved_chunks(tmp_path):
    study = write_study(tmp_path, chunk=32)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sdmodel", "sensitivity", str(study), "-N", "32", "--seed", "9", "--jobs", "1",
           "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "chunks").glob("chunk-*.npz"))) < 2 and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = {p.name: p.stat().st_mtime_ns for p in (out / "chunks").glob("chunk-*.npz")}
    assert 2 <= len(saved) < 6 and not (out / "manifest.json").exists()
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    man = json.loads((out / "manifest.json").read_text())
    reused = {f"chunk-{i:05d}.npz" for i in man["chunks"]["reused"]}
    computed = {f"chunk-{i:05d}.npz" for i in man["chunks"]["computed"]}
    assert reused == set(saved) and not computed & set(saved) and len(reused | computed) == 6
    assert all((out / "chunks" / n).stat().st_mtime_ns == m for n, m in saved.items())   # not rewritten
    fresh = run_sensitivity(study, Design(N=32, seed=9), out=tmp_path / "fresh")
    pd.testing.assert_frame_equal(pd.read_csv(out / "indices.csv"), pd.read_csv(tmp_path / "fresh" / "indices.csv"))
    assert fresh.stats.chunks == 6


def test_a_directory_of_another_study_is_refused(tmp_path):
    evaluate_chunks(FunctionEvaluator(Ishigami.evaluate), np.zeros((4, 3)), tmp_path / "x", "k1")
    study = write_study(tmp_path)
    run_sensitivity(study, Design(N=16, seed=1), out=tmp_path / "y")
    with pytest.raises(SpecError, match="holds a different study"):
        run_sensitivity(study, Design(N=16, seed=2), out=tmp_path / "y")


def test_results_are_swapped_into_the_study_folder_with_its_chunks_and_files_kept(tmp_path):
    import dataclasses

    from sdmodel.core.errors import OutputError
    from sdmodel.core.manifest import read_manifest
    from sdmodel.report.rundirs import write_sensitivity
    store = tmp_path / "s"
    kw = dict(store=store, execution=Execution(chunk_size=100))
    r = run_salib(FunctionEvaluator(Ishigami.evaluate), ISHIGAMI, Design(N=64, seed=1), **kw)
    assert sorted(p.name for p in store.iterdir()) == ["chunks", "study.json"]   # computing writes the store only
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.N = 2
    (store / "notes.txt").write_text("mine\n")
    saved = {p.name: p.stat().st_mtime_ns for p in (store / "chunks").glob("chunk-*.npz")}
    assert write_sensitivity(r) == store.resolve()
    for _ in range(2):                                   # a first write, then a finished study written again
        assert read_manifest(store).kind == "sensitivity" and (store / "indices.png").stat().st_size > 0
        assert (store / "notes.txt").read_text() == "mine\n"
        assert {p.name: p.stat().st_mtime_ns for p in (store / "chunks").glob("chunk-*.npz")} == saved
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]           # no temporary or lock left
        again = run_salib(FunctionEvaluator(Ishigami.evaluate), ISHIGAMI, Design(N=64, seed=1), **kw)
        assert again.stats.computed == [] and len(again.stats.reused) == 4
        write_sensitivity(again)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(OutputError, match="is not a study folder"):
        write_sensitivity(r, tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["x.txt"]


def test_bad_configs_fail_before_any_simulation(tmp_path, monkeypatch):
    import sdmodel.engine.simulation
    monkeypatch.setattr(sdmodel.engine.simulation, "simulate_batch", lambda *a, **k: pytest.fail("simulated"))
    bad = STUDY.format(chunk=64).replace("c_y: {around: 0.02", "c_yy: {around: 0.02") \
        .replace("bounds: [0.01, 0.03]", "bounds: [0.03, 0.01]") \
        .replace("  output_loss: {kind: loss", "  output_loss: {kind: lossy")
    p = tmp_path / "bad.yaml"
    p.write_text(bad)
    with pytest.raises(SpecError) as e:
        load_study(p)
    msg = str(e.value)
    assert "bad.yaml" in msg
    assert "sensitivity.factors.c_yy" in msg and "unknown factor" in msg
    assert "sensitivity.factors.cons_size.bounds" in msg and "inverted" in msg
    assert "outcomes.output_loss.kind" in msg
    with pytest.raises(SpecError, match="power of two, got 1000 .try 512 or 1024."):
        run_sensitivity(write_study(tmp_path), Design(N=1000), out=tmp_path / "n")
    assert not (tmp_path / "n").exists()
    empty = tmp_path / "empty.yaml"
    empty.write_text("model: bsr\nscenario: japan\noutcomes: {}\nsensitivity: {factors: {c_y: {around: 0.1}}}\n")
    with pytest.raises(SpecError, match="outcomes.*non-empty"):
        load_study(empty)
    with pytest.raises(SpecError, match="no study config 'nosuch'"):
        load_study("nosuch")


@pytest.mark.xfail(strict=True, reason="issue 26: in the re-estimated Japan model firm debt/GDP keeps rising to 2030 in "
                   "the no-consolidation run, so no rule starts while firms deleverage (models/bsr/README.md, Status)")
def test_sequencing_grid_table_best_rule_and_deleveraging_finding(tmp_path):
    out = tmp_path / "seq"
    r = run_sequence(write_study(tmp_path), out=out)
    tab = r.tables["timing"]
    assert len(tab) == 8 and set(tab.family) == {"calendar", "state"}
    assert (tab.loc[tab.family == "calendar", "cons_begins"].round(0).isin([1997, 2003, 2011])).all()
    state = tab[tab.family == "state"].set_index("cons_k").cons_begins
    # the state rule waits for k years of positive private borrowing (when borrowing resumes is the calibration's)
    assert state[1] > 2000.5 and state[3] > state[1] + 2
    best = r.best["timing"]
    assert best["outcomes"]["multiplier"] == tab.multiplier.min()
    assert "rules that consolidate while they do cost" in r.findings["timing"]
    assert tab.starts_while_deleveraging.any() and not tab.starts_while_deleveraging.all()
    for f in ("timing.csv", "timing.parquet", "timing.png", "summary.txt", "manifest.json"):
        assert (out / f).stat().st_size > 0
    again = run_sequence(write_study(tmp_path), out=out)
    assert again.stats["timing"].computed == []


def test_sequencing_config_errors(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(STUDY.format(chunk=64).replace("cons_pace: [0.01, 0.05]", "cons_pase: [0.01, 0.05]")
                 .replace("best: {minimise: multiplier}", "best: {minimise: happiness}"))
    with pytest.raises(SpecError) as e:
        run_sequence(p, out=tmp_path / "o")
    assert "cons_pase (line " in str(e.value) and "sequence.timing.best" in str(e.value)
    assert "'cons_pase' is not a parameter of the model; did you mean 'cons_pace'?" in str(e.value)
    with pytest.raises(SpecError, match="--design nope: not in the study"):
        run_sequence(write_study(tmp_path), designs=["nope"], out=tmp_path / "o")


def test_cli_sensitivity_and_sequence(tmp_path, capsys):
    from sdmodel.cli import main
    study = write_study(tmp_path)
    assert main(["sensitivity", str(study), "--method", "morris", "-N", "4", "--jobs", "1",
                 "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    assert "Morris mu*" in capsys.readouterr().out
    assert main(["sequence", str(study), "--jobs", "1", "--out", str(tmp_path / "q"), "--no-progress"]) == 0
    assert "best rule (minimise multiplier)" in capsys.readouterr().out
    assert main(["sensitivity", str(study), "-N", "100", "--out", str(tmp_path / "z")]) == 1
    assert "power of two" in capsys.readouterr().err
