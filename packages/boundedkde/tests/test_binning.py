"""Linear binning: exact mass and first moment, additivity, integer weights."""

from __future__ import annotations

import numpy as np
from boundedkde.binning import grid_nodes, linear_binning, nearest_binning
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import samples_in_bounds, split_points


def test_hand_computed_case() -> None:
    # 0.25 on nodes {0, 0.5, 1}: t = 0.5 in cell 0 -> 0.5 / 0.5; 1.0 lands on the last node.
    c = linear_binning([0.25, 1.0], None, 0.0, 1.0, 3)
    np.testing.assert_allclose(c, [0.5, 0.5, 1.0])


@settings(max_examples=40, deadline=None)
@given(samples_in_bounds((0.0, 1.0)), st.integers(2, 300))
def test_mass_and_first_moment_are_exact(x: np.ndarray, n: int) -> None:
    c = linear_binning(x, None, 0.0, 1.0, n)
    assert c.min() >= -1e-12
    np.testing.assert_allclose(c.sum(), x.size, rtol=1e-12)
    np.testing.assert_allclose(np.dot(c, grid_nodes(0.0, 1.0, n)), x.sum(), rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_additive_over_splits(data: st.DataObject) -> None:
    x = data.draw(samples_in_bounds((0.0, 1.0), min_size=4))
    w = data.draw(st.lists(st.floats(0, 5), min_size=x.size, max_size=x.size)).copy()
    w = np.asarray(w)
    k = data.draw(split_points(x.size))
    whole = linear_binning(x, w, 0.0, 1.0, 64)
    parts = linear_binning(x[:k], w[:k], 0.0, 1.0, 64) + linear_binning(x[k:], w[k:], 0.0, 1.0, 64)
    np.testing.assert_allclose(whole, parts, atol=1e-12)


def test_integer_weights_equal_repeated_data() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(size=50)
    w = rng.integers(0, 4, size=50)
    rep = np.repeat(x, w)
    np.testing.assert_allclose(
        linear_binning(x, w.astype(float), 0.0, 1.0, 33), linear_binning(rep, None, 0.0, 1.0, 33),
        atol=1e-12,
    )


@settings(max_examples=40, deadline=None)
@given(samples_in_bounds((0.0, 1.0)), st.integers(2, 300))
def test_nearest_binning_puts_each_point_on_its_nearest_node(x: np.ndarray, n: int) -> None:
    # Oracle: brute-force argmin of |x - node| (ties at exact midpoints may go either way).
    nodes = grid_nodes(0.0, 1.0, n)
    dist = np.abs(x[:, None] - nodes[None, :])
    nearest = np.argmin(dist, axis=1)
    tie = np.sort(dist, axis=1)[:, :2]
    clear = tie[:, 1] - tie[:, 0] > 1e-9
    expected = np.bincount(nearest[clear], minlength=n)
    got_clear = nearest_binning(x[clear], None, 0.0, 1.0, n)
    np.testing.assert_array_equal(got_clear, expected)
    w = np.linspace(0.5, 2.0, x.size)
    np.testing.assert_allclose(nearest_binning(x, w, 0.0, 1.0, n).sum(), w.sum(), rtol=1e-12)
