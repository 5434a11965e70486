"""2-D bounded densities: speed and accuracy of boundedkde.multivariate against peers.

Run from packages/boundedkde with the benchmark environment (peers installed):

    nice -n 10 ../../.venv-bench/bin/python benchmarks/bench_multivariate.py

Speed (one run, same process): n = 10**6 points of Exponential(1) x Normal(0, 1), a lower
bound on axis 0 only, 256 x 256 grid.  The bare floor is multilinear binning with
``np.bincount`` plus one FFT convolution with a fixed separable Gaussian, in plain numpy.
Peers: ArviZ's 2-D KDE (``arviz.stats.density_utils._fast_kde_2d``, what
``az.plot_kde(x, values2=y)`` uses; no bounds) on the same 256 x 256 grid and on its default
128 x 128, KDEpy ``FFTKDE`` (2-D, no bounds), GetDist ``get2DDensity`` with the lower range.
Median and minimum of ``--repeats`` interleaved rounds, wall and CPU time.

Accuracy: mean integrated squared error over ``--reps`` seeded replications for
n = 2000 and 20000 on (a) Exponential(1) x Uniform(0, 1), (b) Beta(2, 5) x Beta(5, 2),
(c) a bivariate log-normal (log-scale means 0, sds 0.5, correlation 0.6) on the positive
quadrant; ISE by the midpoint rule on a 300 x 300 grid over the region holding all but
<1e-4 of the true mass.  GetDist gets the same bounds (``ranges``) and its defaults
(linear boundary kernel, multiplicative bias correction, automatic 2-D bandwidth).

The script writes a Markdown table between the ``<!-- bench:start -->`` and
``<!-- bench:end -->`` markers of docs/boundedkde/multivariate.md (atomically) and the raw
numbers to JSON.  It is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.interpolate import RegularGridInterpolator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _benchutil as bu
from boundedkde.multivariate import fit_nd

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "boundedkde" / "multivariate.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

Sampler = Callable[[np.random.Generator, int], np.ndarray]
Density = Callable[[np.ndarray, np.ndarray], np.ndarray]

LN_SIG = np.array([0.5, 0.5])
LN_RHO = 0.6
LN_COV = np.array(
    [
        [LN_SIG[0] ** 2, LN_RHO * LN_SIG[0] * LN_SIG[1]],
        [LN_RHO * LN_SIG[0] * LN_SIG[1], LN_SIG[1] ** 2],
    ]
)


def _ln_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.exp(rng.multivariate_normal([0.0, 0.0], LN_COV, size=n))


def _ln_pdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    ok = (x > 0) & (y > 0)
    lz = np.stack([np.log(x[ok]), np.log(y[ok])], axis=-1)
    out[ok] = stats.multivariate_normal([0.0, 0.0], LN_COV).pdf(lz) / (x[ok] * y[ok])
    return out


# name -> (sampler, true pdf, bounds, integration box)
CASES: dict[
    str,
    tuple[
        Sampler,
        Density,
        list[tuple[float | None, float | None]],
        tuple[tuple[float, float], tuple[float, float]],
    ],
] = {
    "expo x unif": (
        lambda r, n: np.column_stack([r.exponential(size=n), r.uniform(size=n)]),
        lambda x, y: np.exp(-x) * ((y >= 0) & (y <= 1)),
        [(0.0, None), (0.0, 1.0)],
        ((0.0, 10.0), (0.0, 1.0)),
    ),
    "beta(2,5) x beta(5,2)": (
        lambda r, n: np.column_stack([r.beta(2, 5, size=n), r.beta(5, 2, size=n)]),
        lambda x, y: stats.beta(2, 5).pdf(x) * stats.beta(5, 2).pdf(y),
        [(0.0, 1.0), (0.0, 1.0)],
        ((0.0, 1.0), (0.0, 1.0)),
    ),
    "log-normal rho=0.6": (
        _ln_sample,
        _ln_pdf,
        [(0.0, None), (0.0, None)],
        ((0.0, 8.0), (0.0, 8.0)),
    ),
}

DEFAULT = "boundedkde auto/isj (default)"
OURS: dict[str, dict[str, Any]] = {
    "boundedkde auto/isj (default)": {"method": "auto", "bandwidth": "isj"},
    "boundedkde linear/isj": {"method": "linear", "bandwidth": "isj"},
    "boundedkde reflect/isj": {"method": "reflect", "bandwidth": "isj"},
}


def _eval_grid(
    box: tuple[tuple[float, float], tuple[float, float]], m: int = 300
) -> tuple[np.ndarray, np.ndarray, float]:
    (a, b), (c, d) = box
    xs = a + (np.arange(m) + 0.5) * (b - a) / m
    ys = c + (np.arange(m) + 0.5) * (d - c) / m
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    return X, Y, (b - a) * (d - c) / m**2


def getdist_density(
    x: np.ndarray, bounds: list[tuple[float | None, float | None]]
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from getdist import MCSamples

    ranges = {f"p{i}": [lo, hi] for i, (lo, hi) in enumerate(bounds)}
    with bu.quiet():
        s = MCSamples(samples=x, names=["p0", "p1"], ranges=ranges)
        d2 = s.get2DDensity("p0", "p1", normalized=True)
    interp = RegularGridInterpolator((d2.y, d2.x), d2.P, bounds_error=False, fill_value=0.0)

    def f(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return interp(np.stack([Y.ravel(), X.ravel()], axis=1)).reshape(X.shape)

    return f


def accuracy(reps: int, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for case, (sampler, truth, bounds, box) in CASES.items():
        X, Y, cell = _eval_grid(box)
        ftrue = truth(X, Y)
        pts = np.stack([X.ravel(), Y.ravel()], axis=1)
        for n in sizes:
            ise: dict[str, list[float]] = {k: [] for k in [*OURS, "GetDist"]}
            for rep in range(reps):
                rng = np.random.default_rng(1000 * rep + n)
                x = sampler(rng, n)
                for name, kw in OURS.items():
                    fit = fit_nd(x, None, bounds, kw["method"], kw["bandwidth"])
                    est = fit.pdf(pts).reshape(X.shape)
                    ise[name].append(float(((est - ftrue) ** 2).sum() * cell))
                try:
                    est = getdist_density(x, bounds)(X, Y)
                    ise["GetDist"].append(float(((est - ftrue) ** 2).sum() * cell))
                except ImportError:
                    pass
            row = {"case": case, "n": n, "reps": reps}
            for k, v in ise.items():
                row[k] = float(np.mean(v)) if v else None
            if ise["GetDist"]:
                # Paired by sample: the standard error of mean(ISE_default - ISE_GetDist).
                diff = np.subtract(ise[DEFAULT], ise["GetDist"])
                row["paired diff se"] = float(diff.std(ddof=1) / np.sqrt(diff.size))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


# ------------------------------------------------------------------------------- speed


def _separable_fft(c: np.ndarray, sd_nodes: float) -> np.ndarray:
    """The floors' convolution: one separable Gaussian (sd in nodes) by real 2-D FFT."""
    m = c.shape[0]
    half = int(np.ceil(4 * sd_nodes))
    k1 = np.exp(-0.5 * (np.arange(-half, half + 1) / sd_nodes) ** 2)
    k1 /= k1.sum()
    L = m + 2 * half
    f_last = np.fft.rfft(k1, L)
    f_first = np.fft.fft(k1, L)
    fc = np.fft.rfft2(c, (L, L))
    out = np.fft.irfft2(fc * f_first[:, None] * f_last[None, :], (L, L))
    return out[half : half + m, half : half + m]


