"""Reaching a statement's verdict from its checks.

For one statement, at every selected level that has a check:

1. check the **printed** form. If it passes at every level, the verdict is the
   statement's ``if_printed_holds`` (``holds``; ``holds only in the limit`` for a
   statement that is itself about the limit);
2. if it fails at every level (a failed check, not one that raised), check the
   **corrected** form. If that passes at every level the verdict is
   ``if_corrected_holds`` (``refuted as printed`` + ``holds as corrected``, or
   ``holds only in the limit`` + ``gap in the proof``); otherwise ``fails``;
3. a printed form that passes at some levels and fails at others is
   ``inconsistent`` (one of its checks is wrong); a check that raised is
   ``error``; a statement without any check is ``unchecked``.

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

from .paper import FORMS, Statement, StatementCheck, levels_of
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
    return res


def run_claim_check(claim_id: str, level: str, config: Config) -> Result:
    """A reused project-claim check; a missing one is an error result, not a crash."""
    claim = REGISTRY.get(claim_id)
    if claim is None or level not in claim.checks:
        return Result(claim_id, level, False, None, None, "reused claim check",
                      error=f"LookupError: {claim_id} has no {level} check to reuse")
    return run_check(claim_id, level, config)


def _all(rs: Iterable[Result], passed: bool) -> bool:
    return all(r.passed == passed and r.error is None for r in rs)


def reach(s: Statement, levels: list[LevelOutcome]) -> tuple[str, ...]:
    """The verdict of :mod:`this module's docstring <.verdict>` from filled-in levels."""
    printed = [lo.printed for lo in levels if lo.printed is not None]
    if not printed:
        return ("unchecked",)
    if any(r.error for r in printed):
        return ("error",)
    if _all(printed, True):
        return tuple(s.if_printed_holds)
    if not _all(printed, False):
        return ("inconsistent",)
    corrected = [lo.corrected for lo in levels]
    if s.corrected is None or any(r is None for r in corrected):
        return ("fails",)
    if any(r.error for r in corrected):
        return ("error",)
    return tuple(s.if_corrected_holds) if _all(corrected, True) else ("fails",)


def verify_statement(s: Statement, checks: Mapping[tuple[str, str], StatementCheck], levels: Iterable[str],
                     config: Config, run_claim: RunClaim | None = None) -> StatementOutcome:
    """Check ``s`` at the selected ``levels`` and reach its verdict.

    ``run_claim(claim_id, level)`` runs a reused project-claim check (the CLI
    passes one that reuses results already computed in the same run)."""
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
