"""Hypothesis strategies shared by the prunekit tests."""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from prunekit.config import PruneConfig


@st.composite
def score_matrices(
    draw: st.DrawFn, max_rows: int = 6, max_cols: int = 16, m: int = 1
) -> torch.Tensor:
    """Float (rows, cols) score matrices with many ties (values from a small integer set).

    ``cols`` is a multiple of ``m`` so N:M patterns apply.
    """
    rows = draw(st.integers(1, max_rows))
    cols = m * draw(st.integers(1, max(1, max_cols // m)))
    levels = draw(st.integers(1, 4))  # few distinct values -> many ties
    values = draw(st.lists(st.integers(0, levels - 1), min_size=rows * cols, max_size=rows * cols))
    return torch.tensor(values, dtype=torch.float32).reshape(rows, cols)


sparsities = st.floats(min_value=0.0, max_value=0.99, allow_nan=False, allow_infinity=False)


@st.composite
def nm_patterns(draw: st.DrawFn) -> tuple[int, int]:
    """(N, M) with 1 <= N < M <= 8."""
    m = draw(st.integers(2, 8))
    n = draw(st.integers(1, m - 1))
    return n, m


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.*", min_size=1, max_size=12)


@st.composite
def prune_configs(draw: st.DrawFn) -> PruneConfig:
    """Valid PruneConfig objects over the whole option space."""
    structure = draw(st.sampled_from(["none", "heads", "mlp", "both"]))
    pattern = draw(st.sampled_from(["unstructured", "2:4", "4:8", "1:4"]))
    if pattern == "unstructured":
        sparsity = draw(sparsities)
    else:
        n, m = (int(x) for x in pattern.split(":"))
        sparsity = 1 - n / m
    return PruneConfig(
        method=draw(st.sampled_from(["magnitude", "sparsegpt", "wanda"])),
        sparsity=sparsity,
        pattern=pattern,
        group=draw(st.sampled_from(["row", "matrix"])),
        calib=draw(st.none() | st.text(min_size=1, max_size=20)),
        nsamples=draw(st.integers(1, 512)),
        seqlen=draw(st.integers(2, 4096)),
        seed=draw(st.integers(0, 2**31)),
        targets=tuple(draw(st.lists(_names, min_size=1, max_size=3))),
        ignore=tuple(draw(st.lists(_names, max_size=2))),
        percdamp=draw(st.floats(1e-6, 1.0)),
        blocksize=8 * draw(st.integers(1, 32)),
        refine_iters=draw(st.integers(0, 50)),
        true_sequential=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "bfloat16"])),
        threads=draw(st.none() | st.integers(1, 64)),
        eval_data=draw(st.none() | st.text(min_size=1, max_size=20)),
        eval_nsamples=draw(st.none() | st.integers(1, 100)),
        structure=structure,
        ratio=0.0 if structure == "none" else draw(st.floats(0.01, 0.9)),
        score=draw(st.sampled_from(["l1", "taylor", "activation", "bonsai"])),
    )
