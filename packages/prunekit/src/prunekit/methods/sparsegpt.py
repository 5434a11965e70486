"""SparseGPT: one-shot pruning by approximate optimal brain surgeon updates.

Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately Pruned in
One-Shot" (ICML). For a linear layer with calibration inputs ``X`` (``in × n``), SparseGPT
minimises the layer reconstruction error ``‖WX − ŴX‖²`` over masks of the requested
sparsity by processing the columns left to right. With the layer Hessian
``H = 2XXᵀ/n`` and the upper Cholesky factor ``U`` of ``H⁻¹`` (row ``c`` of ``U`` holds the
OBS update for eliminating column ``c`` after columns ``< c`` are fixed):

* a weight's saliency is ``w_rc² / U_cc²`` (OBS, Hassibi & Stork 1993);
* pruning (or keeping) column ``c`` leaves error ``e_r = (w_rc − q_rc) / U_cc`` that is spread
  over the not-yet-processed columns: ``W[:, c:] −= e ⊗ U[c, c:]``;
* updates are applied lazily in blocks of ``blocksize`` columns (128 in the paper) so the
  bulk of the work is one matrix product per block;
* the mask is chosen per block of ``blocksize`` columns over all rows ("adaptive mask
  selection", Section 3.3), or for N:M every ``M`` columns from the current weights.

Numerics follow the paper: float32 throughout; damping ``λ = percdamp · mean(diag H)``
with ``percdamp = 0.01``; inputs that are always zero (``H_cc = 0``) get ``H_cc = 1`` and
their weights set to zero, since they never affect the output.

Kept-weight re-solve (default, ``refine_iters = 20``; 0 gives the paper's algorithm). The
OBS pass fixes each column once it is processed, so the weights kept early never see the
pruning of the columns after them. Once the mask is chosen, the objective is a convex
quadratic in the kept weights; :func:`refine_kept_weights` solves it by preconditioned
conjugate gradients, as the fixed-mask step of ADMM pruning (Boža 2024) and ALPS (Meng et
al. 2024). The mask is SparseGPT's; only the kept values change, and the objective can only
fall. Cost: one ``rows × in`` by ``in × in`` product per iteration.

Asymmetric calibration (optional, ``stats.cross`` given). In a sequential run the layer's
inputs ``X`` come from the already pruned earlier blocks, while the dense model fed it
``X̃`` on the same tokens. Minimising ``‖WX − ŴX‖²`` only reconstructs what the *dense layer*
would output on the pruned inputs; the dense *model*'s output is ``WX̃``. Following the
asymmetric calibration of GPTAQ (Li et al. 2025, "GPTAQ: Efficient Finetuning-Free
Quantization for Asymmetric Calibration", ICML), the objective becomes ``‖WX̃ − ŴX‖²``.
It splits exactly as ``‖WX̃ − W*X‖² + ‖(W* − Ŵ)X‖²`` with ``W*`` the least-squares map
``W X̃Xᵀ (XXᵀ)⁻¹``, so SparseGPT run on ``W*`` minimises it; with the same damping ``λ`` as
the OBS pass, ``W* = W + W(X̃Xᵀ − XXᵀ)(XXᵀ + λI)⁻¹`` (the ridge solution pulled towards
``W``, equal to ``W`` when ``X̃ = X``). GPTAQ applies the same correction column by column
inside its quantisation loop; here it is applied once before the OBS pass (the loop is
unchanged). Cost: one more ``in × in`` statistic and Cholesky solve per layer, plus the
engine's dense forward per block.

Exact counts: block ``b`` prunes ``floor(s·rows·end_b) − floor(s·rows·start_b)`` weights,
chosen by index, so the matrix prunes exactly ``floor(s · rows · cols)``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

import torch

from prunekit.masks import NMPattern, smallest_k_mask
from prunekit.methods._base import LayerStatistics, MethodResult, check_weight

__all__ = [
    "DEFAULT_BLOCKSIZE",
    "DEFAULT_PERCDAMP",
    "DEFAULT_REFINE_ITERS",
    "damped_inverse_cholesky",
    "inverse_hessian_cholesky",
    "refine_kept_weights",
    "relative_damping",
    "sparsegpt_prune",
]

logger = logging.getLogger(__name__)

#: Damping as a fraction of the mean Hessian diagonal (SparseGPT paper, Section 4 setup).
DEFAULT_PERCDAMP = 0.01
#: Lazy-update block width (SparseGPT paper, Section 3.4: B = 128).
DEFAULT_BLOCKSIZE = 128
#: Most conjugate-gradient iterations of the kept-weight re-solve (0 = the paper's SparseGPT).
DEFAULT_REFINE_ITERS = 20
#: The re-solve stops early once the preconditioned residual of every row together has
#: fallen below this fraction of its starting norm.
DEFAULT_REFINE_TOL = 1e-3
# If H + λI is numerically not positive definite, retry with λ multiplied by 10, at most
# this many times (a safety net for rank-deficient calibration sets, logged as a warning).
_MAX_DAMP_RETRIES = 4
_FLOOR_TOL = 1e-9


def relative_damping(hessian: torch.Tensor, percdamp: float) -> float:
    """SparseGPT's damping ``λ = percdamp · mean(diag H)`` (the paper's and reference code's)."""
    return percdamp * float(torch.diagonal(hessian).mean())


