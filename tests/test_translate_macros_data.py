"""Vensim macros and GET DIRECT DATA / LOOKUPS / CONSTANTS in the importer (issue 29, item 3).

A macro call is expanded inline: the macro's elements become hidden elements of the caller
(``<element>__<macro>``, a stock for an INTEG), once per call. The GET functions read a CSV file
(or an .xlsx workbook) beside the model the way PySD reads it: data is a lookup of time, linear
between the points and held beyond them. Each is checked against PySD 3.14's run of the same file
(``tests/data/vensim/macro.mdl``, ``get_direct.mdl`` with ``get_direct_data.csv``) and against
the rule, worked out by hand.
"""


import numpy as np
import pytest

import sdmodel
from .sdfiles import ours, pysd_run
from sdmodel.core.errors import SpecError
from sdmodel.model.translate import import_report, read_sd_file

pysd = pytest.importorskip("pysd")

from .conftest import ROOT  # noqa: E402

VENSIM = ROOT / "tests" / "data" / "vensim"




def compare(path, tmp_path, *extra):
    tr = read_sd_file(path)
    got, theirs = ours(path), pysd_run(path, tmp_path, *extra)
    compared = 0
    for original, name in tr.names.items():
        if original in theirs.columns:
            a, b = got[name].to_numpy(float), theirs[original].to_numpy(float)
            assert np.allclose(a, b, rtol=1e-9, atol=1e-9), f"{original!r} differs by {np.abs(a - b).max():.2e}"
            compared += 1
    return compared


def mdl(tmp_path, text, name="case"):
    path = tmp_path / f"{name}.mdl"
    path.write_text(
        "{UTF-8}\n" + text + "\nFINAL TIME = 2 ~~|\nINITIAL TIME = 0 ~~|\nSAVEPER = TIME STEP ~~|\nTIME STEP = 0.5 ~~|\n"
    )
    return path


# --------------------------------------------------------------------------- macros
def test_macros_match_pysd(tmp_path):
    assert compare(VENSIM / "macro.mdl", tmp_path) == 4


def test_macros_expand_inline():
    model = sdmodel.load_model(VENSIM / "macro.mdl")
    # one stock per EXPGROWTH call; the macro's own constant is not a parameter of the model
    assert sorted(model.stocks) == ["capital__expgrowth", "debt__expgrowth"]
    assert list(model.param_values) == ["growth_rate"]
    got = ours(VENSIM / "macro.mdl")
    t = got.index.to_numpy(float)
    n = np.arange(len(t))
    assert np.allclose(got["capital"], 100 * 1.025**n, rtol=1e-13)  # start * (1 + rate * dt)^n
    assert np.allclose(got["nested"], ((t + 1) * 3 + 1) * 0.5, rtol=1e-14)  # AFFINE(AFFINE(t, 3), 0.5)
    report = import_report(VENSIM / "macro.mdl")
    assert "'debt': macro affine expanded inline as debt__affine (and 2 elements)" in report
    assert "'capital': macro expgrowth expanded inline as capital__expgrowth" in report


@pytest.mark.parametrize("text, match", [
    (":MACRO: TWO(a, b : second)\nTWO = a + b ~~|\nsecond = a - b ~~|\n:END OF MACRO:\ny = TWO(1, 2, s) ~~|",
     r"'y': the macro two with more than one output \(: second\) is not supported"),
    (":MACRO: ONE(a)\nONE = a ~~|\n:END OF MACRO:\ny = ONE(1, 2) ~~|",
     r"'y': the macro one with 2 arguments \(it takes 1\) is not supported"),
])
def test_macros_not_expanded_are_refused_by_name(tmp_path, text, match):
    with pytest.raises(SpecError, match=match):
        read_sd_file(mdl(tmp_path, text))


# --------------------------------------------------------------------------- GET DIRECT
CSV = VENSIM / "get_direct_data.csv"


def test_get_direct_matches_pysd(tmp_path):
    assert compare(VENSIM / "get_direct.mdl", tmp_path, CSV) == 4


