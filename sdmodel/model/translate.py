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
  ``SMOOTH3I``/``SMOOTH N`` (XMILE ``SMTH1``/``SMTH3``/``SMTHN``) and ``DELAY1``/``DELAY1I``/
  ``DELAY3``/``DELAY3I``/``DELAY N`` (XMILE ``DELAYN``) are chains of hidden stocks named
  ``<element>__s1``, ``<element>__d1``, ...; the order of ``SMOOTH N`` and ``DELAY N`` must be a
  constant whole number (it is the number of stocks), and ``DELAY N``'s delay time constant in
  time (numbers and constants: Vensim's DELAY N with a moving delay time uses earlier steps'
  delay times stage by stage, which is not reproduced); ``INITIAL(x)`` is a stock that does not move;
- ``DELAY FIXED`` (XMILE ``DELAY``) is a pure delay: ``n = round(delay time / TIME STEP)``
  (at least 1) hidden stocks ``<element>__f1..fn`` passed on one to the next every step
  (``d(f1) = (input - f1) / DT``, ``d(fk) = (f(k-1) - fk) / DT``), so under Euler at the file's
  TIME STEP ``fn`` is exactly the input of n steps before (the initial value until then), as in
  Vensim and PySD. The delay time must be a number or constants (only its start value counts);
  the constants it uses become equations, not parameters, since they fix the number of stocks.
  Under another method or step the chain would be a smoothing, not a fixed delay, so the model's
  ``time: locked`` says why and a run with another method or step is refused;
- ``TREND`` and ``FORECAST`` (XMILE ``TREND``, ``FORCST``) are one hidden stock ``<element>__av``
  (the average value) and Vensim's documented equations: ``TREND = ZIDZ(input - AV, average time
  * ABS(AV))`` with ``AV`` starting at ``input / (1 + initial trend * average time)``;
  ``FORECAST = input * (1 + ZIDZ(input - AV, average time * AV) * horizon)`` with ``AV`` starting
  at the input (an XMILE ``FORCST`` with a non-zero initial trend is refused: PySD starts it at
  ``input / (1 + initial trend)``, which disagrees with ``TREND``);
- ``ACTIVE INITIAL(active, initial)`` is ``active``; wherever an initial value (of a stock, a
  smooth, a delay, ...) reaches the element, a hidden equation ``<element>__init`` with
  ``initial`` in its place is used instead, so the initial-value computation sees ``initial``;
- ``STEP``, ``RAMP``, ``PULSE``, ``PULSE TRAIN``, ``IF THEN ELSE``, ``MIN``/``MAX``,
  ``XIDZ``/``ZIDZ`` and the usual maths become expressions with PySD's exact timing (``STEP``
  switches at the first step with ``t + dt/2 > t0``; ``PULSE`` is on for ``start <= t < start +
  width``; ``PULSE TRAIN(start, width, interval, end)`` is on for ``start <= t < end`` where
  ``(t - start + 1e-6)`` modulo the interval is below the width, and is one pulse when the
  interval is 0).

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

Subscripts (Vensim) and arrays (XMILE) are expanded: every cell of a subscripted element is a
scalar of its own, named ``<element>__<e1>__<e2>`` (model names are identifiers, so the brackets
cannot stay), and :attr:`Translation.names` maps Vensim's name of the cell, ``stock[north,a]``, to
it; the cell's doc begins with that name. What is expanded:

- subscript ranges, ranges built from subranges, subranges, copies (``a <-> b``); equations per
  element, per range or subrange, with ``:EXCEPT:``; constants given as lists (``a[r] = 1, 2``,
  2-D lists by rows); subscripted lookups (one table per element, or one for the range); INTEG,
  SMOOTH, DELAY, ... of subscripted elements (hidden stocks per cell);
