"""Run options: Solver, SaveAt, Execution and Pool; each validated, each changing only what it names."""

import inspect
import multiprocessing
import pickle

import numpy as np
import pytest

import sdmodel
from sdmodel import (
    Execution,
    Pool,
    SaveAt,
    SimulationError,
    Solver,
    SpecError,
    compile_model,
    load_model,
    simulate,
    simulate_batch,
)
from sdmodel.core import options
from sdmodel.engine import simulation

NAMES = ["alpha1", "alpha2", "theta"]


def _sample(rng, n):
    return rng.uniform([0.5, 0.3, 0.15], [0.7, 0.5, 0.3], (n, 3))


# --------------------------------------------------------------------------- the objects
def test_defaults():
    assert Solver() == Solver(method=None, dt=None, rtol=1e-8, atol=1e-10, residual_tol=1e-9)
    assert SaveAt() == SaveAt(t_eval=None, outputs=None, residual_series=False)
    e = Execution()
    assert (e.jobs, e.block, e.pool, e.progress, e.workers, e.scheduler) == (1, None, None, False, None, None)
    assert e.processes == 1


def test_options_are_frozen_hashable_and_pickle():
    s, a = Solver(method="euler", dt=0.5), SaveAt(t_eval=[0, 1, 2], outputs=["Y"])
    with pytest.raises(AttributeError):
        s.dt = 1.0
    assert hash(s) == hash(Solver(method="euler", dt=0.5)) and hash(a) == hash(SaveAt(t_eval=(0.0, 1.0, 2.0),
                                                                                        outputs=("Y",)))
    assert pickle.loads(pickle.dumps((s, a))) == (s, a)     # what the worker processes receive


@pytest.mark.parametrize("kw,match", [
    (dict(method="warp"), r"method \(--method\): unknown method 'warp'"),
    (dict(method="rk5"), r"did you mean 'rk4'"),
    (dict(dt=0), r"dt \(--dt\) must be a positive finite number, got 0"),
    (dict(dt=-0.1), r"dt \(--dt\)"),
    (dict(dt=float("inf")), r"dt \(--dt\)"),
    (dict(dt=True), r"dt \(--dt\) must be a positive finite number, got True"),
    (dict(dt="0.1"), r"dt \(--dt\)"),
    (dict(rtol=0), r"rtol must be a positive finite number"),
    (dict(atol=float("nan")), r"atol must be a positive finite number"),
    (dict(residual_tol=-1e-9), r"residual_tol must be a positive finite number"),
    (dict(residual_tol="x"), r"residual_tol"),
])
def test_solver_refuses_bad_values_naming_the_field(kw, match):
    with pytest.raises(SpecError, match=match):
        Solver(**kw)


def test_solver_stores_floats():
    s = Solver(dt=1, rtol=np.float32(1e-6))
    assert type(s.dt) is float and type(s.rtol) is float


@pytest.mark.parametrize("kw,match", [
    (dict(t_eval=[0, 2, 1]), r"t_eval: expected increasing times, got 2 then 1"),
    (dict(t_eval=[0, 0]), r"t_eval: expected increasing times"),
    (dict(t_eval=[0, float("nan")]), r"t_eval: expected finite times"),
    (dict(t_eval=[[0, 1]]), r"t_eval must be a non-empty sequence of times"),
    (dict(t_eval=[]), r"t_eval must be a non-empty sequence of times"),
    (dict(t_eval=["a"]), r"t_eval must be a sequence of numbers"),
    (dict(outputs="Y"), r"outputs must be a sequence of variable names, got the string 'Y': write outputs=\['Y'\]"),
    (dict(outputs=[]), r"outputs must be a non-empty sequence"),
    (dict(outputs=[1]), r"outputs must be a non-empty sequence"),
    (dict(residual_series="yes"), r"residual_series must be True or False"),
])
def test_saveat_refuses_bad_values_naming_the_field(kw, match):
    with pytest.raises(SpecError, match=match):
        SaveAt(**kw)


def test_saveat_keeps_immutable_copies():
    t = np.array([0.0, 5.0])
    outs = ["Y"]
    a = SaveAt(t_eval=t, outputs=outs)
    t[0], outs[0] = 99, "C"
    assert a.t_eval == (0.0, 5.0) and a.outputs == ("Y",)


