"""Exact proofs of Bayesian RND (C7, C7a, C7b, C7c) and posterior sampling (C8).

Notation of docs/theory.md: predictor ``u``, target ``g``, NNGP kernel ``kappa``
(the symbol ``K`` below). The Bayesian-RND target makes ``h = u_0 - g ~ GP(0, Theta)``:
``u_0 ~ GP(0, kappa)`` plus an independent ``v = J^{hid} xi ~ GP(0, Theta - kappa)`` (the
hidden layers' share of the NTK; the readout's share is ``kappa``), ``g = -v``. The predictor is
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

_GP = "u_0 ~ GP(0, kappa), v ~ GP(0, Theta - kappa), target noise e ~ N(0, lambda I) independent"
_PD = "Theta_XX + lambda I symmetric positive definite"
LAMBDA = sp.Symbol("lambda", positive=True)


def bayesian_residual(alg, K: dict, T: dict, ridge=0, noise_var=0, Y=None, head: str = ""):
    """``s = u_inf - g`` for the predictor trained with ridge on ``g(X) (+ Y) (+ e)``."""
    u0 = alg.gaussian(f"u{head}", K)
    v = alg.gaussian(f"v{head}", minus(T, K))
    target = -v["X"]
    if Y is not None:
        target = target + Y
    if noise_var != 0:
        target = target + alg.white(f"e{head}", "N", noise_var)
    A = formulas.train_operator(T["XX"], SYMPY, ridge=ridge)
    return formulas.linearised_mean(u0["x"], u0["X"], T["xX"], A, target) + v["x"]


def prove_c7(alg=None, strict: bool = True, posterior=formulas.posterior_cov, prior: str = "ntk") -> Proof:
    """C7: ``eps_inf = u_inf - g ~ GP(0, Theta - Theta_xX Theta_XX^{-1} Theta_Xx')``.

    ``prior`` names the kernel of the claimed posterior: ``"ntk"`` (the claim)
    or ``"nngp"`` (a wrong statement for full training: that is C7b's law)."""
    alg = default(alg)
    K, T = kernel(alg, "K"), ntk(alg)
    r = bayesian_residual(alg, K, T)
    C = T if prior == "ntk" else K
    steps = [step(alg, "E eps_inf = 0", alg.mean(r), alg.zeros("n", "1")),
             step(alg, "Cov eps_inf = Theta - Theta_xX Theta_XX^{-1} Theta_Xx'", alg.cov(r),
                  posterior(C["xx"], C["xX"], C["XX"], SYMPY))]
    return conclude("C7", "eps_inf ~ GP(0, Theta - Theta_xX Theta_XX^{-1} Theta_Xx')", alg.method,
                    (_GP, "Theta_XX symmetric positive definite"), steps, strict)


def prove_c7a(alg=None, strict: bool = True, noise_var=LAMBDA, posterior=formulas.posterior_cov) -> Proof:
    """C7a: ridge ``lambda`` and target noise ``N(0, noise_var)`` with ``noise_var = lambda``
    give ``Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'``."""
    alg = default(alg)
    K, T = kernel(alg, "K"), ntk(alg, LAMBDA)
    r = bayesian_residual(alg, K, T, ridge=LAMBDA, noise_var=noise_var)
    steps = [step(alg, "Cov eps_inf = Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'", alg.cov(r),
                  posterior(T["xx"], T["xX"], T["XX"], SYMPY, noise=LAMBDA))]
    return conclude("C7a", "ridge lambda + target noise N(0, lambda): eps_inf ~ GP(0, Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx')",
                    alg.method, (_GP, _PD, "lambda > 0"), steps, strict)


def prove_c7b(alg=None, strict: bool = True, posterior=formulas.posterior_cov) -> Proof:
    """C7b: readout-only training (predictor NTK ``kappa``) with ``h = u_0 - g ~ GP(0, kappa)``
    gives the NNGP posterior ``kappa - kappa_xX kappa_XX^{-1} kappa_Xx'``."""
    alg = default(alg)
    K = kernel(alg, "K")
    h = alg.gaussian("h", K)
    zx, zX = alg.zeros("n", "1"), alg.zeros("N", "1")
    # u_0 = h + g; the predictor trained on g(X) has error u_inf - g = h - kappa_xX A h(X)
    r = formulas.linearised_mean(h["x"], h["X"], K["xX"], formulas.train_operator(K["XX"], SYMPY), zX) + zx
    steps = [step(alg, "Cov eps_inf = kappa - kappa_xX kappa_XX^{-1} kappa_Xx'", alg.cov(r),
                  posterior(K["xx"], K["xX"], K["XX"], SYMPY))]
    return conclude("C7b", "readout only: eps_inf ~ GP(0, kappa - kappa_xX kappa_XX^{-1} kappa_Xx')", alg.method,
                    ("h ~ GP(0, kappa)", "kappa_XX symmetric positive definite"), steps, strict)


def prove_c7c(alg=None, strict: bool = True, posterior=formulas.posterior_cov) -> Proof:
    """C7c (finite width): features ``J_x (n x P)``, ``J_X (N x P)``, empirical NTK
    ``J J^T``, target ``g = u_0 - J xi``, ``xi ~ N(0, I_P)``, ``u_0`` fixed given
    ``vartheta_0``. Matheron's rule: the error is ``J_x w*`` with
    ``w* = xi - J_X^T (J_X J_X^T)^{-1} J_X xi``, a sample of the Bayesian
    linear-regression posterior of ``w ~ N(0, I)`` given ``J_X w = 0``; hence
    ``eps_inf | vartheta_0 ~ GP(0, Theta^ - Theta^_xX Theta^_XX^{-1} Theta^_Xx')``."""
    alg = default(alg)
    Jx, JX = alg.matrix("J_x", "n", "P"), alg.matrix("J_X", "N", "P")
    u0x, u0X = alg.matrix("u0_x", "n", "1"), alg.matrix("u0_X", "N", "1")
    xi = alg.white("xi", "P")
    TxX, TXX = Jx * JX.T, JX * JX.T
    A = formulas.train_operator(TXX, SYMPY)
    r = formulas.linearised_mean(u0x, u0X, TxX, A, u0X - JX * xi) - (u0x - Jx * xi)
    w = xi - JX.T * A * (JX * xi)
    steps = [
        step(alg, "eps_inf = J_x w* (Matheron's rule)", r, Jx * w),
        step(alg, "Cov w* = I - J_X^T (J_X J_X^T)^{-1} J_X (Gaussian conditioning of w on J_X w)", alg.cov(w),
             posterior(alg.eye("P"), JX.T, TXX, SYMPY)),
        step(alg, "Cov eps_inf = Theta^_xx - Theta^_xX Theta^_XX^{-1} Theta^_Xx'", alg.cov(r),
             posterior(Jx * Jx.T, TxX, TXX, SYMPY)),
    ]
    return conclude("C7c", "linearised predictor, g = u_0 - J_0 xi: eps_inf | vartheta_0 is the Bayesian linear-regression "
                    "posterior with features J_0, prior N(0, I)", alg.method,
                    ("xi ~ N(0, I_P)", "J_X has full row rank N (J_X J_X^T invertible)"), steps, strict)


def prove_c8(alg=None, strict: bool = True, mean=formulas.posterior_mean, posterior=formulas.posterior_cov) -> Proof:
    """C8: head ``i`` trained with ridge ``lambda`` on ``g_i(X) + Y + e_i`` gives
    ``s_i = u_i - g_i`` with mean ``Theta_xX (Theta_XX + lambda I)^{-1} Y``, C7a's
    covariance, and heads uncorrelated (jointly Gaussian, hence i.i.d.)."""
    alg = default(alg)
    K, T = kernel(alg, "K"), ntk(alg, LAMBDA)
    Y = alg.matrix("Y", "N", "1")
    s1 = bayesian_residual(alg, K, T, ridge=LAMBDA, noise_var=LAMBDA, Y=Y, head="1")
    s2 = bayesian_residual(alg, K, T, ridge=LAMBDA, noise_var=LAMBDA, Y=Y, head="2")
    steps = [
        step(alg, "E s_i = Theta_xX (Theta_XX + lambda I)^{-1} Y", alg.mean(s1),
             mean(T["xX"], T["XX"], Y, SYMPY, noise=LAMBDA)),
        step(alg, "Cov s_i = Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'", alg.cov(s1),
             posterior(T["xx"], T["xX"], T["XX"], SYMPY, noise=LAMBDA)),
        step(alg, "Cov(s_1, s_2) = 0", alg.cov(s1, s2), alg.zeros("n", "n")),
    ]
    return conclude("C8", "s_i i.i.d. ~ GP(Theta_xX (Theta_XX + lambda I)^{-1} Y, Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx')",
                    alg.method, (_GP + "; independent draws per head", _PD, "lambda > 0"), steps, strict)
