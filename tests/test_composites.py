"""Act-after-act composites (issue 16.2): ``psi(phi(u))`` of one Gaussian pre-activation is
computed, at float64 and at ``dps=``, whenever its kinks are finitely many; ``relu(cos)``
(infinitely many kinks) is refused.

References are independent of the code under test: plain-numpy wide networks drawn here
(Monte Carlo, tolerance from the standard error with a false alarm < 1e-6), scipy's
QUADPACK and a product Gauss-Hermite rule in whitened coordinates written here, and
closed forms derived here (the arc-cosine kernel of degree 2).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.integrate as si
import scipy.special
import scipy.stats

import ntk_equiv as ne
from ntk_equiv import hermite
from ntk_equiv.activations import activation
from ntk_equiv.composite import compose
from ntk_equiv.errors import ArchitectureError
from ntk_equiv.kernels import scaled_error
from ntk_equiv.precision import backend, mp_context

RNG = np.random.default_rng(2616)
KAPPA = float(scipy.special.erfinv(0.3))  # relu(erf(x) - 3/10) kinks at erf(x) = 3/10


def _np_erf_minus(t):
    return scipy.special.erf(t) - 0.3


#: name -> (layers between the two Dense, the composite f, f', f = 0 below this threshold or None)
CASES = {
    "erf-erf": ((ne.Erf(), ne.Erf()), lambda t: scipy.special.erf(scipy.special.erf(t)),
                lambda t: 2 / np.sqrt(np.pi) * np.exp(-scipy.special.erf(t) ** 2) * 2 / np.sqrt(np.pi) * np.exp(-t * t),
                None),
    "erf-relu": ((ne.Relu(), ne.Erf()), lambda t: scipy.special.erf(np.maximum(t, 0)),
                 lambda t: (t > 0) * 2 / np.sqrt(np.pi) * np.exp(-t * t), 0.0),
    "relu-erf-0.3": ((ne.Erf(), ne.Act("Max(x - 3/10, 0)")), lambda t: np.maximum(_np_erf_minus(t), 0),
                     lambda t: (t > KAPPA) * 2 / np.sqrt(np.pi) * np.exp(-t * t), KAPPA),
    "tanh-relu": ((ne.Relu(), ne.Tanh()), lambda t: np.tanh(np.maximum(t, 0)),
                  lambda t: (t > 0) / np.cosh(t) ** 2, 0.0),
}
SW1, SB1, SW2, SB2 = 1.2, 0.3, 1.1, 0.1


def _arch(name):
    return ne.serial(ne.Dense(SW1, SB1), *CASES[name][0], ne.Dense(SW2, SB2))


# --------------------------------------------------------------------------- #
# accepted, or refused with the reason
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", sorted(CASES))
def test_act_after_act_is_accepted(name):
    assert _arch(name).check_architecture() == ne.signals.GAUSSIAN


def test_relu_after_cos_is_refused_for_its_infinitely_many_kinks():
    arch = ne.serial(ne.Dense(SW1, SB1), ne.Cos(), ne.Relu(), ne.Dense())
    with pytest.raises(ArchitectureError, match=r"Act\('relu'\).*relu\(cos\) has infinitely many kinks"):
        arch.kernel(RNG.standard_normal((2, 3)))


# --------------------------------------------------------------------------- #
# against plain-numpy wide networks
# --------------------------------------------------------------------------- #
def _wide(rng, x, width, f, df):
    """NNGP and empirical NTK of serial(Dense(SW1, SB1), f, Dense(SW2, SB2)) at ``width``:
    readout share plus the first layer's, through f' (NTK parameterisation)."""
    h = SW1 / np.sqrt(x.shape[1]) * (x @ rng.standard_normal((x.shape[1], width))) + SB1 * rng.standard_normal(width)
    y = f(h)
    nngp = SW2**2 * (y @ y.T) / width + SB2**2
    g = SW2 / np.sqrt(width) * rng.standard_normal(width) * df(h)
    return np.stack([nngp, nngp + (g @ g.T) * (SW1**2 * (x @ x.T) / x.shape[1] + SB1**2)])


@pytest.mark.parametrize("name", sorted(CASES))
def test_composite_kernel_against_a_wide_network(name):
    width, seeds = 1024, 32
    x = RNG.standard_normal((3, 3))
    _, f, df, _ = CASES[name]
    k = _arch(name).kernel(x)
    samples = np.array([_wide(np.random.default_rng([26, s]), x, width, f, df) for s in range(seeds)])
    mean, se = samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(seeds)
    # Student-t quantile, Bonferroni over the 2 x 9 entries, plus the O(1/width) finite-width
    # bias of the readout share (10/width of the entry's Cauchy-Schwarz scale bounds it)
    t = scipy.stats.t.ppf(1 - 1e-6 / (2 * 18), seeds - 1)
    for i, part in enumerate(("nngp", "ntk")):
        ref = getattr(k, part)
        d = np.sqrt(np.diag(ref))
        tol = t * se[i] + 10.0 / width * np.outer(d, d)
        assert np.all(np.abs(mean[i] - ref) <= tol), (part, np.max(np.abs(mean[i] - ref) / tol))
    # power: the outer activation's own dual map applied to the inner's kernel as if it were
    # Gaussian (the silently wrong kernel the issue found) is far outside the tolerance
    inner, outer = CASES[name][0]
    wrong = ne.serial(ne.Dense(SW1, SB1), inner, ne.Dense(1.0, 0.0), outer, ne.Dense(SW2, SB2)).kernel(x).nngp
    d = np.sqrt(np.diag(k.nngp))
    assert np.max(np.abs(mean[0] - wrong) / (t * se[0] + 10.0 / width * np.outer(d, d))) > 1


# --------------------------------------------------------------------------- #
# against independent quadratures (float64)
# --------------------------------------------------------------------------- #
def _whitened(k11, k12, k22):
    a = math.sqrt(k11)
    return a, k12 / a, math.sqrt(max(k11 * k22 - k12 * k12, 0.0)) / a


def _pdf(z):
    return np.exp(-z * z / 2) / np.sqrt(2 * np.pi)


def _reference(f, threshold, k11, k12, k22):
    """``E[f(u) f(v)]``: QUADPACK over ``u, v > threshold`` where f vanishes below it
    (``u = a z1``, ``v = c z1 + s z2``, tails beyond 12: e^-72), else a 300-node product
    Gauss-Hermite rule (f entire)."""
    a, c, s = _whitened(k11, k12, k22)
    if threshold is None:
        z, w = np.polynomial.hermite_e.hermegauss(300)
        w = w / np.sqrt(2 * np.pi)
        return float(np.sum(w[:, None] * w[None, :] * f(a * z[:, None]) * f(c * z[:, None] + s * z[None, :])))
    if s <= 1e-12 * math.sqrt(k22):  # a self pair: v = (c / a) u
        return si.quad(lambda z: f(a * z) * f(c * z) * _pdf(z), threshold / a, 12, epsabs=1e-17, epsrel=1e-14,
                       limit=200)[0]
    return si.dblquad(lambda z2, z1: f(a * z1) * f(c * z1 + s * z2) * _pdf(z1) * _pdf(z2), threshold / a, 12,
                      lambda z1: max((threshold - c * z1) / s, -12.0), 12, epsabs=1e-17, epsrel=1e-14)[0]


@pytest.mark.slow  # QUADPACK at epsrel 1e-14: ~5 s per case
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # epsrel 1e-14 is beyond float64 sums
@pytest.mark.parametrize("name", ["relu-erf-0.3", "tanh-relu"])
def test_composite_dual_maps_against_independent_quadrature(name):
    # (erf-erf and erf-relu: tests/test_layer_protocol.py) float64 promise of the expression
    # machinery: ~1e-12 of the entry's Cauchy-Schwarz scale; the references are good to ~1e-14
    _, f, df, threshold = CASES[name]
    phi = compose(*[layer.phi for layer in CASES[name][0][::-1]])
    bk = backend(None)
    for k11, k12, k22 in ((0.9, -0.5, 1.6), (1.1, 1.1, 1.1)):
        v, vd = phi.dual(bk, np.array([k11]), np.array([k12]), np.array([k22]))
        for got, g in ((v[0], f), (vd[0], df)):
            ref = _reference(g, threshold, k11, k12, k22)
            scale = math.sqrt(_reference(g, threshold, k11, k11, k11) * _reference(g, threshold, k22, k22, k22))
            assert abs(got - ref) <= 1e-12 * scale, (k11, k12, k22, got, ref)


# --------------------------------------------------------------------------- #
# high precision: the split expansion (hermite.split_expectations_mp)
# --------------------------------------------------------------------------- #
def _arc_cosine_2(ctx, k11, k12, k22):
    """``E[relu(u)^2 relu(v)^2] = k11 k22 J_2(theta) / (2 pi)`` and ``E[(2 relu u)(2 relu v)]
    = 4 sqrt(k11 k22) J_1(theta) / (2 pi)`` (Cho & Saul 2009), with ``cos theta = rho``,
    ``J_1 = sin t + (pi - t) cos t`` and ``J_2 = 3 sin t cos t + (pi - t)(1 + 2 cos^2 t)``:
    derived here, not by the code under test."""
    rho = k12 / ctx.sqrt(k11 * k22)
    t = ctx.acos(rho)
    j1 = ctx.sin(t) + (ctx.pi - t) * ctx.cos(t)
    j2 = 3 * ctx.sin(t) * ctx.cos(t) + (ctx.pi - t) * (1 + 2 * ctx.cos(t) ** 2)
    return k11 * k22 * j2 / (2 * ctx.pi), 4 * ctx.sqrt(k11 * k22) * j1 / (2 * ctx.pi)


PAIRS = ((1.3, 0.4, 0.8), (0.9, -0.5, 1.6), (1.1, 0.9, 0.95), (1.1, 1.1, 1.1), (0.7, -0.7, 0.7))


@pytest.mark.parametrize("dps, pairs", [(20, (PAIRS[0], PAIRS[4])), pytest.param(30, PAIRS, marks=pytest.mark.slow)])
def test_split_expansion_matches_the_arc_cosine_kernel_of_degree_2(dps, pairs):
    # relu then x**2: relu(x)^2, kinked at 0, not piecewise linear: the split expansion; one pair
    # with rho = 0.39, one with rho = -1 (E[f(u) f(-u)] = 0) by default, all at 30 digits (slow)
    ctx = mp_context(dps)
    phi = compose(activation("x**2"), activation("relu"))
    bk = backend(dps)
    k11, k12, k22 = (np.array([ctx.mpf(p[i]) for p in pairs], dtype=object) for i in range(3))
    v, vd = phi.dual(bk, k11, k12, k22)
    for i in range(len(pairs)):
        ref_v, ref_vd = _arc_cosine_2(ctx, k11[i], k12[i], k22[i])
        for got, ref, scale in ((v[i], ref_v, k11[i] * k22[i] * 3 / 2),
                                (vd[i], ref_vd, 2 * ctx.sqrt(k11[i] * k22[i]))):
            assert abs(got - ref) <= ctx.mpf(10) ** -dps * scale, (pairs[i], ctx.nstr(got - ref, 3))


def test_split_expansion_flags_pairs_too_close_to_correlation_one():
    ctx = mp_context(20)
    h = compose(activation("erf"), activation("relu"))
    joint = np.frompyfunc(lambda t: (ctx.erf(t) if t > 0 else ctx.mpf(0), ctx.mpf(0)), 1, 2)
    k = [np.array([v], dtype=object) for v in (ctx.mpf(1), 1 - ctx.mpf(10) ** -8, ctx.mpf(1))]  # K ~ 5e9 terms
    (v, _), settled = hermite.split_expectations_mp(ctx, joint, h.mp_kinks(ctx), *k, digits=25)
    assert not settled[0] and v[0] is None


def test_split_expansion_without_the_kink_split_is_caught(monkeypatch):
    # the check can fail: panels not split at the kink make the two rules disagree
    ctx = mp_context(20)
    joint = np.frompyfunc(lambda t: (ctx.erf(t) if t > ctx.mpf("0.3") else ctx.erf(ctx.mpf("0.3")), ctx.mpf(0)), 1, 2)
    args = [np.array([ctx.mpf(1.2)], dtype=object), np.array([ctx.mpf(0.5)], dtype=object),
            np.array([ctx.mpf(0.8)], dtype=object)]
    assert hermite.split_expectations_mp(ctx, joint, [ctx.mpf("0.3")], *args, digits=25) is not None
    assert hermite.split_expectations_mp(ctx, joint, [], *args, digits=25) is None


@pytest.mark.parametrize("name", ["erf-relu", pytest.param("relu-erf-0.3", marks=pytest.mark.slow)])
def test_composite_at_high_precision_agrees_with_float64(name):
    # inputs at correlation 0.09 after the first Dense: the split expansion settles every pair
    # (pairs beyond |rho| ~ 0.96 go to the 2-D rules: minutes per entry at dps=)
    x = np.array([[0.9, -0.3, 0.2], [0.1, 0.8, -0.5]])
    k64 = _arch(name).kernel(x)
    k = _arch(name).kernel(x, dps=20)
    for part in ("nngp", "ntk"):
        got = np.vectorize(float)(np.asarray(getattr(k, part), dtype=object)).reshape(getattr(k64, part).shape)
        assert scaled_error(got, getattr(k64, part)) <= 1e-12


@pytest.mark.slow
def test_erf_after_erf_at_high_precision_against_mpmath_quadrature():
    # the Hermite expansion of erf(erf) at std ~1.6 does not settle within 3600 terms at 30
    # digits; the split expansion (no kinks, tail bound per pair) does. Reference: nested
    # Gauss-Legendre at 35 digits on [-12.5, 12.5]^2 in whitened coordinates
    ctx = mpmath.MPContext()
    ctx.dps = 35
    k11, k12, k22 = ctx.mpf(2.5), ctx.mpf(1.1), ctx.mpf(1.9)
    phi = compose(activation("erf"), activation("erf"))
    v, _ = phi.dual(backend(30), *(np.array([ctx.mpf(k)], dtype=object) for k in (k11, k12, k22)))
    a = ctx.sqrt(k11)
    c, s = k12 / a, ctx.sqrt(k11 * k22 - k12 ** 2) / a
    f = (lambda t: ctx.erf(ctx.erf(t)))
    grid = [ctx.mpf(-12.5) + ctx.mpf(25) * i / 10 for i in range(11)]
    inner = (lambda z1: ctx.quad(lambda z2: f(c * z1 + s * z2) * ctx.exp(-z2 * z2 / 2), grid, method="gauss-legendre"))
    ref = ctx.quad(lambda z1: f(a * z1) * ctx.exp(-z1 * z1 / 2) * inner(z1), grid, method="gauss-legendre") / (2 * ctx.pi)
    assert abs(v[0] - ref) < ctx.mpf(10) ** -25
