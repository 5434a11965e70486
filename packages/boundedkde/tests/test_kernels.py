"""Kernels: unit mass, zero mean, unit variance, cdf consistent with pdf, roughness."""

from __future__ import annotations

import math

import numpy as np
import pytest
from boundedkde.kernels import KERNELS
from scipy import integrate


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_unit_mass_zero_mean_unit_variance(name: str) -> None:
    k = KERNELS[name]
    r = k.support if math.isfinite(k.support) else 40.0
    mass = integrate.quad(lambda u: float(k.pdf(np.array(u))), -r, r, limit=200)[0]
    mean = integrate.quad(lambda u: u * float(k.pdf(np.array(u))), -r, r, limit=200)[0]
    var = integrate.quad(lambda u: u * u * float(k.pdf(np.array(u))), -r, r, limit=200)[0]
    assert mass == pytest.approx(1.0, abs=1e-10)
    assert mean == pytest.approx(0.0, abs=1e-10)
    assert var == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_cdf_is_integral_of_pdf_and_roughness(name: str) -> None:
    k = KERNELS[name]
    r = k.support if math.isfinite(k.support) else 40.0
    for u in (-1.7, -0.3, 0.0, 0.9, 2.2):
        num = integrate.quad(lambda t: float(k.pdf(np.array(t))), -r, u, limit=200)[0]
        assert float(k.cdf(np.array(u))) == pytest.approx(num, abs=1e-10)
    rough = integrate.quad(lambda t: float(k.pdf(np.array(t))) ** 2, -r, r, limit=200)[0]
    assert k.roughness == pytest.approx(rough, rel=1e-9)
    assert float(k.cdf(np.array(-r - 1))) == pytest.approx(0.0, abs=1e-12)
    assert float(k.cdf(np.array(r + 1))) == pytest.approx(1.0, abs=1e-12)


def test_compact_kernels_vanish_outside_support_and_known_heights() -> None:
    # Epanechnikov with unit variance: K(0) = 3 / (4 sqrt 5) (Silverman 1986, Table 3.1
    # rescaled by sqrt 5); Gaussian: 1/sqrt(2 pi).
    epa0 = float(KERNELS["epanechnikov"].pdf(np.array(0.0)))
    assert epa0 == pytest.approx(3 / (4 * math.sqrt(5)))
    gauss0 = float(KERNELS["gaussian"].pdf(np.array(0.0)))
    assert gauss0 == pytest.approx(1 / math.sqrt(2 * math.pi))
    for name in ("epanechnikov", "biweight", "triweight"):
        k = KERNELS[name]
        assert float(k.pdf(np.array(k.support * 1.0001))) == 0.0
        assert k.cutoff == k.support
