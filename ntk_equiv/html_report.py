"""The verification report as one self-contained HTML page, in the manner of a
Lean blueprint: the dependency graph of the paper's nine statements and the
project's claims, each node coloured by its verdict, and a panel per node.

The page needs no network at view time: its style and its script (a few lines
that show the panel of a clicked node) are inlined, and it loads no JavaScript
framework. The graph is laid out by Graphviz (``dot -Tsvg``) when ``dot`` is
on the path at report time, else by :func:`layered_layout` (longest-path
layers, barycentre ordering); the page says which.

Mathematics: KaTeX is not available offline, so the statements' plain-text
notation (``Theta_XX^{-1}``) is typeset with Unicode letters and HTML
sub/superscripts (:func:`notation_html`), and each claim's LaTeX is shown as
MathML by a small converter (:func:`latex_mathml`) with its source in a
``<code>`` block.

Input is the JSON report (:func:`ntk_equiv.report.to_json`, schema v3), so
``verify --html`` and ``report saved.json --html`` render the same page.
"""
from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .claims import controls as ctl
from .claims import paper as pp
from .claims.registry import LEVEL_NAMES, REGISTRY, load

#: verdict class -> (fill colour, legend text)
CLASSES: dict[str, tuple[str, str]] = {
    "holds": ("#7fc97f", "holds"),
    "refuted": ("#fdb462", "refuted as printed, holds as corrected"),
    "limit": ("#80b1d3", "holds only in the infinite-width limit"),
    "gap": ("#bc80bd", "gap in the proof (holds only in the limit)"),
    "failed": ("#fb8072", "failed or error (verdict not reached, check failed)"),
    "notrun": ("#e0e0e0", "not run in this report"),
}
#: edge kind -> (Graphviz style, legend text)
EDGES: dict[str, tuple[str, str]] = {
    "uses": ("solid", "uses (the target rests on the source)"),
    "generalises": ("dashed", "generalises (the claim contains the statement)"),
    "relates": ("dotted", "related (see the panel for how)"),
}


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    kind: str  # "statement" or "claim"
    cls: str  # a key of CLASSES
    title: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # a key of EDGES
    label: str = ""


# --------------------------------------------------------------------------- #
# the graph
# --------------------------------------------------------------------------- #
def node_id(key: str) -> str:
    """``"5.4"`` -> ``"S5_4"``, ``"C6a"`` -> ``"C6a"`` (an HTML/DOT-safe id)."""
    return "S" + key.replace(".", "_") if key[:1].isdigit() else key


def statement_class(verdict: Iterable[str] | None) -> str:
    """The colour class of a reached verdict (a gap outranks the limit)."""
    if verdict is None:
        return "notrun"
    v = set(verdict)
    if v & set(pp.FAILED_VERDICTS) or not v:
        return "failed"
    if "gap in the proof" in v:
        return "gap"
    if "refuted as printed" in v:
        return "refuted"
    if "holds only in the limit" in v:
        return "limit"
    return "holds"


def claim_class(status: str | None) -> str:
    return {"pass": "holds", "FAIL": "failed"}.get(status or "", "notrun")


def graph(doc: Mapping) -> tuple[list[Node], list[Edge]]:
    """Every paper statement and every registered claim (one node each, those
    absent from ``doc`` marked not run), with uses/generalises/related edges."""
    load()
    done = {s["number"]: s for s in doc.get("statements", [])}
    status = {c["id"]: c["status"] for c in doc.get("claims", [])}
    nodes = []
    for s in pp.STATEMENTS:
        st = done.get(s.number)
        if st is not None and not st["as_expected"]:
            cls = "failed"
        else:
            cls = statement_class(None if st is None else st["verdict"])
        nodes.append(Node(node_id(s.number), s.label + (f" ({s.arxiv})" if s.arxiv else ""), "statement", cls,
                          s.title))
    for cid, c in REGISTRY.items():
        nodes.append(Node(node_id(cid), cid, "claim", claim_class(status.get(cid)), c.title))
    edges = [Edge(node_id(d), node_id(cid), "uses") for cid, c in REGISTRY.items() for d in c.depends_on
             if d in REGISTRY]
    related = []
    for s in pp.STATEMENTS:
        for cid, rel in s.claims:
            if cid not in REGISTRY:
                continue
            if rel.startswith("uses"):  # the claim uses the statement
                edges.append(Edge(node_id(s.number), node_id(cid), "uses", rel))
            elif rel.startswith("generalises"):
                edges.append(Edge(node_id(cid), node_id(s.number), "generalises", rel))
            else:
                related.append(Edge(node_id(cid), node_id(s.number), "relates", rel))
    for e in related:  # a relation has no direction of its own: drawn along the graph, never against it
        edges.append(Edge(e.target, e.source, e.kind, e.label) if _reaches(edges, e.target, e.source) else e)
    return nodes, edges


