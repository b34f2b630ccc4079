"""Infinite-width kernels (docs/theory.md C1): independent hand-written formulas,
structure (symmetry, PSD, blocks), float64 against the dps=50 path (13
digits, the diagonal included), and the accuracy the naive arccos
formulation lacks.

Errors are ``ntk_equiv.kernels.scaled_error``: ``|error_ij| / sqrt(K_ii K_jj)``
(plain relative error on the diagonal), see its docstring for why.
"""

import mpmath
import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import kernels
from ntk_equiv.kernels import scaled_error

EPS = np.finfo(float).eps


def inputs(n=6, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def as_float(m):
    return np.array(m.tolist(), dtype=float)


# --------------------------------------------------------------------------- #
# independent formulas, written out by hand
# --------------------------------------------------------------------------- #
def test_dense_only_is_the_input_kernel():
    x = inputs()
    k = ne.serial(ne.Dense(1.7, 0.3)).kernel(x)
    hand = 1.7**2 * x @ x.T / 3 + 0.3**2
    assert np.allclose(k.nngp, hand, rtol=4 * EPS, atol=0) and np.allclose(k.ntk, hand, rtol=4 * EPS, atol=0)


@pytest.mark.parametrize("depth", [1, 3])
def test_identity_activation_is_a_linear_kernel(depth):
    # K^{l+1} = sw^2 K^l + sb^2, Theta^{l+1} = K^{l+1} + sw^2 Theta^l (phi' = 1)
    x, sw, sb = inputs(), 1.3, 0.4
    k = theta = sw**2 * x @ x.T / 3 + sb**2
    for _ in range(depth):
        k = sw**2 * k + sb**2
        theta = k + sw**2 * theta
    got = ne.mlp(depth, "identity", sw, sb).kernel(x)
    assert scaled_error(got.nngp, k) <= 20 * EPS and scaled_error(got.ntk, theta) <= 20 * EPS


def test_one_hidden_layer_relu_is_the_arc_cosine_kernel():
    # Cho & Saul (2009) written out: theta = arccos(rho),
    # K = sw^2 sqrt(k11 k22) (sin theta + (pi - theta) cos theta) / (2 pi) + sb^2,
    # Theta = K + sw^2 (pi - theta) / (2 pi) K^1
    x, sw, sb = inputs(n=7, d=4, seed=1), 1.6, 0.2
    k1 = sw**2 * x @ x.T / 4 + sb**2
    norms = np.sqrt(np.outer(np.diag(k1), np.diag(k1)))
    theta = np.arccos(np.clip(k1 / norms, -1, 1))
    np.fill_diagonal(theta, 0.0)  # the diagonal by hand: the angle of x with itself is 0
    k = sw**2 * norms * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi) + sb**2
    ntk = k + sw**2 * (np.pi - theta) / (2 * np.pi) * k1
    got = ne.mlp(1, "relu", sw, sb).kernel(x)
    # arccos is accurate here (random inputs in R^4: no correlation near +-1)
    assert scaled_error(got.nngp, k) <= 1e-14 and scaled_error(got.ntk, ntk) <= 1e-14


def test_one_hidden_layer_erf_is_williams_kernel():
    # Williams (1997): E[erf u erf v] = (2/pi) asin(2 k12 / sqrt((1 + 2 k11)(1 + 2 k22))),
    # E[erf' u erf' v] = (4/pi) / sqrt((1 + 2 k11)(1 + 2 k22) - 4 k12^2)
    x, sw, sb = inputs(n=5, d=2, seed=2), 1.2, 0.5
    k1 = sw**2 * x @ x.T / 2 + sb**2
    d = 1 + 2 * np.diag(k1)
    v = 2 / np.pi * np.arcsin(2 * k1 / np.sqrt(np.outer(d, d)))
    vd = 4 / np.pi / np.sqrt(np.outer(d, d) - 4 * k1**2)
    k = sw**2 * v + sb**2
    got = ne.mlp(1, "erf", sw, sb).kernel(x)
    assert scaled_error(got.nngp, k) <= 1e-14
    assert scaled_error(got.ntk, k + sw**2 * vd * k1) <= 1e-14


def test_sign_adds_nothing_to_the_ntk():
    # phi' = 0 almost everywhere: Theta^{l+1} = K^{l+1}, so Theta = K exactly
    k = ne.mlp(3, "sign", 1.5, 0.3).kernel(inputs())
    assert np.array_equal(k.ntk, k.nngp)


