"""Accuracy benchmark: MISE of boundedkde and its peers on six bounded densities.

Protocol (issue 2, "Quality it must reach")
-------------------------------------------
* Densities: Uniform(0,1); triangle f(x)=2x on [0,1]; Exponential(1) on [0,inf);
  standard half-normal on [0,inf); Beta(2,5) on [0,1]; the pole f(x)=1/(2 sqrt x) on (0,1]
  (sampled as U**2 with U ~ Uniform(0,1)).
* Sample sizes n = 500 and n = 5000; 50 seeded replications each (quick mode: 5).
  Replication r of density d at size n uses ``SeedSequence([seed, d, n, r])``; every
  contestant sees the same sample.
* ISE = integral of (fhat - f)^2, computed with the composite midpoint rule on ``cells``
  (default 4000) equal cells covering [lower, U], where U is the upper bound for the
  bounded densities and the 0.9999 quantile for Exponential(1) and the half-normal (the
  neglected tail holds 1e-4 of the mass). Midpoints never touch a bound, so the pole's
  f is finite at every node. Because f^2 = 1/(4x) is not integrable at 0, the pole's
  ISE is a truncated quantity (its first cell alone contributes about 1/2 for any
  estimator that stays finite at 0); the protocol is the same for every contestant, and
  the pole's ISE restricted to [0.01, 1] is reported as well.
* MISE = mean ISE over replications; the standard error is std/sqrt(reps).

Contestants are evaluated at the same midpoints: boundedkde through ``pdf``; grid-based
peers (GetDist, KDEpy, ArviZ) by linear interpolation of their own output grid.

Run ``python benchmarks/accuracy.py --help``; the Makefile target ``bench`` runs it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _benchutil import (
    CountingHandler,
    atomic_write_json,
    capture_logs,
    machine_info,
    quick_mode,
    quiet,
    try_import,
)
from scipy import stats

Bounds = tuple[float, float | None]
Evaluator = Callable[[np.ndarray, Bounds, np.ndarray], np.ndarray]

#: Upper quantile used as the integration limit for densities unbounded above.
TAIL_QUANTILE = 0.9999
#: The pole's ISE is also reported on [POLE_TRIM, 1] (robust to the truncation near 0).
POLE_TRIM = 0.01
#: boundedkde boundary methods benchmarked besides the default ("auto").
OUR_METHODS_FALLBACK = ("reflect", "renorm", "linear", "linear-mbc", "transform")


def our_methods() -> tuple[str, ...]:
    """boundedkde's boundary methods from its registry (``METHODS``), minus ``none``."""
    try:
        from boundedkde import METHODS

        return tuple(m for m in METHODS if m not in ("none", "auto"))
    except Exception:  # not importable (yet): the methods of the issue
        return OUR_METHODS_FALLBACK


@dataclass(frozen=True)
class Density:
    """A test density: support, sampler, true pdf and integration range."""

    key: str
    label: str
    bounds: Bounds
    sample: Callable[[np.random.Generator, int], np.ndarray]
    pdf: Callable[[np.ndarray], np.ndarray]
    upper_integration: float


def _uniform_pdf(x: np.ndarray) -> np.ndarray:
    return np.ones_like(x)


def _triangle_pdf(x: np.ndarray) -> np.ndarray:
    return 2.0 * x


def _pole_pdf(x: np.ndarray) -> np.ndarray:
    return 0.5 / np.sqrt(x)


DENSITIES: dict[str, Density] = {
    d.key: d
    for d in (
        Density("uniform", "Uniform(0,1)", (0.0, 1.0), lambda g, n: g.uniform(size=n), _uniform_pdf, 1.0),
        Density("triangle", "triangle 2x on [0,1]", (0.0, 1.0), lambda g, n: np.sqrt(g.uniform(size=n)), _triangle_pdf, 1.0),
        Density(
            "exponential",
            "Exponential(1), [0,inf)",
            (0.0, None),
            lambda g, n: g.exponential(size=n),
            stats.expon.pdf,
            float(stats.expon.ppf(TAIL_QUANTILE)),
        ),
        Density(
            "halfnormal",
            "half-normal, [0,inf)",
            (0.0, None),
            lambda g, n: np.abs(g.standard_normal(size=n)),
            stats.halfnorm.pdf,
            float(stats.halfnorm.ppf(TAIL_QUANTILE)),
        ),
        Density("beta25", "Beta(2,5) on [0,1]", (0.0, 1.0), lambda g, n: g.beta(2.0, 5.0, size=n), stats.beta(2.0, 5.0).pdf, 1.0),
        Density("pole", "pole 1/(2 sqrt x) on (0,1]", (0.0, 1.0), lambda g, n: g.uniform(size=n) ** 2, _pole_pdf, 1.0),
    )
}


