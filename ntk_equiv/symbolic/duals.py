"""C1 (dual activations, derived by integration) and the one-hidden-layer NTK
step (C1/C2), proven against the library's own closed forms and layers.

Parametrisation of a non-degenerate 2x2 covariance (the assumption of every
proof here): ``k11 = a^2``, ``k22 = b^2``, ``k12 = a b cos(theta)`` with
``a, b > 0`` and ``theta in (0, pi)`` written as ``theta = 2 atan(t)``, ``t > 0``,
so ``cos(theta) = (1 - t^2)/(1 + t^2)`` and ``sin(theta) = 2t/(1 + t^2)`` are
rational: every comparison is then an identity of rational functions (and
``atan(t)``), decided by ``cancel``.
"""
from __future__ import annotations

import functools

import sympy as sp

from ..activations import activation
from .backend import SympyElementwise, exact
from .record import Proof, Step, conclude

a, b, t = sp.symbols("a b t", positive=True)
THETA = sp.Symbol("theta", positive=True)
COS, SIN = (1 - t**2) / (1 + t**2), 2 * t / (1 + t**2)
K11, K22, K12 = a**2, b**2, a * b * COS
_ASSUME = ("(u, v) ~ N(0, [[k11, k12], [k12, k22]]) non-degenerate: k11 = a^2, k22 = b^2, "
           "k12 = a b cos(theta), a, b > 0, theta = 2 atan(t) in (0, pi)",)


def _in_t(expr):
    """An expression in ``theta`` (through sin, cos and theta) -> in ``t``."""
    e = sp.expand_trig(expr).xreplace({sp.cos(THETA): COS, sp.sin(THETA): SIN})
    return e.xreplace({THETA: 2 * sp.atan(t)})


def _zero(name, lhs, rhs) -> Step:
    d = sp.cancel(sp.together(sp.expand(lhs - rhs)))
    return Step(name, lhs, rhs, d, d == 0)


def _zero_in_t(name, lhs, rhs) -> Step:
    """``lhs == rhs`` as functions of ``t > 0``: the difference cancels to 0, or
    (two arctangent forms of one angle) its ``t``-derivative cancels to 0 and it
    vanishes at ``t = 1``, which proves it on the connected domain ``t > 0``."""
    st = _zero(name, lhs, rhs)
    if st.holds:
        return st
    d = lhs - rhs
    slope = sp.cancel(sp.together(sp.expand(sp.diff(d, t))))
    at1 = sp.simplify(d.subs(t, 1))
    return Step(name + " (d/dt = 0 and equal at t = 1)", lhs, rhs, (slope, at1), slope == 0 and at1 == 0)


def polar_relu_duals():
    """``E[relu(u) relu(v)]`` and ``E[step(u) step(v)]`` by integrating in polar
    coordinates: ``u = a r cos(alpha)``, ``v = b r cos(alpha - theta)`` with
    density ``r exp(-r^2/2) / (2 pi)`` on ``r > 0``, ``alpha`` uniform; both
    positive iff ``alpha in (max(-pi/2, theta - pi/2), min(pi/2, theta + pi/2))``."""
    r, al = sp.symbols("r alpha", real=True)
    lo, hi = sp.Max(-sp.pi / 2, THETA - sp.pi / 2), sp.Min(sp.pi / 2, THETA + sp.pi / 2)
    dens = r * sp.exp(-r**2 / 2) / (2 * sp.pi)
    u, v = a * r * sp.cos(al), b * r * sp.cos(al - THETA)

    def E(f):
        return sp.simplify(sp.integrate(sp.integrate(f * dens, (al, lo, hi)), (r, 0, sp.oo)))

    return E(u * v), E(sp.Integer(1)), (lo, hi)


