# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 08 Convolutional networks
#
# Nothing in C5-C9 is specific to fully connected networks: the proofs hold for
# any kernels $\kappa$ (NNGP), $\Theta$ (NTK). A convolutional network only has to supply them.
#
# **The CNTK recursion.** For inputs with positions $s$ (channels last), the
# kernel between $x$ and $x'$ is a *matrix over position pairs*,
# $\kappa[s, s'] = \mathrm{Cov}(h_c(x)[s], h_c(x')[s'])$, the same for every channel
# $c$. A convolution with filter offsets $F$ and fan-in $|F| C$,
# $h'[o] = \sigma_w/\sqrt{|F| C} \sum_{i\in F} W_i\, \phi(h)[o+i] + \sigma_b b$, gives
#
# $$\kappa'[o, o'] = \frac{\sigma_w^2}{|F|} \sum_{i \in F} V\big(\kappa\big)[o+i, o'+i] + \sigma_b^2,\qquad
#   \Theta'[o, o'] = \frac{\sigma_w^2}{|F|} \sum_{i} \dot V(\kappa)\,\Theta\,[o+i, o'+i] + \kappa'[o,o'],$$
#
# since the weights are shared over positions but independent across offsets
# ($E[W_i W_j] = \delta_{ij}$): only pairs of positions moved by the *same*
# offset survive. Hence a convolution maps the **diagonal** $\kappa[s, s]$ to the
# diagonal: a network that ends with `Flatten` (whose kernel is
# $\mathrm{mean}_s \kappa[s,s]$) needs only the diagonal, $O(|S|)$ numbers per pair.
# **Global average pooling** averages the features over positions, so its
# kernel is $\mathrm{mean}_{s,s'} \kappa[s, s']$: it reads every pair of positions,
# and the recursion must carry the full $|S| \times |S|$ covariance from the
# input on. The activation's dual maps act entrywise, with the variances
# $\kappa_{xx}[s,s]$ and $\kappa_{x'x'}[s',s']$ of the two positions.

# %%
from _setup import *  # noqa: F401,F403
from ntk_equiv import kernels
from ntk_equiv.claims.architectures import image_inputs
from ntk_equiv.claims.rnd_checks import matheron_cnn
from ntk_equiv.symbolic import General, prove_c9

rng = np.random.default_rng(8)
shape = (5, 5, 2)
x = image_inputs(rng, 4, shape)
conv = [ne.Conv((3, 3), padding="SAME", sigma_w=1.5, sigma_b=0.1), ne.Relu(),
        ne.Conv((3, 3), padding="CIRCULAR", sigma_w=1.5, sigma_b=0.1), ne.Relu()]
flat = ne.serial(*conv, ne.Flatten(), ne.Dense(1.2, 0.1))
gap = ne.serial(*conv, ne.GlobalAvgPool(), ne.Dense(1.2, 0.1))

# %% [markdown]
# ## The diagonal suffices for Flatten, not for global pooling
# The library picks the diagonal state for `flat` and the full one for `gap`.
# Forcing the full covariance through `flat` changes nothing (to round-off);
# `gap` differs from `flat` by the off-diagonal positions it averages.

# %%
k_diag = flat.kernel(x)
k_full = kernels.evaluate(flat.kernel_fn, x, full=True)
d = max_abs(k_diag.ntk - k_full.ntk) / max_abs(k_diag.ntk)
print(f"Flatten: diagonal vs full spatial state, max rel. difference {d:.1e}")
assert d < 1e-14
k_gap = gap.kernel(x)
print("GlobalAvgPool vs Flatten NNGP (off-diagonal positions matter):\n", np.round(k_gap.nngp - k_diag.nngp, 3))

# %% [markdown]
# ## C2 on a CNN: real networks converge to the CNTK at rate $n^{-1/2}$
# (`n` = channels). With one hidden convolution and pooling the kernels would be exact
# expectations at every width; the network here has two hidden convolutions, and the
# error shrinks like $n^{-1/2}$.

# %%
widths = [16, 64, 256] if FAST else [16, 64, 256, 1024]
seeds = 4 if FAST else 12
theta = gap.kernel(x).ntk
errs = [np.mean([np.linalg.norm(gap.init(n, seed=s).empirical_ntk(x) - theta) / np.linalg.norm(theta)
                 for s in range(seeds)]) for n in widths]
slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
print("relative NTK error:", dict(zip(widths, np.round(errs, 4))), f"slope {slope:.2f} (theory -1/2)")
assert -0.8 < slope < -0.3

