"""Activations: every closed-form dual map against 2-D Gaussian quadrature
(docs/theory.md C1), in float64 (1e-12) and at 50 digits (1e-45), over random
correlation matrices and the endpoints; expression activations; the safe
parser's positive cases; the Mehler-expansion path of smooth expressions
(ntk_equiv.hermite) against closed forms (1e-12 in float64, 1e-45 at 50
digits), tanh against an independent 2-D rule, 1-D reductions and a
higher-precision run, and divergent expectations that must raise.

Errors are measured relative to ``sqrt(V(k11) V(k22))``, the Cauchy-Schwarz
bound of the entry (see ``ntk_equiv.kernels.scaled_error``): dual maps that
cross zero (sign, sin at correlation 0) have entries far below their scale,
where plain relative error measures the cancellation, not the formula.
"""
import re

import mpmath
import numpy as np
import pytest
import scipy.special
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import ntk_equiv as ne
from ntk_equiv import quadrature
from ntk_equiv.activations import (
    _NUMPY_MODULES,
    CATALOGUE,
    NAMED,
    NAMES,
    X,
    kinks_of,
    parse_activation_expression,
)
from ntk_equiv.precision import F64, backend

PARAMS = {name: dict(record.example) for name, record in CATALOGUE.items() if record.example}


def make(name):
    return ne.activation(name, **PARAMS.get(name, {}))


def correlation_cases(seed: int, n_random: int):
    """(k11, k12, k22) arrays: endpoints first, then random correlations."""
    k11 = [0.5625, 0.5625, 0.01, 1.5, 2.0, 1.0]
    k22 = [2.25, 2.25, 1.7, 1.5, 2.0, 1.0]
    k12 = [1.125, -1.125, 0.01, -(1 - 2.0**-20) * 1.5, 2.0 * (1 - 2.0**-30), 0.0]
    # exactly +1 and -1 (dyadic: det = 0 exactly), a zero-norm input with
    # sigma_b = 0.1 against another input (k11 = k12 = sigma_b^2), nearly -1,
    # nearly +1, exactly 0
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.05, 3.0, n_random), rng.uniform(0.05, 3.0, n_random)
    rho = rng.uniform(-1, 1, n_random)
    return (np.concatenate([k11, a]), np.concatenate([k12, rho * np.sqrt(a * b)]), np.concatenate([k22, b]))


def scaled(act, bk, k11, k12, k22, value, reference, which):
    d1 = act.dual(bk, k11, k11, k11)[which]
    d2 = act.dual(bk, k22, k22, k22)[which]
    scale = np.sqrt(np.abs(d1 * d2))
    scale = np.where(scale > 0, scale, 1.0)
    return np.abs(value - reference) / scale


@pytest.mark.parametrize("name", NAMED)
def test_closed_form_matches_float64_quadrature(name):
    act = make(name)
    k11, k12, k22 = correlation_cases(seed=1, n_random=8)
    closed = act.dual(F64, k11, k12, k22)
    quad = act.dual_by_quadrature(F64, k11, k12, k22)
    for which in (0, 1):
        err = scaled(act, F64, k11, k12, k22, closed[which], quad[which], which)
        # 1e-12: the float64 promise; the piecewise Gauss-Legendre rule
        # resolves kinks (also smoothed ones near correlation +-1) to ~1e-15
        assert err.max() <= 1e-12, (name, which, err.argmax(), err.max())


def _mp_case(name, k11, k12, k22, dps=50):
    # numbers and arithmetic in the backend's own context (the global mpmath.mp
    # stays at 15 digits: sqrt there would cost the check 35 digits)
    bk = backend(dps)
    ctx = bk.ctx
    act = make(name)
    ks = [np.array([ctx.mpf(v)], dtype=object) for v in (k11, k12, k22)]
    closed = act.dual(bk, *ks)
    quad = act.dual_by_quadrature(bk, *ks)
    diag = [act.dual(bk, k, k, k) for k in (ks[0], ks[2])]
    errs = []
    for which in (0, 1):
        scale = ctx.sqrt(abs(diag[0][which][0] * diag[1][which][0])) or ctx.mpf(1)
        errs.append(abs(closed[which][0] - quad[which][0]) / scale)
    return max(errs)


# a few 50-digit cases in the default run (the mpmath quadrature costs ~0.5-10 s
# per entry), the whole grid behind the slow marker
DEFAULT_MP = [pytest.param("relu", "0.5625", "-1.125", "2.25", marks=pytest.mark.slow),  # ~3 s; relu is on the slow grid
              ("sign", "1.5", repr(-(1 - 2.0**-20) * 1.5), "1.5"),
              ("gelu", "1.5", repr(-(1 - 2.0**-20) * 1.5), "1.5"), ("gelu", "2.0", "-1.18", "0.7")]


@pytest.mark.parametrize("name,k11,k12,k22", DEFAULT_MP)
def test_closed_form_matches_quadrature_at_50_digits(name, k11, k12, k22):
    assert _mp_case(name, k11, k12, k22) <= mpmath.mpf(10) ** -45


SMOOTH = ("erf", "sin", "cos")


