"""Calibration target data: read the publishers' downloads, rebuild the compact CSVs in ``calibration/data``.

Two halves:

* **Readers.** :func:`read_bis_total_credit` reads the BIS *Total credit to the
  non-financial sector* dataset (WS_TC) in any of the layouts it is distributed in
  (the bulk ``WS_TC_csv_col.csv`` / ``WS_TC_csv_flat.csv``, zipped or not, the SDMX
  API CSV, and the long extract of the shared data folder) into one tidy frame.
  :class:`SharedData` reads the other long files of the shared data folder.
* **Builders.** :func:`annual_frame` and :func:`quarterly_frame` make the compact
  country frames, :func:`to_csv_text` formats them, and :func:`build` writes
  ``japan_annual.csv``, ``china_annual.csv``, ``japan_quarterly.csv`` and
  ``china_quarterly.csv`` (or, with ``check=True``, only compares).

Nothing is interpolated or filled: a period without a source value is an empty cell.
Every column is documented in ``calibration/data/SOURCES.md``. The annual frames are
those of ``models/bsr/data/make_history.py`` (same columns, derivations and formatting).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sdmodel.core.errors import DataError, MissingInputError
from sdmodel.core.files import write_atomic_file
from sdmodel.core.inputs import MAX_BYTES, decode_text, read_input

__all__ = [
    "ANNUAL_COLUMNS",
    "BIS_TC_FILES",
    "BuildReport",
    "DataError",
    "DEFAULT_YEARS",
    "INPUT_FILES",
    "MissingInputError",
    "QUARTERLY_SERIES",
    "SharedData",
    "TIDY_COLUMNS",
    "annual_frame",
    "bis_series",
    "build",
    "check_increasing",
    "csv_table",
    "quarterly_frame",
    "read_bis_total_credit",
    "read_table",
    "to_csv_text",
    "to_numbers",
]


# =========================================================================== readers
#: BIS WS_TC dimensions, in key order (``Q:JP:H:A:M:770:A``).
DIMENSIONS = ("FREQ", "BORROWERS_CTY", "TC_BORROWERS", "TC_LENDERS", "VALUATION", "UNIT_TYPE", "TC_ADJUST")
#: Columns of the tidy frame returned by :func:`read_bis_total_credit`.
TIDY_COLUMNS = ["period", "country", "borrowers", "lenders", "valuation", "unit", "adjust", "value"]
_LONG = ("period", "bis_series_key", "value")
_QUARTER = re.compile(r"^\d{4}-?Q[1-4]$")
#: The largest BIS total credit file read, zipped or once unzipped (the bulk flat file is a few hundred MB).
MAX_BIS_BYTES = 2**31
#: Cells read as a missing value (case is ignored); anything else in a numeric column must be a number.
MISSING = frozenset({"", "NA", "N/A", "NAN", "-NAN", "NULL", "NONE", "#N/A", "<NA>"})


def _unzip(raw: bytes, path: Path, what: str, max_bytes: int) -> bytes:
    """The one file of a zip archive (as the BIS bulk downloads are), bounded by ``max_bytes`` once unzipped."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise DataError(f"{path}: the zipped {what} holds {len(members)} files; expected exactly one CSV")
            if members[0].file_size > max_bytes:
                raise DataError(
                    f"{path}: {members[0].filename} unzips to {members[0].file_size:,} bytes, more than "
                    f"the {max_bytes:,} allowed"
                )
            with z.open(members[0]) as fh:
                data = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as e:
        raise DataError(
            f"{path}: the {what} is not a readable zip archive ({e}); expected the zip as downloaded, or the CSV itself"
        ) from None
    if len(data) > max_bytes:
        raise DataError(f"{path}: the zipped {what} unzips to more than the {max_bytes:,} bytes allowed")
    return data


def csv_table(raw: bytes, path: str | os.PathLike, what: str = "data file") -> pd.DataFrame:
    """The cells of CSV bytes as text, one row per record, indexed by the ``line`` the record starts on.

    Blank lines (and lines of empty cells only) are skipped.  ``DataError`` naming the file (and line)
    when the bytes are not UTF-8, hold no header or no data row, a row has more or fewer cells than the
    header, or a column name appears twice.  Nothing is converted, padded or dropped silently.

    >>> csv_table(b"year,x\\n1990,1.5\\n\\n1991,\\n", "f.csv").to_dict("index")
    {2: {'year': '1990', 'x': '1.5'}, 4: {'year': '1991', 'x': ''}}
    >>> csv_table(b"year,x\\n1990,1.5,7\\n", "f.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sdmodel.core.errors.DataError: f.csv: line 2: 3 cells, expected 2 as in the header (line 1); check for a ...
    """
    path = Path(path)
    text = decode_text(raw, str(path), what, error=DataError)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line, rows, lines, end = 0, [], [], 0
    try:
        for rec in reader:
            start, end = end + 1, reader.line_num
            if not any(c.strip() for c in rec):
                continue
            if header is None:
                header, header_line = rec, start
            elif len(rec) != len(header):
                raise DataError(
                    f"{path}: line {start}: {len(rec)} cells, expected {len(header)} as in the header "
                    f"(line {header_line}); check for a missing or extra comma, or quote a cell that "
                    "holds one"
                )
            else:
                rows.append(rec)
                lines.append(start)
    except csv.Error as e:
        raise DataError(
            f"{path}: line {reader.line_num}: not valid CSV ({e}); expected comma-separated cells, "
            "quotes around a cell that holds a comma, quote or line break"
        ) from None
    if header is None:
        raise DataError(f"{path}: the {what} is empty; expected a header line and rows of values")
    names = [h.strip() or f"Unnamed: {i}" for i, h in enumerate(header)]
    seen: dict[str, int] = {}
    for i, h in enumerate(names, 1):
        if h in seen:
            raise DataError(
                f"{path}: line {header_line}: column {h!r} appears twice in the header (columns "
                f"{seen[h]} and {i}); expected each column once"
            )
        seen[h] = i
    if not rows:
        raise DataError(
            f"{path}: the {what} has a header (line {header_line}) but no rows of values; expected at least one row"
        )
    return pd.DataFrame(rows, columns=names, index=pd.Index(lines, name="line"), dtype=str)