def prove_relu_dual(strict: bool = True, dual=None) -> Proof:
    """C1: the library's ReLU closed form (``E[relu relu]``, ``E[step step]``) equals
    the polar-coordinate integral, and satisfies Price's theorem
    ``d/dk12 E[relu(u) relu(v)] = E[step(u) step(v)]``."""
    dual = dual or activation("relu").dual
    V, Vd = (sp.cancel(e) for e in dual(SympyElementwise(), K11, K12, K22))
    EV, EVd, (lo, hi) = polar_relu_duals()
    dk12 = sp.diff(K12, t)
    steps = [
        _zero("E[relu(u) relu(v)] (polar integral) = library V", _in_t(EV), V),
        _zero("E[step(u) step(v)] (polar integral) = library Vdot", _in_t(EVd), Vd),
        _zero("Price: dV/dk12 = Vdot", sp.diff(V, t) / dk12, Vd),
    ]
    return conclude("C1", "ReLU arc-cosine kernels: E[relu relu] = (sqrt(det) + (pi - theta) k12)/(2 pi), "
                    "E[step step] = (pi - theta)/(2 pi)", f"polar integration over alpha in ({lo}, {hi})",
                    _ASSUME, steps, strict)


@functools.lru_cache(maxsize=1)
def gaussian_lemma():
    """``int exp(-p v^2 + q v) dv = sqrt(pi/p) exp(q^2/(4p))`` (``p > 0``), integrated by sympy."""
    p, q, v = sp.Symbol("p", positive=True), sp.Symbol("q", real=True), sp.Symbol("v", real=True)
    val = sp.simplify(sp.integrate(sp.exp(-p * v**2 + q * v), (v, -sp.oo, sp.oo)))
    return p, q, val


def _integrate_out(exponent, var, lemma):
    """``int exp(exponent) d var = prefactor * exp(new_exponent)`` for an exponent
    quadratic in ``var`` (negative leading coefficient), by the lemma."""
    p, q, val = lemma
    poly = sp.Poly(sp.expand(exponent), var)
    c2, c1, c0 = (poly.coeff_monomial(var**k) for k in (2, 1, 0))
    pref = val.subs(q, 0)
    shift = sp.simplify(sp.log(sp.powsimp(val / pref, force=True)), force=True)  # q^2 / (4 p)
    return pref.subs(p, -c2), sp.cancel(c0 + shift.subs({p: -c2, q: c1}, simultaneous=True))


def erf_derivative_dual(k11, k12, k22):
    """``E[erf'(u) erf'(v)] = (4/pi) E[exp(-u^2 - v^2)]``: the bivariate Gaussian
    density ``exp(-z^T Sigma^{-1} z / 2) / (2 pi sqrt(det))`` integrated over
    ``v`` then ``u`` with :func:`gaussian_lemma`."""
    u, v = sp.symbols("u v", real=True)
    det = k11 * k22 - k12**2
    expo = -u**2 - v**2 - (k22 * u**2 - 2 * k12 * u * v + k11 * v**2) / (2 * det)
    lemma = gaussian_lemma()
    pv, expo = _integrate_out(expo, v, lemma)
    pu, expo = _integrate_out(expo, u, lemma)
    assert expo == 0
    return 4 / sp.pi * pv * pu / (2 * sp.pi * sp.sqrt(det))


def prove_erf_dual(strict: bool = True, dual=None) -> Proof:
    """C1 for erf: ``E[erf' erf']`` by Gaussian integration equals the library's
    ``4 / (pi sqrt((1 + 2 k11)(1 + 2 k22) - 4 k12^2))``; by Price's theorem
    ``E[erf(u) erf(v)] = int_0^{k12} E[erf' erf'] dc`` (the value at ``c = 0`` is
    ``E[erf u] E[erf v] = 0``), which sympy integrates to
    ``(2/pi) asin(2 k12 / sqrt((1+2k11)(1+2k22)))``; the library's atan2 form equals
    it (same value at ``k12 = 0`` and same derivative in ``k12``)."""
    dual = dual or activation("erf").dual
    k11, k22 = sp.symbols("k11 k22", positive=True)
    k12, c = sp.symbols("k12 c", real=True)
    V, Vd = dual(SympyElementwise(), k11, k12, k22)
    Ed = erf_derivative_dual(k11, k12, k22)
    Q = sp.Symbol("Q", positive=True)  # (1 + 2 k11)(1 + 2 k22)
    Qv = (1 + 2 * k11) * (1 + 2 * k22)
    price_q = sp.integrate(4 / (sp.pi * sp.sqrt(Q - 4 * c**2)), (c, 0, k12)).subs(Q, Qv)
    steps = [
        Step("E[erf' erf'] (Gaussian integral) = library Vdot", Ed, Vd, *_ratio_is_one(Ed, Vd)),
        Step("E[erf' erf'] = 4 / (pi sqrt(Q - 4 k12^2))", Ed, 4 / (sp.pi * sp.sqrt(Qv - 4 * k12**2)),
             *_ratio_is_one(Ed, 4 / (sp.pi * sp.sqrt(Qv - 4 * k12**2)))),
        _zero("Price: d/dk12 library V = library Vdot", sp.diff(V, k12), Vd),
        Step("int_0^k12 Vdot dc = (2/pi) asin(...): its k12-derivative is Vdot = d/dk12 library V",
             sp.diff(price_q, k12), Vd, *_ratio_is_one(sp.diff(price_q, k12), Vd)),
        _zero("... and equal at k12 = 0 (E[erf u] E[erf v] = 0)", price_q.subs(k12, 0), V.subs(k12, 0)),
    ]
    return conclude("C1", "erf (Williams 1997): E[erf erf] = (2/pi) asin(2 k12/sqrt((1+2k11)(1+2k22))), "
                    "E[erf' erf'] = 4/(pi sqrt((1+2k11)(1+2k22) - 4 k12^2))", "Gaussian integration + Price's theorem",
                    ("(u, v) ~ N(0, [[k11, k12], [k12, k22]]) with k11, k22 > 0 and det = k11 k22 - k12^2 > 0",),
                    steps, strict)


