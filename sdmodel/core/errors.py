"""The exceptions sdmodel raises on purpose.

Every error subclasses :class:`SdmodelError` and also the builtin it refines, so
``except ValueError`` keeps working for callers who do not know sdmodel.
Messages say what is wrong, where (file, key, row, column, variable, time),
what was expected, and one hint.
"""

from __future__ import annotations

from collections.abc import Iterable


class SdmodelError(Exception):
    """Base class: catch this to catch everything sdmodel raises on purpose."""


class SpecError(SdmodelError, ValueError):
    """A model file is malformed: bad YAML, undeclared name, duplicate, bad expression.

    ``problems`` holds every problem found (all are reported at once); ``str()``
    joins them on one line so the CLI can print it as is.
    """

    def __init__(self, problems, source: str | None = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = tuple(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            text = prefix + self.problems[0]
        else:
            text = prefix + f"{len(self.problems)} problems: " + "; ".join(self.problems)
        return text.replace("\r", "\\r").replace("\n", "\\n")  # always one line


class ExpressionError(SpecError):
    """An expression could not be parsed or uses something not allowed."""


class AccountingError(SpecError):
    """The balance-sheet or transactions-flow matrix does not balance.

    ``report`` is the :class:`sdmodel.model.accounting.AccountingReport` with every
    imbalance, so callers can inspect them without parsing text.
    """

    def __init__(self, problems, source=None, report=None):
        self.report = report
        super().__init__(problems, source)


class CompileError(SpecError):
    """The equations cannot be ordered or solved (e.g. a singular linear block)."""


class SimulationError(SdmodelError, RuntimeError):
    """A simulation failed (non-finite values, Newton did not converge, solver failure).

    ``t_failed`` is the time at which it failed and ``partial`` the result up to then.
    """

    def __init__(self, message: str, t_failed=None, partial=None):
        self.t_failed = t_failed
        self.partial = partial
        super().__init__(message)


class DataError(SdmodelError, ValueError):
    """A data file does not hold what was expected (layout, column, series, value)."""


class MissingInputError(SdmodelError, FileNotFoundError):
    """Input files are missing; ``missing`` names every one of them."""

    def __init__(self, message: str, missing: Iterable[str] = ()):
        self.missing = tuple(missing)
        super().__init__(message)


class OutputError(SdmodelError, OSError):
    """An output path cannot be used: it holds something sdmodel did not write, is a file where a
    folder is expected (or the reverse), is being written by another process, or is not writable.

    Subclasses :class:`OSError` (as :class:`MissingInputError` subclasses
    :class:`FileNotFoundError`), so callers that catch file-system errors keep
    catching it.  Nothing at the path has been changed when it is raised.
    """


class ConfigError(SpecError):
    """A calibration config, study config or sequencing design is malformed.

    A :class:`SpecError` (so also a :class:`ValueError`) with the same
    ``problems`` and one-line message: every problem at once, each with its key
    and line.
    """


class ManifestError(SdmodelError, ValueError):
    """A run directory has no readable sdmodel manifest (missing, not JSON, unknown kind, newer schema)."""


class MissingDependencyError(SdmodelError, ImportError):
    """A feature needs a package that is not installed; the message says what to pip install."""


class ExtrapolationWarning(UserWarning):
    """A run goes beyond the data of a time series it uses: before the first point or after the last.

    Outside its points a series is held constant (its first value before them, its last after), so
    results there rest on that assumption. A series whose last value is meant to hold declares
    ``extrapolate: hold`` in the model file and is not warned about. ``series`` holds one
    ``(name, first time, last time, side)`` per series (side ``"before"`` or ``"after"``) and
    ``span`` the run's (start, stop). Filter it as any warning:
    ``warnings.simplefilter("ignore", sdmodel.core.errors.ExtrapolationWarning)``.
    """

    def __init__(self, message: str, series=(), span=None):
        self.series = tuple(series)
        self.span = span
        super().__init__(message)


class UnbalancedStartWarning(UserWarning):
    """A run starts from values whose balance sheet does not balance, and the model allows it
    (``allow_unbalanced_start``: a published model's rounded starting values).

    The dynamics are still checked: every balance-sheet row is gated on its change from its value at
    the run's first step, so only the start's offset is accepted. ``rows`` holds one ``(row, residual)``
    per row the accounting found off at the initial values (``"balance_sheet:Money"``, in the model's
    units). Filter it as any warning:
    ``warnings.simplefilter("ignore", sdmodel.core.errors.UnbalancedStartWarning)``.
    """

    def __init__(self, message: str, rows=()):
        self.rows = tuple(rows)
        super().__init__(message)
