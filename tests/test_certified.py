"""The certified backend (issue 21): ball arithmetic through python-flint.

Tolerances: a ball must *contain* the dps=50 value (a property, no tolerance);
its relative radius must be below ``2^-(prec - 24)``: a depth-3 network does
~10^2 dependent operations per entry, each adding at most a few units of
``2^-prec`` relative, and a residual sum or a Cholesky/solve amplifies by the
(small, ~10^2) condition numbers of these instances: 24 bits of head-room.
"""
from __future__ import annotations

import os
import threading

import mpmath
import numpy as np
import pytest

from ntk_equiv import certified as C
from ntk_equiv import formulas
from ntk_equiv.activations import Activation, _relu
from ntk_equiv.errors import KernelError, NotCertifiedError
from ntk_equiv import Act, Dense, Erf, Relu, mlp, residual, serial

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
if not C.available():  # pragma: no cover - .ci/run installs the certified extra
    if IN_CI:
        raise RuntimeError("python-flint (the 'certified' extra) is missing under CI=true; .ci/run installs it")
    pytest.skip("python-flint not installed (pip install 'ntk-equiv[certified]')", allow_module_level=True)

arb = C.flint.arb


def _contains(balls, ref) -> bool:
    """Every ball contains the matching mpmath value (read at 70 digits into a 300-bit ball)."""
    with C.working_precision(300):
        return all(balls[i, j].contains(arb(mpmath.nstr(ref[i, j], 70)))
                   for i in range(balls.shape[0]) for j in range(balls.shape[1]))


def _rel_radius(balls) -> float:
    return max(C.rad(v) / abs(C.mid(v)) for v in balls.ravel())


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(3).standard_normal((6, 3))


@pytest.mark.parametrize("act", ["relu", "erf", "abs", "sin", "gelu", "leaky_relu"])
def test_kernel_balls_contain_the_reference(inputs, act):
    arch = mlp(3, act, 1.4, 0.2)
    k = C.kernel(arch, inputs, prec=128)
    ref = arch.kernel(inputs, dps=50)
    assert _contains(k.nngp, ref.nngp) and _contains(k.ntk, ref.ntk)
    assert _rel_radius(k.ntk) < 2.0 ** -(128 - 24)


def test_residual_cnn_and_composite_balls():
    from ntk_equiv.claims.rnd_checks import _h_cnn, _h_cnn_data

    x = np.random.default_rng(4).standard_normal((5, 3))
    arch = serial(Dense(1.3, 0.2), Relu(), residual([Dense(1.0, 0.1), Erf(), Dense(0.9, 0.2)], 0.8), Dense(1.1, 0.1))
    xc, _, _ = _h_cnn_data(0, False)
    fused = serial(Dense(1.2, 0.1), Relu(), Relu(), Dense(1.0, 0.1))  # relu o relu: a composite, fused to relu
    for a, z in ((arch, x), (_h_cnn(), xc), (fused, x)):
        k, ref = C.kernel(a, z, prec=128), a.kernel(z, dps=50)
        assert _contains(k.ntk, ref.ntk) and _rel_radius(k.ntk) < 2.0 ** -(128 - 24)


def test_self_pairs_keep_full_precision(inputs):
    """Without the exact self-pair gaps a second ReLU layer would take sqrt of an
    eps-wide gap: the diagonal's radius would be ~2^-64, not ~2^-120."""
    k = C.kernel(mlp(4, "relu", 1.4, 0.3), inputs, prec=128)
    assert max(C.rad(k.nngp[i, i]) / C.mid(k.nngp[i, i]) for i in range(len(inputs))) < 2.0 ** -(128 - 24)


def test_wrong_formula_is_not_enclosed(inputs):
    """A sign flipped in a copy of the ReLU dual map: its balls exclude the true kernel."""
    def flipped(bk, k11, k12, k22, lo, hi):
        v, vd, _, _ = _relu(bk, k11, k12, k22, lo, hi)
        sdet = bk.sqrt(bk.maximum0(lo * hi))
        return v - sdet / bk.pi, vd, None, None  # (sqrt(det) - ...) instead of (sqrt(det) + ...)

    wrong = Activation("relu_wrong", Act("relu").phi.expr, closed_form=flipped)
    arch = serial(Dense(1.4, 0.2), Act(wrong), Dense(1.4, 0.2))
    k = C.kernel(arch, inputs, prec=128)
    ref = mlp(1, "relu", 1.4, 0.2).kernel(inputs, dps=50)
    assert not _contains(k.nngp, ref.nngp)


def test_precision_is_per_evaluation_under_threads(inputs):
    """flint.ctx.prec is process-global: the lock serialises evaluations, each at its own bits."""
    arch = mlp(2, "erf", 1.3, 0.2)
    out, errors = {}, []

    def run(prec):
        try:
            for _ in range(3):
                out[prec] = _rel_radius(C.kernel(arch, inputs, prec=prec).ntk)
        except Exception as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in (128, 256)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert 2.0 ** -(128 + 8) < out[128] < 2.0 ** -(128 - 24)
    assert 2.0 ** -(256 + 8) < out[256] < 2.0 ** -(256 - 24)
    assert C.flint.ctx.prec == 53  # restored


