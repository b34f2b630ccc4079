"""Shared preamble of the derivation notebooks (imported by each as ``from _setup import *``).

* puts the repository on ``sys.path`` (so ``python derivations/0X_name.py`` works from anywhere),
* ``FAST``: ``NTK_EQUIV_FAST=1`` (set by ``tests/test_derivations.py``) shrinks widths and sample sizes,
* ``mpmath.mp.dps = 60`` for the notebooks' own arithmetic on 50-digit results,
* ``OUT``: ``derivations/out/``, where every figure is written (matplotlib, Agg backend),
* ``show(proof)``: prints a proof record and fails loudly if it is not proven.
"""
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401
import mpmath  # noqa: E402,F401
import numpy as np  # noqa: E402,F401

import ntk_equiv as ne  # noqa: E402,F401

FAST = os.environ.get("NTK_EQUIV_FAST", "") == "1"
# differences of 50-digit results taken in the notebooks (outside the library's
# own precision contexts) must not be rounded to mpmath's default 15 digits
mpmath.mp.dps = 60
OUT = HERE / "out"
OUT.mkdir(exist_ok=True)


def show(proof):
    """Print a proof record (statement, assumptions, each identity and its
    simplified difference); raise if it is not proven."""
    print(proof)
    assert proof.proven, proof
    return proof


def max_abs(a) -> float:
    """max |entry| of a float or mpmath matrix, as a float (for printing and assertions)."""
    if isinstance(a, mpmath.matrix):
        return float(max(abs(v) for v in a))
    return float(np.max(np.abs(np.asarray(a, dtype=float))))


def save(fig, name: str) -> pathlib.Path:
    path = OUT / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure written to {path}")
    return path
