"""Tests of atomic checkpoint save/load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from musicrl.checkpoint import is_checkpoint, load_checkpoint, save_checkpoint
from musicrl.generator import GeneratorConfig, MelodyTransformer
from musicrl.tokenizer import Tokenizer

TOK = Tokenizer()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_model(seed: int) -> MelodyTransformer:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(
        TOK.vocab_size, d_model=32, n_layers=2, n_heads=2, max_len=40, dropout=0.1
    )
    return MelodyTransformer(cfg).eval()


def test_save_load_identical_logits(tmp_path: Path) -> None:
    model = make_model(0)
    path = save_checkpoint(tmp_path / "ckpt", model, TOK, model.config, {"step": 3, "note": "x"})
    assert is_checkpoint(path)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    ck = load_checkpoint(path)
    assert ck.gen_config == model.config
    assert ck.tokenizer == TOK
    assert ck.extra == {"step": 3, "note": "x"}
    assert not ck.model.training
    ids = torch.randint(0, TOK.vocab_size, (2, 30), generator=torch.Generator().manual_seed(0))
    assert torch.equal(ck.model(ids), model(ids))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temp folders left


def test_overwrite_replaces_checkpoint_but_not_other_folders(tmp_path: Path) -> None:
    a, b = make_model(1), make_model(2)
    path = tmp_path / "last"
    save_checkpoint(path, a, TOK, a.config, {"step": 1})
    save_checkpoint(path, b, TOK, b.config, {"step": 2})
    ck = load_checkpoint(path)
    ids = torch.randint(0, TOK.vocab_size, (1, 10), generator=torch.Generator().manual_seed(0))
    assert ck.extra["step"] == 2
    assert torch.equal(ck.model(ids), b(ids))
    assert [p.name for p in tmp_path.iterdir()] == ["last"]
    other = tmp_path / "data"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(ValueError, match="not a musicrl checkpoint"):
        save_checkpoint(other, a, TOK, a.config, {})
    assert (other / "keep.txt").read_text() == "precious"


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    model = make_model(3)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "c", model, TOK, model.config, {"bad": object()})
    with pytest.raises(ValueError, match="does not match"):
        save_checkpoint(tmp_path / "c", model, TOK, GeneratorConfig(TOK.vocab_size), {})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="not a musicrl checkpoint"):
        load_checkpoint(tmp_path / "c")