def _reaches(edges: list[Edge], start: str, goal: str) -> bool:
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(e.target for e in edges if e.source == n)
    return False


# --------------------------------------------------------------------------- #
# layout: Graphviz, or layers in Python
# --------------------------------------------------------------------------- #
def _dot_source(nodes: list[Node], edges: list[Edge]) -> str:
    q = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    lines = ["digraph G {", '  graph [rankdir=TB, nodesep=0.25, ranksep=0.45, bgcolor="transparent"];',
             '  node [fontname="Helvetica", fontsize=11, style="filled,rounded", shape=box];',
             '  edge [color="#666666", arrowsize=0.6];']
    for n in nodes:
        shape = "ellipse" if n.kind == "statement" else "box"
        lines.append(f"  {n.id} [id={q(n.id)}, label={q(n.label)}, tooltip={q(n.title)}, shape={shape}, "
                     f"fillcolor={q(CLASSES[n.cls][0])}, class={q('node ' + n.kind + ' ' + n.cls)}];")
    for e in edges:
        lines.append(f"  {e.source} -> {e.target} [style={EDGES[e.kind][0]}, tooltip={q(e.label or e.kind)}];")
    return "\n".join(lines + ["}"])


def graphviz_svg(nodes: list[Node], edges: list[Edge], dot: str | None = None) -> str | None:
    """The graph as inline SVG laid out by ``dot``, or ``None`` if ``dot`` is
    missing or fails."""
    dot = dot or shutil.which("dot")
    if not dot:
        return None
    try:
        out = subprocess.run([dot, "-Tsvg"], input=_dot_source(nodes, edges), capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    start = out.find("<svg")
    return out[start:] if start >= 0 else None


def layered_layout(nodes: list[Node], edges: list[Edge]) -> dict[str, tuple[int, int]]:
    """``{node id: (layer, position in layer)}``: a node's layer is the length
    of the longest path reaching it; within a layer nodes are ordered by the
    mean position of their predecessors (two sweeps)."""
    ids = [n.id for n in nodes]
    preds: dict[str, list[str]] = {i: [] for i in ids}
    for e in edges:
        if e.source in preds and e.target in preds:
            preds[e.target].append(e.source)
    layer: dict[str, int] = {}

    def depth(i: str, seen: frozenset[str] = frozenset()) -> int:
        if i not in layer:
            ps = [p for p in preds[i] if p not in seen]  # a cycle is cut where it closes
            layer[i] = 0 if not ps else 1 + max(depth(p, seen | {i}) for p in ps)
        return layer[i]

    for i in ids:
        depth(i)
    rows: dict[int, list[str]] = {}
    for i in ids:
        rows.setdefault(layer[i], []).append(i)
    pos = {i: k for row in rows.values() for k, i in enumerate(row)}
    for _ in range(2):
        for lv in sorted(rows):
            row = rows[lv]
            bary = {i: (sum(pos[p] for p in preds[i]) / len(preds[i]) if preds[i] else pos[i]) for i in row}
            row.sort(key=lambda i: (bary[i], pos[i]))
            pos.update({i: k for k, i in enumerate(row)})
    return {i: (layer[i], pos[i]) for i in ids}


def python_svg(nodes: list[Node], edges: list[Edge]) -> str:
    """The graph as SVG from :func:`layered_layout` (straight edges)."""
    grid = layered_layout(nodes, edges)
    width = {n.id: 14 + 7 * len(n.label) for n in nodes}
    per_layer: dict[int, list[str]] = {}
    for i, (lv, _) in sorted(grid.items(), key=lambda kv: kv[1]):
        per_layer.setdefault(lv, []).append(i)
    row_w = {lv: sum(width[i] + 16 for i in row) for lv, row in per_layer.items()}
    total = max(row_w.values()) + 20
    xy: dict[str, tuple[float, float]] = {}
    for lv, row in per_layer.items():
        x = (total - row_w[lv]) / 2 + 8
        for i in row:
            xy[i] = (x + width[i] / 2, 30 + 70 * lv)
            x += width[i] + 16
    height = 30 + 70 * max(per_layer) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total:.0f}pt" height="{height}pt" '
           f'viewBox="0 0 {total:.0f} {height}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>']
    dash = {"solid": "", "dashed": ' stroke-dasharray="6,3"', "dotted": ' stroke-dasharray="2,3"'}
    for e in edges:
        (x1, y1), (x2, y2) = xy[e.source], xy[e.target]
        out.append(f'<g class="edge"><title>{html.escape(e.label or e.kind)}</title><line x1="{x1:.0f}" '
                   f'y1="{y1 + 12:.0f}" x2="{x2:.0f}" y2="{y2 - 12:.0f}" stroke="#666"'
                   f'{dash[EDGES[e.kind][0]]} marker-end="url(#arrow)"/></g>')
    for n in nodes:
        x, y = xy[n.id]
        w = width[n.id]
        rx = 12 if n.kind == "statement" else 4
        out.append(f'<g id="{n.id}" class="node {n.kind} {n.cls}"><title>{html.escape(n.title)}</title>'
                   f'<rect x="{x - w / 2:.0f}" y="{y - 12}" width="{w}" height="24" rx="{rx}" '
                   f'fill="{CLASSES[n.cls][0]}" stroke="#333"/><text x="{x:.0f}" y="{y + 4}" '
                   f'text-anchor="middle" font-family="Helvetica" font-size="11">{html.escape(n.label)}</text></g>')
    return "\n".join(out + ["</svg>"])


