"""Accounting: the most-tested module. Every reference model balances; every single sign flip is caught
and named; structural mistakes give errors that say where."""

import dataclasses
from pathlib import Path

import pytest
import sympy as sp

from sdmodel import AccountingError, SpecError, check_accounting, load_model, model_from_dict
from sdmodel.model.accounting import derive
from sdmodel.model.spec import _read_yaml

from .conftest import NONLINEAR, REFERENCE_MODELS

ALL_MODELS = REFERENCE_MODELS
#: G&L INSOUT's 63 entries take seconds each to diagnose: the default suite flips every thirteenth (both
#: matrices, five entries), ``-m slow`` the other entries (test_flipping_every_insout_entry)
SAMPLED = {"insout": 13}


def _flipped(model, kind, row, col):
    mat = getattr(model, kind)
    return dataclasses.replace(model, **{kind: mat.with_entry(row, col, -mat.rows[row][col])})


def _entries(name):
    m = load_model(name)
    return [(name, kind, r, c) for kind in ("transactions", "balance_sheet") if getattr(m, kind) is not None
            for r, c, _ in getattr(m, kind).entries()][::SAMPLED.get(name, 1)]


def _insout_rest():
    m = load_model("insout")
    every = [("insout", kind, r, c) for kind in ("transactions", "balance_sheet") if getattr(m, kind) is not None
             for r, c, _ in getattr(m, kind).entries()]
    return [e for e in every if e not in every[::SAMPLED["insout"]]]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_reference_models_balance_and_are_proven(name):
    rep = check_accounting(load_model(name))
    assert rep.ok
    # every row and column is proven symbolically (none left to numeric monitoring) in the G&L models
    assert {c.status for c in rep.checks} == {"proven"}, [c.describe() for c in rep.checks if c.status != "proven"]


def test_sim_dynamics_are_derived_from_columns():
    rep = check_accounting(load_model("sim"))
    assert rep.dynamics["Hh"] == ("column 'households'", "-C - T + W")
    assert rep.dynamics["Hs"] == ("column 'government'", "G - T")


def test_redundant_row_is_proven_not_assumed():
    rep = check_accounting(load_model("pc"))
    money = [c for c in rep.checks if c.matrix == "transactions" and c.name == "Change in money"][0]
    assert money.status == "proven"
    bs = [c for c in rep.checks if c.matrix == "balance_sheet" and c.name == "Money"][0]
    assert bs.status == "proven" and "conserved" in bs.note


ENTRIES = [e for name in ALL_MODELS for e in _entries(name)]


@pytest.mark.parametrize("name,kind,row,col", ENTRIES, ids=[f"{n}:{k}:{r}:{c}" for n, k, r, c in ENTRIES])
def test_flipping_any_entry_fails_naming_row_and_column(name, kind, row, col):
    model = _flipped(load_model(name), kind, row, col)
    rep = check_accounting(model, throw=False, symbolic=name.startswith("sim"))
    assert not rep.ok
    # the diagnosis names the flipped entry: its matrix, row and column
    label = "balance sheet" if kind == "balance_sheet" else "transactions"
    assert rep.diagnosis, rep.error_message()
    assert f"{label} row {row!r}, column {col!r}" in rep.diagnosis[0]
    with pytest.raises(AccountingError, match="sign-flipped"):
        rep.raise_if_failed()


@pytest.mark.slow
@pytest.mark.parametrize("name,kind,row,col", _insout_rest(), ids=lambda e: str(e))
def test_flipping_every_insout_entry(name, kind, row, col):
    """The INSOUT entries the default suite does not flip (about four minutes)."""
    test_flipping_any_entry_fails_naming_row_and_column(name, kind, row, col)


def test_unambiguous_flip_names_exactly_one_entry():
    rep = check_accounting(_flipped(load_model("sim"), "transactions", "Consumption", "households"), throw=False)
    assert rep.diagnosis == ("transactions row 'Consumption', column 'households' (entry C, try -C) looks "
                             "sign-flipped: flipping it balances every row and column",)
    failed = {(c.matrix, c.name) for c in rep.failures}
    assert ("transactions", "Consumption") in failed
    row = [c for c in rep.failures if c.name == "Consumption"][0]
    assert row.residual == "2*C"


