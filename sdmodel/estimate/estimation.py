"""Bayesian estimation: priors, a measurement model, modes from random starts, posterior sampling.

A calibration config (:mod:`sdmodel.estimate.calibration`) becomes an estimation when every free
parameter has a ``prior`` and the targets to fit carry a measurement error ``sd`` (a number
or a prior, then estimated) and optionally an AR(1) coefficient ``ar1``::

    parameters:
      c_y: {prior: {dist: beta, a: 14, b: 6, source: "..."}}     # bounds only where economics has them
    targets:
      hh_debt_gdp: {shift: 1.0, sd: {dist: lognorm, s: 0.5, scale: 3, source: "..."},
                    ar1: {dist: uniform, lower: 0, upper: 0.95, source: "..."}}
    estimate: {restarts: 10, popsize: 16, maxiter: 150, walkers: 64, steps: 2000, burn: 500, thin: 5, seed: 1}

The log posterior is the sum of the priors' log densities and, for each target with an
``sd``, the Gaussian log likelihood of the model-minus-data errors in the fit window (log
points for ``log: true`` targets), with AR(1) errors where ``ar1`` is set: the first error of
each run of consecutive years has variance sd^2, the next ones are ``e_t - rho e_{t-1}`` with
variance sd^2 (1 - rho^2).  A run that fails has probability zero.

:func:`estimate` then

1. **finds modes from scratch**: ``restarts`` CMA-ES searches (the ``cma`` package,
   ask/tell), each started from an independent draw of the priors, all advanced together so
   that every generation of every restart is one :func:`~sdmodel.simulate_batch` call; the best
   mode is refined by L-BFGS-B with a finite-difference gradient computed as one batch.  The
   shipped parameter values are never a start.  Every restart's mode and log posterior are
   reported, so a multimodal posterior shows.
2. **samples the posterior** with ``emcee`` (``vectorize=True``: each half of the ensemble
   is one batch, two calls a step), using differential-evolution moves (ter Braak and Vrugt 2008:
   ``DEMove`` 80%, ``DESnookerMove`` 20%), which mix better than the affine-invariant stretch
   move in the tens of dimensions of a macro model.  Sampling runs in an unbounded space (each
   parameter mapped by log or logit onto the real line, with the Jacobian in the density), so
   bounded parameters are never proposed outside their support.  The chain is checkpointed
   (emcee's HDF5 backend) in the run directory: re-running the command resumes it.
3. **diagnoses and summarises** with ArviZ: R-hat and bulk and tail ESS per parameter (each
   walker counted as a chain), mean, sd, 5/50/95%, prior sd over posterior sd; posterior
   predictive bands (5-95%) for every target with measurement noise; the share of posterior
   draws (and of independent +-5% perturbations of the mode) that keep each stylised fact the
   config's ``facts`` function declares.

The computation writes nothing but its checkpoint; :func:`sdmodel.report.rundirs.write_estimation`
writes the run directory.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sdmodel.core.errors import ConfigError, MissingDependencyError
from sdmodel.core.validate import Problems, closest
from sdmodel.estimate.calibration import CalibrationConfig, Problem, Target, fit_statistics, load_config, provenance
from sdmodel.estimate.priors import Prior

#: below this log posterior a candidate counts as failed (CMA-ES is given a large finite loss)
FAILED_LOSS = 1e12
#: a parameter is "not identified" by the data when its posterior sd exceeds this share of its prior sd
NOT_IDENTIFIED = 0.5


def arviz():
    """ArviZ, imported quietly (0.2x warns on import about its coming refactor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def require(*modules: str) -> None:
    """Raise :class:`MissingDependencyError` naming every missing module of an estimation."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"estimation needs {', '.join(missing)}: pip install {' '.join(missing)} (they are sdmodel dependencies; "
            "reinstall sdmodel to get them)"
        )


# ----------------------------------------------------------------------------- the posterior
@dataclass(frozen=True)
class Quantity:
    """One estimated quantity: a model parameter, or a target's measurement sd or AR(1) coefficient."""

    name: str  # the parameter, or "sd.<target>" / "ar1.<target>"
    prior: Prior
    kind: str = "parameter"  # parameter | sd | ar1
    target: str | None = None

    @property
    def support(self) -> tuple[float, float]:
        return self.prior.support


def _forward(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Support -> real line."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if math.isfinite(lo) and math.isfinite(hi):
            u = (x - lo) / (hi - lo)
            return np.log(u) - np.log1p(-u)
        if math.isfinite(lo):
            return np.log(x - lo)
        if math.isfinite(hi):
            return np.log(hi - x)
        return np.asarray(x, float)


def _backward(y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Real line -> support, and log |dx/dy|."""
    y = np.asarray(y, float)
    if math.isfinite(lo) and math.isfinite(hi):
        s = 0.5 * (1 + np.tanh(0.5 * y))  # the logistic function, without overflow
        return lo + (hi - lo) * s, math.log(hi - lo) - np.logaddexp(0, y) - np.logaddexp(0, -y)
    if math.isfinite(lo):
        return lo + np.exp(y), y
    if math.isfinite(hi):
        return hi - np.exp(y), y
    return y, np.zeros_like(y)


class Posterior:
    """The log posterior of a calibration config's estimated quantities, many candidates at once.

    ``X`` (B, d) holds the candidates in natural units, columns in the order of :attr:`names`
    (the model parameters, then the estimated measurement sds and AR(1) coefficients).  ``Z`` is
    the same in the sampler's space: each quantity mapped onto the real line (log or logit of its
    support) and standardised by its prior's location and spread there.
    """

    def __init__(self, problem: Problem, window: tuple[float, float] | None = None, skip_unobserved: bool = False):
        """``skip_unobserved``: a fitted target with no observation in ``window`` is left out (listed in
        :attr:`skipped`) instead of refused, as validation's early origins need (China's central-government
        debt begins in 2020)."""
        cfg = problem.config
        self.problem, self.config = problem, cfg
        self.window = tuple(window if window is not None else cfg.window)
        problems = Problems(cfg.source, ConfigError)
        quantities: list[Quantity] = []
        for p in cfg.parameters:
            if p.prior is None:
                problems.add(
                    f"parameters.{p.name}",
                    "no prior: an estimation needs one for every free parameter ({dist: ..., source: ...})",
                )
            else:
                prior, declared = p.prior, problem.model.parameters[p.name].bounds
                if declared is not None:  # the model's own bounds truncate the prior too
                    lo, hi = max(prior.bounds[0], declared[0]), min(prior.bounds[1], declared[1])
                    prior = prior.with_bounds((lo, hi))
                quantities.append(Quantity(p.name, prior))
        self.fitted: list[Target] = [t for t in cfg.targets if t.sd is not None and t.fitted]
        #: fitted targets left out: no observation in the window (only with skip_unobserved)
        self.skipped: list[str] = []
        if skip_unobserved:
            seen = {t.name: problem.mask(t, self.window).any() for t in self.fitted}
            self.skipped = [t.name for t in self.fitted if not seen[t.name]]
            self.fitted = [t for t in self.fitted if seen[t.name]]
        for t in cfg.targets:  # weight says whether a target is fitted, sd how (the estimation ignores its value)
            if t.fitted and t.sd is None and any(x.sd is not None for x in cfg.targets):
                problems.add(
                    f"targets.{t.name}", "fitted (weight > 0) but no sd: give its measurement error, or weight: 0"
                )
            if not t.fitted and t.sd is not None:
                problems.add(f"targets.{t.name}", "weight 0 (reported, not fitted) but an sd: drop one of them")
        if not self.fitted:
            problems.add(
                "targets",
                "no target has a measurement error: give the targets to fit an sd (a number, or a prior)",
            )
        for t in self.fitted:
            if isinstance(t.sd, Prior):
                quantities.append(Quantity(f"sd.{t.name}", t.sd, "sd", t.name))
            if isinstance(t.ar1, Prior):
                quantities.append(Quantity(f"ar1.{t.name}", t.ar1, "ar1", t.name))
        problems.raise_if_any()
        self.quantities = quantities
        self.names = [q.name for q in quantities]
        self.n_model = len(cfg.parameters)
        self.model_names = self.names[: self.n_model]
        self.evaluations = 0
        # standardisation of the unbounded space: the priors' location and spread there
        rng = np.random.default_rng(12345)
        draws = np.column_stack([q.prior.draw(4000, rng) for q in quantities])
        Y = self._unbounded(draws)
        self.center = np.median(Y, axis=0)
        self.spread = np.maximum(np.subtract(*np.percentile(Y, [84.13, 15.87], axis=0)) / 2, 1e-9)
        self.masks = {t.name: problem.mask(t, self.window) for t in self.fitted}
        for t in self.fitted:
            if not self.masks[t.name].any():
                raise ConfigError(f"targets.{t.name}: no observation in the window {self.window}", cfg.source)

    # -- spaces -------------------------------------------------------------------
    def _unbounded(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, float))
        return np.column_stack([_forward(X[:, j], *q.support) for j, q in enumerate(self.quantities)])

    def to_z(self, X) -> np.ndarray:
        return (self._unbounded(X) - self.center) / self.spread

    def from_z(self, Z) -> tuple[np.ndarray, np.ndarray]:
        """Natural units (B, d) and the log Jacobian (B,) of the map."""
        Y = self.center + self.spread * np.atleast_2d(np.asarray(Z, float))
        cols, jac = [], np.zeros(len(Y))
        for j, q in enumerate(self.quantities):
            x, lj = _backward(Y[:, j], *q.support)
            cols.append(x)
            jac = jac + lj + math.log(self.spread[j])
        return np.column_stack(cols), jac

    def draw_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.column_stack([q.prior.draw(n, rng) for q in self.quantities])

    # -- densities ------------------------------------------------------------------
    def log_prior(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, float))
        return np.sum([q.prior.logpdf(X[:, j]) for j, q in enumerate(self.quantities)], axis=0)

    def measurement(self, X, t: Target) -> tuple[np.ndarray, np.ndarray]:
        """The measurement sd and AR(1) coefficient of target ``t`` per candidate (B,)."""
        col = {n: j for j, n in enumerate(self.names)}
        B = len(X)
        sd = X[:, col[f"sd.{t.name}"]] if isinstance(t.sd, Prior) else np.full(B, float(t.sd or 0.0))
        rho = X[:, col[f"ar1.{t.name}"]] if isinstance(t.ar1, Prior) else np.full(B, float(t.ar1))
        return sd, rho

    def log_likelihood(self, X, paths=None) -> np.ndarray:
        """Gaussian (AR(1)) log likelihood of the fitted targets (B,); -inf where a run failed."""
        X = np.atleast_2d(np.asarray(X, float))
        if paths is None:
            paths = self.simulate(X)
        total = np.zeros(len(X))
        for t in self.fitted:
            m = self.masks[t.name]
            e = self.problem.errors(paths, t)[:, m]
            years = self.problem.obs[t.name][0][m]
            sd, rho = self.measurement(X, t)
            total = total + ar1_loglik(e, years, sd, rho)
        total = np.where(paths["ok"] & np.isfinite(total), total, -np.inf)
        return total

    def simulate(self, X) -> dict[str, np.ndarray]:
        X = np.atleast_2d(np.asarray(X, float))
        self.evaluations += len(X)
        return self.problem.simulate(X[:, : self.n_model])

    def log_posterior(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, float))
        lp = self.log_prior(X)
        out = np.full(len(X), -np.inf)
        ok = np.isfinite(lp)
        if ok.any():
            out[ok] = lp[ok] + self.log_likelihood(X[ok])
        return out

    def log_posterior_z(self, Z) -> np.ndarray:
        """The log density in the sampler's space (with the Jacobian of the map)."""
        X, jac = self.from_z(Z)
        return self.log_posterior(X) + jac


def _decay(years: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """(B, n): the AR(1) coefficient over each observation's gap from the one before, ``rho ** gap`` (0 for the
    first observation). A negative ``rho`` over a gap that is not a whole number of periods has no meaning: NaN."""
    gap = np.diff(np.asarray(years, float), prepend=np.nan)
    with np.errstate(invalid="ignore"):
        d = np.power(rho[:, None], gap[None, :])
    d[:, 0] = 0.0
    return d


def ar1_loglik(e: np.ndarray, years: np.ndarray, sd: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Log density (B,) of errors ``e`` (B, n) at ``years`` under stationary AR(1) Gaussian errors.

    The errors have variance ``sd^2`` and correlation ``rho^|t_i - t_j|``: each is ``rho^k`` times
    the one ``k`` years before plus an innovation of variance ``sd^2 (1 - rho^(2k))``, so gaps and
    any spacing of the years are exact.

    >>> round(float(ar1_loglik(np.array([[0.0, 0.0]]), np.array([1.0, 2.0]), np.array([1.0]), np.array([0.0]))[0]), 6)
    -1.837877
    """
    e = np.atleast_2d(e)
    d = _decay(years, rho)
    prev = np.zeros_like(e)
    prev[:, 1:] = e[:, :-1]
    u = e - d * prev
    with np.errstate(invalid="ignore", divide="ignore"):
        s = sd[:, None] * np.sqrt(np.clip(1 - d**2, 1e-12, None))
        ll = -0.5 * (u / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)
    return np.where(np.isfinite(ll).all(axis=1), ll.sum(axis=1), -np.inf)


def ar1_draw(years: np.ndarray, sd: np.ndarray, rho: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, n) errors drawn from the process :func:`ar1_loglik` scores."""
    d = _decay(years, rho)
    z = rng.standard_normal(d.shape)
    e = np.zeros(d.shape)
    for j in range(d.shape[1]):
        prev = e[:, j - 1] if j else 0.0
        e[:, j] = d[:, j] * prev + sd * np.sqrt(np.clip(1 - d[:, j] ** 2, 0, None)) * z[:, j]
    return e


# ----------------------------------------------------------------------------- modes
@dataclass(frozen=True)
class Mode:
    """The best point of one CMA-ES restart (``restart`` -1: the refinement of the best)."""

    restart: int
    start: tuple[float, ...]  # the prior draw it started from (natural units)
    x: tuple[float, ...]
    log_posterior: float
    generations: int
    message: str


#: how often a restart whose first generation failed entirely is started again from another prior draw
MAX_REDRAWS = 20


def find_modes(
    post: Posterior,
    *,
    restarts: int = 10,
    popsize: int = 16,
    maxiter: int = 150,
    local_iter: int = 20,
    seed: int = 1,
    progress: bool = False,
) -> list[Mode]:
    """CMA-ES from ``restarts`` independent prior draws, run side by side (one batch per generation
    of all of them), then L-BFGS-B from the best; the modes sorted best first, the refined one first."""
    require("cma")
    import cma

    # each restart's start from its own stream: restart r is the same whatever the number of restarts
    starts = np.vstack([post.draw_prior(1, np.random.default_rng([seed, r, 0])) for r in range(restarts)])
    d = len(post.names)
    saved = np.random.get_state()  # cma seeds numpy's global generator: the caller's is given back below

    def strategy(r: int, attempt: int):
        z0 = np.clip(post.to_z(starts[r])[0], -4, 4)
        # each restart (and each new start of it) its own stream (cma's default is numpy's global one)
        gen = np.random.default_rng([seed, r] + ([attempt] if attempt else []))
        opts: dict[str, Any] = {
            "popsize": popsize,
            "seed": seed * 1000 + r + 1 + 100_000 * attempt,
            "maxiter": maxiter,
            "verbose": -9,
            "randn": lambda *shape, g=gen: g.standard_normal(shape),
            "bounds": [[-8.0] * d, [8.0] * d],
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cma.CMAEvolutionStrategy(z0, 0.5, opts)

    runs = [strategy(r, 0) for r in range(restarts)]
    attempts = [0] * restarts
    best: list[tuple[float, np.ndarray | None]] = [(-math.inf, None)] * restarts
    gens = [0] * restarts
    bar = _bar(progress, maxiter, "mode search", "gen")
    while True:
        active = [r for r in range(restarts) if not runs[r].stop()]
        if not active:
            break
        asks = {r: runs[r].ask() for r in active}
        Z = np.vstack([np.asarray(asks[r]) for r in active])
        lp = _natural_lp(post, Z)
        k = 0
        for r in active:
            n = len(asks[r])
            part = lp[k : k + n]
            k += n
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                runs[r].tell(asks[r], list(np.where(np.isfinite(part), -part, FAILED_LOSS)))
            gens[r] += 1
            if gens[r] == 1 and not np.isfinite(part).any() and attempts[r] < MAX_REDRAWS:
                # every run of the first generation failed: CMA-ES would stop on a flat objective, so
                # start this restart again from another prior draw (its own stream)
                attempts[r] += 1
                starts[r] = post.draw_prior(1, np.random.default_rng([seed, r, attempts[r]]))[0]
                runs[r], gens[r] = strategy(r, attempts[r]), 0
                continue
            i = int(np.argmax(part))
            if part[i] > best[r][0]:
                best[r] = (float(part[i]), np.asarray(asks[r][i]))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(best=f"{max(b[0] for b in best):.6g}", active=len(active))
    if bar is not None:
        bar.close()
    np.random.set_state(saved)
    modes = []
    for r in range(restarts):
        lp_r, z = best[r]
        x = post.from_z(z)[0][0] if z is not None else np.full(d, np.nan)
        stop = ", ".join(f"{k}" for k in runs[r].stop())
        modes.append(Mode(r, tuple(map(float, starts[r])), tuple(map(float, x)), lp_r, gens[r], stop))
    modes.sort(key=lambda m: -m.log_posterior if math.isfinite(m.log_posterior) else math.inf)
    if local_iter > 0 and math.isfinite(modes[0].log_posterior):
        modes.insert(0, refine(post, modes[0], local_iter))
    return modes


def reference_point(post: Posterior, values: Mapping[str, float]) -> tuple[np.ndarray, float]:
    """The model parameters at ``values`` (e.g. the scenario's current ones) with the estimated measurement
    quantities at their best for them: the point and its log posterior, to compare the modes with.

    The model is run once; the measurement sds and AR(1) coefficients (which do not change the run) are
    then chosen by L-BFGS-B in the standardised space."""
    from scipy.optimize import minimize

    k = post.n_model
    x = np.array([values[n] for n in post.model_names], float)
    paths = post.simulate(x)
    if not paths["ok"][0]:
        return np.concatenate([x, np.full(len(post.names) - k, np.nan)]), -math.inf
    medians = np.array([q.prior.ppf(0.5) for q in post.quantities])

    def f(zm):
        z = post.to_z(np.concatenate([x, medians[k:]]))[0]
        z[k:] = zm
        X, _ = post.from_z(z)
        lp = post.log_prior(X)[0] + post.log_likelihood(X, paths)[0]
        return -lp if np.isfinite(lp) else FAILED_LOSS

    if len(post.names) == k:
        return x, -f(np.zeros(0))
    z0 = post.to_z(np.concatenate([x, medians[k:]]))[0][k:]
    res = minimize(f, z0, method="L-BFGS-B", bounds=[(-8, 8)] * len(z0))
    z = post.to_z(np.concatenate([x, medians[k:]]))[0]
    z[k:] = res.x
    return post.from_z(z)[0][0], -float(res.fun)


def laplace_covariance(
    post: Posterior, x: np.ndarray, h: float = 0.02, *, regularise: bool = False
) -> np.ndarray | None:
    """The Laplace approximation at ``x``: the inverse of minus the Hessian of the log density in the
    sampler's standardised space (central differences, all points in one batch); None where a point
    fails, or where it is not negative definite and ``regularise`` is false.

    With ``regularise``, a direction without curvature (an eigenvalue of minus the Hessian below 1, e.g.
    at a mode on a bound of the support, or along a ridge) gets the prior's scale (precision 1 in the
    standardised space), so that the walkers still start at the posterior's scale where the data curve
    the density and at the prior's where they do not. :func:`laplace_start` says how many."""
    z = post.to_z(x)[0]
    d = len(z)
    E = h * np.eye(d)
    pts = [z]
    for i in range(d):
        pts += [z + E[i], z - E[i]]
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
    for i, j in pairs:
        pts += [z + E[i] + E[j], z + E[i] - E[j], z - E[i] + E[j], z - E[i] - E[j]]
    f = post.log_posterior_z(np.array(pts))
    if not np.isfinite(f).all():
        return None
    H = np.zeros((d, d))
    for i in range(d):
        H[i, i] = (f[1 + 2 * i] - 2 * f[0] + f[2 + 2 * i]) / h**2
    base = 1 + 2 * d
    for k, (i, j) in enumerate(pairs):
        a, b, c, e = f[base + 4 * k : base + 4 * k + 4]
        H[i, j] = H[j, i] = (a - b - c + e) / (4 * h**2)
    w, V = np.linalg.eigh(-H)
    if not (w > 0).all():
        if not regularise or not np.isfinite(w).all():
            return None
        w = np.maximum(w, 1.0)
    return (V / w) @ V.T


def laplace_start(post: Posterior, x: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The walkers' spread around the best mode and how it was found (for the report): the Laplace
    approximation, regularised where the Hessian is not negative definite, else None (a small ball)."""
    cov = laplace_covariance(post, x)
    if cov is not None:
        return cov, "the Laplace approximation"
    cov = laplace_covariance(post, x, regularise=True)
    if cov is not None:
        return cov, (
            "the Laplace approximation, regularised: the Hessian at the best mode is not negative definite "
            "(a mode on a bound of the support, or a ridge), so its flat or convex directions start at the "
            "prior's scale"
        )
    return None, "a small ball (no Laplace approximation: a run near the best mode failed)"


def _natural_lp(post: Posterior, Z) -> np.ndarray:
    """The log posterior (natural units, no Jacobian: a mode is a point of the posterior itself) at ``Z``."""
    X, _ = post.from_z(Z)
    return post.log_posterior(X)


def refine(post: Posterior, mode: Mode, maxiter: int = 20) -> Mode:
    """L-BFGS-B from a mode, in the standardised space, with a forward-difference gradient in one batch."""
    from scipy.optimize import minimize

    z0 = post.to_z(np.array(mode.x))[0]
    h = 1e-4
    memo: dict[bytes, tuple[float, np.ndarray]] = {}

    def fg(z):
        key = z.tobytes()
        if key not in memo:
            Z = np.vstack([z, z + h * np.eye(len(z))])
            lp = _natural_lp(post, Z)
            f0 = -lp[0] if np.isfinite(lp[0]) else FAILED_LOSS
            g = np.where(np.isfinite(lp[1:]), (-lp[1:] - f0) / h, 0.0)
            memo.clear()
            memo[key] = (float(f0), g)
        return memo[key]

    res = minimize(fg, z0, jac=True, method="L-BFGS-B", bounds=[(-8, 8)] * len(z0), options={"maxiter": maxiter})
    f, _ = fg(res.x)
    if -f <= mode.log_posterior:
        return dataclasses.replace(mode, restart=-1, message=f"refinement did not improve ({res.message})")
    x = post.from_z(res.x)[0][0]
    return Mode(
        -1, mode.x, tuple(map(float, x)), -f, int(res.nit), f"L-BFGS-B from restart {mode.restart}: {res.message}"
    )


def _bar(progress: bool, total: int, desc: str, unit: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


# ----------------------------------------------------------------------------- sampling
def sample(
    post: Posterior,
    start: np.ndarray,
    *,
    walkers: int,
    steps: int,
    seed: int,
    checkpoint: Path | None = None,
    progress: bool = False,
    spread: np.ndarray | None = None,
):
    """emcee with differential-evolution moves from around ``start`` (natural units): a draw of the normal
    with covariance ``spread`` / 4 in the standardised space (the Laplace approximation), else a small ball;
    with ``checkpoint`` (an HDF5 file) a second call resumes where the first stopped.
    Returns the emcee backend (its chain is in the standardised space)."""
    require("emcee", "h5py")
    import emcee

    d = len(post.names)
    rng = np.random.default_rng(seed)
    if checkpoint is not None:
        backend = emcee.backends.HDFBackend(str(checkpoint), name="posterior")
        done = backend.iteration if Path(checkpoint).exists() else 0
        if done and backend.shape != (walkers, d):
            raise ConfigError(
                f"{checkpoint}: a chain of {backend.shape[0]} walkers x {backend.shape[1]} quantities, "
                f"this estimation has {walkers} x {d}: another estimation's checkpoint"
            )
    else:
        backend, done = emcee.backends.Backend(), 0
    moves = [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    sampler = emcee.EnsembleSampler(walkers, d, post.log_posterior_z, vectorize=True, moves=moves, backend=backend)
    sampler.random_state = np.random.RandomState(seed).get_state()  # the moves' draws, seeded
    if done == 0:
        if checkpoint is not None:
            backend.reset(walkers, d)
        z0 = post.to_z(start)[0]
        state: Any = z0 + 0.02 * rng.standard_normal((walkers, d))
        if spread is not None:  # the Laplace approximation's spread, halved: a start at the posterior's scale
            state = rng.multivariate_normal(z0, 0.25 * spread, size=walkers, method="eigh")
            lp = post.log_posterior_z(state)
            bad = ~np.isfinite(lp)
            state[bad] = z0 + 0.02 * rng.standard_normal((int(bad.sum()), d))
    else:
        state = backend.get_last_sample()
    left = steps - done
    if left > 0:
        sampler.run_mcmc(state, left, progress=progress, skip_initial_state_check=True)
    return backend


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class EstimationResult:
    """What :func:`estimate` found: the modes, the posterior (ArviZ InferenceData), its summary,
    posterior predictive bands, fit statistics and the facts' robustness."""

    config: CalibrationConfig
    window: tuple[float, float]
    names: tuple[str, ...]
    modes: pd.DataFrame  # one row per restart (restart -1: the refined best), log_posterior, the values
    idata: Any  # arviz.InferenceData: posterior, sample_stats, prior, posterior_predictive, observed_data
    table: pd.DataFrame  # per quantity: prior, mean, sd, q5, q50, q95, prior_sd, sd_ratio, r_hat, ess_bulk, ess_tail
    predictive: pd.DataFrame  # long: target, year, data, q5, q50, q95, fitted
    fit: pd.DataFrame  # fit statistics of the posterior median run
    facts: pd.DataFrame | None  # per fact: share of posterior draws and of +-5% draws around the mode keeping it
    settings: Mapping[str, Any]
    evaluations: int
    wall_s: float
    data_hash: str
    spec_hash: str
    model_name: str
    sources: Mapping[str, str] = field(default_factory=dict)
    #: quantities whose best mode lies at the edge of the standardised search space (a bound of their support)
    at_edge: tuple[str, ...] = ()
    #: posterior bands of requested model outputs (``outputs=``): long, output, time, q5, q50, q95
    output_bands: pd.DataFrame | None = None
    #: the log posterior of the model's own values (the scenario's parameter file) with the measurement
    #: quantities at their best for them: what the modes found from prior draws are compared with
    reference: float | None = None
    #: the log posterior of the posterior medians taken together as one point, and the 1%, 50% and 99%
    #: quantiles of the kept draws' log posterior: in a curved or multimodal posterior the medians of the
    #: margins can be a point the posterior itself rules out
    median_lp: float | None = None
    draws_lp: tuple[float, float, float] | None = None
    #: the midpoints of random pairs of kept draws: how many, their median log posterior, and the share of them
    #: below the draws' 1% quantile (near 0 for a posterior whose bulk is convex, e.g. near-Gaussian; large
    #: on a curved ridge, where the ensemble's moves along lines between walkers are mostly refused)
    chords: tuple[int, float, float] | None = None

    @property
    def median_typical(self) -> bool:
        """The posterior medians, as one point, score at least the 1% quantile of the draws' log posterior."""
        if self.median_lp is None or self.draws_lp is None:
            return True
        return bool(self.median_lp >= self.draws_lp[0])

    @property
    def medians(self) -> dict[str, float]:
        return {n: float(self.table.loc[n, "q50"]) for n in self.names}

    @property
    def not_identified(self) -> tuple[str, ...]:
        return tuple(self.table.index[self.table["sd_ratio"] > NOT_IDENTIFIED])

    @property
    def converged(self) -> bool:
        """R-hat <= 1.01 and bulk ESS >= 400 for every quantity, and the chain kept after burn-in at least 50
        autocorrelation times long (emcee's estimate)."""
        t = self.table
        long_enough = (self.steps_kept >= 50 * t["tau"]).all() if "tau" in t else True
        return bool((t["r_hat"] <= 1.01).all() and (t["ess_bulk"] >= 400).all() and long_enough)

    @property
    def steps_kept(self) -> int:
        return max(int(self.settings.get("steps_done", self.settings["steps"])) - int(self.settings["burn"]), 0)

    def summary(self) -> str:
        c = self.config
        s = self.settings
        best = self.modes.iloc[0]
        fmt = lambda v: f"{v:.4g}"  # noqa: E731
        out = [
            f"estimation of {self.model_name}"
            + (f" (scenario {c.scenario})" if c.scenario else "")
            + f" on {c.data.name}, window {self.window[0]:g}-{self.window[1]:g}, seed {s['seed']}",
            f"{self.evaluations} model runs in {self.wall_s:.0f} s",
            "",
            f"modes: {int((self.modes['restart'] >= 0).sum())} CMA-ES restarts from prior draws "
            f"(log posterior, best first; restart -1 is the refined best)",
            self.modes[["restart", "log_posterior", "generations", "message"]].to_string(index=False, float_format=fmt),
            *(
                [
                    f"{n} of {int((self.modes['restart'] >= 0).sum())} restarts stopped at maxiter, not converged: "
                    "their rows are the best points reached, not modes (raise estimate.maxiter)"
                ]
                if (n := int(self.modes["message"].str.contains("maxiter").sum()))
                else []
            ),
            *(
                [f"at the edge of the search space at the best mode (|z| > 7.9): {', '.join(self.at_edge)}"]
                if self.at_edge
                else []
            ),
            f"best log posterior {best['log_posterior']:.6g}"
            + (
                ""
                if self.reference is None
                else f"; the scenario's current values score {self.reference:.6g} (measurement errors at their best"
                + " for them): "
                + (
                    "the search from prior draws found a better point"
                    if best["log_posterior"] >= self.reference
                    else "NOT reached from prior draws: more restarts or generations (estimate: settings) needed"
                )
            ),
            "",
            f"posterior: emcee, {s['walkers']} walkers (started from {s.get('start', 'a checkpoint')}) x "
            f"{s.get('steps_done', s['steps'])} steps, first {s['burn']} "
            f"dropped, thinned by {s['thin']} (R-hat <= 1.01, bulk ESS >= 400 and 50 autocorrelation times (tau, in "
            "steps) wanted: "
            + ("met" if self.converged else "NOT MET: run longer (estimate.steps) before quoting")
            + ")",
            self.table.drop(columns=["source"], errors="ignore").to_string(float_format=fmt),
        ]
        if self.not_identified:
            out.append(
                f"not identified by the data (posterior sd > {NOT_IDENTIFIED:g} prior sd): "
                + ", ".join(self.not_identified)
            )
        if self.median_lp is not None and self.draws_lp is not None:
            lo, mid, hi = self.draws_lp
            out.append(
                f"the posterior medians as one point: log posterior {self.median_lp:.6g}; the draws' 1/50/99%: "
                f"{lo:.6g} / {mid:.6g} / {hi:.6g}"
                + (
                    ""
                    if self.median_typical
                    else ": NOT a typical point of the posterior (a curved or multimodal posterior, or walkers "
                    "that have not mixed), so the medians are not installed without --force"
                )
            )
        if self.chords is not None and self.draws_lp is not None:
            n, mid, share = self.chords
            out.append(
                f"midpoints of {n} random pairs of draws: median log posterior {mid:.6g}, {share:.0%} of them below "
                "the draws' 1% quantile"
                + (
                    " (the bulk of the posterior is not convex: a curved ridge, along which an ensemble sampler, "
                    "whose moves run along lines between walkers, mixes slowly)"
                    if share > 0.25
                    else ""
                )
            )
        out += ["", "fit of the posterior-median run (model - data)", self.fit.to_string(float_format=fmt)]
        cover = self.predictive[self.predictive["fitted"]]
        inside = (cover["data"] >= cover["q5"]) & (cover["data"] <= cover["q95"])
        out += ["", "share of observations inside the 90% posterior predictive band (0.9 expected in the window)"]
        for k, g in inside.groupby(cover["target"], sort=False):
            w = cover.loc[g.index, "in_window"]
            out.append(
                f"  {k}: {g[w].mean():.2f} in the window"
                + (f", {g[~w].mean():.2f} outside it ({int((~w).sum())} observations)" if (~w).any() else "")
            )
        if self.facts is not None:
            out += [
                "",
                "stylised facts: kept by the scenario's current values, by the best mode, and the share of posterior "
                "draws and of independent +-5% draws around the mode keeping each",
                self.facts.to_string(float_format=lambda v: f"{v:.2f}"),
            ]
        return "\n".join(out)

    def to_dict(self) -> dict:
        import json

        def frame(df):
            return None if df is None else json.loads(df.to_json(orient="index"))

        return dict(
            kind="estimation",
            **provenance(self.config, self.data_hash, self.spec_hash, self.window),
            settings=dict(self.settings),
            evaluations=self.evaluations,
            wall_s=self.wall_s,
            converged=self.converged,
            median_log_posterior=self.median_lp,
            draws_log_posterior_q01_q50_q99=None if self.draws_lp is None else list(self.draws_lp),
            median_typical=self.median_typical,
            chords=None
            if self.chords is None
            else dict(zip(("pairs", "median_log_posterior", "share_below_q01"), self.chords)),
            not_identified=list(self.not_identified),
            modes=json.loads(self.modes.to_json(orient="records")),
            posterior=frame(self.table),
            fit=frame(self.fit),
            facts=frame(self.facts),
        )


def load_facts(ref: str) -> Callable:
    """The function ``path.py:name`` (``fn(cm, X, names) -> {fact: bool array (B,)}``)."""
    from sdmodel.estimate.calibration import load_function

    return load_function(ref, "facts")


def fact_shares(
    post: Posterior, fn: Callable, draws: np.ndarray, mode: np.ndarray, n: int, rng, current: np.ndarray | None = None
) -> pd.DataFrame:
    """Per fact, the share of ``draws`` (model parameters, natural units) and of ``n`` independent
    +-5% (uniform) perturbations of ``mode`` that keep it; whether the mode keeps it, and (``current``) whether
    the model's current values do."""
    cm, names = post.problem.cm, post.model_names
    k = post.n_model
    near = mode[None, :k] * (1 + rng.uniform(-0.05, 0.05, (n, k)))
    out = {}
    for label, X in (("posterior", draws[:, :k]), ("mode +-5%", near)):
        with np.errstate(invalid="ignore", divide="ignore"):
            held = fn(cm, X, names)
        out[label] = {f: float(np.mean(np.asarray(v, bool))) for f, v in held.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        at_mode = fn(cm, mode[None, :k], names)
    df = pd.DataFrame(out)
    df.insert(0, "at mode", pd.Series({f: bool(np.asarray(v)[0]) for f, v in at_mode.items()}))
    if current is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            at_current = fn(cm, current[None, :k], names)
        df.insert(0, "current values", pd.Series({f: bool(np.asarray(v)[0]) for f, v in at_current.items()}))
    df.index.name = "fact"
    return df


def predictive(post: Posterior, draws: np.ndarray, rng) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Posterior predictive bands of every target at its observation years: the model at each draw,
    plus measurement noise (AR(1)) for the targets with an sd.  Returns the long band table and the
    draws per target (n_draws, n_obs)."""
    prob = post.problem
    paths = post.simulate(draws)
    rows, sims = [], {}
    for t in prob.config.targets:
        years, y = prob.obs[t.name]
        m = paths[t.name].astype(float)
        if t.log:
            with np.errstate(invalid="ignore", divide="ignore"):
                m = 100 * np.log(np.where(m > 0, m, np.nan))
        fitted = any(f.name == t.name for f in post.fitted)
        if fitted:
            sd, rho = post.measurement(draws, t)
            noise = ar1_draw(years, sd, rho, rng)
            m = m + noise
        if t.log:
            m = np.exp(m / 100)
        sims[t.name] = m
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (failed runs) give NaN bands
            q = np.nanpercentile(m, [5, 50, 95], axis=0)
        for j, year in enumerate(years):
            rows.append(
                dict(
                    target=t.name,
                    year=float(year),
                    data=float(y[j]),
                    q5=q[0, j],
                    q50=q[1, j],
                    q95=q[2, j],
                    fitted=fitted,
                    in_window=bool(prob.mask(t, post.window)[j]),
                )
            )
    return pd.DataFrame(rows), sims


def output_bands(post: Posterior, draws: np.ndarray, outputs: Sequence[str], step: float = 1.0) -> pd.DataFrame:
    """5/50/95% bands of model outputs over the run (every ``step`` years) at posterior draws: the model's own
    uncertainty, without measurement noise (these outputs are not observed)."""
    from sdmodel.core.options import SaveAt, Solver
    from sdmodel.engine.simulation import simulate_batch

    prob = post.problem
    t0, t1 = prob.model.time.start, prob.model.time.stop
    t = np.arange(t0, t1 + 1e-9, step)
    res = simulate_batch(
        prob.cm,
        draws[:, : post.n_model],
        post.model_names,
        solver=Solver(dt=prob.config.search.get("dt")),
        saveat=SaveAt(t_eval=t, outputs=list(outputs)),
        throw=False,
    )
    prob.evaluations += len(draws)
    rows = []
    for o in outputs:
        v = np.where(res.success[:, None], res[o], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanpercentile(v, [5, 50, 95], axis=0)
        rows += [dict(output=o, time=float(tt), q5=q[0, j], q50=q[1, j], q95=q[2, j]) for j, tt in enumerate(res.t)]
    return pd.DataFrame(rows)


def _table(post: Posterior, idata, az) -> pd.DataFrame:
    rows = []
    rhat = az.rhat(idata)
    ess_b = az.ess(idata, method="bulk")
    ess_t = az.ess(idata, method="tail")
    for q in post.quantities:
        v = idata.posterior[q.name].values.ravel()
        q5, q50, q95 = np.percentile(v, [5, 50, 95])
        psd = q.prior.sd
        rows.append(
            dict(
                quantity=q.name,
                prior=q.prior.describe(),
                mean=float(v.mean()),
                sd=float(v.std()),
                q5=q5,
                q50=q50,
                q95=q95,
                prior_sd=psd,
                sd_ratio=float(v.std()) / psd if psd > 0 else math.nan,
                r_hat=float(rhat[q.name]),
                ess_bulk=float(ess_b[q.name]),
                ess_tail=float(ess_t[q.name]),
                source=q.prior.source,
            )
        )
    return pd.DataFrame(rows).set_index("quantity")


def estimate_settings(cfg: CalibrationConfig, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config's ``estimate:`` settings updated with ``settings``, each checked by the config's rules
    (every problem at once, as a :class:`ConfigError` naming the command-line flags)."""
    from sdmodel.estimate.calibration import ESTIMATE_RULES, check_settings, unknown_settings

    problems = Problems("estimate() settings (--seed, --steps, --walkers, --restarts, ...)", ConfigError)
    given = dict(settings or {})
    unknown_settings(problems, given, ESTIMATE_RULES, "estimate", "an estimation")
    s = check_settings(problems, dict(cfg.estimate), given, ESTIMATE_RULES)
    if not s["burn"] < s["steps"]:
        problems.add("estimate.burn", f"expected fewer than steps ({s['steps']}), got {s['burn']}")
    elif (kept := kept_per_walker(s)) < MIN_KEPT:
        problems.add(
            "estimate.steps",
            f"{s['steps']} steps, the first {s['burn']} dropped, thinned by {s['thin']}, leave {kept} draws "
            f"a walker; the diagnostics need at least {MIN_KEPT}: raise --steps, or lower --burn or --thin",
        )
    problems.raise_if_any()
    return s


#: draws a walker must keep after burn-in and thinning: R-hat and the effective sample size need a few
MIN_KEPT = 4


def kept_per_walker(s: Mapping[str, Any]) -> int:
    """The draws each walker keeps after ``burn`` and ``thin`` (as emcee's ``get_chain`` counts them).

    >>> kept_per_walker({"steps": 3000, "burn": 1000, "thin": 10}), kept_per_walker({"steps": 4, "burn": 1, "thin": 10})
    (200, 0)
    """
    return max(int(s["steps"]) - int(s["burn"]), 0) // int(s["thin"])


def estimate(
    config: CalibrationConfig | str | Path,
    *,
    settings: Mapping[str, Any] | None = None,
    window: tuple[float, float] | None = None,
    store: str | Path | None = None,
    outputs: Sequence[str] = (),
    model=None,
    data: pd.DataFrame | None = None,
    progress: bool = False,
) -> EstimationResult:
    """Estimate a config's parameters: modes from random prior draws, then the posterior.

    Parameters
    ----------
    config : CalibrationConfig, path or name
    settings : dict, optional
        Overrides of the config's ``estimate:`` settings (restarts, popsize, maxiter, local_iter,
        walkers, steps, burn, thin, draws, seed, dt), checked by the same rules.
    window : (start, stop), optional
        The years whose observations enter the likelihood (default the config's window).
    store : path, optional
        A folder that keeps the work (the modes once the search has finished, then the chain,
        checkpointed every step): an interrupted call resumes from it (during the mode search: the
        search starts again); a folder of another estimation is refused.
    outputs : names, optional
        Model outputs (not targets) to report posterior bands of over the run, e.g. sector net lending.
    model, data : optional
        Replace the config's model or data (recovery studies).
    progress : bool
        Progress bars for the mode search and the sampler.
    """
    require("cma", "emcee", "arviz", "h5py")
    cfg = config if isinstance(config, CalibrationConfig) else load_config(config)
    s = estimate_settings(cfg, settings)
    win = tuple(window) if window is not None else cfg.window
    if cfg.search.get("dt") != s["dt"]:
        cfg = dataclasses.replace(cfg, search={**cfg.search, "dt": s["dt"]})
    t0 = time.perf_counter()
    prob = Problem(cfg, model=model, data=data)
    post = Posterior(prob, (float(win[0]), float(win[1])))
    unknown = [o for o in outputs if o not in prob.cm.output_names]
    if unknown:
        raise ConfigError(
            f"outputs: {', '.join(map(repr, unknown))} not an output of {prob.model.name!r}"
            + "".join(
                f"; did you mean {closest(o, prob.cm.output_names)!r}?"
                for o in unknown
                if closest(o, prob.cm.output_names)
            )
        )
    d = len(post.names)
    if s["walkers"] < 2 * d:
        raise ConfigError(
            f"estimate.walkers: expected at least twice the {d} estimated quantities ({2 * d}), got {s['walkers']}",
            cfg.source,
        )
    seed = int(s["seed"])
    search = {k: s[k] for k in ("restarts", "popsize", "maxiter", "local_iter", "seed", "dt")}
    modes = None
    if store is not None:
        from sdmodel.core.store import claim_store, study_key

        key = study_key("estimation", cfg.hash, prob.data_hash, prob.model.spec_hash, win, search, s["walkers"])
        store = claim_store(store, key, {"kind": "estimation", "config": cfg.source, **search})
    modes = _modes(post, s, Path(store) / "modes.json" if store is not None else None, progress)
    best = modes[0]
    reference = reference_point(post, {n: prob.model.parameters[n].value for n in post.model_names})[1]
    if not math.isfinite(best.log_posterior):
        raise ConfigError(
            "every candidate of the mode search failed or had zero probability: check the priors and the model",
            cfg.source,
        )
    chain = Path(store) / "chain.h5" if store is not None else None
    fresh = chain is None or not chain.exists()
    backend = sample(
        post,
        np.array(best.x),
        walkers=int(s["walkers"]),
        steps=int(s["steps"]),
        seed=seed,
        checkpoint=chain,
        progress=progress,
        spread=(start := laplace_start(post, np.array(best.x)) if fresh else (None, ""))[0],
    )
    if fresh:
        s = {**s, "start": start[1]}
    burn, thin = int(s["burn"]), int(s["thin"])
    Zc = backend.get_chain(discard=burn, thin=thin)  # (draws, walkers, d)
    lpc = backend.get_log_prob(discard=burn, thin=thin)
    n_draw, n_walk, _ = Zc.shape
    Xc, jac = post.from_z(Zc.reshape(-1, d))
    Xc = Xc.reshape(n_draw, n_walk, d)
    lpc = lpc - jac.reshape(n_draw, n_walk)  # the log posterior itself (without the map's Jacobian)
    az = arviz()
    rng = np.random.default_rng(seed + 7)
    flat = Xc.reshape(-1, d)
    pick = rng.choice(len(flat), size=min(int(s["draws"]), len(flat)), replace=False)
    draws = flat[pick]
    pred, sims = predictive(post, draws, rng)
    prior_draws = post.draw_prior(1000, np.random.default_rng(seed + 11))
    obs_dims = {t.name: [f"{t.name}_year"] for t in cfg.targets}
    coords = {f"{t.name}_year": prob.obs[t.name][0] for t in cfg.targets}
    idata = az.from_dict(
        posterior={n: Xc[:, :, j].T for j, n in enumerate(post.names)},  # (chain = walker, draw)
        sample_stats={
            "lp": lpc.T,
            "acceptance_rate": np.tile(backend.accepted / max(backend.iteration, 1), (n_draw, 1)).T,
        },
        prior={n: prior_draws[None, :, j] for j, n in enumerate(post.names)},
        posterior_predictive={k: v[None] for k, v in sims.items()},
        observed_data={t.name: prob.obs[t.name][1] for t in cfg.targets},
        coords=coords,
        dims=obs_dims,
        attrs={"config": cfg.source, "config_hash": cfg.hash, "seed": seed, "sampler": "emcee DEMove/DESnookerMove"},
    )
    table = _table(post, idata, az)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # emcee warns when the chain is shorter than 50 tau: the report says so
        table["tau"] = backend.get_autocorr_time(discard=burn, tol=0)
    s = {**s, "steps_done": int(backend.iteration)}
    at_edge = tuple(n for n, z in zip(post.names, post.to_z(np.array(best.x))[0]) if abs(z) > 7.9)
    med = np.array([table.loc[n, "q50"] for n in post.names])
    paths = prob.simulate(med[: post.n_model])
    fit = fit_statistics(prob, paths, post.window)
    median_lp = float(post.log_prior(med)[0] + post.log_likelihood(med[None], paths)[0])
    q = np.percentile(lpc[np.isfinite(lpc)], [1, 50, 99]) if np.isfinite(lpc).any() else None
    draws_lp = None if q is None else (float(q[0]), float(q[1]), float(q[2]))
    chords = _chords(post, flat, draws_lp, np.random.default_rng(seed + 13))  # its own stream
    facts = None
    if cfg.facts:
        fn = load_facts(cfg.facts)
        current = np.array([prob.model.parameters[n].value for n in post.model_names])
        facts = fact_shares(post, fn, draws, np.array(best.x), int(s["draws"]), rng, current)
    mode_rows = [
        dict(
            restart=m.restart,
            log_posterior=m.log_posterior,
            generations=m.generations,
            message=m.message,
            **dict(zip(post.names, m.x)),
        )
        for m in modes
    ]
    return EstimationResult(
        config=cfg,
        window=(post.window[0], post.window[1]),
        names=tuple(post.names),
        modes=pd.DataFrame(mode_rows),
        idata=idata,
        table=table,
        predictive=pred,
        fit=fit,
        facts=facts,
        settings=s,
        evaluations=prob.evaluations,
        wall_s=time.perf_counter() - t0,
        data_hash=prob.data_hash,
        spec_hash=prob.model.spec_hash,
        model_name=prob.model.name,
        sources={q.name: q.prior.source for q in post.quantities},
        reference=reference,
        at_edge=at_edge,
        output_bands=output_bands(post, draws, outputs) if outputs else None,
        median_lp=median_lp,
        draws_lp=draws_lp,
        chords=chords,
    )


def _chords(post: Posterior, flat: np.ndarray, draws_lp, rng, pairs: int = 50) -> tuple[int, float, float] | None:
    """The log posterior at the midpoints of ``pairs`` random pairs of the kept draws (one batch): their
    median, and the share below the draws' 1% quantile (see :attr:`EstimationResult.chords`)."""
    if draws_lp is None or len(flat) < 2:
        return None
    i = rng.integers(0, len(flat), size=(pairs, 2))
    i = i[i[:, 0] != i[:, 1]]
    if not len(i):
        return None
    lp = post.log_posterior(0.5 * (flat[i[:, 0]] + flat[i[:, 1]]))
    lp = np.where(np.isfinite(lp), lp, -np.inf)
    return len(i), float(np.median(lp)), float(np.mean(lp < draws_lp[0]))


def recovery(
    config: CalibrationConfig | str | Path,
    *,
    replications: int = 20,
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulation-based calibration (Talts et al. 2018): can the estimation recover what made the data?

    Each replication draws every estimated quantity from its prior, simulates the model there,
    adds measurement errors drawn from the measurement model (AR(1) where set) to the fitted
    targets, and estimates on those synthetic data with the config's priors.  One row per
    replication and quantity: the true value, the posterior's rank of it (a share in [0, 1],
    uniform when the estimation is calibrated) and whether the central 50% and 90% posterior
    intervals cover it (in 50% and 90% of rows when calibrated).
    """
    cfg = config if isinstance(config, CalibrationConfig) else load_config(config)
    base = Problem(cfg)
    post = Posterior(base)
    rng = np.random.default_rng(seed)
    truths = post.draw_prior(replications, rng)
    paths = post.simulate(truths)
    for _ in range(
        20
    ):  # a prior draw whose run fails makes no data: drawn again (the truths are the prior given success)
        bad = np.flatnonzero(~paths["ok"])
        if not len(bad):
            break
        truths[bad] = post.draw_prior(len(bad), rng)
        again = post.simulate(truths[bad])
        for k in paths:
            paths[k][bad] = again[k]
    else:
        raise ConfigError("recovery: prior draws keep failing to run: check the priors and the model", cfg.source)
    rows = []
    bar = _bar(progress, replications, "recovery", "fit")
    for i in range(replications):
        frame = pd.DataFrame(
            index=pd.Index(np.unique(np.concatenate([base.obs[t.name][0] for t in cfg.targets])), name=cfg.time_column)
        )
        for t in cfg.targets:
            years = base.obs[t.name][0]
            m = np.asarray(paths[t.name][i], float)
            if any(f.name == t.name for f in post.fitted):
                sd, rho = post.measurement(truths[i : i + 1], t)
                e = ar1_draw(years, sd, rho, rng)[0]
                m = m * np.exp(e / 100) if t.log else m + e
            frame.loc[years, t.column] = m
        res = estimate(cfg, settings={**dict(settings or {}), "seed": seed + i + 1}, data=frame.reset_index())
        for j, n in enumerate(post.names):
            # draws about one autocorrelation time apart (Talts et al.: ranks of correlated draws are not uniform)
            every = max(1, math.ceil(float(res.table.loc[n, "tau"]) / int(res.settings["thin"])))
            v = res.idata.posterior[n].values[:, ::every].ravel()
            lo50, hi50, lo90, hi90 = np.percentile(v, [25, 75, 5, 95])
            x = truths[i, j]
            rows.append(
                dict(
                    replication=i,
                    quantity=n,
                    true=x,
                    rank=float(np.mean(v < x)),
                    in50=bool(lo50 <= x <= hi50),
                    in90=bool(lo90 <= x <= hi90),
                    r_hat=float(res.table.loc[n, "r_hat"]),
                )
            )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class ValidationResult:
    """Rolling-origin out-of-sample forecasts of a config's targets against naive forecasts.

    ``forecasts``: long, one row per origin, target and year after the origin: the data, the model's
    forecast (mode re-estimated on data up to the origin) with a 90% band from its measurement model,
    and the naive forecasts made at the same origin (no change, the last five years' linear trend, an
    AR(1) fitted by statsmodels on the window up to the origin).  ``skill``: per target and horizon
    band, the RMSE of each and the model's RMSE over the best naive one (below 1: skill).
    """

    config: CalibrationConfig
    origins: tuple[float, ...]
    forecasts: pd.DataFrame
    skill: pd.DataFrame
    modes: pd.DataFrame  # per origin: log posterior of the mode, its values
    settings: Mapping[str, Any]
    wall_s: float
    model_name: str

    def summary(self) -> str:
        c = self.config
        fmt = lambda v: f"{v:.3g}"  # noqa: E731
        return "\n".join(
            [
                f"rolling-origin validation of {self.model_name}"
                + (f" (scenario {c.scenario})" if c.scenario else "")
                + f" on {c.data.name}: origins {', '.join(f'{o:g}' for o in self.origins)}",
                "each origin: the mode re-estimated from prior draws on data up to it; the model's forecast is its",
                "path (run with the scenario's realised exogenous paths: a conditional forecast) plus its AR(1) error",
                "at the origin, decaying ('model path': the path alone); scored against naive forecasts made at the",
                "same origin; skill = model RMSE / best naive RMSE of the row (below 1: the model forecasts better)",
                *self._not_fitted(),
                "",
                self.skill.to_string(float_format=fmt),
            ]
        )

    def _not_fitted(self) -> list[str]:
        """A line per origin whose fit left targets out: no observation up to it (scored only where they have)."""
        col = self.modes.get("not_fitted") if len(self.modes) else None
        if col is None:
            return []
        return [
            f"origin {o:g}: not fitted (no observation up to it): {names}"
            for o, names in zip(self.modes["origin"], col)
            if isinstance(names, str) and names
        ]


def naive_forecasts(years: np.ndarray, y: np.ndarray, origin: float, ahead: np.ndarray) -> dict[str, np.ndarray]:
    """No change, the last five years' linear trend and an AR(1) with a constant (statsmodels ``AutoReg``),
    each made from the observations up to ``origin`` for the years ``ahead``.

    >>> f = naive_forecasts(np.arange(2000.0, 2011), np.arange(11.0), 2010, np.array([2011.0, 2012.0]))
    >>> f["no change"].tolist(), [round(float(v), 6) for v in f["trend"]]
    ([10.0, 10.0], [11.0, 12.0])
    """
    past = years <= origin + 1e-9
    yp, tp = y[past], years[past]
    last = yp[-1]
    h = ahead - tp[-1]
    out = {"no change": np.full(len(ahead), last)}
    k = tp >= tp[-1] - 4 - 1e-9
    slope = np.polyfit(tp[k], yp[k], 1)[0] if k.sum() >= 2 else 0.0
    out["trend"] = last + slope * h
    ar = np.full(len(ahead), np.nan)
    consecutive = np.all(np.abs(np.diff(tp) - 1) < 1e-9)
    if len(yp) >= 6 and consecutive:
        from statsmodels.tsa.ar_model import AutoReg

        fit = AutoReg(yp, lags=1, trend="c").fit()
        steps = int(round(h.max()))
        path = fit.predict(start=len(yp), end=len(yp) + steps - 1)
        ar = np.asarray(path)[np.round(h).astype(int) - 1]
    out["AR(1)"] = ar
    return out


def validate(
    config: CalibrationConfig | str | Path,
    *,
    origins: Sequence[float] | None = None,
    settings: Mapping[str, Any] | None = None,
    store: str | Path | None = None,
    progress: bool = False,
) -> ValidationResult:
    """Rolling-origin validation: for each origin, re-estimate the mode on data up to it (CMA-ES from prior
    draws, the config's ``estimate`` settings), forecast every target to the end of the data, and score the
    forecasts against naive ones made at the same origin.  With ``store`` each origin's result is kept:
    an interrupted validation resumes at the next origin."""
    require("cma", "statsmodels")
    cfg = config if isinstance(config, CalibrationConfig) else load_config(config)
    origins = tuple(float(o) for o in (origins if origins is not None else cfg.origins))
    if not origins:
        raise ConfigError(
            "validation.origins: none given (add validation: {origins: [...]} or pass --origins)", cfg.source
        )
    s = estimate_settings(cfg, settings)
    t0 = time.perf_counter()
    prob = Problem(cfg)
    last = max(float(prob.obs[t.name][0].max()) for t in cfg.targets)
    bad = [o for o in origins if not cfg.window[0] + 5 <= o < last]
    if bad:
        raise ConfigError(
            f"validation.origins: {bad} leave fewer than five years to fit or none to forecast "
            f"(data {cfg.window[0]:g}-{last:g})",
            cfg.source,
        )
    if store is not None:
        from sdmodel.core.store import claim_store, study_key

        search = {k: s[k] for k in ("restarts", "popsize", "maxiter", "local_iter", "seed", "dt")}
        key = study_key("validation", cfg.hash, prob.data_hash, prob.model.spec_hash, origins, search)
        store = claim_store(store, key, {"kind": "validation", "config": cfg.source, "origins": origins, **search})
    rows, mode_rows = [], []
    for o in origins:
        post = Posterior(prob, (cfg.window[0], o), skip_unobserved=True)
        modes = _modes(post, s, Path(store) / f"origin-{o:g}.json" if store is not None else None, progress)
        best = np.array(modes[0].x)
        mode_rows.append(
            dict(
                origin=o,
                log_posterior=modes[0].log_posterior,
                not_fitted=" ".join(post.skipped),
                **dict(zip(post.names, best)),
            )
        )
        paths = prob.simulate(best[: post.n_model])
        for t in cfg.targets:
            years, y = prob.obs[t.name]
            m = paths[t.name][0].astype(float)
            if t.log:
                with np.errstate(invalid="ignore", divide="ignore"):
                    y, m = 100 * np.log(y), 100 * np.log(np.where(m > 0, m, np.nan))
            ahead = years > o + 1e-9
            if not ahead.any() or not (years <= o + 1e-9).any():
                continue
            naive = naive_forecasts(years, y, o, years[ahead])
            # the estimated model's forecast: its path plus the AR(1) error at the last observation, decaying
            # (data = model + e, e AR(1)); its 90% band from the error alone (parameters at the mode)
            fc_, lo, hi = m[ahead].copy(), np.full(ahead.sum(), np.nan), np.full(ahead.sum(), np.nan)
            fitted = next((f for f in post.fitted if f.name == t.name), None)
            if fitted is not None:
                sd, rho = post.measurement(best[None, :], fitted)
                last = np.flatnonzero(years <= o + 1e-9)[-1]
                gap = years[ahead] - years[last]
                e_last = y[last] - m[last]
                decay = np.power(rho[0], gap) if np.isfinite(e_last) else np.zeros(len(gap))
                fc_ = m[ahead] + decay * (e_last if np.isfinite(e_last) else 0.0)
                half = 1.645 * sd[0] * np.sqrt(np.clip(1 - decay**2, 0, None))
                lo, hi = fc_ - half, fc_ + half
            for j, year in enumerate(years[ahead]):
                rows.append(
                    dict(
                        origin=o,
                        target=t.name,
                        year=float(year),
                        horizon=float(year - o),
                        data=float(y[ahead][j]),
                        model=float(fc_[j]),
                        q5=float(lo[j]),
                        q95=float(hi[j]),
                        **{"model path": float(m[ahead][j])},
                        **{k: float(v[j]) for k, v in naive.items()},
                        units=t.units,
                    )
                )
    fc = pd.DataFrame(rows)
    skill = skill_table(fc)
    return ValidationResult(
        config=cfg,
        origins=origins,
        forecasts=fc,
        skill=skill,
        modes=pd.DataFrame(mode_rows),
        settings=s,
        wall_s=time.perf_counter() - t0,
        model_name=prob.model.name,
    )


#: the naive forecasts the model is scored against
NAIVE = ("no change", "trend", "AR(1)")


def _rmse(errors) -> float:
    """Root mean square of the finite errors; NaN where there are none (a forecast that cannot be made)."""
    e = np.asarray(errors, dtype=float)
    e = e[np.isfinite(e)]
    return float(np.sqrt(np.mean(e**2))) if e.size else float("nan")


def skill_table(
    fc: pd.DataFrame, bands: Sequence[tuple[int, int]] = ((1, 2), (3, 5), (6, 10), (11, 99))
) -> pd.DataFrame:
    """RMSE per target and horizon band (years ahead) of the model and the naive forecasts, and the
    model's skill: its RMSE over the best naive RMSE in that row (below 1: skill; the best naive forecast
    is chosen after the fact, per row, which favours the naive side). ``model`` is the estimated model's
    forecast (its path plus its AR(1) error at the origin, decaying), ``model path`` the path alone
    (``path_skill``). A naive forecast that cannot be made (AR(1) with fewer than six consecutive
    years) is left out of the best."""
    rows = []
    for (target, units), g in fc.groupby(["target", "units"], sort=False):
        for a, b in [*bands, (1, 99)]:
            k = g[(g["horizon"] >= a - 1e-9) & (g["horizon"] <= b + 1e-9)]
            if k.empty:
                continue
            r = {name: _rmse(k[name] - k["data"]) for name in ("model", "model path", "no change", "trend", "AR(1)")}
            naive = {n: v for n, v in r.items() if n in NAIVE and np.isfinite(v)}
            best = min(naive.values(), default=np.nan)
            rows.append(
                dict(
                    target=target,
                    horizons="all" if (a, b) == (1, 99) else f"{a}-{min(b, int(k['horizon'].max()))}",
                    n=len(k),
                    units=units,
                    **r,
                    best_naive=min(naive, key=naive.__getitem__) if naive else "",
                    skill=r["model"] / best if best > 0 else np.nan,
                    path_skill=r["model path"] / best if best > 0 else np.nan,
                )
            )
    return pd.DataFrame(rows).set_index(["target", "horizons"])


def _modes(post: Posterior, s: Mapping[str, Any], saved: Path | None, progress: bool) -> list[Mode]:
    """The modes kept in ``saved`` (a checkpoint), or searched with the settings ``s`` and kept there."""
    modes = _load_modes(saved) if saved is not None else None
    if modes is None:
        modes = find_modes(
            post,
            restarts=int(s["restarts"]),
            popsize=int(s["popsize"]),
            maxiter=int(s["maxiter"]),
            local_iter=int(s["local_iter"]),
            seed=int(s["seed"]),
            progress=progress,
        )
        if saved is not None:
            _save_modes(saved, modes)
    return modes


def _save_modes(path: Path, modes: Sequence[Mode]) -> None:
    import json

    from sdmodel.core.files import write_atomic_file

    write_atomic_file(path, (json.dumps([dataclasses.asdict(m) for m in modes], indent=1) + "\n").encode())


def _load_modes(path: Path) -> list[Mode] | None:
    import json

    if not path.is_file():
        return None
    return [Mode(**{**m, "start": tuple(m["start"]), "x": tuple(m["x"])}) for m in json.loads(path.read_text())]


@dataclass(frozen=True)
class PosteriorSample:
    """Draws of a model's parameters from an estimation's posterior, to run studies over.

    ``X`` (draws, parameters) in the order of ``names``; ``source`` the estimation directory,
    ``digest`` a hash of the draws (it keys the studies' chunk stores).
    """

    names: tuple[str, ...]
    X: np.ndarray
    source: str
    model: str = ""
    scenario: str | None = None

    def check_for(self, model: str, scenario: str | None, source: str) -> None:
        """Refuse to run a study of ``model``/``scenario`` (declared in ``source``) over a posterior of another."""
        same_model = not self.model or Path(self.model).name == Path(str(model)).name
        if not same_model or (self.scenario or None) != (scenario or None):
            raise ConfigError(
                f"--posterior {self.source}: an estimation of {Path(self.model).name} (scenario "
                f"{self.scenario}), but the study runs {Path(str(model)).name} (scenario {scenario})",
                source,
            )

    @property
    def digest(self) -> str:
        import hashlib

        return hashlib.sha256(np.ascontiguousarray(self.X).tobytes() + "|".join(self.names).encode()).hexdigest()[:16]


def load_posterior(run_dir: str | Path, draws: int = 100, seed: int = 0) -> PosteriorSample:
    """``draws`` posterior draws of the model parameters (not the measurement errors) from an estimation
    directory (``posterior.nc``), chosen at random with ``seed`` from all walkers and steps kept.

    Raises
    ------
    ManifestError
        If ``run_dir`` is not an estimation directory.
    """
    from sdmodel.core.errors import ManifestError
    from sdmodel.core.manifest import EstimationManifest, read_manifest

    man = read_manifest(run_dir)
    if not isinstance(man, EstimationManifest):
        raise ManifestError(f"{run_dir}: a {man.kind} directory, not an estimation (sdmodel estimate writes one)")
    nc = Path(run_dir) / "posterior.nc"
    if not nc.is_file():
        raise ManifestError(f"{run_dir}: no posterior.nc (an estimation directory that was not finished?)")
    if draws < 1:
        raise ConfigError(f"--draws: expected a positive whole number, got {draws}")
    idata = arviz().from_netcdf(str(nc), engine="h5netcdf")
    names, X = posterior_draws(idata, n=draws, seed=seed)
    return PosteriorSample(tuple(names), X, str(run_dir), man.model, man.scenario)


def posterior_draws(idata, names: Sequence[str] | None = None, n: int | None = None, seed: int = 0):
    """``(names, X)``: draws of the model parameters (rows) from an InferenceData's posterior."""
    post = idata.posterior
    names = (
        [v for v in post.data_vars if not (str(v).startswith("sd.") or str(v).startswith("ar1."))]
        if names is None
        else list(names)
    )
    X = np.column_stack([post[v].values.ravel() for v in names])
    if n is not None and n < len(X):
        X = X[np.random.default_rng(seed).choice(len(X), size=n, replace=False)]
    return names, X
