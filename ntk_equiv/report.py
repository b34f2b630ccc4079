"""Rendering of verification results: text table, JSON, markdown, the claim
dependency graph, and the generated claims reference (``docs/claims.md``).

Nothing here runs a check; it only turns :class:`~ntk_equiv.claims.Result`
records and the claim registry into text. The JSON layout is the stable
report schema documented in ``docs/report_schema.md`` and enforced by
:func:`validate_report`.
"""
from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from .claims import controls as ctl
from .claims import paper as pp
from .claims import registry
from .claims.registry import RUN_LEVELS as _RUN_LEVELS
from .claims.registry import LEVEL_NAMES, LEVELS, REGISTRY, Claim, Config, Result, budget, load
from .claims.runner import ControlOutcome
from .claims.verdict import StatementOutcome

SCHEMA = "ntk-equiv/verify-report"
SCHEMA_VERSION = 4
RUN_LEVELS = _RUN_LEVELS  # levels `verify` runs; P is pytest's


@dataclass
class Report:
    """One run of ``ntk-equiv verify``: which claims, paper statements and
    levels were selected, the configuration, one :class:`Result` per (claim,
    level) that ran, and one :class:`StatementOutcome` per selected statement."""

    claim_ids: list[str]
    levels: list[str]
    config: Config
    results: list[Result] = field(default_factory=list)
    command: str = "ntk-equiv verify"
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    statements: list[StatementOutcome] = field(default_factory=list)
    controls: list[ControlOutcome] = field(default_factory=list)
    controls_requested: bool = False

    def result(self, claim_id: str, level: str) -> Result | None:
        return next((r for r in self.results if r.claim == claim_id and r.level == level), None)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    @property
    def unchecked(self) -> list[str]:
        """Selected claims with no S/H/E check registered at all (nothing verifies them)."""
        return [c for c in self.claim_ids if not REGISTRY[c].checks]

    @property
    def failed_statements(self) -> list[StatementOutcome]:
        """Statements whose reached verdict differs from the documented one
        (a refuted printed form that is documented as refuted is not a failure)."""
        return [o for o in self.statements if not o.passed]

    @property
    def failed_controls(self) -> list[ControlOutcome]:
        """Controls the check survived, or that never reached it."""
        return [c for c in self.controls if not c.passed]

    @property
    def passed(self) -> bool:
        return not self.failed and not self.unchecked and not self.failed_statements and not self.failed_controls

    def status(self, claim_id: str) -> str:
        """``pass`` / ``FAIL`` / ``unchecked`` / ``not run`` for one claim."""
        rs = [r for r in self.results if r.claim == claim_id]
        if any(not r.passed for r in rs):
            return "FAIL"
        if not REGISTRY[claim_id].checks:
            return "unchecked"
        return "pass" if rs else "not run"


# ---- text ----------------------------------------------------------------- #
def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    return f"{v:.2g}" if v != 0 else "0"


_REPO = Path(__file__).resolve().parents[1]


def property_cell(claim: Claim) -> str:
    """The P level: the pytest module, flagged when a checkout lacks it."""
    if not claim.property_tests:
        return "-"
    if (_REPO / "pyproject.toml").exists() and not (_REPO / claim.property_tests).exists():
        return f"pytest {claim.property_tests} (MISSING)"
    return f"pytest {claim.property_tests}"


def _cell(rep: Report, claim: Claim, level: str) -> str:
    if level == "P":
        return property_cell(claim)
    r = rep.result(claim.id, level)
    if r is None:
        return "(not selected)" if level in claim.checks else "-"
    mark = "pass" if r.passed else "FAIL"
    if r.error:
        return f"{mark} raised {r.seconds:.1f}s"
    if r.statistic:  # the statistic itself (p-value vs threshold, slope +- se, ...), not alpha/p ratios
        return f"{mark} {r.statistic} {r.seconds:.1f}s"
    return f"{mark} {_num(r.residual)}<={_num(r.tolerance)} {r.seconds:.1f}s"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def text_table(rep: Report) -> str:
    """Claims x levels: each cell ``pass|FAIL <statistic> seconds``, the statistic
    being the check's own (``Result.statistic``) or ``residual<=tolerance``."""
    header = ["claim"] + [f"{lv} ({LEVEL_NAMES[lv]})" for lv in LEVELS]
    rows = [[cid] + [_cell(rep, REGISTRY[cid], lv) for lv in LEVELS] for cid in rep.claim_ids]
    return _table(header, rows)


def _short_result(r: Result | None) -> str:
    """``8.8e-52<=1e-45`` / ``4.2>1e-45``; an exact proof ``=0`` / ``!=0``."""
    if r is None:
        return "-"
    if r.error:
        return "raised"
    if r.level == "S" and r.tolerance == 0:
        sizes = (r.details or {}).get("sizes")
        return ("=0" if r.passed else "!=0") + (f" ({sizes})" if sizes else "")
    if r.statistic:  # the check's own statistic (p-value vs threshold, slope +- se, ...)
        return r.statistic
    return f"{_num(r.residual)}{'<=' if r.passed else '>'}{_num(r.tolerance)}"


def statement_cell(o: StatementOutcome, level: str) -> str:
    """One level of a statement: the printed form's result, and the corrected
    form's when the printed one was checked and failed."""
    if level == "P":
        return f"pytest {o.statement.property_tests}" if o.statement.property_tests else "-"
    lo = next((x for x in o.levels if x.level == level), None)
    if lo is None:
        return "-"
    src = f" [{lo.source}]" if lo.level in o.statement.reuses else ""
    mark = "pass" if lo.printed.passed else ("FAIL" if lo.printed.error else "refuted")
    cell = f"{mark} {_short_result(lo.printed)}{src}"
    if lo.corrected is not None:
        cell += f"; corrected {'pass' if lo.corrected.passed else 'FAIL'} {_short_result(lo.corrected)}"
    return cell


def _verdict(v) -> str:
    return " + ".join(v)