# ----------------------------------------------------------------------------- contestants


def _interp_grid(
    grid: np.ndarray, dens: np.ndarray, pts: np.ndarray, lo_edge: float, hi_edge: float
) -> np.ndarray:
    """Linear interpolation of a gridded estimate; constant to the edges, 0 outside them."""
    out = np.interp(pts, grid, dens)
    out[(pts < lo_edge) | (pts > hi_edge)] = 0.0
    return out


class Ours:
    """boundedkde with the given boundary method and every other argument at its default.

    ``tally`` counts the fitted ``method_`` (what ``auto`` resolved to).
    """

    def __init__(self, method: str) -> None:
        self.method = method
        self.tally: dict[str, int] = {}

    def __call__(self, x: np.ndarray, bounds: Bounds, pts: np.ndarray) -> np.ndarray:
        from boundedkde import BoundedKDE

        kde = BoundedKDE(bounds=bounds, method=self.method).fit(x)
        chosen = f"fitted method_={getattr(kde, 'method_', '?')}"
        self.tally[chosen] = self.tally.get(chosen, 0) + 1
        return np.asarray(kde.pdf(pts), dtype=float)


def eval_getdist(x: np.ndarray, bounds: Bounds, pts: np.ndarray) -> np.ndarray:
    """GetDist's bounded 1-D density with its default analysis settings.

    Defaults (analysis_defaults.ini): smooth_scale_1D=-1 (automatic bandwidth),
    boundary_correction_order=1 (linear boundary kernel), mult_bias_correction_order=1,
    fine_bins=1024. ``get1DDensity`` returns the density on its fine grid normalised to a
    maximum of 1; we renormalise it to unit integral (trapezoid rule on that grid) and
    interpolate linearly; it is 0 outside its grid.
    """
    from getdist import MCSamples

    lo, hi = bounds
    with quiet():
        samples = MCSamples(samples=x, names=["x"], ranges={"x": [lo, hi]})
        density = samples.get1DDensity("x")
    grid = np.asarray(density.x, dtype=float)
    p = np.asarray(density.P, dtype=float)
    p = p / np.trapezoid(p, grid)
    return np.interp(pts, grid, p, left=0.0, right=0.0)


def eval_scipy(x: np.ndarray, bounds: Bounds, pts: np.ndarray) -> np.ndarray:
    """scipy.stats.gaussian_kde, unbounded, Scott's rule (reference only)."""
    return np.asarray(stats.gaussian_kde(x)(pts), dtype=float)


class KDEpyMirror:
    """KDEpy FFTKDE with mirroring as KDEpy's docs show ("Boundary correction using mirroring").

    The bandwidth is chosen on the original data with KDEpy's own rule (``"ISJ"``, its
    improved Sheather-Jones, or ``"silverman"``, the rule of the docs' example); when
    KDEpy's ISJ root search fails, Silverman's rule is used and the fallback is counted.
    The data are then reflected about each finite bound, the mirrored sample is
    estimated with that bandwidth on an automatic grid of 2048 points per copy, the
    estimate is set to 0 outside the domain and multiplied by the number of copies.
    """

    def __init__(self, bw: str) -> None:
        self.bw = bw
        self.tally: dict[str, int] = {}

    def __call__(self, x: np.ndarray, bounds: Bounds, pts: np.ndarray) -> np.ndarray:
        from KDEpy import FFTKDE
        from KDEpy.bw_selection import improved_sheather_jones, silvermans_rule

        lo, hi = bounds
        if self.bw == "ISJ":
            try:
                with quiet():
                    bw = float(improved_sheather_jones(x[:, None]))
            except Exception:
                key = "KDEpy ISJ failed, Silverman used"
                self.tally[key] = self.tally.get(key, 0) + 1
                bw = float(silvermans_rule(x[:, None]))
        else:
            bw = float(silvermans_rule(x[:, None]))
        parts = [x, 2.0 * lo - x]
        if hi is not None:
            parts.append(2.0 * hi - x)
        mirrored = np.concatenate(parts)
        with quiet():
            grid, y = FFTKDE(bw=bw).fit(mirrored).evaluate(2048 * len(parts))
        y = np.asarray(y, dtype=float) * len(parts)
        return _interp_grid(np.asarray(grid, dtype=float), y, pts, lo, np.inf if hi is None else hi)


