"""Views of a model: Godley tables of both matrices (text, Markdown, LaTeX, HTML) and the
accounting report.

Every format shows the same cells: the entry of each row and sector exactly as the model file
writes it (``Matrix.text``), so a table can be checked against the model entry by entry; the
LaTeX form typesets the entry's expression (``d(X)`` as ``\\Delta X``, ``lag(X)`` as ``X_{-1}``).
"""

from __future__ import annotations

import base64
import json
import time
from html import escape as _esc_str
from pathlib import Path

from sdmodel.core.errors import ManifestError, SdmodelError, SpecError
from sdmodel.core.files import created as _created_at
from sdmodel.core.files import write_atomic_file
from sdmodel.core.html import html_table
from sdmodel.core.manifest import FILE, Manifest, RunManifest, SensitivityManifest, SequenceManifest, read_manifest
from sdmodel.model.checks import AccountingReport, progress_line
from sdmodel.model.spec import Matrix, Model, load_model

TABLE_FORMATS = ("text", "md", "latex", "html")


def matrix_table(mat: Matrix) -> str:
    """A matrix as an aligned text table (rows × sectors, with the Σ column where present)."""
    header, rows = mat.cells()
    widths = [max(len(str(x[i])) for x in [header] + rows) for i in range(len(header))]

    def fmt(xs) -> str:
        return "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(xs, widths)))

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
    start = len(report.unbalanced_start)
    if start:  # (counted only where there is one, so that every other summary reads as before)
        n = {**dict(list(n.items())[:3]), "unbalanced start": start, "failed": n["failed"]}
    verdict = (
        "NOT BALANCED"
        if not report.ok
        else "all rows and columns balance"
        if not n["monitored"]
        else f"no imbalance found, but {n['monitored']} not proven or verified: the stock-flow gate checks "
        "them every step of every run"
    )
    if report.ok and start:
        verdict = (
            f"{verdict} over time, but {start} not at the initial values, allowed (allow_unbalanced_start): "
            "runs gate every balance-sheet row on its change from their first step"
        )
    out += ["", "summary: " + ", ".join(f"{v} {k}" for k, v in n.items()) + "; " + verdict]
    return "\n".join(out)


