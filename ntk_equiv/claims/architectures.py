"""Random convolutional architectures and image inputs for the E- and P-level
checks: 1-D and 2-D, every padding, strides, pooling / flatten / global
pooling, with and without LayerNorm and residual blocks (issue 12)."""
from __future__ import annotations

import numpy as np

from ..layers import AvgPool, Conv, Flatten, GlobalAvgPool, LayerNorm
from ..architecture import serial
from ..layers import Act, Dense, residual
from ..spatial import PADDINGS, Window

ACTIVATIONS = ("relu", "erf", "abs", "leaky_relu")


def image_inputs(rng: np.random.Generator, n: int, shape: tuple) -> np.ndarray:
    """``n`` inputs of ``shape`` (``(*S, C)``), each scaled to squared norm
    ``prod(shape)`` (kernel entries O(1))."""
    x = rng.standard_normal((n,) + tuple(shape))
    norms = np.sqrt(np.sum(x * x, axis=tuple(range(1, x.ndim))))
    return x / norms.reshape((n,) + (1,) * len(shape)) * np.sqrt(np.prod(shape))


HEADS = ("GlobalAvgPool", "Flatten", "AvgPool")


def random_cnn(rng: np.random.Generator, max_depth: int = 3, one_hidden: bool = False, heads: tuple = HEADS,
               dims: tuple = (1, 2)):
    """``(label, architecture, input_shape)``: ``1..max_depth`` convolutions
    (1-D or 2-D, random filter, stride, padding, sigmas), an activation after
    each, optionally LayerNorm before it and a residual block, then
    GlobalAvgPool, Flatten or AvgPool + Flatten, and a Dense readout.
    ``one_hidden``: a single convolution with nothing but pooling after its
    activation (the kernels are then exact expectations at every width).
    ``heads``/``dims``: the allowed heads and numbers of spatial axes."""
    k = int(rng.choice(dims))
    spatial = tuple(int(v) for v in rng.integers(4, 7 if k == 1 else 6, size=k))
    channels = int(rng.integers(1, 4))
    shape, layers, parts = spatial, [], []
    depth = 1 if one_hidden else int(rng.integers(1, max_depth + 1))
    for i in range(depth):
        size = tuple(int(v) for v in rng.integers(1, 4, size=k))
        strides = tuple(int(v) for v in rng.integers(1, 3, size=k)) if rng.random() < 0.4 else 1
        padding = str(rng.choice(PADDINGS))
        strides_t = strides if isinstance(strides, tuple) else (1,) * k
        if padding == "VALID" and any(s < f for s, f in zip(shape, size)):
            padding = "SAME"
        out, _ = Window(size, strides_t, padding).plan(shape)
        if min(out) < 2:  # keep some space for what follows
            strides, strides_t = 1, (1,) * k
            out, _ = Window(size, strides_t, padding).plan(shape)
        sw, sb = float(rng.uniform(0.8, 1.8)), float(rng.uniform(0.0, 0.5))
        layers.append(Conv(size, strides, padding, sw, sb))
        parts.append(f"Conv{size}/{strides_t}/{padding}")
        shape = out
        if not one_hidden and rng.random() < 0.3:
            layers.append(LayerNorm())
            parts.append("LayerNorm")
        name = str(rng.choice(ACTIVATIONS))
        layers.append(Act(name, alpha=0.1) if name == "leaky_relu" else Act(name))
        parts.append(name)
        if not one_hidden and i == depth - 1 and rng.random() < 0.3:
            layers.append(residual([Conv((3,) * k, 1, "SAME", 1.1, 0.1), Act("relu"), Conv((1,) * k, 1, "CIRCULAR", 1.0, 0.1)],
                                   float(rng.uniform(0.3, 1.0))))
            parts.append("residual(Conv, relu, Conv)")
    head = HEADS.index(str(rng.choice(heads)))
    if head == 0:
        layers.append(GlobalAvgPool())
        parts.append("GlobalAvgPool")
    elif head == 1:
        layers.append(Flatten())
        parts.append("Flatten")
    else:
        layers += [AvgPool((2,) * k, padding="SAME"), Flatten()]
        parts.append("AvgPool(2, SAME), Flatten")
    layers.append(Dense(float(rng.uniform(0.8, 1.6)), float(rng.uniform(0.0, 0.3))))
    parts.append("Dense")
    return f"cnn{k}d[{', '.join(parts)}]", serial(*layers), spatial + (channels,)
