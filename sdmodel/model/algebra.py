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

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import networkx as nx
import sympy as sp

from sdmodel.core.errors import CompileError
from sdmodel.model.expr import Trunc

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
    #: linear (torn): the equation of each tear variable (the first unknowns), in the block's
    #: unknowns and knowns, as written (proofs use it as a relation; see LazySolutions)
    tear_eqs: tuple[sp.Expr, ...] = ()


def _is_linear(exprs, unknowns) -> bool:
    us = set(unknowns)
    for e in exprs:
        # a switch, min, max, ... of an unknown is not linear in it, whatever its derivative looks like
        # (piecewise constant: zero); one of knowns only (a shocked parameter) is just a coefficient
        if any(t.free_symbols & us for t in e.atoms(Trunc, sp.Piecewise, sp.Min, sp.Max, sp.Abs, sp.Heaviside)):
            return False
        for u in unknowns:
            if u not in e.free_symbols:
                continue
            try:
                dd = sp.diff(e, u)
            except Exception:  # noqa: BLE001 - non-differentiable construct: treat as non-linear
                return False
            if dd.free_symbols & us:
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
            return Block(
                tuple(tears) + tuple(rest),
                "linear",
                solution=tuple(tsol) + tuple(eq[u] for u in rest),
                tear_eqs=tuple(eq[t] for t in tears),
            )
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


# --------------------------------------------------------------------------- lazy substitution
#: A proof by substitution gives up when the expanded sum reaches this many terms (the check is
#: then left to the numeric evaluation, and the report says so).
PROOF_MAX_TERMS = 4000
#: A sum is brought over one denominator (to cancel rational terms) only up to this many terms.
RATIONAL_MAX_TERMS = 400
#: The old full substitution, with sympy's cancel/simplify, is tried only below this tree size.
FULL_MAX_NODES = 1500
#: sympy's expand is called only on an expression whose expansion cannot have more terms than this
#: (:func:`expansion_bound`, a count made before expanding); beyond it the proof gives up (None).
EXPAND_MAX_TERMS = 8000
#: Exact evaluation at random points is done in the field of integers modulo this prime (the
#: Mersenne prime 2**127 - 1): exact, and each number stays 127 bits however deep the definitions.
FIELD_PRIME = 2**127 - 1
#: Random points of that field at which a sum is evaluated before any symbolic work.
FIELD_POINTS = 3


def expansion_bound(e: sp.Basic, cap: int = 10**12) -> int:
    """An upper bound on the number of terms of ``sp.expand(e)``, counted without expanding.

    A sum has at most the sum of its terms' counts, a product at most their product, an integer
    power ``b**n`` at most ``count(b)**|n|`` (a denominator is expanded too); anything else is one
    term, but counts as its largest argument (expand works inside functions too), so the bound is
    also on the largest sum expand builds. Counts stop growing at ``cap``.
    """
    memo: dict[sp.Basic, int] = {}

    def go(x: sp.Basic) -> int:
        got = memo.get(x)
        if got is not None:
            return got
        if isinstance(x, sp.Add):
            n = min(cap, sum(go(a) for a in x.args))
        elif isinstance(x, sp.Mul):
            n = 1
            for a in x.args:
                n = min(cap, n * go(a))
        elif isinstance(x, sp.Pow) and x.exp.is_Integer:
            b = go(x.base)
            k = abs(int(x.exp))
            n = cap if b > 1 and k * math.log2(b) > math.log2(cap) else min(cap, b**k)
        else:
            n = max((go(a) for a in x.args), default=1)
        memo[x] = n
        return n

    return go(e)


class _NotInField(Exception):
    """An expression the field evaluation cannot take (a float-free constant like pi, a zero divisor)."""


