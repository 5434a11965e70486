"""Wanda: pruning by weights and activations (Sun, Liu, Bair, Kolter 2023).

Score ``S_ij = |W_ij| · ‖X_j‖₂`` where ``‖X_j‖₂`` is the L2 norm of input feature ``j`` over
all calibration tokens. The paper compares scores within each output row (``group="row"``,
its Section 3 "comparison group"), which it found better than layer-wise comparison for
LLMs; the group is a parameter here with that default. No weight update.
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

__all__ = ["wanda_prune", "wanda_scores"]


def wanda_scores(weight: torch.Tensor, input_sq_norms: torch.Tensor) -> torch.Tensor:
    """Wanda importance ``|W_ij| · sqrt(Σ_t x_tj²)`` as a float32 ``(out, in)`` tensor.

    Parameters
    ----------
    weight : torch.Tensor
        ``(out, in)`` weight.
    input_sq_norms : torch.Tensor
        ``(in,)`` sums of squared inputs per feature.

    Examples
    --------
    >>> wanda_scores(torch.tensor([[1.0, -2.0]]), torch.tensor([9.0, 1.0])).tolist()
    [[3.0, 2.0]]
    """
    check_weight(weight)
    if input_sq_norms.shape != (weight.shape[1],):
        raise ValueError(
            f"input_sq_norms must have shape (in_features,) = ({weight.shape[1]},); "
            f"got {tuple(input_sq_norms.shape)}"
        )
    norms = input_sq_norms.float().clamp_min(0.0).sqrt()
    return weight.abs().float() * norms.unsqueeze(0)


def wanda_prune(
    weight: torch.Tensor,
    stats: LayerStatistics,
    *,
    sparsity: float = 0.5,
    pattern: NMPattern | None = None,
    group: str = "row",
    **_: object,
) -> MethodResult:
    """Prune one ``(out, in)`` matrix by the Wanda score.

    Parameters
    ----------
    weight : torch.Tensor
        ``(out_features, in_features)`` weight; not modified.
    stats : LayerStatistics
        Must carry ``input_sq_norms``.
    sparsity : float
        Fraction pruned per comparison group (ignored when ``pattern`` is given).
    pattern : NMPattern or None
        Semi-structured N:M pattern (``M − N`` lowest scores of every ``M`` columns per row).
    group : {"row", "matrix"}
        Comparison group for unstructured pruning; ``"row"`` is the paper's choice.

    Returns
    -------
    MethodResult

    Examples
    --------
    >>> stats = LayerStatistics(nsamples=1, input_sq_norms=torch.tensor([100.0, 1.0]))
    >>> wanda_prune(torch.tensor([[1.0, 2.0]]), stats, sparsity=0.5).mask.tolist()
    [[False, True]]
    """
    if stats is None or stats.input_sq_norms is None:
        raise ValueError("wanda needs input norms from calibration data (stats.input_sq_norms)")
    scores = wanda_scores(weight, stats.input_sq_norms)
    mask = mask_from_scores(scores, sparsity, pattern, group)
    return MethodResult(weight=apply_mask(weight, mask), mask=mask)
