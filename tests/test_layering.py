"""The pipeline is one-way: a lower layer never imports a higher one, and no module reaches into
another module's private (underscored) names.

Every import of sdmodel counts, wherever it is written: relative at any level (``from .x import y``,
``from . import x``, ``from ..x import y``), absolute (``import sdmodel.x``, ``from sdmodel.x import
y``, ``from sdmodel import x``), and inside functions, ``try`` blocks and ``if TYPE_CHECKING:``.
"""

import ast
from pathlib import Path
from typing import NamedTuple

import sdmodel

ORDER = ["errors", "inputs", "manifest", "validate", "options", "priors", "leverage", "expr", "results", "translate", "spec", "algebra", "accounting", "cache", "compiler",
         "kernel", "simulation", "io", "store", "plots", "export", "data", "calibration", "study", "estimation", "sensitivity", "sequencing", "rundirs",
         "report", "cli"]

PKG = Path(sdmodel.__file__).parent
PACKAGE = "sdmodel"  # an import of the package itself (its __init__), not of one of its modules
#: What a module may import from the package itself: ``__init__`` re-exports every layer, so
#: importing it from a module is importing the top layer; only ``__version__`` is safe, as
#: ``__init__`` sets it before it imports anything.
FROM_PACKAGE = {"__version__"}


class Import(NamedTuple):
    line: int
    target: str  # the sdmodel module imported (or from), or PACKAGE
    name: str | None  # the name taken from it (``from target import name``), None for the module itself


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def imports_of(source: str, modules: set[str]) -> list[Import]:
    """Every import of sdmodel in the source of a module directly in the package (``modules``:
    the names of the package's modules, to tell ``from . import x`` of a module from a name)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == PACKAGE:
                    out.append(Import(node.lineno, parts[1] if len(parts) > 1 else PACKAGE, None))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != PACKAGE:
                    continue  # a third-party or standard-library import
                parts = parts[1:]
            elif node.level == 1:  # from the package itself: sdmodel/<module>.py
                parts = node.module.split(".") if node.module else []
            else:
                out.append(Import(node.lineno, f"{'.' * node.level}{node.module or ''} (outside sdmodel)", None))
                continue
            if parts:  # from sdmodel.x import y / from .x import y
                out += [Import(node.lineno, parts[0], a.name) for a in node.names]
            else:  # from sdmodel import x / from . import x: a module or a name of __init__
                out += [
                    Import(node.lineno, a.name, None) if a.name in modules else Import(node.lineno, PACKAGE, a.name)
                    for a in node.names
                ]
    return out


def module_aliases(source: str, modules: set[str]) -> set[str]:
    """The local names bound to sdmodel or its modules (``from . import spec``, ``import sdmodel.spec as s``,
    ``import sdmodel``)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.asname or PACKAGE for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and ((node.level == 1 and not node.module) or node.module == PACKAGE):
            out |= {a.asname or a.name for a in node.names if a.name in modules}
    return out


def private_uses(source: str, aliases: set[str]) -> list[tuple[int, str]]:
    """``alias._helper`` (or ``sdmodel.spec._helper``) through a module imported whole."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain.insert(0, value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in aliases and any(map(_private, chain)):
            first = next(i for i, part in enumerate(chain) if _private(part))
            out.append((node.lineno, ".".join([value.id, *chain[: first + 1]])))
    return sorted(set(out))  # spec._f.x and its spec._f: once


def _sources() -> dict[str, str]:
    return {f.stem: f.read_text() for f in sorted(PKG.glob("*.py"))}


def test_the_import_finder_sees_every_form():
    src = "\n".join(
        [
            "import os",
            "from . import spec, __version__",
            "from .expr import parse as _p",
            "from sdmodel.io import _lock",
            "import sdmodel.cli",
            "import sdmodel",
            "def f():",
            "    from .report import write_report",
            "    try:",
            "        from sdmodel import simulation as sim",
            "    except ImportError:",
            "        pass",
            "from ..other import x",
            "from .. import y",
        ]
    )
    mods = {"spec", "expr", "io", "cli", "report", "simulation"}
    assert sorted(imports_of(src, mods)) == sorted([
        Import(2, "spec", None),
        Import(2, PACKAGE, "__version__"),
        Import(3, "expr", "parse"),
        Import(4, "io", "_lock"),
        Import(5, "cli", None),
        Import(6, PACKAGE, None),
        Import(13, "..other (outside sdmodel)", None),
        Import(14, ".. (outside sdmodel)", None),
        Import(8, "report", "write_report"),
        Import(10, "simulation", None),
    ])
    aliases = module_aliases(src, mods)
    assert aliases == {"spec", "sim", PACKAGE}
    uses = "spec._read(1).x; sim.simulate(); sdmodel.io._lock; spec.x._y; other._z; spec.__doc__"
    assert private_uses(uses, aliases) == [(1, "sdmodel.io._lock"), (1, "spec._read"), (1, "spec.x._y")]


def test_no_module_imports_a_higher_layer():
    rank = {m: i for i, m in enumerate(ORDER)}
    sources = _sources()
    bad = []
    for mod, src in sources.items():
        if mod not in rank:
            continue  # __init__ (the top: it re-exports every layer) and __main__
        for imp in imports_of(src, set(sources)):
            where = f"{mod}.py:{imp.line}"
            if imp.target == PACKAGE:
                if imp.name not in FROM_PACKAGE:
                    bad.append(f"{where} imports {imp.name or 'the package'} from sdmodel/__init__ (the top layer)")
            elif imp.target not in rank:
                bad.append(f"{where} imports {imp.target}, which is not a module with a layer")
            elif rank[imp.target] > rank[mod]:
                bad.append(f"{where} imports {imp.target}, a higher layer")
    assert not bad, bad


def test_no_module_uses_another_modules_private_names():
    """Helpers one module shares with another are public there, with a docstring; the rest stay home."""
    sources = _sources()
    bad = []
    for mod, src in sources.items():
        for imp in imports_of(src, set(sources)):
            if _private(imp.target) or (imp.name is not None and _private(imp.name)):
                bad.append(f"{mod}.py:{imp.line} imports {imp.name or imp.target} from {imp.target}")
        bad += [f"{mod}.py:{line} uses {use}" for line, use in private_uses(src, module_aliases(src, set(sources)))]
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
