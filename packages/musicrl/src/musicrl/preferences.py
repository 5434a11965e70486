"""The preference store: pairwise records in JSONL or SQLite, validated on read.

A record says that for ``prompt``, rater ``rater`` compared melody ``a`` with melody
``b`` at ``timestamp`` and chose ``"A"``, ``"B"`` or ``"tie"``. Melodies are stored once,
by id, next to the records (the same melody is usually compared several times). The
format is documented in ``docs/musicrl/preference-store.md``:

JSONL (``*.jsonl``), one object per line, in any order::

    {"type": "melody", "id": "m-3f2a...", "melody": {"meter": "6/8", "bars": [0, 3],
     "notes": [[67, 6], [69, 6], [null, 12], ...]}}
    {"type": "preference", "prompt": "G major, 6/8, essen:germany, short",
     "a": "m-3f2a...", "b": "m-9c01...", "choice": "A", "rater": "simulated-0",
     "timestamp": "2026-01-01T12:00:00+00:00"}

(notes are ``[MIDI pitch or null for a rest, duration in 1/12-quarter ticks]``; ``bars``
holds the index of the first note of each bar.)

SQLite (``*.sqlite``, ``*.sqlite3``, ``*.db``): table ``melodies(id TEXT PRIMARY KEY,
melody TEXT)`` with the melody JSON above, and table ``preferences(row INTEGER PRIMARY
KEY, prompt, a, b, choice, rater, timestamp)`` (all TEXT).

Reading validates everything and raises :class:`PreferenceStoreError` naming the file,
the line (JSONL) or row (SQLite) and the field. Writing is atomic (temp file in the same
folder, then ``os.replace``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from musicrl.corpus import DURATION_TICKS, Melody, Prompt, meter_ticks
from musicrl.raters import CHOICES, Choice

__all__ = [
    "PreferenceRecord",
    "PreferenceStore",
    "PreferenceStoreError",
    "melody_id",
    "read_store",
    "write_store",
]

_JSONL_SUFFIXES = (".jsonl",)
_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


class PreferenceStoreError(ValueError):
    """A malformed preference store; ``line`` (1-based line or row) and ``field`` say where.

    Examples
    --------
    >>> err = PreferenceStoreError("prefs.jsonl", 3, "choice", "is missing")
    >>> str(err)
    "prefs.jsonl: line 3: field 'choice' is missing"
    """

    def __init__(
        self, source: str, line: int | None, field: str | None, message: str, unit: str = "line"
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        where = source if line is None else f"{source}: {unit} {line}"
        what = message if field is None else f"field {field!r} {message}"
        super().__init__(f"{where}: {what}")


def melody_id(melody: Melody) -> str:
    """Content-addressed id ``"m-" + first 16 hex digits of sha256(melody JSON)``."""
    text = json.dumps(melody.to_dict(), sort_keys=True, separators=(",", ":"))
    return "m-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PreferenceRecord:
    """One pairwise judgement; ``a`` and ``b`` are melody ids in the store."""

    prompt: Prompt
    a: str
    b: str
    choice: Choice
    rater: str
    timestamp: str


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (3.10)


@dataclass
class PreferenceStore:
    """Melodies by id plus the records that compare them.

    Examples
    --------
    >>> from musicrl.corpus import Melody, Note, Prompt
    >>> store = PreferenceStore()
    >>> a = Melody((Note(67, 1.0),), "3/4", (0,)); b = Melody((Note(60, 1.0),), "3/4", (0,))
    >>> rec = store.add(Prompt.parse("G major, 3/4"), a, b, "A", "simulated-0")
    >>> len(store), len(store.melodies)
    (1, 2)
    """

    melodies: dict[str, Melody] = field(default_factory=dict)
    records: list[PreferenceRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def add_melody(self, melody: Melody) -> str:
        """Store a melody (idempotent) and return its id (:func:`melody_id`)."""
        mid = melody_id(melody)
        self.melodies.setdefault(mid, melody)
        return mid

    def add(
        self,
        prompt: Prompt,
        melody_a: Melody,
        melody_b: Melody,
        choice: str,
        rater: str,
        timestamp: str | None = None,
    ) -> PreferenceRecord:
        """Add one judgement (the melodies are stored too) and return the record.

        The record gets the same checks as one read by :func:`read_store`, so a store
        built with ``add`` is always readable after :func:`write_store`.

        Raises
        ------
        ValueError
            If ``choice`` is not one of ``"A"``, ``"B"``, ``"tie"``, ``rater`` is empty,
            ``timestamp`` is not ISO 8601, the two melodies are the same, or a melody
            breaks the store's rules (durations from ``corpus.DURATION_TICKS``).
        TypeError
            If ``prompt`` is not a Prompt or a melody not a Melody.
        """
        if not isinstance(prompt, Prompt):
            raise TypeError(f"prompt must be a Prompt; got {type(prompt).__name__}")
        for name, mel in (("melody_a", melody_a), ("melody_b", melody_b)):
            if not isinstance(mel, Melody):
                raise TypeError(f"{name} must be a Melody; got {type(mel).__name__}")
            problem = _melody_problem(mel.to_dict())
            if problem is not None:
                raise ValueError(f"{name} cannot be stored: {problem}")
        a, b = melody_id(melody_a), melody_id(melody_b)
        ts = _now() if timestamp is None else timestamp
        data = {"prompt": str(prompt), "a": a, "b": b, "choice": choice, "rater": rater}
        record_problem = _record_problem({**data, "timestamp": ts})
        if record_problem is not None:
            fld, msg = record_problem
            if fld == "b":
                raise ValueError(
                    f"melody_a and melody_b must be different melodies; both are {a!r}"
                )
            raise ValueError(f"{fld} {msg}")
        rec = PreferenceRecord(
            prompt,
            self.add_melody(melody_a),
            self.add_melody(melody_b),
            cast(Choice, choice),
            rater,
            ts,
        )
        self.records.append(rec)
        return rec

    def extend(self, other: PreferenceStore) -> None:
        """Append all records (and melodies) of ``other``."""
        for mid, mel in other.melodies.items():
            self.melodies.setdefault(mid, mel)
        self.records.extend(other.records)

    def subset(self, indices: Iterable[int]) -> PreferenceStore:
        """A store with the records at ``indices`` and the melodies they use."""
        recs = [self.records[i] for i in indices]
        used = {r.a for r in recs} | {r.b for r in recs}
        return PreferenceStore({k: v for k, v in self.melodies.items() if k in used}, recs)

    def columns(self) -> tuple[list[Prompt], list[Melody], list[Melody], list[str]]:
        """``(prompts, melodies_a, melodies_b, choices)`` as parallel lists."""
        return (
            [r.prompt for r in self.records],
            [self.melodies[r.a] for r in self.records],
            [self.melodies[r.b] for r in self.records],
            [r.choice for r in self.records],
        )


# --------------------------------------------------------------------------- validation


def _record_problem(data: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, message)`` of the first problem of a preference record, or None."""
    for fld in ("prompt", "a", "b", "choice", "rater", "timestamp"):
        if data.get(fld) is None:
            return fld, "is missing"
    for fld in ("prompt", "a", "b", "rater", "timestamp"):
        if not isinstance(data[fld], str):
            return fld, f"must be a string; got {data[fld]!r}"
    try:
        Prompt.parse(data["prompt"])
    except ValueError as err:
        return "prompt", f"is not a valid prompt: {err}"
    choice = data["choice"]
    if not isinstance(choice, str) or choice not in CHOICES:
        return "choice", f"must be one of {list(CHOICES)}; got {choice!r}"
    if not data["rater"]:
        return "rater", "must be a non-empty rater id"
    try:
        _dt.datetime.fromisoformat(data["timestamp"])
    except ValueError:
        return "timestamp", f"must be ISO 8601; got {data['timestamp']!r}"
    if data["a"] == data["b"]:
        return "b", f"must differ from 'a' (both are {data['a']!r})"
    return None


