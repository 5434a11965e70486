"""A small decoder-only transformer over prompt + melody tokens, with sampling and log-probs.

The architecture is GPT-2's (Radford et al. 2019): learned token and position
embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a 4x GELU MLP,
a final LayerNorm and a linear head. Sampling is batched and incremental with a
key/value cache. :func:`token_logprobs` and :func:`sequence_logprob` are differentiable
and are what REINFORCE, the KL penalty and DPO use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicrl.corpus import Melody, Prompt, meter_ticks
from musicrl.tokenizer import Tokenizer

#: Largest in-bar position (ticks) with its own embedding: a 4/2 or 8/4 bar (8 quarters).
MAX_BAR_TICKS = 96


@dataclass
class KVCache:
    """Incremental-decoding state: per-layer keys/values and the metrical counters."""

    layers: list[tuple[Tensor, Tensor]]
    elapsed: Tensor  # (B,) ticks since the last BAR
    meter_len: Tensor  # (B,) bar length of the prompt's meter in ticks, 0 = unknown

    @property
    def length(self) -> int:
        """Number of positions already processed."""
        return int(self.layers[0][0].size(2)) if self.layers else 0

    def select(self, rows: Tensor) -> KVCache:
        """The cache of the rows ``rows`` (a boolean mask or index tensor) only."""
        return KVCache(
            [(k[rows], v[rows]) for k, v in self.layers], self.elapsed[rows], self.meter_len[rows]
        )


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a :class:`MelodyTransformer`.

    Parameters
    ----------
    vocab_size : int
        Number of tokens (``Tokenizer.vocab_size``).
    d_model : int
        Width of the residual stream; a multiple of ``n_heads``.
    n_layers : int
        Number of transformer blocks.
    n_heads : int
        Attention heads per block.
    max_len : int
        Longest sequence (prefix + melody + EOS) the position table holds.
    dropout : float
        Dropout on embeddings, attention weights and residual branches, in [0, 1).
    metrical : bool
        Add metrical-position embeddings: for every position, the ticks elapsed in the
        current bar and the ticks remaining to the bar line of the prompt's meter, both
        computed from the tokens themselves (see :class:`MelodyTransformer`).

    Defaults (128 wide, 4 layers, 4 heads, 512 positions, about 0.85M parameters) size
    the model to train in minutes on two CPU cores on ~2,000 melodies; 512 positions
    hold the 99th percentile of corpus sequences (~260 tokens) with margin.

    Raises
    ------
    ValueError
        If a size is not positive, ``d_model`` is not a multiple of ``n_heads``, or the
        dropout is outside [0, 1).
    """

    vocab_size: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    max_len: int = 512
    dropout: float = 0.1
    metrical: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"GeneratorConfig.{name} must be a positive int; got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"GeneratorConfig.d_model ({self.d_model}) must be a multiple of "
                f"n_heads ({self.n_heads})"
            )
        if not isinstance(self.metrical, bool):
            raise TypeError(f"GeneratorConfig.metrical must be a bool; got {self.metrical!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GeneratorConfig.dropout must be in [0, 1); got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error).

        A dict without ``metrical`` predates that option and describes a model without
        metrical embeddings.
        """
        return cls(**{"metrical": False, **data})


class _Block(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
        )
        self.dropout = cfg.dropout
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, past: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q = q.view(b, t, h, d // h).transpose(1, 2)
        k = k.view(b, t, h, d // h).transpose(1, 2)
        v = v.view(b, t, h, d // h).transpose(1, 2)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        p_drop = self.dropout if self.training else 0.0
        if past is None:
            att = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop, is_causal=True)
        elif t > 1:
            # Queries are the last t positions of a causal sequence of length k.size(2).
            s = k.size(2)
            mask = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(diagonal=s - t)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop)
        else:  # one new token attends to everything before it
            att = F.scaled_dot_product_attention(q, k, v, dropout_p=p_drop)
        att = att.transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(att))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, (k, v)


class MelodyTransformer(nn.Module):
    """Decoder-only causal transformer with learned positions (GPT-2 layout).

    With ``config.metrical`` (the default), two more embeddings are added to every
    position: the ticks elapsed since the last bar line and the ticks remaining to the
    next one under the prompt's meter — the "position in bar" information that REMI
    tokens carry as extra tokens (Huang & Yang 2020, Pop Music Transformer) and MuseNet
    as structural embeddings. Both are computed from the token ids (duration, BAR and
    meter tokens), so ``forward(ids)`` and the log-probabilities stay functions of the
    ids alone.

    Parameters
    ----------
    config : GeneratorConfig
        The model's shape.
    tokenizer : Tokenizer or None
        The tokenizer whose duration/BAR/meter tokens define the metrical tables
        (default ``Tokenizer()``; it must have ``config.vocab_size`` tokens when
        ``config.metrical``). The tables are saved with the weights.

    Raises
    ------
    ValueError
        If ``config.metrical`` and the tokenizer's vocabulary size differs.

    Examples
    --------
    >>> import torch
    >>> tok = Tokenizer()
    >>> cfg = GeneratorConfig(tok.vocab_size, d_model=32, n_layers=1, n_heads=2, max_len=64)
    >>> MelodyTransformer(cfg, tok)(torch.zeros(2, 5, dtype=torch.long)).shape
    torch.Size([2, 5, 101])
    """

    tok_ticks: Tensor
    tok_is_bar: Tensor
    tok_meter_len: Tensor

    def __init__(self, config: GeneratorConfig, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_len, config.d_model)
        if config.metrical:
            self._init_metrical(config, tokenizer if tokenizer is not None else Tokenizer())
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2: residual output projections scaled by 1/sqrt(2 * n_layers).
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    def _init_metrical(self, config: GeneratorConfig, tok: Tokenizer) -> None:
        if tok.vocab_size != config.vocab_size:
            raise ValueError(
                f"a metrical model needs the tokenizer it reads (vocab_size "
                f"{config.vocab_size}); the default Tokenizer has {tok.vocab_size} tokens: "
                "pass tokenizer="
            )
        ticks = torch.zeros(config.vocab_size, dtype=torch.long)
        is_bar = torch.zeros(config.vocab_size, dtype=torch.bool)
        meter_len = torch.zeros(config.vocab_size, dtype=torch.long)
        for i, token in enumerate(tok.vocab):
            if token.startswith("dur:"):
                ticks[i] = int(token[4:])
            elif token.startswith("meter:") and token != "meter:unknown":
                meter_len[i] = meter_ticks(token[6:])
        is_bar[tok.bar_id] = True
        # Persistent buffers: saved with the weights, so a checkpoint carries its tables.
        self.register_buffer("tok_ticks", ticks)
        self.register_buffer("tok_is_bar", is_bar)
        self.register_buffer("tok_meter_len", meter_len)
        # elapsed: 0..MAX_BAR_TICKS, then "beyond"; remaining: 0..MAX_BAR_TICKS, then
        # "overfull" (past the bar line), then "unknown meter".
        self.elapsed_emb = nn.Embedding(MAX_BAR_TICKS + 2, config.d_model)
        self.remaining_emb = nn.Embedding(MAX_BAR_TICKS + 3, config.d_model)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, ids: Tensor) -> Tensor:
        """Next-token logits.

        Parameters
        ----------
        ids : LongTensor
            Shape ``(B, T)`` with ``T <= config.max_len``.

        Returns
        -------
        Tensor
            Shape ``(B, T, vocab_size)``; position ``t`` scores token ``t + 1``.
        """
        logits, _ = self.forward_cached(ids, None)
        return logits

    def metrical_positions(
        self, ids: Tensor, elapsed0: Tensor | None = None, meter0: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """In-bar position after each token, from the tokens alone.

        ``elapsed[b, t]`` = ticks of the duration tokens since the last BAR up to and
        including token ``t``; ``meter_len[b, t]`` = bar length of the last meter token
        seen (0 = none). Returns the embedding indices for elapsed and remaining ticks,
        and the final ``(elapsed, meter_len)`` per row for the cache.
        """
        b = ids.size(0)
        zeros = torch.zeros(b, dtype=torch.long, device=ids.device)
        e0 = zeros if elapsed0 is None else elapsed0
        m0 = zeros if meter0 is None else meter0
        c = e0[:, None] + torch.cumsum(self.tok_ticks[ids], dim=1)
        at_bar = torch.where(self.tok_is_bar[ids], c, torch.zeros_like(c))
        elapsed = c - torch.cummax(at_bar, dim=1).values
        meter_len = torch.cummax(torch.maximum(self.tok_meter_len[ids], m0[:, None]), dim=1).values
        remaining = meter_len - elapsed
        rem_idx = torch.where(
            meter_len == 0,
            torch.full_like(remaining, MAX_BAR_TICKS + 2),
            torch.where(remaining < 0, torch.full_like(remaining, MAX_BAR_TICKS + 1), remaining),
        ).clamp(max=MAX_BAR_TICKS + 2)
        ela_idx = elapsed.clamp(max=MAX_BAR_TICKS + 1)
        return ela_idx, rem_idx, elapsed[:, -1], meter_len[:, -1]

    def forward_cached(self, ids: Tensor, past: KVCache | None) -> tuple[Tensor, KVCache]:
        """Logits for ``ids`` that follow the positions held in ``past``, and the new cache.

        Raises
        ------
        ValueError
            If ``ids`` is not 2-D or the total length exceeds ``config.max_len``.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must have shape (B, T); got {tuple(ids.shape)}")
        start = 0 if past is None else past.length
        t = ids.size(1)
        if start + t > self.config.max_len:
            raise ValueError(
                f"sequence length {start + t} exceeds the model's max_len {self.config.max_len}"
            )
        pos = torch.arange(start, start + t, device=ids.device)
        x = self.tok_emb(ids) + self.pos_emb(pos)
        if self.config.metrical:
            ela_idx, rem_idx, elapsed, meter_len = self.metrical_positions(
                ids,
                None if past is None else past.elapsed,
                None if past is None else past.meter_len,
            )
            x = x + self.elapsed_emb(ela_idx) + self.remaining_emb(rem_idx)
        else:
            elapsed = meter_len = torch.zeros(ids.size(0), dtype=torch.long, device=ids.device)
        x = self.drop(x)
        layers: list[tuple[Tensor, Tensor]] = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if past is None else past.layers[i])
            layers.append(kv)
        return self.head(self.ln_f(x)), KVCache(layers, elapsed, meter_len)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


