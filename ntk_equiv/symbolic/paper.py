"""Exact proofs (or exact refutations) of the paper's statements as printed.

Each proof takes the printed choice as a parameter (:mod:`ntk_equiv.printed`),
so the same function proves the corrected form and, given the printed one,
returns a record whose non-zero differences are the counterexample.

* Prop 5.1 (:func:`prove_5_1`): the converged network with sign ``s``
  against (i) the limit of C3's gradient flow *derived here* for general ``N``
  (``f_t = f_0 + Theta_xX Theta_XX^{-1} (I - E_t)(Y - f_0(X))`` solves the flow with
  ``dE/dt = -eta Theta_XX E``, ``E_0 = I``; ``E_t -> 0``), not the library's formula,
  (ii) interpolation ``f(X; theta_inf) = Y``, (iii) the limit ``t -> inf`` of
  the scalar gradient flow ``f' = -eta Theta (f - y)`` solved by ``dsolve``,
  with an exact rational instance.
* Prop 5.2 / 5.3 (:func:`prove_5_2`, :func:`prove_5_3`): the law of the
  converged network / RND error, computed from its construction, against the
  printed list of covariance terms.
* Thm 5.6 (:func:`prove_5_6_general`): both sides are ``Sigma / K chi^2_K`` for
  symbolic ``K``, by Laplace transforms (the RND side from ``K`` squared standard
  normals, the ensemble side from the centring matrix ``C = I - 1 1^T / (K + 1)``,
  ``C^2 = C``, ``tr C = K``: Cochran); :func:`prove_5_6` checks the quadratic
  forms at explicit ``K``.
* Prop 5.7 (:func:`prove_5_7`): for a one-hidden-layer network in NTK
  parameterisation (explicit widths, symbolic weights, inputs, ``phi``), the
  readout layer's share of the empirical NTK is the NNGP kernel's last-layer
  form and the rest is the hidden share, so ``kappa + Theta^hid = Theta``.
"""
from __future__ import annotations

from typing import Sequence

import sympy as sp

from .. import formulas, printed
from ..precision import SYMPY
from .common import default, kernel, step
from .laws import _rnd_residual
from .record import Proof, Step, conclude

_PD = "Theta_XX symmetric positive definite"
_GP = "random functions are centred Gaussian processes with the stated covariance blocks; distinct ones independent"


def _scalar_flow(sign: int) -> list[Step]:
    """``f' = -eta theta (f - y)``, ``f(0) = f0`` (one training point, ``N = 1``):
    ``lim_{t -> inf} f(t)`` against the statement at ``x = X``, symbolically and
    at ``(f0, y, theta, eta) = (0, 1, 1, 1)``."""
    t = sp.Symbol("t", positive=True)
    eta, theta = sp.symbols("eta Theta", positive=True)
    f0, y = sp.symbols("f0 y", real=True)
    f = sp.Function("f")
    sol = sp.dsolve(sp.Eq(f(t).diff(t), -eta * theta * (f(t) - y)), f(t), ics={f(0): f0}).rhs
    limit = sp.limit(sol, t, sp.oo)
    stated = printed.converged_network(sp.Matrix([f0]), sp.Matrix([f0]), sp.Matrix([theta]),
                                       sp.Matrix([1 / theta]), sp.Matrix([y]), sign)
    diff = sp.simplify(stated - sp.Matrix([limit]))
    inst = diff.subs({f0: 0, y: 1, theta: 1, eta: 1})
    return [Step("N=1: statement at x = X == lim_{t->inf} of dsolve(f' = -eta Theta (f - y))",
                 stated, sp.Matrix([limit]), diff, all(v == 0 for v in diff)),
            Step("N=1 instance f0=0, y=1, Theta=1", stated.subs({f0: 0, y: 1, theta: 1}), sp.Matrix([1]), inst,
                 all(v == 0 for v in inst))]


