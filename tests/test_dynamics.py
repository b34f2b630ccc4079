"""Linearised dynamics (C3) and the deep-ensemble law (C5): finite-width
exactness, the gradient-flow limit of gradient descent, float64 vs mpmath,
and the error paths of ``linearised_predict`` / ``ensemble``."""
import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ntk_equiv as ne
from ntk_equiv import formulas
from ntk_equiv.claims.dynamics_checks import independent_train_operator, sphere_inputs
from ntk_equiv.precision import mp_context
from ntk_equiv.precision import F64, backend

from test_network import architectures


def _data(seed, N=5, n=3, d=3, M=1):
    rng = np.random.default_rng(seed)
    return sphere_inputs(rng, N, d), sphere_inputs(rng, n, d), rng.standard_normal((N, M))


def _own_prediction(net, x, z, y, **kw):
    full = net.out_dim > 1
    return ne.linearised_predict(net.empirical_ntk(z, x, full=full), net.empirical_ntk(x, full=full),
                                 net.apply(z), net.apply(x), y, **kw)


# --------------------------------------------------------------------------- #
# C3 exact at finite width
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("ridge", [0.0, 0.5])
@pytest.mark.parametrize("M", [1, 3])
def test_linearised_gd_matches_formula_exactly(ridge, M):
    x, xt, y = _data(0, M=M)
    z = np.vstack([xt, x])
    net = ne.mlp(2, "relu", 1.4, 0.1).init(24, out_dim=M, seed=1)
    lin = net.linearize()
    lr = 1.0 / (lin.lambda_max(x) + ridge)
    trained = lin.train(x, y, lr=lr, steps=60, ridge=ridge)
    pred = _own_prediction(net, x, z, y, lr=lr, steps=60, ridge=ridge)
    # same recursion evaluated two ways in float64: ~60 steps * eps * cond; 1e-9 per the issue
    assert np.max(np.abs(trained.apply(z) - pred)) <= 1e-9 * np.max(np.abs(pred))


def test_multi_head_needs_the_full_ntk():
    # heads share the hidden layers, so the finite-width NTK couples them:
    # the mean-over-heads NTK is *not* exact, the full (NM, NM) one is.
    x, xt, y = _data(1, M=2)
    net = ne.mlp(1, "erf", 1.5, 0.2).init(6, out_dim=2, seed=3)
    lin = net.linearize()
    lr = 0.5 / lin.lambda_max(x)
    got = lin.train(x, y, lr=lr, steps=40).apply(xt)
    full = _own_prediction(net, x, xt, y, lr=lr, steps=40)
    mean = ne.linearised_predict(net.empirical_ntk(xt, x), net.empirical_ntk(x), net.apply(xt), net.apply(x), y,
                                 lr=lr, steps=40)
    scale = np.max(np.abs(got))
    assert np.max(np.abs(got - full)) <= 1e-9 * scale
    assert np.max(np.abs(got - mean)) > 1e-3 * scale


def test_small_step_gd_converges_to_gradient_flow_at_rate_h():
    """GD with lr = h for t/h steps -> gradient flow at time t.

    Per eigenvalue w of Theta_XX: (1 - h w)^{t/h} = e^{-w t}(1 - t h w^2 / 2 + O(h^2)),
    so f_GD - f_flow = (h t / 2) Theta_xX Theta_XX e^{-t Theta_XX} (Y - f_0(X)) + O(h^2).
    We check the fitted order (1) and the leading coefficient itself.
    """
    x, xt, y = _data(2)
    net = ne.mlp(1, "erf", 1.5, 0.2).init(16, seed=4)
    lin = net.linearize()
    lam = lin.lambda_max(x)
    t = 3.0 / lam
    flow = _own_prediction(net, x, xt, y, t=t)
    txX, tXX = net.empirical_ntk(xt, x), net.empirical_ntk(x)
    lead = 0.5 * t * txX @ F64.sym_fun(tXX, lambda w: w * np.exp(-t * w)) @ (y - net.apply(x))
    hs = np.array([0.1, 0.05, 0.025, 0.0125]) / lam
    errs, rem = [], []
    for h in hs:
        k = int(round(t / h))
        gd = lin.train(x, y, lr=h, steps=k).apply(xt)
        errs.append(np.max(np.abs(gd - flow)))
        rem.append(np.max(np.abs(gd - flow - h * lead)))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    # O(h^2) correction relative to the O(h) term is ~ h lambda_max <= 0.1: slope 1 +- 0.1
    assert abs(slope - 1.0) <= 0.1, slope
    # the remainder after the leading term is O(h^2): it shrinks ~4x per halving of h
    ratios = np.array(rem[:-1]) / np.array(rem[1:])
    assert np.all(ratios > 3.0), ratios


