"""The fused kernel (sdmodel.engine.kernel) against the numpy engine, the reference.

Every shipped model, a model with every construct the code generator prints, a model with a Newton
block, discrete models, failing runs: the two engines must give the same values (to 1e-12 of each variable's largest magnitude in the run),
residuals, success flags and messages, single runs and batches alike.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sdmodel as sd
from sdmodel.engine import kernel
from sdmodel.core.errors import SpecError

from .conftest import NONLINEAR

pytestmark = pytest.mark.skipif(not kernel.numba_available(), reason="numba is not installed")

DATA = Path(__file__).parent / "data" / "models"
TOL = 1e-12

DISCRETE = """
name: dzoo
sectors: [households, government]
time: {mode: discrete, start: 0, stop: 30}
stocks: {H: 10, Hs: 10}
initial: {YD: 50}
parameters: {alpha: 0.6, theta: 0.2}
series:
  G: {data: {0: 20, 10: 25, 20: 22}, interpolation: previous, extrapolate: hold}
equations:
  Y: C + G
  T: theta * Y
  YD: Y - T
  C: alpha * YD * (1 + 0.1 * tanh(YD / lag(YD) - 1)) + 0.05 * lag(H) + 0.01 * lag(G)
balance_sheet:
  Money: {households: +H, government: -Hs}
transactions:
  Consumption: {households: -C, government: +C}
  Government spending: {households: +G, government: -G}
  Taxes: {households: -T, government: +T}
  Production: {households: "+(Y - G - C)", government: "-(Y - G - C)"}
  Change in money: {households: -d(H), government: +d(Hs)}
"""

#: stock K is driven below zero, where log(K) is not finite: the run fails at the same time in both
FAILING = """
name: failing
time: {start: 0, stop: 10, dt: 0.5}
stocks: {K: 1}
parameters: {k: 0.3}
equations:
  L: log(K)
  d(K): -k + 0 * L
"""


def _close(a, b, what, floor=0.0):
    """Values, residuals, flags and messages of two results of the same runs are the same: to ``TOL``, or
    where the model itself turns one rounding into more than that (``floor``), to ten times that."""
    np.testing.assert_array_equal(a.t, b.t)
    va, vb = np.asarray(a.values), np.asarray(b.values)
    assert va.shape == vb.shape, what
    np.testing.assert_array_equal(np.isnan(va), np.isnan(vb), err_msg=what)
    # relative to each variable's largest magnitude in the run: a variable that is a small difference of
    # large flows (net exports) carries the flows' rounding, not its own
    np.testing.assert_array_equal(np.isinf(va), np.isinf(vb), err_msg=what)
    finite = np.isfinite(va)
    va, vb = np.where(finite, va, 0.0), np.where(finite, vb, 0.0)
    scale = 1.0 + np.max(np.abs(va), axis=-2, keepdims=True, initial=0.0)
    assert np.max(np.abs(va - vb) / scale, initial=0.0) <= max(TOL, 10 * floor), what
    ra, rb = np.asarray(a.residuals), np.asarray(b.residuals)
    assert np.nanmax(np.abs(ra - rb), initial=0.0) <= TOL, what
    if hasattr(a, "messages"):
        assert a.messages == b.messages, what
        np.testing.assert_array_equal(a.success, b.success, err_msg=what)
    else:
        assert a.message == b.message, what


def _agree(a, b, what, floor=0.0):
    """:func:`_close`, and ``a`` ran on the numpy engine, ``b`` on the kernel."""
    _close(a, b, what, floor)
    assert a.solver["engine"] == "numpy" and b.solver["engine"] == "numba"


def _both(cm, method=None, X=None, names=None, t_eval=None, throw=True):
    out = []
    for engine in ("numpy", "numba"):
        solver = sd.Solver(method=method, engine=engine)
        saveat = sd.SaveAt(t_eval=t_eval)
        if X is None:
            out.append(sd.simulate(cm, solver=solver, saveat=saveat, throw=throw))
        else:
            out.append(sd.simulate_batch(cm, X, names, solver=solver, saveat=saveat, throw=throw))
    return out


def _perturbed(cm, n, rng, spread=0.05):
    base = np.array([cm.model.parameters[p].value for p in cm.param_names])
    X = base * rng.uniform(1 - spread, 1 + spread, (n, len(base)))
    for j, p in enumerate(cm.param_names):
        b = cm.model.parameters[p].bounds
        if b is not None:
            X[:, j] = np.clip(X[:, j], *b)
    return X


@pytest.fixture(scope="module")
def zoo():
    return sd.compile_model(sd.load_model(DATA / "zoo.yaml"))


@pytest.mark.parametrize("method", ["rk4", "euler"])
def test_every_construct_agrees(zoo, method, rng):
    kinds = set()
    from sdmodel.model.accounting import derive
    from sdmodel.model.algebra import order_blocks

    kinds = {b.kind for b in order_blocks(derive(zoo.model).system)}
    assert kinds == {"explicit", "linear", "linear_numeric", "nonlinear"}  # the zoo covers every block kind
    _agree(*_both(zoo, method), f"zoo {method}")
    _agree(*_both(zoo, method, _perturbed(zoo, 16, rng)), f"zoo batch {method}")


@pytest.mark.parametrize("name", ["sim", "sim_discrete", "pc", "lp"])
def test_shipped_models_agree(name, rng):
    cm = sd.compile_model(sd.load_model(name))
    _agree(*_both(cm), name)
    _agree(*_both(cm, X=_perturbed(cm, 12, rng)), f"{name} batch")
    if not cm.discrete:
        _agree(*_both(cm, "euler", t_eval=cm.model.time.start + np.arange(5)), f"{name} euler, saved times")


def _rounding_floor(cm, X, method):
    """How far the numpy engine's own results move when every parameter moves by one rounding (one ulp):
    the precision the model's conditioning leaves to any two correct implementations."""
    solver = sd.Solver(method=method, engine="numpy")
    a = sd.simulate_batch(cm, X, solver=solver, throw=False).values
    b = sd.simulate_batch(cm, X * (1 + 2.0**-52), solver=solver, throw=False).values
    return float(np.nanmax(np.abs(a - b) / (1.0 + np.nanmax(np.abs(a), axis=-2, keepdims=True))))


