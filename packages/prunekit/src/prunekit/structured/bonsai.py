"""Bonsai: forward-only perturbative importance estimation (Dery et al. 2024).

"Everybody Prune Now: Structured Pruning of LLMs with only Forward Passes" estimates the
importance of each structural unit without gradients:

1. sample many sub-models by masking a random subset of units in every layer;
2. measure each sub-model's calibration loss with a forward pass;
3. regress the losses on the masks; a unit's coefficient estimates how much the loss rises
   when it is dropped;
4. prune the least important units, and repeat for several rounds on the pruned model.

As in the paper (and its reference code), an activation-magnitude prior focuses the
sampling: in every layer only the ``2 q`` lowest-prior surviving units are *candidates*
(the factor 2 is :attr:`BonsaiOptions.candidates`)
(``q`` = units the round removes, the rest are kept fixed), each sub-model drops ``q`` of
them, and the regression is centred on the prior. Here the prior is the Wanda-sp
activation score of :mod:`prunekit.structured.scores`.

The regression (:func:`fit_importances`) is ridge regression shrunk towards the prior,
``beta = s * prior + delta`` with the prior's scale ``s`` fitted by least squares (one
scale per unit kind, clipped at 0) and ``delta`` a ridge solution whose penalty is chosen
by exact leave-one-out cross-validation over a log grid (a standard closed form for
kernel ridge regression; Hastie, Tibshirani & Friedman, *Elements of Statistical
Learning*, §7.10). When the samples carry no information the fit falls back to the
prior; the paper instead fits the linear model by Adam with a hyper-parameter search on
held-out Kendall tau, which the closed form replaces.

Attention heads are removed in the last round only (they are few, and the grouped-query
structure of :func:`prunekit.structured.allocation.allocate_heads` is decided once);
MLP channels are removed in equal steps over the rounds.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from prunekit.adapters import ModelAdapter
from prunekit.structured.allocation import HeadAllocation
from prunekit.structured.groups import (
    AttentionGeometry,
    attention_geometry,
    decoder_layers,
    intermediate_size,
    layer_modules,
)
from prunekit.structured.scores import LayerScores, activation_scores, calibration_loss

__all__ = [
    "BonsaiOptions",
    "bonsai_scores",
    "fit_importances",
    "sample_drops",
    "unit_masks",
]

logger = logging.getLogger(__name__)

#: log10 offsets of the ridge penalty grid, relative to the mean diagonal of ``X Xᵀ``.
_LAMBDA_GRID = tuple(x / 2 for x in range(-8, 9))


@dataclass(frozen=True)
class BonsaiOptions:
    """Settings of the Bonsai estimator.

    Parameters
    ----------
    rounds : int, default 2
        Pruning rounds (the paper prunes in several iterations; more rounds re-estimate
        importances on the partly pruned model at the cost of more forward passes).
    samples : int, default 32
        Sub-models evaluated per round (the paper uses hundreds on 7B models; each one is
        a forward pass, the dominant cost).
    eval_sequences : int, default 2
        Calibration sequences each sub-model is evaluated on. All sub-models of a round
        share the same sequences (common random numbers, as the paper's fixed seed per
        round), so loss differences reflect the masks, not the data.
    seed : int, default 0
        Seed of mask sampling.
    candidates : float, default 2.0
        Size of each layer's candidate pool as a multiple of the units the round removes
        (the lowest-prior ones; the rest stay fixed). 2 is the reference implementation's
        choice; a larger pool lets the regression overrule the prior more, at the cost of
        more unknowns per sample.
    """

    rounds: int = 2
    samples: int = 32
    eval_sequences: int = 2
    seed: int = 0
    candidates: float = 2.0

    def __post_init__(self) -> None:
        for name in ("rounds", "samples", "eval_sequences"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BonsaiOptions.{name} must be an int >= 1; got {value!r}")
        if not (isinstance(self.candidates, (int, float)) and self.candidates >= 1.0):
            raise ValueError(
                f"BonsaiOptions.candidates must be a number >= 1; got {self.candidates!r}"
            )
        if self.samples < 4:
            raise ValueError(f"BonsaiOptions.samples must be >= 4 for a fit; got {self.samples}")


def sample_drops(
    candidates: list[torch.Tensor],
    n_drop: list[int],
    n_units: list[int],
    samples: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Sample drop masks: in every block, ``n_drop[b]`` of its candidates uniformly.

    Parameters
    ----------
    candidates : list of torch.Tensor
        Per block, the indices (within the block) that may be dropped.
    n_drop : list of int
        Per block, how many candidates each sample drops.
    n_units : list of int
        Per block, the number of units (columns) of the block.
    samples : int
        Number of sub-models.
    generator : torch.Generator

    Returns
    -------
    torch.Tensor
        ``[samples, sum(n_units)]`` float64, 1 where a unit is dropped.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> d = sample_drops([torch.tensor([0, 1, 2])], [1], [4], 5, g)
    >>> d.sum(dim=1).tolist(), d[:, 3].sum().item()
    ([1.0, 1.0, 1.0, 1.0, 1.0], 0.0)
    """
    if not len(candidates) == len(n_drop) == len(n_units):
        raise ValueError("candidates, n_drop and n_units must have one entry per block")
    total = sum(n_units)
    drops = torch.zeros(samples, total, dtype=torch.float64)
    offset = 0
    for cand, k, n in zip(candidates, n_drop, n_units, strict=True):
        if k > cand.numel():
            raise ValueError(f"cannot drop {k} of {cand.numel()} candidates")
        if k > 0:
            for i in range(samples):
                pick = cand[torch.randperm(cand.numel(), generator=generator)[:k]]
                drops[i, offset + pick] = 1.0
        offset += n
    return drops


