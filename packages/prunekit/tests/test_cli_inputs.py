"""CLI and loader checks on inputs found by a bad-input audit: each is refused with exit 2
and a message naming the parameter, before any work, and never writes over an input."""

from __future__ import annotations

import bz2
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import make_gpt2, make_tokenizer
from prunekit import PruneConfig, prune
from prunekit.adapters import check_seqlen, position_limit
from prunekit.cli import _interrupted
from prunekit.loading import load_model
from prunekit.structured.allocation import allocate_channels
from test_cli import _prune_args as _wanda
from test_cli import _run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_report_never_overwrites_an_input(model_dir: Path, text_file: Path) -> None:
    before = _snapshot(model_dir)
    calib = text_file.read_bytes()
    config = str(model_dir / "config.json")
    code, _, stderr = _run(*_wanda(model_dir, text_file, "--report", config))
    assert code == 2
    assert "--report" in stderr
    assert "source" in stderr
    code, _, stderr = _run(*_wanda(model_dir, text_file, "--report", str(text_file)))
    assert code == 2
    assert "--report" in stderr
    assert "inputs" in stderr
    assert _snapshot(model_dir) == before
    assert text_file.read_bytes() == calib


def test_report_that_is_a_folder_or_inside_save_is_refused_before_work(
    model_dir: Path, text_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    folder = tmp_path / "somedir"
    folder.mkdir()
    for report, words in ((folder, "is a folder"), (out / "r.json", "--save folder")):
        code, _, stderr = _run(
            *_wanda(model_dir, text_file, "--save", str(out), "--report", str(report))
        )
        assert code == 2
        assert words in stderr
        assert not out.exists()


def test_failed_report_write_removes_the_saved_folder(
    model_dir: Path, text_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("prunekit.report.PruneReport.write_json", refuse)
    out, report = tmp_path / "out", tmp_path / "r.json"
    code, _, stderr = _run(
        *_wanda(model_dir, text_file, "--save", str(out), "--report", str(report))
    )
    assert code == 1
    assert "disk full" in stderr
    assert not out.exists()
    assert not report.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_save_inside_the_source_folder_is_refused(model_dir: Path, text_file: Path) -> None:
    code, _, stderr = _run(*_wanda(model_dir, text_file, "--save", str(model_dir / "sub")))
    assert code == 2
    assert "--save" in stderr
    assert "inside" in stderr
    assert not (model_dir / "sub").exists()


@pytest.mark.parametrize("kind", ["folder", "binary"])
def test_unreadable_config_is_a_clean_error(model_dir: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "run.toml"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b'method = "\xff\xfe"\n')
    code, _, stderr = _run("prune", str(model_dir), "--config", str(path), "--no-progress")
    assert code == 2
    assert "--config" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("flag", ["--calib", "--eval-data"])
def test_corrupt_bz2_names_the_flag(
    model_dir: Path, text_file: Path, tmp_path: Path, flag: str
) -> None:
    bad = tmp_path / "dump.xml.bz2"
    good = bz2.compress(b"<mediawiki>" + b"x" * 4000)
    bad.write_bytes(good[:10] + bytes(200) + good[10:60])  # valid header, garbage body
    args = _wanda(model_dir, text_file)
    if flag == "--calib":
        args[args.index("--calib") + 1] = str(bad)
    else:
        args += ["--eval-data", str(bad)]
    code, _, stderr = _run(*args)
    assert code == 2
    assert flag in stderr


def test_seqlen_beyond_learned_positions_is_refused(tmp_path: Path, text_file: Path) -> None:
    model = make_gpt2()  # n_positions = 128
    folder = tmp_path / "tiny-gpt2"
    model.save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)  # type: ignore[attr-defined]
    assert position_limit(model) == 128
    check_seqlen(model, 128)
    with pytest.raises(ValueError, match="seqlen=129 exceeds the 128 positions"):
        check_seqlen(model, 129)
    code, _, stderr = _run(
        "eval", str(folder), "--data", str(text_file), "--seqlen", "200", "--nsamples", "1",
        "--no-progress",
    )  # fmt: skip
    assert code == 2
    assert "--seqlen=200 exceeds the 128 positions" in stderr
    code, _, stderr = _run(*_wanda(folder, text_file)[:-3], "--seqlen", "200", "--no-progress")
    assert code == 2
    assert "--seqlen=200" in stderr
    code, _, stderr = _run(
        "prune", str(folder), "--method", "magnitude", "--speed", "1", "--speed-seqlen", "1000",
        "--no-progress",
    )  # fmt: skip
    assert code == 2
    assert "--speed-seqlen=1000" in stderr
    cfg = PruneConfig(method="wanda", sparsity=0.5, nsamples=1, seqlen=129)
    with pytest.raises(ValueError, match="seqlen=129"):
        prune(model, cfg, torch.zeros((1, 129), dtype=torch.long), progress=False)


def test_rotary_models_have_no_position_limit(model_dir: Path) -> None:
    assert position_limit(load_model(model_dir).model) is None


def test_magnitude_needs_no_calibration_tensor(model_dir: Path) -> None:
    loaded = load_model(model_dir)
    # A huge nsamples x seqlen costs nothing when nothing reads the data.
    cfg = PruneConfig(method="magnitude", sparsity=0.5, nsamples=10**6, seqlen=10**6)
    report = prune(loaded.model, cfg, None, progress=False)
    assert report.sparsity == pytest.approx(0.5)
    with pytest.raises(ValueError, match="calibration is required for method 'wanda'"):
        prune(loaded.model, PruneConfig(method="wanda", sparsity=0.5), None, progress=False)


def test_channel_multiple_at_or_above_the_width_is_refused() -> None:
    with pytest.raises(ValueError, match="channel_multiple=1000 must be below the MLP width"):
        allocate_channels(64, 0.5, multiple=1000)
    assert allocate_channels(64, 0.5, multiple=8) == 32
    assert allocate_channels(64, 0.0, multiple=64) == 64  # nothing asked, nothing refused


def test_model_folder_problems_name_model_and_exit_2(tmp_path: Path, model_dir: Path) -> None:
    tokenizer_files = [p for p in model_dir.iterdir() if p.name.startswith(("tok", "special"))]
    cfg_only = tmp_path / "cfgonly"  # config and tokenizer, no weights
    cfg_only.mkdir()
    for path in [model_dir / "config.json", *tokenizer_files]:
        shutil.copy(path, cfg_only / path.name)
    no_tok = tmp_path / "notok"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, no_tok / name)
    bad_json = tmp_path / "badcfg"
    bad_json.mkdir()
    for path in tokenizer_files:
        shutil.copy(path, bad_json / path.name)
    (bad_json / "config.json").write_text("{not json")
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(256))
    for spec, words in (
        (no_tok, "no tokenizer files"),
        (cfg_only, "could not be loaded"),
        (bad_json, "could not be loaded"),
        (gguf, "GGUF"),
    ):
        code, _, stderr = _run("inspect", str(spec))
        assert code == 2, (spec, stderr)
        assert "MODEL" in stderr
        assert words in stderr, stderr
        assert "Traceback" not in stderr


def test_missing_relative_path_is_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # "in/nope" is shaped like a hub id; offline, the hub cannot serve it.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    code, _, stderr = _run("inspect", "in/nope")
    assert code == 2
    assert "MODEL 'in/nope'" in stderr
    assert "check the path" in stderr


def test_interrupt_wrapped_by_a_library_counts_as_interrupt() -> None:
    wrapped = ModuleNotFoundError("Could not import module 'LlamaConfig'")
    wrapped.__context__ = KeyboardInterrupt()
    assert _interrupted(wrapped)
    assert not _interrupted(RuntimeError("plain failure"))


def test_perplexity_names_float_tokens(model_dir: Path) -> None:
    from prunekit.evaluation import perplexity

    model = load_model(model_dir).model
    with pytest.raises(TypeError, match="tokens must be an integer torch tensor"):
        perplexity(model, torch.rand(1, 200), seqlen=32, progress=False)
