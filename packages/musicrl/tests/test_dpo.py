"""DPO: the loss by hand, and it decreases on synthetic preference pairs."""

from __future__ import annotations

import math

import pytest
import torch
from musicrl.corpus import Prompt
from musicrl.dpo import DPOConfig, dpo_finetune, dpo_loss
from musicrl.generator import GeneratorConfig, MelodyTransformer
from musicrl.preferences import PreferenceStore
from musicrl.tokenizer import Tokenizer

from .strategies import bar_melody


def test_dpo_loss_hand_value() -> None:
    # margin = (−1 − (−2)) − (−3 − (−3)) = 1; β = 2 -> −log σ(2) = log(1 + e^−2)
    loss = dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-3.0]), 2.0
    )
    assert float(loss) == pytest.approx(math.log1p(math.exp(-2.0)))
    with pytest.raises(ValueError, match="beta"):
        DPOConfig(beta=0.0)


def test_dpo_loss_decreases_on_synthetic_pairs() -> None:
    tok = Tokenizer()
    torch.manual_seed(0)
    cfg = GeneratorConfig(
        tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=64, dropout=0.0
    )
    base = MelodyTransformer(cfg).eval()
    store = PreferenceStore()
    p = Prompt.parse("C major, 4/4, short")
    # preferred: stepwise in C major; rejected: chromatic leaps; 8 distinct pairs
    for k in range(8):
        good = bar_melody([60 + (k % 3), 62, 64, 65, 67, 65, 64, 60], [24] * 8, "4/4")
        bad = bar_melody([61 + k, 75, 63, 78, 66, 80, 68, 82], [24] * 8, "4/4")
        store.add(p, good, bad, "A", "simulated-0")
    store.add(p, good, bad, "tie", "simulated-0")  # ties are left out
    res = dpo_finetune(
        base, tok, store, DPOConfig(epochs=15, batch_size=8, lr=3e-3), progress=False
    )
    assert res.n_pairs == 8
    # starts at log 2 (policy = reference) and falls
    assert res.losses[0] == pytest.approx(math.log(2), abs=1e-4)
    assert res.losses[-1] < 0.5 * res.losses[0]


def test_dpo_without_pairs_is_an_error() -> None:
    tok = Tokenizer()
    cfg = GeneratorConfig(tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=64)
    store = PreferenceStore()
    m = bar_melody([60, 62], [24, 24], "4/4")
    store.add(
        Prompt.parse("C major"), m, bar_melody([62, 60], [24, 24], "4/4"), "tie", "simulated-0"
    )
    with pytest.raises(ValueError, match="no usable non-tie pair"):
        dpo_finetune(MelodyTransformer(cfg), tok, store, progress=False)
