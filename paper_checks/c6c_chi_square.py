"""Figure C6c: the law of the RND estimator. ``M eps^2(x) / (2 Sigma_k(x,x))``
of an RND model with ``M`` heads is chi-square with ``M`` degrees of freedom,
the law of ``M s^2(x) / Sigma_k(x,x)`` for the sample variance ``s^2`` of an
ensemble of ``M + 1`` networks: one RND model with ``M`` heads is, in law, an
ensemble of ``M + 1`` members.

On the 2-D task of :mod:`.c6a_rnd_vs_ensemble`, at one in-distribution and one
out-of-distribution test input, ``R`` independent RND models
(``ne.RND(..., heads=M, seed=s).fit``) and ``R`` independent ensembles of
``M + 1`` trained networks give ``R`` draws of each statistic; ``Sigma_k`` is
the analytic ensemble variance after the same ``k`` steps (``ne.ensemble``).
The empirical CDFs are compared with the chi^2_M CDF and by Kolmogorov-Smirnov
tests (p-values in the legend and JSON).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import ntk_equiv as ne

from .c6a_rnd_vs_ensemble import tasks
from .common import FigureResult, Timer, save

KEY, CLAIM = "c6c_chi_square", "C6c"
TITLE = "C6c: M eps^2/(2 Sigma) of RND with M heads ~ chi^2_M ~ M s^2/Sigma of an (M+1)-ensemble"


def run(out: Path, quick: bool = False, seed: int = 0) -> FigureResult:
    with Timer() as tm:
        arch = ne.mlp(1, "relu", sigma_w=1.5, sigma_b=0.5)
        M = 4
        width, R, steps = (256, 50, 200) if quick else (1024, 240, 200)
        X, Y, x_in, x_ood = tasks(seed)["2-D task"]
        x = np.vstack([x_in[:1], x_ood[:1]])
        lr = 1.0 / float(np.linalg.eigvalsh(arch.kernel(X).ntk)[-1])
        sigma = np.diag(ne.ensemble(arch, X, Y, x, lr=lr, steps=steps).cov)
        rnd_stat = np.array([M * ne.RND(predictor=arch, width=width, heads=M, seed=seed * 10 ** 5 + r)
                             .fit(X, lr=lr, steps=steps).error(x) / (2 * sigma) for r in range(R)])
        ens_stat = np.empty((R, len(x)))
        for r in range(R):
            preds = np.stack([arch.init(width, seed=10 ** 7 + seed * 10 ** 5 + r * (M + 1) + m, in_dim=2)
                              .train(X, Y, lr=lr, steps=steps).apply(x)[:, 0] for m in range(M + 1)])
            ens_stat[r] = M * preds.var(0, ddof=1) / sigma
        fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4))
        grid = np.linspace(0, stats.chi2.ppf(0.999, M), 200)
        data = {"claim": CLAIM, "architecture": "mlp(depth=1, relu, sigma_w=1.5, sigma_b=0.5)", "heads_M": M,
                "width": width, "repeats": R, "steps": steps, "lr": lr, "X": X, "test_inputs": x,
                "sigma_k": sigma, "points": {}}
        headline = {}
        for i, (ax, where) in enumerate(zip(axes, ("in-distribution input", "out-of-distribution input"))):
            p_rnd = stats.kstest(rnd_stat[:, i], stats.chi2(M).cdf).pvalue
            p_ens = stats.kstest(ens_stat[:, i], stats.chi2(M).cdf).pvalue
            p_two = stats.ks_2samp(rnd_stat[:, i], ens_stat[:, i]).pvalue
            # empirical CDFs (readable at a few hundred draws, where histograms are noisy)
            for vals, col, lab in ((rnd_stat[:, i], "tab:orange", f"RND, {M} heads: M eps^2/(2 Sigma)  (KS p={p_rnd:.2f})"),
                                   (ens_stat[:, i], "tab:blue", f"ensemble of {M + 1}: M s^2/Sigma  (KS p={p_ens:.2f})")):
                v = np.sort(vals)
                ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color=col, lw=1.8, label=lab)
            ax.plot(grid, stats.chi2.cdf(grid, M), "k--", lw=1.2, label=f"chi^2_{M} CDF")
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
        f"{R} independent RND models with M={M} heads and {R} independent ensembles of {M + 1} networks "
        f"(one-hidden-layer ReLU, width {width}, {steps} GD steps, 2-D task). Each statistic is normalised by "
        f"the analytic ensemble variance Sigma_k at the test input; both should follow chi^2_{M}. KS p-values "
        f"against chi^2_{M} and between the two samples are in the titles/legends (finite-width bias in "
        f"Sigma shifts both samples alike).",
        headline, tm.seconds)
