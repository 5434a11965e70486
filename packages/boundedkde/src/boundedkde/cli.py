"""Command line: ``boundedkde fit data.csv --column age --bounds 0: --out density.csv``.

Conventions (docs/cli.md): results on stdout (``--json`` for one JSON object), logs on
stderr; exit code 0 on success, 1 on a failure while running, 2 on bad usage or bad input
(a one-line message naming the flag), 130 on Ctrl-C. Outputs are written to a temporary
file beside the target and renamed into place only after every output is ready, so a failed
or interrupted run writes nothing; output folders must exist (none is created).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from boundedkde.bandwidth import BANDWIDTHS
from boundedkde.estimator import METHOD_CHOICES, BoundedKDE
from boundedkde.kernels import KERNELS

try:
    import click
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("the boundedkde CLI needs click: pip install 'boundedkde[cli]'") from err

__all__ = ["main", "parse_bounds"]

logger = logging.getLogger("boundedkde.cli")

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Default ``--grid`` per number of columns: 512 points in 1-D and per axis in 2-D, 64 per
#: axis in 3-D (512**3 nodes would not fit in memory).
DEFAULT_GRID = {1: 512, 2: 512, 3: 64}

#: Most output grid points in all (``--grid`` ** number of columns): the library's cap on
#: 2-D/3-D grids (``multivariate.MAX_GRID_NODES``, 2**20 nodes): 1024 per axis in 2-D, 101
#: in 3-D.
MAX_GRID_POINTS = 2**20

#: How many of a file's columns an error message lists.
_SHOW_COLUMNS = 20


class InputError(Exception):
    """Bad input named by the flag it came from: exit code 2, nothing written."""


class OutputError(Exception):
    """An output file that could not be written: exit code 1, nothing left behind."""


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _report_interrupt() -> click.exceptions.Exit:
    click.echo("error: interrupted (Ctrl-C); no output written", err=True)
    return click.exceptions.Exit(EXIT_INTERRUPTED)


class _Group(click.Group):
    """The ``boundedkde`` group: Ctrl-C anywhere in a command is one line and exit 130.

    Click's own handling prints a blank line and ``Aborted!`` with exit code 1.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            raise _report_interrupt() from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _report_interrupt() from None

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        if args is not None:  # called from Python (tests, CliRunner): no process exit
            return super().main(args, *rest, **kwargs)
        try:
            return super().main(args, *rest, **kwargs)
        finally:
            # The console script exits now and the run is complete (or reported): a
            # Ctrl-C while the interpreter tears down would kill it with SIGINT (exit
            # -2, no message) after a successful run.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def parse_bounds(text: str) -> tuple[float | None, float | None]:
    """Parse ``"lo:hi"`` with either side empty for an open side.

    Parameters
    ----------
    text : str
        ``"0:"`` (lower bound 0), ``":1"``, ``"0:1"`` or ``":"`` (unbounded).

    Returns
    -------
    tuple of (float or None, float or None)

    Raises
    ------
    ValueError
        When the text is not of that form or a side is not a finite number.

    Examples
    --------
    >>> parse_bounds("0:")
    (0.0, None)
    >>> parse_bounds("-1:2.5")
    (-1.0, 2.5)
    """
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(
            f"--bounds must look like LO:HI with either side empty (e.g. 0:); got {text!r}"
        )
    out: list[float | None] = []
    for side in parts:
        side = side.strip()
        if side == "":
            out.append(None)
            continue
        try:
            value = float(side)
        except ValueError:
            raise ValueError(f"--bounds: {side!r} in {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"--bounds: use an empty side for an open bound, not {side!r}")
        out.append(value)
    return out[0], out[1]


def _show_columns(names: Sequence[str]) -> str:
    shown = [str(c) for c in names[:_SHOW_COLUMNS]]
    more = f" ... ({len(names)} in all)" if len(names) > _SHOW_COLUMNS else ""
    return f"{shown}{more}"


def _read_table(path: Path, wanted: Sequence[tuple[str, str]]) -> Any:
    """Read the ``(flag, column)`` pairs of ``wanted`` from DATA, in that order."""
    columns = [col for _, col in wanted]
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover
        raise InputError("reading data needs pandas: pip install 'boundedkde[cli]'") from err
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt", ".tsv"):
        raise InputError(
            f"DATA {str(path)!r}: unknown file type {suffix!r}; use .csv, .tsv or .parquet"
        )
    parquet = suffix in (".parquet", ".pq")
    sep = "\t" if suffix == ".tsv" else ","
    try:
        # The header first, so that a missing --column can list what the file has.
        if parquet:
            import pyarrow.parquet as pq

            header = [
                c for c in pq.read_schema(path).names if not str(c).startswith("__index_level_")
            ]
        else:
            header = [str(c) for c in pd.read_csv(path, sep=sep, nrows=0).columns]
        for flag, col in wanted:
            if col not in header:
                raise InputError(
                    f"{flag} {col!r} is not a column of {path.name}; its columns are "
                    f"{_show_columns(header)}"
                )
        if parquet:
            frame = pd.read_parquet(path, columns=list(columns))
        else:
            frame = pd.read_csv(path, sep=sep, usecols=list(columns))
    except InputError:
        raise
    except ImportError as err:
        raise InputError(f"DATA {str(path)!r} could not be read: {err}") from err
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"DATA {str(path)!r} could not be read: {err}") from err
    if len(frame) == 0:
        raise InputError(f"DATA {str(path)!r} has no data rows (only a header)")
    return frame[list(columns)]


