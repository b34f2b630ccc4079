"""The statements of THEORY.md C1-C9, registered once (ids, titles, text, LaTeX,
dependencies). Checks attach to these ids from the ``*_checks`` modules."""
from .registry import claim

claim("C1", "Kernel recursion and dual activations",
      "K^1 = sw^2 <x,x'>/d + sb^2, Theta^1 = K^1; K^{l+1} = sw^2 E[phi(u)phi(v)] + sb^2, "
      "Theta^{l+1} = K^{l+1} + sw^2 E[phi'(u)phi'(v)] Theta^l; closed-form dual activations agree "
      "with 2-D Gaussian quadrature to working precision.",
      r"K^{l+1}=\sigma_w^2\,\mathbb E[\phi(u)\phi(v)]+\sigma_b^2,\quad "
      r"\Theta^{l+1}=K^{l+1}+\sigma_w^2\,\mathbb E[\phi'(u)\phi'(v)]\,\Theta^l",
      property_tests="tests/test_kernels_properties.py")
claim("C2", "Kernel convergence with width",
      "The empirical NTK of a random width-n network converges to Theta and its output covariance "
      "to K, error O(n^{-1/2}); for one hidden layer the output covariance equals K at every width.",
      r"\hat\Theta_n \to \Theta,\ \mathrm{Cov}[f_0]\to K,\ \ \|\hat\Theta_n-\Theta\| = O(n^{-1/2})",
      depends_on=("C1",), property_tests="tests/test_network.py")
claim("C3", "Linearised dynamics",
      "The linearised network under gradient flow satisfies f_t(x) = f_0(x) + Theta_xX A_t (Y - f_0(X)) "
      "exactly at every width with its empirical NTK; k steps of GD replace I - exp(-eta Theta t) "
      "by I - (I - eta Theta)^k.",
      r"f_t(x)=f_0(x)+\Theta_{xX}A_t\,(Y-f_0(X)),\ A_t=\Theta_{XX}^{-1}(I-e^{-\eta\Theta_{XX}t})",
      depends_on=("C1",), property_tests="tests/test_dynamics.py")
claim("C4", "Wide networks train like their linearisation",
      "Trained finite-width networks approach C3's prediction with the analytic Theta as width grows, "
      "error O(n^{-1/2}) for eta < 2/lambda_max(Theta_XX).",
      r"\|f_t^{(n)}-f_t^{\mathrm{lin}}\| = O(n^{-1/2})", depends_on=("C2", "C3"),
      property_tests="tests/test_training_properties.py")
claim("C5", "Deep-ensemble law",
      "Over random initialisations f_t ~ GP(Theta_xX A_t Y, P_t K P_t^*); at t = infinity the variance "
      "vanishes on the training inputs.",
      r"f_t\sim\mathcal{GP}\big(\Theta_{xX}A_tY,\ P_tKP_t^*\big)", depends_on=("C3",),
      property_tests="tests/test_dynamics.py")
claim("C6", "RND residual law (general form)",
      "With g_0 ~ GP(0, K_g), u ~ GP(0, K_u) independent and predictor NTK Theta_g, the RND residual "
      "r_t = g_t - u ~ GP(0, P_t (K_g + K_u) P_t^*), heads i.i.d.",
      r"r_t\sim\mathcal{GP}\big(0,\ P_t(K_g+K_u)P_t^*\big)", depends_on=("C3", "C5"),
      property_tests="tests/test_rnd.py")
claim("C6a", "RND error = twice the deep-ensemble variance (finding 1)",
      "Predictor, target and ensemble members of one architecture: Cov(r_t) = 2 Sigma_t, so "
      "E eps^2(x) = 2 Sigma_t(x, x).",
      r"\mathbb E\,\epsilon^2(x)=2\,\Sigma_t(x,x)", depends_on=("C6",), property_tests="tests/test_rnd.py")
claim("C6b", "Centred RND = deep-ensemble variance",
      "A centred predictor (K_g = 0) gives Cov(r_t) = Sigma_t computed with K = K_u.",
      r"\mathrm{Cov}(r_t)=P_tK_uP_t^*", depends_on=("C6",), property_tests="tests/test_rnd.py")
claim("C6c", "Law of the RND estimator",
      "M eps^2(x) / (2 Sigma_t(x, x)) ~ chi^2_M, the law of M s^2(x)/Sigma_t(x,x) for the sample "
      "variance of an ensemble of M+1 members.",
      r"M\epsilon^2(x)/(2\Sigma_t(x,x))\sim\chi^2_M", depends_on=("C6a",),
      property_tests="tests/test_training_properties.py")
claim("C7", "Bayesian RND = NTK-GP posterior (finding 2)",
      "With a target such that g_0 - u ~ GP(0, Theta_g), r_inf ~ GP(0, Theta - Theta_xX Theta_XX^{-1} Theta_Xx'): "
      "the centred posterior predictive of GP(0, Theta) given noise-free observations.",
      r"r_\infty\sim\mathcal{GP}\big(0,\ \Theta-\Theta_{xX}\Theta_{XX}^{-1}\Theta_{Xx'}\big)",
      depends_on=("C6",), property_tests="tests/test_rnd.py")
claim("C7a", "Bayesian RND with noise",
      "Ridge lambda and target noise N(0, lambda) give Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'.",
      r"\Theta-\Theta_{xX}(\Theta_{XX}+\lambda I)^{-1}\Theta_{Xx'}", depends_on=("C7",),
      property_tests="tests/test_rnd.py")
claim("C7b", "Bayesian RND, NNGP variant",
      "Training only the readout (Theta_g = K) with g_0 - u ~ GP(0, K) gives K - K_xX K_XX^{-1} K_Xx'.",
      r"K-K_{xX}K_{XX}^{-1}K_{Xx'}", depends_on=("C7",), property_tests="tests/test_rnd.py")
claim("C7c", "Bayesian RND at finite width (linearised)",
      "For the linearised predictor with u = g_0 - J_0 xi, the law of r_inf given theta_0 is exactly the "
      "Bayesian linear-regression posterior with features J_0 and prior N(0, I), at any width.",
      r"r_\infty\mid\theta_0\sim\mathcal{GP}\big(0,\ \hat\Theta-\hat\Theta_{xX}\hat\Theta_{XX}^{-1}\hat\Theta_{Xx'}\big)",
      depends_on=("C3", "C7"), property_tests="tests/test_rnd.py")
claim("C8", "Exact posterior sampling (finding 3)",
      "Training head m on u_m(x_i) + y_i (+ e_im) makes s_m = g_m - u_m i.i.d. samples of "
      "GP(Theta_xX (Theta_XX + lambda I)^{-1} Y, C7a's covariance).",
      r"s_m\overset{iid}{\sim}\mathcal{GP}\big(\Theta_{xX}(\Theta_{XX}+\lambda I)^{-1}Y,\ "
      r"\Theta-\Theta_{xX}(\Theta_{XX}+\lambda I)^{-1}\Theta_{Xx'}\big)",
      depends_on=("C7a", "C7c"), property_tests="tests/test_rnd.py")
claim("C9", "Ordering: ensembles are never more uncertain than the NTK-GP posterior",
      "When Theta - K is PSD: Sigma_inf = P K P^* <= P Theta P^* = Theta - Theta_xX Theta_XX^{-1} Theta_Xx' "
      "<= Theta in the Loewner order.",
      r"P K P^*\preceq P\Theta P^*=\Theta-\Theta_{xX}\Theta_{XX}^{-1}\Theta_{Xx'}\preceq\Theta",
      depends_on=("C5", "C7"), property_tests="tests/test_rnd.py")
