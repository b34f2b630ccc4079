"""Finite width at order 1/n: the fluctuations of the empirical kernels of an MLP
at initialisation (docs/theory.md, "Finite width at order 1/n").

Network: ``L`` hidden layers of width ``n`` (Dense + activation), a Dense
readout, NTK parameterisation. ``K_hat`` is the empirical NNGP of the readout's
input, ``sigma_w^2/n sum_c phi(z_c(x)) phi(z_c(x')) + sigma_b^2``;
``Theta_hat`` the empirical NTK over all parameters. :func:`finite_width`
returns, for inputs ``x_1..x_N``, ``Var[Theta_hat_ij] = ntk_var[i, j] / n +
O(1/n^2)`` and likewise ``nngp_var``, the four-point vertex of the outputs and
the cross-head covariance of squared outputs.

*Derivation* (exact at one hidden layer, leading order through depth). Given
every parameter below layer ``l + 1`` (call it ``F_l``), the pre-activations of
layer ``l + 1`` are i.i.d. over channels, Gaussian with covariance ``K_hat^{l+1}``,
and its channel-diagonal NTK is ``T_cc = Theta_bar^{l+1} + eps_c`` with
``Theta_bar^{l+1} = K_hat^{l+1} + tr M^l`` (its mean over ``W^{l+1}``) and
``eps_c = W_c^T M^l W_c - tr M^l``, where
``M^l_{kk'} = sigma_w^2/n phi'(z_k(x)) phi'(z_k'(x')) T^l_{kk'}``. Per entry
``e = (a, b)`` write ``A_e = phi(z_a) phi(z_b)``, ``B_e = phi'(z_a) phi'(z_b)`` and
``F_e = E[A_e]``, ``Fd_e = E[B_e]`` under ``N(0, K^l)`` (the dual maps). The law
of total covariance over the channel average ``(1/n) sum_k`` gives, for the
vector ``s = (K_hat_e, Theta_bar_e)`` over the entries ``e in {ii, ij, jj}`` of a
pair of inputs (a closed system: 2-D Gaussian expectations only),

    n Cov(s^{l+1}) = sigma_w^4 Cov(A_e, A_e + Theta^l_e B_e) + J n Cov(s^l) J^T,
    J = sigma_w^2 [[dF/dK, 0], [dF/dK + Theta^l dFd/dK, diag(Fd)]],

starting from ``Cov(s^1) = 0`` (``K_hat^1 = Theta_bar^1 = K^1`` exactly). The
readout's quadratic form ``w^T M^L w`` adds ``tau^L_{ij,ij} + tau^L_{ij,ji}``,
``tau^l_{ab,cd} = n tr(M^l_ab M^l_cd)`` at leading order:

    tau^l_{ab,cd} = sigma_w^4 (E[B_ab B_cd] Theta^l_ab Theta^l_cd + E[B_ad] E[B_bc] tau^{l-1}_{ab,cd}).

``dF/dK`` and ``dFd/dK`` are Gaussian expectations of ``phi, phi'`` times
polynomials (Price's theorem ``dF/dK_ab = Fd``, integration by parts and
Stein's identity ``dE[h]/dG = E[h (G^{-1} z z^T G^{-1} - G^{-1})] / 2``), so no
``phi''`` is ever needed (ReLU's is a delta). Every expectation goes through
:mod:`ntk_equiv.quadrature` (float64 piecewise Gauss-Legendre; mpmath polar or
nested tanh-sinh rules), the recursion arithmetic through one code path for
float64 and mpmath.

*Means* (``FiniteWidth.nngp_mean``, ``ntk_mean``: docs/theory.md). ``E[K_hat^{l+1} |
F_l] = sigma_w^2 F(K_hat^l) + sigma_b^2`` exactly; to second order around ``K^l``
the correction ``mk = n (E K_hat - K)`` obeys ``mk' = sigma_w^2 (dF . mk + Hess F :
C_KK / 2)``. The NTK's ``mt`` adds the correlation of ``Theta^l_kk`` with its own
pre-activation (both depend on the channel's weights ``W_k``: Stein's lemma),
carried by ``q = n E[A M A^T]``; see :func:`_pair_mean_step`. Every derivative
of a Gaussian expectation is ``E[h He]`` with a Hermite polynomial
(:func:`hermite`).

The outputs' statistics follow exactly from ``K_hat`` (the outputs are Gaussian
given the hidden layers, heads independent): ``k4(f_i, f_i, f_j, f_j) =
Cov(K_hat_ii, K_hat_jj) + 2 Var(K_hat_ij)`` and ``Cov(f_a(x_i)^2, f_b(x_j)^2) =
Cov(K_hat_ii, K_hat_jj)`` for heads ``a != b``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import quadrature
from .activations import Activation
from .errors import ArchitectureError, DegenerateInputError, NtkEquivError, ParameterError
from .layers import Act, Dense, Serial
from .precision import backend, to_public
from .validation import check_inputs, check_real

#: Smallest relative determinant ``det / (k11 k22)`` of a pair of distinct
#: inputs at any layer: Stein's formula for ``dFd/dK`` divides by ``det^2`` and
#: loses ~``1.5 log10(1/det)`` digits (float64 keeps >= 7 at 1e-6; mpmath's
#: guard digits absorb 1e-10). Closer pairs are refused.
MIN_RELATIVE_DET = {"float64": 1e-6, "mpmath": 1e-10}


class UncoveredArchitectureError(ArchitectureError):
    """An architecture outside what the finite-width recursions cover (MLPs:
    Dense and activation layers alternating, a Dense readout)."""


COVERED = ("MLPs: Dense, activation, Dense, activation, ..., Dense readout (as built by ne.mlp or "
           "ne.serial), at least one hidden layer, any activation of the library")


@dataclass(frozen=True)
class FiniteWidth:
    """Order-``1/n`` statistics of an MLP of width ``n`` at initialisation.

    Attributes (``(N, N)``; float64 arrays, or ``mpmath.matrix`` with ``dps``)
    ----------
    nngp, ntk : the limit kernels ``K`` (of the readout's input) and ``Theta``.
    nngp_var, ntk_var : ``n Var[K_hat_ij]``, ``n Var[Theta_hat_ij]`` (leading order).
    cumulant4 : ``n k4(f_i, f_i, f_j, f_j)`` of one output head.
    head_cov : ``n Cov(f_a(x_i)^2, f_b(x_j)^2)`` for two heads ``a != b``
        sharing the hidden layers (zero correlation of the heads, ``O(1/n)``
        dependence).
    depth : number of hidden layers ``L``.
    """

    nngp: object
    ntk: object
    nngp_var: object
    ntk_var: object
    cumulant4: object
    head_cov: object
    depth: int
    dps: int | None = None

    _means: Callable | None = field(default=None, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def nngp_mean(self):
        """``n (E[K_hat] - K)`` (leading order; exactly 0 at one hidden layer).
        Computed on first use (a second pass of the recursion)."""
        return self._mean("nngp_mean")

    @property
    def ntk_mean(self):
        """``n (E[Theta_hat] - Theta)`` (leading order; exactly 0 at one hidden
        layer). Computed on first use."""
        return self._mean("ntk_mean")

    def target_dependence(self, heads: int):
        """``n Cov(a, b) / (K (Theta - K))`` per input (``(N,)``), ``a = (1/K) sum_m
        f_m(x)^2``, ``b = (1/K) sum_m ||J^hid_m(x)||^2`` for ``K = heads`` heads
        sharing the hidden layers (Thm 5.8's dependence statistic ``n D(n)``,
        leading order; exact at one hidden layer). Given the hidden layers
        ``f_m = a . w_m + sigma_b c_m`` and ``||J^hid_m||^2 = w_m^T M w_m``, so
        ``n Cov(a, b) = n Cov(K_hat, tr M) + 2 n E[a^T M a] / K`` (Wick, the same
        head's readout), both from the recursions."""
        if int(heads) != heads or heads < 1:
            raise ParameterError(f"heads must be a positive integer, got {heads!r}")
        cov, q = self._mean("hidden_cov"), self._mean("readout_q")
        if self.dps is None:
            k, t = np.diagonal(self.nngp), np.diagonal(self.ntk)
        else:  # mpmath matrices: element by element
            size = self.nngp.rows
            k, t, cov, q = (np.array([get(i) for i in range(size)], dtype=object) for get in (
                lambda i: self.nngp[i, i], lambda i: self.ntk[i, i], lambda i: cov[i], lambda i: q[i]))
        return (cov + 2 * q / int(heads)) / (k * (t - k))

    def _mean(self, name: str):
        if name not in self._cache:
            if self._means is None:
                raise NtkEquivError("this FiniteWidth was built without its mean recursion (use ne.finite_width)")
            full = self._means()
            self._cache.update({key: full[key] for key in ("nngp_mean", "ntk_mean", "hidden_cov", "readout_q")})
        return self._cache[name]


# --------------------------------------------------------------------------- #
# architecture
# --------------------------------------------------------------------------- #
def _flatten(layer) -> list:
    if isinstance(layer, Serial):
        return [leaf for sub in layer.layers for leaf in _flatten(sub)]
    return [layer]


def mlp_layers(arch) -> tuple[list[tuple[Dense, Activation]], Dense]:
    """``([(Dense_l, phi_l) for each hidden layer], readout)`` of an MLP, or
    :class:`UncoveredArchitectureError` naming what is covered."""
    if not isinstance(arch, Serial):
        raise UncoveredArchitectureError(f"finite_width covers {COVERED}; got {type(arch).__name__} {arch!r}"[:400])
    layers = _flatten(arch)
    kinds = "".join("D" if type(l) is Dense else "A" if type(l) is Act else "?" for l in layers)
    if len(layers) < 3 or kinds != "DA" * (len(layers) // 2) + "D":
        bad = next((l for l in layers if type(l) not in (Dense, Act)), None)
        what = f"a {type(bad).__name__} layer" if bad is not None else f"the layer sequence {kinds!r}"
        raise UncoveredArchitectureError(f"finite_width covers {COVERED}; {arch!r} has {what}"[:500])
    hidden = [(layers[i], layers[i + 1].phi) for i in range(0, len(layers) - 1, 2)]
    return hidden, layers[-1]


# --------------------------------------------------------------------------- #
# Gaussian expectations of products x^p phi^a phi'^b (u side) x (v side)
# --------------------------------------------------------------------------- #
Side = tuple[int, int, int]  # powers of (phi, phi', x)
ONE: Side = (0, 0, 0)


def _add(s: Side, t: Side) -> Side:
    return (s[0] + t[0], s[1] + t[1], s[2] + t[2])


class _Moments:
    """``E[f(u) g(v)]`` for monomials ``f = phi^a phi'^b x^p`` (cached per
    monomial pair and kernel entries)."""

    def __init__(self, phi: Activation, bk):
        self.phi, self.bk = phi, bk
        self.kinks = phi.kinks
        if not bk.vectorised:
            self.mp_f, self.mp_df = phi.mp_functions(bk.ctx)

    def _np_fn(self, side: Side) -> Callable:
        f, df = self.phi._np  # noqa: SLF001 - the activation's own broadcasting float64 callables
        return _side_fn(side, f, df, np.ones_like)

    def _mp_fn(self, side: Side) -> Callable:
        one = self.bk.ctx.mpf(1)
        return _side_fn(side, self.mp_f, self.mp_df, lambda x: one)

    def expect(self, f: Side, g: Side, k11, k12, k22, det) -> np.ndarray:
        """Elementwise over 1-D arrays of kernel entries (``det`` their determinant)."""
        if self.bk.vectorised:
            return quadrature.gaussian_expectation_f64(self._np_fn(f), self._np_fn(g), self.kinks, self.kinks,
                                                       k11, k12, k22, det=det)
        ctx = self.bk.ctx
        ff, gg = self._mp_fn(f), self._mp_fn(g)
        polar = all(kappa == 0 for kappa in self.kinks)
        out = np.empty(len(k11), dtype=object)
        for i in range(len(k11)):
            args = (ctx.mpf(k11[i]), ctx.mpf(k12[i]), ctx.mpf(k22[i]))
            if polar:
                out[i] = quadrature.gaussian_expectation_polar_mp(ctx, ff, gg, *args, smooth=not self.kinks,
                                                                  det=ctx.mpf(det[i]))
            else:
                out[i] = quadrature.gaussian_expectation_mp(ctx, ff, gg, self.kinks, self.kinks, *args,
                                                            det=ctx.mpf(det[i]))
        return out


# --------------------------------------------------------------------------- #
# the recursions, one pair of inputs at a time (vectorised over pairs)
# --------------------------------------------------------------------------- #
#: entries of a pair (i, j): (occurrences of x_i, of x_j)
ENTRIES = ((2, 0), (1, 1), (0, 2))


def _mono(kind: str, entry: tuple[int, int]) -> tuple[Side, Side]:
    nu, nv = entry
    return ((nu, 0, 0), (nv, 0, 0)) if kind == "A" else ((0, nu, 0), (0, nv, 0))


def _times(m1, m2):
    return (_add(m1[0], m2[0]), _add(m1[1], m2[1]))


def pair_gradients(e: Callable, k11, k12, k22, det) -> tuple[np.ndarray, np.ndarray]:
    """``(dF, dFd)``, each ``(P, 3, 3)``: row ``r`` the gradient of ``F_r``
    (``Fd_r``), ``r`` in (ii, ij, jj), with respect to ``(K_ii, K_ij, K_jj)``, from the
    moments ``e((f, g))`` of :class:`_Moments`.

    Diagonal: ``dE[phi^2]/dk = E[u phi phi'] / k``, ``dE[phi'^2]/dk = (E[u^2 phi'^2] -
    k E[phi'^2]) / (2 k^2)``. Off-diagonal: Price's ``dF/dK_ij = Fd``, integration by
    parts ``dF/dK_ii = (E[u phi'(u) phi(v)] - K_ij Fd) / (2 K_ii)``, and Stein's
    ``dE[h]/dG = E[h (w w^T - G^{-1})] / 2``, ``w = G^{-1} (u, v)``, for ``h = phi'(u) phi'(v)``
    (moments ``m_ab = E[u^a phi'(u) v^b phi'(v)]``)."""
    zero = k11 * 0
    gf = np.empty((len(k11), 3, 3), dtype=np.asarray(k11).dtype)
    gd = np.empty_like(gf)
    gf[:] = zero[:, None, None]
    gd[:] = zero[:, None, None]
    for r, kk, side in ((0, k11, 0), (2, k22, 1)):
        def sided(s, side=side):
            return (s, ONE) if side == 0 else (ONE, s)
        gf[:, r, r] = e(sided((1, 1, 1))) / kk
        gd[:, r, r] = (e(sided((0, 2, 2))) - kk * e(sided((0, 2, 0)))) / (2 * kk * kk)
    fd = e(((0, 1, 0), (0, 1, 0)))
    gf[:, 1, 1] = fd
    gf[:, 1, 0] = (e(((0, 1, 1), (1, 0, 0))) - k12 * fd) / (2 * k11)
    gf[:, 1, 2] = (e(((1, 0, 0), (0, 1, 1))) - k12 * fd) / (2 * k22)
    m00, m11 = fd, e(((0, 1, 1), (0, 1, 1)))
    m20, m02 = e(((0, 1, 2), (0, 1, 0))), e(((0, 1, 0), (0, 1, 2)))
    p, q, c = k11, k22, k12
    d2 = det * det
    gd[:, 1, 1] = ((p * q + c * c) * m11 - q * c * m20 - p * c * m02) / d2 + c * m00 / det
    gd[:, 1, 0] = ((q * q * m20 - 2 * q * c * m11 + c * c * m02) / d2 - q * m00 / det) / 2
    gd[:, 1, 2] = ((p * p * m02 - 2 * p * c * m11 + c * c * m20) / d2 - p * m00 / det) / 2
    return gf, gd


def pair_expect(mom: _Moments, k11, k12, k22, det) -> Callable:
    """``e((f, g)) = E[f(u) g(v)]`` over the pairs, cached per monomial pair."""
    cache: dict = {}

    def e(mono):
        mono = (tuple(mono[0]), tuple(mono[1]))
        if mono not in cache:
            cache[mono] = mom.expect(mono[0], mono[1], k11, k12, k22, det)
        return cache[mono]
    return e


def diag_expect(mom: _Moments, kk) -> Callable:
    """``e(f) = E[f(u)]``, ``u ~ N(0, kk)`` elementwise, cached per monomial."""
    det = kk * kk  # the v side is the constant 1: any non-degenerate partner will do
    cache: dict = {}

    def e(u: Side):
        u = tuple(u)
        if u not in cache:
            cache[u] = mom.expect(u, ONE, kk, kk * 0, kk, det)
        return cache[u]
    return e


def _pair_step(mom: _Moments, k, theta, c_prev, tau_prev, sw, det, e: Callable | None = None):
    """One layer for off-diagonal pairs: ``k``, ``theta`` of shape ``(P, 3)``
    (entries ii, ij, jj of ``K^l``, ``Theta^l``), ``c_prev`` ``(P, 6, 6)``,
    ``tau_prev`` ``(P, 2)`` (``tau_{ij,ij}``, ``tau_{ij,ji}``). Returns
    ``(c, tau)`` of the next layer (``e``: a shared :func:`pair_expect`)."""
    k11, k12, k22 = k[:, 0], k[:, 1], k[:, 2]
    if e is None:
        e = pair_expect(mom, k11, k12, k22, det)

    sw2 = sw * sw
    sw4 = sw2 * sw2
    p_count = k.shape[0]
    ea = [e(_mono("A", en)) for en in ENTRIES]
    eb = [e(_mono("B", en)) for en in ENTRIES]
    # per-channel covariance of q = (A_e, A_e + Theta_e B_e)
    zero = k11 * 0
    cov = np.empty((p_count, 6, 6), dtype=k.dtype)
    for r in range(3):
        for s in range(3):
            aa = e(_times(_mono("A", ENTRIES[r]), _mono("A", ENTRIES[s]))) - ea[r] * ea[s]
            ab = e(_times(_mono("A", ENTRIES[r]), _mono("B", ENTRIES[s]))) - ea[r] * eb[s]
            ba = e(_times(_mono("B", ENTRIES[r]), _mono("A", ENTRIES[s]))) - eb[r] * ea[s]
            bb = e(_times(_mono("B", ENTRIES[r]), _mono("B", ENTRIES[s]))) - eb[r] * eb[s]
            tr, ts = theta[:, r], theta[:, s]
            cov[:, r, s] = aa
            cov[:, r, 3 + s] = aa + ts * ab
            cov[:, 3 + r, s] = aa + tr * ba
            cov[:, 3 + r, 3 + s] = aa + ts * ab + tr * ba + tr * ts * bb
    gf, gd = pair_gradients(e, k11, k12, k22, det)
    jac = np.empty((p_count, 6, 6), dtype=k.dtype)
    jac[:] = zero[:, None, None]
    jac[:, :3, :3] = sw2 * gf
    jac[:, 3:, :3] = sw2 * (gf + theta[:, :, None] * gd)
    for r in range(3):
        jac[:, 3 + r, 3 + r] = sw2 * eb[r]
    c_next = sw4 * cov + jac @ c_prev @ np.transpose(jac, (0, 2, 1))
    fd, b4 = eb[1], e(((0, 2, 0), (0, 2, 0)))
    t2 = theta[:, 1] * theta[:, 1]
    tau = np.stack([sw4 * (b4 * t2 + fd * fd * tau_prev[:, 0]),
                    sw4 * (b4 * t2 + eb[0] * eb[2] * tau_prev[:, 1])], axis=1)
    return c_next, tau


def _diag_step(mom: _Moments, k, theta, c_prev, tau_prev, sw, e: Callable | None = None):
    """:func:`_pair_step` for diagonal entries (one input: 1-D expectations):
    ``k, theta`` ``(P,)``, ``c_prev`` ``(P, 2, 2)``, ``tau_prev`` ``(P,)``
    (``e``: a shared :func:`diag_expect`)."""
    kk = k
    ones = kk * 0 + 1
    if e is None:
        e = diag_expect(mom, kk)

    sw2 = sw * sw
    sw4 = sw2 * sw2
    ea, eb = e((2, 0, 0)), e((0, 2, 0))
    aa, ab, bb = e((4, 0, 0)) - ea * ea, e((2, 2, 0)) - ea * eb, e((0, 4, 0)) - eb * eb
    cov = np.empty((len(kk), 2, 2), dtype=kk.dtype)
    cov[:, 0, 0] = aa
    cov[:, 0, 1] = cov[:, 1, 0] = aa + theta * ab
    cov[:, 1, 1] = aa + 2 * theta * ab + theta * theta * bb
    gf = e((1, 1, 1)) / kk
    gd = (e((0, 2, 2)) - kk * eb) / (2 * kk * kk)
    jac = np.empty((len(kk), 2, 2), dtype=kk.dtype)
    jac[:, 0, 0] = sw2 * gf
    jac[:, 0, 1] = 0 * ones
    jac[:, 1, 0] = sw2 * (gf + theta * gd)
    jac[:, 1, 1] = sw2 * eb
    c_next = sw4 * cov + jac @ c_prev @ np.transpose(jac, (0, 2, 1))
    tau = sw4 * (e((0, 4, 0)) * theta * theta + eb * eb * tau_prev)
    return c_next, tau


# --------------------------------------------------------------------------- #
# the 1/n corrections of the means
# --------------------------------------------------------------------------- #
Poly = dict  # {(p, q): coefficient array}: sum_pq c_pq u^p v^q


def hermite(order: tuple[int, int], l11, l12=None, l22=None) -> Poly:
    """``He = (-1)^(m+k) d_u^m d_v^k p / p`` for the density ``p`` of ``N(0, G)``,
    ``G^{-1} = [[l11, l12], [l12, l22]]``, so that ``E[d_u^m d_v^k h] = E[h He]``
    (Gaussian integration by parts: no derivative of ``h`` is taken).

    Built by ``He_{S+i} = w_i He_S - d_i He_S``, ``w = G^{-1} (u, v)``. Without
    ``l12, l22`` it is the 1-D polynomial in ``u`` (``l11 = 1/K``, ``k = 0``)."""
    one_d = l12 is None
    poly: Poly = {(0, 0): l11 * 0 + 1}
    for axis in (0,) * order[0] + (1,) * order[1]:
        w = ((1, 0, l11),) if one_d else (((1, 0, l11), (0, 1, l12)) if axis == 0 else ((1, 0, l12), (0, 1, l22)))
        terms = []
        for (p, q), c in poly.items():
            terms += [((p + dp, q + dq), coef * c) for dp, dq, coef in w]
            power = (p, q)[axis]
            if power:
                terms.append(((p - 1, q) if axis == 0 else (p, q - 1), -power * c))
        poly = {}
        for key, term in terms:
            poly[key] = poly[key] + term if key in poly else term
    return poly


def _d_expect(e: Callable, mono: tuple[Side, Side], order: tuple[int, int], inv) -> np.ndarray:
    """``E[d_u^m d_v^k (f(u) g(v))]`` as ``E[f g He]`` (``inv = (l11, l12, l22)``)."""
    f, g = mono
    total = None
    for (p, q), c in hermite(order, *inv).items():
        term = c * e(((f[0], f[1], f[2] + p), (g[0], g[1], g[2] + q)))
        total = term if total is None else total + term
    return total


#: Price's theorem per kernel entry (ii, ij, jj): ``dE[h]/dK_r = w_r E[D_r h]``
#: with ``D = d_u^2, d_u d_v, d_v^2`` and weights 1/2, 1, 1/2.
_PRICE = (((2, 0), 0.5), ((1, 1), 1.0), ((0, 2), 0.5))


def _diag_mean_step(e: Callable, k, theta, c, mk, mt, q, sw):
    """One layer of the mean corrections for diagonal entries (one input).

    ``k, theta`` the limit kernels of layer ``l`` (``(P,)``), ``c = n Cov(K_hat^l,
    Theta_bar^l)`` ``(P, 2, 2)``, ``mk = n (E K_hat^l - K^l)``, ``mt = n (E
    Theta^l - Theta^l)``, ``q = n E[Q^l]`` with ``Q^l = sum_jj' a_j a_j' M^{l-1}_jj'``,
    ``a = sigma_w phi(z^{l-1}) / sqrt n``. Returns ``(mk, mt, q)`` of layer ``l + 1``:

        mk' = sw^2 (F' mk + F'' C_KK / 2)
        mt' = mk' + sw^2 (theta (G' mk + G'' C_KK / 2) + G mt + G' C_KT + q E[g''])
        q'  = sw^4 (theta E[phi^2 phi'^2] + E[(phi phi')']^2 q)

    with ``F = E[phi^2]``, ``G = E[phi'^2]``, ``g = phi'^2``, derivatives in the
    variance ``k`` by Price (``d/dk E[h] = E[h''] / 2``) through :func:`hermite`.
    """
    inv = (1 / k,)
    sw2 = sw * sw
    a_, b_ = (1, 0, 0), (0, 1, 0)

    def de(f: Side, order: int):
        return _d_expect(lambda mono: e(mono[0]), (f, ONE), (order, 0), inv)
    f2, g2 = (2, 0, 0), (0, 2, 0)
    fp, fpp = de(f2, 2) / 2, de(f2, 4) / 4
    gp, gpp = de(g2, 2) / 2, de(g2, 4) / 4
    ckk, ckt = c[:, 0, 0], c[:, 0, 1]
    mk_next = sw2 * (fp * mk + fpp * ckk / 2)
    mt_next = mk_next + sw2 * (theta * (gp * mk + gpp * ckk / 2) + e(g2) * mt + gp * ckt + q * de(g2, 2))
    q_next = sw2 * sw2 * (theta * e((2, 2, 0)) + de(_add(a_, b_), 1) ** 2 * q)
    return mk_next, mt_next, q_next


def _pair_mean_step(e: Callable, k, theta, c, mk, mt, q, sw, det, gf, gd):
    """:func:`_diag_mean_step` for the off-diagonal entry ``ij`` of pairs.

    ``k, theta`` ``(P, 3)`` (entries ii, ij, jj of layer ``l``), ``c`` ``(P, 6, 6)``
    (``n Cov`` of ``(K_hat_e, Theta_bar_e)``), ``mk`` ``(P, 3)`` (the three entries'
    ``n (E K_hat - K)``), ``mt`` ``(P,)`` and ``q`` ``(P, 2, 2)`` of the entry ``ij``
    (``Q_ab`` with ``a, b`` in (x_i, x_j)); ``gf, gd`` of :func:`pair_gradients`.
    With ``F = E[phi(u) phi(v)]``, ``G = E[phi'(u) phi'(v)]``, Hessians in
    ``(K_ii, K_ij, K_jj)`` by Price twice:

        mk' = sw^2 (dF . mk + Hess F : C_KK / 2)
        mt' = mk' + sw^2 (theta_ij (dG . mk + Hess G : C_KK / 2) + G mt
                           + dG . C_{K, Theta_ij} + sum_ab q_ab E[d_a d_b (phi' phi')])
        q'  = sw^4 (theta_ij H + D1 q D2^T)

    ``H_ab = E[phi(u_a) phi'(u) phi(u_b) phi'(v)]``, ``D1_ac = E[d_c (phi(u_a) phi'(u))]``,
    ``D2_bd = E[d_d (phi(u_b) phi'(v))]`` (``u_a`` is ``u`` or ``v``).
    """
    k11, k12, k22 = k[:, 0], k[:, 1], k[:, 2]
    inv = (k22 / det, -k12 / det, k11 / det)
    sw2 = sw * sw
    one, phi, dphi = ONE, (1, 0, 0), (0, 1, 0)
    mono_f, mono_g = (phi, phi), (dphi, dphi)

    def hess_contract(mono):
        total = None
        for r, (dr, wr) in enumerate(_PRICE):
            for s_, (ds, ws) in enumerate(_PRICE):
                term = wr * ws * _d_expect(e, mono, (dr[0] + ds[0], dr[1] + ds[1]), inv) * c[:, r, s_]
                total = term if total is None else total + term
        return total
    df, dg = gf[:, 1, :], gd[:, 1, :]
    mk_next = sw2 * ((df * mk).sum(axis=1) + hess_contract(mono_f) / 2)
    second = {(0, 0): (2, 0), (0, 1): (1, 1), (1, 0): (1, 1), (1, 1): (0, 2)}
    q_term = sum(q[:, a, b] * _d_expect(e, mono_g, second[a, b], inv) for a in range(2) for b in range(2))
    t12 = theta[:, 1]
    mt_next = mk_next + sw2 * (t12 * ((dg * mk).sum(axis=1) + hess_contract(mono_g) / 2) + e(mono_g) * mt
                               + (dg * c[:, :3, 4]).sum(axis=1) + q_term)
    # phi(u_a) phi'(u) and phi(u_b) phi'(v) as (u side, v side)
    h1 = ((_add(phi, dphi), one), (dphi, phi))
    h2 = ((phi, dphi), (one, _add(phi, dphi)))
    first = ((1, 0), (0, 1))
    d1 = np.empty((len(k11), 2, 2), dtype=k.dtype)
    d2 = np.empty_like(d1)
    hh = np.empty_like(d1)
    for a in range(2):
        for g_ in range(2):
            d1[:, a, g_] = _d_expect(e, h1[a], first[g_], inv)
            d2[:, a, g_] = _d_expect(e, h2[a], first[g_], inv)
        for b in range(2):
            hh[:, a, b] = e(_times(h1[a], h2[b]))
    q_next = sw2 * sw2 * (t12[:, None, None] * hh + d1 @ q @ np.transpose(d2, (0, 2, 1)))
    return mk_next, mt_next, q_next


# --------------------------------------------------------------------------- #
# public entry point
# --------------------------------------------------------------------------- #
def layer_kernels(hidden, readout, x, bk) -> list[tuple]:
    """``[(K^l, Theta^l)]`` for ``l = 1..L+1`` (C1's recursion, per layer) as
    backend arrays; the last pair is the architecture's ``(K, Theta)``."""
    d = x.shape[1]
    first = hidden[0][0]
    sw, sb = bk.scalar(first.sigma_w), bk.scalar(first.sigma_b)
    k = sw * sw * (x @ x.T) / d + sb * sb
    out = [(k, 1 * k)]
    theta = 1 * k
    for l, (_, phi) in enumerate(hidden):
        nxt = hidden[l + 1][0] if l + 1 < len(hidden) else readout
        sw, sb = bk.scalar(nxt.sigma_w), bk.scalar(nxt.sigma_b)
        diag = np.diagonal(k)
        v, vd = phi.dual(bk, diag[:, None] + 0 * k, k, diag[None, :] + 0 * k)
        k = sw * sw * v + sb * sb
        theta = k + sw * sw * vd * theta
        out.append((k, theta))
    return out


def finite_width(arch, x, dps: int | None = None) -> FiniteWidth:
    """The order-``1/n`` fluctuations of ``arch.init(width=n)`` at initialisation.

    Parameters
    ----------
    arch : an MLP (Dense and activation layers alternating, a Dense readout:
        ``ne.mlp(...)`` or ``ne.serial(...)``); anything else raises
        :class:`UncoveredArchitectureError`.
    x : (N, d) inputs.
    dps : ``None`` for float64, or digits (mpmath, every expectation by
        high-precision quadrature).

    Returns
    -------
    FiniteWidth
        ``Var[Theta_hat_ij] = ntk_var[i, j] / n + O(1/n^2)`` (exact at one hidden
        layer: there the ``O(1/n^2)`` term is 0), likewise ``nngp_var``;
        ``cumulant4`` and ``head_cov`` (see the module docstring).

    Raises
    ------
    DegenerateInputError
        A zero-variance pre-activation, or two distinct inputs whose
        pre-activations are (nearly) collinear at some layer (relative
        determinant below :data:`MIN_RELATIVE_DET`): the formulas lose their
        digits there. Identical inputs are fine.
    """
    hidden, readout = mlp_layers(arch)
    x = check_inputs(x, "x")
    out = _recurse(hidden, readout, x, dps, means=False)
    means = functools.partial(_recurse, hidden, readout, x, dps, means=True)
    return FiniteWidth(depth=len(hidden), dps=dps, _means=means, **out)


def _recurse(hidden, readout, x: np.ndarray, dps: int | None, means: bool) -> dict:
    """The recursions of :func:`finite_width` (with the mean corrections if
    ``means``): a dict of public arrays named as :class:`FiniteWidth`'s fields."""
    bk = backend(dps)
    xb = bk.asarray(x)
    kernels = layer_kernels(hidden, readout, xb, bk)
    n_in = len(x)
    for l, (k, _) in enumerate(kernels[:-1]):
        diag = np.diagonal(k)
        if not all(v > 0 for v in diag):
            raise DegenerateInputError(f"finite_width: a pre-activation of layer {l + 1} has zero variance (a zero "
                                       "input without bias); its fluctuations are degenerate")
    # identical inputs share their diagonal results; distinct ones form pairs
    rows = [tuple(r) for r in np.asarray(x, float)]
    first_of = {}
    rep = np.array([first_of.setdefault(r, i) for i, r in enumerate(rows)])
    uniq = np.unique(rep)
    pairs = [(i, j) for a, i in enumerate(uniq) for j in uniq[a + 1:]]
    floor = MIN_RELATIVE_DET["float64" if bk.vectorised else "mpmath"]
    zero = 0 * xb[0, 0]

    def entries(k, idx_i, idx_j):
        return np.stack([k[idx_i, idx_i], k[idx_i, idx_j], k[idx_j, idx_j]], axis=1)

    def zeros(*shape):
        a = np.empty(shape, dtype=xb.dtype)
        a[...] = zero
        return a

    # diagonal recursion: n Cov(K_hat, Theta_bar), tau; means: mk, mt, q
    di = np.array(uniq)
    diag_of = {int(i): a for a, i in enumerate(di)}
    cd, taud = zeros(len(di), 2, 2), zeros(len(di))
    mkd, mtd, qd = zeros(len(di)), zeros(len(di)), zeros(len(di))
    # pair recursion (entry ij; its ii, jj entries are the diagonal recursion's)
    pi = np.array([p[0] for p in pairs], dtype=int)
    pj = np.array([p[1] for p in pairs], dtype=int)
    at_i = np.array([diag_of[int(i)] for i in pi], dtype=int)
    at_j = np.array([diag_of[int(j)] for j in pj], dtype=int)
    cp, taup = zeros(len(pairs), 6, 6), zeros(len(pairs), 2)
    mkp, mtp, qp = zeros(len(pairs)), zeros(len(pairs)), zeros(len(pairs), 2, 2)
    for l, (dense, phi) in enumerate(hidden):
        mom = _Moments(phi, bk)
        k, theta = kernels[l]
        nxt = hidden[l + 1][0] if l + 1 < len(hidden) else readout
        sw = bk.scalar(nxt.sigma_w)
        kd = np.array([k[i, i] for i in di], dtype=xb.dtype)
        td = np.array([theta[i, i] for i in di], dtype=xb.dtype)
        ed = diag_expect(mom, kd)
        if pairs:
            kp, tp = entries(k, pi, pj), entries(theta, pi, pj)
            det = kp[:, 0] * kp[:, 2] - kp[:, 1] * kp[:, 1]
            rel = det / (kp[:, 0] * kp[:, 2])
            if not all(r > floor for r in rel):
                worst = int(np.argmin(np.asarray(rel, float)))
                raise DegenerateInputError(
                    f"finite_width: inputs {pi[worst]} and {pj[worst]} are distinct but their layer-{l + 1} "
                    f"pre-activations are nearly collinear (relative determinant {float(rel[worst]):.3g} <= "
                    f"{floor:g}); the 1/n coefficients lose their digits there"
                    + (" (try dps=30)" if dps is None else ""))
            ep = pair_expect(mom, kp[:, 0], kp[:, 1], kp[:, 2], det)
            if means:  # uses layer l's diagonal mk: before the diagonal update below
                gf, gd = pair_gradients(ep, kp[:, 0], kp[:, 1], kp[:, 2], det)
                mk3 = np.stack([mkd[at_i], mkp, mkd[at_j]], axis=1)
                mkp, mtp, qp = _pair_mean_step(ep, kp, tp, cp, mk3, mtp, qp, sw, det, gf, gd)
            cp, taup = _pair_step(mom, kp, tp, cp, taup, sw, det, e=ep)
        if means:
            mkd, mtd, qd = _diag_mean_step(ed, kd, td, cd, mkd, mtd, qd, sw)
        cd, taud = _diag_step(mom, kd, td, cd, taud, sw, e=ed)
    nngp, ntk = kernels[-1]
    shape = (n_in, n_in)
    names = ("nngp_var", "ntk_var", "cumulant4", "head_cov") + (("nngp_mean", "ntk_mean") if means else ())
    out = {name: np.full(shape, zero, dtype=xb.dtype) for name in names}
    pair_of = {(int(i), int(j)): a for a, (i, j) in enumerate(pairs)}
    for i in range(n_in):
        for j in range(n_in):
            ri, rj = sorted((int(rep[i]), int(rep[j])))
            if ri == rj:
                a = diag_of[ri]
                vk, vt = cd[a, 0, 0], cd[a, 1, 1] + 2 * taud[a]
                cij, vij = vk, vk
                mk, mt = mkd[a], mtd[a]
            else:
                a = pair_of[ri, rj]  # every statistic is symmetric in i, j
                vk, vt = cp[a, 1, 1], cp[a, 4, 4] + taup[a, 0] + taup[a, 1]
                cij, vij = cp[a, 0, 2], vk
                mk, mt = mkp[a], mtp[a]
            out["nngp_var"][i, j] = vk
            out["ntk_var"][i, j] = vt
            out["head_cov"][i, j] = cij
            out["cumulant4"][i, j] = cij + 2 * vij
            if means:
                out["nngp_mean"][i, j], out["ntk_mean"][i, j] = mk, mt
    if means:  # per input: n Cov(K_hat, tr M) and q = n E[a^T M a] of the readout (FiniteWidth.target_dependence)
        out["hidden_cov"] = np.array([cd[diag_of[int(r)], 0, 1] - cd[diag_of[int(r)], 0, 0] for r in rep],
                                     dtype=xb.dtype)
        out["readout_q"] = np.array([qd[diag_of[int(r)]] for r in rep], dtype=xb.dtype)
    pub = {name: to_public(v, dps) for name, v in out.items()}
    return dict(nngp=to_public(nngp, dps), ntk=to_public(ntk, dps), **pub)


def width_for(arch, x, rtol: float, prob: float = 0.99, bound: str = "chebyshev") -> int:
    """Smallest width ``n`` at which every entry of the empirical NTK is within
    ``rtol`` of ``Theta`` (``|Theta_hat_ij - Theta_ij| <= rtol |Theta_ij|`` for
    all ``i <= j``) with probability at least ``prob``, at leading order in ``1/n``
    (``Var[Theta_hat_ij] = ntk_var_ij / n``; the ``O(1/n)`` bias of the mean is
    neglected, exactly 0 at one hidden layer).

    ``bound="chebyshev"`` (default, distribution-free): Chebyshev per entry and a
    union bound over the ``m = N(N+1)/2`` distinct entries,
    ``sum_{i<=j} ntk_var_ij / (n rtol^2 Theta_ij^2) <= 1 - prob``.
    ``bound="gaussian"``: ``Theta_hat_ij`` taken Gaussian (its law at large
    ``n``) with the same union bound: ``n >= z^2 max ntk_var_ij / (rtol Theta_ij)^2``,
    ``z = Phi^{-1}(1 - (1 - prob) / (2 m))``; smaller, not a guarantee.
    """
    rtol = check_real(rtol, "rtol")
    prob = check_real(prob, "prob")
    if not rtol > 0:
        raise ParameterError(f"rtol must be > 0, got {rtol}")
    if not 0 < prob < 1:
        raise ParameterError(f"prob must be in (0, 1), got {prob}")
    if bound not in ("chebyshev", "gaussian"):
        raise ParameterError(f"bound must be 'chebyshev' or 'gaussian', got {bound!r}")
    fw = finite_width(arch, x)
    iu = np.triu_indices(len(fw.ntk))
    theta, var = fw.ntk[iu], fw.ntk_var[iu]
    if np.any(theta == 0):
        raise DegenerateInputError("width_for: an entry of Theta is 0, so no relative tolerance can hold there")
    ratio = var / (theta * theta)
    if bound == "chebyshev":
        n = float(np.sum(ratio)) / (rtol * rtol * (1 - prob))
    else:
        from scipy.stats import norm

        z = float(norm.isf((1 - prob) / (2 * len(ratio))))
        n = z * z * float(np.max(ratio)) / (rtol * rtol)
    return max(1, math.ceil(n * (1 - 1e-12)))


# --------------------------------------------------------------------------- #
# Monte Carlo of real networks (the measured side of the predictions)
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Sample:
    """Sample statistics of ``samples`` networks ``arch.init(width, seed=seed + s)``:
    ``n`` times the sample variances of the empirical NTK and of ``K_hat``
    (unbiased, ``ddof=1``) with their standard errors,
    ``se(s^2) = sqrt((m4 - s^4 (S - 3) / (S - 1)) / S)`` (``m4`` the sample
    central fourth moment), times ``n``."""

    width: int
    samples: int
    ntk_var: np.ndarray
    ntk_var_se: np.ndarray
    nngp_var: np.ndarray
    nngp_var_se: np.ndarray


def _readout_input(arch, params, x) -> tuple[np.ndarray, Dense]:
    layers, ps = list(arch.layers), list(params)
    while isinstance(layers[-1], Serial):  # a nested serial ending the architecture
        layers, ps = layers[:-1] + list(layers[-1].layers), ps[:-1] + list(ps[-1])
    a = x
    for layer, p in zip(layers[:-1], ps[:-1]):
        a, _ = layer.apply(p, a)
    return a, layers[-1]


def _var_and_se(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    s = len(values)
    dev = values - values.mean(axis=0)
    var = (dev * dev).sum(axis=0) / (s - 1)
    m4 = (dev**4).mean(axis=0)
    se = np.sqrt(np.maximum(m4 - var * var * (s - 3) / (s - 1), 0.0) / s)
    return width * var, width * se


def sample(arch, x, width: int, samples: int, seed: int = 0) -> Sample:
    """Monte Carlo of real networks (empirical NTK from :meth:`Network.empirical_ntk`)."""
    mlp_layers(arch)
    x = check_inputs(x, "x")
    ntks, nngps = [], []
    for s in range(int(samples)):
        net = arch.init(width=width, seed=seed + s)
        ntks.append(net.empirical_ntk(x))
        a, readout = _readout_input(arch, net.params, x)
        nngps.append(readout.sigma_w**2 / a.shape[1] * (a @ a.T) + readout.sigma_b**2)
    tv, tse = _var_and_se(np.array(ntks), width)
    kv, kse = _var_and_se(np.array(nngps), width)
    return Sample(width, int(samples), tv, tse, kv, kse)


@dataclass(frozen=True)
class MeanSample:
    """Monte Carlo of ``n (E[Theta_hat] - Theta)`` and ``n (E[K_hat] - K)`` over
    ``samples`` networks (:func:`sample_means`), with standard errors."""

    width: int
    samples: int
    ntk_mean: np.ndarray
    ntk_mean_se: np.ndarray
    nngp_mean: np.ndarray
    nngp_mean_se: np.ndarray


def _forward(arch, params, x):
    """Per hidden layer ``l``: the pre-activations ``z^l`` ``(N, n)`` and the
    empirical NNGP ``K_hat^{l+1}`` of the next layer's input; the Dense layers."""
    layers, ps = _flatten(arch), list(params)
    while len(ps) < len(layers):  # nested serials: flatten the parameters alike
        ps = [leaf for p, layer in zip(ps, arch.layers) for leaf in (list(p) if isinstance(layer, Serial) else [p])]
    zs, khats, a = [], [], x
    for i in range(0, len(layers) - 1, 2):
        a, _ = layers[i].apply(ps[i], a)
        zs.append(a)
        a, _ = layers[i + 1].apply(ps[i + 1], a)
        nxt = layers[i + 2]
        khats.append(nxt.sigma_w**2 / a.shape[1] * (a @ a.T) + nxt.sigma_b**2)
    return zs, khats, layers[::2], ps[::2]


def _readout_averaged_ntk(hidden, dense, ws, zs, khats, k1) -> np.ndarray:
    """``E[Theta_hat | hidden layers]``: the empirical NTK averaged over the readout
    weights ``w`` (independent of the rest, ``E[w w^T] = I``). ``Theta_hat =
    sum_l <delta^l(x), delta^l(x')> K_hat^l`` with ``delta^l = B^l w`` (backprop),
    so the average is ``sum_l tr(B^l(x)^T B^l(x')) K_hat^l``; ``B^L =
    diag(s phi'(z^L))``, ``B^l = diag(phi'(z^l)) (s_{l+1} W^{l+1})^T B^{l+1}``."""
    depth = len(hidden)
    n = zs[0].shape[1]
    kl = [k1] + khats
    dphi = [np.asarray(hidden[l][1]._np[1](zs[l])) for l in range(depth)]  # noqa: SLF001 - float64 phi'
    s_out = dense[-1].sigma_w / np.sqrt(n)
    b_top = s_out * dphi[-1]  # (N, n): the diagonal of B^L(x_i)
    out = kl[depth] + (b_top @ b_top.T) * kl[depth - 1]
    mats = None
    for l in range(depth - 2, -1, -1):
        w = dense[l + 1].sigma_w / np.sqrt(n) * ws[l + 1][0]
        mats = (dphi[l][:, :, None] * w.T[None] * b_top[:, None, :] if mats is None
                else dphi[l][:, :, None] * (w.T[None] @ mats))
        out = out + np.einsum("iab,jab->ij", mats, mats) * kl[l]
    return out


def sample_means(arch, x, width: int, samples: int, seed: int = 0) -> MeanSample:
    """Monte Carlo of the ``1/n`` mean corrections of real networks
    ``arch.init(width, seed=seed + s)``, variance-reduced by exact identities:

    * Rao-Blackwell: ``Theta_hat`` is replaced by its average over the readout
      weights (:func:`_readout_averaged_ntk`, equal to ``Network.empirical_ntk``
      once ``w`` is put back: tests), which has the same mean;
    * control variates with mean exactly 0: ``Z^{l+1} = K_hat^{l+1} - sigma_w^2
      F(K_hat^l) - sigma_b^2`` (``F`` the dual map: given the layers below, the
      pre-activations are Gaussian with covariance ``K_hat^l``), every layer and
      distinct entry, coefficients by least squares (bias ``O(1/samples)``).

    The standard error is the residuals' (``ddof`` = 1 + the number of controls)."""
    hidden, readout = mlp_layers(arch)
    x = check_inputs(x, "x")
    bk = backend(None)
    iu = np.triu_indices(len(x))
    first = hidden[0][0]
    k1 = first.sigma_w**2 * (x @ x.T) / x.shape[1] + first.sigma_b**2
    ntks, khats = [], []
    for s in range(int(samples)):
        net = arch.init(width=width, seed=seed + s)
        net.empirical_ntk(x[:1])  # materialises the parameters
        zs, ks, dense, ws = _forward(arch, net.params, x)
        ntks.append(_readout_averaged_ntk(hidden, dense, ws, zs, ks, k1)[iu])
        khats.append(np.stack([k[iu] for k in ks]))
    ntks, khats = np.array(ntks), np.array(khats)
    controls, prev = [], np.broadcast_to(k1, (len(ntks),) + k1.shape)
    for l, (_, phi) in enumerate(hidden):
        nxt = hidden[l + 1][0] if l + 1 < len(hidden) else readout
        d = np.diagonal(prev, axis1=1, axis2=2)
        v, _ = phi.dual(bk, d[:, :, None] + 0 * prev, prev, d[:, None, :] + 0 * prev)
        controls.append(khats[:, l] - (nxt.sigma_w**2 * v[:, iu[0], iu[1]] + nxt.sigma_b**2))
        full = np.zeros_like(prev)
        full[:, iu[0], iu[1]] = khats[:, l]
        full[:, iu[1], iu[0]] = khats[:, l]
        prev = full
    z = np.concatenate(controls, axis=1)  # mean exactly 0 (not its sample mean: that is the point)
    zc = z - z.mean(axis=0)
    dof = len(ntks) - 1 - z.shape[1]

    def adjusted(y, limit):
        beta, *_ = np.linalg.lstsq(zc, y - y.mean(axis=0), rcond=None)
        r = y - z @ beta
        se = np.sqrt(((r - r.mean(axis=0)) ** 2).sum(axis=0) / dof / len(y))
        mean, err = np.zeros(limit.shape), np.zeros(limit.shape)
        mean[iu], err[iu] = width * (r.mean(axis=0) - limit[iu]), width * se
        return mean + np.triu(mean, 1).T, err + np.triu(err, 1).T
    fw_k = layer_kernels(hidden, readout, bk.asarray(x), bk)[-1]
    tm, tse = adjusted(ntks, np.asarray(fw_k[1], float))
    km, kse = adjusted(khats[:, -1], np.asarray(fw_k[0], float))
    return MeanSample(width, int(samples), tm, tse, km, kse)


__all__ = ["COVERED", "FiniteWidth", "MeanSample", "Sample", "UncoveredArchitectureError", "finite_width", "layer_kernels",
           "mlp_layers", "sample", "sample_means", "width_for"]


def _side_fn(side: Side, f: Callable, df: Callable, ones: Callable) -> Callable:
    """``x -> f(x)^a f'(x)^b x^p`` for ``side = (a, b, p)``: one formula for both
    precisions (``ones(x)``: the backend's 1 shaped like ``x``, so the product keeps
    its number type and shape)."""
    a, b, p = side

    def fn(x):
        out = ones(x)
        if a:
            out = out * f(x) ** a
        if b:
            out = out * df(x) ** b
        return out * x**p if p else out
    return fn
