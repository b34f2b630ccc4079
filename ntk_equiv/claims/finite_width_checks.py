"""Claim C10: the order-1/n fluctuations of an MLP's empirical kernels
(:func:`ntk_equiv.finite_width`), at S, H and E (P: tests/test_fluctuations_properties.py).

* S: one hidden layer, exact at every width: ``Theta_hat = sigma_b^2 + (1/n)
  sum_k X_k`` with i.i.d. ``X_k = sigma_w^2 (A_k + K1 w_k^2 B_k)``, so
  ``n Var = Var(X)``; sympy expands ``Var(X)`` with ``w ~ N(0, 1)`` (sympy.stats)
  and compares it with docs/theory.md's formula and with the library's recursion
  run on symbolic moments (diagonal and off-diagonal entries); ReLU at
  criticality gives exactly 3 by sympy's integrals.
* H: the depth recursion at ``dps`` (polar quadrature, Stein derivatives)
  against an independent evaluation: tanh-sinh quadrature of the 1-D moments
  and numerical derivatives of the closed-form dual maps (erf, depth 3).
* E: Monte Carlo of real networks, the pooled ratio of measured to predicted
  ``n Var`` with its standard error; the law passes through
  ``controls.law_covariance`` (fails under cov0.7 / cov1.3).
"""
from __future__ import annotations

import numpy as np
import sympy
from scipy.stats import norm

from .. import fluctuations
from ..activations import activation
from ..architecture import mlp
from ..precision import backend, mp_context
from . import controls
from .registry import Config, check, measured, proven

# --------------------------------------------------------------------------- #
# S
# --------------------------------------------------------------------------- #
class _SymbolicMoments:
    """Moments as sympy symbols ``E[f(u) g(v)]`` named by their monomials."""

    def expect(self, f, g, k11, k12, k22, det):
        def name(s):
            a, b, p = s
            return "".join(["phi" * a, "dphi" * b, "x" * p]) or "1"
        return np.array([sympy.Symbol(f"E[{name(f)}(u){name(g)}(v)]")] * len(k11), dtype=object)


def _one_layer_formula(ea, eb, eaa, eab, ebb, k1, sw):
    # docs/theory.md: sigma_w^4 [Var(A) + K1^2 (3 E B^2 - (E B)^2) + 2 K1 (E AB - E A E B)]
    return sw**4 * (eaa - ea**2 + k1**2 * (3 * ebb - eb**2) + 2 * k1 * (eab - ea * eb))


