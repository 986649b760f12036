"""Load and validate model files: YAML in, an immutable :class:`Model` out.

This is the first stage of the pipeline.  It reads the file with
``yaml.safe_load`` semantics (plus duplicate-key detection and line numbers),
parses every expression with the whitelist parser of :mod:`sdmodel.model.expr`,
checks that every name is declared exactly once, and reports every problem
it finds at once, each naming the file, the key and the line.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import yaml

from sdmodel.core.errors import ExpressionError, SpecError
from sdmodel.core.html import html_table
from sdmodel.core.inputs import check_yaml_expansion, decode_text, read_input, shipped_dir
from sdmodel.core.manifest import FieldHash
from sdmodel.core.options import FIXED_METHODS, IVP_METHODS
from sdmodel.core.validate import PLAIN_NAME, Problems, closest, line_of, to_number
from sdmodel.model import translate
from sdmodel.model.names import RESERVED

if TYPE_CHECKING:
    import sympy as sp

    from sdmodel.model.expr import LookupBase

# sympy loads with the expression language (sdmodel.model.expr), when a model's expressions are parsed;
# a model loaded from the compile cache's record of its files (sdmodel.engine.cache) never parses them.

TOP_KEYS = (
    "name",
    "description",
    "sectors",
    "time",
    "stocks",
    "initial",
    "parameters",
    "series",
    "equations",
    "balance_sheet",
    "transactions",
    "history",
    "lookups",
    "shocks",
    "report",
    "allow_unbalanced_start",
)
#: What a scenario file (``<model>/scenarios/<name>.yaml``) may change in its model.
#: The keys of a series: ``data``, or ``csv`` with its columns; how it is read between and after its points.
SERIES_KEYS = ("data", "csv", "time", "column", "scale", "shift", "interpolation", "extrapolate", "doc", "unit")
SCENARIO_KEYS = (
    "description",
    "time",
    "stocks",
    "initial",
    "parameters",
    "parameter_file",
    "series",
    "equations",
    "shocks",
    "history",
    "report",
    "allow_unbalanced_start",
)
#: The keys of one shock of a parameter: in force from ``from`` to ``to`` (the last time; default: the end).
SHOCK_KEYS = ("from", "to", "value")


class _Frozen(dict):
    """A read-only mapping of a model while it is pickled (a mappingproxy itself does not pickle)."""


def _thaw(v):
    return _Frozen({k: _thaw(x) for k, x in v.items()}) if isinstance(v, MappingProxyType) else v


def _freeze(v):
    return MappingProxyType({k: _freeze(x) for k, x in v.items()}) if type(v) is _Frozen else v


def _read_only(v):
    return _freeze(v)


def _rebuild(cls, fields: dict):
    return cls(**{k: _freeze(v) for k, v in fields.items()})


class _PicklesReadOnly:
    """Models and matrices hold read-only mappings; they pickle (process pools, Dask) as copies that
    are read-only again when unpickled, without registering anything for mappingproxy at large."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # every subclass is a dataclass

    def __reduce__(self):
        return _rebuild, (type(self), {f.name: _thaw(getattr(self, f.name)) for f in dataclasses.fields(self)})


# --------------------------------------------------------------------------- YAML
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """safe_load with line numbers and an error on duplicate keys (safe_load keeps the last); libyaml's
    parser where PyYAML has it (ten times the pure-Python one on the bsr model), the same constructors."""


class LineDict(dict):
    """A dict that remembers the 1-based line of each key."""

    lines: dict


