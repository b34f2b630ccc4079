"""Infinite-width kernels: the NNGP kernel ``K`` and the NTK ``Theta`` (docs/theory.md C1).

An architecture maps the kernel of its input to the kernel of its output,
layer by layer. The state that flows through the layers is a list of *pairs*
of points ``(z_a, z_b)`` with their ``K`` and ``Theta`` values: every
transform of C1 is elementwise given the two variances ``K(z_a, z_a)`` and
``K(z_b, z_b)``, so one elementwise code path serves the symmetric kernel
(upper triangle only: half the work), the cross kernel and both precisions.

**Spatial axes.** For inputs with spatial axes (``(N, L, C)`` or
``(N, H, W, C)``, channels last) each pair carries, per entry, either the
*diagonal* over spatial positions (``K(z_a, z_b)[s, s]``, enough for
convolutions followed by ``Flatten``) or the *full* spatial covariance
(``K(z_a, z_b)[s, s']``, needed before pooling, which mixes positions),
stored *pairs last*: shape ``(*S, P)`` or ``(*S, *S, P)``, so that a
convolution's shifted sums are contiguous adds of long rows (the spatial
axes are short). Without spatial axes the entries are scalars, shape ``(P,)``.

**Variances are part of the state.** The first ``n`` pairs of every pair list
are the self pairs ``(z, z)`` of its ``n`` points, in order, and every layer
maps them with the same formula as every other pair. The per-point variances
``K(z, z)[s, s]`` (shape ``(n, *S)``) that a layer needs are therefore read
from the state itself (:meth:`PairState.diagonal`): nothing is recorded or
replayed, and a layer may read them as often as it likes. In float64 a large
kernel is cut into *tiles* (a block of rows times a block of columns of the
kernel matrix) small enough for the cache, each carrying the self pairs of
its own points; tiles are independent, so they run on threads, and a tile
computes exactly (bitwise) what the whole list computes for the same pairs.

On a self pair the gap below is exactly 0, so the angle of the arc-cosine
kernels is exactly 0: the diagonal, which sets the predictive variances,
keeps full precision. Rows shared by ``x1`` and ``x2`` are the same point,
so the same holds off the joint diagonal.

Each pair also carries its two *Cauchy-Schwarz gaps*

    lo = sqrt(k11 k22) - k12 >= 0,     hi = sqrt(k11 k22) + k12 >= 0,

(``lo hi = det = k11 k22 - k12^2``), computed from the inputs without
cancellation and mapped by every layer with cancellation-free formulas.
Computing ``det`` as ``k11 k22 - k12^2`` instead has an absolute error of
``eps k11 k22``, so for a pair that is *nearly* (not exactly) collinear or
antipodal, e.g. any two inputs after a few ``abs`` or ``sign`` layers, whose
correlations are driven towards 1, the angle ``~ sqrt(det)`` would carry
``sqrt(eps) ~ 1e-8`` errors; with the gaps it is correct to ``O(eps)``.
A weighted sum of kernels (a convolution, ``Flatten``, a bias) maps the gaps
by :func:`sum_gaps`.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from .errors import DegenerateInputError, RangeError, ShapeError
from .precision import Backend, backend, is_high_precision, to_public
from .validation import check_inputs, check_memory, check_squared_norms, memory_errors_named


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


def gather(v, a: np.ndarray, b: np.ndarray, spatial: tuple, full: bool, rect: tuple | None = None) -> tuple:
    """Per-point values ``v`` (shape ``(n, *S)``) at the two points of each pair,
    shaped to broadcast against the pairs-last entries ``(*S, P)`` (diagonal)
    or ``(*S, *S, P)`` (full: the first point's positions index the first
    spatial copy, the second point's the second).

    ``rect = (mi, mj)``: the pairs are known to be the ``n = mi + mj`` self
    pairs, then every ``(i, mi + j)``, ``i < mi``, ``j < mj``, row-major (an
    off-diagonal tile); the values are then broadcast into place, ~10x
    faster than indexing, with the same result."""
    if not spatial:
        return _gather_rect(v, rect) if rect is not None else (np.take(v, a), np.take(v, b))
    vt = np.moveaxis(v, 0, -1)  # (*S, n): the points last, like the pairs
    va, vb = _gather_rect(vt, rect) if rect is not None else (np.take(vt, a, axis=-1), np.take(vt, b, axis=-1))
    if full:
        k = len(spatial)
        va = va.reshape(va.shape[:-1] + (1,) * k + va.shape[-1:])
        vb = vb.reshape((1,) * k + vb.shape)
    return va, vb


def _gather_rect(v, rect: tuple) -> tuple:
    """:func:`gather` for an off-diagonal tile, ``v`` with the points on its last axis."""
    mi, mj = rect
    n, head = mi + mj, v.shape[:-1]
    va, vb = np.empty(head + (n + mi * mj,), dtype=v.dtype), np.empty(head + (n + mi * mj,), dtype=v.dtype)
    va[..., :n] = v
    vb[..., :n] = v
    va[..., n:].reshape(head + (mi, mj))[...] = v[..., :mi, None]
    vb[..., n:].reshape(head + (mi, mj))[...] = v[..., None, mi:]
    return va, vb


@dataclass
class PairState:
    """``K`` and ``Theta`` on a list of point pairs ``(a[p], b[p])``, with the
    Cauchy-Schwarz gaps ``lo = sqrt(K_aa K_bb) - K_ab`` and
    ``hi = sqrt(K_aa K_bb) + K_ab`` of ``K`` (see the module docstring).

    Pairs ``0 .. n-1`` are the self pairs ``(z, z)`` of the list's ``n``
    points. The arrays have shape ``(P,)`` (no spatial axes), ``spatial + (P,)``
    (``full=False``: the diagonal over positions) or ``spatial + spatial + (P,)``
    (``full=True``): pairs last (see the module docstring).
    """

    nngp: np.ndarray
    ntk: np.ndarray
    a: np.ndarray
    b: np.ndarray
    n: int
    lo: Any = None
    hi: Any = None
    spatial: tuple = ()
    full: bool = False
    #: An activation whose dual maps are not applied yet (an ``ELEMENTWISE``
    #: signal, :mod:`ntk_equiv.signals`): the values are those of its Gaussian
    #: pre-activation, so a following activation or LayerNorm can fuse with it.
    pending: Any = None
    #: After ``Flatten``: the entries are per-position kernels ``K[s, s]`` of the
    #: flattened features; the next Dense averages them (:meth:`collapsed`).
    flattened: bool = False
    #: ``(mi, mj)`` when the pairs form an off-diagonal tile (see :func:`gather`):
    #: lets :meth:`gather` broadcast instead of index. ``None``: any pair list.
    rect: tuple | None = None
    #: The absolute error of the cross pairs' gaps relative to ``sqrt(K_aa K_bb)``:
    #: 0 while every map gave them without cancellation; a few ``eps`` once they
    #: were recomputed from the values (:func:`gaps_from_values`). A kinked dual
    #: map reads ``sqrt(lo hi)``, so a gap at that noise level gives it a
    #: ``sqrt(eps)`` error: :func:`check_distinguishable` refuses it.
    gap_noise: float = 0.0

    def diagonal(self):
        """``K(z, z)[s, s]`` per point, shape ``(n, *S)``: the variances every
        transform reads (the values of the self pairs, mapped like any pair)."""
        d = self.nngp[..., : self.n]
        if self.full and self.spatial:
            m = int(np.prod(self.spatial))
            d = np.diagonal(d.reshape(m, m, self.n), axis1=0, axis2=1).reshape((self.n,) + self.spatial)
        elif self.spatial:
            d = np.moveaxis(d, -1, 0)
        return d

    def gather(self, v) -> tuple:
        """Per-point ``v`` at the two points of every pair (see :func:`gather`)."""
        return gather(v, self.a, self.b, self.spatial, self.full, self.rect)

    def variances(self):
        """``(K(z_a, z_a), K(z_b, z_b))`` per entry (broadcastable to the entries)."""
        return self.gather(self.diagonal())

    def roots(self, bk):
        """``sqrt(K(z, z))`` per point (``(n, *S)`` values, not per pair)."""
        return bk.sqrt(self.diagonal())

    def replace(self, nngp, ntk, lo, hi, spatial: tuple | None = None, full: bool | None = None) -> "PairState":
        return PairState(nngp, ntk, self.a, self.b, self.n, lo, hi,
                         self.spatial if spatial is None else spatial, self.full if full is None else full,
                         flattened=self.flattened and (spatial is None or bool(spatial)), rect=self.rect,
                         gap_noise=self.gap_noise)

    def collapsed(self, bk) -> "PairState":
        """After ``Flatten``: the kernel of the flattened features,
        ``mean_s K[s, s]`` (likewise ``Theta``), the fan-in average of the next
        Dense layer; a sum of ``|S|`` kernels, so its gaps are mapped by
        :func:`sum_gaps` (component roots ``sqrt(K_zz[s, s] / |S|)``)."""
        if not self.flattened:
            return self
        m, p = int(np.prod(self.spatial)), len(self.a)

        def mean(v):  # over the positions, contiguous per pair: the summation order of pairs-first entries
            return np.ascontiguousarray(v.reshape(m, p).T).sum(axis=1) / m

        nngp, ntk, lo, hi = (mean(v) for v in (self.nngp, self.ntk, self.lo, self.hi))
        roots = (self.roots(bk) / bk.sqrt(bk.scalar(m))).reshape(-1, m)

        def gather_fn(v):
            return gather(v, self.a, self.b, (), False, self.rect)

        lo, hi, _ = sum_gaps(bk, gather_fn, [roots[:, j] for j in range(m)], lo, hi)
        return self.replace(nngp, ntk, lo, hi, spatial=(), full=False)

    def scaled(self, c) -> "PairState":
        """The kernels of ``c z``: ``K' = c^2 K``, ``Theta' = c^2 Theta``, and the
        gaps ``c^2 lo``, ``c^2 hi`` (exact: no cancellation)."""
        c2 = c * c
        return self.replace(self.nngp * c2, self.ntk * c2, self.lo * c2, self.hi * c2)

    # ---- the operations layers use: each maps K, Theta and the gaps together, so that a
    # layer never reads or writes lo/hi (tests/test_state_arithmetic.py) ----------------- #
    def affine(self, bk, sw, sb) -> "PairState":
        """The kernels of ``sw z + sb b`` (``b`` an independent standard
        Gaussian, the bias): ``K' = sw^2 K + sb^2``, ``Theta' = sw^2 Theta``,
        with the gaps of ``K'`` by :func:`affine_kernel` (no cancellation). A
        trained layer adds its parameters' share to ``Theta'`` itself (Dense:
        ``Theta' + K'``)."""
        nngp, lo, hi = affine_kernel(bk, self, sw, sb)
        return self.replace(nngp, self.ntk * (sw * sw), lo, hi)

    def added(self, bk, other: "PairState", c=1) -> "PairState":
        """The kernels of ``u + c v``, ``u`` this state's features and ``v``
        ``other``'s, independent (a residual sum: the block ends with
        zero-mean weights): ``K' = K_u + c^2 K_v``, ``Theta' = Theta_u + c^2 Theta_v``,
        on the same pairs, with the gaps by :func:`add_kernels` (no cancellation)."""
        if other.spatial != self.spatial:
            raise ShapeError(f"a sum of kernels needs the same spatial shape: {other.spatial} and {self.spatial}")
        c2 = c * c
        nngp, lo, hi, _ = add_kernels(bk, other.gather, (self.nngp, self.lo, self.hi, self.roots(bk)),
                                      (c2 * other.nngp, c2 * other.lo, c2 * other.hi, c * other.roots(bk)))
        return self.replace(nngp, self.ntk + c2 * other.ntk, lo, hi)

    def summed(self, bk, linear, components: list, *, scale=1, bias=0, spatial: tuple | None = None,
               full: bool | None = None, at=None) -> "PairState":
        """The kernels of a weighted sum of features plus a bias (a convolution:
        a sum over the filter's offsets): ``K' = scale linear(K) + bias^2``,
        ``Theta' = scale linear(Theta)``, and their gaps, where ``linear`` is a
        sum of kernels (each term the kernel of one shifted copy of the features,
        e.g. a window sum over positions).

        ``linear(parts)`` maps the tuple ``(K, Theta, lo, hi)`` of per-pair
        arrays to the same tuple with the output entries (pairs last); it is
        applied to the gaps too, because the gaps of a sum of kernels are the
        sums of their gaps plus a non-negative correction (:func:`sum_gaps`).
        ``components[i]`` is ``sqrt(scale K_i(z, z))`` per point of the ``i``-th
        term, shaped ``(n, *spatial)`` (the output's positions); the bias
        (``bias != 0``) is one more, constant, component. ``spatial``/``full``:
        the output's (default: unchanged).

        ``at(arr, idx)`` (optional): ``linear`` of one per-pair array at the
        output entries ``idx`` only (index arrays, as from ``np.nonzero``).
        Given it, float64 applies ``linear`` to ``(K, Theta)`` only (and scales the
        new arrays it returns in place) and maps the
        gaps exactly only on the entries near correlation +-1, where they are
        needed (:func:`refined_sum_gaps`); the same gaps to the stated bound."""
        if at is not None and bk.vectorised:
            return self._summed_refined(bk, linear, at, components, scale, bias, spatial, full)
        nngp, ntk, lo, hi = linear((self.nngp, self.ntk, self.lo, self.hi))
        b2 = bias * bias
        nngp = nngp * scale
        nngp += b2
        ntk = ntk * scale
        lo = lo * scale
        hi = hi * scale
        hi += 2 * b2
        out = self.replace(nngp, ntk, None, None, spatial=spatial, full=full)
        comps = list(components) + ([bias] if b2 != 0 else [])
        out.lo, out.hi, _ = sum_gaps(bk, out.gather, comps, lo, hi)
        return out

    def _summed_refined(self, bk, linear, at, components, scale, bias, spatial, full) -> "PairState":
        nngp, ntk = linear((self.nngp, self.ntk))
        b2 = bias * bias
        for blk in _blocks(nngp.shape):  # in place, block by block (in cache): the same operations
            part = nngp[blk]
            part *= scale
            part += b2
            ntk[blk] *= scale
        out = self.replace(nngp, ntk, None, None, spatial=spatial, full=full)
        comps = list(components) + ([bias] if b2 != 0 else [])
        out.lo, out.hi = refined_sum_gaps(bk, out, comps, lambda idx: (at(self.lo, idx) * scale,
                                                                      at(self.hi, idx) * scale + 2 * b2))
        return out

    def gather_at(self, v, idx: tuple) -> tuple:
        """Per-point ``v`` (shape ``(n, *S)``) at the two points of the entries
        ``idx`` (index arrays over the entries' axes, pairs last)."""
        p, k = idx[-1], len(self.spatial)
        pa, pb = self.a[p], self.b[p]
        if not k:
            return v[pa], v[pb]
        pos_a = idx[:k]
        pos_b = idx[k:2 * k] if self.full else pos_a
        return v[(pa,) + tuple(pos_a)], v[(pb,) + tuple(pos_b)]

    def selected(self, pick, *, spatial: tuple | None = None, full: bool | None = None) -> "PairState":
        """The kernels at selected entries (``pick`` maps a per-pair array to
        another of entries taken from it, no sums: a diagonal, a reshape), the
        gaps picked alike (exact)."""
        return self.replace(*(pick(v) for v in (self.nngp, self.ntk, self.lo, self.hi)), spatial=spatial, full=full)

    def pooled(self, bk, linear, *, spatial: tuple | None = None, full: bool | None = None) -> "PairState":
        """The kernels of a linear combination of positions (average pooling):
        ``(K', Theta') = linear((K, Theta))``, which mixes positions, so it is not
        a sum of kernels and the gaps are recomputed from the values
        (:func:`gaps_from_values`)."""
        nngp, ntk = linear((self.nngp, self.ntk))
        return self.with_values(bk, nngp, ntk, spatial=spatial, full=full)

    def normalised_by(self, den) -> "PairState":
        """The kernels of ``z_a / c_a`` per point (LayerNorm), ``den = c_a c_b``
        per entry (positive): ``K / den``, ``Theta / den`` and the gaps ``/ den``
        (exact: ``sqrt(K_aa K_bb) -+ K_ab`` scale by ``1 / (c_a c_b)``)."""
        return self.replace(self.nngp / den, self.ntk / den, self.lo / den, self.hi / den)

    def with_values(self, bk, nngp, ntk, lo=None, hi=None, *, spatial: tuple | None = None,
                    full: bool | None = None) -> "PairState":
        """The same pairs with new values (a dual map's output, a fused layer):
        the gaps ``lo, hi`` of ``nngp`` where the map gives them without
        cancellation (the closed forms of :mod:`ntk_equiv.activations`), else
        recomputed from the values (:func:`gaps_from_values`)."""
        out = self.replace(nngp, ntk, lo, hi, spatial=spatial, full=full)
        if lo is None or hi is None:
            out.lo, out.hi = gaps_from_values(out, bk)
            out.gap_noise = max(self.gap_noise, GAP_NOISE_ULPS * float(bk.eps))
        return out

    def with_pending(self, phi) -> "PairState":
        """The same values with ``phi`` pending (the activation applied later, or fused)."""
        return dataclasses.replace(self, pending=phi)

    def materialised(self, bk) -> "PairState":
        """The pending activation applied: ``K' = E[phi(u) phi(v)]``,
        ``Theta' = E[phi'(u) phi'(v)] Theta`` (docs/theory.md C1), with the
        gaps of ``K'`` from the closed form or recomputed from the values."""
        phi = self.pending
        if phi is None:
            return self
        check_variances(self, f"activation {phi.name!r}")
        if phi.kinks:
            check_distinguishable(self, phi, bk)
        # a spatial tile's arrays outgrow the cache (a flat tile's fit it: CHUNK_PAIRS)
        if bk.vectorised and self.spatial and phi.closed_form is not None and not phi.uses_variances:
            v, ntk, lo, hi = _dual_in_blocks(phi, bk, self.nngp, self.ntk, self.lo, self.hi)
            return self.with_values(bk, v, ntk, lo, hi)
        k11, k22 = self.variances() if phi.uses_variances else (None, None)
        v, vd, lo, hi = phi.dual_gaps(bk, k11, self.nngp, k22, self.lo, self.hi)
        return self.with_values(bk, v, vd * self.ntk, lo, hi)


#: Entries per block of an elementwise map in float64 (:func:`_dual_in_blocks`):
#: its ~16 temporaries then stay in a core's L2 cache instead of streaming
#: the tile's arrays through memory once per operation.
BLOCK_ENTRIES = 1 << 14


def _blocks(shape: tuple) -> list[tuple]:
    """Index tuples (leading slices) cutting an array of ``shape`` into
    consecutive blocks of about :data:`BLOCK_ENTRIES` entries."""
    k, inner = len(shape), 1
    while k and inner * shape[k - 1] <= BLOCK_ENTRIES:
        k -= 1
        inner *= shape[k]
    if k == 0:
        return [()]
    length = shape[k - 1]
    parts = -(-length // max(1, BLOCK_ENTRIES // inner))
    run = -(-length // parts)  # blocks of equal size (8 rows in 2 runs of 4, not 7 and 1)
    return [tuple(slice(i, i + 1) for i in head) + (slice(j, j + run),)
            for head in np.ndindex(*shape[:k - 1]) for j in range(0, shape[k - 1], run)]


def add_in_blocks(acc, x) -> None:
    """``acc += x`` (same shapes), block by block for float64 arrays (in cache:
    the same additions, so the same bits); any other arrays at once."""
    if not isinstance(acc, np.ndarray) or acc.dtype != float or np.shape(x) != acc.shape:
        acc += x
        return
    for blk in _blocks(acc.shape):
        acc[blk] += x[blk]


def _part(x: np.ndarray, blk: tuple, shape: tuple) -> np.ndarray:
    """The block ``blk`` (of an array of ``shape``) of ``x``, which broadcasts
    to ``shape``: axes where ``x`` has length 1 are kept whole."""
    lead = len(shape) - np.ndim(x)
    return x[tuple(b if x.shape[d - lead] == shape[d] else slice(None)
                   for d, b in enumerate(blk) if d >= lead)]


def _at(x: np.ndarray, idx: tuple, shape: tuple) -> np.ndarray:
    """``np.broadcast_to(x, shape)[idx]`` without broadcasting ``x``."""
    return x[tuple(i if x.shape[d] == shape[d] else 0 for d, i in enumerate(idx))]


def _dual_in_blocks(phi, bk, k12, ntk, lo, hi) -> tuple:
    """``(V, Vdot Theta, lo', hi')`` of a closed-form dual map that reads only
    ``k12`` and the gaps (the ReLU family), block by block: the map is
    elementwise, so the bits are those of one call on the whole arrays."""
    outs = [np.empty(k12.shape) for _ in range(4)]
    for blk in _blocks(k12.shape):
        v, vd, nlo, nhi = phi.dual_gaps(bk, None, k12[blk], None, lo[blk], hi[blk])
        outs[0][blk] = v
        np.multiply(vd, ntk[blk], out=outs[1][blk])
        outs[2][blk] = nlo
        outs[3][blk] = nhi
    return tuple(outs)


#: The error of a gap recomputed from the values, in ulps of ``sqrt(K_aa K_bb)``
#: (a product, a square root and a subtraction, each rounded), and the margin
#: by which a kinked map's gaps must exceed it.
GAP_NOISE_ULPS = 8.0
GAP_MARGIN = 64.0


def check_distinguishable(state: PairState, phi, bk) -> None:
    """Raise :class:`DegenerateInputError` when a kinked activation ``phi``
    would read a cross pair whose gap ``lo`` or ``hi`` is nonzero but within
    its rounding noise (``GAP_MARGIN * state.gap_noise * sqrt(K_aa K_bb)``); a
    gap of exactly 0 (a point given twice) is exact.

    Such a pair is collinear (or antipodal) to working precision: an earlier
    map sent two distinct points to (nearly) one point (a composite that is
    constant almost everywhere, such as ``sign(abs(x))``), and its gaps, from
    the values, are rounding noise. The kinked map's ``sqrt(lo hi)`` would turn
    that noise into a ``sqrt(eps)`` error: a number the backend cannot stand
    behind, so it is refused instead."""
    if not state.gap_noise:
        return
    k11, k22 = state.variances()
    bound = GAP_MARGIN * state.gap_noise * bk.sqrt(k11 * k22)
    cross = (Ellipsis, slice(state.n, None))
    lo, hi, bound = state.lo[cross], state.hi[cross], bound[cross]
    # an exact 0 is exact collinearity (a point given twice: the gaps of identical values are 0 exactly)
    low = np.asarray(((0 < lo) & (lo < bound)) | ((0 < hi) & (hi < bound)), dtype=bool)
    if np.any(low):
        raise DegenerateInputError(
            f"activation {phi.name!r} (kinked) follows a map that sent distinct inputs to the same point to working "
            f"precision ({int(np.sum(low))} pair(s) collinear or antipodal within {GAP_MARGIN * state.gap_noise:.1e} of "
            "their scale, e.g. after an activation that is constant almost everywhere): its kernel would carry an "
            "error of the square root of the working precision; remove the collapsing layer, or insert a Dense "
            "with sigma_b > 0 that does not make the inputs identical")


def gaps_from_values(state: PairState, bk) -> tuple:
    """``(lo, hi)`` recomputed from ``nngp`` directly: exactly 0 on self pairs,
    absolute error ``eps K`` elsewhere. Used after smooth activations (erf, sin,
    cos, expressions), whose dual maps never take ``sqrt(det)``, and after
    pooling, which mixes positions (no sum of kernels to map the gaps through);
    a kinked activation right after one sees ``sqrt(eps)`` angle errors on
    nearly collinear pairs."""
    va, vb = state.variances()
    # sqrt(v_a v_b), not sqrt(v_a) sqrt(v_b): sqrt(v^2) rounds back to v exactly, so a
    # self pair and a pair of duplicate inputs get lo = 0 exactly
    s = bk.sqrt(va * vb)
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
    na, nb = state.gather(nu)
    den = na * nb
    ra, rb = state.gather(rho)
    c = ra - rb
    c *= sb
    c *= c
    if state.spatial:
        den = den + ra * rb  # broadcasts up to the entries' shape
    else:
        ra *= rb
        den += ra
    den += sb2
    c /= den
    lo += c
    hi += c
    hi += 2 * sb2
    return nngp, lo, hi


def add_kernels(bk, gather_fn, first: tuple, second: tuple) -> tuple:
    """The sum of two kernels on a pair list, with its gaps, without
    cancellation.

    ``first``/``second`` are ``(k12, lo, hi, roots)`` with ``roots`` the
    per-point ``sqrt(K(z, z))``; ``gather_fn`` takes per-point values to the
    pairs (:meth:`PairState.gather`). With ``s = sqrt(k11 k22)`` the sum's
    ``s`` exceeds ``s_1 + s_2`` by
    ``c = (r1_a r2_b - r1_b r2_a)^2 / (s_sum + s_1 + s_2) >= 0`` (Cauchy-Schwarz),
    so ``lo = lo_1 + lo_2 + c`` and ``hi = hi_1 + hi_2 + c``: sums of
    non-negative terms. Returns ``(k12, lo, hi, roots)`` of the sum.
    """
    k1, lo1, hi1, r1 = first
    k2, lo2, hi2, r2 = second
    rn = bk.sqrt(r1 * r1 + r2 * r2)
    r1a, r1b = gather_fn(r1)
    r2a, r2b = gather_fn(r2)
    diff, s2 = r1a * r2b - r1b * r2a, r2a * r2b
    na, nb = gather_fn(rn)
    den = na * nb
    den = den + r1a * r1b
    den += s2
    c = diff * diff
    c = c / den
    lo = lo1 + c
    hi = hi1 + c
    lo += lo2
    hi += hi2
    return k1 + k2, lo, hi, rn


def sum_gaps(bk, gather_fn, components: list, lo, hi):
    """The gaps of a weighted sum of kernels ``K = sum_i K_i`` (the weights
    folded into the ``K_i``), e.g. a convolution, ``Flatten`` or a bias.

    ``components[i]`` is ``sqrt(K_i(z, z))`` per point (array, or a scalar for a
    constant kernel), ``lo``/``hi`` the sums of the components' gaps. With
    ``R_z = (sqrt(K_i(z, z)))_i`` the sum's ``sqrt(K_aa K_bb) = |R_a| |R_b|``
    exceeds ``sum_i sqrt(K_i,aa K_i,bb) = R_a . R_b`` by
    ``c = |R_a| |R_b| |U_a - U_b|^2 / 2 >= 0`` with ``U = R / |R|``, so
    ``lo' = lo + c`` and ``hi' = hi + c``, sums of non-negative terms; ``c`` is
    computed from the unit vectors (error ``eps |U_a - U_b|`` relative to
    ``|R_a||R_b|``), not as the cancelling ``|R_a||R_b| - R_a . R_b``, so the
    next layer's angle stays correct to ``O(eps)`` near collinear pairs, and a
    self pair at one position gets ``c = 0`` exactly.

    ``lo`` and ``hi`` (the caller's fresh sums) are updated in place; the
    per-entry work runs in two buffers of the entries' shape (no temporaries).
    """
    norm2 = sum(r * r for r in components)
    norm = bk.sqrt(norm2)
    # |R| = 0: every U_i = 0. Tested as "exactly 0", not "> 0" (the same for floats, norm2 >= 0): a ball
    # that merely straddles 0 is then divided by (an unbounded, inconclusive ball), never taken as 0
    safe = np.where(np.asarray(norm2 == 0, dtype=bool), norm * 0 + 1, norm)
    c = d = None
    for r in components:
        ua, ub = gather_fn(r / safe)
        if c is None:
            c = ua - ub  # broadcast to the entries' shape
            c *= c
            continue
        if d is None:
            d = np.empty_like(c)
        np.subtract(ua, ub, out=d)
        d *= d
        c += d
    na, nb = gather_fn(norm)
    if d is None:
        d = np.empty_like(c)
    np.multiply(na, nb, out=d)
    c *= d
    c /= 2
    lo += c
    hi += c
    return lo, hi, norm


#: A weighted sum of kernels gets its gaps from the values (``s -+ K``) where
#: ``|K| <= (1 - _SUM_REFINE) s`` and by :func:`sum_gaps` elsewhere: see
#: :func:`refined_sum_gaps` for the bound this gives.
_SUM_REFINE = 1.0 / 16


def refined_sum_gaps(bk, out: PairState, components: list, exact_sums) -> tuple:
    """The gaps of a weighted sum of kernels (the state ``out``, its values
    computed), float64: ``(lo, hi)``.

    From the values, ``lo = s - K``, ``hi = s + K`` with ``s = sqrt(K_aa K_bb)``
    of ``out`` (two passes), except on the entries with
    ``|K| > (1 - _SUM_REFINE) s`` (near correlation +-1, and every self pair at
    one position), which get the sums of the terms' gaps ``exact_sums(idx)``
    plus the Cauchy-Schwarz correction of :func:`sum_gaps` (``components`` as
    there), the same operations in the same order, so the same bits.

    Bound, elsewhere: ``K`` is a sum of ``m`` terms with
    ``sum_i |K_i| <= sum_i sqrt(K_i,aa K_i,bb) <= s`` (Cauchy-Schwarz), then
    scaled and offset by the bias, and ``K_aa``, ``K_bb`` likewise, so ``K`` and
    ``s`` are within ``(m + 1) eps s`` and ``(m + 3) eps s`` of their exact
    values (to first order) and ``s -+ K`` within ``(2 m + 5) eps s`` of the
    exact gaps; both exact gaps are ``>= (_SUM_REFINE - (2 m + 5) eps) s``
    there, so the relative error of the gaps is at most
    ``~16 (2 m + 5) eps`` (``m = 10``: ``4e-13``), and it enters the next
    kinked map's angle damped by the angle's own size (``theta >= 0.35``)."""
    va, vb = out.variances()
    k = out.nngp
    lo, hi, near = np.empty(k.shape), np.empty(k.shape), np.empty(k.shape, dtype=bool)
    for blk in _blocks(k.shape):  # elementwise, in blocks that stay in cache
        s = _part(va, blk, k.shape) * _part(vb, blk, k.shape)
        np.sqrt(s, out=s)
        kb = k[blk]
        np.subtract(s, kb, out=lo[blk])
        np.add(s, kb, out=hi[blk])
        s *= 1 - _SUM_REFINE
        np.greater(np.abs(kb), s, out=near[blk])
    flat = np.flatnonzero(near)  # one index array: 5x cheaper than nonzero
    if flat.size:
        near = np.unravel_index(flat, k.shape)
        elo, ehi = exact_sums(near)
        elo, ehi = _sum_gaps_at(bk, out, components, near, elo, ehi)
        lo.reshape(-1)[flat], hi.reshape(-1)[flat] = elo, ehi
    return lo, hi


def _sum_gaps_at(bk, out: PairState, components: list, idx: tuple, lo, hi) -> tuple:
    """:func:`sum_gaps` at the entries ``idx`` of ``out`` only (``lo``, ``hi``
    the sums of the terms' gaps there): the same operations, so the same bits."""
    norm2 = sum(r * r for r in components)
    norm = bk.sqrt(norm2)
    safe = np.where(np.asarray(norm2 == 0, dtype=bool), norm * 0 + 1, norm)
    c = None
    for r in components:
        ua, ub = out.gather_at(r / safe, idx)
        d = ua - ub
        d *= d
        c = d if c is None else c + d
    na, nb = out.gather_at(norm, idx)
    c *= na * nb
    c /= 2
    lo += c
    hi += c
    return lo, hi


def check_variances(state: PairState, where: str) -> None:
    """Raise on a zero-variance pre-activation (a zero-norm input without a
    bias): the dual maps are then undefined (0/0 in the angle)."""
    v = state.diagonal()
    if not is_high_precision(v) and not np.all(np.isfinite(v)):
        raise RangeError(
            f"the variance entering {where} overflows float64 (max {np.nanmax(np.where(np.isfinite(v), v, 0)):.3g} "
            "before it): the inputs' norms, sigma_w/sigma_b/alpha or the depth make the kernel too large; rescale the "
            "inputs, lower sigma_w or the depth, or use dps= (mpmath has no overflow)")
    if not np.all(np.asarray(v > 0, dtype=bool)):
        raise DegenerateInputError(
            f"zero variance entering {where}: an input of zero norm with sigma_b = 0 "
            "has no direction; give it a nonzero norm or use sigma_b > 0"
        )


def validate_inputs(x: Any, name: str = "x", dim: int | tuple | None = None) -> np.ndarray:
    """A finite float64 array of shape ``(n, d)``, or ``(n, *S, C)`` with spatial
    axes ``S`` and channels last, every size >= 1
    (:func:`ntk_equiv.validation.check_inputs`; a 1-D array is refused as
    ambiguous). ``dim``: the expected shape of one row, an int ``d`` or a tuple."""
    if dim is None:
        try:
            ndim = max(2, int(np.ndim(x)))
        except (TypeError, ValueError):  # ragged: check_inputs says what is wrong
            ndim = 2
    else:
        ndim = 2 if isinstance(dim, (int, np.integer)) else 1 + len(dim)
        if ndim == 2 and not isinstance(dim, (int, np.integer)):
            dim = dim[0]
    return check_inputs(x, name, ndim=ndim, dim=dim)


def check_distinct(x: np.ndarray, name: str, why: str) -> None:
    """Raise :class:`DegenerateInputError` if ``x`` has duplicate rows: they make
    the train kernel exactly singular, which ``why`` says is not allowed."""
    _, first, counts = np.unique(x.reshape(len(x), -1), axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        i = int(first[np.argmax(counts > 1)])
        raise DegenerateInputError(
            f"{name} has duplicate rows (e.g. row {i}): {why} is singular; remove duplicates or use ridge/noise > 0"
        )


def _gram(bk, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``x1 x2^T``: BLAS in float64; in high precision the exact products of the
    float64 inputs (:meth:`~ntk_equiv.precision.Backend.data_products`: integer
    arithmetic on their mantissas, one rounding at the end), ~100x faster than
    mpf arithmetic and exact; mpf arithmetic for inputs that are already mpf
    (the output of a data prefix)."""
    return bk.data_products(x1, x2, lambda u, v: u @ v.T)


#: Most multiply-adds ``m n k`` in one float64 product inside a tile. OpenBLAS
#: computes a product up to ``65536 * 4`` of them on the calling thread and
#: wakes its own threads for larger ones, which on a loaded machine costs
#: ~40 ms a call (measured: a 181 x 181 x 32 product took 41 ms in one call,
#: 0.5 ms in four); the tiles run on threads of their own already.
SERIAL_GEMM = 1 << 18


def _serial_gram(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``x1 x2^T`` in float64 as products of at most :data:`SERIAL_GEMM`
    multiply-adds (each computed by BLAS on this thread). The blocks depend
    only on the shapes, so the result does not depend on the thread count."""
    k = max(1, x1.shape[1])
    rows = max(1, min(len(x1), int(np.sqrt(SERIAL_GEMM / k))))
    cols = max(1, min(len(x2), SERIAL_GEMM // (rows * k)))
    out = np.empty((len(x1), len(x2)))
    for i in range(0, len(x1), rows):
        for j in range(0, len(x2), cols):
            np.matmul(x1[i:i + rows], x2[j:j + cols].T, out=out[i:i + rows, j:j + cols])
    return out


def _spatial_dots(bk, z: np.ndarray, a: np.ndarray, b: np.ndarray, full: bool) -> np.ndarray:
    """``<z_a[s], z_b[s']>`` over channels per pair: ``(P, *S, *S)`` (``full``) or
    the diagonal ``(P, *S)``. One fixed reduction per pair, so a pair gets the
    same bits in every tile; exact in high precision."""
    spatial = z.shape[1:-1]
    m, c = int(np.prod(spatial)), z.shape[-1]
    za, zb = z[a].reshape(len(a), m, c), z[b].reshape(len(b), m, c)
    if full:
        def prod(u, v):
            return np.matmul(u, np.swapaxes(v, 1, 2))
        shape = (len(a),) + spatial + spatial
    else:
        def prod(u, v):
            return (u * v).sum(axis=-1) if is_high_precision(u) else np.einsum("pmc,pmc->pm", u, v)
        shape = (len(a),) + spatial
    out = bk.data_products(za, zb, prod)
    return out.reshape(shape)


#: Entries whose gap is below this fraction of ``|z_a| |z_b|`` get it from the
#: unit vectors (error ``eps |u - v|``) instead of ``|z_a||z_b| - <z_a, z_b>``
#: (error ``eps``): the relative error of the gap stays below ``16 d eps``.
_GAP_REFINE = 1.0 / 16
_CHUNK = 1 << 15


def _input_gaps(bk, z, r, a, b, dots, spatial: tuple, full: bool, rect: tuple | None = None):
    """``lo = |z_a||z_b| - <z_a, z_b>`` and ``hi = |z_a||z_b| + <z_a, z_b>``
    per entry (``r = |z|`` per point and position, norms over channels).

    Where a gap is small it is a cancellation, so it is recomputed as
    ``|z_a||z_b| |u_a -+ u_b|^2 / 2`` from the unit vectors ``u = z / |z|``;
    self pairs get exactly 0.
    """
    ra, rb = gather(r, a, b, spatial, full, rect)
    if bk.vectorised and spatial:  # the same operations, in blocks that stay in cache (a flat tile fits it)
        shape = dots.shape
        lo, hi, mask = np.empty(shape), np.empty(shape), np.empty(shape, dtype=bool)
        for blk in _blocks(shape):
            s = _part(ra, blk, shape) * _part(rb, blk, shape)
            d = dots[blk]
            np.subtract(s, d, out=lo[blk])
            np.add(s, d, out=hi[blk])
            s *= 1 - _GAP_REFINE
            np.greater(np.abs(d), s, out=mask[blk])
        near = np.unravel_index(np.flatnonzero(mask), shape)
    else:
        s = ra * rb
        lo, hi = s - dots, s + dots
        near = np.nonzero(np.asarray(bk.abs(dots) > (1 - _GAP_REFINE) * s, dtype=bool))
    if near[0].size:
        u = z / np.where(np.asarray(r > 0, dtype=bool), r, r * 0 + 1)[..., None]
        k = len(spatial)
        for start in range(0, near[0].size, _CHUNK):
            idx = tuple(i[start:start + _CHUNK] for i in near)  # (*positions, pair): pairs last
            pos_a, pos_b = (idx[:k], idx[k:2 * k]) if full else (idx[:k], idx[:k])
            ua, ub = u[(a[idx[-1]],) + pos_a], u[(b[idx[-1]],) + pos_b]
            dm, dp = ua - ub, ua + ub
            half = _at(ra, idx, lo.shape) * _at(rb, idx, lo.shape) / 2
            lo[idx] = half * np.sum(dm * dm, axis=-1)
            hi[idx] = half * np.sum(dp * dp, axis=-1)
    return lo, hi  # >= 0: sums of squares where refined, > s / 16 elsewhere


#: Pairs per float64 tile without spatial axes: ~20 temporaries of this length stay in cache.
CHUNK_PAIRS = 1 << 15
#: Entries (pairs x spatial entries) per float64 tile with spatial axes.
CHUNK_ENTRIES = 1 << 20
#: Threads for the float64 tiles (each tile is independent; results do not
#: depend on the number of threads).
KERNEL_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Bytes a float64 tile holds per entry while it runs: its indices, inputs'
#: dot products, ``K``, ``Theta``, both gaps and the temporaries of a layer.
TILE_BYTES_PER_ENTRY = 8 * 24


@dataclass
class _Tile:
    """A block of the kernel matrix: its points (indices into the distinct
    points), its pairs in local indices (the points' self pairs first), the
    flat inputs' dot products, and where the values go."""

    pts: np.ndarray
    a: np.ndarray
    b: np.ndarray
    dots: Any
    write: Any
    rect: tuple | None = None


class _Plan:
    """The distinct points of ``(x1, x2)``, their input kernel and the tiles.

    float64 forms each tile's block of the Gram matrix when the tile runs
    (memory: the result plus O(tile) per thread, not a second ``n1 x n2``
    matrix); the high-precision path, one tile, forms it once. A point's
    ``|z|^2`` is computed once (``self_dots``) and used by every tile that
    holds it, so the self pairs of a point agree across tiles bit for bit.
    """

    def __init__(self, x1: np.ndarray, x2: np.ndarray | None, bk: Backend, full: bool, prefix=None):
        self.bk, self.sym = bk, x2 is None
        if self.sym:
            zf, self.shape = x1, (len(x1), len(x1))
        else:
            flat = np.vstack([x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)])
            u, inverse = np.unique(flat, axis=0, return_inverse=True)
            inverse = inverse.ravel()
            zf = u.reshape((len(u),) + x1.shape[1:])
            self.i1, self.i2 = inverse[: len(x1)], inverse[len(x1):]
            self.shape = (len(x1), len(x2))
        if prefix is not None:
            zf = _data_prefix(prefix, zf, bk)
        self.spatial = zf.shape[1:-1]
        self.full = bool(full and self.spatial)
        self.zf, self.z = zf, bk.asarray(zf)
        self.roots = bk.sqrt(np.sum(self.z * self.z, axis=-1))
        self.gram = None
        self._index_cache: dict = {}
        if not self.spatial:
            if bk.vectorised:
                self.self_dots = np.einsum("ij,ij->i", zf, zf)
            else:  # exact products, once (one tile: the whole matrix is needed anyway)
                g = _gram(bk, zf, zf)
                self.self_dots = np.diagonal(g).copy()
                self.gram = g if self.sym else None

    def _block_dots(self, r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
        """``<z_i, z_j>`` for the distinct points ``r1 x r2``; a point paired
        with itself gets ``self_dots`` (the same number in every tile)."""
        if self.gram is not None:
            return self.gram[np.ix_(r1, r2)]
        u, v = self.zf[r1], self.zf[r2]
        g = _serial_gram(u, v) if self.bk.vectorised else _gram(self.bk, u, v)
        same = r1[:, None] == r2[None, :]
        if np.any(same):
            g[same] = self.self_dots[np.broadcast_to(r1[:, None], same.shape)[same]]
        return g

    @property
    def entries_per_pair(self) -> int:
        m = int(np.prod(self.spatial)) if self.spatial else 1
        return m * m if self.full else m

    def tiles(self, block: int | None) -> list[tuple]:
        """The tiles of ``block`` rows and columns (``None``: one tile for
        everything), as ``(rows, cols)`` ranges; :meth:`tile` builds one."""
        n1, n2 = self.shape
        rows = [(0, n1)] if block is None else [(i, min(i + block, n1)) for i in range(0, n1, block)]
        cols = [(0, n2)] if block is None else [(j, min(j + block, n2)) for j in range(0, n2, block)]
        if self.sym:
            return [(r, c) for i, r in enumerate(rows) for c in rows[i:]]
        return [(r, c) for r in rows for c in cols]

    def _indices(self, key: tuple):
        """Index arrays shared by all tiles of one shape (built once, read-only:
        the threads share them)."""
        got = self._index_cache.get(key)
        if got is None:
            if key[0] == "diag":
                m = key[1]
                upper = np.triu(np.ones((m, m), dtype=bool), 1)  # boolean-mask gathers/scatters: 5x faster than (a, b)
                a, b = np.nonzero(upper)
                own = np.arange(m)
            else:
                mi, mj = key[1:]
                upper = np.zeros((0, 0), dtype=bool)
                a, b = np.repeat(np.arange(mi), mj), mi + np.tile(np.arange(mj), mi)
                own = np.arange(mi + mj)
            got = (upper, np.concatenate([own, a]), np.concatenate([own, b]))
            for arr in got:
                arr.setflags(write=False)
            self._index_cache[key] = got
        return got

    def tile(self, spec: tuple) -> _Tile:
        """The tile of ``spec = (rows, cols)`` (see :meth:`tiles`)."""
        return self._sym_tile(*spec) if self.sym else self._cross_tile(*spec)

    def _sym_tile(self, r, c) -> _Tile:
        (i0, i1), (j0, j1) = r, c
        if r == c:
            m = i1 - i0
            pts = np.arange(i0, i1)
            upper, a, b = self._indices(("diag", m))
            dots = None if self.spatial else np.concatenate([self.self_dots[i0:i1], self._block_dots(pts, pts)[upper]])

            def write(out, v):
                blk = out[i0:i1, i0:i1]
                blk[upper] = v[m:]
                blk.T[upper] = v[m:]  # row-major order of the transpose's upper triangle = the pair order
                blk[np.arange(m), np.arange(m)] = v[:m]
            return _Tile(pts, a, b, dots, write)
        mi, mj = i1 - i0, j1 - j0
        pts = np.concatenate([np.arange(i0, i1), np.arange(j0, j1)])
        _, a, b = self._indices(("rect", mi, mj))
        dots = None if self.spatial else np.concatenate(
            [self.self_dots[pts], self._block_dots(pts[:mi], pts[mi:]).ravel()])

        def write(out, v):
            block = v[mi + mj:].reshape(mi, mj)
            out[i0:i1, j0:j1] = block
            out[j0:j1, i0:i1] = block.T
        return _Tile(pts, a, b, dots, write, (mi, mj))

    def _cross_tile(self, r, c) -> _Tile:
        (i0, i1), (j0, j1) = r, c
        g1, g2 = self.i1[i0:i1], self.i2[j0:j1]
        pts = np.unique(np.concatenate([g1, g2]))
        la, lb = np.searchsorted(pts, g1), np.searchsorted(pts, g2)
        m = len(pts)
        own = np.arange(m)
        a, b = np.concatenate([own, np.repeat(la, len(lb))]), np.concatenate([own, np.tile(lb, len(la))])
        dots = None if self.spatial else np.concatenate([self.self_dots[pts], self._block_dots(g1, g2).ravel()])

        def write(out, v):
            out[i0:i1, j0:j1] = v[m:].reshape(i1 - i0, j1 - j0)
        return _Tile(pts, a, b, dots, write)

    def state(self, tile: _Tile) -> PairState:
        """The input kernel on a tile: ``K = <z_a, z_b> / C`` per position pair
        (``C`` channels or features), ``Theta = 0`` (the convention of
        neural-tangents' ``stax``: a Dense layer then gives
        ``sigma_w^2 <x, x'> / d + sigma_b^2``)."""
        bk, m, a, b = self.bk, len(tile.pts), tile.a, tile.b
        z, r = self.z[tile.pts], self.roots[tile.pts]
        dots = tile.dots if tile.dots is not None else np.ascontiguousarray(
            np.moveaxis(_spatial_dots(bk, self.zf[tile.pts], a, b, self.full), 0, -1))  # pairs last
        lo, hi = _input_gaps(bk, z, r, a, b, dots, self.spatial, self.full, tile.rect)
        d = z.shape[-1]
        nngp = dots / d
        lo /= d
        hi /= d
        return PairState(nngp, nngp * 0, a, b, m, lo, hi, self.spatial, self.full, rect=tile.rect)


def _data_prefix(prefix, z: np.ndarray, bk) -> np.ndarray:
    """The distinct inputs ``z`` through the data prefix (float64 in, float64 or
    mpf out), refusing non-finite outputs."""
    out = prefix(bk.asarray(z), bk)  # float64: z itself
    if bk.vectorised:  # float64's range: overflow to inf
        out = np.asarray(out, dtype=float)
        if not np.all(np.isfinite(out)):
            raise RangeError("the layers before the first Dense or Conv give non-finite values on these inputs "
                             "(overflow in float64): rescale the inputs or use dps=")
        check_squared_norms(out, "the inputs after the layers before the first Dense or Conv")
    return out


def kernel_memory(shape1: tuple, n2: int, sym: bool, dps: int | None, full: bool) -> float:
    """Estimated peak bytes of :func:`evaluate` for inputs ``x1`` of ``shape1``
    and ``n2`` rows of ``x2``: the two ``n1 x n2`` results, plus, in float64,
    the tiles in flight (one per thread, :data:`TILE_BYTES_PER_ENTRY` each
    entry) or, at ``dps=``, every pair at once (an mpf is ~100 bytes plus
    its digits)."""
    n1 = shape1[0]
    pairs = n1 * (n1 + 1) / 2 if sym else n1 * n2 + n1 + n2
    m = float(np.prod(shape1[1:-1]))
    entries = pairs * (m * m if full else m)  # at the input (no layer enlarges it)
    inputs = 8.0 * np.prod(shape1, dtype=float) * (1 if sym else 2)  # the distinct points and their roots
    if dps is not None:
        per_number = 8 * (40 + dps // 4)
        return 2 * n1 * n2 * (per_number + 8) + entries * 10 * (per_number + 8) + 4 * inputs
    budget = CHUNK_ENTRIES if len(shape1) > 2 else CHUNK_PAIRS
    live = min(entries, budget * KERNEL_THREADS)  # a tile holds ~budget entries (measured ~100 B each)
    return 2 * 8.0 * n1 * n2 + live * TILE_BYTES_PER_ENTRY + 4 * inputs


def evaluate(layers_fn, x1, x2=None, dps: int | None = None, full: bool = False, prefix=None) -> Kernel:
    """Run a kernel transform ``layers_fn(state, bk) -> state`` on inputs.

    ``full``: carry the full spatial covariance (needed by pooling) rather than
    its diagonal. ``prefix(z, bk) -> z``: the data prefix, applied exactly to
    the distinct inputs (one row per point) before their kernel is formed. float64 runs large kernels in independent tiles (each with
    its own points' self pairs, see the module docstring) on threads; mpmath
    in one pass (its cost is arithmetic, not memory traffic).
    """
    x1 = validate_inputs(x1, "x1")
    if x2 is not None:
        x2 = validate_inputs(x2, "x2", x1.shape[1:])
    bk = backend(dps)
    if dps is None:  # mpmath has no overflow; float64 squares the inputs
        check_squared_norms(x1, "x1")
        if x2 is not None:
            check_squared_norms(x2, "x2")
    n1, n2 = len(x1), len(x1) if x2 is None else len(x2)
    what = f"the kernel of {n1} x {n2} inputs" + ("" if dps is None else f" at dps={dps}")
    hint = "compute it in blocks of rows (arch.kernel(x1[i:j], x2))"
    check_memory(kernel_memory(x1.shape, n2, x2 is None, dps, full), what, hint)
    with memory_errors_named(what, hint), bk.context():
        plan = _Plan(x1, x2, bk, full, prefix)
        e = plan.entries_per_pair
        n1, n2 = plan.shape
        pairs = n1 * (n1 + 1) // 2 if plan.sym else n1 * n2 + n1 + n2
        budget = CHUNK_ENTRIES if plan.spatial else CHUNK_PAIRS
        block = None if dps is not None or pairs * e <= budget else max(1, int(np.sqrt(budget / e)))
        tiles = plan.tiles(block)
        dtype = object if dps is not None else float
        nngp, ntk = np.empty(plan.shape, dtype=dtype), np.empty(plan.shape, dtype=dtype)
        overflow = []

        def run(spec: tuple) -> None:
            tile = plan.tile(spec)
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked and named below
                out = layers_fn(plan.state(tile), bk).materialised(bk).collapsed(bk)
            if out.spatial:
                raise ShapeError(f"the architecture's output still has spatial axes {out.spatial}: "
                                 "end with Flatten() or GlobalAvgPool() before the readout")
            if dps is None and not (np.all(np.isfinite(out.nngp)) and np.all(np.isfinite(out.ntk))):
                overflow.append(spec)
            tile.write(nngp, out.nngp)
            tile.write(ntk, out.ntk)

        if len(tiles) == 1:
            run(tiles[0])
        else:
            # tiles are independent and numpy's ufuncs release the GIL: use the cores
            with ThreadPoolExecutor(max_workers=KERNEL_THREADS) as pool:
                list(pool.map(run, tiles))
    if overflow:
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
    if is_high_precision(k) or is_high_precision(ref) or is_high_precision(d1):
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
