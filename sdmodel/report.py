"""Plain-text views of a model: Godley tables of both matrices and the accounting report."""

from __future__ import annotations

from .accounting import AccountingReport
from .spec import Matrix, Model


def matrix_table(mat: Matrix) -> str:
    """A matrix as an aligned text table (rows × sectors, with the Σ column where present)."""
    cols = list(mat.columns)
    has_sum = bool(mat.sums) or mat.kind == "transactions"
    header = ["", *cols] + (["Σ"] if has_sum else [])
    rows = []
    for r, cells in mat.rows.items():
        line = [r] + [mat.text.get((r, c), "") for c in cols]
        if has_sum:
            line.append(str(mat.sums[r]) if r in mat.sums else "0")
        rows.append(line)
    widths = [max(len(str(x[i])) for x in [header] + rows) for i in range(len(header))]
    fmt = lambda xs: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)  # noqa: E731
                               for i, (x, w) in enumerate(zip(xs, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), sep] + [fmt(r) for r in rows])


def check_text(model: Model, report: AccountingReport) -> str:
    """What ``sdmodel check`` prints: both matrices, the derived dynamics and every check."""
    out = [f"model {model.name!r} ({model.source}), {model.time.mode} time"]
    for mat, title in ((model.balance_sheet, "Balance sheet"), (model.transactions, "Transactions-flow matrix")):
        if mat is not None:
            out += ["", title, matrix_table(mat)]
    out += ["", str(report)]
    n = {s: sum(c.status == s for c in report.checks) for s in ("proven", "verified", "monitored", "failed")}
    out += ["", "summary: " + ", ".join(f"{v} {k}" for k, v in n.items())
            + ("; all rows and columns balance" if report.ok else "; NOT BALANCED")]
    return "\n".join(out)