def prove_5_1(alg=None, strict: bool = True, sign: int = +1, flow: bool = True) -> Proof:
    """Prop 5.1 with sign ``sign`` (printed ``-1``, corrected ``+1``), against the
    limit of C3's flow derived here, not against the library's formula: with
    ``E_t`` the solution of ``dE/dt = -eta Theta_XX E``, ``E_0 = I`` (i.e.
    ``exp(-eta Theta_XX t)``, which commutes with ``Theta_XX`` and tends to 0 for
    ``Theta_XX`` positive definite), ``f_t = f_0 + Theta_xX Theta_XX^{-1} (I - E_t)
    (Y - f_0(X))`` solves the linearised flow ``df_t(x)/dt = -eta Theta_xX (f_t(X) -
    Y)`` with ``f_t = f_0`` at ``t = 0`` (checked for general ``N``); its limit
    (``E_t -> 0``) is compared with the statement, on test inputs and at ``X``."""
    alg = default(alg)
    TxX, TXX = alg.matrix("Theta_xX", "n", "N"), alg.symmetric("Theta_XX", "N")
    f0x, f0X, Y = alg.matrix("f0_x", "n", "1"), alg.matrix("f0_X", "N", "1"), alg.matrix("Y", "N", "1")
    Ainf = formulas.train_operator(TXX, SYMPY)  # Theta_XX^{-1}
    E, I, zero = alg.matrix("E_t", "N", "N"), alg.eye("N"), alg.zeros("N", "N")
    eta = sp.Symbol("eta", positive=True)

    def flow_at(theta_zX, f0z):
        return f0z + theta_zX * Ainf * (I - E) * (Y - f0X)

    def at(expr, value):  # expr with E_t := value (entrywise for explicit matrices)
        if isinstance(E, sp.MatrixBase):
            return expr.subs({E[i, j]: value[i, j] for i in range(E.rows) for j in range(E.cols)})
        return expr.subs(E, value)

    e_dot = -eta * TXX * E  # the matrix exponential's ODE
    steps = [
        step(alg, "C3: f_t(x) = f_0 + Theta_xX Theta^{-1} (I - E_t)(Y - f_0(X)) solves df/dt = -eta Theta_xX (f_t(X) - Y)",
             TxX * Ainf * (-e_dot) * (Y - f0X), -eta * TxX * (flow_at(TXX, f0X) - Y)),
        step(alg, "C3: f_t = f_0 at t = 0 (E_0 = I)", at(flow_at(TxX, f0x), I), f0x),
        step(alg, "statement == lim_{t->inf} f_t(x) (E_t -> 0: Theta_XX positive definite)",
             printed.converged_network(f0x, f0X, TxX, Ainf, Y, sign), at(flow_at(TxX, f0x), zero)),
        step(alg, "interpolation: statement at x = X equals Y", printed.converged_network(f0X, f0X, TXX, Ainf, Y, sign), Y),
    ]
    if flow:
        steps += _scalar_flow(sign)
    s = "+" if sign > 0 else "-"
    return conclude("5.1", f"f(x; theta_inf) = f(x; theta_0) {s} Theta_xX Theta_XX^{{-1}} (Y - f(X; theta_0))",
                    alg.method, (_PD, "f_0, Y arbitrary"), steps, strict)


def prove_5_2(alg=None, strict: bool = True, terms: Sequence[tuple[int, str]] = ()) -> Proof:
    """Prop 5.2: ``f_inf = f_0 + Theta_xX Theta_XX^{-1} (Y - f_0(X))`` with
    ``f_0 ~ GP(0, kappa)`` has mean ``Theta_TX Theta^{-1} Y`` and the printed covariance."""
    alg = default(alg)
    k = kernel(alg, "kappa")
    T = {"xX": alg.matrix("Theta_xX", "n", "N"), "XX": alg.symmetric("Theta_XX", "N")}
    Y = alg.matrix("Y", "N", "1")
    Ainf = formulas.train_operator(T["XX"], SYMPY)
    f0 = alg.gaussian("f0", k)
    f = formulas.linearised_mean(f0["x"], f0["X"], T["xX"], Ainf, Y)
    steps = [step(alg, "E f(X_T; theta_inf) = Theta_TX Theta^{-1} Y", alg.mean(f),
                  printed.converged_mean(T["xX"], Ainf, Y)),
             step(alg, "Cov f(X_T; theta_inf) = printed covariance", alg.cov(f),
                  printed.converged_cov(terms, k, T, Ainf))]
    return conclude("5.2", "f(X_T; theta_inf) ~ N(Theta_TX Theta^{-1} Y, printed covariance)", alg.method,
                    (_GP, _PD), steps, strict)


