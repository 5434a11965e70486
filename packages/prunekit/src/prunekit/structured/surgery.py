"""Physical removal of heads and channels: slice the matrices, rewrite the config.

Slicing keeps rows (output features) of the input-side projections and columns (input
features) of the output-side projections, with their biases (Li et al. 2016 remove a
filter together with the kernels of the next layer that read its feature map; the
transformer analogue is LLM-Pruner's dependency group). The output projections' biases
are untouched: they do not belong to any head or channel.

Layouts:

* ``nn.Linear`` stores ``[out, in]``; GPT-2's ``Conv1D`` stores ``[in, out]`` (``nf`` =
  out). :func:`keep_outputs` / :func:`keep_inputs` take care of both.
* GPT-2's fused ``c_attn`` has output features ``[q | k | v]``, each ``H * d`` wide; a
  head's rows appear once in each third.

The config is rewritten so stock ``from_pretrained`` rebuilds the same shapes (see
:data:`prunekit.structured.groups.HEAD_CONFIG_MODES`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunekit.adapters import ModelAdapter
from prunekit.structured.allocation import LayerPlan
from prunekit.structured.groups import (
    AttentionGeometry,
    decoder_layers,
    head_config_mode,
    layer_modules,
)

__all__ = [
    "apply_plans",
    "head_feature_indices",
    "keep_inputs",
    "keep_outputs",
    "rewrite_config",
]


def head_feature_indices(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Feature indices ``h*d .. h*d + d - 1`` of the given heads, in head order.

    Examples
    --------
    >>> head_feature_indices(torch.tensor([0, 2]), 2)
    tensor([0, 1, 4, 5])
    """
    offsets = torch.arange(head_dim, dtype=torch.long)
    return (heads.to(torch.long)[:, None] * head_dim + offsets[None, :]).reshape(-1)


def _is_conv1d(module: nn.Module) -> bool:
    return hasattr(module, "nf") and not isinstance(module, nn.Linear)


def _new_param(old: torch.Tensor, value: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(value.detach().clone().contiguous(), requires_grad=old.requires_grad)


def _weight(module: nn.Module) -> torch.Tensor:
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.weight is not a tensor")
    return weight


def keep_outputs(module: nn.Module, index: torch.Tensor) -> None:
    """Keep only the output features ``index`` of a Linear-like module (with its bias)."""
    weight = _weight(module)
    index = index.to(device=weight.device, dtype=torch.long)
    with torch.no_grad():
        if _is_conv1d(module):
            module.weight = _new_param(weight, weight[:, index])
            setattr(module, "nf", int(index.numel()))  # noqa: B010
        else:
            module.weight = _new_param(weight, weight[index, :])
            setattr(module, "out_features", int(index.numel()))  # noqa: B010
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor):
            module.bias = _new_param(bias, bias[index])


def keep_inputs(module: nn.Module, index: torch.Tensor) -> None:
    """Keep only the input features ``index`` of a Linear-like module (bias unchanged)."""
    weight = _weight(module)
    index = index.to(device=weight.device, dtype=torch.long)
    with torch.no_grad():
        if _is_conv1d(module):
            module.weight = _new_param(weight, weight[index, :])
            if hasattr(module, "nx"):
                setattr(module, "nx", int(index.numel()))  # noqa: B010
        else:
            module.weight = _new_param(weight, weight[:, index])
            setattr(module, "in_features", int(index.numel()))  # noqa: B010