def test_residual_adds_the_scaled_input_kernel():
    # residual(block, alpha)(z) = block(z) + alpha z: K = K_block + alpha^2 K_in (likewise Theta)
    x, alpha = inputs(seed=3), 0.7
    first = ne.Dense(1.4, 0.2)
    block = [ne.Dense(1.1, 0.3), ne.Relu(), ne.Dense(0.9, 0.1)]
    k_in = ne.serial(first).kernel(x)
    k_block = ne.serial(first, *block).kernel(x)
    k_res = ne.serial(first, ne.residual(block, alpha)).kernel(x)
    for part in ("nngp", "ntk"):
        hand = getattr(k_block, part) + alpha**2 * getattr(k_in, part)
        assert scaled_error(getattr(k_res, part), hand) <= 8 * EPS


def test_zero_norm_input_with_bias():
    # x = 0 gives K^1(0, x') = sb^2 for every x': after a ReLU layer the hand formula
    # of the arc-cosine kernel with k11 = k12 = sb^2 (correlation sb / sqrt(k22))
    sw, sb = 1.5, 0.4
    x = np.vstack([np.zeros(3), inputs(n=3)])
    got = ne.mlp(1, "relu", sw, sb).kernel(x)
    k1 = sw**2 * x @ x.T / 3 + sb**2
    assert np.all(k1[0] == sb**2)
    kk = k1[0, 1:]
    s = np.sqrt(k1[0, 0] * np.diag(k1)[1:])
    th = np.arccos(kk / s)
    expect = sw**2 * s * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi) + sb**2
    assert np.allclose(got.nngp[0, 1:], expect, rtol=1e-14, atol=0)
    assert got.nngp[0, 0] == pytest.approx(sw**2 * sb**2 / 2 + sb**2, rel=2 * EPS)


# --------------------------------------------------------------------------- #
# structure
# --------------------------------------------------------------------------- #
ARCHS = {
    "relu": ne.mlp(3, "relu", 1.5, 0.1),
    "erf": ne.mlp(2, "erf", 2.0, 0.5),
    "abs-deep": ne.mlp(6, "abs", 1.1, 0.2),
    "residual-mix": ne.serial(ne.Dense(1.3, 0.2), ne.Erf(), ne.Dense(1.1, 0.2),
                              ne.residual([ne.Dense(1.1, 0.3), ne.Relu(), ne.Dense(0.9, 0.1)], 0.8),
                              ne.Sign(), ne.Dense(1.2, 0.1)),
    "expression": ne.mlp(2, "tanh(x)", 1.5, 0.3),
}


@pytest.mark.parametrize("name", ARCHS)
def test_symmetric_and_psd(name):
    x = inputs(n=10, d=4, seed=4)
    x[1] = -x[0]
    x[2] = 2 * x[0]
    k = ARCHS[name].kernel(x)
    for m in (k.nngp, k.ntk):
        assert np.array_equal(m, m.T)  # the upper triangle is computed once and mirrored
        w = np.linalg.eigvalsh(m)
        # eigvalsh is backward stable: eigenvalues of m + E with ||E|| <~ n eps ||m||
        assert w[0] >= -10 * len(m) * EPS * w[-1], w[0]


@pytest.mark.parametrize("name", ARCHS)
def test_cross_kernel_blocks_equal_the_joint_kernel(name):
    x1, x2 = inputs(n=4, d=3, seed=5), inputs(n=3, d=3, seed=6)
    x2[0] = x1[2]  # a shared point
    joint = ARCHS[name].kernel(np.vstack([x1, x2]))
    cross = ARCHS[name].kernel(x1, x2)
    first = ARCHS[name].kernel(x1)
    diag = np.diag(joint.nngp), np.diag(joint.ntk)
    for i, part in enumerate(("nngp", "ntk")):
        j = getattr(joint, part)
        # the same formulas on dot products from different BLAS calls: a few eps of the scale
        assert scaled_error(getattr(cross, part), j[:4, 4:], diag[i][:4], diag[i][4:]) <= 16 * EPS
        assert scaled_error(getattr(first, part), j[:4, :4]) <= 16 * EPS
        # the shared point: its cross entry is computed as a self pair (angle exactly 0), so it
        # equals its variance up to the rounding of |x|^2 in the two calls (einsum vs BLAS)
        assert getattr(cross, part)[2, 0] == pytest.approx(getattr(first, part)[2, 2], rel=8 * EPS)


