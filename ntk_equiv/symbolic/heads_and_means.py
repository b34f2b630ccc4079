"""Exact proofs of two of the paper's own statements (thesis chapter 5):
Prop 5.5 (head independence at every time) and Cor 5.9 (sampling with a mean
estimate), the latter as printed and as corrected.

Paper notation: ``K`` heads, NNGP kernel ``kappa`` (our ``K``), NTK ``Theta``,
Bayesian-RND errors ``eps_i`` (trained without labels), a mean estimate
``mu~``, ``mu_b = Theta_xX Theta_XX^{-1} Y``,
``Sigma_b = Theta - Theta_xX Theta_XX^{-1} Theta_Xx'`` (the NTK-GP posterior)
and ``Sigma_f = P kappa P^*`` (the deep-ensemble covariance at ``t = inf``).
"""
from __future__ import annotations

import sympy as sp

from .. import formulas
from ..precision import SYMPY
from .bayes import bayesian_residual
from .common import default, kernel, ntk, step
from .record import Proof, conclude

_SIZES = {"xx": ("n", "n"), "xX": ("n", "N"), "XX": ("N", "N")}


# --------------------------------------------------------------------------- #
# Prop 5.5: heads are independent at every t (in the limit)
# --------------------------------------------------------------------------- #
def _gaussian_expectation(expr, normals) -> sp.Expr:
    """``E[expr]`` for a polynomial in independent standard normals
    (``E z^k = (k - 1)!!`` for even ``k``, 0 for odd)."""
    poly = sp.Poly(sp.expand(expr), *normals)
    out = sp.Integer(0)
    for powers, coeff in poly.terms():
        moment = sp.Integer(1)
        for k in powers:
            moment *= 0 if k % 2 else sp.factorial2(k - 1)
        out += coeff * moment
    return sp.expand(out)


def readout_moments(heads: int = 2, units: int = 3):
    """The multi-head readout ``f_m = sigma_w/sqrt(n) sum_j W_mj a_j + sigma_b b_m``
    of shared hidden features ``a_j`` (``n = units``), its Jacobian derived by
    ``sympy.diff``, and the two kernels given the hidden layers:

    * NNGP: ``E_W[f_m(x) f_m'(x')]``;
    * NTK: ``E_W[grad f_m(x) . grad f_m'(x')]``, readout part from the readout
      parameters, hidden part by the chain rule through ``a_j`` with a generic
      Gram ``Gamma_jk = <d a_j(x)/d theta, d a_k(x')/d theta>`` of the hidden
      parameters.

    Returns ``(nngp, ntk, ntk_cross_second_moment, symbols)`` with the kernels
    as ``heads x heads`` sympy matrices."""
    n = units
    sw, sb = sp.symbols("sigma_w sigma_b", positive=True)
    W = sp.Matrix(heads, n, lambda m, j: sp.Symbol(f"W_{m}{j}", real=True))
    b = [sp.Symbol(f"b_{m}", real=True) for m in range(heads)]
    a = [sp.Symbol(f"a_{j}", real=True) for j in range(n)]         # a_j(x)
    a2 = [sp.Symbol(f"ap_{j}", real=True) for j in range(n)]       # a_j(x')
    Gamma = sp.Matrix(n, n, lambda j, k: sp.Symbol(f"Gamma_{j}{k}", real=True))
    normals = list(W) + b

    def f(m, feats):
        return sw / sp.sqrt(n) * sum(W[m, j] * feats[j] for j in range(n)) + sb * b[m]

    def ntk_entry(m, mp):
        ro = sum(sp.diff(f(m, a), p) * sp.diff(f(mp, a2), p) for p in normals)
        hid = sum(sp.diff(f(m, a), a[j]) * sp.diff(f(mp, a2), a2[k]) * Gamma[j, k]
                  for j in range(n) for k in range(n))
        return ro + hid

    nngp = sp.Matrix(heads, heads, lambda m, mp: _gaussian_expectation(f(m, a) * f(mp, a2), normals))
    ntk_mean = sp.Matrix(heads, heads, lambda m, mp: _gaussian_expectation(ntk_entry(m, mp), normals))
    cross2 = _gaussian_expectation(ntk_entry(0, 1) ** 2, normals)
    k_hat = sw**2 / n * sum(a[j] * a2[j] for j in range(n)) + sb**2
    theta_hat = k_hat + sw**2 / n * sum(Gamma[j, j] for j in range(n))
    return nngp, ntk_mean, cross2, dict(k_hat=k_hat, theta_hat=theta_hat, Gamma=Gamma, n=n)


