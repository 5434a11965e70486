"""Prompt adherence: a tag classifier trained on the corpus; the analog of MuLan's score.

MusicRL rewards prompt adherence with the MuLan text-audio similarity. Here the prompt is a
set of tags, so adherence is how probable the prompt's tags are given the melody, under a
classifier trained on corpus melodies with their true tags:

``reward(prompt, melody) = log p(key, mode | melody) + log p(meter | melody)
+ log p(length | melody)``

(only the tags the prompt specifies; a key without a mode is marginalised over modes, a
mode without a key over tonics). Log-probabilities are used, not probabilities, so that a
melody that is clearly in the wrong key gets a large, informative penalty (fine-tuning
replaces each batch's rewards by rank-based normal scores, so the long lower tail does not
dominate; ``finetune.normal_scores``).

The model has two heads, both linear (multinomial logistic regression):

* **key head**, transposition-equivariant by construction: for every candidate tonic
  ``t`` the melody's features are rotated so that ``t`` becomes pitch class 0, and a
  per-mode linear score of the rotated features gives the logit of ``(t, mode)``; a
  softmax runs over the 24 keys. This is a learned version of the Krumhansl-Schmuckler
  key-finding algorithm (Krumhansl 1990): the weights are key profiles learned from the
  corpus, plus first- and last-note profiles (melodies usually begin and end on tonic-triad
  notes). Equivariance means the classifier needs no transposed copies of the corpus.
* **meter head**: a softmax over ``corpus.METERS`` from rhythm descriptors: the
  histogram of inner-bar lengths, the histogram of note durations, and the fraction of
  note onsets that fall on multiples of 1/2, 1, 3/2, 2 and 3 quarter notes within the bar.
* **length head**: a softmax over ``corpus.LENGTHS`` from ``log2`` of the number of bars
  (pickup not counted, as the corpus tags count them) and its square. The length tag is
  part of the prompt like the others; without this head a reward built from per-note
  averages has no reason to keep melodies as long as asked (a fine-tune on such rewards
  alone was measured to shorten melodies from ~38 to ~16 notes).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musicrl._music import parse_tonic, pitch_class_weights
from musicrl.corpus import DURATION_TICKS, LENGTHS, METERS, Melody, Piece, Prompt, meter_ticks

__all__ = ["AdherenceClassifier", "AdherenceFitResult", "key_features", "meter_features"]

logger = logging.getLogger(__name__)

_MODES = ("major", "minor")
_BAR_TICKS: tuple[int, ...] = tuple(sorted({meter_ticks(m) for m in METERS}))
_ONSET_GRID: tuple[int, ...] = (6, 12, 18, 24, 36)  # ticks: 1/2, 1, 3/2, 2, 3 quarters
_N_KEY = 36
_N_METER = len(_BAR_TICKS) + 1 + len(DURATION_TICKS) + 1 + len(_ONSET_GRID)


def key_features(melody: Melody) -> np.ndarray:
    """Absolute pitch-class features ``(3, 12)``: duration histogram, first note, last note.

    Rows are normalised (the histogram sums to 1; first/last are one-hot); zeros when
    the melody has no pitched note.
    """
    out = np.zeros((3, 12))
    pitches = melody.pitches
    if not pitches:
        return out
    hist = pitch_class_weights(melody)
    out[0] = hist / hist.sum()
    out[1, pitches[0] % 12] = 1.0
    out[2, pitches[-1] % 12] = 1.0
    return out


def length_features(melody: Melody) -> np.ndarray:
    """``[log2 b, (log2 b)^2]`` with ``b`` the number of bars (pickup not counted, >= 0.5)."""
    b = max(float(melody.num_bars()), 0.5) if melody.notes else 0.5
    x = math.log2(b)
    return np.asarray([x, x * x])


def meter_features(melody: Melody) -> np.ndarray:
    """Rhythm descriptors of a melody for the meter head (float vector).

    Bar-length histogram over the bar lengths of ``corpus.METERS`` (+ other), duration
    histogram over ``corpus.DURATION_TICKS`` (+ other), and onset-grid fractions.
    """
    out = np.zeros(_N_METER)
    if not melody.notes:
        return out
    ticks = melody.bar_ticks()
    inner = ticks[1:-1] if len(ticks) > 2 else ticks
    for t in inner:
        idx = _BAR_TICKS.index(t) if t in _BAR_TICKS else len(_BAR_TICKS)
        out[idx] += 1.0 / len(inner)
    base = len(_BAR_TICKS) + 1
    for n in melody.notes:
        idx = DURATION_TICKS.index(n.ticks) if n.ticks in DURATION_TICKS else len(DURATION_TICKS)
        out[base + idx] += 1.0 / len(melody.notes)
    base += len(DURATION_TICKS) + 1
    # onset position inside each bar; the first bar is aligned to its end (a pickup)
    onsets: list[int] = []
    full = max(ticks[1:-1], default=max(ticks))
    for i, bar in enumerate(melody.bar_notes()):
        pos = full - ticks[0] if i == 0 and ticks[0] < full else 0
        for n in bar:
            onsets.append(pos)
            pos += n.ticks
    arr = np.asarray(onsets)
    for j, g in enumerate(_ONSET_GRID):
        out[base + j] = float(np.mean(arr % g == 0))
    return out


class _AdherenceNet(nn.Module):
    def __init__(self, n_meters: int) -> None:
        super().__init__()
        self.key = nn.Linear(_N_KEY, len(_MODES))
        self.meter = nn.Linear(_N_METER, n_meters)
        self.length = nn.Linear(2, len(LENGTHS))

    def key_logits(self, kf: torch.Tensor) -> torch.Tensor:
        # kf: [B, 3, 12] absolute; rotate so that candidate tonic t sits at index 0
        idx = (torch.arange(12)[:, None] + torch.arange(12)[None, :]) % 12  # [t, j]
        rotated = kf[:, :, idx]  # [B, 3, t, j]
        feats = rotated.permute(0, 2, 1, 3).reshape(kf.shape[0], 12, _N_KEY)
        return self.key(feats).reshape(kf.shape[0], 12 * len(_MODES))  # index t*2 + mode

    def forward(
        self, kf: torch.Tensor, mf: torch.Tensor, lf: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.key_logits(kf), self.meter(mf), self.length(lf)


@dataclass(frozen=True)
class AdherenceFitResult:
    """Held-out accuracies of a fitted :class:`AdherenceClassifier` (on its validation split)."""

    key_accuracy: float
    meter_accuracy: float
    length_accuracy: float
    n_train: int
    n_valid: int


class AdherenceClassifier:
    """Tag classifier (key/mode and meter) over melodies; its log-probability is a reward.

    Parameters
    ----------
    epochs : int
        Full-batch Adam steps (default 400; the heads are linear, so this converges).
    lr : float
        Adam learning rate (0.05; linear models on normalised features).
    weight_decay : float
        L2 penalty (1e-4), a small ridge that keeps logits finite on separable data.
    valid_fraction : float
        Share of pieces held out to report accuracies (0.2).
    seed : int
        Seed of the split and the initialisation.

    Examples
    --------
    >>> clf = AdherenceClassifier().fit(pieces)  # doctest: +SKIP
    >>> clf.score([Prompt.parse("G major, 6/8")], [melody])  # doctest: +SKIP
    """

    name = "adherence"

    def __init__(
        self,
        epochs: int = 400,
        lr: float = 0.05,
        weight_decay: float = 1e-4,
        valid_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1; got {epochs}")
        if not 0.0 <= valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1); got {valid_fraction}")
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.valid_fraction = valid_fraction
        self.seed = seed
        self.meters: tuple[str, ...] = METERS
        self.net_ = _AdherenceNet(len(self.meters))
        self.fit_result_: AdherenceFitResult | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, pieces: Sequence[Piece]) -> AdherenceClassifier:
        """Fit both heads on corpus pieces (their prompts give the labels).

        Raises
        ------
        ValueError
            If ``pieces`` is empty or no piece has a key, mode and meter tag.
        """
        usable = [
            p
            for p in pieces
            if p.prompt.key and p.prompt.mode and p.prompt.meter in self.meters and p.melody.pitches
        ]
        if not usable:
            raise ValueError(
                f"pieces must contain at least one melody with key, mode and meter tags; "
                f"got {len(pieces)} pieces, none usable"
            )
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(usable))
        n_valid = int(len(usable) * self.valid_fraction)
        valid_idx, train_idx = order[:n_valid], order[n_valid:]
        kf, mf, lf = self._features([p.melody for p in usable])
        key_y = torch.tensor(
            [
                parse_tonic(p.prompt.key or "C") * 2 + _MODES.index(p.prompt.mode or "major")
                for p in usable
            ]
        )
        meter_y = torch.tensor([self.meters.index(p.prompt.meter or "") for p in usable])
        length_y = torch.tensor(
            [LENGTHS.index(p.prompt.length) if p.prompt.length else -100 for p in usable]
        )
        torch.manual_seed(self.seed)
        self.net_ = _AdherenceNet(len(self.meters))
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        tr = torch.as_tensor(train_idx)
        for _ in range(self.epochs):
            opt.zero_grad()
            kl, ml, ll = self.net_(kf[tr], mf[tr], lf[tr])
            loss = (
                nn.functional.cross_entropy(kl, key_y[tr])
                + nn.functional.cross_entropy(ml, meter_y[tr])
                + nn.functional.cross_entropy(ll, length_y[tr], ignore_index=-100)
            )
            loss.backward()
            opt.step()
        if n_valid:
            va = torch.as_tensor(valid_idx)
            with torch.no_grad():
                kl, ml, ll = self.net_(kf[va], mf[va], lf[va])
            key_acc = float((kl.argmax(1) == key_y[va]).float().mean())
            meter_acc = float((ml.argmax(1) == meter_y[va]).float().mean())
            has_len = length_y[va] >= 0
            length_acc = (
                float((ll.argmax(1)[has_len] == length_y[va][has_len]).float().mean())
                if bool(has_len.any())
                else math.nan
            )
        else:
            key_acc = meter_acc = length_acc = math.nan
        self.fit_result_ = AdherenceFitResult(
            key_acc, meter_acc, length_acc, len(train_idx), n_valid
        )
        logger.info(
            "adherence classifier: held-out accuracy key %.3f, meter %.3f, length %.3f (n=%d)",
            key_acc,
            meter_acc,
            length_acc,
            n_valid,
        )
        return self

    @staticmethod
    def _features(
        melodies: Sequence[Melody],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        kf = torch.tensor(np.stack([key_features(m) for m in melodies]), dtype=torch.float32)
        mf = torch.tensor(np.stack([meter_features(m) for m in melodies]), dtype=torch.float32)
        lf = torch.tensor(np.stack([length_features(m) for m in melodies]), dtype=torch.float32)
        return kf, mf, lf

    # ------------------------------------------------------------------ scoring
    def log_probs(
        self, melodies: Sequence[Melody]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities over (tonic, mode) ``[n, 12, 2]``, meters ``[n, n_meters]`` and
        length tags ``[n, 3]`` (order of ``corpus.LENGTHS``)."""
        kf, mf, lf = self._features(melodies)
        with torch.no_grad():
            kl, ml, ll = self.net_(kf, mf, lf)
        key_lp = torch.log_softmax(kl, dim=1).reshape(len(melodies), 12, len(_MODES))
        return key_lp, torch.log_softmax(ml, dim=1), torch.log_softmax(ll, dim=1)

    def score(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray:
        """``log p(key, mode | m) + log p(meter | m) + log p(length | m)``, specified tags only.

        A melody without notes is scored on all-zero features (no evidence for any tag).
        """
        if len(prompts) != len(melodies):
            raise ValueError(
                f"prompts and melodies must have the same length; got {len(prompts)} "
                f"and {len(melodies)}"
            )
        if not melodies:
            return np.zeros(0)
        key_lp, meter_lp, length_lp = self.log_probs(melodies)
        out = np.zeros(len(melodies))
        for i, p in enumerate(prompts):
            total = 0.0
            if p.key is not None and p.mode is not None:
                total += float(key_lp[i, parse_tonic(p.key), _MODES.index(p.mode)])
            elif p.key is not None:
                total += float(torch.logsumexp(key_lp[i, parse_tonic(p.key)], dim=0))
            elif p.mode is not None:
                total += float(torch.logsumexp(key_lp[i, :, _MODES.index(p.mode)], dim=0))
            if p.meter is not None:
                if p.meter not in self.meters:
                    raise ValueError(
                        f"prompt meter must be one of {list(self.meters)}; got {p.meter!r}"
                    )
                total += float(meter_lp[i, self.meters.index(p.meter)])
            if p.length is not None:
                total += float(length_lp[i, LENGTHS.index(p.length)])
            out[i] = total
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights atomically (``torch.save`` of tensors and strings)."""
        payload = {
            "kind": "adherence",
            "meters": list(self.meters),
            "state_dict": self.net_.state_dict(),
        }
        _atomic_torch_save(payload, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AdherenceClassifier:
        """Load weights written by :meth:`save` (``torch.load(weights_only=True)``).

        Raises
        ------
        ValueError
            If the file is unreadable or not an adherence classifier (names the file).
        """
        payload = load_reward_payload(path, "adherence", "an adherence classifier file")
        try:
            clf = cls()
            clf.meters = tuple(str(m) for m in payload["meters"])
            clf.net_ = _AdherenceNet(len(clf.meters))
            clf.net_.load_state_dict(payload["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"{path} is not a valid adherence classifier file ({_first_line(err)}); "
                "train it again with musicrl train-reward --kind adherence"
            ) from None
        return clf


def _first_line(err: BaseException) -> str:
    """``Type: first sentence`` of an error (torch's messages run to paragraphs)."""
    if isinstance(err, pickle.UnpicklingError):
        return "UnpicklingError: not a torch.save file of tensors"
    text = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:160]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_reward_payload(path: str | os.PathLike[str], kind: str, what: str) -> dict[str, Any]:
    """The dict saved in a reward-model file (``torch.load(weights_only=True)``, no pickle).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable torch file (corrupt, truncated, empty, another
        format) or not a reward model of ``kind``; the message names the file.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt bytes can make the unpickler raise any error
        raise ValueError(
            f"{p} is not a readable reward model file (expected {what} written by musicrl "
            f"train-reward; torch.load failed: {_first_line(err)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        raise ValueError(f"{p} is not {what} (kind != {kind!r})")
    return payload


def _atomic_torch_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