def _check_record(
    data: dict[str, Any], source: str, line: int, unit: str
) -> tuple[Prompt, str, str, Choice, str, str]:
    problem = _record_problem(data)
    if problem is not None:
        raise PreferenceStoreError(source, line, problem[0], problem[1], unit)
    prompt = Prompt.parse(data["prompt"])
    return prompt, data["a"], data["b"], data["choice"], data["rater"], data["timestamp"]


_MELODY_FORM = (
    'an object {"meter": "3/4" or null, "bars": [first note index of each bar, ...], '
    '"notes": [[MIDI pitch or null, ticks], ...]}'
)


def _melody_problem(payload: Any) -> str | None:
    """What is wrong with a stored melody (the JSON form), or None.

    Checks the shape of every field, pitches 0..127 or null, and durations from
    :data:`corpus.DURATION_TICKS`; the rest (bars, meter) is left to ``Melody``.
    """
    if not isinstance(payload, dict):
        return f"must be {_MELODY_FORM}; got {type(payload).__name__}"
    for key in ("meter", "bars", "notes"):
        if key not in payload:
            return f"has no key {key!r}; a melody is {_MELODY_FORM}"
    meter = payload["meter"]
    if meter is not None:
        if not isinstance(meter, str):
            return f"meter must be a string such as '3/4' or null; got {meter!r}"
        try:
            meter_ticks(meter)
        except ValueError as err:
            return str(err)
    bars = payload["bars"]
    if not isinstance(bars, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) for b in bars
    ):
        return f"bars must be a list of note indices (ints); got {bars!r}"
    notes = payload["notes"]
    if not isinstance(notes, list):
        return f"notes must be a list of [pitch or null, ticks] pairs; got {notes!r}"
    allowed = set(DURATION_TICKS)
    for i, note in enumerate(notes):
        if not isinstance(note, list) or len(note) != 2:
            return f"notes[{i}] must be a pair [MIDI pitch or null, ticks]; got {note!r}"
        pitch, ticks = note
        if pitch is not None and (
            isinstance(pitch, bool) or not isinstance(pitch, int) or not 0 <= pitch <= 127
        ):
            return f"notes[{i}] pitch must be a MIDI number 0..127 or null (a rest); got {pitch!r}"
        if isinstance(ticks, bool) or not isinstance(ticks, int) or ticks not in allowed:
            return (
                f"notes[{i}] duration must be one of corpus.DURATION_TICKS "
                f"{sorted(allowed)} (ticks of 1/12 quarter note); got {ticks!r}"
            )
    return None