@pytest.mark.parametrize("scenario", ["japan", "china"])
def test_bsr_agrees(scenario, rng):
    """bsr's logistic switches are steep: numba's exp (the C library's) and numpy's vectorised exp round
    differently in about one value in twenty, by one ulp, and the switches amplify that. The engines
    must agree to 1e-12, or to within ten times what one ulp of the parameters does to the numpy engine
    itself (measured: kernel 2.5e-12, one ulp 3.6e-12 on China's batch)."""
    cm = sd.compile_model(sd.load_model("bsr", scenario=scenario))
    _agree(*_both(cm), f"bsr {scenario}")
    X = _perturbed(cm, 24, rng, 0.02)
    a, b = _both(cm, "euler", X, throw=False)
    _agree(a, b, f"bsr {scenario} batch", floor=_rounding_floor(cm, X, "euler"))


def test_newton_and_discrete_models_agree(write_model, rng):
    nl = sd.compile_model(sd.load_model(write_model(NONLINEAR)))
    assert nl.has_newton
    _agree(*_both(nl), "newton")
    _agree(*_both(nl, X=_perturbed(nl, 10, rng, 0.5)), "newton batch")
    dz = sd.compile_model(sd.load_model(write_model(DISCRETE, "dzoo.yaml")))
    assert dz.discrete and dz.has_newton
    _agree(*_both(dz), "discrete newton")
    _agree(*_both(dz, X=_perturbed(dz, 10, rng, 0.3)), "discrete newton batch")


def test_failures_agree(write_model):
    cm = sd.compile_model(sd.load_model(write_model(FAILING)))
    X = np.array([[0.05], [0.3], [0.5]])  # the first never fails; the others at different times
    a, b = _both(cm, X=X, names=["k"], throw=False)
    _agree(a, b, "failing batch")
    assert list(b.success) == [True, False, False]
    assert "first non-finite" in b.messages[1]
    # a Newton block without a solution (sqrt of a negative): NaN in both, same message
    nl = sd.compile_model(sd.load_model(write_model(NONLINEAR)))
    a, b = _both(nl, X=np.array([[0.5, 0.1], [0.5, -50.0]]), names=["a", "b"], throw=False)
    _agree(a, b, "newton failure")
    assert not b.success[1] and "Newton" in b.messages[1]


