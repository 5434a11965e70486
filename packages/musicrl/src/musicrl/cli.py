"""Command line: ``musicrl pretrain | simulate | train-reward | finetune | dpo | evaluate``,
``musicrl sample``.

Conventions: logs (and progress bars) go to stderr, results to stdout (JSON lines or a
short table); exit code 0 on success, 1 when the run fails, 2 on bad input (unknown
options, malformed or unreadable files, invalid values, an unusable ``--out``, a missing
optional dependency), as click does for usage errors, and 130 on Ctrl-C. Errors are one
``Error: ...`` paragraph on stderr; the traceback is shown only with ``-v``.

``--out`` is checked before any work: it must not exist (``finetune``: a new folder or
a previous fine-tune run folder, to resume), its nearest existing parent must be a
folder, and it must not lie inside (or contain) an input checkpoint folder.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["main"]

logger = logging.getLogger("musicrl")

F = TypeVar("F", bound=Callable[..., Any])


#: Seeds: numpy's and torch's generators take any value in this range.
_SEED = click.IntRange(0, 2**32 - 1)


def _setup(verbose: int, threads: int | None) -> None:
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["musicrl.verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _verbose() -> int:
    ctx = click.get_current_context(silent=True)
    return int(ctx.meta.get("musicrl.verbose", 0)) if ctx is not None else 0


def _common(f: F) -> F:
    f = click.option(
        "-v", "--verbose", count=True, help="More logging on stderr (-vv: debug); tracebacks."
    )(f)
    f = click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        envvar="MUSICRL_THREADS",
        help="torch threads (default $MUSICRL_THREADS or torch's own).",
    )(f)
    return f


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(_json_safe(obj), default=str, allow_nan=False))


class _BadInput(click.UsageError):
    """Bad input: exit code 2 with the message."""


def _guard(fn: Callable[[], None]) -> None:
    """Run ``fn``; bad input (ValueError/TypeError/FileNotFoundError) -> exit 2, else 1.

    Only the message is printed; with ``-v`` the traceback too.
    """
    try:
        fn()
    except (ValueError, TypeError, FileNotFoundError) as err:
        if _verbose():
            click.echo(traceback.format_exc(), err=True)
        raise _BadInput(str(err)) from None
    except click.ClickException:
        raise
    except Exception as err:  # a failed run: report and exit 1
        if _verbose():
            click.echo(traceback.format_exc(), err=True)
        raise click.ClickException(f"{type(err).__name__}: {err}") from None


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (after resolving links)."""
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _check_out(
    out: Path,
    what: str,
    inputs: Sequence[tuple[str, Path]] = (),
    *,
    may_exist: bool = False,
) -> None:
    """Refuse an unusable ``--out`` before any work (ValueError naming ``--out``).

    It must not exist (unless ``may_exist``), its nearest existing parent must be a
    folder, and it must not be, lie inside or contain an input folder of ``inputs``
    (``(flag, path)`` pairs).
    """
    if out.exists() and not may_exist:
        raise ValueError(
            f"--out {str(out)!r} exists; choose a new {what} (inputs and earlier outputs "
            "are never overwritten)"
        )
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ValueError(
                    f"--out {str(out)!r}: {str(parent)!r} is a file, not a folder; choose an "
                    f"--out {what} whose parent is a folder"
                )
            break
    for flag, folder in inputs:
        if _inside(out, folder):
            raise ValueError(
                f"--out {str(out)!r} is or lies inside {flag} {str(folder)!r}; input "
                f"folders are never written to: choose an --out {what} outside it"
            )
        if _inside(folder, out):
            raise ValueError(
                f"--out {str(out)!r} contains {flag} {str(folder)!r}; the run would write "
                f"over its input: choose an --out {what} outside it"
            )


