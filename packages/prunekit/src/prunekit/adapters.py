"""Model adapters: where the decoder blocks and their projections live in each architecture.

prunekit takes Hugging Face models as they are. The only per-architecture knowledge it
needs is small and declarative: the attribute path of the decoder blocks, the names of
the attention and MLP projections relative to one block, whether the projections store
their weight transposed (GPT-2's ``Conv1D``), and which config attributes hold the head
and channel counts. That knowledge is one frozen :class:`ModelAdapter` per
``config.model_type`` in the plain dict :data:`ADAPTERS`, the single source of the list of
supported architectures that docs, CLI and error messages show.

The engine itself is generic (it hooks every Linear-like module inside a decoder block);
the projection names are used by structured pruning, which must cut q/k/v/o and the MLP
consistently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "ADAPTERS",
    "ModelAdapter",
    "decoder_layers",
    "get_adapter",
    "get_weight",
    "is_prunable",
    "position_limit",
    "resolve_module",
    "set_weight",
]


@dataclass(frozen=True)
class ModelAdapter:
    """Where one architecture keeps its decoder blocks and projections.

    Parameters
    ----------
    model_type : str
        The ``config.model_type`` this adapter serves (``"llama"``, ``"opt"``, ...).
    layers_path : str
        Dotted attribute path, from the ``*ForCausalLM`` model, of the ``nn.ModuleList`` of
        decoder blocks (``"model.layers"``, ``"model.decoder.layers"``, ``"transformer.h"``).
    q_proj, k_proj, v_proj, o_proj : str
        Names, relative to one block, of the attention projections. When ``fused_qkv`` is
        true, ``q_proj``, ``k_proj`` and ``v_proj`` all name the one fused module whose
        output features are ``[q | k | v]`` (GPT-2's ``attn.c_attn``).
    fused_qkv : bool
        Whether q, k and v are one module (see above).
    mlp_in : tuple of str
        Names of the MLP input projections, whose *output* features are the intermediate
        channels (``("mlp.gate_proj", "mlp.up_proj")``, ``("fc1",)``, ``("mlp.c_fc",)``).
    mlp_out : str
        Name of the MLP output projection, whose *input* features are the intermediate
        channels.
    transposed : bool
        True when the projections are ``transformers.pytorch_utils.Conv1D`` modules, which
        store the weight as ``(in_features, out_features)``. Use :func:`get_weight` and
        :func:`set_weight`, which always speak ``(out, in)``.
    hidden_size_attr, num_heads_attr : str
        Config attributes with the model width and the number of query heads.
    num_kv_heads_attr : str or None
        Config attribute with the number of key/value heads (grouped-query attention);
        None when the architecture has as many key/value heads as query heads.
    intermediate_size_attr : str
        Config attribute with the MLP width. GPT-2's ``n_inner`` may be None, meaning
        ``4 * n_embd``; :meth:`intermediate_size` resolves that.
    head_dim_attr : str or None
        Config attribute with an explicit head dimension, when the architecture has one;
        otherwise the head dimension is ``hidden_size // num_heads``.

    Examples
    --------
    >>> ADAPTERS["gpt2"].mlp_out
    'mlp.c_proj'
    """

    model_type: str
    layers_path: str
    q_proj: str
    k_proj: str
    v_proj: str
    o_proj: str
    fused_qkv: bool
    mlp_in: tuple[str, ...]
    mlp_out: str
    transposed: bool
    hidden_size_attr: str
    num_heads_attr: str
    num_kv_heads_attr: str | None
    intermediate_size_attr: str
    head_dim_attr: str | None = None

    @property
    def attention_in(self) -> tuple[str, ...]:
        """Distinct names of the modules that read the attention input (q, k, v)."""
        return (self.q_proj,) if self.fused_qkv else (self.q_proj, self.k_proj, self.v_proj)

    def hidden_size(self, config: Any) -> int:
        """Model width from ``config``."""
        return int(getattr(config, self.hidden_size_attr))

    def num_heads(self, config: Any) -> int:
        """Number of query heads from ``config``."""
        return int(getattr(config, self.num_heads_attr))

    def num_kv_heads(self, config: Any) -> int:
        """Number of key/value heads from ``config`` (equals :meth:`num_heads` without GQA)."""
        if self.num_kv_heads_attr is None:
            return self.num_heads(config)
        value = getattr(config, self.num_kv_heads_attr, None)
        return self.num_heads(config) if value is None else int(value)

    def head_dim(self, config: Any) -> int:
        """Per-head dimension from ``config``."""
        if self.head_dim_attr is not None:
            value = getattr(config, self.head_dim_attr, None)
            if value is not None:
                return int(value)
        return self.hidden_size(config) // self.num_heads(config)

    def intermediate_size(self, config: Any) -> int:
        """MLP width from ``config`` (GPT-2: ``n_inner`` or ``4 * n_embd`` when unset)."""
        value = getattr(config, self.intermediate_size_attr, None)
        if value is None:
            return 4 * self.hidden_size(config)
        return int(value)


def _llama_like(model_type: str) -> ModelAdapter:
    return ModelAdapter(
        model_type=model_type,
        layers_path="model.layers",
        q_proj="self_attn.q_proj",
        k_proj="self_attn.k_proj",
        v_proj="self_attn.v_proj",
        o_proj="self_attn.o_proj",
        fused_qkv=False,
        mlp_in=("mlp.gate_proj", "mlp.up_proj"),
        mlp_out="mlp.down_proj",
        transposed=False,
        hidden_size_attr="hidden_size",
        num_heads_attr="num_attention_heads",
        num_kv_heads_attr="num_key_value_heads",
        intermediate_size_attr="intermediate_size",
        head_dim_attr="head_dim",
    )


#: Supported architectures, keyed by ``config.model_type``.
ADAPTERS: dict[str, ModelAdapter] = {
    "gpt2": ModelAdapter(
        model_type="gpt2",
        layers_path="transformer.h",
        q_proj="attn.c_attn",
        k_proj="attn.c_attn",
        v_proj="attn.c_attn",
        o_proj="attn.c_proj",
        fused_qkv=True,
        mlp_in=("mlp.c_fc",),
        mlp_out="mlp.c_proj",
        transposed=True,
        hidden_size_attr="n_embd",
        num_heads_attr="n_head",
        num_kv_heads_attr=None,
        intermediate_size_attr="n_inner",
    ),
    "llama": _llama_like("llama"),
    "mistral": _llama_like("mistral"),
    "opt": ModelAdapter(
        model_type="opt",
        layers_path="model.decoder.layers",
        q_proj="self_attn.q_proj",
        k_proj="self_attn.k_proj",
        v_proj="self_attn.v_proj",
        o_proj="self_attn.out_proj",
        fused_qkv=False,
        mlp_in=("fc1",),
        mlp_out="fc2",
        transposed=False,
        hidden_size_attr="hidden_size",
        num_heads_attr="num_attention_heads",
        num_kv_heads_attr=None,
        intermediate_size_attr="ffn_dim",
    ),
    "qwen2": _llama_like("qwen2"),
}


def get_adapter(model: nn.Module) -> ModelAdapter:
    """Return the adapter for ``model.config.model_type``.

    Parameters
    ----------
    model : torch.nn.Module
        A Hugging Face model with a ``config`` attribute.

    Returns
    -------
    ModelAdapter

    Raises
    ------
    TypeError
        If ``model`` has no ``config.model_type``.
    ValueError
        If the model type has no adapter; the message lists the known types.

    Examples
    --------
    >>> from transformers import GPT2Config, GPT2LMHeadModel  # doctest: +SKIP
    >>> get_adapter(GPT2LMHeadModel(GPT2Config(n_layer=1))).layers_path  # doctest: +SKIP
    'transformer.h'
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if not isinstance(model_type, str):
        raise TypeError(
            "model must be a Hugging Face model with config.model_type; "
            f"got {type(model).__name__} without one"
        )
    try:
        return ADAPTERS[model_type]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(
            f"model type {model_type!r} has no prunekit adapter; known model types: {known}. "
            "Add a ModelAdapter to prunekit.adapters.ADAPTERS for a new decoder layout."
        ) from None


def resolve_module(root: nn.Module, path: str) -> nn.Module:
    """Return the submodule of ``root`` at dotted ``path`` (``""`` is ``root`` itself).

    Raises
    ------
    AttributeError
        If a component of ``path`` does not exist.
    """
    module = root
    for part in filter(None, path.split(".")):
        module = getattr(module, part)
    return module


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """Return the ``nn.ModuleList`` of decoder blocks of ``model``.

    Works on the ``*ForCausalLM`` model and on its bare backbone (``LlamaModel`` etc.).

    Raises
    ------
    ValueError
        If the model type is unknown or the blocks are not where its adapter says.
    """
    adapter = get_adapter(model)
    parts = adapter.layers_path.split(".")
    # Try the full path, then the path without its leading components (bare backbone).
    for start in range(len(parts)):
        try:
            layers = resolve_module(model, ".".join(parts[start:]))
        except AttributeError:
            continue
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    raise ValueError(
        f"model of type {adapter.model_type!r} ({type(model).__name__}) has no decoder blocks "
        f"at {adapter.layers_path!r}; pass a causal LM loaded with transformers"
    )


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a base dependency
        return None
    return Conv1D


def is_prunable(module: nn.Module) -> bool:
    """Whether ``module`` is a Linear-like layer prunekit can prune (``nn.Linear``, ``Conv1D``)."""
    if isinstance(module, nn.Linear):
        return True
    conv1d = _conv1d_type()
    return conv1d is not None and isinstance(module, conv1d)


def _is_transposed(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return False
    conv1d = _conv1d_type()
    if conv1d is not None and isinstance(module, conv1d):
        return True
    raise TypeError(
        f"expected an nn.Linear or transformers Conv1D module; got {type(module).__name__}"
    )


def get_weight(module: nn.Module) -> torch.Tensor:
    """Return the weight of a Linear-like module as an ``(out_features, in_features)`` view.

    ``nn.Linear`` stores ``(out, in)``; GPT-2's ``Conv1D`` stores ``(in, out)`` and is
    returned transposed. The result is a view: do not write into it, use :func:`set_weight`.

    Raises
    ------
    TypeError
        If ``module`` is neither ``nn.Linear`` nor ``Conv1D``.
    """
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.weight is not a tensor")
    return weight.detach().t() if _is_transposed(module) else weight.detach()


def set_weight(module: nn.Module, weight: torch.Tensor) -> None:
    """Write an ``(out_features, in_features)`` tensor into a Linear-like module in place.

    The value is cast to the parameter's dtype and device; the parameter object (and any
    weight tying) is kept.

    Raises
    ------
    TypeError
        If ``module`` is neither ``nn.Linear`` nor ``Conv1D``.
    ValueError
        If the shape does not match the module's ``(out, in)`` shape.
    """
    current = get_weight(module)
    if tuple(weight.shape) != tuple(current.shape):
        raise ValueError(
            f"weight must have shape (out, in) = {tuple(current.shape)}; got {tuple(weight.shape)}"
        )
    with torch.no_grad():
        current.copy_(weight.to(dtype=current.dtype, device=current.device))


#: Architectures with learned absolute position embeddings, and the config field holding
#: their table size: a sequence longer than that fails inside the embedding lookup.
#: Rotary models (Llama, Qwen2, Mistral) have no such table and accept longer sequences.
_POSITION_TABLES = {"gpt2": "n_positions", "opt": "max_position_embeddings"}


def position_limit(model: nn.Module) -> int | None:
    """Longest sequence ``model`` can embed, or ``None`` if it has no fixed table.

    Examples
    --------
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> position_limit(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, n_positions=64)))
    64
    """
    config = getattr(model, "config", None)
    field = _POSITION_TABLES.get(str(getattr(config, "model_type", "")))
    value = getattr(config, field, None) if field is not None else None
    return int(value) if isinstance(value, int) and value > 0 else None


def check_seqlen(model: nn.Module, seqlen: int, name: str = "seqlen") -> None:
    """Raise ``ValueError`` naming ``name`` if ``seqlen`` exceeds :func:`position_limit`."""
    limit = position_limit(model)
    if limit is not None and seqlen > limit:
        model_type = str(getattr(getattr(model, "config", None), "model_type", ""))
        raise ValueError(
            f"{name}={seqlen} exceeds the {limit} positions that this {model_type} model can "
            f"embed (config.{_POSITION_TABLES[model_type]}); use {name} <= {limit}"
        )
