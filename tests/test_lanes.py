"""The lane kernel (sdmodel.engine.lanes): runs advanced eight at a time in SIMD lanes.

Its branch-free exp, log, log1p, tanh and logaddexp against numpy's over wide ranges and at the edges
(in ulps), and the lane and scalar kernels on every shipped model and the test suite's textbook models:
the same values (to 1e-12 of each variable's largest magnitude, or where the model itself turns one
rounding into more, ten times what one ulp of the parameters does), residuals, flags and messages.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest

import sdmodel as sd
from sdmodel.core.errors import SpecError
from sdmodel.engine import kernel, lanes

from .conftest import NONLINEAR
from .test_kernel import DATA, DISCRETE, FAILING, _close, _perturbed, _rounding_floor

pytestmark = pytest.mark.skipif(not kernel.numba_available(), reason="numba is not installed")

MODELS = sorted(p.name for p in (Path(__file__).parents[1] / "models").iterdir() if (p / "model.yaml").exists())


@pytest.fixture(scope="module")
def vmath():
    """The lane functions, compiled, each applied elementwise to an array."""
    text = "import numpy as np\nfrom numba import njit\n" + lanes.VMATH.replace("CACHE", "False")
    for name, args in (("exp", "x"), ("log", "x"), ("log1p", "x"), ("tanh", "x"), ("logaddexp", "x, y")):
        loop = "x[i], y[i]" if "y" in args else "x[i]"
        text += f"\n\n@njit(error_model='numpy')\ndef a_{name}({args}):\n    out = np.empty(x.shape[0])\n"
        text += f"    for i in range(x.shape[0]):\n        out[i] = _v{name}({loop})\n    return out\n"
    ns: dict = {}
    exec(compile(text, "<vmath>", "exec"), ns)  # noqa: S102 - our own source
    return ns


def _ulps(got, want):
    """|got - want| in units of the last place of ``want``; 0 where both are the same value, NaN or
    infinity (signed zeros compared too), inf where only one is."""
    got, want = np.asarray(got), np.asarray(want)
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    out = np.where(same, 0.0, np.inf)
    fin = ~same & np.isfinite(got) & np.isfinite(want)
    out[fin] = np.abs(got[fin] - want[fin]) / np.spacing(np.abs(want[fin]))
    return out


EDGES = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 2.0, 1e-300, -1e-300, 5e-324, -5e-324, 2.0**-1022, 1e-17]
    + [709.78, 709.782712893384, 709.7827128933841, 710.0, -708.4, -745.13, -745.1332191019412, -745.14, -746.0]
    + [1e300, -1e300, np.finfo(float).max, 0.34657359027997264, 22.0, 23.0, -22.0, 44.0]
)


@pytest.mark.parametrize(
    "name, bound, ranges",
    [
        ("exp", 1.0, [(-745.2, 709.8, "lin"), (-1.0, 1.0, "lin"), (-40.0, 40.0, "lin")]),
        ("log", 1.0, [(-320.0, 308.0, "exp"), (0.0, 3.0, "lin"), (1 - 1e-6, 1 + 1e-6, "lin")]),
        ("log1p", 1.0, [(-20.0, 308.0, "exp"), (-1.0, 3.0, "lin")]),
        ("tanh", 3.0, [(-30.0, 30.0, "lin"), (-20.0, 1.5, "exp")]),
    ],
)
def test_functions_against_numpy(vmath, name, bound, ranges, rng):
    """Within ``bound`` ulps of numpy's function everywhere (measured: exp, log, log1p 1 ulp, tanh 3, in
    a million points a range), and exactly numpy's infinities, zeros (with their sign) and NaNs."""
    parts = [EDGES, -EDGES]
    for lo, hi, kind in ranges:
        x = rng.uniform(lo, hi, 300_000)
        parts.append(x if kind == "lin" else 10.0**x * rng.choice([-1.0, 1.0], x.shape))
    x = np.concatenate(parts)
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x)
        got = vmath[f"a_{name}"](x)
    err = _ulps(got, want)
    worst = int(np.argmax(err))
    assert err[worst] <= bound, f"{name}({x[worst]!r}) = {got[worst]!r}, numpy {want[worst]!r}"
    special = ~np.isfinite(want) | (want == 0) | ~np.isfinite(x)
    np.testing.assert_array_equal(err[special], 0.0)


