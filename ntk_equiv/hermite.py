"""Gaussian expectations ``E[f(u) g(v)]`` of smooth functions by the Mehler
(Hermite) expansion: the dual maps of smooth activations given as formulas.

With ``u = a Z1``, ``v = b Z2`` and ``corr(Z1, Z2) = rho``, Mehler's formula is

    E[f(u) g(v)] = sum_k rho^k F_k(a) G_k(b),    F_k(a) = E[f(a Z) p_k(Z)],

with ``p_k = He_k / sqrt(k!)`` the orthonormal Hermite polynomials. The
coefficients depend on one point's variance only (``n`` sets per layer, not
``n^2``); a pair costs a polynomial in ``rho``.

*Certificate.* By Cauchy-Schwarz, truncating after ``K`` terms errs by at most
``sqrt(R_f(K) R_g(K))`` with ``R_f(K) = sum_{k>K} F_k^2 = E[f(u)^2] -
sum_{k<=K} F_k^2`` (Parseval): relative to the entry's scale
``sqrt(E[f(u)^2] E[g(v)^2])`` (the Cauchy-Schwarz bound of the entry) the error
is at most ``sqrt(r_f r_g)``, ``r = R / E[f^2]``, at *every* correlation,
``+-1`` included. Each point gets the shortest expansion whose computed tail is
below ``tail_tol``, and the remainder beyond all computed terms is checked by
Parseval against ``E[f(u)^2]`` computed on the same nodes. For smooth
activations the coefficients decay geometrically (``erf(a x)``: ratio
``2a^2 / (1 + 2a^2)``) or like ``exp(-c sqrt(k))`` (poles off the real axis:
``tanh``), so a few hundred terms reach ``1e-15`` at pre-activation std ~2.
Kinked activations (coefficients decaying like a power of ``k``) use
:mod:`ntk_equiv.quadrature` instead.

*Coefficients.* ``F_k = int f(a z) sqrt(N(z)) h_k(z) dz`` with the Hermite
functions ``h_k = p_k sqrt(N)`` (orthonormal in ``L2(dz)``, ``|h_k| <= 1``): the
integrand is analytic and decays like ``exp(-z^2/4)``, so the trapezoidal rule on
``[-L, L]`` converges geometrically once the step ``h`` resolves ``h_K``'s
fastest oscillation (frequency ``sqrt(2K + 1)``). ``E[f(u)^2]`` comes from the
same nodes, and the subset of every other node (step ``2h``) checks that ``f``
is resolved and that the integrand decays (else
:class:`~ntk_equiv.errors.QuadratureError`: a divergent expectation, a pole on
the real line, or a feature too narrow for the finest level).

One code path serves float64 and mpmath: :class:`Ops` supplies the few
elementwise functions (an explicit mpmath context, never the global
``mpmath.mp``), and the high-precision dot products run in exact fixed-point
integer arithmetic (Python ints in numpy object arrays: ~10x faster than mpf).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from .errors import QuadratureError

#: Levels tried in turn: numbers of terms ``K``; the step of the trapezoidal rule
#: is ``h = pi / (2 sqrt(2K + 1))`` (two nodes per half-period of ``h_K``).
LEVELS = (128, 384, 1024, 3072)

#: float64: per-point tail ``r`` accepted (the pair error is at most ``r`` plus the
#: Parseval remainder), and the tolerance of the resolution checks (Parseval
#: remainder and step ``2h`` vs ``h`` for ``E[f^2]``): rounding leaves ~1e-16.
F64_TAIL_TOL = 1e-15
F64_RESOLVE_TOL = 5e-14
#: Digits below which ``sqrt(N(z))`` ends the float64 range ``[-L, L]``.
F64_RANGE_DIGITS = 20.0


def step(n_terms: int) -> float:
    return math.pi / (2 * math.sqrt(2 * n_terms + 1))


def half_width(digits: float) -> float:
    """``L`` with ``exp(-L^2 / 4) = 10^-digits``: where ``sqrt(N(z))``, the
    coefficient integrand's envelope, falls below the target."""
    return math.sqrt(4 * math.log(10) * digits)