def read_table(path: str | os.PathLike, what: str = "data file", *, max_bytes: int = MAX_BYTES) -> pd.DataFrame:
    """A CSV file (or the one CSV of a ``.zip``) as :func:`csv_table`; ``DataError`` for a missing file, a
    folder, a device such as ``/dev/zero``, a FIFO or a file larger than ``max_bytes``."""
    path = Path(path)
    raw = read_input(path, what, max_bytes=max_bytes, error=DataError)
    if path.suffix.lower() == ".zip":
        raw = _unzip(raw, path, what, max_bytes)
    return csv_table(raw, path, what)


def to_numbers(
    cells: pd.Series,
    path: str | os.PathLike,
    column: str,
    *,
    integer: bool = False,
    required: bool = False,
    what: str = "a finite number",
) -> pd.Series:
    """The text cells of one column (indexed by line, as :func:`csv_table` returns them) as floats.

    Empty and NA cells (:data:`MISSING`) become NaN (an error when ``required``); text that is not a
    number, an infinite value and (with ``integer``) a fractional number are a ``DataError`` naming the
    file, line and column.  ``int64`` is returned for ``integer`` columns that are ``required``.
    """
    text = cells.astype(object).map(lambda c: str(c).strip())
    missing = text.str.upper().isin(MISSING)
    x = pd.to_numeric(text.where(~missing, None), errors="coerce").astype(float)
    fault = None
    if (bad := x.isna() & ~missing).any():
        fault = bad, "is not a number"
    elif (bad := np.isinf(x)).any():
        fault = bad, "is infinite"
    elif integer and (bad := x.notna() & (x != x.round())).any():
        fault = bad, "is not a whole number"
    elif required and (bad := missing).any():
        fault = bad, "is empty"
    if fault is not None:
        line = fault[0].idxmax()
        raise DataError(
            f"{path}: line {line}, column {column}: {cells[line]!r} {fault[1]}; expected {what}"
            + ("" if required else " (leave the cell empty for a missing value)")
        )
    return x.astype("int64") if integer and required else x


def check_increasing(times: pd.Series, path: str | os.PathLike, column: str, what: str = "") -> None:
    """``DataError`` naming the line where ``times`` (indexed by line, in file order) repeats or goes back.

    Nothing is sorted: a series must list each time once, in increasing order.  ``what`` names the series.
    """
    v = times.to_numpy(dtype=float)
    step = np.diff(v)
    if not (step <= 0).any():
        return
    i = int((step <= 0).argmax()) + 1
    same = np.flatnonzero(v[:i] == v[i])
    first = int(same[0]) if same.size else i - 1
    line, before = times.index[i], times.index[first]
    series = f" ({what})" if what else ""
    how = f"repeats the {column} of line {before}" if same.size else f"comes after {v[first]:g} (line {before})"
    raise DataError(
        f"{path}: line {line}, column {column}{series}: {v[i]:g} {how}; expected each {column} once, "
        "in increasing order (nothing is sorted for you)"
    )


def _code(h: str) -> str:
    """``'FREQ:Frequency'`` or ``'JP: Japan'`` -> ``'FREQ'`` / ``'JP'`` (codes never contain a colon)."""
    return h.split(":", 1)[0].strip()


def _layout(path: Path, header: list[str]) -> tuple[str, list[str]]:
    codes = {_code(h) for h in header}
    if set(DIMENSIONS) <= codes and any(_QUARTER.match(h) for h in header):
        return "col", header
    if set(DIMENSIONS) | {"TIME_PERIOD", "OBS_VALUE"} <= codes:
        return "flat", header
    if set(_LONG) <= set(header):
        return "long", header
    shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
    raise DataError(
        f"{path}: not a BIS total credit (WS_TC) file: header is [{shown}]; expected either the bulk csv_col "
        f"layout ({', '.join(DIMENSIONS)} and one column per quarter such as 1990-Q1), the flat/SDMX layout "
        f"({', '.join(DIMENSIONS)}, TIME_PERIOD, OBS_VALUE) or the long extract ({', '.join(_LONG)})"
    )


