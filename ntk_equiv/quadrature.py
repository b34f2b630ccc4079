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
from typing import Callable, Sequence

import mpmath
import numpy as np

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

    def psi(z1):
        if s == 0:
            return g(c * z1)
        pts = finite([(kappa - c * z1) / s for kappa in kinks_g])
        return ctx.quad(lambda z2: g(c * z1 + s * z2) * ctx.npdf(z2), [-inf, *pts, inf])

    pts1 = [kappa / a for kappa in kinks_f] + ([kappa / c for kappa in kinks_g] if c != 0 else [])
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
