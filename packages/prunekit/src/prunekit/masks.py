"""Exact-k pruning masks from importance scores.

All functions here are pure: they take a score tensor and return a boolean tensor of the
same shape that is ``True`` where a weight is **pruned** (set to zero). Weights are chosen
by index — exactly the first ``k`` of a stable sort — never by ``score <= threshold``:
with ties a threshold removes more than ``k`` weights (the reference SparseGPT code prunes
``k + 1`` when the threshold value repeats). Ties are broken towards the lower index, so
masks are deterministic.

Sparsity patterns:

* **unstructured**: ``k = floor(s · n)`` of the ``n`` weights of every comparison group are
  pruned, as in the Wanda and SparseGPT reference code. The comparison group is the whole
  matrix (``"matrix"``, the layer-wise magnitude baseline of Han et al. 2015 and of the
  SparseGPT paper) or one output row (``"row"``, Wanda's per-output group, Sun et al. 2023).
* **N:M** (semi-structured): in every row, every run of ``M`` consecutive input columns keeps
  at most ``N`` weights, i.e. exactly ``M − N`` are pruned (NVIDIA's 2:4 definition,
  Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = [
    "GROUPS",
    "NMPattern",
    "nm_mask",
    "num_pruned",
    "parse_pattern",
    "smallest_k_mask",
    "unstructured_mask",
]

#: Comparison groups for unstructured masks.
GROUPS: tuple[str, ...] = ("matrix", "row")

Group = Literal["matrix", "row"]

# floor(s * n) with a tolerance so that e.g. 0.3 * 10 = 2.9999999999999996 counts as 3.
_FLOOR_TOL = 1e-9


def num_pruned(n: int, sparsity: float) -> int:
    """Number of weights pruned from a group of ``n`` at ``sparsity``: ``floor(s · n)``.

    Parameters
    ----------
    n : int
        Group size.
    sparsity : float
        Fraction to prune, in ``[0, 1]``.

    Returns
    -------
    int
        ``k`` with ``0 <= k <= n``.

    Examples
    --------
    >>> num_pruned(10, 0.3)
    3
    >>> num_pruned(7, 0.5)
    3
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1]; got {sparsity!r}")
    return min(n, math.floor(sparsity * n + _FLOOR_TOL))


@dataclass(frozen=True)
class NMPattern:
    """Semi-structured N:M pattern: keep at most ``n`` of every ``m`` consecutive weights.

    Examples
    --------
    >>> parse_pattern("2:4")
    NMPattern(n=2, m=4)
    >>> NMPattern(2, 4).sparsity
    0.5
    """

    n: int
    m: int

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and isinstance(self.m, int)):
            raise TypeError(f"N:M pattern needs integers; got {self.n!r}:{self.m!r}")
        if not 1 <= self.n < self.m:
            raise ValueError(
                f"pattern N:M must satisfy 1 <= N < M (keep N of every M weights); "
                f"got {self.n}:{self.m}"
            )

    @property
    def sparsity(self) -> float:
        """Fraction of weights pruned, ``1 − N/M``."""
        return 1.0 - self.n / self.m

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"


_NM_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def parse_pattern(pattern: str) -> NMPattern | None:
    """Parse a sparsity pattern string.

    Parameters
    ----------
    pattern : str
        ``"unstructured"`` or ``"N:M"`` such as ``"2:4"`` or ``"4:8"``.

    Returns
    -------
    NMPattern or None
        None for ``"unstructured"``.

    Raises
    ------
    ValueError
        For any other string, or N:M with ``N >= M`` or ``N < 1``.
    """
    if pattern == "unstructured":
        return None
    match = _NM_RE.match(pattern) if isinstance(pattern, str) else None
    if match is None:
        raise ValueError(
            f"pattern must be 'unstructured' or 'N:M' with integers N < M (e.g. '2:4', '4:8'); "
            f"got {pattern!r}"
        )
    return NMPattern(int(match.group(1)), int(match.group(2)))


