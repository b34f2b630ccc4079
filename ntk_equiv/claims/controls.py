"""Negative controls: deliberate sabotage under which a check must fail.

A pass means something only if the check would have failed had the
mathematics (or the training it is about) been wrong. A *control* reruns a
check with one thing broken and expects it to fail; a check that survives a
control is a failing row of ``ntk-equiv verify --controls``.

Controls come in two kinds:

* **external** ones break the library from outside, exactly as a reviewer
  would by patching public methods: ``untrained`` (``Network.train``,
  ``RND.fit``, ``BayesianRND.fit`` do nothing) and ``noise`` (a network's
  outputs replaced by Gaussian noise of the same scale). Checks need no code
  for them.
* **hooked** ones change the *expected* side of a comparison, which only the
  check knows: it passes its expected law through :func:`law_covariance`, its
  factor of 2 through :func:`factor`, its training time through :func:`time`.
  ``exchanged`` acts on the statement's forms: while it is in force,
  ``Statement.form("printed")`` returns the corrected form (or, for a statement
  that needs no correction, its ``alternative``) and ``form("corrected")`` the
  printed one, so a check reading its form (``paper.form_params``) checks the
  other statement; a check that never reads its form is not reached.
  Outside a control these return their argument unchanged. A check that
  declares a hooked control but never calls its hook is reported as such
  (the control did not reach it), never as a pass.

The active control lives in a :class:`contextvars.ContextVar`: no module
global changes, and two threads (or tasks) see their own control.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator

#: Every control, with what it breaks (the report prints these words).
CONTROLS: dict[str, str] = {
    "untrained": "training removed: Network.train, RND.fit and BayesianRND.fit do nothing",
    "noise": "network outputs replaced by Gaussian noise of the same scale",
    "cov0.7": "the law's covariance scaled by 0.7",
    "cov1.3": "the law's covariance scaled by 1.3",
    "factor": "the factor 2 at stake dropped (2 -> 1) or added (1 -> 2)",
    "t0": "t = 0 for a statement about the converged network",
    "exchanged": "the statement's printed and corrected forms exchanged",
}

#: Controls that act through a hook the check must call.
HOOKS: dict[str, str] = {"cov0.7": "law_covariance", "cov1.3": "law_covariance", "factor": "factor", "t0": "time",
                         "exchanged": "form"}

_COV_SCALE = {"cov0.7": 0.7, "cov1.3": 1.3}


@dataclass
class ControlRun:
    """The active control and the hooks a check consulted under it."""

    name: str
    consulted: set[str] = field(default_factory=set)

    @property
    def reached(self) -> bool:
        """Whether the check consulted the hook this control acts through
        (external controls always reach it)."""
        hook = HOOKS.get(self.name)
        return hook is None or hook in self.consulted


_ACTIVE: ContextVar[ControlRun | None] = ContextVar("ntk_equiv_control", default=None)


def active() -> str | None:
    """The name of the control in force, or ``None``."""
    run = _ACTIVE.get()
    return None if run is None else run.name


def external() -> str | None:
    """The control that changes what the networks do (a cache key): external
    controls only; hooked ones change the expected side, not the run."""
    name = active()
    return name if name is not None and name not in HOOKS else None


def _consult(hook: str) -> ControlRun | None:
    run = _ACTIVE.get()
    if run is not None:
        run.consulted.add(hook)
    return run


def law_covariance(cov):
    """The covariance a check expects, as the check states it (``cov0.7`` /
    ``cov1.3``: scaled by 0.7 / 1.3). Works for ndarrays, mpmath matrices and
    scalars (anything with ``*`` by a float)."""
    run = _consult("law_covariance")
    if run is None or run.name not in _COV_SCALE:
        return cov
    return cov * _COV_SCALE[run.name]


def factor(value):
    """A factor of 2 at stake (``factor``: 2 -> 1 and 1 -> 2; any other value
    is doubled, so the control always changes it)."""
    run = _consult("factor")
    if run is None or run.name != "factor":
        return value
    return 1 if value == 2 else 2 * value


def time(t):
    """The training time a check uses for the converged network (``t0``: 0)."""
    run = _consult("time")
    if run is None or run.name != "t0":
        return t
    return 0 * t if t is not None else 0


def declares(*names: str):
    """Decorator: the controls under which the decorated check must fail
    (stored as ``fn.controls``; the runner of ``verify --controls`` reads it).

    A statement about trained networks declares ``untrained``; a comparison
    with a law declares ``cov0.7`` and ``cov1.3``; one where a factor 2 is at
    stake declares ``factor``; one about the converged network ``t0``.
    ``noise`` suits any check of network outputs; ``exchanged`` is applied to
    statements by the runner and need not be declared."""
    unknown = [n for n in names if n not in CONTROLS]
    if unknown:
        raise ValueError(f"unknown control(s) {unknown}; choose from {', '.join(CONTROLS)}")

    def mark(fn):
        fn.controls = tuple(dict.fromkeys(getattr(fn, "controls", ()) + names))
        return fn

    return mark


#: The schema of a statistical check's stated power, ``Result.details["power"]``:
#: ``{alternative: probability of failing under it}`` at the sizes the check ran,
#: with ``details["power_method"]`` saying how it was obtained ("analytic: ..."
#: from the test's null distribution, or "simulation: S seeded replicates").
#: Alternatives are named like the controls: "cov0.7", "cov1.3", "factor", ...
POWER_KEY = "power"


@contextmanager
def applied(name: str) -> Iterator[ControlRun]:
    """Run the body under control ``name``; yields the :class:`ControlRun`
    recording the hooks consulted. External controls are installed here."""
    if name not in CONTROLS:
        raise ValueError(f"unknown control {name!r}; choose from {', '.join(CONTROLS)}")
    run = ControlRun(name)
    token = _ACTIVE.set(run)
    try:
        with _external(name):
            yield run
    finally:
        _ACTIVE.reset(token)


def exchange_partner(statement):
    """The form ``exchanged`` swaps with the printed one: the corrected form, or
    the ``alternative`` of a statement that needs no correction (``None``: the
    statement has nothing to exchange, and the control cannot apply)."""
    corrected = getattr(statement, "corrected", None)
    return corrected if corrected is not None else getattr(statement, "alternative", None)


@contextmanager
def _external(name: str) -> Iterator[None]:
    if name == "exchanged":
        with _exchanged_forms():
            yield
        return
    if name not in ("untrained", "noise"):
        yield
        return
    from unittest import mock

    import numpy as np

    from .. import network, rnd

    if name == "untrained":
        patches = [mock.patch.object(network.Network, "train", _untrained_train),
                   mock.patch.object(rnd.RND, "fit", _untrained_fit),
                   mock.patch.object(rnd.BayesianRND, "fit", _untrained_fit)]
    else:
        original = network.Network.apply
        rng = np.random.default_rng(20261203)

        def noisy_apply(self, x):
            out = original(self, x)
            scale = float(np.sqrt(np.mean(np.square(out)))) or 1.0
            return scale * rng.standard_normal(np.shape(out))

        patches = [mock.patch.object(network.Network, "apply", noisy_apply)]
    for p in patches:
        p.start()
    try:
        yield
    finally:
        for p in reversed(patches):
            p.stop()


@contextmanager
def _exchanged_forms() -> Iterator[None]:
    # the swap is made where every check reads its form (Statement.form), so the
    # checks receive the other Form object and nothing else changes
    from unittest import mock

    from . import paper

    original = paper.Statement.form

    def exchanged(self, name):
        _consult("form")
        partner = exchange_partner(self)
        if partner is None or name not in ("printed", "corrected"):
            return original(self, name)
        return partner if name == "printed" else self.printed

    with mock.patch.object(paper.Statement, "form", exchanged):
        yield


def _untrained_train(self, *args, **kwargs):
    return self


def _untrained_fit(self, *args, **kwargs):
    return self
