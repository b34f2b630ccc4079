"""ne.finite_width: the order-1/n fluctuations of MLP kernels against exact
hand-derived values and Monte Carlo of real networks.

Monte Carlo tolerances: z standard errors of the sample variance (se from the
sample fourth moment), z = Phi^{-1}(1 - 1e-6 / (2 m)) for m entries (false alarm
< 1e-6 per test). At one hidden layer the prediction is exact at every width; at
depth >= 2 the O(1/n^2) remainder of Var (b/n in n Var) is removed by
extrapolating a + b/n from two widths, whose standard error follows from the two
samples'.
"""
import numpy as np
import pytest
from scipy.stats import norm

import ntk_equiv as ne
from ntk_equiv.errors import (
    ArchitectureError,
    DegenerateInputError,
    ParameterError,
)
from ntk_equiv.fluctuations import (
    UncoveredArchitectureError,
    finite_width,
    sample,
    width_for,
)

X3 = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.3, -1.2]]) * np.sqrt(3)


def z_for(m: int) -> float:
    return float(norm.isf(1e-6 / (2 * m)))


def test_relu_anchor_single_input():
    # hand-derived (docs/theory.md): ReLU at criticality, one input with x.x/d = 1:
    # one hidden layer n Var[Theta_hat]/Theta^2 = 3, n Var[K_hat]/K^2 = 5 per layer (5 L);
    # deeper (the recursion by hand, module docstring): 58/9 at L = 2, 340/25 at L = 4
    x = np.ones((1, 4))
    for depth, ntk_ratio in ((1, 3.0), (2, 58 / 9), (4, 340 / 25)):
        fw = finite_width(ne.mlp(depth, "relu", sigma_w=np.sqrt(2)), x)
        assert fw.ntk_var[0, 0] / fw.ntk[0, 0] ** 2 == pytest.approx(ntk_ratio, rel=1e-10)
        assert fw.nngp_var[0, 0] / fw.nngp[0, 0] ** 2 == pytest.approx(5.0 * depth, rel=1e-10)


def test_linear_network_wishart():
    # identity activation, no bias: K_hat^{L+1}(x, x) = K^1 prod_l chi2_n / n, so n Var / K^2 = 2 L
    for depth in (1, 3):
        fw = finite_width(ne.mlp(depth, "identity", sigma_w=1.3), X3[:1])
        assert fw.nngp_var[0, 0] / fw.nngp[0, 0] ** 2 == pytest.approx(2.0 * depth, rel=1e-10)


def test_limits_and_symmetry():
    arch = ne.mlp(2, "erf", sigma_w=1.4, sigma_b=0.3)
    fw = finite_width(arch, X3)
    k = arch.kernel(X3)
    np.testing.assert_allclose(fw.ntk, k.ntk, rtol=1e-13)
    np.testing.assert_allclose(fw.nngp, k.nngp, rtol=1e-13)
    for a in (fw.ntk_var, fw.nngp_var, fw.cumulant4, fw.head_cov):
        np.testing.assert_allclose(a, a.T, rtol=1e-12)
    # k4 = Cov(K_ii, K_jj) + 2 Var(K_ij); on the diagonal Var(f^2 - ...) pieces coincide
    np.testing.assert_allclose(np.diag(fw.cumulant4), 3 * np.diag(fw.nngp_var), rtol=1e-12)
    np.testing.assert_allclose(np.diag(fw.head_cov), np.diag(fw.nngp_var), rtol=1e-12)


def test_duplicate_inputs_share_the_diagonal():
    x = np.vstack([X3[:2], X3[:1]])
    fw = finite_width(ne.mlp(2, "relu", sigma_w=1.3, sigma_b=0.1), x)
    ref = finite_width(ne.mlp(2, "relu", sigma_w=1.3, sigma_b=0.1), X3[:2])
    np.testing.assert_allclose(fw.ntk_var[2], [ref.ntk_var[0, 0], ref.ntk_var[0, 1], ref.ntk_var[0, 0]], rtol=1e-12)