def _ratio_is_one(x, y):
    """For two positive expressions: ``(x/y)^2 = 1`` decided by ``cancel`` (their
    signs agree, both being positive), as ``(difference, holds)``."""
    d = sp.cancel(sp.together(sp.expand(sp.powsimp((x / y) ** 2, force=True)) - 1))
    return d, d == 0


def theory_recursion(K1, V, Vd, sw, sb):
    """docs/theory.md C1, one step: ``K^2 = sw^2 V + sb^2``, ``Theta^2 = K^2 + sw^2 Vdot Theta^1``
    with ``Theta^1 = K^1``."""
    K2 = sw**2 * V + sb**2
    return K2, K2 + sw**2 * Vd * K1


def prove_one_layer_ntk(strict: bool = True, recursion=theory_recursion) -> Proof:
    """The NTK recursion's step for one hidden layer, from the finite-width network.

    ``f(x) = sw/sqrt(n) sum_j w2_j phi(h_j(x)) + sb b2``, ``h_j(x) = sw/sqrt(d) w1_j . x + sb b1_j``.
    The empirical NTK ``sum_p df(x)/dp df(x')/dp`` (sympy differentiates; ``n = 2``
    units, ``d = 2`` inputs) is ``sb^2 + (1/n) sum_j T_j`` with
    ``T_j = sw^2 phi(h_j) phi(h_j') + sw^2 w2_j^2 phi'(h_j) phi'(h_j') K^1``;
    replacing ``(1/n) sum_j`` by ``E`` (i.i.d. units, ``E w2^2 = 1``, ``w2``
    independent of ``h``, ``Cov(h_j(x), h_j(x')) = K^1`` computed from
    ``E[w w^T] = I``) gives ``Theta^2 = K^2 + sw^2 E[phi' phi'] K^1``,
    ``K^2 = sw^2 E[phi phi] + sb^2``. Also (C2) ``Cov(f(x), f(x')) = K^2`` at every width ``n``."""
    sw, sb = sp.symbols("sigma_w sigma_b", positive=True)
    x = sp.symbols("x1:3", real=True)
    y = sp.symbols("y1:3", real=True)
    d, n = 2, 2
    phi, dphi = sp.Function("phi"), sp.Function("phidot")
    W1 = sp.Matrix(n, d, lambda i, j: sp.Symbol(f"w1_{i}{j}", real=True))
    b1 = sp.symbols(f"b1_0:{n}", real=True)
    w2 = sp.symbols(f"w2_0:{n}", real=True)
    b2 = sp.Symbol("b2", real=True)

    def h(j, z):
        return sw / sp.sqrt(d) * sum(W1[j, k] * z[k] for k in range(d)) + sb * b1[j]

    def f(z):
        return sw / sp.sqrt(n) * sum(w2[j] * phi(h(j, z)) for j in range(n)) + sb * b2

    def grad(z):
        # phi' written as the function phidot (d phi(s)/ds at s = h_j)
        return [sp.diff(f(z), p).replace(sp.Subs, lambda e, *a: dphi(a[1][0]))
                .replace(lambda e: isinstance(e, sp.Derivative), lambda e: dphi(e.args[0].args[0]))
                for p in params]

    params = list(W1) + list(b1) + list(w2) + [b2]
    emp = sp.expand(sum(gx * gy for gx, gy in zip(grad(x), grad(y))))
    K1 = sw**2 * sum(x[k] * y[k] for k in range(d)) / d + sb**2
    per_unit = [sw**2 * phi(h(j, x)) * phi(h(j, y)) + sw**2 * w2[j]**2 * dphi(h(j, x)) * dphi(h(j, y)) * K1
                for j in range(n)]
    gens = list(W1[0, :]) + [b1[0]]
    Eh = sum(c * _moment(m) for m, c in sp.Poly(sp.expand(h(0, x) * h(0, y)), *gens).terms())
    V, Vd = sp.symbols("V Vdot", real=True)  # E[phi(u) phi(v)], E[phi'(u) phi'(v)], (u, v) ~ N(0, K^1)
    limit = sum(u.subs(w2[j]**2, 1).subs({phi(h(j, x)) * phi(h(j, y)): V, dphi(h(j, x)) * dphi(h(j, y)): Vd})
                for j, u in enumerate(per_unit)) / n + sb**2
    K2, T2 = recursion(K1, V, Vd, sw, sb)
    nn, j = sp.symbols("n j", positive=True, integer=True)
    cov_f = sp.Sum(sw**2 / nn * V, (j, 1, nn)).doit() + sb**2  # E f f' = sw^2/n sum_j E w2^2 E phi phi + sb^2
    steps = [
        _zero("empirical NTK = sb^2 + (1/n) sum_j T_j (differentiation)", emp, sb**2 + sum(per_unit) / n),
        _zero("E[h_j(x) h_j(x')] = K^1 = Theta^1", Eh, K1),
        _zero("(1/n) sum_j T_j -> E: Theta^2 = K^2 + sw^2 Vdot K^1", limit, T2),
        _zero("C2: Cov(f(x), f(x')) = K^2 = sw^2 V + sb^2 at every width n", cov_f, K2),
    ]
    return conclude("C1", "one hidden layer: Theta^2 = K^2 + sw^2 E[phi'(u) phi'(v)] K^1, K^2 = sw^2 E[phi phi] + sb^2",
                    "finite-width differentiation (n = 2 units, d = 2), unit sums -> expectations",
                    ("W, b i.i.d. N(0, 1), NTK parameterisation", "(h_j(x), h_j(x')) ~ N(0, K^1) i.i.d. over units j"),
                    steps, strict)