def paper_table(rep: Report) -> str:
    """The paper's statements in order: number, arXiv number, verdict reached,
    expected verdict, levels passed, and each level's results."""
    header = ["statement", "arXiv", "verdict reached", "expected", "levels passed"] + list(LEVELS)
    rows = []
    for o in rep.statements:
        s = o.statement
        mark = "" if o.passed else "  <-- FAIL"
        rows.append([s.label, s.arxiv or "-", _verdict(o.reached) + mark, _verdict(s.expected),
                     " ".join(o.levels_passed()) or "-"] + [statement_cell(o, lv) for lv in LEVELS])
    return _table(header, rows)


def failures_text(rep: Report) -> str:
    lines = []
    for o in rep.failed_statements:
        s = o.statement
        lines.append(f"FAILED {s.label} {s.title}: reached {_verdict(o.reached)!r}, expected {_verdict(s.expected)!r}")
    for r in rep.failed:
        what = r.error or (f"{r.statistic}; " if r.statistic else "") + \
            f"residual {_num(r.residual)} > tolerance {_num(r.tolerance)} ({r.reason})"
        lines.append(f"FAILED {r.claim} [{r.level}] {REGISTRY[r.claim].title}: {what}")
    for c in rep.unchecked:
        lines.append(f"UNCHECKED {c} {REGISTRY[c].title}: no S/H/E check is registered")
    for c in rep.failed_controls:
        if not c.reached:
            why = c.note or f"the check never consults the {ctl.HOOKS.get(c.control)} hook this control acts through"
        else:
            why = f"{c.baseline} without it, {c.controlled} under it" + (f" ({c.note})" if c.note else "")
        lines.append(f"FAILED control {c.control} of {c.label} [{' '.join(c.levels)}]: {c.outcome}: {why}")
    return "\n".join(lines)


def summary_text(rep: Report) -> str:
    n, bad = len(rep.results), len(rep.failed)
    own = [r for o in rep.statements for r in o.results if not any(r is q for q in rep.results)]
    secs = sum(r.seconds for r in rep.results) + sum(r.seconds for r in own)
    verdict = "ALL PASSED" if rep.passed else \
        ("FAILED" if rep.failed or rep.failed_statements or rep.failed_controls else "INCOMPLETE")
    parts = [f"{n - bad}/{n} checks passed"] if rep.claim_ids or not rep.statements else []
    if rep.unchecked:
        parts.append(f"{len(rep.unchecked)} claim(s) without checks")
    if rep.statements:
        ok = len(rep.statements) - len(rep.failed_statements)
        parts.append(f"{ok}/{len(rep.statements)} paper statements reached their documented verdict")
    if rep.controls_requested:
        parts.append(f"{len(rep.controls) - len(rep.failed_controls)}/{len(rep.controls)} negative controls "
                     "caught their check")
    # whether the checks ran as designed, kept apart from what they found (findings_text)
    lead = "The checks ran as designed" if rep.passed else "The checks did NOT all run as designed"
    return f"{lead}: {verdict}: {', '.join(parts)} in {secs:.1f}s (seed={rep.config.seed}, " \
           f"dps={rep.config.dps}, full={rep.config.full})"


# ---- the narrow terminal layout -------------------------------------------- #
WIDTH = 100  # columns of the default terminal report

_N = r"[-+]?\d[\d.]*(?:e[-+]?\d+)?"
_CMP = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}
#: the checks' terse statistics, in words (applied in order; anything unmatched is shown as the check wrote it)
GLOSSARY: tuple[tuple[str, str], ...] = (
    (rf"rel diff ({_N}) vs ({_N})", r"relative difference \1 (threshold \2)"),
    (rf"min p ({_N})(>=|<)({_N})", r"smallest p-value \1 \2 threshold \3"),
    (rf"slope ({_N})\+-({_N}) \(theory ({_N})\)", r"log-log slope \1 ± \2 (n^-1/2 predicts \3)"),
    (rf"slope ({_N})\+-({_N})", r"log-log slope \1 ± \2"),
    (rf"\|dev\|<=({_N}) se", r"|slope - theory| <= \1 standard errors"),
    (rf"\|dev\| ({_N})<=({_N})", r"|slope - theory| \1 <= threshold \2"),
    (rf"cross-cov max\|z\| ({_N})<=({_N})", r"cross-head covariance: largest |z| \1 <= threshold \2"),
    (rf"max\|z\| ({_N})<=({_N})", r"largest |z| \1 <= threshold \2"),
    (rf"max \|diff\|/tol ({_N})(<=|>)({_N})", r"largest |difference| / tolerance \1 \2 threshold \3"),
    (rf"max error/tol ({_N})<=({_N})", r"largest error / tolerance \1 <= threshold \2"),
    (rf"scale ({_N})\+-({_N}) \(limit ({_N}), widths ([\d/]+)\)",
     r"extrapolated scale \1 ± \2 (infinite-width value \3; widths \4)"),
    (rf"worst limit ratio ({_N}) \[({_N}), ({_N})\] \(theory ({_N})\)",
     r"worst extrapolated ratio \1, interval [\2, \3] (theory \4)"),
    (rf"limit of E A - ({_N}) E B ({_N})\+-({_N})", r"extrapolated E A - \1 E B = \2 ± \3 (0 if it holds)"),
    (rf"max variance on X / kappa ({_N})<=({_N})",
     r"largest variance on the training inputs / kappa \1 <= threshold \2"),
    (rf"(E eps\^2|0\.5 Var eps_i) / V f ({_N}) vs ({_N})", r"\1 / V f = \2 (the form checked says \3)"),
    (rf"vs flow ({_N}), vs Y ({_N})", r"relative difference from the gradient flow \1, from the labels Y \2"),
    (rf"law ({_N}), dependence ({_N}) vs ({_N})", r"law residual \1, dependence residual \2 (threshold \3)"),
    (rf"mean ({_N}), cov ({_N})", r"mean residual \1, covariance residual \2"),
    (rf"^({_N}) vs ({_N})", r"relative residual \1 (threshold \2)"),
    (rf"Q/dof ({_N})", r"chi-square per degree of freedom \1 (about 1 if the claimed law holds)"),
    (rf"\|Sigma_f\|/\|Sigma_b\| ({_N})", r"size of Sigma_f relative to Sigma_b \1"),
    (rf"n D\(n=(\d+)\) ({_N}) \(c ({_N})\)", r"n x dependence D at width \1: \2 (exact constant c = \3)"),
    (rf"min eig/scale ({_N})", r"smallest eigenvalue / scale \1 (>= 0 when ordered)"),
    (r"cond\(([^)]*)\)", r"condition number of \1"),
    (rf"\bcond ({_N})", r"condition number \1"),
    (r"\bpower (cov|factor)", r"power against \1"),
    (rf"({_N})<=({_N})", r"\1 <= \2"),
    (rf"({_N})>=({_N})", r"\1 >= \2"),
)


