"""Infinite-width kernels: the NNGP kernel ``K`` and the NTK ``Theta`` (docs/theory.md C1).

An architecture maps the kernel of its input to the kernel of its output,
layer by layer. The state that flows through the layers is a list of *pairs*
of points ``(z_a, z_b)`` with their ``K`` and ``Theta`` values: every
transform of C1 is elementwise given the two variances ``K(z_a, z_a)`` and
``K(z_b, z_b)``, so one elementwise code path serves the symmetric kernel
(upper triangle only: half the work), the cross kernel and both precisions.

The variances are the values of the self pairs ``(z, z)``, computed by the
same formulas (in float64 a first pass over the self pairs records them per
layer, :class:`DiagonalTape`, and the pair list then runs in cache-sized
chunks). On a self pair the gap below is exactly 0, so the angle of the
arc-cosine kernels is exactly 0: the diagonal, which sets the predictive
variances, keeps full precision. Rows shared by ``x1`` and ``x2`` are the
same point, so the same holds off the joint diagonal.

Each pair also carries its two *Cauchy-Schwarz gaps*

    lo = sqrt(k11 k22) - k12 >= 0,     hi = sqrt(k11 k22) + k12 >= 0,

(``lo hi = det = k11 k22 - k12^2``), computed from the inputs without
cancellation and mapped by every layer with cancellation-free formulas.
Computing ``det`` as ``k11 k22 - k12^2`` instead has an absolute error of
``eps k11 k22``, so for a pair that is *nearly* (not exactly) collinear or
antipodal, e.g. any two inputs after a few ``abs`` or ``sign`` layers, whose
correlations are driven towards 1, the angle ``~ sqrt(det)`` would carry
``sqrt(eps) ~ 1e-8`` errors; with the gaps it is correct to ``O(eps)``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from .errors import DegenerateInputError, RangeError
from .precision import Backend, backend, to_public
from .validation import check_inputs, check_memory, check_squared_norms


@dataclass(frozen=True)
class Kernel:
    """NNGP kernel ``nngp = K(x1, x2)`` and NTK ``ntk = Theta(x1, x2)``.

    float64 ndarrays of shape ``(n1, n2)``, or ``mpmath.matrix`` when computed
    with ``dps=``.
    """

    nngp: Any
    ntk: Any

    @property
    def high_precision(self) -> bool:
        return isinstance(self.nngp, mpmath.matrix)


class DiagonalTape:
    """The self-pair values ``K(z, z)`` entering each layer, recorded by a pass
    over the self pairs alone and replayed to the chunks of the pair list.

    Every transform is elementwise given these variances, so the pair list can
    be processed in cache-sized chunks (all temporaries stay in cache) as long
    as each chunk sees, at each layer, the variances of the whole layer.
    """

    def __init__(self):
        self.values: list = []
        self.recording = True
        self.cursor = 0

    def replay(self) -> "DiagonalTape":
        """A fresh reader of the recorded values (one per chunk, so chunks can
        run in parallel threads)."""
        reader = DiagonalTape()
        reader.values, reader.recording = self.values, False
        return reader

    def take(self, current):
        if self.recording:
            self.values.append(current())
            return self.values[-1]
        self.cursor += 1
        return self.values[self.cursor - 1]


@dataclass
class PairState:
    """``K`` and ``Theta`` on a list of point pairs ``(a[p], b[p])``, with the
    Cauchy-Schwarz gaps ``lo = sqrt(K_aa K_bb) - K_ab`` and
    ``hi = sqrt(K_aa K_bb) + K_ab`` of ``K`` (see the module docstring).

    ``self_pos[z]`` is the position of the pair ``(z, z)``; with a replaying
    ``tape`` the list is a chunk that need not hold the self pairs, and their
    values come from the tape.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    a: np.ndarray
    b: np.ndarray
    self_pos: np.ndarray | None
    lo: Any = None
    hi: Any = None
    tape: DiagonalTape | None = None

    def diagonal(self):
        """``K(z, z)`` per point (``n`` values): every transform reads the
        variances through here (and in the same order in every pass)."""
        if self.tape is None:
            return self.nngp[self.self_pos]
        return self.tape.take(lambda: self.nngp[self.self_pos])

    @property
    def checking(self) -> bool:
        """Whether this pass validates the variances (the replayed chunks
        were validated by the recording pass)."""
        return self.tape is None or self.tape.recording

    def variances(self):
        """``(K(z_a, z_a), K(z_b, z_b))`` per pair."""
        v = self.diagonal()
        return v[self.a], v[self.b]

    def roots(self, bk):
        """``sqrt(K(z, z))`` per point (``n`` values, not per pair)."""
        return bk.sqrt(self.diagonal())

    def replace(self, nngp, ntk, lo, hi) -> "PairState":
        return PairState(nngp, ntk, self.a, self.b, self.self_pos, lo, hi, self.tape)


