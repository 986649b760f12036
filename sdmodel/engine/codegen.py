"""The code generator: a derived model's step system, ordered into blocks, printed as batched numpy
code (``_evaluate``, ``_monitor``, ``_initial``) and as the scalar functions of the fused kernel.

Loaded by :func:`sdmodel.engine.compiler.compile_model` when it compiles a model; a compiled model read
back from a cache is built from the generated source alone, without sympy.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from sdmodel.core.errors import CompileError
from sdmodel.core.options import NEWTON_MAXITER, NEWTON_TOL
from sdmodel.model.accounting import Derivation, apply_shocks
from sdmodel.model.algebra import order_blocks
from sdmodel.model.expr import T, lagsym, marker
from sdmodel.model.spec import shock_map


# --------------------------------------------------------------------------- printer
class _Printer(NumPyPrinter):
    """numpy code that broadcasts scalars against (B,) arrays everywhere."""

    def __init__(self):
        super().__init__({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": False})

    def _module_format(self, fqn, register=True):
        return "np." + fqn.split(".", 1)[1] if fqn.startswith("numpy.") else fqn

    def _nest(self, fn, args):
        args = [self._print(a) for a in args]
        out = args[0]
        for a in args[1:]:
            out = f"np.{fn}({out}, {a})"
        return out

    def _print_Min(self, e):
        return self._nest("minimum", e.args)

    def _print_Max(self, e):
        return self._nest("maximum", e.args)

    def _print_And(self, e):  # pairwise: numpy's reduce over a tuple fails on (B,) arrays mixed with scalars
        return self._nest("logical_and", e.args)

    def _print_Or(self, e):
        return self._nest("logical_or", e.args)

    def _print_Piecewise(self, e):
        out = self._print(e.args[-1].expr) if e.args[-1].cond == True else "np.nan"  # noqa: E712
        pieces = e.args[:-1] if e.args[-1].cond == True else e.args  # noqa: E712
        for p in reversed(pieces):
            out = self._choose(self._print(p.cond), self._print(p.expr), out)
        return out

    def _choose(self, cond: str, a: str, b: str) -> str:
        return f"np.where({cond}, {a}, {b})"

    def _print_Step(self, e):
        return f"_step({self._print(e.args[0])}, dt)"

    def _print_Trunc(self, e):
        return f"np.trunc({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"np.logaddexp(0.0, {self._print(e.args[0])})"

    def _print_LookupBase(self, e):  # sympy dispatches subclasses to a base named *Base
        return f"np.interp({self._print(e.args[0])}, {e.xs!r}, {e.ys!r})"

    def _print_Heaviside(self, e):
        return f"np.heaviside({self._print(e.args[0])}, 0.5)"

    def _print_Rational(self, e):
        return repr(float(e))

    def _print_Integer(self, e):
        return repr(float(e))

    def _print_Float(self, e):
        return repr(float(e))

    def _print_Zero(self, e):
        return "0.0"

    def _print_One(self, e):
        return "1.0"

    def _print_NegativeOne(self, e):
        return "-1.0"

    def _print_Half(self, e):
        return "0.5"


class _KernelPrinter(_Printer):
    """Scalar code for the fused kernel (:mod:`sdmodel.engine.kernel`): one run at a time, compiled by numba.

    Same functions as the batched printer where numpy's scalar semantics are what we want (NaN
    propagating ``minimum``/``maximum``, ``where`` as a conditional expression); lookup tables become
    module-level arrays (``lookups`` collects them)."""

    def __init__(self):
        super().__init__()
        self.lookups: dict[tuple, str] = {}

    def _choose(self, cond: str, a: str, b: str) -> str:
        return f"({a} if {cond} else {b})"

    def _print_Relational(self, e):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[e.rel_op]
        return f"({self._print(e.lhs)} {op} {self._print(e.rhs)})"

    def _print_And(self, e):
        return "(" + " and ".join(self._print(a) for a in e.args) + ")"

    def _print_Or(self, e):
        return "(" + " or ".join(self._print(a) for a in e.args) + ")"

    def _print_Not(self, e):
        return f"(not {self._print(e.args[0])})"

    def _print_BooleanTrue(self, e):
        return "True"

    def _print_BooleanFalse(self, e):
        return "False"

    def _print_Step(self, e):
        return f"_kstep({self._print(e.args[0])}, dt)"

    def _print_Heaviside(self, e):
        return f"_kheaviside({self._print(e.args[0])})"

    def _print_LookupBase(self, e):
        key = (tuple(e.xs), tuple(e.ys))
        name = self.lookups.setdefault(key, f"_lk{len(self.lookups)}")
        return f"np.interp({self._print(e.args[0])}, {name}_x, {name}_y)"


# --------------------------------------------------------------------------- code generation
def generate(der: Derivation) -> tuple[dict, str]:
    """The compiled model's parts from a derivation: its metadata (the names of states, parameters,
    series, unknowns, outputs and residuals, and the kernel's source) and the batched numpy source."""
    der = apply_shocks(der)
    model = der.model
    discrete = model.discrete
    blocks = order_blocks(der.system)
    params = list(model.parameters)
    series = list(model.series)
    if discrete:
        lag_series = sorted(
            {
                marker(s)[1]
                for e in der.system.values()
                for s in e.free_symbols
                if marker(s)[0] == "lag" and marker(s)[1] in model.series
            }
        )
        unknown_set = {s.name for s in der.system}
        lag_states = [f"lag({x})" for x in model.stocks]
        extra = sorted(
            {
                s.name
                for e in der.system.values()
                for s in e.free_symbols
                if marker(s)[0] == "lag" and s.name not in lag_states and marker(s)[1] not in model.series
            }
        )
        for name in extra:
            if marker(sp.Symbol(name))[1] not in unknown_set:
                raise CompileError(
                    f"{name}: {marker(sp.Symbol(name))[1]!r} is neither a stock, an equation nor a series", model.source
                )
        states = lag_states + extra
        series_cols = series + [f"lag({s})" for s in lag_series]
    else:
        states = list(model.stocks)
        series_cols = series
    unknowns = [u.name for b in blocks for u in b.unknowns]

    names: dict[sp.Symbol, str] = {}
    for i, s in enumerate(states):
        names[sp.Symbol(s)] = f"s{i}"
    for i, p in enumerate(params):
        names[sp.Symbol(p)] = f"p{i}"
    for i, x in enumerate(series_cols):
        names[sp.Symbol(x)] = f"x{i}"
    for i, u in enumerate(unknowns):
        names[sp.Symbol(u)] = f"u{i}"
    names[T] = "t"
    rename = {k: sp.Symbol(v) for k, v in names.items()}
    pr = _Printer()
    kpr = _KernelPrinter()

    def code(e):
        missing = e.free_symbols - set(rename)
        if missing:
            raise CompileError(f"unknown symbols {sorted(map(str, missing))} in generated code", model.source)
        return pr.doprint(e.xreplace(rename))

    def kcode(e):  # the same expression, printed for the scalar kernel
        return kpr.doprint(e.xreplace(rename))

    sizes = (len(states), len(params), len(series_cols))
    lines = _preamble("_evaluate(t, S, P, X, G, dt)", *sizes, 0)
    # column-major (B, nU): each unknown's B values are contiguous, as are S's and P's columns
    # (simulation passes them Fortran-ordered); column-wise writes and reads are then not strided
    lines.append(f"    U = np.empty(({len(unknowns)}, B)).T")
    # the fused kernel's scalar step (sdmodel.engine.kernel): the same blocks, one run at a time
    klines = _kernel_preamble("_keval(t, s, p, x, g, dt, u)", *sizes, 0)
    has_newton = False
    newton_index: list[int] = []
    tmp = 0
    kspans: list[tuple[set, int, int]] = []  # each block's unknowns and its lines in klines
    for b in blocks:
        kstart = len(klines)
        idx = [unknowns.index(u.name) for u in b.unknowns]
        if b.kind in ("explicit", "linear"):
            # a torn linear block refers to its own earlier unknowns: common subexpressions
            # are shared only among solutions in knowns (the first group), then one at a time
            inside = set(b.unknowns)
            groups: list[list[tuple[int, sp.Expr]]] = []
            cur: list[tuple[int, sp.Expr]] = []
            for i, e in zip(idx, b.solution):
                if e.free_symbols & inside and cur:
                    groups.append(cur)
                    cur = []
                cur.append((i, e))
            groups.append(cur)
            for grp in groups:
                reps, sols = sp.cse([e for _, e in grp], symbols=sp.numbered_symbols(f"c{tmp}_"))
                tmp += 1
                for sym, e in reps:
                    rename[sym] = sym
                    lines.append(f"    {sym} = {code(e)}")
                    klines.append(f"    {sym} = {kcode(e)}")
                for (i, _), e in zip(grp, sols):
                    lines.append(f"    u{i} = {code(e)}")
                    lines.append(f"    U[:, {i}] = u{i}")
                    klines.append(f"    u{i} = {kcode(e)}")
                    klines.append(f"    u[{i}] = u{i}")
        elif b.kind == "linear_numeric":
            m = len(idx)
            lines.append(f"    A = np.zeros((B, {m}, {m})); b = np.zeros((B, {m}))")
            klines.append(f"    A = np.zeros(({m}, {m})); b = np.zeros({m})")
            for r in range(m):
                for c in range(m):
                    if b.matrix[r][c] != 0:
                        lines.append(f"    A[:, {r}, {c}] = {code(b.matrix[r][c])}")
                        klines.append(f"    A[{r}, {c}] = {kcode(b.matrix[r][c])}")
                lines.append(f"    b[:, {r}] = {code(b.rhs[r])}")
                klines.append(f"    b[{r}] = {kcode(b.rhs[r])}")
            lines.append("    sol = np.linalg.solve(A, b[..., None])[..., 0]")
            klines.append("    sol = np.linalg.solve(A, b)")
            for k, i in enumerate(idx):
                lines.append(f"    u{i} = sol[:, {k}]")
                lines.append(f"    U[:, {i}] = u{i}")
                klines.append(f"    u{i} = sol[{k}]")
                klines.append(f"    u[{i}] = u{i}")
        else:
            has_newton = True
            m = len(idx)
            lines.append(f"    def _block{tmp}(w):")
            for k, i in enumerate(idx):
                lines.append(f"        u{i} = w[:, {k}]")
            lines.append(f"        F = np.empty((B, {m})); J = np.empty((B, {m}, {m}))")
            for r in range(m):
                lines.append(f"        F[:, {r}] = {code(b.residuals[r])}")
                for c in range(m):
                    lines.append(f"        J[:, {r}, {c}] = {code(b.jacobian[r][c])}")
            lines.append("        return F, J")
            lines.append(f"    w = _newton(_block{tmp}, G[:, {idx}])")
            tmp += 1
            for k, i in enumerate(idx):
                lines.append(f"    u{i} = w[:, {k}]")
                lines.append(f"    U[:, {i}] = u{i}")
            klines += _kernel_newton(b, idx, kcode)
            newton_index += idx
        kspans.append((set(b.unknowns), kstart, len(klines)))
    klines += _kernel_stage(der, kspans, klines, sizes)

    # residual rows, monitored every step
    res_names: list[str] = []
    res_kinds: list[str] = []
    res_exprs: list[sp.Expr] = []
    flow_terms: list[sp.Expr] = []
    stock_terms: list[sp.Expr] = []
    tf, bs = model.transactions, model.balance_sheet
    # parameters' lags are the parameters, a shocked one's the value it had (spec.shock_map)
    lag_params = {lagsym(p): sp.Symbol(p) for p in model.parameters}
    lag_params.update(shock_map(model.shocks, discrete))
    if tf is not None:
        for row, cells in tf.rows.items():
            res_names.append(f"transactions:{row}")
            res_kinds.append("flow")
            res_exprs.append(sp.Add(*cells.values()) - tf.sums.get(row, 0))
            flow_terms.extend(cells.values())
    if bs is not None:
        for row, cells in bs.rows.items():
            res_names.append(f"balance_sheet:{row}")
            res_kinds.append("stock")
            res_exprs.append(sp.Add(*cells.values()) - bs.sums.get(row, 0))
            stock_terms.extend(cells.values())
    n_r = len(res_exprs)
    lines.append("    return U")
    lines.append("")
    klines += ["", *_kernel_preamble("_kmon(t, s, p, x, u, dt, r, z)", *sizes, len(unknowns))]
    for i, e in enumerate(res_exprs):
        klines.append(f"    r[{i}] = {kcode(e.xreplace(lag_params))}")
    # monitoring is only needed at saved steps, not at every Runge-Kutta stage
    lines += _preamble("_monitor(t, S, P, X, U, dt)", *sizes, len(unknowns))
    lines.append(f"    R = np.zeros(({max(n_r, 1)}, B)).T   # column-major, like U")
    for i, e in enumerate(res_exprs):
        lines.append(f"    R[:, {i}] = {code(e.xreplace(lag_params))}")
    lines.append("    Z = np.zeros((2, B)).T")
    for k, terms in enumerate((flow_terms, stock_terms)):
        # the largest entry of each kind: one stacked max, not a numpy call per matrix entry
        texts = list(dict.fromkeys(code(e.xreplace(lag_params)) for e in terms))
        if texts:
            lines.append(
                f"    Z[:, {k}] = np.abs(np.stack(np.broadcast_arrays(np.zeros(B), {', '.join(texts)}))).max(axis=0)"
            )
        klines.append(f"    z{k} = 0.0")  # numpy's max: NaN if any entry is NaN
        for e in dict.fromkeys(kcode(e.xreplace(lag_params)) for e in terms):
            klines.append(f"    z{k} = _knanmax(z{k}, abs({e}))")
        klines.append(f"    z[{k}] = z{k}")
    lines.append("    return R, Z")
    init_index, init_passes = _initial_code(der, states, sizes, code, lines)
    source = "\n".join(lines) + "\n"
    tables = [
        f"{name}_{axis} = np.array({list(map(float, vals))!r})"
        for (xs, ys), name in kpr.lookups.items()
        for axis, vals in (("x", xs), ("y", ys))
    ]
    kernel_source = "\n".join([*tables, "", *klines]) + "\n"

    outputs = [x for x in model.stocks] + [v for v in model.equations if v not in model.stocks]
    meta = dict(
        state_names=tuple(states),
        param_names=tuple(params),
        series_names=tuple(series_cols),
        unknown_names=tuple(unknowns),
        output_names=tuple(outputs),
        residual_names=tuple(res_names),
        residual_kinds=tuple(res_kinds),
        has_newton=has_newton,
        newton_index=tuple(newton_index),
        init_index=init_index,
        init_passes=init_passes,
        kernel_source=kernel_source,
    )
    return meta, source


