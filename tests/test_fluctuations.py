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
from ntk_equiv.errors import ArchitectureError, DegenerateInputError, NtkEquivError, ParameterError
from ntk_equiv.fluctuations import UncoveredArchitectureError, finite_width, sample, width_for

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


def test_one_hidden_layer_means_are_exact_and_deeper_ones_refused():
    fw = finite_width(ne.mlp(1, "relu"), X3)
    assert np.all(fw.ntk_mean == 0) and np.all(fw.nngp_mean == 0)
    with pytest.raises(NtkEquivError, match="one hidden layer"):
        _ = finite_width(ne.mlp(2, "relu"), X3).ntk_mean


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
