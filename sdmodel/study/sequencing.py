"""Policy sequencing: when to start, how fast, in what order — mapped on a grid of rules.

A study config's ``sequence:`` section declares *designs*.  A ``grid`` design is
one or more *families* of rules (e.g. calendar rules: start year x pace; state
rules: "start once private borrowing has been positive for k years" x pace),
each a product of parameter values on top of fixed settings.  An ``order``
design takes policies, each switched on by a timing parameter, and runs every
order of them at several spacings.  Every rule is one run of the batch engine,
measured by the study's outcomes; :func:`compute_sequence` returns the table
of each design and its best rule (by the design's ``best:`` criterion), and
:func:`sdmodel.report.rundirs.run_sequence` also writes them, with heat maps, to the
study directory.  This module writes nothing but the chunk store
(:mod:`sdmodel.core.store`).

For consolidation designs, ``deleveraging:`` names the debt ratio whose fall
(in the no-policy counterfactual) marks the deleveraging years, so the table
says whether each rule started while firms were still paying down debt, and
the summary compares those rules with the ones that waited.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sdmodel.core.errors import ConfigError
from sdmodel.core.options import Execution
from sdmodel.core.store import claim_store, study_key
from sdmodel.core.validate import Problems, closest
from sdmodel.estimate.estimation import PosteriorSample
from sdmodel.model.checks import progress_line
from sdmodel.study.base import (
    ChunkStats,
    ModelEvaluator,
    StudyConfig,
    check_failures,
    compiled_model,
    evaluate_chunks,
    load_study,
)

DESIGN_KEYS = ("kind", "doc", "fixed", "families", "policies", "first", "spacing", "best", "deleveraging", "start")


@dataclass
class Design:
    name: str
    kind: str
    doc: str
    rows: pd.DataFrame  # one row per rule: label, family, and every parameter set
    params: list[str]
    best: dict
    deleveraging: str | None = None
    start: str | None = None  # the outcome that says when a rule actually started
    axes: dict = field(default_factory=dict)  # family -> the (one or two) varied parameters, for heat maps


#: The most rules one design may enumerate (each is one run): 10 policies in every order are 3.6 million.
MAX_RULES = 100_000


def load_designs(cfg: StudyConfig, only: Sequence[str] | None = None) -> list[Design]:
    """The study's sequencing designs, validated (every problem at once, each with its line).

    Raises
    ------
    ConfigError
        Naming the study file, the key and line of each problem and what was expected.
    """
    seq = cfg.sequence
    if not seq:
        raise ConfigError(f"study {cfg.source} declares no sequence: designs")
    if only:
        unknown = [d for d in only if d not in seq]
        if unknown:
            raise ConfigError(
                f"--design {', '.join(unknown)}: not in the study (designs: {', '.join(seq)})", cfg.source
            )
    problems = Problems(cfg.source, ConfigError)
    add = problems.add
    outcomes = [o.name for o in cfg.outcomes]
    out = []
    for name, d in seq.items():
        if only and name not in only:
            continue
        key = f"sequence.{name}"
        # a design's name names its table and figure files
        if problems.plain_name(key, name, seq, name, what="design name") is None:
            continue
        if not isinstance(d, dict):
            add(key, f"expected a mapping with keys {', '.join(DESIGN_KEYS)}", seq, name)
            continue
        problems.unknown_each(d, DESIGN_KEYS, f"{key}.")
        kind = d.get("kind", "grid")

        def value(where, p, v, mapping, sub):
            lo, hi = cfg.bounds.get(p, (None, None))
            return problems.number(
                where,
                v,
                mapping,
                sub,
                minimum=lo,
                maximum=hi,
                hint=f"the bounds of {p!r} in the model" if p in cfg.bounds else "",
            )

        def check_params(where, mapping, parent, sub):
            """parameter: a number, or a non-empty list of numbers, each inside the parameter's bounds."""
            if not isinstance(mapping, dict):
                add(where, f"expected a mapping of parameter: value, got {mapping!r}", parent, sub)
                return {}
            good = {}
            for p, v in mapping.items():
                if (
                    problems.name_in(
                        f"{where}.{p}", p, cfg.parameters, mapping, p, what="a parameter", of="of the model"
                    )
                    is None
                ):
                    continue
                if isinstance(v, list):
                    if not v:
                        add(f"{where}.{p}", "expected a number or a non-empty list of numbers, got []", mapping, p)
                        continue
                    xs = [value(f"{where}.{p}[{i}]", p, x, mapping, p) for i, x in enumerate(v)]
                    if None not in xs:
                        good[str(p)] = xs
                else:
                    x = value(f"{where}.{p}", p, v, mapping, p)
                    if x is not None:
                        good[str(p)] = x
            return good

        fixed = check_params(f"{key}.fixed", d.get("fixed") or {}, d, "fixed")
        rows, axes = [], {}
        if kind == "grid":
            fams = d.get("families")
            if not isinstance(fams, dict) or not fams:
                add(f"{key}.families", "expected a mapping of family: {set: {...}, vary: {p: [values]}}", d, "families")
                continue
            for fam, spec in fams.items():
                if not isinstance(spec, dict) or set(spec) - {"set", "vary"} or "vary" not in spec:
                    add(f"{key}.families.{fam}", "expected {set: {p: value}, vary: {p: [values]}}", fams, fam)
                    continue
                sets = check_params(f"{key}.families.{fam}.set", spec.get("set") or {}, spec, "set")
                before = len(problems)
                vary = check_params(f"{key}.families.{fam}.vary", spec["vary"], spec, "vary")
                vary = {p: (v if isinstance(v, list) else [v]) for p, v in vary.items()}
                if len(problems) > before:
                    continue  # already reported
                if not vary or len(vary) > 2:
                    add(
                        f"{key}.families.{fam}.vary",
                        "expected one or two parameters with lists of values",
                        spec,
                        "vary",
                    )
                    continue
                n_rules = math.prod(len(v) for v in vary.values())
                if n_rules > MAX_RULES:
                    add(
                        f"{key}.families.{fam}.vary",
                        f"{n_rules:,} rules, more than {MAX_RULES:,}: use fewer values",
                        spec,
                        "vary",
                    )
                    continue
                axes[str(fam)] = list(vary)
                for combo in itertools.product(*vary.values()):
                    r = {**fixed, **sets, **dict(zip(vary, combo))}
                    label = f"{fam}: " + ", ".join(f"{p}={v:g}" for p, v in zip(vary, combo))
                    rows.append({"label": label, "family": str(fam), **r})
        elif kind == "order":
            pol = d.get("policies")
            if not isinstance(pol, dict) or len(pol) < 2:
                add(f"{key}.policies", "expected at least two policies: {time: parameter, set: {...}}", d, "policies")
                continue
            specs = {}
            for pn, ps in pol.items():
                if not isinstance(ps, dict) or set(ps) - {"time", "set"}:
                    add(
                        f"{key}.policies.{pn}",
                        "expected {time: <a timing parameter of the model>, set: {parameter: value}}",
                        pol,
                        pn,
                    )
                    continue
                if (
                    problems.name_in(
                        f"{key}.policies.{pn}.time",
                        ps.get("time"),
                        cfg.parameters,
                        ps,
                        "time",
                        what="a timing parameter",
                        of="of the model",
                    )
                    is None
                ):
                    continue
                specs[str(pn)] = (
                    str(ps["time"]),
                    check_params(f"{key}.policies.{pn}.set", ps.get("set") or {}, ps, "set"),
                )
            if "first" not in d:
                add(f"{key}.first", "missing (required): the year the first policy starts", d, "first")
                continue
            first = problems.number(f"{key}.first", d["first"], d, "first", what="year")
            spacing = d.get("spacing", [1])
            if not isinstance(spacing, list) or not spacing:
                add(
                    f"{key}.spacing",
                    f"expected a non-empty list of years between policies (>= 0), got {spacing!r}",
                    d,
                    "spacing",
                )
                continue
            spacing = [
                problems.number(f"{key}.spacing[{i}]", s, d, "spacing", minimum=0, hint="years between policies")
                for i, s in enumerate(spacing)
            ]
            if first is None or None in spacing:
                continue
            n_rules = math.factorial(len(specs)) * len(spacing)
            if n_rules > MAX_RULES:
                add(
                    f"{key}.policies",
                    f"{len(specs)} policies in every order at {len(spacing)} spacing(s) are "
                    f"{n_rules:,} rules, more than {MAX_RULES:,}: order fewer policies (group some into one) or "
                    "use a grid design",
                    d,
                    "policies",
                )
                continue
            rows.append({"label": "none of them", "family": "baseline", "order": "none", "spacing": np.nan, **fixed})
            for perm in itertools.permutations(specs):
                for sp_ in spacing:
                    if sp_ == 0 and perm != tuple(specs):
                        continue  # all at once: one row, whatever the order
                    r = {**fixed}
                    for k, pn in enumerate(perm):
                        tpar, sets = specs[pn]
                        r.update(sets)
                        r[tpar] = first + k * sp_
                    order = "all at once" if sp_ == 0 else " > ".join(perm)
                    rows.append(
                        {
                            "label": f"{order}, {sp_:g} y apart" if sp_ else f"all at once, {first:g}",
                            "family": "order",
                            "order": order,
                            "spacing": sp_,
                            **r,
                        }
                    )
            axes["order"] = ["order", "spacing"]
        else:
            add(f"{key}.kind", f"expected grid or order, got {kind!r}")
            continue
        best = d.get("best") or {}
        if (
            not isinstance(best, dict)
            or best.get("minimise", best.get("maximise")) not in outcomes
            or set(best) - {"minimise", "maximise", "max", "min"}
        ):
            crit = best.get("minimise", best.get("maximise")) if isinstance(best, dict) else None
            near = closest(crit, outcomes) if isinstance(crit, str) else None
            add(
                f"{key}.best",
                "expected {minimise: outcome} or {maximise: outcome}, optionally "
                f"max: {{outcome: bound}} / min: {{outcome: bound}} (outcomes: {', '.join(outcomes)})"
                + (f"; did you mean {near!r}?" if near else ""),
                d,
                "best",
            )
            best = {}
        for lim in ("max", "min"):
            lims = best.get(lim) or {}
            if not isinstance(lims, dict):
                add(f"{key}.best.{lim}", f"expected a mapping of outcome: bound, got {lims!r}", best, lim)
                continue
            for o, v in lims.items():
                if (
                    problems.name_in(
                        f"{key}.best.{lim}.{o}", o, outcomes, lims, o, what="an outcome", of="of the study"
                    )
                    is not None
                ):
                    problems.number(f"{key}.best.{lim}.{o}", v, lims, o)
        dl, st = d.get("deleveraging"), d.get("start")
        if dl is not None and not isinstance(dl, str):
            add(f"{key}.deleveraging", f"expected the name of a debt-ratio output, got {dl!r}", d, "deleveraging")
        if st is not None:
            problems.name_in(
                f"{key}.start",
                st,
                outcomes,
                d,
                "start",
                what="an outcome",
                of="of the study (the one that says when a rule starts)",
            )
        if dl is not None and st is None:
            add(key, "deleveraging: needs start: (the outcome giving each rule's start)", seq, name)
        if rows:
            df = pd.DataFrame(rows)
            params = [c for c in df.columns if c in cfg.parameters]
            df[params] = df[params].fillna({p: cfg.parameters[p] for p in params})  # unset: the scenario's value
            out.append(
                Design(
                    str(name),
                    kind,
                    " ".join(str(d.get("doc", "")).split()),
                    df,
                    params,
                    best,
                    None if dl is None else str(dl),
                    None if st is None else str(st),
                    axes,
                )
            )
    problems.raise_if_any()
    return out


