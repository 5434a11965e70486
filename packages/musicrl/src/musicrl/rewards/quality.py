"""Rule-based musical well-formedness: the analog of MusicRL's quality reward.

Why rule-based and not learned: MusicRL's quality model was trained on human ratings of
audio quality; for symbolic melodies there are no such ratings, and the corpus holds only
well-formed melodies (no negatives to learn from). Four transparent rules from music
theory therefore score what "well-formed" means for a tonal folk or chorale melody. Each
rule is an average or a ratio in ``[0, 1]``, so the score does not grow when a melody gets
shorter (no length exploit), and the reward is their mean:

==========  ============================================================================
rule        definition and source
==========  ============================================================================
``scale``   duration-weighted fraction of pitched notes in the prompt's scale (major, or
            minor with the raised leading tone); tonal melodies stay diatonic
            (Krumhansl 1990, *Cognitive Foundations of Musical Pitch*)
``range``   1 for a range of 5 to 16 semitones (a fourth to a tenth), falling linearly
            to 0 at 28 above it and to 0.5 at 0 below it: folk and chorale melodies span
            about an octave and rarely exceed a tenth (Huron 2006, ch. 5; the soprano
            range of a chorale is about a tenth)
``meter``   share of the duration in bars that fit the prompt's meter (full bars; a
            pickup allowed when the final bar completes it; ``_music.bar_fit_fraction``)
``cadence`` 1 if the last pitched note is the tonic, else 0 (tonic closure; Huron 2006,
            ch. 9)
==========  ============================================================================

The rules overlap with the simulated raters' hidden taste (key, meter, cadence): both
describe what listeners value, much as MusicRL's quality and preference rewards both
reflect the same users. The taste adds voice leading, length and variety, which this
reward does not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musicrl._music import bar_fit_fraction, in_scale_fraction, prompt_key
from musicrl.corpus import Melody, Prompt

__all__ = ["QualityReward", "quality_terms", "range_score"]


def range_score(semitones: int) -> float:
    """Score of a melodic range (highest minus lowest pitch, semitones), in ``[0, 1]``.

    Examples
    --------
    >>> range_score(12), range_score(22), range_score(0)
    (1.0, 0.5, 0.5)
    """
    r = int(semitones)
    if r < 5:
        return 0.5 + 0.1 * r
    if r <= 16:
        return 1.0
    return max(0.0, 1.0 - (r - 16) / 12.0)


def quality_terms(prompt: Prompt, melody: Melody) -> dict[str, float]:
    """The four rule scores (``scale``, ``range``, ``meter``, ``cadence``) of one melody.

    A melody without a pitched note scores 0 on every rule.
    """
    pitches = melody.pitches
    if not pitches:
        return {"scale": 0.0, "range": 0.0, "meter": 0.0, "cadence": 0.0}
    tonic, mode = prompt_key(prompt, melody)
    return {
        "scale": in_scale_fraction(melody, tonic, mode),
        "range": range_score(max(pitches) - min(pitches)),
        "meter": bar_fit_fraction(melody, prompt.meter or melody.meter),
        "cadence": 1.0 if pitches[-1] % 12 == tonic else 0.0,
    }


@dataclass(frozen=True)
class QualityReward:
    """Rule-based well-formedness reward: the mean of :func:`quality_terms`, in ``[0, 1]``.

    Examples
    --------
    >>> from musicrl.corpus import Melody, Note, Prompt
    >>> m = Melody((Note(67, 1.0), Note(69, 1.0), Note(71, 1.0), Note(67, 3.0)), "3/4", (0, 3))
    >>> QualityReward().score([Prompt.parse("G major, 3/4")], [m]).tolist()
    [0.975]
    """

    name: str = "quality"

    def score(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray:
        """Reward of each ``(prompts[i], melodies[i])``; float64 array of length n."""
        if len(prompts) != len(melodies):
            raise ValueError(
                f"prompts and melodies must have the same length; got {len(prompts)} "
                f"and {len(melodies)}"
            )
        scores = [
            float(np.mean(list(quality_terms(p, m).values())))
            for p, m in zip(prompts, melodies, strict=True)
        ]
        return np.asarray(scores, dtype=np.float64)
