"""C6a with real trained networks: the RND error ``eps^2(x)`` of trained RND
models against twice the variance of a trained deep ensemble and against the
analytic ``2 Sigma_k(x, x)``, over widths.

:func:`run` trains the models and returns every measurement; :func:`ratio_sweep`
is the C6a check's design (in- and far-out-of-distribution groups), and
:func:`ratio_tests` its statistical tests. Used by the C6a check
(:mod:`ntk_equiv.claims.rnd_checks`) and the C6a figure
(:mod:`paper_checks.c6a_rnd_vs_ensemble`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .. import dynamics, rnd
from .inputs import child_seed, condition_number, sphere_inputs, spread_inputs
from .stats import FALSE_ALARM, t_threshold


@dataclass
class RndEnsembleRun:
    """Trained RND models and trained ensemble members on the same data.

    ``residuals[w]``: ``(seeds, n, K)`` RND errors ``eps_i(x) = u_i(x) - g_i(x)`` of
    ``seeds`` independent models with ``K`` heads at width ``w``;
    ``members[w]``: ``(members, n)`` outputs ``f(x)`` of independently trained
    networks; ``mu``, ``sigma``: the analytic ``mu_k(x)``, ``Sigma_k(x, x)`` after the
    same ``steps`` gradient-descent steps; ``cond``: ``cond(Theta_XX)``."""

    x: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    widths: tuple
    lr: float
    steps: int
    heads: int
    cond: float
    residuals: dict = field(default_factory=dict)
    members: dict = field(default_factory=dict)

    def eps2(self, w) -> np.ndarray:
        """``eps^2(x) = (1/K) sum_i eps_i(x)^2`` per model, ``(seeds, n)``."""
        return np.mean(self.residuals[w] ** 2, axis=2)

    def rnd_ratio(self, w, factor: float = 2.0) -> np.ndarray:
        """``eps^2(x) / (factor Sigma_k(x, x))`` per model: mean 1 in the limit at
        C6a's ``factor = 2`` (another ``factor`` states a wrong claim, for tests)."""
        return self.eps2(w) / (factor * self.sigma)

    def ensemble_ratio(self, w) -> np.ndarray:
        """``(f(x) - mu_k(x))^2 / Sigma_k(x, x)`` per member: mean 1 in the limit (C5)."""
        return (self.members[w] - self.mu) ** 2 / self.sigma


def stable_lr(arch, X: np.ndarray, fraction: float = 0.5) -> float:
    """``fraction / lambda_max(Theta_XX)``: gradient descent is stable below ``2 / lambda_max``."""
    return fraction / float(np.linalg.eigvalsh(arch.kernel(X).ntk)[-1])


def run(arch, X: np.ndarray, Y: np.ndarray, x: np.ndarray, widths, seeds: int, heads: int, members: int,
        steps: int, lr: float, seed: int = 0) -> RndEnsembleRun:
    """Train ``seeds`` RND models (``K = heads``) and ``members`` networks on
    ``(X, Y)`` per width, each by ``steps`` steps of size ``lr``; model ``s`` at
    width ``w`` is seeded by ``child_seed(seed, w, s)``, member ``j`` by
    ``child_seed(seed, w, 10^6 + j)``. ``X``, ``x``: ``(n, d)`` vectors or
    ``(n, *S, C)`` images (the architecture's input shape)."""
    d = X.shape[1] if X.ndim == 2 else tuple(X.shape[1:])
    law = dynamics.ensemble(arch, X, Y, x, steps=steps, lr=lr)
    out = RndEnsembleRun(x, law.mean[:, 0], np.diag(law.cov), tuple(widths), lr, steps, heads,
                         condition_number(arch.kernel(X).ntk))
    for w in widths:
        out.residuals[w] = np.array([rnd.RND(arch, width=w, heads=heads, seed=child_seed(seed, w, s))
                                     .fit(X, lr=lr, steps=steps).residual(x) for s in range(seeds)])
        out.members[w] = np.array([arch.init(w, 1, seed=child_seed(seed, w, 10**6 + j), in_dim=d)
                                   .train(X, Y, lr=lr, steps=steps).apply(x)[:, 0] for j in range(members)])
    return out