def _blockdiag(alg, a, rows: str, cols: str, heads: int):
    z = alg.zeros(rows, cols)
    return alg.block([[a if i == j else z for j in range(heads)] for i in range(heads)])


def prove_prop_5_5(alg=None, strict: bool = True, heads: int = 2, units: int = 3, cross=None,
                   exact_at_every_width: bool = False) -> Proof:
    """Prop 5.5: the ``K`` outputs of a network with shared hidden layers are
    independent GPs at every ``t`` (in the limit).

    1. At every width, given the hidden layers: ``E_W`` of the multi-head NNGP
       is ``k^ I_K`` and of the multi-head NTK ``Theta^ I_K`` (readout rows are
       independent), so the limits (laws of large numbers over the units) are
       ``kappa (x) I_K`` and ``Theta (x) I_K``. The cross-head NTK block is
       not 0 at finite width: its second moment is a non-zero expression
       (the ``O(n^{-1/2})`` fluctuation measured at the E level).
    2. The linearised flow keeps the kron structure for all ``t``: with
       ``Theta_XX (x) I`` (head-major: block-diagonal), the block-diagonal
       ``diag(A, ..., A)`` satisfies the joint ODE ``dA/dt = eta (I - Theta_XX A)``
       and GD recursion ``A_{k+1} = A_k + eta (I - Theta_XX A_k)`` whenever
       ``A`` does (same initial value 0, so by uniqueness it *is* the joint
       ``A_t``), and the joint covariance ``P_t (C (x) I) P_t^*`` is
       ``(P_t C P_t^*) (x) I`` for any per-head ``C`` (``kappa``: deep ensembles;
       ``kappa_u + kappa_g``: RND), cross-head blocks 0. ``A`` is a generic
       matrix, so this holds for every ``t``.

    ``cross``: a generic cross-head block added to the initial covariance
    (a wrong premise, to show the proof can fail). ``exact_at_every_width``:
    the false alternative, the cross block's second moment claimed 0."""
    alg = default(alg)
    nngp, ntk_mean, cross2, s = readout_moments(heads, units)
    eye = sp.eye(heads)
    steps = [
        step(alg, "E_W NNGP of the K heads = k^(x,x') I_K (every width)", nngp, s["k_hat"] * eye),
        step(alg, "E_W NTK of the K heads = Theta^(x,x') I_K (every width)", ntk_mean, s["theta_hat"] * eye),
    ]
    # the cross block fluctuates; with one hidden layer Gamma is diagonal (a unit's
    # parameters move only that unit), so the second moment is O(1/n): rms O(n^{-1/2})
    n, G = s["n"], s["Gamma"]
    sw = sp.Symbol("sigma_w", positive=True)
    steps.append(step(alg, "E_W[Theta^_12(x,x')^2] = sigma_w^4/n^2 sum_jk Gamma_jk^2 (not 0: O(1/n) for diagonal Gamma)",
                      sp.Matrix([cross2]), sp.Matrix([0 if exact_at_every_width else
                                                      sw**4 / n**2 * sum(G[j, k] ** 2 for j in range(n) for k in range(n))])))
    K, T = kernel(alg, "C"), kernel(alg, "Theta")
    A = alg.matrix("A", "N", "N")
    eta = sp.Symbol("eta", positive=True)
    J = {k: _blockdiag(alg, K[k], *_SIZES[k], heads) for k in K}
    if cross is not None:
        off = alg.matrix("C12_XX", "N", "N")
        z = alg.zeros("N", "N")
        J["XX"] = J["XX"] + alg.block([[z if i == j else off for j in range(heads)] for i in range(heads)])
    TJ_XX, TJ_xX = _blockdiag(alg, T["XX"], "N", "N", heads), _blockdiag(alg, T["xX"], "n", "N", heads)
    AJ, IJ = _blockdiag(alg, A, "N", "N", heads), _blockdiag(alg, alg.eye("N"), "N", "N", heads)
    steps += [
        step(alg, "joint ODE/GD increment: eta (I - (Theta_XX (x) I) diag(A)) = diag(eta (I - Theta_XX A))",
             eta * (IJ - TJ_XX * AJ), _blockdiag(alg, eta * (alg.eye("N") - T["XX"] * A), "N", "N", heads)),
        step(alg, "P_t (C (x) I) P_t^* = (P_t C P_t^*) (x) I: cross-head blocks 0 for all t",
             formulas.projected_cov(J["xx"], J["xX"], J["XX"], TJ_xX, AJ),
             _blockdiag(alg, formulas.projected_cov(K["xx"], K["xX"], K["XX"], T["xX"], A), "n", "n", heads)),
    ]
    return conclude("5.5", f"{heads} heads: kernels kappa (x) I_K, Theta (x) I_K; P_t (kappa (x) I) P_t^* = "
                    "(P_t kappa P_t^*) (x) I_K for every t", alg.method,
                    ("readout entries W, b i.i.d. N(0, 1), independent of the hidden layers",
                     "A is an arbitrary N x N matrix (every A_t, A_k, A_inf)"), steps, strict)