def _preamble(signature: str, n_states: int, n_params: int, n_series: int, n_unknowns: int) -> list[str]:
    """The head of a generated function: its columns of S, P, X (and U) as local names."""
    return (
        [
            f"def {signature}:",
            "    B = S.shape[0]",
            "    t = np.float64(t)  # numpy semantics (inf, not ZeroDivisionError) where only t varies",
        ]
        + [f"    s{i} = S[:, {i}]" for i in range(n_states)]
        + [f"    p{i} = P[:, {i}]" for i in range(n_params)]
        + [f"    x{i} = X[{i}]" for i in range(n_series)]
        + [f"    u{i} = U[:, {i}]" for i in range(n_unknowns)]
    )


def _kernel_preamble(signature: str, n_states: int, n_params: int, n_series: int, n_unknowns: int) -> list[str]:
    """The head of a kernel function: one run's states, parameters, series (and unknowns) as scalars."""
    return (
        [f"def {signature}:"]
        + [f"    s{i} = s[{i}]" for i in range(n_states)]
        + [f"    p{i} = p[{i}]" for i in range(n_params)]
        + [f"    x{i} = x[{i}]" for i in range(n_series)]
        + [f"    u{i} = u[{i}]" for i in range(n_unknowns)]
    )


def _kernel_stage(der: Derivation, kspans, klines: list[str], sizes: tuple[int, int, int]) -> list[str]:
    """``_kstage``: the blocks the states' rates depend on, and only those, for the inner stages of a
    Runge-Kutta step, whose other unknowns are never used (reporting variables are not computed there)."""
    if der.model.discrete:  # no stages; the driver still names it
        return ["", "_kstage = _keval"]
    need = {u for u in der.system if marker(u)[0] == "d"}
    stack = list(need)
    while stack:
        for s in der.system[stack.pop()].free_symbols:
            if s in der.system and s not in need:
                need.add(s)
                stack.append(s)
    out = ["", *_kernel_preamble("_kstage(t, s, p, x, g, dt, u)", *sizes, 0)]
    for unknowns, a, b in kspans:
        if unknowns & need:
            out += klines[a:b]
    return out


