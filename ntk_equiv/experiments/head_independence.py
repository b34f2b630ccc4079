"""Prop 5.5 of the paper at finite width: the ``K`` heads of a network with
shared hidden layers are independent at every ``t`` only in the limit.

What shrinks, and how fast (measured here, derived in
:func:`ntk_equiv.symbolic.prove_prop_5_5`):

* the **cross-head coupling** of a trained network: head 1's response to a
  change ``delta`` of head 2's labels, ``f_1^{Y_2 + delta}(x) - f_1^{Y_2}(x)``
  after ``k`` steps of gradient descent. In the limit it is 0 for every ``t``
  (the joint training operator is ``A_t (x) I_K``); at width ``n`` it is driven
  by the cross-head NTK block, whose second moment is ``O(1/n)`` (one hidden
  layer, exactly), so its size is ``O(n^{-1/2})``: a fitted log-log slope
  ``-1/2``;
* the **cross-head covariance over seeds** ``Cov(f_1(x), f_2(x))`` of trained
  outputs is much smaller: it is exactly 0 at initialisation at every width
  (the readout rows are independent and centred) and stays 0 during training
  without labels (flipping head 1's readout row flips ``f_1`` and leaves the
  hidden layers' trajectory unchanged); with labels it is at most second
  order in the cross block (expected ``O(1/n)``). It is measured as
  z-scores against 0, which it is within its Monte-Carlo error at every
  width tried (64-2048): the ``n^{-1/2}`` rate belongs to the coupling, not to
  this covariance.

Normalisation: the response of head 2 itself in the limit,
``Theta_xX A_k delta`` (analytic NTK), so the coupling is a relative size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import formulas
from ..precision import F64
from .inputs import child_seed, condition_number, sphere_inputs, spread_inputs
from .stats import fit_rate


@dataclass
class HeadIndependence:
    """Per width: ``coupling[w]`` (one relative rms cross-head response per
    seed) and ``cross_z[w]`` (z-scores of the seed-average of
    ``(f_1 - mean)(f_2 - mean)`` against 0, per test input); the fitted
    log-log slope of the rms coupling with its standard error; ``cond`` =
    condition number of the analytic ``Theta_XX``."""

    widths: tuple
    heads: int
    seeds: int
    steps: int
    cond: float
    coupling: dict = field(default_factory=dict)
    cross_z: dict = field(default_factory=dict)
    slope: float = math.nan
    slope_se: float = math.nan
    rms: list = field(default_factory=list)


def head_independence(arch, widths, seeds: int, heads: int = 2, steps: int = 30, n_train: int = 4, n_test: int = 3,
                      d: int = 2, seed: int = 0) -> HeadIndependence:
    """Train ``seeds`` networks per width with ``heads`` outputs twice from the
    same initialisation: on ``Y`` for every head, and with head 2's labels
    moved by ``delta`` (a fixed random vector); lr ``0.5 / lambda_max(Theta_XX)``
    (a factor-2 margin for the multi-head empirical NTK), ``steps`` steps."""
    rng = np.random.default_rng(seed)
    X, x = spread_inputs(rng, n_train, d), sphere_inputs(rng, n_test, d)
    Y = np.sin(X.sum(axis=1, keepdims=True))
    delta = rng.standard_normal((n_train, 1))
    z = np.vstack([x, X])
    theta = arch.kernel(z).ntk
    T_xX, T_XX = theta[:n_test, n_test:], theta[n_test:, n_test:]
    lr = 0.5 / float(np.linalg.eigvalsh(T_XX)[-1])
    A = formulas.train_operator(T_XX, F64, lr=lr, steps=steps)
    scale = float(np.sqrt(np.mean((T_xX @ A @ delta) ** 2)))  # head 2's own response, in the limit
    Ya = np.repeat(Y, heads, axis=1)
    Yb = Ya.copy()
    Yb[:, 1:2] += delta
    out = HeadIndependence(tuple(widths), heads, seeds, steps, condition_number(T_XX))
    for w in widths:
        resp, fa = [], []
        for s in range(seeds):
            net = arch.init(w, out_dim=heads, seed=child_seed(seed, w, s), in_dim=d)
            a = net.train(X, Ya, lr=lr, steps=steps, check_stability=False).apply(x)
            b = net.train(X, Yb, lr=lr, steps=steps, check_stability=False).apply(x)
            resp.append(float(np.sqrt(np.mean((b[:, 0] - a[:, 0]) ** 2))) / scale)
            fa.append(a)
        out.coupling[w] = np.array(resp)
        f = np.array(fa)                               # (seeds, n_test, heads)
        c = f - f.mean(axis=0)
        prod = c[:, :, 0] * c[:, :, 1]
        out.cross_z[w] = prod.mean(axis=0) / (prod.std(axis=0, ddof=1) / math.sqrt(seeds))
    fit = fit_rate(np.array(widths, float), np.array([out.coupling[w] for w in widths]))
    out.slope, out.slope_se, out.rms = fit.slope, fit.stderr, fit.rms.tolist()
    return out
