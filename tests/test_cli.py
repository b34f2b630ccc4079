"""`ntk-equiv verify` / `docs`: exit codes, injected failures, docs drift.

Test-local checks are put into the registry with ``monkeypatch`` (restored
after each test), so these tests do not depend on which real checks exist.
"""
from pathlib import Path

import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import formulas, report
from ntk_equiv.claims.registry import REGISTRY, all_checks, load, measured
from ntk_equiv.cli import main
from ntk_equiv.precision import backend

REPO = Path(__file__).resolve().parents[1]
load()


def _c6a_check(factor: float):
    """C6a at t = infinity for a small ReLU MLP: Cov(r) = P (K + K) P^* (the
    general C6 form with K_g = K_u = K) against ``factor`` * Sigma_inf from
    ``ne.ensemble``. The true factor is 2; factor 1 is the wrong claim."""

    def check(config):
        rng = np.random.default_rng(config.seed)
        arch = ne.mlp(2, "relu", sigma_w=1.4, sigma_b=0.1)
        X, x = rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
        sigma = ne.ensemble(arch, X, np.zeros(4), x).cov
        k = arch.kernel(np.vstack([x, X]))
        K, T = k.nngp, k.ntk
        A = formulas.train_operator(T[3:, 3:], backend(None))
        rnd_cov = formulas.projected_cov(2 * K[:3, :3], 2 * K[:3, 3:], 2 * K[3:, 3:], T[:3, 3:], A)
        resid = np.max(np.abs(rnd_cov - factor * sigma)) / np.max(np.abs(sigma))
        # both sides are float64 evaluations of O(1) matrices through a solve with
        # condition number < 1e6: agreement to 1e-8 relative is round-off
        return measured(resid, 1e-8, "float64 round-off through a well-conditioned solve")

    return check


def _only(monkeypatch, claim_id, level, fn):
    """Make ``fn`` the single check of ``claim_id`` (its other checks removed for the test)."""
    monkeypatch.setattr(REGISTRY[claim_id], "checks", {level: fn})


def test_exit_0_when_selected_checks_pass(monkeypatch, capsys):
    _only(monkeypatch, "C6a", "H", _c6a_check(2.0))
    assert main(["verify", "--claims", "C6a", "-q"]) == 0
    out = capsys.readouterr().out
    assert "ALL PASSED: 1/1" in out and "C6a" in out


def test_injected_wrong_claim_exits_1_and_is_named(monkeypatch, capsys):
    _only(monkeypatch, "C6a", "H", _c6a_check(1.0))
    assert main(["verify", "--claims", "C6a"]) == 1
    captured = capsys.readouterr()
    assert "FAILED C6a [H]" in captured.out
    assert "C6a H ... FAIL" in captured.err  # progress goes to stderr


def test_raising_check_is_a_failed_row_not_a_crash(monkeypatch, capsys, tmp_path):
    def boom(config):
        raise ne.IllConditionedError("injected")

    _only(monkeypatch, "C9", "E", boom)
    out_json = tmp_path / "r.json"
    assert main(["verify", "--claims", "C9", "-q", "--json", str(out_json)]) == 1
    assert "IllConditionedError: injected" in capsys.readouterr().out
    import json

    doc = json.loads(out_json.read_text(encoding="utf-8"))
    report.validate_report(doc)
    (row,) = doc["results"]
    assert row["claim"] == "C9" and row["passed"] is False and "injected" in row["error"]


def test_nan_residual_fails(monkeypatch):
    _only(monkeypatch, "C2", "E", lambda config: measured(float("nan"), 1.0, "nan never passes"))
    assert main(["verify", "--claims", "C2", "-q"]) == 1


def test_claim_without_checks_is_unchecked_and_fails(monkeypatch, capsys):
    monkeypatch.setattr(REGISTRY["C4"], "checks", {})
    assert main(["verify", "--claims", "C4", "-q"]) == 1
    assert "UNCHECKED C4" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["verify", "--levels", "X"], ["verify", "--claims", "C99"], ["verify", "--claims", ""],
    ["verify", "--dps", "ten"], ["verify", "--dps", "5"], ["verify", "--bogus"], ["frobnicate"], [],
])
def test_bad_usage_exits_2(argv, capsys):
    assert main(argv) == 2


