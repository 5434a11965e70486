"""Binned sufficient statistics, for data that arrives in chunks or lives on a cluster.

Weighted linear binning is additive: the counts of a data set are the sum of the counts
of its parts on the same grid. :class:`BinnedData` holds those counts with the few
scalars a fit needs (total weight, sum of squared weights for Kish's effective sample
size, data range), so

- ``BoundedKDE.partial_fit`` adds chunk after chunk (streams), and
- :func:`bin_dask` bins each chunk of a Dask array or DataFrame column where it lives
  and sums the partial counts (``boundedkde[dask]``), so 10^9 samples never sit in one
  process's memory.

The fit itself (bandwidth on the merged counts, boundary correction) runs on the
summed counts with :meth:`boundedkde.BoundedKDE._fit_binned`. On an open side the grid
is extended by whole nodes when new data falls beyond it, which keeps every node in
place, so counts stay exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from boundedkde.binning import linear_binning

__all__ = ["BinnedData", "bin_chunk", "bin_dask", "is_dask_collection"]

FloatArray = NDArray[np.float64]
Bound = float | None


@dataclass(frozen=True)
class BinnedData:
    """Linear-binned weights on the grid ``grid_lo + k * step``, ``k = 0 .. size-1``.

    Attributes
    ----------
    grid_lo, step : float
        First node and node spacing.
    counts : ndarray
        Binned weights, one per node.
    total_weight, sum_w2 : float
        Sum of weights and of squared weights (Kish's :math:`n_{eff} = (\\sum w)^2/\\sum w^2`).
    data_min, data_max : float
        Range of the observations with positive weight.
    """

    grid_lo: float
    step: float
    counts: FloatArray
    total_weight: float
    sum_w2: float
    data_min: float
    data_max: float

    @property
    def grid_hi(self) -> float:
        return self.grid_lo + self.step * (self.counts.size - 1)

    def extend(self, lo: float, hi: float) -> BinnedData:
        """The same counts on a grid extended by whole nodes to cover ``[lo, hi]``."""
        front = max(0, math.ceil((self.grid_lo - lo) / self.step - 1e-9))
        back = max(0, math.ceil((hi - self.grid_hi) / self.step - 1e-9))
        if not front and not back:
            return self
        counts = np.concatenate([np.zeros(front), self.counts, np.zeros(back)])
        return BinnedData(
            self.grid_lo - front * self.step,
            self.step,
            counts,
            self.total_weight,
            self.sum_w2,
            self.data_min,
            self.data_max,
        )

    def __add__(self, other: BinnedData) -> BinnedData:
        if not math.isclose(self.step, other.step, rel_tol=1e-12):
            raise ValueError(
                "BinnedData on different grids cannot be added "
                f"(steps {self.step} and {other.step})"
            )
        lo = min(self.grid_lo, other.grid_lo)
        hi = max(self.grid_hi, other.grid_hi)
        a, b = self.extend(lo, hi), other.extend(lo, hi)
        if a.counts.size != b.counts.size or abs(a.grid_lo - b.grid_lo) > 1e-9 * self.step:
            raise ValueError("BinnedData grids are not aligned (their nodes differ)")
        return BinnedData(
            a.grid_lo,
            self.step,
            a.counts + b.counts,
            self.total_weight + other.total_weight,
            self.sum_w2 + other.sum_w2,
            min(self.data_min, other.data_min),
            max(self.data_max, other.data_max),
        )


def bin_chunk(
    x: FloatArray, weights: FloatArray | None, grid_lo: float, step: float, size: int
) -> BinnedData:
    """Bin one chunk on the grid ``grid_lo + k * step`` (pure; runs on a worker).

    NaN or inf in the chunk makes ``data_min``/``data_max`` non-finite, which the caller
    reports; data beyond the grid is the caller's to prevent (the grid is chosen from
    the bounds or the data range first).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if x.size == 0:
        return BinnedData(grid_lo, step, np.zeros(size), 0.0, 0.0, math.inf, -math.inf)
    if (
        w is not None
        and w.size
        and not (np.isfinite(np.min(w)) and np.min(w) >= 0.0 and np.isfinite(np.max(w)))
    ):
        # Reported by the caller as bad weights (a NaN total cannot come from good ones).
        return BinnedData(grid_lo, step, np.zeros(size), math.nan, 0.0, 0.0, 0.0)
    support = x if w is None else x[w > 0]
    dmin = float(np.min(support)) if support.size else math.inf
    dmax = float(np.max(support)) if support.size else -math.inf
    if not (math.isfinite(dmin) and math.isfinite(dmax)) and support.size:
        return BinnedData(grid_lo, step, np.zeros(size), 0.0, 0.0, math.nan, math.nan)
    slack = 1e-9 * step
    if support.size and (dmin < grid_lo - slack or dmax > grid_lo + step * (size - 1) + slack):
        # Out of the grid (so out of the bounds): keep the range for the caller's error.
        return BinnedData(grid_lo, step, np.zeros(size), 0.0, 0.0, dmin, dmax)
    counts = linear_binning(x, w, grid_lo, grid_lo + step * (size - 1), size)
    total = float(x.size) if w is None else float(w.sum())
    sum_w2 = float(x.size) if w is None else float(np.dot(w, w))
    return BinnedData(grid_lo, step, counts, total, sum_w2, dmin, dmax)