def test_get_direct_reads_the_file_as_vensim_lays_it_out():
    got = ours(VENSIM / "get_direct.mdl")
    t = got.index.to_numpy(float)
    # exports: times 0, 1, 2.5, 4 down column A, values down B; linear between, held after 4
    assert np.allclose(got["exports"], np.interp(t, [0, 1, 2.5, 4], [10, 12, 15, 14]), rtol=1e-14)
    assert got["exports"].iloc[-1] == 14
    assert np.allclose(got["imports"], np.interp(1.5 * t, [0, 1, 2.5, 4], [8, 9, 11, 13]), rtol=1e-14)
    assert got["tax_rate"].iloc[0] == 0.3  # cell D3, a parameter like any constant
    report = import_report(VENSIM / "get_direct.mdl")
    assert "'exports': data from get_direct_data.csv (4 points): the lookup exports__data of time" in report
    assert "'tax rate': constant read from get_direct_data.csv, cell D3" in report


def test_get_direct_from_an_xlsx_workbook(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.title = "flows"
    for row in ([None, "x"], [0, 1.0], [2, 5.0], [4, 3.0]):
        sheet.append(row)
    wb.save(tmp_path / "book.xlsx")
    path = mdl(tmp_path, "y := GET XLS DATA('book.xlsx', 'flows', 'A', 'B2') ~~|")
    got = ours(path)
    assert np.allclose(got["y"], np.interp(got.index.to_numpy(float), [0, 2, 4], [1, 5, 3]), rtol=1e-14)


@pytest.mark.parametrize("csv, text, match", [
    (None, "y := GET DIRECT DATA('nothere.csv', ',', 'A', 'B2') ~~|",
     r"'y': GET XLS DATA / GET DIRECT DATA is not supported for 'nothere.csv': no such file beside the model"),
    ("t,x\n0,1\n1,\n2,3\n", "y := GET DIRECT DATA('d.csv', ',', 'A', 'B2') ~~|",
     r"'y': GET XLS DATA / GET DIRECT DATA \(d.csv, 'A', 'B2'\): a blank or non-numeric cell inside the series"),
    ("t,x\n0,1\n2,2\n1,3\n", "y = GET DIRECT LOOKUPS('d.csv', ',', 'A', 'B2') ~~|\nz = y(Time) ~~|",
     r"'y': GET XLS LOOKUPS / GET DIRECT LOOKUPS \(d.csv, 'A', 'B2'\): the x \(time\) values do not increase"),
    ("t,x\n0,1\n", "y = GET DIRECT CONSTANTS('d.csv', ',', 'C9') ~~|",
     r"'y': GET XLS CONSTANTS / GET DIRECT CONSTANTS \(d.csv, 'C9'\): the cell is outside the file's table"),
    ("t,x\n0,1\n", "y = GET DIRECT CONSTANTS('d.csv', ',', 'A1') ~~|",
     r"'y': GET XLS CONSTANTS / GET DIRECT CONSTANTS \(d.csv, 'A1'\): the cell is blank or not a number"),
    ("t,x\n0,1\n", "y := GET DIRECT DATA('d.ods', ',', 'A', 'B2') ~~|",
     r"'y': GET XLS DATA / GET DIRECT DATA is not supported for 'd.ods': only CSV or text files and .xlsx"),
    ("t,x\n0,1\n", "c: n, s ~~|\ny[c] := GET DIRECT DATA('d.csv', ',', 'A', 'B2') ~~|",
     r"'y\[n\]': GET XLS DATA / GET DIRECT DATA in a subscripted element is not supported"),
])
def test_get_direct_problems_are_named(tmp_path, csv, text, match):
    if csv is not None:
        (tmp_path / "d.csv").write_text(csv)
    with pytest.raises(SpecError, match=match) as info:
        read_sd_file(mdl(tmp_path, text))
    assert "case.mdl" in str(info.value)
