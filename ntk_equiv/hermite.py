"""Gaussian expectations ``E[f(u) g(v)]`` of smooth functions by the Mehler
(Hermite) expansion: the dual maps of smooth activations given as formulas.

With ``u = a Z1``, ``v = b Z2`` and ``corr(Z1, Z2) = rho``, Mehler's formula is

    E[f(u) g(v)] = sum_k rho^k F_k(a) G_k(b),    F_k(a) = E[f(a Z) p_k(Z)],

with ``p_k = He_k / sqrt(k!)`` the orthonormal Hermite polynomials. The
coefficients depend on one point's variance only (``n`` sets per layer, not
``n^2``); a pair costs a polynomial in ``rho``.

*Certificate.* By Cauchy-Schwarz, truncating after ``K`` terms errs by at most
``sqrt(R_f(K) R_g(K))`` with ``R_f(K) = sum_{k>K} F_k^2 = E[f(u)^2] -
sum_{k<=K} F_k^2`` (Parseval): relative to the entry's scale
``sqrt(E[f(u)^2] E[g(v)^2])`` (the Cauchy-Schwarz bound of the entry) the error
is at most ``sqrt(r_f r_g)``, ``r = R / E[f^2]``, at *every* correlation,
``+-1`` included. Each point gets the shortest expansion whose computed tail is
below ``tail_tol``, and the remainder beyond all computed terms is checked by
Parseval against ``E[f(u)^2]`` computed on the same nodes. For smooth
activations the coefficients decay geometrically (``erf(a x)``: ratio
``2a^2 / (1 + 2a^2)``) or like ``exp(-c sqrt(k))`` (poles off the real axis:
``tanh``), so a few hundred terms reach ``1e-15`` at pre-activation std ~2.
Kinked activations (coefficients decaying like a power of ``k``) use
:mod:`ntk_equiv.quadrature` instead.

*Coefficients.* ``F_k = int f(a z) sqrt(N(z)) h_k(z) dz`` with the Hermite
functions ``h_k = p_k sqrt(N)`` (orthonormal in ``L2(dz)``, ``|h_k| <= 1``): the
integrand is analytic and decays like ``exp(-z^2/4)``, so the trapezoidal rule on
``[-L, L]`` converges geometrically once the step ``h`` resolves ``h_K``'s
fastest oscillation (frequency ``sqrt(2K + 1)``). ``E[f(u)^2]`` comes from the
same nodes, and the subset of every other node (step ``2h``) checks that ``f``
is resolved and that the integrand decays (else
:class:`~ntk_equiv.errors.QuadratureError`: a divergent expectation, a pole on
the real line, or a feature too narrow for the finest level).

One code path serves float64 and mpmath: :class:`Ops` supplies the few
elementwise functions (an explicit mpmath context, never the global
``mpmath.mp``), and the high-precision dot products run in exact fixed-point
integer arithmetic (Python ints in numpy object arrays: ~10x faster than mpf).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import gmpy2
import mpmath
import numpy as np

from .errors import QuadratureError
from .precision import is_high_precision

#: Trapezoidal step of the coarsest level; level ``j`` halves it ``j`` times
#: (nested grids: a finer level evaluates only the new nodes) and keeps
#: ``K_j = (193 4^j - 1) / 2`` terms (96, 385, 1543, 6175), so that
#: ``h_j = pi / sqrt(2 K_j + 1)``: one node per half-period of ``h_K``'s fastest
#: oscillation (the trapezoidal error is then set by ``h_K``'s Fourier
#: transform, itself a Hermite function, beyond twice its band: negligible).
COARSEST_STEP = math.pi / math.sqrt(193.0)
F64_LEVELS = (0, 1, 2, 3)
#: high precision: the nested levels up to 1543 terms, then 3600 terms on a grid
#: of their own (the tables are cached per precision; ~1.2M integers at 65 digits)
MP_LEVELS = (0, 1, 2, 3600)

#: float64: per-point tail ``r`` accepted (the pair error is at most ``r`` plus the
#: Parseval remainder), and the tolerance of the resolution checks (Parseval
#: remainder and step ``2h`` vs ``h`` for ``E[f^2]``): rounding leaves ~1e-16.
F64_TAIL_TOL = 1e-15
F64_RESOLVE_TOL = 5e-14
#: Digits below which ``sqrt(N(z))`` ends the float64 range ``[-L, L]``.
F64_RANGE_DIGITS = 20.0
#: Guard bits of the fixed-point tables beyond the working precision.
FIXED_GUARD_BITS = 32


def level_terms(level: int) -> int:
    return (193 * 4**level - 1) // 2 if level < 10 else level


def half_width(digits: float) -> float:
    """``L`` with ``exp(-L^2 / 4) = 10^-digits``: where ``sqrt(N(z))``, the
    coefficient integrand's envelope, falls below the target."""
    return math.sqrt(4 * math.log(10) * digits)


def level_steps(level: int, digits: float) -> int:
    """Steps each side of 0 at ``level`` (even, doubling with the level: nested
    grids); a ``level >= 10`` is a number of terms ``K`` with its own grid
    (``h = pi / sqrt(2K + 1)``, not nested)."""
    if level >= 10:
        return 2 * math.ceil(half_width(digits) * math.sqrt(2 * level + 1) / math.pi / 2)
    return 2 * math.ceil(half_width(digits) / COARSEST_STEP / 2) * 2**level


def level_step(ops, level: int):
    if level >= 10:
        return ops.pi / ops.sqrt(ops.num(2 * level + 1))
    return ops.pi / ops.sqrt(ops.num(193)) / 2**level


class Ops:
    """Elementwise operations on float64 arrays (``ctx=None``) or on object
    arrays of numbers of one mpmath context ``ctx``."""

    def __init__(self, ctx=None):
        self.ctx = ctx
        if ctx is None:
            self.exp, self.sqrt, self.num, self.pi, self.dtype = np.exp, np.sqrt, float, np.pi, float
            self.finite = np.isfinite
        else:
            self.exp, self.sqrt = np.frompyfunc(ctx.exp, 1, 1), np.frompyfunc(ctx.sqrt, 1, 1)
            self.num, self.pi, self.dtype = ctx.mpf, +ctx.pi, object
            # a complex value (sqrt or log of a negative number) is outside the domain too
            finite = np.frompyfunc(lambda v: isinstance(v, ctx.mpf) and ctx.isfinite(v), 1, 1)
            self.finite = lambda x: np.asarray(finite(x), dtype=bool)

    def arange(self, lo: int, hi: int) -> np.ndarray:
        return np.array([self.num(i) for i in range(lo, hi)], dtype=self.dtype)


