"""A whitelist expression parser: model-file strings to sympy, without ``eval``.

Model files come from strangers, so nothing here calls ``eval``, ``exec``,
``sympify`` or ``ast.parse``: a small tokenizer and a precedence-climbing
parser build sympy objects directly from the tokens, and only the functions in
:data:`FUNCTIONS` exist.  Every name becomes a plain ``sympy.Symbol``, so
``I``, ``E``, ``S``, ``N``, ``Q``, ``gamma``, ``beta``, ``pi`` and even
``lambda`` are ordinary model names, never sympy constants or Python keywords.

Two operators are special and become marker symbols that later stages read:

- ``d(X)``: the change of stock ``X`` (dX/dt, or X - lag(X) in discrete time),
  the symbol named ``"d(X)"``;
- ``lag(X)``: last period's value of ``X`` (discrete time), the symbol named
  ``"lag(X)"``; ``lag(expr)`` lags every name in ``expr``.

Examples
--------
>>> e = parse("alpha1 * YD + alpha2 * lag(Hh)", {"alpha1", "alpha2", "YD", "Hh"})
>>> sorted(str(s) for s in e.free_symbols)
['YD', 'alpha1', 'alpha2', 'lag(Hh)']
>>> parse("I + E * S", {"I", "E", "S"})
E*S + I
"""

from __future__ import annotations

import copyreg
import difflib
import re
from collections.abc import Callable, Iterable
from typing import cast

import numpy as np
import sympy as sp
from sympy.core.function import FunctionClass

from sdmodel.core.errors import ExpressionError
from sdmodel.model.names import RESERVED as RESERVED  # re-exported: where it was defined
from sdmodel.model.names import split_marker

#: The symbol for model time.
T = sp.Symbol("t")

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|<=|>=|==|!=|[-+*/^(),<>&|]))"
)


class Step(sp.Function):
    """``step(t0)`` as ``Step(t - t0)``: 0 before, 1 from ``t0`` on.

    The compiler gives it a linear ramp one time step ``dt`` wide ending at
    ``t0``, so that results move continuously when ``t0`` is a parameter
    (no step-size noise in sensitivity indices), and in discrete time with an
    integer ``t0`` it is the ordinary step.
    """

    nargs = 1