def _mp_grid():
    # every activation at every case: the smooth ones (erf, sin, cos) go through
    # the Mehler expansion (ntk_equiv.hermite), ~1 s per case at 50 digits
    k11, k12, k22 = correlation_cases(seed=2, n_random=2)
    return [(name, repr(float(a)), repr(float(c)), repr(float(b)))
            for name in NAMED for a, c, b in zip(k11, k12, k22)
            if (name, repr(float(a)), repr(float(c)), repr(float(b))) not in DEFAULT_MP]


@pytest.mark.slow
@pytest.mark.parametrize("name,k11,k12,k22", _mp_grid())
def test_closed_form_matches_quadrature_at_50_digits_grid(name, k11, k12, k22):
    assert _mp_case(name, k11, k12, k22) <= mpmath.mpf(10) ** -45


@pytest.mark.parametrize("expr,name", [("Max(0, x)", "relu"), ("abs(x)", "abs"), ("erf(x)", "erf"),
                                       ("sin(x)", "sin"), ("cos(x)", "cos"), ("sign(x)", "sign"),
                                       ("Heaviside(x)*x + (1 - Heaviside(x))*x/5", "leaky_relu"),
                                       ("Max(x, 0) + 0.2*Min(x, 0)", "leaky_relu")])
def test_expression_activation_matches_named_closed_form(expr, name):
    # the expression path (sympy -> derivative -> quadrature) computes the same
    # kernel as the closed form: an end-to-end check of both
    x = np.random.default_rng(3).standard_normal((5, 3))
    k_expr = ne.mlp(2, expr, 1.4, 0.2).kernel(x)
    k_named = ne.mlp(2, name, 1.4, 0.2, **PARAMS.get(name, {})).kernel(x)
    for part in ("nngp", "ntk"):
        assert ne.kernels.scaled_error(getattr(k_expr, part), getattr(k_named, part)) <= 1e-12


def test_expression_high_precision_matches_float64():
    # the mpmath quadrature path of an expression activation (polar rule with
    # kink rays) against the float64 closed form of the same function
    x = np.random.default_rng(4).standard_normal((2, 2))
    khp = ne.mlp(1, "Max(0, x)", 1.2, 0.1).kernel(x, dps=20)
    k64 = ne.mlp(1, "relu", 1.2, 0.1).kernel(x)
    assert ne.kernels.scaled_error(k64.ntk, khp.ntk) <= 1e-14


def test_expression_parse_and_derivative():
    act = ne.activation("x*erf(x)")
    assert act.closed_form is None
    assert sympy.simplify(act.deriv_expr - (sympy.erf(X) + 2 * X * sympy.exp(-X**2) / sympy.sqrt(sympy.pi))) == 0
    t = np.linspace(-3, 3, 7)
    assert np.allclose(act(t), t * __import__("scipy.special").special.erf(t), rtol=1e-15, atol=0)


@pytest.mark.parametrize("text,kinks", [("Max(0, x)", (0.0,)), ("abs(x - 1)", (1.0,)), ("tanh(x)", ()),
                                        ("Min(x, 2) + Max(x, -1)", (-1.0, 2.0)), ("sign(x + 0.5)", (-0.5,))])
def test_kinks(text, kinks):
    assert kinks_of(parse_activation_expression(text)) == pytest.approx(kinks)


def test_named_finite_width_functions_match_their_expressions():
    t = np.array([-2.0, -0.3, 0.7, 1.9])
    for name in NAMES:
        act = make(name)
        f = sympy.lambdify(X, act.expr, _NUMPY_MODULES)
        df = sympy.lambdify(X, act.deriv_expr, _NUMPY_MODULES)
        assert np.allclose(act(t), f(t), rtol=1e-14, atol=1e-15), name
        assert np.allclose(act.derivative(t), np.broadcast_to(df(t), t.shape), rtol=1e-14, atol=1e-15), name


def test_dual_accepts_scalars_and_broadcasts():
    act = make("relu")
    v, vd = act.dual(F64, 1.0, 0.5, 2.0)
    assert np.ndim(v) == 0 and 0 < float(v) < np.sqrt(2) / 2
    v, vd = act.dual(F64, np.ones(3), np.array([1.0, 0.0, -1.0]), np.ones(3))
    # correlation 1: E[relu^2] = k/2 and P(both > 0) = 1/2; -1: 0 and 0
    assert v[0] == 0.5 and vd[0] == 0.5 and v[2] == 0.0 and vd[2] == 0.0


def test_sign_has_zero_derivative_and_identity_the_linear_map():
    k11, k12, k22 = correlation_cases(seed=5, n_random=4)
    assert np.all(make("sign").dual(F64, k11, k12, k22)[1] == 0)
    v, vd = make("identity").dual(F64, k11, k12, k22)
    assert np.array_equal(v, k12) and np.all(vd == 1)


# --------------------------------------------------------------------------- #
# smooth expressions: the Mehler-expansion path (ntk_equiv.hermite)
# --------------------------------------------------------------------------- #
def hermite_cases(seed: int, n_random: int, top: float):
    """(k11, k12, k22): the endpoint cases, then random ones with variances up
    to ``top`` (pre-activation std up to sqrt(top))."""
    k11, k12, k22 = correlation_cases(seed, 0)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.05, top, n_random), rng.uniform(0.05, top, n_random)
    rho = np.concatenate([[1.0, -1.0, 1 - 1e-9], rng.uniform(-1, 1, n_random - 3)])
    return (np.concatenate([k11, a]), np.concatenate([k12, rho * np.sqrt(a * b)]), np.concatenate([k22, b]))


