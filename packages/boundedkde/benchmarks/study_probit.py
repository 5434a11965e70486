"""Study behind boundedkde's default two-bound transform (probit, not logit).

MISE of ``method="auto"`` and ``method="transform-mbc"`` with ``transform="logit"`` and
``"probit"`` on 13 densities on [0, 1], each replication's sample shared by all four
fits; ISE on the accuracy benchmark's 4000-cell midpoint grid. Prints probit/logit
ratios and their geometric means. Not part of ``make bench`` (a study, run by hand):

    PYTHONPATH=src python benchmarks/study_probit.py 20 500,5000

Results are quoted in docs/boundedkde/concepts.md ("Probit, not logit, for two bounds").
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable

import numpy as np
from boundedkde import BoundedKDE
from scipy import stats

Sampler = Callable[[np.random.Generator, int], np.ndarray]
Pdf = Callable[[np.ndarray], np.ndarray]


def _beta(a: float, b: float) -> tuple[Sampler, Pdf]:
    return (lambda r, n: r.beta(a, b, size=n)), stats.beta(a, b).pdf


def _mix_sample(r: np.random.Generator, n: int) -> np.ndarray:
    first = r.uniform(size=n) < 0.6
    return np.where(first, r.beta(2, 8, size=n), r.beta(8, 3, size=n))


def _mix_pdf(x: np.ndarray) -> np.ndarray:
    return 0.6 * stats.beta(2, 8).pdf(x) + 0.4 * stats.beta(8, 3).pdf(x)


_TRUNC = stats.truncnorm(-1.0, 7.0 / 3.0, loc=0.3, scale=0.3)  # N(0.3, 0.3) on [0, 1]

DENSITIES: dict[str, tuple[Sampler, Pdf]] = {
    "uniform": (lambda r, n: r.uniform(size=n), np.ones_like),
    "triangle": (lambda r, n: np.sqrt(r.uniform(size=n)), lambda x: 2 * x),
    "beta25": _beta(2, 5),
    "pole": (lambda r, n: r.uniform(size=n) ** 2, lambda x: 0.5 / np.sqrt(x)),
    "beta33": _beta(3, 3),
    "beta22": _beta(2, 2),
    "beta0.5,0.5": _beta(0.5, 0.5),
    "beta0.7,2": _beta(0.7, 2),
    "beta1,3": _beta(1, 3),
    "beta8,2": _beta(8, 2),
    "beta1.5,1.5": _beta(1.5, 1.5),
    "truncnorm": (lambda r, n: _TRUNC.rvs(size=n, random_state=r), _TRUNC.pdf),
    "betamix": (_mix_sample, _mix_pdf),
}


def main(reps: int, sizes: list[int]) -> None:
    mids = (np.arange(4000) + 0.5) / 4000
    cell = 1.0 / 4000
    for n in sizes:
        logs: dict[str, list[float]] = {"auto": [], "transform-mbc": []}
        for name, (draw, pdf) in DENSITIES.items():
            truth = pdf(mids)
            ise: dict[tuple[str, str], list[float]] = {}
            chosen: Counter[str] = Counter()
            for r in range(reps):
                x = draw(np.random.default_rng([20240602, n, r, 17]), n)
                for method in ("auto", "transform-mbc"):
                    for transform in ("logit", "probit"):
                        kde = BoundedKDE(bounds=(0, 1), method=method, transform=transform)
                        kde.fit(x)
                        if method == "auto" and transform == "logit":
                            chosen[kde.method_] += 1
                        err = float(((kde.pdf(mids) - truth) ** 2).sum() * cell)
                        ise.setdefault((method, transform), []).append(err)
            parts = []
            for method in logs:
                logit = float(np.mean(ise[(method, "logit")]))
                ratio = float(np.mean(ise[(method, "probit")])) / logit
                logs[method].append(math.log(ratio))
                parts.append(f"{method} logit {logit:.3e} probit/logit {ratio:.3f}")
            print(f"n={n} {name:12s} " + " | ".join(parts) + f" | auto chose {dict(chosen)}")
        means = " ".join(f"{m} {math.exp(float(np.mean(v))):.3f}" for m, v in logs.items())
        print(f"n={n} geometric mean probit/logit: {means}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")])
