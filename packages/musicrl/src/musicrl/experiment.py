"""The end-to-end loop behind the demo and the benchmark, with simulated raters.

1. Load a corpus subset; 80% of the pieces pretrain the generator (cached on disk), the
   other 20% provide the evaluation prompts.
2. Sample two melodies from the base model for each of ``n_pref_prompts`` training
   prompts and let five simulated raters (seeds 0-4) choose; the records go to a JSONL
   preference store. **These are simulated preferences, not human ones.**
3. Fit the Bradley-Terry reward model on 80% of the records and report its pairwise
   accuracy on the other 20% next to the best achievable there (the noiseless taste on
   the same noisy labels). Fit the adherence classifier on the pretraining pieces.
4. Fine-tune the variants (MusicRL's R, U, RU) with REINFORCE + KL, and DPO on the same
   training records.
5. For every evaluation prompt sample one melody per model and two from the base, and let
   a held-out judge (a simulated rater with the same taste and its own seed, never used
   for training) compare each model with the base; with ``n_eval_draws > 1`` this is
   repeated on fresh samples and the judge's counts are pooled. Report the win rate with
   its Wilson interval, the base-vs-base control, mean rewards, diversity and length.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicrl.checkpoint import is_checkpoint, load_checkpoint, save_checkpoint
from musicrl.corpus import Melody, Piece, Prompt, load_corpus
from musicrl.dpo import DPOConfig, dpo_finetune
from musicrl.evaluation import (
    SampleStats,
    WinRate,
    judge_win_rate,
    mean_sample_stats,
    pool_win_rates,
    sample_stats,
)
from musicrl.finetune import VARIANTS, FinetuneConfig, finetune
from musicrl.generator import GeneratorConfig, MelodyTransformer, sample
from musicrl.preferences import PreferenceStore, read_store, write_store
from musicrl.pretrain import PretrainConfig, pretrain
from musicrl.raters import HiddenTaste, SimulatedRater, best_achievable_accuracy
from musicrl.rewards import AdherenceClassifier, PreferenceRewardModel, QualityReward, Reward
from musicrl.tokenizer import Tokenizer

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "ModelReport",
    "TasteReward",
    "generate",
    "markdown_table",
    "rate_pairs",
    "run_experiment",
    "simulate_preferences",
]

logger = logging.getLogger(__name__)

#: Bumped when a reward or the taste changes, so cached fine-tunes are not reused.
REWARD_VERSION = 2

#: Bumped when the fine-tuning algorithm changes (2: leave-one-out advantages; 3: cut-off
#: melodies ranked last), so that cached fine-tunes of the old algorithm are not reused.
FINETUNE_VERSION = 3

#: Seeds of the simulated raters whose choices train the rewards; the judge's differs.
TRAIN_RATER_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes and settings of :func:`run_experiment` (the demo and the benchmark differ
    only in these numbers; see ``docs/musicrl/benchmarks.md``)."""

    n_pieces: int = 400
    pretrain_epochs: int = 15
    d_model: int = 128
    n_layers: int = 4
    metrical: bool = True
    n_pref_prompts: int = 600
    rl_steps: int = 60
    rl_batch: int = 32
    rl_samples_per_prompt: int = 4
    rl_normalise: str = "rank"
    rl_length_neutral_kl: bool = True
    rl_unfinished_last: bool = True
    rl_warmup_steps: int = 10
    kl: float = 0.1
    lr: float = 3e-4
    variants: tuple[str, ...] = ("R", "U", "RU")
    dpo: bool = True
    dpo_beta: float = 0.1
    dpo_epochs: int = 2
    n_eval_prompts: int = 200
    n_eval_draws: int = 1
    max_new_tokens: int = 256
    seed: int = 0
    judge_seed: int = 10_007
    cache_dir: Path = field(default_factory=lambda: Path("out/musicrl"))
    threads: int | None = None

    def __post_init__(self) -> None:
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"variants must be drawn from {sorted(VARIANTS)}; got {v!r}")
        if self.judge_seed in TRAIN_RATER_SEEDS:
            raise ValueError(
                f"judge_seed must differ from the training raters' seeds {TRAIN_RATER_SEEDS}"
            )
        if self.kl < 0:
            raise ValueError(f"kl must be >= 0; got {self.kl}")
        if isinstance(self.n_eval_draws, bool) or not (
            isinstance(self.n_eval_draws, int) and self.n_eval_draws >= 1
        ):
            raise ValueError(f"n_eval_draws must be an int >= 1; got {self.n_eval_draws!r}")


