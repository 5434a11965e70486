"""Token vocabulary for prompts and melodies.

A piece is encoded as ::

    BOS  key:<tonic> mode:<m> meter:<n/d> collection:<c> length:<l>  SEP  melody  EOS

The prompt is always exactly five tag tokens, one per tag in the fixed order key,
mode, meter, collection, length (``<tag>:unknown`` when a tag is unspecified), so every
conditioning prefix has the same length (:attr:`Tokenizer.prefix_length` = 7) and batches
of prompts need no left padding.

The melody is a sequence of bars; each bar is ``BAR`` followed by (pitch-or-rest,
duration) pairs: ``pitch:<midi>`` (absolute MIDI pitch in ``min_pitch..max_pitch``) or
``rest``, then ``dur:<ticks>`` (ticks of 1/12 quarter note, from
:data:`musicrl.corpus.DURATION_TICKS`). Absolute pitch (not pitch relative to the
tonic) keeps a melody decodable without its prompt; the key tag conditions it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from musicrl.corpus import (
    COLLECTIONS,
    DURATION_TICKS,
    LENGTHS,
    METERS,
    MODES,
    TICKS_PER_QUARTER,
    TONICS,
    Melody,
    Note,
    Piece,
    Prompt,
    atomic_write_text,
)

logger = logging.getLogger(__name__)

PAD, BOS, SEP, EOS = "<pad>", "<bos>", "<sep>", "<eos>"
BAR, REST = "bar", "rest"
UNKNOWN = "unknown"

#: Tag name -> allowed values, in prompt-token order.
PROMPT_TAGS: dict[str, tuple[str, ...]] = {
    "key": TONICS,
    "mode": MODES,
    "meter": METERS,
    "collection": COLLECTIONS,
    "length": LENGTHS,
}

#: Default pitch range of the vocabulary (MIDI, inclusive): C3..C6, the range the corpus
#: loader accepts (the Essen and Bach soprano melodies span MIDI 48–83).
DEFAULT_MIN_PITCH = 48
DEFAULT_MAX_PITCH = 84

_FORMAT = "musicrl-tokenizer"
_FORMAT_VERSION = 1


class Tokenizer:
    """Maps prompts and melodies to token ids and back.

    The vocabulary is fixed by the tag vocabularies of :mod:`musicrl.corpus`, the pitch
    range and the duration set; nothing is fitted on data.

    Parameters
    ----------
    min_pitch, max_pitch : int
        Inclusive MIDI range of the pitch tokens (default 48–84).
    durations : sequence of int
        Allowed durations in ticks (1/12 quarter), default
        :data:`musicrl.corpus.DURATION_TICKS`.

    Raises
    ------
    ValueError
        If the pitch range is empty or outside 0–127, or a duration is not positive.

    Examples
    --------
    >>> from musicrl.corpus import Melody, Note, Prompt
    >>> tok = Tokenizer()
    >>> m = Melody((Note(67, 1.0), Note(69, 2.0)), "3/4", (0,))
    >>> ids = tok.encode_melody(m)
    >>> [tok.id_to_token[i] for i in ids]
    ['bar', 'pitch:67', 'dur:12', 'pitch:69', 'dur:24']
    >>> tok.decode_melody(ids, meter="3/4") == m
    True
    """

    def __init__(
        self,
        min_pitch: int = DEFAULT_MIN_PITCH,
        max_pitch: int = DEFAULT_MAX_PITCH,
        durations: Sequence[int] = DURATION_TICKS,
    ) -> None:
        if not 0 <= min_pitch <= max_pitch <= 127:
            raise ValueError(
                "min_pitch and max_pitch must satisfy 0 <= min_pitch <= max_pitch <= 127; "
                f"got ({min_pitch}, {max_pitch})"
            )
        durs = tuple(sorted({int(d) for d in durations}))
        if not durs or durs[0] <= 0:
            raise ValueError(f"durations must be positive tick counts; got {list(durations)}")
        self.min_pitch = int(min_pitch)
        self.max_pitch = int(max_pitch)
        self.durations = durs
        tokens = [PAD, BOS, SEP, EOS]
        for tag, values in PROMPT_TAGS.items():
            tokens += [f"{tag}:{v}" for v in values] + [f"{tag}:{UNKNOWN}"]
        tokens += [BAR, REST]
        tokens += [f"pitch:{p}" for p in range(self.min_pitch, self.max_pitch + 1)]
        tokens += [f"dur:{d}" for d in durs]
        self.id_to_token: tuple[str, ...] = tuple(tokens)
        self.token_to_id: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.pad_id = self.token_to_id[PAD]
        self.bos_id = self.token_to_id[BOS]
        self.sep_id = self.token_to_id[SEP]
        self.eos_id = self.token_to_id[EOS]
        self.bar_id = self.token_to_id[BAR]
        self.rest_id = self.token_to_id[REST]
        self._pitch0 = self.token_to_id[f"pitch:{self.min_pitch}"]
        self._dur_ids = {d: self.token_to_id[f"dur:{d}"] for d in durs}
        self._id_dur = {i: d for d, i in self._dur_ids.items()}
        self._tag_of_id: dict[int, tuple[str, str | None]] = {}
        for tag, values in PROMPT_TAGS.items():
            for v in (*values, UNKNOWN):
                self._tag_of_id[self.token_to_id[f"{tag}:{v}"]] = (tag, None if v == UNKNOWN else v)

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        """Number of tokens."""
        return len(self.id_to_token)

    @property
    def vocab(self) -> tuple[str, ...]:
        """The tokens, indexed by id."""
        return self.id_to_token

    @property
    def prefix_length(self) -> int:
        """Length of ``BOS + prompt + SEP`` (always 7)."""
        return 2 + len(PROMPT_TAGS)

    def is_pitch(self, token_id: int) -> bool:
        """Whether ``token_id`` is a pitch token."""
        return self._pitch0 <= token_id <= self._pitch0 + self.max_pitch - self.min_pitch

    def is_duration(self, token_id: int) -> bool:
        """Whether ``token_id`` is a duration token."""
        return token_id in self._id_dur

    def melody_token_ids(self) -> list[int]:
        """Ids of all tokens that may appear in a melody (BAR, REST, pitches, durations)."""
        return [self.bar_id, self.rest_id, *range(self._pitch0, self.vocab_size)]

    # ------------------------------------------------------------------ encoding
    def encode_prompt(self, prompt: Prompt) -> list[int]:
        """The five tag tokens of ``prompt`` (no BOS/SEP; see :meth:`encode_prefix`)."""
        if not isinstance(prompt, Prompt):
            raise TypeError(f"prompt must be a Prompt; got {type(prompt).__name__}")
        return [
            self.token_to_id[f"{tag}:{UNKNOWN if value is None else value}"]
            for tag, value in prompt.tags().items()
        ]

    def encode_prefix(self, prompt: Prompt) -> list[int]:
        """``BOS + encode_prompt(prompt) + SEP``: the conditioning prefix for sampling."""
        return [self.bos_id, *self.encode_prompt(prompt), self.sep_id]

    def encode_melody(self, melody: Melody) -> list[int]:
        """Melody tokens: per bar ``BAR`` then (pitch|REST, duration) per note; no EOS.

        Raises
        ------
        ValueError
            If a pitch is outside the vocabulary's range or a duration is not one of
            :attr:`durations`.
        """
        if not isinstance(melody, Melody):
            raise TypeError(f"melody must be a Melody; got {type(melody).__name__}")
        out: list[int] = []
        starts = set(melody.bars)
        for i, note in enumerate(melody.notes):
            if i in starts:
                out.append(self.bar_id)
            if note.pitch is None:
                out.append(self.rest_id)
            else:
                if not self.min_pitch <= note.pitch <= self.max_pitch:
                    raise ValueError(
                        f"note {i} has pitch {note.pitch}, outside the tokenizer's range "
                        f"{self.min_pitch}..{self.max_pitch}"
                    )
                out.append(self._pitch0 + note.pitch - self.min_pitch)
            if note.ticks not in self._dur_ids:
                raise ValueError(
                    f"note {i} has duration {note.ticks} ticks, not one of {list(self.durations)}"
                )
            out.append(self._dur_ids[note.ticks])
        return out

    def encode_sequence(self, prompt: Prompt, melody: Melody) -> list[int]:
        """``BOS + prompt + SEP + melody + EOS`` for any prompt/melody pair."""
        return [*self.encode_prefix(prompt), *self.encode_melody(melody), self.eos_id]

    def encode(self, piece: Piece) -> list[int]:
        """``BOS + prompt + SEP + melody + EOS`` for a corpus piece."""
        if not isinstance(piece, Piece):
            raise TypeError(f"piece must be a Piece; got {type(piece).__name__}")
        return self.encode_sequence(piece.prompt, piece.melody)

    # ------------------------------------------------------------------ decoding
    def prompt_of(self, ids: Sequence[int]) -> Prompt:
        """The prompt encoded in a sequence (tag tokens between BOS and the first SEP).

        A tag whose token is missing or ``unknown`` is ``None``. Tokens before SEP that
        are not tag tokens are ignored.
        """
        values: dict[str, str | None] = {}
        for i in _as_list(ids):
            if i == self.sep_id:
                break
            if i in self._tag_of_id:
                tag, value = self._tag_of_id[i]
                values.setdefault(tag, value)
        return Prompt(**values)

    def decode_melody(self, ids: Sequence[int], meter: str | None = None) -> Melody:
        """Decode melody tokens, repairing malformed generated sequences.

        ``ids`` may be a full sequence (decoding starts after the first SEP, and the
        meter comes from its prompt unless ``meter`` is given) or melody tokens alone.
        Decoding stops at the first EOS or PAD. Repairs: a pitch/rest not followed by a
        duration is dropped; a duration without a pitch/rest is dropped; prompt or other
        special tokens inside the melody are skipped; a bar with no notes (repeated BAR,
        trailing BAR) is dropped; notes before the first BAR open a bar. For
        well-formed input ``decode_melody(encode_melody(m), m.meter) == m``.

        Parameters
        ----------
        ids : sequence of int
            Token ids (a list, tuple or 1-D tensor).
        meter : str or None
            Meter of the result; default: the prompt's meter if ``ids`` holds one.

        Returns
        -------
        Melody
        """
        seq = _as_list(ids)
        if self.sep_id in seq:
            if meter is None:
                meter = self.prompt_of(seq).meter
            seq = seq[seq.index(self.sep_id) + 1 :]
        notes: list[Note] = []
        bars: list[int] = []
        pending: int | None = None  # pitch id or rest id awaiting a duration
        new_bar = True
        for i in seq:
            if i in (self.eos_id, self.pad_id):
                break
            if i == self.bar_id:
                pending = None
                new_bar = True
            elif i == self.rest_id or self.is_pitch(i):
                pending = i
            elif i in self._id_dur:
                if pending is None:
                    continue
                pitch = None if pending == self.rest_id else pending - self._pitch0 + self.min_pitch
                if new_bar:
                    bars.append(len(notes))
                    new_bar = False
                notes.append(Note(pitch, self._id_dur[i] / TICKS_PER_QUARTER))
                pending = None
            else:
                pending = None  # a stray special/prompt token breaks a pair
        return Melody(tuple(notes), meter, tuple(bars))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """The token strings of ``ids`` (for debugging and logs)."""
        return [self.id_to_token[i] for i in _as_list(ids)]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (parameters and the full vocabulary)."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "min_pitch": self.min_pitch,
            "max_pitch": self.max_pitch,
            "durations": list(self.durations),
            "vocab": list(self.id_to_token),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        """Rebuild from :meth:`to_dict`, checking that the vocabulary is identical.

        Raises
        ------
        ValueError
            If the data is not a musicrl tokenizer (not an object, a field missing or
            invalid) or its vocabulary differs from the one this version of musicrl builds
            from the same parameters.
        """
        if not isinstance(data, dict):
            raise ValueError(
                "not a musicrl tokenizer description: expected a JSON object with 'format', "
                f"'min_pitch', 'max_pitch', 'durations' and 'vocab'; got {type(data).__name__}"
            )
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a musicrl tokenizer description (format={data.get('format')!r})")
        for key in ("min_pitch", "max_pitch", "durations", "vocab"):
            if key not in data:
                raise ValueError(f"musicrl tokenizer description: field {key!r} is missing")
        if not isinstance(data["vocab"], list):
            raise ValueError(
                "musicrl tokenizer description: field 'vocab' must be a list; "
                f"got {data['vocab']!r}"
            )
        try:
            tok = cls(int(data["min_pitch"]), int(data["max_pitch"]), data["durations"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"musicrl tokenizer description: invalid parameters: {err}") from None
        if list(tok.id_to_token) != list(data["vocab"]):
            raise ValueError(
                "tokenizer vocabulary in the file differs from the one this musicrl version "
                "builds (tag vocabularies changed?); retrain or use the matching version"
            )
        return tok

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` atomically."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_json(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer written by :meth:`to_json`.

        Raises
        ------
        ValueError
            If the file is not valid JSON or not a musicrl tokenizer (the message names
            the file).
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise ValueError(f"{p} is not UTF-8 text ({err.reason} at byte {err.start})") from None
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{p} is not valid JSON ({err}); expected a musicrl tokenizer description"
            ) from None
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{p}: {err}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.id_to_token == other.id_to_token

    def __hash__(self) -> int:
        return hash(self.id_to_token)

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, pitches={self.min_pitch}..{self.max_pitch}, "
            f"durations={list(self.durations)})"
        )


def _as_list(ids: Sequence[int] | Any) -> list[int]:
    if hasattr(ids, "tolist"):
        out = ids.tolist()
        if out and isinstance(out[0], list):
            raise ValueError("expected a 1-D sequence of token ids; got a 2-D tensor/array")
        return [int(i) for i in out]
    return [int(i) for i in ids]
