"""Structured pruning, pure parts: allocation, exact-k selection, group scores, Bonsai fit.

Every expected number below is derived in a comment next to it.
"""

from __future__ import annotations

import math

import pytest
import torch
from prunekit.structured.allocation import (
    HeadAllocation,
    allocate_channels,
    allocate_heads,
    select_heads,
    top_k_indices,
)
from prunekit.structured.bonsai import fit_importances, sample_drops
from prunekit.structured.groups import AttentionGeometry
from prunekit.structured.scores import (
    GroupTensors,
    activation_importance,
    group_scores,
    l1_importance,
    taylor_importance,
)
from prunekit.structured.surgery import head_feature_indices

# --------------------------------------------------------------------------- allocation


def test_smollm2_geometry_maps_20_and_40_percent_to_six_heads() -> None:
    # 9 query heads in 3 groups of 3. Realizable counts K'·G' are 1,2,3,4,6,9.
    # 20 %: target 7.2 -> nearest 6 (3·2 or 2·3; tie -> keep 3 KV heads).
    # 40 %: target 5.4 -> |6-5.4|=0.6 < |4-5.4|=1.4 -> 6.
    geometry = AttentionGeometry(num_heads=9, num_kv_heads=3, head_dim=64)
    assert allocate_heads(geometry, 0.2) == HeadAllocation(kv_heads=3, per_group=2)
    assert allocate_heads(geometry, 0.4) == HeadAllocation(kv_heads=3, per_group=2)
    # 70 %: target 2.7 -> 3, realized as 3 KV heads with 1 query head each (tie with 1·3).
    assert allocate_heads(geometry, 0.7) == HeadAllocation(kv_heads=3, per_group=1)


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 0.75, 0.9])
@pytest.mark.parametrize(("heads", "kv"), [(12, 12), (8, 2), (9, 3), (6, 2), (32, 8)])
def test_head_allocation_is_nearest_realizable_count(ratio: float, heads: int, kv: int) -> None:
    geometry = AttentionGeometry(num_heads=heads, num_kv_heads=kv, head_dim=4)
    alloc = allocate_heads(geometry, ratio)
    target = heads * (1 - ratio)
    realizable = {a * b for a in range(1, kv + 1) for b in range(1, heads // kv + 1)}
    assert alloc.kv_heads <= kv
    assert alloc.per_group <= heads // kv
    assert abs(alloc.heads - target) == min(abs(c - target) for c in realizable)


def test_mha_allocation_is_rounded_count() -> None:
    # 12 heads, no GQA: 12 · 0.75 = 9.
    assert allocate_heads(AttentionGeometry(12, 12, 64), 0.25).heads == 9


def test_channel_allocation_rounds_half_up() -> None:
    assert allocate_channels(1536, 0.2) == 1229  # 1536 · 0.8 = 1228.8
    assert allocate_channels(1536, 0.4) == 922  # 1536 · 0.6 = 921.6
    assert allocate_channels(10, 0.25) == 8  # 7.5 rounds half-up to 8
    assert allocate_channels(10, 0.0) == 10


@pytest.mark.parametrize("multiple", [1, 8, 32, 64])
@pytest.mark.parametrize("size", [16, 100, 1536, 2048])
@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.4, 0.55, 0.9])
def test_channel_multiple_rounds_to_the_nearest_admissible_count(
    size: int, ratio: float, multiple: int
) -> None:
    # Oracle: brute force over every admissible kept count (multiples of `multiple` in
    # [multiple, size]): the nearest to size * (1 - ratio), ties to the larger. A multiple
    # not below the width admits no count below it: refused when channels are to go.
    if ratio > 0 and multiple > 1 and multiple >= size:
        with pytest.raises(ValueError, match="must be below the MLP width"):
            allocate_channels(size, ratio, multiple)
        return
    keep = allocate_channels(size, ratio, multiple)
    exact = size * (1 - ratio)
    admissible = [k for k in range(1, size + 1) if k % multiple == 0] or [size]
    best = min(admissible, key=lambda k: (abs(k - exact), -k))
    assert keep == best
    if multiple <= size:
        assert keep % multiple == 0


