"""The layer catalogue (ntk_equiv.layer_catalogue): every public layer has a
seeded factory of random instances, and each passes ntk_equiv.testing.check_layer.

The default run checks every flat entry at reduced sizes (those without
closed-form kernels in float64 only) and one spatial entry; every entry at full
size, at 50 digits, is behind the slow marker.
"""
import types

import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import activations, layer_catalogue as lc, testing


def test_every_public_layer_has_an_entry():
    assert lc.missing() == []
    assert set(lc.CATALOGUE) == set(lc.public_layers())  # no stale entries either


def test_a_new_public_layer_without_an_entry_is_reported():
    class Scale(ne.Layer):
        pass

    def Doubled() -> ne.Act:  # noqa: N802 - a constructor, found by its return annotation
        return ne.Act("relu")

    fake = types.SimpleNamespace(__all__=list(ne.__all__) + ["Scale", "Doubled", "helper"], Scale=Scale,
                                 Doubled=Doubled, helper=lambda: 1, **{n: getattr(ne, n) for n in ne.__all__})
    assert lc.missing(fake) == ["Doubled", "Scale"]


def test_every_activation_record_has_its_entry():
    names = {r.constructor for r in activations.CATALOGUE.values()}
    assert names <= set(lc.CATALOGUE)


@pytest.mark.parametrize("name", sorted(lc.CATALOGUE))
def test_factories_are_seeded_layers(name):
    a, b, c = lc.instance(name, 5), lc.instance(name, 5), lc.instance(name, 6)
    assert isinstance(a, ne.Layer) and repr(a) == repr(b)
    assert isinstance(c, ne.Layer)


def _cheap(name: str) -> bool:
    entry = lc.CATALOGUE[name]
    layer = entry.factory(np.random.default_rng(0))
    phi = getattr(layer, "phi", None)
    return entry.inputs == "flat" and (phi is None or phi.closed_form is not None)


CHEAP = sorted(n for n in lc.CATALOGUE if _cheap(n))

#: Entries whose 30-digit conformance run takes 1.3-9.5 s (the erf family's, sign's,
#: cos's and abs's 30-digit contexts): the default run leaves them to
#: ``test_catalogue_entry_conforms_full`` in the slow pass, which runs every entry
#: at 50 digits, so the default run keeps its 3-minute budget.
LEFT_TO_THE_FULL_RUN = {"Abs", "Act", "Cos", "Erf", "Gelu", "Sign", "Sin"}


@pytest.mark.parametrize("name", [n for n in CHEAP if n not in LEFT_TO_THE_FULL_RUN] + ["Conv"])
def test_catalogue_entry_conforms(name):
    # reduced sizes (fewer draws: a higher threshold, still a false alarm < 1e-6) and 30 digits
    entry = lc.CATALOGUE[name]
    report = testing.check_layer(entry.factory, inputs=entry.inputs, seed=1, dps=30, networks=24)
    assert {"adjoint", "ntk_fd", "precision", "batch", "rnd_laws", "monte_carlo"} <= report.checks()
    assert report.power["detectable_relative_error"] < 0.6


FLOAT64_ONLY = sorted(n for n in lc.CATALOGUE if lc.CATALOGUE[n].inputs == "flat" and n not in CHEAP)


@pytest.mark.parametrize("name", FLOAT64_ONLY)
def test_expression_machinery_entry_conforms_in_float64(name):
    # the activations without closed forms (Hermite; quadrature at kinks): every check but the
    # 50-digit one (seconds to minutes per context: test_catalogue_entry_conforms_full)
    entry = lc.CATALOGUE[name]
    report = testing.check_layer(entry.factory, seed=1, dps=None, networks=16)
    assert {"adjoint", "ntk_fd", "rnd_laws", "monte_carlo"} <= report.checks()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(lc.CATALOGUE))
def test_catalogue_entry_conforms_full(name):
    entry = lc.CATALOGUE[name]
    layer = entry.factory(np.random.default_rng(0))
    phi = getattr(layer, "phi", None)
    slow_dps = phi is not None and any(k != 0 for k in phi.kinks)  # minutes at 50 digits until 16.6
    report = testing.check_layer(entry.factory, inputs=entry.inputs, seed=2, instances=2,
                                 dps=None if slow_dps else 50)
    assert {"adjoint", "ntk_fd", "rnd_laws", "monte_carlo"} <= report.checks()


@pytest.mark.parametrize("seed", range(30))
def test_random_catalogue_architectures(seed):
    # compositions of catalogue entries: the exact kernel (finite, symmetric, PSD) or an
    # ArchitectureError before any work; a finite network runs every one, its vjp adjoint to its
    # jvp and its empirical NTK equal to finite-difference Jacobians (testing's tolerances)
    rng = np.random.default_rng(seed)
    inputs = "spatial" if seed % 3 == 0 else "flat"
    arch = lc.random_architecture(rng, inputs)
    x = rng.standard_normal((3, 4, 2) if inputs == "spatial" else (3, 3))
    try:
        k = arch.kernel(x)
    except ne.ArchitectureError:
        pass
    else:
        for m in (np.asarray(k.nngp), np.asarray(k.ntk)):
            assert np.all(np.isfinite(m)) and np.array_equal(m, m.T)
            assert np.linalg.eigvalsh(m)[0] >= -1e-12 * np.max(np.abs(m))
    for check in (testing.adjoint_error, testing.ntk_fd_error):
        err, tol = check(arch, x, rng)
        assert err <= tol, (check.__name__, repr(arch))
