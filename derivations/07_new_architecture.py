# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 07 Extending to a new architecture
#
# Nothing in notebooks 02-06 depends on the architecture: the symbolic proofs
# hold for *any* kernels ($\kappa$, $\Theta$ enter as generic symmetric matrices), so
# a new layer only has to supply correct kernels. Here we add
#
# * an **expression activation** $\phi(x) = x\,\mathrm{erf}(x)$ (no closed form:
#   the library derives $\phi'$ with sympy and, the expression being smooth,
#   computes the dual maps by the Mehler (Hermite) expansion of `ntk_equiv.hermite`,
#   each entry certified by a bound on the tail; 2-D quadrature is for kinked
#   expressions), and
# * a **residual block** $z \mapsto \mathrm{block}(z) + \alpha z$,
#
# and rerun the kernel (C1/C2), dynamics (C3), RND (C6a), Bayesian-RND (C7) and
# ordering (C9) checks on `serial(Dense, Act("x*erf(x)"), residual([Dense, Act("erf"), Dense]), Dense)`.

# %%
from _setup import *  # noqa: F401,F403
from ntk_equiv.symbolic import General, prove_c9

phi = ne.activation("x*erf(x)")
print("phi(x)  =", phi.expr)
print("phi'(x) =", phi.deriv_expr, "(derived by sympy)")

block = [ne.Dense(1.0, 0.0), ne.Act("erf"), ne.Dense(1.0, 0.1)]
arch = ne.serial(ne.Dense(1.2, 0.1), ne.Act("x*erf(x)"), ne.residual(block, alpha=0.8), ne.Dense(1.2, 0.1))
print(arch)

# %% [markdown]
# ## The identities are architecture-free
# E.g. C9's proof: its symbols are the kernel blocks of *whatever* architecture.

# %%
show(prove_c9(General()))

# %% [markdown]
# ## C1/C2 at finite width: the empirical NTK of the new network approaches the kernel

# %%
from ntk_equiv.experiments.kernel_convergence import ntk_error_sweep  # noqa: E402 - the C2 check's experiment

rng = np.random.default_rng(7)
x = rng.standard_normal((4, 2))
widths = [64, 256, 1024]
seeds = 3 if FAST else 8
fit = ntk_error_sweep(arch, x, widths, seeds, seed=7)
print("rms relative NTK error:", dict(zip(widths, np.round(fit.rms, 4).tolist())), fit.summary())
assert -0.8 < fit.slope < -0.3

# %% [markdown]
# ## C3: a linearised network of the new architecture follows the closed form exactly

# %%
X = rng.uniform(-2, 2, (5, 2))
Y = np.cos(X[:, :1])
net = arch.init(128, seed=1).linearize()
eXX = net.empirical_ntk(X)
lr = 1.0 / np.linalg.eigvalsh(eXX)[-1]
trained = net.train(X, Y, lr=lr, steps=50)
pred = ne.linearised_predict(net.empirical_ntk(x, X), eXX, net.apply(x), net.apply(X), Y, lr=lr, steps=50)
err = np.max(np.abs(trained.apply(x) - pred))
print(f"max |GD - closed form| = {err:.1e}")
assert err < 1e-10

# %% [markdown]
# ## C6a, C7, C9 on the new kernels (float64; dual maps by the Mehler expansion)

# %%
n_grid = 11 if FAST else 41  # kernels of ~n_grid^2 / 2 input pairs, each by the Mehler expansion
grid = np.column_stack([np.linspace(-3, 3, n_grid), np.zeros(n_grid)])
rnd = ne.rnd_covariance(arch, X, grid)
ens = ne.ensemble(arch, X, np.zeros(5), grid).cov
bay = ne.bayesian_rnd_covariance(arch, X, grid)
post = ne.gp_posterior(arch, X, np.zeros(5), grid).cov
scale = np.max(np.abs(post))
print(f"C6a max |Cov r - 2 Sigma| = {np.max(np.abs(rnd - 2 * ens)):.1e}; "
      f"C7 max |RND law - posterior| = {np.max(np.abs(bay - post)):.1e}")
assert np.allclose(rnd, 2 * ens, atol=1e-9 * scale) and np.allclose(bay, post, atol=1e-8 * scale)
gap = np.linalg.eigvalsh(bay - ens)
print(f"C9 smallest eigenvalue of (Bayesian - ensemble) covariance: {gap[0]:.1e} (>= -round-off)")
assert gap[0] > -1e-8 * scale

# %% [markdown]
# ## 50 digits
# Quadrature at 50 digits is slow, so the high-precision confirmation uses the
# same residual architecture with the closed-form erf in place of $x\,\mathrm{erf}(x)$.

# %%
arch50 = ne.serial(ne.Dense(1.2, 0.1), ne.Act("erf"), ne.residual(block, alpha=0.8), ne.Dense(1.2, 0.1))
xs = grid[[1, n_grid // 2, n_grid - 2]]
g50 = max_abs(ne.bayesian_rnd_covariance(arch50, X, xs, dps=50) - ne.gp_posterior(arch50, X, np.zeros(5), xs, dps=50).cov)
r50 = max_abs(ne.rnd_covariance(arch50, X, xs, dps=50) - 2 * ne.ensemble(arch50, X, np.zeros(5), xs, dps=50).cov)
print(f"50 digits: C7 gap {g50:.1e}, C6a gap {r50:.1e}")
assert g50 < 1e-45 and r50 < 1e-45

fig, ax = plt.subplots(figsize=(5, 3.3))
sd = lambda c: np.sqrt(np.clip(np.diag(c), 0, None))  # noqa: E731
ax.plot(grid[:, 0], sd(arch.kernel(grid).ntk), "k:", label="prior")
ax.plot(grid[:, 0], sd(bay), "C0", label="Bayesian RND = NTK-GP posterior")
ax.plot(grid[:, 0], sd(ens), "C1", label="deep ensemble")
ax.set_title(r"new architecture: $x\,\mathrm{erf}(x)$ + residual erf block", fontsize=9)
ax.set_xlabel("first input coordinate")
ax.legend(fontsize=7)
save(fig, "07_new_architecture.png")
