"""``Residual``: ``block(z) + alpha z``, and its constructor ``residual``."""
from __future__ import annotations

from typing import Sequence

from .. import signals
from ..errors import ArchitectureError, ParameterError, ShapeError
from ..signals import Kind, Signal
from .base import Layer, Serial, check_sigma


class Residual(Layer):
    """``block(z) + alpha z``.

    Kernels: ``K_out = K_block + alpha^2 K_in`` (likewise ``Theta``). This needs
    ``block(z)`` uncorrelated with ``z``, true when the block ends with a Dense
    layer (zero-mean weights independent of ``z``), which is therefore required.
    """

    def __init__(self, block: Layer, alpha: float = 1.0):
        if not isinstance(block, Layer):
            raise ParameterError(f"residual() takes a layer, got {block!r}")
        if not block.ends_with_dense:
            raise ParameterError(
                "a residual block must end with a Dense layer: otherwise block(z) and z are "
                "correlated and K_block + alpha^2 K_in is not the kernel of block(z) + alpha z"
            )
        self.block = block
        self.alpha = check_sigma("alpha", alpha)

    def __repr__(self):
        return f"residual({self.block!r}, alpha={self.alpha})"

    takes_pending = True  # the block's first layer may fuse with a pending activation

    def signal_out(self, signal):
        if signal.flattened:
            raise signals.refuse(self, "its skip comes from Flatten (per-position kernels), which a residual sum "
                                 "does not handle", "insert a Dense between Flatten and it")
        if signal.kind is Kind.DATA:
            raise signals.refuse(
                self, "its skip is the raw input, so the block's last layer has as many outputs as the input has "
                "features at every width: nothing Gaussian follows the sum", signals.INSERT_DENSE)
        try:
            block = self.block.signal_out(signal)
        except ArchitectureError as exc:
            raise ArchitectureError(f"in the block of {self!r}: {exc}") from None
        skip = signals.materialised(signal)
        if skip.kind is Kind.GAUSSIAN and block.kind is Kind.GAUSSIAN:
            return signals.GAUSSIAN.but(flattened=skip.flattened)  # a sum of independent Gaussians
        return Signal(Kind.OTHER, centred=skip.centred and block.centred, flattened=skip.flattened,
                      origin=f"the sum of a residual block and a skip that is {skip.describe}")

    def kernel_fn(self, state, bk):
        first = self.block.layers[0] if isinstance(self.block, Serial) else self.block
        skip = state.materialised(bk)
        out = self.block.kernel_fn(state if first.takes_pending else skip, bk)
        state = skip
        if out.spatial != state.spatial:
            raise ShapeError(f"a residual block must keep the spatial shape: {state.spatial} -> {out.spatial}")
        return out.added(bk, state, bk.scalar(self.alpha))  # K_block + alpha^2 K_in, likewise Theta

    @property
    def needs_full_spatial(self) -> bool:
        return self.block.needs_full_spatial

    def init_params(self, rng, in_shape, width, out_dim):
        p, shape = self.block.init_params(rng, in_shape, width, in_shape[-1])
        if tuple(shape) != tuple(in_shape):
            raise ShapeError(f"a residual block must keep the shape of its input: {tuple(in_shape)} -> {tuple(shape)}")
        return p, tuple(in_shape)

    def apply(self, params, x):
        y, c = self.block.apply(params, x)
        return y + self.alpha * x, c

    def vjp(self, params, cache, g):
        gx, gp = self.block.vjp(params, cache, g)
        return gx + self.alpha * g, gp

    def jvp(self, params, cache, dx, dparams):
        out = self.block.jvp(params, cache, dx, dparams)
        return out if dx is None else out + self.alpha * dx

    def ntk_gram(self, params, c1, g1, c2, g2, full):
        h1, h2, gram = self.block.ntk_gram(params, c1, g1, c2, g2, full)
        out1 = h1 + self.alpha * g1
        return out1, (out1 if h2 is h1 and g2 is g1 else h2 + self.alpha * g2), gram


def _as_block(block: Layer | Sequence[Layer]) -> Layer:
    if isinstance(block, Layer):
        return block
    if not isinstance(block, (list, tuple)):
        raise ParameterError(f"residual() takes a layer or a list of layers, got {type(block).__name__} {block!r}"[:200])
    return Serial(*block)


def residual(block: Layer | Sequence[Layer], alpha: float = 1.0) -> Residual:
    """Residual layer ``block(z) + alpha z``; ``block`` a layer or a list of layers."""
    return Residual(_as_block(block), alpha)