def test_chunked_pair_list_equals_one_pass(monkeypatch):
    # float64 cuts the kernel into tiles, each with its own points' self pairs; every
    # entry is the same elementwise computation in either, so not a bit may change
    x = inputs(n=40, d=3, seed=7)
    x2 = np.vstack([x[:5], inputs(n=7, d=3, seed=8)])
    arch = ne.serial(ne.Dense(1.2, 0.2), ne.Abs(), ne.Dense(), ne.residual([ne.Dense(1.0, 0.1), ne.Relu(), ne.Dense()],
                                                                           0.5), ne.Erf(), ne.Dense(1.1, 0.1))
    one, one_cross = arch.kernel(x), arch.kernel(x, x2)
    monkeypatch.setattr(kernels, "CHUNK_PAIRS", 97)
    chunked, chunked_cross = arch.kernel(x), arch.kernel(x, x2)
    for a, b in ((one, chunked), (one_cross, chunked_cross)):
        assert np.array_equal(a.nngp, b.nngp) and np.array_equal(a.ntk, b.ntk)


def test_above_256_inputs_the_tiled_path_is_bitwise_the_one_pass(monkeypatch):
    # 300 inputs -> 45150 pairs > CHUNK_PAIRS: tiles by default; one pass when the budget is lifted
    x = np.random.default_rng(11).standard_normal((300, 4))
    arch = ne.serial(ne.Dense(1.3, 0.1), ne.Relu(), ne.Dense(1.1, 0.2), ne.Erf(), ne.Dense(1.0, 0.1), ne.Abs(), ne.Dense(1.0, 0.1))
    assert 300 * 301 // 2 > kernels.CHUNK_PAIRS
    tiled = arch.kernel(x)
    monkeypatch.setattr(kernels, "CHUNK_PAIRS", 10**9)
    whole = arch.kernel(x)
    assert np.array_equal(tiled.nngp, whole.nngp) and np.array_equal(tiled.ntk, whole.ntk)


def test_high_precision_returns_mpmath_matrices():
    k = ne.mlp(2, "relu", 1.5, 0.1).kernel(inputs(n=3), inputs(n=2, seed=1), dps=40)
    assert k.high_precision and isinstance(k.ntk, mpmath.matrix) and (k.ntk.rows, k.ntk.cols) == (3, 2)


# --------------------------------------------------------------------------- #
# float64 against 50 digits
# --------------------------------------------------------------------------- #
F64_VS_HP = {
    **{f"mlp-{a}": ne.mlp(4, a, 1.7, 0.2, **({"alpha": 0.1} if a == "leaky_relu" else {}))
       for a in ("relu", "leaky_relu", "abs", "erf", "identity", "sign", "sin", "cos")},
    "residual-mix": ARCHS["residual-mix"],
    "no-bias-relu": ne.mlp(5, "relu", 1.4, 0.0),
}


@pytest.mark.parametrize("name", F64_VS_HP)
def test_float64_matches_50_digits(name):
    x = inputs(n=8, d=3, seed=8)
    x[1] = -x[0]  # exactly antipodal
    x[2] = 0.25 * x[0]  # exactly collinear
    if name != "no-bias-relu":
        x[3] = 0.0  # zero norm (needs sigma_b > 0)
    arch = F64_VS_HP[name]
    k64, khp = arch.kernel(x), arch.kernel(x, dps=50)
    for part in ("nngp", "ntk"):
        # 13 significant digits (relative to each entry's scale), the diagonal included
        assert scaled_error(getattr(k64, part), getattr(khp, part)) <= 1e-13, part


def naive_relu_ntk(x, depth, sw, sb):
    """The usual implementation: angle = arccos(k12 / (sqrt(k11) sqrt(k22)))
    (sqrt(k)^2 need not round back to k, so even the diagonal's angle is
    arccos(1 - eps) ~ 1e-8 instead of 0)."""
    k = sw**2 * x @ x.T / x.shape[1] + sb**2
    theta = k.copy()
    for _ in range(depth):
        root = np.sqrt(np.diag(k))
        norms = np.outer(root, root)
        angle = np.arccos(np.clip(k / norms, -1, 1))
        v = norms * (np.sin(angle) + (np.pi - angle) * np.cos(angle)) / (2 * np.pi)
        vdot = (np.pi - angle) / (2 * np.pi)
        k = sw**2 * v + sb**2
        theta = k + sw**2 * vdot * theta
    return theta


def test_deep_relu_ntk_diagonal_to_13_digits_where_arccos_fails():
    # the diagonal (the predictive variances) against 50 digits, plain relative error;
    # arccos(k/sqrt(k k)) near 1 loses half the digits (angle = sqrt of a cancellation)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((12, 5)) * rng.uniform(0.3, 3.0, (12, 1))
    depth, sw, sb = 8, 1.7, 0.3
    arch = ne.mlp(depth, "relu", sw, sb)
    exact = np.array([float(v) for v in np.diag(np.array(arch.kernel(x, dps=50).ntk.tolist(), dtype=object))])
    ours = np.diag(arch.kernel(x).ntk)
    naive = np.diag(naive_relu_ntk(x, depth, sw, sb))
    assert np.max(np.abs(ours - exact) / exact) <= 1e-13
    assert np.max(np.abs(naive - exact) / exact) > 1e-13  # the test has teeth: the usual formula fails it


