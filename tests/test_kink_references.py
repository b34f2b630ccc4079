"""Hand-derived references for the dual maps of relu6, hard-tanh and ``Max(x - 1/2, 0)``
(issue 16, "Done when": independent references for the kink rules).

Derivation (no code of the library is used). Standardise ``x = u / sigma1``,
``y = v / sigma2`` (correlation ``rho``, ``s = sqrt(1 - rho^2)``). A piecewise-linear
``f(u) = alpha_k + beta_k u`` on the intervals ``I_k`` between the kinks gives

    E[f(u) f(v)] = sum_{k,l} E[(alpha_k + beta_k u)(alpha_l + beta_l v) 1{u in I_k} 1{v in I_l}],

and each rectangle is an inclusion-exclusion of the four upper orthants at its corners:
with ``M(h, k) = E[(1, x, y, xy) 1{x > h, y > k}]``,

    M_00 = L(h, k) = P(x > h, y > k)      (the bivariate normal CDF of (-x, -y) at (-h, -k)),
    M_10 = phi(h) Q(K) + rho phi(k) Q(H),  M_01 = phi(k) Q(H) + rho phi(h) Q(K),
    M_11 = rho L + rho h phi(h) Q(K) + rho k phi(k) Q(H) + s phi(k) phi(H),

``H = (h - rho k) / s``, ``K = (k - rho h) / s``, ``Q = 1 - Phi``: integrate ``x phi(x)`` and
``x^2 phi(x)`` by parts against ``Q((k - rho x) / s) = P(y > k | x)`` and use
``phi(x) phi((k - rho x) / s) = phi(k) phi((x - rho k) / s)``; at ``h = -inf``
(resp. ``k``) the terms with ``phi(h)`` vanish and ``L = Q(k)``. ``L`` itself is computed
from its definition ``L = int_h^inf phi(x) Q((k - rho x) / s) dx`` by mpmath's tanh-sinh
at 34 digits in a context of this test (split at ``x = k / rho``, where the integrand
steps when ``|rho| ~ 1``), and checked against Owen's ``T`` function on a few corners.
The derivative map is the same sum for the step function ``f'`` (``alpha_k = beta_k``,
``beta_k = 0``).

Tolerances (not measured deviations): float64 results are held to ``1e-13`` of the
Cauchy-Schwarz scale ``sqrt(V(k11, k11, k11) V(k22, k22, k22))``, the library's stated
float64 accuracy (the Price route accepts a value when two rules agree to
``PRICE_F64_TOL = 1e-13`` of that scale; rounding of its ~10^2-term sums is ~1e-14);
``dps=30`` results to ``10^-28`` of the scale (the backend promises ``dps`` digits; 2 for
the conversions of the inputs); the reference is good to ~10^-35. The cases put the kinks
at ~0.1 and ~5 pre-activation standard deviations and take ``|rho|`` at 0, 1e-3, moderate,
and within 1e-6 and 1e-12 of 1.
"""
from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest

from ntk_equiv import activations
from ntk_equiv.precision import Float64Backend, MpmathBackend

F64 = Float64Backend()
REF = mpmath.MPContext()
REF.dps = 34

#: name -> (kinks, [(alpha, beta) of alpha + beta x on each interval, left to right]), by hand
PIECES = {
    "relu6": ((0, 6), [(0, 0), (0, 1), (6, 0)]),
    "hard_tanh": ((-1, 1), [(-1, 0), (0, 1), (1, 0)]),
    "Max(x - 1/2, 0)": ((REF.mpf(1) / 2,), [(0, 0), (-REF.mpf(1) / 2, 1)]),
}


def _bvn_upper(h, k, rho, s):
    """``L(h, k) = P(x > h, y > k)`` for finite ``h, k`` from its definition (``s = sqrt(1 - rho^2)``)."""
    pts = [h]
    if rho != 0 and abs(k / rho) < 40:  # beyond 40, phi(x) < 1e-347: no step in range
        # the integrand steps at x = k / rho over a width s / |rho|: split there (Q(16) ~ 1e-58)
        pts += [k / rho + o * s / abs(rho) for o in (-16, -8, -3, 0, 3, 8, 16) if k / rho + o * s / abs(rho) > h]
    return REF.quad(lambda x: REF.npdf(x) * REF.ncdf(-(k - rho * x) / s), [*sorted(set(pts)), REF.inf])


def _owen_t(h, a):
    return REF.quad(lambda x: REF.exp(-h * h * (1 + x * x) / 2) / (1 + x * x), [0, a]) / (2 * REF.pi)


