"""Group importance scores: L1, first-order Taylor and activation-weighted magnitude.

Every score is an element-wise importance summed over a structural group (see
:mod:`prunekit.structured.groups`); a higher score means *keep*.

* ``l1`` — weight magnitude ``sum |W|`` over the group (Li et al. 2016, "Pruning
  Filters for Efficient ConvNets", who rank filters by the sum of absolute kernel weights).
* ``taylor`` — first-order Taylor ``sum |W ⊙ ∂L/∂W|`` over the group, ``L`` the mean
  next-token cross-entropy on the calibration set (Molchanov et al. 2016, "Pruning
  Convolutional Neural Networks for Resource Efficient Inference"; the element-wise
  variant of Ma et al. 2023, "LLM-Pruner", which also takes the gradient of the loss over
  the whole calibration batch).
* ``activation`` — Wanda's ``|W_ij| * ||X_j||_2`` (Sun et al. 2023), summed over the group,
  ``X_j`` the calibration inputs of input feature ``j`` of each projection (the structured
  "Wanda-sp" baseline of An et al. 2024, "FLAP"). Forward passes only.

Only weights enter a group's sum; biases are left out (Li et al. and Wanda score weights).
Element-wise importances are taken in ``[out, in]`` layout, so GPT-2's transposed
``Conv1D`` weights are scored like ``nn.Linear``.

The pure functions (:func:`l1_importance`, :func:`taylor_importance`,
:func:`activation_importance`, :func:`group_scores`) take tensors; the model-level
collectors run the calibration passes, with hooks in context managers that always remove
them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from prunekit.adapters import ModelAdapter, get_weight
from prunekit.structured.groups import (
    AttentionGeometry,
    LayerModules,
    attention_geometry,
    decoder_layers,
    layer_modules,
)

__all__ = [
    "GroupTensors",
    "LayerScores",
    "activation_importance",
    "activation_scores",
    "calibration_loss",
    "group_scores",
    "input_norms",
    "l1_importance",
    "l1_scores",
    "taylor_importance",
    "taylor_scores",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerScores:
    """Importance of the structural units of one decoder block (higher = keep).

    ``heads``: ``[num_heads]`` query heads (their query rows and output columns);
    ``kv_heads``: ``[num_kv_heads]`` key/value part of each group (key and value rows);
    ``channels``: ``[intermediate]`` MLP channels.
    """

    heads: torch.Tensor
    kv_heads: torch.Tensor
    channels: torch.Tensor


@dataclass(frozen=True)
class GroupTensors:
    """Element-wise importances of one block's projections, all ``[out, in]``.

    ``q``: ``[H d, D]``; ``k``, ``v``: ``[K d, D]``; ``o``: ``[D, H d]``; ``mlp_in``: each
    ``[I, D]``; ``mlp_out``: ``[D, I]``.
    """

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    o: torch.Tensor
    mlp_in: tuple[torch.Tensor, ...]
    mlp_out: torch.Tensor


def l1_importance(weight: torch.Tensor) -> torch.Tensor:
    """Element-wise magnitude ``|W|`` (Li et al. 2016).

    Examples
    --------
    >>> l1_importance(torch.tensor([[-1.0, 2.0]]))
    tensor([[1., 2.]], dtype=torch.float64)
    """
    return weight.detach().abs().double()


def taylor_importance(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Element-wise first-order Taylor importance ``|W ⊙ G|``, ``G = ∂L/∂W``.

    Removing ``W`` changes the loss by ``-G·W`` to first order (Molchanov et al. 2016;
    LLM-Pruner's element-wise form).

    Examples
    --------
    >>> taylor_importance(torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, 3.0]]))
    tensor([[1., 3.]], dtype=torch.float64)
    """
    if weight.shape != grad.shape:
        raise ValueError(
            f"grad must have the weight's shape {tuple(weight.shape)}; got {tuple(grad.shape)}"
        )
    return (weight.detach().double() * grad.detach().double()).abs()


def activation_importance(weight: torch.Tensor, input_norm: torch.Tensor) -> torch.Tensor:
    """Wanda's element-wise score ``|W_ij| * ||X_j||_2`` for an ``[out, in]`` weight.

    Parameters
    ----------
    weight : torch.Tensor
        ``[out, in]``.
    input_norm : torch.Tensor
        ``[in]``: the L2 norm of each input feature over all calibration tokens.

    Examples
    --------
    >>> activation_importance(torch.tensor([[1.0, -2.0]]), torch.tensor([3.0, 0.5]))
    tensor([[3., 1.]], dtype=torch.float64)
    """
    if input_norm.shape != (weight.shape[1],):
        raise ValueError(
            f"input_norm must have shape ({weight.shape[1]},); got {tuple(input_norm.shape)}"
        )
    return weight.detach().abs().double() * input_norm.detach().double()[None, :]


