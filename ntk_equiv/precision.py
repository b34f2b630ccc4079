"""Number types behind every formula: float64 (numpy), arbitrary precision
(mpmath) and exact (sympy).

Every formula in the library is written once against a *backend*: a tiny
namespace of elementwise functions (``sqrt``, ``atan2``, ``exp``...) and a few
matrix operations (``solve_psd``, ``eigh``). The float64 backend works on
numpy float arrays; the mpmath backend works on numpy *object* arrays of
``mpf`` (so ``+ - * / @`` and broadcasting are numpy's, and only the
elementwise functions and factorisations differ); the sympy backend works on
sympy matrices for the exact proofs. The same source line therefore computes
the float64 kernel, the 50-digit reference and the symbolic identity, and the
three cannot drift apart.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import mpmath
import numpy as np
import scipy.special
import sympy

from .errors import IllConditionedError, KernelError, NonFiniteError

#: Guard digits added to every mpmath computation so that results returned at
#: ``dps`` digits are correct to ``dps`` digits despite the rounding inside the
#: recursion (a depth-6 network does ~10^2 dependent operations per entry).
GUARD_DIGITS = 15

#: float64 refuses a linear solve whose condition number exceeds this: beyond
#: it fewer than ~4 of the 16 digits would survive (error ~ cond * 2.2e-16).
F64_MAX_COND = 1e12


def mp_context(dps: int, guard: int = GUARD_DIGITS) -> mpmath.MPContext:
    """A fresh mpmath context working at ``dps + guard`` digits.

    mpmath's global context ``mpmath.mp`` is shared by every thread, so setting
    its precision in one thread changes the digits of another (and leaves it
    changed if an exception escapes). Every high-precision evaluation therefore
    gets a context of its own: numbers created by ``ctx.mpf`` carry ``ctx``, and
    their arithmetic (also inside numpy object arrays) runs at ``ctx``'s
    precision whatever ``mpmath.mp.dps`` is.
    """
    ctx = mpmath.MPContext()
    ctx.dps = int(dps) + int(guard)
    return ctx


class Backend:
    """Interface shared by the float64, mpmath and sympy number types.

    A formula asks the backend what it can do, never which one it is: ``name``
    is for messages only (``tests/test_backend_capabilities.py`` fails on a
    comparison with it, or on a ``dtype == object`` test, outside this module).
    The capabilities:

    ``vectorised``
        Its arrays are numpy float64 arrays: numpy's vectorised kernels (BLAS
        products, ufuncs, ``einsum``, ``np.isfinite``, ``np.unique``) compute in
        its arithmetic, and float64 code (a layer's finite-width ``apply``) is
        its code. Numbers have float64's range, so overflow (inf) must be
        checked for. ``False`` (the default): numpy *object* arrays of the
        backend's scalars (``mpf``, an Arb ball...), whose ``+ - * /``, ``@``
        and broadcasting are numpy's but run element by element in Python, with
        no overflow; functions come from the backend (``sqrt``, ``exp``...).
    ``max_cond``
        The largest condition number a linear solve may have and still keep
        the digits the library promises (``F64_MAX_COND`` in float64; by
        default ``1e-10 / eps``: at least 10 digits survive ``cond * eps``).
    ``ldexp(v, e)``
        The backend's number ``v 2^e`` for a Python int ``v``: the one rounding
        of an exact product of float64 data (:meth:`data_products`).
    ``has_eigh``
        ``eigh`` gives an eigendecomposition (``False`` for the Arb backend of
        :mod:`ntk_equiv.certified`, which has no enclosing one).
    ``data_products(x1, x2, product)``
        A bilinear ``product`` (``lambda u, v: u @ v.T``...) of float64 data in
        the backend's numbers: as is when ``vectorised`` (BLAS, rounded); by
        default exactly (integer mantissas, one rounding per entry by ``ldexp``),
        and in the backend's arithmetic when ``x1`` already holds its numbers
        (the output of a data prefix).

    A new backend on object arrays (e.g. Arb balls) inherits the high-precision
    defaults and provides the elementwise functions, ``scalar``, ``asarray``,
    ``eye``, ``eps``, ``solve_psd``, ``eigh``, ``cond`` and ``ldexp``;
    :func:`is_high_precision` recognises its arrays (object dtype).
    """

    name: str = "abstract"
    pi: Any
    vectorised: bool = False
    #: ``eigh`` returns an eigendecomposition; ``False`` (ball arithmetic, issue 21): the
    #: formulas take forms without one (:func:`ntk_equiv.formulas.train_operator`'s block exponential)
    has_eigh: bool = True

    @property
    def max_cond(self) -> float:
        return 1e-10 / float(self.eps)

    def ldexp(self, v: int, e: int):
        """``v 2^e`` as a number of this backend (``v`` a Python int)."""
        return self.scalar(v) * self.scalar(2) ** e

    def data_products(self, x1: np.ndarray, x2: np.ndarray, product: Callable) -> np.ndarray:
        """``product(x1, x2)`` of float64 data (or of this backend's numbers)
        in this backend's numbers; exact on float64 data unless ``vectorised``."""
        if self.vectorised or is_high_precision(x1):
            return product(x1, x2)
        return _exact_products(self, x1, x2, product)

    def context(self) -> contextlib.AbstractContextManager:  # pragma: no cover
        return contextlib.nullcontext()

    def asarray(self, x: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def eye(self, n: int):  # pragma: no cover
        raise NotImplementedError

    def solve_psd(self, a, b):  # pragma: no cover
        """``a^{-1} b`` for a symmetric positive definite ``a``."""
        raise NotImplementedError

    def eigh(self, a):  # pragma: no cover
        """Eigen-decomposition ``a = Q diag(w) Q^T`` of a symmetric matrix."""
        raise NotImplementedError

    def sym_fun(self, a, fun: Callable):
        """``Q diag(fun(w)) Q^T``: a function of a symmetric matrix through its
        eigen-decomposition (used for ``exp(-eta Theta t)``)."""
        w, q = self.eigh(a)
        return (q * fun(w)[None, :]) @ q.T

    def matpow(self, a, k: int):
        """``a^k`` by repeated squaring (exact for the discrete-GD operator)."""
        result = self.eye(a.shape[0])
        base = a
        while k:
            if k & 1:
                result = result @ base
            base = base @ base
            k >>= 1
        return result


# --------------------------------------------------------------------------- #
# float64
# --------------------------------------------------------------------------- #
class Float64Backend(Backend):
    name = "float64"
    vectorised = True
    max_cond = F64_MAX_COND
    pi = np.pi
    eps = np.finfo(float).eps
    sqrt = staticmethod(np.sqrt)
    exp = staticmethod(np.exp)
    expm1 = staticmethod(np.expm1)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    sinh = staticmethod(np.sinh)
    cosh = staticmethod(np.cosh)
    tanh = staticmethod(np.tanh)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    atan2 = staticmethod(np.arctan2)
    abs = staticmethod(np.abs)
    erfc = staticmethod(scipy.special.erfc)

    @staticmethod
    def maximum0(x):
        return np.maximum(x, 0.0)

    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)

    def asarray(self, x: Any) -> np.ndarray:
        if isinstance(x, mpmath.matrix):
            x = [[float(v) for v in row] for row in x.tolist()]
        arr = np.asarray(x, dtype=float)
        return arr

    def eye(self, n: int) -> np.ndarray:
        return np.eye(n)

    def scalar(self, v) -> float:
        return float(v)

    def solve_psd(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        check_condition(a, self)
        try:
            chol = np.linalg.cholesky(a)
        except np.linalg.LinAlgError as exc:
            raise KernelError(
                "matrix is not positive definite (Cholesky failed); duplicate "
                "training inputs or a degenerate kernel? add ridge/noise"
            ) from exc
        import scipy.linalg

        return scipy.linalg.cho_solve((chol, True), b)

    def eigh(self, a: np.ndarray):
        w, q = np.linalg.eigh(a)
        return w, q

    def cond(self, a: np.ndarray) -> float:
        w = np.linalg.eigvalsh(a)
        if w[0] <= 0:
            return math.inf
        return float(w[-1] / w[0])


# --------------------------------------------------------------------------- #
# mpmath on numpy object arrays
# --------------------------------------------------------------------------- #
def _ufunc(f: Callable, nin: int) -> Callable:
    uf = np.frompyfunc(f, nin, 1)

    def apply(*args):
        out = uf(*args)
        return out

    return apply


@dataclass
class MpmathBackend(Backend):
    """Arbitrary precision: numpy object arrays of ``ctx.mpf``.

    The backend owns an mpmath context ``ctx`` at ``dps + GUARD_DIGITS`` digits
    (:func:`mp_context`); every number it creates and every function it applies
    belongs to ``ctx``, so the global ``mpmath.mp`` is never read or changed
    and concurrent evaluations at different ``dps`` do not interfere.
    """

    dps: int = 50
    name: str = field(default="mpmath", init=False)

    def __post_init__(self):
        ctx = self.ctx = mp_context(self.dps)
        self.sqrt = _ufunc(ctx.sqrt, 1)
        self.exp = _ufunc(ctx.exp, 1)
        self.expm1 = _ufunc(ctx.expm1, 1)
        self.log = _ufunc(ctx.log, 1)
        self.log1p = _ufunc(ctx.log1p, 1)
        self.sin = _ufunc(ctx.sin, 1)
        self.cos = _ufunc(ctx.cos, 1)
        self.sinh = _ufunc(ctx.sinh, 1)
        self.cosh = _ufunc(ctx.cosh, 1)
        self.tanh = _ufunc(ctx.tanh, 1)
        self.minimum = _ufunc(min, 2)
        self.maximum = _ufunc(max, 2)
        self.atan2 = _ufunc(ctx.atan2, 2)
        self.abs = _ufunc(abs, 1)
        self.erfc = _ufunc(ctx.erfc, 1)
        zero = ctx.mpf(0)
        self.maximum0 = _ufunc(lambda v: v if v > 0 else zero, 1)
        self._mpf = np.vectorize(lambda v: _to_mpf(v, ctx), otypes=[object])

    @property
    def pi(self):
        return +self.ctx.pi

    @property
    def eps(self):
        return self.ctx.mpf(10) ** (-self.dps)

    @property
    def working_dps(self) -> int:
        return self.dps + GUARD_DIGITS

    @property
    def max_cond(self) -> float:
        return 10.0 ** (self.dps - 10)

    def ldexp(self, v: int, e: int):
        return self.ctx.ldexp(self.ctx.mpf(v), e)

    def context(self):
        # kept for callers written against the Backend interface: the numbers
        # carry their own context, so there is nothing to switch
        return contextlib.nullcontext()

    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)

    def asarray(self, x: Any) -> np.ndarray:
        if isinstance(x, mpmath.matrix) or type(x).__name__ == "matrix" and hasattr(x, "tolist"):
            x = np.array(x.tolist(), dtype=object)
        arr = np.asarray(x)
        # float -> mpf is exact, so the reference sees exactly the float64 input; numbers
        # of another context (the global one, a user's matrix) are taken into ctx
        return self._mpf(arr) if arr.size else arr.astype(object)

    def eye(self, n: int) -> np.ndarray:
        out = np.full((n, n), self.ctx.mpf(0), dtype=object)
        for i in range(n):
            out[i, i] = self.ctx.mpf(1)
        return out

    def scalar(self, v):
        return _to_mpf(v, self.ctx)

    def cholesky(self, a: np.ndarray) -> np.ndarray:
        ctx = self.ctx
        n = a.shape[0]
        low = np.full((n, n), ctx.mpf(0), dtype=object)
        for j in range(n):
            s = a[j, j] - np.dot(low[j, :j], low[j, :j]) if j else a[j, j]
            if not s > 0:
                raise KernelError(
                    "matrix is not positive definite at %d digits (Cholesky pivot %s); "
                    "duplicate training inputs or a degenerate kernel? add ridge/noise"
                    % (self.dps, ctx.nstr(s, 5))
                )
            low[j, j] = ctx.sqrt(s)
            if j + 1 < n:
                col = a[j + 1 :, j] - (low[j + 1 :, :j] @ low[j, :j] if j else 0)
                low[j + 1 :, j] = col / low[j, j]
        return low

    def solve_psd(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        low = self.cholesky(a)
        check_condition_from_cholesky(low, self)
        vec = b.ndim == 1
        rhs = b.reshape(b.shape[0], -1)
        n = a.shape[0]
        y = np.empty_like(rhs)
        for i in range(n):
            acc = rhs[i] - (low[i, :i] @ y[:i] if i else 0)
            y[i] = acc / low[i, i]
        x = np.empty_like(rhs)
        for i in reversed(range(n)):
            acc = y[i] - (low[i + 1 :, i] @ x[i + 1 :] if i + 1 < n else 0)
            x[i] = acc / low[i, i]
        return x.reshape(b.shape) if not vec else x[:, 0]

    def eigh(self, a: np.ndarray):
        ctx = self.ctx
        w, q = ctx.eigsy(ctx.matrix(self.asarray(a).tolist()))
        w = np.array([w[i] for i in range(len(w))], dtype=object)
        q = np.array(q.tolist(), dtype=object)
        return w, q

    def cond(self, a: np.ndarray) -> float:
        w, _ = self.eigh(a)
        lo, hi = min(w), max(w)
        return math.inf if lo <= 0 else float(hi / lo)


def _to_mpf(v, ctx):
    """``v`` as a number of ``ctx`` (exact for floats, ints and mpf of any
    context up to ``ctx``'s precision)."""
    if isinstance(v, sympy.Basic):
        return ctx.mpf(sympy.Float(v, ctx.dps + 5))
    if isinstance(v, np.floating):
        v = float(v)
    elif isinstance(v, np.integer):
        v = int(v)
    return ctx.mpf(v)


# --------------------------------------------------------------------------- #
# sympy (exact)
# --------------------------------------------------------------------------- #
class SympyBackend(Backend):
    """Exact arithmetic on sympy matrices (explicit ``Matrix`` or ``MatrixExpr``).

    Only the matrix operations are provided: the symbolic proofs call the same
    matrix formulas as the numeric paths.
    """

    name = "sympy"
    pi = sympy.pi

    def asarray(self, x):
        return x if isinstance(x, (sympy.MatrixBase, sympy.MatrixExpr)) else sympy.Matrix(x)

    def eye(self, n):
        return sympy.eye(n) if isinstance(n, int) else sympy.Identity(n)

    def solve_psd(self, a, b):
        if isinstance(a, sympy.MatrixExpr) and not isinstance(a, sympy.MatrixBase):
            return a.I @ b
        return a.LUsolve(b)

    def eigh(self, a):  # pragma: no cover - proofs use the eigenmode argument instead
        raise NotImplementedError("symbolic eigendecomposition is not used")


F64 = Float64Backend()
SYMPY = SympyBackend()


def backend(dps: int | None) -> Backend:
    """The backend for ``dps`` digits: ``None`` -> float64, an int -> mpmath."""
    if dps is None:
        return F64
    from .validation import check_dps

    return MpmathBackend(check_dps(dps))


def check_condition(a, bk: Backend, limit: float | None = None) -> float:
    """Raise :class:`IllConditionedError` when ``a`` is too ill-conditioned for
    ``bk``'s precision; return the condition number otherwise."""
    c = bk.cond(a)
    if limit is None:
        limit = bk.max_cond
    if not c <= limit:
        raise IllConditionedError(
            f"condition number {c:.3g} exceeds {limit:.3g}: in {bk.name} the "
            f"solution would keep only ~{max(0.0, -math.log10(c * float(bk.eps))) if math.isfinite(c) else 0:.0f} "
            "digits. Use the high-precision path (dps=50, or higher) or add ridge/noise."
        )
    return c


def check_condition_from_cholesky(low, bk: MpmathBackend) -> None:
    """Cheap lower bound on the condition number from a Cholesky factor."""
    d = [low[i, i] for i in range(low.shape[0])]
    c = (max(d) / min(d)) ** 2
    limit = bk.ctx.mpf(10) ** (bk.dps - 10)
    if c > limit:
        raise IllConditionedError(
            f"condition number >= {bk.ctx.nstr(c, 3)} exceeds 1e{bk.dps - 10} at "
            f"dps={bk.dps}: raise dps or add ridge/noise."
        )


def check_finite(name: str, x: np.ndarray) -> None:
    if is_high_precision(x):
        bad = any(not mpmath.isfinite(v) for v in x.flat)
    else:
        bad = not np.all(np.isfinite(x))
    if bad:
        raise NonFiniteError(f"{name} contains NaN or infinity")


def to_mpmatrix(a: np.ndarray) -> mpmath.matrix:
    """Object array of mpf -> ``mpmath.matrix`` (the public high-precision type)."""
    if a.ndim == 1:
        return mpmath.matrix(list(a))
    return mpmath.matrix(a.tolist())


def to_public(a: np.ndarray, dps: int | None):
    """The user-facing type of a result: a float64 ndarray (``dps=None``), or an
    ``mpmath.matrix`` rounded to ``dps`` digits (``+x`` drops the guard digits)."""
    if dps is None:
        return np.asarray(a, float)
    ctx = mp_context(dps, guard=0)  # ctx.mpf rounds to dps digits (drops the guard digits)
    return to_mpmatrix(np.vectorize(ctx.mpf, otypes=[object])(a))


def is_high_precision(a: Any) -> bool:
    """Whether ``a`` is an ``mpmath.matrix`` or a numpy object array (numbers of
    a high-precision backend, or the exact Python ints of :meth:`Backend.data_products`):
    arithmetic element by element, no BLAS, ufuncs, ``einsum`` or ``np.isfinite``.
    The one place that tells arrays apart by their dtype."""
    return isinstance(a, mpmath.matrix) or (isinstance(a, np.ndarray) and a.dtype == object)


def _exact_products(bk: Backend, x1: np.ndarray, x2: np.ndarray, product: Callable) -> np.ndarray:
    """``product(x1, x2)`` of float64 arrays exactly: the entries as integer
    mantissas on a common exponent (``product`` of those is exact in Python
    ints), one rounding per result entry (``bk.ldexp``). ~100x faster than
    arithmetic in mpf and exact."""
    emin = int(min(np.frexp(x1)[1].min(), np.frexp(x2)[1].min())) - 53

    def ints(x):
        m, e = np.frexp(x)
        return np.array([int(mi * 2.0**53) << int(ei - 53 - emin) for mi, ei in zip(m.ravel(), e.ravel())],
                        dtype=object).reshape(x.shape)

    g = product(ints(x1), ints(x2))
    return np.vectorize(lambda v: bk.ldexp(v, 2 * emin), otypes=[object])(np.asarray(g, dtype=object))
