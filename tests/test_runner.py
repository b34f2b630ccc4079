"""The runner in parallel: worker processes and a Dask cluster give the same
report as one process, bit for bit (timings and the creation time aside); a
worker that dies fails its row and the run goes on; an unreachable scheduler
is a usage error before any work."""
import json
import os

import pytest

from ntk_equiv import cli, report
from ntk_equiv.claims import runner
from ntk_equiv.claims.registry import REGISTRY, Config, load, measured
from ntk_equiv.cli import main

load()

# real checks, fast ones: two claims and two statements at H (one refuted as printed)
SELECTION = ["verify", "--claims", "C7b,C9", "--statements", "5.1,5.2", "--levels", "H", "-q"]


def _untimed(doc):
    """The report without what legitimately differs between runs: times, the
    creation time and the command line."""
    if isinstance(doc, dict):
        return {k: _untimed(v) for k, v in doc.items() if k not in ("seconds", "created", "command")}
    if isinstance(doc, list):
        return [_untimed(v) for v in doc]
    return doc


def _doc(argv, tmp_path, name):
    path = tmp_path / f"{name}.json"
    rc = main(argv + ["--json", str(path)])
    doc = json.loads(path.read_text())
    report.validate_report(doc)
    return rc, doc


def test_worker_processes_give_the_report_of_one_process(tmp_path):
    rc1, one = _doc(SELECTION + ["--jobs", "1"], tmp_path, "one")
    rc2, two = _doc(SELECTION + ["--jobs", "2"], tmp_path, "two")
    assert rc1 == rc2 == 0
    assert _untimed(one) == _untimed(two)
    assert len(one["results"]) == 2 and [s["number"] for s in one["statements"]] == ["5.1", "5.2"]


def test_a_worker_that_dies_fails_its_row_and_the_run_goes_on(monkeypatch, tmp_path):
    def dies(config):
        os._exit(3)  # the worker process ends without a word

    for cid in REGISTRY:
        monkeypatch.setattr(REGISTRY[cid], "checks", {})
    monkeypatch.setitem(REGISTRY["C3"].checks, "H", dies)
    for cid in ("C1", "C2", "C4"):
        monkeypatch.setitem(REGISTRY[cid].checks, "H", lambda config: measured(0.0, 1.0, "trivial"))
    rc, doc = _doc(["verify", "--claims", "C1,C2,C3,C4", "--levels", "H", "-q", "--jobs", "2"], tmp_path, "died")
    rows = {r["claim"]: r for r in doc["results"]}
    assert rc == 1 and list(rows) == ["C1", "C2", "C3", "C4"]
    assert not rows["C3"]["passed"] and rows["C3"]["error"].startswith("WorkerDied")
    assert "exit code 3" in rows["C3"]["error"]
    assert all(rows[c]["passed"] for c in ("C1", "C2", "C4"))


def test_processes_executor_keeps_the_task_order():
    tasks = [runner.Task("claim", "C9", "H"), runner.Task("statement", "5.1", "H"), runner.Task("claim", "C7", "H")]
    out = runner.processes(2)(tasks, Config())
    assert list(out) == tasks
    assert out[tasks[1]].results["printed"].passed is False  # Prop 5.1 is refuted as printed
    assert out[tasks[1]].results["corrected"].passed is True


@pytest.mark.parametrize("jobs", [0, -2])
def test_jobs_below_one_is_a_usage_error(jobs, capsys):
    assert main(["verify", "--claims", "C9", "--levels", "H", "--jobs", str(jobs)]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_an_unreachable_scheduler_is_a_usage_error_before_any_work(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(cli, "run_verify", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(runner, "dask_client", _refuse)
    assert main(["verify", "--claims", "C9", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert not ran and "--scheduler" in capsys.readouterr().err


def _refuse(address, timeout=10.0):
    raise OSError(f"cannot reach the Dask scheduler at {address!r}")


def test_without_dask_the_scheduler_option_says_how_to_get_it(monkeypatch, capsys):
    def missing(address, timeout=10.0):
        raise ImportError("No module named 'distributed'")

    monkeypatch.setattr(runner, "dask_client", missing)
    assert main(["verify", "--claims", "C9", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "ntk-equiv[cluster]" in capsys.readouterr().err


@pytest.mark.slow  # starts a two-process Dask cluster (~7 s)
def test_dask_cluster_gives_the_report_of_one_process(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        rc_d, on_dask = _doc(SELECTION + ["--scheduler", lc.scheduler_address], tmp_path, "dask")
    rc_1, one = _doc(SELECTION + ["--jobs", "1"], tmp_path, "one")
    assert rc_d == rc_1 == 0
    assert _untimed(on_dask) == _untimed(one)


@pytest.mark.slow  # waits for a real connection timeout
def test_a_real_unreachable_scheduler_exits_2(capsys):
    pytest.importorskip("distributed")
    assert main(["verify", "--claims", "C9", "--scheduler", "tcp://127.0.0.1:9", "-q"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_budgets_order_the_pool_and_an_overrun_is_reported(monkeypatch):
    from ntk_equiv.claims.registry import check

    quick = check("C9", "H", budget=(1, 10))(lambda config: measured(0.0, 1.0, "toy"))
    slow = check("C7", "H", budget=(30, 600))(lambda config: measured(0.0, 1.0, "toy"))
    monkeypatch.setitem(REGISTRY["C9"].checks, "H", quick)
    monkeypatch.setitem(REGISTRY["C7"].checks, "H", slow)
    monkeypatch.setitem(REGISTRY["C7a"].checks, "H", lambda config: measured(0.0, 1.0, "no budget"))
    tasks = [runner.Task("claim", c, "H") for c in ("C9", "C7a", "C7")]
    assert runner.longest_first(tasks, Config()) == [2, 0, 1]  # 30 s, then 1 s and the unstated (1 s) in order
    assert runner.cost(tasks[2], Config(full=True)) == 600.0
    over = runner.TaskResult(tasks[0], {"claim": measured(0.0, 1.0, "toy")}, cpu=2.5)
    assert "OVER its budget of 1s" in runner._times(over, Config())
    assert "OVER" not in runner._times(over, Config(full=True))