def matrix_markdown(mat: Matrix) -> str:
    """A Godley table as a Markdown (GitHub) table."""
    header, rows = mat.cells()

    def esc(x):
        return str(x).replace("|", "\\|")

    out = [
        "| " + " | ".join(esc(h) for h in header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    out += ["| " + " | ".join(esc(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def _latex_entry(e) -> str:
    import sympy as sp

    from sdmodel.model.expr import marker

    names = {}
    for s in e.free_symbols:
        kind, base = marker(s)
        b = sp.latex(sp.Symbol(base))
        names[s] = r"\Delta " + b if kind == "d" else (b + "_{-1}" if kind == "lag" else b)
    return sp.latex(e, symbol_names=names)


def matrix_latex(mat: Matrix, caption: str | None = None) -> str:
    """A Godley table as a LaTeX ``tabular`` (booktabs), entries typeset as maths."""
    cols = list(mat.columns)
    header = mat.header
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + _latex_text(caption) + "}")
    lines += [
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(_latex_text(h) if h != "Σ" else r"$\Sigma$" for h in header) + r" \\",
        r"\midrule",
    ]
    for r, cells in mat.rows.items():
        line = [_latex_text(r)] + [f"${_latex_entry(cells[c])}$" if c in cells else "" for c in cols]
        if mat.has_sum:
            line.append(f"${_latex_entry(mat.sums[r])}$" if r in mat.sums else "0")
        lines.append(" & ".join(line) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _latex_text(s: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("$", r"\$"),
        ("#", r"\#"),
        ("_", r"\_"),
        ("{", r"\{"),
        ("}", r"\}"),
    ):
        s = s.replace(a, b)
    return s


def matrix_html(mat: Matrix, caption: str | None = None) -> str:
    """A Godley table as an HTML ``<table>`` (notebooks, reports)."""
    return html_table(*mat.cells(), caption=caption, cls="godley")


def model_tables(model: Model, fmt: str = "md") -> str:
    """Both matrices of a model in one format (``text``, ``md``, ``latex``, ``html``)."""
    if fmt not in TABLE_FORMATS:
        raise SpecError(f"unknown table format {fmt!r} (expected one of {', '.join(TABLE_FORMATS)})")
    out = []
    for mat, title in ((model.balance_sheet, "Balance sheet"), (model.transactions, "Transactions-flow matrix")):
        if mat is None:
            continue
        caption = f"{model.label}: {title.lower()}"
        if fmt == "text":
            out.append(f"{caption}\n{matrix_table(mat)}")
        elif fmt == "md":
            out.append(f"### {caption}\n\n{matrix_markdown(mat)}")
        elif fmt == "latex":
            out.append(matrix_latex(mat, caption))
        else:
            out.append(matrix_html(mat, caption))
    return "\n\n".join(out) + "\n"


# --------------------------------------------------------------------------- run directories
def list_runs(root="runs") -> list[dict]:
    """Every run directory under ``root`` (newest first): path, kind, what, when, and a headline.

    A ``manifest.json`` that cannot be read is listed with the reason, not skipped."""
    out = []
    for man_path in sorted(Path(root).glob(f"**/{FILE}")):
        d = man_path.parent
        if any(p.startswith(".") for p in d.relative_to(root).parts):
            continue  # a directory being written (or replaced)
        try:
            m = read_manifest(d)
        except ManifestError as err:
            out.append({"path": str(d), "kind": "?", "what": f"unreadable: {err}", "created": "", "headline": ""})
            continue
        out.append(
            {
                "path": str(d),
                "kind": m.kind,
                "what": m.what,
                "created": m.created or _dt_of(man_path),
                "headline": m.headline,
            }
        )
    return sorted(out, key=lambda r: r["created"], reverse=True)


def _dt_of(path) -> str:
    """When a manifest without ``created`` was written (its file's time)."""
    return _created_at(Path(path).stat().st_mtime)


def _flat(d, prefix="") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _key_outcomes(run_dir, man: Manifest) -> dict:
    """Headline numbers of a run directory, by kind: last values, RMSE per series, total-order indices."""
    import pandas as pd

    d = Path(run_dir)
    kind = man.kind
    if kind == "run" and (d / "results.csv").is_file():
        last = pd.read_csv(d / "results.csv", index_col=0).iloc[-1]
        return {f"{k} at t={last.name:g}": float(v) for k, v in last.items()}
    if kind == "calibration" and (d / "report.json").is_file():
        rep = json.loads((d / "report.json").read_text())
        return {f"RMSE {k}": v.get("rmse") for k, v in (rep.get("fit") or {}).items() if isinstance(v, dict)}
    if kind == "sensitivity" and (d / "indices.csv").is_file():
        t = pd.read_csv(d / "indices.csv")
        col = "ST" if "ST" in t.columns else t.columns[-1]
        return {
            f"{col} {r['factor']} / {r['outcome']}": float(r[col])
            for _, r in t.iterrows()
            if "factor" in t.columns and "outcome" in t.columns
        }
    return {}


def diff_runs(a, b) -> dict:
    """What differs between two run directories: manifest settings, parameters and key outcomes."""
    ma, mb = read_manifest(a), read_manifest(b)
    skip = ("created", "command", "versions", "wall_s", "chunks", "outputs", "schema")
    fa = {k: v for k, v in _flat(ma.to_dict()).items() if not k.startswith(skip)}
    fb = {k: v for k, v in _flat(mb.to_dict()).items() if not k.startswith(skip)}
    settings = {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}
    oa, ob = _key_outcomes(a, ma), _key_outcomes(b, mb)
    outcomes = {k: (oa.get(k), ob.get(k)) for k in [*oa, *[k for k in ob if k not in oa]] if oa.get(k) != ob.get(k)}
    return {
        "settings": settings,
        "outcomes": outcomes,
        "same_outcomes": len(oa) - len([k for k in oa if k in outcomes]),
    }


def diff_text(a, b) -> str:
    d = diff_runs(a, b)

    def fmt(v):
        return "—" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))

    lines = [f"A: {a}", f"B: {b}", ""]
    if d["settings"]:
        w = max(len(k) for k in d["settings"])
        lines.append(f"{'setting / parameter'.ljust(w)}  A  ->  B")
        lines += [f"{k.ljust(w)}  {fmt(x)}  ->  {fmt(y)}" for k, (x, y) in d["settings"].items()]
    else:
        lines.append("same settings and parameters")
    lines.append("")
    if d["outcomes"]:
        w = max(len(k) for k in d["outcomes"])
        lines.append(f"{'outcome'.ljust(w)}  A  ->  B  (difference)")
        for k, (x, y) in d["outcomes"].items():
            diff = f"  ({y - x:+.4g})" if isinstance(x, (int, float)) and isinstance(y, (int, float)) else ""
            lines.append(f"{k.ljust(w)}  {fmt(x)}  ->  {fmt(y)}{diff}")
    lines.append(f"{d['same_outcomes']} key outcomes identical")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures
def history_panels(model: Model, columns) -> list[tuple[str, str]]:
    """(output, title) of the headline panels drawn against history: the model's ``report: panels`` that
    have observed history and are in ``columns``; without that block, every output with history."""
    declared = model.presentation.get("panels") or {k: k for k in model.history}
    return [(k, title) for k, title in declared.items() if k in model.history and k in columns]


def figure_panels(model: Model, columns) -> list[dict]:
    """The panels of a run's main figure (``{title, outputs, units}``): the ``report: figure`` of the model
    and its scenario, each panel's outputs that are in ``columns`` (a panel none of them is in is left out);
    without a ``figure``, one panel per :func:`history_panels` entry. Empty when no output has history."""
    units = str(model.presentation.get("units", ""))
    declared = model.presentation.get("figure") or [
        {"title": title, "outputs": (k,), "units": units} for k, title in history_panels(model, columns)
    ]
    out = []
    for p in declared:
        outs = tuple(k for k in p["outputs"] if k in columns)
        if outs:
            out.append({**p, "outputs": outs})
    return out if any(k in model.history for p in out for k in p["outputs"]) else []


def history_figure(model, frame) -> bytes:
    """The main figure of a run: its paths (``frame``: results by time) against the scenario's observed
    history, one panel per :func:`figure_panels` entry, with the ``report:`` block's events and shaded
    window (PNG, drawn by :func:`sdmodel.report.plots.history_figure`)."""
    from sdmodel.report.plots import history_figure as draw
    from sdmodel.report.plots import png_bytes

    history = {k: (h.times, h.values) for k, h in model.history.items() if k in frame.columns}
    return png_bytes(
        draw(
            frame,
            history,
            figure_panels(model, frame.columns),
            f"{model.label}: model against data",
            source=model.history_source or None,
            events=model.presentation.get("events", ()),
            window=model.presentation.get("window"),
        )
    )


# --------------------------------------------------------------------------- the HTML report
_CSS = """*{box-sizing:border-box}
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.55em;margin-bottom:.3em}
h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.lead{color:#555;font-size:.92em;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.88em}caption{text-align:left;font-weight:600;
padding:.3em 0}th,td{border:1px solid #ddd;padding:.25em .6em}td{text-align:right;font-family:ui-monospace,monospace}
thead th{background:#f2f4f7}tbody th{text-align:left;font-weight:500;background:#fafafa}
figure{margin:.6em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.82em;white-space:pre}
td{white-space:nowrap}
.meta td{text-align:left;font-family:inherit;overflow-wrap:anywhere;max-width:60ch;white-space:normal}
.warning{background:#fff4e5;border-left:4px solid #d9480f;padding:.5em .9em;margin:.6em 0}
@media (max-width:700px){body{margin:.6em auto;padding:0 .5em}h1{font-size:1.3em}table{font-size:.8em}}
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}.scroll{overflow:visible}
figure,table{page-break-inside:avoid}h2{page-break-after:avoid}pre{white-space:pre-wrap}}"""


def _scroll_table(*args, **kw) -> str:
    """:func:`~sdmodel.core.html.html_table` in a box of its own that scrolls when it is wider than the page."""
    return _scroll(html_table(*args, **kw))


def _scroll(html: str) -> str:
    """A table that may be wider than the page scrolls inside its own box (the page never does)."""
    return f'<div class="scroll">{html}</div>'


def _esc(s) -> str:
    return _esc_str(str(s))


def _img(data: bytes, alt: str) -> str:
    return (
        f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{_esc(alt)}</figcaption></figure>"
    )


def _model_of(man: Manifest):
    """The model a run directory was made with: (model, None), or (None, why it cannot be loaded here)."""
    try:
        if isinstance(man, (SensitivityManifest, SequenceManifest)):
            from sdmodel.study.base import load_study

            cfg = load_study(man.study)
            return load_model(cfg.model, cfg.scenario), None
        src = getattr(man, "model_file", "") or getattr(man, "model", "")
        scenario = getattr(man, "scenario_file", None) or getattr(man, "scenario", None)
        return load_model(src, scenario or None), None
    except (SdmodelError, OSError) as err:  # the report says why, instead of failing
        return None, str(err)


def flow_values(model, frame, params: dict, year: float) -> dict:
    """(payer, receiver) -> flow in ``year``: each transactions row without stock changes, paid by the
    sectors where it is negative to those where it is positive (split in proportion when several)."""
    import numpy as np
    import sympy as sp

    from sdmodel.model.expr import T, marker

    if model.transactions is None:
        return {}
    i = int(np.argmin(np.abs(frame.index.to_numpy(float) - year)))
    row = frame.iloc[i]
    vals = {sp.Symbol(k): float(v) for k, v in row.items()}
    vals.update({sp.Symbol(k): float(v) for k, v in params.items()})
    vals.update({sp.Symbol(k): float(s(frame.index[i])) for k, s in model.series.items()})
    vals.update({sp.Symbol(k): p.value for k, p in model.parameters.items() if sp.Symbol(k) not in vals})
    vals[T] = float(frame.index[i])
    edges: dict = {}
    for cells in model.transactions.rows.values():
        if any(marker(s)[0] for e in cells.values() for s in e.free_symbols):
            continue  # stock changes and lagged terms: the financing side, not a flow between sectors here
        try:
            v = {c: float(e.xreplace(vals)) for c, e in cells.items()}
        except (TypeError, ValueError):
            continue
        pay = {c: -x for c, x in v.items() if x < 0}
        get = {c: x for c, x in v.items() if x > 0}
        total = sum(get.values())
        for p, amount in pay.items():
            for g, x in get.items():
                if p != g and total > 0:
                    edges[(p, g)] = edges.get((p, g), 0.0) + amount * x / total
    return edges


def flow_diagram(model, frame, params: dict, year: float) -> bytes:
    """A Sankey-style diagram of the flows between sectors in one year (PNG, drawn by
    :func:`sdmodel.report.plots.flow_figure`)."""
    import numpy as np

    from sdmodel.report.plots import flow_figure, png_bytes

    edges = flow_values(model, frame, params, year)
    t = frame.index[int(np.argmin(np.abs(frame.index.to_numpy(float) - year)))]  # the row flow_values used
    return png_bytes(
        flow_figure(
            edges,
            list(model.sectors),
            f"{model.label}: flows between sectors at t = {t:g}\n(arrow from payer to "
            "receiver, width in proportion to the flow; stock changes not shown)",
        )
    )


def _balances_figure(frame, label, units: str | None = None) -> bytes | None:
    """Sectoral balances (the ``nl_*`` outputs, in ``units`` where given) as PNG, or None where the model
    has none."""
    cols = [c for c in frame.columns if c.startswith("nl_")]
    if not cols:
        return None
    from sdmodel.report.plots import balances_figure, png_bytes

    return png_bytes(
        balances_figure(
            frame[cols].rename(columns=lambda c: c[3:]),
            f"{label}: sectoral balances (net lending of each sector; they sum to zero)",
            ylabel=f"net lending ({units})" if units else "net lending",
        )
    )


def _headline_rows(model, frame) -> list[list]:
    """One row per headline output (the ``report: panels``, else the outputs of the main figure): its unit,
    values at the start, peak and end of the run, and, where the scenario has data, the last data point
    and the RMSE of the model against the data (inside the ``report: window`` where one is declared)."""
    import numpy as np

    main = figure_panels(model, frame.columns)  # once: each row reads its unit from it
    panels = model.presentation.get("panels") or {k: k for p in main for k in p["outputs"]}
    window = model.presentation.get("window")
    t = frame.index.to_numpy(float)
    rows = []
    for k, title in panels.items():
        if k not in frame.columns:
            continue
        y = frame[k].to_numpy(float)
        unit = (
            model.presentation.get("units", "")
            if k in (model.presentation.get("panels") or {})
            else next((p["units"] for p in main if k in p["outputs"]), "")
        )
        i = int(np.nanargmax(y)) if np.isfinite(y).any() else 0
        row = [title, unit, f"{y[0]:.4g} ({t[0]:g})", f"{y[i]:.4g} ({t[i]:g})", f"{y[-1]:.4g} ({t[-1]:g})"]
        h = model.history.get(k)
        if h is not None:
            ts, vs = np.asarray(h.times, float), np.asarray(h.values, float)
            lo, hi = (window[0], window[1]) if window else (t[0], t[-1])
            keep = (ts >= max(lo, t[0])) & (ts <= min(hi, t[-1])) & np.isfinite(vs)
            if keep.any():
                err = np.interp(ts[keep], t, y) - vs[keep]
                last = int(np.flatnonzero(keep)[-1])
                row += [
                    f"{vs[last]:.4g} ({ts[last]:g})",
                    f"{float(np.sqrt(np.mean(err**2))):.3g} (n = {int(keep.sum())})",
                ]
            else:
                row += ["", ""]
        else:
            row += ["", ""]
        rows.append(row)
    return rows


def _flow_year(model, frame) -> float:
    """The year the flow diagram shows by default: the end of the ``report: window``, else the last data
    point inside the run, else the run's end (never a year the model only projects to, where it can)."""
    t0, t1 = float(frame.index[0]), float(frame.index[-1])
    window = model.presentation.get("window")
    if window and t0 <= window[1] <= t1:
        return float(window[1])
    ends = [float(h.times[-1]) for h in model.history.values() if len(h.times) and t0 <= float(h.times[-1]) <= t1]
    return max(ends) if ends else t1


def _frame_table(df, caption, max_rows=40, floatfmt="{:.4g}") -> str:
    df = df.head(max_rows)
    header = [df.index.name or "", *map(str, df.columns)]
    rows = [
        [i, *[floatfmt.format(v) if isinstance(v, float) else v for v in r]]
        for i, r in zip(df.index, df.itertuples(index=False))
    ]
    return _scroll(html_table(header, rows, caption=caption))


def _warnings_html(man: Manifest) -> list[str]:
    """What the reader must know before the results: the warnings the manifest records (a run beyond the
    data of its series) and a run that failed."""
    out = [f'<p class="warning"><b>Warning:</b> {_esc(w)}</p>' for w in man.warnings]  # each recorded once, one line
    if isinstance(man, RunManifest) and man.message and not man.success:
        out.append(f'<p class="warning"><b>The run failed:</b> {_esc(man.message)}</p>')
    return out


def build_report(run_dir, out=None, year: float | None = None, *, progress: bool = False) -> Path:
    """One self-contained HTML file (figures embedded, no network needed) for any run directory:
    a run, a calibration, a sensitivity study or a sequencing study.

    It opens with the warnings the manifest records (a run beyond the data of its series, see
    :func:`sdmodel.report.rundirs.noting_warnings`), then has the manifest, the model's description and
    Godley tables, and by kind: the figures of the directory (leverage against history), sectoral
    balances and a flow diagram of ``year`` (a run);
    the fit table, the estimates and the fit figure (a calibration); the Sobol or Morris indices
    with their confidence intervals and charts (sensitivity); the tables and heat maps of each
    design (sequencing). Written atomically to ``out`` (default ``RUN_DIR/report.html``).
    ``progress``: say on stderr what is being done and how long it took.
    """
    import pandas as pd

    started = time.perf_counter()
    d = Path(run_dir)
    man = read_manifest(d)
    kind = man.kind
    if progress:
        progress_line(f"reporting on {d} ({kind} of {man.what or '?'}): loading the model, drawing the figures...")
    model, why = _model_of(man)
    title = f"sdmodel {kind}: {model.label if model is not None else man.what}"
    parts = [
        f"<h1>{_esc(title)}</h1>",
        f'<p class="lead">Run directory <code>{_esc(d.resolve())}</code>, made '
        f"{_esc(man.created or _dt_of(d / FILE))} by <code>"
        f"{_esc(' '.join(map(str, man.command)))}</code>. The model, its matrices and the manifest are at "
        "the end.</p>",
        *_warnings_html(man),
    ]
    # the findings and figures first; the model and the manifest, for checking, at the end
    tail = []
    if model is not None:
        tail.append("<h2>Model</h2>")
        tail.append(f"<p>{_esc(' '.join(model.description.split()))}</p>")
        for mat, name in ((model.balance_sheet, "Balance sheet"), (model.transactions, "Transactions-flow matrix")):
            if mat is not None:
                tail.append(_scroll(matrix_html(mat, f"{name} ({model.label})")))
    else:
        tail.append(
            f"<h2>Model</h2><p>(The model named in the manifest cannot be loaded here, so there are no Godley "
            f"tables: {_esc(why)})</p>"
        )
    meta = [
        [k, json.dumps(v, default=str) if isinstance(v, (dict, list)) else v]
        for k, v in man.to_dict().items()
        if k not in ("parameters", "command", "outputs", "factors", "problem", "chunks", "designs", "outcomes")
    ]
    tail.append("<h2>Manifest</h2>")
    tail.append(_scroll(html_table(["manifest", ""], meta, caption="manifest.json", cls="meta")))
    if isinstance(man, RunManifest):
        frame = pd.read_csv(d / "results.csv", index_col=0)
        parts.append("<h2>Findings</h2>")
        rows = _headline_rows(model, frame) if model is not None else []
        window = model.presentation.get("window") if model is not None else None
        if rows:
            parts.append(
                _scroll(
                    html_table(
                        ["output", "unit", "start", "peak", "end", "last data point", "RMSE against data"],
                        rows,
                        caption="headline outputs (value and time)"
                        + (f"; RMSE over {window[2]} {window[0]:g}-{window[1]:g}" if window else ""),
                    )
                )
            )
        parts.append(
            f"<p>Largest stock-flow residual {man.max_relative_residual:.1e} of the largest flow"
            f"{'' if man.success else ' (the run failed)'}.</p>"
            if man.max_relative_residual is not None
            else ""
        )
        main = figure_panels(model, frame.columns) if model is not None else []
        pngs = sorted(d.glob("*.png"))
        for png in pngs:
            parts.append(_img(png.read_bytes(), f"{png.name}: the run against data where the scenario has them"))
        if not pngs and main:
            parts.append(_img(history_figure(model, frame), "the run against data"))
        # the sectors' balances, unless the main figure draws them (a unit only where the model declares one)
        drawn = any(k.startswith("nl_") for p in main for k in p["outputs"])
        bal = None if drawn else _balances_figure(frame, model.label if model is not None else man.what)
        if bal:
            parts.append(_img(bal, "sectoral balances"))
        if model is not None and model.transactions is not None:
            y = _flow_year(model, frame) if year is None else float(year)
            parts.append(
                _img(
                    flow_diagram(model, frame, dict(man.parameters), y),
                    f"flows between sectors in {y:g} (Sankey-style diagram; another year: sdmodel report --year)",
                )
            )
        res = d / "residuals.csv"
        if res.is_file():
            r = pd.read_csv(res, index_col=0).abs().max()
            parts.append(
                _scroll(
                    html_table(
                        ["matrix row", "largest |relative residual|"],
                        [[k, f"{v:.2e}"] for k, v in r.items()],
                        caption="stock-flow residuals",
                    )
                )
            )
        keep = [c for c in frame.columns if c.endswith("_gdp") or c.startswith("nl_")] or list(frame.columns)[:10]
        step = max(1, len(frame) // 25)
        parts.append(_frame_table(frame[keep].iloc[::step], "selected results", max_rows=30))
    elif kind == "calibration":
        rep = json.loads((d / "report.json").read_text()) if (d / "report.json").is_file() else {}
        parts.append("<h2>Fit</h2>")
        oos = rep.get("out_of_sample") or {}
        for tab, cap in (
            (rep.get("fit") or {}, f"fit (model − data), {rep.get('window')}"),
            (oos.get("fit") or {}, f"out of sample (not fitted), {oos.get('window')}"),
        ):
            if tab:
                cols = ["n", "rmse", "r2", "bias", "units", "weight"]
                parts.append(
                    _scroll_table(
                        ["series", *cols],
                        [
                            [k, *[(f"{v[c]:.3g}" if isinstance(v.get(c), float) else v.get(c, "")) for c in cols]]
                            for k, v in tab.items()
                        ],
                        caption=cap,
                    )
                )
        params = rep.get("parameters") or {}
        if params:
            cols = sorted({c for v in params.values() if isinstance(v, dict) for c in v})
            parts.append(
                _scroll_table(
                    ["parameter", *cols],
                    [
                        [k, *[(f"{v.get(c):.4g}" if isinstance(v.get(c), float) else v.get(c)) for c in cols]]
                        for k, v in params.items()
                        if isinstance(v, dict)
                    ],
                    caption="estimates",
                )
            )
        for png in sorted(d.glob("*.png")):
            parts.append(_img(png.read_bytes(), png.name))
        if (d / "report.txt").is_file():
            parts.append(f"<h2>report.txt</h2><pre>{_esc((d / 'report.txt').read_text())}</pre>")
    elif kind == "sensitivity":
        parts.append("<h2>Indices</h2>")
        if (d / "summary.txt").is_file():
            parts.append(f"<pre>{_esc((d / 'summary.txt').read_text())}</pre>")
        if (d / "indices.csv").is_file():
            t = pd.read_csv(d / "indices.csv")
            parts.append(
                _frame_table(t.set_index(t.columns[0]), "indices.csv (with confidence intervals)", max_rows=200)
            )
        for png in sorted(d.glob("*.png")):
            parts.append(_img(png.read_bytes(), png.name))
    elif kind == "sequence":
        parts.append("<h2>Designs</h2>")
        if (d / "summary.txt").is_file():
            parts.append(f"<pre>{_esc((d / 'summary.txt').read_text())}</pre>")
        for png in sorted(d.glob("*.png")):
            parts.append(_img(png.read_bytes(), f"{png.stem}: heat map"))
            csv = png.with_suffix(".csv")
            if csv.is_file():
                t = pd.read_csv(csv)
                parts.append(_frame_table(t.set_index(t.columns[0]), csv.name, max_rows=80))
    parts += tail
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>"
        + _esc(title)
        + f"</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    path = write_atomic_file(Path(out) if out else d / "report.html", page.encode("utf-8"))
    if progress:
        progress_line(f"reported on {d} in {time.perf_counter() - started:.1f} s")
    return path
