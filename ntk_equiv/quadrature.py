"""Two-dimensional Gaussian expectations ``E[f(u) g(v)]`` by quadrature.

This is the dual-activation path for *kinked* activations without a closed
form (smooth ones use the Mehler expansion of :mod:`ntk_equiv.hermite`), the
float64 fallback beyond the Hermite levels, and a reference the closed forms
are tested against.

With ``(u, v) ~ N(0, [[k11, k12], [k12, k22]])`` write ``u = a z1`` and
``v = c z1 + s z2`` with ``z1, z2`` independent standard normals,
``a = sqrt(k11)``, ``c = k12 / a``, ``s = sqrt(det) / a`` and
``det = k11 k22 - k12^2``; then

    E[f(u) g(v)] = int f(a z1) psi(z1) N(z1) dz1,
    psi(z1)      = int g(c z1 + s z2) N(z2) dz2.

Kinks of ``f`` sit at ``z1 = kappa / a``; kinks of ``g`` at
``z2 = (kappa - c z1) / s`` (and, when ``s`` is small, ``psi`` is nearly
kinked at ``z1 = kappa / c``). Splitting the integration range at these
points makes both rules converge fast for piecewise-smooth activations
(ReLU, abs, sign...), where a plain Gauss-Hermite rule would converge only
algebraically. The breakpoints are computed once (:func:`breakpoints`) for
both precisions:

* float64: vectorised piecewise Gauss-Legendre on ``[-L, L]``, ``L = 12``
  (the Gaussian tail beyond is ``< 1e-31``);
* mpmath: nested adaptive tanh-sinh (``ctx.quad``) on the real line with
  the same breakpoints, in the backend's own mpmath context ``ctx`` (every
  mpmath number and function here comes from an explicit context argument;
  the global ``mpmath.mp`` is never read or changed).

When every kink sits at 0 (ReLU, abs, leaky ReLU, sign, Heaviside and their
products with smooth functions) both precisions use polar coordinates instead,
where the kinks become rays: :func:`polar_expectations_f64` (adaptive,
vectorised over pairs, the rule above for entries it does not settle) and
:func:`gaussian_expectation_polar_mp`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import mpmath
import numpy as np
import sympy

from .errors import QuadratureError

#: Truncation of the real line for the float64 rule.
F64_HALF_WIDTH = 12.0
#: Uniform sub-intervals of [-L, L] (before adding kink breakpoints) and
#: Gauss-Legendre nodes per sub-interval: 16 x 24 nodes resolve features of
#: width ~0.15 in the whitened variable: measured against the closed forms,
#: 1e-15 for erf' at pre-activation std 1.5 and 3e-12 at std 2.5 (8 segments
#: gave 4e-11 and 3e-7).
F64_SEGMENTS = 16
F64_NODES = 24


#: Offsets (in units of s) of extra breakpoints around a smoothed kink.
_SMOOTHED_KINK_OFFSETS = (0.5, 1.5, 4.0, 10.0)


def breakpoints(kinks: Sequence[float], scale, *, shift=0.0):
    """Points ``(kappa - shift) / scale`` for each kink ``kappa``, ``inf`` where
    ``scale == 0`` (no breakpoint in range)."""
    out = []
    for kappa in kinks:
        num = kappa - shift
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(scale != 0, num / np.where(scale != 0, scale, 1.0), np.inf)
        out.append(b)
    return out


def _gl_rule(n: int):
    z, w = np.polynomial.legendre.leggauss(n)
    return z, w


def _piecewise_nodes(breaks: list[np.ndarray], shape, half_width: float):
    """Nodes/weights (incl. the standard normal density) of a piecewise
    Gauss-Legendre rule on ``[-L, L]`` split at a uniform grid and ``breaks``."""
    grid = np.linspace(-half_width, half_width, F64_SEGMENTS + 1)
    pts = [np.broadcast_to(g, shape) for g in grid]
    pts += [np.clip(np.broadcast_to(b, shape), -half_width, half_width) for b in breaks]
    edges = np.sort(np.stack(pts, axis=-1), axis=-1)  # (..., S+1)
    lo, hi = edges[..., :-1], edges[..., 1:]
    t, w = _gl_rule(F64_NODES)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    nodes = mid[..., None] + half[..., None] * t
    weights = half[..., None] * w
    nodes = nodes.reshape(*shape, -1)
    weights = weights.reshape(*shape, -1) * np.exp(-0.5 * nodes**2) / np.sqrt(2 * np.pi)
    return nodes, weights


def gaussian_expectation_f64(
    f: Callable, g: Callable, kinks_f, kinks_g, k11, k12, k22, *, chunk: int = 64, det=None
) -> np.ndarray:
    """``E[f(u) g(v)]`` elementwise over broadcast arrays ``k11, k12, k22``
    (``det = k11 k22 - k12^2``, computed if not given)."""
    if det is None:
        det = np.maximum(np.asarray(k11, float) * k22 - np.asarray(k12, float) ** 2, 0.0)
    k11, k12, k22, det = np.broadcast_arrays(*(np.asarray(k, float) for k in (k11, k12, k22, det)))
    shape = k11.shape
    k11, k12, k22, det = k11.ravel(), k12.ravel(), k22.ravel(), det.ravel()
    out = np.empty(k11.shape)
    for start in range(0, k11.size, chunk):
        sl = slice(start, start + chunk)
        out[sl] = _expectation_block(f, g, kinks_f, kinks_g, k11[sl], k12[sl], k22[sl], det[sl])
    return out.reshape(shape)


def _whiten(k11, k12, det, bk_sqrt, maximum0):
    a = bk_sqrt(k11)
    c = k12 / a
    s = bk_sqrt(maximum0(det)) / a
    return a, c, s


def _expectation_block(f, g, kinks_f, kinks_g, k11, k12, k22, det):
    a, c, s = _whiten(k11, k12, det, np.sqrt, lambda v: np.maximum(v, 0.0))
    m = k11.size
    outer_breaks = breakpoints(kinks_f, a) + breakpoints(kinks_g, c)
    # psi(z1) smooths g's kink over a width ~ s/|c| around z1 = kappa/c: when the
    # correlation is near +-1 that width is small and needs its own segments
    for kappa in kinks_g:
        for width in _SMOOTHED_KINK_OFFSETS:
            for sign in (-1.0, 1.0):
                outer_breaks += breakpoints([kappa], c, shift=sign * width * s)
    z1, w1 = _piecewise_nodes(outer_breaks, (m,), F64_HALF_WIDTH)
    inner_breaks = breakpoints(kinks_g, s[:, None], shift=c[:, None] * z1)
    z2, w2 = _piecewise_nodes(inner_breaks, z1.shape, F64_HALF_WIDTH)
    v = c[:, None, None] * z1[..., None] + s[:, None, None] * z2
    psi = np.sum(w2 * g(v), axis=-1)
    return np.sum(w1 * f(a[:, None] * z1) * psi, axis=-1)


# --------------------------------------------------------------------------- #
# float64, kinks at 0 only: polar coordinates, adaptive
# --------------------------------------------------------------------------- #
# With sigma1 = sqrt(k11), sigma2 = sqrt(k22) and the angle phi between the two
# inputs (cos phi = correlation), (u, v) = r (sigma1 cos t, sigma2 cos(t - phi))
# for (r, t) polar coordinates of a standard normal pair, so
#     E[f(u) g(v)] = (1/2pi) int_0^{2pi} dt int_0^inf f(r sigma1 cos t) g(r sigma2 cos(t - phi)) r e^{-r^2/2} dr.
# With every kink at 0 the integrand is analytic in r along each ray and in t
# on the four arcs between t = +-pi/2 and t = phi +- pi/2, where cos t or
# cos(t - phi) changes sign: Gauss-Legendre on the arcs and the Gauss rule of
# the weight r e^{-r^2/2} in r converge exponentially (piecewise polynomial
# activations such as ReLU, abs, leaky ReLU are integrated exactly by a few
# nodes). The arc lengths phi and pi - phi come from two atan2 calls on
# sqrt(det) (no cancellation at correlation +-1), and the directions on each
# arc from sines of the distances to its ends, so the sign of u and v at every
# node is exact however short the arc.

#: (radial nodes, angular nodes per arc) of the successive polar rules; an entry
#: is accepted when two consecutive rules agree within POLAR_F64_TOL. The first
#: two settle piecewise-linear activations (ReLU, abs, leaky ReLU, sign: the
#: radial integrand is a polynomial of degree <= 2, the angular one a
#: trigonometric polynomial of degree 2, for which 12 Gauss-Legendre nodes on
#: an arc of length <= pi leave ~1e-18 and 8 only ~1e-10), the others resolve
#: smooth factors.
POLAR_F64_LEVELS = ((4, 12), (6, 14), (12, 18), (20, 24), (32, 32), (48, 40), (72, 54), (96, 72))
#: Agreement demanded of two consecutive polar rules, relative to the rule's own
#: ``E[|f(u) g(v)|]`` (at most the Cauchy-Schwarz scale ``sqrt(E f(u)^2 E g(v)^2)``):
#: an order below the 1e-12 accuracy contract, above the ~1e-14 round-off floor
#: of the sums (measured: consecutive rules on a converged integrand differ by
#: up to 8e-15).
POLAR_F64_TOL = 1e-13
#: Pairs per vectorised block of the polar rule.
POLAR_F64_CHUNK = 256
#: Largest number of nodes (pairs x arcs x angular x radial) evaluated at once.
POLAR_F64_BLOCK_NODES = 1 << 20


@functools.cache
def _f64_radial_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n``-point Gauss rule for ``int_0^inf F(r) r e^{-r^2/2} dr``.

    Recurrence coefficients by the Stieltjes procedure on a fine piecewise
    Gauss-Legendre discretisation of the weight on ``[0, 12]`` (mass beyond:
    ``e^{-72}``), then the eigen-decomposition of the Jacobi matrix (Golub-Welsch).
    """
    t, w = _gl_rule(40)
    edges = np.linspace(0.0, 12.0, 61)
    mid, half = (edges[:-1] + edges[1:]) / 2, np.diff(edges) / 2
    x = (mid[:, None] + half[:, None] * t).ravel()
    wx = (half[:, None] * w).ravel() * x * np.exp(-x * x / 2)
    alpha, beta = np.zeros(n), np.zeros(n)
    p_prev, p, norm_prev = np.zeros_like(x), np.ones_like(x), 1.0
    for k in range(n):
        norm = np.sum(wx * p * p)
        alpha[k] = np.sum(wx * x * p * p) / norm
        beta[k] = norm if k == 0 else norm / norm_prev
        p_prev, p, norm_prev = p, (x - alpha[k]) * p - (beta[k] * p_prev if k else 0.0), norm
    off = np.sqrt(beta[1:])
    nodes, vec = np.linalg.eigh(np.diag(alpha) + np.diag(off, 1) + np.diag(off, -1))
    return nodes, beta[0] * vec[0] ** 2


