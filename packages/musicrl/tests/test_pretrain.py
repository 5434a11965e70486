"""Tests of the pretraining loop: schedule, determinism, loss decrease, validation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from musicrl.corpus import Melody, Note, Piece, Prompt
from musicrl.generator import GeneratorConfig
from musicrl.pretrain import PretrainConfig, evaluate_loss, lr_at, pretrain
from musicrl.tokenizer import Tokenizer

TOK = Tokenizer()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def scale_pieces(n: int) -> list[Piece]:
    """Ascending/descending major-scale fragments in 2/4: a learnable toy corpus."""
    steps = (0, 2, 4, 5, 7, 9, 11, 12)
    out = []
    for i in range(n):
        tonic = 60 + (i % 5)
        seq = steps if i % 2 == 0 else steps[::-1]
        notes = tuple(Note(tonic + s, 0.5) for s in seq)
        melody = Melody(notes, "2/4", (0, 4))
        prompt = Prompt(
            key=["C", "C#", "D", "E-", "E"][i % 5], mode="major", meter="2/4", length="short"
        )
        out.append(Piece(f"toy/{i}", prompt, melody))
    return out


def small_config() -> GeneratorConfig:
    return GeneratorConfig(
        TOK.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=32, dropout=0.0
    )


def test_lr_schedule_hand_values() -> None:
    cfg = PretrainConfig(lr=1e-3, warmup_steps=10)
    assert lr_at(0, 110, cfg) == pytest.approx(1e-4)  # 1e-3 * 1/10
    assert lr_at(9, 110, cfg) == pytest.approx(1e-3)  # end of warm-up: peak
    assert lr_at(60, 110, cfg) == pytest.approx((1e-3 + 1e-4) / 2)  # cosine midpoint
    assert lr_at(110, 110, cfg) == pytest.approx(1e-4)  # floor: lr / 10


def test_pretrain_lowers_loss_and_is_seeded() -> None:
    pieces = scale_pieces(40)
    cfg = PretrainConfig(steps=60, batch_size=8, lr=3e-3, warmup_steps=5, val_fraction=0.25, seed=1)
    a = pretrain(pieces, TOK, small_config(), cfg, progress=False)
    b = pretrain(pieces, TOK, small_config(), cfg, progress=False)
    assert a.train_losses == b.train_losses  # same seed, same run
    assert a.val_ids == b.val_ids
    assert len(a.val_ids) == 10
    assert len(a.train_ids) == 30
    assert not set(a.val_ids) & set(a.train_ids)
    assert a.steps == 60
    assert len(a.train_losses) == 60
    assert sum(a.train_losses[-10:]) / 10 < 0.5 * sum(a.train_losses[:5]) / 5
    val = [p for p in pieces if p.id in set(a.val_ids)]
    assert a.final_val_loss == pytest.approx(evaluate_loss(a.model, TOK, val))
    assert a.final_val_loss is not None
    assert a.final_val_loss < 2.0
    c = pretrain(
        pieces, TOK, small_config(), PretrainConfig(steps=5, batch_size=8, seed=2), progress=False
    )
    assert c.train_losses != a.train_losses[:5]


def test_pretrain_skips_too_long_pieces_and_validates() -> None:
    pieces = scale_pieces(4)
    long_melody = Melody(tuple(Note(60, 0.5) for _ in range(40)), "2/4", tuple(range(0, 40, 4)))
    pieces.append(Piece("toy/long", Prompt(meter="2/4"), long_melody))
    res = pretrain(
        pieces,
        TOK,
        small_config(),
        PretrainConfig(steps=2, batch_size=2, val_fraction=0.0),
        progress=False,
    )
    assert res.skipped == 1
    assert "toy/long" not in res.train_ids
    assert res.val_losses == []
    with pytest.raises(ValueError, match="no piece fits"):
        pretrain(pieces[-1:], TOK, small_config(), PretrainConfig(steps=1), progress=False)
    with pytest.raises(ValueError, match="at least one"):
        pretrain([], TOK, small_config(), PretrainConfig(steps=1), progress=False)
    with pytest.raises(ValueError, match="vocab_size"):
        pretrain(pieces, TOK, GeneratorConfig(10), PretrainConfig(steps=1), progress=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("steps", 0),
        ("batch_size", 0),
        ("lr", 0.0),
        ("val_fraction", 1.0),
        ("tag_dropout", 1.5),
        ("threads", 0),
    ],
)
def test_config_validation(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"PretrainConfig.{field}"):
        PretrainConfig(**{field: value})  # type: ignore[arg-type]


def test_transpose_augmentation_keeps_pitches_in_range() -> None:
    import random

    from musicrl.pretrain import _augment

    cfg = PretrainConfig(transpose=5, tag_dropout=0.0)
    piece = scale_pieces(1)[0]  # C major scale, MIDI 60..72
    rng = random.Random(0)
    shifts = set()
    for _ in range(200):
        prompt, melody = _augment(piece, cfg, TOK, rng)
        shift = melody.pitches[0] - piece.melody.pitches[0]
        shifts.add(shift)
        # Key tag moves with the notes.
        assert prompt == piece.prompt.transposed(shift)
        assert [p - shift for p in melody.pitches] == piece.melody.pitches
    assert shifts == set(range(-5, 6))  # 200 uniform draws over 11 values cover all
    edge = Piece("edge", Prompt(key="C"), Melody((Note(84, 1.0), Note(82, 1.0)), "2/4", (0,)))
    for _ in range(50):  # at the top of the range only downward shifts are possible
        _, melody = _augment(edge, cfg, TOK, rng)
        assert max(melody.pitches) <= TOK.max_pitch
