"""Write any sdmodel model as a Vensim ``.mdl`` or an XMILE file.

The exported model is the one the engine runs, written the system-dynamics way:

- every stock is an integral of its net flow: the flow the matrices imply (a sector's
  budget constraint) or the model's ``d(X)`` equation, as a flow variable ``d_X``;
- simultaneous blocks are written in their solved form (the linear solution the compiler
  found), so Vensim, Stella and PySD see an ordinary causal model with no loops inside a
  step; a block the compiler solves numerically (Newton) cannot be written this way and is
  refused with its unknowns named;
- exogenous series are lookups of time (``WITH LOOKUP(Time, ...)``, an XMILE ``<gf>``), held at the end values
  outside the data, as the engine does; step series (``previous``) get a second point just
  before each step;
- parameters are constants with their units and documentation; lookups are lookup tables;
- ``step(t0)`` is the engine's ramp one time step wide, written out with ``TIME STEP``, and
  the smooth functions (``softplus``, ``logistic``) as exact expressions in ``EXP``/``LN``;
- a discrete-time model (``lag(X)``) runs at a time step of 1, each lag a stock that takes
  last period's value (``lag_X = INTEG(X - lag_X, ...)``), which Euler makes exact.

Euler at the model's ``dt`` in PySD gives the engine's Euler trajectories (the tests check
it to 1e-6 for SIM, PC and the BSR Japan scenario).
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import sympy as sp
from sympy.printing.str import StrPrinter

from sdmodel.core.errors import CompileError, SpecError
from sdmodel.core.files import write_atomic_file
from sdmodel.model.accounting import apply_shocks, derive
from sdmodel.model.algebra import order_blocks
from sdmodel.model.expr import T, marker
from sdmodel.model.spec import Model

FORMATS = ("vensim", "xmile")
_SUFFIX = {"vensim": ".mdl", "xmile": ".xmile"}
# names a model variable may not take in Vensim/XMILE (compared lower case, '_' as ' ')
_RESERVED = {
    "time",
    "time step",
    "initial time",
    "final time",
    "saveper",
    "dt",
    "starttime",
    "stoptime",
    "min",
    "max",
    "exp",
    "ln",
    "log",
    "abs",
    "sqrt",
    "step",
    "ramp",
    "pulse",
    "integ",
    "if",
    "then",
    "else",
    "and",
    "or",
    "not",
    "sin",
    "cos",
    "tan",
    "tanh",
    "arctan",
    "smooth",
    "delay1",
    "delay3",
    "initial",
    "pi",
    "int",
    "mod",
    "inf",
}


def _plain(text: str) -> str:
    """Documentation text safe in a Vensim equation (no ``|`` or ``~``, one line)."""
    return " ".join(str(text).replace("|", "/").replace("~", "-").split())


class _Names:
    """sdmodel name -> exported name, unique case-insensitively and with '_' read as ' '."""

    def __init__(self):
        self.map: dict[str, str] = {}
        self.used: set[str] = set()

    def add(self, name: str) -> str:
        base = re.sub(r"\W+", "_", name).strip("_") or "v"
        out, k = base, 2
        while out.lower().replace("_", " ") in self.used or out.lower().replace("_", " ") in _RESERVED:
            out, k = f"{base}_{k}", k + 1
        self.used.add(out.lower().replace("_", " "))
        self.map[name] = out
        return out

    def __getitem__(self, name):
        return self.map[name]


class _Printer(StrPrinter):
    """Vensim (``xmile=False``) or XMILE expression syntax for the engine's sympy expressions."""

    def __init__(self, names, time_name, dt_name, xmile=False):
        super().__init__({"full_prec": True})
        self.names, self.time_name, self.dt_name, self.xmile = names, time_name, dt_name, xmile

    def _print_Symbol(self, e):
        if e == T:
            return self.time_name
        return self.names[e.name]

    def _print_Float(self, e):
        return _number(float(e))

    def _print_Rational(self, e):
        return _number(float(e))

    def _print_Integer(self, e):
        return _number(float(e))

    def _print_Half(self, e):
        return "0.5"

    def _print_NegativeOne(self, e):
        return "-1"

    def _print_One(self, e):
        return "1"

    def _print_Zero(self, e):
        return "0"

    def _print_Pow(self, e, rational=False):
        b, x = e.args
        if x == sp.Rational(1, 2):
            return f"SQRT({self._print(b)})"
        if x == -1:
            return f"(1 / ({self._print(b)}))"
        return f"(({self._print(b)}) ^ ({self._print(x)}))"

    def _print_Exp1(self, e):
        return "EXP(1)"

    def _fn(self, name, e):
        return f"{name}({', '.join(self._print(a) for a in e.args)})"

    def _nest(self, fn, args):
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out

    def _print_Min(self, e):
        return self._nest("MIN", e.args)

    def _print_Max(self, e):
        return self._nest("MAX", e.args)

    def _print_Step(self, e):
        # the engine's step: a ramp one time step wide ending at t0 (sdmodel.engine.compiler._step)
        return f"MIN(1, MAX(0, ({self._print(e.args[0])}) / {self.dt_name} + 1))"

    def _print_Softplus(self, e):
        x = self._print(e.args[0])  # log(1 + exp(x)) without overflow, as np.logaddexp(0, x)
        return f"(MAX({x}, 0) + LN(1 + EXP(-ABS({x}))))"

    def _print_Trunc(self, e):
        x = self._print(e.args[0])
        if not self.xmile:
            return f"INTEGER({x})"  # Vensim: the integer part, toward zero
        # XMILE's INT is the floor: toward zero for both signs it needs the sign
        return f"(IF {x} < 0 THEN -INT(-({x})) ELSE INT({x}))"

    def _print_LookupBase(self, e):
        return f"{self.names[type(e).__name__]}({self._print(e.args[0])})"

    def _print_Piecewise(self, e):
        pieces = list(e.args)
        out = self._print(pieces[-1].expr) if pieces[-1].cond == True else "0"  # noqa: E712
        if pieces[-1].cond == True:  # noqa: E712
            pieces = pieces[:-1]
        for p in reversed(pieces):
            c, a = self._print(p.cond), self._print(p.expr)
            out = f"(IF {c} THEN {a} ELSE {out})" if self.xmile else f"IF THEN ELSE({c}, {a}, {out})"
        return out

    def _print_Relational(self, e):
        # every comparison (sympy's rel_op: == != < <= > >=); Vensim and XMILE write = and <>
        op = {"==": "=", "!=": "<>"}.get(e.rel_op, e.rel_op)
        return f"({self._print(e.lhs)} {op} {self._print(e.rhs)})"

    def _print_And(self, e):
        op = " AND " if self.xmile else " :AND: "
        return "(" + op.join(self._print(a) for a in e.args) + ")"

    def _print_Or(self, e):
        op = " OR " if self.xmile else " :OR: "
        return "(" + op.join(self._print(a) for a in e.args) + ")"

    def _print_Not(self, e):
        return f"({'NOT' if self.xmile else ':NOT:'} {self._print(e.args[0])})"

    def _print_Function(self, e):
        raise SpecError(f"cannot export the function {type(e).__name__}() to Vensim/XMILE")


