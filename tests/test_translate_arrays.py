"""Vensim subscripts and XMILE arrays in the importer (issue 29, item 2).

Each subscripted element becomes one scalar per cell, named ``<element>__<e1>__<e2>`` (model names
are identifiers: no brackets), and :attr:`Translation.names` maps Vensim's own name of each cell,
``income[north]``, to it; the cell's doc starts with that name. One small model per feature under
``tests/data/vensim/subscript_*.mdl`` and ``tests/data/xmile/arrays.xmile``: each checked against
the rule Vensim's documentation states (expected values worked out by hand, below) and against
PySD 3.14's own run of the same file, to 1e-9. What the importer does not expand is refused by
name, with a :class:`~sdmodel.core.errors.SpecError`, never dropped.
"""


import numpy as np
import pytest

import sdmodel

from .sdfiles import ours, pysd_run
from sdmodel import cli
from sdmodel.core.errors import SpecError
from sdmodel.model.translate import import_report, read_sd_file

pysd = pytest.importorskip("pysd")

from .conftest import ROOT  # noqa: E402

VENSIM = ROOT / "tests" / "data" / "vensim"
XMILE = ROOT / "tests" / "data" / "xmile"
MODELS = [VENSIM / f"subscript_{n}.mdl" for n in ("ranges", "subranges", "mapping", "vector", "lookups")] + [
    VENSIM / "vector_select.mdl",
    XMILE / "arrays.xmile",
]




def cells(path):
    """The run with Vensim's names (``income[north]``) as columns."""
    tr = read_sd_file(path)
    got = ours(path)
    return got.rename(columns={v: k for k, v in tr.names.items()})


def mdl(tmp_path, text, name="case"):
    """A small Vensim file: ``text`` (equations ending in ``~~|``) and the control section."""
    path = tmp_path / f"{name}.mdl"
    path.write_text(
        "{UTF-8}\n" + text + "\nFINAL TIME = 2 ~~|\nINITIAL TIME = 0 ~~|\nSAVEPER = TIME STEP ~~|\nTIME STEP = 0.5 ~~|\n"
    )
    return path


# --------------------------------------------------------------------------- against PySD
@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_subscripted_models_match_pysd(path, tmp_path):
    tr = read_sd_file(path)
    got, theirs = ours(path), pysd_run(path, tmp_path)
    assert np.allclose(got.index.to_numpy(float), theirs.index.to_numpy(float), rtol=0, atol=1e-12)
    compared = 0
    for original, name in tr.names.items():
        if original in theirs.columns:
            a, b = got[name].to_numpy(float), theirs[original].to_numpy(float)
            assert np.allclose(a, b, rtol=1e-9, atol=1e-9), f"{original!r} differs by {np.abs(a - b).max():.2e}"
            compared += 1
    # every cell PySD reports is compared (lookups are not columns in PySD's output)
    assert compared == sum(1 for c in theirs.columns if c in tr.names) and compared >= 5


# --------------------------------------------------------------------------- names
def test_cells_keep_vensims_names():
    tr = read_sd_file(VENSIM / "subscript_ranges.mdl")
    assert tr.names["income[north]"] == "income__north"
    assert tr.names["spending[south,households]"] == "spending__south__households"
    assert tr.subscripts["income"] == {"income[north]": "income__north", "income[south]": "income__south",
                                       "income[east]": "income__east"}
    assert tr.model["stocks"]["income__east"]["doc"].startswith("income[east]: ")
    assert tr.model["parameters"]["start__south"]["doc"].startswith("start[south]")
    # a scalar keeps its plain name
    assert tr.names["north income share"] == "north_income_share"


