"""What a check is given and what it returns: :class:`Config`, :class:`Result`
(with :func:`measured` and :func:`proven`) and the levels a check can run at.

These types sit below both the catalogue (:mod:`.paper`, whose statement
checks take a ``Config`` and return a ``Result``) and the registry
(:mod:`.registry`, which discovers the checks of every catalogue entry), so
neither has to import the other's module to name them; the registry
re-exports them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: the levels a registered check can have (P, property-based, runs under pytest only)
RUN_LEVELS = ("S", "H", "C", "E")


@dataclass(frozen=True)
class Config:
    """What a check may vary: the seed, the digits of the H level, the bits
    the C level starts at (it climbs 256, 512 while a radius is too wide), and
    scale (``full=True``: paper-scale widths and sample sizes)."""

    seed: int = 0
    dps: int = 50
    full: bool = False
    prec: int = 128


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
