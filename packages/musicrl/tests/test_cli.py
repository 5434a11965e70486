"""CLI exit codes via click's CliRunner: 0 success, 2 bad input, 1 a failed run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from musicrl.checkpoint import save_checkpoint
from musicrl.cli import main
from musicrl.corpus import Prompt
from musicrl.generator import GeneratorConfig, MelodyTransformer
from musicrl.preferences import PreferenceStore, write_store
from musicrl.tokenizer import Tokenizer

from .strategies import bar_melody


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    tok = Tokenizer()
    torch.manual_seed(0)
    cfg = GeneratorConfig(
        tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=64, dropout=0.0
    )
    path = tmp_path / "base"
    save_checkpoint(path, MelodyTransformer(cfg), tok, cfg, {})
    return path


def test_finetune_negative_kl_exits_2(tiny_ckpt: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        [
            "finetune",
            "--base",
            str(tiny_ckpt),
            "--out",
            str(tmp_path / "ft"),
            "--rewards",
            "quality",
            "--kl",
            "-0.5",
            "--prompt",
            "G major, 3/4",
        ],
    )
    assert r.exit_code == 2, r.output
    assert "kl" in r.output
    assert ">= 0" in r.output


def test_finetune_unknown_reward_exits_2(tiny_ckpt: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        ["finetune", "--base", str(tiny_ckpt), "--out", str(tmp_path / "ft"), "--rewards", "style"],
    )
    assert r.exit_code == 2
    assert "rewards must be drawn from" in r.output


def test_finetune_runs_and_resumes(tiny_ckpt: Path, tmp_path: Path) -> None:
    args = [
        "finetune",
        "--base",
        str(tiny_ckpt),
        "--out",
        str(tmp_path / "ft"),
        "--rewards",
        "quality",
        "--kl",
        "0.1",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "1",
        "--prompt",
        "G major, 3/4, short",
        "--threads",
        "1",
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["steps"] == 2
    assert out["resumed_from"] is None
    assert (tmp_path / "ft" / "final" / "model.safetensors").is_file()
    events = [
        json.loads(x)["event"] for x in (tmp_path / "ft" / "runs.jsonl").read_text().splitlines()
    ]
    assert events == ["params", "metrics", "metrics", "end"]
    # running again finds the finished checkpoint and resumes after step 2 (nothing to do)
    r2 = CliRunner().invoke(main, args)
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout.strip().splitlines()[-1])["resumed_from"] == 2


def test_sample_writes_midi_and_bad_prompt_exits_2(tiny_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "tune.mid"
    for seed in range(20):  # an untrained model may emit an empty melody for some seeds
        r = CliRunner().invoke(
            main,
            [
                "sample",
                "--checkpoint",
                str(tiny_ckpt),
                "--prompt",
                "G major, 6/8",
                "--out",
                str(out),
                "--seed",
                str(seed),
            ],
        )
        if r.exit_code == 0:
            break
        assert r.exit_code == 1, r.output  # empty melody: a failed run, not bad input
    assert r.exit_code == 0, r.output
    assert out.is_file()
    assert out.read_bytes()[:4] == b"MThd"
    bad = CliRunner().invoke(
        main,
        [
            "sample",
            "--checkpoint",
            str(tiny_ckpt),
            "--prompt",
            "H major",
            "--out",
            str(tmp_path / "x.mid"),
        ],
    )
    assert bad.exit_code == 2
    assert "unknown prompt tag" in bad.output


def test_failed_run_exits_1(
    tiny_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import musicrl.generator

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sampler crashed")

    monkeypatch.setattr(musicrl.generator, "sample", boom)
    r = CliRunner().invoke(
        main,
        [
            "sample",
            "--checkpoint",
            str(tiny_ckpt),
            "--prompt",
            "G major",
            "--out",
            str(tmp_path / "t.mid"),
        ],
    )
    assert r.exit_code == 1
    assert "sampler crashed" in r.output


def test_train_reward_malformed_store_exits_2(tmp_path: Path) -> None:
    store = PreferenceStore()
    p = Prompt.parse("C major, 4/4")
    store.add(
        p,
        bar_melody([60, 62], [24, 24], "4/4"),
        bar_melody([62, 60], [24, 24], "4/4"),
        "A",
        "simulated-0",
    )
    path = tmp_path / "s.jsonl"
    write_store(store, path)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"choice": "A", ', "")
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(
        main, ["train-reward", "--store", str(path), "--out", str(tmp_path / "rm.pt")]
    )
    assert r.exit_code == 2
    assert "line 3" in r.output
    assert "choice" in r.output
    assert not (tmp_path / "rm.pt").exists()


def test_evaluate_reports_win_rate(tiny_ckpt: Path) -> None:
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(tiny_ckpt),
            str(tiny_ckpt),
            "--prompts",
            "8",
            "--prompt",
            "C major, 4/4, short",
            "--max-new-tokens",
            "24",
            "--threads",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["wins"] + out["losses"] + out["ties"] == 8
    assert out["judge"].startswith("simulated-")
