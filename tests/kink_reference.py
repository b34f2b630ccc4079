"""Hand-derived reference for the dual maps of piecewise-linear activations (no code of
the library is used): see the derivation in ``test_kink_references``'s docstring.

``reference(name, k11, k12, k22)`` is ``(E[f(u) f(v)], E[f'(u) f'(v)])`` at 34 digits for
the activations of :data:`PIECES`; ``bvn_upper`` is the bivariate normal orthant
probability by its definition (tanh-sinh in a context of this module).
"""
from __future__ import annotations

import functools

import mpmath

REF = mpmath.MPContext()
REF.dps = 34

#: name -> (kinks, [(alpha, beta) of alpha + beta x on each interval, left to right]), by hand
PIECES = {
    "relu6": ((0, 6), [(0, 0), (0, 1), (6, 0)]),
    "hard_tanh": ((-1, 1), [(-1, 0), (0, 1), (1, 0)]),
    "Max(x - 1/2, 0)": ((REF.mpf(1) / 2,), [(0, 0), (-REF.mpf(1) / 2, 1)]),
}


def bvn_upper(h, k, rho, s):
    """``L(h, k) = P(x > h, y > k)`` for finite ``h, k`` from its definition (``s = sqrt(1 - rho^2)``)."""
    pts = [h]
    if rho != 0 and abs(k / rho) < 40:  # beyond 40, phi(x) < 1e-347: no step in range
        # the integrand steps at x = k / rho over a width s / |rho|: split there (Q(16) ~ 1e-58)
        pts += [k / rho + o * s / abs(rho) for o in (-16, -8, -3, 0, 3, 8, 16) if k / rho + o * s / abs(rho) > h]
    return REF.quad(lambda x: REF.npdf(x) * REF.ncdf(-(k - rho * x) / s), [*sorted(set(pts)), REF.inf])


def owen_t(h, a):
    return REF.quad(lambda x: REF.exp(-h * h * (1 + x * x) / 2) / (1 + x * x), [0, a]) / (2 * REF.pi)


def _orthant(h, k, rho, s):
    """``(M_00, M_10, M_01, M_11)`` of the module docstring, ``h, k`` finite or ``+-inf``."""
    inf = REF.inf
    if h == inf or k == inf:
        return (0, 0, 0, 0)
    if h == -inf and k == -inf:
        return (1, 0, 0, rho)
    if h == -inf:
        q = REF.ncdf(-k)
        return (q, rho * REF.npdf(k), REF.npdf(k), rho * (q + k * REF.npdf(k)))
    if k == -inf:
        q = REF.ncdf(-h)
        return (q, REF.npdf(h), rho * REF.npdf(h), rho * (q + h * REF.npdf(h)))
    if s == 0:  # y = x: the diagonal, for the Cauchy-Schwarz scales
        m = max(h, k)
        return (REF.ncdf(-m), REF.npdf(m), REF.npdf(m), REF.ncdf(-m) + m * REF.npdf(m))
    big_h, big_k = (h - rho * k) / s, (k - rho * h) / s
    qh, qk = REF.ncdf(-big_h), REF.ncdf(-big_k)
    ph, pk = REF.npdf(h), REF.npdf(k)
    big_l = bvn_upper(h, k, rho, s)
    return (big_l, ph * qk + rho * pk * qh, pk * qh + rho * ph * qk,
            rho * big_l + rho * h * ph * qk + rho * k * pk * qh + s * pk * REF.npdf(big_h))


@functools.cache
def reference(name: str, k11: float, k12: float, k22: float) -> tuple:
    """``(E[f(u) f(v)], E[f'(u) f'(v)])`` at 34 digits by the rectangle sums above."""
    kinks, lines = PIECES[name]
    k11, k12, k22 = REF.mpf(k11), REF.mpf(k12), REF.mpf(k22)
    s1, s2 = REF.sqrt(k11), REF.sqrt(k22)
    # s from the determinant, exact for float inputs (1 - rho^2 would lose the digits of 1 - |rho|)
    rho, s = k12 / REF.sqrt(k11 * k22), REF.sqrt((k11 * k22 - k12 * k12) / (k11 * k22))
    edges = [-REF.inf, *(REF.mpf(kappa) for kappa in kinks), REF.inf]
    hs, ks = [e / s1 for e in edges], [e / s2 for e in edges]
    corner = {(i, j): _orthant(hs[i], ks[j], rho, s) for i in range(len(edges)) for j in range(len(edges))}
    value = deriv = REF.mpf(0)
    for i, (al, be) in enumerate(lines):
        for j, (ga, de) in enumerate(lines):
            m = [corner[i, j][t] - corner[i + 1, j][t] - corner[i, j + 1][t] + corner[i + 1, j + 1][t]
                 for t in range(4)]
            value += al * ga * m[0] + be * ga * s1 * m[1] + al * de * s2 * m[2] + be * de * s1 * s2 * m[3]
            deriv += be * de * m[0]
    return value, deriv


def scales(name, k11, k22):
    return [REF.sqrt(abs(a * b)) for a, b in zip(reference(name, k11, k11, k11), reference(name, k22, k22, k22))]


