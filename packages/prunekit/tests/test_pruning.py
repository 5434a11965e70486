"""prune(): exact sparsity on every target, dense embeddings/lm_head, validation before work."""

from __future__ import annotations

import math
import sys
import types
from typing import Any

import pytest
import torch
from prunekit import ADAPTERS, PruneConfig, prune
from prunekit.adapters import get_weight
from prunekit.targets import resolve_targets
from torch import nn


def _config(**kwargs: Any) -> PruneConfig:
    return PruneConfig(**{"nsamples": 8, "seqlen": 32, **kwargs})


def _outside_blocks(model: nn.Module) -> dict[str, torch.Tensor]:
    layers_prefix = ADAPTERS[model.config.model_type].layers_path
    return {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if not n.startswith(layers_prefix)
    }


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_exact_sparsity_and_dense_outside_blocks(
    tiny_model: nn.Module, calibration: torch.Tensor, method: str
) -> None:
    before = _outside_blocks(tiny_model)
    report = prune(tiny_model, _config(method=method, sparsity=0.5), calibration, progress=False)
    targets = resolve_targets(tiny_model)
    assert len(report.layers) == len(targets) > 0
    for target in targets:
        weight = get_weight(target.module)
        # Every width here is even; random-init weights have no zeros of their own.
        assert int((weight == 0).sum()) == weight.numel() // 2, target.name
    assert report.sparsity == pytest.approx(0.5)
    for name, value in _outside_blocks(tiny_model).items():
        assert torch.equal(value, before[name]), f"{name} changed"
    assert report.model_type == tiny_model.config.model_type
    assert report.wall_time_s > 0
    assert report.peak_rss_mib > 0


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_nm_pattern_holds_in_every_group_of_every_module(
    tiny_model: nn.Module, calibration: torch.Tensor, method: str
) -> None:
    prune(
        tiny_model, _config(method=method, pattern="2:4", sparsity=0.5), calibration, progress=False
    )
    for target in resolve_targets(tiny_model):
        weight = get_weight(target.module)
        zeros = (weight == 0).reshape(weight.shape[0], -1, 4).sum(-1)
        assert (zeros == 2).all(), target.name


def test_row_group_gives_exact_count_per_row(
    tiny_model: nn.Module, calibration: torch.Tensor
) -> None:
    prune(
        tiny_model, _config(method="wanda", sparsity=0.25, group="row"), calibration, progress=False
    )
    for target in resolve_targets(tiny_model):
        weight = get_weight(target.module)
        k = math.floor(0.25 * weight.shape[1])
        assert ((weight == 0).sum(1) == k).all(), target.name


def test_ignore_keeps_modules_dense(calibration: torch.Tensor) -> None:
    from conftest import make_llama

    torch.manual_seed(0)
    model = make_llama()
    report = prune(model, _config(method="wanda", ignore=("mlp.*",)), calibration, progress=False)
    assert all("mlp" not in layer.name for layer in report.layers)
    assert not (model.model.layers[0].mlp.down_proj.weight == 0).any()
    assert (model.model.layers[0].self_attn.q_proj.weight == 0).any()


def test_pattern_matching_nothing_is_an_error(
    tiny_model: nn.Module, calibration: torch.Tensor
) -> None:
    weights = {n: p.clone() for n, p in tiny_model.named_parameters()}
    with pytest.raises(ValueError, match="targets pattern 'nothing_like_this'"):
        prune(tiny_model, _config(targets=("nothing_like_this",)), calibration, progress=False)
    with pytest.raises(ValueError, match="ignore pattern 're:zzz'"):
        prune(tiny_model, _config(ignore=("re:zzz",)), calibration, progress=False)
    assert all(torch.equal(p, weights[n]) for n, p in tiny_model.named_parameters())


def test_calibration_validated_before_work(
    tiny_model: nn.Module, calibration: torch.Tensor
) -> None:
    with pytest.raises(ValueError, match=r"shape \(nsamples, seqlen\)"):
        prune(tiny_model, _config(nsamples=4), calibration, progress=False)
    with pytest.raises(ValueError, match="vocab_size"):
        prune(tiny_model, _config(), calibration + 1000, progress=False)
    with pytest.raises(TypeError, match="LongTensor"):
        prune(tiny_model, _config(), calibration.float(), progress=False)


def test_unknown_architecture_lists_known_types(calibration: torch.Tensor) -> None:
    model = nn.Linear(2, 2)
    model.config = types.SimpleNamespace(model_type="bert")  # type: ignore[assignment]
    with pytest.raises(ValueError, match="gpt2, llama, mistral, opt, qwen2"):
        prune(model, _config(), calibration, progress=False)


def test_structured_step_is_delegated(
    tiny_model: nn.Module, calibration: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[nn.Module, PruneConfig, torch.Tensor]] = []

    def fake(model: nn.Module, config: PruneConfig, calib: torch.Tensor) -> dict[str, Any]:
        calls.append((model, config, calib))
        return {"removed_heads": 0}

    monkeypatch.setitem(
        sys.modules, "prunekit.structured", types.SimpleNamespace(prune_structured=fake)
    )
    config = _config(structure="mlp", ratio=0.25, sparsity=0.0)
    report = prune(tiny_model, config, calibration, progress=False)
    assert len(calls) == 1
    assert calls[0][1] is config
    assert report.structured == {"removed_heads": 0}
    assert report.sparsity == 0.0  # sparsity 0: structured only, no unstructured step


def test_model_state_restored(tiny_model: nn.Module, calibration: torch.Tensor) -> None:
    tiny_model.train()
    use_cache = tiny_model.config.use_cache
    prune(tiny_model, _config(method="wanda"), calibration, progress=False)
    assert tiny_model.training
    assert tiny_model.config.use_cache == use_cache


def test_true_sequential_stages_and_exact_sparsity(calibration: torch.Tensor) -> None:
    from conftest import make_llama
    from prunekit.adapters import decoder_layers
    from prunekit.engine import capture_block_inputs
    from prunekit.pruning import _stages

    torch.manual_seed(0)
    model = make_llama()
    block = decoder_layers(model)[0]
    modules = {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}
    inputs = capture_block_inputs(model, calibration, progress=False)
    assert _stages(block, inputs, modules) == [
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        ["self_attn.o_proj"],
        ["mlp.gate_proj", "mlp.up_proj"],
        ["mlp.down_proj"],
    ]
    report = prune(
        model, _config(method="sparsegpt", true_sequential=True), calibration, progress=False
    )
    assert report.sparsity == pytest.approx(0.5)
