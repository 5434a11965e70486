"""Properties and oracles of the 2-D / 3-D estimator (boundedkde.multivariate)."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
from boundedkde import BoundedKDE
from boundedkde._nd_grid import multilinear_binning
from boundedkde.bandwidth import mbc_scale
from boundedkde.multivariate import ND_METHODS, NDFit, fit_nd, mbc_scale_nd
from boundedkde.transforms import TRANSFORMS, default_transform
from scipy import stats
from scipy.special import logsumexp

Bounds = list[tuple[float | None, float | None]]

#: Bound patterns per axis: open, lower only, upper only, both.
PATTERNS: list[Bounds] = [
    [(None, None), (None, None)],
    [(0.0, None), (None, None)],
    [(0.0, None), (0.0, 1.0)],
    [(None, 1.0), (0.0, None)],
    [(0.0, 1.0), (0.0, 1.0)],
]


def _sample(bounds: Bounds, n: int, seed: int) -> np.ndarray:
    """Data filling the box up to its bounds (so every bound is active)."""
    rng = np.random.default_rng(seed)
    cols = []
    for lo, hi in bounds:
        if lo is not None and hi is not None:
            cols.append(lo + (hi - lo) * rng.beta(1.5, 1.2, size=n))
        elif lo is not None:
            cols.append(lo + rng.exponential(size=n))
        elif hi is not None:
            cols.append(hi - rng.exponential(size=n))
        else:
            cols.append(rng.normal(size=n))
    x = np.column_stack(cols)
    # correlate the two axes a little without leaving the box
    return x


def _midpoint_mass(fit: NDFit, x: np.ndarray, m: int = 200) -> float:
    """Mass of fit.pdf by the midpoint rule over the box cut to the fit's own span.

    The midpoint nodes never coincide with the fit's grid nodes, so this checks the
    interpolated density, not the normalisation constant.  On transformed axes the rule
    runs on the transformed scale (dx = dz / T'(x)), where the density is smooth.
    """
    axes, _ = fit.grid()
    mids, wts = [], []
    for i, a in enumerate(axes):
        lo, hi = fit.bounds[i]
        if fit.method[i] == "transform" and (lo is not None or hi is not None):
            t = TRANSFORMS[default_transform((lo, hi))]
            z = t.forward(x[:, i], (lo, hi))
            s = np.sqrt(fit.bandwidth[i, i])
            z0, z1 = z.min() - 7 * s, z.max() + 7 * s
            zm = z0 + (np.arange(m) + 0.5) * (z1 - z0) / m
            xm = t.inverse(zm, (lo, hi))
            mids.append(xm)
            wts.append((z1 - z0) / m * np.exp(-t.log_jacobian(xm, (lo, hi))))
            continue
        e0 = a[0] if lo is None else lo
        e1 = a[-1] if hi is None else hi
        mids.append(e0 + (np.arange(m) + 0.5) * (e1 - e0) / m)
        wts.append(np.full(m, (e1 - e0) / m))
    mesh = np.meshgrid(*mids, indexing="ij")
    pts = np.stack([g.ravel() for g in mesh], axis=1)
    wmesh = np.ones(())
    for w in wts:
        wmesh = np.multiply.outer(wmesh, w)
    return float((fit.pdf(pts) * wmesh.ravel()).sum())


def _outside_points(bounds: Bounds) -> np.ndarray:
    pts = []
    for i, (lo, hi) in enumerate(bounds):
        for v in (lo, hi):
            if v is None:
                continue
            for delta in (-1e-9, 1e-9, -0.5, 0.5):
                p = [0.3, 0.3]
                p[i] = v + delta
                inside = all(
                    (b[0] is None or p[j] >= b[0]) and (b[1] is None or p[j] <= b[1])
                    for j, b in enumerate(bounds)
                )
                if not inside:
                    pts.append(p)
    return np.array(pts).reshape(-1, 2)


# ----------------------------------------------------------------------------- mass


@pytest.mark.parametrize(
    "method", ["reflect", "renorm", "linear", "linear-mbc", "transform", "auto"]
)
@pytest.mark.parametrize("bounds", PATTERNS, ids=lambda b: str(b))
def test_mass_one_inside_and_zero_outside(method: str, bounds: Bounds) -> None:
    x = _sample(bounds, 400, seed=1)
    if method == "transform":
        # transform needs data strictly inside; the sample has no point on a bound
        assert all(np.all(x[:, i] != v) for i, b in enumerate(bounds) for v in b if v is not None)
    fit = fit_nd(x, None, bounds, method, "scott", grid_size=96)
    # The midpoint rule on a 200x200 grid of the multilinear interpolant: error of order
    # (cell/fit-cell)^2 * curvature; 5e-3 is well above it and far below any boundary
    # leak (an uncorrected estimate loses ~10% of the mass here).
    assert abs(_midpoint_mass(fit, x) - 1.0) < 5e-3
    out = _outside_points(bounds)
    if out.size:
        assert np.all(fit.pdf(out) == 0.0)
        assert np.all(fit.logpdf(out) == -np.inf)


@pytest.mark.parametrize("method", ["reflect", "renorm", "linear"])
def test_mass_one_3d(method: str) -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.exponential(size=600), rng.uniform(size=600), rng.normal(size=600)])
    bounds: Bounds = [(0.0, None), (0.0, 1.0), (None, None)]
    fit = fit_nd(x, None, bounds, method, "scott", grid_size=32)
    axes, _dens = fit.grid()
    # Independent quadrature: midpoint rule at cell centres of the fit grid, where the
    # multilinear interpolant's cell mean equals the mean of its 8 corners.
    mids = [0.5 * (a[1:] + a[:-1]) for a in axes]
    mesh = np.meshgrid(*mids, indexing="ij")
    pts = np.stack([g.ravel() for g in mesh], axis=1)
    vol = np.prod([a[1] - a[0] for a in axes])
    mass = float(fit.pdf(pts).sum() * vol)
    assert abs(mass - 1.0) < 2e-2  # midpoint vs trapezoid on a 32^3 grid
    assert fit.pdf([[-0.1, 0.5, 0.0], [1.0, 1.1, 0.0]]).tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------- oracles


def _lattice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All pairs (a_i, b_j): the empirical product measure of two 1-D samples."""
    return np.column_stack([np.repeat(a, b.size), np.tile(b, a.size)])


@pytest.mark.parametrize("method", ["reflect", "renorm", "transform"])
def test_independent_data_factorises_into_1d_estimates(method: str) -> None:
    """On the product lattice of two samples with a diagonal H, the 2-D estimate is the
    product of the 1-D estimates exactly for reflect, renorm (the box mass is a product)
    and transform; tolerance 2% covers the 2-D grid (160 nodes) vs the 1-D core's."""
    rng = np.random.default_rng(5)
    a = rng.exponential(size=60)
    b = rng.beta(2.0, 2.0, size=50)
    bounds: Bounds = [(0.0, None), (0.0, 1.0)]
    h = np.array([0.25, 0.08])
    if method == "transform":
        h = np.array([0.4, 0.4])  # on the transformed scales
    fit = fit_nd(_lattice(a, b), None, bounds, method, np.diag(h**2), grid_size=160)
    k0 = BoundedKDE(bounds=bounds[0], method=method, bandwidth=h[0]).fit(a)
    k1 = BoundedKDE(bounds=bounds[1], method=method, bandwidth=h[1]).fit(b)
    xs = np.linspace(0.02, 3.0, 15)
    ys = np.linspace(0.02, 0.98, 13)
    pts = _lattice(xs, ys)
    got = fit.pdf(pts)
    want = k0.pdf(pts[:, 0]) * k1.pdf(pts[:, 1])
    big = want > 0.05 * want.max()
    np.testing.assert_allclose(got[big], want[big], rtol=2e-2)


@pytest.mark.parametrize("method", ["reflect", "transform"])
def test_marginal_matches_1d_fit(method: str) -> None:
    """reflect and transform commute with integrating out an axis: the 1-D marginal of
    the 2-D estimate equals the 1-D estimate with std sqrt(H_ii) (marginal_1d_params).
    Correlated data and a full H; tolerance 1.5% for the two grids."""
    rng = np.random.default_rng(7)
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]], size=3000)
    x = np.column_stack([np.exp(0.5 * z[:, 0]), 1.0 / (1.0 + np.exp(-z[:, 1]))])
    bounds: Bounds = [(0.0, None), (0.0, 1.0)]
    fit = fit_nd(x, None, bounds, method, "scott", grid_size=200)
    for axis in (0, 1):
        p = fit.marginal_1d_params(axis)
        k = BoundedKDE(bounds=p["bounds"], method=p["method"], bandwidth=p["bandwidth"])
        k.fit(p["x"], p["weights"])
        # numerical marginal of the 2-D estimate on a fine grid of the other axis
        other = 1 - axis
        lo, hi = bounds[other]
        grid_o = np.linspace(lo if lo is not None else 0.0, hi if hi is not None else 12.0, 4001)
        ts = np.quantile(x[:, axis], [0.1, 0.3, 0.5, 0.7, 0.9])
        for t in ts:
            pts = np.empty((grid_o.size, 2))
            pts[:, axis] = t
            pts[:, other] = grid_o
            marg = np.trapezoid(fit.pdf(pts), grid_o)
            assert marg == pytest.approx(float(k.pdf(t)), rel=1.5e-2)


