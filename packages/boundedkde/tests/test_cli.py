"""The ``boundedkde fit`` command through click's runner, on CSV and Parquet files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from boundedkde.cli import main, parse_bounds
from click.testing import CliRunner


@pytest.fixture
def table(tmp_path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.exponential(10.0, size=400),
            "share": rng.beta(2.0, 5.0, size=400),
            "name": ["x"] * 400,
        }
    )


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_fit_writes_grid_starting_at_bound_and_integrating_to_one(
    tmp_path: Path, table: pd.DataFrame, suffix: str
) -> None:
    data = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        table.to_csv(data, index=False)
    else:
        table.to_parquet(data)
    out = tmp_path / "density.csv"
    code, stdout, _ = _run("fit", str(data), "--column", "age", "--bounds", "0:",
                           "--grid", "512", "--out", str(out), "--json")
    assert code == 0
    info = json.loads(stdout)
    assert info["n"] == 400
    assert info["bounds"] == [[0.0, None]]
    assert info["bandwidth"] > 0
    grid = pd.read_csv(out)
    assert grid["age"].iloc[0] == 0.0
    assert np.trapezoid(grid["density"], grid["age"]) == pytest.approx(1.0, abs=2e-3)
    assert (grid["density"] >= 0).all()


def test_at_evaluates_points_and_is_zero_outside(tmp_path: Path, table: pd.DataFrame) -> None:
    data = tmp_path / "d.csv"
    table.to_csv(data, index=False)
    code, stdout, _ = _run("fit", str(data), "--column", "share", "--bounds", "0:1",
                           "--at", "-0.5,0.2,1.5", "--json")
    assert code == 0
    dens = json.loads(stdout)["density_at"]
    assert dens["-0.5"] == 0.0
    assert dens["1.5"] == 0.0
    assert dens["0.2"] > 0.5  # Beta(2,5) has density about 2.46 at 0.2


def test_json_output_file(tmp_path: Path, table: pd.DataFrame) -> None:
    data = tmp_path / "d.csv"
    table.to_csv(data, index=False)
    out = tmp_path / "grid.json"
    code, _, _ = _run("fit", str(data), "--column", "share", "--bounds", "0:1", "--out", str(out))
    assert code == 0
    grid = json.loads(out.read_text())
    assert grid["share"][0] == 0.0
    assert grid["share"][-1] == 1.0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--column", "missing"], "--column 'missing'"),
        (["--column", "name"], "not numeric"),
        (["--column", "age", "--bounds", "5:"], "bounds"),
        (["--column", "age", "--bounds", "0"], "--bounds"),
        (["--column", "age", "--bandwidth", "wide"], "--bandwidth"),
        (["--column", "age", "--bounds", "0:", "--bounds", "0:"], "--bounds given 2 times"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, table: pd.DataFrame, args: list[str], needle: str
) -> None:
    data = tmp_path / "d.csv"
    table.to_csv(data, index=False)
    out = tmp_path / "density.csv"
    code, stdout, stderr = _run("fit", str(data), *args, "--out", str(out))
    assert code == 2
    assert needle in stderr
    assert stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_missing_values_refused_unless_omitted(tmp_path: Path, table: pd.DataFrame) -> None:
    table.loc[3, "age"] = np.nan
    data = tmp_path / "d.csv"
    table.to_csv(data, index=False)
    code, _, stderr = _run("fit", str(data), "--column", "age", "--bounds", "0:")
    assert code == 2
    assert "--nan-policy omit" in stderr
    code, stdout, _ = _run("fit", str(data), "--column", "age", "--bounds", "0:",
                           "--nan-policy", "omit", "--json")
    assert code == 0
    info = json.loads(stdout)
    assert info["n"] == 399
    assert info["dropped_missing"] == 1


def test_unreadable_and_missing_files_exit_2(tmp_path: Path) -> None:
    code, _, stderr = _run("fit", str(tmp_path / "nope.csv"), "--column", "a")
    assert code == 2
    assert "does not exist" in stderr
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    code, _, stderr = _run("fit", str(bad), "--column", "a")
    assert code == 2
    assert "could not be read" in stderr


def test_plot_written(tmp_path: Path, table: pd.DataFrame) -> None:
    pytest.importorskip("matplotlib")
    data = tmp_path / "d.csv"
    table.to_csv(data, index=False)
    png = tmp_path / "p.png"
    code, _, _ = _run("fit", str(data), "--column", "age", "--bounds", "0:", "--plot", str(png))
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_bounds() -> None:
    assert parse_bounds(":") == (None, None)
    assert parse_bounds(":1") == (None, 1.0)
    with pytest.raises(ValueError, match="--bounds"):
        parse_bounds("a:1")
    with pytest.raises(ValueError, match="--bounds"):
        parse_bounds("0:inf")
