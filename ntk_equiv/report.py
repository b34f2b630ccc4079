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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from .claims.registry import LEVEL_NAMES, LEVELS, REGISTRY, Claim, Config, Result, load

SCHEMA = "ntk-equiv/verify-report"
SCHEMA_VERSION = 1
RUN_LEVELS = ("S", "H", "E")  # levels `verify` runs; P is pytest's


@dataclass
class Report:
    """One run of ``ntk-equiv verify``: which claims and levels were selected,
    the configuration, and one :class:`Result` per (claim, level) that ran."""

    claim_ids: list[str]
    levels: list[str]
    config: Config
    results: list[Result] = field(default_factory=list)
    command: str = "ntk-equiv verify"
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

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
    def passed(self) -> bool:
        return not self.failed and not self.unchecked

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


def failures_text(rep: Report) -> str:
    lines = []
    for r in rep.failed:
        what = r.error or (f"{r.statistic}; " if r.statistic else "") + \
            f"residual {_num(r.residual)} > tolerance {_num(r.tolerance)} ({r.reason})"
        lines.append(f"FAILED {r.claim} [{r.level}] {REGISTRY[r.claim].title}: {what}")
    for c in rep.unchecked:
        lines.append(f"UNCHECKED {c} {REGISTRY[c].title}: no S/H/E check is registered")
    return "\n".join(lines)


def summary_text(rep: Report) -> str:
    n, bad = len(rep.results), len(rep.failed)
    secs = sum(r.seconds for r in rep.results)
    verdict = "ALL PASSED" if rep.passed else ("FAILED" if rep.failed else "INCOMPLETE")
    extra = f", {len(rep.unchecked)} claim(s) without checks" if rep.unchecked else ""
    return f"{verdict}: {n - bad}/{n} checks passed{extra} in {secs:.1f}s (seed={rep.config.seed}, " \
           f"dps={rep.config.dps}, full={rep.config.full})"


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


def render_text(rep: Report) -> str:
    parts = [text_table(rep), "", "Dependency graph (each claim rests on the claim above it):",
             dependency_text(rep)]
    if not rep.passed:
        parts += ["", failures_text(rep)]
    return "\n".join(parts + ["", summary_text(rep)])


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
        "config": {"seed": rep.config.seed, "dps": rep.config.dps, "full": rep.config.full},
        "levels": list(rep.levels), "passed": rep.passed,
        "summary": {"checks": len(rep.results), "passed": len(rep.results) - len(rep.failed),
                    "failed": len(rep.failed), "unchecked_claims": rep.unchecked, "seconds": secs},
        "claims": claims,
        "results": [result_dict(r) for r in rep.results],
    }


def dumps(rep: Report) -> str:
    return json.dumps(to_json(rep), indent=2, allow_nan=False) + "\n"


_NUM = (int, float)
_TOP = {"schema": str, "schema_version": int, "package_version": str, "created": str, "command": str,
        "config": dict, "levels": list, "passed": bool, "summary": dict, "claims": list, "results": list}
_CONFIG = {"seed": int, "dps": int, "full": bool}
_SUMMARY = {"checks": int, "passed": int, "failed": int, "unchecked_claims": list, "seconds": _NUM}
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
    """Raise ``ValueError`` unless ``doc`` follows schema version 1 exactly
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


# ---- markdown -------------------------------------------------------------- #
def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(rep: Report) -> str:
    """The report as markdown: verdict, claims x levels table, failures, graph."""
    lines = ["# ntk-equiv verification report", "",
             f"`{rep.command}` at {rep.created}", "", f"**{summary_text(rep)}**", "",
             "| claim | title | " + " | ".join(f"{lv} ({LEVEL_NAMES[lv]})" for lv in LEVELS) + " |",
             "|---|---|" + "---|" * len(LEVELS)]
    for cid in rep.claim_ids:
        c = REGISTRY[cid]
        cells = [_md_escape(_cell(rep, c, lv)) for lv in LEVELS]
        lines.append(f"| {cid} | {_md_escape(c.title)} | " + " | ".join(cells) + " |")
    if not rep.passed:
        lines += ["", "## Failures", ""] + [f"- {line}" for line in failures_text(rep).splitlines()]
    lines += ["", "## Checks", "", "| claim | level | passed | statistic | residual | tolerance | seconds | reason |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rep.results:
        why = r.error or r.reason
        lines.append(f"| {r.claim} | {r.level} | {'yes' if r.passed else '**no**'} | {_md_escape(r.statistic or '-')} | "
                     f"{_num(r.residual)} | {_num(r.tolerance)} | {r.seconds:.2f} | {_md_escape(why)} |")
    lines += ["", "## Dependency graph", "", mermaid(rep.claim_ids), "", "```",
              dependency_text(rep), "```", ""]
    return "\n".join(lines)


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
        for lv in LEVELS:
            if lv == "P" and c.property_tests:
                lines.append(f"- P ({LEVEL_NAMES[lv]}): `{c.property_tests}`")
            elif lv in c.checks:
                fn = c.checks[lv]
                lines.append(f"- {lv} ({LEVEL_NAMES[lv]}): `{fn.__module__}.{fn.__name__}`")
        missing = [lv for lv in RUN_LEVELS if lv not in c.checks]
        if missing:
            lines.append(f"- no check at: {', '.join(missing)}")
        lines.append("")
    return "\n".join(lines)
