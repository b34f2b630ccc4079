"""Finite-width networks in plain numpy (docs/theory.md C2-C4).

A :class:`Network` is an architecture plus one draw of its parameters. Its
forward pass, backpropagation, forward-mode tangents and empirical NTK come
from the layers (:mod:`ntk_equiv.layers`); nothing here knows what a layer is.

The empirical NTK is accumulated layer by layer as
``sum_layers (g g'^T) * (sigma_w^2/n_in <a, a'> + sigma_b^2)`` from per-head
cotangents ``g``, never forming the Jacobian, so width 16384 with 64 inputs
needs only the activations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import ConvergenceError, NonFiniteError, RangeError, ShapeError, StabilityError
from .kernels import validate_inputs
from .validation import (
    check_architecture, check_bool, check_choice, check_int, check_labels, check_memory, check_nonnegative,
    check_positive, check_positive_int, check_real_array, check_seed,
)


# ---- parameter trees (nested lists of arrays) ------------------------------ #
def tree_map(f: Callable, *trees):
    if isinstance(trees[0], list):
        return [tree_map(f, *parts) for parts in zip(*trees)]
    return f(*trees)


def tree_leaves(tree) -> list[np.ndarray]:
    if isinstance(tree, list):
        return [leaf for t in tree for leaf in tree_leaves(t)]
    return [tree]


def tree_flatten(tree) -> np.ndarray:
    leaves = tree_leaves(tree)
    return np.concatenate([l.ravel() for l in leaves]) if leaves else np.zeros(0)


def tree_unflatten(like, flat: np.ndarray):
    flat = np.asarray(flat)
    size = sum(l.size for l in tree_leaves(like))
    if flat.ndim != 1 or flat.size != size:
        raise ShapeError(f"flat parameter vector has shape {flat.shape}, the network needs ({size},)")
    pos = [0]

    def take(leaf):
        n = leaf.size
        out = flat[pos[0]: pos[0] + n].reshape(leaf.shape)
        pos[0] += n
        return out

    out = tree_map(take, like)
    if pos[0] != flat.size:
        raise ShapeError(f"flat parameter vector has {flat.size} entries, the network {pos[0]}")
    return out


def _check_positive_int(name: str, v) -> int:
    return check_positive_int(v, name)


class _ShapeRng:
    """Stands in for a Generator in a dry run of ``init_params``: returns
    zero-stride arrays of the requested shapes (no memory), so the parameter
    count is known before anything is allocated."""

    def standard_normal(self, size=None, *args, **kwargs):
        return np.broadcast_to(np.float64(0.0), () if size is None else size)

    normal = uniform = random = standard_normal


def _check_finite_output(value: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(value)):
        raise RangeError(f"{what} overflows float64 (inf/NaN): the inputs' scale or sigma_w/sigma_b make the "
                         "activations too large; rescale the inputs or lower sigma_w")
    return value


@dataclass
class Network:
    """An architecture with concrete parameters (NTK parameterisation).

    ``params`` are the current parameters, ``params0`` those at
    initialisation (the centre of the ridge penalty and of linearisation).
    """

    arch: Any
    width: int
    out_dim: int = 1
    seed: Any = 0
    in_dim: int | None = None
    params: Any = None
    params0: Any = None
    _linear: bool = field(default=False, repr=False)
    _source: Any = field(default=None, repr=False)

    def __post_init__(self):
        check_architecture(self.arch)
        self.width = _check_positive_int("width", self.width)
        self.out_dim = _check_positive_int("out_dim", self.out_dim)
        self.seed = check_seed(self.seed)
        if self.in_dim is not None:
            if isinstance(self.in_dim, (tuple, list)):
                self.in_dim = tuple(_check_positive_int("in_dim", d) for d in self.in_dim)
            else:
                self.in_dim = _check_positive_int("in_dim", self.in_dim)
            self._init()

    def _init(self):
        if self.params is None:
            self._check_memory()
            rng = self.seed if isinstance(self.seed, np.random.Generator) else np.random.default_rng(self.seed)
            self.params, out = self.arch.init_params(rng, self.in_shape, self.width, self.out_dim)
            if tuple(out) != (self.out_dim,):
                raise ShapeError(f"architecture produces outputs of shape {tuple(out)} per example, expected "
                                 f"({self.out_dim},): spatial inputs need Flatten() or GlobalAvgPool() before the readout")
        if self.params0 is None:
            self.params0 = tree_map(np.copy, self.params)

    def _check_memory(self) -> None:
        """Refuse, saying how much, a parameter draw larger than the memory."""
        try:
            shapes, _ = self.arch.init_params(_ShapeRng(), self.in_shape, self.width, self.out_dim)
        except Exception:  # noqa: BLE001 - a custom layer's init we cannot dry-run: no estimate
            return
        count = sum(int(np.prod(np.shape(leaf), dtype=float)) for leaf in tree_leaves(shapes))
        # the parameters, their copy at initialisation, and a gradient during training
        check_memory(3 * 8.0 * count, f"a network of width {self.width} ({count:.3g} parameters)",
                     "lower the width")

    def _check_batch_memory(self, n: int, per_row: float, what: str) -> None:
        """Refuse a pass whose per-layer activations (``n`` rows of ``per_row``
        numbers each, one set per layer) would not fit in memory."""
        layers = max(1, len(getattr(self.arch, "layers", ())))
        positions = float(np.prod(self.in_shape[:-1])) if self.in_dim is not None else 1.0  # spatial inputs
        check_memory(8.0 * n * per_row * positions * layers, f"{what} on {n} inputs at width {self.width}",
                     "pass fewer inputs at a time, or lower the width")

    def _inputs(self, x, name="x") -> np.ndarray:
        x = validate_inputs(x, name, self.in_dim)
        if self.in_dim is None:
            if self._source is not None:
                # linearised before the first call: draw the source's parameters, then share them
                self._source._inputs(x, name)
                self.params = tree_map(np.copy, self._source.params)
                self.params0 = self._source.params0
                self._source = None
            self.in_dim = x.shape[1] if x.ndim == 2 else tuple(x.shape[1:])
            self._init()
        return x

    @property
    def in_shape(self) -> tuple:
        """Shape of one input example: ``(d,)`` or ``(*spatial, channels)``."""
        return self.in_dim if isinstance(self.in_dim, tuple) else (self.in_dim,)

    # ---- evaluation ------------------------------------------------------ #
    @property
    def num_params(self) -> int:
        return sum(l.size for l in tree_leaves(self.params)) if self.params is not None else 0

    def apply(self, x) -> np.ndarray:
        """Outputs ``f(x)``, shape ``(n, out_dim)`` (linearised networks: ``f^lin``)."""
        x = self._inputs(x)
        self._check_batch_memory(len(x), 2 * self.width + self.out_dim, "the forward pass")
        with np.errstate(over="ignore", invalid="ignore"):
            if self._linear:
                f0, caches = self.arch.apply(self.params0, x)
                delta = tree_map(np.subtract, self.params, self.params0)
                out = f0 + self.arch.jvp(self.params0, caches, None, delta)
            else:
                out = self.arch.apply(self.params, x)[0]
        return _check_finite_output(out, "the network's output")

    def _at(self):
        # the point the Jacobian is taken at: theta_0 for the linearised model
        return self.params0 if self._linear else self.params

    def jvp(self, x, tangent) -> np.ndarray:
        """``J(x) v`` for a parameter tangent ``v`` (a tree like ``params`` or a flat vector)."""
        x = self._inputs(x)
        if isinstance(tangent, np.ndarray):
            tangent = tree_unflatten(self.params, tangent)
        elif [np.shape(l) for l in tree_leaves(tangent)] != [np.shape(l) for l in tree_leaves(self.params)]:
            raise ShapeError("tangent tree does not match the parameter tree's shapes")
        _, caches = self.arch.apply(self._at(), x)
        return self.arch.jvp(self._at(), caches, None, tangent)

    def vjp(self, x, g) -> Any:
        """``J(x)^T g`` for output cotangents ``g`` of shape ``(n, out_dim)`` (a tree)."""
        x = self._inputs(x)
        g = check_real_array(g, "g", ndim=2)
        if g.shape != (len(x), self.out_dim):
            raise ShapeError(f"cotangent g must have shape {(len(x), self.out_dim)}, got {g.shape}")
        _, caches = self.arch.apply(self._at(), x)
        return self.arch.vjp(self._at(), caches, g)[1]

    def empirical_ntk(self, x1, x2=None, full: bool = False) -> np.ndarray:
        """Empirical NTK ``J(x1) J(x2)^T``.

        ``full=False``: the mean over outputs ``(1/K) sum_i J_i(x1) J_i(x2)^T`` (``K`` outputs),
        shape ``(n1, n2)``. ``full=True``: every pair of outputs,
        shape ``(n1 * K, n2 * K)``, row ``j * K + i`` (input ``j``, output ``i``).
        """
        x1 = self._inputs(x1, "x1")
        full = check_bool(full, "full")
        at = self._at()
        m = self.out_dim
        n2 = len(x1) if x2 is None else len(np.asarray(x2))
        # cotangents (n, M, width) per layer for both sides, and the Gram of (n1 M) x (n2 M) or n1 x n2 numbers
        self._check_batch_memory(len(x1) + n2, m * self.width + 2 * self.width, "the empirical NTK")
        check_memory(8.0 * len(x1) * n2 * (m * m if full else 1) * 2, f"the empirical NTK of {len(x1)} x {n2} inputs"
                     + (f" with {m} x {m} output blocks" if full else ""), "pass fewer inputs at a time")
        _, c1 = self.arch.apply(at, x1)
        g1 = np.array(np.broadcast_to(np.eye(m), (len(x1), m, m)))
        if x2 is None:  # symmetric: the layers see the same arrays twice and backpropagate once
            x2, c2, g2 = x1, c1, g1
        else:
            x2 = self._inputs(x2, "x2")
            _, c2 = self.arch.apply(at, x2)
            g2 = np.array(np.broadcast_to(np.eye(m), (len(x2), m, m)))
        with np.errstate(over="ignore", invalid="ignore"):
            _, _, gram = self.arch.ntk_gram(at, c1, g1, c2, g2, full)
        _check_finite_output(gram, "the empirical NTK")
        if full:
            return gram.reshape(len(x1) * m, len(x2) * m)
        return gram / m

    def jacobian(self, x) -> np.ndarray:
        """Full Jacobian ``(n, out_dim, num_params)``: for small networks and tests."""
        x = self._inputs(x)
        check_memory(8.0 * 2 * len(x) * self.out_dim * self.num_params,
                     f"the Jacobian of {len(x)} inputs x {self.out_dim} outputs x {self.num_params} parameters",
                     "use empirical_ntk, jvp or vjp, which never form it")
        at = self._at()
        _, caches = self.arch.apply(at, x)
        rows = []
        for m in range(self.out_dim):
            per_x = []
            for i in range(len(x)):
                g = np.zeros((len(x), self.out_dim))
                g[i, m] = 1.0
                per_x.append(tree_flatten(self.arch.vjp(at, caches, g)[1]))
            rows.append(per_x)
        return np.transpose(np.array(rows), (1, 0, 2))

    # ---- training -------------------------------------------------------- #
    def linearize(self) -> "Network":
        """The first-order Taylor model ``f0(x) + J0(x)(theta - theta0)`` around
        this network's initialisation ``theta0 = params0``.

        The current parameters are the starting point (``params``), the Jacobian
        is taken at ``params0``. If this network has not been called yet (its
        input dimension is unknown), the two draw their parameters together at
        the first call of either."""
        if self.params is None:
            return Network(self.arch, self.width, self.out_dim, self.seed, None, _linear=True, _source=self)
        return Network(self.arch, self.width, self.out_dim, self.seed, self.in_dim,
                       tree_map(np.copy, self.params), self.params0, _linear=True)

    def lambda_max(self, x) -> float:
        """Largest eigenvalue of the full empirical train NTK ``J(X) J(X)^T``."""
        return float(np.linalg.eigvalsh(self.empirical_ntk(x, full=True))[-1])

    def train(self, x, y, lr: float, steps: int, ridge: float = 0.0, trainable: str = "all",
              check_stability: bool = True) -> "Network":
        """Full-batch gradient descent on ``1/2 sum_i ||f(x_i) - y_i||^2
        + ridge/2 ||theta - theta0||^2`` for ``steps`` steps of size ``lr``.

        ``trainable="readout"`` trains only the last Dense layer. Raises
        :class:`StabilityError` if ``lr >= 2 / (lambda_max(Theta_XX) + ridge)``
        (gradient descent would diverge) and :class:`NonFiniteError` if the
        loss overflows anyway.
        """
        x = self._inputs(x)
        y = check_labels(y, len(x), "targets y")
        if y.shape != (len(x), self.out_dim):
            raise ShapeError(f"targets must have shape {(len(x), self.out_dim)}, got {y.shape}")
        lr = check_positive(lr, "lr")
        steps = check_int(steps, "steps", minimum=0)
        ridge = check_nonnegative(ridge, "ridge")
        trainable = check_choice(trainable, "trainable", ("all", "readout"))
        check_stability = check_bool(check_stability, "check_stability")
        mask = self._mask(trainable)
        if check_stability:
            lam = self._train_lambda_max(x, trainable) + ridge
            if lr >= 2.0 / lam:
                raise StabilityError(
                    f"lr={lr:.4g} is at or above the gradient-descent stability bound "
                    f"2/(lambda_max + ridge) = {2.0 / lam:.4g}; training would diverge"
                )
        net = Network(self.arch, self.width, self.out_dim, self.seed, self.in_dim,
                      tree_map(np.copy, self.params), self.params0, _linear=self._linear)
        at0 = net.params0
        f0, caches0 = net.arch.apply(at0, x) if net._linear else (None, None)
        for _ in range(steps):
            if net._linear:
                # f^lin(X) = f0(X) + J0(X)(theta - theta0), forward values at theta0 computed once
                delta = tree_map(np.subtract, net.params, at0)
                f = f0 + net.arch.jvp(at0, caches0, None, delta)
                grads = net.arch.vjp(at0, caches0, f - y)[1]
            else:
                f, caches = net.arch.apply(net.params, x)
                grads = net.arch.vjp(net.params, caches, f - y)[1]
            net.params = tree_map(lambda p, g, p0, m: _gd_step(p, g, p0, lr * m, ridge), net.params, grads, at0, mask)
        if not all(np.all(np.isfinite(l)) for l in tree_leaves(net.params)):
            raise NonFiniteError("training diverged to NaN/inf; lower lr")
        return net

    def _mask(self, trainable: str):
        # 1.0 for trained leaves, 0.0 for frozen ones
        if trainable == "all":
            return tree_map(lambda p: 1.0, self.params)
        ro = self.arch.readout_index
        return [tree_map(lambda p: float(i == ro), sub) for i, sub in enumerate(self.params)]

    def _train_lambda_max(self, x, trainable: str) -> float:
        if trainable == "all":
            return self.lambda_max(x)
        # readout only: the readout layer's own share of the empirical NTK
        at = self._at()
        _, caches = self.arch.apply(at, x)
        i = self.arch.readout_index
        return self.arch.layers[i].ntk_lambda_max(at[i], caches[i])

    def fit_until(self, x, y, lr: float, tol: float, max_steps: int, ridge: float = 0.0,
                  trainable: str = "all", check_every: int = 50) -> tuple["Network", int]:
        """Train until the gradient's norm falls below ``tol`` (relative to its
        initial value); :class:`ConvergenceError` after ``max_steps``."""
        net, done = self, 0
        x = self._inputs(x)
        y = check_labels(y, len(x), "targets y")
        lr = check_positive(lr, "lr")
        tol = check_positive(tol, "tol")
        max_steps = check_positive_int(max_steps, "max_steps")
        check_every = check_positive_int(check_every, "check_every")
        ridge = check_nonnegative(ridge, "ridge")
        trainable = check_choice(trainable, "trainable", ("all", "readout"))

        def grad_size(n: "Network") -> float:
            # norm of the gradient of the trained parameters (ridge term included)
            r = n.apply(x) - np.asarray(y, float).reshape(len(x), -1)
            g = tree_map(lambda gr, d, m: m * (gr + ridge * d), n.vjp(x, r),
                         tree_map(np.subtract, n.params, n.params0), n._mask(trainable))
            return float(np.linalg.norm(tree_flatten(g)))

        # relative to the gradient at the start (not after the first chunk)
        g0 = max(grad_size(self), 1e-300) if ridge != 0.0 else None
        while done < max_steps:
            k = min(check_every, max_steps - done)
            net = net.train(x, y, lr=lr, steps=k, ridge=ridge, trainable=trainable, check_stability=(done == 0))
            done += k
            r = net.apply(x) - np.asarray(y, float).reshape(len(x), -1)
            if ridge == 0.0:
                size = float(np.max(np.abs(r)))
                g0 = g0 if g0 is not None else max(float(np.max(np.abs(np.asarray(y, float)))), 1.0)
            else:
                size = grad_size(net)
            if size <= tol * g0:
                return net, done
        raise ConvergenceError(f"training did not reach tolerance {tol:g} in {max_steps} steps (last {size:.3g})")


def _gd_step(p: np.ndarray, g: np.ndarray, p0: np.ndarray, step: float, ridge: float) -> np.ndarray:
    """``p - step (g + ridge (p - p0))`` in place (``p`` is the training copy and
    ``g`` a fresh gradient): the weight matrices dominate memory traffic, so
    no extra full-size temporaries and nothing at all for frozen leaves."""
    if step == 0.0:
        return p
    if ridge:
        g += ridge * (p - p0)
    g *= step
    p -= g
    return p


def caches0_out(net: Network, x, caches0, delta) -> np.ndarray:
    """``f^lin(X) = f0(X) + J0(X) delta`` from cached forward values at ``theta0``."""
    f0 = net.arch.apply(net.params0, x)[0]
    return f0 + net.arch.jvp(net.params0, caches0, None, delta)
