# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 Dual activations and the kernel recursion (docs/theory.md C1, C2)
#
# **Statement.** For the MLP in NTK parameterisation,
# $\kappa^{l+1} = \sigma_w^2\,\mathbb E[\phi(u)\phi(v)] + \sigma_b^2$ and
# $\Theta^{l+1} = \kappa^{l+1} + \sigma_w^2\,\mathbb E[\phi'(u)\phi'(v)]\,\Theta^l$ with
# $(u, v) \sim N(0, \kappa^l)$ ($\kappa$ the NNGP kernel, $\Theta$ the NTK; here $u, v$ are
# two pre-activations, not RND's predictor). The two Gaussian expectations (the *dual activations*)
# have closed forms for ReLU (arc-cosine kernels) and erf; the library uses them.
#
# We (1) *derive* those closed forms with sympy (polar coordinates for ReLU and
# its derivative, the step; Gaussian integration and Price's theorem for erf)
# and compare them symbolically with the library's own formulas, (2) derive the
# recursion step for one hidden layer from a finite-width network, (3) confirm
# numerically at 50 digits and (4) at finite width.

# %%
from _setup import *  # noqa: F401,F403
from ntk_equiv.symbolic import prove_erf_dual, prove_named_duals, prove_one_layer_ntk, prove_relu_dual
from ntk_equiv.symbolic.duals import THETA, polar_relu_duals
from ntk_equiv.precision import backend

# %% [markdown]
# ## 1. ReLU: integrate the bivariate Gaussian in polar coordinates
# Write $u = a r\cos\alpha$, $v = b r\cos(\alpha - \theta)$ with $a^2 = k_{11}$,
# $b^2 = k_{22}$, $\cos\theta = k_{12}/(ab)$: $r$ has density $r e^{-r^2/2}$ and
# $\alpha$ is uniform. Both are positive on $\alpha \in (\theta - \pi/2, \pi/2)$.

# %%
E_relu, E_step, region = polar_relu_duals()
print("alpha range:", region)
print("E[relu(u) relu(v)] =", E_relu)
print("E[step(u) step(v)] =", E_step)
relu_proof = show(prove_relu_dual())

# %% [markdown]
# The proof compares the integrals with `ne.activation("relu").dual` evaluated on
# symbols (a sympy elementwise backend), and checks Price's theorem
# $\partial_{k_{12}}\mathbb E[\mathrm{relu}\,\mathrm{relu}] = \mathbb E[\mathrm{step}\,\mathrm{step}]$
# on the library's formula.
#
# ## 2. erf: a Gaussian integral and Price's theorem
# $\mathbb E[\mathrm{erf}'(u)\mathrm{erf}'(v)] = \frac4\pi \mathbb E[e^{-u^2-v^2}]$ is a Gaussian
# integral; integrating it in $k_{12}$ from 0 (where $\mathbb E[\mathrm{erf}\,u]\,\mathbb E[\mathrm{erf}\,v] = 0$)
# gives $\mathbb E[\mathrm{erf}(u)\mathrm{erf}(v)] = \frac2\pi\arcsin\frac{2k_{12}}{\sqrt{(1+2k_{11})(1+2k_{22})}}$.

# %%
erf_proof = show(prove_erf_dual())

# %% [markdown]
# The other closed forms follow from these integrals: leaky ReLU
# $= (1-\alpha)\,\mathrm{relu} + \alpha x$ (symbolic slope), sign $= 2\,\mathrm{step} - 1$,
# the identity; sin and cos through $\mathbb E[\cos s] = e^{-\mathrm{Var}(s)/2}$.

# %%
show(prove_named_duals())

# %% [markdown]
# ## 3. One hidden layer: from the finite network to the recursion
# Sympy differentiates $f(x) = \frac{\sigma_w}{\sqrt n}\sum_j w^{(2)}_j\phi(h_j(x)) + \sigma_b b^{(2)}$
# (superscripts $(2)$: the readout layer's parameters)
# with respect to every parameter; the empirical NTK is $\sigma_b^2$ plus an
# average over units, which at infinite width becomes an expectation.

# %%
layer_proof = show(prove_one_layer_ntk())

