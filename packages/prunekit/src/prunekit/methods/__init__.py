"""Unstructured and N:M pruning methods, each a pure function from weights and statistics.

:data:`METHODS` is the registry (a plain dict) that the engine, the CLI choices, the config
validation and the docs read.
"""

from __future__ import annotations

from prunekit.methods._base import LayerStatistics, MethodResult, PruningMethod, Statistic
from prunekit.methods.magnitude import magnitude_prune
from prunekit.methods.sparsegpt import sparsegpt_prune
from prunekit.methods.wanda import wanda_prune, wanda_scores

__all__ = [
    "METHODS",
    "LayerStatistics",
    "MethodResult",
    "PruningMethod",
    "Statistic",
    "magnitude_prune",
    "sparsegpt_prune",
    "wanda_prune",
    "wanda_scores",
]

#: Registered unstructured / N:M pruning methods, keyed by name.
METHODS: dict[str, PruningMethod] = {
    "magnitude": PruningMethod(
        name="magnitude",
        statistic="none",
        run=magnitude_prune,
        summary="|W| (Han et al. 2015); no calibration data needed",
    ),
    "sparsegpt": PruningMethod(
        name="sparsegpt",
        statistic="hessian",
        run=sparsegpt_prune,
        summary="OBS reconstruction with weight updates (Frantar & Alistarh 2023), kept "
        "weights then re-solved for the mask",
    ),
    "wanda": PruningMethod(
        name="wanda",
        statistic="input_norms",
        run=wanda_prune,
        summary="|W|·‖x‖₂ per output row (Sun et al. 2023)",
    ),
}