def test_marginal_of_3d_fit_is_the_2d_marginal() -> None:
    """Reflection: integrating the 3-D estimate over axis 2 gives marginal([0, 1])."""
    rng = np.random.default_rng(8)
    x = np.column_stack(
        [rng.exponential(size=800), rng.uniform(size=800), rng.exponential(size=800)]
    )
    bounds: Bounds = [(0.0, None), (0.0, 1.0), (0.0, None)]
    fit = fit_nd(x, None, bounds, "reflect", "scott", grid_size=48)
    sub = fit.marginal([0, 1])
    assert sub.d == 2
    np.testing.assert_allclose(sub.bandwidth, fit.bandwidth[:2, :2])
    axes, dens = fit.grid()
    w2 = np.full(axes[2].size, axes[2][1] - axes[2][0])
    w2[[0, -1]] *= 0.5
    marg = np.tensordot(dens, w2, axes=([2], [0]))
    pts = _lattice(axes[0][::4], axes[1][::4])
    got = sub.pdf(pts)
    want = marg[::4, ::4].ravel()
    big = want > 0.05 * want.max()
    np.testing.assert_allclose(got[big], want[big], rtol=3e-2)  # 48 vs 256 nodes


def _direct_kde(data: np.ndarray, h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The O(n m) Gaussian kernel sum with covariance h (the oracle)."""
    diff = pts[:, None, :] - data[None, :, :]
    q = np.einsum("mni,ij,mnj->mn", diff, np.linalg.inv(h), diff)
    norm = np.sqrt(np.linalg.det(2 * np.pi * h))
    return np.exp(-0.5 * q).mean(axis=1) / norm


def test_binned_matches_direct_sum_and_scipy() -> None:
    """Open box: the binned estimate equals the O(n m) sum, and scipy's gaussian_kde with
    the same factor, to 1% where the density exceeds 1% of its peak (256^2 grid)."""
    rng = np.random.default_rng(9)
    x = rng.multivariate_normal([0.0, 1.0], [[1.0, 0.7], [0.7, 2.0]], size=400)
    fit = fit_nd(x, None, None, "reflect", 0.4)
    kde = stats.gaussian_kde(x.T, bw_method=0.4)
    np.testing.assert_allclose(fit.bandwidth, kde.covariance, rtol=1e-12)
    pts = rng.multivariate_normal([0.0, 1.0], [[1.5, 0.7], [0.7, 2.5]], size=300)
    want = _direct_kde(x, fit.bandwidth, pts)
    got = fit.pdf(pts)
    big = want > 0.01 * want.max()
    np.testing.assert_allclose(got[big], want[big], rtol=1e-2)
    np.testing.assert_allclose(got[big], kde(pts.T)[big], rtol=1e-2)


def test_reflection_matches_direct_sum_with_images() -> None:
    """Corner of two active bounds: reflect equals the direct sum over the 4 images
    (folding the density, f(x) + f(R0 x) + f(R1 x) + f(R0 R1 x)), correlated H."""
    rng = np.random.default_rng(10)
    x = rng.exponential(size=(300, 2))
    h = np.array([[0.09, 0.03], [0.03, 0.06]])
    fit = fit_nd(x, None, [(0.0, None), (0.0, None)], "reflect", h)
    pts = rng.uniform(0.0, 2.0, size=(200, 2))
    want = sum(_direct_kde(x, h, pts * np.array(s)) for s in itertools.product((1, -1), repeat=2))
    got = fit.pdf(pts)
    big = want > 0.01 * want.max()
    np.testing.assert_allclose(got[big], want[big], rtol=1.5e-2)


def test_far_points_use_the_direct_sum() -> None:
    """Points far outside the grid get the estimate's own (tiny) value, not 0."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 2))
    h = np.diag([0.3, 0.3]) ** 2
    fit = fit_nd(x, None, None, "reflect", h)
    far = np.array([[8.0, 0.0], [0.0, -9.0], [30.0, 30.0]])
    lp = fit.logpdf(far)
    assert np.all(np.isfinite(lp))
    inv = np.linalg.inv(h)
    ref = []
    for p in far:
        d = p - x
        q = np.einsum("ni,ij,nj->n", d, inv, d)
        ref.append(
            logsumexp(-0.5 * q) - np.log(x.shape[0]) - 0.5 * np.log(np.linalg.det(2 * np.pi * h))
        )
    # the direct path sums binned nodes (256^2 grid): log error ~ |grad log f| * cell
    np.testing.assert_allclose(lp, ref, atol=0.5)
    assert np.all(fit.pdf(far[:2]) > 0.0)


def test_integer_weights_equal_repeated_data() -> None:
    rng = np.random.default_rng(12)
    x = rng.exponential(size=(150, 2))
    w = rng.integers(1, 4, size=150)
    a = fit_nd(x, w.astype(float), [(0.0, None), (0.0, None)], "linear", 0.5, grid_size=64)
    b = fit_nd(
        np.repeat(x, w, axis=0), None, [(0.0, None), (0.0, None)], "linear", 0.5, grid_size=64
    )
    assert a.n_eff == pytest.approx(w.sum() ** 2 / (w**2).sum())
    pts = rng.exponential(size=(50, 2))
    # Same H needs the same covariance: weighted (reliability) vs repeated data differ by
    # the n-1 correction, so compare at a fixed matrix.
    a = fit_nd(x, w.astype(float), [(0.0, None), (0.0, None)], "linear", b.bandwidth, grid_size=64)
    np.testing.assert_allclose(a.pdf(pts), b.pdf(pts), rtol=1e-9)


def test_multilinear_binning_hand_case_and_additivity() -> None:
    """A point at (0.25, 0.5) on the 2x2 grid of [0, 1]^2 gives the nodes the products of
    its linear weights (0.75, 0.25) x (0.5, 0.5); binning is additive over data splits
    and keeps the total weight and the weighted mean exactly (Wand and Jones 1995)."""
    got = multilinear_binning(np.array([[0.25, 0.5]]), None, [0.0, 0.0], [1.0, 1.0], [2, 2])
    np.testing.assert_allclose(got, [[0.375, 0.375], [0.125, 0.125]], rtol=0, atol=1e-15)
    rng = np.random.default_rng(21)
    x = rng.uniform(size=(400, 3))
    w = rng.uniform(size=400)
    args = ([0.0] * 3, [1.0] * 3, [7, 5, 6])
    full = multilinear_binning(x, w, *args)
    split = multilinear_binning(x[:150], w[:150], *args) + multilinear_binning(
        x[150:], w[150:], *args
    )
    np.testing.assert_allclose(full, split, rtol=0, atol=1e-12)
    assert full.sum() == pytest.approx(w.sum(), rel=1e-12)
    nodes = np.meshgrid(*[np.linspace(0, 1, k) for k in (7, 5, 6)], indexing="ij")
    for i in range(3):
        mean = float((full * nodes[i]).sum() / full.sum())
        assert mean == pytest.approx(float(w @ x[:, i] / w.sum()), rel=1e-12)


def test_cdf_is_the_integral_of_pdf() -> None:
    """On the product lattice with reflect, cdf(x, y) = F0(x) F1(y) of the 1-D fits; the
    cdf is 0 below the box, 1 at its top corner and monotone."""
    rng = np.random.default_rng(13)
    a = rng.exponential(size=40)
    b = rng.uniform(size=40)
    bounds: Bounds = [(0.0, None), (0.0, 1.0)]
    h = np.array([0.3, 0.1])
    fit = fit_nd(_lattice(a, b), None, bounds, "reflect", np.diag(h**2), grid_size=200)
    k0 = BoundedKDE(bounds=bounds[0], method="reflect", bandwidth=h[0]).fit(a)
    k1 = BoundedKDE(bounds=bounds[1], method="reflect", bandwidth=h[1]).fit(b)
    pts = _lattice(np.linspace(0.1, 4.0, 9), np.linspace(0.05, 1.0, 7))
    np.testing.assert_allclose(fit.cdf(pts), k0.cdf(pts[:, 0]) * k1.cdf(pts[:, 1]), atol=5e-3)
    assert fit.cdf([[-1.0, 0.5], [2.0, -0.1]]).tolist() == [0.0, 0.0]
    assert fit.cdf([[1e6, 5.0]])[0] == pytest.approx(1.0, abs=1e-12)
    line = np.column_stack([np.linspace(0, 6, 50), np.full(50, 0.7)])
    assert np.all(np.diff(fit.cdf(line)) >= -1e-15)


@pytest.mark.parametrize("method", ["linear", "transform"])
def test_samples_pass_two_sample_tests(method: str) -> None:
    """4000 draws vs the estimate: per-axis KS against its marginal cdf, and a 5x5 binned
    chi-square against cell masses from the cdf (inclusion-exclusion). alpha = 1e-3,
    seeded; a sampler from the unbounded or a wrong density fails both by far."""
    rng = np.random.default_rng(14)
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, -0.5], [-0.5, 1.0]], size=1500)
    x = np.column_stack([np.exp(0.6 * z[:, 0]), stats.norm.cdf(z[:, 1])])
    bounds: Bounds = [(0.0, None), (0.0, 1.0)]
    fit = fit_nd(x, None, bounds, method, "scott", grid_size=128)
    s = fit.sample(4000, random_state=15)
    assert s.shape == (4000, 2)
    assert np.all(s[:, 0] >= 0.0)
    assert np.all((s[:, 1] >= 0.0) & (s[:, 1] <= 1.0))
    big = 1e9
    p0 = stats.kstest(
        s[:, 0], lambda t: fit.cdf(np.column_stack([t, np.full(t.shape, big)]))
    ).pvalue
    p1 = stats.kstest(
        s[:, 1], lambda t: fit.cdf(np.column_stack([np.full(t.shape, big), t]))
    ).pvalue
    assert p0 > 1e-3
    assert p1 > 1e-3
    ex = np.quantile(s[:, 0], [0.2, 0.4, 0.6, 0.8])
    ey = np.quantile(s[:, 1], [0.2, 0.4, 0.6, 0.8])
    gx = np.concatenate([[0.0], ex, [big]])
    gy = np.concatenate([[0.0], ey, [1.0]])
    corner = fit.cdf(_lattice(gx, gy)).reshape(gx.size, gy.size)
    mass = corner[1:, 1:] - corner[:-1, 1:] - corner[1:, :-1] + corner[:-1, :-1]
    obs, _, _ = np.histogram2d(s[:, 0], s[:, 1], bins=[gx, gy])
    chi2 = stats.chisquare(obs.ravel(), mass.ravel() * s.shape[0] / mass.sum())
    assert chi2.pvalue > 1e-3


