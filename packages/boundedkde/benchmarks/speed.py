"""Speed benchmark: 1-D bounded KDE of 10^7 Exponential(1) samples on a 2048-point grid.

Protocol (issue 2, "Quality it must reach")
-------------------------------------------
* Data: n = 10^7 draws of Exponential(1) (quick mode: 10^6), float64, lower bound 0,
  upper side open. Generating the data is not timed.
* Every contestant starts from the raw array and ends with density values on a grid of
  2048 points (or its own default grid where it has no such setting; stated per row);
  bandwidth selection is included in the time, except for the floor, whose bandwidth is
  fixed (normal reference rule, computed once outside the timer).
* The floor is the bare minimum any binned KDE must do: the data maximum, linear
  binning with ``np.bincount`` and one zero-padded FFT convolution with a Gaussian.
* One warm-up call per contestant, then ``repeats`` timed rounds (default 5, quick 3);
  rounds visit the contestants in turn so that load drift on a shared machine hits all
  of them alike. The table reports the median (and minimum) of the rounds and the ratio
  of the median to the floor's median.

Run ``python benchmarks/speed.py --help``; the Makefile target ``bench`` runs it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _benchutil import (
    atomic_write_json,
    machine_info,
    quick_mode,
    quiet,
    thread_info,
    try_import,
)

GridFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

GRID = 2048
OUR_METHODS_FALLBACK = ("reflect", "renorm", "linear", "linear-mbc", "transform")


def our_methods() -> tuple[str, ...]:
    """boundedkde's boundary methods from its registry (``METHODS``), minus ``none``."""
    try:
        from boundedkde import METHODS

        return tuple(m for m in METHODS if m not in ("none", "auto"))
    except Exception:  # not importable (yet): the methods of the issue
        return OUR_METHODS_FALLBACK