def read_bis_total_credit(path: str | os.PathLike, countries: Iterable[str] | str | None = None) -> pd.DataFrame:
    """Read BIS total credit (WS_TC) into a tidy frame, whatever the download layout.

    Parameters
    ----------
    path : str or path-like
        ``WS_TC_csv_col.csv`` (bulk, one column per quarter), ``WS_TC_csv_flat.csv`` or an
        SDMX API CSV (``TIME_PERIOD``/``OBS_VALUE``, codes plain or as ``"JP: Japan"``), either
        possibly zipped as downloaded from https://data.bis.org/bulkdownload, or the long extract
        ``bis_total_credit_quarterly_JPN_CHN_USA.csv`` (``period``, ``bis_series_key``, ``value``).
        The layout is detected from the header.
    countries : iterable of str, optional
        BIS borrowers' country codes (ISO2, e.g. ``["JP", "CN"]``) to keep; all when None.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TIDY_COLUMNS`: ``period`` (quarterly ``pandas.Period``), ``country``
        (``BORROWERS_CTY``), ``borrowers`` (``TC_BORROWERS``: C total non-financial, G general
        government, H households & NPISHs, N non-financial corporations, P private non-financial),
        ``lenders`` (A all sectors, B banks), ``valuation`` (M market, N nominal), ``unit``
        (770 per cent of GDP, XDC domestic currency, USD...), ``adjust`` (A adjusted for breaks,
        U unadjusted) and ``value``. Values are the source numbers: per cent for unit 770,
        **billions** of currency units for XDC and USD (BIS ``UNIT_MULT`` 9, checked when given).
        Quarterly series only, missing observations dropped, sorted by series then period.

    Raises
    ------
    DataError
        A folder, device or oversized file instead of a CSV, bytes that are not UTF-8, an empty file or
        a header without rows, a row with more or fewer cells than the header, an unrecognised header,
        a non-numeric or infinite value, a bad period, a duplicate observation, a series whose quarters
        go back (nothing is sorted within a series) or a unit multiplier other than 9 for a currency
        series; the message names the file, line and series key.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d, "WS_TC_csv_col.csv")
    ...     _ = p.write_text("FREQ,BORROWERS_CTY,TC_BORROWERS,TC_LENDERS,VALUATION,UNIT_TYPE,TC_ADJUST,"
    ...                      "1990-Q1,1990-Q2\\nQ,JP,H,A,M,770,A,68.3,68.4\\nQ,US,H,A,M,770,A,59.9,\\n")
    ...     tidy = read_bis_total_credit(p, countries=["JP"])
    >>> tidy
       period country borrowers lenders valuation unit adjust  value
    0  1990Q1      JP         H       A         M  770      A   68.3
    1  1990Q2      JP         H       A         M  770      A   68.4
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: file not found (expected a BIS total credit file)", [str(path)])
    table = read_table(path, "BIS total credit file", max_bytes=MAX_BIS_BYTES)
    layout, header = _layout(path, [str(h) for h in table.columns])
    by_code = {_code(h): h for h in reversed(header)}  # first occurrence wins
    if layout == "long":
        df = table[list(_LONG) + (["unit"] if "unit" in header else [])]
        keys = df["bis_series_key"].astype(str)
        bad = ~keys.str.fullmatch(r"[^:]+(?::[^:]+){6}")
        if bad.any():
            raise DataError(
                f"{path}: column bis_series_key: {keys[bad].iloc[0]!r} is not a BIS key; expected "
                f"Q:<country>:<borrowers>:<lenders>:<valuation>:<unit>:<adjust> (line {bad.idxmax()})"
            )
        parts = pd.DataFrame(keys.str.split(":").tolist(), columns=list(DIMENSIONS), index=df.index)
        df = pd.concat(
            [parts, df.rename(columns={"period": "TIME_PERIOD", "value": "OBS_VALUE", "unit": "LONG_UNIT"})], axis=1
        )
    else:
        keep = [d for d in (*DIMENSIONS, "UNIT_MULT") if d in by_code]
        if layout == "col":
            keep += [h for h in header if _QUARTER.match(h)]
        else:
            keep += ["TIME_PERIOD", "OBS_VALUE"]
        cols = [by_code.get(k, k) for k in keep]
        df = table[cols].set_axis(keep, axis=1)
        for d in (*DIMENSIONS, "UNIT_MULT"):
            if d in df:
                df[d] = df[d].map(_code)
    if countries is not None:
        wanted = [countries] if isinstance(countries, str) else list(countries)
        df = df[df["BORROWERS_CTY"].isin(wanted)]
    if layout == "col":
        ids = [k for k in df.columns if not _QUARTER.match(k)]
        df = df.melt(id_vars=ids, var_name="TIME_PERIOD", value_name="OBS_VALUE", ignore_index=False)
    df = df[(df["FREQ"] == "Q") & ~df["OBS_VALUE"].str.strip().str.upper().isin(["", "NAN", "NA"])]
    return _tidy(df, path, by_column=layout == "col")


def _periods(labels: pd.Series) -> pd.PeriodIndex:
    """``'1990-Q1'`` labels -> quarterly periods, parsing each distinct label once (bulk files are large)."""
    codes, uniques = pd.factorize(labels.to_numpy(dtype=object))
    return pd.PeriodIndex([u.replace("-", "") for u in uniques], freq="Q")[codes]


def _tidy(df: pd.DataFrame, path: Path, by_column: bool = False) -> pd.DataFrame:
    def key(i: int) -> str:
        return ":".join(df[d].iloc[i] for d in DIMENSIONS)

    def at(i: int) -> str:
        """Where observation ``i`` is in the file: its line (and, in the csv_col layout, its quarter column)."""
        return f"line {df.index[i]}" + (f", column {df['TIME_PERIOD'].iloc[i]}" if by_column else "") + ": "

    value = pd.to_numeric(df["OBS_VALUE"].str.strip(), errors="coerce")
    tp = df["TIME_PERIOD"].str.strip()
    bad = ~tp.str.match(_QUARTER)
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise DataError(f"{path}: {at(i)}series {key(i)}: period {tp.iloc[i]!r}; expected a quarter like 1990-Q1")
    bad = value.isna()
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise DataError(
            f"{path}: {at(i)}series {key(i)}, period {tp.iloc[i]}: value {df['OBS_VALUE'].iloc[i]!r}; expected a number"
        )
    bad = np.isinf(value.to_numpy(float))
    if bad.any():
        i = bad.nonzero()[0][0]
        raise DataError(
            f"{path}: {at(i)}series {key(i)}, period {tp.iloc[i]}: value {df['OBS_VALUE'].iloc[i]!r} "
            f"is infinite; expected a finite number (leave the cell empty for a missing value)"
        )
    currency = df["UNIT_TYPE"].isin(["XDC", "USD"])
    if "UNIT_MULT" in df:
        bad = currency & (df["UNIT_MULT"] != "9")
        what = "UNIT_MULT", "9 (billions)"
        got = df["UNIT_MULT"]
    elif "LONG_UNIT" in df:
        bad = currency & ~df["LONG_UNIT"].str.startswith("billions")
        what = "unit", "billions_<currency>"
        got = df["LONG_UNIT"]
    else:
        bad = pd.Series(False, index=df.index)
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise DataError(
            f"{path}: line {df.index[i]}: series {key(i)}: column {what[0]} is {got.iloc[i]!r}; expected {what[1]}"
        )
    out = pd.DataFrame(
        {
            "period": _periods(tp),
            "country": df["BORROWERS_CTY"].to_numpy(),
            "borrowers": df["TC_BORROWERS"].to_numpy(),
            "lenders": df["TC_LENDERS"].to_numpy(),
            "valuation": df["VALUATION"].to_numpy(),
            "unit": df["UNIT_TYPE"].to_numpy(),
            "adjust": df["TC_ADJUST"].to_numpy(),
            "value": value.to_numpy(float),
        }
    )
    for c in TIDY_COLUMNS[1:-1]:
        out[c] = out[c].astype(str)
    dup = out.duplicated(TIDY_COLUMNS[:-1])
    if dup.any():
        i = dup.to_numpy().nonzero()[0][0]
        raise DataError(f"{path}: {at(i)}series {key(i)}, period {tp.iloc[i]}: two observations; expected one")
    # each series in increasing quarters, in file order: a file out of order is refused, not sorted
    group = out.groupby(TIDY_COLUMNS[1:-1], sort=False).ngroup().to_numpy()
    order = np.argsort(group, kind="stable")
    ordinal = out["period"].array.asi8[order]
    back = (group[order][1:] == group[order][:-1]) & (ordinal[1:] < ordinal[:-1])
    if back.any():
        i, j = order[back.argmax() + 1], order[back.argmax()]
        raise DataError(
            f"{path}: {at(i)}series {key(i)}, period {tp.iloc[i]} comes after {tp.iloc[j]} "
            f"({at(j)[:-2]}); expected each series in increasing quarters (nothing is sorted for you)"
        )
    return out.sort_values(TIDY_COLUMNS[1:-1] + ["period"], kind="stable").reset_index(drop=True)


def bis_series(tidy: pd.DataFrame, key: str) -> pd.Series:
    """One series of a tidy BIS frame, by BIS key, indexed by quarter (empty if absent).

    Examples
    --------
    >>> tidy = pd.DataFrame({"period": pd.period_range("1990Q1", periods=2, freq="Q"), "country": "JP",
    ...                      "borrowers": "H", "lenders": "A", "valuation": "M", "unit": "770",
    ...                      "adjust": "A", "value": [68.3, 68.4]})
    >>> bis_series(tidy, "Q:JP:H:A:M:770:A").to_dict()
    {Period('1990Q1', 'Q-DEC'): 68.3, Period('1990Q2', 'Q-DEC'): 68.4}
    """
    parts = key.split(":")
    if len(parts) != len(DIMENSIONS) or parts[0] != "Q":
        raise DataError(f"series key {key!r}: expected Q:<country>:<borrowers>:<lenders>:<valuation>:<unit>:<adjust>")
    sel = np.ones(len(tidy), dtype=bool)
    for col, code in zip(TIDY_COLUMNS[1:-1], parts[1:]):
        sel &= tidy[col].to_numpy(dtype=object) == code
    return pd.Series(
        tidy["value"].to_numpy(float)[sel], index=pd.PeriodIndex(tidy["period"][sel]), name=key
    ).sort_index()


# --------------------------------------------------------------------------- the shared data folder
#: BIS total credit input, first found wins: the publisher's bulk files, then the shared long extract.
BIS_TC_FILES = (
    "WS_TC_csv_col.csv",
    "WS_TC_csv_col.zip",
    "WS_TC_csv_flat.csv",
    "WS_TC_csv_flat.zip",
    "bis_total_credit_quarterly_JPN_CHN_USA.csv",
)
#: The other inputs (long files of the shared data folder) and the columns read from each.
INPUT_FILES = {
    "bis_property": (
        "bis_residential_property_prices_quarterly_JPN_CHN_USA.csv",
        ("year", "quarter", "bis_series_key", "value"),
    ),
    "bis_cpi": ("bis_long_cpi_annual_JPN_CHN_USA.csv", ("year", "bis_series_key", "value")),
    "weo": ("imf_weo_JPN_CHN_USA.csv", ("year", "country", "variable", "value")),
    "pfmh": ("imf_pfmh_public_finances_JPN_CHN_USA.csv", ("year", "country", "variable", "value")),
    "wdi": ("worldbank_wdi_gfdd_JPN_CHN_USA.csv", ("year", "country", "series_code", "value")),
    "npl": ("worldbank_bank_npl_ratio_JPN_CHN.csv", ("year", "country", "series_code", "value")),
    "gmd": ("gmd_central_bank_policy_rate_JPN_CHN.csv", ("year", "country", "series", "value")),
    "mfs": ("imf_anea_gdp_and_mfs_interest_rates_JPN_CHN_USA.csv", ("year", "imf_series_code", "value")),
    "jrei": ("japan_land_price_index_JREI_annual.csv", ("year", "series", "value")),
    "panel_JPN": ("panel_key_annual_JPN.csv", ("year",)),
    "panel_CHN": ("panel_key_annual_CHN.csv", ("year",)),
}


class SharedData:
    """The source folder: every accessor returns a year-indexed float Series.

    All inputs are looked for on construction; a :class:`MissingInputError` names every
    missing file at once. BIS total credit is read with :func:`read_bis_total_credit` from
    the first of :data:`BIS_TC_FILES` present, so a fresh BIS bulk download can stand in
    for the shared long extract.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise DataError(
                f"{self.root}: the source folder is a file; expected a folder holding the inputs "
                f"({BIS_TC_FILES[0]}, {INPUT_FILES['weo'][0]}, ...)"
            )
        # exists(), not is_file(): a folder or a device under an input's name is reported by the reader
        bis = next((self.root / n for n in BIS_TC_FILES if (self.root / n).exists()), None)
        missing = [] if bis else [" or ".join(BIS_TC_FILES)]
        missing += [name for name, _ in INPUT_FILES.values() if not (self.root / name).exists()]
        if missing or bis is None:  # (bis is None only when it is missing)
            raise MissingInputError(
                f"{self.root}: {len(missing)} input file(s) missing: " + "; ".join(missing), missing
            )
        self.bis_file: Path = bis
        self._cache: dict[str, pd.DataFrame] = {}
        self._numeric: set[tuple[str, str]] = set()  # (input, column) already read as numbers
        self._bis: pd.DataFrame | None = None

    @property
    def bis(self) -> pd.DataFrame:
        """Tidy BIS total credit for JP and CN (see :func:`read_bis_total_credit`)."""
        if self._bis is None:
            self._bis = read_bis_total_credit(self.bis_file, countries=("JP", "CN"))
        return self._bis

    def _read(self, which: str, extra: tuple[str, ...] = ()) -> tuple[pd.DataFrame, Path]:
        name, needed = INPUT_FILES[which]
        path = self.root / name
        if which not in self._cache:
            self._cache[which] = read_table(path, "data file")
        df = self._cache[which]
        lacking = [c for c in (*needed, *extra) if c not in df.columns]
        if lacking:
            raise DataError(f"{path}: missing column(s) {', '.join(lacking)}; expected {', '.join((*needed, *extra))}")
        for c in (*needed, *extra):  # year, quarter and the values are numbers; the rest stays text
            if c in ("year", "quarter", "value", *extra) and (which, c) not in self._numeric:
                whole = c in ("year", "quarter")
                what = {"year": "a year such as 1998", "quarter": "a quarter 1 to 4"}.get(c, "a finite number")
                df[c] = to_numbers(df[c], path, c, integer=whole, required=whole, what=what)
                self._numeric.add((which, c))
        return df, path

    @staticmethod
    def _series(df: pd.DataFrame, path: Path, what: str, value: str = "value") -> pd.Series:
        df = df.dropna(subset=[value])
        if df.empty:
            raise DataError(f"{path}: no values for {what}; expected at least one year")
        check_increasing(df["year"], path, "year", what)
        return pd.Series(
            df[value].to_numpy(float), index=pd.Index(df["year"].to_numpy(), name="year"), name=f"{what} ({path.name})"
        )

    def _pick(self, which: str, what: str, **eq) -> pd.Series:
        df, path = self._read(which)
        sel = np.ones(len(df), dtype=bool)
        for col, v in eq.items():
            sel &= df[col].to_numpy(dtype=object) == v
        return self._series(df[sel], path, what)

    def bis_q4(self, key: str) -> pd.Series:
        """BIS total credit, Q4 observation of each year (the year-end convention of the annual files)."""
        s = bis_series(self.bis, key)
        s = s[s.index.quarter == 4]
        if s.empty:
            raise DataError(f"{self.bis_file}: no Q4 observations for series {key}; expected a quarterly series")
        return pd.Series(s.to_numpy(), index=pd.Index(s.index.year, name="year"), name=key)

    def bis_property_q4(self, key: str) -> pd.Series:
        return self._pick("bis_property", key, bis_series_key=key, quarter=4)

    def bis_cpi(self, key: str) -> pd.Series:
        return self._pick("bis_cpi", key, bis_series_key=key)

    def weo(self, country: str, variable: str) -> pd.Series:
        return self._pick("weo", f"WEO {country} {variable}", country=country, variable=variable)

    def pfmh(self, country: str, variable: str) -> pd.Series:
        return self._pick("pfmh", f"PFMH {country} {variable}", country=country, variable=variable)

    def wdi(self, country: str, code: str) -> pd.Series:
        return self._pick("wdi", f"WDI {country} {code}", country=country, series_code=code)

    def npl(self, country: str) -> pd.Series:
        return self._pick("npl", f"NPL {country} FB.AST.NPER.ZS", country=country, series_code="FB.AST.NPER.ZS")

    def gmd(self, country: str, series: str) -> pd.Series:
        return self._pick("gmd", f"GMD {country} {series}", country=country, series=series)

    def imf_mfs(self, code: str) -> pd.Series:
        return self._pick("mfs", code, imf_series_code=code)

    def jrei(self, series: str) -> pd.Series:
        return self._pick("jrei", f"JREI {series}", series=series)

    def panel(self, country: str, column: str) -> pd.Series:
        df, path = self._read(f"panel_{country}", (column,))
        return self._series(df, path, f"column {column}", column)


