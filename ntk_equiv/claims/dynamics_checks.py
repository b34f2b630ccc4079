"""Checks of the finite-width and training-dynamics claims C2-C5 (docs/theory.md).

The experiments are plain functions with explicit sizes, so the default
checks (small, ~1-3 s), ``Config(full=True)`` (paper scale) and the slow test
sweeps (``tests/test_dynamics_slow.py``) run the same code.

Statistical tolerances: a z-test per reported entry with the Bonferroni
threshold ``z = Phi^{-1}(1 - 1e-6 / (2 m))`` for ``m`` entries, so the
probability of a false alarm of the whole check is below 1e-6.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import dynamics
from ..experiments.explicit import (  # noqa: F401 - re-exported
    explicit_projector, independent_train_operator, max_abs, mp_max_abs, to_mp as _mp,
)
from ..experiments.inputs import condition_number, sphere_inputs
from ..experiments.kernel_convergence import (  # noqa: F401 - re-exported
    MomentTest, finite_width_cov_depth2, ntk_error_sweep, ntk_errors, one_layer_moments,
)
from ..experiments import power
from ..experiments.stats import (  # noqa: F401 - re-exported
    FALSE_ALARM, RateFit, fit_rate, law_limit_tests, rate_correction_bias, t_threshold, z_threshold,
)
from ..architecture import mlp
from ..precision import mp_context
from . import controls
from .registry import Config, check, measured

#: z_threshold, sphere_inputs, fit_rate, RateFit and the C2 experiment live in
#: ntk_equiv.experiments (one home per experiment); re-exported here for the tests.
__all__ = ["FALSE_ALARM", "MomentTest", "RateFit", "ensemble_members", "finite_width_cov_depth2", "fit_rate",
           "independent_train_operator", "linearised_exactness", "ntk_error_sweep", "one_layer_moments",
           "sphere_inputs", "trained_vs_analytic", "training_error_sweep", "z_threshold"]


# --------------------------------------------------------------------------- #
# C3 / C4: linearised and real training
# --------------------------------------------------------------------------- #
def linearised_exactness(arch, width: int, out_dim: int, n_train: int, n_test: int, d: int, steps: int,
                         ridge: float, seed: int) -> float:
    """C3 at finite width: GD on ``net.linearize()`` against ``linearised_predict``
    with the network's own full ``(N M, N M)`` empirical NTK. Relative max error."""
    rng = np.random.default_rng(seed)
    x, xt = sphere_inputs(rng, n_train, d), sphere_inputs(rng, n_test, d)
    y = rng.standard_normal((n_train, out_dim))
    net = arch.init(width, out_dim=out_dim, seed=rng)
    lin = net.linearize()
    lr = 1.0 / (lin.lambda_max(x) + ridge)
    trained = lin.train(x, y, lr=lr, steps=steps, ridge=ridge)
    z = np.vstack([xt, x])
    pred = dynamics.linearised_predict(net.empirical_ntk(z, x, full=True), net.empirical_ntk(x, full=True),
                                       net.apply(z), net.apply(x), y, lr=lr, ridge=ridge, steps=steps)
    return float(np.max(np.abs(trained.apply(z) - pred)) / np.max(np.abs(pred)))


def trained_vs_analytic(arch, x: np.ndarray, xt: np.ndarray, y: np.ndarray, width: int, lr: float, steps: int,
                        rng: np.random.Generator) -> float:
    """C4: RMS difference between real GD on a width-``n`` network and C3's
    prediction with the analytic ``Theta`` from the same initial outputs ``f_0``."""
    z = np.vstack([xt, x])
    theta = arch.kernel(z).ntk
    net = arch.init(width, out_dim=y.shape[1], seed=rng)
    trained = net.train(x, y, lr=lr, steps=steps)
    pred = dynamics.linearised_predict(theta[:, len(xt):], theta[len(xt):, len(xt):], net.apply(z), net.apply(x),
                                       y, lr=lr, steps=steps)
    return float(np.sqrt(np.mean((trained.apply(z) - pred) ** 2)))


