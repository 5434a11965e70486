"""Plots render without a display and contain the expected artists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from boundedkde import BoundedKDE

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from boundedkde.plotting import plot_density  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def test_1d_curve_histogram_and_rug(tmp_path: Path) -> None:
    x = np.random.default_rng(0).exponential(size=300)
    kde = BoundedKDE(bounds=(0, None)).fit(x)
    ax = plot_density(kde, data=x, rug=True, points=400)
    curve = [ln for ln in ax.get_lines() if ln.get_label() == "bounded KDE"]
    assert len(curve) == 1
    xs, ys = curve[0].get_xdata(), curve[0].get_ydata()
    assert xs[0] == 0.0  # the curve starts exactly at the bound
    assert np.trapezoid(ys, xs) == pytest.approx(1.0, abs=5e-3)
    assert len(ax.patches) > 5  # histogram bars
    assert any(ln.get_label() == "_rug" for ln in ax.get_lines())
    out = tmp_path / "p.png"
    ax.figure.savefig(out)
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_draws_on_given_axes_without_histogram() -> None:
    x = np.random.default_rng(1).uniform(size=200)
    kde = BoundedKDE(bounds=(0, 1)).fit(x)
    _, ax = plt.subplots()
    assert plot_density(kde, ax, hist=False) is ax
    assert len(ax.patches) == 0


def test_unfitted_and_bad_levels_errors() -> None:
    with pytest.raises(ValueError, match="fitted"):
        plot_density(BoundedKDE())
