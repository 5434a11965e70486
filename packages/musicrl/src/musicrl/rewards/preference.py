"""Bradley-Terry reward model trained on pairwise preference records (MusicRL's user reward).

A small network ``r(prompt, melody)`` maps generic melody descriptors (pitch classes
relative to the prompt's tonic, interval and duration histograms, final note, bar fit,
length against the length tag, range, variety) to a scalar. It is fitted by maximum
likelihood on pairs ``(prompt, A, B, choice)`` under the Bradley-Terry model
(Bradley & Terry 1952), ``P(A ≻ B) = σ(r_A - r_B)``, with ties handled in one of two
documented ways (``ties=``):

* ``"davidson"`` (default): Davidson's (1970) extension,
  ``P(A) = e^{s/2}/Z, P(B) = e^{-s/2}/Z, P(tie) = ν/Z``, ``Z = e^{s/2}+e^{-s/2}+ν``,
  ``s = r_A - r_B``, with ``ν = e^{θ}`` learned jointly. A tie is evidence that the two
  melodies are close, which this uses.
* ``"half"``: a tie counts as half a win for each side (loss
  ``-½ log σ(s) - ½ log σ(-s)``), the usual trick in RLHF code.

The descriptors are generic (they are what a musician would measure first); they were
written by the same people who wrote the simulated taste, so learning the taste from them
is easier than learning real listeners' taste from tokens would be. The benchmark reports
the model's held-out accuracy next to the best achievable (the noiseless taste on the same
noisy labels).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from musicrl._music import bar_fit_fraction, count_bars, prompt_key
from musicrl.corpus import DURATION_TICKS, LENGTHS, Melody, Prompt
from musicrl.rewards.adherence import _atomic_torch_save, _first_line, load_reward_payload

__all__ = [
    "TIE_METHODS",
    "PreferenceFitResult",
    "PreferenceRewardModel",
    "bradley_terry_loss",
    "preference_features",
]

logger = logging.getLogger(__name__)

TIE_METHODS: tuple[str, ...] = ("davidson", "half")
N_FEATURES = 12 + 25 + len(DURATION_TICKS) + 12 + 1 + 1 + len(LENGTHS) + 1 + 1 + 1 + 1 + 2


def preference_features(prompt: Prompt, melody: Melody) -> np.ndarray:
    """Generic descriptors of a melody given its prompt (length :data:`N_FEATURES`).

    Blocks: duration-weighted pitch-class histogram relative to the tonic (12); signed
    interval histogram clipped to ±12 semitones (25); duration histogram over
    ``corpus.DURATION_TICKS`` (len); last pitch class relative to the tonic, one-hot (12);
    bar-fit fraction (1); log2 of the length in bars (1); length tag one-hot (3);
    distinct pitches / 12 (1); range / 24 (1); rest share (1); note count / 100 (1);
    mode one-hot (2). All zeros except the tags when there is no pitched note.
    """
    out = np.zeros(N_FEATURES)
    pitches = melody.pitches
    tonic, mode = prompt_key(prompt, melody) if pitches else (0, prompt.mode or "major")
    i = 0
    if pitches:
        hist = np.zeros(12)
        for n in melody.notes:
            if n.pitch is not None:
                hist[(n.pitch - tonic) % 12] += n.duration
        out[i : i + 12] = hist / hist.sum()
    i += 12
    if len(pitches) > 1:
        steps = np.clip(np.diff(np.asarray(pitches)), -12, 12) + 12
        out[i : i + 25] = np.bincount(steps, minlength=25) / len(steps)
    i += 25
    if melody.notes:
        for n in melody.notes:
            if n.ticks in DURATION_TICKS:
                out[i + DURATION_TICKS.index(n.ticks)] += 1.0 / len(melody.notes)
    i += len(DURATION_TICKS)
    if pitches:
        out[i + (pitches[-1] - tonic) % 12] = 1.0
    i += 12
    meter = prompt.meter or melody.meter
    out[i] = bar_fit_fraction(melody, meter)
    i += 1
    out[i] = math.log2(max(count_bars(melody, meter), 0.25)) if melody.notes else -2.0
    i += 1
    if prompt.length is not None:
        out[i + LENGTHS.index(prompt.length)] = 1.0
    i += len(LENGTHS)
    if pitches:
        out[i] = len(set(pitches)) / 12.0
        out[i + 1] = (max(pitches) - min(pitches)) / 24.0
    i += 2
    if melody.notes:
        out[i] = sum(n.duration for n in melody.notes if n.pitch is None) / max(
            melody.total_duration, 1e-9
        )
        out[i + 1] = len(melody.notes) / 100.0
    i += 2
    out[i + (1 if mode == "minor" else 0)] = 1.0
    return out


def bradley_terry_loss(
    diff: torch.Tensor,
    choice: torch.Tensor,
    ties: str = "davidson",
    log_nu: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean negative log-likelihood of choices given reward differences ``r_A - r_B``.

    Parameters
    ----------
    diff : torch.Tensor
        ``[n]`` reward differences.
    choice : torch.Tensor
        ``[n]`` integer codes: 0 = A preferred, 1 = B preferred, 2 = tie.
    ties : {"davidson", "half"}
        Tie model (module docstring).
    log_nu : torch.Tensor, optional
        ``log ν`` for Davidson's model (scalar); default 0 (``ν = 1``).

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> d = torch.tensor([0.0]); c = torch.tensor([0])
    >>> round(float(bradley_terry_loss(d, c, ties="half")), 4)  # -log σ(0) = log 2
    0.6931
    """
    if ties not in TIE_METHODS:
        raise ValueError(f"ties must be one of {list(TIE_METHODS)}; got {ties!r}")
    if ties == "half":
        lp_a = nn.functional.logsigmoid(diff)
        lp_b = nn.functional.logsigmoid(-diff)
        ll = torch.where(choice == 0, lp_a, torch.where(choice == 1, lp_b, 0.5 * (lp_a + lp_b)))
        return -ll.mean()
    ln = log_nu if log_nu is not None else torch.zeros(())
    logits = torch.stack([diff / 2, -diff / 2, ln.expand_as(diff)], dim=1)
    return nn.functional.cross_entropy(logits, choice)


