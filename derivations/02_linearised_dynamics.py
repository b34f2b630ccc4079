# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 Linearised dynamics (docs/theory.md C3)
#
# **Statement.** The linearised network $f^{lin}_t(x) = f_0(x) + J_0(x)(\theta_t - \theta_0)$
# trained by gradient flow $\dot\theta = -\eta\nabla L$ on
# $L = \tfrac12\|f(X) - Y\|^2 + \tfrac\lambda2\|\theta-\theta_0\|^2$ satisfies
# $f_t(x) = f_0(x) + \Theta_{xX}A_t(Y - f_0(X))$,
# $A_t = T^{-1}(I - e^{-\eta T t})$, $T = \Theta_{XX} + \lambda I$, exactly and at
# every width (with the empirical NTK); $k$ gradient-descent steps give
# $A_k = T^{-1}(I - (I - \eta T)^k)$.
# At $t = \infty$ without ridge this is the paper's Prop 5.1,
# $f_\infty = f_0 + \Theta_{xX}\Theta_{XX}^{-1}(Y - f_0(X))$, with the plus sign its proof ends on
# (the statement prints a minus, which does not fit the data).
#
# **Why the ridge enters $A_t$ but not $\Theta_{xX}$.** Sympy derives the
# function-space ODE from parameter space:
# $\dot f(x) = -\eta[\Theta_{xX}(f(X) - Y) + \lambda(f(x) - f_0(x))]$: the ridge
# pulls every output back to the *initial function*, so on the training inputs
# the rate matrix is $\Theta_{XX} + \lambda I$, while the coupling to a test
# point is still $\Theta_{xX}$.

# %%
from _setup import *  # noqa: F401,F403
from ntk_equiv.symbolic import prove_c3
from ntk_equiv.symbolic.dynamics import eigenmode_gain
from ntk_equiv import formulas
from ntk_equiv.precision import backend

# %% [markdown]
# ## 1. Derivation
# The parameters move in the row space of $J(X)$: $\theta_t - \theta_0 = J(X)^\top c_t$
# with $\dot c = -\eta(Tc - R_0)$, where $T = \Theta_{XX}$ (the empirical NTK on the training
# inputs) and $R_0 = Y - f_0(X)$ the initial residual. On an eigenvector of $T$ (eigenvalue $w$) this
# is a scalar linear ODE, solved by `dsolve`:

# %%
w, gain = eigenmode_gain()
print("c(t) / r =", gain)
proof = show(prove_c3())

# %% [markdown]
# The record shows, in order: the ODE derived from the parameter-space gradient;
# the library's `train_operator` equal to the assembled eigenmode solution; the
# library's closed form satisfying the ODE at test and training inputs and the
# initial condition; gradient descent by induction (library $A_k$, $k \le 3$, and
# for general $N$ with $B^{k+1} = (I - \eta T)B^k$); and the ODE for general $N$
# using only $\frac{d}{dt}e^{-\eta Tt} = -\eta T e^{-\eta Tt}$.
#
# ## 2. 50 digits: the eigen-decomposition route vs the matrix exponential
# The library computes $A_t$ through `eigh`; here it is compared, at 50 digits,
# with an independent route through `mpmath.expm` on an NTK train block.

# %%
rng = np.random.default_rng(1)
X = rng.standard_normal((4, 2))
arch = ne.mlp(2, "erf", sigma_w=1.3, sigma_b=0.2)
bk = backend(50)
T = bk.asarray(arch.kernel(X, dps=50).ntk)
eta, t, lam = mpmath.mpf("0.3"), mpmath.mpf("2.5"), mpmath.mpf("0.1")
with bk.context():
    A_lib = formulas.train_operator(T, bk, t=eta * 0 + t, lr=eta, ridge=lam)
    Tm = mpmath.matrix(T.tolist()) + lam * mpmath.eye(4)
    A_ref = Tm ** -1 * (mpmath.eye(4) - mpmath.expm(-eta * t * Tm))
    gap = max(abs(A_lib[i, j] - A_ref[i, j]) for i in range(4) for j in range(4))
print(f"max |A_t(eigh) - A_t(expm)| = {mpmath.nstr(gap, 3)}")
assert gap < mpmath.mpf(10) ** -45

# %% [markdown]
# ## 3. Finite width: a real linearised network trained by gradient descent
# The formula with the *empirical* NTK of the drawn network reproduces gradient
# descent on the linearised network to float64 round-off, at any width.

# %%
Y = np.sin(X[:, :1] * 2)
xt = np.linspace(-2, 2, 25)[:, None] * np.array([[1.0, 0.3]])
width = 128 if FAST else 512
net = arch.init(width, seed=3).linearize()
emp_XX, emp_xX = net.empirical_ntk(X), net.empirical_ntk(xt, X)
lr = 1.0 / (np.linalg.eigvalsh(emp_XX)[-1] + 0.1)
f0x, f0X = net.apply(xt), net.apply(X)
steps_list = [0, 5, 20, 80]
curves = []
for k in steps_list:
    trained = net.train(X, Y, lr=lr, steps=k, ridge=0.1)
    pred = ne.linearised_predict(emp_xX, emp_XX, f0x, f0X, Y, lr=lr, ridge=0.1, steps=k)
    err = np.max(np.abs(trained.apply(xt) - pred))
    print(f"k = {k:3d}: max |GD - closed form| = {err:.2e}")
    assert err < 1e-9 * max(1.0, np.max(np.abs(pred)))
    curves.append(pred[:, 0])

fig, ax = plt.subplots(figsize=(4.8, 3.3))
for k, c in zip(steps_list, curves):
    ax.plot(xt[:, 0], c, label=f"k = {k}")
ax.plot(X[:, 0], Y[:, 0], "k.", ms=8, label="training data")
ax.set_xlabel("x (first coordinate)")
ax.set_title("linearised network after k GD steps (closed form = GD)")
ax.legend(fontsize=7)
save(fig, "02_linearised_dynamics.png")
