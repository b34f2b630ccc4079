"""The JSON report: schema validation, round trip, rendering."""
import copy
import json

import pytest

from ntk_equiv import report
from ntk_equiv.claims.registry import REGISTRY, Config, Result, load
from ntk_equiv.cli import main

load()


def _report(results):
    return report.Report(list(REGISTRY), ["S", "H", "E", "P"], Config(seed=3, dps=40), results)


def _res(cid, lv, passed, residual=1e-12, tol=1e-9, **kw):
    return Result(cid, lv, passed, residual, tol, "test reason", 0.25, **kw)


def test_json_round_trip_validates():
    rep = _report([_res("C1", "H", True), _res("C6a", "E", False, residual=float("inf"), details={"n": 3})])
    doc = json.loads(report.dumps(rep))
    report.validate_report(doc)
    assert doc["passed"] is False and doc["config"] == {"seed": 3, "dps": 40, "full": False, "prec": 128}
    assert doc["summary"]["failed"] == 1 and doc["summary"]["checks"] == 2
    bad = next(r for r in doc["results"] if r["claim"] == "C6a")
    assert bad["residual"] is None and bad["details"] == {"n": 3}  # inf -> null, JSON has no inf
    assert [c["id"] for c in doc["claims"]] == list(REGISTRY)


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("results"),
    lambda d: d.update(extra=1),
    lambda d: d.update(schema_version=1),
    lambda d: d["config"].update(seed="0"),
    lambda d: d["results"][0].update(passed=1),
    lambda d: d["results"][0].update(level="P"),
    lambda d: d["claims"][0].pop("latex"),
    lambda d: d["summary"].update(checks=True),
    lambda d: d.pop("controls"),
    lambda d: d["summary"].pop("controls_caught"),
    lambda d: d["controls"].append({"kind": "claim"}),
])
def test_validate_rejects_schema_violations(mutate):
    doc = report.to_json(_report([_res("C1", "H", True)]))
    report.validate_report(copy.deepcopy(doc))
    mutate(doc)
    with pytest.raises(ValueError):
        report.validate_report(doc)


