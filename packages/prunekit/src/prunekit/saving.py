"""Save a pruned model as a standard Hugging Face folder, atomically.

The folder holds ``config.json``, ``model.safetensors`` (sharded for large models) and the
tokenizer files, exactly what ``transformers.AutoModelForCausalLM.from_pretrained`` loads.
It is first written to a hidden temporary folder beside the target and then renamed into
place, so an error or an interruption leaves no partial output folder; an existing folder
and the model's own source folder are never written over.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["check_output_dir", "save_model"]

logger = logging.getLogger(__name__)


def check_output_dir(
    path: str | os.PathLike[str], *, source: str | os.PathLike[str] | None = None
) -> Path:
    """Validate an output folder before any work starts.

    Parameters
    ----------
    path : path-like
        Folder to create. It must not exist; its parent must exist.
    source : path-like or None
        The folder or file the model was loaded from, which must not be ``path``.

    Returns
    -------
    pathlib.Path
        The absolute output path.

    Raises
    ------
    ValueError
        If ``path`` exists, equals or contains ``source``, lies inside a ``source`` folder,
        or its parent folder is missing.
    """
    target = Path(path).expanduser().resolve()
    if source is not None:
        src = Path(source).expanduser()
        if src.exists():
            src = src.resolve()
            if target == src or target in src.parents:
                raise ValueError(
                    f"save folder {os.fspath(path)!r} is the model's source {os.fspath(source)!r}; "
                    "prunekit never writes over its input, choose a new folder"
                )
            if src.is_dir() and src in target.parents:
                raise ValueError(
                    f"save folder {os.fspath(path)!r} lies inside the model's source folder "
                    f"{os.fspath(source)!r}; prunekit never writes into its input, choose a "
                    "folder outside it"
                )
    if target.exists():
        raise ValueError(
            f"save folder {os.fspath(path)!r} already exists; choose a new folder or remove it"
        )
    if not target.parent.is_dir():
        raise ValueError(
            f"the parent folder of save folder {os.fspath(path)!r} does not exist; create it first"
        )
    return target


def save_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    tokenizer: Any | None = None,
    source: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``model`` (and ``tokenizer``) to a new Hugging Face folder, atomically.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The model to save (safetensors weights).
    path : path-like
        New folder; must not exist.
    tokenizer : transformers tokenizer or None
        Saved alongside when given.
    source : path-like or None
        The model's source, protected from being overwritten.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    ValueError
        See :func:`check_output_dir`.

    Examples
    --------
    >>> save_model(model, "out/pruned", tokenizer=tok)  # doctest: +SKIP
    PosixPath('.../out/pruned')
    """
    target = check_output_dir(path, source=source)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        save = getattr(model, "save_pretrained", None)
        if save is None:
            raise TypeError(
                f"model must be a transformers PreTrainedModel with save_pretrained; got "
                f"{type(model).__name__}"
            )
        save(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        # rename() of a directory fails if the target appeared meanwhile and is not empty.
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved model to %s", target)
    return target
