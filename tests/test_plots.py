"""The figures: plain data in, a ``matplotlib.figure.Figure`` out, no process-wide matplotlib state."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import sdmodel
from sdmodel.report import plots


# --------------------------------------------------------------------------- small synthetic inputs
def _frame(cols=("Y", "C", "H"), n=21):
    t = np.linspace(2000, 2020, n)
    return pd.DataFrame({c: np.sin(t / (k + 1)) for k, c in enumerate(cols)}, index=pd.Index(t, name="t"))


def _indices(method, factors=("a", "b", "c"), outcomes=("y1", "y2")):
    rows = []
    for o in outcomes:
        for k, f in enumerate(factors):
            if method == "sobol":
                rows.append(dict(outcome=o, factor=f, S1=0.1 * k, S1_conf=0.02, ST=0.2 * k, ST_conf=0.03))
            else:
                rows.append(dict(outcome=o, factor=f, mu=k, mu_star=k, mu_star_conf=0.1, sigma=0.5 * k))
    return pd.DataFrame(rows)


def _time_indices(factors=("a", "b"), variables=("hh_debt_gdp", "gov_debt_gdp")):
    rows = [dict(variable=v, year=y, factor=f, ST=0.1 * k + 0.01 * (y - 2000), ST_conf=0.02)
            for v in variables for y in range(2000, 2011) for k, f in enumerate(factors)]
    return pd.DataFrame(rows)


def _sequence_table():
    rows = [dict(label=f"r{i}", family="calendar", start=s, k=k, loss=float(s - 1995 + 5 * k), debt=float(k * 30))
            for i, (s, k) in enumerate([(s, k) for s in (1997, 2003, 2011) for k in (1, 2)])]
    rows += [dict(label=f"q{k}", family="state", start=np.nan, k=k, loss=float(k), debt=2.0 * k) for k in (1, 2, 3)]
    return pd.DataFrame(rows)


def _visible(fig):
    return [ax for ax in fig.axes if ax.axison]


def _all_figures():
    """One call of every figure function, with the number of visible panels each should have."""
    frame = _frame()
    hist = {"hh_debt_gdp": (np.arange(1990, 2025), np.linspace(40, 60, 35))}
    debt = pd.DataFrame({"hh_debt_gdp": np.linspace(40, 60, 21), "gov_debt_gdp": np.linspace(60, 200, 21),
                         "firm_debt_gdp": np.linspace(100, 90, 21)}, index=np.linspace(2000, 2020, 21))
    panels = [("hh_debt_gdp", "households"), ("firm_debt_gdp", "non-financial firms"), ("gov_debt_gdp", "government")]
    paths = pd.DataFrame({"target": ["A"] * 10 + ["B"] * 10, "year": list(range(2000, 2010)) * 2,
                          "data": np.arange(20.0), "model": np.arange(20.0) + 0.5})
    return [
        (plots.series_figure(frame, "model sim"), 3),
        (plots.history_figure(debt, hist, panels, "bsr: model against history", source="BIS"), 3),
        (plots.balances_figure(pd.DataFrame({"households": [1.0, 2.0], "government": [-1.0, -2.0]},
                                            index=[2000.0, 2001.0]), "sectoral balances"), 1),
        (plots.flow_figure({("households", "firms"): 80.0, ("firms", "households"): 100.0},
                           ["households", "firms", "government"], "flows"), 0),
        (plots.fit_figure(paths, (2000, 2005), {"A": 0.5, "B": 0.25}, log={"A"}, not_fitted={"B"}, title="fit"), 2),
        (plots.index_figure(_indices("sobol"), ["a", "b", "c"], ["y1", "y2"], "sobol", "Sobol"), 2),
        (plots.index_figure(_indices("morris"), ["a", "b", "c"], ["y1", "y2"], "morris", "Morris"), 2),
        (plots.time_figure(_time_indices(), ["a", "b"], "ST", "time-varying"), 2),
        (plots.heatmap_figure(_sequence_table(), {"calendar": ["start", "k"], "state": ["k"]}, ["loss", "debt"],
                              "design timing"), 4),
    ]


# --------------------------------------------------------------------------- each figure
def test_series_figure_panels_titles_and_time_axis():
    fig = plots.series_figure(_frame(cols=list("ABCDEFGHIJ")), "model x")
    shown = _visible(fig)
    assert isinstance(fig, Figure) and len(fig.axes) == 8 and len(shown) == 8   # at most eight panels
    assert [ax.get_title() for ax in shown] == list("ABCDEFGH")
    assert all(len(ax.get_lines()) == 1 for ax in shown)
    assert [ax.get_xlabel() for ax in shown[-2:]] == ["t", "t"]
    assert fig._suptitle.get_text() == "model x"
    odd = plots.series_figure(_frame(cols=("A", "B", "C")), "odd")
    assert len(odd.axes) == 4 and len(_visible(odd)) == 3   # the spare panel is switched off


def test_history_figure_draws_model_and_history_inside_the_run():
    frame = pd.DataFrame({"hh_debt_gdp": np.linspace(40, 60, 11), "gov_debt_gdp": np.linspace(60, 80, 11)},
                         index=np.arange(2000.0, 2011.0))
    hist = {"hh_debt_gdp": (np.arange(1990, 2021), np.linspace(30, 70, 31))}
    fig = plots.history_figure(frame, hist, [("hh_debt_gdp", "households"), ("gov_debt_gdp", "government")],
                               "m: model against history", source="BIS total credit", units="% of GDP")
    hh, gov = _visible(fig)
    assert hh.get_title() == "households" and hh.get_ylabel() == "% of GDP"   # titles and units: the model's
    assert [ln.get_label() for ln in hh.get_lines()] == ["model", "data"]
    assert list(hh.get_lines()[1].get_xdata()) == list(range(2000, 2011))   # history outside the run is not drawn
    assert len(gov.get_lines()) == 1   # no history for it
    assert hh.get_xlabel() == gov.get_xlabel() == "year (1990 = the start of 1990)"   # times in calendar years
    assert any("data: BIS total credit" in t.get_text() for t in fig.texts)


def test_history_figure_panels_of_several_outputs_events_and_window():
    t = np.arange(1990.0, 2001.0)
    frame = pd.DataFrame({"nl_a": np.linspace(-2, 2, 11), "nl_b": np.linspace(2, -2, 11), "d": t - 1990}, index=t)
    hist = {"nl_a": (np.array([1994.75, 1995.75]), np.array([1.0, 1.5])), "d": (t[:5] + 1, np.arange(5.0))}
    panels = [{"title": "balances", "outputs": ("nl_a", "nl_b"), "units": "% of GDP"},
              {"title": "debt", "outputs": ("d",), "units": "% a year"}]
    events = [(1985.0, "before the run"), (1997.25, "tax"), (1999.0, "bust")]
    fig = plots.history_figure(frame, hist, panels, "m", events=events, window=(1992.0, 1998.0, "fit window"))
    bal, debt = _visible(fig)
    assert bal.get_ylabel() == "% of GDP" and debt.get_ylabel() == "% a year"   # each panel's own unit
    labels = [ln.get_label() for ln in bal.get_lines()]
    assert labels[0] == "nl_a" and labels[1].startswith("_") and labels[2] == "nl_b"   # data: no legend entry of its own
    assert bal.get_lines()[0].get_color() == bal.get_lines()[1].get_color() != bal.get_lines()[2].get_color()
    assert list(bal.get_lines()[1].get_xdata()) == [1994.75, 1995.75]   # data where their shift puts them
    for ax in (bal, debt):   # two events inside the run, marked in every panel; the window shaded
        assert [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"] == [1997.25, 1999.0]
        assert len(ax.patches) == 1 and ax.patches[0].get_x() == 1992.0
    foot = " ".join(t.get_text() for t in fig.texts)
    assert "1 tax (1997.25)" in foot and "2 bust (1999)" in foot and "before the run" not in foot
    assert "fit window" in [txt.get_text() for txt in debt.get_legend().get_texts()]


def test_balances_figure_unit_and_zero_line():
    bal = pd.DataFrame({"households": [2.0, 3.0], "government": [-2.0, -3.0]}, index=[2000.0, 2001.0])
    (ax,) = plots.balances_figure(bal, "sectoral balances", ylabel="net lending (% of GDP)").axes
    assert ax.get_ylabel() == "net lending (% of GDP)"
    assert plots.balances_figure(bal, "b").axes[0].get_ylabel() == "net lending"   # no unit unless the model says
    assert [ln.get_label() for ln in ax.get_lines()[:2]] == ["households", "government"]
    assert len(ax.get_lines()) == 3   # two sectors and the zero line


def test_flow_figure_one_arrow_per_positive_flow_and_a_label_per_sector():
    from matplotlib.patches import FancyArrowPatch
    edges = {("households", "firms"): 80.0, ("firms", "households"): 100.0, ("firms", "nowhere"): 5.0,
             ("government", "firms"): 0.0}
    (ax,) = plots.flow_figure(edges, ["households", "firms", "government"], "flows at t = 2000").axes
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == 2
    texts = {t.get_text() for t in ax.texts}
    assert {"households", "firms", "government", "80", "100"} <= texts
    assert ax.get_title() == "flows at t = 2000"


def test_fit_figure_one_panel_per_target_with_window_and_rmse():
    paths = pd.DataFrame({"target": ["A"] * 10 + ["B"] * 10 + ["C"] * 10, "year": list(range(2000, 2010)) * 3,
                          "data": np.arange(30.0), "model": np.arange(30.0) + 0.5})
    fig = plots.fit_figure(paths, (2002, 2008), {"A": 0.5, "B": 0.25, "C": 1.0}, log={"A"}, not_fitted={"B"},
                           title="sim: calibrated model against data")
    shown = _visible(fig)
    assert len(fig.axes) == 4 and len(shown) == 3
    assert [ax.get_title() for ax in shown] == ["A (RMSE 0.5 log points)", "B (RMSE 0.25; not fitted)", "C (RMSE 1)"]
    assert all(len(ax.get_lines()) == 2 and len(ax.patches) == 1 for ax in shown)   # data, model; the window
    assert [t.get_text() for t in shown[0].get_legend().get_texts()] == ["fit window", "data", "model"]


@pytest.mark.parametrize("method, labels", [("sobol", ["first order S1", "total ST"]),
                                           ("morris", ["mu* (95% CI)", "sigma"])])
def test_index_figure_a_bar_per_factor_and_index(method, labels):
    from matplotlib.container import BarContainer
    fig = plots.index_figure(_indices(method), ["c", "a", "b"], ["y1", "y2"], method, "title")
    shown = _visible(fig)
    assert [ax.get_title() for ax in shown] == ["y1", "y2"]
    for ax in shown:
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert len(bars) == (2 if method == "sobol" else 1) and all(len(c.patches) == 3 for c in bars)
        assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]   # the factors' order is kept
    assert shown[0].get_xlabel() == ("Sobol' index (95% CI)" if method == "sobol" else "elementary effect")
    assert sorted(t.get_text() for t in shown[0].get_legend().get_texts()) == sorted(labels)


def test_time_figure_a_line_and_band_per_factor():
    fig = plots.time_figure(_time_indices(), ["a", "b"], "ST", "time-varying")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["hh_debt_gdp", "gov_debt_gdp"]
    assert all(len(ax.get_lines()) == 2 and len(ax.collections) == 2 for ax in axes)
    assert axes[0].get_ylabel() == "total-order Sobol index ST (95% CI band)"
    bare = plots.time_figure(_time_indices().drop(columns="ST_conf"), ["a", "b"], "ST", "no bands")
    assert all(len(ax.collections) == 0 for ax in bare.axes)


def test_heatmap_figure_maps_lines_and_readable_cell_text():
    fig = plots.heatmap_figure(_sequence_table(), {"calendar": ["start", "k"], "state": ["k"]}, ["loss", "debt"],
                               "design timing\nbest (loss): r0")
    panels = [ax for ax in fig.axes if ax.get_title()]   # the colour bars have no title
    assert [ax.get_title() for ax in panels] == ["calendar: loss", "calendar: debt", "state: loss", "state: debt"]
    assert len(panels[0].images) == 1 and len(panels[0].texts) == 6 and len(fig.axes) == 6   # two colour bars
    assert len(panels[2].get_lines()) == 1 and not panels[2].images
    # each cell's value is written in black on a light cell and in white on a dark one
    im = panels[0].images[0]
    vals = im.get_array()
    for t in panels[0].texts:
        x, y = t.get_position()
        r, g, b, _ = im.cmap(im.norm(vals[int(y), int(x)]))
        assert t.get_color() == ("black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
    assert {t.get_color() for t in panels[0].texts} == {"black", "white"}


# --------------------------------------------------------------------------- rendering and process state
def test_every_figure_renders_to_png_without_switching_the_backend(monkeypatch):
    import matplotlib
    before = matplotlib.get_backend()

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib.use called: it switches the backend of the whole process")
    monkeypatch.setattr(matplotlib, "use", refuse)
    figs = _all_figures()
    for fig, panels in figs:
        assert isinstance(fig, Figure)
        assert len(_visible(fig)) >= panels
        png = plots.png_bytes(fig)
        assert png[:8] == plots.PNG_SIGNATURE and len(png) > 1000
    assert matplotlib.get_backend() == before


def test_figures_load_no_pyplot_and_keep_the_backend_setting(tmp_path):
    """In a fresh process: drawing every figure (and the run figure of the CLI) never loads pyplot nor
    touches the backend setting, so a notebook's inline plots keep working."""
    code = """if True:
        import sys, matplotlib
        backend = dict.__getitem__(matplotlib.rcParams, "backend")   # read without resolving it
        sys.path.insert(0, {tests!r})
        import test_plots
        for fig, _ in test_plots._all_figures():
            test_plots.plots.png_bytes(fig)
        from sdmodel import cli
        assert cli.main(["run", "sim", "--t-span", "0", "5", "--out", {out!r}]) == 0
        print("matplotlib.pyplot" in sys.modules, dict.__getitem__(matplotlib.rcParams, "backend") == backend)
    """.format(tests=str(Path(__file__).parent), out=str(tmp_path / "run"))
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["False", "True"]


