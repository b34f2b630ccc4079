"""The layer protocol (issue 16): every composition of layers gets its exact
infinite-width kernel or an ArchitectureError raised before any numerical
work, never a wrong number. One test per rule; the issue's table row by row.

Independent references are plain numpy networks drawn here (no library code
on the network side) and, for dual maps, mpmath quadratures written here.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats

import ntk_equiv as ne
from ntk_equiv import kernels, signals
from ntk_equiv.claims import load
from ntk_equiv.errors import ArchitectureError, NtkEquivError

load()  # the statements first: the check modules register against them
from ntk_equiv.claims.kernel_checks import residual_architecture  # noqa: E402

RNG = np.random.default_rng(1616)
X = RNG.standard_normal((4, 3))
IMAGES = RNG.standard_normal((3, 5, 2))


# --------------------------------------------------------------------------- #
# plain-numpy wide networks (NTK parameterisation, all weights i.i.d. N(0, 1))
# --------------------------------------------------------------------------- #
def _dense(rng, h, n_out, sw, sb):
    w = rng.standard_normal((h.shape[-1], n_out))
    return sw / np.sqrt(h.shape[-1]) * (h @ w) + sb * rng.standard_normal(n_out)


def _readout_nngp(h, sw, sb):
    # the readout's output covariance given the last hidden layer: sw^2 <h, h'> / n + sb^2
    return sw**2 * (h @ h.T) / h.shape[-1] + sb**2


def monte_carlo(draw, seeds: int):
    """Mean and standard error over ``seeds`` independent networks of the
    per-network kernel matrix ``draw(rng)``."""
    samples = np.array([draw(np.random.default_rng([16, s])) for s in range(seeds)])
    return samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(seeds)


def mc_tolerance(se, seeds: int, entries: int, width: int, scale):
    """Student-t quantile for a two-sided false alarm < 1e-6 over all ``entries``
    (Bonferroni) times the standard error, plus the finite-width bias, which is
    O(1/width) for these kernels (the fluctuation of the previous layer's kernel
    enters the next layer's at second order); 10/width of the entry's scale
    bounds it with room at the widths used here."""
    t = scipy.stats.t.ppf(1 - 1e-6 / (2 * entries), seeds - 1)
    return t * se + 10.0 / width * scale


def _scale(k):
    d = np.sqrt(np.diag(k))
    return np.outer(d, d)


# --------------------------------------------------------------------------- #
# the error type and the check before computing
# --------------------------------------------------------------------------- #
def test_architecture_error_is_a_library_value_error():
    assert issubclass(ArchitectureError, NtkEquivError) and issubclass(ArchitectureError, ValueError)


#: The issue's table: compositions whose kernel was silently wrong, refused. (erf-after-erf and
#: erf-after-relu are computed now: tests/test_composites.py; relu(cos) has infinitely many kinks.)
REFUSED = {
    "relu-after-cos": (ne.serial(ne.Dense(1.2, 0.3), ne.Cos(), ne.Relu(), ne.Dense()), X, "Act('relu')"),
    "relu-after-layernorm-of-relu": (ne.serial(ne.Dense(), ne.Relu(), ne.LayerNorm(), ne.Relu(), ne.Dense()), X,
                                     "Act('relu')"),
    "relu-after-post-activation-residual": (
        ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.residual([ne.Dense()]), ne.Relu(), ne.Dense()), X, "Act('relu')"),
    "relu-after-pooled-relu": (
        ne.serial(ne.Conv(3, sigma_w=1.3, sigma_b=0.1), ne.Relu(), ne.AvgPool(2), ne.Relu(), ne.Flatten(), ne.Dense()),
        IMAGES, "Act('relu')"),
    "relu-after-global-pooled-relu": (
        ne.serial(ne.Conv(3, sigma_w=1.3, sigma_b=0.1), ne.Relu(), ne.GlobalAvgPool(), ne.Relu(), ne.Dense()),
        IMAGES, "Act('relu')"),
    "residual-on-raw-input": (ne.serial(ne.residual([ne.Dense()]), ne.Relu(), ne.Dense()), X, "residual("),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_table_rows_are_refused_before_any_numerical_work(name, monkeypatch):
    arch, x, layer = REFUSED[name]

    def no_work(*args, **kwargs):  # pragma: no cover - reached only if the check comes too late
        raise AssertionError("kernel() computed before checking the architecture")

    monkeypatch.setattr(kernels, "evaluate", no_work)
    with pytest.raises(ArchitectureError) as info:
        arch.kernel(x)
    msg = str(info.value)
    assert layer in msg and "layer " in msg and ("insert" in msg or "move" in msg), msg


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_finite_width_networks_still_run_refused_architectures(name):
    arch, x, _ = REFUSED[name]
    out = arch.init(8, seed=0).apply(x)
    assert np.all(np.isfinite(out))


def test_the_message_says_where_in_nested_blocks():
    arch = ne.serial(ne.Dense(), ne.residual([ne.Dense(), ne.Relu(), ne.LayerNorm(), ne.Relu(), ne.Dense()]), ne.Dense())
    with pytest.raises(ArchitectureError, match=r"layer 2 of 3, in the block of residual.*layer 4 of 5, Act\('relu'\)"):
        arch.kernel(X)


def test_the_check_runs_on_kinds_only():
    sig = ne.serial(ne.Dense(), ne.Relu()).check_architecture()
    assert sig.kind is signals.Kind.ELEMENTWISE
    assert ne.serial(ne.Dense(), ne.Relu(), ne.Dense()).check_architecture() == signals.GAUSSIAN


# --------------------------------------------------------------------------- #
# the data prefix: layers before the first Dense/Conv act exactly on the inputs
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dps", [None, 30])
def test_relu_on_the_raw_input_is_relu_of_the_data(dps):
    # the row: 0.5 (a Gaussian average) before; relu(1)^2 = 1 exactly
    k = ne.serial(ne.Relu(), ne.Dense()).kernel(np.array([[1.0]]), dps=dps)
    assert k.nngp[0, 0] == 1 and k.ntk[0, 0] == 1


def _layernorm(x, eps=1e-12):
    xc = x - x.mean(axis=-1, keepdims=True)
    return xc / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)


def test_layernorm_on_raw_data_uses_the_datas_own_channel_means():
    x = X + np.array([2.0, -1.0, 0.5])  # channel means far from 0
    k = ne.serial(ne.LayerNorm(), ne.Dense(1.3, 0.2)).kernel(x)
    y = _layernorm(x)
    ref = 1.69 * (y @ y.T) / 3 + 0.04
    assert np.max(np.abs(k.nngp - ref)) <= 4 * np.finfo(float).eps * np.max(ref)
    assert np.max(np.abs(k.ntk - ref)) <= 4 * np.finfo(float).eps * np.max(ref)  # Theta_in = 0 at the input


def test_data_prefix_at_high_precision_against_mpmath():
    import mpmath
    ctx = mpmath.MPContext()
    ctx.dps = 40
    x = X + np.array([2.0, -1.0, 0.5])
    k = ne.serial(ne.LayerNorm(), ne.Erf(), ne.Dense()).kernel(x, dps=30)
    rows = []
    for r in x:
        v = [ctx.mpf(float(t)) for t in r]
        m = sum(v) / 3
        c = [t - m for t in v]
        sd = ctx.sqrt(sum(t * t for t in c) / 3 + ctx.mpf(1e-12))
        rows.append([ctx.erf(t / sd) for t in c])
    for i in range(len(x)):
        for j in range(len(x)):
            ref = sum(a * b for a, b in zip(rows[i], rows[j])) / 3
            assert abs(k.nngp[i, j] - ref) < ctx.mpf(10) ** -28


def test_pooling_and_flatten_in_the_data_prefix_are_exact():
    imgs = RNG.standard_normal((3, 6, 2))
    k = ne.serial(ne.AvgPool(2), ne.Relu(), ne.Flatten(), ne.Dense()).kernel(imgs).nngp
    pooled = np.maximum((imgs[:, :-1] + imgs[:, 1:]) / 2, 0).reshape(3, -1)
    ref = pooled @ pooled.T / pooled.shape[1]
    assert np.max(np.abs(k - ref)) <= 8 * np.finfo(float).eps * np.max(ref)


class _Square(ne.Layer):
    """A parameter-free custom layer that declares it may act on the data."""

    def signal_out(self, signal):
        if signal.kind is signals.Kind.DATA:
            return signal
        return super().signal_out(signal)

    def kernel_fn(self, state, bk):  # pragma: no cover - only on the data here
        raise NotImplementedError

    def apply(self, params, x):
        return x * x, x


def test_a_custom_layer_in_the_data_prefix():
    k = ne.serial(_Square(), ne.Dense()).kernel(X).nngp
    ref = (X * X) @ (X * X).T / 3
    assert np.max(np.abs(k - ref)) <= 4 * np.finfo(float).eps * np.max(ref)
    with pytest.raises(ArchitectureError, match="_Square.*apply_to_data"):  # no high-precision apply
        ne.serial(_Square(), ne.Dense()).kernel(X, dps=30)


# --------------------------------------------------------------------------- #
# exact composites: act-after-act and LayerNorm-after-act (16.2)
# --------------------------------------------------------------------------- #
def test_relu_after_relu_is_relu():
    # the row (half the true kernel before): relu(relu z) = relu z
    x = RNG.standard_normal((6, 3))
    two = ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.Relu(), ne.Dense()).kernel(x)
    one = ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.Dense()).kernel(x)
    for part in ("nngp", "ntk"):
        assert np.max(np.abs(getattr(two, part) - getattr(one, part))) <= 1e-15 * np.max(np.abs(getattr(one, part)))


IDENTITIES = [("relu", "relu"), ("relu", "abs"), ("abs", "relu"), ("abs", "abs"), ("identity", "erf"),
              ("erf", "identity"), ("leaky_relu", "leaky_relu"), ("relu", "leaky_relu"), ("leaky_relu", "relu"),
              ("sign", "erf"), ("sign", "sign"), ("sign", "leaky_relu")]


@pytest.mark.parametrize("outer, inner", IDENTITIES)
def test_named_identities_of_compose_hold_pointwise(outer, inner):
    # each closed-form identity used by compose() is checked on a grid, function and derivative
    from ntk_equiv.composite import compose

    def act(name, alpha):
        return ne.activation(name, alpha=alpha) if name == "leaky_relu" else ne.activation(name)

    f, g = act(outer, 0.3), act(inner, 0.2)
    h = compose(f, g)
    assert h.closed_form is not None, h
    t = np.concatenate([np.linspace(-4, 4, 801), [-1e-300, 1e-300]])
    t = t[t != 0]
    assert np.max(np.abs(h(t) - f(g(t))) / np.maximum(np.abs(f(g(t))), 1e-300)) <= 4 * np.finfo(float).eps
    assert np.max(np.abs(h.derivative(t) - f.derivative(g(t)) * g.derivative(t))) <= 1e-15


def _whitened(k11, k12, k22):
    a = np.sqrt(k11)
    return a, k12 / a, np.sqrt(max(k11 * k22 - k12 * k12, 0.0)) / a


def _gauss_hermite(f, k11, k12, k22, nodes=300):
    """``E[f(u) f(v)]`` by a product Gauss-Hermite rule (f entire; for erf(erf) at variance
    ~1.5, 200 -> 300 nodes changes the value by 7e-13 and 300 agrees with a 40-digit nested
    mpmath quadrature to 5e-16)."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2 * np.pi)
    a, c, s = _whitened(k11, k12, k22)
    return float(np.sum(w[:, None] * w[None, :] * f(a * z[:, None]) * f(c * z[:, None] + s * z[None, :])))


def _quadrant(f, k11, k12, k22):
    """``E[f(u) f(v)]`` for ``f`` zero on ``x <= 0``: the integral over ``u, v > 0`` by
    scipy's adaptive QUADPACK in the whitened coordinates (tails beyond 12: e^-72)."""
    import scipy.integrate as si

    a, c, s = _whitened(k11, k12, k22)

    def pdf(z):
        return np.exp(-z * z / 2) / np.sqrt(2 * np.pi)

    if s <= 1e-12 * np.sqrt(k22):  # a self pair: v = u
        return si.quad(lambda z: f(a * z) * f(c * z) * pdf(z), 0, 12, epsabs=1e-17, epsrel=1e-14, limit=200)[0]
    return si.dblquad(lambda z2, z1: f(a * z1) * f(c * z1 + s * z2) * pdf(z1) * pdf(z2), 0, 12,
                      lambda z1: -c * z1 / s, 12, epsabs=1e-17, epsrel=1e-14)[0]


def _composite_reference(x, sw1, sb1, sw2, sb2, dual):
    """Kernels of serial(Dense(sw1, sb1), <composite phi>, Dense(sw2, sb2)) from the dual maps
    ``dual(k11, k12, k22) -> (V, Vdot)`` (docs/theory.md C1)."""
    k1 = sw1**2 * (x @ x.T) / x.shape[1] + sb1**2
    n = len(x)
    v, vd = np.empty((n, n)), np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            v[i, j], vd[i, j] = v[j, i], vd[j, i] = dual(k1[i, i], k1[i, j], k1[j, j])
    nngp = sw2**2 * v + sb2**2
    return nngp, sw2**2 * vd * k1 + nngp


def _fused_kernel(arch, x, dps=None):
    """The kernel with the generic composite (composite.compose), run past the protocol's
    check (which accepts it: tests/test_composites.py)."""
    prefix, rest = ne.layers.data_prefix(arch)
    return kernels.evaluate(ne.Serial(*rest).kernel_fn, x, dps=dps)


def _erf(t):
    return scipy.special.erf(t)


def _derf(t):
    return 2 / np.sqrt(np.pi) * np.exp(-t * t)


#: float64 accuracy promised by the expression machinery (README "Extending": Hermite ~5e-14,
#: quadrature ~1e-12 of the entry's scale); the references here are good to ~1e-15.
F64_TOL = 1e-12


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # epsrel 1e-14 is beyond float64 sums
@pytest.mark.parametrize("case", ["erf-erf", "relu-erf"])
def test_composites_in_float64_against_independent_quadratures(case):
    x = RNG.standard_normal((2, 2))
    if case == "erf-erf":  # the row: 21% off before
        arch = ne.serial(ne.Dense(1.2, 0.3), ne.Erf(), ne.Erf(), ne.Dense(1.1, 0.1))

        def dual(k11, k12, k22):
            return (_gauss_hermite(lambda t: _erf(_erf(t)), k11, k12, k22),
                    _gauss_hermite(lambda t: _derf(_erf(t)) * _derf(t), k11, k12, k22))
    else:  # erf(relu(u)): zero for u <= 0
        arch = ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.Erf(), ne.Dense(1.1, 0.1))

        def dual(k11, k12, k22):
            return _quadrant(_erf, k11, k12, k22), _quadrant(_derf, k11, k12, k22)
    k = _fused_kernel(arch, x)
    nngp, ntk = _composite_reference(x, 1.2, 0.3, 1.1, 0.1, dual)
    assert kernels.scaled_error(k.nngp, nngp) <= F64_TOL
    assert kernels.scaled_error(k.ntk, ntk) <= F64_TOL


