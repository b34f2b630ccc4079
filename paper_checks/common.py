"""What every figure module shares: saving a figure with its numbers, the
result record, a log-log slope fit."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@dataclass
class FigureResult:
    """One figure: where its PNG and JSON are, the claim, a caption and the
    headline numbers shown in REPORT.md."""

    key: str
    claim: str
    title: str
    png: Path
    json: Path
    caption: str
    headline: dict = field(default_factory=dict)
    seconds: float = 0.0


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else str(f)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj


def save(fig, data: dict, out: Path, key: str) -> tuple[Path, Path]:
    """Write ``<key>.png`` and ``<key>.json`` (the plotted numbers) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    png, js = out / f"{key}.png", out / f"{key}.json"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    js.write_text(json.dumps(jsonable(data), indent=1) + "\n", encoding="utf-8")
    return png, js


def loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares fit ``log y = slope log x + c``; returns ``(slope, c)``."""
    slope, c = np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)
    return float(slope), float(c)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
