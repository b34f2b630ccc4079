"""The layer protocol (:class:`Layer`) and serial composition (:class:`Serial`).

Layers are in the spirit of neural-tangents' ``stax``: each layer knows how to
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

from typing import Any

import numpy as np

from .. import kernels, signals
from ..errors import ArchitectureError, ParameterError
from ..kernels import Kernel, PairState
from ..signals import Kind, Signal
from ..validation import check_scale


def check_sigma(name: str, value: Any) -> float:
    return check_scale(value, name)


def heads(g: np.ndarray, ndim: int) -> int:
    """Leading axes of a cotangent: 1 (batch) or 2 (batch, head)."""
    return 2 if g.ndim > ndim else 1


def spatial_input(layer: Layer, signal) -> None:
    if signal.flattened:
        raise signals.refuse(layer, "its input comes from Flatten and has no spatial axes",
                             "move Flatten after it")


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
        if bk.vectorised:
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
        same = same_batch(c1, g1, c2, g2)
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

    #: Whether this layer can be an architecture's readout (a Dense layer: the
    #: last layer, which gets the number of outputs as its width).
    dense_readout: bool = False


def same_batch(x1, g1, x2, g2) -> bool:
    # the symmetric empirical NTK passes the same arrays twice: backpropagate once
    return x1 is x2 and g1 is g2


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
        if not self.layers[-1].dense_readout:
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
        last_dense = max((i for i, l in enumerate(self.layers) if l.ends_with_dense or l.dense_readout),
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
