"""The package's modules import one another without a circle (issue 16.7): the
core (top-level modules and the layers package) and the claims and experiments
subpackages above it.

The imports are read from the source with :mod:`ast` (every ``import`` and
``from ... import`` statement, at module level or inside a function: a lazy
import inside a function still ties the modules together), so the check
needs no import of the package and sees what an import-time test would miss.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ntk_equiv"

#: The folders checked: the core (the top-level modules and the layers package) and
#: the claims and experiments subpackages (the symbolic subpackage is outside this check).
CORE_DIRS = ("", "layers", "claims", "experiments")


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(module: str, is_package: bool, node: ast.ImportFrom, known: set[str]) -> set[str]:
    """Modules a ``from ... import`` loads: ``pkg.name`` for each name that is a
    submodule, and the module itself when a name is taken from it."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    subs = {f"{target}.{alias.name}" for alias in node.names} & known
    return subs | ({target} if len(subs) < len(node.names) else set())


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: {core modules it imports}}`` for the core modules under ``package``
    (an import of ``pkg.sub`` from outside ``pkg`` also runs ``pkg/__init__``)."""
    files = [f for d in CORE_DIRS for f in sorted((package / d).glob("*.py"))]
    names = {_module_name(f, package): f for f in files}
    root = package.name
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                out |= _targets(name, path.name == "__init__.py", node, set(names))
        for dep in list(out):
            parent = dep.rsplit(".", 1)[0]
            if parent != root and parent in names and not name.startswith(parent + "."):
                out.add(parent)
        graph[name] = {d for d in out if d in names and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first = last), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_core_modules_have_no_import_cycle():
    graph = import_graph()
    # the check sees the core and the subpackages
    assert {"ntk_equiv.layers.base", "ntk_equiv.validation", "ntk_equiv.claims.registry",
            "ntk_equiv.claims.paper", "ntk_equiv.claims.rnd_checks", "ntk_equiv.experiments.explicit"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle among the package's modules: " + " -> ".join(cycle)


def test_catalogue_and_results_sit_below_the_registry():
    graph = import_graph()
    assert graph["ntk_equiv.claims.results"] == set()
    assert "ntk_equiv.claims.registry" not in graph["ntk_equiv.claims.paper"]
    assert "ntk_equiv.claims.dynamics_checks" not in graph["ntk_equiv.claims.rnd_checks"]


def test_validation_depends_on_errors_only():
    assert import_graph()["ntk_equiv.validation"] <= {"ntk_equiv.errors"}


def test_layers_and_network_do_not_import_each_other():
    graph = import_graph()
    layer_modules = [m for m in graph if m.startswith("ntk_equiv.layers")]
    assert all("ntk_equiv.network" not in graph[m] and "ntk_equiv.architecture" not in graph[m]
               for m in layer_modules)
    assert not any(d.startswith("ntk_equiv.layers") for d in graph["ntk_equiv.network"])


def test_the_cycle_finder_fails_on_a_lazy_import(tmp_path):
    # the check can fail: a copy of two core modules in which validation imports layers inside a
    # function (as it did before issue 16.7) and layers imports validation
    pkg = tmp_path / "ntk_equiv"
    (pkg / "layers").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "validation.py").write_text("from .errors import X\n\ndef check(a):\n    from .layers import Layer\n")
    (pkg / "layers" / "__init__.py").write_text("from .base import Layer\n")
    (pkg / "layers" / "base.py").write_text("from ..validation import check\n")
    cycle = find_cycle(import_graph(pkg))
    assert cycle is not None and "ntk_equiv.validation" in cycle and "ntk_equiv.layers.base" in cycle


def test_the_cycle_finder_fails_on_a_subpackage_cycle(tmp_path):
    # the check can fail in a subpackage: the registry importing the catalogue lazily while the
    # catalogue imports the registry (as claims/paper.py and claims/registry.py did)
    pkg = tmp_path / "ntk_equiv"
    (pkg / "claims").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "claims" / "__init__.py").write_text("")
    (pkg / "claims" / "registry.py").write_text("def catalogue():\n    from .paper import STATEMENTS\n")
    (pkg / "claims" / "paper.py").write_text("from .registry import Config\n")
    cycle = find_cycle(import_graph(pkg))
    assert cycle is not None and {"ntk_equiv.claims.paper", "ntk_equiv.claims.registry"} <= set(cycle)


@pytest.mark.parametrize("name", ["Conv", "AvgPool", "GlobalAvgPool", "Flatten", "LayerNorm", "Dense", "Act",
                                  "Residual", "Serial", "Layer", "Architecture", "serial", "mlp", "residual"])
def test_public_names_unchanged(name):
    import ntk_equiv as ne

    assert getattr(ne, name) is not None and name in ne.__all__


def test_every_error_type_is_exported_at_the_top_level():
    """A user catches the library's errors as ``ne.XError``: every public class of
    ``ntk_equiv.errors`` (NotCertifiedError was missing) is importable from the package."""
    import inspect

    import ntk_equiv as ne
    from ntk_equiv import errors

    public = [n for n, obj in vars(errors).items()
              if inspect.isclass(obj) and obj.__module__ == errors.__name__ and not n.startswith("_")]
    missing = [n for n in public if n not in ne.__all__ or getattr(ne, n, None) is not vars(errors)[n]]
    assert public and not missing, missing
