"""Smoothing kernels, all scaled to unit variance.

A kernel here is a symmetric probability density :math:`K` with
:math:`\\int K = 1`, :math:`\\int u K(u)\\,du = 0` and :math:`\\int u^2 K(u)\\,du = 1`,
so that the bandwidth ``h`` of an estimate is the standard deviation of the
scaled kernel :math:`K_h(u) = K(u/h)/h` in data units (the convention of
``docs/boundedkde/concepts.md``). The compact kernels are the symmetric beta
family :math:`c\\,(1 - t^2)^p` on :math:`|t| \\le 1` (Epanechnikov ``p=1``,
biweight ``p=2``, triweight ``p=3``; Silverman 1986, Table 3.1), rescaled to unit
variance: the variance of :math:`(1-t^2)^p` on ``[-1, 1]`` is :math:`1/(2p+3)`, so
the unit-variance support radius is :math:`\\sqrt{2p+3}`.

``KERNELS`` is the single registry of kernel names used by the estimator, the
documentation and error messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import Polynomial
from numpy.typing import ArrayLike, NDArray
from scipy import special

__all__ = ["KERNELS", "Kernel"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Kernel:
    """A symmetric unit-variance kernel.

    Parameters
    ----------
    name : str
        Registry name.
    pdf : callable
        ``pdf(u)``, the kernel density at standardised offsets ``u`` (vectorised).
    cdf : callable
        ``cdf(u)``, its integral from :math:`-\\infty` to ``u``.
    support : float
        Support radius in units of the bandwidth: ``K(u) = 0`` for ``|u| > support``;
        ``math.inf`` for the Gaussian.
    roughness : float
        :math:`R(K) = \\int K(u)^2\\,du`, which sets the AMISE-optimal bandwidth
        :math:`h \\propto R(K)^{1/5}` of a unit-variance kernel (Wand and Jones 1995,
        eq. 2.13); used to carry Gaussian-kernel bandwidth rules over to other kernels.
    cutoff : float
        Radius beyond which the estimator treats the kernel as zero when it builds its
        discrete convolution weights: the support for compact kernels, and for the
        Gaussian 8 standard deviations (tail mass :math:`2\\Phi(-8) \\approx 1.2\\times
        10^{-15}`, below float64 resolution of a unit mass).

    Examples
    --------
    >>> from boundedkde.kernels import KERNELS
    >>> k = KERNELS["epanechnikov"]
    >>> round(float(k.cdf(k.support)), 12)
    1.0
    """

    name: str
    pdf: Callable[[FloatArray], FloatArray]
    cdf: Callable[[FloatArray], FloatArray]
    support: float
    roughness: float
    cutoff: float


_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _gaussian_pdf(u: ArrayLike) -> FloatArray:
    a = np.asarray(u, dtype=float)
    return np.exp(-0.5 * a * a) / _SQRT_2PI


def _gaussian_cdf(u: ArrayLike) -> FloatArray:
    return np.asarray(special.ndtr(np.asarray(u, dtype=float)), dtype=float)


def _beta_family(name: str, power: int) -> Kernel:
    """Unit-variance kernel proportional to ``(1 - (u/s)^2)^power`` on ``|u| <= s``."""
    radius = math.sqrt(2.0 * power + 3.0)
    poly = Polynomial([1.0, 0.0, -1.0]) ** power
    anti = poly.integ()
    mass = float(anti(1.0) - anti(-1.0))
    lower = float(anti(-1.0))

    def pdf(u: ArrayLike) -> FloatArray:
        t = np.asarray(u, dtype=float) / radius
        inside = np.abs(t) <= 1.0
        vals = np.where(inside, poly(np.clip(t, -1.0, 1.0)), 0.0)
        return np.asarray(vals / (mass * radius), dtype=float)

    def cdf(u: ArrayLike) -> FloatArray:
        t = np.clip(np.asarray(u, dtype=float) / radius, -1.0, 1.0)
        return np.asarray((anti(t) - lower) / mass, dtype=float)

    square = (poly * poly).integ()
    roughness = float(square(1.0) - square(-1.0)) / (mass * mass * radius)
    return Kernel(
        name=name, pdf=pdf, cdf=cdf, support=radius, roughness=roughness, cutoff=radius
    )


#: Registry of kernels by name; every kernel has unit mass and unit variance.
KERNELS: dict[str, Kernel] = {
    "gaussian": Kernel(
        name="gaussian",
        pdf=_gaussian_pdf,
        cdf=_gaussian_cdf,
        support=math.inf,
        roughness=1.0 / (2.0 * math.sqrt(math.pi)),
        cutoff=8.0,
    ),
    "epanechnikov": _beta_family("epanechnikov", 1),
    "biweight": _beta_family("biweight", 2),
    "triweight": _beta_family("triweight", 3),
}
