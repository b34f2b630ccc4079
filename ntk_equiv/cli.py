"""The ``ntk-equiv`` command line.

``ntk-equiv verify``
    Run every registered claim check (THEORY.md C1-C9) at the S, H and E
    levels on built-in synthetic data with fixed seeds; print a claims x levels
    table and the dependency graph; exit 0 if all pass, 1 if any fails (or a
    selected claim has no check), 2 on bad usage.
``ntk-equiv docs``
    Regenerate ``docs/claims.md`` from the registry (``--check``: exit 1 if stale).
``ntk-equiv paper-checks``
    The figures of ``paper_checks`` (same as ``python -m paper_checks``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import report as rp
from .claims.registry import LEVELS, REGISTRY, Config, _selected, all_checks, load, run_check
from .errors import ParameterError
from .validation import MAX_DPS, MIN_DPS, check_dps, check_output_file, check_seed

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input that argparse cannot see (e.g. an unknown claim id)."""


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_levels(text: str | None) -> list[str]:
    if text is None:
        return list(LEVELS)
    levels = [p.upper() for p in _csv(text)]
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise UsageError(f"--levels: unknown level(s) {bad or text!r}; choose from {','.join(LEVELS)}")
    return [lv for lv in LEVELS if lv in levels]


def parse_claims(text: str | None) -> list[str]:
    """Selected claim ids in registry order; ``C6`` selects C6, C6a, C6b, C6c."""
    load()
    if text is None:
        return list(REGISTRY)
    wanted = _csv(text)
    unknown = [w for w in wanted if not any(_selected(c, [w]) for c in REGISTRY)]
    if unknown or not wanted:
        raise UsageError(f"--claims: unknown claim(s) {unknown or text!r}; known: {', '.join(REGISTRY)}")
    return [c for c in REGISTRY if _selected(c, wanted)]


def run_verify(claim_ids: list[str], levels: list[str], config: Config, progress=None,
               command: str = "ntk-equiv verify") -> rp.Report:
    """Run the selected checks (a raising check is a failed result, never a crash)."""
    rep = rp.Report(claim_ids, levels, config, command=command)
    todo = all_checks(claim_ids, levels)
    for k, (cid, lv) in enumerate(todo, 1):
        if progress:
            progress(f"[{k}/{len(todo)}] {cid} {lv} ... ")
        res = run_check(cid, lv, config)
        rep.results.append(res)
        if progress:
            progress(f"{'ok' if res.passed else 'FAIL'} ({res.seconds:.1f}s)\n")
    return rep


def _stderr(msg: str) -> None:
    sys.stderr.write(msg)
    sys.stderr.flush()


def cmd_verify(args) -> int:
    levels = parse_levels(args.levels)
    claim_ids = parse_claims(args.claims)
    try:  # the library's own limits, and the output files, before the run (not after it)
        check_dps(args.dps)
        check_seed(args.seed, "--seed")
        for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
            if path:
                check_output_file(path, flag)
    except ParameterError as exc:
        raise UsageError(str(exc).replace("dps must", "--dps must").replace(" (or None for float64)", "")) from None
    config = Config(seed=args.seed, dps=args.dps, full=args.full)
    command = "ntk-equiv verify " + " ".join(args.argv_rest)
    rep = run_verify(claim_ids, levels, config, progress=None if args.quiet else _stderr, command=command.strip())
    print(rp.render_text(rep))
    if args.json:
        Path(args.json).write_text(rp.dumps(rep), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(rp.render_markdown(rep), encoding="utf-8")
    return EXIT_OK if rep.passed else EXIT_FAIL


def repo_root() -> Path | None:
    """The checkout this module runs from (``None`` when installed elsewhere)."""
    repo = Path(__file__).resolve().parents[1]
    return repo if (repo / "pyproject.toml").exists() else None


def cmd_docs(args) -> int:
    """Write ``docs/claims.md`` and the claims table of ``README.md`` from the
    registry; ``--check``: exit 1 if either is out of date, write nothing."""
    root = repo_root() or Path.cwd()
    if args.out:
        try:
            check_output_file(args.out, "--out")
        except ParameterError as exc:
            raise UsageError(str(exc)) from None
    targets = {Path(args.out) if args.out else root / "docs" / "claims.md": rp.claims_markdown()}
    readme = root / "README.md"
    if not args.out and readme.exists():
        text = readme.read_text(encoding="utf-8")
        targets[readme] = rp.readme_with_table(text)
    stale = [p for p, text in targets.items() if (p.read_text(encoding="utf-8") if p.exists() else "") != text]
    if args.check:
        for p in stale:
            _stderr(f"{p} is out of date with the claim registry; run `ntk-equiv docs`\n")
        return EXIT_FAIL if stale else EXIT_OK
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(targets[p], encoding="utf-8")
        _stderr(f"wrote {p}\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ntk-equiv", description="Verify the claims C1-C9 of the RND = deep "
                                "ensemble = Bayesian inference equivalence (arXiv 2602.19964).")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="run every claim check and print the report")
    v.add_argument("--claims", help="comma-separated claim ids or prefixes, e.g. C6,C7 (default: all)")
    v.add_argument("--levels", help=f"comma-separated levels among {','.join(LEVELS)} (default: all)")
    v.add_argument("--dps", type=int, default=Config.dps, help=f"digits for the H level, {MIN_DPS} to {MAX_DPS} (default %(default)s)")
    v.add_argument("--seed", type=int, default=Config.seed, help="seed of every check, an integer >= 0 (default %(default)s)")
    v.add_argument("--full", action="store_true", help="paper-scale widths and sample sizes (slow)")
    v.add_argument("--json", metavar="FILE", help="also write the report as JSON (docs/report_schema.md)")
    v.add_argument("--markdown", metavar="FILE", help="also write the report as markdown")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    v.set_defaults(func=cmd_verify)
    d = sub.add_parser("docs", help="regenerate docs/claims.md and the README claims table from the registry")
    d.add_argument("--out", help="output file (default: docs/claims.md of the repository)")
    d.add_argument("--check", action="store_true", help="exit 1 if the file is out of date instead of writing")
    d.set_defaults(func=cmd_docs)
    # listed for --help only: main() hands `paper-checks ...` to paper_checks' own parser
    sub.add_parser("paper-checks", help="figures with real networks (= python -m paper_checks; --quick, --out)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 pass, 1 fail, 2 bad usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["paper-checks"]:  # its own parser (paper_checks.__main__) takes the rest verbatim
        from paper_checks.__main__ import main as paper_main

        return paper_main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)
    args.argv_rest = argv[1:]
    try:
        return args.func(args)
    except UsageError as exc:
        _stderr(f"ntk-equiv: error: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