@pytest.mark.parametrize("expr,name", [pytest.param("erf(x)", "erf", marks=pytest.mark.slow),  # ~3.4 s
                                       ("sin(x)", "sin"), ("cos(x)", "cos"), ("x", "identity"),
                                       ("2*x/2 + 0*exp(x)", "identity"), ("x*(1 + erf(x/sqrt(2)))/2", "gelu")])
def test_smooth_expression_duals_match_closed_forms_float64(expr, name):
    # the expression's dual maps (Hermite expansion, certified to ~5e-14 of the
    # entry's scale) against the named closed form, to the 1e-12,
    # at pre-activation std up to 3 and correlations +-1, 1 - 1e-9
    by_expr, named = ne.activation(expr), make(name)
    assert by_expr.closed_form is None and not by_expr.kinks
    k11, k12, k22 = hermite_cases(seed=6, n_random=40, top=9.0)
    got, want = by_expr.dual(F64, k11, k12, k22), named.dual(F64, k11, k12, k22)
    for which in (0, 1):
        err = scaled(named, F64, k11, k12, k22, got[which], want[which], which)
        assert err.max() <= 1e-12, (expr, which, err.argmax(), err.max())


def exact_mp_cases(bk, seed: int, n_random: int, top: float):
    """(k11, k12, k22) object arrays of *consistent* covariances at the working
    precision (``k12 = rho s1 s2`` from the same ``s1, s2`` as ``k11 = s1^2``):
    float64-rounded inputs can miss ``|rho| <= 1`` by an ulp, which moves a
    50-digit answer at 1e-17."""
    rng = np.random.default_rng(seed)
    s1, s2 = np.sqrt(rng.uniform(0.05, top, n_random)), np.sqrt(rng.uniform(0.05, top, n_random))
    rho = np.concatenate([[1.0, -1.0, 1 - 2.0**-30, 0.0], rng.uniform(-1, 1, n_random - 4)])
    mp = [[bk.ctx.mpf(float(v)) for v in arr] for arr in (s1, s2, rho)]
    k11 = np.array([a * a for a in mp[0]], dtype=object)
    k22 = np.array([b * b for b in mp[1]], dtype=object)
    k12 = np.array([r * a * b for a, b, r in zip(*mp)], dtype=object)
    return k11, k12, k22


@pytest.mark.parametrize("expr,name", [("erf(x)", "erf"), ("sin(x)", "sin"), ("cos(x)", "cos"),
                                       # ~9 s (the default run has gelu's two DEFAULT_MP cases)
                                       pytest.param("x*(1 + erf(x/sqrt(2)))/2", "gelu", marks=pytest.mark.slow)])
def test_smooth_expression_duals_match_closed_forms_50_digits(expr, name):
    # 1e-45: the 50-digit promise (the certificate is 10^-(dps+5) per entry)
    bk = backend(50)
    k11, k12, k22 = exact_mp_cases(bk, seed=8, n_random=6, top=3.0)
    by_expr, named = ne.activation(expr), make(name)
    ctx = bk.ctx
    got, want = by_expr.dual(bk, k11, k12, k22), named.dual(bk, k11, k12, k22)
    diag = [named.dual(bk, k, k, k) for k in (k11, k22)]
    for which in (0, 1):
        err = max(abs(g - w) / (ctx.sqrt(abs(p * q)) or 1)
                  for g, w, p, q in zip(got[which], want[which], diag[0][which], diag[1][which]))
        assert err <= ctx.mpf(10) ** -45, (expr, which, err)


def test_tanh_float64_against_independent_2d_rule():
    # no closed form: the Hermite expansion against the piecewise Gauss-Legendre
    # 2-D rule (independent code; ~1e-15 up to std 2.5), to the 1e-12 promise
    from ntk_equiv import quadrature

    act = ne.activation("tanh(x)")
    f, df = act._np
    k11, k12, k22 = hermite_cases(seed=9, n_random=12, top=4.0)
    got = act.dual(F64, k11, k12, k22)
    for which, h in ((0, f), (1, df)):
        ref = quadrature.gaussian_expectation_f64(h, h, (), (), k11, k12, k22)
        scale = np.sqrt(quadrature.gaussian_expectation_f64(h, h, (), (), k11, k11, k11)
                        * quadrature.gaussian_expectation_f64(h, h, (), (), k22, k22, k22))
        assert np.max(np.abs(got[which] - ref) / scale) <= 1e-12


