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

Operator semantics (what a number means must not change on the way):

- unary minus binds looser than ``^``: ``-2^2`` is -4 and ``(-2)^2`` is 4 (the SDXorg test
  model ``tests/exponentiation``: Vensim DSS 6.3 and Stella 10.0.6 both give -4 for ``-2^2``);
  ``^`` groups right to left like PySD's Python ``**`` (``2^3^2`` is 512; the Vensim and
  XMILE texts at hand do not state an associativity).
  PySD folds a minus into the number it precedes, so ``-2^2`` and ``(-2)^2`` reach its
  abstract model as the same ``(-2)^2``; :func:`abstract_model` keeps the minus as an
  operation instead, and every emitted power, negation and chain is fully parenthesised,
  so sdmodel's own parser never decides precedence;
- a flat ``:AND:``/``:OR:`` chain nests from the right, like PySD's builder;
- ``:NA:`` (Vensim's "not available" marker, which PySD reads as NaN) is refused: no
  single number stands for it;
- an XMILE uniflow (``<non_negative/>`` on a flow, or in ``<behavior>``) is ``max(flow, 0)``;
  an XMILE non-negative stock (``<non_negative/>`` on a stock or in ``<behavior>``) keeps
  Stella's rule: its outflow is cut back to what the stock holds plus what flows in during
  the step, ``min(outflow, max(stock / DT + inflows, 0))``, so under Euler at the file's DT
  the stock stops at exactly 0 and the cut outflow is what every other stock receives (DT
  is written as the file's number: run at another step, the cut is only approximate). A
  non-negative stock with several outflows (Stella's outflow priority) or with a biflow is
  refused, and so is ``<non_negative/>`` anywhere else.

Anything else (subscripts, data, ``GET XLS``/``GET DIRECT`` lookups and data, ``DELAY FIXED``,
``PULSE TRAIN``, ``INTEGER``, ``MODULO``, random numbers, macros, ...) is refused with a
:class:`~sdmodel.errors.SpecError` that names every unsupported construct and the element
using it. Names become identifiers (lower case, ``_`` for spaces and other characters);
:func:`read_sd_file` also returns the map from original names.

PySD is an optional dependency (``pip install "sdmodel[pysd]"``).
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError
from .expr import RESERVED

#: File suffixes read as Vensim or XMILE models.
VENSIM_SUFFIXES = (".mdl",)
XMILE_SUFFIXES = (".xmile", ".stmx", ".xml")
SUFFIXES = VENSIM_SUFFIXES + XMILE_SUFFIXES

_SMALL = 1e-6  # PySD's SMALL_VENSIM tolerance in RAMP, PULSE, XIDZ and ZIDZ
_CONTROL = {"initial_time": "start", "final_time": "stop", "time_step": "dt", "saveper": None}
_NAMES = {  # structures PySD parses that the ODE engine cannot hold, by their Vensim names
    "DelayFixedStructure": "DELAY FIXED",
    "DelayNStructure": "DELAY N",
    "SmoothNStructure": "SMOOTH N",
    "TrendStructure": "TREND",
    "ForecastStructure": "FORECAST",
    "SampleIfTrueStructure": "SAMPLE IF TRUE",
    "DataStructure": "data (:=)",
    "GetLookupsStructure": "GET LOOKUPS",
    "GetDataStructure": "GET DATA",
    "GetConstantsStructure": "GET CONSTANTS",
    "GameStructure": "GAME",
    "AllocateAvailableStructure": "ALLOCATE AVAILABLE",
    "AllocateByPriorityStructure": "ALLOCATE BY PRIORITY",
    "SubscriptsReferenceStructure": "a subscript reference",
}
#: The GET functions PySD gives one structure each; the message names all the spellings.
_GET_NAMES = {
    "GetLookupsStructure": "GET XLS LOOKUPS / GET DIRECT LOOKUPS",
    "GetDataStructure": "GET XLS DATA / GET DIRECT DATA",
    "GetConstantsStructure": "GET XLS CONSTANTS / GET DIRECT CONSTANTS",
}
_NA = ":NA: (Vensim's not-available marker; PySD reads it as NaN, so no single number stands for it)"
_FUNCS1 = {
    "abs": "abs",
    "exp": "exp",
    "ln": "log",
    "sqrt": "sqrt",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "arctan": "atan",
    "arcsin": "asin",
    "arccos": "acos",
    "tanh": "tanh",
    "integer": "integer",  # Vensim INTEGER: the integer part, toward zero (PySD: int(x))
}


def pysd_translators():
    """PySD's Vensim and XMILE file parsers (imported on first use, with a clear error if absent)."""
    try:
        from pysd.translators.vensim.vensim_file import VensimFile
        from pysd.translators.xmile.xmile_file import XmileFile
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise SpecError(f'reading Vensim/XMILE files needs PySD: pip install "sdmodel[pysd]" ({err})') from err
    return VensimFile, XmileFile


def abstract_model(path: str | Path):
    """PySD's ``AbstractModel`` of a Vensim or XMILE file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"no such file: {path}")
    VensimFile, XmileFile = pysd_translators()
    try:
        with _unary_minus_kept():
            f = VensimFile(path) if path.suffix.lower() in VENSIM_SUFFIXES else XmileFile(path)
            f.parse()
            return f.get_abstract_model()
    except SpecError:
        raise
    except Exception as err:  # noqa: BLE001 - PySD's parser raises many kinds; name the file
        # the first line only: parsimonious appends the whole parse tree to some of its errors
        first = (str(err).strip().splitlines() or [""])[0]
        first = first if len(first) <= 300 else first[:300] + " ..."
        raise SpecError(f"PySD could not parse the file: {type(err).__name__}: {first}", str(path)) from err


def _keep_minus(self, n, vc):
    # PySD's own visit_neg_expr turns "-" + number into a negative number, which loses the
    # difference between -2^2 (= -(2^2)) and (-2)^2; marking the minus like any other
    # negated operand makes PySD build the "negative" operation where the file wrote it.
    if vc[0] == "-":
        self.negatives.add(vc[2])
    return vc[2]


@contextmanager
def _unary_minus_kept():
    """Parse with PySD's equation visitors keeping a unary minus before a number as an operation.

    PySD's equation visitors fold ``-2`` into the number -2 before the operators around it are
    grouped, so ``-2^2`` (Vensim: -4) and ``(-2)^2`` (4) give the same tree. The visitors are
    patched for the duration of one parse and restored after it (not thread-safe: parse one
    file at a time)."""
    from pysd.translators.vensim import vensim_element
    from pysd.translators.xmile import xmile_element

    visitors = [vensim_element.EquationVisitor, xmile_element.EquationVisitor]
    saved = [v.__dict__["visit_neg_expr"] for v in visitors]
    try:
        for v in visitors:
            v.visit_neg_expr = _keep_minus
        yield
    finally:
        for v, f in zip(visitors, saved):
            v.visit_neg_expr = f


def _xmile_non_negative_tags(path: Path) -> list[str]:
    """Every ``<non_negative>`` of an XMILE file that PySD does not read, as problems.

    PySD reads the tag on a ``<stock>`` and a ``<flow>`` and in the top-level ``<behavior>``
    (directly or under its ``<stock>``/``<flow>``); anywhere else it would be dropped without
    a word, so it is refused here."""
    from lxml import etree

    try:
        # no entity expansion, no network: a stranger's file reads as plain markup
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.parse(str(path), parser).getroot()
    except Exception:  # noqa: BLE001 - PySD already parsed the file; say nothing twice
        return []

    def tag(node):
        return etree.QName(node).localname if node is not None else None

    problems = []
    for node in root.iter("{*}non_negative"):
        parent = node.getparent()
        grand = parent.getparent()
        if (
            tag(parent) in ("stock", "flow")
            and tag(grand) == "variables"
            or tag(parent) == "behavior"
            and grand is root
            or tag(parent) in ("stock", "flow")
            and tag(grand) == "behavior"
            and grand.getparent() is root
        ):
            continue
        owner = parent.get("name")
        problems.append(
            f"<non_negative/> inside <{tag(parent)}"
            + (f" name={owner!r}" if owner else "")
            + "> is not supported (only on a stock, a flow or in the top-level <behavior>)"
        )
    return problems


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
    return f"sdmodel.translate 2 / pysd {pysd_version}"


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
    if math.isnan(v):
        raise _Unsupported(_NA)
    if math.isinf(v):
        raise _Unsupported("an infinite number")
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
        self.names: dict[str, str] = {}  # original -> ours
        self.refs: dict[str, str] = {}  # PySD reference (lower, _) -> ours
        self.taken: set[str] = set()
        self.table_kind: dict[str, str] = {}
        self.asts: dict[str, object] = {}  # ours -> PySD's expression tree
        self.non_negative: list[tuple[str, str, object]] = []  # (original, ours, net flow)

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
            self.problems.append(
                "subscripts are not supported (subscript ranges: " + ", ".join(s.name for s in main.subscripts) + ")"
            )
        from pysd.translators.structures.abstract_model import AbstractControlElement, AbstractData, AbstractLookup

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
            self.asts[ours] = comp.ast
            doc = " ".join(str(el.documentation or "").split())
            unit = str(el.units or "").strip()
            try:
                if isinstance(comp, AbstractData):
                    raise _Unsupported("data variables (:=, GET DATA)")
                if isinstance(comp, AbstractLookup):
                    self.lookup_table(ours, comp.ast, doc, unit)
                else:
                    self.element(ours, comp.ast, doc, unit)
                    if getattr(comp.ast, "non_negative", False):
                        self.non_negative.append((el.name, ours, comp.ast.flow))
            except _Unsupported as err:
                self.problems.append(f"{el.name!r}: {err} is not supported")
        for original, ours, flow in self.non_negative:
            try:
                self.limit_outflow(original, ours, flow)
            except _Unsupported as err:
                self.problems.append(f"{original!r}: {err} is not supported")
        if self.path.suffix.lower() in XMILE_SUFFIXES:
            self.problems += _xmile_non_negative_tags(self.path)
        missing = [k for k in ("start", "stop", "dt") if k not in self.time]
        if missing:
            self.problems.append(
                "the control section lacks "
                + ", ".join({"start": "INITIAL TIME", "stop": "FINAL TIME", "dt": "TIME STEP"}[k] for k in missing)
            )
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
            if math.isnan(float(ast)):
                raise _Unsupported(_NA)
            return float(ast)
        if isinstance(ast, ae.ArithmeticStructure):
            vals = [self.constant(a) for a in ast.arguments]
            if any(v is None for v in vals):
                return None
            if ast.operators == ["negative"]:
                return -vals[0]
            try:
                v = eval_chain(ast.operators, vals)
            except (ZeroDivisionError, OverflowError):
                return None  # written out as an expression: the model check names the division
            if isinstance(v, complex):
                # Python's ** gives a complex number where Vensim and PySD have no real value
                raise _Unsupported("a negative number raised to a non-integer power")
            return float(v)
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

    def limit_outflow(self, original, stock, net):
        """Stella's non-negative stock: cut its outflow back to what the stock can give.

        With inflows ``I`` (all uniflows) and one uniflow outflow ``O``, the outflow becomes
        ``min(O, max(S / DT + I, 0))``: under Euler at the file's DT the stock then ends a step
        at exactly 0 instead of below it, and the stock the outflow feeds receives only what
        left (PySD instead clamps the stock and leaves the flow as it was, so its stock values
        are the same and the flow's are not). Several outflows share what is left by Stella's
        outflow priority and a biflow may run backwards: those cases are refused.
        """
        inflows, outflows = self.stock_flows(net)
        for kind, flows in (("inflow", inflows), ("outflow", outflows)):
            for f in flows:
                if not self.is_uniflow(f):
                    raise _Unsupported(
                        f"a non-negative stock with the biflow {kind} {f!r} "
                        "(<non_negative/> on the flow would make it a uniflow)"
                    )
        if len(outflows) > 1:
            raise _Unsupported(
                f"a non-negative stock with {len(outflows)} outflows ({', '.join(outflows)}: Stella's outflow priority)"
            )
        if not outflows:
            return  # uniflows in only: the stock cannot fall
        (out,) = outflows
        if out not in self.equations or "dt" not in self.time:
            raise _Unsupported(f"a non-negative stock whose outflow {out!r} is not an equation")
        supply = " + ".join([f"{stock} / {_num(self.time['dt'])}", *inflows])
        self.equations[out] = f"min({self.equations[out]}, max({supply}, 0))"

    def stock_flows(self, net) -> tuple[list[str], list[str]]:
        """The inflow and outflow names of an XMILE stock, from PySD's net-flow tree."""
        from pysd.translators.structures import abstract_expressions as ae

        def name(a):
            if isinstance(a, ae.ReferenceStructure) and not a.subscripts and a.reference in self.refs:
                return self.refs[a.reference]
            raise _Unsupported("a non-negative stock whose flows are not plain flow names")

        def term(a):  # (sign, name)
            if isinstance(a, ae.ArithmeticStructure) and a.operators == ["negative"]:
                return -1, name(a.arguments[0])
            return 1, name(a)

        if isinstance(net, (int, float)) and net == 0:
            return [], []
        if isinstance(net, ae.ArithmeticStructure) and net.operators != ["negative"]:
            if any(o not in ("+", "-") for o in net.operators):
                raise _Unsupported("a non-negative stock whose flows are not plain flow names")
            terms = [term(net.arguments[0])] + [
                (-1 if o == "-" else 1, name(a)) for o, a in zip(net.operators, net.arguments[1:])
            ]
        else:
            terms = [term(net)]
        return [n for s, n in terms if s > 0], [n for s, n in terms if s < 0]

    def is_uniflow(self, name) -> bool:
        """Whether a flow is an XMILE uniflow: PySD writes ``<non_negative/>`` as ``max(flow, 0)``."""
        from pysd.translators.structures import abstract_expressions as ae

        ast = self.asts.get(name)
        return (
            isinstance(ast, ae.CallStructure)
            and ast.function.reference == "max"
            and len(ast.arguments) == 2
            and isinstance(ast.arguments[1], (int, float))
            and ast.arguments[1] == 0
        )

    def initial_value(self, ast, owner):
        v = self.constant(ast)
        return v if v is not None else self.expr(ast, owner)

    def lookup_table(self, name, ast, doc, unit):
        from pysd.translators.structures import abstract_expressions as ae

        if not isinstance(ast, ae.LookupsStructure):
            kind = type(ast).__name__
            raise _Unsupported(_GET_NAMES.get(kind) or _NAMES.get(kind, f"a lookup given as {kind}"))
        xs, ys = [float(x) for x in ast.x], [float(y) for y in ast.y]
        if any(math.isnan(v) or math.isinf(v) for v in xs + ys):
            raise _Unsupported(f"a lookup table with {_NA} or an infinite point")
        kind = getattr(ast, "type", "interpolate") or "interpolate"
        if kind not in ("interpolate", "extrapolate"):
            raise _Unsupported(f"a {kind!r} lookup table")
        self.lookups[name] = {
            "points": [[x, y] for x, y in zip(xs, ys)],
            **({"doc": doc} if doc else {}),
            **({"unit": unit} if unit else {}),
        }
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
            if ast.reference == "pi" and "pi" not in self.refs:  # Vensim's constant PI
                return _num(math.pi)
            if ast.reference not in self.refs:
                raise _Unsupported(f"the undefined name {ast.reference!r}")
            return self.refs[ast.reference]
        if isinstance(ast, ae.ArithmeticStructure):
            args = [self.expr(a, owner) for a in ast.arguments]
            if ast.operators == ["negative"]:
                return f"(-{args[0]})"
            if ast.operators[0] == "^":  # right to left, as Python's **
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
        kind = type(ast).__name__
        raise _Unsupported(_GET_NAMES.get(kind) or _NAMES.get(kind, f"the construct {kind}"))

    def cond(self, ast, owner, negate=False) -> str:
        """A condition (our comparison syntax), negated by De Morgan where ``negate``."""
        from pysd.translators.structures import abstract_expressions as ae

        if not isinstance(ast, ae.LogicStructure):
            return f"({self.expr(ast, owner)} {'==' if negate else '!='} 0)"
        args = ast.arguments
        # Vensim writes :AND: :OR: :NOT: (any case), XMILE and/or/not; PySD keeps the spelling
        ops = [o.strip().strip(":").upper() for o in ast.operators]
        if ops == ["NOT"]:
            return self.cond(args[0], owner, not negate)
        if ops[0] in ("AND", "OR"):
            if any(o not in ("AND", "OR") for o in ops):
                raise _Unsupported(f"the logical operators {ast.operators}")
            # PySD nests a flat chain from the right with equal precedence: a AND b OR c = a AND (b OR c)
            out = self.cond(args[-1], owner, negate)
            for op, a in zip(reversed(ops), reversed(args[:-1])):
                is_and = (op == "AND") != negate
                out = f"({self.cond(a, owner, negate)} {'&' if is_and else '|'} {out})"
            return out
        if len(ops) != 1 or ops[0] not in ("=", "<>", "<", "<=", ">", ">="):
            raise _Unsupported(f"the comparison {' '.join(ast.operators)}")
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
        arity = {
            "if_then_else": 3,
            "min": 2,
            "max": 2,
            "step": 2,
            "ramp": 3,
            "pulse": 2,
            "power": 2,
            "log": 2,
            "xidz": 3,
            "zidz": 2,
            "modulo": 2,
            **{k: 1 for k in _FUNCS1},
        }
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
        if f == "modulo":  # Vensim MODULO = x - m * INTEGER(x / m): the sign of x, as PySD computes it
            return f"modulo({a[0]}, {a[1]})"
        if f == "log":
            return f"(log({a[0]}) / log({a[1]}))"
        if f == "xidz":
            return f"if_(abs({a[1]}) < {_SMALL}, {a[2]}, {a[0]} / {a[1]})"
        if f == "zidz":
            return f"if_(abs({a[1]}) < {_SMALL}, 0, {a[0]} / {a[1]})"
        half = _num(self.time.get("dt", 1.0) / 2)
        if f == "step":  # PySD: height * (t + dt/2 > t0): on at the grid point nearest t0
            return f"({a[0]} * if_(t + {half} > {a[1]}, 1, 0))"
        if f == "ramp":  # PySD: (t + 1e-6 > start) * slope * (min(end, t) - start)
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
        init = f"{_num(init)} * {T} / {n}" if init is not None else f"({self.expr(ast.initial, owner)}) * {T} / {n}"
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
            out = v**out
        return out
    out = vals[0]
    for op, v in zip(ops, vals[1:]):
        out = {"+": out + v, "-": out - v, "*": out * v, "/": out / v}[op]
    return out


__all__ = ["SUFFIXES", "Translation", "abstract_model", "read_sd_file"]