@check("C10", "S", budget=(5, 5))
def c10_symbolic(config: Config):
    from sympy.stats import E as expect, Normal

    sw, k1, ea, eb, eaa, eab, ebb = sympy.symbols("sigma_w K1 EA EB EAA EAB EBB", positive=True)
    w = Normal("w", 0, 1)
    # Var(X) for X = sigma_w^2 (A + K1 w^2 B), w independent of (A, B)
    ew2, ew4 = expect(w**2), expect(w**4)
    var_x = sw**4 * (eaa + 2 * k1 * ew2 * eab + k1**2 * ew4 * ebb - (ea + k1 * ew2 * eb) ** 2)
    formula = _one_layer_formula(ea, eb, eaa, eab, ebb, k1, sw)
    ok_formula = sympy.expand(var_x - formula) == 0
    # the library's recursion on symbolic moments, one hidden layer (previous covariance 0)
    mom = _SymbolicMoments()
    zero = np.array([[[sympy.S.Zero] * 2] * 2], dtype=object)
    kk = np.array([k1], dtype=object)
    c, tau = fluctuations._diag_step(mom, kk, kk, zero, np.array([sympy.S.Zero], dtype=object), sw)
    sym = {s.name: s for s in c[0, 1, 1].free_symbols | tau[0].free_symbols}

    def s(name):
        return sym.get(name, sympy.Symbol(name))
    diag = _one_layer_formula(s("E[phiphi(u)1(v)]"), s("E[dphidphi(u)1(v)]"), s("E[phiphiphiphi(u)1(v)]"),
                              s("E[phiphidphidphi(u)1(v)]"), s("E[dphidphidphidphi(u)1(v)]"), k1, sw)
    ok_diag = sympy.expand(c[0, 1, 1] + 2 * tau[0] - diag) == 0
    k11, k12, k22 = sympy.symbols("k11 k12 k22", positive=True)
    kp = np.array([[k11, k12, k22]], dtype=object)
    cp, taup = fluctuations._pair_step(mom, kp, kp, np.full((1, 6, 6), sympy.S.Zero, dtype=object),
                                       np.full((1, 2), sympy.S.Zero, dtype=object), sw,
                                       np.array([k11 * k22 - k12**2], dtype=object))
    off = _one_layer_formula(s("E[phi(u)phi(v)]"), s("E[dphi(u)dphi(v)]"), s("E[phiphi(u)phiphi(v)]"),
                             s("E[phidphi(u)phidphi(v)]"), s("E[dphidphi(u)dphidphi(v)]"), k12, sw)
    sym.update({t.name: t for t in (cp[0, 4, 4] + taup[0, 0] + taup[0, 1]).free_symbols})
    off = off.subs({sympy.Symbol(n): sym[n] for n in sym})
    ok_off = sympy.expand(cp[0, 4, 4] + taup[0, 0] + taup[0, 1] - off) == 0
    # ReLU at criticality (sigma_w^2 = 2, K1 = 1): n Var / Theta^2 = 3 exactly
    u, k = sympy.symbols("u k", positive=True)
    dens = sympy.exp(-u**2 / (2 * k)) / sympy.sqrt(2 * sympy.pi * k)

    def half(h):  # E[h(u) 1(u > 0)]
        return sympy.integrate(h * dens, (u, 0, sympy.oo))
    r = _one_layer_formula(half(u**2), half(1), half(u**4), half(u**2), half(1), k, sympy.sqrt(2))
    theta = 2 * (half(u**2) + k * half(1))
    ok_relu = sympy.simplify(r / theta**2 - 3) == 0
    record = {"Var(X) by sympy.stats == formula": ok_formula, "recursion (diagonal) == formula": ok_diag,
              "recursion (off-diagonal) == formula": ok_off, "ReLU at criticality == 3": ok_relu}
    return proven(all(record.values()), f"one hidden layer exactly: {record}")


# --------------------------------------------------------------------------- #
# H
# --------------------------------------------------------------------------- #
def _independent_diag(sw: float, sb: float, depth: int, k1, ctx):
    """``(n Var[Theta_hat(x, x)], n Var[K_hat(x, x)])`` for a ReLU MLP by an
    independent route: the 1-D moments by tanh-sinh (ctx.quad, split at the kink),
    the dual maps in closed form (``E[relu^2] = k/2``, ``E[step^2] = 1/2``) and
    their derivatives by ctx.diff."""
    sw, sb = ctx.mpf(sw), ctx.mpf(sb)

    def mom(h, kk):
        r = ctx.sqrt(kk)
        return ctx.quad(lambda z: h(r * z) * ctx.npdf(z), [0, ctx.inf])  # relu and step vanish below 0

    def f(kk):
        return kk / 2

    def fd(kk):
        return ctx.mpf(1) / 2 + 0 * kk

    kk, th = k1, k1
    cov = ctx.matrix(2, 2)
    tau = ctx.mpf(0)
    for _ in range(depth):
        ea, eb = f(kk), fd(kk)
        aa = mom(lambda t: t**4, kk) - ea**2
        ab = mom(lambda t: t**2, kk) - ea * eb
        bb = mom(lambda t: 1, kk) - eb**2
        q = ctx.matrix([[aa, aa + th * ab], [aa + th * ab, aa + 2 * th * ab + th * th * bb]])
        g, gd = ctx.diff(f, kk), ctx.diff(fd, kk)
        jac = ctx.matrix([[sw**2 * g, 0], [sw**2 * (g + th * gd), sw**2 * eb]])
        cov = sw**4 * q + jac * cov * jac.T
        tau = sw**4 * ((bb + eb**2) * th * th + eb * eb * tau)
        kk, th = sw**2 * ea + sb**2, sw**2 * ea + sb**2 + sw**2 * eb * th
    return cov[1, 1] + 2 * tau, cov[0, 0]


