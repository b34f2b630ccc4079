"""The kernel state owns its arithmetic (issue 16.3): layers change a
:class:`~ntk_equiv.kernels.PairState` only through its operations (``scaled``,
``affine``, ``added``, ``summed``, ``selected``, ``pooled``, ``normalised_by``,
``with_values``), which keep the Cauchy-Schwarz gaps ``lo = sqrt(K_aa K_bb) - K_ab``,
``hi = sqrt(K_aa K_bb) + K_ab`` right; no layer reads or writes ``lo``/``hi``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import kernels
from ntk_equiv.precision import F64, MpmathBackend

LAYERS = Path(__file__).resolve().parents[1] / "ntk_equiv" / "layers"

#: The state's gap arithmetic, which only the state's own operations call.
GAP_FUNCTIONS = {"replace", "affine_kernel", "add_kernels", "sum_gaps", "gaps_from_values"}


def offences(source: str) -> list[str]:
    """Reads or writes of ``.lo``/``.hi`` and calls of the gap arithmetic."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("lo", "hi"):
            out.append(f"{node.lineno}: .{node.attr}")
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in GAP_FUNCTIONS:
                out.append(f"{node.lineno}: {name}()")
    return out


def test_no_layer_touches_the_gaps():
    files = sorted(LAYERS.glob("*.py"))
    assert {"dense.py", "conv.py", "pool.py", "norm.py", "residual.py", "flatten.py"} <= {f.name for f in files}
    found = [f"{f.name}:{o}" for f in files for o in offences(f.read_text(encoding="utf-8"))]
    assert not found, "layers must use the PairState operations, not lo/hi:\n" + "\n".join(found)


@pytest.mark.parametrize("code", ["lo = state.lo * 2", "state.hi = x", "s.replace(a, b, None, None)",
                                  "kernels.sum_gaps(bk, g, c, lo, hi)", "gaps_from_values(s, bk)"])
def test_the_source_check_catches_each_kind(code):
    assert offences(code)


def test_the_source_check_passes_the_api():
    assert not offences("out = state.affine(bk, sw, sb)\nout.ntk += out.nngp\nreturn state.scaled(c)")


# ---- the operations keep the gaps right ------------------------------------------------ #
class _Probe(ne.Layer):
    """Records the state it receives (after a Dense or Conv of the inputs)."""

    def __init__(self, full: bool = False):
        self.full, self.seen = full, []

    @property
    def needs_full_spatial(self) -> bool:
        return self.full

    def kernel_fn(self, state, bk):
        self.seen.append(state)
        return state


def _state(rng, n=4, spatial=(), full=False) -> kernels.PairState:
    """The state of random points after a first layer (self pairs first, then every pair)."""
    x = rng.standard_normal((n,) + spatial + (3,))
    probe = _Probe(full)
    first = ne.Conv((1,), sigma_w=1.0, sigma_b=0.2) if spatial else ne.Dense(1.0, 0.2)
    tail = [ne.Flatten()] if spatial else []
    ne.serial(first, probe, *tail, ne.Dense()).kernel(x)
    return probe.seen[0]


def _gap_error(state: kernels.PairState, bk=F64) -> float:
    """Largest ``|lo - (s - K)|``, ``|hi - (s + K)|`` relative to ``s = sqrt(K_aa K_bb)``,
    with ``s`` and ``K`` at 40 digits when ``bk`` is float64 (through mpf of the float values)."""
    va, vb = state.variances()
    va, vb, k = (np.broadcast_to(v, state.nngp.shape) for v in (va, vb, state.nngp))
    mp = MpmathBackend(40)
    s = mp.sqrt(mp.asarray(va) * mp.asarray(vb))
    kk = mp.asarray(k)
    lo_err = np.abs(mp.asarray(state.lo) - (s - kk)) / s
    hi_err = np.abs(mp.asarray(state.hi) - (s + kk)) / s
    return float(max(lo_err.max(), hi_err.max()))


#: Rounding bound of a few float64 operations per entry relative to sqrt(K_aa K_bb).
F64_GAP_TOL = 64 * np.finfo(float).eps


def test_affine_scaled_added_normalised_keep_the_gaps(seed=0):
    rng = np.random.default_rng(seed)
    s = _state(rng)
    assert _gap_error(s) < F64_GAP_TOL
    ops = {
        "affine": s.affine(F64, 1.3, 0.4),
        "scaled": s.scaled(0.7),
        "added": s.affine(F64, 0.9, 0.2).added(F64, s, 1.1),
        "normalised_by": s.normalised_by(np.sqrt(np.multiply(*s.variances()))),
        "with_values": s.with_values(F64, np.tanh(s.nngp) * 0 + s.nngp * 2.0, s.ntk),
    }
    for name, out in ops.items():
        assert _gap_error(out) < F64_GAP_TOL, name


def test_a_wrong_gap_map_is_detected():
    # the check can fail: gaps left as they were while the values scale (the bug of a layer that
    # passes lo, hi unchanged, issue 16) are off by O(1)
    s = _state(np.random.default_rng(1))
    stale = s.replace(s.nngp * 4.0, s.ntk * 4.0, s.lo, s.hi)
    assert _gap_error(stale) > 0.1
    unscaled = s.affine(F64, 0.9, 0.2)
    wrong = unscaled.replace(unscaled.nngp + s.nngp, unscaled.ntk, unscaled.lo + s.lo, unscaled.hi + s.hi)
    assert _gap_error(wrong) > 1e-4  # the Cauchy-Schwarz correction of a sum is missing


def test_summed_selected_pooled_on_spatial_states():
    rng = np.random.default_rng(2)
    s = _state(rng, n=3, spatial=(5,), full=True)
    conv = ne.Conv((3,), sigma_w=1.2, sigma_b=0.3).kernel_fn(s, F64)
    pool = ne.AvgPool((2,)).kernel_fn(conv, F64)
    glob = ne.GlobalAvgPool().kernel_fn(conv, F64)
    flat = ne.Flatten().kernel_fn(conv, F64)
    for name, out in (("conv", conv), ("avg pool", pool), ("global pool", glob), ("flatten", flat)):
        assert _gap_error(out) < F64_GAP_TOL, name


def test_a_custom_layer_on_the_state_api_equals_dense():
    # the README's "Extending" pattern: a layer written against the state's operations
    class Affine(ne.Dense):
        def kernel_fn(self, state, bk):
            out = state.collapsed(bk).affine(bk, bk.scalar(self.sigma_w), bk.scalar(self.sigma_b))
            out.ntk += out.nngp
            return out

    x = np.random.default_rng(3).standard_normal((5, 2))
    for dps in (None, 30):
        a = ne.serial(ne.Dense(1.1, 0.2), ne.Relu(), Affine(0.8, 0.3), ne.Relu(), ne.Dense()).kernel(x, dps=dps)
        b = ne.serial(ne.Dense(1.1, 0.2), ne.Relu(), ne.Dense(0.8, 0.3), ne.Relu(), ne.Dense()).kernel(x, dps=dps)
        assert np.array_equal(np.array(a.ntk.tolist(), dtype=object), np.array(b.ntk.tolist(), dtype=object))