def smallest_k_mask(scores: torch.Tensor, k: int, dim: int = -1) -> torch.Tensor:
    """Mark the ``k`` smallest entries along ``dim`` (exactly ``k``, ties by lower index).

    Parameters
    ----------
    scores : torch.Tensor
        Importance scores; lower means less important.
    k : int
        How many entries to mark in every slice along ``dim``; ``0 <= k <= scores.shape[dim]``.
    dim : int
        Dimension along which to select.

    Returns
    -------
    torch.Tensor
        Boolean tensor shaped like ``scores``, exactly ``k`` ``True`` per slice.

    Examples
    --------
    >>> smallest_k_mask(torch.tensor([[1.0, 1.0, 1.0, 2.0]]), 2).tolist()
    [[True, True, False, False]]
    """
    size = scores.shape[dim]
    if not 0 <= k <= size:
        raise ValueError(f"k must be in [0, {size}]; got {k}")
    if k == 0:
        return torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    if k == size:
        return torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    # NaN scores count as +inf (pruned last) so that equality below is well defined.
    scores = torch.nan_to_num(scores, nan=float("inf"))
    # Selection in O(n) per slice: the k-th smallest value t, every score below t, then the
    # first (k − #below) scores equal to t by index. Same result as a stable argsort's first
    # k indices, measured 1.6-4x faster on CPU.
    kth = scores.kthvalue(k, dim=dim, keepdim=True).values
    below = scores < kth
    need = k - below.sum(dim=dim, keepdim=True)
    tied = scores == kth
    return below | (tied & (tied.cumsum(dim=dim) <= need))


def unstructured_mask(scores: torch.Tensor, sparsity: float, group: Group = "row") -> torch.Tensor:
    """Prune exactly ``floor(s · n)`` lowest-scoring weights of every comparison group.

    Parameters
    ----------
    scores : torch.Tensor
        ``(out_features, in_features)`` importance scores.
    sparsity : float
        Fraction to prune, in ``[0, 1)``.
    group : {"row", "matrix"}
        ``"row"``: each output row prunes ``floor(s · in)`` (Wanda's per-output group);
        ``"matrix"``: the matrix prunes ``floor(s · out · in)`` (layer-wise magnitude).

    Returns
    -------
    torch.Tensor
        Boolean ``(out, in)`` mask, ``True`` = pruned.

    Examples
    --------
    >>> unstructured_mask(torch.tensor([[3.0, 1.0], [0.5, 2.0]]), 0.5, "row").tolist()
    [[False, True], [True, False]]
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be a 2-D (out, in) tensor; got shape {tuple(scores.shape)}")
    if group == "row":
        return smallest_k_mask(scores, num_pruned(scores.shape[1], sparsity), dim=1)
    if group == "matrix":
        flat = scores.reshape(-1)
        return smallest_k_mask(flat, num_pruned(flat.numel(), sparsity), dim=0).view(scores.shape)
    raise ValueError(f"group must be one of {GROUPS}; got {group!r}")


def nm_mask(scores: torch.Tensor, pattern: NMPattern) -> torch.Tensor:
    """N:M mask: in every row and every ``M`` consecutive columns prune the ``M − N`` lowest.

    Parameters
    ----------
    scores : torch.Tensor
        ``(out_features, in_features)`` scores; ``in_features`` must be a multiple of ``M``.
    pattern : NMPattern
        Keep ``N`` of every ``M``.

    Returns
    -------
    torch.Tensor
        Boolean ``(out, in)`` mask, ``True`` = pruned.

    Raises
    ------
    ValueError
        If ``in_features`` is not a multiple of ``M``.

    Examples
    --------
    >>> nm_mask(torch.tensor([[4.0, 1.0, 3.0, 2.0]]), NMPattern(2, 4)).tolist()
    [[False, True, False, True]]
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be a 2-D (out, in) tensor; got shape {tuple(scores.shape)}")
    rows, cols = scores.shape
    if cols % pattern.m != 0:
        raise ValueError(
            f"pattern {pattern} needs in_features divisible by M={pattern.m}; got {cols}. "
            "Exclude this module with an ignore pattern or use an unstructured pattern."
        )
    groups = scores.reshape(rows, cols // pattern.m, pattern.m)
    return smallest_k_mask(groups, pattern.m - pattern.n, dim=2).view(rows, cols)
