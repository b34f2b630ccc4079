"""float64 kinks anywhere, fast (issue 16.6): the split Hermite expansion
(``hermite.split_expectations_f64``) for the pairs its tail bound settles and the 2-D
rule along the kink lines (``quadrature.aligned_expectations_f64``) for the rest.

References independent of the code under test: the Price route of
``quadrature.price_expectations`` (piecewise-linear closed forms in the angle) and the
arc-cosine closed form of ReLU (default run); ``dps=30`` kernels (split expansion in
fixed point and nested tanh-sinh, slow run). Each rule's own check is shown to fail on a
wrong kink, and a truncated range is shown to fail the reference comparison.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy

import ntk_equiv as ne
from ntk_equiv import activations, hermite, quadrature
from ntk_equiv.errors import QuadratureError
from ntk_equiv.kernels import scaled_error
from ntk_equiv.precision import F64

RNG = np.random.default_rng(1606)
#: the contract of the float64 dual maps: 1e-11 of the Cauchy-Schwarz scale
TOL = 1e-11


def _pairs(n: int):
    """Variances in [0.2, 6], correlations over [-1, 1] with many within 1e-1..1e-14 of
    +-1 (the aligned rule's) and the exact diagonal."""
    k11 = RNG.uniform(0.2, 6.0, n)
    k22 = np.where(RNG.random(n) < 0.5, k11 * RNG.uniform(0.95, 1.05, n), RNG.uniform(0.2, 6.0, n))
    near = RNG.choice([-1.0, 1.0], n) * (1 - 10 ** RNG.uniform(-14, -1, n))
    rho = np.where(RNG.random(n) < 0.5, RNG.uniform(-1, 1, n), near)
    k11, k22, rho = np.r_[k11, 2.0], np.r_[k22, 2.0], np.r_[rho, 1.0]
    k12 = rho * np.sqrt(k11 * k22)
    det = k11 * k22 * (1 - rho) * (1 + rho)  # accurate: no k11 k22 - k12^2 cancellation
    return k11, k12, k22, det, rho


def _hinge(c: float):
    return lambda x: (np.maximum(x - c, 0.0), (x > c).astype(float))


def _price_scale(expr, k11, k22):
    v = [quadrature.price_expectations(F64, expr, activations.X, k, k, k, 0 * k) for k in (k11, k22)]
    return [np.sqrt(v[0][j] * v[1][j]) for j in (0, 1)]


def test_split_then_aligned_matches_the_price_route_for_a_shifted_hinge():
    k11, k12, k22, det, _ = _pairs(60)
    expr = sympy.Max(activations.X - sympy.Rational(1, 2), 0)
    _, settled, _ = hermite.split_expectations_f64(_hinge(0.5), (0.5,), k11, k12, k22)
    assert settled.any() and not settled.all()  # both rules are exercised
    got = activations._split_then_aligned(_hinge(0.5), (0.5,), k11, k12, k22, det)
    want = quadrature.price_expectations(F64, expr, activations.X, k11, k12, k22, det)
    for g, w, sc in zip(got, want, _price_scale(expr, k11, k22)):
        assert np.max(np.abs(g - w) / sc) <= TOL


def test_split_then_aligned_matches_the_arc_cosine_kernel_of_relu():
    k11, k12, k22, det, rho = _pairs(40)
    got = activations._split_then_aligned(_hinge(0.0), (0.0,), k11, k12, k22, det)
    s = np.sqrt(k11 * k22)
    # the gaps s (1 -+ rho) with lo hi = det, as the kernel state carries them (s + k12 would
    # cancel near rho = -1)
    want = ne.activation("relu").dual_gaps(F64, k11, k12, k22, s * (1 - rho), s * (1 + rho))[:2]
    scales = (s / 2, np.full_like(s, 0.5))  # E relu(u)^2 = k11 / 2, E H(u)^2 = 1/2
    for g, w, sc in zip(got, want, scales):
        assert np.max(np.abs(g - w) / sc) <= TOL


def test_a_wrong_kink_fails_the_rules_own_checks():
    # the function kinks at 1/2 but the rules are told 0.3: the panels no longer split at
    # the kink, Gauss-Legendre converges only algebraically and the two rules disagree
    k11, k12, k22, det, _ = _pairs(40)
    assert hermite.split_expectations_f64(_hinge(0.5), (0.3,), k11, k12, k22) is None
    near = np.abs(k12) / np.sqrt(k11 * k22) > 0.99
    scale = [np.ones(int(near.sum()))] * 2
    with pytest.raises(QuadratureError, match="2-D rule did not settle"):
        quadrature.aligned_expectations_f64(_hinge(0.5), (0.3,), k11[near], k12[near], k22[near], det[near], scale)


def test_a_truncated_range_fails_against_the_reference(monkeypatch):
    # a dropped part of the range (|z| > 2 left out): both rules agree on the wrong integral,
    # the independent reference does not
    k11, k12, k22, det, _ = _pairs(40)
    near = np.abs(k12) / np.sqrt(k11 * k22) > 0.99
    k11, k12, k22, det = k11[near], k12[near], k22[near], det[near]
    expr = sympy.Max(activations.X - sympy.Rational(1, 2), 0)
    want = quadrature.price_expectations(F64, expr, activations.X, k11, k12, k22, det)
    scales = _price_scale(expr, k11, k22)
    monkeypatch.setattr(quadrature, "ALIGNED_HALF_WIDTH", 2.0)
    got = quadrature.aligned_expectations_f64(_hinge(0.5), (0.5,), k11, k12, k22, det, [s * s for s in scales])
    assert max(np.max(np.abs(g - w) / sc) for g, w, sc in zip(got, want, scales)) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("expr", ["erf(Max(x, -1))", "Max(erf(x) - 3/10, 0)", "erf(Max(x, 0))"])
def test_composites_at_depth_2_match_dps30(expr):
    x = np.random.default_rng(0).standard_normal((4, 3))
    arch = ne.mlp(2, expr, sigma_w=1.3, sigma_b=0.2)
    k, ref = arch.kernel(x), arch.kernel(x, dps=30)
    assert max(float(scaled_error(k.nngp, ref.nngp)), float(scaled_error(k.ntk, ref.ntk))) <= TOL