@pytest.mark.parametrize("kw,match", [
    (dict(jobs=0), r"jobs \(--jobs\) must be a positive whole number, got 0"),
    (dict(jobs=1.5), r"jobs \(--jobs\) must be a positive whole number"),
    (dict(jobs=True), r"jobs \(--jobs\) must be a positive whole number, got True"),
    (dict(block=0), r"block must be a positive whole number"),
    (dict(workers=-1), r"workers \(--workers\) must be a positive whole number"),
    (dict(scheduler=""), r"scheduler \(--scheduler\) must be the address"),
    (dict(pool="pool"), r"pool must be a sdmodel.Pool"),
    (dict(progress=1), r"progress must be True or False"),
    (dict(jobs=2, workers=2), r"jobs/pool and workers are given; choose one place"),
    (dict(workers=2, scheduler="tcp://x:8786"), r"workers and scheduler are given"),
])
def test_execution_refuses_bad_values_naming_the_field(kw, match):
    with pytest.raises(SpecError, match=match):
        Execution(**kw)


def test_execution_with_a_pool_takes_its_size():
    p = Pool(3)
    assert Execution(pool=p).processes == 3 and Execution(jobs=3, pool=p).processes == 3
    with pytest.raises(SpecError, match="jobs=2 but the pool has 3 processes"):
        Execution(jobs=2, pool=p)
    with pytest.raises(SpecError, match="Pool jobs must be a positive whole number"):
        Pool(0)


def test_an_option_in_the_wrong_place_is_named():
    with pytest.raises(SpecError, match=r"solver must be a sdmodel.Solver.*got 'rk4'"):
        simulate("sim", solver="rk4")
    with pytest.raises(SpecError, match=r"saveat must be a sdmodel.SaveAt"):
        simulate("sim", saveat=[0, 1])
    with pytest.raises(SpecError, match=r"execution must be a sdmodel.Execution"):
        simulate_batch("sim", execution=2)
    with pytest.raises(SpecError, match="workers and scheduler \\(Dask\\) are for studies"):
        simulate_batch("sim", execution=Execution(workers=2))


# --------------------------------------------------------------------------- what each option changes
def test_solver_defaults_are_the_model_files():
    a, b = simulate("sim"), simulate("sim", solver=Solver(method="rk4", dt=0.25))
    assert np.array_equal(a.values, b.values) and a.solver == b.solver
    # the engine that computed it is recorded too (the suite runs the numpy engine: tests/conftest.py)
    assert a.solver == {"method": "rk4", "dt": 0.25, "t_span": [0.0, 60.0], "residual_tol": 1e-9, "engine": "numpy"}
    ivp = simulate("sim", solver=Solver(method="RK45", rtol=1e-6, atol=1e-9))
    assert ivp.solver["rtol"] == 1e-6 and ivp.solver["atol"] == 1e-9


def test_saveat_selects_times_and_outputs_of_the_same_run():
    full = simulate("sim")
    part = simulate("sim", saveat=SaveAt(t_eval=[0, 10, 60], outputs=["Y", "Hh"]))
    assert part.names == ("Y", "Hh") and list(part.t) == [0, 10, 60]
    idx = np.searchsorted(full.t, [0, 10, 60])
    assert np.array_equal(part.values, full.values[idx][:, [full.names.index("Y"), full.names.index("Hh")]])
    assert np.array_equal(part.residuals, full.residuals[idx])
    with pytest.raises(SpecError, match=r"'YY' is not an output of model 'sim'; did you mean 'Y'\?"):
        simulate("sim", saveat=SaveAt(outputs=["YY"]))


def test_batch_options_equal_single_runs(rng):
    X = _sample(rng, 4)
    solver, saveat = Solver(method="euler", dt=0.5), SaveAt(t_eval=np.arange(0, 61.0, 5), residual_series=True)
    b = simulate_batch("sim", X, NAMES, solver=solver, saveat=saveat)
    assert b.residual_series.shape == (4, 13, len(b.residual_names))
    for i in range(len(X)):
        one = simulate("sim", params=dict(zip(NAMES, X[i])), solver=solver, saveat=saveat)
        assert np.array_equal(b.values[i], one.values)
        assert np.array_equal(b.run(i).residuals, one.residuals)
    outs = simulate_batch("sim", X, NAMES, solver=solver, saveat=SaveAt(t_eval=saveat.t_eval, outputs=["C"]))
    assert outs.names == ("C",) and np.array_equal(outs["C"], b["C"]) and outs.residual_series is None


def test_blocks_in_this_process_equal_one_call(rng):
    X = _sample(rng, 7)
    one = simulate_batch("sim", X, NAMES)
    blocks = simulate_batch("sim", X, NAMES, execution=Execution(block=2))
    assert np.array_equal(one.values, blocks.values) and np.array_equal(one.residuals, blocks.residuals)
    assert one.messages == blocks.messages and one.solver == blocks.solver