@pytest.mark.slow
@pytest.mark.parametrize("case", ["erf-erf", "relu-erf"])
def test_composites_at_high_precision_against_an_mpmath_quadrature(case):
    # one cross entry at dps=30 against nested Gauss-Legendre at 35 digits on [-12.5, 12.5]^2
    # (whitened; the Gaussian tails beyond are below e^-78), split at the kinks: minutes
    import mpmath

    ctx = mpmath.MPContext()
    ctx.dps = 35
    x = np.array([[0.9, -0.3], [0.4, 0.8]])
    outer, inner = (ne.Erf(), ne.Erf()) if case == "erf-erf" else (ne.Erf(), ne.Relu())
    k = _fused_kernel(ne.serial(ne.Dense(1.2, 0.3), inner, outer, ne.Dense()), x, dps=30)
    f = (lambda t: ctx.erf(ctx.erf(t))) if case == "erf-erf" else (lambda t: ctx.erf(t) if t > 0 else ctx.mpf(0))
    gram = [[ctx.mpf(float(v)) for v in row] for row in x]
    sw, sb = ctx.mpf(1.2), ctx.mpf(0.3)  # the float parameters, exactly
    k1 = [[sw**2 * ctx.fsum(a * b for a, b in zip(p, q)) / 2 + sb**2 for q in gram] for p in gram]
    a = ctx.sqrt(k1[0][0])
    c, s = k1[0][1] / a, ctx.sqrt(k1[0][0] * k1[1][1] - k1[0][1] ** 2) / a
    L, pieces = ctx.mpf(12.5), 8
    grid = [-L + 2 * L * ctx.mpf(i) / pieces for i in range(pieces + 1)]

    def pts(extra):
        return sorted(set(grid) | {e for e in extra if -L < e < L})

    def inner_integral(z1):
        return ctx.quad(lambda z2: f(c * z1 + s * z2) * ctx.exp(-z2 * z2 / 2), pts([-c * z1 / s]),
                        method="gauss-legendre")

    ref = ctx.quad(lambda z1: f(a * z1) * ctx.exp(-z1 * z1 / 2) * inner_integral(z1), pts([0]),
                   method="gauss-legendre") / (2 * ctx.pi)
    assert abs(k.nngp[0, 1] - ref) < ctx.mpf(10) ** -25