def _kernel_newton(b, idx: list[int], kcode) -> list[str]:
    """A non-linear block in the kernel: the batched :func:`_newton` of one run, step for step.

    Start from the guesses (all 1.0 when one is not finite); stop when every residual is within
    ``NEWTON_TOL * (1 + |u|)`` or one is not finite, or after ``NEWTON_MAXITER`` steps; the block
    is NaN unless the residuals at the last point are within a thousand times the tolerance."""
    m = len(idx)
    out = [f"    w = np.empty({m}); F = np.empty({m}); J = np.empty(({m}, {m}))"]
    out += [f"    w[{k}] = g[{i}]" for k, i in enumerate(idx)]
    out.append("    if not np.isfinite(w).all():")
    out.append("        w[:] = 1.0")
    out.append(f"    for _it in range({NEWTON_MAXITER} + 1):")
    out += [f"        u{i} = w[{k}]" for k, i in enumerate(idx)]
    for r in range(m):
        out.append(f"        F[{r}] = {kcode(b.residuals[r])}")
    out.append(f"        if _it == {NEWTON_MAXITER} or _kconverged(F, w, {NEWTON_TOL!r}) or not np.isfinite(F).all():")
    out.append("            break")
    for r in range(m):
        for c in range(m):
            out.append(f"        J[{r}, {c}] = {kcode(b.jacobian[r][c])}")
    out.append("        w -= _ksolve(J, F)")
    out.append(f"    if not _kconverged(F, w, {1e3 * NEWTON_TOL!r}):")
    out.append("        w[:] = np.nan")
    for k, i in enumerate(idx):
        out.append(f"    u{i} = w[{k}]")
        out.append(f"    u[{i}] = u{i}")
    return out


