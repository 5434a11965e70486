"""musicrl demo: pretrain, simulate preferences, train rewards, fine-tune R/U/RU, judge.

Runs the small end-to-end loop of ``musicrl.experiment`` (a few minutes on two cores; a
cached base model and preference store under ``out/musicrl/cache`` are reused) and prints
the win-rate table against the base by a held-out simulated judge, with diversity and
length next to it. All preferences here are SIMULATED (documented hidden taste + noise).

Sixty fine-tuning steps only show the loop working: measured here, RU won 51% of 100
prompts (R 54%, U 59%) against the benchmark's 82% after 600 steps. In so few steps the
rule that ranks melodies cut off by the token cap last (``FinetuneConfig.unfinished_last``)
mostly pushes towards shorter melodies; with it off, the plain generator's RU won 68% but
with melodies 1.9 times as long, drifting towards the cap (docs/musicrl/concepts.md).

Threads: ``MUSICRL_THREADS`` (default 1: on a shared two-core machine one torch thread
measured ~4x faster per step than two, which spin-wait for each other).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from musicrl.experiment import ExperimentConfig, markdown_table, run_experiment


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    threads = int(os.environ.get("MUSICRL_THREADS", "1"))
    root = Path(__file__).resolve().parents[3]
    config = ExperimentConfig(
        n_pieces=400,
        pretrain_epochs=20,
        d_model=64,
        n_layers=2,
        metrical=True,  # bar-position embeddings, as `make bench`
        n_pref_prompts=600,
        rl_steps=60,
        rl_batch=64,
        kl=0.1,
        n_eval_prompts=100,
        max_new_tokens=256,
        # shared with `make bench`: the base model (same settings) is trained once and
        # reused; each preference store and fine-tune is cached and resumable
        cache_dir=root / "out" / "musicrl" / "cache",
        threads=threads,
    )
    start = time.perf_counter()

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f}s] {line}", flush=True)

    say("musicrl demo: all preferences below come from SIMULATED raters, not people")
    result = run_experiment(config, progress=True, report=say)
    print()
    print(
        f"reward model held-out pairwise accuracy: {result.reward_model_accuracy:.3f} "
        f"(best achievable on the same noisy labels: {result.best_achievable_accuracy:.3f}; "
        f"{result.n_heldout_records} records, tie rate {result.tie_rate:.2f})"
    )
    print(
        f"adherence classifier held-out accuracy: key {result.adherence_key_accuracy:.3f}, "
        f"meter {result.adherence_meter_accuracy:.3f}, "
        f"length {result.adherence_length_accuracy:.3f}"
    )
    print()
    print(
        f"win rate against the base, judged by a held-out simulated judge "
        f"({config.n_eval_prompts} prompts; ties excluded; 95% Wilson interval):"
    )
    print(markdown_table(result))
    print(
        f"\ntotal {result.timings['total']:.0f}s; the fuller run is `make bench` "
        "(docs/musicrl/benchmarks.md)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
