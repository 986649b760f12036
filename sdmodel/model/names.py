"""The names of the expression language, as text: what a name may not be, and how a marker name
(``d(X)``, ``lag(X)``) splits. Plain strings, no sympy: read by what handles a compiled model's names
(:mod:`sdmodel.engine.simulation`) as well as by the expressions (:mod:`sdmodel.model.expr`)."""

from __future__ import annotations

import re

#: Names the expression language keeps for itself (time, d() and lag()): no variable may take them.
RESERVED = frozenset({"t", "d", "lag"})

_MARK = re.compile(r"^(d|lag)\((\w+)\)$")


def split_marker(name: str) -> tuple[str | None, str]:
    """Split a name into ``(kind, base)``: ``('d', 'Hh')``, ``('lag', 'Y')`` or ``(None, 'Y')``.

    >>> split_marker("d(Hh)"), split_marker("Y")
    (('d', 'Hh'), (None, 'Y'))
    """
    m = _MARK.match(name)
    if m:
        return m.group(1), m.group(2)
    return None, name


__all__ = ["RESERVED", "split_marker"]
