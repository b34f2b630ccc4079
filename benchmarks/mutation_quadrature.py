"""Mutation run of the kink rules of ``ntk_equiv/quadrature.py`` and ``ntk_equiv/hermite.py``
(issue 16, "Done when": the default ``pytest`` fails when any sign or constant of a kink rule changes).

*Sites.* Every top-level definition of the two files is classified in :data:`RULES`
(kink rules: the Cartesian kinked rule with its breakpoints and their clipping bound,
the polar rules and their fallback sizes, the Price route for piecewise-linear forms,
the split Hermite route, and the node tables they are built on) or in :data:`NOT_RULES`
(the smooth Mehler route, plain helpers); an unclassified name stops the run, so a new
rule cannot go unmutated. In the rules, *every* numeric constant and every ``+``/``-``
token (binary or unary) is a mutation site, and all of them are run (a full enumeration:
``--seed`` only shuffles the order, ``--limit`` cuts it for a quick look, and the total is
printed): a constant ``c`` becomes ``2c`` and ``c / 2`` (integers ``c // 2``; ``0``
becomes ``1``), a sign flips. Docstrings, comments and strings are not tokens of these
kinds, so error messages are not mutated.

*Run.* The default (not slow) test files of :data:`TRACED_TESTS` run once on the
unmutated code (they must pass) under :class:`Tracer`, which records per test the rules it
calls (cached with ``--trace FILE`` while no source changes). Each mutant then runs, with
``pytest -x``, the traced tests that reach its rule (:func:`selection`: the rule itself, a
rule naming the constant, or a test naming it), fastest first: a subset of the default
``pytest``, so a mutant killed here is killed by it. numpy, sympy, mpmath, the package and
the test modules are imported once; each mutant runs in a forked child that executes the
mutated source into its module (every caller reaches the rules through the module object)
and runs pytest there, so a mutant costs its tests, not the imports. A mutant is *killed*
when its tests fail or exceed ``--timeout`` (default 3x their traced time + 15 s: a hang
fails the gate's time budget too), *equivalent* when it lives and is in
:data:`EQUIVALENT_RULES` (each entry with its checkable reason), and *LIVES* otherwise (also
when no default test reaches it). An allow-listed mutant that is killed is reported as a
stale entry. The exit status is 1 while any mutant LIVES.

Run: ``python benchmarks/mutation_quadrature.py [--trace /tmp/trace.json] [--group price] [--jobs 1]``
(``--list`` prints the sites without running, ``--seed S --limit N`` a quick look at N of
them; the full run takes ~2.5 min of tracing, then about 1 s per killed mutant and a few
seconds per surviving one, on one core).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ["CI"] = "true"  # hypothesis derandomized (tests/conftest.py)

import argparse
import ast
import io
import random
import shutil
import signal
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUAD, HERM = "ntk_equiv/quadrature.py", "ntk_equiv/hermite.py"

#: file -> {top-level name: group}: the kink rules whose mutants the default tests must kill.
RULES: dict[str, dict[str, str]] = {
    QUAD: {
        # the Cartesian kinked rule (float64 and mpmath), its breakpoints and their clipping bound
        **dict.fromkeys(("F64_HALF_WIDTH", "F64_SEGMENTS", "F64_NODES", "_SMOOTHED_KINK_OFFSETS", "breakpoints",
                         "_gl_rule", "_piecewise_nodes", "gaussian_expectation_f64", "_whiten",
                         "_expectation_block", "gaussian_expectation_mp"), "cartesian"),
        # the polar rules, float64 and mpmath, their levels, tolerances and fallback sizes
        **dict.fromkeys(("POLAR_F64_LEVELS", "POLAR_F64_TOL", "POLAR_F64_CHUNK", "POLAR_F64_BLOCK_NODES",
                         "_f64_radial_rule", "_polar_rule_f64", "_polar_rule_blocked", "polar_expectations_f64",
                         "_golub_welsch", "_chebyshev_recurrence", "_radial_rule", "_legendre_rule",
                         "_piecewise_radial_rule", "_polar", "gaussian_expectation_polar_mp"), "polar"),
        # Gauss-Legendre by Newton: the split route's panels (and the Price route's mp rules)
        "legendre_rule_newton": "split",
        # the Price route for piecewise-linear forms
        **dict.fromkeys(("PRICE_SWITCH", "PRICE_F64_DELTA_FLOOR", "PRICE_F64_NODES", "PRICE_CHUNK",
                         "PRICE_F64_TOL", "PiecewiseLinear", "_relational_points", "piecewise_linear_form",
                         "_normal_pdf", "_normal_sf", "_gl_panels", "angle_integrals", "_tau_part", "_univariate",
                         "piecewise_linear_duals", "PRICE_MP_NODES_PER_DIGIT", "PRICE_MP_MIN_NODES",
                         "_price_rules_f64", "_price_rules_mp", "price_expectations", "_diagonal_scales"), "price"),
        # the float64 2-D rule along the kink lines (i16-fast's bb16be0: the pairs the split route leaves)
        **dict.fromkeys(("ALIGNED_HALF_WIDTH", "ALIGNED_SEGMENTS", "ALIGNED_NODES", "ALIGNED_TOL", "ALIGNED_CHUNK",
                         "ALIGNED_REFINE", "_aligned_rule", "_panel_nodes", "aligned_expectations_f64"), "cartesian"),
    },
    HERM: {
        # the split Hermite route (kinked functions at high precision) and the pieces it shares
        **dict.fromkeys(("SPLIT_PANEL_WIDTH", "SPLIT_EXTRA_NODES", "SPLIT_CHECKED_TERMS", "SPLIT_TERM_LEVELS",
                         "split_panel_nodes", "_panel_table", "split_edges", "split_rule", "_split_coefficients",
                         "split_expectations_mp", "_certified_terms", "_terms_per_variance", "hermite_rows",
                         "half_width", "pair_sum", "_unique", "evaluate", "check_square_integrable",
                         "FIXED_GUARD_BITS"), "split"),
        # the float64 split route (bb16be0)
        **dict.fromkeys(("SPLIT_F64_TERM_LEVELS", "SPLIT_F64_TOL", "SPLIT_F64_COEF_TOL", "SPLIT_F64_DIGITS",
                         "SPLIT_F64_PANEL_WIDTH", "_split_f64_width", "SPLIT_F64_BLOCK", "SPLIT_F64_ROUNDING",
                         "split_coefficients_f64", "split_expectations_f64", "_f64_grid",
                         "_f64_grid_table", "_hermite_sums", "_pair_sum_terms"), "split"),
    },
}
#: file -> names that are not kink rules (the smooth Mehler route, helpers without constants
#: of a rule); listed so that every top-level name is classified.
NOT_RULES: dict[str, set[str]] = {
    QUAD: {"RawRule", "_prec_context", "_dps_context", "_raw", "_in_context"},
    HERM: {"COARSEST_STEP", "F64_LEVELS", "MP_LEVELS", "F64_TAIL_TOL", "F64_RESOLVE_TOL", "F64_RANGE_DIGITS",
           "level_terms", "level_steps", "level_step", "Ops", "nodes", "f64_table", "_parity_dot", "UNSETTLED",
           "_not_finite", "coefficients", "expansions", "_undecayed", "self_expectations", "expectations_f64",
           "_dot_f64", "context", "fixed_table", "_fixed_dot", "expectations_mp"},
}
#: The default (not slow) test files traced on the unmutated code: each mutant runs the
#: tests among them that reach its rule (:func:`selection`), a subset of the default
#: ``pytest``, so a mutant killed here is killed by it.
TRACED_TESTS = ("tests/test_kink_rule_mutants.py", "tests/test_kink_references.py", "tests/test_kinks_fast.py",
                "tests/test_quadrature_kinks.py", "tests/test_quadrature_rules.py", "tests/test_composites.py",
                "tests/test_activations.py")
GROUPS = ("cartesian", "polar", "price", "split")

#: The sources as read at the start (a mutant is this text with one token changed).
SOURCES: dict[str, str] = {}

#: Survivors shown equivalent, each with its reason (checkable from the code or by the named
#: test): ``(file, a substring naming the line, old token, new token or None for every
#: variant, occurrence in the line or None for all) -> reason``. "Contract" reasons say that the
#: mutant is a different rule still within the stated accuracy, shown by the named test (which
#: fails for the larger changes listed beside it).
_MORE = "more nodes / segments / range than needed: a refinement of the same rule; {}"
_BLOCK = "block or chunk size only: entries are computed independently, the size only groups them"
EQUIVALENT_RULES: list[tuple[str, str, str, str | None, int | None, str]] = [
    # --- the Cartesian rule (float64)
    (QUAD, "F64_SEGMENTS = 16", "16", "(2 * 16)", None,
     _MORE.format("test_cartesian_rule_resolves_narrow_features bounds the error (1e-12)")),
    (QUAD, "F64_NODES = 24", "24", "(2 * 24)", None,
     _MORE.format("test_cartesian_rule_resolves_narrow_features bounds the error (1e-12)")),
    (QUAD, "grid = np.linspace(-half_width, half_width, F64_SEGMENTS + 1)", "+", None, None,
     ("contract: 14 instead of 16 uniform segments; test_cartesian_rule_resolves_narrow_features (std 3, "
     "|rho| 0.99) still meets 1e-12 (it fails at 8 segments: 3e-11)")),
    (QUAD, "grid = np.linspace(-half_width, half_width, F64_SEGMENTS + 1)", "1", None, None,
     ("contract: 15 or 17 instead of 16 uniform segments; test_cartesian_rule_resolves_narrow_features still "
     "meets 1e-12 (it fails at 8 segments)")),
    (QUAD, "_SMOOTHED_KINK_OFFSETS = (0.5, 1.5, 4.0, 10.0)", "", None, None,
     ("contract: extra breakpoints at other offsets around the smoothed kink z1 = kappa / c (any breakpoints "
     "leave a valid piecewise rule; these only refine panels near |rho| = 1): "
     "test_cartesian_rule_with_shifted_kinks_matches_reference (rho = 1 - 1e-6) still meets 1e-12")),
    (QUAD, "for sign in (-1.0, 1.0):", "1.0", None, None,
     ("contract: the extra breakpoints around the smoothed kink on one side only or at other offsets (see "
     "_SMOOTHED_KINK_OFFSETS): test_cartesian_rule_with_shifted_kinks_matches_reference still meets 1e-12")),
    (QUAD, "b = np.where(scale != 0, num / np.where(scale != 0, scale, 1.0), np.inf)", "0", "1", 1,
     ("masked value: the inner where only guards the division; where it differs (scale == 0 or 1) the outer "
     "where returns inf, or it replaces scale = 1 by 1")),
    (QUAD, "b = np.where(scale != 0, num / np.where(scale != 0, scale, 1.0), np.inf)", "1.0", None, None,
     "masked value: the dummy divisor where scale == 0; the outer where returns inf there"),
    (QUAD, "nodes = mid[..., None] + half[..., None] * t", "+", "-", None,
     ("symmetric node order: Gauss-Legendre nodes and weights are symmetric (t_i = -t_(n-1-i), w_i = w_(n-1-i)),"
     " so mid - half t is the same panel rule in reverse order (the sum differs by rounding only)")),
    (QUAD, "nodes = nodes.reshape(*shape, -1)", "1", "(2 * 1)", None,
     "numpy reads any negative size in reshape as the inferred one: reshape(m, -2) == reshape(m, -1)"),
    (QUAD, "weights = weights.reshape(*shape, -1) * np.exp", "1", "(2 * 1)", None,
     "numpy reads any negative size in reshape as the inferred one: reshape(m, -2) == reshape(m, -1)"),
    (QUAD, "chunk: int = 64", "64", None, None, _BLOCK),
    (QUAD, "return np.sum(w1 * f(a[:, None] * z1) * psi, axis=-1)", "-", "+", None,
     "axis alias: w1 * f * psi is 2-D (entries, nodes), so axis=+1 is axis=-1"),
    # --- the float64 polar rule
    (QUAD, "POLAR_F64_CHUNK = 256", "256", None, None, _BLOCK),
    (QUAD, "POLAR_F64_BLOCK_NODES = 1 << 20", "", None, None, _BLOCK + " (1 << 20 -> 0 << 20 gives step max(1, 0) = 1)"),
    (QUAD, "step = max(1, POLAR_F64_BLOCK_NODES // (4 * n_t * n_r))", "", None, None,
     _BLOCK + " (step >= 1 whatever the constants)"),
    (QUAD, "lengths = np.stack([phi, phi_c], axis=-1)[..., None]", "-", "+", None,
     "axis alias: phi, phi_c are 1-D, so stacking on axis +1 is axis -1"),
    (QUAD, "return [np.zeros(shape) for _ in h(np.zeros(0))], np.zeros(shape, dtype=bool)", "0", "1", 0,
     "h(np.zeros(0)) is called only to count h's outputs; h(np.zeros(1)) has as many"),
    (QUAD, "p_prev, p, norm_prev = np.zeros_like(x), np.ones_like(x), 1.0", "1.0", None, None,
     "never read: norm_prev is divided by only for k >= 1, after it is set to the k = 0 norm"),
    (QUAD, "beta[k] = norm if k == 0 else norm / norm_prev", "0", "1", None,
     ("k == 1 instead of k == 0: beta_0 = norm / 1.0 (norm_prev starts at 1.0) and beta_1 = norm_1 instead of "
     "norm_1 / norm_0 with norm_0 = int_0^inf r e^(-r^2/2) dr = 1: the same up to rounding")),
    (QUAD, "nodes, vec = np.linalg.eigh(np.diag(alpha) + np.diag(off, 1) + np.diag(off, -1))", "+", "-", 0,
     "eigh reads the lower triangle only (UPLO='L'): the sign of the upper off-diagonal is never read"),
    (QUAD, "nodes, vec = np.linalg.eigh(np.diag(alpha) + np.diag(off, 1) + np.diag(off, -1))", "+", "-", 1,
     ("negated off-diagonal of a symmetric tridiagonal matrix: D J D with D = diag(+-1), the same eigenvalues "
     "and the same squared first components of the eigenvectors (the weights)")),
    (QUAD, "x = (mid[:, None] + half[:, None] * t).ravel()", "+", "-", 0,
     "symmetric node order: the Gauss-Legendre nodes of each panel reversed (see the Cartesian rule)"),
    (QUAD, "t, w = _gl_rule(40)", "40", "(2 * 40)", None,
     _MORE.format("the Stieltjes discretisation of the radial weight; test_radial_gauss_rules_integrate_moments_"
                  "exactly checks the resulting rule")),
    (QUAD, "edges = np.linspace(0.0, 12.0, 61)", "12.0", "(2 * 12.0)", None,
     _MORE.format("the radial weight's mass beyond 12 is e^-72; beyond 24 nothing changes")),
    (QUAD, "edges = np.linspace(0.0, 12.0, 61)", "61", "(2 * 61)", None,
     _MORE.format("finer panels of the Stieltjes discretisation; the moments test checks the rule")),
    (QUAD, "POLAR_F64_LEVELS = ((4, 12), (6, 14),", "4", "2", None,
     ("the first level only seeds the comparison: a value is accepted only as the larger of two consecutive "
     "rules that agree (polar_expectations_f64 stores the current level's value); a smaller first rule only "
     "disagrees more often (test_polar_f64_compares_consecutive_levels_from_the_first checks the order)")),
    (QUAD, "POLAR_F64_LEVELS = ((4, 12), (6, 14),", "12", "6", 0,
     ("the first level only seeds the comparison (see the entry above): a value is accepted only as the larger "
     "of two consecutive agreeing rules")),
    (QUAD, "t, w = _gl_rule(40)", "40", "20", None,
     ("contract: 20 instead of 40 Gauss-Legendre nodes per panel of the Stieltjes discretisation (60 panels of "
     "width 0.2: exact for the polynomials x weight up to the rules' degree to rounding); "
     "test_radial_gauss_rules_integrate_moments_exactly still meets 1e-12")),
    # --- the Price route
    (QUAD, "PRICE_F64_NODES = ((12, 10), (16, 12))", "", "x2", None,
     _MORE.format("the two-rule agreement (PRICE_F64_TOL, test_two_rules_must_agree_within_the_stated_tolerance) "
                  "and the independent references still bound the error")),
    (QUAD, "PRICE_CHUNK = 1024", "1024", None, None, _BLOCK),
    (QUAD, "PRICE_F64_DELTA_FLOOR = 1e-16", "1e-16", None, None,
     ("contract: replacing exp(-delta^2 / 2 tau^2) by 1 below the floor changes an angle integral by at most "
     "sqrt(pi / 2) floor sqrt(2) (the comment above it): 4e-16 at 2e-16, far below the 1e-13 acceptance; "
     "the independent references at |rho| within 1e-12 of 1 still pass")),
    (QUAD, "PRICE_MP_NODES_PER_DIGIT = 0.9", "0.9", "x2", None,
     _MORE.format("the mp two-rule agreement still bounds the error")),
    (QUAD, "PRICE_MP_MIN_NODES = 24", "24", "x2", None, _MORE.format("the mp two-rule agreement still bounds the error")),
    (QUAD, "kinks = sorted(points, key=lambda p: sympy.N(p, 40))", "40", None, None,
     ("the sort key of exact real kinks: 20 or 80 digits order them the same unless two kinks agree to 20 "
     "digits (then the form's kink list is still exact; only their order could differ)")),
    (QUAD, "probes += [(a + (b - a) / 3, a + 2 * (b - a) / 3)", "3", "(2 * 3)", 0,
     ("probe points a + (b - a) / 6 and a + 2 (b - a) / 3: still two distinct interior points, the same line "
     "for a linear branch (non-linear branches are refused by the degree check before)")),
    # --- the float64 2-D rule along the kink lines (bb16be0)
    (QUAD, "ALIGNED_CHUNK = 16", "16", None, None, _BLOCK),
    (QUAD, "ALIGNED_HALF_WIDTH = 10.0", "10.0", "x2", None,
     _MORE.format("a wider range; the rule's two-rule agreement (ALIGNED_TOL) still bounds the error")),
    (QUAD, "ALIGNED_SEGMENTS = 6", "6", "x2", None,
     _MORE.format("the rule's two-rule agreement (ALIGNED_TOL) still bounds the error")),
    (QUAD, "ALIGNED_NODES = (16, 20)", "", "x2", None,
     _MORE.format("the rule's two-rule agreement (ALIGNED_TOL) still bounds the error")),
    # --- the high-precision node tables
    (QUAD, "z = ctx.matrix(1, n)", "1", "(2 * 1)", None,
     "only row 0 of z (the first components of the eigenvectors) is read"),
    (QUAD, "alpha, beta = [0] * n, [0] * n", "0", "1", None,
     "initial values never read: alpha[k], beta[k] are assigned for every k before use"),
    (QUAD, "new = [ctx.mpf(0)] * (2 * n)", "", None, None,
     ("initial values never read: step k reads new[l] only for l in [k, 2n - k), all assigned; a longer list "
     "(4n) has unused tail entries")),
    (QUAD, "prev = [ctx.mpf(0)] * (2 * n)", "2", "(2 * 2)", None, "a longer list: the tail entries are never read"),
    (QUAD, "hi = _dps_context(3 * dps + 2 * n)", "3", "(2 * 3)", None,
     "more working precision for the ill-conditioned moment map: the rule is rounded to the caller's precision"),
    (QUAD, "hi = _dps_context(3 * dps + 2 * n)", "2", "(2 * 2)", None,
     "more working precision for the ill-conditioned moment map: the rule is rounded to the caller's precision"),
    (QUAD, "hi = _dps_context(dps + 20)", "20", "(2 * 20)", None,
     "more working precision: the rule is rounded to the caller's precision"),
    (QUAD, "hi = _prec_context(prec + 20)", "20", "(2 * 20)", None,
     "more working precision: the rule is rounded to the caller's precision"),
    (QUAD, "for _ in range(8):", "8", "(2 * 8)", None,
     "more float64 Newton steps at the converged roots (quadratic convergence: a fixed point)"),
    (QUAD, "for _ in range(max(3, math.ceil(math.log2((prec + 20) / 40)) + 1)):", "3", "(2 * 3)", None,
     "more Newton steps at the converged roots (quadratic convergence: a fixed point)"),
    (QUAD, "for _ in range(max(3, math.ceil(math.log2((prec + 20) / 40)) + 1)):", "1", "(2 * 1)", None,
     "more Newton steps at the converged roots (quadratic convergence: a fixed point)"),
    (QUAD, "for _ in range(max(3, math.ceil(math.log2((prec + 20) / 40)) + 1)):", "20", "(2 * 20)", None,
     "more Newton steps at the converged roots (quadratic convergence: a fixed point)"),
    (QUAD, "for _ in range(max(3, math.ceil(math.log2((prec + 20) / 40)) + 1)):", "40", "20", None,
     "more Newton steps at the converged roots (quadratic convergence: a fixed point)"),
    (QUAD, "for _ in range(8):", "8", "4", None,
     ("enough float64 Newton steps: from guesses within ~1e-3 of the roots the error squares each step, so 4 "
     "reach float64 rounding; the mp steps polish from there (test_newton_legendre_rule_is_exact_to_its_precision)")),
    (QUAD, "hi = _prec_context(prec + 20)", "20", "10", None,
     ("10 guard bits instead of 20 above the rounding to prec bits: test_newton_legendre_rule_is_exact_to_its_"
     "precision still meets 2^-(prec - 11) (it fails with prec - 20 working bits)")),
    (QUAD, "for _ in range(max(3, math.ceil(math.log2((prec + 20) / 40)) + 1)):", "", None, None,
     ("enough mp Newton steps: each doubles the correct bits from float64's 53, and any of these counts is >= "
     "log2((prec + 20) / 53) (checked by test_newton_legendre_rule_is_exact_to_its_precision at 2^-(prec - 11))")),
    (QUAD, "if n % 2:", "2", "1", None,
     "the middle node of an odd rule is set to 0 exactly, or left at Newton's value, 0 to 2^-(prec + 20)"),
    (QUAD, "x = np.cos(np.pi * (np.arange(1, half + 1) - 0.25) / (n + 0.5))", "0.25", None, None,
     ("Newton's starting guesses: 8 float64 steps from any of these guesses (each within half a node spacing "
     "of its root) converge to the same roots, which the mp steps then polish")),
    (QUAD, "x = np.cos(np.pi * (np.arange(1, half + 1) - 0.25) / (n + 0.5))", "0.5", None, None,
     ("Newton's starting guesses: 8 float64 steps from any of these guesses (each within half a node spacing "
     "of its root) converge to the same roots, which the mp steps then polish")),
    (QUAD, "big_r = int(ctx.ceil(ctx.sqrt(2 * (dps + 5) * ctx.log(10)))) + 1", "", "x2", None,
     _MORE.format("a longer radial range of the piecewise rule (the Gaussian mass beyond is smaller still)")),
]


def equivalent_reason(site: Site) -> str | None:
    """The reason of the first :data:`EQUIVALENT_RULES` entry matching ``site`` (``old`` ""
    matches every token, ``new`` "x2" every doubling), or ``None``."""
    for path, text, old, new, nth, reason in EQUIVALENT_RULES:
        if path != site.path or text not in site.text or (old and old != site.old):
            continue
        if new is not None and new != site.new and not (new == "x2" and site.new.startswith("(2 * ")):
            continue
        if nth is None or nth == site.nth:
            return reason
    return None

@dataclass(frozen=True)
class Site:
    path: str
    rule: str
    group: str
    line: int
    col: int
    old: str
    new: str
    text: str  # the stripped source line
    nth: int  # occurrence of ``old`` at this column among the line's tokens equal to ``old``

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        return (self.path, self.text, self.nth, self.old, self.new)


def classify(path: str, source: str, quiet: bool = False, decorators: bool = False) -> dict[int, str]:
    """Line -> rule name for the lines of the definitions in :data:`RULES` (with their
    decorators' lines if ``decorators``: a decorated function's code starts there); raises
    ``SystemExit`` naming any top-level definition in neither list."""
    lines: dict[int, str] = {}
    unknown = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
        else:
            continue  # imports, the docstring
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) if decorators \
            else node.lineno
        for name in names:
            if name in RULES[path]:
                lines.update(dict.fromkeys(range(first, node.end_lineno + 1), name))
            elif name not in NOT_RULES[path]:
                unknown.append(name)
    missing = set(RULES[path]) - {n for n in lines.values()}
    if unknown:
        raise SystemExit(f"{path}: unclassified top-level names {sorted(unknown)}: add each to RULES or NOT_RULES")
    if missing and not quiet:
        print(f"note: {path}: rules no longer defined: {sorted(missing)}", flush=True)
    return lines


def _variants(tok: str) -> list[str]:
    if tok.startswith(("0x", "0o", "0b")) or tok.endswith(("j", "J")):
        return []
    value = float(tok.replace("_", ""))
    if value == 0:
        return ["1"]
    half = str(int(value) // 2) if tok.isdigit() else f"({tok} / 2)"
    return [f"(2 * {tok})", half]


def sites(path: str, source: str) -> list[Site]:
    """Every mutation site of the kink rules of one file, in source order."""
    owner = classify(path, source)
    rows = source.splitlines()
    out: list[Site] = []
    seen: dict[tuple[int, str], int] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        line, col = tok.start
        if line not in owner:
            continue
        if tok.type == tokenize.NUMBER:
            news = _variants(tok.string)
        elif tok.type == tokenize.OP and tok.string in ("+", "-"):
            news = ["-" if tok.string == "+" else "+"]
        else:
            continue
        nth = seen.get((line, tok.string), 0)
        seen[(line, tok.string)] = nth + 1
        rule = owner[line]
        for new in news:
            out.append(Site(path, rule, RULES[path][rule], line, col, tok.string, new, rows[line - 1].strip(), nth))
    return out


def mutate(source: str, site: Site) -> str:
    rows = source.splitlines(keepends=True)
    row = rows[site.line - 1]
    assert row[site.col:site.col + len(site.old)] == site.old
    rows[site.line - 1] = row[:site.col] + site.new + row[site.col + len(site.old):]
    return "".join(rows)


class Tracer:
    """pytest plugin for the unmutated run: per test, the kink rules it calls (a Python call
    whose code starts inside a rule's lines, or a call of an ``lru_cache`` wrapper of one, so
    that a test served from a cache still counts) and its duration."""

    def __init__(self, owners: dict[str, dict[int, str]], path_of: dict[str, str]):
        self.owners = owners  # resolved file name -> {line: rule}
        self.path_of = path_of  # resolved file name -> its path in RULES
        self.current: str | None = None
        self.calls: dict[str, set[str]] = {}
        self.durations: dict[str, float] = {}

    def _record(self, code) -> None:
        owner = self.owners.get(code.co_filename)
        if owner is not None and self.current is not None:
            rule = owner.get(code.co_firstlineno)
            if rule is not None:
                self.calls.setdefault(self.current, set()).add(f"{self.path_of[code.co_filename]}::{rule}")

    def profile(self, frame, event, arg):
        if event == "call":
            self._record(frame.f_code)
        elif event == "c_call":
            code = getattr(getattr(arg, "__wrapped__", None), "__code__", None)
            if code is not None:
                self._record(code)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        import threading

        self.current = item.nodeid
        t0 = time.perf_counter()
        sys.setprofile(self.profile)
        threading.setprofile(self.profile)
        try:
            yield
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
            self.durations[item.nodeid] = time.perf_counter() - t0
            self.current = None


def _child(site: Site | None, tests: list[str], trace_to: Path | None) -> int:
    """In the forked child: ``site``'s mutant executed into its (already imported) module,
    then pytest on ``tests`` (``-x`` unless tracing; the trace goes to ``trace_to``)."""
    import importlib
    import json

    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    if site is not None:
        module = importlib.import_module(site.path[:-3].replace("/", "."))
        # every caller reaches the rules through the module object (``quadrature.f``; hermite's
        # imports from quadrature are inside functions), so redefining its names is enough;
        # the caches (lru_cache) are redefined empty with them
        # (exec of this checkout's own source with one token changed: no user input)
        exec(compile(mutate(SOURCES[site.path], site), str(ROOT / site.path), "exec"),  # noqa: S102
             module.__dict__)
    if trace_to is None:
        return int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests]))
    names = {str((ROOT / p).resolve()): p for p in RULES}
    tracer = Tracer({n: classify(p, SOURCES[p], quiet=True, decorators=True) for n, p in names.items()}, names)
    code = int(pytest.main(["-q", "-p", "no:cacheprovider", *tests], plugins=[tracer]))
    trace_to.write_text(json.dumps({"calls": {k: sorted(v) for k, v in tracer.calls.items()},
                                    "durations": tracer.durations}))
    return code


def start(site: Site | None, tests: list[str], trace_to: Path | None = None) -> int:
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = _child(site, tests, trace_to)
        finally:
            os._exit(code)
    return pid


def wait(pid: int, deadline: float) -> str:
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "lives" if os.waitstatus_to_exitcode(status) == 0 else "killed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "killed (timeout)"
        time.sleep(0.02)


def preload(tests: list[str]) -> None:
    """Import the package and the test modules once, before the forks (pytest's default
    ``prepend`` import mode finds them in ``sys.modules``): a child then spends its time
    in the tests, not in imports and collection."""
    import importlib

    os.chdir(ROOT)
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
    for p in RULES:
        module = importlib.import_module(p[:-3].replace("/", "."))
        assert Path(module.__file__).resolve() == (ROOT / p).resolve(), module.__file__
    for t in tests:
        importlib.import_module(Path(t).stem)


def constant_users(path: str, source: str) -> dict[str, set[str]]:
    """Module-level rule constant -> the rules of the same file whose code names it."""
    tree = ast.parse(source)
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or node.name not in RULES[path]:
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in RULES[path]:
                out.setdefault(sub.id, set()).add(node.name)
    return out


def test_mentions(files) -> dict[str, set[str]]:
    """Name -> ``file::test_function`` of the tests whose source mentions it (a test that
    reads a rule constant directly, e.g. the polar levels, need not call the rule)."""
    out: dict[str, set[str]] = {}
    for f in files:
        tree = ast.parse((ROOT / f).read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                for sub in ast.walk(node):
                    name = sub.attr if isinstance(sub, ast.Attribute) else getattr(sub, "id", None)
                    if name:
                        out.setdefault(name, set()).add(f"{f}::{node.name}")
    return out


def selection(site: Site, trace: dict, users: dict, mentions: dict) -> list[str]:
    """The traced default tests that reach ``site``'s rule (directly, through a rule that
    names the constant, or by naming it in the test), fastest first."""
    rules = {site.rule} | users[site.path].get(site.rule, set())
    keys = {f"{site.path}::{r}" for r in rules}
    chosen = {t for t, called in trace["calls"].items() if keys & set(called)}
    funcs = mentions.get(site.rule, set())
    chosen |= {t for t in trace["durations"] if t.split("[")[0] in funcs}
    return sorted(chosen, key=lambda t: (trace["durations"].get(t, 0.0), t))


def load_trace(tests: list[str], cache: Path | None) -> dict:
    """The unmutated run (which must pass) with :class:`Tracer`, or its cached result when
    neither the package, the kink rules' files nor the tests changed."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for f in sorted([*(ROOT / "ntk_equiv").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        digest.update(f.read_bytes())
    key = digest.hexdigest()
    if cache is not None and cache.exists():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            print(f"  unmutated run: cached in {cache}", flush=True)
            return data
    out = Path(tempfile.mkdtemp()) / "trace.json"
    t0 = time.monotonic()
    status = wait(start(None, tests, out), t0 + 3600)
    print(f"  unmutated run, traced: {status} ({time.monotonic() - t0:.1f} s; {' '.join(tests)})", flush=True)
    if status != "lives":
        raise SystemExit("the traced tests fail on the unmutated code: fix that first")
    data = {**json.loads(out.read_text()), "key": key}
    shutil.rmtree(out.parent)
    if cache is not None:
        cache.write_text(json.dumps(data))
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="shuffle the order (all sites still run)")
    parser.add_argument("--limit", type=int, default=None, help="run only the first N sites (a quick look)")
    parser.add_argument("--group", choices=GROUPS, action="append", help="only these groups")
    parser.add_argument("--line", type=int, action="append", help="only sites on these lines")
    parser.add_argument("--file", choices=[QUAD, HERM], help="only this file")
    parser.add_argument("--rule", action="append", help="only the sites of these top-level names")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per mutant (default: 3x its tests + 15)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--trace", type=Path, default=None, help="cache of the traced unmutated run (JSON)")
    parser.add_argument("--tests", nargs="+", default=list(TRACED_TESTS), help="the default test files traced")
    parser.add_argument("--list", action="store_true", help="print the sites, run nothing")
    args = parser.parse_args()
    sources = {p: (ROOT / p).read_text() for p in RULES}
    SOURCES.update(sources)
    every = [s for p, src in sources.items() for s in sites(p, src)]
    chosen = [s for s in every if (not args.group or s.group in args.group) and (not args.line or s.line in args.line)
              and (not args.file or s.path == args.file) and (not args.rule or s.rule in args.rule)]
    if args.seed is not None:
        random.Random(args.seed).shuffle(chosen)
    if args.limit is not None:
        chosen = chosen[:args.limit]
    counts = {g: sum(s.group == g for s in every) for g in GROUPS}
    print(f"{len(every)} mutation sites in the kink rules ({', '.join(f'{g} {n}' for g, n in counts.items())}); "
          f"running {len(chosen)}" + (f" in the order of seed {args.seed}" if args.seed is not None else ""),
          flush=True)
    if args.list:
        for s in chosen:
            print(f"  {s.path}:{s.line}:{s.col} [{s.group}/{s.rule}] {s.old!r} -> {s.new!r}   {s.text[:90]}")
        return
    traced = [t for t in args.tests if (ROOT / t).exists()]
    preload(traced)
    users = {p: constant_users(p, src) for p, src in sources.items()}
    mentions = test_mentions(traced)
    results: dict[str, list[Site]] = {"killed": [], "equivalent": [], "LIVES": [], "stale": []}
    t_start = time.monotonic()
    trace = load_trace(traced, args.trace)
    queue = list(chosen)
    running: dict[int, tuple[Site, float, float, int]] = {}  # pid -> (site, start, deadline, n tests)

    def report(site: Site, verdict: str, secs: float, n_tests: int) -> None:
        reason = equivalent_reason(site)
        if verdict.startswith("killed"):
            results["stale" if reason else "killed"].append(site)
            label = verdict + (" STALE" if reason else "")
        else:
            label = "equivalent" if reason else "LIVES" + ("" if n_tests else " (no test)")
            results["equivalent" if reason else "LIVES"].append(site)
        print(f"  {site.path.split('/')[-1]}:{site.line:<4d} {site.old!r:>8} -> {site.new!r:14} "
              f"{label:17} {secs:5.1f} s {n_tests:3d} tests  [{site.rule}] {site.text[:60]}", flush=True)
        if reason and not verdict.startswith("killed"):
            print(f"        equivalent: {reason}", flush=True)

    while queue or running:
        while queue and len(running) < max(1, args.jobs):
            site = queue.pop(0)
            tests = selection(site, trace, users, mentions)
            if not tests:
                report(site, "lives", 0.0, 0)
                continue
            timeout = args.timeout or 3 * sum(trace["durations"][t] for t in tests) + 15
            t0 = time.monotonic()
            running[start(site, tests)] = (site, t0, t0 + timeout, len(tests))
        for pid, (site, t0, deadline, n_tests) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() <= deadline:
                continue
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                verdict = "killed (timeout)"
            else:
                verdict = "lives" if os.waitstatus_to_exitcode(status) == 0 else "killed"
            del running[pid]
            report(site, verdict, time.monotonic() - t0, n_tests)
        time.sleep(0.02)
    n_killed = len(results["killed"]) + len(results["stale"])
    print(f"killed {n_killed} of {len(chosen)} mutants; {len(results['equivalent'])} live, allow-listed as "
          f"equivalent; {len(results['LIVES'])} live, not allow-listed; {len(results['stale'])} allow-list "
          f"entries killed (stale); {time.monotonic() - t_start:.0f} s")
    for s in results["LIVES"]:
        print(f"  LIVES {s.path}:{s.line} {s.old!r} -> {s.new!r} [{s.rule}] {s.text}")
    if results["LIVES"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
