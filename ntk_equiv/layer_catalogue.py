"""Every public layer of ``ntk_equiv`` with a factory of random instances.

``CATALOGUE[name]`` is an :class:`Entry`: ``factory(rng) -> Layer`` draws an
instance with random hyper-parameters from a :class:`numpy.random.Generator`
(seeded by the caller: reproducible), and ``inputs`` says what it acts on
(``"flat"`` ``(N, d)`` or ``"spatial"`` ``(N, L, C)``). Property tests,
random-architecture checks and :func:`ntk_equiv.testing.check_layer` draw
from it; :func:`public_layers` lists what ``ntk_equiv`` exports (every
``Layer`` subclass and every function returning one), and the tests fail
when one of them has no entry here.

Activation constructors come from :data:`ntk_equiv.activations.CATALOGUE`
(one entry per record, with random parameters), so a new activation record
is covered without an edit here.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from . import activations, architecture as A, layers as L


@dataclass(frozen=True)
class Entry:
    """A public layer: its name in ``ntk_equiv``, a random-instance factory, its inputs."""

    name: str
    factory: Callable[[np.random.Generator], L.Layer]
    inputs: str = "flat"


def _sigmas(rng) -> dict:
    return {"sigma_w": float(rng.uniform(0.6, 1.8)), "sigma_b": float(rng.uniform(0.0, 0.6))}


#: Activations drawn by the generic entries (``Act``, blocks): the closed-form ones, cheap at every precision.
FAST_ACTIVATIONS = activations.NAMED


def _random_act(rng) -> L.Act:
    name = str(rng.choice(FAST_ACTIVATIONS))
    record = activations.CATALOGUE[name]
    return L.Act(name, **{k: float(rng.uniform(0.05, 0.5)) for k, _ in record.parameters})


def _activation_entry(record) -> Entry:
    def factory(rng):
        return getattr(L, record.constructor)(**{k: float(rng.uniform(0.05, 1.0)) for k, _ in record.parameters})
    return Entry(record.constructor, factory)


def _conv(rng) -> L.Conv:
    return L.Conv((int(rng.integers(1, 3)),), strides=int(rng.integers(1, 3)),
                  padding=str(rng.choice(["SAME", "VALID", "CIRCULAR"])), **_sigmas(rng))


def _avg_pool(rng) -> L.AvgPool:
    return L.AvgPool((int(rng.integers(1, 3)),), strides=[None, 1][int(rng.integers(0, 2))],
                     padding=str(rng.choice(["SAME", "VALID"])))


def _residual(rng) -> L.Residual:
    # the block's non-linear map acts on its input only (see testing.exact_contexts)
    return L.residual([_random_act(rng), L.Dense(**_sigmas(rng))], alpha=float(rng.uniform(0.3, 1.2)))


def _serial(rng) -> A.Architecture:
    return A.serial(_random_act(rng), L.Dense(**_sigmas(rng)))


def _mlp(rng) -> A.Architecture:
    name = str(rng.choice(FAST_ACTIVATIONS))
    params = {k: 0.2 for k, _ in activations.CATALOGUE[name].parameters}
    s = _sigmas(rng)
    return A.mlp(1, name, s["sigma_w"], s["sigma_b"], **params)


_ENTRIES = [
    Entry("Dense", lambda rng: L.Dense(**_sigmas(rng))),
    Entry("Act", _random_act),
    *[_activation_entry(r) for r in activations.CATALOGUE.values()],
    Entry("Conv", _conv, "spatial"),
    Entry("AvgPool", _avg_pool, "spatial"),
    Entry("GlobalAvgPool", lambda rng: L.GlobalAvgPool(), "spatial"),
    Entry("Flatten", lambda rng: L.Flatten(), "spatial"),
    Entry("LayerNorm", lambda rng: L.LayerNorm()),
    Entry("Residual", _residual),
    Entry("residual", _residual),
    Entry("Serial", _serial),
    Entry("Architecture", _serial),
    Entry("serial", _serial),
    Entry("mlp", _mlp),
]

#: name in ``ntk_equiv`` -> :class:`Entry`.
CATALOGUE: Mapping[str, Entry] = {e.name: e for e in _ENTRIES}


def _returns_layer(fn) -> bool:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: not a layer constructor
        return False
    return inspect.isclass(hint) and issubclass(hint, L.Layer)


def public_layers(module=None) -> dict:
    """``{name: object}`` of what ``module`` (``ntk_equiv``) exports in ``__all__``
    that is a concrete ``Layer`` subclass or a function annotated to return a ``Layer``."""
    if module is None:
        import ntk_equiv as module
    out = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) and issubclass(obj, L.Layer) and obj is not L.Layer:
            out[name] = obj
        elif inspect.isfunction(obj) and _returns_layer(obj):
            out[name] = obj
    return out


def missing(module=None) -> list[str]:
    """Public layers of ``module`` (``ntk_equiv``) without a catalogue entry."""
    return sorted(set(public_layers(module)) - set(CATALOGUE))


def instance(name: str, seed: int | np.random.Generator = 0) -> L.Layer:
    """A random instance of the public layer ``name`` (seeded)."""
    return CATALOGUE[name].factory(np.random.default_rng(seed))


def random_architecture(rng: np.random.Generator, inputs: str = "flat", max_layers: int = 4) -> A.Architecture:
    """A random composition of catalogue entries on ``inputs`` (``"flat"`` or
    ``"spatial"``), between a first Dense/Conv and a Dense readout (with
    Flatten first when the signal is still spatial). Flat entries may follow
    spatial ones only once the signal is flat. The kernel engine may refuse the
    result (:class:`~ntk_equiv.errors.ArchitectureError`); a finite network
    runs it whatever it is.
    """
    shape = (4, 2) if inputs == "spatial" else (3,)
    first = L.Conv((2,), padding="SAME", **_sigmas(rng)) if inputs == "spatial" else L.Dense(**_sigmas(rng))
    body = [first]
    names = sorted(CATALOGUE)
    for _ in range(int(rng.integers(1, max_layers + 1))):
        spatial = len(L.Serial(*body).init_params(np.random.default_rng(0), shape, 3, 3)[1]) > 1
        pool = [n for n in names if (CATALOGUE[n].inputs == "spatial") == spatial]
        if spatial:  # an elementwise or normalising layer acts per position too
            pool += [n for n in names if n in ("Act", "Relu", "Erf", "Tanh", "LayerNorm")]
        body.append(CATALOGUE[str(rng.choice(pool))].factory(rng))
    if len(L.Serial(*body).init_params(np.random.default_rng(0), shape, 3, 3)[1]) > 1:
        body.append(L.Flatten())
    return A.Architecture(*body, L.Dense(**_sigmas(rng)))
