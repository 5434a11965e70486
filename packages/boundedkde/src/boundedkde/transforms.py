"""Transformations from a bounded domain to the whole real line, with Jacobians.

If :math:`Y = T(X)` with :math:`T` increasing and differentiable, the densities are
related by :math:`f_X(x) = f_Y(T(x))\\,T'(x)`: an estimate made on the unbounded
:math:`Y` scale is mapped back by multiplying with the Jacobian :math:`T'(x)`.
``TRANSFORMS`` holds:

* ``log`` for a single finite bound: :math:`T(x) = \\log(x - a)` (lower bound) or
  :math:`T(x) = -\\log(b - x)` (upper bound, kept increasing);
* ``logit`` for two bounds: :math:`T(x) = \\log((x - a)/(b - x))`;
* ``probit`` for two bounds: :math:`T(x) = \\Phi^{-1}((x - a)/(b - a))`.

Every function is vectorised and maps the open domain onto the real line; the bounds
themselves map to :math:`\\mp\\infty`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

__all__ = ["TRANSFORMS", "Transform", "default_transform"]

FloatArray = NDArray[np.float64]
Bounds = tuple[float | None, float | None]


@dataclass(frozen=True)
class Transform:
    """A monotone increasing map from a bounded domain onto the real line.

    Parameters
    ----------
    name : str
        Registry name.
    needs : str
        Which finite bounds it requires: ``"one"`` (exactly one) or ``"two"``.
    forward : callable
        ``forward(x, bounds) -> y``.
    inverse : callable
        ``inverse(y, bounds) -> x``.
    log_jacobian : callable
        ``log_jacobian(x, bounds) = log T'(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> t = TRANSFORMS["logit"]
    >>> round(float(t.inverse(t.forward(np.array(0.25), (0.0, 1.0)), (0.0, 1.0))), 12)
    0.25
    """

    name: str
    needs: str
    forward: Callable[[FloatArray, Bounds], FloatArray]
    inverse: Callable[[FloatArray, Bounds], FloatArray]
    log_jacobian: Callable[[FloatArray, Bounds], FloatArray]


def _a(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=float)


def _log_forward(x: FloatArray, bounds: Bounds) -> FloatArray:
    lo, hi = bounds
    if lo is not None:
        return np.log(_a(x) - lo)
    assert hi is not None  # guaranteed by the caller (needs == "one")
    return -np.log(hi - _a(x))


def _log_inverse(y: FloatArray, bounds: Bounds) -> FloatArray:
    lo, hi = bounds
    if lo is not None:
        return lo + np.exp(_a(y))
    assert hi is not None
    return hi - np.exp(-_a(y))


def _log_logjac(x: FloatArray, bounds: Bounds) -> FloatArray:
    lo, hi = bounds
    if lo is not None:
        return -np.log(_a(x) - lo)
    assert hi is not None
    return -np.log(hi - _a(x))


def _two(bounds: Bounds) -> tuple[float, float]:
    lo, hi = bounds
    assert lo is not None
    assert hi is not None
    return float(lo), float(hi)


def _logit_forward(x: FloatArray, bounds: Bounds) -> FloatArray:
    lo, hi = _two(bounds)
    xa = _a(x)
    return np.log(xa - lo) - np.log(hi - xa)


def _logit_inverse(y: FloatArray, bounds: Bounds) -> FloatArray:
    lo, hi = _two(bounds)
    return lo + (hi - lo) * special.expit(_a(y))


def _logit_logjac(x: FloatArray, bounds: Bounds) -> FloatArray:
    # d/dx log((x-a)/(b-x)) = (b-a) / ((x-a)(b-x))
    lo, hi = _two(bounds)
    xa = _a(x)
    return np.log(hi - lo) - np.log(xa - lo) - np.log(hi - xa)


def _probit_forward(x: FloatArray, bounds: Bounds) -> FloatArray:
    lo, hi = _two(bounds)
    return np.asarray(special.ndtri((_a(x) - lo) / (hi - lo)), dtype=float)


def _probit_inverse(y: FloatArray, bounds: Bounds) -> FloatArray:
    lo, hi = _two(bounds)
    return lo + (hi - lo) * np.asarray(special.ndtr(_a(y)), dtype=float)


def _probit_logjac(x: FloatArray, bounds: Bounds) -> FloatArray:
    # d/dx Phi^{-1}(u) = 1 / ((b-a) phi(Phi^{-1}(u)))
    lo, hi = _two(bounds)
    y = _probit_forward(x, bounds)
    return 0.5 * y * y + 0.5 * np.log(2.0 * np.pi) - np.log(hi - lo)


#: Registry of transforms by name.
TRANSFORMS: dict[str, Transform] = {
    "log": Transform("log", "one", _log_forward, _log_inverse, _log_logjac),
    "logit": Transform("logit", "two", _logit_forward, _logit_inverse, _logit_logjac),
    "probit": Transform("probit", "two", _probit_forward, _probit_inverse, _probit_logjac),
}


def default_transform(bounds: Bounds) -> str:
    """The transform used when none is named: ``log`` for one finite bound, else ``probit``.

    For two bounds the probit map is the default, after Geenens (2014), *Probit
    transformation for kernel density estimation on the unit interval*, JASA 109(505),
    346-358. A Beta-like density :math:`x^{\\alpha-1}(1-x)^{\\beta-1}` becomes, on the
    probit scale, a density with Gaussian-like tails (:math:`\\propto |y|^{c}
    e^{-\\alpha y^2/2}` as :math:`y \\to -\\infty`), which a fixed-bandwidth kernel
    estimate follows well; on the logit scale the same density has exponential tails
    (:math:`\\propto e^{\\alpha y}`), whose far reaches a global bandwidth under-smooths
    and the Jacobian magnifies next to the bound. Measured with ``"transform-mbc"``
    (20 replications, n = 500 and 5000, 13 densities on [0, 1]: Beta(2,5), Beta(3,3),
    Beta(2,2), Beta(1/2,1/2), Beta(0.7,2), Beta(1,3), Beta(8,2), Beta(1.5,1.5), a
    two-Beta mixture, a truncated normal, the uniform, the triangle and the pole
    :math:`1/(2\\sqrt x)`), probit's MISE was below logit's on every density at both
    sizes, 0.35-0.93 times it (geometric mean 0.63 and 0.65); see the boundedkde
    concepts page, "Transformation".

    Parameters
    ----------
    bounds : tuple
        ``(lower, upper)`` with ``None`` for an open side; at least one finite.

    Returns
    -------
    str
        A key of ``TRANSFORMS``.

    Examples
    --------
    >>> default_transform((0.0, None))
    'log'
    >>> default_transform((0.0, 1.0))
    'probit'
    """
    lo, hi = bounds
    return "probit" if (lo is not None and hi is not None) else "log"