@pytest.mark.slow  # ~2.6 s; the default run keeps test_tanh_float64_against_independent_2d_rule
def test_tanh_30_digits_against_1d_reductions():
    # dps=30: at correlation +-1 (v = +-(b/a) u) and 0 (independent) the 2-D
    # expectations are 1-D integrals, done by tanh-sinh in a context of our own
    # (independent of the Hermite expansion)
    bk = backend(30)
    ctx = mpmath.MPContext()
    ctx.dps = 50
    act = ne.activation("tanh(x)")
    k11, k12, k22 = exact_mp_cases(bk, seed=10, n_random=6, top=2.0)
    tol = mpmath.mpf(10) ** -25
    got = act.dual(bk, k11, k12, k22)
    def npdf(z):
        return ctx.exp(-z * z / 2) / ctx.sqrt(2 * ctx.pi)

    def line(h):  # E[h(Z)], Z standard normal, by tanh-sinh
        return ctx.quad(lambda z: h(z) * npdf(z), [-ctx.inf, 0, ctx.inf])

    for i, sign in ((0, 1), (1, -1), (3, 0)):  # rho = 1, -1, 0 (the other cases: test_tanh_30_digits_against_45_digits)
        a, b = ctx.sqrt(ctx.convert(k11[i])), ctx.sqrt(ctx.convert(k22[i]))
        if sign:
            ref = (line(lambda z, a=a, b=b, sign=sign: ctx.tanh(a * z) * ctx.tanh(sign * b * z)),
                   line(lambda z, a=a, b=b: ctx.sech(a * z) ** 2 * ctx.sech(b * z) ** 2))
        else:
            ref = (0, line(lambda z, a=a: ctx.sech(a * z) ** 2) * line(lambda z, b=b: ctx.sech(b * z) ** 2))
        for which in (0, 1):
            assert abs(ctx.convert(got[which][i]) - ref[which]) <= tol, (i, which)


@pytest.mark.slow
def test_tanh_30_digits_against_45_digits():
    # inside (and at 1 - 2^-30), against a higher-precision run (its tables cost ~20 s)
    bk, hi = backend(30), backend(45)
    act = ne.activation("tanh(x)")
    k11, k12, k22 = exact_mp_cases(bk, seed=10, n_random=6, top=2.0)
    got = act.dual(bk, k11, k12, k22)
    ref = act.dual(hi, *(np.array([hi.ctx.convert(v) for v in k], dtype=object) for k in (k11, k12, k22)))
    for which in (0, 1):
        assert max(abs(hi.ctx.convert(g) - r) for g, r in zip(got[which], ref[which])) <= hi.ctx.mpf(10) ** -25


@pytest.mark.parametrize("expr,sigma_w,dps,match", [
    ("exp(x**2)", 1.0, None, "does not settle"),       # E[phi^2] = +inf at variance >= 1/4
    ("exp(x**2)", 1.0, 20, "does not settle"),         # was a hang at dps=20
    ("Max(x, 0)*exp(x**2)", 1.0, None, "does not settle"),  # kinked: the 2-D rule cannot see the tail
    ("Max(x, 0)*exp(x**2)", 1.0, 20, "does not settle"),
])
def test_divergent_expectations_raise(expr, sigma_w, dps, match):
    x = np.random.default_rng(11).standard_normal((3, 2))
    with pytest.raises(ne.QuadratureError, match=match):
        ne.mlp(1, expr, sigma_w=sigma_w).kernel(x, dps=dps)


@pytest.mark.parametrize("expr", ["1/x", "tan(x)", "log(abs(x))", "log(x)"])
@pytest.mark.parametrize("dps", [None, 30])
def test_singular_activations_raise_in_the_quadrature_too(expr, dps):
    # the parser refuses these (ExpressionError); an Activation built directly
    # reaches the quadrature, which refuses them as well (sympy's singularities)
    from ntk_equiv.activations import Activation

    act = Activation(expr, parse_expr_unchecked(expr))
    bk = backend(dps)
    k = np.array([bk.scalar(1.0)], dtype=object if dps else float)
    with pytest.raises(ne.QuadratureError, match="singular on the real line"):
        act.dual_by_quadrature(bk, k, k * 0, k)


def parse_expr_unchecked(text):
    return sympy.sympify(text, locals={"x": X})


def test_numeric_checks_catch_a_pole_sympy_cannot_see():
    # the quadrature's own checks, without the static singularity check: a value
    # that is not finite at a node (1/x at 0), a pole between nodes (tan)
    from ntk_equiv import hermite
    from ntk_equiv.activations import Activation

    k = np.array([1.0])
    for text, match in (("1/x", "not finite"), ("tan(x)", None)):
        f, df = Activation(text, parse_expr_unchecked(text))._np

        def both(x, f=f, df=df):
            return f(x), df(x)

        if match:
            with pytest.raises(ne.QuadratureError, match=match):
                hermite.expectations_f64(both, k, k, k)
        else:  # E[tan^2] never settles: no level resolves it, no number comes back
            assert hermite.expectations_f64(both, k, k, k) is None


def test_convergent_growth_is_exact_or_refused():
    # exp(x^2) at variance < 1/4: E[e^{u^2} e^{v^2}] = ((1-2k11)(1-2k22) - 4k12^2)^{-1/2}
    # and, by Price's theorem, Vdot = dV/dk12 = 4 k12 (...)^{-3/2}; near 1/4 the
    # integrand decays too slowly for the rule, which must raise, not round
    act = ne.activation("exp(x**2)")
    k11, k22, rho = np.array([0.1, 0.05, 0.12]), np.array([0.15, 0.1, 0.12]), np.array([0.5, -1.0, 1.0])
    k12 = rho * np.sqrt(k11 * k22)
    q = (1 - 2 * k11) * (1 - 2 * k22) - 4 * k12**2
    v, vd = act.dual(F64, k11, k12, k22)
    assert np.max(np.abs(v - q**-0.5) / q**-0.5) <= 1e-12
    assert np.max(np.abs(vd - 4 * k12 * q**-1.5) / (4 * np.sqrt(k11 * k22) * q**-1.5)) <= 1e-12
    with pytest.raises(ne.QuadratureError):
        act.dual(F64, np.array([0.2401]), np.array([0.2]), np.array([0.2401]))