def in_words(statistic: str) -> str:
    """A check's terse statistic (``min p 0.03>=8e-08; slope -0.45+-0.03
    (theory -0.5)``) in words, each with its threshold (:data:`GLOSSARY`)."""
    out = []
    for part in statistic.split("; "):
        for pattern, words in GLOSSARY:
            part = re.sub(pattern, words, part)
        out.append(part)
    return "; ".join(out)


def result_words(r: Result) -> str:
    """What one check measured, in words: its statistic, or its residual
    against its threshold; an exact proof as ``exactly 0``."""
    if r.error:
        return f"raised {r.error}"
    if r.level == "S" and r.tolerance == 0:
        return "the difference simplifies to exactly 0" if r.passed else "the difference does not simplify to 0"
    if r.statistic:
        return in_words(r.statistic)
    return f"residual {_num(r.residual)} {'<=' if r.passed else '>'} threshold {_num(r.tolerance)}"


def _mark(r: Result | None) -> str:
    if r is None:
        return "-"
    return ("pass" if r.passed else "FAIL") + (" raised" if r.error else "") + f" {r.seconds:.1f}s"


def _wrapped(text: str, indent: int, width: int, first: str = "") -> list[str]:
    lead = " " * indent
    return textwrap.wrap(text, width, initial_indent=lead + first, subsequent_indent=lead + " " * (len(first) + 2),
                         break_on_hyphens=False) or [lead + first]


def claim_rows(rep: Report, width: int = WIDTH) -> str:
    """One row per claim (each level's pass/FAIL and time, the title), then
    each H/E statistic in words, and a failed S check, wrapped under it."""
    cols = [lv for lv in RUN_LEVELS]
    header = f"{'claim':<5} " + " ".join(f"{lv + ' ' + LEVEL_NAMES[lv]:<16}" for lv in cols) + " title"
    lines = [header, "-" * min(width, len(header) + 20)]
    for cid in rep.claim_ids:
        c = REGISTRY[cid]
        cells = []
        for lv in cols:
            r = rep.result(cid, lv)
            cells.append(_mark(r) if r is not None else ("(not selected)" if lv in c.checks else "-"))
        row = f"{cid:<5} " + " ".join(f"{x:<16}" for x in cells) + " "
        lines += textwrap.wrap(c.title, width, initial_indent=row, subsequent_indent=" " * len(row)) or [row]
        for lv in cols:
            r = rep.result(cid, lv)
            if r is not None and (lv != "S" or not r.passed):
                lines += _wrapped(result_words(r), 6, width, f"{lv}: ")
        if c.property_tests:
            lines += _wrapped(property_cell(c), 6, width, "P: ")
    return "\n".join(lines)


def paper_rows(rep: Report, width: int = WIDTH) -> str:
    """One row per statement (number, arXiv number, verdict reached, whether
    it is the documented one, levels passed), then the defect and each level's
    printed (and corrected) result in words, wrapped under it."""
    header = f"{'statement':<10} {'arXiv':<9} {'verdict reached':<44} {'documented':<11} levels passed"
    lines = [header, "-" * min(width, len(header))]
    for o in rep.statements:
        s = o.statement
        doc = "yes" if o.passed else "NO  <-- FAIL"
        lines.append(f"{s.label:<10} {s.arxiv or '-':<9} {_verdict(o.reached):<44} {doc:<11} "
                     f"{' '.join(o.levels_passed()) or '-'}")
        if not o.passed:
            lines += _wrapped(f"documented verdict: {_verdict(s.expected)}", 6, width)
        if s.defect and set(o.reached) & {"refuted as printed", "gap in the proof"}:
            lines += _wrapped(s.defect, 6, width, "defect: ")
        for lo in o.levels:
            src = f" (the claim check {lo.source})" if lo.level in s.reuses else ""
            text = ("printed " + ("holds" if lo.printed.passed else "refuted" if not lo.printed.error else "raised")
                    + f": {result_words(lo.printed)}")
            if lo.corrected is not None:
                text += f"; corrected {'holds' if lo.corrected.passed else 'fails'}: {result_words(lo.corrected)}"
            lines += _wrapped(text + src, 6, width, f"{lo.level}: ")
    return "\n".join(lines)


def _short_defect(s) -> str:
    """``"sign"``, ``"factor 2"``: the defect's name (the text before its colon)."""
    return (s.defect or "").split(":")[0].strip() or "defect"


def findings_text(rep: Report) -> str:
    """What the checks found about the paper, by reached verdict:
    ``3 refuted as printed: 5.1 sign, 5.4 factor 2, ...; 1 proof gap: 5.8; ...``."""
    groups: dict[str, list[str]] = {"refuted as printed": [], "proof gap": [], "hold only in the limit": [],
                                    "hold": [], "not settled": []}
    for o in rep.statements:
        s, v = o.statement, set(o.reached)
        if "refuted as printed" in v:
            groups["refuted as printed"].append(f"{s.number} {_short_defect(s)}")
        elif "gap in the proof" in v:
            groups["proof gap"].append(s.number)
        elif "holds only in the limit" in v:
            groups["hold only in the limit"].append(s.number)
        elif v == {"holds"}:
            groups["hold"].append(s.number)
        else:
            groups["not settled"].append(f"{s.number} ({_verdict(o.reached)})")
    names = {"hold": ("holds", "hold"), "hold only in the limit": ("holds only in the limit", "hold only in the limit")}
    parts = []
    for key, items in groups.items():
        if items:
            one, many = names.get(key, (key, key))
            parts.append(f"{len(items)} {one if len(items) == 1 else many}: {', '.join(items)}")
    caveat = "" if not rep.failed_statements else \
        f" ({len(rep.failed_statements)} not the documented verdict: see above)"
    return f"What they found about the paper{caveat}: {'; '.join(parts)}."