class TasteReward:
    """The hidden taste as a reward-like object (for reporting only, never for training)."""

    name = "taste"

    def __init__(self, taste: HiddenTaste | None = None) -> None:
        self.taste = taste or HiddenTaste()

    def score(self, prompts: Sequence[Prompt], melodies: Sequence[Melody]) -> np.ndarray:
        """Noiseless hidden-taste utility of each melody (see :mod:`musicrl.raters`)."""
        return self.taste.utilities(prompts, melodies)


@dataclass(frozen=True)
class ModelReport:
    """One row of the results: win rate against the base by the held-out judge, stats."""

    name: str
    win_rate: WinRate
    stats: SampleStats
    train_seconds: float


@dataclass(frozen=True)
class ExperimentResult:
    """Everything the demo prints and the benchmark writes."""

    config: ExperimentConfig
    base_stats: SampleStats
    rows: list[ModelReport]
    reward_model_accuracy: float
    best_achievable_accuracy: float
    n_records: int
    n_heldout_records: int
    tie_rate: float
    adherence_key_accuracy: float
    adherence_meter_accuracy: float
    adherence_length_accuracy: float
    timings: dict[str, float]


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def generate(
    model: MelodyTransformer,
    tokenizer: Tokenizer,
    prompts: Sequence[Prompt],
    seed: int,
    max_new_tokens: int,
    batch_size: int = 64,
) -> list[Melody]:
    """Sample one melody per prompt (temperature 1, no top-k), seeded, in batches."""
    g = torch.Generator().manual_seed(seed)
    out: list[Melody] = []
    for i in range(0, len(prompts), batch_size):
        batch = sample(
            model,
            tokenizer,
            list(prompts[i : i + batch_size]),
            max_new_tokens=max_new_tokens,
            generator=g,
        )
        out.extend(batch.melodies)
    return out


def rate_pairs(
    prompts: Sequence[Prompt],
    melodies_a: Sequence[Melody],
    melodies_b: Sequence[Melody],
    rater_seeds: Sequence[int] = TRAIN_RATER_SEEDS,
) -> PreferenceStore:
    """Let simulated raters (seeds ``rater_seeds``, taking turns) judge each pair.

    Records carry the rater ids ``simulated-<seed>``; identical pairs are skipped.
    """
    store = PreferenceStore()
    raters = [SimulatedRater(seed=s) for s in rater_seeds]
    a, b = melodies_a, melodies_b
    for i, rater in enumerate(raters):
        idx = list(range(i, len(prompts), len(raters)))
        choices = rater.choose([prompts[j] for j in idx], [a[j] for j in idx], [b[j] for j in idx])
        for j, c in zip(idx, choices, strict=True):
            if a[j] == b[j]:
                continue  # identical samples: nothing to compare
            store.add(prompts[j], a[j], b[j], c, rater.rater_id)
    return store


def simulate_preferences(
    model: MelodyTransformer,
    tokenizer: Tokenizer,
    prompts: Sequence[Prompt],
    rater_seeds: Sequence[int] = TRAIN_RATER_SEEDS,
    seed: int = 0,
    max_new_tokens: int = 256,
) -> PreferenceStore:
    """Two base samples per prompt, judged by simulated raters taking turns
    (:func:`rate_pairs`)."""
    a = generate(model, tokenizer, prompts, seed * 2 + 1, max_new_tokens)
    b = generate(model, tokenizer, prompts, seed * 2 + 2, max_new_tokens)
    return rate_pairs(prompts, a, b, rater_seeds)


def _cycle(prompts: Sequence[Prompt], n: int) -> list[Prompt]:
    return [prompts[i % len(prompts)] for i in range(n)]


