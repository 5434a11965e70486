"""Study behind auto's heavy-tail fallback (the shifted log, ``transform_ == "log1p"``).

A heavy right tail stretches the data's range to thousands or millions of bandwidths.
A data-scale grid estimate then cannot resolve the bulk: no grid of up to 2**20 nodes has
8 nodes per bandwidth. ``method="auto"`` then refits with ``transform-mbc`` on the shifted
log scale (``tail_rescue_``). This compares, on the same samples:

* ``auto``: boundedkde's default, with the fallback;
* ``linear-mbc``: the data-scale estimate, which is what ``auto`` returned before the
  fallback existed;
* GetDist's bounded density;
* scipy's unbounded ``gaussian_kde``, as a reference.

Each is reported as the MISE ratio to GetDist, with the median of
``|fhat(0) / f(0) - 1|`` (the estimate at the bound) and how many samples the fallback
took. The ISE is the midpoint rule on 4000 cells over ``[0, q]``, where ``q`` is the
0.99 quantile (the tail beyond holds 1% of the mass and almost none of the ISE).
Replication r of case c at size n uses ``SeedSequence([20261130, c, n, r])``.

Needs ``getdist`` (the bench environment). Not part of ``make bench``; it is a study and
is run by hand:

    PYTHONPATH=src ../../.venv-bench/bin/python benchmarks/study_heavy_tails.py 10 1000,10000,100000

Results are quoted in docs/boundedkde/concepts.md ("Heavy tails").
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys

import numpy as np
from boundedkde import BoundedKDE
from scipy import stats

#: name -> frozen distribution on [0, inf); the last two are controls the fallback
#: should leave alone (their grids resolve the bandwidth).
CASES = {
    "Lomax(0.5)": stats.lomax(0.5),
    "Lomax(1)": stats.lomax(1.0),
    "half-Cauchy": stats.halfcauchy(),
    "Lomax(2)": stats.lomax(2.0),
    "Exponential(1)": stats.expon(),
}


def _getdist(x: np.ndarray, pts: np.ndarray) -> np.ndarray:
    from getdist import MCSamples

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        d = MCSamples(samples=x, names=["x"], ranges={"x": [0.0, None]}).get1DDensity("x")
    grid, p = np.asarray(d.x, float), np.asarray(d.P, float)
    return np.interp(pts, grid, p / np.trapezoid(p, grid), left=0.0, right=0.0)


def main(reps: int, sizes: list[int]) -> None:
    logging.disable(logging.WARNING)  # the data-scale fits warn about their grid spacing
    keys = ("auto", "linear-mbc", "gd", "scipy")
    print(
        "| density | n | auto / GetDist | linear-mbc / GetDist | scipy / GetDist "
        "| GetDist MISE | median rel. error at 0: auto, linear-mbc, GetDist | fallback |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for c, (name, dist) in enumerate(CASES.items()):
        top = float(dist.ppf(0.99))
        width = top / 4000
        pts = width * (np.arange(4000) + 0.5)
        truth = dist.pdf(pts)
        f0 = float(dist.pdf(0.0))
        for n in sizes:
            ise: dict[str, list[float]] = {k: [] for k in keys}
            at0: dict[str, list[float]] = {k: [] for k in keys}
            rescued = 0
            for r in range(reps):
                rng = np.random.default_rng(np.random.SeedSequence([20261130, c, n, r]))
                x = dist.rvs(size=n, random_state=rng)
                auto = BoundedKDE(bounds=(0.0, None)).fit(x)
                rescued += auto.tail_rescue_
                lin = BoundedKDE(bounds=(0.0, None), method="linear-mbc").fit(x)
                fits = {
                    "auto": (auto.pdf(pts), float(auto.pdf(0.0))),
                    "linear-mbc": (lin.pdf(pts), float(lin.pdf(0.0))),
                }
                g = _getdist(x, np.concatenate([[0.0], pts]))
                fits["gd"] = (g[1:], float(g[0]))
                if n <= 10_000:  # the direct sum is O(n * 4000)
                    fits["scipy"] = (stats.gaussian_kde(x)(pts), float("nan"))
                for k, (f, v0) in fits.items():
                    ise[k].append(float(np.sum((f - truth) ** 2) * width))
                    at0[k].append(abs(v0 / f0 - 1.0))
            gd = float(np.mean(ise["gd"]))

            def ratio(k: str, gd: float = gd, ise: dict[str, list[float]] = ise) -> str:
                return f"{np.mean(ise[k]) / gd:.3g}" if ise[k] else "-"

            errs = ", ".join(f"{np.median(at0[k]):.3f}" for k in ("auto", "linear-mbc", "gd"))
            print(
                f"| {name} | {n} | {ratio('auto')} | {ratio('linear-mbc')} | {ratio('scipy')} "
                f"| {gd:.3g} | {errs} | {rescued}/{reps} |",
                flush=True,
            )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 10,
        [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1000,10000,100000").split(",")],
    )
