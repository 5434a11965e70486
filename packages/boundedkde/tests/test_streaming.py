"""partial_fit over chunks and the Dask path equal one in-memory fit (binning is additive)."""

from __future__ import annotations

import numpy as np
import pytest
from boundedkde import BoundedKDE
from boundedkde.estimator import MAX_GRID_SIZE
from boundedkde.streaming import BinnedData, bin_chunk


def test_partial_fit_equals_one_fit_with_finite_bounds() -> None:
    x = np.random.default_rng(0).beta(2, 5, size=6000)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=6000)
    kw = {"bounds": (0, 1), "method": "linear-mbc", "grid_size": 2048}
    one = BoundedKDE(**kw).fit(x, weights=w)
    stream = BoundedKDE(**kw)
    for xc, wc in zip(np.array_split(x, 7), np.array_split(w, 7), strict=True):
        stream.partial_fit(xc, weights=wc)
    pts = np.linspace(0, 1, 257)
    np.testing.assert_allclose(stream.pdf(pts), one.pdf(pts), rtol=1e-10, atol=1e-12)
    assert stream.bandwidth_ == pytest.approx(one.bandwidth_, rel=1e-10)
    assert stream.n_eff_ == pytest.approx(one.n_eff_, rel=1e-12)


def test_partial_fit_open_side_grows_the_grid_exactly() -> None:
    rng = np.random.default_rng(2)
    chunks = [rng.exponential(size=1500) * s for s in (0.2, 1.0, 3.0)]  # later chunks reach further
    stream = BoundedKDE(bounds=(0, None), method="reflect", bandwidth=0.1, grid_size=1024)
    for c in chunks:
        stream.partial_fit(c)
    state = stream._stream
    # The merged counts equal binning everything at once on the final grid.
    allx = np.concatenate(chunks)
    direct = bin_chunk(allx, None, state.grid_lo, state.step, state.counts.size)
    np.testing.assert_allclose(state.counts, direct.counts, rtol=1e-9, atol=1e-9)
    pts, dens = stream.grid()
    assert np.trapezoid(dens, pts) == pytest.approx(1.0, abs=1e-9)
    assert stream.pdf(-0.1) == 0.0


def test_coarsening_equals_binning_at_twice_the_spacing() -> None:
    x = np.random.default_rng(5).uniform(0.2, 1.0, size=3000)
    w = np.random.default_rng(6).uniform(0.5, 2.0, size=3000)
    for size in (64 * 17 + 1, 64 * 17):  # an odd and an even node count
        fine = bin_chunk(x, w, 0.15, 0.85 / (64 * 17 - 1), size)
        coarse = fine.coarsen()
        assert coarse.step == 2 * fine.step
        assert coarse.grid_lo == fine.grid_lo
        direct = bin_chunk(x, w, coarse.grid_lo, coarse.step, coarse.counts.size)
        np.testing.assert_allclose(coarse.counts, direct.counts, rtol=1e-12, atol=1e-12)


def test_rebin_is_exact_on_a_subset_of_the_nodes() -> None:
    x = np.random.default_rng(10).uniform(0.0, 1.0, size=3000)
    fine = bin_chunk(x, None, 0.0, 1.0 / 400, 401)
    np.testing.assert_allclose(
        fine.rebin(0.0, 1.0, 101), bin_chunk(x, None, 0.0, 0.01, 101).counts, atol=1e-10
    )
    shifted = fine.rebin(-0.0013, 1.0013, 101)  # off the nodes: mass kept, smoothed
    assert shifted.sum() == pytest.approx(3000.0, rel=1e-12)


