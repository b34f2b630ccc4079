"""Architectures: a composition of layers with the user-facing entry points
:meth:`Architecture.kernel` (infinite width) and :meth:`Architecture.init`
(finite width, a :class:`~ntk_equiv.network.Network`), and the constructors
``serial`` and ``mlp``. This module sits above both :mod:`ntk_equiv.layers`
and :mod:`ntk_equiv.network`, which do not import each other.
"""
from __future__ import annotations

import numpy as np

from .activations import Activation
from .activations import activation as _activation
from .layers import Act, Dense, Layer, Serial
from .network import Network
from .validation import check_positive_int


def serial(*layers: Layer) -> "Architecture":
    """An architecture from layers: ``serial(Dense(...), Relu(), Dense(...))``."""
    return Architecture(*layers)


class Architecture(Serial):
    """A composition of layers with the user-facing entry points
    :meth:`kernel` (infinite width) and :meth:`init` (finite width)."""

    def init(self, width: int, out_dim: int = 1, seed: int | np.random.Generator | None = 0, in_dim: int | None = None):
        """A finite-width network drawn at random (all ``W, b`` i.i.d. N(0, 1)).

        ``in_dim`` is inferred at the first call if not given. ``seed``: a
        non-negative int, a ``numpy.random.Generator`` or ``SeedSequence``
        (``None`` is refused: results are reproducible by design).
        """
        return Network(self, width=width, out_dim=out_dim, seed=seed, in_dim=in_dim)


#: Deepest ``mlp`` accepted: far beyond any use here; bounds the work and the
#: size of the layer list a typo like ``depth=10**9`` would build.
MAX_DEPTH = 10_000


def mlp(depth: int, activation: str | Activation = "relu", sigma_w: float = 1.0, sigma_b: float = 0.0,
        **activation_params) -> Architecture:
    """The MLP of docs/theory.md: ``depth`` hidden layers (Dense + activation) and a
    Dense readout, all with the same ``sigma_w, sigma_b``.

    ``K^1 = sigma_w^2 <x, x'>/d + sigma_b^2``, then C1's recursion ``depth`` times.
    """
    depth = check_positive_int(depth, "depth (number of hidden layers)", maximum=MAX_DEPTH)
    phi = _activation(activation, **activation_params)
    layers: list[Layer] = []
    for _ in range(int(depth)):
        layers += [Dense(sigma_w, sigma_b), Act(phi)]
    layers.append(Dense(sigma_w, sigma_b))
    return Architecture(*layers)
