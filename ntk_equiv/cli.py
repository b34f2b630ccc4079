"""The ``ntk-equiv`` command line.

``ntk-equiv verify``
    Check the paper's nine numbered statements (Prop 5.1 ... Cor 5.9: the
    verdict each reaches, against the documented one) and run every registered
    claim check (C1-C9, docs/theory.md) at the S, H and E levels on built-in synthetic data with
    fixed seeds; print both tables and the dependency graph; exit 0 if every
    check passes and every statement reaches its documented verdict, 1
    otherwise (or if a selected claim or statement has no check), 2 on bad
    usage. ``--paper``: the statements only; ``--claims``: the claims only
    (unless ``--paper``/``--statements`` is given too). ``--controls``: also
    rerun each check under the negative controls it declares and each
    statement with its forms exchanged (:mod:`.claims.controls`); a control
    that the check survives, or that never reaches it, fails the run.
    ``--jobs N`` runs the checks in N worker processes (default: the number of
    cores), ``--scheduler ADDRESS`` on a Dask cluster; the report is the same.
    ``--html FILE``: also write the blueprint-style HTML report
    (:mod:`.html_report`).
``ntk-equiv report FILE.json --html OUT``
    The HTML report of a saved ``verify --json`` file.
``ntk-equiv docs``
    Regenerate ``docs/claims.md`` and ``docs/paper.md`` from the registries
    (``--check``: exit 1 if stale).
``ntk-equiv paper-checks``
    The figures of ``paper_checks`` (same as ``python -m paper_checks``).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

from . import report as rp
from .claims import paper as pp
from .claims import registry, runner
from .claims.registry import LEVELS, REGISTRY, Config, _selected, load
from .errors import ParameterError
from . import certified
from .certified import MAX_PREC, MIN_PREC
from .validation import MAX_DPS, MIN_DPS, check_dps, check_output_file, check_seed

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input that argparse cannot see (e.g. an unknown claim id)."""


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_levels(text: str | None) -> list[str]:
    """The selected levels in LEVELS order; by default all, the certified level C
    only where python-flint (the ``certified`` extra) is installed (it adds
    ~2 s to ``verify``). ``--levels C`` without it is a usage error."""
    if text is None:
        return [lv for lv in LEVELS if lv != "C" or certified.available()]
    levels = [p.upper() for p in _csv(text)]
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise UsageError(f"--levels: unknown level(s) {bad or text!r}; choose from {','.join(LEVELS)}")
    if "C" in levels and not certified.available():
        raise UsageError("--levels C needs python-flint: pip install 'ntk-equiv[certified]'")
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


_KINDS = {"prop": "Prop", "proposition": "Prop", "cor": "Cor", "corollary": "Cor", "thm": "Thm", "theorem": "Thm"}


def statement_names() -> dict[str, str]:
    """Every name a statement answers to, lower-cased, to its thesis number:
    ``5.4``, ``cor 5.4``, the arXiv ``3.2`` and ``cor 3.2``."""
    names: dict[str, str] = {}
    for s in pp.STATEMENTS:
        names[s.number] = names[s.label.lower()] = s.number
        if s.arxiv:
            names[s.arxiv.lower()] = names[s.arxiv.split()[-1]] = s.number
    return names


def _normalise(name: str) -> str:
    words = name.lower().split()
    if len(words) == 2 and words[0].rstrip(".") in _KINDS:
        words[0] = _KINDS[words[0].rstrip(".")].lower()
    return " ".join(words)


def parse_statements(text: str | None) -> list[str]:
    """Selected statement numbers in the paper's order: thesis numbers
    (``5.4``), arXiv numbers (``3.2``) or labels (``Cor 3.2``, ``Cor 5.4``),
    comma-separated; ``all``."""
    known = [s.number for s in pp.STATEMENTS]
    if text is None or text.strip().lower() == "all":
        return known
    names = statement_names()
    wanted = _csv(text)
    unknown = [w for w in wanted if _normalise(w) not in names]
    if unknown or not wanted:
        listing = ", ".join(f"{s.label}" + (f" (arXiv {s.arxiv})" if s.arxiv else "") for s in pp.STATEMENTS)
        raise UsageError(f"--statements: unknown statement(s) {unknown or text!r}; known: {listing}")
    chosen = {names[_normalise(w)] for w in wanted}
    return [n for n in known if n in chosen]