def test_ridge_infinite_time_is_kernel_ridge_regression():
    x, xt, y = _data(3)
    net = ne.mlp(1, "relu").init(32, seed=0)
    lam = 0.3
    lin = net.linearize()
    lr = 1.0 / (lin.lambda_max(x) + lam)
    trained = lin.train(x, y, lr=lr, steps=3000, ridge=lam)
    pred = _own_prediction(net, x, xt, y, t=None, ridge=lam)
    # after 3000 steps the transient (1 - lr (w_min + lam))^3000 < (1 - lam lr)^3000 is below round-off
    assert (1 - lam * lr) ** 3000 < 1e-14
    assert np.max(np.abs(trained.apply(xt) - pred)) <= 1e-9 * np.max(np.abs(pred))


@settings(max_examples=20, deadline=None)
@given(arch=architectures(), width=st.integers(2, 6), out_dim=st.integers(1, 2), N=st.integers(1, 4),
       steps=st.integers(0, 30), ridge=st.sampled_from([0.0, 0.2]), seed=st.integers(0, 2**16))
def test_property_c3_exact_for_random_architectures(arch, width, out_dim, N, steps, ridge, seed):
    rng = np.random.default_rng(seed)
    x, xt = rng.standard_normal((N, 2)), rng.standard_normal((2, 2))
    y = rng.standard_normal((N, out_dim))
    net = arch.init(width, out_dim=out_dim, seed=seed)
    lin = net.linearize()
    lam = lin.lambda_max(x) + ridge
    if lam <= 0:  # e.g. sign activations with sigma_b = 0 and zero readout features
        return
    lr = 1.0 / lam
    z = np.vstack([xt, x])
    got = lin.train(x, y, lr=lr, steps=steps, ridge=ridge).apply(z)
    full = out_dim > 1
    pred = ne.linearised_predict(net.empirical_ntk(z, x, full=full), net.empirical_ntk(x, full=full),
                                 net.apply(z), net.apply(x), y, lr=lr, steps=steps, ridge=ridge)
    scale = np.max(np.abs(pred)) + np.max(np.abs(y)) + 1.0
    assert np.max(np.abs(got - pred)) <= 1e-9 * scale


# --------------------------------------------------------------------------- #
# float64 vs mpmath, and the formulas on hard spectra
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kw", [dict(t=1.5), dict(t=None), dict(steps=20, lr=0.1), dict(t=0.4, ridge=0.3),
                                dict(t=None, ridge=0.1)])
@pytest.mark.parametrize("M", [1, 2])
def test_linearised_predict_dps_agrees_with_float64(kw, M):
    x, xt, y = _data(4, M=M)
    net = ne.mlp(2, "erf", 1.3, 0.2).init(8, out_dim=M, seed=5)
    f64 = _own_prediction(net, x, xt, y, **kw)
    hp = _own_prediction(net, x, xt, y, dps=40, **kw)
    assert isinstance(hp, mpmath.matrix) and (hp.rows, hp.cols) == f64.shape
    kxx = net.empirical_ntk(x, full=M > 1)
    cond = np.linalg.cond(kxx + kw.get("ridge", 0) * np.eye(len(kxx)))
    # float64 error ~ cond * eps * |f|; the mpmath result is exact to 40 digits
    tol = 100 * cond * np.finfo(float).eps * (np.max(np.abs(f64)) + 1)
    assert np.max(np.abs(np.array(hp.tolist(), float) - f64)) <= tol


