"""Hypothesis strategies and small builders shared by the musicrl tests."""

from __future__ import annotations

from hypothesis import strategies as st
from musicrl.corpus import Melody, Note, Prompt, meter_ticks

#: Durations used by the strategies (ticks of 1/12 quarter): eighth, quarter, dotted
#: quarter, half; all in corpus.DURATION_TICKS.
_TICKS = (6, 12, 18, 24)


def bar_melody(pitches: list[int | None], ticks: list[int], meter: str) -> Melody:
    """A melody whose bar lines fall every full bar of ``meter`` (notes never cross one).

    Notes are placed greedily; a bar line is put before a note that starts on a bar
    boundary, so melodies built from ``_TICKS`` in 2/4, 3/4, 4/4, 6/8 fit their meter when
    no note crosses a boundary.
    """
    full = meter_ticks(meter)
    notes = tuple(Note(p, t / 12) for p, t in zip(pitches, ticks, strict=True))
    bars = [0] if notes else []
    pos = 0
    for i, t in enumerate(ticks):
        if i > 0 and pos % full == 0:
            bars.append(i)
        pos += t
    return Melody(notes, meter, tuple(bars))


@st.composite
def melodies(draw: st.DrawFn, min_notes: int = 1, max_notes: int = 24) -> Melody:
    """Random melodies (pitches 55-84 or rests) in 2/4, 3/4, 4/4 or 6/8."""
    meter = draw(st.sampled_from(("2/4", "3/4", "4/4", "6/8")))
    n = draw(st.integers(min_notes, max_notes))
    pitches = draw(
        st.lists(
            st.one_of(st.integers(55, 84), st.none()),
            min_size=n,
            max_size=n,
        )
    )
    if all(p is None for p in pitches):
        pitches[0] = 67
    ticks = draw(st.lists(st.sampled_from(_TICKS), min_size=n, max_size=n))
    return bar_melody(pitches, ticks, meter)


@st.composite
def prompts(draw: st.DrawFn) -> Prompt:
    """Fully specified prompts over a few keys, both modes, common meters and lengths."""
    key = draw(st.sampled_from(("C", "G", "D", "F", "B-", "E", "A")))
    mode = draw(st.sampled_from(("major", "minor")))
    meter = draw(st.sampled_from(("2/4", "3/4", "4/4", "6/8")))
    length = draw(st.sampled_from(("short", "medium", "long")))
    return Prompt(key, mode, meter, None, length)