def training_error_sweep(arch, widths, seeds: int, n_train: int = 6, n_test: int = 4, d: int = 3,
                         steps: int = 100, seed: int = 0, inputs: tuple | None = None) -> RateFit:
    """C4 over widths: same data, ``seeds`` networks per width, ``lr = 1/lambda_max(Theta_XX)``
    (``inputs``: ``(x_train, x_test)``, default points on a sphere)."""
    rng = np.random.default_rng(seed)
    x, xt = (sphere_inputs(rng, n_train, d), sphere_inputs(rng, n_test, d)) if inputs is None else inputs
    n_train = len(x)
    y = rng.standard_normal((n_train, 1))
    lr = 1.0 / float(np.linalg.eigvalsh(arch.kernel(x).ntk)[-1])
    errs = [[trained_vs_analytic(arch, x, xt, y, w, lr, steps, rng) for _ in range(seeds)] for w in widths]
    fit = fit_rate(widths, np.array(errs))
    fit.cond = condition_number(arch.kernel(x).ntk)
    # the expansion parameter of f_t - f^lin_t: the kernel's relative fluctuation at init
    k_err = ntk_errors(arch, np.vstack([xt, x]), [widths[0]], seeds=8, seed=seed + 1)
    fit.kernel_fluctuation = float(np.sqrt(np.mean(k_err**2)))
    return fit


# --------------------------------------------------------------------------- #
# C5: deep ensembles
# --------------------------------------------------------------------------- #
def ensemble_members(arch, design, widths, members: int, steps: int, seed: int) -> dict:
    """``{n: (members, m, 1)}``: outputs at the design's test inputs of ``members``
    independently trained width-``n`` networks (``steps`` steps of size
    ``design.lr`` on ``(X, Y)``; :func:`ntk_equiv.experiments.rnd_ratio.run`'s seeds)."""
    from ..experiments import rnd_ratio

    res = rnd_ratio.run(arch, design.X, design.Y, design.x, widths, seeds=0, heads=1, members=members,
                        steps=steps, lr=design.lr, seed=seed)
    return {w: res.members[w][:, :, None] for w in widths}


def law_check(tests: dict, what: str, statistic: str, power_alternatives: dict | None = None, **extra):
    """:func:`.rnd_checks._p_result` of :func:`~ntk_equiv.experiments.stats.law_limit_tests`,
    with the power of the scale test against each scaling of ``power_alternatives``
    (default cov x0.7 / x1.3) at the check's Bonferroni threshold, in
    ``details["power"]`` and the row."""
    from ..experiments import power
    from .rnd_checks import _p_result

    scale = next((v for k, v in tests.items() if k.endswith("scale tr W / m")), None)
    if scale is None:  # the stated covariance is not positive definite: nothing to power
        return _p_result(tests, what, statistic)
    q = t_threshold(scale["df"], len(tests))
    # relative standard error: the power does not depend on the scale the stated law happens to have
    pw = power.scale_power(scale["se"] / abs(scale["a"]), q, scale["df"], power_alternatives or power.COV_ALTERNATIVES)
    shown = (f"scale {scale['a']:.3f}+-{scale['se']:.3f} (limit 1, widths {'/'.join(map(str, scale['widths']))}); "
             f"{power.summary(pw)}; {statistic}")
    return _p_result(tests, what, shown, **power.stated(
        pw, f"analytic: two-sided Student-t ({scale['df']} df) test of the extrapolated scale at the Bonferroni "
            f"threshold q = {q:.2f} of {len(tests)} tests, with the run's relative standard error "
            f"{scale['se'] / abs(scale['a']):.3g}; "
            "covariance x c makes the check test |a - c| <= q se"), **extra)


# --------------------------------------------------------------------------- #
# H level helpers: independent mpmath evaluations
# --------------------------------------------------------------------------- #
# (``_mp``, ``explicit_projector``, ``independent_train_operator``, ``mp_max_abs``:
# :mod:`ntk_equiv.experiments.explicit`, shared with the experiments and rnd_checks)
# --------------------------------------------------------------------------- #
# registered checks
# --------------------------------------------------------------------------- #
_ONE_LAYER = dict(depth=1, activation="erf", sigma_w=1.5, sigma_b=0.3)


