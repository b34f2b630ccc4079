"""A conformance suite for a layer: ``check_layer(factory)``.

``factory(rng) -> Layer`` draws a random instance of the layer under test (a
:class:`numpy.random.Generator` in, a :class:`~ntk_equiv.layers.Layer` out;
the entries of :mod:`ntk_equiv.layer_catalogue` are such factories). Each
instance is placed in small random architectures (*contexts*: Dense or Conv
layers and activations around it, a Dense readout) and every context the
kernel engine accepts is put through these checks (docs/theory.md notation):

``adjoint``
    ``<J_x dx + J_theta dtheta, g> = <dx, J_x^T g> + <dtheta, J_theta^T g>``
    (``jvp`` against ``vjp``) on a narrow network, to ``1e-12`` of the
    Cauchy-Schwarz scale of the three products (working precision: each side
    is a sum of a few hundred products).
``ntk_fd``
    The empirical NTK ``(1/K) sum_i J_i(x) J_i(x')^T`` (``ntk_gram``) against
    Jacobians by central differences (step ``h = 1e-5``; truncation
    ``O(h^2) ~ 1e-10``, rounding ``O(eps / h) ~ 1e-11``), to ``1e-6`` of
    ``max |Theta_hat|`` (a wrong ``vjp`` or ``ntk_gram`` is off by O(1)).
``precision``
    ``kernel(x)`` in float64 against ``kernel(x, dps=50)``, to ``1e-12``
    relative to ``sqrt(K(x, x) K(x', x'))`` (the float64 promise of the kernels).
``batch``
    ``kernel(x1, x2)`` against the off-diagonal block of ``kernel([x1; x2])``,
    and ``kernel(x)`` against the leading block of ``kernel([x; x_more])``, to
    ``1e-12`` relative to ``sqrt(K(x, x) K(x', x'))`` (float64 rounding of
    the same per-pair arithmetic): a pair's kernel must not depend on the
    other points of the call. Each of the other kernel checks makes a single
    call, so a layer that mixes the points of a call (a batch statistic, an
    index into the pair list) passes them all.
``rnd_laws``
    C6a ``rnd_covariance = 2 ensemble(...).cov`` and C7
    ``bayesian_rnd_covariance = gp_posterior(prior="ntk").cov`` on the
    context's kernel, to ``1e3 eps cond(Theta_XX)`` of the largest entry: the
    layer's kernel goes through the RND formulas (these identities hold for
    any kernel; the power against a wrong kernel is the next check's).
``monte_carlo``
    ``K`` and ``Theta`` against the mean of ``f_h(x) f_h(x')`` over ``heads``
    outputs and of the empirical NTK (``NTK_HEADS`` outputs), over ``networks``
    independent draws,
    in the contexts where these finite-width moments equal the limit *at
    every width* (see :func:`exact_contexts`): the tolerance is then only
    the Monte Carlo error (plus ``ROUNDING``), a Student-t statistic per entry (the per-network
    means over many heads and channels are near normal) with the Bonferroni
    threshold for a false alarm below ``1e-6`` over every entry of the call.
    The power is reported: the error, relative to ``sqrt(K_ii K_jj)``, at
    which the expected statistic reaches the threshold (``threshold x`` the
    largest relative standard error).

A failed check raises :class:`LayerCheckError` naming the check, the
context and the numbers; a passing run returns a :class:`LayerReport`. A
context the library refuses (``ArchitectureError``, or another of its errors
such as ``QuadratureError`` at 50 digits) is listed in ``report.skipped``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from . import architecture as A, layers as L
from .layers import Conv, Flatten
from .errors import ArchitectureError, NtkEquivError, ShapeError
from .experiments.stats import FALSE_ALARM, t_threshold
from .kernels import scaled_error
from .network import tree_flatten, tree_leaves, tree_unflatten

#: Activations placed around the layer under test: closed forms, cheap at every precision.
CONTEXT_ACTIVATIONS = ("relu", "erf", "sin", "abs", "leaky_relu")
EPS = float(np.finfo(float).eps)
#: Allowance of the Monte Carlo for float64 rounding, relative to ``sqrt(K_ii K_jj)``.
ROUNDING = 1e-10
#: Heads of the networks whose empirical NTK the Monte Carlo averages.
NTK_HEADS = 16


class LayerCheckError(NtkEquivError, AssertionError):
    """A conformance check of :func:`check_layer` that does not hold."""


@dataclass
class Measurement:
    """One check on one context: the measured deviation and its tolerance."""

    check: str
    context: str
    measured: float
    tolerance: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.measured <= self.tolerance)


@dataclass
class LayerReport:
    """What :func:`check_layer` ran: measurements, skipped contexts (with the
    engine's reason) and the Monte Carlo power."""

    measurements: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    power: dict = field(default_factory=dict)

    def checks(self) -> set:
        return {m.check for m in self.measurements}

    def summary(self) -> str:
        lines = [f"{m.check:12s} {'ok' if m.passed else 'FAIL'} {m.measured:.3g} <= {m.tolerance:.3g}  {m.context}"
                 for m in self.measurements]
        lines += [f"skipped: {c}: {why}" for c, why in self.skipped]
        return "\n".join(lines)


# --------------------------------------------------------------------------- #
# what the layer is (finite width, measured): parameters, linearity, locality
# --------------------------------------------------------------------------- #
def _shape_in(inputs: str) -> tuple:
    return (4, 2) if inputs == "spatial" else (3,)


def _params_of(layer, rng, in_shape, width) -> tuple:
    return layer.init_params(rng, in_shape, width, width)


def has_parameters(layer, inputs: str = "flat") -> bool:
    p, _ = _params_of(layer, np.random.default_rng(0), _shape_in(inputs), 4)
    return any(np.size(leaf) for leaf in tree_leaves(p))


def is_linear(layer, inputs: str = "flat", seed: int = 0) -> bool:
    """Affine in its input: ``layer(a x + b y) = a layer(x) + b layer(y)`` for
    ``a + b = 1`` at finite width, to ``1e-12`` relative (random ``x, y``; one
    draw of the parameters). A bias keeps the second moments exact too."""
    rng = np.random.default_rng(seed)
    shape = _shape_in(inputs)
    p, _ = _params_of(layer, rng, shape, 4)
    x, y = rng.standard_normal((2, 3) + shape)
    a, b = 1.7, -0.7
    lhs = layer.apply(p, a * x + b * y)[0]
    rhs = a * layer.apply(p, x)[0] + b * layer.apply(p, y)[0]
    return bool(np.max(np.abs(lhs - rhs)) <= 1e-12 * (1 + np.max(np.abs(rhs))))


def is_elementwise(layer, inputs: str = "flat", seed: int = 0) -> bool:
    """Each output coordinate depends on the same input coordinate only
    (changing one input coordinate changes only that output coordinate)."""
    rng = np.random.default_rng(seed)
    shape = _shape_in(inputs)
    p, _ = _params_of(layer, rng, shape, 4)
    x = rng.standard_normal((1,) + shape)
    y0 = layer.apply(p, x)[0]
    if y0.shape != x.shape:
        return False
    for i in range(int(np.prod(shape))):
        dx = np.zeros(x.size)
        dx[i] = 0.37
        dy = (layer.apply(p, x + dx.reshape(x.shape))[0] - y0).ravel()
        dy[i] = 0.0
        if np.any(dy != 0):
            return False
    return True


# --------------------------------------------------------------------------- #
# contexts: small random architectures around the layer
# --------------------------------------------------------------------------- #
def _out_shape(body: list, inputs: str) -> tuple:
    return L.Serial(*body).init_params(np.random.default_rng(0), _shape_in(inputs), 3, 3)[1] if body else _shape_in(inputs)


class _Linear:
    """A Dense layer, or a 1-D Conv (SAME padding) where the signal is still
    spatial: decided when the body is built, from the shape so far."""


def _build(rng, body: list, inputs: str) -> list:
    out = []
    for item in body:
        if item is _Linear:
            sw, sb = float(rng.uniform(0.7, 1.3)), float(rng.uniform(0.05, 0.5))
            spatial = len(_out_shape(out, inputs)) > 1
            item = Conv((int(rng.integers(1, 3)),), padding="SAME", sigma_w=sw, sigma_b=sb) if spatial else L.Dense(sw, sb)
        out.append(item)
    return out


def _act(rng):
    name = str(rng.choice(CONTEXT_ACTIVATIONS))
    return L.Act(name, alpha=0.2) if name == "leaky_relu" else L.Act(name)


def _readout(rng, body: list, inputs: str) -> list:
    """``body`` (placeholders resolved) plus a Dense readout, with Flatten first if the output is still spatial."""
    body = _build(rng, body, inputs)
    tail = [Flatten()] if len(_out_shape(body, inputs)) > 1 else []
    return body + tail + [L.Dense(float(rng.uniform(0.7, 1.3)), float(rng.uniform(0.05, 0.5)))]


def exact_contexts(layer, rng, inputs: str = "flat") -> list[list]:
    """Contexts in which ``E[f_h(x) f_h(x')] = K(x, x')`` and ``E[Theta_hat] = Theta``
    hold at every width, so that a Monte Carlo over networks has no width bias.

    That holds when every non-linear map acts on exactly Gaussian (first Dense
    or Conv outputs) or deterministic (raw input) variables and only linear
    maps follow: the second moments are then linear in the first stage's
    products, whose expectations are the dual maps. By what the layer is:

    * parameter-free, elementwise (an activation): ``[Dense, layer, Dense]`` and,
      on the raw input, ``[layer, Dense, act, Dense]``;
    * parameter-free, affine (scaling, pooling, Flatten): also
      ``[Dense, act, layer, Dense]`` and ``[Dense, act, Dense, layer, Dense]``;
    * parameter-free, neither (LayerNorm: channel statistics): only on the raw
      input, ``[layer, Dense, act, Dense]``;
    * with parameters, affine (Dense, Conv): ``[layer, act, Dense]`` and
      ``[Dense, act, layer, Dense]``;
    * with parameters, non-linear: a block starting with a layer with
      parameters (``mlp``) on the raw input, ``[layer, Dense]``; another block
      ``[Dense, layer, Dense]``, exact when its non-linear maps act on its input
      only (as ``residual([act, Dense])``); for other blocks pass ``contexts=``.
    """
    params, linear = has_parameters(layer, inputs), is_linear(layer, inputs)
    d, a = (lambda: _Linear), (lambda: _act(rng))
    if not params:
        if is_elementwise(layer, inputs):
            bodies = [[d(), layer], [layer, d(), a()]] + ([[d(), a(), layer], [d(), a(), d(), layer]] if linear else [])
        elif linear:
            bodies = [[d(), layer], [d(), a(), layer], [d(), a(), d(), layer]]
        else:
            bodies = [[layer, d(), a()]]
    elif linear:
        bodies = [[layer, a()], [d(), a(), layer]]
    else:
        first = layer.layers[0] if isinstance(layer, L.Serial) else None
        bodies = [[layer]] if first is not None and has_parameters(first, inputs) else [[d(), layer]]
    return [_readout(rng, b, inputs) for b in bodies]


def random_contexts(layer, rng, inputs: str = "flat") -> list[list]:
    """Deeper random architectures containing the layer (for the checks that
    need no exactness at finite width): before and after activations, twice."""
    d, a = (lambda: _Linear), (lambda: _act(rng))
    bodies = [[d(), a(), d(), layer, a()], [d(), layer, d(), a()], [d(), a(), layer, d(), a(), d(), layer]]
    out = []
    for b in bodies:
        try:
            out.append(_readout(rng, b, inputs))
        except ShapeError:  # the layer twice does not fit (GlobalAvgPool of a flat signal): not a context
            continue
    return out


# --------------------------------------------------------------------------- #
# the checks
# --------------------------------------------------------------------------- #
def _inputs(rng, n: int, inputs: str) -> np.ndarray:
    # unit mean square per channel: pre-activation variances O(1) (the 50-digit rules' range)
    shape = _shape_in(inputs)
    return rng.standard_normal((n,) + shape) / math.sqrt(shape[-1])


def adjoint_error(arch, x, rng) -> tuple[float, float]:
    """``(relative error, tolerance)`` of ``<jvp, g> = <dx, vjp_x> + <dtheta, vjp_theta>``
    on a network of width 6 with random tangents and cotangents."""
    net = arch.init(width=6, out_dim=2, seed=rng)
    net.apply(x)
    p = net.params
    y, caches = arch.apply(p, x)
    dx = rng.standard_normal(x.shape)
    dp = tree_unflatten(p, rng.standard_normal(tree_flatten(p).size))
    g = rng.standard_normal(y.shape)
    tangent = arch.jvp(p, caches, dx, dp)
    gx, gp = arch.vjp(p, caches, g)
    lhs = float(np.sum(tangent * g))
    rhs = float(np.sum(dx * gx) + np.dot(tree_flatten(dp), tree_flatten(gp)))
    scale = (np.linalg.norm(tangent) * np.linalg.norm(g) + np.linalg.norm(dx) * np.linalg.norm(gx)
             + np.linalg.norm(tree_flatten(dp)) * np.linalg.norm(tree_flatten(gp)))
    return abs(lhs - rhs) / scale, 1e-12


def ntk_fd_error(arch, x, rng, h: float = 1e-5) -> tuple[float, float]:
    """``(relative error, tolerance)`` of the empirical NTK against central-difference
    Jacobians (step ``h``) on a network of width 5 with 2 outputs."""
    net = arch.init(width=5, out_dim=2, seed=rng)
    theta = net.empirical_ntk(x)
    flat = tree_flatten(net.params)
    jac = np.empty((len(x), net.out_dim, flat.size))
    for k in range(flat.size):
        e = np.zeros(flat.size)
        e[k] = h
        up = arch.apply(tree_unflatten(net.params, flat + e), x)[0]
        down = arch.apply(tree_unflatten(net.params, flat - e), x)[0]
        jac[:, :, k] = (up - down) / (2 * h)
    fd = np.einsum("nkp,mkp->nm", jac, jac) / net.out_dim
    return float(np.max(np.abs(theta - fd)) / np.max(np.abs(fd))), 1e-6


def _precision(arch, x, dps: int) -> tuple[float, float]:
    k64, khp = arch.kernel(x), arch.kernel(x, dps=dps)
    err = max(float(np.max(scaled_error(getattr(k64, part), np.array(getattr(khp, part).tolist(), dtype=float))))
              for part in ("nngp", "ntk"))
    return err, 1e-12


def batch_error(arch, x, x_more) -> tuple[float, float]:
    """``(error, tolerance)`` of a pair's kernel across calls: ``kernel(x[:1], x[1:])``
    against the block of ``kernel(x)``, and ``kernel(x)`` against the block of
    ``kernel([x; x_more])``, relative to ``sqrt(K_ii K_jj)``."""
    k = arch.kernel(x)
    cross = arch.kernel(x[:1], x[1:])
    more = arch.kernel(np.concatenate([x, x_more]))
    n, d = len(x), {part: np.diag(np.asarray(getattr(k, part))) for part in ("nngp", "ntk")}
    err = 0.0
    for part in ("nngp", "ntk"):
        whole = np.asarray(getattr(k, part))
        err = max(err, float(scaled_error(np.asarray(getattr(cross, part)), whole[:1, 1:], d[part][:1], d[part][1:])),
                  float(scaled_error(np.asarray(getattr(more, part))[:n, :n], whole)))
    return err, 1e-12


def _rnd_laws(arch, x_train, x_test) -> tuple[float, float]:
    from .dynamics import ensemble
    from .rnd import bayesian_rnd_covariance, gp_posterior, rnd_covariance

    y = np.zeros(len(x_train))
    c6 = rnd_covariance(arch, x_train, x_test)
    g = ensemble(arch, x_train, y, x_test)
    c7 = bayesian_rnd_covariance(arch, x_train, x_test, noise=0.1)
    post = gp_posterior(arch, x_train, y, x_test, prior="ntk", noise=0.1)
    cond = float(np.linalg.cond(arch.kernel(x_train).ntk))
    err = max(float(np.max(np.abs(c6 - 2 * g.cov)) / np.max(np.abs(c6))),
              float(np.max(np.abs(c7 - post.cov)) / max(float(np.max(np.abs(c7))), EPS)))
    return err, 1e3 * EPS * max(cond, 1.0)


def _monte_carlo(arch, x, rng, width: int, networks: int, heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t statistics, standard errors relative to sqrt(k_ii k_jj), exact values)`` of the upper-triangle
    entries of ``K`` then ``Theta``: per network, the mean over heads of
    ``f_h(x_i) f_h(x_j)`` and the empirical NTK (mean over heads)."""
    k = arch.kernel(x)
    iu = np.triu_indices(len(x))
    exact = np.concatenate([np.asarray(k.nngp)[iu], np.asarray(k.ntk)[iu]])
    # Cauchy-Schwarz scale sqrt(k_ii k_jj) of each entry (off-diagonal entries may be near 0)
    scale = np.concatenate([np.sqrt(np.abs(np.diag(m)[iu[0]] * np.diag(m)[iu[1]])) for m in (k.nngp, k.ntk)])
    samples = []
    for _ in range(networks):
        # two independent networks per draw: many heads for K (a forward pass), fewer for the
        # empirical NTK (its cost grows fast with the number of heads)
        f = arch.init(width=width, out_dim=heads, seed=rng).apply(x)
        prods = (f[iu[0]] * f[iu[1]]).mean(axis=1)
        ntk = arch.init(width=width, out_dim=NTK_HEADS, seed=rng).empirical_ntk(x)
        samples.append(np.concatenate([prods, ntk[iu]]))
    samples = np.array(samples)
    se = samples.std(axis=0, ddof=1) / math.sqrt(networks)
    # rounding of the exact kernel and of the sample means: without it an entry that is the same
    # in every network (Theta(x, x) of a sign network is sigma_w^2 + sigma_b^2 for all of them)
    # has se ~ 1e-17 and a meaningless statistic
    excess = np.maximum(np.abs(samples.mean(axis=0) - exact) - ROUNDING * scale, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(excess > 0, excess / se, 0.0)
    return t, se / scale, exact


def _fail(m: Measurement) -> LayerCheckError:
    return LayerCheckError(f"check_layer: check {m.check!r} failed on {m.context}: {m.measured:.3g} > tolerance "
                           f"{m.tolerance:.3g}{'; ' + m.note if m.note else ''}")


ALL_CHECKS = ("adjoint", "ntk_fd", "precision", "batch", "rnd_laws", "monte_carlo")


def check_layer(factory: Callable[[np.random.Generator], object], *, inputs: str = "flat", seed: int = 0,
                instances: int = 1, checks: Sequence[str] = ALL_CHECKS, contexts: Callable | None = None,
                dps: int | None = 50, width: int = 128, networks: int = 48, heads: int = 64,
                alpha: float = FALSE_ALARM, require_monte_carlo: bool = True) -> LayerReport:
    """Run the conformance checks (module docstring) on ``instances`` random
    instances of ``factory``'s layer, each in its random contexts.

    Parameters
    ----------
    factory : ``rng -> Layer``.
    inputs : ``"flat"`` (``(N, 3)`` inputs, Dense around the layer) or
        ``"spatial"`` (``(N, 4, 2)``, 1-D Conv around it).
    checks : a subset of :data:`ALL_CHECKS`.
    contexts : ``(layer, rng, inputs) -> list of layer lists`` for the Monte
        Carlo, instead of :func:`exact_contexts` (each must have finite-width
        second moments equal to the limit at every width).
    dps : digits of the ``precision`` check (``None``: not run).
    width, networks, heads : the Monte Carlo's networks.
    alpha : false-alarm probability of the whole Monte Carlo check.
    require_monte_carlo : raise ``ValueError`` if no exact context is computable
        (otherwise the Monte Carlo is listed in ``report.skipped``).

    Raises :class:`LayerCheckError` (naming the check) at the first failure.
    """
    unknown = sorted(set(checks) - set(ALL_CHECKS))
    if unknown or inputs not in ("flat", "spatial"):
        raise ValueError(f"check_layer: unknown checks {unknown} or inputs {inputs!r}; checks are {ALL_CHECKS}, "
                         "inputs 'flat' or 'spatial'")
    rng = np.random.default_rng(seed)
    report = LayerReport()
    mc = []  # (t statistics, relative standard errors, context)
    for _ in range(instances):
        layer = factory(rng)
        exact = (contexts or exact_contexts)(layer, rng, inputs) if "monte_carlo" in checks else []
        others = exact + random_contexts(layer, rng, inputs)
        for body in others:
            arch = A.Architecture(*body)
            name = repr(arch)
            x = _inputs(rng, 3, inputs)
            try:
                arch.check_architecture()
                computable = True
            except ArchitectureError as exc:
                computable = False
                report.skipped.append((name, str(exc)))
            runs = []
            if "adjoint" in checks:  # finite-width networks run every architecture
                runs.append(("adjoint", lambda: adjoint_error(arch, x, rng), ""))
            if "ntk_fd" in checks:
                runs.append(("ntk_fd", lambda: ntk_fd_error(arch, x, rng), ""))
            if computable and "precision" in checks and dps is not None:
                runs.append(("precision", lambda: _precision(arch, x, dps), f"dps={dps}"))
            if computable and "batch" in checks:
                runs.append(("batch", lambda: batch_error(arch, x, _inputs(rng, 2, inputs)), "a pair across calls"))
            if computable and "rnd_laws" in checks:
                runs.append(("rnd_laws", lambda: _rnd_laws(arch, x, _inputs(rng, 2, inputs)), "C6a and C7"))
            for check, run, note in runs:
                try:
                    measured, tol = run()
                except LayerCheckError:
                    raise
                except NtkEquivError as exc:  # a clear refusal (QuadratureError...), not a wrong number
                    report.skipped.append((f"{check} on {name}", f"{type(exc).__name__}: {exc}"))
                    continue
                m = Measurement(check, name, measured, tol, note)
                report.measurements.append(m)
                if not m.passed:
                    raise _fail(m)
            if computable and "monte_carlo" in checks and any(body is b for b in exact):
                try:
                    t, rel_se, _ = _monte_carlo(arch, x, rng, width, networks, heads)
                except NtkEquivError as exc:
                    report.skipped.append((f"monte_carlo on {name}", f"{type(exc).__name__}: {exc}"))
                    continue
                mc.append((t, rel_se, name))
    if "monte_carlo" in checks:
        if not mc:
            if require_monte_carlo:
                raise ValueError("check_layer: no context for the Monte Carlo check is computable: "
                                 + "; ".join(f"{c}: {why}" for c, why in report.skipped)[:800])
            report.skipped.append(("monte_carlo", "no exact context computable"))
            return report
        tests = sum(t.size for t, _, _ in mc)
        q = t_threshold(networks - 1, tests, alpha)
        report.power = {"threshold": q, "tests": tests, "alpha": alpha,
                        "detectable_relative_error": float(max(q * float(np.max(r)) for _, r, _ in mc))}
        for t, rel_se, name in mc:
            i = int(np.argmax(np.abs(t)))
            half = t.size // 2
            part = ("K" if i < half else "Theta") + f" entry {i % half} (upper triangle)"
            m = Measurement("monte_carlo", name, float(abs(t[i])), q,
                            f"{part}: |mean - exact| / standard error over {networks} networks of width {width}, "
                            f"{heads} heads; Bonferroni t threshold for false alarm {alpha:g} over {tests} entries; "
                            f"detectable relative error {q * float(np.max(rel_se)):.2g}")
            report.measurements.append(m)
            if not m.passed:
                raise _fail(m)
    return report
