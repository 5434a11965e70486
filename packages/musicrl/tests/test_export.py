"""Tests of MIDI/MusicXML export: files read back by music21 give the same notes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from musicrl.corpus import Melody, Note, Prompt, load_corpus
from musicrl.export import melody_to_stream, write_midi, write_musicxml

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def notes_of(score: Any) -> list[tuple[int | None, Fraction]]:
    """(midi or None, quarterLength) of a re-imported file, ties merged, end rests dropped."""
    flat = score.stripTies().flatten().notesAndRests
    out: list[tuple[int | None, Fraction]] = []
    for el in flat:
        pitch = None if el.isRest else int(el.pitch.midi)
        out.append((pitch, Fraction(el.quarterLength).limit_denominator(48)))
    while out and out[-1][0] is None:
        out.pop()
    merged: list[tuple[int | None, Fraction]] = []
    for p, d in out:  # MIDI has no rest objects: adjacent rests come back as one
        if merged and p is None and merged[-1][0] is None:
            merged[-1] = (None, merged[-1][1] + d)
        else:
            merged.append((p, d))
    return merged


def notes_of_melody(melody: Melody) -> list[tuple[int | None, Fraction]]:
    out = [(n.pitch, Fraction(n.ticks, 12)) for n in melody.notes]
    while out and out[-1][0] is None:
        out.pop()
    return out


MELODY = Melody(
    (
        Note(67, 1.0),
        Note(72, 1 / 3),
        Note(71, 1 / 3),
        Note(69, 1 / 3),
        Note(None, 1.0),
        Note(64, 0.75),
        Note(66, 0.25),
        Note(67, 3.0),
    ),
    "3/4",
    (0, 5, 7),
)


def test_midi_round_trip(tmp_path: Path) -> None:
    from music21 import converter

    path = write_midi(MELODY, tmp_path / "tune.mid", Prompt.parse("G major, 3/4"))
    assert path == tmp_path / "tune.mid"
    assert path.stat().st_size > 0
    back = converter.parse(path)
    assert notes_of(back) == notes_of_melody(MELODY)
    assert [p.name for p in tmp_path.iterdir()] == ["tune.mid"]  # no temp files left


def test_musicxml_round_trip_keeps_bars_and_pickup(tmp_path: Path) -> None:
    from music21 import converter, stream

    pickup = Melody((Note(62, 1.0), Note(67, 2.0), Note(71, 1.0), Note(67, 2.0)), "3/4", (0, 1, 3))
    path = write_musicxml(pickup, tmp_path / "tune.musicxml", Prompt.parse("G major, 3/4"))
    back = converter.parse(path)
    assert notes_of(back) == notes_of_melody(pickup)
    measures = back.parts[0].getElementsByClass(stream.Measure)
    assert [len(m.notesAndRests) for m in measures] == [1, 2, 1]
    assert measures[0].paddingLeft == 2.0  # one-beat pickup in 3/4
    key = back.parts[0].recurse().getElementsByClass("Key").first()
    assert key is not None
    assert key.tonic.name == "G"
    assert key.mode == "major"


def test_stream_of_real_piece(tmp_path: Path) -> None:
    from music21 import converter

    piece = load_corpus(("essenFolksong",), subset=1, cache_dir=tmp_path, seed=5, progress=False)[0]
    score = melody_to_stream(piece.melody, piece.prompt)
    assert [n.pitch.midi for n in score.flatten().notes] == piece.melody.pitches
    back = converter.parse(write_midi(piece.melody, tmp_path / "p.mid"))
    assert notes_of(back) == _merge_rests(notes_of_melody(piece.melody))


def _merge_rests(seq: list[tuple[int | None, Fraction]]) -> list[tuple[int | None, Fraction]]:
    out: list[tuple[int | None, Fraction]] = []
    for p, d in seq:
        if out and p is None and out[-1][0] is None:
            out[-1] = (None, out[-1][1] + d)
        else:
            out.append((p, d))
    return out


def test_type_errors() -> None:
    with pytest.raises(TypeError, match="Melody"):
        melody_to_stream("not a melody")  # type: ignore[arg-type]


def test_generated_oddities_still_export(tmp_path: Path) -> None:
    # Sampled melodies may be empty or have overfull bars; export must still work.
    from music21 import converter

    overfull = Melody((Note(60, 4.0), Note(62, 3.0)), "3/4", (0, 1))
    back = converter.parse(write_musicxml(overfull, tmp_path / "o.musicxml"))
    assert notes_of(back) == notes_of_melody(overfull)
    empty = Melody((), None, ())
    write_midi(empty, tmp_path / "e.mid")
    assert (tmp_path / "e.mid").stat().st_size > 0