# --------------------------------------------------------------------------- #
# Cor 5.9: samples mu~ + eps_i with a mean estimate
# --------------------------------------------------------------------------- #
MEAN_ESTIMATES = ("exact", "network", "ensemble")


def prove_cor_5_9(alg=None, strict: bool = True, bound=None, members: int = 2):
    """Cor 5.9 with a mean estimate ``mu~`` and two Bayesian-RND errors
    ``eps_1, eps_2`` (trained without labels, i.i.d. ``GP(0, Sigma_b)`` by C7),
    the samples ``s_i = mu~ + eps_i``.

    The proof (returned first) is the form's claim: under the reading
    ``mu~ = mu_b``, ``E s_i = mu_b``, ``Cov s_i = Sigma_b``, ``Cov(s_1, s_2) = 0``;
    with a stated ``bound`` ``b`` (the quantified form), also, for ``mu~`` one
    trained network (``f_0 ~ GP(0, kappa)``, the library's
    :func:`~ntk_equiv.formulas.linearised_mean`) and the mean of ``members``
    networks, ``Cov s_i = Sigma_b + b Sigma_f / E`` and ``Cov(s_1, s_2) = b
    Sigma_f / E`` (true for ``b = 1``).

    Returned second: the approximation measured, the step ``Cov(s_1, s_2) = 0``
    for ``mu~`` one trained network, whose failure (difference ``Sigma_f``) is
    the unquantified error of the printed ``mu~ ~= mu_b``."""
    alg = default(alg)
    K, T = kernel(alg, "K"), ntk(alg)
    Y = alg.matrix("Y", "N", "1")
    A = formulas.train_operator(T["XX"], SYMPY)
    eps = [bayesian_residual(alg, K, T, head=str(i)) for i in (1, 2)]
    mu_b = formulas.posterior_mean(T["xX"], T["XX"], Y, SYMPY)
    sigma_b = formulas.posterior_cov(T["xx"], T["xX"], T["XX"], SYMPY)
    sigma_f = formulas.projected_cov(K["xx"], K["xX"], K["XX"], T["xX"], A)

    def network(name):
        f0 = alg.gaussian(name, K)
        return formulas.linearised_mean(f0["x"], f0["X"], T["xX"], A, Y)

    zero = alg.zeros("n", "n")
    s1, s2 = mu_b + eps[0], mu_b + eps[1]
    steps = [step(alg, "[mu~ = mu_b] E s_i = mu_b", alg.mean(s1), mu_b),
             step(alg, "[mu~ = mu_b] Cov s_i = Sigma_b", alg.cov(s1), sigma_b),
             step(alg, "[mu~ = mu_b] Cov(s_1, s_2) = 0", alg.cov(s1, s2), zero)]
    f = network("f")
    n1, n2 = f + eps[0], f + eps[1]
    approximation = step(alg, "[one network] Cov(s_1, s_2) = 0 (the i.i.d. claim for an approximate mu~)",
                         alg.cov(n1, n2), zero)
    statement = "s_i = mu~ + eps_i i.i.d. N(mu_b, Sigma_b) for mu~ = mu_b; the error of mu~ ~= mu_b not stated"
    if bound is not None:
        b = sp.nsimplify(bound)
        steps += [step(alg, "[one network] E s_i = mu_b", alg.mean(n1), mu_b),
                  step(alg, f"[one network] Cov s_i = Sigma_b + {b} Sigma_f", alg.cov(n1), sigma_b + b * sigma_f),
                  step(alg, f"[one network] Cov(s_1, s_2) = {b} Sigma_f", alg.cov(n1, n2), b * sigma_f)]
        fbar = sp.Rational(1, members) * sum((network(f"f{e}") for e in range(1, members)), network(f"f{members}"))
        m1, m2 = fbar + eps[0], fbar + eps[1]
        c = b * sp.Rational(1, members)
        steps += [step(alg, f"[mean of E={members} networks] Cov s_i = Sigma_b + {b} Sigma_f / E", alg.cov(m1),
                       sigma_b + c * sigma_f),
                  step(alg, f"[mean of E={members} networks] Cov(s_1, s_2) = {b} Sigma_f / E", alg.cov(m1, m2),
                       c * sigma_f)]
        statement = (f"s_i = mu~ + eps_i: i.i.d. N(mu_b, Sigma_b) for mu~ = mu_b; with mu~ the mean of E trained "
                     f"networks Cov s_i = Sigma_b + {b} Sigma_f / E and Cov(s_i, s_j) = {b} Sigma_f / E")
    proof = conclude("5.9", statement, alg.method,
                     ("eps_i: Bayesian-RND errors (C7 construction), independent across i and of the mean estimate",
                      "trained networks f_0 ~ GP(0, kappa), independent; Theta_XX symmetric positive definite"),
                     steps, strict)
    return proof, approximation


