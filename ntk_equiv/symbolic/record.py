"""What a symbolic proof returns: a record of the identities it reduced to 0.

A proof is a list of :class:`Step` s, each an identity ``lhs == rhs`` whose
simplified difference is exactly zero (sympy's ``0`` / ``ZeroMatrix`` or every
entry cancelling to ``0``), no floating point anywhere. :func:`conclude`
turns the steps into a :class:`Proof` and raises
:class:`~ntk_equiv.errors.ClaimFailure` if any difference is not 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import ClaimFailure


@dataclass
class Step:
    """One identity of a proof: ``lhs - rhs`` simplified to ``difference``."""

    name: str
    lhs: Any
    rhs: Any
    difference: Any
    holds: bool

    def __str__(self) -> str:
        mark = "0" if self.holds else f"NOT 0: {_short(self.difference)}"
        return f"{self.name}: {_short(self.lhs)} - ({_short(self.rhs)}) -> {mark}"


@dataclass
class Proof:
    """Record of an exact proof of (part of) a docs/theory.md claim.

    Attributes
    ----------
    claim : claim id (``"C7a"``).
    statement : the identity proven, in docs/theory.md notation.
    method : how (``"general N, sympy MatrixSymbol"``, ``"explicit N=3"``, ...).
    assumptions : what the symbols stand for (domains, symmetry, independence).
    steps : the identities, each simplified to exactly 0.
    proven : all steps hold.
    """

    claim: str
    statement: str
    method: str
    assumptions: tuple[str, ...]
    steps: list[Step] = field(default_factory=list)

    @property
    def proven(self) -> bool:
        return bool(self.steps) and all(s.holds for s in self.steps)

    @property
    def difference(self):
        """The simplified differences, one per step (all 0 when proven)."""
        return [s.difference for s in self.steps]

    def __str__(self) -> str:
        head = f"[{self.claim}] {'PROVEN' if self.proven else 'FAILED'} ({self.method}): {self.statement}"
        lines = [head, "  assuming: " + "; ".join(self.assumptions)]
        lines += ["  " + str(s) for s in self.steps]
        return "\n".join(lines)


def _short(expr: Any, limit: int = 160) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def conclude(claim: str, statement: str, method: str, assumptions: Sequence[str], steps: Sequence[Step],
             strict: bool = True) -> Proof:
    """A :class:`Proof` of ``steps``; with ``strict`` raise :class:`ClaimFailure`
    unless every step's difference is exactly 0."""
    proof = Proof(claim, statement, method, tuple(assumptions), list(steps))
    if strict and not proof.proven:
        bad = [s for s in proof.steps if not s.holds]
        raise ClaimFailure(
            f"{claim} ({method}) is not proven: "
            + "; ".join(f"{s.name}: difference {_short(s.difference)} is not 0" for s in bad)
        )
    return proof


def combine(claim: str, statement: str, proofs: Sequence[Proof]) -> Proof:
    """One record holding the steps of several proofs of ``claim`` (each step
    named with its method), e.g. the general-``N`` and explicit-``N`` proofs."""
    steps = [Step(f"[{p.method}] {s.name}", s.lhs, s.rhs, s.difference, s.holds) for p in proofs for s in p.steps]
    assumptions = tuple(dict.fromkeys(a for p in proofs for a in p.assumptions))
    return Proof(claim, statement, "; ".join(p.method for p in proofs), assumptions, steps)
