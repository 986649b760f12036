"""Issue 26: the Japan stylised facts of tests/test_bsr.py (models/bsr/facts.py measures), at the shipped
parameters and with each mechanism switched off, printed with whether each run completed.

Run: python models/bsr/measures/japan_facts.py [--scenario japan_respec]
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np

from sdmodel import compile_model, load_model

SWITCHES = {"on": {}, "dm_off": dict(dm_on=0), "extrap_off": dict(extrap_on=0), "kappa_0": dict(kappa=0),
            "npl_flat": dict(npl1=0), "recap_off": dict(recap_on=0), "no_crowding": dict(tp1=0)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="japan", help="scenario of bsr (default japan)")
    scenario = ap.parse_args(argv).scenario
    here = Path(__file__).resolve().parents[1]  # models/bsr
    spec = importlib.util.spec_from_file_location("bsr_facts", here / "facts.py")
    facts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(facts)
    japan = load_model("bsr", scenario=scenario)
    names = sorted({k for sw in SWITCHES.values() for k in sw})
    X = np.array([[sw.get(n, japan.parameters[n].value) for n in names] for sw in SWITCHES.values()])
    f = facts.japan_facts(compile_model(japan), X, names, {**facts.EXPERIMENTS, **facts.RECAP})
    keys = [k for k in f if k != "ok"]
    print("switch        " + " ".join(f"{k[:14]:>14s}" for k in ["ok"] + keys))
    for i, sw in enumerate(SWITCHES):
        print(f"{sw:13s} " + " ".join(f"{float(f[k][i]):14.4g}" for k in ["ok"] + keys))


if __name__ == "__main__":
    main()
