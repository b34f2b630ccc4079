"""S level: every symbolic proof holds, and fails on a deliberately wrong statement.

The wrong statements are the mistakes a derivation could plausibly make: a
flipped sign, a dropped factor 2, the wrong kernel (K for Theta), the ridge
left out of the training operator, no target noise in C7a.
"""
import pytest
import sympy as sp

from ntk_equiv import formulas
from ntk_equiv.errors import ClaimFailure
from ntk_equiv.symbolic import (
    MATRIX_PROOFS, Explicit, General, prove_c3, prove_c6a, prove_c6b, prove_c7a, prove_erf_dual,
    prove_named_duals, prove_one_layer_ntk, prove_relu_dual,
)
from ntk_equiv.symbolic.duals import theory_recursion

CHEAP = sorted(set(MATRIX_PROOFS) - {"C7c"})  # C7c's explicit variant takes ~10 s: slow-marked below


@pytest.mark.parametrize("claim", sorted(MATRIX_PROOFS))
def test_matrix_proof_general_n(claim):
    proof = MATRIX_PROOFS[claim](General())
    assert proof.proven and proof.claim == claim
    assert all(s.holds for s in proof.steps) and len(proof.steps) >= 1


@pytest.mark.parametrize("claim", CHEAP)
def test_matrix_proof_explicit_n2(claim):
    assert MATRIX_PROOFS[claim](Explicit(N=2)).proven


@pytest.mark.slow
@pytest.mark.parametrize("claim", CHEAP)  # C7c at N=3 (a 4 x 4 weight posterior with 3 x 3 inverses) takes minutes
def test_matrix_proof_explicit_n3(claim):
    assert MATRIX_PROOFS[claim](Explicit(N=3)).proven


@pytest.mark.slow
def test_c7c_explicit_n2():
    assert MATRIX_PROOFS["C7c"](Explicit(N=2)).proven


# --------------------------------------------------------------------------- #
# deliberately wrong statements must fail
# --------------------------------------------------------------------------- #
def _flipped_projected(C_xx, C_xX, C_XX, theta_xX, A):
    # sign of the cross terms flipped: C + Theta A C + C A^T Theta + ...
    G = theta_xX * A
    return C_xx + G * C_xX.T + (G * C_xX.T).T + G * C_XX * G.T


def _flipped_posterior(prior_xx, prior_xX, prior_XX, bk, noise=0):
    return 2 * prior_xx - formulas.posterior_cov(prior_xx, prior_xX, prior_XX, bk, noise)


def _flipped_mean(prior_xX, prior_XX, Y, bk, noise=0):
    return -formulas.posterior_mean(prior_xX, prior_XX, Y, bk, noise)


WRONG = {
    "C5": dict(projected=_flipped_projected),
    "C6": dict(projected=_flipped_projected),
    "C6a": dict(factor=1),  # the dropped factor 2
    "C6b": dict(factor=2),  # the un-centred factor for a centred predictor
    "C7": dict(posterior=_flipped_posterior),
    "C7a": dict(noise_var=0),  # ridge without target noise
    "C7b": dict(posterior=_flipped_posterior),
    "C7c": dict(posterior=_flipped_posterior),
    "C8": dict(mean=_flipped_mean),
    "C9": dict(posterior=_flipped_posterior),
}


@pytest.mark.parametrize("claim", sorted(MATRIX_PROOFS))
def test_matrix_proof_fails_on_wrong_statement(claim):
    fn = MATRIX_PROOFS[claim]
    record = fn(General(), strict=False, **WRONG[claim])
    assert not record.proven
    assert any(not s.holds for s in record.steps)
    with pytest.raises(ClaimFailure, match=claim):
        fn(General(), **WRONG[claim])


@pytest.mark.parametrize("claim", ["C6", "C7", "C8"])
def test_explicit_proof_fails_on_wrong_statement(claim):
    # the explicit algebra decides by cancel, independently of sympy's matrix rules
    assert not MATRIX_PROOFS[claim](Explicit(N=2), strict=False, **WRONG[claim]).proven


@pytest.mark.parametrize("alg", [General(), Explicit(N=2)], ids=["general", "explicit"])
def test_c7_with_nngp_posterior_instead_of_ntk_fails(alg):
    from ntk_equiv.symbolic import prove_c7

    assert not prove_c7(alg, strict=False, prior="nngp").proven


def test_c6a_and_c6b_conventions_are_parameters():
    assert prove_c6a(factor=2).proven and prove_c6b(factor=1).proven
    assert not prove_c6a(factor=sp.Rational(1, 2), strict=False).proven


def test_c7a_needs_target_noise_equal_to_ridge():
    lam = sp.Symbol("lambda", positive=True)
    assert prove_c7a(noise_var=lam).proven
    assert not prove_c7a(noise_var=2 * lam, strict=False).proven


# --------------------------------------------------------------------------- #
# C1 / C2 / C3
# --------------------------------------------------------------------------- #
def test_relu_dual_derived_by_polar_integration():
    proof = prove_relu_dual()
    assert proof.proven and len(proof.steps) == 3


