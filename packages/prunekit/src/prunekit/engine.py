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
   become the next block's inputs. Sample ``i``'s output overwrites sample ``i``'s input in
   place (it depends on nothing else), so one activation buffer serves every block.

On request (``dense_stream=True``) a second buffer carries the *dense* model's hidden
states beside the pruned model's, for methods whose target is the dense model's output
(asymmetric calibration, see :mod:`prunekit.methods.sparsegpt`); the caller advances it in
place during its statistics pass (:func:`run_statistics_pass` with ``write_dense``).

At most two ``(nsamples, seqlen, hidden)`` buffers live at a time, so memory grows with the
width and the calibration set, not with depth. KV caches are turned
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
    dense : torch.Tensor or None
        The dense (unpruned) model's activations entering the block, same shape as
        ``hidden``, when the engine was asked for a dense stream; else None.
    """

    hidden: torch.Tensor
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    hidden_key: str | None = None
    autocast_dtype: torch.dtype | None = None
    dense: torch.Tensor | None = None

    @property
    def nsamples(self) -> int:
        """Number of calibration windows."""
        return int(self.hidden.shape[0])

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.hidden.device.type, dtype=self.autocast_dtype)

    def forward(
        self, block: nn.Module, index: int, source: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Run ``block`` on sample ``index`` of ``source`` (default ``hidden``); return outputs."""
        hidden = (self.hidden if source is None else source)[index : index + 1]
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
    """One decoder block handed to the caller by :func:`sequential_blocks`.

    The caller sets ``outputs_ready`` when it already wrote the block's outputs into
    ``inputs.hidden`` (e.g. a statistics pass with ``write_outputs=True``); the engine then
    skips its own pass over the block.
    """

    index: int
    block: nn.Module
    inputs: BlockInputs
    outputs_ready: bool = False


def sequential_blocks(
    model: nn.Module,
    calibration: torch.Tensor,
    *,
    forward_dtype: str = "float32",
    progress: bool = True,
    skip_outputs_after: int | None = None,
    dense_stream: bool = False,
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
    dense_stream : bool
        Also carry the dense model's activations in ``step.inputs.dense`` (a copy of the
        captured inputs, one more buffer); the caller advances it in place.

    Yields
    ------
    BlockStep
    """
    layers = decoder_layers(model)
    last = len(layers) - 1 if skip_outputs_after is None else skip_outputs_after
    inputs = capture_block_inputs(
        model, calibration, forward_dtype=forward_dtype, progress=progress
    )
    if dense_stream:
        inputs.dense = inputs.hidden.clone()
    for index, block in enumerate(tqdm(layers, desc="blocks", disable=not progress, leave=False)):
        step = BlockStep(index=index, block=block, inputs=inputs)
        yield step
        if index >= last:
            break
        if step.outputs_ready:
            continue
        for i in range(inputs.nsamples):
            # In place: sample i's output depends only on sample i's input.
            inputs.hidden[i] = inputs.forward(block, i)[0]


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

    With ``cross=True`` (asymmetric calibration) every sample is first run through the
    dense block, whose hooks (:meth:`dense_hook`) keep the dense inputs ``x̃`` of each module
    in ``stash``; the pruned pass then also accumulates ``Σ x̃ xᵀ`` (token by token).
    """

    statistic: Statistic
    names: list[str]
    cross: bool = False
    allow_stop: bool = True
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    linear_sums: dict[str, torch.Tensor] = field(default_factory=dict)
    cross_sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    sample: int = 0
    stop_after: str | None = None
    dense_phase: bool = False
    dense_full: bool = False
    stash: dict[str, torch.Tensor] = field(default_factory=dict)
    _seen: list[tuple[torch.Tensor, str]] = field(default_factory=list)

    def new_sample(self, index: int) -> None:
        """Start sample ``index``; after the first one, stop forwards at the last module."""
        self.sample = index
        self._seen = []
        self.stash = {}
        if (
            self.allow_stop
            and index == 1
            and self.order
            and len(self.order) == len(set(self.order))
        ):
            # Every module was called once: nothing after the last one needs to run.
            self.stop_after = self.order[-1]

    def hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        """Forward pre-hook for the module called ``name``."""

        def pre_hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
            if self.dense_phase:
                return
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

    def dense_hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        """Forward pre-hook on the dense block's module ``name``: keep its input."""

        def pre_hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
            if not self.dense_phase:
                return
            self.stash[name] = args[0]
            if not self.dense_full and len(self.stash) == len(self.names):
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
            if self.cross:
                dense = self.stash.get(name)
                if dense is None:
                    raise RuntimeError(f"the dense block never fed module {name!r}")
                dense_rows = dense.reshape(-1, dense.shape[-1]).float()
                cross = self.cross_sums.get(name)
                if cross is None:
                    cross = torch.zeros_like(acc)
                    self.cross_sums[name] = cross
                cross.addmm_(dense_rows.t(), rows)
        elif self.statistic == "input_norms":
            acc = self.sums.get(name)
            sq = rows.square().sum(dim=0)
            lin = rows.sum(dim=0)
            if acc is None:
                self.sums[name] = sq
                self.linear_sums[name] = lin
            else:
                acc.add_(sq)
                self.linear_sums[name].add_(lin)
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
            cross = self.cross_sums.get(owner)
            return LayerStatistics(
                nsamples=count,
                hessian=hessian,
                cross=None if cross is None else cross * (2.0 / count),
            )
        return LayerStatistics(
            nsamples=count, input_sq_norms=acc, input_sums=self.linear_sums.get(owner)
        )

    def release(self, name: str) -> None:
        """Free the accumulator of ``name`` once no other module shares it."""
        owner = self.alias.get(name, name)
        users = [n for n in self.names if self.alias.get(n, n) == owner]
        if users and users[-1] == name:
            self.sums.pop(owner, None)
            self.linear_sums.pop(owner, None)
            self.cross_sums.pop(owner, None)


