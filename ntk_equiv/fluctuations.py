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

The outputs' statistics follow exactly from ``K_hat`` (the outputs are Gaussian
given the hidden layers, heads independent): ``k4(f_i, f_i, f_j, f_j) =
Cov(K_hat_ii, K_hat_jj) + 2 Var(K_hat_ij)`` and ``Cov(f_a(x_i)^2, f_b(x_j)^2) =
Cov(K_hat_ii, K_hat_jj)`` for heads ``a != b``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
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

    @property
    def nngp_mean(self):
        """``n (E[K_hat] - K)``: exactly 0 at one hidden layer."""
        return self._mean("nngp_mean")

    @property
    def ntk_mean(self):
        """``n (E[Theta_hat] - Theta)``: exactly 0 at one hidden layer."""
        return self._mean("ntk_mean")

    def _mean(self, name: str):
        if self.depth != 1:
            raise NtkEquivError(
                f"{name}: the 1/n corrections of the means are derived for one hidden layer (where they are "
                f"exactly 0); depth {self.depth} is not covered yet (its variances are)")
        n = len(self.nngp) if self.dps is None else self.nngp.rows
        return to_public(np.zeros((n, n)), self.dps) if self.dps is None else to_public(
            np.full((n, n), 0, dtype=object), self.dps)


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


def _pair_step(mom: _Moments, k, theta, c_prev, tau_prev, sw, det):
    """One layer for off-diagonal pairs: ``k``, ``theta`` of shape ``(P, 3)``
    (entries ii, ij, jj of ``K^l``, ``Theta^l``), ``c_prev`` ``(P, 6, 6)``,
    ``tau_prev`` ``(P, 2)`` (``tau_{ij,ij}``, ``tau_{ij,ji}``). Returns
    ``(c, tau)`` of the next layer."""
    k11, k12, k22 = k[:, 0], k[:, 1], k[:, 2]
    cache: dict = {}

    def e(mono):
        mono = (tuple(mono[0]), tuple(mono[1]))
        if mono not in cache:
            cache[mono] = mom.expect(mono[0], mono[1], k11, k12, k22, det)
        return cache[mono]

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


def _diag_step(mom: _Moments, k, theta, c_prev, tau_prev, sw):
    """:func:`_pair_step` for diagonal entries (one input: 1-D expectations):
    ``k, theta`` ``(P,)``, ``c_prev`` ``(P, 2, 2)``, ``tau_prev`` ``(P,)``."""
    kk = k
    ones = kk * 0 + 1
    det = kk * kk  # the v side is the constant 1: any non-degenerate partner will do

    def e(u: Side):
        return mom.expect(u, ONE, kk, kk * 0, kk, det)

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

    def entries(k, idx_i, idx_j):
        return np.stack([k[idx_i, idx_i], k[idx_i, idx_j], k[idx_j, idx_j]], axis=1)

    # diagonal recursion
    di = np.array(uniq)
    cd = np.empty((len(di), 2, 2), dtype=xb.dtype)
    cd[:] = 0 * xb[0, 0]
    taud = np.array([0 * xb[0, 0]] * len(di), dtype=xb.dtype)
    # pair recursion
    pi = np.array([p[0] for p in pairs], dtype=int)
    pj = np.array([p[1] for p in pairs], dtype=int)
    cp = np.empty((len(pairs), 6, 6), dtype=xb.dtype)
    cp[:] = 0 * xb[0, 0]
    taup = np.empty((len(pairs), 2), dtype=xb.dtype)
    taup[:] = 0 * xb[0, 0]
    for l, (dense, phi) in enumerate(hidden):
        mom = _Moments(phi, bk)
        k, theta = kernels[l]
        nxt = hidden[l + 1][0] if l + 1 < len(hidden) else readout
        sw = bk.scalar(nxt.sigma_w)
        cd, taud = _diag_step(mom, np.array([k[i, i] for i in di], dtype=xb.dtype),
                              np.array([theta[i, i] for i in di], dtype=xb.dtype), cd, taud, sw)
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
            cp, taup = _pair_step(mom, kp, tp, cp, taup, sw, det)
    nngp, ntk = kernels[-1]
    shape = (n_in, n_in)
    zero = 0 * xb[0, 0]
    out = {name: np.full(shape, zero, dtype=xb.dtype) for name in ("nngp_var", "ntk_var", "cumulant4", "head_cov")}
    diag_of = {int(i): a for a, i in enumerate(di)}
    pair_of = {(int(i), int(j)): a for a, (i, j) in enumerate(pairs)}
    for i in range(n_in):
        for j in range(n_in):
            ri, rj = int(rep[i]), int(rep[j])
            if ri == rj:
                a = diag_of[ri]
                vk, vt, vkk = cd[a, 0, 0], cd[a, 1, 1] + 2 * taud[a], cd[a, 0, 0]
                cij, vij = vk, vk
            else:
                key, flip = ((ri, rj), False) if (ri, rj) in pair_of else ((rj, ri), True)
                a = pair_of[key]
                vk, vt = cp[a, 1, 1], cp[a, 4, 4] + taup[a, 0] + taup[a, 1]
                cij, vij = cp[a, 0, 2], vk
                del flip  # symmetric in i, j
            out["nngp_var"][i, j] = vk
            out["ntk_var"][i, j] = vt
            out["head_cov"][i, j] = cij
            out["cumulant4"][i, j] = cij + 2 * vij
    pub = {name: to_public(v, dps) for name, v in out.items()}
    return FiniteWidth(nngp=to_public(nngp, dps), ntk=to_public(ntk, dps), depth=len(hidden), dps=dps, **pub)


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


__all__ = ["COVERED", "FiniteWidth", "Sample", "UncoveredArchitectureError", "finite_width", "layer_kernels",
           "mlp_layers", "sample", "width_for"]


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
