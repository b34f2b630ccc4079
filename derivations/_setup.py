"""Shared preamble of the derivation notebooks (imported by each as ``from _setup import *``).

* puts the repository on ``sys.path`` (so ``python derivations/0X_name.py`` works from anywhere),
* ``FAST``: ``NTK_EQUIV_FAST=1`` (set by ``tests/test_derivations.py``) shrinks widths and sample sizes,
* ``mpmath.mp.dps = 60`` for the notebooks' own arithmetic on 50-digit results,
* ``OUT``: ``derivations/out/``, where every figure is written (matplotlib, Agg backend),
* ``describe(proof)``: prints a proof record (short expressions, LaTeX in Jupyter); ``show(proof)`` also
  fails loudly if it is not proven.
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


SHORT = 80  # longest expression shown inline; longer ones are named, not printed


def _brief(expr) -> str:
    text = str(expr)
    return text if len(text) <= SHORT else f"<a {len(text)}-character expression>"


def _latex_display(step) -> bool:
    """In Jupyter, the identity as displayed LaTeX (False outside a notebook)."""
    try:
        from IPython import get_ipython
        from IPython.display import Math, display
    except ImportError:
        return False
    if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
        return False
    import sympy

    tex = f"{sympy.latex(step.lhs)} = {sympy.latex(step.rhs)}"
    if len(tex) > 6 * SHORT:  # too long to read even typeset
        return False
    display(Math(tex))
    return True


def show(proof, full: bool = False):
    """:func:`describe` a proof record; raise if it is not proven."""
    describe(proof, full)
    assert proof.proven, proof
    return proof


def describe(proof, full: bool = False):
    """Print a proof record: statement, assumptions, and each identity with
    its simplified difference (sides shown only when short; LaTeX in
    Jupyter; ``full=True``: every expression in full)."""
    if full:
        print(proof)
    else:
        import textwrap

        print(f"[{proof.claim}] {'PROVEN' if proof.proven else 'FAILED'} ({proof.method})")
        print(textwrap.fill(proof.statement, 100, initial_indent="  statement: ", subsequent_indent="    "))
        print(textwrap.fill("; ".join(proof.assumptions), 100, initial_indent="  assuming: ",
                            subsequent_indent="    "))
        for step in proof.steps:
            verdict = "simplifies to exactly 0" if step.holds else f"is NOT 0: {_brief(step.difference)}"
            print(f"  {step.name}: lhs - rhs {verdict}")
            if not _latex_display(step):
                lhs, rhs = _brief(step.lhs), _brief(step.rhs)
                if not lhs.startswith("<") or not rhs.startswith("<"):
                    print(f"      {lhs}  ==  {rhs}")
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
