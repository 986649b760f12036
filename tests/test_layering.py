"""The pipeline is one-way: a lower layer never imports a higher one."""

import ast
from pathlib import Path

import sdmodel

ORDER = ["errors", "inputs", "manifest", "validate", "options", "leverage", "expr", "results", "translate", "spec", "algebra", "accounting", "cache", "compiler",
         "simulation", "io", "plots", "export", "data", "calibration", "study", "sensitivity", "sequencing", "report", "cli"]


def test_no_module_imports_a_higher_layer():
    pkg = Path(sdmodel.__file__).parent
    rank = {m: i for i, m in enumerate(ORDER)}
    bad = []
    for f in pkg.glob("*.py"):
        mod = f.stem
        if mod not in rank:
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                target = node.module.split(".")[0]
                if target in rank and rank[target] > rank[mod]:
                    bad.append(f"{mod} imports {target}")
    assert not bad, bad


def test_every_module_has_a_layer():
    pkg = Path(sdmodel.__file__).parent
    mods = {f.stem for f in pkg.glob("*.py")} - {"__init__", "__main__"}
    assert mods <= set(ORDER), mods - set(ORDER)


def test_import_sdmodel_loads_no_upper_stage_library():
    """`import sdmodel` is the core pipeline: pandas, matplotlib and scipy.interpolate load on first use."""
    import subprocess
    import sys
    code = ("import sys, sdmodel; print(sorted(m for m in ('pandas', 'matplotlib', 'scipy.interpolate') "
            "if m in sys.modules)); sdmodel.calibrate; sdmodel.data; print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "True"]