def gaps_from_values(state: PairState, bk) -> tuple:
    """``(lo, hi)`` recomputed from ``nngp`` directly: exactly 0 on self pairs,
    absolute error ``eps K`` elsewhere. Used only after smooth activations
    (erf, sin, cos, expressions), whose dual maps never take ``sqrt(det)``;
    a kinked activation right after one sees ``sqrt(eps)`` angle errors on
    nearly collinear pairs."""
    v = state.diagonal()
    # sqrt(v_a v_b), not sqrt(v_a) sqrt(v_b): sqrt(v^2) rounds back to v exactly, so a
    # self pair and a pair of duplicate inputs get lo = 0 exactly
    s = bk.sqrt(np.take(v, state.a) * np.take(v, state.b))
    return bk.maximum0(s - state.nngp), bk.maximum0(s + state.nngp)


def affine_kernel(bk, state: PairState, sw, sb) -> tuple:
    """``sw^2 K + sb^2`` and its gaps: :func:`add_kernels` with a constant
    second kernel, written out to make few passes over memory (float64 is
    memory-bound here):
    ``lo' = sw^2 lo + c``, ``hi' = sw^2 hi + 2 sb^2 + c``,
    ``c = sb^2 (rho_a - rho_b)^2 / (nu_a nu_b + rho_a rho_b + sb^2)`` with
    ``rho = sw sqrt(K(z, z))`` and ``nu = sqrt(rho^2 + sb^2)``."""
    sw2, sb2 = sw * sw, sb * sb
    nngp = state.nngp * sw2
    nngp += sb2
    lo, hi = state.lo * sw2, state.hi * sw2
    if sb2 == 0:
        return nngp, lo, hi
    rho = state.roots(bk) * sw
    nu = bk.sqrt(rho * rho + sb2)
    den = np.take(nu, state.a)
    den *= np.take(nu, state.b)
    ra, rb = np.take(rho, state.a), np.take(rho, state.b)
    c = ra - rb
    c *= sb
    c *= c
    ra *= rb
    den += ra
    den += sb2
    c /= den
    lo += c
    hi += c
    hi += 2 * sb2
    return nngp, lo, hi


def add_kernels(bk, a: np.ndarray, b: np.ndarray, first: tuple, second: tuple) -> tuple:
    """The sum of two kernels on the pairs ``(a, b)``, with its gaps, without
    cancellation.

    ``first``/``second`` are ``(k12, lo, hi, roots)`` with ``roots`` the
    per-point ``sqrt(K(z, z))``; a constant kernel ``c`` (a bias) is
    ``(c, 0, 2 c, sqrt(c))`` with scalars. With ``s = sqrt(k11 k22)`` the sum's
    ``s`` exceeds ``s_1 + s_2`` by
    ``c = (r1_a r2_b - r1_b r2_a)^2 / (s_sum + s_1 + s_2) >= 0`` (Cauchy-Schwarz),
    so ``lo = lo_1 + lo_2 + c`` and ``hi = hi_1 + hi_2 + c``: sums of
    non-negative terms. Returns ``(k12, lo, hi, roots)`` of the sum.
    """
    k1, lo1, hi1, r1 = first
    k2, lo2, hi2, r2 = second
    if np.ndim(r2) == 0 and r2 == 0:  # adding the zero kernel (sigma_b = 0)
        return k1 + k2, lo1, hi1, r1
    rn = bk.sqrt(r1 * r1 + r2 * r2)
    r1a, r1b = np.take(r1, a), np.take(r1, b)
    if np.ndim(r2) == 0:  # a constant kernel: the same root at every point
        diff, s2 = (r1a - r1b) * r2, r2 * r2
    else:
        r2a, r2b = np.take(r2, a), np.take(r2, b)
        diff, s2 = r1a * r2b - r1b * r2a, r2a * r2b
    den = np.take(rn, a) * np.take(rn, b)
    den += r1a * r1b
    den += s2
    c = diff * diff
    c /= den
    lo = lo1 + c
    hi = hi1 + c
    if not (np.ndim(lo2) == 0 and lo2 == 0):
        lo += lo2
    hi += hi2
    return k1 + k2, lo, hi, rn


def validate_inputs(x: Any, name: str = "x", dim: int | None = None) -> np.ndarray:
    """A finite float64 array of shape ``(n, d)`` with ``n, d >= 1``
    (:func:`ntk_equiv.validation.check_inputs`; a 1-D array is refused as ambiguous)."""
    return check_inputs(x, name, ndim=2, dim=dim)


