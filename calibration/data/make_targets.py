"""Build japan_targets.csv and china_targets.csv: the annual calibration files plus the economy's series.

    python calibration/data/make_targets.py           # rewrite the two files
    python calibration/data/make_targets.py --check   # write nothing; exit 1 if a file would change

Inputs, all inside this folder (nothing outside the repository is read):

* ``japan_annual.csv`` / ``china_annual.csv`` (built by ``sdmodel data build``): copied cell for cell,
  as text, into the first columns of the targets files, so no existing value changes;
* ``sources/*.csv``: byte-identical copies of files of the shared data folder (SHA-256 in SOURCES.md).

Every new column, its source and its derivation are in SOURCES.md, section "The targets files".
Rows are the annual files' rows (Japan 1980-2023, China 1995-2023); source years outside them are
left out of the targets files (they remain in ``sources/``).  Nothing is interpolated or filled.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SRC = HERE / "sources"


def fmt(v) -> str:
    """A derived value as text: rounded to 4 decimals, shortest form; empty where missing."""
    return "" if pd.isna(v) else repr(round(float(v), 4))


def copied(v) -> str:
    """A copied value as text, as the source prints it (pandas reads it back to the same float)."""
    return "" if pd.isna(v) else repr(float(v))


def _long(name: str) -> pd.DataFrame:
    return pd.read_csv(SRC / name)


def japan_columns(years: pd.Index) -> dict[str, pd.Series]:
    cols: dict[str, pd.Series] = {}

    # --- BoJ flow of funds: financial surplus (+) / deficit (-) by sector, fiscal year, % of FY nominal GDP
    boj = _long("japan_sector_financial_balance_fy_boj.csv")
    pct = boj[boj["variable"] == "financial_surplus_deficit_fy_pct_fy_gdp"].pivot(
        index="year", columns="sector", values="value"
    )
    for col, sector in [
        ("fof_private_nfc_fy", "private_nonfinancial_corporations"),
        ("fof_nfc_fy", "nonfinancial_corporations"),
        ("fof_households_fy", "households_incl_npish"),
        ("fof_households_excl_npish_fy", "households"),
        ("fof_government_fy", "general_government"),
        ("fof_financial_fy", "financial_institutions"),
        ("fof_rest_of_world_fy", "rest_of_world"),
    ]:
        cols[col] = pct[sector].reindex(years).map(copied)
    gdp_fy = boj[boj["variable"] == "nominal_gdp_fy"].set_index("year")["value"]  # billion yen
    cols["gdp_nominal_fy_bn"] = gdp_fy.reindex(years).map(copied)

    # --- AMECO: households' net saving rate and net lending, calendar years 1980-2020
    am = _long("japan_sector_net_lending_household_saving_annual_ameco.csv")
    am = am.set_index(["sector", "variable"])
    for col, key in [
        ("hh_saving_rate_net", ("households_incl_npish", "net_saving_rate")),
        ("hh_saving_rate_gross", ("households_incl_npish", "gross_saving_rate")),
        ("nl_households_ameco", ("households_incl_npish", "net_lending_pct_gdp")),
        ("nl_corporations_ameco", ("corporations_financial_and_nonfinancial", "net_lending_pct_gdp")),
        ("nl_government_ameco_residual", ("general_government_residual", "net_lending_residual_pct_gdp")),
        ("nl_total_economy_ameco", ("total_economy", "net_lending_total_economy_pct_gdp")),
    ]:
        cols[col] = am.loc[key].set_index("year")["value"].reindex(years).map(copied)

    # --- FSA / JEI: banks' losses on the disposal of bad loans (all banks), fiscal-year flows, and the
    # bad-loan stock at the end of March; in billion yen, and over fiscal-year nominal GDP (BoJ file's ESRI GDP)
    fsa = _long("japan_bank_npl_disposal_fsa.csv")
    fsa = fsa[fsa["sector"] == "all_banks"]
    scale = fsa["unit"].map({"billion_JPY": 1.0, "trillion_JPY": 1000.0})
    fsa = fsa.assign(bn=fsa["value"] * scale)
    fy = fsa[fsa["period"].str.fullmatch(r"FY\d{4}")]
    loss = fy[fy["variable"] == "loss_on_disposal_of_npl"].set_index("year")["bn"]
    wo = fy[fy["variable"] == "direct_writeoffs_total"].set_index("year")["bn"]
    march = fsa[fsa["period"].str.fullmatch(r"\d{4}-03")].drop_duplicates(["period", "variable"])
    rml = march[march["variable"] == "risk_management_loans_outstanding"].set_index("year")["bn"]
    fra = march[march["variable"] == "fra_disclosed_npl_outstanding"].set_index("year")["bn"]
    assert not set(rml.index) & set(fra.index)  # the two definitions never meet in a year
    stock = pd.concat([rml, fra]).sort_index()
    cols["npl_disposal_loss_fy_bn"] = loss.reindex(years).map(copied)
    cols["npl_writeoffs_fy_bn"] = wo.reindex(years).map(copied)
    cols["npl_disposal_loss_pct_fy_gdp"] = (100 * loss / gdp_fy).reindex(years).map(fmt)
    cols["npl_writeoffs_pct_fy_gdp"] = (100 * wo / gdp_fy).reindex(years).map(fmt)
    cols["npl_stock_end_march_bn"] = stock.reindex(years).map(copied)
    # the stock at the end of March of year y over the fiscal year that ends then, FY y-1
    cols["npl_stock_pct_fy_gdp"] = (100 * stock / gdp_fy.rename(lambda y: y + 1)).reindex(years).map(fmt)
    cols["npl_stock_source"] = (
        pd.Series(
            {**{y: "fsa_risk_management_loans" for y in rml.index}, **{y: "fsa_fra_disclosed" for y in fra.index}}
        )
        .reindex(years)
        .fillna("")
    )
    cols.update(weo_wdi_columns("JPN", "nominal_gdp_bn_jpy_wdi", "panel_key_annual_JPN.csv", 1979, years))
    return cols


def weo_wdi_columns(country: str, gdp_col: str, panel: str, base: int, years: pd.Index) -> dict[str, pd.Series]:
    """GDP deflator inflation (IMF WEO index) and nominal GDP in the model's units (WDI, base year = 100)."""
    weo = _long("imf_weo_JPN_CHN_USA.csv")
    defl = weo[(weo["country"] == country) & (weo["variable"] == "gross_domestic_product_gdp_price_deflator_index")]
    defl = defl.set_index("year")["value"].sort_index()
    infl = 100 * (defl / defl.rename(lambda y: y + 1) - 1)
    gdp = pd.read_csv(SRC / panel).set_index("year")[gdp_col]
    return {
        "gdp_deflator_weo": defl.reindex(years).map(copied),
        "deflator_inflation": infl.reindex(years).map(fmt),
        "gdp_nominal_wdi_bn": gdp.reindex(years).map(copied),
        "gdp_nominal_index": (100 * gdp / gdp[base]).reindex(years).map(fmt),
    }


