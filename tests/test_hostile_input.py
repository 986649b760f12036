"""Hostile or mistaken input: every case ends in one clear error, quickly, never a traceback or a hang.

A corpus by category (expressions, numbers, model files) plus hypothesis fuzzing of the expression
parser and the YAML loader: whatever text arrives, the answer is a parsed model or an SdmodelError.
"""

import signal
import string

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdmodel import ExpressionError, SdmodelError, SpecError, load_model, model_from_dict
from sdmodel.model.expr import MAX_DEPTH, parse
from sdmodel.core.options import Execution
from sdmodel.study.sensitivity import Design
from sdmodel.model.spec import _read_yaml


@pytest.fixture
def deadline():
    """Fail (instead of hanging the suite) if a case takes more than a few seconds."""
    def boom(*_):
        raise TimeoutError("took too long")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("text,match", [
    ("1e99999999", "exponent beyond"),
    ("1e-99999999 * x", "exponent beyond"),
    ("1" * 5000, "more than 60 digits"),
    ("9**9**9", "outside the range of double precision"),
    ("2^2^2^2^2", "outside the range of double precision"),
    ("0.1**99999", "outside the range of double precision"),
    ("1e400 * x", "outside the range of double precision"),
    ("(" * 140 + "x" + ")" * 140, "nested more than"),
    ("-" * 5000 + "x", "nested more than"),
    ("exp(" * 150 + "x" + ")" * 150, "nested more than"),
    ("x + " * 20_000 + "x", "characters"),
    ("C + (G > 1)", "comparison cannot be an operand of '\\+'"),
    ("(G > 1) * 2", "comparison cannot be an operand of '\\*'"),
    ("-(G > 1)", "comparison cannot be an operand of '-'"),
    ("2 ** (G > 1)", "comparison cannot be an operand"),
    ("sqrt(-1)", "not a real number"),
    ("log(-2) * x", "not a real number"),
    ("1/0", "division by zero"),
    ("__import__('os').system('true')", "unexpected character|unsupported function"),
    ("x.__class__", "unexpected character"),
], ids=lambda v: v if len(v) < 40 else v[:20] + f"...({len(v)} characters)")
def test_hostile_expressions_get_one_clear_error(text, match, deadline):
    with pytest.raises(ExpressionError, match=match) as err:
        parse(text, ["x", "C", "G"])
    assert "\n" not in str(err.value)


def test_the_limits_leave_real_models_alone(deadline):
    terms = " + ".join(f"x{i}" for i in range(3000))   # a long sum parses in linear time
    assert len(parse(terms).args) == 3000
    nested = "(" * (MAX_DEPTH - 2) + "x" + ")" * (MAX_DEPTH - 2)
    assert parse(nested) == sp.Symbol("x")
    assert parse("1.5e300 * x") == sp.Rational("1.5e300") * sp.Symbol("x")
    assert parse("x ** (10 ** 10)") == sp.Symbol("x") ** 10 ** 10     # symbolic powers are not evaluated


_ALPHABET = string.ascii_letters[:6] + string.digits + " +-*/^().,<>=!&|_e" + "\t"


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_any_text_parses_or_raises_expression_error(text):
    try:
        e = parse(text, ["a", "b", "c", "e"])
    except ExpressionError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(e, (sp.Expr, sp.logic.boolalg.Boolean))


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=200, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["name", "sectors", "time", "stocks", "parameters", "equations",
                                        "balance_sheet", "transactions", "series", "initial", "description"]),
                       _yaml_values, max_size=8))
def test_any_mapping_builds_a_model_or_raises_spec_error(d):
    try:
        model_from_dict(d)
    except SpecError as err:
        assert "\n" not in str(err)