# --------------------------------------------------------------------------- #
# kinked expressions (kinks at 0): the float64 polar rule (ntk_equiv.quadrature)
# --------------------------------------------------------------------------- #

#: Kinked expressions and the closed form of the same function: (expr, name,
#: params, factor, which) with phi_expr = factor * phi_named, or (for
#: ``Heaviside``, the step) the dual of phi_expr equal to the named Vdot.
KINKED = [("Max(x, 0)", "relu", {}, 1.0), ("Abs(x)", "abs", {}, 1.0), ("sign(x)", "sign", {}, 1.0),
          ("Max(x, 0) + 0.2*Min(x, 0)", "leaky_relu", {"alpha": 0.2}, 1.0),
          ("Max(x, 0) + 0.1*x", "leaky_relu", {"alpha": 1 / 11}, 1.1),
          ("Heaviside(x)*x + (1 - Heaviside(x))*x/5", "leaky_relu", {"alpha": 0.2}, 1.0)]


def gapped_cases(seed: int, n_random: int):
    """(k11, k12, k22, lo, hi): correlation_cases plus correlations 1 - 10^-j and
    -1 + 10^-j (j = 1..16) and variances from 1e-6 to 9, with the Cauchy-Schwarz
    gaps ``lo = sqrt(k11 k22) - k12``, ``hi = sqrt(k11 k22) + k12`` computed at 60
    digits from the float inputs (what the kernel state carries)."""
    k11, k12, k22 = correlation_cases(seed, n_random)
    eps = 10.0 ** -np.arange(1, 17)
    for sgn in (1.0, -1.0):
        a, b = np.full(eps.size, 1.7), np.full(eps.size, 0.3)
        k11, k22 = np.concatenate([k11, a]), np.concatenate([k22, b])
        k12 = np.concatenate([k12, sgn * (1 - eps) * np.sqrt(a * b)])
    for var in (1e-6, 1e-3, 4.0, 9.0):
        k11 = np.concatenate([k11, [var, var, var, var]])
        k22 = np.concatenate([k22, [var, 1.0, 2 * var, var]])
        k12 = np.concatenate([k12, [0.3 * var, 0.99 * np.sqrt(var), -(1 - 1e-12) * var * np.sqrt(2), var]])
    ctx = mpmath.MPContext()
    ctx.dps = 60
    s = [ctx.sqrt(ctx.mpf(a) * ctx.mpf(b)) for a, b in zip(k11, k22)]
    lo = np.array([float(si - ctx.mpf(c)) for si, c in zip(s, k12)])
    hi = np.array([float(si + ctx.mpf(c)) for si, c in zip(s, k12)])
    return k11, k12, k22, lo, hi


def _kinked_errors(expr, name, params, factor, ks):
    """Scaled errors of the polar rule's (V, Vdot) for ``expr`` against the closed
    form of ``name``; asserts that the polar rule settled every entry itself."""
    k11, k12, k22, lo, hi = ks
    act = ne.activation(expr)
    f, df = act._np
    (v, vd), unsettled = quadrature.polar_expectations_f64(lambda x: (f(x), df(x)), k11, k12, k22, det=lo * hi)
    assert not unsettled.any(), (expr, np.flatnonzero(unsettled))
    named = ne.activation(name, **params)
    want = named.dual_gaps(F64, k11, k12, k22, lo, hi)
    errs = []
    for which, got in ((0, v), (1, vd)):
        errs.append(scaled(named, F64, k11, k12, k22, factor**2 * want[which], got, which))
    return max(float(e.max()) for e in errs)


@pytest.mark.parametrize("expr,name,params,factor", KINKED)
def test_kinked_expression_polar_rule_matches_closed_form(expr, name, params, factor):
    # the 1e-12 of the entry's scale, near correlation +-1 (gaps carried
    # to the rule as det = lo hi) and at variances 1e-6..9; the rule integrates
    # these piecewise polynomials exactly, so ~1e-15 is what it measures
    assert _kinked_errors(expr, name, params, factor, gapped_cases(seed=7, n_random=30)) <= 1e-12


def test_heaviside_expression_is_the_relu_derivative_dual():
    # E[H(u) H(v)] = (pi - theta) / (2 pi): relu's Vdot; H' = 0 (Dirac delta dropped)
    k11, k12, k22, lo, hi = gapped_cases(seed=8, n_random=10)
    v, vd = ne.activation("Heaviside(x)").dual_by_quadrature(F64, k11, k12, k22, det=lo * hi)
    want = make("relu").dual_gaps(F64, k11, k12, k22, lo, hi)[1]
    assert np.max(np.abs(v - want)) <= 1e-12 * 0.5 and np.all(vd == 0)


@settings(max_examples=40)
@given(st.floats(1e-4, 9.0), st.floats(1e-4, 9.0), st.floats(-17.0, np.log10(2.0)), st.sampled_from(KINKED))
def test_kinked_polar_rule_hypothesis(k11, k22, log_gap, case):
    # lo = s g, hi = 2 s - lo, k12 = s - lo: any correlation, down to 1e-17 from +-1
    s = np.sqrt(k11 * k22)
    lo = s * 10.0**log_gap
    hi = 2 * s - lo
    ks = tuple(np.array([x]) for x in (k11, s - lo, k22, lo, hi))
    assert _kinked_errors(*case, ks) <= 1e-12


