"""Rebuild history_japan.csv and history_china.csv from the shared public data files.

Usage::

    python make_history.py SRC_DIR [--out OUT_DIR] [--check]

SRC_DIR is the folder holding the shared data files documented in its SOURCES.md
(the ``bis_*``, ``imf_*``, ``gmd_*``, ``japan_land_*``, ``worldbank_*`` and
``panel_key_annual_*`` CSVs). OUT_DIR defaults to the folder of this script.
With ``--check`` nothing is written: the CSVs that would be written are compared
byte for byte with those already in OUT_DIR and the exit status says whether they match.

Nothing is interpolated or filled: a year with no source value is an empty cell.
Every column and derivation is documented in SOURCES.md next to this script.
The model never reads SRC_DIR at run time; it reads only the CSVs written here.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

JPN_YEARS = range(1970, 2026)
CHN_YEARS = range(1995, 2026)
SPLICE_YEAR_JPN = 1997  # first year of BIS general government credit (nominal value) for Japan
DECIMALS = 4

COLUMNS = [
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

WEO_REAL_GROWTH = "gross_domestic_product_gdp_constant_prices_percent_change"
WEO_NET_LENDING = "net_lending_net_borrowing_general_government_percent_of_gdp"
WEO_OUTPUT_GAP = "output_gap_percent_of_potential_gdp"


# --------------------------------------------------------------------------- reading
class Source:
    """The shared data folder, with one accessor per long file; every accessor returns a year-indexed Series."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._cache: dict[str, pd.DataFrame] = {}

    def _read(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            path = self.root / name
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: is {self.root} the shared data folder?")
            self._cache[name] = pd.read_csv(path)
        return self._cache[name]

    @staticmethod
    def _series(df: pd.DataFrame, value: str = "value", what: str = "") -> pd.Series:
        df = df.dropna(subset=[value])
        if df.empty:
            raise ValueError(f"no rows for {what}")
        if df["year"].duplicated().any():
            raise ValueError(f"duplicate years for {what}")
        return df.set_index("year")[value].astype(float).sort_index()

    def bis_q4(self, key: str) -> pd.Series:
        """BIS total credit, % of GDP, Q4 value (file 2)."""
        df = self._read("bis_total_credit_annual_JPN_CHN_USA.csv")
        return self._series(df[df["bis_series_key"] == key], "q4_value", key)

    def bis_property_q4(self, key: str) -> pd.Series:
        """BIS residential property price, Q4 observation (file 4)."""
        df = self._read("bis_residential_property_prices_quarterly_JPN_CHN_USA.csv")
        return self._series(df[(df["bis_series_key"] == key) & (df["quarter"] == 4)], what=key)

    def bis_cpi(self, key: str) -> pd.Series:
        df = self._read("bis_long_cpi_annual_JPN_CHN_USA.csv")
        return self._series(df[df["bis_series_key"] == key], what=key)

    def weo(self, country: str, variable: str) -> pd.Series:
        df = self._read("imf_weo_JPN_CHN_USA.csv")
        return self._series(df[(df["country"] == country) & (df["variable"] == variable)], what=f"WEO {country} {variable}")

    def pfmh(self, country: str, variable: str) -> pd.Series:
        df = self._read("imf_pfmh_public_finances_JPN_CHN_USA.csv")
        return self._series(df[(df["country"] == country) & (df["variable"] == variable)], what=f"PFMH {country} {variable}")

    def wdi(self, country: str, code: str) -> pd.Series:
        df = self._read("worldbank_wdi_gfdd_JPN_CHN_USA.csv")
        return self._series(df[(df["country"] == country) & (df["series_code"] == code)], what=f"WDI {country} {code}")

    def npl(self, country: str) -> pd.Series:
        df = self._read("worldbank_bank_npl_ratio_JPN_CHN.csv")
        sel = (df["country"] == country) & (df["series_code"] == "FB.AST.NPER.ZS")
        return self._series(df[sel], what=f"NPL {country}")

    def gmd(self, country: str, series: str) -> pd.Series:
        df = self._read("gmd_central_bank_policy_rate_JPN_CHN.csv")
        return self._series(df[(df["country"] == country) & (df["series"] == series)], what=f"GMD {country} {series}")

    def imf_mfs(self, code: str) -> pd.Series:
        df = self._read("imf_anea_gdp_and_mfs_interest_rates_JPN_CHN_USA.csv")
        return self._series(df[df["imf_series_code"] == code], what=code)

    def jrei(self, series: str) -> pd.Series:
        df = self._read("japan_land_price_index_JREI_annual.csv")
        return self._series(df[df["series"] == series], what=f"JREI {series}")

    def panel(self, country: str, column: str) -> pd.Series:
        df = self._read(f"panel_key_annual_{country}.csv")
        return self._series(df, column, what=f"panel {country} {column}")


# --------------------------------------------------------------------------- helpers
def _r(x: pd.Series) -> pd.Series:
    return x.round(DECIMALS)


def first_available(*parts: pd.Series) -> pd.Series:
    """Take each year from the first series that has it (used only where SOURCES.md says so)."""
    out = parts[0].copy()
    for p in parts[1:]:
        out = out.combine_first(p)
    return out.sort_index()


def before_first(primary: pd.Series, older: pd.Series) -> pd.Series:
    """``primary`` where it exists; ``older`` only for years before the first year of ``primary``."""
    return pd.concat([older[older.index < primary.index.min()], primary]).sort_index()


def ratio_splice(recent: pd.Series, older: pd.Series, year: int) -> tuple[pd.Series, float]:
    """``recent`` from ``year`` on; before it ``older * recent[year] / older[year]``."""
    ratio = float(recent.loc[year]) / float(older.loc[year])
    spliced = pd.concat([older[older.index < year] * ratio, recent[recent.index >= year]])
    return spliced.sort_index(), ratio


def frame(years: range, cols: dict[str, pd.Series]) -> pd.DataFrame:
    idx = pd.Index(list(years), name="year")
    df = pd.DataFrame(index=idx)
    for name in COLUMNS[1:]:
        s = cols.get(name)
        df[name] = _r(s).reindex(idx) if s is not None else float("nan")
    return df


def total_debt(df: pd.DataFrame) -> pd.Series:
    """Sum of the three (already rounded) columns as written; empty unless all three exist."""
    parts = df[["hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp"]]
    return parts.sum(axis=1, min_count=3).where(parts.notna().all(axis=1)).round(DECIMALS)


def fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    v = round(float(v), DECIMALS)
    if v == 0:
        v = 0.0  # no "-0.0"
    return repr(v)


def to_csv_text(df: pd.DataFrame) -> str:
    lines = [",".join(COLUMNS)]
    for year, row in df.iterrows():
        lines.append(",".join([str(int(year))] + [fmt(row[c]) for c in COLUMNS[1:]]))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- countries
def build_japan(src: Source) -> tuple[pd.DataFrame, dict]:
    gov_bis = src.bis_q4("Q:JP:G:A:N:770:A")
    gov_imf = src.pfmh("JPN", "d")
    gov, ratio = ratio_splice(_r(gov_bis), gov_imf, SPLICE_YEAR_JPN)
    real_growth = before_first(src.weo("JPN", WEO_REAL_GROWTH), src.pfmh("JPN", "rgc"))
    inflation = first_available(src.wdi("JPN", "FP.CPI.TOTL.ZG"), src.bis_cpi("A:JP:771"))
    cols = {
        "hh_debt_gdp": src.bis_q4("Q:JP:H:A:M:770:A"),
        "firm_debt_gdp": src.bis_q4("Q:JP:N:A:M:770:A"),
        "gov_debt_gdp_bis": gov_bis,
        "gov_debt_gdp_imf": gov_imf,
        "gov_debt_gdp_weo": src.weo("JPN", "govcgdp"),
        "gov_debt_gdp": gov,
        "gdp_growth_real": real_growth,
        "gdp_nominal_growth": src.panel("JPN", "nominal_gdp_growth_pct_wdi_derived"),
        "inflation": inflation,
        "policy_rate": src.gmd("JPN", "gmd_cbrate_combined"),
        "call_rate": src.imf_mfs("JPN.MMRT_RT_PT_A_PT.A"),
        "land_price": src.jrei("jrei_six"),
        "land_price_nation": src.jrei("jrei_nation"),
        "npl_ratio": src.npl("JPN"),
        "gov_net_lending": src.weo("JPN", WEO_NET_LENDING),
        "current_account": src.weo("JPN", "bcagdp"),
        "output_gap": src.weo("JPN", WEO_OUTPUT_GAP),
    }
    df = frame(JPN_YEARS, cols)
    df["total_debt_gdp"] = total_debt(df)
    return df, {"gov_splice_ratio_JPN_1997": ratio}


def build_china(src: Source) -> tuple[pd.DataFrame, dict]:
    gov_bis = src.bis_q4("Q:CN:G:A:N:770:A")
    gov_imf = src.pfmh("CHN", "d")
    first_bis = int(gov_bis.index.min())
    info: dict = {"gov_bis_first_year_CHN": first_bis}
    if first_bis > CHN_YEARS.start:  # not the case in the shared data (BIS starts 1995-Q4): kept for other vintages
        gov, ratio = ratio_splice(_r(gov_bis), gov_imf, first_bis)
        info["gov_splice_ratio_CHN"] = ratio
    else:
        gov = _r(gov_bis)
    cols = {
        "hh_debt_gdp": src.bis_q4("Q:CN:H:A:M:770:A"),
        "firm_debt_gdp": src.bis_q4("Q:CN:N:A:M:770:A"),
        "gov_debt_gdp_bis": gov_bis,
        "gov_debt_gdp_imf": gov_imf,
        "gov_debt_gdp_weo": src.weo("CHN", "govcgdp"),
        "gov_debt_gdp": gov,
        "gdp_growth_real": before_first(src.weo("CHN", WEO_REAL_GROWTH), src.pfmh("CHN", "rgc")),
        "gdp_nominal_growth": src.panel("CHN", "nominal_gdp_growth_pct_wdi_derived"),
        "inflation": first_available(src.wdi("CHN", "FP.CPI.TOTL.ZG"), src.bis_cpi("A:CN:771")),
        # BIS policy rate via GMD: PBoC one-year benchmark lending rate, 1-year LPR from 2019
        "policy_rate": src.gmd("CHN", "source_BIS"),
        "land_price": src.bis_property_q4("Q:CN:N:628"),
        "npl_ratio": src.npl("CHN"),
        "gov_net_lending": src.weo("CHN", WEO_NET_LENDING),
        "current_account": src.wdi("CHN", "BN.CAB.XOKA.GD.ZS"),
        # no China call rate, nationwide land price or output gap in the shared data: left empty
    }
    df = frame(CHN_YEARS, cols)
    df["total_debt_gdp"] = total_debt(df)
    return df, info


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="folder with the shared data CSVs (see its SOURCES.md)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where to write the CSVs")
    ap.add_argument("--check", action="store_true", help="compare with the CSVs in --out instead of writing")
    args = ap.parse_args(argv)

    src = Source(args.src)
    jp, jp_info = build_japan(src)
    cn, cn_info = build_china(src)
    texts = {"history_japan.csv": to_csv_text(jp), "history_china.csv": to_csv_text(cn)}
    for k, v in {**jp_info, **cn_info}.items():
        print(f"{k} = {v!r}")

    if args.check:
        ok = True
        for name, text in texts.items():
            path = args.out / name
            same = path.is_file() and path.read_bytes() == text.encode("utf-8")
            print(f"{name}: {'identical' if same else 'DIFFERS'}")
            ok &= same
        return 0 if ok else 1

    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (args.out / name).write_bytes(text.encode("utf-8"))
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
