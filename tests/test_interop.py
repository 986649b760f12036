"""Vensim/XMILE export and import, checked against PySD itself (a test dependency).

Export: the exported file of SIM, PC, the discrete SIM and the BSR Japan scenario loads in
``pysd.read_vensim``/``pysd.read_xmile`` without edits and PySD's Euler run gives every
stock of sdmodel's Euler run at the same step. Import: one small model per supported
feature (``tests/data/vensim``, written for this suite in the SDXorg/test-models spirit)
runs in sdmodel exactly as in PySD.
"""

import re

import numpy as np
import pytest

import sdmodel
from .sdfiles import pysd_run
from sdmodel.core.errors import CompileError, SpecError
from sdmodel.interop.export import _Plan, export_model
from sdmodel.model.spec import model_from_dict
from sdmodel.model.translate import read_sd_file

pysd = pytest.importorskip("pysd")

from .conftest import MODELS_DIR  # noqa: E402

HERE = MODELS_DIR.parent / "tests" / "data" / "vensim"
# subscript_mapping_list: PySD 3.14 cannot build a mapping onto a list of elements (its values are by hand,
# in test_translate_arrays.py)
FEATURES = sorted(p.stem for p in HERE.glob("*.mdl") if p.stem not in ("unsupported", "subscript_mapping_list"))
XMILE = sorted(p.stem for p in HERE.glob("*.xmile"))



def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12 * max(1.0, np.abs(b).max()))
    return float(np.max(np.abs(a - b) / scale))


# --------------------------------------------------------------------------- export
@pytest.mark.parametrize("name, scenario, tol", [
    ("sim", None, 1e-9), ("pc", None, 1e-9), ("sim_discrete", None, 1e-9), ("bsr", "japan", 1e-6),
])
@pytest.mark.parametrize("fmt", ["vensim", "xmile"])
def test_exported_file_runs_in_pysd_like_sdmodel_euler(name, scenario, tol, fmt, tmp_path):
    model = sdmodel.load_model(name, scenario)
    ours = sdmodel.simulate(model, solver=sdmodel.Solver(method="discrete" if model.discrete else "euler")).to_frame()
    path = tmp_path / "src" / f"{name}.{'mdl' if fmt == 'vensim' else 'xmile'}"
    path.parent.mkdir()
    path.write_text(export_model(model, fmt))
    theirs = pysd_run(path, tmp_path)
    assert np.allclose(theirs.index.to_numpy(float), ours.index.to_numpy(float), rtol=0, atol=1e-9)
    names = _Plan(model).names
    for x in model.stocks:
        err = rel_err(theirs[names[x]], ours[x])
        assert err <= tol, f"{name} {fmt}: stock {x} differs by {err:.2e} relative"


def test_export_cli_writes_both_formats(tmp_path, capsys):
    from sdmodel.cli import main
    assert main(["export", "bsr", "--scenario", "japan", "--to", "vensim", "--out", str(tmp_path)]) == 0
    assert main(["export", "sim", "--to", "xmile", "--out", str(tmp_path / "s.xmile")]) == 0
    out = capsys.readouterr().out
    assert "bsr-japan.mdl" in out and "s.xmile" in out
    text = (tmp_path / "bsr-japan.mdl").read_text()
    # parameters as constants with units and documentation, stocks as integrals, series as lookups
    assert "tau_k =\n\t0.5\n\t~\tyr\n\t~\tgestation lag" in text
    assert "Lf = INTEG (\n\td_Lf," in text
    assert "WITH LOOKUP(Time, ([(1971," in text
    assert "Exported by sdmodel from model.yaml with scenario japan.yaml;" in text
    assert '<stock name="Hh">' in (tmp_path / "s.xmile").read_text()


