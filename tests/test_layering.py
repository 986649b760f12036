"""The pipeline is one-way: a lower stage never imports a higher one, and no module reaches into
another module's private (underscored) names.

The package is laid out by stage, bottom to top: ``core`` (errors, input files, options, manifests,
atomic writing), ``model`` (expressions, model files, accounting), ``engine`` (compiler, kernel,
simulation), ``interop`` (export to Vensim/XMILE), ``data`` (historical data), ``estimate``,
``study`` (sensitivity, sequencing), ``report`` (figures, run directories, the report), and the
command line on top. Inside a stage the modules are ordered too.

Every import of sdmodel counts, wherever it is written: relative at any level (``from .x import y``,
``from . import x``, ``from ..x import y``), absolute (``import sdmodel.x.y``, ``from sdmodel.x.y import
z``, ``from sdmodel.x import y``), and inside functions, ``try`` blocks and ``if TYPE_CHECKING:``.
"""

import ast
from pathlib import Path
from typing import NamedTuple

import sdmodel

#: The stages, bottom to top, each with its modules bottom to top; "cli" is the top.
STAGES = {
    "core": ["errors", "inputs", "html", "validate", "options", "manifest", "files", "store"],
    "model": ["names", "expr", "translate", "spec", "checks", "algebra", "accounting"],
    "engine": ["results", "cache", "codegen", "compiler", "lanes", "kernel", "simulation"],
    "interop": ["export"],
    "data": ["readers", "leverage"],
    "estimate": ["priors", "calibration", "estimation"],
    "study": ["base", "sensitivity", "sequencing"],
    "report": ["plots", "rundirs", "views"],
}
#: Every module by its dotted name under sdmodel, bottom to top; a stage's ``__init__`` (its package,
#: which may re-export its modules) ranks just above its modules.
ORDER = [name for stage, mods in STAGES.items() for name in (*(f"{stage}.{m}" for m in mods), stage)] + ["cli"]

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


def imports_of(source: str, modules: set[str], here: str = "") -> list[Import]:
    """Every import of sdmodel in the source of the module ``here`` (dotted under sdmodel, e.g.
    ``model.spec``; ``modules``: the dotted names of the package's modules and stages, to tell
    ``from sdmodel.core import files`` of a module from a name)."""
    package = here.split(".")[:-1]  # the package holding the module: [] for sdmodel/x.py
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == PACKAGE:
                    out.append(Import(node.lineno, ".".join(parts[1:]) or PACKAGE, None))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != PACKAGE:
                    continue  # a third-party or standard-library import
                parts = parts[1:]
            else:  # relative: from the module's own package (level 1) or one above it (level 2, ...)
                if node.level - 1 > len(package):
                    out.append(Import(node.lineno, f"{'.' * node.level}{node.module or ''} (outside sdmodel)", None))
                    continue
                parts = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            base = ".".join(parts)
            for a in node.names:
                sub = f"{base}.{a.name}" if base else a.name
                if sub in modules:  # from sdmodel.core import files / from . import spec: a module
                    out.append(Import(node.lineno, sub, None))
                else:  # a name taken from a module, from a stage's __init__ or from sdmodel itself
                    out.append(Import(node.lineno, base or PACKAGE, a.name))
    return out


def module_aliases(source: str, modules: set[str], here: str = "") -> set[str]:
    """The local names bound to sdmodel or its modules (``from sdmodel.model import spec``,
    ``import sdmodel.model.spec as s``, ``import sdmodel``)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.asname or PACKAGE for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            found = imports_of(ast.unparse(node), modules, here)
            out |= {
                a.asname or a.name
                for imp, a in zip(found, node.names)
                if imp.name is None and imp.target in modules  # a module, not a name or something outside sdmodel
            }
    return out


def private_uses(source: str, aliases: set[str]) -> list[tuple[int, str]]:
    """``alias._helper`` (or ``sdmodel.model.spec._helper``) through a module imported whole."""
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


def _dotted(path: Path) -> str:
    parts = path.relative_to(PKG).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or PACKAGE


def _sources() -> dict[str, str]:
    """Every module's source by its dotted name under sdmodel (a stage's __init__ by the stage's name)."""
    return {_dotted(f): f.read_text() for f in sorted(PKG.rglob("*.py"))}


def _names(sources) -> set[str]:
    return set(sources) - {PACKAGE}