def test_failure_reports_every_imbalance_with_residuals():
    rep = check_accounting(_flipped(load_model("sim"), "transactions", "Wages", "firms"), throw=False)
    msgs = [c.describe() for c in rep.failures]
    assert "transactions row 'Wages': failed, sums to 2*W, expected 0" in msgs
    assert any(m.startswith("transactions column 'firms': failed") for m in msgs)


def _sim_dict(**changes):
    d = _read_yaml(Path(load_model("sim").source).read_text(), "sim")
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for k, v in changes.items():
        d[k] = v
    return d


def test_forgotten_flow_in_equation_is_reported_in_model_names():
    d = _sim_dict(equations={"Y": "C + G", "W": "Y", "T": "theta * W", "YD": "W", "C": "alpha1 * YD + alpha2 * Hh"})
    # YD omits taxes but the matrix still has them: households' column then disagrees with YD... only via rows
    rep = check_accounting(model_from_dict(d), throw=False)
    assert rep.ok  # the matrix determines d(Hh); YD is just a behavioural variable here


def test_missing_entry_in_a_row_is_caught():
    d = _sim_dict(transactions={
        "Consumption": {"households": "-C", "firms": "+C"},
        "Government spending": {"firms": "+G"},           # government column lost -G
        "Wages": {"households": "+W", "firms": "-W"},
        "Taxes": {"households": "-T", "government": "+T"},
        "Change in money": {"households": "-d(Hh)", "government": "+d(Hs)"},
    })
    rep = check_accounting(model_from_dict(d), throw=False)
    assert not rep.ok
    row = [c for c in rep.failures if c.name == "Government spending"][0]
    assert row.residual == "G"


def test_two_undetermined_stock_changes_in_one_column():
    d = _sim_dict(stocks={"Hh": 0, "Hs": 0, "Bh": 0})
    d["transactions"] = dict(d["transactions"])
    d["transactions"]["Change in bills"] = {"households": "-d(Bh)"}
    with pytest.raises(AccountingError, match=r"column 'households' leaves d\(Hh\), d\(Bh\) undetermined"):
        check_accounting(model_from_dict(d))


def test_stock_without_dynamics():
    d = _sim_dict(stocks={"Hh": 0, "Hs": 0, "K": 1})
    with pytest.raises(AccountingError, match=r"stock 'K' has no dynamics"):
        check_accounting(model_from_dict(d))


def test_stock_with_explicit_change_equation_is_not_derived_twice():
    d = _sim_dict(stocks={"Hh": 0, "Hs": 0, "K": 1}, parameters={"alpha1": 0.6, "alpha2": 0.4, "theta": 0.2,
                                                                    "G": 20, "delta": 0.1})
    d["equations"] = dict(d["equations"])
    d["equations"]["d(K)"] = "-delta * K"
    rep = check_accounting(model_from_dict(d))
    assert rep.dynamics["K"] == ("equation d(K)", "-K*delta")


def test_asset_liability_correspondence_names_row_and_column():
    d = _sim_dict(balance_sheet={"Money": {"households": "+Hh", "government": "-Hs"}},
                  transactions={
                      "Consumption": {"households": "-C", "firms": "+C"},
                      "Government spending": {"firms": "+G", "government": "-G"},
                      "Wages": {"households": "+W", "firms": "-W"},
                      "Taxes": {"households": "-T", "government": "+T"},
                      "Change in money": {"households": "-d(Hh)", "government": "+d(Hs)"},
                  })
    d["balance_sheet"] = {"Money": {"households": "+2*Hh", "government": "-Hs"}}
    rep = check_accounting(model_from_dict(d), throw=False)
    stock = [c for c in rep.failures if c.matrix == "stock"]
    assert stock and "balance-sheet row 'Money', column 'households'" in stock[0].note


def test_inconsistent_initial_values_fail_the_balance_sheet_row():
    d = _sim_dict(stocks={"Hh": 5, "Hs": 0})
    rep = check_accounting(model_from_dict(d), throw=False)
    row = [c for c in rep.failures if c.matrix == "balance_sheet"][0]
    assert row.name == "Money" and "initial values" in row.note


# ------------------------------------------------------------------ an unbalanced start (issue 24, item 5)
PC_ROUNDED = Path(__file__).parent / "data" / "models" / "pc_rounded.yaml"


