"""``Flatten``: ``(N, *S, C) -> (N, |S| C)``, keeping the per-position kernels."""
from __future__ import annotations

import numpy as np

from ..signals import Kind
from .base import Layer


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

            def diag(arr):  # pairs last: (*S, *S, P) -> (*S, P)
                return np.ascontiguousarray(np.diagonal(arr.reshape(m, m, p), axis1=0, axis2=1).T).reshape(
                    state.spatial + (p,))
            out = state.selected(diag, full=False)
        else:
            out = state.selected(lambda v: v)
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