__all__ = ["MEAN_ESTIMATES", "prove_cor_5_9", "prove_prop_5_5", "readout_moments"]


# --------------------------------------------------------------------------- #
# Thm 5.8's proof gap: the predictor at init and the target are dependent
# --------------------------------------------------------------------------- #
def _unit_expectation(expr, normals, units) -> sp.Expr:
    """``E[expr]`` for a polynomial in independent standard normals ``normals``
    and per-unit random pairs ``(p_j, r_j)`` (``p = phi(h_j)``, ``r = phi'(h_j)``),
    i.i.d. over units ``j`` with unknown law: ``E[p^a r^b] = M_ab``."""
    gauss = _gaussian_expectation(expr, normals)
    ps = [p for p, _ in units]
    rs = [r for _, r in units]
    poly = sp.Poly(gauss, *(ps + rs))
    out = sp.Integer(0)
    k = len(units)
    for powers, coeff in poly.terms():
        m = sp.Integer(1)
        for j in range(k):
            a, b = powers[j], powers[k + j]
            if a or b:
                m *= sp.Symbol(f"M_{a}{b}", real=True)
        out += coeff * m
    return sp.expand(out)


def prove_target_dependence(alg=None, strict: bool = True, dependence=1, rate=1, units: int = 2,
                            heads: int = 2) -> Proof:
    """Thm 5.8's independence step at finite width, one hidden layer of
    ``n = units`` units, input dimension 1 (``x`` a symbol), ``K = heads``.

    The predictor ``u_m = sigma_w/sqrt(n) sum_j W_mj phi(h_j) + sigma_b b_m`` with
    ``h_j = sigma_w w_j x + sigma_b c_j``; the target's conditional variance
    ``||J^hid_m(x)||^2`` is derived by ``sympy.diff`` w.r.t. the hidden
    parameters ``w_j, c_j``; then, with ``a = (1/K) sum_m u_m^2`` and
    ``b = (1/K) sum_m ||J^hid_m||^2`` (units i.i.d., ``M_ab = E[phi^a phi'^b]``,
    ``q = sigma_w^2 x^2 + sigma_b^2``):

    ``Cov(a, b) = sigma_w^4 q / n (M_22 - M_20 M_02 + 2 M_22 / K)``,

    not 0 at any finite width, ``O(1/n)``: 0 only in the limit. The step
    checked is the claim ``Cov(a, b) = dependence x sigma_w^4 q / n^rate (...)``:
    ``dependence = 0`` is the proof's conclusion (independence, at any width),
    which does not reduce to 0; ``dependence = rate = 1`` is exact."""
    alg = default(alg)
    n, K = units, heads
    sw, sb = sp.symbols("sigma_w sigma_b", positive=True)
    x = sp.Symbol("x", real=True)
    W = sp.Matrix(K, n, lambda m, j: sp.Symbol(f"W_{m}{j}", real=True))
    b = [sp.Symbol(f"b_{m}", real=True) for m in range(K)]
    w1 = [sp.Symbol(f"w_{j}", real=True) for j in range(n)]
    c1 = [sp.Symbol(f"c_{j}", real=True) for j in range(n)]
    phi = sp.Function("phi")
    h = [sw * w1[j] * x + sb * c1[j] for j in range(n)]
    u = [sw / sp.sqrt(n) * sum(W[m, j] * phi(h[j]) for j in range(n)) + sb * b[m] for m in range(K)]
    pr = [(sp.Symbol(f"p_{j}", real=True), sp.Symbol(f"r_{j}", real=True)) for j in range(n)]
    hidden = w1 + c1

    def units_of(e):
        e = e.subs({phi(h[j]).diff(w1[j]): pr[j][1] * sw * x for j in range(n)})
        e = e.subs({phi(h[j]).diff(c1[j]): pr[j][1] * sb for j in range(n)})
        return e.subs({phi(h[j]): pr[j][0] for j in range(n)})

    jn2 = [sp.expand(units_of(sum(sp.diff(u[m], p) ** 2 for p in hidden))) for m in range(K)]
    a = sp.expand(units_of(sum(um**2 for um in u)) / K)
    bb = sp.expand(sum(jn2) / K)
    normals = list(W) + b
    cov = sp.expand(_unit_expectation(a * bb, normals, pr)
                    - _unit_expectation(a, normals, pr) * _unit_expectation(bb, normals, pr))
    q = sw**2 * x**2 + sb**2
    M22, M20, M02 = (sp.Symbol(f"M_{s}", real=True) for s in ("22", "20", "02"))
    steps = [step(alg, "||J^hid_m(x)||^2 = sigma_w^2 q / n sum_j W_mj^2 phi'(h_j)^2",
                  sp.Matrix([jn2[0]]),
                  sp.Matrix([sp.expand(sw**2 * q / n * sum(W[0, j] ** 2 * pr[j][1] ** 2 for j in range(n)))]))]
    d, r = sp.nsimplify(dependence), sp.nsimplify(rate)
    claimed = d * sw**4 * q / n**r * (M22 - M20 * M02 + 2 * M22 / K)
    steps.append(step(alg, f"Cov(a, b) = {d} sigma_w^4 q / n^{r} (M_22 - M_20 M_02 + 2 M_22 / K)",
                      sp.Matrix([cov]), sp.Matrix([sp.expand(claimed)])))
    statement = (f"finite width (n = {n}, K = {K}): Cov((1/K)|u|^2, (1/K)||J^hid||^2) = {d} sigma_w^4 q/n^{r} "
                 "(M_22 - M_20 M_02 + 2 M_22/K)" + (" (independence, as the proof concludes)" if d == 0 else ""))
    return conclude("5.8", statement, f"explicit units n = {n}, heads K = {K}",
                    ("readout W, b i.i.d. N(0, 1); units i.i.d. with M_ab = E[phi(h)^a phi'(h)^b]",), steps, strict)


