"""Command line: ``boundedkde fit data.csv --column age --bounds 0: --out density.csv``.

Conventions (docs/cli.md): results on stdout (``--json`` for one JSON object), logs on
stderr; exit code 0 on success, 1 on a failure while running, 2 on bad usage or bad input
(a one-line message naming the flag). Outputs are written to a temporary file beside the
target and renamed into place only after every output is ready, so a failed run writes
nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
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


class InputError(Exception):
    """Bad input named by the flag it came from: exit code 2, nothing written."""


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


def _read_table(path: Path, columns: Sequence[str]) -> Any:
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover
        raise InputError("reading data needs pandas: pip install 'boundedkde[cli]'") from err
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path, columns=list(columns))
        elif suffix in (".csv", ".txt", ".tsv"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",",
                                usecols=lambda c: c in set(columns))
        else:
            raise InputError(
                f"DATA {str(path)!r}: unknown file type {suffix!r}; use .csv, .tsv or .parquet"
            )
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"DATA {str(path)!r} could not be read: {err}") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"--column {missing[0]!r} is not in {path.name}; columns read: {list(frame.columns)}"
        )
    return frame[list(columns)]


def _numeric(frame: Any, nan_policy: str) -> tuple[np.ndarray, int]:
    for col in frame.columns:
        kind = getattr(frame[col].dtype, "kind", "O")
        if kind not in "biuf":
            raise InputError(
                f"--column {col!r} is not numeric (dtype {frame[col].dtype}); pick a numeric column"
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


def _atomic_targets(outputs: dict[Path, Any]) -> None:
    """Write every output to a temp file beside it, then rename them all into place."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, writer in outputs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix,
                                       dir=path.parent)
            os.close(fd)
            staged.append((tmp, path))
            writer(tmp)
        for tmp, path in staged:
            os.replace(tmp, path)
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Bounded kernel density estimation from the command line."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


@main.command("fit")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--column", "columns", multiple=True, required=True,
              help="Column to estimate; repeat for a 2-D or 3-D density.")
@click.option("--bounds", "bounds", multiple=True,
              help="LO:HI per column, an empty side is open (0: means [0, inf)). Default ':'.")
@click.option("--method", default="auto", show_default=True,
              type=click.Choice(sorted(METHOD_CHOICES)), help="Boundary method.")
@click.option("--bandwidth", default="isj", show_default=True,
              help=f"One of {sorted(BANDWIDTHS)} or a number (kernel std in data units).")
@click.option("--kernel", default="gaussian", show_default=True, type=click.Choice(sorted(KERNELS)))
@click.option("--weights", "weights_col", default=None, help="Column of non-negative weights.")
@click.option("--grid", "grid_size", default=512, show_default=True, type=click.IntRange(min=2),
              help="Points per axis of the output grid.")
@click.option("--at", "at", default=None,
              help="Comma-separated points to evaluate (1-D) instead of the grid.")
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the grid or the evaluations (.csv or .json).")
@click.option("--plot", "plot", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG plot (needs boundedkde[plot]).")
@click.option("--nan-policy", default="raise", show_default=True,
              type=click.Choice(["raise", "omit"]), help="What to do with missing values.")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as one JSON object.")
def fit_command(
    data: Path, columns: tuple[str, ...], bounds: tuple[str, ...], method: str, bandwidth: str,
    kernel: str, weights_col: str | None, grid_size: int, at: str | None, out: Path | None,
    plot: Path | None, nan_policy: str, as_json: bool,
) -> None:
    """Fit a bounded density to columns of DATA (CSV or Parquet)."""
    try:
        result = _fit(data, columns, bounds, method, bandwidth, kernel, weights_col, grid_size,
                      at, out, plot, nan_policy)
    except InputError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USAGE)
    except (ValueError, TypeError) as err:
        # The estimator's validation errors name the parameter; map them to usage errors.
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as err:  # runtime failure: report, exit 1, nothing written
        logger.debug("failure", exc_info=True)
        click.echo(f"error: {type(err).__name__}: {err}", err=True)
        sys.exit(EXIT_RUNTIME)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key}: {value}")


def _fit(
    data: Path, columns: tuple[str, ...], bounds: tuple[str, ...], method: str, bandwidth: str,
    kernel: str, weights_col: str | None, grid_size: int, at: str | None, out: Path | None,
    plot: Path | None, nan_policy: str,
) -> dict[str, Any]:
    if not data.is_file():
        raise InputError(f"DATA {str(data)!r} does not exist or is not a file")
    d = len(columns)
    if d > 3:
        raise InputError(f"--column given {d} times; boundedkde fits 1 to 3 columns")
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
    for path, flag in ((out, "--out"), (plot, "--plot")):
        if path is not None and path.resolve() == data.resolve():
            raise InputError(f"{flag} must not be the input file {str(data)!r}")
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise InputError(f"--out must end in .csv or .json; got {out.name!r}")
    if plot is not None and plot.suffix.lower() != ".png":
        raise InputError(f"--plot must end in .png; got {plot.name!r}")
    points: np.ndarray | None = None
    if at is not None:
        if d != 1:
            raise InputError("--at evaluates 1-D fits; for 2-D and 3-D use the grid output")
        try:
            points = np.array([float(t) for t in at.split(",") if t.strip()], dtype=np.float64)
        except ValueError:
            raise InputError(f"--at must be comma-separated numbers; got {at!r}") from None

    wanted = list(columns) + ([weights_col] if weights_col else [])
    frame = _read_table(data, wanted)
    values, dropped = _numeric(frame, nan_policy)
    x = values[:, :d]
    w = values[:, d] if weights_col else None
    if x.shape[0] == 0:
        raise InputError(f"no rows left in {data.name} after dropping missing values")
    kde_bounds: Any = parsed[0] if d == 1 else parsed
    kde = BoundedKDE(bounds=kde_bounds, method=method, bandwidth=bw,
                     kernel=kernel)
    kde.fit(x[:, 0] if d == 1 else x, weights=w)
    logger.info("fitted %s with method %s", columns, kde.method_)

    outputs: dict[Path, Any] = {}
    if out is not None:
        if points is not None:
            table = {columns[0]: points.tolist(), "density": kde.pdf(points).tolist()}
        else:
            table = _grid_table(kde, grid_size, columns)
        outputs[out] = _write_table(table, out.suffix.lower())
    if plot is not None:
        outputs[plot] = _write_plot(kde, x)
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
        result["density_at"] = dict(zip(map(str, points.tolist()), kde.pdf(points).tolist(),
                                        strict=True))
    if out is not None:
        result["out"] = str(out)
    if plot is not None:
        result["plot"] = str(plot)
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
