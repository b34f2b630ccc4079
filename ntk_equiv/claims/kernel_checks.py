"""Checks of claim C1 (the kernel recursion and its dual activations) at the
H and E levels. The S level (dual maps derived by integration) lives with the
symbolic checks; the P level is ``tests/test_kernels_properties.py``.

* H: every closed-form dual map against an independent reference (2-D
  Gaussian quadrature in polar form for the piecewise-linear activations,
  textbook identities for erf, sin, cos) at ``config.dps`` digits, on correlation matrices that include
  the endpoints (correlation exactly +1 and -1, a zero-norm input with a
  bias, correlation ``-1 + 2^-20``).
* E: the float64 kernels of random architectures against the ``dps`` path,
  entry by entry relative to the entry's scale, diagonal included.
"""
from __future__ import annotations

import numpy as np

from ..activations import Activation, activation
from ..kernels import scaled_error
from ..architecture import mlp, serial
from ..layers import Dense, Erf, Relu, Sign, residual
from ..precision import backend
from .architectures import HEADS, image_inputs, random_cnn
from .registry import Config, check, measured

#: Positively homogeneous activations: ``phi(r x) = r^p phi(x)`` for ``r > 0``,
#: with ``(p, p')`` the degrees of ``phi`` and ``phi'``.
HOMOGENEOUS = {"relu": (1, 0), "leaky_relu": (1, 0), "abs": (1, 0), "sign": (0, 0), "identity": (1, 0)}
SMOOTH = ("erf", "sin", "cos")


def _correlation_cases(rng: np.random.Generator, full: bool) -> list[tuple[str, str, str]]:
    """``(k11, k12, k22)`` as strings of binary-exact numbers (dyadic where an
    endpoint must be exact, float reprs otherwise), converted at the working
    precision."""
    cases = [
        ("0.5625", "1.125", "2.25"),     # correlation exactly +1 (9/16, 9/8, 9/4: det = 0 exactly)
        ("0.5625", "-1.125", "2.25"),    # correlation exactly -1
        ("0.01", "0.01", "1.7"),         # a zero-norm input with sigma_b = 0.1 against another input
    ]
    for _ in range(4 if full else 1):
        k11, k22 = (float(v) for v in rng.uniform(0.1, 3.0, size=2))
        rho = float(rng.uniform(-1.0, 1.0))
        cases.append((repr(k11), repr(rho * float(np.sqrt(k11 * k22))), repr(k22)))
    cases.append(("1.5", repr(-(1 - 2.0**-20) * 1.5), "1.5"))  # correlation -1 + 2^-20: nearly antipodal
    return cases


def _homogeneous_reference(f, g, degree: int, k11, k12, k22, ctx):
    """``E[f(u) g(v)]`` for ``f g`` positively homogeneous of total degree
    ``degree``: in polar coordinates ``(z1, z2) = r (cos t, sin t)`` with
    ``u = a z1``, ``v = c z1 + s z2`` the radial integral is the moment
    ``M = int_0^inf r^degree r e^{-r^2/2} dr = 2^{degree/2} Gamma(degree/2 + 1)``,
    leaving ``M / (2 pi) int_0^{2 pi} f(a cos t) g(c cos t + s sin t) dt``,
    integrated by tanh-sinh on the arcs between the kink rays. Independent of
    the library's quadrature and of its closed forms."""
    a = ctx.sqrt(k11)
    c = k12 / a
    s = ctx.sqrt(max(k11 * k22 - k12 * k12, ctx.mpf(0))) / a
    pi = +ctx.pi
    t_v = ctx.atan2(-c, s)  # c cos t + s sin t = 0
    cuts = sorted({ctx.mpf(0), pi / 2, 3 * pi / 2, 2 * pi, t_v % (2 * pi), (t_v + pi) % (2 * pi)})
    angular = ctx.quad(lambda t: f(a * ctx.cos(t)) * g(c * ctx.cos(t) + s * ctx.sin(t)), cuts)
    moment = ctx.mpf(2) ** (ctx.mpf(degree) / 2) * ctx.gamma(ctx.mpf(degree) / 2 + 1)
    return moment * angular / (2 * pi)


