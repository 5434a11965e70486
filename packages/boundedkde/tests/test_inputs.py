"""Inputs: lists, pandas and polars Series/DataFrames; missing values need nan_policy='omit'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from boundedkde import BoundedKDE

X = np.random.default_rng(0).exponential(size=400)
PTS = np.linspace(0, 6, 61)


def _ref() -> np.ndarray:
    return BoundedKDE(bounds=(0, None)).fit(X).pdf(PTS)


@pytest.mark.parametrize(
    "make",
    [list, pd.Series, lambda a: pd.DataFrame({"x": a}), lambda a: pd.Series(a, dtype="Float64")],
)
def test_containers_give_the_numpy_result(make: object) -> None:
    got = BoundedKDE(bounds=(0, None)).fit(make(X)).pdf(PTS)  # type: ignore[operator]
    np.testing.assert_array_equal(got, _ref())


def test_polars_series() -> None:
    pl = pytest.importorskip("polars")
    got = BoundedKDE(bounds=(0, None)).fit(pl.Series("x", X)).pdf(PTS)
    np.testing.assert_array_equal(got, _ref())


def test_missing_values_refused_then_omitted() -> None:
    with_na = pd.Series(np.append(X, np.nan), dtype="Float64")
    with_na.iloc[-1] = pd.NA
    with pytest.raises(ValueError, match="nan_policy='omit'"):
        BoundedKDE(bounds=(0, None)).fit(with_na)
    got = BoundedKDE(bounds=(0, None), nan_policy="omit").fit(with_na).pdf(PTS)
    np.testing.assert_array_equal(got, _ref())
    w = np.append(np.ones(400), 5.0)
    kde = BoundedKDE(bounds=(0, None), nan_policy="omit").fit(with_na, weights=w)
    assert kde.n_eff_ == pytest.approx(400.0)  # the weight of the dropped row went with it


def test_polars_nulls_and_bad_policy_and_text() -> None:
    pl = pytest.importorskip("polars")
    s = pl.Series("x", [*X.tolist(), None])
    with pytest.raises(ValueError, match="missing value"):
        BoundedKDE(bounds=(0, None)).fit(s)
    assert BoundedKDE(bounds=(0, None), nan_policy="omit").fit(s).n_eff_ == pytest.approx(400)
    with pytest.raises(ValueError, match="nan_policy must be one of"):
        BoundedKDE(bounds=(0, None), nan_policy="drop").fit(X)
    with pytest.raises(TypeError, match="x must be an array of real numbers"):
        BoundedKDE(bounds=(0, None)).fit(pd.Series(["a", "b"]))


def test_dataframe_with_two_columns_is_2d() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.exponential(size=500), "b": rng.uniform(size=500)})
    kde = BoundedKDE(bounds=[(0, None), (0, 1)], method="reflect").fit(frame)
    assert kde.d_ == 2
