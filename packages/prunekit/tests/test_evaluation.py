"""Perplexity protocols: agreement with transformers' own loss, window and token counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from prunekit import perplexity, perplexity_ratio
from torch import nn


def _stream(n: int) -> torch.Tensor:
    return torch.randint(0, 96, (1, n), generator=torch.Generator().manual_seed(5))


def test_non_overlapping_matches_transformers_loss(tiny_model: nn.Module) -> None:
    tokens = _stream(100)
    result = perplexity(tiny_model, tokens, seqlen=32, progress=False)
    # 100 tokens -> 3 windows of 32, remainder of 4 dropped; 31 predictions per window.
    assert (result.nsamples, result.n_tokens, result.stride) == (3, 93, 32)
    assert result.protocol == "non-overlapping"
    with torch.no_grad():
        losses = [
            float(tiny_model(tokens[:, s : s + 32], labels=tokens[:, s : s + 32]).loss)
            for s in (0, 32, 64)
        ]
    # Equal-size windows: the mean of per-window mean losses is the token mean.
    assert result.perplexity == pytest.approx(math.exp(sum(losses) / 3), rel=1e-5)


def test_nsamples_limits_windows(tiny_model: nn.Module) -> None:
    result = perplexity(tiny_model, _stream(100), seqlen=32, nsamples=2, progress=False)
    assert (result.nsamples, result.n_tokens) == (2, 62)


def test_strided_scores_every_token_once(tiny_model: nn.Module) -> None:
    result = perplexity(
        tiny_model, _stream(100), seqlen=32, protocol="strided", stride=8, progress=False
    )
    assert result.n_tokens == 99  # every token but the first
    full = perplexity(
        tiny_model, _stream(100), seqlen=100, protocol="strided", stride=100, progress=False
    )
    # One window covering everything: strided with stride = seqlen = N is one full pass.
    assert full.n_tokens == 99
    assert full.nsamples == 1


def test_errors(tiny_model: nn.Module) -> None:
    with pytest.raises(ValueError, match="fewer than one window of seqlen=64"):
        perplexity(tiny_model, _stream(50), seqlen=64, progress=False)
    with pytest.raises(ValueError, match="protocol"):
        perplexity(tiny_model, _stream(50), seqlen=8, protocol="sliding", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride applies"):
        perplexity(tiny_model, _stream(50), seqlen=8, stride=4, progress=False)


def _result(nll: list[float], tokens: list[int]) -> dict[str, object]:
    return {
        "protocol": "non-overlapping",
        "seqlen": 8,
        "stride": 8,
        "window_nll": nll,
        "window_tokens": tokens,
    }


def test_perplexity_keeps_window_sums(tiny_model: nn.Module) -> None:
    tokens = _stream(100)
    result = perplexity(tiny_model, tokens, seqlen=32, progress=False)
    assert result.window_tokens == (31, 31, 31)
    # Each window's sum is transformers' own mean loss on that window times its 31 targets.
    with torch.no_grad():
        oracle = [
            31 * float(tiny_model(tokens[:, s : s + 32], labels=tokens[:, s : s + 32]).loss)
            for s in (0, 32, 64)
        ]
    assert result.window_nll == pytest.approx(oracle, rel=1e-5)
    assert sum(result.window_nll) / result.n_tokens == pytest.approx(result.nll, rel=1e-12)


def test_perplexity_ratio_point_and_interval() -> None:
    rng = np.random.default_rng(1)
    tok = [511] * 64
    dense = rng.uniform(2.5, 3.5, 64) * 511
    pruned = dense + rng.normal(0.7, 0.1, 64) * 511  # about exp(0.7) = 2.01 worse
    r = perplexity_ratio(_result(list(pruned), tok), _result(list(dense), tok))
    assert r.ratio == pytest.approx(math.exp((pruned - dense).sum() / (511 * 64)), rel=1e-12)
    assert r.low < r.ratio < r.high
    # Paired: the spread of the text's difficulty (uniform 2.5-3.5) cancels; only the
    # per-window spread of the difference (sd 0.1 nats, se 0.1/8) sets the width.
    assert math.log(r.high) - math.log(r.low) < 4 * 1.96 * 0.1 / 8
    assert (r.n_windows, r.block) == (64, 4)  # block = ceil(64 ** (1/3))
    same = perplexity_ratio(_result(list(dense), tok), _result(list(dense), tok))
    assert (same.ratio, same.low, same.high) == (1.0, 1.0, 1.0)


def test_perplexity_ratio_blocks_widen_for_correlated_windows() -> None:
    # Differences that drift slowly along the stream (pages): i.i.d. resampling of
    # windows understates the uncertainty, blocks of consecutive windows do not.
    rng = np.random.default_rng(2)
    drift = np.repeat(rng.normal(0.0, 0.2, 16), 16)  # 16 "pages" of 16 windows
    dense = np.full(256, 3.0 * 100)
    pruned = dense + (0.7 + drift) * 100
    a, b = _result(list(pruned), [100] * 256), _result(list(dense), [100] * 256)
    iid = perplexity_ratio(a, b, block=1)
    blk = perplexity_ratio(a, b, block=16)
    assert math.log(blk.high / blk.low) > 2 * math.log(iid.high / iid.low)


def test_perplexity_ratio_errors() -> None:
    ok = _result([1.0, 2.0], [7, 7])
    with pytest.raises(ValueError, match="same windows"):
        perplexity_ratio(ok, _result([1.0, 2.0, 3.0], [7, 7, 7]))
    with pytest.raises(ValueError, match="no per-window NLL"):
        perplexity_ratio(ok, {"protocol": "non-overlapping", "seqlen": 8, "stride": 8})
    with pytest.raises(ValueError, match="level"):
        perplexity_ratio(ok, ok, level=1.0)
    with pytest.raises(ValueError, match="n_boot"):
        perplexity_ratio(ok, ok, n_boot=10)
    with pytest.raises(ValueError, match="block must be an integer in \\[1, 2\\]"):
        perplexity_ratio(ok, ok, block=3)
    with pytest.raises(ValueError, match="same windows"):
        perplexity_ratio(ok, {**ok, "seqlen": 16})


def test_default_block_is_the_exact_ceiling_cube_root() -> None:
    from prunekit.evaluation import _ceil_cbrt

    # 27 ** (1/3) is 3.0000000000000004 in floating point; the block must still be 3.
    assert [_ceil_cbrt(n) for n in (1, 2, 8, 9, 27, 28, 64, 65, 305)] == [1, 2, 2, 3, 3, 4, 4, 5, 7]
