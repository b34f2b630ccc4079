"""The paper's nine numbered statements, as data (thesis chapter 5 numbering).

The paper (Zanger et al., arXiv 2602.19964; its statements and proofs appear
as chapter 5 of M. Zanger's PhD thesis, TU Delft 2026) numbers its results
Prop 5.1 ... Cor 5.9; the arXiv version numbers some of them differently
(reported: Thm 3.1 = Prop 5.3, Cor 3.2 = Cor 5.4, Thm 3.4 = Thm 5.6,
Prop 4.1 = Prop 5.7, Thm 4.2 = Thm 5.8, Cor 4.3 = Cor 5.9).

Each :class:`Statement` holds the statement **as printed**, in the paper's
notation (predictor ``u(x; vartheta_t)``, target ``g(x; psi_0)``, error
``eps_i = u_i - g_i``, signal ``eps^2 = (1/K) sum_i eps_i^2`` over ``K`` heads,
NNGP kernel ``kappa``, NTK ``Theta``, training inputs ``X``, labels ``Y``,
test inputs ``X_T``), the corrected statement where the printed one is wrong,
the verdict the checks are expected to reach, and the project claims C1-C9
that generalise it or specialise it. The printed choices the checks read (a
sign, a factor, the terms of a covariance) are the forms' ``params``: changing
a printed form changes what is checked.

Verdicts are *reached by the checks* (:mod:`.verdict`), never read from here:
``expected`` is only what the run compares the reached verdict with.

Checks are plain functions ``check(config, form) -> Result`` with ``form`` in
``("printed", "corrected")``, declared with ``@check(number, level)`` in
the ``*_checks`` modules (:mod:`.printed_checks`, :mod:`.statement_checks`), or a level
reuses a project claim's check (``reuses``), which checks the printed form.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .registry import Config, Result

#: the verdicts a statement can reach (a statement may carry two)
VERDICTS = ("holds", "holds as corrected", "refuted as printed", "holds only in the limit", "gap in the proof")
#: what the verifier reports when the checks reach none of the documented verdicts
FAILED_VERDICTS = ("fails", "inconsistent", "error", "unchecked")
FORMS = ("printed", "corrected")

REFUTED = ("refuted as printed", "holds as corrected")

StatementCheck = Callable[[Config, str], Result]


@dataclass(frozen=True, eq=False)
class Form:
    """One form of a statement: its text in the paper's notation, and the
    printed choices (``params``) that the checks read."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Statement:
    """A numbered statement of the paper.

    Attributes
    ----------
    number : thesis chapter 5 number, ``"5.1"`` ... ``"5.9"`` (the key).
    kind : ``"Proposition"``, ``"Corollary"`` or ``"Theorem"``.
    title : a short title.
    arxiv : the arXiv version's number (``"Thm 3.1"``) where reported, else ``None``.
    printed : the statement as printed.
    corrected : the corrected statement (``None``: the printed one is what holds).
    expected : the documented verdict(s) the checks must reach.
    if_printed_holds : the verdict when the printed form passes at every level checked.
    if_corrected_holds : the verdict when the printed form fails at every level checked
        and the corrected form passes at every level.
    defect : what is wrong in print (``None`` if nothing).
    claims : ``(claim id, relation)``: project claims that generalise it or that it
        rests on, e.g. ``("C3", "generalises it: finite t, ridge, discrete GD")``.
    reuses : ``{level: (claim id, level)}``: levels checked by a project claim's
        registered check (the printed form only).
    property_tests : the pytest module with its P-level tests, if any.
    """

    number: str
    kind: str
    title: str
    arxiv: str | None
    printed: Form
    corrected: Form | None
    expected: tuple[str, ...]
    if_printed_holds: tuple[str, ...] = ("holds",)
    if_corrected_holds: tuple[str, ...] = REFUTED
    defect: str | None = None
    claims: tuple[tuple[str, str], ...] = ()
    reuses: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    property_tests: str | None = None

    @property
    def label(self) -> str:
        """``"Prop 5.1"``, ``"Cor 5.4"``, ``"Thm 5.6"``."""
        return f"{_SHORT[self.kind]} {self.number}"

    def form(self, name: str) -> Form:
        """The printed or corrected form (the printed one if no correction is needed)."""
        if name not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {name!r}")
        if name == "corrected" and self.corrected is not None:
            return self.corrected
        return self.printed


_SHORT = {"Proposition": "Prop", "Corollary": "Cor", "Theorem": "Thm"}

# the four terms of the converged network's covariance as printed in Prop 5.2
# (and, with kappa_eps = kappa_u + kappa_g, Prop 5.3): (sign, term)
PRINTED_COV_TERMS = (
    (+1, "kappa_TT"),
    (+1, "Theta_TX Theta^-1 kappa_XX Theta^-1 Theta_XT"),
    (-1, "Theta_TX Theta^-1 kappa_XT"),
    (-1, "kappa_TX Theta^-1 Theta_XT"),
)