@check("C2", "E")
@controls.declares("noise", "cov0.7", "cov1.3")
def _c2_empirical(config: Config):
    """Exact moments at a small width (z-tests) and the n^{-1/2} rate of the NTK
    error, on the one-hidden-layer MLP and on a one-hidden-layer CNN (issue 12)."""
    from .architectures import image_inputs, random_cnn

    rng = np.random.default_rng(config.seed)
    label, cnn, shape = random_cnn(np.random.default_rng(config.seed + 7), one_hidden=True, dims=(2,))
    cases = [("mlp", mlp(**_ONE_LAYER), sphere_inputs(rng, 4, 3)), (label, cnn, image_inputs(rng, 4, shape))]
    widths = [256, 1024, 4096, 16384] if config.full else [64, 256, 1024]
    z_slope = z_threshold(2)
    stated = float(controls.law_covariance(1.0))  # the kernels' scale as the check states them
    resid, details, stats, pws = 0.0, {}, [], []
    for i, (name, arch, x) in enumerate(cases):
        mom = one_layer_moments(arch, x, width=16, draws=(4000 if config.full else 1000) // (2 if i else 1),
                                out_dim=4, seed=config.seed + 10 * i, scale=stated)
        pws.append({n: power.two_sided(abs(1 - c) * mom.sensitivity, mom.threshold)
                    for n, c in power.COV_ALTERNATIVES.items()})
        fit = ntk_error_sweep(arch, x, widths, seeds=40 if config.full else 30, seed=config.seed + 10 * i + 1)
        # residual: worst of (moment z / threshold) and (slope deviation / (z se))
        resid = max(resid, mom.worst / mom.threshold, fit.deviation() / (z_slope * fit.stderr))
        details[name] = dict(moment_worst_z=mom.worst, moment_threshold=mom.threshold, rms=fit.rms.tolist(),
                             slope=fit.slope, slope_stderr=fit.stderr)
        stats.append(f"{name}: moments {mom.summary()}; {fit.summary()}, |dev|<={z_slope:.2f} se")
        if name == "mlp":  # the error level predicted by ne.finite_width (C10), not only its fitted rate
            from ..fluctuations import finite_width

            fw = finite_width(arch, x)
            # n E||hat Theta - Theta||_F^2 / ||Theta||_F^2 = sum_ij ntk_var_ij / ||Theta||_F^2, exact at one hidden layer
            pred = float(np.sum(fw.ntk_var) / np.sum(fw.ntk**2))
            e2 = fit.errors**2 * np.asarray(widths, float)[:, None]
            ms, se = e2.mean(1), e2.std(1, ddof=1) / np.sqrt(e2.shape[1])
            q = t_threshold(e2.shape[1] - 1, len(widths))
            resid = max(resid, float(np.max(np.abs(ms - pred) / (q * se))))
            details[name].update(predicted_n_mse=pred, measured_n_mse=ms.tolist(), n_mse_se=se.tolist())
            stats.append(f"{name}: n E|hat Theta - Theta|^2/|Theta|^2 measured "
                         + "/".join(f"{m:.3g}" for m in ms) + f" vs predicted {pred:.3g} (|dev| <= {q:.1f} se)")
    pw = {n: max(p[n] for p in pws) for n in pws[0]}
    return measured(
        resid, 1.0,
        "one hidden layer (dense, and convolutional with pooling): E[hat Theta] = Theta and Cov f_0 = K at width "
        "16 (Bonferroni z-tests, false alarm < 1e-6), and the rms NTK error's log-log slope is -1/2 within z*se "
        "(hat Theta - Theta is a mean of n i.i.d. channel terms, so the mean-square error is exactly c/n; se from "
        "the seed scatter; two architectures, Bonferroni); for the MLP the mean-square error at each width equals "
        "ne.finite_width's predicted sum_ij ntk_var_ij / (n ||Theta||_F^2) within a Bonferroni Student-t threshold "
        "of its standard error; residual = worst ratio to its tolerance",
        statistic="; ".join(stats) + f"; {power.summary(pw)}", widths=widths, **details,
        **power.stated(pw, "analytic: the most sensitive moment z-test (normal) at its Bonferroni threshold, "
                           "shifted by |1 - c| |exact| / se"),
    )


