"""The statistics the experiments report: Bonferroni thresholds at a false-alarm
probability of 1e-6 per check, and the fitted rate of an error against width."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: False-alarm probability of one whole check (Bonferroni over the tests inside it).
FALSE_ALARM = 1e-6


def z_threshold(m: int, alpha: float = FALSE_ALARM) -> float:
    """Two-sided Bonferroni z-threshold: ``P(max_i |Z_i| > z) <= alpha`` for ``m`` normals."""
    return float(stats.norm.isf(alpha / (2 * max(int(m), 1))))


def t_threshold(df: int, tests: int = 1, alpha: float = FALSE_ALARM) -> float:
    """Two-sided Bonferroni Student-t threshold: ``P(max |T_i| > q) <= alpha``
    for ``tests`` statistics with ``df`` degrees of freedom."""
    return float(stats.t.isf(alpha / (2 * max(int(tests), 1)), df))


@dataclass
class RateFit:
    """Least-squares slope of ``log(rms error)`` against ``log(width)``, with its
    standard error from the seed-to-seed scatter (delta method).
    ``errors[w, s]`` is the error of seed ``s`` at width ``widths[w]``."""

    widths: np.ndarray
    rms: np.ndarray
    slope: float
    stderr: float
    errors: np.ndarray | None = None
    cond: float | None = None  # cond(Theta_XX) when a training set is involved

    def deviation(self, expected: float = -0.5) -> float:
        return abs(self.slope - expected)

    def summary(self, expected: float = -0.5) -> str:
        return f"slope {self.slope:.3f}+-{self.stderr:.3f} (theory {expected:g})"


def fit_rate(widths, errors: np.ndarray) -> RateFit:
    """``errors[w, s]``: error of seed ``s`` at width ``widths[w]``.

    ``y_w = 1/2 log(mean_s e^2)``; ``Var y_w ~ Var_s(e^2) / (4 S mean(e^2)^2)``;
    the OLS slope is ``sum_w c_w y_w`` so its variance is ``sum_w c_w^2 Var y_w``.
    """
    widths = np.asarray(widths, float)
    errors = np.asarray(errors, float)
    e2 = errors**2
    ms = e2.mean(1)
    y = 0.5 * np.log(ms)
    var_y = e2.var(1, ddof=1) / (4 * e2.shape[1] * ms**2)
    lx = np.log(widths)
    c = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    return RateFit(widths, np.sqrt(ms), float(c @ y), float(math.sqrt(c**2 @ var_y)), errors)


def min_p(tests: dict) -> tuple[str, float, float]:
    """``(name, smallest p, its Bonferroni threshold FALSE_ALARM / #tests)`` of a
    dict ``name -> {"p": ...}``."""
    name = min(tests, key=lambda k: tests[k]["p"])
    return name, float(tests[name]["p"]), FALSE_ALARM / len(tests)
