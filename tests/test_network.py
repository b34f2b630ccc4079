"""Finite-width networks: backpropagation, forward-mode tangents and the
layerwise empirical NTK against independent references (docs/theory.md C2, C3).

References: central finite differences for derivatives, the full Jacobian
(built from one-hot vjps) for the NTK, and analytic moments for C2.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ntk_equiv as ne
from ntk_equiv.claims.dynamics_checks import (
    finite_width_cov_depth2, fit_rate, one_layer_moments, sphere_inputs, z_threshold,
)
from ntk_equiv.network import Network, tree_flatten, tree_unflatten

EPS = np.finfo(float).eps
NAMED = ["relu", "leaky_relu", "abs", "erf", "identity", "sign", "sin", "cos"]


def _arch(act="erf", res=False, sw=1.3, sb=0.2):
    if not res:
        return ne.mlp(2, act, sw, sb)
    return ne.serial(ne.Dense(sw, sb), ne.Act(act),
                     ne.residual([ne.Dense(sw, sb), ne.Act(act), ne.Dense(1.0, sb)], 0.7),
                     ne.Dense(sw, sb))


def _with_params(net: Network, flat: np.ndarray) -> Network:
    return Network(net.arch, net.width, net.out_dim, net.seed, net.in_dim,
                   tree_unflatten(net.params, flat), net.params0)


def _fd_directional(net, x, v, h):
    p = tree_flatten(net.params)
    return (_with_params(net, p + h * v).apply(x) - _with_params(net, p - h * v).apply(x)) / (2 * h)


# --------------------------------------------------------------------------- #
# derivatives against finite differences
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("act", ["erf", "sin", "cos", "identity", "relu", "leaky_relu", "abs"])
@pytest.mark.parametrize("res", [False, True])
def test_jvp_and_vjp_match_central_differences(act, res):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    net = _arch(act, res).init(12, out_dim=2, seed=2)
    net.apply(x)
    v = rng.standard_normal(net.num_params)
    v /= np.linalg.norm(v)
    g = rng.standard_normal((4, 2))
    h = 1e-5
    fd = _fd_directional(net, x, v, h)
    jv = net.jvp(x, v)
    gj = tree_flatten(net.vjp(x, g)) @ v  # <J^T g, v> = <g, J v>
    scale = np.max(np.abs(jv)) + 1.0
    # central FD error: h^2/6 |f'''| (f''' = O(1-10) for these O(1) weights: ~2e-10)
    # + eps |f| / h (~1e-11); piecewise-linear activations have f''' = 0 away from
    # kinks (no pre-activation lies within h = 1e-5 of a kink for this seed). 1e-7 leaves
    # a 500x margin and still catches any wrong factor.
    tol = 1e-7 * scale
    assert np.max(np.abs(fd - jv)) <= tol
    assert abs(gj - np.sum(g * fd)) <= tol * np.sum(np.abs(g))


def test_sign_has_zero_derivative_and_only_readout_kernel():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 2))
    arch = ne.mlp(2, "sign", 1.2, 0.3)
    net = arch.init(10, out_dim=1, seed=0)
    ntk = net.empirical_ntk(x)
    # sign' = 0 a.e.: only the readout's parameters move f; its gram is
    # sigma_w^2/n <a, a'> + sigma_b^2 with a = sign(h^L)
    a = np.sign(net.arch.apply(net.params, x)[1][-1])
    readout = 1.2**2 / 10 * a @ a.T + 0.3**2
    np.testing.assert_allclose(ntk, readout, rtol=1e-13, atol=1e-13)
    J = net.jacobian(x)[:, 0, :]
    np.testing.assert_allclose(J @ J.T, readout, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("case", ["mlp", "cnn"])
def test_readout_lambda_max_is_the_readout_jacobians(case):
    """Training only the readout is stable iff ``lr < 2 / lambda_max(J_ro J_ro^T)``
    (``J_ro``: the Jacobian w.r.t. the readout's parameters, every input and
    output). The readout layer provides it (``ntk_lambda_max``): Dense's
    Kronecker formula, the protocol's default (full Gram from ``ntk_gram``) and
    the explicit Jacobian agree to float64 round-off (a few ulps of a sum of
    ~width products: 1e-12 relative)."""
    from ntk_equiv.network import tree_map

    rng = np.random.default_rng(5)
    if case == "mlp":
        arch, x = ne.mlp(2, "erf", 1.3, 0.4), rng.standard_normal((5, 3))
    else:
        arch = ne.serial(ne.Conv(3, 1, "SAME", 1.4, 0.2), ne.Relu(), ne.Flatten(), ne.Dense(1.2, 0.3))
        x = rng.standard_normal((5, 4, 2))
    net = arch.init(8, out_dim=3, seed=1)
    net.apply(x)
    mask = tree_flatten(tree_map(lambda p, m: np.full(np.shape(p), m), net.params, net._mask("readout"))) > 0
    J = net.jacobian(x)[:, :, mask].reshape(len(x) * 3, -1)
    want = np.linalg.eigvalsh(J @ J.T)[-1]
    i = arch.readout_index
    _, caches = arch.apply(net.params, x)
    got = net._train_lambda_max(x, "readout")
    default = ne.Layer.ntk_lambda_max(arch.layers[i], net.params[i], caches[i])
    np.testing.assert_allclose([got, default], want, rtol=1e-12)
    with pytest.raises(ne.StabilityError):
        net.train(x, np.zeros((5, 3)), lr=2.0 / want * 1.001, steps=1, trainable="readout")
    net.train(x, np.zeros((5, 3)), lr=2.0 / want * 0.999, steps=1, trainable="readout")


# --------------------------------------------------------------------------- #
# layerwise NTK against the full Jacobian
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("act", NAMED)
@pytest.mark.parametrize("res", [False, True])
def test_layerwise_ntk_equals_jacobian_gram(act, res):
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    net = _arch(act, res).init(9, out_dim=3, seed=5)
    J1, J2 = net.jacobian(x1), net.jacobian(x2)
    full = np.einsum("imp,jnp->imjn", J1, J2).reshape(12, 9)
    mean = np.einsum("imp,jmp->ij", J1, J2) / 3
    # both sides sum the same ~300 products in a different order: round-off ~ P eps |J|^2
    scale = np.max(np.abs(full)) + 1e-300
    assert np.max(np.abs(net.empirical_ntk(x1, x2, full=True) - full)) <= 1e-12 * scale
    assert np.max(np.abs(net.empirical_ntk(x1, x2) - mean)) <= 1e-12 * scale
    # jvp / vjp are J v and J^T g
    v = rng.standard_normal(net.num_params)
    g = rng.standard_normal((4, 3))
    assert np.max(np.abs(net.jvp(x1, v) - J1 @ v)) <= 1e-12 * (np.max(np.abs(J1 @ v)) + 1)
    assert np.max(np.abs(tree_flatten(net.vjp(x1, g)) - np.einsum("imp,im->p", J1, g))) <= 1e-12 * (
        np.max(np.abs(J1)) * np.sum(np.abs(g)))


@st.composite
def architectures(draw):
    act = draw(st.sampled_from(NAMED))
    sw = draw(st.floats(0.5, 2.0))
    sb = draw(st.floats(0.0, 1.0))
    depth = draw(st.integers(1, 3))
    layers = []
    for _ in range(depth):
        if draw(st.booleans()):
            if not layers:  # a residual on the raw input has no kernel (ArchitectureError)
                layers.append(ne.Dense(sw, sb))
            layers.append(ne.residual([ne.Dense(sw, sb), ne.Act(act), ne.Dense(sw, sb)],
                                      draw(st.floats(0.0, 1.5))))
        else:
            layers += [ne.Dense(sw, sb), ne.Act(act)]
    return ne.serial(*layers, ne.Dense(sw, sb))


@settings(max_examples=25, deadline=None)
@given(arch=architectures(), width=st.integers(2, 7), out_dim=st.integers(1, 3), n=st.integers(1, 4),
       d=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_property_ntk_jvp_vjp_are_the_jacobian(arch, width, out_dim, n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    net = arch.init(width, out_dim=out_dim, seed=seed)
    J = net.jacobian(x)
    assert J.shape == (n, out_dim, net.num_params)
    full = np.einsum("imp,jnp->imjn", J, J).reshape(n * out_dim, n * out_dim)
    scale = np.max(np.abs(full)) + 1.0
    assert np.max(np.abs(net.empirical_ntk(x, full=True) - full)) <= 1e-11 * scale
    v = rng.standard_normal(net.num_params)
    assert np.max(np.abs(net.jvp(x, v) - J @ v)) <= 1e-11 * (np.max(np.abs(J @ v)) + 1.0)
    # apply is the sum of its pieces: at params0 the linearised net equals the net
    assert np.array_equal(net.linearize().apply(x), net.apply(x))


# --------------------------------------------------------------------------- #
# C2 at finite width
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("act", ["relu", "erf", "sin"])
def test_one_hidden_layer_moments_exact_at_small_width(act):
    # E[hat Theta] = Theta and E[f f'] = K hold at every width for one hidden layer;
    # width 8 makes the per-network kernels far from the limit, so a biased
    # implementation would fail. z-threshold: Bonferroni, false alarm < 1e-6.
    rng = np.random.default_rng(7)
    arch = ne.mlp(1, act, 1.4, 0.4)
    x = sphere_inputs(rng, 3, 2)
    res = one_layer_moments(arch, x, width=8, draws=1500, out_dim=4, seed=8)
    assert res.worst <= res.threshold, (res.z_ntk, res.z_cov)


@pytest.mark.slow  # ~2 s: the default budget (fresh-clone default run at 181 s)
def test_depth_two_output_covariance_at_finite_width():
    """Two hidden layers: Cov f_0 is *not* K at finite width but exactly
    sigma_w^2 E[V(hat K^2)] + sigma_b^2 (the dual map of the random first-layer
    kernel). Two independent Monte-Carlo estimates of it must agree (z-test,
    false alarm < 1e-6), and at width 4 its O(1/n) bias from K is resolved,
    so the test distinguishes the two."""
    rng = np.random.default_rng(12)
    x = sphere_inputs(rng, 3, 2)
    sw, sb, width = 1.4, 0.3, 4
    arch = ne.mlp(2, "erf", sw, sb)
    iu = np.triu_indices(3)
    prods = []
    for _ in range(3000):
        f = arch.init(width, out_dim=4, seed=rng, in_dim=2).apply(x)
        prods.append((f[iu[0]] * f[iu[1]]).T)
    prods = np.concatenate(prods)
    mc, mc_se = prods.mean(0), prods.std(0, ddof=1) / np.sqrt(len(prods))
    exact, exact_se = finite_width_cov_depth2("erf", sw, sb, x, width, 3000, seed=13)
    z = (mc - exact[iu]) / np.sqrt(mc_se**2 + exact_se[iu] ** 2)
    assert np.max(np.abs(z)) <= z_threshold(len(z)), z
    K = arch.kernel(x).nngp
    bias_z = np.abs(np.diag(exact) - np.diag(K)) / np.diag(exact_se)
    assert np.max(bias_z) > z_threshold(3), bias_z  # finite width visibly differs from the limit


def test_ntk_error_rate_one_hidden_layer():
    rng = np.random.default_rng(9)
    arch = ne.mlp(1, "relu", 1.5, 0.2)
    x = sphere_inputs(rng, 5, 3)
    theta = arch.kernel(x).ntk
    widths = [32, 128, 512]
    errs = np.array([[np.linalg.norm(arch.init(w, seed=rng).empirical_ntk(x) - theta) for _ in range(30)]
                     for w in widths])
    fit = fit_rate(widths, errs)
    # the mean-square error is exactly c/n (a mean of n i.i.d. terms): slope -1/2,
    # tolerance 4.9 standard errors of the fitted slope (false alarm < 1e-6)
    assert abs(fit.slope + 0.5) <= 4.9 * fit.stderr, (fit.slope, fit.stderr)
    assert fit.stderr < 0.1  # the test has power: it would see a slope of -0.25 or -1


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("width", [0, -3, 2.5, True, "8"])
def test_bad_width(width):
    with pytest.raises(ne.ParameterError):
        ne.mlp(1).init(width)


def test_bad_out_dim_and_missing_readout():
    with pytest.raises(ne.ParameterError):
        ne.mlp(1).init(4, out_dim=0)
    with pytest.raises(ne.ParameterError):
        ne.serial(ne.Dense(), ne.Relu()).init(4)


def test_shape_errors():
    rng = np.random.default_rng(0)
    net = ne.mlp(1).init(4, out_dim=2, seed=0)
    x = rng.standard_normal((3, 2))
    net.apply(x)
    with pytest.raises(ne.ShapeError):
        net.apply(rng.standard_normal((3, 5)))
    with pytest.raises(ne.ShapeError):
        net.empirical_ntk(x, rng.standard_normal((2, 3)))
    with pytest.raises(ne.ShapeError):
        net.vjp(x, np.ones((3, 3)))
    with pytest.raises(ne.ShapeError):
        net.jvp(x, np.ones(net.num_params + 1))
    with pytest.raises(ne.ShapeError):
        net.train(x, np.ones((3, 1)), lr=0.01, steps=1)
    with pytest.raises(ne.ShapeError):
        net.train(x, np.ones((4, 2)), lr=0.01, steps=1)


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_lr(lr):
    x = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(ne.ParameterError):
        ne.mlp(1).init(4).train(x, np.zeros(3), lr=lr, steps=1)


@pytest.mark.parametrize("steps", [-1, 1.5])
def test_bad_steps(steps):
    x = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(ne.ParameterError):
        ne.mlp(1).init(4).train(x, np.zeros(3), lr=0.01, steps=steps)


@pytest.mark.parametrize("linear", [False, True])
def test_lr_at_stability_bound_raises(linear):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 1))
    net = ne.mlp(2, "erf", 1.5, 0.1).init(16, seed=1)
    net = net.linearize() if linear else net
    lam = net.lambda_max(x)
    with pytest.raises(ne.StabilityError, match="stability bound"):
        net.train(x, y, lr=2.0 / lam, steps=5)
    with pytest.raises(ne.StabilityError):
        net.train(x, y, lr=1.0 / lam, steps=5, ridge=2 * lam)  # ridge raises the bound's lambda
    out = net.train(x, y, lr=1.9 / lam, steps=5).apply(x)  # just below: finite
    assert np.all(np.isfinite(out))


def test_linearize_before_first_call_shares_the_draw():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2))
    net = ne.mlp(1, "relu").init(6, seed=np.random.default_rng(5))
    lin = net.linearize()
    f_lin = lin.apply(x)  # draws the parameters of net
    assert np.array_equal(f_lin, net.apply(x))
    assert math.isclose(float(lin.empirical_ntk(x)[0, 0]), float(net.empirical_ntk(x)[0, 0]), rel_tol=0,
                        abs_tol=0)


def test_symmetric_empirical_ntk_equals_the_cross_path():
    # x2=None backpropagates once and reuses it; a copy of x takes the general path
    arch = ne.serial(ne.Dense(1.3, 0.2), ne.Erf(), ne.residual([ne.Dense(1.1, 0.1), ne.Relu(), ne.Dense(0.9)]),
                     ne.Dense(1.0, 0.1))
    net = arch.init(width=32, out_dim=3, seed=4)
    x = np.random.default_rng(4).standard_normal((6, 2))
    for full in (False, True):
        sym, cross = net.empirical_ntk(x, full=full), net.empirical_ntk(x, x.copy(), full=full)
        assert np.array_equal(sym, sym.T)
        # numpy sends A @ A.T to BLAS syrk and A @ B.T to gemm: the same sums in another
        # order, so they agree to round-off (each within ~ (terms) eps of exact; 1e-14 of scale)
        assert np.max(np.abs(sym - cross)) <= 1e-14 * np.max(np.abs(cross))
