"""Structural groups: which rows and columns of which matrices form one head or one channel.

A *group* is the set of weights that disappears together when one structural unit is
removed (Li et al. 2016, "Pruning Filters for Efficient ConvNets"; Ma et al. 2023,
"LLM-Pruner", which calls them dependency groups):

* **query head** ``h``: rows ``h*d .. (h+1)*d - 1`` of the query projection (and its bias)
  and the same columns of the output projection, ``d`` the head dimension;
* **key/value head** ``j`` (grouped-query attention): rows ``j*d .. (j+1)*d - 1`` of the
  key and value projections, shared by query heads ``j*G .. (j+1)*G - 1`` with
  ``G = num_heads / num_kv_heads``; without GQA (``G = 1``) a head is one query head plus
  its own key/value head;
* **MLP channel** ``c``: row ``c`` of every MLP input projection (gate and up for gated
  MLPs, ``fc1``/``c_fc`` otherwise, with their biases) and column ``c`` of the output
  projection.

The head dimension and the rotary geometry are never cut: whole heads go or stay.

Where the projections live comes from :mod:`prunekit.adapters` (one registry for all of
prunekit). The one extra fact structured pruning needs, how a head-pruned model is
described to stock ``from_pretrained``, is :data:`HEAD_CONFIG_MODES`, a plain dict keyed by
``config.model_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from prunekit.adapters import ModelAdapter, decoder_layers, get_adapter, resolve_module

__all__ = [
    "HEAD_CONFIG_MODES",
    "AttentionGeometry",
    "LayerModules",
    "attention_geometry",
    "decoder_layers",
    "get_adapter",
    "head_config_mode",
    "intermediate_size",
    "layer_modules",
]

HeadConfigMode = Literal["config", "unsupported"]

#: How a head-pruned model of each architecture is described so that stock
#: ``from_pretrained`` rebuilds it. ``"config"``: rewrite ``num_attention_heads`` and
#: ``num_key_value_heads`` and store ``head_dim`` explicitly (the Llama family reads it).
#: ``"unsupported"``: the stock model derives the head dimension as
#: ``hidden_size / num_attention_heads`` (OPT, GPT-2; transformers 5 also dropped the
#: ``config.pruned_heads`` replay GPT-2 once had), so a head-pruned model would not reload;
#: only MLP channels are pruned for these through :func:`prune_structured`.
HEAD_CONFIG_MODES: dict[str, HeadConfigMode] = {
    "gpt2": "unsupported",
    "llama": "config",
    "mistral": "config",
    "opt": "unsupported",
    "qwen2": "config",
}


def head_config_mode(adapter: ModelAdapter) -> HeadConfigMode:
    """How head pruning is written into the config for ``adapter``'s architecture."""
    return HEAD_CONFIG_MODES.get(adapter.model_type, "unsupported")


@dataclass(frozen=True)
class AttentionGeometry:
    """Head counts and head dimension of one attention block.

    ``group_size`` is the number of query heads that share one key/value head.
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (``num_heads // num_kv_heads``)."""
        return self.num_heads // self.num_kv_heads


@dataclass(frozen=True)
class LayerModules:
    """The projection modules of one decoder block.

    ``q``/``k``/``v`` are separate modules, or all ``None`` with ``qkv`` the fused one.
    """

    q: nn.Module | None
    k: nn.Module | None
    v: nn.Module | None
    qkv: nn.Module | None
    o: nn.Module
    mlp_in: tuple[nn.Module, ...]
    mlp_out: nn.Module

    def separate_qkv(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """The separate ``(q, k, v)`` modules; ``TypeError`` when they are fused."""
        if self.q is None or self.k is None or self.v is None:
            raise TypeError("this block fuses q/k/v into one module; use .qkv")
        return self.q, self.k, self.v


def layer_modules(layer: nn.Module, adapter: ModelAdapter) -> LayerModules:
    """Return the projection modules of one decoder block."""
    if adapter.fused_qkv:
        q = k = v = None
        qkv: nn.Module | None = resolve_module(layer, adapter.q_proj)
    else:
        q = resolve_module(layer, adapter.q_proj)
        k = resolve_module(layer, adapter.k_proj)
        v = resolve_module(layer, adapter.v_proj)
        qkv = None
    return LayerModules(
        q=q,
        k=k,
        v=v,
        qkv=qkv,
        o=resolve_module(layer, adapter.o_proj),
        mlp_in=tuple(resolve_module(layer, p) for p in adapter.mlp_in),
        mlp_out=resolve_module(layer, adapter.mlp_out),
    )


def attention_geometry(config: Any, adapter: ModelAdapter) -> AttentionGeometry:
    """Read head counts and the head dimension from a model config.

    Examples
    --------
    >>> from transformers import LlamaConfig
    >>> from prunekit.adapters import ADAPTERS
    >>> cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2)
    >>> attention_geometry(cfg, ADAPTERS["llama"])
    AttentionGeometry(num_heads=4, num_kv_heads=2, head_dim=16)
    """
    return AttentionGeometry(
        num_heads=adapter.num_heads(config),
        num_kv_heads=adapter.num_kv_heads(config),
        head_dim=adapter.head_dim(config),
    )


def intermediate_size(config: Any, adapter: ModelAdapter) -> int:
    """MLP width from the config (GPT-2's ``n_inner=None`` means ``4 * n_embd``)."""
    return adapter.intermediate_size(config)
