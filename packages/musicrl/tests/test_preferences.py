"""The preference store: JSONL and SQLite round trips, and errors naming line and field."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from musicrl.corpus import Prompt
from musicrl.preferences import (
    PreferenceStore,
    PreferenceStoreError,
    melody_id,
    read_store,
    write_store,
)

from .strategies import bar_melody

P = Prompt.parse("G major, 3/4, essen:germany, short")
A = bar_melody([67, 69, 71, 67], [12, 12, 12, 36], "3/4")
B = bar_melody([67, 66, 64, 62], [12, 12, 12, 36], "3/4")


def _store() -> PreferenceStore:
    s = PreferenceStore()
    s.add(P, A, B, "A", "simulated-0", "2026-01-01T00:00:00+00:00")
    s.add(P, B, A, "tie", "simulated-1", "2026-01-01T00:01:00+00:00")
    return s


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    store = _store()
    path = tmp_path / f"prefs{suffix}"
    write_store(store, path)
    again = read_store(path)
    assert again.records == store.records
    assert again.melodies == store.melodies
    assert again.columns()[1] == [A, B]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_melodies_are_stored_once() -> None:
    store = _store()
    assert len(store.melodies) == 2
    assert store.records[0].a == melody_id(A) == store.records[1].b


def _lines(tmp_path: Path) -> tuple[Path, list[dict[str, object]]]:
    path = tmp_path / "p.jsonl"
    write_store(_store(), path)
    return path, [json.loads(x) for x in path.read_text().splitlines()]


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_missing_choice_names_field_and_line(tmp_path: Path) -> None:
    path, rows = _lines(tmp_path)
    del rows[2]["choice"]  # line 3 is the first preference (2 melody lines first)
    _write(path, rows)
    with pytest.raises(PreferenceStoreError, match=r"line 3: field 'choice' is missing") as info:
        read_store(path)
    assert info.value.line == 3
    assert info.value.field == "choice"


def test_unknown_melody_id_names_field_and_line(tmp_path: Path) -> None:
    path, rows = _lines(tmp_path)
    rows[3]["b"] = "m-doesnotexist"
    _write(path, rows)
    with pytest.raises(PreferenceStoreError, match=r"line 4: field 'b' names unknown melody id"):
        read_store(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("choice", "left", "must be one of"),
        ("prompt", "H major", "is not a valid prompt"),
        ("timestamp", "yesterday", "must be ISO 8601"),
        ("rater", "", "must be a non-empty"),
    ],
)
def test_bad_values(tmp_path: Path, field: str, value: str, message: str) -> None:
    path, rows = _lines(tmp_path)
    rows[2][field] = value
    _write(path, rows)
    with pytest.raises(PreferenceStoreError, match=rf"line 3: field '{field}' {message}"):
        read_store(path)


def test_bad_json_and_type(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"type": "melody", "id": "x", "melody": {"meter": "3/4"}}\nnot json\n')
    with pytest.raises(PreferenceStoreError, match="line 1: field 'melody' is not a valid melody"):
        read_store(path)
    path.write_text('{"type": "vote"}\n')
    with pytest.raises(PreferenceStoreError, match="line 1: field 'type'"):
        read_store(path)
    path.write_text("not json\n")
    with pytest.raises(PreferenceStoreError, match="line 1: is not valid JSON"):
        read_store(path)


def test_sqlite_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    write_store(_store(), path)
    con = sqlite3.connect(path)
    con.execute("UPDATE preferences SET choice = NULL WHERE row = 2")
    con.commit()
    con.close()
    with pytest.raises(PreferenceStoreError, match=r"preferences row 2: field 'choice' is missing"):
        read_store(path)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must end in one of"):
        write_store(_store(), tmp_path / "p.csv")
    with pytest.raises(FileNotFoundError):
        read_store(tmp_path / "none.jsonl")


def test_add_validates_choice() -> None:
    with pytest.raises(ValueError, match="choice must be one of"):
        PreferenceStore().add(P, A, B, "both", "simulated-0")