def test_engine_choice_and_errors(monkeypatch):
    cm = sd.compile_model(sd.load_model("sim"))
    with pytest.raises(SpecError, match="engine .* 'gpu' is not one of auto, numba, numpy"):
        sd.Solver(engine="gpu")
    with pytest.raises(SpecError, match="engine 'numba' runs the fixed-step and discrete methods"):
        sd.simulate(cm, solver=sd.Solver(method="RK45", engine="numba"))
    assert sd.simulate(cm, solver=sd.Solver(method="RK45")).solver["engine"] == "numpy"
    monkeypatch.setenv("SDMODEL_ENGINE", "auto")
    assert sd.simulate(cm).solver["engine"] == "numba"
    monkeypatch.setenv("SDMODEL_ENGINE", "bogus")
    with pytest.raises(SpecError, match=r"\$SDMODEL_ENGINE"):
        sd.simulate(cm)


def test_batches_on_processes_use_the_kernel_in_process(rng):
    cm = sd.compile_model(sd.load_model("pc"))
    X = _perturbed(cm, 8, rng)
    one = sd.simulate_batch(cm, X, solver=sd.Solver(engine="numba"))
    two = sd.simulate_batch(cm, X, solver=sd.Solver(engine="numba"), execution=sd.Execution(jobs=2, block=3))
    np.testing.assert_array_equal(one.values, two.values)


def test_kernel_is_cached_on_disk_for_the_next_process(tmp_path):
    """With a disk cache, the kernel module and numba's machine code are kept: a new process
    loads them instead of compiling again (and says nothing about compiling)."""
    code = (
        "import sdmodel as sd\n"
        "sd.simulate('sim', solver=sd.Solver(engine='numba'), progress=True)\n"
    )
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "compiling the fast kernel of sim" in first.stderr
    folder = tmp_path / "cache" / "kernels"
    assert len(list(folder.glob("k_*.py"))) == 1
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "compiling the fast kernel" not in second.stderr


def test_threads_may_share_a_kernel(rng):
    """Calls from several threads (a threaded scheduler) take turns on the kernel, which runs each on
    every core; numba's default threading layer would abort the process on concurrent launches."""
    from concurrent.futures import ThreadPoolExecutor

    cm = sd.compile_model(sd.load_model("sim"))
    X = _perturbed(cm, 40, rng)
    solver = sd.Solver(engine="numba")
    alone = sd.simulate_batch(cm, X, solver=solver).values
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda part: sd.simulate_batch(cm, part, solver=solver).values, np.split(X, 4)))
    np.testing.assert_array_equal(np.concatenate(outs), alone)


def test_an_allowed_unbalanced_start_is_gated_alike(rng):
    """Each balance-sheet row measured from its sum at the first step, each run from its own, and in discrete
    time the first period's transactions rows left ungated: the engines agree, in runs that pass and in runs
    whose flows leak (a sign flipped), whether the first step is saved or not."""
    import dataclasses
    import warnings

    import yaml

    from .conftest import UNBALANCED

    pc = sd.load_model(DATA / "pc_rounded.yaml")
    tf = pc.transactions
    flipped = dataclasses.replace(pc, transactions=tf.with_entry("Taxes", "households", -tf.rows["Taxes"]["households"]))
    good, leaky = (sd.model_from_dict(yaml.safe_load(UNBALANCED.replace("SIGN", s))) for s in ("", "-1 *"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sd.UnbalancedStartWarning)
        cm = sd.compile_model(pc, allow_unbalanced_start=True)
        a, b = _both(cm)
        assert a.success and a.max_residual < 1e-12
        _agree(a, b, "pc_rounded")
        _agree(*_both(cm, t_eval=[5, 50, 160]), "pc_rounded, first period not saved")
        X = _perturbed(cm, 5, rng)
        _agree(*_both(cm, X=X, names=cm.param_names), "pc_rounded batch")
        bad = sd.compile_model(flipped, check=False, allow_unbalanced_start=True)
        a, b = _both(bad, X=X, names=bad.param_names, throw=False)
        assert not a.success.any() and all(" at t=2 (" in m for m in a.messages)
        _agree(a, b, "pc_rounded, Taxes flipped")
        for method in ("rk4", "euler"):
            for model, ok in ((good, True), (leaky, False)):
                m = sd.compile_model(model, check=False, allow_unbalanced_start=True)
                a, b = _both(m, method, X=[[0.1], [0.5], [2.0]], names=["a"], throw=False)
                assert a.success.all() == ok and (ok or "moves away from its value at the first step" in a.messages[0])
                _agree(a, b, f"unbalanced {method} {ok}")
                _agree(*_both(m, method, t_eval=[1, 5, 10], throw=False), f"unbalanced {method} {ok}, t_eval")
