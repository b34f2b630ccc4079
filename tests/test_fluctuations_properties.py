"""C10 at P: ne.finite_width over random MLPs (depth, activation, sigma_w, sigma_b, inputs).

Properties: the limit kernels equal arch.kernel; variances are >= 0 and the
cross-head covariance obeys Cauchy-Schwarz; at one hidden layer the diagonal
equals docs/theory.md's formula with every moment by scipy's adaptive 1-D
quadrature (an independent route); homogeneous activations without bias scale
like |x|^4.
"""
import numpy as np
import pytest
import scipy.integrate
from hypothesis import given, settings, strategies as st

import ntk_equiv as ne
from ntk_equiv.activations import activation

ACTS = ("relu", "erf", "leaky_relu", "abs", "sin", "tanh(x)", "x*erf(x)")
HOMOGENEOUS = ("relu", "leaky_relu", "abs")

archs = st.tuples(st.integers(1, 3), st.sampled_from(ACTS), st.floats(0.6, 1.8), st.floats(0.0, 0.5))
inputs = st.lists(st.floats(-1.5, 1.5), min_size=6, max_size=6).map(lambda v: np.array(v).reshape(2, 3)).filter(
    lambda x: np.all(np.sum(x * x, axis=1) > 0.2)
    and abs(np.dot(x[0], x[1])) < 0.95 * np.sqrt(np.dot(x[0], x[0]) * np.dot(x[1], x[1])))


def moment(phi, h, k):
    # E[h(u)], u ~ N(0, k), adaptive quadrature split at 0 (kinks of the activations here)
    f = lambda z: h(phi, np.sqrt(k) * z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    return sum(scipy.integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
               for a, b in ((-np.inf, 0), (0, np.inf)))


@pytest.mark.slow  # ~3 s: eight random MLPs through the depth recursion
@settings(max_examples=8)
@given(archs, inputs)
def test_random_mlps(spec, x):
    depth, act, sw, sb = spec
    arch = ne.mlp(depth, act, sigma_w=sw, sigma_b=sb)
    fw = ne.finite_width(arch, x)
    k = arch.kernel(x)
    np.testing.assert_allclose(fw.ntk, k.ntk, rtol=1e-10)
    np.testing.assert_allclose(fw.nngp, k.nngp, rtol=1e-10)
    assert np.all(fw.ntk_var >= -1e-12 * np.max(fw.ntk) ** 2)
    assert np.all(fw.nngp_var >= -1e-12 * np.max(fw.nngp) ** 2)
    bound = np.sqrt(np.outer(np.diag(fw.nngp_var), np.diag(fw.nngp_var)))
    assert np.all(np.abs(fw.head_cov) <= bound * (1 + 1e-9) + 1e-14)
    if depth == 1:
        phi = activation(act)
        k1 = sw**2 * np.sum(x * x, axis=1) / 3 + sb**2
        for i in range(2):
            m = {name: moment(phi, h, k1[i]) for name, h in {
                "a": lambda p, u: p(u) ** 2, "b": lambda p, u: p.derivative(u) ** 2,
                "aa": lambda p, u: p(u) ** 4, "ab": lambda p, u: p(u) ** 2 * p.derivative(u) ** 2,
                "bb": lambda p, u: p.derivative(u) ** 4}.items()}
            want = sw**4 * (m["aa"] - m["a"] ** 2 + k1[i] ** 2 * (3 * m["bb"] - m["b"] ** 2)
                            + 2 * k1[i] * (m["ab"] - m["a"] * m["b"]))
            assert fw.ntk_var[i, i] == pytest.approx(want, rel=1e-8)
    if act in HOMOGENEOUS and sb == 0:
        scaled = ne.finite_width(arch, 1.7 * x)
        np.testing.assert_allclose(scaled.ntk_var, 1.7**4 * fw.ntk_var, rtol=1e-9)
