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
test inputs ``X_T``), the corrected statement where the printed one is wrong
or, where the printed one holds, a documented false **alternative** (a nearby
wrong statement: a sign, a factor, "at every width" for "in the limit"), the
verdict the checks are expected to reach, and the project claims C1-C9 that
generalise it or specialise it.

Forms are **data**: the printed choices the checks evaluate (a sign, a
factor, the terms of a covariance, the regime "limit" / "every width", the
dependence a proof step claims, the bound a reading states) are the forms'
``params``, read by the checks through :func:`form_params` at call time from
the statement under verification (:func:`in_force`). So exchanging the
printed and the corrected (or alternative) form (:meth:`Statement.exchanged`),
or printing nonsense, changes what is checked and the verdict reached.

Verdicts are *reached by the checks* (:mod:`.verdict`), never read from here:
``expected`` is only what the run compares the reached verdict with.

Checks are plain functions ``check(config, form) -> Result`` with ``form`` in
``("printed", "corrected", "alternative")``, declared with ``@check(number, level)``
in the ``*_checks`` modules (:mod:`.printed_checks`, :mod:`.statement_checks`), or a
level reuses a project claim's check (``reuses``), which checks the printed form.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

from .results import RUN_LEVELS, Config, Result

#: the verdicts a statement can reach (a statement may carry two). ``imprecise``: true
#: under a stated reading, the approximation's error not quantified.
VERDICTS = ("holds", "holds as corrected", "refuted as printed", "holds only in the limit", "gap in the proof",
            "imprecise")
#: what the verifier reports when the checks reach none of the documented verdicts
FAILED_VERDICTS = ("fails", "inconsistent", "error", "unchecked")
FORMS = ("printed", "corrected", "alternative")

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
    alternative : where the printed form holds, a documented false nearby
        statement (``None`` where there is a correction): what the printed form
        is exchanged with, so that exchanging the forms has content.
    expected : the documented verdict(s) the checks must reach.
    defect : what is wrong in print (``None`` if nothing).
    finite_width : the exact finite-width facts behind a limit verdict (``None``
        if the statement is not about a limit, or holds exactly).
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
    alternative: Form | None = None
    defect: str | None = None
    finite_width: str | None = None
    claims: tuple[tuple[str, str], ...] = ()
    reuses: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    property_tests: str | None = None

    @property
    def label(self) -> str:
        """``"Prop 5.1"``, ``"Cor 5.4"``, ``"Thm 5.6"``."""
        return f"{_SHORT[self.kind]} {self.number}"

    def form(self, name: str) -> Form:
        """The printed, corrected or alternative form (``"corrected"`` is the
        printed one if no correction is needed)."""
        if name not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {name!r}")
        if name == "alternative":
            if self.alternative is None:
                raise ValueError(f"{self.label} has no alternative form (it has a correction)")
            return self.alternative
        if name == "corrected" and self.corrected is not None:
            return self.corrected
        return self.printed

    def exchanged(self) -> Statement:
        """The statement with its printed form exchanged for its corrected one
        (or, where the printed form holds, for its alternative); the original
        printed form becomes the correction. ``expected`` is unchanged, so the
        verdict reached from the exchanged forms must differ from it."""
        other = self.corrected if self.corrected is not None else self.alternative
        if other is None:
            raise ValueError(f"{self.label} has neither a corrected nor an alternative form")
        return replace(self, printed=other, corrected=self.printed, alternative=None)

    def with_form(self, name: str, form: Form) -> Statement:
        """A copy with form ``name`` replaced by ``form`` (e.g. nonsense data)."""
        if name not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {name!r}")
        return replace(self, **{name: form})


_SHORT = {"Proposition": "Prop", "Corollary": "Cor", "Theorem": "Thm"}