# --------------------------------------------------------------------------- the rules, by hand
def test_ranges_lists_per_element_and_except():
    # `start[country] = 100, 200, 300`: one number per element in the range's order; growth defined
    # element by element; `share[country] :EXCEPT: [east]` then `share[east]`; 2-D lists by rows
    got = cells(VENSIM / "subscript_ranges.mdl")
    assert [got[f"start[{c}]"].iloc[0] for c in ("north", "south", "east")] == [100, 200, 300]
    assert [got[f"share[{c}]"].iloc[0] for c in ("north", "south", "east")] == [0.25, 0.25, 0.75]
    assert got["weights[south,households]"].iloc[0] == 4 and got["weights[east,firms]"].iloc[0] == 5
    # INTEG of a subscripted stock: Euler at dt 0.25, income = start * (1 + g * dt)^n per country
    n = np.arange(17)
    for c, s, g in (("north", 100, 0.1), ("south", 200, 0.2), ("east", 300, -0.05)):
        assert np.allclose(got[f"income[{c}]"].to_numpy(), s * (1 + g * 0.25) ** n, rtol=1e-13)
    i = got["income[south]"] * got["share[south]"] * got["weights[south,firms]"]
    assert np.allclose(got["spending[south,firms]"], i, rtol=1e-14)


def test_subranges_mapping_and_subscript_values():
    got = cells(VENSIM / "subscript_subranges.mdl")
    # a range built from subranges: europe = uk, france, spain, italy; a range as a value is the
    # element's position in it (Vensim: the subscript's number, from 1)
    assert [got[f"rank[{c}]"].iloc[0] for c in ("uk", "france", "spain", "italy")] == [1, 2, 3, 4]
    assert [got[f"is spain[{c}]"].iloc[0] for c in ("uk", "france", "spain", "italy")] == [0, 0, 1, 0]
    assert got["tax rate[uk]"].iloc[0] == 0.3 and got["tax rate[italy]"].iloc[0] == 0.2
    assert "premium[uk]" not in got.columns  # defined on the subrange euro area only
    euro = sum(got[f"debt[{c}]"] + got[f"premium[{c}]"] for c in ("france", "spain", "italy"))
    assert np.allclose(got["euro debt"], euro, rtol=1e-14)
    # mapping (Vensim's example): quality[clay] is work quality[wtclay], and so on in order
    got = cells(VENSIM / "subscript_mapping.mdl")
    for p, w, q in (("clay", "wtclay", 0.9), ("plastic", "wtplastic", 0.7), ("wood", "wtwood", 0.8)):
        assert got[f"quality[{p}]"].iloc[0] == got[f"work quality[{w}]"].iloc[0] == q
        assert got[f"output[{p}]"].iloc[-1] == pytest.approx(q * 10 * 2, rel=1e-14)


def test_mapping_onto_a_list_of_elements():
    # Vensim: `activity: farming, manufacturing, trade -> (sector: agriculture, industry, services)` maps
    # the n-th element to the n-th listed one, in either direction of use. PySD 3.14 appends the listed
    # elements to the range itself (and then cannot build the model), so the values are by hand.
    tr = read_sd_file(VENSIM / "subscript_mapping_list.mdl")
    assert "output[farming]" in tr.names and "output[agriculture]" not in tr.names
    got = cells(VENSIM / "subscript_mapping_list.mdl")
    out = {"farming": 10, "manufacturing": 20, "trade": 30}
    added = {"agriculture": 10, "industry": 20, "services": 30}
    assert {s: got[f"value added[{s}]"].iloc[0] for s in added} == added
    assert [got[f"by branch[{b}]"].iloc[0] for b in ("b1", "b2", "b3")] == [2 * v for v in out.values()]
    weight = {"services": 1, "agriculture": 2, "industry": 3}  # code a, b, c -> services, agriculture, industry
    assert {s: got[f"weighted[{s}]"].iloc[0] for s in added} == {s: added[s] * weight[s] for s in added}
    assert [got[f"code value[{c}]"].iloc[0] for c in ("code a", "code b", "code c")] == [30, 10, 20]
    assert [got[f"capital[{s}]"].iloc[-1] for s in added] == [2 * added[s] * weight[s] for s in added]