# --------------------------------------------------------------------------- processes
def test_a_pool_is_reused_inside_its_block_and_closed_after(rng):
    cm = compile_model(load_model("pc"))
    names = ["alpha1", "alpha2"]
    X = np.array([[cm.model.parameters[n].value * f for n in names] for f in rng.uniform(0.9, 1.1, 6)])
    one = simulate_batch(cm, X, names)
    before = set(multiprocessing.active_children())
    with Pool(2) as pool:
        a = simulate_batch(cm, X, names, execution=Execution(pool=pool))
        procs = set(pool._executor._processes)
        b = simulate_batch(cm, X[::-1], names, execution=Execution(pool=pool, block=2))
        assert set(pool._executor._processes) == procs        # the same processes served the second call
    assert not pool.open and set(multiprocessing.active_children()) <= before
    assert np.array_equal(a.values, one.values) and np.array_equal(b.values, one.values[::-1])
    assert a.messages == one.messages
    with pytest.raises(SpecError, match="the Pool is closed"):
        simulate_batch(cm, X, names, execution=Execution(pool=pool))


def test_jobs_start_processes_for_the_call_and_close_them():
    X = np.array([[0.2], [0.25], [0.3]])
    one = simulate_batch("sim", X, ["theta"])
    before = set(multiprocessing.active_children())
    two = simulate_batch("sim", X, ["theta"], execution=Execution(jobs=2))
    assert np.array_equal(one.values, two.values)
    assert set(multiprocessing.active_children()) <= before


def test_nothing_is_started_or_registered_at_import():
    src = inspect.getsource(simulation)
    assert "atexit" not in src and not hasattr(simulation, "_POOL")


# --------------------------------------------------------------------------- failures
def _failing(write_model, sim_text):
    # log(G - t) is -inf at t = G: with Euler the run fails exactly at t = G
    return write_model(sim_text.replace("  C: alpha1 * YD + alpha2 * Hh", "  C: alpha1 * YD + alpha2 * Hh + log(G - t)"))


def test_simulation_error_carries_the_failure_time(write_model, sim_text):
    path = _failing(write_model, sim_text)
    with pytest.raises(SimulationError, match="failed at t=20") as err:
        simulate(path, solver=Solver(method="euler"))
    assert err.value.t_failed == 20.0 and not err.value.partial.success


def test_a_leak_fails_at_the_time_it_is_found():
    import dataclasses
    m = load_model("sim_discrete")
    off = dataclasses.replace(m, stocks={**m.stocks, "Hh": 1.0})
    with pytest.raises(SimulationError, match="at t=1 ") as err:
        simulate(compile_model(off, check=False))
    assert err.value.t_failed == 1.0


def test_one_throw_default_for_single_runs_and_batches(write_model, sim_text):
    path = _failing(write_model, sim_text)
    X = np.array([[70.0], [30.0], [25.0]])   # run 0 finishes; run 1 fails at 30, run 2 at 25
    with pytest.raises(SimulationError, match=r"2 of 3 runs failed; first, run 1: failed at t=30") as err:
        simulate_batch(path, X, ["G"], solver=Solver(method="euler"))
    assert err.value.t_failed == 30.0
    assert list(err.value.partial.success) == [True, False, False]
    b = simulate_batch(path, X, ["G"], solver=Solver(method="euler"), throw=False)
    assert list(b.success) == [True, False, False]
    for f in (simulate, simulate_batch):
        assert inspect.signature(f).parameters["throw"].default is True


# --------------------------------------------------------------------------- signatures
def _public_functions(module):
    for name, f in vars(module).items():
        if name.startswith("_") or not callable(f) or getattr(f, "__module__", None) != module.__name__:
            continue
        yield name, f


@pytest.mark.parametrize("module", [simulation, options], ids=lambda m: m.__name__)
def test_no_public_function_takes_more_than_eight_parameters(module):
    wide = {name: len(inspect.signature(f).parameters) for name, f in _public_functions(module)
            if len(inspect.signature(f).parameters) > 8}
    assert not wide, wide
    assert dict(_public_functions(simulation)).keys() >= {"simulate", "simulate_batch"}


def test_the_options_are_exported():
    for name in ("Solver", "SaveAt", "Execution", "Pool"):
        assert getattr(sdmodel, name) is getattr(options, name) and name in sdmodel.__all__