def test_relu_dual_fails_with_flipped_sign():
    from ntk_equiv.activations import activation

    good = activation("relu").dual

    def wrong(bk, k11, k12, k22):
        v, vd = good(bk, k11, k12, k22)
        return v - 2 * k12 / (2 * sp.pi), vd  # (sqrt(det) - ... ) sign slip
    assert not prove_relu_dual(strict=False, dual=wrong).proven
    with pytest.raises(ClaimFailure):
        prove_relu_dual(dual=wrong)


def test_relu_step_dual_fails_without_factor_2():
    from ntk_equiv.activations import activation

    good = activation("relu").dual
    record = prove_relu_dual(strict=False, dual=lambda bk, *k: (good(bk, *k)[0], 2 * good(bk, *k)[1]))
    assert not record.proven


def test_erf_dual_derived_by_price():
    assert prove_erf_dual().proven


def test_erf_dual_fails_with_dropped_factor_2():
    from ntk_equiv.activations import activation

    good = activation("erf").dual
    record = prove_erf_dual(strict=False, dual=lambda bk, *k: (good(bk, *k)[0], good(bk, *k)[1] / 2))
    assert not record.proven


def test_named_duals_derived():
    proof = prove_named_duals()
    assert proof.proven and len(proof.steps) == 10


def test_named_duals_fail_with_a_wrong_leaky_relu():
    from ntk_equiv.activations import activation

    good = activation("leaky_relu", alpha=0.1).dual

    def wrong(bk, k11, k12, k22):  # alpha k12 term dropped
        v, vd = good(bk, k11, k12, k22)
        return v - bk.scalar(0.1) * k12, vd
    record = prove_named_duals(strict=False, duals={"leaky_relu": wrong})
    assert not record.proven
    failing = [s.name for s in record.steps if not s.holds]
    assert len(failing) == 1 and failing[0].startswith("leaky_relu: E[phi phi]")


def test_one_layer_ntk_step():
    assert prove_one_layer_ntk().proven


def test_one_layer_ntk_fails_without_the_k_term():
    def wrong(K1, V, Vd, sw, sb):  # Theta^2 = sw^2 Vdot K^1 only (readout's K^2 forgotten)
        K2, T2 = theory_recursion(K1, V, Vd, sw, sb)
        return K2, T2 - K2
    assert not prove_one_layer_ntk(strict=False, recursion=wrong).proven


def test_c3_linearised_dynamics():
    proof = prove_c3()
    assert proof.proven
    names = " ".join(s.name for s in proof.steps)
    assert "dsolve" in names and "induction" in names and "initial condition" in names


def test_c3_fails_when_ridge_is_left_out_of_A():
    def no_ridge(theta_XX, bk, **kw):  # A_t = Theta_XX^{-1}(I - exp(-eta Theta_XX t)): the ridge forgotten
        return formulas.train_operator(theta_XX, bk, **{**kw, "ridge": 0})

    with pytest.raises(ClaimFailure, match="C3"):
        prove_c3(train_operator=no_ridge)


def test_record_reports_assumptions_and_differences():
    proof = MATRIX_PROOFS["C9"](General())
    text = str(proof)
    assert "PROVEN" in text and "assuming" in text
    assert all(d == 0 or getattr(d, "is_ZeroMatrix", False) for d in proof.difference)


# ---- S honesty (issue 17.5): general proofs, and the sizes each S check covers -------- #
def test_thm_5_6_for_symbolic_K_by_laplace_transforms():
    from ntk_equiv.symbolic.paper import prove_5_6_general

    p = prove_5_6_general(strict=False, half=True)
    assert p.proven and "general K" in p.method
    q = prove_5_6_general(strict=False, half=False)  # without the 1/2 only the RND side's step fails
    assert [s.holds for s in q.steps].count(False) == 1 and not q.steps[1].holds


def test_prop_5_1_is_compared_with_the_derived_flow_not_the_library_formula():
    from ntk_equiv.symbolic import Explicit, General
    from ntk_equiv.symbolic.paper import prove_5_1

    for alg in (General(), Explicit(N=2)):
        p = prove_5_1(alg, strict=False, sign=-1, flow=False)
        ode, initial, statement, fit = p.steps
        assert ode.holds and initial.holds  # the flow's solution is derived, whatever the sign
        assert not statement.holds and not fit.holds
        assert prove_5_1(alg, strict=False, sign=+1, flow=False).proven


def test_every_s_check_states_the_sizes_it_covers():
    from ntk_equiv.claims import paper as pp
    from ntk_equiv.claims import registry
    from ntk_equiv.claims.registry import Config, load
    from ntk_equiv.claims.verdict import run_statement_check

    load()
    checks = registry.statement_checks()
    for s in pp.STATEMENTS:
        fn = checks.get((s.number, "S"))
        assert fn is not None and fn.sizes and fn.sizes_full, s.label
        assert "general" in fn.sizes or "explicit" in fn.sizes, s.label
    res = run_statement_check(pp.statement("5.6"), "S", checks[("5.6", "S")], "printed", Config())
    assert res.passed and res.details["sizes"].startswith("general K")


def test_thm_5_8_dependence_for_symbolic_n_and_K():
    from ntk_equiv.symbolic import prove_target_dependence_general

    assert prove_target_dependence_general(strict=False, dependence=1, rate=1).proven
    assert not prove_target_dependence_general(strict=False, dependence=0).proven  # the proof's independence
    assert not prove_target_dependence_general(strict=False, dependence=1, rate=0.5).proven  # not n^-1/2