def graph_svg(nodes: list[Node], edges: list[Edge], use_dot: bool = True) -> tuple[str, str]:
    """``(svg, how it was laid out)``."""
    svg = graphviz_svg(nodes, edges) if use_dot else None
    if svg is not None:
        return svg, "laid out by Graphviz dot at report time"
    why = "dot not used" if not use_dot else "Graphviz dot not found"
    return python_svg(nodes, edges), f"laid out in Python (layered layout; {why})"


# --------------------------------------------------------------------------- #
# mathematics
# --------------------------------------------------------------------------- #
GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eps": "ε", "eta": "η",
         "theta": "θ", "vartheta": "ϑ", "kappa": "κ", "lambda": "λ", "mu": "μ", "xi": "ξ", "pi": "π",
         "sigma": "σ", "sw": "σ_w", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
         "Theta": "Θ", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Gamma": "Γ", "Delta": "Δ", "Lambda": "Λ",
         "Omega": "Ω", "inf": "∞", "infty": "∞", "sum": "∑"}
_SYMBOLS = (("<=", "≤"), (">=", "≥"), ("->", "→"), ("!=", "≠"), ("~=", "≈"), ("+-", "±"))
_TOKEN = re.compile(r"[A-Za-z]+|[_^]\{[^{}]*\}|[_^][A-Za-z0-9*~]+|[_^][+-]?[0-9]+|<=|>=|->|!=|~=|\+-|.", re.S)


def _script(body: str) -> str:
    return notation_html(body[1:-1] if body.startswith("{") else body)