def test_bivariate_normal_matches_owens_t():
    # Owen (1956): for h, k > 0, P(x < h, y < k) = (Phi(h) + Phi(k)) / 2 - T(h, a_h) - T(k, a_k),
    # a_h = (k - rho h) / (h s), a_k = (h - rho k) / (k s); P(x > h, y > k) = that - Phi(h) - Phi(k) + 1
    for h, k, rho in ((0.3, 1.7, 0.4), (2.0, 0.5, -0.75), (1.1, 1.3, 0.999999)):
        h, k, rho = REF.mpf(h), REF.mpf(k), REF.mpf(rho)
        s = REF.sqrt(1 - rho * rho)
        lower = (REF.ncdf(h) + REF.ncdf(k)) / 2 - _owen_t(h, (k - rho * h) / (h * s)) - _owen_t(k, (h - rho * k) / (k * s))
        assert abs(_bvn_upper(h, k, rho, s) - (lower - REF.ncdf(h) - REF.ncdf(k) + 1)) < REF.mpf(10) ** -33


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
    big_l = _bvn_upper(h, k, rho, s)
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


def _variance(name: str, sd_of_kink: float) -> float:
    """Pre-activation variance putting the kink farthest from 0 at ``sd_of_kink`` std."""
    far = max(abs(float(kappa)) for kappa in PIECES[name][0])
    return (far / sd_of_kink) ** 2


def cases(name, full=False):
    """(k11, k22, rho): kinks at ~0.1 and ~5 std (and mixed), |rho| at 0, 1e-3, moderate,
    1 - 1e-6 and 1 - 1e-12, both signs (the default run takes the first four; the slow run all)."""
    near, far, unit = _variance(name, 0.1), _variance(name, 5.0), 1.0
    every = [(near, near, 0.0), (far, far, 1e-3), (unit, unit, 1 - 1e-6), (near, near * 1.01, -1 + 1e-12),
             (near, far, -0.6), (unit, near, 0.35), (far, unit, -1 + 1e-6), (far, far * 0.97, 1 - 1e-12)]
    return every if full else every[:4]


def _args(case):
    k11, k22, rho = case
    return k11, rho * math.sqrt(k11 * k22), k22


def _library(bk, name, rows):
    act = activations.activation(name)
    if bk is not F64:  # the backend computes the Cauchy-Schwarz gaps at its own (higher) precision
        return act.dual(bk, *(np.array([bk.ctx.mpf(r[i]) for r in rows], dtype=object) for i in range(3)))
    # float64: the gaps sqrt(k11 k22) -+ k12 accurate, as the kernel state keeps them (from
    # float64 k's alone they would carry the rounding of sqrt(k11 k22): 1e-4 of a gap of 1e-12)
    k11, k12, k22 = (np.array([r[i] for r in rows]) for i in range(3))
    root = [REF.sqrt(REF.mpf(a) * b) for a, _, b in rows]
    lo = np.array([float(q - b) for q, (_, b, _) in zip(root, rows)])
    hi = np.array([float(q + b) for q, (_, b, _) in zip(root, rows)])
    return act.dual_gaps(bk, k11, k12, k22, lo, hi)[:2]


FULL = [pytest.param(False, id="default"), pytest.param(True, id="full", marks=pytest.mark.slow)]


@pytest.mark.parametrize("full", FULL)
@pytest.mark.parametrize("name", sorted(PIECES))
def test_float64_duals_match_hand_derived_reference(name, full):
    rows = [_args(c) for c in cases(name, full)]
    v, vd = _library(F64, name, rows)
    for i, (k11, k12, k22) in enumerate(rows):
        ref = reference(name, k11, k12, k22)
        for got, exact, scale in zip((v[i], vd[i]), ref, scales(name, k11, k22)):
            assert abs(float(got) - float(exact)) <= 1e-13 * float(scale), (name, rows[i])


@pytest.mark.parametrize("full", FULL)
@pytest.mark.parametrize("name", sorted(PIECES))
def test_30_digit_duals_match_hand_derived_reference(name, full):
    bk = MpmathBackend(30)
    rows = [_args(c) for c in (cases(name, full) if full else cases(name)[::3])]
    v, vd = _library(bk, name, rows)
    for i, (k11, k12, k22) in enumerate(rows):
        ref = reference(name, k11, k12, k22)
        for got, exact, scale in zip((v[i], vd[i]), ref, scales(name, k11, k22)):
            assert abs(REF.mpf(got) - exact) <= REF.mpf(10) ** -28 * scale, (name, rows[i])


def test_the_reference_can_fail():
    # a sign changed in one line (relu6's top piece 6 -> -6) or a kink moved by 1e-9 is seen
    good = reference("relu6", *_args((36.0, 36.0, 0.0)))
    PIECES["bad"] = ((0, 6), [(0, 0), (0, 1), (-6, 0)])
    PIECES["moved"] = ((0, 6 + 1e-9), [(0, 0), (0, 1), (6 + 1e-9, 0)])
    try:
        for bad in ("bad", "moved"):
            assert abs(reference(bad, *_args((36.0, 36.0, 0.0)))[0] - good[0]) > 1e-13
    finally:
        del PIECES["bad"], PIECES["moved"]