def _numeric(
    frame: Any, wanted: Sequence[tuple[str, str]], nan_policy: str
) -> tuple[np.ndarray, int]:
    for flag, col in wanted:
        dtype = frame[col].dtype
        if getattr(dtype, "kind", "O") not in "biuf":
            raise InputError(
                f"{flag} {col!r} is not numeric (dtype {dtype}); pick a numeric column"
            )
    values = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        if nan_policy != "omit":
            raise InputError(
                f"{int(bad.sum())} row(s) have missing or infinite values; pass "
                "--nan-policy omit to drop them"
            )
        values = values[~bad]
    return values, int(bad.sum())


def _atomic_targets(outputs: dict[Path, tuple[str, Any]]) -> None:
    """Write every output to a temp file beside it, then rename them all into place.

    ``outputs`` maps each target to ``(flag, writer)``. The target folders must exist
    (checked up front); none is created. On any failure, Ctrl-C included, the temp files
    are removed, and so are the targets already renamed into place, so that a run writes
    all its outputs or none.
    """
    staged: list[tuple[str, Path]] = []
    placed: list[Path] = []
    try:
        for path, (flag, writer) in outputs.items():
            try:
                fd, tmp = tempfile.mkstemp(
                    prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent
                )
            except OSError as err:
                raise OutputError(f"{flag} {str(path)!r} cannot be written: {err}") from err
            os.close(fd)
            staged.append((tmp, path))
            writer(tmp)
        for tmp, path in staged:
            os.replace(tmp, path)
            placed.append(path)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _grid_table(kde: BoundedKDE, size: int, names: Sequence[str]) -> dict[str, list[float]]:
    if getattr(kde, "d_", 1) == 1:
        pts, dens = kde.grid(size)
        return {names[0]: pts.tolist(), "density": dens.tolist()}
    axes, dens = kde.grid(size)
    mesh = np.meshgrid(*axes, indexing="ij")
    table = {name: m.ravel().tolist() for name, m in zip(names, mesh, strict=True)}
    table["density"] = np.asarray(dens).ravel().tolist()
    return table