# =========================================================================== builders
DECIMALS = 4
SPLICE_YEAR_JPN = 1997  # first year of BIS general government credit (nominal value) for Japan
ISO2 = {"japan": "JP", "china": "CN"}
#: Default spans: annual years; the quarterly files cover the same years (see :func:`quarterly_frame`).
DEFAULT_YEARS = {"japan": range(1980, 2024), "china": range(1995, 2024)}
ANNUAL_COLUMNS = [
    "year",
    "hh_debt_gdp",
    "firm_debt_gdp",
    "gov_debt_gdp_bis",
    "gov_debt_gdp_imf",
    "gov_debt_gdp_weo",
    "gov_debt_gdp",
    "total_debt_gdp",
    "gdp_growth_real",
    "gdp_nominal_growth",
    "inflation",
    "policy_rate",
    "call_rate",
    "land_price",
    "land_price_nation",
    "npl_ratio",
    "gov_net_lending",
    "current_account",
    "output_gap",
]
#: Quarterly column -> BIS key without country: Q:<cty>:<borrowers>:<lenders>:<valuation>:<unit>:<adjust>.
QUARTERLY_SERIES = {
    "hh_debt_gdp": "H:A:M:770:A",
    "firm_debt_gdp": "N:A:M:770:A",
    "private_debt_gdp": "P:A:M:770:A",
    "gov_debt_gdp_bis": "G:A:N:770:A",
    "gov_debt_gdp_bis_mv": "G:A:M:770:A",
    "total_debt_gdp_bis": "C:A:M:770:A",
    "hh_debt_xdc_bn": "H:A:M:XDC:A",
    "firm_debt_xdc_bn": "N:A:M:XDC:A",
    "private_debt_xdc_bn": "P:A:M:XDC:A",
    "gov_debt_xdc_bn": "G:A:N:XDC:A",
    "gov_debt_xdc_bn_mv": "G:A:M:XDC:A",
    "total_debt_xdc_bn": "C:A:M:XDC:A",
}
_HEADLINE = ["hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp_bis", "total_debt_gdp_bis"]
_WEO_REAL_GROWTH = "gross_domestic_product_gdp_constant_prices_percent_change"
_WEO_NET_LENDING = "net_lending_net_borrowing_general_government_percent_of_gdp"
_WEO_OUTPUT_GAP = "output_gap_percent_of_potential_gdp"


