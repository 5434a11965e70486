"""Rewards: Bradley-Terry recovery, tie losses, the quality rules, the adherence classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from musicrl.corpus import Melody, Piece, Prompt
from musicrl.raters import SimulatedRater
from musicrl.rewards import REWARDS, parse_reward_weights
from musicrl.rewards.adherence import AdherenceClassifier
from musicrl.rewards.preference import (
    PreferenceRewardModel,
    bradley_terry_loss,
    pairwise_accuracy,
)
from musicrl.rewards.quality import QualityReward, quality_terms, range_score

from .strategies import bar_melody

C_MAJOR = [60, 62, 64, 65, 67, 69, 71]
OUT_OF_C = [61, 63, 66, 68, 70]


def _graded_melodies(n_levels: int = 6) -> list[Melody]:
    """Melodies in C major 4/4 whose k-th has k of 16 notes replaced by out-of-key notes."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n_levels):
        pitches: list[int | None] = [int(C_MAJOR[(i * 2) % 7]) for i in range(15)] + [60]
        for j in rng.choice(15, size=2 * k, replace=False):
            pitches[int(j)] = int(OUT_OF_C[int(j) % 5])
        out.append(bar_melody(pitches, [12] * 16, "4/4"))
    return out


def test_bradley_terry_recovers_known_ordering() -> None:
    # Known utility: the hidden taste, which falls with every out-of-key note. Pairs of
    # graded melodies are labelled by a noisy Davidson rater; the fitted reward must put
    # the melodies in the same order as the utility (Kendall tau = 1 on 6 levels).
    prompt = Prompt.parse("C major, 4/4, short")
    mels = _graded_melodies()
    rater = SimulatedRater(temperature=0.25, seed=0)
    util = rater.taste.utilities([prompt] * len(mels), mels)
    assert np.all(np.diff(util) < 0)  # the construction is graded
    rng = np.random.default_rng(1)
    i = rng.integers(0, len(mels), 800)
    j = rng.integers(0, len(mels), 800)
    keep = i != j
    i, j = i[keep], j[keep]
    ps = [prompt] * len(i)
    a = [mels[k] for k in i]
    b = [mels[k] for k in j]
    choices = rater.choose(ps, a, b)
    model = PreferenceRewardModel(seed=0, epochs=40, batch_size=64).fit(ps, a, b, choices)
    scores = model.score([prompt] * len(mels), mels)
    assert np.all(np.diff(scores) < 0), scores


def test_half_ties_loss_hand_value() -> None:
    # one tie at diff 0: -(½ log σ(0) + ½ log σ(0)) = log 2
    loss = bradley_terry_loss(torch.tensor([0.0]), torch.tensor([2]), ties="half")
    assert float(loss) == pytest.approx(np.log(2))


def test_davidson_loss_hand_value() -> None:
    # diff 0, ν = e^0 = 1: each outcome has probability 1/3 -> loss log 3 for any choice
    for c in (0, 1, 2):
        loss = bradley_terry_loss(
            torch.tensor([0.0]), torch.tensor([c]), "davidson", torch.zeros(())
        )
        assert float(loss) == pytest.approx(np.log(3))


def test_unknown_tie_method() -> None:
    with pytest.raises(ValueError, match="ties must be one of"):
        bradley_terry_loss(torch.zeros(1), torch.zeros(1, dtype=torch.long), ties="drop")
    with pytest.raises(ValueError, match="ties must be one of"):
        PreferenceRewardModel(ties="drop")  # type: ignore[arg-type]


def test_pairwise_accuracy_hand_count() -> None:
    # diffs +1, -1, 0, +2 with choices A, A, B, tie: hits 1, 0, 0.5 (zero diff); tie skipped
    assert pairwise_accuracy(np.array([1.0, -1.0, 0.0, 2.0]), ["A", "A", "B", "tie"]) == 0.5


def test_preference_model_save_load(tmp_path: Path) -> None:
    prompt = Prompt.parse("C major, 4/4, short")
    mels = _graded_melodies(3)
    ps = [prompt] * 20
    a = [mels[0]] * 10 + [mels[2]] * 10
    b = [mels[2]] * 10 + [mels[0]] * 10
    model = PreferenceRewardModel(epochs=5).fit(ps, a, b, ["A"] * 10 + ["B"] * 10)
    model.save(tmp_path / "rm.pt")
    again = PreferenceRewardModel.load(tmp_path / "rm.pt")
    np.testing.assert_array_equal(again.score(ps, a), model.score(ps, a))
    with pytest.raises(ValueError, match="not a preference reward model"):
        AdherenceClassifier().save(tmp_path / "adh.pt") or PreferenceRewardModel.load(
            tmp_path / "adh.pt"
        )


def test_preference_fit_rejects_bad_choice() -> None:
    m = _graded_melodies(2)
    p = Prompt.parse("C major, 4/4")
    with pytest.raises(ValueError, match=r"choices\[1\]"):
        PreferenceRewardModel().fit([p, p], [m[0], m[1]], [m[1], m[0]], ["A", "left"])


def test_quality_terms_hand_built() -> None:
    prompt = Prompt.parse("C major, 4/4")
    # C D E F G F E D | C (whole) : in key, range 7, bars full, ends on C
    m = bar_melody([60, 62, 64, 65, 67, 65, 64, 62, 60], [6] * 8 + [48], "4/4")
    assert quality_terms(prompt, m) == {"scale": 1.0, "range": 1.0, "meter": 1.0, "cadence": 1.0}
    # one C# of 8 eighths + whole: duration share 0.5 / 6 quarters out of scale
    m2 = bar_melody([60, 61, 64, 65, 67, 65, 64, 62, 62], [6] * 8 + [48], "4/4")
    t = quality_terms(prompt, m2)
    assert t["scale"] == pytest.approx(1 - 0.5 / 8.0)
    assert t["cadence"] == 0.0


