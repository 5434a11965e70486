"""Bounded kernel density estimation in two and three dimensions.

The estimate lives on a box ``[lo_1, hi_1] x ... x [lo_d, hi_d]`` (any side may be open)
and is computed on a regular grid: weighted multilinear binning, one FFT convolution with
a Gaussian kernel of full covariance ``H`` (the *bandwidth matrix*), and a boundary
correction chosen per axis.  Points anywhere are evaluated by multilinear interpolation
inside the grid and by a direct kernel sum outside it, so evaluation never requires a
grid that encloses everything.

What "bandwidth" means in d dimensions
--------------------------------------
The bandwidth is the kernel's covariance matrix ``H`` (d x d), the d-dimensional analogue
of the 1-D convention "bandwidth = kernel standard deviation" (``H = h**2`` in 1-D).

- ``"scott"`` / ``"silverman"``: ``H = f**2 * S`` with ``S`` the weighted covariance of the
  data (pre-whitening, as :func:`scipy.stats.gaussian_kde` and GetDist do) and
  ``f = n_eff**(-1/(d+4))`` (Scott 1992, eq. 6.42) or
  ``f = (n_eff (d+2) / 4)**(-1/(d+4))`` (Silverman 1986, eq. 4.14).
- ``"isj"``: per-axis improved Sheather-Jones (Botev, Grotowski and Kroese 2010) standard
  deviations ``h_i`` of each 1-D marginal, carried from the 1-D to the d-dimensional
  AMISE rate by the normal-reference ratio
  ``r_d = (4/(d+2))**(1/(d+4)) n**(-1/(d+4)) / ((4/3)**(1/5) n**(-1/5))``, combined with the
  data's correlation matrix ``R``: ``H = D R D``, ``D = diag(r_d h_i)``.
- a float ``f``: the kernel standard deviation in whitened units, ``H = f**2 * S``
  (the same number as a scalar ``bw_method`` of :func:`scipy.stats.gaussian_kde`).
- a (d, d) array: ``H`` itself.
- a callable ``bandwidth(x, weights) -> float | (d, d) array``, read as above.

On axes handled by transformation, ``H`` is in the transformed coordinates.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree
from scipy.special import logsumexp

from . import _nd_grid as g
from ._inputs import to_float_array
from .bandwidth import isj, silverman
from .estimator import _binning_range, _bound_atoms, auto_method
from .transforms import TRANSFORMS, default_transform

__all__ = ["ND_BANDWIDTHS", "ND_METHODS", "NDFit", "fit_nd", "mbc_scale_nd"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
Bound = tuple[float | None, float | None]

#: Boundary methods of the d-dimensional estimator (applied per axis).
ND_METHODS: dict[str, str] = {
    "auto": "transform on an axis whose data show a pole at a bound, linear-mbc otherwise",
    "linear": "linear boundary kernel (local-linear; Jones 1993, Hazelton and Marshall 2009) "
    "made non-negative as in Jones and Foster (1996)",
    "linear-mbc": "linear with the Jones-Linton-Nielsen (1995) multiplicative bias "
    "correction (renormalised smoother of 1/pilot at the data), larger bandwidth",
    "reflect": "reflection: the unbounded estimate folded into the box (corners included)",
    "renorm": "renormalisation by the kernel mass inside the box",
    "transform": "log (one bound) or probit (two bounds) per axis, with the Jacobian",
}

#: Gaussian tail cut, in kernel standard deviations: the grid is padded and the stencil
#: truncated at CUT sigma (Gaussian mass beyond 5 sigma is 2.9e-7 per side).
CUT = 5.0

#: Relative level below which FFT-convolved values are round-off (double precision FFTs
#: carry absolute errors of ~1e-16 of the peak; 1e-12 leaves a wide margin).  Grid values
#: below it are replaced by the direct kernel sum when evaluated.
FFT_FLOOR = 1e-12

#: Data points summed for the direct evaluation beyond the grid (nearest in Mahalanobis
#: distance); there the nearest points dominate exponentially.
FAR_NEIGHBOURS = 32

#: Nodes of the per-axis 1-D binning behind the "isj" rule (2**12: ISJ's DCT needs a
#: fine marginal grid; Botev's reference code uses 2**14, the 1-D core's default, but a
#: d-dimensional bandwidth is resolved by at most a few hundred nodes per axis anyway).
ISJ_GRID = 4096

#: Default nodes per axis for d = 2 and d = 3 (the issue's 256^2 and 64^3).
DEFAULT_GRID = {2: 256, 3: 64}

#: Largest dimension the grid path supports.
MAX_DIM = 3

#: Smallest number of nodes per axis of the fit's grid (``grid_size``): below it a
#: Gaussian of a few nodes' width is not resolved. :meth:`NDFit.grid` only interpolates,
#: so its ``n`` may be as small as 2.
MIN_GRID = 8

#: Largest total number of grid nodes (product over axes), for ``grid_size`` and for
#: :meth:`NDFit.grid`: 2**20, i.e. 1024**2 in 2-D or 101**3 in 3-D (16 and 4 times the
#: defaults). Derived from memory: one float64 grid array is 8 MiB at the cap, and the
#: measured peak of a default fit (``auto``/``isj``, i.e. ``linear-mbc``: the binned
#: data, d + 1 data moments, the box moments, their FFT spectra on the zero-padded
#: grid and the MBC smoother) is about 52 grid-sized arrays in 2-D and 140 in 3-D, i.e.
#: about 0.4 GiB and 1.1 GiB at the cap.
MAX_GRID_NODES = 2**20

#: Largest number of nodes of the zero-padded FFT convolution (grid plus stencil). A
#: kernel wider than the grid (a large bandwidth with bounds on both sides of an axis)
#: needs a stencil as wide as the grid, and with the box moments of ``linear`` about
#: 250 arrays of this size were measured: 2**23 nodes (64 MiB per array) keeps that near
#: 2 GiB; above it the fit raises instead of running out of memory.
MAX_FFT_NODES = 2**23

#: Smallest Kish effective sample size per dimension: a bandwidth rule and the
#: covariance need at least d + 1 effective points (n_eff = 1 is a single point).
MIN_NEFF_OVER_D = 1.0


def _scott_factor(n_eff: float, d: int) -> float:
    """Scott (1992, eq. 6.42): ``n**(-1/(d+4))``."""
    return float(n_eff ** (-1.0 / (d + 4)))


def _silverman_factor(n_eff: float, d: int) -> float:
    """Silverman (1986, eq. 4.14): ``(n (d+2) / 4)**(-1/(d+4))``."""
    return float((n_eff * (d + 2) / 4.0) ** (-1.0 / (d + 4)))


def mbc_scale_nd(n_eff: float, d: int) -> float:
    """Ratio of the MBC-optimal to the second-order-optimal bandwidth, d-dim normal reference.

    In whitened coordinates with kernel ``N(0, h**2 I)``, the Jones-Linton-Nielsen (1995)
    estimator has bias ``-(h**4/4) f Lap(Lap f / f)`` = ``-(d h**4/2) f`` for the standard
    normal ``f``, so the integrated squared bias is ``d**2 h**8 (4 pi)**(-d/2) / 4``, and
    variance ``V/(n h**d)`` with ``V = R(2K - K*K) = 4 (4 pi)**(-d/2) - 4 (6 pi)**(-d/2)
    + (8 pi)**(-d/2)``.  The AMISE optimum is
    ``h = (V (4 pi)**(d/2) / (2 d n))**(1/(d+8))``, against Silverman's
    ``(4/(d+2))**(1/(d+4)) n**(-1/(d+4))`` for the plain estimator; this returns the
    ratio.  For d = 1 it is the 1-D core's :func:`boundedkde.bandwidth.mbc_scale`.
    """
    v = 4 * (4 * math.pi) ** (-d / 2) - 4 * (6 * math.pi) ** (-d / 2) + (8 * math.pi) ** (-d / 2)
    c_mbc = (v * (4 * math.pi) ** (d / 2) / (2 * d)) ** (1.0 / (d + 8))
    c_2 = (4.0 / (d + 2)) ** (1.0 / (d + 4))
    return float(c_mbc / c_2 * n_eff ** (1.0 / (d + 4) - 1.0 / (d + 8)))


def _isj_rate_ratio(n_eff: float, d: int) -> float:
    """Normal-reference ratio of the d-dimensional to the 1-D AMISE-optimal std."""
    hd = (4.0 / (d + 2)) ** (1.0 / (d + 4)) * n_eff ** (-1.0 / (d + 4))
    h1 = (4.0 / 3.0) ** 0.2 * n_eff ** (-0.2)
    return float(hd / h1)


#: Named bandwidth rules in d dimensions (scale factors of the whitened covariance, or ISJ).
ND_BANDWIDTHS: dict[str, str] = {
    "isj": "per-axis improved Sheather-Jones std (Botev et al. 2010) with the data's "
    "correlation, carried to the d-dimensional rate by the normal-reference ratio",
    "scott": "H = n_eff**(-2/(d+4)) * covariance (Scott 1992)",
    "silverman": "H = (n_eff (d+2)/4)**(-2/(d+4)) * covariance (Silverman 1986)",
}


# --------------------------------------------------------------------------- transforms
# The 1-D core's increasing maps onto the real line (log for one bound, probit for two), so
# that "below" is preserved and the cdf is the transformed cdf.


def _to_z(x: FloatArray, lo: float | None, hi: float | None) -> FloatArray:
    b = (lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return TRANSFORMS[default_transform(b)].forward(x, b)


def _from_z(z: FloatArray, lo: float | None, hi: float | None) -> FloatArray:
    b = (lo, hi)
    with np.errstate(over="ignore"):
        return TRANSFORMS[default_transform(b)].inverse(z, b)


def _log_jacobian(x: FloatArray, lo: float | None, hi: float | None) -> FloatArray:
    """log |dz/dx| of :func:`_to_z`."""
    b = (lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return TRANSFORMS[default_transform(b)].log_jacobian(x, b)


# --------------------------------------------------------------------------- validation


def _as_data(x: ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"x must be a numeric array of shape (n, d); got {type(x).__name__}"
        ) from exc
    if arr.ndim != 2:
        raise ValueError(f"x must have shape (n, d) with d in {{2, 3}}; got shape {arr.shape}")
    d = arr.shape[1]
    if d > MAX_DIM and arr.shape[0] < d:
        # Most likely a transposed array: one row (a row vector) or d rows of n points.
        hint = (
            "for 1-D data pass a 1-D array (BoundedKDE)"
            if arr.shape[0] == 1
            else f"if these are {arr.shape[0]} columns of {d} points, pass x.T"
        )
        raise ValueError(
            f"x must have shape (n, d) with n points in rows and d in {{2, 3}} columns; got "
            f"shape {arr.shape}, which looks transposed: {hint}, for n-D data pass shape "
            "(n, d)"
        )
    if d > MAX_DIM:
        raise ValueError(
            f"x has d={d} columns; the grid path of the multivariate estimator supports "
            f"d <= {MAX_DIM} (a {d}-D grid is too large). Reduce the dimension, e.g. fit "
            "marginals of up to 3 columns."
        )
    if d < 2:
        raise ValueError(
            f"x must have d in {{2, 3}} columns for fit_nd; got d={d} (use BoundedKDE)"
        )
    if arr.shape[0] < 2:
        raise ValueError(f"x must have at least 2 points; got {arr.shape[0]}")
    return arr


def _check_finite(arr: FloatArray, xmin: FloatArray, xmax: FloatArray) -> None:
    """Raise on NaN or inf, read from the per-axis minima and maxima (NaN propagates)."""
    if np.isfinite(xmin).all() and np.isfinite(xmax).all():
        return
    bad = ~np.isfinite(arr)
    axes = sorted({int(a) for a in np.nonzero(bad)[1]})
    raise ValueError(
        f"x must be finite; got {int(bad.any(axis=1).sum())} rows with NaN or inf (on axes {axes})"
    )


def _as_weights(weights: ArrayLike | None, n: int, d: int) -> FloatArray | None:
    """Validated weights, rescaled so that the largest is 1.

    The estimate depends on the weights only through their ratios (they are normalised
    to sum 1, and Kish's ``n_eff`` is scale-free), so rescaling by the maximum changes
    nothing but keeps ``sum w``, ``sum w**2`` and the moment sums of the covariance
    finite and non-zero for weights near the ends of the float range (1e-170 or 1e200).
    """
    if weights is None:
        return None
    w = to_float_array(weights, "weights")
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) to match x; got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite; got NaN or inf")
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0; got {int((w < 0).sum())} negative values")
    wmax = float(w.max())
    if not wmax > 0:
        raise ValueError("weights must not all be zero")
    w = w / wmax
    n_eff = float(w.sum()) ** 2 / float(np.einsum("i,i->", w, w))
    if n_eff < d + MIN_NEFF_OVER_D - 1e-9:
        raise ValueError(
            f"weights give an effective sample size n_eff = {n_eff:.4g} (Kish, "
            f"(sum w)**2 / sum w**2); a {d}-D estimate needs n_eff >= {d + 1} (d + 1): the "
            f"weight is carried by too few of the {int((w > 0).sum())} points with positive "
            "weight"
        )
    return w


def _as_bounds(bounds: Any, d: int) -> tuple[Bound, ...]:
    if bounds is None:
        return tuple((None, None) for _ in range(d))
    try:
        pairs = list(bounds)
    except TypeError as exc:
        raise TypeError(
            f"bounds must be a sequence of {d} (lower, upper) pairs; got {bounds!r}"
        ) from exc
    if len(pairs) != d or not all(
        isinstance(p, (tuple, list, np.ndarray)) and len(p) == 2 for p in pairs
    ):
        raise ValueError(
            f"bounds must have one (lower, upper) pair per column of x: expected {d} pairs, "
            f"got {bounds!r}"
        )
    out: list[Bound] = []
    for i, (lo, hi) in enumerate(pairs):
        for v in (lo, hi):
            if v is not None and (isinstance(v, (bool, np.bool_)) or not isinstance(v, Real)):
                raise TypeError(
                    f"bounds on axis {i} must be real numbers or None (for an open side); "
                    f"got {(lo, hi)!r} with a {type(v).__name__}"
                )
        lo_f = None if lo is None else float(lo)
        hi_f = None if hi is None else float(hi)
        # An infinite side is an open side.
        lo_f = None if lo_f == -math.inf else lo_f
        hi_f = None if hi_f == math.inf else hi_f
        for v in (lo_f, hi_f):
            if v is not None and not math.isfinite(v):
                raise ValueError(f"bounds on axis {i} must be finite or None; got {(lo, hi)}")
        if lo_f is not None and hi_f is not None and not lo_f < hi_f:
            raise ValueError(f"bounds on axis {i} must satisfy lower < upper; got {(lo, hi)}")
        out.append((lo_f, hi_f))
    return tuple(out)


def _check_inside(
    x: FloatArray, bounds: tuple[Bound, ...], xmin: FloatArray, xmax: FloatArray
) -> None:
    """Raise if any point lies outside the box (counts only when the range says so)."""
    for i, (lo, hi) in enumerate(bounds):
        if (lo is None or xmin[i] >= lo) and (hi is None or xmax[i] <= hi):
            continue
        col = x[:, i]
        below = int((col < lo).sum()) if lo is not None else 0
        above = int((col > hi).sum()) if hi is not None else 0
        raise ValueError(
            f"x has {below + above} points outside the bounds on axis {i} "
            f"({below} below lower={lo}, {above} above upper={hi}; data range "
            f"[{xmin[i]:.6g}, {xmax[i]:.6g}]). Bounds are never inferred: fix the "
            "bounds or remove the points."
        )


def _as_grid_size(
    grid_size: Any, d: int, name: str = "grid_size", minimum: int = MIN_GRID
) -> tuple[int, ...]:
    """Nodes per axis: an int or a sequence of d ints, each >= ``minimum``, with at most
    :data:`MAX_GRID_NODES` nodes in all (``name`` is the parameter named in errors)."""
    if grid_size is None:
        return (DEFAULT_GRID[d],) * d

    def is_int(v: Any) -> bool:
        return isinstance(v, Integral) and not isinstance(v, (bool, np.bool_))

    what = f"an int >= {minimum} or a sequence of {d} such ints"
    if is_int(grid_size):
        sizes = [int(grid_size)] * d
    elif isinstance(grid_size, (str, bytes)) or not isinstance(grid_size, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be {what}; got {grid_size!r}")
    else:
        sizes = list(grid_size)
        if not all(is_int(v) for v in sizes) and len(sizes) == d:
            raise TypeError(f"{name} must be {what}; got {grid_size!r}")
    if len(sizes) != d or not all(is_int(v) and v >= minimum for v in sizes):
        raise ValueError(f"{name} must be {what}; got {grid_size!r}")
    total = math.prod(int(v) for v in sizes)
    if total > MAX_GRID_NODES:
        raise ValueError(
            f"{name} must give at most {MAX_GRID_NODES} (2**20) grid nodes in all, i.e. "
            f"{math.floor(MAX_GRID_NODES ** (1 / d) + 1e-9)} per axis in {d}-D (a memory "
            f"limit, see MAX_GRID_NODES); got {grid_size!r}, i.e. {total} nodes"
        )
    return tuple(int(v) for v in sizes)


def _weighted_cov(
    x: FloatArray, w: FloatArray | None, moments: tuple[FloatArray, FloatArray] | None = None
) -> FloatArray:
    """Weighted covariance with reliability weights (as ``numpy.cov(aweights=w)``).

    From the moment sums ``(s1, s2) = (sum w x, sum w x x^T)`` of
    :func:`boundedkde._nd_grid.column_moments` (computed here when not given):
    ``S = (s2 - sw m m^T) / (sw - sum w^2 / sw)``, ``m = s1 / sw``. The subtraction loses
    about eps * m^2 / var of relative precision, so this is used only when every |mean|
    is below 1000 standard deviations (error < 1e-9); otherwise the centred two-pass
    formula, column by column.
    """
    d = x.shape[1]
    if w is None:
        sw, denom = float(x.shape[0]), float(x.shape[0] - 1)
    else:
        sw = float(w.sum())
        denom = sw - float(np.einsum("i,i->", w, w)) / sw
    if moments is None:
        moments = g.column_moments(x, w)[2:]
    s1, s2 = moments
    mean = s1 / sw
    cov = (s2 - sw * np.outer(mean, mean)) / denom
    var = np.diag(cov)
    if np.all(var > 0) and np.all(mean**2 < 1e6 * var):
        return cov
    cols = []
    for i in range(d):
        c = x[:, i]
        # einsum, not BLAS: a threaded ddot stalls on a busy machine and gains nothing here.
        mu = float(c.sum() if w is None else np.einsum("i,i->", w, c)) / sw
        cols.append(c - mu)
    cov = np.empty((d, d))
    for i in range(d):
        ci = cols[i] if w is None else cols[i] * w
        for j in range(i, d):
            cov[i, j] = cov[j, i] = float(np.einsum("i,i->", ci, cols[j])) / denom
    return cov


def _check_covariance(cov: FloatArray) -> None:
    d = cov.shape[0]
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    zero = [i for i in range(d) if not sd[i] > 0]
    if zero:
        raise ValueError(
            f"the weighted covariance of x is singular: axes {zero} have zero variance "
            "(constant data). A bandwidth rule needs data that fill every dimension; pass a "
            "(d, d) bandwidth matrix or drop those columns."
        )
    corr = cov / np.outer(sd, sd)
    vals, vecs = np.linalg.eigh(corr)
    if vals[0] < 1e-10 * d:
        axes = [i for i in range(d) if abs(vecs[i, 0]) > 0.1]
        raise ValueError(
            f"the weighted covariance of x is singular: axes {axes} are collinear "
            f"(smallest correlation eigenvalue {vals[0]:.3g}). A KDE needs data that fill "
            "d dimensions; drop one of these columns or pass a (d, d) bandwidth matrix."
        )


def _resolve_bandwidth(
    bandwidth: Any,
    z: FloatArray,
    w: FloatArray | None,
    zbounds: tuple[Bound, ...],
    n_eff: float,
    zmin: FloatArray | None = None,
    zmax: FloatArray | None = None,
    moments: tuple[FloatArray, FloatArray] | None = None,
) -> FloatArray:
    d = z.shape[1]

    def cov() -> FloatArray:
        c = _weighted_cov(z, w, moments)
        _check_covariance(c)
        return c

    if callable(bandwidth):
        bandwidth = bandwidth(z, w)
    if isinstance(bandwidth, str):
        if bandwidth not in ND_BANDWIDTHS:
            raise ValueError(
                f"bandwidth must be one of {sorted(ND_BANDWIDTHS)}, a float, a (d, d) matrix "
                f"or a callable; got {bandwidth!r}"
            )
        if bandwidth == "scott":
            return _scott_factor(n_eff, d) ** 2 * cov()
        if bandwidth == "silverman":
            return _silverman_factor(n_eff, d) ** 2 * cov()
        # "isj" (here only when a callable returned the name; fit_nd calls _isj_fused).
        lo = z.min(axis=0) if zmin is None else zmin
        hi = z.max(axis=0) if zmax is None else zmax
        return _isj_fused(z, w, zbounds, n_eff, lo, hi, (DEFAULT_GRID[d],) * d, 1.0, moments)[0]
    if isinstance(bandwidth, (bool, np.bool_)):
        raise TypeError(f"bandwidth must be a name, float, matrix or callable; got {bandwidth!r}")
    if isinstance(bandwidth, (int, float, np.integer, np.floating)):
        f = float(bandwidth)
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"bandwidth as a float must be finite and > 0; got {bandwidth!r}")
        return f**2 * cov()
    try:
        hmat = np.asarray(bandwidth, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"bandwidth must be a name, float, (d, d) matrix or callable; got {bandwidth!r}"
        ) from exc
    if hmat.shape != (d, d):
        raise ValueError(f"bandwidth as a matrix must have shape ({d}, {d}); got {hmat.shape}")
    if not np.all(np.isfinite(hmat)) or not np.allclose(hmat, hmat.T, rtol=1e-10, atol=0.0):
        raise ValueError("bandwidth matrix must be finite and symmetric")
    if np.linalg.eigvalsh(hmat)[0] <= 0:
        raise ValueError("bandwidth matrix must be positive definite (all eigenvalues > 0)")
    return hmat


def _resolve_methods(
    method: str | Sequence[str],
    bounds: tuple[Bound, ...],
    x: FloatArray,
    w: FloatArray | None,
    constant: Sequence[int] = (),
) -> tuple[str, ...]:
    d = len(bounds)
    names = [method] * d if isinstance(method, str) else list(method)
    if len(names) != d:
        raise ValueError(f"method must be a name or a sequence of {d} names; got {method!r}")
    for m in names:
        if m not in ND_METHODS:
            raise ValueError(f"method must be one of {sorted(ND_METHODS)}; got {m!r}")
    base_set = {m for m in names if m not in ("transform", "auto")}
    if len(base_set) > 1:
        raise ValueError(
            "method: the non-transform methods must be the same on every axis "
            f"(reflect, renorm and linear are not mixed); got {names}"
        )
    # As in the 1-D core: the general method with the smallest asymptotic bias, both
    # inside (O(h^4)) and at the bounds.
    base = base_set.pop() if base_set else "linear-mbc"
    out: list[str] = []
    for i, m in enumerate(names):
        lo, hi = bounds[i]
        if m == "auto":
            # (A constant axis, allowed with a user matrix, has nothing to test.)
            auto_t = i not in constant and _auto_transforms_axis(x[:, i], w, lo, hi)
            m = "transform" if auto_t else base
        if m == "transform":
            col = x[:, i]
            touch = (lo is not None and bool(np.any(col <= lo))) or (
                hi is not None and bool(np.any(col >= hi))
            )
            if touch:
                raise ValueError(
                    f"method 'transform' on axis {i} needs data strictly inside the bounds "
                    f"{bounds[i]}; some points lie on a bound. Use 'linear' or 'reflect'."
                )
            if lo is None and hi is None:
                m = base
        out.append(m)
    return tuple(out)


def _auto_transforms_axis(
    col: FloatArray, w: FloatArray | None, lo: float | None, hi: float | None
) -> bool:
    """Whether the 1-D core's ``auto`` rule (:func:`boundedkde.estimator.auto_method`,
    pole and zero tests plus the scale check, on the axis's marginal) transforms this
    axis."""
    method, _, _ = auto_method(col, w, (lo, hi), lambda: TRANSFORMS[default_transform((lo, hi))])
    return method == "transform-mbc"


# --------------------------------------------------------------------------- the fit


@dataclass(frozen=True, eq=False)
class NDFit:
    """A fitted 2-D or 3-D bounded density (returned by :func:`fit_nd`).

    Attributes
    ----------
    d : int
        Dimension.
    bounds : tuple of (lower, upper)
        Per-axis bounds, ``None`` for an open side.
    bandwidth : ndarray (d, d)
        Kernel covariance ``H`` (transformed coordinates on transformed axes).
    n_eff : float
        Kish effective sample size ``(sum w)**2 / sum w**2``.
    method : tuple of str
        Boundary method used on each axis.
    """

    d: int
    bounds: tuple[Bound, ...]
    bandwidth: FloatArray
    n_eff: float
    method: tuple[str, ...]
    kernel: str
    grid_size: tuple[int, ...]
    _x: FloatArray = field(repr=False)
    _w: FloatArray | None = field(repr=False)
    _zbounds: tuple[Bound, ...] = field(repr=False)
    _lo: FloatArray = field(repr=False)
    _step: FloatArray = field(repr=False)
    _active: tuple[tuple[bool, bool], ...] = field(repr=False)
    _density: FloatArray = field(repr=False)
    _norm: float = field(repr=False)
    _a0: FloatArray | None = field(repr=False)
    _log_floor: float = field(repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- lazily derived arrays (cheap to fit, paid for on first use) ----------------
    def _cum(self) -> FloatArray:
        cum = self._cache.get("cum")
        if cum is None:
            cum = g.cumulative_trapezoid_nd(self._density, self._step)
            cum = cum / cum[(-1,) * self.d]
            self._cache["cum"] = cum
        return cast(FloatArray, cum)

    def _nodes(self) -> tuple[FloatArray, FloatArray]:
        """The data in working coordinates and their log weights (normalised)."""
        got = self._cache.get("nodes")
        if got is None:
            z, _ = self._x_to_z(np.ascontiguousarray(self._x))
            n = z.shape[0]
            if self._w is None:
                logw = np.full(n, -math.log(n))
            else:
                with np.errstate(divide="ignore"):
                    logw = np.log(self._w / self._w.sum())
                keep = self._w > 0
                z, logw = z[keep], logw[keep]
            got = (z, logw)
            self._cache["nodes"] = got
        return cast(tuple[FloatArray, FloatArray], got)

    # -- coordinates -----------------------------------------------------------------
    def _transformed(self, i: int) -> bool:
        return self.method[i] == "transform"

    def _x_to_z(self, pts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Working coordinates and log-Jacobian of points inside the box."""
        z = pts.copy()
        logj = np.zeros(pts.shape[0])
        for i in range(self.d):
            if self._transformed(i):
                lo, hi = self.bounds[i]
                z[:, i] = _to_z(pts[:, i], lo, hi)
                logj += _log_jacobian(pts[:, i], lo, hi)
        return z, logj

    def _check_points(self, points: ArrayLike) -> FloatArray:
        pts = to_float_array(points, "points")
        if pts.ndim == 1 and pts.shape[0] == self.d:
            pts = pts[None, :]
        if pts.ndim != 2 or pts.shape[1] != self.d:
            raise ValueError(f"points must have shape (m, {self.d}); got {pts.shape}")
        if np.isnan(pts).any():
            rows = int(np.isnan(pts).any(axis=1).sum())
            raise ValueError(
                f"points must not contain NaN; got {rows} rows with NaN (+-inf is allowed)"
            )
        return pts

    def _inside(self, pts: FloatArray) -> NDArray[np.bool_]:
        ok = np.all(np.isfinite(pts), axis=1)
        for i, (lo, hi) in enumerate(self.bounds):
            if lo is not None:
                ok &= pts[:, i] >= lo
            if hi is not None:
                ok &= pts[:, i] <= hi
        return ok

    def _in_grid(self, z: FloatArray) -> NDArray[np.bool_]:
        hi = self._lo + self._step * (np.array(self._density.shape) - 1)
        return cast(NDArray[np.bool_], np.all((z >= self._lo) & (z <= hi), axis=1))

    # -- density ---------------------------------------------------------------------
    def _log_direct(self, z: FloatArray) -> FloatArray:
        """log density by a direct Gaussian sum over the data (any z).

        Sums over the ``FAR_NEIGHBOURS`` data points nearest in Mahalanobis distance (a
        k-d tree in whitened coordinates, built on first use); used only beyond the grid
        or where the grid value is below the FFT round-off floor, where the nearest
        points dominate the sum exponentially.
        """
        h = self.bandwidth
        chol = np.linalg.cholesky(h)
        whiten = np.linalg.inv(chol)
        _, logdet = np.linalg.slogdet(2.0 * np.pi * h)
        nodes, log_node_w = self._nodes()
        tree = self._cache.get("tree")
        if tree is None:
            tree = cKDTree(nodes @ whiten.T)
            self._cache["tree"] = tree
        images = [z]
        if any(m == "reflect" for m in self.method):
            per_axis: list[list[tuple[float, float]]] = []
            for lo, hi in self._zbounds:
                opts = [(1.0, 0.0)]  # v -> sign * v + shift
                if lo is not None:
                    opts.append((-1.0, 2.0 * lo))
                if hi is not None:
                    opts.append((-1.0, 2.0 * hi))
                per_axis.append(opts)
            images = []
            for combo in itertools.product(*per_axis):
                sign = np.array([c[0] for c in combo])
                shift = np.array([c[1] for c in combo])
                images.append(z * sign + shift)
        k = min(FAR_NEIGHBOURS, nodes.shape[0])
        terms = []
        for im in images:
            dist, idx = tree.query(im @ whiten.T, k=k)
            dist = np.reshape(dist, (im.shape[0], k))
            idx = np.reshape(idx, (im.shape[0], k))
            terms.append(log_node_w[idx] - 0.5 * dist**2)
        out = cast(FloatArray, logsumexp(np.concatenate(terms, axis=1), axis=1))
        out -= 0.5 * logdet + math.log(self._norm)
        if self._a0 is not None:
            # Renormalisation by the kernel mass in the box, read off the box-moment grid
            # along the active axes (constant along the others).
            a0 = g.multilinear_interp(_expand(self._a0), self._lo, self._step, z)
            out -= np.log(np.maximum(a0, 1e-300))
        return out

    def _logpdf_inside(self, pts: FloatArray) -> FloatArray:
        z, logj = self._x_to_z(pts)
        out = np.full(pts.shape[0], -np.inf)
        finite = np.all(np.isfinite(z), axis=1)
        ing = finite & self._in_grid(np.where(np.isfinite(z), z, 0.0))
        if ing.any():
            with np.errstate(divide="ignore"):
                out[ing] = np.log(g.multilinear_interp(self._density, self._lo, self._step, z[ing]))
        # Outside the grid, or where the truncated grid kernel underflows to 0, sum
        # directly: the estimate is positive everywhere in the box.
        need = finite & ~(out > self._log_floor)
        if need.any():
            out[need] = self._log_direct(z[need])
        return cast(FloatArray, out + np.where(finite, logj, 0.0))

    def logpdf(self, points: ArrayLike) -> FloatArray:
        """Log density at ``points`` (shape (m, d)); ``-inf`` outside the box.

        Parameters
        ----------
        points : array_like, shape (m, d)
            No NaN (a ``ValueError``); ``+-inf`` is allowed (outside the box on a
            bounded side, a far point on an open one).

        Returns
        -------
        ndarray, shape (m,)
        """
        pts = self._check_points(points)
        out = np.full(pts.shape[0], -np.inf)
        inside = self._inside(pts)
        if inside.any():
            out[inside] = self._logpdf_inside(pts[inside])
        return out

    def pdf(self, points: ArrayLike) -> FloatArray:
        """Density at ``points`` (shape (m, d)); exactly 0 outside the box.

        Inside the grid the value is the multilinear interpolation of the grid estimate;
        elsewhere in the box, a direct kernel sum (so points far from the data get the
        estimate's small positive value, not 0).

        Parameters
        ----------
        points : array_like, shape (m, d)

        Returns
        -------
        ndarray, shape (m,)
        """
        return cast(FloatArray, np.exp(self.logpdf(points)))

    def cdf(self, points: ArrayLike) -> FloatArray:
        """Mass of the estimate in the box below each point, ``P(X_1 <= p_1, ..., X_d <= p_d)``.

        Computed from the cumulative trapezoid integral of the grid estimate (exact at the
        nodes for the multilinear interpolant), interpolated multilinearly between them.
        Transformed axes use the monotone transform (the cdf is invariant under it).

        Parameters
        ----------
        points : array_like, shape (m, d)

        Returns
        -------
        ndarray, shape (m,), in [0, 1]
        """
        pts = self._check_points(points)
        clipped = pts.copy()
        below = np.zeros(pts.shape[0], dtype=bool)
        for i, (lo, hi) in enumerate(self.bounds):
            if lo is not None:
                below |= pts[:, i] <= lo
            if lo is not None or hi is not None:
                clipped[:, i] = np.clip(pts[:, i], lo, hi)
        with np.errstate(invalid="ignore", over="ignore"):
            z, _ = self._x_to_z(clipped)
        z = np.nan_to_num(z, nan=0.0, posinf=1e300, neginf=-1e300)
        out = g.multilinear_interp(self._cum(), self._lo, self._step, z)
        out[below] = 0.0
        return cast(FloatArray, np.clip(out, 0.0, 1.0))

    # -- sampling --------------------------------------------------------------------
    def sample(self, n: int, random_state: int | np.random.Generator | None = None) -> FloatArray:
        """Draw ``n`` points from the bounded estimate (shape (n, d)).

        Draws are exact from the multilinear interpolant of the grid estimate, i.e. from
        the same density :meth:`pdf` returns on the grid, then mapped back through the
        inverse transform on transformed axes; every draw lies in the box.

        Parameters
        ----------
        n : int
        random_state : int, numpy Generator or None
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int; got {n!r}")
        rng = np.random.default_rng(random_state)
        z = g.sample_multilinear(self._density, self._lo, self._step, int(n), rng)
        for i in range(self.d):
            if self._transformed(i):
                lo, hi = self.bounds[i]
                z[:, i] = _from_z(z[:, i], lo, hi)
            lo, hi = self.bounds[i]
            if lo is not None or hi is not None:
                z[:, i] = np.clip(z[:, i], lo, hi)
        return z

    # -- grids and levels ------------------------------------------------------------
    def grid(self, n: int | Sequence[int] | None = None) -> tuple[list[FloatArray], FloatArray]:
        """Axes and density on a regular grid covering the estimate's support in the box.

        Parameters
        ----------
        n : int, sequence of d ints or None
            Nodes per axis, each at least 2 and at most :data:`MAX_GRID_NODES` in all;
            ``None`` returns the fit's own grid (no interpolation on untransformed axes).

        Returns
        -------
        (axes, density): list of d 1-D arrays and an array of shape ``(len(a) for a in axes)``.
        """
        sizes = self.grid_size if n is None else _as_grid_size(n, self.d, "n of NDFit.grid()", 2)
        axes: list[FloatArray] = []
        for i in range(self.d):
            lo_z = float(self._lo[i])
            hi_z = lo_z + float(self._step[i]) * (self._density.shape[i] - 1)
            if self._transformed(i):
                blo, bhi = self.bounds[i]
                a = blo if blo is not None else float(_from_z(np.array([lo_z]), blo, bhi)[0])
                b = bhi if bhi is not None else float(_from_z(np.array([hi_z]), blo, bhi)[0])
                axes.append(np.linspace(a, b, sizes[i]))
            elif n is None:
                axes.append(lo_z + self._step[i] * np.arange(self._density.shape[i]))
            else:
                axes.append(np.linspace(lo_z, hi_z, sizes[i]))
        if n is None and not any(self._transformed(i) for i in range(self.d)):
            return axes, self._density.copy()
        mesh = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([m.ravel() for m in mesh], axis=1)
        return axes, self.pdf(pts).reshape(mesh[0].shape)

    def hdr_levels(self, probs: Sequence[float] = (0.68, 0.95)) -> FloatArray:
        """Density levels whose superlevel sets hold the given masses (for contours).

        For each ``p`` returns the largest ``c`` with ``integral of f over {f >= c} >= p``,
        computed on :meth:`grid` with trapezoid cell weights (the highest-density region
        of Hyndman 1996).

        Parameters
        ----------
        probs : sequence of floats in (0, 1)

        Returns
        -------
        ndarray of levels, one per prob (decreasing as prob increases).
        """
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 1 or not np.all((p > 0) & (p < 1)):
            raise ValueError(f"probs must be a sequence of numbers in (0, 1); got {probs!r}")
        axes, dens = self.grid()
        wts = np.ones(())
        for a in axes:
            wts = np.multiply.outer(wts, g.trapezoid_weights(a.size, float(a[1] - a[0])))
        v = dens.ravel()
        m = (dens * wts).ravel()
        order = np.argsort(v)[::-1]
        cum = np.cumsum(m[order])
        cum /= cum[-1]
        k = np.searchsorted(cum, p, side="left")
        levels: FloatArray = v[order][np.minimum(k, v.size - 1)]
        return levels

    # -- marginals -------------------------------------------------------------------
    def marginal(self, axes: Sequence[int]) -> NDFit:
        """The estimate of the joint of a subset of >= 2 axes (a lower-dimensional fit).

        Refits the selected columns with the same weights, per-axis methods and the
        sub-matrix ``H[axes][:, axes]`` of the bandwidth.  For the Gaussian kernel this is
        exactly the marginal of the unbounded part of the estimate; for ``reflect`` and
        ``transform`` it is exactly the marginal of the bounded estimate (folding and the
        per-axis transform commute with integrating out an axis); for ``renorm`` and
        ``linear`` it is the same method applied to the marginal data, which differs from
        integrating the joint estimate near the corners.

        Parameters
        ----------
        axes : sequence of >= 2 distinct axis indices

        Raises
        ------
        ValueError
            For fewer than 2 axes (use :meth:`marginal_1d_params`) or bad indices.
        """
        idx = self._check_axes(axes)
        if len(idx) < 2:
            raise ValueError(
                "marginal(axes) needs at least 2 axes; for one axis use "
                f"marginal_1d_params({idx[0] if idx else 0}) with the 1-D BoundedKDE"
            )
        sub = np.ix_(idx, idx)
        return fit_nd(
            self._x[:, idx],
            self._w,
            [self.bounds[i] for i in idx],
            [self.method[i] for i in idx],
            self.bandwidth[sub].copy(),
            self.kernel,
            tuple(self.grid_size[i] for i in idx),
        )

    def marginal_1d_params(self, axis: int) -> dict[str, Any]:
        """Arguments that reproduce the 1-D marginal with the 1-D estimator.

        With a Gaussian kernel of covariance ``H`` the marginal of the unbounded estimate
        on axis ``i`` is exactly the 1-D estimate with standard deviation ``sqrt(H_ii)``.
        ``BoundedKDE(bounds, method=method, bandwidth=bandwidth).fit(x, weights)``
        therefore reproduces the marginal exactly for ``reflect`` and ``transform``
        (bandwidth in transformed units) and applies the same method to the marginal
        data for ``renorm`` and ``linear``.

        Returns
        -------
        dict with keys ``x``, ``weights``, ``bounds``, ``method``, ``bandwidth``.
        """
        (i,) = self._check_axes([axis])
        return {
            "x": self._x[:, i].copy(),
            "weights": None if self._w is None else self._w.copy(),
            "bounds": self.bounds[i],
            "method": self.method[i],
            "bandwidth": float(np.sqrt(self.bandwidth[i, i])),
        }

    def _check_axes(self, axes: Sequence[int]) -> list[int]:
        if isinstance(axes, (str, bytes)) or not isinstance(axes, (Sequence, np.ndarray)):
            raise TypeError(f"axes must be a sequence of ints; got {axes!r}")
        if not all(isinstance(a, Integral) and not isinstance(a, (bool, np.bool_)) for a in axes):
            raise TypeError(f"axes must be a sequence of ints; got {list(axes)!r}")
        idx = [int(a) for a in axes]
        if len(set(idx)) != len(idx) or not all(0 <= a < self.d for a in idx):
            raise ValueError(
                f"axes must be distinct integers in [0, {self.d - 1}]; got {list(axes)!r}"
            )
        return idx


def _expand(a: FloatArray) -> FloatArray:
    """Repeat size-1 axes to 2 nodes so multilinear interpolation can read them."""
    for i in range(a.ndim):
        if a.shape[i] == 1:
            a = np.repeat(a, 2, axis=i)
    return a


def fit_nd(
    x: ArrayLike,
    weights: ArrayLike | None = None,
    bounds: Sequence[Bound] | None = None,
    method: str | Sequence[str] = "auto",
    bandwidth: Any = "isj",
    kernel: str = "gaussian",
    grid_size: int | Sequence[int] | None = None,
    *,
    workers: int = 1,
) -> NDFit:
    r"""Fit a bounded kernel density estimate to 2-D or 3-D data.

    Steps: transform the axes handled by ``transform`` (log for one bound, probit for
    two); choose the bandwidth matrix ``H``; lay out a grid per axis that starts exactly
    at each bound within ``CUT`` kernel sds of the data (an *active* bound) and otherwise
    pads the data range by ``CUT`` sds; bin the weighted data multilinearly; convolve by
    FFT with the Gaussian of covariance ``H``; apply the boundary method; normalise so the
    grid estimate has unit mass.

    Boundary methods (per axis; reflect/renorm/linear/linear-mbc are not mixed across
    axes; ``auto`` picks ``transform`` on an axis where the 1-D core's pole test fires and
    ``linear-mbc`` elsewhere):

    - ``reflect``: :math:`\hat f_R(x) = \sum_{\rho} \hat f(\rho x)` over the reflections
      ``rho`` about the active bounds (and their compositions, which handles corners and
      multiple folds on two-sided axes), computed by folding the full convolution.
    - ``renorm``: :math:`\hat f(x) / a_0(x)`, :math:`a_0(x) = \int_{box} K_H(x - y) dy`
      (the box indicator convolved with the correlated kernel, so corners are exact).
    - ``linear``: the local-linear boundary kernel
      :math:`\hat f_L = (m_0 - a_1^T A_2^{-1} m_1) / (a_0 - a_1^T A_2^{-1} a_1)` with box
      moments ``a`` and data moments ``m`` (Jones 1993; Hazelton and Marshall 2009 for
      d >= 2; at a corner the box moments of the corner region are used, so both bounds
      are corrected jointly), made non-negative by Jones and Foster (1996):
      :math:`\bar f \exp(\hat f_L / \bar f - 1)` with :math:`\bar f = \hat f / a_0`.
    - ``linear-mbc``: ``linear`` times the Jones, Linton and Nielsen (1995) correction
      :math:`\hat\alpha(x)`, the renormalised kernel smoother of :math:`1/\hat f` at the
      data; named bandwidth rules are multiplied by :func:`mbc_scale_nd`.
    - ``transform``: estimate in ``z = log(x - lo)``, ``-log(hi - x)`` or
      ``probit((x - lo)/(hi - lo))`` and multiply by :math:`|dz/dx|`.

    Parameters
    ----------
    x : array_like, shape (n, d), d in {2, 3}
    weights : array_like, shape (n,), optional
    bounds : sequence of d pairs (lower or None, upper or None)
    method : str or sequence of d str
        One of :data:`ND_METHODS`, for all axes or per axis.
    bandwidth : str, float, (d, d) array or callable
        See the module docstring: ``H`` is the kernel covariance.
    kernel : str
        ``"gaussian"`` (the only kernel of the d-dimensional path).
    grid_size : int or sequence of d ints, optional
        Nodes per axis (default 256 in 2-D, 64 in 3-D), each at least :data:`MIN_GRID`
        (8), at most :data:`MAX_GRID_NODES` (2**20: 1024**2 or 101**3) in all; the limit
        is one of memory (see :data:`MAX_GRID_NODES`).
    workers : int
        Threads for the FFTs (a non-zero int; negative counts back from the CPUs, as in
        :mod:`scipy.fft`).

    Returns
    -------
    NDFit

    Raises
    ------
    ValueError
        Bad shapes (a likely transposed ``x`` is named as such), d > 3, data outside the
        box (names the axis and the count), a constant axis or singular covariance
        (names the axes), weights with an effective sample size below d + 1, data
        with at most d + 1 distinct points (with ``"isj"``), unknown names, bad
        bandwidth matrices, ``grid_size`` out of range, a kernel so much wider than the
        grid that the convolution exceeds :data:`MAX_FFT_NODES`.
    TypeError
        Non-numeric ``x``, ``weights``, bounds, ``grid_size`` or ``workers``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([rng.exponential(size=500), rng.uniform(size=500)])
    >>> fit = fit_nd(x, bounds=[(0, None), (0, 1)], method="reflect", bandwidth="scott")
    >>> bool(fit.pdf([[0.5, 1.5]])[0] == 0.0)
    True
    """
    xa = _as_data(x)
    n, d = xa.shape
    w = _as_weights(weights, n, d)
    if w is not None and not np.all(w > 0):
        # Zero weights carry nothing; left in, they would widen the grid (as in 1-D).
        xa, w = xa[w > 0], w[w > 0]
        n = xa.shape[0]
    bnds = _as_bounds(bounds, d)
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, Integral):
        raise TypeError(
            "workers must be a non-zero int (threads for the FFTs; negative values count "
            f"back from the number of CPUs, as in scipy.fft); got {workers!r}"
        )
    if workers == 0:
        raise ValueError(
            "workers must be a non-zero int (threads for the FFTs; negative values count "
            "back from the number of CPUs, as in scipy.fft); got 0"
        )
    if kernel != "gaussian":
        raise ValueError(
            f"kernel must be 'gaussian' for d >= 2 (the only kernel with a full-covariance "
            f"form on this path); got {kernel!r}"
        )
    sizes = _as_grid_size(grid_size, d)
    if not callable(bandwidth) and not isinstance(bandwidth, str):
        pass
    elif isinstance(bandwidth, str) and bandwidth not in ND_BANDWIDTHS:
        raise ValueError(
            f"bandwidth must be one of {sorted(ND_BANDWIDTHS)}, a float, a (d, d) matrix or "
            f"a callable; got {bandwidth!r}"
        )
    # One chunked pass for the ranges (and NaN/inf, which propagate into them) and the
    # moment sums of the covariance; the binning pass is chunked too, so the data are
    # never copied whole.
    xmin, xmax, s1, s2 = g.column_moments(xa, w)
    _check_finite(xa, xmin, xmax)
    _check_inside(xa, bnds, xmin, xmax)
    # A constant axis has no scale for a rule (nor for the auto method's tests); only a
    # user bandwidth matrix can smooth along it.
    constant = [i for i in range(d) if not xmax[i] > xmin[i]]
    user_matrix = not (callable(bandwidth) or isinstance(bandwidth, (str, Real, np.bool_)))
    if constant and not user_matrix:
        raise ValueError(
            f"the weighted covariance of x is singular: axes {constant} have zero variance "
            f"(constant data, every value {[float(xmin[i]) for i in constant]}). A bandwidth "
            "rule needs data that fill every dimension; pass a (d, d) bandwidth matrix or "
            "drop those columns."
        )
    methods = _resolve_methods(method, bnds, xa, w, constant)

    # Working coordinates: transformed axes become open.
    z = xa
    zb = list(bnds)
    if any(m == "transform" for m in methods):
        z = xa.copy(order="F")
        for i, m in enumerate(methods):
            if m == "transform":
                z[:, i] = _to_z(xa[:, i], *bnds[i])
                zb[i] = (None, None)
    zbounds = tuple(zb)
    zmin, zmax = xmin.copy(), xmax.copy()
    moments: tuple[FloatArray, FloatArray] | None = (s1, s2)
    for i, m in enumerate(methods):
        if m == "transform":  # the transforms are increasing
            zmin[i], zmax[i] = z[:, i].min(), z[:, i].max()
            moments = None  # the sums were of x, not of the transformed z
    # (w is rescaled to max 1 by _as_weights, so neither sum overflows nor underflows.)
    n_eff = float(n) if w is None else float(w.sum()) ** 2 / float(np.einsum("i,i->", w, w))
    # With every axis transformed there are no bounds left in z: "auto" then estimates
    # in z with the multiplicative bias correction (the 1-D core's transform-mbc), an
    # explicit "transform" with the plain kernel.
    requested = [method] if isinstance(method, str) else list(method)
    base = next(
        (m for m in methods if m != "transform"),
        "linear-mbc" if "auto" in requested else "linear",
    )
    # Named rules target the second-order estimator; the bias-corrected one has an
    # O(h^4) bias and a larger optimal bandwidth (as the 1-D core does).
    named = isinstance(bandwidth, str)
    mbc2 = mbc_scale_nd(n_eff, d) ** 2 if base == "linear-mbc" and named else 1.0
    binned = None
    if isinstance(bandwidth, str) and bandwidth == "isj":
        hmat, binned = _isj_fused(z, w, zbounds, n_eff, zmin, zmax, sizes, mbc2, moments)
    else:
        hmat = _resolve_bandwidth(bandwidth, z, w, zbounds, n_eff, zmin, zmax, moments) * mbc2
    dens, lo, step, active, a0, _ = _grid_estimate(
        z, w, zbounds, hmat, base, sizes, workers, zmin, zmax, binned
    )
    vol = float(np.prod(step))
    wts = np.ones(())
    for i in range(d):
        wts = np.multiply.outer(wts, g.trapezoid_weights(sizes[i], float(step[i])))
    norm = float((dens * wts).sum())
    if not norm > 0:
        raise ValueError("the estimate has zero mass on the grid; check bounds and bandwidth")
    dens = dens / norm
    logger.debug(
        "fit_nd: d=%d n=%d n_eff=%.1f methods=%s grid=%s vol=%.3g", d, n, n_eff, methods, sizes, vol
    )
    return NDFit(
        d=d,
        bounds=bnds,
        bandwidth=hmat,
        n_eff=n_eff,
        method=methods,
        kernel=kernel,
        grid_size=sizes,
        _x=xa,
        _w=w,
        _zbounds=zbounds,
        _lo=lo,
        _step=step,
        _active=active,
        _density=dens,
        _norm=norm,
        _a0=a0 if base in ("renorm", "linear", "linear-mbc") else None,
        _log_floor=math.log(FFT_FLOOR * float(dens.max())),
    )


#: Binned data on a laid-out grid: ``(counts, lo, hi, active)``.
Binned = tuple[FloatArray, FloatArray, FloatArray, tuple[tuple[bool, bool], ...]]

#: The "isj" rule bins the data in the same pass as its per-axis ISJ histograms, so the
#: grid must be laid out before the ISJ bandwidth is known: it is laid out for a kernel
#: standard deviation of PILOT_SD_FACTOR times the normal-reference (Scott) one. For
#: normal data the per-axis ISJ equals the normal reference up to sampling noise, and for
#: skewed, heavy-tailed or multimodal data it is smaller, so a factor 2 covers it except
#: on near-flat axes; when it does not, the data are binned again on the ISJ layout.
#: The layout only sets where the grid ends (CUT pilot sds beyond the data on an open
#: side, exactly at a bound within that reach), not the estimate's bandwidth.
PILOT_SD_FACTOR = 2.0


def _layout(
    zbounds: tuple[Bound, ...], zmin: FloatArray, zmax: FloatArray, sd: FloatArray
) -> tuple[FloatArray, FloatArray, tuple[tuple[bool, bool], ...]]:
    """Grid ends per axis: a bound within ``CUT * sd`` of the data (active), else the data
    range padded by ``CUT * sd``."""
    d = len(zbounds)
    lo = np.empty(d)
    hi = np.empty(d)
    active: list[tuple[bool, bool]] = []
    for i in range(d):
        blo, bhi = zbounds[i]
        a, b = zmin[i] - CUT * sd[i], zmax[i] + CUT * sd[i]
        lo_act = blo is not None and blo >= a
        hi_act = bhi is not None and bhi <= b
        lo[i] = blo if lo_act else a
        hi[i] = bhi if hi_act else b
        active.append((bool(lo_act), bool(hi_act)))
    return lo, hi, tuple(active)


def _check_distinct_points(z: FloatArray, w: FloatArray | None) -> None:
    """Raise when the points with positive weight take at most d + 1 distinct values.

    d + 1 points span at most a simplex: there is no d-dimensional density to estimate,
    only the points themselves (their covariance may still be regular). Called only on
    the rare path where ISJ finds atoms on every axis, so the exact count is cheap enough.
    """
    d = z.shape[1]
    pts = z if w is None else z[w > 0]
    rows = int(np.unique(pts, axis=0).shape[0])
    if rows <= d + 1:
        raise ValueError(
            f"x has only {rows} distinct points (of {z.shape[0]} rows with positive weight "
            f"{pts.shape[0]}): a {d}-D density needs more than d + 1 = {d + 1} distinct "
            "points (ties add weight, not shape). Pass more distinct data, or a (d, d) "
            "bandwidth matrix to smooth these points anyway."
        )


def _isj_fused(
    z: FloatArray,
    w: FloatArray | None,
    zbounds: tuple[Bound, ...],
    n_eff: float,
    zmin: FloatArray,
    zmax: FloatArray,
    sizes: tuple[int, ...],
    scale2: float,
    moments: tuple[FloatArray, FloatArray] | None = None,
) -> tuple[FloatArray, Binned | None]:
    """The "isj" bandwidth matrix (times ``scale2``) and, when its layout is covered by
    the pilot's, the data binned in the same pass as the ISJ histograms.

    Each axis is binned on the 1-D estimator's range (its bounds where finite, else the
    data range padded by 10%) on ``ISJ_GRID`` nodes, and :func:`boundedkde.bandwidth.isj`
    (reflecting at the grid ends) gives the 1-D bandwidth, carried to the d-dimensional
    rate by :func:`_isj_rate_ratio` and combined with the data's correlation. The counts
    are a nearest-node histogram (as in Botev et al.'s reference code): they only feed
    density functionals on a grid far finer than the bandwidth. They are built in the
    same pass over the data as the multilinear binning, which needs the grid laid out
    first: hence the pilot layout (:data:`PILOT_SD_FACTOR`).
    """
    d = z.shape[1]
    c = _weighted_cov(z, w, moments)
    _check_covariance(c)
    sd_c = np.sqrt(np.diag(c))
    pilot = PILOT_SD_FACTOR * _scott_factor(n_eff, d) * math.sqrt(scale2) * sd_c
    lo_p, hi_p, act_p = _layout(zbounds, zmin, zmax, pilot)
    # The ISJ histogram spans a bound only when the bound is within the pilot's reach
    # (active in the pilot layout). A far bound is out of reach of every kernel, so the
    # axis is open for the bandwidth as it is for the grid; spanning it would put all
    # the data into a few of the ISJ_GRID nodes (bounds (0, 1e6) around data in [0, 1]:
    # a node every 244 data units) and return a bandwidth of the bound's scale.
    ranges = []
    for i in range(d):
        blo, bhi = zbounds[i]
        glo, ghi = _binning_range(
            float(zmin[i]),
            float(zmax[i]),
            (blo if act_p[i][0] else None, bhi if act_p[i][1] else None),
        )
        # (The 10% padding of an open side never crosses a finite bound.)
        ranges.append(
            (glo if blo is None else max(glo, blo), ghi if bhi is None else min(ghi, bhi))
        )
    wn = None if w is None else w / w.sum()
    counts, hists = g.binning_pass(
        z, wn, lo_p, hi_p, sizes, [(glo, ghi, ISJ_GRID) for glo, ghi in ranges]
    )
    if wn is None:
        counts /= z.shape[0]
    h = np.empty(d)
    for i in range(d):
        hist = hists[i]
        assert hist is not None
        glo, ghi = ranges[i]
        hist, axis_neff = _without_bound_atoms(
            z[:, i], w, zbounds[i], (glo, ghi), (float(zmin[i]), float(zmax[i])), hist, n_eff, i
        )
        h[i] = isj(hist, glo, ghi, axis_neff)
        spacing = (ghi - glo) / (ISJ_GRID - 1)
        if h[i] < spacing:
            # ISJ resolves the marginal into atoms (integer or heavily tied data): its
            # bandwidth is below its own histogram's node spacing, so no grid can
            # represent it. As the 1-D core does when ISJ fails, fall back to Silverman's
            # rule on the same histogram (positive, so H stays positive definite).
            distinct = int(np.count_nonzero(hist))
            if all(int(np.count_nonzero(hh)) <= d + 1 for hh in hists if hh is not None):
                _check_distinct_points(z, w)
            fallback = silverman(hist, glo, ghi, axis_neff)
            logger.warning(
                "ISJ bandwidth on axis %d (%.3g) is below its histogram spacing %.3g: the "
                "data look discrete (%d distinct values); falling back to Silverman's "
                "rule, h=%.4g",
                i,
                h[i],
                spacing,
                distinct,
                fallback,
            )
            h[i] = fallback
    h *= _isj_rate_ratio(n_eff, d)
    hmat = cast(FloatArray, c / np.outer(sd_c, sd_c) * np.outer(h, h) * scale2)
    lo_f, hi_f, act_f = _layout(zbounds, zmin, zmax, np.sqrt(np.diag(hmat)))
    covered = bool(np.all(lo_p <= lo_f) and np.all(hi_p >= hi_f)) and all(
        (pa or not fa) and (pb or not fb) for (pa, pb), (fa, fb) in zip(act_p, act_f, strict=True)
    )
    if not covered:
        logger.debug("fit_nd: ISJ bandwidth beyond the pilot layout; binning again")
        return hmat, None
    return hmat, (counts, lo_p, hi_p, act_p)


def _without_bound_atoms(
    col: FloatArray,
    w: FloatArray | None,
    bounds: Bound,
    grid: tuple[float, float],
    span: tuple[float, float],
    hist: FloatArray,
    n_eff: float,
    axis: int,
) -> tuple[FloatArray, float]:
    """The axis's ISJ histogram without the observations exactly on a finite bound that
    is an end of it, and the Kish size of the others (the 1-D core's ``_bound_atoms``: a
    point mass on the bound would be resolved as a spike). Unchanged when there are
    none, or when fewer than two distinct values would remain. ``span``: the column's
    (min, max), so that data away from the bounds cost no pass."""
    lo, hi = bounds
    ends = (lo if grid[0] == lo else None, hi if grid[1] == hi else None)
    touches = (ends[0] is not None and span[0] <= ends[0]) or (
        ends[1] is not None and span[1] >= ends[1]
    )
    atoms = _bound_atoms(col, w, ends) if touches else None
    if atoms is None:
        return hist, n_eff
    # hist holds counts (no weights) or the weights normalised to sum 1
    unit = 1.0 if w is None else 1.0 / float(np.sum(w))
    out = hist.copy()
    out[0] = max(0.0, out[0] - unit * atoms.lower)
    out[-1] = max(0.0, out[-1] - unit * atoms.upper)
    logger.warning(
        "fit_nd: observations with %.3g%% of the weight lie exactly on a bound of axis %d: "
        "a density has no point mass there, so the estimate spreads them over about one "
        "bandwidth next to the bound, and the axis's ISJ bandwidth is chosen from the others",
        100.0 * (atoms.lower + atoms.upper) / atoms.total,
        axis,
    )
    return out, atoms.n_eff


def _grid_estimate(
    z: FloatArray,
    w: FloatArray | None,
    zbounds: tuple[Bound, ...],
    hmat: FloatArray,
    base: str,
    sizes: tuple[int, ...],
    workers: int,
    zmin: FloatArray,
    zmax: FloatArray,
    binned: Binned | None = None,
) -> tuple[
    FloatArray, FloatArray, FloatArray, tuple[tuple[bool, bool], ...], FloatArray, FloatArray
]:
    """Grid layout, binning, convolution and the boundary method (unnormalised).

    ``binned`` is ``(counts, lo, hi, active)`` from a binning pass already made on a
    layout that covers this bandwidth's (see :func:`_isj_fused`); None bins here.
    """
    d = z.shape[1]
    sd = np.sqrt(np.diag(hmat))
    wn = None if w is None else w / w.sum()
    if binned is None:
        lo, hi, active_l = _layout(zbounds, zmin, zmax, sd)
        counts = g.multilinear_binning(z, wn, lo, hi, sizes)
        if wn is None:
            counts /= z.shape[0]
    else:
        counts, lo, hi, active_l = binned
    active = list(active_l)
    step = (hi - lo) / (np.array(sizes) - 1)
    half = []
    for i in range(d):
        h = math.ceil(CUT * sd[i] / step[i])
        both = active[i][0] and active[i][1]
        cap = 4 * (sizes[i] - 1) if (base == "reflect" and both) else sizes[i] - 1
        half.append(max(1, min(h, cap)))
    fft_nodes = math.prod(k + 2 * h for k, h in zip(sizes, half, strict=True))
    if fft_nodes > MAX_FFT_NODES:
        raise ValueError(
            f"the bandwidth (kernel sds {np.array2string(sd, precision=3)}) is so much "
            f"wider than the grid (node spacing {np.array2string(step, precision=3)}) "
            f"that its FFT convolution needs {fft_nodes} nodes (at most {MAX_FFT_NODES}, "
            "a memory limit of about 2 GiB for the fit); use a smaller grid_size or a "
            "smaller bandwidth"
        )
    narrow = [i for i in range(d) if sd[i] < step[i]]
    if narrow:
        logger.warning(
            "fit_nd: bandwidth (kernel sd %s) is below the grid spacing %s on axes %s; the "
            "estimate is close to the binned data there, increase grid_size",
            np.array2string(sd, precision=3),
            np.array2string(step, precision=3),
            narrow,
        )
    kern, offsets = g.gaussian_stencil(hmat, step, half)
    vol = float(np.prod(step))
    any_active = any(a or b for a, b in active)
    kernels = [kern]
    lin = base in ("linear", "linear-mbc")
    if lin and any_active:
        mesh = np.meshgrid(*offsets, indexing="ij")
        kernels += [-m * kern for m in mesh]
    spectra: dict[tuple[int, tuple[int, ...]], Any] = {}  # kern's spectrum, reused by MBC
    outs = g.fft_convolve_full(counts, kernels, workers, spectra)
    a0 = np.ones([1] * d)
    if not any_active:
        dens = g.crop(outs[0], half, sizes) / vol
    elif base == "reflect":
        dens = outs[0] / vol
        for i in range(d):
            fm = g.fold_matrix(sizes[i], half[i], active[i][0], active[i][1])
            dens = g.apply_along(fm, dens, i)
    else:
        order = 1 if lin else 0
        a0, a1, a2 = g.box_moments(
            kern, offsets, sizes, [a[0] for a in active], [a[1] for a in active], order, workers
        )
        m0 = g.crop(outs[0], half, sizes) / vol
        fbar = m0 / a0
        if base == "renorm":
            dens = fbar
        else:
            m1 = np.stack([g.crop(o, half, sizes) / vol for o in outs[1:]])
            flin = g.local_linear(m0, m1, a0, a1, a2)
            # Below the FFT round-off floor the moments are noise: keep fbar there.
            ok = fbar > FFT_FLOOR * float(fbar.max())
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ratio = np.where(ok, flin / np.where(ok, fbar, 1.0), 1.0)
            # Jones and Foster (1996): non-negative, same O(h^2) boundary bias.
            dens = fbar * np.exp(np.minimum(ratio - 1.0, 50.0))
    dens = np.maximum(dens, 0.0)
    if base == "linear-mbc":
        # Jones, Linton and Nielsen (1995): f~ = f^ * alpha, alpha the renormalised kernel
        # smoother of 1/f^ at the data (f^ read at the binned nodes, as GetDist does).
        floor = FFT_FLOOR * float(dens.max())
        inv = np.where(counts > 0, counts / np.maximum(dens, floor), 0.0)
        smooth = g.crop(g.fft_convolve_full(inv, [kern], workers, spectra)[0], half, sizes) / vol
        dens = np.maximum(dens * smooth / a0, 0.0)  # FFT round-off can dip below 0
    return dens, lo, step, tuple(active), a0, counts
