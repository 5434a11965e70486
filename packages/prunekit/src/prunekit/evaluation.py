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
float32 log-probabilities. Every result keeps its per-window NLL sums, so two models scored
on the same windows can be compared with a confidence interval
(:func:`perplexity_ratio`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from prunekit.adapters import check_seqlen

__all__ = ["PROTOCOLS", "Perplexity", "PerplexityRatio", "perplexity", "perplexity_ratio"]

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
    window_nll : tuple of float
        Summed NLL of each window, in window order (empty if not recorded).
    window_tokens : tuple of int
        Scored tokens of each window, in window order.
    """

    perplexity: float
    protocol: str
    seqlen: int
    stride: int
    nsamples: int
    n_tokens: int
    nll: float
    window_nll: tuple[float, ...] = field(default=(), repr=False)
    window_tokens: tuple[int, ...] = field(default=(), repr=False)

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
        If the stream is shorter than one window, an argument is out of range, or
        ``seqlen`` exceeds a GPT-2/OPT model's position table.
    TypeError
        If ``tokens`` is not an integer tensor.

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
    check_seqlen(model, seqlen)
    if not isinstance(tokens, torch.Tensor) or tokens.is_floating_point() or tokens.is_complex():
        raise TypeError(
            "tokens must be an integer torch tensor of token ids, shape (1, N) or (N,) "
            "(prunekit.data.evaluation_tokens); got "
            + (
                f"a {tokens.dtype} tensor"
                if isinstance(tokens, torch.Tensor)
                else type(tokens).__name__
            )
        )
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
    window_nll: list[float] = []
    window_tokens: list[int] = []
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
                window_nll.append(float(loss))
                window_tokens.append(int(target.numel()))
    finally:
        model.train(was_training)
    count = sum(window_tokens)
    mean = math.fsum(window_nll) / count
    return Perplexity(
        perplexity=math.exp(mean),
        protocol=protocol,
        seqlen=seqlen,
        stride=stride,
        nsamples=len(windows),
        n_tokens=count,
        nll=mean,
        window_nll=tuple(window_nll),
        window_tokens=tuple(window_tokens),
    )


@dataclass(frozen=True)
class PerplexityRatio:
    """Perplexity of one model over another's on the same windows, with a bootstrap interval.

    Attributes
    ----------
    ratio : float
        ``exp(nll_a − nll_b)``, i.e. ``perplexity_a / perplexity_b``.
    low, high : float
        Percentile interval of the ratio at ``level`` (circular block bootstrap over windows).
    level : float
        Coverage of the interval.
    n_windows : int
        Windows compared.
    block : int
        Windows per bootstrap block.
    """

    ratio: float
    low: float
    high: float
    level: float
    n_windows: int
    block: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _window_arrays(
    result: Perplexity | dict[str, Any], name: str
) -> tuple[np.ndarray, np.ndarray, tuple[Any, ...]]:
    d = result.to_dict() if isinstance(result, Perplexity) else result
    nll = np.asarray(d.get("window_nll", ()), dtype=float)
    tok = np.asarray(d.get("window_tokens", ()), dtype=float)
    if nll.size == 0 or nll.shape != tok.shape:
        raise ValueError(
            f"{name} has no per-window NLL (window_nll / window_tokens); compute it with "
            "prunekit.perplexity from this version on"
        )
    key = (d.get("protocol"), d.get("seqlen"), d.get("stride"), tuple(int(t) for t in tok))
    return nll, tok, key


def _ceil_cbrt(n: int) -> int:
    """Smallest integer ``b`` with ``b**3 >= n`` (exact, unlike ``ceil(n ** (1/3))``)."""
    b = max(1, round(n ** (1.0 / 3.0)))
    while b**3 < n:
        b += 1
    while b > 1 and (b - 1) ** 3 >= n:
        b -= 1
    return b


def perplexity_ratio(
    a: Perplexity | dict[str, Any],
    b: Perplexity | dict[str, Any],
    *,
    level: float = 0.95,
    n_boot: int = 4000,
    block: int | None = None,
    seed: int = 0,
) -> PerplexityRatio:
    """Ratio ``perplexity(a) / perplexity(b)`` of two models scored on the same windows.

    The interval resamples windows *paired* (both models keep the same windows, so the
    text's difficulty cancels) with the circular block bootstrap of Politis and Romano
    (1992), "A circular block-resampling procedure for stationary data": consecutive
    windows come from the same page and are correlated, and blocks of ``block`` consecutive
    windows keep that correlation. The default block length ``ceil(n^(1/3))`` is the order
    that is optimal for distribution estimates (Hall, Horowitz and Jing 1995, Biometrika 82,
    561-574); it is 4 for 64 windows. Each replicate's ratio is
    ``exp((Σ nll_a − Σ nll_b) / Σ tokens)`` over the drawn windows, and the interval is the
    percentile interval.

    Parameters
    ----------
    a, b : Perplexity or dict
        Results of :func:`perplexity` (or their ``to_dict()``) on the same token stream
        with the same protocol; ``a`` is the numerator (e.g. the pruned model).
    level : float
        Coverage, in (0, 1).
    n_boot : int
        Bootstrap replicates, at least 100.
    block : int or None
        Windows per block, between 1 and the number of windows; None for ``ceil(n^(1/3))``.
    seed : int
        Seed of the resampling.

    Returns
    -------
    PerplexityRatio

    Raises
    ------
    ValueError
        If a result has no per-window NLL, the two were not scored on the same windows,
        or an argument is out of range.

    Examples
    --------
    >>> r = perplexity_ratio(pruned, dense)  # doctest: +SKIP
    >>> f"{r.ratio:.2f} [{r.low:.2f}, {r.high:.2f}]"  # doctest: +SKIP
    '2.15 [2.11, 2.20]'
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an integer >= 100; got {n_boot!r}")
    nll_a, tok, key_a = _window_arrays(a, "a")
    nll_b, _, key_b = _window_arrays(b, "b")
    if key_a != key_b:
        raise ValueError(
            "a and b were not scored on the same windows (protocol, seqlen, stride and "
            f"per-window token counts must agree); got {len(key_a[3])} and {len(key_b[3])} "
            f"windows, protocol {key_a[:3]} vs {key_b[:3]}"
        )
    n = nll_a.size
    if block is None:
        block = _ceil_cbrt(n)
    if isinstance(block, bool) or not isinstance(block, int) or not 1 <= block <= n:
        raise ValueError(f"block must be an integer in [1, {n}] (the window count); got {block!r}")
    diff = nll_a - nll_b
    ratio = math.exp(float(diff.sum() / tok.sum()))
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n / block)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(n_boot, -1)[:, :n]
    reps = np.exp(diff[idx].sum(axis=1) / tok[idx].sum(axis=1))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return PerplexityRatio(
        ratio=ratio, low=float(low), high=float(high), level=level, n_windows=n, block=block
    )
