"""Activations and their dual maps.

An activation is data: ``phi`` and ``phi'`` as sympy expressions in ``x``
(from which the numpy and mpmath callables are generated), the points where
they are not smooth, and, when known, the closed-form *dual maps* of docs/theory.md
C1 for ``(u, v) ~ N(0, [[k11, k12], [k12, k22]])``::

    V(k11, k12, k22)    = E[phi(u) phi(v)]
    Vdot(k11, k12, k22) = E[phi'(u) phi'(v)]

Closed forms are written once against a precision backend (float64 or
mpmath, see :mod:`ntk_equiv.precision`). They use the determinant
``det = lo hi`` rather than the correlation, with the Cauchy-Schwarz gaps
``lo = sqrt(k11 k22) - k12`` and ``hi = sqrt(k11 k22) + k12`` that the kernel
state carries without cancellation: the angle is
``theta = atan2(sqrt(det), k12)``, exactly 0 on the diagonal and correct to
``O(eps)`` near correlation +-1, instead of ``arccos(k12 / sqrt(k11 k22))``,
whose error there is ``sqrt(eps) ~ 1e-8``. The closed forms also map the gaps
(``lo', hi'`` of the layer's output), so the next layer gets them accurate too.

Without closed forms, smooth activations go through the Mehler expansion of
:mod:`ntk_equiv.hermite` (per-point Hermite coefficients, a certified tail) and
kinked ones through the 2-D rules of :mod:`ntk_equiv.quadrature`; divergent
expectations raise :class:`~ntk_equiv.errors.QuadratureError`.
"""
from __future__ import annotations

import ast
import difflib
import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import mpmath
import numpy as np
import scipy.special
import sympy
from sympy.calculus.util import singularities
from sympy.parsing.sympy_parser import parse_expr

from . import hermite, quadrature
from .errors import (
    ExpressionError,
    ParameterError,
    PrecisionWarning,
    QuadratureError,
    UnknownActivationError,
)
from .precision import is_high_precision

X = sympy.Symbol("x", real=True)

#: Functions an activation expression may call (name -> sympy object).
ALLOWED_FUNCTIONS: Mapping[str, object] = {
    "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt,
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh,
    "atan": sympy.atan, "asinh": sympy.asinh, "erf": sympy.erf, "erfc": sympy.erfc,
    "abs": sympy.Abs, "Abs": sympy.Abs, "sign": sympy.sign,
    "Heaviside": sympy.Heaviside, "Max": sympy.Max, "Min": sympy.Min,
    "max": sympy.Max, "min": sympy.Min,
    "sigmoid": lambda t: _sigmoid_expr(t),
}
ALLOWED_CONSTANTS: Mapping[str, object] = {"pi": sympy.pi, "E": sympy.E}
_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd,
)


def _numpy_heaviside(t, *_h0):
    # phi'(0) = 0, the convention of backpropagation through ReLU
    return np.heaviside(t, 0.0)


_NUMPY_MODULES = [{"Heaviside": _numpy_heaviside, "DiracDelta": lambda t, *_: np.zeros_like(t)}, "scipy", "numpy"]
# the names a context provides, read off a context of our own (not the global one)
_MPMATH_NAMES = tuple(n for n in dir(mpmath) if not n.startswith("_") and hasattr(mpmath.MPContext(), n))


def _mpmath_modules(ctx) -> list:
    """lambdify's namespace for ``ctx``: every mpmath name the printer may emit
    (``mpf``, ``erf``, ``pi``...) bound to ``ctx``, so that ``phi`` evaluates at
    ``ctx``'s precision and never reads the global ``mpmath.mp``."""
    one, zero = ctx.mpf(1), ctx.mpf(0)
    ns = {n: getattr(ctx, n) for n in _MPMATH_NAMES}
    ns.update({"Heaviside": lambda t, *_h0: one if t > 0 else zero, "DiracDelta": lambda t, *_: zero})
    return [ns, "mpmath"]


#: Bounds on an expression, checked on the text and its syntax tree before
#: sympy evaluates anything: ``"x**10**10**10"`` or ``"x*9**9**9"`` would
#: otherwise make sympy compute integers with billions of digits, and deep
#: nesting overflows the parser's recursion.
MAX_EXPRESSION_LENGTH = 500
MAX_EXPRESSION_DEPTH = 40
#: Largest magnitude of a constant exponent (``x**64`` is fine, ``x**(2**40)`` is not).
MAX_EXPONENT = 64
#: Largest magnitude of a number literal or constant sub-expression.
MAX_LITERAL = 1e100
#: Functions taking exactly one argument (the others: ``Max``/``Min`` take two
#: or more, ``Heaviside`` one or two).
_ARITY = {name: (1, 1) for name in ALLOWED_FUNCTIONS}
_ARITY.update({"Max": (2, 16), "Min": (2, 16), "max": (2, 16), "min": (2, 16), "Heaviside": (1, 2)})


def _tree_depth(tree: ast.AST) -> int:
    depth, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        depth = max(depth, d)
        stack += [(child, d + 1) for child in ast.iter_child_nodes(node)]
    return depth


def _constant_value(node: ast.AST, text: str) -> float | None:
    """The value of a sub-expression made only of numbers and ``+ - * / **``
    (``None`` if it involves ``x``, a function or a constant name), computed in
    float64 with the bounds above, so that sympy never sees ``9**9**9``."""
    def bad(msg):
        return ExpressionError(f"activation expression {text!r}: {msg}")

    if isinstance(node, ast.Constant):
        try:
            v = float(node.value)
        except OverflowError:
            raise bad(f"the number {str(node.value)[:20]}... is too large (|literal| <= {MAX_LITERAL:g})") from None
        if not math.isfinite(v) or abs(v) > MAX_LITERAL:
            raise bad(f"the number {node.value!r} is not finite or too large (|literal| <= {MAX_LITERAL:g})")
        return v
    if isinstance(node, ast.UnaryOp):
        v = _constant_value(node.operand, text)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp):
        left, right = _constant_value(node.left, text), _constant_value(node.right, text)
        if isinstance(node.op, ast.Pow) and right is not None and abs(right) > MAX_EXPONENT:
            raise bad(f"the exponent {right:g} is too large (|constant exponent| <= {MAX_EXPONENT})")
        if left is None or right is None:
            return None
        try:
            if isinstance(node.op, ast.Add):
                v = left + right
            elif isinstance(node.op, ast.Sub):
                v = left - right
            elif isinstance(node.op, ast.Mult):
                v = left * right
            elif isinstance(node.op, ast.Div):
                v = left / right
            else:
                v = left ** right
        except ZeroDivisionError:
            raise bad("division by zero") from None
        except OverflowError:
            v = math.inf
        if isinstance(v, complex):
            raise bad(f"{left:g}**{right:g} is not a real number")
        if not math.isfinite(v) or abs(v) > MAX_LITERAL:
            raise bad(f"a constant sub-expression evaluates to {v:.3g}, beyond |value| <= {MAX_LITERAL:g}")
        return v
    return None


