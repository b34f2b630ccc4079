"""The checks of the paper's Prop 5.5, Thm 5.8 (and its proof gap) and Cor 5.9
(``ntk_equiv.claims.statement_checks``): the corrected form passes, the printed
form fails where it is wrong (Cor 5.9) and passes where it is right; the
proofs behind them can fail on a wrong premise."""
from __future__ import annotations

import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import symbolic as S
from ntk_equiv.claims.registry import Config, Result
from ntk_equiv.claims.statement_checks import CHECKS
from ntk_equiv.experiments import mean_estimate as me

#: printed and corrected differ only for Cor 5.9
DIFFER = {("5.9", "S"), ("5.9", "H"), ("5.9", "E")}


def test_checks_cover_the_three_statements():
    assert set(CHECKS) == {("5.5", "S"), ("5.5", "E"), ("5.8", "S"), ("5.8", "H"), ("5.8", "E"), ("5.8", "E-gap"),
                           ("5.9", "S"), ("5.9", "H"), ("5.9", "E")}


@pytest.mark.parametrize("key", sorted(CHECKS))
def test_corrected_form_passes(key):
    res = CHECKS[key](Config(), "corrected")
    assert isinstance(res, Result)
    assert res.passed, (key, res.residual, res.tolerance, res.details)


@pytest.mark.parametrize("key", sorted(DIFFER))
def test_printed_cor_5_9_fails(key):
    res = CHECKS[key](Config(), "printed")
    assert not res.passed, (key, res.residual, res.details)


@pytest.mark.parametrize("key", [("5.5", "S"), ("5.8", "S"), ("5.8", "H")])
def test_printed_equals_corrected_where_the_paper_is_right(key):
    """Prop 5.5 and Thm 5.8 hold as printed (in the limit): the printed form
    runs the same check (the cheap levels here; the E levels are the same code)."""
    a, b = CHECKS[key](Config(), "printed"), CHECKS[key](Config(), "corrected")
    assert a.passed and b.passed and a.residual == b.residual


def test_bad_form_is_a_parameter_error():
    with pytest.raises(ne.ParameterError):
        CHECKS[("5.9", "H")](Config(), "as printed")


def test_prop_5_5_proof_fails_with_a_cross_head_block():
    """The kron-structure step is not vacuous: a generic cross-head block in the
    initial covariance survives the projector."""
    for alg in (S.General(), S.Explicit(N=2)):
        p = S.prove_prop_5_5(alg, strict=False, cross=True)
        assert not p.proven and [s.holds for s in p.steps][-1] is False


def test_cor_5_9_printed_differs_exactly_by_sigma_f():
    """H level, 30 digits: the printed law misses Sigma_f in the marginal and the
    pairwise covariance (one trained network), Sigma_f / 3 for a mean of 3,
    nothing for the exact mean; the corrected law holds to 1e-25."""
    rng = np.random.default_rng(4)
    X, x = rng.standard_normal((3, 2)), rng.standard_normal((2, 2))
    ci = me.covariance_identities(ne.mlp(1, "relu", 1.4, 0.5), X, np.sin(X[:, 0]), x, dps=30, members=3)
    r = ci.residuals
    assert ci.worst("corrected") < 1e-25
    assert r["printed", "exact", "marginal"] < 1e-25 and r["printed", "exact", "pairwise"] < 1e-25
    # the printed residual IS Sigma_f (relative to Sigma_b): c = 1 and c = 1/3; the
    # residuals are reported as float64, so they agree to a few float64 ulps
    ulps = 4 * np.finfo(float).eps * ci.sigma_f
    assert abs(r["printed", "network", "pairwise"] - ci.sigma_f) <= ulps
    assert abs(r["printed", "ensemble of 3", "pairwise"] - ci.sigma_f / 3) <= ulps
    assert ci.sigma_f > 1e-3