# %% [markdown]
# ## 4. Numbers at 50 digits: the derived formula vs the library vs quadrature
# We evaluate the sympy-derived ReLU integral with mpmath at 50 digits and the
# library's closed form at `dps=50` on the same covariance.

# %%
import sympy as sp  # noqa: E402

bk = backend(50)
a_, b_ = sp.symbols("a b", positive=True)
k11, k12, k22 = mpmath.mpf(2), mpmath.mpf("0.7"), mpmath.mpf("1.3")
with bk.context():
    theta = mpmath.acos(k12 / mpmath.sqrt(k11 * k22))
    derived = sp.lambdify((a_, b_, THETA), E_relu, "mpmath")(mpmath.sqrt(k11), mpmath.sqrt(k22), theta)
    lib_v, lib_vd = ne.activation("relu").dual(bk, k11, k12, k22)
    gap = abs(derived - lib_v)
print(f"|derived - library| at 50 digits: {mpmath.nstr(gap, 3)}")
assert gap < mpmath.mpf(10) ** -45

# %% [markdown]
# Closed form against 2-D Gaussian quadrature (float64, the library's
# quadrature path) over a range of correlations: this is the C1 statement that a
# closed form and quadrature agree to working precision.

# %%
rho = np.linspace(-0.99, 0.99, 41)
from ntk_equiv.precision import F64  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, name in zip(axes, ["relu", "erf"]):
    act = ne.activation(name)
    v, vd = act.dual(F64, np.ones_like(rho), rho, np.ones_like(rho))
    q, qd = act.dual_by_quadrature(F64, np.ones_like(rho), rho, np.ones_like(rho))
    print(f"{name}: max |closed form - quadrature| = {max(np.max(abs(v - q)), np.max(abs(vd - qd))):.2e}")
    assert np.allclose(v, q, atol=1e-10) and np.allclose(vd, qd, atol=1e-10)
    ax.plot(rho, v, label=r"$\mathbb{E}[\phi\phi]$ closed form")
    ax.plot(rho, q, "k:", label="quadrature")
    ax.plot(rho, vd, label=r"$\mathbb{E}[\phi'\phi']$ closed form")
    ax.plot(rho, qd, "k--", lw=0.8)
    ax.set_title(f"{name}, unit variances")
    ax.set_xlabel("correlation $k_{12}$")
axes[0].legend(fontsize=7)
save(fig, "01_dual_activations.png")

# %% [markdown]
# ## 5. Finite width: the empirical NTK approaches $\Theta$ like $n^{-1/2}$ (C2)
# The experiment is the one the C2 check runs
# (`ntk_equiv.experiments.kernel_convergence.ntk_error_sweep`): the relative
# Frobenius error $\|\hat\Theta_n - \Theta\|_F / \|\Theta\|_F$ of random networks of
# width $n$, and the log-log slope of its rms with a standard error from the
# seed-to-seed scatter. For two hidden layers the mean-square error is
# $c_1/n + c_2/n^2 + \dots$, so at small widths the slope can sit a little off $-1/2$.

# %%
from ntk_equiv.experiments.kernel_convergence import ntk_error_sweep  # noqa: E402

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 3))
arch = ne.mlp(2, "relu", sigma_w=1.4, sigma_b=0.1)
widths = [64, 256, 1024] if FAST else [64, 256, 1024, 4096]
seeds = 3 if FAST else 8
fit = ntk_error_sweep(arch, x, widths, seeds, seed=0)
print("rms relative error:", dict(zip(widths, np.round(fit.rms, 4).tolist())), fit.summary())
assert -0.8 < fit.slope < -0.3
fig, ax = plt.subplots(figsize=(4.2, 3.2))
ax.loglog(widths, fit.rms, "o-", label=f"rms relative error, slope {fit.slope:.2f} $\\pm$ {fit.stderr:.2f}")
ax.loglog(widths, fit.rms[0] * (np.array(widths) / widths[0]) ** -0.5, "k--", label=r"$n^{-1/2}$")
ax.set_xlabel("width n")
ax.legend()
save(fig, "01_ntk_convergence.png")
