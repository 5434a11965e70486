"""A scikit-learn estimator: ``KernelDensity`` with ``bounds`` (the ``boundedkde[sklearn]`` extra).

It follows :class:`sklearn.neighbors.KernelDensity` (``fit``, ``score_samples``,
``score``, ``sample``) and the proposal of scikit-learn issue 27023 for bounds: an array
of shape ``(n_features, 2)`` with ``-inf``/``inf`` (or ``None``) for an open side. A
float ``bandwidth`` is the kernel's standard deviation, as in scikit-learn for the
Gaussian kernel, so ``GridSearchCV(KernelDensity(bounds=...), {"bandwidth": [...]})``
picks it by held-out log-likelihood (:meth:`score`).

Outside the bounds ``score_samples`` is ``-inf``, like scikit-learn's estimate where the
density is 0. The work is done by :class:`boundedkde.BoundedKDE`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from boundedkde.estimator import BoundedKDE

try:
    from sklearn.base import BaseEstimator
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "boundedkde.KernelDensity needs scikit-learn: pip install 'boundedkde[sklearn]'"
    ) from err

__all__ = ["KernelDensity"]

FloatArray = NDArray[np.float64]


def _bounds_pairs(bounds: Any, d: int) -> list[tuple[float | None, float | None]]:
    if bounds is None:
        return [(None, None)] * d
    arr = np.asarray(bounds, dtype=object)
    if arr.shape == (2,) and d == 1:
        arr = arr.reshape(1, 2)
    if arr.shape != (d, 2):
        raise ValueError(
            f"bounds of KernelDensity must have shape (n_features, 2) = ({d}, 2), with "
            f"-inf/inf or None for an open side; got shape {arr.shape}"
        )
    out = []
    for lo, hi in arr:
        lo_f = None if lo is None or float(lo) == -np.inf else float(lo)
        hi_f = None if hi is None or float(hi) == np.inf else float(hi)
        out.append((lo_f, hi_f))
    return out


class KernelDensity(BaseEstimator):
    """Bounded kernel density estimation with scikit-learn's interface.

    Parameters
    ----------
    bandwidth : float or {"isj", "scott", "silverman"}, default "isj"
        Kernel standard deviation in data units (per axis scale of the whitened
        covariance for 2-D and 3-D; see :func:`boundedkde.multivariate.fit_nd`) or a
        rule.
    bounds : array_like of shape (n_features, 2), optional
        Lower and upper bound per feature; ``-inf``/``inf`` or ``None`` for an open
        side. ``None`` (default) means unbounded on every axis.
    method : str, default "auto"
        Boundary method of :class:`boundedkde.BoundedKDE`.
    kernel : str, default "gaussian"
        A key of :data:`boundedkde.KERNELS` (1-D; 2-D and 3-D use the Gaussian).
    grid_size : int, optional
        Grid nodes (per axis); ``None`` for the estimator's default.

    Attributes
    ----------
    kde_ : BoundedKDE
        The fitted estimator.
    n_features_in_ : int
        Number of features seen in ``fit``.
    bandwidth_ : float or ndarray
        The bandwidth used.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).exponential(size=(500, 1))
    >>> kd = KernelDensity(bounds=[[0, np.inf]]).fit(X)
    >>> bool(np.isneginf(kd.score_samples([[-1.0]]))[0])
    True
    """

    def __init__(
        self,
        *,
        bandwidth: float | str = "isj",
        bounds: ArrayLike | None = None,
        method: str = "auto",
        kernel: str = "gaussian",
        grid_size: int | None = None,
    ) -> None:
        self.bandwidth = bandwidth
        self.bounds = bounds
        self.method = method
        self.kernel = kernel
        self.grid_size = grid_size

    def fit(self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None) -> Any:
        """Fit the estimate to ``X`` of shape (n_samples, n_features).

        1 to 3 features take the bounded grid path; more features are fitted unbounded by
        exact direct summation (bounds are then refused).

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative weights.

        Returns
        -------
        KernelDensity
            ``self``.
        """
        Xa: FloatArray = np.asarray(validate_data(self, X, dtype=np.float64, ensure_min_samples=2))
        d = Xa.shape[1]
        bounds = _bounds_pairs(self.bounds, d)
        if d > 3:
            self.kde_ = self._fit_direct(Xa, bounds, sample_weight)
            self.bandwidth_ = self.kde_.covariance
            return self
        kde = BoundedKDE(
            bounds=bounds[0] if d == 1 else bounds,  # type: ignore[arg-type]
            method=self.method,
            bandwidth=self.bandwidth,
            kernel=self.kernel,
            grid_size=self.grid_size,
        )
        kde.fit(Xa[:, 0] if d == 1 else Xa, weights=sample_weight)
        tail = self._tail_model(kde, Xa, sample_weight)
        self.kde_, self._tail, self.bandwidth_ = kde, tail, kde.bandwidth_
        return self

    def _fit_direct(
        self, X: FloatArray, bounds: list[tuple[float | None, float | None]], sample_weight: Any
    ) -> Any:
        """More than 3 features: exact direct summation, unbounded only (no grid)."""
        if any(b != (None, None) for b in bounds):
            raise ValueError(
                f"bounds of KernelDensity are supported for 1 to 3 features (the grid path); "
                f"got n_features={X.shape[1]} with bounds. Drop the bounds or reduce the features"
            )
        from boundedkde.scipy_compat import gaussian_kde

        bw = self.bandwidth
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (X.shape[0],) or np.any(w < 0) or not np.sum(w) > 0:
                raise ValueError(
                    "sample_weight of KernelDensity must be non-negative and not all zero "
                    f"(one weight per sample); got shape {w.shape}"
                )
        # Named rules use scipy's whitened covariance (ISJ is 1-D: Scott's rule stands in).
        rule = {"isj": "scott"}.get(bw, bw) if isinstance(bw, str) else None
        kde = gaussian_kde(X.T, bw_method=rule, weights=sample_weight, mode="exact")
        if rule is None:
            h = float(bw)
            if not h > 0:
                raise ValueError(f"bandwidth of KernelDensity must be > 0; got {bw!r}")
            kde._use_covariance(h * h * np.eye(X.shape[1]))
        return kde

    def _tail_model(self, kde: BoundedKDE, X: FloatArray, sample_weight: Any) -> Any:
        """Direct Gaussian sum for points beyond the grid (held-out points far from the data).

        The grid estimate is exactly 0 beyond the kernel's reach of every observation,
        whose log is -inf; a held-out point there would make a cross-validated score
        infinite. Far from the data the boundary corrections do not act on open sides,
        so the plain Gaussian sum with the fitted kernel covariance gives the tail (for a
        1-D transform fit, on the transformed scale times the Jacobian).
        """
        if kde.kernel != "gaussian":
            return None
        from boundedkde.scipy_compat import gaussian_kde

        transform = getattr(kde, "_transform", None)
        if transform is not None and X.shape[1] == 1:
            # A transform fit (explicit, or auto's pole, zero or heavy-tail picks): the
            # same Gaussian sum on the transformed scale, with the Jacobian. Zero-weight
            # rows may lie anywhere (on a bound: infinite there) and carry nothing.
            x, sw = X[:, 0], sample_weight
            if sw is not None:
                sw = np.asarray(sw, dtype=np.float64)
                x, sw = x[sw > 0], sw[sw > 0]
            y = transform.forward(x, kde.bounds_)
            tail_y = gaussian_kde(y[None, :], weights=sw, mode="exact")
            tail_y._use_covariance(np.array([[float(kde.bandwidth_) ** 2]]))
            return _TransformedTail(tail_y, transform, kde.bounds_)
        if getattr(kde, "transform_", None) is not None:
            return None
        if any(isinstance(m, str) and m.startswith("transform") for m in np.ravel(kde.method_)):
            return None

        tail = gaussian_kde(X.T, weights=sample_weight, mode="exact")
        # 1-D bandwidth_ is the kernel sd; 2-D/3-D bandwidth_ is the kernel covariance H.
        bw = np.asarray(kde.bandwidth_, dtype=np.float64)
        tail._use_covariance(bw * bw if bw.ndim == 0 else bw)
        return tail

    def _check_X(self, X: ArrayLike) -> FloatArray:
        check_is_fitted(self, "kde_")
        out: FloatArray = validate_data(self, X, dtype=np.float64, reset=False)
        return out

    def score_samples(self, X: ArrayLike) -> FloatArray:
        """Log density at each row of ``X``; ``-inf`` outside the bounds."""
        Xa = self._check_X(X)
        if Xa.shape[1] > 3:
            return np.asarray(self.kde_.logpdf(Xa.T), dtype=np.float64)
        pts = Xa[:, 0] if Xa.shape[1] == 1 else Xa
        with np.errstate(divide="ignore"):
            out = np.asarray(self.kde_.logpdf(pts), dtype=np.float64)
        if self._tail is not None:
            beyond = np.isneginf(out) & (np.asarray(self.kde_.pdf(pts)) == 0)
            beyond &= self._inside(Xa)
            if beyond.any():
                out[beyond] = self._tail.logpdf(Xa[beyond].T)
        return out

    def _inside(self, Xa: FloatArray) -> NDArray[np.bool_]:
        ok = np.ones(Xa.shape[0], dtype=bool)
        for axis, (lo, hi) in enumerate(_bounds_pairs(self.bounds, Xa.shape[1])):
            if lo is not None:
                ok &= Xa[:, axis] >= lo
            if hi is not None:
                ok &= Xa[:, axis] <= hi
        return ok

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Total log-likelihood of ``X`` (the GridSearchCV criterion)."""
        return float(np.sum(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state: Any = None) -> FloatArray:
        """Draw ``n_samples`` rows from the bounded estimate, shape (n_samples, n_features)."""
        check_is_fitted(self, "kde_")
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral):
            raise TypeError(
                f"n_samples of KernelDensity.sample must be an integer; got {n_samples!r}"
            )
        if n_samples < 0:
            raise ValueError(f"n_samples of KernelDensity.sample must be >= 0; got {n_samples}")
        rng = random_state
        if rng is not None and not isinstance(rng, np.random.Generator | int):
            rng = np.random.default_rng(np.random.RandomState(rng).randint(2**31 - 1))
        if self.n_features_in_ > 3:
            return np.asarray(self.kde_.resample(int(n_samples), seed=rng).T, dtype=np.float64)
        draws = np.asarray(self.kde_.sample(int(n_samples), random_state=rng), dtype=np.float64)
        return draws.reshape(int(n_samples), self.n_features_in_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class _TransformedTail:
    """``logpdf`` of a Gaussian sum made on a transformed scale, on the data scale."""

    def __init__(self, tail_y: Any, transform: Any, bounds: Any) -> None:
        self.tail_y = tail_y
        self.transform = transform
        self.bounds = bounds

    def logpdf(self, pts: ArrayLike) -> FloatArray:
        x = np.asarray(pts, dtype=np.float64).ravel()
        out = np.full(x.shape, -np.inf)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = self.transform.forward(x, self.bounds)
            ok = np.isfinite(y)  # a bound that the transform sends to infinity: density 0
            if ok.any():
                out[ok] = self.tail_y.logpdf(y[ok][None, :]) + self.transform.log_jacobian(
                    x[ok], self.bounds
                )
        out[~np.isfinite(out)] = -np.inf
        return out
