"""Every registered check of every claim, at every level it has (S, H, E), and
the one registry: discovery, one decorator, loud failures.

The ids are ``<claim>-<level>``, so ``pytest -k C6`` runs exactly the checks of
finding 1 (C6, C6a, C6b, C6c), the same ones ``ntk-equiv verify --claims C6`` runs.
"""
import types

import pytest

from ntk_equiv.claims import Config, all_checks, registry, run_check
from ntk_equiv.claims import paper as pp
from ntk_equiv.claims.registry import check, discover, measured
from ntk_equiv.errors import CatalogueError

CHECKS = all_checks()

#: Numerical checks whose stated budget is 5 s or more run in the ``slow`` pass
#: (``.ci/run`` runs both), so the default run stays within its 3 minutes; every
#: symbolic check stays in the default run, and ``ntk-equiv verify`` runs all.
HEAVY_SECONDS = 5.0


def _param(claim_id, level):
    heavy = level != "S" and (registry.budget(registry.REGISTRY[claim_id].checks[level]) or 0) >= HEAVY_SECONDS
    return pytest.param(claim_id, level, id=f"{claim_id}-{level}", marks=[pytest.mark.slow] if heavy else [])


def test_registry_is_populated():
    assert CHECKS, "no checks registered"


@pytest.mark.parametrize("claim_id,level", [_param(c, lv) for c, lv in CHECKS])
def test_claim(claim_id, level):
    res = run_check(claim_id, level, Config())
    assert res.passed, (
        f"{claim_id} [{level}] failed: residual {res.residual} vs tolerance {res.tolerance} "
        f"({res.reason}); error: {res.error}; details: {res.details}"
    )


# ---- the one registry: discovery, one decorator, loud failures ---------------- #


def _module(name="ntk_equiv.claims.toy_checks", **attrs):
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


def _ok(config, form=None):
    return measured(0.0, 1.0, "toy")


def test_one_decorator_declares_claim_and_statement_checks():
    c = check("C9", "H", budget=(1, 30))(lambda config: _ok(config))
    s = check("5.4", "S")(lambda config, form: _ok(config, form))
    found = discover([_module(c9=c, cor=s)])
    assert found == {("C9", "H"): c, ("5.4", "S"): s}
    assert registry.budget(c) == 1.0 and registry.budget(c, full=True) == 30.0  # stated at the check
    from ntk_equiv.claims.budgets import BUDGETS

    assert registry.budget(s, full=True) == BUDGETS["5.4 S"][1]  # else the table
    assert registry.budget(lambda config: None) is None


