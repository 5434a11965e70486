"""Perplexity protocols: agreement with transformers' own loss, window and token counts."""

from __future__ import annotations

import math

import pytest
import torch
from prunekit import perplexity
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
