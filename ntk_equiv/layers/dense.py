"""``Dense``: the fully connected layer, NTK parameterisation (see :mod:`ntk_equiv.layers.base`)."""
from __future__ import annotations

import math

import numpy as np

from .. import signals
from ..errors import ShapeError
from .base import Layer, check_sigma, same_batch


class Dense(Layer):
    """Fully connected layer, NTK parameterisation.

    Kernels: ``K_out = sigma_w^2 K_in + sigma_b^2``,
    ``Theta_out = sigma_w^2 Theta_in + K_out``.
    """

    def __init__(self, sigma_w: float = 1.0, sigma_b: float = 0.0):
        self.sigma_w = check_sigma("sigma_w", sigma_w)
        self.sigma_b = check_sigma("sigma_b", sigma_b)

    def __repr__(self):
        return f"Dense(sigma_w={self.sigma_w}, sigma_b={self.sigma_b})"

    @property
    def ends_with_dense(self) -> bool:
        return True

    dense_readout = True

    def signal_out(self, signal):
        # a sum over many channels with independent zero-mean weights: Gaussian from any input
        # with finite second moments (central limit theorem over the fan-in)
        return signals.GAUSSIAN

    def kernel_fn(self, state, bk):
        state = state.collapsed(bk)  # after Flatten: the fan-in averages the positions
        sw, sb = bk.scalar(self.sigma_w), bk.scalar(self.sigma_b)
        # K_out = sigma_w^2 K_in + sigma_b^2 (the bias is a constant kernel), gaps without cancellation;
        # Theta_out = sigma_w^2 Theta_in + K_out (the layer's own parameters add K_out)
        out = state.affine(bk, sw, sb)
        out.ntk += out.nngp
        return out

    def init_params(self, rng, in_shape, width, out_dim):
        w = rng.standard_normal((out_dim, in_shape[-1]))
        b = rng.standard_normal(out_dim)
        return [w, b], tuple(in_shape[:-1]) + (out_dim,)

    def _scale(self, w):
        return self.sigma_w / math.sqrt(w.shape[1])

    def apply(self, params, x):
        w, b = params
        if x.shape[-1] != w.shape[1]:
            raise ShapeError(f"Dense layer expects {w.shape[1]} input features, got {x.shape[-1]}")
        return self._scale(w) * (x @ w.T) + self.sigma_b * b, x

    def vjp(self, params, x, g):
        w, _ = params
        s = self._scale(w)
        gf, xf = g.reshape(-1, g.shape[-1]), np.broadcast_to(x[:, None] if g.ndim > x.ndim else x,
                                                            g.shape[:-1] + x.shape[-1:]).reshape(-1, x.shape[-1])
        return s * (g @ w), [(s * gf).T @ xf, self.sigma_b * gf.sum(axis=0)]  # scale the small factor

    def jvp(self, params, x, dx, dparams):
        w, _ = params
        dw, db = dparams
        s = self._scale(w)
        out = s * (x @ dw.T) + self.sigma_b * db
        if dx is not None:
            out = out + s * (dx @ w.T)
        return out

    def example_grads(self, params, x, g):
        # the weights are shared over spatial positions: sum over them
        w, _ = params
        n, m = g.shape[:2]
        gf, xf = g.reshape(n, m, -1, g.shape[-1]), x.reshape(n, -1, x.shape[-1])
        return [self._scale(w) * np.einsum("nmpc,npd->nmcd", gf, xf), self.sigma_b * gf.sum(axis=2)]

    def ntk_gram(self, params, x1, g1, x2, g2, full):
        if x1.ndim > 2:  # on the channel axis of a spatial input
            return super().ntk_gram(params, x1, g1, x2, g2, full)
        w, _ = params
        s = self._scale(w)
        feat = (s * s) * (x1 @ x2.T) + self.sigma_b**2  # <d h / d(W,b) at x1, at x2> per unit
        if full:
            gg = np.einsum("imk,jnk->imjn", g1, g2)
            gram = gg * feat[:, None, :, None]
        else:
            gram = (g1.reshape(len(g1), -1) @ g2.reshape(len(g2), -1).T) * feat
        h1 = s * (g1 @ w)
        return h1, (h1 if same_batch(x1, g1, x2, g2) else s * (g2 @ w)), gram


    def ntk_lambda_max(self, params, x) -> float:
        """On ``(N, n)`` inputs ``a``: the Gram is ``(sigma_w^2 / n a a^T +
        sigma_b^2) (x) I_M`` (each output has its own row of ``W``, on the same
        features), so ``lambda_max`` is that of the ``(N, N)`` factor."""
        if x.ndim > 2:  # on the channel axis of a spatial input: no Kronecker factor over positions
            return super().ntk_lambda_max(params, x)
        s = self._scale(params[0])
        return float(np.linalg.eigvalsh((s * s) * (x @ x.T) + self.sigma_b**2)[-1])
