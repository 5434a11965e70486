"""Pruning methods: hand-computed Wanda, SparseGPT identity / OBD limit / reconstruction error."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from prunekit.masks import NMPattern
from prunekit.methods import (
    METHODS,
    LayerStatistics,
    magnitude_prune,
    sparsegpt_prune,
    wanda_prune,
)
from prunekit.methods.sparsegpt import refine_kept_weights


def _layer(
    seed: int, rows: int = 32, cols: int = 64, n: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight and correlated inputs X (cols × n) with unequal feature scales, like LLM inputs."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, cols, generator=g)
    mixing = torch.randn(cols, cols, generator=g) / math.sqrt(cols) + torch.eye(cols)
    scales = torch.exp(torch.randn(cols, 1, generator=g))  # some features 10x larger
    x = scales * (mixing @ torch.randn(cols, n, generator=g))
    return weight, x


def _stats(x: torch.Tensor) -> LayerStatistics:
    n = x.shape[1]
    return LayerStatistics(
        nsamples=n, input_sq_norms=x.square().sum(dim=1), hessian=2 * x @ x.T / n
    )


def _error(weight: torch.Tensor, pruned: torch.Tensor, x: torch.Tensor) -> float:
    return float(torch.linalg.norm(weight @ x - pruned @ x))


def test_wanda_hand_computed() -> None:
    # Row 0: |W| = [1, 2, 3, 0.5], ||x|| = sqrt([4, 1, 0.25, 16]) = [2, 1, 0.5, 4]
    # scores = [2, 2, 1.5, 2] -> prune 1.5 (col 2) and the first of the tied 2s (col 0).
    # Row 1: |W| = [1, 1, 1, 1] -> scores = [2, 1, 0.5, 4] -> prune cols 2 and 1.
    weight = torch.tensor([[1.0, -2.0, 3.0, 0.5], [1.0, 1.0, -1.0, 1.0]])
    stats = LayerStatistics(nsamples=1, input_sq_norms=torch.tensor([4.0, 1.0, 0.25, 16.0]))
    result = wanda_prune(weight, stats, sparsity=0.5)
    assert result.mask.tolist() == [[True, False, True, False], [False, True, True, False]]
    assert result.weight.tolist() == [[0.0, -2.0, 0.0, 0.5], [1.0, 0.0, 0.0, 1.0]]
    # Magnitude on the same weights prunes differently (col 3 of row 0 has |w| = 0.5).
    assert magnitude_prune(weight, sparsity=0.5, group="row").mask[0].tolist() == [
        True,
        False,
        False,
        True,
    ]


def test_sparsegpt_sparsity_zero_is_identity() -> None:
    weight, x = _layer(0)
    result = sparsegpt_prune(weight, _stats(x), sparsity=0.0)
    assert not result.mask.any()
    assert torch.equal(result.weight, weight)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
def test_sparsegpt_prunes_exactly_k(sparsity: float) -> None:
    weight, x = _layer(1, rows=24, cols=200)  # 200 columns: blocks of 128 and 72
    result = sparsegpt_prune(weight, _stats(x), sparsity=sparsity, blocksize=128)
    assert int(result.mask.sum()) == math.floor(sparsity * weight.numel() + 1e-9)
    assert (result.weight[result.mask] == 0).all()
    assert torch.isfinite(result.weight).all()


def test_sparsegpt_nm_holds_in_every_group() -> None:
    weight, x = _layer(2)
    for n, m in [(2, 4), (4, 8)]:
        result = sparsegpt_prune(weight, _stats(x), pattern=NMPattern(n, m))
        zeros = (result.weight == 0).reshape(weight.shape[0], -1, m).sum(-1)
        assert (zeros == m - n).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("pattern", [None, NMPattern(2, 4)])
def test_sparsegpt_reconstruction_error_below_wanda_and_magnitude(
    seed: int, pattern: NMPattern | None
) -> None:
    weight, x = _layer(seed)
    stats = _stats(x)
    errors = {
        name: _error(
            weight, METHODS[name].run(weight, stats, sparsity=0.5, pattern=pattern).weight, x
        )
        for name in ("magnitude", "wanda", "sparsegpt")
    }
    assert errors["sparsegpt"] < errors["wanda"]
    assert errors["sparsegpt"] < errors["magnitude"]


def test_sparsegpt_with_diagonal_hessian_is_obd_without_updates() -> None:
    # Uncorrelated inputs: H is diagonal, so U = diag(1 / sqrt(h + λ)), no weight is updated,
    # and the block mask ranks w² (h + λ) — the same ranking as Wanda's matrix-group score
    # |w| sqrt(h + λ). One block covers all columns.
    g = torch.Generator().manual_seed(4)
    weight = torch.randn(8, 16, generator=g)
    h = torch.rand(16, generator=g) + 0.1
    stats = LayerStatistics(nsamples=1, hessian=torch.diag(h))
    result = sparsegpt_prune(weight, stats, sparsity=0.5, percdamp=0.01, blocksize=16)
    damped = h + 0.01 * h.mean()
    wanda = wanda_prune(
        weight, LayerStatistics(nsamples=1, input_sq_norms=damped), sparsity=0.5, group="matrix"
    )
    assert torch.equal(result.mask, wanda.mask)
    assert torch.allclose(result.weight, wanda.weight, atol=1e-6)


def test_sparsegpt_dead_inputs_zeroed_and_finite() -> None:
    weight, x = _layer(5, rows=8, cols=16)
    x[3] = 0.0  # input feature 3 is never active
    result = sparsegpt_prune(weight, _stats(x), sparsity=0.25)
    assert (result.weight[:, 3] == 0).all()
    assert torch.isfinite(result.weight).all()


def test_sparsegpt_argument_errors() -> None:
    weight, x = _layer(6, rows=4, cols=12)
    with pytest.raises(ValueError, match="hessian"):
        sparsegpt_prune(weight, LayerStatistics(nsamples=1))
    with pytest.raises(ValueError, match="percdamp"):
        sparsegpt_prune(weight, _stats(x), percdamp=0.0)
    with pytest.raises(ValueError, match="divisible by M=8"):
        sparsegpt_prune(weight, _stats(x), pattern=NMPattern(4, 8))
    with pytest.raises(ValueError, match="refine_iters must be an integer >= 0; got -2"):
        sparsegpt_prune(weight, _stats(x), refine_iters=-2)


def _damped(x: torch.Tensor, percdamp: float = 0.01) -> torch.Tensor:
    h = 2 * x @ x.T / x.shape[1]
    return h + percdamp * float(torch.diagonal(h).mean()) * torch.eye(h.shape[0])


def _masked_optimum(
    target: torch.Tensor, mask: torch.Tensor, hessian: torch.Tensor
) -> torch.Tensor:
    """Oracle: each row's kept weights from a direct solve of H_SS w_S = (H t)_S (float64)."""
    h = hessian.double()
    out = torch.zeros_like(target, dtype=torch.float64)
    for row in range(target.shape[0]):
        kept = ~mask[row]
        rhs = (h @ target[row].double())[kept]
        out[row, kept] = torch.linalg.solve(h[kept][:, kept], rhs)
    return out