def parse_activation_expression(text: str) -> sympy.Expr:
    """Parse ``text`` into a sympy expression in ``x`` without evaluating
    anything the user wrote beyond arithmetic and :data:`ALLOWED_FUNCTIONS`.

    The text is first checked on its Python syntax tree (only numbers, the
    name ``x``, known functions with their number of arguments and constants,
    ``+ - * / **``; at most :data:`MAX_EXPRESSION_LENGTH` characters and
    :data:`MAX_EXPRESSION_DEPTH` levels; constant exponents at most
    :data:`MAX_EXPONENT` and constants at most :data:`MAX_LITERAL` in
    magnitude), then parsed by ``sympy.parse_expr`` in a namespace holding only
    those names. Every failure is an :class:`ExpressionError`.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an activation expression must be a non-empty string")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"activation expression is {len(text)} characters long; at most "
                              f"{MAX_EXPRESSION_LENGTH} are accepted (an activation is a short formula in x)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse activation expression {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"cannot parse activation expression {text[:60]!r}...: nested too deeply "
                              f"({type(exc).__name__})") from None
    depth = _tree_depth(tree)
    if depth > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(f"activation expression {text[:60]!r} is nested {depth} levels deep; at most "
                              f"{MAX_EXPRESSION_DEPTH} are accepted")
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(
                f"activation expression {text!r} uses {type(node).__name__}; only arithmetic "
                f"(+ - * / **), numbers, x, {sorted(ALLOWED_CONSTANTS)} and the functions "
                f"{sorted(ALLOWED_FUNCTIONS)} are allowed"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)) or (
            isinstance(node, ast.Constant) and isinstance(node.value, bool)
        ):
            raise ExpressionError(f"activation expression {text!r}: only numeric constants are allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in ALLOWED_FUNCTIONS or node.keywords:
                name = getattr(node.func, "id", ast.dump(node.func))
                raise ExpressionError(
                    f"activation expression {text!r} calls {name!r}, which is not one of {sorted(ALLOWED_FUNCTIONS)}"
                    + _call_hint(name))
            lo, hi = _ARITY[node.func.id]
            if not lo <= len(node.args) <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}"
                raise ExpressionError(f"activation expression {text!r}: {node.func.id}() takes {want} "
                                      f"argument{'s' if hi > 1 else ''}, got {len(node.args)}")
        if isinstance(node, ast.Name) and node.id != "x" and node.id not in ALLOWED_FUNCTIONS and node.id not in ALLOWED_CONSTANTS:
            raise ExpressionError(
                f"activation expression {text!r} is not a function of x alone: unknown name {node.id!r}"
            )
        if isinstance(node, ast.Name) and node.id in ALLOWED_FUNCTIONS and id(node) not in called:
            raise ExpressionError(f"activation expression {text!r}: {node.id!r} is a function, not an expression "
                                  f"in x; write {node.id + '(x)'!r}")
    _constant_value_everywhere(tree.body, text)
    namespace = {"Integer": sympy.Integer, "Float": sympy.Float, "Rational": sympy.Rational,
                 "Symbol": sympy.Symbol, "__builtins__": {}}
    local = {"x": X, **ALLOWED_FUNCTIONS, **ALLOWED_CONSTANTS}
    try:
        expr = parse_expr(text, local_dict=local, global_dict=namespace, evaluate=True)
    except Exception as exc:  # noqa: BLE001 - sympy raises TypeError, ValueError, ... on bad calls
        raise ExpressionError(f"activation expression {text!r} is not valid: {type(exc).__name__}: {exc}"[:300]) from None
    if not isinstance(expr, sympy.Expr):
        raise ExpressionError(f"activation expression {text!r} is not a scalar expression")
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise ExpressionError(f"activation expression {text!r} is undefined (it simplifies to {expr}: a division by "
                              "zero or an infinite constant)")
    if expr.free_symbols != {X}:
        raise ExpressionError(f"activation expression {text!r} must depend on x (and only on x)")
    if expr.has(sympy.I):
        raise ExpressionError(f"activation expression {text!r} is complex ({expr}); activations are real functions")
    return expr


def _call_hint(name: str) -> str:
    """A suggestion for a call of an unknown function: the named activation of
    that name, or the nearest allowed functions."""
    if name in CATALOGUE:
        return f"; {name!r} is a named activation: pass the name alone, activation({name!r})"
    close = difflib.get_close_matches(str(name), tuple(ALLOWED_FUNCTIONS), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def _constant_value_everywhere(node: ast.AST, text: str) -> None:
    # every constant sub-expression, including those under calls and next to x
    for sub in ast.walk(node):
        if isinstance(sub, (ast.BinOp, ast.UnaryOp, ast.Constant)):
            _constant_value(sub, text)


#: Points where an expression activation must be real and finite: a grid out to
#: |x| = 20 (pre-activations beyond are ~1e-88 rare at unit variance; exp(x^2)
#: stays finite there, exp(1000 x) does not), powers of ten towards 0, and 0.
_SAMPLE_POINTS = np.unique(np.concatenate([
    np.linspace(-20.0, 20.0, 401), [0.0],
    *[(-(10.0 ** k), 10.0 ** k) for k in range(-12, 2)],
    [-np.pi / 2, np.pi / 2, -1.0 / 3, 1.0 / 3, -0.123, 0.123],
]))


def check_real_valued(expr: sympy.Expr, text: str) -> None:
    """Refuse an expression that is not real-valued and finite on the whole
    real line, with its derivative: poles and domain restrictions found by
    sympy (``1/x``, ``tan(x)``, ``log(x)``, ``sqrt(x)``), then float64 samples
    of ``phi`` and ``phi'`` on a grid to ``|x| = 20`` (``x**(1/3)``, ``x**x``,
    ``log(abs(x))``, ``exp(1000*x)``, ``sqrt(abs(x))``'s derivative at 0).
    The kernel would otherwise come out NaN."""
    try:
        sing = sympy.singularities(expr, X, sympy.S.Reals)
    except Exception:  # noqa: BLE001 - sympy cannot decide: the samples below still apply
        sing = sympy.S.EmptySet
    if sing is not sympy.S.EmptySet and not isinstance(sing, sympy.ConditionSet):
        raise ExpressionError(f"activation expression {text!r} is not finite on the whole real line: it is singular "
                              f"at x in {sing}; use a function finite at every real x")
    try:
        dom = sympy.calculus.util.continuous_domain(expr, X, sympy.S.Reals)
    except Exception:  # noqa: BLE001 - e.g. Heaviside, sign: no domain restriction sympy knows of
        dom = sympy.S.Reals
    if dom != sympy.S.Reals and not isinstance(dom, sympy.ConditionSet):
        raise ExpressionError(f"activation expression {text!r} is real and continuous only on {dom}; an activation "
                              "must be defined on the whole real line (e.g. log(1 + x**2) instead of log(x))")
    for label, e in (("phi", expr), ("phi'", sympy.diff(expr, X).replace(sympy.DiracDelta, lambda *a: sympy.S.Zero))):
        f = sympy.lambdify(X, e, _NUMPY_MODULES)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                vals = np.asarray(f(_SAMPLE_POINTS.copy()), dtype=complex) * np.ones_like(_SAMPLE_POINTS)
            except Exception as exc:  # noqa: BLE001 - numpy or scipy refuses the expression
                raise ExpressionError(f"activation expression {text!r}: {label} cannot be evaluated "
                                      f"({type(exc).__name__}: {exc})"[:300]) from None
        bad = ~np.isfinite(vals) | (np.abs(vals.imag) > 0)
        if np.any(bad):
            i = int(np.argmax(bad))
            v = vals[i]
            shown = repr(complex(v)) if np.isfinite(v) else ("inf" if np.isinf(v.real) else "nan")
            raise ExpressionError(
                f"activation expression {text!r}: {label}({float(_SAMPLE_POINTS[i]):.4g}) = {shown} is not a finite real "
                "number (float64); an activation and its derivative must be real and finite on the whole real line "
                + ("(it grows too fast: the kernels would overflow)" if shown == "inf" else ""))


def kinks_of(expr: sympy.Expr) -> tuple[float, ...]:
    """Real points where ``expr`` (or its derivative) is not smooth, as floats
    (:func:`exact_kinks_of`)."""
    return tuple(float(p) for p in exact_kinks_of(expr))


@functools.lru_cache(maxsize=128)
def exact_kinks_of(expr: sympy.Expr) -> tuple:
    """Real points where ``expr`` (or its derivative) is not smooth, exact (sympy
    numbers, increasing): zeros of the arguments of ``Abs``, ``sign``,
    ``Heaviside`` and of ``a - b`` in ``Max(a, b)``/``Min(a, b)``, and the
    boundaries of ``Piecewise`` conditions (``erfinv(3/10)`` for
    ``Max(0, erf(x) - 3/10)``: evaluated at any precision by :meth:`Activation.mp_kinks`).
    :class:`~ntk_equiv.errors.QuadratureError` when a set of zeros is not finite
    (``Max(0, cos(x))``) or sympy cannot determine it."""
    candidates = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            candidates.append(node.args[0])
        elif isinstance(node, (sympy.Max, sympy.Min)):
            args = node.args
            candidates += [a - b for i, a in enumerate(args) for b in args[i + 1:]]
        elif isinstance(node, sympy.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sympy.core.relational.Relational):
                    candidates.append(cond.lhs - cond.rhs)
    points: dict = {}
    for c in candidates:
        try:
            sol = sympy.solveset(c, X, sympy.S.Reals)
        except (NotImplementedError, ValueError, TypeError) as exc:  # e.g. periodic conditions of a Piecewise
            raise QuadratureError(f"the expression {expr} is not smooth where {c} = 0, and sympy cannot locate "
                                  f"those points ({type(exc).__name__}); the quadrature needs its kinks") from None
        if isinstance(sol, sympy.FiniteSet):
            for p in sol:
                points.setdefault(float(p), p)
        elif sol is not sympy.S.EmptySet:
            # infinitely many kinks (Max(0, cos(x)): an ImageSet) or ones sympy cannot find (a
            # ConditionSet): the rules would treat the function as smooth and return a wrong number
            raise QuadratureError(
                f"the expression {expr} is not smooth where {c} = 0, which is {sol} (not a finite set of "
                "points): the quadrature needs its kinks; write it with finitely many kinks")
    return tuple(points[k] for k in sorted(points))


DualFn = Callable[..., tuple]


@dataclass(frozen=True)
class Activation:
    """An activation ``phi`` with everything the kernel and finite-width paths need.

    Attributes
    ----------
    name : str
        Name, or the expression text.
    expr : sympy.Expr
        ``phi(x)``.
    closed_form : callable or None
        ``closed_form(bk, k11, k12, k22, lo, hi) -> (V, Vdot, lo', hi')``, written
        once against a precision backend ``bk`` (:mod:`ntk_equiv.precision`):
        the dual maps for ``(u, v) ~ N(0, [[k11, k12], [k12, k22]])`` given the
        Cauchy-Schwarz gaps ``lo = sqrt(k11 k22) - k12 >= 0`` and
        ``hi = sqrt(k11 k22) + k12 >= 0``, and the gaps ``lo', hi'`` of ``V``
        (``None, None``: the caller recomputes them from ``V``). ``k11, k22``
        are ``None`` when ``reads_variances`` is false. ``None`` means the
        expression machinery (Hermite / quadrature).
    params : tuple of (str, float)
        The parameters (``(("alpha", 0.01),)`` for ``leaky_relu``).
    numpy_fn, numpy_deriv : callable or None
        ``phi``, ``phi'`` on float arrays (``None``: generated from ``expr``).
    reads_variances : bool
        Whether ``closed_form`` reads ``k11, k22`` (see :attr:`uses_variances`).
    """

    name: str
    expr: sympy.Expr
    closed_form: DualFn | None = None
    params: tuple = ()
    numpy_fn: Callable | None = field(default=None, compare=False, repr=False)
    numpy_deriv: Callable | None = field(default=None, compare=False, repr=False)
    reads_variances: bool = field(default=True, compare=False, repr=False)

    @functools.cached_property
    def deriv_expr(self) -> sympy.Expr:
        """``phi'(x)``, almost everywhere (Dirac deltas dropped)."""
        d = sympy.diff(self.expr, X)
        return d.replace(sympy.DiracDelta, lambda *a: sympy.S.Zero)

    @functools.cached_property
    def kinks(self) -> tuple[float, ...]:
        return kinks_of(self.expr)

    @functools.cached_property
    def _np(self) -> tuple[Callable, Callable]:
        f = self.numpy_fn or sympy.lambdify(X, self.expr, _NUMPY_MODULES)
        df = self.numpy_deriv or sympy.lambdify(X, self.deriv_expr, _NUMPY_MODULES)
        return _broadcasting(f), _broadcasting(df)

    def mp_kinks(self, ctx) -> list:
        """The kinks as numbers of ``ctx``, at its precision (from the exact solutions
        of :func:`exact_kinks_of`, evaluated by sympy with 10 more digits)."""
        return [ctx.mpf(str(sympy.N(p, ctx.dps + 10))) for p in exact_kinks_of(self.expr)]

    def mp_functions(self, ctx) -> tuple[Callable, Callable]:
        """``(phi, phi')`` on numbers of the mpmath context ``ctx``, computed in ``ctx``."""
        return _mp_pair(self.expr, self.deriv_expr, ctx)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``phi`` elementwise on a float array (finite-width forward pass)."""
        return self._np[0](x)

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """``phi'`` elementwise on a float array (finite-width backward pass)."""
        return self._np[1](x)

    def dual(self, bk, k11, k12, k22) -> tuple:
        """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` elementwise (docs/theory.md C1)
        for ``(u, v) ~ N(0, [[k11, k12], [k12, k22]])``."""
        s = bk.sqrt(k11 * k22)
        return self.dual_gaps(bk, k11, k12, k22, bk.maximum0(s - k12), bk.maximum0(s + k12))[:2]

    def dual_gaps(self, bk, k11, k12, k22, lo, hi) -> tuple:
        """``(V, Vdot, lo', hi')``: the dual maps given the Cauchy-Schwarz gaps
        ``lo = sqrt(k11 k22) - k12``, ``hi = sqrt(k11 k22) + k12`` (accurate, from
        the kernel state), and the gaps of ``V`` (``None``: not known in closed form)."""
        if self.closed_form is not None:
            return self.closed_form(bk, k11, k12, k22, lo, hi)
        return (*self.dual_by_quadrature(bk, k11, k12, k22, det=lo * hi), None, None)

    @property
    def uses_variances(self) -> bool:
        """Whether the dual maps read ``k11, k22`` (the ReLU family and sign
        need only ``k12`` and the gaps: saves two gathers per layer; the
        catalogue's ``uses_variances`` flag)."""
        return self.closed_form is None or self.reads_variances

    @functools.cached_property
    def real_singularities(self) -> dict:
        """``{"phi": points, "phi'": points}``: where ``phi`` or ``phi'`` is
        singular on the real line (sympy's ``singularities``; empty when sympy
        cannot tell, the quadrature's own checks remain)."""
        out = {}
        for label, e in (("phi'", self.deriv_expr), ("phi", self.expr)):
            try:
                pts = singularities(e, X, sympy.S.Reals)
            except (NotImplementedError, ValueError, TypeError):
                continue
            if pts is not sympy.S.EmptySet:
                out[label] = pts
        return out

    def _check_integrable(self) -> None:
        # a pole of phi or phi' on the real line: E[phi(u)^2] or E[phi'(u)^2] is
        # infinite (or undefined), and no rule should return a number for it
        # (phi' first: a singularity of phi makes phi' singular too, and E[phi'(u)^2], which the
        # NTK needs, is then infinite even where E[phi(u)^2] is finite, e.g. log|x|)
        for label, pts in self.real_singularities.items():
            raise QuadratureError(
                f"activation {self.name!r}: {label} is singular on the real line at {pts}; the Gaussian "
                f"expectation E[{label}(u)^2] that the {'NTK' if label == 'phi' + chr(39) else 'NNGP'} needs "
                "is infinite or undefined")

    def dual_by_quadrature(self, bk, k11, k12, k22, det=None) -> tuple:
        """The dual maps by 2-D Gaussian quadrature, whatever the closed form
        (``det = k11 k22 - k12^2`` if not given)."""
        self._check_integrable()
        if det is None:
            det = bk.maximum0(k11 * k22 - k12 * k12)
        if any(kappa != 0 for kappa in self.kinks):
            # piecewise linear with kinks away from 0: Price's formula in the angle, both precisions
            out = quadrature.price_expectations(bk, self.expr, X, k11, k12, k22, det)
            if out is not None:
                return out
        if bk.vectorised:
            f, df = self._np
            if not self.kinks:
                out = hermite.expectations_f64(lambda x: (f(x), df(x)), k11, k12, k22)
                if out is not None:
                    return tuple(out)
            else:
                hermite.check_square_integrable(hermite.Ops(), lambda x: (f(x), df(x)), _roots(k11, k22, np.sqrt),
                                                digits=hermite.F64_RANGE_DIGITS, tol=hermite.F64_RESOLVE_TOL,
                                                names=("phi", "phi'"))
            if self.kinks and self.deriv_expr != 0 and quadrature.piecewise_linear_form(self.expr, X) is None:
                # piecewise smooth, kinks anywhere: the split Hermite expansion for the pairs
                # its tail bound settles, the 2-D rule along the kink lines for the rest (|rho|
                # near 1); both check themselves against a second rule (piecewise-constant maps,
                # phi' = 0, such as sign(abs(x)), keep the older rules and their refusals)
                out = _split_then_aligned(lambda x: (f(x), df(x)), self.kinks, k11, k12, k22, det)
                if out is not None:
                    return out
            if self.kinks and all(kappa == 0 for kappa in self.kinks):
                # kinks at 0 only: the adaptive polar rule, the old rule for entries it does not settle
                (v, vd), unsettled = quadrature.polar_expectations_f64(lambda x: (f(x), df(x)), k11, k12, k22, det=det)
                if not np.any(unsettled):
                    return v, vd
                k11, k12, k22, det = (np.broadcast_to(k, v.shape)[unsettled] for k in (k11, k12, k22, det))
            else:
                v = vd = unsettled = None
            _warn_outside_quadrature_range(self.name, k11, k22)
            v_old = quadrature.gaussian_expectation_f64(f, f, self.kinks, self.kinks, k11, k12, k22, det=det)
            vd_old = quadrature.gaussian_expectation_f64(df, df, self.kinks, self.kinks, k11, k12, k22, det=det)
            if unsettled is None:
                return v_old, vd_old
            v, vd = v.copy(), vd.copy()
            v[unsettled], vd[unsettled] = v_old, vd_old
            return v, vd
        ctx = bk.ctx
        joint = _mp_joint(self.expr, self.deriv_expr, ctx)
        if not self.kinks:
            out = hermite.expectations_mp(ctx, joint, k11, k12, k22, digits=bk.dps + 5)
            if out is not None:
                return tuple(out)
        sqrt = np.frompyfunc(ctx.sqrt, 1, 1)
        conv = np.frompyfunc(ctx.convert, 1, 1)
        hermite.check_square_integrable(hermite.Ops(ctx), joint, _roots(conv(k11), conv(k22), sqrt),
                                        digits=bk.dps + 10, tol=ctx.mpf(10) ** -(bk.dps + 5), names=("phi", "phi'"))
        k11, k12, k22, det = np.broadcast_arrays(*(np.asarray(k, dtype=object) for k in (k11, k12, k22, det)))
        # the expansion with coefficients split at the kinks and a tail bound per pair (fast: per
        # point, not per pair); the entries it leaves (|rho| near 1) go to the 2-D rules below
        # (piecewise linear with kinks at 0: the polar rule below is exact on few nodes, faster)
        linear0 = bool(self.kinks) and all(kappa == 0 for kappa in self.kinks) and (
            quadrature.piecewise_linear_form(self.expr, X) is not None)
        split = None if linear0 else hermite.split_expectations_mp(ctx, joint, self.mp_kinks(ctx), k11, k12, k22,
                                                                   digits=bk.dps + 5)
        if split is not None:
            (v, vd), settled = split
            if np.all(settled):
                return v, vd
        else:
            v, vd = (np.empty(k11.shape, dtype=object) for _ in range(2))
            settled = np.zeros(k11.shape, dtype=bool)
        if not self.kinks:
            # the nested 2-D rules below would take hours here: say so instead
            raise QuadratureError(
                f"dual maps of {self.name!r} at {bk.dps} digits: neither the Hermite expansion within "
                f"{hermite.level_terms(hermite.MP_LEVELS[-1])} terms nor the split expansion within "
                f"{hermite.SPLIT_TERM_LEVELS[-1]} terms settles, at pre-activation std up to "
                f"{float(ctx.sqrt(max(np.max(k11), np.max(k22)))):.3g} and correlation up to "
                f"{_max_abs_correlation(k11, k12, k22):.6g}; lower the variances (sigma_w, sigma_b, input norms), "
                "the depth or dps")
        f, df = self.mp_functions(ctx)
        v, vd = np.array(v, dtype=object), np.array(vd, dtype=object)
        # the quadrature works in ctx (never the global context), so concurrent
        # evaluations at other precisions need no lock
        for idx in zip(*np.nonzero(~settled)):
            args = tuple(ctx.mpf(a) for a in (k11[idx], k12[idx], k22[idx], det[idx]))
            v[idx], vd[idx] = (ctx.mpf(self._mp_expectation(ctx, h, args)) for h in (f, df))
        return v, vd

    def _mp_expectation(self, ctx, h: Callable, args) -> object:
        *k, det = args
        if all(kappa == 0 for kappa in self.kinks):
            return quadrature.gaussian_expectation_polar_mp(ctx, h, h, *k, smooth=not self.kinks, det=det)
        return quadrature.gaussian_expectation_mp(ctx, h, h, self.kinks, self.kinks, *k, det=det)


