"""What the infinite-width limit of a stage's channel variables is (issue 16).

Every dual map assumes a jointly Gaussian, zero-mean input; this module
names what each stage of an architecture actually carries, so that the
engine can refuse (or fuse, see :mod:`ntk_equiv.composite`) every
composition whose kernel the dual maps would get wrong, *before* computing:

* ``DATA``: the raw input, deterministic. Only layers without parameters act
  on it, and exactly (an activation of ``x`` is ``phi(x)``).
* ``GAUSSIAN``: jointly Gaussian with zero channel mean (after Dense or Conv,
  a sum of two independent Gaussian stages, pooling or Flatten of one).
* ``ELEMENTWISE``: ``phi(u)`` of a Gaussian pre-activation ``u`` per point,
  with ``phi`` not yet applied to the kernel (the state keeps ``u``'s kernel
  and the pending activation): an activation composes with it, LayerNorm
  fuses with it.
* ``OTHER``: finite second moments, not Gaussian (a residual sum with a
  post-activation skip, pooling of post-activation outputs, LayerNorm of an
  activation). Dense, Conv, pooling, Flatten and the readout only need second
  moments and accept it; an activation cannot.

``centred``: the channel mean is 0 in the limit (LayerNorm needs it);
``flattened``: after ``Flatten``, whose output keeps per-position kernels
until the next Dense averages them (an elementwise layer acts per position).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from .errors import ArchitectureError


class Kind(enum.Enum):
    DATA = "the raw input (deterministic)"
    GAUSSIAN = "jointly Gaussian"
    ELEMENTWISE = "an activation of a Gaussian pre-activation"
    OTHER = "not Gaussian"


@dataclass(frozen=True)
class Signal:
    """The limit law of a stage's channel variables, on kinds only (no numbers).

    ``origin`` says where a non-Gaussian signal comes from, for messages."""

    kind: Kind
    centred: bool = True
    flattened: bool = False
    origin: str = field(default="", compare=False)

    def but(self, **changes) -> "Signal":
        return replace(self, **changes)

    @property
    def describe(self) -> str:
        text = self.kind.value + (f" ({self.origin})" if self.origin else "")
        return text + (", after Flatten" if self.flattened else "")


DATA = Signal(Kind.DATA, centred=False, origin="the input")
GAUSSIAN = Signal(Kind.GAUSSIAN)


def materialised(signal: Signal) -> Signal:
    """What a layer that does not fuse with a pending activation sees: the
    activation's output as a signal of its own, no longer composable."""
    if signal.kind is not Kind.ELEMENTWISE:
        return signal
    return signal.but(kind=Kind.OTHER, centred=False, origin=signal.origin or "the output of an activation")


def refuse(layer, why: str, insert: str) -> ArchitectureError:
    """The error for ``layer``: what it cannot do, why, and what to insert."""
    return ArchitectureError(f"{layer!r}: {why}; {insert}")


INSERT_DENSE = "insert a Dense or Conv layer before it"