def prove_5_3(alg=None, strict: bool = True, terms: Sequence[tuple[int, str]] = ()) -> Proof:
    """Prop 5.3: the converged RND error (predictor ``u_0 ~ GP(0, kappa_u)``
    trained to ``t = inf`` on the target ``g ~ GP(0, kappa_g)``) is a zero-mean
    GP with the printed covariance for ``kappa_eps = kappa_u + kappa_g``."""
    alg = default(alg)
    ku, kg = kernel(alg, "kappa_u"), kernel(alg, "kappa_g")
    T = {"xX": alg.matrix("Theta_xX", "n", "N"), "XX": alg.symmetric("Theta_XX", "N")}
    Ainf = formulas.train_operator(T["XX"], SYMPY)
    # laws._rnd_residual names the predictor "Kg" and the target "Ku" (the C-claims' roles):
    # here the trained predictor has kernel kappa_u and the fixed target kappa_g
    eps = _rnd_residual(alg, ku, kg, T["xX"], Ainf)
    keps = {b: ku[b] + kg[b] for b in ku}
    steps = [step(alg, "E eps = 0", alg.mean(eps), alg.zeros("n", "1")),
             step(alg, "Cov eps = printed covariance with kappa_eps = kappa_u + kappa_g", alg.cov(eps),
                  printed.converged_cov(terms, keps, T, Ainf))]
    return conclude("5.3", "eps(X_T) ~ N(0, printed covariance of kappa_u + kappa_g)", alg.method,
                    (_GP, _PD, "predictor and target independent"), steps, strict)


def prove_5_6(strict: bool = True, half: bool = True, heads: Sequence[int] = (1, 2, 3, 4, 5)) -> Proof:
    """Thm 5.6 for ``K`` in ``heads``: ``c eps^2 = Sigma/K sum_i z_i^2`` with
    ``c = 1/2`` if ``half`` (printed) else ``1``, where ``eps_i = sqrt(2 Sigma) z_i``
    (Cor 5.4 corrected: ``Var eps_i = 2 Sigma``); and ``s^2 = Sigma/K z^T C z``
    for ``f_j = mu + sqrt(Sigma) z_j`` with ``C`` the centring matrix, symmetric,
    idempotent (so ``z^T C z ~ chi^2_rank``), ``C 1 = 0`` and trace ``K``."""
    sigma, mu = sp.symbols("Sigma mu", positive=True)
    c = sp.Rational(1, 2) if half else sp.Integer(1)
    steps = []
    for K in heads:
        z = sp.Matrix(sp.symbols(f"z0:{K + 1}", real=True))
        eps = sp.sqrt(2 * sigma) * z[:K, 0]
        rnd_side = c * (eps.T * eps)[0] / K
        steps.append(Step(f"K={K}: c eps^2 == Sigma/K sum_i z_i^2", rnd_side, sigma / K * (z[:K, 0].T * z[:K, 0])[0],
                          sp.simplify(rnd_side - sigma / K * (z[:K, 0].T * z[:K, 0])[0]),
                          sp.simplify(rnd_side - sigma / K * (z[:K, 0].T * z[:K, 0])[0]) == 0))
        one = sp.ones(K + 1, 1)
        C = sp.eye(K + 1) - one * one.T / (K + 1)
        f = mu * one + sp.sqrt(sigma) * z
        fbar = sum(f) / (K + 1)
        s2 = sum((fi - fbar) ** 2 for fi in f) / K
        quad = sigma / K * (z.T * C * z)[0]
        for name, lhs, rhs in ((f"K={K}: s^2 == Sigma/K z^T C z", s2, quad),
                               (f"K={K}: C^2 == C", C * C, C), (f"K={K}: C^T == C", C.T, C),
                               (f"K={K}: C 1 == 0", C * one, sp.zeros(K + 1, 1)),
                               (f"K={K}: trace C == K", C.trace(), sp.Integer(K))):
            d = sp.simplify(sp.expand(lhs - rhs))
            ok = all(v == 0 for v in d) if isinstance(d, sp.MatrixBase) else d == 0
            steps.append(Step(name, lhs, rhs, d, bool(ok)))
    what = "(1/2)" if half else "(1)"
    return conclude("5.6", f"{what} eps^2 and s^2 of K+1 networks are both Sigma/K chi^2_K", f"explicit K = {list(heads)}",
                    ("eps_i i.i.d. N(0, 2 Sigma) (Cor 5.4 corrected, Prop 5.5)", "f_j i.i.d. N(mu, Sigma)"),
                    steps, strict)


