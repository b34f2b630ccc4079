"""Tests that make the default run fail when a sign or constant of a kink rule changes
(issue 16, "Done when"; ``benchmarks/mutation_quadrature.py`` lists the mutants and the
equivalent ones with their reasons). Each test names the constants it pins down; each is
cheap (scripted stand-ins or one small quadrature), and each tolerance is the rule's stated
contract, not a measured deviation.
"""
from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
from kink_reference import PIECES, REF, reference

from ntk_equiv import quadrature


# --------------------------------------------------------------------------- #
# the Cartesian kinked rule (float64)
# --------------------------------------------------------------------------- #
def _gauss_closed(k11, k12, k22):
    """E[exp(-u^2) exp(-v^2)] = 1 / sqrt((1 + 2 k11)(1 + 2 k22) - 4 k12^2) (a Gaussian integral)."""
    return 1 / math.sqrt((1 + 2 * k11) * (1 + 2 * k22) - 4 * k12 * k12)


@pytest.mark.parametrize("rho", [0.5, 0.99])
def test_cartesian_rule_resolves_narrow_features(rho):
    # exp(-x^2) at pre-activation std 3: a feature 1/3 wide in the whitened variable, the width the
    # rule's 16 segments x 24 nodes on [-12, 12] are documented to resolve (F64_SEGMENTS); the
    # contract is 1e-12 of the Cauchy-Schwarz scale. Halving the segments or the nodes, or
    # doubling the half-width (wider segments), leaves errors of 1e-11 .. 1e-8 here.
    k = 9.0
    f = lambda x: np.exp(-x * x)
    got = float(quadrature.gaussian_expectation_f64(f, f, [], [], k, rho * k, k))
    assert abs(got - _gauss_closed(k, rho * k, k)) <= 1e-12 * _gauss_closed(k, k, k)


def _pl(name):
    kinks, lines = PIECES[name]
    ks = np.array([float(v) for v in kinks])
    al = np.array([float(a) for a, _ in lines])
    be = np.array([float(b) for _, b in lines])

    def f(t):
        i = np.searchsorted(ks, t)
        return al[i] + be[i] * t
    return [float(v) for v in kinks], f


@pytest.mark.parametrize("k11,k12,k22", [(1.0, 1.0, 1.5), (4.0, -2.0, 1.1)])
def test_cartesian_rule_splits_at_kinks_when_a_scale_is_one(k11, k12, k22):
    # a = sqrt(k11) = 1 and c = k12 / a = 1, or c = -1: the breakpoints kappa / a and kappa / c must
    # not be dropped (``breakpoints`` drops only scale == 0); a kink inside a Gauss-Legendre panel
    # costs ~1e-5. det = k11 k22 - k12^2 < 1 (0.5, 0.4): its floor at 0 is seen. Reference: the hand-derived orthant sums (tests/kink_reference.py); the
    # contract is 1e-12 of the Cauchy-Schwarz scale.
    kinks, f = _pl("hard_tanh")
    got = float(quadrature.gaussian_expectation_f64(f, f, kinks, kinks, k11, k12, k22))
    scale = math.sqrt(float(reference("hard_tanh", k11, k11, k11)[0] * reference("hard_tanh", k22, k22, k22)[0]))
    assert abs(got - float(reference("hard_tanh", k11, k12, k22)[0])) <= 1e-12 * scale


# --------------------------------------------------------------------------- #
# the Cartesian rule at high precision: its breakpoints and integrands, with mpmath's
# tanh-sinh replaced by a stand-in that is exact only where the breakpoints are right
# --------------------------------------------------------------------------- #
class PanelContext:
    """An mpmath context whose ``quad(f, points)`` is 10-point Gauss-Legendre on panels at
    most 2.5 wide between the given points (ends clipped to +-10: Gaussian mass beyond
    < 1e-22). On a smooth integrand ``p(z) N(z)`` a panel errs by about
    ``(h/2)^20 max|F^(20)| / 20! <= 1.25^20 sqrt(20!) / 20! ~ 6e-8`` of its scale (Hermite
    functions are bounded by ``sqrt(k!)``); a kink inside a panel errs by ``~h^2 / 100``:
    the tolerance 1e-5 tells the two apart."""

    def __init__(self, ctx):
        self._ctx = ctx
        t, w = np.polynomial.legendre.leggauss(10)
        self._tw = [(ctx.mpf(a), ctx.mpf(b)) for a, b in zip(t, w)]

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def quad(self, f, points):
        ctx, cut = self._ctx, self._ctx.mpf(10)
        pts = [max(min(p, cut), -cut) for p in points]
        total = ctx.mpf(0)
        for lo, hi in itertools.pairwise(pts):
            m = math.ceil(float(hi - lo) / 2.5) if hi > lo else 0
            for i in range(m):
                half = (hi - lo) / (2 * m)
                mid = lo + (2 * i + 1) * half
                total += half * ctx.fsum(w * f(mid + half * t) for t, w in self._tw)
        return total


