"""Wanda: pruning by weights and activations (Sun, Liu, Bair, Kolter 2023).

Score ``S_ij = |W_ij| · ‖X_j‖₂`` where ``‖X_j‖₂`` is the L2 norm of input feature ``j`` over
all calibration tokens. The paper compares scores within each output row (``group="row"``,
its Section 3 "comparison group"), which it found better than layer-wise comparison for
LLMs; the group is a parameter here with that default. No weight update.

Optional refinement, DSnoT (Zhang et al. 2024, "Dynamic Sparse No Training: Training-Free
Fine-tuning for Sparse LLMs", ICLR; reference code github.com/zyxxmu/DSnoT): starting from
the Wanda mask of a row ``r``, the expected output error of the pruned row is
``ε_r = Σ_{j pruned} W_rj μ_j`` (``μ_j`` the mean of input ``j``). Each cycle swaps one pair:
it regrows the pruned weight that cancels most of ``ε_r`` per unit of input variance
(largest ``sign(ε_r) W_rj μ_j / σ_j²``) and prunes the kept weight of lowest Wanda score
among those whose ``W_rj μ_j`` has the sign opposite to ``ε_r`` (so removing it also shrinks
``ε_r``). A row stops when ``|ε_r|`` falls to the threshold or after ``cycles`` swaps. The
sparsity of every row is unchanged. Constants from the reference code's defaults:
50 cycles, threshold 0.1, variance power 1, no same-sign check.
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

__all__ = [
    "DSNOT_CYCLES",
    "DSNOT_THRESHOLD",
    "dsnot_refine",
    "wanda_prune",
    "wanda_scores",
]

#: DSnoT defaults (reference code: ``--max_cycle_time 50``, ``--update_threshold 0.1``).
DSNOT_CYCLES = 50
DSNOT_THRESHOLD = 0.1
#: Reference default ``--without_same_sign True``: a swap may flip the sign of ε.
DSNOT_SAME_SIGN = False


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
    dsnot: bool = False,
    dsnot_cycles: int = DSNOT_CYCLES,
    dsnot_threshold: float = DSNOT_THRESHOLD,
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
    dsnot : bool
        Refine the mask with DSnoT (unstructured, ``group="row"`` only; needs
        ``stats.input_sums``).
    dsnot_cycles, dsnot_threshold : int, float
        DSnoT's swap budget per row and error threshold.

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
    if dsnot and pattern is None:
        if group != "row":
            raise ValueError("DSnoT refines per-row masks; use group='row'")
        if stats.input_sums is None:
            raise ValueError("DSnoT needs input means (stats.input_sums)")
        mask = dsnot_refine(
            weight,
            mask,
            scores,
            stats.input_sums,
            stats.input_sq_norms,
            stats.nsamples,
            cycles=dsnot_cycles,
            threshold=dsnot_threshold,
            same_sign=DSNOT_SAME_SIGN,
        )
    return MethodResult(weight=apply_mask(weight, mask), mask=mask)


def dsnot_refine(
    weight: torch.Tensor,
    mask: torch.Tensor,
    scores: torch.Tensor,
    input_sums: torch.Tensor,
    input_sq_norms: torch.Tensor,
    count: int,
    *,
    cycles: int = DSNOT_CYCLES,
    threshold: float = DSNOT_THRESHOLD,
    same_sign: bool = False,
) -> torch.Tensor:
    """DSnoT prune-and-grow refinement of a per-row mask (see the module docstring).

    Parameters
    ----------
    weight : torch.Tensor
        ``(out, in)`` dense weight.
    mask : torch.Tensor
        Boolean ``(out, in)`` initial mask (``True`` = pruned), the same count in every row.
    scores : torch.Tensor
        ``(out, in)`` Wanda scores (the pruning order among candidates).
    input_sums, input_sq_norms : torch.Tensor
        ``(in,)`` sums of inputs and of squared inputs over ``count`` tokens.
    count : int
        Number of calibration tokens.
    cycles : int
        At most this many swaps per row.
    threshold : float
        Rows whose expected error ``|ε|`` is at most this stop.
    same_sign : bool
        Also stop a row when a swap would flip the sign of ``ε`` (the reference code's
        optional check; then ``|ε|`` never grows).

    Returns
    -------
    torch.Tensor
        New boolean mask with the same number of pruned weights in every row.
    """
    rows, cols = weight.shape
    mask = mask.clone()
    if count <= 0 or rows == 0:
        return mask
    w = weight.detach().float()
    mean = input_sums.float() / count
    var = (input_sq_norms.float() / count - mean.square()).clamp_min(1e-12)
    contrib = w * mean.unsqueeze(0)  # W_rj μ_j: expected contribution of weight (r, j)
    error = (contrib * mask).sum(dim=1)  # ε_r = Σ_{pruned} W_rj μ_j
    pruned_count = int(mask[0].sum()) if rows else 0
    steps = min(cycles, pruned_count, cols - pruned_count)
    if steps <= 0:
        return mask
    arange = torch.arange(rows, device=w.device)
    # Regrowth order: pruned weights by W μ / σ² ascending (kept ones parked at 0).
    grow_key = torch.where(mask, contrib / var.unsqueeze(0), torch.zeros_like(contrib))
    grow_order = torch.sort(grow_key, dim=1, stable=True).indices
    # Pruning order over kept weights: negative contributions by ascending Wanda score,
    # then positive ones by descending score (so both ends hold the lowest scores).
    big = float(scores.max()) + 1.0 if scores.numel() else 1.0
    kept_scores = torch.where(mask, torch.full_like(scores, 3 * big), scores.float())
    neg_key = torch.where(contrib < 0, kept_scores, kept_scores + big)
    neg_key = torch.where(mask, torch.full_like(neg_key, 3 * big), neg_key)
    # Ascending: negatives (key < big) by score, then positives (big..2big) by score; flip the
    # positive block so its lowest scores sit at the end of the kept range.
    order = torch.sort(neg_key, dim=1, stable=True).indices
    kept = cols - pruned_count
    order_kept = order[:, :kept]
    negatives = (contrib.gather(1, order_kept) < 0).sum(dim=1)
    position = torch.arange(kept, device=w.device).unsqueeze(0).expand(rows, kept)
    flipped = torch.where(
        position >= negatives.unsqueeze(1),
        (kept - 1) - (position - negatives.unsqueeze(1)),
        position,
    )
    prune_order = order_kept.gather(1, flipped)
    grow_lo = torch.zeros(rows, dtype=torch.long, device=w.device)
    grow_hi = torch.full((rows,), cols - 1, dtype=torch.long, device=w.device)
    prune_lo = torch.zeros(rows, dtype=torch.long, device=w.device)
    prune_hi = torch.full((rows,), kept - 1, dtype=torch.long, device=w.device)
    active = torch.ones(rows, dtype=torch.bool, device=w.device)
    for _ in range(steps):
        active &= error.abs() > threshold
        if not bool(active.any()):
            break
        positive = error > 0
        grow_pos = torch.where(positive, grow_hi, grow_lo)
        grow_idx = grow_order[arange, grow_pos]
        prune_pos = torch.where(positive, prune_lo, prune_hi)
        prune_idx = prune_order[arange, prune_pos]
        grow_c = contrib[arange, grow_idx]
        prune_c = contrib[arange, prune_idx]
        # Only swaps that move ε towards zero from both sides, on weights of the right state.
        sign = torch.where(positive, 1.0, -1.0)
        valid = (
            active
            & mask[arange, grow_idx]
            & ~mask[arange, prune_idx]
            & (grow_c * sign > 0)
            & (prune_c * sign <= 0)
        )
        if same_sign:
            valid &= (error - grow_c + prune_c) * sign > 0
        active &= valid
        mask[arange[valid], grow_idx[valid]] = False
        mask[arange[valid], prune_idx[valid]] = True
        error = torch.where(valid, error - grow_c + prune_c, error)
        grow_hi = torch.where(positive, grow_hi - 1, grow_hi)
        grow_lo = torch.where(positive, grow_lo, grow_lo + 1)
        prune_lo = torch.where(positive, prune_lo + 1, prune_lo)
        prune_hi = torch.where(positive, prune_hi, prune_hi - 1)
    return mask
