"""Simulated raters: a documented hidden taste with Bradley-Terry-Davidson noise and ties.

These raters exist so that the whole preference loop (collect pairs, train a reward model,
fine-tune, judge) runs without people. Their choices are **simulated**, every record they
produce carries a rater id starting with ``"simulated-"``, and nothing in this package
presents them as human preferences.

The hidden taste
----------------
``u(melody | prompt) = Σ_k w_k f_k`` with six terms, each in ``[0, 1]`` and each an
average or a ratio, so that no term rewards a melody merely for being short:

==============  ======  ==============================================================
term            weight  definition (and why a listener would care)
==============  ======  ==============================================================
``in_key``      2.0     duration-weighted fraction of pitched notes in the prompt's
                        scale (tonal fit; Krumhansl 1990, key profiles)
``smooth``      2.0     mean over successive pitched intervals of a proximity score:
                        unison 0.5, step (1-2 semitones) 1.0, third 0.8, fourth-fifth
                        0.5, sixth-octave 0.2, beyond an octave 0 (pitch proximity,
                        Huron 2006 ch. 5; Vos & Troost 1989)
``cadence``     1.0     final pitched note on the tonic 1.0, on the dominant 0.5, else 0
                        (tonic closure; Huron 2006 ch. 9)
``metric``      1.0     share of the duration in bars that fit the prompt's meter (full
                        bars; a pickup allowed when the last bar completes it)
``length``      1.5     2^(-d), d = log2 distance of the length in bars to the range of
                        the prompt's length tag (short 4-8, medium 9-16, long 17-32
                        bars); half or double the range scores 0.5. This is what makes
                        shortening a losing strategy.
``variety``     1.0     min(1, distinct pitches / 5): penalises monotone melodies
==============  ======  ==============================================================

The weights are round numbers stating a priority order (tonality and voice leading first,
length next, the rest after), not values fitted to any result.

Noise and ties
--------------
For a pair (A, B) with utilities ``u_A``, ``u_B`` and ``s = (u_A - u_B) / τ`` the rater
follows Davidson's (1970) extension of Bradley-Terry to ties:

``P(A) = e^{s/2} / Z``, ``P(B) = e^{-s/2} / Z``, ``P(tie) = ν / Z``,
``Z = e^{s/2} + e^{-s/2} + ν``.

``τ`` (``temperature``) sets how noisy raters are; ``ν`` (``tie_strength``) how often they
call a tie (``ν / (2 + ν)`` for two equally good melodies). Defaults ``τ = 0.5``,
``ν = 0.5`` give a tie rate of 20% for indistinguishable pairs and, on pairs sampled from
a pretrained model, an agreement of the noiseless taste with the noisy labels in the range
that inter-annotator agreement takes in RLHF data (about 73%, Ouyang et al. 2022); the
measured value is reported by the demo and the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from musicrl._music import (
    bar_fit_fraction,
    count_bars,
    in_scale_fraction,
    length_fit,
    prompt_key,
)
from musicrl.corpus import Melody, Prompt

__all__ = [
    "CHOICES",
    "TASTE_TERMS",
    "Choice",
    "HiddenTaste",
    "SimulatedRater",
    "best_achievable_accuracy",
    "davidson_probabilities",
    "interval_proximity",
    "taste_terms",
]

Choice = Literal["A", "B", "tie"]
CHOICES: tuple[Choice, ...] = ("A", "B", "tie")
TASTE_TERMS: tuple[str, ...] = ("in_key", "smooth", "cadence", "metric", "length", "variety")


def interval_proximity(semitones: int) -> float:
    """Proximity score of a melodic interval (absolute size in semitones), in ``[0, 1]``.

    Unison 0.5, step (1-2) 1.0, third (3-4) 0.8, fourth to fifth (5-7) 0.5, sixth to
    octave (8-12) 0.2, larger 0.0. Source: the dominance of small intervals in folk and
    art melody (Vos & Troost 1989; Huron 2006, *Sweet Anticipation*, ch. 5); repeated
    notes get less than steps because long runs of them make melodies static.
    """
    a = abs(int(semitones))
    if a == 0:
        return 0.5
    if a <= 2:
        return 1.0
    if a <= 4:
        return 0.8
    if a <= 7:
        return 0.5
    if a <= 12:
        return 0.2
    return 0.0


def taste_terms(prompt: Prompt, melody: Melody) -> dict[str, float]:
    """The six terms of the hidden taste (each in ``[0, 1]``) for one melody.

    Tags the prompt leaves unspecified are filled from the melody (best-fitting key,
    the melody's own meter; no length tag scores 1). A melody without a pitched note
    scores 0 on every term.
    """
    pitches = melody.pitches
    if not pitches:
        return dict.fromkeys(TASTE_TERMS, 0.0)
    tonic, mode = prompt_key(prompt, melody)
    in_key = in_scale_fraction(melody, tonic, mode)
    steps = np.diff(np.asarray(pitches, dtype=np.int64))
    smooth = float(np.mean([interval_proximity(int(s)) for s in steps])) if steps.size else 0.0
    last = pitches[-1] % 12
    cadence = 1.0 if last == tonic else (0.5 if last == (tonic + 7) % 12 else 0.0)
    meter = prompt.meter or melody.meter
    metric = bar_fit_fraction(melody, meter)
    length = length_fit(count_bars(melody, meter), prompt.length)
    variety = min(1.0, len(set(pitches)) / 5.0)
    return {
        "in_key": in_key,
        "smooth": smooth,
        "cadence": cadence,
        "metric": metric,
        "length": length,
        "variety": variety,
    }


@dataclass(frozen=True)
class HiddenTaste:
    """The simulated raters' hidden utility ``u = Σ_k w_k f_k`` (see the module docstring).

    Parameters
    ----------
    weights : dict of str to float
        Weight of each term of :func:`taste_terms`; all six must be present and >= 0.

    Examples
    --------
    >>> taste = HiddenTaste()
    >>> sorted(taste.weights)
    ['cadence', 'in_key', 'length', 'metric', 'smooth', 'variety']
    """

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "in_key": 2.0,
            "smooth": 2.0,
            "cadence": 1.0,
            "metric": 1.0,
            "length": 1.5,
            "variety": 1.0,
        }
    )

    def __post_init__(self) -> None:
        expected = {"in_key", "smooth", "cadence", "metric", "length", "variety"}
        if set(self.weights) != expected:
            raise ValueError(
                f"weights of HiddenTaste must have exactly the keys {sorted(expected)}; "
                f"got {sorted(self.weights)}"
            )
        bad = {k: v for k, v in self.weights.items() if not (v >= 0 and math.isfinite(v))}
        if bad:
            raise ValueError(f"weights of HiddenTaste must be finite and >= 0; got {bad}")

    def utility(self, prompt: Prompt, melody: Melody) -> float:
        """Noiseless utility of one melody for one prompt."""
        terms = taste_terms(prompt, melody)
        return float(sum(self.weights[k] * v for k, v in terms.items()))

    def utilities(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray:
        """Utilities of a batch (``prompts[i]`` with ``melodies[i]``), float64 array."""
        if len(prompts) != len(melodies):
            raise ValueError(
                f"prompts and melodies must have the same length; got {len(prompts)} "
                f"and {len(melodies)}"
            )
        return np.asarray([self.utility(p, m) for p, m in zip(prompts, melodies, strict=True)])


def davidson_probabilities(diff: np.ndarray, temperature: float, tie_strength: float) -> np.ndarray:
    """Davidson (1970) probabilities of (A, B, tie) for utility differences ``u_A - u_B``.

    ``s = diff / temperature``; ``P(A) = e^{s/2}/Z``, ``P(B) = e^{-s/2}/Z``,
    ``P(tie) = ν/Z`` with ``Z = e^{s/2} + e^{-s/2} + ν``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 3)``; rows sum to 1.

    Examples
    --------
    >>> davidson_probabilities(np.array([0.0]), 1.0, 0.0).round(3).tolist()
    [[0.5, 0.5, 0.0]]
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if not tie_strength >= 0:
        raise ValueError(f"tie_strength must be >= 0; got {tie_strength}")
    s = np.asarray(diff, dtype=np.float64) / temperature
    half = np.clip(s / 2.0, -350.0, 350.0)
    m = np.maximum(np.abs(half), 0.0)
    a = np.exp(half - m)
    b = np.exp(-half - m)
    t = tie_strength * np.exp(-m)
    z = a + b + t
    return np.stack([a / z, b / z, t / z], axis=-1)


