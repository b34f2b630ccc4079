"""Convolutional architectures (issue 12): kernels against an independent
loop-by-loop implementation of the stax conventions, against 50 digits, and
against direct Monte Carlo of finite networks; finite-width derivatives and
the empirical NTK against the Jacobian."""
import itertools
import math

import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import kernels
from ntk_equiv.kernels import scaled_error
from ntk_equiv.network import tree_flatten, tree_unflatten

EPS = np.finfo(float).eps


# --------------------------------------------------------------------------- #
# an independent reference: the stax conventions written out position by position
# --------------------------------------------------------------------------- #
def _source(o, i, st, f, length, padding):
    """Input coordinate under offset i of output o on one axis (None: a padded zero)."""
    if padding == "VALID":
        lo = 0
    else:
        out = -(-length // st)
        lo = max((out - 1) * st + f - length, 0) // 2
    c = o * st + i - lo
    if padding == "CIRCULAR":
        return c % length
    return c if 0 <= c < length else None


def _out_len(length, f, st, padding):
    return (length - f) // st + 1 if padding == "VALID" else -(-length // st)


def _positions(shape):
    return list(itertools.product(*(range(n) for n in shape)))


def reference_kernel(layers, x):
    """``(K, Theta)`` of the joint inputs ``x`` (``(n, *S, C)``), full spatial
    covariance as a dict ``(s, t) -> (n, n) array`` while spatial."""
    shape = x.shape[1:-1]
    pos = _positions(shape)
    c = x.shape[-1]
    k = {(s, t): x[(slice(None),) + s] @ x[(slice(None),) + t].T / c for s in pos for t in pos}
    th = {key: 0 * v for key, v in k.items()}
    for layer in layers:
        if isinstance(layer, ne.Dense):
            k = {key: layer.sigma_w**2 * v + layer.sigma_b**2 for key, v in k.items()}
            th = {key: layer.sigma_w**2 * th[key] + k[key] for key in k}
        elif isinstance(layer, ne.Act):
            nk, nt = {}, {}
            for (s, t), v in k.items():
                va, vb = np.diag(k[(s, s)]), np.diag(k[(t, t)])
                norms = np.sqrt(np.outer(va, vb))
                if layer.phi.name == "relu":
                    ang = np.arccos(np.clip(v / norms, -1, 1))
                    nk[(s, t)] = norms * (np.sin(ang) + (np.pi - ang) * np.cos(ang)) / (2 * np.pi)
                    nt[(s, t)] = th[(s, t)] * (np.pi - ang) / (2 * np.pi)
                elif layer.phi.name == "erf":
                    q = np.outer(1 + 2 * va, 1 + 2 * vb)
                    nk[(s, t)] = 2 / np.pi * np.arcsin(2 * v / np.sqrt(q))
                    nt[(s, t)] = th[(s, t)] * 4 / (np.pi * np.sqrt(q - 4 * v * v))
                else:
                    raise NotImplementedError(layer.phi.name)
            k, th = nk, nt
        elif isinstance(layer, (ne.Conv, ne.AvgPool)):
            w = layer.window
            out = tuple(_out_len(n, f, st, w.padding) for n, f, st in zip(shape, w.size, w.strides))
            offs = _positions(w.size)

            def src(o, i):
                cs = tuple(_source(o[d], i[d], w.strides[d], w.size[d], shape[d], w.padding) for d in range(len(shape)))
                return None if None in cs else cs

            nk, nt = {}, {}
            for o in _positions(out):
                for p in _positions(out):
                    pairs = ([(i, i) for i in offs] if isinstance(layer, ne.Conv)
                             else [(i, j) for i in offs for j in offs])
                    sk = st_ = 0.0
                    for i, j in pairs:
                        a, b = src(o, i), src(p, j)
                        if a is not None and b is not None:
                            sk, st_ = sk + k[(a, b)], st_ + th[(a, b)]
                    if isinstance(layer, ne.Conv):
                        f = len(offs)
                        nk[(o, p)] = layer.sigma_w**2 / f * sk + layer.sigma_b**2
                        nt[(o, p)] = layer.sigma_w**2 / f * st_ + nk[(o, p)]
                    else:
                        nk[(o, p)], nt[(o, p)] = sk / len(offs)**2, st_ / len(offs)**2
            k, th, shape = nk, nt, out
        elif isinstance(layer, ne.LayerNorm):
            den = {(s, t): np.sqrt(np.outer(np.diag(k[(s, s)]), np.diag(k[(t, t)]))) for (s, t) in k}
            k = {key: v / den[key] for key, v in k.items()}
            th = {key: v / den[key] for key, v in th.items()}
        elif isinstance(layer, (ne.GlobalAvgPool, ne.Flatten)):
            pos = _positions(shape)
            keys = [(s, t) for s in pos for t in pos] if isinstance(layer, ne.GlobalAvgPool) else [(s, s) for s in pos]
            k = {((), ()): sum(k[key] for key in keys) / len(keys)}
            th = {((), ()): sum(th[key] for key in keys) / len(keys)}
            shape = ()
        else:
            raise NotImplementedError(layer)
    assert shape == ()
    return k[((), ())], th[((), ())]


def images(n, shape, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + shape)


ARCHS = {
    "conv1d-same-flatten": (ne.serial(ne.Conv(3, sigma_w=1.5, sigma_b=0.1), ne.Relu(), ne.Flatten(), ne.Dense(1.2, 0.1)),
                            (6, 2)),
    "conv1d-valid-stride-gap": (ne.serial(ne.Conv(2, strides=2, padding="VALID", sigma_w=1.3), ne.Erf(),
                                          ne.GlobalAvgPool(), ne.Dense(1.1, 0.2)), (7, 3)),
    "conv2d-same-relu-gap": (ne.serial(ne.Conv((3, 3), sigma_w=1.4, sigma_b=0.2), ne.Relu(),
                                       ne.Conv((3, 3), sigma_w=1.4, sigma_b=0.2), ne.Relu(),
                                       ne.GlobalAvgPool(), ne.Dense(1.0, 0.1)), (4, 4, 2)),
    "conv2d-circular-avgpool-ln": (ne.serial(ne.Conv((2, 3), strides=(1, 2), padding="CIRCULAR", sigma_w=1.2, sigma_b=0.3),
                                             ne.LayerNorm(), ne.Relu(), ne.AvgPool((2, 2), padding="SAME"),
                                             ne.Flatten(), ne.Dense(1.3, 0.1)), (4, 5, 2)),
    "conv2d-valid-avgpool-stride": (ne.serial(ne.Conv((2, 2), padding="VALID", sigma_w=1.1, sigma_b=0.1), ne.Relu(),
                                              ne.AvgPool((2, 2), strides=2, padding="SAME"), ne.Dense(1.2),
                                              ne.Relu(), ne.Flatten(), ne.Dense(1.0, 0.2)), (5, 5, 1)),
    "residual-conv": (ne.serial(ne.Conv((3, 3), sigma_w=1.2, sigma_b=0.1),
                                ne.residual([ne.Relu(), ne.Conv((3, 3), padding="CIRCULAR", sigma_w=1.1, sigma_b=0.1)], 0.7),
                                ne.Relu(), ne.Flatten(), ne.Dense(1.1, 0.1)), (4, 3, 2)),
}


def _reference_layers(arch):
    out = []
    for layer in arch.layers:
        if isinstance(layer, ne.Residual):
            raise NotImplementedError
        out.append(layer)
    return out


@pytest.mark.parametrize("name", [n for n in ARCHS if not n.startswith("residual")])
def test_kernels_match_a_position_by_position_reference(name):
    # the reference uses arccos/arcsin of correlations (error ~sqrt(eps) near
    # correlation 1): it checks conventions (padding, strides, normalisations), and
    # 50 digits below checks the round-off
    arch, shape = ARCHS[name]
    x = images(3, shape, seed=1)
    k = arch.kernel(x)
    rk, rt = reference_kernel(_reference_layers(arch), x)
    assert scaled_error(k.nngp, rk) < 1e-7 and scaled_error(k.ntk, rt) < 1e-7


@pytest.mark.parametrize("name", ["conv1d-valid-stride-gap", "conv2d-circular-avgpool-ln", "residual-conv"])
def test_float64_matches_50_digits(name):
    arch, shape = ARCHS[name]
    x, x2 = images(3, shape, seed=2), images(2, shape, seed=3)
    for args in ((x,), (x, x2)):
        k, hp = arch.kernel(*args), arch.kernel(*args, dps=50)
        d1 = np.diag(arch.kernel(args[0]).ntk)
        d2 = d1 if len(args) == 1 else np.diag(arch.kernel(args[1]).ntk)
        for part in ("nngp", "ntk"):
            err = scaled_error(getattr(k, part), np.array(getattr(hp, part).tolist(), dtype=float), d1, d2)
            assert err < 64 * EPS, (part, err)


def test_self_pairs_keep_exact_diagonal_after_conv():
    # a self pair at one position has gap exactly 0 through conv + relu: the angle is exactly 0
    arch, shape = ARCHS["conv2d-same-relu-gap"]
    x = images(4, shape, seed=4)
    k = arch.kernel(x)
    for i in range(4):
        assert arch.kernel(x[i:i + 1]).ntk[0, 0] == k.ntk[i, i]


@pytest.mark.parametrize("name", ["conv2d-same-relu-gap", "conv1d-same-flatten"])
def test_tiled_path_is_bitwise_the_one_pass(monkeypatch, name):
    arch, shape = ARCHS[name]
    x = images(23, shape, seed=5)
    x2 = np.concatenate([x[:3], images(5, shape, seed=6)])
    whole, whole_cross = arch.kernel(x), arch.kernel(x, x2)
    monkeypatch.setattr(kernels, "CHUNK_ENTRIES", 3000)
    tiled, tiled_cross = arch.kernel(x), arch.kernel(x, x2)
    for a, b in ((whole, tiled), (whole_cross, tiled_cross)):
        assert np.array_equal(a.nngp, b.nngp) and np.array_equal(a.ntk, b.ntk)


def test_spatial_output_without_pooling_is_a_shape_error():
    with pytest.raises(ne.ShapeError, match="Flatten"):
        ne.serial(ne.Conv(3), ne.Relu(), ne.Dense()).kernel(images(2, (5, 2)))
    with pytest.raises(ne.ShapeError):
        ne.serial(ne.Conv((3, 3)), ne.Flatten(), ne.Dense()).kernel(images(2, (5, 2)))
    with pytest.raises(ne.ShapeError):
        ne.serial(ne.Conv(3), ne.Relu(), ne.Flatten(), ne.Dense()).init(8).apply(images(2, (5, 5, 2)))


@pytest.mark.parametrize("kw", [{"filter_shape": 0}, {"filter_shape": (3, "a")}, {"filter_shape": 3, "padding": "FULL"},
                                {"filter_shape": (3, 3), "strides": (1, 2, 3)}, {"filter_shape": 3, "sigma_w": -1.0}])
def test_bad_conv_parameters(kw):
    with pytest.raises(ne.ParameterError):
        ne.Conv(**kw)


# --------------------------------------------------------------------------- #
# finite width
# --------------------------------------------------------------------------- #
SMOOTH = {
    "conv1d": (ne.serial(ne.Conv(3, strides=2, sigma_w=1.3, sigma_b=0.2), ne.Erf(), ne.Conv(2, padding="VALID"),
                         ne.LayerNorm(), ne.Act("tanh(x)"), ne.Flatten(), ne.Dense(1.1, 0.1)), (7, 2)),
    "conv2d": (ne.serial(ne.Conv((3, 2), padding="CIRCULAR", sigma_w=1.2, sigma_b=0.1), ne.Erf(),
                         ne.AvgPool((2, 2), strides=(2, 1), padding="SAME"), ne.Dense(1.0, 0.3), ne.Sin(),
                         ne.residual([ne.Conv((3, 3), sigma_w=0.9), ne.Erf(), ne.Conv((1, 1), sigma_b=0.2)], 0.5),
                         ne.GlobalAvgPool(), ne.Dense(1.2, 0.1)), (5, 4, 3)),
}


def _drawn(name, width=5, heads=2, n=3):
    arch, shape = SMOOTH[name]
    net = arch.init(width, out_dim=heads, seed=3)
    x = images(n, shape, seed=9)
    net.apply(x)
    return arch, net, x


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_jvp_is_the_derivative_of_the_forward_pass(name):
    # central differences: truncation h^2 f'''/6 ~ 1e-10 and rounding eps |f| / h ~ 1e-11
    # at h = 1e-5 for these O(1) smooth networks; 1e-7 leaves a wide margin and still
    # catches any wrong term (an O(1) error)
    arch, net, x = _drawn(name)
    theta = tree_flatten(net.params)
    v = np.random.default_rng(1).standard_normal(theta.size)
    h = 1e-5

    def f(t):
        return arch.apply(tree_unflatten(net.params, t), x)[0]

    fd = (f(theta + h * v) - f(theta - h * v)) / (2 * h)
    assert np.max(np.abs(net.jvp(x, v) - fd)) < 1e-7 * max(1.0, np.max(np.abs(fd)))


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_vjp_is_the_adjoint_of_jvp(name):
    arch, net, x = _drawn(name)
    rng = np.random.default_rng(2)
    v = rng.standard_normal(tree_flatten(net.params).size)
    g = rng.standard_normal((len(x), net.out_dim))
    lhs = np.sum(net.jvp(x, v) * g)
    rhs = v @ tree_flatten(net.vjp(x, g))
    assert abs(lhs - rhs) < 1e3 * EPS * (np.linalg.norm(v) * np.linalg.norm(g) * 10)


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_empirical_ntk_is_j_jt(name):
    arch, net, x = _drawn(name)
    x2 = images(2, SMOOTH[name][1], seed=10)
    j1, j2 = net.jacobian(x), net.jacobian(x2)  # (n, M, P) from one vjp per row
    full = np.einsum("imp,jnp->imjn", j1, j2).reshape(len(x) * 2, len(x2) * 2)
    mean = np.einsum("imp,jmp->ij", j1, j2) / 2
    scale = np.max(np.abs(full))
    assert np.max(np.abs(net.empirical_ntk(x, x2, full=True) - full)) < 1e3 * EPS * scale
    assert np.max(np.abs(net.empirical_ntk(x, x2) - mean)) < 1e3 * EPS * scale
    sym = net.empirical_ntk(x)
    assert np.max(np.abs(sym - np.einsum("imp,jmp->ij", j1, j1) / 2)) < 1e3 * EPS * scale


# --------------------------------------------------------------------------- #
# Monte Carlo of finite networks
# --------------------------------------------------------------------------- #
ONE_HIDDEN = {
    "conv2d-same-gap": (ne.serial(ne.Conv((3, 3), sigma_w=1.4, sigma_b=0.2), ne.Relu(), ne.GlobalAvgPool(),
                                  ne.Dense(1.2, 0.1)), (4, 4, 2)),
    "conv1d-valid-stride-flatten": (ne.serial(ne.Conv(3, strides=2, padding="VALID", sigma_w=1.3), ne.Erf(),
                                              ne.Flatten(), ne.Dense(1.1, 0.2)), (7, 3)),
    "conv2d-circular-avgpool": (ne.serial(ne.Conv((2, 3), strides=(1, 2), padding="CIRCULAR", sigma_w=1.2, sigma_b=0.3),
                                          ne.Relu(), ne.AvgPool((2, 2), padding="SAME"), ne.Flatten(),
                                          ne.Dense(1.3, 0.1)), (4, 5, 2)),
}


@pytest.mark.parametrize("name", sorted(ONE_HIDDEN))
def test_one_hidden_layer_kernels_are_monte_carlo_means(name):
    """With one hidden (conv) layer the kernels are exact expectations at every
    width: the readout's share of the empirical NTK, ``sigma_w^2 <phi, phi'> / n_in
    + sigma_b^2``, has mean ``K`` and the whole empirical NTK has mean ``Theta``
    (the readout weights are independent of the hidden layer and
    ``E W^2 = 1``). Each seed is an independent draw; the mean of S draws is
    compared with the analytic kernel at 5.5 standard errors (Gaussian tail 4e-8
    per entry, 12 entries: false alarm < 1e-6)."""
    arch, shape = ONE_HIDDEN[name]
    x = images(3, shape, seed=11)
    k = arch.kernel(x)
    hidden = ne.serial(*arch.layers[:-1])
    ro = arch.layers[-1]
    nngp, ntk = [], []
    for seed in range(300):
        net = arch.init(16, seed=seed)
        net.apply(x)
        phi = hidden.apply(net.params[:-1], x)[0]
        nngp.append(ro.sigma_w**2 * phi @ phi.T / phi.shape[1] + ro.sigma_b**2)
        ntk.append(net.empirical_ntk(x))
    for samples, ref in ((np.array(nngp), k.nngp), (np.array(ntk), k.ntk)):
        mean, se = samples.mean(axis=0), samples.std(axis=0, ddof=1) / math.sqrt(len(samples))
        iu = np.triu_indices(3)
        assert np.all(np.abs(mean - ref)[iu] <= 5.5 * se[iu]), (np.abs(mean - ref) / se)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_deeper_random_cnn_kernels_against_wide_networks(seed):
    """Random CNNs of depth 1-3: the readout's share of the empirical NTK,
    ``sigma_w^2 <phi, phi'> / n_in + sigma_b^2``, averaged over S independent
    width-n networks, against the analytic ``K``; likewise the empirical NTK
    against ``Theta``. Beyond one hidden layer the finite-width mean is off by
    ``b / n`` while the Monte Carlo standard error is ``~ s / sqrt(S n)``: with
    S / n = 1/32 the bias is ``sqrt(S / n) b / s ~ 0.18 b / s`` standard errors,
    small for ``b / s = O(1)``, so the 5.5 standard-error test (false alarm 4e-8 per
    entry) keeps its meaning while an O(1) convention error is ~10^2 errors off."""
    from ntk_equiv.claims.architectures import image_inputs, random_cnn

    rng = np.random.default_rng(100 + seed)
    label, arch, shape = random_cnn(rng, max_depth=3)
    x = image_inputs(rng, 3, shape)
    k = arch.kernel(x)
    hidden, ro = ne.serial(*arch.layers[:-1]), arch.layers[-1]
    draws, width = 16, 512
    nngp, ntk = [], []
    for s in range(draws):
        net = arch.init(width, seed=1000 * seed + s)
        net.apply(x)
        phi = hidden.apply(net.params[:-1], x)[0]
        nngp.append(ro.sigma_w**2 * phi @ phi.T / phi.shape[1] + ro.sigma_b**2)
        ntk.append(net.empirical_ntk(x))
    iu = np.triu_indices(3)
    for samples, ref in ((np.array(nngp), k.nngp), (np.array(ntk), k.ntk)):
        mean, se = samples.mean(axis=0), samples.std(axis=0, ddof=1) / math.sqrt(draws)
        assert np.all(np.abs(mean - ref)[iu] <= 5.5 * se[iu]), (label, np.abs(mean - ref)[iu] / se[iu])


def test_network_with_spatial_in_dim_and_rnd_models():
    # the shape protocol: in_dim given as the example shape; the RND models take images too
    arch, shape = SMOOTH["conv2d"]
    x = images(3, shape, seed=12)
    net = arch.init(4, out_dim=2, seed=1, in_dim=shape)
    assert net.in_shape == shape and net.apply(x).shape == (3, 2)
    with pytest.raises(ne.ShapeError):
        net.apply(images(3, (4, 5, 3)))
    model = ne.RND(predictor=arch, width=4, heads=2, seed=0).fit(x, steps=3, lr=1e-3)
    assert model.error(images(2, shape, seed=13)).shape == (2,)
