"""A sympy *elementwise* backend, so the library's own closed forms and layer
transforms (written against :mod:`ntk_equiv.precision` backends) can be run on
symbols: the proofs check the library's formula, not a copy of it.

Two functions are realised on the open domain the proofs state as assumptions:

* ``atan2(y, x) = 2 atan(y / (sqrt(x^2 + y^2) + x))`` (the half-angle form,
  exact whenever ``y > 0`` or ``x > 0``; the proofs assume ``det > 0``, i.e. a
  non-degenerate covariance, so ``y = sqrt(det) > 0``);
* ``maximum0(x) = x`` (the argument is a determinant, ``>= 0`` for a PSD covariance).

``sqrt`` factors its argument first, so ``sqrt(a^2 b^2) = a b`` for positive symbols.
``scalar`` maps chosen float parameters (e.g. ``sigma_w = 1.5``) to symbols,
so a layer built with floats is transformed with symbolic ``sigma_w``.
Functions act elementwise on numpy object arrays (the kernels' pair lists).
"""
from __future__ import annotations

import contextlib
from typing import Mapping

import numpy as np
import sympy as sp


def _elementwise(f, nin: int = 1):
    uf = np.frompyfunc(f, nin, 1)

    def apply(*args):
        if all(not isinstance(a, np.ndarray) for a in args):
            return f(*args)
        return uf(*args)

    return apply


def _sqrt(x):
    return sp.sqrt(sp.factor(sp.cancel(x)))


def _atan2(y, x):
    return 2 * sp.atan(sp.cancel(y / (_sqrt(x**2 + y**2) + x)))


class _Magnitude:
    """``|x|`` of a symbol: every comparison with a number is *undecided* and
    answers False, so the library's magnitude branches (float accuracy devices
    with the same exact value) take their closed-form side. Only comparisons
    are allowed: arithmetic on it raises."""

    def __init__(self, value):
        self.value = value

    def _undecided(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _undecided


def exact(v) -> sp.Expr:
    """A number produced by the library as an exact sympy number: floats become
    the rationals they are, integers stay integers, sympy objects pass through.
    Never parses text (no ``sympify`` of strings)."""
    if isinstance(v, sp.Basic):
        return v
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"not a number: {v!r}")
    if isinstance(v, (int, np.integer)):
        return sp.Integer(int(v))
    if isinstance(v, (float, np.floating)):
        return sp.Rational(float(v))
    raise TypeError(f"cannot make an exact sympy number of {type(v).__name__}")


class SympyElementwise:
    """Elementwise sympy functions with the interface of the numeric backends."""

    name = "sympy-elementwise"
    pi = sp.pi
    eps = 0

    def __init__(self, symbols: Mapping[float, sp.Symbol] | None = None):
        self.symbols = dict(symbols or {})
        self.sqrt = _elementwise(_sqrt)
        self.atan2 = _elementwise(_atan2, 2)
        self.exp = _elementwise(sp.exp)
        self.expm1 = _elementwise(lambda v: sp.exp(v) - 1)
        self.sinh = _elementwise(sp.sinh)
        self.cosh = _elementwise(sp.cosh)
        self.sin = _elementwise(sp.sin)
        self.cos = _elementwise(sp.cos)
        self.log = _elementwise(sp.log)
        self.log1p = _elementwise(lambda v: sp.log(1 + v))
        self.abs = _elementwise(lambda v: sp.Abs(sp.factor(v)))
        self.maximum0 = _elementwise(lambda v: v)
        self.minimum = _elementwise(sp.Min, 2)
        self.maximum = _elementwise(sp.Max, 2)

    def context(self):
        return contextlib.nullcontext()

    def scalar(self, v):
        """A chosen parameter value -> its symbol; any other float -> the exact rational."""
        return self.symbols.get(v, exact(v))

    @staticmethod
    def where(c, a, b):
        """``a`` where ``c`` is definitely true, else ``b``. The library's branches
        on magnitudes (``|eta w| < 1/2``: log1p/expm1 vs the power) are float
        accuracy devices with the same exact value; on symbols the condition is
        undecided and the closed-form (else) branch is taken."""
        pick = lambda ci, ai, bi: ai if ci is True or ci is sp.true else bi  # noqa: E731
        return _elementwise(pick, 3)(c, a, b)

    def asarray(self, x):
        return np.asarray(x, dtype=object)


class EigenSympy(SympyElementwise):
    """Adds ``sym_fun`` for matrices built as ``Q diag(w) Q^T`` (registered with
    :meth:`register`), so :func:`ntk_equiv.formulas.train_operator` runs exactly
    on a symbolic train kernel with known eigen-decomposition."""

    def __init__(self, symbols=None):
        super().__init__(symbols)
        self.abs = _elementwise(_Magnitude)  # only compared (float accuracy branches of the GD gain)
        self._known: list = []

    def register(self, Q: sp.Matrix, w) -> sp.Matrix:
        T = Q * sp.diag(*w) * Q.T
        self._known.append((T, Q, list(w)))
        return T

    def eye(self, n):
        return sp.eye(n)

    def sym_fun(self, a, fun):
        for T, Q, w in self._known:
            shift = (sp.Matrix(a) - T).applyfunc(sp.cancel)  # a = T + c I has eigenvalues w + c
            c = shift[0, 0]
            if shift == c * sp.eye(T.shape[0]):
                vals = fun(np.array([wi + c for wi in w], dtype=object))
                return Q * sp.diag(*list(vals)) * Q.T
        raise ValueError("sym_fun needs a matrix registered with its eigen-decomposition")
