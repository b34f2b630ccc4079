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


#: The issue's table: compositions whose kernel was silently wrong, refused (for now).
REFUSED = {
    "relu-after-relu": (ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.Relu(), ne.Dense()), X, "Act('relu')"),
    "erf-after-erf": (ne.serial(ne.Dense(1.2, 0.3), ne.Erf(), ne.Erf(), ne.Dense()), X, "Act('erf')"),
    "layernorm-after-relu": (ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.LayerNorm(), ne.Dense()), X, "LayerNorm()"),
    "relu-after-post-activation-residual": (
        ne.serial(ne.Dense(1.2, 0.3), ne.Relu(), ne.residual([ne.Dense()]), ne.Relu(), ne.Dense()), X, "Act('relu')"),
    "relu-after-pooled-relu": (
        ne.serial(ne.Conv(3, sigma_w=1.3, sigma_b=0.1), ne.Relu(), ne.AvgPool(2), ne.Relu(), ne.Flatten(), ne.Dense()),
        IMAGES, "Act('relu')"),
    "erf-after-flatten": (ne.serial(ne.Dense(), ne.Flatten(), ne.Erf(), ne.Dense()), np.array([[[3.0], [0.1]]]),
                          "Act('erf')"),
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
    arch = ne.serial(ne.Dense(), ne.residual([ne.Dense(), ne.Relu(), ne.Relu(), ne.Dense()]), ne.Dense())
    with pytest.raises(ArchitectureError, match=r"layer 2 of 3, in the block of residual.*layer 3 of 4, Act\('relu'\)"):
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