- on the right of an equation, a range bound on the left gives its element; a range bound
  through a subrange or superrange of it, the element bound there; a range mapped
  (``r2: a, b -> r1``) to or from a bound range, the element in the same place, or mapped onto a
  list of elements (``r2: a, b -> (r1: y, x)``: ``a`` is ``y``, ``b`` is ``x``; PySD 3.14 adds
  the listed elements to ``r2`` itself, so the list is read from the file's text); a range or
  element used as a value is its number (from 1) in its main range, as in Vensim and PySD;
- ``SUM``, ``PROD``, ``VMIN``, ``VMAX`` over ``range!`` subscripts: one term per element;
  ``VECTOR SELECT`` over one ``range!`` with a constant action (0 to 10) and error action 0, as
  PySD computes it (action 5 is the product of expression ^ selection);
- XMILE: ``<dimensions>`` with named ``<elem>`` or a ``size`` (elements ``1`` .. size), arrayed
  variables (apply-to-all or ``<element>`` entries), and an arrayed variable named without
  subscripts inside an arrayed equation (the element of the same dimensions);
- XMILE's array builtins ``SUM``, ``PROD``, ``MIN``, ``MAX`` (one argument), ``MEAN`` and ``SIZE``
  over the wildcard ``*`` (``SUM(a[*, 1])``, ``MEAN(w[country, *])``) or an arrayed variable named
  without subscripts (the whole array), one term per element; ``MEAN(x, y, ...)`` of several
  arguments is their mean; outside a builtin, ``*`` is the element the left side binds in that
  dimension (``b[country] = a[*, 2]``) and a whole number is an index from 1 (``a[2, 1]``).
  PySD's XMILE grammar has no ``*`` in a subscript list, so each is read as a placeholder name
  while PySD parses the file.

Refused by name: a range read from a file, an XMILE dimension with neither elements nor a size, a mapping onto
a list that does not give one element of the target for each element, a range on the right that the
left does not bind, reading an undefined cell, the other vector functions (``VECTOR ELM MAP``: PySD
3.14 has none to check it against; ``VECTOR SORT ORDER`` and ``VECTOR RANK``: ties), XMILE's
``STDDEV`` (the texts at hand do not say whether it divides by n or n - 1) and ``RANK`` (nor how it
breaks ties), an XMILE array builtin over a bare arrayed name in an equation arrayed over the same
dimension (which dimensions it reduces is ambiguous), and XMILE ranges ``a[1:3]``, dimension
positions ``@1`` and the transpose ``'`` (each named with its variable and line).

Macros (``:MACRO: ... :END OF MACRO:``) are expanded inline: each call's macro elements become
hidden elements ``<caller>__<macro>`` (the output) and ``<caller>__<macro>_<element>``, with the
call's arguments in place of the parameters; a macro with extra outputs is refused.
``GET DIRECT DATA`` / ``GET XLS DATA`` (a data variable, ``:=``), ``GET DIRECT LOOKUPS`` and
``GET DIRECT CONSTANTS`` (one cell) read a CSV or text file, or an ``.xlsx`` workbook, beside the
model as PySD reads it (a column letter or a row number for the times, the first value's cell);
data is a lookup of time, linear between the points and held beyond them (PySD's default). A
blank cell inside a series, times that do not increase, another interpolation keyword and GET
functions in subscripted elements are refused.

Anything else (data without a GET function, ``SAMPLE IF TRUE``, random numbers, ...) is refused
with a :class:`~sdmodel.core.errors.SpecError` that names every unsupported construct and the element
using it. Names become identifiers (lower case, ``_`` for spaces and other characters);
:func:`read_sd_file` also returns the map from original names.

PySD is an optional dependency (``pip install "sdmodel[pysd]"``).
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdmodel.core.errors import SpecError
from sdmodel.model.names import RESERVED

#: File suffixes read as Vensim or XMILE models.
VENSIM_SUFFIXES = (".mdl",)
XMILE_SUFFIXES = (".xmile", ".stmx", ".xml")
SUFFIXES = VENSIM_SUFFIXES + XMILE_SUFFIXES

_SMALL = 1e-6  # PySD's SMALL_VENSIM tolerance in RAMP, PULSE, XIDZ and ZIDZ
_CONTROL = {"initial_time": "start", "final_time": "stop", "time_step": "dt", "saveper": None}
_NAMES = {  # structures PySD parses that the ODE engine cannot hold, by their Vensim names
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
#: stateful structures by the names a message gives them
_KINDS = {
    "DelayStructure": "DELAY1/DELAY3",
    "DelayNStructure": "DELAY N",
    "DelayFixedStructure": "DELAY FIXED",
    "SmoothStructure": "SMOOTH",
    "SmoothNStructure": "SMOOTH N",
    "TrendStructure": "TREND",
    "ForecastStructure": "FORECAST",
}
#: the most stocks one DELAY FIXED may become (delay time / TIME STEP)
MAX_FIXED_DELAY_STEPS = 2000
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


#: vector functions over a ``!`` dimension: how the values of its elements combine
_VECTOR = {"sum": "SUM", "prod": "PROD", "vmin": "VMIN", "vmax": "VMAX"}
#: XMILE's array builtins (one argument over an array, a slice ``a[*, 1]`` or an arrayed expression), by
#: the names PySD's XMILE parser gives them (``MIN``/``MAX`` of one argument are ``vmin_xmile``/``vmax_xmile``)
_XMILE_VECTOR = {
    "sum": "SUM",
    "prod": "PROD",
    "vmin_xmile": "MIN",
    "vmax_xmile": "MAX",
    "mean": "MEAN",
    "size": "SIZE",
    "stddev": "STDDEV",
    "rank": "RANK",
}
#: what an XMILE wildcard ``*`` in a subscript list reads as (PySD's XMILE grammar has no ``*`` there)
_STAR = "sdmodelstar"
#: the most scalars the subscripted elements of one file may expand into
MAX_CELLS = 20000
#: what shows that an XMILE equation PySD could not parse uses an array builtin
_XMILE_ARRAY_BUILTIN = re.compile(r"\[[^\]]*:[^\]]*\]|\[[^\]]*@|\]\s*'", re.IGNORECASE)


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
    xmile = path.suffix.lower() not in VENSIM_SUFFIXES
    try:
        with _unary_minus_kept(), warnings.catch_warnings():
            # PySD warns on every subscript mapping that it "works only for simple cases": the mappings
            # this module reads are the simple ones, and the others are refused (see _Subscripts)
            warnings.filterwarnings("ignore", message=r"\s*Subscript mapping detected")
            f = XmileFile(path) if xmile else VensimFile(path)
            f.parse()
            return f.get_abstract_model()
    except SpecError:
        raise
    except _EquationError as err:
        raise SpecError(err.message(), str(path)) from err.__cause__
    except Exception as err:  # noqa: BLE001 - PySD's parser raises many kinds; name the file
        # the first line only: parsimonious appends the whole parse tree to some of its errors
        first = (str(err).strip().splitlines() or [""])[0]
        first = first if len(first) <= 300 else first[:300] + " ..."
        raise SpecError(f"PySD could not parse the file: {type(err).__name__}: {first}", str(path)) from err


class _EquationError(Exception):
    """An XMILE equation PySD could not parse: the variable, its line in the file, the equation."""

    def __init__(self, name: str, line: int | None, equation: str, err: Exception, structure: bool = False):
        super().__init__(name)
        self.name, self.line, self.equation, self.err, self.structure = name, line, equation, err, structure

    def message(self) -> str:
        eqn = " ".join(self.equation.split())
        eqn = eqn if len(eqn) <= 200 else eqn[:200] + " ..."
        where = f"{self.name!r}" + (f" (line {self.line})" if self.line else "")
        if self.structure:
            first = (str(self.err).strip().splitlines() or [""])[0][:200]
            return (
                f"{where}: PySD's XMILE reader could not read this variable's definition "
                f"({type(self.err).__name__}: {first}), so the file is not imported"
            )
        m = _XMILE_ARRAY_BUILTIN.search(eqn)
        if m:
            return (
                f"{where}: the XMILE array range, dimension position or transpose {m.group(0)!r} is not supported "
                f"(only element names, indices and the wildcard '*'; in the equation {eqn!r})"
            )
        call = re.search(r"\b(MIN|MAX)\s*\(", eqn, re.IGNORECASE)
        if "KeyError" in f"{type(self.err).__name__}: {self.err}" and call:
            return f"{where}: {call.group(1).upper()} with more than two arguments is not supported (in {eqn!r})"
        first = (str(self.err).strip().splitlines() or [""])[0]
        first = first if len(first) <= 300 else first[:300] + " ..."
        return f"{where}: PySD could not parse the equation {eqn!r} ({type(self.err).__name__}: {first})"


def _star_subscripts(expression: str) -> str:
    """An XMILE equation with each wildcard ``*`` of a subscript list written as :data:`_STAR` (a name
    PySD's grammar reads); a ``*`` between brackets is never a product there."""

    def one(m: re.Match) -> str:
        parts = m.group(1).split(",")
        return "[" + ",".join(_STAR if p.strip() == "*" else p for p in parts) + "]"

    return re.sub(r"\[([^\[\]]*)\]", one, expression)


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
    xmile_parse = xmile_element.Element.__dict__["_smile_parser"]

    def smile_parser(self, expression):
        # XMILE's wildcard and the variable an equation PySD cannot read belongs to (see _EquationError)
        try:
            return xmile_parse(self, _star_subscripts(expression or ""))
        except Exception as err:  # noqa: BLE001 - parsimonious raises many kinds
            node = getattr(self, "node", None)
            raise _EquationError(
                str(getattr(self, "name", "?")), getattr(node, "sourceline", None), expression or "", err
            ) from err

    element_parse = xmile_element.Element.__dict__["parse"]

    def parse(self, behaviors):
        # a variable PySD cannot read (not its equation: its structure), named with its line
        try:
            return element_parse(self, behaviors)
        except _EquationError:
            raise
        except Exception as err:  # noqa: BLE001 - PySD raises many kinds
            node = getattr(self, "node", None)
            raise _EquationError(
                str(getattr(self, "name", "?")), getattr(node, "sourceline", None), "", err, structure=True
            ) from err

    try:
        for v in visitors:
            v.visit_neg_expr = _keep_minus
        xmile_element.Element._smile_parser = smile_parser
        xmile_element.Element.parse = parse
        yield
    finally:
        for v, f in zip(visitors, saved):
            v.visit_neg_expr = f
        xmile_element.Element._smile_parser = xmile_parse
        xmile_element.Element.parse = element_parse


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


def _xmile_dimension_sizes(path: Path) -> dict[str, int]:
    """The size of each top-level XMILE ``<dim>`` given by ``size=`` without ``<elem>`` entries (PySD reads
    such a dimension as one without elements)."""
    from lxml import etree

    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.parse(str(path), parser).getroot()
    except Exception:  # noqa: BLE001 - PySD already parsed the file; say nothing twice
        return {}
    sizes = {}
    for node in root.iterfind("{*}dimensions/{*}dim"):
        size = str(node.get("size", "")).strip()
        if size.isdigit() and int(size) >= 1 and node.find("{*}elem") is None:
            sizes[str(node.get("name"))] = int(size)
    return sizes


@dataclass
class Translation:
    """The sdmodel model dict of an imported file, and original name -> model name."""

    model: dict
    names: dict[str, str] = field(default_factory=dict)
    #: how each built-in that is not a plain expression was translated (the import report)
    notes: list[str] = field(default_factory=list)
    #: each subscripted element's cells: original element name -> {``name[e1,e2]``: model name}
    subscripts: dict[str, dict[str, str]] = field(default_factory=dict)


def fingerprint() -> str:
    """What the translation depends on besides the file: this module and PySD's version."""
    try:
        from importlib.metadata import version

        pysd_version = version("pysd")
    except Exception:  # noqa: BLE001 - not installed: reading will say so
        pysd_version = "none"
    return f"sdmodel.model.translate 5 / pysd {pysd_version}"


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
    try:
        return _Translator(path, am).run()
    except SpecError:
        raise
    except Exception as err:  # noqa: BLE001 - no input may end in a traceback; say it is ours
        raise SpecError(
            f"the importer failed on this file ({type(err).__name__}: {str(err)[:200]}): a bug in "
            "sdmodel.model.translate, not in the file; please report it with the file",
            str(path),
        ) from err


def import_report(path: str | Path) -> str:
    """What the import of a Vensim or XMILE file made of it (``sdmodel check`` prints it).

    One line of counts, then one line per built-in that became more than an expression (the
    stocks it added, what holds only under the file's own method and step) and per constant
    kept as an equation; what blocks an import is the :class:`SpecError` of :func:`read_sd_file`."""
    path = Path(path)
    tr = read_sd_file(path)
    m = tr.model
    ours = set(tr.names.values())
    stocks = list(m.get("stocks", {}))
    added = [s for s in stocks if s not in ours]
    eqs = [e for e in m["equations"] if not e.startswith("d(")]
    kind = "Vensim" if path.suffix.lower() in VENSIM_SUFFIXES else "XMILE"
    n_elements = len(tr.names) - sum(len(c) for c in tr.subscripts.values()) + len(tr.subscripts)
    counts = [
        _count(n_elements, "element") + " ->",
        _count(len(stocks), "stock") + f" ({len(added)} added by built-ins),",
        _count(len(m.get("parameters", {})), "parameter") + ",",
        _count(len(eqs), "equation") + ",",
        _count(len(m.get("lookups", {})), "lookup") + ";",
    ]
    head = (
        f"Imported from the {kind} file {path.name} ({fingerprint().split(' / ')[1]}): {' '.join(counts)} "
        f"Euler at dt {_num(m['time']['dt'])}"
    )
    body = tr.notes or ["every element is a stock, a parameter, a lookup or an equation as written"]
    return "\n".join([head, *("  " + n for n in body)])


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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
    """A construct the importer does not reproduce: the message names it ("... is not supported")."""


class _Refused(_Unsupported):
    """A construct the importer reads, refused for what this file gives it: the message says it all."""


def _problem(where: str, err: _Unsupported) -> str:
    return f"{where!r}: {err}" + ("" if isinstance(err, _Refused) else " is not supported")


def _walk_ast(a, visit) -> None:
    """Call ``visit`` on the node ``a`` of a PySD abstract syntax tree and on every node below it (lists,
    tuples and the fields of its dataclasses); below a node where ``visit`` returns False it does not go."""
    if not visit(a):
        return
    if isinstance(a, (list, tuple)):
        for x in a:
            _walk_ast(x, visit)
    elif hasattr(a, "__dataclass_fields__"):
        for name in a.__dataclass_fields__:
            _walk_ast(getattr(a, name), visit)


def _key(name: str) -> str:
    """How Vensim compares names: case, ``_`` and runs of spaces do not count."""
    return " ".join(str(name).replace("_", " ").lower().split())


class _Subscripts:
    """The subscript ranges of a file: each range's elements (subranges expanded), mappings, positions.

    Keys are :func:`_key` forms; ``spelling`` keeps each element's and range's first spelling (for
    names such as ``stock[north]``). An XMILE dimension given by its size has the elements ``1`` ..
    size; a mapping onto a list of elements (``-> (range: a, b)``) pairs them in order. A range defined
    from a file, a dimension with neither elements nor a size, and a list of the wrong length are
    refused by name."""

    def __init__(self, ranges, text: str, problems: list[str], sizes: dict[str, int] | None = None):
        self.ranges: dict[str, list[str]] = {}
        self.mapping: dict[str, list[str]] = {}
        self.spelling: dict[str, str] = {}
        raw: dict[str, object] = {}
        #: a mapping onto a list of elements, from the file's text: range -> [(target range, its elements)]
        lists: dict[str, list[tuple[str, list[str]]]] = {}
        for m in re.finditer(r"^\s*([^:~|\n]+?)\s*:[^~|]*?->([^~|]*)", text, re.MULTILINE):
            for onto in re.finditer(r"\(\s*([^:()]+?)\s*:\s*([^()]*)\)", m.group(2)):
                listed = [_key(e) for e in onto.group(2).split(",") if e.strip()]
                lists.setdefault(_key(m.group(1)), []).append((_key(onto.group(1)), listed))
        for r in ranges:
            k = _key(r.name)
            self.spelling.setdefault(k, r.name)
            if isinstance(r.subscripts, dict):
                problems.append(
                    f"subscript range {r.name!r}: ranges read from a file (GET ... SUBSCRIPT) are not supported"
                )
                continue
            elements = list(r.subscripts)
            if not elements and (sizes or {}).get(r.name):
                # XMILE 1.0 (3.7.1): a dimension given by its size has the elements 1 .. size
                elements = [str(i) for i in range(1, (sizes or {})[r.name] + 1)]
            if not elements:
                problems.append(
                    f"subscript range {r.name!r} has no elements (neither named elements nor a whole size of at "
                    "least 1) is not supported"
                )
                continue
            extra = [e for _, listed in lists.get(k, []) for e in listed]
            if extra:
                # PySD 3.14 appends the elements of '-> (range: a, b)' to the range's own: taken off again
                if [_key(e) for e in elements[-len(extra) :]] != extra:
                    problems.append(f"subscript range {r.name!r}: its mapping onto a list of elements is not supported")
                    continue
                elements = elements[: -len(extra)]
            raw[k] = elements
            bad = [m for m in r.mapping if not isinstance(m, str)]
            if bad:
                problems.append(f"subscript range {r.name!r}: the mapping {bad!r} is not supported")
            self.mapping[k] = [_key(m) for m in r.mapping if isinstance(m, str)]
        self.lists = {(k, t): listed for k, pairs in lists.items() for t, listed in pairs}

        def expand(k: str, seen: frozenset) -> list[str]:
            v = raw[k]
            if isinstance(v, str):  # a copy (a <-> b): the elements of b
                if _key(v) not in raw or _key(v) in seen:
                    raise _Unsupported(f"subscript range {self.spelling[k]!r} copies the unknown range {v!r}")
                return expand(_key(v), seen | {k})
            out: list[str] = []
            for e in v:  # type: ignore[attr-defined]
                ek = _key(e)
                if ek in raw and ek != k and ek not in seen:  # a range built from subranges
                    out += expand(ek, seen | {k})
                else:
                    self.spelling.setdefault(ek, str(e))
                    out.append(ek)
            return out

        for k in raw:
            try:
                els = expand(k, frozenset())
            except _Unsupported as err:
                problems.append(str(err))
                continue
            if len(set(els)) != len(els):
                problems.append(f"subscript range {self.spelling[k]!r} lists an element twice")
            self.ranges[k] = els
        self.elements = {e for els in self.ranges.values() for e in els} - set(self.ranges)
        #: each mapping (range, target) -> {element of range: element of target}; None where the lengths differ
        self.pairs: dict[tuple[str, str], dict[str, str] | None] = {}
        for k, targets in self.mapping.items():
            for t in targets:
                if k not in self.ranges or t not in self.ranges:
                    continue
                mine, theirs = self.ranges[k], self.ranges[t]
                onto_list = self.lists.get((k, t))
                if onto_list is not None:
                    wrong = [e for e in onto_list if e not in theirs]
                    if len(onto_list) != len(mine) or wrong:
                        problems.append(
                            f"subscript range {self.spelling[k]!r}: the mapping onto ({self.spelling[t]}: "
                            f"{', '.join(self.spelling.get(e, e) for e in onto_list)}) is not supported (one element "
                            f"of {self.spelling[t]!r} for each of the {len(mine)} elements of {self.spelling[k]!r})"
                        )
                        continue
                    self.pairs[(k, t)] = dict(zip(mine, onto_list))
                else:
                    self.pairs[(k, t)] = dict(zip(mine, theirs)) if len(mine) == len(theirs) else None

    def expand(self, name: str) -> list[str]:
        """The elements a subscript on the left of an equation stands for (a range, or one element)."""
        k = _key(name)
        if k in self.ranges:
            return self.ranges[k]
        if k in self.elements:
            return [k]
        raise _Unsupported(f"the unknown subscript {name!r}")

    def main(self, k: str) -> list[str]:
        """The largest range holding every element of range ``k`` (or element ``k``): positions count there."""
        want = set(self.ranges.get(k, [k]))
        best = max((r for r in self.ranges.values() if want <= set(r)), key=len)
        return best

    def position(self, k: str, element: str) -> int:
        """An element's number (from 1) in the main range of ``k``, as Vensim and PySD give a subscript's value."""
        return self.main(k).index(element) + 1


@dataclass
class _Cell:
    """One scalar of a subscripted element: its model name, its name as Vensim writes it, its equation."""

    ours: str
    label: str
    ast: object
    env: dict[str, str]  # range key -> the element it stands for in this cell
    component: object


@dataclass
class _Array:
    """A subscripted element: its cells by element keys, and the ranges named at each position."""

    name: str
    cells: dict[tuple, _Cell] = field(default_factory=dict)
    dims: list[set[str]] = field(default_factory=list)


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
        self.el_ast: dict[str, object] = {}  # PySD reference -> the element's expression tree
        self.originals: dict[str, str] = {}  # ours -> original name
        self.initial_stage = False  # translating for the initial-value computation (ACTIVE INITIAL)
        self.init_variants: dict[str, str] = {}  # PySD reference -> its hidden initial-stage equation
        self.needs: dict[str, bool] = {}  # PySD reference -> reaches ACTIVE INITIAL at the start
        self.structures: dict[object, str] = {}  # id of a PySD node (and the cell) -> its translation
        self.frozen: dict[str, str] = {}  # ours -> why a constant must stay fixed (not a parameter)
        self.notes: list[str] = []
        self.fixed_delays: list[str] = []
        self.xmile = path.suffix.lower() in XMILE_SUFFIXES
        self.subs: _Subscripts | None = None
        self.arrays: dict[str, _Array] = {}  # PySD reference -> a subscripted element's cells
        self.env: dict[str, str] = {}  # range key (``key!`` inside a vector function) -> its element here
        self.cell_count = 0
        self.macros: dict[str, Any] = {}  # macro name (PySD reference) -> its section
        self.macro_args: dict[str, str] = {}  # inside a macro's expansion: parameter -> the argument
        self.macro_depth = 0
        self.cell_names: set[str] = set()  # the model names of subscripted cells
        self.failed: set[str] = set()  # subscripted elements refused (their readers say so, briefly)
        self.sheets: dict[tuple[str, str], object] = {}  # (file, tab) -> its cells as numbers
        self.lines: dict[str, int] | None = None  # element key -> the line of the file defining it

    # -- where an element is in the file (for the messages) -------------------------------
    def problem(self, where: str, err: _Unsupported) -> str:
        """:func:`_problem`, with the line of the file where the element (``where`` less its
        subscripts) is defined, where it can be found."""
        line = self.line_of(where.split("[")[0])
        return _problem(where, err) + (f" (line {line})" if line else "")

    def line_of(self, name: str) -> int | None:
        """The line (from 1) that defines the element ``name``: in a Vensim file the first line that
        starts with the name (then ``[``, ``=``, ``(`` or ``:``); in an XMILE file the first ``name=``
        attribute naming it."""
        if self.lines is None:
            self.lines = {}
            try:
                text = self.path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            pattern = (
                r'\bname\s*=\s*"([^"]*)"' if self.xmile else r"^\s*([^\[\]=(){}:~|*/+\-\s][^\[\]=(){}:~|]*?)\s*[\[=(:]"
            )
            starts = True  # Vensim: an equation starts after the '|' that ends the one before
            for i, line in enumerate(text.splitlines(), 1):
                m = re.search(pattern, line) if starts or self.xmile else None
                if m:
                    self.lines.setdefault(_key(m.group(1)), i)
                if line.strip():
                    starts = line.rstrip().endswith(("|", "}"))
        return self.lines.get(_key(name))

    # -- names ------------------------------------------------------------------
    def ident(self, original: str, elements: tuple[str, ...] = ()) -> str:
        """A model name: the original lower case with ``_`` for spaces and other characters; the
        cell ``stock[north, a]`` of a subscripted element is ``stock__north__a``."""
        base = re.sub(r"\W+", "_", original.strip().lower()).strip("_") or "x"
        for e in elements:
            base += "__" + (re.sub(r"\W+", "_", e.strip().lower()).strip("_") or "x")
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
        self.macros = {sec.name.lower().replace(" ", "_"): sec for sec in sections[1:]}
        main = sections[0]
        if main.subscripts:
            text = "" if self.xmile else self.path.read_text(encoding="utf-8", errors="replace")
            sizes = _xmile_dimension_sizes(self.path) if self.xmile else {}
            self.subs = _Subscripts(main.subscripts, text, self.problems, sizes)
        from pysd.translators.structures.abstract_model import AbstractControlElement, AbstractData, AbstractLookup

        elements = []
        for el in main.elements:
            ref = el.name.lower().replace(" ", "_")
            if isinstance(el, AbstractControlElement) or ref in _CONTROL:
                continue
            if not el.components:
                self.problems.append(f"{el.name!r}: no equation")
                continue
            if any(c.subscripts[0] for c in el.components):
                try:
                    self.declare_array(el, ref)
                except _Unsupported as err:
                    self.problems.append(self.problem(el.name, err))
                    self.arrays.pop(ref, None)
                    self.failed.add(ref)
                    continue
                elements.append((el, ""))
                continue
            ours = self.ident(el.name)
            self.names[el.name] = ours
            self.originals[ours] = el.name
            self.refs[ref] = ours
            elements.append((el, ours))
            comps = el.components
            if len(comps) == 1 and not comps[0].subscripts[0] and not isinstance(comps[0], AbstractData):
                self.el_ast[ref] = comps[0].ast
        for el in main.elements:
            ref = el.name.lower().replace(" ", "_")
            if isinstance(el, AbstractControlElement) or ref in _CONTROL:
                self.control(el, ref)
        # lookup tables first: a call tab(x) looks like a function call until tab is known
        elements.sort(key=lambda e: not isinstance(e[0].components[0], AbstractLookup))
        for el, ours in elements:
            comps = el.components
            doc = " ".join(str(el.documentation or "").split())
            unit = str(el.units or "").strip()
            if not ours:  # subscripted: one scalar per cell, each translated with its elements bound
                for cell in self.arrays[el.name.lower().replace(" ", "_")].cells.values():
                    try:
                        with self.binding(cell.env):
                            self.component(
                                el.name,
                                cell.ours,
                                cell.component,
                                cell.ast,
                                f"{cell.label}: {doc}" if doc else cell.label,
                                unit,
                            )
                    except _Unsupported as err:
                        self.problems.append(self.problem(cell.label, err))
                continue
            if len(comps) != 1:
                self.problems.append(f"{el.name!r}: {len(comps)} definitions of an element without subscripts")
                continue
            try:
                self.component(el.name, ours, comps[0], comps[0].ast, doc, unit)
            except _Unsupported as err:
                self.problems.append(self.problem(el.name, err))
        for original, ours, flow in self.non_negative:
            try:
                self.limit_outflow(original, ours, flow)
            except _Unsupported as err:
                self.problems.append(self.problem(original, err))
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
        for name, why in self.frozen.items():
            if name in self.params:  # a constant that fixes a structure cannot be varied as a parameter
                self.equations[name] = _num(self.params.pop(name)["value"])
                self.notes.append(f"{self.originals.get(name, name)!r} is an equation, not a parameter: {why}")
        stocks = {}
        for n, v in self.stocks.items():
            stocks[n] = {"value": v, "doc": self.docs.get(n, "")}
        description = f"imported from the {kind} file {self.path.name} through PySD's translator"
        time = {**self.time, "method": "euler"}
        if self.fixed_delays:
            why = (
                f"DELAY FIXED ({', '.join(self.fixed_delays)}) is a chain of stocks that is a fixed delay only "
                f"under Euler at dt {_num(self.time['dt'])}, the file's own method and step; another would "
                "smooth the delayed values"
            )
            description += "; " + why
            time["locked"] = why  # another method or step is refused, not run as a smoothing
        model = {
            "name": re.sub(r"\W+", "_", self.path.stem).strip("_") or "imported",
            "description": description,
            "time": time,
            "stocks": stocks,
            "parameters": self.params,
            "lookups": self.lookups,
            "equations": {**{f"d({k})": v for k, v in self.changes.items()}, **self.equations},
        }
        model = {k: v for k, v in model.items() if v or k == "equations"}
        subscripted = {a.name: {c.label: c.ours for c in a.cells.values()} for a in self.arrays.values()}
        return Translation(model, dict(self.names), self.subscript_notes() + list(self.notes), subscripted)

    def component(self, original, ours, comp, ast, doc, unit):
        """One element (or one cell of a subscripted element) as a stock, parameter, lookup or equation."""
        from pysd.translators.structures import abstract_expressions as ae
        from pysd.translators.structures.abstract_model import AbstractData, AbstractLookup

        self.asts[ours] = ast
        if isinstance(comp, AbstractData):
            if not isinstance(ast, ae.GetDataStructure):
                raise _Unsupported("data variables (:=) without GET DIRECT DATA / GET XLS DATA")
            if (comp.keyword or "interpolate").lower() != "interpolate":
                raise _Unsupported(f"data read with :{comp.keyword.upper()}: (only the default, interpolation)")
            points = self.external_series(ast, ast.time_row_or_col, ours)
            if len(points) == 1:
                self.equations[ours] = _num(points[0][1])
            else:
                table = self.hidden(ours, "data")
                self.lookups[table] = {
                    "points": points,
                    **({"doc": doc} if doc else {}),
                    **({"unit": unit} if unit else {}),
                }
                self.equations[ours] = f"{table}(t)"
            how = f"the lookup {table} of time" if len(points) > 1 else "one number"
            self.note(
                ours,
                f"data from {ast.file} ({_count(len(points), 'point')}): {how}, linear between the points "
                "and held beyond them, as PySD reads it",
            )
            return
        if isinstance(comp, AbstractLookup):
            self.lookup_table(ours, ast, doc, unit)
            return
        self.element(ours, ast, doc, unit)
        if getattr(ast, "non_negative", False):
            self.non_negative.append((self.originals.get(ours, original), ours, ast.flow))

    # -- subscripts: each subscripted element is one scalar per cell ---------------------
    def declare_array(self, el, ref: str) -> None:
        """The cells of a subscripted element: every combination of the elements its definitions'
        left-hand sides stand for (less ``:EXCEPT:``), each a scalar ``name__e1__e2`` that keeps
        the name ``name[e1,e2]``; a list of numbers (``a[country] = 1, 2``) gives each cell its own."""
        import numpy as np

        if self.subs is None:
            raise _Unsupported("subscripts without any subscript range defined")
        subs = self.subs
        arr = self.arrays[ref] = _Array(el.name)
        for comp in el.components:
            lhs, excepts = comp.subscripts
            if not lhs:
                raise _Unsupported("an element defined both with and without subscripts")
            if arr.dims and len(arr.dims) != len(lhs):
                raise _Unsupported(f"definitions with {len(arr.dims)} and {len(lhs)} subscripts")
            arr.dims = arr.dims or [set() for _ in lhs]
            sets = [subs.expand(x) for x in lhs]
            for i, x in enumerate(lhs):
                arr.dims[i].add(_key(x) if _key(x) in subs.ranges else "")
            ex_sets = []
            for ex in excepts:
                if len(ex) != len(lhs):
                    raise _Unsupported(f":EXCEPT: {ex!r} with another number of subscripts than {lhs!r}")
                ex_sets.append([set(subs.expand(x)) for x in ex])
            values = None
            if isinstance(comp.ast, np.ndarray) and comp.ast.ndim > 0:
                shape = tuple(len(x) for x in sets)
                if comp.ast.size != math.prod(shape):
                    raise _Unsupported(f"a list of {comp.ast.size} numbers for {math.prod(shape)} cells")
                values = comp.ast.reshape(shape)
            for combo in itertools.product(*sets):
                if any(all(c in x for c, x in zip(combo, ex)) for ex in ex_sets):
                    continue
                label = f"{el.name}[{','.join(subs.spelling[c] for c in combo)}]"
                if combo in arr.cells:
                    raise _Unsupported(f"two definitions of {label} (defined twice)")
                self.cell_count += 1
                if self.cell_count > MAX_CELLS:
                    raise _Unsupported(f"more than {MAX_CELLS} subscripted cells in one file")
                ast = comp.ast
                if values is not None:
                    ast = float(values[tuple(x.index(c) for x, c in zip(sets, combo))])
                env = {_key(x): c for x, c in zip(lhs, combo) if _key(x) in subs.ranges}
                ours = self.ident(el.name, tuple(subs.spelling[c] for c in combo))
                self.originals[ours] = label
                self.names[label] = ours
                self.cell_names.add(ours)
                arr.cells[combo] = _Cell(ours, label, ast, env, comp)
        # in the order of the ranges, whatever the order of the definitions (as Vensim lists them)
        order = {e: i for els in subs.ranges.values() for i, e in enumerate(subs.main(els[0]))}
        arr.cells = dict(sorted(arr.cells.items(), key=lambda kv: tuple(order.get(e, 0) for e in kv[0])))

    @contextmanager
    def binding(self, env: dict[str, str]):
        """Translate with ``env`` (range key -> element) as the subscripts bound."""
        saved, self.env = self.env, env
        try:
            yield
        finally:
            self.env = saved

    def subscript(self, name: str, arr: _Array, i: int) -> str:
        """The element that the subscript ``name`` at position ``i`` of a reference to ``arr`` stands for.

        A bound range (on the left of the equation, or ``range!`` inside a vector function) gives
        its element; an element name itself; a range bound only through a subrange or superrange
        of it, the element bound there; a range mapped (``->``) to or from a bound range, the
        element in the same place. XMILE: the wildcard ``*`` runs over the dimension inside an array
        builtin and is the element bound on the left outside one; a whole number is the element in
        that place of the dimension (from 1)."""
        subs = self.subs
        assert subs is not None  # noqa: S101 - only called for a subscripted element
        k = _key(name)
        if k == _STAR:
            d = self.dimension(arr, i)
            for bound in (d + "!", d):
                if bound in self.env:
                    return self.env[bound]
            raise _Unsupported(
                f"the wildcard '*' of {arr.name!r} (dimension {subs.spelling[d]!r}) outside an array builtin "
                "(SUM, PROD, MIN, MAX, MEAN, SIZE) in an equation not arrayed over that dimension"
            )
        if k in self.env:
            return self.env[k]
        if k.endswith("!"):
            raise _Unsupported(f"the subscript {name!r} outside SUM, PROD, VMIN or VMAX")
        if k in subs.elements:
            return k
        if self.xmile and k.isdigit():  # XMILE: an index into the dimension, from 1
            els = subs.ranges[self.dimension(arr, i)]
            if not 1 <= int(k) <= len(els):
                raise _Unsupported(f"the index {k} of {arr.name!r} (its dimension has {len(els)} elements)")
            return els[int(k) - 1]
        if k not in subs.ranges:
            raise _Unsupported(f"the unknown subscript {name!r}")
        mine = subs.ranges[k]
        for bound, e in self.env.items():
            if bound.endswith("!"):
                continue
            other = subs.ranges[bound]
            if e in mine and (set(other) <= set(mine) or set(mine) <= set(other)):
                return e
            for a, b in ((k, bound), (bound, k)):
                if b not in subs.mapping.get(a, []):
                    continue
                pair = subs.pairs.get((a, b))
                if pair is None:
                    raise _Unsupported(
                        f"the mapping between {subs.spelling[k]!r} and {subs.spelling[bound]!r} (different lengths)"
                    )
                if a == bound:  # the bound range maps onto this one: the element its element maps to
                    return pair[e]
                hits = [x for x, y in pair.items() if y == e]  # this range maps onto the bound one
                if len(hits) != 1:
                    raise _Unsupported(
                        f"the mapping of {subs.spelling[k]!r} onto {subs.spelling[bound]!r} read at "
                        f"{subs.spelling[e]!r}, which {len(hits)} elements map to"
                    )
                return hits[0]
        raise _Unsupported(
            f"the subscript range {name!r} on the right of an equation whose left side does not bind it "
            "(nor a range mapped to it)"
        )

    def dimension(self, arr: _Array, i: int) -> str:
        """The range (XMILE dimension) at position ``i`` of ``arr``: the one named on its left sides, else
        the smallest range holding every element its cells have there (refused where two could be)."""
        subs = self.subs
        assert subs is not None  # noqa: S101 - only called for a subscripted element
        named = {d for d in arr.dims[i] if d}
        if len(named) == 1:
            return next(iter(named))
        have = {combo[i] for combo in arr.cells}
        fits = [r for r, els in subs.ranges.items() if have <= set(els)]
        if named:
            fits = [r for r in fits if r in named]
        small = [r for r in fits if len(subs.ranges[r]) == min(len(subs.ranges[f]) for f in fits)]
        if not small or len({tuple(subs.ranges[r]) for r in small}) > 1:
            raise _Unsupported(
                f"the dimension at position {i + 1} of {arr.name!r} (no single range holds its elements)"
            )
        return small[0]

    def cell(self, ast) -> _Cell:
        """The cell of a subscripted element that a reference reads, with the subscripts bound now."""
        arr = self.arrays[ast.reference]
        if ast.subscripts is None:
            if not self.xmile:
                raise _Unsupported(f"the subscripted {arr.name!r} used without subscripts")
            # XMILE: an arrayed variable named without subscripts in an arrayed equation is the
            # element of the same dimensions (apply-to-all); inside an array builtin, every element
            combo = []
            for i, dims in enumerate(arr.dims):
                d = self.dimension(arr, i)
                hit = [self.env[x] for x in (*sorted(dims), d, d + "!") if x in self.env]
                if not hit:
                    raise _Unsupported(f"the arrayed {arr.name!r} used without subscripts outside its dimensions")
                combo.append(hit[0])
            key = tuple(combo)
        else:
            names = ast.subscripts.subscripts
            if len(names) != len(arr.dims):
                raise _Unsupported(f"{arr.name!r} with {len(names)} subscripts (it has {len(arr.dims)})")
            if self.xmile:  # a slice outside a builtin: each * takes the element the left binds, once
                slices = [
                    self.dimension(arr, i)
                    for i, n in enumerate(names)
                    if _key(n) == _STAR and self.dimension(arr, i) + "!" not in self.env
                ]
                named = {_key(n) for n in names if _key(n) != _STAR}
                if len(set(slices)) < len(slices) or set(slices) & named:
                    raise _Unsupported(
                        f"the slice {arr.name}[{', '.join('*' if _key(n) == _STAR else n for n in names)}] outside an "
                        "array builtin, which names the "
                        "dimension of a wildcard twice"
                    )
            key = tuple(self.subscript(n, arr, i) for i, n in enumerate(names))
        if key not in arr.cells:
            assert self.subs is not None  # noqa: S101 - arrays exist only with subscripts
            raise _Unsupported(
                f"reading {arr.name}[{','.join(self.subs.spelling[c] for c in key)}], which is not defined "
                f"({arr.name!r} is defined for {', '.join(c.label for c in list(arr.cells.values())[:4])}"
                + (" ..." if len(arr.cells) > 4 else "")
                + ")"
            )
        return arr.cells[key]

    def subscript_value(self, ref: str) -> int | None:
        """A range bound here or an element named in an expression: its number in its main range."""
        if self.subs is None:
            return None
        k = _key(ref)
        if k in self.env and not k.endswith("!"):
            return self.subs.position(k, self.env[k])
        if k in self.subs.elements:
            return self.subs.position(k, k)
        if k in self.subs.ranges:
            raise _Unsupported(f"the subscript range {ref!r} as a value where it is not bound")
        return None

    def vector(self, f: str, arg, owner) -> str:
        """SUM, PROD, VMIN, VMAX over the ``range!`` subscripts of ``arg`` (XMILE: SUM, PROD, MIN, MAX,
        MEAN, SIZE over its wildcards ``*`` and the arrays it names without subscripts): one term per
        element, the elements of each range in its order."""
        from pysd.translators.structures import abstract_expressions as ae

        names = _XMILE_VECTOR if self.xmile else _VECTOR
        what = names[f]
        bangs: list[str] = []

        def add(k):
            if k not in bangs and k not in self.env:
                bangs.append(k)

        def visit(a):
            if isinstance(a, ae.CallStructure) and a.function.reference in names:
                return False  # a nested vector function iterates its own
            if isinstance(a, ae.ReferenceStructure) and a.reference in self.arrays and self.xmile:
                arr = self.arrays[a.reference]
                subs = a.subscripts.subscripts if a.subscripts is not None else [None] * len(arr.dims)
                mine: list[str] = []
                for i, x in enumerate(subs):
                    if x is None or _key(x) == _STAR:
                        d = self.dimension(arr, i)
                        if d in mine:  # each * runs on its own: one bound element would take the diagonal
                            raise _Unsupported(
                                f"{what} of {arr.name!r} with two wildcards over the same dimension {d!r}"
                            )
                        mine.append(d)
                        if x is None and any(b in self.env for b in arr.dims[i] | {d}):
                            raise _Unsupported(
                                f"{what} of the arrayed {arr.name!r} named without subscripts in an equation arrayed "
                                f"over its dimension {d!r} (write {arr.name}[*] or name the "
                                "element: which dimensions it reduces is ambiguous)"
                            )
                        add(d + "!")
            if isinstance(a, ae.ReferenceStructure) and a.subscripts is not None:
                for x in a.subscripts.subscripts:
                    if _key(x).endswith("!"):
                        add(_key(x))
                return False
            return True

        _walk_ast(arg, visit)
        if not bangs:
            raise _Unsupported(
                f"{what} without a 'range!' subscript to run over"
                if not self.xmile
                else f"{what} of an expression without an array to run over (no '*' and no arrayed variable)"
            )
        assert self.subs is not None  # noqa: S101 - a ! subscript needs a range
        ranges = []
        for b in bangs:
            if b[:-1].strip() not in self.subs.ranges:
                raise _Unsupported(f"{what} over the unknown subscript range {b!r}")
            ranges.append(self.subs.ranges[b[:-1].strip()])
        n = math.prod(len(r) for r in ranges)
        over = ", ".join(self.subs.spelling.get(b[:-1].strip(), b[:-1]) for b in bangs)
        self.note_element(owner, f"{what} over {over} expanded into {_count(n, 'term')}")
        if f == "size":
            return str(n)
        if f in ("stddev", "rank"):
            raise _Unsupported(
                f"the XMILE array builtin {what} (the texts at hand do not fix "
                + ("whether it divides by n or n - 1)" if f == "stddev" else "how it breaks ties)")
            )
        terms = []
        for combo in itertools.product(*ranges):
            with self.binding({**self.env, **dict(zip(bangs, combo))}):
                terms.append(self.expr(arg, owner))
        if f in ("sum", "prod", "mean"):
            total = "(" + (" * " if f == "prod" else " + ").join(terms) + ")"
            return f"({total} / {n})" if f == "mean" else total
        out = terms[0]
        for t in terms[1:]:
            out = f"{'min' if f in ('vmin', 'vmin_xmile') else 'max'}({out}, {t})"
        return out

    def vector_select(self, A, owner) -> str:
        """Vensim's VECTOR SELECT(selection[r!], expression[r!], missing, action, error action), as PySD
        computes it: over the elements whose selection is not 0, action 0 sums selection * expression,
        1 multiplies them, 2/3 take their minimum/maximum, 4 their mean, 5 multiplies expression ^ selection
        (what Vensim does, PySD notes, whatever its help says), 6-10 the sum, product, minimum, maximum and
        mean of the expression; ``missing`` where no element is selected. The action must be a constant,
        and the error action 0 (1-3 stop the run on a selection of none or of several, which is not
        reproduced)."""
        if len(A) != 5:
            raise _Unsupported(f"VECTOR SELECT with {len(A)} arguments (expected 5)")
        action, _ = self.static(A[3])
        error, _ = self.static(A[4])
        if action is None or action not in range(11):
            raise _Unsupported("VECTOR SELECT with a numerical action that is not a constant from 0 to 10")
        if error != 0:
            raise _Unsupported(
                "VECTOR SELECT with an error action other than 0 (Vensim and PySD stop the run on a selection "
                "of none or of more than one element, which is not reproduced)"
            )
        a = int(action)
        pairs = self.vector_terms([A[0], A[1]], "VECTOR SELECT", owner)
        self.note_element(owner, f"VECTOR SELECT (action {a}) expanded over {_count(len(pairs), 'element')}")
        sel = [(f"({s} != 0)", s, e) for s, e in pairs]
        any_sel = "(" + " | ".join(c for c, _, _ in sel) + ")"
        missing = self.expr(A[2], owner)
        if a == 5:
            vals = [(c, f"({e} ** {s})") for c, s, e in sel]
        elif a < 5:
            vals = [(c, f"({s} * {e})") for c, s, e in sel]
        else:
            vals = [(c, e) for c, s, e in sel]
        kind = {0: "sum", 6: "sum", 1: "prod", 5: "prod", 7: "prod", 2: "min", 8: "min", 3: "max", 9: "max"}.get(
            a, "mean"
        )
        if kind in ("sum", "prod", "mean"):
            unit = "1" if kind == "prod" else "0"
            terms = [f"if_({c}, {v}, {unit})" for c, v in vals]
            out = "(" + (" * " if kind == "prod" else " + ").join(terms) + ")"
            if kind == "mean":
                out = f"({out} / (" + " + ".join(f"if_({c}, 1, 0)" for c, _ in vals) + "))"
        else:  # each unselected element counts as the first selected value, which changes no min or max
            first = vals[-1][1]
            for c, v in reversed(vals[:-1]):
                first = f"if_({c}, {v}, {first})"
            terms = [f"if_({c}, {v}, {first})" for c, v in vals]
            out = terms[0]
            for t in terms[1:]:
                out = f"{kind}({out}, {t})"
        return f"if_({any_sel}, {out}, {missing})"

    def vector_terms(self, args, what: str, owner) -> list[tuple[str, ...]]:
        """Each argument translated once per element of the ``range!`` subscripts they share (one range)."""
        from pysd.translators.structures import abstract_expressions as ae

        bangs: list[str] = []

        def visit(a):
            if isinstance(a, ae.ReferenceStructure) and a.subscripts is not None:
                for x in a.subscripts.subscripts:
                    k = _key(x)
                    if k.endswith("!") and k not in bangs and k not in self.env:
                        bangs.append(k)
                return False
            return True

        _walk_ast(args, visit)
        if len(bangs) != 1 or self.subs is None or bangs[0][:-1].strip() not in self.subs.ranges:
            raise _Unsupported(f"{what} over {len(bangs)} 'range!' subscripts (only one range is read)")
        out = []
        for e in self.subs.ranges[bangs[0][:-1].strip()]:
            with self.binding({**self.env, bangs[0]: e}):
                out.append(tuple(self.expr(a, owner) for a in args))
        return out

    def subscript_notes(self) -> list[str]:
        """The import report's lines on subscripts: the ranges, and what each element expanded into."""
        if self.subs is None or not self.arrays:
            return []
        subs = self.subs
        parts = []
        for k, els in subs.ranges.items():
            part = f"{subs.spelling[k]} ({', '.join(subs.spelling[e] for e in els)})"
            if subs.mapping.get(k):
                part += " -> " + ", ".join(subs.spelling.get(m, m) for m in subs.mapping[k])
            parts.append(part)
        lines = ["subscript ranges: " + "; ".join(parts)]
        for a in self.arrays.values():
            cells = list(a.cells.values())
            kinds = sorted({self.kind_of(c.ours) for c in cells})
            span = cells[0].ours if len(cells) == 1 else f"{cells[0].ours} .. {cells[-1].ours}"
            lines.append(
                f"{a.name!r}: expanded into {_count(len(cells), 'scalar')} ({', '.join(kinds)}): "
                + (
                    f"{cells[0].label} as {span}"
                    if len(cells) == 1
                    else f"{cells[0].label} .. {cells[-1].label} as {span}"
                )
            )
        return lines

    def kind_of(self, name: str) -> str:
        if name in self.stocks:
            return "stock"
        if name in self.params:
            return "parameter"
        if name in self.lookups:
            return "lookup"
        return "equation"

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
        if isinstance(ast, ae.GetConstantsStructure):
            v = self.external_constant(ast, name)
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
        """An initial value: a number, or an expression as the initial-value computation sees it."""
        v = self.constant(ast)
        if v is not None:
            return v
        with self.stage(initial=True):
            return self.expr(ast, owner)

    @contextmanager
    def stage(self, initial: bool):
        """Translate for the initial-value computation (``initial``) or for the run."""
        saved, self.initial_stage = self.initial_stage, initial
        try:
            yield
        finally:
            self.initial_stage = saved

    def note(self, owner: str, text: str) -> None:
        self.notes.append(f"{self.originals.get(owner, owner)!r}: {text}")

    def note_element(self, owner: str, text: str) -> None:
        """A note for the element ``owner`` belongs to (once, not once per cell of a subscripted one)."""
        line = f"{self.originals.get(owner, owner).split('[')[0]!r}: {text}"
        if line not in self.notes:
            self.notes.append(line)

    # -- ACTIVE INITIAL: what the initial-value computation sees ----------------------------
    def reaches_active_initial(self, ast) -> bool:
        """Whether the value of ``ast`` at the start differs between the initial-value computation and
        the run: it reaches an ``ACTIVE INITIAL`` other than through a stock (whose start value is
        its own initial value, itself computed with the initial values)."""
        from pysd.translators.structures import abstract_expressions as ae

        if isinstance(ast, ae.CallStructure) and ast.function.reference == "active_initial":
            return True
        if isinstance(ast, (ae.IntegStructure, ae.InitialStructure, ae.SmoothStructure, ae.SmoothNStructure)):
            return False  # a stock: its start value is its initial value
        if isinstance(ast, ae.DelayFixedStructure):
            return False  # the last stock of the chain
        if isinstance(ast, ae.ReferenceStructure):
            ref = ast.reference
            if ref in self.arrays:  # any cell (the check is for refusing, so erring wide is safe)
                if ref not in self.needs:
                    self.needs[ref] = False
                    self.needs[ref] = any(self.reaches_active_initial(c.ast) for c in self.arrays[ref].cells.values())
                return self.needs[ref]
            if ref not in self.el_ast:
                return False
            if ref not in self.needs:
                self.needs[ref] = False  # a loop back here adds nothing
                self.needs[ref] = self.reaches_active_initial(self.el_ast[ref])
            return self.needs[ref]
        if isinstance(ast, (list, tuple)):
            return any(self.reaches_active_initial(a) for a in ast)
        if hasattr(ast, "__dataclass_fields__"):
            return any(self.reaches_active_initial(getattr(ast, f)) for f in ast.__dataclass_fields__)
        return False

    def initial_reference(self, ref: str) -> str:
        """A reference as the initial-value computation sees it."""
        from pysd.translators.structures import abstract_expressions as ae

        ast = self.el_ast[ref]
        if not self.reaches_active_initial(ast):
            return self.refs[ref]
        if isinstance(ast, (ae.DelayStructure, ae.DelayNStructure, ae.TrendStructure, ae.ForecastStructure)):
            raise _Unsupported(
                f"an initial value that reaches ACTIVE INITIAL through the {_KINDS[type(ast).__name__]} of {ref!r}"
            )
        if ref not in self.init_variants:
            ours = self.refs[ref]
            name = self.init_variants[ref] = self.hidden(ours, "init")
            self.equations[name] = self.expr(ast, ours)  # still in the initial stage
            self.note(ours, f"ACTIVE INITIAL: the initial-value computation reads {name}, with the initial values")
        return self.init_variants[ref]

    # -- GET DIRECT / GET XLS: numbers from a file beside the model ------------------------------
    def sheet(self, ast, owner):
        """The cells of the file (and sheet) a GET function reads, as numbers (NaN where a cell is not one)."""
        kind = _GET_NAMES[type(ast).__name__]
        if owner in self.cell_names:
            raise _Unsupported(f"{kind} in a subscripted element")
        name = str(ast.file)
        path = (self.path.parent / name).resolve()
        ext = path.suffix.lower()
        if name.startswith("?"):
            raise _Refused(f"{kind} is not supported for {name!r}: an indirect file reference (?name) is not read")
        if ext not in _TEXT_TABLES + _SHEETS:
            raise _Refused(
                f"{kind} is not supported for {name!r}: only CSV or text files and .xlsx workbooks are read "
                f"(save the sheet as CSV beside the model)"
            )
        if not path.is_file():
            raise _Refused(f"{kind} is not supported for {name!r}: no such file beside the model ({path})")
        key = (str(path), str(ast.tab))
        if key not in self.sheets:
            import numpy as np
            import pandas as pd

            try:
                if ext in _SHEETS:
                    frame = pd.read_excel(path, sheet_name=str(ast.tab), header=None, engine="openpyxl")
                else:
                    sep = {"sep": ast.tab} if ast.tab and not str(ast.tab)[0].isalnum() else {}
                    read = pd.read_csv if ext == ".csv" else pd.read_table
                    frame = read(path, header=None, **sep)
                rows = [pd.to_numeric(pd.Series(r), errors="coerce").to_numpy(float) for r in frame.to_numpy()]
                self.sheets[key] = np.array(rows, dtype=float).reshape(len(rows), -1)
            except Exception as err:  # noqa: BLE001 - pandas and openpyxl raise many kinds; name the file
                first = (str(err).strip().splitlines() or [""])[0][:200]
                raise _Refused(f"{kind}: could not read {name!r} ({type(err).__name__}: {first})") from err
        return self.sheets[key]

    def external_series(self, ast, x_row_or_col, owner) -> list[list[float]]:
        """The points ``[x, y]`` of GET DIRECT DATA / LOOKUPS: the x (time) values down the column
        ``x_row_or_col`` (a letter) from the row of ``cell``, the values down ``cell``'s column; or,
        where ``x_row_or_col`` is a row number, across that row and ``cell``'s row from ``cell``'s
        column (Vensim's layout, as PySD reads it). Blank cells after the last x end the series;
        a blank or non-numeric cell before them, and x values that do not increase, are refused."""
        import numpy as np

        kind = _GET_NAMES[type(ast).__name__]
        M = self.sheet(ast, owner)
        cell = _cell_ref(str(ast.cell))
        where = f"{ast.file}, {x_row_or_col!r}, {ast.cell!r}"
        if cell is None:
            raise _Refused(
                f"{kind} is not supported for the cell {ast.cell!r}: only cell references such as 'B2' are read"
            )
        r0, c0 = cell
        x = str(x_row_or_col).strip()
        try:
            if x.isdigit():
                xs, ys = M[int(x) - 1, c0:], M[r0, c0:]
            else:
                col = _cell_ref(x + "1")
                if col is None:
                    raise _Refused(f"{kind} is not supported for the series {x!r}: a column letter or row number")
                xs, ys = M[r0:, col[1]], M[r0:, c0]
        except IndexError:
            raise _Refused(f"{kind} ({where}): the cells are outside the file's table") from None
        n = len(xs)
        while n and np.isnan(xs[n - 1]):
            n -= 1
        xs, ys = xs[:n], ys[:n]
        if n == 0:
            raise _Refused(f"{kind} ({where}): no numbers where the series should be")
        if np.isnan(xs).any() or np.isnan(ys).any():
            raise _Refused(
                f"{kind} ({where}): a blank or non-numeric cell inside the series (PySD would fill or drop it; "
                "write the number)"
            )
        if n > 1 and not np.all(np.diff(xs) > 0):
            raise _Refused(f"{kind} ({where}): the x (time) values do not increase")
        return [[float(a), float(b)] for a, b in zip(xs, ys)]

    def external_constant(self, ast, owner) -> float:
        """GET DIRECT CONSTANTS of one cell."""
        M = self.sheet(ast, owner)
        kind = _GET_NAMES[type(ast).__name__]
        cell = _cell_ref(str(ast.cell))
        if cell is None:
            raise _Refused(f"{kind} is not supported for the cell {ast.cell!r}: only one cell such as 'B2' is read")
        try:
            v = float(M[cell])
        except IndexError:
            raise _Refused(f"{kind} ({ast.file}, {ast.cell!r}): the cell is outside the file's table") from None
        if math.isnan(v):
            raise _Refused(f"{kind} ({ast.file}, {ast.cell!r}): the cell is blank or not a number")
        self.note(owner, f"constant read from {ast.file}, cell {ast.cell}")
        return v

    def lookup_table(self, name, ast, doc, unit):
        from pysd.translators.structures import abstract_expressions as ae

        if isinstance(ast, ae.GetLookupsStructure):
            points = self.external_series(ast, ast.x_row_or_col, name)
            self.lookups[name] = {
                "points": points,
                **({"doc": doc} if doc else {}),
                **({"unit": unit} if unit else {}),
            }
            self.note(name, f"lookup read from {ast.file} ({_count(len(points), 'point')})")
            return
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
            if ast.reference in self.macro_args and not ast.subscripts:
                return f"({self.macro_args[ast.reference]})"
            if ast.reference in self.arrays:
                c = self.cell(ast)
                if self.initial_stage and self.reaches_active_initial(c.ast):
                    raise _Unsupported(f"an initial value that reaches ACTIVE INITIAL through {c.label!r}")
                return c.ours
            if ast.subscripts:
                raise _Unsupported(f"subscripts on {ast.reference!r}, which is not subscripted")
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
            if ast.reference in self.failed:
                raise _Refused(f"reads {ast.reference!r}, which is refused (see above)")
            if ast.reference not in self.refs:
                pos = self.subscript_value(ast.reference)
                if pos is not None:
                    return str(pos)
                raise _Unsupported(f"the undefined name {ast.reference!r}")
            if self.initial_stage and ast.reference in self.el_ast:
                return self.initial_reference(ast.reference)
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
            return _if(self.cond(ast, owner), "1", "0")
        if isinstance(ast, ae.CallStructure):
            return self.call(ast, owner)
        if isinstance(ast, ae.InlineLookupsStructure):
            if id(ast) not in self.structures:  # once, also when an initial-stage copy meets it again
                name = self.hidden(owner, "lookup")
                self.lookup_table(name, ast.lookups, "", "")
                self.structures[id(ast)] = name
            return self.call_table(self.structures[id(ast)], self.expr(ast.argument, owner))
        build = {
            ae.SmoothStructure: self.smooth,
            ae.SmoothNStructure: self.smooth,
            ae.DelayStructure: self.delay,
            ae.DelayNStructure: self.delay,
            ae.DelayFixedStructure: self.delay_fixed,
            ae.TrendStructure: self.trend,
            ae.ForecastStructure: self.forecast,
            ae.IntegStructure: self.integ,
            ae.InitialStructure: self.integ,
        }.get(type(ast))
        if build is not None:
            # a stateful structure is built once, for the run; the initial-value computation reads the
            # same stocks (their start values are their initial values) and refuses what it cannot read
            if (
                self.initial_stage
                and type(ast).__name__ in _KINDS
                and not isinstance(ast, (ae.SmoothStructure, ae.SmoothNStructure, ae.DelayFixedStructure))
            ):
                if self.reaches_active_initial(ast):
                    raise _Unsupported(
                        f"an initial value that reaches ACTIVE INITIAL through {_KINDS[type(ast).__name__]}"
                    )
            # per cell: the cells of a subscripted element share one expression tree
            skey = (id(ast), tuple(sorted(self.env.items())))
            if skey not in self.structures:
                with self.stage(initial=False):
                    self.structures[skey] = build(ast, owner)
            return self.structures[skey]
        kind = type(ast).__name__
        raise _Unsupported(_GET_NAMES.get(kind) or _NAMES.get(kind, f"the construct {kind}"))

    def integ(self, ast, owner) -> str:
        """An ``INTEG`` or ``INITIAL`` inside an expression: a hidden stock."""
        from pysd.translators.structures import abstract_expressions as ae

        name = self.hidden(owner, "integ" if isinstance(ast, ae.IntegStructure) else "initial")
        self.stocks[name] = self.initial_value(ast.initial, owner)
        self.changes[name] = self.expr(ast.flow, owner) if isinstance(ast, ae.IntegStructure) else "0"
        return name

    def cond(self, ast, owner, negate=False) -> str | bool:
        """A condition (our comparison syntax), negated by De Morgan where ``negate``; ``True`` or
        ``False`` where it compares two numbers (a subscript's position with an element's, mostly),
        decided here: the model's expression language takes a comparison of two numbers for no
        condition at all."""
        from pysd.translators.structures import abstract_expressions as ae

        if not isinstance(ast, ae.LogicStructure):
            return _compare(self.expr(ast, owner), "==" if negate else "!=", "0")
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
                left = self.cond(a, owner, negate)
                if isinstance(left, bool) or isinstance(out, bool):
                    known, other = (left, out) if isinstance(left, bool) else (out, left)
                    out = other if known == is_and else known  # True & x = x, False & x = False, ...
                else:
                    out = f"({left} {'&' if is_and else '|'} {out})"
            return out
        if len(ops) != 1 or ops[0] not in ("=", "<>", "<", "<=", ">", ">="):
            raise _Unsupported(f"the comparison {' '.join(ast.operators)}")
        op = {"=": "==", "<>": "!="}.get(ops[0], ops[0])
        if negate:
            op = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]
        return _compare(self.expr(args[0], owner), op, self.expr(args[1], owner))

    def call(self, ast, owner) -> str:
        f = ast.function.reference
        A = ast.arguments
        if f in self.arrays:
            c = self.cell(ast.function)
            if c.ours not in self.lookups:
                raise _Unsupported(f"calling {c.label!r}, which is not a lookup")
            if len(A) != 1:
                raise _Unsupported(f"calling lookup {c.label!r} with {len(A)} arguments")
            return self.call_table(c.ours, self.expr(A[0], owner))
        if f in self.macros and f not in self.refs:
            return self.macro(ast, owner)
        if self.xmile and f == "mean" and len(A) > 1 and f not in self.refs:  # MEAN(a, b, ...): of its arguments
            return "((" + " + ".join(self.expr(x, owner) for x in A) + f") / {len(A)})"
        if f == "vector_select" and not self.xmile and f not in self.refs:
            return self.vector_select(A, owner)
        vectors = _XMILE_VECTOR if self.xmile else _VECTOR
        if f in vectors and f not in self.refs:
            if len(A) != 1 and f != "rank":
                raise _Unsupported(f"{vectors[f]} with {len(A)} arguments (expected 1)")
            return self.vector(f, A[0], owner)
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
            "pulse_train": 4,
            "active_initial": 2,
            **{k: 1 for k in _FUNCS1},
        }
        if f not in arity:
            raise _Unsupported(f"the function {f.upper().replace('_', ' ')}")
        if len(A) != arity[f]:
            raise _Unsupported(f"{f.upper().replace('_', ' ')} with {len(A)} arguments (expected {arity[f]})")
        if f == "if_then_else":
            return _if(self.cond(A[0], owner), self.expr(A[1], owner), self.expr(A[2], owner))
        if f == "active_initial":  # Vensim: `initial` for the initial-value computation, `active` in the run
            return self.expr(A[1] if self.initial_stage else A[0], owner)
        if f == "pulse_train":  # PySD puts Vensim's (start, width, interval, end) as (start, interval, width, end)
            return self.pulse_train(A, owner)
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

    def macro(self, ast, owner) -> str:
        """A Vensim macro call, expanded inline: each of the macro's elements becomes a hidden
        element ``<owner>__<macro>_<element>`` (a stock for an INTEG) with the call's arguments in
        place of the parameters, once per call; the call is the element named like the macro."""
        sec = self.macros[ast.function.reference]
        name = sec.name
        if sec.returns:
            raise _Unsupported(f"the macro {name} with more than one output (: {', '.join(sec.returns)})")
        if sec.subscripts or any(c.subscripts[0] for el in sec.elements for c in el.components):
            raise _Unsupported(f"subscripts inside the macro {name}")
        if len(ast.arguments) != len(sec.params):
            raise _Unsupported(f"the macro {name} with {len(ast.arguments)} arguments (it takes {len(sec.params)})")
        if self.macro_depth >= 20:
            raise _Unsupported(f"the macro {name} calling macros more than 20 deep")
        key = ("macro", id(ast), tuple(sorted(self.env.items())))
        if key in self.structures:
            return self.structures[key]
        if self.initial_stage and self.reaches_active_initial(ast.arguments):
            raise _Unsupported(f"an initial value that reaches ACTIVE INITIAL through the macro {name}")
        from pysd.translators.structures.abstract_model import AbstractLookup

        with self.stage(initial=False):
            args = {p.lower().replace(" ", "_"): self.expr(a, owner) for p, a in zip(sec.params, ast.arguments)}
            base = re.sub(r"\W+", "_", name.lower()).strip("_")
            local = {}
            for el in sec.elements:
                ref = el.name.lower().replace(" ", "_")
                tag = (
                    base
                    if ref == ast.function.reference
                    else base + "_" + re.sub(r"\W+", "_", el.name.lower()).strip("_")
                )
                local[ref] = self.hidden(owner, tag)
            if ast.function.reference not in local:
                raise _Unsupported(f"the macro {name} without an element named {name}")
            saved = self.refs, self.el_ast, self.macro_args, self.needs
            self.refs = {**self.refs, **local}
            self.el_ast = {k: v for k, v in self.el_ast.items() if k not in local and k not in args}
            self.macro_args, self.needs = args, {}
            self.macro_depth += 1
            try:
                for el in sec.elements:
                    comp = el.components[0]
                    if len(el.components) != 1 or isinstance(comp, AbstractLookup):
                        raise _Unsupported(f"a lookup or a repeated definition inside the macro {name}")
                    ours = local[el.name.lower().replace(" ", "_")]
                    self.element(ours, comp.ast, "", "")
                    if ours in self.params:  # a constant of the macro is part of it, not a model parameter
                        self.equations[ours] = _num(self.params.pop(ours)["value"])
            finally:
                self.refs, self.el_ast, self.macro_args, self.needs = saved
                self.macro_depth -= 1
        out = local[ast.function.reference]
        extra = len(local) - 1
        self.note(
            owner, f"macro {name} expanded inline as {out}" + (f" (and {_count(extra, 'element')})" if extra else "")
        )
        self.structures[key] = out
        return out

    def smooth(self, ast, owner) -> str:
        """SMOOTH(I)(3) and SMOOTH N: ``order`` first-order stages, each at ``order / T`` (PySD and Vensim)."""
        from pysd.translators.structures import abstract_expressions as ae

        what = "SMOOTH N" if isinstance(ast, ae.SmoothNStructure) else "SMOOTH"
        n = self.order(ast.order, what, owner)
        T = self.expr(ast.smooth_time, owner)
        init = self.initial_value(ast.initial, owner)
        target = self.expr(ast.input, owner)
        names = [self.hidden(owner, f"s{i + 1}") for i in range(n)]
        for nm in names:
            self.stocks[nm] = init
            self.changes[nm] = f"({target} - {nm}) * {n} / {T}"
            target = nm
        if isinstance(ast, ae.SmoothNStructure):
            self.note(owner, f"SMOOTH N of order {n}: {_span(names)}")
        return names[-1]

    def delay(self, ast, owner) -> str:
        """DELAY1(I)/DELAY3(I)/DELAY N: ``order`` stages holding the material in transit, each ``T / order``.

        Like PySD and Vensim, the order drops while ``order * dt > T`` (T a constant, or made of
        constants: their values at import decide), so a stage never empties in less than one step.
        DELAY N's delay time must not move during the run: Vensim's DELAY N then uses the delay
        times of earlier steps stage by stage, which these stocks do not hold."""
        from pysd.translators.structures import abstract_expressions as ae

        is_n = isinstance(ast, ae.DelayNStructure)
        what = "DELAY N" if is_n else f"DELAY{int(ast.order)}"
        n = order = self.order(ast.order, what, owner)
        order_note = ""
        Tc, used = self.static(ast.delay_time)
        if is_n and Tc is None:
            raise _Unsupported(
                "DELAY N with a delay time that is not constant (only numbers and constants: when it moves, "
                "Vensim's DELAY N divides each stage by the delay time of an earlier step, which is not reproduced)"
            )
        if Tc is not None and "dt" in self.time:
            while n > 1 and n * self.time["dt"] > Tc:
                n -= 1
            if n != order:
                for name in used:
                    self.frozen[name] = f"its value sets the order of {what} in {self.originals.get(owner, owner)!r}"
                order_note = (
                    f"order {order} lowered to {n} as in Vensim and PySD (delay time {_num(Tc)} < {order} x TIME STEP)"
                )
            elif used and order > 1:
                order_note = (
                    f"the order holds while the delay time is at least {_num(order * self.time['dt'])} "
                    f"({order} x TIME STEP; Vensim lowers the order below that)"
                )
        T = self.expr(ast.delay_time, owner)
        init = self.constant(ast.initial)
        T0 = self.initial_value(ast.delay_time, owner)
        if init is not None and isinstance(T0, float):
            init = init * T0 / n
        else:
            init = f"({_arg(self.initial_value(ast.initial, owner))}) * {_arg(T0)} / {n}"
        inflow = self.expr(ast.input, owner)
        names = [self.hidden(owner, f"d{i + 1}") for i in range(n)]
        for nm in names:
            self.stocks[nm] = init
            out = f"{nm} * {n} / {T}"
            self.changes[nm] = f"{inflow} - {out}"
            inflow = f"({out})"
        if is_n or order_note:
            self.note(owner, f"{what} of order {n}: {_span(names)}" + (f"; {order_note}" if order_note else ""))
        return inflow

    def delay_fixed(self, ast, owner) -> str:
        """DELAY FIXED (XMILE DELAY): the input of ``n = round(T / dt)`` steps before, through ``n`` stocks.

        Each stock takes the one before it every step: ``d(f1) = (input - f1) / DT`` and
        ``d(fk) = (f(k-1) - fk) / DT``, so one Euler step of the file's DT moves every value
        one place on, and ``fn`` at step j is the input at step j - n (the initial value before),
        as PySD's ring buffer gives it. Vensim: only the delay time's start value counts, and a
        delay below one TIME STEP acts as one TIME STEP; PySD rounds T / dt to the nearest
        whole number of steps (``round(max(T / dt, 1) + 1e-6)``) and so does this."""
        if "dt" not in self.time:
            raise _Unsupported("DELAY FIXED without a TIME STEP")
        dt = self.time["dt"]
        Tc, used = self.static(ast.delay_time)
        if Tc is None:
            raise _Unsupported(
                "DELAY FIXED with a delay time that is not made of numbers and constants (its start value "
                "sets how many TIME STEPs the delay holds, so it must be known when the model is imported)"
            )
        n = round(max(Tc / dt, 1) + _SMALL)
        if n > MAX_FIXED_DELAY_STEPS:
            raise _Unsupported(
                f"DELAY FIXED of {n} TIME STEPs (delay time {_num(Tc)} / TIME STEP {_num(dt)}; at most "
                f"{MAX_FIXED_DELAY_STEPS}, one stock each)"
            )
        for name in used:
            self.frozen[name] = f"its value sets the length of DELAY FIXED in {self.originals.get(owner, owner)!r}"
        init = self.initial_value(ast.initial, owner)
        src = self.expr(ast.input, owner)
        names = [self.hidden(owner, f"f{i + 1}") for i in range(n)]
        for nm in names:
            self.stocks[nm] = init
            self.changes[nm] = f"({src} - {nm}) / {_num(dt)}"
            src = nm
        self.fixed_delays.append(self.originals.get(owner, owner))
        steps = f"{n} TIME STEP{'s' if n > 1 else ''}"
        exact = "" if abs(n * dt - Tc) <= 1e-9 * max(1.0, abs(Tc)) else f" (delay time {_num(Tc)} rounded to {steps})"
        self.note(
            owner,
            f"DELAY FIXED of {steps}{exact}: {_span(names)}, a shift register that is exact under Euler "
            f"at dt {_num(dt)} (the file's own method and step); another method or step makes it a smoothing",
        )
        return names[-1]

    def trend(self, ast, owner) -> str:
        """Vensim's TREND: ``ZIDZ(input - AV, T * ABS(AV))``, ``AV = INTEG((input - AV) / T,
        input / (1 + initial trend * T))`` (PySD computes the same)."""
        av = self.hidden(owner, "av")
        x, T = self.expr(ast.input, owner), self.expr(ast.average_time, owner)
        x0, T0, g0 = (self.initial_value(a, owner) for a in (ast.input, ast.average_time, ast.initial_trend))
        if isinstance(x0, float) and isinstance(T0, float) and isinstance(g0, float) and 1 + g0 * T0 != 0:
            self.stocks[av] = x0 / (1 + g0 * T0)
        else:
            self.stocks[av] = f"({_arg(x0)}) / (1 + ({_arg(g0)}) * ({_arg(T0)}))"
        self.changes[av] = f"({x} - {av}) / {T}"
        den = f"({T} * abs({av}))"
        self.note(owner, f"TREND: the average value is the stock {av}")
        return f"if_(abs({den}) < {_SMALL}, 0, ({x} - {av}) / {den})"

    def forecast(self, ast, owner) -> str:
        """Vensim's FORECAST: ``input * (1 + ZIDZ(input - AV, T * AV) * horizon)``,
        ``AV = INTEG((input - AV) / T, input)`` (PySD computes the same)."""
        g0, _ = self.static(ast.initial_trend)
        if g0 != 0:
            raise _Unsupported(
                "FORCST with an initial trend other than 0 (PySD starts its average at input / (1 + initial "
                "trend), TREND at input / (1 + initial trend * averaging time): the definitions disagree)"
            )
        av = self.hidden(owner, "av")
        x, T, h = (self.expr(a, owner) for a in (ast.input, ast.average_time, ast.horizon))
        self.stocks[av] = self.initial_value(ast.input, owner)
        self.changes[av] = f"({x} - {av}) / {T}"
        den = f"({T} * {av})"
        self.note(owner, f"FORECAST: the average value is the stock {av}")
        return f"({x} * (1 + if_(abs({den}) < {_SMALL}, 0, ({x} - {av}) / {den}) * {h}))"

    def pulse_train(self, A, owner) -> str:
        """Vensim's PULSE TRAIN(start, width, interval, end) as PySD computes it: 1 for ``start <= t < end``
        where ``(t - start + 1e-6)`` modulo the interval is below the width; one pulse (``start - 1e-6 <= t
        < start + width``) when the interval is 0. Python's modulo (the sign of the interval) is written out
        where the interval is not a literal positive number."""
        s, iv, w, e = (self.expr(x, owner) for x in A)
        single = f"if_((t >= {s} - {_SMALL}) & (t < {s} + {w}), 1, 0)"
        x = f"(t - {s} + {_SMALL})"
        within = f"(t >= {s}) & (t < {e})"
        train = f"if_({within} & (modulo({x}, {iv}) < {w}), 1, 0)"
        c = self.constant(A[1])
        if c is not None:
            return single if c == 0 else train if c > 0 else f"if_({within} & ({_floor_mod(x, iv)} < {w}), 1, 0)"
        negative = f"if_({within} & ({_floor_mod(x, iv)} < {w}), 1, 0)"
        return f"if_({iv} == 0, {single}, if_({iv} > 0, {train}, {negative}))"

    def order(self, v, what: str, owner: str) -> int:
        """The order of a smooth or delay: a constant whole number from 1 (the number of stocks)."""
        c, used = self.static(v)
        if c is None:
            raise _Unsupported(f"{what} with an order that is not a constant (the order is the number of stocks)")
        if c != int(c) or c < 1:
            raise _Unsupported(
                f"{what} with the order {c:g} (the order is the number of stocks: a whole number from 1)"
            )
        for name in used:
            self.frozen[name] = f"its value sets the order of {what} in {self.originals.get(owner, owner)!r}"
        return int(c)

    def static(self, ast) -> tuple[float | None, set[str]]:
        """The value of an expression of numbers, TIME STEP and constant elements, and the elements it
        read; ``(None, set())`` where it depends on anything that can move (time, stocks, data)."""
        from pysd.translators.structures import abstract_expressions as ae

        used: set[str] = set()

        def value(a, seen):
            if isinstance(a, (int, float)) or type(a).__module__ == "numpy":
                v = float(a)
                if math.isnan(v):
                    raise _Unsupported(_NA)
                return v
            if isinstance(a, ae.ArithmeticStructure):
                vals = [value(x, seen) for x in a.arguments]
                if any(v is None for v in vals):
                    return None
                if a.operators == ["negative"]:
                    return -vals[0]
                try:
                    v = eval_chain(a.operators, vals)
                except (ZeroDivisionError, OverflowError):
                    return None
                return None if isinstance(v, complex) else float(v)
            if isinstance(a, ae.ReferenceStructure) and a.reference in self.arrays:
                c = self.cell(a)
                if c.ours in seen:
                    return None
                with self.binding(c.env):
                    v = value(c.ast, seen | {c.ours})
                if v is not None:
                    used.add(c.ours)
                return v
            if isinstance(a, ae.ReferenceStructure) and not a.subscripts:
                ref = a.reference
                if ref not in self.refs and ref not in ("time_step", "time"):
                    pos = self.subscript_value(ref)
                    if pos is not None:
                        return float(pos)
                if ref == "time_step":
                    return self.time.get("dt")
                if ref in self.el_ast and ref not in seen:
                    v = value(self.el_ast[ref], seen | {ref})
                    if v is not None:
                        used.add(self.refs[ref])
                    return v
            return None

        v = value(ast, frozenset())
        return (v, used) if v is not None else (None, set())


_NUMBER = re.compile(r"\(?(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\)?")


_TEXT_TABLES = (".csv", ".tab", ".txt")
_SHEETS = (".xlsx", ".xlsm")


def _cell_ref(cell: str) -> tuple[int, int] | None:
    """A cell such as ``B2`` as (row, column) from 0, as PySD reads it; None for anything else."""
    m = re.fullmatch(r"\s*([A-Za-z]{1,3})([1-9]\d*)\s*", cell)
    if not m:
        return None
    col = 0
    for ch in m.group(1).upper():
        col = col * 26 + ord(ch) - ord("A") + 1
    return int(m.group(2)) - 1, col - 1


def _literal(text: str) -> float | None:
    """The number a translated expression is, where it is a plain number (``3``, ``(-2.5)``)."""
    m = _NUMBER.fullmatch(text)
    return float(m.group(1)) if m else None


def _compare(a: str, op: str, b: str) -> str | bool:
    """``(a op b)``, or its truth where both sides are numbers."""
    x, y = _literal(a), _literal(b)
    if x is None or y is None:
        return f"({a} {op} {b})"
    return {"==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _if(c: str | bool, a: str, b: str) -> str:
    """``if_(c, a, b)``, or ``a`` or ``b`` where the condition is decided."""
    if isinstance(c, bool):
        return a if c else b
    return f"if_({c}, {a}, {b})"


def _arg(v) -> str:
    return _num(v) if isinstance(v, float) else str(v)


def _span(names: list[str]) -> str:
    """``a__f1`` or ``a__f1 .. a__f12 (12 stocks)``: hidden stocks, briefly."""
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} stocks)"


def _floor_mod(x: str, m: str) -> str:
    """Python's ``x % m`` (the sign of ``m``) for ``x > 0`` from ``modulo`` (the sign of ``x``)."""
    r = f"modulo({x}, {m})"
    return f"if_(({m} < 0) & ({r} != 0), {r} + {m}, {r})"


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
