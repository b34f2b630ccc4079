"""Cause 1 of issue 10: high precision is thread-safe.

Every mpmath evaluation works in a context of its own
(:func:`ntk_equiv.precision.mp_context`), so threads at different ``dps``
give bitwise the single-threaded results and the global ``mpmath.mp`` is
never changed.
"""
from __future__ import annotations

import threading
import time

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


#: Kinked expressions (no closed form, so the 2-D quadrature of
#: ntk_equiv.quadrature): kinks at 0 take the polar rule, a kink elsewhere the
#: nested tanh-sinh rule (one input: correlation 1, so a 1-D integral).
KINKED = {"Abs(x)*x": 2, "Max(x - 0.5, 0)": 1}


def _kinked_bits(expr: str, dps: int, n: int | None = None) -> list:
    x = np.random.default_rng(2).standard_normal((n or KINKED[expr], 2))
    return _bits(ne.mlp(1, expr, 1.0, 0.1).kernel(x, dps=dps))


def test_kinked_expression_kernels_ignore_the_global_precision():
    """The quadrature reads nothing from the global context: with ``mpmath.mp``
    at 5 digits (set by this test, restored on exit) the kinked-expression
    kernels are bitwise those computed at the default 15 digits."""
    alone = {expr: _kinked_bits(expr, 16, 1) for expr in KINKED}
    with mpmath.workdps(5):
        low = {expr: _kinked_bits(expr, 16, 1) for expr in KINKED}
    assert low == alone


@pytest.mark.slow
def test_expression_kernels_in_threads_bitwise():
    """The expression path (quadrature of kinked activations) in threads at two
    precisions: bitwise the single-threaded results, global precision untouched."""
    before = mpmath.mp.dps
    jobs = [(expr, d) for expr in KINKED for d in (16, 24)]
    alone = {job: _kinked_bits(*job) for job in jobs}
    out = _in_threads(_kinked_bits, jobs, timeout=600)
    assert all(bits == alone[job] for job, bits in zip(jobs, out))
    assert mpmath.mp.dps == before


@pytest.mark.slow
def test_kinked_expression_at_30_and_60_digits_in_threads_never_touch_global_precision():
    """Issue 10 for the 2-D quadrature: ``Max(x, 0) + 0.1*x`` (polar rule) at
    dps=30 in one thread and dps=60 in another give bitwise the single-threaded
    kernels, while a third thread watching ``mpmath.mp`` never sees its
    precision change."""
    x = np.random.default_rng(3).standard_normal((2, 2))
    arch = ne.mlp(1, "Max(x, 0) + 0.1*x", 1.2, 0.1)
    alone = {d: _bits(arch.kernel(x, dps=d)) for d in (30, 60)}
    before = (mpmath.mp.prec, mpmath.mp.dps)
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add((mpmath.mp.prec, mpmath.mp.dps))
            time.sleep(1e-4)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        out = _in_threads(lambda d: _bits(arch.kernel(x, dps=d)), [(30,), (60,)], timeout=600)
    finally:
        stop.set()
        watcher.join()
    assert out == [alone[30], alone[60]]
    assert seen == {before}
    assert (mpmath.mp.prec, mpmath.mp.dps) == before
