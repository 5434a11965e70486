"""Grid primitives for the 2-D and 3-D estimator (private).

Pure functions on arrays: multilinear binning, the discrete Gaussian stencil, FFT
convolution, reflection by folding, box moments for renormalisation and the linear
boundary kernel, multilinear interpolation, cumulative integrals and exact sampling
from the multilinear interpolant. :mod:`boundedkde.multivariate` sequences them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from .binning import CHUNK_ROWS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
#: Per-axis numbers (lower ends, steps): a sequence or a 1-D array.
Vec = Sequence[float] | FloatArray

__all__: list[str] = []


def column_moments(
    x: FloatArray, weights: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-column minima and maxima and the (weighted) moment sums, in one chunked pass.

    Returns ``(xmin, xmax, s1, s2)`` with ``s1[i] = sum w x_i`` and
    ``s2[i, j] = sum w x_i x_j`` (``w = 1`` when ``weights`` is None); NaN propagates into
    the minima and maxima. Works on C- or Fortran-ordered ``x``: each chunk of
    :data:`boundedkde.binning.CHUNK_ROWS` rows is copied column-wise into a small buffer,
    so no full Fortran copy of the data is made and the data are read once.
    """
    m, d = x.shape
    xmin = np.full(d, np.inf)
    xmax = np.full(d, -np.inf)
    s1 = np.zeros(d)
    s2 = np.zeros((d, d))
    buf = np.empty((d, min(CHUNK_ROWS, m)))
    for s in range(0, m, CHUNK_ROWS):
        e = min(m, s + CHUNK_ROWS)
        cols = buf[:, : e - s]
        np.copyto(cols, x[s:e].T)
        np.minimum(xmin, cols.min(axis=1), out=xmin)
        np.maximum(xmax, cols.max(axis=1), out=xmax)
        wk = None if weights is None else weights[s:e]
        for i in range(d):
            wx = cols[i] if wk is None else cols[i] * wk
            s1[i] += float(wx.sum())
            for j in range(i, d):
                # einsum, not BLAS: a threaded ddot stalls on a busy machine.
                s2[i, j] += float(np.einsum("i,i->", wx, cols[j]))
    s2 = np.triu(s2) + np.triu(s2, 1).T
    return xmin, xmax, s1, s2


def multilinear_binning(
    x: FloatArray,
    weights: FloatArray | None,
    lo: Vec,
    hi: Vec,
    n: Sequence[int],
) -> FloatArray:
    """:func:`binning_pass` without marginal histograms: the multilinear counts only."""
    return binning_pass(x, weights, lo, hi, n)[0]


