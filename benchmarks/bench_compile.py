#!/usr/bin/env python
"""Cold compile times: the accounting stage (every proof) plus code generation, per model.

For each model, ``compile_model(model, cache=False)`` after clearing the memoised block
solutions (``sdmodel.model.algebra.solve_block``), so nothing is reused from an earlier compile; best of
``--repeats`` (default 3), wall and CPU seconds, and how each row and column was decided (proven
symbolically, verified numerically, monitored). Models: sim, sim_discrete, pc, lp, bmw, bsr (Japan
scenario), G&L REG, OPEN and DIS (``models/reg``, ``models/open``, ``models/dis``), INSOUT
written from the book (``models/insout``, 80 equations), GROWTH (``models/growth``) and SIM with a
chain of 8 nested ``if_()`` switches (the construct that made the accounting stage blow up).

    python benchmarks/bench_compile.py                  # all models
    python benchmarks/bench_compile.py pc insout        # some of them
    python benchmarks/bench_compile.py --json out.json  # also write the figures as JSON
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_compile.py   # another version's sdmodel

Issue 24's targets (2 cores): a G&L model of the size of SIM to OPEN within 5 s, INSOUT and GROWTH
within 30 s, bsr within 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))  # tests/ is a package: its model builders are shared

from _common import best_of, machine_info  # noqa: E402

import sdmodel as sd  # noqa: E402
from sdmodel.model import algebra  # noqa: E402
from sdmodel.model.spec import _read_yaml  # noqa: E402


def _switch_chain(n: int):
    """SIM with consumption through n nested switches: the model of tests/test_algebra_lazy.py."""
    from tests.test_algebra_lazy import _switch_chain as text

    return sd.model_from_dict(_read_yaml(text(n), f"chain{n}"))


MODELS = {
    "sim": lambda: sd.load_model(ROOT / "models" / "sim" / "model.yaml"),
    "sim_discrete": lambda: sd.load_model(ROOT / "models" / "sim_discrete" / "model.yaml"),
    "pc": lambda: sd.load_model(ROOT / "models" / "pc" / "model.yaml"),
    "lp": lambda: sd.load_model(ROOT / "models" / "lp" / "model.yaml"),
    "bmw": lambda: sd.load_model(ROOT / "models" / "bmw" / "model.yaml"),
    "bsr": lambda: sd.load_model(ROOT / "models" / "bsr" / "model.yaml", scenario="japan"),
    "insout": lambda: sd.load_model(ROOT / "models" / "insout" / "model.yaml"),
    "growth": lambda: sd.load_model(ROOT / "models" / "growth" / "model.yaml"),
    "reg": lambda: sd.load_model(ROOT / "models" / "reg" / "model.yaml"),
    "open": lambda: sd.load_model(ROOT / "models" / "open" / "model.yaml"),
    "dis": lambda: sd.load_model(ROOT / "models" / "dis" / "model.yaml"),
    "chain8": lambda: _switch_chain(8),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=list(MODELS), help=f"of {', '.join(MODELS)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = []
    for name in args.models:
        model = MODELS[name]()

        def cold(model=model):
            algebra.solve_block.cache_clear()
            return sd.compile_model(model, cache=False, check=False)

        cm, tm = best_of(cold, args.repeats, warm_up=False)
        statuses = Counter(c.status for c in cm.report.checks)
        rows.append(
            {
                "model": name,
                "equations": len(model.equations),
                "wall_s": tm["wall_s"],
                "cpu_s": tm["cpu_s"],
                "all_wall_s": tm["all_wall_s"],
                "checks": dict(statuses),
                "ok": cm.report.ok,
            }
        )
        r = rows[-1]
        print(
            f"{name:14s} {r['equations']:4d} eqs  wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
            f"{', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_info(), "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
