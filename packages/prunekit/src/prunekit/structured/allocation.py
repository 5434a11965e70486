"""How many heads and channels each layer keeps, and which ones.

Allocation is **uniform**: every decoder block keeps the same number of query heads,
key/value heads and MLP channels, so the pruned model is described by the stock config
fields (``num_attention_heads``, ``num_key_value_heads``, ``intermediate_size``) and reloads
with plain ``from_pretrained``.

Realizable head counts under grouped-query attention
----------------------------------------------------
With ``K`` key/value heads each shared by ``G`` query heads, a uniform config can only
describe ``K' * G'`` query heads: ``K' <= K`` key/value heads kept, each with ``G' <= G``
of its query heads (the attention code repeats every key/value head ``G'`` times). The
removal ratio ``r`` asks for ``H (1 - r)`` query heads; we keep the realizable count
nearest to it, and on a tie keep more key/value heads (dropping a key/value head also
drops every query head that reads it, a coarser cut than dropping query heads inside
groups). Without GQA (``G = 1``) this is simply ``round(H (1 - r))`` heads. Rounding is
half-up. A ratio whose target rounds to zero heads or channels is an error: it would
remove the whole layer.

Selection is exact-k by index (``argsort``), ties broken towards the lower index, never by
a threshold (ties would over-prune).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from prunekit.structured.groups import AttentionGeometry

__all__ = [
    "HeadAllocation",
    "LayerPlan",
    "allocate_channels",
    "allocate_heads",
    "select_channels",
    "select_heads",
    "top_k_indices",
]


@dataclass(frozen=True)
class HeadAllocation:
    """Heads kept per layer: ``kv_heads`` groups with ``per_group`` query heads each."""

    kv_heads: int
    per_group: int

    @property
    def heads(self) -> int:
        """Query heads kept per layer."""
        return self.kv_heads * self.per_group


@dataclass(frozen=True)
class LayerPlan:
    """Indices (sorted, int64) of what one decoder block keeps.

    ``heads`` are original query-head indices, ordered by key/value group so that new head
    ``i`` reads new key/value head ``i // per_group``; ``kv_heads`` original key/value
    head indices; ``channels`` original MLP channel indices.
    """

    heads: torch.Tensor
    kv_heads: torch.Tensor
    channels: torch.Tensor


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _check_ratio(ratio: float) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise TypeError(f"ratio must be a float in [0, 1); got {type(ratio).__name__}")
    if not (0.0 <= float(ratio) < 1.0) or math.isnan(ratio):
        raise ValueError(f"ratio must be in [0, 1); got {ratio!r}")


def allocate_heads(geometry: AttentionGeometry, ratio: float) -> HeadAllocation:
    """Uniform per-layer head allocation for removal ratio ``ratio``.

    Parameters
    ----------
    geometry : AttentionGeometry
        Head counts of one layer.
    ratio : float
        Fraction of query heads to remove, in ``[0, 1)``.

    Returns
    -------
    HeadAllocation
        The realizable ``(K', G')`` with ``K' G'`` nearest to ``H (1 - ratio)``; ties keep
        more key/value heads.

    Raises
    ------
    ValueError
        If ``ratio`` is outside ``[0, 1)`` or ``H (1 - ratio)`` rounds to zero heads.

    Examples
    --------
    SmolLM2-135M has 9 query heads in 3 groups of 3; both 20 % and 40 % map to 6 heads:

    >>> allocate_heads(AttentionGeometry(9, 3, 64), 0.2)
    HeadAllocation(kv_heads=3, per_group=2)
    >>> allocate_heads(AttentionGeometry(12, 12, 64), 0.25).heads
    9
    """
    _check_ratio(ratio)
    target = geometry.num_heads * (1.0 - float(ratio))
    if _round_half_up(target) == 0:
        raise ValueError(
            f"ratio={ratio} would remove every attention head of a layer "
            f"({geometry.num_heads} heads; at most {geometry.num_heads - 1} can go); "
            "use a smaller ratio"
        )
    best: tuple[float, int, HeadAllocation] | None = None
    for kv in range(1, geometry.num_kv_heads + 1):
        for per_group in range(1, geometry.group_size + 1):
            cand = HeadAllocation(kv_heads=kv, per_group=per_group)
            key = (abs(cand.heads - target), -kv)
            if best is None or key < (best[0], best[1]):
                best = (key[0], key[1], cand)
    assert best is not None  # the loops always run at least once
    return best[2]


def allocate_channels(size: int, ratio: float, multiple: int = 1) -> int:
    """MLP channels kept per layer: ``size (1 - ratio)`` rounded to a multiple (half-up).

    ``multiple`` > 1 rounds the kept count to the nearest multiple of it (half-up), never
    above ``size`` (then the largest multiple below it) and never below ``multiple``. Matrix
    kernels block their dimensions: on the 2-core AVX2 machine of our benchmark a SmolLM2
    MLP with 928 channels ran at 49-50 GFLOP/s and one with 922 (= 2 x 461) at 37-42, so
    a multiple of 32 turned 40 % fewer FLOPs into 45 % less time instead of 31-35 % (see
    ``docs/prunekit/structured.md``). The removed fraction then differs from ``ratio`` by
    less than ``multiple / (2 size)``; the report records the counts.

    Parameters
    ----------
    size : int
        MLP intermediate size.
    ratio : float
        Fraction of channels to remove, in ``[0, 1)``.
    multiple : int
        Kept count granularity (1: exactly ``round(size (1 - ratio))``).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``ratio`` is outside ``[0, 1)``, ``multiple`` is not a positive integer or (with
        ``ratio > 0``) not below ``size``, or the result is zero channels.

    Examples
    --------
    >>> allocate_channels(1536, 0.2)
    1229
    >>> allocate_channels(1536, 0.4, multiple=32)
    928
    """
    _check_ratio(ratio)
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple (channel_multiple) must be an integer >= 1; got {multiple!r}")
    if multiple > 1 and multiple >= size and ratio > 0:
        raise ValueError(
            f"channel_multiple={multiple} must be below the MLP width ({size} channels): a "
            "kept count that is a multiple of it cannot be smaller than the width, so nothing "
            "would be pruned; use a smaller multiple (1, 8, 32)"
        )
    exact = size * (1.0 - float(ratio))
    if multiple == 1:
        keep = _round_half_up(exact)
    else:
        keep = multiple * _round_half_up(exact / multiple)
        if keep > size:
            keep = multiple * (size // multiple)
        keep = max(keep, min(multiple, size))
    if keep == 0:
        raise ValueError(
            f"ratio={ratio} would remove every MLP channel of a layer ({size} channels); "
            "use a smaller ratio"
        )
    return keep


def top_k_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Sorted indices of the ``k`` largest scores; ties go to the lower index.

    Exact-k by index, so equal scores never make more or fewer than ``k`` survive.

    Examples
    --------
    >>> top_k_indices(torch.tensor([1.0, 3.0, 3.0, 0.0]), 2)
    tensor([1, 2])
    >>> top_k_indices(torch.tensor([2.0, 2.0, 2.0]), 1)
    tensor([0])
    """
    if not 0 <= k <= scores.numel():
        raise ValueError(f"k must be in [0, {scores.numel()}]; got {k}")
    order = torch.argsort(-scores.detach().double().flatten(), stable=True)
    return torch.sort(order[:k]).values


