"""Dual maps of piecewise-linear activations with kinks anywhere (issue 16.6):
the Price route of :mod:`ntk_equiv.quadrature` against independent routes.

References, none of which shares code with the route under test:

* closed forms (Cho & Saul's arc-cosine kernels for relu and step, abs, leaky
  relu) where the kinks sit at 0;
* a float64 route that integrates over ``z1`` (``u = sqrt(k11) z1``) with
  scipy's adaptive QUADPACK rule, the inner expectation over ``v`` given ``z1``
  in closed form (truncated Gaussian moments of each linear piece);
* the same route in mpmath at ``dps=30`` (tanh-sinh, an mpmath context of its
  own) for the high-precision path;
* the Cartesian 2-D rule of the same module (an independent rule, kept for
  non-polynomial kinked activations).

Tolerances: float64 results are held to ``1e-13`` of the Cauchy-Schwarz scale
``sqrt(V(k11, k11, k11) V(k22, k22, k22))`` (the contract is 1e-11; the
references are good to ~1e-15, the rule's own acceptance test is 1e-13), mpmath
at ``dps`` to ``10^-(dps - 2)`` of it.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import ntk_equiv as ne
from ntk_equiv import activations, quadrature
from ntk_equiv.errors import QuadratureError
from ntk_equiv.precision import Float64Backend, MpmathBackend

X = activations.X
F64 = Float64Backend()

#: activation text -> (kinks, [(alpha, beta) of alpha + beta x on each interval], derivative pieces)
PIECES = {
    "Min(Max(x, -1), 1)": ((-1.0, 1.0), [(-1, 0), (0, 1), (1, 0)]),
    "Min(Max(x, 0), 6)": ((0.0, 6.0), [(0, 0), (0, 1), (6, 0)]),
    "Max(x - 1/2, 0)": ((0.5,), [(0, 0), (-0.5, 1)]),
    "Max(x - 1, 0.2*(x - 1))": ((1.0,), [(-0.2, 0.2), (-1, 1)]),
    "Abs(x + 0.75) - 2*Max(x - 1.5, 0)": ((-0.75, 1.5), [(-0.75, -1), (0.75, 1), (3.75, -1)]),
    "Heaviside(x - 1)": ((1.0,), [(0, 0), (1, 0)]),
    "sign(x + 1/2) + 2*Heaviside(x - 2)": ((-0.5, 2.0), [(-1, 0), (1, 0), (3, 0)]),
}


def derivative_pieces(lines):
    return [(beta, 0) for _, beta in lines]


# --------------------------------------------------------------------------- #
# independent float64 reference: outer Gauss-Legendre panels, inner closed form
# --------------------------------------------------------------------------- #
def _inner_f64(kinks, lines, m, s):
    """E[f(m + s Z)] for the piecewise-linear f (Z standard normal), elementwise in m."""
    if s == 0:
        return _f(kinks, lines, m)
    edges = [-np.inf, *kinks, np.inf]
    total = 0.0 * m
    for (lo, hi), (al, be) in zip(zip(edges[:-1], edges[1:]), lines):
        a, b = (lo - m) / s, (hi - m) / s
        # the mass of (a, b) without cancellation on either side
        mass = np.where(a < 0, scipy.special.ndtr(b) - scipy.special.ndtr(a),
                        scipy.special.ndtr(-a) - scipy.special.ndtr(-b))
        total = total + (al + be * m) * mass + be * s * (_pdf(a) - _pdf(b))
    return total


def _pdf(t):
    return np.exp(-np.square(t) / 2) / math.sqrt(2 * math.pi)


def _f(kinks, lines, t):
    idx = np.searchsorted(kinks, t)
    al = np.array([a for a, _ in lines], float)[idx]
    be = np.array([b for _, b in lines], float)[idx]
    return al + be * t


def _reference_rule(kinks, lines, k11, k12, k22, n):
    a = math.sqrt(k11)
    c = k12 / a
    s = math.sqrt(max(k11 * k22 - k12 * k12, 0.0)) / a
    pts = {k / a for k in kinks}
    if c != 0:
        w = s / abs(c)
        pts |= {k / c + o * w for k in kinks for o in (0, 0.25, -0.25, 1, -1, 3, -3, 8, -8)}
    edges = np.array(sorted({-13.0, 13.0} | {p for p in pts if -13 < p < 13}
                            | set(np.linspace(-13, 13, 27))))
    t, wt = np.polynomial.legendre.leggauss(n)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    z = (mid[:, None] + half[:, None] * t).ravel()
    w = (half[:, None] * wt).ravel()
    return float(np.sum(w * _f(kinks, lines, a * z) * _inner_f64(kinks, lines, c * z, s) * _pdf(z)))


def reference_f64(kinks, lines, k11, k12, k22):
    """E[f(u) f(v)] = int f(a z) E[f(c z + s Z)] N(z) dz over [-13, 13] (tail < 1e-37),
    Gauss-Legendre on unit panels split at the kinks of f(a z) and around each smoothed kink
    z = kappa / c of the inner expectation (width s / |c|); 40 and 56 nodes per panel must agree
    (to the round-off of the sums)."""
    lo, hi = (_reference_rule(kinks, lines, k11, k12, k22, n) for n in (40, 56))
    assert abs(lo - hi) <= 2e-15 * (1 + abs(hi)), (lo, hi)  # round-off of ~2000 terms
    return hi


def scale_f64(kinks, lines, k11, k22):
    return math.sqrt(abs(reference_f64(kinks, lines, k11, k11, k11) * reference_f64(kinks, lines, k22, k22, k22)))


def price_f64(text, k11, k12, k22):
    arr = [np.array([float(v)]) for v in (k11, k12, k22)]
    det = np.maximum(arr[0] * arr[2] - arr[1] ** 2, 0.0)
    out = quadrature.price_expectations(F64, activations.parse_activation_expression(text), X, *arr, det)
    assert out is not None, text
    return float(out[0][0]), float(out[1][0])


def scaled_errors_f64(text, k11, k12, k22):
    kinks, lines = PIECES[text]
    v, vd = price_f64(text, k11, k12, k22)
    dlines = derivative_pieces(lines)
    ev = abs(v - reference_f64(kinks, lines, k11, k12, k22)) / scale_f64(kinks, lines, k11, k22)
    sd = scale_f64(kinks, dlines, k11, k22)
    ed = abs(vd - reference_f64(kinks, dlines, k11, k12, k22)) / sd if sd > 0 else abs(vd)
    return ev, ed


def _k12(k11, k22, rho):
    return rho * math.sqrt(k11 * k22)


#: (k11, k22, rho): unit and unequal variances, correlation 0, moderate, within 1e-3, 1e-8
#: and 1e-13 of +-1, exactly +-1, and a variance so small that every kink is far out
CASES = [(1.0, 1.0, 0.0), (1.7, 0.4, 0.55), (0.8, 2.9, -0.8), (2.0, 2.0, 1.0), (1.3, 0.9, 1 - 1e-3),
         (1.3, 1.3, 1 - 1e-8), (0.6, 3.5, -1 + 1e-8), (2.2, 2.2000001, 1 - 1e-13), (4.0, 1.0, -1.0),
         (0.02, 0.05, 0.7), (9.0, 6.0, 0.95)]


@pytest.mark.parametrize("text", sorted(PIECES))
def test_price_route_matches_independent_float64_reference(text):
    worst = max(max(scaled_errors_f64(text, k11, _k12(k11, k22, r), k22)) for k11, k22, r in CASES)
    assert worst <= 1e-13


@settings(max_examples=25, deadline=None)
@given(text=st.sampled_from(sorted(PIECES)), k11=st.floats(0.05, 8.0), k22=st.floats(0.05, 8.0),
       log_gap=st.floats(-14.0, 0.0), sign=st.sampled_from([-1.0, 1.0]))
def test_price_route_hypothesis(text, k11, k22, log_gap, sign):
    rho = sign * (1 - 10.0 ** log_gap)
    assert max(scaled_errors_f64(text, k11, _k12(k11, k22, rho), k22)) <= 1e-13


# --------------------------------------------------------------------------- #
# the Price formulas against closed forms (kinks at 0)
# --------------------------------------------------------------------------- #
CLOSED = [("Max(x, 0)", "relu", {}), ("Abs(x)", "abs", {}), ("sign(x)", "sign", {}),
          ("Max(x, 0) + 0.25*Min(x, 0)", "leaky_relu", {"alpha": 0.25})]


def _gapped(k11, k22, log_gap, sign, num=float, sqrt=math.sqrt):
    """(k11, k12, k22, lo, hi) with the Cauchy-Schwarz gap 10^log_gap sqrt(k11 k22), all
    computed in the number type ``num`` (so that lo hi = k11 k22 - k12^2 to its precision)."""
    k11, k22 = num(k11), num(k22)
    root = sqrt(k11 * k22)
    gap = num(10) ** num(log_gap) * root
    k12 = sign * (root - gap)
    lo, hi = (gap, 2 * root - gap) if sign > 0 else (2 * root - gap, gap)
    return k11, k12, k22, lo, hi


def _price_direct(bk, text, k11, k12, k22, det):
    form = quadrature.piecewise_linear_form(activations.parse_activation_expression(text), X)
    if bk is F64:
        rules, floor = quadrature._price_rules_f64(*quadrature.PRICE_F64_NODES[-1]), quadrature.PRICE_F64_DELTA_FLOOR
    else:
        rules, floor = quadrature._price_rules_mp(bk.ctx, 40, 40), 10.0 ** -(bk.ctx.dps + 5)
    return quadrature.piecewise_linear_duals(bk, form, *(np.atleast_1d(np.asarray(v)) for v in (k11, k12, k22, det)),
                                             rules, floor)


@settings(max_examples=30, deadline=None)
@given(case=st.sampled_from(CLOSED), k11=st.floats(0.01, 30.0), k22=st.floats(0.01, 30.0),
       log_gap=st.floats(-16.0, 0.0), sign=st.sampled_from([-1.0, 1.0]))
def test_price_formulas_match_closed_forms_at_kinks_zero(case, k11, k22, log_gap, sign):
    text, name, params = case
    k11, k12, k22, lo, hi = _gapped(k11, k22, log_gap, sign)
    act = activations.activation(name, **params)
    v, vd = _price_direct(F64, text, k11, k12, k22, lo * hi)
    cv, cvd = act.dual_gaps(F64, k11, k12, k22, lo, hi)[:2]
    scales = np.sqrt(np.abs(np.multiply(act.dual(F64, k11, k11, k11), act.dual(F64, k22, k22, k22))))
    for ours, ref, scale in ((v, cv, scales[0]), (vd, cvd, scales[1])):
        assert abs(float(ours[0]) - float(ref)) <= 1e-14 * max(scale, 1e-300)


def test_price_formulas_match_closed_forms_at_30_digits():
    bk = MpmathBackend(30)
    ctx = bk.ctx
    for text, name, params in CLOSED:
        for k11, k22, log_gap, sign in ((1.3, 0.7, -0.3, 1.0), (2.0, 2.0, -20.0, -1.0), (0.5, 3.0, -9.0, 1.0)):
            k11, k12, k22, lo, hi = _gapped(k11, k22, log_gap, sign, ctx.mpf, ctx.sqrt)
            v, vd = _price_direct(bk, text, k11, k12, k22, lo * hi)
            cv, cvd = activations.activation(name, **params).dual_gaps(bk, k11, k12, k22, lo, hi)[:2]
            assert abs(v[0] - cv) <= ctx.mpf(10) ** -32 * ctx.sqrt(k11 * k22)
            assert abs(vd[0] - cvd) <= ctx.mpf(10) ** -32


# --------------------------------------------------------------------------- #
# identities: odd symmetry, Price's relation dV/dk12 = Vdot
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("text", ["Min(Max(x, -1), 1)", "sign(x - 1/2) + sign(x + 1/2)"])
def test_odd_activation_dual_is_odd_in_k12(text):
    # phi(-x) = -phi(x): E[phi(u) phi(-v)] = -E[phi(u) phi(v)], phi' even
    for k11, k22, rho in ((1.1, 0.6, 0.3), (2.5, 2.5, 0.999), (0.7, 1.9, 1 - 1e-9)):
        k12 = _k12(k11, k22, rho)
        v, vd = price_f64(text, k11, k12, k22)
        vm, vdm = price_f64(text, k11, -k12, k22)
        assert abs(v + vm) <= 1e-15 * (1 + abs(v)) and abs(vd - vdm) <= 1e-15 * (1 + abs(vd))


@pytest.mark.parametrize("text", ["Min(Max(x, 0), 6)", "Max(x - 1/2, 0)", "Abs(x + 0.75) - 2*Max(x - 1.5, 0)"])
def test_price_relation_between_the_two_maps(text):
    # Price's theorem: dV/dk12 = Vdot. Central differences with h = 1e-4: truncation
    # h^2 |V'''| / 6 <~ 1e-9 at these correlations (|V'''| = |d/dk12 sum d d phi2| = O(1)),
    # round-off 1e-16 / h = 1e-12; tolerance 1e-8
    h = 1e-4
    for k11, k22, rho in ((1.2, 0.8, 0.2), (2.0, 3.0, -0.6), (1.5, 1.4, 0.85)):
        k12 = _k12(k11, k22, rho)
        up, down = price_f64(text, k11, k12 + h, k22)[0], price_f64(text, k11, k12 - h, k22)[0]
        assert abs((up - down) / (2 * h) - price_f64(text, k11, k12, k22)[1]) <= 1e-8


# --------------------------------------------------------------------------- #
# high precision against an independent mpmath route at dps=30
# --------------------------------------------------------------------------- #
def reference_mp(ctx, kinks, lines, k11, k12, k22):
    """The route of :func:`reference_f64` in ``ctx`` with tanh-sinh (``ctx.quad``)."""
    k11, k12, k22 = (ctx.mpf(v) for v in (k11, k12, k22))
    kinks = [ctx.mpf(k) for k in kinks]
    lines = [(ctx.mpf(a), ctx.mpf(b)) for a, b in lines]
    a = ctx.sqrt(k11)
    c = k12 / a
    s = ctx.sqrt(max(k11 * k22 - k12 ** 2, 0)) / a
    edges = [-ctx.inf, *kinks, ctx.inf]

    def f(t):
        al, be = lines[sum(1 for kappa in kinks if t > kappa)]
        return al + be * t

    def inner(z):
        m = c * z
        if s == 0:
            return f(m)
        total = 0
        for (lo, hi), (al, be) in zip(zip(edges[:-1], edges[1:]), lines):
            p, q = (lo - m) / s, (hi - m) / s
            total += (al + be * m) * (ctx.ncdf(q) - ctx.ncdf(p)) + be * s * (ctx.npdf(p) - ctx.npdf(q))
        return total

    pts = {kappa / a for kappa in kinks}
    if c != 0:
        w = s / abs(c)
        pts |= {kappa / c + o * w for kappa in kinks for o in (0, 1, -1, 4, -4, 16, -16)}
    pts = sorted(p for p in pts if abs(p) < 40)
    return ctx.quad(lambda z: f(a * z) * inner(z) * ctx.npdf(z), [-ctx.inf, *pts, ctx.inf])


@pytest.mark.parametrize("k11,k22,rho", [(1.3, 2.1, -1 + 1e-6), pytest.param(1.7, 0.9, 0.6, marks=pytest.mark.slow)])
def test_price_route_at_30_digits_matches_mpmath_reference(k11, k22, rho):
    text = "Min(Max(x, -1), 1)"
    kinks, lines = PIECES[text]
    bk = MpmathBackend(30)
    k12 = _k12(k11, k22, rho)
    args = [np.array([bk.ctx.mpf(v)], dtype=object) for v in (k11, k12, k22)]
    v, vd = quadrature.price_expectations(bk, activations.parse_activation_expression(text), X, *args,
                                          args[0] * args[2] - args[1] ** 2)
    ref = mpmath.MPContext()
    ref.dps = 32
    assert abs(v[0] - reference_mp(ref, kinks, lines, k11, k12, k22)) <= mpmath.mpf(10) ** -28


@pytest.mark.slow
def test_price_route_derivative_map_at_30_digits_matches_mpmath_reference():
    text = "Min(Max(x, -1), 1)"
    kinks, lines = PIECES[text]
    bk = MpmathBackend(30)
    ref = mpmath.MPContext()
    ref.dps = 32
    for k11, k22, rho in ((1.3, 2.1, -1 + 1e-6), (0.4, 0.5, 0.3), (2.0, 2.0, 1.0)):
        k12 = _k12(k11, k22, rho)
        args = [np.array([bk.ctx.mpf(v)], dtype=object) for v in (k11, k12, k22)]
        vd = quadrature.price_expectations(bk, activations.parse_activation_expression(text), X, *args,
                                           args[0] * args[2] - args[1] ** 2)[1]
        assert abs(vd[0] - reference_mp(ref, kinks, derivative_pieces(lines), k11, k12, k22)) <= mpmath.mpf(10) ** -28


# --------------------------------------------------------------------------- #
# the route in the kernel, and what it leaves to the other rules
# --------------------------------------------------------------------------- #
def test_kernel_through_price_route_matches_the_cartesian_rule(monkeypatch):
    x = np.random.default_rng(5).standard_normal((3, 2))
    arch = ne.mlp(2, "Min(Max(x, -1), 1)", sigma_w=1.4, sigma_b=0.3)
    fast = arch.kernel(x)
    monkeypatch.setattr(quadrature, "price_expectations", lambda *a, **k: None)
    slow = arch.kernel(x)
    for a, b in ((fast.nngp, slow.nngp), (fast.ntk, slow.ntk)):
        assert float(ne.kernels.scaled_error(a, b)) <= 1e-12


def test_cartesian_rule_with_shifted_kinks_matches_reference():
    # the 2-D rule that non-polynomial kinked activations still use, on piecewise-linear
    # functions with kinks away from 0 (its breakpoints at kappa / a and kappa / c matter)
    for text in ("Min(Max(x, -1), 1)", "Max(x - 1, 0.2*(x - 1))"):
        kinks, lines = PIECES[text]
        f = lambda t, kinks=kinks, lines=lines: _f(kinks, lines, t)  # noqa: E731
        for k11, k22, rho in ((1.5, 0.7, 0.5), (0.9, 2.3, -0.97), (2.0, 2.0, 1 - 1e-6), (0.03, 0.04, 0.8)):
            k12 = _k12(k11, k22, rho)
            got = quadrature.gaussian_expectation_f64(f, f, kinks, kinks, k11, k12, k22)
            ref = reference_f64(kinks, lines, k11, k12, k22)
            assert abs(float(got) - ref) <= 1e-12 * scale_f64(kinks, lines, k11, k22)


# x**2 Heaviside(1 - x**2): a quadratic branch whose secant through the probes of (-1, 1) is flat,
# so read as a line it would pass as the step 1/9 H(1 - x^2) (the degree check must refuse it)
@pytest.mark.parametrize("text", ["erf(Max(x, -1))", "x*Heaviside(x - 1)", "Max(x, 1)**2", "Max(sin(x), 0)",
                                  "x**2*Heaviside(1 - x**2)"])
def test_other_kinked_functions_are_left_to_the_other_rules(text):
    args = [np.array([v]) for v in (1.0, 0.5, 1.0, 0.75)]
    assert quadrature.price_expectations(F64, activations.parse_activation_expression(text), X, *args) is None


def test_zero_variance_is_left_to_the_other_rules():
    args = [np.array([v]) for v in (0.0, 0.0, 1.0, 0.0)]
    assert quadrature.price_expectations(F64, activations.parse_activation_expression("Max(x - 1, 0)"), X, *args) is None


@pytest.mark.parametrize("text,form", [
    ("Min(Max(x, -1), 1)", (-1, 0, (-1, 1), (1, -1), (0, 0))),
    ("Max(x - 1/2, 0) + 3", (3, 0, (sympy.Rational(1, 2),), (1,), (0,))),
    ("2*Heaviside(x - 1) - x + Abs(x + 2)", (-2, -2, (-2, 1), (2, 0), (0, 2))),
])
def test_piecewise_linear_form(text, form):
    got = quadrature.piecewise_linear_form(activations.parse_activation_expression(text), X)
    assert (got.b0, got.s0, got.kinks, got.slope_jumps, got.value_jumps) == form


@pytest.mark.parametrize("factor,settles", [(0.95, True), (1.05, False)])
def test_two_rules_must_agree_within_the_stated_tolerance(monkeypatch, factor, settles):
    # the first rule shifted by factor * 1e-13 * scale (the stated acceptance tolerance, README and
    # quadrature.PRICE_F64_TOL; scale = V(1, 1, 1) at unit variances): just inside the tolerance
    # the second rule's value is returned, just outside it is a refusal, not a number
    tol = 1e-13
    expr = activations.parse_activation_expression("Max(x - 1, 0)")
    args = [np.array([v]) for v in (1.0, 0.5, 1.0, 0.75)]
    v_ref, vd_ref = quadrature.price_expectations(F64, expr, X, *args)
    diag = quadrature.price_expectations(F64, expr, X, *(np.array([v]) for v in (1.0, 1.0, 1.0, 0.0)))
    real = quadrature.piecewise_linear_duals
    calls = []

    def skewed(bk, form, *rest):
        v, vd = real(bk, form, *rest)
        calls.append(1)
        if len(calls) == 1:
            return v + factor * tol * diag[0], vd + factor * tol * diag[1]
        return v, vd

    monkeypatch.setattr(quadrature, "piecewise_linear_duals", skewed)
    if settles:
        v, vd = quadrature.price_expectations(F64, expr, X, *args)
        assert v[0] == v_ref[0] and vd[0] == vd_ref[0]
    else:
        with pytest.raises(QuadratureError, match="did not settle"):
            quadrature.price_expectations(F64, expr, X, *args)


@pytest.mark.slow
def test_price_route_grid_against_independent_reference():
    # 400 seeded cases: variances 0.03..10 (a fifth with nearly equal variances, where the
    # feature exp(-delta^2 / 2 tau^2) is narrow), correlations within 10^-15..1 of +-1
    rng = np.random.default_rng(11)
    texts = sorted(PIECES)
    worst = 0.0
    for i in range(400):
        k11, k22 = np.exp(rng.uniform(np.log(0.03), np.log(10.0), 2))
        if i % 5 == 0:
            k22 = k11 * (1 + 10 ** rng.uniform(-12, -2))
        rho = rng.choice([-1.0, 1.0]) * (1 - 10 ** rng.uniform(-15, 0))
        worst = max(worst, *scaled_errors_f64(texts[i % len(texts)], k11, _k12(k11, k22, rho), k22))
    assert worst <= 1e-13
