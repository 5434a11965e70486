"""A density that is linear between equidistant nodes: the fitted state of the estimator.

Interpolating the grid estimate linearly makes it a bona fide density: its integral is
exactly the trapezoid sum of the node values, its distribution function is the exact
(piecewise quadratic) integral, and the quantile function solves that quadratic. So the
pdf, cdf, ppf and sampler all describe one and the same distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PiecewiseLinearDensity:
    """Node values ``values`` at ``start + i * spacing``, normalised to unit mass."""

    start: float
    spacing: float
    values: FloatArray
    cum: FloatArray

    @classmethod
    def from_values(
        cls, start: float, spacing: float, values: FloatArray
    ) -> PiecewiseLinearDensity:
        v = np.maximum(np.asarray(values, dtype=float), 0.0)
        cells = 0.5 * spacing * (v[:-1] + v[1:])
        total = float(cells.sum())
        if not (np.isfinite(total) and total > 0):
            raise ValueError(
                "the density estimate has no positive mass on its grid; the bandwidth is "
                "probably far smaller than the grid spacing (increase grid_size)"
            )
        v = v / total
        cum = np.concatenate([[0.0], np.cumsum(cells / total)])
        cum[-1] = 1.0
        return cls(start=float(start), spacing=float(spacing), values=v, cum=cum)

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def end(self) -> float:
        return self.start + (self.size - 1) * self.spacing

    def nodes(self) -> FloatArray:
        out = self.start + self.spacing * np.arange(self.size, dtype=float)
        out[-1] = self.end
        return out

    def pdf(self, y: FloatArray) -> FloatArray:
        t = (np.asarray(y, dtype=float) - self.start) / self.spacing
        inside = (t >= 0) & (t <= self.size - 1)
        i = np.clip(np.floor(t), 0, self.size - 2).astype(np.intp)
        s = np.clip(t - i, 0.0, 1.0)
        vals = self.values[i] * (1.0 - s) + self.values[i + 1] * s
        return np.where(inside, vals, 0.0)

    def cdf(self, y: FloatArray) -> FloatArray:
        t = (np.asarray(y, dtype=float) - self.start) / self.spacing
        i = np.clip(np.floor(np.nan_to_num(t, posinf=self.size, neginf=-1.0)), 0, self.size - 2)
        i = i.astype(np.intp)
        s = np.clip(t - i, 0.0, 1.0)
        a = self.values[i]
        b = self.values[i + 1] - a
        out = self.cum[i] + self.spacing * (a * s + 0.5 * b * s * s)
        out = np.where(t >= self.size - 1, 1.0, np.where(t <= 0, 0.0, out))
        return np.clip(out, 0.0, 1.0)

    def ppf(self, p: FloatArray) -> FloatArray:
        pa = np.asarray(p, dtype=float)
        i = np.clip(np.searchsorted(self.cum, pa, side="right") - 1, 0, self.size - 2)
        q = np.maximum(pa - self.cum[i], 0.0) / self.spacing
        a = self.values[i]
        b = self.values[i + 1] - a
        # Solve a s + b s^2 / 2 = q for s in [0, 1], in the cancellation-free form.
        root = np.sqrt(np.maximum(a * a + 2.0 * b * q, 0.0))
        denom = a + root
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(denom > 0, 2.0 * q / denom, 0.0)
        s = np.clip(s, 0.0, 1.0)
        return np.asarray(self.start + (i + s) * self.spacing, dtype=float)