def test_export_writes_solved_blocks_and_initial_expressions(tmp_path):
    # SIM's simultaneous block Y -> C -> YD -> Y -> W is written solved: W in knowns, the rest from W
    text = export_model(sdmodel.load_model("sim"), "vensim")
    w = text.split("\nW =\n\t")[1].split("\n")[0]
    assert set(re.findall(r"[A-Za-z_]\w*", w)) == {"G", "Hh", "alpha1", "alpha2", "theta"}
    model = model_from_dict({
        "name": "init", "time": {"start": 0, "stop": 4, "dt": 0.5},
        "stocks": {"K": "2 * k0 + y", "Q": 1}, "parameters": {"k0": 3},
        "lookups": {"tab": {"points": [[0, 1], [4, 5]]}},
        "equations": {"y": "tab(t) * Q", "d(K)": "-0.1 * K", "d(Q)": "step(2)"}})
    path = tmp_path / "src" / "init.mdl"
    path.parent.mkdir()
    path.write_text(export_model(model, "vensim"))
    theirs = pysd_run(path, tmp_path)
    ours = sdmodel.simulate(model, solver=sdmodel.Solver(method="euler")).to_frame()
    assert ours["K"].iloc[0] == 7.0
    for x in ("K", "Q", "y"):
        assert rel_err(theirs[x], ours[x]) < 1e-12


def test_export_refuses_a_block_without_closed_form():
    model = model_from_dict({
        "name": "nl", "time": {"start": 0, "stop": 1, "dt": 0.5}, "stocks": {"S": 1}, "parameters": {"a": 0.5},
        "equations": {"x": "a * exp(-y) + S", "y": "x ** 2 / 10", "d(S)": "-x"}})
    with pytest.raises(SpecError, match=r"simultaneous block of (x, y|y, x) has no closed-form solution"):
        export_model(model, "vensim")
    with pytest.raises(SpecError, match="unknown export format 'stella'"):
        export_model(model, "stella")


# --------------------------------------------------------------------------- import
def test_feature_suite_is_complete():
    # at least ten features, each its own model
    assert len(FEATURES) >= 10
    assert {"teacup", "if_then_else", "min_max", "step", "ramp", "pulse", "lookup", "with_lookup", "smooth",
            "smooth3", "delay1", "delay3", "initial", "integ_init_expr"} <= set(FEATURES)


@pytest.mark.parametrize("feature", FEATURES + [f"{x}.xmile" for x in XMILE])
def test_imported_model_matches_pysd(feature, tmp_path):
    path = HERE / (feature if feature.endswith(".xmile") else f"{feature}.mdl")
    tr = read_sd_file(path)
    model = sdmodel.load_model(path)
    ours = sdmodel.simulate(model).to_frame()          # imported models default to Euler, like Vensim
    theirs = pysd_run(path, tmp_path)
    assert np.allclose(theirs.index.to_numpy(float), ours.index.to_numpy(float), rtol=0, atol=1e-12)
    compared = 0
    for original, name in tr.names.items():
        column = original if original in ours.columns else name   # a subscripted cell keeps its name, a[x]
        if original in theirs.columns and column in ours.columns:   # parameters are not outputs
            err = rel_err(ours[column], theirs[original])
            assert err <= 1e-9, f"{feature}: {original!r} differs by {err:.2e} relative"
            compared += 1
    assert compared >= 2


def test_unsupported_functions_are_named_all_at_once():
    with pytest.raises(SpecError) as info:
        sdmodel.load_model(HERE / "unsupported.mdl")
    msg = str(info.value)
    assert "unsupported.mdl" in msg
    assert "'Sampled': SAMPLE IF TRUE is not supported" in msg
    assert "'Noise': the function RANDOM UNIFORM is not supported" in msg


def test_imported_model_runs_from_the_cli_and_in_batches(tmp_path, capsys):
    from sdmodel.cli import main
    assert main(["run", str(HERE / "teacup.mdl"), "--out", str(tmp_path / "run"), "--no-figure"]) == 0
    assert "teacup: t=0..30 (euler)" in capsys.readouterr().out
    # INTEG(..., Initial Population * Scale + Offset / 2): the initial value follows the parameter in a batch
    model = sdmodel.load_model(HERE / "integ_init_expr.mdl")
    p = model.param_values
    batch = sdmodel.simulate_batch(model, np.array([[100.0], [250.0]]), ["initial_population"])
    assert batch["population"][:, 0].tolist() == [100 * p["scale"] + p["offset"] / 2,
                                                  250 * p["scale"] + p["offset"] / 2]
    single = sdmodel.simulate(model.with_params(initial_population=250.0)).to_frame()
    for c in model.stocks:
        assert np.allclose(batch[c][1], single[c].to_numpy(), rtol=1e-12)


