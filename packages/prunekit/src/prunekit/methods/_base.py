"""Types shared by the pruning methods: what a method needs and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from prunekit.masks import NMPattern

__all__ = ["LayerStatistics", "MethodResult", "PruningMethod", "Statistic"]

#: Which calibration statistic a method needs from the inputs of a layer.
Statistic = Literal["none", "input_norms", "hessian"]


@dataclass(frozen=True)
class LayerStatistics:
    """Calibration statistics of one linear layer's inputs ``X`` (``n`` rows of width ``in``).

    Attributes
    ----------
    nsamples : int
        Number of input rows (tokens) seen.
    input_sq_norms : torch.Tensor or None
        ``(in,)`` float32, ``Σ_t x_tj²`` over all tokens (Wanda's ``‖X_j‖₂²``).
    hessian : torch.Tensor or None
        ``(in, in)`` float32, ``H = 2 XᵀX / n`` (SparseGPT's layer-wise Hessian).
    input_sums : torch.Tensor or None
        ``(in,)`` float32, ``Σ_t x_tj`` (with ``input_sq_norms``: the mean and variance of
        each input feature, used by DSnoT).
    cross : torch.Tensor or None
        ``(in, in)`` float32, ``2 X̃ᵀX / n`` with ``X̃`` the inputs the *dense* model gives
        the layer on the same tokens (asymmetric calibration); None when not collected.
    """

    nsamples: int
    input_sq_norms: torch.Tensor | None = None
    hessian: torch.Tensor | None = None
    input_sums: torch.Tensor | None = None
    cross: torch.Tensor | None = None


@dataclass(frozen=True)
class MethodResult:
    """Outcome of pruning one weight matrix.

    Attributes
    ----------
    weight : torch.Tensor
        New ``(out, in)`` weight, zero wherever ``mask`` is true (SparseGPT also updates the
        weights it keeps).
    mask : torch.Tensor
        Boolean ``(out, in)``, ``True`` where the weight was pruned.
    """

    weight: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class PruningMethod:
    """A registered pruning method.

    Attributes
    ----------
    name : str
        Registry key.
    statistic : {"none", "input_norms", "hessian"}
        What the engine must collect from calibration inputs for this method.
    run : callable
        ``run(weight, stats, sparsity=..., pattern=..., group=..., percdamp=..., blocksize=...)
        -> MethodResult`` with ``weight`` as ``(out, in)``.
    summary : str
        One line for help texts and docs.
    """

    name: str
    statistic: Statistic
    run: Callable[..., MethodResult]
    summary: str


def apply_mask(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return a copy of ``weight`` with the masked (pruned) entries set to zero."""
    return weight.masked_fill(mask, 0.0)


def check_weight(weight: torch.Tensor) -> None:
    """Raise ValueError unless ``weight`` is a 2-D floating tensor."""
    if weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(
            f"weight must be a 2-D floating (out, in) tensor; got shape {tuple(weight.shape)} "
            f"dtype {weight.dtype}"
        )


def mask_from_scores(
    scores: torch.Tensor, sparsity: float, pattern: NMPattern | None, group: str
) -> torch.Tensor:
    """Dispatch to :func:`~prunekit.masks.nm_mask` or :func:`~prunekit.masks.unstructured_mask`."""
    from prunekit.masks import nm_mask, unstructured_mask

    if pattern is not None:
        return nm_mask(scores, pattern)
    if group not in ("row", "matrix"):
        raise ValueError(f"group must be 'row' or 'matrix'; got {group!r}")
    return unstructured_mask(scores, sparsity, "row" if group == "row" else "matrix")