def test_layernorm_after_relu_against_a_wide_network():
    # the row (33% off before): LayerNorm centres by E relu(u) and scales by its variance
    width, seeds = 1024, 64
    x = RNG.standard_normal((3, 3))
    arch = ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.LayerNorm(), ne.Dense(1.1, 0.1))
    k = arch.kernel(x)

    def draw(rng):
        h = _dense(rng, x, width, 1.2, 0.3)
        r = np.maximum(h, 0.0)
        rc = r - r.mean(axis=1, keepdims=True)
        inv = 1 / np.sqrt((rc * rc).mean(axis=1, keepdims=True) + 1e-12)
        y = rc * inv
        w2 = rng.standard_normal(width)
        nngp = _readout_nngp(y, 1.1, 0.1)
        # empirical NTK: readout share + first layer's share through LayerNorm's and relu's Jacobians
        gy = 1.1 / np.sqrt(width) * w2
        gr = inv * (gy - gy.mean() - y * (y * gy).mean(axis=1, keepdims=True))
        gh = gr * (h > 0)
        return np.stack([nngp, nngp + (gh @ gh.T) * (1.44 * (x @ x.T) / 3 + 0.09)])

    mean, se = monte_carlo(draw, seeds)
    for i, part in enumerate(("nngp", "ntk")):
        ref = getattr(k, part)
        tol = mc_tolerance(se[i], seeds, 2 * ref.size, width, _scale(ref))
        assert np.all(np.abs(mean[i] - ref) <= tol), (part, np.max(np.abs(mean[i] - ref) / tol))
    # power: the kernel map LayerNorm had before (no centring: K / sqrt(K_aa K_bb) of relu's kernel)
    pre = ne.serial(ne.Dense(1.2, 0.3), ne.Relu()).kernel(x).nngp
    old = 1.21 * pre / _scale(pre) + 0.01
    tol = mc_tolerance(se[0], seeds, 2 * old.size, width, _scale(k.nngp))
    assert np.max(np.abs(mean[0] - old) / tol) > 1


