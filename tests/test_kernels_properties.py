"""Property-based tests of C1 (the P level): random architectures (depth
1..6, every named activation, sigma_w in [0.5, 2.5], sigma_b in [0, 1],
residual blocks or not), random inputs (d 1..16, 1..12 points, with exact
duplicates, negations and multiples mixed in).

Also random CNNs (1-D/2-D, every padding, strides, pooling/flatten, LayerNorm,
residual blocks) on images, and their empirical NTK against the Jacobian.

Properties: the kernels are finite, exactly symmetric, positive
semi-definite, their cross blocks equal the joint kernel's blocks, and
(few, small examples) float64 agrees with the 50-digit path to 13 digits.
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ntk_equiv as ne
from ntk_equiv.activations import NAMED
from ntk_equiv.kernels import scaled_error

EPS = np.finfo(float).eps


@st.composite
def architectures(draw, names=NAMED, max_depth=6):
    name = draw(st.sampled_from(names))
    depth = draw(st.integers(1, max_depth))
    sw = draw(st.floats(0.5, 2.5))
    sb = draw(st.floats(0.0, 1.0))
    kwargs = {"alpha": draw(st.floats(0.0, 0.5))} if name == "leaky_relu" else {}
    if not draw(st.booleans()):
        return ne.mlp(depth, name, sw, sb, **kwargs), sb
    alpha = draw(st.floats(0.0, 1.5))
    layers = [ne.Dense(sw, sb)]
    for _ in range(depth):
        layers.append(ne.residual([ne.Dense(sw, sb), ne.Act(name, **kwargs), ne.Dense(sw, sb)], alpha))
    layers.append(ne.Dense(sw, sb))
    return ne.serial(*layers), sb


@st.composite
def input_sets(draw, max_n=12, max_d=16):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, d)) * rng.uniform(0.2, 3.0, (n, 1))
    for i in range(1, n):  # mix in exact duplicates, negations and power-of-2 multiples
        kind = draw(st.sampled_from(["fresh", "fresh", "copy", "negate", "double"]))
        j = draw(st.integers(0, i - 1))
        if kind == "copy":
            x[i] = x[j]
        elif kind == "negate":
            x[i] = -x[j]
        elif kind == "double":
            x[i] = 2 * x[j]
    return x


def check_structure(k, n):
    for m in (k.nngp, k.ntk):
        assert m.shape == (n, n) and np.all(np.isfinite(m))
        assert np.array_equal(m, m.T)
        w = np.linalg.eigvalsh(m)
        # PSD up to eigvalsh's backward error (<~ n eps ||m||), c = 10 for margin
        assert w[0] >= -10 * n * EPS * max(w[-1], 0.0), (w[0], w[-1])
    # Theta - K is PSD for these architectures too (C9's premise): the NTK adds
    # gradient terms to the readout's K
    w = np.linalg.eigvalsh(k.ntk - k.nngp)
    assert w[0] >= -10 * n * EPS * max(np.abs(np.linalg.eigvalsh(k.ntk)).max(), 1e-300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(), input_sets())
def test_kernels_are_symmetric_psd_and_finite(arch_sb, x):
    arch, _ = arch_sb
    check_structure(arch.kernel(x), len(x))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(), input_sets(max_n=8), st.data())
def test_cross_blocks_equal_joint_blocks(arch_sb, x, data):
    arch, _ = arch_sb
    assume(len(x) >= 2)
    split = data.draw(st.integers(1, len(x) - 1))
    x1, x2 = x[:split], x[split:]
    joint, cross = arch.kernel(x), arch.kernel(x1, x2)
    for part in ("nngp", "ntk"):
        j = getattr(joint, part)
        d = np.diag(j)
        # the same formulas on dot products from different BLAS calls: a few eps of each
        # entry's scale, times a depth-dependent amplification (<= 6 layers): 1e-13
        assert scaled_error(getattr(cross, part), j[:split, split:], d[:split], d[split:]) <= 1e-13


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(max_depth=4), input_sets(max_n=4, max_d=4))
def test_float64_agrees_with_50_digits(arch_sb, x):
    arch, _ = arch_sb
    k64, khp = arch.kernel(x), arch.kernel(x, dps=50)
    for part in ("nngp", "ntk"):
        # the promise: 13 significant digits relative to each entry's scale
        assert scaled_error(getattr(k64, part), getattr(khp, part)) <= 1e-13


EXPRESSIONS = ["x*erf(x)", "tanh(x)", "Max(0, x)**2", "exp(-x**2)", "atan(x) + x/4", "abs(x - 1/2)"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(names=EXPRESSIONS, max_depth=3), input_sets(max_n=5, max_d=4))
def test_expression_activations_symmetric_psd(arch_sb, x):
    arch, _ = arch_sb
    # the float64 quadrature's accuracy is validated up to a pre-activation std of
    # F64_QUADRATURE_MAX_STD and it warns beyond (tested below); the round-off
    # tolerances of check_structure hold inside that range only
    with warnings.catch_warnings():
        warnings.simplefilter("error", ne.PrecisionWarning)
        try:
            k = arch.kernel(x)
        except ne.PrecisionWarning:
            assume(False)
    check_structure(k, len(x))


def test_quadrature_warns_outside_its_validated_range():
    x = np.array([[0.3], [-0.2], [1.4]])
    inside = ne.serial(ne.Dense(1.0), ne.Act("x*erf(x)"), ne.Dense(1.0))
    outside = ne.serial(ne.Dense(2.5), ne.Act("x*erf(x)"), ne.Dense(2.5), ne.Act("x*erf(x)"), ne.Dense(2.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ne.PrecisionWarning)
        inside.kernel(x)  # std <= 1.4: no warning
    with pytest.warns(ne.PrecisionWarning, match="dps="):
        outside.kernel(x * 3)


# --------------------------------------------------------------------------- #
# convolutional architectures (issue 12)
# --------------------------------------------------------------------------- #
@st.composite
def cnns(draw, max_depth=3, max_n=6):
    """A random CNN (1-D or 2-D, every padding, strides, pooling / flatten /
    global pooling, LayerNorm, residual blocks) and images for it, with exact
    duplicates and negations mixed in."""
    from ntk_equiv.claims.architectures import image_inputs, random_cnn

    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    label, arch, shape = random_cnn(rng, max_depth=max_depth)
    n = draw(st.integers(1, max_n))
    x = image_inputs(rng, n, shape) * rng.uniform(0.3, 2.0, (n,) + (1,) * len(shape))
    for i in range(1, n):
        kind = draw(st.sampled_from(["fresh", "fresh", "copy", "negate"]))
        j = draw(st.integers(0, i - 1))
        if kind != "fresh":
            x[i] = x[j] if kind == "copy" else -x[j]
    return label, arch, x


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnns())
def test_cnn_kernels_are_symmetric_psd_and_finite(case):
    _, arch, x = case
    check_structure(arch.kernel(x), len(x))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnns(), st.data())
def test_cnn_cross_blocks_equal_joint_blocks(case, data):
    _, arch, x = case
    assume(len(x) >= 2)
    split = data.draw(st.integers(1, len(x) - 1))
    joint, cross = arch.kernel(x), arch.kernel(x[:split], x[split:])
    for part in ("nngp", "ntk"):
        j = getattr(joint, part)
        d = np.diag(j)
        assert scaled_error(getattr(cross, part), j[:split, split:], d[:split], d[split:]) <= 1e-13


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnns(max_depth=2, max_n=2))
def test_cnn_float64_agrees_with_50_digits(case):
    _, arch, x = case
    k64, khp = arch.kernel(x), arch.kernel(x, dps=50)
    for part in ("nngp", "ntk"):
        assert scaled_error(getattr(k64, part), getattr(khp, part)) <= 1e-13


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cnns(max_n=3))
def test_cnn_empirical_ntk_is_j_jt(case):
    # the empirical NTK of a random finite CNN (default per-example-gradient path,
    # Dense's structured one) against the Jacobian assembled from one vjp per output
    _, arch, x = case
    net = arch.init(4, out_dim=2, seed=0)
    j = net.jacobian(x)
    full = np.einsum("imp,jnp->imjn", j, j).reshape(len(x) * 2, len(x) * 2)
    assert np.max(np.abs(net.empirical_ntk(x, full=True) - full)) <= 1e3 * EPS * max(np.max(np.abs(full)), 1e-300)