def test_an_unbalanced_start_is_refused_naming_the_row_its_sum_and_the_option():
    d = _sim_dict(stocks={"Hh": 5, "Hs": 0})
    with pytest.raises(AccountingError, match=r"balance sheet row 'Money': unbalanced start, sums to 5 at the "
                       r"initial values.*allow_unbalanced_start: true in the model or scenario file, "
                       r"--allow-unbalanced-start"):
        check_accounting(model_from_dict(d))
    rep = check_accounting(model_from_dict(d), throw=False)
    (row,) = rep.failures
    assert (row.status, row.residual, row.ok) == ("unbalanced start", "5", True)  # the check passes; the report refuses
    assert not rep.diagnosis  # a start is not a sign flip
    allowed = check_accounting(model_from_dict(d), allow_unbalanced_start=True)
    assert allowed.ok and allowed.unbalanced_start == (row,)
    assert "but the start is not (1 off at the initial values, allowed" in str(allowed)
    assert check_accounting(model_from_dict({**d, "allow_unbalanced_start": True})).ok  # the model file's flag


def test_an_identity_row_off_at_the_start_of_a_discrete_model_is_an_unbalanced_start():
    """Bills (Bh - Bs + Bcb, Bcb = Bs - Bh) holds in every period but not at the rounded initial values, which
    the first period reads through lag(): before, the check called it an identity and the run then failed."""
    m = load_model(PC_ROUNDED)
    with pytest.raises(AccountingError, match=r"balance sheet row 'Bills': unbalanced start, sums to -0.01 at the "
                       r"initial values, expected 0 \(an identity in every period, but not at the initial values"):
        check_accounting(m)
    rep = check_accounting(m, allow_unbalanced_start=True)
    assert [(c.name, c.residual) for c in rep.unbalanced_start] == [("Bills", "-0.01")]
    assert {c.status for c in rep.checks} == {"proven", "unbalanced start"}


def test_with_an_unbalanced_start_allowed_a_sign_flip_is_still_refused_and_named():
    m = dataclasses.replace(load_model(PC_ROUNDED), allow_unbalanced_start=True)
    bad = _flipped(m, "transactions", "Taxes", "households")
    with pytest.raises(AccountingError, match=r"looks sign-flipped .* transactions row 'Taxes', column 'households' "
                       r"\(entry T, try -T\).*transactions row 'Taxes': failed"):
        check_accounting(bad)
    # a sign flipped in a stock's own flow equation, which only the balance sheet sees: its change is not zero
    d = {"name": "m", "sectors": ["households", "firms"], "stocks": {"M": 1, "Ms": 1.5}, "parameters": {"a": 0.1},
         "equations": {"d(M)": "a", "d(Ms)": "-a"}, "balance_sheet": {"Money": {"households": "+M", "firms": "-Ms"}},
         "allow_unbalanced_start": True}
    with pytest.raises(AccountingError, match=r"balance sheet row 'Money': failed, sums to 2\*a, expected 0 \(its "
                       r"change over time is not zero\)$"):  # (and no flip is suggested: none balances the start)
        check_accounting(model_from_dict(d))
    assert check_accounting(model_from_dict({**d, "equations": {"d(M)": "a", "d(Ms)": "a"}})).ok


CAPITAL = """
name: capital
sectors: [households, firms]
time: {start: 0, stop: 10, dt: 0.5}
stocks: {K: 100, Ef: 100, Eh: 100}
parameters: {delta: 0.05, s: 0.2}
equations:
  Y: 0.3 * K
  I: s * Y
  DEP: delta * K
  Vh: Eh
  Vf: K - Ef
  d(K): I - DEP
balance_sheet:
  Capital: {firms: +K, sum: +K}
  Equity: {households: +Eh, firms: -Ef}
  Net worth: {households: -Vh, firms: -Vf, sum: -K}
transactions:
  Output: {households: +Y, firms: -Y}
  Consumption: {households: "-(Y - I)", firms: "+(Y - I)"}
  Equity issues: {households: -d(Eh), firms: +d(Ef)}
"""


def test_real_assets_sum_column_and_net_worth_row():
    model = model_from_dict(_read_yaml(CAPITAL, "capital"))
    rep = check_accounting(model)
    checks = {(c.matrix, c.kind, c.name): c for c in rep.checks}
    assert checks[("balance_sheet", "row", "Capital")].status == "proven"
    assert checks[("balance_sheet", "column", "firms")].status == "proven"  # net-worth row: columns checked too
    assert checks[("balance_sheet", "row", "Net worth")].status == "proven"