# sympy function class -> the Vensim/XMILE function of the same name (one argument each)
_FUNCTIONS = {
    "exp": "EXP",
    "log": "LN",
    "Abs": "ABS",
    "tanh": "TANH",
    "sin": "SIN",
    "cos": "COS",
    "tan": "TAN",
    "atan": "ARCTAN",
    "asin": "ARCSIN",
    "acos": "ARCCOS",
}
for _cls, _name in _FUNCTIONS.items():
    setattr(_Printer, f"_print_{_cls}", lambda self, e, _name=_name: self._fn(_name, e))


def _number(v: float) -> str:
    if not np.isfinite(v):
        raise SpecError(f"cannot export the non-finite number {v}")
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


class _Plan:
    """What both formats write: names, stocks with their flows, equations in causal order."""

    def __init__(self, model: Model):
        self.model = model
        der = apply_shocks(derive(model))
        if der.problems:
            raise CompileError(list(der.problems), model.source)
        blocks = order_blocks(der.system)
        bad = [u.name for b in blocks if b.kind not in ("explicit", "linear") for u in b.unknowns]
        if bad:
            raise SpecError(
                f"cannot export: the simultaneous block of {', '.join(bad)} has no closed-form "
                "solution (the engine solves it numerically every step); Vensim and XMILE need "
                "an explicit equation for each variable",
                model.source,
            )
        self.names = _Names()
        self.discrete = model.discrete
        for n in [*model.parameters, *model.lookups]:
            self.names.add(n)
        for n in model.series:
            self.names.add(n)
        # the states: stocks (continuous), lag(X) (discrete)
        self.stocks: list[tuple[str, str, object]] = []  # (state symbol name, flow symbol name, initial)
        if self.discrete:
            for s in sorted(
                {s.name for e in der.system.values() for s in e.free_symbols if marker(s)[0] == "lag"}
                - {f"lag({x})" for x in model.series}
            ):
                base = marker(sp.Symbol(s))[1]
                self.names.map[s] = self.names.add(f"lag_{base}")
            for u in der.system:
                self.names.add(u.name)
        else:
            for x in model.stocks:
                self.names.add(x)
            for u in der.system:
                k, base = marker(u)
                self.names.map[u.name] = self.names.add(f"d_{base}" if k == "d" else u.name)
        self.equations: list[tuple[str, sp.Expr]] = []
        for b in blocks:
            for u, e in zip(b.unknowns, b.solution):
                self.equations.append((u.name, e))
        self.lag_series = sorted(
            {
                marker(s)[1]
                for e in der.system.values()
                for s in e.free_symbols
                if marker(s)[0] == "lag" and marker(s)[1] in model.series
            }
        )
        for s in self.lag_series:
            self.names.map[f"lag({s})"] = self.names.add(f"lag_{s}")

    def states(self):
        """(exported stock name, flow expression, initial value: a number or an expression, doc)."""
        m = self.model
        out = []
        if self.discrete:
            for s, ex in self.names.map.items():
                if marker(sp.Symbol(s))[0] != "lag" or marker(sp.Symbol(s))[1] in m.series:
                    continue
                base = marker(sp.Symbol(s))[1]
                init = m.stocks.get(base, m.initial.get(base))
                if init is None:
                    raise SpecError(f"lag({base}) needs an initial value (initial: {{{base}: ...}})", m.source)
                out.append((ex, sp.Symbol(base) - sp.Symbol(s), float(init), f"last period's value of {base}"))
            return out
        for x in m.stocks:
            init = m.stock_init.get(x, m.stocks[x])
            out.append((self.names[x], sp.Symbol(f"d({x})"), init, m.docs.get(x, "")))
        return out

    def series_points(self, name):
        s = self.model.series[name]
        ts, vs = list(s.times), list(s.values)
        if s.interpolation == "previous" and len(ts) > 1:
            pts = [(ts[0], vs[0])]
            for i in range(1, len(ts)):
                eps = 1e-6 * max(1.0, abs(ts[i]))  # PySD keeps 9 significant digits of table data
                pts += [(ts[i] - eps, vs[i - 1]), (ts[i], vs[i])]
            return pts
        return list(zip(ts, vs))


