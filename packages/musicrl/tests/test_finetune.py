"""REINFORCE + KL: a toy reward goes up with KL 0, stays near the base with a large KL;
checkpoints resume to the uninterrupted result; bad settings are rejected."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from musicrl.corpus import Melody, Prompt
from musicrl.finetune import (
    FinetuneConfig,
    finetune,
    kl_penalised_return,
    normalise_rewards,
    reinforce_loss,
)
from musicrl.generator import GeneratorConfig, MelodyTransformer
from musicrl.tokenizer import Tokenizer

PROMPTS = [Prompt.parse("G major, 3/4, short"), Prompt.parse("D minor, 4/4, medium")]


class HighNotes:
    """Toy reward: share of pitched notes at or above C5 (MIDI 72); 0 for no pitch."""

    name = "quality"  # stands in for a registered reward name

    def score(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray:
        return np.array(
            [np.mean([p >= 72 for p in m.pitches]) if m.pitches else 0.0 for m in melodies]
        )


def _tiny_model(seed: int = 0) -> tuple[MelodyTransformer, Tokenizer]:
    tok = Tokenizer()
    torch.manual_seed(seed)
    cfg = GeneratorConfig(
        tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=64, dropout=0.0
    )
    return MelodyTransformer(cfg).eval(), tok


def _cfg(**kw: object) -> FinetuneConfig:
    base = dict(
        rewards={"quality": 1.0},
        steps=30,
        batch_size=16,
        lr=3e-3,
        max_new_tokens=24,
        seed=0,
        threads=1,
    )
    base.update(kw)
    return FinetuneConfig(**base)  # type: ignore[arg-type]


def _mean_reward(model: MelodyTransformer, tok: Tokenizer, seed: int = 123) -> float:
    from musicrl.generator import sample

    g = torch.Generator().manual_seed(seed)
    batch = sample(model, tok, PROMPTS * 64, max_new_tokens=24, generator=g)
    return float(HighNotes().score(batch.prompts, batch.melodies).mean())


def test_kl_zero_increases_toy_reward_and_large_kl_stays_near_base() -> None:
    model, tok = _tiny_model()
    before = _mean_reward(model, tok)
    free = finetune(model, tok, PROMPTS, {"quality": HighNotes()}, _cfg(kl=0.0), progress=False)
    after = _mean_reward(free.model, tok)
    # 128 held-out samples: the toy reward rises well beyond sampling noise (sd ~0.03)
    assert after > before + 0.15, (before, after)
    tied = finetune(model, tok, PROMPTS, {"quality": HighNotes()}, _cfg(kl=50.0), progress=False)
    tied_after = _mean_reward(tied.model, tok)
    assert abs(tied_after - before) < (after - before) / 2, (before, tied_after, after)
    kl_free = np.mean([h["kl"] for h in free.history[-5:]])
    kl_tied = np.mean([h["kl"] for h in tied.history[-5:]])
    assert kl_tied < kl_free
    # the base model itself was not modified
    assert _mean_reward(model, tok) == before


def test_resume_reproduces_uninterrupted_run(tmp_path: Path) -> None:
    model, tok = _tiny_model()
    cfg = _cfg(steps=4, checkpoint_every=2, kl=0.1)
    full = finetune(
        model, tok, PROMPTS, {"quality": HighNotes()}, cfg, tmp_path / "a", progress=False
    )

    def crash(step: int, metrics: dict[str, float]) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(
            model,
            tok,
            PROMPTS,
            {"quality": HighNotes()},
            cfg,
            tmp_path / "b",
            progress=False,
            on_step=crash,
        )
    assert not (tmp_path / "b" / "final").exists()
    resumed = finetune(
        model, tok, PROMPTS, {"quality": HighNotes()}, cfg, tmp_path / "b", progress=False
    )
    assert resumed.resumed_from == 2
    for (k, v), (k2, v2) in zip(
        full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert k == k2
        torch.testing.assert_close(v, v2, rtol=0, atol=1e-6)
    assert len(resumed.history) == 4
    # a different setting in the same folder is refused rather than silently mixed
    with pytest.raises(ValueError, match="other settings"):
        finetune(
            model,
            tok,
            PROMPTS,
            {"quality": HighNotes()},
            _cfg(steps=4, kl=0.2),
            tmp_path / "b",
            progress=False,
        )


def test_negative_kl_is_an_error() -> None:
    with pytest.raises(ValueError, match="kl"):
        FinetuneConfig(kl=-0.1)
    with pytest.raises(ValueError, match="beta"):
        kl_penalised_return(torch.zeros(1), torch.zeros(1), torch.zeros(1), -1.0)


def test_config_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match="rewards must be drawn from"):
        FinetuneConfig(rewards={"style": 1.0})
    with pytest.raises(ValueError, match="not all be 0"):
        FinetuneConfig(rewards={"quality": 0.0})
    with pytest.raises(ValueError, match="steps"):
        FinetuneConfig(steps=0)
    model, tok = _tiny_model()
    with pytest.raises(ValueError, match="missing"):
        finetune(model, tok, PROMPTS, {}, _cfg(), progress=False)


def test_normalised_rewards_and_losses_hand_values() -> None:
    # a: [1, 3] -> z = [-1, 1]; b: [5, 5] -> z = [0, 0]; weights 2 and 1
    out = normalise_rewards(
        {"a": np.array([1.0, 3.0]), "b": np.array([5.0, 5.0])}, {"a": 2.0, "b": 1.0}
    )
    np.testing.assert_allclose(out, [-2.0, 2.0], atol=1e-5)
    # G = r - β (logπ - logπ_base) = 1 - 0.5 * (-2 - (-4)) = 0
    g = kl_penalised_return(torch.tensor([1.0]), torch.tensor([-2.0]), torch.tensor([-4.0]), 0.5)
    assert float(g) == 0.0
    lp = torch.tensor([-1.0, -2.0], requires_grad=True)
    loss = reinforce_loss(lp, torch.tensor([1.0, -1.0]))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(-0.5)  # -(1*-1 + -1*-2)/2
    assert lp.grad is not None
    np.testing.assert_allclose(lp.grad.numpy(), [-0.5, 0.5])