# --------------------------------------------------------------------------- #
# Flatten keeps per-position kernels
# --------------------------------------------------------------------------- #
def _erf_duals(k):
    """erf's dual maps on a self pair of variance k (Williams 1997)."""
    return 2 / np.pi * np.arcsin(2 * k / (1 + 2 * k)), 4 / (np.pi * np.sqrt((1 + 2 * k) ** 2 - 4 * k * k))


@pytest.mark.parametrize("dps", [None, 30])
def test_an_activation_after_flatten_acts_per_position(dps):
    # the row (77% off before: erf of the position-averaged kernel)
    x = np.array([[[3.0], [0.1]]])
    k = ne.serial(ne.Dense(), ne.Flatten(), ne.Erf(), ne.Dense()).kernel(x, dps=dps)
    per_position = np.array([9.0, 0.01])  # Dense on the channel axis: K[s, s] = x_s^2
    v, vd = _erf_duals(per_position)
    assert abs(float(k.nngp[0, 0]) - v.mean()) <= 1e-15
    assert abs(float(k.ntk[0, 0]) - (np.mean(vd * per_position) + v.mean())) <= 1e-15


def test_layernorm_after_flatten_normalises_over_all_features():
    # LayerNorm over the |S| C flattened features: the variance averaged over positions
    x = np.array([[[3.0], [0.1]]])
    k = ne.serial(ne.Dense(), ne.Flatten(), ne.LayerNorm(), ne.Erf(), ne.Dense()).kernel(x)
    v, _ = _erf_duals(np.array([9.0, 0.01]) / 4.505)
    assert abs(k.nngp[0, 0] - v.mean()) <= 1e-15


