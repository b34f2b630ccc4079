"""One test per refusal rule of the layers' ``signal_out`` (issue 16): each
refusal is an :class:`~ntk_equiv.errors.ArchitectureError` raised by
``kernel()`` before any numerical work, naming the layer (by its repr and its
place in the architecture) and what to insert or move.

The accepted compositions of the issue's table are checked against
independent references in tests/test_layer_protocol.py (wide plain-numpy
networks, exact values) and tests/test_composites.py (act-after-act).
"""
import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import kernels
from ntk_equiv.errors import ArchitectureError

RNG = np.random.default_rng(1617)
X = RNG.standard_normal((3, 3))
IMAGES = RNG.standard_normal((3, 5, 2))


class _NoSignal(ne.Layer):
    """A custom layer that does not declare signal_out (the conservative default applies)."""

    def __repr__(self):
        return "_NoSignal()"

    def kernel_fn(self, state, bk):
        return state

    def apply(self, params, x):
        return x, None


#: rule -> (architecture, input, the refused layer's repr, its place, what the message says to do)
RULES = {
    # layers/base.py spatial_input: Conv and pooling need spatial axes
    "conv-after-flatten": (ne.serial(ne.Conv(2), ne.Flatten(), ne.Conv(2), ne.Dense()), IMAGES,
                           "Conv((2,)", "layer 3 of 4", "move Flatten after it"),
    "avgpool-after-flatten": (ne.serial(ne.Conv(2), ne.Flatten(), ne.AvgPool(2), ne.Dense()), IMAGES,
                              "AvgPool((2,)", "layer 3 of 4", "move Flatten after it"),
    "globalavgpool-after-flatten": (ne.serial(ne.Conv(2), ne.Flatten(), ne.GlobalAvgPool(), ne.Dense()), IMAGES,
                                    "GlobalAvgPool()", "layer 3 of 4", "move Flatten after it"),
    # layers/base.py Layer.signal_out: an undeclared layer needs a Gaussian input, not after Flatten
    "undeclared-after-activation": (ne.serial(ne.Dense(), ne.Relu(), _NoSignal(), ne.Dense()), X,
                                    "_NoSignal()", "layer 3 of 4", "override signal_out()"),
    "undeclared-after-flatten": (ne.serial(ne.Conv(2), ne.Flatten(), _NoSignal(), ne.Dense()), IMAGES,
                                 "_NoSignal()", "layer 3 of 4", "override signal_out()"),
    # layers/activation.py: not a function of one Gaussian pre-activation per point
    "activation-after-undeclared": (ne.serial(ne.Dense(), _NoSignal(), ne.Erf(), ne.Dense()), X,
                                    "Act('erf')", "layer 3 of 4", "insert a Dense or Conv layer before it"),
    "activation-after-residual-sum": (
        ne.serial(ne.Dense(), ne.Erf(), ne.residual([ne.Dense()]), ne.Erf(), ne.Dense()), X,
        "Act('erf')", "layer 4 of 5", "insert a Dense or Conv layer before it"),
    "activation-after-global-pool": (
        ne.serial(ne.Conv(2), ne.Erf(), ne.GlobalAvgPool(), ne.Erf(), ne.Dense()), IMAGES,
        "Act('erf')", "layer 4 of 5", "insert a Dense or Conv layer before it"),
    # layers/activation.py: act-after-act whose composite has no computable dual maps
    "activation-after-cos": (ne.serial(ne.Dense(), ne.Cos(), ne.Relu(), ne.Dense()), X,
                             "Act('relu')", "layer 3 of 4", "insert a Dense or Conv layer before it"),
    # layers/norm.py: LayerNorm needs a known channel mean
    "layernorm-after-residual-sum": (
        ne.serial(ne.Dense(), ne.Relu(), ne.residual([ne.Dense()]), ne.LayerNorm(), ne.Dense()), X,
        "LayerNorm()", "layer 4 of 5", "insert a Dense or Conv layer before it"),
    "layernorm-after-flatten-of-activation": (
        ne.serial(ne.Conv(2), ne.Relu(), ne.Flatten(), ne.LayerNorm(), ne.Dense()), IMAGES,
        "LayerNorm()", "layer 4 of 5", "insert a Dense between Flatten and it"),
    # layers/residual.py: a skip after Flatten, and a skip that is the raw input
    "residual-after-flatten": (ne.serial(ne.Conv(2), ne.Flatten(), ne.residual([ne.Dense()]), ne.Dense()), IMAGES,
                               "residual(", "layer 3 of 4", "insert a Dense between Flatten and it"),
    "residual-after-flatten-of-activation": (
        ne.serial(ne.Conv(2), ne.Relu(), ne.Flatten(), ne.residual([ne.Dense()]), ne.Dense()), IMAGES,
        "residual(", "layer 4 of 5", "insert a Dense between Flatten and it"),
    "residual-on-raw-input": (ne.serial(ne.residual([ne.Dense()]), ne.Dense()), X,
                              "residual(", "layer 1 of 2", "insert a Dense or Conv layer before it"),
    # layers/residual.py: a refusal inside the block names the block and the layer in it
    "refusal-inside-a-block": (
        ne.serial(ne.Dense(), ne.residual([ne.Relu(), ne.residual([ne.Dense()]), ne.Relu(), ne.Dense()]), ne.Dense()),
        X, "in the block of residual(", "layer 2 of 3", "layer 3 of 4, Act('relu')"),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_refusal_names_the_layer_before_any_work(rule, monkeypatch):
    arch, x, layer, place, todo = RULES[rule]

    def no_work(*args, **kwargs):  # pragma: no cover - reached only if the check comes too late
        raise AssertionError("kernel() computed before checking the architecture")

    monkeypatch.setattr(kernels, "evaluate", no_work)
    with pytest.raises(ArchitectureError) as info:
        arch.kernel(x)
    msg = str(info.value)
    assert layer in msg and place in msg and todo in msg, msg
    # the message starts with the place, then the refused layer
    assert msg.index(place) < msg.index(layer), msg


@pytest.mark.parametrize("rule", sorted(r for r in RULES if not r.endswith("pool-after-flatten")
                                         and r != "conv-after-flatten"))  # those have no spatial axes at all
def test_each_refused_architecture_still_runs_at_finite_width(rule):
    arch, x, _, _, _ = RULES[rule]
    assert np.all(np.isfinite(arch.init(4, seed=0).apply(x)))


def test_the_fixes_the_messages_name_are_accepted():
    # what each message says to do gives a computable architecture (a refusal that cannot be
    # acted on would be a dead end)
    fixed = [
        (ne.serial(ne.Conv(2), ne.Conv(2), ne.Flatten(), ne.Dense()), IMAGES),
        (ne.serial(ne.Conv(2), ne.AvgPool(2), ne.Flatten(), ne.Dense()), IMAGES),
        (ne.serial(ne.Dense(), ne.Erf(), ne.residual([ne.Dense()]), ne.Dense(), ne.Erf(), ne.Dense()), X),
        (ne.serial(ne.Conv(2), ne.Erf(), ne.GlobalAvgPool(), ne.Dense(), ne.Erf(), ne.Dense()), IMAGES),
        (ne.serial(ne.Conv(2), ne.Relu(), ne.Flatten(), ne.Dense(), ne.LayerNorm(), ne.Dense()), IMAGES),
        (ne.serial(ne.Conv(2), ne.Flatten(), ne.Dense(), ne.residual([ne.Dense()]), ne.Dense()), IMAGES),
        (ne.serial(ne.Dense(), ne.residual([ne.Dense()]), ne.Dense()), X),
    ]
    for arch, x in fixed:
        k = arch.kernel(x)
        assert np.all(np.isfinite(k.nngp)) and np.all(np.isfinite(k.ntk)), arch


# ---- a kinked map after a map that collapsed distinct points ------------------------------------ #
def test_a_kinked_map_after_a_collapsing_composite_is_refused_in_float64(monkeypatch):
    # sign(abs(z)) = 1 almost everywhere: every input goes to one point, and the composite's gaps,
    # recomputed from its values, are rounding noise; relu's sqrt(lo hi) would turn them into a
    # sqrt(eps) error (seen: 1e-8 against dps=50 in the catalogue's slow conformance run)
    from ntk_equiv.errors import DegenerateInputError

    x = np.random.default_rng(0).normal(size=(3, 3))
    arch = ne.serial(ne.Dense(0.78, 0.2), ne.Abs(), ne.Sign(), ne.Dense(1.17, 0.48), ne.Relu(),
                     ne.Dense(1.0, 0.3), ne.Sign(), ne.Dense())
    with pytest.raises(DegenerateInputError, match="same point to working precision"):
        arch.kernel(x)
    # the refusal is needed: without it float64 is far from the exact value (every point is one point,
    # so the output kernel is exactly that of one input)
    exact = arch.kernel(x, dps=30)
    monkeypatch.setattr(kernels, "check_distinguishable", lambda *args: None)
    wrong = arch.kernel(x)
    err = max(abs(float(exact.nngp[i, j]) - wrong.nngp[i, j]) for i in range(3) for j in range(3))
    assert err > 1e-12, err
    # a composite that keeps the points apart is computed: sign(tanh z) = sign z
    a = ne.serial(ne.Dense(1.2, 0.3), ne.Tanh(), ne.Sign(), ne.Dense(1.0, 0.1)).kernel(x)
    b = ne.serial(ne.Dense(1.2, 0.3), ne.Sign(), ne.Dense(1.0, 0.1)).kernel(x)
    assert np.max(np.abs(a.ntk - b.ntk)) <= 1e-14
