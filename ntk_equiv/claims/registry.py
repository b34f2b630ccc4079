"""The single registry of claims: the CLI, the tests and the docs all read it.

A claim has an id (``C6a``), a title, a statement (plain text and LaTeX), the
claims it depends on, and at most one check per level:

* ``S`` symbolic (sympy, exact),
* ``H`` high precision (mpmath, ``dps`` digits),
* ``E`` empirical (finite-width numpy networks),
* ``P`` property-based (hypothesis over random architectures; run by pytest,
  listed here so the report can say it exists).

A check is a plain function ``check(config) -> Result``. It measures a residual
or statistic and compares it with a tolerance whose reason it states; it never
asserts, so the CLI can render it and pytest can assert it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

LEVELS = ("S", "H", "E", "P")
LEVEL_NAMES = {"S": "symbolic", "H": "high precision", "E": "empirical", "P": "property-based"}


@dataclass(frozen=True)
class Config:
    """What a check may vary: the seed, the digits of the H level, and scale
    (``full=True``: paper-scale widths and sample sizes)."""

    seed: int = 0
    dps: int = 50
    full: bool = False


@dataclass
class Result:
    """The outcome of one check (the JSON report's record; schema in docs)."""

    claim: str
    level: str
    passed: bool
    residual: float | None
    tolerance: float | None
    reason: str
    seconds: float = 0.0
    details: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def statistic(self) -> str | None:
        """The human-readable statistic of :func:`measured`, if the check gave one."""
        v = (self.details or {}).get("statistic")
        return v if isinstance(v, str) else None

    def to_dict(self) -> dict:
        return asdict(self)


def measured(residual: float, tolerance: float, reason: str, statistic: str | None = None, **details) -> Result:
    """A result that passes iff ``residual <= tolerance`` (NaN never passes).
    ``claim``/``level``/``seconds`` are filled in by :func:`run_check`.

    ``statistic``: the measured statistic as a reader reads it (the smallest
    p-value and its threshold, a slope with its standard error, a ratio with its
    interval, ``cond(Theta_XX)``), shown in the report's row instead of the bare
    ``residual<=tolerance``; stored as ``details["statistic"]``."""
    r = float(residual)
    if statistic is not None:
        details = {"statistic": str(statistic), **details}
    return Result("", "", bool(r <= tolerance), r, float(tolerance), reason, details=details)


def proven(record, reason: str = "difference simplifies to exactly 0") -> Result:
    """A symbolic result: passes iff the proof record says so."""
    ok = bool(getattr(record, "proven", record))
    return Result("", "", ok, 0.0 if ok else None, 0.0, reason, details={"proof": str(record)[:2000]})


Check = Callable[[Config], Result]


@dataclass
class Claim:
    id: str
    title: str
    statement: str
    latex: str
    depends_on: tuple[str, ...] = ()
    checks: dict[str, Check] = field(default_factory=dict)
    property_tests: str | None = None  # the pytest module holding the P-level tests

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(lv for lv in LEVELS if lv in self.checks or (lv == "P" and self.property_tests))


REGISTRY: dict[str, Claim] = {}


def claim(id: str, title: str, statement: str, latex: str, depends_on: Iterable[str] = (),
          property_tests: str | None = None) -> Claim:
    if id in REGISTRY:
        raise ValueError(f"claim {id} registered twice")
    c = Claim(id, title, statement, latex, tuple(depends_on), property_tests=property_tests)
    REGISTRY[id] = c
    return c


def check(claim_id: str, level: str) -> Callable[[Check], Check]:
    """Decorator registering ``fn`` as ``claim_id``'s check at ``level``."""
    if level not in ("S", "H", "E"):
        raise ValueError(f"checks are registered at S, H or E, not {level!r}")

    def register(fn: Check) -> Check:
        c = REGISTRY[claim_id]
        if level in c.checks:
            raise ValueError(f"{claim_id} already has a {level} check")
        c.checks[level] = fn
        return fn

    return register


def run_check(claim_id: str, level: str, config: Config = Config()) -> Result:
    """Run one check; an exception becomes a failed result carrying its message."""
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
    return [(i, l) for i in ids for l in ("S", "H", "E") if l in REGISTRY[i].checks and l in lv]


def _selected(claim_id: str, wanted: Iterable[str]) -> bool:
    # "C6" selects C6, C6a, C6b, C6c; "C6a" selects only itself
    return any(claim_id == w or (claim_id.startswith(w) and not claim_id[len(w)].isdigit()) for w in wanted)


_LOADED = False


def load() -> dict[str, Claim]:
    """Import the statements and every check module (once)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import statements  # noqa: F401
        import importlib

        for mod in ("kernel_checks", "dynamics_checks", "rnd_checks", "symbolic_checks"):
            try:
                importlib.import_module(f"{__package__}.{mod}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__package__}.{mod}":
                    raise
    return REGISTRY