def damped_inverse_cholesky(hessian: torch.Tensor, percdamp: float) -> tuple[torch.Tensor, float]:
    """:func:`inverse_hessian_cholesky`, also returning the damping ``λ`` it used.

    ``λ`` starts at :func:`relative_damping` and is raised tenfold on each failed
    factorisation; callers that reuse the damped Hessian (the kept-weight re-solve) need the
    value that made it positive definite.
    """
    damp = relative_damping(hessian, percdamp)
    eye = torch.eye(hessian.shape[0], dtype=hessian.dtype, device=hessian.device)
    for attempt in range(_MAX_DAMP_RETRIES + 1):
        # With J the index reversal, chol(J H J) = L̃ gives H = R Rᵀ for the upper-triangular
        # R = J L̃ J; then H⁻¹ = R⁻ᵀ R⁻¹, so U = R⁻¹ (upper, positive diagonal) is the upper
        # Cholesky factor of H⁻¹. One factorisation and one triangular inverse instead of
        # forming H⁻¹ and factoring it again (about 3x fewer flops).
        flipped, info = torch.linalg.cholesky_ex(torch.flip(hessian + damp * eye, dims=(0, 1)))
        if int(info) == 0:
            upper_r = torch.flip(flipped, dims=(0, 1))
            upper = torch.linalg.solve_triangular(upper_r, eye, upper=True)
            if bool(torch.isfinite(upper).all()):
                return upper, damp
        if attempt < _MAX_DAMP_RETRIES:
            logger.warning(
                "Hessian not positive definite with damping %.3g; retrying with %.3g",
                damp,
                damp * 10,
            )
            damp *= 10
    raise RuntimeError(
        "SparseGPT: the damped Hessian is not positive definite even with damping "
        f"{damp:.3g}; use more calibration samples or a larger percdamp"
    )


def inverse_hessian_cholesky(hessian: torch.Tensor, percdamp: float) -> torch.Tensor:
    """Upper Cholesky factor ``U`` of ``(H + λI)⁻¹`` with ``λ = percdamp · mean(diag H)``.

    Parameters
    ----------
    hessian : torch.Tensor
        Symmetric positive semi-definite ``(in, in)`` float32 matrix with no zero diagonal.
    percdamp : float
        Relative damping, ``> 0``.

    Returns
    -------
    torch.Tensor
        Upper-triangular ``U`` with ``UᵀU = (H + λI)⁻¹``.

    Raises
    ------
    RuntimeError
        If the damped Hessian stays indefinite after raising the damping 10⁴-fold.
    """
    return damped_inverse_cholesky(hessian, percdamp)[0]


