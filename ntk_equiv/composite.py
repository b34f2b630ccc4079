"""Composite activations (issue 16.2): ``psi(phi(u))`` of one Gaussian pre-activation.

An activation right after an activation sees ``phi(u)``, not a Gaussian, so
its own dual maps do not apply; but both act on the same Gaussian ``u`` per
point, so the pair is one activation ``psi o phi`` and its dual maps are
those of docs/theory.md C1 for the composite (the NTK factor is
``E[(psi o phi)'(u) (psi o phi)'(v)]``, with ``(psi o phi)' = psi'(phi) phi'``).
"""
from __future__ import annotations

import functools

from .activations import X, Activation, activation, exact_kinks_of
from .errors import QuadratureError

def _slope(act: Activation) -> float | None:
    """The negative-side slope of a ReLU-family activation (relu: 0), else ``None``."""
    if act.name == "relu":
        return 0.0
    if act.name == "leaky_relu":
        return float(dict(act.params)["alpha"])
    return None


def _named_identity(outer: Activation, inner: Activation) -> Activation | None:
    """The composite as a named activation (closed-form dual maps) when an
    identity gives one:

    * ``identity o phi = phi o identity = phi``;
    * ``leaky_a o leaky_b = leaky_{a b}`` for slopes ``a, b >= 0`` (each is
      ``x`` for ``x > 0`` and multiplies ``x <= 0`` by its slope), with relu the
      slope 0: ``relu o relu = relu``, ``relu o leaky_b = leaky_a o relu = relu``;
    * ``relu o abs = abs`` and ``abs o abs = abs`` (``|x| >= 0``), ``abs o relu = relu``
      (``relu >= 0``);
    * ``sign o phi = sign`` for ``phi`` odd-signed (``sign(phi(x)) = sign(x)``):
      ``sign``, ``erf``, ``leaky_a`` with ``a > 0``.
    """
    if outer.name == "identity":
        return inner
    if inner.name == "identity":
        return outer
    a, b = _slope(outer), _slope(inner)
    if a is not None and b is not None:
        return activation("relu") if a * b == 0 else activation("leaky_relu", alpha=a * b)
    if a is not None and inner.name == "abs":
        return inner
    if outer.name == "abs" and (inner.name == "abs" or b == 0.0):
        return inner
    if outer.name == "sign" and (inner.name in ("sign", "erf") or (b is not None and b > 0)):
        return outer
    return None


@functools.lru_cache(maxsize=256)  # once per pair, not once per kernel tile
def compose(outer: Activation, inner: Activation) -> Activation:
    """``outer o inner`` as one :class:`~ntk_equiv.activations.Activation`.

    A named activation when an identity gives one (:func:`_named_identity`);
    otherwise the expression ``outer(inner(x))`` (sympy substitution), whose
    dual maps come from the expression machinery: the Mehler/Hermite expansion
    when it is smooth, the 2-D quadrature split at its kinks otherwise, at
    float64 and at ``dps=``. Its float64 functions are the two activations'
    own, chained (``outer(inner(x))`` and ``outer'(inner(x)) inner'(x)``), as
    in the finite-width network.
    """
    named = _named_identity(outer, inner)
    if named is not None:
        return named
    expr = outer.expr.subs(X, inner.expr)

    def f(x):
        return outer(inner(x))

    def df(x):
        return outer.derivative(inner(x)) * inner.derivative(x)

    return Activation(f"{outer.name}({inner.name})", expr, numpy_fn=f, numpy_deriv=df)


def refusal(phi: Activation) -> str | None:
    """Why the dual maps of the composite ``phi`` (from :func:`compose`) cannot be
    computed, or ``None`` when they can: a closed form, or an expression with finitely
    many kinks, which the expression machinery integrates at float64 and at ``dps=``
    (Hermite / split expansion / quadrature, each with its own accuracy check).
    A function with infinitely many kinks (``relu(cos(x))`` kinks at every
    ``pi/2 + k pi``) has no finite split, and the Gaussian tail does not make the far
    kinks negligible at every precision asked for, so it is refused."""
    if phi.closed_form is not None:
        return None
    try:
        exact_kinks_of(phi.expr)
    except QuadratureError as exc:
        return f"{phi.name} has infinitely many kinks (or kinks sympy cannot locate): {exc}"
    return None
