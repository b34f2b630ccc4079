"""The spatial layers' kernels (``Conv`` here; ``AvgPool``, ``GlobalAvgPool`` in
:mod:`.pool`, ``Flatten`` in :mod:`.flatten`, ``LayerNorm`` in :mod:`.norm`),
stax-style, at infinite and finite width.

Inputs are ``(N, L, C)`` or ``(N, H, W, C)`` (channels last). The kernels are
those of neural-tangents' ``stax`` with ``W_std=sigma_w``, ``b_std=sigma_b``
in the NTK parameterisation; with ``K[s, s']`` the kernel between position
``s`` of ``x`` and ``s'`` of ``x'`` (the input kernel is ``x[s] . x'[s'] / C``):

* ``Conv``: ``K'[o, o'] = sigma_w^2 / |F| sum_i K[o + i, o' + i] + sigma_b^2``
  (``i`` over the filter's offsets ``F``; padded positions contribute zero and
  the sum is still divided by ``|F|``), ``Theta' = sigma_w^2 / |F| sum_i Theta[o + i, o' + i] + K'``.
  Finite width: ``h[o] = sigma_w / sqrt(|F| C_in) sum_i W_i x[o + i] + sigma_b b``.
* ``AvgPool``: ``K'[o, o'] = 1 / |F|^2 sum_{i, j} K[o + i, o' + j]`` (likewise ``Theta``).
* ``GlobalAvgPool``: ``K' = mean_{s, s'} K[s, s']``; ``Flatten``: ``K' = mean_s K[s, s]``
  (followed by a Dense layer of fan-in ``|S| C``, that is ``stax.Flatten``).
* ``LayerNorm`` (over channels): ``K'[s, s'] = K[s, s'] / sqrt(K_xx[s, s] K_x'x'[s', s'])``,
  likewise ``Theta``: exact in the limit when its input has mean zero over
  channels (after a Dense or Conv layer), as in ``stax``.

A convolution's output at ``o`` is a sum of kernels (one per offset, plus the
bias), so its Cauchy-Schwarz gaps are mapped by
:func:`~ntk_equiv.kernels.sum_gaps` (accurate near collinear pairs), as are
``Flatten``'s. Pooling mixes positions (not a sum of kernels): its gaps are
recomputed from the values.
"""
from __future__ import annotations

import math

import numpy as np

from .. import signals
from ..errors import ShapeError
from ..kernels import add_in_blocks
from ..spatial import Window, pad, padding_name, positive_ints, unpad, window_sum, window_sum_at
from .base import Layer, check_sigma, heads, spatial_input


