"""The HTML report: graph, panels, self-containedness, the CLI paths, and
(slow) a real headless Chromium clicking a node of a default run's report."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from cdp import Browser, find_chromium
from ntk_equiv import cli
from ntk_equiv import html_report as hr
from ntk_equiv import report as rp
from ntk_equiv.claims import paper as pp
from ntk_equiv.claims.registry import REGISTRY, Config, load

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def small_doc() -> dict:
    """A real (cheap) run: C3 at H, Prop 5.1 at H (printed form refuted, corrected holds)."""
    rep = cli.run_verify(["C3"], ["H"], Config(), statements=["5.1"])
    return rp.to_json(rep)


def _node_ids(page: str) -> list[str]:
    return re.findall(r'<g id="([^"]+)" class="node', page)


@pytest.mark.parametrize("use_dot", [False, True])
def test_every_statement_and_claim_is_one_node(small_doc, use_dot):
    if use_dot:
        _require(shutil.which("dot"), "Graphviz dot")  # fails under CI=true, where .ci/run installs it
    load()
    page = hr.render_html(small_doc, use_dot=use_dot)
    ids = _node_ids(page)
    want = [hr.node_id(s.number) for s in pp.STATEMENTS] + [hr.node_id(c) for c in REGISTRY]
    assert sorted(ids) == sorted(want)
    assert ("Graphviz dot" in page) == use_dot and ("laid out in Python" in page) != use_dot
    for i in want:  # one panel per node
        assert page.count(f'id="panel-{i}"') == 1


def test_nodes_are_coloured_by_the_reached_verdict(small_doc):
    nodes = {n.id: n for n in hr.graph(small_doc)[0]}
    assert nodes["S5_1"].cls == "refuted"  # reached in this run
    assert nodes["C3"].cls == "holds"
    assert nodes["S5_2"].cls == "notrun" and nodes["C6a"].cls == "notrun"
    assert hr.statement_class(["holds only in the limit", "gap in the proof"]) == "gap"
    assert hr.statement_class(["error"]) == "failed"
    bad = json.loads(json.dumps(small_doc))
    bad["statements"][0]["as_expected"] = False
    assert {n.id: n for n in hr.graph(bad)[0]}["S5_1"].cls == "failed"


def test_panel_shows_printed_corrected_defect_and_each_check(small_doc):
    page = hr.render_html(small_doc, use_dot=False)
    panel = page.split('id="panel-S5_1"')[1].split('<div class="panel"')[0]
    assert "As printed" in panel and "As corrected" in panel and "Defect" in panel
    assert "Θ<sub>XX</sub><sup>-1</sup>" in panel  # the notation typeset
    r = small_doc["statements"][0]["levels"][0]
    assert "printed form: fails" in panel and "corrected form: passes" in panel
    assert hr._esc(r["printed"]["reason"]) in panel  # what the check tests, in words
    assert "threshold" in panel


def test_page_is_self_contained(small_doc):
    page = hr.render_html(small_doc, use_dot=shutil.which("dot") is not None)
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    # the only URLs are XML namespace names, which are never fetched
    urls = set(re.findall(r'https?://[^\s"\'<>]+', page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def test_every_claim_formula_converts_without_fallback():
    load()
    extra = [r"\mathrm{Var}[\hat\Theta_{ij}]=\tfrac{1}{n}\,\mathrm{ntk\_var}_{ij}+O(n^{-2})",
             r"\lVert\hat\Theta_n-\Theta\rVert\le \dfrac{c}{\sqrt{n}},\ \log\det\mathbf{K}"]
    for cid, tex in [(c.id, c.latex) for c in REGISTRY.values()] + [("extra", t) for t in extra]:
        m = hr.latex_mathml(tex)
        assert m.startswith("<math") and "\\" not in m, (cid, m)


def test_notation_escapes_and_typesets():
    assert hr.notation_html("a <= b -> c") == "a ≤ b → c"
    assert hr.notation_html("<script>") == "&lt;script&gt;"
    assert hr.notation_html("kappa_u + kappa_g") == "κ<sub>u</sub> + κ<sub>g</sub>"


def test_layered_layout_puts_every_edge_downwards():
    load()
    nodes, edges = hr.graph({})
    grid = hr.layered_layout(nodes, edges)
    assert all(grid[e.source][0] < grid[e.target][0] for e in edges)


def test_verify_html_refuses_a_missing_directory_before_any_work(tmp_path, capsys):
    code = cli.main(["verify", "--claims", "C1", "--html", str(tmp_path / "nope" / "r.html")])
    err = capsys.readouterr()
    assert code == cli.EXIT_USAGE and "--html" in err.err and "does not exist" in err.err
    assert "[1/" not in err.err  # nothing ran


def test_report_renders_a_saved_json(small_doc, tmp_path):
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(small_doc), encoding="utf-8")
    out = tmp_path / "r.html"
    assert cli.main(["report", str(saved), "--html", str(out)]) == cli.EXIT_OK
    assert "Prop 5.1" in out.read_text(encoding="utf-8")
    saved.write_text("{}", encoding="utf-8")
    assert cli.main(["report", str(saved), "--html", str(out)]) == cli.EXIT_USAGE


# --------------------------------------------------------------------------- #
# a real browser
# --------------------------------------------------------------------------- #
def _require(tool: str | None, what: str) -> None:
    if tool is None:
        msg = f"{what} is not installed (apt-get install -y chromium graphviz; .ci/run does)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.slow
def test_default_report_in_headless_chromium(tmp_path):
    chromium = find_chromium()
    _require(chromium, "Chromium")
    _require(shutil.which("dot"), "Graphviz (dot)")
    out = tmp_path / "report.html"
    assert cli.main(["verify", "-q", "--html", str(out)]) == cli.EXIT_OK
    load()
    browser = Browser(chromium)
    try:
        browser.open(out.resolve().as_uri())
        assert browser.eval("document.querySelectorAll('g.node.statement').length") == len(pp.STATEMENTS) == 9
        assert browser.eval("document.querySelectorAll('g.node.claim').length") == len(REGISTRY)
        assert browser.eval("document.getElementById('graph').dataset.layout") == "dot"
        x, y = browser.eval("(function(){var r=document.getElementById('S5_4').getBoundingClientRect();"
                            "return [r.x + r.width / 2, r.y + r.height / 2];})()")
        browser.click(x, y)  # a real mouse click on the node
        assert browser.eval("document.querySelector('.panel.shown').id") == "panel-S5_4"
        text = browser.eval("document.querySelector('.panel.shown').innerText")
        shot = browser.screenshot()
    finally:
        browser.close()
    assert "Cor 5.4 (arXiv Cor 3.2)" in text
    assert "As printed" in text and "E[ε2(x)] = V[f(x; θ∞)]" in text  # the printed form, typeset
    assert "As corrected" in text and "factor 2" in text
    assert "refuted as printed + holds as corrected" in text
    screenshot = Path(os.environ.get("NTK_SCREENSHOT_DIR", tmp_path)) / "html_report_cor_5_4.png"
    screenshot.write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000


# --------------------------------------------------------------------------- #
# the notebooks' set-up and display (issue 18.5)
# --------------------------------------------------------------------------- #
ROOT = Path(__file__).resolve().parents[1]


def test_report_links_the_rendered_derivations(small_doc):
    page = hr.render_html(small_doc, use_dot=False, derivations="file:///x/derivations/out/index.html")
    assert 'href="file:///x/derivations/out/index.html"' in page


def test_readme_set_up_brings_what_the_notebooks_need():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert readme[2].startswith('python -m pip install -e ".[test]"')  # the second set-up line
    assert any(d.startswith("matplotlib") for d in extras["test"])  # what every notebook needs besides the package
    guide = (ROOT / "derivations" / "README.md").read_text(encoding="utf-8")
    assert '".[test]"' in guide and '".[plots]"' in guide


def test_notebook_proof_display_is_short():
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'derivations'); from _setup import describe; import sympy as sp;"
            "from ntk_equiv.symbolic.record import Step, conclude; x = sp.symbols('x0:60');"
            "big = sum(xi**2 for xi in x); small = sp.Symbol('y');"
            "describe(conclude('C0', 'demo', 'test', ['none'], [Step('long', big, big, 0, True),"
            " Step('short', small, small, 0, True), Step('wrong', big, 0, big, False)], strict=False))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert max(len(line) for line in out.splitlines()) <= 100, out
    assert "long: lhs - rhs simplifies to exactly 0" in out and "y  ==  y" in out
    assert "wrong: lhs - rhs is NOT 0: <a " in out  # a long difference is named, not printed


def test_controls_and_power_appear_in_their_nodes_panel(small_doc):
    doc = json.loads(json.dumps(small_doc))
    doc["controls_requested"] = True
    doc["controls"] = [{"kind": "claim", "id": "C3", "label": "C3", "levels": ["H"], "control": "untrained",
                        "breaks": "training removed", "baseline": "pass", "under_control": "fail", "caught": True,
                        "reached": True, "passed": True, "outcome": "caught", "power": 0.97, "note": "", "results": []}]
    doc["results"][0]["details"]["power"] = {"untrained": 0.97}
    page = hr.render_html(doc, use_dot=False)
    panel = page.split('id="panel-C3"')[1].split('<div class="panel"')[0]
    assert "Negative controls" in panel and "untrained: training removed" in panel and "caught" in panel
    assert "power (probability of failing under each named alternative): untrained: 0.97" in panel
    assert "Negative controls" not in page.split('id="panel-S5_1"')[1].split('<div class="panel"')[0]


def test_paper_checks_figures_are_embedded_in_their_claims_panel(small_doc, tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    (tmp_path / "c2_kernel_convergence.png").write_bytes(png)
    figures = hr.load_figures(tmp_path)
    assert list(figures) == ["C2"]
    page = hr.render_html(small_doc, figures, use_dot=False)
    panel = page.split('id="panel-C2"')[1].split('<div class="panel"')[0]
    assert 'src="data:image/png;base64,' in panel and "(paper_checks)" in panel
    assert hr.load_figures(tmp_path / "missing") == {}
