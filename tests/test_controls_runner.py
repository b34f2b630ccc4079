"""`ntk-equiv verify --controls` with toy checks: a control the check survives,
a hooked control whose hook is never consulted, a statement whose verdict does
not change when its forms are exchanged: each is a failing row; a control that
makes its check fail is a passing one. Power from ``details["power"]`` is shown."""
import functools
import json
import sys
import types

import numpy as np
import pytest

import ntk_equiv as ne
from ntk_equiv import report
from ntk_equiv.claims import controls, runner
from ntk_equiv.claims import paper as pp
from ntk_equiv.claims import registry
from ntk_equiv.claims.registry import REGISTRY, Config, load, measured
from ntk_equiv.cli import main

load()
X = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
Y = np.array([[1.0], [-1.0], [0.5]])


def _only(monkeypatch, claim_id, level, fn):
    monkeypatch.setattr(REGISTRY[claim_id], "checks", {level: fn})


@controls.declares("untrained", "cov0.7", "cov1.3")
def _trained_fit(config):
    """A trained wide network interpolates its data: residual 0 after training,
    O(1) untrained; the expected law (here the data's scale) goes through the hook."""
    net = ne.mlp(1, "erf").init(64, seed=config.seed).train(X, Y, lr=0.5, steps=400)
    scale = controls.law_covariance(1.0)
    resid = float(np.max(np.abs(net.apply(X) - Y))) + abs(scale - 1.0)
    return measured(resid, 0.1, "toy", power={"cov0.7": 0.999, "cov1.3": 0.97}, power_method="analytic: toy")


@controls.declares("untrained")
def _survives(config):
    return measured(0.0, 1.0, "touches no network: nothing the control breaks")


@controls.declares("cov0.7")
def _unhooked(config):
    return measured(0.0, 1.0, "compares with a law it never passes through controls.law_covariance")


def _run(argv, tmp_path):
    path = tmp_path / "r.json"
    rc = main(argv + ["-q", "--controls", "--json", str(path)])
    doc = json.loads(path.read_text())
    report.validate_report(doc)
    return rc, doc


def test_controls_that_make_the_check_fail_pass_and_power_is_shown(monkeypatch, tmp_path, capsys):
    _only(monkeypatch, "C6a", "E", _trained_fit)
    rc, doc = _run(["verify", "--claims", "C6a"], tmp_path)
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = {c["control"]: c for c in doc["controls"]}
    assert set(rows) == {"untrained", "cov0.7", "cov1.3"}
    assert all(c["outcome"] == "caught" and c["baseline"] == "pass" and c["under_control"] == "fail"
               for c in rows.values())
    assert rows["cov0.7"]["power"] == 0.999 and rows["untrained"]["power"] is None
    assert doc["summary"]["controls"] == 3 and doc["summary"]["failed_controls"] == []
    assert "Negative controls" in out and "cov1.3 0.97" in out and "3/3 negative controls" in out


def test_a_control_the_check_survives_is_a_failing_row(monkeypatch, tmp_path, capsys):
    _only(monkeypatch, "C9", "E", _survives)
    rc, doc = _run(["verify", "--claims", "C9"], tmp_path)
    out = capsys.readouterr().out
    assert rc == 1 and doc["passed"] is False and doc["results"][0]["passed"] is True
    (row,) = doc["controls"]
    assert row["outcome"] == "SURVIVED" and row["reached"] and not row["caught"]
    assert doc["summary"]["failed_controls"] == ["C9 E untrained"]
    assert "FAILED control untrained of C9 [E]: SURVIVED" in out


def test_a_hooked_control_never_consulted_is_a_failing_row(monkeypatch, tmp_path, capsys):
    _only(monkeypatch, "C9", "E", _unhooked)
    rc, doc = _run(["verify", "--claims", "C9"], tmp_path)
    (row,) = doc["controls"]
    assert rc == 1 and row["outcome"] == "NOT REACHED" and row["passed"] is False
    assert "never consults the law_covariance hook" in capsys.readouterr().out


