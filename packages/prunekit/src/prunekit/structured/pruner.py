"""Structured pruning of a Hugging Face causal LM: score, allocate, cut, rewrite config."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.adapters import ModelAdapter, get_adapter
from prunekit.structured.allocation import (
    HeadAllocation,
    LayerPlan,
    allocate_channels,
    allocate_heads,
    select_channels,
    select_heads,
)
from prunekit.structured.bonsai import BonsaiOptions, bonsai_scores
from prunekit.structured.groups import (
    AttentionGeometry,
    attention_geometry,
    decoder_layers,
    head_config_mode,
    intermediate_size,
    layer_modules,
)
from prunekit.structured.scores import (
    LayerScores,
    activation_scores,
    l1_scores,
    taylor_scores,
)
from prunekit.structured.surgery import apply_plans, rewrite_config

__all__ = [
    "SCORES",
    "STRUCTURES",
    "StructuredOptions",
    "count_parameters",
    "prune_structured",
]

logger = logging.getLogger(__name__)

#: Structured importance scores: name -> (needs calibration data, needs gradients, summary).
SCORES: dict[str, tuple[bool, bool, str]] = {
    "activation": (True, False, "Wanda-sp |W|·||x|| summed over the group (forward only)"),
    "bonsai": (True, False, "Bonsai: regression on losses of masked sub-models (forward only)"),
    "l1": (False, False, "L1 weight magnitude of the group (Li et al. 2016)"),
    "taylor": (True, True, "first-order Taylor |w·∂L/∂w| summed over the group"),
}

#: What ``structure`` removes.
STRUCTURES: dict[str, tuple[bool, bool]] = {
    "both": (True, True),
    "heads": (True, False),
    "mlp": (False, True),
}


@dataclass(frozen=True)
class StructuredOptions:
    """Settings of structured pruning that :class:`prunekit.config.PruneConfig` does not carry.

    Parameters
    ----------
    batch_size : int, default 8
        Sequences per forward pass when collecting statistics or gradients.
    bonsai : BonsaiOptions
        Settings of the Bonsai estimator (rounds, sub-models per round, ...).
    """

    batch_size: int = 8
    bonsai: BonsaiOptions = field(default_factory=BonsaiOptions)

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or (
            self.batch_size < 1
        ):
            raise ValueError(
                f"StructuredOptions.batch_size must be an int >= 1; got {self.batch_size!r}"
            )


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _check_calibration(calibration: Any, vocab: int | None) -> torch.Tensor:
    if not isinstance(calibration, torch.Tensor):
        raise TypeError(
            "calibration must be a torch.LongTensor of token ids, shape (nsamples, seqlen); "
            f"got {type(calibration).__name__}"
        )
    if calibration.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"calibration must hold int64 token ids; got dtype {calibration.dtype}")
    if calibration.dim() != 2 or calibration.shape[0] < 1 or calibration.shape[1] < 2:
        raise ValueError(
            "calibration must have shape (nsamples >= 1, seqlen >= 2); "
            f"got {tuple(calibration.shape)}"
        )
    if calibration.min() < 0 or (vocab is not None and calibration.max() >= vocab):
        raise ValueError(
            f"calibration token ids must be in [0, {vocab}); got range "
            f"[{int(calibration.min())}, {int(calibration.max())}]"
        )
    return calibration.long()


def _check_gradients(model: nn.Module, adapter: ModelAdapter) -> None:
    for i, layer in enumerate(decoder_layers(model)):
        mods = layer_modules(layer, adapter)
        for m in (mods.q, mods.k, mods.v, mods.qkv, mods.o, *mods.mlp_in, mods.mlp_out):
            w = getattr(m, "weight", None)
            if not isinstance(w, torch.Tensor):
                continue
            if w.is_inference():
                raise ValueError(
                    "score='taylor' needs gradients, but the weights of layer "
                    f"{i} are inference tensors (created under torch.inference_mode()); "
                    "load the model outside inference mode or use score='activation' or 'bonsai'"
                )
            if not w.requires_grad:
                raise ValueError(
                    "score='taylor' needs gradients, but the weights of layer "
                    f"{i} have requires_grad=False; call model.requires_grad_(True) or use a "
                    "forward-only score ('activation', 'bonsai')"
                )


def _summary(values: list[torch.Tensor]) -> dict[str, float] | None:
    finite = torch.cat([v[torch.isfinite(v) & (v.abs() < 1e29)].double() for v in values])
    if finite.numel() == 0:
        return None
    return {
        "min": float(finite.min()),
        "median": float(finite.median()),
        "max": float(finite.max()),
    }


def _plans(
    scores: list[LayerScores],
    geometry: AttentionGeometry,
    inter: int,
    heads: HeadAllocation | None,
    channels: int | None,
) -> list[LayerPlan]:
    plans = []
    for s in scores:
        if heads is not None:
            kept_heads, kept_kv = select_heads(s.heads, s.kv_heads, geometry, heads)
        else:
            kept_heads = torch.arange(geometry.num_heads)
            kept_kv = torch.arange(geometry.num_kv_heads)
        kept_ch = select_channels(s.channels, channels) if channels is not None else (
            torch.arange(inter)
        )
        plans.append(LayerPlan(heads=kept_heads, kv_heads=kept_kv, channels=kept_ch))
    return plans


def prune_structured(
    model: nn.Module,
    config: Any,
    calibration: torch.Tensor | None,
    options: StructuredOptions | None = None,
) -> dict[str, Any]:
    """Remove attention heads and/or MLP channels from ``model`` in place.

    Every decoder block loses the same number of units (uniform allocation, see
    :mod:`prunekit.structured.allocation`), chosen by the group score ``config.score``;
    the matrices are sliced physically and the config is rewritten, so ``save_pretrained``
    writes a smaller model that stock ``AutoModelForCausalLM.from_pretrained`` reloads.

    Parameters
    ----------
    model : torch.nn.Module
        A Hugging Face causal LM of a supported architecture (see
        :data:`prunekit.adapters.ADAPTERS`). Modified in place.
    config : prunekit.config.PruneConfig
        Reads ``structure`` ({"heads", "mlp", "both"}), ``ratio`` (fraction of query heads
        and of MLP channels removed per layer, in ``[0, 1)``), ``score``
        (a key of :data:`SCORES`) and, if present, ``channel_multiple`` (kept MLP channels
        rounded to a multiple of it, see :func:`allocate_channels`; default 1).
    calibration : torch.LongTensor or None
        ``(nsamples, seqlen)`` token ids; needed by every score but ``l1``.
    options : StructuredOptions, optional
        Batch size and Bonsai settings.

    Returns
    -------
    dict
        JSON-ready summary: structure, ratio, score, head/channel counts before and after,
        parameter counts, changed config fields, per-layer kept heads/channels, score
        summaries and wall time.

    Raises
    ------
    ValueError
        Unknown structure or score, ratio outside ``[0, 1)``, a ratio removing every head or
        channel, an unsupported architecture, head pruning of an architecture that stock
        transformers cannot reload (OPT, GPT-2), ``taylor`` on a model without gradients,
        malformed calibration. All checked before any work.
    TypeError
        Calibration of the wrong type.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> m = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64,
    ...     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2, vocab_size=50))
    >>> cfg = SimpleNamespace(structure="both", ratio=0.5, score="l1")
    >>> out = prune_structured(m, cfg, None)
    >>> m.config.num_attention_heads, m.config.num_key_value_heads, m.config.intermediate_size
    (2, 2, 32)
    """
    options = options or StructuredOptions()
    structure = getattr(config, "structure", None)
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {sorted(STRUCTURES)}; got {structure!r}")
    score = getattr(config, "score", None)
    if score not in SCORES:
        raise ValueError(f"score must be one of {sorted(SCORES)}; got {score!r}")
    ratio = getattr(config, "ratio", None)
    adapter = get_adapter(model)
    prune_heads, prune_mlp = STRUCTURES[structure]
    geometry = attention_geometry(model.config, adapter)
    inter = intermediate_size(model.config, adapter)
    if prune_heads and head_config_mode(adapter) == "unsupported":
        raise ValueError(
            f"structure={structure!r}: head pruning of model_type {adapter.model_type!r} cannot be "
            "reloaded by stock transformers (its attention derives head_dim = hidden_size / "
            "num_attention_heads); use structure='mlp'"
        )
    if geometry.num_heads % geometry.num_kv_heads:
        raise ValueError(
            f"num_attention_heads ({geometry.num_heads}) must be a multiple of "
            f"num_key_value_heads ({geometry.num_kv_heads})"
        )
    heads_alloc = allocate_heads(geometry, ratio) if prune_heads else None  # type: ignore[arg-type]
    multiple = getattr(config, "channel_multiple", 1)
    channels = allocate_channels(inter, ratio, multiple) if prune_mlp else None  # type: ignore[arg-type]
    needs_data, needs_grad = SCORES[score][:2]
    if needs_data:
        if calibration is None:
            raise ValueError(f"score={score!r} needs calibration token ids; got None")
        calibration = _check_calibration(calibration, getattr(model.config, "vocab_size", None))
    if needs_grad:
        _check_gradients(model, adapter)

    start = time.perf_counter()
    params_before = count_parameters(model)
    was_training = model.training
    model.eval()
    try:
        scorers: dict[str, Callable[[], list[LayerScores]]] = {
            "l1": lambda: l1_scores(model, adapter),
            "activation": lambda: activation_scores(
                model, adapter, calibration, options.batch_size  # type: ignore[arg-type]
            ),
            "taylor": lambda: taylor_scores(
                model, adapter, calibration, options.batch_size  # type: ignore[arg-type]
            ),
            "bonsai": lambda: bonsai_scores(
                model, adapter, calibration,  # type: ignore[arg-type]
                heads=heads_alloc, channels=channels, options=options.bonsai,
                batch_size=options.batch_size,
            ),
        }
        logger.info("structured pruning: scoring %s (%s)", score, SCORES[score][2])
        scores = scorers[score]()
        plans = _plans(scores, geometry, inter, heads_alloc, channels)
        apply_plans(model, adapter, geometry, plans, heads=prune_heads, mlp=prune_mlp)
        changed = rewrite_config(
            model.config, adapter, geometry, plans, heads=prune_heads, mlp=prune_mlp
        )
    finally:
        model.train(was_training)
    params_after = count_parameters(model)
    return {
        "structure": structure,
        "ratio": float(ratio),  # type: ignore[arg-type]
        "score": score,
        "heads_before": geometry.num_heads,
        "heads_after": heads_alloc.heads if heads_alloc else geometry.num_heads,
        "kv_heads_before": geometry.num_kv_heads,
        "kv_heads_after": heads_alloc.kv_heads if heads_alloc else geometry.num_kv_heads,
        "channels_before": inter,
        "channels_after": channels if channels is not None else inter,
        "params_before": params_before,
        "params_after": params_after,
        "config_changes": changed,
        "layers": [
            {
                "layer": i,
                "kept_heads": p.heads.tolist(),
                "kept_kv_heads": p.kv_heads.tolist(),
                "kept_channels": p.channels.tolist(),
            }
            for i, p in enumerate(plans)
        ],
        "score_summary": {
            "heads": _summary([s.heads for s in scores]) if prune_heads else None,
            "channels": _summary([s.channels for s in scores]) if prune_mlp else None,
        },
        "wall_time_s": time.perf_counter() - start,
    }
