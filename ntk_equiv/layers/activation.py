"""``Act``: an elementwise activation layer, and the stax-style constructors of
the named activations (``Relu()``, ``Erf()``, ``Gelu()``...; one per record of
:data:`ntk_equiv.activations.CATALOGUE`)."""
from __future__ import annotations

import numpy as np

from .. import signals
from ..activations import Activation
from ..activations import activation as _activation
from .. import composite
from ..composite import compose
from ..signals import Kind
from .base import Layer, same_batch


class Act(Layer):
    """Elementwise activation ``phi`` (a name, an expression in ``x`` or an
    :class:`~ntk_equiv.activations.Activation`).

    Kernels: ``K_out = E[phi(u) phi(v)]``, ``Theta_out = E[phi'(u) phi'(v)] Theta_in``.
    """

    def __init__(self, phi: str | Activation = "relu", **params):
        self.phi = _activation(phi, **params)

    def __repr__(self):
        return f"Act({self.phi.name!r})"

    takes_pending = True

    def signal_out(self, signal):
        if signal.kind is Kind.GAUSSIAN:  # after Flatten too: per position
            return signal.but(kind=Kind.ELEMENTWISE, centred=False, origin=f"the output of {self!r}", phi=self.phi)
        if signal.kind is Kind.DATA:
            return signal  # phi(x) of the data, exactly (the data prefix)
        if signal.kind is Kind.ELEMENTWISE:
            # psi(phi(u)): one activation of the same Gaussian pre-activation (ntk_equiv.composite),
            # computed unless its kinks cannot be split at (composite.refusal: relu(cos))
            phi = compose(self.phi, signal.phi) if signal.phi is not None else None
            why = "its input's activation is unknown" if phi is None else composite.refusal(phi)
            if why is None:
                return signal.but(origin=f"{signal.origin or 'an activation'} then {self!r}", phi=phi)
            raise signals.refuse(self, f"its input is {signal.describe}, not Gaussian, and {why}",
                                 signals.INSERT_DENSE)
        why = (f"its input is {signal.describe}: not a function of one Gaussian pre-activation per point, "
               "so no dual map gives its kernel")
        raise signals.refuse(self, why, signals.INSERT_DENSE)

    def kernel_fn(self, state, bk):
        # pending, not applied: the next layer fuses with it (an activation, LayerNorm) or
        # the engine applies its dual maps first (PairState.materialised)
        return state.with_pending(self.phi if state.pending is None else compose(self.phi, state.pending))

    def apply(self, params, x):
        return self.phi(x), x

    def apply_to_data(self, z, bk):
        if bk.vectorised:
            return self.phi(z)
        f = self.phi.mp_functions(bk.ctx)[0]  # phi in bk's own context
        return np.frompyfunc(lambda v: bk.ctx.convert(f(v)), 1, 1)(z)

    def vjp(self, params, x, g):
        d = self.phi.derivative(x)
        return g * (d[:, None] if g.ndim > x.ndim else d), []

    def jvp(self, params, x, dx, dparams):
        return None if dx is None else self.phi.derivative(x) * dx

    def ntk_gram(self, params, x1, g1, x2, g2, full):
        h1 = g1 * self.phi.derivative(x1)[:, None]
        return h1, (h1 if same_batch(x1, g1, x2, g2) else g2 * self.phi.derivative(x2)[:, None]), 0.0


def Relu() -> Act:  # noqa: N802 - stax-style constructor
    return Act("relu")


def LeakyRelu(alpha: float = 0.01) -> Act:  # noqa: N802
    return Act("leaky_relu", alpha=alpha)


def Erf() -> Act:  # noqa: N802
    return Act("erf")


def Abs() -> Act:  # noqa: N802
    return Act("abs")


def Sign() -> Act:  # noqa: N802
    return Act("sign")


def Identity() -> Act:  # noqa: N802
    return Act("identity")


def Sin() -> Act:  # noqa: N802
    return Act("sin")


def Cos() -> Act:  # noqa: N802
    return Act("cos")


# ---- constructors of the other catalogue activations (ntk_equiv.activations.CATALOGUE; one per record,
# the tests check that every record has its constructor here and exported by ntk_equiv) ----
def Gelu() -> Act:  # noqa: N802
    """``x Phi(x)`` (exact GELU; closed-form dual maps)."""
    return Act("gelu")


def Tanh() -> Act:  # noqa: N802
    return Act("tanh")


def Sigmoid() -> Act:  # noqa: N802
    """``1 / (1 + e^{-x})``."""
    return Act("sigmoid")


def Softplus() -> Act:  # noqa: N802
    """``log(1 + e^x)``."""
    return Act("softplus")


def Silu() -> Act:  # noqa: N802
    """``x sigmoid(x)`` (swish)."""
    return Act("silu")


def Elu(alpha: float = 1.0) -> Act:  # noqa: N802
    """``x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise."""
    return Act("elu", alpha=alpha)


def Relu6() -> Act:  # noqa: N802
    """``min(max(x, 0), 6)`` (kinks at 0 and 6: quadrature)."""
    return Act("relu6")


def HardTanh() -> Act:  # noqa: N802
    """``min(max(x, -1), 1)`` (kinks at -1 and 1: quadrature)."""
    return Act("hard_tanh")
