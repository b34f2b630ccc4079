"""Convolutional layers: ``Conv``, ``AvgPool``, ``GlobalAvgPool``, ``Flatten``,
``LayerNorm``, stax-style, at infinite and finite width.

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

from . import kernels, signals
from .errors import DegenerateInputError, ShapeError
from .layers import Layer, _check_sigma
from .signals import Kind, Signal
from .spatial import Window, pad, padding_name, positive_ints, separable_window_sum, unpad, window_sum


def _groups(state) -> list[list[int]]:
    """The spatial axes of the entries, one group per spatial copy."""
    k = len(state.spatial)
    first = list(range(1, 1 + k))
    return [first, list(range(1 + k, 1 + 2 * k))] if state.full else [first]


def _pairs_last(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(arr, 0, -1))


def _pairs_first(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(arr, -1, 0))


def _heads(g: np.ndarray, ndim: int) -> int:
    """Leading axes of a cotangent: 1 (batch) or 2 (batch, head)."""
    return 2 if g.ndim > ndim else 1


def _spatial_input(layer: Layer, signal) -> None:
    if signal.flattened:
        raise signals.refuse(layer, "its input comes from Flatten and has no spatial axes",
                             "move Flatten after it")


class Conv(Layer):
    """Convolution with ``filter_shape`` (1-D or 2-D), ``strides``, ``padding``
    in ``SAME | VALID | CIRCULAR``; its output channels are the width given at
    ``init``. NTK parameterisation with fan-in ``|F| C_in``."""

    def __init__(self, filter_shape, strides=1, padding: str = "SAME", sigma_w: float = 1.0, sigma_b: float = 0.0):
        size = positive_ints("filter_shape", filter_shape)
        self.window = Window(size, positive_ints("strides", strides, len(size)), padding_name(padding))
        self.sigma_w = _check_sigma("sigma_w", sigma_w)
        self.sigma_b = _check_sigma("sigma_b", sigma_b)

    def __repr__(self):
        w = self.window
        return (f"Conv({w.size}, strides={w.strides}, padding={w.padding!r}, "
                f"sigma_w={self.sigma_w}, sigma_b={self.sigma_b})")

    @property
    def ends_with_dense(self) -> bool:
        # zero-mean weights independent of the input, like Dense: a residual block may end here
        return True

    def signal_out(self, signal):
        _spatial_input(self, signal)
        return signals.GAUSSIAN  # like Dense: a sum over many channels with independent weights

    # ---- infinite width ------------------------------------------------ #
    def kernel_fn(self, state, bk):
        sw, sb = bk.scalar(self.sigma_w), bk.scalar(self.sigma_b)
        w = sw * sw / self.window.volume
        sb2 = sb * sb
        k = len(state.spatial)
        # pairs on the last axis while summing over the filter: the shifted boxes then have
        # long contiguous inner loops (spatial axes are short), ~10x faster than pairs first
        groups = [list(range(k)), list(range(k, 2 * k))] if state.full else [list(range(k))]

        def conv(arr):
            return window_sum(_pairs_last(arr), self.window, groups, state.spatial)

        nngp, out = conv(state.nngp)
        nngp *= w
        nngp += sb2
        ntk = conv(state.ntk)[0]
        ntk *= w
        ntk += nngp
        lo, hi = conv(state.lo)[0], conv(state.hi)[0]
        lo *= w
        hi *= w
        hi += 2 * sb2
        # components of the sum at each output position: sqrt(w K[o + i, o + i]) per offset, and the bias
        roots = state.roots(bk)
        _, idxs = self.window.plan(state.spatial)
        padded = pad(roots, list(range(1, 1 + len(out))), idxs)
        rw = bk.sqrt(w)
        comps = []
        for off in self.window.offsets():
            sl = (slice(None),) + tuple(self.window.slice(d, off[d], out[d]) for d in range(len(out)))
            comps.append(padded[sl] * rw)
        if sb2 != 0:
            comps.append(sb)

        def gather(v):
            va, vb = kernels.gather(v, state.a, state.b, out, state.full)
            return _pairs_last(va), _pairs_last(vb)

        lo, hi, _ = kernels.sum_gaps(bk, gather, comps, lo, hi)
        return state.replace(*(_pairs_first(v) for v in (nngp, ntk, lo, hi)), spatial=out)

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
        lead = _heads(g, p.ndim)
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
        # a linear map of the positions: exact on data, Gaussian stays Gaussian, anything else stays
        # non-Gaussian (an average of post-activation outputs is not phi of one Gaussian)
        _spatial_input(self, signal)
        if signal.kind is Kind.OTHER:
            return signal.but(origin=f"{self!r} of {signal.origin or 'a non-Gaussian signal'}")
        return signal

    @property
    def needs_full_spatial(self) -> bool:
        return True

    def kernel_fn(self, state, bk):
        if not state.full:
            raise ShapeError("AvgPool needs the full spatial covariance (inputs with spatial axes)")
        axes = [ax for group in _groups(state) for ax in group]
        v = self.window.volume
        nngp, out = separable_window_sum(state.nngp, self.window, axes, state.spatial)
        ntk = separable_window_sum(state.ntk, self.window, axes, state.spatial)[0]
        nngp /= v * v
        ntk /= v * v
        pooled = state.replace(nngp, ntk, None, None, spatial=out)
        pooled.lo, pooled.hi = kernels.gaps_from_values(pooled, bk)
        return pooled

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
        lead = _heads(g, len(xshape))
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
        _spatial_input(self, signal)
        if signal.kind is Kind.OTHER:
            return signal.but(origin=f"{self!r} of {signal.origin or 'a non-Gaussian signal'}")
        return signal

    @property
    def needs_full_spatial(self) -> bool:
        return True

    def kernel_fn(self, state, bk):
        if not state.full:
            raise ShapeError("GlobalAvgPool needs the full spatial covariance (inputs with spatial axes)")
        axes = tuple(range(1, 1 + 2 * len(state.spatial)))
        m = int(np.prod(state.spatial)) ** 2
        nngp, ntk = state.nngp.sum(axis=axes) / m, state.ntk.sum(axis=axes) / m
        pooled = state.replace(nngp, ntk, None, None, spatial=(), full=False)
        pooled.lo, pooled.hi = kernels.gaps_from_values(pooled, bk)
        return pooled

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
        lead = _heads(g, 2)
        spatial = xshape[1:-1]
        shape = g.shape[:lead] + (1,) * len(spatial) + g.shape[-1:]
        return np.broadcast_to(g.reshape(shape) / int(np.prod(spatial)), g.shape[:lead] + xshape[1:]).copy(), []

    def jvp(self, params, xshape, dx, dparams):
        return None if dx is None else dx.mean(axis=tuple(range(1, dx.ndim - 1)))


class Flatten(Layer):
    """``(N, *S, C) -> (N, |S| C)``; kernel: the per-position ``K[s, s]`` of the
    flattened features, averaged by the next Dense (``mean_s K[s, s]``); an
    activation or LayerNorm between them acts on the features, per position."""

    def __repr__(self):
        return "Flatten()"

    def signal_out(self, signal):
        if signal.kind is Kind.DATA:
            return signal  # the data reshaped
        return signal.but(flattened=True)

    takes_pending = True  # per position, like an activation: they commute

    def kernel_fn(self, state, bk):
        # keep the per-position kernels K[s, s] (an elementwise layer after Flatten acts per
        # position); the next Dense averages them (PairState.collapsed)
        if not state.spatial or state.flattened:
            return state
        if state.full:
            m, p = int(np.prod(state.spatial)), len(state.a)

            def diag(arr):
                return np.ascontiguousarray(np.diagonal(arr.reshape(p, m, m), axis1=1, axis2=2)).reshape(
                    (p,) + state.spatial)
            out = state.replace(*(diag(v) for v in (state.nngp, state.ntk, state.lo, state.hi)), full=False)
        else:
            out = state.replace(state.nngp, state.ntk, state.lo, state.hi)
        out.flattened, out.pending = True, state.pending
        return out

    def init_params(self, rng, in_shape, width, out_dim):
        return [], (int(np.prod(in_shape)),)

    def apply(self, params, x):
        return x.reshape(len(x), -1), x.shape

    def apply_to_data(self, z, bk):
        return self.apply([], z)[0]

    def vjp(self, params, xshape, g):
        return g.reshape(g.shape[:-1] + tuple(xshape[1:])), []

    def jvp(self, params, xshape, dx, dparams):
        return None if dx is None else dx.reshape(len(dx), -1)


class LayerNorm(Layer):
    """Normalise over the channel axis: ``(z - mean_c z) / sqrt(var_c z + eps)``
    at finite width; kernel ``K[s, s'] / sqrt(K_xx[s, s] K_x'x'[s', s'])``."""

    def __init__(self, eps: float = 1e-12):
        self.eps = _check_sigma("eps", eps)

    def __repr__(self):
        return "LayerNorm()"

    takes_pending = True

    def signal_out(self, signal):
        if signal.kind is Kind.GAUSSIAN or (signal.kind is Kind.OTHER and signal.centred):
            # zero channel mean: z / sqrt(K(z, z)) channel by channel; a Gaussian stays Gaussian
            return signal
        if signal.kind is Kind.DATA:
            return signal  # the data normalised by their own channel means and variances (the data prefix)
        if signal.kind is Kind.ELEMENTWISE and not signal.flattened:
            # fused: centred and scaled by the activation's limit channel mean and variance
            return Signal(Kind.OTHER, centred=True, origin=f"{self!r} of {signal.origin or 'an activation'}")
        why = f"its input is {signal.describe}, whose channel mean is not known"
        raise signals.refuse(self, why, signals.INSERT_DENSE)

    def kernel_fn(self, state, bk):
        if state.pending is not None:
            return self._fused(state, bk)
        kernels.check_variances(state, "LayerNorm")
        va, vb = state.variances()
        if state.flattened:  # over all |S| C features: the variance averaged over positions
            n, k = state.n, len(state.spatial)
            mean = state.diagonal().reshape(n, -1).sum(axis=1) / int(np.prod(state.spatial))
            va, vb = state.gather(np.broadcast_to(mean.reshape((n,) + (1,) * k), (n,) + state.spatial))
        den = bk.sqrt(va * vb)  # sqrt(v v) = v exactly: the normalised self pairs are exactly 1
        return state.replace(state.nngp / den, state.ntk / den, state.lo / den, state.hi / den)

    @staticmethod
    def _fused(state, bk):
        """LayerNorm of ``phi(u)``, ``u`` Gaussian: in the limit the channel mean
        of ``phi(u_a)`` is ``m_a = E phi(u_a)`` and its channel variance
        ``v_a = E phi(u_a)^2 - m_a^2`` (laws of large numbers over channels), so
        ``K' = (E[phi(u_a) phi(u_b)] - m_a m_b) / sqrt(v_a v_b)`` with
        ``m_a m_b = V(k_aa, 0, k_bb)`` (independent copies) and
        ``Theta' = E[phi'(u_a) phi'(u_b)] Theta / sqrt(v_a v_b)``: the statistics'
        own gradients are averages over channels whose contribution to the NTK is
        O(1/width), so they vanish in the limit."""
        phi = state.pending
        kernels.check_variances(state, f"LayerNorm after activation {phi.name!r}")
        d = state.diagonal()
        second, _ = phi.dual(bk, d, d, d)
        mean2, _ = phi.dual(bk, d, d * 0, d)
        var = second - mean2
        if not np.all(np.asarray(var > 0, dtype=bool)):
            raise DegenerateInputError(f"LayerNorm after activation {phi.name!r}: the activation's output has zero "
                                       "variance over channels (a constant function of its input)")
        va, vb = state.variances()
        means, _ = phi.dual(bk, *np.broadcast_arrays(va, state.nngp * 0, vb))
        out = state.materialised(bk)
        ga, gb = state.gather(var)
        den = bk.sqrt(ga * gb)  # sqrt(v v) = v exactly: self pairs are exactly 1
        fused = out.replace((out.nngp - means) / den, out.ntk / den, None, None)
        fused.lo, fused.hi = kernels.gaps_from_values(fused, bk)
        return fused

    def apply_to_data(self, z, bk):
        if bk.name == "float64":
            return self.apply([], z)[0]  # bitwise the network's forward pass
        zc = z - z.mean(axis=-1, keepdims=True)
        return zc / bk.sqrt((zc * zc).mean(axis=-1, keepdims=True) + bk.scalar(self.eps))

    def apply(self, params, x):
        xc = x - x.mean(axis=-1, keepdims=True)
        inv = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        y = xc * inv
        return y, (y, inv)

    def vjp(self, params, cache, g):
        y, inv = cache
        if g.ndim > y.ndim:
            y, inv = y[:, None], inv[:, None]
        return inv * (g - g.mean(axis=-1, keepdims=True) - y * (g * y).mean(axis=-1, keepdims=True)), []

    def jvp(self, params, cache, dx, dparams):
        if dx is None:
            return None
        y, inv = cache
        dxc = dx - dx.mean(axis=-1, keepdims=True)
        return inv * (dxc - y * (dxc * y).mean(axis=-1, keepdims=True))
