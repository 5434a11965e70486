"""Boundary corrections on a binned grid, and the rule that picks one.

Every method in ``METHODS`` is a pure function

``method(counts, spacing, bandwidth, kernel, bounded) -> density``

acting on linearly binned weights ``counts`` at equidistant nodes ``x_j = x_0 + j *
spacing``. ``bounded = (lower, upper)`` says whether node 0 (node ``M - 1``) sits
exactly on a finite bound; an open side must already be padded with empty nodes
beyond the data (by at least the kernel's cutoff radius) so that nothing leaks off
the grid. The result is the (not yet renormalised) density at the nodes, in units of
``sum(counts)`` per unit length. Convolutions are done with FFTs (``scipy.signal``).

Methods (``h`` the bandwidth, :math:`K_h(u) = K(u/h)/h`, domain :math:`[a, b]`):

``none``
    Plain kernel estimate, no correction (the unbounded KDE).
``reflect``
    Reflection (Schuster 1985; Silverman 1986, sec. 2.10): every observation also
    contributes its mirror image in each finite bound. With two bounds the images are
    repeated to all orders, so the estimate is exact for any bandwidth.
``renorm``
    Renormalisation ("cut and normalise", Jones 1993 eq. 2.2; the "weighting" of the
    seed article): :math:`\\hat f(x) / a_0(x)` with :math:`a_0(x)` the kernel mass
    inside the domain.
``linear``
    Local-linear boundary kernel (Jones 1993, *Simple boundary correction for kernel
    density estimation*, Statist. Comput. 3, 135-146, eq. 3.4),
    :math:`\\bar f_L = (a_2 S_0 - a_1 S_1)/(a_0 a_2 - a_1^2)`, made non-negative as in
    Jones and Foster (1996), *A simple nonnegative boundary correction method for kernel
    density estimation*, Statist. Sinica 6, 1005-1013:
    :math:`\\hat f = \\bar f_R \\exp(\\bar f_L/\\bar f_R - 1)` with
    :math:`\\bar f_R = S_0/a_0`. Away from the bounds it equals the plain estimate.
``linear-mbc``
    ``linear`` followed by the multiplicative bias correction of Jones, Linton and
    Nielsen (1995), Biometrika 82(2), 327-338:
    :math:`\\tilde f(x) = \\hat f(x)\\,\\frac1n\\sum_i K_h(x - X_i)/\\hat f(X_i)`, where
    the correction factor is boundary-corrected by renormalisation. It estimates the
    ratio :math:`f/\\hat f = 1 + O(h^2)`, so renormalisation (exact for constants)
    leaves it a boundary bias of only :math:`O(h \\cdot h^2)`, below the pilot's
    :math:`O(h^2)`; a local-linear smoother there would only add variance (the local
    linear boundary kernel has a larger variance than the renormalised one, Jones 1993,
    sec. 3). GetDist makes the same choice (Lewis 2019, arXiv:1910.13970).
``transform``
    The estimator bins the *transformed* data :math:`T(X)` (see
    :mod:`boundedkde.transforms`), makes a plain estimate there (no bounds) and maps
    back with the Jacobian.
``transform-mbc``
    The same with the multiplicative bias correction on the transformed scale; what
    ``auto`` uses at a pole.

Here :math:`S_l(x) = \\frac1n\\sum_i u_i^l K_h(x - X_i)` with :math:`u_i = (x - X_i)/h`
and :math:`a_l(x) = \\int_a^b u^l K_h(x - y)\\,dy`. The :math:`a_l` are computed by the
same discrete convolution as the :math:`S_l` (trapezoid weights, half at a bound node),
so the corrections are exact for binned data that are constant (``renorm``) or linear
(``linear``) near a bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal, stats

from boundedkde.kernels import Kernel

__all__ = [
    "METHODS",
    "TRANSFORM_METHODS",
    "BoundaryMethod",
    "PoleTest",
    "ScaleCheck",
    "hill_pole_test",
    "linear",
    "linear_mbc",
    "none",
    "pole_test_size",
    "reflect",
    "renorm",
    "select_method",
    "transform",
    "transform_mbc",
]

FloatArray = NDArray[np.float64]

#: ``method(counts, spacing, bandwidth, kernel, bounded) -> density at the nodes``.
BoundaryMethod = Callable[[FloatArray, float, float, Kernel, tuple[bool, bool]], FloatArray]

# exp() argument guard in the Jones-Foster form. Near a lower bound a1 < 0 and every
# u_i <= c = (x - a)/h, so the argument is at most a0*(a2 - a1*c)/(a0*a2 - a1^2) - 1
# (1.75 at a Gaussian bound, 0 in the interior): the guard only rules out overflow
# from rounding noise and never binds otherwise.
_JF_EXP_MAX = 30.0


def _half_width(kernel: Kernel, bandwidth: float, spacing: float, limit: int) -> int:
    """Kernel radius in nodes, at least 1 and at most ``limit``."""
    reach = kernel.cutoff * bandwidth / spacing
    if not math.isfinite(reach) or reach > limit:
        return max(int(limit), 1)
    return max(math.ceil(reach), 1)


def _kernel_row(
    kernel: Kernel, bandwidth: float, spacing: float, half: int, power: int
) -> FloatArray:
    """``u^power K(u) / h`` at offsets ``u = m * spacing / h``, ``m = -half .. half``."""
    u = np.arange(-half, half + 1, dtype=float) * (spacing / bandwidth)
    row = kernel.pdf(u) / bandwidth
    if power:
        row = row * u**power
    return np.asarray(row, dtype=float)


def _pad(values: FloatArray, half: int, fill: tuple[float, float]) -> FloatArray:
    out = np.empty(values.size + 2 * half, dtype=float)
    out[:half] = fill[0]
    out[half : half + values.size] = values
    out[half + values.size :] = fill[1]
    return out


def _conv(ext: FloatArray, row: FloatArray) -> FloatArray:
    """``out_i = sum_m row[m] ext[i - m]`` for the nodes covered by ``ext``'s middle."""
    return np.asarray(signal.fftconvolve(ext, row, mode="valid"), dtype=float)


