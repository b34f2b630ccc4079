"""Exact proofs of the deep-ensemble law (C5), the RND error law (C6, C6a,
C6b) and the ordering (C9), in the paper's notation (docs/theory.md): predictor
``u`` trained on the fixed target ``g``, error ``eps_t = u_t - g``, NNGP kernel
``kappa`` (the symbol ``K`` below), NTK ``Theta``.

In each proof the random functions are generic centred Gaussian processes
(:mod:`.algebra`), the trained network is the library's own
:func:`ntk_equiv.formulas.linearised_mean`, and its mean and covariance are
*computed* from that construction, then compared with the library's
:func:`~ntk_equiv.formulas.projected_cov`. The training operator ``A`` is a
generic ``N x N`` matrix, so the identities hold for every ``A_t``, ``A_k``
and ``A_inf`` (any time, step count, learning rate and ridge).
"""
from __future__ import annotations

import sympy as sp

from .. import formulas
from ..precision import SYMPY
from .common import default, kernel, minus, step
from .record import Proof, conclude

_GP = "random functions are centred Gaussian processes with the stated covariance blocks; distinct ones independent"
_A = "A is an arbitrary N x N matrix (covers A_t, A_k, A_inf for every t, eta, lambda)"


def prove_c5(alg=None, strict: bool = True, projected=formulas.projected_cov) -> Proof:
    """C5: ``f_t = f_0 + Theta_xX A (Y - f_0(X))`` with ``f_0 ~ GP(0, kappa)`` has mean
    ``Theta_xX A Y`` and covariance ``P kappa P^*``; at ``t = inf`` (``A = Theta_XX^{-1}``)
    the variance on the training inputs is 0 and the mean interpolates ``Y``."""
    alg = default(alg)
    K = kernel(alg, "K")
    TxX, A, Y = alg.matrix("Theta_xX", "n", "N"), alg.matrix("A", "N", "N"), alg.matrix("Y", "N", "1")
    f0 = alg.gaussian("f0", K)
    ft = formulas.linearised_mean(f0["x"], f0["X"], TxX, A, Y)
    TXX = alg.symmetric("Theta_XX", "N")
    Ainf = formulas.train_operator(TXX, SYMPY)
    steps = [
        step(alg, "mean E f_t(x) = Theta_xX A Y", alg.mean(ft), TxX * A * Y),
        step(alg, "Cov f_t(x) = P K P^*", alg.cov(ft), projected(K["xx"], K["xX"], K["XX"], TxX, A)),
        step(alg, "t=inf, x=X: P K P^* = 0", projected(K["XX"], K["XX"], K["XX"], TXX, Ainf), alg.zeros("N", "N")),
        step(alg, "t=inf, x=X: mean = Y", TXX * Ainf * Y, Y),
    ]
    return conclude("C5", "f_t ~ GP(Theta_xX A_t Y, P_t K P_t^*); Sigma_inf(X, X) = 0", alg.method,
                    (_GP, _A, "Theta_XX symmetric invertible for the t = inf steps"), steps, strict)


def _rnd_residual(alg, Ku, Kg, TxX, A, centred: bool = False):
    """``eps_t = u_t - g``: the predictor ``u`` trained (C3) on the targets ``g(X)``.
    A centred predictor starts from 0 (``u - u_0``), i.e. ``kappa_u = 0``."""
    g = alg.gaussian("g", Kg)
    if centred:
        zx, zX = alg.zeros("n", "1"), alg.zeros("N", "1")
        return formulas.linearised_mean(zx, zX, TxX, A, g["X"]) - g["x"]
    u = alg.gaussian("u", Ku)
    return formulas.linearised_mean(u["x"], u["X"], TxX, A, g["X"]) - g["x"]


def prove_c6(alg=None, strict: bool = True, projected=formulas.projected_cov) -> Proof:
    """C6: ``eps_t = u_t - g ~ GP(0, P_t (kappa_u + kappa_g) P_t^*)``."""
    alg = default(alg)
    Ku, Kg = kernel(alg, "Ku"), kernel(alg, "Kg")
    TxX, A = alg.matrix("Theta_xX", "n", "N"), alg.matrix("A", "N", "N")
    r = _rnd_residual(alg, Ku, Kg, TxX, A)
    S = {k: Ku[k] + Kg[k] for k in Ku}
    steps = [step(alg, "E eps_t = 0", alg.mean(r), alg.zeros("n", "1")),
             step(alg, "Cov eps_t = P (kappa_u + kappa_g) P^*", alg.cov(r), projected(S["xx"], S["xX"], S["XX"], TxX, A))]
    return conclude("C6", "eps_t ~ GP(0, P_t (kappa_u + kappa_g) P_t^*)", alg.method, (_GP, _A, "u_0 and g independent"),
                    steps, strict)


