"""Perplexity under a named, reported protocol.

Two protocols:

* ``"non-overlapping"`` (the SparseGPT / Wanda / GPTQ papers): the token stream is cut into
  consecutive windows of ``seqlen`` tokens, the remainder is dropped, every window is
  scored independently. Within a window the first token has no context and is not scored,
  so each window contributes ``seqlen − 1`` predictions.
* ``"strided"`` (Hugging Face's "Perplexity of fixed-length models" guide): windows of
  ``seqlen`` start every ``stride`` tokens; each window scores only the tokens no earlier
  window scored, so most tokens see ``seqlen − stride`` tokens of context.

Perplexity is ``exp(Σ NLL / n_tokens)`` over all scored tokens, computed in float64 from
float32 log-probabilities.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["PROTOCOLS", "Perplexity", "perplexity"]

#: Evaluation protocols.
PROTOCOLS: tuple[str, ...] = ("non-overlapping", "strided")


@dataclass(frozen=True)
class Perplexity:
    """A perplexity and the protocol that produced it.

    Attributes
    ----------
    perplexity : float
        ``exp(mean NLL)`` over the scored tokens.
    protocol : str
        ``"non-overlapping"`` or ``"strided"``.
    seqlen : int
        Window length in tokens.
    stride : int
        Tokens between window starts (equals ``seqlen`` for non-overlapping).
    nsamples : int
        Number of windows evaluated.
    n_tokens : int
        Number of scored (predicted) tokens.
    nll : float
        Mean negative log-likelihood (nats per token).
    """

    perplexity: float
    protocol: str
    seqlen: int
    stride: int
    nsamples: int
    n_tokens: int
    nll: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _windows(total: int, seqlen: int, stride: int, protocol: str) -> list[tuple[int, int, int]]:
    """(start, end, first scored position inside the window) for each window."""
    if protocol == "non-overlapping":
        return [(s, s + seqlen, 1) for s in range(0, total - seqlen + 1, seqlen)]
    out: list[tuple[int, int, int]] = []
    scored_until = 0
    for start in range(0, total - 1, stride):
        end = min(start + seqlen, total)
        if end - start < 2:
            break
        first = max(scored_until - start, 1)
        if first < end - start:
            out.append((start, end, first))
        scored_until = end
        if end == total:
            break
    return out


def perplexity(
    model: nn.Module,
    tokens: torch.Tensor,
    *,
    seqlen: int,
    nsamples: int | None = None,
    protocol: Literal["non-overlapping", "strided"] = "non-overlapping",
    stride: int | None = None,
    progress: bool = True,
) -> Perplexity:
    """Perplexity of a causal LM on a token stream.

    Parameters
    ----------
    model : torch.nn.Module
        Causal LM returning ``.logits``.
    tokens : torch.LongTensor
        ``(1, N)`` or ``(N,)`` token ids.
    seqlen : int
        Window length (the papers use 2048; prunekit's CLI defaults to 512).
    nsamples : int or None
        Evaluate at most this many windows (the first ones); None for all.
    protocol : {"non-overlapping", "strided"}
        See the module docstring.
    stride : int or None
        For ``"strided"``: tokens between window starts, ``1 <= stride <= seqlen``
        (default ``seqlen // 2``). Must be None for ``"non-overlapping"``.
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    Perplexity

    Raises
    ------
    ValueError
        If the stream is shorter than one window, or an argument is out of range.

    Examples
    --------
    >>> perplexity(model, tokens, seqlen=512).perplexity  # doctest: +SKIP
    19.6
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
    if isinstance(seqlen, bool) or not isinstance(seqlen, int) or seqlen < 2:
        raise ValueError(f"seqlen must be an integer >= 2; got {seqlen!r}")
    if nsamples is not None and (not isinstance(nsamples, int) or nsamples < 1):
        raise ValueError(f"nsamples must be a positive integer or None; got {nsamples!r}")
    if protocol == "non-overlapping":
        if stride is not None and stride != seqlen:
            raise ValueError(
                f"stride applies to protocol='strided' only; got stride={stride} with "
                "protocol='non-overlapping'"
            )
        stride = seqlen
    else:
        stride = seqlen // 2 if stride is None else stride
        if not isinstance(stride, int) or not 1 <= stride <= seqlen:
            raise ValueError(f"stride must be an integer in [1, seqlen={seqlen}]; got {stride!r}")
    flat = tokens.reshape(-1)
    if tokens.dim() == 2 and tokens.shape[0] != 1:
        raise ValueError(f"tokens must have shape (1, N) or (N,); got {tuple(tokens.shape)}")
    total = int(flat.numel())
    if total < seqlen:
        raise ValueError(
            f"evaluation text has {total} tokens, fewer than one window of seqlen={seqlen}; "
            "use more text or a smaller seqlen"
        )
    windows = _windows(total, seqlen, stride, protocol)
    if nsamples is not None:
        windows = windows[:nsamples]

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll_sum = 0.0
    count = 0
    try:
        with torch.no_grad():
            for start, end, first in tqdm(
                windows, desc="perplexity", disable=not progress, leave=False
            ):
                ids = flat[start:end].unsqueeze(0).to(device)
                logits = model(input_ids=ids, use_cache=False).logits[0].float()
                # Position p predicts token p + 1; score targets at positions >= first.
                pred = logits[first - 1 : -1]
                target = ids[0, first:]
                loss = torch.nn.functional.cross_entropy(pred, target, reduction="sum")
                nll_sum += float(loss)
                count += int(target.numel())
    finally:
        model.train(was_training)
    mean = nll_sum / count
    return Perplexity(
        perplexity=math.exp(mean),
        protocol=protocol,
        seqlen=seqlen,
        stride=stride,
        nsamples=len(windows),
        n_tokens=count,
        nll=mean,
    )
