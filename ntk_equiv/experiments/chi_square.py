"""C6c, the law of the RND estimator: with ``K`` heads, ``K eps^2(x) / (2 Sigma_k(x, x))``
of trained RND models and ``K s^2(x) / Sigma_k(x, x)`` of trained ensembles of
``K + 1`` networks, both ``chi^2_K`` in the limit (the paper's Thm 5.6).

:func:`run` trains the models on given data; :func:`chi2_law` is the C6c
check's design; :func:`ks_tests` its Kolmogorov-Smirnov tests. Used by the C6c
check (:mod:`ntk_equiv.claims.rnd_checks`) and the C6c figure
(:mod:`paper_checks.c6c_chi_square`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .. import dynamics, rnd
from .inputs import child_seed, condition_number, sphere_inputs, spread_inputs
from .rnd_ratio import stable_lr


@dataclass
class ChiSquareLaw:
    """``q_rnd[s, p] = K eps^2(x_p) / (2 Sigma_k(x_p, x_p))`` for RND model ``s``;
    ``q_ens[r, p] = K s^2(x_p) / Sigma_k(x_p, x_p)`` for ensemble ``r`` of ``K + 1``
    networks; ``cond = cond(Theta_XX)``."""

    x: np.ndarray
    sigma: np.ndarray
    heads: int
    width: int
    steps: int
    lr: float
    cond: float
    q_rnd: np.ndarray
    q_ens: np.ndarray
    eps: np.ndarray | None = None  # (seeds, n, K): the RND errors eps_i(x)
    f: np.ndarray | None = None  # (groups, K + 1, n): the ensembles' outputs f_j(x)


def run(arch, X: np.ndarray, x: np.ndarray, width: int, heads: int, seeds: int, groups: int, steps: int,
        lr: float, seed: int = 0, Y: np.ndarray | None = None) -> ChiSquareLaw:
    """``seeds`` RND models with ``K = heads`` heads (model ``s`` seeded by
    ``child_seed(seed, 1, s)``) and ``groups`` ensembles of ``K + 1`` networks
    (member ``j`` of ensemble ``r`` by ``child_seed(seed, 2, r, j)``), all trained
    ``steps`` steps of size ``lr``; the ensembles on labels ``Y`` (default 0:
    ``s^2`` does not depend on the labels for the linearised network)."""
    n_train, d = X.shape
    Y = np.zeros(n_train) if Y is None else Y
    sigma = np.diag(dynamics.ensemble(arch, X, np.zeros(n_train), x, steps=steps, lr=lr).cov)
    eps = np.array([rnd.RND(arch, width=width, heads=heads, seed=child_seed(seed, 1, s))
                    .fit(X, lr=lr, steps=steps).residual(x) for s in range(seeds)]).reshape(seeds, len(x), heads)
    q_rnd = heads * np.mean(eps**2, axis=2) / (2 * sigma)
    fs = np.array([[arch.init(width, 1, seed=child_seed(seed, 2, r, j), in_dim=d)
                    .train(X, Y, lr=lr, steps=steps).apply(x)[:, 0] for j in range(heads + 1)]
                   for r in range(groups)]).reshape(groups, heads + 1, len(x))
    q_ens = heads * fs.var(axis=1, ddof=1) / sigma
    return ChiSquareLaw(x, sigma, heads, width, steps, lr, condition_number(arch.kernel(X).ntk), q_rnd,
                        q_ens, eps, fs)


def ks_tests(law: ChiSquareLaw, names=("in-distribution", "far OOD")) -> dict:
    """Per test input: KS p-values of RND and ensemble statistics against
    ``chi^2_K`` and of the two samples against each other."""
    chi2 = stats.chi2(law.heads).cdf
    out = {}
    for k, name in enumerate(names):
        out[f"{name}: RND vs chi2_K"] = dict(p=float(stats.kstest(law.q_rnd[:, k], chi2).pvalue),
                                             mean=float(law.q_rnd[:, k].mean()))
        out[f"{name}: ensemble vs chi2_K"] = dict(p=float(stats.kstest(law.q_ens[:, k], chi2).pvalue),
                                                  mean=float(law.q_ens[:, k].mean()))
        out[f"{name}: RND vs ensemble"] = dict(p=float(stats.ks_2samp(law.q_rnd[:, k], law.q_ens[:, k]).pvalue))
    return out


def chi2_law(arch, width: int, heads: int, seeds: int, groups: int, steps: int, n_train: int = 4, d: int = 2,
             seed: int = 0) -> ChiSquareLaw:
    """The C6c check's design: a well-spread training set, one in-distribution and
    one far out-of-distribution test input, ``lr = 0.5 / lambda_max(Theta_XX)``."""
    rng = np.random.default_rng(seed)
    X = spread_inputs(rng, n_train, d)
    x = np.vstack([sphere_inputs(rng, 1, d), 10 * sphere_inputs(rng, 1, d)])
    return run(arch, X, x, width, heads, seeds, groups, steps, stable_lr(arch, X, 0.5), seed)
