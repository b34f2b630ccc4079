"""The project's claims C1-C10 (docs/theory.md), as data: id, title, statement
(plain text and LaTeX), the claims each rests on, and the pytest module of its
P level. Their checks are found by discovery (:func:`.registry.load`) in the
``*_checks`` modules, each declared with ``@check(claim_id, level)``; the
paper's numbered statements are the other half of the catalogue
(:mod:`.paper`).

Notation (the paper's, docs/theory.md): predictor ``u`` (trained), target ``g``
(fixed), ``K`` heads, error ``eps_i = u_i - g_i``, ``eps^2 = (1/K) sum_i eps_i^2``,
NNGP kernel ``kappa``, NTK ``Theta``, training inputs ``X`` with labels ``Y``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

LEVELS = ("S", "H", "C", "E", "P")


@dataclass
class Claim:
    """One claim: its data, and (filled in by discovery) its checks by level."""

    id: str
    title: str
    statement: str
    latex: str
    depends_on: tuple[str, ...] = ()
    checks: dict[str, Callable] = field(default_factory=dict)
    property_tests: str | None = None  # the pytest module holding the P-level tests

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(lv for lv in LEVELS if lv in self.checks or (lv == "P" and self.property_tests))


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "Kernel recursion and dual activations",
          "kappa^1 = sw^2 <x,x'>/d + sb^2, Theta^1 = kappa^1; kappa^{l+1} = sw^2 E[phi(a)phi(b)] + sb^2, "
          "Theta^{l+1} = kappa^{l+1} + sw^2 E[phi'(a)phi'(b)] Theta^l with (a, b) ~ N(0, kappa^l); closed-form dual "
          "activations agree with 2-D Gaussian quadrature to working precision.",
          r"\kappa^{l+1}=\sigma_w^2\,\mathbb E[\phi(a)\phi(b)]+\sigma_b^2,\quad "
          r"\Theta^{l+1}=\kappa^{l+1}+\sigma_w^2\,\mathbb E[\phi'(a)\phi'(b)]\,\Theta^l",
          property_tests="tests/test_kernels_properties.py"),
    Claim("C2", "Kernel convergence with width",
          "The empirical NTK of a random width-n network f converges to Theta and its output covariance "
          "to kappa: fluctuations O(n^{-1/2}), covariance bias E K_hat - kappa O(1/n); for one hidden layer the "
          "output covariance equals kappa at every width.",
          r"\hat\Theta_n \to \Theta,\ \mathrm{Cov}[f_0]\to\kappa,\ \ \|\hat\Theta_n-\Theta\| = O(n^{-1/2})",
          depends_on=("C1",), property_tests="tests/test_network.py"),
    Claim("C3", "Linearised dynamics",
          "The linearised network under gradient flow satisfies f_t(x) = f_0(x) + Theta_xX A_t (Y - f_0(X)) "
          "exactly at every width with its empirical NTK; k steps of GD replace I - exp(-eta Theta t) "
          "by I - (I - eta Theta)^k.",
          r"f_t(x)=f_0(x)+\Theta_{xX}A_t\,(Y-f_0(X)),\ A_t=\Theta_{XX}^{-1}(I-e^{-\eta\Theta_{XX}t})",
          depends_on=("C1",), property_tests="tests/test_dynamics.py"),
    Claim("C4", "Wide networks train like their linearisation",
          "Trained finite-width networks approach C3's prediction with the analytic Theta as width grows, "
          "error O(n^{-1/2}) for eta < 2/lambda_max(Theta_XX).",
          r"\|f_t^{(n)}-f_t^{\mathrm{lin}}\| = O(n^{-1/2})", depends_on=("C2", "C3"),
          property_tests="tests/test_training_properties.py"),
    Claim("C5", "Deep-ensemble law",
          "Over random initialisations f_t ~ GP(mu_t = Theta_xX A_t Y, Sigma_t = P_t kappa P_t^*); at t = infinity "
          "the variance vanishes on the training inputs.",
          r"f_t\sim\mathcal{GP}\big(\Theta_{xX}A_tY,\ P_t\kappa P_t^*\big)", depends_on=("C3",),
          property_tests="tests/test_dynamics.py"),
    Claim("C6", "RND error law (general form)",
          "Predictor u_0 ~ GP(0, kappa_u) with NTK Theta_u, target g ~ GP(0, kappa_g) independent, u trained on "
          "g(X): the RND error eps_t = u_t - g ~ GP(0, P_t (kappa_u + kappa_g) P_t^*), heads i.i.d.",
          r"\epsilon_t=u_t-g\sim\mathcal{GP}\big(0,\ P_t(\kappa_u+\kappa_g)P_t^*\big)", depends_on=("C3", "C5"),
          property_tests="tests/test_rnd.py"),
    Claim("C6a", "RND error = twice the deep-ensemble variance (finding 1)",
          "Predictor, target and ensemble members of one architecture: Cov(eps_t) = 2 Sigma_t, so "
          "E eps^2(x) = 2 Sigma_t(x, x).",
          r"\mathbb E\,\epsilon^2(x)=2\,\Sigma_t(x,x)", depends_on=("C6",), property_tests="tests/test_rnd.py"),
    Claim("C6b", "Centred RND = deep-ensemble variance",
          "A centred predictor (kappa_u = 0) gives Cov(eps_t) = Sigma_t computed with kappa = kappa_g.",
          r"\mathrm{Cov}(\epsilon_t)=P_t\kappa_gP_t^*", depends_on=("C6",), property_tests="tests/test_rnd.py"),
    Claim("C6c", "Law of the RND estimator",
          "With K heads, K eps^2(x) / (2 Sigma_t(x, x)) ~ chi^2_K, the law of K s^2(x)/Sigma_t(x,x) for the sample "
          "variance of an ensemble of K+1 members.",
          r"K\epsilon^2(x)/(2\Sigma_t(x,x))\sim\chi^2_K", depends_on=("C6a",),
          property_tests="tests/test_training_properties.py"),
    Claim("C7", "Bayesian RND = NTK-GP posterior (finding 2)",
          "With a target such that u_0 - g ~ GP(0, Theta_u), eps_inf ~ GP(0, Theta - Theta_xX Theta_XX^{-1} Theta_Xx'): "
          "the centred posterior predictive of GP(0, Theta) given noise-free observations.",
          r"\epsilon_\infty\sim\mathcal{GP}\big(0,\ \Theta-\Theta_{xX}\Theta_{XX}^{-1}\Theta_{Xx'}\big)",
          depends_on=("C6",), property_tests="tests/test_rnd.py"),
    Claim("C7a", "Bayesian RND with noise",
          "Ridge lambda and target noise N(0, lambda) give Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'.",
          r"\Theta-\Theta_{xX}(\Theta_{XX}+\lambda I)^{-1}\Theta_{Xx'}", depends_on=("C7",),
          property_tests="tests/test_rnd.py"),
    Claim("C7b", "Bayesian RND, NNGP variant",
          "Training only the readout (Theta_u = kappa) with u_0 - g ~ GP(0, kappa) gives "
          "kappa - kappa_xX kappa_XX^{-1} kappa_Xx'.",
          r"\kappa-\kappa_{xX}\kappa_{XX}^{-1}\kappa_{Xx'}", depends_on=("C7",), property_tests="tests/test_rnd.py"),
    Claim("C7c", "Bayesian RND at finite width (linearised)",
          "For the linearised predictor with target g = u_0 - J_0 xi, the law of eps_inf given vartheta_0 is exactly "
          "the Bayesian linear-regression posterior with features J_0 and prior N(0, I), at any width.",
          r"\epsilon_\infty\mid\vartheta_0\sim\mathcal{GP}\big(0,\ \hat\Theta-\hat\Theta_{xX}\hat\Theta_{XX}^{-1}\hat\Theta_{Xx'}\big)",
          depends_on=("C3", "C7"), property_tests="tests/test_rnd.py"),
    Claim("C8", "Exact posterior sampling (finding 3)",
          "Training head i on g_i(x_j) + y_j (+ e_ji) makes s_i = u_i - g_i i.i.d. samples of "
          "GP(Theta_xX (Theta_XX + lambda I)^{-1} Y, C7a's covariance).",
          r"s_i\overset{iid}{\sim}\mathcal{GP}\big(\Theta_{xX}(\Theta_{XX}+\lambda I)^{-1}Y,\ "
          r"\Theta-\Theta_{xX}(\Theta_{XX}+\lambda I)^{-1}\Theta_{Xx'}\big)",
          depends_on=("C7a", "C7c"), property_tests="tests/test_rnd.py"),
    Claim("C9", "Ordering: ensembles are never more uncertain than the NTK-GP posterior",
          "When Theta - kappa is PSD: Sigma_inf = P kappa P^* <= P Theta P^* = Theta - Theta_xX Theta_XX^{-1} Theta_Xx' "
          "<= Theta in the Loewner order.",
          r"P\kappa P^*\preceq P\Theta P^*=\Theta-\Theta_{xX}\Theta_{XX}^{-1}\Theta_{Xx'}\preceq\Theta",
          depends_on=("C5", "C7"), property_tests="tests/test_rnd.py"),
    Claim("C10", "Finite width at order 1/n: predicted fluctuations of the kernels",
          "For an MLP of width n at initialisation, Var[Theta_hat(x_i, x_j)] = v_ij / n + O(1/n^2) with v = ntk_var, likewise "
          "the empirical NNGP kappa_hat of the readout's input (ne.finite_width); exact (no O(1/n^2) term) with one "
          "hidden layer, where n Var[Theta_hat] = sw^4 [Var(phi phi) + kappa1^2 (3 E[(phi' phi')^2] - E[phi' phi']^2) "
          "+ 2 kappa1 Cov(phi phi, phi' phi')]; ReLU at criticality: 3 Theta^2.",
          r"\mathrm{Var}[\hat\Theta_{ij}]=\frac{1}{n}v_{ij}+O(n^{-2})",
          depends_on=("C1", "C2"), property_tests="tests/test_fluctuations_properties.py"),
)
