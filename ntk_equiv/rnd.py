"""Random network distillation, Bayesian RND and posterior sampling
(docs/theory.md C6-C8), in the infinite-width theory and as real finite-width models.

Infinite width
--------------
Every law here is one call of :func:`ntk_equiv.formulas.projected_cov` (the
training projector ``P_t C P_t^* ``) or of ``formulas.posterior_mean/cov``, on
kernel blocks from :func:`ntk_equiv.dynamics.kernel_blocks`; float64 and
mpmath (``dps=``) therefore share one formula.

* :func:`rnd_covariance`: C6, ``Cov(eps_t) = P_t (kappa_u + kappa_g) P_t^*`` with
  the projector built from the predictor's NTK ``Theta_u``.
* :func:`bayesian_rnd_covariance`: C7/C7a/C7b written as an *RND* law (the
  projector applied to the prior of ``h = u_0 - g`` with the target noise
  added on the train block), deliberately **not** as a posterior formula, so
  that ``bayesian_rnd_covariance == gp_posterior(...).cov`` is a real check.
* :func:`gp_posterior`: the GP posterior with prior ``Theta`` or ``K``.

Finite width
------------
:class:`RND` and :class:`BayesianRND` train real networks with
:meth:`Network.train` / :meth:`Network.fit_until` (non-linear by default,
``linearized=True`` for the first-order Taylor model). ``K = heads`` outputs
share the hidden layers; every head has its own target. Notation of
docs/theory.md (the paper's): predictor ``u(x; vartheta_t)``, target
``g(x; psi_0)``, errors ``eps_i = u_i - g_i`` of the ``K`` heads, NNGP kernel
``kappa``, NTK ``Theta``. The API keeps older names, the reverse of the paper:

============================ ==================================================
API name                     paper symbol
============================ ==================================================
``model.g0``                 ``u(.; vartheta_0)``, the predictor at initialisation
``model.g``                  ``u(.; vartheta_t)``, the trained predictor
``RND.u``                    the target network ``g(.; psi_0)``
``model.target(x)``          the target's values ``g(x)`` (``BayesianRND``: ``g~(x)``)
``RND.residual(x)``          ``eps(x) = u_t(x) - g(x)``, one column per head
``BayesianRND.sample(x)``    ``eps^b(x) = u(x; vartheta_inf) - g~(x)``
``BayesianRND.xi(m)``        the tangent; ``psi_0* = -xi`` (see :class:`BayesianRND`)
``heads``                    ``K``
============================ ==================================================
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import formulas
from .dynamics import Gaussian, _train_operator, check_time, kernel_blocks
from .errors import ConvergenceError, ParameterError, ShapeError
from .kernels import check_distinct, validate_inputs
from .network import Network, tree_flatten, tree_map
from .precision import backend, to_public
from .validation import (
    check_architecture, check_bool, check_choice, check_int, check_labels, check_nonnegative, check_positive,
    check_positive_int, check_seed,
)

#: Default relative residual tolerance of training to convergence (``t = inf``):
#: ``max_i |f(x_i) - y_i| <= tol * max(1, max|y|)`` (``Network.fit_until``; with
#: ridge, the gradient norm relative to its initial value).
DEFAULT_TOL = 1e-8
#: Default step cap of training to convergence; hitting it raises ConvergenceError.
DEFAULT_MAX_STEPS = 50_000


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_arch(arch: Any, name: str) -> Any:
    return check_architecture(arch, name)


def _check_noise(noise: Any, name: str = "noise") -> float:
    return check_nonnegative(noise, name)


def _check_heads(heads: Any) -> int:
    return check_positive_int(heads, "heads")


def _check_fit_args(lr, steps, tol, max_steps) -> tuple:
    """``lr`` None or > 0, ``steps`` None or an int >= 0, ``tol > 0``, ``max_steps >= 1``."""
    lr = check_positive(lr, "lr", allow_none=True)
    steps = None if steps is None else check_int(steps, "steps", minimum=0)
    return lr, steps, check_positive(tol, "tol"), check_positive_int(max_steps, "max_steps")


def _check_x_test(x_test: Any, x_train: np.ndarray) -> np.ndarray:
    return validate_inputs(x_test, "x_test", x_train.shape[1:])


# --------------------------------------------------------------------------- #
# infinite width
# --------------------------------------------------------------------------- #
def rnd_covariance(predictor, x_train, x_test, target=None, t=None, lr=1.0, ridge=0.0, centred=False,
                   dps=None, steps=None):
    """C6: covariance of one head's RND error ``eps_t = u_t - g`` on ``x_test``.

    ``Cov(eps_t) = P_t (kappa_u + kappa_g) P_t^*`` with ``P_t`` the training projector
    of the predictor (``A_t`` from ``Theta_u,XX``, ridge ``lambda``), ``kappa_u`` the
    predictor's NNGP kernel and ``kappa_g`` the target's (``target=None``: the
    predictor's architecture, so C6a ``Cov(eps_t) = 2 Sigma_t``). The mean is 0
    and heads are i.i.d.

    Parameters
    ----------
    predictor, target : architectures (``target`` an architecture or None).
    t, steps, lr, ridge : training time as in :func:`ntk_equiv.ensemble`
        (``t=None`` and ``steps=None``: trained to convergence).
    centred : the centred predictor ``u - u_0`` (``kappa_u = 0``, C6b).
    dps : ``None`` for float64, digits for mpmath (returns ``mpmath.matrix``).
    """
    t, lr, ridge, steps = check_time(t, lr, ridge, steps)
    centred = check_bool(centred, "centred")
    _check_arch(predictor, "predictor")
    if target is not None:
        if isinstance(target, Network):
            raise ParameterError("rnd_covariance takes a target *architecture*; a finite Network "
                                 "belongs to ne.RND(target=...)")
        _check_arch(target, "target")
    x_train = validate_inputs(x_train, "x_train")
    _check_x_test(x_test, x_train)
    if t is None and steps is None and float(ridge) == 0:
        check_distinct(x_train, "x_train", "Theta_XX (t = inf, no ridge)")
    kg, tg = kernel_blocks(predictor, x_train, x_test, dps)
    ku = kg if target is None else kernel_blocks(target, x_train, x_test, dps)[0]
    bk = backend(dps)
    with bk.context():
        A = _train_operator(tg[2], bk, t, lr, ridge, steps)  # the ensemble's, with its stability errors
        cov = formulas.rnd_error_cov(kg, ku, tg[1], A, centred=centred)
    return to_public(cov, dps)


def bayesian_rnd_covariance(arch, x_train, x_test, noise=0.0, readout_only=False, dps=None):
    """C7 (and C7a, C7b): covariance of the Bayesian-RND residual at ``t = inf``.

    The target is chosen so that ``h = u_0 - g ~ GP(0, Theta)`` (``readout_only``:
    ``GP(0, kappa)`` and the predictor's training kernel is ``Theta_u = kappa``). With
    noise ``lambda`` the predictor is trained with ridge ``lambda`` on
    ``g(x_i) + e_i``, ``e_i ~ N(0, lambda)``, so the error is the projector
    (``A = (Theta_u,XX + lambda I)^{-1}``) applied to ``h`` whose train block is
    ``h(X) - e``:

    ``Cov(eps_inf) = P (Theta + lambda I_XX) P^*``, where ``lambda I_XX`` adds
    ``lambda I`` to the ``X-X`` block only.

    This is written as an RND law on purpose: that it equals the GP posterior
    covariance ``Theta - Theta_xX (Theta_XX + lambda I)^{-1} Theta_Xx'`` is the
    claim, checked against :func:`gp_posterior`.
    """
    noise = _check_noise(noise)
    readout_only = check_bool(readout_only, "readout_only")
    _check_arch(arch, "arch")
    x_train = validate_inputs(x_train, "x_train")
    _check_x_test(x_test, x_train)
    if noise == 0:
        check_distinct(x_train, "x_train", "the train kernel (noise = 0)")
    k, th = kernel_blocks(arch, x_train, x_test, dps)
    prior = k if readout_only else th   # law of h = u_0 - g
    gain = k if readout_only else th    # training kernel Theta_u of the predictor
    bk = backend(dps)
    with bk.context():
        lam = bk.scalar(noise)
        A = formulas.train_operator(gain[2], bk, ridge=lam)
        cov = formulas.bayesian_rnd_cov(prior, gain[1], A, lam, bk)
    return to_public(cov, dps)


def gp_posterior(arch, x_train, y_train, x_test, prior="ntk", noise=0.0, dps=None) -> Gaussian:
    """Posterior predictive of Bayesian inference with prior ``GP(0, k)``,
    ``k = Theta`` (``prior="ntk"``) or ``kappa`` (``"nngp"``), and Gaussian noise of
    variance ``noise`` on the labels ``y_train`` ``(N,)`` or ``(N, K)``:

    mean ``k_xX (k_XX + noise I)^{-1} Y``, cov ``k_xx - k_xX (k_XX + noise I)^{-1} k_Xx'``
    (``formulas.posterior_mean/cov``; the same covariance for every output).
    """
    prior = check_choice(prior, "prior", ("ntk", "nngp"))
    noise = _check_noise(noise)
    _check_arch(arch, "arch")
    x_train = validate_inputs(x_train, "x_train")
    _check_x_test(x_test, x_train)
    Y = _labels(y_train, len(x_train), None)
    if noise == 0:
        check_distinct(x_train, "x_train", "the prior's train kernel (noise = 0)")
    k, th = kernel_blocks(arch, x_train, x_test, dps)
    kxx, kxX, kXX = th if prior == "ntk" else k
    bk = backend(dps)
    with bk.context():
        lam = bk.scalar(noise)
        mean = formulas.posterior_mean(kxX, kXX, bk.asarray(Y), bk, noise=lam)
        cov = formulas.posterior_cov(kxx, kxX, kXX, bk, noise=lam)
    return Gaussian(to_public(mean, dps), to_public(cov, dps))


def _labels(y, n: int, heads: int | None) -> np.ndarray:
    """Labels as ``(N, K)`` float64; with ``heads`` given, ``(N,)``/``(N, 1)`` is
    broadcast to every head (each head samples the posterior of the same data)."""
    Y = check_labels(y, n, "labels")
    if heads is not None:
        if Y.shape[1] == 1:
            Y = np.repeat(Y, heads, axis=1)
        elif Y.shape[1] != heads:
            raise ShapeError(f"labels have {Y.shape[1]} columns; give 1 or heads={heads}")
    return Y


# --------------------------------------------------------------------------- #
# finite width
# --------------------------------------------------------------------------- #
def _child_seeds(seed, k: int) -> list[np.random.SeedSequence]:
    """``k`` independent seed sequences from an int seed (or a Generator)."""
    seed = check_seed(seed)
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**63))
    if isinstance(seed, np.random.SeedSequence):
        return seed.spawn(k)
    return np.random.SeedSequence(seed).spawn(k)


def _train(net: Network, x, y, lr, steps, ridge, tol, max_steps, trainable) -> tuple[Network, float, int]:
    """Train ``net`` on ``(x, y)``: ``steps`` steps of gradient descent if given,
    else until :meth:`Network.fit_until`'s relative tolerance ``tol``
    (:class:`ConvergenceError` after ``max_steps``).

    Default ``lr = 1 / (lambda_max + ridge)`` with ``lambda_max`` the largest
    eigenvalue of the empirical train NTK of the trained parameters at
    initialisation: half the stability bound ``2 / (lambda_max + ridge)``, so
    every eigen-direction decays monotonically, with a factor-2 margin for the
    ``O(n^{-1/2})`` drift of a non-linear network's NTK during training.
    """
    if lr is None:
        lam = net._train_lambda_max(x, trainable) + ridge
        lr = 1.0 / lam
    if steps is not None:
        return net.train(x, y, lr=lr, steps=steps, ridge=ridge, trainable=trainable), lr, int(steps)
    try:
        net, done = net.fit_until(x, y, lr=lr, tol=tol, max_steps=max_steps, ridge=ridge, trainable=trainable)
    except ConvergenceError as exc:
        hint = (" With ridge/noise > 0 a non-linear network with a kinked activation (relu, abs, ...) has its "
                "minimiser on a kink and gradient descent chatters around it: use a smooth activation, "
                "linearized=True, or a fixed number of steps=." if ridge > 0 else
                " Raise max_steps or tol, or spread the training inputs (cond(Theta_XX) sets the rate).")
        raise ConvergenceError(str(exc) + "." + hint) from None
    return net, lr, done


class RND:
    """Random network distillation at finite width (C6).

    A predictor ``u`` (architecture ``predictor``, ``K = heads`` outputs sharing the
    hidden layers) is trained on ``1/2 sum_j ||u(x_j) - g(x_j)||^2`` towards a
    fixed random target network ``g`` (architecture ``target``, default the
    predictor's, ``heads`` outputs: every head has its own target output).
    ``residual(x) = eps(x) = u_t(x) - g(x)``, ``error(x) = eps^2(x) = (1/K) sum_i eps_i(x)^2``.
    Attributes keep older names: ``g0``/``g`` are ``u_0``/``u_t``, ``u`` is the target ``g``.

    Parameters
    ----------
    predictor : architecture of the predictor ``u``.
    target : None (same architecture), an architecture, or a finite
        :class:`Network` with ``out_dim == heads`` used as it is.
    width, heads, seed : hidden width ``n``, outputs ``K``, seed of both draws.
    centred : predictor ``u - u_0`` (C6b, ``kappa_u = 0``): trained on ``g + u_0``
        (same gradients), error ``u_t - u_0 - g``.
    linearized : train the first-order Taylor model of ``u`` around ``vartheta_0``.
    """

    def __init__(self, predictor, target=None, width: int = 1024, heads: int = 64, seed=0, *,
                 centred: bool = False, linearized: bool = False):
        self.predictor = _check_arch(predictor, "predictor")
        self.heads = _check_heads(heads)
        self.centred, self.linearized = check_bool(centred, "centred"), check_bool(linearized, "linearized")
        width = check_positive_int(width, "width")
        sg, su = _child_seeds(seed, 2)
        self.g0 = predictor.init(width, out_dim=self.heads, seed=np.random.default_rng(sg))
        if target is None:
            target = predictor
        if isinstance(target, Network):
            if target.out_dim != self.heads:
                raise ShapeError(f"target network has {target.out_dim} outputs, the predictor has heads={self.heads}")
            self.u = target
        else:
            self.u = _check_arch(target, "target").init(width, out_dim=self.heads, seed=np.random.default_rng(su))
        self.g = self.g0
        self.lr_: float | None = None
        self.steps_: int = 0

    def _x(self, x, name="x") -> np.ndarray:
        x = validate_inputs(x, name, self.g0.in_dim)
        if self.g0.in_dim is None:
            self.g0.apply(x)  # draws the parameters now that d is known
            self.g = self.g0
        return x

    def target(self, x) -> np.ndarray:
        """The target ``g(x)``, shape ``(n, heads)``."""
        return self.u.apply(self._x(x))

    def fit(self, x, lr: float | None = None, steps: int | None = None, ridge: float = 0.0,
            tol: float = DEFAULT_TOL, max_steps: int = DEFAULT_MAX_STEPS) -> "RND":
        """Train the predictor ``u`` (from ``vartheta_0``) on the target's values ``g(x_i; psi_0)``.

        ``steps=None``: until the relative train residual is below ``tol``
        (``t = inf``); else exactly ``steps`` gradient-descent steps (``A_k``).
        ``lr=None``: ``1 / (lambda_max(empirical Theta_XX) + ridge)``.
        """
        x = self._x(x)
        ridge = _check_noise(ridge, "ridge")
        lr, steps, tol, max_steps = _check_fit_args(lr, steps, tol, max_steps)
        y = self.u.apply(x) + (self.g0.apply(x) if self.centred else 0.0)
        start = self.g0.linearize() if self.linearized else self.g0
        self.g, self.lr_, self.steps_ = _train(start, x, y, lr, steps, ridge, tol, max_steps, "all")
        return self

    def residual(self, x) -> np.ndarray:
        """``eps(x) = u_t(x) - g(x)`` (centred: ``u_t - u_0 - g``), shape ``(n, heads)``."""
        x = self._x(x)
        r = self.g.apply(x) - self.u.apply(x)
        return r - self.g0.apply(x) if self.centred else r

    def error(self, x) -> np.ndarray:
        """``eps^2(x) = (1/K) sum_i eps_i(x)^2``, shape ``(n,)``."""
        return np.mean(self.residual(x) ** 2, axis=1)


class BayesianRND:
    """Bayesian RND and posterior sampling at finite width (C7, C8; the paper's
    Prop 5.7, Thm 5.8, Cor 5.9).

    Paper notation and API names: the predictor ``u(x; vartheta)`` with ``K``
    heads (``heads``) is ``model.g0`` at initialisation and ``model.g`` after
    training; the target of head ``m`` is ``g_m(x)``, returned by
    ``target(x)``; it is built from the predictor's own initial network
    ``u(.; vartheta_0)`` so that the prior ``h_m = u_m(.; vartheta_0) - g_m``
    (``prior_sample``) has the law of C7 (``GP(0, Theta)``; ``GP(0, kappa)`` with
    ``readout_only``). The defaults are the paper's construction (Prop 5.7):
    the target ``g~(x) = J^hid(x; vartheta_0) psi_0*``, **one** JVP of the
    predictor at initialisation with **one** tangent shared by all heads, zero
    on the readout layer. The API draws the tangent as ``xi`` (``xi(m)``,
    ``xi_flat(m)``) and computes ``target(x) = -J^hid_0(x) xi``: this is ``g~``
    with ``psi_0* = -xi`` (the law of ``xi`` is symmetric).

    * ``jacobian="hidden"`` (default): ``g_m(x) = -J^hid_{0,m}(x) xi``, the
      Jacobian of head ``m`` w.r.t. every parameter except the readout layer
      (a forward-mode ``Network.jvp`` with a tangent that is zero on the
      readout). ``h -> GP(0, kappa + (Theta - kappa)) = GP(0, Theta)`` as the
      width grows (the readout's share of ``Theta`` is ``kappa``).
    * ``jacobian="full"``: ``g = u(.; vartheta_0) - J_0 xi`` with the full
      Jacobian, so ``h = J_0 xi`` exactly (C7c).
    * ``shared_xi=True`` (default): one tangent for all heads (the paper);
      ``shared_xi=False``: an independent tangent ``xi_m`` per head.
    * ``readout_only=True`` (C7b): only the readout is trained, ``g = 0`` and
      ``h = u(.; vartheta_0)``; the model is exactly linear in the readout,
      with features the last hidden layer, so this is Bayesian linear
      regression on those features at every width (NNGP ``kappa`` posterior in
      the limit).

    ``fit(x, y)`` trains head ``m`` on ``g_m(x_i) + y_i + e_{im}``,
    ``e ~ N(0, noise)``, with ridge ``noise`` (``lambda``);
    ``sample(x) = eps^b(x) = u(x; vartheta_inf) - g(x)``, one posterior sample
    per head. ``fit(x)`` without labels is the paper's Bayesian RND (Thm 5.8);
    adding a mean estimate to its samples is Cor 5.9 (exact only with the
    exact posterior mean, see :mod:`ntk_equiv.experiments.mean_estimate`);
    labels folded into the target (C8) need no mean estimate.

    Which combinations are exact at finite width (``eps^b`` given
    ``vartheta_0`` is the joint ``K``-output Bayesian-linear-regression
    posterior with features ``J_0``, prior ``N(0, I)``; ``tests/test_rnd.py``
    shows each):

    ========== ========== ========= ==========================================
    linearized jacobian   shared_xi law of the sample at finite width
    ========== ========== ========= ==========================================
    True       "full"     True      exact, any width (C7c; Matheron's update)
    True       "full"     False     exact for ``heads=1`` only; with several
                                    heads the per-head prior misses the
                                    cross-head blocks of ``J_0 J_0^T``
    True       "hidden"   either    limit only: ``h | vartheta_0`` has mean
                                    ``u(.; vartheta_0) != 0`` and covariance
                                    ``J^hid J^hid^T != J_0 J_0^T``
    False      any        either    limit only: the trained network moves off
                                    its linearisation by ``O(n^{-1/2})`` (C4)
    ========== ========== ========= ==========================================

    In the infinite-width limit every combination gives i.i.d. heads with the
    NTK-GP posterior law (the cross-head NTK blocks vanish, Prop 5.5).

    Training to convergence with ``noise > 0`` (ridge) needs a smooth
    activation for the non-linear network: with relu/abs the ridge minimiser
    sits on a kink and gradient descent chatters (``ConvergenceError`` with a
    hint); ``linearized=True`` or a fixed ``steps=`` always work.
    """

    def __init__(self, arch, width: int = 1024, heads: int = 64, noise: float = 0.0, seed=0, *,
                 readout_only: bool = False, jacobian: str = "hidden", shared_xi: bool = True,
                 linearized: bool = False):
        self.arch = _check_arch(arch, "arch")
        self.heads = _check_heads(heads)
        self.noise = _check_noise(noise)
        width = check_positive_int(width, "width")
        self.readout_only = check_bool(readout_only, "readout_only")
        self.jacobian = check_choice(jacobian, "jacobian", ("hidden", "full"))
        self.shared_xi, self.linearized = check_bool(shared_xi, "shared_xi"), check_bool(linearized, "linearized")
        sg, sxi, self._noise_seed = _child_seeds(seed, 3)
        self.g0 = arch.init(width, out_dim=self.heads, seed=np.random.default_rng(sg))
        # one seed per xi draw: xi_m is regenerated on demand instead of storing
        # heads x num_params numbers
        self._xi_seeds = sxi.spawn(1 if self.shared_xi else self.heads)
        self.g = self.g0
        self.noise_draw_: np.ndarray | None = None
        self.lr_: float | None = None
        self.steps_: int = 0

    def _x(self, x, name="x") -> np.ndarray:
        x = validate_inputs(x, name, self.g0.in_dim)
        if self.g0.in_dim is None:
            self.g0.apply(x)
            self.g = self.g0
        return x

    def xi(self, m: int = 0):
        """The tangent ``xi_m`` (a parameter tree; zero on the readout layer for
        ``jacobian="hidden"``, where ``psi_0* = -xi``). ``shared_xi``: the same
        for every ``m``."""
        if self.g0.params is None:
            raise ParameterError("the network has no parameters yet: call fit() or target() with inputs first")
        m = check_int(m, f"head index m (0 to heads - 1 = {self.heads - 1})", minimum=0, maximum=self.heads - 1)
        rng = np.random.default_rng(self._xi_seeds[0 if self.shared_xi else m])
        tree = tree_map(lambda p: rng.standard_normal(p.shape), self.g0.params)
        if self.jacobian == "hidden":
            ro = self.arch.readout_index
            tree[ro] = tree_map(np.zeros_like, tree[ro])
        return tree

    def xi_flat(self, m: int = 0) -> np.ndarray:
        """:meth:`xi` flattened to a vector in the order of ``Network.jacobian``'s columns."""
        return tree_flatten(self.xi(m))

    def target(self, x) -> np.ndarray:
        """The target's values ``g(x)``, shape ``(n, heads)``: ``g~(x) = -J^hid_0(x) xi``
        by default, ``u(x; vartheta_0) - J_0(x) xi`` (``jacobian="full"``), 0 (``readout_only``)."""
        x = self._x(x)
        if self.readout_only:
            return np.zeros((len(x), self.heads))
        if self.shared_xi:
            jxi = self.g0.jvp(x, self.xi(0))
        else:
            jxi = np.column_stack([self.g0.jvp(x, self.xi(m))[:, m] for m in range(self.heads)])
        return self.g0.apply(x) - jxi if self.jacobian == "full" else -jxi

    def prior_sample(self, x) -> np.ndarray:
        """The prior draw ``h(x) = u(x; vartheta_0) - g(x)``, shape ``(n, heads)``."""
        return self.g0.apply(self._x(x)) - self.target(x)

    def fit(self, x, y=None, lr: float | None = None, steps: int | None = None,
            tol: float = DEFAULT_TOL, max_steps: int = DEFAULT_MAX_STEPS) -> "BayesianRND":
        """Train head ``m`` of the predictor on ``g_m(x_i) + y_i + e_{im}`` with ridge ``noise``.

        ``y``: ``None`` (zeros), ``(N,)``/``(N, 1)`` (the same labels for every
        head) or ``(N, heads)``. Training starts from ``vartheta_0``; ``lr``,
        ``steps``, ``tol``, ``max_steps`` as in :meth:`RND.fit`.
        """
        x = self._x(x)
        lr, steps, tol, max_steps = _check_fit_args(lr, steps, tol, max_steps)
        if self.noise == 0:
            check_distinct(x, "x", "the train kernel (noise = 0)")
        Y = np.zeros((len(x), self.heads)) if y is None else _labels(y, len(x), self.heads)
        noise_rng = np.random.default_rng(self._noise_seed)  # the same e for every fit of this model
        self.noise_draw_ = math.sqrt(self.noise) * noise_rng.standard_normal((len(x), self.heads))
        targets = self.target(x) + Y + self.noise_draw_
        start = self.g0.linearize() if (self.linearized and not self.readout_only) else self.g0
        trainable = "readout" if self.readout_only else "all"
        self.g, self.lr_, self.steps_ = _train(start, x, targets, lr, steps, self.noise, tol, max_steps, trainable)
        return self

    def sample(self, x) -> np.ndarray:
        """``eps^b(x) = u(x; vartheta_t) - g(x)``: one posterior sample per head, ``(n, heads)``."""
        x = self._x(x)
        return self.g.apply(x) - self.target(x)