def _first_available(*parts: pd.Series) -> pd.Series:
    out = parts[0].copy()
    for p in parts[1:]:
        out = out.combine_first(p)
    return out.sort_index()


def _before_first(primary: pd.Series, older: pd.Series) -> pd.Series:
    return pd.concat([older[older.index < primary.index.min()], primary]).sort_index()


def _ratio_splice(recent: pd.Series, older: pd.Series, year: int) -> tuple[pd.Series, float]:
    for s in (recent, older):
        if year not in s.index or not math.isfinite(float(s.loc[year])) or float(s.loc[year]) == 0:
            raise DataError(
                f"{s.name}: no non-zero value for {year}, the year {recent.name} is spliced onto "
                f"{older.name}; expected a value for {year} in both"
            )
    ratio = float(recent.loc[year]) / float(older.loc[year])
    return pd.concat([older[older.index < year] * ratio, recent[recent.index >= year]]).sort_index(), ratio


def _annual_columns(src: SharedData, country: str) -> tuple[dict[str, pd.Series], dict]:
    c3, c2 = {"japan": ("JPN", "JP"), "china": ("CHN", "CN")}[country]
    gov_bis = src.bis_q4(f"Q:{c2}:G:A:N:770:A")
    gov_imf = src.pfmh(c3, "d")
    cols = {
        "hh_debt_gdp": src.bis_q4(f"Q:{c2}:H:A:M:770:A"),
        "firm_debt_gdp": src.bis_q4(f"Q:{c2}:N:A:M:770:A"),
        "gov_debt_gdp_bis": gov_bis,
        "gov_debt_gdp_imf": gov_imf,
        "gov_debt_gdp_weo": src.weo(c3, "govcgdp"),
        "gdp_growth_real": _before_first(src.weo(c3, _WEO_REAL_GROWTH), src.pfmh(c3, "rgc")),
        "gdp_nominal_growth": src.panel(c3, "nominal_gdp_growth_pct_wdi_derived"),
        "inflation": _first_available(src.wdi(c3, "FP.CPI.TOTL.ZG"), src.bis_cpi(f"A:{c2}:771")),
        "npl_ratio": src.npl(c3),
        "gov_net_lending": src.weo(c3, _WEO_NET_LENDING),
    }
    if country == "japan":
        cols["gov_debt_gdp"], ratio = _ratio_splice(gov_bis.round(DECIMALS), gov_imf, SPLICE_YEAR_JPN)
        info: dict = {"gov_splice_ratio_JPN_1997": ratio}
        cols.update(
            {
                "policy_rate": src.gmd(c3, "gmd_cbrate_combined"),
                "call_rate": src.imf_mfs("JPN.MMRT_RT_PT_A_PT.A"),
                "land_price": src.jrei("jrei_six"),
                "land_price_nation": src.jrei("jrei_nation"),
                "current_account": src.weo(c3, "bcagdp"),
                "output_gap": src.weo(c3, _WEO_OUTPUT_GAP),
            }
        )
    else:
        first_bis = int(gov_bis.index.min())
        info = {"gov_bis_first_year_CHN": first_bis}
        if first_bis > 1995:  # not the case in the shared data (BIS starts 1995-Q4): kept for other vintages
            cols["gov_debt_gdp"], info["gov_splice_ratio_CHN"] = _ratio_splice(
                gov_bis.round(DECIMALS), gov_imf, first_bis
            )
        else:
            cols["gov_debt_gdp"] = gov_bis.round(DECIMALS)
        cols.update(
            {
                # BIS policy rate via GMD: PBoC one-year benchmark lending rate, 1-year LPR from 2019
                "policy_rate": src.gmd(c3, "source_BIS"),
                "land_price": src.bis_property_q4("Q:CN:N:628"),  # residential property prices, not land
                "current_account": src.wdi(c3, "BN.CAB.XOKA.GD.ZS"),
                # no China call rate, nationwide land price or output gap in the shared data: left empty
            }
        )
    return cols, info


