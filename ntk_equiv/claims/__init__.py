"""The catalogue of the project's claims C1-C9 (:mod:`.claims`) and the paper's
numbered statements (:mod:`.paper`), their checks (found in the ``*_checks``
modules by :func:`.registry.load`) and the runner (:mod:`.runner`)."""
from .registry import (
    LEVELS, REGISTRY, Claim, Config, Result, all_checks, catalogue, check, load, measured, proven, run_check,
    statement_checks,
)

__all__ = ["LEVELS", "REGISTRY", "Claim", "Config", "Result", "all_checks", "catalogue", "check", "load",
           "measured", "proven", "run_check", "statement_checks"]