@pytest.mark.parametrize("expr", ["Max(x, 0)*tanh(x)", "Abs(x)*erf(x)", "Max(x, 0)*sin(3*x)", "Abs(x)*exp(-x**2)"])
def test_kinked_non_polynomial_expression_at_correlation_zero(expr):
    # an independent 1-D reduction: at k12 = 0, E[f(u) f(v)] = E[f(u)] E[f(v)],
    # each by tanh-sinh quadrature at 30 digits (own mpmath context) split at the kink
    ctx = mpmath.MPContext()
    ctx.dps = 30
    act = ne.activation(expr)
    f, df = act._np
    f_mp, df_mp = act.mp_functions(ctx)
    k11, k22 = np.array([0.3, 2.25, 6.0]), np.array([1.0, 2.25, 0.05])

    def mean(h, var, power=1):
        sd = ctx.sqrt(var)
        return float(ctx.quad(lambda z: h(z * sd) ** power * ctx.npdf(z), [-ctx.inf, 0, ctx.inf]))

    (v, vd), unsettled = quadrature.polar_expectations_f64(lambda x: (f(x), df(x)), k11, 0 * k11, k22)
    assert not unsettled.any()
    for got, h in ((v, f_mp), (vd, df_mp)):
        for i in range(k11.size):
            want = mean(h, k11[i]) * mean(h, k22[i])
            scale = np.sqrt(mean(h, k11[i], 2) * mean(h, k22[i], 2))
            assert abs(got[i] - want) <= 1e-12 * scale, (expr, i, got[i], want)


def test_unsettled_entries_fall_back_to_the_cartesian_rule():
    # tanh(4 x) at std 2.45 varies on a scale the polar rules do not settle within
    # (96, 72) nodes: that entry is flagged and dual_by_quadrature takes the old
    # rule's value for it, the others stay polar
    act = ne.activation("Max(x, 0)*tanh(4*x)")
    f, df = act._np
    k11, k12, k22 = np.array([0.5, 6.0]), np.array([0.1, 0.0]), np.array([1.0, 6.0])
    (v, vd), unsettled = quadrature.polar_expectations_f64(lambda x: (f(x), df(x)), k11, k12, k22)
    assert unsettled.tolist() == [False, True]
    got = act.dual_by_quadrature(F64, k11, k12, k22)
    old = quadrature.gaussian_expectation_f64(f, f, (0.0,), (0.0,), k11[1:], k12[1:], k22[1:])
    assert got[0][0] == v[0] and got[1][0] == vd[0] and got[0][1] == old[0]


@pytest.mark.slow
@pytest.mark.parametrize("expr,name,params,factor", KINKED)
def test_kinked_expression_polar_rule_grid(expr, name, params, factor):
    assert _kinked_errors(expr, name, params, factor, gapped_cases(seed=9, n_random=3000)) <= 1e-12


# --------------------------------------------------------------------------- #
# the catalogue (ntk_equiv.activations.CATALOGUE): one record per name
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", NAMES)
def test_catalogue_record_is_consistent(name):
    # declared kinks = the expression's; the constructor exported by ntk_equiv builds this
    # activation; the parameters are the declared ones; declared homogeneity holds
    record = CATALOGUE[name]
    act = make(name)
    assert act.kinks == record.kinks == kinks_of(act.expr)
    layer = getattr(ne, record.constructor)(**PARAMS.get(name, {}))
    assert isinstance(layer, ne.Act) and layer.phi == act and record.constructor in ne.__all__
    assert dict(act.params) == {**dict(record.parameters), **PARAMS.get(name, {})}
    assert act.uses_variances == (record.closed_form is None or record.uses_variances)
    if record.homogeneous:
        p, dp = record.homogeneous
        t = np.linspace(-3, 3, 13)
        for r in (0.5, 3.0):
            assert np.allclose(act(r * t), r**p * act(t), rtol=1e-15, atol=0)
            assert np.allclose(act.derivative(r * t), r**dp * act.derivative(t), rtol=1e-15, atol=0)
    if not act.uses_variances:  # the closed form must not need k11, k22
        k11, k12, k22 = correlation_cases(seed=11, n_random=4)
        s = np.sqrt(k11 * k22)
        got = act.closed_form(F64, None, k12, None, s - k12, s + k12)
        assert all(np.array_equal(g, w) for g, w in zip(got, act.closed_form(F64, k11, k12, k22, s - k12, s + k12)))


def test_names_are_the_catalogue_and_named_has_the_closed_forms():
    assert set(NAMES) == set(CATALOGUE) >= {"tanh", "sigmoid", "softplus", "silu", "gelu", "elu", "relu6", "hard_tanh"}
    assert NAMED == tuple(n for n in NAMES if make(n).closed_form is not None)
    assert "gelu" in NAMED and "tanh" not in NAMED


def test_named_functions_are_finite_far_out():
    # the records' numpy functions where the generated ones would overflow (exp(800))
    t = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for name in ("sigmoid", "softplus", "silu", "gelu", "elu", "tanh"):
            act = make(name)
            assert np.all(np.isfinite(act(t))) and np.all(np.isfinite(act.derivative(t))), name


