"""The runner of ``ntk-equiv verify``: claim checks, statement verdicts and
negative controls, as independent tasks.

A :class:`Task` is one check at one level, optionally under one negative
control (:mod:`.controls`); :func:`execute` runs it and returns a
:class:`TaskResult`, a pure function of the task and the :class:`Config`
(checks are seeded), so tasks may run in any order. :func:`run` plans the
tasks of a selection, executes them, and assembles

* the claim results, in registry order;
* the statement verdicts, by :func:`.verdict.verify_statement` itself, served
  the results the tasks computed (a reused claim check is the claim's task,
  computed once);
* with ``controls=True``, one :class:`ControlOutcome` per (check, declared
  control) and per (statement, ``exchanged``).

Executors: :func:`sequential` (this process), :func:`processes` (forked
worker processes, ``verify --jobs N``) and :func:`on_dask` (a Dask
distributed cluster, ``verify --scheduler ADDRESS``). The same tasks give the
same results on each, bit for bit; a task whose worker dies is a failed row.

A control **catches** its check when the check fails under it (a claim) or the
statement's verdict changes (a statement: the verdict at the controlled level
alone, or over all its levels for ``exchanged``). A control that is survived,
or a hooked control whose hook the check never consulted, is a failing row.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from . import controls as ctl
from . import paper as pp
from . import registry
from .registry import REGISTRY, Config, Result, all_checks, budget, load
from .verdict import StatementOutcome, run_claim_check, run_statement_check, verify_statement

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    """One check: ``kind`` ``"claim"`` (``key`` a claim id) or ``"statement"``
    (``key`` a statement number), at ``level``, under ``control`` (``None``: none)."""

    kind: str
    key: str
    level: str
    control: str | None = None

    @property
    def label(self) -> str:
        name = self.key if self.kind == "claim" else pp.statement(self.key).label
        return f"{name} {self.level}" + (f" under {self.control}" if self.control else "")


@dataclass
class TaskResult:
    """The results of a task: a claim's one result, or a statement level's
    ``{form: result}`` (the corrected form only when the printed one failed
    cleanly), and the control hooks consulted while it ran."""

    task: Task
    results: dict[str, Result]
    consulted: frozenset[str] = frozenset()
    cpu: float = 0.0  # CPU seconds of the process that ran it (a load-independent measure of its cost)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results.values())

    def summary(self) -> str:
        if self.task.kind == "claim":
            return "ok" if self.results["claim"].passed else "FAIL"
        return ", ".join(f"{form} {'pass' if r.passed else ('raised' if r.error else 'fails')}"
                         for form, r in self.results.items())


@dataclass
class ControlOutcome:
    """One negative control of one check (a row of ``verify --controls``).

    ``baseline`` / ``controlled``: the check's outcome without and with the
    control (``pass``/``fail``/``raised`` for a claim check, the reached verdict
    for a statement); ``caught``: the control made the check fail (changed the
    verdict); ``reached``: the check consulted the hook the control acts
    through; ``power``: the check's stated power against the alternative of
    the control's name (``details["power"]``), when it states one."""

    kind: str
    key: str
    label: str
    levels: tuple[str, ...]
    control: str
    baseline: str
    controlled: str
    caught: bool
    reached: bool
    power: float | None = None
    note: str = ""
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.caught and self.reached

    @property
    def outcome(self) -> str:
        """``caught`` / ``SURVIVED`` / ``NOT REACHED``, as the report prints it."""
        if not self.reached:
            return "NOT REACHED"
        return "caught" if self.caught else "SURVIVED"


@dataclass
class Run:
    """What :func:`run` returns: claim results, statement outcomes, control rows."""

    results: list[Result] = field(default_factory=list)
    statements: list[StatementOutcome] = field(default_factory=list)
    controls: list[ControlOutcome] = field(default_factory=list)


