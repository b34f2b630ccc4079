"""The one registry: the catalogue of claims and statements, and their checks,
found by discovery. The CLI, the runner, the tests and the docs all read it.

The catalogue holds the project's claims C1-C9 (:mod:`.claims`, ids ``C6a``)
and the paper's numbered statements (:mod:`.paper`, ids ``"5.4"``), as data.
Every entry has at most one check per level:

* ``S`` symbolic (sympy, exact),
* ``H`` high precision (mpmath, ``dps`` digits),
* ``C`` certified (ball arithmetic, ``prec`` bits: :mod:`.certified_checks`),
* ``E`` empirical (finite-width numpy networks),
* ``P`` property-based (hypothesis over random architectures; run by pytest,
  listed here so the report can say it exists).

A check is a plain function, ``check(config) -> Result`` for a claim and
``check(config, form) -> Result`` for a statement (``form`` ``"printed"`` or
``"corrected"``), declared by ONE decorator, ``@check(id, level, budget=(s,
s_full))``, in any module of this package whose name ends in ``_checks``.
:func:`load` imports every such module (pkgutil) and collects what they
declare; an unknown id, a duplicate (id, level) or a module that fails to
import is an error, never skipped. Adding a statement: one catalogue entry
and one check module. A check measures a residual or statistic and compares it
with a tolerance whose reason it states; it never asserts, so the CLI can
render it and pytest can assert it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterable, Iterator

from ..errors import CatalogueError
from .claims import CLAIMS, LEVELS, Claim
from .results import RUN_LEVELS, Config, Result, measured, proven  # noqa: F401 - re-exported

LEVEL_NAMES = {"S": "symbolic", "H": "high precision", "C": "certified", "E": "empirical", "P": "property-based"}


Check = Callable[..., Result]  # a claim's: check(config); a statement's: check(config, form)


@dataclass(frozen=True)
class CheckSpec:
    """What ``@check`` declares: the catalogue id (a claim id ``"C6a"`` or a
    statement number ``"5.4"``), the level, and the budget in seconds at the
    default scale and at ``--full`` (``None``: not stated)."""

    id: str
    level: str
    budget: tuple[float, float] | None = None


def check(id: str, level: str, *, budget: tuple[float, float] | None = None) -> Callable[[Check], Check]:
    """Decorator declaring ``fn`` the check of catalogue entry ``id`` (a claim
    or a statement) at ``level``, with ``budget = (seconds at the default
    scale, seconds at --full)``. It only marks ``fn`` (``fn.check_spec``):
    :func:`load` finds it by discovery. An unknown id, level or a malformed
    budget is refused here, when the check module is imported."""
    if level not in RUN_LEVELS:
        raise CatalogueError(f"checks are declared at S, H, C or E, not {level!r}")
    known = catalogue()
    if id not in known:
        raise CatalogueError(f"@check({id!r}, {level!r}): no claim or statement {id!r} in the catalogue; "
                             f"known: {', '.join(known)}")
    if budget is not None:
        ok = isinstance(budget, tuple) and len(budget) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 for b in budget)
        if not ok:
            raise CatalogueError(f"@check({id!r}, {level!r}): budget must be (seconds at the default scale, "
                                 f"seconds at --full), both > 0, got {budget!r}")
        budget = (float(budget[0]), float(budget[1]))

    def mark(fn: Check) -> Check:
        fn.check_spec = CheckSpec(id, level, budget)
        _DECLARED.append((getattr(fn, "__module__", None), id, level))
        return fn

    return mark


def catalogue() -> dict[str, object]:
    """The one catalogue, in order: the claims C1-C9 by id (:mod:`.claims`),
    then the paper's statements by number (:mod:`.paper`)."""
    from .paper import STATEMENTS

    out: dict[str, object] = {c.id: c for c in CLAIMS}
    for s in STATEMENTS:
        if s.number in out:
            raise CatalogueError(f"catalogue id {s.number!r} is used twice")
        out[s.number] = s
    return out


#: (module, id, level) of every ``@check`` made: what discovery must find in the
#: ``*_checks`` modules (a check declared and then dropped is an error, not a gap)
_DECLARED: list[tuple[str | None, str, str]] = []
#: the claims by id; discovery attaches their checks (``REGISTRY[id].checks[level]``)
REGISTRY: dict[str, Claim] = {c.id: c for c in CLAIMS}
#: the paper's statement checks, ``{(number, level): check(config, form)}``, filled by :func:`load`
STATEMENT_CHECKS: dict[tuple[str, str], Check] = {}


def _declared(mod: ModuleType) -> Iterator[tuple[CheckSpec, Check, str]]:
    """The checks a module declares: the functions ``@check`` marked among its
    attributes (or one level inside its tuples, lists and dict values, for
    checks made in a loop), and the entries of a ``CHECKS`` dict
    ``{(id, level): fn}`` (the older form, read as if each were decorated)."""
    where = mod.__name__
    for name, value in list(vars(mod).items()):
        if isinstance(value, dict):
            items = list(value.values())
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        for fn in items:
            spec = getattr(fn, "check_spec", None) if callable(fn) else None
            if isinstance(spec, CheckSpec):
                yield spec, fn, f"{where}.{getattr(fn, '__name__', name)}"
    table = getattr(mod, "CHECKS", None)
    if isinstance(table, dict):
        for key, fn in table.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise CatalogueError(f"{where}.CHECKS: key {key!r} is not (id, level)")
            spec = getattr(fn, "check_spec", None)
            if isinstance(spec, CheckSpec) and (spec.id, spec.level) != key:
                raise CatalogueError(f"{where}.CHECKS[{key!r}] is declared @check{(spec.id, spec.level)!r}")
            yield (spec if isinstance(spec, CheckSpec) else CheckSpec(*key)), fn, f"{where}.CHECKS[{key!r}]"