def test_hdr_levels_of_a_gaussian() -> None:
    """For a 2-D Gaussian the superlevel set {f >= c} has mass 1 - c/f_max, so the level
    for mass p is f_max (1 - p). The estimate of a large Gaussian sample is close to the
    Gaussian N(0, S + H); 4% tolerance for sampling and smoothing."""
    rng = np.random.default_rng(16)
    x = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.5], [0.5, 2.0]], size=20000)
    fit = fit_nd(x, None, None, "reflect", "scott")
    cov = np.cov(x.T) + fit.bandwidth
    fmax = 1.0 / (2 * np.pi * np.sqrt(np.linalg.det(cov)))
    levels = fit.hdr_levels((0.5, 0.68, 0.95))
    np.testing.assert_allclose(
        levels, fmax * (1 - np.array([0.5, 0.68, 0.95])), rtol=4e-2, atol=2e-4
    )
    assert np.all(np.diff(levels) < 0)


def test_bandwidth_conventions() -> None:
    rng = np.random.default_rng(17)
    x = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 0.5]], size=1000)
    cov = np.cov(x.T)
    scott = fit_nd(x, None, None, "reflect", "scott", grid_size=32)
    np.testing.assert_allclose(scott.bandwidth, 1000 ** (-2 / 6) * cov)  # Scott 1992, d=2
    silv = fit_nd(x, None, None, "reflect", "silverman", grid_size=32)
    np.testing.assert_allclose(silv.bandwidth, (1000 * 4 / 4) ** (-2 / 6) * cov)
    flt = fit_nd(x, None, None, "reflect", 0.3, grid_size=32)
    np.testing.assert_allclose(flt.bandwidth, 0.09 * cov)
    mat = np.array([[0.2, 0.05], [0.05, 0.1]])
    np.testing.assert_allclose(fit_nd(x, None, None, "reflect", mat, grid_size=32).bandwidth, mat)
    call = fit_nd(x, None, None, "reflect", lambda z, w: 0.3, grid_size=32)
    np.testing.assert_allclose(call.bandwidth, flt.bandwidth)
    isj = fit_nd(x, None, None, "reflect", "isj", grid_size=32)
    corr = isj.bandwidth[0, 1] / np.sqrt(isj.bandwidth[0, 0] * isj.bandwidth[1, 1])
    assert corr == pytest.approx(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]))