@dataclass(frozen=True)
class SequenceResult:
    """The designs of a sequencing study, evaluated: a table of rules and outcomes per design, its best
    rule and finding (written to a directory by :func:`sdmodel.report.rundirs.write_sequence`)."""

    name: str
    tables: dict[str, pd.DataFrame]
    best: dict[str, dict]
    findings: dict[str, str]
    stats: dict[str, ChunkStats]
    wall_s: float
    #: the chunk store it was computed in (the study folder)
    store: Path
    #: the designs as declared (doc, rules, best criterion, the axes of their heat maps)
    designs: dict[str, Design] = field(default_factory=dict)
    #: the study's outcomes, in order
    outcome_names: tuple[str, ...] = ()
    #: what the manifest records of the study: its file, hashes, key, solver, outcomes
    study: Mapping = field(default_factory=dict)
    #: the estimation directory whose posterior draws every rule was run over (None: the scenario's values)
    posterior: str | None = None
    #: how many posterior draws
    draws: int = 0

    @property
    def out(self) -> Path:
        """The study folder (:attr:`store`), under its earlier name."""
        return self.store

    def summary(self) -> str:
        lines = [f"sequencing study {self.name} ({self.wall_s:.1f} s)"]
        if self.posterior:
            lines.append(
                f"every rule run at {self.draws} posterior draws of {self.posterior}: outcomes are posterior medians"
            )
        for d, tab in self.tables.items():
            st = self.stats[d]
            lines.append(f"\n[{d}] {len(tab)} rules; chunks computed {len(st.computed)}, reused {len(st.reused)}")
            b = self.best.get(d)
            if b:
                lines.append(
                    f"best rule ({b['criterion']}): {b['label']}  ->  "
                    + ", ".join(f"{k} {v:.4g}" for k, v in b["outcomes"].items())
                )
                if "bands" in b:
                    lines.append(
                        "  90% posterior bands: "
                        + ", ".join(f"{k} {lo:.4g} to {hi:.4g}" for k, (lo, hi) in b["bands"].items())
                    )
                if "p_beats_next" in b:
                    lines.append(
                        f"posterior probability that it beats the next best ({b['next_best']}): {b['p_beats_next']:.2f}"
                    )
            if d in self.findings:
                lines.append(self.findings[d])
        return "\n".join(lines)