def _smooth_identity_reference(name: str, k11, k12, k22, ctx) -> tuple:
    """Textbook identities, computed independently of the closed forms' code:

    * sin/cos from the characteristic function ``E[e^{i(u -+ v)}] = e^{-(k11 + k22 -+ 2 k12)/2}``:
      ``E[cos u cos v] = (e^{-D/2} + e^{-S/2}) / 2``, ``E[sin u sin v] = (e^{-D/2} - e^{-S/2}) / 2``
      with ``D = k11 + k22 - 2 k12``, ``S = k11 + k22 + 2 k12``;
    * erf: ``E[erf' u erf' v] = (4/pi) E[e^{-u^2 - v^2}] = (4/pi) det(I + 2 Sigma)^{-1/2}`` (a
      Gaussian integral) and, by Price's theorem ``dE[erf u erf v]/dk12 = E[erf' u erf' v]`` with
      value 0 at ``k12 = 0``, ``E[erf u erf v] = int_0^{k12} (4/pi) ((1+2k11)(1+2k22) - 4t^2)^{-1/2} dt``
      (a 1-D tanh-sinh quadrature)."""
    if name in ("sin", "cos"):
        d, s = ctx.exp(-(k11 + k22 - 2 * k12) / 2), ctx.exp(-(k11 + k22 + 2 * k12) / 2)
        sin_sin, cos_cos = (d - s) / 2, (d + s) / 2
        return (sin_sin, cos_cos) if name == "sin" else (cos_cos, sin_sin)
    p = (1 + 2 * k11) * (1 + 2 * k22)
    c = 4 / ctx.pi
    v = ctx.quad(lambda t: c / ctx.sqrt(p - 4 * t * t), [0, k12])
    return v, c / ctx.sqrt(p - 4 * k12 * k12)


def _reference(act: Activation, bk, k11, k12, k22, quadrature: bool = False) -> tuple:
    ctx = bk.ctx
    f, df = act.mp_functions(ctx)
    if act.name in HOMOGENEOUS:
        p, dp = HOMOGENEOUS[act.name]
        return (_homogeneous_reference(f, f, 2 * p, k11, k12, k22, ctx),
                _homogeneous_reference(df, df, 2 * dp, k11, k12, k22, ctx))
    if not quadrature:
        return _smooth_identity_reference(act.name, k11, k12, k22, ctx)
    # the library's polar quadrature (trapezoidal in angle, Gauss in radius): ~5-10 s per entry
    one = [np.array([v], dtype=object) for v in (k11, k12, k22)]
    return tuple(v[0] for v in act.dual_by_quadrature(bk, *one))


def _closed(act: Activation, bk, k11, k12, k22) -> tuple:
    one = [np.array([v], dtype=object) for v in (k11, k12, k22)]
    v, vd = act.dual(bk, *one)
    return v[0], vd[0]


@check("C1", "H")
def _c1_closed_forms_vs_quadrature(config: Config):
    bk = backend(config.dps)
    rng = np.random.default_rng(config.seed)
    names = list(HOMOGENEOUS) + list(SMOOTH)
    ctx = bk.ctx
    worst, where = ctx.mpf(0), ""
    cases = [tuple(ctx.mpf(v) for v in case) for case in _correlation_cases(rng, config.full)]
    runs = [(name, case, False) for name in names for case in cases]
    if config.full:  # sin/cos also against the library's own 2-D quadrature, one interior case
        runs += [(name, cases[3], True) for name in ("sin", "cos")]
    for name, (k11, k12, k22), quad in runs:
        act = activation(name, alpha=0.2) if name == "leaky_relu" else activation(name)
        closed, ref = _closed(act, bk, k11, k12, k22), _reference(act, bk, k11, k12, k22, quad)
        # scale: sqrt(V(k11) V(k22)) (Cauchy-Schwarz bound of the entry), 1 if that is 0
        diag = [_closed(act, bk, k, k, k) for k in (k11, k22)]
        for i, label in enumerate(("V", "Vdot")):
            scale = ctx.sqrt(abs(diag[0][i] * diag[1][i])) or ctx.mpf(1)
            err = abs(closed[i] - ref[i]) / scale
            if err > worst or not where:
                worst, where = err, (f"{name} {label} at (k11, k12, k22) = "
                                     f"{tuple(ctx.nstr(k, 8) for k in (k11, k12, k22))}")
    tol = 10.0 ** -(config.dps - 5)
    return measured(float(worst), tol,
                    f"closed-form dual maps vs independent references at {config.dps} digits (+15 guard), "
                    f"agreement to 10^-(dps-5) relative to sqrt(V(k11) V(k22)): relu/leaky_relu/abs/sign/identity "
                    f"against a polar 2-D Gaussian quadrature (exact radial moment, tanh-sinh in angle between "
                    f"kink rays); erf by Price's theorem + a Gaussian determinant; sin/cos by the characteristic "
                    f"function" + ("; sin/cos also against the library's 2-D quadrature" if config.full else ""),
                    worst_case=where, activations=names)