def test_export_then_import_round_trip():
    # the exported BSR file read back through PySD's translator is the same model
    model = sdmodel.load_model("bsr", "japan")
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bsr.mdl"
        path.write_text(export_model(model, "vensim"))
        back = sdmodel.load_model(path)
    a = sdmodel.simulate(model, (1980, 2000), solver=sdmodel.Solver(method="euler")).to_frame()
    b = sdmodel.simulate(back, t_span=(1980, 2000)).to_frame()
    names = _Plan(model).names
    for x in ("Lf", "Lh", "B", "pL", "Kr"):
        assert rel_err(b[names[x].lower()], a[x]) < 1e-6


# --------------------------------------------------------------------------- engine features used by both
def test_initial_value_expressions_follow_parameters_and_refuse_loops():
    d = {"name": "iv", "time": {"start": 0, "stop": 2, "dt": 0.5},
         "stocks": {"A": "2 * k", "B": "A + y", "C": 5}, "parameters": {"k": 1},
         "equations": {"y": "C * k", "d(A)": "1", "d(B)": "0", "d(C)": "0"}}
    m = model_from_dict(d)
    batch = sdmodel.simulate_batch(m, np.array([[1.0], [3.0]]), ["k"], solver=sdmodel.Solver(method="euler"))
    assert batch["A"][:, 0].tolist() == [2.0, 6.0]
    assert batch["B"][:, 0].tolist() == [7.0, 21.0]      # A + C * k, a chain of two
    loop = {**d, "stocks": {"A": "B", "B": "A + 1", "C": 5}}
    with pytest.raises(CompileError, match=r"initial values of these stocks depend on each other: (A -> B -> A|B -> A -> B)"):
        sdmodel.compile_model(model_from_dict(loop), cache=False)


def test_lookup_tables_are_validated():
    base = {"name": "lk", "time": {"start": 0, "stop": 1}, "stocks": {"S": 0},
            "equations": {"d(S)": "tab(t)"}}
    with pytest.raises(SpecError, match=r"lookups\.tab: x values must increase strictly; point 2"):
        model_from_dict({**base, "lookups": {"tab": {"points": [[0, 0], [0, 1]]}}})
    with pytest.raises(SpecError, match=r"lookups\.tab: expected points"):
        model_from_dict({**base, "lookups": {"tab": {"points": [[0]]}}})
    with pytest.raises(SpecError, match=r"lookup tab\(\) takes one argument"):
        model_from_dict({**base, "lookups": {"tab": [[0, 0], [1, 2]]}, "equations": {"d(S)": "tab(t, 1)"}})
    m = model_from_dict({**base, "lookups": {"tab": [[0, 0], [1, 2]]}})
    assert sdmodel.simulate(m, solver=sdmodel.Solver(method="euler", dt=0.5)).to_frame()["S"].iloc[-1] == pytest.approx(0.5)


def test_subscripts_and_missing_control_are_named(tmp_path):
    path = tmp_path / "sub.mdl"
    path.write_text("{UTF-8}\nregion: north, south\n~~|\n\npop[region] = INTEG(births[region], 10)\n~ people\n~|\n\n"
                    "births[region] = 1\n~ people/year\n~|\n\nFINAL TIME = 10\n~ year\n~|\n\n"
                    "INITIAL TIME = 0\n~ year\n~|\n\nSAVEPER = 1\n~ year\n~|\n")
    with pytest.raises(SpecError) as info:
        sdmodel.load_model(path)
    msg = str(info.value)
    # the subscripts themselves import now (tests/test_translate_arrays.py): only the control section is named
    assert "sub.mdl" in msg and "the control section lacks TIME STEP" in msg
    with pytest.raises(SpecError, match="no such file"):
        read_sd_file(tmp_path / "missing.mdl")
