"""Input coercion: numpy arrays, lists, pandas and polars Series/DataFrames, missing values.

Missing values (NaN, None, pandas' NA, polars' null) are refused unless the caller
passes ``nan_policy="omit"``, which drops the rows that have one in the data or in the
data (a row of 2-D data is dropped when any of its columns is missing) together with
its weight; missing weights themselves are an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

NAN_POLICIES = ("omit", "raise")

FloatArray = NDArray[np.float64]


def to_float_array(x: Any, name: str) -> FloatArray:
    """A float array from numpy, lists, pandas or polars objects (missing -> NaN)."""
    if hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):
        try:
            raw = x.to_numpy(dtype=float, na_value=np.nan)  # pandas
        except TypeError:
            raw = x.to_numpy()  # polars (nulls of float/int columns become NaN)
        except ValueError as err:
            raise TypeError(f"{name} must be an array of real numbers; {err}") from err
        x = raw
    try:
        complex_data = np.asarray(x).dtype.kind == "c"
    except Exception:  # whatever does not convert is reported below
        complex_data = False
    if complex_data:
        raise TypeError(
            f"{name} must be an array of real numbers; got complex values (take .real or "
            "abs() first if that is what you mean)"
        )
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as err:
        what = "non-negative numbers or None" if name == "weights" else "real numbers"
        raise TypeError(
            f"{name} must be an array of {what} (numpy, list, pandas or polars); got "
            f"{type(x).__name__} that does not convert: {err}"
        ) from err
    return arr


def apply_nan_policy(
    x: FloatArray, weights: FloatArray | None, nan_policy: str
) -> tuple[FloatArray, FloatArray | None]:
    """Drop rows with a missing value (``"omit"``) or refuse them (``"raise"``)."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}; got {nan_policy!r}")
    # np.min propagates NaN: one reduction tells whether there is any, and the row mask
    # (a pass and a boolean array the size of x) is only built when there is.
    if x.size == 0 or not np.isnan(np.min(x)):
        return x, weights
    bad = np.isnan(x) if x.ndim <= 1 else np.isnan(x).any(axis=tuple(range(1, x.ndim)))
    if nan_policy == "raise":
        raise ValueError(
            f"x must contain only finite values; it has {int(bad.sum())} missing value(s) "
            "(NaN, None or null): pass nan_policy='omit' to drop those rows"
        )
    if weights is not None and weights.shape[:1] != bad.shape:
        return x, weights  # the weights check reports the length mismatch
    keep = ~bad
    return x[keep], None if weights is None else weights[keep]