def discover(modules: Iterable[ModuleType]) -> dict[tuple[str, str], Check]:
    """``{(id, level): check}`` declared by ``modules``, in catalogue order.

    Raises :class:`~ntk_equiv.errors.CatalogueError` for an id not in the
    catalogue, a level outside S/H/C/E, two different checks of one (id, level),
    or a statement level that also reuses a claim's check."""
    modules = list(modules)
    known = catalogue()
    found: dict[tuple[str, str], tuple[Check, str]] = {}
    for mod in modules:
        for spec, fn, where in _declared(mod):
            key = (spec.id, spec.level)
            if spec.id not in known or spec.level not in RUN_LEVELS:
                raise CatalogueError(f"{where}: unknown catalogue id or level {key!r}; ids: {', '.join(known)}")
            if key in found and found[key][0] is not fn:
                raise CatalogueError(f"{key!r} has two checks: {found[key][1]} and {where}")
            reuses = getattr(known[spec.id], "reuses", {})
            if spec.level in reuses:
                raise CatalogueError(f"{where}: statement {spec.id} level {spec.level} already reuses "
                                     f"{reuses[spec.level]}")
            found.setdefault(key, (fn, where))
    names = {getattr(m, "__name__", None) for m in modules}
    lost = sorted({(mod, i, lv) for mod, i, lv in _DECLARED if mod in names and (i, lv) not in found})
    if lost:
        raise CatalogueError(f"declared with @check but not reachable from its module (keep it a module attribute, "
                             f"or in a module-level list/tuple/dict): {lost}")
    order = {k: i for i, k in enumerate(known)}
    return {k: found[k][0] for k in sorted(found, key=lambda k: (order[k[0]], RUN_LEVELS.index(k[1])))}


def check_modules() -> list[ModuleType]:
    """Every ``*_checks`` module of this package, imported (errors propagate)."""
    import importlib
    import pkgutil
    from pathlib import Path

    # this module's own folder and package name: no import of the package object
    # (its __init__ imports this module), discovery is by name
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.endswith("_checks"))
    return [importlib.import_module(f"{__package__}.{name}") for name in names]


def budget(fn: Check | None, full: bool = False, key: tuple[str, str] | None = None) -> float | None:
    """The seconds a check states it needs at the default scale (or
    ``--full``): its ``@check(..., budget=)``, else the table of
    :mod:`.budgets` for ``key`` (its ``(id, level)``; default: its declaration's)."""
    spec = getattr(fn, "check_spec", None)
    if isinstance(spec, CheckSpec) and spec.budget is not None:
        return spec.budget[1 if full else 0]
    if key is None and isinstance(spec, CheckSpec):
        key = (spec.id, spec.level)
    if key is None:
        return None
    from .budgets import BUDGETS

    stated = BUDGETS.get(f"{key[0]} {key[1]}")
    return None if stated is None else float(stated[1 if full else 0])


def run_check(claim_id: str, level: str, config: Config = Config()) -> Result:
    """Run one check; an exception becomes a failed result carrying its message."""
    load()
    fn = REGISTRY[claim_id].checks[level]
    start = time.perf_counter()
    try:
        res = fn(config)
        if not isinstance(res, Result):
            raise TypeError(f"the check returned {type(res).__name__}, not a Result (use measured/proven)")
    except Exception as exc:  # noqa: BLE001 - a crashing check is a failing check, reported
        res = Result("", "", False, None, None, "check raised", error=f"{type(exc).__name__}: {exc}")
    res.claim, res.level = claim_id, level
    res.seconds = time.perf_counter() - start
    return res


def all_checks(claim_ids: Iterable[str] | None = None, levels: Iterable[str] | None = None):
    """``(claim_id, level)`` pairs in registry order, filtered."""
    load()
    ids = list(REGISTRY) if claim_ids is None else [i for i in REGISTRY if _selected(i, claim_ids)]
    lv = set(LEVELS if levels is None else levels)
    return [(i, l) for i in ids for l in RUN_LEVELS if l in REGISTRY[i].checks and l in lv]


def _selected(claim_id: str, wanted: Iterable[str]) -> bool:
    # "C6" selects C6, C6a, C6b, C6c; "C6a" selects only itself
    return any(claim_id == w or (claim_id.startswith(w) and not claim_id[len(w)].isdigit()) for w in wanted)


_LOADED = False


def load() -> dict[str, Claim]:
    """Discover every check once (:func:`discover` over :func:`check_modules`)
    and attach it: a claim's to ``REGISTRY[id].checks``, a statement's to
    :data:`STATEMENT_CHECKS`. An import error, an unknown id or a duplicate is
    raised (and raised again by the next call: nothing is half-loaded)."""
    global _LOADED
    if not _LOADED:
        found = discover(check_modules())
        STATEMENT_CHECKS.clear()
        for (cid, lv), fn in found.items():
            if cid in REGISTRY:
                REGISTRY[cid].checks.setdefault(lv, fn)
            else:
                STATEMENT_CHECKS[cid, lv] = fn
        _LOADED = True
    return REGISTRY


def statement_checks() -> dict[tuple[str, str], Check]:
    """Every statement check, ``{(number, level): check(config, form)}``."""
    load()
    return dict(STATEMENT_CHECKS)