def _check_melody(payload: Any, source: str, line: int, unit: str) -> Melody:
    problem = _melody_problem(payload)
    if problem is None:
        try:
            return Melody.from_dict(payload)
        except (ValueError, TypeError, KeyError) as err:
            problem = f"is not a valid melody: {err}"
    elif not problem.startswith("must be"):
        problem = f"is not a valid melody: {problem}"
    raise PreferenceStoreError(source, line, "melody", problem, unit)


def _resolve(
    melodies: dict[str, Melody],
    pending: Sequence[tuple[int, tuple[Prompt, str, str, Choice, str, str]]],
    source: str,
    unit: str,
) -> PreferenceStore:
    records = []
    for line, (prompt, a, b, choice, rater, ts) in pending:
        for fld, mid in (("a", a), ("b", b)):
            if mid not in melodies:
                raise PreferenceStoreError(
                    source, line, fld, f"names unknown melody id {mid!r}", unit
                )
        records.append(PreferenceRecord(prompt, a, b, choice, rater, ts))
    return PreferenceStore(dict(melodies), records)


# --------------------------------------------------------------------------- JSONL


def _read_jsonl(path: Path) -> PreferenceStore:
    source = str(path)
    melodies: dict[str, Melody] = {}
    pending: list[tuple[int, tuple[Prompt, str, str, Choice, str, str]]] = []
    with path.open("rb") as fh:
        for lineno, raw_bytes in enumerate(fh, start=1):
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as err:
                raise PreferenceStoreError(
                    source,
                    lineno,
                    None,
                    f"is not UTF-8 text ({err.reason}: byte 0x{raw_bytes[err.start]:02x} at "
                    f"column {err.start + 1}); a JSONL store must be UTF-8",
                ) from None
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as err:
                raise PreferenceStoreError(
                    source, lineno, None, f"is not valid JSON: {err}"
                ) from None
            if not isinstance(data, dict):
                raise PreferenceStoreError(source, lineno, None, "must be a JSON object")
            kind = data.get("type")
            if kind == "melody":
                mid = data.get("id")
                if not isinstance(mid, str) or not mid:
                    raise PreferenceStoreError(source, lineno, "id", "is missing or not a string")
                if mid in melodies:
                    raise PreferenceStoreError(source, lineno, "id", f"repeats melody id {mid!r}")
                melodies[mid] = _check_melody(data.get("melody"), source, lineno, "line")
            elif kind == "preference":
                pending.append((lineno, _check_record(data, source, lineno, "line")))
            else:
                raise PreferenceStoreError(
                    source, lineno, "type", f"must be 'melody' or 'preference'; got {kind!r}"
                )
    return _resolve(melodies, pending, source, "line")