@check("C3", "E")
@controls.declares("untrained", "noise")
def _c3_empirical(config: Config):
    """Finite-width exactness, with and without ridge, two heads (full NTK)."""
    from ..architecture import serial
    from ..layers import Dense, Relu, Erf, residual

    archs = [mlp(2, "relu", 1.4, 0.1),
             serial(Dense(1.3, 0.2), Erf(), residual([Dense(1.1, 0.1), Relu(), Dense(1.0, 0.1)], 0.8),
                    Dense(1.2, 0.1))]
    width = 256 if config.full else 32
    errs = [linearised_exactness(a, width, 2, 6, 4, 3, steps, ridge, config.seed + i)
            for i, a in enumerate(archs) for steps, ridge in ((40, 0.0), (40, 0.3))]
    return measured(
        max(errs), 1e-9,
        "GD on the linearised network equals f_0 + Theta_xX A_k (Y - f_0(X)) with its own full empirical "
        "NTK exactly; float64 round-off over ~40 steps is ~1e-13, 1e-9 leaves room for conditioning",
        errors=errs,
    )


@check("C3", "H")
def _c3_high_precision(config: Config):
    """``linearised_predict(dps=)`` (eigendecomposition) against mpmath ``expm`` /
    matrix powers (independent), on the analytic NTK at ``dps`` digits."""
    dps = config.dps
    rng = np.random.default_rng(config.seed)
    arch = mlp(2, "erf", 1.3, 0.2)
    N, n = (8, 4) if config.full else (5, 3)
    x, xt = sphere_inputs(rng, N, 3), sphere_inputs(rng, n, 3)
    y, f0X, f0x = rng.standard_normal((N, 2)), rng.standard_normal((N, 2)), rng.standard_normal((n, 2))
    k = arch.kernel(np.vstack([xt, x]), dps=dps)
    ctx = mp_context(dps)
    resid = ctx.mpf(0)
    T = _mp(k.ntk, ctx)
    TxX, TXX = T[:n, n:], T[n:, n:]
    scale = max(mp_max_abs(y, ctx), mp_max_abs(f0X, ctx), mp_max_abs(f0x, ctx))
    for kw in (dict(t=0.7, ridge=0.0), dict(t=2.5, ridge=0.4), dict(steps=7, lr=0.05, ridge=0.1),
               dict(t=None, ridge=0.0)):
        got = dynamics.linearised_predict(np.array(TxX.tolist(), dtype=object), np.array(TXX.tolist(), dtype=object),
                                          f0x, f0X, y, dps=dps, **kw)
        A = independent_train_operator(TXX, t=kw.get("t"), lr=kw.get("lr", 1), ridge=kw["ridge"],
                                       steps=kw.get("steps"), ctx=ctx)
        want = _mp(f0x, ctx) + TxX * A * (_mp(y, ctx) - _mp(f0X, ctx))
        resid = max(resid, mp_max_abs(_mp(got, ctx) - want, ctx) / scale)
    return measured(
        float(resid), 10.0 ** -(dps - 5),
        f"two independent evaluations at {dps} digits (eigendecomposition vs Pade expm / matrix powers) agree "
        f"to below 1e-{dps - 5}", dps=dps,
    )