def hermite_rows(z, env, roots, inv_roots, n_terms: int, mul: Callable) -> np.ndarray:
    """``[h_k(z_n)]`` for ``k <= K`` by the stable recurrence
    ``h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k+1)``, ``h_0 = sqrt(N(z)) = env``,
    with ``roots[k] = sqrt(k)``, ``inv_roots[k] = 1 / sqrt(k)``; ``mul`` is
    float64's product or the fixed-point one (one recurrence, two number systems)."""
    rows = np.empty((n_terms + 1, len(z)), dtype=np.asarray(env).dtype)
    rows[0] = env
    rows[1] = mul(z, env)
    for k in range(1, n_terms):
        rows[k + 1] = mul(mul(z, rows[k]) - mul(roots[k], rows[k - 1]), inv_roots[k + 1])
    return rows


def nodes(ops: Ops, level: int, digits: float, h) -> tuple:
    """Nodes ``z_n = n h`` and ``sqrt(N(z_n))``."""
    steps = level_steps(level, digits)
    z = ops.arange(-steps, steps + 1) * h
    return z, ops.exp(-z * z / 4) / ops.sqrt(ops.sqrt(2 * ops.pi + 0 * z))


@functools.lru_cache(maxsize=len(F64_LEVELS))
def f64_table(level: int) -> tuple:
    """``(z, env, T)``: the nodes on ``[-L, L]``, ``sqrt(N(z))`` and the half table
    ``T[k, n] = c_n h env_n h_k(z_n)`` on the nodes ``z_n >= 0`` (``c_0 = 1/2``,
    else 1): with ``h_k(-z) = (-1)^k h_k(z)``,
    ``F_k(a) = sum_n (f(a z_n) + (-1)^k f(-a z_n)) T[k, n]`` (:func:`_dot_f64`)."""
    ops, n_terms = Ops(), level_terms(level)
    h = level_step(ops, level)
    z, env = nodes(ops, level, F64_RANGE_DIGITS, h)
    mid = len(z) // 2
    roots = np.sqrt(np.arange(n_terms + 2.0))
    rows = hermite_rows(z[mid:], env[mid:], roots, 1 / np.where(roots > 0, roots, 1), n_terms, np.multiply)
    table = rows * (env[mid:] * h)
    table[:, 0] /= 2
    return z, env, table


def _parity_dot(values: np.ndarray, table: np.ndarray, matmul: Callable) -> np.ndarray:
    """``F[:, k] = sum_n (v(z_n) + (-1)^k v(-z_n)) T[k, n]`` over the half table."""
    mid = values.shape[1] // 2
    plus, minus = values[:, mid:], values[:, mid::-1]
    out = np.empty((values.shape[0], table.shape[0]), dtype=values.dtype)
    out[:, 0::2] = matmul(plus + minus, table[0::2])
    out[:, 1::2] = matmul(plus - minus, table[1::2])
    return out


#: :func:`coefficients`' answer when ``E[f^2]`` itself does not settle (step ``h`` vs ``2h``).
UNSETTLED = "unsettled"


def _not_finite(name: str, x) -> QuadratureError:
    return QuadratureError(
        f"{name} is not finite at x = {float(x):.6g} (a pole or a point outside its domain on the real "
        f"line): its Gaussian expectation is infinite or undefined")


def coefficients(raw: np.ndarray, a: np.ndarray, table, dot: Callable, *, tail_tol, resolve_tol, settle_tol,
                 name: str = "phi") -> tuple | None:
    """``(F, m2, terms)`` from the values ``raw[i, n] = f(a_i z_n)`` on the
    nodes of ``table``: Hermite coefficients ``F[i, k]``,
    ``m2[i] = E[f(a_i Z)^2]`` and the number of terms ``terms[i]`` whose
    remaining tail is below ``tail_tol * m2[i]``; or ``None`` when this level
    does not resolve every point (try a finer one), :data:`UNSETTLED` when
    ``E[f(a_i Z)^2]`` itself does not settle.

    Raises :class:`~ntk_equiv.errors.QuadratureError` when ``f(a z)^2 N(z)``
    has not decayed at ``|z| = L``: ``f`` grows like ``exp(z^2 / 4)`` or faster
    and ``E[f(u)^2]`` is infinite (or too close to it to settle)."""
    z, env, tab = table[:3]
    fz = raw * env
    sq = fz * fz
    h = z[1] - z[0]
    m2 = np.sum(sq, axis=1) * h
    scale = np.where(np.asarray(m2 > 0, dtype=bool), m2, m2 * 0 + 1)
    ends = np.maximum(sq[:, 0], sq[:, -1])
    undecayed = np.asarray(ends * h > resolve_tol * scale, dtype=bool)
    if np.any(undecayed):
        i = int(np.argmax(undecayed))
        raise QuadratureError(_undecayed(name, a[i], z[-1], ends[i] * h / scale[i]))
    # the trapezoidal rule of an analytic integrand errs like C q^(1/h): the step-h
    # error is about the square of the step-2h one (relative), so agreement to
    # sqrt(resolve_tol) / 10 leaves the step-h rule ~resolve_tol / 100
    coarse = 2 * h * np.sum(sq[:, ::2], axis=1)
    unsettled = np.asarray(abs(m2 - coarse) > settle_tol * scale, dtype=bool)
    if np.any(unsettled):
        return UNSETTLED
    coef = dot(raw, tab)
    sq_coef = coef * coef
    tail = np.cumsum(sq_coef[:, ::-1], axis=1)[:, ::-1]  # tail[:, k] = sum_{j >= k} F_j^2
    rest = np.asarray(abs(m2 - tail[:, 0]) > resolve_tol * scale, dtype=bool)
    below = np.asarray(tail <= tail_tol * scale[:, None], dtype=bool)
    if np.any(rest) or not np.all(below.any(axis=1)):
        return None
    return coef, m2, np.argmax(below, axis=1)


def expansions(ops: Ops, fn: Callable, a: np.ndarray, table_at: Callable, dot_at: Callable, levels: tuple, *,
               tail_tol, resolve_tol, names: tuple) -> list | None:
    """:func:`coefficients` of the functions ``fn(x) -> (f_1(x), f_2(x), ...)``
    at the first level that resolves every point of ``a`` and every function
    (all share the level, so a pair sum never reaches past the coefficients of
    either point); ``None`` when none does (features too narrow for the finest
    level: the caller falls back to a 2-D rule). The levels are nested: each
    evaluates ``fn`` only at its new nodes.

    Raises :class:`~ntk_equiv.errors.QuadratureError` on a non-finite value
    (a pole or a point outside the domain on the real line)."""
    raw = None
    for level in levels:
        table = table_at(level)
        z = table[0]
        nested = raw is not None and len(z) == 2 * raw[0].shape[1] - 1
        if raw is not None and not nested:
            raw = None
        new_z = z if raw is None else z[1::2]
        new = evaluate(ops, fn, a, new_z, names)
        if raw is None:
            raw = [np.array(v) for v in new]
        else:
            merged = []
            for old, v in zip(raw, new):
                both = np.empty((len(a), len(z)), dtype=ops.dtype)
                both[:, ::2], both[:, 1::2] = old, v
                merged.append(both)
            raw = merged
        out = [coefficients(r, a, table, dot_at(level), tail_tol=tail_tol, resolve_tol=resolve_tol,
                            settle_tol=ops.sqrt(resolve_tol + 0 * a[:1])[0] / 10, name=name)
               for r, name in zip(raw, names)]
        if all(o is not None and o is not UNSETTLED for o in out):
            return out
    return None  # unsettled or unresolved at the finest level: the caller decides


