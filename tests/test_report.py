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
    assert doc["passed"] is False and doc["config"] == {"seed": 3, "dps": 40, "full": False}
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
    assert doc["config"] == {"seed": 7, "dps": 30, "full": False}
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