def _domain_mask(m: int, half: int, bounded: tuple[bool, bool]) -> FloatArray:
    """Trapezoid weights of the domain on the padded grid (0 beyond a bound, 1/2 on it)."""
    mask = np.ones(m, dtype=float)
    if bounded[0]:
        mask[0] = 0.5
    if bounded[1]:
        mask[-1] = 0.5
    return _pad(mask, half, (0.0 if bounded[0] else 1.0, 0.0 if bounded[1] else 1.0))


def none(
    counts: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    """Plain binned kernel estimate :math:`\\sum_j c_j K_h(x_i - x_j)` (no correction).

    Parameters
    ----------
    counts : numpy.ndarray, shape (M,)
        Binned weights at the nodes.
    spacing : float
        Node spacing.
    bandwidth : float
        Kernel standard deviation (data units).
    kernel : Kernel
        Unit-variance kernel.
    bounded : tuple of bool
        Ignored (kept for the common signature).

    Returns
    -------
    numpy.ndarray, shape (M,)
        Density at the nodes (mass ``sum(counts)``), not renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.kernels import KERNELS
    >>> c = np.zeros(101); c[50] = 1.0
    >>> d = none(c, 0.1, 1.0, KERNELS["gaussian"], (False, False))
    >>> round(float(d.sum() * 0.1), 6)
    1.0
    """
    half = _half_width(kernel, bandwidth, spacing, counts.size - 1)
    return _conv(_pad(counts, half, (0.0, 0.0)), _kernel_row(kernel, bandwidth, spacing, half, 0))


def reflect(
    counts: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    """Reflection estimate: each observation plus its mirror images in the finite bounds.

    :math:`\\hat f(x) = \\sum_i [K_h(x - X_i) + K_h(x - 2a + X_i)]` for a lower bound
    ``a`` (Schuster 1985, Commun. Statist. Theory Meth. 14, 1123-1136). With two bounds
    the even periodic extension of period :math:`2(b - a)` is convolved with the
    kernel wrapped onto that period, which includes the images of all orders.

    Parameters
    ----------
    counts, spacing, bandwidth, kernel, bounded
        As in :func:`none`; ``bounded`` says which end node lies on a finite bound.

    Returns
    -------
    numpy.ndarray, shape (M,)
        Density at the nodes; its mass equals ``sum(counts)`` up to discretisation.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.kernels import KERNELS
    >>> c = np.zeros(201); c[0] = 1.0   # all mass on the lower bound
    >>> d = reflect(c, 0.05, 0.5, KERNELS["gaussian"], (True, False))
    >>> round(float(np.trapezoid(d, dx=0.05)), 3)
    1.0
    """
    m = counts.size
    if bounded[0] and bounded[1]:
        period = 2 * (m - 1)
        even = np.concatenate([counts, counts[-2:0:-1]])
        # A mass on a bound node is its own mirror image: it counts twice.
        even[0] *= 2.0
        even[m - 1] *= 2.0
        reach = kernel.cutoff * bandwidth / spacing
        if not math.isfinite(reach) or reach > 200 * period:
            # The kernel is flat over 200 periods: its wrapped version is constant.
            wrapped = np.full(period, 1.0 / (period * spacing))
        else:
            half = max(math.ceil(reach), 1)
            offsets = np.arange(-half, half + 1)
            vals = kernel.pdf(offsets.astype(float) * (spacing / bandwidth)) / bandwidth
            wrapped = np.bincount(offsets % period, weights=vals, minlength=period)
        spec = np.fft.rfft(even) * np.fft.rfft(wrapped)
        return np.asarray(np.fft.irfft(spec, period)[:m], dtype=float)
    half = _half_width(kernel, bandwidth, spacing, m - 1)
    ext = _pad(counts, half, (0.0, 0.0))
    r = min(half, m - 1)
    # Node j mirrors to node -j; a mass on the bound node is its own image (counts twice).
    if bounded[0]:
        ext[half - r : half] += counts[r:0:-1]
        ext[half] += counts[0]
    if bounded[1]:
        ext[half + m : half + m + r] += counts[m - 1 - r : m - 1][::-1]
        ext[half + m - 1] += counts[m - 1]
    return _conv(ext, _kernel_row(kernel, bandwidth, spacing, half, 0))


def renorm(
    counts: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    """Renormalisation: the plain estimate divided by the kernel mass inside the domain.

    :math:`\\hat f(x) = \\frac{1}{a_0(x)} \\sum_i K_h(x - X_i)`,
    :math:`a_0(x) = \\int_a^b K_h(x - y)\\,dy` (Jones 1993, eq. 2.2; Diggle 1985).

    Parameters
    ----------
    counts, spacing, bandwidth, kernel, bounded
        As in :func:`reflect`.

    Returns
    -------
    numpy.ndarray, shape (M,)
        Density at the nodes, not renormalised (its mass exceeds ``sum(counts)``
        slightly near a bound).

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.kernels import KERNELS
    >>> c = np.full(101, 0.01); c[0] = c[-1] = 0.005   # uniform on [0, 1]
    >>> d = renorm(c, 0.01, 0.1, KERNELS["gaussian"], (True, True))
    >>> bool(np.allclose(d, 1.0))
    True
    """
    half = _half_width(kernel, bandwidth, spacing, counts.size - 1)
    row0 = _kernel_row(kernel, bandwidth, spacing, half, 0)
    s0 = _conv(_pad(counts, half, (0.0, 0.0)), row0)
    a0 = _conv(_domain_mask(counts.size, half, bounded), row0) * spacing
    return np.asarray(s0 / a0, dtype=float)


def _jones_foster(
    values: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    half = _half_width(kernel, bandwidth, spacing, values.size - 1)
    rows = [_kernel_row(kernel, bandwidth, spacing, half, p) for p in (0, 1, 2)]
    ext = _pad(values, half, (0.0, 0.0))
    s0 = _conv(ext, rows[0])
    if not (bounded[0] or bounded[1]):
        return s0  # no bound: a0 = 1, a1 = 0 and the estimate is the plain one
    s1 = _conv(ext, rows[1])
    mask = _domain_mask(values.size, half, bounded)
    a0, a1, a2 = (_conv(mask, r) * spacing for r in rows)
    det = a0 * a2 - a1 * a1
    f_ren = s0 / a0
    ok = (det > 1e-12 * a0 * a2) & (f_ren > 0.0)
    out = np.where(f_ren > 0.0, f_ren, 0.0)
    f_lin = (a2[ok] * s0[ok] - a1[ok] * s1[ok]) / det[ok]
    out[ok] = f_ren[ok] * np.exp(np.minimum(f_lin / f_ren[ok] - 1.0, _JF_EXP_MAX))
    return out


def linear(
    counts: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    """Non-negative local-linear boundary kernel (Jones 1993; Jones and Foster 1996).

    :math:`\\hat f = \\bar f_R \\exp(\\bar f_L / \\bar f_R - 1)` with the renormalised
    estimate :math:`\\bar f_R = S_0/a_0` and Jones's linear boundary-kernel estimate
    :math:`\\bar f_L = (a_2 S_0 - a_1 S_1)/(a_0 a_2 - a_1^2)`. Both have
    :math:`O(h^2)` bias at a bound, like the plain estimate in the interior, and
    :math:`\\hat f \\ge 0`.

    Parameters
    ----------
    counts, spacing, bandwidth, kernel, bounded
        As in :func:`reflect`.

    Returns
    -------
    numpy.ndarray, shape (M,)
        Non-negative density at the nodes, not renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.kernels import KERNELS
    >>> x = np.linspace(0.0, 1.0, 101)
    >>> c = 2 * x * 0.01; c[0] /= 2; c[-1] /= 2        # triangle density 2x on [0, 1]
    >>> d = linear(c, 0.01, 0.1, KERNELS["gaussian"], (True, True))
    >>> bool(np.allclose(d[40:61], 2 * x[40:61], atol=1e-6))
    True
    """
    return _jones_foster(counts, spacing, bandwidth, kernel, bounded)


def linear_mbc(
    counts: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    """:func:`linear` with the Jones-Linton-Nielsen multiplicative bias correction.

    :math:`\\tilde f(x) = \\hat f(x)\\,\\hat\\alpha(x)` where :math:`\\hat f` is the
    :func:`linear` pilot and :math:`\\hat\\alpha` is the :func:`renorm` smoother applied
    to the weights :math:`c_j/\\hat f(x_j)` (Jones, Linton and Nielsen 1995, eq. 2.2).
    The correction factor estimates :math:`f/\\hat f = 1 + O(h^2)`; renormalisation is
    exact for constants, which leaves it an :math:`O(h^3)` boundary bias, and has a
    smaller variance than a local-linear smoother.
    The bias is :math:`O(h^4)` in the interior, so the estimator pairs this method with
    a larger bandwidth (:func:`boundedkde.bandwidth.mbc_scale`).

    Parameters
    ----------
    counts, spacing, bandwidth, kernel, bounded
        As in :func:`reflect`.

    Returns
    -------
    numpy.ndarray, shape (M,)
        Non-negative density at the nodes, not renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.kernels import KERNELS
    >>> c = np.full(101, 0.01); c[0] = c[-1] = 0.005
    >>> d = linear_mbc(c, 0.01, 0.2, KERNELS["gaussian"], (True, True))
    >>> bool(np.allclose(d, 1.0, atol=1e-6))
    True
    """
    pilot = _jones_foster(counts, spacing, bandwidth, kernel, bounded)
    ratio = np.zeros_like(counts)
    pos = pilot > 0.0
    ratio[pos] = counts[pos] / pilot[pos]
    alpha = renorm(ratio, spacing, bandwidth, kernel, bounded)
    return np.asarray(pilot * alpha, dtype=float)


def transform(
    counts: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    """Grid step of the transformation method: a plain estimate on the transformed scale.

    The estimator bins :math:`Y = T(X)`, calls this function (which is :func:`none`, as
    :math:`Y` is unbounded) and returns :math:`f_X(x) = \\hat f_Y(T(x))\\,T'(x)`
    (Wand, Marron and Ruppert 1991, JASA 86, 343-353; the seed article's
    "transformation").

    Parameters
    ----------
    counts, spacing, bandwidth, kernel, bounded
        As in :func:`none`, on the transformed scale.

    Returns
    -------
    numpy.ndarray, shape (M,)
        Density of the transformed data at the nodes.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.kernels import KERNELS
    >>> c = np.zeros(101); c[50] = 1.0
    >>> d = transform(c, 0.1, 1.0, KERNELS["gaussian"], (False, False))
    >>> round(float(d.sum() * 0.1), 3)
    1.0
    """
    return none(counts, spacing, bandwidth, kernel, (False, False))


def transform_mbc(
    counts: FloatArray,
    spacing: float,
    bandwidth: float,
    kernel: Kernel,
    bounded: tuple[bool, bool],
) -> FloatArray:
    """Grid step of ``transform-mbc``: the bias-corrected estimate on the transformed scale.

    As :func:`transform`, but the estimate of the density of :math:`Y = T(X)` is the
    Jones-Linton-Nielsen multiplicatively bias-corrected one (:func:`linear_mbc`
    without bounds, as :math:`Y` is unbounded). A pole
    :math:`f \\propto (x - a)^{-\\beta}` becomes a log-linear tail of :math:`f_Y`,
    for which the corrected estimator's leading bias term
    :math:`-\\tfrac14 h^4 f_Y (f_Y''/f_Y)''` vanishes; tail errors matter because the
    Jacobian :math:`T'(x)` magnifies them next to the bound. This is what ``"auto"``
    uses at a pole.

    Parameters
    ----------
    counts, spacing, bandwidth, kernel, bounded
        As in :func:`none`, on the transformed scale (``bounded`` is ignored).

    Returns
    -------
    numpy.ndarray, shape (M,)
        Non-negative density of the transformed data at the nodes, not renormalised.

    Examples
    --------
    >>> import numpy as np
    >>> from boundedkde.kernels import KERNELS
    >>> c = np.zeros(101); c[40] = c[60] = 0.5
    >>> d = transform_mbc(c, 0.1, 1.0, KERNELS["gaussian"], (False, False))
    >>> bool((d >= 0).all())
    True
    """
    return linear_mbc(counts, spacing, bandwidth, kernel, (False, False))


#: Boundary methods that estimate on a transformed scale.
TRANSFORM_METHODS = ("transform", "transform-mbc")

#: Registry of boundary methods by name ("auto" is resolved by :func:`select_method`).
METHODS: dict[str, BoundaryMethod] = {
    "linear": linear,
    "linear-mbc": linear_mbc,
    "none": none,
    "reflect": reflect,
    "renorm": renorm,
    "transform": transform,
    "transform-mbc": transform_mbc,
}


@dataclass(frozen=True)
class PoleTest:
    """Outcome of :func:`hill_pole_test`.

    Parameters
    ----------
    k : float
        Number (Kish effective number, for weighted data) of order statistics used.
    index : float
        Hill estimate :math:`\\hat\\alpha` of the exponent in
        :math:`F(a + d) \\propto d^{\\alpha}` near the bound (1 for a density that is
        finite and positive there, below 1 for a pole, above 1 when it vanishes).
    p_value : float
        One-sided p-value of :math:`H_0: \\alpha \\ge 1` (no pole).
    pole : bool
        ``p_value < level``.
    p_value_zero : float
        One-sided p-value of :math:`H_0: \\alpha \\le 1` (the density does not vanish at
        the bound).
    zero : bool
        ``p_value_zero < level``: the density goes to 0 at the bound.
    """

    k: float
    index: float
    p_value: float
    pole: bool
    p_value_zero: float = 1.0
    zero: bool = False


@dataclass(frozen=True)
class ScaleCheck:
    r"""Whether ``method="auto"`` keeps the data scale for a density vanishing at its bounds.

    A density that goes to 0 at every finite bound is sent to ``transform-mbc`` for two
    reasons (:func:`select_method`): the transform removes the boundary, and it may make
    the shape easier to estimate. The second is judged as Wand, Marron and Ruppert
    (1991, "Transformations in density estimation", JASA 86, 343-353) choose a
    transformation: by the scale-free difficulty :math:`\sigma^5 R(f'')` of the density
    on each scale (the constant in the AMISE of a kernel estimate at its optimal
    bandwidth). With one finite bound (the log transform, which turns a zero at the
    bound into an exponential tail and a symmetric density into a skewed one) that
    comparison decides. With two (probit) the data scale is kept only when, in
    addition, the bounds are out of the kernel's reach: the comparison ignores the cost
    of the data scale's boundary, and probit-transformed densities with data at both
    bounds were better estimated on the transformed scale in our study (Beta(3, 3)).

    Parameters
    ----------
    leaked_mass : float
        Share of the kernel mass that an unbounded estimate at the ``linear-mbc``
        bandwidth would put beyond the finite bounds.
    threshold : float
        ``1 / n_eff``: one observation's weight. Below it the bounds are out of reach.
        Above 10⁵ observations the check runs on an evenly strided subsample of 10⁵
        (as the pole test does), and these are the subsample's values.
    difficulty_data : float
        :math:`\sigma^5 R(f'')` on the data scale (ISJ's estimate of :math:`R(f'')`,
        domain reflected at the bounds).
    difficulty_transformed : float
        The same on the transformed scale.
    keep_data_scale : bool
        ``difficulty_data <= difficulty_transformed`` and, with two finite bounds,
        ``leaked_mass < threshold``: use ``linear-mbc`` on the data scale.
    """

    leaked_mass: float
    threshold: float
    difficulty_data: float
    difficulty_transformed: float
    keep_data_scale: bool


def pole_test_size(n: int) -> int:
    """Number of nearest observations the pole test uses: :math:`\\lceil n^{2/3} \\rceil`.

    For a distribution function :math:`F(a + d) = C d^{\\alpha}(1 + O(d))` (a density
    with a Taylor expansion at the bound, second-order parameter :math:`\\rho = 1`), the
    mean-squared-error optimal number of order statistics for Hill's estimator grows
    like :math:`n^{2\\rho/(2\\rho + 1)} = n^{2/3}` (Hall 1982, J. R. Statist. Soc. B 44,
    37-42; Hall and Welsh 1985, Ann. Statist. 13, 331-341).

    Parameters
    ----------
    n : int
        Number of observations.

    Returns
    -------
    int
        ``ceil(n ** (2/3))``, at most ``n - 1``.

    Examples
    --------
    >>> pole_test_size(1000)
    100
    """
    return int(min(math.ceil(round(n ** (2.0 / 3.0), 9)), max(n - 1, 1)))


def hill_pole_test(
    distances: ArrayLike, weights: ArrayLike | None = None, level: float = 0.001
) -> PoleTest:
    """Test for a pole of the density at a bound from the nearest observations.

    With :math:`d_{(1)} \\le \\dots \\le d_{(k+1)}` the ``k + 1`` smallest distances to
    the bound, Hill's (1975) estimator of the local exponent is
    :math:`1/\\hat\\alpha = \\frac1k \\sum_{i \\le k} \\log(d_{(k+1)}/d_{(i)})`.
    If :math:`F(a + d) \\propto d^{\\alpha}`, then :math:`k/\\hat\\alpha` follows a
    Gamma(k, 1/alpha) law exactly, so under :math:`\\alpha = 1` (a finite, positive
    density at the bound) the p-value is the Gamma(k, 1) survival function at
    :math:`k/\\hat\\alpha`. A pole (:math:`f \\to \\infty`, :math:`\\alpha < 1`) is
    declared when the p-value is below ``level``; by the same law, a *zero*
    (:math:`f \\to 0`, :math:`\\alpha > 1`) when the other tail, the Gamma(k, 1)
    distribution function, is below ``level``. Weighted data use weighted means and
    Kish's effective ``k``.

    Parameters
    ----------
    distances : array_like
        The ``k + 1`` smallest distances to the bound, sorted ascending, all > 0.
    weights : array_like or None
        Their weights (the last one, the threshold, is not used).
    level : float
        Significance level (default 0.001, one-sided; see ``POLE_TEST_LEVEL``).

    Returns
    -------
    PoleTest
        Hill index, p-value and decision.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.sort(np.random.default_rng(0).uniform(size=2000) ** 2)[:101]  # F = sqrt(d)
    >>> hill_pole_test(d).pole
    True
    """
    d = np.asarray(distances, dtype=float)
    logs = np.log(d[-1] / d[:-1])
    if weights is None:
        k = float(logs.size)
        mean_log = float(logs.mean())
    else:
        w = np.asarray(weights, dtype=float)[:-1]
        w = w / max(float(np.max(w)), np.finfo(float).tiny)  # scale-free; squares stay finite
        k = float(w.sum() ** 2 / np.dot(w, w))
        mean_log = float(np.dot(w, logs) / w.sum())
    index = 1.0 / mean_log if mean_log > 0 else math.inf
    p_value = float(stats.gamma.sf(k * mean_log, a=k))
    p_zero = float(stats.gamma.cdf(k * mean_log, a=k))
    return PoleTest(
        k=k,
        index=index,
        p_value=p_value,
        pole=p_value < level,
        p_value_zero=p_zero,
        zero=p_zero < level,
    )


def select_method(
    bounded: tuple[bool, bool],
    poles: tuple[bool, bool],
    zeros: tuple[bool, bool] = (False, False),
) -> str:
    """The ``auto`` rule: ``transform-mbc`` at a pole or where the density vanishes at
    every finite bound, ``linear-mbc`` otherwise.

    A transformation (log, probit) turns a pole into a smooth tail, and a density that
    goes to 0 at each finite bound into one that decays smoothly in the transformed
    coordinate, where the plain kernel has no boundary to correct (Geenens 2014,
    "Probit transformation for kernel density estimation on the unit interval", JASA
    109, 346-358, shows transformation estimators at their best in both cases). Where
    the density is positive and finite at a bound, the back-transformed kernel becomes
    very narrow there and the estimate noisy, so the linear boundary kernel is used.
    :class:`boundedkde.BoundedKDE` overrides a ``"transform-mbc"`` reached through zeros
    alone when the bounds are out of the kernel's reach (:class:`ScaleCheck`).

    Parameters
    ----------
    bounded : tuple of bool
        Which bounds are finite.
    poles : tuple of bool
        Whether :func:`hill_pole_test` found a pole at the lower / upper bound.
    zeros : tuple of bool
        Whether it found the density vanishing there (``PoleTest.zero``).

    Returns
    -------
    str
        ``"none"`` without finite bounds (a plain KDE), ``"transform-mbc"`` when a
        finite bound shows a pole or every finite bound a zero, else ``"linear-mbc"``,
        the general method with the smallest asymptotic bias both inside and at the
        bounds.

    Examples
    --------
    >>> select_method((True, False), (False, False))
    'linear-mbc'
    """
    if not (bounded[0] or bounded[1]):
        return "none"
    if (bounded[0] and poles[0]) or (bounded[1] and poles[1]):
        return "transform-mbc"
    if all(zeros[i] for i in range(2) if bounded[i]):
        return "transform-mbc"
    return "linear-mbc"
