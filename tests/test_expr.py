"""The whitelist expression parser: semantics, and that nothing in a model file is ever executed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sympy as sp

import sdmodel.model.expr as expr_mod
from sdmodel.cli import main
from sdmodel.core.errors import ExpressionError, SdmodelError, SpecError

from .conftest import SIM_YAML
from sdmodel.model.expr import FUNCTIONS, Step, T, dsym, lagsym, marker, parse

a, b, c, x, y, z = sp.symbols("a b c x y z")


# --------------------------------------------------------------------------- arithmetic
@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 + 2 * 3", sp.Integer(7)),
        ("(1 + 2) * 3", sp.Integer(9)),
        ("-x**2", -(x**2)),
        ("-x^2", -(x**2)),
        ("-2**2", sp.Integer(-4)),
        ("2^3^2", sp.Integer(512)),  # right associative: 2^(3^2), not (2^3)^2 = 64
        ("2**3**2", sp.Integer(512)),
        ("2**-1", sp.Rational(1, 2)),
        ("a - b - c", a - b - c),  # left associative: (a - b) - c
        ("a / b / c", a / (b * c)),  # (a / b) / c
        ("a - (b - c)", a - b + c),
        ("a * b / c", a * b / c),
        ("+x", x),
        ("--x", x),
        ("x * -y", -x * y),
        ("  x   +\ty  ", x + y),
    ],
)
def test_arithmetic_and_precedence(text, expected):
    assert sp.simplify(parse(text) - expected) == 0
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e-3", sp.Rational(1, 1000)),
        (".5", sp.Rational(1, 2)),
        ("1.", sp.Integer(1)),
        ("2.50", sp.Rational(5, 2)),
        ("1E+3", sp.Integer(1000)),
        ("0.1", sp.Rational(1, 10)),
        ("42", sp.Integer(42)),
    ],
)
def test_numbers_are_exact_rationals(text, expected):
    e = parse(text)
    assert e == expected
    assert isinstance(e, sp.Rational)  # Integer is a Rational; no Float anywhere


def test_decimal_sums_are_exact():
    assert parse("0.1 + 0.2") == sp.Rational(3, 10)
    assert parse("0.1 + 0.2 - 0.3") == 0
    assert not parse("0.1 * x").atoms(sp.Float)


def test_python_numbers_are_accepted_exactly():
    assert parse(3) == sp.Integer(3) and isinstance(parse(3), sp.Integer)
    assert parse(0.1) == sp.Rational(1, 10)


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_non_expressions_are_rejected(value):
    with pytest.raises(ExpressionError, match="expected an expression or a number"):
        parse(value)


def test_comparisons_and_logic_inside_if():
    e = parse("if_(x >= 1 & y < 2 | z == 0, a, b)")
    assert isinstance(e, sp.Piecewise)
    assert e.subs({x: 1, y: 0, z: 5, a: 10, b: 20}) == 10
    assert e.subs({x: 0, y: 0, z: 5, a: 10, b: 20}) == 20
    assert e.subs({x: 0, y: 0, z: 0, a: 10, b: 20}) == 10
    assert parse("if_(x != 0, 1, 2)").subs(x, 0) == 2


# --------------------------------------------------------------------------- names are plain symbols
@pytest.mark.parametrize("name", ["I", "E", "S", "N", "Q", "gamma", "beta", "pi", "lambda", "O", "oo", "zoo", "nan"])
def test_sympy_and_python_names_are_plain_symbols(name):
    e = parse(name)
    assert e == sp.Symbol(name)
    assert type(e) is sp.Symbol


def test_sympy_constants_are_not_substituted():
    assert parse("I") is sp.Symbol("I")  # sympy caches symbols: the very same object
    assert parse("I") != sp.I
    assert parse("I * I") == sp.Symbol("I") ** 2  # not -1
    assert parse("E") != sp.E
    assert parse("pi") != sp.pi
    assert parse("S") is sp.Symbol("S")
    assert parse("N") is sp.Symbol("N")
    assert parse("gamma") != sp.EulerGamma
    assert parse("log(E)") == sp.log(sp.Symbol("E"))  # not 1
    assert parse("I + E * S", {"I", "E", "S"}) == sp.Symbol("I") + sp.Symbol("E") * sp.Symbol("S")


def test_lambda_is_a_name_not_a_keyword():
    lam = sp.Symbol("lambda")
    assert parse("lambda * x") == lam * x
    assert parse("lambda0 + lambda", {"lambda0", "lambda"}) == sp.Symbol("lambda0") + lam


def test_t_is_model_time():
    assert parse("t") is T
    # t needs no declaration
    assert parse("2 * t", {"x"}) == 2 * T


# --------------------------------------------------------------------------- functions
@pytest.mark.parametrize(
    "text, expected",
    [
        ("exp(x)", sp.exp(x)),
        ("log(x)", sp.log(x)),
        ("sqrt(x)", sp.sqrt(x)),
        ("abs(x)", sp.Abs(x)),
        ("tanh(x)", sp.tanh(x)),
        ("min(x, y)", sp.Min(x, y)),
        ("min(a, b, c, x, y, z)", sp.Min(a, b, c, x, y, z)),
        ("max(x, y, z)", sp.Max(x, y, z)),
        ("clip(x, a, b)", sp.Min(sp.Max(x, a), b)),
        ("if_(x > 0, a, b)", sp.Piecewise((a, x > 0), (b, True))),
        ("logistic(x)", 1 / (1 + sp.exp(-x))),
        ("logistic(x, a, b)", 1 / (1 + sp.exp(-b * (x - a)))),
    ],
)
def test_functions(text, expected):
    assert parse(text) == expected


def test_function_values():
    assert parse("clip(x, 0, 1)").subs(x, 2) == 1
    assert parse("clip(x, 0, 1)").subs(x, -2) == 0
    assert parse("clip(x, 0, 1)").subs(x, sp.Rational(1, 2)) == sp.Rational(1, 2)
    assert parse("logistic(x)").subs(x, 0) == sp.Rational(1, 2)
    assert parse("logistic(x, 3, 7)").subs(x, 3) == sp.Rational(1, 2)
    assert parse("abs(x)").subs(x, -3) == 3
    assert parse("sqrt(4)") == 2
    assert parse("exp(0)") == 1
    assert parse("log(1)") == 0
    assert parse("max(1, 2, 3)") == 3


def test_step_and_ramp_are_functions_of_time():
    s = parse("step(5)")
    assert isinstance(s, Step)
    assert s.args == (T - 5,)
    assert parse("step(t0)", {"t0"}) == Step(T - sp.Symbol("t0"))

    r = parse("ramp(1, 3)")
    assert r.free_symbols == {T}
    assert r.subs(T, 0) == 0
    assert r.subs(T, 1) == 0
    assert r.subs(T, 2) == sp.Rational(1, 2)
    assert r.subs(T, 3) == 1
    assert r.subs(T, 10) == 1


def test_function_list_is_the_documented_whitelist():
    assert set(FUNCTIONS) == {
        "exp", "log", "sqrt", "abs", "tanh", "sin", "cos", "tan", "atan", "min", "max", "clip", "if_", "step",
        "ramp", "logistic", "softplus", "asin", "acos", "integer", "modulo",
    }


@pytest.mark.parametrize(
    "text, match",
    [
        ("exp(x, y)", r"exp\(\) takes 1 arguments, got 2"),
        ("exp()", r"exp\(\) takes 1 arguments, got 0"),
        ("log(x, 10)", r"log\(\) takes 1 arguments, got 2"),
        ("sqrt()", r"sqrt\(\) takes 1 arguments, got 0"),
        ("min(x)", r"min\(\) takes 2 to 6 arguments, got 1"),
        ("max(a, b, c, x, y, z, a)", r"max\(\) takes 2 to 6 arguments, got 7"),
        ("clip(x, 0)", r"clip\(\) takes 3 arguments, got 2"),
        ("if_(x > 0, 1)", r"if_\(\) takes 3 arguments, got 2"),
        ("step(1, 2)", r"step\(\) takes 1 arguments, got 2"),
        ("ramp(1)", r"ramp\(\) takes 2 arguments, got 1"),
        ("logistic(x, y)", r"logistic\(\) takes 1 or 3 arguments, got 2"),
        ("d(x, y)", r"d\(\) takes exactly one argument"),
        ("d()", r"d\(\) takes exactly one argument"),
        ("lag(x, y)", r"lag\(\) takes exactly one argument"),
    ],
)
def test_wrong_arity(text, match):
    with pytest.raises(ExpressionError, match=match):
        parse(text)


@pytest.mark.parametrize(
    "text, match",
    [
        ("x > 0", r"a comparison can only be the condition of if_\(\)"),
        ("max(x > 0, 1)", r"not an argument of max\(\)"),
        ("if_(x > 0, y > 0, 1)", r"not an argument of if_\(\)"),
        ("if_(1, 2, 3)", r"first argument of if_\(\) must be a comparison"),
        ("a < b < c", r"unexpected '<'"),
    ],
)
def test_comparison_misuse(text, match):
    with pytest.raises(ExpressionError, match=match):
        parse(text)


@pytest.mark.parametrize("text", ["if_(x, 1, 2)", "if_(x & y, 1, 2)"])
def test_if_condition_must_be_a_comparison_not_a_name(text):
    with pytest.raises(ExpressionError, match=r"must be a comparison|must be comparisons"):
        parse(text)


# --------------------------------------------------------------------------- d() and lag()
def test_d_and_lag_are_marker_symbols():
    e = parse("d(Hh)")
    assert e == dsym("Hh") == sp.Symbol("d(Hh)")
    assert marker(e) == ("d", "Hh")
    e = parse("lag(Y)")
    assert e == lagsym("Y") == sp.Symbol("lag(Y)")
    assert marker(e) == ("lag", "Y")
    assert marker(sp.Symbol("Y")) == (None, "Y")
    assert marker(sp.Symbol("lagY")) == (None, "lagY")


def test_markers_in_expressions():
    e = parse("alpha1 * YD + alpha2 * lag(Hh)", {"alpha1", "alpha2", "YD", "Hh"})
    assert sorted(str(s) for s in e.free_symbols) == ["YD", "alpha1", "alpha2", "lag(Hh)"]
    e = parse("-d(Hh) + 1")
    assert e == -sp.Symbol("d(Hh)") + 1


def test_lag_of_an_expression_lags_each_name():
    e = parse("lag(a*b)")
    assert e == lagsym("a") * lagsym("b")
    assert {marker(s) for s in e.free_symbols} == {("lag", "a"), ("lag", "b")}
    e = parse("lag(r * Bh + 2) / 3", {"r", "Bh"})
    assert e == (lagsym("r") * lagsym("Bh") + 2) / 3
    assert parse("lag(2)") == 2


@pytest.mark.parametrize(
    "text, match",
    [
        ("d(t)", r"d\(\) takes the name of a stock"),
        ("d(2)", r"d\(\) takes the name of a stock"),
        ("d(x + y)", r"d\(\) takes the name of a stock"),
        ("d(lag(x))", r"d\(\) takes the name of a stock"),
        ("d(d(x))", r"d\(\) takes the name of a stock"),
        ("lag(d(x))", r"lag\(\) cannot contain t, d\(\) or another lag\(\)"),
        ("lag(lag(x))", r"lag\(\) cannot contain"),
        ("lag(t)", r"lag\(\) cannot contain"),
    ],
)
def test_marker_misuse(text, match):
    with pytest.raises(ExpressionError, match=match):
        parse(text)


def test_markers_can_be_forbidden():
    for text in ("d(x)", "lag(x)", "1 + lag(x * y)"):
        with pytest.raises(ExpressionError, match=r"only allowed in equations and matrix entries"):
            parse(text, allow_markers=False)
    assert parse("x + 1", allow_markers=False) == x + 1


def test_marker_arguments_must_be_declared():
    with pytest.raises(ExpressionError, match="undeclared name 'Hhx'; did you mean 'Hh'"):
        parse("d(Hhx)", {"Hh", "Hs"})
    with pytest.raises(ExpressionError, match="undeclared name 'Q'"):
        parse("lag(Q * Hh)", {"Hh"})


# --------------------------------------------------------------------------- safety
def test_expression_error_is_a_spec_error_and_a_value_error():
    assert issubclass(ExpressionError, SpecError)
    assert issubclass(ExpressionError, ValueError)
    assert issubclass(ExpressionError, SdmodelError)


NAMES = {"alpha1", "alpha2", "YD", "Hh", "x", "y", "z"}
EXPLAIN = re.escape("expressions may use names, numbers")

MALICIOUS = [
    ("__import__('os').system('touch X')", r"unexpected character \"'\" at position 12"),
    ("().__class__", r"unexpected character '\.' at position 3"),
    ('exec("x")', r"unexpected character '\"' at position 6"),
    ("eval('1')", r"unexpected character \"'\""),
    ("open('f')", r"unexpected character \"'\""),
    ("x.real", r"unexpected character '\.' at position 2"),
    ("x.__class__.__mro__", r"unexpected character '\.'"),
    ("lambda: 1", r"unexpected character ':' at position 7"),
    ("[x for x in y]", r"unexpected character '\['"),
    ("{x: y}", r"unexpected character '\{'"),
    ("x if y else z", r"unexpected 'if' at position 3"),
    ("'abc'", r"unexpected character \"'\" at position 1"),
    ('"abc"', r"unexpected character '\"' at position 1"),
    ("x; y", r"unexpected character ';' at position 2"),
    ("x = 1", r"unexpected character '=' at position 3"),
    ("x @ y", r"unexpected character '@'"),
    ("x # comment", r"unexpected character '#'"),
    ("`x`", r"unexpected character '`'"),
    ("x\\\ny", r"unexpected character '\\\\'"),
    ("foo(x)", r"unsupported function 'foo' \(supported: abs, acos, asin, atan, clip, cos, exp, if_, integer, log, "
               r"logistic, max, min, modulo, ramp, sin, softplus, sqrt, step, tan, tanh, d, lag\)"),
    ("eval(x)", r"unsupported function 'eval'"),
    ("exec(x)", r"unsupported function 'exec'"),
    ("__import__(x)", r"unsupported function '__import__'"),
    ("getattr(x, y)", r"unsupported function 'getattr'"),
    ("sympify(x)", r"unsupported function 'sympify'"),
    ("Symbol(x)", r"unsupported function 'Symbol'"),
    ("gamma(x)", r"unsupported function 'gamma'"),
    ("alpah1 * YD", r"undeclared name 'alpah1'; did you mean 'alpha1'\?"),
    ("zzzz * YD", r"undeclared name 'zzzz'; declare it as a stock, parameter, series or equation"),
    ("", r"empty expression"),
    ("   ", r"empty expression"),
    ("x +", r"expression ends too early"),
    ("(x", r"expected '\)' at position 3 in '\(x', found the end"),
    ("x)", r"unexpected '\)' at position 2"),
    ("x y", r"unexpected 'y' at position 3"),
    ("1e", r"unexpected 'e' at position 2"),
    ("2x", r"unexpected 'x' at position 2"),
    ("x ** ** y", r"unexpected '\*\*'"),
]


@pytest.mark.parametrize("text, match", MALICIOUS, ids=[m[0] or "<empty>" for m in MALICIOUS])
def test_malicious_or_unsupported_input_is_rejected(text, match):
    with pytest.raises(ExpressionError, match=match) as info:
        parse(text, NAMES)
    err = info.value
    assert isinstance(err, SpecError) and isinstance(err, ValueError)
    msg = str(err)
    assert "\n" not in msg, "errors are one line"
    if text.strip():
        assert repr(text) in msg, "the offending expression is quoted"
    if "unexpected character" in msg:
        assert re.search(EXPLAIN, msg), "a hint lists what is allowed"


def test_source_never_calls_eval_exec_or_sympify():
    """No eval/exec/compile/sympify/parse_expr/ast.parse call anywhere in the parser module."""
    tree = ast.parse(Path(expr_mod.__file__).read_text(encoding="utf-8"))
    bare = {"eval", "exec", "compile", "__import__", "sympify", "parse_expr", "getattr"}
    attrs = {"eval", "exec", "sympify", "parse_expr", "S", "parse_expr"}
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in bare:
                bad.append(f.id)
            elif isinstance(f, ast.Attribute):
                if f.attr in attrs:
                    bad.append(f.attr)
                if f.attr == "parse" and isinstance(f.value, ast.Name) and f.value.id == "ast":
                    bad.append("ast.parse")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [n.name for n in node.names] + [getattr(node, "module", None) or ""]
            assert not {"ast", "builtins"} & set(mods), mods
            assert not any("parsing" in m for m in mods), mods
    assert not bad


def test_parse_does_not_call_builtin_eval_or_exec(monkeypatch):
    import builtins

    def boom(*args, **kwargs):  # pragma: no cover - must never run
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    assert parse("alpha1 * YD + alpha2 * lag(Hh)", NAMES) is not None
    assert parse("if_(x > 0, exp(y), log(z)) + clip(x, 0, 1) + step(3) + ramp(1, 2)") is not None
    with pytest.raises(ExpressionError):
        parse("__import__('os').system('touch X')")


MALICIOUS_MODEL = SIM_YAML.replace("C: alpha1 * YD + alpha2 * Hh", "C: __import__('os').system('touch PWNED')")
assert "__import__" in MALICIOUS_MODEL


def test_cli_check_never_executes_model_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil_model.yaml"
    path.write_text(MALICIOUS_MODEL, encoding="utf-8")

    code = main(["check", str(path)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("sdmodel: error: ")
    assert "evil_model.yaml" in line
    assert "equations.C" in line
    assert "line 16" in line
    assert "unexpected character" in line
    assert not (tmp_path / "PWNED").exists()
    assert list(tmp_path.iterdir()) == [path]


def test_cli_check_never_executes_model_code_in_matrix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil_matrix.yaml"
    text = MALICIOUS_MODEL.replace("C: __import__('os').system('touch PWNED')", "C: alpha1 * YD + alpha2 * Hh")
    text = text.replace("{households: -C, firms: +C}", "{households: \"-__import__('os').system('touch PWNED')\", "
                                                      "firms: +C}")
    path.write_text(text, encoding="utf-8")

    code = main(["check", str(path)])

    _, err = capsys.readouterr()
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "evil_matrix.yaml" in lines[0]
    assert "transactions.Consumption.households" in lines[0]
    assert not (tmp_path / "PWNED").exists()


def test_integer_and_modulo_follow_vensim():
    """integer() is the integer part toward zero; modulo(x, m) = x - m * integer(x / m), the sign of x."""
    from sdmodel.model.expr import Trunc
    assert parse("integer(-2.7)") == -2 and parse("integer(2.7)") == 2
    assert parse("modulo(-7, 3)") == -1 and parse("modulo(7.5, 2)") == sp.Rational(3, 2)
    x = sp.Symbol("x")
    assert parse("integer(x)", ["x"]) == Trunc(x)
    assert sp.diff(Trunc(x), x) == 0


def test_a_block_whose_unknown_passes_through_integer_is_not_solved_as_linear():
    from sdmodel.model.algebra import order_blocks
    x, y = sp.symbols("x y")
    (b,) = order_blocks({x: parse("integer(y) + 1", ["y"]), y: x / 2})
    assert b.kind == "nonlinear"


def test_comparisons_of_two_numbers_are_decided():
    """if_(3 == 3, ...) is 1 and if_(3 > 2, ...) too (sympy alone leaves Eq(3, 3) unevaluated, which the
    Piecewise read as false, and cannot order Gt(3, 2) as written); imported models compare positions so."""
    from sdmodel.model.expr import parse

    assert parse("if_(3 == 3, 1, 0)") == 1 and parse("if_(3 > 2, 1, 0)") == 1 and parse("if_(3 != 3, 1, 0)") == 0
    assert parse("if_(2 > 3 | 1 < 2, 5, 0)") == 5 and parse("if_(2 >= 3 & 1 < 2, 5, 0)") == 0
