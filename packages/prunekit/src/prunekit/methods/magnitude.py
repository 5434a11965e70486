"""Magnitude pruning: remove the weights of smallest absolute value.

Score ``S_ij = |W_ij|`` (Han et al. 2015, "Learning both Weights and Connections for
Efficient Neural Networks"). Needs no calibration data. The SparseGPT and Wanda papers use
it layer-wise (``group="matrix"``) as their one-shot baseline.
"""

from __future__ import annotations

import torch

from prunekit.masks import NMPattern
from prunekit.methods._base import (
    LayerStatistics,
    MethodResult,
    apply_mask,
    check_weight,
    mask_from_scores,
)

__all__ = ["magnitude_prune"]


def magnitude_prune(
    weight: torch.Tensor,
    stats: LayerStatistics | None = None,
    *,
    sparsity: float = 0.5,
    pattern: NMPattern | None = None,
    group: str = "matrix",
    **_: object,
) -> MethodResult:
    """Prune the smallest-magnitude weights of one ``(out, in)`` matrix.

    Parameters
    ----------
    weight : torch.Tensor
        ``(out_features, in_features)`` weight; not modified.
    stats : LayerStatistics or None
        Unused (magnitude pruning needs no data); accepted for a uniform signature.
    sparsity : float
        Fraction pruned per comparison group (ignored when ``pattern`` is given).
    pattern : NMPattern or None
        Semi-structured N:M pattern, or None for unstructured.
    group : {"matrix", "row"}
        Comparison group for unstructured pruning.

    Returns
    -------
    MethodResult
        Pruned weight and mask (``True`` = pruned).

    Examples
    --------
    >>> r = magnitude_prune(torch.tensor([[1.0, -3.0], [0.5, 2.0]]), sparsity=0.5)
    >>> r.weight.tolist()
    [[1.0, -3.0], [0.0, 2.0]]
    """
    check_weight(weight)
    mask = mask_from_scores(weight.abs().float(), sparsity, pattern, group)
    return MethodResult(weight=apply_mask(weight, mask), mask=mask)