def group_scores(tensors: GroupTensors, geometry: AttentionGeometry) -> LayerScores:
    """Sum element-wise importances over each head, key/value head and MLP channel.

    ``heads[h] = sum(q[h d:(h+1) d, :]) + sum(o[:, h d:(h+1) d])``;
    ``kv_heads[j] = sum(k[j d:(j+1) d, :]) + sum(v[j d:(j+1) d, :])``;
    ``channels[c] = sum_i sum(mlp_in_i[c, :]) + sum(mlp_out[:, c])``.

    Examples
    --------
    One head of dimension 1, one MLP channel:

    >>> t = GroupTensors(q=torch.ones(1, 2), k=torch.ones(1, 2), v=torch.ones(1, 2),
    ...                  o=torch.ones(2, 1), mlp_in=(torch.ones(1, 2),), mlp_out=torch.ones(2, 1))
    >>> s = group_scores(t, AttentionGeometry(1, 1, 1))
    >>> (s.heads.item(), s.kv_heads.item(), s.channels.item())
    (4.0, 4.0, 4.0)
    """
    h, kv, d = geometry.num_heads, geometry.num_kv_heads, geometry.head_dim
    q = tensors.q.double().reshape(h, d, -1).sum(dim=(1, 2))
    o = tensors.o.double().reshape(tensors.o.shape[0], h, d).sum(dim=(0, 2))
    k = tensors.k.double().reshape(kv, d, -1).sum(dim=(1, 2))
    v = tensors.v.double().reshape(kv, d, -1).sum(dim=(1, 2))
    channels = tensors.mlp_out.double().sum(dim=0)
    for t in tensors.mlp_in:
        channels = channels + t.double().sum(dim=1)
    return LayerScores(heads=q + o, kv_heads=k + v, channels=channels)


