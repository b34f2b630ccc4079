"""Independent mpmath evaluations that checks and experiments set against the
library: matrices taken into an mpmath context of their own, and the training
projector ``[I_n, -G]`` assembled entry by entry, without
:mod:`ntk_equiv.formulas`, so ``P C P^T`` is an independent side of a check."""
from __future__ import annotations

import mpmath
import numpy as np


def to_mp(a, ctx) -> mpmath.matrix:
    """``a`` as a matrix of the mpmath context ``ctx`` (its numbers taken into ``ctx``)."""
    return ctx.matrix(a.tolist() if hasattr(a, "tolist") else np.asarray(a).tolist())


def max_abs(a: mpmath.matrix):
    """``max_ij |a_ij|`` of an mpmath matrix, in its own numbers."""
    return max(abs(a[i, j]) for i in range(a.rows) for j in range(a.cols))


def explicit_projector(G: mpmath.matrix, ctx) -> mpmath.matrix:
    """The training projector as a matrix ``[I_n, -G]`` acting on ``[h(x); h(X)]``,
    ``G = Theta_xX A`` (``P h = h(x) - G h(X)``), entry by entry."""
    n, N = G.rows, G.cols
    P = ctx.zeros(n, n + N)
    for i in range(n):
        P[i, i] = 1
        for j in range(N):
            P[i, n + j] = -G[i, j]
    return P


def independent_train_operator(theta_XX, t=None, lr=1, ridge=0, steps=None, *, ctx) -> mpmath.matrix:
    """``A`` by a different route from :mod:`ntk_equiv.formulas` (no eigendecomposition):
    ``T^{-1} (I - expm(-eta t T))`` with mpmath's Pade/Taylor ``expm``, or
    ``T^{-1} (I - (I - eta T)^k)`` by exact matrix powers (in the context ``ctx``)."""
    T = to_mp(theta_XX, ctx)
    T = T + ctx.mpf(ridge) * ctx.eye(T.rows)
    inv = ctx.inverse(T)
    if t is None and steps is None:
        return inv
    eye = ctx.eye(T.rows)
    if steps is not None:
        return inv * (eye - (eye - ctx.mpf(lr) * T) ** int(steps))
    return inv * (eye - ctx.expm(-ctx.mpf(lr) * ctx.mpf(t) * T))


def mp_max_abs(a, ctx) -> mpmath.mpf:
    return max_abs(to_mp(a, ctx))
