"""A 20 000-row kernel within memory, and refused under an address-space limit (issue 19 item 3).

``mlp(1).kernel`` of 20 000 inputs: the result is two 20 000 x 20 000 float64
matrices (NNGP and NTK, 6.4 GB); the kernel is formed in tiles, each with its
own block of the Gram matrix, so the peak is the result plus a few MB per
thread. Run twice in child processes: without a limit it completes (wall
time and peak resident memory printed); under ``ulimit -v 3000000``
(``RLIMIT_AS`` of 3e6 KB, set in the child before it starts) it raises
``ResourceError`` before allocating, naming the amount and the limit.

Run: ``python benchmarks/bench_large_kernel.py [--rows N] [--limit-kb KB]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys, time
import numpy as np
import ntk_equiv as ne
x = np.random.default_rng(0).standard_normal(({rows}, 8))
start = time.perf_counter()
try:
    k = ne.mlp(1).kernel(x)
except ne.ResourceError as e:
    print(f"ResourceError after {{time.perf_counter() - start:.2f}} s: {{e}}")
    sys.exit(0)
print(f"completed in {{time.perf_counter() - start:.1f}} s: nngp and ntk {{k.nngp.shape}}, "
      f"{{(k.nngp.nbytes + k.ntk.nbytes) / 1e9:.2f}} GB")
"""


def run(rows: int, limit_kb: int | None) -> tuple[str, float, float]:
    """The child's output line, its wall time and its peak RSS in GB."""
    def cap():
        if limit_kb is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_kb * 1024, resource.getrlimit(resource.RLIMIT_AS)[1]))

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD.format(rows=rows)], preexec_fn=cap, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far
    text = out.stdout.strip() or out.stderr.strip().splitlines()[-1]
    return text, wall, max(peak, before) * 1024 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--limit-kb", type=int, default=3000000)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    text, wall, _ = run(args.rows, args.limit_kb)
    print(f"under RLIMIT_AS = {args.limit_kb} KB (ulimit -v): {text} [child wall {wall:.1f} s]")
    text, wall, peak = run(args.rows, None)
    result = 2 * 8 * args.rows**2 / 1e9
    print(f"no limit: {text} [child wall {wall:.1f} s, peak RSS {peak:.2f} GB = result {result:.2f} GB "
          f"+ {peak - result:.2f} GB]")


if __name__ == "__main__":
    main()