def test_mbc_scale_reduces_to_the_1d_rule() -> None:
    """The d-dimensional normal-reference MBC ratio equals the 1-D core's at d = 1, and
    grows like n**(1/(d+4) - 1/(d+8)) (here d = 2: n**(1/15))."""
    for n in (500.0, 5000.0, 1e6):
        assert mbc_scale_nd(n, 1) == pytest.approx(mbc_scale(n), rel=1e-12)
    assert mbc_scale_nd(20000.0, 2) / mbc_scale_nd(2000.0, 2) == pytest.approx(10 ** (1 / 15))
    rng = np.random.default_rng(19)
    x = rng.uniform(size=(500, 2))
    plain = fit_nd(x, None, [(0.0, 1.0), (0.0, 1.0)], "linear", "scott", grid_size=32)
    mbc = fit_nd(x, None, [(0.0, 1.0), (0.0, 1.0)], "linear-mbc", "scott", grid_size=32)
    np.testing.assert_allclose(mbc.bandwidth, plain.bandwidth * mbc_scale_nd(500.0, 2) ** 2)
    # a user matrix is used as given
    h = np.diag([0.01, 0.02])
    np.testing.assert_allclose(fit_nd(x, None, None, "linear-mbc", h, grid_size=32).bandwidth, h)


