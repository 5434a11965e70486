"""boundedkde: kernel density estimation that respects the support of the data.

>>> import numpy as np
>>> from boundedkde import bounded_kde
>>> kde = bounded_kde(np.random.default_rng(0).exponential(size=1000), bounds=(0, None))
>>> float(kde.pdf(-0.5))
0.0

Optional parts load on first use: ``KernelDensity`` (``boundedkde[sklearn]``),
``plot_density`` and ``plot_corner`` (``boundedkde[plot]``).
"""

from __future__ import annotations

import importlib
from typing import Any

from boundedkde.bandwidth import BANDWIDTHS
from boundedkde.binning import linear_binning
from boundedkde.boundary import METHODS
from boundedkde.estimator import BoundedKDE, bounded_kde
from boundedkde.kernels import KERNELS, Kernel
from boundedkde.multivariate import NDFit, fit_nd
from boundedkde.scipy_compat import gaussian_kde
from boundedkde.transforms import TRANSFORMS

__all__ = [  # plain sorted(), which tests/test_public_api.py checks
    "BANDWIDTHS",
    "BoundedKDE",
    "KERNELS",
    "Kernel",
    "KernelDensity",
    "METHODS",
    "NDFit",
    "TRANSFORMS",
    "__version__",
    "bounded_kde",
    "fit_nd",
    "gaussian_kde",
    "linear_binning",
    "plot_corner",
    "plot_density",
]

__version__ = "0.1.0"

# Names whose modules need an optional extra: imported on first access (PEP 562).
_LAZY = {
    "KernelDensity": "boundedkde.sklearn_compat",
    "plot_corner": "boundedkde.plotting",
    "plot_density": "boundedkde.plotting",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'boundedkde' has no attribute {name!r}")