#: The C6a check's test inputs, ``group(rng, draw)`` with ``draw(rng, n)`` the
#: architecture's inputs (squared norm = number of input entries ``d``): near
#: the training inputs and far outside them.
GROUPS = {"in-distribution": lambda rng, draw: draw(rng, 3),
          "far OOD (|x| = 10 sqrt d)": lambda rng, draw: 10 * draw(rng, 2)}


@dataclass
class RatioSweep:
    """Per-width replicate ratios (rows = independent replicates):
    RND ``eps^2 / (2 Sigma_k)`` (one replicate = one seed, all heads) and
    ensemble ``(f_k - mu_k)^2 / Sigma_k`` (one replicate = one trained network),
    averaged over each group's test points."""

    widths: tuple
    rnd: dict = field(default_factory=dict)   # (group, width) -> replicates
    ens: dict = field(default_factory=dict)
    cond: float = float("nan")
    run: RndEnsembleRun | None = None


def ratio_sweep(arch, groups: dict, widths, seeds: int, heads: int, members: int, steps: int,
                n_train: int = 4, d: int = 2, seed: int = 0, inputs=None, factor: float = 2.0) -> RatioSweep:
    """C6a with real networks trained by ``steps`` steps of gradient descent
    (lr ``0.5 / lambda_max(Theta_XX)``, a factor-2 margin for the multi-head
    empirical NTK's larger top eigenvalue at small width), against the
    analytic ``Sigma_k = P_k kappa P_k^*`` and ``mu_k`` of ``ensemble(steps=k)``.

    ``inputs(rng, n)``: the architecture's inputs, ``(n, d)`` or ``(n, *S, C)``
    (default points on the sphere of radius ``sqrt d``); the training set is
    the best-spread of 32 draws. ``factor``: the claimed ``eps^2 / Sigma_k``
    (C6a: 2; tests pass 1 to see the check fail)."""
    rng = np.random.default_rng(seed)
    draw = inputs if inputs is not None else (lambda r, n: sphere_inputs(r, n, d))
    X = spread_inputs(rng, n_train, d, draw=draw)
    Y = np.sin(X.reshape(len(X), -1).sum(axis=1, keepdims=True))
    xs = {g: f(rng, draw) for g, f in groups.items()}
    res = run(arch, X, Y, np.concatenate(list(xs.values())), widths, seeds, heads, members, steps,
              stable_lr(arch, X, 0.5), seed)
    cut = np.cumsum([0] + [len(v) for v in xs.values()])
    out = RatioSweep(tuple(widths), cond=res.cond, run=res)
    for w in widths:
        r, e = res.rnd_ratio(w, factor), res.ensemble_ratio(w)
        for k, g in enumerate(xs):
            out.rnd[g, w] = r[:, cut[k]:cut[k + 1]].mean(axis=1)
            out.ens[g, w] = e[:, cut[k]:cut[k + 1]].mean(axis=1)
    return out


def intercept_fit(widths, reps: list[np.ndarray]) -> tuple[float, float, float, int]:
    """Weighted least squares of the replicate means ``R(n) = a + b / n``
    (weights ``1/SE(n)^2``): ``(a, SE(a), b, df)`` with ``df`` the smallest
    replicate count minus 1 (a conservative Student-t reference).

    Why ``1/n``: ``R(n)`` is an *expectation* over initialisations; the
    leading ``O(n^{-1/2})`` fluctuations of the empirical kernels have mean zero, so
    the finite-width correction of an expectation is ``O(1/n)`` (Dyer &
    Gur-Ari 2019). With ``K`` heads sharing the hidden layers the hidden
    features move ``K`` times as much, so the correction is ``O(K/n)``: the
    sweeps keep ``n >= 4 K``."""
    m = np.array([r.mean() for r in reps])
    se = np.array([r.std(ddof=1) / math.sqrt(len(r)) for r in reps])
    A = np.column_stack([np.ones(len(widths)), 1.0 / np.asarray(widths, float)])
    W = 1.0 / se**2
    cov = np.linalg.inv(A.T @ (A * W[:, None]))
    a, b = cov @ (A.T @ (W * m))
    return float(a), float(math.sqrt(cov[0, 0])), float(b), int(min(len(r) for r in reps) - 1)


