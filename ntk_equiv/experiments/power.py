"""Power of the checks' statistical tests against named alternatives.

A pass means something only if the test would have failed had the law been
wrong; the power says how likely that failure is at the sizes the check ran.
Alternatives are named like the negative controls
(:mod:`ntk_equiv.claims.controls`): ``cov0.7``/``cov1.3`` (the expected law's
covariance scaled by 0.7 / 1.3), ``factor`` (the factor 2 at stake dropped or
added). Every function here is analytic, from the test's own null
distribution and the sample sizes (and, for a Student-t test, the standard
error the run estimated); :func:`stated` packs the numbers into the
``details["power"]`` schema of ``controls.POWER_KEY``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: The power the checks aim for against each named alternative (issue 17).
GOAL = 0.99

#: The covariance scalings of the ``cov0.7`` / ``cov1.3`` controls.
COV_ALTERNATIVES = {"cov0.7": 0.7, "cov1.3": 1.3}

_NODES = 4000  # quantile nodes of the chi-square average in two_sided


def two_sided(shift: float, q: float, df: int | None = None) -> float:
    """``P(|T + shift| > q)``: power of the two-sided test ``|T| > q`` when the
    statistic is off its null value by ``shift`` standard errors; ``T`` standard
    normal (``df=None``) or Student-t with ``df`` degrees (non-central t)."""
    if not math.isfinite(shift):
        return 1.0
    if df is None:
        return float(stats.norm.sf(q - shift) + stats.norm.cdf(-q - shift))
    # T + shift = (Z + shift') / sqrt(V / df) with V ~ chi2_df: average the normal
    # power over V's quantiles (scipy's non-central t returns nan far in the tail)
    v = stats.chi2(df).ppf((np.arange(_NODES) + 0.5) / _NODES) / df
    s = np.sqrt(v)
    return float(np.mean(stats.norm.sf(q * s - shift) + stats.norm.cdf(-q * s - shift)))


def scale_shift(c: float, se: float) -> float:
    """The shift, in standard errors, of a test of ``a = 1`` for a statistic
    ``a`` linear in the data's covariance (a whitened second moment), when the
    expected covariance is scaled by ``c``: the check then tests
    ``a / c = 1``, i.e. ``|a - c| > q se`` with ``a ~ 1 + se T``."""
    return abs(1.0 - c) / se


def scale_power(se: float, q: float, df: int | None = None,
                alternatives: dict[str, float] = COV_ALTERNATIVES) -> dict[str, float]:
    """Power of the test ``|a - 1| <= q se`` of a whitened second moment
    ``a`` (null value 1, standard error ``se``) against each covariance
    scaling of ``alternatives``."""
    return {name: two_sided(scale_shift(c, se), q, df) for name, c in alternatives.items()}


def chi2_sum_power(dof: int, alpha: float, c: float) -> float:
    """Power of the exact two-sided test of ``S ~ chi^2_dof`` (a sum of squared
    whitened normals; rejected outside the ``alpha/2`` quantiles) when the
    expected scale is ``c`` times the true one, so that the check sees
    ``S' = S / c`` with ``S ~ chi^2_dof``."""
    law = stats.chi2(dof)
    lo, hi = law.ppf(alpha / 2), law.isf(alpha / 2)
    return float(law.cdf(c * lo) + law.sf(c * hi))


def chi2_sum_size(alpha: float, goal: float = GOAL, alternatives: dict[str, float] = COV_ALTERNATIVES,
                  start: int = 2) -> int:
    """The smallest ``dof`` (a power of 2 step, then bisection) at which
    :func:`chi2_sum_power` reaches ``goal`` against every scaling in
    ``alternatives``: the sample size to ask for."""
    def ok(m: int) -> bool:
        return all(chi2_sum_power(m, alpha, c) >= goal for c in alternatives.values())

    hi = max(int(start), 2)
    while not ok(hi):
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def stated(power: dict[str, float], method: str) -> dict:
    """``{"power": {alternative: probability}, "power_method": method}``: the
    ``Result.details`` entries of ``controls.POWER_KEY``."""
    return {"power": {k: float(v) for k, v in power.items()}, "power_method": method}


def summary(power: dict[str, float]) -> str:
    """``"power cov0.7 1.00, cov1.3 0.99"`` for the row's statistic string
    (floored at 2 decimals, so 0.989 never shows as 0.99)."""
    return "power " + ", ".join(f"{k} {math.floor(v * 100) / 100:.2f}" for k, v in power.items())


def weakest(power: dict[str, float]) -> float:
    """The smallest power over the alternatives."""
    return min(power.values()) if power else float("nan")