def test_cli_json_reads_back(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(REGISTRY["C3"], "checks",
                        {"H": lambda c: report_measured(0.5), "E": lambda c: report_measured(2.0)})
    path = tmp_path / "out.json"
    assert main(["verify", "--claims", "C3", "--seed", "7", "--dps", "30", "-q", "--json", str(path)]) == 1
    doc = json.loads(path.read_text())
    report.validate_report(doc)
    assert doc["config"] == {"seed": 7, "dps": 30, "full": False, "prec": 128}
    assert {(r["level"], r["passed"]) for r in doc["results"]} == {("H", True), ("E", False)}
    assert doc["claims"][0]["status"] == "FAIL" and "--json" in doc["command"]


def report_measured(residual):
    from ntk_equiv.claims.registry import measured

    return measured(residual, 1.0, "unit tolerance")


def test_dependency_tree_lists_every_claim_once_and_flags_failures():
    rep = _report([_res("C6a", "H", False)])
    lines = report.dependency_text(rep).splitlines()
    ids = [line.lstrip("|+- ").split(" ")[0] for line in lines]
    assert sorted(ids) == sorted(REGISTRY)  # each claim exactly once
    assert "rests on FAILED C6a" in lines[ids.index("C6c")]
    assert "rests on FAILED" not in lines[ids.index("C1")]


def test_topological_order_respects_dependencies():
    order = report.topo_order()
    for cid in order:
        for dep in REGISTRY[cid].depends_on:
            assert order.index(dep) < order.index(cid)


def test_numpy_details_are_serialised():
    import numpy as np

    rep = _report([_res("C1", "H", True, details={"v": np.arange(3.0), "s": np.float64(2.5), "n": np.int64(4)})])
    doc = json.loads(report.dumps(rep))
    assert doc["results"][0]["details"] == {"v": [0.0, 1.0, 2.0], "s": 2.5, "n": 4}


def test_missing_property_module_is_flagged(monkeypatch):
    monkeypatch.setattr(REGISTRY["C1"], "property_tests", "tests/no_such_module.py")
    assert report.property_cell(REGISTRY["C1"]).endswith("(MISSING)")


def test_statistic_is_shown_beside_the_verdict():
    from ntk_equiv.claims.registry import measured

    res = measured(1.7e-6, 1.0, "Bonferroni", statistic="min p 0.1>=1.7e-07; cond(Theta_XX) 6.06", p=0.1)
    res.claim, res.level = "C6a", "E"
    rep = _report([res, _res("C1", "H", True)])
    table = report.text_table(rep)
    row = next(line for line in table.splitlines() if line.startswith("C6a"))
    # the p-value and its threshold, not the alpha/p ratio 1.7e-06<=1
    assert "pass min p 0.1>=1.7e-07; cond(Theta_XX) 6.06" in row and "1.7e-06<=1" not in row
    assert "1e-12<=1e-09" in next(line for line in table.splitlines() if line.startswith("C1"))
    doc = json.loads(report.dumps(rep))
    report.validate_report(doc)
    assert doc["results"][0]["details"]["statistic"].startswith("min p 0.1")
    assert "min p 0.1>=1.7e-07" in report.render_markdown(rep)
    doc["results"][0]["details"]["statistic"] = 0.1
    with pytest.raises(ValueError):
        report.validate_report(doc)


def test_failed_row_keeps_its_statistic(monkeypatch):
    from ntk_equiv.claims.registry import measured

    res = measured(3.0, 1.0, "Bonferroni", statistic="min p 5.7e-08>=1.7e-07")
    res.claim, res.level = "C6c", "E"
    rep = _report([res])
    assert "FAIL min p 5.7e-08>=1.7e-07" in report.text_table(rep)
    assert "min p 5.7e-08>=1.7e-07; residual 3 > tolerance 1" in report.failures_text(rep)


# ---- the narrow terminal layout (issue 18.2) ------------------------------- #
@pytest.fixture(scope="module")
def small_run():
    """A real cheap run: C3 and C6a at H, Prop 5.1 and Cor 5.4 at H (refuted as printed)."""
    from ntk_equiv.cli import run_verify

    return run_verify(["C3", "C6a"], ["H"], Config(), statements=["5.1", "5.4"])


def test_verify_text_fits_in_100_columns(small_run):
    from ntk_equiv.claims.registry import measured

    long = measured(0.5, 1.0, "why", statistic="min p 0.03>=8.3e-08; " + "; ".join(
        f"mlp[relu, {k} hidden]: worst limit ratio 0.86 [0.29, 1.42] (theory 1), cond(Theta_XX) 6.06" for k in range(6)))
    long.claim, long.level = "C6a", "E"
    rep = copy.copy(small_run)
    rep.results = small_run.results + [long]
    rep.claim_ids = list(REGISTRY)  # every claim's row, with its title
    text = report.render_text(rep)
    assert max(len(line) for line in text.splitlines()) <= report.WIDTH == 100
    assert "smallest p-value 0.03 >= threshold 8.3e-08" in text  # the statistic in words, with its threshold
    assert "worst extrapolated ratio 0.86, interval [0.29, 1.42] (theory 1)" in text
    wide = report.render_text(rep, wide=True)
    assert max(len(line) for line in wide.splitlines()) > 100  # --wide keeps one-line rows


def test_verify_cli_output_fits_in_100_columns(capsys):
    assert main(["verify", "--claims", "C3", "--statements", "5.1", "--levels", "H", "--jobs", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100, out


def test_banner_separates_the_run_from_the_findings(small_run):
    text = report.render_text(small_run)
    assert "The checks ran as designed: ALL PASSED" in text
    assert "What they found about the paper: 2 refuted as printed: 5.1 sign, 5.4 factor 2." in text
    assert "defect: sign:" in text and "printed refuted" in text and "corrected holds" in text


def test_statistics_in_words():
    w = report.in_words
    assert w("slope -0.44+-0.05 (theory -0.5)") == "log-log slope -0.44 ± 0.05 (n^-1/2 predicts -0.5)"
    assert w("rel diff 4.2 vs 1e-45") == "relative difference 4.2 (threshold 1e-45)"
    assert w("min p 1e-12<3.3e-07") == "smallest p-value 1e-12 < threshold 3.3e-07"
    assert w("Q/dof 5.44").startswith("chi-square per degree of freedom 5.44")
    assert w("something new 3") == "something new 3"  # unknown statistics are shown as written


# ---- both numberings (issue 18.3) ------------------------------------------ #
@pytest.mark.parametrize("text", ["3.2", "5.4", "Cor 3.2", "Cor 5.4", "cor 3.2", "Corollary 5.4"])
def test_statements_by_thesis_or_arxiv_number_or_label(text):
    from ntk_equiv.cli import parse_statements

    assert parse_statements(text) == ["5.4"]


def test_statements_mixed_and_unknown(capsys):
    from ntk_equiv.cli import UsageError, parse_statements

    assert parse_statements("Thm 3.1, 5.1,4.3") == ["5.1", "5.3", "5.9"]
    for bad in ("3.3", "Prop 5.4", "Thm 5.4"):  # no such number; a label of the wrong kind
        with pytest.raises(UsageError, match="Cor 5.4 \\(arXiv Cor 3.2\\)"):
            parse_statements(bad)


def test_verify_statements_3_2_selects_cor_5_4(capsys):
    assert main(["verify", "--statements", "3.2", "--levels", "H", "--jobs", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "Cor 5.4" in out and "Cor 3.2" in out and "Prop 5.1" not in out


# ---- the command line's messages and paths (issue 18.4) -------------------- #
def test_cli_errors_use_cli_terms_and_the_subcommand_usage(capsys):
    assert main(["verify", "--dps", "5"]) == 2
    err = capsys.readouterr().err
    assert "--dps must be an integer from 16 to 1000" in err and "None" not in err and "dps=" not in err
    assert err.startswith("usage: ntk-equiv verify")
    assert main(["verify", "--fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ntk-equiv verify") and "unrecognized arguments: --fast" in err
    assert main(["verify", "--claim", "C1"]) == 2  # no abbreviations
    assert "unrecognized arguments: --claim" in capsys.readouterr().err
    assert main(["report", "--htm", "x.html", "r.json"]) == 2
    assert capsys.readouterr().err.startswith("usage: ntk-equiv report")


def test_one_output_path_rule_for_every_command(tmp_path, capsys):
    from paper_checks.__main__ import main as paper_main

    missing = tmp_path / "no" / "such"
    for argv in (["verify", "--json", str(missing / "r.json")], ["verify", "--html", str(missing / "r.html")],
                 ["verify", "--markdown", str(missing / "r.md")], ["report", "r.json", "--html", str(missing / "r.html")],
                 ["docs", "--out", str(missing / "claims.md")]):
        assert main(argv) == 2, argv
        assert "does not exist" in capsys.readouterr().err, argv
    assert paper_main(["--quick", "--only", "c2", "--out", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "no").exists()  # nothing created