def eval_arviz(x: np.ndarray, bounds: Bounds, pts: np.ndarray) -> np.ndarray:
    """ArviZ ``kde(x, bound_correction=True)`` with the true finite bounds as ``custom_lims``.

    ArviZ reflects at both ends of its grid; for an open side ``custom_lims=None`` means the
    data's extreme, so its upper "bound" for Exponential/half-normal is max(x) (ArviZ's
    own behaviour). Its grid holds bin centres; we interpolate and hold the end values
    to the bin edges, and return 0 beyond them.
    """
    import arviz

    lo, hi = bounds
    with quiet():
        grid, pdf = arviz.kde(x, bound_correction=True, custom_lims=[lo, hi])
    grid = np.asarray(grid, dtype=float)
    half = 0.5 * (grid[1] - grid[0])
    return _interp_grid(grid, np.asarray(pdf, dtype=float), pts, grid[0] - half, grid[-1] + half)


@dataclass
class Contestant:
    """A named estimator and whether it can run here."""

    key: str
    label: str
    evaluate: Evaluator | None
    reason: str = ""
    note: str = ""


def build_contestants() -> list[Contestant]:
    """Every contestant; those whose package does not import are marked unavailable."""
    out: list[Contestant] = []
    bk, why = try_import("boundedkde")
    ours_ok = bk is not None and hasattr(bk, "BoundedKDE")
    if bk is not None and not ours_ok:
        why = "boundedkde imports but has no BoundedKDE yet"
    out.append(
        Contestant("ours_auto", "boundedkde default (auto, isj)", Ours("auto") if ours_ok else None, why)
    )
    for m in our_methods():
        out.append(
            Contestant(f"ours_{m}", f"boundedkde {m}", Ours(m) if ours_ok else None, why)
        )
    gd, why = try_import("getdist")
    out.append(Contestant("getdist", "GetDist", eval_getdist if gd else None, why,
                          "defaults: linear boundary kernel + mult. bias correction"))
    out.append(Contestant("scipy", "scipy gaussian_kde (unbounded)", eval_scipy, "",
                          "no boundary correction; reference"))
    kp, why = try_import("KDEpy")
    for bw in ("ISJ", "silverman"):
        out.append(Contestant(f"kdepy_{bw.lower()}", f"KDEpy FFTKDE mirrored, {bw}",
                              KDEpyMirror(bw) if kp else None, why,
                              f"{bw} bandwidth on the raw data, reflection as in KDEpy's docs"))
    az, why = try_import("arviz")
    out.append(Contestant("arviz", "ArviZ kde bound_correction", eval_arviz if az else None, why,
                          "custom_lims = true finite bounds; open side = data max"))
    return out


# ----------------------------------------------------------------------------- the study


def eval_points(density: Density, cells: int) -> tuple[np.ndarray, float]:
    """Midpoints of ``cells`` equal cells on [lower, upper_integration] and the cell width."""
    lo = density.bounds[0]
    width = (density.upper_integration - lo) / cells
    return lo + width * (np.arange(cells) + 0.5), width


