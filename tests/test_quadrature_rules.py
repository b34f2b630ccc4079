"""The settle-or-refuse logic of the polar rules of :mod:`ntk_equiv.quadrature`
(issue 16.6: a changed sign or constant of a kink rule must fail a default test).

The polar rules accept a value only when two rules of different sizes agree,
move on to larger (or more robust) rules when they do not, and refuse when none
settles. Their accuracy is tested against closed forms in ``test_activations``;
here the rules are replaced by scripted stand-ins, so that each branch of that
logic (accept, fall back, refuse, and the tolerance that decides) is exercised
in milliseconds instead of the minutes a real fallback takes at 20 digits.
"""
from __future__ import annotations

import numpy as np
import pytest

from ntk_equiv import quadrature
from ntk_equiv.errors import QuadratureError
from ntk_equiv.precision import GUARD_DIGITS, Float64Backend, MpmathBackend

F64 = Float64Backend()


def _scripted_polar(monkeypatch, values):
    """Replace the polar mp rule by one returning ``values`` in order; return the call log."""
    calls = []

    def fake(ctx, f, g, a, c, s, rule, n_t, smooth):
        calls.append((len(rule[0]), n_t))
        return values[len(calls) - 1]

    monkeypatch.setattr(quadrature, "_polar", fake)
    return calls


def _mp_tol(ctx, k11, k22, dps):
    return (1 + abs(k11) + abs(k22)) * ctx.mpf(10) ** (-(dps - GUARD_DIGITS + 5))


@pytest.mark.parametrize("smooth", [False, True])
def test_polar_mp_accepts_two_agreeing_rules(monkeypatch, smooth):
    ctx = MpmathBackend(20).ctx
    k11, k12, k22 = ctx.mpf(2), ctx.mpf("0.5"), ctx.mpf(1)
    tol = _mp_tol(ctx, k11, k22, ctx.dps)
    calls = _scripted_polar(monkeypatch, [ctx.mpf(1), 1 + tol / 2])
    got = quadrature.gaussian_expectation_polar_mp(ctx, None, None, k11, k12, k22, smooth=smooth)
    assert got == 1 + tol / 2 and len(calls) == 2
    # the sizes: the second rule has 1.5x the nodes of the first in both directions
    (r1, t1), (r2, t2) = calls
    assert r2 == r1 * 3 // 2 and t2 == t1 * 3 // 2
    assert t1 == (max(64, 4 * ctx.dps) if smooth else max(30, int(0.8 * ctx.dps)))
    assert r1 == max(40, int(1.2 * ctx.dps))


def test_polar_mp_falls_back_when_the_first_rules_disagree(monkeypatch):
    ctx = MpmathBackend(20).ctx
    k11, k12, k22 = ctx.mpf(2), ctx.mpf("0.5"), ctx.mpf(1)
    tol = _mp_tol(ctx, k11, k22, ctx.dps)
    calls = _scripted_polar(monkeypatch, [ctx.mpf(1), 1 + 2 * tol, ctx.mpf(3), 3 + tol / 2])
    got = quadrature.gaussian_expectation_polar_mp(ctx, None, None, k11, k12, k22)
    assert got == 3 + tol / 2 and len(calls) == 4
    n_t = max(30, int(0.8 * ctx.dps))
    # the fallback: the piecewise radial rule, 2x and 3x the angular nodes, a finer second rule
    assert calls[2][1] == 2 * n_t and calls[3][1] == 3 * n_t
    assert calls[2][0] == len(quadrature._piecewise_radial_rule(ctx.prec, ctx.dps)[0])
    assert calls[3][0] == len(quadrature._piecewise_radial_rule(ctx.prec, ctx.dps, 0.75)[0]) > calls[2][0]


def test_polar_mp_refuses_when_no_rule_settles(monkeypatch):
    ctx = MpmathBackend(20).ctx
    k11, k12, k22 = ctx.mpf(2), ctx.mpf("0.5"), ctx.mpf(1)
    tol = _mp_tol(ctx, k11, k22, ctx.dps)
    _scripted_polar(monkeypatch, [ctx.mpf(1), 1 + 2 * tol, ctx.mpf(1), 1 + 2 * tol])
    with pytest.raises(QuadratureError, match="did not settle"):
        quadrature.gaussian_expectation_polar_mp(ctx, None, None, k11, k12, k22)