def _relu_dual_gradients(ctx, k11, k12, k22):
    """Gradients of the closed-form arc-cosine duals ``E[relu relu]`` and
    ``E[step step]`` with respect to ``(k11, k12, k22)``, by ctx.diff."""
    def duals(p, c, q):
        sdet = ctx.sqrt(p * q - c * c)
        theta = ctx.atan2(sdet, c)
        return (sdet + (ctx.pi - theta) * c) / (2 * ctx.pi), (ctx.pi - theta) / (2 * ctx.pi)
    point = (k11, k12, k22)
    out = []
    for which in (0, 1):
        out.append([ctx.diff(lambda *a: duals(*a)[which], point, tuple(int(i == j) for j in range(3)))
                    for i in range(3)])
    return out


@check("C10", "H", budget=(20, 20))
def c10_high_precision(config: Config):
    dps = min(config.dps, 20)  # the polar rule's cost grows like dps^2: 20 digits already check 15
    sw, sb, depth = 1.3, 0.2, 3
    x = np.array([[1.0, -0.5, 0.25]])
    fw = fluctuations.finite_width(mlp(depth, "relu", sigma_w=sw, sigma_b=sb), x, dps=dps)
    ctx = mp_context(dps)
    k1 = ctx.mpf(sw) ** 2 * ctx.fsum(ctx.mpf(v) ** 2 for v in x[0]) / 3 + ctx.mpf(sb) ** 2
    ntk_ref, nngp_ref = _independent_diag(sw, sb, depth, k1, ctx)
    res_diag = max(abs(fw.ntk_var[0, 0] - ntk_ref) / ntk_ref, abs(fw.nngp_var[0, 0] - nngp_ref) / nngp_ref)
    # the pair formulas (Price, integration by parts, Stein) with polar-rule moments vs ctx.diff of closed forms
    bk = backend(dps)
    mom = fluctuations._Moments(activation("relu"), bk)
    k11, k12, k22 = (np.array([bk.scalar(v)], dtype=object) for v in ("1.2", "0.5", "0.9"))
    det = k11 * k22 - k12 * k12
    cache: dict = {}

    def e(mono):
        if mono not in cache:
            cache[mono] = mom.expect(mono[0], mono[1], k11, k12, k22, det)
        return cache[mono]
    gf, gd = fluctuations.pair_gradients(e, k11, k12, k22, det)
    ref_f, ref_d = _relu_dual_gradients(bk.ctx, k11[0], k12[0], k22[0])
    res_pair = max(max(abs(gf[0, 1, i] - ref_f[i]) for i in range(3)), max(abs(gd[0, 1, i] - ref_d[i]) for i in range(3)))
    res = max(res_diag, res_pair)
    tol = 10.0 ** -(dps - 5)
    return measured(float(res), tol, f"ReLU MLP depth {depth} at dps={dps}: the recursion (polar-rule moments, Stein "
                    "derivatives) vs tanh-sinh moments and closed-form duals differentiated by ctx.diff, relative; "
                    "and the pair gradients of E[relu relu], E[step step] vs ctx.diff of the arc-cosine kernels; "
                    "<= 10^-(dps-5)",
                    statistic=f"n Var[Theta_hat]/Theta^2 = {float(fw.ntk_var[0, 0] / fw.ntk[0, 0] ** 2):.6g}; "
                    f"diag {float(res_diag):.1e}, pair {float(res_pair):.1e}", dps=dps)


# --------------------------------------------------------------------------- #
# E
# --------------------------------------------------------------------------- #
#: two-sided false-alarm probability of each statistic of the E check
FALSE_ALARM = 1e-6


