"""Layers, one module per family: the protocol and serial composition
(:mod:`.base`), ``Dense`` (:mod:`.dense`), activations (:mod:`.activation`),
``Residual`` (:mod:`.residual`), ``Conv`` (:mod:`.conv`), pooling
(:mod:`.pool`), ``Flatten`` (:mod:`.flatten`) and ``LayerNorm`` (:mod:`.norm`).

Architectures (``Architecture``, ``serial``, ``mlp``) are built from these in
:mod:`ntk_equiv.architecture`, above :mod:`ntk_equiv.network`: nothing here
imports the finite-width network.
"""
from .activation import (
    Abs,
    Act,
    Cos,
    Elu,
    Erf,
    Gelu,
    HardTanh,
    Identity,
    LeakyRelu,
    Relu,
    Relu6,
    Sigmoid,
    Sign,
    Silu,
    Sin,
    Softplus,
    Tanh,
)
from .base import Layer, Serial, data_prefix
from .conv import Conv
from .dense import Dense
from .flatten import Flatten
from .norm import LayerNorm
from .pool import AvgPool, GlobalAvgPool
from .residual import Residual, residual

__all__ = [
    "Abs", "Act", "AvgPool", "Conv", "Cos", "Dense", "Elu", "Erf", "Flatten", "Gelu", "GlobalAvgPool", "HardTanh",
    "Identity", "Layer", "LayerNorm", "LeakyRelu", "Relu", "Relu6", "Residual", "Serial", "Sigmoid", "Sign", "Silu",
    "Sin", "Softplus", "Tanh", "data_prefix", "residual",
]