def test_piecewise_radial_rule_reaches_the_gaussian_tail():
    # the robust radial rule must cover [0, R] with exp(-R^2/2) < 10^-(dps+5) and integrate
    # int_0^inf r exp(-r^2/2) dr = 1 and int_0^inf r^3 exp(-r^2/2) dr = 2 to the working precision
    ctx = MpmathBackend(20).ctx
    for seg in (1.0, 0.75):
        nodes, weights = quadrature._in_context(ctx, quadrature._piecewise_radial_rule(ctx.prec, ctx.dps, seg))
        assert ctx.exp(-max(nodes) ** 2 / 2) < ctx.mpf(10) ** -(ctx.dps + 3)
        assert abs(ctx.fsum(weights) - 1) < ctx.mpf(10) ** -(ctx.dps - 2)
        assert abs(ctx.fsum(w * r * r for r, w in zip(nodes, weights)) - 2) < ctx.mpf(10) ** -(ctx.dps - 2)


def test_radial_gauss_rules_integrate_moments_exactly():
    # the n-point Gauss rule of r exp(-r^2/2) on [0, inf) is exact for degree 2n - 1:
    # int r^k r e^{-r^2/2} dr = 2^(k/2) Gamma(k/2 + 1)
    import math

    for n in (4, 12):
        r, w = quadrature._f64_radial_rule(n)
        for k in range(2 * n):
            exact = 2 ** (k / 2) * math.gamma(k / 2 + 1)
            assert abs(np.sum(w * r**k) - exact) <= 1e-12 * exact
    ctx = MpmathBackend(20).ctx
    r, w = quadrature._in_context(ctx, quadrature._radial_rule(ctx.prec, ctx.dps, 10))
    for k in range(20):
        exact = ctx.mpf(2) ** (ctx.mpf(k) / 2) * ctx.gamma(ctx.mpf(k) / 2 + 1)
        assert abs(ctx.fsum(wi * ri**k for ri, wi in zip(r, w)) - exact) <= ctx.mpf(10) ** -(ctx.dps - 3) * exact


def _scripted_f64_levels(monkeypatch, script):
    """Replace the float64 polar rule: level ``i`` returns ``script(i)`` = (value, magnitude)."""
    levels = {lvl: i for i, lvl in enumerate(quadrature.POLAR_F64_LEVELS)}

    def fake(h, sigma1, sigma2, phi, phi_c, n_r, n_t):
        v, mag = script(levels[(n_r, n_t)], sigma1.size)
        return [(v, mag)]

    monkeypatch.setattr(quadrature, "_polar_rule_blocked", fake)


def test_polar_f64_accepts_at_the_first_agreeing_pair_of_levels(monkeypatch):
    tol = quadrature.POLAR_F64_TOL
    # scripted values: levels 2 and 3 are the first consecutive pair within tol
    values = [1.0, 1.5, 1.2, 1.2 + 0.5 * tol, 7.0, 7.0, 7.0, 7.0]
    _scripted_f64_levels(monkeypatch, lambda i, m: (np.full(m, values[i]), np.ones(m)))
    (v,), unsettled = quadrature.polar_expectations_f64(lambda x: (x,), np.ones(3), np.zeros(3), np.ones(3))
    assert np.all(v == values[3]) and not unsettled.any()


def test_polar_f64_flags_entries_no_levels_settle(monkeypatch):
    tol = quadrature.POLAR_F64_TOL
    # entry 0 settles at the last pair of levels, entry 1 never (differences of 2 tol)
    n = len(quadrature.POLAR_F64_LEVELS)

    def script(i, m):
        v = np.array([1.0 + (0 if i >= n - 2 else i), 1.0 + 2 * tol * i])[:m]
        return v, np.ones(m)

    _scripted_f64_levels(monkeypatch, script)
    (v,), unsettled = quadrature.polar_expectations_f64(lambda x: (x,), np.ones(2), np.zeros(2), np.ones(2))
    assert unsettled.tolist() == [False, True]
    assert v[0] == 1.0 and v[1] == 1.0 + 2 * tol * (n - 1)


def test_polar_f64_levels_grow():
    # each level is a larger rule in both directions than the one before (what "two consecutive
    # rules agree" relies on), and the last resolves the documented (96, 72)
    levels = quadrature.POLAR_F64_LEVELS
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(levels[:-1], levels[1:]))
    assert levels[-1] == (96, 72)
