"""The gaps of a convolution's output in float64 (kernels.refined_sum_gaps):
from the values where the correlation is away from +-1, mapped exactly near
it. Nearly collinear distinct images are where the margin matters: their
angle after a ReLU is ~sqrt(lo / s), so a gap taken from the values (error
~eps s) gives the NTK an error ~eps / angle."""
import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import kernels
from ntk_equiv.kernels import scaled_error

EPS = np.finfo(float).eps


def _nearly_collinear(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 4, 4, 2))
    # distinct images at correlation ~1 - 1e-14 and ~-1 (after the sign flip) plus an unrelated one
    close = x + 1e-7 * rng.standard_normal(x.shape)
    return np.concatenate([x, close, -close * 1.3, rng.standard_normal(x.shape)])


ARCH = ne.serial(ne.Conv((3, 3), sigma_w=1.4, sigma_b=0.0), ne.Relu(), ne.Conv((3, 3), sigma_w=1.3, sigma_b=0.1),
                 ne.Relu(), ne.Conv((2, 2), padding="VALID", sigma_w=1.2), ne.Erf(), ne.GlobalAvgPool(), ne.Dense(1.1, 0.1))


def _error(x, ref):
    k = ARCH.kernel(x)
    return max(scaled_error(k.nngp, ref[0]), scaled_error(k.ntk, ref[1]))


@pytest.fixture(scope="module")
def case():
    x = _nearly_collinear()
    hp = ARCH.kernel(x, dps=50)
    return x, [np.array(hp.nngp.tolist(), dtype=float), np.array(hp.ntk.tolist(), dtype=float)]


def test_nearly_collinear_images_keep_float64_accuracy(case):
    # 64 eps: a few roundings per layer (the float64-vs-50-digits bound of test_convolutional)
    x, ref = case
    assert _error(x, ref) < 64 * EPS


@pytest.mark.parametrize("margin", [0.0, 1e-15])
def test_a_wrong_refinement_margin_fails(monkeypatch, case, margin):
    # no refinement, or one too narrow for the nearly collinear pairs (their gaps are ~1e-14 s after a
    # layer): their gaps come from the values and the kernels are off by ~5e-11, far outside the bound above
    x, ref = case
    monkeypatch.setattr(kernels, "_SUM_REFINE", margin)
    assert _error(x, ref) > 1e4 * EPS