def test_net_worth_that_leaks_is_caught():
    bad = CAPITAL.replace("Vf: K - Ef", "Vf: K - Ef + DEP")
    rep = check_accounting(model_from_dict(_read_yaml(bad, "capital")), throw=False)
    failed = {(c.matrix, c.kind, c.name) for c in rep.failures}
    assert ("balance_sheet", "column", "firms") in failed




def test_nonlinear_block_rows_are_verified_at_consistent_points():
    """Rows that depend on a Newton block are not proven by sympy, but they are not taken on trust either:
    the block is solved numerically at random points and the row must vanish there."""
    rep = check_accounting(model_from_dict(_read_yaml(NONLINEAR, "nl")))
    statuses = {c.name: c.status for c in rep.checks if c.matrix == "transactions" and c.kind == "row"}
    assert statuses["Income"] == "verified"
    assert statuses["Change in money"] == "verified"
    assert statuses["Consumption"] == "proven"


NL_ENTRIES = [(kind, r, c) for kind in ("transactions", "balance_sheet")
              for r, c, _ in getattr(model_from_dict(_read_yaml(NONLINEAR, "nl")), kind).entries()]


@pytest.mark.parametrize("kind,row,col", NL_ENTRIES, ids=[f"{k}:{r}:{c}" for k, r, c in NL_ENTRIES])
def test_a_flip_in_a_row_that_depends_on_a_nonlinear_block_is_caught_and_named(kind, row, col):
    model = _flipped(model_from_dict(_read_yaml(NONLINEAR, "nl")), kind, row, col)
    rep = check_accounting(model, throw=False)
    assert not rep.ok
    label = "balance sheet" if kind == "balance_sheet" else "transactions"
    assert any(f"{label} row {row!r}, column {col!r}" in d for d in rep.diagnosis), rep.error_message()


def test_a_net_worth_row_written_with_stocks_balances():
    """Godley and Lavoie close the balance sheet with a net-worth row that restates the stocks
    (households: -Hh, government: +Hs); it holds nothing, so it needs no transactions counterpart."""
    text = Path(load_model("sim").source).read_text().replace(
        "  Money: {households: +Hh, government: -Hs}\n",
        "  Money: {households: +Hh, government: -Hs}\n  Net worth: {households: -Hh, government: +Hs}\n")
    model = model_from_dict(_read_yaml(text, "sim"))
    rep = check_accounting(model)
    assert {c.status for c in rep.checks} == {"proven"}
    assert ("balance_sheet", "column", "households") in {(c.matrix, c.kind, c.name) for c in rep.checks}
    bad = check_accounting(_flipped(model, "balance_sheet", "Net worth", "households"), throw=False)
    assert not bad.ok and "Net worth" in bad.error_message()


def _sim_discrete_with_wealth(vh: str):
    """SIM in discrete time with a variable ``Vh: <vh>`` and a balance-sheet row Wealth (Vh - Hs): the model's
    text, its accounting report and the Wealth row's check."""
    text = Path(load_model("sim_discrete").source).read_text()
    text = text.replace("  C: alpha1", f"  Vh: {vh}\n  C: alpha1").replace(
        "  Money: {households: +Hh, government: -Hs}\n",
        "  Money: {households: +Hh, government: -Hs}\n  Wealth: {households: +Vh, government: -Hs}\n")
    rep = check_accounting(model_from_dict(_read_yaml(text, "sd")))
    return text, rep, [c for c in rep.checks if c.name == "Wealth"][0]


def test_an_untested_start_value_is_not_reported_as_proven():
    """A discrete-time balance-sheet row with a variable that has no value before the first period
    is conserved, but nothing shows it starts at zero: it is monitored, never 'proven'."""
    text, rep, wealth = _sim_discrete_with_wealth("lag(Vh) + Hh - lag(Hh)")
    assert wealth.status == "monitored"
    assert "Vh has no initial value" in wealth.note
    from sdmodel.report.views import check_text
    text = check_text(model_from_dict(_read_yaml(text, "sd")), rep)
    assert "all rows and columns balance" not in text and ": balanced" not in text
    assert "1 not proven or verified" in text


def test_a_row_that_equals_a_conserved_row_in_every_period_is_proven():
    """Wealth (Vh - Hs, with Vh = Hh) has no value before the first period, but in every period it
    equals the Money row, which balanced at the start and so in every period since."""
    _, _, wealth = _sim_discrete_with_wealth("Hh")
    assert wealth.status == "proven" and wealth.note == "identity, given last period's balance sheet"


