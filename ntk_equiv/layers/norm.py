"""``LayerNorm``: normalisation over the channel axis, exact in the limit
after a Dense or Conv layer, and fused with a preceding activation."""
from __future__ import annotations

import numpy as np

from .. import kernels, signals
from ..errors import DegenerateInputError
from ..signals import Kind, Signal
from .base import Layer, check_sigma


class LayerNorm(Layer):
    """Normalise over the channel axis: ``(z - mean_c z) / sqrt(var_c z + eps)``
    at finite width; kernel ``K[s, s'] / sqrt(K_xx[s, s] K_x'x'[s', s'])``."""

    def __init__(self, eps: float = 1e-12):
        self.eps = check_sigma("eps", eps)

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
        # after Flatten only a Dense can come between (a Conv needs spatial axes)
        insert = "insert a Dense between Flatten and it" if signal.flattened else signals.INSERT_DENSE
        raise signals.refuse(self, why, insert)

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
        return state.normalised_by(den)

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
        return out.with_values(bk, (out.nngp - means) / den, out.ntk / den)  # gaps from the values

    def apply_to_data(self, z, bk):
        if bk.vectorised:
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