def notation_html(text: str) -> str:
    """The statements' plain-text notation as HTML: Greek names as letters,
    ``_x`` / ``^{-1}`` as sub/superscripts, ``<=`` as ``≤`` (the rest escaped)."""
    out = []
    for tok in _TOKEN.findall(text):
        if tok[0] in "_^" and len(tok) > 1:
            tag = "sub" if tok[0] == "_" else "sup"
            out.append(f"<{tag}>{_script(tok[1:])}</{tag}>")
        elif tok in GREEK:
            out.append(html.escape(GREEK[tok]))
        else:
            out.append(html.escape(dict(_SYMBOLS).get(tok, tok)))
    return "".join(out)


_TEX_SYMBOLS = {"sim": "∼", "to": "→", "preceq": "⪯", "succeq": "⪰", "le": "≤", "leq": "≤", "ge": "≥",
                "geq": "≥", "cdot": "⋅", "times": "×", "mid": "∣", "infty": "∞", "sum": "∑", "prod": "∏",
                "partial": "∂", "nabla": "∇", "approx": "≈", "neq": "≠", "ne": "≠", "otimes": "⊗", "|": "‖",
                "langle": "⟨", "rangle": "⟩", "ldots": "…", "dots": "…", "in": "∈", "top": "⊤"}
_TEX_ESCAPED = set("_%&#{}$")
_TEX_FUNCTIONS = {"log", "exp", "det", "tr", "min", "max", "lim", "sup", "inf", "sin", "cos", "tanh", "erf", "diag",
                  "Var", "Cov", "rank"}
_TEX_SYMBOLS.update({"lVert": "‖", "rVert": "‖", "lvert": "|", "rvert": "|", "circ": "∘", "star": "⋆",
                     "ast": "∗", "propto": "∝", "equiv": "≡", "forall": "∀", "exists": "∃", "cup": "∪", "cap": "∩",
                     "subseteq": "⊆", "oplus": "⊕", "pm": "±", "mp": "∓", "Rightarrow": "⇒", "mapsto": "↦"})
_TEX_SPACE = {"quad": "1em", "qquad": "2em", " ": "0.3em", ",": "0.17em", ";": "0.28em"}
_TEX_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_]|[0-9]+(?:\.[0-9]+)?|[A-Za-z]|\S")


class _Tex:
    """A recursive-descent reader of the LaTeX subset the claims use."""

    def __init__(self, tex: str):
        self.toks = _TEX_TOKEN.findall(tex)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def row(self, stop: str | None = None) -> str:
        parts = []
        while self.peek() is not None and self.peek() != stop:
            parts.append(self.scripted())
        if stop is not None and self.peek() == stop:
            self.take()
        return "".join(parts)

    def group(self) -> str:
        if self.peek() == "{":
            self.take()
            return f"<mrow>{self.row('}')}</mrow>"
        return self.atom() if self.peek() is not None else "<mrow></mrow>"

    def text_group(self) -> str:
        if self.peek() != "{":
            return html.escape(self.take()) if self.peek() is not None else ""
        self.take()
        depth, parts = 1, []
        while self.peek() is not None:
            tok = self.take()
            depth += tok == "{"
            depth -= tok == "}"
            if depth == 0:
                break
            parts.append(tok)
        # escaped characters (\_ in a name) stand for themselves
        return html.escape(re.sub(r"\\([_%&#{}$ ])", r"\1", "".join(parts)))

    def scripted(self) -> str:
        base = self.atom()
        sub = sup = None
        while self.peek() in ("_", "^"):
            which = self.take()
            arg = self.group()
            sub, sup = (arg, sup) if which == "_" else (sub, arg)
        if sub and sup:
            return f"<msubsup>{base}{sub}{sup}</msubsup>"
        if sub:
            return f"<msub>{base}{sub}</msub>"
        if sup:
            return f"<msup>{base}{sup}</msup>"
        return base

    def atom(self) -> str:
        tok = self.take()
        if tok == "{":
            return f"<mrow>{self.row('}')}</mrow>"
        if tok[0] == "\\":
            return self.command(tok[1:])
        if tok[0].isdigit():
            return f"<mn>{tok}</mn>"
        if tok.isalpha():
            return f"<mi>{tok}</mi>"
        return f"<mo>{html.escape(tok)}</mo>"

    def command(self, name: str) -> str:
        if name in _TEX_ESCAPED:
            return f"<mi>{html.escape(name)}</mi>"
        if name in _TEX_FUNCTIONS:
            return f'<mi mathvariant="normal">{name}</mi>'
        if name in GREEK and name != "inf":
            return f"<mi>{GREEK[name]}</mi>"
        if name in _TEX_SYMBOLS:
            return f"<mo>{_TEX_SYMBOLS[name]}</mo>"
        if name in _TEX_SPACE:
            return f'<mspace width="{_TEX_SPACE[name]}"/>'
        if name in ("big", "Big", "bigg", "left", "right"):
            return self.atom() if self.peek() is not None else ""
        if name in ("mathrm", "operatorname", "text", "textrm", "mathsf", "mathit"):
            return f'<mi mathvariant="normal">{self.text_group()}</mi>'
        if name == "mathbb":
            return f'<mi mathvariant="double-struck">{self.text_group()}</mi>'
        if name == "mathcal":
            return f'<mi mathvariant="script">{self.text_group()}</mi>'
        if name in ("hat", "tilde", "bar"):
            accent = {"hat": "^", "tilde": "~", "bar": "¯"}[name]
            return f'<mover accent="true">{self.group()}<mo>{accent}</mo></mover>'
        if name in ("mathbf", "boldsymbol", "bm"):
            return f'<mi mathvariant="bold">{self.text_group()}</mi>'
        if name in ("frac", "tfrac", "dfrac"):
            return f"<mfrac>{self.group()}{self.group()}</mfrac>"
        if name == "sqrt":
            return f"<msqrt>{self.group()}</msqrt>"
        if name == "overset":
            over = self.group()
            return f"<mover>{self.group()}{over}</mover>"
        return f'<mi mathvariant="normal">\\{html.escape(name)}</mi>'  # unknown: shown as written


