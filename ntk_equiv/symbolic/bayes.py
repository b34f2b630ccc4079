"""Exact proofs of Bayesian RND (C7, C7a, C7b, C7c) and posterior sampling (C8).

The Bayesian-RND target makes ``h = g_0 - u ~ GP(0, Theta)``: ``g_0 ~ GP(0, K)``
plus an independent ``v = J^{hid} xi ~ GP(0, Theta - K)`` (the hidden layers'
share of the NTK; the readout's share is ``K``), ``u = -v``. The predictor is
trained by the library's :func:`~ntk_equiv.formulas.linearised_mean` with the
library's :func:`~ntk_equiv.formulas.train_operator` (ridge ``lambda``), the
residual's law is computed from that construction and compared with the
library's :func:`~ntk_equiv.formulas.posterior_mean` /
:func:`~ntk_equiv.formulas.posterior_cov`.
"""
from __future__ import annotations

import sympy as sp

from .. import formulas
from ..precision import SYMPY
from .common import default, kernel, minus, ntk, step
from .record import Proof, conclude

_GP = "g_0 ~ GP(0, K), v ~ GP(0, Theta - K), target noise e ~ N(0, lambda I) independent"
_PD = "Theta_XX + lambda I symmetric positive definite"
LAMBDA = sp.Symbol("lambda", positive=True)


def bayesian_residual(alg, K: dict, T: dict, ridge=0, noise_var=0, Y=None, head: str = ""):
    """``s = g_inf - u`` for the predictor trained with ridge on ``u(X) (+ Y) (+ e)``."""
    g = alg.gaussian(f"g{head}", K)
    v = alg.gaussian(f"v{head}", minus(T, K))
    target = -v["X"]
    if Y is not None:
        target = target + Y
    if noise_var != 0:
        target = target + alg.white(f"e{head}", "N", noise_var)
    A = formulas.train_operator(T["XX"], SYMPY, ridge=ridge)
    return formulas.linearised_mean(g["x"], g["X"], T["xX"], A, target) + v["x"]


def prove_c7(alg=None, strict: bool = True, posterior=formulas.posterior_cov, prior: str = "ntk") -> Proof:
    """C7: ``r_inf = g_inf - u ~ GP(0, Theta - Theta_xX Theta_XX^{-1} Theta_Xx')``.

    ``prior`` names the kernel of the claimed posterior: ``"ntk"`` (the claim)
    or ``"nngp"`` (a wrong statement for full training: that is C7b's law)."""
    alg = default(alg)
    K, T = kernel(alg, "K"), ntk(alg)
    r = bayesian_residual(alg, K, T)
    C = T if prior == "ntk" else K
    steps = [step(alg, "E r_inf = 0", alg.mean(r), alg.zeros("n", "1")),
             step(alg, "Cov r_inf = Theta - Theta_xX Theta_XX^{-1} Theta_Xx'", alg.cov(r),
                  posterior(C["xx"], C["xX"], C["XX"], SYMPY))]
    return conclude("C7", "r_inf ~ GP(0, Theta - Theta_xX Theta_XX^{-1} Theta_Xx')", alg.method,
                    (_GP, "Theta_XX symmetric positive definite"), steps, strict)


def prove_c7a(alg=None, strict: bool = True, noise_var=LAMBDA, posterior=formulas.posterior_cov) -> Proof:
    """C7a: ridge ``lambda`` and target noise ``N(0, noise_var)`` with ``noise_var = lambda``
    give ``Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'``."""
    alg = default(alg)
    K, T = kernel(alg, "K"), ntk(alg, LAMBDA)
    r = bayesian_residual(alg, K, T, ridge=LAMBDA, noise_var=noise_var)
    steps = [step(alg, "Cov r_inf = Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'", alg.cov(r),
                  posterior(T["xx"], T["xX"], T["XX"], SYMPY, noise=LAMBDA))]
    return conclude("C7a", "ridge lambda + target noise N(0, lambda): r_inf ~ GP(0, Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx')",
                    alg.method, (_GP, _PD, "lambda > 0"), steps, strict)


