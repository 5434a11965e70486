"""Saving: stock transformers reloads identical logits; atomic; never over existing or source."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from prunekit import PruneConfig, prune, save_model
from torch import nn
from transformers import AutoModelForCausalLM


def test_save_reload_identical_logits(
    tiny_model: nn.Module, calibration: torch.Tensor, tmp_path: Path
) -> None:
    config = PruneConfig(method="sparsegpt", sparsity=0.5, nsamples=8, seqlen=32)
    prune(tiny_model, config, calibration, progress=False)
    out = save_model(tiny_model, tmp_path / "pruned")
    assert (out / "config.json").is_file()
    assert list(out.glob("*.safetensors"))
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        expected = tiny_model(calibration).logits
        got = reloaded(calibration).logits
    assert torch.equal(got, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["pruned"]  # no temporary folder left


def test_refuses_existing_folder(tiny_model: nn.Module, tmp_path: Path) -> None:
    target = tmp_path / "exists"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        save_model(tiny_model, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_refuses_source_folder(tiny_model: nn.Module, model_dir: Path) -> None:
    with pytest.raises(ValueError, match="source"):
        save_model(tiny_model, model_dir, source=model_dir)


def test_failure_leaves_no_partial_folder(
    tiny_model: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(folder: Path, **_: object) -> None:
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # an interruption in the middle of writing

    monkeypatch.setattr(tiny_model, "save_pretrained", broken)
    with pytest.raises(KeyboardInterrupt):
        save_model(tiny_model, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_is_an_error(tiny_model: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parent folder"):
        save_model(tiny_model, tmp_path / "no" / "such" / "dir")
