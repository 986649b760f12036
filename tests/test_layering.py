"""The pipeline is one-way: a lower layer never imports a higher one."""

import ast
from pathlib import Path

import sdmodel

ORDER = ["errors", "leverage", "expr", "results", "translate", "spec", "algebra", "accounting", "cache", "compiler",
         "simulation", "io", "export", "data", "calibration", "study", "sensitivity", "sequencing", "report", "cli"]


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