# --------------------------------------------------------------------------- #
# one task
# --------------------------------------------------------------------------- #
def _clear_check_caches() -> None:
    # checks memoise their experiments on the Config alone: a result computed
    # under a control must never serve a run without it (nor the reverse)
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith(("ntk_equiv.claims", "ntk_equiv.experiments")):
            continue
        for value in list(vars(mod).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and hasattr(value, "__wrapped__"):
                clear()


def _statement_results(task: Task, config: Config) -> dict[str, Result]:
    s = pp.statement(task.key)
    fn = registry.statement_checks()[(task.key, task.level)]
    out = {"printed": run_statement_check(s, task.level, fn, "printed", config)}
    printed = out["printed"]
    # the corrected form decides only when the printed one fails cleanly (at every
    # level: verify_statement decides whether this one is used)
    if s.corrected is not None and not printed.passed and printed.error is None:
        out["corrected"] = run_statement_check(s, task.level, fn, "corrected", config)
    return out


def _results(task: Task, config: Config) -> dict[str, Result]:
    if task.kind == "claim":
        return {"claim": run_claim_check(task.key, task.level, config)}
    return _statement_results(task, config)


def execute(task: Task, config: Config) -> TaskResult:
    """Run ``task`` (a raising check is a failed result, never a crash)."""
    load()  # a fresh worker (Dask) has not discovered the checks yet
    cpu = time.process_time()
    if task.control is None:
        results = _results(task, config)
        return TaskResult(task, results, cpu=time.process_time() - cpu)
    _clear_check_caches()
    try:
        with ctl.applied(task.control) as cr:
            results = _results(task, config)
        return TaskResult(task, results, frozenset(cr.consulted), cpu=time.process_time() - cpu)
    finally:
        _clear_check_caches()


Executor = Callable[[Sequence[Task], Config, Progress | None], dict[Task, TaskResult]]


def _report_progress(progress: Progress | None, k: int, n: int, tr: TaskResult, config: Config) -> None:
    if progress:
        progress(f"[{k}/{n}] {tr.task.label} ... {tr.summary()} ({_times(tr, config)})\n")


def check_of(task: Task):
    """The check function a task runs."""
    if task.kind == "claim":
        return REGISTRY[task.key].checks.get(task.level)
    return registry.statement_checks().get((task.key, task.level))


def cost(task: Task, config: Config) -> float:
    """The seconds the task's check states it needs at ``config``'s scale
    (its ``@check`` budget; 1 s when it states none)."""
    stated = budget(check_of(task), config.full, (task.key, task.level))
    return 1.0 if stated is None else stated


def _times(tr: TaskResult, config: Config | None = None) -> str:
    text = f"{tr.seconds:.1f}s, cpu {tr.cpu:.1f}s"
    stated = None if config is None else budget(check_of(tr.task), config.full, (tr.task.key, tr.task.level))
    if stated is not None and tr.cpu > stated:
        text += f"; OVER its budget of {stated:g}s"
    return text


def longest_first(tasks: Sequence[Task], config: Config) -> list[int]:
    """Indices of ``tasks`` by decreasing stated cost (ties in plan order): on
    a pool, the longest start first and the run ends sooner."""
    return sorted(range(len(tasks)), key=lambda i: -cost(tasks[i], config))


def sequential(tasks: Sequence[Task], config: Config, progress: Progress | None = None) -> dict[Task, TaskResult]:
    """Execute ``tasks`` one after the other in this process."""
    out = {}
    for k, task in enumerate(tasks, 1):
        if progress:  # the label first: a long check shows what it is while it runs
            progress(f"[{k}/{len(tasks)}] {task.label} ... ")
        tr = out[task] = execute(task, config)
        if progress:
            progress(f"{tr.summary()} ({_times(tr, config)})\n")
    return out


def failed(task: Task, error: str) -> TaskResult:
    """The result of a task whose worker died or whose result never came back:
    a failed row carrying ``error`` (for a statement, its printed form raised)."""
    if task.kind == "claim":
        return TaskResult(task, {"claim": Result(task.key, task.level, False, None, None, "the check did not finish",
                                                 error=error)})
    label = pp.statement(task.key).label
    return TaskResult(task, {"printed": Result(label, task.level, False, None, None, "the check did not finish",
                                               details={"form": "printed"}, error=error)})


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def processes(jobs: int) -> Executor:
    """An executor running tasks in ``jobs`` forked worker processes (one
    process, this one, for ``jobs == 1`` or a single task). A worker that dies
    fails its task's row (``WorkerDied``) and is replaced; the run goes on."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")

    def run_tasks(tasks: Sequence[Task], config: Config, progress: Progress | None = None):
        if jobs == 1 or len(tasks) <= 1:
            return sequential(tasks, config, progress)
        return _pool(tasks, config, progress, jobs)

    return run_tasks


def _worker(conn, tasks: Sequence[Task], config: Config) -> None:
    # forked: the tasks, the loaded registry and the imported checks are inherited
    while True:
        i = conn.recv()
        if i is None:
            return
        tr = execute(tasks[i], config)
        try:
            conn.send(tr)
        except Exception as exc:  # noqa: BLE001 - a result that cannot travel is a failed row, not a hang
            conn.send(failed(tasks[i], f"{type(exc).__name__} sending the result: {exc}"))


def _pool(tasks: Sequence[Task], config: Config, progress: Progress | None, jobs: int) -> dict[Task, TaskResult]:
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("fork")
    load()  # discovered once here, inherited by every worker

    def start():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, tasks, config), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "task": None}

    todo = deque(longest_first(tasks, config))
    out: dict[Task, TaskResult] = {}
    workers = [start() for _ in range(min(jobs, len(tasks)))]
    if progress:
        progress(f"{len(tasks)} checks on {len(workers)} worker processes, the longest stated budgets first\n")
    try:
        while len(out) < len(tasks):
            for k, w in enumerate(workers):
                if w["task"] is None and todo:
                    i = todo.popleft()
                    try:
                        w["conn"].send(i)
                    except (BrokenPipeError, OSError):  # it died between two tasks: a new one takes this
                        w["proc"].join()
                        w = workers[k] = start()
                        w["conn"].send(i)
                    w["task"] = i
            busy = [w for w in workers if w["task"] is not None]
            ready = set(wait([w["conn"] for w in busy] + [w["proc"].sentinel for w in busy]))
            for k, w in enumerate(workers):
                if w["task"] is None or not (w["conn"] in ready or w["proc"].sentinel in ready):
                    continue
                task = tasks[w["task"]]
                try:
                    tr = w["conn"].recv()
                except (EOFError, OSError):  # the worker died with this task
                    w["proc"].join()
                    tr = failed(task, f"WorkerDied: the worker process running {task.label} ended "
                                      f"(exit code {w['proc'].exitcode})")
                    w["conn"].close()
                    workers[k] = start()
                else:
                    w["task"] = None
                out[task] = tr
                _report_progress(progress, len(out), len(tasks), tr, config)
    finally:
        for w in workers:
            try:
                w["conn"].send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in workers:
            w["proc"].join(timeout=5)
            if w["proc"].is_alive():
                w["proc"].kill()
    return {t: out[t] for t in tasks}


def dask_client(address: str, timeout: float = 10.0):
    """A client of the Dask distributed scheduler at ``address``; raises
    ``ImportError`` without the ``cluster`` extra and ``OSError`` when the
    scheduler cannot be reached within ``timeout`` seconds."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # distributed raises OSError / TimeoutError / ValueError by version
        raise OSError(f"cannot reach the Dask scheduler at {address!r}: {type(exc).__name__}: {exc}") from exc


def on_dask(client) -> Executor:
    """An executor submitting every task to a Dask distributed cluster (the
    workers must import this package). A task whose worker died (Dask gives up
    after its retries) or that raised in transit fails its row; the run goes on."""

    def run_tasks(tasks: Sequence[Task], config: Config, progress: Progress | None = None):
        from distributed import as_completed

        order = longest_first(tasks, config)
        futures = {client.submit(execute, tasks[i], config, pure=False, priority=len(tasks) - k): tasks[i]
                   for k, i in enumerate(order)}
        out: dict[Task, TaskResult] = {}
        for fut in as_completed(list(futures), loop=client.loop):
            task = futures[fut]
            try:
                tr = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, a lost connection: a failed row
                tr = failed(task, f"{type(exc).__name__}: {exc}".strip())
            out[task] = tr
            _report_progress(progress, len(out), len(tasks), tr, config)
        return {t: out[t] for t in tasks}

    return run_tasks


# --------------------------------------------------------------------------- #
# planning and assembling
# --------------------------------------------------------------------------- #
def declared_controls(task: Task) -> tuple[str, ...]:
    """The controls the task's check declares (``@controls.declares``)."""
    if task.kind == "claim":
        fn = REGISTRY[task.key].checks[task.level]
    else:
        fn = registry.statement_checks()[(task.key, task.level)]
    return tuple(getattr(fn, "controls", ()))


def _statement_tasks(numbers: Iterable[str], levels: Iterable[str]) -> tuple[list[Task], list[Task]]:
    """Own-level statement tasks, and claim tasks of the levels they reuse."""
    checks = registry.statement_checks()
    wanted = set(levels)
    own, reused = [], []
    for n in numbers:
        s = pp.statement(n)
        for lv in pp.levels_of(s, checks):
            if lv not in wanted:
                continue
            if lv in s.reuses:
                cid, clv = s.reuses[lv]
                reused.append(Task("claim", cid, clv))
            else:
                own.append(Task("statement", n, lv))
    return own, reused


def _served(table: Mapping[Task, TaskResult], control: str | None):
    """Statement checks that return the results ``table``'s tasks computed
    under ``control`` (a form not computed there runs now, in this process),
    and the checks' own times by result id."""
    seconds: dict[int, float] = {}

    def serving(key, fn):
        tr = table.get(Task("statement", key[0], key[1], control))

        def serve(config: Config, form: str) -> Result:
            res = tr.results.get(form) if tr is not None else None
            if res is None:
                res = _one_form(key[0], key[1], form, control, config)
            seconds[id(res)] = res.seconds
            return res

        serve.__module__, serve.__name__ = fn.__module__, fn.__name__
        return serve

    return {key: serving(key, fn) for key, fn in registry.statement_checks().items()}, seconds


def _one_form(number: str, level: str, form: str, control: str | None, config: Config) -> Result:
    s = pp.statement(number)
    fn = registry.statement_checks()[(number, level)]
    if control is None:
        return run_statement_check(s, level, fn, form, config)
    _clear_check_caches()
    try:
        with ctl.applied(control):
            return run_statement_check(s, level, fn, form, config)
    finally:
        _clear_check_caches()


def _verdict(s, levels, config, table, control, claim_results) -> StatementOutcome:
    served, seconds = _served(table, control)

    def run_claim(cid: str, lv: str) -> Result:
        return claim_results.get((cid, lv)) or run_claim_check(cid, lv, config)

    out = verify_statement(s, served, levels, config, run_claim)
    for r in out.results:  # verify_statement times the lookup; keep the check's own time
        if id(r) in seconds:
            r.seconds = seconds[id(r)]
    return out


def _power(results: Iterable[Result], control: str) -> float | None:
    for r in results:
        power = (r.details or {}).get(ctl.POWER_KEY)
        if isinstance(power, Mapping) and control in power:
            try:
                return float(power[control])
            except (TypeError, ValueError):
                return None
    return None


def _claim_state(r: Result) -> str:
    return "raised" if r.error else ("pass" if r.passed else "fail")


def plan(claim_ids: Sequence[str], levels: Sequence[str], statements: Sequence[str]) -> list[Task]:
    """The tasks of a run without controls: claim checks in registry order,
    then the statements' own levels, then reused claim checks not selected."""
    tasks = [Task("claim", cid, lv) for cid, lv in all_checks(claim_ids, levels)] if claim_ids else []
    own, reused = _statement_tasks(statements, levels)
    tasks += own
    tasks += [t for t in dict.fromkeys(reused) if t not in tasks]
    return tasks


def control_tasks(baseline: Iterable[Task], statements: Sequence[str]) -> list[Task]:
    """The controlled reruns: every task under each control its check declares,
    and every own statement level under ``exchanged``."""
    out = []
    for t in baseline:
        if t.kind == "claim" and t.level not in REGISTRY[t.key].checks:
            continue
        out += [Task(t.kind, t.key, t.level, c) for c in declared_controls(t) if c != "exchanged"]
    for t in baseline:
        if t.kind == "statement" and t.key in statements and ctl.exchange_partner(pp.statement(t.key)) is not None:
            out.append(Task(t.kind, t.key, t.level, "exchanged"))
    return list(dict.fromkeys(out))


def run(claim_ids: Sequence[str], levels: Sequence[str], config: Config, statements: Sequence[str] = (),
        controls: bool = False, progress: Progress | None = None, executor: Executor = sequential) -> Run:
    """Run a selection: the claim checks, the statements' verdicts and (with
    ``controls``) the negative controls; see the module docstring."""
    tasks = plan(claim_ids, levels, statements)
    if controls:
        tasks += control_tasks(tasks, statements)
    table = executor(tasks, config, progress)
    out = Run()
    selected = set(all_checks(claim_ids, levels)) if claim_ids else set()
    claim_results = {(t.key, t.level): tr.results["claim"] for t, tr in table.items()
                     if t.kind == "claim" and t.control is None}
    out.results = [claim_results[k] for k in (all_checks(claim_ids, levels) if claim_ids else []) if k in selected]
    chosen = [s for s in pp.STATEMENTS if s.number in statements]
    for s in chosen:
        out.statements.append(_verdict(s, levels, config, table, None, claim_results))
    if controls:
        out.controls = _control_outcomes(tasks, table, config, levels, chosen, out, claim_results)
    return out


def _control_outcomes(tasks, table, config, levels, chosen, run_out: Run, claim_results) -> list[ControlOutcome]:
    rows: list[ControlOutcome] = []
    for t in tasks:
        if t.control is None or t.control == "exchanged":
            continue
        base = table[Task(t.kind, t.key, t.level)]
        tr = table[t]
        reached = ctl.ControlRun(t.control, set(tr.consulted)).reached
        if t.kind == "claim":
            b, r = base.results["claim"], tr.results["claim"]
            rows.append(ControlOutcome("claim", t.key, t.key, (t.level,), t.control, _claim_state(b),
                                       _claim_state(r), caught=not r.passed, reached=reached,
                                       power=_power([b], t.control), note=r.error or "", results=[r]))
        else:
            s = pp.statement(t.key)
            b = _verdict(s, [t.level], config, table, None, claim_results)
            c = _verdict(s, [t.level], config, table, t.control, claim_results)
            rows.append(ControlOutcome("statement", t.key, s.label, (t.level,), t.control, " + ".join(b.reached),
                                       " + ".join(c.reached), caught=tuple(c.reached) != tuple(b.reached),
                                       reached=reached, power=_power(b.results, t.control), results=c.results))
    done = {o.statement.number: o for o in run_out.statements}
    for s in chosen:
        base = done[s.number]
        if not base.levels:
            continue
        if ctl.exchange_partner(s) is None:
            rows.append(ControlOutcome("statement", s.number, s.label, tuple(lo.level for lo in base.levels),
                                       "exchanged", " + ".join(base.reached), "-", caught=False, reached=False,
                                       note="no corrected or alternative form to exchange the printed one with"))
            continue
        own = [Task("statement", s.number, lo.level, "exchanged") for lo in base.levels if lo.level not in s.reuses]
        consulted = set().union(*(table[t].consulted for t in own if t in table)) if own else set()
        c = _verdict(s, levels, config, table, "exchanged", claim_results)
        missed = [t.level for t in own if t in table and "form" not in table[t].consulted]
        note = f"level(s) {', '.join(missed)} never read their form" if missed else ""
        rows.append(ControlOutcome("statement", s.number, s.label, tuple(lo.level for lo in base.levels),
                                   "exchanged", " + ".join(base.reached), " + ".join(c.reached),
                                   caught=tuple(c.reached) != tuple(base.reached),
                                   reached=ctl.ControlRun("exchanged", consulted).reached,
                                   power=None, note=note, results=[r for r in c.results
                                                                   if not any(r is q for q in base.results)]))
    return rows