def annual_frame(src: SharedData, country: str, years: Iterable[int]) -> tuple[pd.DataFrame, dict]:
    """The annual compact frame of ``country`` ("japan" or "china"), indexed by ``year``.

    Columns :data:`ANNUAL_COLUMNS` (after ``year``), derivations exactly as in
    ``models/bsr/data/make_history.py``: BIS ratios are the Q4 value of the year; Japan's
    ``gov_debt_gdp`` is BIS from 1997 and IMF PFMH ``d`` times BIS(1997)/PFMH(1997) before;
    ``total_debt_gdp`` is the sum of the three rounded debt columns where all three exist.
    Returns the frame and a dict with the splice ratio used.
    """
    if country not in ISO2:
        raise DataError(f"country {country!r}: expected one of {', '.join(ISO2)}")
    cols, info = _annual_columns(src, country)
    idx = pd.Index(list(years), name="year")
    df = pd.DataFrame(index=idx)
    for name in ANNUAL_COLUMNS[1:]:
        s = cols.get(name)
        df[name] = s.round(DECIMALS).reindex(idx) if s is not None else float("nan")
    parts = df[["hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp"]]
    df["total_debt_gdp"] = parts.sum(axis=1, min_count=3).where(parts.notna().all(axis=1)).round(DECIMALS)
    return df, info