def test_dps_matches_independent_expm_on_object_inputs():
    rng = np.random.default_rng(6)
    x = sphere_inputs(rng, 6, 3)
    k = ne.mlp(2, "relu", 1.4, 0.1).kernel(x, dps=50)
    T = np.array(k.ntk.tolist(), dtype=object)
    f0 = rng.standard_normal((6, 1))
    y = rng.standard_normal((6, 1))
    got = ne.linearised_predict(T[:2, 2:], T[2:, 2:], f0[:2], f0[2:], y[2:], t=0.9, lr=0.7, dps=50)
    ctx = mp_context(50)  # 65 digits, a context of its own
    A = independent_train_operator(ctx.matrix(T[2:, 2:].tolist()), t=0.9, lr=0.7, ctx=ctx)
    resid = ctx.matrix(y[2:].tolist()) - ctx.matrix(f0[2:].tolist())  # not in float64
    want = ctx.matrix(f0[:2].tolist()) + ctx.matrix(T[:2, 2:].tolist()) * A * resid
    assert max(abs(v) for v in (ctx.matrix(got.tolist()) - want)) < ctx.mpf(10) ** -45


@pytest.mark.parametrize("steps", [1, 50, 5000])
def test_discrete_operator_accurate_for_tiny_eigenvalues(steps):
    # eigenvalues 1, 1e-6, 1e-11, 0: the naive 1 - (1 - eta w)^k loses ~ eps/(eta w k) relative
    rng = np.random.default_rng(7)
    q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    T = q @ np.diag([1.0, 1e-6, 1e-11, 0.0]) @ q.T
    T = (T + T.T) / 2
    got = formulas.train_operator(T, F64, lr=0.9, steps=steps)
    bk = backend(30)
    with bk.context():
        ref = formulas.train_operator(bk.asarray(T), bk, lr=mpmath.mpf(0.9), steps=steps)
    ref = np.array(ref, dtype=float)
    # eigen-decomposition error eps ||T|| moves tiny eigenvalues but the gain
    # (1-(1-eta w)^k)/w ~ eta k is flat there: error ~ k eps scale
    assert np.max(np.abs(got - ref)) <= 1e-12 * steps * np.max(np.abs(ref))


# --------------------------------------------------------------------------- #
# C5: the ensemble law
# --------------------------------------------------------------------------- #
def test_ensemble_at_time_zero_is_the_prior_and_at_infinity_interpolates():
    x, xt, y = _data(8)
    arch = ne.mlp(2, "relu", 1.4, 0.1)
    k = arch.kernel(xt)
    g0 = ne.ensemble(arch, x, y, xt, t=0.0)
    assert np.max(np.abs(g0.mean)) == 0.0
    np.testing.assert_allclose(g0.cov, k.nngp, rtol=1e-14, atol=1e-14)
    ginf = ne.ensemble(arch, x, y, x, t=None)
    cond = np.linalg.cond(arch.kernel(x).ntk)
    tol = 10 * cond * np.finfo(float).eps
    assert np.max(np.abs(ginf.mean - y)) <= tol * np.max(np.abs(y))
    assert np.max(np.abs(ginf.cov)) <= tol * np.max(np.abs(arch.kernel(x).nngp))


@settings(max_examples=15, deadline=None)
@given(arch=architectures(), N=st.integers(1, 4), n=st.integers(1, 3), t=st.floats(0.05, 5.0),
       seed=st.integers(0, 2**16))
def test_property_ensemble_cov_is_explicit_projection(arch, N, n, t, seed):
    rng = np.random.default_rng(seed)
    x, xt = sphere_inputs(rng, N, 2), sphere_inputs(rng, n, 2)
    y = rng.standard_normal((N, 1))
    g = ne.ensemble(arch, x, y, xt, t=t)
    k = arch.kernel(np.vstack([xt, x]))
    T = k.ntk
    w, q = np.linalg.eigh(T[n:, n:])
    A = (q * np.where(w == 0, t, -np.expm1(-t * w) / np.where(w == 0, 1, w))) @ q.T
    P = np.hstack([np.eye(n), -T[:n, n:] @ A])
    sigma = P @ k.nngp @ P.T
    scale = np.max(np.abs(k.nngp)) * (1 + np.max(np.abs(P))) ** 2
    assert np.max(np.abs(g.cov - sigma)) <= 1e-11 * scale
    assert np.min(np.linalg.eigvalsh((g.cov + g.cov.T) / 2)) >= -1e-11 * scale  # a covariance