class _RewardNet(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(N_FEATURES, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )
        self.register_buffer("mean", torch.zeros(N_FEATURES))
        self.register_buffer("std", torch.ones(N_FEATURES))
        self.log_nu = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)


@dataclass(frozen=True)
class PreferenceFitResult:
    """Training summary of a :class:`PreferenceRewardModel`.

    ``valid_accuracy`` is the pairwise accuracy (ties excluded) on the held-out split;
    ``epochs_run`` how many epochs ran before early stopping.
    """

    train_loss: float
    valid_loss: float
    valid_accuracy: float
    n_train: int
    n_valid: int
    epochs_run: int


def _choice_codes(choices: Sequence[str]) -> torch.Tensor:
    codes = {"A": 0, "B": 1, "tie": 2}
    out = []
    for i, c in enumerate(choices):
        if c not in codes:
            raise ValueError(f"choices[{i}] must be one of 'A', 'B', 'tie'; got {c!r}")
        out.append(codes[c])
    return torch.tensor(out, dtype=torch.long)


def pairwise_accuracy(diff: np.ndarray, choices: Sequence[str]) -> float:
    """Share of non-tie records where ``sign(r_A - r_B)`` agrees with the choice.

    A zero difference counts one half. ``nan`` when every record is a tie.
    """
    hits = 0.0
    n = 0
    for d, c in zip(diff, choices, strict=True):
        if c == "tie":
            continue
        n += 1
        hits += 0.5 if d == 0 else float((d > 0) == (c == "A"))
    return hits / n if n else math.nan