def test_means_exact_cases():
    # exact identities (no 1/n correction): one hidden layer; a linear network (E[K_hat^{l+1} | below] is
    # linear in K_hat^l); ReLU on the diagonal (E[relu^2] = k/2 is linear in k and E[step^2] = 1/2 constant)
    fw = finite_width(ne.mlp(1, "erf", sigma_b=0.3), X3[:1])
    assert np.all(fw.ntk_mean == 0) and np.all(fw.nngp_mean == 0)
    fw = finite_width(ne.mlp(3, "identity", sigma_w=1.3, sigma_b=0.4), X3[:1])
    assert abs(fw.ntk_mean[0, 0]) < 1e-10 * fw.ntk[0, 0] and abs(fw.nngp_mean[0, 0]) < 1e-10 * fw.nngp[0, 0]
    fw = finite_width(ne.mlp(3, "relu", sigma_w=1.4, sigma_b=0.3), X3[:1])
    assert abs(fw.ntk_mean[0, 0]) < 1e-10 * fw.ntk[0, 0] and abs(fw.nngp_mean[0, 0]) < 1e-10 * fw.nngp[0, 0]
    fw = finite_width(ne.mlp(3, "tanh(x)", sigma_w=1.4, sigma_b=0.3), X3[:1])  # not an identity for tanh
    assert fw.nngp_mean[0, 0] < -0.05 * fw.nngp[0, 0]


def test_hermite_polynomials_are_the_density_derivatives():
    import sympy

    from ntk_equiv.fluctuations import hermite
    u, v = sympy.symbols("u v")
    g = sympy.Matrix([[1.3, 0.4], [0.4, 0.7]])
    lam = g.inv()
    dens = sympy.exp(-(sympy.Matrix([u, v]).T * lam * sympy.Matrix([u, v]))[0] / 2)
    for order in ((1, 0), (0, 1), (2, 0), (1, 1), (3, 1), (2, 2), (0, 4)):
        ref = (-1) ** sum(order) * sympy.diff(dens, u, order[0], v, order[1]) / dens
        poly = hermite(order, float(lam[0, 0]), float(lam[0, 1]), float(lam[1, 1]))
        got = sum(c * u**p * v**q for (p, q), c in poly.items())
        for pt in ((0.3, -1.1), (1.7, 0.2)):
            assert float((got - ref).subs({u: pt[0], v: pt[1]})) == pytest.approx(0, abs=1e-11)
    k = 1.7  # 1-D: He4 = u^4/k^4 - 6 u^2/k^3 + 3/k^2
    poly = hermite((4, 0), 1 / k)
    assert set(poly) == {(4, 0), (2, 0), (0, 0)}
    assert (poly[4, 0], poly[2, 0], poly[0, 0]) == pytest.approx((k**-4, -6 * k**-3, 3 * k**-2))


def test_readout_averaged_ntk_is_the_library_ntk_averaged_over_readouts():
    # E_w[Theta_hat] = K_hat + tr A for Theta_hat = K_hat + w^T A w: with w = e_c, Theta_hat(e_c) = K_hat + A_cc
    from ntk_equiv.fluctuations import _forward, _readout_averaged_ntk, mlp_layers
    arch = ne.mlp(3, "tanh(x)", sigma_w=1.2, sigma_b=0.3)
    hidden, _ = mlp_layers(arch)
    x = X3[:2]
    n = 6
    net = arch.init(width=n, seed=3)
    net.empirical_ntk(x[:1])
    zs, ks, dense, ws = _forward(arch, net.params, x)
    k1 = 1.2**2 * (x @ x.T) / 3 + 0.3**2
    got = _readout_averaged_ntk(hidden, dense, ws, zs, ks, k1)
    w = net.params[-1][0]
    total = 0
    for c in range(n):
        w[...] = 0.0
        w[0, c] = 1.0
        total = total + net.empirical_ntk(x)
    np.testing.assert_allclose(got, total - (n - 1) * ks[-1], rtol=1e-12)


def means_agree(lo, hi, fw, attrs, iu) -> bool:
    # n (E - lim) = a + b/n + O(1/n^2): a extrapolated from two widths, within z of its standard error
    # (+ 1e-9: the exact zeros of ReLU's diagonal are measured as rounding, with a rounding-sized se)
    z = z_for(len(attrs) * len(iu[0]))
    out = True
    for attr in attrs:
        a, se = extrapolated(lo, hi, attr)
        out &= bool(np.all(np.abs(a - getattr(fw, attr))[iu] <= z * se[iu] + 1e-9))
    return out