class Conv(Layer):
    """Convolution with ``filter_shape`` (1-D or 2-D), ``strides``, ``padding``
    in ``SAME | VALID | CIRCULAR``; its output channels are the width given at
    ``init``. NTK parameterisation with fan-in ``|F| C_in``."""

    def __init__(self, filter_shape, strides=1, padding: str = "SAME", sigma_w: float = 1.0, sigma_b: float = 0.0):
        size = positive_ints("filter_shape", filter_shape)
        self.window = Window(size, positive_ints("strides", strides, len(size)), padding_name(padding))
        self.sigma_w = check_sigma("sigma_w", sigma_w)
        self.sigma_b = check_sigma("sigma_b", sigma_b)

    def __repr__(self):
        w = self.window
        return (f"Conv({w.size}, strides={w.strides}, padding={w.padding!r}, "
                f"sigma_w={self.sigma_w}, sigma_b={self.sigma_b})")

    @property
    def ends_with_dense(self) -> bool:
        # zero-mean weights independent of the input, like Dense: a residual block may end here
        return True

    def signal_out(self, signal):
        spatial_input(self, signal)
        return signals.GAUSSIAN  # like Dense: a sum over many channels with independent weights

    # ---- infinite width ------------------------------------------------ #
    def kernel_fn(self, state, bk):
        sw, sb = bk.scalar(self.sigma_w), bk.scalar(self.sigma_b)
        w = sw * sw / self.window.volume
        k = len(state.spatial)
        # the entries are pairs last (ntk_equiv.kernels): the shifted boxes of the sum over the
        # filter have long contiguous inner loops (spatial axes are short), ~10x faster than pairs first
        groups = [list(range(k)), list(range(k, 2 * k))] if state.full else [list(range(k))]

        def conv(arr):
            return window_sum(arr, self.window, groups, state.spatial)

        def window(parts):  # (K, Theta, lo, hi) -> each summed over the filter's offsets
            return tuple(conv(arr)[0] for arr in parts)

        # components of the sum at each output position: sqrt(w K[o + i, o + i]) per offset (the bias
        # is the state's own last component)
        out, idxs = self.window.plan(state.spatial)
        padded = pad(state.roots(bk), list(range(1, 1 + len(out))), idxs)
        rw = bk.sqrt(w)
        comps = []
        for off in self.window.offsets():
            sl = (slice(None),) + tuple(self.window.slice(d, off[d], out[d]) for d in range(len(out)))
            comps.append(padded[sl] * rw)
        # K' = w sum_i K[o + i, o' + i] + sigma_b^2 and its gaps; Theta' = w sum_i Theta[...] + K'
        def window_at(arr, idx):  # the same sum at a few output entries (the gaps near correlation +-1)
            return window_sum_at(arr, self.window, groups, state.spatial, idx)

        conv_state = state.summed(bk, window, comps, scale=w, bias=sb, spatial=out, at=window_at)
        add_in_blocks(conv_state.ntk, conv_state.nngp)
        return conv_state

    # ---- finite width --------------------------------------------------- #
    def init_params(self, rng, in_shape, width, out_dim):
        k = len(self.window.size)
        if len(in_shape) != k + 1:
            raise ShapeError(f"{self!r} expects examples of shape (*spatial[{k}], channels), got {tuple(in_shape)}")
        out, _ = self.window.plan(tuple(in_shape[:-1]))
        w = rng.standard_normal(self.window.size + (in_shape[-1], out_dim))
        b = rng.standard_normal(out_dim)
        return [w, b], out + (out_dim,)

    def _scale(self, w) -> float:
        return self.sigma_w / math.sqrt(self.window.volume * w.shape[-2])

    def _patches(self, x: np.ndarray) -> np.ndarray:
        """``(N, *O, |F| C)``: the inputs under the filter at each output position."""
        spatial = x.shape[1:-1]
        out, idxs = self.window.plan(spatial)
        padded = pad(x, list(range(1, 1 + len(out))), idxs)
        parts = [padded[(slice(None),) + tuple(self.window.slice(d, off[d], out[d]) for d in range(len(out)))]
                 for off in self.window.offsets()]
        p = np.stack(parts, axis=-2)
        return p.reshape(p.shape[:-2] + (-1,))

    def _check(self, w, x):
        if x.ndim != len(self.window.size) + 2 or x.shape[-1] != w.shape[-2]:
            raise ShapeError(f"{self!r} with {w.shape[-2]} input channels got inputs of shape {x.shape}")

    def apply(self, params, x):
        w, b = params
        self._check(w, x)
        p = self._patches(x)
        return self._scale(w) * (p @ w.reshape(-1, w.shape[-1])) + self.sigma_b * b, (p, x.shape)

    def vjp(self, params, cache, g):
        w, _ = params
        p, xshape = cache
        s, wm = self._scale(w), w.reshape(-1, w.shape[-1])
        lead = heads(g, p.ndim)
        gp = s * (g @ wm.T)
        # scatter each offset's share back to the (padded) input positions
        k = len(self.window.size)
        spatial = xshape[1:-1]
        out, idxs = self.window.plan(spatial)
        gp = gp.reshape(gp.shape[:-1] + (self.window.volume, xshape[-1]))
        gx = np.zeros(g.shape[:lead] + tuple(len(i) for i in idxs) + (xshape[-1],))
        for j, off in enumerate(self.window.offsets()):
            sl = (slice(None),) * lead + tuple(self.window.slice(d, off[d], out[d]) for d in range(k))
            gx[sl] += gp[..., j, :]
        gx = unpad(gx, list(range(lead, lead + k)), idxs, list(spatial))
        pf = np.broadcast_to(p[:, None] if lead == 2 else p, g.shape[:-1] + p.shape[-1:]).reshape(-1, p.shape[-1])
        gf = g.reshape(-1, g.shape[-1])
        # a contiguous left factor: OpenBLAS's transposed-view path is ~100x slower for this shape
        return gx, [(s * (np.ascontiguousarray(pf.T) @ gf)).reshape(w.shape), self.sigma_b * gf.sum(axis=0)]

    def jvp(self, params, cache, dx, dparams):
        w, _ = params
        dw, db = dparams
        p, _ = cache
        s = self._scale(w)
        out = s * (p @ dw.reshape(-1, dw.shape[-1])) + self.sigma_b * db
        if dx is not None:
            out = out + s * (self._patches(dx) @ w.reshape(-1, w.shape[-1]))
        return out

    def example_grads(self, params, cache, g):
        w, _ = params
        p, _ = cache
        n, m = g.shape[:2]
        pf, gf = p.reshape(n, -1, p.shape[-1]), g.reshape(n, m, -1, g.shape[-1])
        gw = self._scale(w) * np.einsum("nok,nmoc->nmkc", pf, gf)
        return [gw.reshape((n, m) + w.shape), self.sigma_b * gf.sum(axis=2)]
