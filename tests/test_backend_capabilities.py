"""The backend object decides float64 vs high precision (issue 16.7): code asks
a :class:`~ntk_equiv.precision.Backend` for a capability (``vectorised``,
``max_cond``, ``data_products``, ``ldexp``) or asks
:func:`~ntk_equiv.precision.is_high_precision` about an array, never compares
the backend's name or an array's dtype with ``object``.

The source is read with :mod:`ast`, so a comment or a string that mentions such
a test does not count, and any spelling of the comparison does
(``bk.name == "float64"``, ``"mpmath" != self.bk.name``, ``x.dtype == object``,
``x.dtype is object``, ``x.dtype.kind == "O"``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from ntk_equiv.precision import F64, Backend, Float64Backend, MpmathBackend, is_high_precision

PACKAGE = Path(__file__).resolve().parents[1] / "ntk_equiv"

#: Where such tests are allowed, and why: precision.py is the one place that tells
#: backends and arrays apart; validation.py classifies the user's input before any
#: backend exists and depends on the errors alone (it cannot import precision).
ALLOWED = {"precision.py", "validation.py"}

BACKEND_NAMES = {"float64", "mpmath", "sympy", "arb", "abstract"}


def _is_name_attr(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "name"


def _is_backend_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in BACKEND_NAMES


def _is_dtype(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "dtype"


def _is_object(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "object") or (
        isinstance(node, ast.Attribute) and node.attr in ("object_", "object"))


def _is_kind(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "kind" and _is_dtype(node.value)


def offences(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of each comparison of a backend's name with a backend
    name, or of an array's dtype with ``object`` (or of its kind with ``"O"``)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        for a, b in zip(sides, sides[1:]):
            pair = ((a, b), (b, a))
            if (any(_is_name_attr(x) and _is_backend_name(y) for x, y in pair)
                    or any(_is_dtype(x) and _is_object(y) for x, y in pair)
                    or any(_is_kind(x) and isinstance(y, ast.Constant) and y.value == "O" for x, y in pair)):
                out.append((node.lineno, ast.unparse(node)))
    return out


def test_no_backend_name_or_object_dtype_tests_outside_precision():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() in ALLOWED:
            continue
        found += [f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
                  for line, text in offences(path.read_text(encoding="utf-8"))]
    assert not found, "decide by a Backend capability or precision.is_high_precision, not by name/dtype:\n" + \
        "\n".join(found)


@pytest.mark.parametrize("code", [
    'if bk.name == "float64": pass',
    'x = 1 if "mpmath" != self.bk.name else 2',
    'ok = v.dtype == object',
    'ok = v.dtype is not object',
    'ok = a.dtype != np.object_',
    'ok = a.dtype.kind == "O"',
])
def test_the_source_check_catches_each_spelling(code):
    assert offences(code), code


@pytest.mark.parametrize("code", [
    'if bk.vectorised: pass', 'ok = act.name == "relu"', 'x = np.zeros(3, dtype=object)',
    'msg = f"in {bk.name}"', 'ok = is_high_precision(v)',
])
def test_the_source_check_passes_legitimate_code(code):
    assert not offences(code), code


def test_capabilities_of_the_backends():
    mp = MpmathBackend(30)
    assert F64.vectorised and not mp.vectorised
    assert F64.max_cond == 1e12 and mp.max_cond == 10.0 ** 20
    # the base class's default condition limit keeps 10 digits: 1e-10 / eps
    assert Backend.max_cond.fget(mp) == pytest.approx(1e-10 / float(mp.eps), rel=1e-12)
    assert mp.ldexp(3, -2) == mp.ctx.mpf(0.75) and Backend.ldexp(mp, 3, -2) == mp.ctx.mpf(0.75)
    assert isinstance(F64, Float64Backend) and not is_high_precision(np.zeros(2))
    assert is_high_precision(mp.asarray(np.zeros(2)))


def test_data_products_exact_at_high_precision():
    # the exact product of float64 data has one rounding: 0.1 * 0.1 in mpf of the float 0.1, not the
    # float64 product, and not a sum rounded term by term
    mp = MpmathBackend(40)
    x = np.array([[0.1, 1e-20, 3.0]])
    got = mp.data_products(x, x, lambda u, v: u @ v.T)[0, 0]
    ctx = mp.ctx
    exact = sum(ctx.mpf(float(v)) ** 2 for v in x[0])
    assert abs(got - exact) <= abs(exact) * ctx.mpf(10) ** (-mp.working_dps + 1)
    assert got != ctx.mpf(float((x @ x.T)[0, 0]))  # the float64 product differs from the exact one
    assert F64.data_products(x, x, lambda u, v: u @ v.T)[0, 0] == (x @ x.T)[0, 0]


class _ObjectBackend(MpmathBackend):
    """A fourth backend on object arrays, stated only by its capabilities: the
    mpmath numbers with the base class's defaults (no mpmath-specific
    ``ldexp``) and another name."""

    name = "another"

    def __post_init__(self):
        super().__post_init__()
        self.name = "another"

    def ldexp(self, v, e):
        return Backend.ldexp(self, v, e)


class _RenamedFloat64(Float64Backend):
    name = "machine"


def _results(x, dps):
    import ntk_equiv as ne

    arch = ne.serial(ne.Dense(1.3, 0.2), ne.Erf(), ne.Dense(0.9, 0.1))
    cnn = ne.serial(ne.Conv((2,), sigma_w=1.1, sigma_b=0.1), ne.Relu(), ne.AvgPool((2,)), ne.Flatten(), ne.Dense())
    prefixed = ne.serial(ne.LayerNorm(), ne.Erf(), ne.Dense(1.2, 0.3), ne.Relu(), ne.Dense())
    flat = x.reshape(len(x), -1)
    out = [arch.kernel(flat, dps=dps), prefixed.kernel(flat, dps=dps), cnn.kernel(x, dps=dps)]
    if dps is None:  # the fluctuations' high-precision path takes tens of seconds: float64 only here
        out.append(ne.finite_width(ne.mlp(1, "relu", 1.2, 0.1), flat[:2]))
    return out


def _values(results) -> list:
    out = []
    for r in results:
        for v in vars(r).values() if not hasattr(r, "_fields") else r:
            if hasattr(v, "tolist") or isinstance(v, np.ndarray):
                out.append(np.array(v.tolist() if not isinstance(v, np.ndarray) else v, dtype=object))
    return out


@pytest.mark.parametrize("which", ["object", "float64"])
def test_a_backend_is_known_by_its_capabilities_not_its_name(monkeypatch, which):
    # a backend under another name (an object-array one with the base class's defaults, or float64
    # renamed) gives bitwise the results of the one it copies: no code path reads the name
    from ntk_equiv import fluctuations, kernels, precision

    x = np.array([[[0.3], [-1.2], [0.5]], [[1.0], [0.4], [-0.3]], [[-0.7], [0.2], [0.9]]])
    dps = 30 if which == "object" else None
    ref = _results(x, dps)
    real = precision.backend

    def renamed(d):
        if d is None:
            return _RenamedFloat64() if which == "float64" else real(d)
        return _ObjectBackend(d) if which == "object" else real(d)

    for module in (kernels, fluctuations):
        monkeypatch.setattr(module, "backend", renamed)
    got = _results(x, dps)
    assert len(_values(got)) >= 6
    for a, b in zip(_values(got), _values(ref)):
        assert a.shape == b.shape and all(u == v for u, v in zip(a.ravel(), b.ravel()))