def test_channel_multiple_rejects_non_positive() -> None:
    with pytest.raises(ValueError, match="channel_multiple"):
        allocate_channels(1536, 0.4, 0)


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan")])
def test_ratio_outside_unit_interval_is_rejected(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio must be in"):
        allocate_channels(16, ratio)
    with pytest.raises(ValueError, match="ratio must be in"):
        allocate_heads(AttentionGeometry(4, 2, 8), ratio)


def test_ratio_removing_every_unit_is_rejected() -> None:
    # 4 heads · (1 - 0.9) = 0.4 -> rounds to 0 heads.
    with pytest.raises(ValueError, match="every attention head"):
        allocate_heads(AttentionGeometry(4, 2, 8), 0.9)
    # 8 channels · 0.05 = 0.4 -> 0 channels.
    with pytest.raises(ValueError, match="every MLP channel"):
        allocate_channels(8, 0.95)


def test_ratio_type_is_checked() -> None:
    with pytest.raises(TypeError, match="ratio"):
        allocate_channels(8, "0.5")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- selection


def test_top_k_is_exact_with_ties() -> None:
    scores = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.5])
    for k in range(6):
        kept = top_k_indices(scores, k)
        assert kept.numel() == k
    # Ties go to the lower index.
    assert top_k_indices(scores, 2).tolist() == [0, 1]


def test_select_heads_keeps_best_groups_then_best_heads() -> None:
    # 6 heads in 2 groups of 3: group 0 = heads 0,1,2; group 1 = heads 3,4,5.
    geometry = AttentionGeometry(6, 2, 4)
    heads = torch.tensor([5.0, 1.0, 3.0, 2.0, 9.0, 0.0])
    kv = torch.tensor([0.0, 0.0])
    # Keep both groups, 2 heads each: group 0 -> heads 0 (5), 2 (3); group 1 -> 4 (9), 3 (2).
    kept, kept_kv = select_heads(heads, kv, geometry, HeadAllocation(2, 2))
    assert kept.tolist() == [0, 2, 3, 4]
    assert kept_kv.tolist() == [0, 1]
    # Keep one group: sums are 9 (group 0) and 11 (group 1) -> group 1, heads 3,4,5.
    kept, kept_kv = select_heads(heads, kv, geometry, HeadAllocation(1, 3))
    assert kept.tolist() == [3, 4, 5]
    assert kept_kv.tolist() == [1]
    # The key/value part counts too: +5 on group 0 makes it 14 > 11.
    kept, kept_kv = select_heads(heads, torch.tensor([5.0, 0.0]), geometry, HeadAllocation(1, 3))
    assert kept_kv.tolist() == [0]


def test_head_feature_indices() -> None:
    # Heads 1 and 3 of dimension 3: features 3,4,5 and 9,10,11.
    assert head_feature_indices(torch.tensor([1, 3]), 3).tolist() == [3, 4, 5, 9, 10, 11]


# --------------------------------------------------------------------------- group scores