STATEMENTS: tuple[Statement, ...] = (
    Statement(
        "5.1", "Proposition", "Converged infinitely wide network (Jacot et al.)", None,
        printed=Form("f(x; theta_inf) = f(x; theta_0) - Theta_xX Theta_XX^{-1} (Y - f(X; theta_0)) "
                     "(statement and its restatement in the appendix)", {"sign": -1}),
        corrected=Form("f(x; theta_inf) = f(x; theta_0) + Theta_xX Theta_XX^{-1} (Y - f(X; theta_0)): "
                       "the limit t -> inf of gradient flow, which interpolates f(X; theta_inf) = Y "
                       "(the proof's last equation, f_0 - Theta Theta^{-1} (f_0(X) - Y), has this sign)", {"sign": +1}),
        expected=REFUTED,
        defect="sign: with the minus sign f(X; theta_inf) = 2 f(X; theta_0) - Y, which does not interpolate the data",
        claims=(("C3", "generalises it: finite t, ridge, discrete GD, exact at every width for the linearised network"),),
    ),
    Statement(
        "5.2", "Proposition", "Law of the converged network over initialisations (Lee et al.)", None,
        printed=Form("over theta_0, f(X_T; theta_inf) ~ N(Theta_TX Theta^{-1} Y, kappa_TT + Theta_TX Theta^{-1} "
                     "kappa_XX Theta^{-1} Theta_XT - (Theta_TX Theta^{-1} kappa_XT + h.c.)) in the infinite-width "
                     "limit (Theta = Theta_XX)", {"cov_terms": PRINTED_COV_TERMS}),
        corrected=None, expected=("holds",),
        claims=(("C5", "generalises it: finite t (Sigma_t = P_t kappa P_t^*), ridge, discrete GD"),
                ("C4", "what makes the infinite-width law describe trained finite networks")),
        property_tests="tests/test_dynamics.py",
    ),
    Statement(
        "5.3", "Proposition", "Converged RND error is a Gaussian process", "Thm 3.1",
        printed=Form("the converged error eps(X_T) = u(X_T; vartheta_inf) - g(X_T; psi_0) is a zero-mean GP with "
                     "the covariance of Prop 5.2 with kappa replaced by kappa_eps = kappa_u + kappa_g (Theta the "
                     "predictor's NTK)", {"cov_terms": PRINTED_COV_TERMS}),
        corrected=None, expected=("holds",),
        claims=(("C6", "generalises it: finite t, ridge, different predictor and target architectures"),),
        property_tests="tests/test_rnd.py",
    ),
    Statement(
        "5.4", "Corollary", "RND error vs deep-ensemble variance", "Cor 3.2",
        printed=Form("predictor, target and ensemble members of one architecture: E[eps^2(x)] = V[f(x; theta_inf)], "
                     "eps^2 = (1/K) sum_i eps_i^2", {"factor": 1}),
        corrected=Form("E[eps^2(x)] = 2 V[f(x; theta_inf)] (kappa_eps = 2 kappa), i.e. E[(1/2) eps^2(x)] = "
                       "V[f(x; theta_inf)], the form Thm 5.6 uses", {"factor": 2}),
        expected=REFUTED,
        defect="factor 2: kappa_eps = kappa_u + kappa_g = 2 kappa, so E[eps^2] = 2 V[f] (the proof sketch divides by 2, "
               "the statement does not)",
        claims=(("C6a", "its corrected form, at every t"), ("C6b", "a centred predictor removes the factor 2")),
        property_tests="tests/test_rnd.py",
    ),
    Statement(
        "5.5", "Proposition", "Heads are independent at every time", None,
        printed=Form("the K outputs of a network with shared hidden layers are mutually independent GPs for every "
                     "t in [0, inf) (cross-covariance 0), in the infinite-width limit"),
        corrected=None, expected=("holds only in the limit",), if_printed_holds=("holds only in the limit",),
        claims=(("C6", "heads i.i.d. in the RND residual law"), ("C3", "the linearised flow with the block-diagonal NTK")),
    ),
    Statement(
        "5.6", "Theorem", "One RND model with K heads = an ensemble of K + 1 networks, in law", "Thm 3.4",
        printed=Form("(1/2) eps^2(x) equals in distribution the Bessel-corrected sample variance of K + 1 independently "
                     "trained networks; both are Sigma_f(x, x) / K chi^2_K", {"half": True}),
        corrected=None, expected=("holds",),
        claims=(("C6c", "the same law at finite t"), ("C6a", "the variance it rests on")),
        reuses={"E": ("C6c", "E")},
    ),
    Statement(
        "5.7", "Proposition", "The Bayesian target", "Prop 4.1",
        printed=Form("g~(x; vartheta_0, psi_0) = grad_vartheta u(x; vartheta_0)^T psi_0*, psi_0* = psi_0 with its "
                     "readout parameters set to 0, one psi_0* for all heads; in the limit g~ ~ GP(0, Theta^{<=L-1}) and, "
                     "since the readout's NTK share is Theta^L = kappa, kappa_u + kappa_g~ = Theta"),
        corrected=None, expected=("holds only in the limit",), if_printed_holds=("holds only in the limit",),
        claims=(("C7", "uses it: h = u_0 - g~ ~ GP(0, Theta)"),
                ("C7c", "finite width: exact for the linearised predictor with the full Jacobian")),
    ),
    Statement(
        "5.8", "Theorem", "Bayesian RND error = NTK-GP posterior", "Thm 4.2",
        printed=Form("u(X_T; vartheta_inf) - g~(X_T) ~ N(0, Theta_TT - Theta_TX Theta^{-1} Theta_XT); the proof shows "
                     "u(.; vartheta_0) and g~ uncorrelated and concludes they are independent (at any width)"),
        corrected=Form("the law holds in the infinite-width limit, where u(.; vartheta_0) and g~ are independent and "
                       "jointly Gaussian; at finite width they are uncorrelated but dependent (Var(g~ | vartheta_0) = "
                       "J^hid J^hid^T depends on vartheta_0; the covariance of u^2 and ||J^hid||^2 is exactly c / n, c != 0, for "
                       "one hidden layer), so the independence step needs the limit"),
        expected=("holds only in the limit", "gap in the proof"),
        if_corrected_holds=("holds only in the limit", "gap in the proof"),
        defect="proof gap: uncorrelated is concluded to be independent; independence and joint Gaussianity hold only "
               "in the limit, which the proof does not show",
        claims=(("C7", "= Thm 5.8"), ("C7a", "adds noise: Theta_XX + lambda I"), ("C7b", "NNGP variant: readout only"),
                ("C7c", "finite width, exact for the linearised predictor"), ("C9", "ordering against ensembles")),
    ),
    Statement(
        "5.9", "Corollary", "Posterior sampling with a mean estimate", "Cor 4.3",
        printed=Form("with a mean estimate mu~(x) ~= mu_b(x) = Theta_xX Theta^{-1} Y and the K Bayesian-RND errors "
                     "(trained without labels), mu~(x) + eps^b_i(x), i ~ U[1, K], are i.i.d. samples of "
                     "N(mu_b, Sigma_b) (at most K)"),
        corrected=Form("exact only when mu~ = mu_b; with mu~ one trained network independent of the RND model the "
                       "samples have covariance Sigma_b + Sigma_f and any two of them covariance Sigma_f (not i.i.d.); "
                       "an ensemble mean of E members leaves Sigma_f / E"),
        expected=REFUTED,
        defect="mean estimate: the samples share mu~, so they are i.i.d. N(mu_b, Sigma_b) only if mu~ = mu_b exactly",
        claims=(("C8", "labels folded into the target: exact samples with no mean estimate"),),
    ),
)