def is_dask_collection(x: Any) -> bool:
    """True for Dask arrays, Series and DataFrames (without importing Dask)."""
    return hasattr(x, "__dask_graph__") and callable(x.__dask_graph__)


def _as_dask_array(x: Any, name: str, lengths: bool = False) -> Any:
    if hasattr(x, "to_dask_array"):  # Dask Series / single-column DataFrame
        # Partition lengths cost a pass over the data; only weights need them (to align).
        arr = x.to_dask_array(lengths=True if lengths else None)
    else:
        arr = x
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} as a Dask collection must be 1-D (a Dask array, Series or one DataFrame "
            f"column); got {arr.ndim} dimensions"
        )
    return arr


def bin_dask(
    x: Any, weights: Any, bounds: tuple[Bound, Bound], grid_size: int, pad: float
) -> BinnedData:
    """Bin a Dask collection chunk by chunk where it lives and sum the partial counts.

    With both bounds finite the grid is the bounds and one pass suffices; with an open
    side a first pass finds the data range (the grid then pads it by ``pad`` of its
    width on open sides, as the in-memory fit does).

    Parameters
    ----------
    x : dask.array.Array, dask Series or one-column DataFrame
        The observations.
    weights : same kind of collection with the same chunks, or None
    bounds : (lower, upper)
    grid_size : int
        Grid nodes over the binned range.
    pad : float
        Padding of an open side as a fraction of the data range.

    Returns
    -------
    BinnedData
    """
    try:
        import dask
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("fitting Dask data needs dask: pip install 'boundedkde[dask]'") from err
    arr = _as_dask_array(x, "x", lengths=weights is not None)
    warr = None if weights is None else _as_dask_array(weights, "weights", lengths=True)
    n = arr.shape[0]
    if not math.isnan(n) and n == 0:
        raise ValueError("x must not be empty; the Dask data has no rows")
    if warr is not None:
        nw = warr.shape[0]
        if not (math.isnan(n) or math.isnan(nw)) and n != nw:
            raise ValueError(
                f"weights must have the same length as x; got {nw} weights for {n} values"
            )
    if warr is not None and warr.chunks != arr.chunks:
        warr = warr.rechunk(arr.chunks)
    lo, hi = bounds
    if lo is None or hi is None:
        if warr is None:
            dmin, dmax = dask.compute(arr.min(), arr.max())
        else:
            import dask.array as da

            # One pass for the weights' range and the range of the data they carry.
            pos = warr > 0
            dmin, dmax, wmin, wmax = dask.compute(
                da.where(pos, arr, math.inf).min(),
                da.where(pos, arr, -math.inf).max(),
                warr.min(),
                warr.max(),
            )
            if not (math.isfinite(wmin) and math.isfinite(wmax) and wmin >= 0 and wmax > 0):
                raise ValueError(
                    "weights must be finite, non-negative and not all zero; got values in "
                    f"[{float(wmin):g}, {float(wmax):g}]"
                )
        dmin, dmax = float(dmin), float(dmax)
        if not (math.isfinite(dmin) and math.isfinite(dmax)):
            raise ValueError("x must be finite; the Dask data has NaN or inf")
        width = dmax - dmin
        glo = lo if lo is not None else dmin - pad * width
        ghi = hi if hi is not None else dmax + pad * width
        if (lo is not None and dmin < lo) or (hi is not None and dmax > hi):
            glo, ghi = min(glo, dmin), max(ghi, dmax)  # reported as out of bounds later
    else:
        glo, ghi = lo, hi
    step = (ghi - glo) / (grid_size - 1)
    blocks = arr.to_delayed().ravel()
    wblocks = [None] * len(blocks) if warr is None else list(warr.to_delayed().ravel())
    parts = [
        dask.delayed(bin_chunk)(b, wb, glo, step, grid_size)
        for b, wb in zip(blocks, wblocks, strict=True)
    ]
    # Pairwise tree reduction keeps each task's inputs to two count vectors.
    while len(parts) > 1:
        parts = [
            dask.delayed(_add)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    (total,) = dask.compute(parts[0])
    result: BinnedData = total
    return result


def _add(a: BinnedData, b: BinnedData) -> BinnedData:
    return a + b