def _write_table(table: dict[str, list[float]], fmt: str) -> Any:
    def write(tmp: str) -> None:
        if fmt == ".json":
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(table, fh)
            return
        keys = list(table)
        rows = zip(*(table[k] for k in keys), strict=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(",".join(keys) + "\n")
            for row in rows:
                fh.write(",".join(repr(float(v)) for v in row) + "\n")

    return write


def _write_plot(kde: BoundedKDE, data: np.ndarray) -> Any:
    def write(tmp: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from boundedkde.plotting import plot_corner, plot_density

        d = getattr(kde, "d_", 1)
        if d == 1:
            ax = plot_density(kde, data=data[:, 0])
        else:
            ax = plot_corner(kde, data=data)[0, 0]
        fig: Any = ax.figure
        fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)

    return write


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Bounded kernel density estimation from the command line."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


@main.command("fit")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--column",
    "columns",
    multiple=True,
    required=True,
    help="Column to estimate; repeat (with different columns) for a 2-D or 3-D density.",
)
@click.option(
    "--bounds",
    "bounds",
    multiple=True,
    help="LO:HI per column, an empty side is open (0: means [0, inf)). Default ':'.",
)
@click.option(
    "--method",
    default="auto",
    show_default=True,
    type=click.Choice(sorted(METHOD_CHOICES)),
    help="Boundary method.",
)
@click.option(
    "--bandwidth",
    default="isj",
    show_default=True,
    help=f"One of {sorted(BANDWIDTHS)} or a number (kernel std in data units).",
)
@click.option("--kernel", default="gaussian", show_default=True, type=click.Choice(sorted(KERNELS)))
@click.option("--weights", "weights_col", default=None, help="Column of non-negative weights.")
@click.option(
    "--grid",
    "grid_size",
    default=None,
    type=click.IntRange(min=2),
    help="Points per axis of the output grid, at least 2 and at most "
    f"{MAX_GRID_POINTS} (2**20) points in all. Default: 512 for 1 and 2 "
    "columns, 64 for 3.",
)
@click.option(
    "--at", "at", default=None, help="Comma-separated points to evaluate (1-D) instead of the grid."
)
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the grid or the evaluations (.csv or .json); its folder must exist.",
)
@click.option(
    "--plot",
    "plot",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG plot (needs boundedkde[plot]); its folder must exist.",
)
@click.option(
    "--nan-policy",
    default="raise",
    show_default=True,
    type=click.Choice(["raise", "omit"]),
    help="What to do with missing values.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as one JSON object.")
def fit_command(
    data: Path,
    columns: tuple[str, ...],
    bounds: tuple[str, ...],
    method: str,
    bandwidth: str,
    kernel: str,
    weights_col: str | None,
    grid_size: int | None,
    at: str | None,
    out: Path | None,
    plot: Path | None,
    nan_policy: str,
    as_json: bool,
) -> None:
    """Fit a bounded density to columns of DATA (CSV or Parquet)."""
    try:
        result = _fit(
            data,
            columns,
            bounds,
            method,
            bandwidth,
            kernel,
            weights_col,
            grid_size,
            at,
            out,
            plot,
            nan_policy,
        )
    except InputError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USAGE)
    except OutputError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_RUNTIME)
    except (ValueError, TypeError) as err:
        # A validation error of the library that _fit did not attribute to a flag.
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as err:  # runtime failure: report, exit 1, nothing written
        if _interrupted(err):  # a library turned Ctrl-C into its own error
            raise _report_interrupt() from None
        logger.debug("failure", exc_info=True)
        click.echo(f"error: {type(err).__name__}: {err}", err=True)
        sys.exit(EXIT_RUNTIME)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key}: {value}")


def _check_outputs(data: Path, out: Path | None, plot: Path | None) -> None:
    """Refuse, before any work, outputs that could not be written or would hit DATA."""
    for path, flag, suffixes in ((out, "--out", (".csv", ".json")), (plot, "--plot", (".png",))):
        if path is None:
            continue
        if path.suffix.lower() not in suffixes:
            raise InputError(f"{flag} must end in {' or '.join(suffixes)}; got {path.name!r}")
        if path.resolve() == data.resolve():
            raise InputError(f"{flag} must not be the input file {str(data)!r}")
        folder = path.parent
        if not folder.is_dir():
            raise InputError(
                f"{flag} {str(path)!r}: the folder {str(folder)!r} does not exist; create it "
                "first (boundedkde does not create folders)"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"{flag} {str(path)!r}: the folder {str(folder)!r} is not writable")


def _parse_at(at: str) -> np.ndarray:
    try:
        points = np.array([float(t) for t in at.split(",") if t.strip()], dtype=np.float64)
    except ValueError:
        raise InputError(f"--at must be comma-separated numbers; got {at!r}") from None
    if points.size == 0:
        raise InputError(f"--at must list at least one number (e.g. 0.5,1,2); got {at!r}")
    if np.isnan(points).any():
        raise InputError(f"--at must be numbers, not NaN; got {at!r}")
    return points