def evaluate(ops: Ops, fn: Callable, a: np.ndarray, z: np.ndarray, names: tuple) -> list:
    """``[f(a_i z_n)]`` for each function of ``fn``, raising
    :class:`~ntk_equiv.errors.QuadratureError` at the first value that is not a
    finite real number (a pole, or a point outside the domain, on the real line)."""
    x = np.multiply.outer(a, z)
    try:
        with np.errstate(all="ignore"):  # NaN/inf are reported below, with the point
            values = [np.broadcast_to(v, x.shape) for v in fn(x)]
    except (ZeroDivisionError, ValueError, OverflowError) as exc:  # mpmath raises where numpy gives inf/NaN
        raise QuadratureError(f"{names[0]} cannot be evaluated on the real line ({exc!r}): a pole or a point "
                              "outside its domain; its Gaussian expectation is infinite or undefined") from None
    for name, v in zip(names, values):
        finite = ops.finite(v)
        if not np.all(finite):
            i, n = np.argwhere(~finite)[0]
            raise _not_finite(name, x[i, n])
    return values


def check_square_integrable(ops: Ops, fn: Callable, a: np.ndarray, *, digits: float, tol, names: tuple) -> None:
    """The divergence checks of :func:`coefficients` alone (finite values;
    ``f(a z)^2 N(z)`` decayed at ``|z| = L``), for functions whose Hermite
    expansion is not used (kinked activations, integrated by 2-D rules that
    cannot see a divergent tail)."""
    z, env = nodes(ops, 0, digits, level_step(ops, 0))
    h = z[1] - z[0]
    for name, raw in zip(names, evaluate(ops, fn, a, z, names)):
        sq = (raw * env) ** 2
        m2 = np.sum(sq, axis=1) * h
        scale = np.where(np.asarray(m2 > 0, dtype=bool), m2, m2 * 0 + 1)
        ends = np.maximum(sq[:, 0], sq[:, -1]) * h
        bad = np.asarray(ends > tol * scale, dtype=bool)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise QuadratureError(_undecayed(name, a[i], z[-1], ends[i] / scale[i]))


def _undecayed(name: str, a, end, fraction) -> str:
    return (f"E[{name}(u)^2] at pre-activation std {float(a):.4g} does not settle: {name}(u)^2 decays no faster "
            f"than the Gaussian density grows (at |u| = {float(a * end):.4g} the integrand is still "
            f"{float(fraction):.2g} of the total); the expectation is infinite or too close to infinite for "
            "this quadrature (e.g. exp(x**2) needs pre-activation variance < 1/4)")


def pair_sum(ia: np.ndarray, ib: np.ndarray, rho, cf: np.ndarray, cg: np.ndarray, terms: np.ndarray):
    """``sum_{k <= K_p} rho_p^k cf[ia_p, k] cg[ib_p, k]`` per pair ``p`` (Horner),
    ``K_p = terms[ia_p] max terms[ib_p]``: pairs sorted by ``K_p`` so that each
    step of the recurrence touches a prefix."""
    kp = np.maximum(terms[ia], terms[ib])
    order = np.argsort(-kp, kind="stable")
    ia, ib, r, kp = ia[order], ib[order], rho[order], kp[order]
    cft, cgt = cf.T, cg.T
    acc = np.zeros(len(ia), dtype=cf.dtype) if not is_high_precision(cf) else r * 0
    count = 0
    for k in range(int(kp[0]) if len(kp) else 0, -1, -1):
        while count < len(kp) and kp[count] >= k:  # the prefix of pairs with K_p >= k grows
            count += 1
        head = slice(0, count)
        acc[head] = acc[head] * r[head] + cft[k][ia[head]] * cgt[k][ib[head]]
    out = np.empty_like(acc)
    out[order] = acc
    return out


def _unique(k11: np.ndarray, k22: np.ndarray):
    """Distinct variances and, per pair, the index of each side's."""
    flat = np.concatenate([k11.ravel(), k22.ravel()])
    if not is_high_precision(flat):
        var, inv = np.unique(flat, return_inverse=True)
    else:
        index: dict = {}
        inv = np.array([index.setdefault(v, len(index)) for v in flat], dtype=np.intp)
        var = np.array(list(index), dtype=object)
    inv = inv.ravel()
    return var, inv[: k11.size], inv[k11.size:]


def self_expectations(ops: Ops, fn: Callable, k11, k12, k22, table_at, dot_at, levels: tuple, *, tail_tol,
                      resolve_tol, names: tuple) -> list | None:
    """``[E[f(u) f(v)] for f in fn's functions]`` for ``(u, v) ~ N(0, [[k11, k12],
    [k12, k22]])`` elementwise over broadcast arrays (one formula for float64
    and mpmath; see the module docstring for the certificate); ``None`` when
    the finest level does not resolve some variance."""
    k11, k12, k22 = np.broadcast_arrays(k11, k12, k22)
    var, ia, ib = _unique(k11, k22)
    a = ops.sqrt(np.where(np.asarray(var > 0, dtype=bool), var, var * 0))
    out = expansions(ops, fn, a, table_at, dot_at, levels, tail_tol=tail_tol, resolve_tol=resolve_tol, names=names)
    if out is None:
        return None
    k11f, k12f, k22f = k11.ravel(), k12.ravel(), k22.ravel()
    den = ops.sqrt(k11f * k22f)
    zero = np.asarray(den == 0, dtype=bool)
    # rounding can push |rho| past 1 by an ulp: clip; a zero variance keeps only the k = 0 term
    rho = np.where(zero, den * 0, k12f / np.where(zero, den * 0 + 1, den))
    rho = np.minimum(np.maximum(rho, -ops.num(1)), ops.num(1))
    terms = np.max([t for _, _, t in out], axis=0)
    return [pair_sum(ia, ib, rho, c, c, terms).reshape(k11.shape) for c, _, _ in out]


def expectations_f64(fn: Callable, k11, k12, k22, names=("phi", "phi'")) -> list | None:
    """:func:`self_expectations` in float64: pair error at most
    ``F64_TAIL_TOL + F64_RESOLVE_TOL`` (~5e-14) of ``sqrt(E[f(u)^2] E[f(v)^2])``."""
    k11, k12, k22 = (np.asarray(k, float) for k in (k11, k12, k22))
    return self_expectations(Ops(), fn, k11, k12, k22, f64_table, lambda level: _dot_f64, F64_LEVELS,
                             tail_tol=F64_TAIL_TOL, resolve_tol=F64_RESOLVE_TOL, names=names)


