"""Win rate and Wilson interval on hand-counted cases; diversity metrics by hand."""

from __future__ import annotations

import math

import pytest
from musicrl.corpus import Prompt
from musicrl.evaluation import (
    Z_95,
    SampleStats,
    distinct_n,
    judge_win_rate,
    mean_sample_stats,
    pitch_class_entropy,
    pool_win_rates,
    sample_stats,
    wilson_interval,
    win_rate,
)
from musicrl.raters import SimulatedRater

from .strategies import bar_melody


def _wilson_by_hand(k: int, n: int, z: float) -> tuple[float, float]:
    # Wilson (1927): (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    p = k / n
    c = p + z * z / (2 * n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    d = 1 + z * z / n
    return (c - h) / d, (c + h) / d


def test_wilson_matches_formula_and_published_value() -> None:
    for k, n in [(8, 10), (0, 10), (10, 10), (87, 100), (1, 3)]:
        lo, hi = wilson_interval(k, n)
        elo, ehi = _wilson_by_hand(k, n, Z_95)
        assert lo == pytest.approx(max(0.0, elo), abs=1e-12)
        assert hi == pytest.approx(min(1.0, ehi), abs=1e-12)
    # Brown, Cai & DasGupta (2001), the Wilson interval for x = 8 of n = 10 (95%):
    # [0.490, 0.943] (their Table of examples; also R's prop.test(correct=FALSE))
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)


def test_win_rate_excludes_ties() -> None:
    w = win_rate(wins=6, losses=2, ties=12)  # hand count: 6 / (6 + 2) = 0.75
    assert w.rate == 0.75
    assert (w.ci_low, w.ci_high) == pytest.approx(wilson_interval(6, 8))
    assert math.isnan(win_rate(0, 0, 5).rate)
    assert (win_rate(0, 0, 5).ci_low, win_rate(0, 0, 5).ci_high) == (0.0, 1.0)
    with pytest.raises(ValueError, match="wins"):
        win_rate(-1, 2)


def test_base_vs_itself_is_near_half() -> None:
    # identical melodies: the judge's choices between A and B are symmetric (Davidson, s = 0)
    p = Prompt.parse("C major, 4/4, short")
    m = bar_melody([60, 62, 64, 65, 67, 65, 64, 60], [24] * 8, "4/4")
    w = judge_win_rate(SimulatedRater(seed=99), [p] * 2000, [m] * 2000, [m] * 2000)
    assert w.ci_low < 0.5 < w.ci_high


def test_distinct_n_hand_count() -> None:
    a = bar_melody([60, 62, 60, 62], [12] * 4, "4/4")
    b = bar_melody([60, 62, 64, 65], [12] * 4, "4/4")
    # bigrams of a: (60,62) (62,60) (60,62); of b: (60,62) (62,64) (64,65): 4 unique of 6
    assert distinct_n([a, b], 2) == pytest.approx(4 / 6)
    assert distinct_n([a], 5) == 0.0


def test_pitch_class_entropy_hand_values() -> None:
    two = bar_melody([60, 62, 72, 74], [12] * 4, "4/4")  # C, D, C, D -> 1 bit
    assert pitch_class_entropy(two) == pytest.approx(1.0)
    one = bar_melody([60, 72], [12, 12], "4/4")
    assert pitch_class_entropy(one) == 0.0


def test_sample_stats_lengths() -> None:
    p = Prompt.parse("C major, 4/4")
    m = bar_melody([60, 62, 64, 65, 67, 65, 64, 62], [12] * 8, "4/4")  # 8 quarters = 2 bars
    s = sample_stats([p], [m])
    assert (s.mean_notes, s.mean_bars, s.n) == (8.0, 2.0, 1)


def test_pooled_draws_sum_counts_and_average_stats() -> None:
    # 8W/2L/1T and 6W/4L/0T -> 14W/6L/1T, rate 14/20, Wilson interval over 20 trials
    w = pool_win_rates([win_rate(8, 2, 1), win_rate(6, 4)])
    assert (w.wins, w.losses, w.ties) == (14, 6, 1)
    assert w.rate == pytest.approx(0.7)
    ref = win_rate(14, 6)
    assert (w.ci_low, w.ci_high) == pytest.approx((ref.ci_low, ref.ci_high))
    assert pool_win_rates([win_rate(3, 1)]) == win_rate(3, 1)
    a = SampleStats(10, {"r": 1.0}, 0.5, 0.9, 2.0, 30.0, 8.0)
    b = SampleStats(20, {"r": 3.0}, 0.7, 0.7, 2.2, 40.0, 10.0)
    m = mean_sample_stats([a, b])
    assert m.n == 30
    assert m.rewards == {"r": 2.0}
    assert (m.distinct_2, m.distinct_4, m.pc_entropy) == pytest.approx((0.6, 0.8, 2.1))
    assert (m.mean_notes, m.mean_bars) == (35.0, 9.0)
    with pytest.raises(ValueError, match="at least one"):
        pool_win_rates([])
    with pytest.raises(ValueError, match="at least one"):
        mean_sample_stats([])
