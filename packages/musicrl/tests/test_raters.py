"""Simulated raters: the hidden taste's terms on hand-built melodies, Davidson noise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from musicrl.corpus import Prompt
from musicrl.raters import (
    HiddenTaste,
    SimulatedRater,
    best_achievable_accuracy,
    davidson_probabilities,
    interval_proximity,
    taste_terms,
)

from .strategies import bar_melody, melodies, prompts


def _scale_tune(bars: int = 6) -> tuple[list[int | None], list[int]]:
    """A stepwise G-major tune in 3/4 of ``bars`` full bars: quarters, final half-note G."""
    cycle = [67, 69, 71, 72, 74, 72, 71, 69]
    k = 3 * bars - 3
    pitches: list[int | None] = [cycle[i % len(cycle)] for i in range(k)] + [69, 67]
    return pitches, [12] * (k + 1) + [24]


def test_terms_of_a_hand_built_tune() -> None:
    prompt = Prompt.parse("G major, 3/4, short")
    m = bar_melody(*_scale_tune(), "3/4")
    t = taste_terms(prompt, m)
    # every note is in G major, every interval a step (1 or 2 semitones), last note G,
    # 6 full bars of 3/4 (inside "short" = 4-8 bars), 6 distinct pitches (>= 5)
    assert t == {
        "in_key": 1.0,
        "smooth": 1.0,
        "cadence": 1.0,
        "metric": 1.0,
        "length": 1.0,
        "variety": 1.0,
    }
    assert HiddenTaste().utility(prompt, m) == pytest.approx(8.5)  # sum of the weights


def test_shortening_costs_length_term() -> None:
    prompt = Prompt.parse("G major, 3/4, short")
    m = bar_melody(*_scale_tune(bars=2), "3/4")  # 2 bars: half of the 4-bar lower end
    assert taste_terms(prompt, m)["length"] == pytest.approx(0.5)


def test_out_of_key_and_leaps_lower_utility() -> None:
    prompt = Prompt.parse("C major, 4/4, short")
    good = bar_melody([60, 62, 64, 65, 67, 65, 64, 62] * 2, [24] * 16, "4/4")
    bad = bar_melody([61, 75, 63, 78, 66, 80, 68, 82] * 2, [24] * 16, "4/4")
    taste = HiddenTaste()
    assert taste.utility(prompt, good) > taste.utility(prompt, bad) + 3


@pytest.mark.parametrize(
    ("semitones", "expected"),
    [(0, 0.5), (1, 1.0), (-2, 1.0), (3, 0.8), (7, 0.5), (12, 0.2), (13, 0.0)],
)
def test_interval_proximity_table(semitones: int, expected: float) -> None:
    # values from the table in raters.py's docstring
    assert interval_proximity(semitones) == expected


def test_davidson_probabilities_hand_values() -> None:
    # s = 0, ν = 1: three equal terms e^0, e^0, 1 -> 1/3 each
    p = davidson_probabilities(np.array([0.0]), 1.0, 1.0)
    np.testing.assert_allclose(p, [[1 / 3, 1 / 3, 1 / 3]])
    # s = 2 ln 3 (diff = 2 ln 3, τ = 1), ν = 0: e^{ln3} = 3 vs 1/3 -> P(A) = 9/10
    p = davidson_probabilities(np.array([2 * np.log(3)]), 1.0, 0.0)
    np.testing.assert_allclose(p, [[0.9, 0.1, 0.0]])
    # huge differences stay finite
    assert np.isfinite(davidson_probabilities(np.array([1e6, -1e6]), 1e-3, 0.5)).all()


def test_choice_frequencies_follow_the_model() -> None:
    prompt = Prompt.parse("G major, 3/4, short")
    pitches, ticks = _scale_tune()
    good = bar_melody(pitches, ticks, "3/4")
    worse = bar_melody([p + 1 for p in pitches if p is not None], ticks, "3/4")
    rater = SimulatedRater(seed=3)
    n = 4000
    choices = rater.choose([prompt] * n, [good] * n, [worse] * n)
    expected = rater.probabilities([prompt], [good], [worse])[0]
    freq = np.array([choices.count(c) for c in ("A", "B", "tie")]) / n
    # binomial standard error at n = 4000 is <= 0.008; 4 SE tolerance
    np.testing.assert_allclose(freq, expected, atol=0.032)


def test_seeds_give_independent_noise_and_same_seed_repeats() -> None:
    prompt = Prompt.parse("C major, 4/4, short")
    a = bar_melody([60, 62, 64, 65, 67, 65, 64, 62], [24] * 8, "4/4")
    b = bar_melody([60, 62, 64, 66, 67, 65, 64, 62], [24] * 8, "4/4")
    args = ([prompt] * 200, [a] * 200, [b] * 200)
    c0 = SimulatedRater(seed=0).choose(*args)
    assert SimulatedRater(seed=0).choose(*args) == c0
    assert SimulatedRater(seed=1).choose(*args) != c0


def test_rater_ids_are_labelled_simulated() -> None:
    assert SimulatedRater(seed=7).rater_id == "simulated-7"
    with pytest.raises(ValueError, match="simulated-"):
        SimulatedRater(rater_id="alice")


@pytest.mark.parametrize(
    ("kw", "name"),
    [({"temperature": 0.0}, "temperature"), ({"tie_strength": -1.0}, "tie_strength")],
)
def test_bad_rater_parameters(kw: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SimulatedRater(**kw)  # type: ignore[arg-type]


def test_best_achievable_accuracy_hand_count() -> None:
    prompt = Prompt.parse("C major, 4/4, short")
    good = bar_melody([60, 62, 64, 65, 67, 65, 64, 60], [24] * 8, "4/4")
    bad = bar_melody([61, 63, 66, 68, 70, 68, 66, 61], [24] * 8, "4/4")
    ps = [prompt] * 4
    # taste prefers `good`; labels A, A, B, tie -> 2 of the 3 non-ties agree
    acc = best_achievable_accuracy(HiddenTaste(), ps, [good] * 4, [bad] * 4, ["A", "A", "B", "tie"])
    assert acc == pytest.approx(2 / 3)


@settings(max_examples=40, deadline=None)
@given(prompts(), melodies())
def test_taste_terms_in_unit_interval(prompt: Prompt, melody: object) -> None:
    terms = taste_terms(prompt, melody)  # type: ignore[arg-type]
    assert all(0.0 <= v <= 1.0 for v in terms.values())