def fit(text: str, width: int = WIDTH) -> str:
    """Every line of ``text`` wrapped to ``width`` columns (continuations
    indented four more than the line)."""
    out = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        lead = " " * (len(line) - len(line.lstrip()))
        out += textwrap.wrap(line.strip(), width, initial_indent=lead, subsequent_indent=lead + "    ",
                             break_on_hyphens=False, break_long_words=True)
    return "\n".join(out)


# ---- dependency graph ----------------------------------------------------- #
def _depth(cid: str, memo: dict[str, int]) -> int:
    if cid not in memo:
        deps = [d for d in REGISTRY[cid].depends_on if d in REGISTRY]
        memo[cid] = 0 if not deps else 1 + max(_depth(d, memo) for d in deps)
    return memo[cid]


def topo_order(claim_ids: Iterable[str] | None = None) -> list[str]:
    """Claims ordered so every claim comes after what it depends on (ties: registry order)."""
    ids = list(REGISTRY) if claim_ids is None else list(claim_ids)
    memo: dict[str, int] = {}
    order = {c: i for i, c in enumerate(REGISTRY)}
    return sorted(ids, key=lambda c: (_depth(c, memo), order[c]))


def dependency_text(rep: Report | None = None, claim_ids: Iterable[str] | None = None) -> str:
    """The dependency DAG as an ASCII tree. Each claim appears once, under the
    dependency that comes last in topological order; its other dependencies are
    listed as ``also <- ...``. With a report, each claim's status, and a note
    when a claim it rests on (transitively) failed."""
    ids = topo_order(claim_ids if claim_ids is not None else (rep.claim_ids if rep else None))
    pos = {c: i for i, c in enumerate(ids)}
    parent = {c: max((d for d in REGISTRY[c].depends_on if d in pos), key=pos.get, default=None) for c in ids}
    children: dict[str | None, list[str]] = {}
    for c in ids:
        children.setdefault(parent[c], []).append(c)
    failed = {c for c in REGISTRY if rep is not None and rep.status(c) == "FAIL"}
    lines: list[str] = []

    def walk(cid: str, prefix: str, branch: str, last: bool) -> None:
        c = REGISTRY[cid]
        status = f"[{rep.status(cid)}] " if rep is not None else ""
        others = [d for d in c.depends_on if d != parent[cid]]
        also = f"  (also <- {', '.join(others)})" if others else ""
        bad = sorted(_ancestors(cid) & failed)
        note = f"  (rests on FAILED {', '.join(bad)})" if bad else ""
        lines.append(f"{prefix}{branch}{cid} {status}{c.title}{also}{note}")
        kids = children.get(cid, [])
        ext = prefix + ("" if not branch else ("    " if last else "|   "))
        for k, kid in enumerate(kids):
            walk(kid, ext, "+-- ", k == len(kids) - 1)

    for root in children.get(None, []):
        walk(root, "", "", True)
    return "\n".join(lines)


def _ancestors(cid: str) -> set[str]:
    out: set[str] = set()
    stack = list(REGISTRY[cid].depends_on)
    while stack:
        d = stack.pop()
        if d in REGISTRY and d not in out:
            out.add(d)
            stack.extend(REGISTRY[d].depends_on)
    return out


def mermaid(claim_ids: Iterable[str] | None = None) -> str:
    """The dependency DAG as a mermaid ``graph`` (arrows point from a claim to
    the claims that rest on it)."""
    ids = topo_order(claim_ids)
    lines = ["```mermaid", "graph TD"]
    for cid in ids:
        lines.append(f'  {cid}["{cid}: {REGISTRY[cid].title}"]')
    for cid in ids:
        lines += [f"  {d} --> {cid}" for d in REGISTRY[cid].depends_on if d in ids]
    return "\n".join(lines + ["```"])


def render_text(rep: Report, wide: bool = False, width: int = WIDTH) -> str:
    """The terminal report. By default every line fits in ``width`` columns:
    one short row per statement and claim, its details (each statistic in
    words with its threshold) wrapped under it; ``wide``: one-line tables."""
    parts = []
    if rep.statements:
        parts += ["The paper's statements (thesis chapter 5 numbers; arXiv numbers in the second column):",
                  paper_table(rep) if wide else paper_rows(rep, width), ""]
        if rep.claim_ids:
            parts.append("The project's claims:")
    if rep.claim_ids or not rep.statements:
        parts += [text_table(rep) if wide else claim_rows(rep, width), "",
                  "Dependency graph (each claim rests on the claim above it):", dependency_text(rep)]
    power = power_text(rep)
    if power:
        parts += ["", "Stated power (probability that the check fails under each named alternative):", power]
    if parts and parts[-1] == "":
        parts.pop()
    if rep.controls_requested:
        parts += ["", "Negative controls (each must make its check fail, or change its statement's verdict):",
                  controls_table(rep) if rep.controls else "(no selected check declares a control)"]
        used = dict.fromkeys(c.control for c in rep.controls)
        parts += [f"  {name}: {ctl.CONTROLS[name]}" for name in used]
    if not rep.passed:
        parts += ["", failures_text(rep)]
    text = "\n".join(parts + ["", summary_text(rep), findings_text(rep)] if rep.statements else
                     parts + ["", summary_text(rep)])
    return text if wide else fit(text, width)


def _power_cell(power) -> str:
    return "-" if power is None else f"{power:.3g}"


