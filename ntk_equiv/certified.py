"""Certified evaluation: ball arithmetic (Arb, through python-flint), so that
every number comes with a radius guaranteed to contain the true value.

:class:`ArbBackend` is a fourth number type behind the formulas of
:mod:`ntk_equiv.precision`: numpy *object* arrays of ``flint.arb`` balls, so
``+ - * / @`` and broadcasting are numpy's and only the elementwise functions
and the factorisations differ, exactly as for the mpmath backend. The same
source lines (the closed-form dual maps of :mod:`ntk_equiv.activations` with
their Cauchy-Schwarz gaps, the layers' kernel maps, :mod:`ntk_equiv.formulas`)
therefore compute the float64 kernel, the 50-digit reference and an enclosure
``[mid +- rad]`` of the exact value of *the formulas as coded on those inputs*.
What the enclosure does not cover: that the dual-map formulas themselves are
the Gaussian expectations (that is the S level's proof, docs/theory.md C1).

Pitfalls of ball arithmetic, and what this module does about them:

* python-flint's precision ``flint.ctx.prec`` is process-global: every
  certified evaluation runs inside :meth:`ArbBackend.context`, which holds one
  module-level lock and sets and restores ``ctx.prec`` (so two threads at 128
  and 256 bits both get their own radii, serialised);
* ``sqrt`` of a ball that straddles 0 is NaN: every ``sqrt`` in the formulas
  takes a quantity that is non-negative by construction (a variance, a
  product of the gaps ``lo, hi >= 0``), so it is taken of the ball's
  non-negative part (a ball entirely below 0 gives NaN: inconclusive);
* the dependency problem: ``x - x`` of a ball is not 0. For a self pair
  ``(z, z)`` the gap ``lo = sqrt(k11 k22) - k12`` is exactly 0 mathematically,
  but in balls it becomes ``[0 +- eps]`` and the next kinked dual map takes
  ``sqrt(lo hi) ~ sqrt(eps)``: half the digits. :func:`kernel` therefore sets
  the self pairs' gaps to their exact values (``lo = 0``, ``hi = 2 K(z, z)``)
  between layers (inside a residual block the block's own layers run
  unchanged);
* an ill-conditioned solve returns huge balls (they contain 0 and prove
  nothing: the checks call that *inconclusive*), an exactly singular one
  raises ``ZeroDivisionError`` (mapped to :class:`~ntk_equiv.errors.KernelError`);
* calling a ball method through the class with a plain number
  (``arb.atan2(0.5, 1)``) can crash the process: every elementwise function
  here converts its arguments to ``arb`` first.

Activations without closed-form dual maps (Hermite/quadrature) and data
prefixes have no certified version: :class:`~ntk_equiv.errors.NotCertifiedError`.
"""
from __future__ import annotations

import contextlib
import copy
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from .errors import KernelError, NotCertifiedError, ParameterError
from .precision import Backend

try:  # an optional extra: pip install "ntk-equiv[certified]"
    import flint
except ImportError:  # pragma: no cover - exercised where python-flint is missing
    flint = None

#: Working precisions (bits) of the certified level: start, and the ladder a
#: too-wide radius climbs (``verify --prec``).
DEFAULT_PREC = 128
PREC_LADDER = (128, 256, 512)
MIN_PREC, MAX_PREC = 53, 4096

#: One lock for every certified evaluation: ``flint.ctx.prec`` is process-global.
_LOCK = threading.RLock()


def available() -> bool:
    """Whether python-flint (the ``certified`` extra) is installed."""
    return flint is not None


def require() -> None:
    if flint is None:
        raise NotCertifiedError("certified (ball-arithmetic) evaluation needs python-flint: "
                                "pip install 'ntk-equiv[certified]'")


def check_prec(prec: Any) -> int:
    """``prec`` as bits of working precision, ``MIN_PREC <= prec <= MAX_PREC``."""
    if isinstance(prec, bool) or not isinstance(prec, (int, np.integer)) or not MIN_PREC <= int(prec) <= MAX_PREC:
        raise ParameterError(f"prec must be an integer number of bits from {MIN_PREC} to {MAX_PREC}, got {prec!r}")
    return int(prec)