def test_quality_is_not_length_biased() -> None:
    # repeating a well-formed tune does not change its quality (averages, not sums)
    prompt = Prompt.parse("C major, 4/4")
    pitches: list[int | None] = [60, 62, 64, 65, 67, 65, 64, 62]
    one = bar_melody([*pitches, 60], [6] * 8 + [48], "4/4")
    two = bar_melody([*pitches, 60, *pitches, 60], ([6] * 8 + [48]) * 2, "4/4")
    q = QualityReward().score([prompt, prompt], [one, two])
    assert q[0] == q[1]


@pytest.mark.parametrize(
    ("r", "expected"), [(0, 0.5), (4, 0.9), (5, 1.0), (16, 1.0), (22, 0.5), (28, 0.0), (40, 0.0)]
)
def test_range_score_table(r: int, expected: float) -> None:
    # piecewise-linear definition in quality.py's docstring
    assert range_score(r) == pytest.approx(expected)


def _synthetic_pieces(n: int, seed: int) -> list[Piece]:
    """Scale-degree melodies in random keys: tonic-heavy, starting and ending on the tonic."""
    rng = np.random.default_rng(seed)
    major = [0, 2, 4, 5, 7, 9, 11]
    minor = [0, 2, 3, 5, 7, 8, 10]
    pieces = []
    names = ["C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B"]
    for k in range(n):
        tonic = int(rng.integers(12))
        mode = "major" if rng.random() < 0.5 else "minor"
        scale = major if mode == "major" else minor
        degrees = [
            0,
            *rng.choice([0, 2, 4, 1, 3, 5, 6], size=14, p=[0.25, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05]),
            0,
        ]
        pitches: list[int | None] = [60 + tonic + scale[int(d)] for d in degrees]
        meter = "3/4" if k % 2 else "2/4"
        mel = bar_melody(pitches, [12] * 15 + [24 if meter == "2/4" else 36], meter)
        prompt = Prompt(names[tonic], mode, meter, None, "short")
        pieces.append(Piece(f"syn{k}", prompt, mel))
    return pieces


def test_adherence_learns_keys_and_is_transposition_equivariant(tmp_path: Path) -> None:
    clf = AdherenceClassifier(epochs=200, seed=0).fit(_synthetic_pieces(150, 0))
    assert clf.fit_result_ is not None
    # 24 keys -> chance is 1/24; synthetic melodies are unambiguous
    assert clf.fit_result_.key_accuracy > 0.8
    test = _synthetic_pieces(20, 1)
    mel = test[0].melody
    up = bar_melody([p + 5 for p in mel.pitches], [n.ticks for n in mel.notes], mel.meter or "")
    lp, _, _ = clf.log_probs([mel, up])
    # transposing up 5 semitones rotates the key distribution by 5 (same weights per key)
    torch.testing.assert_close(torch.roll(lp[0], 5, dims=0), lp[1], atol=1e-5, rtol=0)
    # the true tags score higher than a wrong key (tritone away)
    p = test[0].prompt
    names = ["C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B"]
    wrong = Prompt(names[(names.index(p.key or "C") + 6) % 12], p.mode, p.meter)
    s = clf.score([p, wrong], [mel, mel])
    assert s[0] > s[1]
    clf.save(tmp_path / "adh.pt")
    np.testing.assert_allclose(
        AdherenceClassifier.load(tmp_path / "adh.pt").score([p], [mel]), s[:1]
    )


def test_adherence_rejects_empty_corpus() -> None:
    with pytest.raises(ValueError, match="pieces must contain"):
        AdherenceClassifier().fit([])


def test_registry_and_weights() -> None:
    assert sorted(REWARDS) == ["adherence", "preference", "quality"]
    assert parse_reward_weights("preference, quality=0.5") == {"preference": 1.0, "quality": 0.5}
    with pytest.raises(ValueError, match="rewards must be drawn from"):
        parse_reward_weights("preference,style")
    with pytest.raises(ValueError, match=">= 0"):
        parse_reward_weights("quality=-1")
    with pytest.raises(ValueError, match="at least one"):
        parse_reward_weights(" , ")


def test_adherence_length_head_prefers_the_asked_length() -> None:
    # corpus-like labels: bars <= 8 short, <= 16 medium, else long (corpus.length_bucket)
    pieces = []
    for k, (bars, tag) in enumerate(
        [(4, "short"), (6, "short"), (12, "medium"), (14, "medium"), (20, "long"), (28, "long")]
        * 10
    ):
        pitches: list[int | None] = [60 + (i % 5) for i in range(4 * bars - 1)] + [60]
        mel = bar_melody(pitches, [12] * (4 * bars), "4/4")
        pieces.append(Piece(f"len{k}", Prompt("C", "major", "4/4", None, tag), mel))
    clf = AdherenceClassifier(epochs=300, seed=0, valid_fraction=0.0).fit(pieces)
    two_bars = bar_melody([60, 62, 64, 65, 67, 65, 64, 60], [12] * 8, "4/4")
    twelve = pieces[2].melody
    medium = Prompt("C", "major", "4/4", None, "medium")
    s = clf.score([medium, medium], [two_bars, twelve])
    assert s[1] > s[0] + 1.0  # a 2-bar melody is a poor answer to "medium" (9-16 bars)
