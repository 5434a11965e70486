"""prunekit: one-shot pruning of Hugging Face language models.

Magnitude, Wanda and SparseGPT, unstructured and N:M, through a sequential layer-by-layer
engine; perplexity evaluation under a named protocol; atomic saving to standard folders.

Examples
--------
>>> from prunekit import PruneConfig, prune  # doctest: +SKIP
>>> config = PruneConfig(method="wanda", nsamples=8, seqlen=128)
>>> report = prune(model, config, calibration)  # doctest: +SKIP
"""

from prunekit.adapters import ADAPTERS, ModelAdapter, decoder_layers, get_adapter
from prunekit.config import PruneConfig
from prunekit.evaluation import Perplexity, PerplexityRatio, perplexity, perplexity_ratio
from prunekit.masks import NMPattern, nm_mask, unstructured_mask
from prunekit.methods import METHODS, LayerStatistics, MethodResult
from prunekit.pruning import prune
from prunekit.report import LayerSparsity, PruneReport, layer_sparsity
from prunekit.saving import save_model

__all__ = [
    "ADAPTERS",
    "LayerSparsity",
    "LayerStatistics",
    "METHODS",
    "MethodResult",
    "ModelAdapter",
    "NMPattern",
    "Perplexity",
    "PerplexityRatio",
    "PruneConfig",
    "PruneReport",
    "__version__",
    "decoder_layers",
    "get_adapter",
    "layer_sparsity",
    "nm_mask",
    "perplexity",
    "perplexity_ratio",
    "prune",
    "save_model",
    "unstructured_mask",
]

__version__ = "0.1.0"
