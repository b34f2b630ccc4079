"""Pooling layers: ``AvgPool`` (windowed average) and ``GlobalAvgPool``
(average over all positions); the kernel formulas are in :mod:`.conv`."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..signals import Kind
from ..spatial import (
    Window,
    pad,
    padding_name,
    positive_ints,
    separable_window_sum,
    unpad,
)
from .base import Layer, heads, spatial_input


def _groups(state) -> list[list[int]]:
    """The spatial axes of the entries (pairs last), one group per spatial copy."""
    k = len(state.spatial)
    first = list(range(k))
    return [first, list(range(k, 2 * k))] if state.full else [first]



def _pooled_signal(layer, signal):
    """What a pooling layer yields: it is a linear map of the positions, so it is exact on
    data and Gaussian stays Gaussian; anything else stays non-Gaussian (an average of
    post-activation outputs is not phi of one Gaussian), with the pooling named in its origin."""
    spatial_input(layer, signal)
    if signal.kind is Kind.OTHER:
        return signal.but(origin=f"{layer!r} of {signal.origin or 'a non-Gaussian signal'}")
    return signal

class AvgPool(Layer):
    """Average over a ``window_shape`` window moved by ``strides`` (default 1),
    ``padding`` ``VALID`` (default), ``SAME`` or ``CIRCULAR``; padded positions
    count as zeros in the average (``stax.AvgPool`` with ``normalize_edges=False``)."""

    def __init__(self, window_shape, strides=None, padding: str = "VALID"):
        size = positive_ints("window_shape", window_shape)
        strides = 1 if strides is None else strides
        self.window = Window(size, positive_ints("strides", strides, len(size)), padding_name(padding))

    def __repr__(self):
        w = self.window
        return f"AvgPool({w.size}, strides={w.strides}, padding={w.padding!r})"

    def signal_out(self, signal):
        return _pooled_signal(self, signal)

    @property
    def needs_full_spatial(self) -> bool:
        return True

    def kernel_fn(self, state, bk):
        if not state.full:
            raise ShapeError("AvgPool needs the full spatial covariance (inputs with spatial axes)")
        axes = [ax for group in _groups(state) for ax in group]
        v = self.window.volume

        def average(parts):  # 1 / |F|^2 sum_{i, j} of K and Theta
            out = []
            for arr in parts:
                total = separable_window_sum(arr, self.window, axes, state.spatial)[0]
                total /= v * v
                out.append(total)
            return tuple(out)

        return state.pooled(bk, average, spatial=self.window.plan(state.spatial)[0])

    def init_params(self, rng, in_shape, width, out_dim):
        out, _ = self.window.plan(tuple(in_shape[:-1]))
        return [], out + (in_shape[-1],)

    def _sum(self, x, lead):
        k = len(self.window.size)
        spatial = x.shape[lead:lead + k]
        out, idxs = self.window.plan(spatial)
        padded = pad(x, list(range(lead, lead + k)), idxs)
        acc = 0
        for off in self.window.offsets():
            acc = acc + padded[(slice(None),) * lead + tuple(self.window.slice(d, off[d], out[d]) for d in range(k))]
        return acc / self.window.volume

    def apply(self, params, x):
        if x.ndim != len(self.window.size) + 2:
            raise ShapeError(f"{self!r} got inputs of shape {x.shape}")
        return self._sum(x, 1), x.shape

    def apply_to_data(self, z, bk):
        return self.apply([], z)[0]  # sums and a division: exact on mpf arrays too

    def vjp(self, params, xshape, g):
        lead = heads(g, len(xshape))
        k = len(self.window.size)
        spatial = xshape[1:-1]
        out, idxs = self.window.plan(spatial)
        gx = np.zeros(g.shape[:lead] + tuple(len(i) for i in idxs) + (xshape[-1],))
        for off in self.window.offsets():
            gx[(slice(None),) * lead + tuple(self.window.slice(d, off[d], out[d]) for d in range(k))] += g
        return unpad(gx, list(range(lead, lead + k)), idxs, list(spatial)) / self.window.volume, []

    def jvp(self, params, xshape, dx, dparams):
        return None if dx is None else self._sum(dx, 1)


class GlobalAvgPool(Layer):
    """Average over all spatial positions: ``(N, *S, C) -> (N, C)``."""

    def __repr__(self):
        return "GlobalAvgPool()"

    def signal_out(self, signal):
        return _pooled_signal(self, signal)

    @property
    def needs_full_spatial(self) -> bool:
        return True

    def kernel_fn(self, state, bk):
        if not state.full:
            raise ShapeError("GlobalAvgPool needs the full spatial covariance (inputs with spatial axes)")
        m = int(np.prod(state.spatial)) ** 2

        def mean(v):  # contiguous per pair (a copy of the pairs-last entries): the summation order of before
            return np.ascontiguousarray(v.reshape(m, -1).T).sum(axis=1) / m

        return state.pooled(bk, lambda parts: tuple(mean(arr) for arr in parts), spatial=(), full=False)

    def init_params(self, rng, in_shape, width, out_dim):
        if len(in_shape) < 2:
            raise ShapeError(f"GlobalAvgPool needs examples with spatial axes, got shape {tuple(in_shape)}")
        return [], (in_shape[-1],)

    def apply(self, params, x):
        if x.ndim < 3:
            raise ShapeError(f"GlobalAvgPool needs inputs with spatial axes, got shape {x.shape}")
        return x.mean(axis=tuple(range(1, x.ndim - 1))), x.shape

    def apply_to_data(self, z, bk):
        return self.apply([], z)[0]

    def vjp(self, params, xshape, g):
        lead = heads(g, 2)
        spatial = xshape[1:-1]
        shape = g.shape[:lead] + (1,) * len(spatial) + g.shape[-1:]
        return np.broadcast_to(g.reshape(shape) / int(np.prod(spatial)), g.shape[:lead] + xshape[1:]).copy(), []

    def jvp(self, params, xshape, dx, dparams):
        return None if dx is None else dx.mean(axis=tuple(range(1, dx.ndim - 1)))