def test_vector_functions():
    got = cells(VENSIM / "subscript_vector.mdl")
    stock = np.column_stack([got[f"stock[{c}]"] for c in ("north", "south", "east")])
    price = np.array([2, 0.5, 4])
    # SUM(flows[country, sector!]): each country's stock gains its row sum per month
    assert np.allclose(stock[-1], price + 3 * np.array([3, 7, 11]), rtol=1e-14)
    assert np.allclose(got["total"], stock.sum(axis=1), rtol=1e-14)
    assert np.allclose(got["value"], stock @ price, rtol=1e-14)
    assert got["product of prices"].iloc[0] == 4
    assert np.allclose(got["smallest"], stock.min(axis=1)) and np.allclose(got["largest"], (stock / price).max(axis=1))
    assert got["all flows"].iloc[0] == 21
    assert np.allclose(sum(got[f"share[{c}]"] for c in ("north", "south", "east")), 1, rtol=1e-14)


def test_vector_select():
    # Vensim's VECTOR SELECT(selection[r!], expression[r!], missing, action, 0) over the elements whose
    # selection is not 0 (selected = 1, 0, 2, 0): actions 0-4 on selection * expression, 5 the product
    # of expression ^ selection, 6-10 on the expression; no element selected: the missing value (-1)
    got = cells(VENSIM / "vector_select.mdl")
    end = got.iloc[-1]
    stock = {"north": 6, "south": 10, "east": 8, "west": 14}  # price * (1 + 0.5 * 2)
    assert [end[f"stock[{r}]"] for r in stock] == list(stock.values())
    assert (end["weighted sum"], end["weighted product"], end["weighted min"], end["weighted max"]) == (
        1 * 6 + 2 * 8, (1 * 3) * (2 * 4), 6, 16)
    assert end["weighted mean"] == (6 + 16) / 2 and end["power product"] == 3**1 * 4**2
    assert (end["selected sum"], end["selected product"], end["selected min"], end["selected max"],
            end["selected mean"]) == (14, 12, 6, 8, 7)
    assert end["nothing"] == -1
    assert (end["by sector[firms]"], end["by sector[households]"]) == (1 + 3, 5 + 7)


def test_subscripted_lookups():
    got = cells(VENSIM / "subscript_lookups.mdl")
    assert got["demand north"].iloc[0] == pytest.approx(10 - 4 * 3 / 5, rel=1e-14)  # (0,10)-(5,6) at 3
    t = got.index.to_numpy(float)
    south = np.interp(2 * t, [0, 10], [8, 4]) * (1 - np.interp(t, [0, 4], [0, 1]))
    assert np.allclose(got["demand[south]"], south, rtol=1e-14)


def test_xmile_arrays():
    got = cells(XMILE / "arrays.xmile")
    n = np.arange(17)
    for c, b in (("north", 0.1), ("south", 0.2), ("east", 0.05)):
        # XMILE names the arrayed flows of an arrayed stock without subscripts: element by element
        assert np.allclose(got[f"population[{c}]"], 50 * (1 + (b - 0.08) * 0.25) ** n, rtol=1e-13)
    assert np.allclose(got["spending[east,households]"], 6 * got["population[east]"] / 100, rtol=1e-14)