# --------------------------------------------------------------------------- #
# rules per layer
# --------------------------------------------------------------------------- #
def test_dense_and_conv_yield_gaussian_from_any_input_with_second_moments():
    # after a post-activation residual sum (not Gaussian) a Dense makes it Gaussian again
    arch = ne.serial(ne.Dense(), ne.Relu(), ne.residual([ne.Dense()]), ne.Dense(), ne.Relu(), ne.Dense())
    assert np.all(np.isfinite(arch.kernel(X).nngp))
    cnn = ne.serial(ne.Conv(2), ne.Relu(), ne.AvgPool(2), ne.Conv(2), ne.Relu(), ne.Flatten(), ne.Dense())
    assert np.all(np.isfinite(cnn.kernel(IMAGES).nngp))


def test_a_residual_sum_is_gaussian_iff_both_parts_are():
    gaussian = ne.serial(ne.Dense(), ne.residual([ne.Dense(), ne.Relu(), ne.Dense()]), ne.Relu(), ne.Dense())
    assert gaussian.check_architecture() == signals.GAUSSIAN
    other = ne.serial(ne.Dense(), ne.Erf(), ne.residual([ne.Dense(), ne.Relu(), ne.Dense()]))
    assert other.check_architecture().kind is signals.Kind.OTHER