def _dot_f64(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    return _parity_dot(values, table, lambda v, t: v @ t.T)


# --------------------------------------------------------------------------- #
# high precision: the same expansion, dot products in fixed point
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=8)
def context(prec: int):
    """An mpmath context of its own at ``prec`` bits (never the global ``mpmath.mp``)."""
    ctx = mpmath.MPContext()
    ctx.prec = prec
    return ctx


@functools.lru_cache(maxsize=2 * len(MP_LEVELS))
def fixed_table(prec: int, level: int, digits: float) -> tuple:
    """``(z, env, T, bits)`` like :func:`f64_table` at ``prec`` bits: ``z, env`` as
    mpf of :func:`context` ``(prec)``, ``T`` as integers ``round(T 2^bits)``
    (``bits = prec + FIXED_GUARD_BITS``) by :func:`hermite_rows` in fixed point
    (exact integer sums, ~10x faster than mpf)."""
    bits = prec + FIXED_GUARD_BITS
    hi = context(bits + 32)
    ops, n_terms = Ops(hi), level_terms(level)
    h = level_step(ops, level)
    z, env = nodes(ops, level, digits, h)
    mid = len(z) // 2

    def fixed(values):
        return np.array([gmpy2.mpz(int(hi.nint(hi.ldexp(v, bits)))) for v in values], dtype=object)

    def mul(x, y):
        return (x * y) >> bits

    roots = [hi.sqrt(k) for k in range(n_terms + 2)]
    rows = hermite_rows(fixed(z[mid:]), fixed(env[mid:]), fixed(roots), fixed([1 / r if r else r for r in roots]),
                        n_terms, mul)
    table = mul(rows, fixed(env[mid:] * h))
    table[:, 0] >>= 1
    lo = context(prec)
    conv = np.frompyfunc(lo.convert, 1, 1)
    return np.asarray(conv(z), dtype=object), np.asarray(conv(env), dtype=object), table, bits


def _fixed_dot(ctx, bits: int) -> Callable:
    to_int = np.frompyfunc(lambda v: gmpy2.mpz(int(ctx.nint(ctx.ldexp(v, bits)))), 1, 1)
    to_mpf = np.frompyfunc(lambda v: ctx.ldexp(ctx.mpf(int(v)), -2 * bits), 1, 1)

    def dot(values: np.ndarray, table: np.ndarray) -> np.ndarray:
        return to_mpf(_parity_dot(np.asarray(to_int(values), dtype=object), table, lambda v, t: v @ t.T))
    return dot


def expectations_mp(ctx, fn: Callable, k11, k12, k22, *, digits: int, names=("phi", "phi'")) -> list | None:
    """:func:`self_expectations` in the mpmath context ``ctx`` (``fn``
    evaluates in it), with truncation tail and Parseval remainder below
    ``10^-digits`` of the entry's scale each."""
    conv = np.frompyfunc(ctx.convert, 1, 1)
    k11, k12, k22 = (np.asarray(conv(np.asarray(k, dtype=object)), dtype=object) for k in (k11, k12, k22))
    tol = ctx.mpf(10) ** -digits
    range_digits = float(digits + 5)

    def table_at(level):
        return fixed_table(ctx.prec, level, range_digits)

    def dot_at(level):
        return _fixed_dot(ctx, table_at(level)[3])

    return self_expectations(Ops(ctx), fn, k11, k12, k22, table_at, dot_at, MP_LEVELS,
                             tail_tol=tol, resolve_tol=tol, names=names)


# --------------------------------------------------------------------------- #
# kinked (or slowly converging) functions at high precision: the same
# expansion, coefficients by Gauss-Legendre panels split at the kinks, and a
# tail bound per pair that uses the correlation
# --------------------------------------------------------------------------- #
# A kink of f (a jump of f or of one of its derivatives at kappa) spoils the
# trapezoidal rule of the coefficients (an error O(h^2) instead of geometric),
# and makes the coefficients decay like a power of k, so the Cauchy-Schwarz
# tail of the module docstring, which holds at rho = +-1, never settles. Both
# are fixed as follows, for f piecewise analytic with finitely many kinks:
#
# * Coefficients. On [-L, L] (L = half_width(digits)), split into panels of
#   width SPLIT_PANEL_WIDTH and at the points +-kappa / a, each panel carries an
#   m-point Gauss-Legendre rule; the integrand f(a z) h_k(z) sqrt(N(z)) is
#   analytic on every panel, so the rule converges geometrically. The rule is
#   accepted when a second one with more nodes per panel agrees on every
#   coefficient and on E[f(u)^2] (else the caller's 2-D rules take over). Only
#   the panels holding a kink depend on the variance; the others' tables are
#   shared (cached per panel).
# * Tail. |sum_{k>K} rho^k F_k G_k| <= |rho|^(K+1) sqrt(R_f(K) R_g(K)) with
#   R_f(K) = E[f(u)^2] - sum_{k<=K} F_k^2 (Cauchy-Schwarz and Parseval), so a
#   pair with |rho| < 1 needs only K ~ digits / log(1/|rho|) terms whatever the
#   smoothness of f. Pairs too close to |rho| = 1 for SPLIT_MAX_TERMS terms are
#   left to the caller (flagged), except the exact diagonal (k11 = k22 = +-k12:
#   E[f(u) f(+-u)], a 1-D sum on the same nodes).

#: Width (in the whitened variable z) of the Gauss-Legendre panels of the split rule: wide
#: panels need fewer nodes per unit length for the oscillation of h_K (24 per unit at
#: K = 1536 and 40 digits, against 34 for width 4: :func:`split_panel_nodes`).
SPLIT_PANEL_WIDTH = 8.0
#: Numbers of terms the split rule may use (a table is built for the smallest
#: level enough for every pair; levels keep the cache small).
#: Extra Gauss-Legendre nodes per panel of the second (checking) rule, and the numbers of
#: lowest and highest coefficients it checks.
SPLIT_EXTRA_NODES = 6
SPLIT_CHECKED_TERMS = 16
SPLIT_TERM_LEVELS = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048)


def split_panel_nodes(n_terms: int, digits: float, width: float = SPLIT_PANEL_WIDTH) -> int:
    """Gauss-Legendre nodes per panel of ``width`` for the coefficients ``k <= n_terms``
    to ``digits``: the fastest oscillation of ``h_K`` is ``e^{i w z}`` with
    ``w = sqrt(2K + 1)``, which an m-point rule on a panel of half-width ``c = width / 2``
    integrates with error about ``(e w c / (4 m))^(2m)`` (the Bessel-function bound of
    Gauss-Legendre on ``e^{i t x}``); the smallest such ``m`` with 6 more (the second
    rule, with more nodes, checks the result)."""
    t = math.e * math.sqrt(2 * n_terms + 1) * width / 2 / 4
    m = max(8, int(t) + 1)
    while 2 * m * math.log10(m / t) < digits:
        m += 1
    return m + 6


