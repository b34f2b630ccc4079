"""Infinite-width kernels: the NNGP kernel ``K`` and the NTK ``Theta`` (THEORY.md C1).

An architecture maps the kernel of its input to the kernel of its output,
layer by layer. The state that flows through the layers is a list of *pairs*
of points ``(z_a, z_b)`` with their ``K`` and ``Theta`` values: every
transform of C1 is elementwise given the two variances ``K(z_a, z_a)`` and
``K(z_b, z_b)``, so one elementwise code path serves the symmetric kernel
(upper triangle only: half the work), the cross kernel and both precisions.

The variances are read from the *same* array as the pairs (the self pairs
``(z, z)`` are always in the list). On a self pair ``k12`` is then bitwise
equal to ``k11 = k22``, ``det = k11 k22 - k12^2`` is exactly 0, and the
angle of the arc-cosine kernels is exactly 0: the diagonal, which sets the
predictive variances, keeps full precision. Rows shared by ``x1`` and ``x2``
are the same point, so the same holds off the joint diagonal.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from .errors import DegenerateInputError, EmptyInputError, NonFiniteError, ShapeError
from .precision import Backend, backend, to_mpmatrix


@dataclass(frozen=True)
class Kernel:
    """NNGP kernel ``nngp = K(x1, x2)`` and NTK ``ntk = Theta(x1, x2)``.

    float64 ndarrays of shape ``(n1, n2)``, or ``mpmath.matrix`` when computed
    with ``dps=``.
    """

    nngp: Any
    ntk: Any

    @property
    def high_precision(self) -> bool:
        return isinstance(self.nngp, mpmath.matrix)


@dataclass
class PairState:
    """``K`` and ``Theta`` on a list of point pairs ``(a[p], b[p])``.

    ``self_pos[z]`` is the position of the pair ``(z, z)``.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    a: np.ndarray
    b: np.ndarray
    self_pos: np.ndarray

    def variances(self):
        """``(K(z_a, z_a), K(z_b, z_b))`` per pair, from the pair list itself."""
        v = self.nngp[self.self_pos]
        return v[self.a], v[self.b]

    def replace(self, nngp, ntk) -> "PairState":
        return PairState(nngp, ntk, self.a, self.b, self.self_pos)


def validate_inputs(x: Any, name: str = "x", dim: int | None = None) -> np.ndarray:
    """A finite float64 array of shape ``(n, d)`` with ``n, d >= 1`` (a 1-D
    array is one feature per row)."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a real array of shape (n, d): {exc}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ShapeError(f"{name} must have shape (n, d), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EmptyInputError(f"{name} is empty: shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError(f"{name} contains NaN or infinity")
    if dim is not None and arr.shape[1] != dim:
        raise ShapeError(f"{name} has feature dimension {arr.shape[1]}, expected {dim}")
    return arr


def input_state(x1: np.ndarray, x2: np.ndarray | None, bk: Backend):
    """The pair state of the raw input, ``K = <x, x'> / d``, ``Theta = 0``
    (the convention of neural-tangents' ``stax``: a Dense layer then gives
    ``sigma_w^2 <x, x'> / d + sigma_b^2``), plus the scatter back to a matrix."""
    d = x1.shape[1]
    if x2 is None:
        n = x1.shape[0]
        a, b = np.triu_indices(n)
        gram = x1 @ x1.T
        self_pos = _triu_diag_positions(n)
        layout = ("sym", n, a, b)
        values = gram[a, b]
    else:
        z, inverse = np.unique(np.vstack([x1, x2]), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        i1, i2 = inverse[: len(x1)], inverse[len(x1):]
        nz = len(z)
        a = np.concatenate([np.repeat(i1, len(i2)), np.arange(nz)])
        b = np.concatenate([np.tile(i2, len(i1)), np.arange(nz)])
        self_pos = np.arange(nz) + len(i1) * len(i2)
        norms = np.einsum("ij,ij->i", z, z)
        cross = (x1 @ x2.T).ravel()
        same = a[: cross.size] == b[: cross.size]
        cross[same] = norms[a[: cross.size][same]]  # the same point: the same number
        values = np.concatenate([cross, norms])
        layout = ("cross", (len(i1), len(i2)), None, None)
    values = bk.asarray(values)
    with bk.context():
        nngp = values / d
        ntk = nngp * 0
    return PairState(nngp, ntk, a, b, self_pos), layout


def _triu_diag_positions(n: int) -> np.ndarray:
    # row i of the upper triangle (with diagonal) starts at i*n - i*(i-1)/2
    i = np.arange(n)
    return i * n - (i * (i - 1)) // 2


def to_matrix(values: np.ndarray, layout) -> np.ndarray:
    kind = layout[0]
    if kind == "sym":
        _, n, a, b = layout
        out = np.empty((n, n), dtype=values.dtype)
        out[a, b] = values
        out[b, a] = values
        return out
    n1, n2 = layout[1]
    return values[: n1 * n2].reshape(n1, n2)


def check_variances(state: PairState, where: str) -> None:
    """Raise on a zero-variance pre-activation (a zero-norm input without a
    bias): the dual maps are then undefined (0/0 in the angle)."""
    v = state.nngp[state.self_pos]
    if any(not (vi > 0) for vi in v):
        raise DegenerateInputError(
            f"zero variance entering {where}: an input of zero norm with sigma_b = 0 "
            "has no direction; give it a nonzero norm or use sigma_b > 0"
        )


def evaluate(layers_fn, x1, x2=None, dps: int | None = None, dim: int | None = None) -> Kernel:
    """Run a kernel transform ``layers_fn(state, bk) -> state`` on inputs."""
    x1 = validate_inputs(x1, "x1", dim)
    if x2 is not None:
        x2 = validate_inputs(x2, "x2", x1.shape[1])
    bk = backend(dps)
    with bk.context():
        state, layout = input_state(x1, x2, bk)
        state = layers_fn(state, bk)
        nngp, ntk = to_matrix(state.nngp, layout), to_matrix(state.ntk, layout)
    if dps is None:
        return Kernel(nngp, ntk)
    with mpmath.workdps(dps):
        return Kernel(to_mpmatrix(_round(nngp)), to_mpmatrix(_round(ntk)))


def _round(a: np.ndarray) -> np.ndarray:
    # drop the guard digits: +x rounds to the current (requested) precision
    return np.vectorize(lambda v: +v, otypes=[object])(a)