def _polar_rule_f64(h: Callable, sigma1, sigma2, phi, phi_c, n_r: int, n_t: int):
    """``(E[h_i(u) h_i(v)], E[|h_i(u) h_i(v)|])`` for each output ``h_i`` of the
    joint function ``h``, by the polar rule with ``n_r`` radial nodes and ``n_t``
    Gauss-Legendre nodes on each of the four arcs (lengths ``phi, phi_c, phi, phi_c``,
    ``phi_c = pi - phi``)."""
    r, wr = _f64_radial_rule(n_r)
    t, wt = _gl_rule(n_t)
    lengths = np.stack([phi, phi_c], axis=-1)[..., None]  # (m, 2, 1)
    half = lengths / 2
    from_start, to_end = half * (1 + t), half * (1 - t)  # (m, 2, n_t)
    # arc [-pi/2, phi - pi/2]: cos t = sin(from_start) > 0, cos(t - phi) = -sin(to_end) < 0;
    # arc [phi - pi/2, pi/2]: cos t = sin(to_end) > 0, cos(t - phi) = sin(from_start) > 0;
    # the arcs t + pi negate both directions
    du = np.stack([np.sin(from_start[:, 0]), np.sin(to_end[:, 1])], axis=1)
    dv = np.stack([-np.sin(to_end[:, 0]), np.sin(from_start[:, 1])], axis=1)
    du, dv = np.concatenate([du, -du], axis=1), np.concatenate([dv, -dv], axis=1)  # (m, 4, n_t)
    w_ang = np.concatenate([half * wt, half * wt], axis=1) / (2 * np.pi)  # (m, 4, n_t)
    u = (sigma1[:, None, None] * du)[..., None] * r
    v = (sigma2[:, None, None] * dv)[..., None] * r
    weight = w_ang[..., None] * wr
    out = []
    for hu, hv in zip(h(u), h(v)):
        prod = weight * hu * hv
        out.append((prod.sum(axis=(1, 2, 3)), np.abs(prod).sum(axis=(1, 2, 3))))
    return out


