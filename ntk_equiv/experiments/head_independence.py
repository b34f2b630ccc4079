"""Prop 5.5 of the paper at finite width: the ``K`` heads of a network with
shared hidden layers are independent at every ``t`` only in the limit.

What shrinks, and how fast (measured here, derived in
:func:`ntk_equiv.symbolic.prove_prop_5_5`):

* the **cross-head coupling** of a trained network: head 1's response to a
  change ``delta`` of head 2's labels, ``f_1^{Y_2 + delta}(x) - f_1^{Y_2}(x)``
  after ``k`` steps of gradient descent. In the limit it is 0 for every ``t``
  (the joint training operator is ``A_t (x) I_K``); at width ``n`` it is driven
  by the cross-head NTK block, whose second moment is ``O(1/n)`` (one hidden
  layer, exactly), so its size is ``O(n^{-1/2})``: a fitted log-log slope
  ``-1/2``;
* the **cross-head covariance over seeds** ``Cov(f_1(x), f_2(x))`` of trained
  outputs is much smaller: it is exactly 0 at initialisation at every width
  (the readout rows are independent and centred) and stays 0 during training
  without labels (flipping head 1's readout row flips ``f_1`` and leaves the
  hidden layers' trajectory unchanged); with labels it is at most second
  order in the cross block (expected ``O(1/n)``). It is measured as
  z-scores against 0, which it is within its Monte-Carlo error at every
  width tried (64-2048): the ``n^{-1/2}`` rate belongs to the coupling, not to
  this covariance.

Normalisation: the response of head 2 itself in the limit,
``Theta_xX A_k delta`` (analytic NTK), so the coupling is a relative size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import formulas
from ..precision import F64
from .inputs import child_seed, condition_number, sphere_inputs, spread_inputs
from .stats import fit_rate


@dataclass
class HeadIndependence:
    """Per width: ``coupling[w]`` (one relative rms cross-head response per
    seed) and ``cross_z[w]`` (z-scores of the seed-average of
    ``(f_1 - mean)(f_2 - mean)`` against 0, per test input); the fitted
    log-log slope of the rms coupling with its standard error; ``cond`` =
    condition number of the analytic ``Theta_XX``."""

    widths: tuple
    heads: int
    seeds: int
    steps: int
    cond: float
    coupling: dict = field(default_factory=dict)
    cross_z: dict = field(default_factory=dict)
    slope: float = math.nan
    slope_se: float = math.nan
    rms: list = field(default_factory=list)


def head_independence(arch, widths, seeds: int, heads: int = 2, steps: int = 30, n_train: int = 4, n_test: int = 3,
                      d: int = 2, seed: int = 0) -> HeadIndependence:
    """Train ``seeds`` networks per width with ``heads`` outputs twice from the
    same initialisation: on ``Y`` for every head, and with head 2's labels
    moved by ``delta`` (a fixed random vector); lr ``0.5 / lambda_max(Theta_XX)``
    (a factor-2 margin for the multi-head empirical NTK), ``steps`` steps."""
    rng = np.random.default_rng(seed)
    X, x = spread_inputs(rng, n_train, d), sphere_inputs(rng, n_test, d)
    Y = np.sin(X.sum(axis=1, keepdims=True))
    delta = rng.standard_normal((n_train, 1))
    z = np.vstack([x, X])
    theta = arch.kernel(z).ntk
    T_xX, T_XX = theta[:n_test, n_test:], theta[n_test:, n_test:]
    lr = 0.5 / float(np.linalg.eigvalsh(T_XX)[-1])
    A = formulas.train_operator(T_XX, F64, lr=lr, steps=steps)
    scale = float(np.sqrt(np.mean((T_xX @ A @ delta) ** 2)))  # head 2's own response, in the limit
    Ya = np.repeat(Y, heads, axis=1)
    Yb = Ya.copy()
    Yb[:, 1:2] += delta
    out = HeadIndependence(tuple(widths), heads, seeds, steps, condition_number(T_XX))
    for w in widths:
        resp, fa = [], []
        for s in range(seeds):
            net = arch.init(w, out_dim=heads, seed=child_seed(seed, w, s), in_dim=d)
            a = net.train(X, Ya, lr=lr, steps=steps, check_stability=False).apply(x)
            b = net.train(X, Yb, lr=lr, steps=steps, check_stability=False).apply(x)
            resp.append(float(np.sqrt(np.mean((b[:, 0] - a[:, 0]) ** 2))) / scale)
            fa.append(a)
        out.coupling[w] = np.array(resp)
        f = np.array(fa)                               # (seeds, n_test, heads)
        c = f - f.mean(axis=0)
        prod = c[:, :, 0] * c[:, :, 1]
        out.cross_z[w] = prod.mean(axis=0) / (prod.std(axis=0, ddof=1) / math.sqrt(seeds))
    fit = fit_rate(np.array(widths, float), np.array([out.coupling[w] for w in widths]))
    out.slope, out.slope_se, out.rms = fit.slope, fit.stderr, fit.rms.tolist()
    return out


# --------------------------------------------------------------------------- #
# Prop 5.5 with labels: the O(1/n) coupling and the t = 0 dependence, batched
# --------------------------------------------------------------------------- #
def _act(name: str):
    """``(phi, phi')`` of a one-hidden-layer network's activation (erf or relu)."""
    from scipy.special import erf

    if name == "erf":
        return erf, lambda h: 2 / np.sqrt(np.pi) * np.exp(-h * h)
    if name == "relu":
        return (lambda h: np.maximum(h, 0.0)), (lambda h: (h > 0).astype(float))
    raise ValueError(f"activation {name!r}: erf or relu")


def one_hidden_heads(W, b, V, c, z, sigma_w: float, sigma_b: float, act: str, ntk: bool = True):
    """Outputs and joint empirical NTK of a batch of one-hidden-layer networks
    with ``K`` heads sharing the hidden layer (NTK parameterisation, the
    library's :func:`~ntk_equiv.architecture.mlp` layout: ``W`` (S, n, d), ``b`` (S, n),
    readout ``V`` (S, K, n), ``c`` (S, K)), written out:

    ``f_m(z) = sigma_w/sqrt(n) sum_j V_mj phi(h_j(z)) + sigma_b c_m``,
    ``h_j(z) = sigma_w/sqrt(d) W_j . z + sigma_b b_j``,
    ``Theta^_mm'(z, z') = delta_mm' K^(z, z') + sigma_w^2/n sum_j V_mj V_m'j
    phi'(h_j(z)) phi'(h_j(z')) K1(z, z')`` with ``K^ = sigma_w^2/n sum_j
    phi(h_j) phi(h_j') + sigma_b^2`` and ``K1 = sigma_w^2 z.z'/d + sigma_b^2``.

    Returns ``f`` (S, P, K) and ``Theta^`` (S, P K, P K) (row ``p K + m``, as
    :meth:`ntk_equiv.network.Network.empirical_ntk` with ``full=True``; ``None``
    with ``ntk=False``)."""
    phi, dphi = _act(act)
    S, n, d = W.shape
    K = V.shape[1]
    h = sigma_w / math.sqrt(d) * np.einsum("snd,pd->snp", W, z) + sigma_b * b[:, :, None]
    a, r = phi(h), dphi(h)
    f = sigma_w / math.sqrt(n) * np.einsum("skn,snp->spk", V, a) + sigma_b * c[:, None, :]
    if not ntk:
        return f, None
    k_hat = sigma_w**2 / n * np.einsum("snp,snq->spq", a, a) + sigma_b**2
    k1 = sigma_w**2 * (z @ z.T) / d + sigma_b**2
    P = len(z)
    # rows (p, m): phi'(h_j(z_p)) V_mj, so the hidden part is one batched Gram
    vr = (r.transpose(0, 2, 1)[:, :, None, :] * V[:, None, :, :]).reshape(S, P * K, n)
    gram = (vr @ vr.transpose(0, 2, 1)).reshape(S, P, K, P, K)
    hid = sigma_w**2 / n * gram * k1[None, :, None, :, None]
    ro = k_hat[:, :, None, :, None] * np.eye(K)[None, None, :, None, :]
    return f, (hid + ro).reshape(S, P * K, P * K)


@dataclass
class SquaredOutputs:
    """Per width ``n``: ``cov[n]`` the ``(P, P)`` matrix ``Cov(f_a(x_i)^2, f_b(x_j)^2)``
    of two distinct heads at initialisation (averaged over the ``K (K - 1)`` ordered
    pairs of heads of each network) with its Monte-Carlo standard error ``se[n]``
    (from the per-network averages, i.i.d. over networks)."""

    widths: tuple
    seeds: int
    heads: int
    cov: dict = field(default_factory=dict)
    se: dict = field(default_factory=dict)


def squared_outputs(act: str, sigma_w: float, sigma_b: float, x: np.ndarray, widths, seeds: int, heads: int = 16,
                    seed: int = 0, chunk: int = 4000) -> SquaredOutputs:
    """Prop 5.5's dependence at ``t = 0``, measured: ``heads`` heads of ``seeds``
    one-hidden-layer networks per width (batched, :func:`one_hidden_heads`'s
    parameterisation), ``Cov(f_a(x_i)^2, f_b(x_j)^2)`` for ``a != b``. Per network
    ``T_ij = sum_{a != b} d_a(x_i) d_b(x_j) / (K (K - 1))`` with ``d = f^2 -`` its
    grand mean: the ``K (K - 1)`` pairs average out most of the readout noise."""
    d = x.shape[1]
    out = SquaredOutputs(tuple(widths), int(seeds), int(heads))
    for n in widths:
        g = np.random.default_rng(child_seed(seed, n, 55))
        sq = []
        for start in range(0, seeds, chunk):
            s = min(chunk, seeds - start)
            W, b = g.standard_normal((s, n, d)), g.standard_normal((s, n))
            V, c = g.standard_normal((s, heads, n)), g.standard_normal((s, heads))
            f, _ = one_hidden_heads(W, b, V, c, x, sigma_w, sigma_b, act, ntk=False)
            sq.append(f**2)                                  # (s, P, K)
        sq = np.concatenate(sq)
        dev = sq - sq.mean(axis=(0, 2), keepdims=True)
        tot = dev.sum(axis=2)                                # (S, P)
        t = (tot[:, :, None] * tot[:, None, :] - np.einsum("spk,sqk->spq", dev, dev)) / (heads * (heads - 1))
        out.cov[n], out.se[n] = _mean_se(t)
    return out


def params_of(net):
    """``(W, b, V, c)`` of a library one-hidden-layer network, batch of one."""
    (W, b), _, (V, c) = net.params0
    return W[None], b[None], V[None], c[None]


def converged_heads(f, theta, n_test: int, Y, t: float):
    """The linearised flow of the joint heads at time ``t`` (gradient flow, rate
    1; ``t = inf``: converged), batched: ``f_t(x) = f_0(x) + Theta^_xX A_t
    (Y - f_0(X))`` with ``A_t = Theta^_XX^{-1} (I - exp(-t Theta^_XX))``
    (eigendecomposition). ``f`` (S, P, K), ``theta`` (S, PK, PK); the first
    ``n_test`` points are the test inputs. Returns (S, n_test, K)."""
    S, P, K = f.shape
    m = n_test * K
    flat = f.reshape(S, P * K)
    if t == 0:
        return f[:, :n_test]
    lam, U = np.linalg.eigh(theta[:, m:, m:])
    g = (1.0 / lam) if math.isinf(t) else -np.expm1(-t * lam) / lam
    resid = np.repeat(np.asarray(Y, float).reshape(-1, 1), K, axis=1).ravel()[None] - flat[:, m:]
    coef = np.einsum("sij,sj->si", U, g * np.einsum("sji,sj->si", U, resid))
    out = flat[:, :m] + np.einsum("sij,sj->si", theta[:, :m, m:], coef)
    return out.reshape(S, n_test, K)


@dataclass
class LabelCoupling:
    """Per width ``n``: ``cov[n]`` = ``Cov(f_1(x), f_2(x))`` of the two heads after
    training on the same labels (per test input) with its Monte-Carlo standard
    error ``cov_se[n]``; ``sq[n]`` = ``Cov(f_1(x)^2, f_2(x)^2)`` at ``t = 0`` with
    ``sq_se[n]``, and the exact ``var_k[n] = Var K^(x, x) = v / n``;
    ``anchor`` = max |batched - library| of one network (outputs, empirical NTK,
    trained linearised outputs)."""

    widths: tuple
    seeds: int
    t: float
    cond: float
    cov: dict = field(default_factory=dict)
    cov_se: dict = field(default_factory=dict)
    sq: dict = field(default_factory=dict)
    sq_se: dict = field(default_factory=dict)
    var_k: dict = field(default_factory=dict)
    anchor: float = math.nan


def _mean_se(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return v.mean(axis=0), v.std(axis=0, ddof=1) / math.sqrt(len(v))


def var_k_hat(act: str, sigma_w: float, sigma_b: float, x_sq_over_d: float, n: int) -> float:
    """``Var K^(x, x) = sigma_w^4 (E phi(u)^4 - (E phi(u)^2)^2) / n`` exactly for one
    hidden layer (``u ~ N(0, sigma_w^2 |x|^2/d + sigma_b^2)``; 200-node Gauss-Hermite)."""
    phi, _ = _act(act)
    t, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    u = math.sqrt(sigma_w**2 * x_sq_over_d + sigma_b**2) * t
    m2, m4 = float(w @ phi(u) ** 2), float(w @ phi(u) ** 4)
    return sigma_w**4 * (m4 - m2**2) / n


def label_coupling(act: str, sigma_w: float, sigma_b: float, widths, seeds: int, t: float = math.inf,
                   n_train: int = 3, n_test: int = 2, d: int = 2, seed: int = 0, anchor: bool = True) -> LabelCoupling:
    """Two heads of a one-hidden-layer network, linearised, trained by gradient
    flow to time ``t`` on the **same** labels ``Y = sin(sum x)``, ``seeds``
    networks per width (batched, :func:`one_hidden_heads`): ``Cov(f_1, f_2)``
    over seeds. Flipping one head's readout maps training on ``Y`` to training
    on ``-Y``, so this covariance is 0 only for ``Y = 0``: with labels it is an
    ``O(1/n)`` coupling. At ``t = 0`` the heads are uncorrelated but dependent:
    ``Cov(f_1^2, f_2^2) = Var K^ > 0`` (given the hidden layer the heads are
    i.i.d. ``N(0, K^)``).

    ``anchor``: one library network (:meth:`~ntk_equiv.network.Network.linearize`,
    trained by :meth:`~ntk_equiv.network.Network.train` to ``exp(-28)`` of its
    train residual) against the batched formulas with its own parameters."""
    from ..architecture import mlp

    rng = np.random.default_rng(seed)
    X, x = spread_inputs(rng, n_train, d), sphere_inputs(rng, n_test, d)
    Y = np.sin(X.sum(axis=1, keepdims=True))
    z = np.vstack([x, X])
    arch = mlp(1, act, sigma_w, sigma_b)
    out = LabelCoupling(tuple(widths), seeds, t, condition_number(arch.kernel(X).ntk))
    for n in widths:
        g = np.random.default_rng(child_seed(seed, n))
        W, b = g.standard_normal((seeds, n, d)), g.standard_normal((seeds, n))
        V, c = g.standard_normal((seeds, 2, n)), g.standard_normal((seeds, 2))
        f, theta = one_hidden_heads(W, b, V, c, z, sigma_w, sigma_b, act)
        ft = converged_heads(f, theta, n_test, Y, t)
        ft = ft - ft.mean(axis=0)
        out.cov[n], out.cov_se[n] = _mean_se(ft[:, :, 0] * ft[:, :, 1])
        f0 = f[:, :n_test]
        s0 = f0**2 - (f0**2).mean(axis=0)
        out.sq[n], out.sq_se[n] = _mean_se(s0[:, :, 0] * s0[:, :, 1])
        out.var_k[n] = np.array([var_k_hat(act, sigma_w, sigma_b, float(v @ v) / d, n) for v in x])
    if anchor:
        net = arch.init(widths[0], out_dim=2, seed=child_seed(seed, 0), in_dim=d)
        f, theta = one_hidden_heads(*params_of(net), z, sigma_w, sigma_b, act)
        lam = np.linalg.eigvalsh(theta[0, 2 * n_test:, 2 * n_test:])
        steps = int(math.ceil(28 * lam[-1] / lam[0]))
        trained = net.linearize().train(X, np.repeat(Y, 2, axis=1), lr=1.0 / lam[-1], steps=steps).apply(x)
        out.anchor = max(float(np.max(np.abs(f[0] - net.apply(z)))),
                         float(np.max(np.abs(theta[0] - net.empirical_ntk(z, full=True)))),
                         float(np.max(np.abs(converged_heads(f, theta, n_test, Y, math.inf)[0] - trained))))
    return out
