"""neural-tangents' ``ElementwiseNumerical(deg=25)`` on the kinked rows of
bench_quadrature.py (issue 16.6's yardstick): ``mlp(2, expr, sigma_w=1.3, sigma_b=0.2)``
on 200 standard normal inputs of dimension 3 (seed 0), NNGP + NTK, first and second call
(wall and CPU), and, when ``--ours FILE.npz`` holds our float64 kernels of the same
architecture and inputs, the scaled error of neural-tangents' against them.

Run with neural-tangents' interpreter: ``/work/ntvenv/bin/python
benchmarks/nt_elementwise_numerical.py`` (jax 0.4.30, neural-tangents 0.6.5; CPU).
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf
from neural_tangents import stax

jax.config.update("jax_enable_x64", True)

ROWS = {
    "erf(Max(x, 0))": lambda x: erf(jnp.maximum(x, 0.0)),
    "erf(Max(x, -1))": lambda x: erf(jnp.maximum(x, -1.0)),
    "Max(erf(x) - 3/10, 0)": lambda x: jnp.maximum(erf(x) - 0.3, 0.0),
    "Min(Max(x, -1), 1)": lambda x: jnp.clip(x, -1.0, 1.0),
}


def kernel_fn(fn):
    act = stax.ElementwiseNumerical(fn, deg=25)
    return stax.serial(stax.Dense(1, W_std=1.3, b_std=0.2), act, stax.Dense(1, W_std=1.3, b_std=0.2), act,
                       stax.Dense(1, W_std=1.3, b_std=0.2))[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", help="npz with arrays '<expr>/nngp' and '<expr>/ntk' (our float64 kernels)")
    args = parser.parse_args()
    ours = np.load(args.ours) if args.ours else None
    x = np.random.default_rng(0).standard_normal((200, 3))
    for expr, fn in ROWS.items():
        kf = kernel_fn(fn)
        times = []
        for _ in range(2):
            cpu, wall = time.process_time(), time.perf_counter()
            k = kf(x, None, ("nngp", "ntk"))
            nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
            times.append((time.perf_counter() - wall, time.process_time() - cpu))
        acc = ""
        if ours is not None and f"{expr}/nngp" in ours:
            errs = []
            for got, ref in ((nngp, ours[f"{expr}/nngp"]), (ntk, ours[f"{expr}/ntk"])):
                d = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
                errs.append(np.max(np.abs(got - ref) / d))
            acc = f"   scaled error vs ours {max(errs):.1e}"
        print(f"nt ElementwiseNumerical(deg=25) {expr:<24} n=200 depth 2: first {times[0][0]:.3f} s wall "
              f"{times[0][1]:.3f} s CPU, second {times[1][0]:.3f} s wall {times[1][1]:.3f} s CPU{acc}", flush=True)


if __name__ == "__main__":
    main()