def test_xmile_array_builtins_and_slices():
    # XMILE 1.0, 3.7.1 and the array builtins: `*` runs over a dimension inside SUM, PROD, MIN, MAX,
    # MEAN and SIZE (an arrayed variable named without subscripts is the whole array there), and stands
    # for the element bound on the left outside one; a number is an index (from 1). PySD's XMILE parser
    # does not read `[*]`, so every value here is worked out from those rules by hand.
    got = cells(XMILE / "array_builtins.xmile")
    n = np.arange(5)
    pop = {c: p0 * (1 + r * 0.5) ** n for c, p0, r in (("north", 10, 0.1), ("south", 30, 0.2), ("east", 50, -0.1))}
    for c in pop:
        assert np.allclose(got[f"population[{c}]"], pop[c], rtol=1e-14)
        assert np.allclose(got[f"share[{c}]"], pop[c] / sum(pop.values()), rtol=1e-14)
    total = sum(pop.values())
    assert np.allclose(got["total"], total, rtol=1e-14) and np.allclose(got["total bare"], total, rtol=1e-14)
    assert got["firm product"].iloc[0] == 1 * 3 * 5
    assert (got["column sum[firms]"].iloc[0], got["column sum[households]"].iloc[0]) == (9, 12)
    assert [got[f"row mean[{c}]"].iloc[0] for c in pop] == [1.5, 3.5, 5.5]
    assert got["largest"].iloc[0] == 6 and got["smallest"].iloc[0] == 1
    ratio = np.max([pop["north"] / 1, pop["south"] / 3, pop["east"] / 5], axis=0)
    assert np.allclose(got["largest ratio"], ratio, rtol=1e-14)
    assert got["count"].iloc[0] == 3 and got["count all"].iloc[0] == 6
    assert got["mean of arguments"].iloc[0] == 3
    assert np.allclose(got["larger of two"], np.maximum(total, 100), rtol=1e-14)
    assert [got[f"households column[{c}]"].iloc[0] for c in pop] == [2, 4, 6]
    assert np.allclose(got["by index"], 3 + pop["east"], rtol=1e-14)


def test_xmile_dimension_given_by_its_size():
    # XMILE 1.0, 3.7.1: <dim name="products" size="3"/> has the elements 1, 2, 3 (PySD reads no elements)
    got = cells(XMILE / "sized_dimension.xmile")
    price = {"1": 2, "2": 3, "3": 5}
    assert [got[f"sales[{p},south]"].iloc[0] for p in price] == [10 * v for v in price.values()]
    assert got["second"].iloc[0] == 3
    t = got.index.to_numpy(float)
    assert np.allclose(got["revenue[north]"], 10 * sum(price.values()) * t, rtol=1e-14)