def latex_mathml(tex: str) -> str:
    """``tex`` (the subset the claims use) as a MathML ``<math>`` element;
    an unknown command is shown as its source."""
    try:
        body = _Tex(tex).row()
    except IndexError:  # unbalanced input: the source, not a wrong formula
        body = f"<mtext>{html.escape(tex)}</mtext>"
    return f'<math display="block"><mrow>{body}</mrow></math>'


# --------------------------------------------------------------------------- #
# panels
# --------------------------------------------------------------------------- #
def _esc(s) -> str:
    return html.escape(str(s))


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def result_html(r: Mapping | None, form: str = "") -> str:
    """One check's record: outcome, statistic, residual against threshold,
    what was checked (its reason, in words), power."""
    if r is None:
        return ""
    ok = r["passed"]
    mark = "passes" if ok else ("raised" if r["error"] else "fails")
    head = f'<span class="{"ok" if ok else "bad"}">{form + ": " if form else ""}{mark}</span>'
    stat = r["details"].get("statistic")
    items = [head]
    if stat:
        items.append(f"statistic: <code>{_esc(stat)}</code>")
    if r["level"] == "S" and r["tolerance"] == 0:  # an exact proof: no residual to speak of
        items.append("the difference " + ("simplifies to exactly 0" if ok else "does not simplify to 0"))
    elif r["residual"] is not None or r["tolerance"] is not None:
        rel = "≤" if ok else ">"
        items.append(f"residual {_num(r['residual'])} {rel} threshold {_num(r['tolerance'])}")
    items.append(f"{r['seconds']:.1f} s")
    parts = [f'<p class="res">{" · ".join(items)}</p>']
    if r["error"]:
        parts.append(f'<p class="bad">error: {_esc(r["error"])}</p>')
    parts.append(f'<p class="why">{_esc(r["reason"])}</p>')
    power = r["details"].get(ctl.POWER_KEY)
    if isinstance(power, Mapping):
        cells = ", ".join(f"{_esc(k)}: {_num(v)}" for k, v in power.items())
        how = r["details"].get("power_method")
        parts.append(f'<p class="power">power (probability of failing under each named alternative): {cells}'
                     + (f" <small>({_esc(how)})</small>" if how else "") + "</p>")
    return "\n".join(parts)