def prove_5_7(strict: bool = True, bias: bool = True, width: int = 3, d: int = 2) -> Proof:
    """Prop 5.7's kernel identity for ``f(x) = (sigma_w / sqrt(n)) sum_j v_j
    phi(h_j(x)) + sigma_b c`` with ``h_j(x) = (sigma_w / sqrt(d)) sum_i W_ji x_i +
    sigma_b b_j`` (``n = width`` hidden units, input dimension ``d``, ``phi``
    an undefined function), every gradient taken by ``sympy.diff``:

    (i) the readout share ``sum_{w in {v_j, c}} df(x)/dw df(x')/dw`` equals
    ``sigma_w^2 (1/n) sum_j phi(h_j(x)) phi(h_j(x')) + sigma_b^2`` (the NNGP
    kernel's last-layer form, whose limit is ``kappa``; ``bias=False`` states it
    without ``sigma_b^2``, which is false);
    (ii) ``Theta = sum over all parameters`` minus the readout share equals the
    hidden share ``sigma_w^2 (1/n) sum_j v_j^2 phi'(h_j(x)) phi'(h_j(x'))
    (sigma_w^2 x.x' / d + sigma_b^2)``, i.e. ``kappa + Theta^hid = Theta``."""
    sw, sb = sp.symbols("sigma_w sigma_b", positive=True)
    phi = sp.Function("phi")
    x, xp = sp.symbols(f"x0:{d}", real=True), sp.symbols(f"xp0:{d}", real=True)
    W = sp.Matrix(width, d, lambda j, i: sp.Symbol(f"W{j}{i}", real=True))
    b, v = sp.symbols(f"b0:{width}", real=True), sp.symbols(f"v0:{width}", real=True)
    c = sp.Symbol("c", real=True)

    def pre(z):
        return [sw / sp.sqrt(d) * sum(W[j, i] * z[i] for i in range(d)) + sb * b[j] for j in range(width)]

    def net(z):
        return sw / sp.sqrt(width) * sum(v[j] * phi(h) for j, h in enumerate(pre(z))) + sb * c

    def share(params):
        return sum(sp.diff(net(x), p) * sp.diff(net(xp), p) for p in params)

    readout, hidden_params = list(v) + [c], list(W) + list(b)
    theta = share(readout + hidden_params)
    h, hp = pre(x), pre(xp)
    nngp = sw**2 / width * sum(phi(h[j]) * phi(hp[j]) for j in range(width)) + (sb**2 if bias else 0)
    a = sp.Symbol("a", real=True)

    def dphi(z):  # phi'(z), written independently of the chain rule diff applies to the network
        return sp.Subs(sp.Derivative(phi(a), a), a, z)

    hid = sw**2 / width * sum(v[j] ** 2 * dphi(h[j]) * dphi(hp[j]) for j in range(width)) * (
        sw**2 / d * sum(x[i] * xp[i] for i in range(d)) + sb**2)
    steps = []
    for name, lhs, rhs in (("readout share == sigma_w^2 (1/n) sum_j phi(h_j) phi(h_j') + sigma_b^2",
                            share(readout), nngp),
                           ("Theta - readout share == hidden share", theta - share(readout), hid),
                           ("kappa + Theta^hid == Theta", nngp + hid, theta)):
        diff = sp.simplify(sp.expand(lhs - rhs))
        steps.append(Step(name, lhs, rhs, diff, bool(diff == 0)))
    return conclude("5.7", "readout share of the NTK = NNGP last-layer form; kappa + Theta^hid = Theta",
                    f"one hidden layer, explicit n = {width}, d = {d}, sympy.diff",
                    ("NTK parameterisation", "phi differentiable, otherwise arbitrary", "weights, inputs real"),
                    steps, strict)


