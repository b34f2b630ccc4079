"""The control hooks: identity outside a control, the stated change inside,
and a record of which hooks a check consulted."""
import threading

import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv.claims import controls


def test_hooks_are_identities_outside_a_control():
    c = np.eye(2)
    assert controls.active() is None
    assert controls.law_covariance(c) is c
    assert controls.factor(2) == 2 and controls.time(5.0) == 5.0


@pytest.mark.parametrize("name, scale", [("cov0.7", 0.7), ("cov1.3", 1.3)])
def test_covariance_controls_scale_the_law(name, scale):
    with controls.applied(name) as run:
        assert np.array_equal(controls.law_covariance(np.eye(2)), scale * np.eye(2))
        assert controls.factor(2) == 2
    assert run.reached and controls.active() is None


def test_factor_and_time_controls():
    with controls.applied("factor") as run:
        assert controls.factor(2) == 1 and controls.factor(1) == 2
    assert run.reached
    with controls.applied("t0") as run:
        assert controls.time(None) == 0 and controls.time(3.0) == 0
    assert run.reached


def test_a_hooked_control_that_is_never_consulted_does_not_reach_the_check():
    with controls.applied("cov0.7") as run:
        pass
    assert not run.reached


def test_unknown_control_is_refused():
    with pytest.raises(ValueError, match="unknown control"):
        with controls.applied("nope"):
            pass


def test_untrained_control_removes_training_and_is_undone():
    arch = ne.mlp(1, "erf")
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0], [-1.0]])
    net = arch.init(32, seed=0)
    with controls.applied("untrained"):
        same = net.train(x, y, lr=0.1, steps=5)
    assert np.array_equal(same.apply(x), net.apply(x))
    trained = net.train(x, y, lr=0.1, steps=5)
    assert not np.array_equal(trained.apply(x), net.apply(x))


def test_noise_control_keeps_the_scale_and_breaks_the_values():
    net = ne.mlp(1, "erf").init(32, seed=0)
    x = np.random.default_rng(0).standard_normal((50, 3))
    clean = net.apply(x)
    with controls.applied("noise"):
        noisy = net.apply(x)
    assert noisy.shape == clean.shape and not np.allclose(noisy, clean)
    assert np.array_equal(net.apply(x), clean)


def test_controls_are_per_thread():
    seen = {}

    def other():
        seen["other"] = controls.active()

    with controls.applied("factor"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        seen["here"] = controls.active()
    assert seen == {"other": None, "here": "factor"}


def test_declares_records_controls_and_refuses_unknown_ones():
    @controls.declares("untrained", "cov0.7")
    @controls.declares("cov0.7", "factor")
    def check(config):
        return None

    assert check.controls == ("cov0.7", "factor", "untrained")
    with pytest.raises(ValueError, match="unknown control"):
        controls.declares("bogus")
