"""Reward functions behind one registry: preference, adherence, quality.

Every reward has ``name`` and ``score(prompts, melodies) -> numpy.ndarray`` (one float per
melody, higher is better). :data:`REWARDS` is the single source of the names that the CLI,
the docs and the error messages show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from musicrl.corpus import Melody, Prompt
from musicrl.rewards.adherence import AdherenceClassifier
from musicrl.rewards.preference import PreferenceRewardModel
from musicrl.rewards.quality import QualityReward

__all__ = [
    "REWARDS",
    "AdherenceClassifier",
    "PreferenceRewardModel",
    "QualityReward",
    "Reward",
    "parse_reward_weights",
]


class Reward(Protocol):
    """What fine-tuning needs from a reward: a name and a batch scoring function."""

    @property
    def name(self) -> str: ...

    def score(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray: ...


#: name -> class. ``preference`` is learned from preference records (MusicRL's user
#: reward), ``adherence`` from the corpus tags (the MuLan analog), ``quality`` is rule-based.
REWARDS: dict[str, type] = {
    "adherence": AdherenceClassifier,
    "preference": PreferenceRewardModel,
    "quality": QualityReward,
}


def parse_reward_weights(spec: str) -> dict[str, float]:
    """Parse ``"preference,adherence"`` or ``"preference=2,quality=0.5"`` into weights.

    A name without ``=w`` gets weight 1.

    Raises
    ------
    ValueError
        If a name is not in :data:`REWARDS`, a weight is not a finite number >= 0, a name
        repeats, or nothing is given.

    Examples
    --------
    >>> parse_reward_weights("preference,adherence=0.5")
    {'preference': 1.0, 'adherence': 0.5}
    """
    out: dict[str, float] = {}
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in REWARDS:
            raise ValueError(f"rewards must be drawn from {sorted(REWARDS)}; got {name!r}")
        if name in out:
            raise ValueError(f"rewards names {name!r} twice in {spec!r}")
        try:
            w = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise ValueError(
                f"reward weight of {name!r} must be a number; got {weight!r}"
            ) from None
        if not (w >= 0 and np.isfinite(w)):
            raise ValueError(f"reward weight of {name!r} must be finite and >= 0; got {w}")
        out[name] = w
    if not out:
        raise ValueError(f"rewards must name at least one of {sorted(REWARDS)}; got {spec!r}")
    return out