def prove_5_7_law(strict: bool = True, regime: str = "limit", rate=1, units: int = 2) -> Proof:
    """Prop 5.7's Gaussian law at finite width, one hidden layer of ``n = units``
    units, input dimension 1: the target ``g~(x) = sigma_w/sqrt(n) sum_j V_j
    phi'(h_j) (sigma_w x psi_wj + sigma_b psi_bj)`` (``V`` the readout, ``psi*`` the
    hidden tangent, all i.i.d. ``N(0, 1)``; units i.i.d. with ``M_0b =
    E phi'(h)^b``). Its fourth cumulant, computed from the construction,

    ``E g~^4 - 3 (E g~^2)^2 = 3 sigma_w^4 q^2 (3 M_04 - M_02^2) / n``,

    ``q = sigma_w^2 x^2 + sigma_b^2``: a scale mixture of Gaussians, Gaussian only
    as ``n -> inf`` (``regime="limit"``: the claim ``... / n^rate``), while
    ``E g~^2 = sigma_w^2 q M_02`` is exact at every width. ``regime="every
    width"`` claims the fourth cumulant 0 (Gaussian at finite width): false."""
    from .heads_and_means import _unit_expectation

    n = units
    sw, sb = sp.symbols("sigma_w sigma_b", positive=True)
    x = sp.Symbol("x", real=True)
    V = [sp.Symbol(f"V_{j}", real=True) for j in range(n)]
    pw = [sp.Symbol(f"psi_w{j}", real=True) for j in range(n)]
    pb = [sp.Symbol(f"psi_b{j}", real=True) for j in range(n)]
    units_pr = [(sp.Symbol(f"p_{j}", real=True), sp.Symbol(f"r_{j}", real=True)) for j in range(n)]
    g = sw / sp.sqrt(n) * sum(V[j] * units_pr[j][1] * (sw * x * pw[j] + sb * pb[j]) for j in range(n))
    normals = V + pw + pb
    m2 = _unit_expectation(g**2, normals, units_pr)
    m4 = _unit_expectation(g**4, normals, units_pr)
    q = sw**2 * x**2 + sb**2
    M02, M04 = sp.Symbol("M_02", real=True), sp.Symbol("M_04", real=True)
    cumulant = 0 if regime == "every width" else 3 * sw**4 * q**2 * (3 * M04 - M02**2) / sp.Integer(n) ** sp.nsimplify(rate)
    alg = default(None)
    steps = [step(alg, "E g~^2 = sigma_w^2 q M_02 (every width)", sp.Matrix([m2]), sp.Matrix([sw**2 * q * M02])),
             step(alg, f"E g~^4 - 3 (E g~^2)^2 = {'0' if regime == 'every width' else '3 sigma_w^4 q^2 (3 M_04 - M_02^2) / n'}",
                  sp.Matrix([sp.expand(m4 - 3 * m2**2)]), sp.Matrix([sp.expand(cumulant)]))]
    return conclude("5.7", f"g~ at width n = {n}: E g~^2 exact, fourth cumulant "
                    + ("0 (Gaussian at every width)" if regime == "every width" else "3 sigma_w^4 q^2 (3 M_04 - M_02^2)/n"),
                    f"explicit units n = {n}, one hidden layer, sympy moments",
                    ("readout V and tangent psi* i.i.d. N(0, 1)", "units i.i.d. with M_0b = E phi'(h)^b"), steps, strict)


