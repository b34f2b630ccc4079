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

import math

import numpy as np
import pytest
from kink_reference import PIECES, REF, bvn_upper, owen_t, reference, scales

from ntk_equiv import activations
from ntk_equiv.precision import Float64Backend, MpmathBackend

F64 = Float64Backend()


def test_bivariate_normal_matches_owens_t():
    # Owen (1956): for h, k > 0, P(x < h, y < k) = (Phi(h) + Phi(k)) / 2 - T(h, a_h) - T(k, a_k),
    # a_h = (k - rho h) / (h s), a_k = (h - rho k) / (k s); P(x > h, y > k) = that - Phi(h) - Phi(k) + 1
    for h, k, rho in ((0.3, 1.7, 0.4), (2.0, 0.5, -0.75), (1.1, 1.3, 0.999999)):
        h, k, rho = REF.mpf(h), REF.mpf(k), REF.mpf(rho)
        s = REF.sqrt(1 - rho * rho)
        lower = (REF.ncdf(h) + REF.ncdf(k)) / 2 - owen_t(h, (k - rho * h) / (h * s)) - owen_t(k, (h - rho * k) / (k * s))
        assert abs(bvn_upper(h, k, rho, s) - (lower - REF.ncdf(h) - REF.ncdf(k) + 1)) < REF.mpf(10) ** -33


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