__all__ += ["prove_target_dependence"]


# --------------------------------------------------------------------------- #
# Prop 5.5 at finite width: heads uncorrelated but dependent at t = 0
# --------------------------------------------------------------------------- #
def prove_head_dependence(alg=None, strict: bool = True, regime: str = "limit", rate=1, units: int = 2) -> Proof:
    """Two heads ``f_m = sigma_w/sqrt(n) sum_j W_mj p_j + sigma_b b_m`` of one hidden
    layer (``n = units`` i.i.d. units ``p_j = phi(h_j(x))`` with ``M_a0 = E p^a``;
    readout i.i.d. ``N(0, 1)``) at initialisation:

    ``Cov(f_1, f_2) = 0`` (every width) and
    ``Cov(f_1^2, f_2^2) = Var K^(x, x) = sigma_w^4 (M_40 - M_20^2) / n``:

    uncorrelated, dependent at every finite width, independent only in the
    limit. ``regime="limit"`` claims ``... / n^rate``; ``"every width"`` claims
    ``Cov(f_1^2, f_2^2) = 0`` (independent at finite width): false."""
    alg = default(alg)
    n = units
    sw, sb = sp.symbols("sigma_w sigma_b", positive=True)
    W = sp.Matrix(2, n, lambda m, j: sp.Symbol(f"W_{m}{j}", real=True))
    b = [sp.Symbol(f"b_{m}", real=True) for m in range(2)]
    pr = [(sp.Symbol(f"p_{j}", real=True), sp.Symbol(f"r_{j}", real=True)) for j in range(n)]
    f = [sw / sp.sqrt(n) * sum(W[m, j] * pr[j][0] for j in range(n)) + sb * b[m] for m in range(2)]
    normals = list(W) + b

    def E(e):
        return _unit_expectation(e, normals, pr)

    cov1 = E(f[0] * f[1]) - E(f[0]) * E(f[1])
    cov2 = sp.expand(E(f[0] ** 2 * f[1] ** 2) - E(f[0] ** 2) * E(f[1] ** 2))
    M40, M20 = sp.Symbol("M_40", real=True), sp.Symbol("M_20", real=True)
    claimed = 0 if regime == "every width" else sw**4 * (M40 - M20**2) / sp.Integer(n) ** sp.nsimplify(rate)
    steps = [step(alg, "Cov(f_1, f_2) = 0 (every width)", sp.Matrix([cov1]), sp.Matrix([0])),
             step(alg, "Cov(f_1^2, f_2^2) = " + ("0 (independent)" if regime == "every width" else
                                                  f"sigma_w^4 (M_40 - M_20^2) / n^{sp.nsimplify(rate)}"),
                  sp.Matrix([cov2]), sp.Matrix([sp.expand(claimed)]))]
    return conclude("5.5", f"two heads at width n = {n}, t = 0: uncorrelated; Cov(f_1^2, f_2^2) = Var K^",
                    f"explicit units n = {n}, sympy moments",
                    ("readout W, b i.i.d. N(0, 1); units i.i.d. with M_a0 = E phi(h)^a",), steps, strict)


