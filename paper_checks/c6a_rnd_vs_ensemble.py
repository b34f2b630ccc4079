"""Figure C6a (finding 1): the RND error eps^2(x) of real trained RND models
equals twice the variance of a real trained deep ensemble, on in- and
out-of-distribution inputs.

Two regression tasks, a 1-D one (x in R, training inputs in [-1, 1]) and a
2-D one (training inputs from a Gaussian blob). The experiment is
:func:`ntk_equiv.experiments.rnd_ratio.run`, the one the C6a check asserts on;
at each of two widths it trains

* RND: ``ne.RND(predictor=arch, width=n, heads=K, seed=s).fit(X, lr, steps)``
  for ``R`` seeds (predictor ``u``, target ``g``, errors ``eps_i = u_i - g_i``);
* Ensemble: ``E`` independently initialised networks trained on the labels
  with the same ``lr`` and ``steps`` (``Network.train``); ``s^2(x)`` = their
  sample variance.

C6a says ``E eps^2(x) = 2 Sigma_k(x, x) = 2 E s^2(x)`` (``Sigma_k`` from
``ne.ensemble(..., steps=k)``, reported in the JSON). Error bars: two Monte-Carlo
standard errors (eps^2: over the ``R K`` head errors; s^2: chi-square with
``E - 1`` degrees of freedom).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import ntk_equiv as ne
from ntk_equiv.experiments import rnd_ratio

from .common import FigureResult, Timer, save

KEY, CLAIM = "c6a_rnd_vs_ensemble", "C6a"
TITLE = "C6a: RND error eps^2 = 2 x deep-ensemble variance (in and out of distribution)"


def tasks(seed: int) -> dict:
    """Train inputs, labels, in-distribution and out-of-distribution test inputs."""
    rng = np.random.default_rng(seed)
    X1 = np.sort(rng.uniform(-1, 1, 8))[:, None]
    in1 = rng.uniform(-1, 1, 8)[:, None]
    ood1 = np.concatenate([rng.uniform(-4, -2, 4), rng.uniform(2, 4, 4)])[:, None]
    X2 = 0.5 * rng.normal(size=(10, 2))
    in2 = 0.5 * rng.normal(size=(8, 2))
    ang = rng.uniform(0, 2 * np.pi, 8)
    ood2 = 3.0 * np.column_stack([np.cos(ang), np.sin(ang)])
    return {
        "1-D task": (X1, np.sin(3 * X1), in1, ood1),
        "2-D task": (X2, np.sin(2 * X2[:, :1]) * np.cos(X2[:, 1:]), in2, ood2),
    }


def run(out: Path, quick: bool = False, seed: int = 0) -> FigureResult:
    with Timer() as tm:
        arch = ne.mlp(1, "relu", sigma_w=1.5, sigma_b=0.5)
        widths = (256, 1024) if quick else (512, 4096)
        members, models, heads = (20, 2, 32) if quick else (64, 6, 64)
        steps = 300 if quick else 400
        # constrained layout leaves room for the suptitle above the two-line panel titles
        fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), layout="constrained")
        data = {"claim": CLAIM, "architecture": "mlp(depth=1, relu, sigma_w=1.5, sigma_b=0.5)", "widths": widths,
                "ensemble_members": members, "rnd_models": models, "heads": heads, "steps": steps, "tasks": {}}
        headline = {}
        for ax, (name, (X, Y, x_in, x_ood)) in zip(axes, tasks(seed).items()):
            x = np.vstack([x_in, x_ood])
            is_ood = np.r_[np.zeros(len(x_in), bool), np.ones(len(x_ood), bool)]
            lr = rnd_ratio.stable_lr(arch, X, 1.0)  # half the stability bound 2 / lambda_max
            exp = rnd_ratio.run(arch, X, Y, x, widths, models, heads, members, steps, lr, seed=seed)
            sigma_k = exp.sigma
            tdata = {"X": X, "Y": Y, "x_test": x, "ood": is_ood, "lr": lr, "two_sigma_k_analytic": 2 * sigma_k,
                     "cond_theta_XX": exp.cond}
            lo = hi = None
            for w, marker in zip(widths, ("o", "s")):
                sq = exp.residuals[w].transpose(1, 0, 2).reshape(len(x), -1) ** 2  # (n, R K) squared errors
                eps2 = sq.mean(axis=1)
                eps2_se = sq.std(axis=1, ddof=1) / np.sqrt(sq.shape[1])
                s2 = exp.members[w].var(0, ddof=1)
                s2_se = s2 * np.sqrt(2.0 / (members - 1))  # sd of a Gaussian sample variance
                for mask, col, where in ((~is_ood, "tab:blue", "in-distribution"), (is_ood, "tab:red", "out-of-distribution")):
                    ax.errorbar(2 * s2[mask], eps2[mask], xerr=2 * 2 * s2_se[mask], yerr=2 * eps2_se[mask],
                                fmt=marker, color=col, mfc=col if w == widths[1] else "none", ms=6, capsize=2,
                                elinewidth=0.7, label=f"{where}, width {w}")
                ratio = eps2 / (2 * s2)
                headline[f"{name}, n={w}: median eps^2/(2 s^2) in / out"] = \
                    f"{np.median(ratio[~is_ood]):.2f} / {np.median(ratio[is_ood]):.2f}"
                headline[f"{name}, n={w}: median eps^2/(2 Sigma_k) in / out"] = \
                    f"{np.median(eps2[~is_ood] / (2 * sigma_k[~is_ood])):.2f} / {np.median(eps2[is_ood] / (2 * sigma_k[is_ood])):.2f}"
                tdata[f"width_{w}"] = {"eps2": eps2, "eps2_se": eps2_se, "ensemble_var": s2,
                                       "two_ensemble_var": 2 * s2, "ensemble_var_se": s2_se}
                vals = np.r_[eps2, 2 * s2]
                lo = vals.min() if lo is None else min(lo, vals.min())
                hi = vals.max() if hi is None else max(hi, vals.max())
            line = np.array([lo / 2, hi * 2])
            ax.plot(line, line, "k--", lw=1, label="eps^2 = 2 s^2 (C6a)")
            ax.set(xscale="log", yscale="log", xlabel=r"2 x ensemble sample variance $2s^2(x)$",
                   ylabel=r"RND error $\epsilon^2(x)$ (mean over heads and models)",
                   title=f"{name} (d={X.shape[1]}): {len(X)} training inputs, {steps} GD steps\n"
                         f"cond(Theta_XX) = {exp.cond:.3g}")
            ax.legend(fontsize=7)
            ax.grid(True, which="both", alpha=0.3)
            data["tasks"][name] = tdata
        fig.suptitle(TITLE)
        png, js = save(fig, data, out, KEY)
    return FigureResult(
        KEY, CLAIM, TITLE, png, js,
        f"One-hidden-layer ReLU MLPs. Each point is a test input: y = RND error of {models} trained RND models with "
        f"K={heads} heads each, x = twice the sample variance of {members} independently trained ensemble members "
        f"(same architecture, width, lr and {steps} steps). Blue: test inputs drawn like the training inputs; red: "
        f"far outside them. Open markers: width {widths[0]}, filled: width {widths[1]}. Error bars: 2 Monte-Carlo "
        f"standard errors. C6a predicts the points on the dashed diagonal (up to finite-width bias).",
        headline, tm.seconds)