def _controls_html(rows: list[Mapping]) -> str:
    if not rows:
        return ""
    trs = "".join(f'<tr><td>{_esc(" ".join(c["levels"]))}</td><td>{_esc(c["control"])}: {_esc(c["breaks"])}</td>'
                  f'<td>{_esc(c["baseline"])}</td><td>{_esc(c["under_control"])}</td><td>{_num(c["power"])}</td>'
                  f'<td class="{"ok" if c["passed"] else "bad"}">{_esc(c["outcome"])}'
                  f'{" (" + _esc(c["note"]) + ")" if c["note"] else ""}</td></tr>' for c in rows)
    return ("<h4>Negative controls</h4><table><tr><th>levels</th><th>control</th><th>without</th><th>under it</th>"
            f"<th>power</th><th>outcome</th></tr>{trs}</table>")


def _figures_html(claim_id: str, figures: Mapping[str, list[tuple[str, bytes]]]) -> str:
    out = []
    for title, png in figures.get(claim_id, []):
        data = base64.b64encode(png).decode("ascii")
        out.append(f'<figure><img alt="{_esc(title)}" src="data:image/png;base64,{data}"/>'
                   f"<figcaption>{_esc(title)} (paper_checks)</figcaption></figure>")
    return "\n".join(out)


def statement_panel(s: pp.Statement, st: Mapping | None, controls: list[Mapping],
                    figures: Mapping[str, list[tuple[str, bytes]]]) -> str:
    arxiv = f" (arXiv {s.arxiv})" if s.arxiv else " (arXiv number not reported)"
    parts = [f"<h2>{_esc(s.label)}{_esc(arxiv)}: {_esc(s.title)}</h2>"]
    if st is None:
        parts.append('<p class="notrun">Not run in this report.</p>')
    else:
        cls = "ok" if st["as_expected"] else "bad"
        parts.append(f'<p>Verdict reached: <b class="{cls}">{_esc(" + ".join(st["verdict"]))}</b>; documented: '
                     f'{_esc(" + ".join(st["expected_verdict"]))}'
                     f'{"" if st["as_expected"] else " (NOT as documented: the run fails)"}.</p>')
    parts.append(f'<h3>As printed</h3><p class="math">{notation_html(s.printed.text)}</p>')
    if s.corrected is not None:
        parts.append(f'<h3>As corrected</h3><p class="math">{notation_html(s.corrected.text)}</p>')
    if s.defect:
        parts.append(f'<h3>Defect</h3><p>{notation_html(s.defect)}</p>')
    if s.claims:
        lis = "".join(f'<li><a href="#" data-node="{node_id(c)}">{_esc(c)}</a>: {notation_html(rel)}</li>'
                      for c, rel in s.claims)
        parts.append(f"<h3>Linked claims</h3><ul>{lis}</ul>")
    if st is not None and st["levels"]:
        parts.append("<h3>Checks, level by level</h3>")
        for lo in st["levels"]:
            src = f" (the claim check {lo['source']})" if lo["reused_claim"] else ""
            parts.append(f'<div class="level"><h4>{_esc(lo["level"])} ({_esc(LEVEL_NAMES[lo["level"]])}){_esc(src)}'
                         f'</h4>{result_html(lo["printed"], "printed form")}'
                         f'{result_html(lo["corrected"], "corrected form")}</div>')
    if s.property_tests:
        parts.append(f"<p>P ({LEVEL_NAMES['P']}): <code>pytest {_esc(s.property_tests)}</code></p>")
    parts.append(_controls_html(controls))
    for cid in dict.fromkeys(c for c, _ in s.claims):
        fig = _figures_html(cid, figures)
        if fig:
            parts.append(f"<h3>Figures of {_esc(cid)}</h3>{fig}")
    return "\n".join(p for p in parts if p)