def binning_pass(
    x: FloatArray,
    weights: FloatArray | None,
    lo: Vec,
    hi: Vec,
    n: Sequence[int],
    marginals: Sequence[tuple[float, float, int] | None] | None = None,
) -> tuple[FloatArray, list[FloatArray | None]]:
    """Spread weighted points onto the nodes of a regular d-dimensional grid.

    Each point gives each of the 2**d nodes of its cell the product over axes of the
    linear-binning weights (1 - t) and t, where t is its fractional position in the cell
    (Wand and Jones 1995, "Kernel Smoothing", appendix D; Fan and Marron 1994).  The
    result is additive over data splits and preserves the total weight and the weighted
    mean exactly.  Points must already lie in ``[lo, hi]`` on every axis.

    The pass runs over chunks of :data:`boundedkde.binning.CHUNK_ROWS` rows. In the same
    pass it can also build per-axis nearest-node histograms (``marginals``), the input
    of the per-axis ISJ bandwidth, so that the data are read once for both.

    Parameters
    ----------
    x : ndarray, shape (m, d)
    weights : ndarray, shape (m,), or None for unit weights
    lo, hi : sequence of d floats, the first and last node on each axis
    n : sequence of d ints >= 2, nodes per axis
    marginals : sequence of d entries ``(glo, ghi, k)`` or None, optional
        For each axis with an entry, also return the nearest-node histogram on the ``k``
        nodes from ``glo`` to ``ghi`` (exactly :func:`boundedkde.binning.nearest_binning`);
        the axis' points must lie in ``[glo, ghi]``.

    Returns
    -------
    (counts, histograms): counts of shape ``tuple(n)``, the summed weights at the nodes;
    one nearest-node histogram per axis that has a ``marginals`` entry (else None).
    """
    d = x.shape[1]
    m = x.shape[0]
    shape = tuple(int(k) for k in n)
    size = int(np.prod(shape))
    strides = [int(np.prod(shape[i + 1 :])) for i in range(d)]
    scale = [(shape[i] - 1) / (hi[i] - lo[i]) for i in range(d)]
    subsets = list(
        itertools.chain.from_iterable(itertools.combinations(range(d), k) for k in range(d + 1))
    )
    # Inclusion-exclusion: bin the products P_T = w prod_{i in T} t_i for every subset T
    # of axes (2**d bincounts, one multiply each), then corner (bits c) gets
    # sum_{T >= C} (-1)**|T - C| P_T, where C = {i: c_i = 1}; so 1 - t is never formed.
    sums: dict[tuple[int, ...], FloatArray] = {s: np.zeros(size) for s in subsets}
    marg = list(marginals) if marginals is not None else [None] * d
    hists: list[FloatArray | None] = [None if g is None else np.zeros(g[2]) for g in marg]
    step = CHUNK_ROWS
    idx = np.empty(min(step, m), dtype=np.intp)
    gidx = np.empty(min(step, m), dtype=np.intp)
    buf = np.empty((d, min(step, m)))
    for s in range(0, m, step):
        e = min(m, s + step)
        k = e - s
        base = idx[:k]
        wk = None if weights is None else weights[s:e]
        # Columns of the chunk, contiguous (x may be C- or Fortran-ordered).
        cols = buf[:, :k]
        np.copyto(cols, x[s:e].T)
        frac: list[FloatArray] = []
        for i in range(d):
            col = cols[i]
            spec = marg[i]
            if spec is not None:
                glo, ghi, gk = spec
                gs = (gk - 1) / (ghi - glo)
                u = np.multiply(col, gs)
                u += 0.5 - glo * gs  # nearest node = floor(position + 1/2)
                gi = gidx[:k]
                np.copyto(gi, u, casting="unsafe")
                np.minimum(gi, gk - 1, out=gi)
                hist = hists[i]
                assert hist is not None
                hist += np.bincount(gi, weights=wk, minlength=gk)
            t = col  # the chunk buffer's row, transformed in place
            t -= lo[i]
            t *= scale[i]
            # t >= 0 (points are inside the grid), so truncation is the floor.
            if i == 0:
                np.copyto(base, t, casting="unsafe")
                np.minimum(base, shape[0] - 2, out=base)
                t -= base
                if strides[0] != 1:
                    base *= strides[0]
            else:
                ti = gidx[:k]
                np.copyto(ti, t, casting="unsafe")
                np.minimum(ti, shape[i] - 2, out=ti)
                t -= ti
                if strides[i] != 1:
                    ti *= strides[i]
                base += ti
            frac.append(t)
        prods: dict[tuple[int, ...], FloatArray | None] = {(): wk}
        for subset in subsets:
            p: FloatArray | None = wk
            if subset:
                prev = prods[subset[:-1]]
                p = frac[subset[-1]] if prev is None else prev * frac[subset[-1]]
                if len(subset) < d:
                    prods[subset] = p
            sums[subset] += np.bincount(base, weights=p, minlength=size)
    out = np.zeros(size)
    for corner in itertools.product((0, 1), repeat=d):
        ones = tuple(i for i in range(d) if corner[i])
        rest = [i for i in range(d) if not corner[i]]
        acc = np.zeros(size)
        for k in range(len(rest) + 1):
            for extra in itertools.combinations(rest, k):
                key = tuple(sorted(ones + extra))
                acc += sums[key] if k % 2 == 0 else -sums[key]
        offset = sum(c * st for c, st in zip(corner, strides, strict=True))
        out[offset:] += acc[: size - offset]
    return out.reshape(shape), hists