def powered(rep: Report) -> list[Result]:
    """The results of the run that state their power (``details["power"]``)."""
    own = [r for o in rep.statements for r in o.results if not any(r is q for q in rep.results)]
    return [r for r in rep.results + own if isinstance((r.details or {}).get(ctl.POWER_KEY), dict)]


def power_text(rep: Report) -> str:
    """One line per result stating its power: ``C6a E: cov0.7 0.999, cov1.3 0.97 (analytic: ...)``."""
    lines = []
    for r in powered(rep):
        power = r.details[ctl.POWER_KEY]
        cells = ", ".join(f"{k} {_power_cell(_float(v))}" for k, v in power.items())
        form = r.details.get("form")
        how = r.details.get("power_method")
        lines.append(f"  {r.claim} {r.level}{f' ({form})' if form else ''}: {cells}" + (f" ({how})" if how else ""))
    return "\n".join(lines)


def _float(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def controls_table(rep: Report) -> str:
    """One row per control: the check, the control, the outcome without and
    with it, the check's stated power against it, and caught / SURVIVED / NOT REACHED."""
    header = ["check", "levels", "control", "without control", "under control", "power", "outcome"]
    rows = [[c.label, " ".join(c.levels), c.control, c.baseline, c.controlled, _power_cell(c.power),
             c.outcome + (f" ({c.note})" if c.note else "") + ("" if c.passed else "  <-- FAIL")]
            for c in rep.controls]
    return _table(header, rows)


# ---- JSON ----------------------------------------------------------------- #
def _finite_or_none(v):
    # JSON has no NaN/inf; a non-finite residual is reported as null (it never passes)
    return v if v is None or math.isfinite(v) else None


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return _jsonable(obj.tolist())
    try:
        f = float(obj)
    except (TypeError, ValueError):
        return str(obj)
    return f if math.isfinite(f) else str(f)


def result_dict(r: Result) -> dict:
    return {"claim": r.claim, "level": r.level, "passed": bool(r.passed),
            "residual": _finite_or_none(None if r.residual is None else float(r.residual)),
            "tolerance": _finite_or_none(None if r.tolerance is None else float(r.tolerance)),
            "reason": str(r.reason), "seconds": float(r.seconds), "error": r.error,
            "details": _jsonable(r.details or {})}


def to_json(rep: Report) -> dict:
    """The report as a JSON-ready dict (schema: ``docs/report_schema.md``)."""
    from . import __version__

    claims = []
    for cid in rep.claim_ids:
        c = REGISTRY[cid]
        claims.append({
            "id": c.id, "title": c.title, "statement": c.statement, "latex": c.latex,
            "depends_on": list(c.depends_on), "levels_available": list(c.levels),
            "property_tests": c.property_tests, "status": rep.status(cid),
        })
    secs = sum(r.seconds for r in rep.results)
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "package_version": __version__,
        "created": rep.created, "command": rep.command,
        "config": {"seed": rep.config.seed, "dps": rep.config.dps, "full": rep.config.full, "prec": rep.config.prec},
        "levels": list(rep.levels), "passed": rep.passed,
        "summary": {"checks": len(rep.results), "passed": len(rep.results) - len(rep.failed),
                    "failed": len(rep.failed), "unchecked_claims": rep.unchecked, "seconds": secs,
                    "statements": len(rep.statements),
                    "statements_as_expected": len(rep.statements) - len(rep.failed_statements),
                    "failed_statements": [o.statement.number for o in rep.failed_statements],
                    "controls": len(rep.controls), "controls_caught": len(rep.controls) - len(rep.failed_controls),
                    "failed_controls": [control_id(c) for c in rep.failed_controls]},
        "claims": claims,
        "results": [result_dict(r) for r in rep.results],
        "statements": [statement_dict(o) for o in rep.statements],
        "controls_requested": rep.controls_requested,
        "controls": [control_dict(c) for c in rep.controls],
    }


def control_id(c: ControlOutcome) -> str:
    """``"C6a E untrained"``, ``"5.4 E factor"``, ``"5.1 S,H,E exchanged"``."""
    return f"{c.key} {','.join(c.levels)} {c.control}"


def control_dict(c: ControlOutcome) -> dict:
    """One negative control of the report (schema: ``docs/report_schema.md``)."""
    return {"kind": c.kind, "id": c.key, "label": c.label, "levels": list(c.levels), "control": c.control,
            "breaks": ctl.CONTROLS[c.control], "baseline": c.baseline, "under_control": c.controlled,
            "caught": c.caught, "reached": c.reached, "passed": c.passed, "outcome": c.outcome,
            "power": _finite_or_none(c.power), "note": c.note, "results": [result_dict(r) for r in c.results]}


def statement_dict(o: StatementOutcome) -> dict:
    """One paper statement of the report (schema: ``docs/report_schema.md``)."""
    s = o.statement
    return {
        "number": s.number, "kind": s.kind, "label": s.label, "arxiv": s.arxiv, "title": s.title,
        "printed": s.printed.text, "corrected": None if s.corrected is None else s.corrected.text,
        "defect": s.defect, "expected_verdict": list(s.expected), "verdict": list(o.reached),
        "as_expected": o.passed, "levels_passed": list(o.levels_passed()),
        "claims": [{"id": cid, "relation": rel} for cid, rel in s.claims],
        "property_tests": s.property_tests,
        "levels": [{"level": lo.level, "source": lo.source, "reused_claim": lo.level in s.reuses,
                    "printed": None if lo.printed is None else result_dict(lo.printed),
                    "corrected": None if lo.corrected is None else result_dict(lo.corrected)}
                   for lo in o.levels],
    }


def dumps(rep: Report) -> str:
    return json.dumps(to_json(rep), indent=2, allow_nan=False) + "\n"


_NUM = (int, float)
_TOP = {"schema": str, "schema_version": int, "package_version": str, "created": str, "command": str,
        "config": dict, "levels": list, "passed": bool, "summary": dict, "claims": list, "results": list,
        "statements": list, "controls_requested": bool, "controls": list}