def statement(number: str) -> Statement:
    """The statement numbered ``number`` (``"5.4"``)."""
    for s in STATEMENTS:
        if s.number == number:
            return s
    raise KeyError(f"no statement {number!r}; known: {', '.join(s.number for s in STATEMENTS)}")


def form_params(number: str, form: str) -> dict[str, Any]:
    """The printed choices of ``number``'s ``form`` (read at call time, so a
    changed printed form changes what the checks check)."""
    return statement(number).form(form).params


# --------------------------------------------------------------------------- #
# the checks: declared with @check(number, level), found by the registry
# --------------------------------------------------------------------------- #
def statement_checks() -> dict[tuple[str, str], StatementCheck]:
    """Every statement check, ``{(number, level): check(config, form)}``: the
    functions declared ``@check(number, level)`` in the ``*_checks`` modules,
    found by the registry's discovery (:func:`.registry.statement_checks`; an
    unknown number, a duplicate or a level that is also a ``reuses`` link is a
    :class:`~ntk_equiv.errors.CatalogueError`)."""
    from .registry import statement_checks as discovered

    return discovered()


def levels_of(s: Statement, checks: Mapping[tuple[str, str], StatementCheck]) -> tuple[str, ...]:
    """The S/H/E levels at which ``s`` has a check (own or reused), in order."""
    return tuple(lv for lv in ("S", "H", "E") if (s.number, lv) in checks or lv in s.reuses)