class Ops:
    """Elementwise operations on float64 arrays (``ctx=None``) or on object
    arrays of numbers of one mpmath context ``ctx``."""

    def __init__(self, ctx=None):
        self.ctx = ctx
        if ctx is None:
            self.exp, self.sqrt, self.num, self.pi, self.dtype = np.exp, np.sqrt, float, np.pi, float
            self.finite = np.isfinite
        else:
            self.exp, self.sqrt = np.frompyfunc(ctx.exp, 1, 1), np.frompyfunc(ctx.sqrt, 1, 1)
            self.num, self.pi, self.dtype = ctx.mpf, +ctx.pi, object
            finite = np.frompyfunc(ctx.isfinite, 1, 1)
            self.finite = lambda x: np.asarray(finite(x), dtype=bool)

    def arange(self, lo: int, hi: int) -> np.ndarray:
        return np.array([self.num(i) for i in range(lo, hi)], dtype=self.dtype)


def hermite_table(ops: Ops, n_terms: int, h, width) -> tuple:
    """Nodes ``z_n = n h`` on ``[-L, L]`` (an even number of steps each side, so
    that every other node is the step-``2h`` rule), the envelope
    ``e_n = sqrt(N(z_n))`` and ``T[k, n] = h e_n h_k(z_n)`` for ``k <= K``:
    ``F_k(a) = sum_n f(a z_n) T[k, n]``.

    ``h_k`` by the stable recurrence ``h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k+1)``,
    ``h_0 = e``."""
    steps = 2 * int(math.ceil(float(width / h) / 2))
    z = ops.arange(-steps, steps + 1) * h
    env = ops.exp(-z * z / 4) / ops.sqrt(ops.sqrt(2 * ops.pi + 0 * z))
    table = np.empty((n_terms + 1, z.size), dtype=ops.dtype)
    table[0] = env
    table[1] = z * env
    roots = ops.sqrt(ops.arange(0, n_terms + 2))
    for k in range(1, n_terms):
        table[k + 1] = (z * table[k] - roots[k] * table[k - 1]) / roots[k + 1]
    return z, env, table * (env * h)


@functools.lru_cache(maxsize=len(LEVELS))
def f64_table(n_terms: int) -> tuple:
    return hermite_table(Ops(), n_terms, step(n_terms), half_width(F64_RANGE_DIGITS))


def _not_finite(name: str, x) -> QuadratureError:
    return QuadratureError(
        f"{name} is not finite at x = {float(x):.6g} (a pole or a point outside its domain on the real "
        f"line): its Gaussian expectation is infinite or undefined")


def coefficients(ops: Ops, f: Callable, a: np.ndarray, table, dot: Callable, *, tail_tol, resolve_tol,
                 name: str = "phi") -> tuple | None:
    """``(F, m2, terms)``: Hermite coefficients ``F[i, k]`` of ``f`` at the
    standard deviations ``a[i]``, ``m2[i] = E[f(a_i Z)^2]`` and the number of
    terms ``terms[i]`` whose remaining tail is below ``tail_tol * m2[i]``; or
    ``None`` when this table does not resolve every point (try a finer level).

    Raises :class:`~ntk_equiv.errors.QuadratureError` when ``f`` is not finite
    at a node, or ``f(a z)^2 N(z)`` has not decayed at ``|z| = L``: ``f`` grows
    like ``exp(z^2 / 4)`` or faster and ``E[f(u)^2]`` is infinite (or too close
    to it to settle)."""
    z, env, tab = table
    raw = f(np.multiply.outer(a, z))
    finite = ops.finite(raw)
    if not np.all(finite):
        i, n = np.argwhere(~finite)[0]
        raise _not_finite(name, a[i] * z[n])
    fz = raw * env
    sq = fz * fz
    h = z[1] - z[0]
    m2 = np.sum(sq, axis=1) * h
    scale = np.where(np.asarray(m2 > 0, dtype=bool), m2, m2 * 0 + 1)
    ends = np.maximum(sq[:, 0], sq[:, -1])
    undecayed = np.asarray(ends * h > resolve_tol * scale, dtype=bool)
    if np.any(undecayed):
        i = int(np.argmax(undecayed))
        raise QuadratureError(
            f"E[{name}(u)^2] at pre-activation std {float(a[i]):.4g} does not settle: {name}(u)^2 decays "
            f"no faster than the Gaussian density grows (at |u| = {float(a[i] * z[-1]):.4g} the integrand is "
            f"still {float(ends[i] / scale[i]):.2g} of the total); the expectation is infinite or too "
            "close to infinite for this quadrature (e.g. exp(x**2) needs pre-activation variance < 1/4)")
    unsettled = np.asarray(abs(m2 - 2 * h * np.sum(sq[:, ::2], axis=1)) > resolve_tol * scale, dtype=bool)
    coef = dot(raw, tab)
    sq_coef = coef * coef
    tail = np.cumsum(sq_coef[:, ::-1], axis=1)[:, ::-1]  # tail[:, k] = sum_{j >= k} F_j^2
    rest = np.asarray(abs(m2 - tail[:, 0]) > resolve_tol * scale, dtype=bool)
    below = np.asarray(tail <= tail_tol * scale[:, None], dtype=bool)
    if np.any(unsettled | rest) or not np.all(below.any(axis=1)):
        return None
    return coef, m2, np.argmax(below, axis=1)