def _prune_attention(
    layer: nn.Module,
    adapter: ModelAdapter,
    geometry: AttentionGeometry,
    plan: LayerPlan,
) -> None:
    mods = layer_modules(layer, adapter)
    d = geometry.head_dim
    q_idx = head_feature_indices(plan.heads, d)
    kv_idx = head_feature_indices(plan.kv_heads, d)
    if mods.qkv is not None:
        # GPT-2: [q | k | v], multi-head only, so kept kv heads equal kept query heads.
        width = geometry.num_heads * d
        fused = torch.cat([q_idx, kv_idx + width, kv_idx + 2 * width])
        keep_outputs(mods.qkv, fused)
    else:
        q, k, v = mods.separate_qkv()
        keep_outputs(q, q_idx)
        keep_outputs(k, kv_idx)
        keep_outputs(v, kv_idx)
    keep_inputs(mods.o, q_idx)
    attn = _attention_module(layer, adapter)
    n_heads = int(plan.heads.numel())
    n_kv = int(plan.kv_heads.numel())
    # In-memory attributes the stock forward reads (names differ across versions).
    for name in ("num_heads", "num_attention_heads"):
        if isinstance(getattr(attn, name, None), int):
            setattr(attn, name, n_heads)
    for name in ("num_key_value_heads", "num_kv_heads"):
        if isinstance(getattr(attn, name, None), int):
            setattr(attn, name, n_kv)
    if isinstance(getattr(attn, "num_key_value_groups", None), int):
        setattr(attn, "num_key_value_groups", n_heads // n_kv)  # noqa: B010
    if isinstance(getattr(attn, "split_size", None), int):
        setattr(attn, "split_size", n_heads * d)  # noqa: B010


def _attention_module(layer: nn.Module, adapter: ModelAdapter) -> nn.Module:
    path = adapter.o_proj.rsplit(".", 1)[0]
    module = layer
    for part in path.split("."):
        module = getattr(module, part)
    return module


def _prune_mlp(layer: nn.Module, adapter: ModelAdapter, plan: LayerPlan) -> None:
    mods = layer_modules(layer, adapter)
    for module in mods.mlp_in:
        keep_outputs(module, plan.channels)
    keep_inputs(mods.mlp_out, plan.channels)


def apply_plans(
    model: nn.Module,
    adapter: ModelAdapter,
    geometry: AttentionGeometry,
    plans: list[LayerPlan],
    *,
    heads: bool,
    mlp: bool,
) -> None:
    """Slice every decoder block of ``model`` in place according to ``plans``.

    Parameters
    ----------
    model : torch.nn.Module
        The causal LM; its blocks are modified in place.
    adapter : ModelAdapter
    geometry : AttentionGeometry
        The geometry *before* pruning.
    plans : list of LayerPlan
        One plan per decoder block.
    heads, mlp : bool
        Which structures to cut.

    Raises
    ------
    ValueError
        If ``plans`` does not have one entry per decoder block.
    """
    layers = decoder_layers(model)
    if len(plans) != len(layers):
        raise ValueError(f"plans must have one entry per layer ({len(layers)}); got {len(plans)}")
    for layer, plan in zip(layers, plans, strict=True):
        if heads:
            _prune_attention(layer, adapter, geometry, plan)
        if mlp:
            _prune_mlp(layer, adapter, plan)


def rewrite_config(
    config: Any,
    adapter: ModelAdapter,
    geometry: AttentionGeometry,
    plans: list[LayerPlan],
    *,
    heads: bool,
    mlp: bool,
) -> dict[str, Any]:
    """Rewrite ``config`` so stock ``from_pretrained`` builds the pruned shapes.

    Llama family: ``num_attention_heads``, ``num_key_value_heads`` and an explicit
    ``head_dim`` (so it is not re-derived as ``hidden_size / num_heads``). MLP:
    ``intermediate_size`` / ``ffn_dim`` / ``n_inner``. All layers must keep the same counts.

    Returns
    -------
    dict
        The config fields that were changed, with their new values.
    """
    changed: dict[str, Any] = {}
    if heads:
        counts = {(int(p.heads.numel()), int(p.kv_heads.numel())) for p in plans}
        if len(counts) != 1:
            raise ValueError(f"uniform allocation expected; got per-layer head counts {counts}")
        n_heads, n_kv = counts.pop()
        mode = head_config_mode(adapter)
        if mode == "config":
            setattr(config, adapter.num_heads_attr, n_heads)
            changed[adapter.num_heads_attr] = n_heads
            if adapter.num_kv_heads_attr is not None:
                setattr(config, adapter.num_kv_heads_attr, n_kv)
                changed[adapter.num_kv_heads_attr] = n_kv
            config.head_dim = geometry.head_dim
            changed["head_dim"] = geometry.head_dim
        else:
            raise ValueError(
                f"head pruning of model_type {adapter.model_type!r} cannot be reloaded by stock "
                "transformers; use structure='mlp'"
            )
    if mlp:
        widths = {int(p.channels.numel()) for p in plans}
        if len(widths) != 1:
            raise ValueError(f"uniform allocation expected; got per-layer widths {widths}")
        width = widths.pop()
        setattr(config, adapter.intermediate_size_attr, width)
        changed[adapter.intermediate_size_attr] = width
    return changed