# A hand-built layer: hidden D = 2, two query heads of dimension 1 sharing one key/value
# head (GQA, G = 2), MLP width 3.
Q = torch.tensor([[1.0, -2.0], [0.5, 3.0]])  # [H d = 2, D = 2]
K = torch.tensor([[1.0, 1.0]])  # [K d = 1, D]
V = torch.tensor([[-2.0, 4.0]])
OUT = torch.tensor([[1.0, 0.0], [-1.0, 2.0]])  # [D, H d]
GATE = torch.tensor([[1.0, 0.0], [0.0, -1.0], [2.0, 2.0]])  # [I = 3, D]
UP = torch.tensor([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
DOWN = torch.tensor([[1.0, -1.0, 0.0], [2.0, 0.0, 3.0]])  # [D, I]
GEOMETRY = AttentionGeometry(num_heads=2, num_kv_heads=1, head_dim=1)


def _layer(fn) -> GroupTensors:  # type: ignore[no-untyped-def]
    return GroupTensors(
        q=fn("q", Q), k=fn("k", K), v=fn("v", V), o=fn("o", OUT),
        mlp_in=(fn("gate", GATE), fn("up", UP)), mlp_out=fn("down", DOWN),
    )


def test_l1_group_scores_by_hand() -> None:
    s = group_scores(_layer(lambda _r, w: l1_importance(w)), GEOMETRY)
    # head 0: q row 0 |1|+|-2| = 3, o column 0 |1|+|-1| = 2  -> 5
    # head 1: q row 1 0.5+3 = 3.5, o column 1 0+2 = 2         -> 5.5
    assert s.heads.tolist() == [5.0, 5.5]
    # kv head 0: k 1+1 = 2, v 2+4 = 6 -> 8
    assert s.kv_heads.tolist() == [8.0]
    # channel 0: gate 1, up 1, down column 1+2 = 3 -> 5
    # channel 1: gate 1, up 2, down column 1+0 = 1 -> 4
    # channel 2: gate 4, up 1, down column 0+3 = 3 -> 8
    assert s.channels.tolist() == [5.0, 4.0, 8.0]


def test_taylor_group_scores_by_hand() -> None:
    # Gradient: 0.5 everywhere on q, 1 elsewhere except down = 2.
    grads = {"q": 0.5, "k": 1.0, "v": 1.0, "o": 1.0, "gate": 1.0, "up": 1.0, "down": 2.0}
    s = group_scores(
        _layer(lambda r, w: taylor_importance(w, torch.full_like(w, grads[r]))), GEOMETRY
    )
    # head 0: q row 0 0.5·3 = 1.5, o column 0 = 2 -> 3.5; head 1: 0.5·3.5 + 2 = 3.75
    assert s.heads.tolist() == [3.5, 3.75]
    assert s.kv_heads.tolist() == [8.0]
    # channels: gate + up + 2·down column = 1+1+6 = 8, 1+2+2 = 5, 4+1+6 = 11
    assert s.channels.tolist() == [8.0, 5.0, 11.0]
    # The sign of the gradient does not matter: |w·g|.
    assert taylor_importance(torch.tensor([2.0]), torch.tensor([-3.0])).item() == 6.0


def test_activation_group_scores_by_hand() -> None:
    # Input-feature norms: attention input [3, 1], o input [2, 4], MLP input [1, 2],
    # down input [1, 0, 0.5].
    norms = {
        "q": torch.tensor([3.0, 1.0]), "k": torch.tensor([3.0, 1.0]),
        "v": torch.tensor([3.0, 1.0]), "o": torch.tensor([2.0, 4.0]),
        "gate": torch.tensor([1.0, 2.0]), "up": torch.tensor([1.0, 2.0]),
        "down": torch.tensor([1.0, 0.0, 0.5]),
    }
    s = group_scores(_layer(lambda r, w: activation_importance(w, norms[r])), GEOMETRY)
    # head 0: q row 0: 1·3 + 2·1 = 5; o column 0 (input feature 0, norm 2): (1+1)·2 = 4 -> 9
    # head 1: q row 1: 0.5·3 + 3·1 = 4.5; o column 1 (norm 4): (0+2)·4 = 8 -> 12.5
    assert s.heads.tolist() == [9.0, 12.5]
    # kv: k 1·3 + 1·1 = 4; v 2·3 + 4·1 = 10 -> 14
    assert s.kv_heads.tolist() == [14.0]
    # channel 0: gate 1·1 = 1; up 1·2 = 2; down column 0 (norm 1): 3 -> 6
    # channel 1: gate 1·2 = 2; up 1 + 2 = 3; down column 1 (norm 0): 0 -> 5
    # channel 2: gate 2 + 4 = 6; up 1; down column 2 (norm 0.5): 1.5 -> 8.5
    assert s.channels.tolist() == [6.0, 5.0, 8.5]


def test_score_shape_errors() -> None:
    with pytest.raises(ValueError, match="grad must have"):
        taylor_importance(torch.ones(2, 2), torch.ones(2, 3))
    with pytest.raises(ValueError, match="input_norm"):
        activation_importance(torch.ones(2, 2), torch.ones(3))


# --------------------------------------------------------------------------- Bonsai fit


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = torch.argsort(torch.argsort(a)).double()
    rb = torch.argsort(torch.argsort(b)).double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra @ rb) / math.sqrt(float((ra @ ra) * (rb @ rb))))


