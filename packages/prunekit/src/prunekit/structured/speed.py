"""Throughput and FLOP counts: is the pruned model really faster, and how fast could it be?

* :func:`forward_flops` counts the multiply-adds of one forward pass from the model's actual
  matrix shapes (every ``nn.Linear`` / ``Conv1D`` inside the model, the tied or untied LM
  head included) plus the attention products ``Q Kᵀ`` and ``A V``; two FLOPs per
  multiply-add. The *ideal* speedup of a pruned model is ``dense FLOPs / pruned FLOPs``.
* :func:`prefill_throughput` measures tokens per second of a full forward pass (prefill,
  no cache) and :func:`generation_latency` the mean time per generated token of greedy
  decoding with the key/value cache. Both take the median over repeats after a warm-up.

Measure dense and pruned in the same process and interleave them (the benchmark does) so
both see the same machine load.
"""

from __future__ import annotations

import inspect
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.adapters import get_adapter, is_prunable
from prunekit.structured.groups import decoder_layers, layer_modules

__all__ = [
    "Throughput",
    "compare_speed",
    "forward_flops",
    "generation_latency",
    "prefill_throughput",
]


@dataclass(frozen=True)
class Throughput:
    """A timing: ``seconds`` per call (median wall time of ``repeats``), ``tokens`` per call.

    ``cpu_seconds`` is the median CPU time the process used per call (all threads,
    :func:`time.process_time`). On a machine shared with other jobs, wall time mostly
    measures the scheduler; CPU time measures the work (at a fixed thread count).
    """

    seconds: float
    tokens: int
    repeats: int
    cpu_seconds: float = float("nan")

    @property
    def tokens_per_second(self) -> float:
        """Tokens processed per second."""
        return self.tokens / self.seconds


def _matrix_macs(model: nn.Module) -> int:
    """Multiply-adds per token of every Linear-like module (each counted once)."""
    total = 0
    seen: set[int] = set()
    for module in model.modules():
        if is_prunable(module) and id(module) not in seen:
            seen.add(id(module))
            weight = module.weight
            assert isinstance(weight, torch.Tensor)
            total += weight.numel()
    return total


def forward_flops(model: nn.Module, batch: int, seqlen: int) -> int:
    """FLOPs of one forward pass over ``batch`` sequences of ``seqlen`` tokens.

    ``2 * tokens * (sum of Linear weight sizes) + 2 * 2 * batch * seqlen² * (H d)`` summed
    over layers, ``H d`` the query width of each layer (``Q Kᵀ`` and ``A V`` each cost
    ``seqlen² H d`` multiply-adds per sequence; the full square, as dense kernels compute
    it). Norms, activations, softmax and embedding lookups are not counted.

    Parameters
    ----------
    model : torch.nn.Module
        A Hugging Face causal LM of a supported architecture.
    batch, seqlen : int
        Shape of the input.

    Returns
    -------
    int

    Examples
    --------
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> m = LlamaForCausalLM(LlamaConfig(hidden_size=8, intermediate_size=16,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, vocab_size=10))
    >>> # linears: q 8*8 + k 4*8 + v 4*8 + o 8*8 + 3 * 8*16 + lm_head 10*8 = 656 per token
    >>> forward_flops(m, 1, 4) == 2 * 4 * 656 + 4 * 4 * 4 * 8
    True
    """
    adapter = get_adapter(model)
    tokens = batch * seqlen
    flops = 2 * tokens * _matrix_macs(model)
    for layer in decoder_layers(model):
        mods = layer_modules(layer, adapter)
        o_weight = mods.o.weight
        assert isinstance(o_weight, torch.Tensor)
        q_width = o_weight.shape[0] if adapter.transposed else o_weight.shape[1]
        flops += 4 * batch * seqlen * seqlen * int(q_width)
    return flops


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _vocab(model: nn.Module) -> int:
    return int(getattr(model.config, "vocab_size", 2))