def quarterly_frame(tidy: pd.DataFrame, country: str, years: Iterable[int]) -> pd.DataFrame:
    """The quarterly BIS credit frame of ``country`` (ISO2 such as "JP"), indexed by ``period``.

    Columns ``year``, ``quarter`` and :data:`QUARTERLY_SERIES` (source values, empty where
    absent). Rows run from Q1 of the first year to Q4 of the last, less any leading quarters
    in which none of household, corporate, government or total credit/GDP exists (so China
    starts in 1995-Q4, when BIS government and total credit begin).

    Examples
    --------
    >>> tidy = pd.DataFrame({"period": pd.period_range("1990Q1", periods=2, freq="Q"), "country": "JP",
    ...                      "borrowers": "H", "lenders": "A", "valuation": "M", "unit": "770",
    ...                      "adjust": "A", "value": [68.3, 68.4]})
    >>> quarterly_frame(tidy, "JP", [1990])[["year", "quarter", "hh_debt_gdp"]]  # doctest: +NORMALIZE_WHITESPACE
            year  quarter  hh_debt_gdp
    period
    1990Q1  1990        1         68.3
    1990Q2  1990        2         68.4
    1990Q3  1990        3          NaN
    1990Q4  1990        4          NaN
    """
    years = list(years)
    idx = pd.period_range(f"{min(years)}Q1", f"{max(years)}Q4", freq="Q", name="period")
    df = pd.DataFrame({"year": idx.year, "quarter": idx.quarter}, index=idx)
    for col, spec in QUARTERLY_SERIES.items():
        df[col] = bis_series(tidy, f"Q:{country}:{spec}").reindex(idx)
    has = df[_HEADLINE].notna().any(axis=1).to_numpy()
    return df.iloc[has.argmax() if has.any() else len(df) :]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    v = round(float(v), DECIMALS)
    return repr(v if v != 0 else 0.0)  # no "-0.0"