#: Each new name against the same function written another way (the
#: expression path, generated numpy functions): the kernels of a depth-2 MLP agree to 1e-12.
EQUIVALENT = [("tanh", "2*sigmoid(2*x) - 1"), ("sigmoid", "1/(1 + exp(-x))"), ("softplus", "x/2 + log(2*cosh(x/2))"),
              ("silu", "x/(1 + exp(-x))"), ("gelu", "x*(1 + erf(x/sqrt(2)))/2"),
              ("elu", "Max(x, 0) + 0.5*(exp(Min(x, 0)) - 1)"), ("relu6", "Max(x, 0) - Max(x - 6, 0)"),
              ("hard_tanh", "Max(x + 1, 0) - Max(x - 1, 0) - 1")]


@pytest.mark.parametrize("name,expr", EQUIVALENT)
def test_named_activation_equals_an_equivalent_expression(name, expr):
    x = np.random.default_rng(12).standard_normal((3 if not make(name).kinks else 2, 2))
    k_named = ne.mlp(2, name, 1.4, 0.2, **PARAMS.get(name, {})).kernel(x)
    k_expr = ne.mlp(2, expr, 1.4, 0.2).kernel(x)
    for part in ("nngp", "ntk"):
        assert ne.kernels.scaled_error(getattr(k_named, part), getattr(k_expr, part)) <= 1e-12, (name, part)


def _line(ctx, h, kinks=()):
    """``E[h(Z)]``, ``Z`` standard normal, by tanh-sinh split at ``kinks`` (in ``Z``'s units)."""
    return ctx.quad(lambda z: h(z) * ctx.exp(-z * z / 2) / ctx.sqrt(2 * ctx.pi), [-ctx.inf, *sorted(kinks), ctx.inf])


def _one_d_references(act, ctx, a: float, b: float) -> dict:
    """At correlation +1, -1 (``v = +-(b/a) u``) and 0 (independent) the dual maps
    are 1-D Gaussian integrals: tanh-sinh in ``ctx``, split at the kinks, on the
    expression's own mpmath functions (independent of the numpy functions, the
    Hermite expansion and the 2-D rules)."""
    f, df = act.mp_functions(ctx)
    a, b = ctx.mpf(a), ctx.mpf(b)
    cuts = [k / a for k in act.kinks] + [k / b for k in act.kinks] + [-k / b for k in act.kinks]
    out = {}
    for rho in (1, -1):
        out[rho] = tuple(_line(ctx, lambda z, h=h: h(a * z) * h(rho * b * z), cuts) for h in (f, df))
    out[0] = tuple(_line(ctx, lambda z, h=h: h(a * z), cuts[:len(act.kinks)])
                   * _line(ctx, lambda z, h=h: h(b * z), [k / b for k in act.kinks]) for h in (f, df))
    return out


NEW = ("gelu", "tanh", "sigmoid", "softplus", "silu", "elu", "relu6", "hard_tanh")


@pytest.mark.parametrize("name", NEW)
def test_new_names_float64_against_1d_reductions(name):
    ctx = mpmath.MPContext()
    ctx.dps = 20
    act = make(name)
    # dyadic standard deviations: k11 k22 = k12^2 exactly in float64 (correlation exactly +-1; with
    # 1.9 and 0.4 the rounded products give det = 1e-16, an angle of 1e-8, which moves a jump's dual by 1e-9)
    for a, b in ((1.875, 0.375),):
        ref = _one_d_references(act, ctx, a, b)
        k11, k22 = np.full(3, a * a), np.full(3, b * b)
        k12 = np.array([a * b, -a * b, 0.0])
        got = act.dual(F64, k11, k12, k22)
        for which in (0, 1):
            diag = [float(_line(ctx, lambda z, h=act.mp_functions(ctx)[which], s=s: h(s * z) ** 2,
                                [k / s for k in act.kinks])) for s in (a, b)]
            scale = float(np.sqrt(diag[0] * diag[1])) or 1.0
            for i, rho in enumerate((1, -1, 0)):
                err = abs(got[which][i] - float(ref[rho][which])) / scale
                assert err <= 1e-12, (name, a, b, rho, which, err)


def _clip_conditional(ctx, low, high, m, s):
    """``(E[clip(y)], P(low < y < high))`` for ``y ~ N(m, s^2)``, ``clip`` to
    ``[low, high]`` (``None``: unbounded): ``clip = low + (y - low)_+ - (y - high)_+``
    and ``E[(y - c)_+] = (m - c) Phi((m - c)/s) + s phi((m - c)/s)``."""
    def plus(c):
        t = (m - c) / s
        return (m - c) * ctx.ncdf(t) + s * ctx.npdf(t)
    mean = low + plus(low) - plus(high)
    return mean, ctx.ncdf((high - m) / s) - ctx.ncdf((low - m) / s)


