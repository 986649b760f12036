"""Model files: loading, parameters, series, built-in names, and every error naming file, key and line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from sdmodel.core.errors import SpecError
from sdmodel.model.expr import dsym, lagsym
from sdmodel.model.spec import Model, Parameter, Series, _read_yaml, builtin_models, load_model, model_from_dict

# models/sim/model.yaml, verbatim.
SIM_YAML = """\
name: sim
description: Godley & Lavoie (2007) model SIM, continuous time
sectors: [households, firms, government]
time: {start: 0, stop: 60, dt: 0.25}
stocks: {Hh: 0, Hs: 0}          # initial values; dynamics come from the matrices
parameters:
  alpha1: 0.6
  alpha2: 0.4
  theta: {value: 0.2, bounds: [0.1, 0.4], doc: income tax rate}
  G: 20
equations:
  Y: C + G
  W: Y
  T: theta * W
  YD: W - T
  C: alpha1 * YD + alpha2 * Hh
balance_sheet:
  Money: {households: +Hh, government: -Hs}
transactions:
  Consumption: {households: -C, firms: +C}
  Government spending: {firms: +G, government: -G}
  Wages: {households: +W, firms: -W}
  Taxes: {households: -T, government: +T}
  Change in money: {households: -d(Hh), government: +d(Hs)}
