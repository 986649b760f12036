"""Godley tables (text, Markdown, LaTeX, HTML) match the model's matrices entry by entry;
models and results render as HTML tables in notebooks."""

import json
import re

import numpy as np
import pytest

import sdmodel
from sdmodel.cli import main
from sdmodel.report.views import matrix_html, matrix_latex, matrix_markdown, model_tables

from .conftest import REFERENCE_MODELS

MODELS = [(m, None) for m in REFERENCE_MODELS] + [("bsr", "japan")]


def _md_rows(text):
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    split = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    return split[0], split[2:]


@pytest.mark.parametrize("name, scenario", MODELS)
def test_markdown_and_html_tables_are_the_matrices(name, scenario):
    model = sdmodel.load_model(name, scenario)
    for mat in (model.balance_sheet, model.transactions):
        header, rows = _md_rows(matrix_markdown(mat))
        assert header[1:len(mat.columns) + 1] == list(mat.columns)
        assert [r[0] for r in rows] == list(mat.rows)
        for r in rows:
            for c, cell in zip(mat.columns, r[1:]):
                assert cell == mat.text.get((r[0], c), ""), (name, r[0], c)
                if cell:   # the text is the entry: it parses back to the matrix's expression
                    assert sdmodel.model.expr.parse(cell) == mat.rows[r[0]][c]
        html = matrix_html(mat)
        for (r, c), text in mat.text.items():
            assert f"<td>{text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</td>" in html


@pytest.mark.parametrize("name, scenario", MODELS)
def test_latex_table_typesets_every_entry(name, scenario):
    model = sdmodel.load_model(name, scenario)
    for mat in (model.balance_sheet, model.transactions):
        tex = matrix_latex(mat)
        body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
        assert len(body) == len(mat.rows)
        for line, (r, cells) in zip(body, mat.rows.items()):
            parts = [p.strip() for p in re.split(r"(?<!\\)&", line.strip().removesuffix(r"\\"))]
            for c, part in zip(mat.columns, parts[1:]):
                if c in cells:
                    assert part.startswith("$") and part.endswith("$"), (r, c, part)
                else:
                    assert part == ""
    tex = model_tables(sdmodel.load_model("sim"), "latex")
    assert r"$- \Delta Hh$" in tex and r"\begin{tabular}{lrrrr}" in tex


def test_tables_command(tmp_path, capsys):
    assert main(["tables", "sim"]) == 0
    out = capsys.readouterr().out
    assert "| Change in money | -d(Hh) |  | +d(Hs) | 0 |" in out
    assert main(["tables", "bsr", "--scenario", "china", "--format", "latex", "--out", str(tmp_path / "t.tex")]) == 0
    assert r"\toprule" in (tmp_path / "t.tex").read_text()
    assert main(["tables", "sim", "--format", "html"]) == 0
    assert '<table class="godley">' in capsys.readouterr().out


def test_notebook_html_views():
    model = sdmodel.load_model("pc")
    html = model._repr_html_()
    assert html.count('<table class="godley">') == 2 and "parameters" in html
    res = sdmodel.simulate(model)
    assert "largest stock-flow residual" in res._repr_html_() and "<table" in res._repr_html_()
    batch = sdmodel.simulate_batch(model, np.array([[0.6], [0.7]]), ["alpha1"])
    assert "<th>runs</th><td>2</td>" in batch._repr_html_()
    assert "alpha1" in batch._repr_html_()


# --------------------------------------------------------------------------- run directories and reports
def _png_not_blank(data: bytes) -> bool:
    import io

    import matplotlib.image as mpimg
    img = mpimg.imread(io.BytesIO(data), format="png")[..., :3]
    return float(img.std()) > 0.02 and float((img.mean(axis=2) < 0.9).mean()) > 0.005


def _embedded_pngs(page: str) -> list[bytes]:
    import base64
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    """A run, a calibration and a sensitivity directory, made by the commands themselves."""
    from sdmodel.report.rundirs import run_sensitivity
    from sdmodel.study.sensitivity import Design

    from .test_calibration import GOOD, write_config
    from .test_sensitivity import write_study
    root = tmp_path_factory.mktemp("runs")
    assert main(["run", "bsr", "--scenario", "japan", "--out", str(root / "run")]) == 0
    assert main(["run", "bsr", "--scenario", "japan", "--set", "c_y=0.62", "--out", str(root / "run2"),
                 "--no-figure"]) == 0
    cfg = write_config(root, GOOD)
    assert main(["calibrate", str(cfg), "--out", str(root / "calibration"), "--no-progress"]) == 0
    run_sensitivity(write_study(root), Design(N=16, seed=1), out=root / "sensitivity")
    return root


@pytest.mark.parametrize("kind", ["run", "calibration", "sensitivity"])
def test_report_is_self_contained_with_tables_and_figures(run_dirs, kind, capsys):
    d = run_dirs / kind
    assert main(["report", str(d)]) == 0
    page = (d / "report.html").read_text()
    assert "wrote" in capsys.readouterr().out
    # nothing to fetch: no external scripts, styles or images
    assert not re.search(r'(src|href)="(https?:)?//', page)
    pngs = _embedded_pngs(page)
    assert pngs and all(_png_not_blank(p) for p in pngs)
    assert page.count('<table class="godley">') == 2          # both matrices of the model
    if kind == "run":
        # the main figure (the debt ratios, growth and the sector balances against data) and the flows
        assert len(pngs) >= 2 and "flows between sectors in 2020" in page   # the end of the fit window
        assert "sectoral balances" not in page and "stock-flow residuals" in page   # drawn in the main figure
        assert page.index("<h2>Findings</h2>") < page.index("figure.png") < page.index("<h2>Model</h2>")
        assert "RMSE over fit window" in page
    if kind == "calibration":
        assert "fit (model − data)" in page and "estimates" in page and "out of sample" in page
    if kind == "sensitivity":
        assert "indices.csv (with confidence intervals)" in page and "ST_conf" in page


