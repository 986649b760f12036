"""The importer's conformance files (issue 29, item 4): a model per feature under ``tests/data/vensim``
and ``tests/data/xmile`` with its expected output beside it, ``<model>.expected.csv``.

Each expected output is worked out from the format's specification by closed forms (the CSV's
comment lines say how; ``tests/data/conformance_expected.py`` writes them), not by a simulator.
Columns are named as the file names its variables (``stock[north]``, ``weighted sum``). Where PySD
reads the model, ``tests/test_translate_arrays.py`` also compares the import with PySD's run.
"""

import numpy as np
import pandas as pd
import pytest

import sdmodel
from sdmodel.model.translate import read_sd_file

pytest.importorskip("pysd")

from .conftest import ROOT  # noqa: E402

DATA = ROOT / "tests" / "data"
CASES = sorted([*DATA.glob("vensim/*.expected.csv"), *DATA.glob("xmile/*.expected.csv")])


def model_of(expected):
    stem = expected.name[: -len(".expected.csv")]
    (path,) = [p for p in expected.parent.glob(f"{stem}.*") if p.suffix in (".mdl", ".xmile")]
    return path


def test_every_new_feature_has_a_conformance_file():
    assert {model_of(c).name for c in CASES} >= {
        "array_builtins.xmile", "vector_select.mdl", "subscript_mapping_list.mdl"}


@pytest.mark.parametrize("expected", CASES, ids=lambda p: p.name)
def test_import_gives_the_expected_output(expected):
    path = model_of(expected)
    names = read_sd_file(path).names
    frame = sdmodel.simulate(sdmodel.load_model(path), solver=sdmodel.Solver(method="euler")).to_frame()
    want = pd.read_csv(expected, comment="#")
    assert np.allclose(frame.index.to_numpy(float), want["t"].to_numpy(float), rtol=0, atol=1e-12)
    for column in want.columns[1:]:
        got = frame[column] if column in frame.columns else frame[names[column]]
        assert np.allclose(got.to_numpy(float), want[column].to_numpy(float), rtol=1e-12, atol=1e-12), column
