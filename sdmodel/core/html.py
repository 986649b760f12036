"""HTML for notebooks and reports: one plain table format shared by models, results and the report."""

from __future__ import annotations

import html


def html_table(header, rows, caption: str | None = None, cls: str = "sdmodel") -> str:
    """A plain HTML table: the first cell of each row is its label (notebooks and reports)."""
    e = html.escape
    out = [f'<table class="{cls}">']
    if caption:
        out.append(f"<caption>{e(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr></thead><tbody>")
    for r in rows:
        out.append("<tr><th>" + e(str(r[0])) + "</th>" + "".join(f"<td>{e(str(x))}</td>" for x in r[1:]) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)