def prove_c7b(alg=None, strict: bool = True, posterior=formulas.posterior_cov) -> Proof:
    """C7b: readout-only training (predictor NTK ``K``) with ``h = g_0 - u ~ GP(0, K)``
    gives the NNGP posterior ``K - K_xX K_XX^{-1} K_Xx'``."""
    alg = default(alg)
    K = kernel(alg, "K")
    h = alg.gaussian("h", K)
    zx, zX = alg.zeros("n", "1"), alg.zeros("N", "1")
    # g_0 = h + u; the predictor trained on u(X) has residual g_inf - u = h - K_xX A h(X)
    r = formulas.linearised_mean(h["x"], h["X"], K["xX"], formulas.train_operator(K["XX"], SYMPY), zX) + zx
    steps = [step(alg, "Cov r_inf = K - K_xX K_XX^{-1} K_Xx'", alg.cov(r),
                  posterior(K["xx"], K["xX"], K["XX"], SYMPY))]
    return conclude("C7b", "readout only: r_inf ~ GP(0, K - K_xX K_XX^{-1} K_Xx')", alg.method,
                    ("h ~ GP(0, K)", "K_XX symmetric positive definite"), steps, strict)


def prove_c7c(alg=None, strict: bool = True, posterior=formulas.posterior_cov) -> Proof:
    """C7c (finite width): features ``J_x (n x P)``, ``J_X (N x P)``, empirical NTK
    ``J J^T``, target ``u = g_0 - J xi``, ``xi ~ N(0, I_P)``, ``g_0`` fixed given
    ``theta_0``. Matheron's rule: the residual is ``J_x w*`` with
    ``w* = xi - J_X^T (J_X J_X^T)^{-1} J_X xi``, a sample of the Bayesian
    linear-regression posterior of ``w ~ N(0, I)`` given ``J_X w = 0``; hence
    ``r_inf | theta_0 ~ GP(0, Theta^ - Theta^_xX Theta^_XX^{-1} Theta^_Xx')``."""
    alg = default(alg)
    Jx, JX = alg.matrix("J_x", "n", "P"), alg.matrix("J_X", "N", "P")
    g0x, g0X = alg.matrix("g0_x", "n", "1"), alg.matrix("g0_X", "N", "1")
    xi = alg.white("xi", "P")
    TxX, TXX = Jx * JX.T, JX * JX.T
    A = formulas.train_operator(TXX, SYMPY)
    r = formulas.linearised_mean(g0x, g0X, TxX, A, g0X - JX * xi) - (g0x - Jx * xi)
    w = xi - JX.T * A * (JX * xi)
    steps = [
        step(alg, "r_inf = J_x w* (Matheron's rule)", r, Jx * w),
        step(alg, "Cov w* = I - J_X^T (J_X J_X^T)^{-1} J_X (Gaussian conditioning of w on J_X w)", alg.cov(w),
             posterior(alg.eye("P"), JX.T, TXX, SYMPY)),
        step(alg, "Cov r_inf = Theta^_xx - Theta^_xX Theta^_XX^{-1} Theta^_Xx'", alg.cov(r),
             posterior(Jx * Jx.T, TxX, TXX, SYMPY)),
    ]
    return conclude("C7c", "linearised predictor, u = g_0 - J_0 xi: r_inf | theta_0 is the Bayesian linear-regression "
                    "posterior with features J_0, prior N(0, I)", alg.method,
                    ("xi ~ N(0, I_P)", "J_X has full row rank N (J_X J_X^T invertible)"), steps, strict)


def prove_c8(alg=None, strict: bool = True, mean=formulas.posterior_mean, posterior=formulas.posterior_cov) -> Proof:
    """C8: head ``m`` trained with ridge ``lambda`` on ``u_m(X) + Y + e_m`` gives
    ``s_m = g_m - u_m`` with mean ``Theta_xX (Theta_XX + lambda I)^{-1} Y``, C7a's
    covariance, and heads uncorrelated (jointly Gaussian, hence i.i.d.)."""
    alg = default(alg)
    K, T = kernel(alg, "K"), ntk(alg, LAMBDA)
    Y = alg.matrix("Y", "N", "1")
    s1 = bayesian_residual(alg, K, T, ridge=LAMBDA, noise_var=LAMBDA, Y=Y, head="1")
    s2 = bayesian_residual(alg, K, T, ridge=LAMBDA, noise_var=LAMBDA, Y=Y, head="2")
    steps = [
        step(alg, "E s_m = Theta_xX (Theta_XX + lambda I)^{-1} Y", alg.mean(s1),
             mean(T["xX"], T["XX"], Y, SYMPY, noise=LAMBDA)),
        step(alg, "Cov s_m = Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'", alg.cov(s1),
             posterior(T["xx"], T["xX"], T["XX"], SYMPY, noise=LAMBDA)),
        step(alg, "Cov(s_1, s_2) = 0", alg.cov(s1, s2), alg.zeros("n", "n")),
    ]
    return conclude("C8", "s_m i.i.d. ~ GP(Theta_xX (Theta_XX + lambda I)^{-1} Y, Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx')",
                    alg.method, (_GP + "; independent draws per head", _PD, "lambda > 0"), steps, strict)
