# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 The deep-ensemble law (docs/theory.md C5)
#
# **Statement.** Over random initialisations, $f_t = f_0 + \Theta_{xX}A_t(Y - f_0(X))$
# with $f_0\sim\mathcal{GP}(0, \kappa)$ ($\kappa$ the NNGP kernel) is a Gaussian process with mean
# $\mu_t(x) = \Theta_{xX}A_tY$ and covariance $\Sigma_t = P_t\kappa P_t^*$,
# $P_t\kappa P_t^* = \kappa_{xx'} - \Theta_{xX}A_t\kappa_{Xx'} - \kappa_{xX}A_t^\top\Theta_{Xx'} + \Theta_{xX}A_t\kappa_{XX}A_t^\top\Theta_{Xx'}$.
# At $t = \infty$ this is the paper's Prop 5.2.
# At $t=\infty$ the variance vanishes on the training inputs.
#
# **Derivation.** $f_t$ is an affine function of the Gaussian vector
# $(f_0(x), f_0(X))$; the proof builds $f_t$ with the library's
# `linearised_mean`, computes its mean and covariance from $E[\xi\xi^\top] = I$
# (general $N$) or $\mathrm{Cov}(Jz) = J\Sigma J^\top$ (explicit $N=2$, generic
# entries), and compares with the library's `projected_cov`. $A$ is an arbitrary
# matrix, so the law holds at every time, step count, learning rate and ridge.

# %%
from _setup import *  # noqa: F401,F403
from ntk_equiv.symbolic import Explicit, General, prove_c5

show(prove_c5(General()))
show(prove_c5(Explicit(N=2)))

# %% [markdown]
# ## 50 digits: the variance on the training inputs at $t = \infty$

# %%
rng = np.random.default_rng(2)
X = rng.standard_normal((5, 1))
Y = np.sin(2 * X)
arch = ne.mlp(2, "relu", sigma_w=1.4, sigma_b=0.1)
g = ne.ensemble(arch, X, Y, X, dps=50)
var_train = max(abs(g.cov[i, i]) for i in range(5))
mean_err = max(abs(g.mean[i, 0] - Y[i, 0]) for i in range(5))
print(f"max Sigma_inf(x_i, x_i) = {mpmath.nstr(var_train, 3)}, max |mu_inf(x_i) - y_i| = {mpmath.nstr(mean_err, 3)}")
assert var_train < 1e-44 and mean_err < 1e-44

# %% [markdown]
# ## Finite width: an ensemble of linearised networks
# $E$ networks of width $n$ (each its own first-order Taylor model at its own
# random initialisation), each trained by $k$ gradient-descent steps, against
# the law of `ne.ensemble` at the same $k$. The mean is checked with a
# tolerance of 5.3 standard errors $\sqrt{\Sigma(x,x)/E}$ (two-sided false alarm
# $10^{-7}$ per point) plus a finite-width allowance of $3/\sqrt n$ of the
# prior scale (C4's $O(n^{-1/2})$).

# %%
xt = np.linspace(-3, 3, 61)[:, None]
members = 30 if FAST else 200
width = 256 if FAST else 1024
lr, k = 0.03, 200
law = ne.ensemble(arch, X, Y, xt, lr=lr, steps=k)
outs = np.array([arch.init(width, seed=s).linearize().train(X, Y, lr=lr, steps=k).apply(xt)[:, 0]
                 for s in range(members)])
sd = np.sqrt(np.clip(np.diag(law.cov), 0, None))
prior_scale = np.sqrt(np.diag(arch.kernel(xt).nngp))
tol = 5.3 * sd / np.sqrt(members) + 3 * prior_scale / np.sqrt(width)
dev = np.abs(outs.mean(0) - law.mean[:, 0])
print(f"max |ensemble mean - mu_t| / tolerance = {np.max(dev / tol):.2f}")
assert np.all(dev <= tol)

fig, ax = plt.subplots(figsize=(5, 3.4))
for o in outs[:15]:
    ax.plot(xt[:, 0], o, color="0.75", lw=0.6)
ax.plot(xt[:, 0], law.mean[:, 0], "C0", label=r"$\mu_t$")
ax.fill_between(xt[:, 0], law.mean[:, 0] - 2 * sd, law.mean[:, 0] + 2 * sd, color="C0", alpha=0.2,
                label=r"$\pm 2\sqrt{\Sigma_t}$")
ax.plot(xt[:, 0], outs.mean(0), "C1--", label=f"mean of {members} networks")
ax.plot(X[:, 0], Y[:, 0], "k.", ms=8)
ax.set_title(f"ensemble of linearised networks, width {width}, {k} GD steps", fontsize=9)
ax.legend(fontsize=7)
save(fig, "03_deep_ensemble_law.png")