def _construct_mapping(loader, node, deep=False):
    explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)  # merged (<<) pairs come first; explicit keys may override them
    out = LineDict()
    out.lines = {}
    seen_explicit = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float)):
            raise yaml.constructor.ConstructorError(None, None, f"unsupported key {key!r}", key_node.start_mark)
        is_explicit = id(key_node) in explicit
        if key in out and (not is_explicit or key in seen_explicit):
            raise _Duplicate(key, key_node.start_mark.line + 1, out.lines[key])
        if is_explicit:
            seen_explicit.add(key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


class _Duplicate(Exception):
    def __init__(self, key, line, first):
        self.key, self.line, self.first = key, line, first


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads yes/no/on/off as booleans, which would turn a variable named `on` into True;
# only true/false are booleans here (as in YAML 1.2).
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _read_yaml(text: str, source: str):
    check_yaml_expansion(text, source)  # a few lines of nested aliases can expand to billions of values
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except RecursionError:
        raise SpecError("the YAML is nested too deeply to read", source) from None
    except _Duplicate as dup:
        raise SpecError(
            f"duplicate key {dup.key!r} at line {dup.line} (first defined at line {dup.first})", source
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"malformed YAML{where}: {what}", source) from None


# --------------------------------------------------------------------------- data objects
@dataclass(frozen=True)
class Parameter:
    """A model parameter: a number with optional bounds, doc and unit."""

    name: str
    value: float
    bounds: tuple[float, float] | None = None
    doc: str = ""
    unit: str = ""


@dataclass(frozen=True)
class Series:
    """An exogenous path: values at times, interpolated ``linear`` or ``previous`` (a step).

    Outside its points a series is held constant: at its first value before them, at its last
    after them. ``hold`` says, for (before, after), whether that is meant (a schedule that stays in
    force: ``extrapolate: hold`` in the model file for after the last point,
    ``extrapolate: {before: hold, after: hold}`` for both sides) or is an assumption a run is
    warned about (the default; see :class:`~sdmodel.core.errors.ExtrapolationWarning`).
    """

    name: str
    times: tuple[float, ...]
    values: tuple[float, ...]
    interpolation: Literal["linear", "previous"] = "linear"
    source: str = "inline"
    hold: tuple[bool, bool] = (False, False)

    def beyond(self, start: float, stop: float) -> tuple[bool, bool]:
        """Whether a run over ``[start, stop]`` starts before the first point and whether it ends after
        the last one, where holding the value there is not declared intended (:attr:`hold`). A
        series of one point is a constant: never beyond."""
        if len(self.times) < 2:
            return False, False
        first, last = self.times[0], self.times[-1]
        eps = 1e-9 * max(1.0, abs(first), abs(last))
        return start < first - eps and not self.hold[0], stop > last + eps and not self.hold[1]

    def __call__(self, t):
        """Value(s) at time(s) ``t``; held constant outside the data range."""
        ts, vs = np.asarray(self.times), np.asarray(self.values)
        t = np.asarray(t, dtype=float)
        if self.interpolation == "previous":
            idx = np.clip(np.searchsorted(ts, t + 1e-12 * max(1.0, abs(ts[-1])), side="right") - 1, 0, len(ts) - 1)
            return vs[idx]
        return np.interp(t, ts, vs)


@dataclass(frozen=True)
class Shock:
    """A parameter's value from time ``start`` to ``end`` (inclusive; ``inf``: to the end of the run),
    as R sfcr's ``sfcr_shock``: the parameter keeps its own value outside, and stays a parameter."""

    parameter: str
    start: float
    end: float
    value: float


@dataclass(frozen=True)
class Matrix(_PicklesReadOnly):
    """A balance-sheet or transactions-flow matrix: ``rows[row][column] -> sympy.Expr``.

    ``sums`` is the optional Σ column (value of real assets in a balance sheet;
    zero where absent); ``text`` keeps each entry as written, for display.
    """

    kind: Literal["balance_sheet", "transactions"]
    rows: Mapping[str, Mapping[str, sp.Expr]]
    columns: tuple[str, ...]
    sums: Mapping[str, sp.Expr]
    text: Mapping[tuple[str, str], str]
    lines: Mapping[str, int]

    @property
    def has_sum(self) -> bool:
        """Whether the Godley table shows a Σ column (transactions always; a balance sheet with real assets)."""
        return bool(self.sums) or self.kind == "transactions"

    @property
    def header(self) -> list[str]:
        """The Godley table's header: an empty corner, the sectors, and Σ where it has the column."""
        return ["", *self.columns] + (["Σ"] if self.has_sum else [])

    def cells(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the Godley table: the row name, each sector's entry as written in the
        model file, and the Σ column (zero, or the real assets of a balance-sheet row)."""
        rows = []
        for r in self.rows:
            line = [r] + [self.text.get((r, c), "") for c in self.columns]
            if self.has_sum:
                line.append(str(self.sums[r]) if r in self.sums else "0")
            rows.append(line)
        return self.header, rows

    def entries(self):
        """Iterate ``(row, column, expr)`` over the non-empty cells."""
        for r, cells in self.rows.items():
            for c, e in cells.items():
                yield r, c, e

    def cell_symbols(self) -> dict[str, dict[str, tuple[tuple[str, ...], tuple[tuple[str, int], ...]]]]:
        """``row -> column -> (names, exact)`` for the non-empty cells: the names of the symbols the entry
        reads (``d(X)`` and ``lag(X)`` as written, sorted), and ``((X, 1),)`` for an entry that is exactly
        ``X``, ``((X, -1),)`` for ``-X``, ``()`` for anything else. What the data dictionary of a run says
        of a name (:func:`sdmodel.report.rundirs.variable_dictionary`), without sympy where the matrix was
        read back from the compile cache."""
        import sympy as sp

        from sdmodel.model.expr import marker

        def exact(e) -> tuple[tuple[str, int], ...]:
            for side, x in ((1, e), (-1, -e)):
                if isinstance(x, sp.Symbol) and marker(x)[0] is None:
                    return ((x.name, side),)
            return ()

        return {
            r: {c: (tuple(sorted(s.name for s in e.free_symbols)), exact(e)) for c, e in cells.items()}
            for r, cells in self.rows.items()
        }

    def with_entry(self, row: str, column: str, expr: sp.Expr) -> Matrix:
        """A copy with one cell replaced (used to test and diagnose sign flips)."""
        rows = {r: dict(cells) for r, cells in self.rows.items()}
        rows[row][column] = expr
        text = dict(self.text)
        text[(row, column)] = str(expr)
        return dataclasses.replace(
            self, rows=MappingProxyType({r: MappingProxyType(c) for r, c in rows.items()}), text=MappingProxyType(text)
        )


@dataclass(frozen=True)
class TimeSettings:
    """``start``, ``stop``, ``dt``, ``mode`` and default ``method`` of a model; ``locked``: why its method
    and ``dt`` are part of its equations (e.g. an imported ``DELAY FIXED``, a shift register exact only at
    the file's step), so that a run with another method or step is refused ("" when they are free)."""

    start: float = 0.0
    stop: float = 100.0
    dt: float = 1.0
    mode: Literal["continuous", "discrete"] = "continuous"
    method: str = "rk4"
    locked: str = ""


@dataclass(frozen=True)
class Model(_PicklesReadOnly):
    """A validated model: names, parsed expressions and matrices. Immutable.

    Build it with :func:`load_model`; change parameters with :meth:`with_params`.
    """

    name: str
    description: str
    sectors: tuple[str, ...]
    time: TimeSettings
    stocks: Mapping[str, float]  # initial values (nan where given by an expression)
    initial: Mapping[str, float]
    parameters: Mapping[str, Parameter]
    series: Mapping[str, Series]
    equations: Mapping[str, sp.Expr]  # level equations, name -> expr
    changes: Mapping[str, sp.Expr]  # d(X) equations, stock -> expr
    balance_sheet: Matrix | None
    transactions: Matrix | None
    source: str = "<dict>"
    spec_hash: str = ""
    equation_text: Mapping[str, str] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)
    docs: Mapping[str, str] = field(default_factory=dict)
    scenario: str = ""  # scenario name, "" for the model as written
    path: str = ""  # the model file ("" for a model built from a mapping)
    scenario_file: str = ""  # the scenario file ("" for the model as written)
    history: Mapping[str, Series] = field(default_factory=dict)  # output name -> observed path
    history_source: str = ""
    #: stock -> expression of its initial value (parameters, series, t, other stocks and
    #: equation variables at the start time), Vensim's INTEG(flow, init expression)
    stock_init: Mapping[str, sp.Expr] = field(default_factory=dict)
    #: name -> :func:`~sdmodel.model.expr.make_lookup` class: table functions ``name(x)``
    lookups: Mapping[str, type[LookupBase]] = field(default_factory=dict)
    #: name -> unit, as the model file gives it (``unit:`` of a stock, equation, parameter or series)
    units: Mapping[str, str] = field(default_factory=dict)
    #: how results are presented (the ``report:`` block of the model file and its scenario): ``panels``
    #: (output -> title, the headline outputs), ``units`` (of those outputs), ``figure`` (the main figure's
    #: panels: ``{title, outputs, units}``), ``events`` ((time, label), ...) and ``window`` ((t0, t1, label))
    presentation: Mapping[str, Any] = field(default_factory=dict)
    #: parameter -> its shocks in time order (the ``shocks:`` block): from ``start`` to ``end`` the
    #: parameter takes the shock's value; the compiled code reads it through ``if_(t ...)``
    #: (:func:`shock_map`), so :meth:`with_params` still sets the value it has outside its shocks
    shocks: Mapping[str, tuple[Shock, ...]] = field(default_factory=dict)
    #: the starting values may leave balance-sheet rows off (``allow_unbalanced_start: true``: a published
    #: model's rounded values): the accounting accepts a row that is off only at the start, and runs gate
    #: every balance-sheet row on its change from their first step (see :mod:`sdmodel.model.accounting`)
    allow_unbalanced_start: bool = False
    #: output name -> the name results show it by: an imported Vensim/XMILE model's subscripted cells,
    #: ``stock__north`` -> ``stock[north]`` (model names are identifiers; results, ``SaveAt(outputs=...)``
    #: and the CSV and netCDF columns keep the file's own name, and take either)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: the files whose bytes make ``spec_hash``, in that order: the model file, then (under a scenario) the
    #: scenario file and its parameter file ("" where it names none), then the CSV files it reads
    inputs: tuple[str, ...] = ()

    # ---- conveniences
    @property
    def discrete(self) -> bool:
        return self.time.mode == "discrete"

    @property
    def param_values(self) -> dict[str, float]:
        return {k: p.value for k, p in self.parameters.items()}

    def with_params(self, values: Mapping[str, float] | None = None, **kw) -> Model:
        """A new model with some parameter values replaced; the original is unchanged.

        Raises
        ------
        SpecError
            If a name is not a parameter of the model or a value is not a finite number.
        """
        values = {**(values or {}), **kw}
        problems = []
        new = dict(self.parameters)
        for k, v in values.items():
            if k not in self.parameters:
                near = closest(k, self.parameters)
                problems.append(
                    f"{k!r} is not a parameter of model {self.name!r}"
                    + (
                        f"; did you mean {near!r}?"
                        if near
                        else f" (parameters: {', '.join(self.parameters)})"
                        if len(self.parameters) <= 12
                        else f" ({len(self.parameters)} parameters: see the model file)"
                    )
                )
                continue
            try:
                fv = float(v)
            except (TypeError, ValueError):
                problems.append(f"parameter {k!r}: expected a number, got {v!r}")
                continue
            if not np.isfinite(fv):
                problems.append(f"parameter {k!r}: expected a finite number, got {v!r}")
                continue
            lo_hi = self.parameters[k].bounds
            if lo_hi is not None and not lo_hi[0] <= fv <= lo_hi[1]:
                problems.append(f"parameter {k!r}: {fv:g} is outside its declared bounds [{lo_hi[0]:g}, {lo_hi[1]:g}]")
                continue
            new[k] = dataclasses.replace(self.parameters[k], value=fv)
        if problems:
            raise SpecError(problems, self.source)
        return dataclasses.replace(self, parameters=MappingProxyType(new))

    def with_series(self, values: Mapping[str, Any] | None = None, **kw) -> Model:
        """A new model with some series replaced: by a :class:`Series`, a ``{time: value}`` mapping
        (linear interpolation) or a number (constant). The equations are unchanged, so a compiled
        model is reused.

        Raises
        ------
        SpecError
            If a name is not a series of the model or a value is not a series, mapping or number.
        """
        values = {**(values or {}), **kw}
        problems, new = [], dict(self.series)
        for k, v in values.items():
            if k not in self.series:
                near = closest(k, self.series)
                problems.append(
                    f"{k!r} is not a series of model {self.name!r}"
                    + (f"; did you mean {near!r}?" if near else f" (series: {', '.join(self.series) or 'none'})")
                )
                continue
            try:
                if isinstance(v, Series):
                    new[k] = dataclasses.replace(v, name=k)
                else:
                    pts = (
                        sorted((to_number(t), to_number(x)) for t, x in v.items())
                        if isinstance(v, Mapping)
                        else [(self.time.start, to_number(v))]
                    )
                    if not pts:
                        raise ValueError
                    new[k] = Series(k, tuple(t for t, _ in pts), tuple(x for _, x in pts), "linear", "with_series")
            except (ValueError, TypeError, AttributeError):
                problems.append(f"series {k!r}: expected a Series, a {{time: value}} mapping or a number, got {v!r}")
        if problems:
            raise SpecError(problems, self.source)
        return dataclasses.replace(self, series=MappingProxyType(new))

    def with_time(self, **kw) -> Model:
        """A new model with time settings (``start``, ``stop``, ``dt``, ``method``) replaced."""
        return dataclasses.replace(self, time=dataclasses.replace(self.time, **kw))

    def all_names(self) -> list[str]:
        return [*self.stocks, *self.parameters, *self.series, *self.equations]

    @property
    def label(self) -> str:
        """``name`` or ``name/scenario``."""
        return f"{self.name}/{self.scenario}" if self.scenario else self.name

    def _repr_html_(self):
        """A notebook view: what the model is, its Godley tables and its parameters."""
        e = html.escape
        out = [
            f"<p><b>{e(self.label)}</b> ({self.time.mode} time, {self.time.start:g}..{self.time.stop:g}, "
            f"dt {self.time.dt:g}): {len(self.stocks)} stocks, {len(self.equations) + len(self.changes)} "
            f"equations, {len(self.parameters)} parameters, {len(self.series)} series. "
            f"{e(' '.join(self.description.split()))}</p>"
        ]
        for mat, title in ((self.balance_sheet, "balance sheet"), (self.transactions, "transactions-flow matrix")):
            if mat is not None:
                out.append(html_table(*mat.cells(), caption=f"{self.label}: {title}", cls="godley"))
        rows = [
            [n, f"{p.value:.6g}", "" if p.bounds is None else f"[{p.bounds[0]:g}, {p.bounds[1]:g}]", p.unit, p.doc]
            for n, p in self.parameters.items()
        ]
        out.append(html_table(["parameter", "value", "bounds", "unit", "doc"], rows, caption="parameters"))
        return "".join(out)

    def __repr__(self):
        return (
            f"Model({self.label!r}, {self.time.mode}, {len(self.stocks)} stocks, "
            f"{len(self.equations) + len(self.changes)} equations, {len(self.parameters)} parameters)"
        )


# --------------------------------------------------------------------------- loading
def builtin_models_dir() -> Path:
    """Where the built-in models live: inside the wheel, or ``models/`` beside an editable checkout."""
    return shipped_dir("models")


def builtin_models() -> list[str]:
    """Names of the built-in models (``sim``, ``sim_discrete``, ``pc``, ...)."""
    root = builtin_models_dir()
    return sorted(p.parent.name for p in root.glob("*/model.yaml")) if root.is_dir() else []


def resolve_model_path(path_or_name: str | Path) -> Path:
    """A model file path from a path, a model folder, or a built-in model name."""
    p = Path(path_or_name)
    if p.is_file() or (p.exists() and not p.is_dir()):
        return p  # a device or FIFO is refused by name when it is read, not mistaken for a missing file
    if p.is_dir() and (p / "model.yaml").is_file():
        return p / "model.yaml"
    if PLAIN_NAME.fullmatch(str(path_or_name)):
        cand = builtin_models_dir() / str(path_or_name) / "model.yaml"
        if cand.is_file():
            return cand
    names = ", ".join(builtin_models()) or "none found"
    near = closest(str(path_or_name), builtin_models())
    raise SpecError(
        f"no model file or built-in model named {str(path_or_name)!r}"
        + (f"; did you mean {near!r}?" if near else f" (built-in models: {names})")
    )


def scenarios(path_or_name: str | Path) -> list[str]:
    """Names of the scenarios beside a model (files ``scenarios/<name>.yaml``; ``*.params.yaml`` are
    parameter files, not scenarios)."""
    d = resolve_model_path(path_or_name).parent / "scenarios"
    return sorted(p.stem for p in d.glob("*.yaml") if not p.name.endswith(".params.yaml")) if d.is_dir() else []


def read_yaml_file(path: Path, what: str) -> tuple[bytes, Any]:
    """The bytes of the YAML input file ``path`` (for hashing) and its parsed content.

    The file must be a regular file of bounded size (:func:`sdmodel.core.inputs.read_input`) in UTF-8;
    aliases that expand too far, duplicate keys and malformed YAML are refused. Errors are
    :class:`~sdmodel.core.errors.SpecError` naming the file (``what`` it is: "model file", "study
    config", ...) and, where there is one, the line.
    """
    raw = read_input(path, what)  # a regular file of bounded size: never /dev/zero or a FIFO
    return raw, _read_yaml(decode_text(raw, str(path), what), str(path))


def scenario_path(path_or_name: str | Path, scenario: str | Path) -> Path:
    """The scenario file: ``scenario`` itself if it is a YAML file, else ``scenarios/<scenario>.yaml``
    beside the model."""
    path = resolve_model_path(path_or_name)
    spath = Path(scenario)
    if not (spath.suffix in (".yaml", ".yml") and spath.is_file()):
        spath = path.parent / "scenarios" / f"{scenario}.yaml"
        if not spath.is_file():
            known = scenarios(path)
            near = closest(str(scenario), known)
            raise SpecError(
                f"model {path.parent.name!r} has no scenario {str(scenario)!r}"
                + (f"; did you mean {near!r}?" if near else "")
                + f" (scenarios: {', '.join(known) or 'none'})",
                str(path),
            )
    return spath


def load_model(path_or_name: str | Path, scenario: str | Path | None = None) -> Model:
    """Load a model from a YAML file, a model folder, or a built-in model name.

    A Vensim ``.mdl`` or XMILE ``.xmile``/``.stmx`` file is translated through PySD
    (:mod:`sdmodel.model.translate`; needs the ``pysd`` extra).

    ``scenario`` names a file ``scenarios/<scenario>.yaml`` beside the model (or
    is a path to a scenario file): it replaces the model's time settings,
    initial values, parameter values and series, and adds observed history
    (see :func:`apply_scenario`).

    Examples
    --------
    >>> m = load_model("sim")
    >>> m.parameters["theta"].value
    0.2
    """
    path = resolve_model_path(path_or_name)
    labels: dict[str, str] = {}
    if path.suffix.lower() in translate.SUFFIXES:
        # a Vensim or XMILE model, through PySD's translator (sdmodel.model.translate)
        tr = translate.read_sd_file(path)
        raw, data = path.read_bytes() + translate.fingerprint().encode(), tr.model
        # results name a subscripted cell as the file does: stock[north], not stock__north
        labels = {ours: label for cells in tr.subscripts.values() for label, ours in cells.items()}
    else:
        raw, data = read_yaml_file(path, "model file")
    translated = path.suffix.lower() in translate.SUFFIXES  # its bytes are not all that make it
    if scenario is None:
        model = model_from_dict(data, source=str(path), base_dir=path.parent, raw=raw)
        return dataclasses.replace(
            model,
            path=str(path),
            inputs=() if translated else (str(path), *model.inputs),
            labels=MappingProxyType(labels),
        )
    spath = scenario_path(path, scenario)
    sraw, sdata = read_yaml_file(spath, "scenario file")
    pfile = (
        str(spath.parent / str(sdata["parameter_file"]))
        if isinstance(sdata, dict) and "parameter_file" in sdata
        else ""
    )
    praw, sdata = _with_parameter_file(sdata, spath)
    merged = apply_scenario(data, sdata, str(spath), spath.parent)
    model = _build(merged, f"{path} (scenario {spath})", path.parent, raw, (sraw, praw))
    inputs = () if translated else (str(path), str(spath), pfile, *model.inputs)
    return dataclasses.replace(
        model,
        scenario=spath.stem,
        path=str(path),
        scenario_file=str(spath),
        inputs=inputs,
        labels=MappingProxyType(labels),
    )


def read_parameter_file(path: str | Path) -> tuple[bytes, dict[str, float]]:
    """The bytes and the ``parameters`` mapping (name -> number) of a parameter file.

    A parameter file is what ``sdmodel calibrate`` writes: YAML with a
    ``parameters`` mapping of numbers and, optionally, a ``provenance``
    mapping saying where they come from.  A scenario names one with
    ``parameter_file:`` (a path relative to the scenario file).
    """
    path = Path(path)
    raw, data = read_yaml_file(path, "parameter file")
    if not isinstance(data, dict) or not isinstance(data.get("parameters"), dict):
        raise SpecError("expected a YAML mapping with a 'parameters' mapping of name: number", str(path))
    problems = Problems(str(path))
    problems.unknown_each(data, ("parameters", "provenance"))
    values = {}
    for n, v in data["parameters"].items():
        x = problems.number(f"parameters.{n}", v, data["parameters"], n)
        if x is not None:
            values[str(n)] = x
    problems.raise_if_any()
    return raw, values


def _with_parameter_file(scen: Any, spath: Path) -> tuple[bytes, Any]:
    """The scenario with the values of its ``parameter_file`` merged into ``parameters``.

    A name set both in the file and in the scenario's own ``parameters`` is an
    error: which one wins would otherwise be a silent choice.
    """
    if not isinstance(scen, dict) or "parameter_file" not in scen:
        return b"", scen
    ppath = spath.parent / str(scen["parameter_file"])
    raw, values = read_parameter_file(ppath)
    inline = scen.get("parameters") or {}
    both = sorted(set(values) & set(inline)) if isinstance(inline, dict) else []
    if both:
        raise SpecError(
            f"parameters {', '.join(both)} are set both here and in the parameter file {ppath}; set each in one place",
            str(spath),
        )
    out = dict(scen)
    merged = LineDict(inline if isinstance(inline, dict) else {})
    merged.lines = dict(getattr(inline, "lines", {}))
    merged.update(values)
    out["parameters"] = merged
    return raw, out


def apply_scenario(model: Mapping, scen: Any, source: str, base_dir: Path) -> dict:
    """The model mapping with a scenario's changes applied (both as read from YAML).

    A scenario may set ``description``, ``time`` keys, ``stocks`` (initial
    values), ``initial``, ``parameters`` (a number keeps the model's bounds
    and doc), ``series`` (replaced whole; CSV paths are relative to the
    scenario file), ``equations`` (each replaces the model's equation of that
    name, or adds one), ``shocks`` (a parameter's value over a span of time; each
    replaces the model's shocks of that parameter) and ``history``.  It may only
    change names the model declares, so a typo is an error, not a silently unused
    setting: a new equation whose name differs from one of the model's only in case
    is refused, and a new parameter must be read by one of the scenario's equations.

    Raises
    ------
    SpecError
        Naming the scenario file, key and line of every problem at once.
    """
    problems = Problems(source)
    err = problems.add
    if not isinstance(scen, dict):
        raise SpecError("expected a YAML mapping with keys " + ", ".join(SCENARIO_KEYS), source)
    out = {k: v for k, v in model.items()}
    problems.unknown_each(scen, SCENARIO_KEYS)
    if "description" in scen:
        out["description"] = scen["description"]
    if "allow_unbalanced_start" in scen:  # (checked where the model is built, with the scenario's line)
        out["allow_unbalanced_start"] = scen["allow_unbalanced_start"]
    for sec in ("time", "stocks", "initial", "parameters", "series"):
        if sec not in scen:
            continue
        new = scen[sec] or {}
        if not isinstance(new, dict):
            err(sec, "expected a mapping", scen, sec)
            continue
        base = LineDict(model.get(sec) or {})
        base.lines = dict(getattr(model.get(sec), "lines", {}))
        for n, v in new.items():
            if sec == "parameters" and n not in base and _reads(scen.get("equations"), n):
                pass  # a parameter of the scenario's own equations
            elif (
                sec not in ("time", "initial")
                and problems.name_in(f"{sec}.{n}", n, base, new, n, what=f"in the model's {sec}") is None
            ):
                continue
            if sec in ("parameters", "stocks") and isinstance(base.get(n), dict) and not isinstance(v, dict):
                v = {**base[n], "value": v}  # a new value keeps the model file's doc, bounds and unit
            elif sec == "series" and isinstance(v, dict) and "csv" in v:
                v = {**v, "csv": str((base_dir / str(v["csv"])).resolve())}
            base[n] = v
            # its line is in the scenario file, not the model file
            at = line_of(new, n)
            base.lines[n] = f"{at} of {Path(source).name}" if at else None
        out[sec] = base
    for sec in ("equations", "shocks"):
        if sec in scen:
            merged = _scenario_section(sec, model, scen, source, problems)
            if merged is not None:
                out[sec] = merged
    if "history" in scen:
        h = scen["history"]
        sources = h if isinstance(h, list) else [h]
        sources = [
            {**x, "csv": str((base_dir / str(x["csv"])).resolve())} if isinstance(x, dict) and "csv" in x else x
            for x in sources
        ]
        out["history"] = sources if isinstance(h, list) else sources[0]
    if "report" in scen:  # the scenario's keys replace the model's (its events, fit window, figure, ...)
        new_report = scen["report"]
        if not isinstance(new_report, dict):
            err("report", "expected a mapping with keys " + ", ".join(REPORT_KEYS), scen, "report")
        else:
            merged = LineDict(model.get("report") or {})
            merged.lines = dict(getattr(model.get("report"), "lines", {}))
            for k, v in new_report.items():
                merged[k] = v
                at = line_of(new_report, k)
                merged.lines[k] = f"{at} of {Path(source).name}" if at else None
            out["report"] = merged
    problems.raise_if_any()
    return out


def _reads(equations: Any, name: str) -> bool:
    """Whether one of the expressions of a scenario's ``equations`` mapping reads ``name``."""
    if not isinstance(equations, dict):
        return False
    pat = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    return any(isinstance(v, str) and pat.search(v) for v in equations.values())


def _scenario_section(sec: str, model: Mapping, scen: Mapping, source: str, problems: Problems) -> LineDict | None:
    """The model's ``equations`` or ``shocks`` with the scenario's entries replacing or adding theirs.

    Equation keys match as written without spaces (``d(Hh)`` and ``d( Hh )``); a new name adds an
    equation, but one that differs from one of the model's only in case is refused as a typo. Shocks are
    checked by the model (:func:`_shocks`); their lines are the scenario's.
    """
    new = scen[sec]
    if new is None:
        return None
    if not isinstance(new, dict):
        what = "name: expression" if sec == "equations" else "parameter: {from: TIME, value: NUMBER}"
        problems.add(sec, f"expected a mapping of {what}", scen, sec)
        return None
    got = model.get(sec)
    base: dict = got if isinstance(got, dict) else {}
    merged = LineDict(base)
    merged.lines = dict(getattr(base, "lines", {}))
    canon = {str(k).replace(" ", ""): k for k in merged} if sec == "equations" else {k: k for k in merged}
    for k, v in new.items():
        ck = str(k).replace(" ", "") if sec == "equations" else k
        key = canon.get(ck)
        if key is None and sec == "equations":
            near = [c for c in canon if c.lower() == ck.lower()]
            if near:
                problems.add(
                    f"equations.{k}",
                    f"{k!r} is not an equation of the model; did you mean {near[0]!r}? (names are "
                    "case-sensitive; a new name adds an equation)",
                    new,
                    k,
                )
                continue
        key = k if key is None else key
        merged[key] = v
        at = line_of(new, k)
        merged.lines[key] = f"{at} of {Path(source).name}" if at else None
    return merged


def model_from_dict(
    data: Any, *, source: str = "<dict>", base_dir: Path | None = None, raw: bytes | None = None
) -> Model:
    """Validate a model given as a dict (as read from YAML). See :func:`load_model`."""
    return _build(data, source, base_dir, raw)


# --------------------------------------------------------------------------- building a Model
# A model mapping is read in two passes.  The declaration pass (:func:`declare_names`) reads the
# names of every section and returns them as immutable :class:`Names`; then one small function per
# section parses that section's values, taking what it needs (the names, the section, the
# :class:`Problems` collector) as arguments.  :func:`_build` runs them in order and makes the Model.


@dataclass(frozen=True)
class Names:
    """The names a model mapping declares, each valid and declared once (the declaration pass).

    ``equations`` maps each accepted key of the ``equations`` section, as written, to what it
    defines: ``("var", name)`` an equation variable, ``("d", stock)`` a stock's change and
    ``("level", stock)`` a stock's level (discrete time).
    """

    stocks: tuple[str, ...]
    lookups: tuple[str, ...]
    parameters: tuple[str, ...]
    series: tuple[str, ...]
    equations: Mapping[Any, tuple[str, str]]
    declared: frozenset[str]  # every name above: stocks, lookups, parameters, series, equation variables


@dataclass(frozen=True)
class _Scope:
    """What an expression may refer to: ``names`` (every declared name but the lookups), ``stocks``
    (what ``d()`` may take), ``lookups`` (the table functions it may call), and whether time is
    discrete (``lag()`` allowed)."""

    names: frozenset[str]
    stocks: frozenset[str]
    lookups: Mapping[str, type[LookupBase]]
    discrete: bool


class _CsvFiles:
    """The CSV files a model reads (relative to ``base``): each read once, its bytes kept for the hash."""

    def __init__(self, base: Path):
        self.base = base
        self.raw: list[bytes] = []
        self.paths: list[Path] = []  # the files of ``raw``, in the same order
        self._rows: dict[Path, list[dict]] = {}

    def rows(self, path: Path) -> list[dict]:
        """The rows of a CSV file, read (and added to the model's hash) once per file."""
        if path not in self._rows:
            raw = read_input(path, "CSV file")
            text = decode_text(raw, str(path), "CSV file")
            try:
                rows = list(csv.DictReader(text.splitlines()))
            except csv.Error as err:
                raise SpecError(f"{path}: not a readable CSV file ({err})") from None
            self.raw.append(raw)
            self.paths.append(path)
            self._rows[path] = rows
        return self._rows[path]


def _build(data, source: str, base_dir: Path | None, raw: bytes | None, extra_hash: tuple[bytes, ...] = ()) -> Model:
    """The :class:`Model` of a model mapping, or one :class:`SpecError` listing every problem.

    ``raw`` (the file's bytes; ``None``: the mapping itself) and ``extra_hash`` (a scenario's files)
    make the model's ``spec_hash`` with the CSV files it reads.
    """
    d = data
    if not isinstance(d, dict):
        raise SpecError("expected a YAML mapping with keys name, sectors, stocks, equations, ...", source)
    problems = Problems(source, SpecError)
    problems.unknown_each(d, TOP_KEYS)
    d, eq_docs, eq_units = _equation_entries(d, problems)
    folder = base_dir if base_dir is not None else Path(source).parent if source != "<dict>" else None
    name = _model_name(d, folder, problems)
    sectors = _sectors(d, problems)
    time = _time(d, problems)
    names = declare_names(d, time.mode, problems)
    csv_files = _CsvFiles(base_dir if base_dir is not None else Path("."))
    sm = _section(d, "stocks")
    stocks, stock_docs, init_text, stock_units = _stocks(sm, names, problems)
    lookups, lookup_docs = _lookups(_section(d, "lookups"), names, problems)
    params = _parameters(_section(d, "parameters"), names, problems)
    series = _series_section(_section(d, "series"), names, csv_files, problems)
    # a lookup that failed to read stays a plain name: no follow-on errors where it is used
    scope = _Scope(
        names.declared - frozenset(lookups), frozenset(names.stocks), MappingProxyType(lookups), time.mode == "discrete"
    )
    em = _section(d, "equations")
    equations, changes, eq_text = _equations(em, names, scope, problems)
    stock_init = _stock_init(sm, init_text, scope, problems)
    initial = _initial(d, scope.names, problems)
    bs = _matrix(d, "balance_sheet", sectors, scope, problems)
    tf = _matrix(d, "transactions", sectors, scope, problems)
    history, history_source = _history(d, scope.names, csv_files, problems)
    presentation = _presentation(d, scope.names, problems)
    shocks = _shocks(_section(d, "shocks"), params, series, time, problems, equations)
    allow_unbalanced = problems.boolean("allow_unbalanced_start", d.get("allow_unbalanced_start", False), d)
    if not stocks and not equations and not changes:
        problems.add("stocks", "the model declares no stocks and no equations: there is nothing to simulate", d)
    problems.raise_if_any()

    return Model(
        name=str(name),
        description=str(d.get("description", "")),
        sectors=sectors,
        time=time,
        stocks=MappingProxyType(stocks),
        initial=MappingProxyType(initial),
        parameters=MappingProxyType(params),
        series=MappingProxyType(series),
        equations=MappingProxyType(equations),
        changes=MappingProxyType(changes),
        balance_sheet=bs,
        transactions=tf,
        source=source,
        spec_hash=_spec_hash(d, raw, (*extra_hash, *csv_files.raw)),
        equation_text=MappingProxyType(eq_text),
        lines=MappingProxyType(dict(getattr(em, "lines", {}))),
        docs=MappingProxyType({**eq_docs, **stock_docs, **lookup_docs, **{n: p.doc for n, p in params.items()}}),
        units=MappingProxyType(
            {
                **{
                    n: str(v["unit"])
                    for n, v in _section(d, "series").items()
                    if n in series and isinstance(v, dict) and v.get("unit")
                },
                **eq_units,
                **stock_units,
                **{n: p.unit for n, p in params.items() if p.unit},
            }
        ),
        history=MappingProxyType(history),
        presentation=MappingProxyType(presentation),
        history_source=history_source,
        stock_init=MappingProxyType(stock_init),
        lookups=MappingProxyType(lookups),
        shocks=MappingProxyType(shocks),
        allow_unbalanced_start=bool(allow_unbalanced),
        inputs=tuple(str(p) for p in csv_files.paths),
    )


def _spec_hash(d: Mapping, raw: bytes | None, more: tuple[bytes, ...]) -> str:
    """The model's hash: of the file's bytes (``None``: of the mapping) and of the files it reads."""
    h = hashlib.sha256()
    h.update(raw if raw is not None else json.dumps(d, sort_keys=True, default=str).encode())
    for b in more:
        h.update(b)
    return h.hexdigest()


def _section(d: Mapping, section: str) -> dict:
    """A section of the model mapping, ``{}`` where it is absent or not a mapping (the declaration
    pass reports that)."""
    m = d.get(section) or {}
    return m if isinstance(m, dict) else {}


# -- the declaration pass ------------------------------------------------------
#: The sections that declare names, in the order they are read, and what each expects.
_DECLARING = (
    ("stocks", "expected a mapping of stock name to initial value"),
    ("lookups", "expected a mapping of lookup name to {points: [[x, y], ...]}"),
    ("parameters", "expected a mapping of parameter name to value"),
    ("series", "expected a mapping of series name to {data: ...} or {csv: ...}"),
)


def declare_names(d: Mapping, mode: str, problems: Problems) -> Names:
    """The names the model mapping ``d`` declares, in the order written.

    Records in ``problems`` every invalid or reserved name, every name declared twice (also across
    sections) and every equation key that defines nothing it may (``d(X)`` of a non-stock, a
    stock's level in continuous time, two equations of one stock); those names are left out.
    ``mode`` is the model's time mode.
    """
    declared: dict[str, str] = {}  # name -> section where declared first
    sections: dict[str, tuple[str, ...]] = {}
    for section, expected in _DECLARING:
        m = d.get(section) or {}
        if not isinstance(m, dict):
            problems.add(section, expected, d)
            m = {}
        sections[section] = tuple(
            n for n in m if _name_ok(problems, n, m, section) and _declare(declared, n, section, m, problems)
        )
    em = d.get("equations") or {}
    if not isinstance(em, dict):
        problems.add("equations", "expected a mapping of name to expression", d)
        em = {}
    eq_keys = _equation_keys(em, frozenset(sections["stocks"]), mode, declared, problems)
    return Names(
        stocks=sections["stocks"],
        lookups=sections["lookups"],
        parameters=sections["parameters"],
        series=sections["series"],
        equations=MappingProxyType(eq_keys),
        declared=frozenset(declared),
    )


def _declare(declared: dict[str, str], n: str, section: str, mapping, problems: Problems) -> bool:
    """Whether ``n`` is new; if so it is added to ``declared`` (name -> section), else a problem recorded."""
    if n in declared:
        problems.add(f"{section}.{n}", f"duplicate definition: {n!r} is already defined in {declared[n]}", mapping, n)
        return False
    declared[n] = section
    return True


def _equation_keys(
    em: dict, stocks: frozenset[str], mode: str, declared: dict[str, str], problems: Problems
) -> dict[Any, tuple[str, str]]:
    """What each key of the ``equations`` section defines (see :class:`Names`); its equation
    variables are added to ``declared``."""
    eq_keys: dict[Any, tuple[str, str]] = {}
    for key in em:
        k = str(key).replace(" ", "")
        if k.startswith("d(") and k.endswith(")"):
            base = k[2:-1]
            if base not in stocks:
                problems.add(
                    f"equations.{key}", f"d({base}) needs {base!r} to be a stock (declare it under stocks:)", em, key
                )
                continue
            if ("d", base) in eq_keys.values() or ("level", base) in eq_keys.values():
                problems.add(
                    f"equations.{key}", f"duplicate definition: stock {base!r} already has an equation", em, key
                )
                continue
            eq_keys[key] = ("d", base)
        elif not _name_ok(problems, key, em, "equations"):
            continue
        elif key in stocks:
            if mode != "discrete":
                problems.add(
                    f"equations.{key}",
                    f"{key!r} is a stock: in continuous time give its change, "
                    f"d({key}): ..., or let its transactions column determine it",
                    em,
                    key,
                )
                continue
            if ("d", key) in eq_keys.values():
                problems.add(
                    f"equations.{key}", f"duplicate definition: stock {key!r} already has an equation", em, key
                )
                continue
            eq_keys[key] = ("level", key)
        elif _declare(declared, key, "equations", em, problems):
            eq_keys[key] = ("var", key)
    return eq_keys


def _name_ok(problems: Problems, name, mapping, section: str) -> bool:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        problems.add(
            f"{section}.{name}",
            f"{name!r} is not a valid name (letters, digits and _; not starting with a digit or _)",
            mapping,
            name,
        )
        return False
    if name in RESERVED:
        problems.add(
            f"{section}.{name}", f"{name!r} is reserved (t is time; d() and lag() are operators)", mapping, name
        )
        return False
    return True


# -- sections read before the names --------------------------------------------
def _model_name(d: Mapping, folder: Path | None, problems: Problems) -> str:
    """The model's name: as declared (a plain word: it becomes part of run-folder paths), else the
    model's folder (the folder of the model file, also under a scenario), else ``model``."""
    name = d.get("name")
    if name is not None:
        name = problems.plain_name("name", name, d, "name", what="model name")
    return name or (folder.name if folder is not None else "") or "model"


def _sectors(d: Mapping, problems: Problems) -> tuple[str, ...]:
    s = d.get("sectors")
    if s is None:
        return ()
    if not isinstance(s, list) or not all(isinstance(x, str) for x in s):
        problems.add("sectors", "expected a list of sector names, e.g. [households, firms, government]", d)
        return ()
    dup = {x for x in s if s.count(x) > 1}
    for x in sorted(dup):
        problems.add("sectors", f"duplicate sector {x!r}", d)
    return tuple(dict.fromkeys(s))


def _time(d: Mapping, problems: Problems) -> TimeSettings:
    tm = d.get("time") or {}
    if not isinstance(tm, dict):
        problems.add("time", "expected a mapping such as {start: 0, stop: 60, dt: 0.25}", d)
        return TimeSettings()
    problems.unknown_each(tm, ("dt", "method", "mode", "start", "stop", "locked"), "time.")
    given = problems.one_of("time.mode", tm.get("mode", "continuous"), ("continuous", "discrete"), tm, "mode")
    mode: Literal["continuous", "discrete"] = "discrete" if given == "discrete" else "continuous"
    vals, bad = {}, False
    for k, default in (("start", 0.0), ("stop", 100.0 if mode == "continuous" else 50.0), ("dt", 1.0)):
        x = (
            default
            if k not in tm
            else problems.number(f"time.{k}", tm[k], tm, k, positive=k == "dt", what="time step" if k == "dt" else None)
        )
        bad |= x is None
        vals[k] = default if x is None else x  # only to go on checking: the model is refused
    methods = (*FIXED_METHODS, *IVP_METHODS) if mode == "continuous" else ("discrete",)
    method = tm.get("method", "rk4" if mode == "continuous" else "discrete")
    method = problems.one_of("time.method", method, methods, tm, "method") or methods[0]
    if not bad and vals["stop"] <= vals["start"]:
        problems.add("time.stop", f"expected stop > start, got start={vals['start']}, stop={vals['stop']}", tm, "stop")
    if mode == "discrete" and vals["dt"] != 1.0:
        problems.add("time.dt", "discrete models advance one period per step; leave dt out (or 1)", tm, "dt")
    locked = tm.get("locked", "")
    if not isinstance(locked, str):
        problems.add(
            "time.locked", f"expected the reason the method and dt are fixed (text), got {locked!r}", tm, "locked"
        )
        locked = ""
    return TimeSettings(vals["start"], vals["stop"], vals["dt"], mode, str(method), locked)


# -- sections of declared names ------------------------------------------------
def _stocks(
    sm: dict, names: Names, problems: Problems
) -> tuple[dict[str, float], dict[str, str], dict[str, str], dict[str, str]]:
    """(initial values, docs, initial-value expressions as written, units) of the declared stocks. A stock
    whose initial value is an expression has ``nan`` for now (see :func:`_stock_init`), one whose
    value is wrong ``nan`` too: declared either way, so no follow-on errors."""
    stocks, docs, init_text, units = {}, {}, {}, {}
    for n in names.stocks:
        v = sm[n]
        if isinstance(v, dict):
            problems.unknown_keys(f"stocks.{n}", v, ("value", "doc", "unit"), sm, n)
            docs[n] = str(v.get("doc", ""))
            if v.get("unit"):
                units[n] = str(v["unit"])
            v = v.get("value", 0)
        if isinstance(v, str):
            try:
                stocks[n] = to_number(v)
            except ValueError:
                stocks[n] = float("nan")  # an expression, parsed once every name is declared
                init_text[n] = v
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            x = problems.number(f"stocks.{n}", v, sm, n, hint="an initial value")
        else:
            x = None
            problems.add(f"stocks.{n}", f"expected an initial value (a number or an expression), got {v!r}", sm, n)
        stocks[n] = float("nan") if x is None else x
    return stocks, docs, init_text, units


def _lookups(lm: dict, names: Names, problems: Problems) -> tuple[dict[str, type[LookupBase]], dict[str, str]]:
    """(table functions, docs) of the declared lookups that read."""
    lookups, docs = {}, {}
    for n in names.lookups:
        v = lm[n]
        lk = _lookup(n, v, lm, problems)
        if lk is not None:
            lookups[n] = lk
            docs[n] = str(v.get("doc", "")) if isinstance(v, dict) else ""
    return lookups, docs


def _lookup(n, v, mapping, problems: Problems) -> type[LookupBase] | None:
    from sdmodel.model.expr import make_lookup

    """``{points: [[x, y], ...], doc: ...}`` or just the list of points; x strictly increasing."""
    pts: Any = v.get("points") if isinstance(v, dict) else v  # any shape: checked just below
    if isinstance(v, dict):
        for k in v:
            if k not in ("points", "doc", "unit"):
                problems.add(f"lookups.{n}.{k}", "unknown key (expected points, doc, unit)", v, k)
    try:
        xy = [(to_number(p[0]), to_number(p[1])) for p in pts]
        if not xy or any(len(p) != 2 for p in pts):
            raise ValueError
    except (TypeError, ValueError, IndexError, KeyError):
        problems.add(
            f"lookups.{n}", f"expected points: [[x, y], ...] (at least one pair of numbers), got {pts!r}", mapping, n
        )
        return None
    xs = [x for x, _ in xy]
    bad = [i for i in range(1, len(xs)) if xs[i] <= xs[i - 1]]
    if bad:
        problems.add(
            f"lookups.{n}",
            f"x values must increase strictly; point {bad[0] + 1} (x = {xs[bad[0]]}) "
            f"does not exceed the one before (x = {xs[bad[0] - 1]})",
            mapping,
            n,
        )
        return None
    return make_lookup(n, xs, [y for _, y in xy])


def _parameters(pm: dict, names: Names, problems: Problems) -> dict[str, Parameter]:
    out = {}
    for n in names.parameters:
        p = _parameter(n, pm[n], pm, problems)
        if p is not None:
            out[n] = p
    return out


def _parameter(n, v, pm, problems: Problems) -> Parameter | None:
    key = f"parameters.{n}"
    if isinstance(v, dict):
        for k in v:
            if k not in ("value", "bounds", "doc", "unit"):
                problems.add(key, f"unknown key {k!r} (expected value, bounds, doc, unit)", pm, n)
        if "value" not in v:
            problems.add(key, "expected a value: {value: 0.2, bounds: [0.1, 0.4], doc: ..., unit: ...}", pm, n)
            return None
        bounds = v.get("bounds")
        if bounds is not None:
            bounds = problems.interval(key, bounds, pm, n, "[lower, upper]", label="bounds")
        doc, unit, v = str(v.get("doc", "")), str(v.get("unit", "")), v["value"]
    else:
        bounds, doc, unit = None, "", ""
    value = problems.number(key, v, pm, n, hint="parameters are numbers; use an equation for an expression")
    if value is None:
        return None
    if bounds and not bounds[0] <= value <= bounds[1]:
        problems.add(key, f"value {value} lies outside its bounds {list(bounds)}", pm, n)
    return Parameter(n, value, bounds, doc, unit)


def _series_section(xm: dict, names: Names, csv_files: _CsvFiles, problems: Problems) -> dict[str, Series]:
    out = {}
    for n in names.series:
        s = _series(n, xm[n], xm, csv_files, problems)
        if s is not None:
            out[n] = s
    return out


def _series(n, v, xm, csv_files: _CsvFiles, problems: Problems) -> Series | None:
    key = f"series.{n}"
    interp: str | None = "linear"
    hold: tuple[bool, bool] = (False, False)
    if isinstance(v, dict):
        interp = problems.one_of(
            key, v.get("interpolation", "linear"), ("linear", "previous"), xm, n, label="interpolation"
        )
        held = _extrapolate(key, v.get("extrapolate", "warn"), xm, n, problems)
        if interp is None or held is None:
            return None
        hold = held
        for k in v:
            if k not in SERIES_KEYS:
                problems.add(
                    key,
                    f"unknown key {k!r}"
                    + (f"; did you mean {closest(k, SERIES_KEYS)!r}?" if closest(k, SERIES_KEYS) else "")
                    + " (expected data, or csv with time, column, scale, shift; interpolation, extrapolate, "
                    "doc, unit)",
                    xm,
                    n,
                )
        if "csv" in v:
            s = _csv_series(n, v, xm, interp, csv_files, problems)
            return dataclasses.replace(s, hold=hold) if s is not None else None
        v = v.get("data")
    points = []
    if isinstance(v, dict):
        items = list(v.items())
    elif isinstance(v, list):
        items = [tuple(p) if isinstance(p, (list, tuple)) and len(p) == 2 else (None, p) for p in v]
    else:
        problems.add(key, "expected {data: {time: value, ...}} or {csv: file, time: column, column: column}", xm, n)
        return None
    for tk, tv in items:
        try:
            points.append((to_number(tk), to_number(tv)))
        except (ValueError, TypeError):
            problems.add(key, f"expected numeric time: value pairs, got {tk!r}: {tv!r}", xm, n)
            return None
    s = _make_series(key, n, points, interp, "inline", xm, problems)
    return dataclasses.replace(s, hold=hold) if s is not None else None


def _extrapolate(key, v, xm, n, problems: Problems) -> tuple[bool, bool] | None:
    """``extrapolate:`` of a series as (hold before, hold after): ``warn`` (default), ``hold`` (after
    the last point) or ``{before: warn|hold, after: warn|hold}``."""
    if isinstance(v, dict):
        problems.unknown_keys(f"{key}.extrapolate", v, ("before", "after"), xm, n)
        sides = [
            problems.one_of(key, v.get(side, "warn"), ("warn", "hold"), xm, n, label=f"extrapolate.{side}")
            for side in ("before", "after")
        ]
        return None if None in sides else (sides[0] == "hold", sides[1] == "hold")
    choice = problems.one_of(
        key, v, ("warn", "hold"), xm, n, label="extrapolate", hint="or {before: hold, after: hold}"
    )
    return None if choice is None else (False, choice == "hold")


def _csv_series(n, v, xm, interp, csv_files: _CsvFiles, problems: Problems, key=None) -> Series | None:
    key = key or f"series.{n}"
    path = csv_files.base / str(v["csv"])
    tcol, col = v.get("time", "t"), v.get("column", n)
    try:
        rows = csv_files.rows(path)
    except SpecError as err:
        problems.add(key, str(err), xm, n)
        return None
    if not rows:
        problems.add(key, f"CSV {str(path)!r} has no data rows", xm, n)
        return None
    for c in (tcol, col):
        if c not in rows[0]:
            problems.add(key, f"CSV {str(path)!r} has no column {c!r} (columns: {', '.join(rows[0])})", xm, n)
            return None
    try:
        scale, shift = to_number(v.get("scale", 1)), to_number(v.get("shift", 0))
    except ValueError:
        problems.add(key, f"scale and shift must be numbers, got {v.get('scale')!r}, {v.get('shift')!r}", xm, n)
        return None
    points = []
    for i, r in enumerate(rows, start=2):
        if None in r or None in r.values():
            problems.add(
                key,
                f"CSV {str(path)!r} row {i}: {len(rows[0]) - (None in rows[0])} columns expected, "
                f"the row has {'more' if None in r else 'fewer'}",
                xm,
                n,
            )
            return None
        if r[col] == "":
            continue  # missing values are skipped, interpolation bridges them
        try:
            points.append((to_number(r[tcol]) + shift, to_number(r[col]) * scale))
        except (ValueError, TypeError):
            problems.add(
                key,
                f"CSV {str(path)!r} row {i}: expected finite numbers in {tcol!r} and {col!r}, "
                f"got {r[tcol]!r}, {r[col]!r}",
                xm,
                n,
            )
            return None
        if len(points) > 1 and points[-1][0] <= points[-2][0]:
            # a CSV's order is the data's order: a time out of order or repeated is a mistake in the file
            problems.add(
                key,
                f"CSV {str(path)!r} row {i}: time {r[tcol]!r} in {tcol!r} does not increase "
                f"(the row before has {points[-2][0] - shift:g}); sort the file or remove the "
                "duplicate",
                xm,
                n,
            )
            return None
    return _make_series(key, n, points, interp, f"{v['csv']}:{col}", xm, problems)


def _make_series(key, n, points, interp, source, xm, problems: Problems) -> Series | None:
    if not points:
        problems.add(key, "a series needs at least one (time, value) point", xm, n)
        return None
    points.sort()
    ts = [p[0] for p in points]
    if len(set(ts)) != len(ts):
        problems.add(key, "duplicate times in series", xm, n)
        return None
    return Series(n, tuple(ts), tuple(p[1] for p in points), interp, source)


# -- sections of expressions ---------------------------------------------------
def _expr(key, text, mapping, sub, scope: _Scope, problems: Problems, *, allow_markers=True) -> sp.Expr | None:
    from sdmodel.model.expr import marker, parse

    """``text`` parsed in ``scope``, or ``None`` with the problem recorded under ``key``."""
    try:
        e = parse(text, scope.names, allow_markers=allow_markers, lookups=dict(scope.lookups))
    except ExpressionError as err:
        problems.add(key, str(err), mapping, sub)
        return None
    bad = sorted(b for k, b in map(marker, e.free_symbols) if k == "d" and b not in scope.stocks)
    if bad:
        problems.add(
            key, "; ".join(f"d({b}) needs {b!r} to be a stock (declare it under stocks:)" for b in bad), mapping, sub
        )
        return None
    if not scope.discrete:
        lags = sorted(s.name for s in e.free_symbols if marker(s)[0] == "lag")
        if lags:
            problems.add(
                key, f"{', '.join(lags)}: lag() is for discrete-time models (time: {{mode: discrete}})", mapping, sub
            )
            return None
    return e


EQUATION_KEYS = ("eq", "doc", "unit")


def _equation_entries(d: Mapping, problems: Problems) -> tuple[Mapping, dict[str, str], dict[str, str]]:
    """The model mapping with every equation as its text, and the docs and units of the equations
    written as mappings: ``Y: {eq: C + G, doc: national income, unit: money a period}`` (a plain
    ``Y: C + G`` has neither). The key's line stays that of the mapping."""
    em = d.get("equations")
    if not isinstance(em, dict) or not any(isinstance(v, dict) for v in em.values()):
        return d, {}, {}
    flat = LineDict()
    flat.lines = dict(getattr(em, "lines", {}))
    docs, units = {}, {}
    for key, v in em.items():
        if isinstance(v, dict):
            problems.unknown_keys(f"equations.{key}", v, EQUATION_KEYS, em, key)
            if "eq" not in v:
                problems.add(
                    f"equations.{key}", "expected {eq: EXPRESSION, doc: TEXT, unit: TEXT}: eq is missing", em, key
                )
                continue
            # a stock's change d(X) keeps its own key: its unit is the stock's per unit of time
            if v.get("doc"):
                docs[str(key)] = str(v["doc"])
            if v.get("unit"):
                units[str(key)] = str(v["unit"])
            v = v["eq"]
        flat[key] = v
    out = LineDict(d)
    out.lines = dict(getattr(d, "lines", {}))
    out["equations"] = flat
    return out, docs, units


def _equations(
    em: dict, names: Names, scope: _Scope, problems: Problems
) -> tuple[dict[str, sp.Expr], dict[str, sp.Expr], dict[str, str]]:
    """(level equations, d() equations by stock, each as written) of the declared equation keys."""
    equations, changes, eq_text = {}, {}, {}
    for key, (kind, base) in names.equations.items():
        expr = _expr(f"equations.{key}", em[key], em, key, scope, problems)
        if expr is None:
            continue
        eq_text[base if kind != "d" else f"d({base})"] = str(em[key])
        if kind == "d":
            changes[base] = expr
        else:
            equations[base] = expr
    return equations, changes, eq_text


def _stock_init(sm: dict, init_text: Mapping[str, str], scope: _Scope, problems: Problems) -> dict[str, sp.Expr]:
    """The initial values of stocks given by an expression (continuous time only)."""
    out = {}
    for n, text in init_text.items():
        if scope.discrete:
            problems.add(
                f"stocks.{n}", "an initial value given by an expression needs continuous time; give a number", sm, n
            )
            continue
        e = _expr(f"stocks.{n}", text, sm, n, scope, problems, allow_markers=False)
        if e is not None:
            out[n] = e
    return out


def _initial(d: Mapping, names: frozenset[str], problems: Problems) -> dict[str, float]:
    out = {}
    im = d.get("initial") or {}
    if not isinstance(im, dict):
        problems.add("initial", "expected a mapping of variable name to its value before the first period", d)
        im = {}
    for n, v in im.items():
        if n not in names:
            problems.add(f"initial.{n}", f"undeclared name {n!r}", im, n)
            continue
        x = problems.number(f"initial.{n}", v, im, n)
        if x is not None:
            out[n] = x
    return out


def _matrix(d: Mapping, kind, sectors: tuple[str, ...], scope: _Scope, problems: Problems) -> Matrix | None:
    from sdmodel.model.expr import marker

    m = d.get(kind)
    if m is None:
        return None
    if not isinstance(m, dict):
        problems.add(kind, "expected a mapping of row name to {sector: entry, ...}", d)
        return None
    rows: dict[str, dict[str, sp.Expr]] = {}
    sums: dict[str, sp.Expr] = {}
    text: dict[tuple[str, str], str] = {}
    cols: list[str] = []
    for r, cells in m.items():
        key = f"{kind}.{r}"
        if not isinstance(cells, dict):
            problems.add(key, "expected a mapping {sector: entry, ...}", m, r)
            continue
        rows[str(r)] = {}
        for c, v in cells.items():
            if c == "sum":
                e = _expr(f"{key}.sum", v, m, r, scope, problems, allow_markers=kind == "transactions")
                if e is not None:
                    sums[str(r)] = e
                continue
            if sectors and c not in sectors:
                problems.add(f"{key}.{c}", f"unknown sector {c!r} (sectors: {', '.join(sectors)})", m, r)
                continue
            if v is None or (isinstance(v, str) and not v.strip()):
                continue
            e = _expr(f"{key}.{c}", v, m, r, scope, problems)
            if e is None:
                continue
            if kind == "balance_sheet" and any(marker(s)[0] == "d" for s in e.free_symbols):
                problems.add(
                    f"{key}.{c}", "d() belongs in the transactions matrix; the balance sheet holds levels", m, r
                )
                continue
            rows[str(r)][c] = e
            text[(str(r), c)] = str(v)
            if c not in cols:
                cols.append(c)
    order = [s for s in sectors if s in cols] + [c for c in cols if c not in sectors]
    return Matrix(
        kind=kind,
        rows=MappingProxyType({r: MappingProxyType(c) for r, c in rows.items()}),
        columns=tuple(order),
        sums=MappingProxyType(sums),
        text=MappingProxyType(text),
        lines=MappingProxyType(dict(getattr(m, "lines", {}))),
    )


# -- sections read after the model --------------------------------------------
def _shocks(
    xm: dict,
    params: Mapping[str, Parameter],
    series: Mapping[str, Series],
    time: TimeSettings,
    problems: Problems,
    equations: Mapping[str, Any] = MappingProxyType({}),
) -> dict[str, tuple[Shock, ...]]:
    """``shocks: {parameter: {from: TIME, to: TIME, value: NUMBER}, ...}`` (or a list of such per parameter):
    each parameter's shocks in time order. Every problem names the key and the line of the parameter."""
    out: dict[str, tuple[Shock, ...]] = {}
    for n, v in xm.items():
        key = f"shocks.{n}"
        if n not in params:
            if n in series:
                problems.add(key, f"{n!r} is a series, not a parameter: change its data instead", xm, n)
            elif n in equations:
                problems.add(key, f"{n!r} has an equation, not a parameter: replace it under equations:", xm, n)
            else:
                problems.name_in(key, n, params, xm, n, what="a parameter", of="of the model")
            continue
        items = v if isinstance(v, list) else [v]
        got: list[Shock] = []
        for i, item in enumerate(items):
            k = f"{key}[{i}]" if isinstance(v, list) else key
            if isinstance(item, dict) and any(x not in SHOCK_KEYS for x in item):
                problems.unknown_keys(k, item, SHOCK_KEYS, xm, n)
                continue
            if not isinstance(item, dict) or "from" not in item or "value" not in item:
                problems.add(
                    k,
                    f"expected {{from: TIME, value: NUMBER}} (and optionally to: TIME, the last time in force), "
                    f"got {item!r}",
                    xm,
                    n,
                )
                continue
            start = problems.number(f"{k}.from", item["from"], xm, n)
            end = problems.number(f"{k}.to", item["to"], xm, n) if "to" in item else float("inf")
            value = problems.number(f"{k}.value", item["value"], xm, n)
            if start is None or end is None or value is None:
                continue
            if end < start:
                problems.add(k, f"to ({end:g}) is before from ({start:g})", xm, n)
                continue
            if start > time.stop:
                problems.add(
                    f"{k}.from",
                    f"{start:g} is after the end of the run ({time.stop:g}): the shock never applies",
                    xm,
                    n,
                )
                continue
            lo_hi = params[n].bounds
            if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
                problems.add(
                    f"{k}.value", f"{value:g} is outside the parameter's bounds [{lo_hi[0]:g}, {lo_hi[1]:g}]", xm, n
                )
                continue
            got.append(Shock(str(n), float(start), float(end), float(value)))
        got.sort(key=lambda x: x.start)
        for a, b in zip(got, got[1:]):
            if b.start <= a.end:
                problems.add(key, f"shocks overlap: one from {a.start:g} to {a.end:g}, one from {b.start:g}", xm, n)
        if got:
            out[str(n)] = tuple(got)
    return out


def shock_map(shocks: Mapping[str, tuple[Shock, ...]], discrete: bool) -> dict[sp.Symbol, sp.Expr]:
    """Each shocked parameter (and, in discrete time, its lag) -> its value as a function of ``t``: what the
    compiled code reads (the accounting proves its identities for every value of the parameter)."""
    import sympy as sp

    from sdmodel.model.expr import T, lagsym

    def at(name, tt):
        pieces = []
        for s in shocks[name]:
            # a margin of 1e-9 relative: the time grid is start + k*dt, in floating point
            lo, cond = s.start - 1e-9 * max(1.0, abs(s.start)), None
            cond = sp.GreaterThan(tt, sp.Float(lo))
            if s.end != float("inf"):
                cond = sp.And(cond, sp.LessThan(tt, sp.Float(s.end + 1e-9 * max(1.0, abs(s.end)))))
            pieces.append((sp.Rational(repr(s.value)), cond))
        return sp.Piecewise(*pieces, (sp.Symbol(name), True))

    rep: dict[sp.Symbol, sp.Expr] = {}
    for name in shocks:
        rep[sp.Symbol(name)] = at(name, T)
        if discrete:
            rep[lagsym(name)] = at(name, T - 1)
    return rep


def _history(
    d: Mapping, names: frozenset[str], csv_files: _CsvFiles, problems: Problems
) -> tuple[dict[str, Series], str]:
    """``history: {csv: FILE, time: COLUMN, shift: YEARS, columns: {output: column}, source: TEXT}``, or a
    list of such sources (e.g. calendar-year and fiscal-year data with different shifts) -> observed paths
    and their sources' credits."""
    h = d.get("history")
    if h is None:
        return {}, ""
    sources = h if isinstance(h, list) else [h]
    out: dict[str, Series] = {}
    credits = []
    for i, src in enumerate(sources):
        key = f"history[{i}]" if isinstance(h, list) else "history"
        where, sub = (h, i) if isinstance(h, list) else (d, "history")
        if not isinstance(src, dict) or "csv" not in src or not isinstance(src.get("columns"), dict):
            problems.add(
                key,
                "expected {csv: FILE, time: COLUMN, columns: {output: csv column, ...}, source: TEXT}"
                + (", or a list of such mappings" if key == "history" else ""),
                where,
                sub,
            )
            continue
        for k in src:
            if k not in ("csv", "time", "columns", "source", "shift"):
                problems.add(f"{key}.{k}", "unknown key (expected csv, time, shift, columns, source)", src, k)
        cols = src["columns"]
        for n, col in cols.items():
            if n not in names:
                problems.add(f"{key}.columns.{n}", f"{n!r} is not a variable of the model", cols, n)
                continue
            if n in out:
                problems.add(f"{key}.columns.{n}", f"{n!r} has history in an earlier source already", cols, n)
                continue
            s = _csv_series(
                n,
                {"csv": src["csv"], "time": src.get("time", "t"), "column": col, "shift": src.get("shift", 0)},
                cols,
                "linear",
                csv_files,
                problems,
                key=f"{key}.columns.{n}",
            )
            if s is not None:
                out[n] = s
        credits.append(str(src.get("source", src["csv"])))
    return out, "; ".join(credits)


REPORT_KEYS = ("panels", "units", "figure", "events", "window")


def _presentation(d: Mapping, names: frozenset[str], problems: Problems) -> dict[str, Any]:
    """The ``report:`` block: what a run shows first, and how its main figure tells the story.

    - ``panels: {output: title}``: the headline outputs (printed after a run, and drawn against
      history when there is no ``figure``), in ``units``;
    - ``units: TEXT``: the unit of the headline outputs (e.g. ``% of GDP``);
    - ``figure: [{title: TEXT, outputs: [name, ...], units: TEXT}, ...]``: the panels of the main figure,
      each with one or more outputs drawn against their history (units default to ``units``);
    - ``events: {time: label}``: events marked in every panel (e.g. ``1997.25: consumption tax 3% -> 5%``);
    - ``window: {from: T0, to: T1, label: TEXT}``: a span shaded in every panel (the fit window).

    A scenario's ``report:`` keys replace the model's.
    """
    r = d.get("report")
    if r is None:
        return {}
    if problems.mapping("report", r, d, "report", keys=REPORT_KEYS) is None:
        return {}
    out: dict[str, Any] = {}
    panels = r.get("panels")
    if panels is not None:
        if not isinstance(panels, dict) or not panels:
            problems.add("report.panels", "expected a mapping of output name: panel title", r, "panels")
        else:
            good = {}
            for n, title in panels.items():
                if problems.name_in(f"report.panels.{n}", n, names, panels, n, what="an output") is None:
                    continue
                if not isinstance(title, str):
                    problems.add(f"report.panels.{n}", f"expected a title (text), got {title!r}", panels, n)
                    continue
                good[str(n)] = title
            out["panels"] = good
    if "units" in r:
        if not isinstance(r["units"], str):
            problems.add("report.units", f"expected text such as '% of GDP', got {r['units']!r}", r, "units")
        else:
            out["units"] = r["units"]
    if "figure" in r:
        out["figure"] = _figure_panels(r, names, problems, str(out.get("units", "")))
    if "events" in r:
        out["events"] = _events(r, problems)
    if "window" in r:
        w = problems.mapping(
            "report.window", r["window"], r, "window", keys=("from", "to", "label"), required=("from", "to")
        )
        if w is not None and "from" in w and "to" in w:
            ab = problems.interval("report.window", [w["from"], w["to"]], r, "window", what="{from: T0, to: T1}")
            label = w.get("label", "fit window")
            if not isinstance(label, str):
                problems.add("report.window.label", f"expected text, got {label!r}", r, "window")
            elif ab is not None:
                out["window"] = (ab[0], ab[1], label)
    return out


def _figure_panels(r: Mapping, names: frozenset[str], problems: Problems, units: str) -> tuple[dict, ...]:
    """``report.figure``: a list of panels, each ``{title, outputs, units}`` (outputs: a name or a list)."""
    fig = r["figure"]
    if not isinstance(fig, list) or not fig:
        problems.add(
            "report.figure", "expected a list of panels {title: TEXT, outputs: [name, ...], units: TEXT}", r, "figure"
        )
        return ()
    out = []
    for i, panel in enumerate(fig):
        key = f"report.figure[{i}]"
        p = problems.mapping(key, panel, r, "figure", keys=("title", "outputs", "units"), required=("title", "outputs"))
        if p is None or "title" not in p or "outputs" not in p:
            continue
        outs = p["outputs"] if isinstance(p["outputs"], list) else [p["outputs"]]
        good = [
            str(n)
            for n in outs
            if problems.name_in(f"{key}.outputs", n, names, r, "figure", what="an output") is not None
        ]
        title, unit = p["title"], p.get("units", units)
        if not isinstance(title, str) or not isinstance(unit, str):
            problems.add(key, f"title and units must be text, got {title!r} and {unit!r}", r, "figure")
            continue
        if good and len(good) == len(outs):
            out.append({"title": title, "outputs": tuple(good), "units": unit})
    return tuple(out)


def _events(r: Mapping, problems: Problems) -> tuple[tuple[float, str], ...]:
    """``report.events``: ``{time: label}`` -> ((time, label), ...) in time order."""
    ev = r["events"]
    if not isinstance(ev, dict):
        problems.add("report.events", "expected a mapping of time: label, e.g. {1997.25: consumption tax}", r, "events")
        return ()
    out = []
    for t, label in ev.items():
        x = problems.number(f"report.events.{t}", t, ev, t, what="time")
        if not isinstance(label, str):
            problems.add(f"report.events.{t}", f"expected a label (text), got {label!r}", ev, t)
        elif x is not None:
            out.append((float(x), label))
    return tuple(sorted(out))


# --------------------------------------------------------------------------- a model read back from a record
# The compile cache (sdmodel.engine.cache.cached_model) keeps, for a model file and scenario whose bytes are
# unchanged, a record of the loaded model: its plain fields (names, values, series, history, presentation)
# and, for the fields that hold sympy objects (SYMBOLIC_FIELDS), only their keys, the plain parts of the
# matrices, the hash of their content (symbolic_digest) and what the run's data dictionary reads from them.
# A model made from a record parses its files (with sympy) only if one of those fields is read.

#: The fields of a :class:`Model` that hold sympy objects.
SYMBOLIC_FIELDS = ("equations", "changes", "stock_init", "lookups", "balance_sheet", "transactions")
_MATRICES = ("balance_sheet", "transactions")


class _Parse:
    """The parse of a recorded model's files: done once, when a deferred field is first read."""

    def __init__(self, load, spec_hash: str, digest: str, facts: Mapping[str, Any]):
        self._load = load
        self._model: Model | None = None
        self.spec_hash = spec_hash
        self.digest = digest
        self.facts = facts
        self.fields: dict[str, Any] = {}  # the deferred objects made for this record, by field

    def model(self) -> Model:
        if self._model is None:
            model = self._load()
            if model.spec_hash != self.spec_hash:
                raise SpecError(
                    "the model's files changed after it was loaded (from the compile cache's record of them); "
                    "load it again",
                    model.source,
                )
            self._model = model
        return self._model


class _DeferredMapping(Mapping):
    """A field of a recorded model that maps names to sympy objects: its keys at once, its values parsed
    on first use."""

    def __init__(self, parse: _Parse, name: str, keys: tuple[str, ...]):
        self._parse, self._name, self._keys = parse, name, keys

    def _real(self) -> Mapping:
        return getattr(self._parse.model(), self._name)

    def __getitem__(self, key):
        return self._real()[key]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __repr__(self) -> str:
        return f"<{self._name} of a model read back from the compile cache: {', '.join(self._keys)}>"

    def __reduce__(self):  # pickled (process pools, Dask) as the parsed mapping
        return _read_only, (_thaw(MappingProxyType(dict(self._real()))),)


class _DeferredMatrix(Matrix):
    """A matrix of a recorded model: kind, columns, entries as written and their lines at once; ``rows`` and
    ``sums`` (sympy) parsed on first use; :meth:`cell_symbols` from the record."""

    @classmethod
    def make(cls, parse: _Parse, name: str, plain: Mapping[str, Any], cells) -> _DeferredMatrix:
        # not through __init__, which stays the dataclass's: dataclasses.replace (Matrix.with_entry) makes
        # an instance with every field of its own, a matrix like any other
        self = object.__new__(cls)
        for k, v in {**plain, "_parse": parse, "_name": name, "_cells": cells}.items():
            object.__setattr__(self, k, v)
        return self

    def __getattr__(self, name: str):  # only for what the instance lacks: rows, sums
        if name.startswith("_") or "_parse" not in vars(self):
            raise AttributeError(name)
        return getattr(getattr(vars(self)["_parse"].model(), vars(self)["_name"]), name)

    def _matrix(self) -> Matrix:
        """The plain :class:`Matrix` this one stands for (parsed now, where it is the record's)."""
        if "rows" in vars(self):  # made by dataclasses.replace: a matrix of its own
            return Matrix(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Matrix)})
        return getattr(self._parse.model(), self._name)

    def __eq__(self, other):
        if isinstance(other, _DeferredMatrix):
            other = other._matrix()
        return self._matrix() == other if isinstance(other, Matrix) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as a Matrix: its mappings are not hashable either

    def cell_symbols(self):
        if "rows" in vars(self):  # made by dataclasses.replace: a matrix of its own
            return super().cell_symbols()
        return {r: dict(cells) for r, cells in self._cells.items()}

    def __reduce__(self):  # pickled (process pools, Dask) as the plain matrix
        return self._matrix().__reduce__()