__all__ += ["prove_head_dependence"]


def prove_target_dependence_general(strict: bool = True, dependence=1, rate=1) -> Proof:
    """Thm 5.8's independence step for **symbolic** width ``n`` and heads ``K``.

    ``Cov(a, b)``, ``a = (1/K) sum_m u_m^2``, ``b = (1/K) sum_m ||J^hid_m||^2``, is a sum
    over heads and units. Heads: ``Cov(a, b) = (1/K) S + (1 - 1/K) D`` with ``S =
    Cov(u_1^2, ||J_1||^2)`` and ``D = Cov(u_1^2, ||J_2||^2)`` (exchangeable heads).
    Units: ``u_m^2`` is a double sum over units ``(j, k)`` and ``||J_m||^2`` a single sum
    over ``l``; ``E[W_mj W_mk] = 0`` for ``j != k`` leaves the patterns ``j = k = l``
    and ``j = k != l``, so ``n^2 S(n) = alpha n + beta n (n - 1)`` (and so ``D``).
    The four coefficients are computed from the network by
    :func:`prove_target_dependence`'s derivation at ``n = 1, 2`` and ``K = 1, 2``;
    the result, for symbolic ``n`` and ``K``, is compared with the claim
    ``dependence x sigma_w^4 q / n^rate (M_22 - M_20 M_02 + 2 M_22 / K)``."""
    def cov(n, k):
        return prove_target_dependence(strict=False, dependence=0, units=n, heads=k).steps[-1].lhs[0]

    n, K = sp.Symbol("n", integer=True, positive=True), sp.Symbol("K", integer=True, positive=True)
    sw = sp.Symbol("sigma_w", positive=True)
    sb = sp.Symbol("sigma_b", positive=True)
    x = sp.Symbol("x", real=True)
    S1, S2 = cov(1, 1), cov(2, 1)
    D1, D2 = 2 * cov(1, 2) - S1, 2 * cov(2, 2) - S2  # Cov_K = S/K + (1 - 1/K) D at K = 2

    def in_n(v1, v2):  # n^2 C(n) = alpha n + beta n (n - 1): alpha = C(1), beta = (4 C(2) - 2 alpha) / 2
        alpha = v1
        beta = (4 * v2 - 2 * alpha) / 2
        return (alpha * n + beta * n * (n - 1)) / n**2

    general = sp.expand(in_n(S1, S2) / K + (1 - 1 / K) * in_n(D1, D2))
    q = sw**2 * x**2 + sb**2
    M22, M20, M02 = (sp.Symbol(f"M_{s}", real=True) for s in ("22", "20", "02"))
    d, r = sp.nsimplify(dependence), sp.nsimplify(rate)
    claimed = d * sw**4 * q / n**r * (M22 - M20 * M02 + 2 * M22 / K)
    alg = default(None)
    steps = [step(alg, "different units decouple: beta = 0 for S and D (Cov of independent units)",
                  sp.Matrix([sp.expand(4 * S2 - 2 * S1), sp.expand(4 * D2 - 2 * D1)]), sp.Matrix([0, 0])),
             step(alg, f"Cov(a, b) for symbolic n, K = {d} sigma_w^4 q / n^{r} (M_22 - M_20 M_02 + 2 M_22 / K)",
                  sp.Matrix([general]), sp.Matrix([sp.expand(claimed)]))]
    return conclude("5.8", f"every width n and K: Cov((1/K)|u|^2, (1/K)||J^hid||^2) = {d} sigma_w^4 q/n^{r} "
                    "(M_22 - M_20 M_02 + 2 M_22/K)", "general n and K (symbolic; coefficients from n, K = 1, 2)",
                    ("readout W, b i.i.d. N(0, 1); units i.i.d. with M_ab = E[phi(h)^a phi'(h)^b]",
                     "exchangeable heads and units: the covariance is a sum over index patterns"), steps, strict)


__all__ += ["prove_target_dependence_general"]
