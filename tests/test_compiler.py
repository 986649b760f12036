"""Compiler: blocks (explicit, linear, non-linear), errors, caching by spec hash."""

import numpy as np
import pytest
import sympy as sp

from sdmodel import CompileError, compile_model, load_model, model_from_dict
from sdmodel.model.algebra import explicit_solutions, order_blocks
from sdmodel.model.spec import _read_yaml

x, y, z, a = sp.symbols("x y z a")


def test_explicit_chain_in_dependency_order():
    blocks = order_blocks({y: x + 1, x: a * 2})
    assert [b.unknowns for b in blocks] == [(x,), (y,)]
    assert all(b.kind == "explicit" for b in blocks)


def test_linear_block_solved_symbolically():
    (b,) = order_blocks({x: a * y + 1, y: x / 2})
    assert b.kind == "linear"
    sol = dict(zip(b.unknowns, b.solution))
    assert sp.simplify(sol[x] - 1 / (1 - a / 2)) == 0


def test_singular_linear_block_is_an_error():
    with pytest.raises(CompileError, match="singular"):
        order_blocks({x: y, y: x})


def test_nonlinear_block_has_jacobian():
    (b,) = order_blocks({x: sp.sqrt(y) + 1, y: x + a})
    assert b.kind == "nonlinear"
    assert len(b.jacobian) == 2 and len(b.jacobian[0]) == 2


def test_linear_block_needing_many_tears_is_solved_numerically(monkeypatch):
    from sdmodel.model import algebra
    algebra.solve_block.cache_clear()
    monkeypatch.setattr(algebra, "SYMBOLIC_TEAR_MAX", 1)
    us = sp.symbols("u0:3")
    # every unknown depends on both others: two tear variables are needed
    eqs = {us[0]: (us[1] + us[2]) / 4 + 1, us[1]: (us[0] + us[2]) / 4, us[2]: (us[0] + us[1]) / 4}
    (b,) = order_blocks(eqs)
    assert b.kind == "linear_numeric"
    algebra.solve_block.cache_clear()


def test_linear_block_is_torn_at_one_variable():
    """A Keynesian multiplier block (Y = C + G, C = c * YD, YD = (1 - t) * Y) needs one tear variable:
    the others follow from it in order, and the solution is the closed form."""
    Y, C, YD, c, tt, G = sp.symbols("Y C YD c tt G")
    (b,) = order_blocks({Y: C + G, C: c * YD, YD: (1 - tt) * Y})
    assert b.kind == "linear" and len(b.unknowns) == 3
    sol, _ = explicit_solutions([b])
    assert sp.simplify(sol[Y] - G / (1 - c * (1 - tt))) == 0
    assert sp.simplify(sol[C] - c * (1 - tt) * G / (1 - c * (1 - tt))) == 0


def test_generated_code_is_vectorised():
    cm = compile_model(load_model("sim"))
    B = 5
    S = np.zeros((B, 2))
    P = np.tile([0.6, 0.4, 0.2, 20.0], (B, 1))
    P[:, 2] = np.linspace(0.1, 0.3, B)
    U = cm.evaluate(0.0, S, P, np.zeros(0), np.ones((B, len(cm.unknown_names))), 0.25)
    y = U[:, cm.unknown_names.index("Y")]
    np.testing.assert_allclose(y, 20 / (1 - 0.6 * (1 - P[:, 2])))


def test_unused_names_are_reported():
    from pathlib import Path
    text = Path(load_model("sim").source).read_text()
    text = text.replace("  G: 20\n", "  G: 20\n  spare: 1\n")
    from sdmodel import check_accounting
    rep = check_accounting(model_from_dict(_read_yaml(text, "sim")))
    assert rep.unused == ("spare",)


def test_a_parameter_read_only_by_an_initial_value_is_used():
    from sdmodel import check_accounting
    m = model_from_dict({"name": "iv", "time": {"start": 0, "stop": 1, "dt": 0.5},
                         "stocks": {"A": "2 * k"}, "parameters": {"k": 1, "spare": 0},
                         "equations": {"d(A)": "-A"}})
    assert check_accounting(m).unused == ("spare",)