def _recorded(model: Model) -> _Parse | None:
    """The record ``model``'s symbolic fields all come from, unchanged; None if any was replaced."""
    first = model.equations
    parse = first._parse if isinstance(first, _DeferredMapping) else None
    if parse is None or any(getattr(model, f) is not parse.fields[f] for f in SYMBOLIC_FIELDS):
        return None
    return parse


def symbolic_digest(model: Model) -> str:
    """A hash of the model's sympy content: equations, changes, initial-value expressions, lookup tables
    and both matrices (with the sympy version that printed them). Part of the compile cache's key
    (:func:`sdmodel.engine.compiler.fingerprint`); a model read back from a record, its symbolic fields
    unchanged, gives the hash its record keeps, without sympy."""
    parse = _recorded(model)
    if parse is not None:
        return parse.digest
    import sympy as sp

    h = FieldHash()
    put = h.put

    put("sympy", sp.__version__)
    put("stock_init", *[f"{k}={sp.srepr(e)}" for k, e in model.stock_init.items()])
    put("equations", *[f"{k}={sp.srepr(e)}" for k, e in model.equations.items()])
    put("changes", *[f"{k}={sp.srepr(e)}" for k, e in model.changes.items()])
    put("lookups", *[f"{k}={cls.xs!r}:{cls.ys!r}" for k, cls in model.lookups.items()])
    for mat in (model.balance_sheet, model.transactions):
        if mat is None:
            put("no matrix")
            continue
        put(mat.kind, *mat.columns)
        for r, cells in mat.rows.items():
            put("row", r, *[f"{c}={sp.srepr(e)}" for c, e in cells.items()])
        put("sums", *[f"{r}={sp.srepr(e)}" for r, e in mat.sums.items()])
    return h.hexdigest()