def test_without_controls_nothing_is_rerun(monkeypatch, tmp_path):
    _only(monkeypatch, "C9", "E", _survives)
    path = tmp_path / "r.json"
    assert main(["verify", "--claims", "C9", "-q", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    assert doc["controls"] == [] and doc["controls_requested"] is False


def test_a_check_without_declared_controls_gets_no_row(monkeypatch, tmp_path):
    _only(monkeypatch, "C9", "E", lambda config: measured(0.0, 1.0, "undeclared"))
    rc, doc = _run(["verify", "--claims", "C9"], tmp_path)
    assert rc == 0 and doc["controls"] == []


def test_a_memoised_experiment_is_recomputed_under_a_control(monkeypatch, tmp_path):
    """Checks memoise experiments on the Config: the control must not be served
    the result computed without it (nor leave its own for a later run)."""
    mod = types.ModuleType("ntk_equiv.claims._toy_cache")
    calls = []

    @functools.lru_cache(maxsize=4)
    def experiment(seed):
        calls.append(controls.active())
        return float(np.max(np.abs(ne.mlp(1, "erf").init(64, seed=seed).train(X, Y, lr=0.5, steps=400).apply(X) - Y)))

    mod.experiment = experiment
    monkeypatch.setitem(sys.modules, mod.__name__, mod)

    @controls.declares("untrained")
    def check(config):
        return measured(mod.experiment(config.seed), 0.1, "toy")

    _only(monkeypatch, "C9", "E", check)
    rc, doc = _run(["verify", "--claims", "C9", "--jobs", "1"], tmp_path)  # one process: one cache
    assert rc == 0 and doc["controls"][0]["outcome"] == "caught"
    assert calls == [None, "untrained"]
    assert check(Config()).passed  # the cache holds no controlled result afterwards


# ---- statements: their forms exchanged ------------------------------------ #
def _statement_checks(monkeypatch, table):
    monkeypatch.setattr(registry, "statement_checks", lambda: dict(table))


def _sign_check(config, form):
    # Prop 5.1's printed choice is a sign: the corrected one is +1
    return measured(abs(pp.form_params("5.1", form)["sign"] - 1), 0.5, "toy: the sign that interpolates")


def _name_check(config, form):
    # decides by the form's name, not its content: exchanging the forms cannot move it
    return measured(0.0 if form == "corrected" else 1.0, 0.5, "toy: reads the name only")


def test_exchanging_the_forms_changes_a_content_check_verdict(monkeypatch, tmp_path, capsys):
    _statement_checks(monkeypatch, {("5.1", "H"): _sign_check})
    rc, doc = _run(["verify", "--statements", "5.1", "--levels", "H"], tmp_path)
    assert rc == 0, capsys.readouterr().out
    (st,) = doc["statements"]
    assert st["verdict"] == ["refuted as printed", "holds as corrected"]
    (row,) = doc["controls"]
    assert row["control"] == "exchanged" and row["under_control"] == "holds" and row["outcome"] == "caught"


def test_a_check_that_reads_only_the_form_name_is_not_reached(monkeypatch, tmp_path, capsys):
    _statement_checks(monkeypatch, {("5.1", "H"): _name_check})
    rc, doc = _run(["verify", "--statements", "5.1", "--levels", "H"], tmp_path)
    (row,) = doc["controls"]
    assert rc == 1 and row["outcome"] == "NOT REACHED" and not row["caught"]
    assert "H never read their form" in row["note"]


def test_a_statement_without_a_form_to_exchange_is_a_failing_row(monkeypatch, tmp_path):
    _statement_checks(monkeypatch, {("5.2", "H"): lambda config, form: measured(0.0, 1.0, "toy")})
    monkeypatch.setattr(controls, "exchange_partner", lambda s: None)
    rc, doc = _run(["verify", "--statements", "5.2", "--levels", "H"], tmp_path)
    (row,) = doc["controls"]
    assert rc == 1 and row["outcome"] == "NOT REACHED" and "no corrected or alternative form" in row["note"]


def test_a_declared_control_of_a_statement_must_change_its_verdict(monkeypatch, tmp_path):
    @controls.declares("factor")
    def factor_check(config, form):
        f = controls.factor(pp.form_params("5.4", form)["factor"])
        return measured(abs(f - 2), 0.5, "toy: the factor is 2")

    @controls.declares("untrained")
    def inert(config, form):
        return measured(abs(pp.form_params("5.4", form)["factor"] - 2), 0.5, "toy: nothing trained")

    _statement_checks(monkeypatch, {("5.4", "E"): factor_check, ("5.4", "H"): inert})
    rc, doc = _run(["verify", "--statements", "5.4", "--levels", "H,E"], tmp_path)
    rows = {(",".join(c["levels"]), c["control"]): c for c in doc["controls"]}
    assert rows["E", "factor"]["outcome"] == "caught" and rows["E", "factor"]["under_control"] == "holds"
    assert rows["H", "untrained"]["outcome"] == "SURVIVED"
    assert rows["H,E", "exchanged"]["outcome"] == "caught"
    assert rc == 1 and doc["summary"]["failed_controls"] == ["5.4 H untrained"]


def test_reused_claim_checks_run_once(monkeypatch):
    seen = []

    def c6c(config):
        seen.append(controls.active())
        return measured(0.0, 1.0, "toy")

    _only(monkeypatch, "C6c", "E", c6c)
    _statement_checks(monkeypatch, {})
    # Thm 5.6's E level has its own check now: give it back a reuse link for this test
    from dataclasses import replace

    monkeypatch.setattr(pp, "STATEMENTS", tuple(replace(s, reuses={"E": ("C6c", "E")}) if s.number == "5.6" else s
                                                 for s in pp.STATEMENTS))
    done = runner.run(["C6c"], ["E"], Config(), statements=["5.6"], controls=True)
    assert seen == [None]
    (o,) = done.statements
    assert o.levels[0].printed is done.results[0]


@pytest.mark.parametrize("name", sorted(controls.CONTROLS))
def test_every_control_has_a_description_and_applies(name):
    with controls.applied(name) as run:
        assert controls.active() == name
    assert isinstance(run.reached, bool) and controls.active() is None