@dataclass(frozen=True)
class SampleBatch:
    """Sampled sequences.

    Attributes
    ----------
    ids : LongTensor
        ``(B, T)``: prefix (``BOS + prompt + SEP``) then the sampled tokens, right-padded
        with ``pad_id`` after EOS.
    prompt_lengths : LongTensor
        ``(B,)``: length of the prefix of each row (the same for all rows, 7).
    completion_mask : BoolTensor
        ``(B, T)``: True on sampled tokens, the EOS included; False on the prefix and the
        padding.
    melodies : list of Melody
        The decoded (and repaired, see :meth:`Tokenizer.decode_melody`) melodies, with
        each prompt's meter.
    finished : BoolTensor
        ``(B,)``: whether the row ended with EOS (or a PAD the model sampled, which ends a
        row too); False when it was cut at ``max_new_tokens``.
    prompts : tuple of Prompt
        The prompts, in row order.
    """

    ids: Tensor
    prompt_lengths: Tensor
    completion_mask: Tensor
    melodies: list[Melody]
    finished: Tensor
    prompts: tuple[Prompt, ...]


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def sample(
    model: MelodyTransformer,
    tokenizer: Tokenizer,
    prompts: Sequence[Prompt],
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_new_tokens: int | None = None,
    generator: torch.Generator | None = None,
) -> SampleBatch:
    """Sample one melody per prompt, batched, with a key/value cache.

    At each step the next token is drawn from ``softmax(logits / temperature)``,
    restricted to the ``top_k`` most likely tokens when ``top_k`` is given (Fan et al.
    2018). Rows that emitted EOS are padded. The model is put in eval mode for the call
    and restored afterwards.

    Parameters
    ----------
    model : MelodyTransformer
    tokenizer : Tokenizer
    prompts : sequence of Prompt
        One row per prompt (may repeat).
    temperature : float
        > 0.
    top_k : int or None
        Keep only the ``top_k`` highest logits (>= 1), or all when ``None``.
    max_new_tokens : int or None
        Cap on sampled tokens per row (EOS included); default and maximum
        ``model.config.max_len - prefix length``.
    generator : torch.Generator or None
        Random source; the same seed gives the same samples.

    Returns
    -------
    SampleBatch

    Raises
    ------
    ValueError
        If ``prompts`` is empty, ``temperature`` is not finite and > 0, ``top_k < 1``, or
        ``max_new_tokens`` is not in ``1..max_len - prefix``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)  # doctest: +SKIP
    >>> batch = sample(model, tok, [Prompt.parse("G major, 6/8")], top_k=20, generator=g)
    ... # doctest: +SKIP
    """
    prompts = tuple(prompts)
    if not prompts:
        raise ValueError("prompts must hold at least one Prompt; got an empty sequence")
    for i, p in enumerate(prompts):
        if not isinstance(p, Prompt):
            raise TypeError(f"prompts[{i}] must be a Prompt; got {type(p).__name__}")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not (math.isfinite(temperature) and temperature > 0)
    ):
        raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None; got {top_k}")
    prefix_len = tokenizer.prefix_length
    room = model.config.max_len - prefix_len
    if max_new_tokens is None:
        max_new_tokens = room
    if not 1 <= max_new_tokens <= room:
        raise ValueError(
            f"max_new_tokens must be in 1..{room} (max_len {model.config.max_len} minus the "
            f"{prefix_len}-token prefix); got {max_new_tokens}"
        )
    device = _model_device(model)
    b = len(prompts)
    prefix = torch.tensor([tokenizer.encode_prefix(p) for p in prompts], device=device)
    was_training = model.training
    model.eval()
    try:
        out = torch.full((b, prefix_len + max_new_tokens), tokenizer.pad_id, device=device)
        out[:, :prefix_len] = prefix
        finished = torch.zeros(b, dtype=torch.bool, device=device)
        gen_len = torch.full((b,), max_new_tokens, dtype=torch.long, device=device)
        logits, cache = model.forward_cached(prefix, None)
        last = logits[:, -1]
        # Rows still being sampled; a row that ends is dropped from the batch and its
        # cache, so later steps cost only what the unfinished rows need.
        active = torch.arange(b, device=device)
        n_new = 0
        for step in range(max_new_tokens):
            scores = last.float() / temperature
            if top_k is not None and top_k < scores.size(-1):
                kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
                scores = scores.masked_fill(scores < kth, float("-inf"))
            probs = torch.softmax(scores, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            out[active, prefix_len + step] = nxt
            n_new = step + 1
            # EOS ends a row; so does a PAD the model emits itself (decoding stops there).
            ended = (nxt == tokenizer.eos_id) | (nxt == tokenizer.pad_id)
            if bool(ended.any()):
                gen_len[active[ended]] = step + 1
                finished[active[ended]] = True
                keep = ~ended
                if not bool(keep.any()):
                    break
                active, nxt, cache = active[keep], nxt[keep], cache.select(keep)
            if step + 1 == max_new_tokens:
                break
            logits, cache = model.forward_cached(nxt[:, None], cache)
            last = logits[:, -1]
    finally:
        model.train(was_training)
    ids = out[:, : prefix_len + n_new]
    positions = torch.arange(ids.size(1), device=device)[None, :]
    completion = (positions >= prefix_len) & (positions < prefix_len + gen_len[:, None])
    melodies = [
        tokenizer.decode_melody(row[prefix_len:].tolist(), meter=p.meter)
        for row, p in zip(ids, prompts, strict=True)
    ]
    return SampleBatch(
        ids=ids.cpu(),
        prompt_lengths=torch.full((b,), prefix_len, dtype=torch.long),
        completion_mask=completion.cpu(),
        melodies=melodies,
        finished=finished.cpu(),
        prompts=prompts,
    )


def token_logprobs(model: nn.Module, ids: Tensor) -> Tensor:
    """Log-probabilities of each next token under ``model`` (differentiable).

    ``out[b, t] = log softmax(model(ids)[b, t])[ids[b, t + 1]]``.

    Parameters
    ----------
    model : MelodyTransformer
        Any module mapping ``(B, T)`` ids to ``(B, T, V)`` logits.
    ids : LongTensor
        ``(B, T)`` with ``T >= 2``.

    Returns
    -------
    Tensor
        ``(B, T - 1)`` float tensor.

    Raises
    ------
    ValueError
        If ``ids`` is not ``(B, T)`` with ``T >= 2``.
    """
    if ids.dim() != 2 or ids.size(1) < 2:
        raise ValueError(f"ids must have shape (B, T) with T >= 2; got {tuple(ids.shape)}")
    device = _model_device(model)
    ids = ids.to(device)
    logits = model(ids[:, :-1]).float()
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, ids[:, 1:, None]).squeeze(-1)