def _deleveraging_window(cfg: StudyConfig, design: Design, variable: str) -> tuple[float, float]:
    """When ``variable`` falls from its peak to its low in the no-policy counterfactual (design's fixed settings)."""
    from sdmodel.core.options import SaveAt, Solver
    from sdmodel.engine.simulation import simulate_batch

    cm = compiled_model(cfg.model, cfg.scenario, cfg.spec_hash)
    base = {p: design.rows[p].iloc[0] for p in design.params if design.rows[p].nunique() == 1}
    base.update(cfg.counterfactual)
    run = simulate_batch(
        cm,
        np.array([list(base.values())]) if base else None,
        list(base) or None,
        solver=Solver(method=cfg.method, dt=cfg.dt),
        saveat=SaveAt(outputs=[variable]),
        throw=True,
    )
    t, y = run.t, run[variable][0]
    peak = int(np.argmax(np.where(t >= cfg.t_span[0] + 5, y, -np.inf)))
    low = peak + int(np.argmin(y[peak:]))
    return float(t[peak]), float(t[low])


def _best(tab: pd.DataFrame, best: Mapping, outcomes: Sequence[str]) -> dict | None:
    if not best:
        return None
    ok = np.ones(len(tab), dtype=bool)
    for o, v in (best.get("max") or {}).items():
        ok &= tab[o].to_numpy() <= float(v)
    for o, v in (best.get("min") or {}).items():
        ok &= tab[o].to_numpy() >= float(v)
    if not ok.any():
        return {"label": "none meets the constraints", "criterion": json.dumps(best), "outcomes": {}}
    sense = "minimise" if "minimise" in best else "maximise"
    col = best[sense]
    cand = tab[ok]
    i = cand[col].idxmin() if sense == "minimise" else cand[col].idxmax()
    crit = (
        f"{sense} {col}"
        + "".join(f", {o} <= {v:g}" for o, v in (best.get("max") or {}).items())
        + "".join(f", {o} >= {v:g}" for o, v in (best.get("min") or {}).items())
    )
    return {
        "label": str(tab.loc[i, "label"]),
        "criterion": crit,
        "row": int(i),
        "outcomes": {o: float(tab.loc[i, o]) for o in outcomes},
    }