def test_the_catalogue_holds_claims_and_statements_in_order():
    ids = list(registry.catalogue())
    assert ids[:2] == ["C1", "C2"] and ids[-9:] == [s.number for s in pp.STATEMENTS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("args, match", [
    (("C99", "H"), "no claim or statement"), (("5.10", "S"), "no claim or statement"),
    (("C9", "P"), "S, H, C or E"), (("C9", "H", (1,)), "budget"), (("C9", "H", (0, 5)), "budget"),
])
def test_the_decorator_refuses_unknown_ids_levels_and_budgets(args, match):
    with pytest.raises(CatalogueError, match=match):
        check(args[0], args[1], **({"budget": args[2]} if len(args) > 2 else {}))


def test_two_checks_of_one_id_and_level_are_refused():
    a, b = check("C9", "H")(lambda c: _ok(c)), check("C9", "H")(lambda c: _ok(c))
    with pytest.raises(CatalogueError, match="two checks"):
        discover([_module("ntk_equiv.claims.a_checks", a=a), _module("ntk_equiv.claims.b_checks", b=b)])
    assert discover([_module(a=a, again=a)]) == {("C9", "H"): a}  # one function seen twice is one check


def test_a_statement_level_that_reuses_a_claim_check_cannot_have_its_own(monkeypatch):
    import dataclasses

    s = dataclasses.replace(pp.statement("5.6"), reuses={"E": ("C6c", "E")})  # its E level: C6c's E check
    monkeypatch.setattr(pp, "STATEMENTS", tuple(s if x.number == "5.6" else x for x in pp.STATEMENTS))
    fn = check("5.6", "E")(lambda c, f: _ok(c, f))
    with pytest.raises(CatalogueError, match="reuses"):
        discover([_module(fn=fn)])


def test_older_checks_dicts_are_read_and_validated():
    assert discover([_module(CHECKS={("5.1", "H"): _ok})]) == {("5.1", "H"): _ok}
    with pytest.raises(CatalogueError, match="unknown catalogue id"):
        discover([_module(CHECKS={("5.10", "H"): _ok})])
    with pytest.raises(CatalogueError, match="not \\(id, level\\)"):
        discover([_module(CHECKS={"5.1": _ok})])


def test_a_declared_check_that_discovery_cannot_reach_is_an_error():
    name = "ntk_equiv.claims.lost_checks"
    fn = _ok.__class__(_ok.__code__, globals(), "lost")
    fn.__module__ = name
    check("C9", "E")(fn)  # declared, then dropped: not a module attribute
    try:
        with pytest.raises(CatalogueError, match="not reachable"):
            discover([_module(name)])
    finally:
        registry._DECLARED.remove((name, "C9", "E"))


def test_discovery_finds_every_checks_module_and_its_import_errors_propagate(monkeypatch):
    names = [m.__name__.rsplit(".", 1)[1] for m in registry.check_modules()]
    assert {"kernel_checks", "dynamics_checks", "rnd_checks", "symbolic_checks", "printed_checks"} <= set(names)
    import importlib

    real = importlib.import_module

    def broken(name, *a, **k):
        if name.endswith(".rnd_checks"):
            raise ImportError("injected")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ImportError, match="injected"):
        registry.check_modules()


def test_every_registered_check_was_discovered():
    registry.load()
    found = discover(registry.check_modules())
    claims = {(c, lv) for c, lv in found if c in registry.REGISTRY}
    assert claims == {(c, lv) for c in registry.REGISTRY for lv in registry.REGISTRY[c].checks}
    assert {k for k in found if k[0] not in registry.REGISTRY} == set(registry.statement_checks())


def test_adding_a_statement_is_one_catalogue_entry_and_one_check_module(monkeypatch):
    import dataclasses

    from ntk_equiv.claims import runner

    new = dataclasses.replace(pp.statement("5.2"), number="5.10", title="a toy statement", reuses={},
                              property_tests=None)
    monkeypatch.setattr(pp, "STATEMENTS", pp.STATEMENTS + (new,))
    fn = check("5.10", "H")(lambda config, form: _ok(config, form))
    found = discover([_module("ntk_equiv.claims.toy_checks", fn=fn)])
    monkeypatch.setattr(registry, "statement_checks", lambda: found)
    (out,) = runner.run([], ["H"], Config(), statements=["5.10"]).statements
    assert out.reached == ("holds",) and out.passed


def test_every_check_states_its_budget():
    """Issue 17.9: every check states the seconds it needs at the default scale
    and at --full (its @check budget or ntk_equiv/claims/budgets.py)."""
    registry.load()
    keys = [(c, lv) for c in registry.REGISTRY for lv in registry.REGISTRY[c].checks]
    keys += list(registry.statement_checks())
    fns = {**{(c, lv): registry.REGISTRY[c].checks[lv] for c, lv in keys if c in registry.REGISTRY},
           **registry.statement_checks()}
    missing = [k for k in keys if registry.budget(fns[k], key=k) is None or registry.budget(fns[k], True, k) is None]
    assert not missing, f"no budget stated for {missing}"
    # the whole --full run fits 15 minutes on two workers by its own statement
    assert sum(registry.budget(fns[k], True, k) for k in keys) / 2 < 15 * 60
