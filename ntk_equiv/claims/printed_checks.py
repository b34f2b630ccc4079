"""Checks of the paper's statements Prop 5.1-5.3, Cor 5.4, Thm 5.6 and Prop 5.7
(:mod:`.paper`), each ``check(config, form) -> Result`` with ``form`` in
``("printed", "corrected")``; the printed choices are read from the statement's
form (:func:`.paper.form_params`), so a check of the printed form checks what
is printed.

Refuted forms fail by a margin, not by a hair: Prop 5.1's printed sign leaves
an O(1) residual where the corrected one leaves round-off, and Cor 5.4's
printed factor is excluded by a confidence interval with false-alarm
probability 1e-6 that contains the corrected factor.

Prop 5.5, Thm 5.6 E, Thm 5.8 and Cor 5.9 have their checks in :mod:`.statement_checks`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import dynamics, printed, rnd
from .. import symbolic as S
from ..layers import Dense, Erf, Relu, mlp, residual, serial
from ..experiments import rnd_ratio
from ..precision import mp_context
from ..symbolic import paper as SP
from .dynamics_checks import (
    _mp, ensemble_mc, independent_train_operator, mp_max_abs, sphere_inputs, z_threshold,
)
from ..errors import ParameterError
from ..experiments import target_dependence as td
from . import controls
from .paper import form_params
from .registry import Config, Result, measured, proven
from .verdict import LIMIT, limit_finding
from .rnd_checks import EPS, _seed, spread_inputs

# --------------------------------------------------------------------------- #
# S level: sympy, exact
# --------------------------------------------------------------------------- #


def _algebras(config: Config) -> list:
    return S.algebras(full=config.full)


def prop_5_1_symbolic(config: Config, form: str) -> Result:
    sign = form_params("5.1", form)["sign"]
    proofs = [SP.prove_5_1(alg, strict=False, sign=sign, flow=(i == 0)) for i, alg in enumerate(_algebras(config))]
    return proven(S.combine("5.1", proofs[0].statement, proofs),
                  "the statement equals C3's gradient-flow limit and interpolates Y (general N and explicit N = 2), "
                  "and the N = 1 flow solved by dsolve tends to it; every difference must be exactly 0")


def _terms_proof(fn, number: str, config: Config, form: str, what: str) -> Result:
    terms = form_params(number, form)["cov_terms"]
    proofs = [fn(alg, strict=False, terms=terms) for alg in _algebras(config)]
    return proven(S.combine(number, proofs[0].statement, proofs), what)


def prop_5_2_symbolic(config: Config, form: str) -> Result:
    return _terms_proof(SP.prove_5_2, "5.2", config, form,
                        "law of f_0 + Theta_xX Theta_XX^{-1} (Y - f_0(X)) with f_0 ~ GP(0, kappa), computed from the "
                        "construction, minus the printed mean and covariance terms is exactly 0")


def prop_5_3_symbolic(config: Config, form: str) -> Result:
    return _terms_proof(SP.prove_5_3, "5.3", config, form,
                        "law of the converged RND error, computed from the construction, minus the printed covariance "
                        "with kappa_eps = kappa_u + kappa_g is exactly 0")


def cor_5_4_symbolic(config: Config, form: str) -> Result:
    factor = form_params("5.4", form)["factor"]
    proofs = [S.prove_c6a(alg, strict=False, factor=factor) for alg in _algebras(config)]
    return proven(S.combine("5.4", f"Cov eps = {factor} Sigma, E eps^2(x) = {factor} V f(x)", proofs),
                  "Cov of the RND error computed from the construction (any A, so t = inf too) minus factor x the "
                  "ensemble covariance P kappa P^* must be exactly 0")


def thm_5_6_symbolic(config: Config, form: str) -> Result:
    half = form_params("5.6", form)["half"]
    heads = (1, 2, 3, 4, 5, 6, 7, 8) if config.full else (1, 2, 3, 4, 5)
    return proven(SP.prove_5_6(strict=False, half=half, heads=heads),
                  "(1/2) eps^2 and the sample variance reduce to Sigma/K times a chi^2_K quadratic form "
                  "(centring matrix symmetric, idempotent, trace K, C 1 = 0): every difference exactly 0")


# --------------------------------------------------------------------------- #
# H level: mpmath, dps digits, concrete instances
# --------------------------------------------------------------------------- #
def _obj(a, ctx) -> np.ndarray:
    """An mpmath matrix as an object ndarray of ``ctx`` numbers (``@`` and ``.T`` work on it)."""
    m = _mp(a, ctx)
    return np.array(m.tolist(), dtype=object)


def _rel_obj(a: np.ndarray, b: np.ndarray, ctx) -> float:
    d = mp_max_abs((a - b).tolist(), ctx)
    return float(d / max(mp_max_abs(b.tolist(), ctx), ctx.mpf(10) ** -300))


def _le(value: float, bound: float) -> str:
    """``"<="`` or ``">"``: how a shown statistic compares with its bound."""
    return "<=" if value <= bound else ">"


def _span(values) -> str:
    """``min..max`` of ``values`` to 6 digits (one number when they agree)."""
    lo, hi = f"{min(values):.6g}", f"{max(values):.6g}"
    return lo if lo == hi else f"{lo}..{hi}"


def _h(resid: float, dps: int, what: str, shown: str = "", **details) -> Result:
    """Pass iff the relative difference is below ``1e-(dps - 5)``; the row shows
    it against that tolerance (after ``shown``, the per-part differences)."""
    return measured(resid, 10.0 ** -(dps - 5),
                    f"{what}; relative max-abs difference at {dps} digits (+15 guard) must be below 1e-{dps - 5}",
                    statistic=(f"{shown}; " if shown else "") + f"rel diff {resid:.2g} vs 1e-{dps - 5}",
                    **details)


def _h_instance(config: Config, n_train: int = 5, n_test: int = 3):
    rng = np.random.default_rng(config.seed)
    X, x = sphere_inputs(rng, n_train, 3), sphere_inputs(rng, n_test, 3)
    return rng, X, x


def prop_5_1_high_precision(config: Config, form: str) -> Result:
    """Concrete instance: an erf MLP's analytic NTK at ``dps`` digits, random
    ``f_0`` and ``Y``. The statement against gradient flow run to a time ``t``
    where ``exp(-eta t lambda_min) < 10^-(dps + 10)`` (mpmath ``expm``, no
    eigendecomposition), and against ``Y`` at the training inputs."""
    sign = form_params("5.1", form)["sign"]
    dps = config.dps
    rng, X, x = _h_instance(config)
    N, n = len(X), len(x)
    arch = mlp(2, "erf", 1.3, 0.2)
    f0x, f0X, Y = rng.standard_normal((n, 1)), rng.standard_normal((N, 1)), rng.standard_normal((N, 1))
    k = arch.kernel(np.vstack([x, X]), dps=dps)
    ctx = mp_context(dps)
    T = _mp(k.ntk, ctx)
    TXX, TxX = T[n:, n:], T[:n, n:]
    lam_min = min(ctx.eigsy(TXX)[0])
    t = (dps + 10) * ctx.log(10) / lam_min
    A_t = independent_train_operator(TXX, t=t, lr=1, ctx=ctx)
    flow = _obj(_mp(f0x, ctx) + TxX * A_t * (_mp(Y, ctx) - _mp(f0X, ctx)), ctx)
    inv = _obj(ctx.inverse(TXX), ctx)
    stated_x = printed.converged_network(_obj(f0x, ctx), _obj(f0X, ctx), _obj(TxX, ctx), inv, _obj(Y, ctx), sign)
    stated_X = printed.converged_network(_obj(f0X, ctx), _obj(f0X, ctx), _obj(TXX, ctx), inv, _obj(Y, ctx), sign)
    r_flow, r_fit = _rel_obj(stated_x, flow, ctx), _rel_obj(stated_X, _obj(Y, ctx), ctx)
    return _h(max(r_flow, r_fit), dps, f"sign {sign:+d}: statement vs gradient flow at t = {float(t):.3g} "
              f"(exp(-t lambda_min) = 1e-{dps + 10}) on test inputs, and vs Y on the training inputs",
              shown=f"vs flow {r_flow:.2g}, vs Y {r_fit:.2g}", vs_flow=r_flow, vs_labels=r_fit, t=float(t), lambda_min=float(lam_min))


def prop_5_2_high_precision(config: Config, form: str) -> Result:
    """``dynamics.ensemble(t=inf)`` against the printed terms with an mpmath inverse."""
    terms = form_params("5.2", form)["cov_terms"]
    dps = config.dps
    rng, X, x = _h_instance(config)
    n = len(x)
    Y = rng.standard_normal((len(X), 1))
    arch = mlp(2, "relu", 1.4, 0.1)
    law = dynamics.ensemble(arch, X, Y, x, t=None, dps=dps)
    k = arch.kernel(np.vstack([x, X]), dps=dps)
    ctx = mp_context(dps)
    K, T = _mp(k.nngp, ctx), _mp(k.ntk, ctx)
    kap = {"xx": _obj(K[:n, :n], ctx), "xX": _obj(K[:n, n:], ctx), "XX": _obj(K[n:, n:], ctx)}
    th = {"xX": _obj(T[:n, n:], ctx), "XX": _obj(T[n:, n:], ctx)}
    inv = _obj(ctx.inverse(T[n:, n:]), ctx)
    r_cov = _rel_obj(_obj(law.cov, ctx), printed.converged_cov(terms, kap, th, inv), ctx)
    r_mean = _rel_obj(_obj(law.mean, ctx), printed.converged_mean(th["xX"], inv, _obj(Y, ctx)), ctx)
    return _h(max(r_cov, r_mean), dps, "ensemble(t = inf) mean and covariance vs the printed formula",
              shown=f"mean {r_mean:.2g}, cov {r_cov:.2g}", cov=r_cov, mean=r_mean)


def prop_5_3_high_precision(config: Config, form: str) -> Result:
    """``rnd.rnd_covariance(t=inf)`` for a ReLU predictor and an erf + residual
    target against the printed terms with ``kappa_eps = kappa_u + kappa_g``."""
    terms = form_params("5.3", form)["cov_terms"]
    dps = config.dps
    _, X, x = _h_instance(config, 4, 3)
    n = len(x)
    pred = mlp(2, "relu", 1.4, 0.2)  # u(.; vartheta): kappa_u, Theta
    targ = serial(Dense(1.1, 0.4), Erf(), residual([Dense(1.0, 0.1), Relu(), Dense(0.8, 0.0)], 0.7), Dense(1.2, 0.1))
    cov = rnd.rnd_covariance(pred, X, x, target=targ, t=None, dps=dps)
    z = np.vstack([x, X])
    ku, kg = pred.kernel(z, dps=dps), targ.kernel(z, dps=dps)
    ctx = mp_context(dps)
    K, T = _mp(ku.nngp, ctx) + _mp(kg.nngp, ctx), _mp(ku.ntk, ctx)
    keps = {"xx": _obj(K[:n, :n], ctx), "xX": _obj(K[:n, n:], ctx), "XX": _obj(K[n:, n:], ctx)}
    th = {"xX": _obj(T[:n, n:], ctx), "XX": _obj(T[n:, n:], ctx)}
    r = _rel_obj(_obj(cov, ctx), printed.converged_cov(terms, keps, th, _obj(ctx.inverse(T[n:, n:]), ctx)), ctx)
    return _h(r, dps, "rnd_covariance(t = inf) vs the printed covariance of kappa_u + kappa_g", cov=r)


def rnd_and_ensemble_variances(config: Config):
    """At ``t = inf`` and ``dps`` digits, per test input: ``Var eps_i(x)`` from the
    library (``rnd_covariance``) and from the explicit ``P (kappa + kappa) P^T``
    (mpmath ``inverse``, no :mod:`ntk_equiv.formulas`), and the ensemble's
    ``V f(x)`` (``ensemble``); predictor, target and members of one erf MLP.
    Returns ``(e_lib, e_exp, vf, ctx)``: object arrays of ``ctx`` numbers."""
    from .rnd_checks import explicit_projector_cov

    dps = config.dps
    _, X, x = _h_instance(config, 4, 3)
    arch = mlp(2, "erf", 1.3, 0.3)
    lib = rnd.rnd_covariance(arch, X, x, t=None, dps=dps)
    ens = dynamics.ensemble(arch, X, np.zeros(len(X)), x, t=None, dps=dps).cov
    explicit = explicit_projector_cov(arch, arch, X, x, None, 1.0, 0.0, dps)
    ctx = mp_context(dps)
    e_lib = _obj(ctx.matrix([_mp(lib, ctx)[i, i] for i in range(len(x))]), ctx)
    e_exp = _obj(ctx.matrix([explicit[i, i] for i in range(len(x))]), ctx)
    vf = _obj(ctx.matrix([_mp(ens, ctx)[i, i] for i in range(len(x))]), ctx)
    return e_lib, e_exp, vf, ctx


def cor_5_4_high_precision(config: Config, form: str) -> Result:
    """``E eps^2(x) = Var eps_i(x)`` (library and explicit) against ``factor x V f(x)``."""
    factor = form_params("5.4", form)["factor"]
    e_lib, e_exp, vf, ctx = rnd_and_ensemble_variances(config)
    r_lib, r_exp = _rel_obj(e_lib, factor * vf, ctx), _rel_obj(e_exp, factor * vf, ctx)
    ratio = [float(a / b) for a, b in zip(e_lib.ravel(), vf.ravel())]
    return _h(max(r_lib, r_exp), config.dps, f"E eps^2(x) vs {factor} x V f(x) at t = inf (library and explicit "
              "projector)", shown=f"E eps^2 / V f {_span(ratio)} vs {factor}",
              library=r_lib, explicit=r_exp, ratio=ratio)


def thm_5_6_high_precision(config: Config, form: str) -> Result:
    """The scale of the two chi^2_K laws: ``c eps^2 = c Var(eps_i)/K chi^2_K``
    (``c = 1/2`` as printed) and ``s^2 = V f/K chi^2_K`` (S level) coincide iff
    ``c Var eps_i(x) = V f(x)``; at ``dps`` digits, library and explicit."""
    e_lib, e_exp, vf, ctx = rnd_and_ensemble_variances(config)
    c = ctx.mpf(1) / 2 if form_params("5.6", form)["half"] else ctx.mpf(1)
    r_lib, r_exp = _rel_obj(c * e_lib, vf, ctx), _rel_obj(c * e_exp, vf, ctx)
    scale = [float(c * a / b) for a, b in zip(e_lib.ravel(), vf.ravel())]
    return _h(max(r_lib, r_exp), config.dps, f"scale of the chi^2_K laws: {float(c)} Var eps_i(x) vs V f(x) at t = inf",
              shown=f"{float(c)} Var eps_i / V f {_span(scale)} vs 1", library=r_lib, explicit=r_exp)


# --------------------------------------------------------------------------- #
# E level: real finite-width networks
# --------------------------------------------------------------------------- #
def prop_5_1_empirical(config: Config, form: str) -> Result:
    """A width-``n`` network and its linearisation, trained to convergence by
    gradient descent, against the statement with the network's own empirical
    NTK ``hat Theta`` (Prop 5.1 is exact at every width for the linearised
    network, C3).

    * linearised, on test and training inputs: gradient descent moves the
      parameters in the span of ``J_0(X)^T``, so the trained model is exactly
      ``f_0 + G (f(X) - f_0(X))`` with ``G = hat Theta_zX hat Theta_XX^{-1}``;
      it differs from the corrected statement by ``G (f(X) - Y)``, the
      unconverged train residual propagated to ``z``: tolerance
      ``max_i sum_j |G_ij| max |f(X) - Y|`` plus float64 round-off of a solve,
      ``10 N eps cond(hat Theta_XX)`` times the scale of the numbers;
    * the non-linear network, on the training inputs: the statement at ``X``
      against the trained outputs, trained until ``max |f(X) - Y| <= 1e-10
      max(|Y|, 1)``; tolerance 10 times that plus the same round-off.
    """
    sign = form_params("5.1", form)["sign"]
    rng = np.random.default_rng(config.seed)
    width = 512 if config.full else 64
    X, xt = spread_inputs(rng, 5, 3), sphere_inputs(rng, 3, 3)
    Y = rng.standard_normal((5, 1))
    arch = mlp(2, "relu", 1.4, 0.3)
    net = arch.init(width, out_dim=1, seed=rng, in_dim=3)
    z = np.vstack([xt, X])
    ntk_zX, ntk_XX = net.empirical_ntk(z, X), net.empirical_ntk(X)
    inv = np.linalg.inv(ntk_XX)
    cond = float(np.linalg.cond(ntk_XX))
    lr = 1.0 / float(np.linalg.eigvalsh(ntk_XX)[-1])
    lin, _ = net.linearize().fit_until(X, Y, lr=lr, tol=1e-13, max_steps=200_000)
    stated = printed.converged_network(net.apply(z), net.apply(X), ntk_zX, inv, Y, sign)
    fz = lin.apply(z)
    G = ntk_zX @ inv
    scale = max(1.0, float(np.max(np.abs(fz))), float(np.max(np.abs(Y))))
    roundoff = 10 * len(X) * EPS * cond * scale
    r_lin = float(np.max(np.abs(fz - stated)))
    tol_lin = float(np.max(np.sum(np.abs(G), axis=1)) * np.max(np.abs(lin.apply(X) - Y))) + roundoff
    # the non-linear network at the training inputs (its own NTK moves; only f(X) = Y is claimed there)
    lr_nl = 0.5 / net.lambda_max(X)
    trained, _ = net.fit_until(X, Y, lr=lr_nl, tol=1e-10, max_steps=200_000)
    fX = trained.apply(X)
    r_nl = float(np.max(np.abs(fX - stated[len(xt):])))
    # trained until max|f(X) - Y| <= 1e-10 max(|Y|, 1): a statement the network satisfies
    # is within that of f(X) plus round-off; bound taken 10x the training target
    tol_nl = 1e-9 * max(1.0, float(np.max(np.abs(Y)))) + roundoff
    worst = max(r_lin / tol_lin, r_nl / tol_nl)
    return measured(worst, 1.0,
                    f"sign {sign:+d}, width {width}: trained linearised network vs the statement with its empirical NTK "
                    "(test and training inputs), and trained non-linear network vs the statement at the training "
                    "inputs; residual = worst |difference| / tolerance (unconverged train residual propagated through "
                    "G + 10 N eps cond x scale)",
                    statistic=f"max |diff|/tol {worst:.2g}{_le(worst, 1)}1 (linearised {r_lin / tol_lin:.2g}, non-linear "
                              f"{r_nl / tol_nl:.2g}); cond(empirical Theta_XX) {cond:.3g}",
                    linearised=dict(diff=r_lin, tol=tol_lin), nonlinear=dict(diff=r_nl, tol=tol_nl),
                    cond=cond, width=width)


def prop_5_2_empirical(config: Config, form: str) -> Result:
    """Real trained networks (one hidden layer, so ``Cov f_0 = kappa`` exactly at
    every width) against the printed law at ``t = inf``, by C5's Monte-Carlo
    test (:func:`.dynamics_checks.ensemble_mc`: sample mean and covariance of
    ``R`` networks, Bonferroni z-bound on the Monte-Carlo error plus the measured
    finite-width deviation from the analytic-NTK linearisation). Trained with
    ``lr = 1 / lambda_max`` for ``ceil(ln(1e8) cond(Theta_XX))`` steps: converged
    to ``~1e-8`` of the initial train residual, below every tolerance here."""
    terms = form_params("5.2", form)["cov_terms"]
    arch = mlp(1, "erf", 1.5, 0.3)
    n_test, d = 3, 8

    def law(X, Y, z):
        k = arch.kernel(z)
        th = {"xX": k.ntk[:, n_test:], "XX": k.ntk[n_test:, n_test:]}
        inv = np.linalg.inv(th["XX"])
        # the law on z = [x_test; X]: the printed terms with test block z
        kz = {"xx": k.nngp, "xX": k.nngp[:, n_test:], "XX": k.nngp[n_test:, n_test:]}
        return printed.converged_mean(th["xX"], inv, Y)[:, 0], printed.converged_cov(terms, kz, th, inv)

    # ensemble_mc draws the training inputs first from the seed: the same X, for its condition number
    X = sphere_inputs(np.random.default_rng(config.seed), 4, d)
    w = np.linalg.eigvalsh(arch.kernel(X).ntk)
    k_steps = int(math.ceil(math.log(1e8) * w[-1] / w[0]))
    res = ensemble_mc(arch, width=2048 if config.full else 256, members=1000 if config.full else 200, n_train=4,
                      n_test=n_test, d=d, steps=k_steps, seed=config.seed, law=law, test_only=True)
    return measured(res.ratio, 1.0,
                    f"sample mean and covariance of R trained networks ({k_steps} GD steps, converged) vs the printed "
                    "Theta_TX Theta^-1 Y and covariance terms: error <= Bonferroni z * Monte-Carlo standard error "
                    "(false alarm < 1e-6) + the measured finite-width deviation (Cauchy-Schwarz bound); residual = "
                    "worst error / bound",
                    statistic=f"max |error|/bound {res.ratio:.2f}{_le(res.ratio, 1)}1 (mean {res.mean_ratio:.2f}, cov "
                              f"{res.cov_ratio:.2f}); cond(Theta_XX) {w[-1] / w[0]:.3g}",
                    mean_ratio=res.mean_ratio, cov_ratio=res.cov_ratio,
                    width_bias=res.width_bias, mc_se=res.mc_se, steps=k_steps)


@functools.lru_cache(maxsize=4)  # a pure function of its arguments: the printed and corrected forms share one run
def _cor_5_4_run(width: int, heads: int, models: int, members: int, points: int, seed: int) -> rnd_ratio.RatioEstimate:
    """The experiment of :func:`ntk_equiv.experiments.rnd_ratio.converged_ratio` on a
    one-hidden-layer relu MLP."""
    return rnd_ratio.converged_ratio(mlp(1, "relu", 1.5, 0.5), width, heads, models, members, points, seed=seed)


def cor_5_4_empirical(config: Config, form: str) -> Result:
    factor = form_params("5.4", form)["factor"]
    if config.full:
        est = _cor_5_4_run(1024, 16, 200, 800, 8, config.seed)
    else:
        est = _cor_5_4_run(256, 16, 60, 200, 6, config.seed)
    lo, hi = est.interval()
    return measured(est.statistic(factor) / est.q, 1.0,
                    f"measured E eps^2 / V f = {est.ratio:.3f}, confidence interval [{lo:.3f}, {hi:.3f}] (Fieller, "
                    f"Student-t with {est.df} df, false alarm 1e-6) must contain the factor {factor}; residual = "
                    f"|a - {factor} b| / (q se) with q = {est.q:.2f}",
                    statistic=f"E eps^2 / V f {est.ratio:.3f}, interval [{lo:.3f}, {hi:.3f}] "
                              f"{'contains' if lo <= factor <= hi else 'excludes'} {factor}; "
                              f"cond(Theta_XX) {est.details['cond']:.3g}",
                    ratio=est.ratio, interval=[lo, hi], factor=factor, a=est.a, se_a=est.se_a, b=est.b,
                    se_b=est.se_b, **est.details)


@functools.lru_cache(maxsize=4)  # pure in its arguments: the printed and corrected forms share one run
def _prop_5_3_run(width: int, heads: int, models: int, seed: int):
    """Converged RND models of a one-hidden-layer relu MLP, trained as in
    :func:`ntk_equiv.experiments.rnd_ratio.converged_ratio` (``lr = 1 /
    lambda_max``, ``ceil(ln(1e8) cond(Theta_XX))`` steps; model ``s`` seeded by
    ``child_seed(seed, width, s)`` as :func:`~ntk_equiv.experiments.rnd_ratio.run`
    does). Returns ``(arch, X, x, eps, lin, cond)``: ``eps`` the trained errors
    ``(models, n, K)`` at ``x``, ``lin`` the same models' errors under the
    analytic-NTK linearisation, ``eps_0(x) - Theta_xX Theta_XX^{-1} eps_0(X)``."""
    from ..experiments.inputs import child_seed

    arch = mlp(1, "relu", 1.5, 0.5)
    rng = np.random.default_rng(seed)
    d = 8
    X = spread_inputs(rng, 4, d)
    x = np.vstack([sphere_inputs(rng, 2, d), 3 * sphere_inputs(rng, 1, d)])
    n = len(x)
    T = arch.kernel(np.vstack([x, X])).ntk
    w = np.linalg.eigvalsh(T[n:, n:])
    steps = int(math.ceil(math.log(1e8) * float(w[-1] / w[0])))
    G = T[:n, n:] @ np.linalg.inv(T[n:, n:])
    eps, lin = [], []
    for s in range(models):
        m = rnd.RND(arch, width=width, heads=heads, seed=child_seed(seed, width, s))
        r0 = m.residual(np.vstack([x, X]))
        lin.append(r0[:n] - G @ r0[n:])
        eps.append(m.fit(X, lr=1.0 / float(w[-1]), steps=steps).residual(x))
    return arch, X, x, np.array(eps), np.array(lin), float(w[-1] / w[0])


def prop_5_3_empirical(config: Config, form: str) -> Result:
    """Real RND models (predictor and target one-hidden-layer relu MLPs, so
    ``kappa_u = kappa_g = kappa`` exactly at every width), trained to
    convergence, against the printed covariance with ``kappa_eps = kappa_u +
    kappa_g`` at three test inputs (two on the sphere, one at three times its
    radius). One replicate per model: ``C_s = (1/K) sum_i eps_i eps_i^T`` (heads
    share hidden layers, so only models are independent); per upper-triangle
    entry ``|mean_s C_s - printed|`` must be below a Bonferroni z (false alarm
    1e-6) times the Monte-Carlo standard error plus the measured finite-width
    deviation from the analytic-NTK linearisation (the Cauchy-Schwarz bound of
    Prop 5.2's E check, :func:`.dynamics_checks.ensemble_mc`)."""
    terms = form_params("5.3", form)["cov_terms"]
    width, heads, models = (4096, 8, 400) if config.full else (1024, 8, 100)
    arch, X, x, eps, lin, cond = _prop_5_3_run(width, heads, models, config.seed)
    n = len(x)
    k = arch.kernel(np.vstack([x, X]))
    keps = 2 * k.nngp  # kappa_u + kappa_g, predictor and target of one architecture
    th = {"xX": k.ntk[:n, n:], "XX": k.ntk[n:, n:]}
    keps = {"xx": keps[:n, :n], "xX": keps[:n, n:], "XX": keps[n:, n:]}
    law = printed.converged_cov(terms, keps, th, np.linalg.inv(th["XX"]))
    iu = np.triu_indices(n)
    C = np.einsum("sik,sjk->sij", eps, eps) / heads
    CL = np.einsum("sik,sjk->sij", lin, lin) / heads
    dev = eps - lin
    D = np.einsum("sik,sjk->sij", dev, dev).mean(axis=0) / heads
    sl, dd = np.diag(CL.mean(axis=0)), np.diag(D)
    bias = (np.sqrt(np.outer(sl, dd)) + np.sqrt(np.outer(dd, sl)) + np.sqrt(np.outer(dd, dd)))[iu]
    zt = z_threshold(len(iu[0]))
    se = C[:, iu[0], iu[1]].std(axis=0, ddof=1) / math.sqrt(models)
    err = np.abs(C.mean(axis=0) - law)[iu]
    ratio = float(np.max(err / (zt * se + bias)))
    return measured(ratio, 1.0,
                    f"empirical covariance of the converged RND error over {models} width-{width} models x {heads} "
                    "heads vs the printed terms with kappa_eps = kappa_u + kappa_g: error <= Bonferroni z * "
                    "Monte-Carlo standard error (false alarm < 1e-6) + the measured finite-width deviation "
                    "(Cauchy-Schwarz bound); residual = worst error / bound",
                    statistic=f"max |error|/bound {ratio:.2f}{_le(ratio, 1)}1 over {len(iu[0])} entries; "
                              f"cond(Theta_XX) {cond:.3g}",
                    error=err.tolist(), mc_se=se.tolist(), width_bias=bias.tolist(), cond=cond, width=width,
                    heads=heads, models=models)


def _prop_5_7_regime(form: str) -> tuple[str, float]:
    p = form_params("5.7", form)
    if p.get("regime") not in ("limit", "every width"):
        raise ParameterError(f"5.7: regime must be 'limit' or 'every width', got {p.get('regime')!r}")
    return p["regime"], float(p.get("rate", 1))


def prop_5_7_symbolic(config: Config, form: str) -> Result:
    """The kernel identity the limit rests on, at finite width (readout share
    = NNGP form, ``kappa + Theta^hid = Theta``), and the form's law of ``g~``:
    its fourth cumulant from the construction against the form's (``limit``:
    ``3 sigma_w^4 q^2 (3 M_04 - M_02^2) / n^rate``; ``every width``: 0)."""
    regime, rate = _prop_5_7_regime(form)
    widths = (1, 2, 3) if config.full else (1, 3)
    proofs = [SP.prove_5_7(strict=False, width=n) for n in widths]
    units = (1, 2, 3, 4) if config.full else (1, 2, 3)
    proofs += [_target_law(regime, rate, n) for n in units]
    res = proven(S.combine("5.7", proofs[0].statement, proofs),
                  f"kernel identity (one hidden layer, explicit n = {list(widths)}, d = 2, sympy.diff): readout share "
                  "= sigma_w^2 (1/n) sum_j phi(h_j) phi(h_j') + sigma_b^2 and kappa + Theta^hid = Theta; law of g~ "
                  f"(explicit n = {list(units)}): E g~^2 exact, fourth cumulant "
                  + ("0 (the form: Gaussian at every width)" if regime == "every width" else
                     f"3 sigma_w^4 q^2 (3 M_04 - M_02^2)/n^{rate:g}") + "; every difference exactly 0")
    decays = all(_target_law("limit", 1.0, n).proven for n in units)
    deviates = any(not _target_law("every width", 1.0, n).proven for n in units)
    res.details[LIMIT] = limit_finding(deviates, decays, "fourth cumulant of g~ = 3 sigma_w^4 q^2 (3 M_04 - M_02^2)/n: "
                                       f"not 0 at any n, n x it the same at every n (exact, explicit n = {list(units)})",
                                       exact=True, units=list(units))
    return res


@functools.lru_cache(maxsize=64)
def _target_law(regime: str, rate: float, n: int):
    return SP.prove_5_7_law(strict=False, regime=regime, rate=rate, units=n)


def prop_5_7_high_precision(config: Config, form: str) -> Result:
    """``Theta - kappa`` is the hidden layers' share: for an erf MLP with ``L - 1``
    hidden layers, the library's ``Theta^{L} - kappa^{L}`` (``mlp(depth)``) against
    ``sigma_w^2 E[phi'(a) phi'(b)] Theta^{L-1}`` with ``Theta^{L-1}``, ``kappa^{L-1}``
    of ``mlp(depth - 1)`` (the same network without its last hidden layer) and the
    erf derivative kernel written out here,
    ``E[phi' phi'] = (4/pi) / sqrt((1 + 2 k_aa)(1 + 2 k_bb) - 4 k_ab^2)``:
    so the readout's share is ``kappa`` and ``kappa_u + kappa_g~ = Theta``.
    And the law of ``g~`` at width 4 (one hidden layer, erf): its excess
    kurtosis ``k_1 / 4`` (``k_1`` by quadrature, the rate ``1/n`` derived at S)
    against the form's (``limit``: ``k_1 / 4^rate`` with ``k_1`` in closed form;
    ``every width``: 0)."""
    regime, rate = _prop_5_7_regime(form)
    dps = config.dps
    rng = np.random.default_rng(config.seed)
    z = sphere_inputs(rng, 5, 3)
    sw, sb = 1.3, 0.2
    full, short = mlp(2, "erf", sw, sb).kernel(z, dps=dps), mlp(1, "erf", sw, sb).kernel(z, dps=dps)
    ctx = mp_context(dps)
    K1, T1, K, T = _mp(short.nngp, ctx), _mp(short.ntk, ctx), _mp(full.nngp, ctx), _mp(full.ntk, ctx)
    n = K.rows
    share = ctx.matrix(n, n)
    for i in range(n):
        for j in range(n):
            det = (1 + 2 * K1[i, i]) * (1 + 2 * K1[j, j]) - 4 * K1[i, j] ** 2
            share[i, j] = ctx.mpf(sw) ** 2 * 4 / ctx.pi / ctx.sqrt(det) * T1[i, j]
    r = float(mp_max_abs(T - K - share, ctx) / mp_max_abs(T, ctx))
    width = 4
    k_quad = td.kurtosis_constant("erf", sw, sb, 1.0, dps=dps)
    k_closed = td.erf_kurtosis_constant(sw, sb, 1.0, dps)
    claimed = 0 if regime == "every width" else k_closed / ctx.mpf(width) ** ctx.mpf(rate)
    r_law = float(abs(k_quad / width - claimed) / abs(k_quad / width))
    return _h(max(r, r_law), dps, "Theta - kappa == sigma_w^2 E[phi' phi'] Theta^{L-1} (the hidden layers' share; the "
              f"readout's is kappa), and the excess kurtosis of g~ at width {width} (quadrature) vs the form's "
              + ("0" if regime == "every width" else f"k_1/{width}^{rate:g} (closed form)"),
              shown=f"hidden share {r:.2g}, law {r_law:.2g}; k_1 {float(k_quad):.4g}", hidden_share=r, law=r_law,
              k1=float(k_quad))


@functools.lru_cache(maxsize=4)  # all forms read the same (deterministic) experiment
def _prop_5_7_kurtosis(seed: int, full: bool) -> td.TargetKurtosis:
    widths = (4, 8, 16, 32, 64) if full else (4, 8, 16, 32)
    return td.target_kurtosis("erf", 1.5, 0.3, widths, 80_000 if full else 20_000, seed=seed)


@functools.lru_cache(maxsize=4)
def _prop_5_7_moments(seed: int, full: bool):
    rng = np.random.default_rng(seed)
    arch = mlp(1, "erf", 1.5, 0.3)
    x = sphere_inputs(rng, 4, 3)
    draws, width, heads = (4000, 256, 16) if full else (1000, 64, 16)
    iu = np.triu_indices(len(x))
    reps = []
    for s in range(draws):
        h = rnd.BayesianRND(arch, width=width, heads=heads, seed=_seed(seed, 57, s), jacobian="hidden",
                            shared_xi=True).prior_sample(x)
        reps.append(np.mean(h[iu[0]] * h[iu[1]], axis=1))
    return arch.kernel(x).ntk[iu], np.array(reps), draws, width


@controls.declares("cov0.7", "cov1.3")
def prop_5_7_empirical(config: Config, form: str) -> Result:
    """The paper's construction at finite width.

    * Second moments (exact at every width for one hidden layer): ``g~ =
      J^hid(x; vartheta_0) psi*`` (:class:`ntk_equiv.rnd.BayesianRND`,
      ``jacobian="hidden"``, one ``psi*`` for all heads), ``h = u(x; vartheta_0) -
      g~``; over draws, ``E h(x) h(x')`` against ``Theta`` (``E[hat kappa] = kappa``,
      ``E[J^hid J^hid^T] = Theta - kappa`` at every width, C2): z per entry.
    * The law: the excess kurtosis of ``g~(x)`` over ``20 000`` draws per width
      (batched, anchored to ``Network.jvp``) against the form's (``limit``: the
      exact ``k_1 / n^rate``; ``every width``: 0), z per width.

    Both halves of "only in the limit" from the same data: the excess kurtosis
    beyond ``z`` standard errors at some width, and equal to ``k_1/n`` (rate 1)
    at every width. Bonferroni over all z: false alarm 1e-6."""
    regime, rate = _prop_5_7_regime(form)
    theta, reps, draws, width = _prop_5_7_moments(config.seed, config.full)
    theta = controls.law_covariance(theta)
    z_mom = (reps.mean(axis=0) - theta) / (reps.std(axis=0, ddof=1) / math.sqrt(draws))
    k = _prop_5_7_kurtosis(config.seed, config.full)
    W = np.array(k.widths, float)
    kurt, se = np.array([k.kurt[w] for w in k.widths]), np.array([k.kurt_se[w] for w in k.widths])
    claimed = 0 * W if regime == "every width" else k.k1 / W**rate
    z_law = (kurt - claimed) / se
    z_all = np.concatenate([np.abs(z_mom), np.abs(z_law), [0.0 if k.anchor <= 1e-12 else np.inf]])
    thr = z_threshold(len(z_all) - 1)
    z_dev = float(np.max(np.abs(kurt / se)))
    z_rate = float(np.max(np.abs((kurt - k.k1 / W) / se)))
    res = measured(float(np.max(z_all)) / thr, 1.0,
                   f"{regime}: E[(u_0 - g~)(x) (u_0 - g~)(x')] = Theta over {draws} draws of a width-{width} one-hidden-"
                   "layer network (16 heads, one psi* for all), and the excess kurtosis of g~ over "
                   f"{k.draws} draws at widths {list(k.widths)} vs "
                   + ("0" if regime == "every width" else f"the exact k_1/n^{rate:g} (k_1 = {k.k1:.3g})")
                   + f"; largest |z| / Bonferroni threshold {thr:.2f} (false alarm 1e-6); anchor to Network.jvp "
                     f"{k.anchor:.1g} <= 1e-12",
                   statistic=f"moments max|z| {float(np.max(np.abs(z_mom))):.2f}; n x excess kurtosis "
                             f"{np.round(W * kurt, 2).tolist()} (k_1 {k.k1:.2f}); max|z| {float(np.max(z_all)):.2f}"
                             f"{_le(float(np.max(z_all)), thr)}{thr:.2f}",
                   max_abs_z=float(np.max(z_all)), threshold=thr, draws=draws, width=width,
                   kurtosis=kurt.tolist(), kurtosis_se=se.tolist(), k1=k.k1, anchor=k.anchor)
    res.details[LIMIT] = limit_finding(z_dev > thr, z_rate <= thr,
                                       "excess kurtosis of g~ (a scale mixture of Gaussians): beyond z se at some "
                                       "width, = k_1/n at every width", max_abs_z=z_dev, threshold=thr,
                                       rate_max_abs_z=z_rate)
    return res


CHECKS = {
    ("5.1", "S"): prop_5_1_symbolic,
    ("5.1", "H"): prop_5_1_high_precision,
    ("5.1", "E"): prop_5_1_empirical,
    ("5.2", "S"): prop_5_2_symbolic,
    ("5.2", "H"): prop_5_2_high_precision,
    ("5.2", "E"): prop_5_2_empirical,
    ("5.3", "S"): prop_5_3_symbolic,
    ("5.3", "H"): prop_5_3_high_precision,
    ("5.3", "E"): prop_5_3_empirical,
    ("5.4", "S"): cor_5_4_symbolic,
    ("5.4", "H"): cor_5_4_high_precision,
    ("5.4", "E"): cor_5_4_empirical,
    ("5.6", "S"): thm_5_6_symbolic,
    ("5.6", "H"): thm_5_6_high_precision,
    ("5.7", "S"): prop_5_7_symbolic,
    ("5.7", "H"): prop_5_7_high_precision,
    ("5.7", "E"): prop_5_7_empirical,
}