def test_trained_ensemble_variance_vanishes_on_training_inputs():
    x, _, y = _data(9, N=4)
    arch = ne.mlp(1, "erf", 1.5, 0.3)
    outs = []
    for s in range(8):
        net = arch.init(64, seed=s)
        lr = 1.0 / net.lambda_max(x)
        trained, _ = net.fit_until(x, y, lr=lr, tol=1e-9, max_steps=20000)
        outs.append(trained.apply(x))
    outs = np.array(outs)
    # every member fits Y to 1e-9 * max|y| (fit_until's criterion), so the spread is below 2e-9 max|y|
    assert np.max(np.std(outs, axis=0)) <= 2e-9 * max(np.max(np.abs(y)), 1.0)


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
def test_duplicate_training_inputs():
    x, xt, y = _data(10, N=4)
    xd, yd = np.vstack([x, x[:1]]), np.vstack([y, y[:1] + 1.0])
    arch = ne.mlp(2, "relu")
    with pytest.raises(ne.DegenerateInputError, match="duplicate"):
        ne.ensemble(arch, xd, yd, xt)
    for kw in (dict(t=2.0), dict(ridge=0.1), dict(steps=10, lr=0.1)):
        g = ne.ensemble(arch, xd, yd, xt, **kw)
        assert np.all(np.isfinite(g.mean)) and np.all(np.isfinite(g.cov))
    T = arch.kernel(np.vstack([xt, xd])).ntk
    f0 = np.zeros((len(xt) + len(xd), 1))
    with pytest.raises(ne.KernelError, match="singular"):
        ne.linearised_predict(T[:3, 3:], T[3:, 3:], f0[:3], f0[3:], yd)
    with pytest.raises(ne.KernelError):
        ne.linearised_predict(T[:3, 3:], T[3:, 3:], f0[:3], f0[3:], yd, dps=30)


def test_ill_conditioned_float64_points_to_dps():
    rng = np.random.default_rng(11)
    q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    T = q @ np.diag([1.0, 0.5, 1e-3, 1e-14]) @ q.T
    T = (T + T.T) / 2
    f0, y = np.zeros((4, 1)), rng.standard_normal((4, 1))
    with pytest.raises(ne.IllConditionedError, match="dps"):
        ne.linearised_predict(T, T, f0, f0, y)
    hp = ne.linearised_predict(T, T, f0, f0, y, dps=40)  # well-posed at 40 digits: interpolates
    assert max(abs(hp[i, 0] - y[i, 0]) for i in range(4)) < 1e-20


def test_unstable_discrete_lr():
    x, xt, y = _data(12)
    arch = ne.mlp(1, "relu")
    lam = np.linalg.eigvalsh(arch.kernel(x).ntk)[-1]
    with pytest.raises(ne.StabilityError):
        ne.ensemble(arch, x, y, xt, lr=2.0 / lam, steps=10)
    ne.ensemble(arch, x, y, xt, lr=1.9 / lam, steps=10)
    with pytest.raises(ne.StabilityError):
        T = arch.kernel(x).ntk
        ne.linearised_predict(T, T, np.zeros((5, 1)), np.zeros((5, 1)), y, lr=2.5 / lam, steps=3)


@pytest.mark.parametrize("kw", [dict(lr=0.0), dict(lr=-1.0), dict(t=-1.0), dict(t=float("inf")),
                                dict(ridge=-0.1), dict(steps=-2), dict(steps=2.0), dict(t=1.0, steps=3)])
def test_bad_time_parameters(kw):
    x, xt, y = _data(13)
    with pytest.raises(ne.ParameterError):
        ne.ensemble(ne.mlp(1), x, y, xt, **kw)
    T = ne.mlp(1).kernel(x).ntk
    with pytest.raises(ne.ParameterError):
        ne.linearised_predict(T, T, np.zeros((5, 1)), np.zeros((5, 1)), y, **kw)