@check("C4", "E")
@controls.declares("untrained", "noise")
def _c4_empirical(config: Config):
    """Real GD on the nonlinear net -> C3 with analytic Theta, rate n^{-1/2}, on a
    one-hidden-layer MLP and on a CNN (issue 12)."""
    from .architectures import image_inputs
    from ..layers import Conv, GlobalAvgPool
    from ..architecture import serial
    from ..layers import Dense, Erf

    widths = [256, 1024, 4096, 16384] if config.full else [64, 256, 1024]
    rng = np.random.default_rng(config.seed + 3)
    cnn = serial(Conv(3, 1, "SAME", 1.5, 0.3), Erf(), GlobalAvgPool(), Dense(1.5, 0.3))
    imgs = image_inputs(rng, 6, (5, 2)), image_inputs(rng, 4, (5, 2))
    fits = {"mlp": training_error_sweep(mlp(1, "erf", 1.5, 0.3), widths, seeds=30 if config.full else 24, steps=100,
                                        seed=config.seed),
            "cnn1d[Conv 3 SAME, erf, GlobalAvgPool, Dense]": training_error_sweep(
                cnn, widths, seeds=24 if config.full else 8, steps=100, seed=config.seed + 4, inputs=imgs)}
    rows, pw_all = {}, []
    zq = z_threshold(2)
    for name, f in fits.items():
        tol, bias = c4_tolerance(f, widths, zq)
        pw_all.append({"rate n^-1/4": power.two_sided(0.25 / f.stderr, tol / f.stderr),
                       "no convergence (rate n^0)": power.two_sided(0.5 / f.stderr, tol / f.stderr)})
        rows[name] = dict(rms=f.rms.tolist(), slope=f.slope, slope_stderr=f.stderr, cond=f.cond, tolerance=tol,
                          correction_bias=bias, kernel_fluctuation=f.kernel_fluctuation)
    pw = {k: max(p[k] for p in pw_all) for k in pw_all[0]}
    resid = max(f.deviation() / rows[name]["tolerance"] for name, f in fits.items())
    return measured(
        resid, 1.0,
        "log-log slope of the rms gap between trained network and analytic-NTK linearisation is -1/2 (an MLP and "
        "a CNN): tolerance z*se (seed scatter, Bonferroni over the two, false alarm < 1e-6) + the slope bias of a "
        "next-order correction (1 + beta n^{-1/2}) to the mean-square gap, with |beta| n0^{-1/2} = the kernel's "
        "relative fluctuation ||hat Theta - Theta|| / ||Theta|| at the smallest width n0 (the expansion parameter of "
        "f_t - f^lin_t; measured at initialisation, not on the trained networks); residual = worst deviation / "
        "tolerance",
        statistic="; ".join(f"{name}: {f.summary()}, |dev| {f.deviation():.3f}"
                            f"{'<=' if f.deviation() <= rows[name]['tolerance'] else '>'}{rows[name]['tolerance']:.3f} "
                            f"(bias bound {rows[name]['correction_bias']:.3f}); cond(Theta_XX) {f.cond:.3g}"
                            for name, f in fits.items()) + f"; {power.summary(pw)}",
        widths=widths, **rows, **power.stated(pw, "analytic: the slope ~ N(-1/2 + shift, se^2) against the "
                                                  "tolerance, the largest over the two architectures"),
    )


def c4_tolerance(fit: RateFit, widths, zq: float) -> tuple[float, float]:
    """C4's slope tolerance ``zq se + bias``, ``bias`` = the largest
    :func:`~ntk_equiv.experiments.stats.rate_correction_bias` for ``beta =
    +-fluctuation sqrt(n0)``. Returns ``(tolerance, bias)``."""
    beta = fit.kernel_fluctuation * math.sqrt(widths[0])
    bias = max(abs(rate_correction_bias(widths, b)) for b in (beta, -min(beta, 0.99 * math.sqrt(widths[0]))))
    return zq * fit.stderr + bias, bias


@functools.lru_cache(maxsize=4)  # pure in its arguments (the external control among them)
def _c5_members(widths: tuple, members: int, steps: int, seed: int, control: str | None) -> dict:
    from ..experiments.rnd_ratio import converged_design

    arch = mlp(1, "erf", 1.5, 0.3)
    return ensemble_members(arch, converged_design(arch, 9, 3, seed=seed), widths, members, steps, seed)