@pytest.mark.parametrize("k11,k12,k22", [(4.0, 2.0, 1.1), (2.0, -1.0, 1.5)])
def test_mp_cartesian_rule_breakpoints(k11, k12, k22):
    # gaussian_expectation_mp's breakpoints (kappa / a, kappa / c; (kappa - c z1) / s inside) and
    # its whitening (a, c, s from k11, k12, det): with the stand-in quadrature above the result
    # is right to ~1e-7 only if every kink sits on a breakpoint. (4, 2, 1.1): c = 1 exactly with
    # kappa / a != kappa / c, det = 0.4 < 1; (2, -1, 1.5): s = 1 exactly, c < 0: the tests c != 0,
    # s == 0 and the floor of det at 0 must not fire at 1
    ctx = mpmath.MPContext()
    ctx.dps = 15
    one = ctx.mpf(1)

    def f(x):
        return -one if x < -1 else (one if x > 1 else x)
    kinks = [-one, one]
    got = quadrature.gaussian_expectation_mp(PanelContext(ctx), f, f, kinks, kinks, *(ctx.mpf(v) for v in (k11, k12, k22)))
    assert abs(REF.mpf(got) - reference("hard_tanh", k11, k12, k22)[0]) <= 1e-5


@pytest.mark.slow
def test_mp_cartesian_rule_near_correlation_one():
    # was 0.2 off (tanh-sinh on [(kappa - c z1) / s, inf), a half-line whose end is ~1/s from the
    # Gaussian's mass, missed it): 0 is now a breakpoint of both integrals
    # x Heaviside(x - 1) (a jump: not for the Price route), k11 = k22 = 2, rho = 1 - 1e-3, at 10 digits;
    # the hand-derived reference is exact to 30 digits: the rule must be right to its 10 digits or refuse
    ctx = mpmath.MPContext()
    ctx.dps = 10
    PIECES["x*Heaviside(x - 1)"] = ((1,), [(0, 0), (0, 1)])
    k11, k12, k22 = 2.0, 2.0 * (1 - 1e-3), 2.0
    got = quadrature.gaussian_expectation_mp(ctx, lambda x: x if x > 1 else ctx.mpf(0), lambda x: x if x > 1 else ctx.mpf(0),
                                             [ctx.mpf(1)], [ctx.mpf(1)], *(ctx.mpf(v) for v in (k11, k12, k22)))
    ref = reference("x*Heaviside(x - 1)", k11, k12, k22)[0]
    assert abs(REF.mpf(got) - ref) <= 1e-8 * ref


# --------------------------------------------------------------------------- #
# the float64 polar rule: its acceptance tolerance and the order of its levels
# --------------------------------------------------------------------------- #
def _scripted_levels(monkeypatch, values):
    """The polar rule of level ``i`` returns ``values[i]`` (magnitude 1) for every entry."""
    levels = {lvl: i for i, lvl in enumerate(quadrature.POLAR_F64_LEVELS)}

    def fake(h, sigma1, sigma2, phi, phi_c, n_r, n_t):
        return [(np.full(sigma1.size, values[levels[(n_r, n_t)]]), np.ones(sigma1.size))]

    monkeypatch.setattr(quadrature, "_polar_rule_blocked", fake)
    (v,), unsettled = quadrature.polar_expectations_f64(lambda x: (x,), np.ones(2), np.zeros(2), np.ones(2))
    return v, unsettled


@pytest.mark.parametrize("factor,settles_at", [(0.95, 1), (1.05, 2)])
def test_polar_f64_tolerance_is_the_stated_one(monkeypatch, factor, settles_at):
    # POLAR_F64_TOL = 1e-13 of E|h(u) h(v)| (its documented value, written here): levels 0 and 1
    # differ by factor * 1e-13; just inside, level 1's value is accepted; just outside, the next
    # pair (levels 1 and 2, 0.5e-13 apart) settles with level 2's value
    tol = 1e-13
    values = [1.0, 1.0 + factor * tol, 1.0 + (factor + 0.5) * tol] + [5.0] * (len(quadrature.POLAR_F64_LEVELS) - 3)
    v, unsettled = _scripted_levels(monkeypatch, values)
    assert not unsettled.any() and np.all(v == values[settles_at])


def test_polar_f64_compares_consecutive_levels_from_the_first(monkeypatch):
    # levels 0 and 1 agree: their value (level 1's) is returned, not a later level's
    values = [2.0, 2.0] + [3.0 + i for i in range(len(quadrature.POLAR_F64_LEVELS) - 2)]
    v, unsettled = _scripted_levels(monkeypatch, values)
    assert not unsettled.any() and np.all(v == 2.0)


# --------------------------------------------------------------------------- #
# Gauss-Legendre by Newton (the split route's panels)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n", [21, 22])  # odd, and even with n % 4 != 0
def test_newton_legendre_rule_is_exact_to_its_precision(n):
    # the n-point rule integrates x^k exactly on [-1, 1] for k < 2n: sum w x^k = 2 / (k + 1) (k even),
    # 0 (k odd). Rounded to prec bits, nodes and weights err by 2^-prec each, so a moment errs by at
    # most ~ n (k + 1) 2^-prec < 2^-(prec - 11) here; fewer working bits than prec (or too few Newton
    # steps) leave errors 2^20 times larger
    prec = 120
    ctx = mpmath.MPContext()
    ctx.prec = prec + 60
    nodes, weights = (np.array([ctx.make_mpf(v) for v in part], dtype=object)
                      for part in quadrature.legendre_rule_newton(prec, n))
    assert len(nodes) == n and all(a < b for a, b in itertools.pairwise(nodes))
    for k in range(2 * n):
        exact = ctx.mpf(2) / (k + 1) if k % 2 == 0 else 0
        assert abs(ctx.fsum(w * x**k for x, w in zip(nodes, weights)) - exact) <= ctx.mpf(2) ** -(prec - 11)