def _initial_code(der: Derivation, states, sizes: tuple[int, int, int], code, lines):
    """``_initial(t, S, P, X, U, dt)``: the stocks whose initial value is an expression.

    An expression may use other stocks and equation variables at the start time, so the
    simulation evaluates the model at the start and this function in turn, once per link
    of the longest chain of such stocks; a chain that comes back to its start is an error.
    """
    model = der.model
    if not model.stock_init:
        return (), 0
    stock_syms = {sp.Symbol(x) for x in model.stocks}
    memo: dict = {}

    def reach(sym):
        # the stocks an unknown depends on within one step
        if sym in stock_syms:
            return {sym}
        if sym not in der.system:
            return set()
        if sym not in memo:
            memo[sym] = set()  # a simultaneous block refers back to itself: stop there
            out = set()
            for s in der.system[sym].free_symbols:
                out |= reach(s)
            memo[sym] = out
        return memo[sym]

    needs = {}
    for x, e in model.stock_init.items():
        dep = set()
        for s in e.free_symbols:
            dep |= reach(s)
        needs[x] = {d.name for d in dep if d.name in model.stock_init}
    level: dict[str, int] = {}

    def depth(x, path):
        if x in path:
            loop = " -> ".join([*path[path.index(x) :], x])
            raise CompileError(
                f"the initial values of these stocks depend on each other: {loop}; give one of them a number",
                model.source,
            )
        if x not in level:
            level[x] = 1 + max((depth(y, [*path, x]) for y in needs[x]), default=-1)
        return level[x]

    for x in model.stock_init:
        depth(x, [])
    names = list(model.stock_init)
    lines += ["", *_preamble("_initial(t, S, P, X, U, dt)", *sizes, len(der.system))]
    lines.append(f"    V = np.empty((B, {len(names)}))")
    for k, x in enumerate(names):
        lines.append(f"    V[:, {k}] = {code(model.stock_init[x].xreplace(shock_map(model.shocks, model.discrete)))}")
    lines.append("    return V")
    return tuple(states.index(x) for x in names), 1 + max(level.values())


__all__ = ["generate"]