def test_sample_drops_drops_exactly_k_candidates_per_block() -> None:
    gen = torch.Generator().manual_seed(0)
    cands = [torch.tensor([0, 2, 4, 5]), torch.tensor([1, 2])]
    d = sample_drops(cands, [2, 1], [6, 3], 50, gen)
    assert d.shape == (50, 9)
    assert (d[:, :6].sum(dim=1) == 2).all()
    assert (d[:, 6:].sum(dim=1) == 1).all()
    # Non-candidates are never dropped: block 0 units 1, 3; block 1 unit 0 (column 6).
    assert d[:, [1, 3, 6]].sum() == 0
    # Every candidate is dropped sometimes.
    assert (d[:, [0, 2, 4, 5, 7, 8]].sum(dim=0) > 0).all()


def _synthetic_layer(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic MLP layer whose channels write to orthogonal output directions.

    Output ``y = sum_c a_c h_c`` with orthonormal ``h_c``, so the squared error of a masked
    layer is exactly additive: ``loss(mask) = sum_{dropped c} a_c^2``. True importance of
    channel ``c`` is ``a_c^2``. Returns ``(true importances, output amplitudes)``.
    """
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(32, generator=gen, dtype=torch.float64) * 2 + 0.1
    return a**2, a


def test_bonsai_regression_recovers_planted_order_on_synthetic_layer() -> None:
    true, a = _synthetic_layer(0)
    n_units = true.numel()
    h = torch.linalg.qr(torch.randn(64, n_units, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(1)))[0]
    full = h @ a
    gen = torch.Generator().manual_seed(2)
    drops = sample_drops([torch.arange(n_units)], [8], [n_units], 160, gen)
    losses = torch.stack([((h @ (a * (1 - d))) - full).pow(2).sum() for d in drops])
    # Sanity of the construction: the loss is the sum of the dropped true importances.
    torch.testing.assert_close(losses, drops @ true)
    beta = fit_importances(drops, losses, prior=torch.ones(n_units))
    assert _spearman(beta, true) > 0.99
    # The 8 least important channels are exactly the planted 8 lowest.
    assert set(torch.argsort(beta)[:8].tolist()) == set(torch.argsort(true)[:8].tolist())


def test_bonsai_regression_overrides_a_wrong_prior_given_data() -> None:
    true, _ = _synthetic_layer(3)
    n_units = true.numel()
    gen = torch.Generator().manual_seed(4)
    drops = sample_drops([torch.arange(n_units)], [8], [n_units], 200, gen)
    noise = 0.05 * torch.randn(200, dtype=torch.float64, generator=gen)
    losses = drops @ true + noise
    wrong_prior = true.max() - true + 0.01  # exactly reversed ordering
    beta = fit_importances(drops, losses, prior=wrong_prior)
    assert _spearman(beta, true) > 0.95


def test_bonsai_regression_falls_back_to_prior_without_signal() -> None:
    # Losses independent of the masks: the fit must not invent an order; the prior's
    # scale is clipped at 0 and the ridge term is shrunk, so the ranking stays near flat
    # relative to the spread of a real signal.
    gen = torch.Generator().manual_seed(5)
    drops = sample_drops([torch.arange(16)], [4], [16], 40, gen)
    losses = torch.zeros(40, dtype=torch.float64)
    beta = fit_importances(drops, losses, prior=torch.arange(16, dtype=torch.float64))
    assert torch.allclose(beta, torch.zeros(16, dtype=torch.float64), atol=1e-12)
