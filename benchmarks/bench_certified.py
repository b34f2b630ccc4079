"""Level C (ball arithmetic, 128 bits) against the H level (mpmath, dps=50) on
the same computations at N = 64 training inputs (issue 21: "no slower").

    PYTHONPATH=. python benchmarks/bench_certified.py [--n 64] [--test 8] [--prec 128] [--dps 50]

Prints CPU seconds (``time.process_time``, one process) of each computation
at both levels, the relative radius of the certified result, and the ratio;
the certified checks of ``verify --levels C`` are also timed. Not a test:
speed is measured here, never asserted.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ntk_equiv import certified as C
from ntk_equiv import dynamics, rnd
from ntk_equiv.experiments.inputs import sphere_inputs
from ntk_equiv import mlp


def _cpu(fn):
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def _rel_radius(balls) -> float:
    return max(C.rad(v) / max(abs(C.mid(v)), 1e-300) for v in np.ravel(balls))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=64, help="training inputs N")
    p.add_argument("--test", type=int, default=8, help="test inputs")
    p.add_argument("--prec", type=int, default=128)
    p.add_argument("--dps", type=int, default=50)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    X, x = sphere_inputs(rng, args.n, 3), sphere_inputs(rng, args.test, 3)
    y = rng.standard_normal((args.n, 1))
    arch = mlp(2, "erf", 1.3, 0.3)
    z = np.vstack([x, X])
    rows = [
        ("kernel of N + n points", lambda: C.kernel(arch, z, prec=args.prec).ntk,
         lambda: arch.kernel(z, dps=args.dps)),
        ("Sigma_t, t = 1.3 (ensemble)", lambda: C.ensemble(arch, X, y, x, t=1.3, lr=0.5, prec=args.prec)[1],
         lambda: dynamics.ensemble(arch, X, y, x, t=1.3, lr=0.5, dps=args.dps)),
        ("RND covariance, t = inf", lambda: C.rnd_covariance(arch, X, x, prec=args.prec),
         lambda: rnd.rnd_covariance(arch, X, x, dps=args.dps)),
        ("NTK-GP posterior", lambda: C.gp_posterior(arch, X, y, x, prec=args.prec)[1],
         lambda: rnd.gp_posterior(arch, X, y, x, dps=args.dps)),
    ]
    print(f"N = {args.n}, n = {args.test}, erf MLP depth 2; C at {args.prec} bits vs H at dps={args.dps}")
    print(f"{'computation':<30} {'C cpu s':>9} {'H cpu s':>9} {'C/H':>6} {'C rel radius':>13}")
    for name, cert, high in rows:
        tc, balls = _cpu(cert)
        th, _ = _cpu(high)
        print(f"{name:<30} {tc:9.3f} {th:9.3f} {tc / th:6.2f} {_rel_radius(balls):13.2e}")

    from ntk_equiv.claims.registry import Config, load, run_check
    from ntk_equiv.claims.registry import REGISTRY

    load()
    print("\nregistered checks at the default scale (CPU s): C vs H")
    for cid in ("C3", "C5", "C6", "C6a", "C6b", "C7", "C7a", "C7b", "C9"):
        tc, rc = _cpu(lambda: run_check(cid, "C", Config(prec=args.prec)))
        th, rh = _cpu(lambda: run_check(cid, "H", Config(dps=args.dps))) if "H" in REGISTRY[cid].checks else (0, None)
        print(f"{cid:<5} C {tc:7.3f} ({'pass' if rc.passed else 'FAIL'})   H {th:7.3f} "
              f"({'pass' if rh is not None and rh.passed else '-'})")


if __name__ == "__main__":
    main()