def test_claims_prefix_selection(monkeypatch, capsys):
    seen = []

    def rec(cid):
        def f(config):
            seen.append(cid)
            return measured(0.0, 1.0, "trivial")
        return f

    for cid in REGISTRY:
        monkeypatch.setattr(REGISTRY[cid], "checks", {"H": rec(cid)})
    assert main(["verify", "--claims", "C6,C8", "--levels", "H", "-q", "--jobs", "1"]) == 0  # one process: seen
    assert seen == ["C6", "C6a", "C6b", "C6c", "C8"]


def test_every_claim_of_theory_appears_in_the_table(monkeypatch, capsys):
    main(["verify", "--levels", "P", "-q"])  # P only: nothing runs, every claim is listed
    out = capsys.readouterr().out
    for cid in ["C1", "C2", "C3", "C4", "C5", "C6", "C6a", "C6b", "C6c", "C7", "C7a", "C7b", "C7c", "C8", "C9"]:
        assert f"\n{cid} " in out, cid
        assert cid in REGISTRY


def test_markdown_written(monkeypatch, tmp_path, capsys):
    _only(monkeypatch, "C6a", "H", _c6a_check(1.0))
    md = tmp_path / "r.md"
    assert main(["verify", "--claims", "C6", "--levels", "H", "-q", "--markdown", str(md)]) == 1
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# ntk-equiv verification report")
    assert "| C6a | H | - | **no** |" in text and "```mermaid" in text


def test_real_checks_small_selection_pass(capsys):
    """The registered checks of the fastest claim with an H check pass through the CLI."""
    have = [c for c, lv in all_checks(levels=["H"])]
    assert have, "no H check registered"
    cid = "C9" if "C9" in have else have[0]
    assert main(["verify", "--claims", cid, "--levels", "H", "-q"]) == 0, capsys.readouterr().out


def test_docs_claims_md_is_up_to_date():
    """docs/claims.md is generated from the registry; regenerate with `ntk-equiv docs`."""
    committed = (REPO / "docs" / "claims.md").read_text(encoding="utf-8")
    assert committed == report.claims_markdown(), "docs/claims.md is stale: run `ntk-equiv docs`"


def test_docs_check_mode(tmp_path):  # --out writes only that file (never the README)
    out = tmp_path / "claims.md"
    assert main(["docs", "--out", str(out), "--check"]) == 1  # missing file is stale
    assert main(["docs", "--out", str(out)]) == 0
    assert main(["docs", "--out", str(out), "--check"]) == 0
    for cid in REGISTRY:
        assert f"## {cid}\n" in out.read_text(encoding="utf-8")


def test_readme_starts_with_the_two_commands_and_has_current_claims_table():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(
        "```\npython -m pip install -e . && ntk-equiv verify\n"
        "python -m pip install -e \".[test]\" && python -m pytest\n```\n")
    assert readme == report.readme_with_table(readme), "README claims table is stale: run `ntk-equiv docs`"
    for cid in REGISTRY:
        assert f"| [{cid}](docs/claims.md#{cid.lower()}) |" in readme


def test_readme_api_tour_runs():
    import re

    code = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)[0]
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - our own README
    # C7 on the tour's own objects: the Bayesian-RND law equals the NTK-GP posterior;
    # both are float64 Cholesky solves of the same well-conditioned 8 x 8 Theta_XX, so
    # they agree to round-off amplified by its condition number (< 1e6): 1e-8 of the scale
    scale = float(np.max(np.abs(env["k"].ntk)))
    np.testing.assert_allclose(env["cov"], env["post"].cov, rtol=0, atol=1e-8 * scale)
    assert env["rnd"].error(env["x_test"]).shape == (5,)
    assert env["brnd"].sample(env["x_test"]).shape == (5, 16)


def test_check_returning_a_non_result_is_a_failed_row(monkeypatch, capsys):
    _only(monkeypatch, "C5", "H", lambda config: None)
    assert main(["verify", "--claims", "C5", "-q"]) == 1
    assert "not a Result" in capsys.readouterr().out