def recorded_fact(model: Model, name: str) -> Any:
    """A fact the record of ``model`` keeps (``roles``: :attr:`sdmodel.model.accounting.Derivation.roles`),
    or None where ``model`` was not read back from a record or a symbolic field of it was replaced."""
    parse = _recorded(model)
    return None if parse is None else parse.facts.get(name)


def model_record(model: Model, facts: Mapping[str, Any]) -> dict[str, Any]:
    """What a record keeps of a loaded model (see :func:`model_from_record`): its plain fields, the keys of
    its symbolic ones, the plain parts and :meth:`Matrix.cell_symbols` of its matrices, the hash of its
    symbolic content and ``facts`` (JSON-serialisable), all but ``plain`` JSON-serialisable."""
    mats = {}
    for name in _MATRICES:
        mat = getattr(model, name)
        mats[name] = (
            None
            if mat is None
            else {
                "kind": mat.kind,
                "columns": list(mat.columns),
                "text": [[r, c, t] for (r, c), t in mat.text.items()],
                # lists, not mappings: the record is stored as JSON with sorted keys, and the order counts
                "lines": [[k, v] for k, v in mat.lines.items()],
                "cells": [
                    [r, [[c, list(n), [list(x) for x in ex]] for c, (n, ex) in cells.items()]]
                    for r, cells in mat.cell_symbols().items()
                ],
            }
        )
    return {
        "plain": dataclasses.replace(
            model,
            equations=MappingProxyType({}),
            changes=MappingProxyType({}),
            stock_init=MappingProxyType({}),
            lookups=MappingProxyType({}),
            balance_sheet=None,
            transactions=None,
        ),
        "keys": {f: list(getattr(model, f)) for f in SYMBOLIC_FIELDS if f not in _MATRICES},
        "matrices": mats,
        "digest": symbolic_digest(model),
        "spec_hash": model.spec_hash,
        "facts": dict(facts),
    }