@contextlib.contextmanager
def working_precision(prec: int) -> Iterator[None]:
    """Hold the certified lock with ``flint.ctx.prec = prec``; restore on exit."""
    require()
    with _LOCK:
        old = flint.ctx.prec
        flint.ctx.prec = prec
        try:
            yield
        finally:
            flint.ctx.prec = old


def _ball(v) -> "flint.arb":
    """``v`` as a ball: exact for floats, ints and balls (never rounded)."""
    if isinstance(v, flint.arb):
        return v
    if isinstance(v, (np.floating, float)):
        return flint.arb(float(v))
    if isinstance(v, (np.integer, int, bool)):
        return flint.arb(int(v))
    raise NotCertifiedError(f"cannot take {type(v).__name__} exactly into ball arithmetic")


def _sqrt(x):
    x = _ball(x)
    if x < 0:  # certainly negative: no real square root (a wrong formula), NaN = inconclusive
        return flint.arb.nan()
    return x.nonnegative_part().sqrt()


def _vec(f: Callable, nin: int) -> Callable:
    uf = np.frompyfunc(f, nin, 1)

    def apply(*args):
        return uf(*args)
    return apply


@dataclass
class ArbBackend(Backend):
    """Ball arithmetic at ``prec`` bits: numpy object arrays of ``flint.arb``.

    Use it only inside :meth:`context` (the lock and the precision); the balls
    it returns may be read anywhere (their midpoints and radii are fixed)."""

    prec: int = DEFAULT_PREC
    name: str = field(default="arb", init=False)
    # the capabilities of precision.Backend: object arrays (vectorised = False, the default),
    # no eigendecomposition (formulas.train_operator uses the block exponential)
    has_eigh: bool = field(default=False, init=False)

    def __post_init__(self):
        require()
        self.prec = check_prec(self.prec)
        a = flint.arb
        self.sqrt = _vec(_sqrt, 1)
        self.exp = _vec(lambda v: _ball(v).exp(), 1)
        self.expm1 = _vec(lambda v: _ball(v).expm1(), 1)
        self.log = _vec(lambda v: _ball(v).log(), 1)
        self.log1p = _vec(lambda v: _ball(v).log1p(), 1)
        self.sin = _vec(lambda v: _ball(v).sin(), 1)
        self.cos = _vec(lambda v: _ball(v).cos(), 1)
        self.sinh = _vec(lambda v: _ball(v).sinh(), 1)
        self.cosh = _vec(lambda v: _ball(v).cosh(), 1)
        self.tanh = _vec(lambda v: _ball(v).tanh(), 1)
        self.erfc = _vec(lambda v: _ball(v).erfc(), 1)
        self.abs = _vec(lambda v: abs(_ball(v)), 1)
        self.minimum = _vec(lambda u, v: _ball(u).min(_ball(v)), 2)
        self.maximum = _vec(lambda u, v: _ball(u).max(_ball(v)), 2)
        self.atan2 = _vec(lambda y, x: a.atan2(_ball(y), _ball(x)), 2)
        # max(x, 0) clamps quantities that are >= 0 by construction (round-off in float64):
        # the non-negative part of the ball is exactly the range of max(v, 0) over it
        self.maximum0 = _vec(lambda v: _ball(v).nonnegative_part(), 1)
        self._ball = np.vectorize(_ball, otypes=[object])

    # ---- the precision and the lock ------------------------------------ #
    def context(self):
        return working_precision(self.prec)

    @property
    def pi(self):
        return flint.arb.pi()  # at the current (the backend's, inside context()) precision

    @property
    def eps(self):
        return flint.arb(2) ** (-self.prec)

    @property
    def max_cond(self) -> float:
        # no a-priori limit: an ill-conditioned solve shows in its radii, which the checks judge
        return math.inf

    def ldexp(self, v: int, e: int):
        """``v 2^e`` as a ball: exact when ``v`` fits the precision, else one
        rounding, enclosed (the exact data products of precision.Backend)."""
        return flint.arb(int(v)) * flint.arb(2) ** int(e)

    @property
    def ctx(self):
        raise NotCertifiedError(
            "this computation has no certified version: it needs an mpmath context (an activation without "
            "closed-form dual maps, computed by Hermite expansion or quadrature; or a data prefix): the "
            "certified level covers closed-form activations only")

    @staticmethod
    def where(c, a, b):
        return np.where(c, a, b)

    # ---- arrays ---------------------------------------------------------- #
    def asarray(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        return self._ball(arr) if arr.size else arr.astype(object)

    def eye(self, n: int) -> np.ndarray:
        out = np.full((n, n), flint.arb(0), dtype=object)
        for i in range(n):
            out[i, i] = flint.arb(1)
        return out

    def scalar(self, v):
        return _ball(v)

    # ---- matrices ------------------------------------------------------- #
    @staticmethod
    def to_mat(a: np.ndarray) -> "flint.arb_mat":
        a = np.asarray(a, dtype=object)
        if a.ndim == 1:
            a = a[:, None]
        return flint.arb_mat([[_ball(v) for v in row] for row in a])

    @staticmethod
    def from_mat(m: "flint.arb_mat") -> np.ndarray:
        return np.array(m.tolist(), dtype=object).reshape(m.nrows(), m.ncols())

    def solve(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a^{-1} b`` enclosed (Arb's preconditioned Gaussian elimination).
        An ill-conditioned ``a`` gives wide balls (the caller judges them);
        one Arb cannot prove invertible raises :class:`KernelError`."""
        vec = np.ndim(b) == 1
        try:
            x = self.to_mat(a).solve(self.to_mat(b))
        except ZeroDivisionError as exc:
            raise KernelError(f"the {a.shape[0]} x {a.shape[0]} matrix is singular, or too ill-conditioned for "
                              f"ball arithmetic at {self.prec} bits to prove it invertible: raise prec or add "
                              "ridge/noise") from exc
        out = self.from_mat(x)
        return out[:, 0] if vec else out

    def solve_psd(self, a, b):
        return self.solve(a, b)

    def expm(self, a: np.ndarray) -> np.ndarray:
        """``exp(a)`` enclosed (Arb's Taylor series with a rigorous tail bound)."""
        return self.from_mat(self.to_mat(a).exp())

    def eigh(self, a):
        raise NotCertifiedError("no certified symmetric eigendecomposition here: the certified training operator "
                                "uses the block exponential (formulas.train_operator), positivity uses cholesky()")

    def cholesky(self, a: np.ndarray) -> np.ndarray:
        """Lower-triangular ``L`` with ``a = L L^T``, every pivot certainly
        positive: a proof that the symmetric ``a`` is positive definite.
        Raises :class:`KernelError` when a pivot's ball is not above 0
        (indefinite, or not decidable at this precision)."""
        n = a.shape[0]
        low = np.full((n, n), flint.arb(0), dtype=object)
        for j in range(n):
            s = a[j, j] - (np.dot(low[j, :j], low[j, :j]) if j else 0)
            if not s > 0:
                raise KernelError(f"Cholesky pivot {j} is {s} at {self.prec} bits: not certainly positive")
            low[j, j] = s.sqrt()
            if j + 1 < n:
                col = a[j + 1:, j] - (low[j + 1:, :j] @ low[j, :j] if j else 0)
                low[j + 1:, j] = col / low[j, j]
        return low

    def cond(self, a):
        raise NotCertifiedError("the certified backend judges conditioning by the radii of its results")


# --------------------------------------------------------------------------- #
# reading balls
# --------------------------------------------------------------------------- #
def mid(v) -> float:
    return float(_ball(v).mid())


def rad(v) -> float:
    """The radius, rounded up to a float (never below the true radius)."""
    r = _ball(v).rad()
    f = float(r)
    return float(np.nextafter(f, np.inf)) if f < float("inf") else f


def upper_abs(v) -> float:
    """``|mid| + rad`` rounded up: a rigorous bound on ``|value|``."""
    b = _ball(v)
    return float(np.nextafter(float(abs(b).upper()), np.inf))


def lower(v) -> float:
    """The lower end of the ball, rounded down."""
    return float(np.nextafter(float(_ball(v).lower()), -np.inf))


def is_finite(v) -> bool:
    return bool(_ball(v).is_finite())


@dataclass(frozen=True)
class Enclosure:
    """What an array of residual balls proves: ``bound = max(|mid| + rad)``
    (``|LHS - RHS| <= bound`` on every entry, rigorously), ``radius`` the
    largest radius, whether every ball contains 0, and the entry whose ball
    excludes 0 by the largest ``margin`` (its distance from 0, a certified
    lower bound on ``|LHS - RHS|``), if any. ``finite`` is False when a ball is NaN/infinite."""

    bound: float
    radius: float
    contains_zero: bool
    margin: float
    worst: tuple
    finite: bool
    #: how many entries' balls exclude 0, of ``size``, and the smallest such margin
    excluded: int = 0
    size: int = 0
    least_margin: float = 0.0


def enclose(residual: np.ndarray) -> Enclosure:
    r = np.asarray(residual, dtype=object)
    bound, radius, margin, worst, all_zero, finite = 0.0, 0.0, 0.0, (), True, True
    excluded, least = 0, float("inf")
    for idx in np.ndindex(r.shape):
        b = _ball(r[idx])
        if not b.is_finite():
            finite = False
            continue
        bound = max(bound, upper_abs(b))
        radius = max(radius, rad(b))
        if not b.contains(0):
            all_zero = False
            m = float(abs(b).lower())
            excluded, least = excluded + 1, min(least, m)
            if m > margin:
                margin, worst = m, tuple(int(i) for i in idx)
    return Enclosure(bound if finite else float("inf"), radius if finite else float("inf"), all_zero and finite,
                     margin, worst, finite, excluded, r.size, least if excluded else 0.0)


# --------------------------------------------------------------------------- #
# kernels on balls
# --------------------------------------------------------------------------- #
def _exact_self_gaps(state) -> None:
    """Give the self pairs ``(z, z)`` (the first ``n`` pairs) their exact gaps,
    ``lo = 0`` and ``hi = 2 K(z, z)`` (``sqrt(K K) -+ K``), at every spatial
    position ``(s, s)``: ball arithmetic cannot cancel ``x - x`` to 0, and the
    next kinked dual map would take ``sqrt(lo hi)`` of its radius (see the
    module docstring). Replacing a ball that contains the true value by the
    true value keeps every enclosure valid."""
    if state.lo is None or state.hi is None:
        return
    n, zero = state.n, flint.arb(0)
    if state.full and state.spatial:  # entries (*S, *S, P): pairs last (ntk_equiv.kernels)
        m = int(np.prod(state.spatial))
        lo, hi, k = (np.asarray(v).reshape(m, m, -1) for v in (state.lo, state.hi, state.nngp))
        if not (np.shares_memory(lo, state.lo) and np.shares_memory(hi, state.hi)):  # pragma: no cover
            raise AssertionError("the gaps must be updated in place")
        d = np.arange(m)
        lo[d, d, :n] = zero
        hi[d, d, :n] = 2 * k[d, d, :n]
        return
    state.lo[..., :n] = zero
    state.hi[..., :n] = 2 * state.nngp[..., :n]


def _exact_copy(layer):
    """A shallow copy of ``layer`` (and of the layers inside it: a residual
    block, a Serial) whose ``kernel_fn`` makes the self pairs' gaps exact after
    the layer's own map (:func:`_exact_self_gaps`), so that a dual map inside a
    residual block sees exact gaps too. A copy, so that the caller's
    architecture (possibly in use by other threads) is never changed."""
    from .layers import Layer

    out = copy.copy(layer)
    for name, value in vars(layer).items():
        if isinstance(value, Layer):
            setattr(out, name, _exact_copy(value))
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, Layer) for v in value):
            setattr(out, name, type(value)(_exact_copy(v) for v in value))
    own = out.kernel_fn  # the class's map, bound to the copy (its sub-layers are the copies)

    def kernel_fn(state, bk):
        state = own(state, bk)
        _exact_self_gaps(state)
        return state
    out.kernel_fn = kernel_fn
    return out


def _run_layers(layers, state, bk):
    """``Serial(*layers).kernel_fn`` with the self pairs' gaps made exact
    before and after every layer (:func:`_exact_copy`)."""
    for layer in map(_exact_copy, layers):
        if state.pending is not None and not layer.takes_pending:
            state = state.materialised(bk)
            _exact_self_gaps(state)
        state = layer.kernel_fn(state, bk)
        _exact_self_gaps(state)
    state = state.materialised(bk)
    _exact_self_gaps(state)
    return state.collapsed(bk)


def kernel(arch, x1, x2=None, prec: int = DEFAULT_PREC):
    """``K(x1, x2)`` and ``Theta(x1, x2)`` as balls: a
    :class:`~ntk_equiv.kernels.Kernel` of ``(n1, n2)`` object arrays of
    ``flint.arb`` enclosing the exact values of the layers' kernel maps on the
    float64 inputs (taken exactly). The same layer code as ``arch.kernel``
    (the state of :mod:`ntk_equiv.kernels`, the closed-form dual maps), one
    symmetric evaluation over the distinct rows of ``[x1; x2]``.

    Raises :class:`NotCertifiedError` for an activation without closed-form
    dual maps or a data prefix (layers before the first Dense/Conv), and the
    errors of ``arch.kernel`` for invalid inputs and architectures."""
    from . import kernels
    from .layers import data_prefix

    arch.check_architecture()
    prefix, rest = data_prefix(arch)
    if prefix:
        raise NotCertifiedError(f"the layers {prefix!r} act on the raw inputs (a data prefix): not certified; start "
                                "the architecture with Dense or Conv")
    x1 = kernels.validate_inputs(x1, "x1")
    n1 = len(x1)
    z = x1 if x2 is None else np.concatenate([x1, kernels.validate_inputs(x2, "x2", x1.shape[1:])])
    flat = z.reshape(len(z), -1)
    index: dict = {}  # distinct rows in order of appearance: a repeated point is the same point (a self pair)
    inverse = np.array([index.setdefault(r.tobytes(), len(index)) for r in flat])
    first = np.unique(inverse, return_index=True)[1]
    bk = ArbBackend(prec)
    with bk.context():
        # float64 data: the plan forms their dot products exactly (bk.data_products), one rounding each
        plan = kernels._Plan(z[first], None, bk, any(layer.needs_full_spatial for layer in rest))
        tile = plan.tile(plan.tiles(None)[0])  # one tile: the whole symmetric kernel
        state = plan.state(tile)
        _exact_self_gaps(state)
        out = _run_layers(rest, state, bk)
        if out.spatial:
            from .errors import ShapeError

            raise ShapeError(f"the architecture's output still has spatial axes {out.spatial}: end with Flatten() "
                             "or GlobalAvgPool() before the readout")
        nngp, ntk = np.empty(plan.shape, dtype=object), np.empty(plan.shape, dtype=object)
        tile.write(nngp, out.nngp)
        tile.write(ntk, out.ntk)
    nngp, ntk = nngp[np.ix_(inverse, inverse)], ntk[np.ix_(inverse, inverse)]
    if x2 is not None:
        nngp, ntk = nngp[:n1, n1:], ntk[:n1, n1:]
    from .kernels import Kernel

    return Kernel(nngp, ntk)


# --------------------------------------------------------------------------- #
# training operator, laws and posteriors on balls (the formulas of ntk_equiv.formulas)
# --------------------------------------------------------------------------- #
def blocks(arch, x_train, x_test, prec: int = DEFAULT_PREC) -> tuple:
    """``(K, Theta)`` blocks ``(xx, xX, XX)`` as balls, from one kernel of ``[x_test; x_train]``."""
    n = len(x_test)
    k = kernel(arch, np.concatenate([np.asarray(x_test, float), np.asarray(x_train, float)]), prec=prec)

    def split(a):
        return a[:n, :n], a[:n, n:], a[n:, n:]
    return split(k.nngp), split(k.ntk)


def train_operator(theta_XX, bk: ArbBackend, t=None, lr=1.0, ridge=0.0, steps=None):
    """``A_t`` / ``A_k`` / ``A_inf`` as balls (:func:`ntk_equiv.formulas.train_operator`:
    the block exponential at finite ``t``, the block power for ``steps``, a solve at ``t = inf``)."""
    from . import formulas

    num = bk.scalar
    return formulas.train_operator(theta_XX, bk, t=None if t is None else num(t), lr=num(lr), ridge=num(ridge),
                                   steps=steps)


def ensemble(arch, x_train, y_train, x_test, t=None, lr=1.0, ridge=0.0, steps=None, prec: int = DEFAULT_PREC):
    """C5 on balls: ``(mu_t, Sigma_t) = (Theta_xX A_t Y, P_t K P_t^*)``
    (:func:`ntk_equiv.dynamics.ensemble`'s formulas)."""
    from . import formulas

    (Kxx, KxX, KXX), (_, TxX, TXX) = blocks(arch, x_train, x_test, prec)
    bk = ArbBackend(prec)
    with bk.context():
        A = train_operator(TXX, bk, t, lr, ridge, steps)
        Y = bk.asarray(np.asarray(y_train, float).reshape(len(x_train), -1))
        return TxX @ (A @ Y), formulas.projected_cov(Kxx, KxX, KXX, TxX, A)


def rnd_covariance(predictor, x_train, x_test, target=None, t=None, lr=1.0, ridge=0.0, centred=False, steps=None,
                   prec: int = DEFAULT_PREC):
    """C6 on balls: ``P_t (kappa_u + kappa_g) P_t^*`` (:func:`ntk_equiv.rnd.rnd_covariance`'s formula)."""
    from . import formulas

    ku, tu = blocks(predictor, x_train, x_test, prec)
    kg = ku if target is None else blocks(target, x_train, x_test, prec)[0]
    bk = ArbBackend(prec)
    with bk.context():
        A = train_operator(tu[2], bk, t, lr, ridge, steps)
        return formulas.rnd_error_cov(ku, kg, tu[1], A, centred=centred)


def bayesian_rnd_covariance(arch, x_train, x_test, noise=0.0, readout_only=False, prec: int = DEFAULT_PREC):
    """C7 on balls: ``P (k + lambda I_XX) P^*`` (:func:`ntk_equiv.rnd.bayesian_rnd_covariance`'s formula)."""
    from . import formulas

    k, th = blocks(arch, x_train, x_test, prec)
    prior = gain = k if readout_only else th
    bk = ArbBackend(prec)
    with bk.context():
        lam = bk.scalar(noise)
        A = formulas.train_operator(gain[2], bk, ridge=lam)
        return formulas.bayesian_rnd_cov(prior, gain[1], A, lam, bk)


def gp_posterior(arch, x_train, y_train, x_test, prior="ntk", noise=0.0, prec: int = DEFAULT_PREC):
    """GP posterior ``(mean, cov)`` on balls (:func:`ntk_equiv.rnd.gp_posterior`'s formulas)."""
    from . import formulas

    k, th = blocks(arch, x_train, x_test, prec)
    kxx, kxX, kXX = th if prior == "ntk" else k
    bk = ArbBackend(prec)
    with bk.context():
        lam = bk.scalar(noise)
        Y = bk.asarray(np.asarray(y_train, float).reshape(len(x_train), -1))
        return (formulas.posterior_mean(kxX, kXX, Y, bk, noise=lam),
                formulas.posterior_cov(kxx, kxX, kXX, bk, noise=lam))
