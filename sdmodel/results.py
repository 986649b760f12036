"""Result objects: labelled arrays with ``.to_frame()`` (pandas) and ``.to_xarray()`` for batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class SimulationResult:
    """One simulated run.

    Attributes
    ----------
    t : ndarray (T,)
        Output times.
    names : tuple of str
        Output variables: the stocks, then the equation variables.
    values : ndarray (T, V)
    residual_names : tuple of str
        ``transactions:<row>`` and ``balance_sheet:<row>``.
    residuals : ndarray (T, R)
        Each row's sum relative to the largest flow (transactions) or the
        largest stock entry (balance sheet) over the whole run: the
        stock-flow residual series, monitored at every saved step.
    success : bool
    message : str
    params : dict
        The parameter values used.
    solver : dict
        Method, step and tolerances.
    """

    t: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray
    residual_names: tuple[str, ...]
    residuals: np.ndarray
    success: bool
    message: str
    params: Mapping[str, float] = field(default_factory=dict)
    solver: Mapping[str, object] = field(default_factory=dict)
    model: str = ""

    def __getitem__(self, name: str) -> np.ndarray:
        """The path of one variable, e.g. ``res["Y"]``."""
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"{name!r} is not an output of model {self.model!r} "
                           f"(outputs: {', '.join(self.names)})") from None

    @property
    def max_residual(self) -> float:
        """Largest relative stock-flow residual over the run (0 when there are no matrices)."""
        if self.residuals.size == 0:
            return 0.0
        r = np.abs(self.residuals)
        return float(np.nanmax(r)) if np.isfinite(r).any() else float("nan")

    def to_frame(self):
        """The run as a DataFrame: index ``t``, one column per variable."""
        import pandas as pd
        df = pd.DataFrame(self.values, columns=list(self.names), index=pd.Index(self.t, name="t"))
        return df

    def residual_frame(self):
        """The stock-flow residual series as a DataFrame (index ``t``)."""
        import pandas as pd
        return pd.DataFrame(self.residuals, columns=list(self.residual_names), index=pd.Index(self.t, name="t"))

    def _repr_html_(self):  # pragma: no cover - notebooks
        return self.to_frame()._repr_html_()


@dataclass(frozen=True)
class BatchResult:
    """Many runs of one model over a matrix of parameter sets (B × P).

    ``values`` is (B, T, V); ``success`` (B,) flags each run; ``residuals``
    is (B, R): each run's largest relative residual per matrix row.
    """

    t: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray
    param_names: tuple[str, ...]
    params: np.ndarray
    residual_names: tuple[str, ...]
    residuals: np.ndarray
    success: np.ndarray
    messages: tuple[str, ...]
    solver: Mapping[str, object] = field(default_factory=dict)
    model: str = ""
    residual_series: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.values.shape[0]

    def __getitem__(self, name: str) -> np.ndarray:
        """(B, T) paths of one variable."""
        try:
            return self.values[:, :, self.names.index(name)]
        except ValueError:
            raise KeyError(f"{name!r} is not an output (outputs: {', '.join(self.names)})") from None

    def run(self, i: int) -> SimulationResult:
        """Run ``i`` as a :class:`SimulationResult`."""
        res = (self.residual_series[i] if self.residual_series is not None
               else np.full((len(self.t), len(self.residual_names)), np.nan))
        return SimulationResult(
            t=self.t, names=self.names, values=self.values[i], residual_names=self.residual_names,
            residuals=res, success=bool(self.success[i]), message=self.messages[i],
            params=dict(zip(self.param_names, self.params[i])), solver=self.solver, model=self.model)

    @property
    def max_residual(self) -> float:
        r = np.abs(self.residuals[self.success]) if self.success.any() else np.zeros(0)
        return float(np.max(r)) if r.size else 0.0

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``(run, t)``, one variable per output, parameters per run."""
        import xarray as xr
        data = {n: (("run", "t"), self.values[:, :, i]) for i, n in enumerate(self.names)}
        for j, p in enumerate(self.param_names):
            data[f"param:{p}"] = (("run",), self.params[:, j])
        data["success"] = (("run",), self.success)
        data["max_residual"] = (("run",), np.abs(self.residuals).max(axis=1) if self.residuals.size
                                else np.zeros(len(self)))
        return xr.Dataset(data, coords={"run": np.arange(len(self)), "t": self.t},
                          attrs={"model": self.model, **{f"solver_{k}": str(v) for k, v in self.solver.items()}})

    def to_frame(self):
        """Long DataFrame with index ``(run, t)`` and one column per variable."""
        import pandas as pd
        B, Tn, V = self.values.shape
        idx = pd.MultiIndex.from_product([np.arange(B), self.t], names=["run", "t"])
        return pd.DataFrame(self.values.reshape(B * Tn, V), index=idx, columns=list(self.names))
