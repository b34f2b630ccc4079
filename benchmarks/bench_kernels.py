"""Speed of the infinite-width kernels (issue 2).

Prints seconds for NNGP + NTK of a depth-5 ReLU MLP on 2000 inputs of
dimension 32 (one symmetric 2000 x 2000 kernel) for ``ntk_equiv`` and for a
deliberately plain per-layer numpy implementation kept here as the baseline
(full matrices, ``arccos`` of the correlation: how a straightforward
implementation is written). Target: ours <= 0.5 x baseline. Also prints the
dps=50 time for 64 inputs, depth 3 (target < 3 s), and the largest
difference between ours and the baseline (relative to the diagonal scale) so
the two are known to compute the same thing (it is ~1e-8: the baseline's
arccos error near correlation 1; ours agrees with dps=50 to ~1e-15, see
tests/test_kernels.py).

Where ours saves time: the upper triangle only (pair list), processed in
cache-sized tiles that carry their own points' self pairs (the variances
every layer reads; ntk_equiv.kernels), in-place updates, and boolean-mask
gathers/scatters. It also carries two extra arrays per pair
(the Cauchy-Schwarz gaps that make the angles accurate), which the baseline
does not.

The CNN case (issue 12): NNGP + NTK of 128 images 8x8x3 through three
Conv 3x3 SAME + ReLU layers, GlobalAvgPool and Dense (the full 64 x 64
spatial covariance per pair of images, since global pooling mixes
positions), timed with its peak memory (tracemalloc, on a separate run).
neural-tangents needs 12-23 s and 3.8 GB for it on this machine (issue 12).

Run: ``python benchmarks/bench_kernels.py [--repeat R]``.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc

import numpy as np

import ntk_equiv as ne


def baseline_relu_mlp(x: np.ndarray, depth: int, sigma_w: float, sigma_b: float):
    """NNGP and NTK of a ReLU MLP, the plain way: full n x n matrices,
    ``arccos`` of the correlation (docs/theory.md C1 with the arc-cosine kernel)."""
    sw2, sb2 = sigma_w**2, sigma_b**2
    k = sw2 * (x @ x.T) / x.shape[1] + sb2
    theta = k.copy()
    for _ in range(depth):
        diag = np.sqrt(np.diag(k))
        norms = np.outer(diag, diag)
        corr = np.clip(k / norms, -1.0, 1.0)
        angle = np.arccos(corr)
        v = norms * (np.sin(angle) + (np.pi - angle) * np.cos(angle)) / (2 * np.pi)
        vdot = (np.pi - angle) / (2 * np.pi)
        k = sw2 * v + sb2
        theta = k + sw2 * vdot * theta
    return k, theta


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('num_threads')} threads" for i in threadpool_info())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, BLAS: {blas_info()}")

    rng = np.random.default_rng(0)
    n, d, depth, sw, sb = 2000, 32, 5, 1.5, 0.1
    x = rng.standard_normal((n, d))
    arch = ne.mlp(depth, "relu", sigma_w=sw, sigma_b=sb)
    ours = best_of(lambda: arch.kernel(x), args.repeat)
    base = best_of(lambda: baseline_relu_mlp(x, depth, sw, sb), args.repeat)
    k, (kb, tb) = arch.kernel(x), baseline_relu_mlp(x, depth, sw, sb)
    scale = np.sqrt(np.outer(np.diag(k.ntk), np.diag(k.ntk)))
    diff = max(np.max(np.abs(k.nngp - kb) / scale), np.max(np.abs(k.ntk - tb) / scale))
    print(f"float64 NNGP+NTK, depth {depth} ReLU, {n} x {d}: ours {ours:.3f} s "
          f"({ne.kernels.KERNEL_THREADS} threads over independent chunks), baseline {base:.3f} s, "
          f"ratio {ours / base:.2f} (target <= 0.5); max |ours - baseline| / scale = {diff:.1e}")
    # the same on one thread: what the algorithm alone (half the pairs, in-place, cache-sized
    # chunks) gains over the baseline, which numpy runs on one thread too
    threads, ne.kernels.KERNEL_THREADS = ne.kernels.KERNEL_THREADS, 1
    try:
        single = best_of(lambda: arch.kernel(x), args.repeat)
    finally:
        ne.kernels.KERNEL_THREADS = threads
    print(f"  single-threaded: ours {single:.3f} s, ratio {single / base:.2f}")

    imgs = np.random.default_rng(1).standard_normal((128, 8, 8, 3))
    cnn = ne.serial(*[layer for _ in range(3) for layer in (ne.Conv((3, 3), padding="SAME", sigma_w=1.5, sigma_b=0.1),
                                                            ne.Relu())],
                    ne.GlobalAvgPool(), ne.Dense(1.5, 0.1))
    t_cnn = best_of(lambda: cnn.kernel(imgs), 1)
    tracemalloc.start()
    cnn.kernel(imgs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"float64 NNGP+NTK, CNN (3 x Conv 3x3 SAME + ReLU, GlobalAvgPool, Dense), 128 x 8x8x3: "
          f"{t_cnn:.2f} s, peak memory {peak / 2**20:.0f} MiB (neural-tangents: 12-23 s, 3.8 GB)")

    x64 = rng.standard_normal((64, d))
    arch3 = ne.mlp(3, "relu", sigma_w=sw, sigma_b=sb)
    hp = best_of(lambda: arch3.kernel(x64, dps=50), 1)
    print(f"dps=50 NNGP+NTK, depth 3 ReLU, 64 x {d}: {hp:.3f} s (target < 3 s)")


if __name__ == "__main__":
    main()
