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
summed counts. On an open side the grid is extended by whole nodes when new data falls
beyond it, which keeps every node in place, so counts stay exact; when the extended grid
would exceed a node limit it is coarsened two-to-one, which is also exact for linear
binning (:meth:`BinnedData.coarsen`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
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
        Range of the observations with positive weight (NaN when a chunk had NaN).
    on_lower, on_upper : float
        Weight of the observations exactly on the lower and upper bound passed to
        :func:`bin_chunk` (0 when no bounds were passed): the estimator leaves them out
        of a named bandwidth rule, as ``fit`` does.
    off_weight, off_sum_w2, off_min, off_max : float
        Sum of weights, of squared weights, and range of the other observations (summed
        directly, not as differences, which would cancel): the rule's effective size,
        and whether at least two distinct values remain.
    """

    grid_lo: float
    step: float
    counts: FloatArray
    total_weight: float
    sum_w2: float
    data_min: float
    data_max: float
    on_lower: float = 0.0
    on_upper: float = 0.0
    off_weight: float = 0.0
    off_sum_w2: float = 0.0
    off_min: float = math.inf
    off_max: float = -math.inf

    @property
    def grid_hi(self) -> float:
        return self.grid_lo + self.step * (self.counts.size - 1)

    def _with(self, grid_lo: float, step: float, counts: FloatArray) -> BinnedData:
        return dataclasses.replace(self, grid_lo=grid_lo, step=step, counts=counts)

    def extend(self, lo: float, hi: float, max_size: int | None = None) -> BinnedData:
        """The same counts on a grid extended by whole nodes to cover ``[lo, hi]``.

        With ``max_size``, a grid that would need more nodes is first coarsened
        (:meth:`coarsen`, exact) as often as needed.
        """
        out = self
        while True:
            front = max(0, math.ceil((out.grid_lo - lo) / out.step - 1e-9))
            back = max(0, math.ceil((hi - out.grid_hi) / out.step - 1e-9))
            if max_size is None or out.counts.size + front + back <= max_size:
                break
            out = out.coarsen()
        if not front and not back:
            return out
        counts = np.concatenate([np.zeros(front), out.counts, np.zeros(back)])
        return out._with(out.grid_lo - front * out.step, out.step, counts)

    def coarsen(self) -> BinnedData:
        """The counts on every other node (twice the spacing), exactly.

        Linear binning with spacing ``2Δ`` equals linear binning with spacing ``Δ``
        followed by moving each dropped node's weight half to each neighbour: a point at
        ``t`` (in units of ``Δ``) between kept nodes ``0`` and ``2`` gets ``1 - t/2`` and
        ``t/2`` either way.
        """
        counts = self.counts
        if counts.size % 2 == 0:
            counts = np.concatenate([counts, [0.0]])
        kept = counts[::2].copy()
        half = 0.5 * counts[1::2]
        kept[:-1] += half
        kept[1:] += half
        return self._with(self.grid_lo, 2.0 * self.step, kept)

    def rebin(self, lo: float, hi: float, size: int) -> FloatArray:
        """The counts on ``size`` nodes from ``lo`` to ``hi`` (a fit's grid).

        Each node's weight is linearly binned onto the new grid (nodes beyond it, at
        most a node past a bound, are moved onto its end). This is exact when every new
        node is an old one, e.g. the same grid or one with a multiple of the spacing
        through the same nodes (linear interpolation of a linear interpolation is
        linear); otherwise it smooths by at most one old spacing, which is why streams
        store their counts on a grid at least eight times finer than the fit's
        (``_STREAM_REFINE`` in ``estimator.py``).
        """
        step = (hi - lo) / (size - 1)
        if size == self.counts.size and lo == self.grid_lo and math.isclose(
            step, self.step, rel_tol=1e-12
        ):
            return self.counts.copy()
        nz = np.flatnonzero(self.counts)
        nodes = np.clip(self.grid_lo + self.step * nz.astype(float), lo, hi)
        return linear_binning(nodes, self.counts[nz], lo, hi, size)

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
            _nan_min(self.data_min, other.data_min),
            _nan_max(self.data_max, other.data_max),
            self.on_lower + other.on_lower,
            self.on_upper + other.on_upper,
            self.off_weight + other.off_weight,
            self.off_sum_w2 + other.off_sum_w2,
            min(self.off_min, other.off_min),
            max(self.off_max, other.off_max),
        )


def _nan_min(a: float, b: float) -> float:
    """``min`` that keeps a NaN (a chunk with NaN must not vanish in the sum)."""
    return math.nan if math.isnan(a) or math.isnan(b) else min(a, b)


def _nan_max(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


def bin_chunk(
    x: FloatArray,
    weights: FloatArray | None,
    grid_lo: float,
    step: float,
    size: int,
    bounds: tuple[Bound, Bound] = (None, None),
) -> BinnedData:
    """Bin one chunk on the grid ``grid_lo + k * step`` (pure; runs on a worker).

    NaN or inf in the chunk makes ``data_min``/``data_max`` non-finite, which the caller
    reports; data beyond the grid is the caller's to prevent (the grid is chosen from
    the bounds or the data range first). Points with zero weight are left out (they
    may lie anywhere). With ``bounds``, the weight of the points exactly on a finite
    bound is recorded (``on_lower``, ``on_upper``), and the weight sums and range of the
    others (``off_*``).
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
    if w is not None and w.size == x.size and not np.all(w > 0):
        keep = w > 0
        x, w = x[keep], w[keep]
    dmin = float(np.min(x)) if x.size else math.inf
    dmax = float(np.max(x)) if x.size else -math.inf
    if not (math.isfinite(dmin) and math.isfinite(dmax)) and x.size:
        return BinnedData(grid_lo, step, np.zeros(size), 0.0, 0.0, math.nan, math.nan)
    grid_hi = grid_lo + step * (size - 1)
    # Rounding of far-off grid ends: a point within a few ulps of an end is on it.
    slack = 1e-9 * step + 4.0 * math.ulp(max(abs(grid_lo), abs(grid_hi)))
    if x.size and (dmin < grid_lo - slack or dmax > grid_hi + slack):
        # Out of the grid (so out of the bounds): keep the range for the caller's error.
        return BinnedData(grid_lo, step, np.zeros(size), 0.0, 0.0, dmin, dmax)
    if x.size and (dmin < grid_lo or dmax > grid_hi):
        x = np.clip(x, grid_lo, grid_hi)
    counts = linear_binning(x, w, grid_lo, grid_hi, size)
    total = float(x.size) if w is None else float(w.sum())
    sum_w2 = float(x.size) if w is None else float(np.dot(w, w))
    out = BinnedData(grid_lo, step, counts, total, sum_w2, dmin, dmax)
    lo, hi = bounds
    if (lo is None or dmin > lo) and (hi is None or dmax < hi):
        return out  # no observation on a bound (or none given): nothing to record
    on_lo = x == lo if lo is not None else np.zeros(x.shape, dtype=bool)
    on_hi = x == hi if hi is not None else np.zeros(x.shape, dtype=bool)
    off = ~(on_lo | on_hi)
    ww = np.ones(x.shape) if w is None else w
    wo = ww[off]
    return dataclasses.replace(
        out,
        on_lower=float(ww[on_lo].sum()),
        on_upper=float(ww[on_hi].sum()),
        off_weight=float(wo.sum()),
        off_sum_w2=float(np.dot(wo, wo)),
        off_min=float(x[off].min()) if off.any() else math.inf,
        off_max=float(x[off].max()) if off.any() else -math.inf,
    )


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
    x: Any,
    weights: Any,
    bounds: tuple[Bound, Bound],
    grid_size: int,
    pad: float,
    layout: Callable[[float, float], tuple[Bound, Bound]] | None = None,
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
    layout : callable, optional
        ``layout(data_min, data_max) -> grid_bounds``: the finite bounds the grid ends on
        (a bound returned as None is laid out as an open side). The estimator passes its
        far-bound rule. With both bounds finite the first pass bins on the bounds, and a
        second pass re-bins only if it shows a bound to be far from the data.

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
    if lo is not None and hi is not None and math.isfinite((hi - lo) / grid_size):
        first = _bin_pass(dask, arr, warr, lo, hi, grid_size, bounds)
        dmin, dmax = first.data_min, first.data_max
        if (
            layout is None
            or first.total_weight <= 0
            or not (math.isfinite(dmin) and math.isfinite(dmax) and lo <= dmin <= dmax <= hi)
        ):
            return first  # bad data is reported by the caller
        grid = layout(dmin, dmax)
        if grid == bounds:
            return first
    else:
        dmin, dmax = _data_range(dask, arr, warr)
        grid = bounds if layout is None else layout(dmin, dmax)
        if (lo is not None and dmin < lo) or (hi is not None and dmax > hi):
            grid = bounds  # reported as out of bounds later
    width = dmax - dmin
    glo = grid[0] if grid[0] is not None else dmin - pad * width
    ghi = grid[1] if grid[1] is not None else dmax + pad * width
    glo, ghi = min(glo, dmin), max(ghi, dmax)
    return _bin_pass(dask, arr, warr, glo, ghi, grid_size, bounds)


def _data_range(dask: Any, arr: Any, warr: Any) -> tuple[float, float]:
    """Range of the data with positive weight (one pass), with the weights' checks."""
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
    return dmin, dmax


def _bin_pass(
    dask: Any,
    arr: Any,
    warr: Any,
    glo: float,
    ghi: float,
    grid_size: int,
    bounds: tuple[Bound, Bound] = (None, None),
) -> BinnedData:
    """One pass: bin every chunk on ``grid_size`` nodes over ``[glo, ghi]`` and sum
    (recording the weight on the finite ``bounds``, see :func:`bin_chunk`)."""
    step = (ghi - glo) / (grid_size - 1)
    blocks = arr.to_delayed().ravel()
    wblocks = [None] * len(blocks) if warr is None else list(warr.to_delayed().ravel())
    parts = [
        dask.delayed(bin_chunk)(b, wb, glo, step, grid_size, bounds)
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
