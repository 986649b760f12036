"""Vensim (``.mdl``) and XMILE (``.xmile``, ``.stmx``, ``.xml``) models, read through PySD.

PySD's translators parse the file into its abstract model representation
(``AbstractModel``: sections of elements, each an expression tree). This module walks
that tree and writes an sdmodel model as a plain dict (what a YAML model file holds),
so the model then goes through the ordinary pipeline: validation, compilation to the
batched engine, calibration, Sobol studies. Nothing here runs the model or PySD's
generated code.

What maps where:

- ``INTEG(flow, init)`` is a stock with ``d(X): flow`` and ``init`` as its initial value
  (an expression where it is not a number, evaluated at the start like Vensim does);
- a constant (a number, or arithmetic of numbers) is a parameter, with its units and
  documentation; every other element is an equation;
- lookup tables (and ``WITH LOOKUP``) are lookups; ``SMOOTH``/``SMOOTHI``/``SMOOTH3``/
  ``SMOOTH3I`` and ``DELAY1``/``DELAY1I``/``DELAY3``/``DELAY3I`` are chains of hidden stocks
  named ``<element>__s1``, ``<element>__d1``, ...; ``INITIAL(x)`` is a stock that does not move;
- ``STEP``, ``RAMP``, ``PULSE``, ``IF THEN ELSE``, ``MIN``/``MAX``, ``XIDZ``/``ZIDZ`` and the
  usual maths become expressions with PySD's exact timing (``STEP`` switches at the
  first step with ``t + dt/2 > t0``; ``PULSE`` is on for ``start <= t < start + width``).

Anything else (subscripts, data, ``DELAY FIXED``, ``PULSE TRAIN``, random numbers, macros,
...) is refused with a :class:`~sdmodel.errors.SpecError` that names every unsupported
function and the element using it. Names become identifiers (lower case, ``_`` for spaces
and other characters); :func:`read_sd_file` also returns the map from original names.

PySD is an optional dependency (``pip install "sdmodel[pysd]"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError
from .expr import RESERVED

#: File suffixes read as Vensim or XMILE models.
VENSIM_SUFFIXES = (".mdl",)
XMILE_SUFFIXES = (".xmile", ".stmx", ".xml")
SUFFIXES = VENSIM_SUFFIXES + XMILE_SUFFIXES

_SMALL = 1e-6            # PySD's SMALL_VENSIM tolerance in RAMP, PULSE, XIDZ and ZIDZ
_CONTROL = {"initial_time": "start", "final_time": "stop", "time_step": "dt", "saveper": None}
_NAMES = {  # structures PySD parses that the ODE engine cannot hold, by their Vensim names
    "DelayFixedStructure": "DELAY FIXED", "DelayNStructure": "DELAY N", "SmoothNStructure": "SMOOTH N",
    "TrendStructure": "TREND", "ForecastStructure": "FORECAST", "SampleIfTrueStructure": "SAMPLE IF TRUE",
    "DataStructure": "data (:=)", "GetLookupsStructure": "GET LOOKUPS", "GetDataStructure": "GET DATA",
    "GetConstantsStructure": "GET CONSTANTS", "GameStructure": "GAME",
}
_FUNCS1 = {"abs": "abs", "exp": "exp", "ln": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan",
           "arctan": "atan", "tanh": "tanh"}


def pysd_translators():
    """PySD's Vensim and XMILE file parsers (imported on first use, with a clear error if absent)."""
    try:
        from pysd.translators.vensim.vensim_file import VensimFile
        from pysd.translators.xmile.xmile_file import XmileFile
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise SpecError(f"reading Vensim/XMILE files needs PySD: pip install \"sdmodel[pysd]\" ({err})") from err
    return VensimFile, XmileFile


