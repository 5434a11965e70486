"""1-D inputs found by a bad-input audit: far and huge bounds, huge bandwidths, extreme
weights, failed refits, complex data, scikit-learn parameters, Dask weights, and the
scipy/scikit-learn wrappers' argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from boundedkde import BoundedKDE
from boundedkde.estimator import MAX_GRID_SIZE
from boundedkde.scipy_compat import gaussian_kde

RNG = np.random.default_rng(20261129)
U = RNG.uniform(size=2000)
E = RNG.exponential(size=2000)


@pytest.mark.parametrize("upper", [2.0, 1e4, 1e6, 1e300])
def test_a_far_bound_leaves_the_estimate_as_an_open_side(upper: float) -> None:
    # The far upper bound is beyond the kernel's reach: it cannot change the estimate, so
    # the fit must equal the one with an open upper side (it used to stretch the grid to
    # the bound and lose the data between a few nodes: cdf(1) = 0.72 at 1e6).
    far = BoundedKDE(bounds=(0.0, upper)).fit(U)
    open_ = BoundedKDE(bounds=(0.0, None)).fit(U)
    pts = np.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(far.pdf(pts), open_.pdf(pts), rtol=1e-12, atol=1e-12)
    assert far.bandwidth_ == pytest.approx(open_.bandwidth_, rel=1e-12)
    assert float(far.cdf(upper)) == pytest.approx(1.0, abs=1e-9)
    assert float(far.pdf(upper * 1.0000001)) == 0.0
    x, y = far.grid(4001)
    assert x[0] == 0.0  # the near bound is still a grid end
    assert float(np.trapezoid(y, x)) == pytest.approx(1.0, abs=1e-6)


def test_a_bound_within_the_kernels_reach_stays_a_grid_end() -> None:
    # 1.2 is beyond the open side's 10 % padding but within 8 bandwidths of the data:
    # it gets the boundary treatment, and grid() ends exactly on it.
    kde = BoundedKDE(bounds=(0.0, 1.2)).fit(U)
    assert 1.2 - U.max() < 8 * kde.bandwidth_
    x, y = kde.grid(2048)
    assert (x[0], x[-1]) == (0.0, 1.2)
    assert float(np.trapezoid(y, x)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("lower", [-1e6, -1e300])
def test_only_the_far_bound_the_kernel_reaches_becomes_a_grid_end(lower: float) -> None:
    # Both bounds are beyond the padding; the kernel reaches 1.15 but not the lower one.
    # The refit used to lay the grid over both bounds, [-1e6, 1.15], leaving the data
    # a few nodes (pdf about 0.55 instead of 1 on uniform data).
    kde = BoundedKDE(bounds=(lower, 1.15)).fit(U)
    ref = BoundedKDE(bounds=(None, 1.15)).fit(U)
    assert 1.15 - U.max() < 8 * kde.bandwidth_ < U.min() - lower
    pts = np.linspace(0.0, 1.15, 117)
    np.testing.assert_allclose(kde.pdf(pts), ref.pdf(pts), rtol=1e-12, atol=1e-12)
    x, _ = kde.grid(512)
    assert x[-1] == 1.15
    assert x[0] > -1.0


@pytest.mark.parametrize("bounds", [(-1e200, None), (-1e300, 1e300), (0.0, np.finfo(float).max)])
def test_huge_finite_bounds_fit_like_open_ones(bounds: tuple[float, float | None]) -> None:
    kde = BoundedKDE(bounds=bounds).fit(U)
    x, y = kde.grid(2048)
    assert np.isfinite(y).all()
    assert float(np.trapezoid(y, x)) == pytest.approx(1.0, abs=1e-6)
    assert kde.method_ == "linear-mbc"


def test_transform_with_a_bound_too_far_for_floating_point_says_so() -> None:
    with pytest.raises(ValueError, match="collapse to one value"):
        BoundedKDE(bounds=(-1e200, None), method="transform-mbc").fit(U)


@pytest.mark.parametrize("bounds", [(0.0, None), (None, None), (0.0, 10.0)])
@pytest.mark.parametrize("h", [1e3, 1e6, 1e300])
def test_huge_bandwidths_stay_within_the_grid_limit(
    bounds: tuple[float | None, float | None], h: float
) -> None:
    kde = BoundedKDE(bounds=bounds, bandwidth=h).fit(E)
    assert kde.grid_size_ <= MAX_GRID_SIZE
    x, y = kde.grid(2001)
    assert np.isfinite(y).all()
    assert float(np.trapezoid(y, x)) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("scale", [1e160, 1e-170])
def test_weights_are_relative_at_any_scale(scale: float) -> None:
    ref = BoundedKDE(bounds=(0.0, None)).fit(E)
    kde = BoundedKDE(bounds=(0.0, None)).fit(E, weights=np.full(E.size, scale))
    assert kde.n_eff_ == pytest.approx(E.size)
    np.testing.assert_allclose(kde.pdf([0.1, 1.0, 3.0]), ref.pdf([0.1, 1.0, 3.0]), rtol=1e-12)


def test_one_dominant_weight_gives_one_effective_observation() -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no inf, NaN or 0/0
        kde = BoundedKDE(bounds=(0.0, None)).fit(E, weights=np.r_[1e200, np.ones(E.size - 1)])
    assert kde.n_eff_ == pytest.approx(1.0)


def test_a_failed_refit_keeps_the_previous_fit() -> None:
    xy = RNG.normal(size=(500, 2))
    kde = BoundedKDE().fit(xy)
    before = kde.pdf(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="x must contain only finite values"):
        kde.fit([np.nan, 1.0])
    np.testing.assert_array_equal(kde.pdf(np.zeros((1, 2))), before)
    unfitted = BoundedKDE()
    with pytest.raises(ValueError, match="constant"):
        unfitted.fit([1.0, 1.0, 1.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        unfitted.pdf(0.0)


def test_complex_data_is_refused() -> None:
    with pytest.raises(TypeError, match="x must be an array of real numbers; got complex"):
        BoundedKDE().fit(np.array([1 + 1j, 2.0, 3.0]))


def test_scikit_learn_parameters_and_clone() -> None:
    sklearn_base = pytest.importorskip("sklearn.base")
    kde = BoundedKDE(bounds=(0, None), bandwidth=0.3)
    params = kde.get_params()
    assert params["bounds"] == (0, None)
    assert params["bandwidth"] == 0.3
    copy = sklearn_base.clone(kde)
    assert copy is not kde
    assert copy.get_params() == params
    assert repr(kde) == "BoundedKDE(bounds=(0, None), bandwidth=0.3)"
    assert kde.set_params(method="reflect") is kde
    assert kde.method == "reflect"
    with pytest.raises(ValueError, match="unknown parameter 'bound'"):
        kde.set_params(bound=(0, 1))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.r_[-1e3, np.ones(1999)], "weights must be finite.* non-negative"),
        (np.r_[np.nan, np.ones(1999)], "weights must be finite"),
        (np.ones(10), "same length as x; got 10 weights for 2000 values"),
    ],
)
@pytest.mark.parametrize("bounds", [(0.0, None), (0.0, 50.0)])
def test_dask_weights_are_checked(
    weights: np.ndarray, message: str, bounds: tuple[float, float | None]
) -> None:
    da = pytest.importorskip("dask.array")
    x = da.from_array(E, chunks=500)
    w = da.from_array(weights, chunks=500)
    with pytest.raises(ValueError, match=message):
        BoundedKDE(bounds=bounds).fit(x, weights=w)


def test_empty_dask_data_is_refused() -> None:
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="x must not be empty"):
        BoundedKDE(bounds=(0.0, None)).fit(da.from_array(E[:0], chunks=500))


def test_scipy_wrapper_follows_scipy_on_nan_and_checks_its_arguments() -> None:
    kde = gaussian_kde(E, bounds=(0, None))
    out = kde.evaluate([np.nan, 1.0])
    assert math.isnan(out[0])
    assert out[1] > 0
    assert math.isnan(kde.logpdf([np.nan])[0])
    assert math.isnan(kde.integrate_box_1d(np.nan, 1.0))
    with pytest.raises(TypeError, match="size of resample must be an integer"):
        kde.resample(2.5)
    with pytest.raises(TypeError, match="bounds of gaussian_kde must be"):
        gaussian_kde(E, bounds="0:")
    with pytest.raises(TypeError, match="axis 0 got"):
        gaussian_kde(E, bounds=("0", None))


def test_sklearn_wrapper_sample_size_must_be_an_integer() -> None:
    sk = pytest.importorskip("boundedkde.sklearn_compat")
    kde = sk.KernelDensity(bounds=[(0, None)]).fit(E[:, None])
    assert kde.sample(3, random_state=0).shape == (3, 1)
    with pytest.raises(TypeError, match=r"n_samples of KernelDensity\.sample must be an integer"):
        kde.sample(2.5)


def test_a_transposed_vector_is_named_as_such() -> None:
    with pytest.raises(ValueError, match=r"shape \(1, 200\) looks transposed"):
        BoundedKDE(bounds=(0, 1)).fit(U[None, :200])


def test_counts_fall_back_to_silverman_instead_of_spikes(caplog: pytest.LogCaptureFixture) -> None:
    counts = RNG.poisson(3, 1000).astype(float)  # 11 or so distinct values, gap 1
    with caplog.at_level("WARNING", logger="boundedkde.estimator"):
        kde = BoundedKDE(bounds=(0, None)).fit(counts)
    assert "below the smallest gap" in caplog.text
    silverman = BoundedKDE(bounds=(0, None), method=kde.method_, bandwidth="silverman")
    # Silverman's rule on the (refined) grid the fit had reached: the binned spread
    # differs from the default grid's in the fourth digit.
    assert kde.bandwidth_ == pytest.approx(silverman.fit(counts).bandwidth_, rel=1e-3)
    _, y = kde.grid(4001)
    assert y.max() < 1.0  # ISJ alone gave h ~ 1e-5 and a density peak in the thousands


def test_continuous_heavy_tails_keep_isj(caplog: pytest.LogCaptureFixture) -> None:
    x = np.abs(np.random.default_rng(1).standard_cauchy(5000))
    with caplog.at_level("WARNING", logger="boundedkde.estimator"):
        kde = BoundedKDE(bounds=(0, None)).fit(x)
    assert "smallest gap" not in caplog.text
    assert kde.bandwidth_ < 1.0
