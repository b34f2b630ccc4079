"""C2, kernel convergence with width: Monte-Carlo moments of one-hidden-layer
networks against the analytic kernels, and the ``n^{-1/2}`` rate of the
empirical NTK's error.

Used by the C2 checks (:mod:`ntk_equiv.claims.dynamics_checks`), the C2 figure
(:mod:`paper_checks.c2_kernel_convergence`) and notebooks 01 and 07.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..architecture import mlp
from .stats import RateFit, fit_rate, z_threshold


@dataclass
class MomentTest:
    """z-scores of Monte-Carlo moments against their analytic values, and the
    Bonferroni threshold they must stay below."""

    z_ntk: np.ndarray
    z_cov: np.ndarray
    threshold: float
    #: ``max |exact| / se`` over the entries: a kernel stated ``c`` times too large
    #: shifts that entry's z by ``|1 - c|`` times this
    sensitivity: float = float("nan")

    @property
    def worst(self) -> float:
        return float(max(np.max(np.abs(self.z_ntk)), np.max(np.abs(self.z_cov))))

    def summary(self) -> str:
        return f"max|z| {self.worst:.2f}{'<=' if self.worst <= self.threshold else '>'}{self.threshold:.2f}"


def one_layer_moments(arch, x: np.ndarray, width: int, draws: int, out_dim: int, seed: int,
                      scale: float = 1.0) -> MomentTest:
    """C2 exact at every width (one hidden layer): ``E[Theta_hat] = Theta`` and
    ``E[f_0(x) f_0(x')] = kappa(x, x')``.

    Both are means of i.i.d. draws (networks; for the covariance also the
    ``out_dim`` independent heads), so each upper-triangle entry gets the
    z-score ``(mean - exact) / (sample std / sqrt(#draws))``. ``scale``: the
    kernels as stated are ``scale`` times the analytic ones (1; the negative
    controls pass 0.7 / 1.3).
    """
    rng = np.random.default_rng(seed)
    k = arch.kernel(x)
    iu = np.triu_indices(len(x))
    ntks, prods = [], []
    for _ in range(draws):
        net = arch.init(width, out_dim=out_dim, seed=rng)
        ntks.append(net.empirical_ntk(x)[iu])
        f = net.apply(x)
        prods.append((f[iu[0]] * f[iu[1]]).T)  # (out_dim, #pairs): heads are i.i.d.
    ntks, prods = np.array(ntks), np.concatenate(prods)
    se_ntk = ntks.std(0, ddof=1) / math.sqrt(len(ntks))
    se_cov = prods.std(0, ddof=1) / math.sqrt(len(prods))
    z_ntk = (ntks.mean(0) - scale * k.ntk[iu]) / se_ntk
    z_cov = (prods.mean(0) - scale * k.nngp[iu]) / se_cov
    sens = max(float(np.max(np.abs(k.ntk[iu]) / se_ntk)), float(np.max(np.abs(k.nngp[iu]) / se_cov)))
    return MomentTest(z_ntk, z_cov, z_threshold(2 * len(iu[0])), sens)


def ntk_errors(arch, x: np.ndarray, widths, seeds: int, seed=0) -> np.ndarray:
    """``errors[w, s] = ||Theta_hat - Theta||_F / ||Theta||_F`` for ``seeds`` random
    networks per width (drawn in order from one generator seeded by ``seed``)."""
    theta = arch.kernel(x).ntk
    rng = np.random.default_rng(seed)
    return np.array([[np.linalg.norm(arch.init(w, seed=rng).empirical_ntk(x) - theta)
                      / np.linalg.norm(theta) for _ in range(seeds)] for w in widths])


def ntk_error_sweep(arch, x: np.ndarray, widths, seeds: int, seed=0) -> RateFit:
    """Relative Frobenius error of the empirical NTK over widths, and its fitted
    log-log slope (C2 predicts -1/2) with the standard error from the seeds."""
    return fit_rate(widths, ntk_errors(arch, x, widths, seeds, seed))


def finite_width_cov_depth2(act: str, sigma_w: float, sigma_b: float, x: np.ndarray, width: int, draws: int,
                            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact output covariance of a *two*-hidden-layer MLP at width ``n``:
    ``Cov f_0 = sigma_w^2 E[V(kappa_hat^2)] + sigma_b^2``, where
    ``kappa_hat^2 = sigma_w^2/n phi(z^1) phi(z^1)^T + sigma_b^2`` is the empirical
    kernel of the first hidden layer and ``V`` the dual map (given layer 1 the
    second layer's pre-activations are exactly Gaussian with covariance
    ``kappa_hat^2``). Monte Carlo over layer 1 only: returns ``(mean, standard error)``.
    It differs from ``kappa`` by ``O(1/n)`` (``V`` is non-linear), the bias C2's
    convergence is about.
    """
    from ..activations import activation
    from ..precision import F64

    rng = np.random.default_rng(seed)
    phi = activation(act)
    first = mlp(1, act, sigma_w, sigma_b)
    vals = []
    for _ in range(draws):
        net = first.init(width, seed=rng, in_dim=x.shape[1])
        a = net.arch.apply(net.params, x)[1][-1]  # phi(z^1), the readout's input
        k = sigma_w**2 / width * a @ a.T + sigma_b**2
        d = np.diag(k)
        v, _ = phi.dual(F64, np.broadcast_to(d[:, None], k.shape), k, np.broadcast_to(d[None, :], k.shape))
        vals.append(sigma_w**2 * v + sigma_b**2)
    vals = np.array(vals)
    return vals.mean(0), vals.std(0, ddof=1) / math.sqrt(draws)
