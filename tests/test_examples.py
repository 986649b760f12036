"""The example notebooks (examples/) run top to bottom, and say what they should."""

import re

import pytest

from .conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def run_notebook(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return nb, "\n".join(text)


def test_there_are_three_examples():
    assert {p.stem for p in NOTEBOOKS} == {"japan_walkthrough", "china_who_levers_up", "godley_lavoie_sim_pc"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb, text = run_notebook(path, tmp_path)
    images = sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))
    assert images >= 1, "every example draws at least one figure"
    if path.stem == "godley_lavoie_sim_pc":
        sim_gap = float(re.search(r"closed form ([0-9.e+-]+)", text).group(1))
        pc_gap = float(re.search(r"reference ([0-9.e+-]+)", text).group(1))
        assert sim_gap < 1e-6 and pc_gap < 1e-9
    if path.stem == "japan_walkthrough":
        assert "balanced: True" in text and "start 1997" in text
    if path.stem == "china_who_levers_up":
        assert "caps eased 2024" in text