def _objective(w: torch.Tensor, target: torch.Tensor, hessian: torch.Tensor) -> float:
    d = (w - target).double()
    return float(torch.einsum("ri,ij,rj->", d, hessian.double(), d))


@pytest.mark.parametrize("pattern", [None, NMPattern(2, 4)])
def test_sparsegpt_refine_reaches_the_masked_least_squares_optimum(
    pattern: NMPattern | None,
) -> None:
    weight, x = _layer(8)
    plain = sparsegpt_prune(weight, _stats(x), pattern=pattern, refine_iters=0)
    refined = sparsegpt_prune(weight, _stats(x), pattern=pattern, refine_iters=200)
    # Same mask (the re-solve only changes kept values), zeros exactly where pruned.
    assert torch.equal(plain.mask, refined.mask)
    assert (refined.weight[refined.mask] == 0).all()
    hessian = _damped(x)
    optimum = _masked_optimum(weight, refined.mask, hessian)
    best = _objective(optimum.float(), weight, hessian)
    assert _objective(refined.weight, weight, hessian) <= best * (1 + 1e-4)
    # The OBS pass alone is measurably short of the optimum on correlated inputs.
    assert _objective(plain.weight, weight, hessian) > best * 1.01
    assert _error(weight, refined.weight, x) < _error(weight, plain.weight, x)


def test_refine_objective_never_rises_with_iterations() -> None:
    weight, x = _layer(9)
    hessian = _damped(x)
    start = sparsegpt_prune(weight, _stats(x), refine_iters=0)
    values = [
        _objective(
            refine_kept_weights(start.weight, weight, start.mask, hessian, iters=k, tol=0.0),
            weight,
            hessian,
        )
        for k in (0, 1, 2, 4, 8, 16)
    ]
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(values))
    assert values[-1] < values[0]


def test_refine_with_an_all_kept_mask_returns_the_target() -> None:
    weight, x = _layer(10, rows=4, cols=16)
    mask = torch.zeros_like(weight, dtype=torch.bool)
    out = refine_kept_weights(
        torch.zeros_like(weight), weight, mask, _damped(x), iters=100, tol=1e-7
    )
    assert torch.allclose(out, weight, atol=1e-4)


def test_refine_uses_the_damping_the_inverse_needed(caplog: pytest.LogCaptureFixture) -> None:
    # A Hessian with one eigenvalue of -0.03 (mean diagonal about 1): the paper's damping
    # 0.01 * mean(diag H) leaves it indefinite, the first tenfold retry makes it definite.
    # The re-solve must then use that same raised damping, not the base value (with which
    # H + λI is indefinite and the "optimum" is meaningless).
    g = torch.Generator().manual_seed(11)
    cols = 24
    q, _ = torch.linalg.qr(torch.randn(cols, cols, generator=g))
    eigs = torch.ones(cols)
    eigs[0] = -0.03
    hessian = (q * eigs) @ q.T
    hessian = (hessian + hessian.T) / 2
    weight = torch.randn(8, cols, generator=g)
    stats = LayerStatistics(nsamples=1, hessian=hessian)
    with caplog.at_level("WARNING", logger="prunekit.methods.sparsegpt"):
        plain = sparsegpt_prune(weight, stats, refine_iters=0)
    assert "retrying" in caplog.text
    refined = sparsegpt_prune(weight, stats, refine_iters=30)
    assert torch.equal(plain.mask, refined.mask)
    raised = 10 * 0.01 * float(torch.diagonal(hessian).mean())
    expected = refine_kept_weights(
        plain.weight, weight, plain.mask, hessian + raised * torch.eye(cols), iters=30
    )
    assert torch.allclose(refined.weight, expected, atol=1e-6)
    damped = hessian + raised * torch.eye(cols)
    assert torch.linalg.eigvalsh(damped.double()).min() > 0
    assert _objective(refined.weight, weight, damped) < _objective(plain.weight, weight, damped)


def test_wanda_needs_norms() -> None:
    with pytest.raises(ValueError, match="input"):
        wanda_prune(torch.ones(2, 2), LayerStatistics(nsamples=1))


def test_methods_do_not_modify_their_input() -> None:
    weight, x = _layer(7, rows=8, cols=16)
    before = weight.clone()
    for method in METHODS.values():
        method.run(weight, _stats(x), sparsity=0.5)
    assert torch.equal(weight, before)
