"""Direct Preference Optimisation from the preference store: the offline alternative.

DPO (Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is
Secretly a Reward Model", eq. 7) trains the policy directly on preference pairs, with no
reward model and no sampling:

``L = -E[ log σ( β [ (log π(y_w|x) - log π_ref(y_w|x)) - (log π(y_l|x) - log π_ref(y_l|x)) ] ) ]``

where ``y_w`` is the preferred and ``y_l`` the other melody, ``π_ref`` the frozen base
model and ``β`` the strength of the implicit KL constraint (the same role as REINFORCE's
KL weight; 0.1 is the paper's default). Records judged a tie carry no preferred melody and
are left out (their count is logged). Log-probabilities are sums over the melody tokens
(EOS included), as in the paper.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from musicrl._checks import check_int, check_number
from musicrl.checkpoint import TrainingDivergedError, check_finite_parameters
from musicrl.generator import (
    MelodyTransformer,
    completion_mask_for,
    pad_sequences,
    sequence_logprob,
)
from musicrl.preferences import PreferenceStore
from musicrl.tokenizer import Tokenizer

__all__ = ["DPOConfig", "DPOResult", "dpo_finetune", "dpo_loss", "preference_pairs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DPOConfig:
    """Settings of a DPO run.

    Parameters
    ----------
    beta : float
        ``β > 0`` (0.1, Rafailov et al. 2023).
    epochs : int
        Passes over the non-tie pairs (2).
    batch_size : int
        Pairs per step (32).
    lr : float
        Adam learning rate (3e-4, as the REINFORCE fine-tune).
    grad_clip : float
        Global gradient-norm clip (1.0); 0 disables.
    seed : int
        Seeds the pair order.
    threads : int or None
        ``torch.set_num_threads`` for the run.

    Raises
    ------
    ValueError
        If ``beta`` or ``lr`` is not a finite number > 0, ``grad_clip`` is not finite and
        >= 0, or a count is not positive (the message names the field).
    TypeError
        If a field holds the wrong type (the message names the field).
    """

    beta: float = 0.1
    epochs: int = 2
    batch_size: int = 32
    lr: float = 3e-4
    grad_clip: float = 1.0
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.beta, bool)
            or not isinstance(self.beta, int | float)
            or not (math.isfinite(self.beta) and self.beta > 0)
        ):
            raise ValueError(f"beta of DPOConfig must be a finite number > 0; got {self.beta!r}")
        for name in ("epochs", "batch_size"):
            check_int("DPOConfig", name, getattr(self, name), minimum=1)
        check_number("DPOConfig", "lr", self.lr, minimum=0, strict=True)
        check_number("DPOConfig", "grad_clip", self.grad_clip, minimum=0)
        check_int("DPOConfig", "seed", self.seed)
        check_int("DPOConfig", "threads", self.threads, minimum=1, optional=True)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Mean DPO loss over pairs of sequence log-probabilities (Rafailov et al. 2023, eq. 7).

    Examples
    --------
    >>> z = torch.zeros(1)
    >>> round(float(dpo_loss(z, z, z, z, 0.1)), 4)  # -log σ(0) = log 2
    0.6931
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0; got {beta}")
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -nn.functional.logsigmoid(beta * margin).mean()


def preference_pairs(
    store: PreferenceStore, tokenizer: Tokenizer, max_len: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Token sequences ``(chosen, rejected)`` of the store's non-tie records.

    Records that are ties, or whose sequences do not fit ``max_len`` or the tokenizer's
    pitch range, are skipped (counted in the log).
    """
    chosen: list[list[int]] = []
    rejected: list[list[int]] = []
    skipped = {"tie": 0, "too long or out of range": 0}
    for r in store.records:
        if r.choice == "tie":
            skipped["tie"] += 1
            continue
        win, lose = (r.a, r.b) if r.choice == "A" else (r.b, r.a)
        try:
            w = tokenizer.encode_sequence(r.prompt, store.melodies[win])
            ell = tokenizer.encode_sequence(r.prompt, store.melodies[lose])
        except ValueError:
            skipped["too long or out of range"] += 1
            continue
        if len(w) > max_len or len(ell) > max_len:
            skipped["too long or out of range"] += 1
            continue
        chosen.append(w)
        rejected.append(ell)
    logger.info("DPO pairs: %d used, skipped %s", len(chosen), skipped)
    return chosen, rejected