def prove_5_6_general(strict: bool = True, half: bool = True) -> Proof:
    """Thm 5.6 for **symbolic** ``K`` (a positive integer), by Laplace transforms
    ``L_V(u) = E exp(-u V)``, ``u > 0`` (they determine the law of ``V >= 0``):

    * the target law ``Sigma/K chi^2_K``: ``L(u) = (1 + 2 u Sigma/K)^{-K/2}``, integrated
      from the chi^2_K density;
    * RND: ``c eps^2 = c (1/K) sum_i eps_i^2`` with ``eps_i = sqrt(2 Sigma) z_i`` i.i.d.
      (Cor 5.4 corrected, Prop 5.5), so ``L = (E exp(-(2 c Sigma u/K) z^2))^K``, the one-normal
      transform integrated; equal to the target iff ``c = 1/2`` (``half``);
    * ensemble: with ``f_j = mu + sqrt(Sigma) z_j``, ``j = 1..K+1``, ``K s^2 = Sigma z^T C z``,
      ``C = I - J/(K + 1)``, ``J = 1 1^T`` (``J^2 = (K+1) J``, ``tr I = tr J = K + 1``):
      the sum-of-squares identity, ``C^2 = C``, ``C^T = C`` and ``tr C = K`` for
      symbolic ``K``, so ``z^T C z ~ chi^2_K`` (Cochran: a symmetric idempotent ``C`` is
      an orthogonal projection of rank ``tr C``)."""
    K = sp.Symbol("K", integer=True, positive=True)
    u, sigma = sp.symbols("u Sigma", positive=True)
    z, x = sp.Symbol("z", real=True), sp.Symbol("x", positive=True)
    c = sp.Rational(1, 2) if half else sp.Integer(1)

    def laplace_normal_sq(a):  # E exp(-a z^2), z ~ N(0, 1), a > 0
        return sp.integrate(sp.exp(-a * z**2) * sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi), (z, -sp.oo, sp.oo))

    density = x ** (K / 2 - 1) * sp.exp(-x / 2) / (2 ** (K / 2) * sp.gamma(K / 2))
    target = sp.integrate(sp.exp(-u * sigma / K * x) * density, (x, 0, sp.oo), conds="none")
    rnd = laplace_normal_sq(2 * c * sigma * u / K) ** K
    alg = default(None)
    steps = [step(alg, "target: L(u) of Sigma/K chi^2_K = (1 + 2 u Sigma/K)^(-K/2) (from the density)",
                  sp.Matrix([target]), sp.Matrix([(1 + 2 * u * sigma / K) ** (-K / 2)])),
             step(alg, f"RND: L(u) of {c} eps^2 = (E exp(-2 {c} Sigma u z^2 / K))^K == target",
                  sp.Matrix([rnd]), sp.Matrix([target]))]
    # the ensemble side in the algebra of I and J = 1 1^T (J^2 = (K + 1) J)
    Jsym, S1, S = sp.symbols("J S1 S")  # S1 = sum z_j^2, S = sum z_j

    def reduce(p):
        return sp.rem(sp.expand(p), Jsym**2 - (K + 1) * Jsym, Jsym)

    C = 1 - Jsym / (K + 1)
    trace = sp.Poly(reduce(C), Jsym)
    tr_C = trace.coeff_monomial(1) * (K + 1) + trace.coeff_monomial(Jsym) * (K + 1)
    sum_sq = S1 - 2 * S**2 / (K + 1) + (K + 1) * (S / (K + 1)) ** 2  # sum_j (z_j - S/(K+1))^2
    steps += [step(alg, "ensemble: sum_j (f_j - fbar)^2 = Sigma (z^T z - z^T J z/(K+1)) = Sigma z^T C z",
                   sp.Matrix([sigma * sum_sq]), sp.Matrix([sigma * (S1 - S**2 / (K + 1))])),
              step(alg, "C^2 == C (J^2 = (K+1) J)", sp.Matrix([reduce(C**2)]), sp.Matrix([reduce(C)])),
              step(alg, "trace C == K (tr I = tr J = K + 1)", sp.Matrix([tr_C]), sp.Matrix([K])),
              step(alg, "ensemble: L(u) of s^2 = Sigma/K z^T C z, z^T C z ~ chi^2_{tr C} (Cochran) == target",
                   sp.Matrix([target.subs(K, tr_C)]), sp.Matrix([target]))]
    what = "(1/2)" if half else "(1)"
    return conclude("5.6", f"{what} eps^2 and s^2 of K+1 networks are both Sigma/K chi^2_K, for every K",
                    "general K (symbolic positive integer), Laplace transforms",
                    ("eps_i i.i.d. N(0, 2 Sigma) (Cor 5.4 corrected, Prop 5.5)", "f_j i.i.d. N(mu, Sigma)",
                     "C = I - 1 1^T/(K+1) is symmetric (J^T = J)"), steps, strict)
