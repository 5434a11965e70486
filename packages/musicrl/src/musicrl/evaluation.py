"""Evaluation: pairwise win rate with a Wilson interval, rewards, diversity and length.

MusicRL reports pairwise win rates with ties excluded (``wins / (wins + losses)``) from
raters who were not part of training. Here the judge is a :class:`~musicrl.raters.
SimulatedRater` with the same hidden taste as the raters that produced the training
records but its own seed, so its noise is independent of the training labels. Win rates
come with a 95% Wilson score interval (Wilson 1927; recommended over the Wald interval by
Brown, Cai & DasGupta 2001, *Statistical Science* 16:101-133).

Reward hacking and collapse show up in the set statistics reported next to the win
rate: distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
Conversation Models"): unique note n-grams over all n-grams in the pooled samples; mean
per-melody pitch-class entropy (bits); mean length in notes and in bars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from musicrl._music import count_bars, entropy_bits
from musicrl.corpus import Melody, Prompt
from musicrl.raters import SimulatedRater

__all__ = [
    "Z_95",
    "SampleStats",
    "WinRate",
    "distinct_n",
    "judge_win_rate",
    "mean_sample_stats",
    "pitch_class_entropy",
    "pool_win_rates",
    "sample_stats",
    "wilson_interval",
    "win_rate",
]

#: Two-sided 95% standard-normal quantile, Φ⁻¹(0.975) (scipy.stats.norm.ppf(0.975)).
Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    ``center = (p̂ + z²/(2n)) / (1 + z²/n)``,
    ``half = z / (1 + z²/n) · sqrt(p̂(1-p̂)/n + z²/(4n²))`` with ``p̂ = successes / n``
    (Wilson 1927, *JASA* 22:209-212).

    Parameters
    ----------
    successes : int
        Number of successes, ``0 <= successes <= n``.
    n : int
        Number of trials; ``n = 0`` gives the uninformative ``(0, 1)``.
    z : float
        Normal quantile (default :data:`Z_95`).

    Returns
    -------
    tuple of float
        ``(low, high)``, inside ``[0, 1]``.

    Raises
    ------
    ValueError
        If the counts are negative or ``successes > n``.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n; got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class WinRate:
    """Pairwise outcome counts, the win rate ``wins / (wins + losses)`` and its CI.

    ``rate`` is ``nan`` when there is no decisive comparison.
    """

    wins: int
    losses: int
    ties: int
    rate: float
    ci_low: float
    ci_high: float

    def __str__(self) -> str:
        return (
            f"{100 * self.rate:.1f}% [{100 * self.ci_low:.1f}, {100 * self.ci_high:.1f}] "
            f"({self.wins}W/{self.losses}L/{self.ties}T)"
        )


def win_rate(wins: int, losses: int, ties: int = 0, z: float = Z_95) -> WinRate:
    """Win rate with ties excluded and its Wilson interval over ``wins + losses`` trials.

    Examples
    --------
    >>> w = win_rate(87, 13, ties=5)
    >>> round(w.rate, 2), round(w.ci_low, 3)
    (0.87, 0.79)
    """
    for name, v in (("wins", wins), ("losses", losses), ("ties", ties)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0; got {v}")
    n = wins + losses
    lo, hi = wilson_interval(wins, n, z)
    return WinRate(wins, losses, ties, wins / n if n else math.nan, lo, hi)


def judge_win_rate(
    judge: SimulatedRater,
    prompts: Sequence[Prompt],
    melodies_x: Sequence[Melody],
    melodies_y: Sequence[Melody],
) -> WinRate:
    """Win rate of ``melodies_x`` over ``melodies_y`` (pairwise, same prompt) by ``judge``.

    The judge must be held out: not one of the raters whose records trained any reward.
    """
    choices = judge.choose(prompts, melodies_x, melodies_y)
    return win_rate(choices.count("A"), choices.count("B"), choices.count("tie"))


def pool_win_rates(rates: Sequence[WinRate], z: float = Z_95) -> WinRate:
    """One :class:`WinRate` from several judged draws: counts summed, Wilson interval on
    the pooled decisive comparisons.

    Draws that reuse the same prompts are not independent (a prompt that favours one
    model does so in every draw), so the pooled interval is somewhat too narrow; the
    pooled rate is the better estimate of the model's expected win rate than any single
    draw.

    Examples
    --------
    >>> w = pool_win_rates([win_rate(8, 2, 1), win_rate(6, 4)])
    >>> (w.wins, w.losses, w.ties, round(w.rate, 2))
    (14, 6, 1, 0.7)
    """
    if not rates:
        raise ValueError("rates must hold at least one WinRate")
    return win_rate(
        sum(r.wins for r in rates), sum(r.losses for r in rates), sum(r.ties for r in rates), z
    )


def distinct_n(melodies: Sequence[Melody], n: int = 4) -> float:
    """Distinct-n: unique note n-grams / all note n-grams over the pooled melodies.

    A note is ``(pitch or None, duration in ticks)``. Melodies shorter than ``n`` add no
    n-gram. Returns 0 when there is none.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    grams: list[tuple[tuple[int | None, int], ...]] = []
    for m in melodies:
        notes = [(x.pitch, x.ticks) for x in m.notes]
        grams.extend(tuple(notes[i : i + n]) for i in range(len(notes) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def pitch_class_entropy(melody: Melody) -> float:
    """Entropy (bits) of the pitch-class counts of one melody (0 for fewer than 2 notes)."""
    counts = np.bincount([p % 12 for p in melody.pitches], minlength=12).astype(np.float64)
    return entropy_bits(counts)


@dataclass(frozen=True)
class SampleStats:
    """Statistics of a set of generated melodies.

    ``rewards`` maps a reward name to its mean; ``distinct_4`` / ``distinct_2`` are
    :func:`distinct_n`; ``pc_entropy`` the mean :func:`pitch_class_entropy`;
    ``mean_notes`` / ``mean_bars`` the mean length; ``n`` the number of melodies.
    """

    n: int
    rewards: Mapping[str, float]
    distinct_2: float
    distinct_4: float
    pc_entropy: float
    mean_notes: float
    mean_bars: float


def mean_sample_stats(stats: Sequence[SampleStats]) -> SampleStats:
    """The mean of several draws' :class:`SampleStats` (``n`` summed; every other field,
    and every reward, averaged), so that diversity keeps its per-draw definition.

    Examples
    --------
    >>> a = SampleStats(10, {"r": 1.0}, 0.5, 0.9, 2.0, 30.0, 8.0)
    >>> b = SampleStats(10, {"r": 3.0}, 0.7, 0.7, 2.2, 40.0, 10.0)
    >>> m = mean_sample_stats([a, b])
    >>> (m.n, m.rewards["r"], round(m.distinct_4, 2), m.mean_notes)
    (20, 2.0, 0.8, 35.0)
    """
    if not stats:
        raise ValueError("stats must hold at least one SampleStats")
    k = len(stats)
    return SampleStats(
        n=sum(s.n for s in stats),
        rewards={name: sum(s.rewards[name] for s in stats) / k for name in stats[0].rewards},
        distinct_2=sum(s.distinct_2 for s in stats) / k,
        distinct_4=sum(s.distinct_4 for s in stats) / k,
        pc_entropy=sum(s.pc_entropy for s in stats) / k,
        mean_notes=sum(s.mean_notes for s in stats) / k,
        mean_bars=sum(s.mean_bars for s in stats) / k,
    )


def sample_stats(
    prompts: Sequence[Prompt],
    melodies: Sequence[Melody],
    rewards: Mapping[str, object] | None = None,
) -> SampleStats:
    """Compute :class:`SampleStats`; ``rewards`` maps names to objects with ``score``.

    Raises
    ------
    ValueError
        If ``prompts`` and ``melodies`` differ in length or are empty.
    """
    if len(prompts) != len(melodies) or not melodies:
        raise ValueError(
            f"prompts and melodies must be non-empty and of equal length; got {len(prompts)} "
            f"and {len(melodies)}"
        )
    means: dict[str, float] = {}
    for name, reward in (rewards or {}).items():
        scores = reward.score(prompts, melodies)  # type: ignore[attr-defined]
        means[name] = float(np.mean(scores))
    return SampleStats(
        n=len(melodies),
        rewards=means,
        distinct_2=distinct_n(melodies, 2),
        distinct_4=distinct_n(melodies, 4),
        pc_entropy=float(np.mean([pitch_class_entropy(m) for m in melodies])),
        mean_notes=float(np.mean([len(m.notes) for m in melodies])),
        mean_bars=float(
            np.mean([count_bars(m, p.meter) for p, m in zip(prompts, melodies, strict=True)])
        ),
    )