def floor_kde(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int, sd_nodes: float) -> np.ndarray:
    """Bare floor: bilinear binning (np.bincount) + one separable Gaussian FFT convolution.

    As lean as plain numpy allows, so the ratio is honest: column-contiguous input, four
    bincounts on one index (sums of 1, t0, t1, t0*t1; the corner weights follow by
    inclusion-exclusion), real FFTs, a fixed kernel (no bandwidth selection, no bounds).
    """
    c0 = np.ascontiguousarray(x[:, 0])
    c1 = np.ascontiguousarray(x[:, 1])
    t0 = (c0 - lo[0]) * ((m - 1) / (hi[0] - lo[0]))
    t1 = (c1 - lo[1]) * ((m - 1) / (hi[1] - lo[1]))
    i0 = np.minimum(t0.astype(np.intp), m - 2)
    i1 = np.minimum(t1.astype(np.intp), m - 2)
    t0 -= i0
    t1 -= i1
    base = i0 * m + i1
    size = m * m
    s1 = np.bincount(base, minlength=size).astype(float)
    sa = np.bincount(base, t0, size)
    sb = np.bincount(base, t1, size)
    sab = np.bincount(base, t0 * t1, size)
    c = s1 - sa - sb + sab
    c[m:] += (sa - sab)[:-m]
    c[1:] += (sb - sab)[:-1]
    c[m + 1 :] += sab[: -(m + 1)]
    return _separable_fft(c.reshape(m, m), sd_nodes)