def expansion(ops: Ops, f: Callable, a: np.ndarray, tables: Callable, dot: Callable, *, tail_tol, resolve_tol,
              name: str = "phi", start: int = 0) -> tuple | None:
    """:func:`coefficients` at the first level of :data:`LEVELS` (from
    ``n_terms`` on) that resolves every point of ``a`` (all points share a
    level, so a pair sum never reaches past the coefficients of either point);
    ``None`` when none does (features too narrow for the finest level: the
    caller falls back to a 2-D rule)."""
    for n_terms in LEVELS:
        if n_terms < start:
            continue
        out = coefficients(ops, f, a, tables(n_terms), dot, tail_tol=tail_tol, resolve_tol=resolve_tol, name=name)
        if out is not None:
            return out
    return None


def pair_sum(ia: np.ndarray, ib: np.ndarray, rho, cf: np.ndarray, cg: np.ndarray, terms: np.ndarray):
    """``sum_{k <= K_p} rho_p^k cf[ia_p, k] cg[ib_p, k]`` per pair ``p`` (Horner),
    ``K_p = terms[ia_p] max terms[ib_p]``: pairs sorted by ``K_p`` so that each
    step of the recurrence touches a prefix."""
    kp = np.maximum(terms[ia], terms[ib])
    order = np.argsort(-kp, kind="stable")
    ia, ib, r, kp = ia[order], ib[order], rho[order], kp[order]
    cft, cgt = cf.T, cg.T
    acc = np.zeros(len(ia), dtype=cf.dtype) if cf.dtype != object else r * 0
    count = 0
    for k in range(int(kp[0]) if len(kp) else 0, -1, -1):
        while count < len(kp) and kp[count] >= k:  # the prefix of pairs with K_p >= k grows
            count += 1
        head = slice(0, count)
        acc[head] = acc[head] * r[head] + cft[k][ia[head]] * cgt[k][ib[head]]
    out = np.empty_like(acc)
    out[order] = acc
    return out


def expectation_f64(f: Callable, g: Callable, k11, k12, k22, *, names=("f", "g")) -> np.ndarray | None:
    """``E[f(u) g(v)]`` for ``(u, v) ~ N(0, [[k11, k12], [k12, k22]])``,
    elementwise over broadcast float arrays, for smooth ``f, g`` (see the
    module docstring; pair error at most ``F64_TAIL_TOL + F64_RESOLVE_TOL`` of
    ``sqrt(E[f(u)^2] E[g(v)^2])``); ``None`` when the finest level does not
    resolve some variance."""
    k11, k12, k22 = np.broadcast_arrays(*(np.asarray(k, float) for k in (k11, k12, k22)))
    shape = k11.shape
    var, inv = np.unique(np.concatenate([k11.ravel(), k22.ravel()]), return_inverse=True)
    inv = inv.ravel()
    ia, ib = inv[: k11.size], inv[k11.size:]
    a = np.sqrt(np.maximum(var, 0.0))
    ops = Ops()
    tols = dict(tail_tol=F64_TAIL_TOL, resolve_tol=F64_RESOLVE_TOL)
    first = expansion(ops, f, a, f64_table, _dot_f64, name=names[0], **tols)
    if first is None:
        return None
    cf, _, tf = first
    cg, tg = cf, tf
    if g is not f:
        second = expansion(ops, g, a, f64_table, _dot_f64, name=names[1], start=cf.shape[1] - 1, **tols)
        if second is None:
            return None
        cg, _, tg = second
        if cg.shape[1] != cf.shape[1]:  # g needed a finer level: f too
            first = expansion(ops, f, a, f64_table, _dot_f64, name=names[0], start=cg.shape[1] - 1, **tols)
            if first is None:
                return None
            cf, _, tf = first
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip(k12.ravel() / np.sqrt(k11.ravel() * k22.ravel()), -1.0, 1.0)
    rho = np.where(np.isfinite(rho), rho, 0.0)  # a zero variance: only the k = 0 term survives
    return pair_sum(ia, ib, rho, cf, cg, np.maximum(tf, tg)).reshape(shape)


def _dot_f64(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    return values @ table.T
