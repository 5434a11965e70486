"""The sequential, layer-by-layer calibration engine.

Large models do not fit a full set of activations in memory, and pruning layer ``ℓ`` should
see the inputs that the already-pruned layers ``< ℓ`` produce (SparseGPT, Section 3.5;
Wanda's reference implementation does the same). The engine therefore:

1. runs the calibration windows through the model only up to the first decoder block, where
   a forward pre-hook stores the block's input and *all* its other arguments (attention
   mask, position ids, rotary position embeddings, cache position, ...) generically, then
   raises a private exception to stop the forward;
2. for each block: the caller collects statistics with hooks (:func:`collect_statistics`)
   and prunes; the engine then runs the (pruned) block on every sample, and its outputs
   become the next block's inputs.

Only two buffers of one block's activations (inputs and outputs) live at a time, so
memory grows with the width and the calibration set, not with depth. KV caches are turned
off. Calibration forwards may run under bfloat16 autocast (a setting); statistics are always
accumulated in float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from prunekit.adapters import decoder_layers
from prunekit.methods import LayerStatistics, Statistic

__all__ = [
    "BlockInputs",
    "BlockStep",
    "StatisticsCollector",
    "capture_block_inputs",
    "collect_statistics",
    "sequential_blocks",
]

logger = logging.getLogger(__name__)

_FORWARD_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class _StopForward(Exception):
    """Raised inside a hook to end a forward pass early; never escapes this module."""


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (the caller chose it; never hard-coded)."""
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def _sanitize_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop caches and ask for no extra outputs, keep every other argument as is."""
    clean: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in ("past_key_value", "past_key_values", "layer_past"):
            clean[key] = None
        elif key == "use_cache" or key == "output_attentions":
            clean[key] = False
        elif type(value).__name__.endswith("Cache"):
            clean[key] = None
        else:
            clean[key] = value
    return clean


@dataclass
class BlockInputs:
    """The calibration inputs of one decoder block and the arguments to call it with.

    Attributes
    ----------
    hidden : torch.Tensor
        ``(nsamples, seqlen, hidden)`` activations entering the block.
    args : tuple
        Extra positional arguments the model passed after the hidden states.
    kwargs : dict
        Keyword arguments the model passed (masks, positions, position embeddings, ...),
        with caches removed. All windows share one length and carry no padding, so these
        are the same for every sample and were captured once.
    hidden_key : str or None
        The keyword the hidden states were passed under, or None if positional.
    autocast_dtype : torch.dtype or None
        bfloat16 to run forwards under CPU/GPU autocast; None for the model's own dtype.
    """

    hidden: torch.Tensor
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    hidden_key: str | None = None
    autocast_dtype: torch.dtype | None = None

    @property
    def nsamples(self) -> int:
        """Number of calibration windows."""
        return int(self.hidden.shape[0])

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.hidden.device.type, dtype=self.autocast_dtype)

    def forward(self, block: nn.Module, index: int) -> torch.Tensor:
        """Run ``block`` on sample ``index`` and return its output hidden states."""
        hidden = self.hidden[index : index + 1]
        with torch.no_grad(), self._autocast():
            if self.hidden_key is None:
                out = block(hidden, *self.args, **self.kwargs)
            else:
                out = block(*self.args, **{self.hidden_key: hidden}, **self.kwargs)
        return out[0] if isinstance(out, tuple | list) else out


def capture_block_inputs(
    model: nn.Module,
    calibration: torch.Tensor,
    *,
    forward_dtype: str = "float32",
    progress: bool = True,
) -> BlockInputs:
    """Capture the inputs (and call arguments) of the first decoder block.

    Parameters
    ----------
    model : torch.nn.Module
        A causal LM known to :mod:`prunekit.adapters`.
    calibration : torch.LongTensor
        ``(nsamples, seqlen)`` token ids.
    forward_dtype : {"float32", "bfloat16"}
        Dtype of calibration forwards (bfloat16 runs under autocast; buffers are stored in it).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    BlockInputs
    """
    if forward_dtype not in _FORWARD_DTYPES:
        raise ValueError(
            f"forward_dtype must be one of {sorted(_FORWARD_DTYPES)}; got {forward_dtype!r}"
        )
    layers = decoder_layers(model)
    device = model_device(model)
    autocast_dtype = None if forward_dtype == "float32" else _FORWARD_DTYPES[forward_dtype]
    state: dict[str, Any] = {}
    buffer: torch.Tensor | None = None

    def pre_hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        nonlocal buffer
        if args:
            hidden, rest, key = args[0], tuple(args[1:]), None
            extra = dict(kwargs)
        else:
            key = "hidden_states"
            extra = dict(kwargs)
            hidden = extra.pop(key)
            rest = ()
        if buffer is None:
            dtype = autocast_dtype or hidden.dtype
            buffer = torch.empty(
                (calibration.shape[0], *hidden.shape[1:]), dtype=dtype, device=hidden.device
            )
            state["args"] = rest
            state["kwargs"] = _sanitize_kwargs(extra)
            state["key"] = key
        buffer[state["index"]] = hidden[0]
        raise _StopForward

    handle = layers[0].register_forward_pre_hook(pre_hook, with_kwargs=True)
    autocast: contextlib.AbstractContextManager[Any] = (
        contextlib.nullcontext()
        if autocast_dtype is None
        else torch.autocast(device_type=device.type, dtype=autocast_dtype)
    )
    try:
        with torch.no_grad(), autocast:
            for i in tqdm(
                range(calibration.shape[0]),
                desc="capture inputs",
                disable=not progress,
                leave=False,
            ):
                state["index"] = i
                with contextlib.suppress(_StopForward):
                    model(input_ids=calibration[i : i + 1].to(device), use_cache=False)
    finally:
        handle.remove()
    if buffer is None:
        raise RuntimeError("the first decoder block was never called; is this a causal LM?")
    return BlockInputs(
        hidden=buffer,
        args=state["args"],
        kwargs=state["kwargs"],
        hidden_key=state["key"],
        autocast_dtype=autocast_dtype,
    )


@dataclass
class BlockStep:
    """One decoder block handed to the caller by :func:`sequential_blocks`."""

    index: int
    block: nn.Module
    inputs: BlockInputs


def sequential_blocks(
    model: nn.Module,
    calibration: torch.Tensor,
    *,
    forward_dtype: str = "float32",
    progress: bool = True,
    skip_outputs_after: int | None = None,
) -> Iterator[BlockStep]:
    """Yield the decoder blocks in order, each with its calibration inputs.

    After the caller resumes the generator (having, e.g., pruned ``step.block``), the engine
    runs the block on every sample and its outputs become the next step's inputs.

    Parameters
    ----------
    model : torch.nn.Module
        A causal LM known to :mod:`prunekit.adapters`.
    calibration : torch.LongTensor
        ``(nsamples, seqlen)`` token ids.
    forward_dtype : {"float32", "bfloat16"}
        Dtype of calibration forwards.
    progress : bool
        Show progress bars on stderr.
    skip_outputs_after : int or None
        Do not compute outputs of blocks with index ``>=`` this (the last block's outputs
        are never needed). Defaults to the last block.

    Yields
    ------
    BlockStep
    """
    layers = decoder_layers(model)
    last = len(layers) - 1 if skip_outputs_after is None else skip_outputs_after
    inputs = capture_block_inputs(
        model, calibration, forward_dtype=forward_dtype, progress=progress
    )
    outputs = torch.empty_like(inputs.hidden)
    for index, block in enumerate(tqdm(layers, desc="blocks", disable=not progress, leave=False)):
        yield BlockStep(index=index, block=block, inputs=inputs)
        if index >= last:
            break
        for i in range(inputs.nsamples):
            outputs[i] = inputs.forward(block, i)[0]
        # Swap buffers: this block's outputs are the next block's inputs.
        inputs.hidden, outputs = outputs, inputs.hidden


# Widths from which the Gram matrix XᵀX is accumulated as its upper block triangle only.
_GRAM_SPLIT_MIN = 128


def _add_gram(acc: torch.Tensor, rows: torch.Tensor) -> None:
    """``acc += XᵀX`` for ``X = rows``, computing only the upper 2×2 block triangle.

    XᵀX is symmetric: with ``X = [X₁ X₂]`` the blocks are ``X₁ᵀX₁``, ``X₁ᵀX₂`` and ``X₂ᵀX₂``
    (the fourth is the transpose of the second), 3/4 of the flops. :func:`_fill_lower`
    restores the lower block once, when the statistics are read.
    """
    n = rows.shape[1]
    if n < _GRAM_SPLIT_MIN:
        acc.addmm_(rows.t(), rows)
        return
    h = n // 2
    left, right = rows[:, :h], rows[:, h:]
    acc[:h, :h].addmm_(left.t(), left)
    acc[:h, h:].addmm_(left.t(), right)
    acc[h:, h:].addmm_(right.t(), right)


def _fill_lower(gram: torch.Tensor) -> None:
    """Copy the upper off-diagonal block of a :func:`_add_gram` result into the lower one."""
    n = gram.shape[0]
    if n >= _GRAM_SPLIT_MIN:
        h = n // 2
        gram[h:, :h] = gram[:h, h:].t()


@dataclass
class StatisticsCollector:
    """Accumulates per-module input statistics from forward pre-hooks.

    Modules that receive the very same input tensor (q/k/v after one layer norm, gate/up)
    share one accumulator, so a Hessian is computed once per distinct input.
    """

    statistic: Statistic
    names: list[str]
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    sample: int = 0
    stop_after: str | None = None
    _seen: list[tuple[torch.Tensor, str]] = field(default_factory=list)

    def new_sample(self, index: int) -> None:
        """Start sample ``index``; after the first one, stop forwards at the last module."""
        self.sample = index
        self._seen = []
        if index == 1 and self.order and len(self.order) == len(set(self.order)):
            # Every module was called once: nothing after the last one needs to run.
            self.stop_after = self.order[-1]

    def hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        """Forward pre-hook for the module called ``name``."""

        def pre_hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0]
            if self.sample == 0:
                self.order.append(name)
                for tensor, owner in self._seen:
                    if tensor is x:
                        self.alias[name] = owner
                        break
                else:
                    self._seen.append((x, name))
            if name not in self.alias:
                self._accumulate(name, x)
            if name == self.stop_after:
                raise _StopForward

        return pre_hook

    def _accumulate(self, name: str, x: torch.Tensor) -> None:
        rows = x.reshape(-1, x.shape[-1]).float()
        if self.statistic == "hessian":
            acc = self.sums.get(name)
            if acc is None:
                acc = torch.zeros(
                    (rows.shape[1], rows.shape[1]), dtype=torch.float32, device=rows.device
                )
                self.sums[name] = acc
            _add_gram(acc, rows)
        elif self.statistic == "input_norms":
            acc = self.sums.get(name)
            sq = rows.square().sum(dim=0)
            if acc is None:
                self.sums[name] = sq
            else:
                acc.add_(sq)
        self.counts[name] = self.counts.get(name, 0) + rows.shape[0]

    def statistics(self, name: str) -> LayerStatistics:
        """The finished statistics of module ``name`` (``H = 2 Σ xxᵀ / n``)."""
        owner = self.alias.get(name, name)
        count = self.counts.get(owner, 0)
        if self.statistic == "none":
            return LayerStatistics(nsamples=count)
        if count == 0:
            raise RuntimeError(f"module {name!r} received no calibration inputs")
        acc = self.sums[owner]
        if self.statistic == "hessian":
            hessian = acc * (2.0 / count)
            _fill_lower(hessian)
            return LayerStatistics(nsamples=count, hessian=hessian)
        return LayerStatistics(nsamples=count, input_sq_norms=acc)

    def release(self, name: str) -> None:
        """Free the accumulator of ``name`` once no other module shares it."""
        owner = self.alias.get(name, name)
        users = [n for n in self.names if self.alias.get(n, n) == owner]
        if users and users[-1] == name:
            self.sums.pop(owner, None)


@contextlib.contextmanager
def collect_statistics(
    modules: dict[str, nn.Module], statistic: Statistic
) -> Iterator[StatisticsCollector]:
    """Hook ``modules`` to accumulate ``statistic``; the hooks are removed on exit, always.

    Parameters
    ----------
    modules : dict of str to torch.nn.Module
        Linear-like modules keyed by a name (block-relative names are fine).
    statistic : {"none", "input_norms", "hessian"}
        What to accumulate.

    Yields
    ------
    StatisticsCollector
    """
    collector = StatisticsCollector(statistic=statistic, names=list(modules))
    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(collector.hook(name)))
        yield collector
    finally:
        for handle in handles:
            handle.remove()


def run_statistics_pass(
    block: nn.Module,
    inputs: BlockInputs,
    modules: dict[str, nn.Module],
    statistic: Statistic,
    *,
    progress: bool = False,
    desc: str = "statistics",
) -> StatisticsCollector:
    """Run every sample through ``block`` with statistics hooks on ``modules``."""
    with collect_statistics(modules, statistic) as collector:
        for i in tqdm(range(inputs.nsamples), desc=desc, disable=not progress, leave=False):
            collector.new_sample(i)
            with contextlib.suppress(_StopForward):
                inputs.forward(block, i)
    return collector