RESIDUAL_LABEL = "serial(Dense, Erf, Dense, residual(Dense, Relu, Dense), Sign, Dense)"


def residual_architecture():
    """Residual + activations, computable: the skip is Gaussian (after a Dense), so the
    sum is Gaussian and Sign's dual map applies (a post-activation skip would not be)."""
    return serial(Dense(1.3, 0.2), Erf(), Dense(1.1, 0.2), residual([Dense(1.1, 0.3), Relu(), Dense(0.9, 0.1)], 0.8),
                  Sign(), Dense(1.2, 0.1))


def _e_architectures(rng: np.random.Generator, full: bool):
    archs = []
    names = ["relu", "leaky_relu", "abs", "erf", "identity", "sign", "sin", "cos"]
    for name in names:
        depth = int(rng.integers(2, 7 if full else 5))
        sw, sb = float(rng.uniform(0.5, 2.5)), float(rng.uniform(0.05, 1.0))
        kwargs = {"alpha": 0.1} if name == "leaky_relu" else {}
        archs.append((f"mlp({depth}, {name}, {sw:.2f}, {sb:.2f})", mlp(depth, name, sw, sb, **kwargs)))
    archs.append((RESIDUAL_LABEL, residual_architecture()))
    return archs


@check("C1", "E")
def _c1_float64_vs_high_precision(config: Config):
    rng = np.random.default_rng(config.seed)
    n, d = (10, 5) if config.full else (6, 3)
    x = rng.standard_normal((n, d))
    x[1] = -x[0]          # correlation exactly -1 at the input
    x[2] = 0.5 * x[0]     # exactly collinear, another norm
    x[3] = 0.0            # a zero-norm input (every architecture here has sigma_b > 0)
    worst, where = 0.0, ""
    cases = [(label, arch, x) for label, arch in _e_architectures(rng, config.full)]
    # convolutional networks (issue 12): a 1-D one with any head (full spatial covariance
    # under pooling) and a 2-D one with Flatten (its diagonal), on images incl. x and -x
    for dims, heads in (((1,), HEADS), ((2,), ("Flatten",))):
        label, arch, shape = random_cnn(rng, dims=dims, heads=heads)
        imgs = image_inputs(rng, 3, shape)
        imgs[1] = -imgs[0]
        cases.append((label, arch, imgs))
    for label, arch, inputs in cases:
        k64 = arch.kernel(inputs)
        khp = arch.kernel(inputs, dps=config.dps)
        for part in ("nngp", "ntk"):
            err = float(scaled_error(getattr(k64, part), getattr(khp, part)))
            if err > worst or not where:
                worst, where = err, f"{label} {part}"
    eps = float(np.finfo(float).eps)
    return measured(worst, 1e3 * eps,
                    "float64 kernels vs the dps path, |error| / sqrt(K_ii K_jj) (plain relative error on the "
                    "diagonal): every layer map is forward-stable to a few eps of the entry's scale, depth <= 6, "
                    "so 1e3 eps (2.2e-13) leaves a margin of ~10 and still promises the issue's 13 digits",
                    worst_case=where, inputs=f"{n} x {d} incl. x, -x, x/2 and 0; CNNs on 3 images incl. x, -x",
                    architectures=[label for label, _, _ in cases])
