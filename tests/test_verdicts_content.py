"""Verdicts from the statements' content (issue 17.4): every statement's forms
are data its checks evaluate, so exchanging the printed form with the
corrected one (or, where the printed form holds, with its documented false
alternative) changes the verdict reached, for all nine; so does replacing
the deciding form's data by nonsense ("1 = 2": a factor 0, a rate 0, an
absurd dependence). No verdict rule reads a form's name."""
from __future__ import annotations

import inspect

import pytest

from ntk_equiv.claims import controls, registry, verdict
from ntk_equiv.claims import paper as pp
from ntk_equiv.claims.paper import Form
from ntk_equiv.claims.registry import Config, load

load()
CHECKS = registry.statement_checks()
ALL = ("S", "H", "E")
#: the default run's levels: one cheap level per statement (H where there is one); the
#: slow run repeats every test at all levels
CHEAP = {s.number: ("H",) if (s.number, "H") in CHECKS else ("S",) for s in pp.STATEMENTS}
LEVEL_SETS = [pytest.param("cheap", id="cheap"), pytest.param("all", id="all", marks=pytest.mark.slow)]

#: nonsense data for the form that decides each verdict (printed where it
#: holds, corrected where the printed one fails), and why it is nonsense
NONSENSE = {
    "5.1": ("corrected", {"sign": 0}),                      # f_inf = f_0: training does nothing
    "5.2": ("printed", {"cov_terms": tuple((0, t) for _, t in pp.PRINTED_COV_TERMS)}),  # covariance 0
    "5.3": ("printed", {"cov_terms": tuple((0, t) for _, t in pp.PRINTED_COV_TERMS)}),
    "5.4": ("corrected", {"factor": 0}),                    # E eps^2 = 0
    "5.5": ("printed", {"regime": "limit", "rate": 0}),     # no decay: the limit is not 0
    "5.6": ("printed", {"half": False}),                    # the scale off by 2
    "5.7": ("printed", {"regime": "limit", "rate": 0}),     # the excess kurtosis does not decay
    "5.8": ("corrected", {"dependence": 2, "rate": 1}),     # D(n) = 2 c / n
    "5.9": ("printed", {"reading": "mu~ = mu_b", "bound": 0}),  # the shared mu~ claimed harmless
}


def _levels(s: pp.Statement, which: str) -> tuple[str, ...]:
    return CHEAP[s.number] if which == "cheap" else ALL


def _reached(s: pp.Statement, which: str) -> tuple[str, ...]:
    return verdict.verify_statement(s, CHECKS, _levels(s, which), Config()).reached


@pytest.fixture(scope="module")
def reached():
    cache: dict = {}

    def get(number: str, which: str) -> tuple[str, ...]:
        if (number, which) not in cache:
            cache[number, which] = _reached(pp.statement(number), which)
        return cache[number, which]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("number", [s.number for s in pp.STATEMENTS])
def test_documented_verdict_is_reached_at_all_levels(reached, number):
    assert reached(number, "all") == pp.statement(number).expected


@pytest.mark.parametrize("which", LEVEL_SETS)
@pytest.mark.parametrize("number", [s.number for s in pp.STATEMENTS])
def test_exchanging_the_forms_changes_the_verdict(reached, number, which):
    ex = _reached(pp.statement(number).exchanged(), which)
    assert ex != reached(number, which), (number, ex)
    assert ex not in (("error",), ("unchecked",), ("inconsistent",)), (number, ex)


@pytest.mark.parametrize("number", ["5.4", "5.5", "5.9"])
def test_the_exchanged_control_changes_the_verdict(reached, number):
    """The ``exchanged`` control swaps the forms where the checks read them
    (``Statement.form``): the checks then evaluate the other form's data."""
    s = pp.statement(number)
    with controls.applied("exchanged"):
        ex = verdict.verify_statement(s, CHECKS, CHEAP[number], Config()).reached
    assert ex != reached(number, "cheap") and ex != ("error",), (number, ex)


@pytest.mark.parametrize("which", LEVEL_SETS)
@pytest.mark.parametrize("number", [s.number for s in pp.STATEMENTS])
def test_nonsense_in_the_deciding_form_changes_the_verdict(reached, number, which):
    s = pp.statement(number)
    name, params = NONSENSE[number]
    got = _reached(s.with_form(name, Form("nonsense", params)), which)
    assert got != reached(number, which), (number, got)
    assert got != ("error",), (number, got)


def test_statements_without_a_correction_document_a_false_alternative():
    for s in pp.STATEMENTS:
        assert (s.corrected is None) == (s.alternative is not None), s.label
        other = s.corrected or s.alternative
        assert other.params and set(other.params) <= set(s.printed.params) | {"rate"}, s.label
        assert other.params != s.printed.params, s.label


def test_no_verdict_rule_reads_a_forms_name():
    src = inspect.getsource(verdict.reach) + inspect.getsource(verdict.holding_verdict)
    assert '"printed"' not in src and '"corrected"' not in src
