"""``prune(model, config, calibration)``: the one entry point that sequences a run.

It validates everything first (config, architecture, target patterns, N:M divisibility,
calibration shape and vocabulary), then, if ``config.structure != "none"``, hands over to
:func:`prunekit.structured.prune_structured`, then runs the unstructured / N:M method
block by block through the sequential engine (:mod:`prunekit.engine`):

* ``magnitude`` needs no data: every target is pruned directly, no forward pass;
* ``wanda`` and ``sparsegpt``: per block, one statistics pass that stops right after the
  last targeted module's input is seen, the pruning of every target, and one pass of the
  pruned block whose outputs feed the next block. Modules reading the same tensor
  (q/k/v, gate/up) share one statistic.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from prunekit.adapters import check_seqlen, get_adapter, get_weight, set_weight
from prunekit.config import PruneConfig
from prunekit.engine import BlockInputs, BlockStep, run_statistics_pass, sequential_blocks
from prunekit.methods import METHODS, LayerStatistics
from prunekit.report import LayerSparsity, PruneReport, peak_rss_mib
from prunekit.targets import TargetModule, resolve_targets

__all__ = ["check_calibration", "prune", "prune_unstructured"]

logger = logging.getLogger(__name__)


def needs_calibration(config: PruneConfig) -> bool:
    """Whether ``config`` needs calibration data: any method or structured score with a
    statistic (everything except ``magnitude`` and the ``l1`` structured score)."""
    from prunekit.structured import SCORES

    return bool(
        (config.structure != "none" and SCORES[config.score][0])
        or (config.unstructured_step and METHODS[config.method].statistic != "none")
    )


def check_calibration(model: nn.Module, config: PruneConfig, calibration: object) -> torch.Tensor:
    """Validate the calibration tensor against ``config`` and the model's vocabulary.

    Raises
    ------
    TypeError
        If ``calibration`` is not an integer tensor.
    ValueError
        If its shape is not ``(config.nsamples, config.seqlen)`` or a token id is out of range.
    """
    if not isinstance(calibration, torch.Tensor) or calibration.is_floating_point():
        raise TypeError(
            "calibration must be a torch.LongTensor of token ids shaped (nsamples, seqlen); "
            f"got {type(calibration).__name__}"
        )
    expected = (config.nsamples, config.seqlen)
    if tuple(calibration.shape) != expected:
        raise ValueError(
            f"calibration must have shape (nsamples, seqlen) = {expected} as in the config; "
            f"got {tuple(calibration.shape)}"
        )
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and calibration.numel():
        low, high = int(calibration.min()), int(calibration.max())
        if low < 0 or high >= int(vocab):
            raise ValueError(
                f"calibration token ids must be in [0, vocab_size={vocab}); got range "
                f"[{low}, {high}]; tokenize with the model's own tokenizer"
            )
    return calibration.long()


@contextlib.contextmanager
def _run_settings(model: nn.Module, threads: int | None) -> Iterator[None]:
    """Eval mode, no KV cache, optional thread count; all restored afterwards."""
    was_training = model.training
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    old_threads = torch.get_num_threads()
    try:
        model.eval()
        if config is not None and use_cache is not None:
            config.use_cache = False
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        model.train(was_training)
        if config is not None and use_cache is not None:
            config.use_cache = use_cache
        if threads is not None:
            torch.set_num_threads(old_threads)


def _check_nm(targets: list[TargetModule], config: PruneConfig) -> None:
    nm = config.nm
    if nm is None:
        return
    for target in targets:
        cols = int(get_weight(target.module).shape[1])
        if cols % nm.m:
            raise ValueError(
                f"pattern {nm} needs in_features divisible by M={nm.m}, but {target.name} has "
                f"{cols}; add it to ignore or use pattern='unstructured'"
            )


def _prune_module(
    target: TargetModule,
    stats: LayerStatistics | None,
    config: PruneConfig,
    sparsity: float | None = None,
) -> None:
    method = METHODS[config.method]
    weight = get_weight(target.module)
    result = method.run(
        weight,
        stats,
        sparsity=config.sparsity if sparsity is None else sparsity,
        pattern=config.nm,
        group=config.group,
        percdamp=config.percdamp,
        blocksize=config.blocksize,
        refine_iters=config.refine_iters,
        dsnot=config.dsnot,
    )
    set_weight(target.module, result.weight)


def owl_sparsities(
    outlier_ratios: dict[int, float],
    sizes: dict[int, int],
    sparsity: float,
    lam: float,
) -> dict[int, float]:
    """OWL layer-wise sparsities from per-block outlier ratios (Yin et al. 2024).

    Densities are the outlier ratios mapped linearly onto ``[0, 2λ]``, shifted so that the
    parameter-weighted mean density is ``1 − sparsity`` (the reference code's unweighted
    mean is the same when all blocks are of one size), i.e. blocks with more outliers are
    pruned less, every block within ``±2λ`` of the target and the total sparsity unchanged.

    Parameters
    ----------
    outlier_ratios : dict of int to float
        Block index to its fraction of outlier scores.
    sizes : dict of int to int
        Block index to its number of targeted weights.
    sparsity : float
        Global target sparsity.
    lam : float
        OWL's λ, the largest deviation from the mean (0.08 in the paper).

    Returns
    -------
    dict of int to float
        Block index to its sparsity, clipped to ``[0, 0.99]``.

    Examples
    --------
    >>> owl_sparsities({0: 0.01, 1: 0.03}, {0: 10, 1: 10}, 0.5, 0.08)
    {0: 0.58, 1: 0.42}
    """
    blocks = sorted(outlier_ratios)
    low = min(outlier_ratios.values())
    high = max(outlier_ratios.values())
    if not blocks or high - low <= 0:
        return {b: sparsity for b in blocks}
    scaled = {b: (outlier_ratios[b] - low) / (high - low) * 2 * lam for b in blocks}
    total = sum(sizes[b] for b in blocks)
    mean = sum(scaled[b] * sizes[b] for b in blocks) / total
    return {
        b: round(min(0.99, max(0.0, 1.0 - (scaled[b] - mean + 1.0 - sparsity))), 12) for b in blocks
    }


def _outlier_ratio(scores: list[torch.Tensor], m: float) -> float:
    """Fraction of the scores above ``m`` times their mean (OWL's layer outlier ratio)."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    return float((flat > m * flat.mean()).float().mean())


def _stages(
    block: nn.Module, inputs: BlockInputs, modules: dict[str, nn.Module]
) -> list[list[str]]:
    """Group ``modules`` into stages of modules that read the same tensor, in call order.

    One sample is run with hooks: modules receiving the identical input tensor (q/k/v; gate/up)
    form one stage. Llama gives [q, k, v], [o], [gate, up], [down].
    """
    probe = BlockInputs(
        hidden=inputs.hidden[:1],
        args=inputs.args,
        kwargs=inputs.kwargs,
        hidden_key=inputs.hidden_key,
        autocast_dtype=inputs.autocast_dtype,
    )
    collector = run_statistics_pass(block, probe, modules, "none")
    stages: list[list[str]] = []
    owners: dict[str, int] = {}
    for name in dict.fromkeys(collector.order):
        owner = collector.alias.get(name, name)
        if owner in owners:
            stages[owners[owner]].append(name)
        else:
            owners[owner] = len(stages)
            stages.append([name])
    missing = [name for name in modules if name not in owners and name not in collector.alias]
    if missing:
        stages.append(missing)  # never called on calibration data: prune with what we have
    return stages


def _block_scores(
    block_targets: list[TargetModule], stats: dict[str, LayerStatistics]
) -> list[torch.Tensor]:
    from prunekit.methods import wanda_scores

    out = []
    for target in block_targets:
        norms = stats[target.name].input_sq_norms
        assert norms is not None
        out.append(wanda_scores(get_weight(target.module), norms))
    return out


def _block_steps(
    model: nn.Module,
    config: PruneConfig,
    calibration: torch.Tensor,
    by_block: dict[int, list[TargetModule]],
    *,
    progress: bool,
    dense_stream: bool = False,
) -> Iterator[BlockStep]:
    """The engine's blocks up to the last one with targets (its outputs are never needed)."""
    return sequential_blocks(
        model,
        calibration,
        forward_dtype=config.dtype,
        progress=progress,
        skip_outputs_after=max(by_block),
        dense_stream=dense_stream,
    )


def _dense_pass(
    model: nn.Module,
    config: PruneConfig,
    calibration: torch.Tensor,
    by_block: dict[int, list[TargetModule]],
    statistic: Any,
    *,
    progress: bool,
    prune_now: bool,
) -> tuple[dict[int, float], dict[str, LayerStatistics]]:
    """One pass of the dense model: per-block statistics from the dense model's activations.

    Returns the OWL outlier ratio of every block (if ``config.owl``) and, unless
    ``prune_now``, the statistics of every target (else each block is pruned right after
    its statistics were taken, which needs no storage).
    """
    ratios: dict[int, float] = {}
    kept: dict[str, LayerStatistics] = {}
    for step in _block_steps(model, config, calibration, by_block, progress=progress):
        block_targets = by_block.get(step.index, [])
        if not block_targets:
            continue
        modules = {t.relative_name: t.module for t in block_targets}
        collector = run_statistics_pass(
            step.block, step.inputs, modules, statistic, write_outputs=True
        )
        step.outputs_ready = True
        stats = {t.name: collector.statistics(t.relative_name) for t in block_targets}
        if config.owl:
            ratios[step.index] = _outlier_ratio(_block_scores(block_targets, stats), config.owl_m)
        if prune_now:
            for target in block_targets:
                _prune_module(target, stats[target.name], config)
        else:
            kept.update(stats)
    return ratios, kept


def prune_unstructured(
    model: nn.Module,
    config: PruneConfig,
    calibration: torch.Tensor | None,
    targets: list[TargetModule],
    *,
    progress: bool = True,
) -> None:
    """Run ``config.method`` on ``targets`` (already validated) in place."""
    method = METHODS[config.method]
    if method.statistic == "none":
        for target in tqdm(targets, desc=config.method, disable=not progress, leave=False):
            _prune_module(target, None, config)
        return
    if calibration is None:
        raise ValueError(f"calibration is required for method {config.method!r}")
    by_block: dict[int, list[TargetModule]] = {}
    for target in targets:
        by_block.setdefault(target.block, []).append(target)
    sizes = {b: sum(get_weight(t.module).numel() for t in ts) for b, ts in by_block.items()}
    block_sparsity: dict[int, float] = {}
    if config.stream == "dense":
        # Statistics from the dense model: one forward per block, no recomputation.
        ratios, stats = _dense_pass(
            model,
            config,
            calibration,
            by_block,
            method.statistic,
            progress=progress,
            prune_now=not config.owl,
        )
        if config.owl:
            block_sparsity = owl_sparsities(ratios, sizes, config.sparsity, config.owl_lambda)
            for block, block_targets in by_block.items():
                for target in block_targets:
                    _prune_module(target, stats.pop(target.name), config, block_sparsity[block])
        return
    if config.owl:
        # OWL's outlier ratios come from a dense pass (as in its reference code).
        ratios, _ = _dense_pass(
            model,
            config,
            calibration,
            by_block,
            "input_norms",
            progress=progress,
            prune_now=False,
        )
        block_sparsity = owl_sparsities(ratios, sizes, config.sparsity, config.owl_lambda)
        logger.info("OWL block sparsities: %s", block_sparsity)
    steps = _block_steps(
        model, config, calibration, by_block, progress=progress, dense_stream=config.asymmetric
    )
    for step in steps:
        block_targets = by_block.get(step.index, [])
        if not block_targets:
            if config.asymmetric:
                _advance_dense(step)
            continue
        modules = {t.relative_name: t.module for t in block_targets}
        by_name = {t.relative_name: t for t in block_targets}
        if config.true_sequential:
            stages = _stages(step.block, step.inputs, modules)
        else:
            stages = [list(modules)]
        dense_block: nn.Module | None = None
        if config.asymmetric:
            # Later stages see a partly pruned block: keep the dense one for the dense stream.
            dense_block = copy.deepcopy(step.block) if len(stages) > 1 else step.block
        for number, stage in enumerate(stages):
            # Statistics of this stage's inputs, with the earlier stages already pruned.
            collector = run_statistics_pass(
                step.block,
                step.inputs,
                {n: modules[n] for n in stage},
                method.statistic,
                dense_block=dense_block,
                write_dense=dense_block is not None and number == len(stages) - 1,
            )
            for name in stage:
                _prune_module(
                    by_name[name],
                    collector.statistics(name),
                    config,
                    block_sparsity.get(step.index),
                )
                collector.release(name)
        del dense_block
        logger.debug("pruned block %d (%d modules)", step.index, len(block_targets))


def _advance_dense(step: Any) -> None:
    """Run a block without targets on the dense stream (asymmetric calibration)."""
    inputs = step.inputs
    for i in range(inputs.nsamples):
        inputs.dense[i] = inputs.forward(step.block, i, inputs.dense)[0]


def prune(
    model: nn.Module,
    config: PruneConfig,
    calibration: torch.Tensor | None,
    *,
    source: str | None = None,
    progress: bool = True,
) -> PruneReport:
    """Prune ``model`` in place as ``config`` says and report what was done.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM whose ``config.model_type`` is in :data:`prunekit.ADAPTERS`.
    config : PruneConfig
        The run's settings.
    calibration : torch.LongTensor or None
        ``(config.nsamples, config.seqlen)`` token ids (see ``prunekit.data``); ``None`` is
        allowed when nothing in ``config`` needs data (magnitude, ``l1`` structured scores).
    source : str or None
        Where the model came from, for the report.
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    PruneReport
        Config, achieved per-module sparsity, wall time, peak RSS (perplexities are added
        by the caller, e.g. the CLI).

    Raises
    ------
    TypeError, ValueError
        On invalid input, before the model is touched.

    Examples
    --------
    >>> cfg = PruneConfig(method="wanda", sparsity=0.5, nsamples=8, seqlen=128)
    >>> report = prune(model, cfg, calibration)  # doctest: +SKIP
    >>> round(report.sparsity, 2)  # doctest: +SKIP
    0.5
    """
    if not isinstance(config, PruneConfig):
        raise TypeError(f"config must be a PruneConfig; got {type(config).__name__}")
    adapter = get_adapter(model)
    targets = resolve_targets(model, config.targets, config.ignore)
    _check_nm(targets, config)
    if calibration is None:
        if needs_calibration(config):
            raise ValueError(
                f"calibration is required for method {config.method!r}"
                + (
                    f" with structure {config.structure!r} and score {config.score!r}"
                    if config.structure != "none"
                    else ""
                )
                + "; give (nsamples, seqlen) token ids (prunekit.data.calibration_windows)"
            )
    else:
        calibration = check_calibration(model, config, calibration)
        check_seqlen(model, config.seqlen)

    start = time.perf_counter()
    structured: dict[str, Any] | None = None
    with _run_settings(model, config.threads):
        if config.structure != "none":
            # Imported lazily: structured pruning is its own subpackage (issue 6).
            structured_module = importlib.import_module("prunekit.structured")
            structured = structured_module.prune_structured(model, config, calibration)
            # Shapes changed: select the targets again on the smaller model.
            targets = resolve_targets(model, config.targets, config.ignore)
        if config.unstructured_step:
            prune_unstructured(model, config, calibration, targets, progress=progress)
    wall = time.perf_counter() - start

    layers = []
    for target in targets:
        weight = get_weight(target.module)
        layers.append(
            LayerSparsity(
                name=target.name,
                shape=(int(weight.shape[0]), int(weight.shape[1])),
                zeros=int((weight == 0).sum()),
                numel=int(weight.numel()),
            )
        )
    return PruneReport(
        config=config.to_dict(),
        model_type=adapter.model_type,
        source=source,
        layers=layers,
        wall_time_s=wall,
        peak_rss_mib=peak_rss_mib(),
        structured=structured,
    )
