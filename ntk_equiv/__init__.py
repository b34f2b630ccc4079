"""ntk-equiv: machine-checked companion to *On the Equivalence of Random Network
Distillation, Deep Ensembles, and Bayesian Inference* (arXiv 2602.19964).

Notation and claims: ``docs/theory.md`` (C1-C9). Quick start::

    import ntk_equiv as ne
    arch = ne.mlp(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)
    k = arch.kernel(x1)            # ne.Kernel(nngp, ntk), float64
    k = arch.kernel(x1, dps=50)    # mpmath matrices, 50 correct digits
"""
from .activations import Activation, activation
from .dynamics import Gaussian, ensemble, linearised_predict
from .errors import (
    ArchitectureError, CatalogueError, ClaimFailure, ConvergenceError, DegenerateInputError, EmptyInputError, ExpressionError,
    IllConditionedError, KernelError, PrecisionWarning, NonFiniteError, NotCertifiedError, NtkEquivError,
    ParameterError, QuadratureError, RangeError, ResourceError, ShapeError, StabilityError, UnknownActivationError,
)
from .kernels import Kernel
from .layers import (
    Abs, Act, AvgPool, Conv, Cos, Dense, Erf, Flatten, GlobalAvgPool, Identity, Layer, LayerNorm, LeakyRelu, Relu,
    Residual, Serial, Sign, Sin, residual,
)
from .layers import Elu, Gelu, HardTanh, Relu6, Sigmoid, Silu, Softplus, Tanh
from .architecture import Architecture, mlp, serial
from .network import Network
from .fluctuations import FiniteWidth, finite_width, width_for
from .rnd import RND, BayesianRND, bayesian_rnd_covariance, gp_posterior, rnd_covariance

__version__ = "0.1.0"

__all__ = [
    "AvgPool", "Conv", "Flatten", "GlobalAvgPool", "LayerNorm",
    "Abs", "Act", "Activation", "Architecture", "ArchitectureError", "CatalogueError", "ClaimFailure", "ConvergenceError", "Cos", "Dense",
    "DegenerateInputError", "EmptyInputError", "Erf", "ExpressionError", "Gaussian", "Identity",
    "IllConditionedError", "Kernel", "KernelError", "Layer", "LeakyRelu", "Network", "NonFiniteError",
    "NotCertifiedError", "NtkEquivError", "ParameterError", "PrecisionWarning", "QuadratureError", "RangeError", "Relu", "ResourceError", "Residual", "Serial", "ShapeError",
    "Sign", "Sin", "StabilityError", "UnknownActivationError", "activation", "ensemble",
    "linearised_predict", "mlp", "residual", "serial",
    "FiniteWidth", "finite_width", "width_for",
    "RND", "BayesianRND", "bayesian_rnd_covariance", "gp_posterior", "rnd_covariance",
    "Elu", "Gelu", "HardTanh", "Relu6", "Sigmoid", "Silu", "Softplus", "Tanh",
]
