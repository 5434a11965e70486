"""Sequential engine: captured inputs equal a full forward; hooks always removed; statistics."""

from __future__ import annotations

import pytest
import torch
from conftest import hidden_states, prunable_modules, record_inputs
from prunekit.adapters import decoder_layers, get_weight, is_prunable, set_weight
from prunekit.engine import (
    capture_block_inputs,
    collect_statistics,
    run_statistics_pass,
    sequential_blocks,
)
from prunekit.methods import magnitude_prune
from torch import nn


def test_block_inputs_equal_full_forward_when_nothing_pruned(
    tiny_model: nn.Module, calibration: torch.Tensor
) -> None:
    # hidden_states[i] of a full batched forward is the input of block i.
    reference = hidden_states(tiny_model, calibration)
    seen = 0
    for step in sequential_blocks(tiny_model, calibration, progress=False):
        torch.testing.assert_close(step.inputs.hidden, reference[step.index], rtol=1e-5, atol=1e-5)
        seen += 1
    assert seen == len(decoder_layers(tiny_model))


def test_block_inputs_follow_the_pruned_model(
    tiny_model: nn.Module, calibration: torch.Tensor
) -> None:
    # Pruning block i inside the loop must change what block i + 1 receives: the inputs the
    # engine hands out equal the hidden states of the final pruned model.
    recorded = []
    for step in sequential_blocks(tiny_model, calibration, progress=False):
        recorded.append(step.inputs.hidden.clone())
        for module in step.block.modules():
            if is_prunable(module):
                set_weight(module, magnitude_prune(get_weight(module), sparsity=0.5).weight)
    reference = hidden_states(tiny_model, calibration)
    for index, hidden in enumerate(recorded):
        torch.testing.assert_close(hidden, reference[index], rtol=1e-5, atol=1e-5)


def test_bfloat16_forwards_stay_close(tiny_model: nn.Module, calibration: torch.Tensor) -> None:
    reference = hidden_states(tiny_model, calibration)
    for step in sequential_blocks(
        tiny_model, calibration, forward_dtype="bfloat16", progress=False
    ):
        assert step.inputs.hidden.dtype == torch.bfloat16
        got = step.inputs.hidden.float()
        rel = (got - reference[step.index]).norm() / reference[step.index].norm()
        assert rel < 0.05  # bfloat16 has 8 significant bits (~0.4% per rounding)


def test_capture_hook_removed_after_error(tiny_model: nn.Module) -> None:
    first = decoder_layers(tiny_model)[0]
    bad = torch.full((1, 8), 10_000)  # token ids beyond the vocabulary: embedding fails
    with pytest.raises(IndexError):
        capture_block_inputs(tiny_model, bad, progress=False)
    assert not first._forward_pre_hooks


def test_statistics_hooks_removed_after_error(tiny_model: nn.Module) -> None:
    block = decoder_layers(tiny_model)[0]
    modules = prunable_modules(block)
    def fail_inside() -> None:
        with collect_statistics(modules, "hessian"):
            assert all(m._forward_pre_hooks for m in modules.values())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert not any(m._forward_pre_hooks for m in modules.values())


def test_statistics_match_direct_computation(
    tiny_model: nn.Module, calibration: torch.Tensor
) -> None:
    # Reference: record every input of every Linear of block 0 with plain hooks on a full run.
    block = decoder_layers(tiny_model)[0]
    modules = prunable_modules(block)
    inputs = capture_block_inputs(tiny_model, calibration, progress=False)
    recorded = record_inputs(block, inputs, modules)
    hessians = run_statistics_pass(block, inputs, modules, "hessian")
    norms = run_statistics_pass(block, inputs, modules, "input_norms")
    for name in modules:
        x = recorded[name]
        expected_h = 2 * x.T @ x / x.shape[0]
        torch.testing.assert_close(
            hessians.statistics(name).hessian, expected_h, rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(
            norms.statistics(name).input_sq_norms, x.square().sum(0), rtol=1e-4, atol=1e-5
        )
        assert hessians.statistics(name).nsamples == x.shape[0]
    # Modules reading one tensor (q/k/v after the same layer norm) share one accumulator.
    if tiny_model.config.model_type == "llama":
        assert hessians.alias.get("self_attn.k_proj") == "self_attn.q_proj"
        assert hessians.alias.get("mlp.up_proj") == "mlp.gate_proj"
        # From the second sample on, the pass stops right after down_proj's input is seen.
        assert hessians.stop_after == "mlp.down_proj"