@contextlib.contextmanager
def collect_statistics(
    modules: dict[str, nn.Module],
    statistic: Statistic,
    *,
    dense_modules: dict[str, nn.Module] | None = None,
    allow_stop: bool = True,
) -> Iterator[StatisticsCollector]:
    """Hook ``modules`` to accumulate ``statistic``; the hooks are removed on exit, always.

    Parameters
    ----------
    modules : dict of str to torch.nn.Module
        Linear-like modules keyed by a name (block-relative names are fine).
    statistic : {"none", "input_norms", "hessian"}
        What to accumulate.
    dense_modules : dict of str to torch.nn.Module or None
        The same modules of the dense block (same keys), for asymmetric ``"hessian"``
        statistics: their inputs are stashed and ``Σ x̃ xᵀ`` is accumulated as well.
    allow_stop : bool
        Let forwards stop after the last hooked module (False when the block's outputs are
        wanted).

    Yields
    ------
    StatisticsCollector
    """
    collector = StatisticsCollector(
        statistic=statistic,
        names=list(modules),
        cross=dense_modules is not None,
        allow_stop=allow_stop,
    )
    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(collector.hook(name)))
        for name, module in (dense_modules or {}).items():
            handles.append(module.register_forward_pre_hook(collector.dense_hook(name)))
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
    write_outputs: bool = False,
    dense_block: nn.Module | None = None,
    write_dense: bool = False,
) -> StatisticsCollector:
    """Run every sample through ``block`` with statistics hooks on ``modules``.

    Parameters
    ----------
    block : torch.nn.Module
        The decoder block (possibly partly pruned already).
    inputs : BlockInputs
        Its calibration inputs.
    modules : dict of str to torch.nn.Module
        Modules of ``block`` to hook, keyed by their names relative to ``block``.
    statistic : {"none", "input_norms", "hessian"}
        What to accumulate.
    write_outputs : bool
        Run the whole block and overwrite ``inputs.hidden`` with its outputs (for methods
        whose statistics all come from one stream: the engine can skip its own pass).
    dense_block : torch.nn.Module or None
        The unpruned block (``block`` itself while it is still unpruned). Each sample of
        ``inputs.dense`` is run through it first and the cross statistic ``Σ x̃ xᵀ`` of the
        dense inputs ``x̃`` and the pruned inputs ``x`` is accumulated as well.
    write_dense : bool
        With ``dense_block``: run it to the end and overwrite ``inputs.dense`` with its
        outputs (the dense stream advances by one block).
    """
    dense_modules = None
    if dense_block is not None:
        if inputs.dense is None:
            raise ValueError(
                "a dense block needs inputs.dense (sequential_blocks(dense_stream=True))"
            )
        dense_modules = {name: dense_block.get_submodule(name) for name in modules}
    with collect_statistics(
        modules,
        statistic,
        dense_modules=dense_modules,
        allow_stop=not write_outputs,
    ) as collector:
        collector.dense_full = write_dense
        for i in tqdm(range(inputs.nsamples), desc=desc, disable=not progress, leave=False):
            collector.new_sample(i)
            if dense_block is not None:
                collector.dense_phase = True
                try:
                    if write_dense:
                        assert inputs.dense is not None
                        inputs.dense[i] = inputs.forward(dense_block, i, inputs.dense)[0]
                    else:
                        with contextlib.suppress(_StopForward):
                            inputs.forward(dense_block, i, inputs.dense)
                finally:
                    collector.dense_phase = False
            if write_outputs:
                inputs.hidden[i] = inputs.forward(block, i)[0]
            else:
                with contextlib.suppress(_StopForward):
                    inputs.forward(block, i)
    return collector