@dataclass
class InputPairs:
    """The raw input on the pair list: ``K = <z_a, z_b> / d``, ``Theta = 0``
    (the convention of neural-tangents' ``stax``: a Dense layer then gives
    ``sigma_w^2 <x, x'> / d + sigma_b^2``), handed out as :class:`PairState`
    chunks (so that the gaps, too, are computed chunk by chunk in cache)."""

    z: np.ndarray  # the points, in the backend's number type
    roots: np.ndarray  # |z|
    dots: np.ndarray  # <z_a, z_b> per pair
    a: np.ndarray
    b: np.ndarray
    self_pos: np.ndarray

    def __len__(self) -> int:
        return len(self.dots)

    def state(self, bk, index, tape: DiagonalTape, self_pairs: bool = False) -> PairState:
        a, b, dots = self.a[index], self.b[index], self.dots[index]
        lo, hi = _input_gaps(bk, self.z, self.roots, a, b, dots)
        d = self.z.shape[1]
        nngp = dots / d
        lo /= d
        hi /= d
        pos = np.arange(len(a)) if self_pairs else None
        return PairState(nngp, nngp * 0, a, b, pos, lo, hi, tape)


def check_distinct(x: np.ndarray, name: str, why: str) -> None:
    """Raise :class:`DegenerateInputError` if ``x`` has duplicate rows: they make
    the train kernel exactly singular, which ``why`` says is not allowed."""
    _, first, counts = np.unique(x, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        i = int(first[np.argmax(counts > 1)])
        raise DegenerateInputError(
            f"{name} has duplicate rows (e.g. row {i}): {why} is singular; remove duplicates or use ridge/noise > 0"
        )


def input_state(x1: np.ndarray, x2: np.ndarray | None, bk: Backend):
    """The :class:`InputPairs` of ``(x1, x2)`` (``x2=None``: the upper triangle
    of ``x1`` with itself), plus the layout to scatter pair values back to a
    matrix.

    The dot products are taken in the backend's precision (the float64 inputs
    are exact mpf numbers, so the high-precision path sees the exact Gram
    matrix, not its float64 rounding).
    """
    if x2 is None:
        n = x1.shape[0]
        a, b = np.triu_indices(n)
        upper = np.triu(np.ones((n, n), dtype=bool))  # boolean-mask gathers/scatters: 5x faster than (a, b)
        zf = x1
        with bk.context():
            values = _gram(bk, x1, x1)[upper]
        self_pos = _triu_diag_positions(n)
        layout = ("sym", n, upper)
    else:
        zf, inverse = np.unique(np.vstack([x1, x2]), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        i1, i2 = inverse[: len(x1)], inverse[len(x1):]
        nz = len(zf)
        a = np.concatenate([np.repeat(i1, len(i2)), np.arange(nz)])
        b = np.concatenate([np.tile(i2, len(i1)), np.arange(nz)])
        self_pos = np.arange(nz) + len(i1) * len(i2)
        with bk.context():
            norms = np.diagonal(_gram(bk, zf, zf)).copy() if bk.name != "float64" else np.einsum("ij,ij->i", zf, zf)
            cross = _gram(bk, zf[i1], zf[i2]).ravel()
            same = a[: cross.size] == b[: cross.size]
            cross[same] = norms[a[: cross.size][same]]  # the same point: the same number
            values = np.concatenate([cross, norms])
        layout = ("cross", (len(i1), len(i2)), None, None)
    z = bk.asarray(zf)
    with bk.context():
        roots = bk.sqrt(np.sum(z * z, axis=1))
    return InputPairs(z, roots, values, a, b, self_pos), layout


def _gram(bk, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``x1 x2^T``: BLAS in float64; in high precision the exact products of the
    float64 inputs (integer arithmetic on their mantissas, one rounding at the
    end), ~100x faster than mpf arithmetic and exact."""
    if bk.name == "float64":
        return x1 @ x2.T
    emin = int(min(np.frexp(x1)[1].min(), np.frexp(x2)[1].min())) - 53

    def ints(x):
        m, e = np.frexp(x)
        return np.array([int(mi * 2.0**53) << int(ei - 53 - emin) for mi, ei in zip(m.ravel(), e.ravel())],
                        dtype=object).reshape(x.shape)

    g = ints(x1) @ ints(x2).T
    ctx = bk.ctx
    return np.vectorize(lambda v: ctx.ldexp(ctx.mpf(v), 2 * emin), otypes=[object])(g)


#: Pairs whose gap is below this fraction of ``|z_a| |z_b|`` get it from the
#: unit vectors (error ``eps |u - v|``) instead of ``|z_a||z_b| - <z_a, z_b>``
#: (error ``eps``): the relative error of the gap stays below ``16 d eps``.
_GAP_REFINE = 1.0 / 16
_CHUNK = 1 << 15


def _input_gaps(bk, z, r, a, b, dots):
    """``lo = |z_a||z_b| - <z_a, z_b>`` and ``hi = |z_a||z_b| + <z_a, z_b>``
    (``r = |z|``).

    Where a gap is small it is a cancellation, so it is recomputed as
    ``|z_a||z_b| |u_a -+ u_b|^2 / 2`` from the unit vectors ``u = z / |z|``;
    self pairs get exactly 0.
    """
    s = np.take(r, a) * np.take(r, b)
    lo, hi = s - dots, s + dots
    near = np.flatnonzero(np.asarray(bk.abs(dots) > (1 - _GAP_REFINE) * s, dtype=bool))
    if near.size:
        u = z / np.where(np.asarray(r > 0, dtype=bool), r, r * 0 + 1)[:, None]
        for start in range(0, near.size, _CHUNK):
            idx = near[start:start + _CHUNK]
            ua, ub = u[a[idx]], u[b[idx]]
            dm, dp = ua - ub, ua + ub
            half = s[idx] / 2
            lo[idx] = half * np.sum(dm * dm, axis=1)
            hi[idx] = half * np.sum(dp * dp, axis=1)
    return lo, hi  # >= 0: sums of squares where refined, > s / 16 elsewhere


def _triu_diag_positions(n: int) -> np.ndarray:
    # row i of the upper triangle (with diagonal) starts at i*n - i*(i-1)/2
    i = np.arange(n)
    return i * n - (i * (i - 1)) // 2


def to_matrix(values: np.ndarray, layout) -> np.ndarray:
    kind = layout[0]
    if kind == "sym":
        _, n, upper = layout
        out = np.empty((n, n), dtype=values.dtype)
        out[upper] = values
        out.T[upper] = values  # row-major order of the transpose's upper triangle = the pair order
        return out
    n1, n2 = layout[1]
    return values[: n1 * n2].reshape(n1, n2)


def check_variances(state: PairState, where: str) -> None:
    """Raise on a zero-variance pre-activation (a zero-norm input without a
    bias): the dual maps are then undefined (0/0 in the angle)."""
    if not state.checking:
        return
    v = state.nngp[state.self_pos]  # the recording pass holds every self pair
    if v.dtype != object and not np.all(np.isfinite(v)):
        raise RangeError(
            f"the variance entering {where} overflows float64 (max {np.nanmax(np.where(np.isfinite(v), v, 0)):.3g} "
            "before it): the inputs' norms, sigma_w/sigma_b/alpha or the depth make the kernel too large; rescale the "
            "inputs, lower sigma_w or the depth, or use dps= (mpmath has no overflow)")
    if not np.all(np.asarray(v > 0, dtype=bool)):
        raise DegenerateInputError(
            f"zero variance entering {where}: an input of zero norm with sigma_b = 0 "
            "has no direction; give it a nonzero norm or use sigma_b > 0"
        )


#: Pairs per chunk in float64: ~20 temporaries of this length stay in cache.
CHUNK_PAIRS = 1 << 15
#: Threads for the float64 chunks (each chunk is independent; results do not
#: depend on the number of threads).
KERNEL_THREADS = max(1, min(4, os.cpu_count() or 1))


def evaluate(layers_fn, x1, x2=None, dps: int | None = None, dim: int | None = None) -> Kernel:
    """Run a kernel transform ``layers_fn(state, bk) -> state`` on inputs.

    A first pass over the self pairs records the variances entering each
    layer (:class:`DiagonalTape`); the pair list then goes through the layers
    in chunks (float64) or at once (mpmath, where the cost is arithmetic, not
    memory traffic).
    """
    x1 = validate_inputs(x1, "x1", dim)
    if x2 is not None:
        x2 = validate_inputs(x2, "x2", x1.shape[1])
    bk = backend(dps)
    if dps is None:  # mpmath has no overflow; float64 squares the inputs
        check_squared_norms(x1, "x1")
        if x2 is not None:
            check_squared_norms(x2, "x2")
    n1, n2 = len(x1), len(x1) if x2 is None else len(x2)
    pairs_count = n1 * (n1 + 1) / 2 if x2 is None else n1 * n2 + n1 + n2
    # pairs: indices a, b (int64), dots, K, Theta (+ the symmetric mask); output: two n1 x n2 matrices
    per_number = 8 if dps is None else 8 * (40 + dps // 4)  # an mpf object is ~100 bytes + its digits
    check_memory(pairs_count * (2 * 8 + 3 * per_number) + n1 * n2 * (2 * per_number + 1),
                 f"the kernel of {n1} x {n2} inputs" + ("" if dps is None else f" at dps={dps}"),
                 "compute it in blocks of rows (arch.kernel(x1[i:j], x2))")
    with bk.context():
        pairs, layout = input_state(x1, x2, bk)
        size = len(pairs)
        if dps is not None or size <= CHUNK_PAIRS:  # one pass over the whole list
            whole = pairs.state(bk, slice(None), None)
            whole.self_pos = pairs.self_pos
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked and named below
                out = layers_fn(whole, bk)
            nngp, ntk = out.nngp, out.ntk
        else:
            tape = DiagonalTape()
            with np.errstate(over="ignore", invalid="ignore"):
                layers_fn(pairs.state(bk, pairs.self_pos, tape, self_pairs=True), bk)
            nngp = np.empty(size, dtype=pairs.dots.dtype)
            ntk = np.empty_like(nngp)

            def run(start: int) -> None:
                sl = slice(start, start + CHUNK_PAIRS)
                with np.errstate(over="ignore", invalid="ignore"):
                    out = layers_fn(pairs.state(bk, sl, tape.replay()), bk)
                nngp[sl], ntk[sl] = out.nngp, out.ntk

            # chunks are independent and numpy's ufuncs release the GIL: use the cores
            with ThreadPoolExecutor(max_workers=KERNEL_THREADS) as pool:
                list(pool.map(run, range(0, size, CHUNK_PAIRS)))
        nngp, ntk = to_matrix(nngp, layout), to_matrix(ntk, layout)
    if dps is None and not (np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))):
        raise RangeError(f"the kernel overflows float64 (largest input entry {float(np.max(np.abs(x1))):.3g}): "
                         "sigma_w/sigma_b/alpha or the depth make it too large; rescale the inputs, lower sigma_w "
                         "or the depth, or use dps= (mpmath has no overflow)")
    return Kernel(to_public(nngp, dps), to_public(ntk, dps))


def scaled_error(k: Any, ref: Any, diag1: Any = None, diag2: Any = None):
    """``max_ij |k_ij - ref_ij| / sqrt(d1_i d2_j)``: the error of a kernel
    relative to the scale of each entry.

    By Cauchy-Schwarz ``|K(x, x')| <= sqrt(K(x, x) K(x', x'))``, so that is
    the natural magnitude of entry ``(x, x')``; an entry much smaller than it
    is the result of a cancellation (e.g. ``sigma_b^2 + sigma_w^2 V`` with
    ``V < 0``), which amplifies rounding by ``scale / |entry|`` in *any*
    algorithm, so plain relative error is the wrong yardstick there. On the
    diagonal this *is* the plain relative error. ``d1``/``d2`` default to the
    diagonal of ``ref`` (square ``ref``). Accepts float arrays and mpmath
    matrices; the result is an mpf when either is high precision.
    """
    def arr(m):
        return np.array(m.tolist(), dtype=object) if isinstance(m, mpmath.matrix) else np.asarray(m)

    k, ref = arr(k), arr(ref)
    d1 = np.diagonal(ref) if diag1 is None else arr(diag1).ravel()
    d2 = d1 if diag2 is None else arr(diag2).ravel()
    if k.dtype == object or ref.dtype == object or d1.dtype == object:
        # a context of its own, with the digits of the most precise entry (the global one is not ours)
        bits = max((getattr(v, "_mpf_", (0, 0, 0, 53))[3] for m in (k, ref, d1, d2) for v in m.ravel()), default=53)
        ctx = mpmath.MPContext()
        ctx.prec = max(53, bits) + 20
        k, ref, d1, d2 = (np.array([[ctx.mpf(v) for v in np.atleast_1d(row)] for row in np.atleast_2d(m)],
                                   dtype=object) for m in (k, ref, d1, d2))
        d1, d2 = d1.ravel(), d2.ravel()
        scale = np.array([[ctx.sqrt(abs(p * q)) for q in d2] for p in d1], dtype=object)
        err = [abs(x - y) / s if s != 0 else abs(x - y) for x, y, s in zip(k.ravel(), ref.ravel(), scale.ravel())]
        return max(err)
    scale = np.sqrt(np.abs(np.outer(d1, d2)))
    diff = np.abs(k - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), diff)
    return float(np.max(err))