def test_partial_fit_grid_stays_bounded_when_later_chunks_reach_far() -> None:
    # The first chunk's range sets the spacing; a later chunk 10^7 of those ranges away
    # used to need a 1.2 TiB grid (MemoryError). The grid is coarsened exactly instead.
    rng = np.random.default_rng(9)
    first, later = rng.uniform(0.1, 0.2, size=50), rng.uniform(0.0, 1e6, size=50)
    kde = BoundedKDE(bounds=(0, None), method="reflect")
    kde.partial_fit(first)
    kde.partial_fit(later)
    state = kde._stream
    assert state.counts.size <= MAX_GRID_SIZE
    assert state.counts.sum() == pytest.approx(100.0, rel=1e-12)
    direct = bin_chunk(
        np.concatenate([first, later]), None, state.grid_lo, state.step, state.counts.size
    )
    np.testing.assert_allclose(state.counts, direct.counts, rtol=1e-9, atol=1e-12)
    pts, dens = kde.grid()
    assert np.trapezoid(dens, pts) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "bounds",
    [(0.0, 1e6), (-1e6, 1.15), (-1e6, 1e6), (-1e300, 1.15), (-0.2, 1.2), (-1e6, None),
     (-1.0, 1.05), (-1e308, 1e308)],
)
def test_partial_fit_with_far_bounds_matches_fit(bounds: tuple[float, float | None]) -> None:
    # The fit lays out its grid as fit() does (a far bound is an open side until the
    # kernel reaches it); a stream used to stretch the grid to the bound (pdf 0.03
    # instead of 1 at 1e6), and (-1, 1.05) crashed on the first chunk.
    x = np.random.default_rng(7).uniform(size=5000)
    stream = BoundedKDE(bounds=bounds, method="linear-mbc")
    for chunk in np.split(x, 5):
        stream.partial_fit(chunk)
    one = BoundedKDE(bounds=bounds, method="linear-mbc").fit(x)
    pts = np.linspace(0.0, 1.0, 101)
    ref = one.pdf(pts)
    np.testing.assert_allclose(stream.pdf(pts), ref, rtol=0, atol=1e-4 * ref.max())
    assert stream.bandwidth_ == pytest.approx(one.bandwidth_, rel=1e-4)
    x_grid, _ = stream.grid(256)
    assert x_grid[0] > -1.01  # the grid spans the data, not the bounds
    assert x_grid[-1] < 2.0


@pytest.mark.parametrize("case", ["sorted", "narrow-first", "offset", "on-far-bound"])
def test_partial_fit_matches_fit_whatever_the_chunk_order(case: str) -> None:
    # Sorted chunks used to get the bandwidth of bounded uniform data (1.79 instead of
    # 0.063: the grid ended at the data with no padding); a narrow first chunk made the
    # fit raise "too wide"; grids far from 0 or reaching a far bound hit rounding errors.
    rng = np.random.default_rng(11)
    u = rng.uniform(size=3000)
    bounds, chunks = {
        "sorted": ((0.0, 1e6), list(np.split(np.sort(u), 10))),
        "narrow-first": ((0.0, 1.0), [np.array([0.5, 0.5001]), u]),
        "offset": ((1e12 - 1, 1e12 + 5), list(np.array_split(1e12 + u, 5))),
        "on-far-bound": ((1e6, 1e6 + 1), [1e6 + 0.5 + 0.1 * u, np.array([1e6, 1e6 + 0.3])]),
    }[case]
    stream = BoundedKDE(bounds=bounds, method="linear-mbc", grid_size=1024)
    for chunk in chunks:
        stream.partial_fit(chunk)
    allx = np.concatenate(chunks)
    one = BoundedKDE(bounds=bounds, method="linear-mbc", grid_size=1024).fit(allx)
    pts = np.linspace(allx.min(), allx.max(), 201)
    ref = one.pdf(pts)
    np.testing.assert_allclose(stream.pdf(pts), ref, rtol=0, atol=1e-3 * ref.max())
    assert stream.bandwidth_ == pytest.approx(one.bandwidth_, rel=1e-3)


def test_zero_weights_may_lie_outside_the_data_range() -> None:
    # Points with zero weight below the weighted data's range used to make binning fail
    # ("'list' argument must have no negative elements"), in fit, streams and Dask.
    u = np.random.default_rng(12).uniform(size=2000)
    w = (u > 0.5).astype(float)
    one = BoundedKDE(bounds=(0, 1), method="linear-mbc", grid_size=512).fit(u, w)
    ref = BoundedKDE(bounds=(0, 1), method="linear-mbc", grid_size=512).fit(u[u > 0.5])
    pts = np.linspace(0, 1, 101)
    peak = float(ref.pdf(pts).max())
    np.testing.assert_allclose(one.pdf(pts), ref.pdf(pts), rtol=0, atol=1e-9 * peak)
    stream = BoundedKDE(bounds=(0, 1), method="linear-mbc", grid_size=512)
    stream.partial_fit(u, w)  # 0 is a far bound here: storage re-binned onto the fit's grid
    np.testing.assert_allclose(stream.pdf(pts), ref.pdf(pts), rtol=0, atol=1e-5 * peak)


