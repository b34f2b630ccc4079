"""Validation of user input at the public boundary, in one place.

Every public function calls these once, at its top, on what the user gave it;
the code below the boundary then trusts its arguments. Each check returns the
value in the library's canonical type (``int``, ``float``, a float64 array...)
or raises a subclass of :class:`~ntk_equiv.errors.NtkEquivError` whose message
names the argument and says what to change.

Decisions recorded here (README, "Bad input"):

* **bool is not a number.** ``alpha=True`` or ``width=True`` are refused; flags
  (``centred``, ``linearized``...) must be real ``bool`` values.
* **Seeds** are non-negative integers, a ``numpy.random.Generator`` or a
  ``numpy.random.SeedSequence``; ``None`` (fresh OS entropy) is refused because
  every result of this library is meant to be reproducible.
* **Inputs are 2-D** ``(n, d)`` (or ``ndim`` axes where a caller asks for
  them): a 1-D array is ambiguous (one point with ``d`` features, or ``d``
  points?) and is refused, as scikit-learn does, with the two reshapes that
  say which is meant.
* **Precision** ``dps`` is an integer in ``[MIN_DPS, MAX_DPS]``: below, float64
  is the right tool; above, the cost (~40x per 10x digits) is unbounded.
* **Memory**: allocations that the library can size in advance (kernels,
  network parameters) are estimated first and refused, saying how much, when
  they exceed half of the memory available: the smallest of ``MemAvailable``,
  what ``RLIMIT_AS``/``RLIMIT_DATA`` (``ulimit -v``/``-d``) and a cgroup memory
  limit leave (:func:`memory_limits`).
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
from pathlib import Path
from typing import Any, Iterable

import mpmath
import numpy as np

from .errors import (
    EmptyInputError, NonFiniteError, ParameterError, RangeError, ResourceError, ShapeError,
)

#: Fewest digits of the high-precision path (below, float64's ~16 digits are the tool).
MIN_DPS = 16
#: Most digits accepted: the mpmath paths cost ~40x more per 10x digits (a small
#: kernel takes seconds at 1000 digits, hours at 10^5), so larger requests are
#: refused instead of running without end.
MAX_DPS = 1000
#: Largest magnitude of a scale parameter (sigma_w, sigma_b, alpha...) whose
#: square stays a finite float64 with room for the sums of the recursion.
MAX_SCALE = 1e150
#: The largest finite float64.
F64_MAX = float(np.finfo(float).max)
#: The smallest positive normal float64 (squares below it lose digits or vanish).
F64_TINY = float(np.finfo(float).tiny)


def _is_real_scalar(v: Any) -> bool:
    return (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))) or (
        type(v).__name__ == "mpf")


def check_real(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
               strict: bool = False, allow_none: bool = False, max_magnitude: float = F64_MAX) -> float | None:
    """A finite real number as ``float``, ``>= minimum`` (``> minimum`` with
    ``strict``) and ``<= maximum``.

    Refuses ``bool``, strings, complex numbers, ``None`` (unless ``allow_none``)
    and arrays; Python ints too large for float64 raise :class:`ParameterError`
    (not ``OverflowError``).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not _is_real_scalar(value):
        what = "None" if value is None else f"{type(value).__name__} {value!r}"[:80]
        raise ParameterError(f"{name} must be a real number, got {what}"
                             + (" (bool is not a number)" if isinstance(value, (bool, np.bool_)) else ""))
    try:
        v = float(value)
    except OverflowError:
        raise ParameterError(f"{name} = {str(value)[:12]}... ({len(str(value))} digits) is too large for float64 "
                             f"(max {F64_MAX:.3e})") from None
    if not math.isfinite(v):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    if abs(v) > max_magnitude:
        raise ParameterError(f"{name}={v:.3g} is too large: |{name}| must be <= {max_magnitude:.3g} "
                             "(its square must stay in float64 range)")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ParameterError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    if maximum is not None and v > maximum:
        raise ParameterError(f"{name} must be <= {maximum:g}, got {value!r}")
    return v


def check_nonnegative(value: Any, name: str, **kw) -> float:
    """A finite real ``>= 0`` (ridge, noise, sigma_b, t...)."""
    return check_real(value, name, minimum=0.0, **kw)


