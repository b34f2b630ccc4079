"""Exact (S-level) proofs of docs/theory.md's identities with sympy.

One function per proof; each returns a :class:`~.record.Proof` (the
expressions, their simplified differences, the assumptions) and raises
:class:`~ntk_equiv.errors.ClaimFailure` if a difference is not exactly 0
(``strict=False`` returns the failing record instead). Matrix proofs take an
algebra (:class:`~.algebra.General`: every ``N``; :class:`~.algebra.Explicit`:
generic entries, ``N = 2, 3``) and the library formula they check, so a
deliberately wrong formula can be shown to fail.

=====  ==========================================================
claim  proofs
=====  ==========================================================
C1     :func:`prove_relu_dual`, :func:`prove_erf_dual`, :func:`prove_named_duals`, :func:`prove_one_layer_ntk`
C2     :func:`prove_one_layer_ntk` (output covariance = K at every width)
C3     :func:`prove_c3`
C5     :func:`prove_c5`
C6     :func:`prove_c6`, :func:`prove_c6a`, :func:`prove_c6b`
C7     :func:`prove_c7`, :func:`prove_c7a`, :func:`prove_c7b`, :func:`prove_c7c`
C8     :func:`prove_c8`
C9     :func:`prove_c9`
=====  ==========================================================
"""
from .algebra import Explicit, General, algebras
from .bayes import prove_c7, prove_c7a, prove_c7b, prove_c7c, prove_c8
from .duals import prove_erf_dual, prove_named_duals, prove_one_layer_ntk, prove_relu_dual
from .dynamics import prove_c3
from .laws import prove_c5, prove_c6, prove_c6a, prove_c6b, prove_c9
from .record import Proof, Step, combine, conclude

MATRIX_PROOFS = {"C5": prove_c5, "C6": prove_c6, "C6a": prove_c6a, "C6b": prove_c6b, "C7": prove_c7,
                 "C7a": prove_c7a, "C7b": prove_c7b, "C7c": prove_c7c, "C8": prove_c8, "C9": prove_c9}

__all__ = ["Explicit", "General", "MATRIX_PROOFS", "Proof", "Step", "algebras", "combine", "conclude",
           "prove_c3", "prove_c5", "prove_c6", "prove_c6a", "prove_c6b", "prove_c7", "prove_c7a", "prove_c7b",
           "prove_c7c", "prove_c8", "prove_c9", "prove_erf_dual", "prove_named_duals", "prove_one_layer_ntk", "prove_relu_dual"]
from .heads_and_means import prove_cor_5_9, prove_prop_5_5, prove_target_dependence  # noqa: E402 - Prop 5.5, Thm 5.8 gap, Cor 5.9
from .heads_and_means import prove_head_dependence  # noqa: E402 - Prop 5.5 at t = 0
from .heads_and_means import prove_target_dependence_general  # noqa: E402 - Thm 5.8 gap, symbolic n, K

__all__ += ["prove_cor_5_9", "prove_head_dependence", "prove_prop_5_5", "prove_target_dependence", "prove_target_dependence_general"]