def gaussian_stencil(
    cov: FloatArray, step: Vec, half: Sequence[int]
) -> tuple[FloatArray, list[FloatArray]]:
    """The Gaussian kernel with covariance ``cov`` on grid offsets, normalised to sum 1.

    Parameters
    ----------
    cov : ndarray (d, d), the kernel covariance H in grid units' data scale
    step : node spacing per axis
    half : half-width of the stencil per axis, in nodes

    Returns
    -------
    (kernel, offsets): kernel of shape ``2*half+1`` per axis summing to 1, and the
    per-axis offset vectors (data units) it was evaluated at.
    """
    d = len(step)
    offsets = [np.arange(-h, h + 1) * s for h, s in zip(half, step, strict=True)]
    prec = np.linalg.inv(cov)
    mesh = np.meshgrid(*offsets, indexing="ij")
    q = np.zeros(mesh[0].shape)
    for i in range(d):
        for j in range(d):
            q += prec[i, j] * mesh[i] * mesh[j]
    k: FloatArray = np.exp(-0.5 * q)
    return k / k.sum(), [np.asarray(o, dtype=np.float64) for o in offsets]


def fft_convolve_full(
    data: FloatArray,
    kernels: Sequence[FloatArray],
    workers: int,
    cache: dict[tuple[int, tuple[int, ...]], Any] | None = None,
) -> list[FloatArray]:
    """Full linear convolution of ``data`` with each kernel (all of the same shape).

    The FFT of ``data`` is computed once and shared.  Output shape per axis:
    ``data.shape[i] + kernel.shape[i] - 1``. ``cache`` (keyed by the kernel's ``id`` and
    the FFT shape) keeps kernel spectra for a later call with the same kernel object.
    """
    shape_out = [a + b - 1 for a, b in zip(data.shape, kernels[0].shape, strict=True)]
    fshape = tuple(scipy.fft.next_fast_len(s, real=True) for s in shape_out)
    axes = tuple(range(data.ndim))
    fd = scipy.fft.rfftn(data, fshape, axes=axes, workers=workers)
    outs = []
    sl = tuple(slice(0, s) for s in shape_out)
    for k in kernels:
        key = (id(k), fshape)
        fk = None if cache is None else cache.get(key)
        if fk is None:
            fk = scipy.fft.rfftn(k, fshape, axes=axes, workers=workers)
            if cache is not None:
                cache[key] = fk
        outs.append(scipy.fft.irfftn(fd * fk, fshape, axes=axes, workers=workers)[sl])
    return outs


def fold_matrix(n: int, half: int, lo_active: bool, hi_active: bool) -> FloatArray:
    """0/1 matrix mapping an axis extended by ``half`` nodes per side onto ``n`` nodes.

    Reflection about an active bound sends extended node ``-j`` to node ``j`` (and
    ``n - 1 + j`` to ``n - 1 - j``); with both bounds active the map is the triangle wave
    of period ``2 (n - 1)``, so images of images are folded too.  Nodes beyond an
    inactive side are dropped (the grid was padded so they carry no mass).  Extended
    nodes that land on an active bound count twice (the bound is its own image).
    """
    j = np.arange(-half, n + half)
    m = j.copy()
    if lo_active and hi_active:
        period = 2 * (n - 1)
        m = np.mod(j, period)
        m = np.where(m > n - 1, period - m, m)
    else:
        if lo_active:
            m = np.where(j < 0, -j, m)
        if hi_active:
            m = np.where(j > n - 1, 2 * (n - 1) - j, m)
    keep = (m >= 0) & (m <= n - 1)
    # A node on an active bound is its own mirror image: the folded density there is
    # f(b) + f(b) (at x = b, f(x) + f(2b - x) = 2 f(b)), so it counts twice.
    weight = np.ones(j.size)
    if lo_active:
        weight[m == 0] = 2.0
    if hi_active:
        weight[m == n - 1] = 2.0
    f = np.zeros((n, j.size))
    f[m[keep], np.nonzero(keep)[0]] = weight[keep]
    return f


def apply_along(mat: FloatArray, arr: FloatArray, axis: int) -> FloatArray:
    """Multiply ``arr`` by ``mat`` along one axis (``out[i] = sum_j mat[i, j] arr[j]``)."""
    out = np.tensordot(mat, arr, axes=([1], [axis]))
    return np.moveaxis(out, 0, axis)


def crop(arr: FloatArray, half: Sequence[int], n: Sequence[int]) -> FloatArray:
    """The central ``n`` nodes of a full convolution output (drop ``half`` per side)."""
    return arr[tuple(slice(h, h + k) for h, k in zip(half, n, strict=True))]


def trapezoid_weights(n: int, step: float) -> FloatArray:
    """Trapezoid quadrature weights for ``n`` equidistant nodes."""
    w = np.full(n, step)
    w[0] = w[-1] = 0.5 * step
    return w


