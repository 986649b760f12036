"""Reading input files: typed readers that record every problem with its file, key and line.

Every loader (model, scenario, parameter file, calibration config, study config,
sequencing designs) reads its YAML through one :class:`Problems` collector.  A
reader checks one value, returns it (converted) when it is good, and otherwise
records a problem ``key (line N): what is wrong`` and returns ``None``, so the
loader goes on and the user sees every problem of the file at once when the
loader calls :meth:`Problems.raise_if_any`.

Lines come from the YAML reader of :mod:`sdmodel.model.spec`, whose mappings remember
the 1-based line of each key in a ``lines`` attribute; a reader is told the
mapping and the entry (``mapping, sub``) the value was read from.

Examples
--------
>>> p = Problems("c.yaml")
>>> p.number("search.popsize", 0, positive=True, integer=True)
>>> p.number("search.tol", "1e-6", minimum=0)
1e-06
>>> p.one_of("solver.method", "rk5", ("rk4", "euler"))
>>> for item in p.items: print(item)
search.popsize: expected a positive whole number, got 0
solver.method: expected 'rk4' or 'euler', got 'rk5'; did you mean 'rk4'?
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

from sdmodel.core.errors import SpecError

#: A name used in file and folder names (model, design): letters, digits, ``_``, ``-`` and ``.``,
#: not starting with ``.`` or ``-``, without ``..``, at most 100 characters.
PLAIN_NAME = re.compile(r"\w[\w.\-]{0,99}")


class NumberRules(TypedDict, total=False):
    """What :meth:`Problems.number` checks (every rule optional)."""

    finite: bool  # refuse NaN and infinities (default True)
    positive: bool  # > 0
    integer: bool  # a whole number (returned as int)
    minimum: float | None  # inclusive
    maximum: float | None  # inclusive
    what: str | None  # names the number in the message ("a positive time step")
    hint: str  # added after the message


#: Lists of known names longer than this are not printed whole; the closest match is suggested.
LIST_AT_MOST = 12


def line_of(mapping: Any, sub: Any) -> int | None:
    """The 1-based line of entry ``sub`` of a mapping read from YAML, or None when unknown."""
    lines = getattr(mapping, "lines", None)
    return lines.get(sub) if isinstance(lines, dict) else None


def to_number(v: Any, *, finite: bool = True, integer: bool = False) -> float | int:
    """A number from a YAML scalar, or ``ValueError`` saying why not.

    Accepts ints, floats and numeric text (YAML 1.1 reads ``1e-3`` as text); refuses
    booleans (``true`` is not 1), lists, mappings and ``None``; with ``finite``,
    NaN and infinities; with ``integer``, numbers with a fractional part (an
    integral float is returned as an ``int``).

    >>> to_number("1e-3"), to_number(2.0, integer=True)
    (0.001, 2)
    """
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError("type")
    try:
        out = float(v)
    except ValueError:
        raise ValueError("type") from None
    if finite and not math.isfinite(out):
        raise ValueError("finite")
    if integer:
        if not out.is_integer():
            raise ValueError("integer")
        return int(v) if isinstance(v, int) else int(out)
    return out


def closest(name: Any, known: Iterable[Any]) -> str | None:
    """The known name closest to ``name`` (``difflib``, as for undeclared names in expressions), or None."""
    hint = difflib.get_close_matches(str(name), sorted(map(str, known)), n=1)
    return hint[0] if hint else None


def suggestion(name: Any, known: Sequence[Any]) -> str:
    """``"; did you mean 'kappa'?"``, else the known names when there are few, else how many there are."""
    hint = closest(name, known)
    if hint is not None:
        return f"; did you mean {hint!r}?"
    if not known:
        return " (there are none)"
    if len(known) <= LIST_AT_MOST:
        return f" (expected one of {', '.join(map(str, known))})"
    return f" (none of its {len(known)} names is close)"


def _quote_list(choices: Sequence[Any]) -> str:
    q = [repr(c) for c in choices]
    return " or ".join(q) if len(q) <= 2 else "one of " + ", ".join(q)


def _describe(*, positive=False, integer=False, minimum=None, maximum=None, what=None, finite_word=False) -> str:
    noun = (
        ("finite " if finite_word else "")
        + ("positive " if positive else "")
        + (what or ("whole number" if integer else "number"))
    )
    if minimum is not None and maximum is not None:
        noun += f" in [{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        noun += f" >= {minimum:g}"
    elif maximum is not None:
        noun += f" <= {maximum:g}"
    return "a " + noun


def _ends(what: str) -> tuple[str, str]:
    """``"[start, stop]"`` -> ``("start", "stop")``."""
    parts = [s.strip() for s in what.strip("[]()").split(",")]
    return (parts[0], parts[1]) if len(parts) == 2 else ("the first", "the second")


class Problems:
    """The problems of one input file, collected so that all are reported at once.

    Parameters
    ----------
    source : str, optional
        The file (it prefixes the message of the error raised).
    error : type
        The :class:`~sdmodel.core.errors.SpecError` subclass :meth:`raise_if_any` raises
        (:class:`~sdmodel.core.errors.ConfigError` for calibration and study configs).

    Every reader takes the dotted ``key`` to report, the value, and where the
    value was read from (``mapping`` and its entry ``sub``; ``sub`` defaults to
    the last part of ``key``) for the line number.  A good value is returned
    converted; a bad one is recorded and ``None`` returned.
    """

    def __init__(self, source: str | None = None, error: type[SpecError] = SpecError):
        self.source = source
        self.error = error
        self.items: list[str] = []

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    # ---------------------------------------------------------------- recording
    def add(self, key: Any, msg: str, mapping: Any = None, sub: Any = None) -> None:
        """Record ``key (line N): msg``, the line that of ``mapping[sub]`` when known."""
        line = None
        if mapping is not None:
            line = line_of(mapping, sub if sub is not None else str(key).split(".")[-1])
        self.items.append(f"{key}{f' (line {line})' if line else ''}: {msg}")

    def raise_if_any(self, source: str | None = None, error: type[SpecError] | None = None) -> None:
        """Raise one error listing every problem recorded (nothing when there is none)."""
        if self.items:
            raise (error or self.error)(self.items, source if source is not None else self.source)

    # ---------------------------------------------------------------- numbers
    def number(self, key, v, mapping=None, sub=None, **rules: Unpack[NumberRules]) -> float | int | None:
        """A number (``int`` with ``integer``), or None with the problem recorded.

        ``positive`` means > 0; ``minimum`` and ``maximum`` are inclusive.  Booleans,
        text that is not a number and (with ``finite``, the default) NaN and
        infinities are refused; nothing is rounded or clipped.  ``what`` names the
        number in the message (``"time step"``: "expected a positive time step"),
        ``hint`` is added after it.

        >>> p = Problems()
        >>> p.number("seed", 1.5, integer=True, minimum=0), p.items
        (None, ['seed: expected a whole number >= 0, got 1.5'])
        """
        finite, integer = rules.get("finite", True), rules.get("integer", False)
        positive, minimum, maximum = rules.get("positive", False), rules.get("minimum"), rules.get("maximum")
        hint = rules.get("hint", "")
        shown: dict[str, Any] = dict(
            positive=positive, integer=integer, minimum=minimum, maximum=maximum, what=rules.get("what")
        )
        try:
            x = to_number(v, finite=finite, integer=integer)
        except ValueError as why:
            self.add(
                key,
                f"expected {_describe(**shown, finite_word=str(why) == 'finite')}, got {v!r}"
                + (f" ({hint})" if hint else ""),
                mapping,
                sub,
            )
            return None
        if (positive and not x > 0) or (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
            self.add(key, f"expected {_describe(**shown)}, got {v!r}" + (f" ({hint})" if hint else ""), mapping, sub)
            return None
        return x

    def pair(
        self, key, v, mapping=None, sub=None, *, what: str = "[a, b]", label: str | None = None
    ) -> tuple[float, float] | None:
        """Two finite numbers ``[a, b]`` (a list of two), or None with the problem recorded."""
        try:
            if not isinstance(v, (list, tuple)) or len(v) != 2:
                raise ValueError
            a, b = (float(to_number(x)) for x in v)
        except ValueError:
            self.add(
                key,
                f"{label} must be two numbers {what}, got {v!r}"
                if label
                else f"expected {what} as two finite numbers, got {v!r}",
                mapping,
                sub,
            )
            return None
        return a, b

    def interval(
        self,
        key,
        v,
        mapping=None,
        sub=None,
        what: str = "[start, stop]",
        *,
        label: str | None = None,
        within: tuple[float, float] | None = None,
    ) -> tuple[float, float] | None:
        """Two increasing numbers ``[a, b]`` (``a < b``; inside ``within`` if given), or None with the problem
        recorded."""
        ab = self.pair(key, v, mapping, sub, what=what, label=label)
        if ab is None:
            return None
        a, b = ab
        lo, hi = _ends(what)
        if not a < b:
            self.add(
                key,
                f"{label} must be {what} with {lo} < {hi}, got {list(v)}"
                if label
                else f"inverted or empty range: expected {lo} < {hi}, got {list(v)}",
                mapping,
                sub,
            )
            return None
        if within is not None and (a < within[0] or b > within[1]):
            self.add(key, f"[{a:g}, {b:g}] is outside [{within[0]:g}, {within[1]:g}]", mapping, sub)
            return None
        return a, b

    def boolean(self, key, v, mapping=None, sub=None) -> bool | None:
        """``true`` or ``false`` (not 1, 0 or text such as ``yes``), or None with the problem recorded."""
        if isinstance(v, bool):
            return v
        self.add(key, f"expected true or false, got {v!r}", mapping, sub)
        return None

    # ---------------------------------------------------------------- structure
    def mapping(
        self,
        key,
        v,
        mapping=None,
        sub=None,
        *,
        keys: Sequence[str] | None = None,
        required: Sequence[str] = (),
        expected: str | None = None,
        optional: bool = True,
    ) -> dict | None:
        """A mapping (``{}`` for an absent or empty one when ``optional``), each unknown key and each missing
        required key recorded; None (problem recorded) when ``v`` is not a mapping.

        ``expected`` describes the mapping for the message (default: its keys).
        """
        if v is None and optional:
            v = {}
        if not isinstance(v, dict):
            expected = expected or ("a mapping with keys " + ", ".join(keys) if keys else "a mapping")
            self.add(key, f"expected {expected}, got {v!r}", mapping, sub)
            return None
        if keys is not None:
            self.unknown_each(v, keys, f"{key}.")
        for k in required:
            if k not in v:
                self.add(f"{key}.{k}", "missing (required)", mapping, sub)
        return v

    def unknown_keys(self, key, spec: Mapping, allowed, mapping=None, sub=None) -> None:
        """One problem naming every key of ``spec`` not in ``allowed`` (the line: ``mapping[sub]``)."""
        bad = [k for k in spec if k not in allowed]
        if bad:
            hints = [f"{k!r} -> {closest(k, allowed)!r}" for k in bad if closest(k, allowed)]
            self.add(
                key,
                f"unknown keys {bad} (expected {', '.join(allowed)})"
                + (f"; did you mean {', '.join(hints)}?" if hints else ""),
                mapping,
                sub,
            )

    def unknown_each(self, d: Mapping, allowed, prefix: str = "") -> None:
        """One problem per key of ``d`` not in ``allowed``, each with its own line."""
        for k in d:
            if k not in allowed:
                hint = closest(k, allowed)
                self.add(
                    f"{prefix}{k}",
                    f"unknown key (expected one of {', '.join(allowed)})"
                    + (f"; did you mean {hint!r}?" if hint else ""),
                    d,
                    k,
                )

    def one_of(
        self, key, v, choices: Sequence[Any], mapping=None, sub=None, *, hint: str = "", label: str | None = None
    ) -> Any:
        """``v`` if it is one of ``choices``, else None with the problem (and the closest choice) recorded.

        The message is ``expected 'a' or 'b', got 'c'`` (``<label> must be 'a' or 'b', got 'c'`` with a label).
        """
        if not isinstance(v, bool) and isinstance(v, (str, int, float)) and v in choices:
            return v
        near = closest(v, choices) if isinstance(v, str) else None
        head = f"{label} must be" if label else "expected"
        self.add(
            key,
            f"{head} {_quote_list(choices)}{f' ({hint})' if hint else ''}, got {v!r}"
            + (f"; did you mean {near!r}?" if near else ""),
            mapping,
            sub,
        )
        return None

    def name_in(
        self, key, v, known: Iterable[Any], mapping=None, sub=None, *, what: str = "a name", of: str = ""
    ) -> Any:
        """``v`` if it is in ``known``, else None with ``'v' is not <what> <of>; did you mean ...?`` recorded."""
        known = list(known)
        if isinstance(v, (str, int, float)) and not isinstance(v, bool) and v in known:
            return v
        self.add(key, f"{v!r} is not {what}{f' {of}' if of else ''}" + suggestion(v, known), mapping, sub)
        return None

    def names_in(
        self, key, values, known: Iterable[Any], mapping=None, sub=None, *, what: str = "a name", of: str = ""
    ) -> list | None:
        """The names of the non-empty list ``values`` that are in ``known``, one problem per unknown name;
        None (problem recorded) when ``values`` is not a non-empty list."""
        if not isinstance(values, (list, tuple)) or not values:
            self.add(key, f"expected a non-empty list of names, got {values!r}", mapping, sub)
            return None
        known = list(known)
        return [n for n in values if self.name_in(key, n, known, mapping, sub, what=what, of=of) is not None]

    def plain_name(self, key, v, mapping=None, sub=None, *, what: str = "name") -> str | None:
        """``v`` if it can name a file or folder by itself, else None with the problem recorded.

        A plain name has letters, digits, ``_``, ``-`` and ``.``, does not start with
        ``.`` or ``-``, holds no ``..`` and is at most 100 characters: never a path
        (``/``, ``\\``, ``..``, an absolute path), since names become parts of run-folder paths.
        """
        if isinstance(v, str) and PLAIN_NAME.fullmatch(v) and ".." not in v:
            return v
        self.add(
            key,
            f"{v!r} is not a plain {what}: use letters, digits, _, - and . (not first), "
            "no path separators or '..', at most 100 characters",
            mapping,
            sub,
        )
        return None


__all__ = ["Problems", "PLAIN_NAME", "closest", "line_of", "suggestion", "to_number"]
