"""Export melodies to music21 streams, MIDI and MusicXML.

A :class:`~musicrl.corpus.Melody`'s bars become music21 measures; a short first bar is a
pickup (``paddingLeft``), a short last bar gets ``paddingRight``. The prompt, when given,
adds the key (``music21.key.Key``) and a title. Files are written atomically (a temporary
file in the target folder, then ``os.replace``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from musicrl.corpus import TICKS_PER_QUARTER, Melody, Prompt, meter_ticks


def melody_to_stream(melody: Melody, prompt: Prompt | None = None) -> Any:
    """Build a ``music21.stream.Score`` with one part holding the melody.

    Parameters
    ----------
    melody : Melody
    prompt : Prompt or None
        Adds a key (when both tonic and mode are set) and the prompt text as title. Its
        meter is used when the melody has none.

    Returns
    -------
    music21.stream.Score

    Raises
    ------
    TypeError
        If ``melody`` is not a Melody or ``prompt`` not a Prompt.

    Examples
    --------
    >>> from musicrl.corpus import Note
    >>> s = melody_to_stream(Melody((Note(67, 1.0), Note(72, 2.0)), "3/4", (0,)))
    >>> [n.pitch.midi for n in s.flatten().notes]
    [67, 72]
    """
    from music21 import key, metadata, meter, note, stream

    if not isinstance(melody, Melody):
        raise TypeError(f"melody must be a Melody; got {type(melody).__name__}")
    if prompt is not None and not isinstance(prompt, Prompt):
        raise TypeError(f"prompt must be a Prompt or None; got {type(prompt).__name__}")
    ts = melody.meter or (prompt.meter if prompt is not None else None)
    score = stream.Score()
    if prompt is not None and str(prompt):
        score.insert(0, metadata.Metadata(title=str(prompt)))
    part = stream.Part()
    full = meter_ticks(ts) if ts else None
    bars = melody.bar_notes() or [()]
    for i, bar in enumerate(bars):
        m = stream.Measure(number=i + (0 if full and melody.has_pickup(ts) else 1))
        if i == 0:
            if ts:
                m.append(meter.TimeSignature(ts))
            if prompt is not None and prompt.key is not None and prompt.mode is not None:
                m.append(key.Key(prompt.key, prompt.mode))
        for n in bar:
            ql = n.ticks / TICKS_PER_QUARTER
            el = (
                note.Rest(quarterLength=ql)
                if n.pitch is None
                else note.Note(n.pitch, quarterLength=ql)
            )
            m.append(el)
        ticks = sum(n.ticks for n in bar)
        if full is not None and ticks < full:
            if i == 0 and len(bars) > 1:
                m.paddingLeft = (full - ticks) / TICKS_PER_QUARTER
            elif i == len(bars) - 1:
                m.paddingRight = (full - ticks) / TICKS_PER_QUARTER
        part.append(m)
    score.insert(0, part)
    return score


def _atomic_music21_write(score: Any, fmt: str, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(fd)
    try:
        written = score.write(fmt, fp=tmp)
        if Path(written) != Path(tmp):  # music21 may add an extension
            os.replace(written, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def write_midi(melody: Melody, path: str | Path, prompt: Prompt | None = None) -> Path:
    """Write ``melody`` as a standard MIDI file (atomically).

    music21 writes 10080 ticks per quarter note, a multiple of 12, so every duration on
    the melody grid is exact. Reading back with ``music21.converter.parse`` gives the
    same pitches and durations (a note crossing a bar line of the re-imported file comes
    back as tied notes; MIDI keeps no pickup, so the first bar starts at time 0).

    Parameters
    ----------
    melody : Melody
    path : str or Path
        Target file (conventionally ``.mid``).
    prompt : Prompt or None
        See :func:`melody_to_stream`.

    Returns
    -------
    Path
        ``path``.
    """
    return _atomic_music21_write(melody_to_stream(melody, prompt), "midi", path)


def write_musicxml(melody: Melody, path: str | Path, prompt: Prompt | None = None) -> Path:
    """Write ``melody`` as uncompressed MusicXML (atomically).

    Parameters
    ----------
    melody : Melody
    path : str or Path
        Target file (conventionally ``.musicxml`` or ``.xml``).
    prompt : Prompt or None
        See :func:`melody_to_stream`.

    Returns
    -------
    Path
        ``path``.
    """
    return _atomic_music21_write(melody_to_stream(melody, prompt), "musicxml", path)
