"""Figure C4: trained finite-width networks approach the linearised prediction
with the analytic NTK as the width grows (Lee et al. 2019).

A regression task on the unit circle (a 1-D sweep over the angle). For each width ``n`` and seed, a network is drawn
(``arch.init``) and trained by full-batch gradient descent
(``Network.train``, sum loss, ``k`` steps of size ``eta``). Its prediction is
compared with C3's ``f_0(x) + Theta_xX A_k (Y - f_0(X))`` computed by
``ne.linearised_predict`` from the *analytic* ``Theta`` and the network's own
``f_0`` (so the comparison isolates the kernel and training, not the draw).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import ntk_equiv as ne

from .common import FigureResult, Timer, loglog_slope, save

KEY, CLAIM = "c4_trained_vs_linearised", "C4"
TITLE = "C4: wide trained networks follow the linearised (NTK) dynamics"


def circle(angle) -> np.ndarray:
    """Inputs on the unit circle: the sweep is 1-D (the angle) and the train
    NTK is well conditioned (a line through 0 with a bias is not: its smallest
    eigenvalues are ~1e-3 of the largest, which inflates the constant of C4)."""
    a = np.asarray(angle, float)
    return np.column_stack([np.cos(a), np.sin(a)])


def task(seed: int):
    """Six noisy samples of ``sin(2a) + cos(a)/2`` at angles ``a`` on the circle,
    and a test sweep over the whole circle."""
    rng = np.random.default_rng(seed)
    a = np.sort(rng.uniform(0, 2 * np.pi, size=6))
    Y = (np.sin(2 * a) + 0.5 * np.cos(a) + 0.05 * rng.normal(size=a.shape))[:, None]
    sweep = np.linspace(0, 2 * np.pi, 91)
    return a, Y, sweep


ARCHS = {  # label -> (depth, widths quick, widths full, seeds quick, seeds full)
    "ReLU, L=1": (1, [64, 256, 1024, 4096], [64, 256, 1024, 4096, 16384], 4, 8),
    "ReLU, L=2": (2, [64, 128, 256, 512], [64, 128, 256, 512, 1024], 2, 4),
}


def run(out: Path, quick: bool = False, seed: int = 0) -> FigureResult:
    with Timer() as tm:
        a_train, Y, sweep = task(seed)
        X, x = circle(a_train), circle(sweep)
        n, steps = len(x), 200
        fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.4))
        data = {"claim": CLAIM, "train_angles": a_train, "Y": Y, "sweep_angles": sweep, "steps": steps,
                "archs": {}}
        headline = {}
        for (label, (depth, wq, wf, sq, sf)), col in zip(ARCHS.items(), ("tab:blue", "tab:green")):
            widths, seeds = (wq, sq) if quick else (wf, sf)
            arch = ne.mlp(depth, "relu", sigma_w=1.5, sigma_b=0.1)
            k = arch.kernel(np.vstack([x, X]))
            T_xX, T_XX = k.ntk[:n, n:], k.ntk[n:, n:]
            lr = 0.5 / float(np.linalg.eigvalsh(T_XX)[-1])  # half the analytic stability bound
            errs = np.zeros((len(widths), seeds))
            curves = {}
            for i, w in enumerate(widths):
                for s in range(seeds):
                    net = arch.init(w, seed=seed * 1000 + s, in_dim=2)
                    f0x, f0X = net.apply(x), net.apply(X)
                    lin = ne.linearised_predict(T_xX, T_XX, f0x, f0X, Y, lr=lr, steps=steps)
                    trained = net.train(X, Y, lr=lr, steps=steps).apply(x)
                    # relative to how far training moved the outputs (f_0 itself is O(1) random)
                    errs[i, s] = np.sqrt(np.mean((trained - lin) ** 2) / np.mean((lin - f0x) ** 2))
                    if s == 0 and depth == 1 and w in (widths[0], widths[-1]):
                        curves[w] = {"trained": trained[:, 0], "linearised": lin[:, 0], "f0": f0x[:, 0]}
            mean, sem = errs.mean(1), errs.std(1, ddof=1) / np.sqrt(seeds)
            slope, c = loglog_slope(widths, mean)
            b.errorbar(widths, mean, yerr=sem, marker="o", capsize=3, color=col,
                       label=f"{label}: fitted slope {slope:.2f}")
            b.plot(widths, np.exp(c) * np.asarray(widths, float) ** slope, ":", color=col)
            data["archs"][label] = {"depth": depth, "sigma_w": 1.5, "sigma_b": 0.1, "lr": lr, "widths": widths,
                                    "seeds": seeds, "relative_rms_error": errs, "mean": mean, "sem": sem,
                                    "slope": slope, "curves": {str(w): cv for w, cv in curves.items()}}
            headline[f"{label} fitted slope"] = round(slope, 3)
            headline[f"{label} error at n={widths[-1]}"] = float(mean[-1])
            if depth == 1:
                for (w, cv), c2 in zip(curves.items(), ("tab:orange", "tab:blue")):
                    a.plot(sweep, cv["trained"], color=c2, lw=2, label=f"trained network, n={w}")
                    a.plot(sweep, cv["linearised"], "--", color="k", lw=1,
                           label=f"linearised, analytic NTK (n={w}'s f_0)")
        w0 = np.asarray(ARCHS["ReLU, L=1"][1 if quick else 2], float)
        ref = data["archs"]["ReLU, L=1"]["mean"][0]
        b.plot(w0, ref * (w0 / w0[0]) ** -0.5, "k--", lw=1, label="reference slope -1/2")
        a.plot(a_train, Y[:, 0], "ko", ms=5, label="training data")
        a.set(xlabel="input angle a (x = (cos a, sin a))", ylabel="network output f_t(x)",
              title=f"1 hidden layer, after {steps} GD steps, eta = 0.5/lambda_max")
        a.legend(fontsize=7)
        b.set(xscale="log", yscale="log", xlabel="width n",
              ylabel="RMS(trained - linearised) / RMS(linearised - f_0)",
              title="distance to the linearised prediction")
        b.legend(fontsize=8)
        b.grid(True, which="both", alpha=0.3)
        fig.suptitle(TITLE)
        png, js = save(fig, data, out, KEY)
    return FigureResult(
        KEY, CLAIM, TITLE, png, js,
        f"ReLU MLPs (sigma_w=1.5, sigma_b=0.1) on inputs on the unit circle, 6 training points, {steps} steps "
        f"of gradient descent with eta = 0.5/lambda_max(Theta_XX). Left: trained network (solid) vs C3's "
        f"linearised prediction with the analytic NTK and the same f_0 (dashed) at the smallest and largest "
        f"width. Right: RMS distance over the sweep relative to how far training moved the outputs, mean over "
        f"seeds with one standard error; C4 predicts O(n^-1/2).",
        headline, tm.seconds)
