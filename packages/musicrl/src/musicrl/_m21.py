"""music21-specific parsing behind :func:`musicrl.corpus.load_corpus` (private).

Every rule here is described in ``docs/musicrl/generator.md``; a piece that breaks one
raises :class:`SkipPiece` with a short reason that the loader counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from musicrl.corpus import (
    DURATION_TICKS,
    ESSEN_FILE_COLLECTIONS,
    METERS,
    TICKS_PER_QUARTER,
    Melody,
    Note,
    Piece,
    Prompt,
    canonical_mode,
    canonical_tonic,
    estimate_key,
    length_bucket,
    meter_ticks,
)
from musicrl.tokenizer import DEFAULT_MAX_PITCH, DEFAULT_MIN_PITCH

#: Pitch range the loader accepts (MIDI, inclusive): the tokenizer's default range.
MIN_PITCH = DEFAULT_MIN_PITCH
MAX_PITCH = DEFAULT_MAX_PITCH

_DURATIONS = frozenset(DURATION_TICKS)
_BARE_SIGNATURE = re.compile(r"^[A-Ha-h][b#]?$")


class SkipPiece(Exception):
    """A corpus piece that the extraction rules do not accept (reason in ``.reason``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Candidate:
    """One parseable unit: an ABC tune (text) or a MusicXML file."""

    id: str
    kind: str  # "abc" or "xml"
    path: Path
    collection: str
    text: str = ""


def music21_version() -> str:
    """The installed music21 version string."""
    import music21

    return str(music21.__version__)


def corpus_root() -> Path:
    """The folder of the corpus inside the installed music21 package."""
    import music21

    return Path(music21.__file__).parent / "corpus"


def _essen_collection(stem: str) -> str | None:
    family = re.sub(r"\d+$", "", stem)
    return ESSEN_FILE_COLLECTIONS.get(family)


def list_candidates(collections: list[str]) -> list[Candidate]:
    """All candidates of the named music21 corpus collections, in a fixed order."""
    root = corpus_root()
    out: list[Candidate] = []
    if "bach" in collections:
        for path in sorted((root / "bach").iterdir()):
            if path.suffix in (".mxl", ".xml"):
                out.append(Candidate(f"bach/{path.name}", "xml", path, "bach"))
    if "essenFolksong" in collections:
        for path in sorted((root / "essenFolksong").glob("*.abc")):
            coll = _essen_collection(path.stem)
            if coll is None:
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
            for tune in re.split(r"\n(?=X:)", text):
                tune = tune.strip()
                match = re.match(r"X:\s*(\d+)", tune)
                if not match:
                    continue
                out.append(
                    Candidate(
                        f"essenFolksong/{path.name}#{match.group(1)}",
                        "abc",
                        path,
                        coll,
                        tune + "\n",
                    )
                )
    return out


def parse_candidate(cand: Candidate) -> Piece:
    """Parse one candidate into a :class:`Piece` or raise :class:`SkipPiece`."""
    from music21 import converter

    if cand.kind == "abc":
        score = converter.parseData(cand.text, format="abc")
        k_field = re.search(r"^K:\s*(.*)$", cand.text, flags=re.MULTILINE)
        explicit_mode = bool(k_field) and not _BARE_SIGNATURE.match(
            k_field.group(1).strip() if k_field else ""
        )
    else:
        score = converter.parse(cand.path)
        explicit_mode = True  # MusicXML <key> carries <mode> when music21 builds a Key
    part = _melody_part(score)
    melody = part_to_melody(part)
    key, mode = _key_of(part, melody, explicit_mode)
    prompt = Prompt(
        key=key,
        mode=mode,
        meter=melody.meter,
        collection=cand.collection,
        length=length_bucket(melody.num_bars()),
    )
    return Piece(cand.id, prompt, melody)


def _melody_part(score: Any) -> Any:
    from music21 import stream

    parts = list(score.parts) if hasattr(score, "parts") else []
    if not parts:
        if isinstance(score, stream.Part):
            return score
        raise SkipPiece("no part")
    for part in parts:
        names = f"{part.id} {part.partName or ''}".lower()
        if "soprano" in names:
            return part
    return parts[0]


def part_to_melody(part: Any) -> Melody:
    """Convert a monophonic music21 part into a :class:`Melody` (or :class:`SkipPiece`)."""
    from music21 import chord, meter, note, stream

    sigs = {ts.ratioString for ts in part.recurse().getElementsByClass(meter.TimeSignature)}
    if len(sigs) != 1:
        raise SkipPiece("meter change" if sigs else "no meter", str(sorted(sigs)))
    ts = sigs.pop()
    if ts not in METERS:
        raise SkipPiece("meter not supported", ts)
    full = meter_ticks(ts)
    notes: list[Note] = []
    bars: list[int] = []
    bar_lengths: list[int] = []
    for measure in part.getElementsByClass(stream.Measure):
        if measure.getElementsByClass(stream.Voice):
            raise SkipPiece("several voices")
        start = len(notes)
        pos = Fraction(0)
        for el in measure.notesAndRests:
            if el.duration.isGrace:
                continue
            if Fraction(el.offset) != pos:
                raise SkipPiece("gap or overlap", f"measure {measure.number}")
            ql = Fraction(el.quarterLength)
            pos += ql
            ticks = ql * TICKS_PER_QUARTER
            if ticks.denominator != 1 or int(ticks) not in _DURATIONS:
                raise SkipPiece("duration off grid", str(ql))
            if isinstance(el, note.Rest):
                pitch = None
            elif isinstance(el, chord.Chord):
                pitch = max(p.midi for p in el.pitches)
            else:
                pitch = int(el.pitch.midi)
            if pitch is not None and not MIN_PITCH <= pitch <= MAX_PITCH:
                raise SkipPiece("pitch out of range", str(pitch))
            notes.append(Note(pitch, int(ticks) / TICKS_PER_QUARTER))
        if len(notes) > start:
            length = sum(n.ticks for n in notes[start:])
            # A bar split in two by a repeat sign or a phrase-end bar line (music21 gives
            # both halves the same measure number) is merged back into one bar.
            if bar_lengths and bar_lengths[-1] < full and bar_lengths[-1] + length <= full:
                bar_lengths[-1] += length
            else:
                bars.append(start)
                bar_lengths.append(length)
    if not notes or all(n.pitch is None for n in notes):
        raise SkipPiece("no notes")
    if any(t != full for t in bar_lengths[1:-1]) or bar_lengths[0] > full or bar_lengths[-1] > full:
        raise SkipPiece("irregular bar")
    return Melody(tuple(notes), ts, tuple(bars))


def _key_of(part: Any, melody: Melody, explicit_mode: bool) -> tuple[str, str]:
    """Tonic and mode: stated mode, else signature + key finding, else key finding alone."""
    from music21 import key

    sigs = list(part.recurse().getElementsByClass(key.KeySignature))
    if explicit_mode and sigs and isinstance(sigs[0], key.Key):
        k = sigs[0]
        return canonical_tonic(k.tonic.name), canonical_mode(k.mode)
    return estimate_key(melody, int(sigs[0].sharps) if sigs else None)