def select_heads(
    head_scores: torch.Tensor,
    kv_scores: torch.Tensor,
    geometry: AttentionGeometry,
    allocation: HeadAllocation,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose the query and key/value heads one layer keeps.

    A key/value group's score is its own key/value score plus the scores of all its query
    heads (removing the group removes them all); the ``K'`` best groups stay, and inside
    each the ``G'`` best query heads.

    Parameters
    ----------
    head_scores : torch.Tensor
        ``[num_heads]`` importance of each query head (higher = keep).
    kv_scores : torch.Tensor
        ``[num_kv_heads]`` importance of the key/value part of each group.
    geometry : AttentionGeometry
    allocation : HeadAllocation

    Returns
    -------
    (heads, kv_heads) : tuple of torch.Tensor
        Kept query heads (ordered by group) and kept key/value heads, both sorted int64.
    """
    group = geometry.group_size
    if head_scores.shape != (geometry.num_heads,) or kv_scores.shape != (geometry.num_kv_heads,):
        raise ValueError(
            f"head_scores must have shape ({geometry.num_heads},) and kv_scores "
            f"({geometry.num_kv_heads},); got {tuple(head_scores.shape)} and "
            f"{tuple(kv_scores.shape)}"
        )
    per_head = head_scores.detach().double().view(geometry.num_kv_heads, group)
    group_scores = kv_scores.detach().double() + per_head.sum(dim=1)
    kept_kv = top_k_indices(group_scores, allocation.kv_heads)
    heads = []
    for j in kept_kv.tolist():
        inner = top_k_indices(per_head[j], allocation.per_group)
        heads.append(inner + j * group)
    return torch.cat(heads), kept_kv


def select_channels(channel_scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Sorted indices of the ``keep`` most important MLP channels."""
    return top_k_indices(channel_scores, keep)
