"""Seeded mutation run of the kink rules of ``ntk_equiv/quadrature.py`` (issue 16.6).

Every numeric constant and every ``+``/``-`` sign inside the kink rules (the
Cartesian kinked rule, the polar rules and their fallbacks, the Price route for
piecewise-linear activations) is a mutation site: a constant ``c`` becomes
``2c`` or ``c / 2`` (integers: ``c // 2``; ``1`` for ``0``), a sign flips. ``--count`` sites are drawn with
``random.Random(--seed)``; each mutant is written into a copy of the package and
the default (not slow) tests that exercise these rules are run on it with
``pytest -x``. A mutant is *killed* when they fail (or time out), *lives* when
they pass; the survivors are listed for inspection (a survivor may be an
equivalent mutant: e.g. a wider truncation of the real line changes nothing).

Run: ``python benchmarks/mutation_quadrature.py [--seed 0] [--count 20] [--tests ...]``
(minutes: each survivor costs one full run of the selected tests).
"""
from __future__ import annotations

import argparse
import ast
import io
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path("ntk_equiv/quadrature.py")
#: The kink rules: functions and constants whose mutants the default tests must kill.
RULES = (
    "F64_HALF_WIDTH", "_SMOOTHED_KINK_OFFSETS", "breakpoints", "_piecewise_nodes", "_expectation_block",
    "POLAR_F64_LEVELS", "POLAR_F64_TOL", "_polar_rule_f64", "polar_expectations_f64",
    "gaussian_expectation_polar_mp", "_polar",
    "PRICE_SWITCH", "PRICE_F64_DELTA_FLOOR", "PRICE_F64_NODES", "PRICE_F64_TOL", "PRICE_MP_NODES_PER_DIGIT",
    "PRICE_MP_MIN_NODES", "angle_integrals", "_tau_part", "_univariate", "piecewise_linear_duals",
    "price_expectations", "_diagonal_scales", "_normal_pdf", "_normal_sf",
)
DEFAULT_TESTS = ("tests/test_quadrature_kinks.py", "tests/test_quadrature_rules.py", "tests/test_activations.py")


def rule_lines(source: str) -> set[int]:
    """Line numbers of the definitions named in :data:`RULES`."""
    lines: set[int] = set()
    for node in ast.parse(source).body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [
            t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
        if any(n in RULES for n in names):
            lines |= set(range(node.lineno, node.end_lineno + 1))
    return lines


def sites(source: str) -> list[tuple[int, int, str, str]]:
    """``(line, col, old token, new token)`` for every mutation site in the kink rules
    (docstrings and comments are not tokens of these kinds)."""
    keep = rule_lines(source)
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.start[0] not in keep:
            continue
        if tok.type == tokenize.NUMBER:
            value = float(tok.string.replace("_", "")) if not tok.string.startswith("0x") else 1.0
            if value == 0:
                out.append((tok.start[0], tok.start[1], tok.string, "1"))
            else:
                out.append((tok.start[0], tok.start[1], tok.string, f"(2 * {tok.string})"))
                half = str(int(value) // 2) if tok.string.isdigit() else f"({tok.string} / 2)"
                out.append((tok.start[0], tok.start[1], tok.string, half))
        elif tok.type == tokenize.OP and tok.string in ("+", "-"):
            out.append((tok.start[0], tok.start[1], tok.string, "-" if tok.string == "+" else "+"))
    return out


def mutate(source: str, site) -> str:
    line, col, old, new = site
    rows = source.splitlines(keepends=True)
    row = rows[line - 1]
    assert row[col:col + len(old)] == old
    rows[line - 1] = row[:col] + new + row[col + len(old):]
    return "".join(rows)


def run(tree: Path, tests, timeout: float) -> tuple[str, float]:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=timeout,
                              env={"PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1", "CI": "true",
                                   "PATH": "/usr/bin:/bin", "HOME": str(tree)})
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.perf_counter() - start
    status = "lives" if proc.returncode == 0 else "killed"
    return status, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--tests", nargs="*", default=list(DEFAULT_TESTS))
    args = parser.parse_args()
    source = (ROOT / TARGET).read_text()
    candidates = sites(source)
    chosen = sorted(random.Random(args.seed).sample(candidates, min(args.count, len(candidates))))
    print(f"{len(candidates)} mutation sites in the kink rules; {len(chosen)} drawn with seed {args.seed}; "
          f"tests: {' '.join(args.tests)}", flush=True)
    killed = 0
    survivors = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT / "ntk_equiv", tree / "ntk_equiv")
        shutil.copytree(ROOT / "tests", tree / "tests")
        shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
        status, secs = run(tree, [t for t in args.tests if (ROOT / t).exists()], args.timeout)
        print(f"  unmutated: {status} ({secs:.1f} s)", flush=True)
        if status != "lives":
            raise SystemExit("the selected tests fail on the unmutated code: fix that first")
        for site in chosen:
            (tree / TARGET).write_text(mutate(source, site))
            status, secs = run(tree, [t for t in args.tests if (ROOT / t).exists()], args.timeout)
            line, _, old, new = site
            text = source.splitlines()[line - 1].strip()
            print(f"  line {line:4d}: {old!r} -> {new!r:10} {status:16} {secs:6.1f} s   {text[:80]}", flush=True)
            if status.startswith("killed"):
                killed += 1
            else:
                survivors.append(site)
    print(f"killed {killed} of {len(chosen)} mutants (seed {args.seed})")


if __name__ == "__main__":
    main()