def test_report_godley_tables_match_the_model(run_dirs):
    page = (run_dirs / "run" / "report.html").read_text() if (run_dirs / "run" / "report.html").exists() \
        else (main(["report", str(run_dirs / "run")]), (run_dirs / "run" / "report.html").read_text())[1]
    model = sdmodel.load_model("bsr", "japan")
    # the manifest names the model and scenario files as they are, which is how the report found them
    man = json.loads((run_dirs / "run" / "manifest.json").read_text())
    assert (man["model_file"], man["scenario"], man["scenario_file"]) == (model.path, "japan", model.scenario_file)
    assert man["scenario_file"].endswith("japan.yaml") and sdmodel.load_model(man["model_file"]).path == model.path
    for mat in (model.balance_sheet, model.transactions):
        assert matrix_html(mat, f"{'Balance sheet' if mat.kind == 'balance_sheet' else 'Transactions-flow matrix'}"
                                f" (bsr/japan)") in page


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
#: A laptop screen and a phone held upright, in CSS pixels.
WIDTHS = (1366, 390)


def _chromium():
    """Headless Chromium driven by Playwright, or a skip naming what is missing. ``SDMODEL_CHROMIUM`` names an
    executable that is not on PATH (README, "Tests": one from the npm registry where apt has none)."""
    import os
    import shutil
    exe = (os.environ.get("SDMODEL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
           or shutil.which("google-chrome"))
    if exe is None:
        pytest.skip("no Chromium on this machine (Debian: apt install chromium; or set SDMODEL_CHROMIUM)")
    if not os.access(exe, os.X_OK):
        pytest.fail(f"SDMODEL_CHROMIUM={exe!r} is not an executable file")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    return exe, sync_api


def _screenshot(page, path, sync_api, tries=3):
    """A full-page screenshot. Headless Chromium without a GPU now and then answers "Unable to capture screenshot"
    when the machine is loaded (seen on a 2-core machine at load 4, never at rest): asked again, it takes it."""
    for i in range(tries):
        try:
            return page.screenshot(path=str(path), full_page=True)
        except sync_api.Error as e:
            if "Unable to capture screenshot" not in str(e) or i == tries - 1:
                raise
            page.wait_for_timeout(500)


@pytest.mark.parametrize("kind", ["run", "calibration", "sensitivity"])
def test_report_in_a_browser_fits_a_laptop_a_phone_and_a_printed_page(run_dirs, tmp_path, kind):
    """The report as a reader sees it, in a real browser: at each width the page never scrolls sideways
    (wide tables scroll in their own box), every figure is decoded and fits, the findings come before the
    model and the manifest; it prints to PDF; a full-page screenshot at each width is not blank."""
    exe, sync_api = _chromium()
    d = run_dirs / kind
    if not (d / "report.html").exists():
        main(["report", str(d)])
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto((d / "report.html").resolve().as_uri())
                assert page.evaluate("document.documentElement.scrollWidth") <= width, (kind, width)
                images = page.evaluate("Array.from(document.images).map(i => [i.naturalWidth, "
                                       "i.getBoundingClientRect().left, i.getBoundingClientRect().right])")
                assert images and all(nat > 0 and left >= 0 and right <= width for nat, left, right in images)
                heads = page.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
                assert heads[-2:] == ["Model", "Manifest"], heads   # for checking, at the end
                if kind == "run":
                    assert heads[0] == "Findings"
                shot = tmp_path / f"{kind}-{width}.png"
                _screenshot(page, shot, sync_api)
                assert _png_not_blank(shot.read_bytes()), (kind, width)
                if width == WIDTHS[0]:
                    page.emulate_media(media="print")
                    pdf = page.pdf(format="A4")
                    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
                page.close()
        finally:
            browser.close()


def test_runs_lists_and_diff_compares(run_dirs, capsys):
    assert main(["runs", str(run_dirs)]) == 0
    out = capsys.readouterr().out
    for kind in ("run", "calibration", "sensitivity"):
        assert str(run_dirs / kind) in out
    assert main(["diff", str(run_dirs / "run"), str(run_dirs / "run2")]) == 0
    out = capsys.readouterr().out
    assert "parameters.c_y" in out and "firm_debt_gdp at t=2030" in out


def test_interrupted_run_leaves_the_previous_directory_or_none(tmp_path):
    from sdmodel.report.rundirs import write_run
    model = sdmodel.load_model("sim")
    res = sdmodel.simulate(model)

    def boom(tmp):
        (tmp / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_run(tmp_path / "new", model, res, also=boom)
    assert not (tmp_path / "new").exists() and not list(tmp_path.iterdir())
    write_run(tmp_path / "old", model, res)
    before = sorted(p.name for p in (tmp_path / "old").iterdir())
    with pytest.raises(KeyboardInterrupt):
        write_run(tmp_path / "old", model, sdmodel.simulate(model.with_params(theta=0.3)), also=boom)
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == before
    assert "half.txt" not in before and len(list(tmp_path.iterdir())) == 1
