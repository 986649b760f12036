"""Every figure sdmodel draws, each a function of plain data returning a ``matplotlib.figure.Figure``.

The numeric modules compute (frames, arrays, small mappings); the functions here only draw
them, and :func:`png_bytes` renders a figure for the writers. Figures are built with
``Figure()`` and ``fig.subplots()``, never through matplotlib's state machine: no global figure
registry, no current figure, and the process's backend is never switched — a notebook keeps
its inline backend, and a figure nobody holds any more is garbage like any other object.
``savefig`` to PNG renders with Agg whatever the process's backend is.

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"Y": np.linspace(0, 1, 5), "C": np.linspace(1, 2, 5)}, index=np.arange(5.0))
>>> fig = series_figure(frame, "model sim")
>>> [ax.get_title() for ax in fig.axes if ax.axison]
['Y', 'C']
>>> png_bytes(fig)[:8]
b'\\x89PNG\\r\\n\\x1a\\n'
"""

from __future__ import annotations

import io as _io
import textwrap
from collections.abc import Collection, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.ticker import MaxNLocator

#: The PNG signature: the first eight bytes of every file :func:`png_bytes` returns.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """A figure as PNG bytes (rendered by Agg), for :func:`sdmodel.core.files.write_atomic_file`.

    >>> png_bytes(Figure(figsize=(1, 1)))[:4]
    b'\\x89PNG'
    """
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _fixed_layout(
    fig: Figure,
    nrow: int,
    ncol: int,
    *,
    bottom: float = 0.0,
    top: float = 0.68,
    left: float = 0.85,
    right: float = 0.2,
    hgap: float = 0.42,
    wgap: float = 0.8,
) -> None:
    """Place a grid of panels at fixed margins and gaps, in inches (``bottom``: above the figure's
    ``bottom`` fraction, which small print below the panels takes).

    What :meth:`Figure.tight_layout` finds for a run's figure, without its cost: it measures every tick
    label of every panel (a draw of the whole figure, a third of the time ``sdmodel run`` spends drawing
    it). The margins leave room for a title over each panel and tick labels of up to six digits."""
    W, H = fig.get_size_inches()
    width = max(W - left - right - (ncol - 1) * wgap, 0.1) / ncol
    height = max(H * (1 - bottom) - 0.6 - top - (nrow - 1) * hgap, 0.1) / nrow
    fig.subplots_adjust(
        left=left / W,
        right=1 - right / W,
        top=1 - top / H,
        bottom=bottom + 0.6 / H,
        wspace=wgap / width,
        hspace=hgap / height,
    )


def _grid(n: int, ncol: int, figsize, **kw):
    """A figure with ``n`` panels in rows of ``ncol``; the spare panels switched off."""
    fig = Figure(figsize=figsize)
    axes = fig.subplots(-(-n // ncol), ncol, squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def series_figure(frame, title: str, max_panels: int = 8) -> Figure:
    """The first ``max_panels`` columns of a results frame (index: time), two panels a row.

    What ``sdmodel run`` draws for a model without observed history.
    """
    cols = list(frame.columns)[:max_panels]
    nrow = (len(cols) + 1) // 2
    fig, axes = _grid(len(cols), 2, (10, 2.2 * nrow), sharex=True)
    flat = list(axes.flat)
    for ax, c in zip(flat, cols):
        ax.plot(frame.index, frame[c], lw=1.5)
        ax.set_title(c, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in flat[max(0, len(cols) - 2) : len(cols)]:  # the lowest panel of each column shows the time axis
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("t")
    fig.suptitle(title, fontsize=12)
    _fixed_layout(fig, nrow, 2, top=0.55)
    return fig


def _time_label(t0: float) -> str:
    """The time axis: calendar years (a point at 1990 is the start of 1990, so an end-of-year stock of
    1990 sits at 1991 and a mid-year flow at 1990.5) where the run's times are years, else ``t``."""
    return "year (1990 = the start of 1990)" if 1000 <= t0 <= 3000 else "t"