def claim_panel(cid: str, c: Mapping | None, results: list[Mapping], controls: list[Mapping],
                figures: Mapping[str, list[tuple[str, bytes]]]) -> str:
    claim = REGISTRY[cid]
    parts = [f"<h2>{_esc(cid)}: {_esc(claim.title)}</h2>",
             f"<p>Status in this report: <b>{_esc(c['status'] if c else 'not run')}</b>.</p>",
             f'<h3>Statement</h3><p class="math">{notation_html(claim.statement)}</p>',
             latex_mathml(claim.latex), f"<details><summary>LaTeX source</summary><pre><code>{_esc(claim.latex)}"
             "</code></pre></details>"]
    if claim.depends_on:
        lis = ", ".join(f'<a href="#" data-node="{node_id(d)}">{_esc(d)}</a>' for d in claim.depends_on)
        parts.append(f"<p>Uses: {lis}</p>")
    linked = [(s, rel) for s in pp.STATEMENTS for k, rel in s.claims if k == cid]
    if linked:
        lis = "".join(f'<li><a href="#" data-node="{node_id(s.number)}">{_esc(s.label)}</a>: {notation_html(rel)}</li>'
                      for s, rel in linked)
        parts.append(f"<h3>The paper's statements</h3><ul>{lis}</ul>")
    if results:
        parts.append("<h3>Checks, level by level</h3>")
        for r in results:
            parts.append(f'<div class="level"><h4>{_esc(r["level"])} ({_esc(LEVEL_NAMES[r["level"]])})</h4>'
                         f"{result_html(r)}</div>")
    if claim.property_tests:
        parts.append(f"<p>P ({LEVEL_NAMES['P']}): <code>pytest {_esc(claim.property_tests)}</code></p>")
    parts.append(_controls_html(controls))
    parts.append(_figures_html(cid, figures))
    return "\n".join(p for p in parts if p)


