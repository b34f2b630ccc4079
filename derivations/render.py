"""Render the derivation notebooks to executed ``.ipynb`` and HTML (optional).

Needs the ``notebooks`` extra (``pip install -e .[notebooks]``: jupytext,
nbclient, nbformat, ipykernel) and, for HTML, nbconvert. Usage::

    python derivations/render.py            # all notebooks -> derivations/out/*.ipynb (+ .html)
    python derivations/render.py 03 05      # selected ones

Set ``NTK_EQUIV_FAST=1`` for the small sizes the test suite uses.
"""
from __future__ import annotations

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def notebooks(selected: list[str]) -> list[pathlib.Path]:
    files = sorted(HERE.glob("0[0-9]_*.py"))
    return [f for f in files if not selected or any(f.name.startswith(s) for s in selected)]


def render(path: pathlib.Path) -> pathlib.Path:
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    out = HERE / "out" / (path.stem + ".ipynb")
    out.parent.mkdir(exist_ok=True)
    jupytext.write(nb, out, fmt="ipynb")
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        return out
    html, _ = HTMLExporter().from_notebook_node(nb)
    out.with_suffix(".html").write_text(html)
    return out


def main(argv: list[str]) -> int:
    try:
        import jupytext  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError:
        print("rendering needs the notebooks extra: pip install -e '.[notebooks]'", file=sys.stderr)
        return 2
    for path in notebooks(argv):
        print("rendered", render(path))
    print("wrote", write_index())
    return 0


def write_index() -> pathlib.Path:
    """``out/index.html``: a link to every rendered notebook (the HTML report links this page)."""
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    items = "".join(f'<li><a href="{p.name}">{p.stem}</a></li>' for p in sorted(out.glob("0[0-9]_*.html")))
    page = out / "index.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ntk-equiv derivations</title></head>"
                    f"<body><h1>The derivation notebooks, executed</h1><ul>{items}</ul></body></html>\n",
                    encoding="utf-8")
    return page


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