def history_figure(
    frame,
    history: Mapping[str, tuple],
    panels: Sequence,
    title: str,
    source: str | None = None,
    units: str | None = None,
    events: Sequence[tuple[float, str]] = (),
    window: tuple[float, float, str] | None = None,
) -> Figure:
    """Paths of a run against observed history, one panel per entry of ``panels`` (two columns).

    A panel is ``{"title", "outputs", "units"}`` (several outputs share a panel, each in its own colour,
    its history in the same colour with markers) or a pair ``(column, title)`` in ``units``.
    ``history`` maps a column to its observations ``(times, values)``, on the run's own time axis
    (an observation of year ``y`` sits where the model's value it is compared with sits: mid-year,
    end of year or mid fiscal year, as its source's ``shift`` says); only those inside the run's span are
    drawn. ``events`` are marked by dotted vertical lines, numbered in every panel and named in a key
    at the foot; ``window`` is shaded. ``source`` is credited in small print.
    """
    specs = [p if isinstance(p, Mapping) else {"title": p[1], "outputs": (p[0],), "units": units or ""} for p in panels]
    t0, t1 = float(frame.index[0]), float(frame.index[-1])
    nrow = -(-len(specs) // 2)
    fig, axes = _grid(len(specs), 2, (11, 3.4 * nrow + (0.5 if events else 0)), sharex=True)
    inside = [(t, label) for t, label in events if t0 <= t <= t1]
    for ax, spec in zip(axes.flat, specs):
        outs = list(spec["outputs"])
        if window is not None:
            ax.axvspan(max(window[0], t0), min(window[1], t1), color="0.93", zorder=0)
        for i, k in enumerate(outs):
            colour = "tab:blue" if len(outs) == 1 else f"C{i}"
            name = "model" if len(outs) == 1 else k
            ax.plot(frame.index, frame[k], lw=2, color=colour, label=name)
            if k in history:
                ts, vs = (np.asarray(a, dtype=float) for a in history[k])
                keep = (ts >= t0) & (ts <= t1)
                ax.plot(
                    ts[keep],
                    vs[keep],
                    "o-",
                    ms=3,
                    lw=0.8,
                    color="black" if len(outs) == 1 else colour,
                    alpha=0.9,
                    label="data" if len(outs) == 1 else None,
                )
        if len(outs) > 1:
            ax.axhline(0, color="0.4", lw=0.7)
        for j, (t, _) in enumerate(inside, 1):
            ax.axvline(t, color="0.35", lw=0.8, ls=":")
            ax.annotate(
                str(j),
                (t, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -10),
                textcoords="offset points",
                fontsize=7,
                color="0.3",
            )
        ax.set_title(spec["title"], fontsize=11)
        if spec.get("units"):
            ax.set_ylabel(spec["units"])
        ax.grid(alpha=0.3)
        if len(outs) > 1:
            ax.legend(loc="best", fontsize=7, ncol=2, title="lines: model; dots: data", title_fontsize=7)
    for ax in list(axes.flat)[max(0, len(specs) - 2) : len(specs)]:  # the lowest panel of each column
        ax.set_xlabel(_time_label(t0))
        ax.tick_params(labelbottom=True)
    single = [ax for ax, spec in zip(axes.flat, specs) if len(spec["outputs"]) == 1]
    if single:
        handles, labels = single[0].get_legend_handles_labels()
        if window is not None:
            handles.append(Patch(color="0.93"))
            labels.append(window[2])
        single[0].legend(handles, labels, loc="best", fontsize=8)
    fig.suptitle(title, fontsize=13)
    foot = []
    if inside:
        foot.append("events: " + "; ".join(f"{j} {label} ({t:g})" for j, (t, label) in enumerate(inside, 1)))
    if source:
        foot.append(f"data: {source}")
    lines = [part for line in foot for part in textwrap.wrap(line, 190)]  # one line of small print each
    for i, line in enumerate(reversed(lines)):
        fig.text(0.01, 0.005 + 0.014 * i, line, fontsize=7, color="0.3")
    _fixed_layout(fig, nrow, 2, bottom=0.01 + 0.014 * len(lines))
    return fig


def balances_figure(frame, title: str, ylabel: str = "net lending") -> Figure:
    """Sectoral balances: one line per column of ``frame`` (a sector's net lending, by time)."""
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    for c in frame.columns:
        ax.plot(frame.index, frame[c], lw=1.6, label=c)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(frame.columns):
        ax.legend(ncol=3, fontsize=9)
    fig.tight_layout()
    return fig


def flow_figure(edges: Mapping[tuple[str, str], float], sectors: Sequence[str], title: str) -> Figure:
    """A Sankey-style diagram: the sectors on an ellipse, an arrow from payer to receiver for each
    ``(payer, receiver) -> amount`` of ``edges``, its width in proportion to the amount."""
    sectors = list(sectors)
    n = len(sectors)
    ang = np.pi / 2 - 2 * np.pi * np.arange(n) / max(n, 1)
    pos = {s: (1.35 * np.cos(a), np.sin(a)) for s, a in zip(sectors, ang)}
    rad = 0.22
    fig = Figure(figsize=(10, 7.5))
    ax = fig.subplots()
    top = max(edges.values(), default=1.0)
    cmap = colormaps["tab10"]
    for (a, b), v in sorted(edges.items(), key=lambda kv: -kv[1]):
        if a not in pos or b not in pos or v <= 0:
            continue
        ax.add_patch(
            FancyArrowPatch(
                pos[a],
                pos[b],
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=12 + 10 * v / top,
                lw=1 + 14 * v / top,
                alpha=0.55,
                color=cmap(sectors.index(a) % 10),
                shrinkA=38,
                shrinkB=38,
            )
        )
        mx, my = (pos[a][0] + pos[b][0]) / 2, (pos[a][1] + pos[b][1]) / 2
        dx, dy = pos[b][0] - pos[a][0], pos[b][1] - pos[a][1]
        # the middle of matplotlib's arc3 curve: mid + rad / 2 * (dy, -dx)
        ax.text(
            mx + rad / 2 * dy,
            my - rad / 2 * dx,
            f"{v:.3g}",
            fontsize=8,
            ha="center",
            va="center",
            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
        )
    for s, (x, y) in pos.items():
        ax.text(
            x,
            y,
            s,
            ha="center",
            va="center",
            fontsize=11,
            fontweight="bold",
            bbox=dict(boxstyle="round,pad=0.5", fc="#eef2f7", ec="#345"),
        )
    ax.set_xlim(-1.8, 1.8)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return fig


def fit_figure(
    paths,
    window: tuple[float, float],
    rmse: Mapping[str, float],
    *,
    log: Collection[str] = (),
    not_fitted: Collection[str] = (),
    title: str = "",
    shift: Mapping[str, float] | None = None,
) -> Figure:
    """Calibrated model against data, one panel per target (the keys of ``rmse``, in order).

    ``paths`` is long: ``target``, ``year``, ``data``, ``model``; the fit ``window`` (of data years,
    both ends included) is shaded; each panel's title gives the target's RMSE (in log points for the
    targets in ``log``) and says which targets are ``not_fitted``. With ``shift`` (target -> the
    offset of its observations in the model's time, as the config's ``shift``), each observation of
    year ``y`` is drawn at ``y + shift`` and the window from the start of its first year to the end of
    its last, on the time axis of a run's main figure (:func:`history_figure`).
    """
    targets = list(rmse)
    ncol = 2 if len(targets) > 1 else 1
    fig, axes = _grid(len(targets), ncol, (5.5 * ncol, 2.8 * (-(-len(targets) // ncol))))
    for ax, name in zip(axes.flat, targets):
        d = paths[paths.target == name]
        x = d.year + (shift or {}).get(name, 0.0)
        ax.axvspan(window[0], window[1] + (1 if shift is not None else 0), color="0.92", label="fit window")
        ax.plot(x, d.data, "o-", ms=2.5, lw=1, color="black", label="data")
        ax.plot(x, d.model, lw=2, color="tab:blue", label="model")
        ax.set_title(
            f"{name} (RMSE {rmse[name]:.3g}{' log points' if name in log else ''}"
            f"{'; not fitted' if name in not_fitted else ''})",
            fontsize=10,
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(_time_label(float(window[0])) if shift is not None else "year")
        ax.grid(alpha=0.3)
    if targets:
        axes.flat[0].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def index_figure(indices, factors: Sequence[str], outcomes: Sequence[str], method: str, title: str) -> Figure:
    """Sensitivity indices, one panel per outcome: S1 and ST with their confidence intervals
    (``method="sobol"``), or mu* with its interval and sigma (``"morris"``).

    ``indices`` is long: ``outcome``, ``factor`` and the index columns (``S1``, ``S1_conf``, ``ST``,
    ``ST_conf``, or ``mu_star``, ``mu_star_conf``, ``sigma``); ``factors`` gives the order of the bars.
    """
    factors = list(factors)
    ncol = min(3, len(outcomes))
    nrow = -(-len(outcomes) // ncol)
    fig, axes = _grid(len(outcomes), ncol, (5.2 * ncol, 0.32 * len(factors) * nrow + 1.6 * nrow))
    y = np.arange(len(factors))
    for ax, o in zip(axes.flat, outcomes):
        d = indices[indices.outcome == o].set_index("factor").loc[factors]
        if method == "sobol":
            ax.barh(y - 0.2, d.S1, 0.4, xerr=d.S1_conf, label="first order S1", color="#4c72b0", capsize=2)
            ax.barh(y + 0.2, d.ST, 0.4, xerr=d.ST_conf, label="total ST", color="#dd8452", capsize=2)
            ax.set_xlabel("Sobol' index (95% CI)")
            ax.axvline(0, color="k", lw=0.5)
        else:
            ax.barh(y, d.mu_star, 0.6, xerr=d.mu_star_conf, label="mu* (95% CI)", color="#4c72b0", capsize=2)
            ax.plot(d.sigma, y, "o", color="#c44e52", label="sigma")
            ax.set_xlabel("elementary effect")
        ax.set_yticks(y, factors)
        ax.invert_yaxis()
        ax.set_title(o, fontsize=10)
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def time_figure(time_indices, factors: Sequence[str], index: str, title: str) -> Figure:
    """Time-varying sensitivity, one panel per tracked variable: the ``index`` (``ST`` or ``mu_star``)
    of every factor, year by year, with its confidence band where ``time_indices`` has
    ``<index>_conf``.

    ``time_indices`` is long: ``variable``, ``year``, ``factor`` and the index columns.
    """
    variables = list(dict.fromkeys(time_indices.variable))
    conf = f"{index}_conf" if f"{index}_conf" in time_indices else None
    fig = Figure(figsize=(4.6 * len(variables), 4.2))
    axes = fig.subplots(1, len(variables), squeeze=False, sharey=True)
    cmap = colormaps["tab10"]
    for ax, v in zip(axes[0], variables):
        d = time_indices[time_indices.variable == v]
        for k, f in enumerate(factors):
            e = d[d.factor == f]
            ax.plot(e.year, e[index], color=cmap(k % 10), label=f, lw=1.4)
            if conf:
                ax.fill_between(e.year, e[index] - e[conf], e[index] + e[conf], color=cmap(k % 10), alpha=0.12)
        ax.set_title(v, fontsize=10)
        ax.set_xlabel("year")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{'total-order Sobol index ST' if index == 'ST' else 'Morris mu*'} (95% CI band)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _ink(rgba) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba`` (by its luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def heatmap_figure(table, axes: Mapping[str, Sequence[str]], outcomes: Sequence[str], title: str) -> Figure:
    """Policy-sequencing maps: a row of panels per family, a column per outcome.

    ``table`` has one row per rule with a ``family`` column, the varied parameters and the
    outcomes; ``axes`` maps each family to the one or two parameters it varies. Two give a heat
    map (the first outcome in ``viridis_r``, the others in ``magma_r``) with each cell's value
    written on it; one gives a line.
    """
    fams = list(axes)
    fig = Figure(figsize=(6.2 * len(outcomes), 3.6 * len(fams) + 0.6))
    grid = fig.subplots(len(fams), len(outcomes), squeeze=False)
    for r, fam in enumerate(fams):
        sub = table[table.family == fam]
        par = list(axes[fam])
        for c, o in enumerate(outcomes):
            ax = grid[r][c]
            if len(par) == 2:
                piv = sub.pivot_table(index=par[0], columns=par[1], values=o, sort=False)
                vals = piv.to_numpy(dtype=float)
                im = ax.imshow(vals, aspect="auto", cmap="viridis_r" if c == 0 else "magma_r")
                ax.set_yticks(
                    range(len(piv.index)), [f"{v}" if isinstance(v, str) else f"{v:g}" for v in piv.index], fontsize=7
                )
                ax.set_xticks(range(len(piv.columns)), [f"{v:g}" for v in piv.columns], fontsize=8)
                ax.set_ylabel(par[0])
                ax.set_xlabel(par[1])
                for (i, j), v in np.ndenumerate(vals):
                    if np.isfinite(v):
                        ax.text(
                            j,
                            i,
                            f"{v:.0f}" if abs(v) >= 10 else f"{v:.2g}",
                            ha="center",
                            va="center",
                            fontsize=6,
                            color=_ink(im.cmap(im.norm(v))),
                        )
                fig.colorbar(im, ax=ax, shrink=0.85)
            else:
                ax.plot(sub[par[0]], sub[o], "o-")
                ax.set_xlabel(par[0])
                ax.grid(alpha=0.3)
            ax.set_title(f"{fam}: {o}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- estimation
def band_figure(
    predictive,
    window: tuple[float, float],
    title: str,
    log: Collection[str] = (),
    band: str = "90% predictive band",
    shift: Mapping[str, float] | None = None,
) -> Figure:
    """Posterior predictive bands (5-95%, median) of every target against its data, the fit window shaded.

    ``predictive``: a long frame with columns target, year, data, q5, q50, q95, fitted. With ``shift``
    (target -> offset, as :func:`fit_figure`'s), each row of year ``y`` is drawn at ``y + shift`` (0 for a
    target not in it: rows already on the model's time axis) and the window from the start of its first
    year to the end of its last: the time axis of a run's main figure.
    """
    targets = list(dict.fromkeys(predictive["target"]))
    fig, axes = _grid(len(targets), 2 if len(targets) > 1 else 1, (11, 2.6 * -(-len(targets) // 2) + 0.6))
    for ax, name in zip(axes.flat, targets):
        d = predictive[predictive["target"] == name]
        x = d["year"] + (shift or {}).get(name, 0.0)
        ax.axvspan(window[0], window[1] + (1 if shift is not None else 0), color="0.93", zorder=0)
        ax.fill_between(x, d["q5"], d["q95"], color="C0", alpha=0.25, lw=0, label=band)
        ax.plot(x, d["q50"], color="C0", lw=1.5, label="median")
        if d["data"].notna().any():
            ax.plot(x, d["data"], "k.", ms=4, label="data")
        if name in log:
            ax.set_yscale("log")
        ax.set_title(name + ("" if bool(d["fitted"].iloc[0]) else " (not fitted)"), fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(title + " (shaded: fit window)")
    fig.tight_layout()
    return fig


def prior_posterior_figure(prior: Mapping[str, np.ndarray], posterior: Mapping[str, np.ndarray], title: str) -> Figure:
    """Histograms of prior and posterior draws of each quantity, four panels a row."""
    names = list(posterior)
    fig, axes = _grid(len(names), 4, (12, 2.1 * -(-len(names) // 4) + 0.6))
    for ax, n in zip(axes.flat, names):
        post = np.asarray(posterior[n], float)
        pri = np.asarray(prior[n], float)
        lo, hi = np.nanpercentile(np.concatenate([pri, post]), [0.5, 99.5])
        bins = np.linspace(lo, hi, 40) if hi > lo else 20
        ax.hist(pri, bins=bins, density=True, color="0.6", alpha=0.5, label="prior")
        ax.hist(post, bins=bins, density=True, color="C0", alpha=0.7, label="posterior")
        ax.set_title(n, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def pairs_figure(draws: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]], title: str) -> Figure:
    """Scatter plots of posterior draws for the given pairs of quantities (the most correlated ones)."""
    fig, axes = _grid(max(len(pairs), 1), 3, (11, 3.2 * -(-max(len(pairs), 1) // 3) + 0.6))
    for ax, (a, b) in zip(axes.flat, pairs):
        x, y = np.asarray(draws[a], float), np.asarray(draws[b], float)
        ax.plot(x, y, ".", ms=2, alpha=0.3, color="C0")
        r = np.corrcoef(x, y)[0, 1] if x.std() > 0 and y.std() > 0 else np.nan
        ax.set_xlabel(a, fontsize=8)
        ax.set_ylabel(b, fontsize=8)
        ax.set_title(f"correlation {r:+.2f}", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def rank_figure(chains: Mapping[str, np.ndarray], title: str, bins: int = 20) -> Figure:
    """Rank plots (Vehtari et al. 2021): for each quantity, the histogram of its draws' ranks over
    all chains, one line per chain; flat lines mean the chains sample the same distribution.

    ``chains``: quantity -> array (chain, draw).
    """
    names = list(chains)
    fig, axes = _grid(len(names), 4, (12, 1.9 * -(-len(names) // 4) + 0.6))
    for ax, n in zip(axes.flat, names):
        a = np.asarray(chains[n], float)
        ranks = a.ravel().argsort().argsort().reshape(a.shape)
        edges = np.linspace(0, a.size, bins + 1)
        for c in range(a.shape[0]):
            h, _ = np.histogram(ranks[c], bins=edges)
            ax.plot(np.arange(bins), h * bins / a.shape[1], lw=0.6, alpha=0.5)
        ax.axhline(1, color="k", lw=0.8, ls="--")
        ax.set_ylim(0, 2.5)
        ax.set_title(n, fontsize=9)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    fig.suptitle(title + " (each line a group of chains; flat at 1: mixed)")
    fig.tight_layout()
    return fig


def fan_figure(forecasts, title: str, shift: Mapping[str, float] | None = None) -> Figure:
    """Out-of-sample forecasts from each origin against the data, one panel per target: the model's forecast
    (solid, with its measurement band where it has one) and the naive no-change forecast (dotted).

    ``forecasts``: long, with columns origin, target, year, data, model, q5, q95, "no change". With
    ``shift`` (as :func:`fit_figure`'s) a row of year ``y`` is drawn at ``y + shift`` and an origin (the last
    year fitted) at the end of that year, on the time axis of a run's main figure.
    """
    targets = list(dict.fromkeys(forecasts["target"]))
    fig, axes = _grid(len(targets), 2 if len(targets) > 1 else 1, (11, 2.6 * -(-len(targets) // 2) + 0.6))
    for ax, name in zip(axes.flat, targets):
        d = forecasts[forecasts["target"] == name]
        d = d.assign(year=d["year"] + (shift or {}).get(name, 0.0))
        data = d.drop_duplicates("year").sort_values("year")
        ax.plot(data["year"], data["data"], "k.", ms=4, label="data")
        for i, (o, g) in enumerate(d.groupby("origin")):
            c = f"C{i % 10}"
            g = g.sort_values("year")
            ax.plot(g["year"], g["model"], color=c, lw=1.4, label=f"model from {o:g}")
            if g["q5"].notna().any():
                ax.fill_between(g["year"], g["q5"], g["q95"], color=c, alpha=0.12, lw=0)
            ax.plot(g["year"], g["no change"], color=c, lw=0.9, ls=":")
            ax.axvline(o + (1 if shift is not None else 0), color=c, lw=0.6, ls="--")
        ax.set_title(name, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(title + " (dotted: no change)")
    fig.tight_layout()
    return fig