def _split_then_aligned(h: Callable, kinks, k11, k12, k22, det) -> tuple | None:
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` in float64 for a piecewise-smooth
    ``h = (phi, phi')`` with ``kinks``: :func:`hermite.split_expectations_f64` where its
    tail bound settles the entry, :func:`quadrature.aligned_expectations_f64` elsewhere;
    ``None`` when a variance is 0 or either does not settle (the older rules apply)."""
    k11, k12, k22, det = np.broadcast_arrays(*(np.asarray(k, dtype=float) for k in (k11, k12, k22, det)))
    split = hermite.split_expectations_f64(h, kinks, k11, k12, k22)
    if split is None:
        return None
    values, settled, scales = split
    rest = ~settled
    if np.any(det[rest] == 0):
        # exactly collinear distinct-variance pairs: the older rules, whose values keep such a
        # pair's recomputed gap exactly 0 or clear of the rounding noise the next kinked
        # activation refuses (kernels.check_distinguishable)
        return None
    if np.any(rest):
        values = [v.copy() for v in values]
        try:
            fill = quadrature.aligned_expectations_f64(h, kinks, k11[rest], k12[rest], k22[rest], det[rest],
                                                       [sc[rest] for sc in scales])
        except QuadratureError:
            return None  # not settled within its finest panels: the older rules apply
        for v, w in zip(values, fill):
            v[rest] = w
    return tuple(values)


def _max_abs_correlation(k11, k12, k22) -> float:
    """``max |k12| / sqrt(k11 k22)`` over the entries with both variances positive (float64)."""
    a, b, c = (np.asarray(np.vectorize(float)(np.asarray(k, dtype=object)), dtype=float) for k in (k11, k12, k22))
    den = np.sqrt(a * c)
    ok = den > 0
    return float(np.max(np.abs(b[ok]) / den[ok])) if np.any(ok) else 0.0


def _roots(k11, k22, sqrt) -> np.ndarray:
    """The distinct pre-activation standard deviations among ``k11, k22``."""
    var = np.concatenate([np.ravel(k11), np.ravel(k22)])
    var = np.unique(var) if not is_high_precision(var) else np.array(list(dict.fromkeys(var)), dtype=object)
    return sqrt(np.where(np.asarray(var > 0, dtype=bool), var, var * 0))


@functools.lru_cache(maxsize=32)
def _mp_pair(expr: sympy.Expr, deriv: sympy.Expr, ctx) -> tuple[Callable, Callable]:
    """``(phi, phi')`` on numbers of the mpmath context ``ctx``, computed in
    ``ctx`` (the scalar functions the 2-D quadrature integrates)."""
    modules = _mpmath_modules(ctx)
    return sympy.lambdify(X, expr, modules), sympy.lambdify(X, deriv, modules)


@functools.lru_cache(maxsize=32)
def _mp_joint(expr: sympy.Expr, deriv: sympy.Expr, ctx) -> Callable:
    """``x -> (phi(x), phi'(x))`` elementwise on object arrays, evaluated in the
    mpmath context ``ctx`` (never the global one), common subexpressions
    (``erf(x)`` in ``x erf(x)`` and its derivative) computed once."""
    both = sympy.lambdify(X, (expr, deriv), _mpmath_modules(ctx), cse=True)
    return np.frompyfunc(lambda x: tuple(ctx.convert(v) for v in both(x)), 1, 2)


#: Largest pre-activation standard deviation at which the float64 2-D quadrature (kinked
#: activations, and smooth ones beyond the Hermite levels) was
#: validated against dps=50 (~1e-12 at std 2.5 for activations varying on the
#: unit scale); beyond it, its nodes no longer resolve the activation's features.
F64_QUADRATURE_MAX_STD = 3.0


def _warn_outside_quadrature_range(name: str, k11, k22) -> None:
    top = float(np.sqrt(max(np.max(k11), np.max(k22))))
    if top > F64_QUADRATURE_MAX_STD:
        warnings.warn(
            f"float64 quadrature for activation {name!r} at pre-activation std {top:.3g} > "
            f"{F64_QUADRATURE_MAX_STD}: accuracy below the validated ~1e-12; use dps= for exact digits",
            PrecisionWarning, stacklevel=4,
        )


def _broadcasting(f: Callable) -> Callable:
    def g(x):
        x = np.asarray(x, dtype=float)
        return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape)
    return g


# --------------------------------------------------------------------------- #
# closed-form dual maps (docs/theory.md C1), one formula for every precision
# --------------------------------------------------------------------------- #
# Every closed form takes (bk, k11, k12, k22, lo, hi), where lo = s - k12 and
# hi = s + k12 (s = sqrt(k11 k22)) are the Cauchy-Schwarz gaps carried by the
# kernel state without cancellation (ntk_equiv.kernels), and returns
# (V, Vdot, lo', hi'): the dual maps and the gaps of V (None: the caller
# recomputes them from V, fine for smooth activations, which never take
# sqrt(det)).
def _sqrt_det(bk, lo, hi):
    """``sqrt(det) = sqrt(lo hi)``: no cancellation (``lo, hi >= 0`` carried accurately)."""
    return bk.sqrt(bk.maximum0(lo * hi))


def _relu(bk, k11, k12, k22, lo, hi):
    # Cho & Saul (2009), arc-cosine kernels of degree 1 and 0, theta = atan2(sqrt(det), k12):
    #   E[relu relu] = (sqrt(det) + (pi - theta) k12) / (2 pi), E[step step] = (pi - theta) / (2 pi).
    # Gaps of V (V11 = k11 / 2): s/2 -+ V = (pi lo -+ G) / (2 pi) with
    # G = sqrt(det) - theta k12 = s (sin theta - theta cos theta) >= 0, which is
    # O(s theta^3) near theta = 0 with absolute error O(eps s theta), so the angle
    # of the next layer stays correct to O(eps). (pi - theta has absolute error
    # eps near theta = pi: that only touches entries that are O(eps s) anyway.)
    # lo' = lo/2 - G/(2 pi), hi' = hi/2 + G/(2 pi): the same formulas, fewer passes over memory.
    sdet = _sqrt_det(bk, lo, hi)
    theta = bk.atan2(sdet, k12)
    inv2pi = 1 / (2 * bk.pi)
    theta_c = bk.pi - theta
    v = theta_c * k12
    v += sdet
    v *= inv2pi  # exactly 0 at theta = pi (u = -v)
    g = theta * k12
    g -= sdet
    g *= -inv2pi  # G / (2 pi)
    new_lo = lo / 2
    new_lo -= g
    new_hi = hi / 2
    new_hi += g
    theta_c *= inv2pi
    return v, theta_c, new_lo, new_hi


@functools.lru_cache(maxsize=64)  # equal slopes give equal (==) activations
def _leaky_relu(alpha):
    def dual(bk, k11, k12, k22, lo, hi):
        # phi = (1 - alpha) relu + alpha x, and E[relu(u) v] = k12 / 2; V11 = k11 (1 + alpha^2) / 2,
        # so both gaps are (1 - alpha)^2 (relu's gap) + alpha (the input's gap)
        v, vd, vlo, vhi = _relu(bk, k11, k12, k22, lo, hi)
        a = bk.scalar(alpha)
        c = (1 - a) ** 2
        return c * v + a * k12, a + c * vd, c * vlo + a * lo, c * vhi + a * hi
    return dual


def _abs(bk, k11, k12, k22, lo, hi):
    # |x| = relu(x) + relu(-x): E|u||v| = (2/pi) (sqrt(det) + (pi/2 - theta) k12)
    #   = (2/pi) H + |k12| with H = sqrt(det) - psi |k12| >= 0, psi = atan2(sqrt(det), |k12|)
    #   = min(theta, pi - theta) (the map is symmetric in v <-> -v);
    # E[sign u sign v] = 1 - 2 theta / pi = (2/pi) atan2(k12, sqrt(det)) (no cancellation at pi/2).
    # V11 = k11, so lo' = s - V = min(lo, hi) - (2/pi) H, hi' = max(lo, hi) + (2/pi) H.
    sdet = _sqrt_det(bk, lo, hi)
    ak = bk.abs(k12)
    c = 2 / bk.pi
    h = c * (sdet - bk.atan2(sdet, ak) * ak)
    return h + ak, c * bk.atan2(k12, sdet), bk.minimum(lo, hi) - h, bk.maximum(lo, hi) + h


def _sign(bk, k11, k12, k22, lo, hi):
    # E[sign u sign v] = 1 - 2 theta / pi = (2/pi) atan2(k12, sqrt(det)); V11 = 1, so
    # lo' = 2 theta / pi and hi' = 2 (pi - theta) / pi, each from its own atan2 (no cancellation)
    sdet = _sqrt_det(bk, lo, hi)
    c = 2 / bk.pi
    v = c * bk.atan2(k12, sdet)
    return v, 0 * v, c * bk.atan2(sdet, k12), c * bk.atan2(sdet, -k12)


def _erf(bk, k11, k12, k22, lo, hi):
    # Williams (1997): (2/pi) asin(2 k12 / sqrt((1 + 2 k11)(1 + 2 k22))), written as an
    # atan2 whose second argument (1 + 2 k11)(1 + 2 k22) - 4 k12^2 = 1 + 2(k11 + k22) + 4 det
    # has no cancellation; E[erf' erf'] = (4/pi) / sqrt(that).
    q = bk.sqrt(1 + 2 * (k11 + k22) + 4 * bk.maximum0(lo * hi))
    pi = bk.pi
    return 2 * bk.atan2(2 * k12, q) / pi, 4 / (pi * q), None, None


def _identity(bk, k11, k12, k22, lo, hi):
    return 1 * k12, 0 * k12 + 1, lo, hi


def _sin_cos(bk, k11, k12, k22, lo, hi):
    """``(E[sin u sin v], E[cos u cos v]) = exp(-m) (sinh k12, cosh k12)``,
    ``m = (k11 + k22) / 2``, as ``C tanh(k12)`` and
    ``C = exp(-(m - |k12|)) (1 + exp(-2 |k12|)) / 2``: every exponent is <= 0
    (no overflow for large variances) and ``m - |k12| = (sqrt k11 - sqrt k22)^2 / 2
    + min(lo, hi)`` has no cancellation."""
    gap = bk.sqrt(k11) - bk.sqrt(k22)
    t = gap * gap / 2 + bk.minimum(lo, hi)
    c = bk.exp(-t) * (1 + bk.exp(-2 * bk.abs(k12))) / 2
    return c * bk.tanh(k12), c


def _sin(bk, k11, k12, k22, lo, hi):
    s, c = _sin_cos(bk, k11, k12, k22, lo, hi)  # sin' = cos
    return s, c, None, None


def _cos(bk, k11, k12, k22, lo, hi):
    s, c = _sin_cos(bk, k11, k12, k22, lo, hi)  # cos' = -sin
    return c, s, None, None


def _gelu(bk, k11, k12, k22, lo, hi):
    """GELU ``phi(x) = x Phi(x)`` (the exact one, not the tanh approximation):
    Tsuchida, Pearce, van der Heide, Roosta & Gallagher, "Avoiding kernel fixed
    points: computing with ELU and GELU infinite networks" (AAAI 2021), as in
    neural-tangents' ``stax.Gelu``. With ``P = (1 + k11)(1 + k22)`` and
    ``D = P - k12^2 = 1 + k11 + k22 + det`` (no cancellation)::

        V    = k12 atan2(sqrt D, -k12) / (2 pi) + (k11 k22 D + k12^2) / (2 pi P sqrt D)
        Vdot = atan2(sqrt D, -k12) / (2 pi) + k12 ((2 + k11 + k22) / P + 1 / D) / (2 pi sqrt D)

    Derivation: ``Phi(u) = P(z <= u)`` for an independent ``z ~ N(0, 1)``, so
    ``V = E[u v 1{p > 0} 1{q > 0}]`` with ``p = u - z1, q = v - z2``, and Stein's
    lemma twice gives ``Cov(u, v) P(p, q > 0)`` plus second derivatives of the
    orthant indicator; ``Vdot = dV/dk12`` by Price's theorem
    (``atan2(sqrt D, -k12) = pi/2 + asin(k12 / sqrt P)``, written without the
    cancellation of the sum at correlation -1)."""
    p = (1 + k11) * (1 + k22)
    d = 1 + k11 + k22 + bk.maximum0(lo * hi)
    sd = bk.sqrt(d)
    two_pi = 2 * bk.pi
    angle = bk.atan2(sd, -k12)
    v = k12 * angle / two_pi + (k11 * k22 * d + k12 * k12) / (two_pi * p * sd)
    vd = angle / two_pi + k12 * ((2 + k11 + k22) / p + 1 / d) / (two_pi * sd)
    return v, vd, None, None


# --------------------------------------------------------------------------- #
# the catalogue: one record per named activation
# --------------------------------------------------------------------------- #
def _np_relu(x):
    return np.maximum(x, 0.0)


def _np_step(x):
    return (x > 0).astype(float)


def _sigmoid_expr(t: sympy.Expr) -> sympy.Expr:
    """``sigmoid(t) = 1 / (1 + e^{-t}) = (1 + tanh(t/2)) / 2``, written with tanh:
    finite in float64 at every ``t`` (``exp(-t)`` overflows beyond ``t < -709``)."""
    return (1 + sympy.tanh(t / 2)) / 2


def _np_gelu(x):
    return x * scipy.special.ndtr(x)


def _np_gelu_deriv(x):
    return scipy.special.ndtr(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _np_silu_deriv(x):
    s = scipy.special.expit(x)
    return s * (1 + x * (1 - s))


def _no_numpy(**_params):
    return None, None


@dataclass(frozen=True)
class NamedActivation:
    """One named activation, everything about it in one record of :data:`CATALOGUE`.

    Attributes
    ----------
    name : str
        The name given to :func:`activation`.
    constructor : str
        The layer constructor exported by ``ntk_equiv`` (``Relu``, ``Elu``...): ``Act(name, **params)``.
    expression : callable
        ``(**params) -> phi(x)``, a sympy expression in :data:`X`.
    closed_form : callable or None
        ``(**params) -> dual`` with ``dual(bk, k11, k12, k22, lo, hi) -> (V, Vdot, lo', hi')``
        (see :class:`Activation`); ``None``: the expression machinery (Hermite / quadrature).
    parameters : tuple of (str, float)
        Keyword parameters and their defaults; each is a scale (finite, ``>= 0``).
    numpy : callable
        ``(**params) -> (phi, phi')`` on float arrays, or ``(None, None)`` to
        generate them from the expression; given where the generated ones
        overflow or are slow.
    uses_variances : bool
        Whether the closed form reads ``k11, k22`` (``False`` for the ReLU family,
        sign and identity: they need only ``k12`` and the gaps).
    homogeneous : tuple of int or None
        ``(p, p')``: ``phi(r x) = r^p phi(x)`` and ``phi'(r x) = r^p' phi'(x)`` for ``r > 0``.
    kinks : tuple of float
        Where ``phi`` is not smooth (checked against :func:`kinks_of` by the tests).
    source : str
        Where the closed form comes from (the identity or the reference), or why there is none.
    example : tuple of (str, float)
        Non-default parameters the tests use.
    """

    name: str
    constructor: str
    expression: Callable[..., sympy.Expr]
    closed_form: Callable[..., DualFn] | None = None
    parameters: tuple = ()
    numpy: Callable[..., tuple] = _no_numpy
    uses_variances: bool = True
    homogeneous: tuple | None = None
    kinks: tuple = ()
    source: str = ""
    example: tuple = ()

    def make(self, **params) -> Activation:
        """The :class:`Activation`, parameters checked (defaults filled in)."""
        from .validation import check_scale

        allowed = dict(self.parameters)
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            takes = f"takes only {', '.join(allowed)}" if allowed else "takes no parameters"
            raise ParameterError(f"activation {self.name!r} {takes}; got unknown parameter(s) {unknown}")
        values = {k: check_scale(params.get(k, default), f"{self.name} parameter {k}") for k, default in self.parameters}
        f, df = self.numpy(**values)
        closed = None if self.closed_form is None else self.closed_form(**values)
        return Activation(self.name, self.expression(**values), closed, tuple(values.items()), f, df,
                          reads_variances=self.uses_variances)


def _exact(value: float) -> sympy.Rational:
    # the exact value of a float parameter, as the closed form (bk.scalar) and the network use
    return sympy.Rational(float(value))


def _leaky_numpy(alpha):
    return (lambda x: np.where(x > 0, x, alpha * x)), (lambda x: np.where(x > 0, 1.0, float(alpha)))


def _elu_numpy(alpha):
    def f(x):
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))

    def df(x):
        return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))
    return f, df


def _clip_numpy(low, high):
    return (lambda x: np.clip(x, low, high)), (lambda x: ((x > low) & (x < high)).astype(float))


_NO_ELEMENTARY = ("no elementary closed form: E[phi(u) phi(v)] needs the bivariate normal CDF; "
                  "the expression machinery (quadrature split at the kinks) computes it")
_SMOOTH_NONE = "no closed form known; the Mehler (Hermite) expansion of ntk_equiv.hermite computes it"

#: Every named activation, in one place (name -> record). A new name is one
#: record here; ``NAMES``, the parameter checks, ``Activation.uses_variances``
#: and the layer constructors (checked by the tests) follow from it.
CATALOGUE: Mapping[str, NamedActivation] = {r.name: r for r in (
    NamedActivation("relu", "Relu", lambda: sympy.Max(0, X), lambda: _relu,
                    numpy=lambda: (_np_relu, _np_step), uses_variances=False, homogeneous=(1, 0), kinks=(0.0,),
                    source="arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009)"),
    NamedActivation("leaky_relu", "LeakyRelu",
                    lambda alpha: sympy.Piecewise((X, X > 0), (_exact(alpha) * X, True)), _leaky_relu,
                    parameters=(("alpha", 0.01),), numpy=_leaky_numpy, uses_variances=False, homogeneous=(1, 0),
                    kinks=(0.0,), example=(("alpha", 0.2),),
                    source="(1 - alpha) relu + alpha x, E[relu(u) v] = k12 / 2"),
    NamedActivation("abs", "Abs", lambda: sympy.Abs(X), lambda: _abs,
                    numpy=lambda: (np.abs, np.sign), uses_variances=False, homogeneous=(1, 0), kinks=(0.0,),
                    source="relu(x) + relu(-x) and the arc-cosine kernels"),
    NamedActivation("sign", "Sign", lambda: sympy.sign(X), lambda: _sign,
                    numpy=lambda: (np.sign, np.zeros_like), uses_variances=False, homogeneous=(0, 0), kinks=(0.0,),
                    source="Sheppard's formula P(u v > 0) = 1 - theta / pi"),
    NamedActivation("erf", "Erf", lambda: sympy.erf(X), lambda: _erf,
                    numpy=lambda: (scipy.special.erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x)),
                    source="Williams (1997)"),
    NamedActivation("identity", "Identity", lambda: X, lambda: _identity,
                    numpy=lambda: ((lambda x: x), np.ones_like), uses_variances=False, homogeneous=(1, 0),
                    source="E[u v] = k12"),
    NamedActivation("sin", "Sin", lambda: sympy.sin(X), lambda: _sin, numpy=lambda: (np.sin, np.cos),
                    source="the characteristic function E[e^{i(u -+ v)}]"),
    NamedActivation("cos", "Cos", lambda: sympy.cos(X), lambda: _cos,
                    numpy=lambda: (np.cos, lambda x: -np.sin(x)),
                    source="the characteristic function E[e^{i(u -+ v)}]"),
    NamedActivation("gelu", "Gelu", lambda: X * (1 + sympy.erf(X / sympy.sqrt(2))) / 2, lambda: _gelu,
                    numpy=lambda: (_np_gelu, _np_gelu_deriv),
                    source="Tsuchida et al. (AAAI 2021); Stein's lemma and Price's theorem (see _gelu)"),
    NamedActivation("tanh", "Tanh", lambda: sympy.tanh(X), None,
                    numpy=lambda: (np.tanh, lambda x: 1 - np.tanh(x) ** 2), source=_SMOOTH_NONE),
    NamedActivation("sigmoid", "Sigmoid", lambda: _sigmoid_expr(X), None,
                    numpy=lambda: (scipy.special.expit, lambda x: scipy.special.expit(x) * scipy.special.expit(-x)),
                    source=_SMOOTH_NONE),
    NamedActivation("softplus", "Softplus", lambda: sympy.log(1 + sympy.exp(X)), None,
                    numpy=lambda: ((lambda x: np.logaddexp(0.0, x)), scipy.special.expit), source=_SMOOTH_NONE),
    NamedActivation("silu", "Silu", lambda: X * _sigmoid_expr(X), None,
                    numpy=lambda: ((lambda x: x * scipy.special.expit(x)), _np_silu_deriv), source=_SMOOTH_NONE),
    NamedActivation("elu", "Elu",
                    lambda alpha: sympy.Piecewise((X, X > 0), (_exact(alpha) * (sympy.exp(X) - 1), True)), None,
                    parameters=(("alpha", 1.0),), numpy=_elu_numpy, kinks=(0.0,), example=(("alpha", 0.5),),
                    source=_NO_ELEMENTARY + " (Tsuchida et al. 2021 write it with that CDF); kink at 0: the polar rule"),
    NamedActivation("relu6", "Relu6", lambda: sympy.Min(sympy.Max(X, 0), 6), None,
                    numpy=lambda: _clip_numpy(0.0, 6.0), kinks=(0.0, 6.0), source=_NO_ELEMENTARY),
    NamedActivation("hard_tanh", "HardTanh", lambda: sympy.Min(sympy.Max(X, -1), 1), None,
                    numpy=lambda: _clip_numpy(-1.0, 1.0), kinks=(-1.0, 1.0), source=_NO_ELEMENTARY),
)}

#: Every name :func:`activation` knows.
NAMES = tuple(CATALOGUE)
#: The names with closed-form dual maps (the fast, exact ones the property tests draw).
NAMED = tuple(n for n, r in CATALOGUE.items() if r.closed_form is not None)
#: Positively homogeneous names: ``name -> (p, p')`` (the C1 claim checks' polar references).
HOMOGENEOUS = {n: r.homogeneous for n, r in CATALOGUE.items() if r.homogeneous is not None}


def _named(name: str, **params) -> Activation:
    if name not in CATALOGUE:
        raise UnknownActivationError(_unknown_name_message(name))
    return CATALOGUE[name].make(**params)


#: Other names of catalogue entries, for the suggestions of an unknown name only.
_ALIASES = {"swish": "silu", "logistic": "sigmoid", "hardtanh": "hard_tanh", "linear": "identity", "leakyrelu": "leaky_relu"}


def _unknown_name_message(key: str) -> str:
    """"unknown activation", with the nearest names (difflib) or functions of an expression."""
    low = key.lower()
    candidates = dict.fromkeys(NAMES + tuple(f + "(x)" for f in ALLOWED_FUNCTIONS if f not in CATALOGUE))
    close = ([_ALIASES[low]] if low in _ALIASES else []) + difflib.get_close_matches(low, list(candidates), n=3, cutoff=0.6)
    close = list(dict.fromkeys(close))[:3]
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return (f"unknown activation {key!r}{hint}; known names: {', '.join(NAMES)}; or give an expression in x, "
            "e.g. 'x*erf(x)'")


def activation(name_or_expression: str | Activation, **params) -> Activation:
    """An :class:`Activation` from a name in :data:`NAMES` (the records of
    :data:`CATALOGUE`: closed-form dual maps where :data:`NAMED` says so) or a
    sympy expression in ``x`` (dual maps by the expression machinery).

    Examples
    --------
    >>> activation("leaky_relu", alpha=0.1).name
    'leaky_relu'
    >>> activation("x*erf(x)").closed_form is None
    True
    """
    if isinstance(name_or_expression, Activation):
        return name_or_expression
    if not isinstance(name_or_expression, str):
        raise UnknownActivationError(f"activation must be a name or an expression string, got {name_or_expression!r}")
    key = name_or_expression.strip()
    if key in CATALOGUE:
        return _named(key, **params)
    if params:
        raise ParameterError(f"expression activations take no parameters, got {sorted(params)}; write the "
                             "numbers into the expression, e.g. 'Max(0.1*x, x)'")
    if key.isidentifier() and key != "x" and key not in ALLOWED_FUNCTIONS:
        raise UnknownActivationError(_unknown_name_message(key))
    expr = parse_activation_expression(key)
    check_real_valued(expr, key)
    return Activation(key, expr)
