"""Reaching a statement's verdict from its checks, and from what they found.

A check returns a :class:`~.registry.Result` (passed or not) and, where it
checks more than a yes/no identity, a **finding** in ``details`` that says
which part of the statement its outcome is about (built by the helpers
below, read here):

* ``details["limit"]`` (:func:`limit_finding`): the check of a limit
  statement showed *both halves*: a finite-width deviation beyond its
  standard error (or exactly non-zero, for an exact check) at some width,
  and its decay at the proven rate;
* ``details["proof_step"]`` (:func:`step_finding`): the check checked a step
  of the proof (``holds``) separately from the statement's own content
  (``statement_holds``);
* ``details["approximation"]`` (:func:`approximation_finding`): the check
  evaluated the statement under its stated reading and also measured the
  approximation the text makes (``deviates``), against the error bound the
  form states (``quantified``: the form states one and the check tested it).

For one statement, at every selected level that has a check:

1. check the **printed** form. If it passes at every level, the verdict is
   ``holds only in the limit`` if some level found a limit (both halves),
   else ``imprecise`` if some level found an approximation that deviates with
   no stated bound, else ``holds``;
2. if it fails at every level (a failed check, not one that raised), check the
   **corrected** form. If that passes at every level, the verdict is
   ``gap in the proof`` after the corrected form's own verdict (as in 1.) when
   every printed failure is a failed proof step with the statement's content
   holding, else ``refuted as printed`` + ``holds as corrected``; a corrected
   form failing somewhere gives ``fails``;
3. a printed form that passes at some levels and fails at others is
   ``inconsistent`` (one of its checks is wrong); a check that raised is
   ``error``; a statement without any check is ``unchecked``.

No rule reads a form's name: the forms are data the checks evaluate
(:mod:`.paper`), so exchanging them (:meth:`~.paper.Statement.exchanged`,
and the ``exchanged`` control) or printing nonsense changes the verdict.

The statement passes iff the reached verdict equals the documented
``expected`` one. So a printed error makes its row read ``refuted as printed``
without failing the run, while a statement documented as holding that does not
hold fails it, and so does a refutation that disappears (a printed form
"fixed" into the corrected one reaches ``holds``, not the expected verdict).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from .paper import FORMS, Statement, StatementCheck, in_force, levels_of
from .registry import REGISTRY, Config, Result, run_check

RunClaim = Callable[[str, str], Result]


@dataclass
class LevelOutcome:
    """One level of one statement: where its check lives and its results."""

    level: str
    source: str  # "module.function" or "C6c E" (a reused project-claim check)
    printed: Result | None = None
    corrected: Result | None = None


@dataclass
class StatementOutcome:
    """The verdict reached for one statement, with the results it rests on."""

    statement: Statement
    levels: list[LevelOutcome] = field(default_factory=list)
    reached: tuple[str, ...] = ("unchecked",)

    @property
    def passed(self) -> bool:
        return tuple(self.reached) == tuple(self.statement.expected)

    @property
    def results(self) -> list[Result]:
        return [r for lo in self.levels for r in (lo.printed, lo.corrected) if r is not None]

    def levels_passed(self) -> tuple[str, ...]:
        """Levels whose deciding form passed: the printed form, or the corrected
        one when the printed form was refuted."""
        out = []
        for lo in self.levels:
            r = lo.corrected if lo.corrected is not None else lo.printed
            if r is not None and r.passed:
                out.append(lo.level)
        return tuple(out)


def run_statement_check(s: Statement, level: str, fn: StatementCheck, form: str, config: Config) -> Result:
    """Run ``fn(config, form)``; an exception becomes a failed result with ``error`` set."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    start = time.perf_counter()
    try:
        res = fn(config, form)
        if not isinstance(res, Result):
            raise TypeError(f"the check returned {type(res).__name__}, not a Result (use measured/proven)")
    except Exception as exc:  # noqa: BLE001 - a crashing check is an error, reported, never a refutation
        res = Result("", "", False, None, None, "check raised", error=f"{type(exc).__name__}: {exc}")
    res.claim, res.level = s.label, level
    res.seconds = time.perf_counter() - start
    res.details = {"form": form, **(res.details or {})}
    sizes = getattr(fn, "sizes_full" if config.full else "sizes", None)
    if sizes:  # what an exact proof covers: general sizes, or explicit ones (never read as general)
        res.details.setdefault("sizes", sizes)
    return res


def run_claim_check(claim_id: str, level: str, config: Config) -> Result:
    """A reused project-claim check; a missing one is an error result, not a crash."""
    claim = REGISTRY.get(claim_id)
    if claim is None or level not in claim.checks:
        return Result(claim_id, level, False, None, None, "reused claim check",
                      error=f"LookupError: {claim_id} has no {level} check to reuse")
    return run_check(claim_id, level, config)


LIMIT, STEP, APPROXIMATION = "limit", "proof_step", "approximation"


