"""``python -m ntk_equiv.symbolic [--full]``: run every S-level proof, print
each record's verdict and time, and the total (the issue's budget: < 60 s for
the default set: general N and explicit N = 2; ``--full`` adds explicit N = 3
and C7c's explicit N = 2, several minutes)."""
from __future__ import annotations

import sys
import time

from . import (MATRIX_PROOFS, algebras, prove_c3, prove_erf_dual, prove_named_duals, prove_one_layer_ntk,
                prove_relu_dual)


def main(argv: list[str]) -> int:
    full = "--full" in argv
    jobs = [("C1 relu", prove_relu_dual), ("C1 erf", prove_erf_dual), ("C1 leaky/sign/identity/sin/cos", prove_named_duals),
            ("C1/C2 one layer", prove_one_layer_ntk),
            ("C3", prove_c3)]
    for claim, fn in MATRIX_PROOFS.items():
        algs = algebras(full=full)
        if claim == "C7c" and not full:  # its explicit variant takes ~10 s
            algs = algs[:1]
        for alg in algs:
            label = "general N" if alg.method.startswith("general") else f"explicit N={alg.size['N']}"
            jobs.append((f"{claim} [{label}]", lambda fn=fn, alg=alg: fn(alg, strict=False)))
    start, ok = time.perf_counter(), True
    for name, job in jobs:
        t = time.perf_counter()
        proof = job()
        ok &= proof.proven
        print(f"{name:45s} {'PROVEN' if proof.proven else 'FAILED':7s} {time.perf_counter() - t:6.2f} s")
    print(f"{'total':45s} {'all proven' if ok else 'FAILURES':7s} {time.perf_counter() - start:6.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
