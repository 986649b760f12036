"""What a check of a model's accounting found: one :class:`Check` per row, column and stock, and the
:class:`AccountingReport` of them all (:func:`sdmodel.model.accounting.check_accounting` makes them).

Plain data, apart from sympy: a compiled model read back from the compile cache carries its report
without loading the machinery that proved it.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sdmodel.core.errors import AccountingError

Status = Literal["proven", "verified", "monitored", "unbalanced start", "failed"]
UNBALANCED_START: Status = "unbalanced start"
#: how to allow an unbalanced start, in every place it can be said (the error's hint)
ALLOW_HINT = (
    "if they are a published model's rounded starting values, allow them with allow_unbalanced_start: true "
    "in the model or scenario file, --allow-unbalanced-start (sdmodel check, sdmodel run) or "
    "allow_unbalanced_start=True (the dynamics are still checked)"
)


@dataclass(frozen=True)
class Check:
    """The result for one row, column or stock of a matrix."""

    matrix: Literal["transactions", "balance_sheet", "stock"]
    kind: Literal["row", "column", "stock"]
    name: str
    status: Status
    residual: str = "0"
    note: str = ""

    @property
    def ok(self) -> bool:
        """Whether the check passed: not failed (an unbalanced start is judged by the report, which
        refuses it unless the model allows it)."""
        return self.status != "failed"

    def describe(self) -> str:
        where = {"transactions": "transactions ", "balance_sheet": "balance sheet ", "stock": ""}[self.matrix]
        s = f"{where}{self.kind} {self.name!r}: {self.status}"
        if self.status == "failed":
            s += f", sums to {self.residual}, expected 0"
        elif self.status == UNBALANCED_START:
            s += f", sums to {self.residual} at the initial values, expected 0"
        if self.note:
            s += f" ({self.note})"
        return s


@dataclass(frozen=True)
class AccountingReport:
    """Everything :func:`check_accounting` found. ``ok`` is True when nothing failed."""

    model: str
    source: str
    checks: tuple[Check, ...]
    dynamics: Mapping[str, tuple[str, str]]  # stock -> (how determined, d(X) expression)
    problems: tuple[str, ...] = ()  # structural problems (no/too many undetermined stocks, ...)
    diagnosis: tuple[str, ...] = ()  # suspected sign flips
    unused: tuple[str, ...] = ()
    net_worth: Mapping[str, str] = field(default_factory=dict)
    #: whether the model may start from values that do not balance (checks ``unbalanced start``)
    allow_unbalanced_start: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failures

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that fail, and the unbalanced starts unless the model allows them."""
        return tuple(
            c for c in self.checks if not c.ok or (c.status == UNBALANCED_START and not self.allow_unbalanced_start)
        )

    @property
    def unbalanced_start(self) -> tuple[Check, ...]:
        """The balance-sheet rows and columns whose change is zero but which are off at the initial values."""
        return tuple(c for c in self.checks if c.status == UNBALANCED_START)

    def summary_lines(self) -> list[str]:
        counts: dict[str, int] = {}
        for c in self.checks:
            counts[c.status] = counts.get(c.status, 0) + 1
        return [f"{n} {s}" for s, n in sorted(counts.items())]

    def error_message(self) -> str:
        parts = list(self.diagnosis) + list(self.problems) + [c.describe() for c in self.failures]
        if any(c.status == UNBALANCED_START for c in self.failures):
            parts.append(f"the initial values do not balance: {ALLOW_HINT}")
        return "; ".join(parts)

    def raise_if_failed(self):
        """Raise :class:`AccountingError` naming every imbalance, if any."""
        if not self.ok:
            raise AccountingError(self.error_message(), self.source, report=self)
        return self

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(c) for c in self.checks])

    def __str__(self):
        monitored = sum(c.status == "monitored" for c in self.checks)
        verdict = (
            "NOT balanced"
            if not self.ok
            else "balanced"
            if not monitored
            else f"no imbalance found ({monitored} monitored: checked every step, not proven)"
        )
        if self.ok and self.unbalanced_start:
            verdict += (
                f", but the start is not ({len(self.unbalanced_start)} off at the initial values, allowed: "
                "runs gate every balance-sheet row on its change from their first step)"
            )
        lines = [f"accounting of {self.model!r}: {verdict}"]
        lines += ["  stock dynamics (derived):"]
        for s, (how, e) in self.dynamics.items():
            lines.append(f"    d({s}) = {e}    [{how}]")
        lines += ["  checks:"] + [f"    {c.describe()}" for c in self.checks]
        if self.net_worth:
            lines += ["  net worth by sector (balance-sheet column sums):"]
            lines += [f"    {k}: {v}" for k, v in self.net_worth.items()]
        for p in self.problems:
            lines.append(f"  problem: {p}")
        for d in self.diagnosis:
            lines.append(f"  diagnosis: {d}")
        if self.unused:
            lines.append(f"  unused names: {', '.join(self.unused)}")
        return "\n".join(lines)


def progress_line(message: str) -> None:
    """One line of progress on stderr (``sdmodel: ...``), for long work whose caller asked to hear about it."""
    print(f"sdmodel: {message}", file=sys.stderr, flush=True)


__all__ = ["ALLOW_HINT", "UNBALANCED_START", "AccountingReport", "Check", "Status", "progress_line"]