def test_mbc_beats_plain_linear_on_a_smooth_density() -> None:
    """JLN's correction removes the O(h^2) interior bias: on a bivariate normal (no active
    bounds), at the same H, the bias-corrected peak is closer to the truth. Hand value:
    the peak of N(0, I) is 1/(2 pi) = 0.159; the plain KDE's is 1/(2 pi (1 + h^2))."""
    rng = np.random.default_rng(20)
    x = rng.normal(size=(20000, 2))
    h = np.eye(2) * 0.25
    plain = fit_nd(x, None, None, "linear", h).pdf([[0.0, 0.0]])[0]
    mbc = fit_nd(x, None, None, "linear-mbc", h).pdf([[0.0, 0.0]])[0]
    truth = 1 / (2 * np.pi)
    assert plain == pytest.approx(truth / 1.25, rel=0.05)
    assert abs(mbc - truth) < 0.5 * abs(plain - truth)


def test_auto_picks_transform_at_a_pole_only() -> None:
    rng = np.random.default_rng(18)
    x = np.column_stack([rng.beta(0.5, 1.0, size=3000), rng.uniform(size=3000)])
    fit = fit_nd(x, None, [(0.0, 1.0), (0.0, 1.0)], "auto", "scott")
    assert fit.method == ("transform", "linear-mbc")
    # f(x) = 0.5 x**-0.5 * 1: at (0.01, 0.5) the truth is 5
    assert fit.pdf([[0.01, 0.5]])[0] == pytest.approx(5.0, rel=0.25)