def _moment(monomial) -> int:
    """``E[prod g_i^{k_i}]`` for i.i.d. N(0, 1) ``g`` up to degree 2."""
    if sum(monomial) == 0:
        return 1
    if sum(monomial) == 2 and max(monomial) == 2:
        return 1
    return 0


def _polar_expectation(f_uv, lo, hi):
    """``E[f(u, v)]`` over the angular range ``(lo, hi)`` in the polar
    coordinates of :func:`polar_relu_duals` (``f_uv`` a function of ``(u, v)``)."""
    r, al = sp.symbols("r alpha", real=True)
    dens = r * sp.exp(-r**2 / 2) / (2 * sp.pi)
    u, v = a * r * sp.cos(al), b * r * sp.cos(al - THETA)
    return sp.simplify(sp.integrate(sp.integrate(f_uv(u, v) * dens, (al, lo, hi)), (r, 0, sp.oo)))


def gaussian_cos_mean():
    """``E[cos(s)]`` for ``s ~ N(0, sigma^2)``, integrated by sympy: ``exp(-sigma^2/2)``."""
    s, sig = sp.Symbol("s", real=True), sp.Symbol("sigma", positive=True)
    val = sp.integrate(sp.cos(s) * sp.exp(-s**2 / (2 * sig**2)) / (sp.sqrt(2 * sp.pi) * sig), (s, -sp.oo, sp.oo))
    return sig, sp.simplify(val)


