"""Plots of fitted bounded densities (the ``boundedkde[plot]`` extra, matplotlib).

Each function draws on the Axes it is given (or a new one) and returns the Axes, so plots
compose with the rest of a user's figure. Nothing is shown or saved here.

- :func:`plot_density`: 1-D curve with optional histogram and rug; 2-D filled contours at
  highest-density-region (HDR) levels.
- :func:`plot_corner`: a small corner plot for 2-D and 3-D fits: 1-D marginals on the
  diagonal, 2-D HDR contours below it.

HDR levels follow Hyndman (1996), "Computing and graphing highest density regions",
The American Statistician 50(2): the contour at level ``c`` encloses the region
``{f >= c}`` holding mass ``p``; the default masses 0.68 and 0.95 are the one- and
two-sigma masses of a normal distribution, the convention of corner plots.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_corner", "plot_density"]

DEFAULT_LEVELS = (0.68, 0.95)


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "boundedkde plotting needs matplotlib: pip install 'boundedkde[plot]'"
        ) from err
    return plt


def _is_ndfit(kde: Any) -> bool:
    from boundedkde.multivariate import NDFit

    return isinstance(kde, NDFit)


def _dim(kde: Any, func: str) -> int:
    """Dimension of a fitted BoundedKDE or NDFit; a clear error for anything else."""
    if _is_ndfit(kde):
        return int(kde.d)
    from boundedkde.estimator import BoundedKDE

    if not isinstance(kde, BoundedKDE):
        raise TypeError(
            f"kde of {func} must be a fitted BoundedKDE or the NDFit returned by fit_nd; "
            f"got {type(kde).__name__}"
        )
    if not hasattr(kde, "bounds_"):
        raise ValueError(
            f"kde of {func} must be a fitted BoundedKDE; call fit(x) first "
            "(got an unfitted BoundedKDE)"
        )
    return int(getattr(kde, "d_", 1))


def _axis_bounds(kde: Any) -> Any:
    """Per-axis bounds of a 2-D or 3-D fit (``bounds_`` of BoundedKDE, ``bounds`` of NDFit)."""
    return kde.bounds if _is_ndfit(kde) else kde.bounds_


def _marginal(kde: Any, axes: list[int]) -> Any:
    """The marginal fit on ``axes`` of a BoundedKDE or NDFit (a 1-D BoundedKDE for one axis)."""
    if not _is_ndfit(kde):
        return kde.marginal(axes)
    if len(axes) >= 2:
        return kde.marginal(axes)
    from boundedkde.estimator import marginal_1d

    return marginal_1d(kde, axes[0], kde.kernel)


def _check_points(points: Any, func: str) -> int:
    if isinstance(points, bool) or not isinstance(points, numbers.Integral) or points < 2:
        raise ValueError(
            f"points of {func} must be an integer of at least 2 (grid points); got {points!r}"
        )
    return int(points)


def _check_levels(levels: Sequence[float], func: str) -> tuple[float, ...]:
    try:
        out = tuple(float(p) for p in levels)
    except (TypeError, ValueError):
        out = ()
    if not out or not all(0.0 < p < 1.0 for p in out):
        raise ValueError(
            f"levels of {func} must be masses in (0, 1), e.g. (0.68, 0.95); got {levels!r}"
        )
    return tuple(sorted(out))


def _check_data(
    data: ArrayLike | None, weights: ArrayLike | None, d: int, func: str
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if data is None:
        if weights is not None:
            raise ValueError(f"weights of {func} need data; got weights without data")
        return None, None
    x = np.asarray(data, dtype=np.float64)
    x = x.ravel() if d == 1 else x
    if d > 1 and (x.ndim != 2 or x.shape[1] != d):
        raise ValueError(
            f"data of {func} must have shape (n, {d}) for a {d}-D fit; got shape {x.shape}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"data of {func} must hold at least one observation; got none")
    if not np.isfinite(x).all():
        raise ValueError(f"data of {func} must be finite; drop the NaN or infinite values")
    if weights is None:
        return x, None
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape[0] != x.shape[0]:
        raise ValueError(
            f"weights of {func} must have one value per observation of data "
            f"({x.shape[0]}); got {w.shape[0]}"
        )
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError(f"weights of {func} must be finite and non-negative")
    return x, w


def plot_density(
    kde: Any,
    ax: Axes | None = None,
    *,
    data: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    hist: bool = True,
    rug: bool = False,
    points: int = 512,
    levels: Sequence[float] = DEFAULT_LEVELS,
    label: str | None = "bounded KDE",
    color: str | None = None,
) -> Axes:
    """Draw a fitted density: a curve in 1-D, HDR contours in 2-D.

    Parameters
    ----------
    kde : BoundedKDE or NDFit
        A fitted estimator (1-D or 2-D), or the 2-D :class:`~boundedkde.multivariate.NDFit`
        returned by :func:`~boundedkde.multivariate.fit_nd`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's Axes when omitted.
    data, weights : array_like, optional
        The observations (and weights) for the histogram and rug (1-D) or the scatter
        of points (2-D, only when ``rug`` is true).
    hist : bool, default True
        1-D: draw a density-normalised histogram of ``data`` behind the curve.
    rug : bool, default False
        1-D: tick marks at the observations; 2-D: a light scatter of them.
    points : int, default 512
        Grid points for the 1-D curve, at least 2 (2-D contours use the fitted grid).
    levels : sequence of float, default (0.68, 0.95)
        2-D: masses in (0, 1) enclosed by the contours (highest-density regions, Hyndman
        1996). Checked in 1-D too, where no contours are drawn.
    label, color : optional
        Matplotlib label and colour of the curve / contours.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on.

    Raises
    ------
    TypeError
        When ``kde`` is neither a BoundedKDE nor an NDFit.
    ValueError
        For an unfitted estimator, a 3-D fit (use :func:`plot_corner`), ``points`` below
        2, levels outside (0, 1), or data / weights of the wrong shape or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde import BoundedKDE
    >>> x = np.random.default_rng(0).exponential(size=500)
    >>> ax = plot_density(BoundedKDE(bounds=(0, None)).fit(x), data=x)
    >>> bool(ax.get_xlim()[0] <= 0.0)
    True
    """
    d = _dim(kde, "plot_density")
    if d > 2:
        raise ValueError(f"plot_density draws 1-D and 2-D fits; got a {d}-D fit (use plot_corner)")
    n_points = _check_points(points, "plot_density")
    masses = _check_levels(levels, "plot_density")
    x, w = _check_data(data, weights, d, "plot_density")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4) if d == 1 else (5, 5))
    assert ax is not None  # for mypy: plt.subplots always returns an Axes
    if d == 1:
        _plot_1d(kde, ax, x, w, hist, rug, n_points, label, color)
    else:
        _plot_2d(kde, ax, x, rug, masses, color)
    return ax


def _plot_1d(
    kde: Any,
    ax: Axes,
    data: ArrayLike | None,
    weights: ArrayLike | None,
    hist: bool,
    rug: bool,
    points: int,
    label: str | None,
    color: str | None,
) -> None:
    xs, dens = kde.grid(points)
    x = None if data is None else np.asarray(data, dtype=np.float64).ravel()
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if hist and x is not None:
        lo, hi = kde.bounds_
        rng = (lo if lo is not None else float(x.min()), hi if hi is not None else float(x.max()))
        # numpy's "auto" bin rule refuses weights: take the edges from the unweighted data.
        edges = np.histogram_bin_edges(x, bins="auto", range=rng).tolist()
        ax.hist(x, bins=edges, weights=w, density=True, alpha=0.3, color="0.5", label="histogram")
    ax.plot(xs, dens, color=color, lw=2, label=label)
    if rug and x is not None:
        ax.plot(x, np.zeros_like(x), "|", color="k", alpha=0.3, ms=8, label="_rug")
    for b in kde.bounds_:
        if b is not None:
            ax.axvline(b, color="0.3", ls=":", lw=1)
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel("density")


def _plot_2d(
    kde: Any,
    ax: Axes,
    data: ArrayLike | None,
    scatter: bool,
    masses: tuple[float, ...],
    color: str | None,
) -> None:
    axes, dens = kde.grid()
    lv = np.asarray(kde.hdr_levels(masses), dtype=np.float64)
    # contourf wants increasing levels: the 95% contour has the lower density level.
    order = np.argsort(lv)
    lv_sorted = np.append(lv[order], max(float(dens.max()), float(lv.max())) * 1.0001)
    if scatter and data is not None:
        pts = np.asarray(data, dtype=np.float64)
        ax.plot(pts[:, 0], pts[:, 1], ".", ms=1, color="0.6", alpha=0.3)
    cmap = "Blues" if color is None else None
    ax.contourf(
        axes[0],
        axes[1],
        dens.T,
        levels=lv_sorted,
        cmap=cmap,
        colors=None if color is None else [color],
        alpha=0.6,
    )
    cs = ax.contour(axes[0], axes[1], dens.T, levels=lv[order], colors=color or "C0", linewidths=1)
    labels = {lvl: f"{m:.0%}" for lvl, m in zip(lv[order], np.asarray(masses)[order], strict=True)}
    ax.clabel(cs, fmt=labels, fontsize=7)
    bounds = _axis_bounds(kde)
    for b, setter in ((bounds[0], ax.axvline), (bounds[1], ax.axhline)):
        for v in b:
            if v is not None:
                setter(v, color="0.3", ls=":", lw=1)


def plot_corner(
    kde: Any,
    *,
    data: ArrayLike | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    names: Sequence[str] | None = None,
    points: int = 256,
) -> np.ndarray:
    """A corner plot of a 2-D or 3-D fit: marginals on the diagonal, HDR contours below.

    Parameters
    ----------
    kde : BoundedKDE or NDFit
        A fitted 2-D or 3-D estimator, or the NDFit returned by
        :func:`~boundedkde.multivariate.fit_nd`.
    data : array_like of shape (n, d), optional
        Observations drawn as histograms behind the 1-D marginals.
    levels : sequence of float, default (0.68, 0.95)
        Masses enclosed by the 2-D contours.
    names : sequence of str, optional
        Axis labels.
    points : int, default 256
        Grid points for the 1-D marginal curves, at least 2.

    Returns
    -------
    numpy.ndarray of Axes, shape (d, d)
        Upper-triangle Axes are switched off.

    Raises
    ------
    TypeError
        When ``kde`` is neither a BoundedKDE nor an NDFit.
    ValueError
        For a fit that is not 2-D or 3-D, names of the wrong length, levels outside
        (0, 1), ``points`` below 2, or data of the wrong shape or not finite.
    """
    d = _dim(kde, "plot_corner")
    if d not in (2, 3):
        raise ValueError(f"plot_corner draws 2-D and 3-D fits; got a {d}-D fit (use plot_density)")
    if names is not None and len(names) != d:
        raise ValueError(f"names of plot_corner must have {d} entries; got {len(names)}")
    masses = _check_levels(levels, "plot_corner")
    n_points = _check_points(points, "plot_corner")
    x, _ = _check_data(data, None, d, "plot_corner")
    plt = _pyplot()
    fig, grid = plt.subplots(d, d, figsize=(2.6 * d, 2.6 * d), squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = grid[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                _plot_1d(
                    _marginal(kde, [i]),
                    ax,
                    None if x is None else x[:, i],
                    None,
                    x is not None,
                    False,
                    n_points,
                    None,
                    None,
                )
            else:
                _plot_2d(_marginal(kde, [j, i]), ax, None, False, masses, None)
            if names is not None:
                if i == d - 1:
                    ax.set_xlabel(names[j])
                if j == 0 and i > 0:
                    ax.set_ylabel(names[i])
    fig.tight_layout()
    return np.asarray(grid)