@functools.lru_cache(maxsize=256)
def _panel_table(prec: int, n_terms: int, lo_raw: tuple, hi_raw: tuple, m: int) -> tuple:
    """``(z, wn, T, bits)`` of one panel ``[lo, hi]`` (raw mpf tuples) with ``m``
    Gauss-Legendre nodes at ``prec`` bits: nodes ``z_n`` and ``wn_n = w_n N(z_n)`` as
    mpf of :func:`context` ``(prec)``, and the fixed-point table
    ``T[k, n] = round(2^bits w_n sqrt(N(z_n)) h_k(z_n))`` (:func:`hermite_rows`)."""
    from .quadrature import _in_context, legendre_rule_newton

    bits = prec + FIXED_GUARD_BITS
    hi = context(bits + 32)
    lo_e, hi_e = hi.make_mpf(lo_raw), hi.make_mpf(hi_raw)
    t, w = _in_context(hi, legendre_rule_newton(bits + 32, m))
    half, mid = (hi_e - lo_e) / 2, (hi_e + lo_e) / 2
    z = [mid + half * x for x in t]
    wts = [half * x for x in w]
    root = hi.sqrt(hi.sqrt(2 * hi.pi))
    env = [hi.exp(-v * v / 4) / root for v in z]

    def fixed(values):
        return np.array([gmpy2.mpz(int(hi.nint(hi.ldexp(v, bits)))) for v in values], dtype=object)

    def mul(x, y):
        return (x * y) >> bits

    roots = [hi.sqrt(k) for k in range(n_terms + 2)]
    rows = hermite_rows(fixed(z), fixed(env), fixed(roots), fixed([1 / r if r else r for r in roots]), n_terms, mul)
    table = mul(rows, fixed([wi * e for wi, e in zip(wts, env)]))
    low = context(prec)
    return (tuple(low.convert(v) for v in z), tuple(low.convert(wi * e * e) for wi, e in zip(wts, env)), table, bits)


def split_edges(ctx, breaks, digits: float, width: float = SPLIT_PANEL_WIDTH) -> list:
    """Panel edges on ``[-L, L]``: ``+-L``, the multiples of ``width`` and the points of
    ``breaks`` inside, increasing, in ``ctx`` (symmetric when ``breaks`` is)."""
    big_l = ctx.mpf(half_width(digits))
    n = math.ceil(float(big_l) / width) - 1
    grid = [ctx.mpf(k * width) for k in range(-n, n + 1)] + [-big_l, big_l]
    return sorted(set(grid) | {b for b in breaks if -big_l < b < big_l})