def test_means_monte_carlo_and_a_wrong_recursion_fails(monkeypatch):
    # real networks (variance-reduced by exact identities: fluctuations.sample_means) at widths 32 and 128,
    # n (E - lim) extrapolated to a + b/n; the recursion without its Hessian term (the four-point vertex's
    # contribution: every mean 0 at depth 2) is rejected by the same test
    from ntk_equiv import fluctuations as fl
    # one input here (the pairs' recursion: the slow sweep below)
    arch = ne.mlp(2, "erf", sigma_w=1.3, sigma_b=0.2)
    x = X3[:1]
    iu = np.triu_indices(1)
    lo, hi = (fl.sample_means(arch, x, width=w, samples=300, seed=31 * w) for w in (32, 128))
    assert means_agree(lo, hi, finite_width(arch, x), ("nngp_mean", "ntk_mean"), iu)
    pair, diag = fl._pair_mean_step, fl._diag_mean_step
    monkeypatch.setattr(fl, "_diag_mean_step", lambda e, k, t, c, *a: diag(e, k, t, 0 * c, *a))
    monkeypatch.setattr(fl, "_pair_mean_step", lambda e, k, t, c, *a: pair(e, k, t, 0 * c, *a))
    assert not means_agree(lo, hi, finite_width(arch, x), ("nngp_mean",), iu)


def test_refusals():
    with pytest.raises(UncoveredArchitectureError, match="MLPs"):
        finite_width(ne.serial(ne.Dense(), ne.Relu(), ne.residual([ne.Dense(), ne.Relu(), ne.Dense()]), ne.Dense()), X3)
    with pytest.raises(ArchitectureError, match="MLPs"):
        finite_width(ne.serial(ne.Conv(3, (3,)), ne.Relu(), ne.Flatten(), ne.Dense()), X3)
    with pytest.raises(UncoveredArchitectureError):
        finite_width(ne.serial(ne.Dense(), ne.Relu(), ne.Relu(), ne.Dense()), X3)
    with pytest.raises(DegenerateInputError, match="collinear"):  # x and 2x stay collinear through ReLU
        finite_width(ne.mlp(2, "relu"), np.vstack([X3[:1], 2 * X3[:1]]))
    with pytest.raises(DegenerateInputError, match="zero variance"):
        finite_width(ne.mlp(1, "relu"), np.zeros((1, 3)))
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ParameterError):
            width_for(ne.mlp(1, "relu"), X3, rtol=bad)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ParameterError):
            width_for(ne.mlp(1, "relu"), X3, rtol=0.1, prob=bad)


def test_width_for_chebyshev_union():
    arch = ne.mlp(1, "relu", sigma_w=np.sqrt(2))
    x = np.ones((1, 4))
    # one entry, n Var / Theta^2 = 3: n >= 3 / (rtol^2 (1 - prob))
    assert width_for(arch, x, rtol=0.1, prob=0.99) == 30000
    assert width_for(arch, x, rtol=0.1, prob=0.99, bound="gaussian") == int(np.ceil(3 * norm.isf(0.005) ** 2 / 0.01))


def test_one_hidden_layer_matches_monte_carlo_exactly():
    # exact at every n: no remainder allowance
    arch = ne.mlp(1, "relu", sigma_w=1.3, sigma_b=0.2)
    fw = finite_width(arch, X3)
    mc = sample(arch, X3, width=32, samples=1500, seed=11)
    iu = np.triu_indices(3)
    z = z_for(2 * len(iu[0]))
    assert np.all(np.abs(mc.ntk_var - fw.ntk_var)[iu] <= z * mc.ntk_var_se[iu])
    assert np.all(np.abs(mc.nngp_var - fw.nngp_var)[iu] <= z * mc.nngp_var_se[iu])


def extrapolated(lo, hi, attr):
    # n Var(n) = a + b/n: a from two widths, with its standard error
    y1, y2 = getattr(lo, attr), getattr(hi, attr)
    s1, s2 = getattr(lo, attr + "_se"), getattr(hi, attr + "_se")
    n1, n2 = lo.width, hi.width
    return (n2 * y2 - n1 * y1) / (n2 - n1), np.hypot(n2 * s2, n1 * s1) / (n2 - n1)


def test_depth_two_matches_monte_carlo_extrapolated():
    arch = ne.mlp(2, "erf", sigma_w=1.3, sigma_b=0.2)
    fw = finite_width(arch, X3[:2])
    lo, hi = (sample(arch, X3[:2], width=w, samples=700, seed=100 * w) for w in (32, 128))
    iu = np.triu_indices(2)
    z = z_for(2 * len(iu[0]))
    for attr in ("ntk_var", "nngp_var"):
        a, se = extrapolated(lo, hi, attr)
        assert np.all(np.abs(a - getattr(fw, attr))[iu] <= z * se[iu]), (attr, a, getattr(fw, attr), se)