def test_shape_mismatches():
    x, xt, y = _data(14)
    T = ne.mlp(1).kernel(np.vstack([xt, x])).ntk
    txX, tXX = T[:3, 3:], T[3:, 3:]
    f0x, f0X = np.zeros((3, 1)), np.zeros((5, 1))
    bad = [
        (txX, tXX, f0x, f0X, y[:4]),
        (txX, tXX[:4, :4], f0x, f0X, y),
        (txX[:, :4], tXX, f0x, f0X, y),
        (txX, tXX, np.zeros((3, 2)), f0X, y),
    ]
    for args in bad:
        with pytest.raises(ne.ShapeError):
            ne.linearised_predict(*args, t=1.0)
    with pytest.raises(ne.ShapeError):
        ne.ensemble(ne.mlp(1), x, y[:4], xt)
    with pytest.raises(ne.ShapeError):
        ne.ensemble(ne.mlp(1), x, y, xt[:, :2])


def test_non_finite_and_empty_inputs():
    x, xt, y = _data(15)
    T = ne.mlp(1).kernel(x).ntk
    f0 = np.zeros((5, 1))
    bad = T.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ne.NonFiniteError):
        ne.linearised_predict(bad, bad, f0, f0, y, t=1.0)
    with pytest.raises(ne.NonFiniteError):
        ne.linearised_predict(T, T, f0, f0, np.full((5, 1), np.inf), t=1.0)
    with pytest.raises(ne.NonFiniteError):
        ne.ensemble(ne.mlp(1), x, np.full((5, 1), np.nan), xt)
    with pytest.raises(ne.EmptyInputError):
        ne.ensemble(ne.mlp(1), np.zeros((0, 3)), np.zeros((0, 1)), xt)


@settings(max_examples=15, deadline=None)
@given(arch=architectures(), N=st.integers(1, 4), n=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_property_prop_5_2_printed_four_term_form_at_t_inf(arch, N, n, seed):
    """Prop 5.2 at ``t = inf`` by two different computations: the library's
    ``ensemble(t=None)`` (the projector ``P kappa P^T``) against the paper's printed
    four-term covariance ``kappa_TT + Theta_TX Theta^-1 kappa_XX Theta^-1 Theta_XT -
    (Theta_TX Theta^-1 kappa_XT + h.c.)`` and mean ``Theta_TX Theta^-1 Y`` (the terms
    summed by ``ntk_equiv.printed`` with a numpy inverse); the alternative with the
    cross terms' sign flipped differs by ``2 (Theta_TX Theta^-1 kappa_XT + h.c.)``."""
    from ntk_equiv import printed
    from ntk_equiv.claims.paper import ALTERNATIVE_COV_TERMS, PRINTED_COV_TERMS

    rng = np.random.default_rng(seed)
    x, xt = sphere_inputs(rng, N, 2), sphere_inputs(rng, n, 2)
    y = rng.standard_normal((N, 1))
    k = arch.kernel(np.vstack([xt, x]))
    w = np.linalg.eigvalsh(k.ntk[n:, n:])
    assume(w[0] > 1e-6 * w[-1])
    g = ne.ensemble(arch, x, y, xt, t=None)
    kap = {"xx": k.nngp[:n, :n], "xX": k.nngp[:n, n:], "XX": k.nngp[n:, n:]}
    th = {"xX": k.ntk[:n, n:], "XX": k.ntk[n:, n:]}
    inv = np.linalg.inv(th["XX"])
    cov = printed.converged_cov(PRINTED_COV_TERMS, kap, th, inv)
    mean = printed.converged_mean(th["xX"], inv, y)
    scale = np.max(np.abs(k.nngp)) * (1 + np.max(np.abs(th["xX"] @ inv))) ** 2
    tol = 100 * N * np.finfo(float).eps * (w[-1] / w[0]) * scale
    assert np.max(np.abs(g.cov - cov)) <= tol
    assert np.max(np.abs(g.mean - mean)) <= tol * (1 + np.max(np.abs(y)))
    cross = th["xX"] @ inv @ kap["xX"].T
    wrong = printed.converged_cov(ALTERNATIVE_COV_TERMS, kap, th, inv)
    np.testing.assert_allclose(wrong - cov, 2 * (cross + cross.T), atol=tol)
