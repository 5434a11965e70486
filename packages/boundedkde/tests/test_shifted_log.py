"""The shifted log ``log1p`` and auto's fallback to it for heavy tails.

Oracles: the change-of-variables identities (inverse, Jacobian by finite differences),
the mirror symmetry between a lower and an upper anchor, unit mass, the cdf/ppf round
trip and a KS test of the sampler, and known densities with heavy tails (Lomax, where a
data-scale grid cannot resolve the bandwidth).
"""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from boundedkde import BoundedKDE
from boundedkde.transforms import TRANSFORMS, fit_shifted_log, shifted_log
from scipy import stats


@pytest.mark.parametrize("upper", [False, True])
def test_shifted_log_inverse_and_jacobian(upper: bool) -> None:
    bounds = (None, 3.0) if upper else (-2.0, None)
    t = shifted_log(0.7, upper=upper)
    x = (3.0 - np.geomspace(1e-6, 1e6, 41)) if upper else (-2.0 + np.geomspace(1e-6, 1e6, 41))
    y = t.forward(x, bounds)
    order = np.argsort(x)
    assert (np.diff(y[order]) > 0).all()  # increasing in x
    np.testing.assert_allclose(t.inverse(y, bounds), x, rtol=1e-12, atol=1e-12)
    step = 1e-6 * np.maximum(1.0, np.abs(x))
    numeric = (t.forward(x + step, bounds) - t.forward(x - step, bounds)) / (2 * step)
    np.testing.assert_allclose(np.exp(t.log_jacobian(x, bounds)), numeric, rtol=1e-6)
    anchor = 3.0 if upper else -2.0
    assert float(t.forward(np.array(anchor), bounds)) == 0.0
    assert t.keeps_bound
    assert t.transformed_bounds(bounds) == ((None, 0.0) if upper else (0.0, None))


def test_shifted_log_maps_a_second_finite_bound_to_a_finite_end() -> None:
    t = shifted_log(2.0)
    assert t.transformed_bounds((0.0, 6.0)) == (0.0, pytest.approx(np.log(4.0)))
    u = shifted_log(2.0, upper=True)
    assert u.transformed_bounds((0.0, 6.0)) == (pytest.approx(-np.log(4.0)), 0.0)


def test_fit_shifted_log_anchor_and_scale() -> None:
    x = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 9.0])
    t = fit_shifted_log(x, None, (0.0, None))
    # the median distance of the data off the bound: median of 1, 2, 4, 9 (lower one)
    assert float(t.inverse(np.log(2.0), (0.0, None))) == pytest.approx(2.0)
    # integer weights act as repeated data
    w = np.array([1.0, 1.0, 1.0, 1.0, 3.0, 0.0, 1.0])
    tw = fit_shifted_log(x, w, (0.0, None))
    rep = fit_shifted_log(np.array([0, 0, 0, 1, 2, 2, 2, 9.0]), None, (0.0, None))
    assert float(tw.inverse(np.log(2.0), (0.0, None))) == float(
        rep.inverse(np.log(2.0), (0.0, None))
    )
    # two bounds: anchored at the bound nearer the data's median
    near_top = fit_shifted_log(10.0 - x, None, (0.0, 10.0))
    assert near_top.transformed_bounds((0.0, 10.0))[1] == 0.0
    with pytest.raises(ValueError, match=r"all data lie on bound 0\.0"):
        fit_shifted_log(np.zeros(5), None, (0.0, None))
    with pytest.raises(ValueError, match="scale of shifted_log"):
        shifted_log(0.0)
    assert "log1p" in TRANSFORMS


@pytest.mark.parametrize("bounds", [(0.0, None), (None, 0.0), (0.0, 50.0)])
@pytest.mark.parametrize("method", ["transform", "transform-mbc"])
def test_log1p_estimate_is_a_bounded_density(
    bounds: tuple[float | None, float | None], method: str
) -> None:
    raw = stats.lomax(2).rvs(size=1500, random_state=np.random.default_rng(4))
    raw = np.minimum(raw, 49.0)
    x = -raw if bounds == (None, 0.0) else raw
    x[:5] = 0.0  # data on the anchor bound are allowed (they map to 0)
    kde = BoundedKDE(bounds=bounds, method=method, transform="log1p", grid_size=4096).fit(x)
    assert kde.transform_ == "log1p"
    assert kde.method_ == method
    lo, hi = bounds
    inner = np.linspace(
        lo if lo is not None else -400.0, hi if hi is not None else 400.0, 2_000_001
    )
    assert np.trapezoid(kde.pdf(inner), inner) == pytest.approx(1.0, abs=2e-3)
    for b, side in ((lo, -1.0), (hi, 1.0)):
        if b is not None:
            assert kde.pdf(np.array([b + side * 1e-9, b + side])).max() == 0.0
            assert np.isfinite(kde.pdf(np.array([b]))).all()
            assert float(kde.pdf(np.array([b]))[0]) > 0
    assert float(kde.cdf(lo if lo is not None else -np.inf)) == 0.0
    assert float(kde.cdf(hi if hi is not None else np.inf)) == 1.0
    q = np.linspace(0.001, 0.999, 41)
    np.testing.assert_allclose(kde.cdf(kde.ppf(q)), q, atol=1e-9)
    s = kde.sample(3000, random_state=2)
    assert stats.kstest(s, kde.cdf).pvalue > 1e-3