def box_moments(
    kernel: FloatArray,
    offsets: Sequence[FloatArray],
    n: Sequence[int],
    lo_active: Sequence[bool],
    hi_active: Sequence[bool],
    order: int,
    workers: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Kernel moments over the box, on the grid nodes.

    With ``u = y - x`` the kernel's displacement, returns at each node ``x``

    - ``a0 = sum_{y in box} w(y) K(x - y)``,
    - ``a1[i] = sum w(y) u_i K(x - y)`` (only when ``order >= 1``),
    - ``a2[i, j] = sum w(y) u_i u_j K(x - y)`` (only when ``order >= 1``),

    where ``w`` are trapezoid weights (half at a bound node) and the box extends without
    limit on open sides.  These are the local moments of Jones (1993) and, in several
    dimensions, Hazelton and Marshall (2009).  Along axes without an active bound the
    moments are constant, so they are computed on the active axes only (the stencil is
    summed over the others) and broadcast.  Arrays are shaped ``(d, d, *n)`` etc. with
    size-1 dimensions on inactive axes.
    """
    d = kernel.ndim
    active = [i for i in range(d) if lo_active[i] or hi_active[i]]
    inactive = tuple(i for i in range(d) if i not in active)
    mesh = np.meshgrid(*offsets, indexing="ij")
    # Displacement u = y - x = -(offset), offsets being x - y.
    u = [-m for m in mesh]
    kern_list: list[FloatArray] = [kernel]
    if order >= 1:
        kern_list += [u[i] * kernel for i in range(d)]
        kern_list += [u[i] * u[j] * kernel for i in range(d) for j in range(i, d)]
    reduced = [k.sum(axis=inactive, keepdims=True) if inactive else k for k in kern_list]
    ind_shape = [n[i] if i in active else 1 for i in range(d)]
    ind = np.ones(ind_shape)
    for i in active:
        w = np.ones(n[i])
        if lo_active[i]:
            w[0] = 0.5
        if hi_active[i]:
            w[-1] = 0.5
        shape = [1] * d
        shape[i] = n[i]
        ind = ind * w.reshape(shape)
    # Pad the indicator with the open continuation of the box along active axes: the box
    # is unbounded on an inactive side of an active axis.
    half = [(kernel.shape[i] - 1) // 2 for i in range(d)]
    pads = []
    for i in range(d):
        if i in active:
            pads.append((0 if lo_active[i] else half[i], 0 if hi_active[i] else half[i]))
        else:
            pads.append((0, 0))
    ind_p = np.pad(ind, pads, mode="edge")
    outs = fft_convolve_full(ind_p, reduced, workers)
    res = []
    for o in outs:
        sl = []
        for i in range(d):
            if i in active:
                start = half[i] + pads[i][0]
                sl.append(slice(start, start + n[i]))
            else:
                sl.append(slice(0, 1))
        res.append(o[tuple(sl)])
    a0 = res[0]
    bshape = a0.shape
    a1 = np.zeros((d, *bshape))
    a2 = np.zeros((d, d, *bshape))
    if order >= 1:
        for i in range(d):
            a1[i] = res[1 + i]
        k = 1 + d
        for i in range(d):
            for j in range(i, d):
                a2[i, j] = a2[j, i] = res[k]
                k += 1
    return a0, a1, a2


def local_linear(
    m0: FloatArray, m1: FloatArray, a0: FloatArray, a1: FloatArray, a2: FloatArray
) -> FloatArray:
    """Local-linear boundary estimate ``(m0 - a1' A2^-1 m1) / (a0 - a1' A2^-1 a1)``.

    ``m0, m1`` are the data moments (kernel sums with weights 1 and ``u``), ``a*`` the
    box moments from :func:`box_moments` (broadcast against ``m0``).  This is the
    weighted least-squares intercept of a local linear fit, i.e. the linear boundary
    kernel of Jones (1993) in 1-D and Hazelton and Marshall (2009) in 2-D; in the
    interior ``a1 = 0`` and it reduces to ``m0 / a0 = m0``.

    Where ``A2`` is singular (a kernel narrower than the node spacing has no second
    moment on the grid: its mass sits on one node), the linear correction is undefined
    and the result there is the renormalised ``m0 / a0``.
    """
    # Solve A2 s = a1 on the (possibly reduced) box-moment grid, then broadcast.
    a2m = np.moveaxis(a2, (0, 1), (-2, -1))
    a1v = np.moveaxis(a1, 0, -1)
    diag = np.diagonal(a2m, axis1=-2, axis2=-1)
    scale = np.sqrt(np.clip(diag, 0.0, None))
    # Condition of A2 after scaling to a unit diagonal (a correlation-like matrix).
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = a2m / (scale[..., :, None] * scale[..., None, :])
    ok = np.all(diag > 0, axis=-1) & np.all(np.isfinite(corr), axis=(-2, -1))
    corr = np.where(ok[..., None, None], corr, np.eye(a2m.shape[-1]))
    ok &= np.linalg.det(corr) > 1e-10
    safe = np.where(ok[..., None, None], a2m, np.eye(a2m.shape[-1]))
    sol = np.linalg.solve(safe, np.where(ok[..., None], a1v, 0.0)[..., None])[..., 0]
    sol = np.moveaxis(sol, -1, 0)
    den = a0 - np.sum(sol * a1, axis=0)
    num = m0 - np.sum(sol * m1, axis=0)
    return num / den


def multilinear_interp(values: FloatArray, lo: Vec, step: Vec, pts: FloatArray) -> FloatArray:
    """Multilinear interpolation of grid ``values`` at ``pts`` (clamped to the grid)."""
    d = values.ndim
    shape = values.shape
    idx = []
    frac = []
    for i in range(d):
        t = (pts[:, i] - lo[i]) / step[i]
        t = np.clip(t, 0.0, shape[i] - 1.0)
        k = np.minimum(np.floor(t).astype(np.intp), shape[i] - 2)
        idx.append(k)
        frac.append(t - k)
    out = np.zeros(pts.shape[0])
    for corner in itertools.product((0, 1), repeat=d):
        w = np.ones(pts.shape[0])
        for i, c in enumerate(corner):
            w = w * (frac[i] if c else 1.0 - frac[i])
        out += w * values[tuple(idx[i] + corner[i] for i in range(d))]
    return out


def cumulative_trapezoid_nd(values: FloatArray, step: Vec) -> FloatArray:
    """Cumulative integral from the first node along every axis (trapezoid rule).

    At the nodes this is the exact integral of the multilinear interpolant.
    """
    out = values
    for i in range(values.ndim):
        s = np.moveaxis(out, i, 0)
        inc = 0.5 * step[i] * (s[1:] + s[:-1])
        c = np.concatenate([np.zeros_like(s[:1]), np.cumsum(inc, axis=0)], axis=0)
        out = np.moveaxis(c, 0, i)
    return out


def sample_multilinear(
    values: FloatArray,
    lo: Vec,
    step: Vec,
    size: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Exact draws from the density whose values on the grid nodes are ``values``.

    Within a cell the multilinear interpolant is a mixture of the 2**d corner products
    ``prod_i l_i(t_i)`` with ``l = t`` or ``1 - t``, each of mass ``2**-d`` and weight the
    corner value; a cell is picked by its mass, a corner by its value, and each
    coordinate by inverting ``t**2`` (``t = sqrt(U)``) or ``1 - (1 - t)**2``.
    """
    d = values.ndim
    cshape = tuple(k - 1 for k in values.shape)
    corners = list(itertools.product((0, 1), repeat=d))
    cvals = np.stack(
        [
            values[tuple(slice(c, c + k) for c, k in zip(cor, cshape, strict=True))]
            for cor in corners
        ]
    )  # (2**d, *cshape)
    cmass = cvals.sum(axis=0).ravel()
    cum = np.cumsum(cmass)
    cell = np.searchsorted(cum, rng.random(size) * cum[-1], side="right")
    cell = np.minimum(cell, cmass.size - 1)
    cv = cvals.reshape(len(corners), -1)[:, cell]  # (2**d, size)
    ccum = np.cumsum(cv, axis=0)
    pick = (rng.random(size) * ccum[-1] > ccum).sum(axis=0)
    pick = np.minimum(pick, len(corners) - 1)
    bits = np.array(corners)[pick]  # (size, d)
    sub = np.unravel_index(cell, cshape)
    root = np.sqrt(rng.random((size, d)))
    t = np.where(bits == 1, root, 1.0 - root)
    out = np.empty((size, d))
    for i in range(d):
        out[:, i] = lo[i] + (sub[i] + t[:, i]) * step[i]
    return out