@dataclass(frozen=True)
class DPOResult:
    """Outcome of :func:`dpo_finetune`: the model, the loss and the reward accuracy per step.

    ``accuracies`` is the share of pairs in the batch whose implicit reward margin is
    positive (before the step).
    """

    model: MelodyTransformer
    losses: list[float]
    accuracies: list[float]
    n_pairs: int
    seconds: float


def dpo_finetune(
    base: MelodyTransformer,
    tokenizer: Tokenizer,
    store: PreferenceStore,
    config: DPOConfig | None = None,
    *,
    progress: bool = True,
) -> DPOResult:
    """Fine-tune a copy of ``base`` with DPO on the store's records (``base`` is unchanged).

    Raises
    ------
    ValueError
        If no usable (non-tie) pair remains.
    TrainingDivergedError
        If the loss or a weight becomes NaN or infinite (beta or lr too large).
    """
    config = config or DPOConfig()
    chosen, rejected = preference_pairs(store, tokenizer, base.config.max_len)
    if not chosen:
        raise ValueError(f"the preference store has no usable non-tie pair ({len(store)} records)")
    old_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(base, tokenizer, chosen, rejected, config, progress)
    finally:
        torch.set_num_threads(old_threads)


def _logp(model: nn.Module, seqs: Sequence[list[int]], tokenizer: Tokenizer) -> torch.Tensor:
    ids = pad_sequences(seqs, tokenizer.pad_id)
    mask = completion_mask_for(ids, tokenizer.prefix_length, tokenizer.pad_id)
    return sequence_logprob(model, ids, mask)


def _train(
    base: MelodyTransformer,
    tokenizer: Tokenizer,
    chosen: list[list[int]],
    rejected: list[list[int]],
    config: DPOConfig,
    progress: bool,
) -> DPOResult:
    start = time.perf_counter()
    ref = copy.deepcopy(base).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    policy = copy.deepcopy(base).eval()  # no dropout: the loss compares log-probs exactly
    for p in policy.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(policy.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    n = len(chosen)
    with torch.no_grad():
        ref_c = torch.cat([_logp(ref, chosen[i : i + 64], tokenizer) for i in range(0, n, 64)])
        ref_r = torch.cat([_logp(ref, rejected[i : i + 64], tokenizer) for i in range(0, n, 64)])
    losses: list[float] = []
    accs: list[float] = []
    n_steps = config.epochs * math.ceil(n / config.batch_size)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, desc="dpo", unit="step")
    try:
        for _epoch in range(config.epochs):
            order = torch.randperm(n, generator=gen)
            for s in range(0, n, config.batch_size):
                idx = order[s : s + config.batch_size].tolist()
                pc = _logp(policy, [chosen[i] for i in idx], tokenizer)
                pr = _logp(policy, [rejected[i] for i in idx], tokenizer)
                loss = dpo_loss(pc, pr, ref_c[idx], ref_r[idx], config.beta)
                if not bool(torch.isfinite(loss)):
                    raise TrainingDivergedError(
                        f"training diverged: the DPO loss is {float(loss.detach())} at step "
                        f"{len(losses) + 1} (beta={config.beta:g}, lr={config.lr:g}); nothing was "
                        "saved. Lower --beta (0.1 is the usual value) or the learning rate."
                    )
                opt.zero_grad()
                loss.backward()
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
                opt.step()
                check_finite_parameters(
                    policy,
                    f"Lower --beta (now {config.beta:g}) or the learning rate (now {config.lr:g}).",
                )
                margin = (pc.detach() - ref_c[idx]) - (pr.detach() - ref_r[idx])
                losses.append(float(loss.detach()))
                accs.append(float((margin > 0).float().mean()))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        if bar is not None:
            bar.close()
    policy.eval()
    for p in policy.parameters():
        p.requires_grad_(False)
    return DPOResult(policy, losses, accs, n, time.perf_counter() - start)
