"""The bounded kernel density estimator: configuration and state around the pure functions.

``BoundedKDE`` follows scikit-learn's estimator rules (``__init__`` stores its
arguments, ``fit`` validates them, does the work and returns ``self``; fitted state ends
in ``_``) and scipy's method names (``pdf``, ``logpdf``, ``cdf``, ``ppf``, ``sample``).

Fitting is: one pass for the minimum and maximum (which also catches NaN and inf),
one weighted linear-binning pass (:mod:`boundedkde.binning`), the bandwidth rule on the
binned counts (:mod:`boundedkde.bandwidth`), and a boundary-corrected FFT convolution
(:mod:`boundedkde.boundary`). The result is stored as a piecewise-linear density on
the grid, so ``pdf``, ``cdf``, ``ppf`` and ``sample`` describe one distribution exactly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from boundedkde import _validation as v
from boundedkde._inputs import apply_nan_policy, to_float_array
from boundedkde._piecewise import PiecewiseLinearDensity
from boundedkde.bandwidth import (
    BANDWIDTHS,
    _std,
    bootstrap_mbc_bandwidth,
    isj,
    kernel_scale,
    kish_neff,
    mbc_scale,
)
from boundedkde.binning import linear_binning
from boundedkde.boundary import (
    METHODS,
    TRANSFORM_METHODS,
    PoleTest,
    ScaleCheck,
    hill_pole_test,
    pole_test_size,
    select_method,
)
from boundedkde.kernels import KERNELS, Kernel
from boundedkde.streaming import BinnedData, bin_chunk, bin_dask, is_dask_collection
from boundedkde.transforms import TRANSFORMS, Transform, default_transform, fit_shifted_log

if TYPE_CHECKING:
    from boundedkde.multivariate import NDFit

__all__ = ["BoundedKDE", "bounded_kde"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
BoundsLike = tuple[float | None, float | None]

#: Default number of grid nodes over the binned range: 2**14, the grid of Botev et
#: al.'s (2010) reference ISJ implementation.
DEFAULT_GRID_SIZE = 2**14
#: Largest grid the automatic refinement builds (heavy-tailed data, see ``_MIN_H_OVER_DX``).
MAX_GRID_SIZE = 2**20
#: The automatic grid keeps at least this many nodes per bandwidth; then binning plus
#: linear interpolation differ from the exact sum by at most
#: (dx/h)^2 / 4 * max|K''| / h  <= 0.0016 / h for the Gaussian (see the guide).
_MIN_H_OVER_DX = 8.0
#: The boundary method a transform method runs on a transformed scale that keeps its
#: bound (``Transform.keeps_bound``, the shifted log).
_KEPT_BOUND_METHOD = {"transform": "linear", "transform-mbc": "linear-mbc"}
#: Padding of an open side of the binned range, as a fraction of the data range
#: (Botev et al.'s reference implementation uses 10%).
_OPEN_PAD = 0.1
#: A stream stores its counts on a grid at least this many times finer than the fit's
#: when the fit's grid is not known in advance (an open side or a far bound), so that
#: moving them onto the fit's grid smooths by at most an eighth of its spacing.
_STREAM_REFINE = 8
#: A finite bound more than this many data ranges from the data gets no pole test: over
#: the data, log(x - bound) departs from a straight line by about (range/distance)^2 / 2,
#: under 1e-12 of the range there, so the bound can show neither a pole nor a zero.
_FAR_BOUND = 1e6
#: Level of the pole test used by method="auto", per bound. 0.001 rather than the usual
#: 0.01: up to two bounds are tested (Bonferroni), and a false "pole" (transforming a
#: density that is finite at its bound) costs far more accuracy than missing a pole
#: weak enough to pass at this level; the power against a 1/sqrt(x) pole stays above
#: 98% from n = 500 on (Gamma(k, 1) null, k = ceil(n^(2/3))).
POLE_TEST_LEVEL = 0.001
#: Largest sample the pole test looks at (an evenly strided subsample beyond): at
#: 10^5 points k = 2155 and the power against a 1/sqrt(x) pole is 1 - 1e-16 already.
POLE_TEST_MAX_N = 100_000

METHOD_CHOICES = ("auto", *METHODS)


class BoundedKDE:
    """Kernel density estimate that respects the support of the data.

    Parameters
    ----------
    bounds : tuple of (float or None, float or None), default (None, None)
        ``(lower, upper)`` support of the data; ``None`` for an open side. Bounds are
        never inferred from the data, and data outside them is an error.
    method : str, default "auto"
        Boundary method, a key of :data:`boundedkde.boundary.METHODS` or ``"auto"``:
        ``"transform-mbc"`` when the data show a pole of the density at a finite bound
        (:func:`boundedkde.boundary.hill_pole_test`) or a density vanishing at every
        finite bound (unless the data scale is the easier one and, with two finite
        bounds, both are out of the kernel's reach: :class:`boundedkde.boundary.ScaleCheck`),
        ``"linear-mbc"`` otherwise and ``"none"`` (a plain KDE) when no bound is finite.
        When the chosen data-scale estimate cannot be resolved on a grid of 2**20 nodes
        (a heavy tail thousands of bandwidths long, with a named bandwidth and
        ``grid_size=None``), ``auto`` fits ``"transform-mbc"`` with the shifted log
        ``"log1p"`` instead (``tail_rescue_``).
    bandwidth : str, float or callable, default "isj"
        A key of :data:`boundedkde.bandwidth.BANDWIDTHS` (``"isj"``, ``"silverman"``,
        ``"scott"``), the kernel standard deviation in data units, or a callable
        ``bandwidth(x, weights) -> float`` receiving the data on the scale the
        estimate is made on (the transformed scale for the transform methods). Named
        rules are Gaussian-kernel rules carried to other kernels with
        :func:`boundedkde.bandwidth.kernel_scale`, and multiplied by
        :func:`boundedkde.bandwidth.mbc_scale` for ``"linear-mbc"``, whose bias is of
        higher order. For ``"transform-mbc"`` that product is the pilot of
        :func:`boundedkde.bandwidth.bootstrap_mbc_bandwidth` on the transformed scale,
        whose result is used.
    kernel : str, default "gaussian"
        A key of :data:`boundedkde.kernels.KERNELS`.
    grid_size : int or None, default None
        Number of grid nodes over the binned range (the bounds, or the data range
        padded by 10% on an open side). ``None`` uses 2**14 and refines the grid (up
        to 2**20 nodes) when it has fewer than 8 nodes per bandwidth.
    transform : str or None, default None
        Transform for ``"transform"`` and ``"transform-mbc"`` (a key of
        :data:`boundedkde.transforms.TRANSFORMS`); ``None`` means ``"log"`` for one
        finite bound and ``"probit"`` for two (Geenens 2014; see
        :func:`boundedkde.transforms.default_transform`). ``"log1p"``, the shifted log
        for heavy tails (:func:`boundedkde.transforms.fit_shifted_log`), keeps its bound:
        the transformed scale is estimated with ``"linear"`` (for ``"transform"``) or
        ``"linear-mbc"`` (for ``"transform-mbc"``) and the density stays finite and
        positive at the bound. ``auto`` uses a named transform for its pole and zero
        picks, except ``"log1p"``, which cannot follow a pole or a zero.

    Attributes
    ----------
    bandwidth_ : float
        Kernel standard deviation used (on the transformed scale for the transform
        methods).
    n_eff_ : float
        Kish effective sample size :math:`(\\sum w)^2/\\sum w^2`.
    method_ : str
        The boundary method used ("auto" resolved).
    bounds_ : tuple
        The validated bounds.
    transform_ : str or None
        The transform used, if any.
    grid_size_ : int
        Number of nodes of the fitted grid (after padding of open sides).
    pole_tests_ : tuple of (PoleTest or None, PoleTest or None)
        The pole tests run by ``method="auto"`` at the lower and upper bound.
    scale_check_ : ScaleCheck or None
        When ``method="auto"`` found the density vanishing at every finite bound (and no
        pole), the check that decided between ``transform-mbc`` and ``linear-mbc``
        (:class:`boundedkde.boundary.ScaleCheck`); else ``None``.
    tail_rescue_ : bool
        Whether ``method="auto"`` moved to the shifted-log scale (``transform_ ==
        "log1p"``, ``method_ == "transform-mbc"``) because no grid of up to 2**20 nodes
        over the data's range resolves the data-scale bandwidth: a tail thousands of
        bandwidths long (concepts.md, "Heavy tails").

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).exponential(size=2000)
    >>> kde = BoundedKDE(bounds=(0, None)).fit(x)
    >>> kde.method_
    'linear-mbc'
    >>> float(kde.pdf(-0.1)), round(float(kde.cdf(0.0)), 12)
    (0.0, 0.0)
    """

    # Fitted attributes whose type depends on the dimension (scalars and pairs in 1-D,
    # matrices and tuples per axis in 2-D and 3-D).
    bounds_: Any
    method_: Any
    bandwidth_: Any
    grid_size_: Any
    #: The 2-D/3-D fit this estimator delegates to, None for 1-D fits.
    _nd: NDFit | None = None

    def __init__(
        self,
        bounds: BoundsLike = (None, None),
        method: str = "auto",
        bandwidth: str | float | ArrayLike | Callable[..., Any] = "isj",
        kernel: str = "gaussian",
        grid_size: int | None = None,
        transform: str | None = None,
        nan_policy: str = "raise",
    ) -> None:
        self.bounds = bounds
        self.method = method
        self.bandwidth = bandwidth
        self.kernel = kernel
        self.grid_size = grid_size
        self.transform = transform
        self.nan_policy = nan_policy

    # ------------------------------------------------------------- parameters
    _PARAM_NAMES = (
        "bounds",
        "method",
        "bandwidth",
        "kernel",
        "grid_size",
        "transform",
        "nan_policy",
    )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as scikit-learn's ``get_params`` (``clone`` works).

        ``deep`` is accepted for compatibility; no parameter is itself an estimator.
        """
        return {name: getattr(self, name) for name in self._PARAM_NAMES}

    def set_params(self, **params: Any) -> BoundedKDE:
        """Set constructor arguments by name (checked at the next :meth:`fit`)."""
        for name, value in params.items():
            if name not in self._PARAM_NAMES:
                raise ValueError(
                    f"set_params of BoundedKDE: unknown parameter {name!r}; valid ones are "
                    f"{', '.join(self._PARAM_NAMES)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = BoundedKDE.__init__.__defaults__ or ()
        changed = [
            f"{name}={value!r}"
            for name, default in zip(self._PARAM_NAMES, defaults, strict=True)
            if (value := getattr(self, name)) is not default and not _equal(value, default)
        ]
        return f"BoundedKDE({', '.join(changed)})"

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> tuple[BoundsLike, str, Any, Kernel, int | None]:
        bounds = v.check_bounds(self.bounds)
        method = v.check_choice(self.method, "method", METHOD_CHOICES)
        bandwidth = v.check_bandwidth(self.bandwidth, BANDWIDTHS)
        kernel = KERNELS[v.check_choice(self.kernel, "kernel", KERNELS)]
        grid_size = v.check_grid_size(self.grid_size)
        if self.transform is not None:
            v.check_choice(self.transform, "transform", TRANSFORMS)
        return bounds, method, bandwidth, kernel, grid_size

    def _resolve_transform(
        self,
        bounds: BoundsLike,
        method: str,
        x: FloatArray | None = None,
        w: FloatArray | None = None,
    ) -> Transform:
        lo, hi = bounds
        n_finite = (lo is not None) + (hi is not None)
        if n_finite == 0:
            raise ValueError(
                f"method={method!r} of BoundedKDE needs at least one finite bound; got "
                "bounds=(None, None) (use method='none' or 'auto' for unbounded data)"
            )
        name = self.transform if self.transform is not None else default_transform(bounds)
        t = TRANSFORMS[name]
        if t.needs != "any" and (t.needs == "two") != (n_finite == 2):
            raise ValueError(
                f"transform={name!r} of BoundedKDE needs {t.needs} finite bound(s); got "
                f"bounds=({lo}, {hi})"
            )
        if name == "log1p" and x is not None:
            return fit_shifted_log(x, w, bounds)
        return t

    def fit(self, x: ArrayLike, weights: ArrayLike | None = None) -> BoundedKDE:
        """Fit the estimate to 1-D data.

        Parameters
        ----------
        x : array_like, shape (n,) or (n, 1)
            Observations, all inside ``bounds`` and finite, not all equal.
        weights : array_like of shape (n,), optional
            Non-negative weights, not all zero.

        Returns
        -------
        BoundedKDE
            ``self``, fitted.

        Raises
        ------
        ValueError
            For data outside the bounds, NaN or inf, empty or constant data, negative
            or all-zero weights, bad bounds, an unknown method, kernel or bandwidth
            name, or 2-D data.
        TypeError
            For arguments of the wrong type.

        Examples
        --------
        >>> import numpy as np
        >>> x = np.random.default_rng(1).uniform(size=500)
        >>> BoundedKDE(bounds=(0, 1), method="reflect").fit(x).method_
        'reflect'
        """
        return self._all_or_nothing(self._fit, x, weights)

    def _all_or_nothing(
        self,
        step: Callable[[Any, Any], BoundedKDE],
        x: Any,
        weights: Any,
    ) -> BoundedKDE:
        """Run a fitting step; if it fails, the estimator is left as it was (fitted or
        not, a stream without the failed chunk), never half-set."""
        saved = dict(self.__dict__)
        try:
            return step(x, weights)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit(self, x: ArrayLike, weights: ArrayLike | None) -> BoundedKDE:
        self.__dict__.pop("_stream", None)
        self._nd = None
        if is_dask_collection(x):
            return self._fit_dask(x, weights)
        x, weights = self._coerce(x, weights)
        if np.ndim(x) == 2 and np.shape(x)[1] >= 2:
            return self._fit_multivariate(x, weights)
        self.d_ = 1
        bounds, method, bandwidth, kernel, grid_size = self._check_params()
        xa = v.check_x(x)
        w = v.check_weights(weights, xa.size)
        if w is not None:
            if not np.all(w > 0):
                xa, w = xa[w > 0], w[w > 0]  # zero weights carry nothing and may lie anywhere
            w = w / float(np.max(w))  # relative weights: no overflow in sums of squares
        lo, hi = bounds
        xmin, xmax = float(xa.min()), float(xa.max())
        v.check_data_range(xmin, xmax, lo, hi)
        n_eff = kish_neff(w, xa.size)

        transform: Transform | None = None
        self.pole_tests_: tuple[PoleTest | None, PoleTest | None] = (None, None)
        self.scale_check_: ScaleCheck | None = None
        self.tail_rescue_ = False
        auto = method == "auto"
        if method in TRANSFORM_METHODS:
            transform = self._resolve_transform(bounds, method, xa, w)
        elif auto:
            method, self.pole_tests_, self.scale_check_ = auto_method(
                xa,
                w,
                bounds,
                lambda: self._auto_transform(bounds),
                bandwidth,
                kernel,
                grid_size if grid_size is not None else DEFAULT_GRID_SIZE,
            )
            if method in TRANSFORM_METHODS:
                transform = self._auto_transform(bounds)
            logger.info(
                "method='auto' resolved to %r (pole tests %s; scale check %s)",
                method,
                self.pole_tests_,
                self.scale_check_,
            )
        # Observations exactly on a bound (only possible where the data touch it), left out
        # of a named rule; only on a scale that keeps the bounds (data, log1p): log and
        # probit send them to infinity and refuse them.
        atoms = None
        if (
            isinstance(bandwidth, str)
            and (transform is None or transform.keeps_bound)
            and ((lo is not None and xmin == lo) or (hi is not None and xmax == hi))
        ):
            atoms = _bound_atoms(xa, w, bounds)
            if atoms is not None:  # else the rule sees them all
                _warn_bound_atoms(atoms, bounds, bandwidth)
        fit_kw = {
            "bandwidth": bandwidth,
            "kernel": kernel,
            "grid_size": grid_size,
            "atoms": atoms,
            "data_range": (xmin, xmax),
        }
        # A float or callable bandwidth is in data units: no change of scale under it.
        rescue = (
            auto
            and transform is None
            and grid_size is None
            and isinstance(bandwidth, str)
            and (lo is not None or hi is not None)
        )
        resolved = self._fit_on_scale(
            xa, w, n_eff, bounds, method, transform, fallback=rescue, **fit_kw
        )
        if rescue and not resolved:
            # Even the largest automatic grid cannot resolve the bandwidth over the data's
            # range: a tail many thousand bandwidths long (concepts.md, "Heavy tails").
            # The shifted log compresses the tail and keeps the bound.
            transform = fit_shifted_log(xa, w, bounds)
            method = "transform-mbc"
            logger.info(
                "method='auto': bandwidth %.3g needs more than %d grid nodes over the data "
                "range; refitting on the shifted-log scale",
                self.bandwidth_,
                MAX_GRID_SIZE,
            )
            self.tail_rescue_ = True
            self._fit_on_scale(xa, w, n_eff, bounds, method, transform, fallback=False, **fit_kw)
        self.bounds_ = bounds
        self.method_ = method
        self.transform_ = transform.name if transform is not None else None
        self._transform = transform
        self.n_eff_ = n_eff
        return self

    def _auto_transform(self, bounds: BoundsLike) -> Transform:
        """The transform of ``auto``'s pole and zero picks: the named one, except
        ``log1p``, which keeps the density finite and positive at its bound and so
        cannot follow a pole or a zero there (the default is used instead)."""
        if self.transform == "log1p":
            return TRANSFORMS[default_transform(bounds)]
        return self._resolve_transform(bounds, "transform-mbc")

    def _fit_on_scale(
        self,
        xa: FloatArray,
        w: FloatArray | None,
        n_eff: float,
        bounds: BoundsLike,
        method: str,
        transform: Transform | None,
        *,
        bandwidth: Any,
        kernel: Kernel,
        grid_size: int | None,
        atoms: BoundAtoms | None,
        fallback: bool,
        data_range: tuple[float, float],
    ) -> bool:
        """Bin and fit on the data scale or the transformed one; return whether a grid
        of at most ``MAX_GRID_SIZE`` nodes can resolve the bandwidth (``_fit_grid``).
        ``fallback``: the caller has a fallback for an unresolvable bandwidth (then
        nothing is fitted and no warning is logged in that case). ``atoms``: the weight
        on the bounds, left out of a named rule (the same on the log1p scale, whose
        bounds are the images of the data scale's). ``data_range``: ``(min, max)`` of
        ``xa`` (known to the caller; a pass over big data saved)."""
        fit_bounds: BoundsLike = bounds
        if transform is not None:
            data = _to_transformed(xa, w, bounds, transform, method)
            dmin, dmax = float(np.min(data)), float(np.max(data))
            if transform.transformed_bounds is None:
                grid_bounds: BoundsLike = (None, None)
            else:
                # The transformed scale keeps the bound: estimate there with the
                # boundary method the transform method corresponds to.
                fit_bounds = transform.transformed_bounds(bounds)
                grid_bounds = _near_bounds(fit_bounds, dmin, dmax)
                method = _KEPT_BOUND_METHOD[method]
        else:
            # A finite bound beyond where an open side's grid would end is laid out as an
            # open side first (a grid stretched to a far bound would leave the data a few
            # nodes); it becomes a grid end again if the kernel reaches it.
            data, (dmin, dmax) = xa, data_range
            grid_bounds = _near_bounds(bounds, dmin, dmax)
        m = grid_size if grid_size is not None else DEFAULT_GRID_SIZE
        while True:
            glo, ghi = _binning_range(dmin, dmax, grid_bounds)
            counts = linear_binning(data, w, glo, ghi, m)

            def rebin(size: int, glo: float = glo, ghi: float = ghi) -> FloatArray:
                return linear_binning(data, w, glo, ghi, size)

            resolved = self._fit_grid(
                counts,
                glo,
                ghi,
                n_eff,
                (dmin, dmax),
                bounded=(grid_bounds[0] is not None, grid_bounds[1] is not None),
                method=method,
                bandwidth=bandwidth,
                kernel=kernel,
                refine=rebin if grid_size is None else None,
                raw=(data, w),
                fallback=fallback,
                atoms=atoms,
            )
            if fallback and not resolved:
                return False  # nothing fitted: the caller falls back (_fit_grid)
            if transform is not None and transform.transformed_bounds is None:
                return resolved
            reached = _reached_bounds(
                fit_bounds, grid_bounds, (dmin, dmax), kernel, self.bandwidth_
            )
            if reached == grid_bounds:
                return resolved  # the far bounds are out of the kernel's reach
            grid_bounds = reached

    def _coerce(self, x: Any, weights: Any) -> tuple[FloatArray, FloatArray | None]:
        """numpy, lists, pandas and polars inputs; missing values per ``nan_policy``."""
        xa = to_float_array(x, "x")
        wa = None if weights is None else to_float_array(weights, "weights")
        return apply_nan_policy(xa, wa, self.nan_policy)

    def _fit_dask(self, x: Any, weights: Any) -> BoundedKDE:
        """A Dask array or DataFrame column: bin per chunk on the workers, fit the sum."""
        bounds, _, _, _, grid_size = self._check_params()
        size = grid_size if grid_size is not None else DEFAULT_GRID_SIZE

        def layout(dmin: float, dmax: float) -> BoundsLike:
            return _near_bounds(bounds, dmin, dmax)

        first = bin_dask(x, weights, bounds, size, _OPEN_PAD, layout)

        def counts_on(grid_bounds: BoundsLike, glo: float, ghi: float, m: int) -> FloatArray:
            if m == first.counts.size and first.grid_lo == glo and first.grid_hi == ghi:
                return first.counts
            # The kernel reaches a far bound: bin the data again with the grid ending on it.
            again = bin_dask(x, weights, grid_bounds, m, _OPEN_PAD)
            return again.rebin(glo, ghi, m)  # the same grid: exact

        return self._fit_stream(first, bounds, counts_on, refinable=False)

    def partial_fit(self, x: ArrayLike, weights: ArrayLike | None = None) -> BoundedKDE:
        """Add a chunk of 1-D data to the estimate (streams; the sum of chunks is one fit).

        The chunks are linearly binned on one storage grid and their counts summed
        (binning is additive); the fit then lays out its grid as :meth:`fit` would for
        the merged data (the bounds where finite and near the data, the data range
        padded by 10% on an open side, far bounds as in guide.md, "Far bounds") and
        computes the bandwidth and boundary correction there. The storage grid is the
        fit's grid when both bounds are finite and near the first chunk (then the counts
        are exactly those of :meth:`fit`); otherwise it is at least eight times finer,
        starts from the first chunk's padded range, grows by whole nodes when later
        chunks fall beyond it and is coarsened two-to-one past ``2**20`` nodes (both
        exact), and the fit's grid takes its counts by linear binning of the storage
        nodes (exact where the nodes coincide, otherwise smoothing by at most an eighth
        of the fit's spacing). ``method="auto"`` resolves to ``"linear-mbc"`` here (the
        pole test needs raw data); the transform methods and callable bandwidths need
        :meth:`fit`. A failed call leaves the estimator as it was.

        Parameters
        ----------
        x : array_like, shape (n,)
            The chunk (after the first, it may be a single value).
        weights : array_like, shape (n,), optional
            Its non-negative weights.

        Returns
        -------
        BoundedKDE
            ``self``, fitted to every chunk so far.

        Examples
        --------
        >>> import numpy as np
        >>> x = np.random.default_rng(0).uniform(size=2000)
        >>> kde = BoundedKDE(bounds=(0, 1), method="linear-mbc", grid_size=1024)
        >>> for chunk in np.split(x, 4):
        ...     _ = kde.partial_fit(chunk)
        >>> one = BoundedKDE(bounds=(0, 1), method="linear-mbc", grid_size=1024).fit(x)
        >>> bool(np.allclose(kde.pdf([0.0, 0.5]), one.pdf([0.0, 0.5]), rtol=1e-9))
        True
        """
        return self._all_or_nothing(self._partial_fit, x, weights)

    def _partial_fit(self, x: ArrayLike, weights: ArrayLike | None) -> BoundedKDE:
        bounds, _, _, _, grid_size = self._check_params()
        xc, wc = self._coerce(x, weights)
        xa = v.check_x(xc)
        w = v.check_weights(wc, xa.size)
        if w is not None and not np.all(w > 0):
            xa, w = xa[w > 0], w[w > 0]  # zero weights carry nothing and may lie anywhere
        dmin, dmax = float(xa.min()), float(xa.max())
        state: BinnedData | None = self.__dict__.get("_stream")
        if state is None:
            v.check_data_range(dmin, dmax, *bounds)
            size = grid_size if grid_size is not None else DEFAULT_GRID_SIZE
            state = _stream_storage(bounds, dmin, dmax, size)
        else:
            v.check_data_range(dmin, dmax, *bounds, allow_constant=True)
        # Whole nodes wherever the chunk reaches past the grid (also the first chunk, whose
        # grid end may be computed a few ulps short of a bound on a lattice).
        state = state.extend(
            min(dmin, state.grid_lo), max(dmax, state.grid_hi), max_size=MAX_GRID_SIZE
        )
        chunk = bin_chunk(xa, w, state.grid_lo, state.step, state.counts.size, bounds)
        if not chunk.total_weight > 0:
            raise RuntimeError(  # pragma: no cover - the grid was extended to the chunk
                f"internal error: a chunk in [{dmin}, {dmax}] fell outside the stream's grid "
                f"[{state.grid_lo}, {state.grid_hi}]"
            )
        merged = state + chunk
        self._stream = merged

        def counts_on(grid_bounds: BoundsLike, glo: float, ghi: float, m: int) -> FloatArray:
            return merged.rebin(glo, ghi, m)

        return self._fit_stream(merged, bounds, counts_on, refinable=grid_size is None)

    def _fit_stream(
        self,
        binned: BinnedData,
        bounds: BoundsLike,
        counts_on: Callable[[BoundsLike, float, float, int], FloatArray],
        *,
        refinable: bool,
    ) -> BoundedKDE:
        """Fit merged binned data on the grid :meth:`fit` would lay out for it.

        ``counts_on(grid_bounds, glo, ghi, m)`` gives the counts on ``m`` nodes from
        ``glo`` to ``ghi`` (``_binning_range`` of the data with the finite bounds in
        ``grid_bounds`` as grid ends).
        """
        lo, hi = bounds
        if math.isnan(binned.total_weight):
            raise ValueError(
                "weights must be finite and non-negative; a chunk has negative, NaN or inf ones"
            )
        if not (math.isfinite(binned.data_min) and math.isfinite(binned.data_max)):
            raise ValueError("x must be finite and non-empty; the data has NaN or inf values")
        v.check_data_range(binned.data_min, binned.data_max, lo, hi)
        if binned.total_weight <= 0:
            raise ValueError("weights must not all be zero; got a total weight of 0")
        self._nd = None
        self.d_ = 1
        _, _, bandwidth, kernel, grid_size = self._check_params()
        m = grid_size if grid_size is not None else DEFAULT_GRID_SIZE
        data_range = (binned.data_min, binned.data_max)
        # As fit(): observations on a bound are left out of a named rule.
        atoms = BoundAtoms.from_binned(binned) if isinstance(bandwidth, str) else None
        if atoms is not None:
            _warn_bound_atoms(atoms, bounds, bandwidth)
        # As in fit(): a finite bound far from the data is an open side of the grid
        # until the kernel reaches it.
        grid_bounds = _near_bounds(bounds, *data_range)
        while True:
            glo, ghi = _binning_range(*data_range, grid_bounds)

            def refine(size: int, gb: BoundsLike = grid_bounds) -> FloatArray:
                g_lo, g_hi = _binning_range(*data_range, gb)
                return counts_on(gb, g_lo, g_hi, size)

            self._fit_counts(
                counts_on(grid_bounds, glo, ghi, m),
                glo,
                ghi,
                binned.total_weight,
                binned.sum_w2,
                data_range,
                bounds,
                grid_bounds,
                refine if refinable else None,
                atoms,
            )
            reached = _reached_bounds(bounds, grid_bounds, data_range, kernel, self.bandwidth_)
            if reached == grid_bounds:
                return self  # the far bounds are out of the kernel's reach
            grid_bounds = reached

    def _fit_multivariate(self, x: ArrayLike, weights: ArrayLike | None) -> BoundedKDE:
        """2-D and 3-D data: the grid path of :func:`boundedkde.multivariate.fit_nd`."""
        from boundedkde.multivariate import fit_nd

        rows, d = (int(v) for v in np.shape(x))
        if rows < d and d > 3:
            raise ValueError(
                f"x of shape ({rows}, {d}) looks transposed: BoundedKDE takes 1-D data as "
                "shape (n,) or (n, 1) and 2-D/3-D data as shape (n, d); pass x.ravel() or x.T"
            )
        bounds: Any = self.bounds
        pair_given = (
            not isinstance(bounds, str)
            and hasattr(bounds, "__len__")
            and len(bounds) == 2
            and all(b is None or isinstance(b, int | float | np.number) for b in bounds)
        )
        if pair_given:
            if tuple(bounds) != (None, None):
                raise ValueError(
                    f"bounds of BoundedKDE must be one (lower, upper) pair per column for "
                    f"{d}-column data, e.g. {[(0, None)] * d}; got {bounds!r}"
                )
            bounds = [(None, None)] * d
        if self.transform is not None:
            raise ValueError(
                "transform of BoundedKDE applies to 1-D data; for 2-D and 3-D data the "
                f"method 'transform' picks log or probit per axis; got transform={self.transform!r}"
            )
        nd = fit_nd(x, weights, bounds, self.method, self.bandwidth, self.kernel, self.grid_size)
        return self._adopt_nd(nd)

    def _adopt_nd(self, nd: NDFit) -> BoundedKDE:
        """Take the fitted state of a 2-D/3-D fit (its attributes become ours)."""
        self._nd = nd
        self.d_ = nd.d
        self.bounds_ = nd.bounds
        self.method_ = nd.method
        self.bandwidth_ = nd.bandwidth
        self.n_eff_ = nd.n_eff
        self.transform_ = None
        self.grid_size_ = nd.grid_size
        self.pole_tests_ = (None, None)
        self.scale_check_ = None
        self.tail_rescue_ = False
        return self

    def _fit_binned(
        self,
        counts: ArrayLike,
        grid_lo: float,
        grid_hi: float,
        total_weight: float,
        sum_w2: float,
        data_min: float,
        data_max: float,
    ) -> BoundedKDE:
        """Fit from linearly binned weights (the path for pre-binned, chunked data).

        ``counts`` are :func:`boundedkde.binning.linear_binning` weights on
        ``grid_nodes(grid_lo, grid_hi, len(counts))``; the grid must start (end) exactly
        at a finite lower (upper) bound and cover the data. Binning is additive, so the
        counts of chunks can be summed first. ``method="auto"`` cannot run the pole test
        without raw data and resolves to ``"linear-mbc"``; the transform methods and callable
        bandwidths need raw data and are refused.
        """
        bounds, _, _, _, _ = self._check_params()
        lo, hi = bounds
        v.check_data_range(float(data_min), float(data_max), lo, hi, name="data")
        if (lo is not None and grid_lo != lo) or (hi is not None and grid_hi != hi):
            raise ValueError(
                f"grid_lo/grid_hi must equal the finite bounds ({lo}, {hi}); got "
                f"({grid_lo}, {grid_hi})"
            )
        return self._fit_counts(
            counts,
            grid_lo,
            grid_hi,
            total_weight,
            sum_w2,
            (float(data_min), float(data_max)),
            bounds,
            bounds,
        )

    def _fit_counts(
        self,
        counts: ArrayLike,
        grid_lo: float,
        grid_hi: float,
        total_weight: float,
        sum_w2: float,
        data_range: tuple[float, float],
        bounds: BoundsLike,
        grid_bounds: BoundsLike,
        refine: Callable[[int], FloatArray] | None = None,
        atoms: BoundAtoms | None = None,
    ) -> BoundedKDE:
        """Fit binned counts whose grid ends on the finite bounds in ``grid_bounds``
        (the others, far from the data, are open sides of the grid); ``refine(m)`` gives
        the counts on ``m`` nodes of the same range, for a bandwidth narrow against the
        spacing; ``atoms``, the weight on the bounds left out of a named rule."""
        _, method, bandwidth, kernel, _ = self._check_params()
        if method in TRANSFORM_METHODS or callable(bandwidth):
            raise ValueError(
                "the transform methods and callable bandwidths need the raw data; use fit()"
            )
        bounded = (grid_bounds[0] is not None, grid_bounds[1] is not None)
        if method == "auto":
            method = select_method((bounds[0] is not None, bounds[1] is not None), (False, False))
        n_eff = total_weight * total_weight / sum_w2
        self.pole_tests_ = (None, None)
        self.scale_check_ = None
        self.tail_rescue_ = False
        self._nd = None
        self.d_ = 1
        self._fit_grid(
            np.asarray(counts, dtype=float),
            float(grid_lo),
            float(grid_hi),
            n_eff,
            data_range,
            bounded=bounded,
            method=method,
            bandwidth=bandwidth,
            kernel=kernel,
            refine=refine,
            raw=None,
            atoms=atoms,
        )
        self.bounds_ = bounds
        self.method_ = method
        self.transform_ = None
        self._transform = None
        self.n_eff_ = n_eff
        return self

    def _fit_grid(
        self,
        counts: FloatArray,
        glo: float,
        ghi: float,
        n_eff: float,
        data_range: tuple[float, float],
        *,
        bounded: tuple[bool, bool],
        method: str,
        bandwidth: Any,
        kernel: Kernel,
        refine: Callable[[int], FloatArray] | None,
        raw: tuple[FloatArray, FloatArray | None] | None,
        fallback: bool = False,
        atoms: BoundAtoms | None = None,
    ) -> bool:
        """Fit the grid estimate; return whether a grid of at most ``MAX_GRID_SIZE``
        nodes over the binned range can resolve the bandwidth (``_MIN_H_OVER_DX``
        nodes per bandwidth). ``atoms``: weights lying exactly on the grid's end nodes
        (finite bounds), left out of a named bandwidth rule."""

        def rule(c: FloatArray, name: Any = bandwidth) -> float:
            if atoms is None:
                return _bandwidth_value(name, c, glo, ghi, n_eff, method, kernel, raw)
            c = c.copy()
            c[0] = max(0.0, c[0] - atoms.lower)
            c[-1] = max(0.0, c[-1] - atoms.upper)
            return _bandwidth_value(name, c, glo, ghi, atoms.n_eff, method, kernel, raw)

        h = rule(counts)
        m = counts.size
        dx = (ghi - glo) / (m - 1)
        if fallback and h * (MAX_GRID_SIZE - 1) < _MIN_H_OVER_DX * (ghi - glo):
            # Unresolvable even on the largest grid, and the caller has a fallback
            # (auto's shifted log): skip the refined fit, which would be the slowest.
            self.bandwidth_ = float(h)
            return False
        if refine is not None and h < _MIN_H_OVER_DX * dx and m < MAX_GRID_SIZE:
            m_new = min(MAX_GRID_SIZE, math.ceil(_MIN_H_OVER_DX * (ghi - glo) / h) + 1)
            logger.info("grid refined from %d to %d nodes (bandwidth %.3g)", m, m_new, h)
            counts = refine(m_new)
            m = m_new
            dx = (ghi - glo) / (m - 1)
            if isinstance(bandwidth, str):
                h = rule(counts)
        if h < dx and isinstance(bandwidth, str) and bandwidth != "silverman" and raw is not None:
            gap = _smallest_gap(*raw)
            if h < gap:
                # Narrower than every gap between distinct values: the rule has resolved
                # the data into atoms (counts, values rounded to a coarse unit), and the
                # "density" would be a train of spikes. Silverman's rule sees only the
                # spread (as fit_nd does for such an axis).
                logger.warning(
                    "bandwidth %r gave %.3g, below the smallest gap %.3g between distinct "
                    "values (discrete or coarsely rounded data); using Silverman's rule",
                    bandwidth,
                    h,
                    gap,
                )
                h = rule(counts, "silverman")
        # Resolvable: the largest automatic grid over this range has _MIN_H_OVER_DX nodes
        # per bandwidth (a tail thousands of bandwidths long has not).
        resolved = h * (MAX_GRID_SIZE - 1) >= _MIN_H_OVER_DX * (ghi - glo)
        if fallback and not resolved:  # the refined bandwidth is unresolvable after all
            self.bandwidth_ = float(h)
            return False
        if h < dx:
            logger.warning(
                "bandwidth %.3g is below the grid spacing %.3g; increase grid_size", h, dx
            )
        # Pad open sides so the kernel's reach beyond the data stays on the grid.
        reach = kernel.cutoff * h
        pad_lo = 0 if bounded[0] else max(0, math.ceil((glo - (data_range[0] - reach)) / dx))
        pad_hi = 0 if bounded[1] else max(0, math.ceil((data_range[1] + reach - ghi) / dx))
        if m + pad_lo + pad_hi > MAX_GRID_SIZE:
            # A bandwidth many data ranges wide: the padding would need more nodes than
            # the automatic limit, yet the estimate is smooth on the scale of h. Lay the
            # grid over the padded extent with the node count already chosen instead.
            if raw is None:
                raise ValueError(
                    f"bandwidth={h:.4g} of BoundedKDE is too wide for this binned grid "
                    f"(spacing {dx:.4g}): its padding would need {m + pad_lo + pad_hi} nodes, "
                    f"over {MAX_GRID_SIZE}; use a smaller bandwidth or fit() the raw data"
                )
            glo, ghi = glo - pad_lo * dx, ghi + pad_hi * dx
            counts = linear_binning(raw[0], raw[1], glo, ghi, m)
            dx = (ghi - glo) / (m - 1)
            pad_lo = pad_hi = 0
        if pad_lo or pad_hi:
            counts = np.concatenate([np.zeros(pad_lo), counts, np.zeros(pad_hi)])
        start = glo - pad_lo * dx
        total = float(counts.sum())
        density = METHODS[method](counts / total, dx, h, kernel, bounded)
        self._density = PiecewiseLinearDensity.from_values(start, dx, density)
        self.bandwidth_ = float(h)
        self.grid_size_ = int(counts.size)
        return resolved

    # --------------------------------------------------------------- evaluation
    def _check_fitted(self) -> None:
        if not hasattr(self, "bounds_"):
            raise RuntimeError("this BoundedKDE is not fitted yet; call fit(x) first")

    def _inside(self, x: FloatArray) -> NDArray[np.bool_]:
        lo, hi = self.bounds_
        # the maps onto the real line send the bounds to infinity; log1p keeps them
        strict = self._transform is not None and not self._transform.keeps_bound
        ok = np.ones(x.shape, dtype=bool)
        if lo is not None:
            ok &= (x > lo) if strict else (x >= lo)
        if hi is not None:
            ok &= (x < hi) if strict else (x <= hi)
        return ok

    def pdf(self, x: ArrayLike) -> FloatArray:
        """Density at ``x``; exactly 0 outside the bounds.

        Parameters
        ----------
        x : array_like
            Points (any shape); NaN is an error.

        Returns
        -------
        numpy.ndarray
            Same shape as ``x``.

        Examples
        --------
        >>> import numpy as np
        >>> kde = BoundedKDE(bounds=(0, 1)).fit(np.random.default_rng(0).uniform(size=300))
        >>> float(kde.pdf(1.5))
        0.0
        """
        self._check_fitted()
        if self._nd is not None:
            return self._nd.pdf(x)
        xa = v.check_points(x)
        out = np.zeros(xa.shape, dtype=float)
        ok = self._inside(xa)
        if self._transform is None:
            out[ok] = self._density.pdf(xa[ok])
        else:
            t, b = self._transform, self.bounds_
            xs = xa[ok]
            with np.errstate(over="ignore", invalid="ignore"):
                out[ok] = self._density.pdf(t.forward(xs, b)) * np.exp(t.log_jacobian(xs, b))
            out[~np.isfinite(out)] = 0.0
        return out

    def logpdf(self, x: ArrayLike) -> FloatArray:
        """Log density at ``x`` (``-inf`` where the density is 0).

        Parameters
        ----------
        x : array_like
            Points.

        Returns
        -------
        numpy.ndarray
            ``log(pdf(x))``.

        Examples
        --------
        >>> import numpy as np
        >>> kde = BoundedKDE(bounds=(0, None)).fit(np.random.default_rng(0).exponential(size=300))
        >>> float(kde.logpdf(-1.0))
        -inf
        """
        self._check_fitted()
        if self._nd is not None:
            return self._nd.logpdf(x)
        with np.errstate(divide="ignore"):
            return np.log(self.pdf(x))

    def cdf(self, x: ArrayLike) -> FloatArray:
        """Distribution function: the exact integral of :meth:`pdf` from the lower end.

        Parameters
        ----------
        x : array_like
            Points.

        Returns
        -------
        numpy.ndarray
            Values in [0, 1], monotone, 0 at a finite lower and 1 at a finite upper bound.

        Examples
        --------
        >>> import numpy as np
        >>> kde = BoundedKDE(bounds=(0, 1)).fit(np.random.default_rng(0).uniform(size=300))
        >>> float(kde.cdf(0.0)), float(kde.cdf(1.0))
        (0.0, 1.0)
        """
        self._check_fitted()
        if self._nd is not None:
            return self._nd.cdf(x)
        xa = v.check_points(x)
        lo, hi = self.bounds_
        if self._transform is None:
            out = self._density.cdf(xa)
        else:
            out = np.zeros(xa.shape, dtype=float)
            ok = self._inside(xa)
            out[ok] = self._density.cdf(self._transform.forward(xa[ok], self.bounds_))
            if hi is not None:
                out[xa >= hi] = 1.0
        if lo is not None:
            out = np.where(xa <= lo, 0.0, out)
        if hi is not None:
            out = np.where(xa >= hi, 1.0, out)
        return np.asarray(out, dtype=float)

    def ppf(self, q: ArrayLike) -> FloatArray:
        """Quantile function, the inverse of :meth:`cdf`.

        Parameters
        ----------
        q : array_like
            Probabilities in [0, 1].

        Returns
        -------
        numpy.ndarray
            Quantiles, inside the bounds.

        Examples
        --------
        >>> import numpy as np
        >>> kde = BoundedKDE(bounds=(0, 1)).fit(np.random.default_rng(0).uniform(size=300))
        >>> q = kde.ppf(0.3)
        >>> round(float(kde.cdf(q)), 9)
        0.3
        """
        self._check_fitted()
        if self._nd is not None:
            raise ValueError(
                f"ppf of BoundedKDE is defined for 1-D fits; this fit is {self.d_}-D "
                "(use sample, cdf or marginal([axis]).ppf)"
            )
        qa = v.check_probabilities(q)
        y = self._density.ppf(qa)
        x = y if self._transform is None else self._transform.inverse(y, self.bounds_)
        lo, hi = self.bounds_
        if lo is not None or hi is not None:
            x = np.clip(x, lo, hi)
        return np.asarray(x, dtype=float)

    def sample(self, n: int, random_state: int | np.random.Generator | None = None) -> FloatArray:
        """Draw ``n`` values from the estimate itself (inverse-cdf sampling).

        Parameters
        ----------
        n : int
            Number of draws.
        random_state : int, numpy.random.Generator or None
            Seed or generator.

        Returns
        -------
        numpy.ndarray, shape (n,)
            Draws, always inside the bounds.

        Examples
        --------
        >>> import numpy as np
        >>> kde = BoundedKDE(bounds=(0, None)).fit(np.random.default_rng(0).exponential(size=300))
        >>> bool((kde.sample(1000, random_state=1) >= 0).all())
        True
        """
        self._check_fitted()
        if self._nd is not None:
            return self._nd.sample(n, random_state)
        size = v.check_sample_size(n)
        rng = np.random.default_rng(random_state)
        return self.ppf(rng.random(size))

    def grid(self, n: int | None = None) -> tuple[Any, FloatArray]:
        """The estimate on an equidistant grid that has every finite bound as an end point.

        Parameters
        ----------
        n : int or None
            Number of points. ``None`` returns the fitted grid itself (for methods other
            than the transform methods), on which the trapezoid rule integrates the density
            to 1 up to rounding.

        Returns
        -------
        points : numpy.ndarray
            From the lower bound (or the start of the estimate's support) to the upper
            bound (or its end).
        density : numpy.ndarray
            :meth:`pdf` at ``points``.

        Examples
        --------
        >>> import numpy as np
        >>> kde = BoundedKDE(bounds=(0, None)).fit(np.random.default_rng(0).exponential(size=300))
        >>> pts, dens = kde.grid()
        >>> float(pts[0]), round(float(np.trapezoid(dens, pts)), 9)
        (0.0, 1.0)
        """
        self._check_fitted()
        if self._nd is not None:
            return self._nd.grid(n)
        size = v.check_grid_points(n)
        d = self._density
        if self._transform is None:
            lo, hi = self.bounds_
            # A grid end on a finite bound is computed as start + (m - 1) * spacing, which
            # can miss the bound by rounding; the returned grid has the bound exactly.
            snap = 1e-6 * d.spacing
            if size is None:
                nodes = d.nodes()
                if lo is not None and abs(nodes[0] - lo) <= snap:
                    nodes[0] = lo
                if hi is not None and abs(nodes[-1] - hi) <= snap:
                    nodes[-1] = hi
                return nodes, d.values.copy()
            start, end = d.start, d.end
            if lo is not None and abs(start - lo) <= snap:
                start = lo
            if hi is not None and abs(end - hi) <= snap:
                end = hi
        else:
            t, b = self._transform, self.bounds_
            start = b[0] if b[0] is not None else float(t.inverse(np.array(d.start), b))
            end = b[1] if b[1] is not None else float(t.inverse(np.array(d.end), b))
            size = d.size if size is None else size
        points = np.linspace(start, end, size)
        return points, self.pdf(points)

    def hdr_levels(self, probs: ArrayLike = (0.68, 0.95)) -> FloatArray:
        """Density levels whose highest-density regions hold the given masses.

        For each mass ``p`` the largest level ``c`` with :math:`\\int_{f \\ge c} f \\ge p`
        (Hyndman 1996, "Computing and graphing highest density regions"), computed on
        the fitted grid with trapezoid weights (for the transform methods, the
        transformed scale's grid, with the density mapped back); contour plots draw
        these levels.

        Parameters
        ----------
        probs : array_like of floats in (0, 1), default (0.68, 0.95)

        Returns
        -------
        numpy.ndarray
            One level per mass (lower levels for larger masses).

        Raises
        ------
        ValueError
            For masses outside (0, 1).

        Examples
        --------
        >>> import numpy as np
        >>> kde = BoundedKDE(bounds=(0, None)).fit(np.random.default_rng(0).exponential(size=500))
        >>> lv = kde.hdr_levels([0.5, 0.9])
        >>> bool(lv[0] > lv[1])
        True
        """
        self._check_fitted()
        if self._nd is not None:
            return self._nd.hdr_levels(np.atleast_1d(np.asarray(probs, dtype=float)).tolist())
        p = np.atleast_1d(np.asarray(probs, dtype=float))
        if p.ndim != 1 or not np.all((p > 0) & (p < 1)):
            raise ValueError(f"probs of hdr_levels must be masses in (0, 1); got {probs!r}")
        d = self._density
        nodes = d.nodes()
        wts = np.full(nodes.shape, d.spacing)
        wts[[0, -1]] /= 2  # trapezoid weights on the fitted grid
        mass = d.values * wts
        dens = d.values
        if self._transform is not None:
            # The fitted grid is on the transformed scale, where it resolves the estimate
            # (an equidistant data-scale grid need not: heavy tails, poles). Mass is
            # g dy there; the density whose level is sought is f = g T'(x).
            t, b = self._transform, self.bounds_
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                x = t.inverse(nodes, b)
                dens = d.values * np.exp(t.log_jacobian(x, b))
            dens = np.where(np.isfinite(dens), dens, 0.0)
        order = np.argsort(dens)[::-1]
        cum = np.cumsum(mass[order])
        cum /= cum[-1]
        k = np.minimum(np.searchsorted(cum, p, side="left"), dens.size - 1)
        return np.asarray(dens[order][k], dtype=float)

    def marginal(self, axes: Any) -> BoundedKDE:
        """The fitted estimate of a subset of the axes of a 2-D or 3-D fit.

        With a Gaussian kernel of covariance ``H``, integrating the unbounded estimate
        over the other axes gives exactly the estimate of the selected columns with the
        sub-matrix of ``H``; for ``reflect`` and ``transform`` this also holds for the
        bounded estimate, and ``renorm`` and ``linear`` apply the same method to the
        selected columns (see :meth:`boundedkde.multivariate.NDFit.marginal`).

        Parameters
        ----------
        axes : int or sequence of int
            The axes to keep, e.g. ``[0]`` for a 1-D marginal or ``[0, 2]``.

        Returns
        -------
        BoundedKDE
            A fitted estimator of dimension ``len(axes)``.

        Raises
        ------
        ValueError
            For a 1-D fit or bad axes.
        """
        self._check_fitted()
        if self._nd is None:
            raise ValueError("marginal of BoundedKDE needs a 2-D or 3-D fit; this fit is 1-D")
        idx = [int(axes)] if np.ndim(axes) == 0 else [int(a) for a in axes]
        if len(idx) == 1:
            return marginal_1d(self._nd, idx[0], self.kernel)
        out = BoundedKDE(
            bounds=[self.bounds_[i] for i in idx],  # type: ignore[arg-type]
            method=[self.method_[i] for i in idx],  # type: ignore[arg-type]
            bandwidth=self.bandwidth_,
            kernel=self.kernel,
        )
        return out._adopt_nd(self._nd.marginal(idx))


def marginal_1d(nd: NDFit, axis: int, kernel: str) -> BoundedKDE:
    """The 1-D marginal of a 2-D/3-D fit on ``axis``: a BoundedKDE fitted to that column
    with the axis's bounds, method and bandwidth (:meth:`NDFit.marginal_1d_params`)."""
    params = nd.marginal_1d_params(axis)
    kde = BoundedKDE(
        bounds=params["bounds"],
        method=params["method"],
        bandwidth=params["bandwidth"],
        kernel=kernel,
    )
    return kde.fit(params["x"], params["weights"])


@dataclass(frozen=True)
class BoundAtoms:
    """Weights of the observations exactly on the lower and upper finite bound, the Kish
    effective size of the others (what a named bandwidth rule is computed from), the
    total weight, and the number of observations on each bound where known."""

    lower: float
    upper: float
    n_eff: float
    total: float
    counts: tuple[int, int] | None = None

    @classmethod
    def from_binned(cls, binned: BinnedData) -> BoundAtoms | None:
        """The atoms a stream or Dask fit recorded (:func:`bin_chunk` with bounds), on
        the same terms as :func:`_bound_atoms`: ``None`` when there are none or fewer
        than two distinct values remain off the bounds."""
        if not (
            binned.on_lower + binned.on_upper > 0
            and binned.off_max > binned.off_min
            and binned.off_sum_w2 > 0
        ):
            return None
        return cls(
            binned.on_lower,
            binned.on_upper,
            binned.off_weight * binned.off_weight / binned.off_sum_w2,
            binned.total_weight,
        )


def _on_a_bound(x: FloatArray, w: FloatArray | None, bounds: BoundsLike) -> bool:
    """Whether an observation with positive weight lies exactly on a finite bound."""
    xs = x if w is None else x[w > 0]
    if not xs.size:
        return False
    lo, hi = bounds
    return (lo is not None and float(np.min(xs)) <= lo) or (
        hi is not None and float(np.max(xs)) >= hi
    )


def _on_bounds(
    x: FloatArray, bounds: BoundsLike
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    lo, hi = bounds
    on_lo = (x == lo) if lo is not None else np.zeros(x.shape, dtype=bool)
    on_hi = (x == hi) if hi is not None else np.zeros(x.shape, dtype=bool)
    return on_lo, on_hi


def _bound_atoms(x: FloatArray, w: FloatArray | None, bounds: BoundsLike) -> BoundAtoms | None:
    """Observations exactly on a finite bound, to be left out of a named bandwidth rule.

    A bandwidth rule assumes a continuous density; a share of the data sitting on one
    value is a point mass that ISJ resolves as a spike (10 % zeros in exponential data
    gave a bandwidth of 4e-6 and an estimate that was 0 away from the bound). The
    estimate still contains them. ``None`` when there are none, or when fewer than two
    distinct values would remain.
    """
    on_lo, on_hi = _on_bounds(x, bounds)
    if w is not None:
        on_lo &= w > 0
        on_hi &= w > 0
    on = on_lo | on_hi
    if not on.any():
        return None
    off = ~on if w is None else ~on & (w > 0)
    rest = x[off]
    if rest.size < 2 or float(rest.max()) == float(rest.min()):
        return None
    ww = np.ones(x.shape) if w is None else w
    return BoundAtoms(
        lower=float(np.sum(ww[on_lo])),
        upper=float(np.sum(ww[on_hi])),
        n_eff=kish_neff(None if w is None else w[off], int(rest.size)),
        total=float(np.sum(ww)),
        counts=(int(np.count_nonzero(on_lo)), int(np.count_nonzero(on_hi))),
    )


def _warn_bound_atoms(atoms: BoundAtoms, bounds: BoundsLike, rule: str) -> None:
    """Tell the user that observations on a bound are smoothed, not kept as a point mass."""
    for side, (weight, bound) in enumerate(((atoms.lower, bounds[0]), (atoms.upper, bounds[1]))):
        if weight <= 0:
            continue
        who = "observations" if atoms.counts is None else f"{atoms.counts[side]} observation(s)"
        logger.warning(
            "%s with %.3g%% of the weight lie exactly on the bound %s: a density has no "
            "point mass there, so the estimate spreads them over about one bandwidth next "
            "to the bound, and the %r bandwidth is chosen from the other observations. To "
            "keep a point mass, estimate the data off the bound and add the mass separately.",
            who,
            100.0 * weight / atoms.total,
            bound,
            rule,
        )


def _smallest_gap(x: FloatArray, w: FloatArray | None) -> float:
    """Smallest positive gap between distinct values of ``x`` (weight > 0); inf if one."""
    values = np.unique(x if w is None else x[w > 0])
    return float(np.min(np.diff(values))) if values.size > 1 else math.inf


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays compare elementwise
        return False


def _near_bounds(bounds: BoundsLike, dmin: float, dmax: float) -> BoundsLike:
    """``bounds`` without a finite bound that lies beyond an open side's grid end.

    An open side's grid ends ``_OPEN_PAD`` of the data range past the data (and the fit
    pads it by the kernel's reach); a finite bound farther away than that is left out of
    the grid layout (guide.md, "Far bounds").
    """
    lo, hi = bounds
    pad = _OPEN_PAD * (dmax - dmin)
    return (
        lo if lo is not None and dmin - lo <= pad else None,
        hi if hi is not None and hi - dmax <= pad else None,
    )


def _binning_range(dmin: float, dmax: float, bounds: BoundsLike) -> tuple[float, float]:
    """The bounds where finite, else the data range padded by 10% of its width."""
    pad = _OPEN_PAD * (dmax - dmin)
    lo, hi = bounds
    return (lo if lo is not None else dmin - pad, hi if hi is not None else dmax + pad)


def _reached_bounds(
    bounds: BoundsLike,
    grid_bounds: BoundsLike,
    data_range: tuple[float, float],
    kernel: Kernel,
    bandwidth: float,
) -> BoundsLike:
    """``grid_bounds`` plus the far finite bounds within the kernel's reach of the data.

    Only a reached bound becomes a grid end: another far bound in the grid would
    stretch it over that distance and leave the data a few nodes.
    """
    reach = kernel.cutoff * bandwidth
    (lo, hi), (glo, ghi) = bounds, grid_bounds
    return (
        lo if glo is not None or (lo is not None and data_range[0] - lo <= reach) else None,
        hi if ghi is not None or (hi is not None and hi - data_range[1] <= reach) else None,
    )


def _stream_storage(bounds: BoundsLike, dmin: float, dmax: float, size: int) -> BinnedData:
    """The empty storage grid of a stream whose first chunk spans ``[dmin, dmax]``.

    With both bounds finite and near the data it is the grid ``fit`` uses (``size``
    nodes over the bounds), so the counts are exactly ``fit``'s. Otherwise the fit's grid
    is not known yet, and the storage is ``_STREAM_REFINE`` times finer than the first
    chunk's fit grid would be. With both bounds finite its nodes are then every
    ``2^j``-th division of the bounds' grid, so that the fit's grid over the bounds (once
    the kernel reaches them) takes its counts exactly.
    """
    near = _near_bounds(bounds, dmin, dmax)
    glo, ghi = _binning_range(dmin, dmax, near)
    lo, hi = bounds
    if near == bounds and lo is not None and hi is not None:
        return BinnedData(lo, (hi - lo) / (size - 1), np.zeros(size), 0.0, 0.0, math.inf, -math.inf)
    fine = (ghi - glo) / (_STREAM_REFINE * (size - 1))
    if lo is not None and hi is not None and math.isfinite(hi - lo):
        full = (hi - lo) / (size - 1)
        step = full / 2.0 ** max(0, math.ceil(math.log2(full / fine)))
        first, last = math.floor((glo - lo) / step), math.ceil((ghi - lo) / step)
        if (hi - lo) / step < 2.0**40:  # node positions right to about 1e-4 of a step
            return BinnedData(
                lo + first * step,
                step,
                np.zeros(last - first + 1),
                0.0,
                0.0,
                math.inf,
                -math.inf,
            )
    nodes = _STREAM_REFINE * (size - 1) + 1
    return BinnedData(glo, fine, np.zeros(nodes), 0.0, 0.0, math.inf, -math.inf)


def _to_transformed(
    x: FloatArray, w: FloatArray | None, bounds: BoundsLike, transform: Transform, method: str
) -> FloatArray:
    lo, hi = bounds
    on_bound = np.zeros(x.shape, dtype=bool)
    if lo is not None:
        on_bound |= x <= lo
    if hi is not None:
        on_bound |= x >= hi
    if w is not None:
        on_bound &= w > 0
    if on_bound.any() and not transform.keeps_bound:
        raise ValueError(
            f"method={method!r} needs x strictly inside bounds=({lo}, {hi}); got "
            f"{int(on_bound.sum())} value(s) on a bound (use another method, or move the bounds)"
        )
    y = transform.forward(x, bounds)
    if w is not None:
        y = np.where(w > 0, y, np.nan)
        fill = float(np.nanmedian(y))
        y = np.where(w > 0, y, fill)  # zero-weight points contribute nothing anyway
    if not np.isfinite(y).all():
        raise ValueError(
            f"method={method!r} maps some x to infinity under {transform.name!r}; the data "
            "are too close to a bound for floating point"
        )
    if float(np.max(y) - np.min(y)) <= 0.0:
        raise ValueError(
            f"method={method!r}: under {transform.name!r} the data collapse to one value in "
            f"floating point, because bounds=({lo}, {hi}) lie too far from them; use "
            "method='linear-mbc' (or 'auto'), or nearer bounds"
        )
    return np.asarray(y, dtype=float)


def _bandwidth_value(
    bandwidth: Any,
    counts: FloatArray,
    glo: float,
    ghi: float,
    n_eff: float,
    method: str,
    kernel: Kernel,
    raw: tuple[FloatArray, FloatArray | None] | None,
) -> float:
    if isinstance(bandwidth, str):
        if method == "transform-mbc":
            # On the transformed scale: the smoothed-bootstrap MISE minimiser of the JLN
            # estimator, piloted by the named rule on the MBC scale (concepts.md,
            # "Bandwidth for transform-mbc"). "bootstrap-mbc" is that with the ISJ pilot.
            pilot = None
            if bandwidth != "bootstrap-mbc":
                pilot = BANDWIDTHS[bandwidth](counts, glo, ghi, n_eff) * mbc_scale(n_eff)
            h = bootstrap_mbc_bandwidth(counts, glo, ghi, n_eff, pilot)
            return float(h * kernel_scale(kernel))
        h = BANDWIDTHS[bandwidth](counts, glo, ghi, n_eff) * kernel_scale(kernel)
        if method == "linear-mbc":  # the JLN bias-corrected method: higher-order bias
            h *= mbc_scale(n_eff)
        return float(h)
    if callable(bandwidth):
        assert raw is not None
        value = bandwidth(raw[0], raw[1])
        try:
            h = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"bandwidth callable must return a positive float; got {value!r}"
            ) from exc
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"bandwidth callable must return a positive float; got {value!r}")
        return h
    return float(bandwidth)


