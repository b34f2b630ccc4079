"""Two exact algebras for the matrix identities of docs/theory.md C5-C9.

Every matrix proof is written once against an *algebra* and run in both:

* :class:`General`: sizes are symbols (``n`` test points, ``N`` training
  points, ``P`` parameters) and matrices are ``sympy.MatrixSymbol`` s, so a
  proof holds for **every** ``N``. Sympy carries the non-commutative algebra
  (expansion, transposes, ``T^{-1} T = I``); symmetry of a kernel block is
  imposed by rewriting ``S^T -> S``.
* :class:`Explicit`: sizes are small integers (``N = 2, 3``) and matrices have
  fully generic symbolic entries (symmetric where a kernel is), so every
  difference is a rational function whose numerator ``cancel`` reduces to 0.
  No floating point anywhere; this cross-checks the general proofs without
  trusting sympy's matrix-expression rules.

Random quantities are Gaussian and centred, and only their first two moments
enter. A Gaussian process evaluated on the test and training inputs is
``gaussian(name, {"xx": C_xx, "xX": C_xX, "XX": C_XX})``; its values are linear
forms in independent standard normal noise, and :meth:`cov` applies
``E[xi xi^T] = I`` (general) or ``Cov(J z) = J Sigma J^T`` (explicit):
the covariance of a derived quantity (an RND residual, a trained network) is
*computed* from how it was built, then compared with the library formula.
"""
from __future__ import annotations

from typing import Any

import sympy as sp
from sympy import BlockMatrix, Identity, MatMul, MatrixSymbol, Transpose, ZeroMatrix

from ..errors import ClaimFailure

SIZES = ("n", "N", "P", "D")  # plus "1": a column


class General:
    """Matrix expressions of symbolic size (``n, N, P`` are positive integers)."""

    method = "general sizes n, N, P (sympy MatrixSymbol)"

    def __init__(self):
        self.size = {k: sp.Symbol(k, integer=True, positive=True) for k in SIZES}
        self.size["1"] = 1
        self.symmetric_symbols: set = set()
        self.noises: list = []
        self.pairs: dict = {}  # (S_a, S_b) -> Cov block: the factor pair S_a S_b^T

    # ---- building blocks -------------------------------------------------- #
    def matrix(self, name: str, rows: str, cols: str):
        return MatrixSymbol(name, self.size[rows], self.size[cols])

    def symmetric(self, name: str, rows: str):
        m = MatrixSymbol(name, self.size[rows], self.size[rows])
        self.symmetric_symbols.add(m)
        return m

    def eye(self, rows: str):
        return Identity(self.size[rows])

    def zeros(self, rows: str, cols: str):
        return ZeroMatrix(self.size[rows], self.size[cols])

    def block(self, rows):
        return BlockMatrix(rows)

    def white(self, name: str, rows: str, var=1):
        """``sqrt(var) xi`` with ``xi ~ N(0, I)``."""
        xi = MatrixSymbol(name, self.size[rows], 1)
        self.noises.append(xi)
        return sp.sqrt(var) * xi

    def gaussian(self, name: str, blocks: dict) -> dict:
        """Values ``h(x), h(X)`` of a centred GP with the given covariance blocks,
        as ``S_x xi, S_X xi`` with ``S_a S_b^T = C_ab`` (any covariance factors so)."""
        xi = MatrixSymbol(f"xi_{name}", self.size["D"], 1)
        self.noises.append(xi)
        Sx = MatrixSymbol(f"S_{name}x", self.size["n"], self.size["D"])
        SX = MatrixSymbol(f"S_{name}X", self.size["N"], self.size["D"])
        self.pairs.update({(Sx, Sx): blocks["xx"], (Sx, SX): blocks["xX"],
                           (SX, Sx): blocks["xX"].T, (SX, SX): blocks["XX"]})
        return {"x": Sx * xi, "X": SX * xi}

    # ---- moments ------------------------------------------------------------ #
    def mean(self, r):
        return r.xreplace({xi: ZeroMatrix(*xi.shape) for xi in self.noises}).doit()

    def cov(self, r, s=None):
        """``E[(r - Er)(s - Es)^T]`` by ``E[xi_a xi_b^T] = delta_ab I``."""
        s = r if s is None else s
        d = sp.expand(((r - self.mean(r)) * (s - self.mean(s)).T).doit()).doit()
        terms = d.args if isinstance(d, sp.MatAdd) else (d,)
        out = [self._expect(t) for t in terms]
        out = [t for t in out if t is not None]
        return sp.MatAdd(*out).doit() if out else ZeroMatrix(*d.shape)

    def _expect(self, term):
        coeff, mm = term.as_coeff_mmul()
        factors = list(mm.args) if isinstance(mm, MatMul) else [mm]
        scalars = [f for f in factors if not getattr(f, "is_Matrix", False)]
        factors = [f for f in factors if getattr(f, "is_Matrix", False)]
        kept, i = [], 0
        while i < len(factors):
            a = factors[i]
            if a in self.noises:
                nxt = factors[i + 1] if i + 1 < len(factors) else None
                if isinstance(nxt, Transpose) and nxt.arg == a:
                    kept.append(Identity(a.shape[0]))  # E[xi xi^T] = I
                    i += 2
                    continue
                return None  # a mixed or odd moment: zero
            if isinstance(a, Transpose) and a.arg in self.noises:
                return None
            kept.append(a)
            i += 1
        kept = self._pair_factors([f for f in kept if not isinstance(f, Identity)] or kept)
        return sp.Mul(coeff, *scalars) * MatMul(*kept).doit() if kept else None

    def _pair_factors(self, factors):
        out: list = []
        for f in factors:
            if out and isinstance(f, Transpose) and (out[-1], f.arg) in self.pairs:
                out[-1] = self.pairs[(out[-1], f.arg)]  # S_a S_b^T = C_ab
            else:
                out.append(f)
        return out

    # ---- deciding zero --------------------------------------------------------- #
    def simplify(self, expr):
        flip = {Transpose(s): s for s in self.symmetric_symbols}
        e = expr
        for _ in range(8):
            new = sp.expand(sp.block_collapse(e).doit() if _has_blocks(e) else e.doit()).doit().xreplace(flip)
            if new == e:
                break
            e = new
        return e

    def is_zero(self, expr) -> tuple[bool, Any]:
        if isinstance(expr, sp.MatrixBase):  # an explicit (e.g. 1 x 1 scalar) identity
            e = expr.applyfunc(lambda v: sp.cancel(sp.together(v)))
            return all(v == 0 for v in e), e
        e = self.simplify(expr)
        if isinstance(e, BlockMatrix):
            return all(self.is_zero(b)[0] for b in e.blocks), e
        return bool(e == 0 or isinstance(e, ZeroMatrix) or getattr(e, "is_ZeroMatrix", False)), e


