"""sdmodel: stock-flow-consistent system-dynamics models, checked, compiled and batched.

The pipeline, one verb per stage::

    model  = sdmodel.load_model("sim")          # spec: YAML -> validated, immutable Model
    report = sdmodel.check_accounting(model)    # accounting: derive stock dynamics, prove rows/columns
    cm     = sdmodel.compile_model(model)       # compiler: ordered blocks -> batched numpy code
    res    = sdmodel.simulate(cm)               # one run -> SimulationResult (.to_frame())
    batch  = sdmodel.simulate_batch(cm, X, names)   # B x P parameter sets -> BatchResult (.to_xarray())
    fit    = sdmodel.calibrate("japan")         # calibration: config in calibration/ -> CalibrationResult
    path   = sdmodel.write_calibration("runs/fit", fit)  # its run directory (sdmodel.rundirs), atomically
    text   = sdmodel.export_model(model, "vensim")  # a Vensim .mdl (or "xmile"); load_model("x.mdl") reads one

Beside the pipeline: ``sdmodel.leverage`` (debt over four quarters of GDP, monthly leverage,
component aggregates) and ``sdmodel.data`` (readers of the publishers' files, the builder of
the calibration target data).
"""

__version__ = "0.1.0"

from .cache import CacheWarning, set_cache_dir
from .errors import (
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
)
from .options import Execution, Pool, SaveAt, Solver

# Everything else loads on first use (PEP 562), so that `import sdmodel` costs a fraction of a second:
# the model stages pull in sympy and networkx, the upper ones pandas, scipy.interpolate and matplotlib.
_LAZY = {
    "AccountingReport": "accounting",
    "Check": "accounting",
    "check_accounting": "accounting",
    "CompiledModel": "compiler",
    "compile_model": "compiler",
    "BatchResult": "results",
    "SimulationResult": "results",
    "simulate": "simulation",
    "simulate_batch": "simulation",
    "Model": "spec",
    "builtin_models": "spec",
    "load_model": "spec",
    "model_from_dict": "spec",
    "CalibrationConfig": "calibration",
    "CalibrationResult": "calibration",
    "calibrate": "calibration",
    "write_calibration": "rundirs",
    "install_parameters": "rundirs",
    "run_sensitivity": "rundirs",
    "write_sensitivity": "rundirs",
    "run_sequence": "rundirs",
    "write_sequence": "rundirs",
    "export_model": "export",
    "write_export": "export",
    "data": None,
    "leverage": None,
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'sdmodel' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY})


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