def _test_subsample(x: FloatArray, w: FloatArray | None) -> tuple[FloatArray, FloatArray | None]:
    """The data (and weights) as ``auto``'s tests see them: all of it up to
    ``POLE_TEST_MAX_N`` observations, an evenly strided subsample of that size beyond."""
    if x.size <= POLE_TEST_MAX_N:
        return x, w
    stride = -(-x.size // POLE_TEST_MAX_N)
    return x[::stride], None if w is None else w[::stride]


def _pole_tests(
    x: FloatArray, w: FloatArray | None, bounds: BoundsLike
) -> tuple[PoleTest | None, PoleTest | None]:
    """Hill pole test at each finite bound on the ``ceil(n^(2/3)) + 1`` nearest points.

    Above ``POLE_TEST_MAX_N`` observations the test runs on an evenly strided
    subsample of that size, so it never adds a pass over big data.
    """
    x, w = _test_subsample(x, w)
    n = x.size if w is None else int(np.count_nonzero(w))
    k = pole_test_size(n)
    if k < 5:
        return (None, None)
    out: list[PoleTest | None] = []
    span = float(np.max(x) - np.min(x))
    for side, bound in enumerate(bounds):
        if bound is None:
            out.append(None)
            continue
        dist = _nearest_distances(x, w, float(bound), upper=side == 1, k=k)
        if dist is None:
            out.append(None)
            continue
        d, wd = dist
        if d[0] <= 0.0:
            # Observations exactly on the bound: an atom, not a pole; no log transform.
            logger.info("pole test skipped: data lie exactly on bound %s", bound)
            out.append(None)
            continue
        if d[0] > _FAR_BOUND * span:
            # Across the data, log(x - bound) is then linear to within (1/2) 1e-12 of the
            # range: no pole or zero can show, and a transform would change nothing.
            logger.info(
                "pole test skipped: bound %s lies over %g data ranges away", bound, _FAR_BOUND
            )
            out.append(None)
            continue
        out.append(hill_pole_test(d, wd, level=POLE_TEST_LEVEL))
    return out[0], out[1]


def auto_method(
    x: FloatArray,
    w: FloatArray | None,
    bounds: BoundsLike,
    transform: Callable[[], Transform],
    bandwidth: Any = "isj",
    kernel: Kernel = KERNELS["gaussian"],
    grid_size: int = DEFAULT_GRID_SIZE,
) -> tuple[str, tuple[PoleTest | None, PoleTest | None], ScaleCheck | None]:
    """What ``method="auto"`` resolves to for 1-D data (also each axis of ``fit_nd``).

    The Hill tests at the finite bounds and :func:`boundedkde.boundary.select_method`;
    when that picks ``"transform-mbc"`` for zeros alone (no pole), :func:`_scale_check`
    may keep ``"linear-mbc"``. ``transform`` builds the transform the fit would use (it
    is only called for the check). Returns the method, the pole tests and the check
    (``None`` where it did not run).
    """
    lo, hi = bounds
    bounded = (lo is not None, hi is not None)
    if not any(bounded):
        return "none", (None, None), None
    tests = _pole_tests(x, w, bounds)
    lo_t, hi_t = tests
    poles = (lo_t is not None and lo_t.pole, hi_t is not None and hi_t.pole)
    zeros = (lo_t is not None and lo_t.zero, hi_t is not None and hi_t.zero)
    method = select_method(bounded, poles, zeros)
    if method == "transform-mbc" and _on_a_bound(x, w, bounds):
        # The pole or zero is at one bound, but data lie exactly on a bound (skipped by
        # its test): the transform would send them to infinity (and refuses them).
        logger.info("auto: data lie exactly on a bound, which the transform cannot take")
        return "linear-mbc", tests, None
    if method != "transform-mbc" or any(poles):
        return method, tests, None
    check = _scale_check(x, w, bounds, transform(), bandwidth, kernel, grid_size)
    return ("linear-mbc" if check.keep_data_scale else method), tests, check


def _difficulty(counts: FloatArray, lo: float, hi: float, n_eff: float) -> float:
    """Scale-free difficulty ``σ⁵ R(f'')``, with ``R(f'')`` from the ISJ bandwidth.

    ISJ's Gaussian-kernel bandwidth solves ``h⁵ = R(K) / (n R(f''))`` with
    ``R(K) = 1 / (2√π)``, so ``R(f'') = 1 / (2√π n h⁵)``.
    """
    h = isj(counts, lo, hi, n_eff)
    sigma = _std(counts, lo, hi, n_eff)
    return float((sigma / h) ** 5 / (2.0 * math.sqrt(math.pi) * n_eff))


def _scale_check(
    x: FloatArray,
    w: FloatArray | None,
    bounds: BoundsLike,
    transform: Transform,
    bandwidth: Any,
    kernel: Kernel,
    grid_size: int,
) -> ScaleCheck:
    """Decide between ``transform-mbc`` and ``linear-mbc`` for a density that vanishes at
    every finite bound (:class:`boundedkde.boundary.ScaleCheck`).

    The bounds are out of reach when an unbounded estimate at the ``linear-mbc``
    bandwidth would put less than one observation's weight (``1 / n_eff``) of kernel
    mass beyond them: the boundary correction then changes the estimate by less than
    one observation could, and only the shape argument for a transform remains. With
    one finite bound (the log transform) the shape argument decides even when the bound
    is within reach (concepts.md, "When the transform does not pay").

    Above ``POLE_TEST_MAX_N`` observations the check runs on the pole test's evenly
    strided subsample of that size (its ``n_eff``, bandwidth and threshold are the
    subsample's), so it never adds a pass over big data.
    """
    x, w = _test_subsample(x, w)
    n_eff = kish_neff(w, x.size)
    lo, hi = bounds
    xmin, xmax = float(x.min()), float(x.max())
    glo, ghi = _binning_range(xmin, xmax, _near_bounds(bounds, xmin, xmax))
    counts = linear_binning(x, w, glo, ghi, grid_size)
    h = _bandwidth_value(bandwidth, counts, glo, ghi, n_eff, "linear-mbc", kernel, (x, w))
    total = float(x.size) if w is None else float(np.sum(w))
    leaked = 0.0
    for bound, upper in ((lo, False), (hi, True)):
        if bound is None:
            continue
        near = (x > bound - kernel.cutoff * h) if upper else (x < bound + kernel.cutoff * h)
        dist = np.abs(x[near] - bound) / h
        tail = kernel.cdf(-dist)
        leaked += float(np.sum(tail if w is None else tail * w[near])) / total
    threshold = 1.0 / n_eff
    data_difficulty = _difficulty(counts, glo, ghi, n_eff)
    y = _to_transformed(x, w, bounds, transform, "transform-mbc")
    tlo, thi = _binning_range(float(np.min(y)), float(np.max(y)), (None, None))
    t_difficulty = _difficulty(linear_binning(y, w, tlo, thi, grid_size), tlo, thi, n_eff)
    return ScaleCheck(
        leaked_mass=leaked,
        threshold=threshold,
        difficulty_data=data_difficulty,
        difficulty_transformed=t_difficulty,
        keep_data_scale=data_difficulty <= t_difficulty
        and (leaked < threshold or (lo is None) != (hi is None)),
    )


def _nearest_distances(
    x: FloatArray, w: FloatArray | None, bound: float, *, upper: bool, k: int
) -> tuple[FloatArray, FloatArray | None] | None:
    """The ``k + 1`` smallest distances to ``bound`` (and their weights), sorted.

    Uses a quantile of a small strided subsample to pick a threshold, so that only one
    comparison pass touches all the data, then sorts the few selected points.
    """
    n = x.size
    stride = max(1, n // 20000)
    probe = np.abs(x[::stride] - bound)
    frac = min(1.0, 4.0 * (k + 1) / n)
    thr = float(np.quantile(probe, frac)) if frac < 1.0 else math.inf
    while True:
        sel = (x >= bound - thr) if upper else (x <= bound + thr)
        if w is not None:
            sel &= w > 0
        if int(np.count_nonzero(sel)) >= k + 1 or not math.isfinite(thr):
            break
        thr = 2.0 * thr if thr > 0 else math.inf
    d = np.abs(x[sel] - bound)
    ws = None if w is None else w[sel]
    if d.size < k + 1:
        return None
    if d.size > k + 1:
        near = np.argpartition(d, k)[: k + 1]
        d = d[near]
        ws = None if ws is None else ws[near]
    order = np.argsort(d, kind="stable")
    return d[order], (None if ws is None else ws[order])


def bounded_kde(x: ArrayLike, bounds: BoundsLike = (None, None), **kwargs: Any) -> BoundedKDE:
    """Fit a :class:`BoundedKDE` in one call.

    Parameters
    ----------
    x : array_like, shape (n,)
        Observations.
    bounds : tuple, default (None, None)
        ``(lower, upper)`` with None for an open side.
    **kwargs
        ``weights`` for :meth:`BoundedKDE.fit`; everything else goes to
        :class:`BoundedKDE` (``method``, ``bandwidth``, ``kernel``, ``grid_size``,
        ``transform``).

    Returns
    -------
    BoundedKDE
        The fitted estimate.

    Examples
    --------
    >>> import numpy as np
    >>> kde = bounded_kde(np.random.default_rng(0).exponential(size=1000), bounds=(0, None))
    >>> float(kde.pdf(-1.0))
    0.0
    """
    weights = kwargs.pop("weights", None)
    return BoundedKDE(bounds=bounds, **kwargs).fit(x, weights)
