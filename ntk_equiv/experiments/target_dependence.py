"""Thm 5.8's proof gap: at finite width the predictor at initialisation and the
paper's Bayesian target are uncorrelated but **not independent**.

Paper notation: predictor ``u(x; vartheta_0)`` with ``K`` heads, target
``g~(x) = J^hid(x; vartheta_0) psi*`` (one tangent ``psi*`` for all heads,
zero on the readout: ``BayesianRND``'s default, whose ``target(x)`` is ``g~(x)``
with ``psi* = -xi``).
Given ``vartheta_0``, ``g~_m(x) ~ N(0, ||J^hid_m(x)||^2)``: its conditional
variance depends on ``vartheta_0``, so ``g~`` and ``u(.; vartheta_0)`` are
dependent, although ``E[u g~] = E[u E[psi*]] = 0``.

The dependence statistic (per test input ``x``, over seeds):

``D(n) = Cov(a, b) / (kappa(x, x) (Theta - kappa)(x, x))`` with
``a = (1/K) sum_m u_m(x)^2``, ``b = (1/K) sum_m ||J^hid_m(x)||^2 = E[(1/K) ||g~(x)||^2 | vartheta_0]``,

normalised by the limits of ``E a`` and ``E b``. If ``u`` and ``g~`` were
independent, ``Cov(u_m^2, g~_m'^2) = Cov(u_m^2, ||J^hid_m'||^2)`` would be 0.
For one hidden layer it is exactly ``c / n`` at every width
(:func:`dependence_constant`; derived by
:func:`ntk_equiv.symbolic.heads_and_means.prove_target_dependence`): both are
sums over the ``n`` units of terms sharing a unit's readout weights and
activation. ``c`` is positive for relu, negative for erf (``erf^2`` and
``erf'^2`` move oppositely), never 0: the dependence is present at every
finite width and gone only in the limit, the step the proof does not show.
The plain correlation of ``u`` and ``g~`` is 0 at every width (tested
against 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from .. import rnd
from ..precision import mp_context
from .inputs import child_seed, sphere_inputs

#: ``(phi, phi')`` per activation: float64, and mpmath as functions of a context
_ACTS = {
    "erf": ((erf, lambda h: 2 / np.sqrt(np.pi) * np.exp(-h * h)),
            (lambda ctx: ctx.erf, lambda ctx: (lambda h: 2 / ctx.sqrt(ctx.pi) * ctx.exp(-h * h)))),
    "relu": ((lambda h: np.maximum(h, 0.0), lambda h: (h > 0).astype(float)),
             (lambda ctx: (lambda h: h if h > 0 else ctx.mpf(0)),
              lambda ctx: (lambda h: ctx.mpf(1) if h > 0 else ctx.mpf(0)))),
}


def dependence_constant(act: str, sigma_w: float, sigma_b: float, x_sq_over_d: float, heads: int,
                        dps: int | None = None):
    """``c`` with ``D(n) = c / n`` exactly for one hidden layer (derived in
    :func:`ntk_equiv.symbolic.heads_and_means.prove_target_dependence`):

    ``c = sigma_w^2 (M_22 - M_20 M_02 + 2 M_22 / K) / ((sigma_w^2 M_20 + sigma_b^2) M_02)``,
    ``M_ab = E[phi(h)^a phi'(h)^b]``, ``h ~ N(0, q)``, ``q = sigma_w^2 |x|^2/d + sigma_b^2``
    (the normalisation is ``kappa(x,x) (Theta - kappa)(x,x) = (sigma_w^2 M_20 + sigma_b^2) sigma_w^2 M_02 q``).
    Float64: 200-node Gauss-Hermite; ``dps``: ``quad`` (split at the kink 0) in an
    mpmath context of its own at ``dps`` (+ guard) digits."""
    q = sigma_w**2 * x_sq_over_d + sigma_b**2
    if dps is None:
        phi, dphi = _ACTS[act][0]
        z, w = np.polynomial.hermite_e.hermegauss(200)
        h, w = math.sqrt(q) * z, w / math.sqrt(2 * math.pi)

        def E(a, b):
            return float(np.sum(w * phi(h) ** a * dphi(h) ** b))
    else:
        ctx = mp_context(dps)  # our own context: mpmath.mp is never touched
        phi, dphi = (f(ctx) for f in _ACTS[act][1])
        qm = ctx.mpf(sigma_w) ** 2 * ctx.mpf(x_sq_over_d) + ctx.mpf(sigma_b) ** 2

        def E(a, b):
            dens = lambda t: ctx.exp(-t * t / (2 * qm)) / ctx.sqrt(2 * ctx.pi * qm)  # noqa: E731
            return ctx.quad(lambda t: dens(t) * phi(t) ** a * dphi(t) ** b, [-ctx.inf, 0, ctx.inf])
    M22, M20, M02 = E(2, 2), E(2, 0), E(0, 2)
    if dps is None:
        return sigma_w**2 * (M22 - M20 * M02 + 2 * M22 / heads) / ((sigma_w**2 * M20 + sigma_b**2) * M02)
    sw2, sb2 = ctx.mpf(sigma_w) ** 2, ctx.mpf(sigma_b) ** 2  # the same formula, every operation in ctx
    return sw2 * (M22 - M20 * M02 + 2 * M22 / heads) / ((sw2 * M20 + sb2) * M02)


def relu_dependence_constant(sigma_w: float, sigma_b: float, x_sq_over_d: float, heads: int, dps: int):
    """The same constant for relu in closed form (``M_20 = M_22 = q/2``, ``M_02 = 1/2``),
    at ``dps`` digits: ``c = 2 sigma_w^2 q (1/4 + 1/K) / (sigma_w^2 q / 2 + sigma_b^2)``."""
    ctx = mp_context(dps)
    sw, sb = ctx.mpf(sigma_w), ctx.mpf(sigma_b)
    q = sw**2 * ctx.mpf(x_sq_over_d) + sb**2
    return 2 * sw**2 * q * (ctx.mpf(1) / 4 + ctx.mpf(1) / heads) / (sw**2 * q / 2 + sb**2)


def hidden_ntk_diag(net, x: np.ndarray) -> np.ndarray:
    """``(1/K) sum_m ||J^hid_m(x)||^2``, shape ``(n,)``: the diagonal of the
    head-averaged empirical NTK minus the readout layer's share
    ``sigma_w^2 / n_in ||a(x)||^2 + sigma_b^2`` (``a`` the readout's input),
    the same for every head."""
    diag = np.diag(net.empirical_ntk(x))
    _, caches = net.arch.apply(net.params0, x)
    ro = net.arch.layers[net.arch.readout_index]
    a = caches[net.arch.readout_index]
    readout = ro.sigma_w**2 / a.shape[1] * np.sum(a**2, axis=1) + ro.sigma_b**2
    return diag - readout


@dataclass
class TargetDependence:
    """Per width ``w`` and test input ``i``: ``dep[w][i]`` and ``dep_se[w][i]``
    (the statistic ``D`` and its standard error over seeds), ``plain_z[w][i]``
    (z-score of ``E[(1/K) sum_m u_m g~_m] = 0``); ``slope``/``slope_se``: the
    weighted least-squares slope of ``log D`` against ``log n`` per input."""

    widths: tuple
    heads: int
    seeds: int
    x_sq_over_d: np.ndarray | None = None            # |x|^2 / d of the test inputs
    dep: dict = field(default_factory=dict)
    dep_se: dict = field(default_factory=dict)
    plain_z: dict = field(default_factory=dict)
    slope: list = field(default_factory=list)
    slope_se: list = field(default_factory=list)


def _log_slope(widths, d: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted least squares of ``log |D|`` on ``log n``, ``Var log |D| ~ (se / D)^2``
    (delta method); needs every ``D`` of one sign."""
    lx = np.log(np.asarray(widths, float))
    y = np.log(np.abs(d))
    w = (d / se) ** 2
    xm = np.sum(w * lx) / np.sum(w)
    sxx = np.sum(w * (lx - xm) ** 2)
    slope = np.sum(w * (lx - xm) * y) / sxx
    return float(slope), float(math.sqrt(1.0 / sxx))


def target_dependence(arch, widths, seeds: int, heads: int = 8, n_test: int = 2, d: int = 2,
                      seed: int = 0) -> TargetDependence:
    """``seeds`` ``BayesianRND`` models per width (the paper's target), no
    training needed: the statistic is about ``vartheta_0``. Test inputs on the
    sphere of radius ``sqrt(d)``."""
    rng = np.random.default_rng(seed)
    x = sphere_inputs(rng, n_test, d)
    k = arch.kernel(x)
    kappa, theta = np.diag(k.nngp), np.diag(k.ntk)
    norm = kappa * (theta - kappa)
    out = TargetDependence(tuple(widths), heads, seeds, x_sq_over_d=np.sum(x**2, axis=1) / d)
    for w in widths:
        a, b, c = [], [], []
        for s in range(seeds):
            m = rnd.BayesianRND(arch, width=w, heads=heads, seed=child_seed(seed, w, s))
            u0 = m.g0.apply(x)
            g_tilde = m.target(x)
            a.append(np.mean(u0**2, axis=1))
            b.append(hidden_ntk_diag(m.g0, x))
            c.append(np.mean(u0 * g_tilde, axis=1))
        a, b, c = np.array(a), np.array(b), np.array(c)
        prod = (a - a.mean(0)) * (b - b.mean(0))
        out.dep[w] = prod.sum(0) / (seeds - 1) / norm
        out.dep_se[w] = prod.std(0, ddof=1) / math.sqrt(seeds) / norm
        out.plain_z[w] = c.mean(0) / (c.std(0, ddof=1) / math.sqrt(seeds))
    for i in range(n_test):
        d_i = np.array([out.dep[w][i] for w in widths])
        se_i = np.array([out.dep_se[w][i] for w in widths])
        if len(widths) > 1 and (np.all(d_i > 0) or np.all(d_i < 0)):
            s_, se_ = _log_slope(widths, d_i, se_i)
        else:
            s_, se_ = math.nan, math.nan
        out.slope.append(s_)
        out.slope_se.append(se_)
    return out


# --------------------------------------------------------------------------- #
# Prop 5.7 at finite width: g~ is a scale mixture of Gaussians
# --------------------------------------------------------------------------- #
def kurtosis_constant(act: str, sigma_w: float, sigma_b: float, x_sq_over_d: float, dps: int | None = None):
    """``k_1`` with excess kurtosis ``k_1 / n`` of ``g~(x)`` exactly at every width
    ``n`` of one hidden layer: given ``vartheta_0``, ``g~_m(x) ~ N(0, s^2)`` with
    ``s^2 = sigma_w^2 q / n sum_j V_mj^2 phi'(h_j)^2``, so ``E g~^4 - 3 (E g~^2)^2
    = 3 Var s^2`` and ``k_1 = 3 (3 M_04 - M_02^2) / M_02^2``, ``M_0b = E phi'(h)^b``,
    ``h ~ N(0, q)`` (derived in :func:`ntk_equiv.symbolic.paper.prove_5_7_law`).
    Float64: 200-node Gauss-Hermite; ``dps``: mpmath ``quad`` in a context of its own."""
    q = sigma_w**2 * x_sq_over_d + sigma_b**2
    if dps is None:
        _, dphi = _ACTS[act][0]
        z, w = np.polynomial.hermite_e.hermegauss(200)
        r = dphi(math.sqrt(q) * z)
        w = w / math.sqrt(2 * math.pi)
        m2, m4 = float(np.sum(w * r**2)), float(np.sum(w * r**4))
        return 3 * (3 * m4 - m2**2) / m2**2
    ctx = mp_context(dps)  # our own context: mpmath.mp is never touched
    _, dphi = (f(ctx) for f in _ACTS[act][1])
    qm = ctx.mpf(sigma_w) ** 2 * ctx.mpf(x_sq_over_d) + ctx.mpf(sigma_b) ** 2

    def E(b):
        return ctx.quad(lambda t: ctx.exp(-t * t / (2 * qm)) / ctx.sqrt(2 * ctx.pi * qm) * dphi(t) ** b,
                        [-ctx.inf, 0, ctx.inf])
    m2, m4 = E(2), E(4)
    return 3 * (3 * m4 - m2**2) / m2**2


def erf_kurtosis_constant(sigma_w: float, sigma_b: float, x_sq_over_d: float, dps: int):
    """``k_1`` for erf in closed form: ``erf'(h) = (2/sqrt(pi)) exp(-h^2)``, so
    ``M_02 = (4/pi) / sqrt(1 + 4 q)`` and ``M_04 = (16/pi^2) / sqrt(1 + 8 q)``."""
    ctx = mp_context(dps)
    q = ctx.mpf(sigma_w) ** 2 * ctx.mpf(x_sq_over_d) + ctx.mpf(sigma_b) ** 2
    m2, m4 = 4 / ctx.pi / ctx.sqrt(1 + 4 * q), 16 / ctx.pi**2 / ctx.sqrt(1 + 8 * q)
    return 3 * (3 * m4 - m2**2) / m2**2


@dataclass
class TargetKurtosis:
    """Per width ``n``: the excess kurtosis of ``g~(x)`` over draws, ``kurt[n]``,
    with its delta-method standard error ``kurt_se[n]``; ``k1`` the exact
    ``n x`` excess kurtosis (:func:`kurtosis_constant`); ``anchor`` = max
    |batched - library| of one network's ``g~`` (``Network.jvp``)."""

    widths: tuple
    draws: int
    k1: float
    kurt: dict = field(default_factory=dict)
    kurt_se: dict = field(default_factory=dict)
    anchor: float = math.nan


def _excess_kurtosis(g2: np.ndarray, g4: np.ndarray) -> tuple[float, float]:
    """``E g^4 / (E g^2)^2 - 3`` from per-draw replicates of ``g^2``, ``g^4``, with the
    delta-method standard error."""
    m2, m4 = g2.mean(), g4.mean()
    grad = np.array([-2 * m4 / m2**3, 1 / m2**2])
    cov = np.cov(np.vstack([g2, g4])) / len(g2)
    return float(m4 / m2**2 - 3), float(math.sqrt(grad @ cov @ grad))


def target_kurtosis(act: str, sigma_w: float, sigma_b: float, widths, draws: int, heads: int = 4, d: int = 2,
                    seed: int = 0) -> TargetKurtosis:
    """The paper's target ``g~ = J^hid(x; vartheta_0) psi*`` of a one-hidden-layer
    network (one tangent ``psi*`` for all heads, zero on the readout), ``draws``
    draws of ``(vartheta_0, psi*)`` per width, batched:
    ``g~_m(x) = sigma_w/sqrt(n) sum_j V_mj phi'(h_j(x)) (sigma_w/sqrt(d) psi_Wj . x
    + sigma_b psi_bj)``; per draw the head-averages of ``g~^2`` and ``g~^4`` at one
    test input on the unit sphere. An anchor compares the formula with the
    library's ``Network.jvp`` for one network."""
    from ..architecture import mlp

    _, dphi = _ACTS[act][0]
    x = sphere_inputs(np.random.default_rng(seed), 1, d)[0]
    out = TargetKurtosis(tuple(widths), draws, kurtosis_constant(act, sigma_w, sigma_b, float(x @ x) / d))

    def g_tilde(W, b, V, pw, pb):
        h = sigma_w / math.sqrt(d) * W @ x + sigma_b * b                    # (S, n)
        lift = sigma_w / math.sqrt(d) * pw @ x + sigma_b * pb               # (S, n)
        return sigma_w / math.sqrt(W.shape[1]) * np.einsum("skn,sn->sk", V, dphi(h) * lift)

    for n in widths:
        g = np.random.default_rng(child_seed(seed, n))
        W, b, V = g.standard_normal((draws, n, d)), g.standard_normal((draws, n)), g.standard_normal((draws, heads, n))
        pw, pb = g.standard_normal((draws, n, d)), g.standard_normal((draws, n))
        gt = g_tilde(W, b, V, pw, pb)
        out.kurt[n], out.kurt_se[n] = _excess_kurtosis(np.mean(gt**2, axis=1), np.mean(gt**4, axis=1))
    net = mlp(1, act, sigma_w, sigma_b).init(widths[0], out_dim=heads, seed=child_seed(seed, 0), in_dim=d)
    (W, b), _, (V, c) = net.params0
    g = np.random.default_rng(child_seed(seed, 1))
    pw, pb = g.standard_normal(W.shape), g.standard_normal(b.shape)
    lib = net.jvp(x[None], [[pw, pb], [], [np.zeros_like(V), np.zeros_like(c)]])[0]
    out.anchor = float(np.max(np.abs(g_tilde(W[None], b[None], V[None], pw[None], pb[None])[0] - lib)))
    return out
