"""Linearised training dynamics and the infinite deep ensemble (docs/theory.md C3, C5)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import formulas
from .errors import IllConditionedError, KernelError, ParameterError, ShapeError, StabilityError
from .errors import EmptyInputError
from .kernels import check_distinct, validate_inputs
from .precision import backend, check_finite, to_public
from .validation import (
    check_architecture, check_int, check_labels, check_nonnegative, check_positive, check_real_array,
)


@dataclass(frozen=True)
class Gaussian:
    """A Gaussian process evaluated on test inputs: ``mean`` ``(n_test, M)``,
    ``cov`` ``(n_test, n_test)`` (the same for each of the ``K`` independent heads).

    float64 ndarrays, or ``mpmath.matrix`` when computed with ``dps=``.
    """

    mean: Any
    cov: Any


def check_time(t, lr, ridge, steps) -> tuple:
    """``(t, lr, ridge, steps)`` validated: ``t`` None (infinity) or a finite
    real >= 0, ``lr > 0``, ``ridge >= 0``, ``steps`` None or an int >= 0, not
    both ``t`` and ``steps``."""
    t = check_nonnegative(t, "t (None for infinity)", allow_none=True)
    lr = check_positive(lr, "lr")
    ridge = check_nonnegative(ridge, "ridge")
    if steps is not None:
        steps = check_int(steps, "steps", minimum=0)
        if t is not None:
            raise ParameterError("give either t (gradient flow) or steps (gradient descent), not both")
    return t, lr, ridge, steps


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
    t, lr, ridge, steps = check_time(t, lr, ridge, steps)
    bk = backend(dps)
    hp = dps is not None
    ntk_test_train = check_real_array(ntk_test_train, "ntk_test_train", ndim=2, allow_high_precision=hp)
    ntk_train_train = check_real_array(ntk_train_train, "ntk_train_train", ndim=2, allow_high_precision=hp)
    f0_test, f0_train, y_train = (check_real_array(a, name, ndim=(1, 2), allow_high_precision=hp) for a, name in
                                  ((f0_test, "f0_test"), (f0_train, "f0_train"), (y_train, "y_train")))
    if len(f0_train) == 0 or len(f0_test) == 0:
        raise EmptyInputError(f"f0_train has {len(f0_train)} rows and f0_test {len(f0_test)}: both need at least one")
    _check_symmetric(ntk_train_train, "ntk_train_train")
    with bk.context():
        ktx, kxx = _as(bk, ntk_test_train, "ntk_test_train"), _as(bk, ntk_train_train, "ntk_train_train")
        f0x = _as(bk, f0_test[:, None] if f0_test.ndim == 1 else f0_test, "f0_test")
        f0X = _as(bk, f0_train[:, None] if f0_train.ndim == 1 else f0_train, "f0_train")
        Y = _as(bk, y_train[:, None] if y_train.ndim == 1 else y_train, "y_train")
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


def _check_symmetric(a: np.ndarray, name: str) -> None:
    """Refuse a train NTK that is not symmetric beyond round-off (only one of
    its triangles would be used)."""
    if a.shape[0] != a.shape[1]:
        raise ShapeError(f"{name} must be square, got shape {a.shape}")
    f = np.asarray(a, dtype=float)
    scale = float(np.max(np.abs(f))) if f.size else 0.0
    asym = float(np.max(np.abs(f - f.T))) if f.size else 0.0
    if asym > 8 * len(f) * np.finfo(float).eps * scale:
        raise KernelError(f"{name} is not symmetric: max |T - T^T| = {asym:.3g} vs max |T| = {scale:.3g} (beyond "
                          "round-off); an NTK is symmetric: pass (T + T.T) / 2 if the asymmetry is noise")


def _check_spectrum(T, bk, t, lr, ridge, steps) -> None:
    """Refuse a finite-time train operator that round-off would ruin.

    ``w`` are the eigenvalues of ``Theta_XX + ridge I``, known to round-off
    ``tol = n eps max|w|``. An eigenvalue below ``-tol`` means the kernel is
    indefinite (not an NTK): :class:`IllConditionedError`. Otherwise the gain
    ``(1 - exp(-eta t w)) / w <= min(eta t, 1/w_min)`` multiplies round-off of
    size ``tol`` (a duplicated training row leaves a round-off eigenvalue of either
    sign); the result keeps fewer digits than the library promises once
    ``max_gain * max|w|`` exceeds the same condition limit as ``t = None``
    (``F64_MAX_COND`` in float64, ``10^(dps - 10)`` with ``dps=``), so that is refused too.
    """
    w = np.array([float(v) for v in bk.eigh(T + ridge * bk.eye(T.shape[0]))[0]]) if not bk.vectorised \
        else np.linalg.eigvalsh(T + ridge * np.eye(T.shape[0]))
    top = float(np.max(np.abs(w)))
    eps = float(bk.eps)
    tol = len(w) * eps * top
    if w[0] < -tol:
        raise IllConditionedError(
            f"the train NTK Theta_XX{' + ridge I' if ridge else ''} is indefinite beyond round-off (smallest "
            f"eigenvalue {w[0]:.3g}, largest {w[-1]:.3g}, round-off {tol:.3g}): not a valid NTK; check the matrix")
    horizon = lr * (t if t is not None else steps)
    small = max(w[0], tol)
    gain = min(horizon, 1.0 / small) if small > 0 else horizon
    limit = bk.max_cond
    if gain * top > limit:
        raise IllConditionedError(
            f"Theta_XX{' + ridge I' if ridge else ''} has eigenvalues down to {w[0]:.3g} (round-off {tol:.3g}) and "
            f"lr * {'t' if t is not None else 'steps'} = {horizon:.3g}: the training gain amplifies round-off by "
            f"{gain * top:.3g} > {limit:.3g}, so the result would keep too few digits. Use a smaller t, ridge > 0, "
            "remove duplicate training inputs, or the high-precision path (dps=)")


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
    if t is not None or (steps is not None and steps > 0):
        _check_spectrum(T, bk, t, lr, ridge, steps)
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
    check_architecture(arch)
    x_train = validate_inputs(x_train, "x_train")
    x_test = validate_inputs(x_test, "x_test", x_train.shape[1:])
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
    t, lr, ridge, steps = check_time(t, lr, ridge, steps)
    check_architecture(arch)
    x_train = validate_inputs(x_train, "x_train")
    Y = check_labels(y_train, len(x_train), "y_train")
    if t is None and steps is None and float(ridge) == 0:
        check_distinct(x_train, "x_train", "Theta_XX of the t = infinity ensemble without ridge")
    (Kxx, KxX, KXX), (Txx, TxX, TXX) = kernel_blocks(arch, x_train, x_test, dps)
    bk = backend(dps)
    with bk.context():
        A = _train_operator(TXX, bk, t, lr, ridge, steps)
        mean = TxX @ (A @ bk.asarray(Y))
        cov = formulas.projected_cov(Kxx, KxX, KXX, TxX, A)
    return Gaussian(to_public(mean, dps), to_public(cov, dps))
