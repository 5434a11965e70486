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
    leave_one_out_advantage,
    normal_scores,
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
        warmup_steps=0,  # 30 steps of a toy problem: no room for a warm-up
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
    # The random-init toy model seldom ends a melody within the 24-token cap, so the
    # cut-off rule (tested below) would turn this into "learn to finish first".
    toy = {"unfinished_last": False}
    free = finetune(
        model, tok, PROMPTS, {"quality": HighNotes()}, _cfg(kl=0.0, **toy), progress=False
    )
    after = _mean_reward(free.model, tok)
    # 128 held-out samples: the toy reward rises well beyond sampling noise (sd ~0.03)
    assert after > before + 0.15, (before, after)
    tied = finetune(
        model, tok, PROMPTS, {"quality": HighNotes()}, _cfg(kl=50.0, **toy), progress=False
    )
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
    with pytest.raises(ValueError, match="normalise must be one of"):
        FinetuneConfig(normalise="minmax")
    with pytest.raises(ValueError, match="multiple of samples_per_prompt"):
        FinetuneConfig(batch_size=30, samples_per_prompt=4)
    with pytest.raises(ValueError, match="warmup_steps"):
        FinetuneConfig(warmup_steps=-1)
    with pytest.raises(ValueError, match="method must be one of"):
        normalise_rewards({"a": np.zeros(2)}, {"a": 1.0}, method="minmax")
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


def test_unfinished_melodies_rank_below_every_finished_one() -> None:
    r = np.array([5.0, 1.0, 9.0, 3.0, 7.0])
    valid = np.array([True, True, False, True, False])
    q = normalise_rewards({"a": r}, {"a": 1.0}, "rank", valid)
    assert q[2] == q[4] < q[[0, 1, 3]].min()  # the cut-off ones share the lowest ranks
    assert np.array_equal(np.argsort(q[[0, 1, 3]]), np.argsort(r[[0, 1, 3]]))
    z = normalise_rewards({"a": r}, {"a": 1.0}, "zscore", valid)
    assert z[2] == z[4] == z[1]  # the worst finished value
    # all valid or none valid: exactly the plain normalisation
    for v in (np.ones(5, bool), np.zeros(5, bool)):
        np.testing.assert_array_equal(
            normalise_rewards({"a": r}, {"a": 1.0}, "rank", v),
            normalise_rewards({"a": r}, {"a": 1.0}, "rank"),
        )
    for wrong in (np.array([True, False]), np.ones(4, bool)):
        with pytest.raises(ValueError, match="valid"):
            normalise_rewards({"a": r}, {"a": 1.0}, "rank", wrong)


class _Longer:
    """Toy reward that prefers longer melodies: without the rule it pushes into the cap."""

    name = "quality"

    def score(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray:
        return np.array([float(len(m.notes)) for m in melodies])


def test_ranking_cut_off_melodies_last_keeps_them_finishing() -> None:
    model, tok = _tiny_model(seed=3)
    runs = {}
    for flag in (True, False):
        cfg = _cfg(kl=0.0, steps=25, max_new_tokens=40, unfinished_last=flag)
        runs[flag] = finetune(model, tok, PROMPTS, {"quality": _Longer()}, cfg, progress=False)
    done = {f: np.mean([h["finished"] for h in r.history[-5:]]) for f, r in runs.items()}
    assert done[True] > done[False] + 0.2, done


def test_normal_scores_are_order_only_centred_and_unit_scale() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(size=64)
    z = normal_scores(r)
    # order preserved, centred; std near 1 (normal quantiles at (i - 1/2)/n)
    assert np.array_equal(np.argsort(z), np.argsort(r))
    assert abs(z.mean()) < 1e-12
    assert 0.9 < z.std() < 1.0
    # depends on the order only: any increasing transform gives the same scores
    np.testing.assert_allclose(normal_scores(np.exp(3 * r) - 7), z)
    # ties share a score; a constant batch scores 0 everywhere
    t = normal_scores(np.array([1.0, 2.0, 2.0, 5.0]))
    assert t[1] == t[2]
    assert t[0] < t[1] < t[3]
    np.testing.assert_allclose(normal_scores(np.full(5, 3.0)), 0.0, atol=1e-12)


def test_rank_normalisation_resists_an_outlier_that_squashes_zscores() -> None:
    # 31 log-probabilities around -8 and one at -60: the z-score spreads the 31 over a
    # small fraction of the outlier's distance; normal scores keep them spread out
    rng = np.random.default_rng(1)
    r = np.append(-8 + rng.normal(size=31), -60.0)
    z = normalise_rewards({"a": r}, {"a": 1.0}, "zscore")
    q = normalise_rewards({"a": r}, {"a": 1.0}, "rank")
    assert z[:31].std() < 0.3 < 0.8 < q[:31].std()
    assert np.array_equal(np.argsort(z), np.argsort(q))  # same order either way


def test_leave_one_out_advantage_compares_each_sample_with_its_prompts_others() -> None:
    rng = np.random.default_rng(2)
    ret = torch.tensor(rng.normal(size=12), dtype=torch.float32)
    b = torch.tensor(rng.normal(size=12), dtype=torch.float32)
    adv = leave_one_out_advantage(ret, b, group_size=4)
    d = (ret - b).numpy()
    for i in range(12):
        g = range(4 * (i // 4), 4 * (i // 4) + 4)
        others = [d[j] for j in g if j != i]
        assert float(adv[i]) == pytest.approx(d[i] - np.mean(others), abs=1e-5)
    # every prompt's advantages sum to zero: no batch-wide push up or down
    np.testing.assert_allclose(adv.view(3, 4).sum(1).numpy(), 0.0, atol=1e-5)
    # a constant shift of the returns (the KL level moving) changes nothing
    torch.testing.assert_close(leave_one_out_advantage(ret + 5.0, b, 4), adv)
    # group_size 0: the whole batch is one group
    whole = leave_one_out_advantage(ret, b, 0)
    assert abs(float(whole.sum())) < 1e-4
    with pytest.raises(ValueError, match="group_size"):
        leave_one_out_advantage(ret, b, 5)


def test_length_neutral_kl_charges_per_token_divergence_not_length() -> None:
    reward = torch.zeros(2)
    # a 10-token and a 40-token melody, both 0.1 nats per token away from the base
    pol = torch.tensor([-10.0, -40.0])
    base = torch.tensor([-11.0, -44.0])
    lengths = torch.tensor([10, 40])
    plain = kl_penalised_return(reward, pol, base, 0.5)
    neutral = kl_penalised_return(reward, pol, base, 0.5, lengths)
    assert float(plain[0]) > float(plain[1])  # the plain sum favours the short one
    assert float(neutral[0]) == pytest.approx(float(neutral[1]))
    # same mean length: the two forms agree
    same = torch.tensor([25, 25])
    torch.testing.assert_close(kl_penalised_return(reward, pol, base, 0.5, same), plain)
    with pytest.raises(ValueError, match="lengths"):
        kl_penalised_return(reward, pol, base, 0.5, torch.tensor([0, 3]))
