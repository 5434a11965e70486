"""Tests of the token vocabulary: exact round trips on real corpus pieces, repairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from musicrl.corpus import Melody, Note, Piece, Prompt, load_corpus
from musicrl.tokenizer import Tokenizer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def real_pieces(tmp_path_factory: pytest.TempPathFactory) -> list[Piece]:
    cache = tmp_path_factory.mktemp("corpus")
    bach = load_corpus(("bach",), subset=3, cache_dir=cache, seed=1, progress=False)
    essen = load_corpus(("essenFolksong",), subset=8, cache_dir=cache, seed=1, progress=False)
    return bach + essen


def test_round_trip_on_real_pieces(real_pieces: list[Piece]) -> None:
    tok = Tokenizer()
    collections = {p.prompt.collection for p in real_pieces}
    assert "bach" in collections
    assert any(c.startswith("essen:") for c in collections if c)
    for piece in real_pieces:
        ids = tok.encode(piece)
        # Layout: BOS, five tag tokens, SEP, melody, EOS.
        assert ids[0] == tok.bos_id
        assert ids[6] == tok.sep_id
        assert ids[-1] == tok.eos_id
        n_notes, n_bars = len(piece.melody.notes), len(piece.melody.bars)
        assert len(ids) == 7 + 2 * n_notes + n_bars + 1
        assert tok.decode_melody(ids) == piece.melody  # meter comes from the prompt
        assert (
            tok.decode_melody(tok.encode_melody(piece.melody), piece.melody.meter) == piece.melody
        )
        assert tok.prompt_of(ids) == piece.prompt
        assert ids[1:6] == tok.encode_prompt(piece.prompt)
        assert tok.decode_melody(torch.tensor(ids)) == piece.melody  # tensors accepted


def test_hand_encoded_example() -> None:
    tok = Tokenizer()
    prompt = Prompt.parse("G major, 3/4")
    melody = Melody((Note(67, 1.0), Note(None, 2.0), Note(71, 3.0)), "3/4", (0, 2))
    strings = tok.token_strings(tok.encode_sequence(prompt, melody))
    assert strings == [
        "<bos>",
        "key:G",
        "mode:major",
        "meter:3/4",
        "collection:unknown",
        "length:unknown",
        "<sep>",
        "bar",
        "pitch:67",
        "dur:12",
        "rest",
        "dur:24",
        "bar",
        "pitch:71",
        "dur:36",
        "<eos>",
    ]


def test_decode_repairs_malformed_sequences() -> None:
    tok = Tokenizer()
    t = tok.token_to_id
    ids = [
        t["pitch:60"],  # notes before any BAR open a bar
        t["dur:12"],
        t["bar"],
        t["bar"],  # empty bar: dropped
        t["dur:12"],  # duration without pitch: dropped
        t["pitch:62"],
        t["pitch:64"],  # pitch without duration (62): dropped, 64 kept
        t["dur:6"],
        t["rest"],
        t["key:G"],  # prompt token inside the melody: breaks the pair, skipped
        t["dur:6"],  # ... so this duration has no pitch: dropped
        t["bar"],
        t["pitch:65"],
        t["dur:24"],
        t["bar"],  # trailing BAR with no notes: dropped
        t["<eos>"],
        t["pitch:67"],  # after EOS: ignored
        t["dur:12"],
    ]
    m = tok.decode_melody(ids, meter="2/4")
    assert m == Melody(
        (Note(60, 1.0), Note(64, 0.5), Note(65, 2.0)),
        "2/4",
        (0, 1, 2),
    )
    assert tok.decode_melody([]) == Melody((), None, ())


def test_json_round_trip_and_tamper(tmp_path: Path) -> None:
    tok = Tokenizer()
    path = tmp_path / "tok.json"
    tok.to_json(path)
    back = Tokenizer.from_json(path)
    assert back == tok
    assert back.vocab == tok.vocab
    assert back.vocab_size == tok.vocab_size
    data = tok.to_dict()
    data["vocab"] = [*data["vocab"][:-1], "dur:999"]
    with pytest.raises(ValueError, match="differs"):
        Tokenizer.from_dict(data)


def test_special_ids_and_vocab_size() -> None:
    tok = Tokenizer()
    # 4 specials + prompt tags (12+1 keys, 2+1 modes, 11+1 meters, 7+1 collections,
    # 3+1 lengths) + BAR + REST + 37 pitches (48..84) + 18 durations.
    assert tok.vocab_size == 4 + 13 + 3 + 12 + 8 + 4 + 2 + 37 + 18
    assert len({tok.pad_id, tok.bos_id, tok.sep_id, tok.eos_id}) == 4
    assert tok.prefix_length == 7


def test_encode_errors() -> None:
    tok = Tokenizer()
    with pytest.raises(ValueError, match="outside the tokenizer's range"):
        tok.encode_melody(Melody((Note(30, 1.0),), "4/4", (0,)))
    with pytest.raises(ValueError, match="duration 1 ticks"):
        tok.encode_melody(Melody((Note(60, 1 / 12),), "4/4", (0,)))
    with pytest.raises(ValueError, match="min_pitch"):
        Tokenizer(min_pitch=90, max_pitch=80)
