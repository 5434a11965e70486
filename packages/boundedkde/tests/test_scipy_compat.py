"""boundedkde.gaussian_kde: scipy parity without bounds, folding with bounds, binned mode."""

from __future__ import annotations

import numpy as np
import pytest
from boundedkde.scipy_compat import gaussian_kde
from scipy import stats

BW = [None, "scott", "silverman", 0.3, lambda k: 0.5 * k.scotts_factor()]


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("bw", BW)
@pytest.mark.parametrize("weighted", [False, True])
def test_exact_mode_matches_scipy(d: int, bw: object, weighted: bool) -> None:
    rng = np.random.default_rng(d)
    data = rng.normal(size=(d, 300)) + rng.normal(size=(d, 1))
    if d > 1:
        data[1] += 0.5 * data[0]  # correlated axes exercise the full covariance
    w = rng.uniform(0.1, 2.0, size=300) if weighted else None
    pts = rng.normal(scale=1.5, size=(d, 50))
    ours = gaussian_kde(data, bw_method=bw, weights=w)  # type: ignore[arg-type]
    ref = stats.gaussian_kde(data, bw_method=bw, weights=w)  # type: ignore[arg-type]
    assert ours.mode_ == "exact"
    np.testing.assert_allclose(ours.factor, ref.factor, rtol=1e-14)
    np.testing.assert_allclose(ours.covariance, ref.covariance, rtol=1e-12)
    np.testing.assert_allclose(ours(pts), ref(pts), rtol=1e-10)
    np.testing.assert_allclose(ours.logpdf(pts), ref.logpdf(pts), rtol=1e-10)


def test_integrate_box_1d_matches_scipy_unbounded() -> None:
    x = np.random.default_rng(0).gamma(2.0, size=400)
    ours, ref = gaussian_kde(x), stats.gaussian_kde(x)
    for a, b in [(-1.0, 1.0), (0.5, 3.0), (-np.inf, 2.0)]:
        assert ours.integrate_box_1d(a, b) == pytest.approx(ref.integrate_box_1d(a, b), rel=1e-10)


@pytest.mark.parametrize("bounds", [(0.0, None), (None, 1.0), (0.0, 1.0)])
def test_bounded_folding_has_unit_mass_inside_and_zero_outside(bounds: tuple) -> None:
    x = np.random.default_rng(1).beta(0.8, 1.5, size=500)
    kde = gaussian_kde(x, bounds=bounds)
    lo = -4.0 if bounds[0] is None else bounds[0]
    hi = 5.0 if bounds[1] is None else bounds[1]
    grid = np.linspace(lo, hi, 20001)
    dens = kde(grid)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-6)
    assert kde.integrate_box_1d(-np.inf, np.inf) == pytest.approx(1.0, abs=1e-12)
    if bounds[0] is not None:
        assert kde(np.array([bounds[0] - 1e-9]))[0] == 0.0
    if bounds[1] is not None:
        assert kde(np.array([bounds[1] + 1e-9]))[0] == 0.0
    # Folding doubles the density at the bound relative to the unbounded estimate's
    # contribution there: the estimate at the bound exceeds scipy's unbounded one.
    edge = np.array([bounds[0] if bounds[0] is not None else bounds[1]])
    assert kde(edge)[0] > stats.gaussian_kde(x)(edge)[0]


def test_bounded_2d_mass_and_samples_inside() -> None:
    rng = np.random.default_rng(2)
    data = np.vstack([rng.exponential(size=400), rng.uniform(size=400)])
    kde = gaussian_kde(data, bounds=[(0, None), (0, 1)])
    gx, gy = np.meshgrid(np.linspace(0, 9, 361), np.linspace(0, 1, 161), indexing="ij")
    dens = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    mass = np.trapezoid(np.trapezoid(dens, gy[0], axis=1), gx[:, 0])
    assert mass == pytest.approx(1.0, abs=2e-3)
    draws = kde.resample(2000, seed=3)
    assert draws.shape == (2, 2000)
    assert draws[0].min() >= 0
    assert draws[1].min() >= 0
    assert draws[1].max() <= 1


def test_bounded_resample_follows_the_estimate() -> None:
    x = np.random.default_rng(4).exponential(size=300)
    kde = gaussian_kde(x, bounds=(0, None))
    draws = kde.resample(3000, seed=5)[0]
    assert draws.min() >= 0.0

    def cdf(v: np.ndarray) -> np.ndarray:
        return np.array([kde.integrate_box_1d(0.0, float(t)) for t in np.atleast_1d(v)])

    assert stats.kstest(draws, cdf).pvalue > 1e-3


def test_binned_mode_reports_and_meets_its_tolerance() -> None:
    x = np.random.default_rng(6).exponential(size=30_000)
    pts = np.linspace(0, 8, 400)
    binned = gaussian_kde(x, bounds=(0, None))
    assert binned.mode_ == "binned"  # above EXACT_MAX_N
    dens = binned(pts)
    assert binned.binned_error_ is not None
    assert binned.binned_error_ <= binned.rtol
    exact = gaussian_kde(x, bounds=(0, None), mode="exact")(pts)
    assert np.max(np.abs(dens - exact)) / exact.max() < 1e-4


def test_binned_mode_other_methods_and_errors() -> None:
    x = np.random.default_rng(7).uniform(size=400)
    kde = gaussian_kde(x, bounds=(0, 1), method="linear-mbc")
    assert kde.mode_ == "binned"
    assert kde.integrate_box_1d(0, 1) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="mode='binned'"):
        gaussian_kde(x, bounds=(0, 1), method="renorm", mode="exact")
    with pytest.raises(ValueError, match="outside bounds"):
        gaussian_kde(x, bounds=(0.5, 1))
    with pytest.raises(ValueError, match="bw_method"):
        gaussian_kde(x, bw_method="wide")
    with pytest.raises(ValueError, match="lower < upper"):
        gaussian_kde(x, bounds=(1, 0))
    with pytest.raises(ValueError, match="weights"):
        gaussian_kde(x, weights=-np.ones(400))