def run_experiment(
    config: ExperimentConfig,
    *,
    progress: bool = True,
    report: Callable[[str], None] = logger.info,
) -> ExperimentResult:
    """Run the whole loop (module docstring); ``report`` receives progress lines."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cache = Path(config.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    if config.threads is not None:
        torch.set_num_threads(config.threads)

    pieces = load_corpus(subset=config.n_pieces, seed=config.seed, progress=progress)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(pieces))
    n_eval = max(1, len(pieces) // 5)
    eval_pieces = [pieces[i] for i in sorted(order[:n_eval])]
    train_pieces: list[Piece] = [pieces[i] for i in sorted(order[n_eval:])]
    timings["corpus"] = time.perf_counter() - t0
    report(f"corpus: {len(train_pieces)} training pieces, {len(eval_pieces)} evaluation pieces")

    # ---------------------------------------------------------------- base model
    tok = Tokenizer()
    gen_cfg = GeneratorConfig(
        tok.vocab_size, d_model=config.d_model, n_layers=config.n_layers, metrical=config.metrical
    )
    key = _digest(
        {
            "n": config.n_pieces,
            "ep": config.pretrain_epochs,
            "g": gen_cfg.to_dict(),
            "s": config.seed,
        }
    )
    base_dir = cache / f"base-{key}"
    t = time.perf_counter()
    if is_checkpoint(base_dir):
        base = load_checkpoint(base_dir).model
        report(f"base model: reusing {base_dir}")
    else:
        report(f"base model: pretraining on {len(train_pieces)} pieces")
        pt = pretrain(
            train_pieces,
            tok,
            gen_cfg,
            PretrainConfig(epochs=config.pretrain_epochs, seed=config.seed, threads=config.threads),
            progress=progress,
        )
        base = pt.model
        save_checkpoint(base_dir, base, tok, gen_cfg, {"val_loss": pt.final_val_loss})
        report(f"base model: val loss {pt.final_val_loss:.3f} nats/token, saved to {base_dir}")
    base.eval()
    timings["pretrain"] = time.perf_counter() - t

    # ---------------------------------------------------------------- preferences
    t = time.perf_counter()
    train_prompts = [p.prompt for p in train_pieces]
    pref_prompts = [
        train_prompts[int(i)] for i in rng.integers(0, len(train_prompts), config.n_pref_prompts)
    ]
    # the sampled pairs are cached apart from the choices, so that a change of the
    # simulated taste (REWARD_VERSION) re-rates the same pairs instead of resampling
    pairs_path = cache / f"pairs-{key}-{config.n_pref_prompts}.jsonl"
    store_path = cache / f"prefs-v{REWARD_VERSION}-{key}-{config.n_pref_prompts}.jsonl"
    if store_path.is_file():
        store = read_store(store_path)
        report(f"preferences: reusing {len(store)} simulated records from {store_path}")
    else:
        if pairs_path.is_file():
            pairs = read_store(pairs_path)
            report(f"preferences: re-rating {len(pairs)} cached pairs from {pairs_path}")
            store = rate_pairs(*pairs.columns()[:3])
        else:
            report(f"preferences: sampling {2 * len(pref_prompts)} melodies for simulated raters")
            store = simulate_preferences(
                base, tok, pref_prompts, seed=config.seed, max_new_tokens=config.max_new_tokens
            )
            write_store(store, pairs_path)
        write_store(store, store_path)
        report(f"preferences: {len(store)} simulated records written to {store_path}")
    timings["preferences"] = time.perf_counter() - t
    n_rec = len(store)
    perm = rng.permutation(n_rec)
    n_hold = n_rec // 5
    heldout = store.subset(sorted(perm[:n_hold].tolist()))
    train_store = store.subset(sorted(perm[n_hold:].tolist()))
    choices_all = [r.choice for r in store.records]
    tie_rate = choices_all.count("tie") / max(n_rec, 1)

    # ---------------------------------------------------------------- rewards
    t = time.perf_counter()
    pm = PreferenceRewardModel(seed=config.seed).fit(*train_store.columns())
    hp, ha, hb, hc = heldout.columns()
    rm_acc = pm.accuracy(hp, ha, hb, hc)
    best_acc = best_achievable_accuracy(HiddenTaste(), hp, ha, hb, hc)
    report(
        f"reward model: held-out pairwise accuracy {rm_acc:.3f} "
        f"(best achievable on these noisy labels {best_acc:.3f}; {n_hold} records)"
    )
    adh = AdherenceClassifier(seed=config.seed).fit(train_pieces)
    assert adh.fit_result_ is not None
    report(
        f"adherence classifier: held-out key accuracy {adh.fit_result_.key_accuracy:.3f}, "
        f"meter accuracy {adh.fit_result_.meter_accuracy:.3f}, "
        f"length accuracy {adh.fit_result_.length_accuracy:.3f}"
    )
    timings["rewards"] = time.perf_counter() - t
    rewards: dict[str, Reward] = {"preference": pm, "adherence": adh, "quality": QualityReward()}
    report_rewards: dict[str, object] = {**rewards, "taste": TasteReward()}

    # ---------------------------------------------------------------- fine-tuning
    models: dict[str, tuple[MelodyTransformer, float]] = {}
    rl_key = _digest(
        {
            "v": REWARD_VERSION,
            "base": key,
            "prefs": config.n_pref_prompts,
            "steps": config.rl_steps,
            "batch": config.rl_batch,
            "kl": config.kl,
            "lr": config.lr,
            "tok": config.max_new_tokens,
            "k": config.rl_samples_per_prompt,
            "norm": config.rl_normalise,
            "lnkl": config.rl_length_neutral_kl,
            # named only when off: FINETUNE_VERSION already separates the default's runs
            **({} if config.rl_unfinished_last else {"keep_unfinished": True}),
            "warm": config.rl_warmup_steps,
            "alg": FINETUNE_VERSION,
        }
    )
    for v in config.variants:
        t = time.perf_counter()
        run_dir = cache / f"reinforce-{v}-{rl_key}"
        if is_checkpoint(run_dir / "final"):
            models[f"REINFORCE-{v}"] = (load_checkpoint(run_dir / "final").model, 0.0)
            report(f"REINFORCE-{v}: reusing {run_dir / 'final'}")
            continue
        report(f"fine-tuning REINFORCE-{v} ({config.rl_steps} steps, KL {config.kl})")
        res = finetune(
            base,
            tok,
            train_prompts,
            rewards,
            FinetuneConfig(
                rewards=dict(VARIANTS[v]),
                kl=config.kl,
                steps=config.rl_steps,
                batch_size=config.rl_batch,
                samples_per_prompt=config.rl_samples_per_prompt,
                normalise=config.rl_normalise,
                length_neutral_kl=config.rl_length_neutral_kl,
                unfinished_last=config.rl_unfinished_last,
                warmup_steps=config.rl_warmup_steps,
                lr=config.lr,
                max_new_tokens=config.max_new_tokens,
                checkpoint_every=10,
                seed=config.seed,
                threads=config.threads,
            ),
            run_dir,
            progress=progress,
        )
        models[f"REINFORCE-{v}"] = (res.model, time.perf_counter() - t)
        last = res.history[-1]
        report(f"  last step: KL {last['kl']:.2f} nats, mean notes {last['mean_notes']:.1f}")
    if config.dpo:
        t = time.perf_counter()
        dpo_dir = (
            cache / f"dpo-{_digest({'rl': rl_key, 'b': config.dpo_beta, 'e': config.dpo_epochs})}"
        )
        if is_checkpoint(dpo_dir):
            models["DPO"] = (load_checkpoint(dpo_dir).model, 0.0)
            report(f"DPO: reusing {dpo_dir}")
        else:
            report(f"fine-tuning DPO (beta {config.dpo_beta}, {config.dpo_epochs} epochs)")
            dres = dpo_finetune(
                base,
                tok,
                train_store,
                DPOConfig(
                    beta=config.dpo_beta, epochs=config.dpo_epochs, lr=config.lr, seed=config.seed
                ),
                progress=progress,
            )
            save_checkpoint(dpo_dir, dres.model, tok, gen_cfg, {"kind": "dpo"})
            models["DPO"] = (dres.model, time.perf_counter() - t)

    # ---------------------------------------------------------------- evaluation
    t = time.perf_counter()
    eval_prompts = _cycle([p.prompt for p in eval_pieces], config.n_eval_prompts)
    judge = SimulatedRater(seed=config.judge_seed, rater_id=f"simulated-judge-{config.judge_seed}")
    draws = config.n_eval_draws
    report(
        f"evaluation: {len(eval_prompts)} prompts x {draws} draw(s), held-out judge "
        f"{judge.rater_id}"
    )
    # Draw d samples every model with seed 1000 + 10 d and the base's reference with
    # 1000 + 10 d + 1; the win counts of the draws are pooled and the statistics averaged.
    seeds = [config.seed + 1000 + 10 * d for d in range(draws)]
    refs = [generate(base, tok, eval_prompts, s + 1, config.max_new_tokens) for s in seeds]
    base_stats = mean_sample_stats([sample_stats(eval_prompts, r, report_rewards) for r in refs])

    def judged(model: MelodyTransformer, name: str, secs: float) -> ModelReport:
        mels = [generate(model, tok, eval_prompts, s, config.max_new_tokens) for s in seeds]
        pairs = zip(mels, refs, strict=True)
        return ModelReport(
            name,
            pool_win_rates([judge_win_rate(judge, eval_prompts, m, r) for m, r in pairs]),
            mean_sample_stats([sample_stats(eval_prompts, m, report_rewards) for m in mels]),
            secs,
        )

    rows = [judged(base, "base (control)", 0.0)]
    rows.extend(judged(model, name, secs) for name, (model, secs) in models.items())
    timings["evaluation"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    assert adh.fit_result_ is not None
    return ExperimentResult(
        config=config,
        base_stats=base_stats,
        rows=rows,
        reward_model_accuracy=rm_acc,
        best_achievable_accuracy=best_acc,
        n_records=n_rec,
        n_heldout_records=n_hold,
        tie_rate=tie_rate,
        adherence_key_accuracy=adh.fit_result_.key_accuracy,
        adherence_meter_accuracy=adh.fit_result_.meter_accuracy,
        adherence_length_accuracy=adh.fit_result_.length_accuracy,
        timings=timings,
    )


def markdown_table(result: ExperimentResult) -> str:
    """The results table: win rate vs base with CI, diversity and length ratios to base."""
    b = result.base_stats
    lines = [
        "| model | win rate vs base [95% CI] | W/L/T | taste | distinct-4 (× base) "
        "| pc entropy (× base) | notes (× base) | bars (× base) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result.rows:
        s = r.stats
        w = r.win_rate
        lines.append(
            f"| {r.name} | {100 * w.rate:.1f}% [{100 * w.ci_low:.1f}, {100 * w.ci_high:.1f}] "
            f"| {w.wins}/{w.losses}/{w.ties} | {s.rewards.get('taste', float('nan')):.2f} "
            f"| {s.distinct_4:.3f} ({s.distinct_4 / b.distinct_4:.2f}) "
            f"| {s.pc_entropy:.2f} ({s.pc_entropy / b.pc_entropy:.2f}) "
            f"| {s.mean_notes:.1f} ({s.mean_notes / b.mean_notes:.2f}) "
            f"| {s.mean_bars:.1f} ({s.mean_bars / b.mean_bars:.2f}) |"
        )
    return "\n".join(lines)


def result_dict(result: ExperimentResult) -> dict[str, object]:
    """JSON-ready summary of a result."""
    return {
        "config": {
            k: str(v) if isinstance(v, Path) else v for k, v in asdict(result.config).items()
        },
        "reward_model_accuracy": result.reward_model_accuracy,
        "best_achievable_accuracy": result.best_achievable_accuracy,
        "n_records": result.n_records,
        "tie_rate": result.tie_rate,
        "adherence_key_accuracy": result.adherence_key_accuracy,
        "adherence_meter_accuracy": result.adherence_meter_accuracy,
        "adherence_length_accuracy": result.adherence_length_accuracy,
        "timings": result.timings,
        "base_stats": asdict(result.base_stats),
        "rows": [
            {
                "name": r.name,
                "win_rate": asdict(r.win_rate),
                "stats": asdict(r.stats),
                "train_seconds": r.train_seconds,
            }
            for r in result.rows
        ],
    }