def model_from_record(record: Mapping[str, Any], load) -> Model:
    """The model a record keeps (:func:`model_record`; ``plain`` as the :class:`Model` it was), its symbolic
    fields read from its files by ``load()`` (a :class:`Model`, checked to have the record's ``spec_hash``)
    on first use."""
    parse = _Parse(load, record["spec_hash"], record["digest"], record["facts"])
    for f, keys in record["keys"].items():
        parse.fields[f] = _DeferredMapping(parse, f, tuple(keys))
    for name in _MATRICES:
        m = record["matrices"][name]
        if m is None:
            parse.fields[name] = None
            continue
        plain = {
            "kind": m["kind"],
            "columns": tuple(m["columns"]),
            "text": MappingProxyType({(r, c): t for r, c, t in m["text"]}),
            "lines": MappingProxyType({k: v for k, v in m["lines"]}),
        }
        cells = {r: {c: (tuple(n), tuple((x[0], int(x[1])) for x in ex)) for c, n, ex in row} for r, row in m["cells"]}
        parse.fields[name] = _DeferredMatrix.make(parse, name, plain, cells)
    plain_model = record["plain"]
    if not isinstance(plain_model, Model):
        raise TypeError("a model record's plain part is not a Model")
    return dataclasses.replace(plain_model, **parse.fields)


__all__ = [
    "Model",
    "Parameter",
    "Series",
    "Shock",
    "shock_map",
    "Matrix",
    "TimeSettings",
    "load_model",
    "model_from_dict",
    "builtin_models",
    "builtin_models_dir",
    "resolve_model_path",
    "scenarios",
    "apply_scenario",
    "SYMBOLIC_FIELDS",
    "symbolic_digest",
    "recorded_fact",
    "model_record",
    "model_from_record",
    "dsym",  # noqa: F822 - from sdmodel.model.expr, on first use (module __getattr__ below)
    "lagsym",  # noqa: F822
]


def __getattr__(name: str):
    # re-exported from the expression language, which loads sympy: only when asked for
    if name in ("dsym", "lagsym"):
        from sdmodel.model import expr

        return getattr(expr, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