def test_training_operator_block_forms():
    """``A_t`` by the block exponential and ``A_k`` by the block power against
    the eigendecomposition at dps=50 (independent formulas)."""
    x = np.random.default_rng(5).standard_normal((4, 3))
    T50 = np.array(mlp(2, "relu", 1.4, 0.1).kernel(x, dps=50).ntk.tolist(), dtype=object)
    from ntk_equiv.precision import MpmathBackend

    mp = MpmathBackend(50)
    T = C.kernel(mlp(2, "relu", 1.4, 0.1), x, prec=128).ntk
    bk = C.ArbBackend(128)
    for kw in (dict(t=mp.scalar(0.8), lr=mp.scalar(0.5)), dict(steps=9, lr=mp.scalar(0.1))):
        ref = formulas.train_operator(mp.asarray(T50), mp, **kw)
        with bk.context():
            got = C.train_operator(T, bk, t=0.8 if "t" in kw else None, lr=float(kw["lr"]), steps=kw.get("steps"))
        assert _contains(got, ref)


def test_not_certified_and_singular():
    x = np.random.default_rng(6).standard_normal((3, 2))
    with pytest.raises(NotCertifiedError):
        C.kernel(mlp(1, "tanh"), x)
    bk = C.ArbBackend(128)
    with bk.context(), pytest.raises(KernelError):
        bk.solve(bk.asarray(np.ones((2, 2))), bk.eye(2))
    with bk.context():
        assert C.mid(bk.sqrt(np.array([arb("0 +/- 1e-30")]))[0]) >= 0  # a straddling ball: its non-negative part
        assert bk.sqrt(np.array([arb(-1)]))[0].is_nan()


def test_level_c_sign_flip_is_never_enclosed(monkeypatch):
    """A sign flipped in a copy of the projector formula: C6a (which compares with
    the explicit projector) reports refuted or inconclusive, never enclosed."""
    from ntk_equiv.claims import certified_checks as cc
    from ntk_equiv.claims.registry import Config

    def flipped(C_xx, C_xX, C_XX, theta_xX, A):
        G = theta_xX @ A
        GC = G @ C_xX.T
        return C_xx - GC + GC.T + G @ C_XX @ G.T  # + GC.T instead of - GC.T

    good = cc._c6a_certified(Config())
    assert good.passed and good.details["verdict"] == "enclosed"
    monkeypatch.setattr(formulas, "projected_cov", flipped)
    bad = cc._c6a_certified(Config())
    assert not bad.passed and bad.details["verdict"] in ("refuted", "inconclusive")


def test_level_c_printed_errors_are_certified_counterexamples():
    from ntk_equiv.claims import certified_checks as cc
    from ntk_equiv.claims.registry import Config

    for fn in (cc.prop_5_1_certified, cc.cor_5_4_certified):
        printed, corrected = fn(Config(), "printed"), fn(Config(), "corrected")
        assert printed.error is None and not printed.passed and printed.details["verdict"] == "refuted"
        d = printed.details
        assert d["excluded"] == d["entries"] and d["least_margin"] > 0  # every entry of the named part excludes 0
        assert corrected.passed and corrected.details["verdict"] == "enclosed"


def test_precision_ladder_and_inconclusive():
    """``certify`` climbs 128 -> 256 -> 512 while a radius is too wide; a ball that
    stays too wide is inconclusive (error set, never a pass); a NaN too."""
    from ntk_equiv.claims.certified_checks import certify
    from ntk_equiv.claims.registry import Config

    seen = []

    def parts(extra_bits):
        def at(prec):
            seen.append(prec)
            with C.working_precision(prec):
                r = arb(0, 2.0 ** -(prec - extra_bits(prec)))  # a ball around 0 of that radius
                return {"r": (np.array([r], dtype=object), 1.0)}
        return at

    res = certify(parts(lambda p: 40 if p == 128 else 0), Config(), "climb")
    assert res.passed and res.details["verdict"] == "enclosed" and res.details["prec"] == 256 and seen == [128, 256]
    res = certify(parts(lambda p: 40), Config(), "too wide")
    assert not res.passed and res.error.startswith("Inconclusive") and res.details["verdict"] == "inconclusive"
    nan = certify(lambda prec: {"r": (np.array([arb.nan()], dtype=object), 1.0)}, Config(), "nan")
    assert not nan.passed and nan.error.startswith("Inconclusive")


def test_cli_prec_is_checked(capsys):
    from ntk_equiv.cli import main

    assert main(["verify", "--levels", "C", "--prec", "8", "-q"]) == 2  # a usage error, before any work
    assert "--prec must be" in capsys.readouterr().err