@dataclass(frozen=True)
class FieldTest:
    """Exact evaluation of a sum, every definition substituted, at random points of GF(p).

    ``zero`` is False when the sum is non-zero at one point: then it is not identically zero
    (atoms free), for certain. True when it is zero at every point: a sum that is not identically
    zero, with a numerator of total degree at most ``degree``, vanishes at ``points`` independent
    uniform points with probability at most ``(degree / p) ** points`` (Schwartz-Zippel; for a
    numerator whose integer coefficients are not all multiples of p), ``2 ** log2_error``. None
    when it could not be evaluated (a constant such as pi, a denominator that vanished).
    """

    zero: bool | None
    points: int = 0
    degree: int = 0

    @property
    def log2_error(self) -> float:
        """log2 of the bound on the chance that ``zero`` is True for a non-zero sum (0: no bound)."""
        if not self.zero or self.degree <= 0:
            return -math.inf if self.zero else 0.0
        return min(0.0, self.points * (math.log2(self.degree) - math.log2(FIELD_PRIME)))

    def describe(self) -> str:
        """One phrase for a report's note."""
        bound = f"below 2^{int(self.log2_error)}" if self.log2_error < 0 else "not bounded"
        return (
            f"zero by exact evaluation at {self.points} random points modulo the prime 2^127-1 "
            f"(the chance that a non-zero sum does so is {bound})"
        )


def _field_value(e: sp.Basic, val) -> tuple[int, int, int]:
    """``e`` modulo FIELD_PRIME, with ``val(symbol) -> (value, numerator degree, denominator degree)``.

    Returns the value and bounds on the total degree of the numerator and of the denominator of
    ``e`` as one fraction of polynomials in the free symbols.
    """
    P = FIELD_PRIME
    if e.is_Symbol:
        return val(e)
    if e.is_Integer:
        return int(e) % P, 0, 0
    if e.is_Rational or e.is_Float:
        r = sp.Rational(e)
        q = int(r.q) % P
        if q == 0:
            raise _NotInField(str(e))
        return int(r.p) * pow(q, -1, P) % P, 0, 0
    if isinstance(e, sp.Add):
        v, dn, dd = 0, 0, 0
        for a in e.args:
            av, an, ad = _field_value(a, val)
            v = (v + av) % P
            dn, dd = max(dn + ad, an + dd), dd + ad
        return v, dn, dd
    if isinstance(e, sp.Mul):
        v, dn, dd = 1, 0, 0
        for a in e.args:
            av, an, ad = _field_value(a, val)
            v = v * av % P
            dn, dd = dn + an, dd + ad
        return v, dn, dd
    if isinstance(e, sp.Pow) and e.exp.is_Integer:
        bv, bn, bd = _field_value(e.base, val)
        k = int(e.exp)
        if k < 0:
            if bv == 0:
                raise _NotInField("a denominator vanished")
            return pow(bv, k, P), -k * bd, -k * bn
        return pow(bv, k, P), k * bn, k * bd
    raise _NotInField(str(e))


def node_count(e: sp.Basic) -> int:
    """The size of an expression: the nodes of its tree (what the full-substitution fallback is capped by)."""
    return sum(1 for _ in sp.preorder_traversal(e))


