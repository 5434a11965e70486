"""Every bad input raises a ValueError/TypeError that names the parameter."""

# ruff: noqa: E501  (one table row per message reads better than wrapped rows)

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from boundedkde import BoundedKDE, bounded_kde

X = np.random.default_rng(0).uniform(0.1, 0.9, size=50)


@pytest.mark.parametrize(
    ("kwargs", "x", "exc", "pattern"),
    [
        ({"bounds": (0, 1)}, np.array([0.5, 1.5]), ValueError, r"x has values outside bounds=\(0.0, 1.0\)"),
        ({"bounds": (0, None)}, np.array([-0.1, 2.0]), ValueError, r"x has values outside bounds"),
        ({"bounds": (None, 0)}, np.array([-1.0, 0.5]), ValueError, r"x has values outside bounds"),
        ({}, np.array([0.1, np.nan]), ValueError, r"x must contain only finite values"),
        ({}, np.array([0.1, np.inf]), ValueError, r"x must contain only finite values"),
        ({}, np.array([]), ValueError, r"x must not be empty; got 0 values"),
        ({}, np.full(10, 3.0), ValueError, r"x is constant"),
        ({}, np.zeros((10, 2, 2)), ValueError, r"x must be 1-D.*got shape \(10, 2, 2\)"),
        ({}, np.zeros((10, 3)), ValueError, r"covariance of x is singular"),
        ({}, "abc", TypeError, r"x must be an array of real numbers"),
        ({"bounds": (1, 0)}, X, ValueError, r"bounds of BoundedKDE must satisfy lower < upper; got \(1.0, 0.0\)"),
        ({"bounds": (0, 0)}, X, ValueError, r"bounds of BoundedKDE must satisfy lower < upper"),
        ({"bounds": (0, np.inf)}, X, ValueError, r"bounds of BoundedKDE: the upper bound must be finite"),
        ({"bounds": (0,)}, X, TypeError, r"bounds of BoundedKDE must be a pair"),
        ({"bounds": ("a", 1)}, X, TypeError, r"bounds of BoundedKDE: the lower bound must be a real"),
        ({"method": "mirror"}, X, ValueError, r"method of BoundedKDE must be one of .*'auto'.*'linear-mbc'.*got 'mirror'"),
        ({"kernel": "cosine"}, X, ValueError, r"kernel of BoundedKDE must be one of .*'gaussian'.*got 'cosine'"),
        ({"bandwidth": "lscv"}, X, ValueError, r"bandwidth of BoundedKDE must be one of .*'isj'.*got 'lscv'"),
        ({"bandwidth": -1.0}, X, ValueError, r"bandwidth of BoundedKDE must be a positive finite float"),
        ({"bandwidth": float("nan")}, X, ValueError, r"bandwidth of BoundedKDE must be a positive"),
        ({"bandwidth": [1.0]}, X, TypeError, r"bandwidth of BoundedKDE must be one of"),
        ({"grid_size": 4}, X, ValueError, r"grid_size of BoundedKDE must be between 16 and .*; got 4"),
        ({"grid_size": 2**26}, X, ValueError, r"grid_size of BoundedKDE must be between 16 and 2\*\*22"),
        ({"grid_size": 100.5}, X, TypeError, r"grid_size of BoundedKDE must be an integer"),
        ({"method": "transform"}, X, ValueError, r"method='transform' of BoundedKDE needs at least one finite bound"),
        ({"method": "transform", "bounds": (0, 1), "transform": "log"}, X, ValueError, r"transform='log' of BoundedKDE needs one finite bound"),
        ({"method": "transform", "bounds": (0, 1), "transform": "arcsin"}, X, ValueError, r"transform of BoundedKDE must be one of"),
        ({"method": "transform", "bounds": (0, 1)}, np.array([0.0, 0.5, 0.7]), ValueError, r"method='transform' needs x strictly inside bounds"),
    ],
)
def test_bad_input_messages(kwargs: dict[str, Any], x: Any, exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        BoundedKDE(**kwargs).fit(x)


@pytest.mark.parametrize(
    ("weights", "exc", "pattern"),
    [
        (-np.ones(50), ValueError, r"weights must be non-negative; got a minimum of -1.0"),
        (np.zeros(50), ValueError, r"weights must not all be zero"),
        (np.ones(49), ValueError, r"weights must have shape \(50,\) like x; got shape \(49,\)"),
        (np.full(50, np.nan), ValueError, r"weights must be finite"),
        ("heavy", TypeError, r"weights must be an array of non-negative numbers"),
    ],
)
def test_bad_weights(weights: Any, exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        BoundedKDE(bounds=(0, 1)).fit(X, weights=weights)


def test_constant_among_positive_weights_is_rejected() -> None:
    w = np.zeros(50)
    w[3] = 1.0
    with pytest.raises(ValueError, match="x is constant"):
        bounded_kde(X, bounds=(0, 1), weights=w)


def test_bad_bandwidth_callable_result() -> None:
    with pytest.raises(ValueError, match="bandwidth callable must return a positive float; got -2"):
        BoundedKDE(bandwidth=lambda x, w: -2).fit(X)


def test_evaluation_inputs_are_checked() -> None:
    kde = BoundedKDE(bounds=(0, 1)).fit(X)
    with pytest.raises(ValueError, match="x must not contain NaN"):
        kde.pdf([0.5, np.nan])
    with pytest.raises(ValueError, match=r"q must lie in \[0, 1\]; got values from 0.5 to 2.0"):
        kde.ppf([0.5, 2.0])
    with pytest.raises(ValueError, match="n must be a non-negative integer; got -1"):
        kde.sample(-1)
    with pytest.raises(ValueError, match="n of grid\\(\\) must be an integer of at least 2"):
        kde.grid(1)


def test_unfitted_estimator_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted yet"):
        BoundedKDE().pdf(0.0)