def test_the_import_finder_sees_every_form():
    src = "\n".join(
        [
            "import os",
            "from . import spec, __version__",
            "from .expr import parse as _p",
            "from sdmodel.core.files import _lock",
            "import sdmodel.cli",
            "import sdmodel",
            "def f():",
            "    from ..report.views import build_report",
            "    try:",
            "        from sdmodel.engine import simulation as sim",
            "    except ImportError:",
            "        pass",
            "from ...other import x",
            "from .. import __version__ as v",
            "from sdmodel import load_model",
            "from sdmodel.data import build",
            "from .. import cli",
        ]
    )
    mods = {"model.spec", "model.expr", "core.files", "cli", "report.views", "engine.simulation", "data", "data.readers"}
    assert sorted(imports_of(src, mods, "model.accounting")) == sorted([
        Import(2, "model.spec", None),
        Import(2, "model", "__version__"),
        Import(3, "model.expr", "parse"),
        Import(4, "core.files", "_lock"),
        Import(5, "cli", None),
        Import(6, PACKAGE, None),
        Import(8, "report.views", "build_report"),
        Import(10, "engine.simulation", None),
        Import(13, "...other (outside sdmodel)", None),
        Import(14, PACKAGE, "__version__"),
        Import(15, PACKAGE, "load_model"),
        Import(16, "data", "build"),
        Import(17, "cli", None),
    ])
    aliases = module_aliases(src, mods, "model.accounting")
    assert aliases == {"spec", "sim", "cli", PACKAGE}
    uses = "spec._read(1).x; sim.simulate(); sdmodel.core.files._lock; spec.x._y; other._z; spec.__doc__"
    assert private_uses(uses, aliases) == [(1, "sdmodel.core.files._lock"), (1, "spec._read"), (1, "spec.x._y")]


def test_no_module_imports_a_higher_layer():
    rank = {m: i for i, m in enumerate(ORDER)}
    sources = _sources()
    bad = []
    for mod, src in sources.items():
        if mod not in rank:
            continue  # sdmodel/__init__ (the top: it re-exports every layer) and __main__
        for imp in imports_of(src, _names(sources), mod):
            where = f"{mod}:{imp.line}"
            if imp.target == PACKAGE:
                if imp.name not in FROM_PACKAGE:
                    bad.append(f"{where} imports {imp.name or 'the package'} from sdmodel/__init__ (the top layer)")
            elif imp.target not in rank:
                bad.append(f"{where} imports {imp.target}, which is not a module with a layer")
            elif rank[imp.target] > rank[mod]:
                bad.append(f"{where} imports {imp.target}, a higher layer")
    assert not bad, bad


def test_a_stage_never_imports_a_higher_stage():
    """The stage order on its own, so that a reordering of ORDER inside a stage cannot hide a violation."""
    stages = [*STAGES, "cli"]
    sources = _sources()
    bad = []
    for mod, src in sources.items():
        if mod in (PACKAGE, "__main__"):
            continue
        for imp in imports_of(src, _names(sources), mod):
            own, other = mod.split(".")[0], imp.target.split(".")[0]
            if other in stages and stages.index(other) > stages.index(own):
                bad.append(f"{mod}:{imp.line} ({own}) imports {imp.target} ({other}), a higher stage")
    assert not bad, bad


def test_no_module_uses_another_modules_private_names():
    """Helpers one module shares with another are public there, with a docstring; the rest stay home."""
    sources = _sources()
    bad = []
    for mod, src in sources.items():
        for imp in imports_of(src, _names(sources), mod):
            if any(map(_private, imp.target.split("."))) or (imp.name is not None and _private(imp.name)):
                bad.append(f"{mod}:{imp.line} imports {imp.name or imp.target} from {imp.target}")
        aliases = module_aliases(src, _names(sources), mod)
        bad += [f"{mod}:{line} uses {use}" for line, use in private_uses(src, aliases)]
    assert not bad, bad


def test_every_module_has_a_layer_and_every_stage_is_a_package():
    mods = _names(_sources()) - {"__main__"}
    assert mods <= set(ORDER), mods - set(ORDER)
    assert not {f.stem for f in PKG.glob("*.py")} - {"__init__", "__main__", "cli"}, "modules outside the stages"
    for stage in STAGES:
        assert (PKG / stage / "__init__.py").is_file(), stage


def test_import_sdmodel_loads_no_upper_stage_library():
    """`import sdmodel` is the core pipeline: pandas, matplotlib and scipy.interpolate load on first use."""
    import subprocess
    import sys
    code = ("import sys, sdmodel; print(sorted(m for m in ('pandas', 'matplotlib', 'scipy.interpolate') "
            "if m in sys.modules)); sdmodel.calibrate; sdmodel.data; print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "True"]