"""

S = sp.Symbol
BUILTINS = ["sim", "sim_discrete", "pc", "lp"]
FNAME = "broken_model.yaml"


def write(tmp_path, text, name="model.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace(text, old, new):
    assert old in text, f"test setup: {old!r} not in the model text"
    return text.replace(old, new, 1)


def line_of(text, fragment):
    """1-based line of the first line containing fragment."""
    for i, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return i
    raise AssertionError(f"test setup: {fragment!r} not found")


def load_error(tmp_path, text, match) -> SpecError:
    """Load text from a file; it must raise one SpecError whose message is one line naming the file."""
    path = write(tmp_path, text, FNAME)
    with pytest.raises(SpecError, match=match) as info:
        load_model(path)
    msg = str(info.value)
    assert "\n" not in msg and "\r" not in msg, f"error is not one line: {msg!r}"
    assert FNAME in msg, msg
    assert msg.startswith(str(path) + ": ")
    assert info.value.source == str(path)
    return info.value


# --------------------------------------------------------------------------- the SIM file
def test_sim_file_loads(tmp_path):
    m = load_model(write(tmp_path, SIM_YAML))
    assert isinstance(m, Model)
    assert m.name == "sim"
    assert m.description == "Godley & Lavoie (2007) model SIM, continuous time"
    assert m.sectors == ("households", "firms", "government")
    assert (m.time.start, m.time.stop, m.time.dt, m.time.mode) == (0.0, 60.0, 0.25, "continuous")
    assert not m.discrete
    assert dict(m.stocks) == {"Hh": 0.0, "Hs": 0.0}
    assert m.param_values == {"alpha1": 0.6, "alpha2": 0.4, "theta": 0.2, "G": 20.0}
    assert list(m.equations) == ["Y", "W", "T", "YD", "C"]
    assert m.equations["Y"] == S("C") + S("G")
    assert m.equations["T"] == S("theta") * S("W")
    assert m.equations["C"] == S("alpha1") * S("YD") + S("alpha2") * S("Hh")
    assert dict(m.changes) == {}
    assert m.equation_text["C"] == "alpha1 * YD + alpha2 * Hh"
    assert m.lines["Y"] == line_of(SIM_YAML, "  Y: C + G")
    assert m.lines["C"] == line_of(SIM_YAML, "  C: alpha1")
    assert m.source == str(tmp_path / "model.yaml")
    assert len(m.spec_hash) == 64
    assert m.all_names() == ["Hh", "Hs", "alpha1", "alpha2", "theta", "G", "Y", "W", "T", "YD", "C"]

    bs = m.balance_sheet
    assert bs.kind == "balance_sheet"
    assert dict(bs.rows["Money"]) == {"households": S("Hh"), "government": -S("Hs")}
    assert bs.columns == ("households", "government")
    tf = m.transactions
    assert list(tf.rows) == ["Consumption", "Government spending", "Wages", "Taxes", "Change in money"]
    assert tf.columns == ("households", "firms", "government")
    assert tf.rows["Change in money"]["households"] == -dsym("Hh")
    assert tf.rows["Change in money"]["government"] == dsym("Hs")
    assert tf.text[("Consumption", "households")] == "-C"
    assert len(list(tf.entries())) == 10


def test_sim_file_is_immutable(tmp_path):
    m = load_model(write(tmp_path, SIM_YAML))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "other"
    with pytest.raises(TypeError):
        m.parameters["theta"] = Parameter("theta", 0.3)
    with pytest.raises(TypeError):
        m.equations["Y"] = S("C")
    with pytest.raises(TypeError):
        m.transactions.rows["Wages"]["firms"] = S("C")


def test_same_file_same_hash_and_changed_file_new_hash(tmp_path):
    a = load_model(write(tmp_path, SIM_YAML, "a.yaml"))
    b = load_model(write(tmp_path, SIM_YAML, "b.yaml"))
    c = load_model(write(tmp_path, replace(SIM_YAML, "G: 20", "G: 21"), "c.yaml"))
    assert a.spec_hash == b.spec_hash != c.spec_hash


def test_parameter_value_bounds_doc_unit(tmp_path):
    text = replace(SIM_YAML, "  alpha1: 0.6\n",
                   "  alpha1: {value: 0.6, bounds: [0.4, 0.9], doc: propensity to consume, unit: \"1\"}\n")
    m = load_model(write(tmp_path, text))
    p = m.parameters["alpha1"]
    assert p == Parameter("alpha1", 0.6, (0.4, 0.9), "propensity to consume", "1")
    assert isinstance(p.value, float) and p.bounds == (0.4, 0.9)
    assert m.docs["alpha1"] == "propensity to consume"
    theta = m.parameters["theta"]
    assert (theta.value, theta.bounds, theta.doc, theta.unit) == (0.2, (0.1, 0.4), "income tax rate", "")
    g = m.parameters["G"]
    assert (g.value, g.bounds, g.doc, g.unit) == (20.0, None, "", "")
    assert isinstance(g.value, float)


def test_with_params_returns_a_new_model(tmp_path):
    m = load_model(write(tmp_path, SIM_YAML))
    m2 = m.with_params(theta=0.3)
    m3 = m.with_params({"G": 25, "alpha1": "0.7"})
    assert m2 is not m and m3 is not m
    assert m.param_values == {"alpha1": 0.6, "alpha2": 0.4, "theta": 0.2, "G": 20.0}  # unchanged
    assert m2.param_values == {"alpha1": 0.6, "alpha2": 0.4, "theta": 0.3, "G": 20.0}
    assert m3.param_values == {"alpha1": 0.7, "alpha2": 0.4, "theta": 0.2, "G": 25.0}
    # bounds, doc and unit are kept
    assert m2.parameters["theta"] == Parameter("theta", 0.3, (0.1, 0.4), "income tax rate", "")
    # everything else is shared, untouched
    assert m2.equations == m.equations and m2.transactions is m.transactions
    assert m.with_params().param_values == m.param_values


def test_with_params_unknown_name(tmp_path):
    m = load_model(write(tmp_path, SIM_YAML))
    with pytest.raises(SpecError, match=r"'zeta' is not a parameter of model 'sim'") as info:
        m.with_params(zeta=1.0)
    msg = str(info.value)
    assert "\n" not in msg
    assert "did you mean 'theta'" in msg  # the near miss, not a list of every parameter
    assert m.param_values["theta"] == 0.2


def test_with_params_reports_every_bad_value(tmp_path):
    m = load_model(write(tmp_path, SIM_YAML))
    with pytest.raises(SpecError, match=r"3 problems") as info:
        m.with_params({"zeta": 1, "theta": "abc", "G": float("nan")})
    assert len(info.value.problems) == 3
    assert "\n" not in str(info.value)
    for part in ("'zeta'", "'theta': expected a number", "'G': expected a finite number"):
        assert part in str(info.value)
    with pytest.raises(SpecError, match="finite"):
        m.with_params(G=float("inf"))


def test_model_from_dict_matches_file(tmp_path):
    import yaml

    m = model_from_dict(yaml.safe_load(SIM_YAML))
    f = load_model(write(tmp_path, SIM_YAML))
    assert m.source == "<dict>"
    assert dict(m.equations) == dict(f.equations)
    assert m.param_values == f.param_values
    with pytest.raises(SpecError, match="expected a YAML mapping"):
        model_from_dict(["not", "a", "mapping"])


# --------------------------------------------------------------------------- errors: one line, file, key, line
def test_malformed_yaml_names_the_line(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "  W: Y: Z\n")
    err = load_error(tmp_path, text, r"malformed YAML at line \d+, column \d+: mapping values are not allowed")
    assert f"at line {line_of(text, 'W: Y: Z')}," in str(err)


def test_malformed_yaml_unclosed_bracket(tmp_path):
    text = replace(SIM_YAML, "stocks: {Hh: 0, Hs: 0}", "stocks: [Hh: 0, Hs: 0}")
    err = load_error(tmp_path, text, r"malformed YAML at line \d+")
    assert f"line {line_of(text, 'stocks: [')}" in str(err)


def test_malformed_yaml_tab(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "\tW: Y\n")
    load_error(tmp_path, text, rf"malformed YAML at line {line_of(text, 'W: Y')}, column 1: .*(cannot start any token|tab character)")


def test_duplicate_key_in_equations(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "  W: Y\n  YD: W\n")
    first, second = line_of(text, "  YD: W\n".strip()), line_of(text, "YD: W - T")
    assert first < second
    load_error(tmp_path, text,
               rf"duplicate key 'YD' at line {second} \(first defined at line {first}\)")


def test_duplicate_top_level_key(tmp_path):
    text = SIM_YAML + "stocks: {Hh: 1}\n"
    load_error(tmp_path, text, rf"duplicate key 'stocks' at line {line_of(text, 'stocks: {Hh: 1}')} "
                               rf"\(first defined at line {line_of(SIM_YAML, 'stocks:')}\)")


def test_duplicate_definition_across_sections(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "  W: Y\n  G: 2 * Y\n")
    load_error(tmp_path, text,
               rf"equations\.G \(line {line_of(text, '  G: 2 * Y')}\): duplicate definition: "
               r"'G' is already defined in parameters")


def test_duplicate_definition_stock_and_parameter(tmp_path):
    text = replace(SIM_YAML, "  alpha1: 0.6\n", "  alpha1: 0.6\n  Hh: 1\n")
    load_error(tmp_path, text, r"parameters\.Hh \(line \d+\): duplicate definition: 'Hh' is already defined in stocks")


def test_undeclared_name_in_equation(tmp_path):
    text = replace(SIM_YAML, "alpha1 * YD", "alpah1 * YD")
    load_error(tmp_path, text,
               rf"equations\.C \(line {line_of(text, 'C: alpah1')}\): undeclared name 'alpah1'; "
               r"did you mean 'alpha1'\?")


def test_undeclared_name_in_matrix_entry(tmp_path):
    text = replace(SIM_YAML, "{households: +W, firms: -W}", "{households: +Wage, firms: -W}")
    load_error(tmp_path, text,
               rf"transactions\.Wages\.households \(line {line_of(text, 'Wages:')}\): undeclared name 'Wage'")


def test_undeclared_name_in_balance_sheet(tmp_path):
    text = replace(SIM_YAML, "{households: +Hh, government: -Hs}", "{households: +Hh, government: -Hgov}")
    load_error(tmp_path, text, r"balance_sheet\.Money\.government \(line \d+\): undeclared name 'Hgov'")


def test_unsupported_function(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "  W: system(Y)\n")
    load_error(tmp_path, text,
               rf"equations\.W \(line {line_of(text, 'system(Y)')}\): unsupported function 'system' "
               r"\(supported: abs, acos, asin, atan, clip, cos, exp")


def test_code_in_an_equation_is_an_error_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = replace(SIM_YAML, "  W: Y\n", "  W: __import__('os').system('touch PWNED')\n")
    load_error(tmp_path, text, r"equations\.W \(line \d+\): unexpected character")
    assert not (tmp_path / "PWNED").exists()


def test_unknown_sector_in_matrix(tmp_path):
    text = replace(SIM_YAML, "{households: -C, firms: +C}", "{households: -C, banks: +C}")
    load_error(tmp_path, text,
               rf"transactions\.Consumption\.banks \(line {line_of(text, 'Consumption:')}\): unknown sector "
               r"'banks' \(sectors: households, firms, government\)")


def test_unknown_top_level_key(tmp_path):
    text = SIM_YAML + "equation:\n  Z: Y\n"
    load_error(tmp_path, text,
               rf"equation \(line {line_of(text, 'equation:')}\): unknown key \(expected one of name, "
               r"description, sectors")


@pytest.mark.parametrize(
    "value, shown",
    [("abc", "'abc'"), ("alpha2 * 2", "'alpha2 \\* 2'"), ("[1, 2]", r"\[1, 2\]"), ("true", "True"),
     ("{doc: no value}", None)],
)
def test_bad_parameter_value(tmp_path, value, shown):
    text = replace(SIM_YAML, "  alpha1: 0.6\n", f"  alpha1: {value}\n")
    line = line_of(text, "alpha1:")
    if shown is None:
        load_error(tmp_path, text, rf"parameters\.alpha1 \(line {line}\): expected a value")
    else:
        load_error(tmp_path, text, rf"parameters\.alpha1 \(line {line}\): expected a number, got {shown}")


def test_unknown_key_in_parameter(tmp_path):
    text = replace(SIM_YAML, "doc: income tax rate}", "doc: income tax rate, default: 3}")
    load_error(tmp_path, text, r"parameters\.theta \(line \d+\): unknown key 'default'")


@pytest.mark.parametrize("bounds", ["[0.4, 0.1]", "[0.2, 0.2]"])
def test_bounds_lower_not_below_upper(tmp_path, bounds):
    text = replace(SIM_YAML, "bounds: [0.1, 0.4]", f"bounds: {bounds}")
    load_error(tmp_path, text,
               rf"parameters\.theta \(line {line_of(text, 'theta:')}\): bounds must be \[lower, upper\] "
               r"with lower < upper")


@pytest.mark.parametrize("bounds", ["[0.1]", "[0.1, 0.2, 0.3]", "0.5", "[a, b]"])
def test_bounds_not_two_numbers(tmp_path, bounds):
    text = replace(SIM_YAML, "bounds: [0.1, 0.4]", f"bounds: {bounds}")
    load_error(tmp_path, text, r"parameters\.theta \(line \d+\): bounds must be two numbers")


def test_value_outside_bounds(tmp_path):
    text = replace(SIM_YAML, "value: 0.2, bounds", "value: 0.5, bounds")
    load_error(tmp_path, text, r"parameters\.theta \(line \d+\): value 0\.5 lies outside its bounds \[0\.1, 0\.4\]")


@pytest.mark.parametrize(
    "old, new, key",
    [("alpha1: 0.6", "alpha1: nan", "parameters.alpha1"),
     ("alpha1: 0.6", "alpha1: .inf", "parameters.alpha1"),
     ("stocks: {Hh: 0,", "stocks: {Hh: .nan,", "stocks.Hh")],
)
def test_non_finite_numbers_are_rejected(tmp_path, old, new, key):
    err = load_error(tmp_path, replace(SIM_YAML, old, new), r"finite")
    assert key in str(err)


def test_lag_in_a_continuous_model(tmp_path):
    text = replace(SIM_YAML, "alpha2 * Hh", "alpha2 * lag(Hh)")
    load_error(tmp_path, text,
               rf"equations\.C \(line {line_of(text, 'lag(Hh)')}\): lag\(Hh\): lag\(\) is for discrete-time "
               r"models \(time: \{mode: discrete\}\)")


def test_lag_in_a_continuous_matrix_entry(tmp_path):
    text = replace(SIM_YAML, "{households: -C, firms: +C}", "{households: -lag(C), firms: +lag(C)}")
    err = load_error(tmp_path, text, r"2 problems: transactions\.Consumption\.households \(line \d+\): lag\(C\)")
    assert "transactions.Consumption.firms" in str(err)


def test_lag_is_fine_in_a_discrete_model(tmp_path):
    text = replace(SIM_YAML, "time: {start: 0, stop: 60, dt: 0.25}", "time: {mode: discrete, start: 1, stop: 60}")
    text = replace(text, "alpha2 * Hh", "alpha2 * lag(Hh)")
    m = load_model(write(tmp_path, text))
    assert m.discrete
    assert m.equations["C"] == S("alpha1") * S("YD") + S("alpha2") * lagsym("Hh")


def test_d_of_a_non_stock_in_an_equation(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "  W: Y + d(G)\n")
    load_error(tmp_path, text, r"equations\.W.*: d\(G\) needs 'G' to be a stock \(declare it under stocks:\)")


def test_d_of_a_non_stock_names_the_line(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "  W: Y + d(G)\n")
    load_error(tmp_path, text, rf"equations\.W \(line {line_of(text, 'd(G)')}\): d\(G\) needs 'G'")


def test_d_of_a_non_stock_as_an_equation_key(tmp_path):
    text = replace(SIM_YAML, "  W: Y\n", "  W: Y\n  d(Y): 1\n")
    load_error(tmp_path, text,
               rf"equations\.d\(Y\) \(line {line_of(text, 'd(Y): 1')}\): d\(Y\) needs 'Y' to be a stock")


def test_d_of_a_non_stock_in_a_matrix(tmp_path):
    text = replace(SIM_YAML, "{firms: +G, government: -G}", "{firms: +d(G), government: -d(G)}")
    err = load_error(tmp_path, text, r"2 problems: .*transactions\.Government spending\.firms.*: d\(G\) needs 'G'")
    assert "transactions.Government spending.government" in str(err)


def test_d_in_balance_sheet(tmp_path):
    text = replace(SIM_YAML, "{households: +Hh, government: -Hs}", "{households: +d(Hh), government: -Hs}")
    load_error(tmp_path, text, r"balance_sheet\.Money\.households \(line \d+\): d\(\) belongs in the transactions")


def test_several_problems_reported_together(tmp_path):
    text = replace(SIM_YAML, "  alpha1: 0.6\n", "  alpha1: abc\n")
    text = replace(text, "  W: Y\n", "  W: foo(Y)\n")
    text = replace(text, "{households: -C, firms: +C}", "{households: -C, banks: +C}")
    text = replace(text, "alpha2 * Hh", "alpha22 * Hh")
    text += "outputz: [Y]\n"
    err = load_error(tmp_path, text, r"^.*broken_model\.yaml: 5 problems: ")
    assert len(err.problems) == 5
    keys = ["outputz", "parameters.alpha1", "equations.W", "equations.C", "transactions.Consumption.banks"]
    for key, problem in zip(keys, err.problems):
        assert problem.startswith(key + " (line "), problem
        assert problem in str(err)
    assert "; ".join(err.problems) in str(err)


def test_empty_or_non_mapping_file(tmp_path):
    load_error(tmp_path, "", r"expected a YAML mapping")
    load_error(tmp_path, "- just\n- a list\n", r"expected a YAML mapping")


def test_non_utf8_file(tmp_path):
    path = tmp_path / FNAME
    path.write_bytes(SIM_YAML.encode("utf-16"))
    with pytest.raises(SpecError, match="not UTF-8") as info:
        load_model(path)
    assert FNAME in str(info.value)


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("  W: Y\n", "  W: Y\n  t: 1\n", r"equations\.t \(line \d+\): 't' is reserved"),
        ("  W: Y\n", "  W: Y\n  lag: 1\n", r"equations\.lag \(line \d+\): 'lag' is reserved"),
        ("  W: Y\n", "  W: Y\n  _x: 1\n", r"equations\._x \(line \d+\): '_x' is not a valid name"),
        ("  G: 20\n", "  G: 20\n  2x: 1\n", r"parameters\.2x \(line \d+\): '2x' is not a valid name"),
        ("  W: Y\n", "  W: Y\n  Hh: 1\n", r"equations\.Hh \(line \d+\): 'Hh' is a stock"),
        ("dt: 0.25", "dt: 0", r"time\.dt \(line \d+\): expected a positive time step"),
        ("stop: 60", "stop: -1", r"time\.stop \(line \d+\): expected stop > start"),
        ("start: 0,", "start: 0, mode: weekly,", r"time\.mode \(line \d+\): expected 'continuous' or 'discrete'"),
        ("start: 0,", "start: 0, steps: 3,", r"time\.steps \(line \d+\): unknown key"),
        ("sectors: [households, firms, government]", "sectors: [households, firms, households]",
         r"sectors \(line 3\): duplicate sector 'households'"),
        ("stocks: {Hh: 0,", "stocks: {Hh: zero,", r"stocks\.Hh \(line \d+\): undeclared name 'zero'"),
        ("stocks: {Hh: 0,", "stocks: {Hh: [1],", r"stocks\.Hh \(line \d+\): expected an initial value"),
    ],
)
def test_other_validation_errors(tmp_path, old, new, match):
    load_error(tmp_path, replace(SIM_YAML, old, new), match)


def test_yaml_merge_key_override_is_not_a_duplicate(tmp_path):
    text = replace(SIM_YAML, "  alpha1: 0.6\n", "  alpha1: &p {value: 0.6, doc: propensity}\n")
    text = replace(text, "  alpha2: 0.4\n", "  alpha2: {<<: *p, value: 0.4}\n")
    m = load_model(write(tmp_path, text))
    assert m.parameters["alpha2"] == Parameter("alpha2", 0.4, None, "propensity", "")


def test_error_stays_one_line_for_a_key_with_a_newline(tmp_path):
    load_error(tmp_path, SIM_YAML + '"bad\\nkey": 1\n', r"unknown key")


# --------------------------------------------------------------------------- series
def series_model(series_yaml: str) -> str:
    text = replace(SIM_YAML, "  G: 20\n", "")
    return replace(text, "equations:\n", "series:\n" + series_yaml + "equations:\n")


def test_inline_series_linear(tmp_path):
    m = load_model(write(tmp_path, series_model("  G: {data: {0: 10, 10: 30, 20: 30}, doc: spending}\n")))
    g = m.series["G"]
    assert isinstance(g, Series)
    assert (g.times, g.values, g.interpolation, g.source) == ((0.0, 10.0, 20.0), (10.0, 30.0, 30.0), "linear", "inline")
    assert "G" not in m.parameters
    assert g(5) == pytest.approx(20.0)
    assert g(2.5) == pytest.approx(15.0)
    np.testing.assert_allclose(g([-5, 0, 2.5, 10, 15, 99]), [10, 10, 15, 30, 30, 30])  # held outside the data


def test_inline_series_previous(tmp_path):
    m = load_model(write(tmp_path, series_model("  G: {data: {10: 30, 0: 10}, interpolation: previous}\n")))
    g = m.series["G"]
    assert g.interpolation == "previous"
    assert g.times == (0.0, 10.0)  # sorted
    np.testing.assert_allclose(g([-1, 0, 5, 9.999, 10, 10.5, 50]), [10, 10, 10, 10, 30, 30, 30])


def test_inline_series_as_a_list_of_pairs(tmp_path):
    m = load_model(write(tmp_path, series_model("  G: [[0, 1], [4, 5]]\n")))
    assert m.series["G"](2) == pytest.approx(3.0)


@pytest.mark.parametrize(
    "series_yaml, match",
    [
        ("  G: {data: {0: 1}, interpolation: cubic}\n", r"interpolation must be 'linear' or 'previous'"),
        ("  G: {data: [[0, 1], [0.0, 2]]}\n", r"duplicate times in series"),
        ("  G: {data: {0: one}}\n", r"expected numeric time: value pairs"),
        ("  G: {data: {}}\n", r"a series needs at least one \(time, value\) point"),
        ("  G: 20\n", r"expected \{data: \{time: value, \.\.\.\}\}"),
        ("  G: {data: {0: 1}, kind: x}\n", r"unknown key 'kind'"),
    ],
)
def test_bad_inline_series(tmp_path, series_yaml, match):
    load_error(tmp_path, series_model(series_yaml), rf"series\.G \(line \d+\): {match}")


def test_csv_series_relative_to_the_model_file(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "spending.csv").write_text("year,gov,other\n0,10,1\n5,,2\n10,30,3\n", encoding="utf-8")
    path = write(tmp_path, series_model("  G: {csv: data/spending.csv, time: year, column: gov}\n"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the CSV is found beside the model file, not in the cwd

    m = load_model(path)
    g = m.series["G"]
    assert g.times == (0.0, 10.0)  # the empty cell is skipped
    assert g.values == (10.0, 30.0)
    assert g.source == "data/spending.csv:gov"
    assert g(5) == pytest.approx(20.0)

    # the CSV is part of the hash: a changed CSV gives a new spec_hash
    (tmp_path / "data" / "spending.csv").write_text("year,gov\n0,10\n10,31\n", encoding="utf-8")
    assert load_model(path).spec_hash != m.spec_hash


def test_csv_series_default_columns_and_previous(tmp_path):
    (tmp_path / "g.csv").write_text("t,G\n0,1\n10,2\n", encoding="utf-8")
    m = load_model(write(tmp_path, series_model("  G: {csv: g.csv, interpolation: previous}\n")))
    np.testing.assert_allclose(m.series["G"]([0, 9, 10]), [1, 1, 2])


def test_csv_series_missing_column(tmp_path):
    (tmp_path / "spending.csv").write_text("year,gov\n0,10\n10,30\n", encoding="utf-8")
    text = series_model("  G: {csv: spending.csv, time: year, column: spend}\n")
    load_error(tmp_path, text,
               rf"series\.G \(line {line_of(text, 'csv: spending.csv')}\): CSV '.*spending\.csv' has no column "
               r"'spend' \(columns: year, gov\)")


def test_csv_series_missing_time_column(tmp_path):
    (tmp_path / "spending.csv").write_text("year,G\n0,10\n10,30\n", encoding="utf-8")
    load_error(tmp_path, series_model("  G: {csv: spending.csv}\n"), r"series\.G \(line \d+\): .*has no column 't'")


def test_csv_series_missing_file(tmp_path):
    load_error(tmp_path, series_model("  G: {csv: nowhere.csv}\n"),
               r"series\.G \(line \d+\): .*nowhere\.csv: no such CSV file")


def test_csv_series_bad_number(tmp_path):
    (tmp_path / "g.csv").write_text("t,G\n0,1\n10,lots\n", encoding="utf-8")
    load_error(tmp_path, series_model("  G: {csv: g.csv}\n"), r"series\.G \(line \d+\): CSV '.*g\.csv' row 3")


# --------------------------------------------------------------------------- built-in models
@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_model_names_resolve(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # names resolve wherever the caller is
    m = load_model(name)
    assert isinstance(m, Model)
    assert m.name == name
    assert m.source.replace("\\", "/").endswith(f"{name}/model.yaml")
    assert m.transactions is not None
    assert name in builtin_models()


def test_builtin_modes():
    assert not load_model("sim").discrete
    assert load_model("sim_discrete").discrete
    assert load_model("pc").discrete
    assert load_model("lp").discrete


def test_builtin_sim_is_the_sim_file(tmp_path):
    f = load_model(write(tmp_path, SIM_YAML))
    b = load_model("sim")
    assert dict(b.equations) == dict(f.equations)
    assert b.param_values == f.param_values
    assert b.spec_hash == f.spec_hash


def test_model_folder_resolves(tmp_path):
    folder = tmp_path / "mymodel"
    folder.mkdir()
    write(folder, SIM_YAML)
    assert load_model(folder).param_values == load_model("sim").param_values
    assert load_model(str(folder)).source == str(folder / "model.yaml")


def test_unknown_model_name_lists_builtins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=r"no model file or built-in model named 'nosuchmodel' \(built-in models: ") \
            as info:
        load_model("nosuchmodel")
    msg = str(info.value)
    assert "\n" not in msg
    listed = re.search(r"built-in models: ([^)]*)\)", msg).group(1).split(", ")
    assert set(BUILTINS) <= set(listed)
    assert listed == sorted(listed)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(SpecError, match=r"no model file or built-in model named '.*missing\.yaml'"):
        load_model(tmp_path / "missing.yaml")


def test_yaml_11_booleans_are_plain_names(tmp_path):
    from sdmodel.model.spec import _read_yaml
    d = _read_yaml("equations: {on: x, yes: y, flag: true}\n", "m.yaml")
    assert set(d["equations"]) == {"on", "yes", "flag"} and d["equations"]["flag"] is True


def test_with_series_replaces_paths_and_names_bad_ones():
    m = load_model("pc")
    m2 = m.with_series(r={0: 0.02, 200: 0.04})
    assert m2.series["r"](100) == pytest.approx(0.03) and m.series["r"](150) == pytest.approx(0.035)
    assert m.with_series(r=0.01).series["r"](500) == 0.01
    with pytest.raises(SpecError) as err:
        m.with_series(nosuch=1, r="x")
    assert "nosuch" in str(err.value) and "series 'r'" in str(err.value)


def test_models_pickle_read_only_without_changing_pickle_at_large():
    """A model (with a scenario and a lookup) pickles for process pools and comes back read-only;
    importing sdmodel does not make mappingproxy picklable elsewhere, nor change how sympy pickles."""
    import pickle
    from types import MappingProxyType

    import sympy as sp

    from sdmodel.model.expr import make_lookup
    m = load_model("bsr", "japan")
    back = pickle.loads(pickle.dumps(m))
    assert back.parameters == m.parameters and back.equations == m.equations and back.path == m.path
    assert isinstance(back.parameters, MappingProxyType)
    assert isinstance(back.balance_sheet.rows["Deposits"], MappingProxyType)
    with pytest.raises(TypeError):
        back.parameters["c_y"] = 0
    with pytest.raises(TypeError):
        pickle.dumps(MappingProxyType({}))
    tab = make_lookup("tab", [0, 1], [0, 10])
    assert float(pickle.loads(pickle.dumps(tab))(sp.Float(0.25))) == 2.5
    assert pickle.loads(pickle.dumps(sp.sin)) is sp.sin


def test_unnamed_model_is_named_after_its_folder_with_or_without_a_scenario(tmp_path):
    folder = tmp_path / "mymod"
    (folder / "scenarios").mkdir(parents=True)
    (folder / "model.yaml").write_text("time: {start: 0, stop: 2, dt: 0.5}\nstocks: {X: 1}\n"
                                       "parameters: {k: 1}\nequations: {\"d(X)\": \"-k * X\"}\n")
    (folder / "scenarios" / "fast.yaml").write_text("parameters: {k: 2}\n")
    plain, fast = load_model(folder), load_model(folder, "fast")
    assert (plain.name, fast.name, fast.label) == ("mymod", "mymod", "mymod/fast")
    assert plain.path == fast.path == str(folder / "model.yaml") and plain.scenario_file == ""
    assert fast.scenario_file == str(folder / "scenarios" / "fast.yaml")


def test_a_report_block_declares_panels_and_units(tmp_path):
    from sdmodel.report.views import history_panels
    m = load_model("bsr", "japan")
    assert m.presentation["units"] == "% of GDP"
    assert history_panels(m, ["gov_debt_gdp", "hh_debt_gdp"]) == [("hh_debt_gdp", "households: debt / GDP"),
                                                                   ("gov_debt_gdp", "government: debt / GDP")]
    assert load_model("sim").presentation == {}
    bad = SIM_YAML + "report:\n  panels: {YY: income, C: 3}\n  unit: '%'\n"
    with pytest.raises(SpecError) as e:
        load_model(write(tmp_path, bad))
    msg = str(e.value)
    assert "report.panels.YY" in msg and "did you mean 'Y'" in msg
    assert "report.panels.C" in msg and "expected a title" in msg
    assert "report" in msg and "unit" in msg


# ---------------------------------------------------------------- variants and shocks (scenarios)
SD_YAML = (Path(__file__).resolve().parent.parent / "models" / "sim_discrete" / "model.yaml").read_text()


def _scenario(tmp_path, text, model=SD_YAML, name="s"):
    folder = tmp_path / "m"
    (folder / "scenarios").mkdir(parents=True, exist_ok=True)
    (folder / "model.yaml").write_text(model)
    (folder / "scenarios" / f"{name}.yaml").write_text(text)
    return load_model(folder, scenario=name)


def _run(model):
    from sdmodel import simulate

    return simulate(model).to_frame()


def test_a_shock_changes_a_parameter_from_a_time_on_as_a_step_series_would(tmp_path):
    shocked = _scenario(tmp_path, "shocks:\n  G: {from: 5, value: 30}\n")
    assert shocked.parameters["G"].value == 20 and "G" not in shocked.series
    assert shocked.shocks["G"][0].start == 5 and shocked.shocks["G"][0].value == 30
    # a shocked parameter is a coefficient of the simultaneous block: still solved in closed form, proven
    from sdmodel import check_accounting, compile_model

    assert not compile_model(shocked).has_newton
    assert {c.status for c in check_accounting(shocked).checks} == {"proven"}

    def stepped(before):
        return load_model_text(SD_YAML.replace("  G: {value: 20, doc: government spending (from period 1 on)}\n", "")
                               .replace("parameters:\n", f"series:\n  G: {{data: {{0: {before}, 5: 30}}, interpolation: "
                                        "previous, extrapolate: hold}\nparameters:\n"))

    np.testing.assert_allclose(_run(shocked)["Y"], _run(stepped(20))["Y"], rtol=1e-13)
    # with_params (and so --set) sets the value outside the shock
    np.testing.assert_allclose(_run(shocked.with_params(G=25))["Y"], _run(stepped(25))["Y"], rtol=1e-13)


def load_model_text(text):
    return model_from_dict(_read_yaml(text, "model"))


def test_a_shock_with_an_end_and_lag_of_a_shocked_parameter(tmp_path):
    m = _scenario(tmp_path, "equations:\n  Gprev: lag(G)\nshocks:\n  G: [{from: 5, to: 6, value: 30}, {from: 9, value: 10}]\n")
    df = _run(m)
    assert list(df.loc[3:10, "Gprev"]) == [20, 20, 20, 30, 30, 20, 20, 10]
    assert df.loc[5, "Y"] - df.loc[5, "C"] == pytest.approx(30) and df.loc[7, "Y"] - df.loc[7, "C"] == pytest.approx(20)


def test_a_shock_in_continuous_time(tmp_path):
    m = _scenario(tmp_path, "shocks:\n  G: {from: 10, value: 25}\n", model=SIM_YAML)
    df = _run(m)
    assert df.loc[9.75, "Y"] - df.loc[9.75, "C"] == pytest.approx(20) and df.loc[10, "Y"] - df.loc[10, "C"] == pytest.approx(25)
    assert df["Y"].iloc[-1] == pytest.approx(125, rel=1e-3)  # Y* = G / theta


def test_the_cli_sets_a_shocked_parameter(tmp_path):
    import json

    from sdmodel import cli

    _scenario(tmp_path, "shocks:\n  G: {from: 5, value: 30}\n")
    out = tmp_path / "D"
    assert cli.main(["run", str(tmp_path / "m"), "--scenario", "s", "--set", "G=25", "--out", str(out), "--no-figure"]) == 0
    assert json.loads((out / "manifest.json").read_text())["parameters"]["G"] == 25


def test_a_scenario_replaces_and_adds_equations_with_a_parameter_of_its_own(tmp_path):
    m = _scenario(tmp_path, "parameters:\n  alpha10: 0.65\nequations:\n  C: alpha10 * YD + alpha2 * lag(Hh)\n  YK: Y / G\n")
    assert m.equation_text["C"] == "alpha10 * YD + alpha2 * lag(Hh)" and m.parameters["alpha10"].value == 0.65
    df = _run(m)
    assert df.loc[1, "Y"] == pytest.approx(20 / (1 - 0.65 * 0.8)) and df.loc[1, "YK"] == pytest.approx(df.loc[1, "Y"] / 20)
    assert list(load_model(tmp_path / "m").equations) == ["Y", "W", "T", "YD", "C"]  # the model file is unchanged


def test_a_scenario_equation_is_checked_by_the_accounting(tmp_path):
    from sdmodel import AccountingError, compile_model

    m = _scenario(tmp_path, "equations:\n  W: Y + 1\n")
    with pytest.raises(AccountingError, match="transactions column 'firms'"):
        compile_model(m)


def test_bad_scenario_equations_name_the_file_key_and_line(tmp_path):
    with pytest.raises(SpecError, match=r"s\.yaml: equations\.yd \(line 2\): 'yd' is not an equation of the model; "
                                        r"did you mean 'YD'\?"):
        _scenario(tmp_path, "equations:\n  yd: 3 * W\n")
    with pytest.raises(SpecError, match=r"equations\.C \(line 2 of s\.yaml\): .*undeclared name 'beta'"):
        _scenario(tmp_path, "equations:\n  C: beta * YD\n")
    with pytest.raises(SpecError, match=r"parameters\.beta \(line 2\): 'beta' is not in the model's parameters"):
        _scenario(tmp_path, "parameters:\n  beta: 1\nequations:\n  C: 0.5 * YD\n")


def test_bad_shocks_name_the_file_key_and_line_all_at_once(tmp_path):
    text = ("shocks:\n  GG: {from: 5, value: 30}\n  alpha1: {from: 10, valu: 0.7}\n  theta: {from: 10, to: 5, value: 0.3}\n"
            "  Y: {from: 3, value: 1}\n  G: [{from: 3, value: 1}, {from: 4, to: 6, value: 2}]\n"
            "  alpha2: {from: 1000, value: 0.5}\n  alpha1: {from: 2, value: 1.5}\n")
    text = text.replace("  alpha1: {from: 2, value: 1.5}\n", "  theta2: 1\n")
    with pytest.raises(SpecError) as err:
        _scenario(tmp_path, text)
    msg = str(err.value)
    for part in ("shocks.GG (line 2 of s.yaml): 'GG' is not a parameter of the model; did you mean 'G'?",
                 "shocks.alpha1 (line 3 of s.yaml): unknown keys ['valu']",
                 "shocks.theta (line 4 of s.yaml): to (5) is before from (10)",
                 "shocks.Y (line 5 of s.yaml): 'Y' has an equation, not a parameter",
                 "shocks.G (line 6 of s.yaml): shocks overlap",
                 "shocks.alpha2.from (line 7 of s.yaml): 1000 is after the end of the run",
                 "shocks.theta2 (line 8 of s.yaml)"):
        assert part in msg, msg
    with pytest.raises(SpecError, match=r"shocks\.alpha1\.value \(line 2 of s\.yaml\): 0\.95 is outside the "
                                        r"parameter's bounds \[0\.4, 0\.9\]"):
        _scenario(tmp_path, "shocks:\n  alpha1: {from: 5, value: 0.95}\n")


def test_the_accounting_does_not_take_a_shocked_parameters_lag_for_the_parameter(tmp_path):
    """lag(theta) is theta for a constant theta; with a shock on theta they differ in the shock's first
    period, so a row that needs them equal balances without the shock and fails with it."""
    from sdmodel import check_accounting

    text = SD_YAML.replace("Taxes: {households: -T, government: +T}", 'Taxes: {households: -T, government: "+lag(theta) * W"}')
    assert check_accounting(load_model_text(text)).ok
    rep = check_accounting(_scenario(tmp_path, "shocks:\n  theta: {from: 5, value: 0.25}\n", model=text), throw=False)
    assert "Taxes" in {c.name for c in rep.failures}


# ---------------------------------------------------------------- allow_unbalanced_start
def test_allow_unbalanced_start_is_a_boolean_of_the_model_file_or_its_scenario(tmp_path, write_model):
    assert load_model(write_model(SIM_YAML)).allow_unbalanced_start is False
    assert load_model(write_model("allow_unbalanced_start: true\n" + SIM_YAML)).allow_unbalanced_start is True
    for bad in ("1", "'true'", "maybe", "[true]"):
        path = write_model(SIM_YAML + f"allow_unbalanced_start: {bad}\n")
        line = SIM_YAML.count("\n") + 1
        with pytest.raises(SpecError, match=rf"model\.yaml: allow_unbalanced_start \(line {line}\): expected true or "
                           r"false, got "):
            load_model(path)
    assert _scenario(tmp_path, "allow_unbalanced_start: true\n", model=SIM_YAML).allow_unbalanced_start is True
    with pytest.raises(SpecError, match=r"allow_unbalanced_start: expected true or false, got 'yes please'"):
        _scenario(tmp_path, "allow_unbalanced_start: yes please\n", model=SIM_YAML)
    with pytest.raises(SpecError, match=r"unknown key.*did you mean 'allow_unbalanced_start'"):
        load_model(write_model(SIM_YAML + "allow_unbalanced_starts: true\n"))
