"""The analytic power of experiments/power.py against seeded simulations of the same tests."""
import numpy as np
import pytest
from scipy import stats

from ntk_equiv.experiments import power


def test_two_sided_matches_the_normal_and_student_t_laws():
    q = stats.norm.isf(0.025)
    assert power.two_sided(0.0, q) == pytest.approx(0.05, abs=1e-12)
    assert power.two_sided(0.0, stats.t.isf(0.025, 7), df=7) == pytest.approx(0.05, abs=1e-3)
    nct = stats.nct(12, 2.5)
    assert power.two_sided(2.5, 2.0, df=12) == pytest.approx(nct.sf(2.0) + nct.cdf(-2.0), abs=1e-3)
    assert power.two_sided(float("inf"), 5.0) == 1.0
    assert power.two_sided(60.0, 6.0, df=30) == pytest.approx(1.0)  # no nan far in the tail


def test_scale_power_agrees_with_a_seeded_simulation():
    """A whitened scale a ~ 1 + se T tested at |a/c - 1| <= q se/c: simulate and compare."""
    rng = np.random.default_rng(3)
    se, q, df = 0.05, 3.0, 40
    a = 1 + se * rng.standard_t(df, 200_000)
    for name, c in power.COV_ALTERNATIVES.items():
        sim = np.mean(np.abs(a / c - 1) > q * se / c)
        assert power.scale_power(se, q, df, {name: c})[name] == pytest.approx(sim, abs=0.01)


def test_chi2_sum_power_and_size():
    alpha = 1e-6
    assert power.chi2_sum_power(100, alpha, 1.0) == pytest.approx(alpha, rel=1e-6)
    m = power.chi2_sum_size(alpha)
    assert all(power.chi2_sum_power(m, alpha, c) >= power.GOAL for c in (0.7, 1.3))
    assert min(power.chi2_sum_power(m - 1, alpha, c) for c in (0.7, 1.3)) < power.GOAL


def test_stated_and_summary():
    d = power.stated({"cov0.7": 0.9999, "factor": 0.989}, "analytic: x")
    assert d == {"power": {"cov0.7": 0.9999, "factor": 0.989}, "power_method": "analytic: x"}
    assert power.summary(d["power"]) == "power cov0.7 0.99, factor 0.98"
