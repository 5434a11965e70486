"""Hypothesis strategies shared by the boundedkde tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: The four bound shapes every property is checked on.
BOUND_SHAPES: list[tuple[float | None, float | None]] = [
    (0.0, None),
    (None, 1.0),
    (0.0, 1.0),
    (None, None),
]


@st.composite
def samples_in_bounds(
    draw: st.DrawFn,
    bounds: tuple[float | None, float | None] = (0.0, 1.0),
    min_size: int = 5,
    max_size: int = 200,
) -> np.ndarray:
    """Float samples inside ``bounds`` with at least two distinct values."""
    lo, hi = bounds
    lo_v = -5.0 if lo is None else lo
    hi_v = 6.0 if hi is None else hi
    elems = st.floats(lo_v, hi_v, allow_nan=False, allow_infinity=False)
    x = draw(hnp.arrays(np.float64, st.integers(min_size, max_size), elements=elems))
    if np.ptp(x) <= 1e-3 * (hi_v - lo_v):
        x = np.concatenate([x, [lo_v + 0.25 * (hi_v - lo_v), lo_v + 0.75 * (hi_v - lo_v)]])
    return x


def weights_for(n: int) -> st.SearchStrategy[np.ndarray]:
    """Non-negative weights with a positive sum."""
    return hnp.arrays(
        np.float64, n, elements=st.floats(0.0, 10.0, allow_nan=False)
    ).filter(lambda w: w.sum() > 1e-3)


def split_points(n: int) -> st.SearchStrategy[int]:
    """An index that splits n values into two non-empty parts."""
    return st.integers(1, max(n - 1, 1))