@pytest.mark.parametrize("name,low,high", [("relu6", 0, 6), ("hard_tanh", -1, 1)])
def test_clipped_names_float64_against_a_conditional_1d_reference(name, low, high):
    # any correlation: E[f(u) f(v)] = E_u[f(u) E[f(v) | u]], the inner expectation of the
    # piecewise-linear clip in closed form (Phi, phi), the outer by tanh-sinh split at the kinks
    ctx = mpmath.MPContext()
    ctx.dps = 20
    act = make(name)
    f, df = act.mp_functions(ctx)
    rng = np.random.default_rng(13)
    a, b, rho = rng.uniform(0.3, 2.5, 1), rng.uniform(0.3, 2.5, 1), rng.uniform(-0.95, 0.95, 1)
    got = act.dual(F64, a * a, rho * a * b, b * b)
    for i in range(1):
        sa, sb, r = (ctx.mpf(float(v)) for v in (a[i], b[i], rho[i]))
        s = sb * ctx.sqrt(1 - r * r)
        inner = lambda z: _clip_conditional(ctx, low, high, r * sb * z, s)  # noqa: E731 - v | u = sa z
        ref = (_line(ctx, lambda z: f(sa * z) * inner(z)[0], [low / sa, high / sa]),
               _line(ctx, lambda z: df(sa * z) * inner(z)[1], [low / sa, high / sa]))
        for which in (0, 1):
            scale = float(ctx.sqrt(abs(_line(ctx, lambda z: (f, df)[which](sa * z) ** 2, [low / sa, high / sa])
                                       * _line(ctx, lambda z: (f, df)[which](sb * z) ** 2, [low / sb, high / sb]))))
            assert abs(got[which][i] - float(ref[which])) <= 1e-12 * scale, (name, i, which)


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_new_names_30_digits_against_1d_reductions(name):
    # the 30-digit path (the closed form of gelu, Hermite for the smooth ones, the mpmath rules for
    # kinked ones) at correlation +1, -1, 0, to 1e-25; ~3-6 s each (the default run has gelu's
    # 50-digit cases and test_tanh_30_digits_against_1d_reductions for the Hermite path)
    bk = backend(30)
    ctx = mpmath.MPContext()
    ctx.dps = 45
    act = make(name)
    a, b = 0.75, 1.25
    ref = _one_d_references(act, ctx, a, b)
    k = [bk.ctx.mpf(v) for v in (a, b)]
    k11, k22 = (np.array([s * s] * 3, dtype=object) for s in k)
    k12 = np.array([k[0] * k[1], -k[0] * k[1], bk.ctx.mpf(0)], dtype=object)
    got = act.dual(bk, k11, k12, k22)
    for which in (0, 1):
        for i, rho in enumerate((1, -1, 0)):
            assert abs(ctx.convert(got[which][i]) - ref[rho][which]) <= mpmath.mpf(10) ** -25, (name, rho, which)


def test_sigmoid_is_a_function_of_expressions():
    act = ne.activation("sigmoid(2*x)")
    t = np.array([-800.0, -1.0, 0.0, 0.5, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.allclose(act(t), scipy.special.expit(2 * t), rtol=1e-15, atol=1e-300)
    assert sympy.simplify(act.expr - (1 + sympy.tanh(X)) / 2) == 0


@pytest.mark.parametrize("text,hint", [("tanh", "'tanh(x)'"), ("x + exp", "'exp(x)'"), ("2*sigmoid", "'sigmoid(x)'")])
def test_a_bare_function_name_in_an_expression_suggests_the_call(text, hint):
    with pytest.raises(ne.ExpressionError, match=re.escape(hint)):
        parse_activation_expression(text)


@pytest.mark.parametrize("text,hint", [("sigmod", "'sigmoid'"), ("Relu", "'relu'"), ("hardtanh", "'hard_tanh'"),
                                       ("gleu", "'gelu'"), ("swish", "'silu'"), ("tanhh", "'tanh'")])
def test_an_unknown_name_suggests_the_nearest_names(text, hint):
    with pytest.raises(ne.UnknownActivationError, match=hint):
        ne.activation(text)


def test_a_call_of_a_named_activation_in_an_expression_says_so():
    with pytest.raises(ne.ExpressionError, match="named activation"):
        ne.activation("relu(x) + 1")
    with pytest.raises(ne.ExpressionError, match="did you mean 'tanh'"):
        ne.activation("tnah(x)")


def test_elu_parameter_is_checked():
    assert make("elu").params == (("alpha", 0.5),) and ne.activation("elu").params == (("alpha", 1.0),)
    with pytest.raises(ne.ParameterError, match="alpha"):
        ne.activation("elu", alpha=-1.0)
    with pytest.raises(ne.ParameterError, match="takes only alpha"):
        ne.Act("elu", beta=1.0)
    with pytest.raises(ne.ParameterError, match="no parameters"):
        ne.activation("gelu", alpha=1.0)


def test_claim_lists_follow_the_catalogue():
    # the C1 check's list of homogeneous activations is the catalogue's (one place)
    from ntk_equiv.activations import HOMOGENEOUS
    from ntk_equiv.claims import load

    load()  # the statements first: the check modules register against them
    from ntk_equiv.claims import kernel_checks

    assert kernel_checks.HOMOGENEOUS == HOMOGENEOUS
    assert set(kernel_checks.SMOOTH) <= set(NAMED) - set(HOMOGENEOUS)


@pytest.mark.parametrize("text", ["Max(0, cos(x))", "Abs(sin(x))", "sign(sin(3*x))"])
def test_infinitely_many_kinks_are_refused(text):
    # the kinks of cos at pi/2 + k pi: not a finite set; treated as smooth they gave a wrong number
    act = ne.activation(text)
    with pytest.raises(ne.QuadratureError, match="not a finite set"):
        ne.mlp(1, act, 1.2, 0.1).kernel(np.array([[0.3], [1.1]]))