def run_study(
    densities: list[str],
    sizes: list[int],
    reps: int,
    cells: int,
    seed: int,
    contestants: list[Contestant],
    log: Callable[[str], None],
    our_logs: CountingHandler,
) -> list[dict[str, Any]]:
    """Run every contestant on every (density, n, replication); return one row per cell."""
    rows: list[dict[str, Any]] = []
    keys = list(DENSITIES)
    for dkey in densities:
        dens = DENSITIES[dkey]
        pts, width = eval_points(dens, cells)
        truth = dens.pdf(pts)
        trim = pts >= POLE_TRIM if dkey == "pole" else None
        for n in sizes:
            ise: dict[str, list[float]] = {c.key: [] for c in contestants}
            ise_trim: dict[str, list[float]] = {c.key: [] for c in contestants}
            secs: dict[str, float] = {c.key: 0.0 for c in contestants}
            errors: dict[str, str] = {}
            fails: dict[str, int] = {c.key: 0 for c in contestants}
            logged: dict[str, dict[str, int]] = {c.key: {} for c in contestants}
            tally0 = {c.key: dict(getattr(c.evaluate, "tally", {})) for c in contestants}
            t_cell = time.perf_counter()
            for r in range(reps):
                rng = np.random.default_rng(np.random.SeedSequence([seed, keys.index(dkey), n, r]))
                x = dens.sample(rng, n)
                for c in contestants:
                    if c.evaluate is None:
                        continue
                    before = dict(our_logs.counts)
                    t0 = time.perf_counter()
                    try:
                        fhat = c.evaluate(x, dens.bounds, pts)
                    except Exception as exc:
                        fails[c.key] += 1
                        errors.setdefault(c.key, f"{type(exc).__name__}: {exc}"[:300])
                        continue
                    finally:
                        for k, v in our_logs.counts.items():
                            if v != before.get(k, 0):
                                logged[c.key][k] = logged[c.key].get(k, 0) + v - before.get(k, 0)
                    secs[c.key] += time.perf_counter() - t0
                    if fhat.shape != pts.shape or not np.all(np.isfinite(fhat)):
                        fails[c.key] += 1
                        errors.setdefault(c.key, "non-finite or mis-shaped density values")
                        continue
                    sq = (fhat - truth) ** 2
                    ise[c.key].append(float(np.sum(sq) * width))
                    if trim is not None:
                        ise_trim[c.key].append(float(np.sum(sq[trim]) * width))
            for c in contestants:
                vals = np.asarray(ise[c.key])
                ok = vals.size
                row: dict[str, Any] = {
                    "density": dkey,
                    "n": n,
                    "contestant": c.key,
                    "available": c.evaluate is not None,
                    "reps_ok": int(ok),
                    "failures": fails[c.key],
                    "error": errors.get(c.key, c.reason if c.evaluate is None else ""),
                    "mise": float(vals.mean()) if ok else None,
                    "se": float(vals.std(ddof=1) / np.sqrt(ok)) if ok > 1 else None,
                    "mean_seconds": secs[c.key] / ok if ok else None,
                }
                if logged[c.key]:
                    row["logged"] = logged[c.key]
                if trim is not None and ok:
                    row["mise_trim"] = float(np.mean(ise_trim[c.key]))
                tally = {k: v - tally0[c.key].get(k, 0) for k, v in getattr(c.evaluate, "tally", {}).items()}
                if any(tally.values()):
                    row["tally"] = {k: v for k, v in tally.items() if v}
                rows.append(row)
            summary = "  ".join(
                f"{r['contestant']}={r['mise']:.3g}"
                for r in rows[-len(contestants):]
                if r["mise"] is not None
            )
            log(f"{dkey:12s} n={n:5d} ({time.perf_counter() - t_cell:5.1f}s)  {summary}")
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (atomically)")
    p.add_argument("--quick", action="store_true", help="smoke run (also BENCH_QUICK=1): 5 replications")
    p.add_argument("--reps", type=int, default=None, help="replications (default 50, quick 5)")
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 5000], help="sample sizes")
    p.add_argument("--densities", nargs="+", default=list(DENSITIES), choices=list(DENSITIES))
    p.add_argument("--cells", type=int, default=4000, help="midpoint-rule cells for the ISE")
    p.add_argument("--seed", type=int, default=20240602, help="base seed of the SeedSequence")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick = quick_mode(args.quick)
    reps = args.reps if args.reps is not None else (5 if quick else 50)
    if reps < 1 or args.cells < 10 or any(n < 2 for n in args.sizes):
        raise SystemExit(f"--reps >= 1, --cells >= 10 and --sizes >= 2 are required; got {reps}, {args.cells}, {args.sizes}")
    our_logs = capture_logs("boundedkde")
    contestants = build_contestants()
    for c in contestants:
        if c.evaluate is None:
            print(f"[accuracy] {c.label}: not available ({c.reason})", file=sys.stderr)
    t0 = time.perf_counter()
    rows = run_study(args.densities, args.sizes, reps, args.cells, args.seed, contestants,
                     lambda s: print(f"[accuracy] {s}", file=sys.stderr, flush=True), our_logs)
    result = {
        "kind": "accuracy",
        "quick": quick,
        "settings": {
            "reps": reps,
            "sizes": args.sizes,
            "densities": args.densities,
            "cells": args.cells,
            "seed": args.seed,
            "tail_quantile": TAIL_QUANTILE,
            "pole_trim": POLE_TRIM,
            "wall_seconds": round(time.perf_counter() - t0, 1),
        },
        "densities": {k: {"label": d.label, "bounds": list(d.bounds), "upper_integration": d.upper_integration}
                      for k, d in DENSITIES.items()},
        "contestants": [{"key": c.key, "label": c.label, "available": c.evaluate is not None,
                         "reason": c.reason, "note": c.note} for c in contestants],
        "machine": machine_info(),
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(f"[accuracy] wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
