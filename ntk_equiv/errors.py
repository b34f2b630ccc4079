"""The library's exceptions: one type per kind of misuse, all catchable as
:class:`NtkEquivError`.

Each type also derives from the matching builtin (``ValueError``,
``LinAlgError``...) so that generic ``except ValueError`` code keeps working.
"""
from __future__ import annotations

import numpy as np


class NtkEquivError(Exception):
    """Base class of every error raised on purpose by ntk_equiv."""


class ShapeError(NtkEquivError, ValueError):
    """Arrays whose shapes do not fit together (feature dimension, heads...)."""


class NonFiniteError(NtkEquivError, ValueError):
    """NaN or infinity in an input."""


class EmptyInputError(NtkEquivError, ValueError):
    """An input with no rows or no features."""


class ParameterError(NtkEquivError, ValueError):
    """A parameter outside its domain (depth < 1, sigma < 0, lr <= 0, ...)."""


class ArchitectureError(NtkEquivError, ValueError):
    """A composition of layers whose infinite-width kernel is not computable
    (an activation of a non-Gaussian signal, a residual on the raw input...):
    raised by ``kernel()`` before any numerical work, naming the layer, why,
    and what to insert. Finite-width networks still run it."""


class UnknownActivationError(NtkEquivError, ValueError):
    """An activation name that is not known and not a valid expression."""


class ExpressionError(NtkEquivError, ValueError):
    """An activation expression that is not a safe function of ``x`` alone."""


class DegenerateInputError(NtkEquivError, ValueError):
    """Inputs for which the requested quantity is undefined (zero-norm input
    without bias, duplicate training inputs without ridge)."""


class KernelError(NtkEquivError, np.linalg.LinAlgError):
    """A kernel matrix that is not symmetric positive (semi-)definite, or is too
    ill-conditioned for the requested precision."""


class IllConditionedError(KernelError):
    """Float64 is out of its depth: the condition number says the answer would
    have fewer correct digits than promised. Use the high-precision path
    (``dps=50``) or add ridge/noise."""


class StabilityError(NtkEquivError, ValueError):
    """A learning rate at or above the gradient-descent stability bound
    ``2 / lambda_max(Theta_XX)``."""


class ConvergenceError(NtkEquivError, RuntimeError):
    """Training hit its step cap before reaching the residual tolerance."""


class QuadratureError(NtkEquivError, ArithmeticError):
    """A quadrature whose error estimate does not reach the requested precision."""


class ClaimFailure(NtkEquivError, AssertionError):
    """A proof or check whose identity does not hold."""


class CatalogueError(NtkEquivError, ValueError):
    """A check declared for an id or level the catalogue of claims and statements does not have, or twice."""


class PrecisionWarning(UserWarning):
    """A float64 result computed outside the range where its accuracy was
    validated (the message says which); the ``dps=`` path is exact there."""


class RangeError(NtkEquivError, OverflowError):
    """A number outside the range float64 can hold or square (inputs of norm
    1e160, sigma_w = 1e200, a kernel that overflows through depth): the
    message says which input or parameter; rescale it or use ``dps=``."""


class ResourceError(NtkEquivError, MemoryError):
    """A request whose estimated memory or work is beyond what can be done
    (the message says how much); make it smaller."""


class NotCertifiedError(NtkEquivError, ValueError):
    """A computation that has no certified (ball-arithmetic) version: an
    activation without closed-form dual maps, a data prefix, or python-flint
    (the ``certified`` extra) not installed."""