def check_positive(value: Any, name: str, **kw) -> float:
    """A finite real ``> 0`` (lr, tol...)."""
    return check_real(value, name, minimum=0.0, strict=True, **kw)


def check_scale(value: Any, name: str) -> float:
    """A scale parameter (``sigma_w``, ``sigma_b``, ``alpha``): finite, ``>= 0``,
    at most :data:`MAX_SCALE` so that its square is a finite float64."""
    return check_real(value, name, minimum=0.0, max_magnitude=MAX_SCALE)


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (Python or numpy, not bool, not float) in ``[minimum, maximum]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ParameterError(f"{name} must be an integer, got {type(value).__name__} {value!r}"[:160])
    v = int(value)
    if minimum is not None and v < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ParameterError(f"{name} must be an integer <= {maximum}, got {v}"[:160])
    return v


def check_positive_int(value: Any, name: str, maximum: int | None = None) -> int:
    """An integer ``>= 1`` (width, heads, depth, max_steps...)."""
    return check_int(value, name, minimum=1, maximum=maximum)


def check_bool(value: Any, name: str) -> bool:
    """A real ``bool`` (``"no"``, ``0`` or ``None`` are refused: they read ambiguously)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be True or False, got {type(value).__name__} {value!r}"[:160])
    return bool(value)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}"[:200])
    return value


def check_seed(seed: Any, name: str = "seed"):
    """A non-negative int, a ``numpy.random.Generator`` or a
    ``numpy.random.SeedSequence``, returned unchanged (ints as ``int``)."""
    if isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise ParameterError(
            f"{name} must be a non-negative integer or a numpy.random.Generator, got "
            f"{type(seed).__name__} {seed!r}"[:200] + ("; results are reproducible by design, so pass e.g. seed=0"
                                                      if seed is None else ""))
    if seed < 0:
        raise ParameterError(f"{name} must be a non-negative integer, got {seed}")
    return int(seed)


def check_dps(dps: Any) -> int:
    """Digits of the high-precision path: an integer in ``[MIN_DPS, MAX_DPS]``."""
    if isinstance(dps, (bool, np.bool_)) or not isinstance(dps, (numbers.Integral, np.integer)):
        raise ParameterError(f"dps must be an integer in [{MIN_DPS}, {MAX_DPS}] (or None for float64), got {dps!r}")
    if not MIN_DPS <= dps <= MAX_DPS:
        raise ParameterError(
            f"dps must be in [{MIN_DPS}, {MAX_DPS}] (or None for float64), got {dps}: "
            + ("float64 already gives ~16 digits; use dps=None" if dps < MIN_DPS else
               "the cost grows ~40x per 10x digits, so larger requests would not finish"))
    return int(dps)


# --------------------------------------------------------------------------- #
# arrays
# --------------------------------------------------------------------------- #
def _real_float_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 array, refusing strings, complex numbers and Python
    ints beyond float64 (an ``OverflowError`` would be raw)."""
    if isinstance(x, (str, bytes)):
        raise ShapeError(f"{name} must be a real array, got a string {x[:40]!r}")
    if type(x).__name__ == "matrix" and hasattr(x, "tolist") and not isinstance(x, np.ndarray):
        x = x.tolist()  # an mpmath matrix
    try:
        raw = np.asarray(x)
    except Exception as exc:  # ragged nested lists and the like
        raise ShapeError(f"{name} must be a real rectangular array: {exc}") from None
    if raw.dtype.kind == "c":
        raise ShapeError(f"{name} is complex ({raw.dtype}); the library works with real numbers: pass the real "
                         "part explicitly if that is what you mean")
    if raw.dtype.kind in "USV":
        raise ShapeError(f"{name} must hold numbers, got an array of {raw.dtype} (e.g. {raw.ravel()[:1]!r})")
    if raw.dtype.kind == "O":
        flat = raw.ravel()
        for v in flat:
            if not _is_real_scalar(v):
                raise ShapeError(f"{name} must hold real numbers, got {type(v).__name__} {v!r}"[:160])
    try:
        return np.asarray(raw, dtype=float)
    except OverflowError:
        raise RangeError(f"{name} holds an integer too large for float64 (max {F64_MAX:.3e}); rescale it") from None
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a real array: {exc}") from None