def _fit(
    data: Path,
    columns: tuple[str, ...],
    bounds: tuple[str, ...],
    method: str,
    bandwidth: str,
    kernel: str,
    weights_col: str | None,
    grid_size: int | None,
    at: str | None,
    out: Path | None,
    plot: Path | None,
    nan_policy: str,
) -> dict[str, Any]:
    if not data.is_file():
        raise InputError(f"DATA {str(data)!r} does not exist or is not a file")
    d = len(columns)
    if d > 3:
        raise InputError(f"--column given {d} times; boundedkde fits 1 to 3 columns")
    for i, col in enumerate(columns):
        if col in columns[:i]:
            raise InputError(
                f"--column {col!r} is given more than once; give {d} different columns "
                f"(got {list(columns)})"
            )
    if weights_col is not None and weights_col in columns:
        raise InputError(
            f"--weights {weights_col!r} is also a --column; weights must be another column"
        )
    if bounds and len(bounds) != d:
        raise InputError(
            f"--bounds given {len(bounds)} times for {d} --column(s); give one per column"
        )
    try:
        parsed = [parse_bounds(b) for b in (bounds or (":",) * d)]
    except ValueError as err:
        raise InputError(str(err)) from err
    try:
        bw: Any = float(bandwidth)
    except ValueError:
        if bandwidth not in BANDWIDTHS:
            raise InputError(
                f"--bandwidth must be one of {sorted(BANDWIDTHS)} or a positive number; "
                f"got {bandwidth!r}"
            ) from None
        bw = bandwidth
    else:
        if not (math.isfinite(bw) and bw > 0):
            raise InputError(
                f"--bandwidth must be one of {sorted(BANDWIDTHS)} or a positive finite "
                f"number; got {bandwidth!r}"
            )
    size = DEFAULT_GRID[d] if grid_size is None else grid_size
    if size**d > MAX_GRID_POINTS:
        raise InputError(
            f"--grid {size} with {d} --column(s) makes {size**d} grid points; at most "
            f"{MAX_GRID_POINTS} (2**20) are allowed, i.e. --grid "
            f"{math.floor(MAX_GRID_POINTS ** (1 / d) + 1e-9)} or less"
        )
    _check_outputs(data, out, plot)
    points: np.ndarray | None = None
    if at is not None:
        if d != 1:
            raise InputError("--at evaluates 1-D fits; for 2-D and 3-D use the grid output")
        points = _parse_at(at)

    wanted = [("--column", c) for c in columns]
    if weights_col:
        wanted.append(("--weights", weights_col))
    frame = _read_table(data, wanted)
    values, dropped = _numeric(frame, wanted, nan_policy)
    x = values[:, :d]
    w = values[:, d] if weights_col else None
    if x.shape[0] == 0:
        raise InputError(f"no rows left in {data.name} after dropping missing values")
    kde_bounds: Any = parsed[0] if d == 1 else parsed
    kde = BoundedKDE(bounds=kde_bounds, method=method, bandwidth=bw, kernel=kernel)
    try:
        kde.fit(x[:, 0] if d == 1 else x, weights=w)
    except (ValueError, TypeError) as err:
        # The library names its own parameters (x, weights, bounds); say which flag.
        msg = str(err)
        if weights_col is not None and msg.startswith("weights"):
            flag = f"--weights {weights_col!r}"
        else:
            flag = "--column " + " --column ".join(repr(c) for c in columns)
            if bounds:
                flag += " (with --bounds " + " --bounds ".join(map(repr, bounds)) + ")"
        raise InputError(f"{flag}: {msg}") from err
    logger.info("fitted %s with method %s", columns, kde.method_)

    outputs: dict[Path, tuple[str, Any]] = {}
    if out is not None:
        if points is not None:
            table = {columns[0]: points.tolist(), "density": kde.pdf(points).tolist()}
        else:
            try:
                table = _grid_table(kde, size, columns)
            except (ValueError, TypeError) as err:
                raise InputError(f"--grid {size}: {err}") from err
        outputs[out] = ("--out", _write_table(table, out.suffix.lower()))
    if plot is not None:
        outputs[plot] = ("--plot", _write_plot(kde, x))
    _atomic_targets(outputs)

    bw_out = kde.bandwidth_
    result: dict[str, Any] = {
        "data": str(data),
        "columns": list(columns),
        "n": int(x.shape[0]),
        "dropped_missing": dropped,
        "n_eff": float(kde.n_eff_),
        "bounds": [list(b) for b in parsed],
        "method": kde.method_,
        "bandwidth": np.asarray(bw_out).tolist(),
        "kernel": kernel,
    }
    if points is not None and out is None:
        result["density_at"] = dict(
            zip(map(str, points.tolist()), kde.pdf(points).tolist(), strict=True)
        )
    if out is not None:
        result["out"] = str(out)
    if plot is not None:
        result["plot"] = str(plot)
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
