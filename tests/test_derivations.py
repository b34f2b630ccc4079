"""Every derivation notebook runs top to bottom (fast mode) and writes the
figures it says it writes (``save(fig, "<name>")`` -> ``derivations/out/<name>``).

Every notebook run is slow-marked (3-30 s each), run by ``.ci/run``'s second
pass; the default run checks that all ten exist in percent format and write a
figure.
"""
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "derivations").glob("0[0-9]_*.py"))
DEFAULT: tuple[str, ...] = ()  # notebook prefixes run by default (none: the budget)


def _figures(source: str) -> list[str]:
    return re.findall(r'save\(fig, "([^"]+)"\)', source)


def test_all_nine_notebooks_exist_in_reading_order():
    names = [p.name[:3] for p in NOTEBOOKS]
    assert names == [f"0{i}_" for i in range(0, 10)]
    for p in NOTEBOOKS:
        text = p.read_text()
        assert "# %% [markdown]" in text and "\n# %%\n" in text, f"{p.name} is not in jupytext percent format"
        assert _figures(text), f"{p.name} writes no figure"


def _params():
    for p in NOTEBOOKS:
        marks = [] if p.name.startswith(DEFAULT) else [pytest.mark.slow]
        yield pytest.param(p, id=p.stem, marks=marks)


@pytest.mark.parametrize("notebook", list(_params()))
def test_notebook_runs_and_writes_its_figures(notebook):
    figures = [ROOT / "derivations" / "out" / f for f in _figures(notebook.read_text())]
    start = time.time()
    env = {**os.environ, "NTK_EQUIV_FAST": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(notebook)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{notebook.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    for fig in figures:
        assert fig.exists() and fig.stat().st_mtime >= start - 1, f"{notebook.name} did not write {fig}"
        assert fig.stat().st_size > 1000, f"{fig} is empty"
        assert f"figure written to {fig}" in proc.stdout
    assert "PROVEN" in proc.stdout  # every notebook shows at least one exact proof