def test_auto_transforms_axes_whose_density_vanishes_at_every_bound() -> None:
    """Beta(2, 5) vanishes at 0 and 1: transformed (and, with every axis transformed, the
    MBC is applied in the transformed coordinates); the triangle 2y vanishes at 0 only
    and keeps the linear boundary kernel."""
    rng = np.random.default_rng(19)
    x = np.column_stack([rng.beta(2.0, 5.0, size=3000), np.sqrt(rng.uniform(size=3000))])
    fit = fit_nd(x, None, [(0.0, 1.0), (0.0, 1.0)], "auto", "isj")
    assert fit.method == ("transform", "linear-mbc")
    y = np.column_stack([rng.beta(2.0, 5.0, size=3000), rng.beta(5.0, 2.0, size=3000)])
    both = fit_nd(y, None, [(0.0, 1.0), (0.0, 1.0)], "auto", "isj")
    assert both.method == ("transform", "transform")
    plain = fit_nd(y, None, [(0.0, 1.0), (0.0, 1.0)], "transform", "isj")
    # auto applies the MBC (and its larger bandwidth) in z; explicit "transform" does not.
    assert np.all(np.diag(both.bandwidth) > np.diag(plain.bandwidth))
    truth = stats.beta(2, 5).pdf(0.2) * stats.beta(5, 2).pdf(0.8)
    assert both.pdf([[0.2, 0.8]])[0] == pytest.approx(truth, rel=0.15)


