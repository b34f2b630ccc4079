"""Figure C2: the empirical NTK of random width-n networks converges to the
analytic Theta at rate n^{-1/2} (log-log plot with fitted slopes).

For each architecture and width ``n`` the experiment
:func:`ntk_equiv.experiments.kernel_convergence.ntk_error_sweep` (the one the C2
check asserts on) draws ``seeds`` networks, computes ``Network.empirical_ntk(x)``
on fixed inputs and its relative Frobenius error ``||Theta_hat - Theta||_F / ||Theta||_F``
against ``arch.kernel(x).ntk``, and fits the log-log slope of the rms error with
its standard error. C2 predicts -1/2.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import ntk_equiv as ne
from ntk_equiv.experiments.kernel_convergence import ntk_error_sweep

from .common import FigureResult, Timer, save

KEY, CLAIM = "c2_kernel_convergence", "C2"
TITLE = "C2: empirical NTK -> analytic NTK at rate n^(-1/2)"

ARCHS = {  # label -> (depth, activation, sigma_w, sigma_b)
    "ReLU, L=1": (1, "relu", 1.5, 0.1),
    "ReLU, L=2": (2, "relu", 1.5, 0.1),
    "erf, L=3": (3, "erf", 1.5, 0.2),
}


def run(out: Path, quick: bool = False, seed: int = 0) -> FigureResult:
    with Timer() as tm:
        widths = [32, 64, 128, 256, 512, 1024] if quick else [32, 64, 128, 256, 512, 1024, 2048, 4096]
        seeds = 6 if quick else 8
        x = np.random.default_rng(seed).normal(size=(6, 3))
        data = {"claim": CLAIM, "widths": widths, "seeds": seeds, "inputs": x, "archs": {}}
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for label, (depth, act, sw, sb) in ARCHS.items():
            arch = ne.mlp(depth, act, sigma_w=sw, sigma_b=sb)
            fit = ntk_error_sweep(arch, x, widths, seeds, seed=seed * 1000 + depth)
            errs = fit.errors
            mean, sem = errs.mean(1), errs.std(1, ddof=1) / np.sqrt(seeds)
            slope = fit.slope
            lw = np.log(np.asarray(widths, float))
            c = np.mean(np.log(mean)) - slope * lw.mean()  # the fitted slope drawn through the means
            ax.errorbar(widths, mean, yerr=sem, marker="o", capsize=3,
                        label=f"{label}: slope {slope:.2f} +- {fit.stderr:.2f}")
            ax.plot(widths, np.exp(c + slope * lw), ":", color="grey", lw=1)
            data["archs"][label] = {"depth": depth, "activation": act, "sigma_w": sw, "sigma_b": sb,
                                    "errors": errs, "mean": mean, "sem": sem, "rms": fit.rms, "slope": slope,
                                    "slope_stderr": fit.stderr}
        ref = np.asarray(widths, float)
        first = data["archs"]["ReLU, L=2"]["mean"][0]
        ax.plot(ref, first * (ref / ref[0]) ** -0.5, "k--", lw=1, label="reference slope -1/2")
        ax.set(xscale="log", yscale="log", xlabel="width n (hidden units per layer)",
               ylabel=r"$\|\hat\Theta_n-\Theta\|_F\,/\,\|\Theta\|_F$ (mean over seeds)",
               title=TITLE)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        png, js = save(fig, data, out, KEY)
    slopes = {k: round(v["slope"], 3) for k, v in data["archs"].items()}
    return FigureResult(
        KEY, CLAIM, TITLE, png, js,
        f"Relative Frobenius error of the empirical NTK of {seeds} random networks per width against the "
        f"analytic NTK on 6 fixed inputs in R^3, error bars one standard error over seeds; dotted lines are "
        f"the log-log fits of the rms error (slope +- standard error from the seed scatter). C2 predicts slope -1/2.",
        {"fitted slopes": slopes, "widths": f"{widths[0]}..{widths[-1]}", "seeds per width": seeds},
        tm.seconds)
