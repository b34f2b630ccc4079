"""The matrix formulas of docs/theory.md, written once for every number type.

Each function takes a backend ``bk`` (:mod:`ntk_equiv.precision`) and arrays
of that backend: float64 ndarrays, object arrays of mpmath numbers, or sympy
matrices (explicit or ``MatrixSymbol`` expressions, which is how
:mod:`ntk_equiv.symbolic` proves these same lines exactly). Only ``@``,
``.T``, ``+``, ``-``, scalar products and the backend's ``solve_psd`` /
``sym_fun`` are used.

Notation (docs/theory.md): ``T = Theta_XX + lambda I`` (``lambda`` = ridge),
``A_t = T^{-1} (I - exp(-eta T t))``, ``A_inf = T^{-1}``; after ``k`` steps of
gradient descent ``A_k = T^{-1} (I - (I - eta T)^k)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np


Array = Any


def train_operator(theta_XX: Array, bk, *, t=None, lr=1, ridge=0, steps: int | None = None) -> Array:
    """``A_t`` (continuous time ``t``), ``A_k`` (``steps=k``) or ``A_inf`` (both None).

    Finite times go through the eigen-decomposition ``T = Q diag(w) Q^T``:
    ``A_t = Q diag((1 - exp(-eta t w)) / w) Q^T``, which stays finite (-> ``eta t``)
    for eigenvalues ``w -> 0``; ``A_inf = T^{-1}`` needs ``T`` positive definite.
    """
    n = theta_XX.shape[0]
    T = theta_XX + ridge * bk.eye(n)
    if t is None and steps is None:
        return bk.solve_psd(T, bk.eye(n))
    if not getattr(bk, "has_eigh", True):  # ball arithmetic has no enclosing eigendecomposition (a backend
        # outside precision.Backend, e.g. the symbolic EigenSympy, has one)
        return gd_operator(T, bk, lr, int(steps)) if steps is not None else flow_operator(T, bk, lr * t)
    if steps is not None:
        k = int(steps)

        def gain(w):
            return _discrete_gain(bk, w, lr, k)
    else:
        def gain(w):
            return _safe_ratio(bk, -bk.expm1(-lr * t * w), w, lr * t)
    return bk.sym_fun(T, gain)


def flow_operator(T: Array, bk, s) -> Array:
    """``A_t = T^{-1} (I - exp(-s T))`` with ``s = eta t``, without an inverse or an
    eigendecomposition: the top-right block of
    ``exp([[-s T, s I], [0, 0]])`` (for ``M = [[B, C], [0, 0]]``,
    ``exp(M)`` has top-right block ``(int_0^1 e^{B r} dr) C``, and
    ``s int_0^1 e^{-s T r} dr = T^{-1} (I - e^{-s T})``). Needs ``bk.expm``; valid
    for every symmetric ``T``, singular or not."""
    n = T.shape[0]
    zero = 0 * T
    block = np.block([[-s * T, s * bk.eye(n)], [zero, zero]])
    return bk.expm(block)[:n, n:]


def gd_operator(T: Array, bk, lr, k: int) -> Array:
    """``A_k = T^{-1} (I - (I - eta T)^k) = eta sum_{j<k} (I - eta T)^j``, without an
    inverse: ``eta`` times the top-right block of ``[[I - eta T, I], [0, I]]^k``
    (by repeated squaring)."""
    n = T.shape[0]
    eye = bk.eye(n)
    block = np.block([[eye - lr * T, eye], [0 * T, eye]])
    return lr * bk.matpow(block, int(k))[:n, n:]


def _safe_ratio(bk, num, w, limit):
    # (1 - e^{-eta t w}) / w with its limit eta t at w = 0 (a singular train kernel).
    # expm1 keeps num/w accurate for every w != 0, however small (round-off
    # eigenvalues ~ eps ||T|| of either sign give ~ eta t, as they should), so
    # only an exact zero needs the limit.
    small = w == 0
    return bk.where(small, 0 * w + limit, num / bk.where(small, 0 * w + 1, w))


def _discrete_gain(bk, w, lr, k: int):
    """``(1 - (1 - eta w)^k) / w`` for eigenvalues ``w`` of ``T``, limit ``eta k`` at 0.

    For ``|eta w| < 1/2`` it is evaluated as ``-expm1(k log1p(-eta w)) / w``:
    the naive ``1 - (1 - eta w)^k`` cancels catastrophically for small
    ``eta w`` (relative error ~ eps / (eta w k)), the log1p/expm1 form does not.
    Larger ``eta w`` (where ``1 - eta w`` may be negative) use the power directly,
    which has no cancellation there.
    """
    a = lr * w
    small = bk.abs(a) < 0.5
    safe_a = bk.where(small, a, 0 * a)
    via_log = -bk.expm1(k * bk.log1p(-safe_a))
    direct = 1 - (1 - a) ** k
    return _safe_ratio(bk, bk.where(small, via_log, direct), w, lr * k)


def training_gain(theta_xX: Array, A: Array) -> Array:
    """``Theta_xX A_t``: how the train residual moves the test outputs."""
    return theta_xX @ A


def linearised_mean(f0_x: Array, f0_X: Array, theta_xX: Array, A: Array, Y: Array) -> Array:
    """C3: ``f_t(x) = f_0(x) + Theta_xX A_t (Y - f_0(X))``."""
    return f0_x + theta_xX @ (A @ (Y - f0_X))


def projected_cov(C_xx: Array, C_xX: Array, C_XX: Array, theta_xX: Array, A: Array) -> Array:
    """``P_t C P_t^*`` on one set of test inputs (docs/theory.md, training projector):

    ``C(x,x') - Theta_xX A C(X,x') - C(x,X) A^T Theta_Xx' + Theta_xX A C(X,X) A^T Theta_Xx'``.
    """
    G = theta_xX @ A
    GC = G @ C_xX.T
    return C_xx - GC - GC.T + G @ C_XX @ G.T


def posterior_mean(prior_xX: Array, prior_XX: Array, Y: Array, bk, noise=0) -> Array:
    """GP posterior mean ``k_xX (k_XX + noise I)^{-1} Y``."""
    n = prior_XX.shape[0]
    return prior_xX @ bk.solve_psd(prior_XX + noise * bk.eye(n), Y)


def posterior_cov(prior_xx: Array, prior_xX: Array, prior_XX: Array, bk, noise=0) -> Array:
    """GP posterior covariance ``k_xx - k_xX (k_XX + noise I)^{-1} k_Xx``."""
    n = prior_XX.shape[0]
    return prior_xx - prior_xX @ bk.solve_psd(prior_XX + noise * bk.eye(n), prior_xX.T)


def rnd_error_cov(kappa_u, kappa_g, theta_xX: Array, A: Array, centred: bool = False) -> Array:
    """C6: ``Cov(eps_t) = P_t (kappa_u + kappa_g) P_t^*`` from the blocks
    ``(xx, xX, XX)`` of the predictor's ``kappa_u`` and the target's
    ``kappa_g``; ``centred``: ``kappa_u = 0`` (C6b)."""
    C = kappa_g if centred else tuple(a + b for a, b in zip(kappa_u, kappa_g))
    return projected_cov(C[0], C[1], C[2], theta_xX, A)


def bayesian_rnd_cov(prior, gain_xX: Array, A: Array, noise, bk) -> Array:
    """C7/C7a/C7b as an RND law: ``P (k + lambda I_XX) P^*`` with ``k`` the
    law of ``h = u_0 - g`` (blocks ``prior``), ``lambda I_XX`` added to the
    train block only (``Cov(h(X) - e)``), ``P`` the projector of the
    predictor's training kernel (``gain_xX``, ``A``)."""
    noisy_XX = prior[2] + noise * bk.eye(prior[2].shape[0])
    return projected_cov(prior[0], prior[1], noisy_XX, gain_xX, A)
