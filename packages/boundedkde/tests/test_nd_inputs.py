"""Bad and awkward inputs of the 2-D/3-D estimator (fit_nd, NDFit): clear errors, no
silently wrong results."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from boundedkde.multivariate import MAX_GRID_NODES, NDFit, fit_nd


@pytest.fixture(scope="module")
def normal2() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2000, 2))


@pytest.fixture(scope="module")
def fit_normal(normal2: np.ndarray) -> NDFit:
    return fit_nd(normal2, bandwidth="scott", grid_size=64)


def _mass(fit: NDFit) -> float:
    axes, dens = fit.grid()
    return float(np.trapezoid(np.trapezoid(dens, axes[1], axis=1), axes[0]))


# ------------------------------------------------------------------ far bounds


@pytest.mark.parametrize("method", ["linear-mbc", "reflect"])
def test_far_bound_is_left_out_and_matches_the_open_side(method: str) -> None:
    u = np.random.default_rng(0).uniform(size=(2000, 2))
    far = fit_nd(u, bounds=[(0, 1e6)] * 2, method=method)
    near = fit_nd(u, bounds=[(0, None)] * 2, method=method)
    assert far._active == ((True, False), (True, False))
    assert _mass(far) == pytest.approx(1.0, abs=1e-6)
    assert far.cdf([[1.0, 1.0]])[0] == pytest.approx(near.cdf([[1.0, 1.0]])[0], abs=1e-3)
    assert far.cdf([[1.0, 1.0]])[0] > 0.95
    pts = np.random.default_rng(1).uniform(0.1, 0.9, size=(200, 2))
    np.testing.assert_allclose(far.pdf(pts), near.pdf(pts), rtol=0.02)
    assert np.mean(far.pdf(pts)) == pytest.approx(1.0, abs=0.1)


def test_far_bound_with_auto_has_unit_mass() -> None:
    u = np.random.default_rng(0).uniform(size=(2000, 2))
    for hi in (1e4, 1e6):
        fit = fit_nd(u, bounds=[(0, hi)] * 2)
        assert _mass(fit) == pytest.approx(1.0, abs=1e-6)
        assert fit.cdf([[1.0, 1.0]])[0] > 0.95


# ------------------------------------------------------------------ evaluation points


@pytest.mark.parametrize("name", ["pdf", "logpdf", "cdf"])
def test_nan_points_raise(fit_normal: NDFit, name: str) -> None:
    with pytest.raises(ValueError, match=r"points must not contain NaN; got 1 rows"):
        getattr(fit_normal, name)([[np.nan, 0.5], [0.0, 0.0]])
    with pytest.raises(TypeError, match=r"points must be an array of real numbers"):
        getattr(fit_normal, name)("a")


def test_infinite_points_are_allowed(fit_normal: NDFit) -> None:
    assert fit_normal.pdf([[np.inf, 0.5]])[0] == 0.0
    assert fit_normal.cdf([[np.inf, np.inf]])[0] == pytest.approx(1.0)


def test_marginal_axes_must_be_ints(fit_normal: NDFit) -> None:
    for bad in ("a", 5, [0.5, 1]):
        with pytest.raises(TypeError, match=r"axes must be a sequence of ints"):
            fit_normal.marginal(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"axes must be a sequence of ints"):
        fit_normal.marginal_1d_params("a")  # type: ignore[arg-type]


def test_grid_names_its_own_parameter(fit_normal: NDFit) -> None:
    _axes, dens = fit_normal.grid(2)
    assert dens.shape == (2, 2)
    with pytest.raises(ValueError, match=r"n of NDFit.grid\(\) must be an int >= 2"):
        fit_normal.grid(1)
    with pytest.raises(TypeError, match=r"n of NDFit.grid\(\) must be an int >= 2"):
        fit_normal.grid(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n of NDFit.grid\(\) must give at most"):
        fit_normal.grid(100_000)


# ------------------------------------------------------------------ data


def test_constant_column_is_named_before_any_work() -> None:
    x = np.random.default_rng(0).exponential(size=2000)
    data = np.column_stack([x, np.full(2000, 0.5)])
    for bounds in (None, [(0, None), (0, 1)]):
        with pytest.raises(ValueError, match=r"axes \[1\] have zero variance"):
            fit_nd(data, bounds=bounds)
    # a user matrix needs no covariance
    fit = fit_nd(data, bounds=[(0, None), (0, 1)], bandwidth=np.eye(2) * 0.01)
    assert fit.cdf([[50.0, 1.0]])[0] == pytest.approx(1.0, abs=1e-6)


def test_integer_data_fit_with_a_fallback(caplog: pytest.LogCaptureFixture) -> None:
    p = np.random.default_rng(0).poisson(3, size=(1000, 2))
    with caplog.at_level(logging.WARNING, logger="boundedkde.multivariate"):
        fit = fit_nd(p, bounds=[(0, None)] * 2)
    assert "falling back to Silverman" in caplog.text
    assert np.all(np.linalg.eigvalsh(fit.bandwidth) > 0)
    assert _mass(fit) == pytest.approx(1.0, abs=1e-6)
    for method in ("linear", "renorm", "reflect"):
        assert _mass(fit_nd(p, bounds=[(0, None)] * 2, method=method)) == pytest.approx(1.0)


def test_tiny_bandwidth_with_linear_does_not_crash() -> None:
    x = np.abs(np.random.default_rng(0).normal(size=(500, 2)))
    fit = fit_nd(x, bounds=[(0, None)] * 2, method="linear", bandwidth=1e-6, grid_size=32)
    assert fit.cdf([[20.0, 20.0]])[0] == pytest.approx(1.0, abs=1e-6)


def test_three_distinct_points_raise_for_isj(normal2: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"x has only 3 distinct points \(of 1500 rows"):
        fit_nd(np.repeat(normal2[:3], 500, axis=0))


def test_few_distinct_values_per_axis_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    # a 4 x 2 lattice of values (as in scikit-learn's estimator checks): legal, smoothed
    x = np.array([[a, b] for a in range(4) for b in range(2)] * 2, dtype=float)
    with caplog.at_level(logging.WARNING, logger="boundedkde.multivariate"):
        fit = fit_nd(x)
    assert "falling back to Silverman" in caplog.text
    assert _mass(fit) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(1, 200), (2, 200)])
def test_transposed_data_is_named(shape: tuple[int, int]) -> None:
    x = np.random.default_rng(0).normal(size=shape)
    with pytest.raises(ValueError, match=rf"got shape \({shape[0]}, 200\), which looks transposed"):
        fit_nd(x)


# ------------------------------------------------------------------ weights


def test_weights_with_one_effective_point(normal2: np.ndarray) -> None:
    for w in (np.r_[1.0, np.zeros(1999)], np.r_[1e200, np.ones(1999)]):
        with pytest.raises(ValueError, match=r"weights give an effective sample size n_eff = 1"):
            fit_nd(normal2, weights=w)
    with pytest.raises(TypeError, match=r"weights must be an array"):
        fit_nd(normal2, weights="a")


@pytest.mark.parametrize("scale", [1e160, 1e-170])
def test_extreme_weight_scales_give_the_unweighted_fit(normal2: np.ndarray, scale: float) -> None:
    ref = fit_nd(normal2)
    fit = fit_nd(normal2, weights=np.full(2000, scale))
    assert fit.n_eff == pytest.approx(2000.0)
    np.testing.assert_allclose(fit.bandwidth, ref.bandwidth, rtol=1e-9)
    pts = normal2[:50]
    np.testing.assert_allclose(fit.pdf(pts), ref.pdf(pts), rtol=1e-9)


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"grid_size": 100_000}, ValueError, r"grid_size must give at most 1048576 \(2\*\*20\)"),
        ({"grid_size": (2048, 1024)}, ValueError, r"grid_size must give at most"),
        ({"grid_size": 2.5}, TypeError, r"grid_size must be an int >= 8"),
        ({"grid_size": "64"}, TypeError, r"grid_size must be an int >= 8"),
        ({"grid_size": True}, TypeError, r"grid_size must be an int >= 8"),
        ({"workers": "a"}, TypeError, r"workers must be a non-zero int"),
        ({"workers": 0}, ValueError, r"workers must be a non-zero int"),
        ({"workers": 1.5}, TypeError, r"workers must be a non-zero int"),
        ({"bounds": [("0", None), (0, 1)]}, TypeError, r"bounds on axis 0 must be real numbers"),
        ({"bounds": [(None, None), (True, 1)]}, TypeError, r"bounds on axis 1 must be real"),
    ],
)
def test_parameter_errors(
    normal2: np.ndarray, kwargs: dict[str, object], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        fit_nd(np.abs(normal2) * 0.2, **kwargs)  # type: ignore[arg-type]


def test_grid_size_limit_and_types_accepted(normal2: np.ndarray) -> None:
    assert MAX_GRID_NODES == 2**20
    fit = fit_nd(normal2, bandwidth="scott", grid_size=np.array([64, 32]))
    assert fit.grid_size == (64, 32)
    fit = fit_nd(normal2, bandwidth="scott", grid_size=np.int64(48), workers=-1)
    assert fit.grid_size == (48, 48)
    fit = fit_nd(np.abs(normal2), bounds=np.array([[0, np.inf], [0, np.inf]]), grid_size=32)
    assert fit.bounds == ((0.0, None), (0.0, None))


def test_kernel_far_wider_than_a_big_grid_raises_not_oom() -> None:
    u = np.random.default_rng(0).uniform(size=(200, 2))
    # 1024**2 nodes with a stencil as wide as the grid: the FFT would need 9x the grid
    # per array and some 250 arrays.
    with pytest.raises(ValueError, match=r"FFT convolution needs .* use a smaller grid_size"):
        fit_nd(u, bounds=[(0, 1)] * 2, method="linear", bandwidth=np.eye(2) * 100.0, grid_size=1024)
    # the default grid is fine with the same bandwidth
    fit = fit_nd(u, bounds=[(0, 1)] * 2, method="linear", bandwidth=np.eye(2) * 100.0)
    assert fit.pdf([[0.5, 0.5]])[0] == pytest.approx(1.0, rel=0.05)


def test_zero_weight_rows_are_left_out_as_in_1d() -> None:
    # Zero-weight rows used to widen the grid of an open axis (a 1e-4 relative change of
    # the estimate); they carry nothing and, as in 1-D, may lie anywhere.
    x = np.random.default_rng(1).uniform(size=(3000, 2))
    w = (x[:, 0] > 0.5).astype(float)
    pts = np.array([[0.7, 0.5], [0.9, 0.2], [0.6, 0.95]])
    for bounds in ([(0, 1), (0, 1)], [(0, None), (None, None)]):
        ref = fit_nd(x[w > 0], None, bounds=bounds)
        np.testing.assert_allclose(fit_nd(x, w, bounds=bounds).pdf(pts), ref.pdf(pts), rtol=1e-12)