# the four terms of the converged network's covariance as printed in Prop 5.2
# (and, with kappa_eps = kappa_u + kappa_g, Prop 5.3): (sign, term)
PRINTED_COV_TERMS = (
    (+1, "kappa_TT"),
    (+1, "Theta_TX Theta^-1 kappa_XX Theta^-1 Theta_XT"),
    (-1, "Theta_TX Theta^-1 kappa_XT"),
    (-1, "kappa_TX Theta^-1 Theta_XT"),
)
# the documented false alternative of Prop 5.2 / 5.3: the cross terms' sign flipped
ALTERNATIVE_COV_TERMS = tuple((1, term) for _, term in PRINTED_COV_TERMS)

STATEMENTS: tuple[Statement, ...] = (
    Statement(
        "5.1", "Proposition", "Converged infinitely wide network (Jacot et al.)", None,
        printed=Form("f(x; theta_inf) = f(x; theta_0) - Theta_xX Theta_XX^{-1} (Y - f(X; theta_0)) "
                     "(statement and its restatement in the appendix)", {"sign": -1}),
        corrected=Form("f(x; theta_inf) = f(x; theta_0) + Theta_xX Theta_XX^{-1} (Y - f(X; theta_0)): "
                       "the limit t -> inf of gradient flow, which interpolates f(X; theta_inf) = Y "
                       "(the proof's last equation, f_0 - Theta Theta^{-1} (f_0(X) - Y), has this sign)", {"sign": +1}),
        expected=REFUTED,
        defect="sign: with the minus sign f(X; theta_inf) = 2 f(X; theta_0) - Y, which does not interpolate the data; "
               "typographical: the proof's last equation carries the right sign",
        claims=(("C3", "generalises it: finite t, ridge, discrete GD, exact at every width for the linearised network"),),
    ),
    Statement(
        "5.2", "Proposition", "Law of the converged network over initialisations (Lee et al.)", None,
        printed=Form("over theta_0, f(X_T; theta_inf) ~ N(Theta_TX Theta^{-1} Y, kappa_TT + Theta_TX Theta^{-1} "
                     "kappa_XX Theta^{-1} Theta_XT - (Theta_TX Theta^{-1} kappa_XT + h.c.)) in the infinite-width "
                     "limit (Theta = Theta_XX)", {"cov_terms": PRINTED_COV_TERMS}),
        corrected=None, expected=("holds",),
        alternative=Form("(the cross terms' sign flipped) ... covariance kappa_TT + Theta_TX "
                         "Theta^{-1} kappa_XX Theta^{-1} Theta_XT + (Theta_TX Theta^{-1} kappa_XT + h.c.)",
                         {"cov_terms": ALTERNATIVE_COV_TERMS}),
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
        alternative=Form("(the cross terms' sign flipped) the converged error is a zero-mean GP "
                         "with covariance kappa_eps,TT + Theta_TX Theta^{-1} kappa_eps,XX Theta^{-1} Theta_XT + "
                         "(Theta_TX Theta^{-1} kappa_eps,XT + h.c.)", {"cov_terms": ALTERNATIVE_COV_TERMS}),
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
        defect="factor 2: kappa_eps = kappa_u + kappa_g = 2 kappa, so E[eps^2] = 2 V[f]; typographical: the proof "
               "sketch divides by 2, the statement does not, and Thm 5.6 uses the right factor",
        claims=(("C6a", "its corrected form, at every t"), ("C6b", "a centred predictor removes the factor 2")),
        property_tests="tests/test_rnd.py",
    ),
    Statement(
        "5.5", "Proposition", "Heads are independent at every time", None,
        printed=Form("the K outputs of a network with shared hidden layers are mutually independent GPs for every "
                     "t in [0, inf) (cross-covariance 0), in the infinite-width limit",
                     {"regime": "limit", "rate": 1}),
        corrected=None, expected=("holds only in the limit",),
        alternative=Form("the K outputs are mutually independent (cross-covariance 0) at every "
                         "width and every t", {"regime": "every width"}),
        finite_width="one hidden layer: at t = 0 uncorrelated at every width but dependent, Cov(f_1^2, f_2^2) = "
                     "Var K_hat = sigma_w^4 (E phi^4 - (E phi^2)^2)/n > 0 (exact); trained without labels uncorrelated at "
                     "every width (flipping one head's readout is a symmetry); trained on labels correlated at O(1/n) "
                     "(the flip maps training on Y to training on -Y): n Cov(f_1, f_2) the same at every width (E)",
        claims=(("C6", "heads i.i.d. in the RND residual law"), ("C3", "the linearised flow with the block-diagonal NTK")),
    ),
    Statement(
        "5.6", "Theorem", "One RND model with K heads = an ensemble of K + 1 networks, in law", "Thm 3.4",
        printed=Form("(1/2) eps^2(x) equals in distribution the Bessel-corrected sample variance of K + 1 independently "
                     "trained networks; both are Sigma_f(x, x) / K chi^2_K", {"half": True}),
        corrected=None, expected=("holds",),
        alternative=Form("(without the 1/2) eps^2(x) equals in distribution the sample variance "
                         "of K + 1 independently trained networks", {"half": False}),
        claims=(("C6c", "the same law at finite t"), ("C6a", "the variance it rests on")),
    ),
    Statement(
        "5.7", "Proposition", "The Bayesian target", "Prop 4.1",
        printed=Form("g~(x; vartheta_0, psi_0) = grad_vartheta u(x; vartheta_0)^T psi_0*, psi_0* = psi_0 with its "
                     "readout parameters set to 0, one psi_0* for all heads; in the limit g~ ~ GP(0, Theta^{<=L-1}) and, "
                     "since the readout's NTK share is Theta^L = kappa, kappa_u + kappa_g~ = Theta",
                     {"regime": "limit", "rate": 1}),
        corrected=None, expected=("holds only in the limit",),
        alternative=Form("g~ ~ GP(0, Theta - kappa) at every width (Gaussian at finite width), "
                         "kappa_u + kappa_g~ = Theta", {"regime": "every width"}),
        finite_width="the second moments are exact at every width (Cov(u_0 - g~) = E Theta_hat_n at every depth, = Theta "
                     "at one hidden layer); only the Gaussian law is asymptotic: given vartheta_0, g~ ~ N(0, "
                     "Theta_hat^hid), a scale mixture with excess kurtosis 3 (3 M_04 - M_02^2) / (n M_02^2) at one hidden "
                     "layer (exact). Notation: Theta^{<=L-1} (undefined in the paper) is Theta - kappa, and Theta^L here "
                     "is the readout's share, not C1's full NTK",
        claims=(("C7", "uses it: h = u_0 - g~ ~ GP(0, Theta)"),
                ("C7c", "finite width: exact for the linearised predictor with the full Jacobian")),
    ),
    Statement(
        "5.8", "Theorem", "Bayesian RND error = NTK-GP posterior", "Thm 4.2",
        printed=Form("u(X_T; vartheta_inf) - g~(X_T) ~ N(0, Theta_TT - Theta_TX Theta^{-1} Theta_XT); the proof shows "
                     "u(.; vartheta_0) and g~ uncorrelated and concludes they are independent",
                     {"dependence": 0, "rate": 1}),
        corrected=Form("the law holds in the infinite-width limit, where u(.; vartheta_0) and g~ are independent and "
                       "jointly Gaussian; at finite width they are uncorrelated but dependent (the covariance of "
                       "(1/K)|u|^2 and (1/K)||J^hid||^2 is exactly c / n, c != 0, for one hidden layer), so the independence "
                       "step needs the limit", {"dependence": 1, "rate": 1}),
        expected=("holds only in the limit", "gap in the proof"),
        defect="proof gap: uncorrelated is concluded to be independent; independence and joint Gaussianity hold only "
               "in the limit, which the proof does not show. One-line repair: given vartheta_0, g~ ~ N(0, Theta_hat^hid) "
               "with Theta_hat^hid -> Theta^hid deterministic",
        finite_width="one hidden layer: D(n) = Cov((1/K)|u|^2, (1/K)||J^hid||^2) / (kappa (Theta - kappa)) = c/n exactly, "
                     "c != 0 (derived at S, measured at E); Var(g~ | vartheta_0) varying with vartheta_0 alone shows "
                     "dependence on vartheta_0, D(n) the dependence on u(.; vartheta_0)",
        claims=(("C7", "= Thm 5.8"), ("C7a", "adds noise: Theta_XX + lambda I"), ("C7b", "NNGP variant: readout only"),
                ("C7c", "finite width, exact for the linearised predictor"), ("C9", "ordering against ensembles")),
    ),
    Statement(
        "5.9", "Corollary", "Posterior sampling with a mean estimate", "Cor 4.3",
        printed=Form("with a mean estimate mu~(x) ~= mu_b(x) = Theta_xX Theta^{-1} Y and the K Bayesian-RND errors "
                     "(trained without labels), mu~(x) + eps^b_i(x), i ~ U[1, K], are i.i.d. samples of "
                     "N(mu_b, Sigma_b) (at most K)", {"reading": "mu~ = mu_b", "bound": None}),
        corrected=Form("exact (i.i.d. N(mu_b, Sigma_b)) when mu~ = mu_b; with mu~ the mean of E trained networks "
                       "independent of the RND model the samples have covariance Sigma_b + Sigma_f / E and any two of "
                       "them covariance Sigma_f / E (not i.i.d.: they share mu~)",
                       {"reading": "mu~ = mu_b", "bound": 1}),
        expected=("imprecise",),
        defect="imprecise: exact with mu~ = mu_b, but '~=' leaves the approximation unquantified: a shared random "
               "mu~ (a trained network) correlates the samples by Sigma_f",
        claims=(("C8", "labels folded into the target: exact samples with no mean estimate"),),
    ),
)