class _Main(click.Group):
    """The command group; Ctrl-C exits 130 with one line instead of click's "Aborted!"."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("Interrupted (Ctrl-C); nothing half-written was kept.", err=True)
            raise click.exceptions.Exit(130) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="musicrl")
def main() -> None:
    """Symbolic melodies fine-tuned from pairwise preferences (MusicRL for MIDI)."""


@main.command()
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="Checkpoint folder."
)
@click.option(
    "--subset", type=click.IntRange(min=1), default=400, show_default=True, help="Corpus pieces."
)
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--d-model", type=click.IntRange(min=8), default=64, show_default=True)
@click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@_common
def pretrain(
    out: Path,
    subset: int,
    epochs: int,
    d_model: int,
    layers: int,
    seed: int,
    verbose: int,
    threads: int | None,
) -> None:
    """Pretrain the generator on a music21 corpus subset."""
    _setup(verbose, threads)

    def run() -> None:
        _check_out(out, "folder")
        from musicrl.checkpoint import save_checkpoint
        from musicrl.corpus import load_corpus
        from musicrl.generator import GeneratorConfig
        from musicrl.pretrain import PretrainConfig
        from musicrl.pretrain import pretrain as _pretrain
        from musicrl.tokenizer import Tokenizer

        pieces = load_corpus(subset=subset, seed=seed)
        tok = Tokenizer()
        cfg = GeneratorConfig(tok.vocab_size, d_model=d_model, n_layers=layers)
        res = _pretrain(pieces, tok, cfg, PretrainConfig(epochs=epochs, seed=seed, threads=threads))
        save_checkpoint(
            out, res.model, tok, cfg, {"val_loss": res.final_val_loss, "pieces": len(pieces)}
        )
        _emit({"checkpoint": str(out), "val_loss": res.final_val_loss, "steps": res.steps})

    _guard(run)


@main.command()
@click.option(
    "--base", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Store (.jsonl or .sqlite)."
)
@click.option("--prompts", "n_prompts", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--subset", type=click.IntRange(min=1), default=400, show_default=True)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@_common
def simulate(
    base: Path, out: Path, n_prompts: int, subset: int, seed: int, verbose: int, threads: int | None
) -> None:
    """Fill a preference store with SIMULATED raters' choices between base samples."""
    _setup(verbose, threads)

    def run() -> None:
        _check_out(out, "file", [("--base", base)])
        import numpy as np

        from musicrl.checkpoint import load_checkpoint
        from musicrl.corpus import load_corpus
        from musicrl.experiment import simulate_preferences
        from musicrl.preferences import write_store

        ck = load_checkpoint(base)
        pieces = load_corpus(subset=subset, seed=seed)
        rng = np.random.default_rng(seed)
        prompts = [pieces[int(i)].prompt for i in rng.integers(0, len(pieces), n_prompts)]
        store = simulate_preferences(ck.model, ck.tokenizer, prompts, seed=seed)
        write_store(store, out)
        _emit({"store": str(out), "records": len(store), "simulated": True})

    _guard(run)


@main.command("train-reward")
@click.option(
    "--store",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Preference store.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Reward model file (.pt)."
)
@click.option(
    "--kind",
    type=click.Choice(["preference", "adherence"]),
    default="preference",
    show_default=True,
    help="preference: Bradley-Terry on the store; adherence: tag classifier on the corpus.",
)
@click.option(
    "--ties", type=click.Choice(["davidson", "half"]), default="davidson", show_default=True
)
@click.option("--subset", type=click.IntRange(min=1), default=400, show_default=True)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@_common
def train_reward(
    store: Path | None,
    out: Path,
    kind: str,
    ties: str,
    subset: int,
    seed: int,
    verbose: int,
    threads: int | None,
) -> None:
    """Train a reward model (preference from a store, or adherence from the corpus)."""
    _setup(verbose, threads)

    def run() -> None:
        _check_out(out, "file")
        if kind == "preference":
            from musicrl.preferences import read_store
            from musicrl.rewards import PreferenceRewardModel

            if store is None:
                raise ValueError("--store is required for --kind preference")
            records = read_store(store)
            if len(records) and all(r.choice == "tie" for r in records.records):
                raise ValueError(
                    f"--store {str(store)!r}: all {len(records)} records are ties; a "
                    "preference reward model needs at least one record with choice 'A' or 'B'"
                )
            model = PreferenceRewardModel(ties=ties, seed=seed)  # type: ignore[arg-type]
            model.fit(*records.columns())
            model.save(out)
            assert model.fit_result_ is not None
            _emit({"reward_model": str(out), "valid_accuracy": model.fit_result_.valid_accuracy})
        else:
            from musicrl.corpus import load_corpus
            from musicrl.rewards import AdherenceClassifier

            clf = AdherenceClassifier(seed=seed).fit(load_corpus(subset=subset, seed=seed))
            clf.save(out)
            assert clf.fit_result_ is not None
            _emit(
                {
                    "reward_model": str(out),
                    "key_accuracy": clf.fit_result_.key_accuracy,
                    "meter_accuracy": clf.fit_result_.meter_accuracy,
                }
            )

    _guard(run)