@pytest.mark.parametrize("entry,what", [("sqrt(-1)", "not a real number"), ("log(-2)", "not a real number"),
                                        ("(-8)**(1/3)", "not a real number"), ("1e400", "double precision")])
def test_constants_that_are_not_real_doubles_are_refused_by_name(entry, what):
    text = Path(load_model("sim").source).read_text().replace("  Y: C + G", f"  Y: C + G + 0.5 * {entry}")
    with pytest.raises(SpecError, match=rf"equations\.Y.*{what}"):
        model_from_dict(_read_yaml(text, "sim"))


def test_accounting_does_not_mutate_the_model():
    m = load_model("pc")
    before = (dict(m.equations), {r: dict(c) for r, c in m.transactions.rows.items()})
    check_accounting(m)
    assert before == (dict(m.equations), {r: dict(c) for r, c in m.transactions.rows.items()})


def test_derivation_system_discrete_uses_lags():
    der = derive(load_model("sim_discrete"))
    assert der.system[sp.Symbol("Hh")] == sp.Symbol("lag(Hh)") + sp.Symbol("d(Hh)")
    assert sp.Symbol("lag(Hh)") in der.knowns


def test_error_is_spec_error_and_value_error():
    d = _sim_dict(stocks={"Hh": 5, "Hs": 0})
    with pytest.raises(SpecError):
        check_accounting(model_from_dict(d))
    with pytest.raises(ValueError):
        check_accounting(model_from_dict(d))


# -- last period's balance sheet (discrete time) ---------------------------------------------------
BMW = Path(__file__).resolve().parent.parent / "models" / "bmw" / "model.yaml"


def _bmw(**replace):
    text = BMW.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return model_from_dict(_read_yaml(text, "bmw"))


def test_bmw_flows_are_proven_with_last_periods_balance_sheet():
    """G&L BMW: 'Interest on loans' sums to lag(rl)*(lag(Ls) - lag(Ld)), zero because the Loans row
    balanced last period (it started at zero and is conserved): every row and column is proven."""
    rep = check_accounting(load_model(BMW))
    assert {c.status for c in rep.checks} == {"proven"}, [c.describe() for c in rep.checks if c.status != "proven"]
    loans = [c for c in rep.checks if c.matrix == "balance_sheet" and c.name == "Loans"][0]
    assert loans.note == "conserved over time and zero at the initial values"


def test_bmw_with_the_books_nonlinear_wage_bill_is_accepted_and_only_verified():
    """With 7.13 as printed (WBs = W*Ns) the period's block is non-linear: the rows that need it, and
    every proof that needs last period's balance sheet (itself verified numerically), are verified."""
    rep = check_accounting(_bmw(**{"WBs: WBd": "WBs: W * Ns"}))
    assert rep.ok
    status = {c.name: c.status for c in rep.checks}
    assert status["Interest on loans"] == "verified" and status["Investment"] == "proven"


def test_a_start_that_does_not_balance_is_not_assumed_last_period():
    """Deposits of 5 issued by banks that hold none: the Money row and the banks' column do not balance
    at the start, so neither is assumed last period, and the interest on deposits fails (it would be
    'proven' if the Money row were assumed to hold)."""
    rep = check_accounting(_bmw(**{"Ms: 0, Ld": "Ms: 5, Ld"}), throw=False)
    failed = {c.name for c in rep.failures}
    assert {"Money deposits", "Interest on deposits"} <= failed and "Loans" not in failed


BMW_ENTRIES = [(kind, r, c) for kind in ("transactions", "balance_sheet")
               for r, c, _ in getattr(load_model(BMW), kind).entries()]


@pytest.mark.parametrize("kind,row,col", BMW_ENTRIES, ids=[f"{k}:{r}:{c}" for k, r, c in BMW_ENTRIES])
def test_every_sign_flip_of_bmw_is_caught_by_the_proofs(kind, row, col):
    rep = check_accounting(_flipped(load_model(BMW), kind, row, col), throw=False)
    assert not rep.ok
    label = "balance sheet" if kind == "balance_sheet" else "transactions"
    assert rep.diagnosis and f"{label} row {row!r}, column {col!r}" in rep.diagnosis[0], rep.error_message()
