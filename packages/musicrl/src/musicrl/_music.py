"""Small music-theory helpers shared by the rewards, the raters and the evaluation.

Pure functions over :class:`musicrl.corpus.Melody` / :class:`musicrl.corpus.Prompt` and
plain numbers. A prompt may leave tags unspecified (``None``); the helpers then fall
back to what the melody itself says (its own meter, its best-fitting key).
"""

from __future__ import annotations

import math

import numpy as np

from musicrl.corpus import TICKS_PER_QUARTER, Melody, Prompt, meter_ticks

# Scale degrees (pitch classes above the tonic). Minor is natural minor plus the raised
# seventh (the leading tone of harmonic minor), which tonal minor-key melodies use
# routinely (Aldwell & Schachter, *Harmony and Voice Leading*, ch. 1).
MODE_SCALES: dict[str, frozenset[int]] = {
    "major": frozenset({0, 2, 4, 5, 7, 9, 11}),
    "minor": frozenset({0, 2, 3, 5, 7, 8, 10, 11}),
}

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"#": 1, "b": -1, "-": -1}

#: Target bar ranges of the corpus length tags. The tags themselves are defined by
#: ``corpus.LENGTH_MAX_BARS`` (short <= 8 < medium <= 16 < long); the lower end of
#: "short" (4 bars, one phrase) and the upper end of "long" (32 bars, two double periods)
#: close the open ends so that a melody can be "too short" or "too long" for its tag.
LENGTH_RANGES: dict[str, tuple[float, float]] = {
    "short": (4.0, 8.0),
    "medium": (9.0, 16.0),
    "long": (17.0, 32.0),
}


def parse_tonic(name: str) -> int:
    """Pitch class (0 = C) of a tonic written as a note name (``"F#"``, ``"B-"``, ``"Bb"``).

    Raises
    ------
    ValueError
        If ``name`` is not a note name.

    Examples
    --------
    >>> parse_tonic("G"), parse_tonic("B-"), parse_tonic("C#")
    (7, 10, 1)
    """
    text = name.strip()
    if not text or text[0].upper() not in _LETTER_PC:
        raise ValueError(f"key must be a note name such as 'G', 'F#' or 'B-'; got {name!r}")
    pc = _LETTER_PC[text[0].upper()]
    for ch in text[1:]:
        if ch not in _ACCIDENTAL:
            raise ValueError(f"key must be a note name such as 'G', 'F#' or 'B-'; got {name!r}")
        pc += _ACCIDENTAL[ch]
    return pc % 12


def pitch_class_weights(melody: Melody) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12 bins, quarter lengths, rests ignored)."""
    hist = np.zeros(12)
    for n in melody.notes:
        if n.pitch is not None:
            hist[n.pitch % 12] += n.duration
    return hist


def best_key(melody: Melody) -> tuple[int, str]:
    """The (tonic pitch class, mode) whose scale holds most of the melody's duration.

    Ties go to the key whose tonic has the most duration, then to major, then to the lower
    pitch class. Used only when a prompt leaves the key unspecified.
    """
    hist = pitch_class_weights(melody)
    best: tuple[float, float, int, int, str] | None = None
    for mode_rank, mode in enumerate(("major", "minor")):
        for tonic in range(12):
            inside = sum(hist[(tonic + d) % 12] for d in MODE_SCALES[mode])
            cand = (inside, hist[tonic], -mode_rank, -tonic, mode)
            if best is None or cand[:4] > best[:4]:
                best = cand
    assert best is not None  # the loops always run
    return -best[3], best[4]


def prompt_key(prompt: Prompt, melody: Melody) -> tuple[int, str]:
    """Tonic pitch class and mode asked by ``prompt``, filling gaps from the melody."""
    if prompt.key is not None and prompt.mode is not None:
        return parse_tonic(prompt.key), prompt.mode
    tonic, mode = best_key(melody)
    if prompt.key is not None:
        tonic = parse_tonic(prompt.key)
    if prompt.mode is not None:
        mode = prompt.mode
    return tonic, mode


def in_scale_fraction(melody: Melody, tonic: int, mode: str) -> float:
    """Duration-weighted fraction of pitched notes whose pitch class is in the scale."""
    hist = pitch_class_weights(melody)
    total = float(hist.sum())
    if total <= 0:
        return 0.0
    return float(sum(hist[(tonic + d) % 12] for d in MODE_SCALES[mode]) / total)


def bar_fit_fraction(melody: Melody, meter: str | None) -> float:
    """Share of the melody's duration that lies in bars fitting ``meter``.

    A bar fits when it is exactly one full bar, with the usual allowance for an anacrusis:
    the first bar may be shorter (a pickup), and the last bar may be shorter only if it
    completes the pickup (first + last = one full bar). Weighting by duration keeps the
    pickup's allowance small, so a melody cannot score well by being only a bar or two of
    lenient boundary bars: the score is the same for a well-formed melody of any length.
    Returns 0 for an empty melody or when neither ``meter`` nor the melody's meter is known.

    Examples
    --------
    >>> from musicrl.corpus import Melody, Note
    >>> m = Melody((Note(60, 1.0), Note(62, 3.0), Note(64, 2.0)), "3/4", (0, 1, 2))
    >>> bar_fit_fraction(m, "3/4")  # pickup 1 + full bar 3 + last 2 (completes the pickup)
    1.0
    """
    meter = meter or melody.meter
    if meter is None or not melody.notes:
        return 0.0
    full = meter_ticks(meter)
    ticks = melody.bar_ticks()
    n = len(ticks)
    ok = [t == full for t in ticks]
    if n >= 2:
        pickup = ticks[0] < full
        ok[0] = ticks[0] <= full
        ok[-1] = ticks[-1] == full or (pickup and ticks[0] + ticks[-1] == full)
    total = float(sum(ticks))
    return float(sum(t for t, good in zip(ticks, ok, strict=True) if good) / total)


def count_bars(melody: Melody, meter: str | None) -> float:
    """Length in bars: total duration over the bar length (bar count if the meter is unknown)."""
    meter = meter or melody.meter
    if meter is None:
        return float(len(melody.bars))
    return melody.total_duration * TICKS_PER_QUARTER / meter_ticks(meter)


def length_fit(bars: float, length_tag: str | None) -> float:
    """``2^(-d)`` where ``d`` is the log2 distance of ``bars`` to the tag's bar range.

    1 inside :data:`LENGTH_RANGES` [tag], 0.5 at half the lower end or double the upper
    end; 1 when the prompt has no length tag.

    Examples
    --------
    >>> length_fit(6, "short"), length_fit(2, "short"), length_fit(16, "short")
    (1.0, 0.5, 0.5)
    """
    if length_tag is None:
        return 1.0
    lo, hi = LENGTH_RANGES[length_tag]
    b = max(bars, 1e-9)
    if b < lo:
        d = math.log2(lo / b)
    elif b > hi:
        d = math.log2(b / hi)
    else:
        d = 0.0
    return float(2.0**-d)


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of a histogram of non-negative counts."""
    total = float(np.sum(counts))
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-np.sum(p * np.log2(p)))
