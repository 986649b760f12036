"""Issue 26, done-means 4: the model's fiscal multiplier. The 10-year cumulative output effect of a temporary
one-year fiscal impulse (government spending 1% of potential output for one year, from 1984.0 and 1996.0; real
output gained over ten years per unit of the impulse), and the 3-year one of the facts, at the installed
parameters, over independent +-5% perturbations of the 15 estimated parameters, and (with a directory that
``sdmodel estimate japan`` wrote) over posterior draws. The experiments are models/bsr/facts.py's fisc84/fisc96.

Run: python models/bsr/measures/japan_multiplier.py [--posterior RUN_DIR] [--draws N] [--perturb N] [--set NAME=VALUE ...] [--config japan_respec]
(--set changes a parameter of the installed scenario in every row, e.g. --set rho_h=0.1 for decaying hysteresis)
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np

from sdmodel import compile_model, load_model
from sdmodel.estimate.calibration import load_config

MEASURES = ("multiplier84_10y", "multiplier96_10y", "multiplier84", "multiplier96")


def _facts():
    spec = importlib.util.spec_from_file_location("bsr_facts", Path(__file__).resolve().parents[1] / "facts.py")
    facts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(facts)
    return facts


def _row(label, f, ok):
    cells = []
    for m in MEASURES:
        v = f[m][ok]
        if len(v) == 1:
            cells.append(f"{v[0]:17.2f}")
        else:
            q5, q50, q95 = np.quantile(v, [0.05, 0.5, 0.95])
            cells.append(f"{q50:6.2f} [{q5:4.2f}, {q95:4.2f}]")
    print(f"{label:34s} {ok.sum():5d} " + " ".join(cells))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posterior", help="an estimation directory of sdmodel estimate japan (posterior.nc)")
    ap.add_argument("--draws", type=int, default=200, help="posterior draws (default 200)")
    ap.add_argument("--perturb", type=int, default=100, help="+-5%% perturbations (default 100)")
    ap.add_argument("--config", default="japan", help="calibration config: its scenario and estimated names")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="parameters changed from the installed scenario in every run")
    args = ap.parse_args(argv)
    facts = _facts()
    experiments = facts.EXPERIMENTS  # the measures need every experiment of the facts (7 runs per draw)
    config = load_config(args.config)
    japan = load_model("bsr", scenario=config.scenario)
    if args.set:
        changes = dict(kv.split("=", 1) for kv in args.set)
        unknown = sorted(set(changes) - set(japan.parameters))
        if unknown:
            ap.error(f"--set: {', '.join(unknown)} is not a parameter of bsr")
        japan = japan.with_params({k: float(v) for k, v in changes.items()})
        print("with " + ", ".join(f"{k} = {v}" for k, v in changes.items()))
    cm = compile_model(japan)
    names = [p.name for p in config.parameters]
    x = np.array([japan.parameters[k].value for k in names])
    print("10-year and 3-year cumulative multipliers of a one-year impulse of 1% of potential output")
    print("(median [5%, 95%] over the runs that completed)\n")
    print(f"{'parameters':34s} {'runs':>5s} " + " ".join(f"{m:>17s}" for m in MEASURES))
    with np.errstate(invalid="ignore", divide="ignore"):
        f = facts.japan_facts(cm, x[None, :], names, experiments)
        _row(f"installed ({config.scenario}.params.yaml)", f, f["ok"])
        rng = np.random.default_rng(1)
        X = x * (1 + rng.uniform(-0.05, 0.05, (args.perturb, len(x))))
        f = facts.japan_facts(cm, X, names, experiments)
        _row("+-5% perturbations", f, f["ok"])
        if args.posterior:
            from sdmodel.estimate.estimation import load_posterior

            post = load_posterior(args.posterior, draws=args.draws, seed=0)
            cols = [list(post.names).index(n) for n in names]
            f = facts.japan_facts(cm, post.X[:, cols], names, experiments)
            _row(f"posterior ({Path(args.posterior).name})", f, f["ok"])


if __name__ == "__main__":
    main()