def _polar_rule_blocked(h: Callable, sigma1, sigma2, phi, phi_c, n_r: int, n_t: int):
    """:func:`_polar_rule_f64` in blocks of at most :data:`POLAR_F64_BLOCK_NODES` nodes."""
    step = max(1, POLAR_F64_BLOCK_NODES // (4 * n_t * n_r))
    parts = [_polar_rule_f64(h, sigma1[i:i + step], sigma2[i:i + step], phi[i:i + step], phi_c[i:i + step], n_r, n_t)
             for i in range(0, sigma1.size, step)]
    return [tuple(np.concatenate([p[j][k] for p in parts]) for k in (0, 1)) for j in range(len(parts[0]))]


def polar_expectations_f64(h: Callable, k11, k12, k22, det=None):
    """``[E[h_i(u) h_i(v)] for each output h_i of h]`` elementwise over broadcast
    ``k11, k12, k22``, for ``h`` smooth except at 0 (see the comment above), by
    the polar rules of :data:`POLAR_F64_LEVELS` of increasing size.

    An entry is accepted when two consecutive rules agree within
    ``POLAR_F64_TOL * E[|h_i(u) h_i(v)|]`` for every output. Returns
    ``(values, unsettled)``: a list of arrays of the broadcast shape, and the
    mask of entries no two rules settled (their values are the last rule's; the
    caller recomputes them with :func:`gaussian_expectation_f64`).
    """
    if det is None:
        det = np.maximum(np.asarray(k11, float) * k22 - np.asarray(k12, float) ** 2, 0.0)
    k11, k12, k22, det = np.broadcast_arrays(*(np.asarray(k, float) for k in (k11, k12, k22, det)))
    shape = k11.shape
    k11, k12, k22, det = k11.ravel(), k12.ravel(), k22.ravel(), np.maximum(det.ravel(), 0.0)
    if k11.size == 0:
        return [np.zeros(shape) for _ in h(np.zeros(0))], np.zeros(shape, dtype=bool)
    sdet = np.sqrt(det)
    phi, phi_c = np.arctan2(sdet, k12), np.arctan2(sdet, -k12)
    sigma1, sigma2 = np.sqrt(np.maximum(k11, 0.0)), np.sqrt(np.maximum(k22, 0.0))
    values: list[np.ndarray] | None = None
    unsettled = np.zeros(k11.size, dtype=bool)
    for start in range(0, k11.size, POLAR_F64_CHUNK):
        idx = np.arange(start, min(start + POLAR_F64_CHUNK, k11.size))
        args = (sigma1[idx], sigma2[idx], phi[idx], phi_c[idx])
        prev = _polar_rule_blocked(h, *args, *POLAR_F64_LEVELS[0])
        if values is None:
            values = [np.zeros(k11.size) for _ in prev]
        for level in POLAR_F64_LEVELS[1:]:
            cur = _polar_rule_blocked(h, *args, *level)
            ok = np.ones(idx.size, dtype=bool)
            for (v0, _), (v1, mag) in zip(prev, cur):
                ok &= np.abs(v1 - v0) <= POLAR_F64_TOL * mag
            for out, (v1, _) in zip(values, cur):
                out[idx[ok]] = v1[ok]
            idx, args = idx[~ok], tuple(a[~ok] for a in args)
            prev = [(v1[~ok], mag[~ok]) for v1, mag in cur]
            if idx.size == 0:
                break
        for out, (v1, _) in zip(values, prev):
            out[idx] = v1
        unsettled[idx] = True
    return [v.reshape(shape) for v in values], unsettled.reshape(shape)


def gaussian_expectation_mp(ctx, f: Callable, g: Callable, kinks_f, kinks_g, k11, k12, k22, det=None):
    """``E[f(u) g(v)]`` for mpf scalars of the mpmath context ``ctx``, at
    ``ctx``'s precision (the global ``mpmath.mp`` is never read)."""
    if det is None:
        det = k11 * k22 - k12 * k12
    zero = ctx.mpf(0)
    a, c, s = _whiten(k11, k12, det, ctx.sqrt, lambda v: max(v, zero))
    inf = ctx.inf

    def finite(points):
        return sorted({p for p in points if ctx.isfinite(p)})

    # 0 is a breakpoint of both integrals: tanh-sinh on a half-line [p, inf) puts its nodes near p,
    # so with p far from 0 (the inner kink (kappa - c z1) / s is ~1/s away when |rho| is near 1) it
    # misses the Gaussian's mass at 0 (0.2 off at rho = 1 - 1e-3); [p, 0] and [0, inf) have it at an end
    def psi(z1):
        if s == 0:
            return g(c * z1)
        pts = finite([zero] + [(kappa - c * z1) / s for kappa in kinks_g])
        return ctx.quad(lambda z2: g(c * z1 + s * z2) * ctx.npdf(z2), [-inf, *pts, inf])

    pts1 = [zero] + [kappa / a for kappa in kinks_f] + ([kappa / c for kappa in kinks_g] if c != 0 else [])
    return ctx.quad(lambda z1: f(a * z1) * psi(z1) * ctx.npdf(z1), [-inf, *finite(pts1), inf])


# --------------------------------------------------------------------------- #
# high precision, kinks at 0 only: polar coordinates
# --------------------------------------------------------------------------- #
# When every kink of f and g sits at 0, write (z1, z2) = r (cos t, sin t). The
# kinks become rays (t where u = 0 or v = 0), and along each ray the integrand
# is smooth in r >= 0. So
#     E[f(u) g(v)] = (1/2pi) int_0^{2pi} dt int_0^inf f(a r cos t) g(r (c cos t + s sin t)) r e^{-r^2/2} dr
# is computed with Gauss-Legendre on the arcs between kink rays and the Gauss
# rule of the weight r e^{-r^2/2} on [0, inf) in r: both converge exponentially,
# ~10^4 evaluations per entry at 50 digits instead of ~10^6 for nested tanh-sinh.
#
# The node tables are built in contexts of their own (higher precision where
# the construction is ill-conditioned), cached as raw ``_mpf_`` tuples by the
# caller's precision, and handed out as numbers of the caller's context
# (:func:`_in_context`): a cached table is shared by threads but never a
# context, so no evaluation can change another's precision.
# ``prec`` (bits) and ``dps`` (digits) of a caller's context travel together:
# ``dps`` sets the node counts and working precisions, ``prec`` the rounding of
# the cached nodes.

RawRule = tuple[tuple[tuple, ...], tuple[tuple, ...]]


def _prec_context(prec: int) -> mpmath.MPContext:
    """A fresh mpmath context at ``prec`` bits (rounds nodes like the caller's)."""
    ctx = mpmath.MPContext()
    ctx.prec = prec
    return ctx


def _dps_context(dps: int) -> mpmath.MPContext:
    """A fresh mpmath context at ``dps`` digits, for a construction that needs
    more than the caller's precision."""
    from .precision import mp_context

    return mp_context(dps, guard=0)


def _raw(lo: mpmath.MPContext, xs) -> tuple[tuple, ...]:
    """``xs`` rounded to ``lo``'s precision, as raw ``_mpf_`` tuples."""
    return tuple(lo.mpf(x)._mpf_ for x in xs)


def _in_context(ctx, rule: RawRule) -> tuple[tuple, tuple]:
    """A cached raw rule as numbers of ``ctx``."""
    return tuple(tuple(ctx.make_mpf(v) for v in part) for part in rule)


def _golub_welsch(ctx, alpha, beta):
    """Nodes and weights of the Gauss rule with recurrence coefficients
    ``alpha_k, beta_k`` (``beta_0`` = total mass), at ``ctx``'s precision."""
    n = len(alpha)
    d = [ctx.mpf(a) for a in alpha]
    e = [ctx.sqrt(b) for b in beta[1:]] + [ctx.mpf(0)]
    z = ctx.matrix(1, n)
    z[0, 0] = 1
    from mpmath.matrices.eigen_symmetric import tridiag_eigen

    tridiag_eigen(ctx, d, e, z)
    return d, [beta[0] * z[0, i] ** 2 for i in range(n)]


def _chebyshev_recurrence(ctx, moments, n):
    """Recurrence coefficients from ``2n`` moments (Gautschi's Chebyshev
    algorithm); ill-conditioned, so callers pass a context of raised precision."""
    alpha, beta = [0] * n, [0] * n
    alpha[0], beta[0] = moments[1] / moments[0], moments[0]
    prev = [ctx.mpf(0)] * (2 * n)
    cur = list(moments)
    for k in range(1, n):
        new = [ctx.mpf(0)] * (2 * n)
        for l in range(k, 2 * n - k):
            new[l] = cur[l + 1] - alpha[k - 1] * cur[l] - beta[k - 1] * prev[l]
        alpha[k] = new[k + 1] / new[k] - cur[k] / cur[k - 1]
        beta[k] = new[k] / cur[k - 1]
        prev, cur = cur, new
    return alpha, beta


@functools.lru_cache(maxsize=8)
def _radial_rule(prec: int, dps: int, n: int) -> RawRule:
    """Gauss rule for ``int_0^inf F(r) r exp(-r^2/2) dr`` with ``n`` nodes,
    rounded to ``prec`` bits (moments ``2^{k/2} Gamma(k/2 + 1)``, built at
    ``3 dps + 2n`` digits: the moment map loses ~2 digits per node)."""
    hi = _dps_context(3 * dps + 2 * n)
    moments = [hi.mpf(2) ** (hi.mpf(k) / 2) * hi.gamma(hi.mpf(k) / 2 + 1) for k in range(2 * n)]
    alpha, beta = _chebyshev_recurrence(hi, moments, n)
    nodes, weights = _golub_welsch(hi, alpha, beta)
    lo = _prec_context(prec)
    return _raw(lo, nodes), _raw(lo, weights)


@functools.lru_cache(maxsize=8)
def _legendre_rule(prec: int, dps: int, n: int) -> RawRule:
    """Gauss-Legendre rule on ``[-1, 1]`` with ``n`` nodes, built at ``dps + 20``
    digits and rounded to ``prec`` bits."""
    hi = _dps_context(dps + 20)
    alpha = [hi.mpf(0)] * n
    beta = [hi.mpf(2)] + [hi.mpf(k * k) / (4 * k * k - 1) for k in range(1, n)]
    nodes, weights = _golub_welsch(hi, alpha, beta)
    lo = _prec_context(prec)
    return _raw(lo, nodes), _raw(lo, weights)


@functools.lru_cache(maxsize=32)
def legendre_rule_newton(prec: int, n: int) -> RawRule:
    """Gauss-Legendre rule on ``[-1, 1]`` with ``n`` nodes at ``prec`` bits by Newton's
    method on ``P_n`` (three-term recurrence, vectorised over the nodes): float64 to
    convergence from ``cos(pi (i - 1/4) / (n + 1/2))``, then three steps at ``prec + 20``
    bits (each doubles the digits: 16 -> 128 -> 256+); ``O(n^2)`` operations instead of the
    ``O(n^3)`` of :func:`_legendre_rule`'s eigenvalues (seconds at ``n = 200``)."""
    def legendre(x, one):
        p0, p1 = x * 0 + one, x
        for k in range(2, n + 1):
            p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
        return p1, n * (x * p1 - p0) / (x * x - 1)  # P_n, P_n'

    half = (n + 1) // 2
    x = np.cos(np.pi * (np.arange(1, half + 1) - 0.25) / (n + 0.5))
    for _ in range(8):
        p, dp = legendre(x, 1.0)
        x = x - p / dp
    hi = _prec_context(prec + 20)
    xs = np.array([hi.mpf(float(v)) for v in x], dtype=object)
    for _ in range(max(3, math.ceil(math.log2((prec + 20) / 40)) + 1)):
        p, dp = legendre(xs, hi.mpf(1))
        xs = xs - p / dp
    _, dp = legendre(xs, hi.mpf(1))
    ws = 2 / ((1 - xs * xs) * dp * dp)
    # nodes in increasing order: -x_1 < ... (the cos guesses decrease), then the mirror images
    pos, wpos = list(xs), list(ws)
    if n % 2:
        pos[-1] = hi.mpf(0)  # the middle node of an odd rule is exactly 0
    neg = [-v for v in pos[:half - (n % 2)]]
    nodes = neg + pos[::-1]
    weights = wpos[:half - (n % 2)] + wpos[::-1]
    lo = _prec_context(prec)
    return _raw(lo, nodes), _raw(lo, weights)


@functools.lru_cache(maxsize=8)
def _piecewise_radial_rule(prec: int, dps: int, seg_len: float = 1.0) -> RawRule:
    """Piecewise Gauss-Legendre rule for ``int_0^R F(r) r exp(-r^2/2) dr`` with
    ``exp(-R^2/2) < 10^-(dps+5)``, at ``prec`` bits: slower than
    :func:`_radial_rule` but immune to integrands (like erf) whose growth off
    the real axis spoils Gauss rules built on the Gaussian weight."""
    ctx = _prec_context(prec)
    big_r = int(ctx.ceil(ctx.sqrt(2 * (dps + 5) * ctx.log(10)))) + 1
    n = max(20, dps // 2 + 10)
    tn, tw = _in_context(ctx, _legendre_rule(prec, dps, n))
    nodes, weights = [], []
    for k in range(int(big_r / seg_len)):
        lo, half = ctx.mpf(k) * seg_len, ctx.mpf(seg_len) / 2
        for x, w in zip(tn, tw):
            r = lo + half * (1 + x)
            nodes.append(r)
            weights.append(half * w * r * ctx.exp(-r * r / 2))
    return _raw(ctx, nodes), _raw(ctx, weights)


def _polar(ctx, f, g, a, c, s, radial_rule, n_t: int, smooth: bool):
    pi = ctx.pi
    rn, rw = radial_rule

    def radial(t):
        ct, st = ctx.cos(t), ctx.sin(t)
        alpha_u, alpha_v = a * ct, c * ct + s * st
        return ctx.fsum(wr * f(alpha_u * r) * g(alpha_v * r) for r, wr in zip(rn, rw))

    if smooth:
        return ctx.fsum(radial(2 * pi * k / n_t) for k in range(n_t)) / n_t
    cuts = {ctx.mpf(0), pi / 2, 3 * pi / 2, 2 * pi}
    t_v = ctx.atan2(-c, s)  # c cos t + s sin t = 0
    cuts |= {(t_v + k * pi) % (2 * pi) for k in (0, 1)}
    cuts = sorted(cuts)
    tn, tw = _in_context(ctx, _legendre_rule(ctx.prec, ctx.dps, n_t))
    total = ctx.mpf(0)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi - lo <= 0:
            continue
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        total += half * ctx.fsum(w * radial(mid + half * x) for x, w in zip(tn, tw))
    return total / (2 * pi)


def gaussian_expectation_polar_mp(ctx, f: Callable, g: Callable, k11, k12, k22, *, smooth: bool = False, det=None):
    """``E[f(u) g(v)]`` at the precision of the mpmath context ``ctx`` (the
    numbers and ``f, g`` belong to ``ctx``), for ``f, g`` smooth except at 0
    (see the comment above).

    The angular rule is Gauss-Legendre on the arcs between kink rays or, with
    ``smooth=True`` (no kinks), the trapezoidal rule on the whole circle
    (exponentially convergent for periodic analytic integrands). Each result
    is confirmed by a second evaluation with 1.5x the nodes; when the two
    differ by more than ``10^-(requested dps + 5)`` of the integral's scale, the robust
    piecewise radial rule is used, and if that too fails to settle a
    :class:`~ntk_equiv.errors.QuadratureError` is raised.
    """
    from .precision import GUARD_DIGITS

    prec, dps = ctx.prec, ctx.dps
    if det is None:
        det = k11 * k22 - k12 * k12
    zero = ctx.mpf(0)
    a, c, s = _whiten(k11, k12, det, ctx.sqrt, lambda v: max(v, zero))
    scale = ctx.mpf(1) + abs(k11) + abs(k22)
    # settle to 5 digits beyond what the caller asked for (the rest is guard)
    tol = scale * ctx.mpf(10) ** (-(dps - GUARD_DIGITS + 5))
    n_t = max(64, 4 * dps) if smooth else max(30, int(0.8 * dps))
    n_r = max(40, int(1.2 * dps))
    attempts = [
        (lambda: _radial_rule(prec, dps, n_r), n_t, lambda: _radial_rule(prec, dps, n_r * 3 // 2), n_t * 3 // 2),
        (lambda: _piecewise_radial_rule(prec, dps), 2 * n_t, lambda: _piecewise_radial_rule(prec, dps, 0.75), 3 * n_t),
    ]
    for rule1, nt1, rule2, nt2 in attempts:
        v1 = _polar(ctx, f, g, a, c, s, _in_context(ctx, rule1()), nt1, smooth)
        v2 = _polar(ctx, f, g, a, c, s, _in_context(ctx, rule2()), nt2, smooth)
        if abs(v1 - v2) <= tol:
            return v2
    raise QuadratureError(
        f"2-D Gaussian quadrature did not settle at {dps} digits (last two estimates differ by "
        f"{ctx.nstr(abs(v1 - v2), 3)}); the activation may grow too fast for this variance"
    )


# --------------------------------------------------------------------------- #
# piecewise-linear activations, kinks anywhere: Price's theorem in the angle
# --------------------------------------------------------------------------- #
# Write a piecewise-linear phi as
#     phi(x) = b0 + s0 x + sum_i [d_i (x - kappa_i)_+ + j_i H(x - kappa_i)]
# (slope jumps d_i, value jumps j_i at the kinks kappa_i). With
# sigma1 = sqrt(k11), sigma2 = sqrt(k22), rho = k12 / (sigma1 sigma2) = sin(Theta),
# x_i = kappa_i / sigma1 and y_j = kappa_j / sigma2, Price's theorem
# (d/dk12 E[f(u) g(v)] = E[f'(u) g'(v)], distributional derivatives) and
# Taylor's formula with integral remainder in rho give, for continuous phi
# (all j_i = 0) and phi' = s0 + sum_i d_i H(x - kappa_i):
#     E[phi(u) phi(v)]   = E phi(u) E phi(v) + k12 E phi'(u) E phi'(v)
#                          + sigma1 sigma2 sum_ij d_i d_j (1/2pi) int_0^Theta (sin Theta - sin t) e_ij(t) dt,
#     E[phi'(u) phi'(v)] = E phi'(u) E phi'(v) + sum_ij d_i d_j (1/2pi) int_0^Theta e_ij(t) dt,
# and for a step function (s0 = 0, all d_i = 0)
#     E[phi(u) phi(v)]   = E phi(u) E phi(v) + sum_ij j_i j_j (1/2pi) int_0^Theta e_ij(t) dt,
# where phi'' = sum_i d_i delta(x - kappa_i) makes E[phi''(u) phi''(v)] a sum of
# bivariate normal densities at the kink pairs, and the substitution rho = sin t
# (Sheppard; Drezner & Wesolowsky 1990) turns each density into
#     e_ij(t) = exp(-(x_i^2 - 2 x_i y_j sin t + y_j^2) / (2 cos^2 t))
#             = exp(-(delta^2 + 2 x_i y_j (1 - sin t)) / (2 cos^2 t)),  delta = x_i - y_j.
# The univariate means are closed forms: E phi(u) = b0 + sum_i d_i (sigma1 pdf(x_i)
# - kappa_i Q(x_i)) (+ sum_i j_i Q(x_i)), E phi'(u) = s0 + sum_i d_i Q(x_i), with
# Q = 1 - Phi. Negative rho: e_ij(-t) is e_ij(t) with y -> -y, so the angle
# integrals run over [0, |Theta|] with y_j -> sign(k12) y_j (the first one changes
# sign with k12, the weighted one does not).
#
# Quadrature of the angle integrals. e_ij is analytic except at t = +-pi/2
# (cos t = 0), so on [0, min(Theta, pi/4)] (singularities >= 3 half-widths from
# the centre: Bernstein ellipse parameter up to 3 + sqrt 8) an n-point
# Gauss-Legendre rule converges geometrically. For Theta > pi/4 (rho > 0.707)
# the rest is integrated in tau = cos t over [cos Theta, 1/sqrt 2]
# (dt = dtau / sqrt(1 - tau^2)), where the integrand is
#     exp(-delta^2 / (2 tau^2) - x y / (1 + sqrt(1 - tau^2))) / sqrt(1 - tau^2):
# analytic away from tau = 0 and tau = +-1 except for the factor
# exp(-delta^2 / (2 tau^2)), which rises from 0 to 1 around tau ~ |delta|. The
# tau range is therefore split geometrically at |delta| 2^m (m >= -3), each panel
# [a, 2a] having its nearest singularity (tau = 0) 3 half-widths from its centre
# again; below |delta| / 8 the integrand is < e^-32 of its scale. When |delta|
# is below DELTA_FLOOR the split stops there: replacing exp(-delta^2 / 2tau^2) by
# 1 on [0, DELTA_FLOOR] changes the integral by at most sqrt(pi / 2) DELTA_FLOOR
# times the integrand's bound (<= sqrt 2 for x ~ y, the only case with small delta).

#: Angle at which the angle integrals switch from t to tau = cos t.
PRICE_SWITCH = math.pi / 4
#: Smallest |delta| the geometric tau panels resolve (float64; see the comment above).
PRICE_F64_DELTA_FLOOR = 1e-16
#: Gauss-Legendre nodes (t range, each tau panel) of the two float64 rules whose
#: agreement is checked (measured against an independent route on 150 random cases,
#: correlations to within 1e-15 of +-1: worst 2.3e-14 and 7.5e-16 of the scale;
#: (10, 8) nodes gave 7e-12).
PRICE_F64_NODES = ((12, 10), (16, 12))
#: Entries per vectorised block of the Price route (keeps the temporaries in cache).
PRICE_CHUNK = 1024
#: Agreement demanded of the two float64 rules, relative to the Cauchy-Schwarz scale.
PRICE_F64_TOL = 1e-13


@dataclass(frozen=True)
class PiecewiseLinear:
    """``phi(x) = b0 + s0 x + sum_i [d_i (x - kappa_i)_+ + j_i H(x - kappa_i)]``
    with exact (sympy) coefficients; ``kinks`` = ``kappa_i`` in increasing order."""

    b0: sympy.Expr
    s0: sympy.Expr
    kinks: tuple
    slope_jumps: tuple
    value_jumps: tuple

    @property
    def continuous(self) -> bool:
        return all(j == 0 for j in self.value_jumps)

    @property
    def step(self) -> bool:
        return self.s0 == 0 and all(d == 0 for d in self.slope_jumps)


def _relational_points(cond, x) -> set | None:
    points = set()
    for rel in cond.atoms(sympy.core.relational.Relational):
        sol = sympy.solveset(rel.lhs - rel.rhs, x, sympy.S.Reals)
        if not isinstance(sol, sympy.FiniteSet):
            return None
        points |= set(sol)
    return points


@functools.lru_cache(maxsize=64)
def piecewise_linear_form(expr: sympy.Expr, x: sympy.Symbol) -> PiecewiseLinear | None:
    """``expr`` as a :class:`PiecewiseLinear` (exact), or ``None`` when it is
    not piecewise linear with finitely many kinks (or sympy cannot tell).

    ``Max``, ``Min``, ``Abs``, ``sign``, ``Heaviside`` are rewritten as one
    folded ``Piecewise``; every branch must be a polynomial of degree <= 1 in
    ``x`` and every condition must change at finitely many points (the kinks).
    The line on each interval between kinks is read off ``expr`` at two
    interior points in exact arithmetic.
    """
    try:
        folded = sympy.piecewise_fold(expr.rewrite(sympy.Piecewise))
        branches = folded.args if isinstance(folded, sympy.Piecewise) else ((folded, sympy.true),)
        points: set = set()
        for branch, cond in branches:
            if not branch.is_polynomial(x) or sympy.degree(branch, x) > 1:
                return None
            pts = _relational_points(cond, x) if isinstance(cond, sympy.Basic) else set()
            if pts is None:
                return None
            points |= pts
        if not points or not all(p.is_real for p in points):
            return None
        kinks = sorted(points, key=lambda p: sympy.N(p, 40))
        probes = [(kinks[0] - 2, kinks[0] - 1)]
        probes += [(a + (b - a) / 3, a + 2 * (b - a) / 3) for a, b in zip(kinks[:-1], kinks[1:])]
        probes += [(kinks[-1] + 1, kinks[-1] + 2)]
        lines = []
        for p, q in probes:
            fp, fq = (sympy.nsimplify(expr.subs(x, t)) for t in (p, q))
            slope = sympy.simplify((fq - fp) / (q - p))
            lines.append((sympy.simplify(fp - slope * p), slope))
        d, j, kept = [], [], []
        for k, (kappa, (a0, b0), (a1, b1)) in enumerate(zip(kinks, lines[:-1], lines[1:])):
            dk, jk = sympy.simplify(b1 - b0), sympy.simplify(a1 - a0 + (b1 - b0) * kappa)
            if dk != 0 or jk != 0:
                kept.append(kappa)
                d.append(dk)
                j.append(jk)
        if not kept or any(not v.is_number for v in (*d, *j, *lines[0])):
            return None
        return PiecewiseLinear(lines[0][0], lines[0][1], tuple(kept), tuple(d), tuple(j))
    except (TypeError, ValueError, NotImplementedError, AttributeError, sympy.PolynomialError):
        return None


def _normal_pdf(bk, x):
    return bk.exp(-x * x / 2) / bk.sqrt(2 * bk.pi)


def _normal_sf(bk, x):
    """``Q(x) = 1 - Phi(x) = erfc(x / sqrt 2) / 2`` (no cancellation for large x)."""
    return bk.erfc(x / bk.sqrt(bk.scalar(2))) / 2


def _gl_panels(bk, lo, hi, rule):
    """Nodes ``(..., p, n)`` and weights of Gauss-Legendre ``rule = (t, w)`` on the
    panels ``[lo, hi]`` (arrays ``(..., p)``)."""
    t, w = rule
    half = (hi - lo) / 2
    return (lo + half)[..., None] + half[..., None] * t, half[..., None] * w


def angle_integrals(bk, x, y, theta, r_theta, tau_theta, rules, delta_floor):
    """``(1/2pi) (int_0^Theta e(t) dt, int_0^Theta (sin Theta - sin t) e(t) dt)``
    with ``e(t) = exp(-(x^2 - 2 x y sin t + y^2) / (2 cos^2 t))`` for arrays ``x, y``
    of shape ``(m, p)`` (``p`` kink pairs per entry) and ``Theta`` in ``[0, pi/2]``
    of shape ``(m,)`` (``r_theta = sin Theta``, ``tau_theta = cos Theta``, both
    accurate), by the rules of the comment above: ``rules = (t rule, tau panel
    rule)``, each ``(nodes, weights)`` on ``[-1, 1]``."""
    switch = bk.scalar(PRICE_SWITCH)
    delta = x - y
    xy = x * y
    # t in [0, min(Theta, pi/4)]: the nodes are the entry's, shared by its kink pairs
    top = bk.minimum(theta, switch + 0 * theta)
    t, wt = _gl_panels(bk, 0 * top[:, None], top[:, None], rules[0])
    t, wt = t[:, 0], wt[:, 0]  # (m, n)
    st, ct = bk.sin(t), bk.cos(t)
    # exponent = delta^2 p(t) + x y q(t), p = -1 / (2 cos^2 t), q = -(1 - sin t) / cos^2 t
    p_t = -1 / (2 * ct * ct)
    q_t = 2 * (1 - st) * p_t
    e = bk.exp(delta[:, :, None] ** 2 * p_t[:, None, :] + xy[:, :, None] * q_t[:, None, :])
    one = np.einsum("mpn,mn->mp", e, wt)
    weighted = np.einsum("mpn,mn->mp", e, wt * (r_theta[:, None] - st))
    far = np.flatnonzero(np.asarray(theta > switch, dtype=bool))
    if far.size:
        p = x.shape[1]
        rep = (lambda a: np.repeat(a[far], p))  # noqa: E731
        b1, bs = _tau_part(bk, delta[far].ravel(), xy[far].ravel(), rep(r_theta), rep(tau_theta),
                           bk.cos(switch), rules[1], delta_floor)
        one[far] = one[far] + b1.reshape(far.size, p)
        weighted[far] = weighted[far] + bs.reshape(far.size, p)
    inv = 1 / (2 * bk.pi)
    return one * inv, weighted * inv


def _tau_part(bk, delta, xy, r_theta, tau_theta, tau_star, rule, delta_floor):
    """The ``tau = cos t`` part of :func:`angle_integrals` (``Theta > pi/4``) for
    1-D arrays of kink pairs, grouped by their number of geometric panels."""
    absd = bk.abs(delta)
    # panels split at base 2^k, k >= -3, inside (tau_theta, tau_star), with base = min(|delta|,
    # tau_star), or tau_star when |delta| < delta_floor (treated as 0, see above): the top panel
    # [>= tau_star/2, tau_star] keeps tau = 1 at >= 2.7 half-widths from its centre
    tiny = np.asarray(absd < delta_floor, dtype=bool)
    base = bk.where(tiny, tau_star + 0 * absd, bk.minimum(absd, tau_star + 0 * absd))
    fbase = np.asarray(base, dtype=float)
    with np.errstate(divide="ignore"):
        k_lo = np.maximum(-3, np.floor(np.log2(np.asarray(tau_theta, dtype=float) / fbase)) + 1).astype(int)
    k_hi = np.ceil(np.log2(float(tau_star) / fbase)).astype(int) - 1
    counts = np.maximum(k_hi - k_lo + 1, 0)  # interior edges
    one = np.empty(delta.shape, dtype=delta.dtype)
    weighted = np.empty(delta.shape, dtype=delta.dtype)
    for p in np.unique(counts):
        g = np.flatnonzero(counts == p)
        lo_t, hi_t = tau_theta[g][:, None], tau_star + 0 * tau_theta[g][:, None]
        powers = np.ldexp(1.0, k_lo[g][:, None] + np.arange(p))  # exact in any precision
        pts = bk.minimum(bk.maximum(base[g][:, None] * powers, lo_t), hi_t)
        edges = np.concatenate([lo_t, pts, hi_t], axis=1)
        tau, w = _gl_panels(bk, edges[:, :-1], edges[:, 1:], rule)
        r = bk.sqrt(1 - tau * tau)
        d, q = delta[g][:, None, None], xy[g][:, None, None]
        e = bk.exp(-(d * d) / (2 * tau * tau) - q / (1 + r)) / r
        rt, tt = r_theta[g][:, None, None], tau_theta[g][:, None, None]
        one[g] = np.sum(w * e, axis=(1, 2))
        # sin Theta - sin t = sqrt(1 - tt^2) - sqrt(1 - tau^2), without cancellation
        weighted[g] = np.sum(w * (tau * tau - tt * tt) / (rt + r) * e, axis=(1, 2))
    return one, weighted


def _univariate(bk, form: PiecewiseLinear, sigma, kinks, xs):
    """``(E phi(u), E phi'(u))`` for ``u ~ N(0, sigma^2)``, ``xs[i] = kappa_i / sigma``."""
    mean = bk.scalar(form.b0) + 0 * sigma
    mean_d = bk.scalar(form.s0) + 0 * sigma
    for kappa, x, d, j in zip(kinks, xs, form.slope_jumps, form.value_jumps):
        q = _normal_sf(bk, x)
        if d != 0:
            mean = mean + bk.scalar(d) * (sigma * _normal_pdf(bk, x) - kappa * q)
            mean_d = mean_d + bk.scalar(d) * q
        if j != 0:
            mean = mean + bk.scalar(j) * q
    return mean, mean_d


def piecewise_linear_duals(bk, form: PiecewiseLinear, k11, k12, k22, det, rules, delta_floor) -> tuple:
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for a continuous piecewise-linear
    or a step ``phi`` (:class:`PiecewiseLinear`), elementwise over 1-D arrays with
    ``k11, k22 > 0``, by the Price formulas of the comment above (``phi'`` almost
    everywhere: 0 for a step function)."""
    if not (form.continuous or form.step):
        raise ValueError("piecewise_linear_duals needs a continuous or a step function")
    sigma1, sigma2 = bk.sqrt(k11), bk.sqrt(k22)
    sdet = bk.sqrt(bk.maximum0(det))
    root = bk.sqrt(k12 * k12 + bk.maximum0(det))  # sqrt(k11 k22), from the accurate det
    ak = bk.abs(k12)
    theta, r_theta, tau_theta = bk.atan2(ak, sdet), ak / root, sdet / root
    sign = bk.where(np.asarray(k12 < 0, dtype=bool), -1 + 0 * k12, 1 + 0 * k12)
    kinks = [bk.scalar(kappa) for kappa in form.kinks]
    xs = [kappa / sigma1 for kappa in kinks]
    ys = [kappa / sigma2 for kappa in kinks]
    mu1, mu1_d = _univariate(bk, form, sigma1, kinks, xs)
    mu2, mu2_d = _univariate(bk, form, sigma2, kinks, ys)
    weights = [bk.scalar(d if form.continuous else j) for d, j in zip(form.slope_jumps, form.value_jumps)]
    m, n_k = k12.size, len(kinks)
    x = np.repeat(np.stack([np.broadcast_to(v, (m,)) for v in xs], axis=1)[:, :, None], n_k, axis=2)
    y = np.repeat(np.stack([np.broadcast_to(v, (m,)) for v in ys], axis=1)[:, None, :], n_k, axis=1) * sign[:, None, None]
    x, y = x.reshape(m, -1), y.reshape(m, -1)
    parts = [angle_integrals(bk, x[i:i + PRICE_CHUNK], y[i:i + PRICE_CHUNK], theta[i:i + PRICE_CHUNK],
                             r_theta[i:i + PRICE_CHUNK], tau_theta[i:i + PRICE_CHUNK], rules, delta_floor)
             for i in range(0, m, PRICE_CHUNK)]
    one, weighted = (np.concatenate([part[k] for part in parts]) for k in (0, 1))
    ww = np.array([[wi * wj for wj in weights] for wi in weights])
    one = np.sum(one.reshape(m, n_k, n_k) * ww, axis=(1, 2)) * sign
    if form.step:
        return mu1 * mu2 + one, 0 * k12
    weighted = np.sum(weighted.reshape(m, n_k, n_k) * ww, axis=(1, 2))
    v = mu1 * mu2 + k12 * (mu1_d * mu2_d) + sigma1 * sigma2 * weighted
    return v, mu1_d * mu2_d + one


#: Gauss-Legendre nodes per digit asked for, and the minimum, of the mpmath rules
#: (both panel types have Bernstein parameter ~5.8: ~1.5 digits per node).
PRICE_MP_NODES_PER_DIGIT = 0.9
PRICE_MP_MIN_NODES = 24


def _price_rules_f64(n_t: int, n_tau: int):
    return _gl_rule(n_t), _gl_rule(n_tau)


def _price_rules_mp(ctx, n_t: int, n_tau: int):
    def rule(n):
        t, w = _in_context(ctx, _legendre_rule(ctx.prec, ctx.dps, n))
        return np.array(t, dtype=object), np.array(w, dtype=object)
    return rule(n_t), rule(n_tau)


def price_expectations(bk, expr: sympy.Expr, x: sympy.Symbol, k11, k12, k22, det):
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for a piecewise-linear ``phi = expr``
    (continuous, or a step function) by :func:`piecewise_linear_duals`, elementwise
    over broadcast arrays, at ``bk``'s precision; ``None`` when ``expr`` is not of that
    kind or a variance is 0 (the caller's other rules apply).

    Two rules of different sizes (float64: :data:`PRICE_F64_NODES`; mpmath: ~0.9 and
    1.35 nodes per digit) are computed, and the result is accepted only where they agree
    within the tolerance (float64 :data:`PRICE_F64_TOL`, mpmath ``10^-(dps + 5)``)
    relative to the Cauchy-Schwarz scale ``sqrt(V(k11, k11, k11) V(k22, k22, k22))``;
    any entry that does not settle raises :class:`~ntk_equiv.errors.QuadratureError`.
    """
    form = piecewise_linear_form(expr, x)
    if form is None or not (form.continuous or form.step):
        return None
    k11, k12, k22, det = np.broadcast_arrays(*(np.asarray(k) for k in (k11, k12, k22, det)))
    shape = k11.shape
    k11, k12, k22, det = (np.ravel(k) for k in (k11, k12, k22, det))
    if k11.size == 0:
        return np.zeros(shape), np.zeros(shape)
    if not (np.all(np.asarray(k11 > 0, dtype=bool)) and np.all(np.asarray(k22 > 0, dtype=bool))):
        return None
    if bk.vectorised:
        sizes, floor, tol = PRICE_F64_NODES, PRICE_F64_DELTA_FLOOR, PRICE_F64_TOL
        make = lambda n: _price_rules_f64(*n)  # noqa: E731
    else:
        from .precision import GUARD_DIGITS

        ctx = bk.ctx
        n = max(PRICE_MP_MIN_NODES, math.ceil(PRICE_MP_NODES_PER_DIGIT * ctx.dps))
        sizes = ((n, n), (3 * n // 2, 3 * n // 2))
        floor = 10.0 ** -(ctx.dps + 5)
        tol = ctx.mpf(10) ** -(ctx.dps - GUARD_DIGITS + 5)
        make = lambda nn: _price_rules_mp(ctx, *nn)  # noqa: E731
    results = [piecewise_linear_duals(bk, form, k11, k12, k22, det, make(nn), floor) for nn in sizes]
    scales = _diagonal_scales(bk, form, k11, k22, make(sizes[-1]), floor)
    for (a, b), scale in zip(zip(*results), scales):
        bad = np.asarray(bk.abs(a - b) > tol * scale, dtype=bool)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise QuadratureError(
                f"piecewise-linear dual map did not settle at k11={float(k11[i]):.6g}, k12={float(k12[i]):.6g}, "
                f"k22={float(k22[i]):.6g} (two rules differ by {float(bk.abs(a[i] - b[i])):.3g})")
    v, vd = results[1]
    return np.reshape(v, shape), np.reshape(vd, shape)


def _diagonal_scales(bk, form, k11, k22, rules, floor):
    """``sqrt(V(k11, k11, k11) V(k22, k22, k22))`` and the same for ``Vdot``: the
    Cauchy-Schwarz scales of each entry, from the distinct variances only."""
    variances = list(dict.fromkeys([*k11, *k22]))
    var = np.array(variances)
    on_diag = piecewise_linear_duals(bk, form, var, var, var, 0 * var, rules, floor)
    where = {v: i for i, v in enumerate(variances)}
    i1 = np.array([where[v] for v in k11])
    i2 = np.array([where[v] for v in k22])
    return [bk.sqrt(bk.abs(d[i1] * d[i2])) for d in on_diag]


# --------------------------------------------------------------------------- #
# float64, kinks anywhere, |rho| near 1: the 2-D rule along the kink lines
# --------------------------------------------------------------------------- #
# With u = a z1 and v = sgn b (r z1 + s z2) (r = |rho|, sgn = sign rho,
# s = sqrt(det) / (a b) without cancellation), the kinks of f(u) are the lines
# z1 = kappa / a and those of f(v) the lines z1 = (sgn kappa / b - s z2) / r:
# for r near 1 both families are nearly parallel to the z2 axis. So z2 is the
# outer variable and z1 the inner one: the inner integrand is analytic between
# the breakpoints kappa / a and (sgn kappa' / b - s z2) / r, which move slowly
# with z2 (speed s / r), and the outer integrand is analytic between the points
# where two breakpoints cross, z2 = (sgn kappa' / b - r kappa / a) / s: there the
# outer range is split too (the pieces extend analytically past their ends, so
# Gauss-Legendre converges geometrically on every panel; no narrow feature of
# width s appears, unlike the order z1-outer of gaussian_expectation_f64). Both
# ranges are [-L, L], L = ALIGNED_HALF_WIDTH (the Gaussian mass beyond is
# < 2e-22), in ALIGNED_SEGMENTS equal panels plus the breakpoints, with m
# Gauss-Legendre nodes each. Two rules (m in ALIGNED_NODES) must agree within
# ALIGNED_TOL of the Cauchy-Schwarz scale, else QuadratureError.

#: Truncation of both ranges of the aligned rule (Gaussian mass beyond: < 2e-22).
ALIGNED_HALF_WIDTH = 10.0
#: Equal panels of [-L, L] per unit of the largest scale of the integrand in that
#: variable (inner z1: max(1, a, b); outer z2: max(1, b s)), before the breakpoints
#: are added: 6 x 16 nodes integrate the standard normal density and its products with
#: cos(3 z) and z^4 to ~1e-15 (6 x 12: 2e-10 and 3e-12); erf(Max(x, -1)) and its
#: derivative at std a <= 3, 20 panels of 16 nodes: 6e-15 (16 panels: 1e-12; measured
#: against 32 nodes).
ALIGNED_SEGMENTS = 6
#: Gauss-Legendre nodes per panel of the checking and the accepted rule.
ALIGNED_NODES = (16, 20)
#: Agreement demanded of the two rules, relative to the Cauchy-Schwarz scale: an order
#: below the 1e-11 contract (the accepted rule, with 4 more nodes per panel of a
#: geometrically converging rule, errs by much less than the checking one).
ALIGNED_TOL = 1e-12
#: Pairs per vectorised block.
ALIGNED_CHUNK = 16
#: Multiples of the equal panels tried in turn for the pairs the two rules do not settle.
ALIGNED_REFINE = (1, 2, 4)


def _aligned_rule(h: Callable, kinks, a, b, r, sgn, s, n_nodes: int, refine: int = 1):
    """``[E[h_j(u) h_j(v)] for each output of h]`` for 1-D arrays of pairs by the rule
    of the comment above with ``n_nodes`` Gauss-Legendre nodes per panel, ``refine``
    times the equal panels of :data:`ALIGNED_SEGMENTS`."""
    big_l = ALIGNED_HALF_WIDTH
    seg_outer = refine * ALIGNED_SEGMENTS * math.ceil(max(1.0, float(np.max(b * s))))
    seg_inner = refine * ALIGNED_SEGMENTS * math.ceil(max(1.0, float(np.max(a)), float(np.max(b))))
    kinks = [float(k) for k in kinks]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = [np.where(s > 0, (sgn * kg / b - r * kf / a) / np.where(s > 0, s, 1.0), big_l)
                 for kf in kinks for kg in kinks]
    z2, w2 = _panel_nodes(cross, a.shape, n_nodes, seg_outer)  # (m, n2)
    fixed = [np.broadcast_to((kf / a)[:, None], z2.shape) for kf in kinks]
    moving = [(sgn[:, None] * kg / b[:, None] - s[:, None] * z2) / r[:, None] for kg in kinks]
    z1, w1 = _panel_nodes(fixed + moving, z2.shape, n_nodes, seg_inner)  # (m, n2, n1)
    u = a[:, None, None] * z1
    v = (sgn * b)[:, None, None] * (r[:, None, None] * z1 + s[:, None, None] * z2[..., None])
    weight = w2[..., None] * w1
    return [np.sum(weight * hu * hv, axis=(1, 2)) for hu, hv in zip(h(u), h(v))]


def _panel_nodes(breaks: list, shape, n_nodes: int, segments: int):
    """Nodes and weights (the standard normal density included) of Gauss-Legendre with
    ``n_nodes`` per panel on ``[-L, L]`` (L = :data:`ALIGNED_HALF_WIDTH`) split into
    ``segments`` equal panels and at ``breaks`` (arrays of ``shape``)."""
    big_l = ALIGNED_HALF_WIDTH
    grid = np.linspace(-big_l, big_l, segments + 1)
    pts = [np.broadcast_to(g, shape) for g in grid]
    pts += [np.clip(np.nan_to_num(np.broadcast_to(b, shape), nan=big_l), -big_l, big_l) for b in breaks]
    edges = np.sort(np.stack(pts, axis=-1), axis=-1)
    t, w = _gl_rule(n_nodes)
    lo, hi = edges[..., :-1], edges[..., 1:]
    half = (hi - lo) / 2
    nodes = ((lo + half)[..., None] + half[..., None] * t).reshape(*shape, -1)
    weights = (half[..., None] * w).reshape(*shape, -1) * np.exp(-0.5 * nodes**2) / math.sqrt(2 * math.pi)
    return nodes, weights


def aligned_expectations_f64(h: Callable, kinks, k11, k12, k22, det, scale) -> list:
    """``[E[h_j(u) h_j(v)] for each output h_j of h]`` for 1-D arrays of pairs with
    ``k11, k22 > 0`` (``det = k11 k22 - k12^2``, accurate; ``scale[j]`` the squared
    Cauchy-Schwarz scales ``E[h_j(u)^2] E[h_j(v)^2]``), by the aligned rule of the
    comment above: the larger rule of :data:`ALIGNED_NODES`, accepted where the two agree
    within :data:`ALIGNED_TOL` of ``sqrt(scale)``, else
    :class:`~ntk_equiv.errors.QuadratureError`."""
    k11, k12, k22, det = (np.asarray(k, dtype=float).ravel() for k in (k11, k12, k22, det))
    a, b = np.sqrt(k11), np.sqrt(k22)
    r = np.minimum(np.abs(k12) / (a * b), 1.0)
    sgn = np.where(k12 < 0, -1.0, 1.0)
    s = np.sqrt(np.maximum(det, 0.0)) / (a * b)
    out = None
    order = np.argsort(np.maximum(a, b), kind="stable")  # chunks of similar scale share their panels
    for start in range(0, k11.size, ALIGNED_CHUNK):
        sl = order[start:start + ALIGNED_CHUNK]
        for refine in ALIGNED_REFINE:
            args = (a[sl], b[sl], r[sl], sgn[sl], s[sl])
            low, high = (_aligned_rule(h, kinks, *args, n, refine) for n in ALIGNED_NODES)
            if out is None:
                out = [np.empty(k11.size) for _ in high]
            ok = np.ones(sl.size, dtype=bool)
            for j, (x, y) in enumerate(zip(low, high)):
                ok &= np.abs(x - y) <= ALIGNED_TOL * np.sqrt(np.asarray(scale[j], dtype=float).ravel()[sl])
            for o, y in zip(out, high):
                o[sl[ok]] = y[ok]
            worst = int(np.argmax(~ok))
            sl = sl[~ok]
            if sl.size == 0:
                break
        else:
            i = sl[0]
            raise QuadratureError(
                f"the 2-D rule did not settle at k11={k11[i]:.6g}, k12={k12[i]:.6g}, k22={k22[i]:.6g} "
                f"(with {ALIGNED_REFINE[-1]} times its panels, two rules differ by "
                f"{max(abs(x - y)[worst] for x, y in zip(low, high)):.3g})")
    return out if out is not None else []