def export_model(model: Model, fmt: str) -> str:
    """The text of ``model`` as a Vensim ``.mdl`` (``fmt="vensim"``) or XMILE file (``"xmile"``).

    Raises
    ------
    SpecError
        If ``fmt`` is unknown or the model has a block with no closed-form solution.
    """
    if fmt not in FORMATS:
        raise SpecError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    plan = _Plan(model)
    return _vensim(plan) if fmt == "vensim" else _xmile(plan)


def write_export(model: Model, fmt: str, out: str | Path | None = None) -> Path:
    """Write :func:`export_model` atomically; ``out`` defaults to ``<name>[-<scenario>].mdl|.xmile``."""
    text = export_model(model, fmt)
    name = f"{model.name}{'-' + model.scenario if model.scenario else ''}{_SUFFIX[fmt]}"
    out = Path(name if out is None else out)
    if out.is_dir():
        out = out / name
    write_atomic_file(out, text.encode("utf-8"))
    return out


def _files(m: Model) -> str:
    """The model's file name, and its scenario's if it has one."""
    name = Path(m.path or m.source).name
    return f"{name} with scenario {Path(m.scenario_file).name}" if m.scenario_file else name


def _header(plan):
    m = plan.model
    return (
        f"{m.label}: {m.description.strip().rstrip('.')}. Exported by sdmodel from {_files(m)}; "
        f"spec hash {m.spec_hash[:12]}."
    )


