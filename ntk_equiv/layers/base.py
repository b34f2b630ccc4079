"""Layers in the spirit of neural-tangents' ``stax``: each layer knows how to
transform the kernels (NNGP ``K``, NTK ``Theta``; docs/theory.md C1) *and* how to run
at finite width (forward, backward, forward-mode tangents and its share of
the empirical NTK). An architecture is a composition of layers, so a new
architecture is a new layer, not a new code path.

NTK parameterisation throughout: a Dense layer with input ``a`` of width
``n_in`` computes ``sigma_w / sqrt(n_in) W a + sigma_b b`` with ``W, b``
i.i.d. N(0, 1), exactly ``stax.Dense(n, W_std=sigma_w, b_std=sigma_b)``.

Finite-width parameters are nested lists of arrays mirroring the layers.
Cotangents ``g`` may carry extra axes between the batch and the feature axis
(``(N, M, n)``: one cotangent per output head), which is how the empirical NTK
is built without ever forming a Jacobian.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import kernels, signals
from .activations import Activation, activation as _activation
from .composite import compose
from .errors import ArchitectureError, ParameterError, ShapeError
from .signals import Kind, Signal
from .validation import check_positive_int, check_scale
from .kernels import Kernel, PairState


def _check_sigma(name: str, value: Any) -> float:
    return check_scale(value, name)


class Layer:
    """Base class: a kernel transform plus a finite-width function."""

    # ---- infinite width ------------------------------------------------ #
    def kernel_fn(self, state: PairState, bk) -> PairState:  # pragma: no cover - abstract
        raise NotImplementedError

    def kernel(self, x1, x2=None, dps: int | None = None) -> Kernel:
        """``K(x1, x2)`` and ``Theta(x1, x2)`` (``x2=None``: ``x2 = x1``, symmetric).

        float64 ndarrays, or ``mpmath.matrix`` correct to ``dps`` digits.
        Raises :class:`~ntk_equiv.errors.ArchitectureError`, before any
        numerical work, when the architecture's kernel is not computable
        (:meth:`check_architecture`).
        """
        self.check_architecture()
        prefix, rest = data_prefix(self)
        run = Serial(*rest).kernel_fn if rest else _unchanged
        return kernels.evaluate(run, x1, x2, dps, full=any(layer.needs_full_spatial for layer in rest),
                                prefix=_apply_all(prefix) if prefix else None)

    def check_architecture(self) -> Signal:
        """The signal of the output given the raw input (:mod:`ntk_equiv.signals`),
        or :class:`~ntk_equiv.errors.ArchitectureError` naming the first layer
        whose kernel map does not apply to what it receives."""
        return self.signal_out(signals.DATA)

    def apply_to_data(self, z: np.ndarray, bk) -> np.ndarray:
        """This layer on the raw inputs ``z`` (one row per point), exactly: the
        data are deterministic, so a parameter-free layer before the first Dense
        or Conv acts on them, not on a Gaussian (the *data prefix*). The default
        is :meth:`apply` in float64; at ``dps=`` a layer must override it."""
        if bk.name == "float64":
            return self.apply([], z)[0]
        raise signals.refuse(self, "it acts on the raw input, and it has no high-precision version of apply "
                             "(apply_to_data) for dps=", "compute in float64, or override apply_to_data")

    #: Whether :meth:`kernel_fn` accepts a state carrying a pending activation
    #: (an ``ELEMENTWISE`` signal); otherwise the engine applies the activation's
    #: dual maps first and the layer sees an ``OTHER`` signal.
    takes_pending: bool = False

    def signal_out(self, signal: Signal) -> Signal:
        """What this layer yields from an input ``signal`` (kinds only, no
        numbers), or :class:`~ntk_equiv.errors.ArchitectureError` if its kernel
        map does not apply to it.

        The default, for a layer that does not declare it, is conservative: a
        Gaussian input only, and an output that is not Gaussian (``OTHER``), so
        no activation may follow it without a Dense or Conv in between."""
        if signal.kind is not Kind.GAUSSIAN or signal.flattened:
            raise signals.refuse(
                self, f"its input is {signal.describe}, and a layer that does not override signal_out() is assumed "
                "to need a Gaussian input (not after Flatten)", f"{signals.INSERT_DENSE}, or override signal_out()")
        return signal.but(kind=Kind.OTHER, centred=False, origin=f"the output of {self!r}")

    @property
    def needs_full_spatial(self) -> bool:
        """Whether this layer reads kernel entries between different spatial
        positions (pooling does; convolutions, activations, Flatten do not), so
        the state must carry the full spatial covariance, not its diagonal."""
        return False

    # ---- finite width --------------------------------------------------- #
    def init_params(self, rng: np.random.Generator, in_shape: tuple, width: int, out_dim: int):
        """``(params, out_shape)`` for one example of shape ``in_shape`` (no batch
        axis; channels last). Linear layers produce ``out_dim`` channels: the
        architecture passes ``width``, except to its readout, which gets the
        number of outputs."""
        return [], tuple(in_shape)

    def apply(self, params, x: np.ndarray):
        """Forward pass: ``(y, cache)``."""
        raise NotImplementedError  # pragma: no cover

    def vjp(self, params, cache, g: np.ndarray):
        """Backward pass: ``(g_x, g_params)``, parameter cotangents summed over
        every axis but the feature axis."""
        raise NotImplementedError  # pragma: no cover

    def jvp(self, params, cache, dx, dparams) -> np.ndarray:
        """Forward-mode tangent of the output; ``dx=None`` means zero."""
        raise NotImplementedError  # pragma: no cover

    def example_grads(self, params, cache, g) -> list:
        """Per-example, per-head parameter cotangents: for ``g`` of shape
        ``(n, M, *out_shape)``, one array ``(n, M, *leaf.shape)`` per parameter
        leaf (``[]`` for a layer without parameters)."""
        return []

    def ntk_gram(self, params, c1, g1, c2, g2, full: bool):
        """This layer's parameters' share of the empirical NTK.

        ``g1`` of shape ``(n1, M, *out_shape)``: one cotangent per head. Returns
        ``(g1_in, g2_in, gram)`` with ``gram[i, j] = sum_m <dg_m(x_i), dg_m(x_j)>``
        (or ``(n1, M, n2, M)`` with ``full=True``). The default takes inner
        products of :meth:`example_grads`; a layer may override it with a
        structured formula that never forms them (Dense does)."""
        same = _same(c1, g1, c2, g2)
        h1 = self.vjp(params, c1, g1)[0]
        h2 = h1 if same else self.vjp(params, c2, g2)[0]
        e1 = self.example_grads(params, c1, g1)
        if not e1:
            return h1, h2, 0.0
        e2 = e1 if same else self.example_grads(params, c2, g2)
        (n1, m), n2 = g1.shape[:2], g2.shape[0]
        gram = 0.0
        for u, v in zip(e1, e2):
            if full:
                gram = gram + (u.reshape(n1 * m, -1) @ v.reshape(n2 * m, -1).T).reshape(n1, m, n2, m)
            else:
                gram = gram + u.reshape(n1, -1) @ v.reshape(n2, -1).T
        return h1, h2, gram

    def ntk_lambda_max(self, params, cache) -> float:
        """Largest eigenvalue of this layer's parameters' share of the empirical
        NTK on the batch of ``cache`` (every input and output: ``J_l J_l^T``
        with ``J_l`` the Jacobian w.r.t. this layer's parameters alone), i.e.
        the curvature that bounds gradient descent training only this layer
        (stable iff ``lr < 2 / lambda_max``). The default builds the full
        ``(N P, N P)`` Gram (``P`` outputs per example) with :meth:`ntk_gram`;
        a layer may override it with a structured formula (Dense does)."""
        y, _ = self.apply(params, cache)
        n, out = len(y), tuple(y.shape[1:])
        p = int(np.prod(out))
        g = np.array(np.broadcast_to(np.eye(p).reshape((p,) + out), (n, p) + out))
        gram = self.ntk_gram(params, cache, g, cache, g, True)[2]
        if np.isscalar(gram):  # no parameters: nothing is trained
            return 0.0
        return float(np.linalg.eigvalsh(np.reshape(gram, (n * p, n * p)))[-1])

    @property
    def ends_with_dense(self) -> bool:
        return False


class Dense(Layer):
    """Fully connected layer, NTK parameterisation.

    Kernels: ``K_out = sigma_w^2 K_in + sigma_b^2``,
    ``Theta_out = sigma_w^2 Theta_in + K_out``.
    """

    def __init__(self, sigma_w: float = 1.0, sigma_b: float = 0.0):
        self.sigma_w = _check_sigma("sigma_w", sigma_w)
        self.sigma_b = _check_sigma("sigma_b", sigma_b)

    def __repr__(self):
        return f"Dense(sigma_w={self.sigma_w}, sigma_b={self.sigma_b})"

    @property
    def ends_with_dense(self) -> bool:
        return True

    def signal_out(self, signal):
        # a sum over many channels with independent zero-mean weights: Gaussian from any input
        # with finite second moments (central limit theorem over the fan-in)
        return signals.GAUSSIAN

    def kernel_fn(self, state, bk):
        state = state.collapsed(bk)  # after Flatten: the fan-in averages the positions
        sw, sb = bk.scalar(self.sigma_w), bk.scalar(self.sigma_b)
        # K_out = sigma_w^2 K_in + sigma_b^2 (the bias is a constant kernel), gaps without cancellation
        nngp, lo, hi = kernels.affine_kernel(bk, state, sw, sb)
        ntk = state.ntk * (sw * sw)
        ntk += nngp
        return state.replace(nngp, ntk, lo, hi)

    def init_params(self, rng, in_shape, width, out_dim):
        w = rng.standard_normal((out_dim, in_shape[-1]))
        b = rng.standard_normal(out_dim)
        return [w, b], tuple(in_shape[:-1]) + (out_dim,)

    def _scale(self, w):
        return self.sigma_w / math.sqrt(w.shape[1])

    def apply(self, params, x):
        w, b = params
        if x.shape[-1] != w.shape[1]:
            raise ShapeError(f"Dense layer expects {w.shape[1]} input features, got {x.shape[-1]}")
        return self._scale(w) * (x @ w.T) + self.sigma_b * b, x

    def vjp(self, params, x, g):
        w, _ = params
        s = self._scale(w)
        gf, xf = g.reshape(-1, g.shape[-1]), np.broadcast_to(x[:, None] if g.ndim > x.ndim else x,
                                                            g.shape[:-1] + x.shape[-1:]).reshape(-1, x.shape[-1])
        return s * (g @ w), [(s * gf).T @ xf, self.sigma_b * gf.sum(axis=0)]  # scale the small factor

    def jvp(self, params, x, dx, dparams):
        w, _ = params
        dw, db = dparams
        s = self._scale(w)
        out = s * (x @ dw.T) + self.sigma_b * db
        if dx is not None:
            out = out + s * (dx @ w.T)
        return out

    def example_grads(self, params, x, g):
        # the weights are shared over spatial positions: sum over them
        w, _ = params
        n, m = g.shape[:2]
        gf, xf = g.reshape(n, m, -1, g.shape[-1]), x.reshape(n, -1, x.shape[-1])
        return [self._scale(w) * np.einsum("nmpc,npd->nmcd", gf, xf), self.sigma_b * gf.sum(axis=2)]

    def ntk_gram(self, params, x1, g1, x2, g2, full):
        if x1.ndim > 2:  # on the channel axis of a spatial input
            return super().ntk_gram(params, x1, g1, x2, g2, full)
        w, _ = params
        s = self._scale(w)
        feat = (s * s) * (x1 @ x2.T) + self.sigma_b**2  # <d h / d(W,b) at x1, at x2> per unit
        if full:
            gg = np.einsum("imk,jnk->imjn", g1, g2)
            gram = gg * feat[:, None, :, None]
        else:
            gram = (g1.reshape(len(g1), -1) @ g2.reshape(len(g2), -1).T) * feat
        h1 = s * (g1 @ w)
        return h1, (h1 if _same(x1, g1, x2, g2) else s * (g2 @ w)), gram


    def ntk_lambda_max(self, params, x) -> float:
        """On ``(N, n)`` inputs ``a``: the Gram is ``(sigma_w^2 / n a a^T +
        sigma_b^2) (x) I_M`` (each output has its own row of ``W``, on the same
        features), so ``lambda_max`` is that of the ``(N, N)`` factor."""
        if x.ndim > 2:  # on the channel axis of a spatial input: no Kronecker factor over positions
            return super().ntk_lambda_max(params, x)
        s = self._scale(params[0])
        return float(np.linalg.eigvalsh((s * s) * (x @ x.T) + self.sigma_b**2)[-1])


def _same(x1, g1, x2, g2) -> bool:
    # the symmetric empirical NTK passes the same arrays twice: backpropagate once
    return x1 is x2 and g1 is g2


class Act(Layer):
    """Elementwise activation ``phi`` (a name, an expression in ``x`` or an
    :class:`~ntk_equiv.activations.Activation`).

    Kernels: ``K_out = E[phi(u) phi(v)]``, ``Theta_out = E[phi'(u) phi'(v)] Theta_in``.
    """

    def __init__(self, phi: str | Activation = "relu", **params):
        self.phi = _activation(phi, **params)

    def __repr__(self):
        return f"Act({self.phi.name!r})"

    takes_pending = True

    def signal_out(self, signal):
        if signal.kind is Kind.GAUSSIAN:  # after Flatten too: per position
            return signal.but(kind=Kind.ELEMENTWISE, centred=False, origin=f"the output of {self!r}", phi=self.phi)
        if signal.kind is Kind.DATA:
            return signal  # phi(x) of the data, exactly (the data prefix)
        if signal.kind is Kind.ELEMENTWISE:
            # psi(phi(u)): one activation of the same Gaussian pre-activation (ntk_equiv.composite).
            # Only composites with closed-form dual maps for now: the expression machinery computes
            # the others (composite.compose) but takes minutes per kernel at dps= when they have
            # kinks, and cannot split at kinks it cannot locate (relu(cos))
            phi = compose(self.phi, signal.phi) if signal.phi is not None else None
            if phi is not None and phi.closed_form is not None:
                return signal.but(origin=f"{signal.origin or 'an activation'} then {self!r}", phi=phi)
            raise signals.refuse(
                self, f"its input is {signal.describe}, not Gaussian, and {self.phi.name} o "
                f"{getattr(signal.phi, 'name', 'it')} has no closed-form dual maps (act-after-act is fused "
                "only through the identities of ntk_equiv.composite)", signals.INSERT_DENSE)
        why = (f"its input is {signal.describe}: not a function of one Gaussian pre-activation per point, "
               "so no dual map gives its kernel")
        raise signals.refuse(self, why, signals.INSERT_DENSE)

    def kernel_fn(self, state, bk):
        # pending, not applied: the next layer fuses with it (an activation, LayerNorm) or
        # the engine applies its dual maps first (PairState.materialised)
        return state.with_pending(self.phi if state.pending is None else compose(self.phi, state.pending))

    def apply(self, params, x):
        return self.phi(x), x

    def apply_to_data(self, z, bk):
        if bk.name == "float64":
            return self.phi(z)
        f = self.phi.mp_functions(bk.ctx)[0]  # phi in bk's own context
        return np.frompyfunc(lambda v: bk.ctx.convert(f(v)), 1, 1)(z)

    def vjp(self, params, x, g):
        d = self.phi.derivative(x)
        return g * (d[:, None] if g.ndim > x.ndim else d), []

    def jvp(self, params, x, dx, dparams):
        return None if dx is None else self.phi.derivative(x) * dx

    def ntk_gram(self, params, x1, g1, x2, g2, full):
        h1 = g1 * self.phi.derivative(x1)[:, None]
        return h1, (h1 if _same(x1, g1, x2, g2) else g2 * self.phi.derivative(x2)[:, None]), 0.0


def Relu() -> Act:  # noqa: N802 - stax-style constructor
    return Act("relu")


def LeakyRelu(alpha: float = 0.01) -> Act:  # noqa: N802
    return Act("leaky_relu", alpha=alpha)


def Erf() -> Act:  # noqa: N802
    return Act("erf")


def Abs() -> Act:  # noqa: N802
    return Act("abs")


def Sign() -> Act:  # noqa: N802
    return Act("sign")


def Identity() -> Act:  # noqa: N802
    return Act("identity")


def Sin() -> Act:  # noqa: N802
    return Act("sin")


def Cos() -> Act:  # noqa: N802
    return Act("cos")


# ---- constructors of the other catalogue activations (ntk_equiv.activations.CATALOGUE; one per record,
# the tests check that every record has its constructor here and exported by ntk_equiv) ----
def Gelu() -> Act:  # noqa: N802
    """``x Phi(x)`` (exact GELU; closed-form dual maps)."""
    return Act("gelu")


def Tanh() -> Act:  # noqa: N802
    return Act("tanh")


def Sigmoid() -> Act:  # noqa: N802
    """``1 / (1 + e^{-x})``."""
    return Act("sigmoid")


def Softplus() -> Act:  # noqa: N802
    """``log(1 + e^x)``."""
    return Act("softplus")


def Silu() -> Act:  # noqa: N802
    """``x sigmoid(x)`` (swish)."""
    return Act("silu")


def Elu(alpha: float = 1.0) -> Act:  # noqa: N802
    """``x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise."""
    return Act("elu", alpha=alpha)


def Relu6() -> Act:  # noqa: N802
    """``min(max(x, 0), 6)`` (kinks at 0 and 6: quadrature)."""
    return Act("relu6")


def HardTanh() -> Act:  # noqa: N802
    """``min(max(x, -1), 1)`` (kinks at -1 and 1: quadrature)."""
    return Act("hard_tanh")


class Serial(Layer):
    """Composition ``layers[-1] o ... o layers[0]``."""

    def __init__(self, *layers: Layer):
        if not layers:
            raise ParameterError("serial() needs at least one layer")
        for layer in layers:
            if not isinstance(layer, Layer):
                raise ParameterError(f"serial() takes layers, got {type(layer).__name__} {layer!r}"[:200])
            if type(layer).kernel_fn is Layer.kernel_fn:
                raise ParameterError(
                    f"{type(layer).__name__} does not implement kernel_fn: ne.Layer is a base class; use a "
                    "concrete layer (Dense, Relu, ...) or subclass it with kernel_fn, init_params, apply, vjp, "
                    "jvp and ntk_gram")
        self.layers = tuple(layers)

    def __repr__(self):
        return "serial(" + ", ".join(map(repr, self.layers)) + ")"

    @property
    def ends_with_dense(self) -> bool:
        return self.layers[-1].ends_with_dense

    @property
    def readout_index(self) -> int:
        """Index of the last layer, which must be Dense to be a readout."""
        if not isinstance(self.layers[-1], Dense):
            raise ParameterError(f"the architecture must end with a Dense readout layer: {self!r}")
        return len(self.layers) - 1

    @property
    def needs_full_spatial(self) -> bool:
        return any(layer.needs_full_spatial for layer in self.layers)

    takes_pending = True  # each of its layers decides

    def apply_to_data(self, z, bk):
        return _apply_all(self.layers)(z, bk)

    def signal_out(self, signal):
        for i, layer in enumerate(self.layers):
            seen = signal if layer.takes_pending else signals.materialised(signal)
            try:
                signal = layer.signal_out(seen)
            except ArchitectureError as exc:
                raise ArchitectureError(f"layer {i + 1} of {len(self.layers)}, {exc}") from None
        return signal

    def kernel_fn(self, state, bk):
        for layer in self.layers:
            if state.pending is not None and not layer.takes_pending:
                state = state.materialised(bk)
            state = layer.kernel_fn(state, bk)
        return state

    def init_params(self, rng, in_shape, width, out_dim):
        last_dense = max((i for i, l in enumerate(self.layers) if l.ends_with_dense or isinstance(l, Dense)),
                         default=-1)
        params, shape = [], tuple(in_shape)
        for i, layer in enumerate(self.layers):
            p, shape = layer.init_params(rng, shape, width, out_dim if i == last_dense else width)
            params.append(p)
        return params, shape

    def apply(self, params, x):
        caches = []
        for layer, p in zip(self.layers, params):
            x, c = layer.apply(p, x)
            caches.append(c)
        return x, caches

    def vjp(self, params, caches, g):
        grads = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            g, grads[i] = self.layers[i].vjp(params[i], caches[i], g)
        return g, grads

    def jvp(self, params, caches, dx, dparams):
        for layer, p, c, dp in zip(self.layers, params, caches, dparams):
            dx = layer.jvp(p, c, dx, dp)
        return dx

    def ntk_gram(self, params, c1, g1, c2, g2, full):
        total = 0.0
        for i in reversed(range(len(self.layers))):
            g1, g2, gram = self.layers[i].ntk_gram(params[i], c1[i], g1, c2[i], g2, full)
            total = total + gram
        return g1, g2, total


class Residual(Layer):
    """``block(z) + alpha z``.

    Kernels: ``K_out = K_block + alpha^2 K_in`` (likewise ``Theta``). This needs
    ``block(z)`` uncorrelated with ``z``, true when the block ends with a Dense
    layer (zero-mean weights independent of ``z``), which is therefore required.
    """

    def __init__(self, block: Layer, alpha: float = 1.0):
        if not isinstance(block, Layer):
            raise ParameterError(f"residual() takes a layer, got {block!r}")
        if not block.ends_with_dense:
            raise ParameterError(
                "a residual block must end with a Dense layer: otherwise block(z) and z are "
                "correlated and K_block + alpha^2 K_in is not the kernel of block(z) + alpha z"
            )
        self.block = block
        self.alpha = _check_sigma("alpha", alpha)

    def __repr__(self):
        return f"residual({self.block!r}, alpha={self.alpha})"

    takes_pending = True  # the block's first layer may fuse with a pending activation

    def signal_out(self, signal):
        if signal.flattened:
            raise signals.refuse(self, "its skip comes from Flatten (per-position kernels), which a residual sum "
                                 "does not handle", "insert a Dense between Flatten and it")
        if signal.kind is Kind.DATA:
            raise signals.refuse(
                self, "its skip is the raw input, so the block's last layer has as many outputs as the input has "
                "features at every width: nothing Gaussian follows the sum", signals.INSERT_DENSE)
        try:
            block = self.block.signal_out(signal)
        except ArchitectureError as exc:
            raise ArchitectureError(f"in the block of {self!r}: {exc}") from None
        skip = signals.materialised(signal)
        if skip.kind is Kind.GAUSSIAN and block.kind is Kind.GAUSSIAN:
            return signals.GAUSSIAN.but(flattened=skip.flattened)  # a sum of independent Gaussians
        return Signal(Kind.OTHER, centred=skip.centred and block.centred, flattened=skip.flattened,
                      origin=f"the sum of a residual block and a skip that is {skip.describe}")

    def kernel_fn(self, state, bk):
        first = self.block.layers[0] if isinstance(self.block, Serial) else self.block
        skip = state.materialised(bk)
        out = self.block.kernel_fn(state if first.takes_pending else skip, bk)
        state = skip
        al = bk.scalar(self.alpha)
        a2 = al * al
        if out.spatial != state.spatial:
            raise ShapeError(f"a residual block must keep the spatial shape: {state.spatial} -> {out.spatial}")
        nngp, lo, hi, _ = kernels.add_kernels(
            bk, state.gather, (out.nngp, out.lo, out.hi, out.roots(bk)),
            (a2 * state.nngp, a2 * state.lo, a2 * state.hi, al * state.roots(bk)))
        return out.replace(nngp, out.ntk + a2 * state.ntk, lo, hi)

    @property
    def needs_full_spatial(self) -> bool:
        return self.block.needs_full_spatial

    def init_params(self, rng, in_shape, width, out_dim):
        p, shape = self.block.init_params(rng, in_shape, width, in_shape[-1])
        if tuple(shape) != tuple(in_shape):
            raise ShapeError(f"a residual block must keep the shape of its input: {tuple(in_shape)} -> {tuple(shape)}")
        return p, tuple(in_shape)

    def apply(self, params, x):
        y, c = self.block.apply(params, x)
        return y + self.alpha * x, c

    def vjp(self, params, cache, g):
        gx, gp = self.block.vjp(params, cache, g)
        return gx + self.alpha * g, gp

    def jvp(self, params, cache, dx, dparams):
        out = self.block.jvp(params, cache, dx, dparams)
        return out if dx is None else out + self.alpha * dx

    def ntk_gram(self, params, c1, g1, c2, g2, full):
        h1, h2, gram = self.block.ntk_gram(params, c1, g1, c2, g2, full)
        out1 = h1 + self.alpha * g1
        return out1, (out1 if h2 is h1 and g2 is g1 else h2 + self.alpha * g2), gram


def data_prefix(layer: Layer) -> tuple[tuple, tuple]:
    """``(prefix, rest)``: the layers before the first one whose output is no
    longer the data (the first Dense or Conv), which act on the inputs exactly
    (:meth:`Layer.apply_to_data`), and the others, which act on kernels."""
    layers = layer.layers if isinstance(layer, Serial) else (layer,)
    n = 0
    while n < len(layers) and layers[n].signal_out(signals.DATA).kind is Kind.DATA:
        n += 1
    return tuple(layers[:n]), tuple(layers[n:])


def _apply_all(layers):
    def run(z, bk):
        for layer in layers:
            z = layer.apply_to_data(z, bk)
        return z
    return run


def _unchanged(state, bk):
    return state


def _as_block(block: Layer | Sequence[Layer]) -> Layer:
    if isinstance(block, Layer):
        return block
    if not isinstance(block, (list, tuple)):
        raise ParameterError(f"residual() takes a layer or a list of layers, got {type(block).__name__} {block!r}"[:200])
    return Serial(*block)


def serial(*layers: Layer) -> "Architecture":
    """An architecture from layers: ``serial(Dense(...), Relu(), Dense(...))``."""
    return Architecture(*layers)


def residual(block: Layer | Sequence[Layer], alpha: float = 1.0) -> Residual:
    """Residual layer ``block(z) + alpha z``; ``block`` a layer or a list of layers."""
    return Residual(_as_block(block), alpha)


class Architecture(Serial):
    """A composition of layers with the user-facing entry points
    :meth:`kernel` (infinite width) and :meth:`init` (finite width)."""

    def init(self, width: int, out_dim: int = 1, seed: int | np.random.Generator | None = 0, in_dim: int | None = None):
        """A finite-width network drawn at random (all ``W, b`` i.i.d. N(0, 1)).

        ``in_dim`` is inferred at the first call if not given. ``seed``: a
        non-negative int, a ``numpy.random.Generator`` or ``SeedSequence``
        (``None`` is refused: results are reproducible by design).
        """
        from .network import Network

        return Network(self, width=width, out_dim=out_dim, seed=seed, in_dim=in_dim)


#: Deepest ``mlp`` accepted: far beyond any use here; bounds the work and the
#: size of the layer list a typo like ``depth=10**9`` would build.
MAX_DEPTH = 10_000


def mlp(depth: int, activation: str | Activation = "relu", sigma_w: float = 1.0, sigma_b: float = 0.0,
        **activation_params) -> Architecture:
    """The MLP of docs/theory.md: ``depth`` hidden layers (Dense + activation) and a
    Dense readout, all with the same ``sigma_w, sigma_b``.

    ``K^1 = sigma_w^2 <x, x'>/d + sigma_b^2``, then C1's recursion ``depth`` times.
    """
    depth = check_positive_int(depth, "depth (number of hidden layers)", maximum=MAX_DEPTH)
    phi = _activation(activation, **activation_params)
    layers: list[Layer] = []
    for _ in range(int(depth)):
        layers += [Dense(sigma_w, sigma_b), Act(phi)]
    layers.append(Dense(sigma_w, sigma_b))
    return Architecture(*layers)