def test_layernorm_needs_a_known_channel_mean():
    # after a Dense (Gaussian, mean 0): fine; after a post-activation residual sum: refused
    ne.serial(ne.Dense(), ne.LayerNorm(), ne.Relu(), ne.Dense()).check_architecture()
    with pytest.raises(ArchitectureError, match="LayerNorm.*channel mean"):
        ne.serial(ne.Dense(), ne.Relu(), ne.residual([ne.Dense()]), ne.LayerNorm(), ne.Dense()).kernel(X)


def test_conv_or_pooling_after_flatten_is_refused():
    with pytest.raises(ArchitectureError, match="Flatten"):
        ne.serial(ne.Conv(2), ne.Flatten(), ne.AvgPool(2), ne.Dense()).kernel(IMAGES)


class _Scale(ne.Layer):
    """A custom layer that does not declare signal_out."""

    def kernel_fn(self, state, bk):
        return state

    def apply(self, params, x):
        return x, None


def test_a_custom_layer_without_signal_out_is_treated_conservatively():
    ne.serial(ne.Dense(), _Scale(), ne.Dense()).check_architecture()  # Gaussian in: accepted
    assert ne.serial(ne.Dense(), _Scale()).check_architecture().kind is signals.Kind.OTHER
    with pytest.raises(ArchitectureError, match="override signal_out"):
        ne.serial(ne.Dense(), ne.Relu(), _Scale(), ne.Dense()).kernel(X)
    with pytest.raises(ArchitectureError, match="Act\\('relu'\\)"):  # not Gaussian after it: no activation
        ne.serial(ne.Dense(), _Scale(), ne.Relu(), ne.Dense()).kernel(X)