def floor_kde_chunked(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int, sd_nodes: float, chunk: int = 1 << 16
) -> np.ndarray:
    """The same floor with the binning done in cache-sized chunks of ``chunk`` rows.

    boundedkde bins in chunks (``boundedkde.binning.CHUNK_ROWS``), which on this machine is
    faster than binning whole columns at once; this row shows the floor with the same
    technique, so that the ratio is not flattered by it.
    """
    c0 = np.ascontiguousarray(x[:, 0])
    c1 = np.ascontiguousarray(x[:, 1])
    f0 = (m - 1) / (hi[0] - lo[0])
    f1 = (m - 1) / (hi[1] - lo[1])
    size = m * m
    s1, sa, sb, sab = (np.zeros(size) for _ in range(4))
    for s in range(0, c0.size, chunk):
        t0 = (c0[s : s + chunk] - lo[0]) * f0
        t1 = (c1[s : s + chunk] - lo[1]) * f1
        i0 = np.minimum(t0.astype(np.intp), m - 2)
        i1 = np.minimum(t1.astype(np.intp), m - 2)
        t0 -= i0
        t1 -= i1
        base = i0 * m + i1
        s1 += np.bincount(base, minlength=size)
        sa += np.bincount(base, t0, size)
        sb += np.bincount(base, t1, size)
        sab += np.bincount(base, t0 * t1, size)
    c = s1 - sa - sb + sab
    c[m:] += (sa - sab)[:-m]
    c[1:] += (sb - sab)[:-1]
    c[m + 1 :] += sab[: -(m + 1)]
    return _separable_fft(c.reshape(m, m), sd_nodes)


