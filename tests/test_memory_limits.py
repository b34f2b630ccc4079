"""Memory limits: the estimate of a kernel is checked against the smallest of
``MemAvailable``, ``RLIMIT_AS``/``RLIMIT_DATA`` and a cgroup limit before
anything is allocated, and a ``MemoryError`` inside becomes a
``ResourceError`` (issue 19 item 3; the 20 000-row case is
benchmarks/bench_large_kernel.py)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ntk_equiv as ne
from ntk_equiv import validation

GB = 2**30


def write(root: Path, **files) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name.replace("_", ".", 1)).write_text(text)
    return root


def test_cgroup_v2_and_v1_limits_are_read_and_unset_ones_ignored(tmp_path):
    v2 = write(tmp_path / "v2", memory_max=f"{4 * GB}\n", memory_current=f"{3 * GB}\n",
               memory_stat=f"anon 1\ninactive_file {GB}\n")
    assert validation.cgroup_memory_left(v2) == (4 * GB, 2 * GB)  # the reclaimable cache does not count as used
    v1 = write(tmp_path / "v1", memory_limit_in_bytes=f"{2 * GB}\n", memory_usage_in_bytes=f"{GB}\n")
    assert validation.cgroup_memory_left(v1) == (2 * GB, GB)
    assert validation.cgroup_memory_left(write(tmp_path / "none2", memory_max="max\n")) is None
    assert validation.cgroup_memory_left(write(tmp_path / "none1", memory_limit_in_bytes="9223372036854771712\n")) is None
    assert validation.cgroup_memory_left(tmp_path / "absent") is None
    over = write(tmp_path / "over", memory_max=f"{GB}\n", memory_current=f"{2 * GB}\n")
    assert validation.cgroup_memory_left(over) == (GB, 0)


def test_the_smallest_limit_binds_and_is_named(monkeypatch):
    free = [("of memory available", 64 * GB)]
    monkeypatch.setattr(validation, "memory_limits", lambda: free)
    validation.check_memory(3 * GB, "a 3 GB kernel")  # plenty of memory, no other limit: accepted
    capped = free + [("left under the 4 GB limit RLIMIT_AS, ulimit -v (1 GB in use)", 3 * GB)]
    monkeypatch.setattr(validation, "memory_limits", lambda: capped)
    assert validation.available_memory() == 3 * GB
    with pytest.raises(ne.ResourceError, match=r"needs ~3 GB, more than half of the 3 GB left under .*RLIMIT_AS"):
        validation.check_memory(3 * GB, "a 3 GB kernel")
    validation.check_memory(1.4 * GB, "a smaller one")  # under half of what is left


def test_memory_limits_of_this_process_include_rlimit_as_when_set():
    names = [name for name, _ in validation.memory_limits()]
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    assert names[0] == "of memory available"
    assert any("RLIMIT_AS" in n for n in names) == (soft != resource.RLIM_INFINITY)


CHILD = textwrap.dedent("""
    import numpy as np
    import ntk_equiv as ne
    from ntk_equiv import kernels, validation
    x = np.random.default_rng(0).standard_normal((8000, 3))
    print("limits", validation.memory_limits())
    assert ne.mlp(2, "relu", 1.2, 0.1).kernel(x[:300]).ntk.shape == (300, 300)  # tiled, threads: fits
    try:
        ne.mlp(1).kernel(x)  # its result alone (2 x 8000^2 float64 = 1 GB) exceeds the limit
    except ne.ResourceError as e:
        print("estimate:", e)
    kernels.check_memory = lambda *a, **k: None  # no estimate: the allocation itself fails
    try:
        ne.mlp(1).kernel(x)
    except ne.ResourceError as e:
        print("inside:", e, "| cause", type(e.__cause__).__name__)
""")


def test_under_rlimit_as_the_kernel_is_refused_before_and_named_if_allocation_fails():
    limit = int(1.25 * GB)

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD], preexec_fn=cap, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert "RLIMIT_AS" in lines["limits"]
    # refused by the estimate, naming the amount and the limit that binds
    assert "needs ~" in lines["estimate:"] and "GB" in lines["estimate:"] and "RLIMIT_AS" in lines["estimate:"]
    # without the estimate numpy's MemoryError surfaces as a ResourceError that says so
    assert "ran out of memory" in lines["inside:"] and lines["inside:"].endswith("cause MemoryError")
