"""Result objects: labelled arrays with ``.to_frame()`` (pandas) and ``.to_xarray()`` for batches."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sdmodel.core.html import html_table
from sdmodel.core.validate import suggestion


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _names(names, at_most: int = 6) -> str:
    """``Y, C, T`` or ``Y, C, T, ... (122)``: a few names for a one-line summary."""
    shown = ", ".join(map(str, names[:at_most]))
    return shown + (f", ... ({len(names)})" if len(names) > at_most else "")


def _times(t, solver) -> str:
    """``t=1980..2030 (401 saved, rk4)``."""
    span = f"{t[0]:g}..{t[-1]:g}" if len(t) else "none"
    method = solver.get("method")
    return f"t={span} ({len(t)} saved{f', {method}' if method else ''})"


def _not_an_output(name, model: str, names) -> str:
    """``'Yx' is not an output of model 'sim'; did you mean 'Y'?`` (the outputs listed when there are few)."""
    return f"{name!r} is not an output" + (f" of model {model!r}" if model else "") + suggestion(name, list(names))


def _index(res, name: str) -> int:
    """Where output ``name`` (or the output labelled ``name``) is in ``res.names``."""
    if name in res.names:
        return res.names.index(name)
    for n, label in res.labels.items():
        if label == name and n in res.names:
            return res.names.index(n)
    raise KeyError(_not_an_output(name, res.model, res.columns)) from None


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
    labels : dict
        Output name -> the name the results show it by (an imported model's subscripted cells:
        ``stock__north`` -> ``stock[north]``): the columns of :meth:`to_frame` and ``res[...]``
        take it (and the output name).
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
    labels: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        """The path of one variable, e.g. ``res["Y"]`` (or ``res["stock[north]"]``, its label)."""
        return self.values[:, _index(self, name)]

    @property
    def columns(self) -> list[str]:
        """The outputs as the results name them: each output's label, else its name."""
        return [self.labels.get(n, n) for n in self.names]

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

        df = pd.DataFrame(self.values, columns=self.columns, index=pd.Index(self.t, name="t"))
        return df

    def residual_frame(self):
        """The stock-flow residual series as a DataFrame (index ``t``)."""
        import pandas as pd

        return pd.DataFrame(self.residuals, columns=list(self.residual_names), index=pd.Index(self.t, name="t"))

    def __repr__(self) -> str:
        state = "completed" if self.success else f"failed: {self.message}"
        return (
            f"<SimulationResult of {self.model or 'a model'!r}: {_times(self.t, self.solver)}, "
            f"{_count(len(self.names), 'output')} ({_names(self.columns)}); {state}; "
            f"largest stock-flow residual {self.max_residual:.1e}>"
        )

    def _repr_html_(self):
        head = (
            f"<p><b>{html.escape(self.model)}</b>: t = {self.t[0]:g}..{self.t[-1]:g}, "
            f"{html.escape(str(self.solver.get('method', '')))}, {len(self.names)} outputs; "
            f"{'completed' if self.success else html.escape(self.message)}; "
            f"largest stock-flow residual {self.max_residual:.1e}</p>"
        )
        frame = self.to_frame()
        if len(frame) > 12:
            frame = frame.iloc[list(range(6)) + list(range(len(frame) - 6, len(frame)))]
        return head + frame._repr_html_()


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
    #: output name -> the name the results show it by (see :class:`SimulationResult`)
    labels: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.values.shape[0]

    def __getitem__(self, name: str) -> np.ndarray:
        """(B, T) paths of one variable (by its name or its label)."""
        return self.values[:, :, _index(self, name)]

    @property
    def columns(self) -> list[str]:
        """The outputs as the results name them: each output's label, else its name."""
        return [self.labels.get(n, n) for n in self.names]

    def run(self, i: int) -> SimulationResult:
        """Run ``i`` as a :class:`SimulationResult`."""
        res = (
            self.residual_series[i]
            if self.residual_series is not None
            else np.full((len(self.t), len(self.residual_names)), np.nan)
        )
        return SimulationResult(
            t=self.t,
            names=self.names,
            values=self.values[i],
            residual_names=self.residual_names,
            residuals=res,
            success=bool(self.success[i]),
            message=self.messages[i],
            params=dict(zip(self.param_names, self.params[i])),
            solver=self.solver,
            model=self.model,
            labels=self.labels,
        )

    @property
    def max_residual(self) -> float:
        r = np.abs(self.residuals[self.success]) if self.success.any() else np.zeros(0)
        return float(np.max(r)) if r.size else 0.0

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``(run, t)``, one variable per output, parameters per run."""
        import xarray as xr

        data: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
            n: (("run", "t"), self.values[:, :, i]) for i, n in enumerate(self.columns)
        }
        for j, p in enumerate(self.param_names):
            data[f"param:{p}"] = (("run",), self.params[:, j])
        data["success"] = (("run",), self.success)
        data["max_residual"] = (
            ("run",),
            np.abs(self.residuals).max(axis=1) if self.residuals.size else np.zeros(len(self)),
        )
        return xr.Dataset(
            data,
            coords={"run": np.arange(len(self)), "t": self.t},
            attrs={"model": self.model, **{f"solver_{k}": str(v) for k, v in self.solver.items()}},
        )

    def __repr__(self) -> str:
        varied = [
            f"{p} {lo:.4g}..{hi:.4g}"
            for p, lo, hi in zip(
                self.param_names,
                self.params.min(axis=0) if len(self) else [],
                self.params.max(axis=0) if len(self) else [],
            )
            if lo != hi
        ]
        return (
            f"<BatchResult of {self.model or 'a model'!r}: {_count(len(self), 'run')}, {int(self.success.sum())} "
            f"succeeded; {_times(self.t, self.solver)}; {_count(len(self.names), 'output')} ({_names(self.columns)}); "
            f"parameters varied: {_names(varied, 4) if varied else 'none'}; "
            f"largest stock-flow residual {self.max_residual:.1e}>"
        )

    def _repr_html_(self):
        rows = [
            ["runs", len(self)],
            ["succeeded", int(self.success.sum())],
            ["times", f"{self.t[0]:g}..{self.t[-1]:g} ({len(self.t)} saved)"],
            ["outputs", ", ".join(self.columns[:12]) + (" ..." if len(self.names) > 12 else "")],
            ["largest stock-flow residual", f"{self.max_residual:.1e}"],
        ]
        for j, p in enumerate(self.param_names):
            lo, hi = self.params[:, j].min(), self.params[:, j].max()
            if lo != hi:
                rows.append([f"parameter {p}", f"{lo:.6g} .. {hi:.6g}"])
        return html_table(["", self.model], rows, caption="batch of runs")

    def to_frame(self):
        """Long DataFrame with index ``(run, t)`` and one column per variable."""
        import pandas as pd

        B, Tn, V = self.values.shape
        idx = pd.MultiIndex.from_product([np.arange(B), self.t], names=["run", "t"])
        return pd.DataFrame(self.values.reshape(B * Tn, V), index=idx, columns=self.columns)
