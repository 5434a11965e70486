"""Which modules are pruned: target and ignore name patterns.

Candidates are the Linear-like modules (``nn.Linear``, GPT-2 ``Conv1D``) inside the decoder
blocks; embeddings and ``lm_head`` are never candidates, so they stay dense (as in the
SparseGPT and Wanda papers). A pattern is a shell glob (:mod:`fnmatch`) or, with the
prefix ``re:``, a regular expression that must match the whole name. Each is tried against
the full module name (``model.layers.3.self_attn.q_proj``) and the name inside its block
(``self_attn.q_proj``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from torch import nn

from prunekit.adapters import decoder_layers, is_prunable

__all__ = ["TargetModule", "match_pattern", "resolve_targets"]


@dataclass(frozen=True)
class TargetModule:
    """One module selected for pruning."""

    block: int
    name: str
    relative_name: str
    module: nn.Module


def match_pattern(pattern: str, *names: str) -> bool:
    """Whether ``pattern`` (glob, or ``re:`` regex) matches any of ``names`` entirely.

    Examples
    --------
    >>> match_pattern("mlp.*", "model.layers.0.mlp.up_proj", "mlp.up_proj")
    True
    >>> match_pattern("re:.*\\.(q|k)_proj", "self_attn.v_proj")
    False
    """
    if pattern.startswith("re:"):
        regex = re.compile(pattern[3:])
        return any(regex.fullmatch(name) for name in names)
    return any(fnmatch.fnmatchcase(name, pattern) for name in names)


def _layers_prefix(model: nn.Module, layers: nn.ModuleList) -> str:
    for name, module in model.named_modules():
        if module is layers:
            return name
    raise ValueError("decoder blocks are not a submodule of the model")


def resolve_targets(
    model: nn.Module, targets: tuple[str, ...] = ("*",), ignore: tuple[str, ...] = ()
) -> list[TargetModule]:
    """Select the modules to prune, in block order and module order.

    Parameters
    ----------
    model : torch.nn.Module
        A causal LM known to :mod:`prunekit.adapters`.
    targets, ignore : tuple of str
        Patterns (see module docstring).

    Returns
    -------
    list of TargetModule

    Raises
    ------
    ValueError
        If a target pattern matches no candidate module, an ignore pattern matches no
        targeted module, or nothing is left to prune. The message lists a few candidates.
    """
    layers = decoder_layers(model)
    prefix = _layers_prefix(model, layers)
    candidates: list[TargetModule] = []
    for index, block in enumerate(layers):
        for rel, module in block.named_modules():
            if rel and is_prunable(module):
                candidates.append(TargetModule(index, f"{prefix}.{index}.{rel}", rel, module))
    examples = ", ".join(sorted({c.relative_name for c in candidates})[:8])

    selected: list[TargetModule] = []
    for pattern in targets:
        hits = [c for c in candidates if match_pattern(pattern, c.name, c.relative_name)]
        if not hits:
            raise ValueError(
                f"targets pattern {pattern!r} matches no Linear module inside the decoder "
                f"blocks; module names look like {prefix}.0.<name> with <name> in: {examples}"
            )
    selected = [
        c for c in candidates if any(match_pattern(p, c.name, c.relative_name) for p in targets)
    ]
    for pattern in ignore:
        if not any(match_pattern(pattern, c.name, c.relative_name) for c in selected):
            raise ValueError(
                f"ignore pattern {pattern!r} matches none of the targeted modules; "
                f"names look like {prefix}.0.<name> with <name> in: {examples}"
            )
    selected = [
        c for c in selected if not any(match_pattern(p, c.name, c.relative_name) for p in ignore)
    ]
    if not selected:
        raise ValueError(
            f"targets {list(targets)} minus ignore {list(ignore)} leaves no module to prune"
        )
    return selected