def _feasible(Y: np.ndarray, best: Mapping, onames: Sequence[str]) -> np.ndarray:
    """(draws, rules): the rules meeting the best criterion's constraints at each draw."""
    ok = np.ones(Y.shape[:2], dtype=bool)
    for o, v in (best.get("max") or {}).items():
        ok &= Y[:, :, list(onames).index(o)] <= float(v)
    for o, v in (best.get("min") or {}).items():
        ok &= Y[:, :, list(onames).index(o)] >= float(v)
    return ok


def _criterion(Y: np.ndarray, best: Mapping, onames: Sequence[str]) -> np.ndarray:
    """(draws, rules): the best criterion as a loss (lower is better), +inf where a constraint fails."""
    sense = "minimise" if "minimise" in best else "maximise"
    v = Y[:, :, list(onames).index(best[sense])]
    v = v if sense == "minimise" else -v
    return np.where(_feasible(Y, best, onames), v, np.inf)


def _p_best(Y: np.ndarray, best: Mapping, onames: Sequence[str]) -> np.ndarray:
    """Per rule, the share of posterior draws in which it is the best (ties shared)."""
    c = _criterion(Y, best, onames)
    winners = c == c.min(axis=1, keepdims=True)
    winners &= np.isfinite(c)
    share = winners / np.maximum(winners.sum(axis=1, keepdims=True), 1)
    return share.mean(axis=0)