@dataclass
class SimulatedRater:
    """A simulated rater: hidden taste plus Davidson noise, seeded.

    Two raters with the same taste and different seeds share preferences but make
    independent mistakes; that is how the held-out judge of :mod:`musicrl.evaluation`
    is built.

    Parameters
    ----------
    taste : HiddenTaste
        The utility the rater's choices are noisy comparisons of.
    temperature : float
        Noise scale ``τ > 0`` (utility units); larger is noisier.
    tie_strength : float
        Davidson's ``ν >= 0``; 0 disables ties.
    seed : int
        Seed of the rater's own noise.
    rater_id : str, optional
        Stored with each record; defaults to ``"simulated-<seed>"`` and must start with
        ``"simulated-"`` so that simulated records can never pass for human ones.

    Examples
    --------
    >>> rater = SimulatedRater(seed=1)
    >>> rater.rater_id
    'simulated-1'
    """

    taste: HiddenTaste = field(default_factory=HiddenTaste)
    temperature: float = 0.5
    tie_strength: float = 0.5
    seed: int = 0
    rater_id: str = ""

    def __post_init__(self) -> None:
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature of SimulatedRater must be > 0; got {self.temperature}")
        if not (self.tie_strength >= 0 and math.isfinite(self.tie_strength)):
            raise ValueError(
                f"tie_strength of SimulatedRater must be >= 0; got {self.tie_strength}"
            )
        if not self.rater_id:
            self.rater_id = f"simulated-{self.seed}"
        if not self.rater_id.startswith("simulated-"):
            raise ValueError(
                f"rater_id of SimulatedRater must start with 'simulated-'; got {self.rater_id!r}"
            )
        self._rng = np.random.default_rng(self.seed)

    def probabilities(
        self,
        prompts: Sequence[Prompt],
        melodies_a: Sequence[Melody],
        melodies_b: Sequence[Melody],
    ) -> np.ndarray:
        """``(n, 3)`` probabilities of choosing A, B, tie for each pair."""
        ua = self.taste.utilities(prompts, melodies_a)
        ub = self.taste.utilities(prompts, melodies_b)
        return davidson_probabilities(ua - ub, self.temperature, self.tie_strength)

    def choose(
        self,
        prompts: Sequence[Prompt],
        melodies_a: Sequence[Melody],
        melodies_b: Sequence[Melody],
    ) -> list[Choice]:
        """Draw one choice in ``{"A", "B", "tie"}`` per pair from the rater's noise."""
        probs = self.probabilities(prompts, melodies_a, melodies_b)
        u = self._rng.random(len(probs))
        cum = np.cumsum(probs, axis=1)
        idx = (u[:, None] >= cum[:, :2]).sum(axis=1)
        return [CHOICES[int(i)] for i in idx]


def best_achievable_accuracy(
    taste: HiddenTaste,
    prompts: Sequence[Prompt],
    melodies_a: Sequence[Melody],
    melodies_b: Sequence[Melody],
    choices: Sequence[str],
) -> float:
    """Accuracy of the noiseless taste on noisy labels, ties excluded.

    This is the ceiling for any reward model scored on the same labels: the Bayes
    classifier under the rater model picks the melody with the higher utility. Pairs the
    taste itself rates equal count one half.

    Raises
    ------
    ValueError
        If the lengths differ or no record is a non-tie.
    """
    n = len(choices)
    if not (len(prompts) == len(melodies_a) == len(melodies_b) == n):
        raise ValueError("prompts, melodies_a, melodies_b and choices must have the same length")
    ua = taste.utilities(prompts, melodies_a)
    ub = taste.utilities(prompts, melodies_b)
    hits = 0.0
    count = 0
    for d, c in zip(ua - ub, choices, strict=True):
        if c == "tie":
            continue
        count += 1
        if d == 0:
            hits += 0.5
        elif (d > 0) == (c == "A"):
            hits += 1.0
    if count == 0:
        raise ValueError("choices must contain at least one 'A' or 'B' (all were ties)")
    return hits / count
