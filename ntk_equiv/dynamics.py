"""Linearised training dynamics and the infinite deep ensemble (docs/theory.md C3, C5)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import formulas
from .errors import IllConditionedError, KernelError, ParameterError, ShapeError, StabilityError
from .kernels import check_distinct, validate_inputs
from .precision import backend, check_finite, to_public


@dataclass(frozen=True)
class Gaussian:
    """A Gaussian process evaluated on test inputs: ``mean`` ``(n_test, M)``,
    ``cov`` ``(n_test, n_test)`` (the same for each of the ``K`` independent heads).

    float64 ndarrays, or ``mpmath.matrix`` when computed with ``dps=``.
    """

    mean: Any
    cov: Any


def check_time(t, lr, ridge, steps) -> None:
    if t is not None and not (np.isfinite(float(t)) and float(t) >= 0):
        raise ParameterError(f"t must be None (infinity) or a finite time >= 0, got {t!r}")
    if not (np.isfinite(float(lr)) and float(lr) > 0):
        raise ParameterError(f"lr must be a finite number > 0, got {lr!r}")
    if not (np.isfinite(float(ridge)) and float(ridge) >= 0):
        raise ParameterError(f"ridge must be finite and >= 0, got {ridge!r}")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ParameterError(f"steps must be an integer >= 0, got {steps!r}")
        if t is not None:
            raise ParameterError("give either t (gradient flow) or steps (gradient descent), not both")


def _as(bk, a, name):
    arr = bk.asarray(a)
    check_finite(name, arr)
    return arr


def linearised_predict(ntk_test_train, ntk_train_train, f0_test, f0_train, y_train, t=None, lr=1.0,
                       ridge=0.0, steps=None, dps=None):
    """C3: outputs of the linearised network after training,
    ``f_t(x) = f_0(x) + Theta_xX A_t (Y - f_0(X))``.

    Parameters
    ----------
    ntk_test_train, ntk_train_train : ``(n, N)``, ``(N, N)`` NTK blocks (analytic
        or empirical), or the full multi-output blocks ``(n M, N M)``,
        ``(N M, N M)`` (row ``i M + m``) when heads are coupled.
    f0_test, f0_train, y_train : ``(n, M)``, ``(N, M)``, ``(N, M)``.
    t : time of gradient flow ``d theta/dt = -lr grad L``; ``None`` = infinity.
    steps : number of gradient-descent steps of size ``lr`` (instead of ``t``).
    ridge : ``lambda`` of the penalty ``lambda/2 ||theta - theta_0||^2``.
    dps : ``None`` for float64, or digits for mpmath.

    Raises
    ------
    ShapeError : blocks that fit neither the per-head nor the full layout.
    ParameterError : ``lr <= 0``, ``t < 0``, ``ridge < 0``, ``steps`` not a non-negative integer, or both ``t`` and ``steps``.
    StabilityError : ``steps`` with ``lr >= 2 / (lambda_max(Theta_XX) + ridge)`` (GD diverges).
    KernelError : ``t = None``, no ridge and a singular ``Theta_XX`` (duplicate training inputs).
    IllConditionedError : ``t = None`` and ``Theta_XX + ridge I`` too ill-conditioned for float64; use ``dps=``.
    """
    check_time(t, lr, ridge, steps)
    bk = backend(dps)
    with bk.context():
        ktx, kxx = _as(bk, ntk_test_train, "ntk_test_train"), _as(bk, ntk_train_train, "ntk_train_train")
        f0x = _as(bk, np.atleast_2d(np.asarray(f0_test, dtype=object if dps else float).T).T if np.ndim(f0_test) == 1 else f0_test, "f0_test")
        f0X = _as(bk, np.asarray(f0_train)[:, None] if np.ndim(f0_train) == 1 else f0_train, "f0_train")
        Y = _as(bk, np.asarray(y_train)[:, None] if np.ndim(y_train) == 1 else y_train, "y_train")
        n, N, M = f0x.shape[0], f0X.shape[0], f0X.shape[1]
        if Y.shape != (N, M) or f0x.shape[1] != M:
            raise ShapeError(f"f0_train {f0X.shape}, y_train {Y.shape} and f0_test {f0x.shape} must share N and M")
        if kxx.shape == (N, N) and ktx.shape == (n, N):
            full = False
        elif M > 1 and kxx.shape == (N * M, N * M) and ktx.shape == (n * M, N * M):
            full = True
        else:
            raise ShapeError(f"NTK blocks {ktx.shape}, {kxx.shape} fit neither (n, N)=({n}, {N}) "
                             f"nor the full (nM, NM)=({n * M}, {N * M})")
        A = _train_operator(kxx, bk, t, lr, ridge, steps)
        if full:
            out = formulas.linearised_mean(f0x.reshape(-1, 1), f0X.reshape(-1, 1), ktx, A, Y.reshape(-1, 1))
            out = out.reshape(n, M)
        else:
            out = formulas.linearised_mean(f0x, f0X, ktx, A, Y)
    return to_public(out, dps)


def _num(bk, v):
    return None if v is None else bk.scalar(v)


def _train_operator(T, bk, t, lr, ridge, steps):
    """``formulas.train_operator`` with the failure modes explained.

    * ``steps`` with ``lr >= 2 / lambda_max(Theta_XX + ridge I)``: gradient
      descent diverges (``|1 - eta w| >= 1``), so :class:`StabilityError`.
    * ``t = None`` without ridge on a singular ``Theta_XX`` (duplicate training
      inputs): ``A_inf = Theta_XX^{-1}`` does not exist, so :class:`KernelError`
      saying so (an ill-conditioned but invertible one keeps the
      :class:`IllConditionedError` that points to ``dps=``).
    """
    if steps is not None and steps > 0:
        w_max = float(np.linalg.eigvalsh(np.asarray(bk.asarray(T), dtype=float))[-1]) + float(ridge)
        if w_max > 0 and float(lr) * w_max >= 2.0:
            raise StabilityError(
                f"lr={float(lr):.4g} is at or above the gradient-descent stability bound "
                f"2/(lambda_max(Theta_XX) + ridge) = {2.0 / w_max:.4g}: the discrete dynamics diverge"
            )
    try:
        return formulas.train_operator(T, bk, t=_num(bk, t), lr=_num(bk, lr), ridge=_num(bk, ridge), steps=steps)
    except KernelError as exc:
        if t is not None or steps is not None:
            raise
        w = np.linalg.eigvalsh(np.asarray(bk.asarray(T), dtype=float)) + float(ridge)
        if w[0] <= len(w) * np.finfo(float).eps * max(abs(w[-1]), 1e-300):
            raise KernelError(
                f"the train NTK Theta_XX{' + ridge I' if ridge else ''} is singular (smallest eigenvalue "
                f"{w[0]:.3g}, largest {w[-1]:.3g}): duplicate or linearly dependent training inputs? "
                "t=None needs Theta_XX^{-1}; use ridge > 0 or a finite t"
            ) from exc
        if isinstance(exc, IllConditionedError):
            raise
        raise


def kernel_blocks(arch, x_train, x_test, dps=None, predictor_arch=None):
    """``K`` and ``Theta`` blocks ``(xx, xX, XX)`` from one joint kernel evaluation
    of ``[x_test; x_train]``, as backend arrays."""
    x_train = validate_inputs(x_train, "x_train")
    x_test = validate_inputs(x_test, "x_test", x_train.shape[1])
    n = len(x_test)
    k = arch.kernel(np.vstack([x_test, x_train]), dps=dps)
    bk = backend(dps)
    K, T = bk.asarray(k.nngp), bk.asarray(k.ntk)
    split = lambda a: (a[:n, :n], a[:n, n:], a[n:, n:])  # noqa: E731
    return split(K), split(T)


def ensemble(arch, x_train, y_train, x_test, t=None, lr=1.0, ridge=0.0, dps=None, steps=None) -> Gaussian:
    """C5: the law of an infinitely wide network at training time ``t`` over
    random initialisations: ``GP(Theta_xX A_t Y, P_t K P_t^*)`` on ``x_test``.

    Same parameters and errors as :func:`linearised_predict`; in addition
    duplicate rows of ``x_train`` at ``t = None`` without ridge raise
    :class:`DegenerateInputError` (``Theta_XX`` is singular).
    """
    check_time(t, lr, ridge, steps)
    x_train = validate_inputs(x_train, "x_train")
    Y = np.asarray(y_train, float)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if Y.ndim != 2 or Y.shape[0] != len(x_train):
        raise ShapeError(f"y_train must have shape (N, M) with N={len(x_train)}, got {np.shape(y_train)}")
    if not np.all(np.isfinite(Y)):
        from .errors import NonFiniteError

        raise NonFiniteError("y_train contains NaN or infinity")
    if t is None and steps is None and float(ridge) == 0:
        check_distinct(x_train, "x_train", "Theta_XX of the t = infinity ensemble without ridge")
    (Kxx, KxX, KXX), (Txx, TxX, TXX) = kernel_blocks(arch, x_train, x_test, dps)
    bk = backend(dps)
    with bk.context():
        A = _train_operator(TXX, bk, t, lr, ridge, steps)
        mean = TxX @ (A @ bk.asarray(Y))
        cov = formulas.projected_cov(Kxx, KxX, KXX, TxX, A)
    return Gaussian(to_public(mean, dps), to_public(cov, dps))