@pytest.mark.slow
def test_means_exact_for_a_linear_network_off_the_diagonal():
    fw = finite_width(ne.mlp(2, "identity", sigma_w=1.3, sigma_b=0.4), X3)
    np.testing.assert_allclose(fw.ntk_mean, 0, atol=1e-10 * fw.ntk.max())
    np.testing.assert_allclose(fw.nngp_mean, 0, atol=1e-10 * fw.nngp.max())


@pytest.mark.slow
@pytest.mark.parametrize("depth, act, widths, samples", [(2, "relu", (64, 128), (3000, 1500)),
                                                        (3, "relu", (32, 64), (4000, 2000)),
                                                        (2, "erf", (64, 256), (3000, 1500)),
                                                        (3, "tanh(x)", (32, 64), (6000, 3000))])
def test_means_monte_carlo_sweep(depth, act, widths, samples, monkeypatch):
    # real networks, n (E - lim) extrapolated from two widths (means_agree); the recursion without the
    # four-point vertex (c = 0 in the mean steps) is rejected by the same data. Without the cross term q
    # the NTK's prediction moves by 0.2-0.7 (ReLU depth 3: 3.33 -> 2.61), about 1-2 extrapolated se here:
    # not asserted (a single width, 15000 networks, separates it: docs/theory.md)
    from ntk_equiv import fluctuations as fl
    arch = ne.mlp(depth, act, sigma_w=np.sqrt(2) if act == "relu" else 1.3, sigma_b=0.0 if act == "relu" else 0.2)
    x = X3
    iu = np.triu_indices(3)
    lo, hi = (fl.sample_means(arch, x, width=w, samples=s, seed=13 * w + depth) for w, s in zip(widths, samples))
    assert means_agree(lo, hi, finite_width(arch, x), ("nngp_mean", "ntk_mean"), iu)
    pair, diag = fl._pair_mean_step, fl._diag_mean_step
    def cut(step):  # c is argument 3 of both steps
        return lambda *a: step(*(0 * v if i == 3 else v for i, v in enumerate(a)))
    monkeypatch.setattr(fl, "_diag_mean_step", cut(diag))
    monkeypatch.setattr(fl, "_pair_mean_step", cut(pair))
    assert not means_agree(lo, hi, finite_width(arch, x), ("nngp_mean",), iu)


@pytest.mark.slow
@pytest.mark.parametrize("depth, act", [(1, "relu"), (2, "relu"), (3, "relu"), (2, "erf"), (2, "tanh(x)")])
def test_monte_carlo_sweep(depth, act):
    # widths 128 and 512, 2000 networks each: n Var extrapolated to a + b/n, within z se of the prediction
    arch = ne.mlp(depth, act, sigma_w=np.sqrt(2) if act == "relu" else 1.3, sigma_b=0.1)
    x = X3[:2]
    fw = finite_width(arch, x)
    lo, hi = (sample(arch, x, width=w, samples=2000, seed=7 * w + depth) for w in (128, 512))
    iu = np.triu_indices(2)
    z = z_for(2 * len(iu[0]))
    for attr in ("ntk_var", "nngp_var"):
        a, se = extrapolated(lo, hi, attr)
        assert np.all(np.abs(a - getattr(fw, attr))[iu] <= z * se[iu]), (attr, a, getattr(fw, attr), se)


def test_target_dependence_equals_the_symbolic_closed_form_at_one_hidden_layer():
    # Thm 5.8's n D(n): finite_width's n Cov(K_hat, tr M) + 2 q / K against the symbolic derivation's closed form
    # evaluated at 30 digits (its float64 Gauss-Hermite version is off by 2e-4 for erf at |x|^2/d = 2)
    from ntk_equiv.experiments.target_dependence import dependence_constant
    for act, v in (("erf", 2.0), ("relu", 0.6)):
        fw = finite_width(ne.mlp(1, act, sigma_w=1.5, sigma_b=0.3), np.array([[np.sqrt(v)]]))
        for heads in (1, 32):
            ref = float(dependence_constant(act, 1.5, 0.3, v, heads, dps=30))
            assert fw.target_dependence(heads)[0] == pytest.approx(ref, rel=1e-11)
    with pytest.raises(ParameterError):
        fw.target_dependence(0)