def _vensim(plan: _Plan) -> str:
    m = plan.model
    pr = _Printer(plan.names, "Time", "TIME STEP")
    out = [
        "{UTF-8}",
        "********************************************************\n\t.sdmodel\n"
        f"********************************************************~\n\t\t{_plain(_header(plan))}\n\t|\n",
    ]

    def eq(name, rhs, unit="", doc=""):
        out.append(f"{name} =\n\t{rhs}\n\t~\t{_plain(unit)}\n\t~\t{_plain(doc)}\n\t|\n")

    for ex, flow, init, doc in plan.states():
        init_s = _number(init) if isinstance(init, (int, float)) else pr.doprint(init)
        out.append(f"{ex} = INTEG (\n\t{pr.doprint(flow)},\n\t\t{init_s})\n\t~\t\n\t~\t{_plain(doc)}\n\t|\n")
    for u, e in plan.equations:
        if plan.discrete or marker(sp.Symbol(u))[0] != "d":
            eq(plan.names[u], pr.doprint(e), doc=m.docs.get(u, ""))
        else:
            eq(plan.names[u], pr.doprint(e), doc=f"net flow into {marker(sp.Symbol(u))[1]}")
    for n, p in m.parameters.items():
        eq(plan.names[n], _number(p.value), p.unit, p.doc)
    for n, lk in m.lookups.items():
        pts = ",".join(f"({_number(x)},{_number(y)})" for x, y in zip(lk.xs, lk.ys))
        out.append(f"{plan.names[n]}(\n\t{pts})\n\t~\t\n\t~\t{_plain(m.docs.get(n, ''))}\n\t|\n")

    def series(n, arg):
        # inline: PySD runs a WITH LOOKUP about 50 times faster than a call to a named table
        pts = plan.series_points(n)
        if len(pts) == 1:
            return _number(pts[0][1])
        ys = [y for _, y in pts]
        rng = f"[({_number(pts[0][0])},{_number(min(ys))})-({_number(pts[-1][0])},{_number(max(ys))})]"
        return f"WITH LOOKUP({arg}, ({rng},{','.join(f'({_number(x)},{_number(y)})' for x, y in pts)}))"

    for n, s in m.series.items():
        eq(plan.names[n], series(n, "Time"), doc=f"exogenous series ({s.interpolation}; source {s.source})")
    for lagged in plan.lag_series:
        eq(plan.names[f"lag({lagged})"], series(lagged, "Time - 1"), doc=f"last period's {lagged}")
    t = m.time
    dt = 1.0 if plan.discrete else t.dt
    out.append(
        "********************************************************\n\t.Control\n"
        "********************************************************~\n\t\tSimulation Control Parameters\n\t|\n"
    )
    eq("FINAL TIME", _number(t.stop), "year", "The final time for the simulation.")
    eq("INITIAL TIME", _number(t.start), "year", "The initial time for the simulation.")
    eq("SAVEPER", "TIME STEP", "year [0,?]", "The frequency with which output is stored.")
    eq("TIME STEP", _number(dt), "year [0,?]", "The time step for the simulation (Euler).")
    return (
        "\n".join(out) + "\\\\\\---/// Sketch information - do not modify anything except names\n"
        "V300  Do not put anything below this section - it will be ignored\n*View 1\n"
        "$192-192-192,0,Times New Roman|12||0-0-0|0-0-0|0-0-255|-1--1--1|-1--1--1|96,96,100,0\n"
        "///---\\\\\\\n:L<%^E!@\n"
    )