@main.command()
@click.option(
    "--base", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Run folder (resumable)."
)
@click.option(
    "--rewards",
    "rewards_spec",
    default="preference,adherence,quality",
    show_default=True,
    help="Comma list of rewards, optionally weighted: preference=1,quality=0.5.",
)
@click.option("--kl", type=float, default=0.1, show_default=True, help="KL weight β >= 0.")
@click.option("--preference-model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--adherence-model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--steps", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--samples-per-prompt",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Melodies per prompt in a batch (leave-one-out baseline); divides --batch-size.",
)
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option(
    "--unfinished",
    type=click.Choice(["last", "keep"]),
    default="last",
    show_default=True,
    help="Rank melodies cut off by the token cap below every finished one (last), or "
    "score them like the others (keep).",
)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--subset", type=click.IntRange(min=1), default=400, show_default=True, help="Prompt pool."
)
@click.option(
    "--prompt", "prompt_texts", multiple=True, help="Training prompt (repeatable); default: corpus."
)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--track", type=click.Choice(["jsonl", "mlflow"]), default="jsonl", show_default=True)
@_common
def finetune(
    base: Path,
    out: Path,
    rewards_spec: str,
    kl: float,
    preference_model: Path | None,
    adherence_model: Path | None,
    steps: int,
    batch_size: int,
    samples_per_prompt: int,
    lr: float,
    unfinished: str,
    checkpoint_every: int,
    subset: int,
    prompt_texts: tuple[str, ...],
    seed: int,
    track: str,
    verbose: int,
    threads: int | None,
) -> None:
    """REINFORCE fine-tune with a KL penalty (resumes when OUT holds a checkpoint)."""
    _setup(verbose, threads)

    def run() -> None:
        _check_finetune_out(out, base)
        if track == "mlflow":
            import importlib.util

            if importlib.util.find_spec("mlflow") is None:
                raise ValueError(
                    "--track mlflow needs MLflow, which is not installed: "
                    "pip install 'musicrl[mlflow]' (or use --track jsonl)"
                )
        from musicrl.checkpoint import load_checkpoint
        from musicrl.corpus import Prompt, load_corpus
        from musicrl.finetune import FinetuneConfig, check_resume
        from musicrl.finetune import finetune as _finetune
        from musicrl.rewards import (
            AdherenceClassifier,
            PreferenceRewardModel,
            QualityReward,
            Reward,
            parse_reward_weights,
        )
        from musicrl.tracking import RunTracker

        weights = parse_reward_weights(rewards_spec)
        config = FinetuneConfig(
            rewards=weights,
            kl=kl,
            steps=steps,
            batch_size=batch_size,
            samples_per_prompt=samples_per_prompt,
            lr=lr,
            unfinished_last=unfinished == "last",
            checkpoint_every=checkpoint_every,
            seed=seed,
            threads=threads,
        )
        rewards: dict[str, Reward] = {}
        if "preference" in weights:
            if preference_model is None:
                raise ValueError("--preference-model is required when --rewards names preference")
            rewards["preference"] = PreferenceRewardModel.load(preference_model)
        if "adherence" in weights:
            if adherence_model is None:
                raise ValueError("--adherence-model is required when --rewards names adherence")
            rewards["adherence"] = AdherenceClassifier.load(adherence_model)
        if "quality" in weights:
            rewards["quality"] = QualityReward()
        if prompt_texts:
            prompts = [Prompt.parse(t) for t in prompt_texts]
        else:
            prompts = [p.prompt for p in load_corpus(subset=subset, seed=seed)]
        ck = load_checkpoint(base)
        created = not out.exists()
        if not created:
            check_resume(ck.model, config, out)  # a refused resumption leaves runs.jsonl as it was
        try:
            with RunTracker(out / "runs.jsonl", out.name, backend=track) as tracker:
                tracker.log_params(
                    {
                        "base": str(base),
                        "rewards": weights,
                        "kl": kl,
                        "steps": steps,
                        "lr": lr,
                        "unfinished": unfinished,
                        "seed": seed,
                    }
                )
                result = _finetune(
                    ck.model,
                    ck.tokenizer,
                    prompts,
                    rewards,
                    config,
                    out,
                    on_step=lambda step, m: tracker.log_metrics(m, step=step),
                )
        except BaseException:
            if created and not (out / "latest.json").exists():
                shutil.rmtree(out, ignore_errors=True)  # nothing resumable: leave nothing
            raise
        _emit(
            {
                "checkpoint": str(out / "final"),
                "steps": result.steps,
                "resumed_from": result.resumed_from,
                "last": result.history[-1] if result.history else {},
            }
        )

    _guard(run)