def fit_importances(
    drops: torch.Tensor,
    losses: torch.Tensor,
    prior: torch.Tensor,
    kinds: torch.Tensor | None = None,
) -> torch.Tensor:
    """Regress sub-model losses on drop masks; return per-unit importances.

    Model: ``loss_i = b + sum_u beta_u * drop_iu + noise``, with
    ``beta = s_kind(u) * prior_u + delta_u``. ``s`` (one per kind, >= 0) is fitted by least
    squares on the centred data; ``delta`` minimises
    ``||r - X delta||^2 + lambda ||delta||^2`` (``r`` the residual after the prior), solved
    in the dual, ``delta = Xᵀ (X Xᵀ + lambda I)^-1 r``, with ``lambda`` chosen by exact
    leave-one-out error ``mean(((r - H r) / (1 - diag H))^2)``, ``H = K (K + lambda I)^-1``,
    over ``mean(diag K) * 10^{-4..4}`` (half-decade steps).

    Parameters
    ----------
    drops : torch.Tensor
        ``[n, p]``, 1 where unit ``u`` was dropped in sub-model ``i``.
    losses : torch.Tensor
        ``[n]`` calibration losses.
    prior : torch.Tensor
        ``[p]`` prior importances (>= 0), e.g. activation scores.
    kinds : torch.Tensor, optional
        ``[p]`` integer kind of each unit (e.g. 0 = head, 1 = channel); one prior scale per
        kind. Default: one kind.

    Returns
    -------
    torch.Tensor
        ``[p]`` float64 importances (higher = dropping it costs more loss).

    Examples
    --------
    Two units, the loss rises by 1 when unit 0 is dropped and by 0 for unit 1:

    >>> d = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> beta = fit_importances(d, d @ torch.tensor([1.0, 0.0]), torch.ones(2))
    >>> bool(beta[0] > beta[1])
    True
    """
    x = drops.double()
    y = losses.double()
    p = prior.double()
    n, n_units = x.shape
    if y.shape != (n,) or p.shape != (n_units,):
        raise ValueError(
            f"losses must be [{n}] and prior [{n_units}]; got {tuple(y.shape)}, {tuple(p.shape)}"
        )
    kinds = torch.zeros(n_units, dtype=torch.long) if kinds is None else kinds.long()
    xc = x - x.mean(dim=0, keepdim=True)
    yc = y - y.mean()
    # Prior scale per kind: least squares of yc on z_k = Xc[:, kind k] @ prior[kind k].
    kind_ids = sorted(set(kinds.tolist()))
    z = torch.stack([xc[:, kinds == k] @ p[kinds == k] for k in kind_ids], dim=1)
    if float(z.abs().max()) > 0:
        scale = torch.linalg.lstsq(z, yc[:, None]).solution[:, 0].clamp_min(0.0)
    else:
        scale = torch.zeros(len(kind_ids), dtype=torch.float64)
    scale_per_unit = torch.zeros(n_units, dtype=torch.float64)
    for s, k in zip(scale.tolist(), kind_ids, strict=True):
        scale_per_unit[kinds == k] = s
    beta0 = scale_per_unit * p
    r = yc - xc @ beta0
    gram = xc @ xc.T
    base = float(gram.diagonal().mean())
    if base <= 0:
        return beta0
    eye = torch.eye(n, dtype=torch.float64)
    best: tuple[float, torch.Tensor] | None = None
    for exponent in _LAMBDA_GRID:
        lam = base * 10.0**exponent
        inv = torch.linalg.inv(gram + lam * eye)
        hat = gram @ inv
        loo = (r - hat @ r) / (1.0 - hat.diagonal()).clamp_min(1e-12)
        err = float((loo**2).mean())
        if best is None or err < best[0]:
            best = (err, inv @ r)
    assert best is not None
    return beta0 + xc.T @ best[1]