def prove_c6a(alg=None, strict: bool = True, factor=2, projected=formulas.projected_cov) -> Proof:
    """C6a: ``kappa_u = kappa_g = kappa`` gives ``Cov(eps_t) = factor * Sigma_t`` with ``factor = 2``,
    and ``E eps^2(x) = (1/K) sum_i E eps_i(x)^2 = 2 Sigma_t(x, x)`` for ``K`` i.i.d. heads."""
    alg = default(alg)
    K = kernel(alg, "K")
    TxX, A = alg.matrix("Theta_xX", "n", "N"), alg.matrix("A", "N", "N")
    r = _rnd_residual(alg, K, K, TxX, A)
    sigma = projected(K["xx"], K["xX"], K["XX"], TxX, A)
    i, heads, v = sp.symbols("i K v", positive=True, integer=True)  # K: the number of heads
    eps2 = sp.Sum(v, (i, 1, heads)).doit() / heads  # heads i.i.d. with Var eps_i(x) = v
    steps = [step(alg, "Cov eps_t = 2 Sigma_t", alg.cov(r), factor * sigma),
             step(alg, "(1/K) sum_i E eps_i(x)^2 = Var eps(x)", sp.Matrix([eps2]), sp.Matrix([v]))]
    return conclude("C6a", "Cov(eps_t) = 2 Sigma_t, E eps^2(x) = 2 Sigma_t(x, x)", alg.method,
                    (_GP, _A, "predictor, target and ensemble share kappa; heads i.i.d."), steps, strict)


def prove_c6b(alg=None, strict: bool = True, factor=1, projected=formulas.projected_cov) -> Proof:
    """C6b: a centred predictor (initial output 0) gives ``Cov(eps_t) = P_t kappa_g P_t^*``."""
    alg = default(alg)
    Kg = kernel(alg, "Kg")
    TxX, A = alg.matrix("Theta_xX", "n", "N"), alg.matrix("A", "N", "N")
    r = _rnd_residual(alg, None, Kg, TxX, A, centred=True)
    steps = [step(alg, "Cov eps_t = P kappa_g P^*", alg.cov(r),
                  factor * projected(Kg["xx"], Kg["xX"], Kg["XX"], TxX, A))]
    return conclude("C6b", "centred predictor: Cov(eps_t) = P_t kappa_g P_t^*", alg.method, (_GP, _A), steps, strict)


def prove_c9(alg=None, strict: bool = True, projected=formulas.projected_cov,
             posterior=formulas.posterior_cov) -> Proof:
    """C9 as exact identities, ``A = Theta_XX^{-1}``, ``D = Theta - K``:

    1. ``P Theta P^* - P K P^* = P D P^*``;
    2. ``P D P^* = L D L^T`` with ``L = [I, -Theta_xX Theta_XX^{-1}]``: a congruence,
       so PSD whenever ``D`` is (on the joint inputs ``(x, X)``);
    3. ``P Theta P^* = Theta - Theta_xX Theta_XX^{-1} Theta_Xx'``;
    4. ``Theta - P Theta P^* = B^T Theta_XX B`` with ``B = Theta_XX^{-1} Theta_Xx'``:
       PSD because ``Theta_XX`` is.
    """
    alg = default(alg)
    K, T = kernel(alg, "K"), kernel(alg, "Theta")
    A = formulas.train_operator(T["XX"], SYMPY)
    D = minus(T, K)

    def P(C):
        return projected(C["xx"], C["xX"], C["XX"], T["xX"], A)

    L = alg.block([[alg.eye("n"), -T["xX"] * A]])
    Dj = alg.block([[D["xx"], D["xX"]], [D["xX"].T, D["XX"]]])
    B = A * T["xX"].T
    steps = [
        step(alg, "P Theta P^* - P K P^* = P (Theta - K) P^*", P(T) - P(K), P(D)),
        step(alg, "P D P^* = L D L^T (congruence)", P(D), L * Dj * L.T),
        step(alg, "P Theta P^* = Theta - Theta_xX Theta_XX^{-1} Theta_Xx'", P(T),
             posterior(T["xx"], T["xX"], T["XX"], SYMPY)),
        step(alg, "Theta - P Theta P^* = B^T Theta_XX B", T["xx"] - P(T), B.T * T["XX"] * B),
    ]
    return conclude("C9", "Sigma_inf = P K P^* <= P Theta P^* = Theta - Theta_xX Theta_XX^{-1} Theta_Xx' <= Theta",
                    alg.method, ("Theta_XX symmetric positive definite", "Theta - K PSD on (x, X) for the ordering"),
                    steps, strict)