class Trunc(sp.Function):
    """``integer(x)``: the integer part of ``x``, toward zero (Vensim's ``INTEGER``; ``np.trunc``).

    Its derivative is zero wherever it exists; the algebra stage treats a block whose unknowns
    pass through it as non-linear, so it is never solved as if it were linear.
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Integer(int(x))
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def _eval_is_real(self):
        return self.args[0].is_real


def _modulo(x, m):
    # Vensim's MODULO (and PySD's): x - m * INTEGER(x / m), so the result has the sign of x
    return x - m * Trunc(x / m)


class Softplus(sp.Function):
    """``log(1 + exp(x))``: a smooth ``max(x, 0)``; ``softplus(x, s)`` is ``s * Softplus(x / s)``.

    Compiled as ``np.logaddexp(0, x)``, which never overflows; used for
    smooth floors such as the zero lower bound on the policy rate.
    """

    nargs = 1

    def fdiff(self, argindex=1):
        return 1 / (1 + sp.exp(-self.args[0]))

    def _eval_evalf(self, prec):
        return sp.log(1 + sp.exp(self.args[0]))._eval_evalf(prec)


class _LookupClass(FunctionClass):  # the type of sp.Function
    """The metaclass of table functions (a subclass of sympy's, for pickling)."""


class LookupBase(sp.Function, metaclass=_LookupClass):
    """A table function ``name(x)``: piecewise-linear in ``x`` through the points
    ``xs``/``ys``, held at the end values outside them (Vensim's and PySD's lookups).

    Each declared lookup is its own subclass (:func:`make_lookup`) carrying its table,
    so the expression stays a plain function of its argument for ordering and solving.
    """

    nargs = 1
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Float(float(np.interp(float(x), cls.xs, cls.ys)))
        return None

    def _eval_evalf(self, prec):
        x = self.args[0].evalf(prec)
        if not x.is_number:
            return None
        return sp.Float(float(np.interp(float(x), self.xs, self.ys)), prec)


def make_lookup(name: str, xs, ys) -> type[LookupBase]:
    """The :class:`LookupBase` subclass for one table; ``xs`` strictly increasing."""
    namespace = {"xs": tuple(map(float, xs)), "ys": tuple(map(float, ys)), "__module__": __name__}
    return cast("type[LookupBase]", type(name, (LookupBase,), namespace))


def _reduce_lookup_class(cls):
    # a lookup class is made at run time, so pickle rebuilds it from its table
    if cls is LookupBase:
        return cls.__qualname__
    return make_lookup, (cls.__name__, cls.xs, cls.ys)


# only the lookups' own metaclass gets the reducer: other sympy function classes pickle as usual
copyreg.pickle(_LookupClass, _reduce_lookup_class)


def _softplus(*args):
    if len(args) == 1:
        return Softplus(args[0])
    x, s = args
    return s * Softplus(x / s)


def _is_condition(e) -> bool:
    return isinstance(e, (sp.core.relational.Relational, sp.And, sp.Or)) or e is sp.true or e is sp.false


def dsym(name: str) -> sp.Symbol:
    """The marker symbol for ``d(name)``."""
    return sp.Symbol(f"d({name})")


def lagsym(name: str) -> sp.Symbol:
    """The marker symbol for ``lag(name)``."""
    return sp.Symbol(f"lag({name})")


def marker(sym: sp.Symbol) -> tuple[str | None, str]:
    """Split a symbol into ``(kind, base)``: ``('d', 'Hh')``, ``('lag', 'Y')`` or ``(None, 'Y')``."""
    return split_marker(sym.name)


def _logistic(*args):
    if len(args) == 1:
        (x,) = args
        return 1 / (1 + sp.exp(-x))
    if len(args) == 3:
        x, x0, k = args
        return 1 / (1 + sp.exp(-k * (x - x0)))
    raise TypeError("logistic takes (x) or (x, x0, k)")


def _ramp(t0, t1):
    # 0 before t0, 1 after t1, linear between: continuous in t0 and t1 by construction.
    return sp.Min(sp.Max((T - t0) / (t1 - t0), 0), 1)


#: name -> (allowed argument counts, builder)
FUNCTIONS: dict[str, tuple[tuple[int, ...], Callable]] = {
    "exp": ((1,), sp.exp),
    "log": ((1,), sp.log),
    "sqrt": ((1,), sp.sqrt),
    "abs": ((1,), sp.Abs),
    "tanh": ((1,), sp.tanh),
    "sin": ((1,), sp.sin),
    "cos": ((1,), sp.cos),
    "tan": ((1,), sp.tan),
    "atan": ((1,), sp.atan),
    "asin": ((1,), sp.asin),
    "acos": ((1,), sp.acos),
    "integer": ((1,), Trunc),
    "modulo": ((2,), _modulo),
    "min": ((2, 3, 4, 5, 6), sp.Min),
    "max": ((2, 3, 4, 5, 6), sp.Max),
    "clip": ((3,), lambda x, lo, hi: sp.Min(sp.Max(x, lo), hi)),
    "if_": ((3,), lambda c, a, b: sp.Piecewise((a, c), (b, True))),
    "step": ((1,), lambda t0: Step(T - t0)),
    "ramp": ((2,), _ramp),
    "logistic": ((1, 3), _logistic),
    "softplus": ((1, 2), _softplus),
}

#: Limits that keep a hostile or mistaken expression from hanging the parser or sympy: characters
#: of one expression, nesting depth (parentheses, calls, signs), digits and exponent of a literal,
#: and the decimal magnitude a power of two numbers may reach before it is evaluated exactly.
MAX_LENGTH = 50_000
MAX_DEPTH = 40
MAX_DIGITS = 60
MAX_EXPONENT = 400

_COMPARE = {"<": sp.Lt, "<=": sp.Le, ">": sp.Gt, ">=": sp.Ge, "==": sp.Eq, "!=": sp.Ne}


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].lstrip()[:1]
            col = len(text) - len(text[pos:].lstrip())
            raise ExpressionError(
                f"unexpected character {bad!r} at position {col + 1} in {text!r}; "
                "expressions may use names, numbers, + - * / ** ^ ( ) , < <= > >= == != & |"
            )
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, names: set[str] | None, allow_markers: bool, lookups=None):
        self.text = text
        self.lookups = dict(lookups or {})
        self.names = names
        self.allow_markers = allow_markers
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers ---------------------------------------------------------
    def peek(self):
        return self.tokens[self.i]

    def take(self):
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, value):
        kind, val, pos = self.take()
        if val != value:
            found = "the end" if kind == "end" else repr(val)
            raise ExpressionError(f"expected {value!r} at position {pos + 1} in {self.text!r}, found {found}")

    def fail(self, msg):
        raise ExpressionError(f"{msg} in {self.text!r}")

    # -- grammar -----------------------------------------------------------
    def parse(self):
        if self.peek()[0] == "end":
            self.fail("empty expression")
        node = self.logical()
        kind, val, pos = self.peek()
        if kind != "end":
            raise ExpressionError(f"unexpected {val!r} at position {pos + 1} in {self.text!r}")
        return node

    def nest(self):
        """One level deeper (a parenthesis, a call, a sign); refuse what would exhaust the stack."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(
                f"nested more than {MAX_DEPTH} levels deep (parentheses, calls and signs); split it into equations"
            )

    def arith(self, node, op):
        """An operand of arithmetic: a comparison there is a mistake, not a 0/1 number."""
        if isinstance(node, sp.logic.boolalg.Boolean) and not isinstance(node, sp.Expr):
            self.fail(
                f"a comparison cannot be an operand of {op!r}; it can only be the condition of if_(), "
                "e.g. if_(G > 1, 1, 0)"
            )
        return node

    def logical(self):
        self.nest()
        node = self._logical()
        self.depth -= 1
        return node

    def _logical(self):
        node = self.comparison()
        while self.peek()[1] in ("&", "|"):
            op = self.take()[1]
            rhs = self.comparison()
            if not (_is_condition(node) and _is_condition(rhs)):
                self.fail(f"both sides of {op!r} must be comparisons such as x > 0")
            node = sp.And(node, rhs) if op == "&" else sp.Or(node, rhs)
        return node

    def comparison(self):
        node = self.additive()
        if self.peek()[1] in _COMPARE:
            op = self.take()[1]
            rhs = self.additive()
            if node.is_number and rhs.is_number:  # two numbers: decided here (sympy leaves Eq(3, 3) for later)
                a, b = float(node), float(rhs)
                return (
                    sp.true
                    if {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]
                    else sp.false
                )
            node = _COMPARE[op](node, rhs, evaluate=False)
        return node

    def additive(self):
        # the terms are summed once: adding them one by one re-flattens the sum each time (quadratic)
        node = self.term()
        if self.peek()[1] not in ("+", "-"):
            return node
        terms = [self.arith(node, self.peek()[1])]
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            rhs = self.arith(self.term(), op)
            terms.append(rhs if op == "+" else -rhs)
        return sp.Add(*terms)

    def term(self):
        node = self.unary()
        if self.peek()[1] not in ("*", "/"):
            return node
        factors = [self.arith(node, self.peek()[1])]
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            rhs = self.arith(self.unary(), op)
            factors.append(rhs if op == "*" else 1 / rhs)
        return sp.Mul(*factors)

    def unary(self):
        if self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            self.nest()
            node = self.arith(self.unary(), op)
            self.depth -= 1
            return -node if op == "-" else node
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek()[1] in ("**", "^"):
            op = self.take()[1]
            self.arith(base, op)
            self.nest()
            exponent = self.arith(self.unary(), op)  # right associative; -x**2 == -(x**2)
            self.depth -= 1
            if isinstance(base, sp.Number) and isinstance(exponent, sp.Number):
                # sympy evaluates a power of two numbers exactly: 9**9**9 would never finish
                b = abs(float(base))
                if b not in (0.0, 1.0) and abs(float(exponent) * np.log10(b)) > MAX_EXPONENT:
                    self.fail(
                        f"{_short(base)}**{_short(exponent)} is outside the range of double precision (about 1e308)"
                    )
            return base**exponent
        return base

    def atom(self):
        kind, val, pos = self.take()
        if kind == "num":
            return self.number(val)
        if val == "(":
            node = self.logical()
            self.expect(")")
            return node
        if kind == "name":
            if self.peek()[1] == "(":
                return self.call(val, pos)
            return self.name(val)
        if kind == "end":
            self.fail("expression ends too early")
        raise ExpressionError(f"unexpected {val!r} at position {pos + 1} in {self.text!r}")

    def number(self, val):
        mantissa, _, exp = val.lower().partition("e")
        digits = len(mantissa.replace(".", "").lstrip("0"))
        if digits > MAX_DIGITS or (exp and abs(int(exp)) > MAX_EXPONENT):
            self.fail(
                f"the number {_short(val)} has more than {MAX_DIGITS} digits or an exponent beyond "
                f"±{MAX_EXPONENT} (double precision holds about 17 digits up to about 1e308)"
            )
        return sp.Rational(val)  # exact: symbolic proofs must not trip on 0.1 + 0.2

    def name(self, val):
        if val == "t":
            return T
        if self.names is not None and val not in self.names:
            hint = difflib.get_close_matches(val, sorted(self.names), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else "; declare it as a stock, parameter, series or equation"
            self.fail(f"undeclared name {val!r}" + extra)
        return sp.Symbol(val)

    def args(self):
        self.expect("(")
        args = []
        if self.peek()[1] != ")":
            args.append(self.logical())
            while self.peek()[1] == ",":
                self.take()
                args.append(self.logical())
        self.expect(")")
        return args

    def call(self, fname, pos):
        if fname in ("d", "lag"):
            return self.marker_call(fname)
        if fname in self.lookups:
            args = self.args()
            if len(args) != 1:
                self.fail(f"lookup {fname}() takes one argument, got {len(args)}")
            return self.lookups[fname](args[0])
        if fname not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS) + ["d", "lag"] + sorted(self.lookups))
            self.fail(f"unsupported function {fname!r} (supported: {known})")
        counts, build = FUNCTIONS[fname]
        args = self.args()
        if len(args) not in counts:
            want = " or ".join(str(c) for c in counts) if len(counts) < 4 else f"{counts[0]} to {counts[-1]}"
            self.fail(f"{fname}() takes {want} arguments, got {len(args)}")
        for a in args if fname != "if_" else args[1:]:
            if isinstance(a, sp.logic.boolalg.Boolean) and not isinstance(a, sp.Expr):
                self.fail(f"a comparison can only be the condition of if_(), not an argument of {fname}()")
        if fname == "if_" and not _is_condition(args[0]):
            self.fail("the first argument of if_() must be a comparison such as x > 0")
        return build(*args)

    def marker_call(self, fname):
        if not self.allow_markers:
            self.fail(f"{fname}() is only allowed in equations and matrix entries")
        args = self.args()
        if len(args) != 1:
            self.fail(f"{fname}() takes exactly one argument")
        (arg,) = args
        if fname == "d":
            if not isinstance(arg, sp.Symbol) or arg == T or marker(arg)[0]:
                self.fail("d() takes the name of a stock, e.g. d(Hh)")
            return dsym(arg.name)
        # lag(expr): lag every name in expr
        if any(marker(s)[0] for s in arg.free_symbols) or T in arg.free_symbols:
            self.fail("lag() cannot contain t, d() or another lag(); define an equation for the inner value")
        return arg.xreplace({s: lagsym(s.name) for s in arg.free_symbols})


def _check_real(node: sp.Basic, text: str) -> None:
    """Refuse constants that are not real numbers of double precision.

    sympy evaluates ``sqrt(-1)`` to ``I`` and ``log(-2)`` to ``log(2) + I*pi`` at parse time;
    numpy would then drop the imaginary part of every value computed from them.
    """
    for sub in sp.preorder_traversal(node):
        if isinstance(sub, sp.Number):
            try:
                ok = bool(np.isfinite(float(sub)))
            except (OverflowError, TypeError, ValueError):
                ok = False
            if not ok:
                raise ExpressionError(
                    f"the number {_short(sub)} in {text!r} is outside the range of double precision (about 1e308)"
                )
        elif sub.is_number and sub.is_extended_real is False:
            raise ExpressionError(
                f"{_short(sub)} in {text!r} is not a real number (e.g. sqrt or a fractional "
                "power of a negative number, log of a negative number)"
            )


def _short(e) -> str:
    t = str(e)
    return t if len(t) <= 40 else t[:20] + "..." + t[-10:]


def parse(
    text, names: Iterable[str] | None = None, *, allow_markers: bool = True, lookups: dict[str, type] | None = None
) -> sp.Expr:
    """Parse one model expression into sympy.

    Parameters
    ----------
    text : str or number
        The expression as written in the model file.
    names : iterable of str, optional
        The declared names; any other name is an error. ``None`` accepts any name.
    allow_markers : bool
        Whether ``d()`` and ``lag()`` may appear.
    lookups : mapping of name to :func:`make_lookup` class, optional
        Table functions that may be called as ``name(x)``.

    Raises
    ------
    ExpressionError
        On any character, name, function or construct outside the whitelist.
    """
    if isinstance(text, bool) or text is None:
        raise ExpressionError(f"expected an expression or a number, got {text!r}")
    if isinstance(text, (int, float)):
        if isinstance(text, float) and not np.isfinite(text):
            raise ExpressionError(f"expected a finite number, got {text!r}")
        if isinstance(text, int) and abs(text) >= 10**MAX_EXPONENT:
            raise ExpressionError(f"the number {_short(text)} is outside the range of double precision (about 1e308)")
        return sp.Rational(repr(text)) if isinstance(text, float) else sp.Integer(text)
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression or a number, got {type(text).__name__} {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression of {len(text):,} characters (at most {MAX_LENGTH:,}); split it into equations"
        )
    p = _Parser(text, None if names is None else set(names), allow_markers, lookups)
    try:
        node = p.parse()
    except RecursionError:  # sympy's own recursion on a deep expression that passed the depth limit
        raise ExpressionError(f"{_short(text)!r} is nested too deeply to evaluate; split it into equations") from None
    if node.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise ExpressionError(f"division by zero in {text!r}")
    _check_real(node, text)
    if isinstance(node, sp.logic.boolalg.Boolean) and not isinstance(node, sp.Expr):
        raise ExpressionError(f"a comparison can only be the condition of if_(), in {text!r}")
    return node
