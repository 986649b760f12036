import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Compiled-model cache of the test session: never the user's ~/.cache.
_TEST_CACHE = None
if "SDMODEL_CACHE_DIR" not in os.environ:
    _TEST_CACHE = os.environ["SDMODEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="sdmodel-test-cache-")


def pytest_sessionfinish(session, exitstatus):
    if _TEST_CACHE is not None:  # the session's compile cache (and compiled kernels) go with it
        import shutil

        shutil.rmtree(_TEST_CACHE, ignore_errors=True)
# The numpy engine by default: numba takes seconds to compile each model's kernel, and the suite builds
# hundreds of small models. tests/test_kernel.py runs the kernel on every shipped model and checks that
# both engines agree, and sets the engine explicitly.
os.environ.setdefault("SDMODEL_ENGINE", "numpy")

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
REFERENCE_MODELS = sorted(p.parent.name for p in MODELS_DIR.glob("*/model.yaml")
                          if (p.parent / "reference.csv").exists())


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


SIM_YAML = (MODELS_DIR / "sim" / "model.yaml").read_text()


@pytest.fixture
def sim_text():
    return SIM_YAML


@pytest.fixture
def write_model(tmp_path):
    """Write YAML text to tmp_path/model.yaml and return the path."""
    def _write(text, name="model.yaml"):
        p = tmp_path / name
        p.write_text(text)
        return p
    return _write


#: A model with a non-linear simultaneous block (Y and C through sqrt), solved by Newton per step.
NONLINEAR = """
name: nl
sectors: [households, firms]
time: {start: 0, stop: 20, dt: 0.25}
stocks: {M: 1, Ms: 1}
parameters: {a: 0.5, b: 0.1}
equations:
  Y: C + 1
  C: a * sqrt(Y) + b * M
balance_sheet:
  Money: {households: +M, firms: -Ms}
transactions:
  Consumption: {households: -C, firms: +C}
  Income: {households: +Y, firms: "-(C + 1)"}
  Change in money: {households: -d(M), firms: +d(Ms)}
"""


#: Money held and owed, conserved by the flows (both grow by g * M) but off by ``a`` at the start, a
#: parameter, so each run of a batch starts off by its own a (Ms's initial value is an expression, which
#: the accounting cannot evaluate: the runs find it). ``SIGN`` is "" or "-1 *": a sign flipped in a flow.
UNBALANCED = """
name: unbalanced
sectors: [households, firms]
time: {start: 0, stop: 10, dt: 0.5}
stocks: {M: 1, Ms: "M + a"}
parameters: {a: 0.5, g: 0.1}
equations:
  d(M): g * M
  d(Ms): SIGN g * M
balance_sheet:
  Money: {households: +M, firms: -Ms}
"""