_CONFIG = {"seed": int, "dps": int, "full": bool, "prec": int}
_SUMMARY = {"checks": int, "passed": int, "failed": int, "unchecked_claims": list, "seconds": _NUM,
            "statements": int, "statements_as_expected": int, "failed_statements": list,
            "controls": int, "controls_caught": int, "failed_controls": list}
_OPT_STR = (str, type(None))
_STATEMENT = {"number": str, "kind": str, "label": str, "arxiv": _OPT_STR, "title": str, "printed": str,
              "corrected": _OPT_STR, "defect": _OPT_STR, "expected_verdict": list, "verdict": list,
              "as_expected": bool, "levels_passed": list, "claims": list, "property_tests": _OPT_STR,
              "levels": list}
_STATEMENT_LEVEL = {"level": str, "source": str, "reused_claim": bool, "printed": (dict, type(None)),
                    "corrected": (dict, type(None))}
_STATEMENT_CLAIM = {"id": str, "relation": str}
_CONTROL = {"kind": str, "id": str, "label": str, "levels": list, "control": str, "breaks": str, "baseline": str,
            "under_control": str, "caught": bool, "reached": bool, "passed": bool, "outcome": str,
            "power": (*_NUM, type(None)), "note": str, "results": list}
_CLAIM = {"id": str, "title": str, "statement": str, "latex": str, "depends_on": list,
          "levels_available": list, "property_tests": (str, type(None)), "status": str}
_RESULT = {"claim": str, "level": str, "passed": bool, "residual": (*_NUM, type(None)),
           "tolerance": (*_NUM, type(None)), "reason": str, "seconds": _NUM,
           "error": (str, type(None)), "details": dict}


def _keys(obj: dict, spec: dict, where: str) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    missing, extra = set(spec) - set(obj), set(obj) - set(spec)
    if missing or extra:
        raise ValueError(f"{where}: missing keys {sorted(missing)}, unexpected keys {sorted(extra)}")
    for k, t in spec.items():
        if not isinstance(obj[k], t) or (t in (int, _NUM) and isinstance(obj[k], bool)):
            raise ValueError(f"{where}.{k}: expected {t}, got {type(obj[k]).__name__}")


