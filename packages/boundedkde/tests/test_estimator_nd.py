"""BoundedKDE on 2-D and 3-D data delegates to boundedkde.multivariate (issue 3 wiring)."""

from __future__ import annotations

import numpy as np
import pytest
from boundedkde import BoundedKDE


@pytest.fixture(scope="module")
def data2() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([rng.exponential(size=1500), rng.beta(2, 5, size=1500)])


@pytest.fixture(scope="module")
def fit2(data2: np.ndarray) -> BoundedKDE:
    return BoundedKDE(bounds=[(0, None), (0, 1)], method="reflect", bandwidth="scott").fit(data2)


def test_2d_fit_has_unit_mass_inside_and_zero_outside(fit2: BoundedKDE) -> None:
    assert fit2.d_ == 2
    assert np.shape(fit2.bandwidth_) == (2, 2)
    axes, dens = fit2.grid()
    mass = np.trapezoid(np.trapezoid(dens, axes[1], axis=1), axes[0])
    assert mass == pytest.approx(1.0, abs=1e-6)
    outside = np.array([[-0.1, 0.5], [1.0, 1.2], [1.0, -0.01]])
    np.testing.assert_array_equal(fit2.pdf(outside), 0.0)
    assert fit2.cdf(np.array([[50.0, 1.0]]))[0] == pytest.approx(1.0, abs=1e-6)
    inside = np.array([[0.5, 0.2], [2.0, 0.4]])
    np.testing.assert_allclose(fit2.logpdf(inside), np.log(fit2.pdf(inside)), rtol=1e-6)
    assert np.all(np.isneginf(fit2.logpdf(outside)))


def test_marginal_1d_equals_the_1d_fit_with_the_marginal_bandwidth(
    fit2: BoundedKDE, data2: np.ndarray
) -> None:
    m = fit2.marginal([1])
    assert m.d_ == 1
    h = float(np.sqrt(fit2.bandwidth_[1, 1]))
    ref = BoundedKDE(bounds=(0, 1), method="reflect", bandwidth=h).fit(data2[:, 1])
    pts = np.linspace(0, 1, 101)
    np.testing.assert_allclose(m.pdf(pts), ref.pdf(pts), rtol=1e-12, atol=1e-12)
    # and it is the integral of the joint estimate over the other axis (folding commutes)
    axes, dens = fit2.grid()
    integrated = np.trapezoid(dens, axes[0], axis=0)
    np.testing.assert_allclose(integrated, m.pdf(axes[1]), atol=0.02 * integrated.max())


def test_hdr_levels_enclose_their_mass(fit2: BoundedKDE) -> None:
    axes, dens = fit2.grid()
    cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
    for p, level in zip((0.5, 0.9), fit2.hdr_levels([0.5, 0.9]), strict=True):
        assert float(dens[dens >= level].sum() * cell) == pytest.approx(p, abs=0.02)


def test_hdr_levels_1d() -> None:
    x = np.random.default_rng(1).exponential(size=2000)
    kde = BoundedKDE(bounds=(0, None)).fit(x)
    (level,) = kde.hdr_levels([0.5])
    # Exponential-like, decreasing density: the 50% HDR is [0, q) with mass 0.5 -> the
    # level is the density at the estimate's median.
    assert level == pytest.approx(float(kde.pdf(kde.ppf(0.5))), rel=0.02)


def test_3d_fit_and_errors(data2: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    x3 = np.column_stack([data2[:500], rng.uniform(size=500)])
    kde = BoundedKDE(bounds=[(0, None), (0, 1), (0, 1)], method="reflect").fit(x3)
    assert kde.d_ == 3
    assert kde.marginal([0, 2]).d_ == 2
    draws = kde.sample(200, random_state=0)
    assert draws.shape == (200, 3)
    assert (draws >= 0).all()
    with pytest.raises(ValueError, match="one \\(lower, upper\\) pair per column"):
        BoundedKDE(bounds=(0, None)).fit(data2)
    with pytest.raises(ValueError, match="ppf"):
        kde.ppf(0.5)
    with pytest.raises(ValueError, match="1-D"):
        BoundedKDE(bounds=(0, None)).fit(data2[:, 0]).marginal([0])


def test_plots_2d_and_corner(fit2: BoundedKDE, data2: np.ndarray) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from boundedkde.plotting import plot_corner, plot_density

    ax = plot_density(fit2)
    assert len(ax.collections) >= 2  # filled contours and contour lines
    grid = plot_corner(fit2, data=data2, names=["x", "y"])
    assert grid.shape == (2, 2)
    assert not grid[0, 1].axison
    assert grid[1, 0].get_xlabel() == "x"
    plt.close("all")
