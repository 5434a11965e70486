"""The smoothed-bootstrap bandwidth rule for the bias-corrected estimator ("bootstrap-mbc").

Oracles: closed forms of the JLN (1995) variance, numerical quadrature of the Fourier
integrals, the normal-reference AMISE-optimal bandwidth of the (unnormalised) JLN
estimator, a Monte Carlo variance, and the exact-MISE minimiser for a known density.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from boundedkde import BoundedKDE, _plugin
from boundedkde.bandwidth import (
    BANDWIDTHS,
    bootstrap_mbc,
    bootstrap_mbc_bandwidth,
    mbc_scale,
)
from boundedkde.binning import grid_nodes, linear_binning
from boundedkde.boundary import linear_mbc
from boundedkde.kernels import KERNELS
from scipy import integrate, optimize, stats

GAUSS = KERNELS["gaussian"]
SQRT_PI = math.sqrt(math.pi)
#: R(2K - K*K) for the Gaussian: 4 R(phi) - 4 phi_sqrt3(0) + R(phi_sqrt2)
#: (docs/boundedkde/concepts.md, "Bandwidth for the bias-corrected estimator").
R_MBC = (
    4.0 / (2.0 * SQRT_PI) - 4.0 / math.sqrt(6.0 * math.pi) + 1.0 / (2.0 * math.sqrt(2.0 * math.pi))
)


def _phi_star(s: np.ndarray | float) -> np.ndarray | float:
    return 2.0 * np.exp(-0.5 * np.square(s)) - np.exp(-np.square(s))


def _density_on_grid(
    pdf: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, m: int
) -> tuple[np.ndarray, float]:
    x = grid_nodes(lo, hi, m)
    dx = (hi - lo) / (m - 1)
    f: np.ndarray = np.array(pdf(x), dtype=np.float64)
    f /= dx * (f.sum() - 0.5 * (f[0] + f[-1]))
    return f, dx


def test_registered() -> None:
    assert BANDWIDTHS["bootstrap-mbc"] is bootstrap_mbc


def test_variance_constant_matches_closed_form() -> None:
    # R(2K - K*K) = 0.40653 (concepts.md); mbc_variance is R/(nh).
    assert pytest.approx(0.40653, abs=1e-5) == R_MBC
    for h, n in ((0.3, 100.0), (1.7, 5000.0)):
        assert _plugin.mbc_variance(h, n) == pytest.approx(R_MBC / (n * h), rel=1e-12)


@pytest.mark.parametrize(("h", "p"), [(0.3, 0.4), (0.05, 0.2), (1.0, 0.1)])
def test_pilot_noise_matches_quadrature(h: float, p: float) -> None:
    # (1/2 pi n) int (phi*(ht) - 1)^2 phi*(pt)^2 dt, by adaptive quadrature.
    def integrand(t: float) -> float:
        return float((_phi_star(h * t) - 1.0) ** 2 * _phi_star(p * t) ** 2)

    value = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13)[0] / (2.0 * math.pi)
    assert _plugin.pilot_noise(h, p, 10.0) == pytest.approx(value / 10.0, rel=1e-8)


def test_boundary_profile_limits() -> None:
    c, r = _plugin.boundary_variance_profile()
    assert c[0] == 0.0
    assert c[-1] == pytest.approx(8.0)
    # Interior: the JLN variance constant; at the bound the boundary kernels inflate it.
    assert r[-1] == pytest.approx(R_MBC, rel=1e-6)
    assert r[0] > 3.0 * R_MBC
    assert np.all(r >= R_MBC - 1e-9)


def test_domain_variance_matches_simulation() -> None:
    # Half-normal, n = 500, h = 0.46: the simulated integrated variance of the
    # estimator, against the linearised formula (the asymptotic R/(nh) is 40% high).
    lo, hi, m, n, h = 0.0, 6.0, 1025, 500, 0.46
    f, dx = _density_on_grid(stats.halfnorm.pdf, lo, hi, m)
    fits = []
    for seed in range(60):
        x = np.abs(np.random.default_rng(seed).standard_normal(n))
        x = x[x < hi]
        c = linear_binning(x, None, lo, hi, m)
        fits.append(_plugin.estimate(c / c.sum(), dx, h))
    sim = float(np.sum(np.var(np.array(fits), axis=0, ddof=1)) * dx)
    mean_fit = _plugin.estimate(_plugin.density_counts(f.copy(), dx), dx, h)
    predicted = _plugin.domain_variance(f, mean_fit, dx, h, float(n))
    assert abs(predicted - sim) < 0.2 * sim
    assert abs(predicted - sim) < abs(_plugin.mbc_variance(h, n) - sim)


def test_normal_reference_amise_bandwidth() -> None:
    # The exact squared bias of the (unnormalised) JLN estimator on N(0,1) plus its
    # asymptotic variance is minimised near h_MBC = (sqrt(pi) R)^(1/9) n^(-1/9)
    # (concepts.md), which holds for large n.
    lo, hi, m = -8.0, 8.0, 4097
    f, dx = _density_on_grid(stats.norm.pdf, lo, hi, m)
    counts = _plugin.density_counts(f.copy(), dx)
    n = 1e8

    def amise(log_h: float) -> float:
        h = math.exp(log_h)
        fit = linear_mbc(counts, dx, h, GAUSS, (True, True))
        return float(np.sum((fit - f) ** 2) * dx) + _plugin.mbc_variance(h, n)

    res = optimize.minimize_scalar(
        amise, bounds=(math.log(0.02), 0.0), method="bounded", options={"xatol": 1e-6}
    )
    h_mbc = (SQRT_PI * R_MBC) ** (1.0 / 9.0) * n ** (-1.0 / 9.0)
    assert math.exp(res.x) == pytest.approx(h_mbc, rel=0.02)


def test_normalisation_cancels_normal_leading_bias() -> None:
    # For N(0,1), f (f''/f)'' = 2 f is proportional to f, so the unit-mass estimate has no
    # h^4 bias term; the raw JLN estimate has -h^4 f / 2 (JLN 1995).
    lo, hi, m, h = -8.0, 8.0, 4097, 0.1
    f, dx = _density_on_grid(stats.norm.pdf, lo, hi, m)
    counts = _plugin.density_counts(f.copy(), dx)
    mid = m // 2
    raw = linear_mbc(counts, dx, h, GAUSS, (True, True))[mid]
    normed = _plugin.estimate(counts, dx, h)[mid]
    assert (raw - f[mid]) / f[mid] / h**4 == pytest.approx(-0.5, abs=0.02)
    assert abs((normed - f[mid]) / f[mid] / h**4) < 0.05


@pytest.mark.parametrize("n", [10**5, 10**6])
def test_bias_functional_converges_for_exponential(n: int) -> None:
    # The noise-corrected plug-in squared bias from a large sample approaches the exact
    # one computed from the true Exponential(1) density.
    lo, hi, m, h = 0.0, 12.0, 2049, 0.4
    f, dx = _density_on_grid(stats.expon.pdf, lo, hi, m)
    exact = float(
        np.sum((_plugin.estimate(_plugin.density_counts(f.copy(), dx), dx, h) - f) ** 2) * dx
    )
    x = np.random.default_rng(5).exponential(size=n)
    c = linear_binning(x[x < hi], None, lo, hi, m)
    pilot = 0.5 * 0.9642 * n ** (-1.0 / 9.0)  # half the normal-reference MBC bandwidth
    g = _plugin.estimate(c / c.sum(), dx, pilot)
    fit = _plugin.estimate(_plugin.density_counts(g.copy(), dx), dx, h)
    plug_in = float(np.sum((fit - g) ** 2) * dx) - _plugin.pilot_noise(h, pilot, float(n))
    assert plug_in == pytest.approx(exact, rel=0.15)


def test_rule_near_exact_mise_minimiser_for_exponential() -> None:
    lo, hi, m, n = 0.0, 14.0, 4097, 10**5
    f, dx = _density_on_grid(stats.expon.pdf, lo, hi, m)
    fc = _plugin.density_counts(f.copy(), dx)

    def mise(log_h: float) -> float:
        h = math.exp(log_h)
        fit = _plugin.estimate(fc, dx, h)
        return float(np.sum((fit - f) ** 2) * dx) + _plugin.domain_variance(f, fit, dx, h, n)

    res = optimize.minimize_scalar(
        mise, bounds=(math.log(0.02), math.log(2.0)), method="bounded", options={"xatol": 1e-4}
    )
    oracle = math.exp(res.x)  # 0.197 when written
    x = np.random.default_rng(0).exponential(size=n)
    ghi = float(x.max() + 0.1 * np.ptp(x))
    h = bootstrap_mbc_bandwidth(linear_binning(x, None, 0.0, ghi, 2**14), 0.0, ghi, float(n))
    assert h == pytest.approx(oracle, rel=0.2)


def test_flat_data_get_the_widest_bandwidth() -> None:
    x = np.random.default_rng(3).uniform(size=3000)
    c = linear_binning(x, None, 0.0, 1.0, 4096)
    assert bootstrap_mbc_bandwidth(c, 0.0, 1.0, 3000.0) > 0.9


def test_estimator_uses_the_rule_exactly() -> None:
    # bootstrap_mbc returns h / mbc_scale, which the estimator multiplies back for
    # linear-mbc: bandwidth_ is the bootstrap bandwidth on the estimator's own grid.
    x = np.random.default_rng(4).gamma(2.0, size=800)
    kde = BoundedKDE(bounds=(0.0, None), method="linear-mbc", bandwidth="bootstrap-mbc").fit(x)
    ghi = float(x.max() + 0.1 * (x.max() - x.min()))
    c = linear_binning(x, None, 0.0, ghi, 2**14)
    expected = bootstrap_mbc_bandwidth(c, 0.0, ghi, 800.0)
    assert kde.bandwidth_ == pytest.approx(expected, rel=1e-9)
    assert bootstrap_mbc(c, 0.0, ghi, 800.0) == pytest.approx(
        expected / mbc_scale(800.0), rel=1e-12
    )


def test_transform_mbc_takes_the_bootstrap_bandwidth_on_the_transformed_scale() -> None:
    # transform-mbc: the named rule (times mbc_scale) is only the pilot; the bandwidth is
    # the smoothed-bootstrap minimiser on the estimator's own grid of log(x).
    x = np.random.default_rng(5).lognormal(0.0, 0.5, size=800)
    kde = BoundedKDE(bounds=(0.0, None)).fit(x)
    assert (kde.method_, kde.transform_) == ("transform-mbc", "log")
    y = np.log(x)
    pad = 0.1 * (y.max() - y.min())
    glo, ghi = float(y.min() - pad), float(y.max() + pad)
    c = linear_binning(y, None, glo, ghi, 2**14)
    assert kde.bandwidth_ == pytest.approx(bootstrap_mbc_bandwidth(c, glo, ghi, 800.0), rel=1e-9)
    # a different named rule changes the pilot, and through it the result
    silver = BoundedKDE(bounds=(0.0, None), method="transform-mbc", bandwidth="silverman").fit(x)
    pilot = BANDWIDTHS["silverman"](c, glo, ghi, 800.0) * mbc_scale(800.0)
    assert silver.bandwidth_ == pytest.approx(
        bootstrap_mbc_bandwidth(c, glo, ghi, 800.0, pilot=pilot), rel=1e-9
    )
    with pytest.raises(ValueError, match="pilot"):
        bootstrap_mbc_bandwidth(c, glo, ghi, 800.0, pilot=-1.0)


def test_transform_mbc_bootstrap_beats_the_normal_reference_conversion() -> None:
    # Study in concepts.md ("Bandwidth for transform-mbc"): lognormal(0, 0.5), MISE 0.74
    # (n = 500) and 0.80 (n = 5000) times that of ISJ * mbc_scale on the log scale.
    # The old rule is rebuilt here as a callable (callables are used as they are).
    def old_rule(y: np.ndarray, w: np.ndarray | None) -> float:
        pad = 0.1 * (y.max() - y.min())
        lo, hi = float(y.min() - pad), float(y.max() + pad)
        c = linear_binning(y, None, lo, hi, 2**14)
        return float(BANDWIDTHS["isj"](c, lo, hi, float(y.size)) * mbc_scale(float(y.size)))

    mids = (np.arange(4000) + 0.5) * 8.0 / 4000
    truth = stats.lognorm(0.5).pdf(mids)
    ise: dict[str, list[float]] = {"default": [], "old": []}
    for seed in range(8):
        x = np.random.default_rng(100 + seed).lognormal(0.0, 0.5, size=1000)
        for key, bw in (("default", "isj"), ("old", old_rule)):
            kde = BoundedKDE(bounds=(0.0, None), method="transform-mbc", bandwidth=bw).fit(x)
            ise[key].append(float(np.mean((kde.pdf(mids) - truth) ** 2)))
    assert np.mean(ise["default"]) < 0.9 * np.mean(ise["old"])


@pytest.mark.parametrize(
    ("counts", "lo", "hi", "n_eff", "match"),
    [
        (np.zeros(10), 0.0, 1.0, 10.0, "counts"),
        (np.ones((3, 3)), 0.0, 1.0, 10.0, "counts"),
        (np.array([1.0, -1.0, 2.0]), 0.0, 1.0, 10.0, "counts"),
        (np.ones(10), 1.0, 0.0, 10.0, "lo < hi"),
        (np.ones(10), 0.0, 1.0, 0.0, "n_eff"),
    ],
)
def test_bad_input(counts: np.ndarray, lo: float, hi: float, n_eff: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bootstrap_mbc_bandwidth(counts, lo, hi, n_eff)
