"""sdmodel: stock-flow-consistent system-dynamics models, checked, compiled and batched.

The pipeline, one verb per stage::

    model  = sdmodel.load_model("sim")          # spec: YAML -> validated, immutable Model
    report = sdmodel.check_accounting(model)    # accounting: derive stock dynamics, prove rows/columns
    cm     = sdmodel.compile_model(model)       # compiler: ordered blocks -> batched numpy code
    res    = sdmodel.simulate(cm)               # one run -> SimulationResult (.to_frame())
    batch  = sdmodel.simulate_batch(cm, X, names)   # B x P parameter sets -> BatchResult (.to_xarray())
    fit    = sdmodel.calibrate("japan")         # calibration: config in calibration/ -> CalibrationResult
    path   = sdmodel.write_calibration("runs/fit", fit)  # its run directory (sdmodel.report.rundirs), atomically
    text   = sdmodel.export_model(model, "vensim")  # a Vensim .mdl (or "xmile"); load_model("x.mdl") reads one

Beside the pipeline: ``sdmodel.data.leverage`` (debt over four quarters of GDP, monthly leverage,
component aggregates) and ``sdmodel.data`` (readers of the publishers' files, the builder of
the calibration target data).
"""

__version__ = "0.1.0"

from sdmodel.core.errors import (
    AccountingError,
    CompileError,
    ConfigError,
    DataError,
    ExpressionError,
    ExtrapolationWarning,
    MissingDependencyError,
    MissingInputError,
    OutputError,
    SdmodelError,
    SimulationError,
    SpecError,
    UnbalancedStartWarning,
)
from sdmodel.core.options import Execution, Pool, SaveAt, Solver
from sdmodel.engine.cache import CacheWarning, set_cache_dir

# Everything else loads on first use (PEP 562), so that `import sdmodel` costs a fraction of a second:
# the model stages pull in sympy and networkx, the upper ones pandas, scipy.interpolate and matplotlib.
_LAZY = {
    "AccountingReport": "model.checks",
    "Check": "model.checks",
    "check_accounting": "model.accounting",
    "CompiledModel": "engine.compiler",
    "compile_model": "engine.compiler",
    "BatchResult": "engine.results",
    "SimulationResult": "engine.results",
    "simulate": "engine.simulation",
    "simulate_batch": "engine.simulation",
    "Model": "model.spec",
    "builtin_models": "model.spec",
    "load_model": "model.spec",
    "model_from_dict": "model.spec",
    "CalibrationConfig": "estimate.calibration",
    "CalibrationResult": "estimate.calibration",
    "calibrate": "estimate.calibration",
    "write_calibration": "report.rundirs",
    "install_parameters": "report.rundirs",
    "run_sensitivity": "report.rundirs",
    "write_sensitivity": "report.rundirs",
    "run_sequence": "report.rundirs",
    "write_sequence": "report.rundirs",
    "export_model": "interop.export",
    "write_export": "interop.export",
}
#: Modules offered as attributes of the package: the stages (``sdmodel.engine``, ...) and ``sdmodel.leverage``.
_MODULES = {
    **{stage: stage for stage in ("core", "model", "engine", "interop", "data", "estimate", "study", "report")},
    "leverage": "data.leverage",
}


def __getattr__(name):
    import importlib

    if name in _MODULES:
        value = importlib.import_module(f"sdmodel.{_MODULES[name]}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(f"sdmodel.{_LAZY[name]}"), name)
    else:
        raise AttributeError(f"module 'sdmodel' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY, *_MODULES})


__all__ = [
    "AccountingError",
    "AccountingReport",
    "BatchResult",
    "CacheWarning",
    "CalibrationConfig",
    "CalibrationResult",
    "Check",
    "CompileError",
    "ConfigError",
    "CompiledModel",
    "DataError",
    "Execution",
    "ExpressionError",
    "ExtrapolationWarning",
    "MissingDependencyError",
    "MissingInputError",
    "OutputError",
    "Model",
    "Pool",
    "SaveAt",
    "SdmodelError",
    "SimulationError",
    "SimulationResult",
    "Solver",
    "SpecError",
    "UnbalancedStartWarning",
    "builtin_models",
    "calibrate",
    "check_accounting",
    "compile_model",
    "data",
    "export_model",
    "install_parameters",
    "leverage",
    "load_model",
    "model_from_dict",
    "run_sensitivity",
    "run_sequence",
    "set_cache_dir",
    "simulate",
    "simulate_batch",
    "write_calibration",
    "write_export",
    "write_sensitivity",
    "write_sequence",
    "__version__",
]