def _check_finetune_out(out: Path, base: Path) -> None:
    """``finetune --out``: a new folder, or a previous fine-tune run folder (to resume).

    A run folder is one holding ``latest.json`` (a checkpoint to resume from) or
    ``runs.jsonl`` (a run stopped before its first checkpoint); a checkpoint folder
    (such as a ``--base``) never is one.
    """
    _check_out(out, "folder", [("--base", base)], may_exist=True)
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(
            f"--out {str(out)!r} is a file; finetune needs a run folder (a new one, or one a "
            "previous finetune wrote, to resume)"
        )
    if (out / "model.safetensors").exists() or (out / "config.json").exists():
        raise ValueError(
            f"--out {str(out)!r} is a checkpoint folder, not a finetune run folder; choose a "
            "new folder (inputs are never overwritten)"
        )
    if any(out.iterdir()) and not (
        (out / "latest.json").is_file() or (out / "runs.jsonl").is_file()
    ):
        raise ValueError(
            f"--out {str(out)!r} exists and is not a finetune run folder (no latest.json or "
            "runs.jsonl); choose a new folder, or the folder of the run to resume"
        )


@main.command()
@click.option(
    "--base", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--store", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Checkpoint folder.")
@click.option("--beta", type=float, default=0.1, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@_common
def dpo(
    base: Path,
    store: Path,
    out: Path,
    beta: float,
    epochs: int,
    seed: int,
    verbose: int,
    threads: int | None,
) -> None:
    """DPO fine-tune from a preference store (offline alternative to REINFORCE)."""
    _setup(verbose, threads)

    def run() -> None:
        _check_out(out, "folder", [("--base", base)])
        from musicrl.checkpoint import load_checkpoint, save_checkpoint
        from musicrl.dpo import DPOConfig, dpo_finetune
        from musicrl.preferences import read_store

        cfg = DPOConfig(beta=beta, epochs=epochs, seed=seed, threads=threads)
        ck = load_checkpoint(base)
        res = dpo_finetune(ck.model, ck.tokenizer, read_store(store), cfg)
        save_checkpoint(out, res.model, ck.tokenizer, ck.gen_config, {"kind": "dpo", "beta": beta})
        _emit({"checkpoint": str(out), "pairs": res.n_pairs, "final_loss": res.losses[-1]})

    _guard(run)


@main.command()
@click.argument("model_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("model_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--prompts", "n_prompts", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--subset", type=click.IntRange(min=1), default=400, show_default=True)
@click.option("--prompt", "prompt_texts", multiple=True, help="Evaluation prompt (repeatable).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--judge-seed",
    type=_SEED,
    default=10_007,
    show_default=True,
    help="Seed of the held-out simulated judge (must not be a training rater's).",
)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@_common
def evaluate(
    model_a: Path,
    model_b: Path,
    n_prompts: int,
    subset: int,
    prompt_texts: tuple[str, ...],
    max_new_tokens: int,
    judge_seed: int,
    seed: int,
    verbose: int,
    threads: int | None,
) -> None:
    """Win rate of MODEL_A over MODEL_B by a held-out simulated judge, with stats."""
    _setup(verbose, threads)

    def run() -> None:
        import numpy as np

        from musicrl.checkpoint import load_checkpoint
        from musicrl.corpus import Prompt, load_corpus
        from musicrl.evaluation import judge_win_rate, sample_stats
        from musicrl.experiment import TRAIN_RATER_SEEDS, TasteReward, generate
        from musicrl.raters import SimulatedRater
        from musicrl.rewards import QualityReward

        if judge_seed in TRAIN_RATER_SEEDS:
            raise ValueError(
                f"--judge-seed must not be a training rater's seed {TRAIN_RATER_SEEDS}"
            )
        if prompt_texts:
            given = [Prompt.parse(t) for t in prompt_texts]
            prompts = [given[i % len(given)] for i in range(n_prompts)]
        else:
            pieces = load_corpus(subset=subset, seed=seed)
            rng = np.random.default_rng(seed + 1)
            prompts = [pieces[int(i)].prompt for i in rng.integers(0, len(pieces), n_prompts)]
        a, b = load_checkpoint(model_a), load_checkpoint(model_b)
        ma = generate(a.model, a.tokenizer, prompts, seed + 1000, max_new_tokens)
        mb = generate(b.model, b.tokenizer, prompts, seed + 1001, max_new_tokens)
        judge = SimulatedRater(seed=judge_seed, rater_id=f"simulated-judge-{judge_seed}")
        w = judge_win_rate(judge, prompts, ma, mb)
        rewards = {"taste": TasteReward(), "quality": QualityReward()}
        sa, sb = sample_stats(prompts, ma, rewards), sample_stats(prompts, mb, rewards)
        _emit(
            {
                "win_rate": w.rate,
                "ci_low": w.ci_low,
                "ci_high": w.ci_high,
                "wins": w.wins,
                "losses": w.losses,
                "ties": w.ties,
                "a": sa.__dict__,
                "b": sb.__dict__,
                "judge": judge.rater_id,
            }
        )

    _guard(run)


@main.command("sample")
@click.option(
    "--checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option("--prompt", "prompt_text", required=True, help='Tags, e.g. "G major, 6/8, short".')
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output .mid/.midi or .musicxml/.xml.",
)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(min=1), default=None)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@_common
def sample_cmd(
    checkpoint: Path,
    prompt_text: str,
    out: Path,
    temperature: float,
    top_k: int | None,
    seed: int,
    verbose: int,
    threads: int | None,
) -> None:
    """Sample one melody for a prompt and write it as MIDI or MusicXML."""
    _setup(verbose, threads)

    def run() -> None:
        import torch

        from musicrl.checkpoint import load_checkpoint
        from musicrl.corpus import Prompt
        from musicrl.export import write_midi, write_musicxml
        from musicrl.generator import sample

        suffix = out.suffix.lower()
        if suffix not in (".mid", ".midi", ".musicxml", ".xml"):
            raise ValueError(f"--out must end in .mid, .midi, .musicxml or .xml; got {str(out)!r}")
        _check_out(out, "file", [("--checkpoint", checkpoint)])
        prompt = Prompt.parse(prompt_text)
        ck = load_checkpoint(checkpoint)
        g = torch.Generator().manual_seed(seed)
        batch = sample(
            ck.model, ck.tokenizer, [prompt], temperature=temperature, top_k=top_k, generator=g
        )
        melody = batch.melodies[0]
        if not melody.pitches:
            raise RuntimeError("the model produced an empty melody; try another --seed")
        if suffix in (".mid", ".midi"):
            write_midi(melody, out, prompt)
        else:
            write_musicxml(melody, out, prompt)
        _emit(
            {
                "out": str(out),
                "prompt": str(prompt),
                "notes": len(melody.notes),
                "bars": len(melody.bars),
            }
        )

    _guard(run)


if __name__ == "__main__":  # pragma: no cover
    main()
