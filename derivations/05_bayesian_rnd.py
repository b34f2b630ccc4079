# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 Bayesian RND (docs/theory.md C7, C7a-c, C9; the paper's Prop 5.7, Thm 5.8)
#
# **Statement.** Choose the target so that $h = u_0 - g\sim\mathcal{GP}(0,\Theta)$:
# $g = -J^{hid}_0\xi$, the predictor's Jacobian at initialisation along a random
# tangent that is zero on the readout (the paper's Prop 5.7 writes $+J^{hid}_0\psi^*$: the
# same law). The readout layer's share of $\Theta$ is exactly $\kappa$, the
# hidden layers' share is $\Theta - \kappa$. Then
# $\epsilon_\infty\sim\mathcal{GP}(0, \Theta - \Theta_{xX}\Theta_{XX}^{-1}\Theta_{Xx'})$, the centred
# NTK-GP posterior. With ridge $\lambda$ and target noise $N(0,\lambda)$ (C7a):
# $\Theta - \Theta_{xX}(\Theta_{XX}+\lambda I)^{-1}\Theta_{Xx'}$; readout-only (C7b): the NNGP
# posterior; at finite width with the full Jacobian (C7c): exactly Bayesian linear
# regression on the features $J_0$ (Matheron's rule). And (C9)
# $P \kappa P^* \preceq P\Theta P^* \preceq \Theta$. The limit is all this shows: at finite width
# $u_0$ and $g$ are uncorrelated but not independent (the gap in the proof of Thm 5.8).

# %%
from _setup import *  # noqa: F401,F403
from ntk_equiv.symbolic import General, prove_c7, prove_c7a, prove_c7b, prove_c7c, prove_c9

for prove in (prove_c7, prove_c7a, prove_c7b, prove_c7c, prove_c9):
    show(prove(General()))

# %% [markdown]
# C9's record states the ordering as identities: the gap between the Bayesian
# and the ensemble covariance is $L(\Theta - \kappa)L^\top$ with $L = [I, -\Theta_{xX}\Theta_{XX}^{-1}]$
# (a congruence: PSD whenever $\Theta - \kappa$ is), and $\Theta - P\Theta P^* = B^\top\Theta_{XX}B$.
#
# ## 50 digits: the RND law against the GP posterior

# %%
rng = np.random.default_rng(5)
X = rng.standard_normal((5, 1))
xs = np.array([[-2.0], [0.4], [1.5]])
arch = ne.mlp(2, "relu", sigma_w=1.4, sigma_b=0.1)
for noise, readout in ((0.0, False), (0.05, False), (0.0, True)):
    law = ne.bayesian_rnd_covariance(arch, X, xs, noise=noise, readout_only=readout, dps=50)
    post = ne.gp_posterior(arch, X, np.zeros(5), xs, prior="nngp" if readout else "ntk", noise=noise, dps=50).cov
    gap = max_abs(law - post)
    print(f"noise {noise}, readout_only {readout}: max |RND law - GP posterior| = {gap:.1e}")
    assert gap < 1e-45

# %% [markdown]
# ## Finite width, exact (C7c): Matheron's rule on a real network
# A linearised predictor with the full-Jacobian target $g = u_0 - J_0\xi$,
# trained to convergence: its error equals $J_0(x)\,(\xi - J_0(X)^\top\hat\Theta_{XX}^{-1}J_0(X)\xi)$
# up to the training tolerance, at a width of only 32.

# %%
X3 = np.array([[-1.5], [0.0], [1.5]])  # well-separated inputs: fast convergence to t = inf
b = ne.BayesianRND(arch, width=32, heads=1, jacobian="full", linearized=True, seed=2).fit(X3)
xt = np.linspace(-3, 3, 7)[:, None]
Jx, JX = b.g0.jacobian(xt)[:, 0, :], b.g0.jacobian(X3)[:, 0, :]
xi = b.xi_flat(0)
matheron = Jx @ (xi - JX.T @ np.linalg.solve(JX @ JX.T, JX @ xi))
err = np.max(np.abs(b.sample(xt)[:, 0] - matheron))
print(f"max |error - Matheron sample| = {err:.1e}")
assert err < 1e-5

# %% [markdown]
# ## The ordering, infinite width (figure)

# %%
grid = np.linspace(-3, 3, 121)[:, None]
sd = lambda c: np.sqrt(np.clip(np.diag(c), 0, None))  # noqa: E731
ens = ne.ensemble(arch, X, np.zeros(5), grid).cov
bay = ne.bayesian_rnd_covariance(arch, X, grid)
prior = arch.kernel(grid).ntk
assert np.all(sd(ens) <= sd(bay) + 1e-9) and np.all(sd(bay) <= sd(prior) + 1e-9)
fig, ax = plt.subplots(figsize=(5, 3.3))
ax.plot(grid[:, 0], sd(prior), "k:", label=r"prior $\sqrt{\Theta(x,x)}$")
ax.plot(grid[:, 0], sd(bay), "C0", label=r"Bayesian RND = NTK-GP posterior")
ax.plot(grid[:, 0], sd(ens), "C1", label=r"deep ensemble $\sqrt{\Sigma_\infty}$ (= RND $\sqrt{\epsilon^2/2}$)")
ax.plot(X[:, 0], 0 * X[:, 0], "k|", ms=12)
ax.set_xlabel("x")
ax.set_ylabel("predictive sd")
ax.legend(fontsize=7)
save(fig, "05_bayesian_rnd_ordering.png")