def test_a_failed_partial_fit_leaves_the_stream_as_it_was() -> None:
    u = np.random.default_rng(13).uniform(size=300)
    kde = BoundedKDE(bounds=(0, None), method="reflect", grid_size=256)
    kde.partial_fit(u[:100])
    before = kde.pdf([0.2, 0.5])
    kde.bandwidth = 1e4  # too wide for the binned grid: this chunk's fit fails
    with pytest.raises(ValueError, match="too wide"):
        kde.partial_fit(u[100:200])
    assert kde._stream.total_weight == 100.0  # the failed chunk was not merged
    assert kde.n_eff_ == 100.0
    np.testing.assert_array_equal(kde.pdf([0.2, 0.5]), before)


def test_partial_fit_accepts_a_single_value_after_the_first_chunk() -> None:
    kde = BoundedKDE(bounds=(0, 1), method="linear-mbc", grid_size=256)
    kde.partial_fit(np.random.default_rng(14).uniform(size=200))
    kde.partial_fit([0.25])
    assert kde.n_eff_ == 201.0
    with pytest.raises(ValueError, match="constant"):
        BoundedKDE(bounds=(0, 1)).partial_fit([0.25, 0.25])


def test_binned_data_addition_checks_grids() -> None:
    a = BinnedData(0.0, 0.1, np.ones(11), 1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="different grids"):
        _ = a + BinnedData(0.0, 0.2, np.ones(6), 1.0, 1.0, 0.0, 1.0)


def test_partial_fit_errors() -> None:
    kde = BoundedKDE(bounds=(0, 1), method="linear-mbc")
    with pytest.raises(ValueError, match="bounds"):
        kde.partial_fit(np.array([0.5, 1.5]))


@pytest.mark.parametrize("bounds", [(0.0, None), (0.0, 1.0)])
def test_stream_leaves_observations_on_a_bound_out_of_the_rule_as_fit_does(
    bounds: tuple[float, float | None],
) -> None:
    # 10 % of the data exactly on the lower bound: fit() leaves them out of the ISJ rule
    # (else ISJ resolves them as a spike); the stream records their weight per chunk.
    rng = np.random.default_rng(3)
    x = rng.exponential(size=2000) if bounds[1] is None else rng.beta(2.0, 3.0, size=2000)
    x[rng.permutation(2000)[:200]] = 0.0
    one = BoundedKDE(bounds=bounds, method="linear-mbc").fit(x)
    kde = BoundedKDE(bounds=bounds, method="linear-mbc")
    for chunk in np.array_split(x, 5):
        kde.partial_fit(chunk)
    assert kde.bandwidth_ == pytest.approx(one.bandwidth_, rel=1e-6)
    assert one.bandwidth_ > 0.01  # not the spike's bandwidth (1e-3 or less)
    pts = np.array([0.0, 0.3, 0.6])
    np.testing.assert_allclose(kde.pdf(pts), one.pdf(pts), rtol=1e-4)


