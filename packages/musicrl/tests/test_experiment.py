"""The experiment helpers: simulated preference collection and the results table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from musicrl.corpus import Prompt
from musicrl.evaluation import sample_stats, win_rate
from musicrl.experiment import (
    ExperimentConfig,
    ExperimentResult,
    ModelReport,
    markdown_table,
    simulate_preferences,
)
from musicrl.generator import GeneratorConfig, MelodyTransformer
from musicrl.tokenizer import Tokenizer

from .strategies import bar_melody


def test_simulated_records_are_labelled_and_complete() -> None:
    tok = Tokenizer()
    torch.manual_seed(0)
    cfg = GeneratorConfig(tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=64)
    prompts = [Prompt.parse("G major, 3/4, short")] * 10
    store = simulate_preferences(MelodyTransformer(cfg), tok, prompts, max_new_tokens=20)
    assert 0 < len(store) <= 10  # identical pairs are skipped
    assert all(r.rater.startswith("simulated-") for r in store.records)
    assert {r.rater for r in store.records} <= {f"simulated-{s}" for s in range(5)}


def test_markdown_table_ratios_to_base(tmp_path: Path) -> None:
    p = Prompt.parse("C major, 4/4")
    short = bar_melody([60, 62, 64, 65], [12] * 4, "4/4")
    long = bar_melody([60, 62, 64, 65, 67, 65, 64, 62], [12] * 8, "4/4")
    base = sample_stats([p], [short])
    rows = [
        ModelReport("base (control)", win_rate(5, 5), base, 0.0),
        ModelReport("X", win_rate(8, 2, 1), sample_stats([p], [long]), 1.0),
    ]
    res = ExperimentResult(
        ExperimentConfig(cache_dir=tmp_path), base, rows, 0.7, 0.8, 10, 2, 0.1, 0.9, 0.9, 0.9, {}
    )
    table = markdown_table(res)
    assert "| base (control) | 50.0%" in table
    # X has 8 notes vs the base's 4: ratio 2.00; win rate 8 / (8 + 2) = 80%
    assert "| X | 80.0%" in table
    assert "8.0 (2.00)" in table


def test_eval_draws_must_be_a_positive_int(tmp_path: Path) -> None:
    assert ExperimentConfig(cache_dir=tmp_path, n_eval_draws=5).n_eval_draws == 5
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_eval_draws"):
            ExperimentConfig(cache_dir=tmp_path, n_eval_draws=bad)  # type: ignore[arg-type]
