"""Stock-flow consistency: derive stock dynamics from the matrices and prove they close.

The transactions-flow matrix is read the way Godley and Lavoie write it:
every column (sector) is a budget constraint that sums to zero, and it
*determines* the one stock change in that column that no equation gives
(``d(Hh)`` in SIM's household column).  The stock dynamics are derived from
there, never written twice.  Then every row and column of both matrices is
checked after substituting the equations:

``proven``
    sympy shows the sum is identically zero (for balance-sheet rows: either an
    identity, or conserved over time and zero at the initial values).
``verified``
    sympy could not simplify it to zero (or it is too large to try: the note
    says so) but it vanishes at random points of the state space (a
    probabilistic proof); it is also monitored every step.
``monitored``
    it depends on a non-linear block, so it is checked numerically every step
    of every run, and the residual is reported with the results.
``unbalanced start``
    a balance-sheet row (or column) whose change over time is zero, but which does not sum to
    zero at the initial values (in discrete time also an identity row whose sum at the initial
    values, the balance sheet the first period reads through ``lag()``, is not zero): the model's
    starting values do not balance, as a published model's rounded values may not. The report
    refuses it unless the model allows it (``allow_unbalanced_start``); then the runs gate each
    balance-sheet row on its change from its value at their first step, so the dynamics are
    still checked.
``failed``
    it does not vanish: the report gives the residual in the model's own names
    and, where one flipped entry explains every failure, names that entry.

Godley's redundant equation (``Hh = Hs`` in SIM) is one of the proven rows.

In discrete time this period's flows are judged with last period's balance sheet: interest
``lag(rl)*lag(Ld)`` paid by firms equals ``lag(rl)*lag(Ls)`` received by banks because the Loans
row balanced last period. Only rows and columns that sum to zero at the initial values, and sum to
zero in a period whenever all of them did the period before, are used (an induction over periods).

A proof substitutes only the definitions a row needs, latest first, with every
``if_()``, ``min``, ``exp`` ... kept as an opaque atom (:class:`sdmodel.model.algebra.LazySolutions`);
only where that leaves a non-zero sum is the fully substituted expression handed to
sympy's cancel/simplify, and then only while it is small. Before any expansion the sum is
evaluated exactly at random points of a prime field (``LazySolutions.field_test``): a sum non-zero
there is never expanded, and one zero there but too large to expand is ``verified`` with the
probability bound in its note, not ``proven``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from sdmodel.core.errors import CompileError, SpecError
from sdmodel.model.algebra import (
    EXPAND_MAX_TERMS,
    FULL_MAX_NODES,
    LazySolutions,
    expansion_bound,
    node_count,
    order_blocks,
)

# the report's plain data live in sdmodel.model.checks (no sympy); re-exported here, where they were defined
from sdmodel.model.checks import ALLOW_HINT as ALLOW_HINT
from sdmodel.model.checks import UNBALANCED_START as UNBALANCED_START
from sdmodel.model.checks import AccountingReport as AccountingReport
from sdmodel.model.checks import Check as Check
from sdmodel.model.checks import Status as Status
from sdmodel.model.checks import progress_line as progress_line
from sdmodel.model.expr import Step, T, dsym, lagsym, marker
from sdmodel.model.spec import Matrix, Model, shock_map

#: A balance-sheet row is assumed last period only while its lagged sum, written in lags that no
#: equation of last period defines, stays this small (a few stocks, not a model's worth of terms).
_HYP_MAX_NODES = 300
#: ... and is written in them through at most this many levels of last period's equations.
_HYP_MAX_LEVELS = 12
_RNG_SEED = 20240601
_TOL = 1e-9


@dataclass(frozen=True)
class Derivation:
    """The model's equations with the stock dynamics derived from the matrices.

    ``system`` maps every unknown of one time step to its equation: in
    continuous time the equation variables and ``d(X)`` of every stock (the
    states are known); in discrete time also the stock levels (the lags are
    known).  This is what the compiler orders and solves.
    """

    model: Model
    roles: Mapping[str, str]  # stock -> "column <sector>" | "equation d(X)" | "equation X"
    changes: Mapping[str, sp.Expr]  # stock -> d(X) expression (in model names)
    system: Mapping[sp.Symbol, sp.Expr]
    knowns: frozenset
    problems: tuple[str, ...] = ()


# --------------------------------------------------------------------------- derivation
def _col_sum(mat: Matrix, col: str) -> sp.Expr:
    return sp.Add(*[cells[col] for cells in mat.rows.values() if col in cells])


def _dmarkers(e: sp.Expr) -> set[str]:
    return {marker(s)[1] for s in e.free_symbols if marker(s)[0] == "d"}


def derive(model: Model, transactions: Matrix | None = None) -> Derivation:
    """Derive the stock dynamics from the transactions columns and assemble the step system.

    Raises
    ------
    SpecError
        If a column leaves more than one stock change undetermined, or a stock has no dynamics.
    """
    tf = transactions if transactions is not None else model.transactions
    discrete = model.discrete
    problems: list[str] = []
    roles: dict[str, str] = {}
    changes: dict[str, sp.Expr] = {}
    for x in model.stocks:
        if x in model.changes:
            roles[x] = f"equation d({x})"
            changes[x] = model.changes[x]
        elif x in model.equations:
            roles[x] = f"equation {x}"
            changes[x] = sp.Symbol(x) - lagsym(x)
    if tf is not None:
        # A column determines its one stock change that nothing else gives.  Columns
        # are resolved to a fixpoint, so the order of the columns does not matter: a
        # column whose other stock changes are determined by other columns comes later
        # (in a model with one symbol per instrument the last column is the redundant one).
        pending = list(tf.columns)
        while pending:
            progress = False
            for col in list(pending):
                total = _col_sum(tf, col)
                free = [x for x in model.stocks if x in _dmarkers(total) and x not in roles]
                if len(free) > 1:
                    continue
                pending.remove(col)
                progress = True
                if not free:
                    continue
                x = free[0]
                dx = dsym(x)
                a = sp.diff(total, dx)
                if a.free_symbols & {dsym(s) for s in model.stocks} or a == 0:
                    problems.append(f"transactions column {col!r}: d({x}) must enter linearly, got coefficient {a}")
                    continue
                roles[x] = f"column {col!r}"
                changes[x] = sp.expand(-(total - a * dx) / a) if a.is_number else -(total - a * dx) / a
            if not progress:
                for col in pending:
                    free = [x for x in model.stocks if x in _dmarkers(_col_sum(tf, col)) and x not in roles]
                    problems.append(
                        f"transactions column {col!r} leaves {', '.join(f'd({x})' for x in free)} undetermined: "
                        f"a column determines one stock change; give the others an equation "
                        f"(d({free[1]}): ... " + ("or a level" if discrete else "") + ")"
                    )
                break
    for x in model.stocks:
        if x not in roles:
            problems.append(
                f"stock {x!r} has no dynamics: write d({x}) into its sector's transactions column "
                f"(the column then determines it) or give an equation d({x}): ..."
            )

    # a shocked parameter's lag is last period's value: a known of its own (see apply_shocks)
    lagmap = {lagsym(p): sp.Symbol(p) for p in model.parameters if p not in model.shocks}
    system: dict[sp.Symbol, sp.Expr] = {}
    for v, e in model.equations.items():
        if v not in model.stocks:
            system[sp.Symbol(v)] = e.xreplace(lagmap)
    for x, e in changes.items():
        sx = sp.Symbol(x)
        if discrete:
            if x in model.equations:
                system[sx] = model.equations[x].xreplace(lagmap)
            else:
                system[sx] = lagsym(x) + dsym(x)
        system[dsym(x)] = e.xreplace(lagmap)
    knowns = {sp.Symbol(p) for p in model.parameters} | {sp.Symbol(s) for s in model.series} | {T}
    if discrete:
        for e in system.values():
            knowns |= {s for s in e.free_symbols if marker(s)[0] == "lag"}
        knowns |= {lagsym(x) for x in model.stocks}
    else:
        knowns |= {sp.Symbol(x) for x in model.stocks}
    return Derivation(model, roles, changes, system, frozenset(knowns), tuple(problems))


def apply_shocks(der: Derivation) -> Derivation:
    """The step system with each shocked parameter (and its lag) replaced by its value in time.

    The accounting proves its identities with the parameter (and, in discrete time, its lag) as
    free symbols, so they hold for every value a shock gives it; the code generator and the
    exporters read the shocked values (:func:`sdmodel.model.spec.shock_map`)."""
    model = der.model
    if not model.shocks:
        return der
    rep = shock_map(model.shocks, model.discrete)
    system = {u: e.xreplace(rep) for u, e in der.system.items()}
    return dataclasses.replace(der, system=system, knowns=frozenset(der.knowns - set(rep)))


# --------------------------------------------------------------------------- numeric points
def _numeric(e: sp.Expr, dt: float) -> sp.Expr:
    if e.has(Step):
        e = e.replace(Step, lambda x: sp.Min(sp.Max(x / dt + 1, 0), 1))
    return e


class _Points:
    """Random points of the state space at which residuals are evaluated.

    Every unknown is solved at each point block by block, as the compiled step
    does: explicit and linear blocks from their solutions, numeric blocks (large
    linear and non-linear) numerically, so rows that depend on a non-linear block
    are verified too, not only monitored. A point where a block has no real
    solution is replaced by another draw.

    In discrete time a point is a *second* period: the lags come from solving
    one period from random lags, so every equation held in the previous period
    (e.g. ``lag(Bcb) == lag(Bs) - lag(Bh)``). ``hyp`` are last period's balance-sheet
    identities as definitions of some lags in the others (``lag(Ms) = lag(Mh)``): the lags of
    both periods are made to satisfy them, as the proofs assume.
    """

    def __init__(self, der: Derivation, blocks, n=3, hyp=()):
        self.der, self.blocks = der, blocks
        model = der.model
        rng = np.random.default_rng(_RNG_SEED)
        self.values: list[dict] = []
        dt = model.time.dt
        # knowns in name order, so the points do not depend on the process's hash seed; a point
        # where a block has no real solution is replaced by another draw (up to 4n draws)
        knowns = sorted(der.knowns, key=lambda k: k.name)
        for _ in range(4 * n):
            if len(self.values) >= n:
                break
            base = {k: sp.Float(rng.uniform(0.3, 1.3)) for k in knowns}
            base[T] = sp.Float(model.time.start + rng.uniform(0, model.time.stop - model.time.start))
            cur = self._solve(base, dt) if self._impose(hyp, base, dt) else None
            if model.discrete and cur is not None:
                nxt = dict(base)
                for k in der.knowns:
                    kind, b = marker(k)
                    # a shocked parameter's lag keeps a value of its own: it differs in a shock's first period
                    if kind == "lag" and sp.Symbol(b) in cur and b not in model.shocks:
                        nxt[k] = cur[sp.Symbol(b)]
                nxt[T] = base[T] + 1
                cur = self._solve(nxt, dt) if self._impose(hyp, nxt, dt) else None
            if cur is not None:
                self.values.append(cur)

    def _impose(self, hyp, point, dt) -> bool:
        """Set each defined lag of ``hyp`` from the others (their definitions use no defined lag)."""
        vals = [(sym, self._real(e, point, dt)) for sym, e in hyp]
        if any(v is None for _, v in vals):
            return False
        point.update({sym: sp.Float(v) for sym, v in vals})
        return True

    @staticmethod
    def _real(e, point, dt) -> float | None:
        try:
            v = _numeric(e, dt).xreplace(point)
            v = complex(v.evalf()) if not v.is_number or not v.is_real else float(v)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        if isinstance(v, complex):
            if abs(v.imag) > 1e-12 * max(1.0, abs(v.real)):
                return None
            v = v.real
        return v if np.isfinite(v) else None

    def _solve(self, base, dt):
        out = dict(base)
        for b in self.blocks:
            if b.kind in ("explicit", "linear"):
                for u, e in zip(b.unknowns, b.solution):
                    v = self._real(e, out, dt)
                    if v is None:
                        return None
                    out[u] = sp.Float(v)
                continue
            vals = self._linear(b, out, dt) if b.kind == "linear_numeric" else self._newton(b, out, dt)
            if vals is None:
                return None
            out.update({u: sp.Float(v) for u, v in zip(b.unknowns, vals)})
        return out

    def _matrix(self, rows, point, dt):
        vals = [[self._real(e, point, dt) for e in row] for row in rows]
        return None if any(v is None for row in vals for v in row) else np.array(vals, dtype=float)

    def _linear(self, b, point, dt):
        A = self._matrix(b.matrix, point, dt)
        r = self._matrix([b.rhs], point, dt)
        if A is None or r is None:
            return None
        try:
            return np.linalg.solve(A, r[0])
        except np.linalg.LinAlgError:
            return None

    def _newton(self, b, point, dt, maxiter=60):
        u = np.ones(len(b.unknowns))
        for _ in range(maxiter):
            at = {**point, **{s: sp.Float(v) for s, v in zip(b.unknowns, u)}}
            F = self._matrix([b.residuals], at, dt)
            J = self._matrix(b.jacobian, at, dt)
            if F is None or J is None:
                return None
            F = F[0]
            if np.all(np.abs(F) <= 1e-13 * (1.0 + np.abs(u))):
                return u
            try:
                u = u - np.linalg.solve(J, F)
            except np.linalg.LinAlgError:
                return None
            if not np.all(np.isfinite(u)):
                return None
        return None

    def extend(self, defs) -> None:
        """Add the values of further symbols, each defined in knowns, unknowns and earlier ones."""
        dt = self.der.model.time.dt
        for pt in self.values:
            for sym, e in defs:
                v = self._real(e, pt, dt)
                if v is not None:
                    pt[sym] = sp.Float(v)

    def vanishes(self, expr: sp.Expr, scale_terms) -> bool | None:
        """True if ``expr`` is ~0 at every point, False if not, None if it cannot be evaluated."""
        if not self.values:
            return None
        dt = self.der.model.time.dt
        e = _numeric(expr, dt)
        terms = [_numeric(t, dt) for t in scale_terms]
        for pt in self.values:
            try:
                r = abs(complex(e.xreplace(pt).evalf()))
                scale = sum(abs(complex(t.xreplace(pt).evalf())) for t in terms) or 1.0
            except (TypeError, ValueError):
                return None
            if not np.isfinite(r) or r > _TOL * max(scale, 1.0):
                return False
        return True


# --------------------------------------------------------------------------- checks
def _is_zero(e: sp.Expr) -> bool:
    if e == 0:
        return True
    if expansion_bound(e) > EXPAND_MAX_TERMS:
        return False  # too large to expand or cancel here: not proven (the numbers decide)
    try:
        if sp.expand(e) == 0:
            return True
        if sp.cancel(sp.together(e)) == 0:
            return True
        return sp.simplify(e) == 0
    except Exception:  # noqa: BLE001 - sympy may give up on exotic expressions; then we are not sure
        return False


class _Checker:
    def __init__(self, der: Derivation, bs: Matrix | None, tf: Matrix | None, symbolic=True, explain=True):
        self.der, self.bs, self.tf, self.symbolic = der, bs, tf, symbolic
        self.explain = explain  # a failed sum simplified for the report (not for the diagnosis's trials)
        model = der.model
        self.model = model
        blocks = order_blocks(der.system)
        # the solutions stay a DAG of definitions: a check substitutes only what it needs, latest
        # first, and never folds if_() switches into each other (see LazySolutions)
        self.lazy = LazySolutions(blocks)
        self.unresolved = self.lazy.unresolved
        self.stock_syms = {sp.Symbol(x) for x in model.stocks}
        self._rates: dict[sp.Symbol, sp.Expr] | None = None
        # one level of lagged equations, for proofs in discrete time: substituted after every
        # unknown of this step (layer 0), each once
        self.lagsub = {}
        if model.discrete:
            consts = {sp.Symbol(p) for p in model.parameters} | {T}
            last = len(self.lazy.rank)
            for v, e in model.equations.items():
                if not any(marker(s)[0] for s in e.free_symbols):
                    lagged = e.xreplace({s: lagsym(s.name) for s in e.free_symbols if s not in consts})
                    self.lagsub[lagsym(v)] = lagged
                    self.lazy.define(lagsym(v), lagged, 0, self.lazy.rank.get(sp.Symbol(v), (1, last))[1])
        #: balance-sheet rows and columns assumed to hold last period (discrete time): label -> their
        #: own (status, note); ``weak_held`` when one of them is only verified numerically
        self.held: dict[tuple[str, str], tuple[Status, str]] = {}
        self.weak_held = False
        hyp = self._lagged_balance_sheet(blocks) if model.discrete and bs is not None else []
        self.points = self._hyp_points if hyp else _Points(der, blocks)

    # -- last period's balance sheet ------------------------------------------------
    def _lagged_balance_sheet(self, blocks) -> list[tuple[sp.Symbol, sp.Expr]]:
        """Last period's balance-sheet identities, for judging this period's flows (discrete time).

        A row or column of the balance sheet that sums to zero at the initial values, and sums to
        zero in a period whenever every such row and column did in the period before, sums to zero
        in every period (by induction over the periods). The candidates are the rows and columns
        that sum to zero at the start; each is written as a definition of one of its lagged stocks
        in the others (layer -1 of :class:`LazySolutions`: ``lag(Ls) = lag(Ld)``), and every one
        whose sum in this period is not then shown to be zero (proven; numerically zero where the
        checker is not symbolic) is dropped, until every one left passes. The proofs of this
        period's flows then use those left, and the random points satisfy them.
        """
        model, bs, der = self.model, self.bs, self.der
        assert bs is not None
        params = {sp.Symbol(p) for p in model.parameters}
        sums = [
            (("row", r), sp.Add(*cells.values()) - bs.sums.get(r, 0), list(cells.values()))
            for r, cells in bs.rows.items()
        ]
        sums += [
            (("column", c), sp.Add(*[cells[c] for cells in bs.rows.values() if c in cells]), []) for c in bs.columns
        ]
        cands: list[tuple[tuple[str, str], sp.Expr, sp.Expr]] = []
        for label, raw, entries in sums:
            syms = raw.free_symbols
            if raw == 0 or T in syms or any(marker(x)[0] for x in syms) or syms & {sp.Symbol(x) for x in model.series}:
                continue
            init = self.initial_value(raw)
            scale = max(1.0, sum(abs(self.initial_value(e) or 0) for e in entries))
            if init is None or abs(init) > _TOL * scale:
                continue
            lagged = raw.xreplace({x: lagsym(x.name) for x in syms if x not in params})
            # in lags no equation of last period defines (G&L DIS: Ms = Ls = Ld = INV = inv*UC, ..., seven
            # levels), while small
            for _ in range(_HYP_MAX_LEVELS):
                if not lagged.free_symbols & self.lagsub.keys():
                    break
                lagged = lagged.xreplace(self.lagsub)
                if node_count(lagged) > _HYP_MAX_NODES:
                    break
            if lagged.free_symbols & self.lagsub.keys() or not lagged.free_symbols <= der.knowns | params:
                continue  # too large to write without them, or in names with no value last period
            cands.append((label, raw, lagged))
        hyp: list[tuple[sp.Symbol, sp.Expr]] = []
        while cands:
            self.lazy.forget(-1)
            hyp, used = self._eliminate([(label, lagged) for label, _, lagged in cands])
            for pos, (sym, e) in enumerate(hyp):
                self.lazy.define(sym, e, -1, pos)
            self._hyp_points = _Points(der, blocks, hyp=hyp)
            bad, weak = set(), set()
            for label, raw, _ in cands:
                if label not in used:
                    continue
                if not self._hyp_points.vanishes(raw, [raw]):
                    bad.add(label)
                elif not self.symbolic or self.prove(raw) is not True:
                    weak.add(label)  # zero at random consistent points only
            if not bad:
                self.weak_held = bool(weak)
                for label in used:
                    if weak:
                        self.held[label] = (
                            "verified",
                            "zero at the initial values and, at random consistent points, in every period "
                            "whose previous period's balance sheet balanced",
                        )
                    else:
                        # (an identity is conserved too; one whose lagged sum vanishes by last period's
                        # equations is no candidate and is reported as an identity)
                        self.held[label] = ("proven", "conserved over time and zero at the initial values")
                return hyp
            cands = [c for c in cands if c[0] not in bad]
        self.lazy.forget(-1)
        return []

    def _eliminate(self, cands) -> tuple[list[tuple[sp.Symbol, sp.Expr]], set]:
        """Each lagged sum ``== 0`` as a definition of one lagged stock (or variable) in the rest,
        reduced so that no definition uses a defined symbol; sums that the earlier ones imply, or
        in which no lag enters linearly, define nothing."""
        defs: dict[sp.Symbol, sp.Expr] = {}
        used = set()
        for label, lagged in cands:
            e = sp.expand(lagged.xreplace(defs))
            if e == 0:
                continue
            pick = None
            for x in sorted(e.free_symbols, key=lambda x: (marker(x)[1] in self.model.stocks, x.name), reverse=True):
                if marker(x)[0] != "lag" or x in self.lazy.defs:
                    continue
                c = sp.diff(e, x)
                if c.is_number and c != 0:
                    pick = (x, c)
                    break
            if pick is None:
                continue
            x, c = pick
            sol = sp.expand(x - e / c)
            defs = {k: sp.expand(v.xreplace({x: sol})) for k, v in defs.items()}
            defs[x] = sol
            used.add(label)
        return list(defs.items()), used

    def judge(self, expr, terms, prove=True) -> tuple[Status, str]:
        """Status of ``expr == 0``, where ``expr`` is in the step's unknowns and knowns."""
        v = self.points.vanishes(expr, terms)
        if v is False:
            return "failed", ""
        if self.lazy.reaches(expr):
            if v:
                return "verified", "depends on a numerically solved block: zero at random consistent points"
            return "monitored", "depends on a numerically solved block that could not be evaluated; checked every step"
        if not self.symbolic or not prove:
            return ("verified" if v else "monitored"), ""
        proof = self.prove(expr)
        if proof and self.weak_held and not self._prove_without_lagged_balance_sheet(expr):
            return "verified", (
                "zero given last period's balance sheet, which is only verified at random consistent points"
            )
        if proof:
            return "proven", ""
        if v:
            ft = self.lazy.field_test(expr)
            if ft.zero:
                # exact, with a stated bound; still not a proof, and gated in every run
                return "verified", f"{ft.describe()}; too large to prove symbolically"
            if proof is None:
                return "verified", "zero at random points; too large to prove symbolically"
            return "verified", "zero at random points; sympy could not simplify it"
        return "monitored", "could not be evaluated symbolically; checked every step"

    def _prove_without_lagged_balance_sheet(self, expr) -> bool:
        """Whether ``expr`` is proven zero without last period's balance-sheet identities."""
        saved = [(x, self.lazy.defs[x], self.lazy.rank[x]) for x in self.lazy.defs if self.lazy.rank[x][0] == -1]
        self.lazy.forget(-1)
        try:
            return self.prove(expr) is True
        finally:
            for x, e, (layer, pos) in saved:
                self.lazy.define(x, e, layer, pos)

    def prove(self, expr) -> bool | None:
        """Symbolic proof that ``expr`` vanishes: lazy substitution first, sympy's simplify where small.

        None when the expression is too large for either (the numbers then decide).
        """
        got = self.lazy.prove_zero(expr)
        if got:
            return True
        if got is None and self.lazy.field_test(expr).zero:
            # zero with the atoms free: what the full route below could add (an identity hidden
            # inside an atom) is not needed, and its expansion would be larger still
            return None
        # what the atoms hide (an identity inside an if_() or exp()): the whole substitution,
        # as sympy's cancel/simplify see it, but only where that stays small
        if self.lazy.full_size(expr) > FULL_MAX_NODES:
            return None if got is None else False
        full = self.lazy.full(expr)
        if _is_zero(full):
            return True
        e2 = full
        for _ in range(len(self.lagsub)):  # to a fixpoint: lagged equations may refer to each other
            nxt = e2.xreplace(self.lagsub)
            if nxt == e2:
                break
            e2 = nxt
        if self.lagsub and e2 != full and node_count(e2) <= FULL_MAX_NODES and _is_zero(e2):
            return True
        return None if got is None else False

    def display(self, raw):
        """A failed sum in the model's own names: d() replaced by its derived expression."""
        if not self.explain:
            return str(raw)
        dmap = {dsym(x): e for x, e in self.der.changes.items()}
        try:
            return str(sp.simplify(raw.xreplace(dmap)))
        except Exception:  # noqa: BLE001
            return str(raw)

    # -- the checks -------------------------------------------------------------
    def run(self) -> list[Check]:
        out = []
        tf, bs, der = self.tf, self.bs, self.der
        if tf is not None:
            for r, cells in tf.rows.items():
                raw = sp.Add(*cells.values()) - tf.sums.get(r, 0)
                st, note = self.judge(raw, list(cells.values()))
                out.append(Check("transactions", "row", r, st, self.display(raw) if st == "failed" else "0", note))
            determined = {h.split("'")[1]: x for x, h in der.roles.items() if h.startswith("column")}
            for c in tf.columns:
                if c in determined:
                    out.append(Check("transactions", "column", c, "proven", "0", f"determines d({determined[c]})"))
                    continue
                raw = _col_sum(tf, c)
                terms = [cells[c] for cells in tf.rows.values() if c in cells]
                st, note = self.judge(raw, terms)
                out.append(Check("transactions", "column", c, st, self.display(raw) if st == "failed" else "0", note))
        if bs is not None:
            for r, cells in bs.rows.items():
                raw = sp.Add(*cells.values()) - bs.sums.get(r, 0)
                out.append(self.bs_row(f"{r}", raw, list(cells.values())))
            nw = [r for r in bs.rows if _is_net_worth(r)]
            if nw:
                for c in bs.columns:
                    raw = sp.Add(*[cells[c] for cells in bs.rows.values() if c in cells])
                    chk = self.bs_row(c, raw, [cells[c] for cells in bs.rows.values() if c in cells], "column")
                    out.append(dataclasses.replace(chk, kind="column"))
        if bs is not None and tf is not None:
            out.extend(self.correspondence(bs, tf))
        return out

    def bs_row(self, name, raw, entries, kind="row") -> Check:
        """A balance-sheet row: an identity, or a conserved sum that starts at zero."""
        model = self.model
        terms = list(entries)
        if (kind, name) in self.held:  # shown with last period's balance sheet (see _lagged_balance_sheet)
            status, note = self.held[kind, name]
            return Check("balance_sheet", "row", name, status, "0", note)
        st, note = self.judge(raw, terms, prove=False)
        if st in ("verified",):
            st2, _ = self.judge(raw, terms) if self.symbolic else (st, "")
            note = "identity"
            if st2 == "proven" and self.held and not self._prove_without_lagged_balance_sheet(raw):
                note = "identity, given last period's balance sheet"
            init = self.initial_value(raw) if model.discrete else None
            if init is not None and self.off_at_start(init, entries):
                # the initial values are the balance sheet of the period before the first, which the
                # first period's flows read through lag(): an imbalance there carries into it
                return _unbalanced_start(
                    name,
                    init,
                    "an identity in every period, but not at the initial values, which the first period reads "
                    "through lag() as the period before",
                )
            return Check("balance_sheet", "row", name, st2, "0", note)
        if st == "monitored":
            return Check("balance_sheet", "row", name, st, "0", note)
        # not an identity: is it conserved?
        if model.discrete:
            params = {sp.Symbol(p) for p in model.parameters}
            prev = raw.xreplace({s: lagsym(s.name) for s in raw.free_symbols if s != T and s not in params})
            change = raw - prev
        else:
            if raw.free_symbols & ({sp.Symbol(s) for s in [*model.series, *model.shocks]} | {T}):
                return Check(
                    "balance_sheet", "row", name, "monitored", "0", "depends on time or a series; checked every step"
                )
            change = self.rate(raw)
        dterms = [dsym(x) if dsym(x) in self.lazy.defs else sp.Integer(0) for x in model.stocks]
        st, note = self.judge(change, dterms)
        if st == "failed":
            return Check(
                "balance_sheet",
                "row",
                name,
                "failed",
                self.display(self.change_raw(raw)),
                "its change over time is not zero",
            )
        init = self.initial_value(raw)
        if init is None:
            # conserved, but nothing says where it starts: not proven, and the runs gate it every step
            return Check(
                "balance_sheet",
                "row",
                name,
                "monitored",
                "0",
                f"conserved over time, but its value at the start cannot be evaluated ("
                f"{self.unvalued(raw)}); checked every step",
            )
        if self.off_at_start(init, entries):
            return _unbalanced_start(name, init, "conserved over time, but the initial values do not balance")
        return Check(
            "balance_sheet",
            "row",
            name,
            st,
            "0",
            "conserved over time and zero at the initial values" if st != "monitored" else note,
        )

    def off_at_start(self, init: float, entries) -> bool:
        """Whether a sum of ``entries`` that is ``init`` at the initial values is off, relative to them."""
        return abs(init) > _TOL * max(1.0, sum(abs(self.initial_value(e) or 0) for e in entries))

    def rate(self, e) -> sp.Expr:
        """The time derivative of ``e`` along the dynamics (continuous time), as definitions.

        Every unknown ``u`` gets a symbol for du/dt defined by the chain rule through its own
        definition (layer 2 of :class:`LazySolutions`), so the derivative is substituted as
        lazily as the levels. Parameters, series and time count as constant, and so do unknowns
        of numerically solved blocks (the row then depends on them and is only verified).
        """
        if self._rates is None:
            self._rates = {}
            lazy, rates = self.lazy, self._rates
            for st in self.stock_syms:
                rates[st] = dsym(st.name)
            extra = []
            for u in list(lazy.order):
                d = lazy.defs[u]
                try:
                    du = sp.Add(*[sp.diff(d, w) * rates[w] for w in d.free_symbols if w in rates])
                except Exception:  # noqa: BLE001 - a construct sympy cannot differentiate: left constant
                    continue
                if du != 0:
                    sym = sp.Dummy(f"rate_{u.name}")
                    lazy.define(sym, du, 2, lazy.rank[u][1])
                    rates[u] = sym
                    extra.append((sym, du))
            self.points.extend(extra)
        rates = self._rates
        return sp.Add(*[sp.diff(e, w) * rates[w] for w in e.free_symbols if w in rates])

    def evaluate(self, e, vals):
        """``e`` at ``vals`` (knowns), its unknowns computed from their definitions; None if unresolved."""
        memo: dict = dict(vals)

        def value(s):
            if s in memo:
                return memo[s]
            d = self.lazy.defs.get(s)
            if d is None or self.lazy.rank[s][0] != 1:
                return s
            v = d.xreplace({w: value(w) for w in d.free_symbols})
            memo[s] = v
            return v

        return e.xreplace({s: value(s) if marker(s)[0] is None else memo.get(s, s) for s in e.free_symbols})

    def change_raw(self, raw):
        return sp.Add(*[sp.diff(raw, s) * dsym(s.name) for s in raw.free_symbols if s in self.stock_syms])

    def initial_value(self, e):
        m = self.model
        vals = {sp.Symbol(k): v for k, v in m.stocks.items()}
        vals.update({sp.Symbol(k): v for k, v in m.initial.items()})
        vals.update({sp.Symbol(k): p.value for k, p in m.parameters.items()})
        vals.update({sp.Symbol(k): float(s(m.time.start)) for k, s in m.series.items()})
        vals[T] = m.time.start
        vals = {k: sp.Float(v) for k, v in vals.items()}
        try:
            v = sp.sympify(e).xreplace(vals)
            if not m.discrete and v.free_symbols:
                v = self.evaluate(sp.sympify(e), vals)
            if not v.is_number:
                return None
            v = float(v)
            return v if np.isfinite(v) else None  # NaN: a stock whose initial value is an expression
        except (TypeError, ValueError):
            return None

    def unvalued(self, e) -> str:
        """Which names in ``e`` have no value at the start (for the message of an untested start)."""
        m = self.model
        known = {*m.stocks, *m.initial, *m.parameters, *m.series} - set(m.stock_init)
        names = {marker(s)[1] or s.name for s in sp.sympify(e).free_symbols}
        missing = sorted(names - known - {T.name} - set(m.stock_init))
        expr = sorted(names & set(m.stock_init))
        parts = [f"{', '.join(missing)} has no initial value"] if missing else []
        parts += [f"the initial value of {', '.join(expr)} is an expression"] if expr else []
        return "; ".join(parts) or "a term has no initial value"

    def correspondence(self, bs: Matrix, tf: Matrix) -> list[Check]:
        """Each stock held in a balance-sheet column changes in the same transactions column, opposite sign."""
        out = []
        for x in self.model.stocks:
            sx, dx = sp.Symbol(x), dsym(x)
            # a net-worth row restates the sector's stocks (Godley and Lavoie write -Vh, or -Hh + ...):
            # it holds nothing, so it has no transactions counterpart
            held = [(r, c, e) for r, c, e in bs.entries() if sx in e.free_symbols and not _is_net_worth(r)]
            moved = {c for c in tf.columns if dx in _col_sum(tf, c).free_symbols}
            for r, c, e in held:
                k_bs = sp.diff(e, sx)
                k_tf = sp.diff(_col_sum(tf, c), dx)
                if c not in moved:
                    if moved:
                        out.append(
                            Check(
                                "stock",
                                "stock",
                                x,
                                "failed",
                                str(k_bs),
                                f"held by {c!r} in balance-sheet row {r!r} but d({x}) appears in "
                                f"transactions column(s) {', '.join(sorted(moved))}",
                            )
                        )
                    continue
                if not _is_zero(k_bs + k_tf):
                    out.append(
                        Check(
                            "stock",
                            "stock",
                            x,
                            "failed",
                            str(k_bs + k_tf),
                            f"balance-sheet row {r!r}, column {c!r} holds {k_bs}*{x}, so transactions "
                            f"column {c!r} needs {-k_bs}*d({x}) (an asset's increase is a use of funds), "
                            f"found {k_tf}*d({x})",
                        )
                    )
                else:
                    out.append(
                        Check(
                            "stock",
                            "stock",
                            x,
                            "proven",
                            "0",
                            f"{c!r}: balance sheet {k_bs}*{x} matches transactions {k_tf}*d({x})",
                        )
                    )
        return out