def to_csv_text(df: pd.DataFrame) -> str:
    """CSV text of a compact frame: index first (year, or period as ``1990-Q1``), LF line ends.

    Floats are rounded to 4 decimals and written as Python's shortest ``repr`` (``6.0``,
    ``68.4``); ``year`` and ``quarter`` columns as integers; missing values as empty cells.

    Examples
    --------
    >>> print(to_csv_text(pd.DataFrame({"x": [1.0, float("nan"), -0.00001]},
    ...                                pd.Index([2000, 2001, 2002], name="year"))), end="")
    year,x
    2000,1.0
    2001,
    2002,0.0
    """
    ints = {"year", "quarter"}
    lines = [",".join([str(df.index.name)] + list(df.columns))]
    for key, row in zip(df.index, df.itertuples(index=False)):
        first = f"{key.year}-Q{key.quarter}" if isinstance(key, pd.Period) else str(int(key))
        cells = [str(int(v)) if c in ints else _fmt(v) for c, v in zip(df.columns, row)]
        lines.append(",".join([first] + cells))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build` did. ``differ``: files whose content is (check) or was (write) not as built."""

    out_dir: Path
    bis_file: Path
    files: tuple[str, ...]
    differ: tuple[str, ...]
    written: tuple[str, ...]
    check: bool
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless a check found a file that differs."""
        return not (self.check and self.differ)


def build(
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    check: bool = False,
    years: Mapping[str, Iterable[int]] | None = None,
) -> BuildReport:
    """Rebuild (or, with ``check``, compare) the four compact CSVs from a source folder.

    Parameters
    ----------
    src_dir : str or path-like
        Folder with the inputs of :class:`SharedData`: the BIS total credit file (bulk
        ``WS_TC_csv_col.csv``/``WS_TC_csv_flat.csv`` or the shared long extract) and the
        shared long files listed in :data:`INPUT_FILES`.
    out_dir : str or path-like
        Where ``japan_annual.csv``, ``china_annual.csv``, ``japan_quarterly.csv`` and
        ``china_quarterly.csv`` go. Each file is written to a temporary name and renamed.
    check : bool
        Write nothing; report in ``differ`` the files that are missing or not byte-identical.
    years : mapping, optional
        ``{"japan": range(...), "china": range(...)}``, overriding :data:`DEFAULT_YEARS`.

    Returns
    -------
    BuildReport
        Nothing is printed; ``report.ok`` is False when a check found differences.
    """
    spans = dict(DEFAULT_YEARS)
    for country, ys in (years or {}).items():
        ys = list(ys)
        if country not in ISO2 or not ys or ys != list(range(ys[0], ys[-1] + 1)):
            raise DataError(f"years[{country!r}]: expected a consecutive range of years for one of {', '.join(ISO2)}")
        spans[country] = range(ys[0], ys[-1] + 1)
    src = SharedData(src_dir)
    texts, info = {}, {}
    for country, ys in spans.items():
        annual, extra = annual_frame(src, country, ys)
        info.update(extra)
        texts[f"{country}_annual.csv"] = to_csv_text(annual).encode("utf-8")
        texts[f"{country}_quarterly.csv"] = to_csv_text(quarterly_frame(src.bis, ISO2[country], ys)).encode("utf-8")
    out = Path(out_dir)
    differ = tuple(n for n, b in texts.items() if not ((out / n).is_file() and (out / n).read_bytes() == b))
    written: tuple[str, ...] = ()
    if not check:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in texts.items():
            write_atomic_file(out / name, data)
        written = tuple(texts)
    return BuildReport(out, src.bis_file, tuple(texts), differ, written, check, info)
