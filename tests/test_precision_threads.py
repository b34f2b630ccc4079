"""Cause 1 of issue 10: high precision is thread-safe.

Every mpmath evaluation works in a context of its own
(:func:`ntk_equiv.precision.mp_context`), so threads at different ``dps``
give bitwise the single-threaded results and the global ``mpmath.mp`` is
never changed.
"""
from __future__ import annotations

import threading

import mpmath
import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv.precision import MpmathBackend, mp_context


def _bits(k: ne.Kernel) -> list:
    return [v._mpf_ for m in (k.nngp, k.ntk) for v in m]


def _in_threads(fn, args: list, timeout: float) -> list:
    """``fn(*a)`` for every ``a`` in ``args``, all at once, one thread each: the
    results in the order of ``args``. A thread's exception is raised here; a
    thread still running after ``timeout`` seconds fails the test."""
    results, errors = [None] * len(args), []

    def run(i, a):
        try:
            results[i] = fn(*a)
        except Exception as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), f"a thread is still running after {timeout} s"
    if errors:
        raise errors[0]
    return results


def test_mp_context_is_fresh_and_leaves_global_alone():
    before = mpmath.mp.dps
    a, b = mp_context(30), mp_context(30)
    assert a is not b and a.dps == 30 + ne.precision.GUARD_DIGITS
    assert mpmath.mp.dps == before
    bk = MpmathBackend(40)
    x = bk.asarray(np.array([2.0]))
    assert bk.sqrt(x)[0].context is bk.ctx  # every number belongs to the backend's context


def test_kernels_in_threads_at_different_dps_are_bitwise_single_threaded():
    before = mpmath.mp.dps
    x = np.random.default_rng(0).standard_normal((4, 3))
    archs = {"relu": ne.mlp(2, "relu", 1.4, 0.1), "erf": ne.mlp(2, "erf", 1.2, 0.3)}
    jobs = [(name, dps) for name in archs for dps in (80, 16, 16, 40)]
    alone = {(name, dps): _bits(archs[name].kernel(x, dps=dps)) for name, dps in set(jobs)}
    results = _in_threads(lambda name, dps: [_bits(archs[name].kernel(x, dps=dps)) for _ in range(3)],
                          jobs * 2, timeout=120)
    for (name, dps), reps in zip(jobs * 2, results):
        assert len(reps) == 3 and all(bits == alone[(name, dps)] for bits in reps), (name, dps)
    assert mpmath.mp.dps == before


def test_dynamics_in_threads_bitwise():
    before = mpmath.mp.dps
    rng = np.random.default_rng(1)
    x, xt, y = rng.standard_normal((4, 2)), rng.standard_normal((2, 2)), rng.standard_normal(4)
    arch = ne.mlp(1, "relu", 1.3, 0.2)

    def law(dps):
        g = ne.ensemble(arch, x, y, xt, t=2.0, dps=dps)
        return [v._mpf_ for m in (g.mean, g.cov) for v in m]

    alone = {d: law(d) for d in (20, 60)}
    digits = [20, 60, 20, 60]
    out = _in_threads(law, [(d,) for d in digits], timeout=120)
    assert all(bits == alone[d] for d, bits in zip(digits, out))
    assert mpmath.mp.dps == before


@pytest.mark.slow
def test_expression_kernels_in_threads_bitwise():
    """The expression path (quadrature) in threads at two precisions: bitwise the
    single-threaded results, global precision restored."""
    before = mpmath.mp.dps
    x = np.random.default_rng(2).standard_normal((2, 2))
    arch = ne.mlp(1, "x**2 + x", 1.0, 0.1)  # a polynomial: the quadrature settles at any dps
    alone = {d: _bits(arch.kernel(x, dps=d)) for d in (16, 24)}
    digits = [16, 24]
    out = _in_threads(lambda d: _bits(arch.kernel(x, dps=d)), [(d,) for d in digits], timeout=600)
    assert all(bits == alone[d] for d, bits in zip(digits, out))
    assert mpmath.mp.dps == before