def check_inputs(x: Any, name: str = "x", *, ndim: int = 2, dim: int | tuple | None = None,
                 max_abs: float | None = None) -> np.ndarray:
    """Inputs as a finite float64 array of ``ndim`` axes ``(n, *features)``,
    ``n >= 1`` and every feature axis ``>= 1``.

    ``dim``: the required feature shape (an int for ``ndim=2``). ``max_abs``:
    the largest magnitude allowed (e.g. so that squared norms stay finite).
    A 1-D array is refused for ``ndim=2``: it is ambiguous.
    """
    arr = _real_float_array(x, name)
    if arr.size == 0:
        raise EmptyInputError(f"{name} is empty: shape {arr.shape}; give at least one point with one feature")
    if arr.ndim != ndim:
        hint = ""
        if arr.ndim == 1 and ndim == 2:
            hint = (f": a 1-D array is ambiguous; use {name}.reshape(-1, 1) for {arr.shape[0]} points with one "
                    f"feature, or {name}[None, :] for one point with {arr.shape[0]} features")
        raise ShapeError(f"{name} must have {ndim} axes (n, {'d' if ndim == 2 else '...'}), got shape {arr.shape}{hint}")
    if arr.size == 0:
        raise EmptyInputError(f"{name} is empty: shape {arr.shape}; give at least one point with one feature")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise NonFiniteError(f"{name} contains NaN or infinity (first at index {bad})")
    if dim is not None:
        want = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        if arr.shape[1:] != want:
            got = arr.shape[1] if ndim == 2 else arr.shape[1:]
            raise ShapeError(f"{name} has feature dimension {got}, expected {dim} (the dimension of the inputs "
                             "the network or the first argument has)")
    if max_abs is not None:
        top = float(np.max(np.abs(arr)))
        if top > max_abs:
            i = tuple(int(k) for k in np.unravel_index(np.argmax(np.abs(arr)), arr.shape))
            raise RangeError(f"{name}[{', '.join(map(str, i))}] = {arr[i]:.3g} exceeds {max_abs:.3g} in magnitude: "
                             "its square would overflow float64; rescale the inputs or use dps=")
    return arr


def check_squared_norms(x: np.ndarray, name: str) -> None:
    """Refuse rows whose squared norm leaves the float64 range (overflow to inf,
    or a nonzero row whose square underflows to a denormal or 0, which would then
    read as "zero norm"), naming the row."""
    flat = x.reshape(len(x), -1)
    scale = np.max(np.abs(flat), axis=1)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        unit = flat / np.where(scale > 0, scale, 1.0)[:, None]
        log_sq = 2 * np.log10(np.where(scale > 0, scale, 1.0)) + np.log10(np.sum(unit * unit, axis=1))
    hi = np.flatnonzero((scale > 0) & (log_sq > math.log10(F64_MAX) - 3))
    if hi.size:
        i = int(hi[0])
        raise RangeError(f"row {i} of {name} has squared norm ~1e{log_sq[i]:.0f}, beyond float64 (max ~1e308): "
                         "the kernel would overflow; rescale the inputs (e.g. divide by their largest norm) or use dps=")
    lo = np.flatnonzero((scale > 0) & (log_sq < math.log10(F64_TINY) + 3))
    if lo.size:
        i = int(lo[0])
        raise RangeError(f"row {i} of {name} has squared norm ~1e{log_sq[i]:.0f}, below float64's normal range "
                         "(~1e-308): it would read as a zero-norm input; rescale the inputs or use dps=")


def check_real_array(a: Any, name: str, *, ndim: int | tuple[int, ...] | None = None,
                     allow_high_precision: bool = False) -> np.ndarray:
    """A finite real array (labels, outputs, kernel blocks): float64, or with
    ``allow_high_precision`` an object array of mpmath numbers kept as is."""
    if allow_high_precision and (type(a).__name__ == "matrix" and hasattr(a, "tolist")):
        a = np.array(a.tolist(), dtype=object)
    if allow_high_precision and isinstance(a, np.ndarray) and a.dtype == object:
        for v in a.ravel():
            if not _is_real_scalar(v):
                raise ShapeError(f"{name} must hold real numbers, got {type(v).__name__} {v!r}"[:160])
        arr = a
        finite = all(mpmath.isfinite(v) if type(v).__name__ == "mpf" else math.isfinite(float(v)) for v in arr.ravel())
    else:
        arr = _real_float_array(a, name)
        finite = bool(np.all(np.isfinite(arr)))
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ShapeError(f"{name} must have {' or '.join(map(str, allowed))} axes, got shape {arr.shape}")
    if not finite:
        raise NonFiniteError(f"{name} contains NaN or infinity")
    return arr


