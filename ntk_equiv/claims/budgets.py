"""The stated budget of every check: seconds it needs alone on one core of the
reference machine (2 cores), ``(at the default scale, at --full)``, by
``"<claim id or statement number> <level>"``; a statement's covers both its
forms. ``@check(..., budget=(s, s_full))`` states it at the check itself and
wins over this table.

Measured on 2026-12-03 (CPU seconds of each task: ``ntk-equiv verify --jobs 1``
and ``ntk-equiv verify --full --jobs 2``, progress lines ``cpu ...s``); each
budget is twice the measurement, rounded up to 1, 2, 3, 5, 10, 15, 20, 30, 45,
60, 90, 120, 180, 240, ... (at least 1 s, 2 s at --full). The sums: 105 s at
the default scale, 1255 s at --full (measured 34 s and 486 s of CPU)."""
from __future__ import annotations

BUDGETS: dict[str, tuple[float, float]] = {
    "5.1 E": (1, 60), "5.1 H": (1, 2), "5.1 S": (1, 5), "5.2 E": (3, 30), "5.2 H": (1, 2), "5.2 S": (1, 30),
    "5.3 E": (1, 10), "5.3 H": (1, 2), "5.3 S": (2, 45), "5.4 E": (1, 2), "5.4 H": (1, 2), "5.4 S": (1, 5),
    "5.5 E": (1, 10), "5.5 S": (1, 2), "5.6 E": (2, 10), "5.6 H": (1, 2), "5.6 S": (1, 2), "5.7 E": (1, 10), "5.7 H": (1, 2),
    "5.7 S": (1, 2), "5.8 E": (3, 15), "5.8 H": (3, 5), "5.8 S": (1, 45), "5.9 E": (1, 3), "5.9 H": (1, 2),
    "5.9 S": (3, 180), "C1 E": (1, 2), "C1 H": (3, 10), "C1 S": (10, 10), "C2 E": (5, 45), "C2 S": (1, 2),
    "C3 E": (1, 2), "C3 H": (1, 2), "C3 S": (5, 5), "C4 E": (5, 240), "C5 E": (1, 10), "C5 H": (1, 2),
    "C5 S": (1, 10), "C6 H": (1, 2), "C6 S": (1, 3), "C6a E": (10, 180), "C6a H": (1, 3), "C6a S": (1, 2),
    "C6b H": (1, 3), "C6b S": (1, 2), "C6c E": (2, 10), "C7 H": (1, 2), "C7 S": (1, 20), "C7a H": (1, 2),
    "C7a S": (2, 20), "C7b H": (1, 2), "C7b S": (1, 10), "C7c E": (1, 60), "C7c S": (1, 15), "C8 E": (2, 10),
    "C8 S": (2, 30), "C9 E": (1, 2), "C9 H": (1, 2), "C9 S": (3, 60),
}
