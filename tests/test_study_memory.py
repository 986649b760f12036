"""A study's memory does not grow with runs x outputs x times (issue 28, item 3): chunks are cut to a
memory budget, only outcomes (a number per run each) are kept beyond a chunk, the tracked paths go to
disk, and the Sobol' analysis (SALib's estimators, from the outcome matrix) needs no (N, resamples)
arrays."""

import tracemalloc

import numpy as np
import pytest
from SALib.analyze import sobol as salib_sobol
from SALib.sample import sobol as salib_sample
from SALib.test_functions import Ishigami

from sdmodel.core.options import Execution
from sdmodel.study.sensitivity import Design, SobolBootstrap, analyze, run_salib, sobol_indices
from sdmodel.core.store import ColumnFile
from sdmodel.study.base import CHUNK_MEMORY, ModelEvaluator, chunk_rows, collect_chunks, load_study

from .test_sensitivity import ISHIGAMI, STUDY, write_study

YEARS = 200  # a tracked path of 200 values per run and variable


class PathsEvaluator:
    """Ishigami as the outcome, and (runs, 2, YEARS) 'paths' derived from it (50 MB for 16,384 runs)."""

    def __call__(self, X):
        y = Ishigami.evaluate(X)
        ramp = np.linspace(0.0, 1.0, YEARS)
        paths = np.stack([y[:, None] * ramp, X[:, :1] + y[:, None] * ramp**2], axis=1)
        return {"Y": y[:, None], "success": np.ones(len(X), bool), "residual": np.zeros(len(X)), "paths": paths}


def peak_bytes(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_chunks_are_cut_to_the_memory_budget_and_a_chunk_stays_within_it(tmp_path):
    # the study of test_sensitivity on a coarser grid: tracemalloc costs about 60 us per numpy operation
    # of the numpy engine, so the 800 evaluations of RK4 at dt 1/4 took 45 s; Euler at dt 1/2 is 100
    study = tmp_path / "coarse.yaml"
    study.write_text(STUDY.format(chunk=512).replace("method: rk4, dt: 0.25", "method: euler, dt: 0.5"))
    cfg = load_study(study)
    assert cfg.method == "euler" and cfg.dt == 0.5
    names = [f.name for f in cfg.factors]
    ev = ModelEvaluator.for_study(cfg, names)
    per_run = ev.bytes_per_run()
    assert chunk_rows(ev, 10**9) == CHUNK_MEMORY // per_run  # the budget decides
    assert chunk_rows(ev, 100) == 100  # or the study's size, if smaller
    assert chunk_rows(ev, 10**9, budget=50 * per_run) == 50
    # what a run takes while its chunk is evaluated is within what bytes_per_run says (in a fresh process,
    # as below: tracemalloc counts the allocations of threads an earlier test may have left running)
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        peak, shapes = pool.apply(_chunk_peak, (study, 400))
    assert peak <= 400 * per_run, (peak / 400, per_run)
    assert shapes == ((400, len(cfg.outcomes)), (400, 1, 5))


def _chunk_peak(study, n):
    """The peak traced memory of evaluating ``n`` runs of ``study`` (compiled and warm first), and the shapes."""
    cfg = load_study(study)
    names = [f.name for f in cfg.factors]
    ev = ModelEvaluator.for_study(cfg, names)
    rng = np.random.default_rng(0)
    lo, hi = np.array([f.lower for f in cfg.factors]), np.array([f.upper for f in cfg.factors])
    X = lo + (hi - lo) * rng.uniform(size=(n, len(names)))
    ev(X[:4])  # compiled, warm
    out, peak = peak_bytes(lambda: ev(X))
    return peak, (out["Y"].shape, out["paths"].shape)


def test_a_kernel_evaluator_runs_its_chunks_in_this_process(tmp_path):
    class Threaded(PathsEvaluator):
        threaded = True  # as ModelEvaluator on the fused kernel, which uses every core itself

    X = salib_sample.sample(ISHIGAMI, 16, calc_second_order=False, seed=1)
    got, stats = collect_chunks(Threaded(), X, tmp_path, "k", execution=Execution(jobs=2, chunk_size=20))
    with got:
        assert stats.scheduler == "in-process" and stats.chunks == 4 and stats.chunk_size == 20


def _collect_traced(X, store, chunk):
    """collect_chunks of PathsEvaluator under tracemalloc, in a fresh process (see below): the peak, and what
    was computed."""
    (got, stats), peak = peak_bytes(
        lambda: collect_chunks(
            PathsEvaluator(), X, store, "k", execution=Execution(chunk_size=chunk), on_disk=("paths",)
        )
    )
    with got:
        return peak, len(stats.computed), set(got.arrays), set(got.columns), got.columns["paths"].shape


def test_only_outcomes_are_kept_beyond_a_chunk_and_paths_go_to_disk(tmp_path):
    import multiprocessing

    N, chunk = 4096, 512
    runs = N * 5  # Saltelli rows of 3 factors
    X = salib_sample.sample(ISHIGAMI, N, calc_second_order=False, seed=2)
    kept_paths = runs * 2 * YEARS * 8  # 33 MB: what keeping every run's paths would take
    # measured in a fresh process: tracemalloc counts every thread's allocations, and threads an earlier test
    # of the session left running (a Dask cluster's) doubled the peak
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        peak, computed, arrays, columns, shape = pool.apply(_collect_traced, (X, tmp_path / "s", chunk))
    assert arrays == {"Y", "success", "residual"} and columns == {"paths"} and shape == (runs, 2, YEARS)
    assert computed == runs // chunk
    # memory: the outcomes of every run, and one chunk's paths (twice: computed, and being written)
    chunk_paths = chunk * 2 * YEARS * 8
    assert peak < runs * 8 * 4 + 3 * chunk_paths + (1 << 20), (peak, kept_paths)
    assert peak < kept_paths / 4
    # resuming from the saved chunks gives the same, and leaves no file behind; the columns on disk are the
    # paths, exactly
    full = PathsEvaluator()(X)["paths"]
    again, st = collect_chunks(
        PathsEvaluator(), X, tmp_path / "s", "k", execution=Execution(chunk_size=chunk), on_disk=("paths",)
    )
    with again:
        assert st.computed == [] and len(st.reused) == runs // chunk
        for j in [(0, 0), (1, YEARS - 1), (1, 17), (0, 5)]:
            np.testing.assert_array_equal(again.columns["paths"].column(j), full[:, j[0], j[1]])
        np.testing.assert_array_equal(again.arrays["Y"][:, 0], Ishigami.evaluate(X))
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["chunks"]


def test_a_study_with_paths_analyses_them_from_disk(tmp_path):
    N = 256
    design = Design(N=N, seed=4)
    r = run_salib(
        PathsEvaluator(),
        ISHIGAMI,
        design,
        store=tmp_path / "s",
        paths=(["p", "q"], list(range(YEARS))),
        execution=Execution(chunk_size=300),
    )
    X = r.X
    full = PathsEvaluator()(X)["paths"]
    tv = r.time_indices.set_index(["variable", "year", "factor"])
    for v, name in enumerate(["p", "q"]):
        for k in (3, YEARS - 1):
            want = analyze(ISHIGAMI, design, X, full[:, v, k])
            got = tv.loc[(name, k)]
            np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=0, atol=1e-14)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["chunks", "study.json"]  # no temporary left