@check("C5", "E")
@controls.declares("untrained", "noise", "cov0.7", "cov1.3")
def _c5_empirical(config: Config):
    """Real networks trained ``k = 4`` steps (far from converged: the slowest
    train mode keeps ``(1 - 1/cond(Theta_XX))^k ~ 0.2`` of its start, so the law is
    a finite-time one) against ``ensemble(steps=k)``: the
    width sweep of :func:`~ntk_equiv.experiments.stats.law_limit_tests` (the
    limit of the whitened mean, cross moments and scale, extrapolated as
    ``a + b/n``), one hidden layer (``Cov f_0 = kappa`` exactly)."""
    from ..experiments.rnd_ratio import converged_design

    arch = mlp(1, "erf", 1.5, 0.3)
    design = converged_design(arch, 9, 3, seed=config.seed + 5)  # as in _c5_members
    widths, members = ((256, 1024, 4096), 300) if config.full else ((64, 256, 1024), 120)
    steps = 4
    law = dynamics.ensemble(arch, design.X, design.Y, design.x, steps=steps, lr=design.lr)
    samples = _c5_members(widths, members, steps, config.seed + 5, controls.external())
    tests = law_limit_tests(widths, samples, law.mean[:, 0], controls.law_covariance(law.cov))
    return law_check(tests, f"{members} trained networks per width, {steps} GD steps, at {len(design.x)} test inputs, "
                            "vs ensemble(steps=k): the infinite-width limits (a + b/n over widths) of the whitened "
                            "mean (0), cross moments (0) and scale (1)",
                     f"cond(Theta_XX) {design.cond:.3g}", cond=design.cond, widths=list(widths), members=members)


@check("C5", "H")
def _c5_high_precision(config: Config):
    """``ensemble(dps=)`` against ``P K P^T`` with the explicit projector matrix
    ``P = [I, -Theta_xX A]`` on ``[x; X]`` (A by mpmath expm), and
    ``Sigma_inf(X, X) = 0``, ``mu_inf(X) = Y``."""
    dps = config.dps
    rng = np.random.default_rng(config.seed)
    arch = mlp(2, "relu", 1.4, 0.1)
    N, n = (8, 4) if config.full else (5, 3)
    x, xt = sphere_inputs(rng, N, 3), sphere_inputs(rng, n, 3)
    y = rng.standard_normal((N, 1))
    t, lr = 1.3, 0.5
    g = dynamics.ensemble(arch, x, y, xt, t=t, lr=lr, dps=dps)
    ginf = dynamics.ensemble(arch, x, y, x, t=None, dps=dps)
    k = arch.kernel(np.vstack([xt, x]), dps=dps)
    ctx = mp_context(dps)
    K, T = _mp(k.nngp, ctx), _mp(k.ntk, ctx)
    A = independent_train_operator(T[n:, n:], t=t, lr=lr, ctx=ctx)
    G = T[:n, n:] * A
    P = explicit_projector(G, ctx)
    sigma = P * K * P.T
    r_cov = mp_max_abs(_mp(g.cov, ctx) - sigma, ctx) / mp_max_abs(K, ctx)
    r_mean = mp_max_abs(_mp(g.mean, ctx) - G * _mp(y, ctx), ctx) / mp_max_abs(y, ctx)
    r_inf = mp_max_abs(ginf.cov, ctx) / mp_max_abs(K, ctx)
    r_fit = mp_max_abs(_mp(ginf.mean, ctx) - _mp(y, ctx), ctx) / mp_max_abs(y, ctx)
    resid = max(r_cov, r_mean, r_inf, r_fit)
    return measured(
        float(resid), 10.0 ** -(dps - 5),
        f"at {dps} digits: Sigma_t = P_t K P_t^* via the explicit projector, mu_t = Theta_xX A_t Y, "
        f"Sigma_inf(X, X) = 0 and mu_inf(X) = Y, all below 1e-{dps - 5} (relative)",
        cov=float(r_cov), mean=float(r_mean), var_on_train=float(r_inf), fit_on_train=float(r_fit),
    )
