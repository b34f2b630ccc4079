"""Inputs and seeds the experiments share: points on a sphere, a well-conditioned
training set, and child seeds that do not depend on the order of the draws."""
from __future__ import annotations

import math

import numpy as np


def sphere_inputs(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """``n`` points on the sphere of radius ``sqrt(d)`` (kernel entries O(1))."""
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(d)


def spread_inputs(rng: np.random.Generator, n: int, d: int, tries: int = 32, draw=None) -> np.ndarray:
    """``n`` training inputs on the sphere of radius ``sqrt(d)``, the best of
    ``tries`` draws by smallest pairwise distance: a well-conditioned training
    kernel, so gradient descent converges (``~ cond`` steps) quickly and float64
    solves keep their digits (docs/theory.md, "What finite width taught us").
    ``draw(rng, n)``: another input distribution (e.g. images, ``(n, *S, C)``;
    distances between the flattened inputs), ``d`` then unused."""
    from scipy.spatial.distance import pdist

    draws = [sphere_inputs(rng, n, d) if draw is None else draw(rng, n) for _ in range(tries)]
    return max(draws, key=lambda z: pdist(z.reshape(n, -1)).min() if n > 1 else 0.0)


def child_seed(*parts: int) -> int:
    """A seed determined by ``parts`` alone (e.g. ``(seed, width, replicate)``), so
    adding a width or a replicate does not change the others' draws."""
    return int(np.random.default_rng(list(parts)).integers(2**62))


def condition_number(theta_XX) -> float:
    """``cond(Theta_XX)`` (2-norm): how far a finite network trained to
    convergence can sit from its limit, relative to ``n^{-1/2}``."""
    return float(np.linalg.cond(np.asarray(theta_XX, dtype=float)))