def abstract_model(path: str | Path):
    """PySD's ``AbstractModel`` of a Vensim or XMILE file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no such file: {path}")
    VensimFile, XmileFile = pysd_translators()
    try:
        f = VensimFile(path) if path.suffix.lower() in VENSIM_SUFFIXES else XmileFile(path)
        f.parse()
        return f.get_abstract_model()
    except SpecError:
        raise
    except Exception as err:  # noqa: BLE001 - PySD's parser raises many kinds; name the file
        raise SpecError(f"PySD could not parse the file: {type(err).__name__}: {err}", str(path)) from err


@dataclass
class Translation:
    """The sdmodel model dict of an imported file, and original name -> model name."""

    model: dict
    names: dict[str, str] = field(default_factory=dict)


def fingerprint() -> str:
    """What the translation depends on besides the file: this module and PySD's version."""
    try:
        from importlib.metadata import version
        pysd_version = version("pysd")
    except Exception:  # noqa: BLE001 - not installed: reading will say so
        pysd_version = "none"
    return f"sdmodel.translate 1 / pysd {pysd_version}"


def read_sd_file(path: str | Path) -> Translation:
    """Translate a Vensim or XMILE file into an sdmodel model dict.

    Raises
    ------
    SpecError
        Listing every element that uses something the engine cannot hold, with the
        construct's Vensim name, or when PySD cannot parse the file.
    """
    path = Path(path)
    am = abstract_model(path)
    return _Translator(path, am).run()


def _num(x: float) -> str:
    v = float(x)
    if v == int(v) and abs(v) < 1e15:
        s = str(int(v))
    else:
        s = repr(v)
    return f"({s})" if v < 0 else s


class _Unsupported(Exception):
    pass


