"""Bad input to ``boundedkde fit`` and the plotting helpers: clear errors, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from boundedkde import BoundedKDE, cli, fit_nd
from boundedkde.cli import main
from click.testing import CliRunner


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.exponential(size=200),
            "b": rng.uniform(size=200),
            "const": np.ones(200),
            "name": ["x"] * 200,
        }
    )
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _fit(data: Path, flags: str, *extra: str) -> tuple[int, str, str]:
    """``boundedkde fit DATA`` with the space-separated ``flags`` and then ``extra``."""
    return _run("fit", str(data), *flags.split(), *extra)


def _fails_cleanly(tmp_path: Path, code: int, stdout: str, stderr: str, want: int = 2) -> None:
    assert code == want
    assert stdout == ""
    assert stderr.startswith("error: ")
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_repeated_column_is_refused(tmp_path: Path, data: Path) -> None:
    code, out, err = _run(
        "fit", str(data), "--column", "a", "--column", "a", "--out", str(tmp_path / "g.csv")
    )
    _fails_cleanly(tmp_path, code, out, err)
    assert "--column 'a' is given more than once" in err
    code, out, err = _run("fit", str(data), "--column", "a", "--weights", "a")
    _fails_cleanly(tmp_path, code, out, err)
    assert "--weights 'a' is also a --column" in err


def test_small_2d_grid_is_accepted_as_the_help_says(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "g.csv"
    code, _, err = _fit(
        data, "--column a --column b --bounds 0: --bounds 0:1 --grid 3", "--out", str(out)
    )
    assert code == 0, err
    grid = pd.read_csv(out)
    assert list(grid.columns) == ["a", "b", "density"]
    assert len(grid) == 9


def test_grid_limits_name_the_flag(tmp_path: Path, data: Path) -> None:
    code, out, err = _run("fit", str(data), "--column", "a", "--grid", "1")
    assert code == 2
    assert "--grid" in err
    code, out, err = _fit(
        data, "--column a --column b --column const --grid 200", "--out", str(tmp_path / "g.csv")
    )
    _fails_cleanly(tmp_path, code, out, err)
    assert "--grid 200" in err
    assert "101 or less" in err
    code, help_text, _ = _run("fit", "--help")
    assert "at least 2" in " ".join(help_text.split())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_missing_column_lists_the_file_columns(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    path = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    code, _, err = _run("fit", str(path), "--column", "nope")
    assert code == 2
    assert f"--column 'nope' is not a column of d{suffix}" in err
    assert "['a', 'b']" in err
    code, _, err = _run("fit", str(path), "--column", "a", "--weights", "wt")
    assert code == 2
    assert "--weights 'wt' is not a column" in err


def test_header_only_file_says_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n")
    code, out, err = _run("fit", str(path), "--column", "a")
    _fails_cleanly(tmp_path, code, out, err)
    assert "no data rows" in err
    assert "not numeric" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--column", "a", "--at", "nan"], "--at must be numbers, not NaN"),
        (["--column", "a", "--at", "1,nan"], "--at"),
        (["--column", "a", "--at", ","], "--at must list at least one number"),
        (["--column", "const"], "--column 'const': x is constant"),
        (["--column", "a", "--bandwidth", "-1"], "--bandwidth"),
        (["--column", "a", "--bandwidth", "nan"], "--bandwidth"),
        (["--column", "a", "--bounds", "1:"], "--column 'a' (with --bounds '1:')"),
        (["--column", "a", "--weights", "name"], "--weights 'name' is not numeric"),
    ],
)
def test_library_errors_name_the_flag(
    tmp_path: Path, data: Path, args: list[str], needle: str
) -> None:
    code, out, err = _run("fit", str(data), *args, "--out", str(tmp_path / "g.csv"))
    _fails_cleanly(tmp_path, code, out, err)
    assert needle in err


def test_missing_output_folder_is_refused_and_not_created(tmp_path: Path, data: Path) -> None:
    code, out, err = _fit(
        data, "--column a", "--out", str(tmp_path / "newdir" / "x.csv"), "--plot", "/proc/x.png"
    )
    _fails_cleanly(tmp_path, code, out, err)
    assert "--out" in err
    assert "does not exist" in err
    code, out, err = _run(
        "fit", str(data), "--column", "a", "--plot", str(tmp_path / "newdir" / "x.png")
    )
    _fails_cleanly(tmp_path, code, out, err)
    assert "--plot" in err


def test_unwritable_output_leaves_nothing(tmp_path: Path, data: Path) -> None:
    # /proc exists but nothing can be created in it, even as root.
    code, out, err = _run(
        "fit", str(data), "--column", "a", "--out", str(tmp_path / "g.csv"), "--plot", "/proc/x.png"
    )
    _fails_cleanly(tmp_path, code, out, err, want=1)
    assert "--plot '/proc/x.png'" in err


def test_failure_after_first_rename_removes_it(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = cli.os.replace
    calls = []

    def replace(src: str, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(cli.os, "replace", replace)
    pytest.importorskip("matplotlib")
    code, out, err = _fit(
        data, "--column a", "--out", str(tmp_path / "g.csv"), "--plot", str(tmp_path / "p.png")
    )
    assert len(calls) == 2
    _fails_cleanly(tmp_path, code, out, err, want=1)


@pytest.mark.parametrize("where", ["_fit", "_read_table", "_write_table"])
def test_ctrl_c_is_one_line_exit_130_nothing_written(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    real = getattr(cli, where)

    def interrupted(*args: object, **kwargs: object) -> object:
        if where == "_write_table":
            real(*args, **kwargs)

            def write(tmp: str) -> None:
                Path(tmp).write_text("partial")
                raise KeyboardInterrupt

            return write
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, where, interrupted)
    code, out, err = _run("fit", str(data), "--column", "a", "--out", str(tmp_path / "g.csv"))
    _fails_cleanly(tmp_path, code, out, err, want=130)
    assert "interrupted" in err
    assert "Aborted" not in err


def test_library_error_raised_from_ctrl_c_is_an_interrupt(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrapped(*args: object, **kwargs: object) -> object:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("worker stopped") from exc

    monkeypatch.setattr(cli, "_read_table", wrapped)
    code, out, err = _run("fit", str(data), "--column", "a")
    _fails_cleanly(tmp_path, code, out, err, want=130)


def test_good_run_still_works(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "g.json"
    code, stdout, err = _fit(data, "--column a --bounds 0: --grid 64", "--out", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["n"] == 200
    assert len(json.loads(out.read_text())["a"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "g.json"]


# -- plotting ----------------------------------------------------------------------------


@pytest.fixture
def plt() -> object:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    yield pyplot
    pyplot.close("all")


def _xy() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([rng.exponential(size=400), rng.uniform(size=400)])


def test_plot_density_draws_an_ndfit(plt: object) -> None:
    from boundedkde.plotting import plot_corner, plot_density

    xy = _xy()
    fit = fit_nd(xy, bounds=[(0, None), (0, 1)])
    ax = plot_density(fit, data=xy, rug=True)
    assert len(ax.collections) > 0  # the filled contours
    assert plot_corner(fit, data=xy).shape == (2, 2)


def test_plot_errors_name_the_parameter(plt: object) -> None:
    from boundedkde.plotting import plot_corner, plot_density

    x = _xy()[:, 0]
    kde = BoundedKDE(bounds=(0, None)).fit(x)
    with pytest.raises(ValueError, match=r"points of plot_density .* at least 2 .*; got 0"):
        plot_density(kde, points=0)
    with pytest.raises(ValueError, match="points of plot_density"):
        plot_density(kde, points=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"levels of plot_density must be masses in \(0, 1\)"):
        plot_density(kde, levels=[1.5])
    with pytest.raises(TypeError, match=r"BoundedKDE or the NDFit .* got str"):
        plot_density("abc")
    with pytest.raises(ValueError, match="unfitted BoundedKDE"):
        plot_density(BoundedKDE())
    with pytest.raises(ValueError, match="data of plot_density must be finite"):
        plot_density(kde, data=[np.nan, 1.0])
    with pytest.raises(ValueError, match="weights of plot_density must have one value"):
        plot_density(kde, data=x, weights=np.ones(3))
    kde2 = BoundedKDE(bounds=[(0, None), (0, 1)]).fit(_xy())
    with pytest.raises(ValueError, match="points of plot_corner"):
        plot_corner(kde2, points=1)
    with pytest.raises(ValueError, match="levels of plot_corner"):
        plot_corner(kde2, levels=[0])


def test_plot_density_weighted_histogram(plt: object) -> None:
    from boundedkde.plotting import plot_density

    x = _xy()[:, 0]
    kde = BoundedKDE(bounds=(0, None)).fit(x)
    ax = plot_density(kde, data=x, weights=np.ones_like(x))
    assert len(ax.patches) > 5