def floor_kde(x: np.ndarray, bw: float, m: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """Bare floor: linear binning on [0, max x] plus one FFT convolution with a Gaussian.

    Linear binning gives each point weight 1 - t to its left node and t to its right one
    (t the fractional position); with ``bincount(i)`` and ``bincount(i, weights=t)`` the
    left weights are ``count - sum t`` and the right ones the shifted ``sum t``. The
    convolution multiplies the zero-padded (length 2m, so nothing wraps around) binned
    counts by the Gaussian's Fourier transform exp(-(2 pi f h)^2 / 2).
    """
    hi = float(x.max())
    dx = hi / (m - 1)
    t = x * (1.0 / dx)
    i = t.astype(np.intp)
    np.minimum(i, m - 2, out=i)  # the maximum lands on the last node
    t -= i
    right = np.bincount(i, weights=t, minlength=m)
    counts = np.bincount(i, minlength=m) - right
    counts[1:] += right[:-1]
    freqs = np.fft.rfftfreq(2 * m, d=dx)
    kernel_ft = np.exp(-0.5 * (2.0 * np.pi * freqs * bw) ** 2)
    dens = np.fft.irfft(np.fft.rfft(counts, 2 * m) * kernel_ft, 2 * m)[:m]
    return np.linspace(0.0, hi, m), dens / (x.size * dx)


def floor_kde_chunked(x: np.ndarray, bw: float, m: int = GRID, chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """The same floor with the binning done in cache-sized chunks of ``chunk`` points.

    boundedkde bins in chunks (``boundedkde.binning.CHUNK_ROWS``), which on this machine is
    faster than binning the whole array at once; this row shows the floor with the same
    technique, so that the ratio is not flattered by it.
    """
    hi = float(x.max())
    dx = hi / (m - 1)
    inv = 1.0 / dx
    ones = np.zeros(m - 1)
    right = np.zeros(m - 1)
    tb = np.empty(min(chunk, x.size))
    ib = np.empty(min(chunk, x.size), dtype=np.intp)
    for s in range(0, x.size, chunk):
        e = min(x.size, s + chunk)
        t, i = tb[: e - s], ib[: e - s]
        np.multiply(x[s:e], inv, out=t)
        np.copyto(i, t, casting="unsafe")
        np.minimum(i, m - 2, out=i)
        t -= i
        ones += np.bincount(i, minlength=m - 1)
        right += np.bincount(i, weights=t, minlength=m - 1)
    counts = np.zeros(m)
    counts[: m - 1] = ones - right
    counts[1:] += right
    freqs = np.fft.rfftfreq(2 * m, d=dx)
    kernel_ft = np.exp(-0.5 * (2.0 * np.pi * freqs * bw) ** 2)
    dens = np.fft.irfft(np.fft.rfft(counts, 2 * m) * kernel_ft, 2 * m)[:m]
    return np.linspace(0.0, hi, m), dens / (x.size * dx)


def make_ours(method: str) -> GridFn:
    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from boundedkde import BoundedKDE

        pts, dens = BoundedKDE(bounds=(0.0, None), method=method).fit(x).grid(GRID)
        return np.asarray(pts), np.asarray(dens)

    return run


def run_arviz(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import arviz

    with quiet():
        grid, pdf = arviz.kde(x, bound_correction=True, custom_lims=[0.0, None], grid_len=GRID)
    return np.asarray(grid), np.asarray(pdf)


def make_kdepy(rule: str) -> GridFn:
    """KDEpy mirroring recipe from its docs, with KDEpy's bandwidth rule on the raw data.

    ``FFTKDE(bw=rule)`` computes its bandwidth with the functions of ``KDEpy.bw_selection``;
    we call them directly (the docs obtain ``kde.bw`` by a first unmirrored evaluation,
    which would only add time). The mirrored sample (2n points) is evaluated on
    2 x 2048 points so that about 2048 of them fall in the domain.
    """

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from KDEpy import FFTKDE
        from KDEpy.bw_selection import improved_sheather_jones, silvermans_rule

        col = x[:, None]
        bw = float(improved_sheather_jones(col) if rule == "ISJ" else silvermans_rule(col))
        grid, y = FFTKDE(bw=bw).fit(np.concatenate((x, -x))).evaluate(2 * GRID)
        y[grid < 0] = 0.0
        return grid, 2.0 * y

    return run


def run_statsmodels(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from statsmodels.nonparametric.kde import KDEUnivariate

    kde = KDEUnivariate(x)
    kde.fit(fft=True, gridsize=GRID)
    return np.asarray(kde.support), np.asarray(kde.density)


def run_getdist(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from getdist import MCSamples

    with quiet():
        d = MCSamples(samples=x, names=["x"], ranges={"x": [0.0, None]}).get1DDensity("x")
    p = np.asarray(d.P, dtype=float)
    grid = np.asarray(d.x, dtype=float)
    return grid, p / np.trapezoid(p, grid)


@dataclass
class Entry:
    """One timed contestant."""

    key: str
    label: str
    fn: GridFn | None
    reason: str = ""
    note: str = ""
    n: int = 0
    times: list[float] = field(default_factory=list)
    mass: float | None = None
    error: str = ""
    max_rounds: int = 1_000_000


def build_entries(n: int, floor_bw: float) -> list[Entry]:
    entries = [
        Entry("floor", "bare floor (numpy bincount + 1 FFT, fixed h)",
              lambda x: floor_kde(x, floor_bw), note=f"fixed h = {floor_bw:.4g}, no boundary correction"),
        Entry("floor_chunked", "bare floor, binning in cache-sized chunks",
              lambda x: floor_kde_chunked(x, floor_bw),
              note="the floor with boundedkde's chunked binning (2**16 points per chunk)"),
    ]
    bk, why = try_import("boundedkde")
    ok = bk is not None and hasattr(bk, "BoundedKDE")
    if bk is not None and not ok:
        why = "boundedkde imports but has no BoundedKDE yet"
    entries.append(Entry("ours_auto", "boundedkde default (auto, isj)", make_ours("auto") if ok else None, why,
                         note="BoundedKDE(bounds=(0, None)).fit(x).grid(2048)"))
    for m in our_methods():
        entries.append(Entry(f"ours_{m}", f"boundedkde {m} (isj)", make_ours(m) if ok else None, why))
    az, why = try_import("arviz")
    entries.append(Entry("arviz", "ArviZ kde(bound_correction=True)", run_arviz if az else None, why,
                         note="grid_len=2048, custom_lims=[0, None], default bw ('experimental')"))
    kp, why = try_import("KDEpy")
    for rule in ("ISJ", "silverman"):
        entries.append(Entry(f"kdepy_{rule.lower()}", f"KDEpy FFTKDE mirrored ({rule})",
                             make_kdepy(rule) if kp else None, why,
                             note="2n mirrored points, 4096-point grid (about 2048 inside)"))
    sm, why = try_import("statsmodels.nonparametric.kde")
    entries.append(Entry("statsmodels", "statsmodels KDEUnivariate(fft=True)", run_statsmodels if sm else None,
                         why, note="gridsize=2048, normal-reference bw, no boundary correction"))
    gd, why = try_import("getdist")
    entries.append(Entry("getdist", "GetDist get1DDensity", run_getdist if gd else None, why,
                         note="its default 1024 fine bins"))
    for e in entries:
        e.n = n
    return entries


def mass_inside(grid: np.ndarray, dens: np.ndarray) -> float:
    """Trapezoid mass of a gridded estimate on [0, inf) (a sanity column)."""
    keep = grid >= 0
    return float(np.trapezoid(dens[keep], grid[keep]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (atomically)")
    p.add_argument("--quick", action="store_true", help="smoke run (also BENCH_QUICK=1): n=1e6, 3 rounds")
    p.add_argument("--n", type=int, default=None, help="sample size (default 10**7, quick 10**6)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5, quick 3)")
    p.add_argument("--seed", type=int, default=20240602)
    p.add_argument("--getdist-budget", type=float, default=60.0,
                   help="seconds; GetDist runs at n/10 if a probe at n/10 predicts more than this per call")
    p.add_argument("--slow", type=float, default=10.0,
                   help="seconds; a contestant whose warm-up call takes longer gets only 2 timed rounds")
    p.add_argument("--skip", nargs="*", default=[], help="contestant keys to leave out")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[speed] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick = quick_mode(args.quick)
    n = args.n if args.n is not None else (10**6 if quick else 10**7)
    repeats = args.repeats if args.repeats is not None else (3 if quick else 5)
    if n < 1000 or repeats < 1:
        raise SystemExit(f"--n >= 1000 and --repeats >= 1 are required; got {n}, {repeats}")

    x = np.random.default_rng(args.seed).exponential(size=n)
    small = x[: n // 10].copy()
    floor_bw = 1.06 * float(np.std(x)) * n ** (-0.2)  # Silverman's normal reference rule
    entries = [e for e in build_entries(n, floor_bw) if e.key not in args.skip]

    for e in entries:
        if e.fn is None:
            log(f"{e.label}: not available ({e.reason})")
            continue
        data = x
        if e.key == "getdist":
            t0 = time.perf_counter()
            try:
                e.fn(small)
            except Exception as exc:
                e.error = f"{type(exc).__name__}: {exc}"[:300]
                continue
            if 10 * (time.perf_counter() - t0) > args.getdist_budget:
                data, e.n = small, small.size
                e.note += f"; run at n = {small.size} (a call at n = {n} would exceed {args.getdist_budget:.0f} s)"
        t0 = time.perf_counter()
        try:
            grid, dens = e.fn(data)  # warm-up, also the sanity check
        except Exception as exc:
            e.error = f"{type(exc).__name__}: {exc}"[:300]
            log(f"{e.label}: failed ({e.error})")
            continue
        warm = time.perf_counter() - t0
        e.mass = mass_inside(np.asarray(grid, float), np.asarray(dens, float))
        log(f"warm-up {e.label}: {warm:.3f}s, mass {e.mass:.4f}")
        if warm > args.slow and repeats > 2:
            e.max_rounds = 2
            e.note += f"; {e.max_rounds} timed rounds (one call takes over {args.slow:g} s)"

    runnable = [e for e in entries if e.fn is not None and not e.error]
    for r in range(repeats):
        for e in runnable:
            if e.fn is None or r >= e.max_rounds:
                continue
            data = x if e.n == n else small
            t0 = time.perf_counter()
            e.fn(data)
            e.times.append(time.perf_counter() - t0)
        log(f"round {r + 1}/{repeats}: "
            + "  ".join(f"{e.key}={e.times[-1]:.3f}" for e in runnable if len(e.times) == r + 1))

    rows: list[dict[str, Any]] = []
    for e in entries:
        rows.append({
            "key": e.key,
            "label": e.label,
            "available": e.fn is not None,
            "error": e.error or (e.reason if e.fn is None else ""),
            "note": e.note,
            "n": e.n,
            "median_s": statistics.median(e.times) if e.times else None,
            "min_s": min(e.times) if e.times else None,
            "times_s": e.times,
            "mass": e.mass,
        })
    result = {
        "kind": "speed",
        "quick": quick,
        "settings": {"n": n, "grid": GRID, "repeats": repeats, "seed": args.seed, "floor_bw": floor_bw,
                     "data": "Exponential(1), bounds (0, None)"},
        "machine": machine_info(),
        "threads_after_imports": thread_info(),
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