def prove_named_duals(strict: bool = True, duals=None) -> Proof:
    """C1 for the other named closed forms, each derived and compared with the
    library's ``activation(name).dual``:

    * leaky ReLU (symbolic slope ``alpha``): ``phi = (1 - alpha) relu + alpha x``,
      with ``E[relu(u) v] = k12 / 2`` and ``E[step(u)] = 1/2`` integrated in polar coordinates;
    * sign ``= 2 step - 1``: ``E[sign sign] = 4 E[step step] - 1``, ``sign' = 0`` a.e.
      (abs is not covered: its library closed form also maps the kernel state's
      gaps with ``np.minimum``, which cannot run on symbols);
    * identity: ``E[uv] = k12`` over the full circle;
    * sin, cos: ``sin u sin v = (cos(u - v) - cos(u + v)) / 2`` etc. with
      ``E[cos s] = exp(-Var(s)/2)`` (sympy integrates) and ``Var(u -+ v) = k11 + k22 -+ 2 k12``,
      against ``exp(-(k11 + k22)/2) sinh(k12)``, ``... cosh(k12)`` (the textbook form: the
      library evaluates it through the kernel state's gaps with ``np.minimum``, which
      cannot run on symbols).

    ``duals`` may override ``{name: dual_fn}`` (to show a wrong closed form fails)."""
    from ..activations import activation as act

    alpha = sp.Symbol("alpha", positive=True)
    bk = SympyElementwise({0.1: alpha})
    lib = {name: act(name, **({"alpha": 0.1} if name == "leaky_relu" else {})).dual
           for name in ("leaky_relu", "sign", "identity")}
    # sin/cos: the library's form works on the kernel state's gaps with np.minimum,
    # which cannot run on symbols; compare with the textbook closed form instead
    damp = sp.exp(-(K11 + K22) / 2)
    lib["sin"] = lambda bk_, k11, k12, k22: (damp * sp.sinh(k12), damp * sp.cosh(k12))
    lib["cos"] = lambda bk_, k11, k12, k22: (damp * sp.cosh(k12), damp * sp.sinh(k12))
    lib.update(duals or {})
    EV, EVd, (lo, hi) = polar_relu_duals()
    half = (-sp.pi / 2, sp.pi / 2)
    E_relu_lin = _polar_expectation(lambda u, v: u * v, *half)  # E[relu(u) v]
    E_step = _polar_expectation(lambda u, v: 1, *half)  # E[step(u)]
    E_uv = _polar_expectation(lambda u, v: u * v, 0, 2 * sp.pi)
    derived = {
        "leaky_relu": ((1 - alpha)**2 * EV + 2 * alpha * (1 - alpha) * E_relu_lin + alpha**2 * E_uv,
                       (1 - alpha)**2 * EVd + 2 * alpha * (1 - alpha) * E_step + alpha**2),
        "sign": (4 * EVd - 4 * E_step + 1, sp.Integer(0)),
        "identity": (E_uv, sp.Integer(1)),
    }
    sig, Ecos = gaussian_cos_mean()
    Em, Ep = Ecos.subs(sig, sp.sqrt(K11 + K22 - 2 * K12)), Ecos.subs(sig, sp.sqrt(K11 + K22 + 2 * K12))
    derived["sin"] = ((Em - Ep) / 2, (Em + Ep) / 2)  # sin' = cos
    derived["cos"] = ((Em + Ep) / 2, (Em - Ep) / 2)  # cos' = -sin: (-sin u)(-sin v)
    steps = []
    for name, (V, Vd) in derived.items():
        LV, LVd = lib[name](bk, K11, K12, K22)
        for which, d, L in (("E[phi phi]", V, LV), ("E[phi' phi']", Vd, LVd)):
            d, L = _in_t(d), exact(L)
            steps.append(_zero_in_t(f"{name}: {which} derived = library", sp.expand(d.rewrite(sp.exp)),
                                    sp.expand(L.rewrite(sp.exp))))
    return conclude("C1", "closed-form dual maps of leaky_relu, sign, identity, sin, cos",
                    "polar integration and the Gaussian characteristic function", _ASSUME + ("leaky slope alpha > 0",),
                    steps, strict)