def prefill_throughput(
    model: nn.Module,
    batch: int,
    seqlen: int,
    *,
    repeats: int = 3,
    warmup: int = 1,
    seed: int = 0,
) -> Throughput:
    """Time a full forward pass (prefill, no cache) on random token ids.

    Parameters
    ----------
    model : torch.nn.Module
    batch, seqlen : int
        Input shape.
    repeats : int, default 3
        Timed calls; the median is reported.
    warmup : int, default 1
        Untimed calls first (allocator and kernel selection warm-up).
    seed : int, default 0
        Seed of the random token ids.

    Returns
    -------
    Throughput
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, _vocab(model), (batch, seqlen), generator=gen).to(_device(model))
    times = []
    cpu = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            model(input_ids=ids, use_cache=False)
            if i >= warmup:
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
    return Throughput(seconds=statistics.median(times), tokens=batch * seqlen, repeats=repeats,
                      cpu_seconds=statistics.median(cpu))


def generation_latency(
    model: nn.Module,
    prompt_len: int,
    new_tokens: int,
    *,
    repeats: int = 3,
    warmup: int = 1,
    seed: int = 0,
) -> Throughput:
    """Mean seconds per generated token of greedy decoding with the key/value cache.

    The prompt's prefill is not timed; each of the ``new_tokens`` steps feeds one token and
    the returned cache. ``Throughput.seconds`` is the median (over repeats) of the total
    decoding time, ``tokens`` the number of generated tokens.
    """
    if new_tokens < 1 or prompt_len < 1:
        raise ValueError(
            f"prompt_len and new_tokens must be >= 1; got {prompt_len}, {new_tokens}"
        )
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, _vocab(model), (1, prompt_len), generator=gen).to(_device(model))
    # transformers 5 renamed past_key_values to cache (input and output); support both.
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else (
        "past_key_values"
    )
    times = []
    cpu = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            out: Any = model(input_ids=prompt, use_cache=True)
            cache = getattr(out, name)
            token = out.logits[:, -1:].argmax(dim=-1)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(new_tokens):
                out = model(input_ids=token, use_cache=True, **{name: cache})
                cache = getattr(out, name)
                token = out.logits[:, -1:].argmax(dim=-1)
            if i >= warmup:
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
    return Throughput(seconds=statistics.median(times), tokens=new_tokens, repeats=repeats,
                      cpu_seconds=statistics.median(cpu))


def compare_speed(
    dense: nn.Module,
    pruned: nn.Module,
    *,
    batches: tuple[int, ...] = (1, 8),
    seqlen: int = 512,
    repeats: int = 3,
    gen_tokens: int = 16,
    prompt_len: int = 32,
) -> dict[str, Any]:
    """Dense vs pruned speed in one run: prefill throughput per batch and generation latency.

    Each timed call alternates between the two models (after one untimed warm-up call each),
    so a change of machine load hits both alike; medians are reported. For every batch the
    result holds tokens/s, the measured speedup (wall time and process CPU time) and the
    ideal one, ``forward_flops(dense) / forward_flops(pruned)``.

    Parameters
    ----------
    dense, pruned : torch.nn.Module
        The model before and after pruning.
    batches : tuple of int
        Prefill batch sizes (each with ``seqlen`` tokens per sequence).
    seqlen : int
        Prefill sequence length.
    repeats : int
        Timed calls per model and measurement.
    gen_tokens : int
        Greedy tokens generated after a ``prompt_len``-token prompt (0: skip generation).
    prompt_len : int
        Prompt length for the generation timing.

    Returns
    -------
    dict
        ``{"seqlen", "repeats", "prefill": {batch: {...}}, "generation": {...} or None}``.

    Raises
    ------
    ValueError
        If a batch, ``seqlen`` or ``repeats`` is below 1, or ``gen_tokens`` below 0.

    Examples
    --------
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> cfg = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...     num_attention_heads=2, num_key_value_heads=1, vocab_size=50)
    >>> out = compare_speed(LlamaForCausalLM(cfg), LlamaForCausalLM(cfg), batches=(1,),
    ...     seqlen=8, repeats=1, gen_tokens=2)
    >>> round(out["prefill"]["1"]["ideal_speedup"], 6)
    1.0
    """
    if not batches or any(b < 1 for b in batches) or seqlen < 1 or repeats < 1:
        raise ValueError(
            f"batches, seqlen and repeats must be >= 1; got {batches}, {seqlen}, {repeats}"
        )
    if gen_tokens < 0:
        raise ValueError(f"gen_tokens must be >= 0; got {gen_tokens}")
    models = {"dense": dense.eval(), "pruned": pruned.eval()}

    def interleaved(fn: Any) -> dict[str, Throughput]:
        runs: dict[str, list[Throughput]] = {k: [] for k in models}
        for model in models.values():
            fn(model, 0)  # warm-up, untimed
        for rep in range(repeats):
            for name, model in models.items():
                runs[name].append(fn(model, rep + 1))
        return {
            k: Throughput(
                seconds=statistics.median(t.seconds for t in v),
                tokens=v[0].tokens,
                repeats=repeats,
                cpu_seconds=statistics.median(t.cpu_seconds for t in v),
            )
            for k, v in runs.items()
        }

    prefill: dict[str, Any] = {}
    for batch in batches:
        t = interleaved(
            lambda m, seed, b=batch: prefill_throughput(
                m, b, seqlen, repeats=1, warmup=0, seed=seed
            )
        )
        ideal = forward_flops(dense, batch, seqlen) / forward_flops(pruned, batch, seqlen)
        d, p = t["dense"], t["pruned"]
        prefill[str(batch)] = {
            "tokens_per_s_dense": d.tokens_per_second,
            "tokens_per_s_pruned": p.tokens_per_second,
            "speedup_wall": d.seconds / p.seconds,
            "speedup_cpu": d.cpu_seconds / p.cpu_seconds,
            "ideal_speedup": ideal,
            "fraction_of_ideal_wall": d.seconds / p.seconds / ideal,
        }
    generation = None
    if gen_tokens:
        t = interleaved(
            lambda m, seed: generation_latency(
                m, prompt_len, gen_tokens, repeats=1, warmup=0, seed=seed
            )
        )
        d, p = t["dense"], t["pruned"]
        generation = {
            "prompt_len": prompt_len,
            "new_tokens": gen_tokens,
            "ms_per_token_dense": 1e3 * d.seconds / d.tokens,
            "ms_per_token_pruned": 1e3 * p.seconds / p.tokens,
            "speedup_wall": d.seconds / p.seconds,
        }
    return {"seqlen": seqlen, "repeats": repeats, "prefill": prefill, "generation": generation}