def limit_finding(deviates: bool, decays: bool, what: str, **numbers) -> dict:
    """``details["limit"]`` of a check of a limit statement: ``deviates``, a
    finite-width deviation beyond its standard error (or exactly non-zero) at
    some width; ``decays``, its decay at the proven rate; ``what`` says which
    quantity, ``numbers`` the z-scores, widths and rates shown."""
    return {"deviates": bool(deviates), "decays": bool(decays), "what": what, **numbers}


def step_finding(step: str, holds: bool, statement_holds: bool, **numbers) -> dict:
    """``details["proof_step"]``: the proof's ``step`` checked on its own
    (``holds``), and whether the statement's own content held in the same check."""
    return {"step": step, "holds": bool(holds), "statement_holds": bool(statement_holds), **numbers}


def approximation_finding(what: str, deviates: bool, quantified: bool, **numbers) -> dict:
    """``details["approximation"]``: the approximation the text makes
    (``what``) measured: ``deviates`` from the exact reading, ``quantified``
    when the form states a bound for it and the check tested that bound."""
    return {"what": what, "deviates": bool(deviates), "quantified": bool(quantified), **numbers}


def _found(r: Result, key: str) -> dict | None:
    v = (r.details or {}).get(key)
    return v if isinstance(v, dict) else None


def _all(rs: Iterable[Result], passed: bool) -> bool:
    return all(r.passed == passed and r.error is None for r in rs)


def holding_verdict(results: Iterable[Result]) -> tuple[str, ...]:
    """The verdict of a form that passed at every level, from its findings."""
    results = list(results)
    limits = [f for r in results if (f := _found(r, LIMIT))]
    if any(f["deviates"] and f["decays"] for f in limits):
        return ("holds only in the limit",)
    approx = [f for r in results if (f := _found(r, APPROXIMATION))]
    if any(f["deviates"] and not f["quantified"] for f in approx):
        return ("imprecise",)
    return ("holds",)


def _only_the_step_failed(results: Iterable[Result]) -> bool:
    steps = [_found(r, STEP) for r in results]
    return all(f is not None and not f["holds"] and f["statement_holds"] for f in steps)


def reach(s: Statement, levels: list[LevelOutcome]) -> tuple[str, ...]:
    """The verdict of :mod:`this module's docstring <.verdict>` from filled-in levels."""
    printed = [lo.printed for lo in levels if lo.printed is not None]
    if not printed:
        return ("unchecked",)
    if any(r.error for r in printed):
        return ("error",)
    if _all(printed, True):
        return holding_verdict(printed)
    if not _all(printed, False):
        return ("inconsistent",)
    corrected = [lo.corrected for lo in levels]
    if s.corrected is None or any(r is None for r in corrected):
        return ("fails",)
    if any(r.error for r in corrected):
        return ("error",)
    if not _all(corrected, True):
        return ("fails",)
    if _only_the_step_failed(printed):
        return holding_verdict(corrected) + ("gap in the proof",)
    return ("refuted as printed", "holds as corrected")


def verify_statement(s: Statement, checks: Mapping[tuple[str, str], StatementCheck], levels: Iterable[str],
                     config: Config, run_claim: RunClaim | None = None) -> StatementOutcome:
    """Check ``s`` at the selected ``levels`` and reach its verdict.

    ``run_claim(claim_id, level)`` runs a reused project-claim check (the CLI
    passes one that reuses results already computed in the same run). The
    checks read the forms of the statement verified (:func:`~.paper.in_force`),
    so an exchanged or edited statement (:meth:`~.paper.Statement.exchanged`,
    :meth:`~.paper.Statement.with_form`) is checked as given."""
    with in_force(s):
        return _verify(s, checks, levels, config, run_claim)


def _verify(s: Statement, checks: Mapping[tuple[str, str], StatementCheck], levels: Iterable[str],
            config: Config, run_claim: RunClaim | None) -> StatementOutcome:
    run_claim = run_claim or (lambda cid, lv: run_claim_check(cid, lv, config))
    wanted = set(levels)
    out = StatementOutcome(s)
    for lv in levels_of(s, checks):
        if lv not in wanted:
            continue
        if lv in s.reuses:
            cid, clv = s.reuses[lv]
            res = run_claim(cid, clv)
            out.levels.append(LevelOutcome(lv, f"{cid} {clv}", printed=res))
        else:
            fn = checks[(s.number, lv)]
            out.levels.append(LevelOutcome(lv, f"{fn.__module__}.{fn.__name__}",
                                           printed=run_statement_check(s, lv, fn, "printed", config)))
    printed = [lo.printed for lo in out.levels]
    # the corrected form is checked only when the printed one failed cleanly at every level
    if s.corrected is not None and printed and _all(printed, False):
        for lo in out.levels:
            if lo.level not in s.reuses:
                lo.corrected = run_statement_check(s, lo.level, checks[(s.number, lo.level)], "corrected", config)
    out.reached = reach(s, out.levels)
    return out
