"""The record of a pruning run, written as JSON.

A :class:`PruneReport` holds what is needed to reproduce and judge a run: the full
configuration (calibration source, nsamples, seqlen, seed), library versions, the sparsity
achieved in every pruned module, wall time, peak resident memory, perplexities with their
protocol, and the structured-pruning summary when there was one.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.adapters import decoder_layers, get_weight, is_prunable

__all__ = ["LayerSparsity", "PruneReport", "layer_sparsity", "peak_rss_mib", "versions"]


@dataclass(frozen=True)
class LayerSparsity:
    """Zeros in one weight matrix."""

    name: str
    shape: tuple[int, int]
    zeros: int
    numel: int

    @property
    def sparsity(self) -> float:
        """Fraction of zero weights."""
        return self.zeros / self.numel if self.numel else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict including ``sparsity``."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "zeros": self.zeros,
            "numel": self.numel,
            "sparsity": self.sparsity,
        }


def layer_sparsity(model: nn.Module) -> list[LayerSparsity]:
    """Zero counts of every Linear-like module inside the decoder blocks of ``model``.

    Examples
    --------
    >>> [round(s.sparsity, 2) for s in layer_sparsity(model)]  # doctest: +SKIP
    [0.5, 0.5, ...]
    """
    layers = decoder_layers(model)
    names = {id(m): n for n, m in model.named_modules()}
    out: list[LayerSparsity] = []
    for block in layers:
        for module in block.modules():
            if is_prunable(module):
                weight = get_weight(module)
                out.append(
                    LayerSparsity(
                        name=names[id(module)],
                        shape=(int(weight.shape[0]), int(weight.shape[1])),
                        zeros=int((weight == 0).sum()),
                        numel=int(weight.numel()),
                    )
                )
    return out


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (``getrusage``; KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024
    return peak / divisor


def versions() -> dict[str, str]:
    """Versions of Python, prunekit, torch and transformers."""
    import transformers

    from prunekit import __version__

    return {
        "python": platform.python_version(),
        "prunekit": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


@dataclass(frozen=True)
class PruneReport:
    """What a pruning run did and measured.

    Attributes
    ----------
    config : dict
        The :class:`~prunekit.config.PruneConfig` as a dict (method, sparsity, pattern,
        calibration source, nsamples, seqlen, seed, ...).
    model_type : str
        ``config.model_type`` of the pruned model.
    source : str or None
        Where the model came from (path or hub id), when known.
    layers : list of LayerSparsity
        Achieved sparsity of every targeted module.
    wall_time_s : float
        Wall time of the pruning itself (capture, statistics, pruning, recomputation).
    peak_rss_mib : float
        Peak resident memory of the process so far, MiB.
    versions : dict
        Library versions.
    perplexity : dict
        Name (``"dense"``, ``"pruned"``) to a :class:`~prunekit.evaluation.Perplexity` dict.
    structured : dict or None
        Structured-pruning summary from :func:`prunekit.structured.prune_structured`.
    """

    config: dict[str, Any]
    model_type: str
    layers: list[LayerSparsity]
    wall_time_s: float
    peak_rss_mib: float
    versions: dict[str, str] = field(default_factory=versions)
    source: str | None = None
    perplexity: dict[str, dict[str, Any]] = field(default_factory=dict)
    structured: dict[str, Any] | None = None
    speed: dict[str, Any] | None = None

    @property
    def sparsity(self) -> float:
        """Overall fraction of zeros over the targeted modules."""
        numel = sum(layer.numel for layer in self.layers)
        return sum(layer.zeros for layer in self.layers) / numel if numel else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["layers"] = [layer.to_dict() for layer in self.layers]
        data["sparsity"] = self.sparsity
        return data

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` atomically (temp file in the folder + replace)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.to_json())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