def speed(n: int, repeats: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(42)
    x = np.column_stack([rng.exponential(size=n), rng.normal(size=n)])
    bounds = [(0.0, None), (None, None)]
    lo = np.array([0.0, x[:, 1].min()])
    hi = x.max(axis=0)
    entries: dict[str, Callable[[], Any]] = {
        "floor (bincount + separable FFT, numpy)": lambda: floor_kde(x, lo, hi, 256, 3.0),
        "floor, binning in cache-sized chunks": lambda: floor_kde_chunked(x, lo, hi, 256, 3.0),
        "boundedkde auto/isj (default)": lambda: fit_nd(x, None, bounds, "auto", "isj").grid(),
        "boundedkde linear/scott": lambda: fit_nd(x, None, bounds, "linear", "scott").grid(),
        "boundedkde reflect/scott": lambda: fit_nd(x, None, bounds, "reflect", "scott").grid(),
    }
    try:
        # ArviZ's 2-D KDE is `_fast_kde_2d` (what `az.plot_kde(x, values2=y)` calls);
        # `az.kde(x, values2=y)` silently ignores `values2` and returns a 1-D estimate of
        # x (ArviZ 0.23), which an earlier version of this benchmark timed by mistake.
        from arviz.stats.density_utils import _fast_kde_2d

        entries["ArviZ 2-D KDE, 256x256 grid (no bounds)"] = lambda: _fast_kde_2d(
            x[:, 0], x[:, 1], gridsize=(256, 256)
        )
        entries["ArviZ 2-D KDE, its default 128x128 grid"] = lambda: _fast_kde_2d(
            x[:, 0], x[:, 1]
        )
    except ImportError:
        pass
    try:
        from KDEpy import FFTKDE

        entries["KDEpy FFTKDE 2-D (no bounds)"] = lambda: FFTKDE(bw=0.1).fit(x).evaluate(256)
    except ImportError:
        pass
    try:
        from getdist import MCSamples

        def gd() -> Any:
            with bu.quiet():
                s = MCSamples(samples=x, names=["p0", "p1"], ranges={"p0": [0.0, None]})
                return s.get2DDensity("p0", "p1", normalized=True)

        entries["GetDist get2DDensity (lower bound)"] = gd
    except ImportError:
        pass
    # One warm-up call each, then `repeats` rounds that visit the contestants in turn, so a
    # change of machine load hits all of them alike; the ratio is taken on medians.
    # Wall time and process CPU time (every contestant is single-threaded here: numpy and
    # scipy.fft with one worker), so on a machine shared with other jobs the CPU time still
    # measures the work while the wall time also measures the scheduler.
    times: dict[str, list[float]] = {name: [] for name in entries}
    cpu: dict[str, list[float]] = {name: [] for name in entries}
    try:
        # One BLAS/OpenMP thread for every contestant: ArviZ and GetDist otherwise use the
        # second core on some steps, and idle BLAS threads spinning after a call slow the
        # next contestant down.
        from threadpoolctl import threadpool_limits

        limits: Any = threadpool_limits(1)
    except ImportError:
        limits = contextlib.nullcontext()
    with limits, bu.quiet():
        for fn in entries.values():
            fn()
        for _ in range(repeats):
            for name, fn in entries.items():
                t, c = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    rows = []
    for name, ts in times.items():
        rows.append(
            {
                "entry": name,
                "seconds": float(np.median(ts)),
                "min": float(np.min(ts)),
                "cpu seconds": float(np.median(cpu[name])),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    floor, floor_cpu = rows[0]["seconds"], rows[0]["cpu seconds"]
    chunked = rows[1]["seconds"]
    for r in rows:
        r["x floor"] = r["seconds"] / floor
        r["x floor cpu"] = r["cpu seconds"] / floor_cpu
        r["x chunked floor"] = r["seconds"] / chunked
    return rows


def render(acc: list[dict[str, Any]], spd: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [
        START,
        "",
        f"Measured {meta['when']} on {meta['machine']}; command: `{meta['command']}`.",
        "",
    ]
    if spd:
        out += [
            f"**Speed**, n = {meta['n_speed']:,}, Exponential(1) x Normal(0,1), lower bound on axis 0, 256 x 256 grid; one warm-up call each, then {meta['repeats']} rounds visiting the contestants in turn; median and minimum wall seconds and median process CPU seconds per call, ratios of medians:",
            "",
            "| entry | median s (wall) | min s (wall) | x floor (wall) | median CPU s | x floor (CPU) | x chunked floor (wall) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        out += [
            f"| {r['entry']} | {r['seconds']:.3f} | {r.get('min', r['seconds']):.3f} | "
            f"{r['x floor']:.2f} | "
            + (f"{r['cpu seconds']:.3f} | {r['x floor cpu']:.2f} |" if "cpu seconds" in r else "n/a | n/a |")
            + (f" {r['x chunked floor']:.2f} |" if "x chunked floor" in r else " n/a |")
            for r in spd
        ]
        out.append("")
    if acc:
        names = [k for k in acc[0] if k not in ("case", "n", "reps", "paired diff se")]
        out += [
            f"**Accuracy**, MISE x 1e3 over {acc[0]['reps']} seeded replications (lower is better); last column: default / GetDist:",
            "",
        ]
        with_se = any("paired diff se" in r for r in acc)
        out += [
            "| case | n | " + " | ".join(names) + " | default / GetDist |"
            + (" (default - GetDist) / SE |" if with_se else ""),
            "|---|---:|" + "---:|" * (len(names) + 1 + with_se),
        ]
        for r in acc:
            vals = " | ".join("n/a" if r[k] is None else f"{1e3 * r[k]:.4g}" for k in names)
            d, gdv = r[DEFAULT], r.get("GetDist")
            ratio = "n/a" if not gdv else f"{d / gdv:.2f}"
            se = r.get("paired diff se")
            z = "n/a" if not gdv or not se else f"{(d - gdv) / se:+.1f}"
            out.append(f"| {r['case']} | {r['n']} | {vals} | {ratio} |" + (f" {z} |" if with_se else ""))
        if with_se:
            out += [
                "",
                "The last column is the paired difference of the mean ISEs in units of its "
                "standard error (each replication's sample is shared by all contestants): "
                "values between -2 and +2 are within the replication noise.",
            ]
        out.append("")
    out.append(END)
    return "\n".join(out)


def write_doc(block: str, doc: Path) -> None:
    text = doc.read_text() if doc.exists() else f"# Multivariate\n\n{START}\n{END}\n"
    if START in text and END in text:
        a, b = text.index(START), text.index(END) + len(END)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    bu.atomic_write_text(doc, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    p.add_argument("--n-speed", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument(
        "--json", type=Path, default=ROOT / "out" / "bench" / "boundedkde" / "multivariate.json"
    )
    p.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        help="render the table from earlier runs' JSON files instead of measuring",
    )
    a = p.parse_args(argv)
    if a.from_json:
        spd, acc = [], []
        metas = []
        for f in a.from_json:
            got = json.loads(f.read_text())
            spd += got["speed"]
            acc += got["accuracy"]
            metas.append(got["meta"])
        meta = dict(metas[0])
        meta["command"] = " and ".join(m["command"] for m in metas)
        meta["when"] = ", ".join(m["when"] for m in metas)
        for m in metas:
            if m.get("speed_run"):
                meta["n_speed"], meta["repeats"] = m["n_speed"], m["repeats"]
        write_doc(render(acc, spd, meta), a.doc)
        return 0
    spd = [] if a.skip_speed else speed(a.n_speed, a.repeats)
    acc = [] if a.skip_accuracy else accuracy(a.reps, a.sizes)
    info = bu.machine_info()
    meta = {
        "when": bu.utc_now(),
        "machine": f"{info.get('cpu_model', 'unknown CPU')} ({info.get('usable_cpus')} usable CPUs, "
        f"load average {info.get('load_average_1_5_15')})",
        "command": "python benchmarks/bench_multivariate.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "n_speed": a.n_speed,
        "repeats": a.repeats,
        "speed_run": bool(spd),
        "versions": {
            k: bu.dist_version(k) for k in ("numpy", "scipy", "KDEpy", "arviz", "getdist")
        },
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    bu.atomic_write_json(a.json, {"meta": meta, "speed": spd, "accuracy": acc})
    write_doc(render(acc, spd, meta), a.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