def test_auto_applies_the_1d_scale_check_per_axis() -> None:
    """As in 1-D: an axis whose data sit far from its bound (heights-like N(5, 1) on
    [0, inf)) or whose log is the harder scale (Weibull(3)) keeps linear-mbc; a Gamma(2)
    axis is still transformed."""
    rng = np.random.default_rng(20)
    n = 3000
    x = np.column_stack([np.abs(rng.normal(5.0, 1.0, size=n)), rng.gamma(2.0, size=n)])
    fit = fit_nd(x, None, [(0.0, None), (0.0, None)], "auto", "isj")
    assert fit.method == ("linear-mbc", "transform")
    for axis, col in enumerate(x.T):
        one = BoundedKDE(bounds=(0.0, None)).fit(col)
        assert (one.method_ == "transform-mbc") == (fit.method[axis] == "transform")
    y = np.column_stack([rng.weibull(3.0, size=n), rng.uniform(size=n)])
    assert fit_nd(y, None, [(0.0, None), (0.0, 1.0)], "auto", "isj").method == (
        "linear-mbc",
        "linear-mbc",
    )


# ----------------------------------------------------------------------- errors


def _x2() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.1, 0.9, size=(50, 2))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"x": np.zeros((10, 4))}, ValueError, r"d=4 columns.*supports d <= 3"),
        ({"x": np.zeros(10)}, ValueError, r"x must have shape \(n, d\)"),
        ({"x": np.zeros((10, 1))}, ValueError, r"d in \{2, 3\}.*use BoundedKDE"),
        (
            {"bounds": [(0, 1)]},
            ValueError,
            r"one \(lower, upper\) pair per column of x: expected 2",
        ),
        ({"bounds": [(0, 1), (0, 1), (0, 1)]}, ValueError, r"expected 2 pairs"),
        ({"bounds": [(1, 0), (0, 1)]}, ValueError, r"axis 0 must satisfy lower < upper"),
        ({"bounds": [(0, 1), (0.5, None)]}, ValueError, r"points outside the bounds on axis 1"),
        ({"method": "cubic"}, ValueError, r"method must be one of \['auto', 'linear'"),
        ({"method": ["reflect", "linear"]}, ValueError, r"not mixed"),
        ({"method": ["reflect"]}, ValueError, r"sequence of 2 names"),
        ({"kernel": "epanechnikov"}, ValueError, r"kernel must be 'gaussian' for d >= 2"),
        ({"bandwidth": "bogus"}, ValueError, r"bandwidth must be one of \['isj', 'scott'"),
        ({"bandwidth": -1.0}, ValueError, r"finite and > 0"),
        ({"bandwidth": np.eye(3)}, ValueError, r"shape \(2, 2\)"),
        ({"bandwidth": np.array([[1.0, 2.0], [2.0, 1.0]])}, ValueError, r"positive definite"),
        ({"bandwidth": np.array([[1.0, 0.5], [0.0, 1.0]])}, ValueError, r"symmetric"),
        ({"bandwidth": True}, TypeError, r"bandwidth must be"),
        ({"weights": np.ones(3)}, ValueError, r"weights must have shape \(50,\)"),
        ({"weights": -np.ones(50)}, ValueError, r"weights must be >= 0"),
        ({"weights": np.zeros(50)}, ValueError, r"must not all be zero"),
        ({"grid_size": 4}, ValueError, r"grid_size must be an int >= 8"),
        ({"grid_size": (64, 64, 64)}, ValueError, r"sequence of 2 such ints"),
    ],
)
def test_error_messages(kwargs: dict[str, object], exc: type[Exception], match: str) -> None:
    args: dict[str, object] = {
        "x": _x2(),
        "weights": None,
        "bounds": [(0.0, 1.0), (0.0, 1.0)],
        "method": "reflect",
        "bandwidth": "scott",
        "kernel": "gaussian",
        "grid_size": 32,
    }
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fit_nd(**args)  # type: ignore[arg-type]


def test_outside_error_counts_points_per_axis() -> None:
    x = _x2()
    x[:3, 1] = 1.5
    with pytest.raises(ValueError, match=r"3 points outside the bounds on axis 1 \(0 below"):
        fit_nd(x, None, [(0.0, 1.0), (0.0, 1.0)], "reflect", "scott")


def test_nan_error() -> None:
    x = _x2()
    x[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"finite; got 1 rows with NaN or inf \(on axes \[0\]\)"):
        fit_nd(x, None, None, "reflect", "scott")


