"""The paper's formulas as printed, with the printed choices as parameters.

Each function evaluates one formula of the paper (thesis chapter 5) with the
choice the paper prints passed in (a sign, a factor, the list of covariance
terms), so the same line evaluates the printed and the corrected form in every
number type: float64 arrays, mpmath object arrays, sympy matrices (explicit
or ``MatrixSymbol`` expressions). Only ``@``, ``.T``, ``+``, ``-`` and scalar
products are used; ``theta_inv`` is ``Theta_XX^{-1}`` computed by the caller
(e.g. :func:`ntk_equiv.formulas.train_operator`, ``A_inf``).

Notation (the paper's): NNGP kernel ``kappa``, NTK ``Theta``, training inputs
``X`` with labels ``Y``, test inputs ``X_T`` (blocks ``T``/``x`` below);
kernel blocks are dicts ``{"xx": C(X_T, X_T), "xX": C(X_T, X), "XX": C(X, X)}``.
"""
from __future__ import annotations

from typing import Any, Sequence

Array = Any


def converged_network(f0_x: Array, f0_X: Array, theta_xX: Array, theta_inv: Array, Y: Array, sign: int) -> Array:
    """Prop 5.1: ``f(x; theta_inf) = f(x; theta_0) + sign Theta_xX Theta_XX^{-1} (Y - f(X; theta_0))``.

    Printed ``sign = -1``; corrected ``sign = +1`` (the limit of gradient flow,
    :func:`ntk_equiv.formulas.linearised_mean` with ``A_inf``)."""
    return f0_x + sign * (theta_xX @ (theta_inv @ (Y - f0_X)))


def _term(name: str, kappa: dict, theta: dict, theta_inv: Array) -> Array:
    k, T, Ti = kappa, theta, theta_inv
    if name == "kappa_TT":
        return k["xx"]
    if name == "Theta_TX Theta^-1 kappa_XX Theta^-1 Theta_XT":
        return T["xX"] @ Ti @ k["XX"] @ Ti @ T["xX"].T
    if name == "Theta_TX Theta^-1 kappa_XT":
        return T["xX"] @ Ti @ k["xX"].T
    if name == "kappa_TX Theta^-1 Theta_XT":
        return k["xX"] @ Ti @ T["xX"].T
    raise ValueError(f"unknown covariance term {name!r}")


def converged_cov(terms: Sequence[tuple[int, str]], kappa: dict, theta: dict, theta_inv: Array) -> Array:
    """Prop 5.2 / 5.3: the converged network's covariance as a signed sum of the
    printed terms, ``kappa_TT + Theta_TX Theta^{-1} kappa_XX Theta^{-1} Theta_XT
    - (Theta_TX Theta^{-1} kappa_XT + h.c.)`` for the printed list."""
    if not terms:
        raise ValueError("a covariance needs at least one term")
    out = None
    for sign, name in terms:
        t = sign * _term(name, kappa, theta, theta_inv)
        out = t if out is None else out + t
    return out


def converged_mean(theta_xX: Array, theta_inv: Array, Y: Array) -> Array:
    """Prop 5.2: ``E f(X_T; theta_inf) = Theta_TX Theta^{-1} Y``."""
    return theta_xX @ (theta_inv @ Y)
