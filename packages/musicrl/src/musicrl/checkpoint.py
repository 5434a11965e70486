"""Save and load a generator checkpoint: a folder with safetensors weights and JSON.

Layout of a checkpoint folder::

    model.safetensors   the MelodyTransformer's state dict (safetensors, no pickle)
    tokenizer.json      Tokenizer.to_json
    config.json         {"format", "version", "generator": GeneratorConfig, "extra": {...}}

Writes are atomic: the folder is built under a temporary name next to the target and
renamed into place, so a reader never sees a half-written checkpoint and a crash leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from musicrl.generator import GeneratorConfig, MelodyTransformer
from musicrl.tokenizer import Tokenizer

_FORMAT = "musicrl-checkpoint"
_VERSION = 1
_FILES = ("model.safetensors", "tokenizer.json", "config.json")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model : MelodyTransformer
        In eval mode, on the requested device.
    tokenizer : Tokenizer
    gen_config : GeneratorConfig
    extra : dict
        The JSON metadata saved with it (training settings, metrics, step counters).
    """

    model: MelodyTransformer
    tokenizer: Tokenizer
    gen_config: GeneratorConfig
    extra: dict[str, Any] = field(default_factory=dict)


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a musicrl checkpoint."""
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in _FILES)


def save_checkpoint(
    path: str | Path,
    model: MelodyTransformer,
    tokenizer: Tokenizer,
    gen_config: GeneratorConfig,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically.

    The folder is written under a temporary name in the same parent and renamed to
    ``path``. An existing checkpoint at ``path`` is replaced (renamed aside, the new one
    renamed in, the old one deleted), so repeated saves to one "last" checkpoint work
    and an interruption leaves either the old or the new one. Anything at ``path`` that
    is not a musicrl checkpoint is never overwritten.

    Parameters
    ----------
    path : str or Path
        Target folder.
    model : MelodyTransformer
        Its ``state_dict`` is saved (moved to CPU, made contiguous).
    tokenizer : Tokenizer
    gen_config : GeneratorConfig
        Must match ``model.config``.
    extra : dict or None
        JSON-serialisable metadata.

    Returns
    -------
    Path
        The checkpoint folder.

    Raises
    ------
    ValueError
        If ``gen_config`` differs from the model's, the tokenizer's vocabulary size
        differs from the config's, ``extra`` is not JSON-serialisable, or ``path``
        exists and is not a checkpoint folder.
    TrainingDivergedError
        If a weight is NaN or infinite (never saved).
    """
    from safetensors.torch import save_file

    target = Path(path)
    if gen_config != model.config:
        raise ValueError(f"gen_config {gen_config} does not match the model's {model.config}")
    if tokenizer.vocab_size != gen_config.vocab_size:
        raise ValueError(
            f"tokenizer.vocab_size ({tokenizer.vocab_size}) must equal "
            f"gen_config.vocab_size ({gen_config.vocab_size})"
        )
    try:
        meta = json.dumps(
            {
                "format": _FORMAT,
                "version": _VERSION,
                "generator": gen_config.to_dict(),
                "extra": dict(extra or {}),
            },
            indent=1,
        )
    except TypeError as err:
        raise ValueError(f"extra must be JSON-serialisable: {err}") from None
    check_finite_parameters(
        model, "Lower the learning rate (or DPO's beta) and train again from the base."
    )
    if target.exists() and not is_checkpoint(target):
        raise ValueError(
            f"path {str(target)!r} exists and is not a musicrl checkpoint; refusing to "
            "overwrite it (choose a new folder)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        tokenizer.to_json(tmp / "tokenizer.json")
        (tmp / "config.json").write_text(meta, encoding="utf-8")
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.replace(target, old / "ckpt")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return target


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (safetensors, no pickle).

    Parameters
    ----------
    path : str or Path
        The checkpoint folder.
    device : str, torch.device or None
        Where to put the model (default CPU).

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a checkpoint folder.
    ValueError
        If a file is unreadable (not JSON, not safetensors), is not a musicrl checkpoint
        file, or the files do not fit together (the weights' tensors do not match the
        config's shapes); the message names the file.
    """
    from safetensors.torch import load_file

    p = Path(path)
    if not is_checkpoint(p):
        raise FileNotFoundError(
            f"{str(p)!r} is not a musicrl checkpoint folder (needs {', '.join(_FILES)})"
        )
    config_file = p / "config.json"
    meta = read_json_file(config_file, "a musicrl checkpoint config")
    if meta.get("format") != _FORMAT:
        raise ValueError(
            f"{config_file} is not a musicrl checkpoint config "
            f"(field 'format' must be {_FORMAT!r}; got {meta.get('format')!r})"
        )
    if not isinstance(meta.get("generator"), dict):
        what = "is missing" if "generator" not in meta else "must be an object"
        raise ValueError(
            f"{config_file}: field 'generator' {what} (expected the model's GeneratorConfig "
            "as a JSON object, as save_checkpoint writes it)"
        )
    try:
        gen_config = GeneratorConfig.from_dict(meta["generator"])
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{config_file}: field 'generator' is not a valid GeneratorConfig: {err}"
        ) from None
    extra = meta.get("extra", {})
    if not isinstance(extra, dict):
        raise ValueError(f"{config_file}: field 'extra' must be an object; got {extra!r}")
    tokenizer = Tokenizer.from_json(p / "tokenizer.json")
    if tokenizer.vocab_size != gen_config.vocab_size:
        raise ValueError(
            f"checkpoint {str(p)!r}: tokenizer has {tokenizer.vocab_size} tokens but the "
            f"model config says {gen_config.vocab_size}"
        )
    model = MelodyTransformer(gen_config, tokenizer)
    weights = p / "model.safetensors"
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as err:  # SafetensorError, OSError, or whatever corrupt bytes provoke
        raise ValueError(
            f"{weights} is not a readable safetensors checkpoint ({err}); it may be corrupt "
            "or truncated: save the checkpoint again"
        ) from None
    check_state_dict(model, state, f"{weights} (the weights) do not match {config_file}")
    model.load_state_dict(state, strict=True)
    if device is not None:
        model.to(device)
    model.eval()
    return Checkpoint(model, tokenizer, gen_config, dict(extra))


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; ValueError naming the file unless it is one.

    ``what`` says what the file should hold ("a musicrl checkpoint config").
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected {what}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object ({what}); got {type(data).__name__}")
    return data


def check_state_dict(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    what: str,
    expected: str = "the config gives",
) -> None:
    """Raise ValueError starting with ``what`` unless ``state`` fits ``model`` exactly.

    The message names the first missing, unexpected or differently shaped tensor;
    ``expected`` introduces the model's shape ("the config gives").
    """
    own = model.state_dict()
    for name, tensor in own.items():
        if name not in state:
            raise ValueError(f"{what}: tensor {name!r} is missing from the weights")
        got = tuple(state[name].shape)
        if got != tuple(tensor.shape):
            raise ValueError(
                f"{what}: tensor {name!r} has shape {got} in the weights but {expected} "
                f"{tuple(tensor.shape)} (weights of another model configuration?)"
            )
    extra = sorted(set(state) - set(own))
    if extra:
        raise ValueError(f"{what}: unexpected tensor {extra[0]!r} in the weights")


class TrainingDivergedError(RuntimeError):
    """Training produced non-finite (NaN or infinite) weights or loss; nothing is saved."""


def check_finite_parameters(model: torch.nn.Module, hint: str) -> None:
    """Raise :class:`TrainingDivergedError` if any parameter of ``model`` is NaN or infinite.

    ``hint`` ends the message (what to change, e.g. "lower the learning rate").
    """
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise TrainingDivergedError(
                f"training diverged: parameter {name!r} holds NaN or infinite values; "
                f"nothing was saved. {hint}"
            )
