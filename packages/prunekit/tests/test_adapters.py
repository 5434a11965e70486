"""Adapters: every registered layout resolves on a real model; Conv1D weights read as (out, in)."""

from __future__ import annotations

import pytest
import torch
from prunekit.adapters import (
    ADAPTERS,
    decoder_layers,
    get_adapter,
    get_weight,
    resolve_module,
    set_weight,
)
from torch import nn


def test_adapter_names_resolve(tiny_model: nn.Module) -> None:
    adapter = get_adapter(tiny_model)
    config = tiny_model.config
    block = decoder_layers(tiny_model)[0]
    hidden = adapter.hidden_size(config)
    inter = adapter.intermediate_size(config)
    q = get_weight(resolve_module(block, adapter.q_proj))
    assert q.shape[1] == hidden
    # Fused GPT-2 c_attn holds q, k and v: 3 * hidden outputs.
    expected_q_out = (
        3 * hidden if adapter.fused_qkv else adapter.num_heads(config) * adapter.head_dim(config)
    )
    assert q.shape[0] == expected_q_out
    if not adapter.fused_qkv:
        k = get_weight(resolve_module(block, adapter.k_proj))
        assert k.shape[0] == adapter.num_kv_heads(config) * adapter.head_dim(config)
    assert get_weight(resolve_module(block, adapter.o_proj)).shape == (hidden, hidden)
    for name in adapter.mlp_in:
        assert get_weight(resolve_module(block, name)).shape == (inter, hidden)
    assert get_weight(resolve_module(block, adapter.mlp_out)).shape == (hidden, inter)


def test_llama_fixture_uses_grouped_query_attention(tiny_model: nn.Module) -> None:
    adapter = get_adapter(tiny_model)
    if tiny_model.config.model_type == "llama":
        assert adapter.num_kv_heads(tiny_model.config) < adapter.num_heads(tiny_model.config)


def test_conv1d_weight_round_trip() -> None:
    from transformers.pytorch_utils import Conv1D

    conv = Conv1D(nf=6, nx=4)  # 4 inputs, 6 outputs, weight stored (4, 6)
    x = torch.randn(3, 4)
    w = get_weight(conv)
    assert w.shape == (6, 4)
    torch.testing.assert_close(conv(x), x @ w.T + conv.bias)
    new = torch.randn(6, 4)
    set_weight(conv, new)
    torch.testing.assert_close(conv(x), x @ new.T + conv.bias)
    with pytest.raises(ValueError, match=r"\(out, in\) = \(6, 4\)"):
        set_weight(conv, torch.zeros(4, 6))


def test_registry_and_errors() -> None:
    assert set(ADAPTERS) >= {"llama", "qwen2", "mistral", "opt", "gpt2"}
    with pytest.raises(TypeError, match=r"config\.model_type"):
        get_adapter(nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"nn\.Linear or transformers Conv1D"):
        get_weight(nn.LayerNorm(3))