# %% [markdown]
# ## C3: a linearised CNN follows the closed form exactly

# %%
X, xt = image_inputs(rng, 5, shape), image_inputs(rng, 3, shape)
Y = np.sin(X.reshape(5, -1)[:, :1])
net = gap.init(16, seed=1).linearize()
eXX = net.empirical_ntk(X)
lr = 1.0 / np.linalg.eigvalsh(eXX)[-1]
trained = net.train(X, Y, lr=lr, steps=40)
pred = ne.linearised_predict(net.empirical_ntk(xt, X), eXX, net.apply(xt), net.apply(X), Y, lr=lr, steps=40)
err = max_abs(trained.apply(xt) - pred)
print(f"max |GD - closed form| = {err:.1e}")
assert err < 1e-10

# %% [markdown]
# ## C6a, C7, C9 on the CNTK, in float64 and at 50 digits

# %%
show(prove_c9(General()))
rnd = ne.rnd_covariance(gap, X, xt)
ens = ne.ensemble(gap, X, np.zeros(5), xt).cov
bay = ne.bayesian_rnd_covariance(gap, X, xt)
post = ne.gp_posterior(gap, X, np.zeros(5), xt).cov
scale = max_abs(post)
print(f"C6a max |Cov r - 2 Sigma| = {max_abs(rnd - 2 * ens):.1e}; C7 max |RND law - posterior| = {max_abs(bay - post):.1e}")
assert max_abs(rnd - 2 * ens) < 1e-10 * scale and max_abs(bay - post) < 1e-10 * scale
gap_eig = np.linalg.eigvalsh(bay - ens)[0]
print(f"C9 smallest eigenvalue of (Bayesian - ensemble) covariance: {gap_eig:.1e}")
assert gap_eig > -1e-10 * scale
small = ne.serial(ne.Conv(3, padding="SAME", sigma_w=1.3, sigma_b=0.2), ne.Relu(), ne.Flatten(), ne.Dense(1.1, 0.1))
X1, x1 = image_inputs(rng, 4, (5, 2)), image_inputs(rng, 2, (5, 2))
g50 = max_abs(ne.bayesian_rnd_covariance(small, X1, x1, dps=50) - ne.gp_posterior(small, X1, np.zeros(4), x1, dps=50).cov)
r50 = max_abs(ne.rnd_covariance(small, X1, x1, dps=50) - 2 * ne.ensemble(small, X1, np.zeros(4), x1, dps=50).cov)
print(f"50 digits (1-D CNN): C7 gap {g50:.1e}, C6a gap {r50:.1e}")
assert g50 < 1e-45 and r50 < 1e-45

# %% [markdown]
# ## C7c at finite width: Bayesian RND on a real CNN is Matheron's rule
# The linearised Bayesian-RND predictor with the full-Jacobian target gives,
# at any width, exactly the Bayesian linear-regression posterior with features
# $J_0$ (checked here on a random CNN of width 16).

# %%
res = matheron_cnn(16, 2, 0.0, False, seed=5)
for name, r in res.items():
    print(name, {k: f"{v:.1e}" if isinstance(v, float) else v for k, v in r.items()})
    assert r["sample_err"] <= r["sample_tol"] and r["cov_err"] <= r["cov_tol"]

# %%
path = np.array([(1 - a) * X[0] + a * X[1] for a in np.linspace(0, 1, 9 if FAST else 25)])
fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
axes[0].loglog(widths, errs, "o-", label="measured")
axes[0].loglog(widths, errs[0] * np.sqrt(widths[0] / np.array(widths)), "k:", label=r"$n^{-1/2}$")
axes[0].set_xlabel("channels n")
axes[0].set_title("CNN: relative error of the empirical NTK", fontsize=9)
axes[0].legend(fontsize=7)
a = np.linspace(0, 1, len(path))
sd = lambda c: np.sqrt(np.clip(np.diag(c), 0, None))  # noqa: E731
axes[1].plot(a, sd(gap.kernel(path).ntk), "k:", label="prior (NTK)")
axes[1].plot(a, sd(ne.bayesian_rnd_covariance(gap, X, path)), "C0", label="Bayesian RND = NTK-GP posterior")
axes[1].plot(a, sd(ne.ensemble(gap, X, np.zeros(5), path).cov), "C1", label="deep ensemble")
axes[1].set_xlabel("interpolation between two training images")
axes[1].set_title("CNN (Conv-ReLU x2, GlobalAvgPool): predictive std", fontsize=9)
axes[1].legend(fontsize=7)
save(fig, "08_convolutional.png")
