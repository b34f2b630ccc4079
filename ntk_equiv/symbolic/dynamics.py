"""C3: the linearised dynamics, exactly.

1. The ODE, derived: for the linearised model ``f(z) = f_0(z) + J(z)(theta - theta_0)``
   and ``d theta/dt = -eta grad[1/2 ||f(X) - Y||^2 + lambda/2 ||theta - theta_0||^2]``
   (sympy takes the gradient; generic Jacobian, ``P = 3`` parameters),
   ``df(x)/dt = -eta [Theta_xX (f(X) - Y) + lambda (f(x) - f_0(x))]`` with
   ``Theta = J J^T``: the ridge pulls towards the *initial function*, which is
   why ``Theta_XX + lambda I`` appears in ``A_t`` but not in ``Theta_xX``.
2. The eigenmode: ``theta_t - theta_0 = J(X)^T c_t`` with
   ``dc/dt = -eta (T c - R_0)``, ``T = Theta_XX + lambda I``, ``R_0 = Y - f_0(X)``;
   on an eigenvector of ``T`` (eigenvalue ``w``) this is the scalar ODE
   ``c' = -eta (w c - r)``, ``c(0) = 0``, which ``dsolve`` solves:
   ``c = r (1 - exp(-eta w t)) / w``, the eigenvalue of the library's ``A_t``.
3. The assembled matrix form (the library's ``train_operator`` and
   ``linearised_mean`` on a symbolic ``T = Q diag(w) Q^T``) satisfies the ODE
   at test and training inputs and the initial condition ``f_0``; and for
   general ``N``, with ``E = exp(-eta T t)`` known only through
   ``dE/dt = -eta T E``, ``E(0) = I``.
4. Gradient descent: one step maps ``A_k`` to ``A_k + eta (I - T A_k)``, and
   ``A_k = T^{-1}(I - (I - eta T)^k)`` satisfies it (induction, general ``N``)
   with ``A_0 = 0``; the library's ``A_k`` for ``k = 0..3`` too.
"""
from __future__ import annotations

import sympy as sp

from .. import formulas
from .algebra import General
from .backend import EigenSympy
from .record import Proof, Step, conclude

eta, lam, t = sp.symbols("eta lambda t", positive=True)


def _zero(name, lhs, rhs) -> Step:
    """``lhs - rhs`` cancels to 0, with each ``exp(...)`` replaced by an independent
    symbol (sufficient: a rational identity in free symbols holds for any values)."""
    diff = sp.Matrix(lhs - rhs)
    exps = {e: sp.Dummy(f"E{i}") for i, e in enumerate(sorted(diff.atoms(sp.exp), key=str))}
    d = diff.xreplace(exps).applyfunc(lambda e: sp.cancel(sp.together(e)))
    return Step(name, lhs, rhs, d, all(v == 0 for v in d))


def derive_ode(P: int = 3, N: int = 2):
    """Part 1: ``(df(x)/dt, rhs)`` for the linearised model with a generic Jacobian."""
    th = sp.Matrix(sp.symbols(f"theta0:{P}", real=True))
    th0 = sp.Matrix(sp.symbols(f"thetaI0:{P}", real=True))
    Jx = sp.Matrix(1, P, lambda i, j: sp.Symbol(f"Jx_{j}", real=True))
    JX = sp.Matrix(N, P, lambda i, j: sp.Symbol(f"JX_{i}{j}", real=True))
    f0x, f0X = sp.Symbol("f0x", real=True), sp.Matrix(sp.symbols(f"f0X0:{N}", real=True))
    Y = sp.Matrix(sp.symbols(f"Y0:{N}", real=True))
    fx = f0x + (Jx * (th - th0))[0]
    fX = f0X + JX * (th - th0)
    loss = ((fX - Y).T * (fX - Y))[0] / 2 + lam * ((th - th0).T * (th - th0))[0] / 2
    dtheta = -eta * sp.Matrix([sp.diff(loss, p) for p in th])
    lhs = (Jx * dtheta)[0]
    rhs = -eta * ((Jx * JX.T) * (fX - Y))[0] - eta * lam * (fx - f0x)
    return sp.Matrix([lhs]), sp.Matrix([rhs])


def eigenmode_gain():
    """Part 2: ``dsolve`` of ``c' = -eta (w c - r)``, ``c(0) = 0``, divided by ``r``."""
    w, r = sp.symbols("w r", positive=True)
    c = sp.Function("c")
    sol = sp.dsolve(sp.Eq(c(t).diff(t), -eta * (w * c(t) - r)), c(t), ics={c(0): 0}).rhs
    return w, sp.simplify(sol / r)


def _rotation(s):
    """A generic 2x2 rotation with rational entries (every rotation but by pi)."""
    return sp.Matrix([[1 - s**2, -2 * s], [2 * s, 1 - s**2]]) / (1 + s**2)