# --------------------------------------------------------------------------- #
# the page
# --------------------------------------------------------------------------- #
_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222}
header{padding:10px 16px;background:#f4f4f4;border-bottom:1px solid #ccc}
header h1{font-size:18px;margin:0 0 4px}
main{display:flex;gap:0;align-items:flex-start}
#graph{flex:0 0 52%;overflow:auto;padding:8px;border-right:1px solid #ddd;max-height:calc(100vh - 90px)}
#graph svg{max-width:100%;height:auto}
#panel{flex:1;padding:8px 16px;overflow:auto;max-height:calc(100vh - 90px)}
.panel{display:none}.panel.shown{display:block}
g.node{cursor:pointer}g.node.selected rect,g.node.selected path,g.node.selected polygon,g.node.selected ellipse{
stroke:#000;stroke-width:3}
.legend span.sw{display:inline-block;width:12px;height:12px;border:1px solid #333;margin:0 4px 0 10px;
vertical-align:middle}
.ok{color:#1a7f37}.bad{color:#c0392b;font-weight:bold}.notrun{color:#777}
.why{color:#444;font-size:13px}.power{font-size:13px}.res{margin-bottom:2px}
.math{font-family:"Cambria Math","STIX Two Math","Latin Modern Math",serif;font-size:15px}
.level{border-left:3px solid #ddd;padding-left:8px;margin:6px 0}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}
figure img{max-width:100%}small{color:#666}
"""

_JS = """
(function(){
  function show(id){
    document.querySelectorAll('.panel').forEach(function(p){p.classList.remove('shown');});
    document.querySelectorAll('g.node').forEach(function(g){g.classList.remove('selected');});
    var p=document.getElementById('panel-'+id); if(p){p.classList.add('shown');}
    var g=document.getElementById(id); if(g){g.classList.add('selected');}
  }
  document.querySelectorAll('g.node').forEach(function(g){
    g.addEventListener('click',function(){show(g.id);});
  });
  document.querySelectorAll('a[data-node]').forEach(function(a){
    a.addEventListener('click',function(ev){ev.preventDefault();show(a.getAttribute('data-node'));});
  });
  window.ntkShow=show;
})();
"""


def load_figures(directory: Path | None) -> dict[str, list[tuple[str, bytes]]]:
    """``{claim id: [(title, png bytes)]}`` of the paper_checks figures found in
    ``directory`` (``<key>.png``, the claim and title from the figure module)."""
    if directory is None or not Path(directory).is_dir():
        return {}
    import importlib

    from paper_checks import FIGURES

    out: dict[str, list[tuple[str, bytes]]] = {}
    for key in FIGURES:
        png = Path(directory) / f"{key}.png"
        if png.is_file():
            mod = importlib.import_module(f"paper_checks.{key}")
            out.setdefault(mod.CLAIM, []).append((mod.TITLE, png.read_bytes()))
    return out


def render_html(doc: Mapping, figures: Mapping[str, list[tuple[str, bytes]]] | None = None,
                use_dot: bool = True, derivations: str | None = None) -> str:
    """The HTML page of a JSON report ``doc`` (schema v3); ``figures`` from
    :func:`load_figures`; ``derivations``: a link to the rendered derivations."""
    figures = figures or {}
    nodes, edges = graph(doc)
    svg, how = graph_svg(nodes, edges, use_dot)
    done = {s["number"]: s for s in doc.get("statements", [])}
    claims = {c["id"]: c for c in doc.get("claims", [])}
    controls = doc.get("controls", [])
    panels = []
    for s in pp.STATEMENTS:
        rows = [c for c in controls if c["kind"] == "statement" and c["id"] == s.number]
        panels.append((node_id(s.number), statement_panel(s, done.get(s.number), rows, figures)))
    for cid in REGISTRY:
        results = [r for r in doc.get("results", []) if r["claim"] == cid]
        rows = [c for c in controls if c["kind"] == "claim" and c["id"] == cid]
        panels.append((node_id(cid), claim_panel(cid, claims.get(cid), results, rows, figures)))
    legend = "".join(f'<span class="sw" style="background:{col}"></span>{_esc(txt)}' for col, txt in CLASSES.values())
    legend_e = " · ".join(f"{style} arrow: {_esc(txt)}" for style, txt in EDGES.values())
    summary = doc.get("summary", {})
    banner = (f"{summary.get('passed', 0)}/{summary.get('checks', 0)} claim checks passed; "
              f"{summary.get('statements_as_expected', 0)}/{summary.get('statements', 0)} statements reached "
              f"their documented verdict" + (f"; {summary.get('controls_caught', 0)}/{summary.get('controls', 0)} "
                                             "negative controls caught their check" if doc.get("controls_requested")
                                             else ""))
    deriv = f' · <a href="{_esc(derivations)}">the derivations, rendered</a>' if derivations else ""
    intro = ('<div class="panel shown" id="panel-intro"><h2>How to read this</h2><p>Click a node: ellipses are the '
             "paper's numbered statements (thesis numbering, arXiv number in brackets), boxes the project's claims. "
             "The panel shows the statement as printed and as corrected, its defect, each level's check (S symbolic, "
             "H high precision, C certified: ball arithmetic, E empirical) with its statistic, threshold and what it tests, and the negative "
             "controls and stated power where the run has them.</p><p>Mathematics: plain-text notation typeset "
             "with Unicode and sub/superscripts; claims' LaTeX as MathML (no KaTeX: the page works offline).</p></div>")
    body = "\n".join(f'<div class="panel" id="panel-{i}">{p}</div>' for i, p in panels)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/>
<title>ntk-equiv verification report</title>
<style>{_CSS}</style></head>
<body>
<header><h1>ntk-equiv: the paper's statements and the claims (arXiv 2602.19964)</h1>
<div>{'PASSED' if doc.get('passed') else 'FAILED'}: {_esc(banner)} · <code>{_esc(doc.get('command', ''))}</code>
at {_esc(doc.get('created', ''))} · graph {_esc(how)}{deriv}</div>
<div class="legend">{legend}</div><div class="legend"><small>{legend_e}</small></div></header>
<main><div id="graph" data-layout="{'dot' if 'Graphviz' in how else 'python'}">{svg}</div>
<div id="panel">{intro}
{body}</div></main>
<script>{_JS}</script>
</body></html>
"""
