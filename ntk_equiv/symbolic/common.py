"""Small helpers shared by the proofs: one identity -> one :class:`Step`, and
the generic kernel blocks of docs/theory.md's notation."""
from __future__ import annotations

from .algebra import General
from .record import Step


def step(alg, name: str, lhs, rhs) -> Step:
    """``lhs == rhs`` in ``alg``: the simplified difference must be exactly 0."""
    ok, diff = alg.is_zero(lhs - rhs)
    return Step(name, lhs, rhs, diff, ok)


def kernel(alg, name: str, XX=None) -> dict:
    """Generic kernel blocks ``{xx, xX, XX}`` (symmetric ``xx`` and ``XX``)."""
    return {"xx": alg.symmetric(f"{name}_xx", "n"), "xX": alg.matrix(f"{name}_xX", "n", "N"),
            "XX": alg.symmetric(f"{name}_XX", "N") if XX is None else XX}


def ntk(alg, ridge=0) -> dict:
    """Generic NTK blocks with ``Theta_XX = T - lambda I`` for a generic symmetric
    ``T`` (a bijective reparametrisation: ``T = Theta_XX + lambda I`` is what
    the ridge solution inverts, so general-``N`` algebra can cancel ``T^{-1} T``)."""
    if ridge == 0:
        return kernel(alg, "Theta")
    T = alg.symmetric("T", "N")
    return kernel(alg, "Theta", XX=T - ridge * alg.eye("N"))


def minus(a: dict, b: dict) -> dict:
    return {k: a[k] - b[k] for k in a}


def default(alg):
    return General() if alg is None else alg
