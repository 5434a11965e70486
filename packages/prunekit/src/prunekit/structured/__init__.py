"""Structured pruning: remove whole attention heads and MLP channels (smaller, faster models).

Entry point: :func:`prune_structured` (called by :func:`prunekit.prune` when
``PruneConfig.structure != "none"``). Scores live in :mod:`.scores` and :mod:`.bonsai`,
allocation and exact-k selection in :mod:`.allocation`, slicing and config rewriting in
:mod:`.surgery`, throughput and FLOP counts in :mod:`.speed`.
"""

from prunekit.structured.bonsai import BonsaiOptions
from prunekit.structured.pruner import (
    SCORES,
    STRUCTURES,
    StructuredOptions,
    count_parameters,
    prune_structured,
)
from prunekit.structured.speed import (
    Throughput,
    compare_speed,
    forward_flops,
    generation_latency,
    prefill_throughput,
)

__all__ = [
    "SCORES",
    "STRUCTURES",
    "BonsaiOptions",
    "StructuredOptions",
    "Throughput",
    "compare_speed",
    "count_parameters",
    "forward_flops",
    "generation_latency",
    "prefill_throughput",
    "prune_structured",
]