@settings(max_examples=200, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_yaml_text_loads_or_raises_spec_error(text):
    try:
        _read_yaml(text, "fuzz.yaml")
    except SpecError as err:
        assert "\n" not in str(err)


def test_a_yaml_alias_bomb_is_refused(tmp_path, deadline):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(SdmodelError, match="alias"):
        load_model(p)


def test_files_that_are_not_regular_files_are_refused(tmp_path, deadline, sim_text):
    (tmp_path / "m.yaml").symlink_to("/dev/zero")
    with pytest.raises(SdmodelError, match="not a regular file"):
        load_model(tmp_path / "m.yaml")
    model = tmp_path / "model.yaml"
    model.write_text(sim_text.replace("  G: 20\n", "") + "series:\n  G: {csv: g.csv, time: t, column: G}\n")
    (tmp_path / "g.csv").symlink_to("/dev/zero")
    with pytest.raises(SpecError, match="series.G .*not a regular file"):
        load_model(model)


@pytest.mark.parametrize("csv,match", [
    ("t,G\n0,20\n2,21\n1,22\n", r"row 4: time '1' in 't' does not increase"),
    ("t,G\n0,20\n0,21\n", r"row 3: time '0' in 't' does not increase"),
    ("t,G\n0,20\ninf,21\n", r"row 3: expected finite numbers"),
    ("t,G\n0,20\n1\n", r"row 3: 2 columns expected, the row has fewer"),
    ("t,G\n0,20,5\n", r"row 2: 2 columns expected, the row has more"),
    ("t,G\n0,twenty\n", r"row 2: expected finite numbers"),
    ("", r"no data rows"),
    (b"t,G\n0,\xff\n", r"not UTF-8 text \(byte 0xff on line 2\)"),
])
def test_bad_series_csvs_are_named_by_row(tmp_path, sim_text, csv, match):
    model = tmp_path / "model.yaml"
    model.write_text(sim_text.replace("  G: 20\n", "") + "series:\n  G: {csv: g.csv, time: t, column: G}\n")
    (tmp_path / "g.csv").write_bytes(csv if isinstance(csv, bytes) else csv.encode())
    with pytest.raises(SpecError, match=match) as err:
        load_model(model)
    assert "\n" not in str(err.value)


def test_a_sequencing_design_with_millions_of_rules_is_refused_before_it_runs(tmp_path, deadline):
    from sdmodel.study.sequencing import load_designs
    from sdmodel.study.base import load_study
    policies = "\n".join(f"      p{i}: {{time: G}}" for i in range(11))
    p = tmp_path / "sq.yaml"
    p.write_text("model: sim\noutcomes:\n  peak: {kind: max, variable: Y}\nsequence:\n  order:\n    kind: order\n"
                 f"    policies:\n{policies}\n    first: 10\n    best: {{minimise: peak}}\n")
    with pytest.raises(SdmodelError, match=r"39,916,800 rules, more than 100,000"):
        load_designs(load_study(p))


def test_an_empty_model_is_refused(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("name: empty\nsectors: [a]\n")
    with pytest.raises(SpecError, match="no stocks and no equations: there is nothing to simulate"):
        load_model(p)


@pytest.mark.parametrize("make,match", [
    (lambda: Execution(chunk_size=0), r"chunk_size \(--chunk-size\) must be a positive whole number, got 0"),
    (lambda: Execution(chunk_size=-5), r"chunk_size \(--chunk-size\) must be a positive whole number"),
    (lambda: Execution(workers=0), r"workers \(--workers\) must be a positive whole number"),
    (lambda: Design(seed=-1), r"seed \(--seed\) must be a whole number >= 0, got -1"),
    (lambda: Design(seed=1.5), r"seed \(--seed\) must be a whole number >= 0, got 1.5"),
    (lambda: Design(N=-5), r"N: expected a whole number of at least 2, got -5"),
])
def test_execution_and_design_options_are_checked_not_replaced_by_defaults(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_a_truncated_chunk_is_recomputed(tmp_path):
    import numpy as np

    from sdmodel.study.base import evaluate_chunks
    X = np.arange(8.0)[:, None]
    f = lambda x: {"y": x[:, 0] * 2}   # noqa: E731
    evaluate_chunks(f, X, tmp_path, "k", execution=Execution(chunk_size=4))
    chunk = tmp_path / "chunks" / "chunk-00001.npz"
    chunk.write_bytes(chunk.read_bytes()[:40])          # cut off mid-file, as by a crash
    out, stats = evaluate_chunks(f, X, tmp_path, "k", execution=Execution(chunk_size=4))
    assert stats.computed == [1] and stats.reused == [0]
    assert out["y"].tolist() == [0, 2, 4, 6, 8, 10, 12, 14]


def test_an_unreachable_dask_scheduler_is_one_clear_error(monkeypatch):
    import numpy as np

    from sdmodel.study import base as study
    monkeypatch.setattr(study, "SCHEDULER_TIMEOUT", "1s")
    with pytest.raises(SpecError, match=r"--scheduler 'tcp://127.0.0.1:9': no Dask scheduler answered within 1s"):
        study.evaluate_chunks(lambda x: {"y": x[:, 0]}, np.ones((2, 1)), "/tmp/sdmodel-unreachable", "k",
                              execution=Execution(scheduler="tcp://127.0.0.1:9"))


def test_an_unknown_time_method_is_refused_at_load_naming_file_and_line(tmp_path, sim_text):
    p = tmp_path / "m.yaml"
    p.write_text(sim_text.replace("dt: 0.25}", "dt: 0.25, method: warp}"))
    with pytest.raises(SpecError, match=r"m.yaml: time.method \(line \d+\): expected one of .*got 'warp'"):
        load_model(p)