def check_labels(y: Any, n: int, name: str = "y") -> np.ndarray:
    """Labels as a finite float64 ``(N, M)`` array; ``(N,)`` is one column.
    Numbers only: strings, booleans and complex labels are refused."""
    arr = _real_float_array(y, name)
    if np.asarray(y).dtype.kind == "b":
        raise ShapeError(f"{name} is boolean; pass numbers (e.g. {name}.astype(float)) if 0/1 labels are meant")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ShapeError(f"{name} must have shape (N,) or (N, M) with N={n}, got {arr.shape}")
    if arr.shape[1] == 0:
        raise EmptyInputError(f"{name} has no columns: shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError(f"{name} contains NaN or infinity")
    return arr


# --------------------------------------------------------------------------- #
# architectures
# --------------------------------------------------------------------------- #
def check_architecture(arch: Any, name: str = "arch") -> Any:
    """An architecture (``ne.mlp(...)``, ``ne.serial(...)``) ending in a Dense readout.

    Recognised by what the callers use (duck typing, so that this module
    depends on the errors alone and not on the layers): the kernel transform
    ``kernel_fn``, the entry points ``kernel`` and ``init`` and the
    ``readout_index`` of a serial composition."""
    if not all(hasattr(type(arch), attr) for attr in ("kernel_fn", "kernel", "init", "readout_index")):
        hint = " (an activation name is not an architecture: ne.mlp(1, 'relu') is)" if isinstance(arch, str) else ""
        raise ParameterError(f"{name} must be an architecture (ne.mlp(...) or ne.serial(...)), got "
                             f"{type(arch).__name__} {arch!r}"[:200] + hint)
    arch.readout_index  # noqa: B018 - raises ParameterError without a Dense readout
    return arch


# --------------------------------------------------------------------------- #
# resources
# --------------------------------------------------------------------------- #
#: A limit at or above this many bytes (cgroup v1 writes ~2^63 for "none") is no limit.
_NO_LIMIT = 1 << 60
#: Where the cgroup v2 (``memory.max``) and v1 (``memory.limit_in_bytes``) files may be.
CGROUP_DIRS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory"))


def _read_int(path: Path) -> int | None:
    """The integer in a one-line file (``None``: absent, unreadable or ``max``)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _stat_field(path: Path, key: str) -> int:
    """A ``key value`` field of a ``/proc`` status or cgroup ``memory.stat`` file (0 if absent)."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                parts = line.replace(":", " ").split()
                if len(parts) >= 2 and parts[0] == key:
                    return int(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return 0


def cgroup_memory_left(root: Path) -> tuple[int, int] | None:
    """``(limit, left)`` bytes of the cgroup memory controller at ``root``
    (v2 ``memory.max`` / ``memory.current``, else v1 ``memory.limit_in_bytes``
    / ``memory.usage_in_bytes``); ``left = limit - (usage - inactive file
    cache)``, the cache being what the kernel reclaims before failing an
    allocation. ``None``: no limit set there."""
    for lim_name, use_name, cache in (("memory.max", "memory.current", "inactive_file"),
                                      ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")):
        limit = _read_int(root / lim_name)
        if limit is not None and limit < _NO_LIMIT:
            usage = (_read_int(root / use_name) or 0) - _stat_field(root / "memory.stat", cache)
            return limit, max(0, limit - max(0, usage))
    return None


def memory_limits() -> list[tuple[str, int]]:
    """Every known bound on the bytes this process can still allocate, as
    ``(description, bytes)``: Linux ``MemAvailable`` (else the physical
    memory), the address-space and data-segment limits ``RLIMIT_AS``
    (``ulimit -v``) and ``RLIMIT_DATA`` less what the process maps already
    (``VmSize``, ``VmData``), and a cgroup v2/v1 memory limit less its usage.
    An allocation beyond any of them fails (``MemoryError``) or gets the
    process killed."""
    out = []
    avail = _stat_field(Path("/proc/meminfo"), "MemAvailable")
    if not avail:
        try:
            avail = int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            avail = 1 << 50
    out.append(("of memory available", avail))
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        resource = None
    if resource is not None:
        for rname, flag, field in (("RLIMIT_AS, ulimit -v", "RLIMIT_AS", "VmSize"),
                                   ("RLIMIT_DATA, ulimit -d", "RLIMIT_DATA", "VmData")):
            soft = resource.getrlimit(getattr(resource, flag))[0]
            if soft != resource.RLIM_INFINITY and soft < _NO_LIMIT:
                used = _stat_field(Path("/proc/self/status"), field)
                out.append((f"left under the {_human(soft)} limit {rname} ({_human(used)} in use)",
                            max(0, soft - used)))
    for root in CGROUP_DIRS:
        got = cgroup_memory_left(root)
        if got is not None:
            out.append((f"left under the cgroup memory limit of {_human(got[0])} ({root})", got[1]))
            break
    return out


def available_memory() -> int:
    """Bytes this process can still allocate: the smallest of
    :func:`memory_limits`."""
    return min(v for _, v in memory_limits())


def check_memory(nbytes: float, what: str, hint: str = "") -> None:
    """Refuse, before allocating, ``nbytes`` (estimated) above half of
    :func:`available_memory` (the estimate is rough, and other processes
    allocate too), raising :class:`ResourceError` with the amount and the
    limit that binds."""
    avail = available_memory()
    if nbytes > avail / 2:
        names = [name for name, v in memory_limits() if v == avail]
        where = names[0] if names else "of memory available"
        raise ResourceError(f"{what} needs ~{_human(nbytes)}, more than half of the {_human(avail)} {where}"
                            f"{'; ' + hint if hint else ''}")


@contextlib.contextmanager
def memory_errors_named(what: str, hint: str = ""):
    """Turn a ``MemoryError`` raised inside the block (an allocation the
    estimate of :func:`check_memory` did not foresee) into a
    :class:`ResourceError` saying what ran out and the binding limit."""
    try:
        yield
    except ResourceError:
        raise
    except MemoryError as exc:
        avail = available_memory()
        names = [name for name, v in memory_limits() if v == avail]
        raise ResourceError(f"{what} ran out of memory ({exc or 'MemoryError'}); {_human(avail)} "
                            f"{names[0] if names else 'of memory available'} now"
                            f"{'; ' + hint if hint else ''}") from exc


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PB"  # pragma: no cover


# --------------------------------------------------------------------------- #
# output paths (CLI)
# --------------------------------------------------------------------------- #
def check_output_file(path: Any, name: str) -> Path:
    """A path a file can be written to: its directory exists and is writable,
    and it is not itself a directory. Checked before a long run, not after."""
    p = Path(path)
    if p.is_dir():
        raise ParameterError(f"{name} {str(p)!r} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ParameterError(f"{name} {str(p)!r}: directory {str(parent)!r} does not exist")
    if str(p.resolve()).startswith("/proc/") or str(p.resolve()).startswith("/sys/"):
        raise ParameterError(f"{name} {str(p)!r} is in a kernel pseudo-filesystem; give a regular file")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ParameterError(f"{name} {str(p)!r} is not writable")
    return p


def check_output_dir(path: Any, name: str) -> Path:
    """A directory that exists and is writable, or that can be created in an
    existing writable directory: the rule of :func:`check_output_file` (an
    output's own directory must exist; nothing creates parent directories)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ParameterError(f"{name} {str(p)!r} exists and is not a directory")
    resolved = str(p.resolve())
    if resolved.startswith("/proc/") or resolved.startswith("/sys/") or resolved in ("/proc", "/sys"):
        raise ParameterError(f"{name} {str(p)!r} is in a kernel pseudo-filesystem; give a regular directory")
    target = p if p.exists() else (p.parent if str(p.parent) else Path("."))
    if not target.is_dir():
        raise ParameterError(f"{name} {str(p)!r}: directory {str(target)!r} does not exist")
    if not os.access(target, os.W_OK):
        raise ParameterError(f"{name} {str(p)!r} cannot be created or written ({str(target)!r} is not writable)")
    return p