def _jsonl_text(store: PreferenceStore) -> str:
    lines = [
        json.dumps({"type": "melody", "id": mid, "melody": mel.to_dict()})
        for mid, mel in store.melodies.items()
    ]
    lines += [
        json.dumps(
            {
                "type": "preference",
                "prompt": str(r.prompt),
                "a": r.a,
                "b": r.b,
                "choice": r.choice,
                "rater": r.rater,
                "timestamp": r.timestamp,
            }
        )
        for r in store.records
    ]
    return "\n".join(lines) + ("\n" if lines else "")


# --------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE melodies (id TEXT PRIMARY KEY, melody TEXT NOT NULL);
CREATE TABLE preferences (
    row INTEGER PRIMARY KEY,
    prompt TEXT, a TEXT, b TEXT, choice TEXT, rater TEXT, timestamp TEXT
);
"""


def _read_sqlite(path: Path) -> PreferenceStore:
    source = str(path)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            mel_rows = con.execute("SELECT rowid, id, melody FROM melodies").fetchall()
            pref_rows = con.execute(
                "SELECT row, prompt, a, b, choice, rater, timestamp FROM preferences ORDER BY row"
            ).fetchall()
        except sqlite3.DatabaseError as err:
            raise PreferenceStoreError(
                source, None, None, f"is not a preference store ({err}); see preference-store.md"
            ) from None
    finally:
        con.close()
    melodies: dict[str, Melody] = {}
    for rowid, mid, text in mel_rows:
        if not isinstance(mid, str) or not mid:
            raise PreferenceStoreError(
                source,
                rowid,
                "id",
                f"must be a non-empty string melody id; got {mid!r}",
                "melodies row",
            )
        if mid in melodies:
            raise PreferenceStoreError(
                source, rowid, "id", f"repeats melody id {mid!r}", "melodies row"
            )
        try:
            payload = json.loads(text)
        except (TypeError, json.JSONDecodeError) as err:
            raise PreferenceStoreError(
                source, rowid, "melody", f"is not valid JSON: {err}", "melodies row"
            ) from None
        melodies[mid] = _check_melody(payload, source, rowid, "melodies row")
    pending = []
    cols = ("prompt", "a", "b", "choice", "rater", "timestamp")
    for row in pref_rows:
        data = dict(zip(cols, row[1:], strict=True))
        pending.append((row[0], _check_record(data, source, row[0], "preferences row")))
    return _resolve(melodies, pending, source, "preferences row")


def _write_sqlite(store: PreferenceStore, path: Path) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(_SCHEMA)
        con.executemany(
            "INSERT INTO melodies (id, melody) VALUES (?, ?)",
            [(mid, json.dumps(m.to_dict())) for mid, m in store.melodies.items()],
        )
        con.executemany(
            "INSERT INTO preferences (prompt, a, b, choice, rater, timestamp) VALUES (?,?,?,?,?,?)",
            [(str(r.prompt), r.a, r.b, r.choice, r.rater, r.timestamp) for r in store.records],
        )
        con.commit()
    finally:
        con.close()


# --------------------------------------------------------------------------- public I/O


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _SQLITE_SUFFIXES:
        return "sqlite"
    raise ValueError(
        f"preference store path must end in one of {list(_JSONL_SUFFIXES + _SQLITE_SUFFIXES)}; "
        f"got {str(path)!r}"
    )


def read_store(path: str | os.PathLike[str]) -> PreferenceStore:
    """Read and validate a preference store (format chosen by the file suffix).

    Raises
    ------
    ValueError
        If the suffix is not ``.jsonl``, ``.sqlite``, ``.sqlite3`` or ``.db``.
    FileNotFoundError
        If the file does not exist.
    PreferenceStoreError
        If a line/row is malformed (the message names the line or row and the field).
    """
    p = Path(path)
    kind = _kind(p)
    if not p.is_file():
        raise FileNotFoundError(f"preference store {str(p)!r} does not exist")
    return _read_jsonl(p) if kind == "jsonl" else _read_sqlite(p)


def write_store(store: PreferenceStore, path: str | os.PathLike[str]) -> None:
    """Write a store atomically (temp file in the same folder, then ``os.replace``).

    Raises
    ------
    ValueError
        If the suffix is unknown or a record names a melody the store does not hold.
    """
    p = Path(path)
    kind = _kind(p)
    for i, r in enumerate(store.records):
        for fld, mid in (("a", r.a), ("b", r.b)):
            if mid not in store.melodies:
                raise ValueError(f"records[{i}].{fld} names unknown melody id {mid!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        if kind == "jsonl":
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(_jsonl_text(store))
        else:
            os.close(fd)
            os.unlink(tmp)
            _write_sqlite(store, Path(tmp))
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