def _asymmetric_target(
    w: torch.Tensor, hessian: torch.Tensor, cross: torch.Tensor, percdamp: float
) -> torch.Tensor:
    """``W* = W + W(C − H)(H + λI)⁻¹``: the dense-output target on the pruned inputs.

    ``H = 2XXᵀ/n`` (pruned inputs), ``C = 2X̃Xᵀ/n`` (dense × pruned inputs), ``λ`` the OBS
    damping. Minimises ``‖WX̃ − W*X‖² + λ‖W* − W‖²`` (see the module docstring).
    """
    damp = relative_damping(hessian, percdamp)
    damped = hessian.clone()
    torch.diagonal(damped).add_(damp)
    factor, info = torch.linalg.cholesky_ex(damped)
    if int(info) != 0:
        logger.warning("asymmetric calibration skipped: damped Hessian not positive definite")
        return w
    # (H + λI) is symmetric: solve (H + λI) Δᵀ = (W(C − H))ᵀ.
    delta_t = torch.cholesky_solve((w @ (cross - hessian)).t().contiguous(), factor)
    return w + delta_t.t()


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """Run the per-column loop on one thread.

    Each step of the loop is a small (``rows × ≤ blocksize``) latency-bound operation; the
    OpenMP fork/join of a multi-threaded kernel costs more than it saves there, and on a
    loaded machine it was measured 10-100x slower than one thread. The large products
    (Hessian inverse, lazy block updates) keep all threads.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _obs_columns(
    block: torch.Tensor,
    errors: torch.Tensor,
    scale: torch.Tensor,
    block_mask: torch.Tensor,
    diag: torch.Tensor,
    hinv_block: torch.Tensor,
    pattern: NMPattern | None,
) -> None:
    """Sequential OBS over the columns of one block (rows of the transposed ``block``)."""
    count = block.shape[0]
    for i in range(count):
        if pattern is not None and i % pattern.m == 0:
            span = slice(i, i + pattern.m)
            saliency = block[span].square() / diag[span].square()
            block_mask[span] = smallest_k_mask(saliency, pattern.m - pattern.n, dim=0)
            scale[span] = block_mask[span].to(block.dtype) / diag[span]
        # err_c = (w_c − q_c) / U_cc = w_c · [pruned] / U_cc, q the kept part of column c.
        err = torch.mul(block[i], scale[i], out=errors[i])
        # OBS update of the later columns of the block: W[:, j] −= err · U[i, j], j > i.
        # Column i itself becomes exactly its kept part (zeroed by the caller where pruned).
        if i + 1 < count:
            block[i + 1 :].addr_(hinv_block[i, i + 1 :], err, alpha=-1.0)


def refine_kept_weights(
    weight: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    hessian: torch.Tensor,
    iters: int = DEFAULT_REFINE_ITERS,
    tol: float = DEFAULT_REFINE_TOL,
) -> torch.Tensor:
    """Re-solve the kept weights for a fixed mask by preconditioned conjugate gradients.

    SparseGPT fixes the columns from left to right: once column ``c`` is processed, its kept
    weights never change again, although the columns pruned after it would have them
    adjusted. For the chosen mask, SparseGPT's own objective
    ``tr((Ŵ − T) H (Ŵ − T)ᵀ)`` (``H`` the damped Hessian, ``T`` the dense weights) is a
    convex quadratic in the kept weights, one independent problem per row:
    ``H_SS ŵ_S = (H t)_S`` on the row's kept set ``S``. This solves all rows together by
    conjugate gradients with the Jacobi preconditioner ``diag H``, warm-started from
    ``weight``; each iteration is one ``rows × in`` by ``in × in`` product. The objective
    falls monotonically (conjugate gradients minimise it over a growing Krylov space), so
    any number of iterations is at least as good as none. The same fixed-mask update is the
    weight step of ADMM pruning (Boža 2024, "Fast and Effective Weight Update for Pruned
    Large Language Models", TMLR) and the post-processing of ALPS (Meng et al. 2024,
    NeurIPS), which also solves it by preconditioned conjugate gradients.

    Parameters
    ----------
    weight : torch.Tensor
        ``(out, in)`` float32 starting point, zero where ``mask`` is true (not modified).
    target : torch.Tensor
        ``(out, in)`` float32 dense weights ``T`` whose outputs are reconstructed.
    mask : torch.Tensor
        Boolean ``(out, in)``, ``True`` = pruned (held at zero).
    hessian : torch.Tensor
        ``(in, in)`` float32 damped Hessian ``H + λI`` (symmetric positive definite).
    iters : int
        Most iterations.
    tol : float
        Stop once ``Σ_r r_rᵀ D⁻¹ r_r`` (the preconditioned residual of all rows) has fallen
        below ``tol²`` times its starting value.

    Returns
    -------
    torch.Tensor
        The re-solved ``(out, in)`` weights, exactly zero where ``mask`` is true.

    Examples
    --------
    >>> x = torch.randn(256, 6)
    >>> h = x.T @ x / 256 + 0.01 * torch.eye(6)
    >>> t = torch.randn(2, 6)
    >>> mask = torch.tensor([[True, False] * 3, [False, True] * 3])
    >>> w = refine_kept_weights(t.masked_fill(mask, 0.0), t, mask, h, iters=50)
    >>> bool((w[mask] == 0).all())
    True
    """
    tiny = torch.finfo(torch.float32).tiny
    keep = (~mask).to(torch.float32)
    diag = torch.diagonal(hessian).clamp_min(tiny)
    w = weight.clone()
    # r = −½ gradient on the kept entries; CG on each row's kept subsystem.
    r = keep * ((target - w) @ hessian)
    z = r / diag
    p = z.clone()
    rz = (r * z).sum(dim=1)
    start = float(rz.sum())
    for _ in range(iters if start > 0 else 0):
        ap = keep * (p @ hessian)
        pap = (p * ap).sum(dim=1)
        alpha = torch.where(pap > 0, rz / pap.clamp_min(tiny), 0.0).unsqueeze(1)
        w.add_(alpha * p)
        r.sub_(alpha * ap)
        z = r / diag
        rz_new = (r * z).sum(dim=1)
        if float(rz_new.sum()) <= tol * tol * start:
            break
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(tiny), 0.0).unsqueeze(1)
        p = z + beta * p
        rz = rz_new
    return w.masked_fill_(mask, 0.0)


def sparsegpt_prune(
    weight: torch.Tensor,
    stats: LayerStatistics,
    *,
    sparsity: float = 0.5,
    pattern: NMPattern | None = None,
    percdamp: float = DEFAULT_PERCDAMP,
    blocksize: int = DEFAULT_BLOCKSIZE,
    refine_iters: int = DEFAULT_REFINE_ITERS,
    **_: object,
) -> MethodResult:
    """Prune one ``(out, in)`` matrix with SparseGPT and update the kept weights.

    Parameters
    ----------
    weight : torch.Tensor
        ``(out_features, in_features)`` weight; not modified.
    stats : LayerStatistics
        Must carry ``hessian``, ``2XXᵀ/n`` of the layer's calibration inputs.
    sparsity : float
        Fraction pruned (ignored when ``pattern`` is given).
    pattern : NMPattern or None
        N:M pattern, chosen every ``M`` columns from the updated weights.
    percdamp : float
        Relative damping ``λ / mean(diag H)``; the paper uses 0.01.
    blocksize : int
        Lazy-update and mask-selection block width; must be a multiple of ``M`` for N:M.
    refine_iters : int
        After the OBS pass, re-solve the kept weights for its mask with at most this many
        conjugate-gradient iterations (:func:`refine_kept_weights`); 0 returns the OBS
        pass's weights, the paper's algorithm.

    Returns
    -------
    MethodResult
        Updated weight (in ``weight``'s dtype) and the mask (``True`` = pruned). Weights of
        dead inputs (``H_cc = 0``) are also zero.

    Raises
    ------
    ValueError
        For a Hessian of the wrong shape, non-positive ``percdamp`` or ``blocksize``, or N:M
        with ``in_features`` or ``blocksize`` not divisible by ``M``.

    Examples
    --------
    >>> x = torch.randn(4, 64)
    >>> stats = LayerStatistics(nsamples=64, hessian=2 * x @ x.T / 64)
    >>> r = sparsegpt_prune(torch.randn(3, 4), stats, sparsity=0.5)
    >>> int(r.mask.sum())
    6
    """
    check_weight(weight)
    if stats is None or stats.hessian is None:
        raise ValueError("sparsegpt needs the layer Hessian from calibration data (stats.hessian)")
    rows, cols = weight.shape
    if stats.hessian.shape != (cols, cols):
        raise ValueError(
            f"hessian must have shape (in, in) = ({cols}, {cols}); got {tuple(stats.hessian.shape)}"
        )
    if not percdamp > 0:
        raise ValueError(f"percdamp must be > 0; got {percdamp!r}")
    if not (isinstance(blocksize, int) and blocksize > 0):
        raise ValueError(f"blocksize must be a positive integer; got {blocksize!r}")
    if isinstance(refine_iters, bool) or not (isinstance(refine_iters, int) and refine_iters >= 0):
        raise ValueError(f"refine_iters must be an integer >= 0; got {refine_iters!r}")
    if pattern is not None and (cols % pattern.m or blocksize % pattern.m):
        raise ValueError(
            f"pattern {pattern} needs in_features ({cols}) and blocksize ({blocksize}) "
            f"divisible by M={pattern.m}"
        )

    w = weight.detach().to(torch.float32).clone()
    hessian = stats.hessian.detach().to(device=w.device, dtype=torch.float32).clone()
    dead = torch.diagonal(hessian) == 0
    if bool(dead.any()):
        hessian[dead, dead] = 1.0
        w[:, dead] = 0.0
    if stats.cross is not None:
        if stats.cross.shape != (cols, cols):
            raise ValueError(
                f"cross must have shape (in, in) = ({cols}, {cols}); got {tuple(stats.cross.shape)}"
            )
        w = _asymmetric_target(
            w, hessian, stats.cross.to(device=w.device, dtype=torch.float32), percdamp
        )
        if bool(dead.any()):
            w[:, dead] = 0.0
    hinv, damp = damped_inverse_cholesky(hessian, percdamp)
    if refine_iters:
        # SparseGPT's objective: the dense (or asymmetric) target under the Hessian damped
        # exactly as the OBS pass's inverse was (λ raised if the factorisation needed it).
        target = w.clone()
        torch.diagonal(hessian).add_(damp)
    else:
        del hessian

    # Work on Wᵀ (cols × rows) so that a column of W is a contiguous row in memory: the
    # per-column updates below then touch contiguous memory.
    wt = w.t().contiguous()
    del w
    mask_t = torch.zeros((cols, rows), dtype=torch.bool, device=wt.device)
    for start in range(0, cols, blocksize):
        end = min(start + blocksize, cols)
        count = end - start
        block = wt[start:end]  # view: updated in place
        errors = torch.empty_like(block)
        hinv_block = hinv[start:end, start:end]
        diag = torch.diagonal(hinv_block).unsqueeze(1)  # (count, 1)

        if pattern is None:
            k = math.floor(sparsity * rows * end + _FLOOR_TOL) - math.floor(
                sparsity * rows * start + _FLOOR_TOL
            )
            saliency = block.square() / diag.square()
            block_mask = smallest_k_mask(saliency.reshape(-1), k, dim=0).view(count, rows)
            scale = block_mask.to(block.dtype) / diag
        else:
            block_mask = torch.zeros((count, rows), dtype=torch.bool, device=wt.device)
            scale = torch.empty_like(block)

        with _single_thread():
            _obs_columns(block, errors, scale, block_mask, diag, hinv_block, pattern)

        block.masked_fill_(block_mask, 0.0)
        mask_t[start:end] = block_mask
        if end < cols:
            # Lazy batched update of every later column (Section 3.4).
            wt[end:].addmm_(hinv[start:end, end:].t(), errors, alpha=-1.0)

    w = wt.t().contiguous()
    mask = mask_t.t().contiguous()
    # Free the OBS pass's buffers (and the loop's views of them) before the re-solve
    # allocates its own.
    del wt, mask_t, hinv, block, errors, hinv_block, diag, scale, block_mask
    if refine_iters:
        w = refine_kept_weights(w, target, mask, hessian, refine_iters)
    return MethodResult(weight=w.to(weight.dtype), mask=mask)