#: Groups of rows (sorted by length) that :func:`sequence_logprob` scores separately; a
#: batch gets at most one group per 8 rows.
LOGPROB_GROUPS = 4


def sequence_logprob(model: nn.Module, ids: Tensor, completion_mask: Tensor) -> Tensor:
    """Sum of the log-probabilities of the completion tokens (differentiable).

    ``out[b] = sum_{t >= 1} completion_mask[b, t] * log p(ids[b, t] | ids[b, :t])``,
    i.e. :func:`token_logprobs` summed under ``completion_mask[:, 1:]``.

    Parameters
    ----------
    model : MelodyTransformer
    ids : LongTensor
        ``(B, T)``.
    completion_mask : BoolTensor
        ``(B, T)``, aligned with ``ids`` (as in :class:`SampleBatch`).

    Returns
    -------
    Tensor
        ``(B,)``.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    if completion_mask.shape != ids.shape:
        raise ValueError(
            f"completion_mask shape {tuple(completion_mask.shape)} must equal ids shape "
            f"{tuple(ids.shape)}"
        )
    b = ids.size(0)
    # Position of the last completion token + 1: the model is causal, so the columns after
    # it change nothing before it and can be cut. Rows sorted by that length are scored in
    # a few groups, each cut to its own longest row, so that short melodies are not
    # padded to the longest one of the batch (the same sums, less work).
    cols = torch.arange(ids.size(1))[None, :]
    ends = torch.where(completion_mask.cpu(), cols + 1, torch.zeros_like(cols)).amax(dim=1)
    ends = ends.clamp(min=2)
    order = torch.argsort(ends)
    groups = max(1, min(LOGPROB_GROUPS, b // 8))
    parts: list[Tensor] = []
    for rows in torch.tensor_split(order, groups):
        width = int(ends[rows].max())
        lp = token_logprobs(model, ids[rows, :width])
        mask = completion_mask[rows, 1:width].to(device=lp.device, dtype=lp.dtype)
        parts.append((lp * mask).sum(dim=-1))
    out = torch.cat(parts)
    return out[torch.argsort(order).to(out.device)]


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int) -> Tensor:
    """Right-pad token lists to a ``(B, max_len)`` LongTensor."""
    if not seqs:
        raise ValueError("seqs must hold at least one sequence")
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out


def completion_mask_for(ids: Tensor, prefix_length: int, pad_id: int) -> Tensor:
    """Mask of the completion tokens of right-padded sequences: after the prefix, not pad."""
    mask = ids != pad_id
    mask[:, :prefix_length] = False
    return mask
