"""Input checks shared by the estimator. Every error names the parameter, what is
allowed and what was given (conventions: errors a person can act on)."""

from __future__ import annotations

import importlib.util
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Bound = float | None


def _choices(names: Any) -> str:
    return ", ".join(repr(n) for n in sorted(names))


def check_choice(value: Any, name: str, allowed: Any, owner: str = "BoundedKDE") -> str:
    """``value`` must be one of the registry keys ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} of {owner} must be one of {_choices(allowed)}; got {value!r}")
    return value


def check_bounds(bounds: Any) -> tuple[Bound, Bound]:
    """``bounds`` is a pair ``(lower, upper)`` of finite numbers or None, lower < upper."""
    if isinstance(bounds, str) or not hasattr(bounds, "__len__") or len(bounds) != 2:
        raise TypeError(
            "bounds of BoundedKDE must be a pair (lower, upper) with None for an open "
            f"side, e.g. (0, None); got {bounds!r}"
        )
    out: list[Bound] = []
    for side, value in zip(("lower", "upper"), bounds, strict=True):
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"bounds of BoundedKDE: the {side} bound must be a real number or None; "
                f"got {value!r}"
            )
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(
                f"bounds of BoundedKDE: the {side} bound must be finite (use None for an "
                f"open side); got {value!r}"
            )
        out.append(v)
    lo, hi = out
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"bounds of BoundedKDE must satisfy lower < upper; got ({lo}, {hi})")
    return lo, hi


def check_bandwidth(bandwidth: Any, allowed: Any) -> str | float | Callable[..., Any]:
    """A rule name, a positive finite float (the kernel standard deviation), or a callable."""
    if isinstance(bandwidth, str):
        return check_choice(bandwidth, "bandwidth", allowed)
    if callable(bandwidth):
        return bandwidth
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real):
        raise TypeError(
            f"bandwidth of BoundedKDE must be one of {_choices(allowed)}, a positive float "
            f"(the kernel standard deviation in data units) or a callable; got {bandwidth!r}"
        )
    h = float(bandwidth)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(
            "bandwidth of BoundedKDE must be a positive finite float (the kernel standard "
            f"deviation in data units); got {bandwidth!r}"
        )
    return h


#: Largest grid a user may ask for: a fit holds a few dozen float arrays of the grid's
#: size (binning, FFT convolution, boundary moments); 2**26 nodes took about 19 GB, so
#: 2**22 (16x the automatic refinement's 2**20) stays near 1 GB.
MAX_USER_GRID_SIZE = 2**22


def check_grid_size(grid_size: Any) -> int | None:
    """None (automatic) or an integer in ``[16, MAX_USER_GRID_SIZE]``."""
    if grid_size is None:
        return None
    if isinstance(grid_size, bool) or not isinstance(grid_size, numbers.Integral):
        raise TypeError(f"grid_size of BoundedKDE must be an integer or None; got {grid_size!r}")
    if not 16 <= int(grid_size) <= MAX_USER_GRID_SIZE:
        raise ValueError(
            f"grid_size of BoundedKDE must be between 16 and 2**22 = {MAX_USER_GRID_SIZE} "
            f"(memory grows about 300 bytes per node); got {grid_size!r}"
        )
    return int(grid_size)


def multivariate_hint() -> str:
    """Where to go for 2-D and 3-D data, if the multivariate module exists."""
    try:
        spec = importlib.util.find_spec("boundedkde.multivariate")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "multivariate estimation is not available yet"
    return "2-D or 3-D data go in as shape (n, d), d <= 3"


def check_x(x: Any, name: str = "x") -> FloatArray:
    """1-D float data: shape (n,) or (n, 1). NaN/inf are checked later from min/max."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers; got {type(x).__name__}") from exc
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D, shape (n,) or (n, 1); got shape {arr.shape} "
            f"({multivariate_hint()})"
        )
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got 0 values")
    return arr


def check_weights(weights: Any, n: int) -> FloatArray | None:
    """None, or n finite non-negative weights with a positive sum."""
    if weights is None:
        return None
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "weights must be an array of non-negative numbers or None; got "
            f"{type(weights).__name__}"
        ) from exc
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) like x; got shape {w.shape}")
    lo = float(w.min())
    total = float(w.sum())
    if not (math.isfinite(lo) and math.isfinite(total)):
        raise ValueError("weights must be finite; got NaN or infinite values")
    if lo < 0:
        raise ValueError(f"weights must be non-negative; got a minimum of {lo}")
    if total <= 0:
        raise ValueError("weights must not all be zero; got a sum of 0")
    return w


def check_data_range(
    xmin: float, xmax: float, lo: Bound, hi: Bound, name: str = "x", allow_constant: bool = False
) -> None:
    """Finite, inside the bounds, not constant (unless ``allow_constant``, for a later chunk
    of a stream); from the min and max alone (no extra pass)."""
    if not (math.isfinite(xmin) and math.isfinite(xmax)):
        raise ValueError(
            f"{name} must contain only finite values; got NaN or infinite values "
            f"(min {xmin}, max {xmax})"
        )
    if (lo is not None and xmin < lo) or (hi is not None and xmax > hi):
        raise ValueError(
            f"{name} has values outside bounds=({lo}, {hi}): min {xmin}, max {xmax}; bounds "
            "are never inferred from the data, so widen bounds or remove those values"
        )
    if not xmax > xmin and not allow_constant:
        raise ValueError(
            f"{name} is constant (every value with positive weight equals {xmin}); a density "
            "estimate needs at least two distinct values"
        )


def check_points(x: Any, name: str = "x") -> FloatArray:
    """Evaluation points: any shape, no NaN (±inf allowed)."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers; got {type(x).__name__}") from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not contain NaN")
    return arr


def check_probabilities(q: Any, name: str = "q") -> FloatArray:
    """Probabilities in [0, 1]."""
    arr = check_points(q, name)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1]; got values from {arr.min()} to {arr.max()}")
    return arr


def check_sample_size(n: Any) -> int:
    """A non-negative integer."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or int(n) < 0:
        raise ValueError(f"n must be a non-negative integer; got {n!r}")
    return int(n)


def check_grid_points(n: Any) -> int | None:
    """None or an integer of at least 2."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or int(n) < 2:
        raise ValueError(f"n of grid() must be an integer of at least 2 or None; got {n!r}")
    return int(n)