# --------------------------------------------------------------------------- results keep the file's names
def test_results_name_cells_as_the_file_does(tmp_path, capsys):
    # model names are identifiers (stock__north); results, SaveAt(outputs=...), `sdmodel run --outputs`
    # and the CSV and netCDF columns use the file's own name, stock[north], and take either
    import xarray as xr

    path = VENSIM / "subscript_vector.mdl"
    model = sdmodel.load_model(path)
    assert "stock__north" in model.stocks and model.labels["stock__north"] == "stock[north]"
    res = sdmodel.simulate(model)
    frame = res.to_frame()
    assert {"stock[north]", "share[east]", "total"} <= set(frame.columns)
    assert not any("__" in c for c in frame.columns)
    assert np.array_equal(res["stock[north]"], res["stock__north"])
    assert np.array_equal(frame["stock[east]"].to_numpy(), res["stock__east"])
    some = sdmodel.simulate(model, saveat=sdmodel.SaveAt(outputs=["stock[south]", "total", "share__east"]))
    assert list(some.to_frame().columns) == ["stock[south]", "total", "share[east]"]
    assert np.array_equal(some["stock[south]"], res["stock[south]"])
    with pytest.raises(SpecError, match=r"'stock\[west\]' is not an output of model 'subscript_vector'"):
        sdmodel.simulate(model, saveat=sdmodel.SaveAt(outputs=["stock[west]"]))
    batch = sdmodel.simulate_batch(model, [[2.0], [3.0]], ["price__north"],
                                   saveat=sdmodel.SaveAt(outputs=["stock[north]", "total"]))
    assert list(batch.to_frame().columns) == ["stock[north]", "total"]
    assert batch["stock[north]"][:, 0].tolist() == [2.0, 3.0]
    assert batch.run(1).to_frame().columns[0] == "stock[north]"
    batch.to_xarray().to_netcdf(tmp_path / "runs.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "runs.nc", engine="h5netcdf") as back:
        assert np.array_equal(back["stock[north]"].values, batch["stock__north"])
    # the CLI: --outputs by the file's names, and results.csv, columns.csv and variables.csv name them so
    out = tmp_path / "run"
    assert cli.main(["run", str(path), "--out", str(out), "--no-figure", "--no-progress",
                     "--outputs", "stock[north]", "share[south]"]) == 0
    assert "at the end stock[north]=" in capsys.readouterr().out
    assert (out / "results.csv").read_text().splitlines()[0] == "t,stock[north],share[south]"
    assert "stock[north],stock" in (out / "columns.csv").read_text()
    assert "\nstock[north]," in (out / "variables.csv").read_text()


# --------------------------------------------------------------------------- the import report
def test_import_report_lists_what_was_expanded(capsys):
    report = import_report(VENSIM / "subscript_ranges.mdl")
    assert "7 elements -> 3 stocks (0 added by built-ins)" in report
    assert "subscript ranges: country (north, south, east); sector (firms, households)" in report
    assert "'income': expanded into 3 scalars (stock): income[north] .. income[east] as income__north .. " \
           "income__east" in report
    assert "'spending': expanded into 6 scalars (equation)" in report
    assert "mapping" not in report
    assert "-> product" in import_report(VENSIM / "subscript_mapping.mdl")
    assert cli.main(["check", str(VENSIM / "subscript_vector.mdl")]) == 0
    out = capsys.readouterr().out
    assert "'stock': expanded into 3 scalars (stock): stock[north] .. stock[east]" in out
    assert "'all flows': SUM over country, sector expanded into 6 terms" in out
    report = import_report(VENSIM / "vector_select.mdl")
    assert "'weighted min': VECTOR SELECT (action 2) expanded over 4 elements" in report
    assert report.count("'by sector': VECTOR SELECT") == 1  # once for the element, not per cell
    assert "'row mean': MEAN over sector expanded into 2 terms" in import_report(XMILE / "array_builtins.xmile")


# --------------------------------------------------------------------------- refused by name
@pytest.mark.parametrize("text, match", [
    ("lhs: l1, l2 ~~|\nrhs: r1, r2 -> (lhs: l2) ~~|\na[rhs] = 1, 2 ~~|\nb[lhs] = a[rhs] ~~|",
     r"subscript range 'rhs': the mapping onto \(lhs: l2\) is not supported \(one element of 'lhs' for each of "
     r"the 2 elements of 'rhs'\)"),
    ("lhs: l1, l2 ~~|\nrhs: r1, r2 -> (lhs: l2, l2) ~~|\na[rhs] = 1, 2 ~~|\nb[lhs] = a[rhs] ~~|",
     r"'b\[l1\]': the mapping of 'rhs' onto 'lhs' read at 'l1', which 0 elements map to"),
    ("c: n, s ~~|\nd: x, y ~~|\na[d] = 1 ~~|\nb[c] = a[d] ~~|",
     r"'b\[n\]': the subscript range 'd' on the right of an equation whose left side does not bind it"),
    ("c: n, s ~~|\nsub: s ~~|\na[sub] = 1 ~~|\nb[c] = a[c] ~~|", r"'b\[n\]': reading a\[n\], which is not defined"),
    ("c: n, s ~~|\na[c] = 1 ~~|\nb = a * 2 ~~|", r"'b': the subscripted 'a' used without subscripts is not supported"),
    ("c: n, s ~~|\na = 1 ~~|\nb[c] = a[c] ~~|", r"'b\[n\]': subscripts on 'a', which is not subscripted"),
    ("c: n, s ~~|\na[c] = 1 ~~|\nb[c] = a[c!] ~~|", r"'b\[n\]': the subscript 'c!' outside SUM, PROD, VMIN or VMAX"),
    ("c: n, s ~~|\na[c] = 1 ~~|\nb = SUM(a[n]) ~~|", r"'b': SUM without a 'range!' subscript to run over"),
    ("c: n, s ~~|\na[c] = 1, 2 ~~|\na[n] = 3 ~~|", r"'a': two definitions of a\[n\] \(defined twice\)"),
    ("c: n, s ~~|\na[c] = 1, 2, 3 ~~|", r"'a': a list of 3 numbers for 2 cells is not supported"),
    ("c: n, s ~~|\na[c] = 1, 2 ~~|\nb[c] = VECTOR ELM MAP(a[n], 1) ~~|",
     r"'b\[n\]': the function VECTOR ELM MAP is not supported \(line 4\)"),
    ("c: n, s ~~|\na[c] = 1, 2 ~~|\nb[c] = VECTOR SORT ORDER(a[c], 1) ~~|",
     r"'b\[n\]': the function VECTOR SORT ORDER is not supported \(line 4\)"),
    ("c: n, s ~~|\na[c] = 1, 2 ~~|\nb[c] = VECTOR RANK(a[c], 1) ~~|",
     r"'b\[n\]': the function VECTOR RANK is not supported \(line 4\)"),
    # the line where the element is defined, not an earlier line of another equation that reads it
    ("c: n, s ~~|\nx[c] = 1, 2 ~~|\nb = 1 +\n  a ~~|\na = VECTOR RANK(x[c!], 1) ~~|",
     r"'a': the function VECTOR RANK is not supported \(line 6\)"),
    ("c: n, s ~~|\na[c] = 1, 2 ~~|\nsel[c] = 1, 0 ~~|\nb = VECTOR SELECT(sel[c!], a[c!], 0, 0, 1) ~~|",
     r"'b': VECTOR SELECT with an error action other than 0 .* is not supported \(line 5\)"),
    ("c: n, s ~~|\na[c] = 1, 2 ~~|\nsel[c] = 1, 0 ~~|\nb = VECTOR SELECT(sel[c!], a[c!], 0, Time, 0) ~~|",
     r"'b': VECTOR SELECT with a numerical action that is not a constant from 0 to 10 is not supported"),
    ("c: n, s ~~|\na[c, c] = 1 ~~|\nb = a[n] ~~|", r"'b': 'a' with 1 subscripts \(it has 2\) is not supported"),
])
def test_what_is_not_expanded_is_refused_by_name(tmp_path, text, match):
    with pytest.raises(SpecError, match=match) as info:
        read_sd_file(mdl(tmp_path, text))
    assert "case.mdl" in str(info.value)


def test_subscript_range_from_a_file_is_refused(tmp_path):
    path = mdl(tmp_path, "c: GET DIRECT SUBSCRIPT('s.csv', ',', 'A1', 'A3', '') ~~|\na[c] = 1 ~~|")
    with pytest.raises(SpecError, match=r"subscript range 'c': ranges read from a file \(GET ... SUBSCRIPT\)"):
        read_sd_file(path)


XMILE_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0">
  <header><vendor>sdmodel tests</vendor><product version="1.0">hand written</product></header>
  <sim_specs method="Euler"><start>0</start><stop>2</stop><dt>0.5</dt></sim_specs>
"""


DIM_C = ('<dimensions><dim name="c"><elem name="n"/><elem name="s"/></dim></dimensions><model><variables>'
         '<aux name="a"><dimensions><dim name="c"/></dimensions><eqn>1</eqn></aux>')


@pytest.mark.parametrize("body, match", [
    # what the array builtins do not cover: named, with the variable and its line, not a parser's trace
    (DIM_C + '<aux name="b"><eqn>SUM(a[1:2])</eqn></aux></variables></model>',
     r"'b' \(line 5\): the XMILE array range, dimension position or transpose '\[1:2\]' is not supported"),
    (DIM_C + '<aux name="b"><eqn>STDDEV(a[*])</eqn></aux></variables></model>',
     r"'b': the XMILE array builtin STDDEV \(the texts at hand do not fix whether it divides by n or n - 1\)"),
    (DIM_C + '<aux name="b"><eqn>RANK(a[*], 1)</eqn></aux></variables></model>',
     r"'b': the XMILE array builtin RANK \(the texts at hand do not fix how it breaks ties\)"),
    (DIM_C + '<aux name="b"><eqn>a[*] * 2</eqn></aux></variables></model>',
     r"'b': the wildcard '\*' of 'a' \(dimension 'c'\) outside an array builtin"),
    (DIM_C + '<aux name="b"><dimensions><dim name="c"/></dimensions><eqn>SUM(a)</eqn></aux></variables></model>',
     r"'b\[n\]': SUM of the arrayed 'a' named without subscripts in an equation arrayed over its dimension 'c'"),
    (DIM_C + '<aux name="m"><dimensions><dim name="c"/><dim name="c"/></dimensions><eqn>1</eqn></aux>'
     '<aux name="b"><eqn>SUM(m[*, *])</eqn></aux></variables></model>',
     r"'b': SUM of 'm' with two wildcards over the same dimension 'c' is not supported"),
    (DIM_C + '<aux name="m"><dimensions><dim name="c"/><dim name="c"/></dimensions><eqn>1</eqn></aux>'
     '<aux name="b"><dimensions><dim name="c"/></dimensions><eqn>m[c, *]</eqn></aux></variables></model>',
     r"'b\[n\]': the slice m\[c, \*\] outside an array builtin, which names the dimension of a "
     r"wildcard twice"),
    (DIM_C + '<aux name="b"><eqn>SUM(3)</eqn></aux></variables></model>',
     r"'b': SUM of an expression without an array to run over"),
    (DIM_C + '<aux name="b"><eqn>MAX(1, 2, 3)</eqn></aux></variables></model>',
     r"'b' \(line 5\): MAX with more than two arguments is not supported"),
    # PySD 3.14 cannot read graphical functions per element with one equation (the XMILE 1.0 example arrays.xmile)
    (DIM_C + '<aux name="g"><dimensions><dim name="c"/></dimensions><element subscript="n"><gf><xscale min="1" '
     'max="9"/><ypts>0,50,25</ypts></gf></element><element subscript="s"><gf><xscale min="1" max="9"/>'
     '<ypts>9,1,5</ypts></gf></element><eqn>TIME</eqn></aux></variables></model>',
     r"'g' \(line 5\): PySD's XMILE reader could not read this variable's definition \(IndexError"),
    (DIM_C + '<aux name="b"><eqn>a[3]</eqn></aux></variables></model>',
     r"'b': the index 3 of 'a' \(its dimension has 2 elements\) is not supported"),
    ('<dimensions><dim name="c" size="0"/></dimensions><model><variables>'
     '<aux name="a"><dimensions><dim name="c"/></dimensions><eqn>1</eqn></aux></variables></model>',
     r"subscript range 'c' has no elements \(neither named elements nor a whole size of at least 1\)"),
    ('<dimensions><dim name="c"><elem name="n"/><elem name="s"/></dim></dimensions><model><variables>'
     '<aux name="a"><dimensions><dim name="c"/></dimensions><eqn>1</eqn></aux>'
     '<aux name="b"><eqn>a * 2</eqn></aux></variables></model>',
     r"'b': the arrayed 'a' used without subscripts outside its dimensions is not supported"),
])
def test_xmile_arrays_not_expanded_are_refused_by_name(tmp_path, body, match):
    path = tmp_path / "case.xmile"
    path.write_text(XMILE_HEAD + body + "\n</xmile>\n")
    with pytest.raises(SpecError, match=match) as info:
        read_sd_file(path)
    assert "case.xmile" in str(info.value)