def run_verify(claim_ids: list[str], levels: list[str], config: Config, progress=None,
               command: str = "ntk-equiv verify", statements: list[str] = (), controls: bool = False,
               executor: runner.Executor = runner.sequential) -> rp.Report:
    """Run the selected claim checks and reach the selected statements'
    verdicts (a raising check is a failed result, never a crash); with
    ``controls``, rerun them under their negative controls (:mod:`.claims.runner`).
    A statement level that reuses a claim's check takes that claim's result
    from this run."""
    done = runner.run(claim_ids, levels, config, statements=statements, controls=controls, progress=progress,
                      executor=executor)
    rep = rp.Report(claim_ids, levels, config, command=command)
    rep.results, rep.statements = done.results, done.statements
    rep.controls, rep.controls_requested = done.controls, controls
    return rep


def _stderr(msg: str) -> None:
    sys.stderr.write(msg)
    sys.stderr.flush()


_TASK_LINE = re.compile(r"^\[(\d+)/(\d+)\] ")


class Progress:
    """The runner's progress on stderr, each finished check followed by the
    time so far and an estimate of the time left (the mean time per check so
    far times the checks left), and, while nothing finishes for ``every``
    seconds, a line saying the run is still busy."""

    def __init__(self, write=_stderr, every: float = 10.0, clock=time.monotonic):
        self.write, self.every, self.clock = write, every, clock
        self.start = clock()
        self.done = self.total = 0
        self._open = False  # a label was written without its end of line
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def estimate(self) -> str:
        elapsed = self.clock() - self.start
        if not self.done or not self.total:
            return f"{elapsed:.0f}s so far"
        left = elapsed / self.done * (self.total - self.done)
        return f"{elapsed:.0f}s so far, about {left:.0f}s left"

    def __call__(self, msg: str) -> None:
        with self._lock:
            m = _TASK_LINE.match(msg)
            if m:
                self.total = int(m.group(2))
            if msg.endswith("\n"):
                self.done += 1
                msg = msg[:-1] + f"  [{self.estimate()}]\n"
                self._open = False
            else:
                self._open = True
            self.write(msg)
            self._last = self.clock()

    def _beat(self) -> None:
        self._last = self.clock()
        while not self._stop.wait(self.every):
            with self._lock:
                if self.clock() - self._last >= self.every:
                    pre = "\n" if self._open else ""
                    self.write(f"{pre}  ... still computing ({self.done}/{self.total or '?'} checks done, "
                               f"{self.estimate()})\n")
                    self._open = False
                    self._last = self.clock()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def cmd_verify(args) -> int:
    levels = parse_levels(args.levels)
    want_statements = args.paper or args.statements is not None
    want_claims = args.claims is not None or not want_statements
    claim_ids = parse_claims(args.claims) if want_claims else []
    statements = parse_statements(args.statements) if (want_statements or args.claims is None) else []
    if not MIN_DPS <= args.dps <= MAX_DPS:  # in the command line's terms, not the library's (dps=None)
        raise UsageError(f"--dps must be an integer from {MIN_DPS} to {MAX_DPS} (digits of the H level), "
                         f"got {args.dps}")
    try:  # the library's own limits, and the output files, before the run (not after it)
        check_dps(args.dps)
        check_seed(args.seed, "--seed")
        for flag, path in (("--json", args.json), ("--markdown", args.markdown), ("--html", args.html)):
            if path:
                check_output_file(path, flag)
        figures = _figures_dir(args.figures)
    except ParameterError as exc:
        raise UsageError(str(exc).replace("dps must", "--dps must").replace(" (or None for float64)", "")) from None
    if not (isinstance(args.prec, int) and MIN_PREC <= args.prec <= MAX_PREC):
        raise UsageError(f"--prec must be an integer from {MIN_PREC} to {MAX_PREC} (bits the C level starts at), "
                         f"got {args.prec}")
    if args.statements is None and args.levels is not None:
        # a statement checked at other levels but at none of the chosen ones is not selected (it is not
        # 'unchecked'); one without any check stays, and reports that gap
        checks = registry.statement_checks()
        has = {n: set(pp.levels_of(pp.statement(n), checks)) for n in statements}
        statements = [n for n in statements if not has[n] or has[n] & set(levels)]
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be an integer >= 1, got {args.jobs}")
    client = connect(args.scheduler) if args.scheduler else None  # before any work: a usage error if unreachable
    executor = runner.on_dask(client) if client else runner.processes(args.jobs or runner.default_jobs())
    config = Config(seed=args.seed, dps=args.dps, full=args.full, prec=args.prec)
    command = "ntk-equiv verify " + " ".join(args.argv_rest)
    progress = None if args.quiet else Progress()
    try:
        rep = run_verify(claim_ids, levels, config, progress=progress,
                         command=command.strip(), statements=statements, controls=args.controls, executor=executor)
    finally:
        if progress is not None:
            progress.close()
        if client is not None:
            client.close()
    print(rp.render_text(rep, wide=args.wide))
    if args.json:
        Path(args.json).write_text(rp.dumps(rep), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(rp.render_markdown(rep), encoding="utf-8")
    if args.html:
        write_html(rp.to_json(rep), args.html, figures)
    return EXIT_OK if rep.passed else EXIT_FAIL


def _figures_dir(path: str | None) -> Path | None:
    """``--figures DIR`` (must exist), else the checkout's ``paper_checks/out`` when present."""
    if path is not None:
        if not Path(path).is_dir():
            raise ParameterError(f"--figures {path!r} is not a directory (run `ntk-equiv paper-checks --out {path}`)")
        return Path(path)
    root = repo_root()
    default = root / "paper_checks" / "out" if root else None
    return default if default is not None and default.is_dir() else None


def write_html(doc: dict, path: str, figures: Path | None) -> None:
    from . import html_report

    root = repo_root()
    rendered = root / "derivations" / "out" / "index.html" if root else None  # written by derivations/render.py
    link = rendered.resolve().as_uri() if rendered is not None and rendered.exists() else None
    text = html_report.render_html(doc, html_report.load_figures(figures), derivations=link)
    Path(path).write_text(text, encoding="utf-8")


def cmd_report(args) -> int:
    """The HTML report of a saved JSON report (schema v3)."""
    try:
        check_output_file(args.html, "--html")
        figures = _figures_dir(args.figures)
    except ParameterError as exc:
        raise UsageError(str(exc)) from None
    try:
        doc = json.loads(Path(args.report).read_text(encoding="utf-8"))
        rp.validate_report(doc)
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise UsageError(f"{args.report}: not a verify --json report ({exc})") from None
    write_html(doc, args.html, figures)
    _stderr(f"wrote {args.html}\n")
    return EXIT_OK if doc["passed"] else EXIT_FAIL


def connect(address: str):
    """The Dask client of ``--scheduler ADDRESS``; a usage error if Dask is
    missing or the scheduler cannot be reached."""
    try:
        return runner.dask_client(address)
    except ImportError:
        raise UsageError("--scheduler needs Dask distributed: pip install 'ntk-equiv[cluster]'") from None
    except OSError as exc:
        raise UsageError(f"--scheduler: {exc}") from None


def repo_root() -> Path | None:
    """The checkout this module runs from (``None`` when installed elsewhere)."""
    repo = Path(__file__).resolve().parents[1]
    return repo if (repo / "pyproject.toml").exists() else None


def cmd_docs(args) -> int:
    """Write ``docs/claims.md``, ``docs/paper.md`` and the claims table of
    ``README.md`` from the registries; ``--check``: exit 1 if any is out of
    date, write nothing."""
    root = repo_root() or Path.cwd()
    if args.out:
        try:
            check_output_file(args.out, "--out")
        except ParameterError as exc:
            raise UsageError(str(exc)) from None
    targets = {Path(args.out) if args.out else root / "docs" / "claims.md": rp.claims_markdown()}
    if not args.out:
        targets[root / "docs" / "paper.md"] = rp.paper_markdown()
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
    p = argparse.ArgumentParser(prog="ntk-equiv", allow_abbrev=False,
                                description="Verify the numbered statements of the paper "
                                "'On the Equivalence of Random Network Distillation, Deep Ensembles, and Bayesian "
                                "Inference' (arXiv 2602.19964) and the claims C1-C9 that generalise them.")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", allow_abbrev=False,
                       help="check the paper's statements and the claims, print the report")
    v.add_argument("--claims", help="comma-separated claim ids or prefixes, e.g. C6,C7 (default: all)")
    v.add_argument("--paper", action="store_true",
                   help="the paper's numbered statements (Prop 5.1 ... Cor 5.9) and their verdicts only")
    v.add_argument("--statements", help="comma-separated statements by thesis number (5.4), arXiv number (3.2) or "
                   "label ('Cor 3.2', 'Cor 5.4'), e.g. 5.1,5.4 (default with --paper: all)")
    v.add_argument("--levels", help=f"comma-separated levels among {','.join(LEVELS)} (default: all)")
    v.add_argument("--dps", type=int, default=Config.dps, help=f"digits for the H level, {MIN_DPS} to {MAX_DPS} (default %(default)s)")
    v.add_argument("--prec", type=int, default=Config.prec,
                   help=f"bits of ball arithmetic the C (certified) level starts at, {MIN_PREC} to {MAX_PREC}; it climbs "
                   "256 and 512 while a radius is too wide (default %(default)s)")
    v.add_argument("--seed", type=int, default=Config.seed, help="seed of every check, an integer >= 0 (default %(default)s)")
    v.add_argument("--full", action="store_true", help="paper-scale widths and sample sizes (slow)")
    v.add_argument("--controls", action="store_true",
                   help="also rerun every check under the negative controls it declares, and every statement with "
                        "its printed and corrected forms exchanged; a control the check survives fails the run")
    v.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes (default: the number of cores; 1: run in this process); "
                        "results are identical for every N")
    v.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the checks on an existing Dask distributed cluster, e.g. tcp://host:8786 "
                        "(needs the 'cluster' extra); an unreachable scheduler is a usage error")
    v.add_argument("--json", metavar="FILE", help="also write the report as JSON (docs/report_schema.md)")
    v.add_argument("--markdown", metavar="FILE", help="also write the report as markdown")
    v.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML page "
                   "(dependency graph, a panel per statement and claim)")
    v.add_argument("--figures", metavar="DIR", help="paper_checks figures to embed in the HTML report "
                   "(default: paper_checks/out of the checkout, when present)")
    v.add_argument("--wide", action="store_true", help="one-line table rows (default: lines of at most "
                   f"{rp.WIDTH} columns, details wrapped under their row)")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    v.set_defaults(func=cmd_verify)
    r = sub.add_parser("report", allow_abbrev=False, help="the HTML report of a saved `verify --json` file")
    r.add_argument("report", metavar="REPORT.json", help="a file written by `ntk-equiv verify --json`")
    r.add_argument("--html", metavar="FILE", required=True, help="the HTML page to write")
    r.add_argument("--figures", metavar="DIR", help="paper_checks figures to embed (default: paper_checks/out "
                   "of the checkout, when present)")
    r.set_defaults(func=cmd_report)
    d = sub.add_parser("docs", allow_abbrev=False,
                       help="regenerate docs/claims.md, docs/paper.md and the README claims table")
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
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # the subcommand's own usage, not the top-level one
            subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)
    args.argv_rest = argv[1:]
    try:
        return args.func(args)
    except UsageError as exc:
        sp = subparser(parser, args.command)
        _stderr(f"{sp.format_usage()}{sp.prog}: error: {exc}\n")
        return EXIT_USAGE


def subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` (for its own usage line)."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


if __name__ == "__main__":
    sys.exit(main())
