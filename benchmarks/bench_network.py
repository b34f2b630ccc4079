"""Speed and memory of the finite-width machinery (issue 3 targets).

Run: ``python benchmarks/bench_network.py``. Prints wall time and the peak of
numpy allocations (tracemalloc) for

* the layerwise empirical NTK at width 16384 with 64 inputs (one hidden layer;
  the full Jacobian would be 64 x ~98k floats per output, the layerwise one
  never forms it),
* the same for two hidden layers at width 4096 (a 4096^2 weight matrix),
* 20 full-batch GD steps of the nonlinear and the linearised network,
* ``linearised_predict`` at float64 and at dps=50 for N = 16 and 32 train points.
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np

import ntk_equiv as ne


def timed(label: str, fn, memory: bool = True):
    """Wall time of ``fn()``; then, if ``memory``, a second run under tracemalloc
    for the peak (tracemalloc slows Python-object code such as mpmath ~4x, so
    the two are never measured together)."""
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = ""
    if memory:
        tracemalloc.start()
        fn()
        peak = f"peak {tracemalloc.get_traced_memory()[1] / 2**20:8.1f} MiB"
        tracemalloc.stop()
    print(f"{label:<55s} {dt:8.3f} s   {peak}")
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8))
    net = ne.mlp(1, "relu", 1.4, 0.1).init(16384, seed=0)
    net.apply(x[:1])
    timed("empirical NTK, 1 hidden layer, width 16384, 64 inputs", lambda: net.empirical_ntk(x))
    net2 = ne.mlp(2, "erf", 1.4, 0.1).init(4096, seed=0)
    net2.apply(x[:1])
    timed("empirical NTK, 2 hidden layers, width 4096, 64 inputs", lambda: net2.empirical_ntk(x))
    xs, y = x[:16], rng.standard_normal((16, 1))
    lr = 1.0 / net2.lambda_max(xs)
    timed("20 GD steps, 2 hidden layers, width 4096, N=16", lambda: net2.train(xs, y, lr=lr, steps=20))
    lin = net2.linearize()
    timed("20 GD steps, linearised, width 4096, N=16", lambda: lin.train(xs, y, lr=lr, steps=20))
    for n_train in (16, 32):
        xt = rng.standard_normal((n_train + 4, 3))
        k = ne.mlp(2, "relu").kernel(xt).ntk
        f0, yy = rng.standard_normal((n_train + 4, 1)), rng.standard_normal((n_train, 1))
        for dps in (None, 50):
            timed(f"linearised_predict t=1, N={n_train}, dps={dps}",
                  lambda: ne.linearised_predict(k[:4, 4:], k[4:, 4:], f0[:4], f0[4:], yy, t=1.0, dps=dps),
                  memory=False)


if __name__ == "__main__":
    main()