def _xmile(plan: _Plan) -> str:
    m = plan.model
    dt = 1.0 if plan.discrete else m.time.dt
    pr = _Printer(plan.names, "TIME", _number(dt), xmile=True)  # PySD's XMILE reader has no DT

    def esc(s):
        return escape(str(s), {'"': "&quot;"})

    def var(tag, name, eqn, unit="", doc="", extra=""):
        parts = [f'      <{tag} name="{esc(name)}">', f"        <eqn>{esc(eqn)}</eqn>"]
        if extra:
            parts.append(extra)
        if unit:
            parts.append(f"        <units>{esc(unit)}</units>")
        if doc:
            parts.append(f"        <doc>{esc(_plain(doc))}</doc>")
        parts.append(f"      </{tag}>")
        return "\n".join(parts)

    def gf(name, xs, ys, doc=""):
        # explicit x points and no <xscale>: PySD spaces the points evenly over an <xscale>
        xs, ys = list(xs), list(ys)
        return "\n".join(
            [
                f'      <gf name="{esc(name)}">',
                f'        <yscale min="{_number(min(ys))}" max="{_number(max(ys))}"/>',
                f"        <xpts>{','.join(_number(x) for x in xs)}</xpts>",
                f"        <ypts>{','.join(_number(y) for y in ys)}</ypts>",
                *([f"        <doc>{esc(_plain(doc))}</doc>"] if doc else []),
                "      </gf>",
            ]
        )

    items = []
    flows = {}
    for ex, flow, init, doc in plan.states():
        init_s = _number(init) if isinstance(init, (int, float)) else pr.doprint(init)
        fname = plan.names.add(f"{ex}_net_flow")
        flows[fname] = pr.doprint(flow)
        items.append(var("stock", ex, init_s, doc=doc, extra=f"        <inflow>{esc(fname)}</inflow>"))
    for fname, rhs in flows.items():
        items.append(var("flow", fname, rhs))
    for u, e in plan.equations:
        items.append(var("aux", plan.names[u], pr.doprint(e), doc=m.docs.get(u, "")))
    for n, p in m.parameters.items():
        items.append(var("aux", plan.names[n], _number(p.value), p.unit, p.doc))
    for n, lk in m.lookups.items():
        items.append(gf(plan.names[n], lk.xs, lk.ys, m.docs.get(n, "")))

    def series(name, n, arg, doc):
        # an aux with an embedded graphical function of its equation (PySD runs it fast)
        pts = plan.series_points(n)
        if len(pts) == 1:
            return var("aux", name, _number(pts[0][1]), doc=doc)
        table = "\n".join(
            [
                "        <gf>",
                f"          <xpts>{','.join(_number(x) for x, _ in pts)}</xpts>",
                f"          <ypts>{','.join(_number(y) for _, y in pts)}</ypts>",
                "        </gf>",
            ]
        )
        return var("aux", name, arg, doc=doc, extra=table)

    for n, s in m.series.items():
        items.append(series(plan.names[n], n, "TIME", f"exogenous series ({s.interpolation}; source {s.source})"))
    for lagged in plan.lag_series:
        items.append(series(plan.names[f"lag({lagged})"], lagged, "TIME - 1", f"last period's {lagged}"))
    t = m.time
    return "\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0">',
            "  <header>",
            "    <vendor>sdmodel</vendor>",
            '    <product version="1.0">sdmodel</product>',
            f"    <name>{esc(m.label)}</name>",
            "  </header>",
            '  <sim_specs method="Euler" time_units="year">',
            f"    <start>{_number(t.start)}</start>",
            f"    <stop>{_number(t.stop)}</stop>",
            f"    <dt>{_number(dt)}</dt>",
            "  </sim_specs>",
            "  <model>",
            "    <variables>",
            *items,
            "    </variables>",
            "  </model>",
            "</xmile>",
            "",
        ]
    )


__all__ = ["FORMATS", "export_model", "write_export"]