def test_only_plots_imports_matplotlib():
    """The numeric and writing modules hand plain data to sdmodel.report.plots; none of them draws."""
    pkg = Path(sdmodel.__file__).parent
    bad = []
    for f in sorted(pkg.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "matplotlib" or n.startswith("matplotlib.") for n in names) and f.stem != "plots":
                bad.append(f"{f.name}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "use" and getattr(node.value, "id", "") == "matplotlib":
                bad.append(f"{f.name}:{node.lineno} matplotlib.use")
    assert not bad, bad


def test_fit_band_and_fan_figures_share_the_run_figures_time_axis():
    """One year convention: with each target's shift, an observation of year y sits at y + shift (an
    end-of-year stock at y + 1, a mid-year flow at y + 0.5) and the fit window covers its years whole."""
    years = np.arange(2000, 2005)
    paths = pd.DataFrame({"target": ["debt"] * 5 + ["growth"] * 5, "year": np.r_[years, years],
                          "data": np.arange(10.0), "model": np.arange(10.0) + 0.5})
    fig = plots.fit_figure(paths, (2000, 2003), {"debt": 1.0, "growth": 2.0}, shift={"debt": 1.0, "growth": 0.5})
    debt, growth = _visible(fig)
    assert list(debt.get_lines()[0].get_xdata()) == [2001, 2002, 2003, 2004, 2005]
    assert list(growth.get_lines()[0].get_xdata()) == [2000.5, 2001.5, 2002.5, 2003.5, 2004.5]
    assert debt.patches[0].get_x() == 2000 and debt.patches[0].get_width() == 4   # 2000-2003, whole years
    pred = paths.assign(q5=paths.data - 1, q50=paths.data, q95=paths.data + 1, fitted=True)
    (b_debt, _) = _visible(plots.band_figure(pred, (2000, 2003), "t", shift={"debt": 1.0, "growth": 0.5}))
    assert list(b_debt.get_lines()[0].get_xdata()) == [2001, 2002, 2003, 2004, 2005]
    fc = pred.assign(origin=2002, **{"no change": 1.0})
    (f_debt, _) = _visible(plots.fan_figure(fc, "t", shift={"debt": 1.0, "growth": 0.5}))
    assert list(f_debt.get_lines()[0].get_xdata()) == [2001, 2002, 2003, 2004, 2005]
    assert 2003 in [ln.get_xdata()[0] for ln in f_debt.get_lines() if ln.get_linestyle() == "--"]   # end of 2002
