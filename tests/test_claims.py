"""Every registered check of every claim, at every level it has (S, H, E).

The ids are ``<claim>-<level>``, so ``pytest -k C6`` runs exactly the checks of
finding 1 (C6, C6a, C6b, C6c), the same ones ``ntk-equiv verify --claims C6`` runs.
"""
import pytest

from ntk_equiv.claims import Config, all_checks, run_check

CHECKS = all_checks()


def test_registry_is_populated():
    assert CHECKS, "no checks registered"


@pytest.mark.parametrize("claim_id,level", CHECKS, ids=[f"{c}-{lv}" for c, lv in CHECKS])
def test_claim(claim_id, level):
    res = run_check(claim_id, level, Config())
    assert res.passed, (
        f"{claim_id} [{level}] failed: residual {res.residual} vs tolerance {res.tolerance} "
        f"({res.reason}); error: {res.error}; details: {res.details}"
    )
