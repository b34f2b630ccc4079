"""Shared test configuration.

Hypothesis runs derandomized (a fixed example sequence) under CI=true, so a
CI run is reproducible; locally it explores new examples each run.
"""
import os

# The tests multiply small matrices; on a 2-core machine OpenBLAS threads only add
# synchronisation (measured 35x slower products under load). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")
