"""Pretraining of the melody transformer by teacher forcing on corpus pieces.

Loss: mean cross-entropy of the melody tokens and EOS given everything before them
(the prompt tokens are conditions, never predicted — the same tokens
:func:`musicrl.generator.sequence_logprob` scores). Optimiser and schedule follow GPT-2/3
practice as in nanoGPT: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices only),
linear warm-up then cosine decay to 10% of the peak rate, gradient clipping at 1.0.
Conditioning dropout (each tag replaced by ``unknown`` with probability
``tag_dropout``, as in classifier-free guidance training, Ho & Salimans 2022) teaches the
model partial prompts such as ``"G major, 6/8"``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from musicrl._checks import check_int, check_number
from musicrl.checkpoint import check_finite_parameters
from musicrl.corpus import Melody, Piece, Prompt
from musicrl.generator import GeneratorConfig, MelodyTransformer, pad_sequences
from musicrl.tokenizer import Tokenizer

logger = logging.getLogger(__name__)


def default_threads() -> int | None:
    """``$MUSICRL_THREADS`` as an int, else ``None`` (keep torch's setting)."""
    env = os.environ.get("MUSICRL_THREADS")
    return int(env) if env else None


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of a pretraining run.

    Parameters
    ----------
    epochs : int
        Passes over the training pieces (ignored when ``steps`` is set).
    steps : int or None
        Total optimiser steps; overrides ``epochs`` when set.
    batch_size : int
        Sequences per step.
    lr : float
        Peak learning rate (1e-3: nanoGPT's setting for small character-level models).
    warmup_steps : int
        Linear warm-up length; then cosine decay to ``lr / 10``.
    weight_decay : float
        AdamW decoupled weight decay on weight matrices (0.1, GPT-3).
    grad_clip : float
        Global gradient-norm clip (1.0, GPT-3); 0 disables.
    tag_dropout : float
        Probability of replacing each prompt tag by ``unknown`` in a training example.
    transpose : int
        Data augmentation: each training example is transposed by a uniform random
        number of semitones in ``-transpose..transpose`` (its key tag moved with it;
        shifts that would leave the tokenizer's pitch range are not used), as in Music
        Transformer (Huang et al. 2019, ±3 semitones). 0 disables it.
    val_fraction : float
        Fraction of pieces held out for the validation loss, in [0, 1).
    seed : int
        Seeds the initialisation, the split, the batch order and dropout.
    threads : int or None
        ``torch.set_num_threads`` for the run (restored afterwards); default
        ``$MUSICRL_THREADS`` or torch's own setting.

    Raises
    ------
    ValueError
        If a value is out of range (the message names it).
    TypeError
        If a field holds the wrong type, e.g. a float or bool ``epochs`` (named).
    """

    epochs: int = 20
    steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    tag_dropout: float = 0.1
    transpose: int = 0
    val_fraction: float = 0.1
    seed: int = 0
    threads: int | None = field(default_factory=default_threads)

    def __post_init__(self) -> None:
        owner = "PretrainConfig"
        check_int(owner, "epochs", self.epochs, minimum=1)
        check_int(owner, "steps", self.steps, minimum=1, optional=True)
        check_int(owner, "batch_size", self.batch_size, minimum=1)
        check_number(owner, "lr", self.lr, minimum=0, strict=True)
        check_int(owner, "warmup_steps", self.warmup_steps, minimum=0)
        check_number(owner, "weight_decay", self.weight_decay, minimum=0)
        check_number(owner, "grad_clip", self.grad_clip, minimum=0)
        check_number(owner, "tag_dropout", self.tag_dropout, minimum=0, maximum=1)
        check_int(owner, "transpose", self.transpose, minimum=0, maximum=11)
        check_number(owner, "val_fraction", self.val_fraction, minimum=0)
        if not self.val_fraction < 1:
            raise ValueError(
                f"PretrainConfig.val_fraction must be in [0, 1); got {self.val_fraction}"
            )
        check_int(owner, "seed", self.seed)
        check_int(owner, "threads", self.threads, minimum=1, optional=True)


@dataclass(frozen=True)
class PretrainResult:
    """Outcome of :func:`pretrain`.

    Attributes
    ----------
    model : MelodyTransformer
        The trained model (eval mode).
    train_losses : list of float
        Training loss (nats per melody token) at every step.
    val_losses : list of float
        Validation loss after every epoch (empty without a validation split).
    train_ids, val_ids : list of str
        Piece ids of the split.
    steps : int
        Optimiser steps taken.
    seconds : float
        Wall time of the training loop.
    skipped : int
        Pieces left out because their sequence is longer than ``max_len``.
    """

    model: MelodyTransformer
    train_losses: list[float]
    val_losses: list[float]
    train_ids: list[str]
    val_ids: list[str]
    steps: int
    seconds: float
    skipped: int

    @property
    def final_val_loss(self) -> float | None:
        """Last validation loss, or ``None`` without a validation split."""
        return self.val_losses[-1] if self.val_losses else None


def lr_at(step: int, total: int, config: PretrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, cosine decay to ``lr / 10``.

    ``lr * (step + 1) / warmup`` during warm-up, then
    ``lr_min + (lr - lr_min) * (1 + cos(pi * progress)) / 2`` with ``lr_min = lr / 10``.
    """
    lr_min = config.lr / 10
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(total - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    return lr_min + (config.lr - lr_min) * 0.5 * (1 + math.cos(math.pi * progress))


def completion_loss(
    model: MelodyTransformer, ids: Tensor, prefix_length: int, pad_id: int
) -> Tensor:
    """Mean next-token cross-entropy over completion tokens (after the prefix, not pad).

    Returns a scalar (nats per token), differentiable.
    """
    logits = model(ids[:, :-1])
    target = ids[:, 1:].clone()
    mask = target != pad_id
    mask[:, : prefix_length - 1] = False
    target[~mask] = -100
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100
    )


def _drop_tags(prompt: Prompt, p: float, rng: random.Random) -> Prompt:
    if p <= 0:
        return prompt
    changes = {name: None for name in prompt.tags() if rng.random() < p}
    return replace(prompt, **changes) if changes else prompt


def _augment(
    piece: Piece, config: PretrainConfig, tokenizer: Tokenizer, rng: random.Random
) -> tuple[Prompt, Melody]:
    prompt, melody = _drop_tags(piece.prompt, config.tag_dropout, rng), piece.melody
    if config.transpose > 0:
        pitches = melody.pitches
        lo = max(-config.transpose, tokenizer.min_pitch - min(pitches))
        hi = min(config.transpose, tokenizer.max_pitch - max(pitches))
        shift = rng.randint(lo, hi) if lo <= hi else 0
        if shift:
            prompt, melody = prompt.transposed(shift), melody.transposed(shift)
    return prompt, melody


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length sequences (less padding), in random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def evaluate_loss(
    model: MelodyTransformer,
    tokenizer: Tokenizer,
    pieces: Sequence[Piece],
    batch_size: int = 64,
) -> float:
    """Mean completion-token cross-entropy (nats/token) of ``pieces`` under ``model``.

    Raises
    ------
    ValueError
        If ``pieces`` is empty.
    """
    if not pieces:
        raise ValueError("pieces must not be empty")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    seqs = [tokenizer.encode(p) for p in pieces]
    try:
        for start in range(0, len(seqs), batch_size):
            ids = pad_sequences(seqs[start : start + batch_size], tokenizer.pad_id).to(device)
            logits = model(ids[:, :-1])
            target = ids[:, 1:].clone()
            mask = target != tokenizer.pad_id
            mask[:, : tokenizer.prefix_length - 1] = False
            nll = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none"
            ).view_as(target)
            total += float(nll[mask].sum())
            count += int(mask.sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def pretrain(
    pieces: Sequence[Piece],
    tokenizer: Tokenizer,
    gen_config: GeneratorConfig,
    config: PretrainConfig | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train a :class:`MelodyTransformer` from scratch on corpus pieces.

    Parameters
    ----------
    pieces : sequence of Piece
        Training data; a seeded ``val_fraction`` of it is held out.
    tokenizer : Tokenizer
    gen_config : GeneratorConfig
        Model shape; ``vocab_size`` must equal ``tokenizer.vocab_size``.
    config : PretrainConfig or None
        Run settings (default ``PretrainConfig()``).
    progress : bool
        Show a tqdm progress bar with the running loss.

    Returns
    -------
    PretrainResult

    Raises
    ------
    ValueError
        If ``pieces`` is empty, the vocabulary sizes differ, or no piece fits
        ``gen_config.max_len``.

    Examples
    --------
    >>> result = pretrain(pieces, Tokenizer(), GeneratorConfig(Tokenizer().vocab_size),
    ...                   PretrainConfig(epochs=5))  # doctest: +SKIP
    >>> result.final_val_loss  # doctest: +SKIP
    """
    config = config or PretrainConfig()
    if not pieces:
        raise ValueError("pieces must hold at least one Piece; got none")
    if gen_config.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"gen_config.vocab_size ({gen_config.vocab_size}) must equal "
            f"tokenizer.vocab_size ({tokenizer.vocab_size})"
        )
    encoded = [(p, tokenizer.encode(p)) for p in pieces]
    kept = [(p, ids) for p, ids in encoded if len(ids) <= gen_config.max_len]
    skipped = len(encoded) - len(kept)
    if skipped:
        logger.info("left out %d pieces longer than max_len=%d", skipped, gen_config.max_len)
    if not kept:
        raise ValueError(f"no piece fits gen_config.max_len={gen_config.max_len} tokens")
    rng = random.Random(config.seed)
    order = list(range(len(kept)))
    rng.shuffle(order)
    n_val = round(config.val_fraction * len(kept))
    if n_val >= len(kept):
        n_val = len(kept) - 1
    val = [kept[i][0] for i in sorted(order[:n_val])]
    train = [kept[i] for i in sorted(order[n_val:])]

    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return _train(train, val, tokenizer, gen_config, config, rng, progress, skipped)
    finally:
        torch.set_num_threads(old_threads)


def _train(
    train: list[tuple[Piece, list[int]]],
    val: list[Piece],
    tokenizer: Tokenizer,
    gen_config: GeneratorConfig,
    config: PretrainConfig,
    rng: random.Random,
    progress: bool,
    skipped: int,
) -> PretrainResult:
    model = MelodyTransformer(gen_config, tokenizer)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "emb" in n]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    lengths = [len(ids) for _, ids in train]
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = config.steps if config.steps is not None else config.epochs * steps_per_epoch
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="pretraining", unit="step")
    train_losses: list[float] = []
    val_losses: list[float] = []
    step = 0
    start = time.perf_counter()
    model.train()
    try:
        while step < total:
            for batch in _batches(lengths, config.batch_size, rng):
                if step >= total:
                    break
                seqs = [
                    tokenizer.encode_sequence(*_augment(train[i][0], config, tokenizer, rng))
                    for i in batch
                ]
                ids = pad_sequences(seqs, tokenizer.pad_id)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, config)
                loss = completion_loss(model, ids, tokenizer.prefix_length, tokenizer.pad_id)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                check_finite_parameters(
                    model, f"Lower the learning rate (now {config.lr:g}) and train again."
                )
                train_losses.append(loss.item())
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{train_losses[-1]:.3f}")
            if val:
                val_losses.append(evaluate_loss(model, tokenizer, val))
                logger.info("step %d: val loss %.4f", step, val_losses[-1])
                if bar is not None:
                    bar.set_postfix(loss=f"{train_losses[-1]:.3f}", val=f"{val_losses[-1]:.3f}")
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    model.eval()
    return PretrainResult(
        model=model,
        train_losses=train_losses,
        val_losses=val_losses,
        train_ids=[p.id for p, _ in train],
        val_ids=[p.id for p in val],
        steps=step,
        seconds=seconds,
        skipped=skipped,
    )
