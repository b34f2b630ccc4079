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
    kernel_fluctuation: float | None = None  # rms ||hat Theta - Theta|| / ||Theta|| at the smallest width

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


# --------------------------------------------------------------------------- #
# limits over widths: the finite-width allowance is a fitted a + b / n, never a
# measured deviation of the networks under test
# --------------------------------------------------------------------------- #
def limit_fit(widths, means, ses) -> dict:
    """Weighted least squares of per-width means ``m(n) = a + b / n`` (weights
    ``1 / se(n)^2``): ``a`` (the extrapolated infinite-width limit), ``se_a``,
    ``b``, and the fit's ``chi2 = sum (m - a - b/n)^2 / se^2`` with
    ``len(widths) - 2`` degrees of freedom (the test that the deviation shrinks
    at the rate ``1/n``; ``nan`` with two widths).

    Why ``1/n``: the quantities fitted are expectations over initialisations,
    whose finite-width corrections are a power series in ``1/n`` (the
    ``O(n^{-1/2})`` fluctuations of the empirical kernels have mean zero;
    Dyer & Gur-Ari 2019), see :func:`ntk_equiv.experiments.rnd_ratio.intercept_fit`."""
    m, se = np.asarray(means, float), np.asarray(ses, float)
    A = np.column_stack([np.ones(len(m)), 1.0 / np.asarray(widths, float)])
    W = 1.0 / se**2
    cov = np.linalg.inv(A.T @ (A * W[:, None]))
    a, b = cov @ (A.T @ (W * m))
    dof = len(m) - 2
    chi2 = float(np.sum(W * (m - A @ np.array([a, b])) ** 2)) if dof > 0 else float("nan")
    return dict(a=float(a), se=float(math.sqrt(cov[0, 0])), rate_b=float(b), fit_chi2=chi2, fit_dof=dof)


def limit_test(widths, reps: list[np.ndarray], null: float) -> dict:
    """Test that the infinite-width limit of ``E rep`` is ``null``: :func:`limit_fit`
    of the replicate means (standard errors from the replicates), two-sided
    Student-t p-value of ``(a - null) / se_a`` with the smallest replicate count
    minus 1 degrees of freedom (conservative)."""
    fit = limit_fit(widths, [r.mean() for r in reps], [r.std(ddof=1) / math.sqrt(len(r)) for r in reps])
    df = int(min(len(r) for r in reps) - 1)
    fit.update(df=df, null=float(null), widths=[int(w) for w in widths], per_width=[float(r.mean()) for r in reps],
               p=float(2 * stats.t.sf(abs(fit["a"] - null) / fit["se"], df)))
    return fit


def whiten(cov: np.ndarray) -> np.ndarray | None:
    """The lower Cholesky factor ``L`` of ``cov`` (``L L^T = cov``), or ``None``
    when ``cov`` is not positive definite (then no Gaussian law has it)."""
    try:
        return np.linalg.cholesky(np.asarray(cov, float))
    except np.linalg.LinAlgError:
        return None


def law_limit_tests(widths, samples: dict, mean: np.ndarray, cov: np.ndarray, prefix: str = "") -> dict:
    """Width-sweep tests that samples of networks follow ``N(mean, cov)`` in the
    infinite-width limit.

    ``samples[n]``: ``(R, m, K)`` outputs at ``m`` test inputs of ``R``
    independent replicates at width ``n``, each with ``K`` columns that are
    i.i.d. under the limit law (RND heads, or ``K = 1``). With ``L L^T = cov``
    and ``z = L^{-1} (s - mean)`` per column, per replicate:

    * the whitened mean ``zbar_j = (1/K) sum_k z_jk``, limit 0 (``m`` tests);
    * the whitened cross moments ``W_jl = (1/K) sum_k z_jk z_lk``, ``j < l``,
      limit 0 (``m (m - 1) / 2`` tests: the law's shape);
    * the scale ``tr W / m``, limit 1 (one test, the most powerful one against
      a scaled covariance); and the fit of its ``a + b / n`` over widths
      (chi-square, when there are three widths or more).

    The Student-t reference suits symmetric replicates (means, products of
    independent normals); a single ``W_jj`` is a mean of ``chi^2_1`` draws,
    skewed enough to put the 1e-8 tail of a Bonferroni share orders of magnitude
    off, so the diagonal enters only through the scale, a mean of ``m K R``
    of them (skewness ``sqrt(8 / (m K R))``: a shift of the 6-sigma quantile
    below half a standard error).

    Every limit is :func:`limit_test`'s extrapolation, so a finite-width
    deviation is allowed only as far as it shrinks like ``1/n``.
    Returns ``{name: {"p": ..., ...}}``; a ``cov`` that is not positive
    definite gives one test with ``p = 0`` (no Gaussian law has it)."""
    L = whiten(cov)
    if L is None:
        return {f"{prefix}covariance is positive definite": dict(p=0.0, min_eig=float(np.linalg.eigvalsh(cov)[0]))}
    widths = tuple(widths)
    z = {n: np.linalg.solve(L, (np.asarray(samples[n], float) - np.asarray(mean, float)[None, :, None])
                            .transpose(1, 0, 2).reshape(len(L), -1)).reshape(len(L), len(samples[n]), -1)
         for n in widths}  # (m, R, K)
    m = len(L)
    out = {}
    for j in range(m):
        out[f"{prefix}whitened mean [{j}]"] = limit_test(widths, [z[n][j].mean(axis=1) for n in widths], 0.0)
    for j in range(m):
        for k in range(j + 1, m):
            out[f"{prefix}whitened cross moment [{j},{k}]"] = limit_test(
                widths, [(z[n][j] * z[n][k]).mean(axis=1) for n in widths], 0.0)
    scale = limit_test(widths, [(z[n] ** 2).mean(axis=(0, 2)) for n in widths], 1.0)
    out[f"{prefix}scale tr W / m"] = scale
    if scale["fit_dof"] > 0:
        out[f"{prefix}scale: 1/n rate"] = dict(p=float(stats.chi2(scale["fit_dof"]).sf(scale["fit_chi2"])),
                                               chi2=scale["fit_chi2"], dof=scale["fit_dof"])
    return out



def rate_correction_bias(widths, beta: float) -> float:
    """The bias of :func:`fit_rate`'s OLS log-log slope when the mean-square
    error is ``c n^{2 rate} (1 + beta n^{-1/2})`` instead of a pure power: the
    OLS combination of ``(1/2) log(1 + beta n^{-1/2})`` over ``widths``
    (the slope's weights ``(log n - mean) / sum (log n - mean)^2``)."""
    lx = np.log(np.asarray(widths, float))
    c = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    return float(c @ (0.5 * np.log1p(beta * np.exp(-0.5 * lx))))
