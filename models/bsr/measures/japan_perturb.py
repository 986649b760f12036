"""Issue 26, done-means 3 (part): the share of independent +-5% perturbations of Japan's estimated parameters
that keep each stylised fact of tests/test_bsr.py (models/bsr/facts.py measures), and the firms' net-saver
count. Run: python models/bsr/measures/japan_perturb.py [draws] [scale] [config]  (config: japan, or japan_respec)
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from sdmodel import compile_model, load_model
from sdmodel.estimate.calibration import load_config


def main(n=100, scale=0.05, seed=1, config="japan"):
    here = Path(__file__).resolve().parents[1]  # models/bsr
    spec = importlib.util.spec_from_file_location("bsr_facts", here / "facts.py")
    facts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(facts)
    cfg = load_config(config)
    japan = load_model("bsr", scenario=cfg.scenario)
    names = [p.name for p in cfg.parameters]
    x = np.array([japan.parameters[k].value for k in names])
    rng = np.random.default_rng(seed)
    X = np.vstack([x, x * (1 + rng.uniform(-scale, scale, (n, len(x))))])
    f = facts.japan_facts(compile_model(japan), X, names, {**facts.EXPERIMENTS, **facts.RECAP})
    checks = {
        "land bubble": (1989 <= f["land_peak"]) & (f["land_peak"] < 1993) & (f["land_rise"] >= 0.5) & (f["land_fall"] >= 0.4),
        "firm debt peak 1991-96, falls 20": (1991 <= f["firm_peak"]) & (f["firm_peak"] < 1997) & (f["firm_fall"] >= 20),
        "monetary impotence": f["credit_ratio"] >= 3,
        "1996 multiplier larger": f["multiplier96"] > f["multiplier84"],
        "costly 1997 consolidation": (f["growth98"] < 0) & (f["loss97"] > f["loss06"]),
        ">= 5 deflation years": f["deflation_years"] >= 5,
        "NPL peak 1995-2002": (1995 <= f["npl_peak"]) & (f["npl_peak"] < 2003) & (f["npl_rise"] >= 1),
        "firms net savers >= 14 of FY1998-2015": f["firm_surplus_years"] >= 14,
    }
    ok = f["ok"]
    print(f"{n} draws, each estimated parameter x (1 + U(-{scale}, {scale})); runs completed: {ok[1:].mean():.0%}")
    print(f"{'fact':40s} {'at the mode':>11s} {'share of draws':>15s}")
    for k, v in checks.items():
        v = np.where(ok, v, False)
        print(f"{k:40s} {str(bool(v[0])):>11s} {v[1:].mean():15.0%}")
    allf = np.all([np.where(ok, v, False) for k, v in checks.items() if v[0]], axis=0)
    print(f"{'every fact that holds at the mode':40s} {str(bool(allf[0])):>11s} {allf[1:].mean():15.0%}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, float(sys.argv[2]) if len(sys.argv) > 2 else 0.05,
         config=sys.argv[3] if len(sys.argv) > 3 else "japan")
