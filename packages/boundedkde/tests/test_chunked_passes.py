"""Chunked data passes and the fused ISJ layout (the fast path of the 1-D and 2-D fits).

Each test compares a fast path with a slower reference computed another way: numpy's own
reductions, a direct (unchunked) binning, Brent's method on the paper's bracket, and the
estimate with the bandwidth matrix given explicitly (so the grid is laid out for it).
"""

from __future__ import annotations

import numpy as np
import pytest
from boundedkde import _nd_grid as g
from boundedkde import bandwidth as bw
from boundedkde import multivariate as mv
from boundedkde.binning import CHUNK_ROWS, linear_binning, nearest_binning
from boundedkde.multivariate import fit_nd

N = CHUNK_ROWS * 2 + 1234  # three chunks, the last one partial


def _direct_linear(x: np.ndarray, w: np.ndarray | None, lo: float, hi: float, n: int) -> np.ndarray:
    t = (x - lo) * ((n - 1) / (hi - lo))
    i = np.minimum(t.astype(np.intp), n - 2)
    f = t - i
    ww = np.ones_like(x) if w is None else w
    out = np.zeros(n)
    np.add.at(out, i, ww * (1 - f))
    np.add.at(out, i + 1, ww * f)
    return out


@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_1d_binning_equals_direct_sums(weighted: bool) -> None:
    rng = np.random.default_rng(5)
    x = rng.exponential(size=N)
    w = rng.uniform(size=N) if weighted else None
    hi = float(x.max())
    got = linear_binning(x, w, 0.0, hi, 257)
    np.testing.assert_allclose(got, _direct_linear(x, w, 0.0, hi, 257), rtol=1e-10, atol=1e-9)
    near = np.minimum(np.floor(x * (4095 / hi) + 0.5).astype(np.intp), 4095)
    want = np.bincount(near, weights=w, minlength=4096)
    np.testing.assert_allclose(nearest_binning(x, w, 0.0, hi, 4096), want, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binning_pass_marginals_match_the_separate_binnings(order: str, weighted: bool) -> None:
    """One pass gives the multilinear counts and, per axis, exactly nearest_binning's
    histogram on the axis' own range, for C- and Fortran-ordered data."""
    rng = np.random.default_rng(6)
    x = np.asarray(np.column_stack([rng.exponential(size=N), rng.normal(size=N)]), order=order)
    w = rng.uniform(size=N) if weighted else None
    lo, hi = [0.0, float(x[:, 1].min())], [float(x[:, 0].max()), float(x[:, 1].max())]
    ranges = [(0.0, hi[0] * 1.1), (lo[1] - 1.0, hi[1] + 1.0)]
    counts, hists = g.binning_pass(x, w, lo, hi, (33, 17), [(a, b, 501) for a, b in ranges])
    # Reference: the same multilinear binning of one chunk-free copy (additivity makes the
    # chunked sum equal to it up to rounding).
    ref = sum(
        g.binning_pass(x[s : s + 1000], None if w is None else w[s : s + 1000], lo, hi, (33, 17))[0]
        for s in range(0, N, 1000)
    )
    np.testing.assert_allclose(counts, ref, rtol=1e-10, atol=1e-9)
    assert counts.sum() == pytest.approx(N if w is None else w.sum(), rel=1e-12)
    for i, (a, b) in enumerate(ranges):
        hist = hists[i]
        assert hist is not None
        want = nearest_binning(x[:, i], w, a, b, 501)
        np.testing.assert_allclose(hist, want, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("weighted", [False, True])
def test_column_moments_match_numpy(order: str, weighted: bool) -> None:
    rng = np.random.default_rng(7)
    x = np.asarray(rng.normal(size=(N, 3)) @ rng.normal(size=(3, 3)) + 5.0, order=order)
    w = rng.uniform(size=N) if weighted else np.ones(N)
    xmin, xmax, s1, s2 = g.column_moments(x, w if weighted else None)
    np.testing.assert_array_equal(xmin, x.min(axis=0))
    np.testing.assert_array_equal(xmax, x.max(axis=0))
    np.testing.assert_allclose(s1, w @ x, rtol=1e-11)
    np.testing.assert_allclose(s2, (x * w[:, None]).T @ x, rtol=1e-11)
    cov = mv._weighted_cov(x, w if weighted else None, (s1, s2))
    np.testing.assert_allclose(cov, np.cov(x.T, aweights=w), rtol=1e-9)


def test_column_moments_propagate_nan() -> None:
    x = np.ones((N, 2))
    x[N - 3, 1] = np.nan
    xmin, xmax, _, _ = g.column_moments(x, None)
    assert np.isfinite(xmin[0])
    assert np.isnan(xmin[1])
    assert np.isnan(xmax[1])


@pytest.mark.parametrize(
    "name", ["normal", "exponential", "beta25", "bimodal", "pole", "small"]
)
def test_isj_secant_root_equals_brents(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secant solve from the normal-reference guess finds the root Brent's method
    finds on the paper's bracket (0, 0.1], to 1e-8 relative in h."""
    rng = np.random.default_rng(8)
    x, lo, hi = {
        "normal": (rng.normal(size=20000), -6.0, 6.0),
        "exponential": (rng.exponential(size=20000), 0.0, 12.0),
        "beta25": (rng.beta(2, 5, size=3000), 0.0, 1.0),
        "bimodal": (np.r_[rng.normal(size=2000), rng.normal(6, 0.3, size=500)], -5.0, 9.0),
        "pole": (rng.uniform(size=3000) ** 2, 0.0, 1.0),
        "small": (rng.normal(size=60), -4.0, 4.0),
    }[name]
    c = nearest_binning(x, None, lo, hi, 4096)
    fast = bw.isj(c, lo, hi, float(x.size))
    monkeypatch.setattr(bw, "_fixed_point", lambda *a: None)
    brent = bw.isj(c, lo, hi, float(x.size))
    assert fast == pytest.approx(brent, rel=1e-8)


def _fit_pair(monkeypatch: pytest.MonkeyPatch, factor: float) -> tuple[mv.NDFit, mv.NDFit]:
    monkeypatch.setattr(mv, "PILOT_SD_FACTOR", factor)
    rng = np.random.default_rng(9)
    x = np.column_stack([rng.exponential(size=3000), rng.normal(size=3000)])
    bounds = [(0.0, None), (None, None)]
    auto = fit_nd(x, None, bounds, "linear-mbc", "isj")
    # The same bandwidth matrix given explicitly: the grid is laid out for it exactly.
    exact = fit_nd(x, None, bounds, "linear-mbc", auto.bandwidth)
    return auto, exact


def test_isj_layout_falls_back_to_binning_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a pilot far too small to cover the ISJ bandwidth the data are binned again on
    the ISJ layout, so the fit equals the one with that bandwidth matrix given."""
    auto, exact = _fit_pair(monkeypatch, 1e-3)
    pts = np.array([[0.0, 0.0], [0.3, -1.0], [1.5, 0.5], [4.0, 2.0]])
    np.testing.assert_allclose(auto.pdf(pts), exact.pdf(pts), rtol=1e-12)


def test_isj_pilot_layout_changes_only_the_grid_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default pilot the grid is a little wider than the ISJ bandwidth needs; the
    estimate agrees with the exactly laid-out one to within the binning error."""
    auto, exact = _fit_pair(monkeypatch, mv.PILOT_SD_FACTOR)
    pts = np.array([[0.05, 0.0], [0.3, -1.0], [1.5, 0.5], [3.0, 1.5]])
    np.testing.assert_allclose(auto.pdf(pts), exact.pdf(pts), rtol=0.02)
    assert not np.allclose(auto.pdf(pts), exact.pdf(pts), rtol=1e-12)  # a different grid