def prove_c3(strict: bool = True, train_operator=formulas.train_operator) -> Proof:
    """C3 for gradient flow and gradient descent, with ridge (see the module docstring)."""
    steps = []
    lhs, rhs = derive_ode()
    steps.append(_zero("d f(x)/dt = -eta [Theta_xX (f(X) - Y) + lambda (f(x) - f_0(x))] (from parameter space)", lhs, rhs))
    # eigenmode solution vs the library's A_t on T = Q diag(w) Q^T
    w, gain = eigenmode_gain()
    s = sp.Symbol("s", positive=True)
    w1, w2 = sp.symbols("w1 w2", positive=True)
    Q = _rotation(s)
    bk = EigenSympy()
    T = bk.register(Q, [w1, w2])
    A = train_operator(T - lam * sp.eye(2), bk, t=t, lr=eta, ridge=lam)
    steps.append(_zero("A_t = Q diag(c_i / r_i) Q^T with c_i from dsolve", A,
                       Q * sp.diag(gain.subs(w, w1), gain.subs(w, w2)) * Q.T))
    # the assembled form satisfies the ODE and the initial condition
    TxX = sp.Matrix(1, 2, sp.symbols("Theta_xX0:2", real=True))
    TXX = T - lam * sp.eye(2)
    f0x, f0X = sp.Matrix([sp.Symbol("f0x", real=True)]), sp.Matrix(sp.symbols("f0X0:2", real=True))
    Y = sp.Matrix(sp.symbols("Y0:2", real=True))
    fx = formulas.linearised_mean(f0x, f0X, TxX, A, Y)
    fX = formulas.linearised_mean(f0X, f0X, TXX, A, Y)
    steps += [
        _zero("test input: d f_t(x)/dt = -eta [Theta_xX (f_t(X) - Y) + lambda (f_t(x) - f_0(x))]",
              fx.diff(t), -eta * (TxX * (fX - Y) + lam * (fx - f0x))),
        _zero("training inputs: d f_t(X)/dt = -eta [Theta_XX (f_t(X) - Y) + lambda (f_t(X) - f_0(X))]",
              fX.diff(t), -eta * (TXX * (fX - Y) + lam * (fX - f0X))),
        _zero("initial condition f_0", fx.subs(t, 0), f0x),
    ]
    # gradient descent: library A_k for k = 0..3 against the one-step recursion
    Ak = [train_operator(TXX, bk, lr=eta, ridge=lam, steps=k) for k in range(4)]
    steps.append(_zero("A_0 = 0", Ak[0], sp.zeros(2, 2)))
    steps += [_zero(f"A_{k + 1} = A_{k} + eta (I - T A_{k})", Ak[k + 1], Ak[k] + eta * (sp.eye(2) - T * Ak[k]))
              for k in range(3)]
    steps += _general_n_steps()
    return conclude("C3", "f_t(x) = f_0(x) + Theta_xX A_t (Y - f_0(X)), A_t = T^{-1}(I - exp(-eta T t)), "
                    "A_k = T^{-1}(I - (I - eta T)^k), T = Theta_XX + lambda I",
                    "dsolve eigenmodes; explicit N = 2 with T = Q diag(w) Q^T; general N by matrix algebra",
                    ("linearised model, gradient flow / descent on 1/2 ||f(X) - Y||^2 + lambda/2 ||theta - theta_0||^2",
                     "eta, lambda, t, eigenvalues w of T positive"), steps, strict)


def _general_n_steps() -> list:
    alg = General()
    T = alg.symmetric("T", "N")
    E, Bk = alg.matrix("E", "N", "N"), alg.matrix("B^k", "N", "N")
    TxX, f0x, f0X, Y = (alg.matrix("Theta_xX", "n", "N"), alg.matrix("f0_x", "n", "1"),
                        alg.matrix("f0_X", "N", "1"), alg.matrix("Y", "N", "1"))
    I = alg.eye("N")
    TXX = T - lam * I

    def f(Em, theta_xX, fx0):
        return formulas.linearised_mean(fx0, f0X, theta_xX, T.I * (I - Em), Y)

    dE = -eta * T * E  # d/dt exp(-eta T t)
    out = []
    for name, th, fx0 in (("x", TxX, f0x), ("X", TXX, f0X)):
        dfdt = f(E + dE, th, fx0) - f(E, th, fx0)  # exact: f is affine in E
        rhs = -eta * (th * (f(E, TXX, f0X) - Y) + lam * (f(E, th, fx0) - fx0))
        ok, d = alg.is_zero(dfdt - rhs)
        out.append(Step(f"general N: d f_t({name})/dt = ODE, given dE/dt = -eta T E", dfdt, rhs, d, ok))
    ok, d = alg.is_zero(f(I, TxX, f0x) - f0x)
    out.append(Step("general N: f at E(0) = I is f_0", f(I, TxX, f0x), f0x, d, ok))
    B = I - eta * T
    A_k, A_k1 = T.I * (I - Bk), T.I * (I - B * Bk)
    ok, d = alg.is_zero(A_k1 - (A_k + eta * (I - T * A_k)))
    out.append(Step("general N, induction: A_{k+1} = A_k + eta (I - T A_k)", A_k1, A_k + eta * (I - T * A_k), d, ok))
    return out
