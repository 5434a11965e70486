"""Tests of the data model, the prompt grammar, key finding and the corpus loader."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from musicrl import _m21
from musicrl.corpus import (
    COLLECTIONS,
    LENGTHS,
    METERS,
    MODES,
    TONICS,
    Melody,
    Note,
    Piece,
    Prompt,
    canonical_tonic,
    estimate_key,
    key_correlations,
    length_bucket,
    load_corpus,
    meter_ticks,
)

# music21's parsers emit these on some corpus files; they are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ----------------------------------------------------------------------- Prompt


def test_prompt_parse_partial_and_str() -> None:
    p = Prompt.parse("G major, 6/8")
    assert p == Prompt(key="G", mode="major", meter="6/8")
    assert p.collection is None
    assert p.length is None
    assert str(p) == "G major, 6/8"
    assert Prompt.parse("") == Prompt()
    assert str(Prompt()) == ""


def test_prompt_round_trip_over_the_tag_grid() -> None:
    # Every tag value, each combined with a rotating choice of the others and with
    # unspecified tags: parse(str(p)) must give p back.
    keys = [*TONICS, None]
    modes = [*MODES, None]
    meters = [*METERS, None]
    colls = [*COLLECTIONS, None]
    lengths = [*LENGTHS, None]
    n = 0
    for i, (k, m) in enumerate(itertools.product(keys, modes)):
        p = Prompt(
            key=k,
            mode=m,
            meter=meters[i % len(meters)],
            collection=colls[i % len(colls)],
            length=lengths[i % len(lengths)],
        )
        assert Prompt.parse(str(p)) == p, str(p)
        n += 1
    assert n == 13 * 3


def test_prompt_enharmonic_and_case() -> None:
    assert Prompt.parse("Gb minor").key == "F#"
    assert Prompt.parse("bb, MAJOR").key == "B-"
    assert Prompt.parse("B-").key == "B-"
    assert Prompt.parse("D dorian").mode == "minor"  # church modes map by their third
    assert canonical_tonic("Db") == "C#"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("G major, 5/8", "'5/8'"),
        ("H major", "'H major'"),
        ("G major, jazz", "'jazz'"),
        ("G major, A minor", "twice"),
        ("short, long", "twice"),
    ],
)
def test_prompt_parse_errors_name_the_tag(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        Prompt.parse(text)
    if "twice" not in fragment:
        msg = str(info.value)
        assert "meter one of" in msg
        assert "6/8" in msg
        assert "collection one of" in msg


def test_prompt_constructor_validates() -> None:
    with pytest.raises(ValueError, match=r"Prompt.meter must be one of"):
        Prompt(meter="5/8")
    with pytest.raises(ValueError, match=r"Prompt.collection"):
        Prompt(collection="mozart")
    with pytest.raises(TypeError):
        Prompt.parse(3)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- Note / Melody


def test_note_grid() -> None:
    assert Note(60, 1 / 3) == Note(60, 4 / 12)
    assert Note(60, 0.25).ticks == 3
    with pytest.raises(ValueError, match="1/12"):
        Note(60, 0.125)  # a 32nd note is off the 1/12 grid
    with pytest.raises(ValueError, match="positive"):
        Note(60, 0.0)
    with pytest.raises(ValueError, match=r"0\.\.127"):
        Note(128, 1.0)


def test_meter_ticks_hand_values() -> None:
    # bar length in 1/12-quarter ticks = numerator * 4/denominator * 12
    assert meter_ticks("4/4") == 48
    assert meter_ticks("6/8") == 36
    assert meter_ticks("3/2") == 72
    with pytest.raises(ValueError):
        meter_ticks("3/5")


def test_melody_bars_pickup_and_fit() -> None:
    # 3/4 with a one-beat pickup, one full bar, and a two-beat last bar.
    notes = (Note(67, 1.0), Note(72, 1.0), Note(None, 1.0), Note(71, 1.0), Note(72, 2.0))
    m = Melody(notes, "3/4", (0, 1, 4))
    assert m.bar_ticks() == [12, 36, 24]
    assert m.has_pickup()
    assert m.num_bars() == 2
    assert m.fits_meter()
    assert not m.fits_meter("4/4")  # the middle bar is 3 beats, not 4
    overfull = Melody((Note(60, 4.0), Note(62, 4.0)), "3/4", (0, 1))
    assert not overfull.fits_meter()
    assert not Melody((Note(None, 3.0),), "3/4", (0,)).fits_meter()  # rests only
    with pytest.raises(ValueError, match="start with 0"):
        Melody(notes, "3/4", (1, 2))
    with pytest.raises(ValueError, match="increasing"):
        Melody(notes, "3/4", (0, 2, 2))
    assert Melody.from_dict(m.to_dict()) == m


def test_length_bucket_thresholds() -> None:
    assert [length_bucket(n) for n in (1, 8, 9, 16, 17, 40)] == [
        "short",
        "short",
        "medium",
        "medium",
        "long",
        "long",
    ]


# ----------------------------------------------------------------------- key finding


def test_key_correlations_match_music21_krumhansl() -> None:
    # Oracle: music21's Krumhansl-Schmuckler analysis with the same (Krumhansl-Kessler)
    # profiles reports the same 24 correlation coefficients.
    from music21 import note, stream

    pitches = [62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62, 67, 71, 74]
    durs = [1.0, 0.5, 0.5, 1.0, 2.0, 0.5, 0.5, 1.0, 1.0, 1.0, 2.0, 0.5, 0.5, 3.0]
    s = stream.Stream()
    for p, d in zip(pitches, durs, strict=True):
        s.append(note.Note(p, quarterLength=d))
    k = s.analyze("key.krumhansl")
    ours = key_correlations(pitches, durs, "krumhansl-kessler")
    for cand in [k, *k.alternateInterpretations]:
        row = 0 if cand.mode == "major" else 1
        assert ours[row, cand.tonic.pitchClass] == pytest.approx(cand.correlationCoefficient)
    assert np.unravel_index(np.argmax(ours), ours.shape) == (0, 2)  # D major


def test_estimate_key_with_and_without_signature() -> None:
    c_major = Melody(tuple(Note(p, 1.0) for p in (60, 62, 64, 65, 67, 69, 71, 72)), "4/4", (0, 4))
    assert estimate_key(c_major) == ("C", "major")
    assert estimate_key(c_major, sharps=0) == ("C", "major")
    # A-minor arpeggio on a bare (no accidentals) signature: the relative minor wins.
    a_minor = Melody((Note(57, 1.0), Note(60, 1.0), Note(64, 1.0), Note(57, 3.0)), "3/4", (0, 3))
    assert estimate_key(a_minor, sharps=0) == ("A", "minor")
    # With three flats only E-flat major or C minor are possible.
    assert estimate_key(a_minor, sharps=-3)[0] in ("E-", "C")
    with pytest.raises(ValueError, match="sharps"):
        estimate_key(c_major, sharps=8)


# ----------------------------------------------------------------------- loader


def test_load_corpus_bach_and_essen_with_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bach = load_corpus(("bach",), subset=2, cache_dir=tmp_path, progress=False)
    essen = load_corpus(("essenFolksong",), subset=4, cache_dir=tmp_path, progress=False)
    assert len(bach) == 2
    assert len(essen) == 4
    for piece in bach + essen:
        assert isinstance(piece, Piece)
        tags = piece.prompt.tags()
        assert None not in tags.values(), piece.id  # corpus pieces have every tag
        assert piece.melody.fits_meter(), piece.id
        assert piece.prompt.meter == piece.melody.meter
        assert piece.prompt.length == length_bucket(piece.melody.num_bars())
    assert {p.prompt.collection for p in bach} == {"bach"}
    assert all(p.prompt.collection.startswith("essen:") for p in essen)  # type: ignore[union-attr]
    files = sorted(tmp_path.glob("corpus-*.json"))
    assert len(files) == 2
    assert json.loads(files[0].read_text())["pieces"]
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind

    # Second call: served from the cache, the parser is not touched.
    def boom(cand: object) -> Piece:
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(_m21, "parse_candidate", boom)
    again = load_corpus(("essenFolksong",), subset=4, cache_dir=tmp_path, progress=False)
    assert again == essen


def test_load_corpus_same_seed_same_subset(tmp_path: Path) -> None:
    a = load_corpus(("essenFolksong",), subset=2, seed=3, cache_dir=tmp_path / "a", progress=False)
    b = load_corpus(("essenFolksong",), subset=2, seed=3, cache_dir=tmp_path / "b", progress=False)
    assert [p.id for p in a] == [p.id for p in b]


def test_load_corpus_empty_subset_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def skip(cand: object) -> Piece:
        raise _m21.SkipPiece("meter change")

    monkeypatch.setattr(_m21, "parse_candidate", skip)
    with pytest.raises(ValueError, match="empty"):
        load_corpus(("bach",), subset=3, cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("corpus-*.json"))  # nothing cached for a failed load


def test_load_corpus_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="subset"):
        load_corpus(subset=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="'mozart'"):
        load_corpus(("mozart",), cache_dir=tmp_path)
    with pytest.raises(TypeError, match="subset"):
        load_corpus(subset=2.5, cache_dir=tmp_path)  # type: ignore[arg-type]


def test_transposition_moves_pitches_and_key() -> None:
    m = Melody((Note(67, 1.0), Note(None, 1.0), Note(71, 1.0)), "3/4", (0,))
    up = m.transposed(3)
    assert [n.pitch for n in up.notes] == [70, None, 74]
    assert up.bars == m.bars
    assert up.meter == m.meter
    # G + 3 semitones = B-flat; B + 2 = C# (wraps around the octave).
    assert Prompt.parse("G major, 3/4").transposed(3) == Prompt.parse("Bb major, 3/4")
    assert Prompt(key="B").transposed(2).key == "C#"
    assert Prompt(mode="minor").transposed(5) == Prompt(mode="minor")
    with pytest.raises(ValueError):
        m.transposed(100)