def _beats_next(Y: np.ndarray, tab: pd.DataFrame, row: int, best: Mapping, onames: Sequence[str]) -> dict:
    """The posterior probability that the best rule (by median) beats the next best (by median)."""
    c = _criterion(Y, best, onames)
    med = np.median(c, axis=0)
    i = tab.index.get_loc(row)
    order = [j for j in np.argsort(med) if j != i and np.isfinite(med[j])]
    if not order:
        return {}
    j = order[0]
    return {"next_best": str(tab["label"].iloc[j]), "p_beats_next": float(np.mean(c[:, i] < c[:, j]))}


def _finding_band(loss: np.ndarray, during: pd.Series) -> str:
    """The 90% posterior band of the difference in ``loss`` (draws, rules) between rules that start while firms
    deleverage and rules that wait."""
    m = during.to_numpy(bool)
    if not m.any() or m.all():
        return ""
    diff = loss[:, m].mean(axis=1) - loss[:, ~m].mean(axis=1)
    lo, med, hi = np.percentile(diff, [5, 50, 95])
    return (
        f"; over {len(diff)} posterior draws the difference is {med:+.1f} (90% band {lo:+.1f} to {hi:+.1f}), "
        f"positive in {np.mean(diff > 0):.0%} of them"
    )


def _finding(tab: pd.DataFrame, window, start: str, loss: str) -> str:
    """Rules that start while firms still deleverage vs rules that wait, same family and pace."""
    a, b = window
    during = tab[start].between(a, b)
    if not during.any() or during.all():
        return (
            f"firms deleverage {a:.1f}-{b:.1f} in the no-consolidation run; every rule starts "
            f"{'inside' if during.all() else 'outside'} that window, so the grid cannot compare them"
        )
    m1, m0 = tab.loc[during, loss].mean(), tab.loc[~during, loss].mean()
    return (
        f"firms deleverage {a:.1f}-{b:.1f} in the no-consolidation run: rules that consolidate while they do "
        f"cost {m1:.1f} on average in {loss}, rules that wait {m0:.1f} ({m1 - m0:+.1f}; "
        f"{int(during.sum())} vs {int((~during).sum())} rules)"
    )