def test_bin_chunk_records_the_weight_on_the_bounds() -> None:
    x = np.array([0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    w = np.array([1.0, 2.0, 1.0, 0.5, 0.5, 0.0])
    b = bin_chunk(x, w, 0.0, 0.25, 5, (0.0, 1.0))
    assert (b.on_lower, b.on_upper) == (3.0, 1.0)
    assert (b.off_weight, b.off_sum_w2, b.off_min, b.off_max) == (1.0, 1.0, 0.5, 0.5)
    both = b + bin_chunk(np.array([0.0, 0.25]), None, 0.0, 0.25, 5, (0.0, 1.0))
    assert (both.on_lower, both.on_upper, both.off_weight) == (4.0, 1.0, 2.0)
    assert (both.off_min, both.off_max) == (0.25, 0.5)
    assert bin_chunk(x, w, 0.0, 0.25, 5).on_lower == 0.0  # no bounds given: none recorded


def test_stream_keeps_atoms_in_the_rule_where_fit_does() -> None:
    # One distinct value off the bounds: fit() keeps the on-bound data in the rule (else
    # no spread is left); the stream must too, and a cancellation of separately rounded
    # sums (off weight 1e-16 instead of 0) must not divide by zero.
    x = np.array([0.0] * 10 + [0.5] * 10 + [1.0] * 5)
    one = BoundedKDE(bounds=(0, 1), method="linear-mbc", bandwidth="silverman").fit(x)
    kde = BoundedKDE(bounds=(0, 1), method="linear-mbc", bandwidth="silverman")
    for chunk in np.array_split(x, 2):
        kde.partial_fit(chunk)
    assert kde.bandwidth_ == pytest.approx(one.bandwidth_, rel=1e-9)
    w = np.array([0.1, 0.2, 0.3])
    x3 = np.array([0.0, 1.0, 1.0])
    kw = {"bounds": (0, 1), "method": "linear-mbc", "bandwidth": "silverman"}
    one = BoundedKDE(**kw).fit(x3, weights=w)
    kde = BoundedKDE(**kw).partial_fit(x3, weights=w)  # raised ZeroDivisionError
    assert kde.bandwidth_ == pytest.approx(one.bandwidth_, rel=1e-9)


dask = pytest.importorskip("dask")


def test_dask_array_equals_in_memory_fit() -> None:
    import dask.array as da

    x = np.random.default_rng(3).exponential(size=200_000)
    dx = da.from_array(x, chunks=30_000)
    kw = {"bounds": (0, None), "method": "linear-mbc", "grid_size": 4096}
    mem = BoundedKDE(**kw).fit(x)
    dist = BoundedKDE(**kw).fit(dx)
    pts = np.linspace(0, 10, 301)
    ref = mem.pdf(pts)
    np.testing.assert_allclose(dist.pdf(pts), ref, rtol=0, atol=1e-12 * ref.max())


@pytest.mark.parametrize(
    "bounds", [(0.0, 1e6), (-1e6, 1.15), (-1e300, 1e300), (-1e308, 1e308)]
)
def test_dask_with_far_bounds_equals_in_memory_fit(bounds: tuple[float, float]) -> None:
    import dask.array as da

    x = np.random.default_rng(8).uniform(size=20_000)
    kw = {"bounds": bounds, "method": "linear-mbc", "grid_size": 4096}
    mem = BoundedKDE(**kw).fit(x)
    dist = BoundedKDE(**kw).fit(da.from_array(x, chunks=6_000))
    pts = np.linspace(0, 1.15, 231)
    ref = mem.pdf(pts)
    assert ref.max() < 2.0  # not the stretched grid's spikes or flat 0.03
    np.testing.assert_allclose(dist.pdf(pts), ref, rtol=0, atol=1e-12 * ref.max())
    assert dist.bandwidth_ == pytest.approx(mem.bandwidth_, rel=1e-12)


def test_dask_nan_in_a_chunk_is_an_error_with_finite_bounds() -> None:
    # The NaN-marked chunk used to vanish in the pairwise sum (min/max drop NaN
    # depending on argument order): 500 points silently lost.
    import dask.array as da

    x = np.random.default_rng(15).uniform(size=2000)
    x[1200] = np.nan
    with pytest.raises(ValueError, match="finite"):
        BoundedKDE(bounds=(-1e6, 1e6), method="linear-mbc").fit(da.from_array(x, chunks=500))


def test_dask_dataframe_column_on_a_local_cluster(tmp_path: object) -> None:
    distributed = pytest.importorskip("distributed")
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    x = np.random.default_rng(4).beta(2, 5, size=50_000)
    frame = dd.from_pandas(pd.DataFrame({"share": x}), npartitions=5)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster),
    ):
        dist = BoundedKDE(bounds=(0, 1), method="reflect", grid_size=2048).fit(frame["share"])
    mem = BoundedKDE(bounds=(0, 1), method="reflect", grid_size=2048).fit(x)
    pts = np.linspace(0, 1, 101)
    np.testing.assert_allclose(dist.pdf(pts), mem.pdf(pts), rtol=1e-12, atol=1e-12)


def test_dask_out_of_bounds_and_nan_are_errors() -> None:
    import dask.array as da

    with pytest.raises(ValueError, match="bounds"):
        BoundedKDE(bounds=(0, 1), method="reflect").fit(da.from_array(np.array([0.5, 2.0])))
    with pytest.raises(ValueError, match="NaN"):
        BoundedKDE(bounds=(0, None), method="reflect").fit(
            da.from_array(np.array([0.5, np.nan]), chunks=1)
        )


def test_dask_leaves_observations_on_a_bound_out_of_the_rule_as_fit_does() -> None:
    import dask.array as da

    rng = np.random.default_rng(4)
    x = rng.exponential(size=3000)
    x[rng.permutation(3000)[:300]] = 0.0
    one = BoundedKDE(bounds=(0.0, None), method="linear-mbc").fit(x)
    kde = BoundedKDE(bounds=(0.0, None), method="linear-mbc").fit(da.from_array(x, chunks=700))
    assert kde.bandwidth_ == pytest.approx(one.bandwidth_, rel=1e-9)
    np.testing.assert_allclose(kde.pdf([0.0, 1.0]), one.pdf([0.0, 1.0]), rtol=1e-9)
