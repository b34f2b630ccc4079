"""Sliding windows over spatial axes: the geometry shared by the kernels and
the finite-width networks of convolutions and pooling.

Conventions (those of XLA and neural-tangents' ``stax``), per spatial axis of
length ``L``, window size ``f`` and stride ``st``:

* ``VALID``: no padding, ``out = (L - f) // st + 1`` positions.
* ``SAME``: ``out = ceil(L / st)``; ``pad = max((out - 1) st + f - L, 0)`` zeros,
  ``pad // 2`` before and the rest (an odd extra) after. Padded positions
  contribute zero, and sums are still divided by the full window size.
* ``CIRCULAR``: as ``SAME``, but the padding wraps around (index mod ``L``).

A window is applied by padding the axis through an index map (source index
per padded coordinate, ``-1`` for a zero) and summing ``f`` strided slices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, ShapeError
from .precision import is_high_precision

PADDINGS = ("SAME", "VALID", "CIRCULAR")
#: Bytes of output a float64 window sum accumulates at a time (a core's L2 cache holds it and its sources).
BLOCK_BYTES = 1 << 18


def positive_ints(name: str, value, k: int | None = None) -> tuple:
    """``value`` (an int or a sequence of ints >= 1) as a tuple of length ``k``."""
    vals = (value,) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        vals = tuple(vals)
    except TypeError:
        raise ParameterError(f"{name} must be an integer >= 1 or a tuple of them, got {value!r}") from None
    if not vals or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in vals):
        raise ParameterError(f"{name} must be an integer >= 1 or a tuple of them, got {value!r}")
    if k is not None and len(vals) == 1:
        vals = vals * k
    if k is not None and len(vals) != k:
        raise ParameterError(f"{name} must have {k} entries (one per spatial axis), got {value!r}")
    return tuple(int(v) for v in vals)


def padding_name(padding) -> str:
    if not isinstance(padding, str) or padding.upper() not in PADDINGS:
        raise ParameterError(f"padding must be one of {PADDINGS}, got {padding!r}")
    return padding.upper()


@dataclass(frozen=True)
class Window:
    """A window of ``size`` (one entry per spatial axis) moved by ``strides``."""

    size: tuple
    strides: tuple
    padding: str

    @property
    def volume(self) -> int:
        return int(np.prod(self.size))

    def offsets(self) -> list[tuple]:
        return list(np.ndindex(*self.size))

    def axis(self, d: int, length: int) -> tuple[int, np.ndarray]:
        """``(out, idx)`` for spatial axis ``d`` of ``length``: the number of
        output positions and the source index of each padded coordinate."""
        f, st = self.size[d], self.strides[d]
        if self.padding == "VALID":
            if length < f:
                raise ShapeError(f"VALID window of size {f} does not fit a spatial axis of length {length}")
            out, lo = (length - f) // st + 1, 0
        else:
            out = -(-length // st)
            lo = max((out - 1) * st + f - length, 0) // 2
        src = np.arange((out - 1) * st + f) - lo
        if self.padding == "CIRCULAR":
            src = src % length
        else:
            src = np.where((src >= 0) & (src < length), src, -1)
        return out, src

    def plan(self, spatial: tuple) -> tuple[tuple, list]:
        """Output spatial shape and the per-axis index maps for an input of ``spatial``."""
        if len(spatial) != len(self.size):
            raise ShapeError(f"a window over {len(self.size)} spatial axes got an input with spatial shape "
                             f"{spatial} (inputs are (N, L, C) or (N, H, W, C), channels last)")
        axes = [self.axis(d, n) for d, n in enumerate(spatial)]
        return tuple(o for o, _ in axes), [i for _, i in axes]

    def slice(self, d: int, offset: int, out: int) -> slice:
        st = self.strides[d]
        return slice(offset, offset + st * (out - 1) + 1, st)


def pad(arr: np.ndarray, axes: list[int], idxs: list[np.ndarray]) -> np.ndarray:
    """``arr`` with each of ``axes`` re-indexed by its index map (``-1``: zero)."""
    for ax, idx in zip(axes, idxs):
        if len(idx) == arr.shape[ax] and np.array_equal(idx, np.arange(len(idx))):
            continue
        if np.any(idx < 0):
            zero = arr.take([0], axis=ax) * 0  # the array's own zero (mpf in high precision)
            arr = np.concatenate([arr, zero], axis=ax)
            idx = np.where(idx < 0, arr.shape[ax] - 1, idx)
        arr = np.take(arr, idx, axis=ax)
    return arr


def unpad(g: np.ndarray, axes: list[int], idxs: list[np.ndarray], lengths: list[int]) -> np.ndarray:
    """The adjoint of :func:`pad`: sums the cotangent of every padded coordinate
    into its source (wrapped coordinates add up; zeros are dropped)."""
    for ax, idx, n in reversed(list(zip(axes, idxs, lengths))):
        if len(idx) == n and np.array_equal(idx, np.arange(n)):
            continue
        shape = list(g.shape)
        shape[ax] = n + 1
        out = np.zeros(shape, dtype=g.dtype)
        np.add.at(out, (slice(None),) * ax + (np.where(idx < 0, n, idx),), g)
        g = np.take(out, np.arange(n), axis=ax)
    return g


def _valid_range(window: Window, d: int, offset: int, length: int, out: int) -> tuple[slice, slice]:
    """The output positions whose source under ``offset`` is a real (not padded)
    input position on axis ``d``, and those sources: ``(out_slice, in_slice)``."""
    st = window.strides[d]
    lo = 0 if window.padding == "VALID" else max((out - 1) * st + window.size[d] - length, 0) // 2
    first = max(0, -(-(lo - offset) // st))
    last = min(out - 1, (length - 1 + lo - offset) // st)
    if last < first:
        return slice(0, 0), slice(0, 0)
    start = first * st + offset - lo
    return slice(first, last + 1), slice(start, start + st * (last - first) + 1, st)


def window_sum(arr: np.ndarray, window: Window, first_axes: list[list[int]], spatial: tuple):
    """``sum_i arr[pos(o, i)]`` over the window's offsets ``i``, the same offset
    applied to every group of axes in ``first_axes`` (one group per spatial
    copy: a convolution moves both positions of a covariance entry together).
    Returns ``(sum, out_shape)``; the caller divides by the window size.

    Zero padding is never materialised: each offset adds the box of outputs
    whose sources are real positions (padded ones contribute zero)."""
    out, idxs = window.plan(spatial)
    k = len(spatial)
    if window.padding == "CIRCULAR":
        axes = [g[d] for g in first_axes for d in range(k)]
        arr = pad(arr, axes, idxs * len(first_axes))
        boxes = [[(slice(None), window.slice(d, off[d], out[d])) for d in range(k)] for off in window.offsets()]
    else:
        boxes = [[_valid_range(window, d, off[d], spatial[d], out[d]) for d in range(k)] for off in window.offsets()]
    shape = list(arr.shape)
    for group in first_axes:
        for d in range(k):
            shape[group[d]] = out[d]
    acc = np.zeros(shape, dtype=arr.dtype) if not is_high_precision(arr) else np.full(shape, arr.flat[0] * 0, dtype=object)
    # float64 sums block by block of output rows (first spatial axis), each block through every offset
    # while it is in cache; an entry gets the same terms in the same order, so the same bits
    ax = first_axes[0][0]
    rows = shape[ax] if is_high_precision(arr) else max(1, BLOCK_BYTES // max(1, acc.nbytes // shape[ax]))
    for r0 in range(0, shape[ax], rows):
        r1 = min(r0 + rows, shape[ax])
        for box in boxes:
            dst, src = [slice(None)] * arr.ndim, [slice(None)] * arr.ndim
            for group in first_axes:
                for d in range(k):
                    dst[group[d]], src[group[d]] = box[d]
            lo_d, _, _ = dst[ax].indices(shape[ax])
            d0, d1 = max(lo_d, r0), min(dst[ax].indices(shape[ax])[1], r1)
            if d1 <= d0:
                continue
            s0, step = src[ax].start or 0, src[ax].step or 1
            dst[ax] = slice(d0, d1)
            src[ax] = slice(s0 + (d0 - lo_d) * step, s0 + (d1 - 1 - lo_d) * step + 1, step)
            acc[tuple(dst)] += arr[tuple(src)]
    return acc, out


def separable_window_sum(arr: np.ndarray, window: Window, axes: list[int], spatial: tuple):
    """``sum_i arr[..., pos(o, i), ...]`` along each of ``axes`` independently
    (axis ``axes[j]`` is spatial axis ``j % k``): pooling both positions of a
    covariance entry over their own windows."""
    out, idxs = window.plan(spatial)
    k = len(spatial)
    for j, ax in enumerate(axes):
        d = j % k
        padded = pad(arr, [ax], [idxs[d]])
        acc = None
        for off in range(window.size[d]):
            sl = [slice(None)] * arr.ndim
            sl[ax] = window.slice(d, off, out[d])
            part = padded[tuple(sl)]
            acc = part.copy() if acc is None else acc.__iadd__(part)
        arr = acc
    return arr, out


def window_sum_at(arr: np.ndarray, window: Window, first_axes: list[list[int]], spatial: tuple,
                  idx: tuple) -> np.ndarray:
    """:func:`window_sum` of ``arr`` at the output entries ``idx`` only (a tuple
    of index arrays, one per axis of the output, as from ``np.nonzero``): the
    same terms added in the same order (padded positions add an exact 0), so
    each entry has the bits of the full sum's."""
    out, idxs = window.plan(spatial)
    k = len(spatial)
    lows = [0 if window.padding == "VALID" else max((out[d] - 1) * window.strides[d] + window.size[d] - spatial[d], 0) // 2
            for d in range(k)]
    acc = np.zeros(len(idx[0]), dtype=arr.dtype)
    for off in window.offsets():
        src, valid = list(idx), np.ones(len(idx[0]), dtype=bool)
        for group in first_axes:
            for d in range(k):
                pos = idx[group[d]] * window.strides[d] + off[d] - lows[d]
                if window.padding == "CIRCULAR":
                    pos = pos % spatial[d]
                else:
                    valid &= (pos >= 0) & (pos < spatial[d])
                    pos = np.clip(pos, 0, spatial[d] - 1)
                src[group[d]] = pos
        acc += np.where(valid, arr[tuple(src)], 0.0)
    return acc