def _unbalanced_start(row: str, init: float, note: str) -> Check:
    """The verdict on a balance-sheet row that holds over time but is off by ``init`` at the initial values."""
    return Check("balance_sheet", "row", row, UNBALANCED_START, f"{init:.6g}", note)


def _is_net_worth(row: str) -> bool:
    """A balance-sheet row named ``Net worth ...``: each column then sums to zero, as in Godley and Lavoie."""
    return row.lower().startswith("net worth")


def _entries_to_try(checks, bs, tf):
    """Entries whose flip could explain the failures: those in failing rows/columns and their stocks."""
    cands = []
    failing = [c for c in checks if not c.ok]
    stocks_hit = set()
    for f in failing:
        if f.matrix == "transactions" and f.kind == "row":
            cands += [("transactions", f.name, c) for c in tf.rows[f.name]]
        elif f.matrix == "transactions" and f.kind == "column":
            cands += [("transactions", r, f.name) for r, cells in tf.rows.items() if f.name in cells]
        elif f.matrix == "balance_sheet":
            rows = bs.rows.get(f.name, {})
            cands += [("balance_sheet", f.name, c) for c in rows]
            for e in rows.values():
                stocks_hit |= {s.name for s in e.free_symbols}
        elif f.matrix == "stock":
            stocks_hit.add(f.name)
    for mat, kind in ((bs, "balance_sheet"), (tf, "transactions")):
        if mat is None:
            continue
        for r, c, e in mat.entries():
            names = {s.name for s in e.free_symbols} | {marker(s)[1] for s in e.free_symbols}
            if names & stocks_hit:
                cands.append((kind, r, c))
    return list(dict.fromkeys(cands))


