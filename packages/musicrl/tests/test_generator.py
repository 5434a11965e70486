"""Tests of the transformer, the KV-cached sampler and the log-probabilities."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from musicrl.corpus import Melody, Note, Prompt
from musicrl.generator import (
    GeneratorConfig,
    MelodyTransformer,
    pad_sequences,
    sample,
    sequence_logprob,
    token_logprobs,
)
from musicrl.pretrain import completion_loss
from musicrl.tokenizer import Tokenizer

TOK = Tokenizer()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The tensors here are tiny: intra-op threads only add contention on a shared machine.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_model(seed: int = 0, max_len: int = 64) -> MelodyTransformer:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(
        TOK.vocab_size, d_model=32, n_layers=2, n_heads=2, max_len=max_len, dropout=0.0
    )
    return MelodyTransformer(cfg).eval()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="multiple of n_heads"):
        GeneratorConfig(10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        GeneratorConfig(10, dropout=1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        GeneratorConfig(0)


def test_causality_and_cache_match_full_forward() -> None:
    model = tiny_model()
    ids = torch.randint(0, TOK.vocab_size, (3, 20), generator=torch.Generator().manual_seed(1))
    full = model(ids)
    # Changing a later token must not change earlier logits (causal mask).
    ids2 = ids.clone()
    ids2[:, 15] = (ids2[:, 15] + 1) % TOK.vocab_size
    assert torch.allclose(model(ids2)[:, :15], full[:, :15], atol=1e-6)
    # Incremental decoding with the cache equals the full forward pass.
    logits, cache = model.forward_cached(ids[:, :7], None)
    steps = [logits]
    for t in range(7, 20):
        logits, cache = model.forward_cached(ids[:, t : t + 1], cache)
        steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_metrical_positions_hand_computed() -> None:
    model = tiny_model()
    t = TOK.token_to_id
    prefix = TOK.encode_prefix(Prompt.parse("G major, 3/4"))
    melody = [
        "bar",
        "pitch:67",
        "dur:12",
        "pitch:69",
        "dur:24",
        "bar",
        "pitch:71",
        "dur:36",
        "pitch:72",
        "dur:12",
    ]
    ids = torch.tensor([prefix + [t[x] for x in melody]])
    ela, rem, last_elapsed, last_meter = model.metrical_positions(ids)
    # Ticks since the last bar line, after each token (a 3/4 bar is 36 ticks).
    elapsed = [0] * 7 + [0, 0, 12, 12, 36, 0, 0, 36, 36, 48]
    assert ela[0].tolist() == elapsed
    unknown, overfull = 98, 97  # MAX_BAR_TICKS + 2, MAX_BAR_TICKS + 1
    # Before the meter token (index 3) the meter is unknown; after it, 36 - elapsed,
    # and the last note overfills the second bar.
    assert rem[0].tolist() == [unknown] * 3 + [36] * 6 + [24, 24, 0, 36, 36, 0, 0, overfull]
    assert (int(last_elapsed), int(last_meter)) == (48, 36)
    # Split in two with the carried state: the same positions.
    a = model.metrical_positions(ids[:, :10])
    b = model.metrical_positions(ids[:, 10:], a[2], a[3])
    assert torch.cat([a[0], b[0]], 1).tolist() == ela.tolist()
    assert torch.cat([a[1], b[1]], 1).tolist() == rem.tolist()


def test_non_metrical_model_and_old_configs() -> None:
    cfg = GeneratorConfig(
        TOK.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=32, metrical=False
    )
    model = MelodyTransformer(cfg)
    assert not any("elapsed" in name for name, _ in model.named_parameters())
    assert model(torch.zeros(1, 5, dtype=torch.long)).shape == (1, 5, TOK.vocab_size)
    old = cfg.to_dict()
    del old["metrical"]
    assert GeneratorConfig.from_dict(old) == cfg  # configs saved before the option existed
    with pytest.raises(ValueError, match="tokenizer"):
        MelodyTransformer(GeneratorConfig(50))  # metrical, but the default tokenizer has 101


def _melodies() -> list[tuple[Prompt, Melody]]:
    return [
        (
            Prompt.parse("G major, 3/4"),
            Melody((Note(67, 1.0), Note(71, 1.0), Note(74, 1.0), Note(79, 3.0)), "3/4", (0, 3)),
        ),
        (
            Prompt.parse("A minor, 2/4"),
            Melody((Note(69, 0.5), Note(72, 0.5), Note(76, 1.0), Note(69, 2.0)), "2/4", (0, 3)),
        ),
        (
            Prompt.parse("F major, 6/8"),
            Melody((Note(65, 1.5), Note(None, 0.5), Note(69, 1.0), Note(72, 3.0)), "6/8", (0, 3)),
        ),
        (
            Prompt.parse("D minor, 4/4"),
            Melody((Note(62, 2.0), Note(65, 2.0), Note(69, 4.0)), "4/4", (0, 2)),
        ),
    ]


def test_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    cfg = GeneratorConfig(
        TOK.vocab_size, d_model=64, n_layers=2, n_heads=2, max_len=32, dropout=0.0
    )
    model = MelodyTransformer(cfg)
    ids = pad_sequences([TOK.encode_sequence(p, m) for p, m in _melodies()], TOK.pad_id)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = completion_loss(model, ids, TOK.prefix_length, TOK.pad_id)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Start near log(vocab) = log(101) ≈ 4.6 nats; memorised at the end.
    assert first is not None
    assert first > 4.0
    assert loss.item() < 0.05
    # The memorised model reproduces each melody from its prompt by greedy decoding.
    model.eval()
    batch = sample(model, TOK, [p for p, _ in _melodies()], top_k=1, max_new_tokens=24)
    assert batch.melodies == [m for _, m in _melodies()]
    assert bool(batch.finished.all())


def _greedy_reference(model: MelodyTransformer, prompts: list[Prompt], n: int) -> torch.Tensor:
    ids = torch.tensor([TOK.encode_prefix(p) for p in prompts])
    for _ in range(n):
        nxt = model(ids)[:, -1].argmax(-1)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    return ids


def test_top_k_one_and_cold_temperature_are_greedy() -> None:
    model = tiny_model(3)
    prompts = [Prompt.parse("G major"), Prompt()]
    ref = _greedy_reference(model, prompts, 12)
    g = torch.Generator().manual_seed(0)
    out = sample(model, TOK, prompts, top_k=1, max_new_tokens=12, generator=g)
    # An untrained model rarely emits EOS/PAD; compare the unpadded part row by row.
    for row, ref_row, mask in zip(out.ids, ref, out.completion_mask, strict=True):
        n = int(mask.sum()) + TOK.prefix_length
        assert torch.equal(row[:n], ref_row[:n])
    cold = sample(model, TOK, prompts, temperature=1e-4, max_new_tokens=12, generator=g)
    assert torch.equal(cold.ids, out.ids)


def test_same_seed_same_samples_and_top_k_support() -> None:
    model = tiny_model(4)
    prompts = [Prompt.parse("C major, 4/4")] * 4

    def run(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return sample(
            model, TOK, prompts, temperature=1.5, top_k=5, max_new_tokens=30, generator=g
        ).ids

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # 4 x 30 draws from 5 tokens: equal with prob ~5^-120
    # Every sampled token is among the 5 most likely under the model at its step.
    batch = sample(
        model, TOK, prompts, top_k=5, max_new_tokens=30, generator=torch.Generator().manual_seed(1)
    )
    logits = model(batch.ids[:, :-1])
    top5 = logits.topk(5, dim=-1).indices
    chosen = batch.ids[:, 1:]
    in_top = (top5 == chosen[..., None]).any(-1)
    assert bool(in_top[batch.completion_mask[:, 1:]].all())


def test_sample_batch_layout() -> None:
    model = tiny_model(5)
    prompts = [Prompt.parse("G major, 6/8"), Prompt.parse("bach")]
    out = sample(model, TOK, prompts, max_new_tokens=20, generator=torch.Generator().manual_seed(0))
    assert out.ids.shape[0] == 2
    assert out.ids.shape[1] <= TOK.prefix_length + 20
    assert out.prompt_lengths.tolist() == [TOK.prefix_length] * 2
    for i, p in enumerate(prompts):
        assert out.ids[i, : TOK.prefix_length].tolist() == TOK.encode_prefix(p)
        mask = out.completion_mask[i]
        assert not bool(mask[: TOK.prefix_length].any())
        n = int(mask.sum())
        # The completion is contiguous, and after it only padding follows.
        assert bool(mask[TOK.prefix_length : TOK.prefix_length + n].all())
        assert bool((out.ids[i, TOK.prefix_length + n :] == TOK.pad_id).all())
        if bool(out.finished[i]):
            assert int(out.ids[i, TOK.prefix_length + n - 1]) in (TOK.eos_id, TOK.pad_id)
        assert out.melodies[i].meter == p.meter
    with pytest.raises(ValueError, match="temperature"):
        sample(model, TOK, prompts, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        sample(model, TOK, prompts, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sample(model, TOK, prompts, max_new_tokens=64)
    with pytest.raises(ValueError, match="at least one"):
        sample(model, TOK, [])


def test_logprobs_match_manual_computation() -> None:
    model = tiny_model(6)
    ids = pad_sequences([TOK.encode_sequence(p, m) for p, m in _melodies()], TOK.pad_id)
    mask = ids != TOK.pad_id
    mask[:, : TOK.prefix_length] = False
    lp = token_logprobs(model, ids)
    assert lp.shape == (4, ids.shape[1] - 1)
    # Manual: one row at a time, the log-softmax of the prefix's last logits.
    for b in range(2):
        for t in (TOK.prefix_length, TOK.prefix_length + 3):
            logits = model(ids[b : b + 1, :t])[0, -1]
            manual = torch.log_softmax(logits, -1)[ids[b, t]]
            assert lp[b, t - 1].item() == pytest.approx(manual.item(), abs=1e-5)
    seq = sequence_logprob(model, ids, mask)
    assert torch.allclose(seq, (lp * mask[:, 1:]).sum(-1))
    assert bool((seq < 0).all())
    # Differentiable: the gradient reaches the embeddings.
    seq.sum().backward()
    assert model.tok_emb.weight.grad is not None
    assert model.tok_emb.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shape"):
        sequence_logprob(model, ids, mask[:, 1:])


def test_sequence_logprob_of_samples_equals_sum_of_sampling_probs() -> None:
    # With temperature 1 and no top-k, the sampler draws from the model's distribution:
    # log p of a sampled row is the sum of the log-probs of each drawn token.
    model = tiny_model(7)
    out = sample(
        model, TOK, [Prompt()] * 3, max_new_tokens=15, generator=torch.Generator().manual_seed(2)
    )
    seq = sequence_logprob(model, out.ids, out.completion_mask)
    lp = token_logprobs(model, out.ids)
    manual = torch.stack([lp[b][out.completion_mask[b, 1:]].sum() for b in range(3)])
    assert torch.allclose(seq, manual)


def test_batched_sampling_drops_finished_rows_without_changing_the_others() -> None:
    # Greedy decoding (top_k=1) does not depend on the random stream, so each row of a
    # batch must equal the same prompt decoded alone, whatever rows end (and are dropped
    # from the batch and its cache) before it.
    model = tiny_model(seed=3, max_len=48)
    prompts = [
        Prompt.parse(s)
        for s in ("G major, 6/8", "D minor, 3/4", "C major, 4/4", "A minor, 2/4", "F major")
    ]
    eos_row = model.head.weight[TOK.eos_id].detach().clone()
    lengths: set[int] = set()
    for scale in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0):
        with torch.no_grad():  # a larger EOS row makes EOS the argmax at more positions
            model.head.weight[TOK.eos_id] = scale * eos_row
        batch = sample(model, TOK, prompts, top_k=1)
        lengths = {int(n) for n in batch.completion_mask.sum(dim=1)}
        if len(lengths) > 1:
            break
    assert len(lengths) > 1, "no bias made the rows end at different steps"
    for i, p in enumerate(prompts):
        alone = sample(model, TOK, [p], top_k=1)
        n = alone.ids.size(1)
        assert torch.equal(batch.ids[i, :n], alone.ids[0])
        assert (batch.ids[i, n:] == TOK.pad_id).all()
        assert torch.equal(batch.completion_mask[i, :n], alone.completion_mask[0])
        assert batch.melodies[i] == alone.melodies[0]


def test_sequence_logprob_in_length_groups_equals_the_padded_sum() -> None:
    # Rows of very different lengths are scored in groups cut to their own length; the
    # result (and its gradient) must equal the masked sum over the fully padded batch.
    model = tiny_model(seed=5, max_len=64)
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(9, 64, (24,), generator=g)
    ids = torch.randint(0, TOK.vocab_size, (24, 64), generator=g)
    cols = torch.arange(64)[None, :]
    mask = (cols >= 7) & (cols < lengths[:, None])
    ids[~mask & (cols >= 7)] = TOK.pad_id
    grouped = sequence_logprob(model, ids, mask)
    (grad_grouped,) = torch.autograd.grad(grouped.sum(), model.head.weight)
    padded = (token_logprobs(model, ids) * mask[:, 1:].float()).sum(dim=-1)
    (grad_padded,) = torch.autograd.grad(padded.sum(), model.head.weight)
    assert torch.allclose(grouped, padded, atol=1e-4, rtol=1e-6)
    assert torch.allclose(grad_grouped, grad_padded, atol=1e-4, rtol=1e-4)
