"""Claims C1-C9 of docs/theory.md and their checks (see :mod:`.registry`)."""
from .registry import (
    LEVELS, REGISTRY, Claim, Config, Result, all_checks, check, claim, load, measured, proven, run_check,
)

__all__ = ["LEVELS", "REGISTRY", "Claim", "Config", "Result", "all_checks", "check", "claim", "load",
           "measured", "proven", "run_check"]