@contextlib.contextmanager
def unit_masks(
    model: nn.Module, adapter: ModelAdapter, geometry: AttentionGeometry
) -> Iterator[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Mask heads and MLP channels by scaling the inputs of the output projections.

    Yields ``(head_masks, channel_masks)``: per layer, ``[num_heads]`` and ``[intermediate]``
    float tensors (initially ones) that the caller edits in place; a 0 removes the unit's
    contribution exactly as slicing it out would. Hooks are removed on exit, also on error.
    """
    layers = decoder_layers(model)
    inter = intermediate_size(model.config, adapter)
    dtype = next(model.parameters()).dtype
    head_masks = [torch.ones(geometry.num_heads, dtype=dtype) for _ in layers]
    channel_masks = [torch.ones(inter, dtype=dtype) for _ in layers]
    handles = []

    def head_hook(mask: torch.Tensor) -> object:
        def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            x = args[0]
            scale = mask.to(x.device).repeat_interleave(geometry.head_dim)
            return (x * scale, *args[1:])

        return hook

    def channel_hook(mask: torch.Tensor) -> object:
        def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            return (args[0] * mask.to(args[0].device), *args[1:])

        return hook

    try:
        for layer, hm, cm in zip(layers, head_masks, channel_masks, strict=True):
            mods = layer_modules(layer, adapter)
            handles.append(mods.o.register_forward_pre_hook(head_hook(hm)))  # type: ignore[arg-type]
            handles.append(mods.mlp_out.register_forward_pre_hook(channel_hook(cm)))  # type: ignore[arg-type]
        yield head_masks, channel_masks
    finally:
        for handle in handles:
            handle.remove()


def _lowest(prior: torch.Tensor, alive: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` alive units with the lowest prior (ties: lower index)."""
    idx = alive.nonzero().flatten()
    order = torch.argsort(prior[idx].double(), stable=True)
    return idx[order[:count]]


def bonsai_scores(
    model: nn.Module,
    adapter: ModelAdapter,
    calibration: torch.Tensor,
    *,
    heads: HeadAllocation | None,
    channels: int | None,
    options: BonsaiOptions,
    batch_size: int = 8,
) -> list[LayerScores]:
    """Bonsai importances for every layer, as :class:`LayerScores` (higher = keep).

    Parameters
    ----------
    model : torch.nn.Module
        The dense model (left unchanged: masks are hooks, removed on return).
    adapter : ModelAdapter
    calibration : torch.Tensor
        ``[nsamples, seqlen]`` token ids.
    heads : HeadAllocation or None
        Target head allocation (``None``: heads are not pruned).
    channels : int or None
        Target MLP channels kept per layer (``None``: MLP not pruned).
    options : BonsaiOptions
    batch_size : int
        Batch size of the prior's forward passes.

    Returns
    -------
    list of LayerScores
        Units removed in earlier rounds score ``-inf``-like (lowest), non-candidates of the
        last round score above every candidate (ordered by prior), candidates score their
        regression estimate; the caller's exact-k selection then reproduces the rounds.
    """
    geometry = attention_geometry(model.config, adapter)
    n_layers = len(decoder_layers(model))
    inter = intermediate_size(model.config, adapter)
    gen = torch.Generator().manual_seed(options.seed)
    n_heads_remove = 0 if heads is None else geometry.num_heads - heads.heads
    n_ch_remove = 0 if channels is None else inter - channels
    head_alive = [torch.ones(geometry.num_heads, dtype=torch.bool) for _ in range(n_layers)]
    ch_alive = [torch.ones(inter, dtype=torch.bool) for _ in range(n_layers)]
    final_heads = [torch.zeros(geometry.num_heads, dtype=torch.float64) for _ in range(n_layers)]
    final_ch = [torch.zeros(inter, dtype=torch.float64) for _ in range(n_layers)]
    n_seq = calibration.shape[0]

    with unit_masks(model, adapter, geometry) as (head_masks, channel_masks), torch.no_grad():
        for rnd in range(options.rounds):
            last = rnd == options.rounds - 1
            removed_so_far = int((~ch_alive[0]).sum())
            target_after = math.floor(n_ch_remove * (rnd + 1) / options.rounds + 0.5)
            ch_quota = target_after - removed_so_far
            h_quota = n_heads_remove if last else 0
            start = (rnd * options.eval_sequences) % n_seq
            rows = [(start + i) % n_seq for i in range(min(options.eval_sequences, n_seq))]
            batch = calibration[rows]
            for layer in range(n_layers):
                head_masks[layer].copy_(head_alive[layer].to(head_masks[layer].dtype))
                channel_masks[layer].copy_(ch_alive[layer].to(channel_masks[layer].dtype))
            prior = activation_scores(model, adapter, batch, batch_size=batch_size)
            blocks_cand: list[torch.Tensor] = []
            blocks_drop: list[int] = []
            blocks_n: list[int] = []
            blocks_prior: list[torch.Tensor] = []
            kinds: list[torch.Tensor] = []
            for layer in range(n_layers):
                for kind, quota, alive, pri in (
                    (0, h_quota, head_alive[layer], prior[layer].heads),
                    (1, ch_quota, ch_alive[layer], prior[layer].channels),
                ):
                    n_alive = int(alive.sum())
                    pool = min(n_alive, math.ceil(options.candidates * quota))
                    cand = _lowest(pri, alive, pool) if quota > 0 else (
                        torch.zeros(0, dtype=torch.long)
                    )
                    blocks_cand.append(cand)
                    blocks_drop.append(quota)
                    blocks_n.append(int(alive.numel()))
                    mean = float(pri[alive].mean()) if n_alive else 1.0
                    blocks_prior.append(pri.double() / (mean if mean > 0 else 1.0))
                    kinds.append(torch.full((int(alive.numel()),), kind, dtype=torch.long))
            if ch_quota == 0 and h_quota == 0:
                continue
            drops = sample_drops(blocks_cand, blocks_drop, blocks_n, options.samples, gen)
            losses = torch.empty(options.samples, dtype=torch.float64)
            for i in range(options.samples):
                offset = 0
                for layer in range(n_layers):
                    for mask_list, alive_list in (
                        (head_masks, head_alive),
                        (channel_masks, ch_alive),
                    ):
                        n = int(alive_list[layer].numel())
                        keep = alive_list[layer] & (drops[i, offset : offset + n] == 0)
                        mask_list[layer].copy_(keep.to(mask_list[layer].dtype))
                        offset += n
                losses[i] = float(calibration_loss(model, batch))
            logger.info(
                "bonsai round %d/%d: %d sub-models, loss %.4f ± %.4f",
                rnd + 1, options.rounds, options.samples, float(losses.mean()),
                float(losses.std()),
            )
            cand_cols = torch.cat([
                c + sum(blocks_n[:b]) for b, c in enumerate(blocks_cand)
            ]) if blocks_cand else torch.zeros(0, dtype=torch.long)
            beta_c = fit_importances(
                drops[:, cand_cols], losses, torch.cat(blocks_prior)[cand_cols],
                torch.cat(kinds)[cand_cols],
            )
            # Write back: remove the `quota` lowest-beta candidates of every block.
            pos = 0
            for b, (cand, quota) in enumerate(zip(blocks_cand, blocks_drop, strict=True)):
                beta = beta_c[pos : pos + cand.numel()]
                pos += cand.numel()
                layer, kind = divmod(b, 2)
                if quota == 0:
                    continue
                alive = head_alive[layer] if kind == 0 else ch_alive[layer]
                scores = final_heads[layer] if kind == 0 else final_ch[layer]
                pri = blocks_prior[b]
                if kind == 1 or last:
                    # Final order: removed (lowest) < candidates by beta < fixed by prior.
                    top = float(beta.max()) if beta.numel() else 0.0
                    span = float(beta.max() - beta.min()) if beta.numel() else 0.0
                    fixed = alive.clone()
                    fixed[cand] = False
                    scores[fixed] = top + span + 1.0 + pri[fixed]
                    scores[cand] = beta
                if kind == 1:
                    order = torch.argsort(beta, stable=True)
                    gone = cand[order[:quota]]
                    alive[gone] = False
                    scores[gone] = -1e30 * (options.rounds - rnd)
            for layer in range(n_layers):
                head_masks[layer].fill_(1.0)
                channel_masks[layer].copy_(ch_alive[layer].to(channel_masks[layer].dtype))
    return [
        LayerScores(
            heads=final_heads[i],
            kv_heads=torch.zeros(geometry.num_kv_heads, dtype=torch.float64),
            channels=final_ch[i],
        )
        for i in range(n_layers)
    ]
