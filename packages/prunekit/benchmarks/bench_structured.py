"""Benchmark: structured pruning of SmolLM2-135M (heads + MLP channels) with four scores.

Measures, side by side in one results file:

* perplexity on the held-out Wikipedia split (prunekit.data.gensim_wikipedia("evaluation"))
  of the dense model and of ``structure="both"`` at each ratio with l1 / activation /
  taylor / bonsai scores, and the ratio to l1;
* parameters and safetensors file size, dense vs pruned;
* FLOPs (dense / pruned = the *ideal* speedup) and measured CPU prefill throughput
  (batch 1 and 8, sequence 512) and greedy generation latency, dense and pruned
  interleaved in the same process;
* max |logit difference| after save + reload with stock ``AutoModelForCausalLM``.

The machine this runs on is small and shared, so the work is split into parts that each
finish in minutes; every part merges its numbers into a JSON file and rewrites the table
between the ``bench:start``/``bench:end`` markers of ``docs/prunekit/structured.md``:

    python bench_structured.py dense
    python bench_structured.py score --ratio 0.2 --score taylor     # x ratios x scores
    python bench_structured.py speed --ratio 0.2
    python bench_structured.py table                                 # rewrite the doc only

This is a benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_RESULTS = ROOT / "out" / "bench_structured.json"
DEFAULT_DOC = ROOT / "docs" / "prunekit" / "structured.md"
SCORES = ("l1", "activation", "taylor", "bonsai")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _save_results(path: Path, results: dict[str, Any]) -> None:
    _write_atomic(path, json.dumps(results, indent=1, sort_keys=True))


def _model_and_data(args: argparse.Namespace) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    from prunekit.data import calibration_windows, evaluation_tokens, gensim_wikipedia
    from prunekit.loading import load_model, smollm2_gguf_path

    loaded = load_model(smollm2_gguf_path())
    tok = loaded.tokenizer
    calib = calibration_windows(tok, gensim_wikipedia("calibration"), args.nsamples, args.seqlen,
                                seed=0)
    evaluation = evaluation_tokens(tok, gensim_wikipedia("evaluation"))
    return loaded.model, loaded, calib, evaluation


def _ppl(model: Any, evaluation: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    from prunekit.evaluation import perplexity

    start = time.perf_counter()
    result = perplexity(model, evaluation, seqlen=args.eval_seqlen, nsamples=args.eval_windows,
                        progress=False)
    out = result.to_dict()
    out["seconds"] = time.perf_counter() - start
    return out


def _options(args: argparse.Namespace) -> Any:
    from prunekit.structured import BonsaiOptions, StructuredOptions

    return StructuredOptions(
        batch_size=args.batch_size,
        bonsai=BonsaiOptions(rounds=args.bonsai_rounds, samples=args.bonsai_samples,
                             eval_sequences=args.bonsai_eval_sequences),
    )


def _prune(model: Any, ratio: float, score: str, calib: torch.Tensor,
           args: argparse.Namespace, channel_multiple: int = 1) -> dict[str, Any]:
    from prunekit.config import PruneConfig
    from prunekit.structured import prune_structured

    config = PruneConfig(structure="both", ratio=ratio, score=score, sparsity=0.0,
                         nsamples=args.nsamples, seqlen=args.seqlen,
                         channel_multiple=channel_multiple)
    return prune_structured(model, config, calib, _options(args))


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "calibration": f"{args.nsamples} x {args.seqlen} tokens, gensim Wikipedia calibration split, seed 0",
        "evaluation": f"{args.eval_windows} non-overlapping windows x {args.eval_seqlen} tokens, held-out split",
        "bonsai": f"{args.bonsai_rounds} rounds x {args.bonsai_samples} sub-models, "
                  f"{args.bonsai_eval_sequences} sequence(s) each",
        "threads": args.threads,
        "torch": torch.__version__,
    }


def part_dense(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from prunekit.structured import count_parameters

    model, _, _, evaluation = _model_and_data(args)
    results["dense"] = {"ppl": _ppl(model, evaluation, args), "params": count_parameters(model)}


def part_score(args: argparse.Namespace, results: dict[str, Any]) -> None:
    model, _, calib, evaluation = _model_and_data(args)
    report = _prune(model, args.ratio, args.score, calib, args)
    entry = {
        "ppl": _ppl(model, evaluation, args),
        "prune_seconds": report["wall_time_s"],
        "params": report["params_after"],
        "heads": f"{report['heads_after']}/{report['heads_before']} "
                 f"(kv {report['kv_heads_after']}/{report['kv_heads_before']})",
        "channels": f"{report['channels_after']}/{report['channels_before']}",
        "settings": _settings(args),
    }
    results.setdefault("scores", {})[f"{args.ratio}:{args.score}"] = entry


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("*.safetensors"))


def _interleaved(fn: Any, models: dict[str, Any], repeats: int, warm: bool = True
                 ) -> dict[str, float]:
    """Median wall and CPU seconds per call of fn(model), dense and pruned alternating."""
    times: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    for model in models.values() if warm else ():  # warm-up, untimed
        fn(model, 0)
    for _ in range(repeats):
        for name, model in models.items():
            t = fn(model, 1)
            times[name].append(t.seconds)
            cpu[name].append(t.cpu_seconds)
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update({f"{k}_cpu": statistics.median(v) for k, v in cpu.items()})
    return out


def part_speed(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from prunekit.saving import save_model
    from prunekit.structured import forward_flops, generation_latency, prefill_throughput
    from transformers import AutoModelForCausalLM

    dense, loaded, calib, _ = _model_and_data(args)
    pruned = copy.deepcopy(dense)
    # The pruned shapes do not depend on the score; l1 needs no data.
    report = _prune(pruned, args.ratio, "l1", calib, args, args.channel_multiple)
    entry: dict[str, Any] = results.setdefault("speed", {}).setdefault(str(args.ratio), {})
    entry.clear()  # a new measurement replaces the old one whole
    entry.update(params_dense=report["params_before"], params_pruned=report["params_after"],
                 channel_multiple=args.channel_multiple, channels_after=report["channels_after"],
                 heads_after=report["heads_after"])
    if args.reload_check:
        with tempfile.TemporaryDirectory(dir=ROOT / "out") as tmp:
            d_path = save_model(dense, Path(tmp) / "dense")
            p_path = save_model(pruned, Path(tmp) / "pruned", tokenizer=loaded.tokenizer)
            entry["bytes_dense"] = _dir_size(d_path)
            entry["bytes_pruned"] = _dir_size(p_path)
            reloaded = AutoModelForCausalLM.from_pretrained(p_path).eval()
            with torch.no_grad():
                ids = calib[:1, :128]
                diff = (reloaded(input_ids=ids).logits - pruned(input_ids=ids).logits).abs().max()
            entry["reload_max_abs_logit_diff"] = float(diff)
            del reloaded
    models = {"dense": dense.eval(), "pruned": pruned.eval()}
    for batch in args.speed_batches:
        flops = {k: forward_flops(m, batch, args.speed_seqlen) for k, m in models.items()}
        secs = _interleaved(
            lambda m, rep, b=batch: prefill_throughput(m, b, args.speed_seqlen, repeats=1,
                                                       warmup=0, seed=rep),
            models, args.speed_repeats, warm=args.speed_warmup,
        )
        p = {
            "flops_dense": flops["dense"], "flops_pruned": flops["pruned"],
            "ideal_speedup": flops["dense"] / flops["pruned"],
            "seconds_dense": secs["dense"], "seconds_pruned": secs["pruned"],
            "tokens_per_s_dense": batch * args.speed_seqlen / secs["dense"],
            "tokens_per_s_pruned": batch * args.speed_seqlen / secs["pruned"],
            "measured_speedup": secs["dense"] / secs["pruned"],
            "cpu_seconds_dense": secs["dense_cpu"], "cpu_seconds_pruned": secs["pruned_cpu"],
            "measured_speedup_cpu": secs["dense_cpu"] / secs["pruned_cpu"],
            "repeats": args.speed_repeats,
            "loadavg_1min": os.getloadavg()[0],
        }
        p["fraction_of_ideal"] = p["measured_speedup"] / p["ideal_speedup"]
        p["fraction_of_ideal_cpu"] = p["measured_speedup_cpu"] / p["ideal_speedup"]
        entry[f"prefill_b{batch}"] = p
    if args.gen_tokens > 0:
        gen = _interleaved(
            lambda m, rep: generation_latency(m, 32, args.gen_tokens, repeats=1, warmup=0,
                                              seed=rep),
            models, args.speed_repeats, warm=False,
        )
        entry["generation"] = {
            "new_tokens": args.gen_tokens,
            "ms_per_token_dense": 1000 * gen["dense"] / args.gen_tokens,
            "ms_per_token_pruned": 1000 * gen["pruned"] / args.gen_tokens,
            "speedup": gen["dense"] / gen["pruned"],
            "speedup_cpu": gen["dense_cpu"] / gen["pruned_cpu"],
        }
    entry["settings"] = {"threads": args.threads, "nice": os.nice(0)}


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def cpu_speedup(p: dict[str, Any]) -> str:
    return _fmt(p["measured_speedup_cpu"]) if "measured_speedup_cpu" in p else "n/a"


def cpu_fraction(p: dict[str, Any]) -> str:
    return _fmt(p["fraction_of_ideal_cpu"]) if "fraction_of_ideal_cpu" in p else "n/a"


def render(results: dict[str, Any]) -> str:
    lines = [START, ""]
    dense = results.get("dense")
    scores = results.get("scores", {})
    if dense:
        dppl = dense["ppl"]["perplexity"]
        lines += [
            f"Perplexity on held-out Wikipedia ({dense['ppl']['nsamples']} non-overlapping windows "
            f"x {dense['ppl']['seqlen']} tokens = {dense['ppl']['n_tokens']} scored tokens). "
            f"Dense SmolLM2-135M: **{_fmt(dppl)}**. `structure=\"both\"`.",
            "",
            "| ratio | score | heads kept (kv) | channels kept | params | perplexity | x dense "
            "| ppl / l1 ppl | prune time (s) | calibration used |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        ratios = sorted({k.split(":")[0] for k in scores}, key=float)
        for ratio in ratios:
            l1 = scores.get(f"{ratio}:l1")
            for score in SCORES:
                e = scores.get(f"{ratio}:{score}")
                if e is None:
                    continue
                ppl = e["ppl"]["perplexity"]
                vs = f"{ppl / l1['ppl']['perplexity']:.2g}" if l1 else "n/a"
                calib = e["settings"]["calibration"].split(",")[0] if score != "l1" else "none"
                if score == "bonsai":
                    calib += f"; {e['settings']['bonsai']}"
                lines.append(
                    f"| {ratio} | {score} | {e['heads']} | {e['channels']} | "
                    f"{e['params'] / 1e6:.1f} M | {_fmt(ppl)} | {_fmt(ppl / dppl)} | {vs} | "
                    f"{e['prune_seconds']:.0f} | {calib} |"
                )
        if scores:
            any_settings = dict(next(iter(scores.values()))["settings"])
            for key in ("calibration", "bonsai"):
                any_settings.pop(key, None)
            lines += ["", "Settings: " + "; ".join(f"{k}: {v}" for k, v in any_settings.items())]
    speed = results.get("speed", {})
    if speed:
        lines += [
            "",
            "Speed, dense vs pruned in the same process, interleaved (median seconds per call; "
            "CPU, float32). Ideal = dense FLOPs / pruned FLOPs.",
            "",
            "| ratio | params dense -> pruned | file MB dense -> pruned | reload max abs logit "
            "diff | prefill | tokens/s dense (wall) | tokens/s pruned (wall) | speedup wall | "
            "speedup CPU time | ideal | wall / ideal | CPU / ideal | timed calls each | load avg | "
            "generation ms/token dense -> pruned (wall) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for ratio in sorted(speed, key=float):
            e = speed[ratio]
            g = e.get("generation")
            gen = (f"{_fmt(g['ms_per_token_dense'], 0)} -> {_fmt(g['ms_per_token_pruned'], 0)}"
                   if g else "n/a")
            size = (f"{e['bytes_dense'] / 1e6:.0f} -> {e['bytes_pruned'] / 1e6:.0f}"
                    if "bytes_dense" in e else "n/a")
            diff = (f"{e['reload_max_abs_logit_diff']:.1e}"
                    if "reload_max_abs_logit_diff" in e else "n/a")
            for key in sorted(k for k in e if k.startswith("prefill_b")):
                p = e[key]
                shape = (f" ({e['heads_after']} heads, {e['channels_after']} MLP channels)"
                         if "channels_after" in e else "")
                lines.append(
                    f"| {ratio}{shape} | {e['params_dense'] / 1e6:.1f} M -> "
                    f"{e['params_pruned'] / 1e6:.1f} M "
                    f"| {size} | {diff} | batch {key[9:]} x 512 "
                    f"| {p['tokens_per_s_dense']:.1f} | {p['tokens_per_s_pruned']:.1f} "
                    f"| {_fmt(p['measured_speedup'])} | {cpu_speedup(p)} "
                    f"| {_fmt(p['ideal_speedup'])} "
                    f"| {_fmt(p['fraction_of_ideal'])} | {cpu_fraction(p)} "
                    f"| {p['repeats']} | {p['loadavg_1min']:.1f} | {gen} |"
                )
    lines += ["", END]
    return "\n".join(lines)


def write_doc(doc: Path, results: dict[str, Any]) -> None:
    text = doc.read_text() if doc.exists() else f"# Structured pruning\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    _write_atomic(doc, before + render(results) + after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["dense", "score", "speed", "table"])
    parser.add_argument("--ratio", type=float, default=0.2)
    parser.add_argument("--score", choices=SCORES, default="l1")
    parser.add_argument("--nsamples", type=int, default=8)
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--eval-windows", type=int, default=6)
    parser.add_argument("--eval-seqlen", type=int, default=512)
    parser.add_argument("--bonsai-rounds", type=int, default=2)
    parser.add_argument("--bonsai-samples", type=int, default=12)
    parser.add_argument("--bonsai-eval-sequences", type=int, default=1)
    parser.add_argument("--speed-batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--speed-seqlen", type=int, default=512)
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--channel-multiple", type=int, default=32,
                        help="speed part: kept MLP channels rounded to a multiple of this")
    parser.add_argument("--gen-tokens", type=int, default=16)
    parser.add_argument("--speed-warmup", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--reload-check", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    (ROOT / "out").mkdir(exist_ok=True)
    results = _load_results(args.results)
    start = time.perf_counter()
    if args.part == "dense":
        part_dense(args, results)
    elif args.part == "score":
        part_score(args, results)
    elif args.part == "speed":
        part_speed(args, results)
    if args.part != "table":
        _save_results(args.results, results)
    write_doc(args.doc, results)
    print(f"{args.part} done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