class _Translator:
    def __init__(self, path: Path, am):
        self.path = path
        self.am = am
        self.problems: list[str] = []
        self.stocks: dict[str, object] = {}
        self.changes: dict[str, str] = {}
        self.params: dict[str, dict] = {}
        self.equations: dict[str, str] = {}
        self.lookups: dict[str, dict] = {}
        self.docs: dict[str, str] = {}
        self.time: dict[str, float] = {}
        self.names: dict[str, str] = {}     # original -> ours
        self.refs: dict[str, str] = {}      # PySD reference (lower, _) -> ours
        self.taken: set[str] = set()
        self.table_kind: dict[str, str] = {}

    # -- names ------------------------------------------------------------------
    def ident(self, original: str) -> str:
        base = re.sub(r"\W+", "_", original.strip().lower()).strip("_") or "x"
        if base[0].isdigit():
            base = "v_" + base
        if base in RESERVED:
            base += "_"
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def hidden(self, owner: str, tag: str) -> str:
        name, k = f"{owner}__{tag}", 2
        while name in self.taken:
            name, k = f"{owner}__{tag}{k}", k + 1
        self.taken.add(name)
        return name

    # -- the walk ---------------------------------------------------------------
    def run(self) -> Translation:
        sections = self.am.sections
        if len(sections) > 1:
            macros = ", ".join(s.name for s in sections[1:])
            self.problems.append(f"macros are not supported (found: {macros})")
        main = sections[0]
        if main.subscripts:
            self.problems.append("subscripts are not supported (subscript ranges: "
                                 + ", ".join(s.name for s in main.subscripts) + ")")
        from pysd.translators.structures.abstract_model import (AbstractControlElement, AbstractData,
                                                                 AbstractLookup)
        elements = []
        for el in main.elements:
            ref = el.name.lower().replace(" ", "_")
            if isinstance(el, AbstractControlElement) or ref in _CONTROL:
                continue
            ours = self.ident(el.name)
            self.names[el.name] = ours
            self.refs[ref] = ours
            elements.append((el, ours))
        for el in main.elements:
            ref = el.name.lower().replace(" ", "_")
            if isinstance(el, AbstractControlElement) or ref in _CONTROL:
                self.control(el, ref)
        # lookup tables first: a call tab(x) looks like a function call until tab is known
        elements.sort(key=lambda e: not isinstance(e[0].components[0], AbstractLookup))
        for el, ours in elements:
            comps = el.components
            if len(comps) != 1 or comps[0].subscripts[0]:
                self.problems.append(f"{el.name!r}: subscripted elements are not supported")
                continue
            comp = comps[0]
            doc = " ".join(str(el.documentation or "").split())
            unit = str(el.units or "").strip()
            try:
                if isinstance(comp, AbstractData):
                    raise _Unsupported("data variables (:=, GET DATA)")
                if isinstance(comp, AbstractLookup):
                    self.lookup_table(ours, comp.ast, doc, unit)
                else:
                    self.element(ours, comp.ast, doc, unit)
            except _Unsupported as err:
                self.problems.append(f"{el.name!r}: {err} is not supported")
        missing = [k for k in ("start", "stop", "dt") if k not in self.time]
        if missing:
            self.problems.append("the control section lacks " + ", ".join(
                {"start": "INITIAL TIME", "stop": "FINAL TIME", "dt": "TIME STEP"}[k] for k in missing))
        if self.problems:
            raise SpecError(self.problems, str(self.path))
        kind = "Vensim" if self.path.suffix.lower() in VENSIM_SUFFIXES else "XMILE"
        stocks = {}
        for n, v in self.stocks.items():
            stocks[n] = {"value": v, "doc": self.docs.get(n, "")}
        model = {
            "name": re.sub(r"\W+", "_", self.path.stem).strip("_") or "imported",
            "description": f"imported from the {kind} file {self.path.name} through PySD's translator",
            "time": {**self.time, "method": "euler"},
            "stocks": stocks,
            "parameters": self.params,
            "lookups": self.lookups,
            "equations": {**{f"d({k})": v for k, v in self.changes.items()}, **self.equations},
        }
        model = {k: v for k, v in model.items() if v or k == "equations"}
        return Translation(model, dict(self.names))

    def control(self, el, ref):
        key = _CONTROL[ref]
        if key is None:
            return
        try:
            v = self.constant(el.components[0].ast)
        except _Unsupported:
            v = None
        if v is None:
            self.problems.append(f"{el.name!r}: expected a number")
        else:
            self.time[key] = v

    def constant(self, ast):
        """The value of an expression of numbers only, else None."""
        from pysd.translators.structures import abstract_expressions as ae
        if isinstance(ast, (int, float)) or type(ast).__module__ == "numpy":
            return float(ast)
        if isinstance(ast, ae.ArithmeticStructure):
            vals = [self.constant(a) for a in ast.arguments]
            if any(v is None for v in vals):
                return None
            if ast.operators == ["negative"]:
                return -vals[0]
            try:
                return float(eval_chain(ast.operators, vals))
            except (ZeroDivisionError, OverflowError):
                return None
        return None

    def element(self, name, ast, doc, unit):
        from pysd.translators.structures import abstract_expressions as ae
        if isinstance(ast, ae.IntegStructure):
            self.stocks[name] = self.initial_value(ast.initial, name)
            self.changes[name] = self.expr(ast.flow, name)
            self.docs[name] = doc
            return
        if isinstance(ast, ae.InitialStructure):
            self.stocks[name] = self.initial_value(ast.initial, name)
            self.changes[name] = "0"
            self.docs[name] = doc
            return
        v = self.constant(ast)
        if v is not None:
            self.params[name] = {"value": v, **({"doc": doc} if doc else {}), **({"unit": unit} if unit else {})}
            return
        self.equations[name] = self.expr(ast, name)

    def initial_value(self, ast, owner):
        v = self.constant(ast)
        return v if v is not None else self.expr(ast, owner)

    def lookup_table(self, name, ast, doc, unit):
        xs, ys = [float(x) for x in ast.x], [float(y) for y in ast.y]
        kind = getattr(ast, "type", "interpolate") or "interpolate"
        if kind not in ("interpolate", "extrapolate"):
            raise _Unsupported(f"a {kind!r} lookup table")
        self.lookups[name] = {"points": [[x, y] for x, y in zip(xs, ys)],
                              **({"doc": doc} if doc else {}), **({"unit": unit} if unit else {})}
        self.table_kind[name] = kind

    def call_table(self, name, arg):
        """``name(arg)``; an XMILE ``extrapolate`` table continues the end segments linearly."""
        if self.table_kind.get(name) != "extrapolate" or len(self.lookups[name]["points"]) < 2:
            return f"{name}({arg})"
        (x0, y0), (x1, y1) = self.lookups[name]["points"][:2]
        (xa, ya), (xb, yb) = self.lookups[name]["points"][-2:]
        lo = f"({_num(y0)} + {_num((y1 - y0) / (x1 - x0))} * ({arg} - {_num(x0)}))"
        hi = f"({_num(yb)} + {_num((yb - ya) / (xb - xa))} * ({arg} - {_num(xb)}))"
        return f"if_({arg} < {_num(x0)}, {lo}, if_({arg} > {_num(xb)}, {hi}, {name}({arg})))"

    # -- expressions ----------------------------------------------------------------
    def expr(self, ast, owner) -> str:
        from pysd.translators.structures import abstract_expressions as ae
        if isinstance(ast, (int, float)) or type(ast).__module__ == "numpy":
            return _num(ast)
        if isinstance(ast, ae.ReferenceStructure):
            if ast.subscripts:
                raise _Unsupported("a subscripted reference")
            if ast.reference == "time":
                return "t"
            if ast.reference == "time_step":
                return _num(self.time["dt"]) if "dt" in self.time else "TIME_STEP_UNKNOWN"
            if ast.reference in ("initial_time", "final_time"):
                key = "start" if ast.reference == "initial_time" else "stop"
                if key in self.time:
                    return _num(self.time[key])
            if ast.reference not in self.refs:
                raise _Unsupported(f"the undefined name {ast.reference!r}")
            return self.refs[ast.reference]
        if isinstance(ast, ae.ArithmeticStructure):
            args = [self.expr(a, owner) for a in ast.arguments]
            if ast.operators == ["negative"]:
                return f"(-{args[0]})"
            if ast.operators[0] == "^":          # right to left, as Python's **
                out = args[-1]
                for a in reversed(args[:-1]):
                    out = f"({a} ** {out})"
                return out
            out = args[0]
            for op, a in zip(ast.operators, args[1:]):
                out = f"({out} {op} {a})"
            return out
        if isinstance(ast, ae.LogicStructure):
            return f"if_({self.cond(ast, owner)}, 1, 0)"
        if isinstance(ast, ae.CallStructure):
            return self.call(ast, owner)
        if isinstance(ast, ae.InlineLookupsStructure):
            name = self.hidden(owner, "lookup")
            self.lookup_table(name, ast.lookups, "", "")
            return self.call_table(name, self.expr(ast.argument, owner))
        if isinstance(ast, ae.SmoothStructure):
            return self.smooth(ast, owner)
        if isinstance(ast, ae.DelayStructure):
            return self.delay(ast, owner)
        if isinstance(ast, (ae.IntegStructure, ae.InitialStructure)):
            name = self.hidden(owner, "integ" if isinstance(ast, ae.IntegStructure) else "initial")
            self.stocks[name] = self.initial_value(ast.initial, owner)
            self.changes[name] = self.expr(ast.flow, owner) if isinstance(ast, ae.IntegStructure) else "0"
            return name
        raise _Unsupported(_NAMES.get(type(ast).__name__, type(ast).__name__))

    def cond(self, ast, owner, negate=False) -> str:
        """A condition (our comparison syntax), negated by De Morgan where ``negate``."""
        from pysd.translators.structures import abstract_expressions as ae
        if not isinstance(ast, ae.LogicStructure):
            return f"({self.expr(ast, owner)} {'==' if negate else '!='} 0)"
        ops, args = ast.operators, ast.arguments
        if ops == [":NOT:"]:
            return self.cond(args[0], owner, not negate)
        if ops[0] in (":AND:", ":OR:"):
            # PySD nests a flat chain from the right with equal precedence: a AND b OR c = a AND (b OR c)
            out = self.cond(args[-1], owner, negate)
            for op, a in zip(reversed(ops), reversed(args[:-1])):
                is_and = (op == ":AND:") != negate
                out = f"({self.cond(a, owner, negate)} {'&' if is_and else '|'} {out})"
            return out
        op = {"=": "==", "<>": "!="}.get(ops[0], ops[0])
        if negate:
            op = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]
        return f"({self.expr(args[0], owner)} {op} {self.expr(args[1], owner)})"

    def call(self, ast, owner) -> str:
        f = ast.function.reference
        A = ast.arguments
        if f in self.refs and self.refs[f] in self.lookups:
            if len(A) != 1:
                raise _Unsupported(f"calling lookup {f!r} with {len(A)} arguments")
            return self.call_table(self.refs[f], self.expr(A[0], owner))
        arity = {"if_then_else": 3, "min": 2, "max": 2, "step": 2, "ramp": 3, "pulse": 2, "power": 2,
                 "log": 2, "xidz": 3, "zidz": 2, **{k: 1 for k in _FUNCS1}}
        if f not in arity:
            raise _Unsupported(f"the function {f.upper().replace('_', ' ')}")
        if len(A) != arity[f]:
            raise _Unsupported(f"{f.upper().replace('_', ' ')} with {len(A)} arguments (expected {arity[f]})")
        if f == "if_then_else":
            return f"if_({self.cond(A[0], owner)}, {self.expr(A[1], owner)}, {self.expr(A[2], owner)})"
        a = [self.expr(x, owner) for x in A]
        if f in _FUNCS1:
            return f"{_FUNCS1[f]}({a[0]})"
        if f in ("min", "max"):
            return f"{f}({a[0]}, {a[1]})"
        if f == "power":
            return f"({a[0]} ** {a[1]})"
        if f == "log":
            return f"(log({a[0]}) / log({a[1]}))"
        if f == "xidz":
            return f"if_(abs({a[1]}) < {_SMALL}, {a[2]}, {a[0]} / {a[1]})"
        if f == "zidz":
            return f"if_(abs({a[1]}) < {_SMALL}, 0, {a[0]} / {a[1]})"
        half = _num(self.time.get("dt", 1.0) / 2)
        if f == "step":        # PySD: height * (t + dt/2 > t0): on at the grid point nearest t0
            return f"({a[0]} * if_(t + {half} > {a[1]}, 1, 0))"
        if f == "ramp":        # PySD: (t + 1e-6 > start) * slope * (min(end, t) - start)
            return f"({a[0]} * if_(t + {_SMALL} > {a[1]}, min({a[2]}, t) - {a[1]}, 0))"
        # pulse: PySD: 1 for start - 1e-6 <= t < start + width
        return f"if_((t >= {a[0]} - {_SMALL}) & (t < {a[0]} + {a[1]}), 1, 0)"

    def smooth(self, ast, owner) -> str:
        """SMOOTH(I)(3): ``order`` first-order stages, each at ``order / T`` (PySD and Vensim)."""
        n = self.order(ast.order)
        T = self.expr(ast.smooth_time, owner)
        init = self.initial_value(ast.initial, owner)
        target = self.expr(ast.input, owner)
        names = [self.hidden(owner, f"s{i + 1}") for i in range(n)]
        for nm in names:
            self.stocks[nm] = init
            self.changes[nm] = f"({target} - {nm}) * {n} / {T}"
            target = nm
        return names[-1]

    def delay(self, ast, owner) -> str:
        """DELAY1(I)/DELAY3(I): ``order`` stages holding the material in transit, each ``T / order``.

        Like PySD, the order drops while ``order * dt > T`` (T a constant), so a stage never
        empties in less than one step."""
        n = self.order(ast.order)
        Tc = self.constant(ast.delay_time)
        if Tc is not None and "dt" in self.time:
            while n > 1 and n * self.time["dt"] > Tc:
                n -= 1
        T = self.expr(ast.delay_time, owner)
        init = self.constant(ast.initial)
        init = (f"{_num(init)} * {T} / {n}" if init is not None
                else f"({self.expr(ast.initial, owner)}) * {T} / {n}")
        inflow = self.expr(ast.input, owner)
        names = [self.hidden(owner, f"d{i + 1}") for i in range(n)]
        for nm in names:
            self.stocks[nm] = init
            out = f"{nm} * {n} / {T}"
            self.changes[nm] = f"{inflow} - {out}"
            inflow = f"({out})"
        return inflow

    def order(self, v) -> int:
        c = self.constant(v)
        if c is None or c != int(c) or c < 1:
            raise _Unsupported("a smooth or delay order that is not a positive whole number")
        return int(c)


def eval_chain(ops, vals):
    """Evaluate a flat PySD arithmetic chain: ``+ - * /`` left to right, ``^`` right to left."""
    if ops and ops[0] == "^":
        out = vals[-1]
        for v in reversed(vals[:-1]):
            out = v ** out
        return out
    out = vals[0]
    for op, v in zip(ops, vals[1:]):
        out = {"+": out + v, "-": out - v, "*": out * v, "/": out / v}[op]
    return out


__all__ = ["SUFFIXES", "Translation", "abstract_model", "read_sd_file"]