def test_logaddexp_against_numpy(vmath, rng):
    """numpy's formula (the larger argument plus log1p(exp(-|x - y|))), so within a few ulps of its
    result, absolutely; with 0 as one argument (the models' softplus) within 3 ulps of the result."""
    x = np.concatenate([rng.uniform(-800, 800, 200_000), [0, np.inf, -np.inf, np.nan, 0, np.inf, 1e308, -np.inf]])
    y = np.concatenate([rng.uniform(-5, 5, 200_000), [0, np.inf, np.inf, 0, -np.inf, -np.inf, 1e308, -np.inf]])
    with np.errstate(all="ignore"):
        want, got = np.logaddexp(x, y), vmath["a_logaddexp"](x, y)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    fin &= np.isfinite(x) & np.isfinite(y)
    scale = np.spacing(np.maximum(np.abs(x[fin]), np.abs(y[fin])) + 1.0)
    assert np.max(np.abs(got[fin] - want[fin]) / scale) <= 2.0
    z = np.concatenate([rng.uniform(-800, 800, 200_000), 10.0 ** rng.uniform(-20, 2.5, 200_000)])
    z = np.concatenate([z, -z])
    assert np.max(_ulps(vmath["a_logaddexp"](np.zeros_like(z), z), np.logaddexp(0.0, z))) <= 3.0


def _lanes_and_scalar(cm, X, names, method, monkeypatch):
    out = []
    for mode in ("on", "off"):
        monkeypatch.setenv("SDMODEL_KERNEL_LANES", mode)
        solver = sd.Solver(method=method, engine="numba")
        out.append(sd.simulate_batch(cm, X, names, solver=solver, throw=False))
    return out


def _check(cm, what, monkeypatch, rng, methods, n=11, spread=0.05):
    """11 runs: a full block of eight and a padded one."""
    X = _perturbed(cm, n, rng, spread)
    for method in methods:
        a, b = _lanes_and_scalar(cm, X, cm.param_names, method, monkeypatch)
        floor = _rounding_floor(cm, X, method) if cm.model.name.startswith("bsr") else 0.0
        _close(a, b, f"{what} {method}", floor)


@pytest.mark.parametrize("name", MODELS)
def test_lane_and_scalar_kernels_agree_on_shipped_models(name, monkeypatch, rng):
    cm = sd.compile_model(sd.load_model(name))
    # a Newton block stays on the scalar kernel (growth's); everything else the models use has lanes
    assert (lanes.lane_source(cm.kernel_source) is None) == cm.has_newton, name
    methods = ["discrete"] if cm.discrete else ["euler", "rk4"]
    _check(cm, name, monkeypatch, rng, methods)


def test_lane_and_scalar_kernels_agree_on_textbook_models(write_model, monkeypatch, rng):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sd.UnbalancedStartWarning)
        pc = sd.compile_model(sd.load_model(DATA / "pc_rounded.yaml"), allow_unbalanced_start=True)
        assert lanes.lane_source(pc.kernel_source) is not None
        _check(pc, "pc_rounded", monkeypatch, rng, ["discrete"])
    failing = sd.compile_model(sd.load_model(write_model(FAILING)))
    X = np.array([[0.05], [0.3], [0.5], [0.2], [0.01]])  # some fail, at different times
    a, b = _lanes_and_scalar(failing, X, ["k"], "euler", monkeypatch)
    _close(a, b, "failing")
    assert list(a.success) == [True, False, False, False, True] and "first non-finite" in a.messages[1]
    # what the lanes do not vectorise (a Newton block, a linear system) stays on the scalar kernel
    for cm in (
        sd.compile_model(sd.load_model(DATA / "zoo.yaml")),
        sd.compile_model(sd.load_model(write_model(NONLINEAR))),
        sd.compile_model(sd.load_model(write_model(DISCRETE, "dzoo.yaml"))),
    ):
        assert lanes.lane_source(cm.kernel_source) is None
        assert kernel.load(cm).vrun is None


def test_lanes_switch(monkeypatch):
    monkeypatch.delenv("SDMODEL_KERNEL_LANES", raising=False)
    assert not kernel.lanes_wanted(1) and kernel.lanes_wanted(1000)
    monkeypatch.setenv("SDMODEL_KERNEL_LANES", "on")
    assert kernel.lanes_wanted(1)
    monkeypatch.setenv("SDMODEL_KERNEL_LANES", "off")
    assert not kernel.lanes_wanted(1000)
    monkeypatch.setenv("SDMODEL_KERNEL_LANES", "maybe")
    with pytest.raises(SpecError, match="SDMODEL_KERNEL_LANES"):
        kernel.lanes_wanted(10)