def _diagnose(model, checks, bs, tf) -> list[str]:
    found = []
    # a flip that leaves a row off at the start that was not before balances nothing
    start = {(c.matrix, c.kind, c.name) for c in checks if c.status == UNBALANCED_START}
    for kind, r, c in _entries_to_try(checks, bs, tf):
        mat = bs if kind == "balance_sheet" else tf
        flipped = mat.with_entry(r, c, -mat.rows[r][c])
        nbs, ntf = (flipped, tf) if kind == "balance_sheet" else (bs, flipped)
        try:
            der = derive(model, ntf)
            if der.problems:
                continue
            res = _Checker(der, nbs, ntf, symbolic=False, explain=False).run()
        except (SpecError, CompileError):
            continue
        if all(x.ok and (x.status != UNBALANCED_START or (x.matrix, x.kind, x.name) in start) for x in res):
            found.append((kind, r, c))

    def label(kind, r, c):
        mat = bs if kind == "balance_sheet" else tf
        where = "balance sheet" if kind == "balance_sheet" else "transactions"
        return f"{where} row {r!r}, column {c!r} (entry {mat.rows[r][c]}, try {-mat.rows[r][c]})"

    if len(found) == 1:
        return [f"{label(*found[0])} looks sign-flipped: flipping it balances every row and column"]
    if found:
        return [
            "one of these entries looks sign-flipped (flipping either alone balances every row and column, "
            "so the accounting cannot tell which): " + "; ".join(label(*f) for f in found)
        ]
    return []