def compute_sequence(
    study: StudyConfig | str | Path,
    *,
    designs: Sequence[str] | None = None,
    store: str | Path,
    execution: Execution = Execution(),
    posterior: PosteriorSample | None = None,
) -> SequenceResult:
    """Run (or resume) the study's sequencing designs in the chunk store ``store``; write nothing else.

    With ``posterior`` (draws of the model's parameters, :func:`sdmodel.estimate.estimation.load_posterior`)
    every rule is run at every draw: the tables hold each outcome's posterior median (the column
    itself) and its 5% and 95% quantiles (``<outcome> q5``, ``<outcome> q95``), ``p_best`` the
    posterior probability that the rule is the design's best, and the best rule its probability of
    beating the next best (by median); a finding carries its 90% band.

    Each design's rules are evaluated in chunks saved under ``store/<design>`` (as a sensitivity
    study's are), so an interrupted run resumes.  :func:`sdmodel.report.rundirs.run_sequence` computes
    and writes the tables, heat maps, summary and manifest.
    """
    t0 = time.perf_counter()
    cfg = study if isinstance(study, StudyConfig) else load_study(study)
    ds = load_designs(cfg, designs)  # validated before anything runs
    chunk = execution.chunk_size or cfg.chunk_size
    execution = dataclasses.replace(execution, chunk_size=chunk)
    key = study_key(
        "sequence", cfg.hash, cfg.spec_hash, [d.name for d in ds], chunk, posterior.digest if posterior else None
    )
    if posterior is not None:
        posterior.check_for(cfg.model, cfg.scenario, cfg.source)
    store = claim_store(store, key, {"kind": "sequence", "study": cfg.source, "designs": [d.name for d in ds]})
    onames = [o.name for o in cfg.outcomes]
    tables, best, findings, stats = {}, {}, {}, {}
    for d in ds:
        X = d.rows[d.params].to_numpy(dtype=float)
        names = list(d.params)
        K = 1
        if posterior is not None:  # every rule at every draw: draw-major rows (draw k, rule r) -> k * R + r
            extra = [n for n in posterior.names if n not in d.params]
            cols = [posterior.names.index(n) for n in extra]
            K = len(posterior.X)
            X = np.hstack([np.tile(X, (K, 1)), np.repeat(posterior.X[:, cols], len(d.rows), axis=0)])
            names += extra
        if execution.progress:
            progress_line(
                f"sequence {cfg.name}, design {d.name}: {len(d.rows)} rules"
                + (f" at {K} posterior draws" if posterior is not None else "")
                + f", {len(X)} runs in chunks of up to {chunk}; chunks saved in {store / d.name} are reused"
            )
        ev = ModelEvaluator.for_study(cfg, names, time_varying=False)
        arrays, st = evaluate_chunks(ev, X, store / d.name, key, execution=execution, desc=f"sequence {d.name}")
        check_failures(arrays, X, names, f"sequencing design {d.name}")
        Y = arrays["Y"].reshape(K, len(d.rows), len(onames))
        tab = d.rows.copy()
        for j, o in enumerate(onames):
            tab[o] = np.median(Y[:, :, j], axis=0)
            if posterior is not None:
                tab[f"{o} q5"], tab[f"{o} q95"] = np.percentile(Y[:, :, j], [5, 95], axis=0)
        if posterior is not None and d.best:
            tab["p_best"] = _p_best(Y, d.best, onames)
        if d.deleveraging:
            win = _deleveraging_window(cfg, d, d.deleveraging)
            tab["starts_while_deleveraging"] = tab[d.start].between(*win)
            loss = d.best.get("minimise") or onames[0]
            assert d.start is not None  # load_designs refuses deleveraging: without start:
            findings[d.name] = _finding(tab, win, d.start, loss)
            if posterior is not None:
                findings[d.name] += _finding_band(Y[:, :, onames.index(loss)], tab["starts_while_deleveraging"])
        tables[d.name], stats[d.name] = tab, st
        b = _best(tab, d.best, onames)
        if b:
            if posterior is not None and "row" in b:
                b.update(_beats_next(Y, tab, b["row"], d.best, onames))
                i = tab.index.get_loc(b["row"])
                b["bands"] = {
                    o: [float(np.percentile(Y[:, i, j], 5)), float(np.percentile(Y[:, i, j], 95))]
                    for j, o in enumerate(onames)
                }
            best[d.name] = b
    return SequenceResult(
        cfg.name,
        tables,
        best,
        findings,
        stats,
        time.perf_counter() - t0,
        Path(store),
        designs={d.name: d for d in ds},
        outcome_names=tuple(onames),
        study=dict(
            study=cfg.source,
            study_hash=cfg.hash,
            spec_hash=cfg.spec_hash,
            key=key,
            solver={"method": cfg.method or "rk4", "dt": cfg.dt},
            outcomes={o.name: o.doc for o in cfg.outcomes},
            posterior=None if posterior is None else {"source": posterior.source, "draws": len(posterior.X)},
        ),
        posterior=None if posterior is None else posterior.source,
        draws=0 if posterior is None else len(posterior.X),
    )