def split_rule(ctx, breaks, n_terms: int, digits: float, extra: int = 0) -> tuple:
    """``(z, wn, T, bits)`` of the whole split rule (panels of :func:`split_edges`,
    :func:`split_panel_nodes` ``+ extra`` nodes each), tables concatenated."""
    m = split_panel_nodes(n_terms, digits) + extra
    edges = split_edges(ctx, breaks, digits)
    parts = [_panel_table(ctx.prec, n_terms, a._mpf_, b._mpf_, m) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    z = np.array([v for p in parts for v in p[0]], dtype=object)
    wn = np.array([v for p in parts for v in p[1]], dtype=object)
    table = np.concatenate([p[2] for p in parts], axis=1)
    return z, wn, table, parts[0][3]


def _split_coefficients(ctx, fn, a, kinks, n_terms: int, digits: float, extra: int, names: tuple,
                        rows=slice(None)) -> list:
    """Per variance ``a_i`` (std): ``[(F, m2, flip) for each function of fn]``, ``F`` the
    coefficients ``k`` in ``rows`` of ``k <= n_terms``, ``m2 = E[f(a_i Z)^2]`` and
    ``flip = E[f(a_i Z) f(-a_i Z)]`` by :func:`split_rule` (nodes split at ``+-kappa / a_i``,
    so symmetric)."""
    out = [([], [], []) for _ in names]
    for ai in a:
        breaks = sorted({s * kappa / ai for kappa in kinks for s in (1, -1)})
        z, wn, table, bits = split_rule(ctx, breaks, n_terms, digits, extra)
        table = table[rows]
        values = evaluate(Ops(ctx), fn, np.array([ai], dtype=object), z, names)
        to_int = np.frompyfunc(lambda v: gmpy2.mpz(int(ctx.nint(ctx.ldexp(v, bits)))), 1, 1)
        to_mpf = np.frompyfunc(lambda v: ctx.ldexp(ctx.mpf(int(v)), -2 * bits), 1, 1)
        for (coef, m2, flip), v in zip(out, values):
            v = v[0]
            coef.append(to_mpf(table @ np.asarray(to_int(v), dtype=object)))
            m2.append(ctx.fsum(x * x * w for x, w in zip(v, wn)))
            flip.append(ctx.fsum(x * y * w for x, y, w in zip(v, v[::-1], wn)))
    return [tuple(np.array(part, dtype=object) for part in parts) for parts in out]


def split_expectations_mp(ctx, fn: Callable, kinks, k11, k12, k22, *, digits: int,
                          names=("phi", "phi'")) -> tuple:
    """``([E[f(u) f(v)] for each function of fn], settled)`` elementwise over broadcast
    arrays, in the mpmath context ``ctx``, for ``f`` piecewise analytic with the kinks
    ``kinks`` (numbers of ``ctx``; may be empty), by the split rule and the per-pair
    tail bound of the comment above; each settled entry errs by at most ``10^-digits``
    of its Cauchy-Schwarz scale ``sqrt(E[f(u)^2] E[f(v)^2])``. Entries not settled
    (``|rho|`` too close to 1, a zero variance) are ``None`` and ``False`` in ``settled``.
    ``None`` instead of the tuple when the two rules of the coefficients disagree."""
    conv = np.frompyfunc(ctx.convert, 1, 1)
    k11, k12, k22 = np.broadcast_arrays(*(np.asarray(conv(np.asarray(k, dtype=object)), dtype=object)
                                          for k in (k11, k12, k22)))
    shape = k11.shape
    k11f, k12f, k22f = k11.ravel(), k12.ravel(), k22.ravel()
    tol = ctx.mpf(10) ** -digits
    var, ia, ib = _unique(k11f, k22f)
    ok_var = np.array([v > 0 for v in var], dtype=bool)
    a = np.array([ctx.sqrt(v) if v > 0 else ctx.mpf(0) for v in var], dtype=object)
    den = np.array([ctx.sqrt(x * y) for x, y in zip(k11f, k22f)], dtype=object)
    usable = ok_var[ia] & ok_var[ib]
    rho = np.array([k / d if u else ctx.mpf(0) for k, d, u in zip(k12f, den, usable)], dtype=object)
    rho = np.array([max(min(r, ctx.mpf(1)), -ctx.mpf(1)) for r in rho], dtype=object)
    absr = np.array([float(abs(r)) for r in rho])
    diag = usable & (k11f == k22f) & (absr == 1.0) & np.array([abs(k) == d for k, d in zip(k12f, den)], dtype=bool)
    # terms: the smallest level whose |rho|^(K+1) reaches the tolerance for every off-diagonal pair
    # it can reach at all (the Parseval remainders only shorten this; checked per pair below)
    log_tol = -digits * math.log(10)
    want = [math.ceil(log_tol / math.log(r)) for r in absr[usable & ~diag] if 0 < r < 1]
    want = [k for k in want if k <= SPLIT_TERM_LEVELS[-1]]
    n_terms = next(k for k in SPLIT_TERM_LEVELS if k >= max(want, default=0))
    results = [np.full(k11f.shape, None, dtype=object) for _ in names]
    settled = np.zeros(k11f.shape, dtype=bool)
    live = np.flatnonzero(ok_var)
    if live.size and np.any(usable):
        # the second rule (more nodes per panel) checks E[f^2], E[f(u) f(-u)] and the coefficients
        # most sensitive to the rule: the highest k (h_k oscillates fastest, grows fastest off the
        # real axis) and the lowest
        check = np.r_[0:SPLIT_CHECKED_TERMS, n_terms + 1 - SPLIT_CHECKED_TERMS:n_terms + 1]
        rules = [_split_coefficients(ctx, fn, a[live], kinks, n_terms, digits + 2, extra, names, rows)
                 for extra, rows in ((0, slice(None)), (SPLIT_EXTRA_NODES, check))]
        for (ca, ma, fa), (cb, mb, fb) in zip(*rules):
            for i in range(len(live)):
                scale = ctx.sqrt(mb[i]) if mb[i] > 0 else ctx.mpf(1)
                if max(abs(ma[i] - mb[i]), abs(fa[i] - fb[i])) > tol * mb[i] or max(
                        abs(x - y) for x, y in zip(ca[i][check], cb[i])) > tol * scale / (4 * ctx.sqrt(n_terms + 1)):
                    return None
        where = {int(j): n for n, j in enumerate(live)}
        pa = np.array([where.get(int(j), -1) for j in ia])
        pb = np.array([where.get(int(j), -1) for j in ib])
        pick = np.flatnonzero(usable & ~diag)
        good = np.ones(len(pick), dtype=bool)
        per_fn = []
        for coef, m2, _ in rules[0]:
            terms, found = _certified_terms(coef, m2, pa[pick], pb[pick], absr[pick], tol, log_tol)
            good &= found
            per_fn.append((coef, terms))
        sel = pick[good]
        for out, (coef, terms) in zip(results, per_fn):
            per_var = _terms_per_variance(len(live), pa[sel], pb[sel], terms[good])
            out[sel] = pair_sum(pa[sel], pb[sel], rho[sel], coef, coef, per_var)
        settled[sel] = True
        for p in np.flatnonzero(diag):  # E[f(u) f(+-u)]: 1-D sums on the same nodes
            for out, (_, m2, flip) in zip(results, rules[0]):
                out[p] = m2[pa[p]] if k12f[p] > 0 else flip[pa[p]]
            settled[p] = True
    return [r.reshape(shape) for r in results], settled.reshape(shape)


def _certified_terms(coef, m2, ia, ib, absr, tol, log_tol) -> tuple:
    """Per pair, the smallest ``K`` with ``|rho|^(K+1) sqrt((R_i(K) + e)(R_j(K) + e)) <=
    tol sqrt(m2_i m2_j) / 4`` (``R(K) = m2 - sum_{k<=K} F_k^2``, ``e = tol max(m2_i, m2_j)``
    for the rounding of that difference), and whether one exists among the computed terms
    (logarithms in float64: the bound needs no more digits)."""
    rem = [np.array([float(r) for r in (m2[i] - np.cumsum(coef[i] * coef[i]))]) for i in range(len(m2))]
    m2f = [float(v) for v in m2]
    k = np.arange(coef.shape[1])
    terms = np.zeros(len(ia), dtype=int)
    found = np.ones(len(ia), dtype=bool)
    for n, (i, j, r) in enumerate(zip(ia, ib, absr)):
        scale = math.sqrt(m2f[i] * m2f[j])
        if scale == 0 or r == 0:
            continue  # a zero function, or rho = 0: the k = 0 term alone
        eps = float(tol) * max(m2f[i], m2f[j])
        with np.errstate(divide="ignore"):
            bound = (k + 1) * math.log(r) + 0.5 * (np.log(np.maximum(rem[i], 0) + eps) + np.log(np.maximum(rem[j], 0) + eps))
        ok = np.flatnonzero(bound <= log_tol + math.log(scale) - math.log(4))
        if ok.size:
            terms[n] = ok[0]
        else:
            found[n] = False
    return terms, found


def _terms_per_variance(n_var: int, ia, ib, terms) -> np.ndarray:
    # pair_sum takes K_p = max(terms[ia], terms[ib]) per variance; a per-pair K is wanted:
    # use the largest K any pair of a variance needs (more terms only shrink the tail)
    out = np.zeros(n_var, dtype=int)
    for i, j, k in zip(ia, ib, terms):
        out[i] = max(out[i], k)
        out[j] = max(out[j], k)
    return out


# --------------------------------------------------------------------------- #
# kinked functions in float64: the split expansion above, vectorised over the
# variances, for the pairs its tail bound settles
# --------------------------------------------------------------------------- #
# The coefficients F_k(a) = int f(a z) h_k(z) sqrt(N(z)) dz by Gauss-Legendre
# panels on [-L, L] (L = half_width(SPLIT_F64_DIGITS): sqrt(N) < 1e-17 beyond),
# split at a grid of width SPLIT_F64_PANEL_WIDTH and at kappa / a, with
# split_panel_nodes(K, 16) nodes per panel; the Hermite functions h_k by the
# normalised recurrence of hermite_rows, accumulated term by term (no table).
# A second rule with SPLIT_EXTRA_NODES more nodes per panel must agree:
# ||F - F'||_2 <= SPLIT_F64_COEF_TOL sqrt(m2) and |m2 - m2'| <= SPLIT_F64_TOL m2
# per variance, which bounds the pair sum's error from the coefficients by
# 2 SPLIT_F64_COEF_TOL of the Cauchy-Schwarz scale (|rho^k| <= 1 and Cauchy-Schwarz
# over k). A pair is settled when its tail bound |rho|^(K+1) sqrt((R_i + e)(R_j + e))
# (R = m2 - sum_{k<=K} F_k^2, e = 1e-15 max(m2_i, m2_j) for the rounding of that
# difference) is below SPLIT_F64_TOL / 4 of sqrt(m2_i m2_j); the others (|rho| near
# 1) are left to the caller's 2-D rule.

#: Numbers of terms of the float64 split expansion (the smallest enough for every pair
#: with |rho| < 1 that one can reach is used).
SPLIT_F64_TERM_LEVELS = (64, 128, 256, 512, 1024, 2048)
#: Error bound of a settled pair (rule agreement plus tail), relative to its
#: Cauchy-Schwarz scale: two orders below the 1e-11 contract of the dual maps.
SPLIT_F64_TOL = 1e-13
#: Agreement of the two rules' coefficient vectors (L2 norm, relative to sqrt(E f^2)):
#: the rounding of 513 coefficients leaves ~2.5e-14 (measured); the pair error it bounds,
#: 2e-12 of the scale, is under the 1e-11 contract.
SPLIT_F64_COEF_TOL = 1e-12
#: The range [-L, L] of the coefficient integrals: sqrt(N(z)) < 10^-17 beyond.
SPLIT_F64_DIGITS = 17.0
#: Largest width of the grid panels (in z: [-L, L] in equal panels); the panels holding
#: kappa / a are split there.
SPLIT_F64_PANEL_WIDTH = 1.0


def _split_f64_width() -> float:
    big_l = half_width(SPLIT_F64_DIGITS)
    return 2 * big_l / (2 * math.ceil(big_l / SPLIT_F64_PANEL_WIDTH))
#: Hermite functions per batched product of the coefficient sums.
SPLIT_F64_BLOCK = 16
#: Rounding floor of the Parseval remainder, relative to E[f(u)^2].
SPLIT_F64_ROUNDING = 1e-15


def _f64_grid(n_nodes: int) -> tuple:
    """``(edges, z, w)``: the equal panels of ``[-L, L]`` and their Gauss-Legendre nodes and
    weights (``n_nodes`` per panel, panel-major)."""
    big_l = half_width(SPLIT_F64_DIGITS)
    edges = np.linspace(-big_l, big_l, 2 * math.ceil(big_l / SPLIT_F64_PANEL_WIDTH) + 1)
    t, w = np.polynomial.legendre.leggauss(n_nodes)
    half = np.diff(edges) / 2
    z = ((edges[:-1] + half)[:, None] + half[:, None] * t).ravel()
    return edges, z, (half[:, None] * w).ravel()


def _hermite_sums(fw: np.ndarray, z: np.ndarray, n_terms: int) -> np.ndarray:
    """``S[i, j, k] = sum_n fw[i, j, n] h_k(z[i, n])`` for ``k <= n_terms`` (``fw`` of shape
    ``(n_var, n_fn, N)``, ``z`` of ``(n_var, N)`` or ``(N,)``): the recurrence of
    :func:`hermite_rows` from ``h_0 = sqrt(N(z))``, in blocks of :data:`SPLIT_F64_BLOCK`
    terms, each one batched product."""
    zz = np.broadcast_to(z, (fw.shape[0], fw.shape[2]))
    out = np.empty((fw.shape[0], fw.shape[1], n_terms + 1))
    block = np.empty((fw.shape[0], SPLIT_F64_BLOCK, fw.shape[2]))
    prev, cur = np.zeros(zz.shape), np.exp(-zz * zz / 4) / (2 * np.pi) ** 0.25
    for start in range(0, n_terms + 1, SPLIT_F64_BLOCK):
        stop = min(start + SPLIT_F64_BLOCK, n_terms + 1)
        for k in range(start, stop):
            block[:, k - start] = cur
            prev, cur = cur, (zz * cur - math.sqrt(k) * prev) / math.sqrt(k + 1)
        out[:, :, start:stop] = np.matmul(fw, block[:, :stop - start].transpose(0, 2, 1))
    return out


@functools.lru_cache(maxsize=8)
def _f64_grid_table(n_terms: int, n_nodes: int) -> np.ndarray:
    """``T[n, k] = w_n sqrt(N(z_n)) h_k(z_n)`` on the nodes of :func:`_f64_grid` (shared by
    every variance: only the panels holding a kink depend on it)."""
    _, z, w = _f64_grid(n_nodes)
    env = np.exp(-z * z / 4) / (2 * np.pi) ** 0.25
    roots = np.sqrt(np.arange(n_terms + 2.0))
    rows = hermite_rows(z, env, roots, 1 / np.where(roots > 0, roots, 1), n_terms, np.multiply)
    return np.ascontiguousarray((rows * (w * env)).T)


def split_coefficients_f64(fn: Callable, a: np.ndarray, kinks, n_terms: int, n_nodes: int,
                           names: tuple) -> tuple:
    """``(F, m2)``: ``F[j, i, k] = E[f_j(a_i Z) p_k(Z)]`` for ``k <= n_terms`` and
    ``m2[j, i] = E[f_j(a_i Z)^2]`` for each function ``f_j`` of ``fn``, by the split
    Gauss-Legendre rule of the comment above with ``n_nodes`` per panel: the panels free of
    ``kappa / a_i`` by the shared table :func:`_f64_grid_table` (one product), each panel
    holding one or more ``kappa / a_i`` split there into sub-panels of its own
    (:func:`_hermite_sums`)."""
    edges, zg, wg = _f64_grid(n_nodes)
    n_pan, big_l = len(edges) - 1, edges[-1]
    breaks = np.stack([float(kappa) / a for kappa in kinks], axis=1)  # (n_var, n_k)
    inside = (breaks > -big_l) & (breaks < big_l)
    pan = np.clip(np.floor((breaks + big_l) / (edges[1] - edges[0])).astype(int), 0, n_pan - 1)
    pan = np.where(inside, pan, -1)
    # each dirty panel once: a later kink in the same panel as an earlier one gets an empty slot
    first = np.ones(pan.shape, dtype=bool)
    for j in range(1, pan.shape[1]):
        first[:, j] = ~np.any(pan[:, :j] == pan[:, j:j + 1], axis=1)
    live = inside & first
    lo = np.where(live, edges[np.maximum(pan, 0)], big_l)
    hi = np.where(live, edges[np.maximum(pan, 0) + 1], big_l)
    sub = np.sort(np.concatenate([lo[..., None], np.clip(breaks[:, None, :], lo[..., None], hi[..., None]),
                                  hi[..., None]], axis=2), axis=2)  # (n_var, n_k, n_k + 2) edges
    t, w = np.polynomial.legendre.leggauss(n_nodes)
    half = np.diff(sub, axis=2) / 2
    zs = ((sub[..., :-1] + half)[..., None] + half[..., None] * t).reshape(len(a), -1)
    ws = (half[..., None] * w).reshape(len(a), -1)
    dirty = np.zeros((len(a), n_pan), dtype=bool)
    rows = np.repeat(np.arange(len(a))[:, None], pan.shape[1], axis=1)
    dirty[rows[live], pan[live]] = True
    keep = np.repeat(~dirty, n_nodes, axis=1)  # (n_var, n_grid)
    xg, xs = np.multiply.outer(a, zg), a[:, None] * zs
    with np.errstate(all="ignore"):
        vg = [np.broadcast_to(np.asarray(v, dtype=float), xg.shape) for v in fn(xg)]
        vs = [np.broadcast_to(np.asarray(v, dtype=float), xs.shape) for v in fn(xs)]
    for name, v, x in [*zip(names, vg, [xg] * len(names)), *zip(names, vs, [xs] * len(names))]:
        bad = ~np.isfinite(v) & (keep if x is xg else ws > 0)
        if np.any(bad):
            raise _not_finite(name, x[bad][0])
    vg = np.stack([np.where(keep, v, 0.0) for v in vg])  # (n_fn, n_var, n_grid)
    vs = np.stack([np.where(ws > 0, v, 0.0) for v in vs])
    table = _f64_grid_table(n_terms, n_nodes)
    coef = (vg.reshape(-1, vg.shape[2]) @ table).reshape(len(vg), len(a), -1)
    envs = np.exp(-zs * zs / 4) / (2 * np.pi) ** 0.25
    coef += _hermite_sums(np.ascontiguousarray((vs * (ws * envs)).transpose(1, 0, 2)), zs, n_terms).transpose(1, 0, 2)
    dens = np.exp(-zg * zg / 2) / math.sqrt(2 * math.pi)
    m2 = np.einsum("jin,n->ji", vg * vg, wg * dens) + np.einsum("jin,in->ji", vs * vs, ws * envs * envs)
    return coef, m2


def _pair_sum_terms(ia: np.ndarray, ib: np.ndarray, rho: np.ndarray, coef: np.ndarray, kp: np.ndarray):
    """``sum_{k <= kp_p} rho_p^k coef[ia_p, k] coef[ib_p, k]`` per pair ``p`` (Horner; pairs
    sorted by ``kp`` so that each step touches a prefix)."""
    order = np.argsort(-kp, kind="stable")
    ia, ib, r, kp = ia[order], ib[order], rho[order], kp[order]
    ct = np.ascontiguousarray(coef.T)
    acc = np.zeros(len(ia))
    count = 0
    for k in range(int(kp[0]) if len(kp) else 0, -1, -1):
        while count < len(kp) and kp[count] >= k:
            count += 1
        acc[:count] = acc[:count] * r[:count] + ct[k][ia[:count]] * ct[k][ib[:count]]
    out = np.empty_like(acc)
    out[order] = acc
    return out


def split_expectations_f64(fn: Callable, kinks, k11, k12, k22, names=("phi", "phi'")) -> tuple | None:
    """``(values, settled, m2_pair)`` for ``f`` piecewise analytic with the kinks ``kinks``:
    ``values[j]`` the pair sums ``E[f_j(u) f_j(v)]`` (float64 arrays of the broadcast
    shape), ``settled`` the mask of entries whose error is proven below
    :data:`SPLIT_F64_TOL` of the scale ``sqrt(E f_j(u)^2 E f_j(v)^2)`` (the exact
    diagonal ``k11 = k22 = k12`` included: ``E[f(u)^2]``), ``m2_pair[j]`` those scales
    squared. The other entries (``|rho|`` near 1) are 0 in ``values``. ``None`` when a
    variance is 0 or the two rules of the coefficients disagree (a feature too narrow
    for the panels): the caller's rules apply."""
    k11, k12, k22 = np.broadcast_arrays(*(np.asarray(k, dtype=float) for k in (k11, k12, k22)))
    shape = k11.shape
    k11f, k12f, k22f = k11.ravel(), k12.ravel(), k22.ravel()
    var, ia, ib = _unique(k11f, k22f)
    if var.size == 0 or np.any(var <= 0):
        return None
    a = np.sqrt(var)
    den = np.sqrt(k11f * k22f)
    rho = np.clip(k12f / den, -1.0, 1.0)
    absr = np.abs(rho)
    diag = (k11f == k22f) & (k12f == k11f)
    log_tol = math.log(SPLIT_F64_TOL / 4)
    reach = absr[(~diag) & (absr < 1) & (absr > 0)]
    want = np.ceil(log_tol / np.log(reach)) if reach.size else np.zeros(0)
    want = want[want <= SPLIT_F64_TERM_LEVELS[-1]]
    n_terms = next(k for k in SPLIT_F64_TERM_LEVELS if k >= (want.max() if want.size else 0))
    m = split_panel_nodes(n_terms, 16.0, _split_f64_width())
    coef, m2 = split_coefficients_f64(fn, a, kinks, n_terms, m, names)
    check, m2c = split_coefficients_f64(fn, a, kinks, n_terms, m + SPLIT_EXTRA_NODES, names)
    gap = np.sqrt(np.sum((coef - check) ** 2, axis=2))
    bad = (gap > SPLIT_F64_COEF_TOL * np.sqrt(m2c)) | (np.abs(m2 - m2c) > SPLIT_F64_TOL * m2c)
    if np.any(bad):
        return None  # a feature too narrow for the panels: the caller's rules apply
    rem = m2[:, :, None] - np.cumsum(coef * coef, axis=2)[:, :, -1:]  # (n_fn, n_var, 1): R(K)
    rem = np.maximum(rem[:, :, 0], 0) + SPLIT_F64_ROUNDING * m2
    scale2 = m2[:, ia] * m2[:, ib]
    with np.errstate(divide="ignore"):
        bound = (n_terms + 1) * np.log(absr) + 0.5 * (np.log(rem[:, ia]) + np.log(rem[:, ib]))
        ok = bound <= log_tol + 0.5 * np.log(np.where(scale2 > 0, scale2, 1.0))
    settled = (np.all(ok, axis=0) & (absr < 1)) | diag
    values = []
    pick = np.flatnonzero(settled & ~diag)
    # per pair the terms K_p with |rho|^(K_p + 1) <= SPLIT_F64_TOL / 4: the tail beyond is then
    # at most that times sqrt(R_i(K_p) R_j(K_p)) <= sqrt(m2_i m2_j) (at most the n_terms of the bound above)
    with np.errstate(divide="ignore"):
        kp = np.where(absr[pick] > 0, np.ceil(log_tol / np.log(absr[pick])), 0)
    kp = np.minimum(np.maximum(kp, 0), n_terms).astype(int)
    for j in range(len(names)):
        out = np.zeros(k11f.size)
        out[pick] = _pair_sum_terms(ia[pick], ib[pick], rho[pick], coef[j], kp)
        out[diag] = m2[j, ia[diag]]
        values.append(out.reshape(shape))
    return values, settled.reshape(shape), [s.reshape(shape) for s in scale2]
