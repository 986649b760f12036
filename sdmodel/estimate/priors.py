"""Prior distributions of estimated parameters, declared in a config by scipy.stats name.

A prior is a mapping with the distribution's name, its parameters in the parameter's own
units, and where it comes from::

    c_y:   {prior: {dist: beta, a: 14, b: 6, source: "Godley & Lavoie (2007): alpha1 0.6"}}
    kappa: {prior: {dist: gamma, a: 2, scale: 0.1, source: "weakly informative: ..."}}

=========  =======================================  ==========================================
dist       keys                                     scipy.stats
=========  =======================================  ==========================================
normal     loc, scale                               ``norm(loc, scale)``
truncnorm  loc, scale, lower, upper                 ``truncnorm((lower-loc)/scale, (upper-loc)/scale, loc, scale)``
lognorm    s, scale (the median)                    ``lognorm(s, scale=scale)``
gamma      a, scale                                 ``gamma(a, scale=scale)``
beta       a, b, lower (default 0), upper (1)       ``beta(a, b, loc=lower, scale=upper-lower)``
uniform    lower, upper                             ``uniform(lower, upper-lower)``
=========  =======================================  ==========================================

Every prior names its ``source`` (a citation, a statistic, or "weakly informative" and
why).  A parameter's ``bounds``, where the config gives them, truncate its prior: the
density is the prior's inside the bounds and zero outside (the normalising constant does
not matter to the estimation).

Examples
--------
>>> from sdmodel.core.validate import Problems
>>> p = Problems("c.yaml")
>>> pr = read_prior(p, "parameters.kappa.prior", {"dist": "gamma", "a": 2, "scale": 0.1, "source": "x"})
>>> pr.describe(), round(pr.mean, 6), pr.support
('gamma(a=2, scale=0.1)', 0.2, (0.0, inf))
>>> read_prior(p, "parameters.c.prior", {"dist": "gama", "a": 2, "source": "x"})
>>> print(p.items[0])  # doctest: +NORMALIZE_WHITESPACE
parameters.c.prior.dist: expected one of 'normal', 'truncnorm', 'lognorm', 'gamma', 'beta', 'uniform',
got 'gama'; did you mean 'gamma'?
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdmodel.core.validate import Problems

#: dist -> (required keys, optional keys with their defaults)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "normal": (("loc", "scale"), {}),
    "truncnorm": (("loc", "scale", "lower", "upper"), {}),
    "lognorm": (("s", "scale"), {}),
    "gamma": (("a", "scale"), {}),
    "beta": (("a", "b"), {"lower": 0.0, "upper": 1.0}),
    "uniform": (("lower", "upper"), {}),
}
#: keys that must be > 0
POSITIVE = {"scale", "s", "a", "b"}


@dataclass(frozen=True)
class Prior:
    """One prior: ``dist`` (a key of :data:`DISTRIBUTIONS`), its ``args``, ``source``, and the
    ``bounds`` that truncate it (``(-inf, inf)`` where none)."""

    dist: str
    args: tuple[tuple[str, float], ...]
    source: str
    bounds: tuple[float, float] = (-math.inf, math.inf)
    _frozen: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_frozen", _scipy(self.dist, dict(self.args)))

    # -- what it is ---------------------------------------------------------------
    def describe(self) -> str:
        return f"{self.dist}({', '.join(f'{k}={v:g}' for k, v in self.args)})"

    @property
    def support(self) -> tuple[float, float]:
        """Where the density is positive: the distribution's support within the bounds."""
        a, b = (float(v) for v in self._frozen.support())
        return max(a, self.bounds[0]), min(b, self.bounds[1])

    @property
    def mean(self) -> float:
        """The mean of the prior truncated to its bounds."""
        lo, hi = self.support
        return float(self._frozen.expect(lambda x: x, lb=lo, ub=hi, conditional=True))

    @property
    def sd(self) -> float:
        """The standard deviation of the prior truncated to its bounds."""
        lo, hi = self.support
        m = self.mean
        return float(np.sqrt(self._frozen.expect(lambda x: (x - m) ** 2, lb=lo, ub=hi, conditional=True)))

    def with_bounds(self, bounds: tuple[float, float]) -> Prior:
        return Prior(self.dist, self.args, self.source, (float(bounds[0]), float(bounds[1])))

    # -- numbers ------------------------------------------------------------------
    def _mass(self) -> tuple[float, float]:
        return float(self._frozen.cdf(self.bounds[0])), float(self._frozen.cdf(self.bounds[1]))

    def logpdf(self, x) -> np.ndarray:
        """Log density (unnormalised inside the bounds, -inf outside), elementwise."""
        x = np.asarray(x, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(self._frozen.logpdf(x), float)
        inside = (x >= self.bounds[0]) & (x <= self.bounds[1])
        return np.where(inside & np.isfinite(out), out, -np.inf)

    def peak_logpdf(self) -> float:
        """The largest log density (over a fine grid of quantiles and the mode's neighbourhood)."""
        x = self.ppf(np.linspace(0.0, 1.0, 2001)[1:-1])
        return float(np.max(self.logpdf(x)))

    def ppf(self, q) -> np.ndarray:
        """Quantiles of the prior truncated to its bounds."""
        lo, hi = self._mass()
        return np.asarray(self._frozen.ppf(lo + np.asarray(q, float) * (hi - lo)), float)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws (inverse-cdf sampling of the truncated prior)."""
        return self.ppf(rng.uniform(0.0, 1.0, n))

    def interval(self, mass: float = 0.9) -> tuple[float, float]:
        lo, hi = self.ppf([(1 - mass) / 2, (1 + mass) / 2])
        return float(lo), float(hi)


def _scipy(dist: str, a: dict[str, float]):
    from scipy import stats

    if dist == "normal":
        return stats.norm(a["loc"], a["scale"])
    if dist == "truncnorm":
        return stats.truncnorm(
            (a["lower"] - a["loc"]) / a["scale"], (a["upper"] - a["loc"]) / a["scale"], a["loc"], a["scale"]
        )
    if dist == "lognorm":
        return stats.lognorm(a["s"], scale=a["scale"])
    if dist == "gamma":
        return stats.gamma(a["a"], scale=a["scale"])
    if dist == "beta":
        return stats.beta(a["a"], a["b"], loc=a["lower"], scale=a["upper"] - a["lower"])
    if dist == "uniform":
        return stats.uniform(a["lower"], a["upper"] - a["lower"])
    raise ValueError(f"unknown distribution {dist!r}")


def read_prior(problems: Problems, key: str, v: Any, mapping: Any = None, sub: Any = None) -> Prior | None:
    """A :class:`Prior` from its config mapping, or None with every problem recorded (dist, keys,
    values, source)."""
    if isinstance(v, (list, tuple)):
        problems.add(
            key,
            f"expected a mapping {{dist: ..., source: ...}}, got {list(v)!r}; a prior [mean, sd] is now "
            "written {dist: normal, loc: MEAN, scale: SD, source: WHERE IT COMES FROM}",
            mapping,
            sub,
        )
        return None
    d = problems.mapping(key, v, mapping, sub, optional=False, expected="a mapping {dist: NAME, ..., source: TEXT}")
    if d is None:
        return None
    if "dist" not in d:
        problems.add(f"{key}.dist", f"missing (required): one of {', '.join(DISTRIBUTIONS)}", d, "dist")
        return None
    dist = problems.one_of(f"{key}.dist", d["dist"], tuple(DISTRIBUTIONS), d, "dist")
    if dist is None:
        return None
    required, optional = DISTRIBUTIONS[dist]
    problems.unknown_keys(key, d, ("dist", "source", *required, *optional), mapping, sub)
    args: dict[str, float] = dict(optional)
    ok = True
    for k in required:
        if k not in d:
            problems.add(f"{key}.{k}", f"missing (required by {dist}: {', '.join(required)})", d, "dist")
            ok = False
    for k in (*required, *optional):
        if k in d:
            x = problems.number(f"{key}.{k}", d[k], d, k, positive=k in POSITIVE)
            if x is None:
                ok = False
            else:
                args[k] = float(x)
    src = d.get("source")
    if not isinstance(src, str) or not src.strip():
        problems.add(
            f"{key}.source",
            "missing: say where the prior comes from (a citation, a statistic, or 'weakly informative' and why)",
            d,
            "source" if "source" in d else "dist",
        )
        ok = False
    if ok and "lower" in args and "upper" in args and not args["lower"] < args["upper"]:
        problems.add(f"{key}", f"expected lower < upper, got [{args['lower']:g}, {args['upper']:g}]", mapping, sub)
        ok = False
    if not ok:
        return None
    return Prior(dist, tuple((k, args[k]) for k in (*required, *optional) if k in args), " ".join(str(src).split()))


def check_in_bounds(problems: Problems, key: str, prior: Prior, bounds, mapping=None, sub=None) -> Prior | None:
    """The prior truncated to ``bounds``; recorded as a problem when (almost) none of its mass lies inside."""
    p = prior.with_bounds(bounds)
    lo, hi = p._mass()
    if not hi - lo > 1e-6:
        problems.add(
            key,
            f"the prior {prior.describe()} puts no mass inside the bounds [{bounds[0]:g}, {bounds[1]:g}] "
            f"(its 90% interval is [{prior.interval()[0]:.4g}, {prior.interval()[1]:.4g}]): "
            "change the prior or the bounds",
            mapping,
            sub,
        )
        return None
    return p