@pytest.mark.parametrize("groups", [None, ["a", "b", "a"]])
def test_sobol_indices_are_salibs(groups):
    prob = dict(ISHIGAMI, groups=groups) if groups else ISHIGAMI
    N = 2048
    y = Ishigami.evaluate(salib_sample.sample(prob, N, calc_second_order=False, seed=5))
    ours = sobol_indices(prob, Design(N=N, seed=5, num_resamples=64, conf_level=0.9), y)
    theirs = salib_sobol.analyze(prob, y, calc_second_order=False, num_resamples=64, conf_level=0.9, seed=5)
    for k in ("S1", "S1_conf", "ST", "ST_conf"):
        np.testing.assert_allclose(ours[k], theirs[k], rtol=0, atol=1e-12, err_msg=k)
    np.testing.assert_array_equal(ours["S1"], theirs["S1"])  # the estimates themselves: SALib's arithmetic
    np.testing.assert_array_equal(ours["ST"], theirs["ST"])


def test_the_bootstrap_is_drawn_once_and_takes_no_resample_arrays():
    D, N = 8, 1 << 14
    prob = {"num_vars": D, "names": [f"x{i}" for i in range(D)], "bounds": [[0, 1]] * D}
    y = np.random.default_rng(1).normal(size=N * (D + 2))
    boot = SobolBootstrap(Design(N=N, seed=1))
    boot.counts(N)
    _, peak = peak_bytes(lambda: sobol_indices(prob, Design(N=N, seed=1), y, boot))
    salib_arrays = N * 100 * 8 * 4  # SALib's A[r], B[r] and their stack for each factor: 52 MB here
    assert peak < 25 * y.nbytes < salib_arrays, peak


def test_column_file_reads_what_was_written_in_any_order(tmp_path):
    with ColumnFile(tmp_path, 10, (3,)) as cf:
        a = np.arange(30.0).reshape(10, 3)
        cf.put(6, a[6:])
        cf.put(0, a[:6])
        for j in range(3):
            np.testing.assert_array_equal(cf.column(j), a[:, j])
    assert list(tmp_path.iterdir()) == []