def ratio_tests(sw: RatioSweep, family: int = 1) -> dict:
    """p-values: per group, (i) RND and ensemble intercepts ``a = 1`` (the limit
    of the fitted ``a + b / n``), with the interval ``a +- q se`` at the check's
    Bonferroni level (``q`` the Student-t threshold: the test passes iff 1 is
    inside), (ii) RND ratio = ensemble ratio at the widest width (Welch t).
    ``family``: how many such sweeps the check tests together (the interval's
    Bonferroni count is ``family`` times this sweep's tests)."""
    out = {}
    groups = sorted({g for g, _ in sw.rnd})
    n_tests = 3 * len(groups)
    for g in groups:
        for name, data in (("RND", sw.rnd), ("ensemble", sw.ens)):
            a, se, b, df = intercept_fit(sw.widths, [data[g, w] for w in sw.widths])
            q = t_threshold(df, n_tests * family)
            out[f"{g}: {name} limit"] = dict(a=a, se=se, rate_b=b, df=df, p=float(2 * stats.t.sf(abs(a - 1) / se, df)),
                                             ci=[a - q * se, a + q * se],
                                             per_width=[float(data[g, w].mean()) for w in sw.widths])
        w = sw.widths[-1]
        welch = stats.ttest_ind(sw.rnd[g, w], sw.ens[g, w], equal_var=False)
        out[f"{g}: RND vs ensemble at width {w}"] = dict(p=float(welch.pvalue),
                                                         diff=float(sw.rnd[g, w].mean() - sw.ens[g, w].mean()))
    assert len(out) == n_tests
    return out


def worst_limit(tests: dict) -> tuple[str, dict]:
    """The fitted limit (intercept) with the smallest p-value."""
    name = min((k for k in tests if "ci" in tests[k]), key=lambda k: tests[k]["p"])
    return name, tests[name]


__all__ = ["FALSE_ALARM", "GROUPS", "RatioSweep", "RndEnsembleRun", "intercept_fit", "ratio_sweep", "ratio_tests",
           "run", "stable_lr", "worst_limit"]


# --------------------------------------------------------------------------- #
# Prop 5.2, Prop 5.3, Cor 5.4: converged networks (trained to t = inf)
# --------------------------------------------------------------------------- #
@dataclass
class ConvergedDesign:
    """The converged-network experiments' data (Prop 5.2, Prop 5.3, Cor 5.4):
    training inputs ``X`` (well spread on the sphere of radius ``sqrt d``),
    labels ``Y = sin(sum x)``, test inputs ``x`` (on the sphere and at three
    times its radius), ``lr = 1 / lambda_max(Theta_XX)`` and ``steps =
    ceil(ln(1e8) cond(Theta_XX))``: after that many steps the analytic-NTK
    train residual is ``<= 1e-8`` of its start (every eigen-direction decays at
    least like ``(1 - lambda_min / lambda_max)^k``), i.e. converged."""

    X: np.ndarray
    Y: np.ndarray
    x: np.ndarray
    lr: float
    steps: int
    cond: float


def converged_design(arch, n_test: int, far: int, n_train: int = 4, d: int = 8, seed: int = 0) -> ConvergedDesign:
    """:class:`ConvergedDesign` with ``n_test`` inputs on the sphere and ``far``
    at three times its radius (drawn in that order from ``seed``, after ``X``)."""
    rng = np.random.default_rng(seed)
    X = spread_inputs(rng, n_train, d)
    x = np.vstack([sphere_inputs(rng, n_test, d), 3 * sphere_inputs(rng, far, d)])
    w_eig = np.linalg.eigvalsh(arch.kernel(X).ntk)
    steps = int(math.ceil(math.log(1e8) * float(w_eig[-1] / w_eig[0])))
    return ConvergedDesign(X, np.sin(X.sum(axis=1, keepdims=True)), x, 1.0 / float(w_eig[-1]), steps,
                           float(w_eig[-1] / w_eig[0]))


def converged_run(arch, design: ConvergedDesign, widths, models: int, heads: int, members: int,
                  steps: int | None = None, seed: int = 0) -> RndEnsembleRun:
    """:func:`run` on ``design``, evaluated at ``[x; X]`` (the training inputs
    last: the witness that training converged), ``steps`` steps (default the
    design's: converged)."""
    steps = design.steps if steps is None else steps
    return run(arch, design.X, design.Y, np.vstack([design.x, design.X]), widths, seeds=models, heads=heads,
               members=members, steps=steps, lr=design.lr, seed=seed)


__all__ += ["ConvergedDesign", "converged_design", "converged_run"]