def test_singular_covariance_names_the_collinear_axes() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    x = np.column_stack([a, rng.normal(size=200), 2.0 * a + 1.0])
    with pytest.raises(ValueError, match=r"singular: axes \[0, 2\] are collinear"):
        fit_nd(x, None, None, "reflect", "scott")
    x2 = np.column_stack([a, np.full(200, 3.0)])
    with pytest.raises(ValueError, match=r"axes \[1\] have zero variance"):
        fit_nd(x2, None, None, "reflect", "silverman")
    # a user matrix needs no covariance: collinear data are fine then
    fit = fit_nd(x, None, None, "reflect", np.eye(3) * 0.1, grid_size=16)
    assert fit.d == 3


def test_transform_with_data_on_a_bound() -> None:
    x = _x2()
    x[0, 0] = 0.0
    with pytest.raises(ValueError, match=r"'transform' on axis 0 needs data strictly inside"):
        fit_nd(x, None, [(0.0, 1.0), (0.0, 1.0)], "transform", "scott")


def test_method_registry_and_marginal_errors() -> None:
    assert set(ND_METHODS) == {"auto", "linear", "linear-mbc", "reflect", "renorm", "transform"}
    fit = fit_nd(_x2(), None, [(0.0, 1.0), (0.0, 1.0)], "reflect", "scott", grid_size=16)
    with pytest.raises(ValueError, match=r"needs at least 2 axes.*marginal_1d_params\(1\)"):
        fit.marginal([1])
    with pytest.raises(ValueError, match=r"distinct integers in \[0, 1\]"):
        fit.marginal([0, 0])
    with pytest.raises(ValueError, match=r"points must have shape \(m, 2\)"):
        fit.pdf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"probs must be a sequence of numbers in \(0, 1\)"):
        fit.hdr_levels([0.5, 1.5])
    with pytest.raises(ValueError, match=r"n must be a non-negative int"):
        fit.sample(-1)


@pytest.mark.parametrize("offset", [0.0, 1e5])
def test_weighted_cov_matches_numpy(offset: float) -> None:
    # The unweighted one-pass path (and its centred fallback for large offsets) against
    # numpy.cov; the weighted path against numpy.cov(aweights=w).
    from boundedkde.multivariate import _weighted_cov

    rng = np.random.default_rng(5)
    x = np.asfortranarray(rng.normal(size=(4000, 3)) @ [[1, 0.5, 0], [0, 1, 0.3], [0, 0, 2]])
    x = x + offset
    np.testing.assert_allclose(_weighted_cov(x, None), np.cov(x.T), rtol=1e-9, atol=1e-12)
    w = rng.uniform(0.1, 3.0, size=4000)
    np.testing.assert_allclose(_weighted_cov(x, w), np.cov(x.T, aweights=w), rtol=1e-9)


def test_inf_error_names_axis() -> None:
    x = np.random.default_rng(1).uniform(size=(50, 3))
    x[7, 2] = np.inf
    with pytest.raises(ValueError, match=r"finite; got 1 rows with NaN or inf \(on axes \[2\]\)"):
        fit_nd(x, None, [(None, None)] * 3)


def test_observations_on_a_bound_are_left_out_of_an_axis_bandwidth(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 10 % zeros on a [0, inf) axis: ISJ resolved them as a spike and the axis fell back
    # to Silverman with a message calling the data discrete; now the ISJ bandwidth comes
    # from the other observations, as in 1-D.
    rng = np.random.default_rng(0)
    x = rng.exponential(size=2000)
    x[:200] = 0.0
    X = np.column_stack([x, rng.normal(size=2000)])
    with caplog.at_level(logging.WARNING, logger="boundedkde.multivariate"):
        kde = BoundedKDE(bounds=[(0, None), (None, None)]).fit(X)
    assert "lie exactly on a bound of axis 0" in caplog.text
    assert "look discrete" not in caplog.text
    alone = BoundedKDE(bounds=[(0, None), (None, None)]).fit(X[200:])
    sd = np.sqrt(np.diag(kde.bandwidth_))
    sd_alone = np.sqrt(np.diag(alone.bandwidth_))
    np.testing.assert_allclose(sd, sd_alone, rtol=0.1)
    pts = np.array([[0.5, 0.0], [1.0, 0.0], [2.0, 0.0]])
    np.testing.assert_allclose(kde.pdf(pts), 0.9 * alone.pdf(pts), rtol=0.05)