class PreferenceRewardModel:
    """Bradley-Terry reward model over melody descriptors (see the module docstring).

    Parameters
    ----------
    hidden : int
        Width of the two hidden layers (64: the input has ~80 descriptors).
    ties : {"davidson", "half"}
        How ties enter the likelihood.
    epochs : int
        Maximum passes over the training pairs (200).
    batch_size : int
        Minibatch size (128).
    lr : float
        Adam learning rate (1e-3, Adam's default, Kingma & Ba 2015).
    weight_decay : float
        AdamW decoupled weight decay (1e-2, AdamW's default, Loshchilov & Hutter 2019).
    valid_fraction : float
        Share of records held out for early stopping and the reported accuracy (0.2).
    patience : int
        Epochs without validation-loss improvement before stopping (20).
    seed : int
        Seed of the split, the initialisation and the batch order.

    Examples
    --------
    >>> model = PreferenceRewardModel().fit(prompts, a, b, choices)  # doctest: +SKIP
    >>> model.score(prompts, a)  # doctest: +SKIP
    """

    name = "preference"

    def __init__(
        self,
        hidden: int = 64,
        ties: Literal["davidson", "half"] = "davidson",
        epochs: int = 200,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        valid_fraction: float = 0.2,
        patience: int = 20,
        seed: int = 0,
    ) -> None:
        if ties not in TIE_METHODS:
            raise ValueError(f"ties must be one of {list(TIE_METHODS)}; got {ties!r}")
        if hidden < 1 or epochs < 1 or batch_size < 1 or patience < 1:
            raise ValueError(
                "hidden, epochs, batch_size and patience must be >= 1; got "
                f"{hidden}, {epochs}, {batch_size}, {patience}"
            )
        if not 0.0 <= valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1); got {valid_fraction}")
        self.hidden = hidden
        self.ties = ties
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.seed = seed
        self.net_ = _RewardNet(hidden)
        self.fit_result_: PreferenceFitResult | None = None

    @staticmethod
    def features(prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> torch.Tensor:
        """``[n, N_FEATURES]`` float32 descriptors."""
        if len(prompts) != len(melodies):
            raise ValueError(
                f"prompts and melodies must have the same length; got {len(prompts)} "
                f"and {len(melodies)}"
            )
        if not melodies:
            return torch.zeros((0, N_FEATURES))
        rows = [preference_features(p, m) for p, m in zip(prompts, melodies, strict=True)]
        return torch.tensor(np.stack(rows), dtype=torch.float32)

    def fit(
        self,
        prompts: Sequence[Prompt],
        melodies_a: Sequence[Melody],
        melodies_b: Sequence[Melody],
        choices: Sequence[str],
    ) -> PreferenceRewardModel:
        """Fit on pairs by maximum likelihood with early stopping on a held-out split.

        Raises
        ------
        ValueError
            If the lengths differ, a choice is not ``A``/``B``/``tie``, there are
            fewer than 2 records, or every record is a tie.
        """
        n = len(choices)
        if not (len(prompts) == len(melodies_a) == len(melodies_b) == n):
            raise ValueError(
                "prompts, melodies_a, melodies_b and choices must have the same length; got "
                f"{len(prompts)}, {len(melodies_a)}, {len(melodies_b)}, {n}"
            )
        if n < 2:
            raise ValueError(f"need at least 2 preference records to fit; got {n}")
        y = _choice_codes(choices)
        if all(c == "tie" for c in choices):
            raise ValueError(
                f"need at least one record with choice 'A' or 'B' to fit; all {n} are ties"
            )
        xa = self.features(prompts, melodies_a)
        xb = self.features(prompts, melodies_b)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n)
        n_valid = int(n * self.valid_fraction)
        va, tr = torch.as_tensor(order[:n_valid]), torch.as_tensor(order[n_valid:])
        torch.manual_seed(self.seed)
        self.net_ = _RewardNet(self.hidden)
        both = torch.cat([xa[tr], xb[tr]])
        self.net_.mean.copy_(both.mean(0))
        self.net_.std.copy_(both.std(0).clamp_min(1e-3))
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)

        def loss_on(idx: torch.Tensor) -> torch.Tensor:
            diff = self.net_(xa[idx]) - self.net_(xb[idx])
            return bradley_terry_loss(diff, y[idx], self.ties, self.net_.log_nu)

        best = math.inf
        best_state = {k: v.clone() for k, v in self.net_.state_dict().items()}
        bad = 0
        epochs_run = 0
        train_loss = math.nan
        for _epoch in range(self.epochs):
            epochs_run += 1
            perm = tr[torch.randperm(len(tr), generator=gen)]
            self.net_.train()
            total = 0.0
            for start in range(0, len(perm), self.batch_size):
                idx = perm[start : start + self.batch_size]
                opt.zero_grad()
                loss = loss_on(idx)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            train_loss = total / max(len(tr), 1)
            if n_valid == 0:
                continue
            with torch.no_grad():
                vloss = float(loss_on(va))
            if vloss < best - 1e-4:
                best, bad = vloss, 0
                best_state = {k: v.clone() for k, v in self.net_.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if n_valid:
            self.net_.load_state_dict(best_state)
            with torch.no_grad():
                diff = (self.net_(xa[va]) - self.net_(xb[va])).numpy()
            acc = pairwise_accuracy(diff, [choices[int(i)] for i in va])
        else:
            best, acc = math.nan, math.nan
        self.net_.eval()
        self.fit_result_ = PreferenceFitResult(train_loss, best, acc, len(tr), n_valid, epochs_run)
        logger.info(
            "preference reward model: %d epochs, valid loss %.4f, valid pairwise accuracy %.3f",
            epochs_run,
            best,
            acc,
        )
        return self

    def score(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray:
        """Reward ``r(prompt, melody)`` of each pair ``(prompts[i], melodies[i])``."""
        x = self.features(prompts, melodies)
        with torch.no_grad():
            return self.net_(x).double().numpy()

    def accuracy(
        self,
        prompts: Sequence[Prompt],
        melodies_a: Sequence[Melody],
        melodies_b: Sequence[Melody],
        choices: Sequence[str],
    ) -> float:
        """Pairwise accuracy on records (ties excluded): see :func:`pairwise_accuracy`."""
        diff = self.score(prompts, melodies_a) - self.score(prompts, melodies_b)
        return pairwise_accuracy(diff, choices)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights atomically (``torch.save``; load with ``weights_only=True``)."""
        payload = {
            "kind": "preference",
            "hidden": self.hidden,
            "ties": self.ties,
            "state_dict": self.net_.state_dict(),
        }
        _atomic_torch_save(payload, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PreferenceRewardModel:
        """Load a model written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is unreadable or not a preference reward model (names the file).
        """
        payload = load_reward_payload(path, "preference", "a preference reward model file")
        try:
            model = cls(hidden=int(payload["hidden"]), ties=payload["ties"])
            model.net_.load_state_dict(payload["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"{path} is not a valid preference reward model file ({_first_line(err)}); "
                "train it again with musicrl train-reward"
            ) from None
        model.net_.eval()
        return model
