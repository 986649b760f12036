"""Ordering and solving a system of equations ``u_i = f_i(u, knowns)``.

Used by the accounting stage (to prove identities) and by the compiler (to
generate code).  The dependency graph of the unknowns is split into strongly
connected components in topological order; each component is a *block*:

- ``explicit``: one unknown that does not depend on itself;
- ``linear``: simultaneous and linear in its unknowns, solved symbolically by
  *tearing* (as Modelica compilers do): a few tear variables are chosen so that
  the rest of the block is a chain of explicit assignments; the small linear
  system left for the tear variables is solved in closed form (LU in sympy),
  and the others follow in order.  Blocks that need more tear variables than
  ``SYMBOLIC_TEAR_MAX`` become ``linear_numeric``: solved per step with
  ``numpy.linalg.solve``;
- ``nonlinear``: solved by Newton per step (vectorised over a batch).

Block solutions are memoised on their equations, so re-solving a model where
only one block changed (e.g. a flipped matrix entry) redoes only that block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import networkx as nx
import sympy as sp

from .errors import CompileError
from .expr import Trunc

#: Linear blocks whose cycles are broken by at most this many tear variables are solved symbolically.
SYMBOLIC_TEAR_MAX = 3


@dataclass(frozen=True)
class Block:
    """One strongly connected component of the equation graph."""

    unknowns: tuple[sp.Symbol, ...]
    kind: Literal["explicit", "linear", "linear_numeric", "nonlinear"]
    #: explicit/linear: the solution of each unknown (in earlier unknowns and knowns)
    solution: tuple[sp.Expr, ...] = ()
    #: linear_numeric: A u = b;  nonlinear: residuals F(u) = u - f(u)
    matrix: tuple[tuple[sp.Expr, ...], ...] = ()
    rhs: tuple[sp.Expr, ...] = ()
    residuals: tuple[sp.Expr, ...] = ()
    jacobian: tuple[tuple[sp.Expr, ...], ...] = ()


def _is_linear(exprs, unknowns) -> bool:
    us = set(unknowns)
    for e in exprs:
        if any(t.free_symbols & us for t in e.atoms(Trunc)):
            return False  # piecewise constant in an unknown: zero derivative, but not linear
        for u in unknowns:
            if u not in e.free_symbols:
                continue
            try:
                dd = sp.diff(e, u)
            except Exception:  # noqa: BLE001 - non-differentiable construct: treat as non-linear
                return False
            if dd.free_symbols & us or dd.has(sp.Piecewise, sp.Min, sp.Max, sp.Abs, sp.Heaviside):
                return False
    return True


@lru_cache(maxsize=4096)
def solve_block(unknowns: tuple[sp.Symbol, ...], exprs: tuple[sp.Expr, ...]) -> Block:
    """Solve one block ``u_i = exprs_i``; memoised on its inputs."""
    if len(unknowns) == 1 and unknowns[0] not in exprs[0].free_symbols:
        return Block(unknowns, "explicit", solution=exprs)
    resid = tuple(u - e for u, e in zip(unknowns, exprs))
    names = ", ".join(str(u) for u in unknowns)
    if _is_linear(resid, unknowns):
        torn = _tear(unknowns, exprs)
        if torn is not None:
            tears, rest = torn
            eq = dict(zip(unknowns, exprs))
            inner: dict[sp.Symbol, sp.Expr] = {}
            for u in rest:  # the rest in terms of the tear variables and knowns
                inner[u] = eq[u].xreplace(inner)
            tres = [t - eq[t].xreplace(inner) for t in tears]
            A, b = sp.linear_eq_to_matrix(tres, tears)
            det = A.det(method="berkowitz")
            if det == 0 or sp.expand(det) == 0:
                raise CompileError(
                    f"the simultaneous equations for {names} are singular: "
                    "they do not determine these variables (one is implied by the others)"
                )
            tsol = [b[0] / A[0, 0]] if len(tears) == 1 else list(A.LUsolve(b))
            # tear variables first, then the rest in order, each in earlier unknowns and knowns
            return Block(tuple(tears) + tuple(rest), "linear", solution=tuple(tsol) + tuple(eq[u] for u in rest))
        A, b = sp.linear_eq_to_matrix(list(resid), list(unknowns))
        return Block(
            unknowns,
            "linear_numeric",
            matrix=tuple(tuple(A[i, j] for j in range(A.cols)) for i in range(A.rows)),
            rhs=tuple(b),
        )
    jac = tuple(tuple(sp.diff(r, u) for u in unknowns) for r in resid)
    return Block(unknowns, "nonlinear", residuals=resid, jacobian=jac)


def _tear(unknowns, exprs):
    """Tear variables that make the block acyclic, and the order of the rest; None if too many.

    Greedy: repeatedly tear the unknown with the most in x out edges inside the
    remaining cycles (a small feedback vertex set, not always the smallest).
    """
    uset = set(unknowns)
    g = nx.DiGraph()
    g.add_nodes_from(unknowns)
    for u, e in zip(unknowns, exprs):
        for s in e.free_symbols & uset:
            g.add_edge(s, u)
    pos = {u: i for i, u in enumerate(unknowns)}
    tears: list[sp.Symbol] = []
    while True:
        h = g.subgraph([u for u in unknowns if u not in tears])
        cyclic = [c for c in nx.strongly_connected_components(h) if len(c) > 1 or any(h.has_edge(u, u) for u in c)]
        if not cyclic:
            break
        if len(tears) >= SYMBOLIC_TEAR_MAX:
            return None
        cand = [u for c in cyclic for u in c]
        sub = h.subgraph(cand)
        tears.append(max(cand, key=lambda u: (sub.in_degree(u) * sub.out_degree(u), -pos[u])))
    h = g.subgraph([u for u in unknowns if u not in tears])
    rest = list(nx.lexicographical_topological_sort(h, key=pos.__getitem__))
    return sorted(tears, key=pos.__getitem__), rest


def order_blocks(equations: Mapping[sp.Symbol, sp.Expr]) -> list[Block]:
    """Split ``{unknown: expr}`` into blocks in evaluation order and solve each one.

    Raises
    ------
    CompileError
        If a linear block is singular.
    """
    unknowns = list(equations)
    uset = set(unknowns)
    g = nx.DiGraph()
    g.add_nodes_from(unknowns)
    for u, e in equations.items():
        for s in e.free_symbols & uset:
            g.add_edge(s, u)  # s must be known before u
    cond = nx.condensation(g)
    pos = {u: i for i, u in enumerate(unknowns)}
    blocks = []
    # lexicographic topological order keeps the file's order where the graph allows it
    for c in nx.lexicographical_topological_sort(cond, key=lambda c: min(pos[u] for u in cond.nodes[c]["members"])):
        members = sorted(cond.nodes[c]["members"], key=pos.__getitem__)
        blocks.append(solve_block(tuple(members), tuple(equations[u] for u in members)))
    return blocks


def explicit_solutions(blocks: list[Block]) -> tuple[dict[sp.Symbol, sp.Expr], set[sp.Symbol]]:
    """Every unknown as an expression of the knowns, substituting block by block.

    Unknowns of numeric (large linear or non-linear) blocks stay as symbols
    and are returned in the second element: anything that depends on them can
    only be checked numerically.
    """
    sol: dict[sp.Symbol, sp.Expr] = {}
    unresolved: set[sp.Symbol] = set()
    for b in blocks:
        if b.kind in ("explicit", "linear"):
            for u, e in zip(b.unknowns, b.solution):
                sol[u] = e.xreplace(sol) if e.free_symbols & sol.keys() else e
        else:
            unresolved.update(b.unknowns)
    return sol, unresolved
