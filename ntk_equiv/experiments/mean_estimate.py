"""Cor 5.9 of the paper: posterior samples ``mu~(x) + eps_i(x)`` from a
Bayesian-RND model trained *without* labels plus a mean estimate ``mu~``.

Paper notation: ``K`` heads, errors ``eps_i`` (``i = 1..K``),
``mu_b = Theta_xX Theta_XX^{-1} Y``, ``Sigma_b = Theta - Theta_xX Theta_XX^{-1} Theta_Xx'``
(the NTK-GP posterior), ``Sigma_f = P kappa P^*`` (the deep-ensemble
covariance at ``t = inf``). As printed, ``mu~(x) + eps_i(x)`` are i.i.d.
``N(mu_b, Sigma_b)``. That holds when ``mu~ = mu_b`` exactly. With ``mu~`` the
mean of ``E`` trained networks independent of the RND model,
``Cov(s_i) = Sigma_b + Sigma_f / E`` and ``Cov(s_i, s_j) = Sigma_f / E``
(the samples share ``mu~``): not i.i.d.

The statement's forms differ in the ``bound`` they state for the
approximation ``mu~ ~= mu_b``: ``None`` (printed: the samples are claimed
i.i.d. ``N(mu_b, Sigma_b)``, exact under the reading ``mu~ = mu_b``, the
error of an approximate ``mu~`` not quantified) or a number ``b`` (the
quantified form: ``Cov s_i = Sigma_b + b Sigma_f / E``, ``Cov(s_i, s_j) = b
Sigma_f / E``, true for ``b = 1``). The exact mean ``mu~ = mu_b`` is ``E = 0``
(no ``Sigma_f`` term) under every bound.

* :func:`covariance_identities` (H level): the joint covariance of two samples
  assembled entry by entry from the library's kernels at ``dps`` digits (the
  explicit projector ``[I, -Theta_xX Theta_XX^{-1}]``), against the printed law
  and the corrected one written with the library's ``gp_posterior`` and
  ``ensemble``.
* :func:`sampling_experiment` (E level): real finite-width networks; the
  head-mean ``s_bar = mu~ + mean_i eps_i`` has covariance ``Sigma_b / K`` as
  printed but ``Sigma_b / K + Sigma_f / E`` in truth, a chi-square test
  tells them apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np
from scipy import stats

from .. import dynamics, rnd
from ..network import Network
from ..precision import mp_context
from .explicit import explicit_projector, max_abs, to_mp as _mp
from .inputs import child_seed, condition_number, sphere_inputs, spread_inputs



def claimed(sigma_b, sigma_f, members: int, bound: float | None, zero):
    """The claimed ``(Cov s_i, Cov(s_1, s_2))`` for a mean estimate of
    ``members`` trained networks (``0``: the exact ``mu_b``) under ``bound``
    (``None``: i.i.d. ``N(mu_b, Sigma_b)``; ``b``: ``Sigma_b + b Sigma_f / E``
    and ``b Sigma_f / E``)."""
    if bound is None or members == 0:
        return sigma_b, zero
    c = bound / members
    return sigma_b + c * sigma_f, c * sigma_f


def _projector(theta: mpmath.matrix, n: int, ctx) -> mpmath.matrix:
    """``[I_n, -Theta_xX Theta_XX^{-1}]`` on ``[h(x); h(X)]`` (``ctx.inverse``; no
    :mod:`ntk_equiv.formulas`)."""
    N = theta.rows - n
    T_XX = ctx.matrix([[theta[n + i, n + j] for j in range(N)] for i in range(N)])
    T_xX = ctx.matrix([[theta[i, n + j] for j in range(N)] for i in range(n)])
    return explicit_projector(T_xX * ctx.inverse(T_XX), ctx)


@dataclass
class CovarianceIdentities:
    """The joint covariance of two samples ``s_1, s_2`` by construction, per
    mean estimate (``"exact"``, ``"network"``, ``"ensemble of E"``), and the
    library's ``Sigma_b``, ``Sigma_f``, as ``ctx`` matrices (``dps`` digits);
    :meth:`residuals` compares them with a claimed law. ``sigma_f`` =
    ``max |Sigma_f| / max |Sigma_b|``."""

    dps: int
    ctx: object
    cov: dict        # estimate -> (Cov s_i, Cov(s_1, s_2)) built from the kernels
    mean: dict       # estimate -> relative |E s_i - mu_b|
    members: dict    # estimate -> E (0 = exact)
    sigma_b: object
    sigma_f_matrix: object
    sigma_f: float = 0.0

    def residuals(self, bound: float | None) -> dict:
        """``{(estimate, what): relative max-abs residual}`` of the law claimed
        under ``bound`` (:func:`claimed`), ``what`` in marginal / pairwise / mean."""
        scale = max_abs(self.sigma_b)
        zero = self.ctx.zeros(self.sigma_b.rows, self.sigma_b.cols)
        out = {}
        for est, (marg, pair) in self.cov.items():
            b = None if bound is None else self.ctx.mpf(bound)  # c = b / E at dps digits, not in float64
            cm, cp = claimed(self.sigma_b, self.sigma_f_matrix, self.members[est], b, zero)
            out[est, "marginal"] = float(max_abs(marg - cm) / scale)
            out[est, "pairwise"] = float(max_abs(pair - cp) / scale)
            out[est, "mean"] = self.mean[est]
        return out


def covariance_identities(arch, X, Y, x, dps: int = 50, members: int = 3) -> CovarianceIdentities:
    """H level. Joint covariance of ``(s_1, s_2)`` by construction: with ``P`` the
    explicit projector and, on the joint inputs ``z = (x, X)``, ``Theta_z``,
    ``kappa_z`` from ``arch.kernel(z, dps=dps)``:
    ``eps_i = P h_i`` (``h_i ~ GP(0, Theta)``, the Bayesian-RND prior, independent),
    a trained network ``f = mu_b + P f_0`` (``f_0 ~ GP(0, kappa)``), so
    ``Cov(s_i) = P Theta P^T + c P kappa P^T`` and ``Cov(s_1, s_2) = c P kappa P^T``
    with ``c = 0`` (exact mean), 1 (one network), ``1/E`` (ensemble mean).
    The claimed laws use ``Sigma_b = gp_posterior(...).cov`` and
    ``Sigma_f = ensemble(...).cov`` (the library's formulas)."""
    n = len(x)
    z = np.vstack([x, X])
    k = arch.kernel(z, dps=dps)
    post = rnd.gp_posterior(arch, X, Y, x, prior="ntk", dps=dps)
    ens = dynamics.ensemble(arch, X, Y, x, dps=dps)
    ctx = mp_context(dps)  # our own context at dps + guard digits: mpmath.mp is never touched
    theta, kappa = _mp(k.ntk, ctx), _mp(k.nngp, ctx)
    P = _projector(theta, n, ctx)
    cov_b, cov_f = P * theta * P.T, P * kappa * P.T
    N = len(X)
    T_xX = ctx.matrix([[theta[i, n + j] for j in range(N)] for i in range(n)])
    T_XX = ctx.matrix([[theta[n + i, n + j] for j in range(N)] for i in range(N)])
    mu_b = T_xX * ctx.lu_solve(T_XX, _mp(np.asarray(Y, float).reshape(-1, 1), ctx))
    sigma_b, sigma_f = _mp(post.cov, ctx), _mp(ens.cov, ctx)
    cov, mean, sizes = {}, {}, {}
    for estimate, E in (("exact", 0), ("network", 1), (f"ensemble of {members}", members)):
        c = 0 if E == 0 else ctx.mpf(1) / E
        # every estimate has mean mu_b: the ensemble mean at t = inf is the NTK-GP mean
        mean_est = _mp(post.mean if estimate == "exact" else ens.mean, ctx)
        cov[estimate] = (cov_b + c * cov_f, c * cov_f)
        mean[estimate] = float(max_abs(mean_est - mu_b) / max(max_abs(mu_b), 1))
        sizes[estimate] = E
    return CovarianceIdentities(dps, ctx, cov, mean, sizes, sigma_b, sigma_f,
                                float(max_abs(sigma_f) / max_abs(sigma_b)))


# --------------------------------------------------------------------------- #
# E level: real networks
# --------------------------------------------------------------------------- #
def _trained_network(arch, width: int, X, Y, seed: int, tol: float) -> Network:
    """One network fitted to ``Y`` to relative train residual ``tol`` (``t = inf``)."""
    net = arch.init(width, 1, seed=seed, in_dim=X.shape[1])
    return net.fit_until(X, Y, lr=1.0 / net.lambda_max(X), tol=tol, max_steps=200_000)[0]


@dataclass
class SamplingExperiment:
    """Per mean estimate: the head-means ``v_r = s_bar_r - mu_b`` over seeds
    ``r`` (rows) at the test inputs, the spreads ``s_i - s_bar`` (the errors
    about their head-mean, the same law in every form), and the covariances
    the forms claim for ``s_bar``."""

    width: int
    heads: int
    seeds: int
    cond: float
    head_means: dict = field(default_factory=dict)   # estimate -> (seeds, n)
    spreads: dict = field(default_factory=dict)      # estimate -> (seeds, n, K)
    sigma_b: np.ndarray | None = None
    sigma_f: np.ndarray | None = None
    members: dict = field(default_factory=dict)      # estimate -> E (0 = exact)

    def claimed_head_mean_cov(self, estimate: str, bound: float | None) -> np.ndarray:
        """``Cov(s_bar)`` of ``K`` samples sharing ``mu~`` under :func:`claimed`:
        ``Sigma_b / K`` (i.i.d., ``bound=None`` or the exact mean), else
        ``Sigma_b / K + b Sigma_f / E``."""
        marg, pair = claimed(self.sigma_b, self.sigma_f, self.members[estimate], bound, 0 * self.sigma_b)
        return (marg + (self.heads - 1) * pair) / self.heads

    def chi2_test(self, estimate: str, bound: float | None) -> dict:
        """``Q = sum_r v_r^T C^{-1} v_r ~ chi^2_{R n}`` under the claimed law
        (Gaussian samples); two-sided p-value and ``Q / (R n)``."""
        C = self.claimed_head_mean_cov(estimate, bound)
        v = self.head_means[estimate]
        L = np.linalg.cholesky(C)
        w = np.linalg.solve(L, v.T)
        Q, dof = float(np.sum(w**2)), v.size
        p = 2 * min(stats.chi2(dof).cdf(Q), stats.chi2(dof).sf(Q))
        return dict(p=float(min(p, 1.0)), ratio=Q / dof, dof=int(dof))

    def spread_chi2(self, estimate: str) -> dict:
        """The scale of the errors about their head-mean: ``sum_r sum_i (s_i -
        s_bar)^T Sigma_b^{-1} (s_i - s_bar) ~ chi^2_{(K - 1) n R}`` exactly if the
        ``eps_i`` are i.i.d. ``N(0, Sigma_b)`` (the centring over ``K`` heads removes
        one degree per input); two-sided p-value, ``ratio`` = sum / dof."""
        L = np.linalg.cholesky(self.sigma_b)
        d = self.spreads[estimate]                                   # (R, n, K)
        w = np.linalg.solve(L, d.transpose(1, 0, 2).reshape(d.shape[1], -1))
        S, dof = float(np.sum(w**2)), (self.heads - 1) * d.shape[1] * d.shape[0]
        law = stats.chi2(dof)
        return dict(p=float(min(1.0, 2 * min(law.cdf(S), law.sf(S)))), ratio=S / dof, dof=int(dof))

    def spread_test(self, estimate: str) -> dict:
        """The errors about their head-mean, ``s_i - s_bar = eps_i - eps_bar``,
        whitened by ``Sigma_b`` and scaled by ``sqrt(K / (K - 1))``: N(0, 1)
        entries if the ``eps_i`` are i.i.d. ``N(0, Sigma_b)`` (Thm 5.8), in every
        form; KS p-value over one head per seed (independent replicates)."""
        L = np.linalg.cholesky(self.sigma_b)
        d = self.spreads[estimate][:, :, 0]
        w = np.linalg.solve(L, d.T).ravel() * math.sqrt(self.heads / (self.heads - 1))
        return dict(p=float(stats.kstest(w, "norm").pvalue), n=int(w.size))


def sampling_experiment(arch, width: int, heads: int, seeds: int, members: int = 1, n_train: int = 4,
                        n_test: int = 3, d: int = 2, seed: int = 0, tol: float = 1e-6,
                        test_radius: float = 3.0) -> SamplingExperiment:
    """E level. Per seed ``r``: a ``BayesianRND`` (the paper's target, ``heads``
    heads) trained to convergence on the inputs alone, its errors ``eps_i(x)``;
    mean estimates ``mu_b`` (exact) and the mean of ``members`` trained
    networks (independent seeds, fitted to ``Y`` to relative tolerance ``tol``).
    Training inputs on the sphere of radius ``sqrt(d)`` (best spread of 32
    draws), test inputs at ``test_radius`` times that radius, where
    ``Sigma_f / Sigma_b`` is larger (the test's power grows with ``K Sigma_f / Sigma_b``)."""
    rng = np.random.default_rng(seed)
    X, x = spread_inputs(rng, n_train, d), test_radius * sphere_inputs(rng, n_test, d)
    Y = np.sin(X.sum(axis=1, keepdims=True))
    post = rnd.gp_posterior(arch, X, Y, x, prior="ntk")
    sigma_f = dynamics.ensemble(arch, X, Y, x).cov
    cond = condition_number(arch.kernel(X).ntk)
    mu_b = post.mean[:, 0]
    name = "network" if members == 1 else f"ensemble of {members}"
    out = SamplingExperiment(width, heads, seeds, cond, sigma_b=post.cov, sigma_f=sigma_f,
                             members={"exact": 0, name: members})
    bars = {"exact": [], name: []}
    spreads = {"exact": [], name: []}
    for r in range(seeds):
        eps = rnd.BayesianRND(arch, width=width, heads=heads, seed=child_seed(seed, r)).fit(X, tol=tol).sample(x)
        nets = [_trained_network(arch, width, X, Y, child_seed(seed, r, 1 + e), tol).apply(x)[:, 0] for e in range(members)]
        for est, mu in (("exact", mu_b), (name, np.mean(nets, axis=0))):
            s = mu[:, None] + eps
            bars[est].append(s.mean(axis=1) - mu_b)
            spreads[est].append(s - s.mean(axis=1, keepdims=True))
    out.head_means = {k: np.array(v) for k, v in bars.items()}
    out.spreads = {k: np.array(v) for k, v in spreads.items()}
    return out
