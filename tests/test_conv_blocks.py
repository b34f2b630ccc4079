"""float64 CNN kernels do not depend on how the work is cut: tiles on any
number of threads, elementwise maps and window sums in cache-sized blocks
(kernels.BLOCK_ENTRIES, spatial.BLOCK_BYTES) all give the same bits."""
import numpy as np

import ntk_equiv as ne
from ntk_equiv import kernels, spatial

ARCH = ne.serial(ne.Conv((3, 3), sigma_w=1.4, sigma_b=0.2), ne.Relu(), ne.Conv((3, 2), strides=(1, 2), sigma_w=1.3),
                 ne.Abs(), ne.GlobalAvgPool(), ne.Dense(1.1, 0.1))


def _kernels():
    rng = np.random.default_rng(3)
    x, x2 = rng.standard_normal((13, 5, 4, 2)), rng.standard_normal((4, 5, 4, 2))
    return [ARCH.kernel(x), ARCH.kernel(x, x2)]


def _same(runs):
    return all(np.array_equal(a.nngp, b.nngp) and np.array_equal(a.ntk, b.ntk) for a, b in zip(runs[0], runs[1]))


def test_threads_and_blocks_do_not_change_a_bit(monkeypatch):
    monkeypatch.setattr(kernels, "CHUNK_ENTRIES", 4000)  # several tiles
    runs = {}
    for threads in (1, 2, 3):
        monkeypatch.setattr(kernels, "KERNEL_THREADS", threads)
        runs[threads] = _kernels()
    monkeypatch.setattr(kernels, "BLOCK_ENTRIES", 1 << 40)  # one block per array
    monkeypatch.setattr(spatial, "BLOCK_BYTES", 1 << 40)
    runs["whole"] = _kernels()
    monkeypatch.setattr(kernels, "BLOCK_ENTRIES", 7)  # uneven blocks of a few entries
    monkeypatch.setattr(spatial, "BLOCK_BYTES", 8)
    runs["tiny"] = _kernels()
    for other in (2, 3, "whole", "tiny"):
        assert _same([runs[1], runs[other]]), other


def test_the_bitwise_check_can_fail(monkeypatch):
    # summing a window's offsets in another order (what a careless blocked path would do) changes the
    # last bits: the comparison above sees it
    before = _kernels()
    offsets = spatial.Window.offsets
    monkeypatch.setattr(spatial.Window, "offsets", lambda self: offsets(self)[::-1])
    assert not _same([before, _kernels()])
