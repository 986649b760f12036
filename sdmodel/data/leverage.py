"""Leverage: debt over the last four quarters of GDP, quarterly, monthly and from components.

Leverage follows the BIS convention: an end-of-period debt stock divided by the sum of
GDP over the last four quarters, in percent.  Quarterly data use a quarterly
``PeriodIndex`` (``freq="Q"``); a ``DatetimeIndex`` is accepted and read as the quarter
(or month) each date falls in.  Results carry a ``PeriodIndex`` in chronological order.

Component aggregates (total economy, financial, non-financial) are sums of declared
components less declared exclusions (:func:`load_components`); an exclusion is a part of
an included gross series: ``subtract_from`` removes it where it must not count, ``add_to``
reclassifies it where it belongs.  ``ComponentTable.signs`` shows every +1/-1, so double
counting is explicit.

>>> import pandas as pd
>>> table = components_from_dict({"components": {
...     "loans": {"kind": "included", "description": "all loans", "add_to": ["total_economy", "non_financial"]},
...     "nbfi_loans": {"kind": "exclusion", "description": "loans to non-bank financials", "part_of": "loans",
...                    "subtract_from": ["non_financial"], "add_to": ["financial"]}}})
>>> table.signs
            total_economy  financial  non_financial
loans                   1          0              1
nbfi_loans              0          1             -1
>>> q = pd.period_range("2000Q1", periods=4, freq="Q")
>>> stocks = pd.DataFrame({"loans": [500.0], "nbfi_loans": [40.0]}, index=q[3:])
>>> aggregate_debt(stocks, table)
        total_economy  financial  non_financial
2000Q4          500.0       40.0          460.0
>>> aggregate_leverage(stocks, table, pd.Series(250.0, index=q))
        total_economy  financial  non_financial
2000Q4           50.0        4.0           46.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml
from scipy.interpolate import CubicSpline, PchipInterpolator

from sdmodel.core.errors import SpecError
from sdmodel.core.inputs import check_yaml_expansion, decode_text, read_input

AGGREGATES = ("total_economy", "financial", "non_financial")
#: The largest component table read (a real one is a few KB).
MAX_TABLE_BYTES = 4 * 2**20
_FREQ = {"Q": ("Q-DEC", "quarterly"), "M": ("M", "monthly")}


def _names(items, limit=10) -> str:
    items = [str(i) for i in items]
    more = f" ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _prepare(obj, freq: str, name: str):
    """Check a Series/DataFrame of numbers on a quarterly or monthly index; sort it."""
    code, label = _FREQ[freq]
    if not isinstance(obj, (pd.Series, pd.DataFrame)):
        raise SpecError(f"expected a pandas Series or DataFrame, got {type(obj).__name__}", source=name)
    idx = obj.index
    if isinstance(idx, pd.DatetimeIndex):
        idx = idx.to_period(freq)
    elif not (isinstance(idx, pd.PeriodIndex) and idx.freqstr == code):
        got = f"PeriodIndex of freq {idx.freqstr}" if isinstance(idx, pd.PeriodIndex) else type(idx).__name__
        raise SpecError(
            f"index must be a {label} PeriodIndex (freq {code!r}) or a DatetimeIndex, got {got}", source=name
        )
    problems = []
    if len(idx) == 0:
        problems.append("no data: the index is empty")
    if idx.duplicated().any():
        problems.append(f"{label} periods appear more than once: {_names(idx[idx.duplicated()].unique())}")
    cols = obj.items() if isinstance(obj, pd.DataFrame) else [("the series" if obj.name is None else obj.name, obj)]
    bad = [f"{c} ({s.dtype})" for c, s in cols if not pd.api.types.is_numeric_dtype(s)]
    if bad:
        problems.append(f"non-numeric data in {_names(bad)}; expected numbers")
    for c, s in cols:
        if pd.api.types.is_numeric_dtype(s) and np.isinf(s.to_numpy(float)).any():
            at = idx[np.isinf(s.to_numpy(float))]
            problems.append(f"{c} is infinite in {_names(at)}; expected finite numbers (NaN for a missing value)")
    if problems:
        raise SpecError(problems, source=name)
    out = obj.astype(float)
    out.index = idx
    return out.sort_index()


def gdp_4q(gdp_q: pd.Series) -> pd.Series:
    """Sum of GDP over the last four quarters (the BIS leverage denominator).

    Parameters
    ----------
    gdp_q : pandas.Series
        Quarterly GDP (flow per quarter) on consecutive quarters.  Positive, no NaN.

    Returns
    -------
    pandas.Series
        Named ``gdp_4q``; NaN in the first three quarters, which lack a full year.
        A quarter missing inside the sample, NaN or GDP <= 0 raise ``SpecError``.

    Examples
    --------
    >>> import pandas as pd
    >>> gdp = pd.Series([100.0, 110, 120, 130, 140], index=pd.period_range("2000Q1", periods=5, freq="Q"))
    >>> gdp_4q(gdp)
    2000Q1      NaN
    2000Q2      NaN
    2000Q3      NaN
    2000Q4    460.0
    2001Q1    500.0
    Freq: Q-DEC, Name: gdp_4q, dtype: float64
    """
    g = _prepare(gdp_q, "Q", "gdp_q")
    if isinstance(g, pd.DataFrame):
        raise SpecError("expected one GDP series, got a DataFrame", source="gdp_q")
    problems = []
    missing = pd.period_range(g.index[0], g.index[-1], freq="Q").difference(g.index)
    if len(missing):
        # A gap would silently make a "four-quarter" sum span five quarters or more.
        problems.append(f"quarter(s) {_names(missing)} missing inside the sample; expected consecutive quarters")
    if g.isna().any():
        problems.append(f"GDP is NaN in {_names(g.index[g.isna()])}; expected a value in every quarter")
    if (g <= 0).any():
        problems.append(f"GDP is not positive in {_names(g.index[g <= 0])}; expected GDP > 0")
    if problems:
        raise SpecError(problems, source="gdp_q")
    return g.rolling(4).sum().rename("gdp_4q")


def _ratio(debt, denom: pd.Series, label: str, total: bool):
    missing = debt.index.difference(denom.index)
    if len(missing):
        raise SpecError(
            f"no GDP for the {label} {_names(missing)} of the debt data; "
            f"gdp_q covers {denom.index[0]} to {denom.index[-1]}",
            source="debt",
        )
    den = denom.reindex(debt.index)
    if isinstance(debt, pd.Series):
        return (debt / den * 100).rename(debt.name)
    if total:
        if "total" in debt.columns:
            raise SpecError(
                "a column is named 'total', which leverage() adds; rename it or pass total=False", source="debt"
            )
        debt = debt.assign(total=debt.sum(axis=1, skipna=False))  # NaN sector -> NaN total, not a smaller one
    return debt.div(den, axis=0) * 100


def leverage(debt, gdp_q: pd.Series, *, total: bool = True):
    """Debt over the last four quarters of GDP, in percent (BIS convention).

    Parameters
    ----------
    debt : pandas.Series or pandas.DataFrame
        End-of-quarter debt stocks; a DataFrame has one column per sector.
    gdp_q : pandas.Series
        Quarterly GDP, see :func:`gdp_4q`; must cover every quarter of ``debt``.
    total : bool, default True
        For a DataFrame, add a ``total`` column: the sum of the sectors' debt over
        GDP (NaN if any sector is NaN), i.e. the sum of the sector leverages.

    Returns
    -------
    pandas.Series or pandas.DataFrame
        Leverage in percent; NaN in the first three quarters of ``gdp_q``.  Quarters of
        ``debt`` without GDP raise ``SpecError`` naming them.

    Examples
    --------
    >>> import pandas as pd
    >>> q = pd.period_range("2000Q1", periods=4, freq="Q")
    >>> gdp = pd.Series([100.0, 110, 120, 130], index=q)
    >>> debt = pd.DataFrame({"households": [460.0], "firms": [920.0]}, index=q[3:])
    >>> leverage(debt, gdp)
            households  firms  total
    2000Q4       100.0  200.0  300.0
    """
    return _ratio(_prepare(debt, "Q", "debt"), gdp_4q(gdp_q), "quarter(s)", total)


def monthly_gdp_4q(gdp_q: pd.Series, *, method: str = "pchip") -> pd.Series:
    """The four-quarter GDP sum interpolated to months, exact at each quarter's last month.

    The sum known at the end of each quarter (:func:`gdp_4q`) is placed at the quarter's
    last month and a cubic is drawn through those points, month by month.

    Parameters
    ----------
    gdp_q : pandas.Series
        Quarterly GDP, at least five quarters (two four-quarter sums).
    method : {"pchip", "spline"}
        ``"pchip"`` (default): piecewise cubic Hermite, shape-preserving and local.
        ``"spline"``: not-a-knot cubic spline (smoother, but may overshoot and is global).

    Returns
    -------
    pandas.Series
        Every month of the quarters of ``gdp_q``, named ``gdp_4q``; NaN before the first
        four-quarter sum (nothing is extrapolated).

    Examples
    --------
    >>> import pandas as pd
    >>> gdp = pd.Series([100.0, 100, 100, 100, 130], index=pd.period_range("2000Q1", periods=5, freq="Q"))
    >>> monthly_gdp_4q(gdp)["2000-12":]
    2000-12    400.0
    2001-01    410.0
    2001-02    420.0
    2001-03    430.0
    Freq: M, Name: gdp_4q, dtype: float64
    """
    # PCHIP by default: it never invents a turning point or overshoot between quarters, so
    # the monthly denominator cannot wiggle where quarterly GDP does not; and it is local,
    # so a new quarter revises only the last months, not the whole published history
    # (a cubic spline is global).  Both pass through the knots.
    interpolators = {"pchip": PchipInterpolator, "spline": CubicSpline}
    if method not in interpolators:
        raise SpecError(
            f"unknown method {method!r}; expected one of {', '.join(interpolators)}", source="monthly_gdp_4q"
        )
    g4 = gdp_4q(gdp_q)
    knots = g4.dropna()
    if len(knots) < 2:
        raise SpecError(
            f"monthly interpolation needs at least 5 quarters (two four-quarter sums), got {len(knots) + 3}",
            source="gdp_q",
        )
    months = pd.period_range(g4.index[0].asfreq("M", "start"), g4.index[-1].asfreq("M", "end"), freq="M")
    x = knots.index.asfreq("M", "end").asi8  # month ordinals: equally spaced months
    y = knots.to_numpy()
    out = pd.Series(np.nan, index=months, name="gdp_4q")
    inside = months.asi8 >= x[0]
    out[inside] = interpolators[method](x, y)(months.asi8[inside])
    # Write the knots back: evaluating a cubic at its right end can be off by an ulp,
    # and the quarter-end month must equal the quarterly sum exactly.
    out[knots.index.asfreq("M", "end")] = y
    return out


def monthly_leverage(debt_m, gdp_q: pd.Series, *, method: str = "pchip", total: bool = True):
    """Monthly debt over the monthly four-quarter GDP sum, in percent.

    Parameters
    ----------
    debt_m : pandas.Series or pandas.DataFrame
        End-of-month debt stocks (monthly ``PeriodIndex`` or ``DatetimeIndex``).
    gdp_q : pandas.Series
        Quarterly GDP covering every month of ``debt_m``; see :func:`monthly_gdp_4q`.
    method, total
        As in :func:`monthly_gdp_4q` and :func:`leverage`.  Months before the first
        four-quarter sum give NaN; months outside the quarters of ``gdp_q`` an error.

    Examples
    --------
    >>> import pandas as pd
    >>> gdp = pd.Series([100.0, 100, 100, 100, 130], index=pd.period_range("2000Q1", periods=5, freq="Q"))
    >>> debt = pd.Series([820.0, 861.0], index=pd.period_range("2001-01", periods=2, freq="M"), name="debt")
    >>> monthly_leverage(debt, gdp)
    2001-01    200.0
    2001-02    205.0
    Freq: M, Name: debt, dtype: float64
    """
    return _ratio(_prepare(debt_m, "M", "debt"), monthly_gdp_4q(gdp_q, method=method), "month(s)", total)


@dataclass(frozen=True)
class Component:
    """One debt series: ``included`` (a gross series) or ``exclusion`` (a part of one)."""

    name: str
    description: str
    kind: str
    add_to: tuple[str, ...]
    subtract_from: tuple[str, ...] = ()
    part_of: str | None = None


@dataclass(frozen=True)
class ComponentTable:
    """The declared components; build with :func:`load_components` or :func:`components_from_dict`."""

    components: tuple[Component, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components)

    @property
    def signs(self) -> pd.DataFrame:
        """+1 (added), -1 (subtracted) or 0 for each component (rows) and aggregate (columns)."""
        s = pd.DataFrame(0, index=list(self.names), columns=list(AGGREGATES))
        for c in self.components:
            s.loc[c.name, list(c.add_to)] = 1
            s.loc[c.name, list(c.subtract_from)] = -1
        return s


def components_from_dict(data, source: str | None = None) -> ComponentTable:
    """Validate a component table given as a mapping (the YAML's structure), reporting every problem.

    See the module docstring for an example; ``SpecError`` lists every malformed component.
    """
    comps = data.get("components") if isinstance(data, dict) else None
    if not isinstance(comps, dict) or not comps:
        raise SpecError("expected a mapping with a non-empty 'components' mapping", source=source)
    keys = {"description", "kind", "add_to", "subtract_from", "part_of"}
    problems, out = [], []
    for name, c in comps.items():
        if not isinstance(c, dict):
            problems.append(f"component {name!r}: expected a mapping with keys {sorted(keys)}")
            continue
        if set(c) - keys:
            problems.append(f"component {name!r}: unknown key(s) {sorted(set(c) - keys)}; expected {sorted(keys)}")
        kind, part = c.get("kind"), c.get("part_of")
        if not isinstance(c.get("description"), str) or not c["description"].strip():
            problems.append(f"component {name!r}: expected a one-line 'description'")
        if kind not in ("included", "exclusion"):
            problems.append(f"component {name!r}: kind must be 'included' or 'exclusion', got {kind!r}")
        lists = {k: c.get(k) or [] for k in ("add_to", "subtract_from")}
        bad = [k for k, v in lists.items() if not (isinstance(v, list) and set(map(str, v)) <= set(AGGREGATES))]
        problems += [
            f"component {name!r}: {k} must be a list of {', '.join(AGGREGATES)}, got {lists[k]!r}" for k in bad
        ]
        add, sub = ([], []) if bad else (lists["add_to"], lists["subtract_from"])
        if kind == "included" and not bad and (sub or part is not None or not add):
            problems.append(f"component {name!r}: an included component needs add_to and no subtract_from or part_of")
        elif kind == "exclusion" and not bad:
            parent = comps.get(part) if isinstance(part, str) else None
            if not isinstance(parent, dict) or parent.get("kind") != "included":
                problems.append(
                    f"component {name!r}: part_of must name the included component it is counted in, got {part!r}"
                )
            elif set(sub) - set(parent.get("add_to") or []):
                problems.append(
                    f"component {name!r}: subtracted from {sorted(set(sub) - set(parent['add_to']))}"
                    f" where its part_of {part!r} is not added"
                )
            if not sub or set(add) & set(sub):
                problems.append(f"component {name!r}: an exclusion needs subtract_from, disjoint from add_to")
        out.append(Component(str(name), str(c.get("description")), str(kind), tuple(add), tuple(sub), part))
    if not problems:
        empty = [a for a in AGGREGATES if not any(a in c.add_to for c in out)]
        problems += [f"aggregate {a!r}: no component is added to it" for a in empty]
    if problems:
        raise SpecError(problems, source=source)
    return ComponentTable(tuple(out))


def load_components(path) -> ComponentTable:
    """Read a component table from YAML (e.g. ``calibration/leverage_components.yaml``).

    ``SpecError`` naming the file for a missing file, a folder, a device such as ``/dev/zero``, a file
    of more than :data:`MAX_TABLE_BYTES`, bytes that are not UTF-8, an alias bomb and YAML that does
    not parse (:mod:`sdmodel.core.inputs` reads it).
    """
    raw = read_input(path, "component table", max_bytes=MAX_TABLE_BYTES)
    text = decode_text(raw, str(path), "component table")
    check_yaml_expansion(text, str(path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise SpecError(
            f"{where}not valid YAML ({getattr(e, 'problem', None) or e}); expected a mapping with "
            "a 'components' mapping",
            source=str(path),
        ) from None
    return components_from_dict(data, source=str(path))


def aggregate_debt(
    components: pd.DataFrame, table: ComponentTable, *, missing: str = "error", monthly: bool = False
) -> pd.DataFrame:
    """Total-economy, financial and non-financial debt: ``components @ table.signs``.

    ``components`` holds one column per component (stocks by quarter, or by month with
    ``monthly=True``).  Columns not in ``table`` are an error; so are table components
    absent from the data unless ``missing="zero"`` (they then count as zero).  Stocks
    must be non-negative and no exclusion may exceed the series it is part of.
    NaN propagates to every aggregate the component counts in.  Example: module docstring.
    """
    if missing not in ("error", "zero") or not isinstance(components, pd.DataFrame):
        raise SpecError(
            f"expected a DataFrame with one column per component and missing='error' or 'zero', "
            f"got {type(components).__name__} and {missing!r}",
            source="components",
        )
    problems = []
    unknown = [c for c in components.columns if c not in table.names]
    if unknown:
        problems.append(f"unknown component column(s) {_names(unknown)}; the table declares {_names(table.names, 20)}")
    absent = [n for n in table.names if n not in components.columns]
    if absent and missing == "error":
        problems.append(
            f"table component(s) {_names(absent)} missing from the data; add the column(s) "
            "or pass missing='zero' to count them as zero"
        )
    if problems:
        raise SpecError(problems, source="components")
    s = _prepare(components, "M" if monthly else "Q", "components").reindex(columns=list(table.names), fill_value=0.0)
    for name in s.columns[(s < 0).any().to_numpy()]:
        problems.append(f"component {name!r} is negative in {_names(s.index[s[name] < 0])}; expected a debt stock >= 0")
    for c in (c for c in table.components if c.part_of):
        if (over := s.index[s[c.name] > s[c.part_of]]).size:
            problems.append(f"exclusion {c.name!r} exceeds {c.part_of!r}, which it is part of, in {_names(over)}")
    if problems:
        raise SpecError(problems, source="components")
    # Sum only the components that count in each aggregate, so a NaN elsewhere does not leak in.
    return pd.DataFrame({a: (s[w.index[w != 0]] * w[w != 0]).sum(axis=1, skipna=False) for a, w in table.signs.items()})


def aggregate_leverage(
    components: pd.DataFrame,
    table: ComponentTable,
    gdp_q: pd.Series,
    *,
    missing: str = "error",
    monthly: bool = False,
    method: str = "pchip",
) -> pd.DataFrame:
    """Leverage (percent) of :func:`aggregate_debt`'s aggregates over quarterly GDP.

    Quarterly stocks use :func:`leverage`, monthly ones (``monthly=True``) :func:`monthly_leverage`;
    ``gdp_q`` is quarterly GDP in both cases.  Example: module docstring.
    """
    debt = aggregate_debt(components, table, missing=missing, monthly=monthly)
    if monthly:
        return monthly_leverage(debt, gdp_q, method=method, total=False)
    return leverage(debt, gdp_q, total=False)