def validate_report(doc: dict) -> None:
    """Raise ``ValueError`` unless ``doc`` follows schema version 3 exactly
    (the keys and types documented in ``docs/report_schema.md``)."""
    _keys(doc, _TOP, "report")
    if doc["schema"] != SCHEMA or doc["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"not a {SCHEMA} v{SCHEMA_VERSION} document")
    _keys(doc["config"], _CONFIG, "config")
    _keys(doc["summary"], _SUMMARY, "summary")
    for i, c in enumerate(doc["claims"]):
        _keys(c, _CLAIM, f"claims[{i}]")
        if c["status"] not in ("pass", "FAIL", "unchecked", "not run"):
            raise ValueError(f"claims[{i}].status: unknown status {c['status']!r}")
    for i, r in enumerate(doc["results"]):
        _keys(r, _RESULT, f"results[{i}]")
        if r["level"] not in RUN_LEVELS:
            raise ValueError(f"results[{i}].level: {r['level']!r} is not one of {RUN_LEVELS}")
        if not isinstance(r["details"].get("statistic", ""), str):
            raise ValueError(f"results[{i}].details.statistic: expected a string")
    if any(lv not in LEVELS for lv in doc["levels"]):
        raise ValueError(f"levels: {doc['levels']} must be drawn from {LEVELS}")
    for i, st in enumerate(doc["statements"]):
        where = f"statements[{i}]"
        _keys(st, _STATEMENT, where)
        for key in ("expected_verdict", "verdict"):
            bad = [v for v in st[key] if v not in pp.VERDICTS + pp.FAILED_VERDICTS]
            if not st[key] or bad:
                raise ValueError(f"{where}.{key}: unknown verdict(s) {bad or st[key]!r}")
        if st["as_expected"] != (st["verdict"] == st["expected_verdict"]):
            raise ValueError(f"{where}.as_expected disagrees with verdict vs expected_verdict")
        for j, c in enumerate(st["claims"]):
            _keys(c, _STATEMENT_CLAIM, f"{where}.claims[{j}]")
        for j, lo in enumerate(st["levels"]):
            _keys(lo, _STATEMENT_LEVEL, f"{where}.levels[{j}]")
            if lo["level"] not in RUN_LEVELS:
                raise ValueError(f"{where}.levels[{j}].level: {lo['level']!r} is not one of {RUN_LEVELS}")
            for form in ("printed", "corrected"):
                if lo[form] is not None:
                    _keys(lo[form], _RESULT, f"{where}.levels[{j}].{form}")
    for i, c in enumerate(doc["controls"]):
        where = f"controls[{i}]"
        _keys(c, _CONTROL, where)
        if c["control"] not in ctl.CONTROLS or c["kind"] not in ("claim", "statement"):
            raise ValueError(f"{where}: unknown control {c['control']!r} or kind {c['kind']!r}")
        if c["passed"] != (c["caught"] and c["reached"]):
            raise ValueError(f"{where}.passed disagrees with caught and reached")
        if c["outcome"] not in ("caught", "SURVIVED", "NOT REACHED"):
            raise ValueError(f"{where}.outcome: unknown outcome {c['outcome']!r}")
        for j, r in enumerate(c["results"]):
            _keys(r, _RESULT, f"{where}.results[{j}]")
    if doc["controls"] and not doc["controls_requested"]:
        raise ValueError("controls: rows present although controls_requested is false")


# ---- markdown -------------------------------------------------------------- #
def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(rep: Report) -> str:
    """The report as markdown: verdict, the paper's statements, the claims x
    levels table, failures, every check's record, the dependency graph."""
    lines = ["# ntk-equiv verification report", "",
             f"`{rep.command}` at {rep.created}", "", f"**{summary_text(rep)}**", ""]
    if rep.statements:
        lines += [f"**{findings_text(rep)}**", ""]
    if rep.statements:
        lines += ["## The paper's statements", "",
                  "| statement | arXiv | title | verdict reached | expected | levels passed | "
                  + " | ".join(LEVELS) + " |", "|---|---|---|---|---|---|" + "---|" * len(LEVELS)]
        for o in rep.statements:
            st = o.statement
            verdict = _verdict(o.reached) if o.passed else f"**{_verdict(o.reached)}**"
            cells = [_md_escape(statement_cell(o, lv)) for lv in LEVELS]
            lines.append(f"| {st.label} | {st.arxiv or '-'} | {_md_escape(st.title)} | {verdict} | "
                         f"{_verdict(st.expected)} | {' '.join(o.levels_passed()) or '-'} | " + " | ".join(cells) + " |")
        lines.append("")
    if rep.claim_ids:
        lines += ["## The project's claims", "",
                  "| claim | title | " + " | ".join(f"{lv} ({LEVEL_NAMES[lv]})" for lv in LEVELS) + " |",
                  "|---|---|" + "---|" * len(LEVELS)]
        for cid in rep.claim_ids:
            c = REGISTRY[cid]
            cells = [_md_escape(_cell(rep, c, lv)) for lv in LEVELS]
            lines.append(f"| {cid} | {_md_escape(c.title)} | " + " | ".join(cells) + " |")
        lines.append("")
    if rep.controls_requested:
        lines += ["## Negative controls", "",
                  "| check | levels | control | breaks | without control | under control | power | outcome |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in rep.controls:
            outcome = c.outcome if c.passed else f"**{c.outcome}**"
            lines.append(f"| {c.label} | {' '.join(c.levels)} | {c.control} | {_md_escape(ctl.CONTROLS[c.control])} | "
                         f"{_md_escape(c.baseline)} | {_md_escape(c.controlled)} | {_power_cell(c.power)} | {outcome}"
                         + (f" ({_md_escape(c.note)})" if c.note else "") + " |")
        lines.append("")
    power = power_text(rep)
    if power:
        lines += ["## Stated power", ""] + [f"- {line.strip()}" for line in power.splitlines()] + [""]
    if not rep.passed:
        lines += ["## Failures", ""] + [f"- {line}" for line in failures_text(rep).splitlines()] + [""]
    lines += ["## Checks", "", "| claim | level | form | passed | statistic | residual | tolerance | seconds | reason |",
              "|---|---|---|---|---|---|---|---|---|"]
    records = [(r, "") for r in rep.results]
    records += [(r, r.details.get("form", "printed")) for o in rep.statements for r in o.results
                if not any(r is q for q in rep.results)]
    for r, form in records:
        why = r.error or r.reason
        lines.append(f"| {r.claim} | {r.level} | {form or '-'} | {'yes' if r.passed else '**no**'} | "
                     f"{_md_escape(r.statistic or '-')} | {_num(r.residual)} | {_num(r.tolerance)} | {r.seconds:.2f} | {_md_escape(why)} |")
    if rep.claim_ids:
        lines += ["", "## Dependency graph", "", mermaid(rep.claim_ids), "", "```", dependency_text(rep), "```"]
    return "\n".join(lines + [""])


# ---- the generated claims reference --------------------------------------- #
README_START = "<!-- claims-table:start (generated by `ntk-equiv docs`; do not edit) -->"
README_END = "<!-- claims-table:end -->"


def claims_table() -> str:
    """The claims summary table (id, title, depends on, levels with a check)."""
    load()
    lines = ["| claim | title | depends on | levels |", "|---|---|---|---|"]
    for cid, c in REGISTRY.items():
        deps = ", ".join(c.depends_on) or "-"
        lines.append(f"| [{cid}](docs/claims.md#{cid.lower()}) | {_md_escape(c.title)} | {deps} | "
                     f"{' '.join(c.levels) or '-'} |")
    return "\n".join(lines)


def readme_with_table(readme: str) -> str:
    """``readme`` with the text between the claims-table markers replaced by
    :func:`claims_table` (unchanged if the markers are missing)."""
    if README_START not in readme or README_END not in readme:
        return readme
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{claims_table()}\n{README_END}{tail}"


def claims_markdown() -> str:
    """``docs/claims.md``: every registered claim with its statement, LaTeX,
    dependencies and the levels at which a check exists. Generated; do not edit."""
    load()
    lines = ["# Claims verified by ntk-equiv", "",
             "<!-- GENERATED by `ntk-equiv docs` from ntk_equiv/claims (the registry); do not edit. "
             "tests/test_cli.py fails when this file is out of date. -->", "",
             "Levels: " + ", ".join(f"**{lv}** {LEVEL_NAMES[lv]}" for lv in LEVELS)
             + " (P runs under pytest, in the module named).", "",
             claims_table().replace("](docs/claims.md#", "](#"), "", "## Dependency graph", "", mermaid(), ""]
    for cid, c in REGISTRY.items():
        lines += [f"## {cid}", "", f"**{c.title}**", "", c.statement, "", "$$", c.latex, "$$", "",
                  f"- depends on: {', '.join(c.depends_on) or 'nothing'}"]
        linked = statements_of_claim(cid)
        if linked:
            lines.append(f"- the paper's statements ([paper.md](paper.md)): {'; '.join(linked)}")
        for lv in LEVELS:
            if lv == "P" and c.property_tests:
                lines.append(f"- P ({LEVEL_NAMES[lv]}): `{c.property_tests}`")
            elif lv in c.checks:
                fn = c.checks[lv]
                lines.append(f"- {lv} ({LEVEL_NAMES[lv]}): `{fn.__module__}.{fn.__name__}`{budget_text(fn, (cid, lv))}")
        missing = [lv for lv in RUN_LEVELS if lv not in c.checks]
        if missing:
            lines.append(f"- no check at: {', '.join(missing)}")
        lines.append("")
    return "\n".join(lines)


def budget_text(fn, key: tuple[str, str]) -> str:
    """`` (budget 5 s; --full 240 s)``: the seconds the check states it needs."""
    b, full = budget(fn, key=key), budget(fn, full=True, key=key)
    return "" if b is None else f" (budget {b:g} s; --full {full:g} s)"


# ---- the generated reference of the paper's statements --------------------- #
def _statement_levels(s, checks) -> list[str]:
    out = []
    for lv in RUN_LEVELS:
        if lv in s.reuses:
            cid, clv = s.reuses[lv]
            out.append(f"- {lv} ({LEVEL_NAMES[lv]}): the claim check {cid} {clv} (printed form)")
        elif (s.number, lv) in checks:
            fn = checks[(s.number, lv)]
            sizes = getattr(fn, "sizes", None)
            covered = f" (covers: {sizes}; with `--full`: {fn.sizes_full})" if sizes and fn.sizes_full != sizes else (
                f" (covers: {sizes})" if sizes else "")
            out.append(f"- {lv} ({LEVEL_NAMES[lv]}): `{fn.__module__}.{fn.__name__}`{covered}")
    if s.property_tests:
        out.append(f"- P ({LEVEL_NAMES['P']}): `{s.property_tests}`")
    missing = [lv for lv in RUN_LEVELS if lv not in s.reuses and (s.number, lv) not in checks]
    if missing:
        out.append(f"- no check at: {', '.join(missing)}")
    return out


def paper_markdown() -> str:
    """``docs/paper.md``: the paper's nine statements with their printed and
    corrected forms, expected verdicts, checks and linked claims. Generated."""
    load()
    checks = registry.statement_checks()
    lines = ["# The paper's statements, one by one", "",
             "<!-- GENERATED by `ntk-equiv docs` from ntk_equiv/claims/paper.py; do not edit. "
             "tests/test_paper.py fails when this file is out of date. -->", "",
             "The numbered statements of *On the Equivalence of Random Network Distillation, Deep Ensembles, and "
             "Bayesian Inference* (arXiv 2602.19964), numbered as in chapter 5 of M. Zanger's PhD thesis (TU Delft, "
             "2026), which presents the paper's work with full proofs; the arXiv number is given where reported. "
             "Notation is the paper's: predictor `u(x; vartheta_t)` (trained), target `g(x; psi_0)` (fixed), "
             "error `eps_i = u_i - g_i`, signal `eps^2 = (1/K) sum_i eps_i^2` over `K` heads, NNGP kernel `kappa`, "
             "NTK `Theta`, training inputs `X` with labels `Y`, test inputs `X_T`, as in the project's claims C1-C9 "
             "([claims.md](claims.md)) and [theory.md](theory.md).", "",
             "`ntk-equiv verify --paper` checks them. A verdict is *reached by the checks* from the forms' "
             "content (each form's printed choices are data the checks evaluate; a statement that holds as printed "
             "carries a documented false *alternative*, so exchanging its forms changes the verdict): the printed "
             "form is checked at every level; passing everywhere gives \"holds\", or \"holds only in the limit\" "
             "when a check shows both halves (a finite-width deviation beyond its standard error, or exactly "
             "non-zero, and its decay at the proven rate), or \"imprecise\" when the statement holds under its "
             "stated reading and a check measures an approximation whose error it does not quantify; failing "
             "everywhere sends the verifier to the corrected form, and its passing everywhere gives \"refuted as "
             "printed + holds as corrected\", or \"gap in the proof\" (after the corrected form's own verdict) when "
             "every failure is a failed proof step with the statement's content holding. A reached verdict "
             "other than the documented one below fails the run (exit 1): a printed error documented as such does "
             "not, a statement documented as holding that does not hold does, and so does a refutation that "
             "disappears.", "",
             "| statement | arXiv | title | expected verdict | levels | claims |", "|---|---|---|---|---|---|"]
    certified = [s.label for s in pp.STATEMENTS if (s.number, "C") in checks and "refuted as printed" in s.expected]
    if certified:
        lines[-2:-2] = [
            "**Certified counterexamples** (level C, ball arithmetic: [theory.md](theory.md)): "
            f"{', '.join(certified)} as printed are refuted by a residual ball that excludes 0, with its margin "
            "(`ntk-equiv verify --paper --levels C`), a proof on that instance that the printed formula differs "
            "from the true one. Scope: the certificate covers the formulas as coded on those inputs; that the "
            "corrected formula is the true one rests on the S level.", ""]
    for s in pp.STATEMENTS:
        lv = " ".join(pp.levels_of(s, checks) + (("P",) if s.property_tests else ())) or "-"
        cl = ", ".join(f"[{c}](claims.md#{c.lower()})" for c, _ in s.claims) or "-"
        lines.append(f"| [{s.label}](#{s.label.lower().replace(' ', '-').replace('.', '')}) | {s.arxiv or '-'} | "
                     f"{_md_escape(s.title)} | {' + '.join(s.expected)} | {lv} | {cl} |")
    lines.append("")
    for s in pp.STATEMENTS:
        lines += [f"## {s.label}", "", f"**{s.title}** ({s.kind} {s.number}"
                  + (f"; arXiv {s.arxiv}" if s.arxiv else "") + ")", "",
                  f"- **As printed**: {s.printed.text}"]
        if s.corrected is not None:
            lines.append(f"- **Corrected**: {s.corrected.text}")
        if s.alternative is not None:
            lines.append(f"- **False alternative** (what the exchanged control checks): {s.alternative.text}")
        if s.defect:
            lines.append(f"- **Defect**: {s.defect}")
        if s.finite_width:
            lines.append(f"- **At finite width**: {s.finite_width}")
        lines.append(f"- **Expected verdict**: {' + '.join(s.expected)}")
        lines += ["- **Linked claims**:"] + [f"  - [{c}](claims.md#{c.lower()}): {rel}" for c, rel in s.claims]
        lines += ["- **Checks**:"] + ["  " + x for x in _statement_levels(s, checks)]
        lines.append("")
    return "\n".join(lines)


def statements_of_claim(claim_id: str) -> list[str]:
    """``"Prop 5.1 (generalises it: ...)"`` for every paper statement linked to ``claim_id``."""
    return [f"{s.label} ({rel})" for s in pp.STATEMENTS for c, rel in s.claims if c == claim_id]
