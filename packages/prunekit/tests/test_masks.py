"""Exact-k masks: counts per comparison group (ties included), ordering, N:M in every group."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from prunekit.masks import (
    NMPattern,
    nm_mask,
    num_pruned,
    parse_pattern,
    smallest_k_mask,
    unstructured_mask,
)
from strategies import nm_patterns, score_matrices, sparsities


def _pruned_never_above_kept(scores: torch.Tensor, mask: torch.Tensor) -> bool:
    if mask.all() or not mask.any():
        return True
    return bool(scores[mask].max() <= scores[~mask].min())


@settings(max_examples=60, deadline=None)
@given(scores=score_matrices(), sparsity=sparsities)
def test_row_group_prunes_exactly_k_per_row_with_ties(
    scores: torch.Tensor, sparsity: float
) -> None:
    mask = unstructured_mask(scores, sparsity, "row")
    k = math.floor(sparsity * scores.shape[1] + 1e-9)
    assert mask.sum(dim=1).tolist() == [k] * scores.shape[0]
    for row in range(scores.shape[0]):
        assert _pruned_never_above_kept(scores[row], mask[row])


@settings(max_examples=60, deadline=None)
@given(scores=score_matrices(), sparsity=sparsities)
def test_matrix_group_prunes_exactly_k_with_ties(scores: torch.Tensor, sparsity: float) -> None:
    mask = unstructured_mask(scores, sparsity, "matrix")
    assert int(mask.sum()) == math.floor(sparsity * scores.numel() + 1e-9)
    assert _pruned_never_above_kept(scores, mask)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), nm=nm_patterns())
def test_nm_holds_in_every_group(data: st.DataObject, nm: tuple[int, int]) -> None:
    n, m = nm
    scores = data.draw(score_matrices(m=m, max_cols=4 * m))
    mask = nm_mask(scores, NMPattern(n, m))
    groups = mask.reshape(scores.shape[0], -1, m)
    assert (groups.sum(dim=2) == m - n).all()
    score_groups = scores.reshape(scores.shape[0], -1, m)
    for r in range(groups.shape[0]):
        for g in range(groups.shape[1]):
            assert _pruned_never_above_kept(score_groups[r, g], groups[r, g])


def test_all_tied_scores_prune_exactly_k_not_all() -> None:
    # A threshold rule (score <= k-th smallest) would prune all 8 equal weights.
    scores = torch.ones(2, 8)
    assert unstructured_mask(scores, 0.5, "row").sum(dim=1).tolist() == [4, 4]
    assert int(unstructured_mask(scores, 0.5, "matrix").sum()) == 8
    assert (nm_mask(scores, NMPattern(2, 4)).reshape(2, 2, 4).sum(-1) == 2).all()


def test_hand_computed_masks() -> None:
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0], [0.0, 5.0, 6.0, 7.0]])
    # Row group, 50%: row 0 prunes 1.0 and 2.0, row 1 prunes 0.0 and 5.0.
    assert unstructured_mask(scores, 0.5, "row").tolist() == [
        [False, True, False, True],
        [True, True, False, False],
    ]
    # Matrix group, 50%: the four smallest of all eight are 0, 1, 2, 3.
    assert unstructured_mask(scores, 0.5, "matrix").tolist() == [
        [False, True, True, True],
        [True, False, False, False],
    ]


def test_num_pruned_floors_with_float_tolerance() -> None:
    assert num_pruned(10, 0.3) == 3  # 0.3 * 10 = 2.9999999999999996 in floating point
    assert num_pruned(7, 0.5) == 3
    assert num_pruned(5, 0.0) == 0


@pytest.mark.parametrize("bad", ["4:2", "2:2", "0:4", "abc", "2-4", ""])
def test_parse_pattern_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match=r"N:M|pattern"):
        parse_pattern(bad)


def test_parse_pattern_accepts() -> None:
    assert parse_pattern("unstructured") is None
    assert parse_pattern("4:8") == NMPattern(4, 8)
    assert NMPattern(1, 4).sparsity == pytest.approx(0.75)


def test_nm_needs_divisible_columns() -> None:
    with pytest.raises(ValueError, match="divisible by M=4"):
        nm_mask(torch.ones(2, 6), NMPattern(2, 4))


@settings(max_examples=60, deadline=None)
@given(scores=score_matrices(), data=st.data())
def test_selection_equals_stable_argsort_oracle(scores: torch.Tensor, data: st.DataObject) -> None:
    # Oracle: the first k indices of a stable sort (ties broken towards the lower index).
    dim = data.draw(st.sampled_from([0, 1]))
    k = data.draw(st.integers(0, scores.shape[dim]))
    order = torch.argsort(scores, dim=dim, stable=True).narrow(dim, 0, k)
    expected = torch.zeros_like(scores, dtype=torch.bool).scatter_(dim, order, True)
    assert torch.equal(smallest_k_mask(scores, k, dim=dim), expected)
