"""Study behind auto's scale check for densities that vanish at every finite bound.

Before the check, ``method="auto"`` sent every density that goes to 0 at each finite
bound to ``transform-mbc``. With it, ``auto`` keeps ``linear-mbc`` on the data scale when
the data scale is the easier one and, with two finite bounds, the bounds are out of the
kernel's reach (:class:`boundedkde.boundary.ScaleCheck`). This prints, per density and size, the MISE of
``auto`` with the check, of ``transform-mbc`` (auto without the check, on every sample
where the check ran), of ``linear-mbc`` and of GetDist, as ratios to GetDist, and how
often the check kept the data scale. Each replication's sample is shared by every fit;
ISE by the midpoint rule on 4000 cells up to the 0.9999 quantile (or the upper bound).
Needs ``getdist`` (the bench environment). Not part of ``make bench`` (a study, run by
hand):

    PYTHONPATH=src ../../.venv-bench/bin/python benchmarks/study_scale_check.py 20 500,5000

Results are quoted in docs/boundedkde/concepts.md ("When the transform does not pay").
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from boundedkde import BoundedKDE
from scipy import stats

Sampler = Callable[[np.random.Generator, int], np.ndarray]
Pdf = Callable[[np.ndarray], np.ndarray]
Case = tuple[tuple[float, float | None], Sampler, Pdf, float]


def _frozen(dist: stats.rv_continuous, bounds: tuple[float, float | None]) -> Case:
    top = bounds[1] if bounds[1] is not None else float(dist.ppf(0.9999))
    return bounds, (lambda r, n: dist.rvs(size=n, random_state=r)), dist.pdf, top


def _folded(mu: float, sd: float) -> Case:
    def pdf(x: np.ndarray) -> np.ndarray:
        return stats.norm(mu, sd).pdf(x) + stats.norm(-mu, sd).pdf(x)

    return (0.0, None), (lambda r, n: np.abs(r.normal(mu, sd, size=n))), pdf, mu + 4 * sd


def _bimodal() -> Case:
    def sample(r: np.random.Generator, n: int) -> np.ndarray:
        first = r.uniform(size=n) < 0.5
        return np.abs(np.where(first, r.normal(2, 0.5, size=n), r.normal(5, 0.7, size=n)))

    def pdf(x: np.ndarray) -> np.ndarray:
        a, b = stats.norm(2, 0.5), stats.norm(5, 0.7)
        return 0.5 * (a.pdf(x) + a.pdf(-x)) + 0.5 * (b.pdf(x) + b.pdf(-x))

    return (0.0, None), sample, pdf, 8.5


def _claw() -> Case:
    a, b = stats.beta(20, 40), stats.beta(40, 20)

    def sample(r: np.random.Generator, n: int) -> np.ndarray:
        first = r.uniform(size=n) < 0.5
        return np.where(first, a.rvs(size=n, random_state=r), b.rvs(size=n, random_state=r))

    return (0.0, 1.0), sample, (lambda x: 0.5 * a.pdf(x) + 0.5 * b.pdf(x)), 1.0


CASES: dict[str, Case] = {
    # bounds far from the data
    "N(5,1) folded at 0": _folded(5.0, 1.0),
    "bimodal folded at 0": _bimodal(),
    "2 + 4 Beta(4,4) on [0,inf)": _frozen(stats.beta(4, 4, loc=2, scale=4), (0.0, None)),
    "lognormal(2, 0.2)": _frozen(stats.lognorm(0.2, scale=np.exp(2)), (0.0, None)),
    "Beta(20,40)+Beta(40,20)": _claw(),
    # bounds within reach
    "Beta(2,5)": _frozen(stats.beta(2, 5), (0.0, 1.0)),
    "Beta(3,3)": _frozen(stats.beta(3, 3), (0.0, 1.0)),
    "Gamma(2)": _frozen(stats.gamma(2), (0.0, None)),
    "Gamma(5)": _frozen(stats.gamma(5), (0.0, None)),
    "lognormal(0, 0.5)": _frozen(stats.lognorm(0.5), (0.0, None)),
    "Weibull(3)": _frozen(stats.weibull_min(3), (0.0, None)),
    "Weibull(2)": _frozen(stats.weibull_min(2), (0.0, None)),
    "Weibull(1.5)": _frozen(stats.weibull_min(1.5), (0.0, None)),
    "Maxwell": _frozen(stats.maxwell, (0.0, None)),
    "Gamma(1.5)": _frozen(stats.gamma(1.5), (0.0, None)),
    "Gamma(10)": _frozen(stats.gamma(10), (0.0, None)),
    "Beta(2,2)": _frozen(stats.beta(2, 2), (0.0, 1.0)),
    "Beta(4,2)": _frozen(stats.beta(4, 2), (0.0, 1.0)),
}


def _getdist(x: np.ndarray, bounds: tuple[float, float | None], pts: np.ndarray) -> np.ndarray:
    import contextlib
    import io

    from getdist import MCSamples

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        d = MCSamples(samples=x, names=["x"], ranges={"x": list(bounds)}).get1DDensity("x")
    grid, p = np.asarray(d.x, float), np.asarray(d.P, float)
    return np.interp(pts, grid, p / np.trapezoid(p, grid), left=0.0, right=0.0)


def main(reps: int, sizes: list[int]) -> None:
    print(
        "| density | n | auto / GetDist | auto without the check / GetDist "
        "| linear-mbc / GetDist | kept data scale |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for d, (name, (bounds, sample, pdf, top)) in enumerate(CASES.items()):
        width = (top - bounds[0]) / 4000
        pts = bounds[0] + width * (np.arange(4000) + 0.5)
        truth = pdf(pts)
        for n in sizes:
            ise: dict[str, list[float]] = {k: [] for k in ("auto", "before", "linear", "gd")}
            kept = checked = 0
            for r in range(reps):
                rng = np.random.default_rng(np.random.SeedSequence([20261129, d, n, r]))
                x = sample(rng, n)
                auto = BoundedKDE(bounds=bounds).fit(x)
                lin = BoundedKDE(bounds=bounds, method="linear-mbc").fit(x)
                before = auto
                if auto.scale_check_ is not None:
                    checked += 1
                    kept += auto.scale_check_.keep_data_scale
                    before = BoundedKDE(bounds=bounds, method="transform-mbc").fit(x)
                fits = {"auto": auto.pdf(pts), "before": before.pdf(pts), "linear": lin.pdf(pts)}
                fits["gd"] = _getdist(x, bounds, pts)
                for k, f in fits.items():
                    ise[k].append(float(np.sum((f - truth) ** 2) * width))
            gd = float(np.mean(ise["gd"]))
            cells = " | ".join(f"{np.mean(ise[k]) / gd:.2f}" for k in ("auto", "before", "linear"))
            print(f"| {name} | {n} | {cells} | {kept}/{checked} |", flush=True)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 20,
        [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "500,5000").split(",")],
    )