def _split_qkv(
    mods: LayerModules, geometry: AttentionGeometry
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights of q, k, v as ``[out, in]`` (splitting GPT-2's fused ``[q | k | v]``)."""
    if mods.qkv is not None:
        w = get_weight(mods.qkv)
        qw = geometry.num_heads * geometry.head_dim
        kw = geometry.num_kv_heads * geometry.head_dim
        return w[:qw], w[qw : qw + kw], w[qw + kw :]
    q, k, v = mods.separate_qkv()
    return get_weight(q), get_weight(k), get_weight(v)


def _tensors_from(
    mods: LayerModules,
    geometry: AttentionGeometry,
    fn: Callable[[str, torch.Tensor], torch.Tensor],
) -> GroupTensors:
    """Apply ``fn(role, weight[out, in])`` to every projection of one block."""
    q, k, v = _split_qkv(mods, geometry)
    return GroupTensors(
        q=fn("q", q),
        k=fn("k", k),
        v=fn("v", v),
        o=fn("o", get_weight(mods.o)),
        mlp_in=tuple(fn(f"mlp_in{i}", get_weight(m)) for i, m in enumerate(mods.mlp_in)),
        mlp_out=fn("mlp_out", get_weight(mods.mlp_out)),
    )


def l1_scores(model: nn.Module, adapter: ModelAdapter) -> list[LayerScores]:
    """L1 group scores of every decoder block (no data needed)."""
    geometry = attention_geometry(model.config, adapter)
    out = []
    for layer in decoder_layers(model):
        mods = layer_modules(layer, adapter)
        out.append(group_scores(_tensors_from(mods, geometry, lambda _r, w: l1_importance(w)),
                                geometry))
    return out


def _batches(calibration: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, calibration.shape[0], batch_size):
        yield calibration[start : start + batch_size]


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def calibration_loss(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``model`` on ``input_ids`` (``[batch, seq]``)."""
    ids = input_ids.to(_model_device(model))
    logits = model(input_ids=ids, use_cache=False).logits
    shift = logits[:, :-1, :].float()
    target = ids[:, 1:]
    return nn.functional.cross_entropy(shift.reshape(-1, shift.shape[-1]), target.reshape(-1))


@contextlib.contextmanager
def input_norms(modules: dict[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Accumulate the squared L2 norm of each input feature of ``modules``.

    Yields a dict (filled while the context is open) of ``[in]`` float64 tensors of
    *squared* norms, keyed like ``modules``. The hooks are removed on exit, also on error.
    """
    sums: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach()
            sq = x.reshape(-1, x.shape[-1]).double().pow(2).sum(dim=0)
            sums[name] = sq if name not in sums else sums[name] + sq

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(make_hook(name)))
        yield sums
    finally:
        for handle in handles:
            handle.remove()


def _hooked_inputs(
    layers: list[nn.Module], adapter: ModelAdapter
) -> dict[str, nn.Module]:
    """One module per distinct input: q (or fused qkv), o, first MLP input, MLP output."""
    modules: dict[str, nn.Module] = {}
    for i, layer in enumerate(layers):
        mods = layer_modules(layer, adapter)
        attn_in = mods.qkv if mods.qkv is not None else mods.q
        assert attn_in is not None
        modules[f"{i}.attn_in"] = attn_in
        modules[f"{i}.o"] = mods.o
        modules[f"{i}.mlp_in"] = mods.mlp_in[0]
        modules[f"{i}.mlp_out"] = mods.mlp_out
    return modules


def activation_scores(
    model: nn.Module,
    adapter: ModelAdapter,
    calibration: torch.Tensor,
    batch_size: int = 8,
) -> list[LayerScores]:
    """Activation-weighted magnitude group scores (Wanda-sp), forward passes only.

    One forward pass over ``calibration`` collects ``||X_j||_2`` for the inputs of every
    projection (the query/key/value projections share the attention input, the MLP input
    projections share the MLP input), then :func:`activation_importance` is summed over
    each group.
    """
    geometry = attention_geometry(model.config, adapter)
    layers = list(decoder_layers(model))
    with torch.no_grad(), input_norms(_hooked_inputs(layers, adapter)) as sq:
        for batch in _batches(calibration, batch_size):
            model(input_ids=batch.to(_model_device(model)), use_cache=False)
    out = []
    for i, layer in enumerate(layers):
        mods = layer_modules(layer, adapter)
        norms = {
            "q": sq[f"{i}.attn_in"].sqrt(),
            "o": sq[f"{i}.o"].sqrt(),
            "mlp_in": sq[f"{i}.mlp_in"].sqrt(),
            "mlp_out": sq[f"{i}.mlp_out"].sqrt(),
        }

        def fn(
            role: str, w: torch.Tensor, norms: dict[str, torch.Tensor] = norms
        ) -> torch.Tensor:
            if role in ("q", "k", "v"):
                role = "q"
            elif role.startswith("mlp_in"):
                role = "mlp_in"
            return activation_importance(w, norms[role])

        out.append(group_scores(_tensors_from(mods, geometry, fn), geometry))
    return out


def taylor_scores(
    model: nn.Module,
    adapter: ModelAdapter,
    calibration: torch.Tensor,
    batch_size: int = 8,
) -> list[LayerScores]:
    """First-order Taylor group scores ``sum |W ⊙ ∂L/∂W|``.

    ``∂L/∂W`` is the gradient of the mean calibration loss, accumulated over mini-batches
    with :func:`torch.autograd.grad` (so the parameters' ``.grad`` fields are never
    touched). Needs parameters that require gradients; :func:`prune_structured` checks that
    before any work.
    """
    geometry = attention_geometry(model.config, adapter)
    layers = list(decoder_layers(model))
    params: list[nn.Parameter] = []
    seen: set[int] = set()
    for layer in layers:
        mods = layer_modules(layer, adapter)
        for m in (mods.q, mods.k, mods.v, mods.qkv, mods.o, *mods.mlp_in, mods.mlp_out):
            w = getattr(m, "weight", None)
            if isinstance(w, nn.Parameter) and id(w) not in seen:
                seen.add(id(w))
                params.append(w)
    grads = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    n_total = calibration.shape[0]
    with torch.inference_mode(False), torch.enable_grad():
        for batch in _batches(calibration, batch_size):
            loss = calibration_loss(model, batch) * (batch.shape[0] / n_total)
            for acc, g in zip(grads, torch.autograd.grad(loss, params), strict=True):
                acc += g.double()
    by_param = {id(p): g for p, g in zip(params, grads, strict=True)}

    out = []
    for layer in layers:
        mods = layer_modules(layer, adapter)

        def grad_of(module: nn.Module) -> torch.Tensor:
            g = by_param[id(module.weight)]
            return g.t() if adapter.transposed else g

        if mods.qkv is not None:
            gq = grad_of(mods.qkv)
            qw = geometry.num_heads * geometry.head_dim
            kw = geometry.num_kv_heads * geometry.head_dim
            qkv_grads = (gq[:qw], gq[qw : qw + kw], gq[qw + kw :])
        else:
            q, k, v = mods.separate_qkv()
            qkv_grads = (grad_of(q), grad_of(k), grad_of(v))
        role_grads = {
            "q": qkv_grads[0],
            "k": qkv_grads[1],
            "v": qkv_grads[2],
            "o": grad_of(mods.o),
            "mlp_out": grad_of(mods.mlp_out),
        }
        for j, m in enumerate(mods.mlp_in):
            role_grads[f"mlp_in{j}"] = grad_of(m)

        def fn(
            role: str, w: torch.Tensor, rg: dict[str, torch.Tensor] = role_grads
        ) -> torch.Tensor:
            return taylor_importance(w, rg[role])

        out.append(group_scores(_tensors_from(mods, geometry, fn), geometry))
    return out