# --------------------------------------------------------------------------- #
# the C1 check's residual architecture, against a wide network
# --------------------------------------------------------------------------- #
def _c1_network(rng, x, n):
    h = _dense(rng, x, n, 1.3, 0.2)
    h = _dense(rng, scipy.special.erf(h), n, 1.1, 0.2)
    block = _dense(rng, np.maximum(_dense(rng, h, n, 1.1, 0.3), 0.0), n, 0.9, 0.1)
    return np.sign(block + 0.8 * h)


def test_c1_residual_architecture_against_a_wide_network():
    width, seeds = 1024, 32
    arch = residual_architecture()
    k = arch.kernel(X).nngp
    mean, se = monte_carlo(lambda rng: _readout_nngp(_c1_network(rng, X, width), 1.2, 0.1), seeds)
    tol = mc_tolerance(se, seeds, k.size, width, _scale(k))
    assert np.all(np.abs(mean - k) <= tol), np.max(np.abs(mean - k) / tol)
    # power: the kernel with the skip dropped (alpha = 0) would fail (it is 1.8 tolerances off)
    dropped = ne.serial(*arch.layers[:3], ne.residual(arch.layers[3].block, 0.0), *arch.layers[4:]).kernel(X).nngp
    assert np.max(np.abs(mean - dropped) / tol) > 1


# --------------------------------------------------------------------------- #
# the README's custom-layer example (16.3): only state methods, default signal_out
# --------------------------------------------------------------------------- #
def _readme_scale_class():
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(\s*import ntk_equiv as ne\n\s*class Scale.*?)```", text, re.S).group(1)
    lines = block.splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    code = "\n".join(line[indent:] for line in lines if not line.strip().startswith("k = "))
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the README's own example
    return namespace["Scale"]


def test_readme_scale_layer_is_exact():
    scale = _readme_scale_class()
    x = RNG.standard_normal((5, 3))
    k = ne.serial(ne.Dense(1.2, 0.1), scale(2.0), ne.Relu(), ne.Dense()).kernel(x)
    ref = ne.serial(ne.Dense(2.4, 0.2), ne.Relu(), ne.Dense()).kernel(x)
    # 2 (1.2/sqrt(d) W x + 0.1 b) is Dense(2.4, 0.2), parameter gradients included
    for part in ("nngp", "ntk"):
        a, b = getattr(k, part), getattr(ref, part)
        assert np.max(np.abs(a - b)) <= 8 * np.finfo(float).eps * np.max(b)
    net = ne.serial(ne.Dense(1.2, 0.1), scale(2.0), ne.Relu(), ne.Dense()).init(8, seed=0)
    assert np.all(np.isfinite(net.apply(x)))
