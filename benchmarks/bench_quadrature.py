"""Speed and accuracy of activations given as formulas (issue 11).

Kernels (NNGP + NTK) of ``mlp(depth, expr, sigma_w=1.3, sigma_b=0.2)`` on
standard normal inputs of dimension 3, for smooth expressions (``x*erf(x)``,
GELU as ``x*(1+erf(x/sqrt(2)))/2``, ``tanh(x)``), a kinked one
(``Max(x, 0) + 0.1*x``, also 200 and 1000 inputs; ``Max(x, 0)`` and
``Abs(x)`` against relu and abs) and a composite one (``exp(-x**2/2)*x``); beside every
time, the accuracy (``ntk_equiv.kernels.scaled_error``: relative to each
entry's Cauchy-Schwarz scale):

* float64 against a closed form where the expression has one (``erf(x)``,
  ``sin(x)``, ``Max(x, 0)`` and ``Abs(x)`` as expressions against the named
  activations), else against a
  ``dps=40`` run on the first 4 inputs (each entry depends on its pair only);
* ``dps=30/50`` against a run at ``dps + 20`` on the same inputs (1 pair only:
  the reference costs as much as the run).

Goals: float64, 200 inputs, depth 1, ``x*erf(x)`` < 2 s (was 261 s); float64,
1000 inputs, depth 3, GELU < 60 s; dps=50, one pair, depth 2, ``x*erf(x)`` <
5 s; dps=50, 16 inputs, depth 2, < 2 min; float64 kinked (``Max(x, 0) + 0.1*x``),
200 inputs, depth 1: a few seconds (the Cartesian rule took 10.6 s for 40 inputs);
act-after-act composites (``erf(Max(x, 0))``, ``erf(erf(x))``, ``Max(erf(x) - 3/10, 0)``,
``erf(Max(x, -1))``), float64, 200 inputs, depth 2: at most neural-tangents'
``ElementwiseNumerical(deg=25)`` time with 1e-11 accuracy against ``dps=30`` on the first 4
inputs (issue 16.6; ``benchmarks/nt_elementwise_numerical.py`` times neural-tangents on the
same rows, run with its own interpreter); ``erf(Max(x, 0))`` at ``dps=30``, 8 inputs, depth 2:
a few seconds;
float64 kinks away from 0 (hard-tanh ``Min(Max(x, -1), 1)``, relu6 ``Min(Max(x, 0), 6)``,
``Max(x - 1/2, 0)``), 200 inputs, depth 2: <= ~1 s (neural-tangents'
``ElementwiseNumerical(deg=25)``: ~1 s and ~1e-3 off at kinks; the Cartesian rule took
over 120 s), accuracy 1e-11 against ``dps=30`` on the first 4 inputs. The time of
the first call includes the one-off sympy analysis of the expression (about 0.3 s);
the second call's time is shown beside it, wall and CPU (on a loaded machine the
CPU time is the work done, the wall time includes the waits for a core).

Run: ``python benchmarks/bench_quadrature.py [--quick] [--skip-dps]``
(``OPENBLAS_NUM_THREADS=1`` for timings on a loaded machine).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

import ntk_equiv as ne
from ntk_equiv.kernels import scaled_error

SW, SB = 1.3, 0.2
GELU = "x*(1+erf(x/sqrt(2)))/2"
SMOOTH = ("x*erf(x)", GELU, "tanh(x)")
KINKED = "Max(x, 0) + 0.1*x"
#: kinks away from 0: the Price route of ntk_equiv.quadrature (issue 16.6)
SHIFTED = ("Min(Max(x, -1), 1)", "Min(Max(x, 0), 6)", "Max(x - 1/2, 0)")
COMPOSITE = "exp(-x**2/2)*x"
#: act-after-act composites as one expression (issue 16.2; the fused layers give the same
#: Activation expression): piecewise smooth with kinks at 0 or away from it (float64: the split
#: Hermite expansion hermite.split_expectations_f64, and quadrature.aligned_expectations_f64 for
#: |rho| near 1; was the polar rule, 24 CPU-s, and the Cartesian rule, ~16 CPU-s for 20 inputs),
#: and smooth of infinite order. At dps=30: the split Hermite expansion (split_expectations_mp).
COMPOSITES = (("erf(Max(x, 0))", 200), ("erf(erf(x))", 200), ("Max(erf(x) - 3/10, 0)", 200),
              ("erf(Max(x, -1))", 200))
CLOSED = {"erf(x)": "erf", "sin(x)": "sin", "Max(x, 0)": "relu", "Abs(x)": "abs"}


def inputs(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def error(k, ref) -> float:
    return max(float(scaled_error(k.nngp, ref.nngp)), float(scaled_error(k.ntk, ref.ntk)))


def float64_row(expr: str, n: int, depth: int, reference_dps: int | None, again: bool = False) -> str:
    arch = ne.mlp(depth, expr, sigma_w=SW, sigma_b=SB)
    x = inputs(n)
    cpu = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        k, secs = timed(lambda: arch.kernel(x))
    note = f" [{caught[0].category.__name__}]" if caught else ""
    if again:
        note += f" (first call {time.process_time() - cpu:.3f} s CPU;"
        cpu = time.process_time()
        _, warm = timed(lambda: arch.kernel(x))
        note += f" second call {warm:.3f} s wall, {time.process_time() - cpu:.3f} s CPU)"
    if expr in CLOSED:
        ref = ne.mlp(depth, CLOSED[expr], sigma_w=SW, sigma_b=SB).kernel(x)
        acc = f"vs closed form {error(k, ref):.1e}"
    elif reference_dps:
        m = 4
        ref = arch.kernel(x[:m], dps=reference_dps)
        sub = ne.Kernel(k.nngp[:m, :m], k.ntk[:m, :m])
        acc = f"vs dps={reference_dps} (first {m} inputs) {error(sub, ref):.1e}"
    else:
        acc = "accuracy not measured (--skip-dps)"
    return f"float64 {expr:<24} n={n:<5} depth {depth}: {secs:8.3f} s   {acc}{note}"


def dps_row(expr: str, n: int, depth: int, dps: int, reference: bool) -> str:
    arch = ne.mlp(depth, expr, sigma_w=SW, sigma_b=SB)
    x = inputs(n)
    try:
        k, secs = timed(lambda: arch.kernel(x, dps=dps))
    except ne.QuadratureError as exc:  # refused, with its reason (never a wrong number)
        return f"dps={dps:<3}  {expr:<24} n={n:<5} depth {depth}: QuadratureError: {str(exc)[:110]}"
    acc = ""
    if reference:
        ref = arch.kernel(x, dps=dps + 20)
        acc = f"vs dps={dps + 20} {error(k, ref):.1e} (target 1e-{dps - 5})"
    return f"dps={dps:<3}  {expr:<24} n={n:<5} depth {depth}: {secs:8.3f} s   {acc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the goal cases")
    parser.add_argument("--skip-dps", action="store_true", help="float64 only (no high-precision runs)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    ref_dps = None if args.skip_dps else 40
    print(float64_row("x*erf(x)", 200, 1, ref_dps) + "   (goal < 2 s; was 261 s)")
    print(float64_row(GELU, 1000, 3, ref_dps) + "   (goal < 60 s)")
    for expr in SHIFTED:
        shifted_ref = None if args.skip_dps else 30
        print(float64_row(expr, 200, 2, shifted_ref, again=True) + "   (goal <= ~1 s, 1e-11; was > 120 s)", flush=True)
    for expr, n in COMPOSITES:
        composite_ref = None if args.skip_dps else 30
        print(float64_row(expr, n, 2, composite_ref, again=True)
              + "   (goal <= neural-tangents' ElementwiseNumerical(deg=25), ~1 s idle; 1e-11)", flush=True)
    if not args.quick:
        for expr in ("erf(x)", "sin(x)"):
            print(float64_row(expr, 200, 3, None))
        for expr in (*SMOOTH, COMPOSITE):
            for n, depth in ((40, 1), (200, 1), (200, 3), (1000, 1), (1000, 3)):
                if (expr, n, depth) in (("x*erf(x)", 200, 1), (GELU, 1000, 3)):
                    continue
                print(float64_row(expr, n, depth, ref_dps), flush=True)
        # kinked (kinks at 0): the polar rule; was 10.6 s (40 inputs, depth 1) and 86 s (depth 3)
        for n, depth in ((40, 1), (40, 3), (200, 1), (200, 3), (1000, 1)):
            print(float64_row(KINKED, n, depth, ref_dps), flush=True)
        for expr in ("Max(x, 0)", "Abs(x)"):
            for n, depth in ((200, 1), (200, 3)):
                print(float64_row(expr, n, depth, None), flush=True)
    if args.skip_dps:
        return
    print(dps_row("x*erf(x)", 2, 2, 50, True) + "   (goal < 5 s)")
    print(dps_row("x*erf(x)", 16, 2, 50, False) + "   (goal < 120 s)")
    print(dps_row("erf(Max(x, 0))", 8, 2, 30, False) + "   (goal: a few seconds; was ~1 min per entry)", flush=True)
    if not args.quick:
        for expr in (*SMOOTH, COMPOSITE):
            for dps in (30, 50):
                for n in (1, 4, 16):
                    print(dps_row(expr, n, 2, dps, n == 1), flush=True)
        # kinked: the polar 2-D rule (~seconds per entry at 50 digits): one input only
        for dps in (30, 50):
            print(dps_row(KINKED, 1, 2, dps, False), flush=True)


if __name__ == "__main__":
    main()