class LazySolutions:
    """The unknowns of one step as a DAG of definitions, substituted only where a proof needs it.

    ``defs`` maps each unknown of an explicit or linear block to its block solution (in earlier
    unknowns and knowns), as :func:`explicit_solutions` would before substituting; unknowns of
    numeric blocks are ``unresolved``. ``extra`` adds definitions of further symbols with a
    *layer*: a proof substitutes the highest layer first, and within one layer the latest
    definition first, so every symbol is substituted once and the sum stays flat (a sum of
    products of symbols and opaque atoms). Layer 1 holds the step's unknowns; the accounting
    adds last period's equations below them (layer 0), last period's balance-sheet identities
    below those (layer -1) and time derivatives above them (layer 2).

    A proof works on an *atomised* form: every subexpression that is not a sum, a product or an
    integer power (``if_()``, ``min``, ``exp``, a lookup, ``x**alpha``, ...) is replaced by an
    opaque symbol, one per distinct subexpression, and its inside is never substituted. A sum
    that is zero with those atoms free is zero for every value they take, so the proof is sound;
    nested ``if_()`` switches then cost no more than symbols.
    """

    def __init__(self, blocks: list[Block]):
        self.defs: dict[sp.Symbol, sp.Expr] = {}
        self.rank: dict[sp.Symbol, tuple[int, int]] = {}
        self.unresolved: set[sp.Symbol] = set()
        self.order: list[sp.Symbol] = []
        #: tear variable -> its equation as written (linear blocks solved by tearing)
        self.tear_eqs: dict[sp.Symbol, sp.Expr] = {}
        pos = 0
        for b in blocks:
            self.tear_eqs.update(zip(b.unknowns, b.tear_eqs))
            for i, u in enumerate(b.unknowns):
                if b.kind in ("explicit", "linear"):
                    self.defs[u] = b.solution[i]
                    self.rank[u] = (1, pos)
                    self.order.append(u)
                else:
                    self.unresolved.add(u)
                    self.rank[u] = (1, pos)
                pos += 1
        self._atoms: dict[sp.Expr, sp.Symbol] = {}
        self._atomised: dict[sp.Symbol, sp.Expr] = {}
        self._reach: dict[sp.Symbol, frozenset] = {}
        self._full: dict[sp.Symbol, sp.Expr] = {}
        self._size: dict[sp.Symbol, int] = {}
        #: per random point of GF(p): symbol -> (value, numerator degree, denominator degree)
        self._field: list[dict[sp.Symbol, tuple[int, int, int]]] = [{} for _ in range(FIELD_POINTS)]
        self._free: dict[sp.Symbol, list[int]] = {}

    def define(self, sym: sp.Symbol, expr: sp.Expr, layer: int, pos: int) -> None:
        """Add a definition ``sym = expr`` in ``layer`` at position ``pos`` (see the class)."""
        self.defs[sym] = expr
        self.rank[sym] = (layer, pos)
        for cache in (self._atomised, self._reach, self._full, self._size, *self._field):
            cache.clear()

    def forget(self, layer: int) -> None:
        """Remove every definition of ``layer`` (added by :meth:`define`)."""
        for sym in [s for s, (lay, _) in self.rank.items() if lay == layer and s in self.defs]:
            del self.defs[sym], self.rank[sym]
        for cache in (self._atomised, self._reach, self._full, self._size, *self._field):
            cache.clear()

    # -- structure --------------------------------------------------------------
    def atomise(self, e: sp.Expr) -> sp.Expr:
        """``e`` with every non-rational subexpression replaced by its opaque atom symbol."""
        if e.is_Atom:
            return e
        if isinstance(e, (sp.Add, sp.Mul)):
            return e.func(*[self.atomise(a) for a in e.args])
        if isinstance(e, sp.Pow) and e.exp.is_Integer:
            return sp.Pow(self.atomise(e.base), e.exp)
        a = self._atoms.get(e)
        if a is None:
            a = self._atoms[e] = sp.Dummy(f"atom{len(self._atoms)}")
        return a

    def _def_atomised(self, u: sp.Symbol) -> sp.Expr:
        d = self._atomised.get(u)
        if d is None:
            d = self._atomised[u] = self.atomise(self.defs[u])
        return d

    def reaches(self, e: sp.Expr) -> frozenset:
        """The unresolved unknowns ``e`` depends on, through any chain of definitions."""
        out: set = set()
        for s in e.free_symbols:
            out |= self._reach_sym(s)
        return frozenset(out)

    def _reach_sym(self, s: sp.Symbol) -> frozenset:
        if s in self.unresolved:
            return frozenset({s})
        if s not in self.defs:
            return frozenset()
        hit = self._reach.get(s)
        if hit is not None:
            return hit
        # iterative post-order: definition chains can be a few hundred deep
        stack = [s]
        while stack:
            u = stack[-1]
            if u in self._reach:
                stack.pop()
                continue
            todo = [v for v in self.defs[u].free_symbols if v in self.defs and v not in self._reach and v != u]
            todo = [v for v in todo if v not in stack]
            if todo:
                stack.extend(todo)
                continue
            acc: set = set()
            for v in self.defs[u].free_symbols:
                if v in self.unresolved:
                    acc.add(v)
                elif v in self._reach:
                    acc |= self._reach[v]
            self._reach[u] = frozenset(acc)
            stack.pop()
        return self._reach[s]

    # -- proofs -----------------------------------------------------------------
    def field_test(self, expr: sp.Expr) -> FieldTest:
        """Evaluate ``expr``, every definition substituted, exactly at random points of GF(p).

        Each symbol without a definition (a known, an opaque atom) takes an independent uniform
        value per point; a definition is evaluated once per point and shared by every check.
        Where definitions form a cycle (last period's simultaneous equations), the symbol that
        closes it is left free there: every value is still a valid substitution of the model's
        equations, so a sum that is identically zero stays zero. Nothing is expanded.
        """
        e = self.atomise(expr)
        degree = 0
        try:
            for k in range(FIELD_POINTS):
                self._field_symbols(e.free_symbols, k)
                vals = self._field[k]
                v, dn, _ = _field_value(e, lambda s, k=k, vals=vals: vals[s] if s in vals else self._free_value(s, k))
                if v != 0:
                    return FieldTest(False, k + 1, dn)
                degree = max(degree, dn)
        except (_NotInField, ValueError):
            return FieldTest(None)
        return FieldTest(True, FIELD_POINTS, degree)

    def _free_value(self, s: sp.Symbol, k: int) -> tuple[int, int, int]:
        got = self._free.get(s)
        if got is None:
            # from the symbol's name (and a count for names seen before), so the points do not
            # depend on the order sets are iterated in; distinct symbols get independent values
            n = sum(1 for t in self._free if t.name == s.name)
            seed = f"sdmodel-field:{s.name}:{n}".encode()
            got = self._free[s] = [
                int.from_bytes(hashlib.sha256(seed + bytes([j])).digest(), "big") % FIELD_PRIME
                for j in range(FIELD_POINTS)
            ]
        return got[k], 1, 0

    def _field_symbols(self, syms, k: int) -> None:
        """Fill ``self._field[k]`` for ``syms`` and every defined symbol they reach (iterative post-order)."""
        vals = self._field[k]
        stack = [s for s in syms if s in self.defs and s not in vals]
        open_: set[sp.Symbol] = set()
        while stack:
            u = stack[-1]
            if u in vals:
                stack.pop()
                continue
            d = self._def_atomised(u)
            if u not in open_:
                open_.add(u)
                todo = [v for v in d.free_symbols if v in self.defs and v not in vals and v not in open_]
                if todo:
                    stack.extend(todo)
                    continue
            # a symbol still open here closes a cycle: it stays free in this definition
            vals[u] = _field_value(d, lambda s: vals[s] if s in vals else self._free_value(s, k))
            open_.discard(u)
            stack.pop()

    def prove_zero(self, expr: sp.Expr, max_terms: int = PROOF_MAX_TERMS) -> bool | None:
        """True if ``expr`` is identically zero once the definitions are substituted.

        False if it is not shown to be (it may still be zero for a reason the atoms hide),
        None if it is too large to decide here: an expansion that could exceed
        ``EXPAND_MAX_TERMS`` terms (counted before expanding) or a sum past ``max_terms``.

        The sum is first evaluated exactly at random points (:meth:`field_test`): where it is
        not zero there it is not identically zero, and nothing is expanded. Only a sum that
        vanishes there is proven symbolically, which is what makes it ``True``.
        """
        ft = self.field_test(expr)
        if ft.zero is False:
            return False
        # the tear variables' relations first: small sums, where their closed forms are large
        if ft.zero and self.tear_eqs and self._prove_by_tears(expr, max_terms):
            return True
        return self._prove_substituting(expr, max_terms)

    def _prove_substituting(self, expr: sp.Expr, max_terms: int) -> bool | None:
        e = self.atomise(expr)
        if expansion_bound(e) > EXPAND_MAX_TERMS:
            return None
        e = sp.expand(e)
        done: set[sp.Symbol] = set()
        layer = None
        while True:
            if e == 0:
                return True
            cands = [s for s in e.free_symbols if s in self.defs and s not in done]
            if not cands:
                return self._rational_zero(e)
            u = max(cands, key=self.rank.__getitem__)
            if layer is not None and self.rank[u][0] < layer and self._rational_zero(e):
                return True  # zero before the next layer's definitions are needed
            layer = self.rank[u][0]
            done.add(u)
            rep = {u: self._def_atomised(u)}
            keep: list[sp.Expr] = []
            hit: list[sp.Expr] = []
            for t in sp.Add.make_args(e):
                (hit if t.has(u) else keep).append(t)
            sub = sp.Add(*hit).xreplace(rep)
            if expansion_bound(sub) > EXPAND_MAX_TERMS:
                return None
            e = sp.Add(*keep, sp.expand(sub))
            if len(sp.Add.make_args(e)) > max_terms:
                return None

    def _substitute_all(self, e: sp.Expr, keep: set, max_terms: int) -> sp.Expr | None:
        """``e`` (atomised) expanded with every definition substituted but those of ``keep``,
        latest first, each once; None if an expansion would be too large."""
        if expansion_bound(e) > EXPAND_MAX_TERMS:
            return None
        e = sp.expand(e)
        done = set(keep)
        while True:
            cands = [s for s in e.free_symbols if s in self.defs and s not in done]
            if not cands:
                return e
            u = max(cands, key=self.rank.__getitem__)
            done.add(u)
            rep = {u: self._def_atomised(u)}
            keep_t: list[sp.Expr] = []
            hit: list[sp.Expr] = []
            for t in sp.Add.make_args(e):
                (hit if t.has(u) else keep_t).append(t)
            sub = sp.Add(*hit).xreplace(rep)
            if expansion_bound(sub) > EXPAND_MAX_TERMS:
                return None
            e = sp.Add(*keep_t, sp.expand(sub))
            if len(sp.Add.make_args(e)) > max_terms:
                return None

    def _prove_by_tears(self, expr: sp.Expr, max_terms: int) -> bool:
        """A proof that keeps the tear variables of torn linear blocks free (their closed-form
        solutions are large rational functions) and uses their equations as relations.

        With every other definition substituted, the sum ``G`` and each tear's residual
        ``R_s = s - f_s`` are affine in the tear variables. If ``G`` equals a combination
        ``sum(lambda_s R_s)`` with coefficients free of the tear variables, identically, then
        ``G`` is zero wherever every residual is, which is at the block's solution: a proof.
        The coefficients solve the small system that matches the tear variables' coefficients.
        """
        tears = set(self.tear_eqs)
        G = self._substitute_all(self.atomise(expr), tears, max_terms)
        if G is None:
            return False
        resid: dict[sp.Symbol, sp.Expr] = {}
        todo = sorted(G.free_symbols & tears, key=str)
        while todo:
            t = todo.pop()
            if t in resid:
                continue
            r = self._substitute_all(self.atomise(t - self.tear_eqs[t]), tears, max_terms)
            if r is None:
                return False
            resid[t] = r
            todo.extend(sorted((r.free_symbols & tears) - resid.keys(), key=str))
        if not resid:
            return False
        order = sorted(resid, key=str)
        coef = [sp.diff(G, t) for t in order]
        A = [[sp.diff(resid[s], t) for t in order] for s in order]
        if any(x.free_symbols & tears for x in [*coef, *(a for row in A for a in row)]):
            return False  # not affine in the tear variables
        M = sp.Matrix(A)
        if M.det(method="berkowitz") == 0:
            return False
        try:
            sol = M.T.LUsolve(sp.Matrix(coef))
        except (ValueError, ZeroDivisionError):  # a pivot sympy cannot use: no proof this way
            return False
        # a few small entries: cancelled, so that a constant combination (the usual case) is seen as one
        lam = [sp.cancel(x) if node_count(x) <= FULL_MAX_NODES else x for x in sol]
        rest = sp.Add(G, *[-lam_s * resid[s] for lam_s, s in zip(lam, order)])
        if expansion_bound(rest) > EXPAND_MAX_TERMS:
            return False
        rest = sp.expand(rest)
        return rest == 0 or self._rational_zero(rest)

    @staticmethod
    def _rational_zero(e: sp.Expr) -> bool:
        """Over one denominator, the numerator expands to zero (for a sum of modest size)."""
        if e == 0:
            return True
        if len(sp.Add.make_args(e)) > RATIONAL_MAX_TERMS or not any(
            t.is_Pow and t.exp.is_negative for t in sp.preorder_traversal(e)
        ):
            return False
        # one denominator by hand (sympy's together looks for common factors term by term, which
        # took minutes on a torn block's solutions): the product of each base to its largest power
        parts = []
        common: dict[sp.Expr, int] = {}
        for t in sp.Add.make_args(e):
            num, den = sp.fraction(t)
            powers: dict[sp.Expr, int] = {}
            for f in sp.Mul.make_args(den):
                b, k = f.as_base_exp()
                if not k.is_Integer:
                    b, k = f, sp.Integer(1)
                powers[b] = powers.get(b, 0) + int(k)
            parts.append((num, powers))
            for b, k in powers.items():
                common[b] = max(common.get(b, 0), k)
        bound = 0
        for num, powers in parts:
            n = expansion_bound(num)
            for b, k in common.items():
                n *= expansion_bound(b) ** (k - powers.get(b, 0))
            bound += n
            if bound > EXPAND_MAX_TERMS:
                return False  # too large to bring over one denominator here
        total = sp.Add(
            *[sp.Mul(num, *[b ** (k - powers.get(b, 0)) for b, k in common.items()]) for num, powers in parts]
        )
        return sp.expand(total) == 0

    def full_size(self, e: sp.Expr) -> int:
        """An upper bound on the tree size of ``e`` with every definition substituted."""
        n = node_count(e)
        for s in e.free_symbols:
            if s in self.defs:
                n += _count(e, s) * (self._full_size(s) - 1)
        return n

    def _full_size(self, s: sp.Symbol) -> int:
        got = self._size.get(s)
        if got is not None:
            return got
        self._size[s] = 1  # a cycle (only among last period's equations) counts once
        d = self.defs[s]
        n = node_count(d)
        for v in d.free_symbols:
            if v in self.defs:
                n += _count(d, v) * (self._full_size(v) - 1)
                if n > 10 * FULL_MAX_NODES:
                    break
        self._size[s] = n
        return n

    def full(self, e: sp.Expr) -> sp.Expr:
        """``e`` with every layer-1 definition substituted (what :func:`explicit_solutions` gives)."""
        return e.xreplace(
            {s: self._full_sym(s) for s in e.free_symbols if self.rank.get(s, (0,))[0] == 1 and s in self.defs}
        )

    def _full_sym(self, s: sp.Symbol) -> sp.Expr:
        got = self._full.get(s)
        if got is None:
            d = self.defs[s]
            got = d.xreplace(
                {v: self._full_sym(v) for v in d.free_symbols if self.rank.get(v, (0,))[0] == 1 and v in self.defs}
            )
            self._full[s] = got
        return got


def _count(e: sp.Basic, s: sp.Symbol) -> int:
    return sum(1 for x in sp.preorder_traversal(e) if x == s)