def check_accounting(
    model: Model,
    *,
    throw: bool = True,
    symbolic: bool = True,
    progress: bool = False,
    allow_unbalanced_start: bool | None = None,
) -> AccountingReport:
    """Derive the stock dynamics and check every row and column of both matrices.

    Parameters
    ----------
    model : Model
        From :func:`sdmodel.load_model`.
    throw : bool
        Raise :class:`AccountingError` if anything fails (default); otherwise
        return the report with the failures in it.
    symbolic : bool
        Try sympy proofs (default); ``False`` only evaluates at random points.
    progress : bool
        Say on stderr what is being checked and how long it took (proofs of a large model take
        seconds to a minute); quiet by default.
    allow_unbalanced_start : bool, optional
        Accept balance-sheet rows whose change is zero but which are off at the initial values
        (status ``unbalanced start``: a published model's rounded starting values); default the
        model file's ``allow_unbalanced_start``. Rows whose change is not zero fail either way.

    Examples
    --------
    >>> from sdmodel import load_model
    >>> rep = check_accounting(load_model("sim"))
    >>> rep.ok, rep.dynamics["Hh"][1]
    (True, '-C - T + W')
    """
    started = time.perf_counter()
    bs, tf = model.balance_sheet, model.transactions
    if progress:
        n = sum(len(m.rows) + len(m.columns) for m in (bs, tf) if m is not None)
        progress_line(
            f"checking the accounting of {model.label}: {n} matrix rows and columns"
            + (", proving each with sympy..." if symbolic else "...")
        )
    der = derive(model)
    problems = list(der.problems)
    checks: list[Check] = []
    diagnosis: list[str] = []
    if not problems:
        try:
            checker = _Checker(der, bs, tf, symbolic=symbolic)
            checks = checker.run()
        except CompileError as err:
            problems.append(str(err))
        if any(not c.ok for c in checks):
            diagnosis = _diagnose(model, checks, bs, tf)
    used = set()
    for e in [*model.equations.values(), *model.changes.values(), *model.stock_init.values()]:
        used |= {marker(s)[1] for s in e.free_symbols}
    for mat in (bs, tf):
        if mat is not None:
            for _, _, e in mat.entries():
                used |= {marker(s)[1] for s in e.free_symbols}
            for e in mat.sums.values():
                used |= {marker(s)[1] for s in e.free_symbols}
    # parameters and series nothing reads (equation variables nothing reads are outputs)
    unused = tuple(n for n in [*model.parameters, *model.series] if n not in used)
    net_worth = {}
    if bs is not None and not any(_is_net_worth(r) for r in bs.rows):
        for c in bs.columns:
            net_worth[c] = str(sp.Add(*[cells[c] for cells in bs.rows.values() if c in cells]))
    rep = AccountingReport(
        model=model.name,
        source=model.source,
        checks=tuple(checks),
        dynamics={x: (der.roles.get(x, "?"), str(der.changes.get(x, "?"))) for x in model.stocks},
        problems=tuple(problems),
        diagnosis=tuple(diagnosis),
        unused=unused,
        net_worth=net_worth,
        allow_unbalanced_start=model.allow_unbalanced_start
        if allow_unbalanced_start is None
        else allow_unbalanced_start,
    )
    if progress:
        progress_line(f"checked the accounting of {model.label} in {time.perf_counter() - started:.1f} s")
    if throw:
        rep.raise_if_failed()
    return rep