def _pooled(arch, x, width: int, samples: int, seed: int):
    """Sample of ``samples`` networks: per-sample squared deviations of every
    distinct entry of Theta_hat and K_hat, pooled (summed over entries), so that
    the standard error of the pooled variance comes from the samples themselves."""
    iu = np.triu_indices(len(x))
    ntks, nngps = [], []
    for s in range(samples):
        net = arch.init(width=width, seed=seed + s)
        ntks.append(net.empirical_ntk(x)[iu])
        a, readout = fluctuations._readout_input(arch, net.params, x)
        nngps.append((readout.sigma_w**2 / a.shape[1] * (a @ a.T) + readout.sigma_b**2)[iu])
    out = {}
    for name, vals in (("ntk", np.array(ntks)), ("nngp", np.array(nngps))):
        dev2 = ((vals - vals.mean(axis=0)) ** 2).sum(axis=1) * samples / (samples - 1)
        out[name] = (width * dev2.mean(), width * dev2.std(ddof=1) / np.sqrt(samples))
    return out


@check("C10", "E", budget=(10, 200))
@controls.declares("cov0.7", "cov1.3")
def c10_empirical(config: Config):
    x = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.3, -1.2]]) * np.sqrt(3)
    z = float(norm.isf(FALSE_ALARM / 2 / 4))  # four statistics (ntk, nngp at two widths)
    iu = np.triu_indices(len(x))
    rows, worst, power = [], 0.0, {}
    # one hidden layer: exact at every width, so every width must agree (the remainder is 0)
    arch = mlp(1, "relu", sigma_w=1.3, sigma_b=0.2)
    fw = fluctuations.finite_width(arch, x)
    widths, samples = ((16, 64, 256, 1024), 4000) if config.full else ((16, 64), 2000)
    for width in widths:
        got = _pooled(arch, x, width, samples, seed=config.seed * 7919 + width)
        for name in ("ntk", "nngp"):
            pred = controls.law_covariance(getattr(fw, name + "_var")[iu].sum())
            mean, se = got[name]
            dev = abs(mean - pred) / se
            worst = max(worst, dev / z)
            rows.append({"depth": 1, "width": width, "kernel": name, "measured n Var": float(mean), "se": float(se),
                         "predicted n Var": float(pred)})
            for alt, c in (("cov0.7", 0.7), ("cov1.3", 1.3)):
                shift = abs(mean * (1 - 1 / c)) / se  # the alternative's prediction c * pred, in standard errors
                p = float(norm.sf(z - shift) + norm.cdf(-z - shift))
                power[alt] = max(power.get(alt, 0.0), p)
    # depth 2: leading order; the O(1/n^2) remainder (b/n in n Var) shrinks with the width
    if config.full:
        arch2 = mlp(2, "relu", sigma_w=np.sqrt(2), sigma_b=0.0)
        fw2 = fluctuations.finite_width(arch2, x)
        pred2 = float(fw2.ntk_var[iu].sum())
        for width in (64, 256, 1024):
            mean, se = _pooled(arch2, x, width, 2000, seed=config.seed * 7919 + 3 * width)["ntk"]
            rows.append({"depth": 2, "width": width, "kernel": "ntk", "measured n Var": float(mean),
                         "se": float(se), "predicted n Var": pred2, "remainder": float(mean - pred2)})
    return measured(worst, 1.0, f"Monte Carlo of real ReLU networks (one hidden layer, exact at every width): pooled "
                    f"n Var of the distinct entries of Theta_hat and K_hat within z = {z:.2f} standard errors "
                    f"(false alarm {FALSE_ALARM:g}); residual = max |measured - predicted| / (z se)",
                    statistic="; ".join(f"n={r['width']} {r['kernel']}: {r['measured n Var']:.4g} ± {r['se']:.2g} vs "
                                        f"{r['predicted n Var']:.4g}" for r in rows if r["depth"] == 1),
                    rows=rows, power=power, power_method="analytic: normal approximation of the pooled sample "
                    "variance with its measured standard error")
