"""Bandwidth rules on binned data.

Every rule takes the linearly binned weights on an equidistant grid and returns the
bandwidth as the *standard deviation of the kernel in data units* (kernels are scaled
to unit variance, see :mod:`boundedkde.kernels`). Working on the binned counts keeps
bandwidth selection independent of the number of observations: the estimator passes
over the raw data once to bin it and never again for the bandwidth.

Weighted data use Kish's effective sample size
:math:`n_{\\mathrm{eff}} = (\\sum w)^2 / \\sum w^2` wherever a rule needs ``n``
(Kish 1965, *Survey Sampling*, sec. 11.7). This treats weights as importance weights;
for frequency weights (counts of repeated values) it understates ``n``.

``BANDWIDTHS`` is the registry of named rules. All rules here are derived for the
Gaussian kernel; :func:`kernel_scale` carries them to another unit-variance kernel.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft, optimize

from boundedkde import _plugin
from boundedkde.binning import grid_nodes, linear_binning
from boundedkde.kernels import KERNELS, Kernel

__all__ = [
    "BANDWIDTHS",
    "BandwidthRule",
    "bootstrap_mbc",
    "bootstrap_mbc_bandwidth",
    "isj",
    "kernel_scale",
    "kish_neff",
    "mbc_scale",
    "scott",
    "silverman",
]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: ``rule(counts, lo, hi, n_eff) -> bandwidth``: binned weights on
#: ``grid_nodes(lo, hi, len(counts))`` and the effective sample size.
BandwidthRule = Callable[[FloatArray, float, float, float], float]


def kish_neff(weights: ArrayLike | None, n: int) -> float:
    """Kish's effective sample size :math:`(\\sum w)^2 / \\sum w^2`.

    Parameters
    ----------
    weights : array_like or None
        Non-negative weights; ``None`` means ``n`` unit weights.
    n : int
        Number of observations, used when ``weights`` is None.

    Returns
    -------
    float
        ``n`` for unit weights; between 1 and the number of non-zero weights otherwise.

    Examples
    --------
    >>> kish_neff([1.0, 1.0, 2.0], 3)
    2.6666666666666665
    """
    if weights is None:
        return float(n)
    w = np.asarray(weights, dtype=float)
    top = float(np.max(w)) if w.size else 0.0
    if top > 0.0:
        w = w / top  # scale-free: keeps sum(w**2) from overflowing or underflowing
    s1 = float(w.sum())
    return s1 * s1 / float(np.dot(w, w))


def _binned_moments(counts: FloatArray, lo: float, hi: float) -> tuple[float, float]:
    nodes = grid_nodes(lo, hi, counts.size)
    total = float(counts.sum())
    mean = float(np.dot(counts, nodes)) / total
    var = float(np.dot(counts, (nodes - mean) ** 2)) / total
    return mean, var


def _binned_iqr(counts: FloatArray, lo: float, hi: float) -> float:
    """Interquartile range of linearly binned weights.

    A node's weight is spread half below and half above it, so the distribution
    function at node ``i`` is the weight of the nodes before it plus half its own (the
    trapezoid rule), and the quantiles interpolate linearly between nodes. The
    convention is symmetric: mirrored data have the same IQR, also when most of the
    weight sits on one end node (a heavy tail on a coarse grid).
    """
    nodes = grid_nodes(lo, hi, counts.size)
    cum = np.cumsum(counts) - 0.5 * counts
    cum /= float(np.sum(counts))
    q25, q75 = np.interp([0.25, 0.75], cum, nodes)
    return float(q75 - q25)


def _std(counts: FloatArray, lo: float, hi: float, n_eff: float) -> float:
    _, var = _binned_moments(counts, lo, hi)
    if n_eff > 1.0:
        var *= n_eff / (n_eff - 1.0)  # the usual unbiased variance, weights via n_eff
    return math.sqrt(max(var, 0.0))


def silverman(counts: FloatArray, lo: float, hi: float, n_eff: float) -> float:
    """Silverman's rule of thumb, :math:`0.9\\,\\min(\\hat\\sigma, \\mathrm{IQR}/1.349)\\,n^{-1/5}`.

    Silverman (1986), *Density Estimation for Statistics and Data Analysis*, eq. (3.31).
    1.349 is the interquartile range of the standard normal.

    Parameters
    ----------
    counts : numpy.ndarray
        Binned weights on ``grid_nodes(lo, hi, len(counts))``.
    lo, hi : float
        Grid ends.
    n_eff : float
        Effective sample size.

    Returns
    -------
    float
        Bandwidth (kernel standard deviation) in data units.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.binning import linear_binning
    >>> x = np.random.default_rng(0).normal(size=1000)
    >>> c = linear_binning(x, None, x.min(), x.max(), 512)
    >>> 0.2 < silverman(c, x.min(), x.max(), 1000.0) < 0.3
    True
    """
    sigma = _std(counts, lo, hi, n_eff)
    iqr = _binned_iqr(counts, lo, hi) / 1.349
    spread = min(sigma, iqr) if iqr > 0 else sigma
    return 0.9 * spread * n_eff ** (-0.2)


def scott(counts: FloatArray, lo: float, hi: float, n_eff: float) -> float:
    """Normal-reference rule :math:`(4/3)^{1/5}\\,\\hat\\sigma\\,n^{-1/5}`.

    That is :math:`1.059\\,\\hat\\sigma\\,n^{-1/5}`.

    The AMISE-optimal Gaussian-kernel bandwidth when the data are normal (Scott 1992,
    *Multivariate Density Estimation*, eq. 6.17). Note that scipy's ``bw_method="scott"``
    is the factor :math:`n^{-1/5}` alone, without the 1.059.

    Parameters
    ----------
    counts : numpy.ndarray
        Binned weights on ``grid_nodes(lo, hi, len(counts))``.
    lo, hi : float
        Grid ends.
    n_eff : float
        Effective sample size.

    Returns
    -------
    float
        Bandwidth in data units.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.binning import linear_binning
    >>> x = np.random.default_rng(0).normal(size=1000)
    >>> c = linear_binning(x, None, x.min(), x.max(), 512)
    >>> 0.2 < scott(c, x.min(), x.max(), 1000.0) < 0.3
    True
    """
    return (4.0 / 3.0) ** 0.2 * _std(counts, lo, hi, n_eff) * n_eff ** (-0.2)


_ISJ_ELL = 7  # stages of the plug-in recursion (Botev et al. 2010, sec. 5: l = 7)


def _damped_sum(weights: FloatArray, ksq: FloatArray, rate: float) -> float:
    """``sum(weights * exp(-rate * ksq))`` over the modes where the exponential is not
    below e^-700: the rest add less than 1e-300 of the sum and would only cost time
    (subnormal arithmetic)."""
    if rate > 0.0:
        used = min(ksq.size, math.isqrt(int(700.0 / rate)) + 1) if rate > 1e-300 else ksq.size
        return float((weights[:used] * np.exp(-rate * ksq[:used])).sum())
    return float(weights.sum())


def _isj_functional(
    t: float, n_eff: float, ksq: FloatArray, weighted: dict[int, FloatArray]
) -> float:
    """Botev et al. (2010) fixed-point map :math:`t - \\xi\\gamma^{[l]}(t)` with ``l = 7``.

    ``weighted[s]`` holds :math:`k^{2s} a_k^2/4` (precomputed once per data set).
    """
    ell = _ISJ_ELL
    pi2 = math.pi**2
    f = 2.0 * math.pi ** (2 * ell) * _damped_sum(weighted[ell], ksq, pi2 * t)
    for s in range(ell - 1, 1, -1):
        if not f > 0.0:
            return -math.inf
        # K0 = (2s-1)!! / sqrt(2 pi); const = (1 + 2^-(s+1/2)) / 3   (Botev et al. 2010, eq. 29)
        k0 = float(np.prod(np.arange(1, 2 * s, 2, dtype=float))) / math.sqrt(2.0 * math.pi)
        const = (1.0 + 0.5 ** (s + 0.5)) / 3.0
        time = (2.0 * const * k0 / n_eff / f) ** (2.0 / (3.0 + 2.0 * s))
        f = 2.0 * math.pi ** (2 * s) * _damped_sum(weighted[s], ksq, pi2 * time)
    if not f > 0.0:
        return -math.inf
    return t - (2.0 * n_eff * math.sqrt(math.pi) * f) ** (-0.4)


#: Largest ISJ time in units of the squared domain width: h = domain width. There the
#: first cosine mode of the reflecting domain is damped by exp(-pi^2/2) < 0.01, so a
#: larger bandwidth would change the estimate by less than 1%.
_ISJ_T_MAX = 1.0


def _normal_reference_t(c: FloatArray, m: int, n_eff: float) -> float:
    """Silverman's normal-reference ``t = (h / width)**2`` from the binned weights ``c``
    (summing to 1 on ``m`` nodes over a unit width): a starting point for the ISJ root."""
    u = np.linspace(0.0, 1.0, m)
    mean = float(c @ u)
    var = float(c @ (u - mean) ** 2)
    return (1.06 * math.sqrt(max(var, 0.0)) * n_eff ** (-0.2)) ** 2


def _narrow_bracket(
    g: Callable[[float], float], lo: float, hi: float, guess: float
) -> tuple[float, float]:
    """A sub-bracket of ``[lo, hi]`` (where ``g(lo) < 0 < g(hi)``) around ``guess``.

    Walks from ``guess`` by factors of 4 in the direction of the sign change; the result
    still brackets a root of ``g`` inside ``[lo, hi]``, so Brent's method needs about half
    the evaluations it needs from the paper's bracket ``(0, 0.1]`` (where the root is
    usually several decades below the upper end). Any failure returns ``(lo, hi)``.
    """
    if not (math.isfinite(guess) and lo < guess < hi):
        return lo, hi
    t = guess
    gt = g(t)
    if not math.isfinite(gt):
        return lo, hi
    for _ in range(12):
        if gt > 0.0:
            nxt = t / 4.0
            if nxt <= lo:
                return lo, t
            gn = g(nxt)
            if not math.isfinite(gn):
                return lo, t
            if gn < 0.0:
                return nxt, t
        else:
            nxt = t * 4.0
            if nxt >= hi:
                return t, hi
            gn = g(nxt)
            if not math.isfinite(gn):
                return t, hi
            if gn > 0.0:
                return t, nxt
        t, gt = nxt, gn
    return lo, hi


def _fixed_point(g: Callable[[float], float], upper: float, guess: float) -> float | None:
    """Root of ``g(t) = t - xi gamma(t)`` by secant steps from ``guess``.

    The map ``xi gamma`` varies slowly with ``t`` (``g`` has slope close to 1), so from
    the normal-reference guess one fixed-point step and a few secant steps reach
    ``rtol = 1e-10``, where Brent's method on the paper's bracket ``(0, 0.1]`` needs
    15-20 evaluations (each a cosine-series sum over the grid). Returns None (the caller
    then uses Brent's method) unless the iterates converge inside ``(0, upper)`` within
    12 evaluations.
    """
    if not (math.isfinite(guess) and 0.0 < guess < upper):
        return None
    t0 = guess
    g0 = g(t0)
    if not math.isfinite(g0):
        return None
    # First step: one fixed-point iteration t <- xi gamma(t) = t - g(t).
    t1 = t0 - g0
    if not 0.0 < t1 < upper:
        t1 = t0 / 4.0 if g0 > 0 else min(4.0 * t0, 0.5 * (t0 + upper))
    for _ in range(11):
        g1 = g(t1)
        if not math.isfinite(g1):
            return None
        if g1 == 0.0:
            return t1
        if g1 == g0:
            return None
        t2 = t1 - g1 * (t1 - t0) / (g1 - g0)
        if not math.isfinite(t2):
            return None
        # Keep the iterate inside (0, upper): at most a factor 4 towards either end.
        t2 = min(max(t2, t1 / 4.0), 0.5 * (t1 + upper))
        t0, g0, t1 = t1, g1, t2
        if abs(t1 - t0) <= 1e-10 * t1:
            return t1
    return None


def isj(counts: FloatArray, lo: float, hi: float, n_eff: float) -> float:
    """Improved Sheather-Jones bandwidth on a reflecting domain (Botev et al. 2010).

    The binned density on ``[lo, hi]`` is expanded in the cosine basis
    :math:`\\cos(k\\pi(x-lo)/(hi-lo))`, which is the eigenbasis of the heat equation
    with *reflecting* (Neumann) ends. The plug-in fixed point
    :math:`t = \\xi\\gamma^{[7]}(t)` of Botev, Grotowski and Kroese (2010), *Kernel
    density estimation via diffusion*, Ann. Statist. 38(5), 2916-2957, eqs. (29)-(30),
    is solved with Brent's method on ``t`` in ``(0, 0.1]`` (the paper's bracket), widened
    to ``(0, 1]`` when there is no root there; the bandwidth is
    :math:`\\sqrt{t}\\,(hi - lo)`. If the fixed-point map stays above ``t`` on all of
    ``(0, 1]`` (data without curvature at the scale of the domain, e.g. uniform data on
    a bounded interval), the optimum lies beyond the admissible range and ``t = 1``
    (``h = hi - lo``) is used. If the map is degenerate the rule falls back to
    :func:`silverman` and logs a warning.

    The estimator places a finite bound exactly at a grid end, so the reflecting basis
    is the correct model there; open sides are padded (by 10% of the data range, the
    padding of Botev's reference implementation) so that the reflection there is
    harmless.

    Parameters
    ----------
    counts : numpy.ndarray
        Binned weights on ``grid_nodes(lo, hi, len(counts))`` (any positive total).
    lo, hi : float
        Grid ends.
    n_eff : float
        Effective sample size (Kish).

    Returns
    -------
    float
        Gaussian-kernel bandwidth in data units.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.binning import linear_binning
    >>> x = np.random.default_rng(0).normal(size=5000)
    >>> c = linear_binning(x, None, -6.0, 6.0, 4096)
    >>> 0.1 < isj(c, -6.0, 6.0, 5000.0) < 0.3
    True
    """
    c = np.asarray(counts, dtype=float)
    c = c / c.sum()
    m = c.size
    # dct type 1: y_k = c_0 + (-1)^k c_{m-1} + 2 sum_{j=1}^{m-2} c_j cos(pi k j / (m-1))
    y = fft.dct(c, type=1)
    k = np.arange(m, dtype=float)
    sign = np.where(np.arange(m) % 2 == 0, 1.0, -1.0)
    b = y + c[0] + sign * c[-1]  # b_k = 2 sum_j c_j cos(pi k j/(m-1)), the cosine coefficients
    ksq = k[1:] ** 2
    a2 = (b[1:] / 2.0) ** 2
    width = hi - lo

    weighted = {s: ksq**s * a2 for s in range(2, _ISJ_ELL + 1)}

    def g(t: float) -> float:
        return _isj_functional(t, n_eff, ksq, weighted)

    t_star: float | None = None
    g_lo = g(0.0)
    if math.isfinite(g_lo) and g_lo < 0.0:
        for upper in (0.1, _ISJ_T_MAX):
            if g(upper) > 0.0:
                t_star = _fixed_point(g, upper, _normal_reference_t(c, m, n_eff))
                if t_star is None:
                    t_star = float(optimize.brentq(g, 0.0, upper, xtol=1e-14, rtol=1e-10))
                break
        else:
            # The plug-in optimum exceeds every admissible t: the data show no curvature
            # at the scale of the domain, so take the largest admissible bandwidth.
            logger.info("ISJ: fixed point beyond t=%g (flat data); h = domain width", _ISJ_T_MAX)
            t_star = _ISJ_T_MAX
    if t_star is None or t_star <= 0.0:
        fallback = silverman(c, lo, hi, n_eff)
        logger.warning(
            "ISJ bandwidth: no root of the fixed-point equation (n_eff=%.3g); "
            "falling back to Silverman's rule, h=%.4g",
            n_eff,
            fallback,
        )
        return fallback
    return math.sqrt(t_star) * width


#: Smoothed-bootstrap steps. One: the pilot is the estimate at the ISJ bandwidth, chosen
#: independently of the criterion (a two-stage plug-in). Replacing the pilot by the
#: minimiser (Faraway and Jhun 1990) feeds a smoother pilot back into the bias estimate
#: and drifts to larger bandwidths; in our trials it overshot the oracle minimiser.
_BOOT_ITER = 1
#: Bandwidths scanned, log-spaced from a quarter of the starting value to the domain width.
_BOOT_SCAN = 17
#: The working grid has at least this many nodes per smallest scanned bandwidth; a
#: Gaussian sampled that finely is convolved to near machine precision.
_BOOT_NODES_PER_H = 4.0
_BOOT_MIN_NODES = 257


def bootstrap_mbc_bandwidth(
    counts: FloatArray, lo: float, hi: float, n_eff: float, pilot: float | None = None
) -> float:
    """Smoothed-bootstrap MISE-optimal bandwidth of the ``linear-mbc`` estimator itself.

    The bandwidth minimises a plug-in estimate of the exact MISE of the estimator that
    is used by default (local-linear boundary kernel, Jones 1993 / Jones and Foster
    1996, with the multiplicative bias correction of Jones, Linton and Nielsen 1995)
    on the bounded domain ``[lo, hi]``:

    .. math::

        \\widehat{\\mathrm{MISE}}(h) = \\int_{lo}^{hi} (T_h[\\hat g] - \\hat g)^2
        - \\frac{1}{2\\pi n}\\int(\\phi^*(ht) - 1)^2\\phi^*(pt)^2\\,dt
        + V(h),

    where :math:`T_h[\\hat g]` is the estimator applied to the pilot density
    :math:`\\hat g` (the estimate at pilot bandwidth ``p``) as if it were the
    population: the first term is the estimator's squared bias *including its boundary
    bias*, computed rather than expanded; the second removes the pilot's own sampling
    noise from it (the diagonal-term correction of smoothed cross-validation, Hall,
    Marron and Park 1992, for the equivalent kernel :math:`K^* = 2K - K*K`,
    :math:`\\phi^*(s) = 2e^{-s^2/2} - e^{-s^2}`); the third is the integrated
    variance of the estimator linearised in the data, with its boundary kernels
    (:func:`boundedkde._plugin.domain_variance`; asymptotically the JLN
    :math:`R(2K - K*K)/(nh)`). This is the smoothed bootstrap of Taylor (1989),
    *Bootstrap choice of the smoothing parameter in kernel density estimation*,
    Biometrika 76, 705-712, and Faraway and Jhun (1990), JASA 85, 1119-1122, applied to
    the bias-corrected boundary estimator. The pilot is the estimate at the default
    bandwidth, :func:`isj` times :func:`mbc_scale` (a two-stage plug-in: the pilot
    bandwidth is chosen independently of the criterion). Both
    grid ends are treated as bounds, as :func:`isj` does; an open side is padded by the
    estimator, where the pilot density is nearly 0 and the boundary correction has
    nothing to correct.

    Parameters
    ----------
    counts : numpy.ndarray
        Binned weights on ``grid_nodes(lo, hi, len(counts))``.
    lo, hi : float
        Grid ends (finite bounds sit exactly on them).
    n_eff : float
        Effective sample size (Kish).
    pilot : float or None, default None
        Gaussian-kernel bandwidth of the pilot estimate, on the MBC scale; ``None``
        means :func:`isj` times :func:`mbc_scale` (the estimator's default bandwidth).
        Capped at ``hi - lo``.

    Returns
    -------
    float
        The Gaussian-kernel bandwidth for ``linear-mbc`` in data units, at most
        ``hi - lo``.

    Raises
    ------
    ValueError
        If ``counts`` is not 1-D with at least 3 nodes, negative or non-finite entries
        and a positive total, if ``lo < hi`` fails, or if ``n_eff`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.binning import linear_binning
    >>> x = np.random.default_rng(0).uniform(size=2000)
    >>> c = linear_binning(x, None, 0.0, 1.0, 4096)
    >>> bootstrap_mbc_bandwidth(c, 0.0, 1.0, 2000.0) > 0.5   # flat: as smooth as allowed
    True
    """
    c = np.asarray(counts, dtype=float)
    if c.ndim != 1 or c.size < 3:
        raise ValueError(
            f"counts must be a 1-D array of at least 3 grid weights; got shape {c.shape}"
        )
    if not (np.isfinite(c).all() and (c >= 0).all() and c.sum() > 0):
        raise ValueError("counts must be finite, non-negative and not all zero")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"grid ends must satisfy lo < hi (finite); got ({lo}, {hi})")
    if not (math.isfinite(n_eff) and n_eff > 0):
        raise ValueError(f"n_eff must be a positive number; got {n_eff}")
    if pilot is not None and not (math.isfinite(pilot) and pilot > 0):
        raise ValueError(f"pilot must be a positive bandwidth or None; got {pilot}")
    c = c / c.sum()
    width = hi - lo
    # Pilot: the estimator at the default bandwidth, ISJ times the normal-reference MBC
    # ratio. (A smaller pilot, plain ISJ, has less bias but more noise; in the 20-rep
    # study of concepts.md it was worse on 10 of 13 densities at n = 5000.)
    if pilot is None:
        pilot = isj(c, lo, hi, n_eff) * mbc_scale(n_eff)
    h = min(pilot, width)
    h_min = h / 4.0
    m_work = int(
        min(c.size, max(_BOOT_MIN_NODES, math.ceil(_BOOT_NODES_PER_H * width / h_min) + 1))
    )
    if m_work < c.size:
        # Linear binning of the fine nodes keeps mass and mean exactly.
        c = linear_binning(grid_nodes(lo, hi, c.size), c, lo, hi, m_work)
    dx = width / (c.size - 1)
    scan = np.linspace(math.log(h_min), math.log(width), _BOOT_SCAN)
    for _ in range(_BOOT_ITER):
        pilot = h
        g = _plugin.estimate(c, dx, pilot)
        gc = _plugin.density_counts(g.copy(), dx)

        def mise(
            log_h: float, g: FloatArray = g, gc: FloatArray = gc, pilot: float = pilot
        ) -> float:
            return _plugin.bootstrap_mise(math.exp(log_h), gc, g, dx, pilot, n_eff)

        values = np.array([mise(v) for v in scan])
        i = int(np.argmin(values))
        if i == scan.size - 1:
            h = width  # no bias worth a narrower kernel (flat data): the largest h
            continue
        left, right = scan[max(i - 1, 0)], scan[i + 1]
        res = optimize.minimize_scalar(
            mise, bounds=(left, right), method="bounded", options={"xatol": 1e-3}
        )
        h = math.exp(float(res.x))
    return h


def bootstrap_mbc(counts: FloatArray, lo: float, hi: float, n_eff: float) -> float:
    """:func:`bootstrap_mbc_bandwidth` on the registry's second-order scale.

    Registry rules return second-order bandwidths, which the estimator multiplies by
    :func:`mbc_scale` for the bias-corrected methods; this rule returns
    ``bootstrap_mbc_bandwidth / mbc_scale(n_eff)``, so ``"linear-mbc"`` and
    ``"transform-mbc"`` get the bootstrap bandwidth exactly and the second-order
    methods its normal-reference conversion.

    Parameters
    ----------
    counts : numpy.ndarray
        Binned weights on ``grid_nodes(lo, hi, len(counts))``.
    lo, hi : float
        Grid ends.
    n_eff : float
        Effective sample size (Kish).

    Returns
    -------
    float
        Bandwidth in data units (second-order scale).

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.binning import linear_binning
    >>> x = np.random.default_rng(0).exponential(size=1000)
    >>> c = linear_binning(x, None, 0.0, x.max(), 4096)
    >>> 0.05 < bootstrap_mbc(c, 0.0, float(x.max()), 1000.0) < 1.0
    True
    """
    return bootstrap_mbc_bandwidth(counts, lo, hi, n_eff) / mbc_scale(n_eff)


#: Registry of bandwidth rules by name (Gaussian-kernel bandwidths in data units).
BANDWIDTHS: dict[str, BandwidthRule] = {
    "bootstrap-mbc": bootstrap_mbc,
    "isj": isj,
    "scott": scott,
    "silverman": silverman,
}


def kernel_scale(kernel: Kernel) -> float:
    """Factor carrying a Gaussian-kernel bandwidth to ``kernel``: :math:`(R(K)/R(\\phi))^{1/5}`.

    For unit-variance kernels the AMISE-optimal bandwidth is proportional to
    :math:`R(K)^{1/5}` with everything else equal (Wand and Jones 1995, eq. 2.13;
    Marron and Nolan 1988, canonical kernels).

    Parameters
    ----------
    kernel : Kernel
        Target kernel.

    Returns
    -------
    float
        1 for the Gaussian, about 0.990 for the Epanechnikov kernel.

    Examples
    --------
    >>> round(kernel_scale(KERNELS["gaussian"]), 12)
    1.0
    """
    return float((kernel.roughness / KERNELS["gaussian"].roughness) ** 0.2)


def mbc_scale(n_eff: float) -> float:
    """Ratio of the MBC-optimal to the second-order-optimal bandwidth, normal reference.

    The multiplicative bias correction of Jones, Linton and Nielsen (1995),
    *A simple bias reduction method for density estimation*, Biometrika 82(2), 327-338,
    has bias :math:`-\\tfrac14 h^4 f (f''/f)''` and variance :math:`f\\,R(2K - K*K)/(nh)`.
    For a normal density with standard deviation :math:`\\sigma` and the Gaussian kernel,
    :math:`\\int (f (f''/f)'')^2 = 2/(\\sigma^9\\sqrt{\\pi})` and
    :math:`R(2K - K*K) = 4R(K) - 4\\phi_{\\sqrt3}(0) + R(\\phi_{\\sqrt2})`, so the
    AMISE-optimal bandwidth is
    :math:`h_{\\mathrm{MBC}} = (\\sqrt{\\pi}\\,R(2K-K*K))^{1/9}\\,\\sigma\\,n^{-1/9}`,
    against :math:`h_2 = (4/3)^{1/5}\\,\\sigma\\,n^{-1/5}` for the plain estimator. This
    function returns :math:`h_{\\mathrm{MBC}}/h_2 \\approx 0.910\\,n^{4/45}`; the
    estimator multiplies its (data-driven) second-order bandwidth by it. GetDist makes
    the same order adjustment with a unit prefactor (Lewis 2019, arXiv:1910.13970).

    Parameters
    ----------
    n_eff : float
        Effective sample size.

    Returns
    -------
    float
        The scale factor (1.58 at ``n = 500``, 1.94 at ``n = 5000``).

    Examples
    --------
    >>> round(mbc_scale(500.0), 2)
    1.58
    """
    sqrt_pi = math.sqrt(math.pi)
    r_k = 1.0 / (2.0 * sqrt_pi)  # R(phi)
    k_conv_k = 1.0 / math.sqrt(6.0 * math.pi)  # int phi * (phi*phi) = N(0, 3) density at 0
    r_kk = 1.0 / (2.0 * math.sqrt(2.0 * math.pi))  # R(N(0, 2))
    r_twiced = 4.0 * r_k - 4.0 * k_conv_k + r_kk
    c_mbc = (sqrt_pi * r_twiced) ** (1.0 / 9.0)
    c_2 = (4.0 / 3.0) ** 0.2
    return c_mbc / c_2 * n_eff ** (0.2 - 1.0 / 9.0)