def _has_blocks(e) -> bool:
    return any(isinstance(a, BlockMatrix) for a in sp.preorder_traversal(e))


class Explicit:
    """Matrices with generic symbolic entries, sizes ``n`` (test), ``N`` (train), ``P``."""

    def __init__(self, N: int = 2, n: int = 2, P: int = 3):
        self.size = {"n": n, "N": N, "P": P, "1": 1}
        self.method = f"explicit generic entries, N={N} training and n={n} test points"
        self.random: list = []
        self.table: dict = {}  # (z_a, z_b) -> Cov(z_a, z_b)

    def matrix(self, name: str, rows: str, cols: str):
        r, c = self.size[rows], self.size[cols]
        return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))

    def symmetric(self, name: str, rows: str):
        r = self.size[rows]
        return sp.Matrix(r, r, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}", real=True))

    def eye(self, rows: str):
        return sp.eye(self.size[rows])

    def zeros(self, rows: str, cols: str):
        return sp.zeros(self.size[rows], self.size[cols])

    def block(self, rows):
        return BlockMatrix(rows).as_explicit()

    def white(self, name: str, rows: str, var=1):
        z = sp.Matrix([sp.Symbol(f"{name}_{i}", real=True) for i in range(self.size[rows])])
        self._add(list(z), sp.eye(len(z)) * var)
        return z

    def gaussian(self, name: str, blocks: dict) -> dict:
        n, N = self.size["n"], self.size["N"]
        zx = sp.Matrix([sp.Symbol(f"{name}x_{i}", real=True) for i in range(n)])
        zX = sp.Matrix([sp.Symbol(f"{name}X_{i}", real=True) for i in range(N)])
        joint = BlockMatrix([[blocks["xx"], blocks["xX"]], [blocks["xX"].T, blocks["XX"]]]).as_explicit()
        self._add(list(zx) + list(zX), joint)
        return {"x": zx, "X": zX}

    def _add(self, zs, cov) -> None:
        self.random += zs
        for i, a in enumerate(zs):
            for j, b in enumerate(zs):
                self.table[(a, b)] = cov[i, j]

    def mean(self, r):
        return r.subs({z: 0 for z in self.random})

    def cov(self, r, s=None):
        """``J_r Sigma J_s^T``: the covariance of affine functions of the noise."""
        s = r if s is None else s
        zs = self.random
        Jr, Js = r.jacobian(zs), s.jacobian(zs)
        if (Jr.free_symbols | Js.free_symbols) & set(zs):
            raise ClaimFailure("a random quantity is not affine in the noise: Cov(J z) = J Sigma J^T does not apply")
        sigma = sp.Matrix(len(zs), len(zs), lambda i, j: self.table.get((zs[i], zs[j]), 0))
        return Jr * sigma * Js.T

    def simplify(self, expr):
        return sp.Matrix(expr).applyfunc(lambda e: sp.cancel(sp.together(e)))

    def is_zero(self, expr) -> tuple[bool, Any]:
        """Every entry, a rational function of the symbols, cancels to 0."""
        e = self.simplify(expr)
        return all(v == 0 for v in e), e


Algebra = General | Explicit


def algebras(full: bool = False) -> list:
    """The algebras every matrix proof runs in: general sizes, and explicit
    generic ``N = 2`` (and ``N = 3`` when ``full``)."""
    out = [General(), Explicit(N=2)]
    if full:
        out.append(Explicit(N=3))
    return out
