"""Melodies and prompts: the data model, the tag vocabularies, and the music21 corpus loader.

A :class:`Piece` is a monophonic :class:`Melody` (notes and rests with durations on a
grid of 1/12 quarter note, grouped into bars) plus a :class:`Prompt` (the tags that
condition the generator: key tonic, mode, meter, collection, length).

The tag vocabularies below (:data:`TONICS`, :data:`MODES`, :data:`METERS`,
:data:`COLLECTIONS`, :data:`LENGTHS`) are the single source of the allowed values that
the tokenizer, the prompt parser, the error messages and the docs use.

:func:`load_corpus` reads melodies from the corpus that ships inside the ``music21``
package (no download): the Essen folk-song collection (ABC files, monophonic) and the
Bach chorales (MusicXML, soprano part). See ``docs/musicrl/generator.md`` for every
extraction rule and the constants' sources.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Duration grid: durations are integer multiples of 1/TICKS_PER_QUARTER quarter notes.
#: 12 = lcm(4, 3) holds sixteenths (3 ticks) and eighth-note triplets (4 ticks) exactly.
TICKS_PER_QUARTER = 12

#: Allowed note/rest durations in ticks (1/12 quarter): the plain, dotted and triplet
#: note values from the sixteenth triplet to the dotted breve, plus the tied values that
#: occur in the corpus within one bar (5/4, 5/2 ...). A piece with any other duration is
#: skipped by the loader (counted and logged). Measured coverage: docs/musicrl/generator.md.
DURATION_TICKS: tuple[int, ...] = (
    2,  # sixteenth triplet (1/6)
    3,  # sixteenth (1/4)
    4,  # eighth triplet (1/3)
    6,  # eighth (1/2)
    8,  # quarter triplet (2/3)
    9,  # dotted eighth (3/4)
    12,  # quarter (1)
    15,  # quarter tied to sixteenth (5/4)
    18,  # dotted quarter (3/2)
    21,  # double-dotted quarter (7/4)
    24,  # half (2)
    30,  # half tied to eighth (5/2)
    36,  # dotted half (3)
    42,  # double-dotted half (7/2)
    48,  # whole (4)
    60,  # whole tied to quarter (5)
    72,  # dotted whole (6)
    96,  # breve (8)
)

#: Key tonics, one spelling per pitch class (music21 spelling: '-' is flat). The
#: spelling is the one with the fewer accidentals in the major key signature, with
#: F# (6 sharps) preferred over G- (6 flats). Enharmonic aliases ('Gb', 'G-', 'Db') are
#: accepted by :meth:`Prompt.parse` and mapped to these.
TONICS: tuple[str, ...] = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")

#: Modes. music21's church modes are mapped: ionian/lydian/mixolydian -> major,
#: dorian/phrygian/aeolian/locrian -> minor (by the quality of the third).
MODES: tuple[str, ...] = ("major", "minor")

#: Meters the tokenizer knows. Pieces in other meters (free meter, 5/8, 7/8 ...) are
#: skipped. The list is the set of meters with at least ~30 pieces in the Essen and
#: Bach corpora (counts in docs/musicrl/generator.md), plus 9/8 and 12/8 for compound
#: triple/quadruple time.
METERS: tuple[str, ...] = (
    "2/2",
    "2/4",
    "3/2",
    "3/4",
    "3/8",
    "4/2",
    "4/4",
    "6/4",
    "6/8",
    "9/8",
    "12/8",
)

#: Collections: a tag per source. For the Essen folk songs the tag is the region of the
#: Essen sub-collection the ABC file comes from (see ESSEN_FILE_COLLECTIONS).
COLLECTIONS: tuple[str, ...] = (
    "bach",
    "essen:china",
    "essen:germany",
    "essen:ireland",
    "essen:lorraine",
    "essen:luxembourg",
    "essen:other",
)

#: Essen ABC file stem (digits stripped) -> collection tag. The Essen Associative Code
#: collection groups its German songs (Altdeutsches Liederbuch, Böhme, Deutsches
#: Volksliedarchiv, Erk, Fink, children's songs, Zuccalmaglio, ballads, variants) under
#: "deutschl"; Han Chinese songs under "china/han"; Lorraine ("lot"), Luxembourg
#: ("lux") and Ireland ("irl") are their own regions. music21's ``test*`` files are
#: test excerpts duplicated elsewhere and are not read.
ESSEN_FILE_COLLECTIONS: dict[str, str] = {
    "altdeu": "essen:germany",
    "ballad": "essen:germany",
    "boehme": "essen:germany",
    "dva": "essen:germany",
    "erk": "essen:germany",
    "fink": "essen:germany",
    "kinder": "essen:germany",
    "variant": "essen:germany",
    "zuccal": "essen:germany",
    "han": "essen:china",
    "lot": "essen:lorraine",
    "lux": "essen:luxembourg",
    "irl": "essen:ireland",
    "folkHaydn": "essen:other",
}

#: Length buckets by the number of bars (a pickup bar is not counted). Thresholds follow
#: the phrase structure of folk and chorale melodies: up to one 8-bar period is
#: "short", up to a 16-bar double period "medium", longer is "long".
LENGTHS: tuple[str, ...] = ("short", "medium", "long")
LENGTH_MAX_BARS: dict[str, int] = {"short": 8, "medium": 16}

#: The music21 corpus collections :func:`load_corpus` can read.
CORPUS_COLLECTIONS: tuple[str, ...] = ("bach", "essenFolksong")

#: Bumped whenever the extraction rules change, so that old caches are not reused.
PARSER_VERSION = 1

_TAG_FIELDS: tuple[str, ...] = ("key", "mode", "meter", "collection", "length")

_FLAT_ALIASES: dict[str, str] = {
    # pitch class name (any spelling) -> canonical TONICS spelling
    "C": "C", "B#": "C",
    "C#": "C#", "D-": "C#",
    "D": "D",
    "D#": "E-", "E-": "E-",
    "E": "E", "F-": "E",
    "F": "F", "E#": "F",
    "F#": "F#", "G-": "F#",
    "G": "G",
    "G#": "A-", "A-": "A-",
    "A": "A",
    "A#": "B-", "B-": "B-",
    "B": "B", "C-": "B",
}  # fmt: skip

_MODE_MAP: dict[str, str] = {
    "major": "major",
    "ionian": "major",
    "lydian": "major",
    "mixolydian": "major",
    "minor": "minor",
    "aeolian": "minor",
    "dorian": "minor",
    "phrygian": "minor",
    "locrian": "minor",
}


def canonical_tonic(name: str) -> str:
    """Map a tonic spelling to its :data:`TONICS` spelling.

    Parameters
    ----------
    name : str
        A note name: letter A–G (any case) and an optional accidental ``#``, ``b``,
        ``-`` (music21's flat) — e.g. ``"Bb"``, ``"B-"``, ``"f#"``.

    Returns
    -------
    str
        The canonical spelling, one of :data:`TONICS`.

    Raises
    ------
    ValueError
        If ``name`` is not a note name.

    Examples
    --------
    >>> canonical_tonic("Gb")
    'F#'
    >>> canonical_tonic("b-")
    'B-'
    """
    text = name.strip()
    if not text or text[0].upper() not in "ABCDEFG" or len(text) > 2:
        raise ValueError(f"tonic must be a note name like 'G', 'F#', 'Bb' or 'B-'; got {name!r}")
    letter = text[0].upper()
    acc = text[1:].replace("b", "-")
    key = letter + acc
    if key not in _FLAT_ALIASES:
        raise ValueError(f"tonic must be a note name like 'G', 'F#', 'Bb' or 'B-'; got {name!r}")
    return _FLAT_ALIASES[key]


def canonical_mode(name: str) -> str:
    """Map a mode name (music21's church modes included) to ``"major"`` or ``"minor"``.

    Raises
    ------
    ValueError
        If the mode is not one of ``major``, ``minor`` or a church mode.

    Examples
    --------
    >>> canonical_mode("Dorian")
    'minor'
    """
    mode = name.strip().lower()
    if mode not in _MODE_MAP:
        raise ValueError(f"mode must be one of {sorted(_MODE_MAP)}; got {name!r}")
    return _MODE_MAP[mode]


def meter_ticks(meter: str) -> int:
    """Length of one bar of ``meter`` in ticks (1/12 quarter note).

    Formula: ``numerator * (4 / denominator) * TICKS_PER_QUARTER``.

    Raises
    ------
    ValueError
        If ``meter`` is not ``"n/d"`` with positive integers and ``d`` a power of two.

    Examples
    --------
    >>> meter_ticks("6/8")
    36
    """
    try:
        num_s, den_s = meter.split("/")
        num, den = int(num_s), int(den_s)
    except (ValueError, AttributeError):
        raise ValueError(f"meter must look like '6/8'; got {meter!r}") from None
    if num <= 0 or den <= 0 or den & (den - 1):
        raise ValueError(f"meter must be 'n/d' with n > 0 and d a power of two; got {meter!r}")
    ticks = Fraction(num * 4 * TICKS_PER_QUARTER, den)
    if ticks.denominator != 1:
        raise ValueError(f"meter {meter!r} has a bar that is not a whole number of ticks")
    return int(ticks)


def length_bucket(n_bars: int) -> str:
    """Length tag for a melody with ``n_bars`` bars (pickup not counted).

    ``short`` if ``n_bars <= 8``, ``medium`` if ``n_bars <= 16``, else ``long``
    (:data:`LENGTH_MAX_BARS`).

    Examples
    --------
    >>> length_bucket(8), length_bucket(12), length_bucket(24)
    ('short', 'medium', 'long')
    """
    if n_bars <= LENGTH_MAX_BARS["short"]:
        return "short"
    if n_bars <= LENGTH_MAX_BARS["medium"]:
        return "medium"
    return "long"


#: Key profiles for Krumhansl–Schmuckler key finding, index 0 = tonic, as
#: ``{name: (major, minor)}``. "krumhansl-kessler": probe-tone ratings (Krumhansl &
#: Kessler 1982; Krumhansl 1990, *Cognitive Foundations of Musical Pitch*).
#: "aarden-essen": pitch-class frequencies of major and minor songs of the Essen
#: collection (Aarden 2003, as tabulated in Humdrum ``keycor`` and used by music21's
#: default ``analyze('key')``).
KEY_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "krumhansl-kessler": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    "aarden-essen": (
        (17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587,
         0.291248, 22.062, 0.145624, 8.15494, 0.232998, 4.95122),
        (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362,
         0.702494, 18.6161, 4.56621, 1.93186, 7.37619, 1.75623),
    ),
}  # fmt: skip

#: Profiles :func:`estimate_key` uses by default (see docs/musicrl/generator.md for the
#: comparison on Bach chorales with a stated mode).
DEFAULT_KEY_PROFILE = "krumhansl-kessler"


def key_correlations(
    pitches: Sequence[int],
    durations: Sequence[float],
    profile: str = DEFAULT_KEY_PROFILE,
) -> np.ndarray:
    """Krumhansl–Schmuckler key scores of a melody.

    The duration-weighted pitch-class histogram ``h`` is correlated (Pearson) with the
    key profile of mode ``m`` rotated to each tonic ``t``:
    ``r[m, t] = corr(h, roll(P_m, t))`` (Krumhansl 1990, ch. 4; the algorithm behind
    music21's ``analyze('key')``, reimplemented because music21's version builds 24
    scale objects per call and dominated the corpus parse time).

    Parameters
    ----------
    pitches : sequence of int
        MIDI pitches of the notes.
    durations : sequence of float
        Their durations (any unit).
    profile : str
        A key of :data:`KEY_PROFILES`.

    Returns
    -------
    numpy.ndarray
        Shape ``(2, 12)``: row 0 major, row 1 minor; column = tonic pitch class
        (0 = C). All zeros when the histogram is flat or empty.

    Examples
    --------
    >>> r = key_correlations([60, 62, 64, 65, 67, 69, 71, 72], [1.0] * 7 + [2.0])
    >>> int(r[0].argmax()), bool(r[0].max() > r[1].max())  # C major
    (0, True)
    """
    if profile not in KEY_PROFILES:
        raise ValueError(f"profile must be one of {sorted(KEY_PROFILES)}; got {profile!r}")
    hist = np.zeros(12)
    for p, d in zip(pitches, durations, strict=True):
        hist[int(p) % 12] += float(d)
    out = np.zeros((2, 12))
    hc = hist - hist.mean()
    hn = float(np.sqrt((hc**2).sum()))
    if hn == 0.0:
        return out
    for m, prof in enumerate(KEY_PROFILES[profile]):
        pc = np.asarray(prof) - np.mean(prof)
        pn = float(np.sqrt((pc**2).sum()))
        for t in range(12):
            out[m, t] = float(hc @ np.roll(pc, t)) / (hn * pn)
    return out


def estimate_key(
    melody: Melody, sharps: int | None = None, profile: str = DEFAULT_KEY_PROFILE
) -> tuple[str, str]:
    """Tonic and mode of a melody by Krumhansl–Schmuckler key finding.

    With ``sharps`` (a key signature: positive sharps, negative flats), the choice is
    restricted to the signature's major key and its relative minor — the signature fixes
    the pitch collection, the profile correlation picks the tonal centre.

    Parameters
    ----------
    melody : Melody
        The melody (rests ignored).
    sharps : int or None
        Key signature in -7..7, or ``None`` for an unrestricted choice among 24 keys.
    profile : str
        A key of :data:`KEY_PROFILES`.

    Returns
    -------
    tuple of str
        ``(tonic, mode)`` with the tonic in :data:`TONICS` spelling.

    Raises
    ------
    ValueError
        If ``sharps`` is outside -7..7 or the melody has no pitched note.

    Examples
    --------
    >>> m = Melody((Note(57, 1.0), Note(60, 1.0), Note(64, 1.0), Note(57, 3.0)), "3/4", (0, 3))
    >>> estimate_key(m, sharps=0)
    ('A', 'minor')
    """
    if sharps is not None and not -7 <= sharps <= 7:
        raise ValueError(f"sharps must be a key signature in -7..7; got {sharps}")
    notes = [n for n in melody.notes if n.pitch is not None]
    if not notes:
        raise ValueError("estimate_key needs a melody with at least one pitched note")
    r = key_correlations(
        [n.pitch for n in notes if n.pitch is not None], [n.duration for n in notes], profile
    )
    if sharps is None:
        m, t = np.unravel_index(int(np.argmax(r)), r.shape)
        return TONICS[int(t)], MODES[int(m)]
    major_pc = (7 * sharps) % 12  # each sharp moves the major tonic a fifth up
    minor_pc = (major_pc + 9) % 12  # relative minor: a minor third below
    if r[1, minor_pc] > r[0, major_pc]:
        return TONICS[minor_pc], "minor"
    return TONICS[major_pc], "major"


@dataclass(frozen=True)
class Note:
    """A note or a rest.

    Parameters
    ----------
    pitch : int or None
        MIDI pitch number (60 = middle C), or ``None`` for a rest.
    duration : float
        Length in quarter notes. It must lie on the grid of 1/12 quarter note
        (:data:`TICKS_PER_QUARTER`) within 1e-6 and is snapped to it exactly, so that
        ``Note(60, 1/3) == Note(60, 4/12)``.

    Raises
    ------
    ValueError
        If the duration is not positive or not on the grid, or the pitch is outside 0–127.

    Examples
    --------
    >>> Note(67, 0.5).ticks
    6
    """

    pitch: int | None
    duration: float

    def __post_init__(self) -> None:
        if self.pitch is not None:
            if isinstance(self.pitch, bool) or not isinstance(self.pitch, int):
                raise TypeError(f"Note.pitch must be an int or None; got {self.pitch!r}")
            if not 0 <= self.pitch <= 127:
                raise ValueError(f"Note.pitch must be a MIDI number in 0..127; got {self.pitch}")
        ticks = float(self.duration) * TICKS_PER_QUARTER
        rounded = round(ticks)
        if rounded <= 0 or abs(ticks - rounded) > 1e-6:
            raise ValueError(
                "Note.duration must be a positive multiple of 1/12 quarter note; "
                f"got {self.duration!r}"
            )
        object.__setattr__(self, "duration", rounded / TICKS_PER_QUARTER)

    @property
    def ticks(self) -> int:
        """Duration in ticks (1/12 quarter note)."""
        return round(self.duration * TICKS_PER_QUARTER)

    @property
    def is_rest(self) -> bool:
        """Whether this is a rest."""
        return self.pitch is None


@dataclass(frozen=True)
class Melody:
    """A monophonic melody: notes and rests grouped into bars.

    Parameters
    ----------
    notes : tuple of Note
        The notes and rests in order. Ties are not represented: a note tied over a bar
        line is two notes of the same pitch, one in each bar.
    meter : str or None
        Time signature such as ``"6/8"``; ``None`` when unknown (e.g. a generated
        sequence decoded without a prompt).
    bars : tuple of int
        Bar-line positions as indices into ``notes``: ``bars[i]`` is the index of the
        first note of bar ``i``. ``bars[0] == 0`` whenever there are notes; strictly
        increasing. The first bar may be a pickup (shorter than a full bar).

    Raises
    ------
    ValueError
        If ``bars`` is not a valid list of start indices.

    Examples
    --------
    >>> m = Melody((Note(67, 1.0), Note(72, 2.0), Note(None, 1.0)), "3/4", (0, 1))
    >>> [len(b) for b in m.bar_notes()]
    [1, 2]
    """

    notes: tuple[Note, ...]
    meter: str | None
    bars: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "bars", tuple(int(b) for b in self.bars))
        if self.notes and (not self.bars or self.bars[0] != 0):
            raise ValueError(f"Melody.bars must start with 0 when there are notes; got {self.bars}")
        if not self.notes and self.bars:
            raise ValueError(f"Melody.bars must be empty when there are no notes; got {self.bars}")
        for a, b in zip(self.bars, self.bars[1:], strict=False):
            if b <= a:
                raise ValueError(f"Melody.bars must be strictly increasing; got {self.bars}")
        if self.bars and self.bars[-1] >= len(self.notes):
            raise ValueError(
                f"Melody.bars must index notes (0..{len(self.notes) - 1}); got {self.bars}"
            )
        if self.meter is not None:
            meter_ticks(self.meter)

    def bar_notes(self) -> list[tuple[Note, ...]]:
        """The notes of each bar."""
        if not self.bars:
            return []
        ends = (*self.bars[1:], len(self.notes))
        return [self.notes[a:b] for a, b in zip(self.bars, ends, strict=True)]

    def bar_ticks(self) -> list[int]:
        """The length of each bar in ticks."""
        return [sum(n.ticks for n in bar) for bar in self.bar_notes()]

    @property
    def total_duration(self) -> float:
        """Total length in quarter notes."""
        return sum(n.ticks for n in self.notes) / TICKS_PER_QUARTER

    @property
    def pitches(self) -> list[int]:
        """MIDI pitches of the notes (rests left out)."""
        return [n.pitch for n in self.notes if n.pitch is not None]

    def has_pickup(self, meter: str | None = None) -> bool:
        """Whether the first bar is shorter than a full bar of ``meter`` (default: own)."""
        meter = meter or self.meter
        if meter is None or not self.bars:
            return False
        return self.bar_ticks()[0] < meter_ticks(meter)

    def num_bars(self, meter: str | None = None) -> int:
        """Number of bars, a pickup bar not counted (the count :func:`length_bucket` uses)."""
        return len(self.bars) - int(self.has_pickup(meter))

    def fits_meter(self, meter: str | None = None) -> bool:
        """Whether the melody is well-formed in ``meter`` (default: its own meter).

        Well-formed means: at least one pitched note; every bar except the first and
        the last is exactly one full bar; the first (pickup) and the last bar are no
        longer than a full bar. A melody with no meter never fits.
        """
        meter = meter or self.meter
        if meter is None or not self.pitches:
            return False
        full = meter_ticks(meter)
        ticks = self.bar_ticks()
        if any(t != full for t in ticks[1:-1]):
            return False
        return ticks[0] <= full and ticks[-1] <= full

    def transposed(self, semitones: int) -> Melody:
        """The melody moved by ``semitones`` (rests unchanged).

        Raises
        ------
        ValueError
            If a pitch would leave the MIDI range 0–127.
        """
        notes = tuple(
            n if n.pitch is None else Note(n.pitch + semitones, n.duration) for n in self.notes
        )
        return Melody(notes, self.meter, self.bars)

    def with_meter(self, meter: str | None) -> Melody:
        """The same notes and bars with another meter label."""
        return Melody(self.notes, meter, self.bars)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"meter", "bars", "notes": [[pitch|null, ticks], ...]}``."""
        return {
            "meter": self.meter,
            "bars": list(self.bars),
            "notes": [[n.pitch, n.ticks] for n in self.notes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Melody:
        """Inverse of :meth:`to_dict`."""
        notes = tuple(Note(p, t / TICKS_PER_QUARTER) for p, t in data["notes"])
        return cls(notes, data["meter"], tuple(data["bars"]))


@dataclass(frozen=True)
class Prompt:
    """The conditioning tags of a melody; any tag may be unspecified (``None``).

    Parameters
    ----------
    key : str or None
        Tonic, one of :data:`TONICS` (music21 spelling, ``'-'`` = flat). Other
        spellings are canonicalised (``"Gb"`` -> ``"F#"``).
    mode : str or None
        ``"major"`` or ``"minor"`` (church modes mapped by their third).
    meter : str or None
        One of :data:`METERS`.
    collection : str or None
        One of :data:`COLLECTIONS`.
    length : str or None
        One of :data:`LENGTHS`.

    Raises
    ------
    ValueError
        If a tag has a value outside its vocabulary; the message names the tag and the
        allowed values.

    Examples
    --------
    >>> p = Prompt.parse("G major, 6/8")
    >>> p.key, p.mode, p.meter
    ('G', 'major', '6/8')
    >>> str(p)
    'G major, 6/8'
    """

    key: str | None = None
    mode: str | None = None
    meter: str | None = None
    collection: str | None = None
    length: str | None = None

    def __post_init__(self) -> None:
        if self.key is not None:
            try:
                object.__setattr__(self, "key", canonical_tonic(self.key))
            except ValueError:
                raise ValueError(
                    f"Prompt.key must be one of {list(TONICS)} (or an enharmonic spelling); "
                    f"got {self.key!r}"
                ) from None
        if self.mode is not None:
            try:
                object.__setattr__(self, "mode", canonical_mode(self.mode))
            except ValueError:
                raise ValueError(
                    f"Prompt.mode must be one of {list(MODES)}; got {self.mode!r}"
                ) from None
        for name, allowed in (
            ("meter", METERS),
            ("collection", COLLECTIONS),
            ("length", LENGTHS),
        ):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"Prompt.{name} must be one of {list(allowed)}; got {value!r}")

    @property
    def tonic(self) -> str | None:
        """Alias of :attr:`key` (the key's tonic)."""
        return self.key

    def transposed(self, semitones: int) -> Prompt:
        """The prompt with its tonic moved by ``semitones`` (other tags unchanged)."""
        if self.key is None:
            return self
        pc = TONICS.index(self.key)
        return dataclasses.replace(self, key=TONICS[(pc + semitones) % 12])

    def tags(self) -> dict[str, str | None]:
        """The tags as a dict in the fixed order key, mode, meter, collection, length."""
        return {name: getattr(self, name) for name in _TAG_FIELDS}

    def __str__(self) -> str:
        parts: list[str] = []
        if self.key is not None and self.mode is not None:
            parts.append(f"{self.key} {self.mode}")
        elif self.key is not None:
            parts.append(self.key)
        elif self.mode is not None:
            parts.append(self.mode)
        parts.extend(v for v in (self.meter, self.collection, self.length) if v is not None)
        return ", ".join(parts)

    @classmethod
    def parse(cls, text: str) -> Prompt:
        """Parse a prompt such as ``"G major, 6/8, essen:germany, short"``.

        The text is a comma-separated list of tags in any order; each tag may appear
        once. A tag is one of: ``"<tonic> <mode>"`` (``"F# minor"``), a tonic alone
        (``"Bb"``), a mode alone (``"minor"``), a meter (``"6/8"``), a collection
        (``"bach"``) or a length (``"short"``). Unspecified tags stay ``None``;
        ``Prompt.parse(str(p)) == p`` for every prompt ``p``.

        Parameters
        ----------
        text : str
            The prompt text. Case-insensitive except that the tonic letter decides the
            note (``"bb"`` is B flat).

        Returns
        -------
        Prompt

        Raises
        ------
        TypeError
            If ``text`` is not a string.
        ValueError
            If a part is not a known tag value (the message lists the allowed values),
            or the same tag is given twice.

        Examples
        --------
        >>> Prompt.parse("bach, minor")
        Prompt(key=None, mode='minor', meter=None, collection='bach', length=None)
        """
        if not isinstance(text, str):
            raise TypeError(f"prompt text must be a str; got {type(text).__name__}")
        values: dict[str, str] = {}

        def put(name: str, value: str, part: str) -> None:
            if name in values:
                raise ValueError(
                    f"prompt {text!r} gives the {name} twice ({values[name]!r} and {part!r})"
                )
            values[name] = value

        for raw in text.split(","):
            part = raw.strip()
            if not part:
                continue
            low = part.lower()
            words = part.split()
            if low in _MODE_MAP:
                put("mode", canonical_mode(low), part)
            elif part in METERS:
                put("meter", part, part)
            elif low in COLLECTIONS:
                put("collection", low, part)
            elif low in LENGTHS:
                put("length", low, part)
            elif len(words) == 2 and _is_tonic(words[0]) and words[1].lower() in _MODE_MAP:
                put("key", canonical_tonic(words[0]), part)
                put("mode", canonical_mode(words[1]), part)
            elif len(words) == 1 and _is_tonic(words[0]):
                put("key", canonical_tonic(words[0]), part)
            else:
                raise ValueError(
                    f"unknown prompt tag {part!r} in {text!r}; allowed: "
                    f"key one of {list(TONICS)} (optionally followed by a mode), "
                    f"mode one of {list(MODES)}, meter one of {list(METERS)}, "
                    f"collection one of {list(COLLECTIONS)}, length one of {list(LENGTHS)}"
                )
        return cls(**values)

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form (same as :meth:`tags`)."""
        return self.tags()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prompt:
        """Inverse of :meth:`to_dict`."""
        return cls(**{name: data.get(name) for name in _TAG_FIELDS})


def _is_tonic(word: str) -> bool:
    try:
        canonical_tonic(word)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Piece:
    """A corpus melody with its prompt.

    Parameters
    ----------
    id : str
        Stable identifier, e.g. ``"essenFolksong/han1.abc#3"`` (file and ABC tune
        number ``X:``) or ``"bach/bwv269.mxl"``.
    prompt : Prompt
        The tags read from the piece (all specified for corpus pieces).
    melody : Melody
        The melody.
    """

    id: str
    prompt: Prompt
    melody: Melody

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "prompt": self.prompt.to_dict(), "melody": self.melody.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Piece:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(data["id"]), Prompt.from_dict(data["prompt"]), Melody.from_dict(data["melody"])
        )


# --------------------------------------------------------------------------- loading


def default_cache_dir() -> Path:
    """``$MUSICRL_CACHE_DIR`` if set, else ``~/.cache/musicrl``."""
    env = os.environ.get("MUSICRL_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "musicrl"


def load_corpus(
    collections: Sequence[str] = ("essenFolksong", "bach"),
    subset: int | None = None,
    cache_dir: Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[Piece]:
    """Parse melodies with their tags from the corpus shipped inside ``music21``.

    Candidates are every Essen tune (one per ``X:`` field of the ABC files listed in
    :data:`ESSEN_FILE_COLLECTIONS`) and every Bach chorale MusicXML file. With a
    ``subset``, the candidates are shuffled with ``seed`` and parsed in that order until
    ``subset`` pieces were accepted (pieces that fail are skipped, so the result has
    exactly ``min(subset, accepted)`` pieces); without one, all are parsed (slow:
    ~9,000 tunes). The result is sorted by id.

    Extraction rules (details and measured skip counts in ``docs/musicrl/generator.md``):
    Bach: the soprano part (the part named Soprano, else the first). Key: a mode stated
    in the file (ABC ``K:Dm``, MusicXML ``<mode>``) is used as is; a bare key signature
    (Essen's ``K:G``) fixes the pitch collection, and music21's Krumhansl–Schmuckler
    analysis chooses between its major and relative minor; no signature: the analysis
    alone. Meter: the single time signature (pieces with meter changes or a meter not in
    :data:`METERS` are skipped). Pickups are kept (first bar shorter); every other bar
    but the last must be full, else the piece is skipped. Grace notes are dropped;
    chords keep their top note; ties are not kept (see :class:`Melody`). Durations off
    :data:`DURATION_TICKS` and pitches outside MIDI 48–84 are skipped.

    Parameters
    ----------
    collections : sequence of str
        music21 corpus collections to read, from :data:`CORPUS_COLLECTIONS`.
    subset : int or None
        Number of pieces wanted (> 0), or ``None`` for all.
    cache_dir : Path or None
        Folder for the JSON cache (default :func:`default_cache_dir`). The cache file
        name is a hash of the arguments, the music21 version and :data:`PARSER_VERSION`;
        it is written atomically.
    seed : int
        Seed of the candidate shuffle.
    progress : bool
        Show a tqdm progress bar while parsing.

    Returns
    -------
    list of Piece

    Raises
    ------
    ValueError
        If a collection is unknown, ``subset`` is not positive, or no piece was accepted.

    Examples
    --------
    >>> pieces = load_corpus(subset=20, progress=False)  # doctest: +SKIP
    >>> pieces[0].prompt  # doctest: +SKIP
    Prompt(key='G', mode='major', meter='2/4', collection='essen:germany', length='short')
    """
    collections = tuple(collections)
    if not collections:
        raise ValueError(f"collections must name at least one of {list(CORPUS_COLLECTIONS)}")
    for c in collections:
        if c not in CORPUS_COLLECTIONS:
            raise ValueError(
                f"collections must be drawn from {list(CORPUS_COLLECTIONS)}; got {c!r}"
            )
    if subset is not None:
        if isinstance(subset, bool) or not isinstance(subset, int):
            raise TypeError(f"subset must be an int or None; got {subset!r}")
        if subset <= 0:
            raise ValueError(f"subset must be a positive number of pieces or None; got {subset}")

    from musicrl import _m21

    version = _m21.music21_version()
    key_fields = {
        "collections": sorted(set(collections)),
        "subset": subset,
        "seed": int(seed),
        "music21": version,
        "parser": PARSER_VERSION,
    }
    digest = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = cache_root / f"corpus-{digest}.json"
    if cache_file.is_file():
        try:
            data = json.loads(cache_file.read_text(encoding="utf-8"))
            pieces = [Piece.from_dict(d) for d in data["pieces"]]
        except (ValueError, KeyError, TypeError) as err:
            logger.warning("ignoring unreadable corpus cache %s: %s", cache_file, err)
        else:
            logger.info("loaded %d pieces from cache %s", len(pieces), cache_file)
            if not pieces:
                raise ValueError(f"the corpus subset is empty (cache {cache_file})")
            return pieces

    candidates = _m21.list_candidates(sorted(set(collections)))
    rng = random.Random(seed)
    if subset is not None:
        rng.shuffle(candidates)
    pieces = []
    skipped: dict[str, int] = {}
    start = time.perf_counter()
    n_parsed = 0
    bar = _progress_bar(progress, subset if subset is not None else len(candidates))
    try:
        for cand in candidates:
            if subset is not None and len(pieces) >= subset:
                break
            n_parsed += 1
            try:
                pieces.append(_m21.parse_candidate(cand))
            except _m21.SkipPiece as skip:
                skipped[skip.reason] = skipped.get(skip.reason, 0) + 1
                logger.debug("skipped %s: %s", cand.id, skip)
            except Exception as err:  # music21 raises many exception types on odd input
                skipped["parse error"] = skipped.get("parse error", 0) + 1
                logger.warning("failed to parse %s: %s: %s", cand.id, type(err).__name__, err)
            if bar is not None:
                bar.n = len(pieces) if subset is not None else n_parsed
                bar.set_postfix(skipped=sum(skipped.values()), refresh=False)
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - start
    logger.info(
        "parsed %d candidates in %.1f s (%.1f ms each): %d accepted, skipped %s",
        n_parsed,
        elapsed,
        1000 * elapsed / max(n_parsed, 1),
        len(pieces),
        skipped or "none",
    )
    if not pieces:
        raise ValueError(
            f"the corpus subset is empty: none of {n_parsed} parsed candidates from "
            f"{list(collections)} was accepted (skipped: {skipped})"
        )
    pieces.sort(key=lambda p: p.id)
    payload = {
        "key": key_fields,
        "stats": {
            "parsed": n_parsed,
            "accepted": len(pieces),
            "skipped": skipped,
            "seconds": elapsed,
        },
        "pieces": [p.to_dict() for p in pieces],
    }
    try:
        atomic_write_text(cache_file, json.dumps(payload))
    except OSError as err:
        logger.warning("could not write corpus cache %s: %s", cache_file, err)
    return pieces


def _progress_bar(progress: bool, total: int) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="parsing corpus", unit="piece")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


__all__ = [
    "COLLECTIONS",
    "CORPUS_COLLECTIONS",
    "DURATION_TICKS",
    "KEY_PROFILES",
    "LENGTHS",
    "METERS",
    "MODES",
    "TICKS_PER_QUARTER",
    "TONICS",
    "Melody",
    "Note",
    "Piece",
    "Prompt",
    "canonical_mode",
    "canonical_tonic",
    "estimate_key",
    "key_correlations",
    "length_bucket",
    "load_corpus",
    "meter_ticks",
]