@pytest.mark.parametrize("name", ["abs", "sign"])
def test_correlations_driven_to_one_keep_their_digits(name):
    # abs and sign drive correlations towards +1 layer after layer: with
    # det = k11 k22 - k12^2 taken directly the angle then carries sqrt(eps)
    # errors (measured 2e-8 for abs, 8e-2 for sign at depth 6); the carried
    # Cauchy-Schwarz gaps keep it at O(eps)
    x = inputs(n=6, d=4, seed=10)
    arch = ne.mlp(6, name, 1.3, 0.3)
    k64, khp = arch.kernel(x), arch.kernel(x, dps=50)
    assert scaled_error(k64.ntk, khp.ntk) <= 1e-13 and scaled_error(k64.nngp, khp.nngp) <= 1e-13


def test_nearly_collinear_inputs_keep_their_digits():
    # inputs at angle ~1e-7: the input gaps come from unit-vector differences
    x = inputs(n=4, d=3, seed=11)
    x[1] = x[0] + 1e-7 * x[2]
    x[3] = -x[0] + 1e-6 * x[2]
    for act in ("relu", "abs"):
        arch = ne.mlp(4, act, 1.5, 0.0)
        k64, khp = arch.kernel(x), arch.kernel(x, dps=50)
        assert scaled_error(k64.ntk, khp.ntk) <= 1e-13, act


def test_large_variances_do_not_overflow():
    # sin/cos dual maps are exp(-m) sinh/cosh(k12): written with non-positive exponents
    x = inputs(n=4, d=2, seed=12) * 40.0
    for act in ("sin", "cos"):
        k64 = ne.mlp(2, act, 2.0, 0.5).kernel(x)
        khp = ne.mlp(2, act, 2.0, 0.5).kernel(x, dps=30)
        assert np.all(np.isfinite(k64.ntk)) and scaled_error(k64.ntk, khp.ntk) <= 1e-12


def test_diagonal_is_exactly_its_own_variance():
    # self pairs see k12 == k11 bitwise and gap 0: the diagonal equals what the
    # one-point kernel gives, bit for bit
    x = inputs(n=5, seed=13)
    arch = ne.mlp(4, "relu", 1.5, 0.2)
    k = arch.kernel(x)
    for i in range(5):
        assert arch.kernel(x[i:i + 1]).ntk[0, 0] == k.ntk[i, i]


def test_threaded_chunks_are_bitwise_independent_of_thread_count(monkeypatch):
    # 300 inputs -> 45150 pairs > CHUNK_PAIRS: the chunked path; each chunk is an
    # independent elementwise computation, so threads must not change a single bit
    import ntk_equiv.kernels as kern

    x = np.random.default_rng(5).standard_normal((300, 4))
    arch = ne.mlp(3, "relu", sigma_w=1.4, sigma_b=0.2)
    assert 300 * 301 // 2 > kern.CHUNK_PAIRS
    x2 = np.vstack([x[:7], np.random.default_rng(6).standard_normal((290, 4))])
    runs = {}
    for threads in (1, 2, 3):
        monkeypatch.setattr(kern, "KERNEL_THREADS", threads)
        runs[threads] = (arch.kernel(x), arch.kernel(x, x2))
    for threads in (2, 3):
        for one, other in zip(runs[1], runs[threads]):
            assert np.array_equal(one.nngp, other.nngp) and np.array_equal(one.ntk, other.ntk)


@pytest.mark.parametrize("spatial,full", [((), False), ((3, 2), False), ((3, 2), True)])
def test_rect_gather_broadcasts_exactly_what_indexing_gathers(spatial, full):
    # an off-diagonal tile (mi x mj pairs after the n = mi + mj self pairs) gathers by
    # broadcasting; it must give the arrays the index path gives, value for value
    mi, mj = 4, 3
    own = np.arange(mi + mj)
    a = np.concatenate([own, np.repeat(np.arange(mi), mj)])
    b = np.concatenate([own, mi + np.tile(np.arange(mj), mi)])
    v = np.random.default_rng(3).standard_normal((mi + mj,) + spatial)
    fast, slow = kernels.gather(v, a, b, spatial, full, (mi, mj)), kernels.gather(v, a, b, spatial, full)
    for f, s in zip(fast, slow):
        assert f.shape == s.shape and np.array_equal(f, s)
    wrong = kernels.gather(v, a, b, spatial, full, (mj, mi))  # a wrong shape claim is seen
    assert not all(w.shape == s.shape and np.array_equal(w, s) for w, s in zip(wrong, slow))
