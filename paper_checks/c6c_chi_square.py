"""Figure C6c: the law of the RND estimator (the paper's Thm 5.6). ``K eps^2(x) / (2 Sigma_k(x,x))``
of an RND model with ``K`` heads is chi-square with ``K`` degrees of freedom,
the law of ``K s^2(x) / Sigma_k(x,x)`` for the sample variance ``s^2`` of an
ensemble of ``K + 1`` networks: one RND model with ``K`` heads is, in law, an
ensemble of ``K + 1`` members.

On the 2-D task of :mod:`.c6a_rnd_vs_ensemble`, at one in-distribution and one
out-of-distribution test input, the experiment
:func:`ntk_equiv.experiments.chi_square.run` (the one the C6c check asserts on)
trains ``R`` independent RND models (``ne.RND(..., heads=K, seed=s).fit``) and
``R`` independent ensembles of ``K + 1`` networks, giving ``R`` draws of each
statistic; ``Sigma_k`` is the analytic ensemble variance after the same ``k``
steps (``ne.ensemble``).
The empirical CDFs are compared with the chi^2_K CDF and by Kolmogorov-Smirnov
tests (p-values in the legend and JSON).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import ntk_equiv as ne
from ntk_equiv.experiments import chi_square, rnd_ratio

from .c6a_rnd_vs_ensemble import tasks
from .common import FigureResult, Timer, save

KEY, CLAIM = "c6c_chi_square", "C6c"
TITLE = "C6c: K eps^2/(2 Sigma) of RND with K heads ~ chi^2_K ~ K s^2/Sigma of a (K+1)-ensemble"


def run(out: Path, quick: bool = False, seed: int = 0) -> FigureResult:
    with Timer() as tm:
        arch = ne.mlp(1, "relu", sigma_w=1.5, sigma_b=0.5)
        M = 4
        width, R, steps = (256, 50, 200) if quick else (1024, 240, 200)
        X, Y, x_in, x_ood = tasks(seed)["2-D task"]
        x = np.vstack([x_in[:1], x_ood[:1]])
        lr = rnd_ratio.stable_lr(arch, X, 1.0)
        law = chi_square.run(arch, X, x, width, M, seeds=R, groups=R, steps=steps, lr=lr, seed=seed, Y=Y)
        sigma, rnd_stat, ens_stat = law.sigma, law.q_rnd, law.q_ens
        fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4))
        grid = np.linspace(0, stats.chi2.ppf(0.999, M), 200)
        data = {"claim": CLAIM, "architecture": "mlp(depth=1, relu, sigma_w=1.5, sigma_b=0.5)", "heads_K": M,
                "width": width, "repeats": R, "steps": steps, "lr": lr, "X": X, "test_inputs": x,
                "sigma_k": sigma, "cond_theta_XX": law.cond, "points": {}}
        headline = {}
        wheres = ("in-distribution input", "out-of-distribution input")
        ks = chi_square.ks_tests(law, wheres)  # the C6c check's tests
        for i, (ax, where) in enumerate(zip(axes, wheres)):
            p_rnd = ks[f"{where}: RND vs chi2_K"]["p"]
            p_ens = ks[f"{where}: ensemble vs chi2_K"]["p"]
            p_two = ks[f"{where}: RND vs ensemble"]["p"]
            # empirical CDFs (readable at a few hundred draws, where histograms are noisy)
            for vals, col, lab in ((rnd_stat[:, i], "tab:orange", f"RND, K={M} heads: K eps^2/(2 Sigma)  (KS p={p_rnd:.2f})"),
                                   (ens_stat[:, i], "tab:blue", f"ensemble of K+1={M + 1}: K s^2/Sigma  (KS p={p_ens:.2f})")):
                v = np.sort(vals)
                ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color=col, lw=1.8, label=lab)
            ax.plot(grid, stats.chi2.cdf(grid, M), "k--", lw=1.2, label=f"chi^2_{M} CDF (K={M})")
            ax.set(xlabel="statistic (dimensionless)", ylabel="cumulative probability", xlim=(0, grid[-1]))
            ax.set_title(f"{where} x=({x[i, 0]:.2f}, {x[i, 1]:.2f})\nSigma_k={sigma[i]:.3g}; "
                         f"two-sample KS p={p_two:.2f}", fontsize=10)
            ax.legend(fontsize=7)
            data["points"][where] = {"x": x[i], "rnd_statistic": rnd_stat[:, i], "ensemble_statistic": ens_stat[:, i],
                                     "ks_p_rnd_vs_chi2": p_rnd, "ks_p_ensemble_vs_chi2": p_ens,
                                     "ks_p_rnd_vs_ensemble": p_two}
            headline[f"{where}: mean statistic RND / ensemble (chi^2_{M} mean {M})"] = \
                f"{rnd_stat[:, i].mean():.2f} / {ens_stat[:, i].mean():.2f}"
            headline[f"{where}: KS p-values RND, ensemble, two-sample"] = f"{p_rnd:.3f}, {p_ens:.3f}, {p_two:.3f}"
        fig.suptitle(TITLE, fontsize=11, y=1.04)
        png, js = save(fig, data, out, KEY)
    return FigureResult(
        KEY, CLAIM, TITLE, png, js,
        f"{R} independent RND models with K={M} heads and {R} independent ensembles of {M + 1} networks "
        f"(one-hidden-layer ReLU, width {width}, {steps} GD steps, 2-D task). Each statistic is normalised by "
        f"the analytic ensemble variance Sigma_k at the test input; both should follow chi^2_{M}. KS p-values "
        f"against chi^2_{M} and between the two samples are in the titles/legends (finite-width bias in "
        f"Sigma shifts both samples alike).",
        headline, tm.seconds)