def covers(sizes: str, full: str | None = None):
    """Decorator: the sizes an S check's proofs cover at the default run (and
    with ``--full``), stored as ``fn.sizes`` / ``fn.sizes_full``; the report and
    docs/paper.md show them, so a proof at explicit sizes never reads as general."""
    def mark(fn):
        fn.sizes, fn.sizes_full = sizes, full or sizes
        return fn
    return mark


def statement(number: str) -> Statement:
    """The statement numbered ``number`` (``"5.4"``)."""
    for s in STATEMENTS:
        if s.number == number:
            return s
    raise KeyError(f"no statement {number!r}; known: {', '.join(s.number for s in STATEMENTS)}")


_IN_FORCE: ContextVar[Mapping[str, Statement] | None] = ContextVar("ntk_equiv_statement_in_force", default=None)


@contextmanager
def in_force(s: Statement) -> Iterator[Statement]:
    """Within the block, :func:`form_params` reads ``s.number``'s forms from
    ``s`` (an exchanged or edited statement) instead of the catalogue; a
    :class:`contextvars.ContextVar`, so threads and tasks see their own."""
    token = _IN_FORCE.set({**(_IN_FORCE.get() or {}), s.number: s})
    try:
        yield s
    finally:
        _IN_FORCE.reset(token)


def form_params(number: str, form: str) -> dict[str, Any]:
    """The printed choices of ``number``'s ``form``, read at call time from the
    statement in force (:func:`in_force`; else the catalogue), so a changed or
    exchanged form changes what the checks check."""
    s = (_IN_FORCE.get() or {}).get(number) or statement(number)
    return s.form(form).params


# --------------------------------------------------------------------------- #
# the checks: declared with @check(number, level), found by the registry
# (:func:`.registry.statement_checks`; the registry imports this catalogue, not
# the other way round)
# --------------------------------------------------------------------------- #
def levels_of(s: Statement, checks: Mapping[tuple[str, str], StatementCheck]) -> tuple[str, ...]:
    """The S/H/E levels at which ``s`` has a check (own or reused), in order."""
    return tuple(lv for lv in RUN_LEVELS if (s.number, lv) in checks or lv in s.reuses)