def test_log1p_lower_and_upper_anchors_mirror_each_other() -> None:
    x = stats.lomax(1.5).rvs(size=800, random_state=np.random.default_rng(5))
    low = BoundedKDE(bounds=(0.0, None), method="transform-mbc", transform="log1p").fit(x)
    up = BoundedKDE(bounds=(None, 0.0), method="transform-mbc", transform="log1p").fit(-x)
    pts = np.array([0.0, 0.3, 1.0, 5.0, 40.0])
    np.testing.assert_allclose(up.pdf(-pts), low.pdf(pts), rtol=1e-9)
    np.testing.assert_allclose(up.cdf(-pts), 1.0 - low.cdf(pts), atol=1e-12)


def test_fitted_log1p_estimator_pickles() -> None:
    x = stats.lomax(1.5).rvs(size=300, random_state=np.random.default_rng(6))
    kde = BoundedKDE(bounds=(0.0, None), method="transform-mbc", transform="log1p").fit(x)
    again = pickle.loads(pickle.dumps(kde))
    pts = np.array([0.0, 0.5, 3.0])
    np.testing.assert_array_equal(again.pdf(pts), kde.pdf(pts))


@pytest.mark.parametrize(("alpha", "n"), [(0.5, 5000), (1.0, 200_000)])
def test_auto_falls_back_to_the_shifted_log_for_an_unresolvable_tail(alpha: float, n: int) -> None:
    # Lomax(alpha): f(x) = alpha (1 + x)^-(alpha+1). With alpha = 0.5 the sample's range
    # is of order n^2 (about 2.5e7 at n = 5000), over 1e8 bandwidths; the data-scale fit
    # (before the fallback) gave pdf about 0.03 near 0 instead of 0.5.
    dist = stats.lomax(alpha)
    x = dist.rvs(size=n, random_state=np.random.default_rng(7))
    kde = BoundedKDE(bounds=(0.0, None)).fit(x)
    assert kde.tail_rescue_
    assert kde.transform_ == "log1p"
    assert kde.method_ == "transform-mbc"
    pts = np.array([0.0, 0.5, 1.0, 3.0, 10.0])
    np.testing.assert_allclose(kde.pdf(pts), dist.pdf(pts), rtol=0.12)
    np.testing.assert_allclose(kde.cdf(np.array([1.0, 100.0])), dist.cdf([1.0, 100.0]), atol=0.01)


def test_auto_keeps_the_data_scale_when_the_grid_resolves_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    x = np.random.default_rng(8).exponential(size=3000)
    kde = BoundedKDE(bounds=(0.0, None)).fit(x)
    assert not kde.tail_rescue_
    assert kde.transform_ is None
    # a float bandwidth is in data units: no change of scale, the spacing warning stays
    heavy = stats.lomax(0.5).rvs(size=2000, random_state=np.random.default_rng(9))
    with caplog.at_level(logging.WARNING, logger="boundedkde.estimator"):
        fixed = BoundedKDE(bounds=(0.0, None), bandwidth=0.05).fit(heavy)
    assert not fixed.tail_rescue_
    assert fixed.transform_ is None
    assert "below the grid spacing" in caplog.text


def test_hdr_levels_of_a_rescued_fit_are_computed_on_the_transformed_grid() -> None:
    # Lomax(1/2) is decreasing, so the HDR of mass p is [0, q_p] and its level f(q_p).
    # On an equidistant data-scale grid (first step ~1000) both levels came out 0.5.
    x = stats.lomax(0.5).rvs(size=5000, random_state=np.random.default_rng(12))
    kde = BoundedKDE(bounds=(0.0, None)).fit(x)
    assert kde.tail_rescue_
    p = np.array([0.5, 0.9])
    np.testing.assert_allclose(kde.hdr_levels(p), kde.pdf(kde.ppf(p)), rtol=0.02)


def test_silverman_on_a_heavy_tail_is_mirror_symmetric_and_falls_back() -> None:
    # The binned IQR read the distribution function at the end of a node's weight: 0
    # when the bulk sat on the first node, half a node on the last. Lomax(1/2) with
    # bounds=(0, None) then got h = 9e6 and pdf(0) = 4e-7; its mirror image 0.41.
    x = stats.lomax(0.5).rvs(size=3000, random_state=np.random.default_rng(5))
    low = BoundedKDE(bounds=(0.0, None), bandwidth="silverman").fit(x)
    up = BoundedKDE(bounds=(None, 0.0), bandwidth="silverman").fit(-x)
    assert low.tail_rescue_
    assert up.tail_rescue_
    assert low.bandwidth_ == pytest.approx(up.bandwidth_, rel=1e-9)
    assert float(low.pdf(0.0)) == pytest.approx(0.5, rel=0.25)
    np.testing.assert_allclose(low.pdf([0.0, 1.0, 5.0]), up.pdf([0.0, -1.0, -5.0]), rtol=1e-9)