def china_columns(years: pd.Index) -> dict[str, pd.Series]:
    cols = weo_wdi_columns("CHN", "nominal_gdp_bn_cny_wdi", "panel_key_annual_CHN.csv", 1999, years)
    gd = _long("china_government_debt_by_level_annual.csv")
    s = gd.pivot(index="year", columns="series", values="value")
    # MoF explicit local-government debt, 100 million yuan (2014-2016: general + special, derived in the source)
    local = s["local_gov_debt_outstanding_total"].combine_first(s["local_gov_debt_outstanding_total_derived_sum"])
    gdp = pd.read_csv(SRC / "panel_key_annual_CHN.csv").set_index("year")["nominal_gdp_bn_cny_wdi"]
    cols["local_gov_debt_explicit_yi"] = local.reindex(years).map(copied)
    cols["local_gov_debt_explicit_pct_gdp"] = (100 * (local / 10) / gdp).reindex(years).map(fmt)
    for col, series in [
        ("imf_central_gov_debt_gdp", "imf_central_government_debt_pct_gdp"),
        ("imf_local_gov_explicit_debt_gdp", "imf_local_government_explicit_debt_pct_gdp"),
        ("imf_lgfv_debt_gdp", "imf_lgfv_debt_pct_gdp"),
        ("imf_ggf_scf_debt_gdp", "imf_ggf_scf_debt_pct_gdp"),
        ("imf_gov_debt_weo_gdp", "imf_general_government_debt_weo_pct_gdp"),
        ("imf_augmented_debt_gdp", "imf_augmented_debt_pct_gdp"),
    ]:
        cols[col] = s[series].reindex(years).map(copied)
    return cols


def build_text(name: str) -> str:
    annual = pd.read_csv(HERE / f"{name}_annual.csv", dtype=str, keep_default_na=False)
    years = pd.Index(annual["year"].astype(int), name="year")
    new = japan_columns(years) if name == "japan" else china_columns(years)
    clash = set(new) & set(annual.columns)
    assert not clash, clash
    out = annual.copy()
    for col, values in new.items():
        out[col] = values.to_numpy()
    buf = io.StringIO()
    out.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = ap.parse_args(argv)
    differ = []
    for name in ("japan", "china"):
        path = HERE / f"{name}_targets.csv"
        text = build_text(name)
        if path.is_file() and path.read_text() == text:
            continue
        differ.append(path.name)
        if not args.check:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    for n in differ:
        print(f"{n}: {'differs' if args.check else 'written'}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
